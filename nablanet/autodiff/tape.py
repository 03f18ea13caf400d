"""The public tape: what the engine records for a function, node by node.

``tape = trace(f, *args)`` runs ``f`` once with every array leaf of ``args``
traced and returns a :class:`Tape`: its nodes in the order they were computed
(a topological order), each with the primitive's name, the ids of the nodes it
read, its constant arguments and its value.  ``tape.backward()`` runs the
reverse sweep (the notes' adjoints, ``v_bar = d out / d v``) and stores each
node's adjoint on it; ``tape.forward(tangents)`` pushes tangents through the
forward-mode rules (``v' = d v / d x``) and stores them likewise.

This is how tools such as :mod:`nablanet.explain` read a computation; code
outside the engine uses it rather than the tracers' internals.
"""

from __future__ import annotations

import numpy as np

from .core import ReverseTrace, RTracer, Tracer, add_any, backward_pass
from .tree import tree_flatten, tree_unflatten

__all__ = ["trace", "Tape", "Node"]


class Node:
    """One recorded value.

    Attributes
    ----------
    id : int
        Its position on the tape (the ids of the inputs come first).
    op : str
        The primitive's name, or ``"input"``.
    primitive : Primitive or None
        The primitive that computed it (None for an input).
    parents : tuple of (int, int)
        ``(argument position, node id)`` for each argument that is a node.
    args : tuple
        The primitive's arguments: a :class:`NodeRef` where a node was read, the
        constant otherwise.  ``kwargs`` likewise holds its keyword arguments.
    value : array
        The value computed.
    adjoint, tangent : array or None
        Filled in by :meth:`Tape.backward` and :meth:`Tape.forward` (None where
        the sweep did not reach the node: its derivative is zero).
    """

    __slots__ = ("id", "op", "primitive", "parents", "args", "kwargs", "value", "adjoint", "tangent")

    def __init__(self, id, op, primitive, parents, args, kwargs, value):
        self.id = id
        self.op = op
        self.primitive = primitive
        self.parents = parents
        self.args = args
        self.kwargs = kwargs
        self.value = value
        self.adjoint = None
        self.tangent = None

    def __repr__(self):
        ins = ", ".join(f"v{j}" for _, j in self.parents)
        return f"Node(v{self.id} = {self.op}({ins}), shape={np.shape(self.value)})"


class NodeRef:
    """Stands for node ``id`` among a node's arguments."""

    __slots__ = ("id",)

    def __init__(self, id):
        self.id = id

    def __repr__(self):
        return f"v{self.id}"


class Tape:
    """A recorded computation: ``nodes``, the ids of its ``inputs`` and of its ``outputs``.

    ``inputs`` follow the leaves of the traced arguments in order;
    ``outputs`` follow the leaves of the function's result (None where a leaf
    does not depend on the inputs); ``output_value`` is the result itself.
    """

    def __init__(self, nodes, inputs, outputs, output_value, trace, tracers):
        self.nodes = nodes
        self.inputs = inputs
        self.outputs = outputs
        self.output_value = output_value
        self._trace = trace
        self._tracers = tracers

    def __len__(self):
        return len(self.nodes)

    def __iter__(self):
        return iter(self.nodes)

    def __repr__(self):
        return f"<Tape: {len(self.nodes)} nodes, {len(self.inputs)} inputs, outputs {self.outputs}>"

    def backward(self, seeds=None):
        """Reverse sweep: adjoints of every node, seeded at the outputs.

        ``seeds`` is one array per output leaf (default: ones, so for a scalar
        output the adjoints are the gradient).  Sets ``node.adjoint`` and
        returns the adjoints of the inputs (zeros for an input not reached).
        """
        outs = [i for i in self.outputs]
        if seeds is None:
            seeds = [np.ones(np.shape(self.nodes[i].value)) if i is not None else None for i in outs]
        elif not isinstance(seeds, (list, tuple)):
            seeds = [seeds]
        if len(seeds) != len(outs):
            raise ValueError(f"Tape.backward: {len(seeds)} seeds for {len(outs)} outputs")
        pairs = [(self._tracers[i], np.asarray(g, dtype=float) if not isinstance(g, Tracer) else g)
                 for i, g in zip(outs, seeds) if i is not None]
        for n in self.nodes:
            n.adjoint = None
        record = {}
        if pairs:
            backward_pass(pairs, self._trace, record=record)
        for t, g in record.items():
            self.nodes[t._idx].adjoint = g
        return [self.nodes[i].adjoint if self.nodes[i].adjoint is not None else np.zeros_like(self.nodes[i].value)
                for i in self.inputs]

    def forward(self, tangents):
        """Forward sweep: the tangent of every node from one tangent per input (through the JVP rules).

        Sets ``node.tangent`` and returns the tangents of the outputs.
        """
        if not isinstance(tangents, (list, tuple)):
            tangents = [tangents]
        if len(tangents) != len(self.inputs):
            raise ValueError(f"Tape.forward: {len(tangents)} tangents for {len(self.inputs)} inputs")
        for n in self.nodes:
            n.tangent = None
        for i, t in zip(self.inputs, tangents):
            self.nodes[i].tangent = t
        for n in self.nodes:
            if n.primitive is None:
                continue
            tr = self._tracers[n.id]
            args, kw = tr._args, tr._kw or {}
            t = None
            for argnum, j in n.parents:
                g = self.nodes[j].tangent
                if g is None:
                    continue
                rule = n.primitive.jvps.get(argnum)
                if rule is not None:
                    c = rule(g, n.value, *args, **kw)
                elif "*" in n.primitive.jvps:
                    c = n.primitive.jvps["*"](argnum, g, n.value, *args, **kw)
                else:
                    raise n.primitive._missing("JVP", argnum)
                t = c if t is None else add_any(t, c)
            n.tangent = t
        return [self.nodes[i].tangent if i is not None else None for i in self.outputs]


def trace(fun, *args):
    """Record ``fun(*args)`` on a tape, every array leaf of ``args`` an input.

    >>> import nablanet.numpy as anp
    >>> tape = trace(lambda x: anp.sin(x) * x, 2.0)
    >>> [n.op for n in tape.nodes]
    ['input', 'sin', 'multiply']
    >>> float(tape.backward()[0])   # cos(2) 2 + sin(2)
    0.0770...
    """
    tr = ReverseTrace()
    new_args = []
    for a in args:
        leaves, treedef = tree_flatten(a)
        boxed = [tr.new_input(np.float64(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else x)
                 for x in leaves]
        new_args.append(tree_unflatten(treedef, boxed))
    n_in = len(tr.tape)
    out = fun(*new_args)
    tracers = list(tr.tape)
    index = {id(t): k for k, t in enumerate(tracers)}
    nodes = []
    for k, t in enumerate(tracers):
        if t._prim is None:
            nodes.append(Node(k, "input", None, (), (), {}, t._value))
            continue
        parents = tuple((i, index[id(p)]) for i, p in t._parents)
        traced = dict(parents)
        node_args = tuple(NodeRef(traced[i]) if i in traced else a for i, a in enumerate(t._args))
        nodes.append(Node(k, t._prim.name, t._prim, parents, node_args, dict(t._kw or {}), t._value))
    out_leaves, out_def = tree_flatten(out)
    outputs = [o._idx if isinstance(o, RTracer) and o._trace is tr else None for o in out_leaves]
    value = tree_unflatten(out_def, [o._value if isinstance(o, RTracer) and o._trace is tr else o
                                     for o in out_leaves])
    return Tape(nodes, list(range(n_in)), outputs, value, tr, tracers)
