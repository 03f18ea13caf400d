"""Capture: trace a function once per input signature, replay it as straight-line NumPy.

``jit(f)`` returns a function that computes what ``f`` computes.  On the first
call with a new *signature* it runs ``f`` with its array inputs wrapped in
capture tracers (:class:`~nablanet.autodiff.core.CTracer`); every primitive
called on them (and on what is computed from them) is recorded as one step of
a program.  Because the derivative rules are written with primitives, when
``f`` is ``grad``/``value_and_grad``/``vjp``/``jvp``/``hessian`` of something
the derivative sweeps run under the capture as well and are recorded too:
the program is the forward pass *and* the backward pass, as plain NumPy
calls.  The record is a :class:`~nablanet.autodiff.tape.Tape` of
:class:`~nablanet.autodiff.tape.Node` objects, the format of the public tape.
Later calls with the same signature skip tracing, tapes and rules: the tape
is compiled once (:class:`Program`) to a Python function of straight-line
code (``s7 = matmul(s3, s5, out=b2)`` ...) that is simply called, writing
into buffers it allocated once.

A call with the signature of one of the last few calls is recognised
without building its key: a check compiled for that signature compares the
call's containers and leaves (types, shapes, dtypes, strides, static values)
in straight-line code and returns the leaves to replay on; anything it does
not recognise goes the general way (key, cache, trace).

Everything that does not depend on the inputs (closures, shapes, seeds of
the backward sweep) is evaluated once while tracing and is a constant of the
program; steps nothing needs are dropped.

The signature of a call is the pytree structure of every argument, the
shape, dtype and strides of every array leaf, the type of every other traced
leaf, and the value of every static argument and every Python
``int``/``bool``/``str`` leaf.  See :func:`jit` for the contract.
"""

from __future__ import annotations

import functools
import math
import sys
import threading

import numpy as np

from .core import CTracer, Tracer, _levels, _unbox_in, call_traced
from .tape import Node, NodeRef, Tape
from .tree import _LEAF, tree_flatten, tree_unflatten

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
    """Records every primitive applied to its tracers as one node of a :class:`~nablanet.autodiff.tape.Tape`.

    ``nodes[k]`` is the value in slot ``k`` (the inputs first), in the public
    tape's format: the primitive, its arguments with a
    :class:`~nablanet.autodiff.tape.NodeRef` where a recorded value was read,
    and the value.  ``checks`` are what a replay must verify besides: the
    truth value of a value used in an ``if`` and the shape of a result whose
    shape depends on the values, each as ``(position, kind, slot, expected)``,
    checked before node ``position`` runs.
    """

    records_nondiff = True

    def __init__(self, names):
        self.level = next(_levels)
        self.nodes = []
        self.checks = []
        self.names = names  # input slot -> a name such as "argument 0[1]['W']"
        self.foreign = None  # a tracer of another trace that reached the program (not capturable)

    def new_input(self, value):
        slot = len(self.nodes)
        self.nodes.append(Node(slot, "input", None, (), (), {}, value))
        return CTracer(value, self, slot)

    def unbox(self, x):
        return _unbox_in(x, self)

    def _ref(self, a):
        """``(argument as recorded, value)``: a NodeRef for one of this trace's values, else the constant."""
        if isinstance(a, Tracer):
            if a._trace is self:
                return NodeRef(a._slot), a._value
            self.foreign = a
        elif type(a) is list or type(a) is tuple:  # e.g. a list of traced arrays given to a nondiff primitive
            pairs = [self._ref(x) for x in a]
            if any(_has_ref(p[0]) for p in pairs):
                return type(a)(p[0] for p in pairs), type(a)(p[1] for p in pairs)
        return a, a

    def process(self, prim, args, kw, mixed):
        refs, vals, parents = [], [], []
        for i, a in enumerate(args):
            r, v = self._ref(a)
            refs.append(r)
            vals.append(v)
            if type(r) is NodeRef:
                parents.append((i, r.id))
        kwrefs, kwvals = {}, {}
        for k, a in kw.items():
            kwrefs[k], kwvals[k] = self._ref(a)
        inner = any(isinstance(v, Tracer) for v in vals) or any(isinstance(v, Tracer) for v in kwvals.values())
        if inner:  # a tracer below the capture (the function closed over one): not capturable
            ans = prim(*vals, **kwvals)
        else:
            ans = prim.fun(*vals, **kwvals)
        slot = len(self.nodes)
        self.nodes.append(Node(slot, prim.name, prim, tuple(parents), tuple(refs), kwrefs, ans))
        if prim.nondiff:
            # A result without derivative may have a shape that depends on the values (nonzero,
            # unique...); later steps were recorded for this shape, so it is checked.
            shape = _shapes(ans)
            if shape not in {_shapes(v) for v in vals if hasattr(v, "shape")}:
                self.checks.append((slot + 1, "shape", slot, shape))
        return CTracer(ans, self, slot)

    def guard(self, t):
        outcome = bool(t._value)
        self.checks.append((len(self.nodes), "guard", t._slot, outcome))
        return outcome

    def describe(self, t):
        slot = t._slot
        if slot in self.names:
            return f"the traced input {self.names[slot]}"
        return f"a traced value (the result of primitive '{self.nodes[slot].op}', shape {t.shape})"

    def concretization_error(self, t, what):
        return ConcretizationError(
            f"nablanet.jit: {what} of {self.describe(t)}: inside a captured function a value that "
            f"depends on the inputs has no fixed Python value, and using one would freeze this call's "
            f"value into the program. Keep it an array (nablanet.numpy functions, anp.where instead "
            f"of an if on its elements), or pass it as a static argument (static_argnums)."
        )


