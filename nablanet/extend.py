"""Define your own differentiable primitives, the way nablanet defines its own.

>>> from nablanet.extend import primitive, defvjp, defjvp
>>> import numpy as np
>>> @primitive
... def logsigmoid(x):
...     return -np.logaddexp(0.0, -x)
>>> defvjp(logsigmoid, lambda ans, x: lambda g: g * np.exp(-np.logaddexp(0.0, x)))
>>> defjvp(logsigmoid, lambda g, ans, x: g * np.exp(-np.logaddexp(0.0, x)))

The conventions are HIPS autograd's: one maker per positional argument; a VJP
maker is ``(ans, *args, **kwargs) -> (g -> contribution to that argument)``
and a JVP maker is ``(g, ans, *args, **kwargs) -> contribution to the output's
tangent``.  ``None`` leaves an argument without a rule (differentiating with
respect to it then raises).  Write the rules with ``nablanet.numpy`` functions
and they can be differentiated again.

``vspace(x)`` is the vector space of a value (autograd's): zeros, ones, a
standard basis, random vectors and differentiable arithmetic for arrays and
pytrees of them, to write rules and tests that work for any argument type.
"""

import collections

import numpy as np

from . import numpy as anp
from .autodiff.core import NondiffPrimitive, NotDifferentiableError, Primitive, Tracer, getval
from .autodiff.tree import _leaf_path, tree_flatten, tree_unflatten
from .numpy._primitives import unbroadcast

__all__ = [
    "primitive", "defvjp", "defvjp_argnums", "defjvp", "defvjp_argnum", "defjvp_argnum", "defjvp_argnums",
    "def_linear", "notrace_primitive", "Box",
    "Primitive", "Tracer", "getval", "isbox", "unbroadcast", "NotDifferentiableError",
    "vspace", "VSpace", "ArrayVSpace", "ComplexArrayVSpace", "ContainerVSpace",
]


def isbox(x):
    """Whether ``x`` is a traced value (autograd's name for its boxes)."""
    return isinstance(x, Tracer)


def primitive(fun):
    """Wrap ``fun`` (a function on plain arrays) as a primitive that can carry rules."""
    return Primitive(fun)


def defvjp(fun, *makers, argnums=None):
    """Attach reverse-mode rules to primitive ``fun``, one maker per positional argument."""
    # the class's method, not the instance's: a nablanet.core.primitive's own defvjp is autograd's deprecated form
    Primitive.defvjp(_require_primitive(fun, "defvjp"), *makers, argnums=argnums)


def defvjp_argnums(fun, maker):
    """autograd's form: one reverse-mode rule for all arguments, ``maker(argnums, ans, args, kwargs)`` returns
    ``g -> contributions``, one per argument number in ``argnums`` (the arguments being differentiated)."""
    _require_primitive(fun, "defvjp_argnums").defvjp_argnums(
        lambda argnums, ans, *args, **kw: maker(argnums, ans, args, kw))


def defjvp(fun, *makers, argnums=None):
    """Attach forward-mode rules to primitive ``fun``, one maker per positional argument.

    A maker may be ``"same"`` (autograd's spelling) for an argument ``fun`` is
    linear in: the tangent is ``fun`` itself with the tangent in that argument's place.
    """
    prim = _require_primitive(fun, "defjvp")
    nums = range(len(makers)) if argnums is None else argnums
    prim.defjvp(*(_jvp_maker(prim, i, m) for i, m in zip(nums, makers)), argnums=argnums)


def _jvp_maker(prim, argnum, maker):
    if isinstance(maker, str):
        if maker != "same":
            raise ValueError(f"defjvp: {maker!r} for argument {argnum} of {prim.name} is not a rule; give a "
                             f"function (g, ans, *args) -> tangent, 'same' for an argument it is linear in, or None")
        return lambda g, ans, *args, **kw: _linear_in(prim, argnum, g, args, kw)
    return maker


def _linear_in(prim, argnum, g, args, kw):
    return prim(*args[:argnum], g, *args[argnum + 1:], **kw)


def def_linear(fun):
    """Declare primitive ``fun`` linear in each argument (multilinear), which gives all its forward-mode rules:
    the tangent from argument ``i`` is ``fun`` with the tangent in place of argument ``i`` (autograd's ``def_linear``),
    replacing its earlier forward-mode rules. Its reverse-mode rules are still given with :func:`defvjp`."""
    prim = _require_primitive(fun, "def_linear")
    prim.jvps = {"*": lambda argnum, g, ans, *args, **kw: _linear_in(prim, argnum, g, args, kw)}


