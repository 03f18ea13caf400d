"""nablanet.extend.vspace: the vector spaces of gradients, with HIPS autograd's methods and numbers."""

from __future__ import annotations

import collections
import functools
import itertools

import numpy as np
import pytest

import nablanet as nb
import nablanet.numpy as anp
from nablanet.extend import ArrayVSpace, ComplexArrayVSpace, ContainerVSpace, VSpace, vspace
from nablanet.test_util import check_grads

Pair = collections.namedtuple("Pair", "a b")

VALUES = {
    "array": np.zeros((3, 2)),
    "0-d": 0.0,
    "numpy scalar": np.float64(2.0),
    "float32": np.zeros(4, np.float32),
    "complex": 1j * np.zeros((2, 1)),
    "complex scalar": 1 + 2j,
    "list": [1.0, np.zeros((2, 1))],
    "tuple": (1.0, np.zeros((2, 1))),
    "dict": {"a": 1.0, "b": np.zeros((2, 1))},
    "mixed": {"x": [0.0, np.zeros((3, 1))], "y": ({"a": 0.0j}, [0.0])},
    "namedtuple": Pair(np.zeros(2), [1j * np.ones(1)]),
}
SIZES = {"array": 6, "0-d": 1, "numpy scalar": 1, "float32": 4, "complex": 4, "complex scalar": 2, "list": 3,
         "tuple": 3, "dict": 3, "mixed": 7, "namedtuple": 4}


def _close(a, b, tol=1e-9):
    return abs(a - b) <= tol * (1 + abs(a) + abs(b))


@pytest.mark.parametrize("name", VALUES)
def test_the_axioms_and_the_basis(name):
    rng = np.random.default_rng(0)
    vs = vspace(VALUES[name])
    assert vs.size == SIZES[name]
    x, y, z = (vs.randn(rng) for _ in range(3))
    a, b = (float(v) for v in rng.normal(size=2))  # Python floats, as NumPy keeps float32 with them
    ip, add, mul = vs.inner_prod, vs.add, vs.scalar_mul
    tol = 1e-6 if name == "float32" else 1e-12

    def same(u, v):  # equal as vectors: the same coordinates
        return np.allclose(vs.flatten(u), vs.flatten(v), rtol=tol, atol=tol)

    assert same(add(x, add(y, z)), add(add(x, y), z)) and same(add(x, y), add(y, x))
    assert same(add(vs.zeros(), x), x) and same(add(x, mul(x, -1.0)), vs.zeros())
    assert same(mul(x, a * b), mul(mul(x, a), b)) and same(mul(x, 1.0), x)
    assert same(mul(add(x, y), a), add(mul(x, a), mul(y, a))) and same(mul(x, a + b), add(mul(x, a), mul(x, b)))
    assert _close(ip(x, y), ip(y, x), tol) and _close(ip(mul(x, a), y), a * ip(x, y), tol) and ip(x, x) > 0
    assert ip(vs.zeros(), vs.zeros()) == 0
    # the basis: size vectors, orthonormal, summing to ones(), each the unit coordinate vector
    basis = list(vs.standard_basis())
    assert len(basis) == vs.size
    gram = np.array([[ip(u, v) for v in basis] for u in basis])
    np.testing.assert_array_equal(gram, np.eye(vs.size))
    assert same(functools.reduce(add, basis), vs.ones())
    np.testing.assert_array_equal(np.array([vs.flatten(e) for e in basis]), np.eye(vs.size))
    # coordinates: the inner product is the dot product of the coordinates
    assert _close(ip(x, y), float(vs.flatten(x) @ vs.flatten(y)), tol)
    # closure: everything made or computed here is in the same space
    for v in [vs.zeros(), vs.ones(), x, add(x, y), mul(x, a), vs.covector(x), *basis, *vs.examples(2, rng)]:
        assert vspace(v) == vs
    assert not vs != vspace(vs.ones())


@pytest.mark.parametrize("name", ["array", "complex", "mixed", "namedtuple"])
def test_the_arithmetic_is_differentiable(name):
    rng = np.random.default_rng(1)
    vs = vspace(VALUES[name])
    x, y = vs.randn(rng), vs.randn(rng)
    check_grads(vs.add)(x, y)
    check_grads(vs.scalar_mul)(x, 0.7)
    check_grads(vs.inner_prod)(x, y)
    check_grads(vs.covector)(x)
    check_grads(vs.flatten)(x)
    check_grads(lambda u, v: vs.mut_add(u, v))(x, y)