def _has_ref(x):
    if type(x) is NodeRef:
        return True
    return (type(x) is list or type(x) is tuple) and any(_has_ref(v) for v in x)


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


_CODE = {}  # generated source -> its code object: programs and checks that differ only in constants share one
_CODE_MAX = 512  # sources kept (the oldest go first) ...
_CODE_MAX_CHARS = 4_000_000  # ... and their total size: they outlive the functions that made them
_code_chars = 0  # the total size of the sources in _CODE
_CODE_LOCK = threading.Lock()


def _compiled(source, filename):
    """``compile(source)``, once per distinct source (the names in it are bound by each ``exec``'s namespace)."""
    global _code_chars
    code = _CODE.get(source)
    if code is None:
        code = compile(source, filename, "exec")
        with _CODE_LOCK:
            if source not in _CODE and len(source) <= _CODE_MAX_CHARS:
                while _CODE and (len(_CODE) >= _CODE_MAX or _code_chars + len(source) > _CODE_MAX_CHARS):
                    old = next(iter(_CODE))
                    del _CODE[old]
                    _code_chars -= len(old)
                _CODE[source] = code
                _code_chars += len(source)
    return code


def _refs_in(x, out):
    """Append the slot ids of the NodeRefs in an argument (also inside lists and tuples)."""
    if type(x) is NodeRef:
        out.append(x.id)
    elif type(x) is list or type(x) is tuple:
        for v in x:
            _refs_in(v, out)
    return out


def _resolve(x, rep):
    """An argument with every NodeRef replaced by the one of its representative slot."""
    if type(x) is NodeRef:
        r = rep[x.id]
        return x if r == x.id else NodeRef(r)
    if (type(x) is list or type(x) is tuple) and _has_ref(x):
        return type(x)(_resolve(v, rep) for v in x)
    return x


def _cse_key(x):
    """A hashable stand-in for an argument: slots by id, inline constants by text, others by identity."""
    if type(x) is NodeRef:
        return ("n", x.id)
    if type(x) is list or type(x) is tuple:
        return (type(x), tuple(_cse_key(v) for v in x))
    text = _inline(x)
    return ("t", type(x), text) if text is not None else ("c", id(x))


_SCALARS = (np.generic, float, int, complex, bool)


def _is_one(c):
    """Whether ``c`` is a real constant 1 (a Python or NumPy number, or an array of ones)."""
    if type(c) is float or type(c) is int:
        return c == 1
    if isinstance(c, (np.ndarray, np.generic)) and c.dtype.kind in "fiu" and np.size(c) <= 64:
        return bool(np.all(c == 1))
    return False


_RANDOM = (np.random.Generator, np.random.RandomState, np.random.BitGenerator)


def _pure(prim, args, kwargs):
    """Whether two calls with the same arguments may be merged: NumPy's and the library's functions,
    never one that draws random numbers (from NumPy's global state or a Generator it is given)."""
    fun = prim.fun
    if not isinstance(fun, np.ufunc):
        mod = getattr(fun, "__module__", None) or ""
        if not (mod.startswith("nablanet.") or mod.startswith("numpy")) or mod.startswith("numpy.random"):
            return False
    return not any(isinstance(a, _RANDOM) for a in (*args, *kwargs.values()))


def _meta(v):
    """What a buffer for ``v`` must match: type, shape, dtype and memory layout (strides)."""
    return (type(v), getattr(v, "shape", None), getattr(v, "dtype", None), getattr(v, "strides", None))


