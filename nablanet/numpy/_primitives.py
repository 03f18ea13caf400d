"""Differentiable NumPy: each primitive with its VJP and JVP, side by side.

Conventions (those of HIPS autograd's ``defvjp``/``defjvp``):

* a VJP maker is ``(ans, *args, **kw) -> (g -> contribution to that argument)``,
* a JVP maker is ``(g, ans, *args, **kw) -> contribution to the output tangent``.

Rules are written with these same differentiable functions, so they can be
differentiated again.  Reverse-mode contributions to a broadcast argument are
summed back to its shape by :func:`unbroadcast`; forward-mode contributions are
broadcast up to the output's shape.  Functions that are compositions of
primitives (``mean``, ``var``, ``stack``, ``outer``...) need no rules at all.
"""

from __future__ import annotations

import builtins
import math

import numpy as _np

from ..autodiff.core import NondiffPrimitive as _NondiffPrimitive
from ..autodiff.core import NotDifferentiableError, Primitive, Tracer, getval
from . import _kernels

# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------


def _shape(x):
    try:
        return x.shape
    except AttributeError:
        return _np.shape(x)


def _ndim(x):
    return len(_shape(x))


def _dtype(x):
    v = getval(x)
    if hasattr(v, "dtype"):
        return v.dtype
    return _np.asarray(v).dtype if isinstance(v, (list, tuple)) else _np.result_type(v)


def _guard_plain(fun, name, label):
    """A function without a derivative rule: exactly ``fun`` on plain values, a NotDifferentiableError
    naming it (``label``) when a traced value is among its arguments (nested lists and tuples included)."""

    def guarded(*args, **kwargs):
        if _contains_tracer(args) or _contains_tracer(tuple(kwargs.values())):
            raise NotDifferentiableError(f"{label} is not differentiable in nablanet (it was called on a traced value)")
        return fun(*args, **kwargs)

    guarded.__name__ = name
    guarded.__doc__ = fun.__doc__
    return guarded


def primitive(fun, name=None):
    return Primitive(fun, name)