def test_the_numbers_are_autograds():
    """size, inner products, covectors, ones and the basis (in order) as autograd's vspace gives them."""
    ag_vspace = pytest.importorskip("autograd.core").vspace
    pytest.importorskip("autograd.numpy")  # registers autograd's array spaces
    rng = np.random.default_rng(2)
    for name, value in VALUES.items():
        if name == "namedtuple":  # autograd has no space for a user's namedtuple
            continue
        vs, avs = vspace(value), ag_vspace(value)
        x, y = vs.randn(rng), vs.randn(rng)
        assert vs.size == avs.size, name
        assert _close(vs.inner_prod(x, y), avs.inner_prod(x, y)), name
        for ours, theirs in [(vs.covector(x), avs.covector(x)), (vs.ones(), avs.ones()),
                             (list(vs.standard_basis()), list(avs.standard_basis()))]:
            lo, lt = nb.tree_flatten(ours)[0], nb.tree_flatten(theirs)[0]
            assert len(lo) == len(lt), name
            for u, v in zip(lo, lt):
                np.testing.assert_array_equal(u, v)


def test_spaces_compare_by_structure_shape_and_dtype():
    assert vspace(np.zeros(3)) == vspace(np.ones(3)) == ArrayVSpace(np.ones(3))
    assert vspace(np.zeros(3)) != vspace(np.zeros(4))
    assert vspace(np.zeros(3)) != vspace(np.zeros(3, np.float32))
    assert vspace(np.zeros(3)) != vspace(np.zeros(3, complex))
    assert isinstance(vspace(np.zeros(3, complex)), ComplexArrayVSpace)
    assert vspace(1.0) == vspace(np.zeros(())) and vspace(1j) == vspace(np.zeros((), complex))
    assert vspace([1.0, 2.0]) != vspace((1.0, 2.0)) != vspace({"a": 1.0, "b": 2.0})
    assert vspace({"a": 1.0, "b": 2.0}) == vspace({"b": 1.0, "a": 2.0})  # a dict's key order aside, as autograd's
    assert vspace({"a": 1.0, "b": 2.0}) != vspace({"a": 1.0, "c": 2.0})
    assert len({vspace(np.zeros(3)), vspace(np.ones(3)), vspace([1.0]), vspace([2.0])}) == 2
    vs = vspace({"W": np.zeros((2, 2)), "b": [0.0]})
    assert isinstance(vs, ContainerVSpace) and vs.shape == {"W": vspace(np.zeros((2, 2))), "b": [vspace(0.0)]}
    assert (vspace(np.zeros((2, 3))).shape, vspace(np.zeros((2, 3))).ndim) == ((2, 3), 2)
    assert vspace(np.zeros(2, np.float32)).dtype == np.float32 and vspace(np.zeros(2, np.float32)).iscomplex is False
    assert vspace([0.0, 0j]).iscomplex and not vspace([0.0, 0.0]).iscomplex


def test_a_traced_value_is_in_the_space_of_what_it_stands_for():
    seen = []

    def f(x, z):
        seen.append((vspace(x), vspace(z), vspace([x, {"z": z}])))
        return anp.sum(x * anp.real(z))

    x, z = np.ones((2, 3)), np.ones(3, complex)
    nb.grad(f)(x, z)
    nb.jvp(f, (x, z), (x, z))
    nb.jit(f)(x, z)
    nb.grad(nb.grad(lambda x: f(x, z) ** 2))(1.5)  # traced twice over, and a float
    want = (vspace(x), vspace(z), vspace([x, {"z": z}]))
    assert seen[:3] == [want] * 3
    assert seen[3][0] == vspace(1.5)


