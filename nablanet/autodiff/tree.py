"""Pytrees: nested dicts, lists and tuples whose leaves are arrays or scalars.

``tree_flatten`` turns a pytree into a list of leaves and a *treedef* that
``tree_unflatten`` uses to rebuild the same structure around new leaves.
``None`` is an empty subtree (it has no leaves), as in JAX.
"""

from __future__ import annotations

__all__ = ["tree_flatten", "tree_unflatten", "tree_map", "tree_leaves", "tree_structure"]

_LEAF = "*"


def _flatten(tree, leaves):
    t = type(tree)
    if t is dict:
        keys = tuple(tree)
        return (dict, keys, tuple(_flatten(tree[k], leaves) for k in keys))
    if t is list or t is tuple:
        return (t, None, tuple(_flatten(x, leaves) for x in tree))
    if tree is None:
        return None
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):  # namedtuple
        return (t, None, tuple(_flatten(x, leaves) for x in tree))
    leaves.append(tree)
    return _LEAF


def tree_flatten(tree):
    """Return ``(leaves, treedef)`` for a pytree."""
    leaves = []
    treedef = _flatten(tree, leaves)
    return leaves, treedef


def _unflatten(treedef, it):
    if treedef is _LEAF:
        return next(it)
    if treedef is None:
        return None
    t, keys, children = treedef
    if t is dict:
        return {k: _unflatten(c, it) for k, c in zip(keys, children)}
    items = [_unflatten(c, it) for c in children]
    if t is list:
        return items
    if t is tuple:
        return tuple(items)
    return t(*items)


def tree_unflatten(treedef, leaves):
    """Rebuild the structure described by ``treedef`` around ``leaves``."""
    it = iter(leaves)
    out = _unflatten(treedef, it)
    if next(it, it) is not it:
        raise ValueError("tree_unflatten: more leaves than the structure holds")
    return out


def _leaf_path(treedef, k):
    """The index path (``['w'][1]``) of leaf number ``k`` in a treedef."""
    path, seen = [], [0]

    def walk(node, trail):
        if node == _LEAF:
            if seen[0] == k:
                path.extend(trail)
                return True
            seen[0] += 1
            return False
        if node is None:
            return False
        t, keys, children = node
        for i, c in enumerate(children):
            if walk(c, trail + [f"[{keys[i]!r}]" if t is dict else f"[{i}]"]):
                return True
        return False

    walk(treedef, [])
    return "".join(path)


def _describe_node(node):
    if node == _LEAF:
        return "a leaf"
    if node is None:
        return "None"
    t, keys, children = node
    if t is dict:
        return f"a dict with keys {', '.join(map(repr, keys))}" if keys else "an empty dict"
    return f"a {t.__name__} of {len(children)}"


def _tree_difference(a, b):
    """Where the treedefs ``a`` and ``b`` first differ: ``(path, what a has there, what b has there)``, the path
    as :func:`_leaf_path` writes it (``"['w'][1]"``, ``""`` at the root); None when they are the same."""
    if a == b:
        return None
    if a == _LEAF or b == _LEAF or a is None or b is None or a[0] is not b[0] or a[1] != b[1] or len(a[2]) != len(b[2]):
        what_a, what_b = _describe_node(a), _describe_node(b)
        if a not in (_LEAF, None) and b not in (_LEAF, None) and a[0] is dict is b[0] and set(a[1]) == set(b[1]):
            what_b += " (the same keys in another order)"
        return "", what_a, what_b
    t, keys, children = a
    for i, (ca, cb) in enumerate(zip(children, b[2])):
        found = _tree_difference(ca, cb)
        if found:
            step = f"[{keys[i]!r}]" if t is dict else f"[{i}]"
            return step + found[0], found[1], found[2]
    return None


def tree_leaves(tree):
    return tree_flatten(tree)[0]


def tree_structure(tree):
    return tree_flatten(tree)[1]


def tree_map(f, tree, *rest):
    """Apply ``f`` leaf-wise to one or more pytrees of the same structure."""
    leaves, treedef = tree_flatten(tree)
    others = []
    for r in rest:
        lv, td = tree_flatten(r)
        if td != treedef:
            at, first, other = _tree_difference(treedef, td)
            raise ValueError(f"tree_map: the pytrees have different structures: at {at or 'the root'} the first "
                             f"has {first}, another {other}")
        others.append(lv)
    return tree_unflatten(treedef, [f(*xs) for xs in zip(leaves, *others)])
