"""autograd's module layout in nablanet: nablanet.core, .tracer, .wrap_util, .util and the top-level names, so
code (and autograd's own test suite) written for ``autograd`` runs with the word renamed ``nablanet``."""

from __future__ import annotations

import builtins
import importlib
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import nablanet as nb
import nablanet.numpy as anp
from nablanet import NotDifferentiableError
from nablanet.core import AUTOGRAD_MODULES, make_jvp, make_vjp, primitive_jvps, primitive_vjps
from nablanet.extend import Primitive, defjvp, defvjp, vspace
from nablanet.test_util import check_grads
from nablanet.wrap_util import unary_to_nary

ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(0)

# autograd 1.9.1's top-level names (its modules: nablanet.core.AUTOGRAD_MODULES)
AUTOGRAD_TOP = [
    "checkpoint", "deriv", "dict", "elementwise_grad", "grad", "grad_and_aux", "grad_named", "hessian",
    "hessian_tensor_product", "hessian_vector_product", "holomorphic_grad", "isinstance", "jacobian", "list",
    "make_ggnvp", "make_hvp", "make_jvp", "make_vjp", "multigrad_dict", "primitive", "tensor_jacobian_product",
    "tuple", "type", "value_and_grad", "vector_jacobian_product",
]


def test_nablanet_has_autograds_modules_and_top_level_names():
    for m in AUTOGRAD_MODULES:
        module = importlib.import_module(f"nablanet.{m}")
        parent, _, child = f"nablanet.{m}".rpartition(".")
        if m != "misc.flatten":  # as in autograd, nablanet.misc.flatten is the function of module misc.flatten
            assert getattr(sys.modules[parent], child) is module, m
    for name in AUTOGRAD_TOP:
        assert getattr(nb, name) is not None, name
    import nablanet.builtins as nbb
    import nablanet.core as core

    assert (nb.tuple, nb.list, nb.dict, nb.isinstance, nb.type) == \
        (nbb.tuple, nbb.list, nbb.dict, nbb.isinstance, nbb.type)
    assert nb.primitive is core.primitive and nb.core is core and nb.wrap_util is importlib.import_module(
        "nablanet.wrap_util")
    assert {"tuple", "isinstance", "primitive", "core", "tracer"} <= set(dir(nb))
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        nb.no_such_name  # noqa: B018


def test_misc_flatten_and_tracers_are_autograds_modules_of_misc():
    import nablanet.misc as misc
    from nablanet.misc.flatten import flatten, flatten_func
    from nablanet.misc.tracers import const_graph

    assert (misc.flatten, misc.flatten_func, misc.const_graph) == (flatten, flatten_func, const_graph)
    import nablanet.misc.flatten  # noqa: F401  (the submodule import leaves the attribute the function)

    assert callable(misc.flatten) and misc.flatten(np.ones(3))[0].shape == (3,)


def test_the_list_of_autograds_names_is_autograds():
    autograd = pytest.importorskip("autograd")
    import pkgutil

    public = {n for n in dir(autograd) if not n.startswith("_")}
    modules = {m.name.removeprefix("autograd.") for m in pkgutil.walk_packages(autograd.__path__, "autograd.")}
    private = {m for m in modules if m.rpartition(".")[2].startswith("numpy_")}
    assert modules - private == set(AUTOGRAD_MODULES)
    assert public - set(AUTOGRAD_MODULES) == set(AUTOGRAD_TOP)


def test_star_import_gives_autograds_names_but_never_shadows_builtins():
    namespace = {}
    exec("from nablanet import *", namespace)
    shadowing = {n for n in namespace if n != "__builtins__" and hasattr(builtins, n)}
    assert shadowing == set()
    assert set(AUTOGRAD_TOP) - {"tuple", "list", "dict", "isinstance", "type"} <= set(namespace)
    assert namespace["primitive"] is nb.primitive
    exec("from nablanet import *\nok = isinstance([], list) and type(1) is int and tuple('ab') == ('a', 'b')",
         namespace)
    assert namespace["ok"] is True
    assert all(hasattr(nb, n) for n in nb.__all__)


