"""nablanet against HIPS autograd on random programs.

Each program is drawn from a fixed seed: 5 to 15 steps, each applying an
operation from a table of (nablanet, autograd) twins to earlier values, starting
from three float64 inputs of shapes (2, 3), (3,) and ().  Every value keeps a
shape among (), (1,), (3,), (1, 3), (2, 1), (2, 3), so any two broadcast, and the
operations keep their arguments in safe domains (logs of 1 + a^2, arcsin of
0.9 tanh(a), ...).  Gradients (reverse mode), Jacobian-vector products (forward
mode) and second derivatives (Hessian-vector products in three mode
combinations, and a full Hessian) must agree with autograd's to 1e-10, relative
to the size of the result.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import nablanet as nb
import nablanet.numpy as anp

autograd = pytest.importorskip("autograd")
agnp = pytest.importorskip("autograd.numpy")
ag_tracer = pytest.importorskip("autograd.tracer")

RTOL = 1e-10
N_PROGRAMS = 40
SEED = 20240611

C = np.array([[0.3, -1.1, 0.7], [1.9, 0.2, -0.6]])  # fixed, non-constant offsets and weights
K = np.array([[0.5, -0.2, 0.9], [-0.7, 0.4, 0.1]])
W = np.array([[1.3, -0.4, 0.8], [0.2, 1.1, -0.9]])
MASK = np.array([[True, False, True], [False, True, False]])


def _ag_logsumexp(a, axis=None, keepdims=False):
    # shifted by a constant (the max of the plain values), which changes no derivative
    shift = np.max(ag_tracer.getval(a), axis=axis, keepdims=True)
    out = agnp.log(agnp.sum(agnp.exp(a - shift), axis=axis, keepdims=True)) + shift
    return out if keepdims else agnp.squeeze(out, axis=axis)


NB = SimpleNamespace(
    np=anp,
    logsumexp=anp.logsumexp,
    broadcast=lambda a: anp.broadcast_to(a, (2, 3)),
    vdot=anp.vdot,
    astype=lambda a: anp.astype(a, np.float64),
    name="nablanet",
)
AG = SimpleNamespace(
    np=agnp,
    logsumexp=_ag_logsumexp,
    # autograd's broadcast_to cannot add leading axes, and its vdot cannot take two traced
    # arguments: the same mathematics, spelled with other primitives
    broadcast=lambda a: a + np.zeros((2, 3)),
    vdot=lambda a, b: agnp.sum(agnp.ravel(a) * agnp.ravel(b)),
    astype=lambda a: a + 0.0,  # autograd's astype has no forward-mode rule
    name="autograd",
)


def full(m, a):
    """Any value of the pool, broadcast to (2, 3)."""
    return m.broadcast(a)


def vec(m, a):
    """Any value of the pool, as a (3,) vector."""
    return m.np.mean(full(m, a), axis=0)


def last_axis(a):
    return -1 if np.ndim(a) else None


def first_axis(a):
    return 0 if np.ndim(a) else None


# name -> (arity, f(m, *operands)); the result's shape is again one of the pool's shapes
OPS = {
    # elementwise, on safe domains
    "exp_tanh": (1, lambda m, a: m.np.exp(m.np.tanh(a))),
    "expm1_sin": (1, lambda m, a: m.np.expm1(m.np.sin(a))),
    "exp2_cos": (1, lambda m, a: m.np.exp2(m.np.cos(a + 0.5))),
    "log": (1, lambda m, a: m.np.log(1.0 + a * a + 0.5 * m.np.tanh(a))),
    "log1p": (1, lambda m, a: m.np.log1p(m.np.square(a) + 0.5 * m.np.tanh(a))),
    "log2": (1, lambda m, a: m.np.log2(2.0 + m.np.sin(a))),
    "log10": (1, lambda m, a: m.np.log10(1.5 + m.np.cos(a))),
    "sqrt": (1, lambda m, a: m.np.sqrt(1.0 + a**2 + 0.5 * m.np.tanh(a))),
    "square_tanh": (1, lambda m, a: m.np.square(m.np.tanh(a) + 0.5)),
    "reciprocal": (1, lambda m, a: m.np.reciprocal(2.0 + m.np.sin(a))),
    "abs": (1, lambda m, a: m.np.abs(a)),
    "sign": (1, lambda m, a: m.np.sign(a) * a**2 + a),
    "negative": (1, lambda m, a: -a),
    "sin": (1, lambda m, a: m.np.sin(a)),
    "cos": (1, lambda m, a: m.np.cos(a)),
    "tan": (1, lambda m, a: m.np.tan(m.np.tanh(a))),
    "arcsin": (1, lambda m, a: m.np.arcsin(0.9 * m.np.tanh(a))),
    "arccos": (1, lambda m, a: m.np.arccos(0.9 * m.np.tanh(a))),
    "arctan": (1, lambda m, a: m.np.arctan(a)),
    "sinh": (1, lambda m, a: m.np.sinh(2.0 * m.np.tanh(a))),
    "cosh": (1, lambda m, a: m.np.cosh(m.np.sin(a) + 0.5)),
    "tanh": (1, lambda m, a: m.np.tanh(a)),
    "arcsinh": (1, lambda m, a: m.np.arcsinh(a)),
    "arctanh": (1, lambda m, a: m.np.arctanh(0.9 * m.np.tanh(a))),
    "rpow": (1, lambda m, a: 2.0 ** m.np.tanh(a)),
    "pow_float": (1, lambda m, a: (1.5 + m.np.sin(a)) ** 2.5),
    "clip": (1, lambda m, a: m.np.clip(a, -1.0, 1.0) + 0.01 * a),  # no later op sees a value exactly at a bound
    "where": (1, lambda m, a: m.np.where(a > 0, a, m.np.exp(a) - 1.0)),
    "leaky_maximum": (1, lambda m, a: m.np.maximum(a, 0.1 * a)),
    "astype": (1, lambda m, a: m.astype(a) * 1.5),
    # binary, broadcasting
    "add": (2, lambda m, a, b: a + b),
    "subtract": (2, lambda m, a, b: m.np.subtract(a, b)),
    "multiply": (2, lambda m, a, b: a * b),
    "divide": (2, lambda m, a, b: a / (2.0 + m.np.tanh(b))),
    "power": (2, lambda m, a, b: m.np.power(1.5 + m.np.sin(a), m.np.cos(b))),
    "logaddexp": (2, lambda m, a, b: m.np.logaddexp(a, b)),
    "maximum": (2, lambda m, a, b: m.np.maximum(a, b)),
    "minimum": (2, lambda m, a, b: m.np.minimum(a, b)),
    # (autograd's where does not sum a broadcast argument's adjoint back: give it full shapes)
    "where2": (2, lambda m, a, b: m.np.where(full(m, a) > C, m.np.sin(full(m, b)), full(m, a))),
    # reductions (over all axes, or one axis with keepdims)
    "sum": (1, lambda m, a: m.np.sum(a, axis=last_axis(a), keepdims=True)),
    "sum_all": (1, lambda m, a: m.np.sum(a)),
    "mean": (1, lambda m, a: m.np.mean(a, axis=first_axis(a), keepdims=True)),
    "prod": (1, lambda m, a: m.np.prod(1.0 + 0.5 * m.np.tanh(a), axis=last_axis(a), keepdims=True)),
    "max": (1, lambda m, a: m.np.max(a, axis=last_axis(a), keepdims=True)),
    "min_all": (1, lambda m, a: m.np.min(a)),
    "var": (1, lambda m, a: m.np.var(full(m, a) * C + K, axis=-1, keepdims=True)),
    "std": (1, lambda m, a: m.np.std(full(m, a) * C + K, axis=-1, keepdims=True)),
    "logsumexp": (1, lambda m, a: m.logsumexp(a, axis=last_axis(a), keepdims=True)),
    # shapes, joins, indexing
    "transpose": (1, lambda m, a: m.np.reshape(m.np.transpose(full(m, a) * C), (2, 3))),
    "swapaxes_matmul": (1, lambda m, a: full(m, a) @ (m.np.swapaxes(full(m, a), 0, 1) @ K) / 3.0 + a),
    "moveaxis_stack": (2, lambda m, a, b: m.np.moveaxis(m.np.stack([full(m, a), full(m, b)]), 0, -1) @ np.array([0.6, -0.3])),
    "expand_squeeze": (1, lambda m, a: m.np.squeeze(m.np.expand_dims(a, 0), axis=0)),
    "ravel_reverse": (1, lambda m, a: m.np.reshape(m.np.ravel(full(m, a) * C)[::-1], (2, 3))),
    "concatenate": (2, lambda m, a, b: m.np.concatenate([full(m, a)[:, :1], full(m, b)[:, 1:]], axis=1)),
    "hstack": (2, lambda m, a, b: m.np.hstack([vec(m, a)[:2], vec(m, b)[2:]])),
    "vstack": (2, lambda m, a, b: m.np.vstack([vec(m, a), vec(m, b)])),
    "getitem_repeated": (1, lambda m, a: full(m, a)[:, [2, 0, 0]] * C),
    "getitem_pairs": (1, lambda m, a: m.np.reshape((full(m, a) * C)[np.array([1, 1, 0]), np.array([2, 2, 0])], (1, 3))),
    "getitem_mask": (1, lambda m, a: (full(m, a) * C)[MASK]),
    "array": (2, lambda m, a, b: m.np.array([vec(m, a)[0], vec(m, b)[1] * 2.0, vec(m, a)[2] + 1.0])),
    # linear algebra
    "matmul_outer": (3, lambda m, a, b, c: full(m, a) @ m.np.outer(vec(m, b), vec(m, c)) / 3.0),
    "dot": (2, lambda m, a, b: m.np.expand_dims(m.np.dot(full(m, a), vec(m, b)), -1)),
    "einsum3": (3, lambda m, a, b, c: m.np.einsum("ij,kj,kl->il", full(m, a), full(m, b) * C, full(m, c)) / 9.0),
    "einsum_ellipsis": (2, lambda m, a, b: m.np.einsum("...j,jk->...k", full(m, a), m.np.outer(vec(m, b), C[0]))),
    "inner": (2, lambda m, a, b: m.np.inner(vec(m, a), vec(m, b))),
    "vdot": (2, lambda m, a, b: m.vdot(full(m, a), full(m, b) + C)),
    "trace": (2, lambda m, a, b: m.np.trace(full(m, a) @ (full(m, b) * C).T)),
    "batched_matmul": (
        2,
        lambda m, a, b: (
            m.np.sum(m.np.stack([full(m, a), full(m, b)]) @ m.np.swapaxes(m.np.stack([full(m, b), C]), 1, 2), axis=0)
            @ full(m, a)
            / 6.0
            + a
        ),
    ),
}
OP_NAMES = sorted(OPS)
SHAPES = {(), (1,), (3,), (1, 1), (1, 3), (2, 1), (2, 3)}


def make_program(seed):
    """A list of (op name, operand positions); position i < 3 is an input, 3 + k the k-th step's result."""
    rng = np.random.default_rng([SEED, seed])
    steps = []
    for k in range(int(rng.integers(5, 16))):
        name = OP_NAMES[rng.integers(len(OP_NAMES))]
        arity = OPS[name][0]
        pool = 3 + k
        # the first operand is the previous result, so the steps form one chain; the others are earlier values
        first = pool - 1
        rest = [int(rng.integers(pool - 1)) for _ in range(arity - 1)]
        steps.append((name, [first, *rest]))
    return steps


