"""SciPy's other functions of a distribution (``rvs``, ``ppf``...), reached from nablanet's module of it.

They are SciPy's own, exactly, on plain values; on a traced value they raise
NotDifferentiableError naming them (they have no derivative rule here).
"""

from __future__ import annotations

from ...autodiff.core import NotDifferentiableError
from ...numpy._primitives import _contains_tracer


def scipy_fallback(dist):
    """A module ``__getattr__`` serving ``scipy.stats.<dist>``'s other attributes."""

    def __getattr__(name):
        if name.startswith("__"):
            raise AttributeError(name)
        import scipy.stats

        obj = getattr(getattr(scipy.stats, dist), name)
        if not callable(obj):
            return obj

        def guarded(*args, **kwargs):
            if _contains_tracer(args) or _contains_tracer(tuple(kwargs.values())):
                raise NotDifferentiableError(
                    f"nablanet.scipy.stats: scipy.stats.{dist}.{name} is not differentiable in nablanet "
                    f"(it was called on a traced value)"
                )
            return obj(*args, **kwargs)

        guarded.__name__ = name
        guarded.__doc__ = obj.__doc__
        return guarded

    return __getattr__