# ----------------------------------------------------------------------------
# nablanet.core
# ----------------------------------------------------------------------------


def test_core_make_vjp_is_autograds_unary_form():
    x = RNG.normal(size=(3, 2))
    g = RNG.normal(size=(3, 2))
    vjp, ans = make_vjp(lambda x: anp.sin(x) * x, x)
    np.testing.assert_allclose(ans, np.sin(x) * x)
    np.testing.assert_allclose(vjp(g), g * (np.cos(x) * x + np.sin(x)), rtol=1e-12)
    np.testing.assert_allclose(vjp(2 * g), 2 * g * (np.cos(x) * x + np.sin(x)), rtol=1e-12)  # reusable
    # a result independent of x: the cotangent is zeros of x's space
    vjp, ans = make_vjp(lambda x: 3.0, x)
    assert ans == 3.0
    np.testing.assert_array_equal(vjp(1.0), np.zeros((3, 2)))
    # a pytree argument
    vjp, _ = make_vjp(lambda p: p["a"] * p["b"][0], {"a": 2.0, "b": [5.0]})
    assert vjp(1.0) == {"a": 5.0, "b": [2.0]}


def test_core_make_jvp_is_autograds_unary_form():
    x = RNG.normal(size=4)
    v = RNG.normal(size=4)
    jvp = make_jvp(lambda x: anp.exp(x) * x, x)
    ans, t = jvp(v)
    np.testing.assert_allclose(ans, np.exp(x) * x)
    np.testing.assert_allclose(t, (np.exp(x) * x + np.exp(x)) * v, rtol=1e-12)


def _twice():
    @nb.extend.primitive
    def twice(x):
        return 2.0 * x

    defvjp(twice, lambda ans, x: lambda g: 2.0 * g)
    defjvp(twice, lambda g, ans, x: 2.0 * g)
    return twice


def test_primitive_vjps_is_a_live_view_of_each_primitives_rules():
    twice = _twice()
    f = lambda x: anp.sum(twice(x) ** 2)  # noqa: E731
    x = np.array([1.0, -2.0])
    np.testing.assert_array_equal(nb.grad(f)(x), 8.0 * x)
    assert twice in primitive_vjps and primitive_vjps[twice] is twice.vjps
    rules = primitive_vjps.pop(twice)
    assert twice not in primitive_vjps and twice.vjps == {}
    with pytest.raises(NotDifferentiableError, match="no VJP rule for argument 0 of primitive 'twice'"):
        nb.grad(f)(x)
    np.testing.assert_array_equal(nb.jvp(f, (x,), (np.ones(2),))[1], 8.0 * x.sum())  # the forward rule stays
    assert primitive_vjps.pop(twice, None) is None
    with pytest.raises(KeyError):
        primitive_vjps.pop(twice)
    with pytest.raises(KeyError):
        primitive_vjps[twice]  # noqa: B018
    primitive_vjps[twice] = rules
    np.testing.assert_array_equal(nb.grad(f)(x), 8.0 * x)
    # autograd's value form: one maker (argnums, ans, args, kwargs) -> g -> one contribution per argnum
    primitive_vjps[twice] = lambda argnums, ans, args, kwargs: lambda g: [3.0 * g for _ in argnums]
    np.testing.assert_array_equal(nb.grad(f)(x), 12.0 * x)
    del primitive_vjps[twice]
    assert twice not in primitive_vjps
    # functions that are not rule-carrying primitives: never in it
    assert len not in primitive_vjps and primitive_vjps.pop(np.sin, "none") == "none"
    assert anp.iscomplex not in primitive_vjps
    with pytest.raises(TypeError, match="not a primitive"):
        primitive_vjps[len] = rules
    with pytest.raises(TypeError, match="cannot be listed"):
        list(primitive_vjps)


