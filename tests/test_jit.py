"""nablanet.jit: a captured program gives the engine's results bit for bit, and is never replayed stale.

Every check traces on one input and then replays on *other* inputs chosen to
move every mask the derivative rules compute (signs, winners of maximum, the
position of a max, clipped entries, zeros of a product), comparing each replay
with the engine run eagerly on the same input: exact equality in float64, same
dtypes, same shapes.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest

import nablanet as nb
import nablanet.numpy as anp
from nablanet.autodiff.capture import ConcretizationError
from nablanet.autodiff.core import NondiffPrimitive, Primitive


def assert_same(a, b):
    la, da = nb.tree_flatten(a)
    lb, db = nb.tree_flatten(b)
    assert da == db
    for x, y in zip(la, lb):
        assert np.shape(x) == np.shape(y)
        assert np.result_type(x) == np.result_type(y), (np.result_type(x), np.result_type(y))
        np.testing.assert_array_equal(x, y, strict=False)
        assert np.array_equal(x, y, equal_nan=True)


def check_replays(fun, *arg_sets, traces=None):
    """``jit(fun)`` equals ``fun`` on each argument tuple, replaying after the first."""
    jf = nb.jit(fun)
    for args in list(arg_sets) + [arg_sets[0]]:
        assert_same(jf(*args), fun(*args))
    if traces is not None:
        assert jf.traces == traces
    return jf


def check_all_modes(f, *arg_sets, traces=1):
    """Values, reverse mode (value_and_grad of a nonlinear scalar), forward mode (jvp) and both at once."""
    check_replays(f, *arg_sets, traces=traces)
    n = len(arg_sets[0])
    loss = lambda *a: anp.sum(anp.sin(f(*a)))  # noqa: E731
    check_replays(nb.value_and_grad(loss, argnums=tuple(range(n))), *arg_sets, traces=traces)
    tangent_sets = [tuple(np.cos(np.asarray(a) + 1.0) for a in args) for args in arg_sets]
    check_replays(lambda p, t: nb.jvp(f, p, t), *[(a, t) for a, t in zip(arg_sets, tangent_sets)], traces=traces)


R = np.random.default_rng(0)


def signed(shape, seed):
    r = np.random.default_rng(seed)
    return r.uniform(0.3, 1.5, shape) * r.choice([-1.0, 1.0], shape)


def positive(shape, seed):
    return np.random.default_rng(seed).uniform(0.2, 1.5, shape)


UNARY = ["exp", "expm1", "sin", "cos", "tan", "tanh", "sinh", "cosh", "arctan", "arcsinh", "square", "negative",
         "abs", "sign", "exp2", "reciprocal"]
UNARY_POSITIVE = ["log", "log1p", "log2", "log10", "sqrt"]
UNARY_UNIT = ["arcsin", "arccos", "arctanh"]


@pytest.mark.parametrize("name", UNARY + UNARY_POSITIVE + UNARY_UNIT)
def test_unary_elementwise(name):
    f = getattr(anp, name)
    if name in UNARY_POSITIVE:
        xs = [positive((3, 4), 1), positive((3, 4), 2)]
    elif name in UNARY_UNIT:
        xs = [signed((3, 4), 1) * 0.6, signed((3, 4), 2) * 0.6]
    else:
        xs = [signed((3, 4), 1), signed((3, 4), 2)]
    check_all_modes(f, (xs[0],), (xs[1],))


@pytest.mark.parametrize("name", ["add", "subtract", "multiply", "divide", "maximum", "minimum", "logaddexp"])
def test_binary_elementwise_with_broadcasting(name):
    f = getattr(anp, name)
    # the second set swaps which side wins maximum/minimum and has ties
    a1, b1 = signed((3, 4), 3), signed((4,), 4)
    a2, b2 = -a1, np.concatenate([a1[0, :2] * -1, b1[2:]])
    check_all_modes(f, (a1, b1), (a2, b2))


def test_power_operators_and_where():
    check_all_modes(lambda x, y: anp.power(x, y), (positive((2, 3), 1), signed((2, 3), 2)),
                    (positive((2, 3), 3), signed((2, 3), 4)))
    check_all_modes(lambda x: x ** 3 - 2.0 / x + 1.5 * x, (signed((5,), 1),), (signed((5,), 2),))
    check_all_modes(lambda x, y: anp.where(x > 0, x * y, y - x), (signed((2, 5), 1), signed((2, 5), 2)),
                    (signed((2, 5), 3), signed((2, 5), 4)))
    check_all_modes(lambda x: anp.clip(x, -0.5, 0.7), (signed((6,), 1),), (signed((6,), 7),))


def test_casts_to_integer_are_recomputed_on_replay_with_zero_derivative():
    """A cast to an integer or bool dtype is a constant (derivative 0) recorded in the program, so the
    replay recomputes it from the new input; a cast to float32 carries the derivative."""
    x1, x2 = signed((5,), 1) * 2.0, signed((5,), 2) * 2.0
    for cast in (lambda x: x.astype(int), lambda x: x.astype(bool), lambda x: anp.astype(x, np.uint8),
                 lambda x: anp.astype(x, np.float32)):
        check_all_modes(lambda x: cast(x) * x, (x1,), (x2,))
    jg = check_replays(nb.grad(lambda x: anp.sum(x.astype(int) * x)), (x1,), (x2,), traces=1)
    np.testing.assert_array_equal(jg(x2), np.trunc(x2))  # d/dx sum(int(x) * x) = int(x), not int(x) + x


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "var", "std", "logsumexp", "prod"])
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_reductions_move_their_masks(name, axis):
    f = getattr(anp, name)
    x1 = signed((3, 4), 5)
    x2 = x1[::-1, ::-1].copy()  # the max/min sit elsewhere
    check_all_modes(lambda x: f(x, axis=axis), (x1,), (x2,))


def test_prod_with_a_zero_is_a_guarded_branch():
    x1 = signed((2, 3), 1)
    x2 = x1.copy()
    x2[0, 1] = 0.0  # the rule takes its other branch: the capture traces it anew
    jf = check_replays(nb.grad(lambda x: anp.prod(x)), (x1,), (x2,), (x1,), traces=2)
    assert_same(jf(x2), nb.grad(lambda x: anp.prod(x))(x2))


def test_shape_functions():
    x1, x2 = signed((2, 3, 4), 1), signed((2, 3, 4), 2)
    cases = [
        lambda x: anp.reshape(x, (6, 4)),
        lambda x: anp.transpose(x, (2, 0, 1)),
        lambda x: x[1, :, ::2],
        lambda x: x[:, [0, 2, 2]],
        lambda x: anp.concatenate([x, 2 * x], axis=1),
        lambda x: anp.stack([x, anp.exp(x)], axis=-1),
        lambda x: anp.expand_dims(anp.squeeze(x[:1]), 0),
        lambda x: anp.broadcast_to(x[:, :1], (2, 3, 4)),
        lambda x: anp.moveaxis(x, 0, -1),
        lambda x: anp.swapaxes(x, 0, 2).ravel(),
        lambda x: x.T @ anp.ones(2),
    ]
    for f in cases:
        check_all_modes(f, (x1,), (x2,))


def test_products_and_einsum():
    a1, b1 = signed((3, 4), 1), signed((4, 2), 2)
    a2, b2 = signed((3, 4), 3), signed((4, 2), 4)
    for f in (anp.matmul, anp.dot, lambda a, b: anp.einsum("ij,jk->ik", a, b),
              lambda a, b: anp.outer(a[0], b[:, 0]), lambda a, b: anp.inner(a, b.T)):
        check_all_modes(f, (a1, b1), (a2, b2))


def test_second_order_transforms_are_captured():
    f = lambda x: anp.sum(anp.tanh(x) ** 2 * anp.exp(-x))  # noqa: E731
    x1, x2 = signed((4,), 1), signed((4,), 2)
    check_replays(nb.hessian(f), (x1,), (x2,), traces=1)
    check_replays(lambda x, v: nb.hvp(f, x, v), (x1, x2), (x2, x1), traces=1)
    check_replays(nb.jacobian(lambda x: anp.sin(x) * x[0]), (x1,), (x2,), traces=1)
    g = nb.grad(lambda x: anp.sum(anp.maximum(x, 0.1) ** 3))
    check_replays(nb.grad(lambda x: anp.sum(g(x) * anp.sin(x))), (x1,), (x2,), traces=1)


def test_pytrees_in_and_out():
    Pair = collections.namedtuple("Pair", "w b")

    def f(params, data, scale, n):
        a = data["x"]
        for p in params:
            a = anp.tanh(a @ p.w + p.b) * scale
        return {"out": a, "both": (anp.sum(a), [a[0] * n])}

    params = [Pair(signed((3, 4), 1), signed((4,), 2)), Pair(signed((4, 2), 3), signed((2,), 4))]
    params2 = [Pair(signed((3, 4), 5), signed((4,), 6)), Pair(signed((4, 2), 7), signed((2,), 8))]
    d1, d2 = {"x": signed((5, 3), 9)}, {"x": signed((5, 3), 10)}
    check_replays(f, (params, d1, 0.5, 3), (params2, d2, 1.5, 3), traces=1)
    # a Python int leaf is static: a new value traces anew
    jf = check_replays(f, (params, d1, 0.5, 3), (params, d1, 0.5, 4), traces=2)
    assert_same(jf(params, d1, 2.0, 3), f(params, d1, 2.0, 3))
    assert jf.traces == 2  # a float leaf is traced: no retrace
    loss = lambda ps, d: anp.sum(f(ps, d, 0.5, 2)["out"] ** 2)  # noqa: E731
    check_replays(nb.value_and_grad(loss), (params, d1), (params2, d2), traces=1)


def test_user_function_with_its_own_primitive():
    def _cube(x):
        return x ** 3

    cube = Primitive(_cube, "cube").defvjp(lambda ans, x: lambda g: g * 3 * x ** 2)
    cube.defjvp(lambda g, ans, x: g * 3 * x ** 2)

    def model(w, x):
        h = cube(x @ w)
        return anp.mean(anp.where(h > 0, h, 0.1 * h))

    w1, w2, x = signed((3, 2), 1), signed((3, 2), 2), signed((4, 3), 3)
    check_replays(nb.value_and_grad(model), (w1, x), (w2, x), traces=1)


def test_new_shape_or_dtype_traces_anew():
    jf = nb.jit(nb.grad(lambda x: anp.sum(x ** 2)))
    for x in (np.ones(3), np.ones(4), np.ones(3, np.float32), np.ones((3, 1))):
        assert_same(jf(x), 2 * x)
    assert jf.traces == 4
    assert jf(np.ones(3)).dtype == np.float64 and jf.traces == 4


# ----------------------------------------------------------------------------
# never stale: control flow and concrete values
# ----------------------------------------------------------------------------


def test_value_dependent_branch_is_guarded_and_retraced():
    def f(x):
        if anp.sum(x) > 0:
            return x * 2.0
        return anp.exp(x)

    jf = nb.jit(f)
    up, down = np.array([1.0, 2.0]), np.array([-1.0, -2.0])
    assert_same(jf(up), up * 2.0)
    assert_same(jf(down), np.exp(down))  # not the recorded branch
    assert_same(jf(up), up * 2.0)
    assert_same(jf(down), np.exp(down))
    assert jf.traces == 2
    g = nb.jit(nb.grad(lambda x: anp.sum(f(x))))
    assert_same(g(up), np.full(2, 2.0))
    assert_same(g(down), np.exp(down))


def test_while_loop_on_a_traced_value():
    def halve_until_small(x):
        while anp.max(anp.abs(x)) > 1.0:
            x = x / 2.0
        return x

    jf = nb.jit(halve_until_small)
    for x in (np.array([3.0, 1.0]), np.array([0.5]), np.array([9.0, -1.0]), np.array([3.5, 0.0])):
        assert_same(jf(x), halve_until_small(x))


def test_concrete_values_raise_naming_the_input():
    with pytest.raises(ConcretizationError, match=r"float\(\) of a traced value \(the result of primitive 'sum'"):
        nb.jit(lambda a, x: a * float(anp.sum(x)))(1.0, np.ones(2))
    with pytest.raises(ConcretizationError, match=r"float\(\) of the traced input argument 1"):
        nb.jit(lambda a, x: a * float(x))(1.0, np.ones(()))
    with pytest.raises(ConcretizationError, match="conversion to a plain NumPy array"):
        nb.jit(lambda x: np.asarray(x * 2) + 1)(np.ones(2))
    with pytest.raises(ConcretizationError, match="int"):
        nb.jit(lambda x: x[int(anp.argmax(x))])(np.ones(2))
    with pytest.raises(AttributeError, match="only go through primitives"):
        nb.jit(lambda x, rng: x + rng.random(2))(np.ones(2), np.random.default_rng(0))


def test_static_argnums():
    def f(x, n, mode):
        for _ in range(n):
            x = anp.sin(x) if mode == "sin" else anp.cos(x)
        return x

    jf = nb.jit(f, static_argnums=(1, 2))
    x = signed((3,), 1)
    for n, mode in ((2, "sin"), (3, "sin"), (2, "cos"), (2, "sin")):
        assert_same(jf(x, n, mode), f(x, n, mode))
    assert jf.traces == 3
    with pytest.raises(TypeError, match="static argument 1 .* not hashable"):
        jf(x, [1], "sin")


def test_randomness_is_an_input_never_baked_in():
    mask = NondiffPrimitive(lambda rng, x, p: rng.random(np.shape(x)) >= p, "bernoulli_mask")

    def f(x, rng):
        return anp.sum(anp.where(mask(rng, x, 0.5), x, 0.0))

    jf = nb.jit(nb.value_and_grad(f))
    x = signed((20,), 1)
    r_jit, r_eager = np.random.default_rng(7), np.random.default_rng(7)
    seen = set()
    for _ in range(4):
        out = jf(x, r_jit)
        assert_same(out, nb.value_and_grad(f)(x, r_eager))
        seen.add(out[1].tobytes())
    assert len(seen) == 4 and jf.traces == 1


def test_guard_failure_does_not_consume_draws():
    draw = NondiffPrimitive(lambda rng, x: rng.standard_normal(np.shape(x)), "draw")

    def f(x, rng):
        y = x + draw(rng, x)
        if anp.sum(x) > 0:
            return y * 2
        return y

    jf = nb.jit(f)
    r1, r2 = np.random.default_rng(3), np.random.default_rng(3)
    for x in (np.ones(3), -np.ones(3), np.ones(3), -np.ones(3)):
        assert_same(jf(x, r1), f(x, r2))


# ----------------------------------------------------------------------------
# composition, outputs, constants
# ----------------------------------------------------------------------------


def test_grad_of_jit_and_jit_inside_jit():
    f = lambda x: anp.sum(anp.tanh(x) * x)  # noqa: E731
    x = signed((4,), 1)
    assert_same(nb.grad(nb.jit(f))(x), nb.grad(f)(x))
    assert_same(nb.jvp(nb.jit(f), (x,), (np.ones(4),)), nb.jvp(f, (x,), (np.ones(4),)))
    inner = nb.jit(lambda x: anp.exp(x) * 2)
    outer = nb.jit(nb.grad(lambda x: anp.sum(inner(x) * x)))
    check_replays(lambda x: outer(x), (x,), (signed((4,), 2),))
    assert_same(outer(x), nb.grad(lambda x: anp.sum(anp.exp(x) * 2 * x))(x))


def test_closing_over_an_outer_tracer_is_run_not_cached():
    def outer(y):
        inner = nb.jit(lambda x: anp.sum(x * y))
        return inner(np.array([1.0, 2.0]))

    assert_same(nb.grad(outer)(np.array([3.0, 4.0])), np.array([1.0, 2.0]))


def test_outputs_are_fresh_arrays():
    const = np.arange(3.0)
    jf = nb.jit(lambda x: (x * 2, const, anp.sum(x)))
    jf(np.zeros(3))  # the tracing call
    a = jf(np.ones(3))
    b = jf(np.full(3, 5.0))
    assert_same(a[0], np.full(3, 2.0))
    a[1][0] = 99.0
    assert jf(np.ones(3))[1][0] == 0.0 and const[0] == 0.0
    assert_same(b[0], np.full(3, 10.0))


def test_the_tracing_calls_constant_output_is_not_the_programs_constant():
    # the gradient of sum(2 x) does not depend on x: a constant of the program.  The tracing call
    # returned that very array, so a caller's in-place step on it (g *= lr) changed every later call.
    for fun, want in ((lambda x: anp.sum(x * 2.0), np.full(3, 2.0)), (anp.sum, np.ones(3))):
        jg = nb.jit(nb.grad(fun))
        g = jg(np.zeros(3))  # the tracing call
        assert_same(g, want)
        g *= 5.0
        assert_same(jg(np.ones(3)), want)
        assert_same(jg(np.ones(3)), want)


def test_program_is_straight_line_and_drops_dead_steps():
    def f(x):
        unused = anp.exp(x) * 3  # noqa: F841
        return anp.sum(anp.tanh(x))

    jf = nb.jit(nb.value_and_grad(f))
    prog = jf.program(np.ones(3))
    assert "exp" not in prog.source
    assert [p.name for p in prog.prims].count("tanh") == 1  # the sweep reuses the forward value
    assert len(prog) == len(prog.steps)


def test_jitted_function_keeps_name_and_doc():
    def my_loss(x):
        """Doc."""
        return anp.sum(x)

    jf = nb.jit(my_loss)
    assert jf.__name__ == "my_loss" and jf.__doc__ == "Doc." and "my_loss" in repr(jf)


# ----------------------------------------------------------------------------
# the library's layers, activations and losses under capture
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("activation", sorted(nb.nn.ACTIVATIONS))
def test_every_activation_in_a_network(activation):
    m = nb.nn.MLP([3, 5, 4, 2], activation=activation, seed=0, dtype=np.float64)
    x1, x2 = signed((6, 3), 1), signed((6, 3), 2)
    f = lambda p, x: anp.sum(m.apply(p, x) ** 2)  # noqa: E731
    params2 = nb.tree_map(lambda v: v * -1.3, m.params)
    check_replays(nb.value_and_grad(f), (m.params, x1), (params2, x2), traces=1)


@pytest.mark.parametrize("name", sorted(nb.losses.LOSSES))
def test_every_loss(name):
    loss = nb.losses.LOSSES[name]
    y1, y2 = signed((6, 3), 1), signed((6, 3), 2)
    if name in ("cross_entropy", "softmax_cross_entropy"):
        t1, t2 = np.array([0, 2, 1, 1, 0, 2]), np.array([1, 1, 0, 2, 2, 0])
    elif name in ("bce", "binary_cross_entropy"):
        t1, t2 = (signed((6, 3), 3) > 0).astype(float), (signed((6, 3), 4) > 0).astype(float)
    else:
        t1, t2 = signed((6, 3), 3), signed((6, 3), 4)
    check_replays(nb.value_and_grad(lambda y, t: loss(y, t)), (y1, t1), (y2, t2), traces=1)


def test_custom_sequential_in_float64():
    from nablanet.nn import Dense, LayerNorm, Sequential

    m = Sequential(Dense(4, 8, "tanh"), LayerNorm(8), Dense(8, 3, "gelu"), Dense(3, 2), seed=1, dtype=np.float64)
    loss = nb.losses.LOSSES["mse"]
    f = lambda p, x, t: loss(m.apply(p, x), t)  # noqa: E731
    x1, x2, t = signed((5, 4), 1), signed((5, 4), 2), signed((5, 2), 3)
    params2 = nb.tree_map(lambda v: v + 0.1, m.params)
    check_replays(nb.value_and_grad(f), (m.params, x1, t), (params2, x2, t), traces=1)


def test_value_dependent_shapes_are_guarded():
    def f(x):
        idx = anp.nonzero(x > 0)[0]
        return anp.sum(x[idx] ** 2) + idx.shape[0]

    jf = nb.jit(f)
    for x in (np.array([1.0, -2.0, 3.0]), np.array([1.0, 2.0, 3.0]), np.array([-1.0, -2.0, 0.5]),
              np.array([1.0, -2.0, 3.0])):
        assert_same(jf(x), f(x))
    assert jf.traces == 3


_ORDER_FUNCTIONS = {
    "sort": lambda x: anp.sort(x) * np.arange(1.0, 5.0),
    "sort axis 0": lambda x: anp.sort(anp.reshape(x, (2, 2)), axis=0) * np.array([1.0, 3.0]),
    "sort axis None": lambda x: anp.sort(anp.reshape(x, (2, 2)), axis=None) * np.arange(4.0),
    "partition": lambda x: anp.partition(x, 1) * np.arange(1.0, 5.0),
    "median": lambda x: anp.median(x) * x,
    "quantile": lambda x: anp.quantile(x, [0.1, 0.7]),
    "percentile": lambda x: anp.percentile(x, 30.0),
    "unique": lambda x: anp.unique(x) * 2.0,
    "take": lambda x: anp.take(x, anp.argsort(x)) * np.arange(4.0),
    "take axis 1": lambda x: anp.take(anp.reshape(x, (2, 2)), anp.argmax(anp.reshape(x, (2, 2)), axis=1), axis=1),
    "take_along_axis": lambda x: anp.take_along_axis(x, anp.argsort(-x), axis=0) * np.arange(4.0),
}


@pytest.mark.parametrize("name", sorted(_ORDER_FUNCTIONS))
def test_order_statistics_are_recorded_and_sort_each_replays_input(name):
    # they sorted with NumPy's argsort on the capture tracer: ConcretizationError ("use nablanet.numpy functions")
    f = _ORDER_FUNCTIONS[name]
    xs = [np.array([3.0, -1.0, 2.0, 0.5]), np.array([-4.0, 5.0, 1.0, 2.0]), np.array([0.25, 7.0, -3.0, 1.5]),
          np.array([1.0, 1.0, 0.0, 9.0])]  # each in another order; the last has a tie (unique: another shape)
    for fun in (f, nb.grad(lambda x: anp.sum(f(x) ** 2)), nb.hessian(lambda x: anp.sum(f(x) ** 3))):
        jitted = nb.jit(fun)
        for x in xs:
            np.testing.assert_allclose(jitted(x), fun(x), rtol=1e-14)
        assert jitted.traces <= 2


def test_dropout_and_batch_norm_in_training_mode():
    """Dropout's mask is drawn anew from the Generator input at every replay; running statistics come out."""
    m = nb.nn.MLP([4, 8, 3], activation="relu", dropout=0.2, batch_norm=True, seed=0, dtype=np.float64)
    X, t = signed((6, 4), 1), np.array([0, 1, 2, 0, 1, 2])

    def loss(p, state, X, t, rng):
        z, s = m.apply(p, X, state=state, train=True, rng=rng, logits=True, return_state=True)
        return nb.losses.LOSSES["cross_entropy"](z, t), s

    f = nb.jit(nb.value_and_grad(loss, has_aux=True))
    eager = nb.value_and_grad(loss, has_aux=True)
    r1, r2 = np.random.default_rng(5), np.random.default_rng(5)
    grads = set()
    for X_ in (X, signed((6, 4), 2), X):
        out = f(m.params, m.state, X_, t, r1)
        assert_same(out, eager(m.params, m.state, X_, t, r2))
        grads.add(nb.tree_flatten(out[1])[0][0].tobytes())
    assert f.traces == 1 and len(grads) == 3