class Program:
    """One recorded program, compiled to a Python function of straight-line NumPy calls.

    The compiler reads the capture's tape (:class:`~nablanet.autodiff.tape.Tape`):

    1. **Simplify.**  A product by a constant one that keeps the shape and
       dtype is its other factor (``x * 1.0`` is ``x``, bit for bit); two
       calls of the same library or NumPy function on the same arguments are
       one (never a call that draws from a Generator); steps that neither an
       output nor a check needs are dropped.
    2. **Buffers.**  A step that can write its result into an array (a NumPy
       ufunc, or a primitive with an ``into`` form, such as the fused dense
       layer or ``sum``) gets a buffer allocated once for the program.  A
       liveness analysis of the program hands a buffer to a later step once
       nothing can read it any more: every value that may share its memory (a
       view such as a transpose, or the result of a function that might
       return its argument) is dead.  An elementwise ufunc writes over an
       argument that dies at that step.  Values that may be returned to the
       caller never live in buffers, so outputs are fresh arrays; inputs and
       constants are never written.  With destinations (:meth:`Jitted.call_into`),
       an output is written straight into the caller's array.
    3. **Emit** one function (``s7 = matmul(s3, s5, out=b2)`` ...), which
       builds the output pytree directly.

    Attributes
    ----------
    n_inputs : int
        Number of traced input leaves (the program's parameters).
    steps : list of str
        The program as source lines, for reading.
    source : str
        The whole compiled function.
    buffers : list of numpy.ndarray
        The buffers the program writes into.
    """

    def __init__(self, tape, checks, out_def, rng_inputs, dests=None):
        nodes = tape.nodes
        n_inputs = self.n_inputs = len(tape.inputs)
        self.out_def = out_def
        meta = [_meta(n.value) for n in nodes]
        outputs = tape.outputs
        # an output that is a constant: the program keeps its own copy (the tracing call hands the
        # caller the array itself, which the caller may write into) and returns a copy of it per call
        out_consts = [c.copy() if isinstance(c, np.ndarray) else c for c in tree_flatten(tape.output_value)[0]]
        dests = dests or [None] * len(outputs)
        rng_slots = {i for i in range(n_inputs) if issubclass(meta[i][0], np.random.Generator)}

        # 1. simplify: aliases (x * 1) and common subexpressions, then dead steps
        rep = list(range(len(nodes)))
        seen = {}
        calls = []  # (node, args, kwargs) with arguments resolved to representatives
        for node in nodes[n_inputs:]:
            args = tuple(_resolve(a, rep) for a in node.args)
            kwargs = {k: _resolve(v, rep) for k, v in node.kwargs.items()}
            prim, slot = node.primitive, node.id
            if prim.fun is np.multiply and len(args) == 2 and not kwargs:
                for a, b in (args, args[::-1]):
                    if type(a) is NodeRef and type(b) is not NodeRef and _is_one(b) and meta[a.id] == meta[slot] \
                            and meta[slot][2] is not None and meta[slot][2].kind in "fiu":
                        rep[slot] = a.id
                        break
                if rep[slot] != slot:
                    continue
            slots_read = _refs_in(args, [])
            _refs_in(tuple(kwargs.values()), slots_read)
            if _pure(prim, args, kwargs) and not rng_slots.intersection(slots_read):
                key = (id(prim.fun), _cse_key(args), tuple((k, _cse_key(v)) for k, v in kwargs.items()))
                other = seen.get(key)
                if other is not None and meta[other] == meta[slot]:
                    rep[slot] = other
                    continue
                seen[key] = slot
            calls.append((node, args, kwargs, slots_read))
        out_slots = [None if o is None else rep[o] for o in outputs]
        checks = [(pos, kind, rep[slot], expected) for pos, kind, slot, expected in checks]
        need = {s for s in out_slots if s is not None} | {c[2] for c in checks}
        kept = []
        for call in reversed(calls):
            if call[0].id in need:
                kept.append(call)
                need.update(call[3])
        kept.reverse()
        self.prims = [c[0].primitive for c in kept]

        # 2. which steps write into an array, what may share memory with what, how long it lives
        def writable(node, args, kwargs):
            m = meta[node.id]
            if m[0] is not np.ndarray or not m[1]:
                return None
            fun = node.primitive.fun
            if isinstance(fun, np.ufunc):
                if fun.nout == 1 and not kwargs and len(args) == fun.nin:
                    return "ufunc" if fun.signature is None else "gufunc"
                return None
            return "into" if getattr(node.primitive, "into", None) is not None else None

        kinds = {c[0].id: writable(*c[:3]) for c in kept}
        n_out = {}
        for s in out_slots:
            if s is not None:
                n_out[s] = n_out.get(s, 0) + 1
        direct = {}  # slot -> output index whose destination it is written into
        for k, (s, d) in enumerate(zip(out_slots, dests)):
            if d is not None and s is not None and s >= n_inputs and kinds.get(s) and n_out[s] == 1:
                if d.strides == meta[s][3]:  # else it is filled by a copy (a result keeps its own layout)
                    direct[s] = k

        def alias_sets(buffered):
            al = {}
            for node, _, _, read in kept:
                s = node.id
                if s in buffered:
                    al[s] = frozenset((s,))
                elif kinds[s] or isinstance(node.value, _SCALARS):
                    al[s] = frozenset()  # a fresh array (a ufunc's or an into-capable primitive's result) or a number
                else:  # it might return (a view of) any of its arguments
                    al[s] = frozenset().union(*(al.get(r, frozenset()) for r in read))
            return al

        buffered = {s for s, k in kinds.items() if k and s not in direct}
        al = alias_sets(buffered)
        pinned = set()
        for s, d in zip(out_slots, dests):
            if s is not None and (d is None or s not in direct):
                pinned |= al.get(s, frozenset())
        buffered -= pinned
        al = alias_sets(buffered)
        last = {}
        for pos, (_, _, _, read) in enumerate(kept):
            for r in read:
                for o in al.get(r, ()):
                    last[o] = pos
        check_at = {}
        for pos, kind, slot, expected in checks:
            check_at.setdefault(pos, []).append((kind, slot, expected))
        order = {c[0].id: p for p, c in enumerate(kept)}
        for pos, _, slot, _ in checks:  # a check reads its slot just before node `pos`
            p = max([order[n] for n in order if n < pos], default=-1) + 1
            for o in al.get(slot, ()):
                last[o] = max(last.get(o, -1), p)
        for s, d in zip(out_slots, dests):  # destinations filled by a copy read their slot at the end
            if s is not None and d is not None and s not in direct:
                for o in al.get(s, ()):
                    last[o] = len(kept)
        dies = {}
        for o, p in last.items():
            dies.setdefault(p, []).append(o)
        free, buffers, target = {}, [], {}
        for pos, (node, _, _, read) in enumerate(kept):
            s = node.id
            if s in buffered:
                m = meta[s]
                key = m[1:]
                pick = None
                if kinds[s] == "ufunc":  # elementwise: may overwrite an argument that dies here
                    for r in read:
                        if r in target and al.get(r) == frozenset((r,)) and last.get(r) == pos \
                                and meta[r][1:] == key and target[r] is not None:
                            pick = target[r]
                            dies[pos].remove(r)
                            break
                if pick is None:
                    pool = free.get(key)
                    if pool:
                        pick = pool.pop()
                    else:
                        pick = len(buffers)
                        buffers.append(np.empty_like(node.value))  # the layout a fresh result has
                target[s] = pick
                if s not in last:  # written, never read (only returned through a view?): release now
                    dies.setdefault(pos, []).append(s)
            for o in dies.get(pos, ()):
                if target.get(o) is not None:
                    free.setdefault(meta[o][1:], []).append(target[o])
        self.buffers = buffers

        # 3. emit
        ns = {"_GuardFailed": _GuardFailed, "_shapes": _shapes}
        consts = {}

        def ref(x):
            if type(x) is NodeRef:
                return f"s{x.id}"
            if (type(x) is list or type(x) is tuple) and _has_ref(x):
                items = "".join(ref(v) + ", " for v in x)
                return f"[{items}]" if type(x) is list else f"({items})"
            # a float is a named constant, not text: programs that differ in a penalty's weight or a batch's
            # scale share one source, compiled once
            text = _inline(x) if type(x) is not float else None
            if text is not None:
                return text
            key = id(x)
            if key not in consts:
                consts[key] = (f"c{len(consts)}", x)
            return consts[key][0]

        funs = {}

        def fname(fun, name):
            if id(fun) not in funs:
                # ASCII only: Python refuses some alphanumerics in names (², ½) and NFKC-normalizes others (ﬁ -> fi)
                safe = "".join(ch if ch.isascii() and ch.isalnum() else "_" for ch in name)
                funs[id(fun)] = (f"f{len(funs)}_{safe}", fun)
            return funs[id(fun)][0]

        dest_names = {}
        for k, d in enumerate(dests):
            if d is not None:
                dest_names[k] = f"o{len(dest_names)}"
        lines = []

        def emit_checks(pos):
            for kind, slot, expected in check_at.get(pos, ()):
                if kind == "guard":
                    lines.append(f"if {'not ' if expected else ''}s{slot}: raise _GuardFailed({slot})")
                else:
                    lines.append(f"if _shapes(s{slot}) != {expected!r}: raise _GuardFailed({slot})")

        emitted = set()
        drawn = undo = False  # a step has read a Generator input; a check follows such a step
        for node, args, kwargs, read in kept:
            s = node.id
            for pos in sorted(p for p in check_at if p <= s and p not in emitted):
                emit_checks(pos)
                emitted.add(pos)
                undo = undo or drawn
            drawn = drawn or not rng_slots.isdisjoint(read)
            prim = node.primitive
            call = ", ".join([ref(a) for a in args] + [f"{k}={ref(v)}" for k, v in kwargs.items()])
            dst = dest_names[direct[s]] if s in direct else (f"b{target[s]}" if s in buffered else None)
            if dst is None:
                lines.append(f"s{s} = {fname(prim.fun, prim.name)}({call})")
            elif kinds[s] in ("ufunc", "gufunc"):
                lines.append(f"s{s} = {fname(prim.fun, prim.name)}({call}, out={dst})")
            else:
                lines.append(f"s{s} = {fname(prim.into, prim.name + '_into')}({dst}, {call})")
        for pos in sorted(p for p in check_at if p not in emitted):
            emit_checks(pos)
            undo = undo or drawn
        tail = []
        leaves = []
        returned = set()
        for k, (s, c) in enumerate(zip(out_slots, out_consts)):
            if k in dest_names:
                if s not in direct:
                    tail.append(f"{dest_names[k]}[...] = {ref(c) if s is None else f's{s}'}")
                leaves.append(dest_names[k])
            elif s is not None:
                # a merged or dropped step (x * 1, a repeated call) must not hand the caller one array
                # twice, or an input, where the function computed a new array
                merged = s != outputs[k] and (s < n_inputs or s in returned) and isinstance(nodes[s].value, np.ndarray)
                leaves.append(f"s{s}.copy()" if merged else f"s{s}")
                returned.add(s)
            else:
                text = _inline(c)
                leaves.append(text if text is not None else f"{ref(c)}.copy()" if isinstance(c, np.ndarray)
                              else ref(c))
        for k, b in enumerate(buffers):
            ns[f"b{k}"] = b
        if _depth(out_def) < 64:
            result = _emit_tree(out_def, iter(leaves), lambda v: ref(v))
        else:  # Python's parser refuses ~200 nested brackets: the output is built around the leaves instead
            ns["_tree_unflatten"], ns["_out_def"] = tree_unflatten, out_def
            result = f"_tree_unflatten(_out_def, [{''.join(x + ', ' for x in leaves)}])"
        params = ", ".join([f"s{i}" for i in range(n_inputs)] + list(dest_names.values()))
        self.steps = lines
        body = "\n".join("    " + ln for ln in lines + tail + [f"return {result}"])
        self.source = f"def replay({params}):\n{body}\n"
        for name, v in funs.values():
            ns[name] = v
        for name, v in consts.values():
            ns[name] = v
        exec(_compiled(self.source, "<nablanet.jit program>"), ns)  # noqa: S102 - generated from the recorded steps
        self.replay = ns["replay"]
        # the Generators' states are saved before a replay only if a check can fail after a draw
        self.rng_inputs = rng_inputs if undo else ()
        self.has_guards = bool(check_at)
        self._lock = threading.Lock() if buffers else None

    def __len__(self):
        return len(self.prims)

    def __repr__(self):
        return (f"<nablanet.jit Program: {self.n_inputs} inputs, {len(self.prims)} steps, "
                f"{len(self.buffers)} buffers>")

    def run(self, leaves):
        """Replay on the input leaves (and destinations); None if the program is busy (called re-entrantly)."""
        lock = self._lock
        if lock is not None and not lock.acquire(False):
            return None
        try:
            if self.rng_inputs:
                saved = [(leaves[i], leaves[i].bit_generator.state) for i in self.rng_inputs]
                try:
                    return self.replay(*leaves)
                except _GuardFailed:
                    for g, st in saved:  # the draws before the failed guard are undone
                        g.bit_generator.state = st
                    raise
            return self.replay(*leaves)
        finally:
            if lock is not None:
                lock.release()