def test_primitive_jvps_is_a_live_view_too():
    twice = _twice()
    x, v = np.array([1.0, 3.0]), np.array([1.0, 0.5])
    rules = primitive_jvps.pop(twice)
    with pytest.raises(NotDifferentiableError, match="no JVP rule"):
        nb.jvp(twice, (x,), (v,))
    np.testing.assert_array_equal(nb.grad(lambda x: anp.sum(twice(x)))(x), [2.0, 2.0])
    primitive_jvps[twice] = rules
    np.testing.assert_array_equal(nb.jvp(twice, (x,), (v,))[1], 2.0 * v)
    primitive_jvps[twice] = lambda argnums, gs, ans, args, kwargs: 5.0 * gs[0]
    np.testing.assert_array_equal(nb.jvp(twice, (x,), (v,))[1], 5.0 * v)


def test_an_autograd_rule_table_edit_on_a_library_primitive_is_undone_cleanly():
    # autograd's own suite pops np.sin-like rules and puts them back: the library's primitive works afterwards
    rules = primitive_vjps.pop(anp.tanh)
    try:
        with pytest.raises(NotDifferentiableError):
            nb.grad(anp.tanh)(0.3)
    finally:
        primitive_vjps[anp.tanh] = rules
    assert nb.grad(anp.tanh)(0.3) == pytest.approx(1 - np.tanh(0.3) ** 2, rel=1e-14)


# ----------------------------------------------------------------------------
# The pre-1.2 wrappers on nablanet.core.primitive
# ----------------------------------------------------------------------------


def _mul():
    @nb.core.primitive
    def new_mul(x, y):
        return x * y

    return new_mul


MATS = (RNG.normal(size=(2, 2)), RNG.normal(size=(2, 2)))


def test_deprecated_defgrad_gives_the_rule_and_warns():
    new_mul = _mul()
    with pytest.warns(DeprecationWarning, match="defgrad is autograd's pre-1.2"):
        new_mul.defgrad(lambda ans, x, y: lambda g: y * g)
    with pytest.warns(DeprecationWarning, match="defgrad"):
        new_mul.defgrad(lambda ans, x, y: lambda g: x * g, argnum=1)
    check_grads(new_mul, modes=["rev"], order=2)(*MATS)
    check_grads(new_mul, argnum=1, modes=["rev"])(*MATS)
    wrong = _mul()
    with pytest.warns(DeprecationWarning):
        wrong.defgrad(lambda ans, x, y: lambda g: 1.01 * y * g)
    with pytest.raises(AssertionError, match="VJP"):
        check_grads(wrong, modes=["rev"], order=1)(*MATS)


def test_deprecated_defvjp_form_gives_the_rule_with_vspaces_and_warns():
    new_mul = _mul()
    seen = []

    def vjp_x(g, ans, vs, gvs, x, y):
        seen.append((vs, gvs))
        return y * g

    with pytest.warns(DeprecationWarning, match=r"defvjp\(fun\(g, ans, vs, gvs, \*args\), argnum\)"):
        new_mul.defvjp(vjp_x)
    with pytest.warns(DeprecationWarning):
        new_mul.defvjp(lambda g, ans, vs, gvs, x, y: x * g, argnum=1)
    check_grads(new_mul, modes=["rev"], order=2)(*MATS)
    x, y = MATS[0], RNG.normal(size=(3, 1, 2))  # broadcasting: vs is x's space, gvs the cotangent's
    seen.clear()
    vjp, _ = make_vjp(lambda x: new_mul(x, y), x)
    vjp(np.ones((3, 2, 2)))
    assert seen == [(vspace(x), vspace(np.ones((3, 2, 2))))]
    # nablanet.extend.defvjp on it is the current form (no warning), as autograd's module-level defvjp is
    cur = _mul()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        defvjp(cur, lambda ans, x, y: lambda g: y * g, lambda ans, x, y: lambda g: x * g)
    check_grads(cur, modes=["rev"])(*MATS)


