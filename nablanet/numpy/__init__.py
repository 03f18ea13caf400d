"""A differentiable subset of NumPy: ``import nablanet.numpy as anp``.

Write ordinary NumPy-style code with these functions (and the operators
``+ - * / ** @``, indexing and the usual array methods on traced values);
:func:`nablanet.grad` and the other transforms differentiate it in either mode,
to any order.

Plain NumPy functions called on a traced value are routed here when nablanet
has a rule for them (``np.exp(x)`` works); any other raises
:class:`NotDifferentiableError` naming the function, rather than returning a
silently wrong derivative.  Names this module does not define (constants,
dtypes, ``zeros``, ``linspace``...) come from NumPy unchanged.
"""

from __future__ import annotations

import builtins as _builtins

import numpy as _np

from ..autodiff import core as _core
from ..autodiff.core import NotDifferentiableError, Tracer, register_array_ops, register_tracer_methods
from . import _arrays, _elementwise, _order, _primitives, _reductions, fft, linalg
from ._primitives import (
    _contains_tracer,
    _nondiff,
    abs,
    add,
    astype,
    clip,
    divide,
    getitem,
    max,
    mean,
    min,
    mod,
    multiply,
    negative,
    power,
    prod,
    ravel,
    reshape,
    squeeze,
    std,
    subtract,
    sum,
    swapaxes,
    transpose,
    var,
)
from .linalg import dot, matmul

# Differentiable functions, by name (everything public in _primitives that is callable,
# and the names each further module lists in its __all__).
_DIFFERENTIABLE = {
    k: v
    for k, v in vars(_primitives).items()
    if not k.startswith("_") and callable(v) and k not in ("primitive", "unbroadcast", "Primitive", "Tracer", "getval")
}
_DIFFERENTIABLE.update((k, getattr(linalg, k)) for k in linalg._TOP_LEVEL)  # products live in linalg.py
for _mod in (_arrays, _elementwise, _order, _reductions):
    _DIFFERENTIABLE.update({k: getattr(_mod, k) for k in _mod.__all__})
globals().update(_DIFFERENTIABLE)
from ._arrays import c_, r_  # noqa: E402, F401  (index tricks: objects, not functions)

# Functions whose results carry no derivative; they accept traced values.
_NONDIFF_NAMES = (
    "shape ndim size result_type zeros_like ones_like empty_like full_like "
    "greater greater_equal less less_equal equal not_equal isnan isinf isfinite "
    "isclose allclose array_equal logical_and logical_or logical_not logical_xor any all "
    "argmax argmin argsort nonzero flatnonzero count_nonzero floor ceil round rint trunc "
    "floor_divide searchsorted digitize around fix signbit isneginf isposinf isreal iscomplex "
    "isrealobj iscomplexobj isscalar array_equiv"
).split()
for _name in _NONDIFF_NAMES:
    globals()[_name] = _nondiff(getattr(_np, _name))


# Queries answered by shape and dtype alone, which a capture keys on: plain answers, nothing recorded.
def _shaped(a):
    """A stand-in with ``a``'s shape and dtype (a zero-strided view: no copy, no value)."""
    return _np.broadcast_to(_np.zeros((), a.dtype), a.shape) if isinstance(a, Tracer) else a


def _static(fun):
    def f(*args, **kw):
        return fun(*[_shaped(a) for a in args], **kw)

    f.__name__ = fun.__name__
    f.__doc__ = fun.__doc__
    return f


for _name in ("shape", "ndim", "size", "result_type", "zeros_like", "ones_like", "empty_like"):
    globals()[_name] = _static(getattr(_np, _name))
for _name in ("bitwise_and", "bitwise_or", "bitwise_xor", "invert"):  # & | ^ ~ on masks
    globals()[_name] = _nondiff(getattr(_np, _name))
    _NONDIFF_NAMES.append(_name)


def _integer_type(t):
    """``t`` (``numpy.int64``...) that also takes traced values, as autograd's ``np.int64(x)``.

    An integer carries no derivative, so the cast returns NumPy's plain integer
    result (recorded by a capture, so it is recomputed on every replay).  As a
    dtype it is ``t`` itself: ``np.dtype(anp.int64) == np.int64``.
    """
    cast = _nondiff(t)

    def __new__(cls, *args, **kwargs):
        if args and _contains_tracer(args[:1]):
            return cast(*args, **kwargs)
        return t(*args, **kwargs)

    return _IntegerTypeMeta(t.__name__, (t,), {"__new__": __new__, "__module__": __name__, "__doc__": t.__doc__})