def _depth(treedef):
    """How deep containers nest in ``treedef``."""
    if treedef is None or treedef == _LEAF:
        return 0
    return 1 + max((_depth(c) for c in treedef[2]), default=0)


def _emit_tree(treedef, leaves, const):
    """Source text building the pytree ``treedef`` around the leaf expressions."""
    if treedef == _LEAF:
        return next(leaves)
    if treedef is None:
        return "None"
    t, keys, children = treedef
    parts = [_emit_tree(c, leaves, const) for c in children]
    if t is dict:
        return "{" + "".join(f"{const(k)}: {p}, " for k, p in zip(keys, parts)) + "}"
    if t is list:
        return "[" + "".join(p + ", " for p in parts) + "]"
    if t is tuple:
        return "(" + "".join(p + ", " for p in parts) + ")"
    return f"{const(t)}(" + "".join(p + ", " for p in parts) + ")"


def _key(x, key, dyn):
    """Append ``x``'s part of a call's signature to ``key`` and its traced leaves to ``dyn``.

    The same walk as :func:`~nablanet.autodiff.tree.tree_flatten` (same leaf
    order), written flat for speed.  False when a leaf is a tracer of an outer
    transform (the call is then simply run).
    """
    t = type(x)
    if t is np.ndarray:
        key.append(x.shape)
        key.append(x.dtype)
        key.append(x.strides)  # the layout of fresh results follows the inputs' (and sums follow it)
        dyn.append(x)
    elif t is list or t is tuple:
        key.append(t)
        key.append(len(x))
        for v in x:
            if not _key(v, key, dyn):
                return False
    elif t is dict:
        key.append(dict)
        key.append(_dict_keys(x))
        for v in x.values():
            if not _key(v, key, dyn):
                return False
    elif x is None:
        key.append(None)
    elif isinstance(x, Tracer):
        return False
    elif isinstance(x, tuple) and hasattr(x, "_fields"):
        key.append(t)
        key.append(len(x))
        for v in x:
            if not _key(v, key, dyn):
                return False
    elif _is_traced_leaf(x):
        key.append((t, getattr(x, "shape", None), getattr(x, "dtype", None)))
        dyn.append(x)
    else:
        key.append(_static_key(x))
    return True