# ----------------------------------------------------------------------------
# the compiled program: buffers reused across calls, in-place writes, destinations
# ----------------------------------------------------------------------------


def assert_bits(a, b):
    """Equal bit for bit (so -0.0 and 0.0 differ), same dtypes and shapes."""
    la, da = nb.tree_flatten(a)
    lb, db = nb.tree_flatten(b)
    assert da == db
    for x, y in zip(la, lb):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes()


def _mlp_loss(params, X, t):
    a = X
    for W, b in params[:-1]:
        a = anp.maximum(a @ W + b, 0.0)
    z = a @ params[-1][0] + params[-1][1]
    return anp.mean(anp.logsumexp(z, axis=1) - anp.sum(z * t, axis=1))


def _mlp_args(seed, n=6):
    r = np.random.default_rng(seed)
    params = [(r.standard_normal((4, 5)), r.standard_normal(5)), (r.standard_normal((5, 3)), r.standard_normal(3))]
    return params, r.standard_normal((n, 4)), np.eye(3)[r.integers(0, 3, n)]


def test_buffers_reused_across_calls_never_touch_earlier_results():
    jf = nb.jit(nb.value_and_grad(_mlp_loss))
    eager = nb.value_and_grad(_mlp_loss)
    args = [_mlp_args(s) for s in range(4)]
    assert jf.program(*args[0]).buffers  # the program does write into buffers of its own
    results = [jf(*a) for a in args]  # every call after the first replays into the same buffers
    for a, r in zip(args, results):
        assert_bits(r, eager(*a))
    leaves = [id(x) for r in results for x in nb.tree_flatten(r)[0]]
    assert len(set(leaves)) == len(leaves)  # every output is a fresh array


