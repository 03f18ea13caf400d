"""Discrete Fourier transforms, differentiable: ``nablanet.numpy.fft`` as NumPy's ``numpy.fft``.

Every transform is linear, so each rule is a transform again.  With the
complex convention of :func:`nablanet.grad` (HIPS autograd's: the adjoint of
``w = u + iv`` is ``dL/du - i dL/dv``), the adjoint of a transform is its
transpose, not its conjugate transpose, and the DFT matrix is symmetric:

* ``fft``/``ifft``/``fftn``/``ifftn``: the adjoint is the same transform (same
  ``norm``) of the cotangent, cut or zero-padded back to the input's length
  where ``n``/``s`` padded or cut the input;
* ``rfft`` (real input): the real part of ``fft`` of the cotangent zero-padded
  to ``n``; ``rfftn``/``rfft2`` are ``rfft`` along the last axis then ``fftn``,
  ``irfftn``/``irfft2`` the reverse, as NumPy computes them;
* ``irfft`` (real output from a half spectrum ``X``, read as the Hermitian full
  spectrum): ``c_k conj(rfft(g))_k`` with ``c_k = 2`` for the bins that stand
  for two (``X_k`` and ``conj(X_k)``), 1 for ``k = 0`` and the Nyquist bin,
  and the norm swapped (``backward`` <-> ``forward``) because the scale moves
  to the other direction.

Forward mode applies the transform itself to the tangent.  ``fftshift`` and
``ifftshift`` are :func:`nablanet.numpy.roll`.  Other ``numpy.fft`` names
(``fftfreq``, ``rfftfreq``) come from NumPy.
"""

from __future__ import annotations

import numpy as _np

from ._arrays import roll
from ._primitives import (
    _dtype,
    _is_complex,
    _plain_or,
    _shape,
    concatenate,
    conj,
    getitem,
    multiply,
    primitive,
    real,
)

__all__ = [
    "fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft", "rfft2", "irfft2", "rfftn", "irfftn",
    "fftshift", "ifftshift",
]

_NORMS = ("backward", "ortho", "forward")
_SWAPPED = {"backward": "forward", "forward": "backward", "ortho": "ortho"}


def _norm(norm, fname):
    norm = "backward" if norm is None else norm
    if norm not in _NORMS:
        raise ValueError(f"nablanet.numpy.fft.{fname}: norm must be one of {_NORMS} or None, not {norm!r}")
    return norm


def _axis(axis, nd, fname):
    if not -nd <= axis < nd:
        raise ValueError(f"nablanet.numpy.fft.{fname}: axis {axis} is out of range for an array of {nd} dimensions")
    return axis % nd


def _size(n, fname):
    if int(n) != n or n < 1:
        raise ValueError(f"nablanet.numpy.fft.{fname}: invalid number of data points {n!r}; it must be at least 1")
    return int(n)


def _fit(x, axes, sizes):
    """``x`` cut or zero-padded at the end of each of ``axes`` to ``sizes`` (what ``n``/``s`` do to an input)."""
    for ax, n in zip(axes, sizes):
        shape = _shape(x)
        m = shape[ax]
        if n < m:
            x = getitem(x, (slice(None),) * ax + (slice(0, n),))
        elif n > m:
            pad = list(shape)
            pad[ax] = n - m
            x = concatenate([x, _np.zeros(pad, _dtype(x))], axis=ax)
    return x


def _fftn(x, s, axes, norm, inverse):
    return (_np.fft.ifftn if inverse else _np.fft.fftn)(x, s, axes, norm)


_fftn_p = primitive(_fftn, "fftn")
_fftn_p.defvjp(
    lambda ans, x, s, axes, norm, inverse: lambda g: _fit(
        _fftn_p(g, s, axes, norm, inverse), axes, [_shape(x)[a] for a in axes]
    )
)
_fftn_p.defjvp(lambda g, ans, x, s, axes, norm, inverse: _fftn_p(g, s, axes, norm, inverse))


def _rfft(x, n, axis, norm):
    return _np.fft.rfft(x, n, axis, norm)


def _rfft_vjp(ans, x, n, axis, norm):
    def vjp(g):
        full = _fftn_p(_fit(g, (axis,), (n,)), (n,), (axis,), norm, False)
        return _fit(real(full), (axis,), (_shape(x)[axis],))

    return vjp


_rfft_p = primitive(_rfft, "rfft")
_rfft_p.defvjp(_rfft_vjp)
_rfft_p.defjvp(lambda g, ans, x, n, axis, norm: _rfft_p(g, n, axis, norm))


def _irfft(x, n, axis, norm):
    return _np.fft.irfft(x, n, axis, norm)


