"""Gradient-checking helpers under the names HIPS autograd's ``autograd.test_util`` uses.

``check_grads(f, modes=["fwd", "rev"], order=2)(*args)`` checks ``f`` in both
modes against central differences (see :func:`nablanet.check_grads`);
``combo_check(f, argnum)(*arg_lists, **kwarg_lists)`` checks every combination
of the given arguments and keyword values.
"""

from __future__ import annotations

from itertools import product

from .autodiff.check import check_grads

__all__ = ["check_grads", "combo_check"]


def combo_check(fun, *check_args, **check_kwargs):
    """A checker that runs ``check_grads`` on every combination of candidate arguments and keywords."""
    def run(*arg_lists, **kwarg_lists):
        keys = list(kwarg_lists)
        for args in product(*arg_lists):
            for values in product(*(kwarg_lists[k] for k in keys)):
                check_grads(fun, *check_args, **check_kwargs)(*args, **dict(zip(keys, values)))

    return run