def test_in_place_writes_never_alter_the_inputs():
    jf = nb.jit(nb.value_and_grad(_mlp_loss, argnums=(0, 1, 2)))
    args = _mlp_args(1)
    before = [x.copy() for x in nb.tree_flatten(args)[0]]
    for _ in range(3):
        jf(*args)
    for x, y in zip(nb.tree_flatten(args)[0], before):
        assert x.tobytes() == y.tobytes()
    assert jf.traces == 1


def test_outputs_that_are_views_of_intermediates_stay_fresh():
    ident = Primitive(lambda a: a, "returns_its_argument").defvjp(lambda ans, a: lambda g: g)

    def f(x):
        y = anp.exp(x) * 2.0  # intermediates that could live in buffers...
        return (y + 1.0).T, ident(y * 3.0), anp.sum(y)  # ...reach the outputs through a view and an opaque call

    jf = nb.jit(f)
    x1, x2 = signed((3, 2), 1), signed((3, 2), 2)
    jf(x1)
    r1 = jf(x1)
    r2 = jf(x2)
    assert_bits(r1, f(x1))
    assert_bits(r2, f(x2))


def test_inputs_with_another_memory_layout_are_traced_for_it():
    """A result's layout follows its inputs' (and a sum's rounding follows the layout): strides are in the key."""
    f = nb.value_and_grad(lambda x: anp.sum(anp.exp(x.T * 1.5) * anp.sin(x.T)))
    jf = nb.jit(f)
    c = signed((5, 7), 1)
    fortran = np.asfortranarray(signed((5, 7), 2))
    sliced = signed((10, 7), 3)[::2]
    for x in (c, fortran, sliced, c, fortran):
        assert_bits(jf(x), f(x))
    assert jf.traces == 3