def defjvp_argnums(fun, maker):
    """autograd's form: one forward-mode rule for all arguments, ``maker(argnums, gs, ans, args, kwargs) -> tangent``
    for the tangents ``gs`` of the arguments numbered ``argnums``.  A tangent is linear in the input tangents, so
    nablanet asks it one argument at a time (``argnums`` of length one) and adds the results. It replaces the
    primitive's earlier forward-mode rules, as autograd's does."""
    _require_primitive(fun, "defjvp_argnums").jvps = {
        "*": lambda argnum, g, ans, *args, **kw: maker((argnum,), (g,), ans, args, kw)}


def notrace_primitive(fun):
    """``fun`` as a function whose result carries no derivative (autograd's ``notrace_primitive``): traced
    arguments are replaced by their values, as for comparisons and ``argmax``; a :func:`nablanet.jit`
    capture still records the call, so it is recomputed on every replay."""
    return NondiffPrimitive(fun)


#: autograd's name for a traced value's class (``isinstance(x, Box)`` is :func:`isbox`).
Box = Tracer


def _require_primitive(fun, where):
    if not isinstance(fun, Primitive):
        raise TypeError(f"{where}: {fun!r} is not a primitive; wrap it with nablanet.extend.primitive first")
    return fun


def defvjp_argnum(fun, maker):
    """autograd's form: one maker for every argument, ``maker(argnum, ans, args, kwargs) -> (g -> contribution)``,
    replacing the primitive's earlier reverse-mode rules (as autograd's does; a per-argument rule would shadow it)."""
    _require_primitive(fun, "defvjp_argnum").vjps = {"*": lambda argnum, ans, *args, **kw: maker(argnum, ans, args, kw)}


def defjvp_argnum(fun, maker):
    """autograd's form: one maker for every argument, ``maker(argnum, g, ans, args, kwargs) -> tangent contribution``,
    replacing the primitive's earlier forward-mode rules (as autograd's does)."""
    _require_primitive(fun, "defjvp_argnum").jvps = {
        "*": lambda argnum, g, ans, *args, **kw: maker(argnum, g, ans, args, kw)}


# ----------------------------------------------------------------------------
# Vector spaces (autograd's ``vspace``)
# ----------------------------------------------------------------------------


class VSpace:
    """The real vector space a value lives in: the home of gradients and tangents of that value.

    ``vspace(x)`` gives it for a float or complex array or scalar, or for a
    pytree (dicts, lists, tuples, namedtuples) of them; two values are in the
    same space when their structure, shapes and dtypes agree (``==``; a dict's
    entries in another key order are the same space, as in autograd, and the
    methods take them).  The methods are HIPS autograd's:

    * vectors of the space: :meth:`zeros`, :meth:`ones` (the sum of the basis),
      :meth:`standard_basis` (``size`` vectors, orthonormal under
      :meth:`inner_prod`), :meth:`randn`, :meth:`examples`;
    * arithmetic, differentiable in every vector argument (they are built from
      ``nablanet.numpy`` operations): :meth:`add`, :meth:`scalar_mul`,
      :meth:`inner_prod`, :meth:`covector`; :meth:`mut_add` adds in place
      into a plain array when it can;
    * coordinates: :meth:`flatten` is the real vector ``c`` with
      ``x = sum(c[k] * basis[k])``, so ``inner_prod(x, y) == flatten(x) @ flatten(y)``.

    A complex array of ``n`` entries is a real space of dimension ``2n``
    (each entry's real and imaginary parts); its inner product is
    ``Re(sum(conj(x) * y))`` and its covector is ``conj(x)``, autograd's
    convention for complex gradients.

    >>> import numpy as np
    >>> vs = vspace({"W": np.zeros((2, 2)), "b": 0.0})
    >>> vs.size, vs == vspace({"W": np.ones((2, 2)), "b": 1.0})
    (5, True)
    >>> float(vs.inner_prod(vs.ones(), vs.ones()))
    5.0
    """

    #: type -> ``maker(value) -> VSpace``; see :meth:`register`.
    mappings = {}
    iscomplex = False

    def __init__(self, value):
        pass

    @classmethod
    def register(cls, value_type, vspace_maker=None):
        """Make ``vspace(x)`` for ``type(x) is value_type`` return ``vspace_maker(x)`` (by default ``cls(x)``)."""
        VSpace.mappings[value_type] = vspace_maker or cls

    def examples(self, n=3, rng=None):
        """Vectors to test a function of this space on: ``zeros()``, ``ones()`` and ``n`` from ``randn``."""
        return [self.zeros(), self.ones(), *(self.randn(rng) for _ in range(n))]

    def mut_add(self, x_prev, x_new):
        """``x_prev + x_new``, written into ``x_prev`` when it is a writable plain array (``None`` is zeros)."""
        if x_prev is None:
            return self.add(self.zeros(), x_new)
        return self._mut_add(x_prev, x_new)

    def __ne__(self, other):
        return not self == other