class _IntegerTypeMeta(type):
    """``isinstance(np.int64(3), anp.int64)`` holds as it did when anp.int64 was NumPy's own."""

    def __instancecheck__(cls, obj):
        return isinstance(obj, cls.__mro__[1])

    def __subclasscheck__(cls, sub):
        return issubclass(sub, cls.__mro__[1])


for _name in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "intp", "uintp", "int_",
              "bool_"):
    if hasattr(_np, _name):
        globals()[_name] = _integer_type(getattr(_np, _name))


def __getattr__(name):
    obj = getattr(_np, name)
    if callable(obj) and not isinstance(obj, type):
        obj = _primitives._guard_plain(obj, name, f"nablanet.numpy: numpy.{name}")
    globals()[name] = obj
    return obj


# ----------------------------------------------------------------------------
# NumPy's own functions on traced values: route to the rules above or refuse.
# ----------------------------------------------------------------------------

_NUMPY_ALIASES = {"absolute": "abs", "true_divide": "divide", "amax": "max", "amin": "min"}
_DISPATCH = {}
for _name, _f in list(_DIFFERENTIABLE.items()) + [(n, globals()[n]) for n in _NONDIFF_NAMES]:
    _np_obj = getattr(_np, _name, None)
    if _np_obj is not None:
        _DISPATCH[_np_obj] = _f
for _np_name, _ours in _NUMPY_ALIASES.items():
    if hasattr(_np, _np_name):
        _DISPATCH[getattr(_np, _np_name)] = globals()[_ours]
_DISPATCH.update(linalg._NUMPY_DISPATCH)  # np.linalg.inv(tracer) and friends
_DISPATCH.update(fft._NUMPY_DISPATCH)  # np.fft.fft(tracer) and friends


def _not_differentiable(func):
    name = getattr(func, "__name__", repr(func))
    mod = getattr(func, "__module__", None) or "numpy"
    mod = "numpy" if mod.startswith("numpy") and mod.count(".") < 2 and "linalg" not in mod else mod
    return NotDifferentiableError(
        f"nablanet: {mod}.{name} is not differentiable in nablanet (it was called on a traced "
        f"value); use the functions in nablanet.numpy, or define a primitive with nablanet.extend"
    )


def _array_function(self, func, types, args, kwargs):
    f = _DISPATCH.get(func)
    if f is None:
        raise _not_differentiable(func)
    return f(*args, **kwargs)


def _foreign_container(o):
    """An array container of another library (an xarray DataArray) that implements NumPy's ufunc protocol."""
    return (not isinstance(o, (Tracer, _np.ndarray, _np.generic, list, tuple, float, int, complex))
            and getattr(type(o), "__array_ufunc__", None) is not None)


def _array_ufunc(self, ufunc, method, *inputs, **kwargs):
    if _builtins.any(_foreign_container(i) for i in inputs):
        return NotImplemented  # the container applies the ufunc to its data, the traced value inside
    f = _DISPATCH.get(ufunc)
    if method != "__call__" or f is None or kwargs.get("out") is not None:
        raise _not_differentiable(ufunc if method == "__call__" else getattr(ufunc, method))
    return f(*inputs, **kwargs)


# ----------------------------------------------------------------------------
# Operators and methods on traced values
# ----------------------------------------------------------------------------


def _setitem(self, idx, value):
    raise TypeError(
        "nablanet: in-place assignment to a traced value is not differentiable; "
        "build the array with nablanet.numpy.where, concatenate or stack instead"
    )


def _T(self):
    return transpose(self)


_lt, _le, _gt, _ge, _eq, _ne, _and, _or, _xor, _inv, _argmax, _argmin, _fdiv = (globals()[n] for n in (
    "less", "less_equal", "greater", "greater_equal", "equal", "not_equal",
    "bitwise_and", "bitwise_or", "bitwise_xor", "invert", "argmax", "argmin", "floor_divide"))