def _mlp_step_into():
    """A captured value_and_grad of the MLP loss, its eager counterpart, and destinations for its gradients."""
    params = _mlp_args(0)[0]
    return (nb.jit(nb.value_and_grad(_mlp_loss)), nb.value_and_grad(_mlp_loss),
            [None] + [np.empty_like(p) for pair in params for p in pair])


def test_call_into_writes_outputs_into_the_callers_arrays():
    jf, eager, dests = _mlp_step_into()
    for seed in (1, 2, 3):
        args = _mlp_args(seed)
        value, grads = jf.call_into(dests, *args)
        flat = nb.tree_flatten(grads)[0]
        assert all(g is d for g, d in zip(flat, dests[1:]))  # the caller's own arrays, filled in
        assert_bits((value, grads), eager(*args))
    assert jf.traces == 1
    # a destination of another layout is filled by a copy, still bit for bit
    odd = [None] + [np.empty(p.shape[::-1]).T if p.ndim == 2 else np.empty_like(p) for pair in _mlp_args(0)[0] for p in pair]
    args = _mlp_args(4)
    assert_bits(jf.call_into(odd, *args), eager(*args))
    with pytest.raises(ValueError, match="destination 1 has shape"):
        jf.call_into([None, np.empty((2, 2))] + dests[2:], *args)


def test_simplified_program_still_equals_the_engine():
    """x * 1 is dropped, repeated calls are merged, but two draws from one Generator never are."""
    draw = NondiffPrimitive(lambda rng, x: rng.standard_normal(np.shape(x)), "draw")

    def f(x, rng):
        a = anp.sum(anp.exp(x) * 1.0, axis=0)
        b = anp.sum(anp.exp(x), axis=0)  # the same calls as a's
        return a * b + draw(rng, x)[0] - draw(rng, x)[0]

    jf = nb.jit(f)
    x = signed((4, 3), 1)
    prog = jf.program(x, np.random.default_rng(0))
    names = [p.name for p in prog.prims]
    assert names.count("exp") == 1 and names.count("sum") == 1 and names.count("draw") == 2
    assert "multiply(c" not in prog.source and ", 1.0" not in prog.source
    r1, r2 = np.random.default_rng(9), np.random.default_rng(9)
    for x_ in (x, signed((4, 3), 2)):
        assert_bits(jf(x_, r1), f(x_, r2))


