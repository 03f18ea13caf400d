"""The engine: tracers, primitives, and the two sweeps.

A *primitive* is a NumPy function together with its derivative rules, one per
positional argument:

* a VJP maker ``(ans, *args, **kw) -> (g -> contribution)`` used by reverse
  mode (adjoints pulled from output to input), and
* a JVP maker ``(g, ans, *args, **kw) -> tangent contribution`` used by
  forward mode (tangents pushed from input to output).

Calling a primitive on plain arrays just runs NumPy.  Calling it on a
:class:`Tracer` hands the call to the tracer's *trace*:

* a :class:`ReverseTrace` records the call on its tape (the tape order is a
  topological order, so the backward sweep is one loop over it, never a
  recursion), and
* a :class:`ForwardTrace` evaluates the JVP rules right away, carrying the
  tangent alongside the value.

Traces nest.  Each has a level; a call is handled by the highest-level trace
among its arguments, which unboxes its own tracers and calls the primitive
again on what is inside (values that may be tracers of lower levels).  The
derivative rules are themselves written with differentiable primitives, so
derivatives of derivatives come for free: ``grad(grad(f))``, forward over
reverse for Hessian-vector products, and so on.
"""

from __future__ import annotations

import dis
import itertools
import sys

import numpy as np

__all__ = [
    "Primitive",
    "Tracer",
    "ReverseTrace",
    "ForwardTrace",
    "NotDifferentiableError",
    "backward_pass",
    "getval",
    "add_any",
    "NondiffPrimitive",
    "CTracer",
    "register_tracer_methods",
    "register_array_ops",
    "array_op",
    "call_traced",
]

_levels = itertools.count(1)
_new = object.__new__


class NotDifferentiableError(TypeError, NotImplementedError):
    """Raised when a traced value reaches a function that has no derivative rule.

    A ``TypeError`` (the value's type has no derivative there) and, as HIPS
    autograd raises for a primitive without a rule, a ``NotImplementedError``.
    """


_STORE_SUBSCR = dis.opmap.get("STORE_SUBSCR")  # (a Python without it: NumPy's own message, as before)


def _storing():
    """Whether the value's conversion was asked for by ``a[i] = value``.

    NumPy's ``ndarray.__setitem__`` converts the value from C (``float()`` for one element,
    ``__array__`` for a slice), so the Python frame above the tracer's conversion method
    (which called :func:`_refuse_a_store`, this function's caller) is the one executing the assignment.
    """
    try:  # (CPython's frames and bytecode: anywhere else, or any surprise, reads as "not an assignment")
        f = sys._getframe(3)
        code, i = f.f_code.co_code, f.f_lasti
        return _STORE_SUBSCR is not None and 0 <= i < len(code) and code[i] == _STORE_SUBSCR
    except (AttributeError, ValueError, TypeError):
        return False


def _refuse_a_store():
    """Raise the error for a traced value assigned into a plain NumPy array (``out[i] = x``), when the conversion
    that calls this was asked for by such an assignment (:func:`_storing`)."""
    if not _storing():
        return
    err = NotDifferentiableError(
        "nablanet: a traced value cannot be stored into a plain NumPy array (out[i] = x): the array "
        "would keep only its number, cut out of the derivative. Build the array from the traced "
        "values instead, with nablanet.numpy.stack, concatenate or where "
        "(out = anp.stack([x[0], 0.0]) rather than out = np.zeros(2); out[0] = x[0])"
    )
    err.stored_into_numpy = True
    raise err


def call_traced(fun, args, kwargs=None):
    """``fun(*args, **kwargs)``, called by a transform on traced arguments.

    Storing a traced value into one element of a NumPy array (``out[0] = x``), NumPy calls
    ``float()`` on it and replaces the refusal with its own "setting an array element with a
    sequence" (a ValueError caused by it): the refusal is raised instead, with the traceback
    of the assignment.
    """
    try:
        return fun(*args, **kwargs) if kwargs else fun(*args)
    except ValueError as e:
        cause = e.__cause__
        if not getattr(cause, "stored_into_numpy", False):
            raise
        raise cause.with_traceback(e.__traceback__) from None