class _Same:
    """An unhashable static leaf in a signature: equal only to itself (by identity).

    It holds the object, so while a cache entry is keyed by it the object lives
    and its ``id`` cannot be reused by a new object with other contents.
    """

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __hash__(self):
        return id(self.obj)

    def __eq__(self, other):
        return type(other) is _Same and other.obj is self.obj


def _static_key(x):
    """A static value's part of a signature: equal for two values only when tracing cannot tell them apart.

    ``==`` is not enough: ``1``, ``1.0``, ``True`` and ``np.int64(1)`` are
    equal (and hash alike) but give results of other dtypes, ``0.0 == -0.0``
    but ``1 / x`` differs, and NaN is unequal to itself.  So the key holds the
    type (of every item of a tuple too) and a float's bits; an unhashable
    value is keyed by identity (:class:`_Same`).
    """
    t = type(x)
    if t is int or t is str or t is bool or x is None or t is bytes:
        return (t, x)
    if t is float:
        return (t, x.hex())  # -0.0 is not 0.0; every NaN is the same key
    if t is complex:
        return (t, x.real.hex(), x.imag.hex())
    if isinstance(x, np.generic):
        return (t, x.dtype.str, x.tobytes())
    if isinstance(x, tuple):
        return (t, tuple(_static_key(v) for v in x))
    if t is frozenset:
        return (t, frozenset(_static_key(v) for v in x))
    try:
        hash(x)
    except TypeError:
        return _Same(x)
    return (t, x)


def _dict_keys(d):
    """A dict's keys in a signature: the keys themselves when all are ``str``, else their :func:`_static_key`
    (``{1: a}``, ``{1.0: a}`` and ``{True: a}`` are equal dicts, but the function sees other keys)."""
    keys = tuple(d)
    for k in keys:
        if type(k) is not str:
            return tuple(_static_key(k) for k in keys)
    return keys


