"""The engine's shortcuts on its per-operation path each compute what the general path computes.

The reverse sweep calls a rule with its one or two arguments spelt out, sums two plain-array
adjoints with np.add instead of add_any, and records a node's parents as positions (with a
table for the first eight arguments); add's and multiply's rules test unbroadcast's first case
themselves.  These tests pin each against the general path, including the cases the shortcuts
hand over to it (broadcasting, scalars, keywords, many arguments, higher order).
"""

import numpy as np
import pytest

import nablanet as nb
import nablanet.numpy as anp
from nablanet.autodiff import trace
from nablanet.autodiff.core import _POSITIONS, ReverseTrace, RTracer, _positions, backward_pass
from nablanet.extend import defjvp, defvjp, primitive
from nablanet.numpy._primitives import unbroadcast

SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((2, 3, 4), (3, 1)), ((), (3,)), ((4,), ())]


def _value(shape, seed):
    return np.random.default_rng(seed).normal(size=shape) if shape else np.float64(0.7 + seed)


@pytest.mark.parametrize("xs,ys", SHAPES)
@pytest.mark.parametrize("name", ["add", "multiply"])
def test_add_and_multiply_rules_are_unbroadcast_of_the_contribution(name, xs, ys):
    x, y = _value(xs, 1), _value(ys, 2)
    ans = getattr(np, name)(x, y)
    prim = getattr(anp, name)
    full = {"add": (lambda g: g, lambda g: g), "multiply": (lambda g: g * y, lambda g: x * g)}[name]
    gs = [np.random.default_rng(3).normal(size=np.shape(ans)), np.ones(np.shape(ans))]
    if np.shape(ans) == ():
        gs += [1.5, np.float64(-2.0)]  # a Python float (a user's cotangent) has no .shape
    for g in gs:
        for argnum, shape in ((0, np.shape(x)), (1, np.shape(y))):
            got = prim.vjps[argnum](ans, x, y)(g)
            want = unbroadcast(full[argnum](g), shape)
            assert np.shape(got) == shape and type(got) is type(want)
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("xs,ys", SHAPES)
def test_broadcast_add_and_multiply_check_to_second_order(xs, ys):
    x, y = _value(xs, 4), _value(ys, 5)
    nb.check_grads(lambda a, b: anp.sum(anp.tanh(a * b + a) * (b + 1.5)), (x, y), order=2)


def test_python_float_cotangent_of_a_scalar_output():
    out, vjp_fn = nb.vjp(lambda x: anp.tanh(x) * 0.5 + x * 2.0, np.float64(0.3))
    (g,) = vjp_fn(1.0)
    np.testing.assert_allclose(g, 0.5 * (1 - np.tanh(0.3) ** 2) + 2.0, rtol=1e-15)


@pytest.mark.parametrize("x", [np.float64(0.8), np.linspace(-1.0, 1.2, 5)])
def test_a_value_used_many_times_sums_its_adjoints_to_third_order(x):
    def f(x):
        return anp.sum(x * x * x + anp.sin(x) * x + x)

    d1 = 3 * x**2 + np.cos(x) * x + np.sin(x) + 1
    d2 = 6 * x - np.sin(x) * x + 2 * np.cos(x)
    d3 = 6 - np.cos(x) * x - 3 * np.sin(x)
    np.testing.assert_allclose(nb.grad(f)(x), d1, rtol=1e-14)
    np.testing.assert_allclose(nb.elementwise_grad(nb.elementwise_grad(f))(x), d2, rtol=1e-13)
    np.testing.assert_allclose(nb.elementwise_grad(nb.elementwise_grad(nb.elementwise_grad(f)))(x), d3, rtol=1e-12)


