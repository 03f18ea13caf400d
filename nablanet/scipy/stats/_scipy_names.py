"""SciPy's other functions of a distribution (``rvs``, ``ppf``...), reached from nablanet's module of it.

They are SciPy's own, exactly, on plain values; on a traced value they raise
NotDifferentiableError naming them (they have no derivative rule here).
"""

from __future__ import annotations

from ...numpy._primitives import _guard_plain


def scipy_fallback(dist):
    """A module ``__getattr__`` serving ``scipy.stats.<dist>``'s other attributes."""

    def __getattr__(name):
        if name.startswith("__"):
            raise AttributeError(name)
        import scipy.stats

        obj = getattr(getattr(scipy.stats, dist), name)
        if not callable(obj):
            return obj
        return _guard_plain(obj, name, f"nablanet.scipy.stats: scipy.stats.{dist}.{name}")

    return __getattr__