def make_inputs(seed):
    rng = np.random.default_rng([SEED, seed, 1])
    return (rng.uniform(-1.5, 1.5, (2, 3)), rng.uniform(-1.5, 1.5, (3,)), np.float64(rng.uniform(-1.5, 1.5)))


def run(m, program, params):
    pool = list(params)
    for name, operands in program:
        out = OPS[name][1](m, *[pool[i] for i in operands])
        assert tuple(out.shape) in SHAPES, (m.name, name, out.shape)
        pool.append(out)
    return full(m, pool[-1])


def scalar(m, program):
    return lambda params: m.np.sum(run(m, program, params) * W)


def vector(m, program):
    return lambda params: run(m, program, params)


def tree_vdot(np_module, a, b):
    return sum(np_module.sum(x * y) for x, y in zip(a, b))


def assert_close(actual, expected, what):
    """Equal to RTOL relative to each entry, or to the largest entry (entries that cancel to ~0)."""
    actual = [np.asarray(a, dtype=float) for a in _leaves(actual)]
    expected = [np.asarray(e, dtype=float) for e in _leaves(expected)]
    assert len(actual) == len(expected)
    scale = max(float(np.max(np.abs(e), initial=0.0)) for e in expected)
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert a.shape == e.shape, f"{what}[{i}]: shape {a.shape} vs autograd's {e.shape}"
        assert np.all(np.isfinite(e)), f"{what}[{i}]: autograd's value is not finite"
        np.testing.assert_allclose(a, e, rtol=RTOL, atol=RTOL * scale + 1e-15, err_msg=f"{what}[{i}]")