def test_adjoints_of_different_kinds_are_summed_by_add_any():
    # a 0-d array and a NumPy scalar reach the same node: not two plain ndarrays, so add_any sums them
    tr = ReverseTrace()
    x = tr.new_input(np.array(0.5))
    y = x * 3.0
    adj = backward_pass([(y, np.array(2.0)), (x, np.float64(1.0))], tr)
    assert adj[x] == 7.0


def _three(a, b, c, scale=1.0):
    return scale * a * b + c


@pytest.mark.parametrize("scale", [None, 2.0])
def test_rules_receive_their_arguments_and_keywords_for_one_two_and_three_arguments(scale):
    one = primitive(lambda a: a**3)
    defvjp(one, lambda ans, a: lambda g: g * 3 * a**2)
    defjvp(one, lambda g, ans, a: g * 3 * a**2)
    two = primitive(lambda a, b: a * b**2)
    defvjp(two, lambda ans, a, b: lambda g: g * b**2, lambda ans, a, b: lambda g: g * 2 * a * b)
    defjvp(two, lambda g, ans, a, b: g * b**2, lambda g, ans, a, b: g * 2 * a * b)
    three = primitive(_three)
    defvjp(three, lambda ans, a, b, c, scale=1.0: lambda g: g * scale * b,
           lambda ans, a, b, c, scale=1.0: lambda g: g * scale * a, lambda ans, a, b, c, scale=1.0: lambda g: g)
    defjvp(three, lambda g, ans, a, b, c, scale=1.0: g * scale * b, lambda g, ans, a, b, c, scale=1.0: g * scale * a,
           lambda g, ans, a, b, c, scale=1.0: g)
    kw = {} if scale is None else {"scale": scale}

    def f(a, b, c):
        return anp.sum(three(one(a), two(a, b), c, **kw))

    a, b, c = np.array([0.3, -1.1]), np.array([0.7, 0.2]), np.array([1.5, -0.4])
    nb.check_grads(f, (a, b, c), order=2)
    s = 1.0 if scale is None else scale
    ga, gb, gc = nb.grad(f, argnums=(0, 1, 2))(a, b, c)
    np.testing.assert_allclose(ga, s * (3 * a**2 * a * b**2 + a**3 * b**2), rtol=1e-14)
    np.testing.assert_allclose(gb, s * a**3 * 2 * a * b, rtol=1e-14)
    np.testing.assert_allclose(gc, np.ones(2))


@pytest.mark.parametrize("n", [3, 7, 8, 9, 12])
def test_nodes_with_many_traced_arguments(n):
    # concatenate's node has the axis and then one argument per array: past eight, the positions
    # of its parents are computed rather than read from the table
    def f(x):
        return anp.sum(anp.concatenate([x * (k + 1.0) for k in range(n)]) ** 2)

    x = np.array([0.4, -0.9])
    np.testing.assert_allclose(nb.grad(f)(x), 2 * x * sum((k + 1.0) ** 2 for k in range(n)), rtol=1e-14)
    tape = trace(f, x)
    cat = next(node for node in tape.nodes if node.op == "concatenate")
    assert [i for i, _ in cat.parents] == list(range(1, n + 1))


def test_positions_of_the_set_bits():
    assert len(_POSITIONS) == 256
    for m in range(1 << 10):
        want = tuple(k for k, bit in enumerate(reversed(bin(m)[2:])) if bit == "1")
        assert _positions(m) == want
        if m < 256:
            assert _POSITIONS[m] == want


def test_every_slot_of_a_reverse_node_is_set_on_inputs_and_operations():
    tr = ReverseTrace()
    x = tr.new_input(np.ones(3))
    y = anp.add(anp.tanh(x), 1.0)
    slots = ("_value", "_trace") + RTracer.__slots__
    for t in (x, y):
        for name in slots:
            getattr(t, name)  # AttributeError if one of the two ways of making a node forgot it
    assert [t._idx for t in tr.tape] == list(range(len(tr.tape)))
    assert y._pos == (0,) and y._in[0] is tr.tape[1] and y._kw is None
