"""HIPS autograd's ``autograd.misc.tracers``: ``const_graph`` (also ``nablanet.misc.const_graph``).

autograd's ``full_graph``, a debugging tracer over its node graph, has no counterpart in nablanet's engine.
"""

from __future__ import annotations

import functools

from ..autodiff.capture import jit

__all__ = ["const_graph"]


def const_graph(fun, *args, **kwargs):
    """``fun`` with ``args``/``kwargs`` fixed, recorded on its first call and replayed after (autograd's name).

    The arguments given here come first, as with :func:`functools.partial`;
    they are constants of the record, so the work that depends only on them
    is done once, while recording.  The returned function takes the remaining
    arguments (keywords given to it join or replace the fixed ones, as with
    ``partial``; autograd's takes none); its first call runs ``fun`` (tracing it), later
    calls replay the recorded NumPy calls without running ``fun``'s Python
    code.  It is :func:`nablanet.jit` of that partial function, with jit's
    contract: a call with new shapes or dtypes records once more, and Python
    control flow on the inputs is guarded, never replayed stale.

    >>> import nablanet as nb, nablanet.numpy as anp
    >>> f = const_graph(lambda w, x: anp.tanh(w * x), 2.0)
    >>> float(f(0.25)) == float(anp.tanh(0.5))
    True

    The result is a :class:`~nablanet.autodiff.capture.Jitted`: ``.traces``
    counts the recordings and ``.program(*rest)`` shows one.
    """

    def call(*rest, **more):
        return fun(*args, *rest, **({**kwargs, **more} if more else kwargs))

    return jit(functools.update_wrapper(call, fun))