def _compile_check(args, kwargs, static, out):
    """A function that tells whether a call has the signature of this one, compiled once per signature.

    ``check(args, kwargs, out)`` (``out`` None for a plain call) returns the
    call's traced leaves, then its destinations, in the order :func:`_key`
    lists them, when every part of the call's signature equals this call's;
    else None.  It compares what :func:`_key` records, leaf by leaf, as
    straight-line code without building or hashing a key: the type and
    length of every container, a dict's keys in order, an array's exact
    type, shape, dtype and strides, a traced scalar's type (shape and dtype
    for NumPy scalars and array subclasses), a static leaf's type and value
    (:func:`_static_key`; the same object when unhashable), each destination's type, shape,
    dtype and strides.  It is never less strict than the key: a call it refuses
    takes the general path, which finds, traces or raises as before.
    """
    ns = {"ndarray": np.ndarray, "_static_key": _static_key, "_dict_keys": _dict_keys}
    lines, leaves, n_var = [], [], [0]

    names = {}  # id -> name of a constant (the constants live in ns, so their ids stay theirs)

    def name(v):
        k = names.get(id(v))
        if k is None:
            k = names[id(v)] = f"k{len(ns)}"
            ns[k] = v
        return k

    def var():
        n_var[0] += 1
        return f"v{n_var[0]}"

    def unpack(src, count):
        names = [var() for _ in range(count)]
        if names:
            lines.append(f"{', '.join(names)}, = {src}")
        return names

    def static_leaf(x, v):
        t = type(x)
        if t is int or t is str or t is bool or x is None:  # same type and equal: the same value
            k = name(x)
            lines.append(f"if type({v}) is not {name(t)} or not ({v} is {k} or {v} == {k}): return None")
            return
        sk = _static_key(x)
        if type(sk) is _Same:  # keyed by identity (the check keeps the object alive)
            lines.append(f"if {v} is not {name(x)}: return None")
            return
        lines.append(f"if type({v}) is not {name(t)} or _static_key({v}) != {name(sk)}: return None")

    def walk(x, v):
        t = type(x)
        if t is np.ndarray:
            lines.append(f"if type({v}) is not ndarray or {v}.shape != {x.shape!r} or {v}.dtype != {name(x.dtype)}"
                         f" or {v}.strides != {x.strides!r}: return None")
            leaves.append(v)
        elif t is list or t is tuple or (isinstance(x, tuple) and hasattr(x, "_fields")):
            lines.append(f"if type({v}) is not {name(t)} or len({v}) != {len(x)}: return None")
            for c, n in zip(x, unpack(v, len(x))):
                walk(c, n)
        elif t is dict:
            keys = _dict_keys(x)
            got = f"tuple({v})" if all(type(k) is str for k in x) else f"_dict_keys({v})"
            lines.append(f"if type({v}) is not dict or {got} != {name(keys)}: return None")
            for c, n in zip(x.values(), unpack(f"{v}.values()", len(x))):
                walk(c, n)
        elif x is None:
            lines.append(f"if {v} is not None: return None")
        elif _is_traced_leaf(x):
            if t is float or t is complex or t is np.random.Generator:
                lines.append(f"if type({v}) is not {name(t)}: return None")
            else:
                lines.append(f"if type({v}) is not {name(t)} or getattr({v}, 'shape', None) != "
                             f"{name(getattr(x, 'shape', None))} or getattr({v}, 'dtype', None) != "
                             f"{name(getattr(x, 'dtype', None))}: return None")
            leaves.append(v)
        else:
            static_leaf(x, v)

    lines.append(f"if len(args) != {len(args)}: return None")
    for i, (a, v) in enumerate(zip(args, unpack("args", len(args)))):
        (static_leaf if i in static else walk)(a, v)
    if kwargs:
        lines.append(f"if tuple(kwargs) != {name(tuple(kwargs))}: return None")
        for a, v in zip(kwargs.values(), unpack("kwargs.values()", len(kwargs))):
            walk(a, v)
    else:
        lines.append("if kwargs: return None")
    if out is not None:
        lines.append(f"if type(out) is not list or len(out) != {len(out)}: return None")
        for d, v in zip(out, unpack("out", len(out))):
            if d is None:
                lines.append(f"if {v} is not None: return None")
            else:
                lines.append(f"if type({v}) is not {name(type(d))} or {v}.shape != {d.shape!r} or {v}.dtype != "
                             f"{name(d.dtype)} or {v}.strides != {d.strides!r}: return None")
                leaves.append(v)
    body = "\n".join("    " + ln for ln in lines + [f"return [{', '.join(leaves)}]"])
    exec(_compiled(f"def check(args, kwargs, out):\n{body}\n", "<nablanet.jit signature check>"), ns)  # noqa: S102
    return ns["check"]