class Primitive:
    """A function with derivative rules, the unit the engine differentiates.

    Parameters
    ----------
    fun : callable
        The function computed on plain arrays.
    name : str, optional
        Name used in error messages; defaults to ``fun.__name__``.
    """

    # Set by the numpy layer: ``lift(args)`` returns the arguments with (nested) lists of
    # traced values made into traced arrays, or None when there are none.
    lift = None

    #: Optional ``into(out, *args, **kw)``: the same result as ``fun`` (bit for bit), computed
    #: in the preallocated array ``out`` (of the result's shape, dtype and layout) and returned.
    #: A captured program (:func:`nablanet.jit`) calls it with a buffer it reuses from call to
    #: call; ``fun`` itself must then return a fresh array, never one of its arguments.
    into = None

    def __init__(self, fun, name=None):
        self.fun = fun
        self.name = name or getattr(fun, "__name__", repr(fun))
        self.vjps = {}
        self.jvps = {}
        self.__name__ = self.name
        self.__qualname__ = self.name
        self.__doc__ = getattr(fun, "__doc__", None)
        self.__wrapped__ = fun

    def __call__(self, *args, **kw):
        if kw and any(isinstance(v, Tracer) for v in kw.values()):
            args, kw = self._positional(args, kw)
        top = None
        mixed = False
        for a in args:
            if isinstance(a, Tracer):
                t = a._trace
                if top is None:
                    top = t
                elif t is not top:
                    mixed = True
                    if t.level > top.level:
                        top = t
        if top is None:
            try:
                return self.fun(*args, **kw) if kw else self.fun(*args)
            except NotDifferentiableError:
                # traced values inside (nested) lists: the numpy layer's hook stacks them into arrays
                lifted = Primitive.lift(args) if Primitive.lift is not None else None
                if lifted is None:
                    raise
                return self(*lifted, **kw)
        return top.process(self, args, kw, mixed)

    def __repr__(self):
        return f"<primitive {self.name}>"

    def _positional(self, args, kw):
        """A traced value passed by keyword: moved to its positional place (rules see positional arguments)."""
        import inspect

        try:
            bound = inspect.signature(self.fun).bind(*args, **kw)
        except (TypeError, ValueError):
            bound = None
        if bound is not None:
            bound.apply_defaults()
            args, kw = bound.args, bound.kwargs
        traced = [k for k, v in kw.items() if isinstance(v, Tracer)]
        if traced:
            raise NotDifferentiableError(
                f"nablanet: {self.name} got a traced value as keyword argument {traced[0]!r}, which its "
                f"derivative rules cannot see; pass it positionally"
            )
        return args, kw

    def defvjp(self, *makers, argnums=None):
        """Set reverse-mode rules, one maker per positional argument.

        They replace a joint rule (:meth:`defvjp_argnums`), which the engine would otherwise try first; rules
        already set for other arguments are kept.
        """
        if any(m is not None for m in makers):
            self.vjps.pop("argnums", None)
        for i, m in zip(range(len(makers)) if argnums is None else argnums, makers):
            if m is not None:
                self.vjps[i] = m
        return self

    def defjvp(self, *makers, argnums=None):
        """Set forward-mode rules, one maker per positional argument."""
        for i, m in zip(range(len(makers)) if argnums is None else argnums, makers):
            if m is not None:
                self.jvps[i] = m
        return self

    def defvjp_argnums(self, maker):
        """Set one reverse-mode rule for all arguments at once.

        ``maker(argnums, ans, *args, **kw)`` returns ``g -> contributions``, a
        sequence with one entry per argument number in ``argnums`` (the
        arguments being differentiated).  Use it when the contributions share
        work, as a dense layer's do: they all start from the same delta.
        """
        self.vjps = {"argnums": maker}
        return self

    nondiff = False

    def _missing(self, kind, argnum):
        return NotDifferentiableError(
            f"nablanet: no {kind} rule for argument {argnum} of primitive "
            f"'{self.name}'; it cannot be differentiated with respect to that "
            f"argument in {'reverse' if kind == 'VJP' else 'forward'} mode"
        )


