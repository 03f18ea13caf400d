"""HIPS autograd's ``autograd.util`` names, for code that imports them from there.

A compatibility module at the top of the package; nothing in nablanet imports it.

- ``quick_grad_check(fun, arg0, extra_args=(), kwargs={})``: deprecated in autograd (since 1.2) and here,
  with a ``DeprecationWarning``; it checks ``fun``'s first-order reverse-mode derivative with respect to
  ``arg0`` against finite differences, raising ``AssertionError`` when they disagree.  Use
  :func:`nablanet.test_util.check_grads` (``check_grads(fun, modes=["rev"], order=1)(*args)``).
- ``subvals(x, ivs)`` and ``subval(x, i, v)``: the tuple ``x`` with the entries at the given indices replaced.
- ``func(f)``: ``f`` itself (autograd uses it to name an unbound method as a function).
- ``toposort(end_node, parents)``: the nodes of a graph reachable from ``end_node``, each after every node
  that has it as a parent (so ``end_node`` first), ``parents(node)`` giving a node's parents (by default
  its ``parents`` attribute).
"""

from __future__ import annotations

import operator
import warnings

from .autodiff.check import check_grads

__all__ = ["quick_grad_check", "subvals", "subval", "func", "toposort"]


def subvals(x, ivs):
    """The tuple ``x`` with ``x[i] = v`` for each pair ``(i, v)`` of ``ivs``."""
    out = list(x)
    for i, v in ivs:
        out[i] = v
    return tuple(out)


def subval(x, i, v):
    """The tuple ``x`` with ``x[i] = v``."""
    return subvals(x, ((i, v),))


def func(f):
    """``f`` itself."""
    return f


def toposort(end_node, parents=operator.attrgetter("parents")):
    """Yield every node reachable from ``end_node`` (through ``parents``), a node only after all the nodes
    reachable from ``end_node`` that have it as a parent: children before parents, ``end_node`` first."""
    children = {}  # node -> how many of its children (edges counted with multiplicity) are still to come
    stack, seen = [end_node], {end_node}
    while stack:
        for p in parents(stack.pop()):
            children[p] = children.get(p, 0) + 1
            if p not in seen:
                seen.add(p)
                stack.append(p)
    ready = [end_node]
    while ready:
        node = ready.pop()
        yield node
        for p in parents(node):
            children[p] -= 1
            if children[p] == 0:
                ready.append(p)


_DEPRECATED = ("quick_grad_check is deprecated (autograd deprecated it in 1.2); use "
               "nablanet.test_util.check_grads(fun, modes=['rev'], order=1)(*args)")


def quick_grad_check(fun, arg0, extra_args=(), kwargs=None, verbose=True, eps=1e-4, rtol=1e-4, atol=1e-6, rs=None):
    """Deprecated: check ``fun(arg0, *extra_args, **kwargs)``'s first-order reverse-mode derivative with respect
    to ``arg0`` against central differences (``AssertionError`` when they disagree).

    It is ``check_grads(fun, modes=["rev"], order=1)`` at that function's own step and tolerances, as autograd's
    is its ``check_grads`` at its own: ``eps``, ``rtol``, ``atol``, ``verbose`` and ``rs`` are accepted for
    autograd's signature and not used, as there (the check is :func:`nablanet.test_util.check_grads`'s, along a
    seeded random direction, and prints nothing).
    """
    warnings.warn(_DEPRECATED, DeprecationWarning, stacklevel=2)
    kwargs = {} if kwargs is None else kwargs

    def fun_of_arg0(x):
        return fun(x, *extra_args, **kwargs)

    fun_of_arg0.__name__ = getattr(fun, "__name__", "function")
    check_grads(fun_of_arg0, modes=["rev"], order=1)(arg0)
