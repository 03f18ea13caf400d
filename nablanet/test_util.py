"""Gradient-checking helpers under the names HIPS autograd's ``autograd.test_util`` uses.

``check_grads(f, modes=["fwd", "rev"], order=2)(*args)`` checks ``f`` in both
modes against central differences (see :func:`nablanet.check_grads`);
``combo_check(f, argnum)(*arg_lists, **kwarg_lists)`` checks every combination
of the given arguments and keyword values.
"""

from __future__ import annotations

from itertools import product

import numpy as np

from .autodiff.check import check_grads
from .autodiff.core import getval
from .autodiff.tree import tree_flatten

__all__ = ["check_grads", "combo_check", "scalar_close", "check_equivalent"]

TOL = 1e-6
RTOL = 1e-6


def scalar_close(a, b):
    """``a`` and ``b`` agree to 1e-6, absolutely or relative to their sum (autograd's test)."""
    return abs(a - b) < TOL or abs(a - b) / abs(a + b) < RTOL


def check_equivalent(x, y):
    """Assert two pytrees of arrays have the same structure, shapes and kinds, and close values."""
    xl, xdef = tree_flatten(x)
    yl, ydef = tree_flatten(y)
    assert xdef == ydef, f"check_equivalent: structures differ:\nx: {xdef}\ny: {ydef}"
    for i, (a, b) in enumerate(zip(xl, yl)):
        a, b = np.asarray(getval(a)), np.asarray(getval(b))
        assert a.shape == b.shape, f"check_equivalent: leaf {i} has shape {a.shape} against {b.shape}"
        assert np.iscomplexobj(a) == np.iscomplexobj(b), f"check_equivalent: leaf {i}: {a.dtype} against {b.dtype}"
        assert np.allclose(a, b, rtol=RTOL, atol=TOL), f"check_equivalent: leaf {i} differs:\nx: {a}\ny: {b}"


def combo_check(fun, *check_args, **check_kwargs):
    """A checker that runs ``check_grads`` on every combination of candidate arguments and keywords."""
    def run(*arg_lists, **kwarg_lists):
        keys = list(kwarg_lists)
        for args in product(*arg_lists):
            for values in product(*(kwarg_lists[k] for k in keys)):
                check_grads(fun, *check_args, **check_kwargs)(*args, **dict(zip(keys, values)))

    return run
