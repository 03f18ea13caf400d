"""Capture: trace a function once per input signature, replay it as straight-line NumPy.

``jit(f)`` returns a function that computes what ``f`` computes.  On the first
call with a new *signature* it runs ``f`` with its array inputs wrapped in
capture tracers (:class:`~nablanet.autodiff.core.CTracer`); every primitive
called on them (and on what is computed from them) is recorded as one step of
a program.  Because the derivative rules are written with primitives, when
``f`` is ``grad``/``value_and_grad``/``vjp``/``jvp``/``hessian`` of something
the derivative sweeps run under the capture as well and are recorded too:
the program is the forward pass *and* the backward pass, as plain NumPy
calls.  Later calls with the same signature skip tracing, tapes and rules:
the program is compiled once to a Python function of straight-line code
(``s7 = matmul(s3, s5)`` ...) that is simply called.

Everything that does not depend on the inputs (closures, shapes, seeds of
the backward sweep) is evaluated once while tracing and is a constant of the
program; steps nothing needs are dropped.

The signature of a call is the pytree structure of every argument, the shape
and dtype of every array leaf, the type of every other traced leaf, and the
value of every static argument and every Python ``int``/``bool``/``str``
leaf.  See :func:`jit` for the contract.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .core import CTracer, Tracer, _levels, _unbox_in
from .tree import tree_flatten, tree_unflatten

__all__ = ["jit", "ConcretizationError", "Program"]


class ConcretizationError(TypeError):
    """A value that depends on a captured function's inputs was used as a Python value."""


class _GuardFailed(Exception):
    """Raised inside a replay when a recorded ``if`` goes the other way."""


# Leaves that are inputs of the program (their values change from call to call).
_TRACED_SCALARS = (float, complex)


def _is_traced_leaf(x):
    return isinstance(x, (np.ndarray, np.generic, np.random.Generator, float, complex)) and not isinstance(x, bool)


class CaptureTrace:
    """Records every primitive applied to its tracers as one step of a program."""

    records_nondiff = True

    def __init__(self, names):
        self.level = next(_levels)
        self.ops = []  # ("call", prim, argspecs, kwspecs, slot) | ("guard", slot, outcome)
        self.nslots = 0
        self.names = names  # input slot -> a name such as "argument 0[1]['W']"
        self.where = {}  # slot -> primitive name that computed it
        self.foreign = None  # a tracer of another trace that reached the program (not capturable)

    def new_input(self, value):
        t = CTracer(value, self, self.nslots)
        self.nslots += 1
        return t

    def unbox(self, x):
        return _unbox_in(x, self)

    def _spec(self, a):
        if isinstance(a, Tracer):
            if a._trace is self:
                return ("s", a._slot), a._value
            self.foreign = a
        elif type(a) is list or type(a) is tuple:  # e.g. a list of traced arrays given to a nondiff primitive
            pairs = [self._spec(x) for x in a]
            if any(p[0][0] != "c" for p in pairs):
                return ("l", type(a), [p[0] for p in pairs]), type(a)(p[1] for p in pairs)
        return ("c", a), a

    def process(self, prim, args, kw, mixed):
        specs, vals = [], []
        for a in args:
            s, v = self._spec(a)
            specs.append(s)
            vals.append(v)
        kwspecs, kwvals = {}, {}
        for k, a in kw.items():
            kwspecs[k], kwvals[k] = self._spec(a)
        inner = any(isinstance(v, Tracer) for v in vals) or any(isinstance(v, Tracer) for v in kwvals.values())
        if inner:  # a tracer below the capture (the function closed over one): not capturable
            ans = prim(*vals, **kwvals)
        else:
            ans = prim.fun(*vals, **kwvals)
        slot = self.nslots
        self.nslots += 1
        self.ops.append(("call", prim, specs, kwspecs, slot))
        self.where[slot] = prim.name
        if prim.nondiff:
            # A result without derivative may have a shape that depends on the values (nonzero,
            # unique...); later steps were recorded for this shape, so it is guarded.
            shape = _shapes(ans)
            if shape not in {_shapes(v) for v in vals if hasattr(v, "shape")}:
                self.ops.append(("shape", slot, shape))
        return CTracer(ans, self, slot)

    def guard(self, t):
        outcome = bool(t._value)
        self.ops.append(("guard", t._slot, outcome))
        return outcome

    def describe(self, t):
        slot = t._slot
        if slot in self.names:
            return f"the traced input {self.names[slot]}"
        return f"a traced value (the result of primitive '{self.where.get(slot, '?')}', shape {t.shape})"

    def concretization_error(self, t, what):
        return ConcretizationError(
            f"nablanet.jit: {what} of {self.describe(t)}: inside a captured function a value that "
            f"depends on the inputs has no fixed Python value, and using one would freeze this call's "
            f"value into the program. Keep it an array (nablanet.numpy functions, anp.where instead "
            f"of an if on its elements), or pass it as a static argument (static_argnums)."
        )