_methods = {
    "__add__": lambda s, o: add(s, o),
    "__radd__": lambda s, o: add(o, s),
    "__sub__": lambda s, o: subtract(s, o),
    "__rsub__": lambda s, o: subtract(o, s),
    "__mul__": lambda s, o: multiply(s, o),
    "__rmul__": lambda s, o: multiply(o, s),
    "__truediv__": lambda s, o: divide(s, o),
    "__rtruediv__": lambda s, o: divide(o, s),
    "__mod__": lambda s, o: mod(s, o),
    "__rmod__": lambda s, o: mod(o, s),
    "__floordiv__": lambda s, o: _fdiv(s, o),
    "__rfloordiv__": lambda s, o: _fdiv(o, s),
    "__divmod__": lambda s, o: (_fdiv(s, o), mod(s, o)),
    "__rdivmod__": lambda s, o: (_fdiv(o, s), mod(o, s)),
    "__pow__": lambda s, o: power(s, o),
    "__rpow__": lambda s, o: power(o, s),
    "__matmul__": lambda s, o: matmul(s, o),
    "__rmatmul__": lambda s, o: matmul(o, s),
    "__neg__": lambda s: negative(s),
    "__pos__": lambda s: s,
    "__abs__": lambda s: abs(s),
    "__getitem__": lambda s, idx: getitem(s, idx),
    "__setitem__": _setitem,
    "__lt__": lambda s, o: _lt(s, o),
    "__le__": lambda s, o: _le(s, o),
    "__gt__": lambda s, o: _gt(s, o),
    "__ge__": lambda s, o: _ge(s, o),
    "__eq__": lambda s, o: _eq(s, o),
    "__ne__": lambda s, o: _ne(s, o),
    "__and__": lambda s, o: _and(s, o),
    "__rand__": lambda s, o: _and(o, s),
    "__or__": lambda s, o: _or(s, o),
    "__ror__": lambda s, o: _or(o, s),
    "__xor__": lambda s, o: _xor(s, o),
    "__rxor__": lambda s, o: _xor(o, s),
    "__invert__": lambda s: _inv(s),
    "__array_function__": _array_function,
    "__array_ufunc__": _array_ufunc,
    "T": property(_T),
    "real": property(lambda s: _primitives.real(s)),
    "imag": property(lambda s: _primitives.imag(s)),
    "conj": lambda s: _primitives.conj(s),
    "conjugate": lambda s: _primitives.conj(s),
    "mT": property(lambda s: swapaxes(s, -1, -2)),
    "reshape": lambda s, *shape: reshape(s, shape[0] if len(shape) == 1 else shape),
    "transpose": lambda s, *axes: transpose(s, (axes[0] if len(axes) == 1 else axes) or None),
    "swapaxes": lambda s, a, b: swapaxes(s, a, b),
    "ravel": lambda s: ravel(s),
    "flatten": lambda s: ravel(s),
    "squeeze": lambda s, axis=None: squeeze(s, axis),
    "sum": lambda s, axis=None, keepdims=False: sum(s, axis, keepdims),
    "mean": lambda s, axis=None, keepdims=False: mean(s, axis, keepdims),
    "max": lambda s, axis=None, keepdims=False: max(s, axis, keepdims),
    "min": lambda s, axis=None, keepdims=False: min(s, axis, keepdims),
    "prod": lambda s, axis=None, keepdims=False: prod(s, axis, keepdims),
    "var": lambda s, axis=None, ddof=0, keepdims=False: var(s, axis, ddof, keepdims),
    "std": lambda s, axis=None, ddof=0, keepdims=False: std(s, axis, ddof, keepdims),
    "dot": lambda s, o: dot(s, o),
    "clip": lambda s, a_min=None, a_max=None: clip(s, a_min, a_max),
    "astype": lambda s, dtype, copy=True: astype(s, dtype),
    "argmax": lambda s, axis=None: _argmax(s, axis),
    "argmin": lambda s, axis=None: _argmin(s, axis),
}


# ndarray methods that are nablanet.numpy's function of the same name, called with the array first (ndarray's
# method takes that function's further arguments in the same order: x.cumsum(axis) is cumsum(x, axis)).
def _as_method(fun):
    def method(self, *args, **kwargs):
        return fun(self, *args, **kwargs)

    method.__name__ = method.__qualname__ = fun.__name__
    return method


for _name in ("cumsum", "cumprod", "diagonal", "trace", "repeat", "take",  # differentiable
              "round", "all", "any", "argsort", "nonzero", "searchsorted"):  # derivative 0
    _methods[_name] = _as_method(globals()[_name])