def test_a_branch_on_a_buffered_value_still_retraces():
    def f(x):
        h = anp.tanh(x) * 2.0 + 1.0
        if anp.sum(h) > 0:
            return h * h
        return anp.exp(h)

    jf = nb.jit(nb.value_and_grad(lambda x: anp.sum(f(x))))
    eager = nb.value_and_grad(lambda x: anp.sum(f(x)))
    up, down = np.full(3, 0.5), np.full(3, -2.0)
    for x in (up, down, up, down):
        assert_bits(jf(x), eager(x))
    assert jf.traces == 2


def test_a_program_re_entered_runs_the_function_instead():
    """A primitive that calls the same jitted function while its program runs: the inner call does not share buffers."""
    state = {"inner": False}
    jf = None

    def peek(a):
        if state["inner"]:
            state["inner"] = False
            state["got"] = (a.copy(), jf(a * 0.5))  # re-enters the program that is running
        return np.sin(a)

    p = Primitive(peek, "peek")
    f = lambda x: anp.sum(p(anp.exp(x) * 2.0) * anp.cos(x))  # noqa: E731
    jf = nb.jit(f)
    x = signed((3,), 1)
    jf(x)
    state["inner"] = True
    assert_bits(jf(x), f(x))
    a, inner = state["got"]
    assert_bits(inner, f(a * 0.5))


def test_merged_outputs_are_still_distinct_fresh_arrays():
    """x * 1 returned is not the input itself, and a repeated call returned twice is two arrays (as in f)."""
    f = lambda x: (x * 1.0, anp.exp(x), anp.exp(x))  # noqa: E731
    jf = nb.jit(f)
    x = signed((3,), 1)
    for _ in range(2):
        out = jf(x)
        assert_bits(out, f(x))
        assert out[0] is not x and out[1] is not out[2]
    jf.program(x)
    assert [p.name for p in jf.program(x).prims].count("exp") == 1


def test_draws_from_random_state_are_never_merged():
    """Two calls with the same arguments are merged unless they draw: NumPy's global state, or a Generator constant."""
    shuffle = NondiffPrimitive(np.random.permutation, "permutation")  # numpy.random: draws from the global state
    gen = np.random.default_rng(0)
    noisy = NondiffPrimitive(lambda g, x: g.standard_normal(np.shape(x)), "noisy")
    noisy.fun.__module__ = "nablanet.test"  # as if the library's own: only the Generator argument stops the merge
    f = lambda x: (shuffle(x) - shuffle(x), noisy(gen, x) - noisy(gen, x))  # noqa: E731
    jf = nb.jit(f)
    x = np.arange(8.0)
    jf(x)
    names = [p.name for p in jf.program(x).prims]
    assert names.count("permutation") == 2 and names.count("noisy") == 2
    a, b = jf(x)
    assert np.any(a != 0.0) and np.any(b != 0.0)


def test_softmax_cross_entropy_computes_its_log_sum_exp_once_per_step():
    """The cost's value and its p - t rule read one log-sum-exp node (merged in the captured program)."""
    ce = nb.losses.LOSSES["cross_entropy"]
    z, t = signed((6, 3), 1), np.array([0, 2, 1, 1, 0, 2])
    jf = nb.jit(nb.value_and_grad(ce))
    names = [p.name for p in jf.program(z, t).prims]
    assert names.count("logsumexp") == 1 and "softmax" not in names
    for z_ in (z, signed((6, 3), 2)):
        assert_bits(jf(z_, t), nb.value_and_grad(ce)(z_, t))
    nb.check_grads(lambda z: ce(z, t), (z,), order=2)
    nb.check_grads(lambda z: ce(z, np.eye(3)[t] * 0.7 + 0.1), (z,), order=2)


# ----------------------------------------------------------------------------
# the fast path: a call with the signature of a recent one is matched leaf by leaf
# ----------------------------------------------------------------------------


def _alternate(f, *arg_sets, traces, jf=None, **jit_kw):
    """Call ``jit(f)`` on the argument tuples twice over, in order then in reverse (so each signature is
    matched both first and after another one), each result ``f``'s bit for bit; ``traces`` tracings in all."""
    jf = jf or nb.jit(f, **jit_kw)
    sets = list(arg_sets)
    for args in sets + sets + sets[::-1] + sets:
        assert_bits(jf(*args), f(*args))
    assert jf.traces == traces
    return jf


def test_fast_path_same_shape_another_dtype():
    f = lambda x: anp.sum(anp.sin(x) * x, axis=0)  # noqa: E731
    x = signed((3, 4), 1)
    _alternate(f, (x,), (x.astype(np.float32),), (x.astype(np.float16),), traces=3)
    _alternate(nb.value_and_grad(lambda x: anp.sum(anp.sin(x) ** 2)), (x,), (x.astype(np.float32),), traces=2)


def test_fast_path_same_structure_another_leaf_count_or_keys():
    x, y, z = signed((3,), 1), signed((3,), 2), signed((3,), 3)
    f = lambda ps: [anp.sin(p) for p in ps]  # noqa: E731
    _alternate(f, ([x, y],), ([x, y, z],), ([x],), ([],), traces=4)
    g = lambda d: {k: anp.sin(v) * (i + 1) for i, (k, v) in enumerate(d.items())}  # noqa: E731
    _alternate(g, ({"a": x, "b": y},), ({"a": x, "c": y},), ({"b": y, "a": x},), ({"a": x, "b": y, "c": z},),
               traces=4)
    nested = lambda t: anp.sum(t[0][0]) * t[1]["w"]  # noqa: E731
    _alternate(nested, (([x], {"w": y}),), (([x, z], {"w": y}),), (([x], {"w": y, "v": z}),), traces=3)


def test_fast_path_list_tuple_namedtuple_none():
    Pair = collections.namedtuple("Pair", "a b")
    Other = collections.namedtuple("Other", "a b")
    x, y = signed((3,), 1), signed((3,), 2)
    f = lambda ps: type(ps)(*(anp.sin(p) for p in ps)) if hasattr(ps, "_fields") else type(ps)(anp.sin(p) for p in ps)  # noqa: E731
    _alternate(f, ([x, y],), ((x, y),), (Pair(x, y),), (Other(x, y),), traces=4)
    g = lambda a, b: anp.sin(a) if b is None else anp.sin(a) * b  # noqa: E731
    _alternate(g, (x, None), (x, y), traces=2)


def test_fast_path_python_scalars_numpy_scalars_and_0d_arrays():
    """A Python float is weak in NumPy's promotion, a NumPy scalar or 0-d array is not: each its own program."""
    x = signed((4,), 1).astype(np.float32)
    f = lambda x, s: x * s  # noqa: E731
    jf = _alternate(f, (x, 2.0), (x, np.array(2.0)), (x, np.float64(2.0)), (x, np.float32(2.0)), (x, 3.0 + 0j),
                    traces=5)
    assert jf(x, 2.5).dtype == np.float32 and jf(x, np.array(2.5)).dtype == np.float64 and jf.traces == 5
    # a Python int and a bool are static (by value and type); a float is traced
    _alternate(f, (x, 2), (x, 3), (x, True), (x, 1), (x, 1.0), traces=5)