def unbroadcast(g, shape):
    """Sum ``g`` over the axes that broadcasting added or stretched to reach ``shape``."""
    try:
        gshape = g.shape
    except AttributeError:
        gshape = _np.shape(g)
    if gshape == shape:
        return g
    lead = len(gshape) - len(shape)
    if lead > 0:
        g = sum(g, axis=tuple(range(lead)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and gshape[i + lead] != 1)
    if stretched:
        g = sum(g, axis=stretched, keepdims=True)
    return g


def _bcast(g, ans):
    """A forward-mode contribution broadcast up to the output's shape."""
    shape = _shape(ans)
    return g if _shape(g) == shape else broadcast_to(g, shape)


def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(sorted(a % ndim if ndim else a for a in axis))


def _keep(v, xshape, axis, keepdims):
    """Reshape a reduction's result ``v`` so it broadcasts against ``x``."""
    if keepdims:
        return v
    shape = list(xshape)
    for a in _axes(axis, len(xshape)):
        shape[a] = 1
    return reshape(v, tuple(shape))


def _nondiff(fun):
    """A NumPy function whose result carries no derivative (comparisons, argmax...).

    A primitive without rules: differentiation passes through it, and a capture
    (``nablanet.jit``) records it, so a mask is recomputed on every replay.
    """
    return _NondiffPrimitive(fun, fun.__name__)


def _elementwise(fun, deriv, name=None):
    """A unary elementwise primitive; ``deriv(ans, x)`` is f'(x).

    The Jacobian is diagonal, so both modes multiply by the same derivative.
    """
    p = Primitive(fun, name)
    p.defvjp(lambda ans, x: lambda g: g * deriv(ans, x))
    p.defjvp(lambda g, ans, x: g * deriv(ans, x))
    return p


def _binary(fun, name, dx, dy):
    """A binary elementwise primitive from its partials ``dx(ans, x, y)``, ``dy(ans, x, y)``.

    Reverse mode sums each contribution back to its argument's shape
    (:func:`unbroadcast`); forward mode broadcasts it up to the output's.
    """
    p = Primitive(fun, name)
    p.defvjp(
        lambda ans, x, y: lambda g: unbroadcast(multiply(g, dx(ans, x, y)), _shape(x)),
        lambda ans, x, y: lambda g: unbroadcast(multiply(g, dy(ans, x, y)), _shape(y)),
    )
    p.defjvp(
        lambda g, ans, x, y: _bcast(multiply(g, dx(ans, x, y)), ans),
        lambda g, ans, x, y: _bcast(multiply(g, dy(ans, x, y)), ans),
    )
    return p


def _plain_or(npfun, traced, name=None, doc=None):
    """NumPy's ``npfun`` when the first argument holds no traced value, else ``traced``.

    ``traced`` gets the first argument as an array (a list of traced values
    stacked), and the other arguments as given.
    """

    def f(a, *args, **kwargs):
        if not _contains_tracer(a):
            return npfun(a, *args, **kwargs)
        return traced(_arraylike(a), *args, **kwargs)

    f.__name__ = f.__qualname__ = name or npfun.__name__
    f.__doc__ = doc
    return f


# ----------------------------------------------------------------------------
# binary elementwise
# ----------------------------------------------------------------------------

# add's and multiply's reverse rules are the most frequent; they test unbroadcast's first case
# (the contribution already has the argument's shape) themselves, saving a Python call per use:
# ``c if getattr(c, "shape", None) == shape else unbroadcast(c, shape)`` is ``unbroadcast(c, shape)``.


def _add_vjp_x(ans, x, y):
    return lambda g: g if getattr(g, "shape", None) == x.shape else unbroadcast(g, x.shape)


def _add_vjp_y(ans, x, y):
    return lambda g: g if getattr(g, "shape", None) == y.shape else unbroadcast(g, y.shape)


def _multiply_vjp_x(ans, x, y):
    def vjp(g):
        c = g * y
        return c if getattr(c, "shape", None) == x.shape else unbroadcast(c, x.shape)

    return vjp


def _multiply_vjp_y(ans, x, y):
    def vjp(g):
        c = x * g
        return c if getattr(c, "shape", None) == y.shape else unbroadcast(c, y.shape)

    return vjp


add = primitive(_np.add, "add")
add.defvjp(_add_vjp_x, _add_vjp_y)
add.defjvp(lambda g, ans, x, y: _bcast(g, ans), lambda g, ans, x, y: _bcast(g, ans))

subtract = primitive(_np.subtract, "subtract")
subtract.defvjp(
    lambda ans, x, y: lambda g: unbroadcast(g, _shape(x)),
    lambda ans, x, y: lambda g: unbroadcast(-g, _shape(y)),
)
subtract.defjvp(lambda g, ans, x, y: _bcast(g, ans), lambda g, ans, x, y: _bcast(-g, ans))

multiply = primitive(_np.multiply, "multiply")
multiply.defvjp(_multiply_vjp_x, _multiply_vjp_y)
multiply.defjvp(lambda g, ans, x, y: _bcast(g * y, ans), lambda g, ans, x, y: _bcast(x * g, ans))

divide = primitive(_np.divide, "divide")
divide.defvjp(
    lambda ans, x, y: lambda g: unbroadcast(g / y, _shape(x)),
    lambda ans, x, y: lambda g: unbroadcast(-g * (ans / y), _shape(y)),
)
divide.defjvp(
    lambda g, ans, x, y: _bcast(g / y, ans),
    lambda g, ans, x, y: _bcast(-g * (ans / y), ans),
)
true_divide = divide


def _safe_log(x):
    """log(x) where x > 0 and 0 elsewhere: d(x^y)/dy = x^y log x, taken as 0 at x <= 0."""
    if isinstance(x, (int, float)):  # a Python number stays one (a float32 y keeps its dtype)
        return math.log(x) if x > 0 else 0.0
    v = getval(x)
    if _np.iscomplexobj(v):  # the principal log, defined off 0
        return log(where(v == 0, 1.0, x)) if _np.any(v == 0) else log(x)
    return log(where(v > 0, x, 1.0)) if _np.any(v <= 0) else log(x)


def _minus_one(y):
    """y - 1, a Python number for a Python ``y`` (so a float32 base keeps its dtype)."""
    return y - 1 if isinstance(y, (int, float)) else subtract(y, 1)


def _power_dx(x, y):
    """d(x^y)/dx = y x^(y-1), with the value 0 wherever y = 0 (also at x = 0, where 0 * 0^-1 is NaN).

    Subgradient conventions at the edge points: ``x = y = 0`` gives 0 for both
    derivatives; ``x = 0, 0 < y < 1`` gives the true (infinite) slope.
    """
    if isinstance(y, (int, float)):
        if y == 0:
            return 0.0
        return multiply(y, power(x, _minus_one(y)))
    xv, yv = getval(x), getval(y)
    both_zero = (xv == 0) & (yv == 0)
    if _np.any(both_zero):  # y * x^(y-1) there is 0 * inf: take 0 (x^y is constant 1 along y = 0)
        x = where(both_zero, 1.0, x)
    return multiply(y, power(x, _minus_one(y)))


power = primitive(_np.power, "power")
power.defvjp(
    lambda ans, x, y: lambda g: unbroadcast(multiply(g, _power_dx(x, y)), _shape(x)),
    lambda ans, x, y: lambda g: unbroadcast(multiply(g, multiply(ans, _safe_log(x))), _shape(y)),
)
power.defjvp(
    lambda g, ans, x, y: _bcast(multiply(g, _power_dx(x, y)), ans),
    lambda g, ans, x, y: _bcast(multiply(g, multiply(ans, _safe_log(x))), ans),
)


def _quotient(x, y, rounding):
    """The integer quotient ``floor(x / y)`` (mod) or ``trunc(x / y)`` (fmod), a constant."""
    return rounding(_np.divide(getval(x), getval(y)))


def _mod_like(fun, rounding, name):
    """``x - q y`` with the integer quotient ``q`` piecewise constant: d/dx = 1, d/dy = -q.

    At a jump (``x / y`` an integer) the derivative is that of the piece the
    point lies on, i.e. with ``q`` as NumPy computes it there.
    """
    p = primitive(fun, name)
    p.defvjp(
        lambda ans, x, y: lambda g: unbroadcast(g, _shape(x)),
        lambda ans, x, y: lambda g: unbroadcast(multiply(g, -_quotient(x, y, rounding)), _shape(y)),
    )
    p.defjvp(
        lambda g, ans, x, y: _bcast(g, ans),
        lambda g, ans, x, y: _bcast(multiply(g, -_quotient(x, y, rounding)), ans),
    )
    return p


mod = _mod_like(_np.mod, _np.floor, "mod")
remainder = mod
fmod = _mod_like(_np.fmod, _np.trunc, "fmod")


def _balanced_mask(xv, yv, greater):
    win = (xv > yv) if greater else (xv < yv)
    return _np.asarray(win + 0.5 * (xv == yv), dtype=_np.result_type(xv, yv, 0.5))


_balanced_mask = _NondiffPrimitive(_balanced_mask, "balanced_mask")  # a capture recomputes it per call


def _balanced(x, y, greater):
    """Where x wins the comparison 1, where tied 0.5, else 0 (ties split the gradient)."""
    return _balanced_mask(getval(x), getval(y), greater)


maximum = primitive(_np.maximum, "maximum")
minimum = primitive(_np.minimum, "minimum")
for _p, _gt in ((maximum, True), (minimum, False)):
    _p.defvjp(
        lambda ans, x, y, _gt=_gt: lambda g: unbroadcast(multiply(g, _balanced(x, y, _gt)), _shape(x)),
        lambda ans, x, y, _gt=_gt: lambda g: unbroadcast(multiply(g, _balanced(y, x, _gt)), _shape(y)),
    )
    _p.defjvp(
        lambda g, ans, x, y, _gt=_gt: _bcast(multiply(g, _balanced(x, y, _gt)), ans),
        lambda g, ans, x, y, _gt=_gt: _bcast(multiply(g, _balanced(y, x, _gt)), ans),
    )


_NOT_GIVEN = object()


def _python_value(v):
    """Whether ``v`` is a plain Python value: a bool or number, or a list or tuple of them (nested)."""
    if isinstance(v, (list, tuple)):
        return all(_python_value(e) for e in v)
    return type(v) in (bool, int, float, complex)


def _where(condition, x=_NOT_GIVEN, y=_NOT_GIVEN):
    """``numpy.where``; as in HIPS autograd, from plain Python values alone (bools, numbers, lists of them: no
    array, no NumPy scalar) it returns Python values (``where(True, 1, 2)`` is ``1``, not ``array(1)``)."""
    if x is _NOT_GIVEN and y is _NOT_GIVEN:  # NumPy's one-argument form: the indices where condition holds
        return _np.where(condition)
    if x is _NOT_GIVEN or y is _NOT_GIVEN:
        return _np.where(condition, *(() if x is _NOT_GIVEN else (x,)), *(() if y is _NOT_GIVEN else (y,)))
    return _np.where(condition, x, y)


class _Where(Primitive):
    """As HIPS autograd's custom_where: the arguments are looked at *as given* (a traced value is never a Python
    value), before the primitive unboxes them; a rule's call on raw values converts as a user's call does."""

    def __call__(self, condition, x=_NOT_GIVEN, y=_NOT_GIVEN):
        out = Primitive.__call__(self, *((condition,) if x is _NOT_GIVEN and y is _NOT_GIVEN else (condition, x, y)))
        if isinstance(out, _np.ndarray) and _python_value(condition) and _python_value(x) and _python_value(y):
            return out.tolist()
        return out


where = _Where(_where, "where")
where.defvjp(
    None,
    lambda ans, c, x, y: lambda g: unbroadcast(where(c, g, 0.0), _shape(x)),
    lambda ans, c, x, y: lambda g: unbroadcast(where(c, 0.0, g), _shape(y)),
)
where.defjvp(
    None,
    lambda g, ans, c, x, y: _bcast(where(c, g, 0.0), ans),
    lambda g, ans, c, x, y: _bcast(where(c, 0.0, g), ans),
)


def _clip(x, a_min=None, a_max=None):
    return _np.clip(x, a_min, a_max)


def _clip_mask_np(v, a_min, a_max):
    inside = _np.ones(_np.shape(v), dtype=bool)
    if a_min is not None:
        inside = inside & (v >= a_min)
    if a_max is not None:
        inside = inside & (v <= a_max)
    return inside


_clip_mask_p = _NondiffPrimitive(_clip_mask_np, "clip_mask")  # a capture recomputes it per call


def _clip_mask(x, a_min, a_max):
    return _clip_mask_p(getval(x), getval(a_min), getval(a_max))


clip = primitive(_clip, "clip")
clip.defvjp(lambda ans, x, a_min=None, a_max=None: lambda g: unbroadcast(multiply(g, _clip_mask(x, a_min, a_max)), _shape(x)))
clip.defjvp(lambda g, ans, x, a_min=None, a_max=None: _bcast(multiply(g, _clip_mask(x, a_min, a_max)), ans))

# ----------------------------------------------------------------------------
# unary elementwise: f and f'
# ----------------------------------------------------------------------------

negative = primitive(_np.negative, "negative")
negative.defvjp(lambda ans, x: lambda g: -g)
negative.defjvp(lambda g, ans, x: -g)

exp = _elementwise(_np.exp, lambda ans, x: ans, "exp")
exp2 = _elementwise(_np.exp2, lambda ans, x: ans * math.log(2.0), "exp2")
expm1 = _elementwise(_np.expm1, lambda ans, x: ans + 1.0, "expm1")
log = _elementwise(_np.log, lambda ans, x: 1.0 / x, "log")
log2 = _elementwise(_np.log2, lambda ans, x: 1.0 / (x * math.log(2.0)), "log2")
log10 = _elementwise(_np.log10, lambda ans, x: 1.0 / (x * math.log(10.0)), "log10")
log1p = _elementwise(_np.log1p, lambda ans, x: 1.0 / (x + 1.0), "log1p")
sqrt = _elementwise(_np.sqrt, lambda ans, x: 0.5 / ans, "sqrt")
square = _elementwise(_np.square, lambda ans, x: x * 2.0, "square")
reciprocal = _elementwise(_np.reciprocal, lambda ans, x: -(ans * ans), "reciprocal")

# ---- complex numbers -----------------------------------------------------------
#
# HIPS autograd's convention: the adjoint of a complex w = u + iv is dL/du - i dL/dv
# for a real-valued L.  A holomorphic f then has the same rules as a real one
# (g * f'(z) in reverse, f'(z) dz in forward), so exp, sin, divide, matmul, solve...
# need nothing more; the functions below are not holomorphic and carry their own.
# A real argument of a complex result takes the real part of its contribution (the
# engine does that, nablanet/autodiff/core.py).


def _is_complex(x):
    return _dtype(x).kind == "c"


def _real(x):
    return _np.real(x)


def _imag(x):
    return _np.imag(x)


real = primitive(_real, "real")
imag = primitive(_imag, "imag")
conj = primitive(_np.conjugate, "conj")
conjugate = conj
# w = Re z: dL/dx = g, dL/dy = 0, so the adjoint is g.  w = Im z: dL/dy = g, adjoint -i g.
real.defvjp(lambda ans, x: lambda g: g)
real.defjvp(lambda g, ans, x: real(g))
imag.defvjp(lambda ans, x: (lambda g: multiply(g, -1j)) if _is_complex(x) else (lambda g: _np.zeros(_shape(x), _dtype(x))))
imag.defjvp(lambda g, ans, x: imag(g))
conj.defvjp(lambda ans, x: lambda g: conj(g))
conj.defjvp(lambda g, ans, x: conj(g))


def _over_nonzero(num, den):
    """num / den, and 0 where den == 0 (the subgradient chosen at z = 0; no NaN in any branch)."""
    d = getval(den)
    if _np.all(d != 0):
        return divide(num, den)
    nz = d != 0
    return where(nz, divide(num, where(nz, den, 1.0)), 0.0)


def _abs_vjp(ans, x):
    if _is_complex(x):  # d|z| along dz is Re(conj(z) dz) / |z|: the adjoint g conj(z) / |z|
        return lambda g: multiply(g, _over_nonzero(conj(x), ans))
    return lambda g: g * _np.sign(getval(x))  # sign(0) = 0: the subgradient at 0


def _abs_jvp(g, ans, x):
    if _is_complex(x):
        return _over_nonzero(real(multiply(g, conj(x))), ans)
    return g * _np.sign(getval(x))


abs = primitive(_np.abs, "abs")
abs.defvjp(_abs_vjp)
abs.defjvp(_abs_jvp)
absolute = abs


def _angle(z, deg=False):
    return _np.angle(z, deg)


def _abs2(x):
    return real(multiply(x, conj(x)))


def _angle_scale(deg):
    return 180.0 / math.pi if deg else 1.0


def _angle_vjp(ans, z, deg=False):
    # angle = atan2(y, x): dL/dx = -g y / |z|^2, dL/dy = g x / |z|^2, i.e. the adjoint -i g conj(z) / |z|^2
    if not _is_complex(z):  # 0 or pi: piecewise constant
        return lambda g: _np.zeros(_shape(z), _dtype(z))
    return lambda g: multiply(g, _over_nonzero(multiply(conj(z), -1j * _angle_scale(deg)), _abs2(z)))


def _angle_jvp(g, ans, z, deg=False):
    if not _is_complex(z):
        return _np.zeros(_shape(ans), _dtype(ans))
    return _over_nonzero(multiply(imag(multiply(conj(z), g)), _angle_scale(deg)), _abs2(z))


angle = primitive(_angle, "angle")
angle.defvjp(_angle_vjp)
angle.defjvp(_angle_jvp)


def _real_if_close(a, tol=100):
    return _np.real_if_close(a, tol)


real_if_close = primitive(_real_if_close, "real_if_close")
real_if_close.defvjp(lambda ans, x, tol=100: lambda g: g)  # the real part, or the identity
real_if_close.defjvp(lambda g, ans, x, tol=100: g if _is_complex(ans) else real(g))


_sign_real = _elementwise(_np.sign, lambda ans, x: _np.zeros_like(getval(x)), "sign")


def sign(x):
    """``numpy.sign``: piecewise constant for real x (derivative 0); ``z / |z|`` (0 at 0) for complex z.

    NumPy 2's complex sign is ``z / |z|``, which is not constant: it is
    differentiated as that quotient (with the subgradient 0 at ``z = 0``).
    """
    if isinstance(x, Tracer) and _is_complex(x):
        return _over_nonzero(x, abs(x))
    return _sign_real(x)
sin = _elementwise(_np.sin, lambda ans, x: cos(x), "sin")
cos = _elementwise(_np.cos, lambda ans, x: -sin(x), "cos")
tan = _elementwise(_np.tan, lambda ans, x: ans * ans + 1.0, "tan")
arcsin = _elementwise(_np.arcsin, lambda ans, x: 1.0 / sqrt(1.0 - x * x), "arcsin")
arccos = _elementwise(_np.arccos, lambda ans, x: -1.0 / sqrt(1.0 - x * x), "arccos")
arctan = _elementwise(_np.arctan, lambda ans, x: 1.0 / (x * x + 1.0), "arctan")
sinh = _elementwise(_np.sinh, lambda ans, x: cosh(x), "sinh")
cosh = _elementwise(_np.cosh, lambda ans, x: sinh(x), "cosh")
tanh = _elementwise(_np.tanh, lambda ans, x: 1.0 - ans * ans, "tanh")
arcsinh = _elementwise(_np.arcsinh, lambda ans, x: 1.0 / sqrt(x * x + 1.0), "arcsinh")
arctanh = _elementwise(_np.arctanh, lambda ans, x: 1.0 / (1.0 - x * x), "arctanh")


def _logaddexp_weight(ans, x):
    return exp(subtract(x, ans))


logaddexp = primitive(_np.logaddexp, "logaddexp")
logaddexp.defvjp(
    lambda ans, x, y: lambda g: unbroadcast(multiply(g, _logaddexp_weight(ans, x)), _shape(x)),
    lambda ans, x, y: lambda g: unbroadcast(multiply(g, _logaddexp_weight(ans, y)), _shape(y)),
)
logaddexp.defjvp(
    lambda g, ans, x, y: _bcast(multiply(g, _logaddexp_weight(ans, x)), ans),
    lambda g, ans, x, y: _bcast(multiply(g, _logaddexp_weight(ans, y)), ans),
)


def _copy(a, order="K", subok=False):
    return _np.array(a, order=order, copy=True, subok=subok)


copy = primitive(_copy, "copy")  # a fresh array: a captured program's result never aliases its input
copy.defvjp(lambda ans, a, *args, **kw: lambda g: g)
copy.defjvp(lambda g, ans, a, *args, **kw: g)


def _astype(x, dtype):
    return _np.asarray(x).astype(dtype)


def _cast(g, dtype):
    """``g`` in ``dtype``; a complex ``g`` cast to a real dtype keeps its real part (the convention)."""
    if _is_complex(g) and _np.dtype(dtype).kind != "c":
        g = real(g)
    return astype(g, dtype)


_astype_p = primitive(_astype, "astype")
_astype_p.defvjp(lambda ans, x, dtype: lambda g: _cast(g, _dtype(x)))
_astype_p.defjvp(lambda g, ans, x, dtype: _cast(g, dtype))
# To an integer or bool dtype the result is piecewise constant: derivative 0, as floor and trunc
# (a NondiffPrimitive, so differentiating traces pass it through and a capture records it).
_astype_const = _NondiffPrimitive(_astype, "astype")


def astype(x, dtype):
    """``x`` cast to ``dtype``.

    To a float or complex dtype the derivative passes through (a complex value cast to a real
    dtype keeps its real part, as NumPy does, and so does its derivative).  To an integer or
    bool dtype the result carries no derivative (derivative 0, as ``floor`` and ``trunc``).
    A traced value cast to any other dtype (str, object, datetime) raises NotDifferentiableError.
    """
    kind = _np.dtype(dtype).kind
    if kind in "fc":
        return _astype_p(x, dtype)
    if kind in "biu":
        return _astype_const(x, dtype)
    if _contains_tracer(x):
        raise NotDifferentiableError(
            f"nablanet.numpy.astype: a traced value cannot be cast to dtype {_np.dtype(dtype)}; "
            f"only float, complex, integer and bool casts are supported inside differentiated code"
        )
    return _astype(x, dtype)

# ----------------------------------------------------------------------------
# reductions
# ----------------------------------------------------------------------------


def _numpy_keywords(name, np_fun, ours, a, extra, **kw):
    """A reduction called with NumPy keywords nablanet's rules do not take (dtype, out, where, initial).

    On plain values it is NumPy's function with them, exactly.  On a traced value an
    integer or bool ``dtype`` gives NumPy's result as a constant (derivative 0; NumPy
    computes ``mean(x, dtype=int)`` in integers, not as the mean of the cast input);
    a float or complex ``dtype`` casts the input first; any other keyword raises
    naming it (it is never silently dropped).
    """
    if not _contains_tracer((a,) + tuple(extra.values())):
        return np_fun(a, **kw, **extra)
    dtype = extra.get("dtype")
    if dtype is not None and _np.dtype(dtype).kind in "biu":
        const = _CONSTANT_REDUCTIONS.get(np_fun)
        if const is None:
            const = _CONSTANT_REDUCTIONS[np_fun] = _NondiffPrimitive(np_fun, name)
        return const(_arraylike(a), **kw, **extra)
    dtype = extra.pop("dtype", None)
    if extra:
        raise NotDifferentiableError(
            f"nablanet.numpy.{name}: keyword {next(iter(extra))!r} is not supported on traced values"
        )
    return ours(_cast_for(name, a, dtype), **kw)


_CONSTANT_REDUCTIONS = {}  # NumPy function -> it as a NondiffPrimitive, for integer dtypes


def _cast_for(name, a, dtype=None, out=None):
    """A traced ``a`` given NumPy's ``dtype`` and ``out`` keywords: cast to ``dtype`` first, as NumPy
    computes in it (an integer dtype makes ``a`` a constant: derivative 0); ``out`` raises, never
    silently dropped."""
    if out is not None:
        raise NotDifferentiableError(f"nablanet.numpy.{name}: keyword 'out' is not supported on traced values")
    a = _arraylike(a)
    return a if dtype is None else astype(a, dtype)


def _sum(x, axis=None, keepdims=False):
    if type(x) is _np.ndarray:  # what np.sum calls, without its wrappers
        return _np.add.reduce(x, axis=axis, keepdims=keepdims)
    return _np.sum(x, axis=axis, keepdims=keepdims)


_sum_p = primitive(_sum, "sum")
_sum_p.into = lambda out, x, axis=None, keepdims=False: _np.add.reduce(x, axis=axis, out=out, keepdims=keepdims)
_sum_p.defvjp(lambda ans, x, axis=None, keepdims=False: lambda g: broadcast_to(_keep(g, _shape(x), axis, keepdims), _shape(x)))
_sum_p.defjvp(lambda g, ans, x, axis=None, keepdims=False: _sum_p(g, axis=axis, keepdims=keepdims))


def sum(a, axis=None, keepdims=False, **numpy_keywords):
    """Sum of array elements over ``axis`` (all of them by default)."""
    if numpy_keywords:
        return _numpy_keywords("sum", _np.sum, sum, a, numpy_keywords, axis=axis, keepdims=keepdims)
    return _sum_p(a, axis=axis, keepdims=keepdims)


def _amax(x, axis=None, keepdims=False):
    if type(x) is _np.ndarray:
        return _np.maximum.reduce(x, axis=axis, keepdims=keepdims)
    return _np.max(x, axis=axis, keepdims=keepdims)


def _amin(x, axis=None, keepdims=False):
    if type(x) is _np.ndarray:
        return _np.minimum.reduce(x, axis=axis, keepdims=keepdims)
    return _np.min(x, axis=axis, keepdims=keepdims)


def _argext_weights_np(v, ext, axis):
    hit = v == ext
    return _np.asarray(hit / _np.sum(hit, axis=axis, keepdims=True), dtype=_np.result_type(v, 0.5))


_argext_weights_p = _NondiffPrimitive(_argext_weights_np, "argext_weights")  # a capture recomputes it per call


def _argext_weights(ans, x, axis, keepdims):
    """1/k at the k positions that attain the extreme along ``axis``, else 0."""
    return _argext_weights_p(getval(x), getval(_keep(getval(ans), _shape(x), axis, keepdims)),
                             _axes(axis, _ndim(x)))


_max_p = primitive(_amax, "max")
_min_p = primitive(_amin, "min")
for _p in (_max_p, _min_p):
    _p.defvjp(
        lambda ans, x, axis=None, keepdims=False: lambda g: multiply(
            _keep(g, _shape(x), axis, keepdims), _argext_weights(ans, x, axis, keepdims)
        )
    )
    _p.defjvp(
        lambda g, ans, x, axis=None, keepdims=False: _sum_p(
            multiply(g, _argext_weights(ans, x, axis, keepdims)), axis=axis, keepdims=keepdims
        )
    )


def max(a, axis=None, keepdims=False, **numpy_keywords):
    """Maximum over ``axis``; ties share the gradient equally."""
    if numpy_keywords:
        return _numpy_keywords("max", _np.max, max, a, numpy_keywords, axis=axis, keepdims=keepdims)
    return _max_p(a, axis=axis, keepdims=keepdims)


def min(a, axis=None, keepdims=False, **numpy_keywords):
    """Minimum over ``axis``; ties share the gradient equally."""
    if numpy_keywords:
        return _numpy_keywords("min", _np.min, min, a, numpy_keywords, axis=axis, keepdims=keepdims)
    return _min_p(a, axis=axis, keepdims=keepdims)


amax, amin = max, min


def _prod(x, axis=None, keepdims=False):
    return _np.prod(x, axis=axis, keepdims=keepdims)


def _prod_of_others(ans, x, axis, keepdims):
    """d prod / d x_i = the product of the other entries along ``axis``, shaped like x.

    ans / x where no entry is zero; with zeros, each entry's product of the
    others is formed explicitly (differentiably, so higher orders stay right).
    """
    if not _np.any(getval(x) == 0):
        return divide(_keep(ans, _shape(x), axis, keepdims), x)
    shape = _shape(x)
    red = _axes(axis, len(shape))
    rest = [a for a in range(len(shape)) if a not in red]
    xt = transpose(x, rest + list(red))
    m = int(_np.prod([shape[a] for a in red]))
    flat = reshape(xt, tuple(shape[a] for a in rest) + (m,))
    cols = [_prod_p(concatenate([flat[..., :k], flat[..., k + 1:]], axis=-1), axis=-1) if m > 1
            else _np.ones(_shape(flat)[:-1], _dtype(x)) for k in range(m)]
    others = reshape(stack(cols, axis=-1), tuple(shape[a] for a in rest) + tuple(shape[a] for a in red))
    return transpose(others, list(_np.argsort(rest + list(red))))


_prod_p = primitive(_prod, "prod")
_prod_p.defvjp(
    lambda ans, x, axis=None, keepdims=False: lambda g: multiply(
        _keep(g, _shape(x), axis, keepdims), _prod_of_others(ans, x, axis, keepdims)
    )
)
_prod_p.defjvp(
    lambda g, ans, x, axis=None, keepdims=False: _sum_p(
        multiply(g, _prod_of_others(ans, x, axis, keepdims)), axis=axis, keepdims=keepdims
    )
)


def prod(a, axis=None, keepdims=False, **numpy_keywords):
    """Product over ``axis``; exact derivatives also where entries are zero."""
    if numpy_keywords:
        return _numpy_keywords("prod", _np.prod, prod, a, numpy_keywords, axis=axis, keepdims=keepdims)
    return _prod_p(a, axis=axis, keepdims=keepdims)


def _softmax_of(ans, x, axis, keepdims):
    return exp(subtract(x, _keep(ans, _shape(x), axis, keepdims)))


_logsumexp_p = primitive(_kernels.logsumexp, "logsumexp")  # the value: nablanet/numpy/_kernels.py
_logsumexp_p.defvjp(
    lambda ans, x, axis=None, keepdims=False: lambda g: multiply(
        _keep(g, _shape(x), axis, keepdims), _softmax_of(ans, x, axis, keepdims)
    )
)
_logsumexp_p.defjvp(
    lambda g, ans, x, axis=None, keepdims=False: _sum_p(
        multiply(g, _softmax_of(ans, x, axis, keepdims)), axis=axis, keepdims=keepdims
    )
)


def logsumexp(a, axis=None, keepdims=False):
    """log(sum(exp(a))) over ``axis``, computed without overflow (max subtracted first)."""
    return _logsumexp_p(a, axis=axis, keepdims=keepdims)


def _count(x, axis):
    shape = _shape(x)
    return int(_np.prod([shape[a] for a in _axes(axis, len(shape))]))


def mean(a, axis=None, keepdims=False, **numpy_keywords):
    """Arithmetic mean over ``axis``."""
    if numpy_keywords:
        return _numpy_keywords("mean", _np.mean, mean, a, numpy_keywords, axis=axis, keepdims=keepdims)
    a = _arraylike(a)
    return divide(sum(a, axis=axis, keepdims=keepdims), _count(a, axis))


def var(a, axis=None, ddof=0, keepdims=False, **numpy_keywords):
    """Variance over ``axis`` with ``ddof`` delta degrees of freedom."""
    if numpy_keywords:
        return _numpy_keywords("var", _np.var, var, a, numpy_keywords, axis=axis, ddof=ddof, keepdims=keepdims)
    a = _arraylike(a)
    d = subtract(a, mean(a, axis=axis, keepdims=True))
    return divide(sum(_sq_magnitude(d), axis=axis, keepdims=keepdims), _count(a, axis) - ddof)


def _sq_magnitude(d):
    """|d|^2: square(d) for real d, d conj(d) made real for complex d (as NumPy's var)."""
    return _abs2(d) if _is_complex(d) else square(d)


def _half_over(ans):
    """0.5 / ans where ans > 0, and 0 where ans == 0 (no NaN on either branch)."""
    v = getval(ans)
    if _np.all(v > 0):
        return 0.5 / ans
    pos = v > 0
    return where(pos, 0.5 / where(pos, ans, 1.0), 0.0)


# the square root inside std: where the variance is 0 (one element, or all equal) the
# derivative is taken as 0, a subgradient, instead of sqrt's infinite slope times 0 = NaN
_std_sqrt = _elementwise(_np.sqrt, lambda ans, x: _half_over(ans), "std")


def std(a, axis=None, ddof=0, keepdims=False, **numpy_keywords):
    """Standard deviation, the square root of :func:`var`.

    Where the standard deviation is 0 (a single element, or all elements equal)
    its derivative is taken as 0 (a subgradient) rather than NaN.
    """
    if numpy_keywords:
        return _numpy_keywords("std", _np.std, std, a, numpy_keywords, axis=axis, ddof=ddof, keepdims=keepdims)
    return _std_sqrt(var(a, axis=axis, ddof=ddof, keepdims=keepdims))


# ----------------------------------------------------------------------------
# shapes
# ----------------------------------------------------------------------------


def _reshape(x, shape):
    return _np.reshape(x, shape)


_reshape_p = primitive(_reshape, "reshape")
_reshape_p.defvjp(lambda ans, x, shape: lambda g: _reshape_p(g, _shape(x)))
_reshape_p.defjvp(lambda g, ans, x, shape: _reshape_p(g, _shape(ans)))


def reshape(a, shape):
    """Give ``a`` a new shape (one entry may be -1)."""
    return _reshape_p(a, shape)


def _transpose(x, axes=None):
    return x.transpose(axes) if type(x) is _np.ndarray else _np.transpose(x, axes)


_transpose_p = primitive(_transpose, "transpose")
_transpose_p.defvjp(
    lambda ans, x, axes=None: lambda g: _transpose_p(g, None if axes is None else tuple(_np.argsort(axes)))
)
_transpose_p.defjvp(lambda g, ans, x, axes=None: _transpose_p(g, axes))


def transpose(a, axes=None):
    """Permute the axes (reverse them by default)."""
    if axes is None:
        return _transpose_p(a, None)
    nd = _ndim(a)
    return _transpose_p(a, tuple(ax % nd for ax in axes))


def swapaxes(a, axis1, axis2):
    axes = list(range(_ndim(a)))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return transpose(a, axes)


def moveaxis(a, source, destination):
    """Move axes ``source`` (an int or a sequence) to positions ``destination``."""
    nd = _ndim(a)
    src = [s % nd for s in ((source,) if isinstance(source, int) else source)]
    dst = [d % nd for d in ((destination,) if isinstance(destination, int) else destination)]
    if len(src) != len(dst):
        raise ValueError("moveaxis: source and destination must have the same number of elements")
    order = [i for i in range(nd) if i not in src]
    for d, s_ in sorted(zip(dst, src)):
        order.insert(d, s_)
    return transpose(a, order)


def _broadcast_to(x, shape):
    return _np.broadcast_to(x, shape)


broadcast_to = primitive(_broadcast_to, "broadcast_to")
broadcast_to.defvjp(lambda ans, x, shape: lambda g: unbroadcast(g, _shape(x)))
broadcast_to.defjvp(lambda g, ans, x, shape: broadcast_to(g, shape))


def squeeze(a, axis=None):
    return reshape(a, _np.squeeze(_np.empty(_shape(a), dtype=bool), axis=axis).shape)


def expand_dims(a, axis):
    return reshape(a, _np.expand_dims(_np.empty(_shape(a), dtype=bool), axis).shape)


def ravel(a):
    return reshape(a, (-1,))


def _each(f, arys):
    out = [f(_arraylike(a)) for a in arys]
    return out[0] if len(out) == 1 else out


def atleast_1d(*arys):
    """View inputs with at least one dimension (a list for several inputs, as in NumPy)."""
    return _each(lambda a: reshape(a, (1,)) if _ndim(a) == 0 else a, arys)


def atleast_2d(*arys):
    def f(a):
        nd = _ndim(a)
        return reshape(a, (1, 1)) if nd == 0 else reshape(a, (1,) + _shape(a)) if nd == 1 else a

    return _each(f, arys)


def atleast_3d(*arys):
    """0-d to (1, 1, 1), (n,) to (1, n, 1), (m, n) to (m, n, 1), as NumPy does."""
    def f(a):
        nd, shape = _ndim(a), _shape(a)
        if nd == 0:
            return reshape(a, (1, 1, 1))
        if nd == 1:
            return reshape(a, (1,) + shape + (1,))
        return reshape(a, shape + (1,)) if nd == 2 else a

    return _each(f, arys)


def _concatenate(axis, *arrays):
    return _np.concatenate(arrays, axis=axis)


def _concat_slice(argnum, axis, arrays):
    """Where argument ``argnum`` of ``_concatenate(axis, *arrays)`` sits along ``axis``."""
    nd = _ndim(arrays[0])
    ax = axis % nd
    sizes = [_shape(a)[ax] for a in arrays]
    start = int(_np.sum(sizes[: argnum - 1]))
    return (slice(None),) * ax + (slice(start, start + sizes[argnum - 1]),)


_concatenate_p = primitive(_concatenate, "concatenate")
_concatenate_p.vjps["*"] = lambda argnum, ans, axis, *arrays: lambda g: g[_concat_slice(argnum, axis, arrays)]
_concatenate_p.jvps["*"] = lambda argnum, g, ans, axis, *arrays: _concatenate_p(
    axis, *[g if i == argnum - 1 else _np.zeros(_shape(a), _dtype(a)) for i, a in enumerate(arrays)]
)


def concatenate(arrays, axis=0):
    """Join a sequence of arrays along an existing axis."""
    arrays = [_arraylike(a) for a in arrays]
    if not arrays:
        raise ValueError("concatenate: need at least one array")
    if axis is None:
        arrays, axis = [ravel(a) for a in arrays], 0
    return _concatenate_p(axis, *arrays)


def stack(arrays, axis=0):
    """Join a sequence of same-shape arrays along a new axis."""
    arrays = [_arraylike(a) for a in arrays]
    if not arrays:
        raise ValueError("stack: need at least one array")
    nd = _ndim(arrays[0]) + 1
    return concatenate([expand_dims(a, axis % nd) for a in arrays], axis=axis % nd)


def hstack(arrays):
    arrays = [atleast_1d(a) for a in arrays]
    return concatenate(arrays, axis=0 if _ndim(arrays[0]) == 1 else 1)


def vstack(arrays):
    return concatenate([atleast_2d(a) for a in arrays], axis=0)


row_stack = vstack  # NumPy's older name (autograd's too)


def _is_basic_index(idx):
    items = idx if isinstance(idx, tuple) else (idx,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, _np.integer, slice)) for i in items)