def _outside_stacklevel():
    """The ``stacklevel`` that makes a warning raised by the caller of this function name the first frame
    outside this module (the user's call, whichever entry point and path led to the warning)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename == __file__:
        frame, level = frame.f_back, level + 1
    return level


# Held while a captured function's cache changes (a signature added or dropped, a check kept), never while
# replaying: two threads tracing new signatures past max_signatures must not both drop the same oldest one.
# One for all (tracing is rare and slow; a lock per function would make Jitted objects unpicklable).
_CACHE_LOCK = threading.RLock()


class Jitted:
    """A captured function; see :func:`jit`."""

    def __init__(self, fun, static_argnums=()):
        self.fun = fun
        self.static_argnums = frozenset(static_argnums)
        self._cache = {}  # signature key -> programs (the branch taken most recently first)
        # The fast path: (check, key, programs) of the signatures called most recently, per entry point
        # (__call__, call_into); a check is compiled once per key and kept in _checks.
        self._fast, self._fast_into = [], []
        self._checks = {}
        self.traces = 0  # how many times the function was traced (for tests and benchmarks)
        self._warned = set()  # the limits (max_signatures, max_branches) already warned about
        functools.update_wrapper(self, fun)

    def _signature(self, args, kwargs):
        """``(key, traced leaves)`` of a call, or None when it is made on tracers of an outer transform."""
        key, dyn = [], []
        static = self.static_argnums
        for i, a in enumerate(args):
            if i in static:
                try:
                    hash(a)
                except TypeError:
                    raise TypeError(
                        f"nablanet.jit: static argument {i} of type {type(a).__name__} is not hashable"
                    ) from None
                key.append(("static", _static_key(a)))
            elif not _key(a, key, dyn):
                return None
        if kwargs:
            key.append(("kw", tuple(kwargs)))
            for v in kwargs.values():
                if not _key(v, key, dyn):
                    return None
        return tuple(key), dyn

    def __call__(self, *args, **kwargs):
        for entry in self._fast:  # a signature called recently: compared leaf by leaf, nothing hashed
            leaves = entry[0](args, kwargs, None)
            if leaves is not None:
                return self._run(entry[2], entry[1], leaves, args, kwargs, None, self._fast, entry)
        sig = self._signature(args, kwargs)
        if sig is None:  # called on tracers of a transform outside: just be f
            return self.fun(*args, **kwargs)
        result = self._replay(sig[0], sig[1], args, kwargs, None)
        self._remember(self._fast, sig[0], args, kwargs, None)
        return result

    def call_into(self, out, *args, **kwargs):
        """Call, writing output leaves into the caller's arrays (an explicit opt-in for training loops).

        ``out`` is a list with one entry per leaf of the result (in
        ``tree_flatten`` order): an array of that leaf's shape and dtype to
        write it into, or None for a fresh array.  The result is returned as
        usual, those leaves being the given arrays.  The arrays must not
        overlap the inputs.  A training loop uses it to get the gradients
        straight in its flat gradient buffer.
        """
        for entry in self._fast_into:
            leaves = entry[0](args, kwargs, out)
            if leaves is not None:
                return self._run(entry[2], entry[1], leaves, args, kwargs, out, self._fast_into, entry)
        sig = self._signature(args, kwargs)
        if sig is None:
            raise TypeError("nablanet.jit: call_into() needs concrete arguments, not traced values")
        key, dyn = sig
        tag = ["into"]
        for d in out:
            # the layout too: a program writes straight into a destination laid out as the result is (a matmul
            # written into a Fortran-order array rounds otherwise), into others by a copy
            tag.append(None if d is None else (d.shape, d.dtype, d.strides))
        key = key + tuple(tag)
        result = self._replay(key, dyn, args, kwargs, out)
        self._remember(self._fast_into, key, args, kwargs, out)
        return result

    _N_FAST = 4  # signatures per entry point on the fast path
    def _limit(name, default, doc):
        """A positive int attribute, checked when set (nablanet.validate's error, naming it)."""
        attr = "_" + name

        def get(self):
            return self.__dict__.get(attr, default)

        def put(self, n):
            from ..validate import positive_int

            self.__dict__[attr] = positive_int(n, f"jit {name}")

        return property(get, put, doc=doc)

    max_signatures = _limit("max_signatures", 128, """Signatures (each with its programs and their buffers) a captured
        function keeps (a positive int, 128); beyond, the least recently used is dropped, with one warning: a value
        that changes from call to call in a static argument or leaf (a Python int, an object) makes a new
        signature every call.""")
    max_branches = _limit("max_branches", 32, """Programs one signature keeps (a positive int, 32), one per way taken
        through Python control flow on traced values (an ``if`` or ``while`` on an input's value, recorded as
        guards); beyond, the least recently taken is dropped, with one warning: a loop whose count depends on the
        inputs makes a new program for every count.""")
    del _limit

    def _remember(self, fast, key, args, kwargs, out):
        """Put the signature just called first on the fast path, once it has a program."""
        with _CACHE_LOCK:
            programs = self._cache.get(key)
            if not programs:  # not capturable (reads a tracer from outside), or dropped meanwhile: nothing to replay
                return
            self._cache[key] = self._cache.pop(key)  # the most recently used last: the drop takes the first
            entry = self._checks.get(key)
            if entry is None or entry[2] is not programs:
                entry = self._checks[key] = (_compile_check(args, kwargs, self.static_argnums, out), key, programs)
            for k, e in enumerate(fast):
                if e[1] == key:
                    del fast[k]
                    break
            fast.insert(0, entry)
            del fast[self._N_FAST:]

    def _replay(self, key, dyn, args, kwargs, out):
        programs = self._cache.get(key)
        if programs:
            return self._run(programs, key, dyn if out is None else dyn + [d for d in out if d is not None],
                             args, kwargs, out)
        return self._trace(key, args, kwargs, out)

    def _run(self, programs, key, leaves, args, kwargs, out, fast=None, entry=None):
        """Replay the first program whose checks pass; trace anew if none does.

        Called from the fast path, ``entry`` (the signature that matched) goes first in ``fast``.
        """
        if fast is not None:
            try:
                if fast[0] is not entry:
                    fast.remove(entry)
                    fast.insert(0, entry)
            except (IndexError, ValueError):  # moved by another thread meanwhile
                pass
        for k, prog in enumerate(programs):
            try:
                result = prog.run(leaves)
            except _GuardFailed:
                continue
            if result is None:  # the program is running already (another thread, or re-entered): no buffers
                break
            if k:  # the branch taken most recently is tried first next time
                programs.insert(0, programs.pop(k))
            return result
        else:
            return self._trace(key, args, kwargs, out)
        return self._copy_out(self.fun(*args, **kwargs), out)

    @staticmethod
    def _copy_out(result, out):
        if out is None:
            return result
        leaves, treedef = tree_flatten(result)
        for k, d in enumerate(out):
            if d is not None:
                d[...] = leaves[k]
                leaves[k] = d
        return tree_unflatten(treedef, leaves)

    def _trace(self, key, args, kwargs, out):
        names = {}
        trace = CaptureTrace(names)
        static = self.static_argnums
        new_args = list(args)
        rng_inputs = []
        n = 0

        def box(tree, label):
            nonlocal n
            leaves, treedef = tree_flatten(tree)
            boxed = []
            for j, x in enumerate(leaves):
                if type(x) is np.ndarray or (_is_traced_leaf(x) and not isinstance(x, Tracer)):
                    t = trace.new_input(x)
                    names[t._slot] = label if len(leaves) == 1 else f"{label} (leaf {j})"
                    if isinstance(x, np.random.Generator):
                        rng_inputs.append(n)
                    n += 1
                    boxed.append(t)
                else:
                    boxed.append(x)
            return tree_unflatten(treedef, boxed)

        for i, a in enumerate(args):
            if i not in static:
                new_args[i] = box(a, f"argument {i}")
        new_kwargs = box(kwargs, "keyword arguments") if kwargs else {}
        result = call_traced(self.fun, new_args, new_kwargs)
        self.traces += 1
        leaves, out_def = tree_flatten(result)
        outputs, values = [], []
        for o in leaves:
            if isinstance(o, Tracer):
                if o._trace is trace:
                    outputs.append(o._slot)
                    values.append(o._value)
                    continue
                trace.foreign = o
            outputs.append(None)
            values.append(o)
        value = tree_unflatten(out_def, values)
        if out is not None:
            if len(out) != len(values):
                raise ValueError(f"nablanet.jit: call_into got {len(out)} destinations for {len(values)} output leaves")
            for k, (d, v) in enumerate(zip(out, values)):
                if d is not None and (d.shape != np.shape(v) or d.dtype != np.result_type(v)):
                    raise ValueError(f"nablanet.jit: destination {k} has shape {d.shape} and dtype {d.dtype}, "
                                     f"but that output has shape {np.shape(v)} and dtype {np.result_type(v)}")
            value = self._copy_out(value, out)
        if trace.foreign is None:
            tape = Tape(trace.nodes, list(range(n)), outputs, value, None, None)
            prog = Program(tape, trace.checks, out_def, tuple(rng_inputs), out)
            with _CACHE_LOCK:
                if key not in self._cache:
                    self._make_room()
                programs = self._cache.setdefault(key, [])
                programs.insert(0, prog)
                if len(programs) > self.max_branches:  # the branches taken least recently go
                    self._warn_once("max_branches", (
                        f"{self!r} has taken more than {self.max_branches} ways through its Python control flow "
                        f"for one signature (max_branches): each outcome of an if or while on a traced value is a "
                        f"program of its own, tried in turn; the least recently taken are dropped. A loop whose "
                        f"count depends on the inputs traces anew for every count: choose elementwise with "
                        f"anp.where, or pass what decides the path as a static argument."))
                    del programs[self.max_branches:]
        return value

    def _make_room(self):
        """Drop the least recently used signatures until a new one fits in :attr:`max_signatures` (warning the
        first time): the first in the cache's order (a call on the general path moves its signature last) that is
        not on a fast path (the signatures called most recently, whose calls do not reorder the cache), else the
        one called least recently among those."""
        while self._cache and len(self._cache) >= self.max_signatures:
            self._warn_once("max_signatures", (
                f"{self!r} has been traced for more than {self.max_signatures} signatures (argument shapes, "
                f"dtypes, static values); the least recently used are dropped. Every new value of a static "
                f"argument or leaf (a Python int, a string, an object other than an array or a float) traces "
                f"anew: pass values that change from call to call as arrays (np.asarray(k))."))
            recent = {}  # signature on a fast path -> its place there (0: called last)
            for fast in (self._fast, self._fast_into):
                for i, e in enumerate(fast):
                    recent[e[1]] = min(recent.get(e[1], i), i)
            old = next((k for k in self._cache if k not in recent), None)
            if old is None:  # every one is on a fast path: the one called least recently there
                old = max(self._cache, key=lambda k: recent.get(k, 0))
            del self._cache[old]
            self._checks.pop(old, None)
            for fast in (self._fast, self._fast_into):
                fast[:] = [e for e in fast if e[1] != old]

    def _warn_once(self, limit, message):
        """A RuntimeWarning naming the user's line, the first time this function reaches ``limit``."""
        if limit not in self._warned:
            self._warned.add(limit)
            import warnings

            warnings.warn(message, RuntimeWarning, stacklevel=_outside_stacklevel())

    def program(self, *args, **kwargs):
        """The :class:`Program` a call with these arguments replays (tracing it if needed); the Generators among
        the arguments are left as they were."""
        sig = self._signature(args, kwargs)
        if sig is None:
            raise TypeError("nablanet.jit: program() needs concrete arguments, not traced values")
        key, dyn = sig
        # finding the program runs them (and the function, to trace): the Generators they draw from are put back
        saved = [(g, g.bit_generator.state) for g in dyn if isinstance(g, np.random.Generator)]
        try:
            traced = key not in self._cache
            if traced:
                self._trace(key, args, kwargs, None)
            while True:
                for prog in list(self._cache.get(key, ())):
                    try:
                        prog.run(dyn)
                    except _GuardFailed:
                        continue
                    return prog
                if traced:
                    raise RuntimeError(
                        "nablanet.jit: this call cannot be captured (it reads a traced value from outside)")
                self._trace(key, args, kwargs, None)  # a branch of a known signature that no program takes yet
                traced = True
        finally:
            for g, state in saved:
                g.bit_generator.state = state

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
      ``str``, ``None`` and other leaves are static: keyed by type and value
      (``1``, ``1.0``, ``True`` and ``np.int64(1)`` are four signatures, so
      are ``0.0`` and ``-0.0``; by identity if unhashable) and frozen into
      the program.
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
      way is traced again (the 32 ways taken most recently are kept,
      ``.max_branches``).  ``float()``, ``int()``, ``.item()``,
      ``np.asarray`` or indexing a NumPy array with a traced value raise
      :class:`ConcretizationError` naming the value.
    * **Outputs are fresh arrays**, never overwritten by a later call; the
      buffers a program reuses hold only values that cannot reach the
      outputs, and inputs are never written.  ``call_into(out, *args)`` is
      the opt-in exception: the output leaves given an array in ``out`` are
      written into it (a training loop's flat gradient buffer).
    * **Layout.**  Array leaves are keyed by their strides too: a result's
      memory layout follows its inputs', and a later sum's rounding follows
      that layout, so a transposed or sliced input traces its own program.
    * **One call at a time.**  A program entered again while it runs (from
      another thread, or from a primitive that calls the same jitted
      function) runs ``fun`` itself instead of sharing its buffers.
    * **Composition.** ``jit(grad(f))`` captures both sweeps; ``grad(jit(f))``
      (a jitted function called on tracers of an outer transform) simply runs
      ``f`` under that transform; a jitted function called inside another's
      trace is inlined.  A function that reads a tracer of an outer transform
      from a closure is run but not cached.
    """
    if isinstance(static_argnums, int):
        static_argnums = (static_argnums,)
    return Jitted(fun, tuple(static_argnums))