def test_deprecated_defvjp_is_zero_makes_zero_gradients_and_warns():
    @nb.core.primitive
    def new_mul(x, y):
        return 0 * x * y

    with pytest.warns(DeprecationWarning, match="defvjp_is_zero"):
        new_mul.defvjp_is_zero([0, 1])
    check_grads(new_mul, modes=["rev"])(*MATS)
    gx, gy = nb.grad(lambda x, y: anp.sum(new_mul(x, y)), (0, 1))(*MATS)
    np.testing.assert_array_equal(gx, np.zeros((2, 2)))
    np.testing.assert_array_equal(gy, np.zeros((2, 2)))
    # declared zero where it is not: the check catches it
    nonzero = _mul()
    with pytest.warns(DeprecationWarning):
        nonzero.defvjp_is_zero()  # argnums=(0,) by default
    with pytest.raises(AssertionError, match="VJP"):
        check_grads(nonzero, modes=["rev"], order=1)(*MATS)
    with pytest.raises(NotDifferentiableError, match="argument 1"):
        nb.grad(lambda y: anp.sum(nonzero(MATS[0], y)))(MATS[1])


def test_the_plain_primitives_carry_no_deprecated_methods():
    import nablanet.tracer as tracer

    for make in (tracer.primitive, nb.extend.primitive):
        p = make(lambda x: x)
        assert type(p) is Primitive and not hasattr(p, "defgrad") and not hasattr(p, "defvjp_is_zero")
    assert isinstance(nb.primitive(lambda x: x), nb.core.LegacyPrimitive)


# ----------------------------------------------------------------------------
# nablanet.tracer, nablanet.wrap_util, nablanet.util
# ----------------------------------------------------------------------------


def test_tracer_names():
    import nablanet.tracer as tracer

    seen = []

    def f(x):
        seen.append((tracer.isbox(x), isinstance(x, tracer.Box), tracer.getval(x)))
        return x * x

    nb.grad(f)(3.0)
    assert seen == [(True, True, 3.0)] and not tracer.isbox(3.0) and tracer.getval(3.0) == 3.0
    argmax = tracer.notrace_primitive(np.argmax)
    assert nb.grad(lambda x: x[argmax(x)] * 2.0)(np.array([1.0, 5.0, 2.0])).tolist() == [0.0, 2.0, 0.0]


@unary_to_nary
def _grad(fun, x, scale=1.0):
    vjp, _ = make_vjp(fun, x)
    return vjp(scale)


def test_unary_to_nary_with_int_tuple_and_list_argnums():
    def f(x, y, z=1.0):
        return anp.sin(x) * y**2 * z

    x, y = 0.3, 1.7
    assert _grad(f)(x, y) == pytest.approx(np.cos(x) * y**2, rel=1e-14)
    assert _grad(f, 1)(x, y, z=2.0) == pytest.approx(np.sin(x) * 2 * y * 2.0, rel=1e-14)
    assert _grad(f, -1)(x, y) == pytest.approx(np.sin(x) * 2 * y, rel=1e-14)
    gx, gy = _grad(f, (0, 1))(x, y)
    assert (gx, gy) == pytest.approx((np.cos(x) * y**2, np.sin(x) * 2 * y), rel=1e-14)
    assert _grad(f, [1, 0])(x, y) == pytest.approx((np.sin(x) * 2 * y, np.cos(x) * y**2), rel=1e-14)
    assert _grad(f, 0, 3.0)(x, y) == pytest.approx(3.0 * np.cos(x) * y**2, rel=1e-14)  # the operator's own args
    assert _grad(f, 0, scale=3.0)(x, y) == pytest.approx(3.0 * np.cos(x) * y**2, rel=1e-14)
    assert _grad.__name__ == "_grad" and _grad(f, 1).__name__ == "_grad_of_f_wrt_argnum_1"
    with pytest.raises(TypeError, match="argnum must be an int or a tuple"):
        _grad(f, "x")
    with pytest.raises(IndexError, match="argnum 2, but the function was called with 2 positional"):
        _grad(f, 2)(x, y)