def _getitem(x, idx):
    return x[idx]


def _untake(g, idx, shape, dtype):
    """The adjoint of indexing: ``g`` added into zeros of ``shape`` at ``idx``."""
    out = _np.zeros(shape, dtype)
    if _is_basic_index(idx):
        out[idx] = g
    else:
        _np.add.at(out, idx, g)
    return out


getitem = primitive(_getitem, "getitem")
untake = primitive(_untake, "untake")
getitem.defvjp(lambda ans, x, idx: lambda g: untake(g, idx, _shape(x), _dtype(x)))
getitem.defjvp(lambda g, ans, x, idx: getitem(g, idx))
untake.defvjp(lambda ans, g, idx, shape, dtype: lambda h: getitem(h, idx))
untake.defjvp(lambda t, ans, g, idx, shape, dtype: untake(t, idx, shape, dtype))


# ----------------------------------------------------------------------------
# array construction from traced pieces
# ----------------------------------------------------------------------------


def _contains_tracer(obj):
    """Whether ``obj`` is a traced value or a (nested) list/tuple holding one."""
    if isinstance(obj, Tracer):
        return True
    if isinstance(obj, (list, tuple)):
        return builtins.any(_contains_tracer(o) for o in obj)
    return False


def _arraylike(a):
    """A (nested) list/tuple becomes an array (a traced one if it holds traced values); anything else is unchanged."""
    if isinstance(a, (list, tuple)):
        return array(a) if _contains_tracer(a) else _np.asarray(a)
    return a


def _lift_args(args):
    """The hook the engine calls when a primitive met lists of traced values: lift them, or None."""
    if not builtins.any(isinstance(a, (list, tuple)) and _contains_tracer(a) for a in args):
        return None
    return [_arraylike(a) for a in args]


Primitive.lift = staticmethod(_lift_args)


def array(obj, dtype=None, **kw):
    """``numpy.array``, also for (nested) lists that hold traced values."""
    if _contains_tracer(obj):
        if isinstance(obj, Tracer):
            return obj if dtype is None else astype(obj, dtype)
        return stack([array(o, dtype) for o in obj])
    return _np.array(obj, dtype=dtype, **kw)


def asarray(obj, dtype=None):
    return array(obj, dtype) if _contains_tracer(obj) else _np.asarray(obj, dtype=dtype)

__all__ = [
    "NotDifferentiableError",
    "primitive",
    "unbroadcast",
]