def _shapes(v):
    """The shape of an array, or the shapes of a tuple of arrays (as ``nonzero`` returns)."""
    if isinstance(v, tuple):
        return tuple(_shapes(x) for x in v)
    return np.shape(v)


def _inline(c):
    """Source text for a constant that can be written into the program, or None."""
    t = type(c)
    if c is None or t is bool or t is int or t is str:
        return repr(c)
    if t is float and math.isfinite(c):
        return repr(c)
    if t is tuple and all(_inline(x) is not None for x in c):
        return "(" + "".join(_inline(x) + ", " for x in c) + ")"
    return None


def _needs(spec, need):
    if spec[0] == "s":
        need.add(spec[1])
    elif spec[0] == "l":
        for x in spec[2]:
            _needs(x, need)


class Program:
    """One recorded program: straight-line NumPy calls compiled to a Python function.

    Attributes
    ----------
    n_inputs : int
        Number of traced input leaves (the program's parameters).
    steps : list of str
        The program as source lines (``s7 = matmul(s3, s5)``), for reading.
    source : str
        The whole compiled function.
    """

    def __init__(self, trace, n_inputs, out_specs, out_def, rng_inputs):
        self.n_inputs = n_inputs
        self.out_def = out_def
        ops = trace.ops
        # Dead-step elimination: keep what the outputs and the guards need.
        need = {s[1] for s in out_specs if s[0] == "s"}
        keep = []
        for op in reversed(ops):
            if op[0] in ("guard", "shape"):
                need.add(op[1])
                keep.append(op)
                continue
            _, prim, specs, kwspecs, slot = op
            if slot not in need:
                continue
            keep.append(op)
            for s in list(specs) + list(kwspecs.values()):
                _needs(s, need)
        keep.reverse()
        self.ops = keep
        self.has_guards = any(op[0] != "call" for op in keep)
        self.rng_inputs = rng_inputs if self.has_guards else ()
        self.prims = [op[1] for op in keep if op[0] == "call"]
        ns = {"_GuardFailed": _GuardFailed, "_shapes": _shapes}
        consts = {}

        def ref(spec):
            kind, v = spec[0], spec[1]
            if kind == "s":
                return f"s{v}"
            if kind == "l":
                items = "".join(ref(x) + ", " for x in spec[2])
                return f"[{items}]" if v is list else f"({items})"
            text = _inline(v)
            if text is not None:
                return text
            key = id(v)
            if key not in consts:
                consts[key] = (f"c{len(consts)}", v)
            return consts[key][0]

        funs = {}
        lines = []
        for op in keep:
            if op[0] == "guard":
                lines.append(f"if {'not ' if op[2] else ''}s{op[1]}: raise _GuardFailed({op[1]})")
                continue
            if op[0] == "shape":
                lines.append(f"if _shapes(s{op[1]}) != {op[2]!r}: raise _GuardFailed({op[1]})")
                continue
            _, prim, specs, kwspecs, slot = op
            fkey = id(prim.fun)
            if fkey not in funs:
                name = "".join(ch if ch.isalnum() else "_" for ch in prim.name)
                funs[fkey] = (f"f{len(funs)}_{name}", prim.fun)
            call = ", ".join([ref(s) for s in specs] + [f"{k}={ref(s)}" for k, s in kwspecs.items()])
            lines.append(f"s{slot} = {funs[fkey][0]}({call})")
        outs = []
        for s in out_specs:
            if s[0] == "s":
                outs.append(f"s{s[1]}")
            else:
                text = _inline(s[1])
                if text is not None:
                    outs.append(text)
                elif isinstance(s[1], np.ndarray):
                    outs.append(f"{ref(s)}.copy()")  # a constant output: a fresh array per call
                else:
                    outs.append(ref(s))
        params = ", ".join(f"s{i}" for i in range(n_inputs))
        self.steps = lines
        body = "\n".join("    " + ln for ln in lines + [f"return [{', '.join(outs)}]"])
        self.source = f"def replay({params}):\n{body}\n"
        for name, v in funs.values():
            ns[name] = v
        for name, v in consts.values():
            ns[name] = v
        exec(compile(self.source, "<nablanet.jit program>", "exec"), ns)  # noqa: S102 - generated from the recorded steps
        self.replay = ns["replay"]

    def __len__(self):
        return len(self.prims)

    def __repr__(self):
        return f"<nablanet.jit Program: {self.n_inputs} inputs, {len(self.prims)} steps>"

    def run(self, leaves):
        if self.rng_inputs:
            saved = [(leaves[i], leaves[i].bit_generator.state) for i in self.rng_inputs]
            try:
                return self.replay(*leaves)
            except _GuardFailed:
                for g, st in saved:  # the draws before the failed guard are undone
                    g.bit_generator.state = st
                raise
        return self.replay(*leaves)