def test_mut_add_adds_in_place_into_a_plain_array_only():
    vs = vspace(np.zeros(3))
    a = np.ones(3)
    out = vs.mut_add(a, np.full(3, 2.0))
    assert out is a and np.array_equal(a, [3.0, 3.0, 3.0])
    assert np.array_equal(vs.mut_add(None, np.ones(3)), np.ones(3))
    frozen = np.ones(3)
    frozen.flags.writeable = False
    assert np.array_equal(vs.mut_add(frozen, np.ones(3)), [2.0, 2.0, 2.0]) and np.array_equal(frozen, np.ones(3))
    tree = [np.zeros(2), {"k": np.zeros(1)}]
    out = vspace(tree).mut_add(tree, [np.ones(2), {"k": np.ones(1)}])
    assert out[0] is tree[0] and np.array_equal(tree[1]["k"], [1.0])
    # into a traced value it is a plain (differentiable) sum, never a write into the tape's value
    g = nb.grad(lambda x: anp.sum(vs.mut_add(x * 2.0, x) ** 2))(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(g, 18.0 * np.array([1.0, 2.0, 3.0]))


def test_randn_draws_from_a_generator_or_numpys_global_one():
    vs = vspace({"a": np.zeros((2, 2)), "c": 0j})
    a, b = vs.randn(np.random.default_rng(5)), vs.randn(np.random.default_rng(5))
    assert np.array_equal(a["a"], b["a"]) and a["c"] == b["c"] and a["c"].imag != 0
    np.random.seed(7)
    c = vspace(np.zeros(3)).randn()
    np.random.seed(7)
    assert np.array_equal(c, vspace(np.zeros(3)).randn())
    assert vspace(np.zeros(3, np.float32)).randn().dtype == np.float32


def test_values_without_a_space_are_refused_by_name():
    with pytest.raises(TypeError, match="type int"):
        vspace(3)
    with pytest.raises(TypeError, match="dtype int64"):
        vspace(np.arange(3))
    with pytest.raises(TypeError, match="type str"):
        vspace({"a": 1.0, "name": "x"})
    with pytest.raises(TypeError, match="VSpace.register"):
        vspace(object())
    vs = vspace([1.0, np.zeros(2)])
    with pytest.raises(ValueError, match="inner_prod"):
        vs.inner_prod([1.0, np.zeros(2)], (1.0, np.zeros(2)))
    with pytest.raises(ValueError, match="add"):
        vs.add([1.0, np.zeros(2)], [1.0])


def test_register_gives_a_type_a_space():
    class Celsius(float):
        pass

    try:
        VSpace.register(Celsius, lambda t: ArrayVSpace(float(t)))
        assert vspace(Celsius(21.5)) == vspace(0.0)
        assert vspace([Celsius(1.0), 2.0]) == vspace([0.0, 0.0])
    finally:
        del VSpace.mappings[Celsius]
    assert list(itertools.islice(vspace(np.zeros(2)).standard_basis(), 1))[0].tolist() == [1.0, 0.0]


def test_a_dict_is_the_same_space_whatever_its_key_order_as_in_autograd():
    # the same keys in another order made another space: ==, add and inner_prod refused the value
    vs = vspace({"a": 1.0, "b": {"c": np.ones(2), "d": 2.0}})
    other = {"b": {"d": 3.0, "c": np.array([1.0, -2.0])}, "a": 5.0}
    assert vs == vspace(other) and hash(vs) == hash(vspace(other)) and len({vs, vspace(other)}) == 1
    total = vs.add(other, vs.ones())
    assert list(total) == ["a", "b"] and list(total["b"]) == ["c", "d"]  # in the space's own order
    assert total["a"] == 6.0 and total["b"]["c"].tolist() == [2.0, -1.0] and total["b"]["d"] == 4.0
    assert vs.inner_prod(other, vs.ones()) == 5.0 + 3.0 + 1.0 - 2.0
    assert vs.flatten(other).tolist() == [5.0, 1.0, -2.0, 3.0]
    assert vs != vspace({"a": 1.0, "b": {"e": np.ones(2), "d": 2.0}}) and vs != vspace({"a": 1.0, "b": [np.ones(2), 2.0]})
    with pytest.raises(ValueError, match="is not in ContainerVSpace"):
        vs.add({"a": 1.0, "b": {"e": np.ones(2), "d": 2.0}}, vs.ones())
    agx = pytest.importorskip("autograd.extend")
    assert agx.vspace({"a": 1.0, "b": 2.0}) == agx.vspace({"b": 2.0, "a": 1.0})  # autograd's answer


def test_a_leaf_without_a_space_is_named_by_its_place_in_the_tree():
    for tree, where in [({"w": [np.ones(2), np.arange(3)]}, r"leaf \['w'\]\[1\]"), ([1.0, (2.0, "x")], r"leaf \[1\]\[1\]"),
                        (Pair(1.0, {3: True}), r"leaf \[1\]\[3\]")]:
        with pytest.raises(TypeError, match=where + " of the tree: no vector space for a value of type"):
            vspace(tree)


def test_a_container_subclass_is_refused_by_name_not_by_recursion():
    # an OrderedDict (a pytree leaf) was given a ContainerVSpace whose one leaf was itself: RecursionError
    class Row(list):
        pass

    for value, base in [(collections.OrderedDict(a=1.0), "dict"), (collections.defaultdict(float, a=1.0), "dict"),
                        (Row([1.0]), "list"), ({"x": collections.OrderedDict(a=1.0)}, "dict")]:
        with pytest.raises(TypeError, match=f"a subclass of {base}: .*give {base}\\(value\\) instead"):
            vspace(value)
    assert vspace(Pair(1.0, [2.0])).size == 2  # namedtuples are containers