def test_fast_path_arrays_mutated_in_place():
    f = nb.value_and_grad(lambda a: anp.sum(anp.sin(a) * anp.arange(6.0).reshape(a.shape)))
    jf = nb.jit(f)
    a = signed((6,), 1)
    assert_bits(jf(a), f(a))
    a[...] = signed((6,), 2)  # new values: the same program
    assert_bits(jf(a), f(a))
    assert jf.traces == 1
    a.shape = (2, 3)  # a new shape on the same object: traced anew
    assert_bits(jf(a), f(a))
    assert jf.traces == 2
    b = np.zeros(12)[::2]
    b[...] = signed((6,), 3)
    jf(b)
    assert jf.traces == 3  # another layout
    h = lambda a: a * 3 + 1  # noqa: E731
    jh = nb.jit(h)
    c = signed((6,), 4)
    assert_bits(jh(c), h(c))
    c.dtype = np.int64  # the same memory read as other numbers, same shape: traced anew, never the float program
    assert_bits(jh(c), h(c))
    assert jh.traces == 2


def test_fast_path_memory_layouts_read_only_arrays_and_subclasses():
    f = nb.value_and_grad(lambda x: anp.sum(anp.exp(x.T * 1.5).T * anp.sin(x)))
    c = signed((5, 7), 1)
    fortran = np.asfortranarray(signed((5, 7), 2))
    sliced = signed((10, 7), 3)[::2]
    ro = signed((5, 7), 4)
    ro.setflags(write=False)
    jf = _alternate(f, (c,), (fortran,), (sliced,), (ro,), traces=3)  # read-only C order: c's program
    assert not ro.flags.writeable

    class Sub(np.ndarray):
        pass

    sub = signed((5, 7), 5).view(Sub)
    assert_bits(jf(sub), f(sub))
    assert jf.traces == 4  # a subclass is keyed by its type
    assert_bits(jf(c), f(c))
    assert_bits(jf(sub), f(sub))
    assert jf.traces == 4


def test_fast_path_static_arguments_keywords_and_tracers():
    def f(x, n, mode, scale=1.0):
        for _ in range(n):
            x = anp.sin(x) if mode == "sin" else anp.cos(x)
        return x * scale

    x = signed((3,), 1)
    jf = _alternate(f, (x, 2, "sin"), (x, 3, "sin"), (x, 2, "cos"), traces=3, static_argnums=(1, 2))
    with pytest.raises(TypeError, match="static argument 1 .* not hashable"):
        jf(x, [2], "sin")
    k = lambda x, **kw: f(x, 2, "sin", **kw)  # noqa: E731
    jk = nb.jit(k)
    for kw in ({}, {"scale": 2.0}, {"scale": np.float32(2.0)}, {}, {"scale": 3.0}):
        assert_bits(jk(x, **kw), k(x, **kw))
    assert jk.traces == 3
    # a jitted function called on tracers of an outer transform is the function itself, fast path or not
    g = nb.jit(lambda x: anp.sum(anp.sin(x) ** 2))
    g(x)
    g(x)
    assert_bits(nb.grad(g)(x), nb.grad(lambda x: anp.sum(anp.sin(x) ** 2))(x))
    with pytest.raises(TypeError, match="call_into.. needs concrete arguments"):
        nb.grad(lambda x: g.call_into([None], x))(x)
    assert g.traces == 1


def test_fast_path_many_signatures_in_turn():
    f = lambda x: anp.sum(anp.sin(x) * x)  # noqa: E731
    xs = [(signed((n,), n),) for n in range(1, 8)]  # more signatures than the fast path holds
    _alternate(f, *xs, traces=7)


def test_fast_path_call_into_destinations():
    jf, eager, dests = _mlp_step_into()
    for seed in (1, 2, 1):
        args = _mlp_args(seed)
        assert_bits(jf.call_into(dests, *args), eager(*args))
    assert jf.traces == 1
    args = _mlp_args(3)
    f32 = [None] + [np.empty_like(p, dtype=np.float32) for pair in _mlp_args(0)[0] for p in pair]
    with pytest.raises(ValueError, match="destination 1 has shape"):
        jf.call_into(f32, *args)
    with pytest.raises(ValueError, match="4 destinations for 5 output leaves"):
        jf.call_into(dests[:4], *args)
    fewer = [None, None] + dests[2:]  # a leaf to a fresh array instead: its own program
    value, grads = jf.call_into(fewer, *args)
    assert_bits((value, grads), eager(*args))
    assert nb.tree_flatten(grads)[0][0] is not dests[1]
    as_tuple = tuple(dests)
    assert_bits(jf.call_into(as_tuple, *args), eager(*args))
    assert_bits(jf(*args), eager(*args))  # a plain call: fresh outputs
    assert jf.traces == 5  # the two refused calls traced before refusing; the tuple replays the list's program
    for d in (dests, fewer, as_tuple):
        assert_bits(jf.call_into(d, *args), eager(*args))
    assert jf.traces == 5


def test_a_guard_before_any_draw_saves_no_generator_state():
    """The Generators' states are saved for a replay only when a check can fail after a draw; either way a failed
    guard leaves the stream where the function would."""
    draw = NondiffPrimitive(lambda rng, x: rng.standard_normal(np.shape(x)), "draw")

    def before(x, rng):
        if anp.sum(x) > 0:
            return x + draw(rng, x) * 2
        return x - draw(rng, x)

    def after(x, rng):
        y = x + draw(rng, x)
        if anp.sum(x) > 0:
            return y * 2
        return y

    for f, saves in ((before, False), (after, True)):
        jf = nb.jit(f)
        r1, r2 = np.random.default_rng(3), np.random.default_rng(3)
        for x in (np.ones(3), -np.ones(3), np.ones(3), -np.ones(3), np.ones(3)):
            assert_bits(jf(x, r1), f(x, r2))
        assert jf.traces == 2
        assert bool(jf.program(np.ones(3), r1).rng_inputs) is saves


def test_static_values_equal_but_of_another_type_or_zero_sign_are_other_signatures():
    """1, 1.0, True and np.int64(1) are equal and hash alike, as are 0.0 and -0.0, but a function gives other
    results for them: each traces its own program (the fast path refused them, then the key matched)."""
    def f(x, n, z):
        return x * n, x / z, type(n).__name__

    x = np.arange(1.0, 4.0).astype(np.int32)
    arg_sets = [(x, n, z) for n in (1, 1.0, True, np.int64(1), (1,), (1.0,)) for z in (0.0, -0.0)]
    with np.errstate(divide="ignore"):
        jf = _alternate(lambda x, n, z: f(x, n[0] if type(n) is tuple else n, z), *arg_sets, traces=12,
                        static_argnums=(1, 2))
        for z in (float("nan"), float("nan"), np.float64("nan")):  # NaN != NaN, but one NaN is like another
            assert_bits(jf(x, 1, z), f(x, 1, z))
    assert jf.traces == 14


def test_dict_keys_equal_but_of_another_type_are_other_signatures():
    def f(d):
        return [(type(k).__name__, v * 2) for k, v in d.items()]

    v = np.ones(2)
    _alternate(f, ({1: v},), ({True: v},), ({1.0: v},), ({-0.0: v},), ({0.0: v},), ({"a": v},), ({("a", 1): v},),
               ({("a", 1.0): v},), traces=8)