def _path(prefix, treedef, k):
    return f"{prefix} leaf {k}"


class Jitted:
    """A captured function; see :func:`jit`."""

    def __init__(self, fun, static_argnums=()):
        self.fun = fun
        self.static_argnums = frozenset(static_argnums)
        self._cache = {}
        self.traces = 0  # how many times the function was traced (for tests and benchmarks)
        functools.update_wrapper(self, fun)

    def _split(self, args, kwargs):
        """Flatten the call into (key, traced leaves, rebuild info), or None to call through."""
        key = []
        dyn = []
        parts = []
        static = self.static_argnums
        for i, a in enumerate(args):
            if i in static:
                try:
                    hash(a)
                except TypeError:
                    raise TypeError(
                        f"nablanet.jit: static argument {i} of type {type(a).__name__} is not hashable"
                    ) from None
                key.append(("static", a))
                parts.append(None)
                continue
            leaves, treedef = tree_flatten(a)
            key.append(treedef)
            kinds = []
            for x in leaves:
                t = type(x)
                if t is np.ndarray:
                    key.append((x.shape, x.dtype))
                    kinds.append(True)
                    dyn.append(x)
                elif isinstance(x, Tracer):
                    return None
                elif _is_traced_leaf(x):
                    key.append((t, getattr(x, "shape", None), getattr(x, "dtype", None)))
                    kinds.append(True)
                    dyn.append(x)
                else:
                    try:
                        hash(x)
                        key.append((t, x))
                    except TypeError:
                        key.append((t, id(x)))
                    kinds.append(False)
            parts.append((treedef, leaves, kinds))
        if kwargs:
            kl, kd = tree_flatten(kwargs)
            for x in kl:
                if isinstance(x, Tracer):
                    return None
            key.append(("kw", kd))
            kinds = []
            for x in kl:
                if _is_traced_leaf(x):
                    key.append((type(x), getattr(x, "shape", None), getattr(x, "dtype", None)))
                    kinds.append(True)
                    dyn.append(x)
                else:
                    try:
                        hash(x)
                        key.append((type(x), x))
                    except TypeError:
                        key.append((type(x), id(x)))
                    kinds.append(False)
            parts.append(("kw", kd, kl, kinds))
        return tuple(key), dyn, parts

    def __call__(self, *args, **kwargs):
        split = self._split(args, kwargs)
        if split is None:  # called on tracers of a transform outside: just be f
            return self.fun(*args, **kwargs)
        key, dyn, parts = split
        programs = self._cache.get(key)
        if programs:
            for k, prog in enumerate(programs):
                try:
                    out = prog.run(dyn)
                except _GuardFailed:
                    continue
                if k:  # the branch taken most recently is tried first next time
                    programs.insert(0, programs.pop(k))
                return tree_unflatten(prog.out_def, out)
        return self._trace(key, args, parts, dyn)

    def _trace(self, key, args, parts, dyn):
        names = {}
        trace = CaptureTrace(names)
        new_args = list(args)
        kwargs = {}
        rng_inputs = []
        n = 0
        for i, part in enumerate(parts):
            if part is None:
                continue
            if part[0] == "kw":
                _, kd, leaves, kinds = part
                label = "keyword arguments"
            else:
                kd, leaves, kinds = part
                label = f"argument {i}"
            boxed = []
            for j, (x, traced) in enumerate(zip(leaves, kinds)):
                if traced:
                    t = trace.new_input(x)
                    names[t._slot] = label if len(leaves) == 1 else f"{label} (leaf {j})"
                    if isinstance(x, np.random.Generator):
                        rng_inputs.append(n)
                    n += 1
                    boxed.append(t)
                else:
                    boxed.append(x)
            if part[0] == "kw":
                kwargs = tree_unflatten(kd, boxed)
            else:
                new_args[i] = tree_unflatten(kd, boxed)
        out = self.fun(*new_args, **kwargs)
        self.traces += 1
        leaves, out_def = tree_flatten(out)
        specs, values = [], []
        for o in leaves:
            if isinstance(o, Tracer):
                if o._trace is trace:
                    specs.append(("s", o._slot))
                    values.append(o._value)
                    continue
                trace.foreign = o
            specs.append(("c", o))
            values.append(o)
        result = tree_unflatten(out_def, values)
        if trace.foreign is None:
            prog = Program(trace, n, specs, out_def, tuple(rng_inputs))
            self._cache.setdefault(key, []).insert(0, prog)
        return result

    def program(self, *args, **kwargs):
        """The :class:`Program` a call with these arguments replays (tracing it if needed)."""
        split = self._split(args, kwargs)
        if split is None:
            raise TypeError("nablanet.jit: program() needs concrete arguments, not traced values")
        key, dyn, parts = split
        if key not in self._cache:
            self._trace(key, args, parts, dyn)
        for prog in self._cache.get(key, ()):
            try:
                prog.run(dyn)
            except _GuardFailed:
                continue
            return prog
        raise RuntimeError("nablanet.jit: this call cannot be captured (it reads a traced value from outside)")

    def __repr__(self):
        return f"<nablanet.jit of {getattr(self.fun, '__name__', self.fun)!r}>"