def _leaves(x):
    return list(x) if isinstance(x, (tuple, list)) else [x]


PROGRAMS = {seed: make_program(seed) for seed in range(N_PROGRAMS)}
IDS = [f"program{seed}-{len(p)}ops" for seed, p in PROGRAMS.items()]


def test_programs_cover_the_table():
    used = {name for program in PROGRAMS.values() for name, _ in program}
    assert used == set(OPS), f"ops no program uses: {sorted(set(OPS) - used)}"
    assert all(5 <= len(p) <= 15 for p in PROGRAMS.values())
    assert len({tuple(n for n, _ in p) for p in PROGRAMS.values()}) == N_PROGRAMS


@pytest.mark.parametrize("seed", PROGRAMS, ids=IDS)
def test_values_and_gradients_agree(seed):
    program, params = PROGRAMS[seed], make_inputs(seed)
    assert_close(run(NB, program, params), run(AG, program, params), "value")
    value, g = nb.value_and_grad(scalar(NB, program))(params)
    expected = autograd.grad(scalar(AG, program))(params)
    assert value == pytest.approx(scalar(AG, program)(params), rel=RTOL)
    assert any(np.any(e != 0) for e in expected), "the program does not depend on its inputs"
    assert_close(g, expected, "grad")


@pytest.mark.parametrize("seed", PROGRAMS, ids=IDS)
def test_jvps_agree(seed):
    program, params = PROGRAMS[seed], make_inputs(seed)
    rng = np.random.default_rng([SEED, seed, 2])
    tangents = tuple(rng.standard_normal(np.shape(p)) for p in params)
    out, t = nb.jvp(vector(NB, program), (params,), (tangents,))
    expected_out, expected_t = autograd.make_jvp(vector(AG, program))(params)(tangents)
    assert_close(out, expected_out, "jvp value")
    assert_close(t, expected_t, "jvp tangent")
    # and forward mode agrees with nablanet's own reverse mode: <u, J v> = <J^T u, v>
    u = rng.standard_normal(t.shape)
    _, vjp_fn = nb.vjp(vector(NB, program), params)
    (ct,) = vjp_fn(u)
    assert np.sum(u * t) == pytest.approx(sum(np.sum(a * b) for a, b in zip(ct, tangents)), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("seed", PROGRAMS, ids=IDS)
def test_second_derivatives_agree(seed):
    program, params = PROGRAMS[seed], make_inputs(seed)
    rng = np.random.default_rng([SEED, seed, 3])
    v = tuple(rng.standard_normal(np.shape(p)) for p in params)
    f_nb, f_ag = scalar(NB, program), scalar(AG, program)

    # autograd: reverse over reverse, H v = grad_x <grad f(x), v>
    expected = autograd.grad(lambda p: tree_vdot(agnp, autograd.grad(f_ag)(p), v))(params)
    assert_close(nb.hvp(f_nb, params, v), expected, "hvp (forward over reverse)")
    assert_close(nb.grad(lambda p: tree_vdot(anp, nb.grad(f_nb)(p), v))(params), expected, "hvp (reverse over reverse)")
    hv_fwd = nb.grad(lambda p: nb.jvp(f_nb, (p,), (v,))[1])(params)
    assert_close(hv_fwd, expected, "hvp (reverse over forward)")
    # v^T H v by forward over forward
    vhv = nb.jvp(lambda p: nb.jvp(f_nb, (p,), (v,))[1], (params,), (v,))[1]
    expected_vhv = sum(np.sum(a * b) for a, b in zip(expected, v))
    scale = max(np.max(np.abs(e)) for e in expected) * sum(np.sum(np.abs(b)) for b in v)
    assert abs(vhv - expected_vhv) <= RTOL * max(scale, 1e-300), (vhv, expected_vhv)


def unflatten(m, theta):
    """The three inputs from one flat vector of their 6 + 3 + 1 entries."""
    return (m.reshape(theta[:6], (2, 3)), theta[6:9], theta[9])


@pytest.mark.filterwarnings("ignore:Output seems independent of input")  # autograd, on rows that are constant
@pytest.mark.parametrize("seed", PROGRAMS, ids=IDS)
def test_hessians_agree(seed):
    program = PROGRAMS[seed]
    theta = np.concatenate([np.ravel(p) for p in make_inputs(seed)])
    h_nb = nb.hessian(lambda t: scalar(NB, program)(unflatten(anp, t)))(theta)
    h_ag = autograd.hessian(lambda t: scalar(AG, program)(unflatten(agnp, t)))(theta)
    assert h_nb.shape == (10, 10)
    assert np.any(h_ag != 0)
    assert_close(h_nb, h_ag, "hessian")
    np.testing.assert_allclose(h_nb, h_nb.T, rtol=RTOL, atol=RTOL * np.max(np.abs(h_nb)))