def _twice(n, axis, nd, dtype):
    """The weights c_k of the half spectrum: 2, and 1 at k = 0 and at the Nyquist bin of an even n."""
    c = _np.full(n // 2 + 1, 2.0, dtype)
    c[0] = 1.0
    if n % 2 == 0:
        c[-1] = 1.0
    return c.reshape([-1 if k == axis else 1 for k in range(nd)])


def _irfft_vjp(ans, x, n, axis, norm):
    nd = len(_shape(x))

    def vjp(g):
        half = multiply(conj(_rfft_p(g, n, axis, _SWAPPED[norm])), _twice(n, axis, nd, _dtype(ans)))
        half = _fit(half, (axis,), (_shape(x)[axis],))
        return half if _is_complex(x) else real(half)

    return vjp


_irfft_p = primitive(_irfft, "irfft")
_irfft_p.defvjp(_irfft_vjp)
_irfft_p.defjvp(lambda g, ans, x, n, axis, norm: _irfft_p(g, n, axis, norm))


def _one_axis(prim_call, npfun, fname):
    def traced(a, n=None, axis=-1, norm=None):
        return prim_call(a, n, _axis(axis, len(_shape(a)), fname), _norm(norm, fname))

    return _plain_or(npfun, traced, fname,
                     f"``numpy.fft.{fname}(a, n=None, axis=-1, norm=None)``, differentiable in both modes.")


fft = _one_axis(
    lambda a, n, ax, norm: _fftn_p(a, (_size(n if n is not None else _shape(a)[ax], "fft"),), (ax,), norm, False),
    _np.fft.fft, "fft",
)
ifft = _one_axis(
    lambda a, n, ax, norm: _fftn_p(a, (_size(n if n is not None else _shape(a)[ax], "ifft"),), (ax,), norm, True),
    _np.fft.ifft, "ifft",
)
rfft = _one_axis(
    lambda a, n, ax, norm: _rfft_p(a, _size(n if n is not None else _shape(a)[ax], "rfft"), ax, norm),
    _np.fft.rfft, "rfft",
)
irfft = _one_axis(
    lambda a, n, ax, norm: _irfft_p(a, _size(n if n is not None else 2 * (_shape(a)[ax] - 1), "irfft"), ax, norm),
    _np.fft.irfft, "irfft",
)


def _s_axes(a, s, axes, fname, last_halved=False):
    """NumPy's defaults for ``s`` and ``axes``, made explicit (the last axis of an inverse real
    transform defaults to ``2 (m - 1)`` points)."""
    shape = _shape(a)
    nd = len(shape)
    if axes is None:
        axes = range(nd) if s is None else range(nd - len(s), nd)
    axes = tuple(_axis(int(k), nd, fname) for k in axes)
    if s is None:
        s = [shape[k] for k in axes]
        if last_halved and axes:
            s[-1] = 2 * (s[-1] - 1)
    elif len(s) != len(axes):
        raise ValueError(f"nablanet.numpy.fft.{fname}: s {tuple(s)} and axes {axes} differ in length")
    s = tuple(_size(n if n != -1 else shape[k], fname) for n, k in zip(s, axes))
    return s, axes


def _many_axes(fname, transform, default_axes=None):
    def traced(a, s=None, axes=default_axes, norm=None):
        s, axes = _s_axes(a, s, axes, fname, last_halved=fname.startswith("irfft"))
        return transform(a, s, axes, _norm(norm, fname)) if axes else a

    return _plain_or(getattr(_np.fft, fname), traced, fname,
                     f"``numpy.fft.{fname}``, differentiable in both modes (``s``, ``axes``, ``norm`` as NumPy's).")


def _rfftn(a, s, axes, norm):
    """A real transform along the last axis, then complex ones along the others (as NumPy)."""
    half = _rfft_p(a, s[-1], axes[-1], norm)
    return _fftn_p(half, s[:-1], axes[:-1], norm, False) if len(axes) > 1 else half


def _irfftn(a, s, axes, norm):
    """Inverse complex transforms along all axes but the last, then the inverse real one (as NumPy)."""
    if len(axes) > 1:
        a = _fftn_p(a, s[:-1], axes[:-1], norm, True)
    return _irfft_p(a, s[-1], axes[-1], norm)


fftn = _many_axes("fftn", lambda a, s, axes, norm: _fftn_p(a, s, axes, norm, False))
ifftn = _many_axes("ifftn", lambda a, s, axes, norm: _fftn_p(a, s, axes, norm, True))
fft2 = _many_axes("fft2", lambda a, s, axes, norm: _fftn_p(a, s, axes, norm, False), (-2, -1))
ifft2 = _many_axes("ifft2", lambda a, s, axes, norm: _fftn_p(a, s, axes, norm, True), (-2, -1))
rfftn = _many_axes("rfftn", _rfftn)
irfftn = _many_axes("irfftn", _irfftn)
rfft2 = _many_axes("rfft2", _rfftn, (-2, -1))
irfft2 = _many_axes("irfft2", _irfftn, (-2, -1))


def _shift(npfun, fname, sign):
    def traced(x, axes=None):
        shape = _shape(x)
        if axes is None:
            axes = tuple(range(len(shape)))
        elif isinstance(axes, (int, _np.integer)):
            axes = (int(axes),)
        return roll(x, tuple(sign * (shape[k] // 2) for k in axes), tuple(axes))

    return _plain_or(npfun, traced, fname, f"``numpy.fft.{fname}``: a roll by half of each axis, differentiable.")


fftshift = _shift(_np.fft.fftshift, "fftshift", 1)
ifftshift = _shift(_np.fft.ifftshift, "ifftshift", -1)


def __getattr__(name):
    """Other ``numpy.fft`` names (``fftfreq``, ``rfftfreq``...) come from NumPy."""
    return getattr(_np.fft, name)


# NumPy's own functions, routed here by nablanet.numpy's __array_function__ dispatch.
_NUMPY_DISPATCH = {getattr(_np.fft, name): globals()[name] for name in __all__}