def jit(fun, static_argnums=()):
    """Capture ``fun``: trace it once per input signature, then replay the recorded program.

    Parameters
    ----------
    fun : callable
        Any function of arrays and pytrees (dicts, lists, tuples, namedtuples)
        of arrays built from differentiable primitives (``nablanet.numpy``,
        operators on arrays, layers, losses), including ``grad``,
        ``value_and_grad``, ``vjp``, ``jvp``, ``jacobian``, ``hessian`` of such a
        function: their derivative sweeps are recorded as well.
    static_argnums : int or tuple of int
        Positional arguments that are not traced: their values are part of the
        signature (they must be hashable) and a new value traces anew.

    Returns
    -------
    Jitted
        Callable like ``fun``, giving the same results **bit for bit**: the
        replay calls the same NumPy functions on the same values in the same
        order.  ``.program(*args)`` shows the recorded program; ``.traces``
        counts tracings.

    The contract
    ------------
    * **Signature.** Traced inputs are the NumPy-array leaves (keyed by shape
      and dtype), NumPy scalars, Python ``float``/``complex`` leaves (keyed by
      type) and ``numpy.random.Generator`` leaves.  Python ``int``, ``bool``,
      ``str``, ``None`` and other leaves are static: keyed by value (by
      identity if unhashable) and frozen into the program.
    * **Constants.** Arrays ``fun`` reads from closures or globals are
      constants of the program, read once while tracing: pass anything that
      changes between calls (parameters, data) as an argument.
    * **Randomness is an input.** Pass a ``numpy.random.Generator`` as an
      argument and draw from it only inside a primitive that takes it as an
      argument (as ``nablanet.nn`` dropout does); each replay then draws
      anew.  Inside the function a Generator argument is a traced value, so a
      draw outside a primitive (``rng.random(...)``) raises rather than
      freezing one draw into the program.
    * **Python control flow on traced values is never replayed stale.**
      ``bool()`` of a traced value (``if x > 0:``, ``while``, ``and``/``or``)
      is recorded as a guard: a later call on which it comes out the other
      way is traced again (each branch is kept).  ``float()``, ``int()``,
      ``.item()``, ``np.asarray`` or indexing a NumPy array with a traced
      value raise :class:`ConcretizationError` naming the value.
    * **Outputs are fresh arrays**, never overwritten by a later call.
    * **Composition.** ``jit(grad(f))`` captures both sweeps; ``grad(jit(f))``
      (a jitted function called on tracers of an outer transform) simply runs
      ``f`` under that transform; a jitted function called inside another's
      trace is inlined.  A function that reads a tracer of an outer transform
      from a closure is run but not cached.
    """
    if isinstance(static_argnums, int):
        static_argnums = (static_argnums,)
    return Jitted(fun, tuple(static_argnums))