class NondiffPrimitive(Primitive):
    """A function whose result carries no derivative (comparisons, ``argmax``, masks).

    Differentiating traces pass it through: they unbox their own values and
    call it again, so its result is a plain value with respect to them.  A
    capture (:func:`nablanet.jit`) still records the call, so a mask computed
    from an input is recomputed on every replay instead of being frozen.
    """

    nondiff = True

    def __call__(self, *args, **kw):
        top = _top_trace(args, None)
        if kw:
            top = _top_trace(kw.values(), top)
        if top is None:
            return self.fun(*args, **kw)
        if top.records_nondiff:
            return top.process(self, args, kw, True)
        unbox = top.unbox
        return self(*[unbox(a) for a in args], **{k: unbox(v) for k, v in kw.items()})


def _top_trace(items, top):
    """The highest-level trace among tracers in ``items``, also inside (nested) lists and tuples."""
    for a in items:
        if isinstance(a, Tracer):
            if top is None or a._trace.level > top.level:
                top = a._trace
        elif isinstance(a, (list, tuple)):
            top = _top_trace(a, top)
    return top


def _unbox_in(x, trace):
    """``x`` with ``trace``'s tracers replaced by their values, also inside (nested) lists and tuples."""
    if isinstance(x, Tracer):
        return x._value if x._trace is trace else x
    if isinstance(x, (list, tuple)) and not hasattr(x, "_fields"):
        return type(x)(_unbox_in(v, trace) for v in x)
    return x


# ----------------------------------------------------------------------------
# Tracers
# ----------------------------------------------------------------------------


class Tracer:
    """A value seen by a trace.  Behaves like the array it wraps.

    Operators and array methods are attached by :mod:`nablanet.numpy`, which
    maps them onto its differentiable primitives.
    """

    __slots__ = ("_value", "_trace")
    __array_priority__ = 100.0

    @property
    def shape(self):
        v = getval(self)
        return v.shape if hasattr(v, "shape") else np.shape(v)

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return int(np.prod(self.shape))

    @property
    def dtype(self):
        v = getval(self)
        return v.dtype if hasattr(v, "dtype") else np.result_type(v)

    def __len__(self):
        shape = self.shape
        if not shape:
            raise TypeError("len() of a 0-d traced value")
        return shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __bool__(self):
        return bool(getval(self))

    def _cut(what):
        def refuse(self):
            _refuse_a_store()
            raise TypeError(
                f"nablanet: {what} of a traced value would cut it out of the "
                "derivative; keep it as an array inside differentiated code"
            )

        return refuse

    __float__, __int__, __complex__ = _cut("float()"), _cut("int()"), _cut("complex()")
    __index__, item = _cut("an index (operator.index)"), _cut(".item()")
    tolist, tobytes = _cut(".tolist()"), _cut(".tobytes()")
    del _cut

    def __array__(self, dtype=None, copy=None):
        _refuse_a_store()
        raise NotDifferentiableError(
            "nablanet: a traced value was converted to a plain NumPy array "
            "(np.asarray/np.array, a NumPy function without a derivative rule, "
            "NumPy's own function on a list of traced values such as np.mean([x, y]) "
            "(NumPy converts the list before nablanet can see it), a NumPy scalar type "
            "such as np.float64(x), or a plain array's own method such as ndarray.dot(traced), "
            "which NumPy does not let nablanet see); use nablanet.numpy functions "
            "(anp.mean([x, y]), anp.int64(x)), np.dot(a, x) or a @ x inside differentiated code"
        )

    def __hash__(self):
        return id(self)

    def __repr__(self):
        return f"Tracer({getval(self)!r}, level={self._trace.level})"