def _conj(x):
    return x.conj() if isinstance(x, Tracer) else np.conj(x)


class ArrayVSpace(VSpace):
    """The space of real (float) arrays of one shape and dtype; scalars are 0-d arrays."""

    def __init__(self, value):
        self.shape = tuple(value.shape) if hasattr(value, "shape") else ()
        self.dtype = value.dtype if hasattr(value, "dtype") else np.result_type(value)

    @property
    def size(self):
        return int(np.prod(self.shape))

    @property
    def ndim(self):
        return len(self.shape)

    def __eq__(self, other):
        return type(self) is type(other) and (self.shape, self.dtype) == (other.shape, other.dtype)

    def __hash__(self):
        return hash((type(self), self.shape, self.dtype))

    def __repr__(self):
        return f"{type(self).__name__}(shape={self.shape}, dtype={self.dtype})"

    def zeros(self):
        return np.zeros(self.shape, self.dtype)

    def ones(self):
        return np.ones(self.shape, self.dtype)

    def standard_basis(self):
        for idx in np.ndindex(*self.shape):
            e = self.zeros()
            e[idx] = 1
            yield e

    def randn(self, rng=None):
        """A standard normal vector, from ``rng`` (a ``np.random.Generator``) or NumPy's global generator."""
        draw = np.random.standard_normal if rng is None else rng.standard_normal
        return np.asarray(draw(self.shape)).astype(self.dtype)

    def add(self, x, y):
        return x + y

    def _mut_add(self, x, y):
        if type(x) is np.ndarray and x.flags.writeable and not isinstance(y, Tracer):
            x += y
            return x
        return x + y

    def scalar_mul(self, x, a):
        return x * a

    def inner_prod(self, x, y):
        return anp.sum(x * y)

    def covector(self, x):
        return x

    def flatten(self, x):
        return anp.ravel(x)


class ComplexArrayVSpace(ArrayVSpace):
    """The space of complex arrays of one shape and dtype: a real space of twice as many dimensions."""

    iscomplex = True

    @property
    def size(self):
        return 2 * int(np.prod(self.shape))

    def ones(self):
        return np.full(self.shape, 1 + 1j, self.dtype)

    def standard_basis(self):
        for idx in np.ndindex(*self.shape):
            for unit in (1, 1j):
                e = self.zeros()
                e[idx] = unit
                yield e

    def randn(self, rng=None):
        return super().randn(rng) + 1j * super().randn(rng)

    def inner_prod(self, x, y):
        return anp.real(anp.sum(_conj(x) * y))

    def covector(self, x):
        return _conj(x)

    def flatten(self, x):
        return anp.ravel(anp.stack([anp.real(x), anp.imag(x)], axis=-1))