def test_an_unhashable_static_leaf_is_never_matched_by_a_new_object_at_its_address():
    """An unhashable leaf is keyed by identity; the key keeps the object alive, so a new object (other contents)
    cannot take its id and replay its program."""
    f = nb.jit(lambda x, s: x + len(s))
    x = np.zeros(1)
    for i in range(6):  # program() traces without the fast path; each set is freed before the next is made
        s = set(range(i))
        assert f.program(x, s).run([x])[0] == i
        del s
    assert f.traces == 6
    for i in range(6):  # the same through calls
        s = [set(range(i))]
        assert_bits(f(x, s[0]), x + i)
        del s
    assert f.traces == 12
    kept = {1, 2}
    for _ in range(3):
        assert_bits(f(x, kept), x + 2)
    assert f.traces == 13


def test_deeply_nested_and_very_wide_pytrees():
    """Outputs nested deeper than Python's parser takes brackets (it refused the program), 10000 leaves."""
    deep = np.ones(2)
    for level in range(300):
        deep = [deep, {"k": (nb.tree_map(lambda x: x * level, deep),)}] if level % 60 == 0 else [deep]
    f = lambda t: nb.tree_map(lambda x: anp.sin(x) * 2, t)  # noqa: E731
    _alternate(f, (deep,), traces=1)
    wide = {f"w{i}": np.full(2, float(i)) for i in range(10000)}
    _alternate(f, (wide,), (deep,), traces=2, jf=nb.jit(f))


def test_call_into_destinations_of_another_layout_trace_their_own_program():
    """A program writes a result straight into a destination laid out as the result; a Fortran-order destination
    of the same shape and dtype was written into by the C-order program (a matmul's rounding follows the layout of
    its output), and its gradients differed from the engine's in the last bits."""
    jf = nb.jit(nb.value_and_grad(_mlp_loss))
    eager = nb.value_and_grad(_mlp_loss)
    params = _mlp_args(0, n=300)[0]
    c_order = [None] + [np.empty_like(p) for pair in params for p in pair]
    f_order = [None] + [np.asfortranarray(np.empty_like(p)) for pair in params for p in pair]
    for dests in (c_order, f_order, c_order, f_order):
        args = _mlp_args(1, n=300)
        assert_bits(jf.call_into(dests, *args), eager(*args))
    assert jf.traces == 2


def test_a_static_value_that_changes_every_call_keeps_a_bounded_cache_and_warns_once():
    """A Python int (or any object that is not an array or a float) is a static leaf: a new value is a new
    signature, traced anew. The cache kept every one (a loop passing its step count as an int, or a fresh
    object each call, grew without bound); it keeps the newest ``max_signatures`` and says once why, with
    what to do; results stay right, and a dropped signature is traced again."""
    import warnings

    class Scale:
        def __init__(self, v):
            self.v = v

    x = np.arange(3.0)
    f = nb.jit(lambda x, k: x * k + 1.0)
    g = nb.jit(lambda x, s: x * s.v)
    f.max_signatures = g.max_signatures = 8
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        for k in range(20):
            np.testing.assert_array_equal(f(x, k), x * k + 1.0)
            np.testing.assert_array_equal(f.call_into([None], x, k), x * k + 1.0)
            np.testing.assert_array_equal(g(x, Scale(k)), x * k)
    for h in (f, g):
        assert len(h._cache) <= 8 and len(h._checks) <= 8
    msgs = [m for m in w if m.category is RuntimeWarning]
    assert [str(m.message).count("np.asarray") for m in msgs] == [1, 1]  # once for each function
    assert {m.filename for m in msgs} == {__file__}
    traces = f.traces
    np.testing.assert_array_equal(f(x, 0), np.ones(3))  # dropped long ago: traced again, right
    assert f.traces == traces + 1
    np.testing.assert_array_equal(f(x, 19), x * 19 + 1.0)  # still kept: replayed
    assert f.traces == traces + 1


def test_programs_that_differ_only_in_a_float_share_one_compiled_source_and_keep_their_own_constant():
    """A float constant is named in the generated source, not written into it, so functions traced alike but
    for a penalty's weight (a sweep's points, a loop of fits) compile their program once; each replays with
    its own value, bit for bit."""
    x = np.linspace(-1.0, 1.0, 7)

    def make(c):
        return nb.jit(nb.value_and_grad(lambda w: anp.sum(anp.tanh(w * x) ** 2) + c * anp.sum(w * w)))

    w = np.array([0.3, -0.2, 0.1, 0.5, -0.4, 0.2, 0.7])
    fs = {c: make(c) for c in (0.0, 1e-3, 0.1, -2.5)}
    for c, f in fs.items():
        v, g = f(w)
        v2, g2 = f(w)  # replayed
        want_v, want_g = nb.value_and_grad(lambda w: anp.sum(anp.tanh(w * x) ** 2) + c * anp.sum(w * w))(w)
        assert v2 == want_v and np.array_equal(g2, want_g), c
    # one object, not only equal ones: code objects compare by value, so a set of them was one element with
    # every program compiling its own (equal) code
    codes = {id(f.program(w).replay.__code__) for f in fs.values()}
    assert len(codes) == 1