def test_quick_grad_check_warns_and_checks():
    from nablanet.util import quick_grad_check

    with pytest.warns(DeprecationWarning, match="quick_grad_check is deprecated"):
        quick_grad_check(lambda x, y: x**2 + y, 1.0, (2.0,))
    with pytest.warns(DeprecationWarning):
        quick_grad_check(lambda x, y, s=1.0: anp.sum(anp.tanh(x) * y) * s, np.array([0.1, -0.4]),
                         (np.array([1.0, 2.0]),), {"s": 3.0})
    bad = _mul()
    with pytest.warns(DeprecationWarning):
        bad.defgrad(lambda ans, x, y: lambda g: 2.0 * y * g)
    with pytest.warns(DeprecationWarning), pytest.raises(AssertionError, match="VJP"):
        quick_grad_check(bad, 1.5, (2.0,))


def test_util_helpers():
    from nablanet.util import func, subval, subvals, toposort

    assert subvals((1, 2, 3), [(0, "a"), (2, "c")]) == ("a", 2, "c") and subval([1, 2], 1, "b") == (1, "b")
    assert func(len) is len

    class Node:
        def __init__(self, name, *parents):
            self.name, self.parents = name, list(parents)

    a = Node("a")
    b, c = Node("b", a), Node("c", a)
    d = Node("d", b, c, a)
    e = Node("e", d, b)
    order = [n.name for n in toposort(e)]
    assert sorted(order) == list("abcde") and order[0] == "e"
    position = {name: i for i, name in enumerate(order)}
    for child in (b, c, d, e):  # every node comes after each node that has it as a parent
        assert all(position[child.name] < position[p.name] for p in child.parents)
    assert [n for n in toposort(1, parents=lambda n: [n + 1] if n < 4 else [])] == [1, 2, 3, 4]


# ----------------------------------------------------------------------------
# tools/: the shim and the rename of the suite runner
# ----------------------------------------------------------------------------