def getval(x):
    """The value under any number of differentiating tracers.

    Outside :func:`nablanet.jit` this is a plain array.  While a function is
    being captured, the values that depend on its inputs are capture tracers
    (:class:`CTracer`): ``getval`` stops at them, so a rule that computes a
    mask from ``getval(x)`` records that computation in the program rather
    than freezing today's mask into it.
    """
    while isinstance(x, Tracer):
        if x.__class__ is CTracer:
            return x
        x = x._value
    return x


class CTracer(Tracer):
    """A value seen by a capture (:func:`nablanet.jit`): a slot of the program being recorded.

    It behaves like its array for shapes and dtypes, and every primitive
    applied to it is recorded.  Using its *value* in Python is refused or
    guarded: ``bool()`` (an ``if`` on a traced value) is recorded as a guard
    and the program is retraced when a later call takes the other branch;
    ``float()``, ``int()``, ``np.asarray`` and the like raise, naming the
    value, because the result would be frozen into the program.
    """

    __slots__ = ("_slot",)

    def __init__(self, value, trace, slot):
        self._value = value
        self._trace = trace
        self._slot = slot

    @property
    def shape(self):
        v = self._value
        return v.shape if hasattr(v, "shape") else np.shape(v)

    @property
    def dtype(self):
        v = self._value
        return v.dtype if hasattr(v, "dtype") else np.result_type(v)

    def __bool__(self):
        return self._trace.guard(self)

    def _refuse(self, what):
        return self._trace.concretization_error(self, what)

    def __float__(self):
        _refuse_a_store()
        raise self._refuse("float()")

    def __int__(self):
        _refuse_a_store()
        raise self._refuse("int()")

    def __index__(self):
        raise self._refuse("use as an index or size (__index__)")

    def __complex__(self):
        _refuse_a_store()
        raise self._refuse("complex()")

    def item(self):
        raise self._refuse(".item()")

    def tolist(self):
        raise self._refuse(".tolist()")

    def __array__(self, dtype=None, copy=None):
        _refuse_a_store()
        raise self._refuse("conversion to a plain NumPy array (np.asarray, np.array, or a NumPy "
                           "function or array method without a rule)")

    def __getattr__(self, name):
        raise AttributeError(
            f"nablanet.jit: {self._trace.describe(self)} has no attribute {name!r}; inside a captured "
            f"function, values that depend on the inputs can only go through primitives "
            f"(nablanet.numpy functions and operators)"
        )

    def __repr__(self):
        return f"CTracer(shape={self.shape}, dtype={self.dtype}, slot={self._slot})"


class RTracer(Tracer):
    """A reverse-mode tracer; it is also the node recorded on its trace's tape.

    Made by its :class:`ReverseTrace` (``_node``), which sets every slot and appends it to the tape:
    ``_args`` holds the values the primitive ``_prim`` was called with (``_kw`` its keywords),
    ``_in`` the arguments as they were passed, and ``_pos`` the positions in ``_in`` of this
    trace's tracers (the node's parents).  Nothing is allocated for the parents: ``_in`` is the
    call's own tuple and ``_pos`` a tuple shared by all nodes with the same positions, because
    every object that outlives the call is one more for the garbage collector to count and scan.
    """

    __slots__ = ("_prim", "_args", "_kw", "_in", "_pos", "_idx")

    @property
    def _parents(self):
        """``(position, tracer)`` for each parent."""
        return tuple((i, self._in[i]) for i in self._pos)


# _POSITIONS[m]: the positions of the bits set in m, for m < 256 (a node's parents among its first
# eight arguments); _positions(m) for more.
_POSITIONS = [tuple(k for k in range(8) if m >> k & 1) for m in range(256)]


def _positions(m):
    return tuple(k for k in range(m.bit_length()) if m >> k & 1)


class FTracer(Tracer):
    """A forward-mode tracer: a value and its tangent."""

    __slots__ = ("_tangent",)

    def __init__(self, value, trace, tangent):
        self._value = value
        self._trace = trace
        self._tangent = tangent