_methods["copy"] = lambda s, order="C": _primitives.copy(s, order)
_methods["itemsize"] = property(lambda s: s.dtype.itemsize)
_methods["nbytes"] = property(lambda s: s.size * s.dtype.itemsize)


def _in_place(name, instead):
    def refuse(self, *args, **kwargs):
        raise NotDifferentiableError(
            f"nablanet: ndarray.{name} changes the array in place, which a traced value cannot do "
            f"(it is not differentiable); {instead}"
        )

    refuse.__name__ = name
    return refuse


_BUILD = "build a new array with nablanet.numpy.where, concatenate or stack instead"
_methods.update(
    sort=_in_place("sort", "use the sorted copy y = nablanet.numpy.sort(x, axis) instead"),
    partition=_in_place("partition", "use y = nablanet.numpy.partition(x, kth) instead"),
    fill=_in_place("fill", "use nablanet.numpy.full_like(x, value) (a constant) instead"),
    put=_in_place("put", _BUILD),
    resize=_in_place("resize", "use nablanet.numpy.reshape or concatenate instead"),
    itemset=_in_place("itemset", _BUILD),
    setfield=_in_place("setfield", _BUILD),
    setflags=_in_place("setflags", "a traced value is never changed in place"),
)


def _getattr(self, name):
    """Reached only for an attribute traced values lack: an ndarray attribute is named as such."""
    if not name.startswith("_") and hasattr(_np.ndarray, name):
        raise AttributeError(
            f"nablanet: ndarray.{name} is not available on a traced value (a value being differentiated); "
            f"inside differentiated code use the nablanet.numpy functions and the array methods it supports "
            f"(reshape, sum, astype, round, cumsum...)"
        )
    raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


_methods["__getattr__"] = _getattr

_PLAIN_OPERANDS = {float, int, complex, bool, _np.ndarray, _np.float64, _np.float32, _np.complex128, _np.int64,
                   *(t for t in vars(_core).values() if isinstance(t, type) and issubclass(t, Tracer))}


def _other_operand(o):
    """The other operand of a traced value's operator, when it is not a plain array, scalar or traced value:
    a list holding traced values becomes a traced array (x * [y, 1.0]); a foreign array container (an
    xarray DataArray) gets _FOREIGN, so the operator returns NotImplemented and the container computes on its
    data with the traced value inside, as with autograd ((x * da).data is traced)."""
    if type(o) is list or type(o) is tuple:
        return _primitives._arraylike(o)
    return _FOREIGN if _foreign_container(o) else o


_FOREIGN = object()


def _binary(fun, reflected=False):
    # ``call(fun, a, b)`` is ``fun(a, b)``, without the lookup of ``__call__`` on every operator
    call = type(fun).__call__
    if reflected:

        def method(s, o):
            if type(o) not in _PLAIN_OPERANDS:
                o = _other_operand(o)
                if o is _FOREIGN:
                    return NotImplemented
            return call(fun, o, s)

    else:

        def method(s, o):
            if type(o) not in _PLAIN_OPERANDS:
                o = _other_operand(o)
                if o is _FOREIGN:
                    return NotImplemented
            return call(fun, s, o)

    return method


for _name, _fun in (("add", add), ("sub", subtract), ("mul", multiply), ("truediv", divide), ("mod", mod),
                    ("floordiv", _fdiv), ("pow", power), ("matmul", matmul), ("and", _and), ("or", _or),
                    ("xor", _xor)):
    _methods[f"__{_name}__"], _methods[f"__r{_name}__"] = _binary(_fun), _binary(_fun, reflected=True)
for _name, _fun in (("lt", _lt), ("le", _le), ("gt", _gt), ("ge", _ge), ("eq", _eq), ("ne", _ne)):
    _methods[f"__{_name}__"] = _binary(_fun)
_methods["dot"] = _binary(dot)
# The engine knows nothing of NumPy's namespace: this layer plugs its operators,
# methods and dispatch in through the engine's hook (as autograd's ArrayBox.register).
register_tracer_methods(_methods)
register_array_ops(stack=_primitives.stack, reshape=reshape, sum=sum, multiply=multiply, real=_primitives.real)

__all__ = sorted(set(_DIFFERENTIABLE) | set(_NONDIFF_NAMES) | {"NotDifferentiableError"})