def test_threads_tracing_new_signatures_past_max_signatures_drop_each_old_one_once():
    """Two threads tracing new signatures of one function past ``max_signatures`` both picked the same oldest
    signature to drop, and the second ``del`` raised KeyError out of the user's call. A static leaf whose hash
    is slow (it lets the other thread run while a key is hashed) makes the window wide."""
    import threading
    import time
    import warnings

    class Slow:
        def __init__(self, v):
            self.v = v

        def __hash__(self):
            time.sleep(0.0005)
            return hash(self.v)

        def __eq__(self, other):
            return type(other) is Slow and other.v == self.v

    f = nb.jit(lambda x, s: x * s.v)
    f.max_signatures = 2
    x = np.arange(3.0)
    errors, wrong = [], []

    def work(base):
        try:
            for k in range(base, base + 25):
                if not np.array_equal(f(x, Slow(k)), x * k):
                    wrong.append(k)
        except Exception as e:  # noqa: BLE001 - any exception out of a call is the failure
            errors.append(repr(e))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        threads = [threading.Thread(target=work, args=(1000 * i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == [] and wrong == []
    assert len(f._cache) <= 2 and set(f._checks) <= set(f._cache)


def test_the_max_signatures_warning_names_the_callers_line_from_program_too():
    """The warning's stacklevel was fixed for __call__ and call_into (four frames down); from ``program()``,
    one frame shorter, it named the frame above the caller's."""
    import warnings

    x = np.arange(3.0)
    f = nb.jit(lambda x, k: x * k)
    f.max_signatures = 2
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        for k in range(4):
            f.program(x, k)
    msgs = [m for m in w if m.category is RuntimeWarning]
    assert len(msgs) == 1 and msgs[0].filename == __file__, [(m.filename, m.lineno) for m in msgs]


def test_a_signature_in_use_is_not_the_one_dropped_past_max_signatures():
    """The drop took the oldest *traced* signature: a training step's, traced first and called every other
    call, was dropped and traced again every ``max_signatures`` calls while another call leaked a new static
    value each time. The one dropped is the least recently used (a signature on the fast path counts as
    used), so the step is traced once."""
    import warnings

    step = nb.jit(lambda x, k: x * k)
    step.max_signatures = 4
    hot, small = np.ones(5), np.arange(3.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for k in range(40):
            np.testing.assert_array_equal(step(hot, 1.5), hot * 1.5)  # a float leaf: one signature, replayed
            np.testing.assert_array_equal(step(small, k), small * k)  # a new static int each call
    assert step.traces == 1 + 40
    assert len(step._cache) <= 4
    # called on the general path only (one signature among several, off the fast path), it is still kept
    g = nb.jit(lambda x, k: x * k)
    g.max_signatures = 6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for k in range(30):
            g(hot, 1.5)
            for j in range(5):
                g(small, 100 * k + j)
    assert g.traces == 1 + 150


def test_the_branches_of_one_signature_are_bounded_too():
    """``max_signatures`` bounded the signatures, not the programs under one: each outcome of Python control
    flow on traced values is a program of its own (guards), so a loop whose count depends on the input added a
    program per count, without bound, and every call tried them in turn. One signature keeps its
    ``max_branches`` most recently taken, says once why, and stays right."""
    import warnings

    def countdown(x):
        while anp.sum(x) > 0.5:
            x = x - 1.0
        return x

    f = nb.jit(countdown)
    f.max_branches = 4
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        for s in range(20):
            x = np.array([s + 0.25])
            np.testing.assert_array_equal(f(x), countdown(x))
    assert [len(p) for p in f._cache.values()] == [4]
    msgs = [m for m in w if m.category is RuntimeWarning]
    assert len(msgs) == 1 and "max_branches" in str(msgs[0].message) and msgs[0].filename == __file__
    traces = f.traces
    np.testing.assert_array_equal(f(np.array([19.25])), np.array([0.25]))  # a kept branch: replayed
    assert f.traces == traces
    np.testing.assert_array_equal(f(np.array([0.25])), np.array([0.25]))  # a dropped one: traced again, right
    assert f.traces == traces + 1


@pytest.mark.parametrize("limit", ["max_signatures", "max_branches"])
@pytest.mark.parametrize("bad", [0, -3, 2.5, "8", None, True])
def test_a_bad_cache_limit_is_refused_when_set_naming_it(limit, bad):
    """``max_signatures = 0`` or ``-3`` kept one signature silently (max(1, int(n))), ``2.5`` was truncated,
    ``"8"`` read as 8, and None raised int()'s TypeError from inside a later call's trace. A limit is a
    positive integer, checked when it is set, with nablanet.validate's one error naming it."""
    from nablanet.validate import NablanetError

    f = nb.jit(lambda x, k: x * k)
    with pytest.raises(NablanetError, match=f"jit {limit}: expected an integer >= 1"):
        setattr(f, limit, bad)
    assert getattr(f, limit) == getattr(nb.jit(abs), limit)  # unchanged
    setattr(f, limit, np.int64(3))
    assert getattr(f, limit) == 3 and type(getattr(f, limit)) is int


def test_the_compiled_sources_kept_for_reuse_are_bounded_in_size_not_only_in_number(monkeypatch):
    """Compiled sources are kept for the whole process, for programs yet to come, so their memory outlives the
    functions that made them; 512 of them were kept whatever their size (an unrolled loop of a few thousand
    steps has a source of ~1 MB and a code object twice that: hundreds of MB held for dead functions). The
    total size kept is bounded too; the newest stay, and a kept source is compiled once."""
    from nablanet.autodiff import capture

    monkeypatch.setattr(capture, "_CODE", {})
    monkeypatch.setattr(capture, "_code_chars", 0, raising=False)
    sources = [f"x{i} = '{'a' * 100_000}'\n" for i in range(60)]
    for s in sources:
        capture._compiled(s, "<test>")
    assert sum(len(s) for s in capture._CODE) <= 4_000_000
    assert sources[-1] in capture._CODE and sources[0] not in capture._CODE
    assert capture._compiled(sources[-1], "<test>") is capture._CODE[sources[-1]]
    huge = "y = '" + "b" * 5_000_000 + "'\n"  # larger than the budget alone: compiled, not kept
    ns = {}
    exec(capture._compiled(huge, "<test>"), ns)  # noqa: S102
    assert len(ns["y"]) == 5_000_000 and huge not in capture._CODE and sources[-1] in capture._CODE


@pytest.mark.parametrize("name", ["x²", "½", "ﬁt", "σ", "a b-c"])
def test_a_primitive_of_any_name_is_captured(name):
    """A primitive's name goes into the generated source as part of a function's name: a character Python
    takes in no identifier (``²``, ``½``) was a SyntaxError when compiling, and one that NFKC normalization
    changes (``ﬁ`` is read ``fi``) a NameError at the first replay."""
    from nablanet.extend import defvjp, primitive

    p = primitive(lambda x: x * 2.0)
    p.name = p.__name__ = name
    defvjp(p, lambda ans, x: lambda g: 2.0 * g)
    f = nb.jit(nb.value_and_grad(lambda x: anp.sum(p(x) ** 2)))
    x = np.array([0.5, -1.5])
    for _ in range(2):  # traced, replayed
        v, g = f(x)
        assert v == 10.0 and g.tolist() == [4.0, -12.0]


def test_program_of_a_call_taking_a_branch_not_yet_traced_traces_it():
    """``program()`` traced only an unknown signature: for a known one whose call takes a branch no program has
    yet (an ``if`` on a traced value going the other way), it raised 'this call cannot be captured (it reads a
    traced value from outside)', which is false; it traces the branch, as a call would."""

    def f(x):
        if anp.sum(x) > 0:
            return x * 2.0
        return x - 1.0

    jf = nb.jit(f)
    up = jf.program(np.ones(2))
    down = jf.program(-np.ones(2))
    assert jf.traces == 2 and down is not up
    assert down.run([-np.ones(2)]).tolist() == [-2.0, -2.0]
    assert jf.program(np.ones(2)) is up and jf.program(-np.ones(2)) is down and jf.traces == 2


def test_program_leaves_a_generator_argument_where_it_was():
    """``program()`` finds the program a call replays by running them (and traces, if needed, by running the
    function): with a Generator among the arguments that drew from it, so looking at a training step's program
    changed the dropout masks of the training after it. The Generators' states are put back."""
    from nablanet.nn.functional import dropout_mask

    f = nb.jit(lambda x, rng: x * dropout_mask(x, rng, 0.5))
    x = np.ones(64)
    for traced_before in (False, True):
        rng, twin = np.random.default_rng(3), np.random.default_rng(3)
        if traced_before:
            f(x, np.random.default_rng(0))
        prog = f.program(x, rng)
        assert rng.bit_generator.state == twin.bit_generator.state
        np.testing.assert_array_equal(f(x, rng), x * dropout_mask(x, twin, 0.5))
        assert prog is f.program(x, rng)


def test_copy_of_an_input_is_a_fresh_array():
    x = signed((4,), 1)
    jf = check_replays(lambda x: x.copy(), (x,), (signed((4,), 2),))
    assert jf(x) is not x and not np.shares_memory(jf(x), x)
    check_all_modes(lambda x: anp.copy(x) * x, (x,), (signed((4,), 3),))