class ReverseTrace:
    """Records primitive calls on a tape for a later backward sweep."""

    __slots__ = ("level", "tape")
    records_nondiff = False

    def __init__(self):
        self.level = next(_levels)
        self.tape = []

    def new_input(self, value):
        return self._node(value, None, (), None, (), ())

    def _node(self, value, prim, args, kw, inp, pos):
        """A new node on the tape (see :class:`RTracer` for the fields)."""
        t = _new(RTracer)
        t._value = value
        t._trace = self
        t._prim = prim
        t._args = args
        t._kw = kw
        t._in = inp
        t._pos = pos
        tape = self.tape
        t._idx = len(tape)
        tape.append(t)
        return t

    def unbox(self, x):
        return _unbox_in(x, self)

    def process(self, prim, args, kw, mixed):
        vals = list(args)
        m = 0  # bit i set: argument i is this trace's tracer
        i = 0
        for a in args:
            if type(a) is RTracer and a._trace is self:  # this trace makes RTracers only (no subclass)
                v = vals[i] = a._value
                m |= 1 << i
                if isinstance(v, Tracer):
                    mixed = True
            i += 1
        # Lower-level tracers among the values: let their traces see the call.
        if mixed:
            ans = prim(*vals, **kw)
        else:
            ans = prim.fun(*vals, **kw) if kw else prim.fun(*vals)
        # self._node(ans, prim, vals, kw, args, positions), written out: one Python call less per operation
        t = _new(RTracer)
        t._value = ans
        t._trace = self
        t._prim = prim
        t._args = vals
        t._kw = kw or None
        t._in = args
        t._pos = _POSITIONS[m] if m < 256 else _positions(m)
        tape = self.tape
        t._idx = len(tape)
        tape.append(t)
        return t


class ForwardTrace:
    """Pushes tangents alongside values through the JVP rules."""

    __slots__ = ("level",)
    records_nondiff = False

    def __init__(self):
        self.level = next(_levels)

    def new_input(self, value, tangent):
        return FTracer(value, self, tangent)

    def unbox(self, x):
        return _unbox_in(x, self)

    def process(self, prim, args, kw, mixed):
        vals = list(args)
        boxed = []
        for i, a in enumerate(args):
            if isinstance(a, Tracer) and a._trace is self:
                v = vals[i] = a._value
                boxed.append((i, a._tangent))
                if isinstance(v, Tracer):
                    mixed = True
        ans = prim(*vals, **kw) if mixed else prim.fun(*vals, **kw)
        jvps = prim.jvps
        tangent = None
        for i, g in boxed:
            rule = jvps.get(i)
            if rule is not None:
                t = rule(g, ans, *vals, **kw)
            elif "*" in jvps:
                t = jvps["*"](i, g, ans, *vals, **kw)
            else:
                raise prim._missing("JVP", i)
            tangent = t if tangent is None else add_any(tangent, t)
        return FTracer(ans, self, tangent)


