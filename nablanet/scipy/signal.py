"""Differentiable convolution, as HIPS autograd's ``autograd.scipy.signal.convolve``.

``convolve(A, B, axes=None, dot_axes=((), ()), mode="full")`` convolves ``A``
with ``B`` along the paired axes ``axes = (axes_of_A, axes_of_B)`` (all axes,
paired in order, by default), sums the products over the paired ``dot_axes``
(a tensordot), and keeps every other axis.  The result's axes are A's other
axes, then B's, then the convolved ones.  ``mode`` is SciPy's: ``"full"``
(size ``na + nb - 1``), ``"valid"`` (``|na - nb| + 1``; one array must be at
least as large as the other along every convolved axis) or ``"same"`` (A's
size, centred as ``scipy.signal.convolve(A, B, "same")``).

It is computed with FFTs over the convolved axes (real FFTs for real inputs):
``O(n log n)`` and, being written with differentiable ``nablanet.numpy.fft``
functions, differentiable in both arguments, in both modes, to any order.
Values agree with the direct sum to rounding (about 1e-15 relative to the
largest term), not bit for bit.
"""

from __future__ import annotations

import numpy as _np

from .. import numpy as anp
from ..numpy import fft as _fft

__all__ = ["convolve"]


def _axes(spec, ndim, what):
    out = []
    for a in spec:
        a = int(a)
        if not -ndim <= a < ndim:
            raise ValueError(f"convolve: {what} has axis {a}, but the array has {ndim} dimensions")
        out.append(a % ndim)
    return out


def convolve(A, B, axes=None, dot_axes=((), ()), mode="full"):
    """Convolve ``A`` and ``B`` along ``axes``, contracting ``dot_axes`` (see the module docstring)."""
    if mode not in ("full", "valid", "same"):
        raise ValueError(f"convolve: mode must be 'full', 'valid' or 'same', got {mode!r}")
    A = A if isinstance(A, anp.Tracer) else _np.asarray(A)
    B = B if isinstance(B, anp.Tracer) else _np.asarray(B)
    nA, nB = anp.ndim(A), anp.ndim(B)
    sA, sB = anp.shape(A), anp.shape(B)
    if axes is None:
        if nA != nB:
            raise ValueError(
                f"convolve: without axes, A and B need the same number of dimensions (got {nA} and {nB})"
            )
        axes = (range(nA), range(nA))
    cA, cB = _axes(axes[0], nA, "axes[0]"), _axes(axes[1], nB, "axes[1]")
    dA, dB = _axes(dot_axes[0], nA, "dot_axes[0]"), _axes(dot_axes[1], nB, "dot_axes[1]")
    if len(cA) != len(cB) or len(dA) != len(dB):
        raise ValueError("convolve: axes and dot_axes must pair as many axes of A as of B")
    if len(set(cA + dA)) != len(cA + dA) or len(set(cB + dB)) != len(cB + dB):
        raise ValueError("convolve: an axis is named twice in axes/dot_axes")
    for a, b in zip(dA, dB):
        if sA[a] != sB[b]:
            raise ValueError(f"convolve: dot axes {a} of A (size {sA[a]}) and {b} of B (size {sB[b]}) differ")
    na, nb = [sA[a] for a in cA], [sB[b] for b in cB]
    if mode == "valid" and not (all(x >= y for x, y in zip(na, nb)) or all(y >= x for x, y in zip(na, nb))):
        raise ValueError("convolve: mode 'valid' needs one array at least as large as the other along every axis")
    iA = [i for i in range(nA) if i not in cA + dA]
    iB = [i for i in range(nB) if i not in cB + dB]
    k, nd = len(cA), len(dA)
    # A as [A's others, 1 for each of B's others, dot, conv]; B as [1..., B's others, dot, conv]
    At = anp.reshape(anp.transpose(A, iA + dA + cA), [sA[i] for i in iA] + [1] * len(iB) + [sA[i] for i in dA] + na)
    Bt = anp.reshape(anp.transpose(B, iB + dB + cB), [1] * len(iA) + [sB[i] for i in iB] + [sB[i] for i in dB] + nb)
    dot = tuple(range(len(iA) + len(iB), len(iA) + len(iB) + nd))
    if k == 0:
        out = anp.sum(At * Bt, axis=dot) if nd else At * Bt
        return out
    full = [x + y - 1 for x, y in zip(na, nb)]
    conv = tuple(range(-k, 0))
    cplx = anp.iscomplexobj(A) or anp.iscomplexobj(B)
    fwd, inv = (_fft.fftn, _fft.ifftn) if cplx else (_fft.rfftn, _fft.irfftn)
    prod = fwd(At, s=full, axes=conv) * fwd(Bt, s=full, axes=conv)
    if nd:
        prod = anp.sum(prod, axis=dot)
    out = inv(prod, s=full, axes=conv)
    if mode == "full":
        return out
    if mode == "valid":
        keep = [(min(x, y) - 1, abs(x - y) + 1) for x, y in zip(na, nb)]
    else:  # "same": A's size, centred in the full result as SciPy's
        keep = [((y - 1) // 2, x) for x, y in zip(na, nb)]
    index = (slice(None),) * (anp.ndim(out) - k) + tuple(slice(s, s + n) for s, n in keep)
    return out[index]