class ContainerVSpace(VSpace):
    """The direct sum of the spaces of a pytree's leaves (dicts, lists, tuples, namedtuples)."""

    def __init__(self, value):
        leaves, self.treedef = tree_flatten(value)
        self.spaces = tuple(_leaf_vspace(v, self.treedef, k) for k, v in enumerate(leaves))

    @property
    def size(self):
        return sum(s.size for s in self.spaces)

    @property
    def shape(self):
        """The structure with each leaf's space in its place (autograd's ``ContainerVSpace.shape``)."""
        return tree_unflatten(self.treedef, list(self.spaces))

    @property
    def iscomplex(self):
        return any(s.iscomplex for s in self.spaces)

    def __eq__(self, other):
        if type(self) is not type(other):
            return False
        if self.treedef == other.treedef:
            return self.spaces == other.spaces
        # a dict is a set of entries: the same keys in another order are the same space (as in autograd)
        spaces, treedef = tree_flatten(_align(tree_unflatten(other.treedef, list(other.spaces)), self.treedef))
        return treedef == self.treedef and tuple(spaces) == self.spaces

    def __hash__(self):  # the same for dicts written in another key order
        return hash((len(self.spaces), frozenset(collections.Counter(self.spaces).items())))

    def __repr__(self):
        return f"ContainerVSpace({self.shape!r})"

    def _leaves(self, x, where):
        leaves, treedef = tree_flatten(x)
        if treedef != self.treedef:  # dicts with their keys in another order are read in this space's order
            leaves, treedef = tree_flatten(_align(x, self.treedef))
            if treedef != self.treedef:
                raise ValueError(f"VSpace.{where}: a value of structure {treedef} is not in {self!r}")
        return leaves

    def _build(self, leaves):
        return tree_unflatten(self.treedef, list(leaves))

    def _map(self, where, method, *xs):
        per_arg = [self._leaves(x, where) for x in xs]
        return self._build(getattr(s, method)(*vals) for s, *vals in zip(self.spaces, *per_arg))

    def zeros(self):
        return self._build(s.zeros() for s in self.spaces)

    def ones(self):
        return self._build(s.ones() for s in self.spaces)

    def randn(self, rng=None):
        return self._build(s.randn(rng) for s in self.spaces)

    def standard_basis(self):
        zeros = [s.zeros() for s in self.spaces]
        for k, s in enumerate(self.spaces):
            for e in s.standard_basis():
                yield self._build(zeros[:k] + [e] + zeros[k + 1:])

    def add(self, x, y):
        return self._map("add", "add", x, y)

    def _mut_add(self, x, y):
        return self._map("mut_add", "mut_add", x, y)

    def scalar_mul(self, x, a):
        return self._build(s.scalar_mul(v, a) for s, v in zip(self.spaces, self._leaves(x, "scalar_mul")))

    def covector(self, x):
        return self._map("covector", "covector", x)

    def inner_prod(self, x, y):
        terms = [s.inner_prod(a, b) for s, a, b in
                 zip(self.spaces, self._leaves(x, "inner_prod"), self._leaves(y, "inner_prod"))]
        return sum(terms[1:], terms[0]) if terms else 0.0

    def flatten(self, x):
        parts = [s.flatten(v) for s, v in zip(self.spaces, self._leaves(x, "flatten"))]
        return anp.concatenate(parts) if parts else np.zeros(0)


def _align(x, treedef):
    """``x`` with each dict's entries in ``treedef``'s key order where it has the same keys (else as it is)."""
    if type(treedef) is not tuple:
        return x
    t, keys, children = treedef
    if t is dict:
        if type(x) is not dict or len(x) != len(keys) or any(k not in x for k in keys):
            return x
        return {k: _align(x[k], c) for k, c in zip(keys, children)}
    if type(x) is not t or len(x) != len(children):
        return x
    items = [_align(v, c) for v, c in zip(x, children)]
    return t(items) if t is list or t is tuple else t(*items)


def _leaf_vspace(value, treedef, k):
    """The space of leaf ``k`` of a tree; an error names where the leaf is."""
    try:
        return vspace(value)
    except TypeError as e:
        raise TypeError(f"vspace: leaf {_leaf_path(treedef, k)} of the tree: {str(e).removeprefix('vspace: ')}") \
            from None


_FLOAT_SCALARS = (float, np.float16, np.float32, np.float64, np.longdouble)
_COMPLEX_SCALARS = (complex, np.complex64, np.complex128, np.clongdouble)


def vspace(value):
    """The :class:`VSpace` of ``value``: a float or complex array or scalar, or a pytree of them.

    Traced values are in the space of the value they stand for.  Integer and
    boolean values are in no vector space (they have no derivative); nor are
    other objects unless their type was given one with :meth:`VSpace.register`.
    """
    maker = VSpace.mappings.get(type(value))
    if maker is not None:
        return maker(value)
    if type(value) is np.ndarray or isinstance(value, Tracer):
        kind = value.dtype.kind
        if kind == "c":
            return ComplexArrayVSpace(value)
        if kind == "f":
            return ArrayVSpace(value)
    elif isinstance(value, _COMPLEX_SCALARS):
        return ComplexArrayVSpace(value)
    elif isinstance(value, _FLOAT_SCALARS):
        return ArrayVSpace(value)
    elif type(value) in (dict, list, tuple) or (isinstance(value, tuple) and hasattr(value, "_fields")):
        return ContainerVSpace(value)  # the containers of nablanet's pytrees
    elif isinstance(value, (dict, list, tuple)):  # a subclass (OrderedDict...) is a leaf of a pytree: it recursed
        base = next(t for t in (dict, list, tuple) if isinstance(value, t)).__name__
        raise TypeError(
            f"vspace: no vector space for a value of type {type(value).__name__}, a subclass of {base}: gradients "
            f"live in plain dicts, lists, tuples and namedtuples (give {base}(value) instead), or register the "
            f"type with VSpace.register")
    raise TypeError(
        f"vspace: no vector space for a value of type {type(value).__name__}"
        + (f" (dtype {value.dtype})" if hasattr(value, "dtype") else "")
        + ": gradients live in spaces of float or complex arrays and scalars and of dicts, lists and tuples "
        "of them; give another type one with VSpace.register"
    )