def backward_pass(seeds, trace, record=None):
    """Sweep ``trace``'s tape backwards from ``seeds`` = [(tracer, adjoint)].

    Returns a dict mapping each input tracer (tape nodes without a primitive)
    that received an adjoint to that adjoint.  With ``record`` (a dict), every
    node's adjoint is also stored there, for showing the sweep step by step.  Iterative: the tape is already
    in topological order, so a chain of any length costs no recursion.
    """
    tape = trace.tape
    n = 1 + max(t._idx for t, _ in seeds)
    adj = [None] * n
    for t, g in seeds:
        i = t._idx
        adj[i] = g if adj[i] is None else add_any(adj[i], g)
    inputs = {}
    for i in range(n - 1, -1, -1):
        g = adj[i]
        if g is None:
            continue
        adj[i] = None
        node = tape[i]
        if record is not None:
            record[node] = g
        prim = node._prim
        if prim is None:
            inputs[node] = g
            continue
        vjps = prim.vjps
        ans, args, kw = node._value, node._args, node._kw or _NO_KW
        # A complex result of real arguments (x * 1j, fft(x)): a real argument's adjoint is the
        # real part of the rule's contribution (autograd's convention, see _real_part).
        dt = getattr(ans, "dtype", None)
        cplx = dt is not _FLOAT64 and (dt.kind == "c" if dt is not None else isinstance(ans, complex))
        pos, inp = node._pos, node._in
        if "argnums" in vjps:
            joint = vjps["argnums"](pos, ans, *args, **kw)(g)
            for argnum, c in zip(pos, joint):
                parent = inp[argnum]
                if cplx:
                    c = _real_part(c, parent)
                j = parent._idx
                adj[j] = c if adj[j] is None else add_any(adj[j], c)
            continue
        nargs = -1 if kw else len(args)
        for argnum in pos:
            parent = inp[argnum]
            maker = vjps.get(argnum)
            if maker is None:
                if "*" not in vjps:
                    raise prim._missing("VJP", argnum)
                c = vjps["*"](argnum, ans, *args, **kw)(g)  # one rule for any number of arguments
            # maker(ans, *args, **kw)(g); spelt out for one and two arguments, which Python calls faster
            elif nargs == 1:
                c = maker(ans, args[0])(g)
            elif nargs == 2:
                c = maker(ans, args[0], args[1])(g)
            else:
                c = maker(ans, *args, **kw)(g)
            if cplx:
                c = _real_part(c, parent)
            j = parent._idx
            a = adj[j]
            if a is None:
                adj[j] = c
            elif type(a) is _ndarray and type(c) is _ndarray:
                adj[j] = _np_add(a, c)  # what add_any computes on plain arrays, without its scan for tracers
            else:
                adj[j] = add_any(a, c)
    return inputs


_ndarray, _np_add, _FLOAT64, _NO_KW = np.ndarray, np.add, np.dtype(np.float64), {}


def _is_complex(x):
    dt = getattr(x, "dtype", None)
    return dt.kind == "c" if dt is not None else isinstance(x, complex)


def _real_part(c, parent):
    """The contribution ``c`` to ``parent``, made real when ``parent`` holds a real value.

    nablanet follows HIPS autograd's convention for complex numbers: the adjoint
    of a complex value ``w = u + iv`` is ``dL/du - i dL/dv`` for a real-valued
    ``L``, so a rule contributes ``g * dw/dx`` to argument ``x``, and for a real
    ``x`` the derivative ``dL/dx`` is the real part of that product.
    """
    if _is_complex(c) and not _is_complex(parent._value):
        return array_op("real")(c)
    return c


add_any = Primitive(np.add, "add_any")
add_any.defvjp(lambda ans, a, b: lambda g: g, lambda ans, a, b: lambda g: g)
add_any.defjvp(lambda g, ans, a, b: g, lambda g, ans, a, b: g)


# ----------------------------------------------------------------------------
# The hook through which the array layer (nablanet.numpy) plugs in
# ----------------------------------------------------------------------------

_array_ops = {}


def register_tracer_methods(methods):
    """Attach operators and array methods to every traced value.

    ``methods`` maps attribute names (``"__add__"``, ``"T"``,
    ``"__array_ufunc__"``...) to functions or properties.  The engine knows
    nothing of NumPy's namespace; :mod:`nablanet.numpy` calls this once on
    import, as autograd's ``ArrayBox.register`` does.  A user-defined array
    layer may call it too.
    """
    for name, fun in methods.items():
        setattr(Tracer, name, fun)


def register_array_ops(**ops):
    """Register the differentiable array functions the transforms themselves need.

    ``jacobian`` assembles its rows with ``stack`` and ``reshape``; they must be
    differentiable (a Hessian is a Jacobian of a Jacobian), so they come from
    the array layer rather than from NumPy.
    """
    _array_ops.update(ops)


def array_op(name):
    """A differentiable array function registered with :func:`register_array_ops`."""
    try:
        return _array_ops[name]
    except KeyError:
        raise RuntimeError(
            f"nablanet.autodiff: no array function {name!r} is registered; import nablanet.numpy "
            f"(it registers its functions with the engine on import)"
        ) from None