def test_the_shim_maps_autograd_onto_nablanets_modules(tmp_path):
    (tmp_path / "autograd").mkdir()
    (tmp_path / "autograd" / "__init__.py").write_text((ROOT / "tools" / "autograd_shim.py").read_text())
    code = (
        "import sys\n"
        "import autograd, autograd.core, autograd.scipy.stats.norm, nablanet, nablanet.core, nablanet.misc\n"
        "from autograd.misc import flatten\n"
        "from autograd import tuple, primitive\n"
        "import autograd.misc.flatten\n"
        "assert autograd is nablanet and autograd.core is nablanet.core\n"
        "assert sys.modules['autograd.misc.flatten'] is sys.modules['nablanet.misc.flatten']\n"
        "assert autograd.scipy.stats.norm is __import__('nablanet.scipy.stats.norm').scipy.stats.norm\n"
        "assert flatten is nablanet.misc.flatten and primitive is nablanet.core.primitive\n"
        "dup = [m for m, mod in sys.modules.items() if m.startswith('autograd.') and "
        "not mod.__name__.startswith('nablanet')]\n"
        "assert not dup, dup\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_the_suite_runners_rename_touches_the_word_only(tmp_path):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import autograd_suite
    finally:
        sys.path.remove(str(ROOT / "tools"))
    (tmp_path / "test_a.py").write_text("import autograd.numpy as np\nfrom autograd.core import make_vjp\n"
                                        "fun_autograd = 'autograd_x'  # HIPS/autograd\n")
    (tmp_path / "notes.txt").write_text("autograd\n")
    assert autograd_suite.rename_autograd(tmp_path) == 1
    assert (tmp_path / "test_a.py").read_text() == ("import nablanet.numpy as np\nfrom nablanet.core import "
                                                    "make_vjp\nfun_autograd = 'autograd_x'  # HIPS/nablanet\n")
    assert (tmp_path / "notes.txt").read_text() == "autograd\n"


def _sq():
    @nb.extend.primitive
    def sq(x, y):
        return x * x * y

    return sq


_WRONG_VJP = (lambda ans, x, y: lambda g: g * 1000.0, lambda ans, x, y: lambda g: g * 1000.0)
_RIGHT_VJP = (lambda ans, x, y: lambda g: g * 2 * x * y, lambda ans, x, y: lambda g: g * x * x)


@pytest.mark.parametrize("first", ["defvjp", "defvjp_argnum", "defvjp_argnums", "primitive_vjps"])
@pytest.mark.parametrize("then", ["defvjp", "defvjp_argnum", "defvjp_argnums", "primitive_vjps", "defgrad",
                                  "old defvjp"])
def test_a_reverse_rule_defined_later_replaces_one_of_another_form(first, then):
    """A rule defined after one of another form was shadowed by it, silently: the engine tried the joint
    ``argnums`` rule first, then the argument's own, then the any-argument ``*`` one, whatever the order of
    definition (``primitive_vjps[p] = maker`` then ``p.defgrad(...)`` kept the first maker's gradients;
    autograd takes the later definition). The later one is used, in every order."""
    ext = nb.extend

    def define(p, how, rules):
        if how == "defvjp":
            ext.defvjp(p, *rules)
        elif how == "defvjp_argnum":
            ext.defvjp_argnum(p, lambda argnum, ans, args, kw: rules[argnum](ans, *args, **kw))
        elif how == "defvjp_argnums":
            ext.defvjp_argnums(p, lambda argnums, ans, args, kw: (
                lambda g: tuple(rules[i](ans, *args, **kw)(g) for i in argnums)))
        elif how == "primitive_vjps":
            primitive_vjps[p] = lambda argnums, ans, args, kw: (
                lambda g: tuple(rules[i](ans, *args, **kw)(g) for i in argnums))
        elif how == "defgrad":
            p.defgrad(rules[0], argnum=0)
            p.defgrad(rules[1], argnum=1)
        else:
            p.defvjp(lambda g, ans, vs, gvs, x, y: rules[0](ans, x, y)(g))
            p.defvjp(lambda g, ans, vs, gvs, x, y: rules[1](ans, x, y)(g), argnum=1)

    p = nb.core.primitive(lambda x, y: x * x * y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        define(p, first, _WRONG_VJP)
        define(p, then, _RIGHT_VJP)
    gx, gy = nb.grad(p, (0, 1))(3.0, 2.0)
    assert (gx, gy) == (12.0, 9.0)
    check_grads(p, modes=["rev"], order=2)(1.5, -0.5)


@pytest.mark.parametrize("then", ["defjvp_argnum", "defjvp_argnums", "def_linear", "primitive_jvps"])
def test_a_forward_rule_defined_later_replaces_one_of_another_form(then):
    """The same in forward mode: a per-argument ``defjvp`` rule shadowed a later ``defjvp_argnum``,
    ``defjvp_argnums``, ``def_linear`` (their rules are the any-argument ``*`` one)."""
    ext = nb.extend

    @ext.primitive
    def mul(x, y):
        return x * y

    ext.defjvp(mul, lambda g, ans, x, y: g * 1000.0, lambda g, ans, x, y: g * 1000.0)
    right = (lambda g, ans, x, y: g * y, lambda g, ans, x, y: x * g)
    if then == "defjvp_argnum":
        ext.defjvp_argnum(mul, lambda argnum, g, ans, args, kw: right[argnum](g, ans, *args))
    elif then == "defjvp_argnums":
        ext.defjvp_argnums(mul, lambda argnums, gs, ans, args, kw: sum(right[i](g, ans, *args)
                                                                         for i, g in zip(argnums, gs)))
    elif then == "def_linear":
        ext.def_linear(mul)
    else:
        primitive_jvps[mul] = lambda argnums, gs, ans, args, kw: sum(right[i](g, ans, *args)
                                                                     for i, g in zip(argnums, gs))
    assert nb.jvp(mul, (3.0, 2.0), (1.0, 1.0))[1] == 5.0


def test_unary_to_nary_hands_the_operator_a_function_named_and_documented_as_the_users():
    """autograd wraps the one-argument function it hands the operator with the user's function's name and
    docstring (an operator that reports ``fun.__name__``, as a gradient check's message does, names the user's
    function); nablanet's was named ``unary_f``."""

    @unary_to_nary
    def describe(fun, x):
        return fun.__name__, fun.__doc__, fun(x)

    def loss(w, data):
        """The loss."""
        return w * data

    assert describe(loss, 0)(2.0, 3.0) == ("loss", "The loss.", 6.0)
    assert describe(loss, (0, 1))(2.0, 3.0)[:2] == ("loss", "The loss.")


def test_quick_grad_check_is_as_strict_as_the_check_it_recommends():
    """autograd's quick_grad_check takes ``eps``, ``rtol`` and ``atol`` and ignores them, checking at its
    check_grads' own tolerances; nablanet's used them, with quick_grad_check's defaults (1e-4 relative), so it
    passed a rule 1e-4 off (relative) that autograd's rejects and that the ``check_grads(fun, modes=['rev'],
    order=1)`` its deprecation message recommends rejects too."""
    from nablanet.util import quick_grad_check

    @nb.core.primitive
    def sq(x):
        return x * x

    with pytest.warns(DeprecationWarning):
        sq.defgrad(lambda ans, x: lambda g: g * 2 * x * (1 + 1e-4))  # 1e-4 off
    x = np.array([0.3, 1.2, -0.7])
    with pytest.raises(AssertionError):
        check_grads(lambda x: anp.sum(sq(x)), modes=["rev"], order=1)(x)
    with pytest.warns(DeprecationWarning, match="quick_grad_check"), pytest.raises(AssertionError):
        quick_grad_check(lambda x: anp.sum(sq(x)), x)
    with pytest.warns(DeprecationWarning):  # a right rule passes
        quick_grad_check(lambda x: anp.sum(anp.sin(x) ** 2), x, eps=1e-2, rtol=1e-12)  # accepted, not used


def test_flatten_gives_each_leaf_back_in_its_own_float_dtype():
    """autograd's ``unflatten`` (a VJP) gives a float32 leaf back in float32; nablanet's gave float64, so a
    function of the flat vector (``flatten_func``) computed in another precision than under autograd. Real
    floating leaves come back in their dtype, complex ones in theirs (a real leaf of a complex vector stays
    complex: nothing is dropped); the vector holds them all in the common type; gradients flow through both
    directions."""
    from nablanet.misc.flatten import flatten, flatten_func

    tree = {"W": np.ones((2, 2), np.float32), "b": [np.float32(0.5), 1.5]}
    vec, unflatten = flatten(tree)
    back = unflatten(vec)
    assert vec.dtype == np.float64 and back["W"].dtype == np.float32 and back["b"][0].dtype == np.float32
    assert back["b"][1].dtype == np.float64 and back["b"][0] == np.float32(0.5)
    vec, unflatten = flatten({"z": np.array([1 + 1j], np.complex64), "w": [2.0]})
    assert vec.dtype == np.complex128 and unflatten(vec)["z"].dtype == np.complex64
    assert unflatten(vec)["w"][0].dtype == np.complex128
    real = {"W": np.ones((2, 2), np.float32), "b": 1.5}
    vec, unflatten = flatten(real)
    assert vec.dtype == np.float64 and unflatten(vec)["W"].dtype == np.float32
    g = nb.grad(lambda v: anp.sum(unflatten(v)["W"] ** 2) + unflatten(v)["b"] ** 3)(vec)
    assert g.dtype == np.float64 and g.tolist() == [2.0, 2.0, 2.0, 2.0, 3 * 1.5**2]
    flat_f, unflat, ex = flatten_func(lambda t: {"o": t["W"] * 2.0}, real)
    assert flat_f(ex).dtype == np.float32  # the function saw float32, as under autograd
