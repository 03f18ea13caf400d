"""What backpropagation and automatic differentiation compute, number by number.

* :func:`explain_network`: one sample through a small network, the forward
  pass (z and a per layer) and the backward pass (delta, dC/dW, dC/db per
  layer) from the delta equations, checked against central differences and
  against the engine.
* :func:`explain_expression`: the computational graph of an expression in x,
  its forward-mode sweep (value and tangent of every node) and reverse-mode
  sweep (adjoint of every node), as the notes work them by hand.
"""

from __future__ import annotations

import ast
import functools

import numpy as np

from . import numpy as anp
from . import validate as V
from .autodiff.tape import NodeRef, trace

__all__ = ["explain_network", "explain_expression", "ExpressionError", "MAX_UNITS", "SIZES"]

#: The widest layer the network mode explains: it prints every number, and checks each one by central differences.
MAX_UNITS = 64
#: What the network mode's ``sizes`` accepts (the ``--sizes`` flag reads it too).
SIZES = V.Sizes(min_len=2, high=MAX_UNITS,
                expected=f"layer sizes like 2,3,2 (inputs to outputs, at most {MAX_UNITS} units each)")


class ExpressionError(V.InvalidValueError):
    """An expression or network that cannot be explained: syntax, a name that is not allowed, or no finite value."""


def _finite(what):
    """Run the explanation with NumPy's floating-point errors raised, each one said in one line naming ``what``.

    Both modes, as a decorator: an overflow, a division by zero or an invalid value (NaN) anywhere in the
    forward pass, the sweeps or the checks is an :class:`ExpressionError`, never a table of inf and nan.
    """

    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, **kw):
            try:
                with np.errstate(over="raise", divide="raise", invalid="raise"):
                    return fn(*args, **kw)
            except (ArithmeticError, FloatingPointError) as e:
                why = {OverflowError: "a value is too large for a float (overflow)",
                       ZeroDivisionError: "a division by zero"}.get(type(e), f"no finite value ({e})")
                raise ExpressionError(f"{what(*args, **kw)}: {why}") from None

        return run

    return wrap


def _fmt(a, width=10):
    a = np.atleast_1d(np.asarray(a, dtype=np.float64))
    return "[" + " ".join(f"{v:{width}.6f}" for v in a.ravel()) + "]"


def _network_name(sizes=(2, 3, 2), activation="sigmoid", seed=0):
    return f"network {sizes!r} ({activation}, seed {seed!r})"


def explain_network(sizes=(2, 3, 2), activation="sigmoid", seed=0):
    """Forward and backward pass of ``MLP(sizes)`` (sigmoid output, cost 1/2 sum (a - t)^2) on one sample.

    Returns ``(text, report)``; ``report["max_error"]`` is the largest
    difference between the delta-equation gradients and central differences.
    ``sizes`` has at least two layers of at most :data:`MAX_UNITS` units (every
    number is printed); a bad value raises a ``ValueError``/``TypeError`` naming
    it, and a pass without a finite value raises :class:`ExpressionError`.
    """
    from .nn.activations import ACTIVATIONS

    sizes = SIZES(sizes, "sizes")
    V.Choice([a for a in ACTIVATIONS if a != "softmax"])(activation, "activation")
    seed = V.Seed(allow_generator=False)(seed, "seed")
    return _explain_network(sizes, activation, seed)


@_finite(_network_name)
def _explain_network(sizes, activation, seed):
    from . import elementwise_grad, grad
    from .losses import half_sse
    from .nn import MLP, get_activation

    rng = np.random.default_rng(seed)
    m = MLP(list(sizes), activation=activation, output_activation="sigmoid", seed=seed, dtype=np.float64)
    x = rng.uniform(-1, 1, (1, sizes[0]))
    t = rng.uniform(0, 1, (1, sizes[-1]))
    acts = [get_activation(activation)] * (len(sizes) - 2) + [get_activation("sigmoid")]
    lines = [f"network {'-'.join(map(str, sizes))}, hidden activation {activation}, output sigmoid, "
             f"cost C = 1/2 sum (a^L - t)^2", f"input x = a^0 = {_fmt(x)}", f"target t = {_fmt(t)}", "",
             "forward pass:  z^l = a^(l-1) W^l + b^l,   a^l = sigma_l(z^l)"]
    a, zs, As = x, [], [x]
    for layer, (p, act) in enumerate(zip(m.params, acts), start=1):
        z = a @ p["W"] + p["b"]
        a = act(z)
        zs.append(z)
        As.append(a)
        lines += [f"  layer {layer}: z = {_fmt(z)}", f"           a = {_fmt(a)}"]
    cost = 0.5 * np.sum((a - t) ** 2)
    lines += [f"  cost C = {cost:.10f}", "", "backward pass:  delta^L = (a^L - t) * sigma'(z^L),  "
              "delta^l = (delta^(l+1) W^(l+1)^T) * sigma'(z^l),  dC/dW^l = a^(l-1)^T delta^l,  dC/db^l = delta^l"]

    def dsig(act, z):
        return np.asarray(elementwise_grad(act)(z))

    delta = (a - t) * dsig(acts[-1], zs[-1])
    grads = [None] * len(m.params)
    for layer in reversed(range(len(m.params))):
        grads[layer] = {"W": As[layer].T @ delta, "b": delta.sum(0)}
        lines += [f"  layer {layer + 1}: delta = {_fmt(delta)}"]
        for i, row in enumerate(grads[layer]["W"]):
            lines.append(f"           dC/dW[{i},:] = {_fmt(row)}")
        lines.append(f"           dC/db = {_fmt(grads[layer]['b'])}")
        if layer:
            delta = (delta @ m.params[layer]["W"].T) * dsig(acts[layer - 1], zs[layer - 1])
    # checks: central differences and the engine
    f = lambda params: half_sse(m.apply(params, x), t)
    engine = grad(f)(m.params)
    eps, worst_fd, worst_engine = 1e-6, 0.0, 0.0
    for layer, p in enumerate(m.params):
        for key in ("W", "b"):
            for idx in np.ndindex(p[key].shape):
                old = p[key][idx]
                p[key][idx] = old + eps
                up = f(m.params)
                p[key][idx] = old - eps
                down = f(m.params)
                p[key][idx] = old
                fd = (up - down) / (2 * eps)
                worst_fd = max(worst_fd, abs(fd - grads[layer][key][idx]))
                worst_engine = max(worst_engine, abs(engine[layer][key][idx] - grads[layer][key][idx]))
    lines += ["", f"check: largest |delta-equation gradient - central difference| = {worst_fd:.2e}",
              f"       largest |delta-equation gradient - nablanet.grad|      = {worst_engine:.2e}"]
    return "\n".join(lines), {"cost": float(cost), "max_error": worst_fd, "max_engine_error": worst_engine,
                              "grads": grads}


# --------------------------------------------------------------------------- expressions

_FUNCS = ("exp", "log", "sqrt", "sin", "cos", "tan", "tanh", "arctan", "sinh", "cosh", "log1p", "expm1", "abs", "square")


#: The longest expression explained: every node is printed and drawn.
MAX_EXPRESSION = 500


def _parse(expr):
    if len(expr) > MAX_EXPRESSION:
        raise ExpressionError(f"expr: {len(expr)} characters; explain draws every node of the graph, so it "
                              f"takes expressions of at most {MAX_EXPRESSION}")
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as e:
        raise ExpressionError(f"cannot parse {expr!r}: {e.msg}") from None
    except (RecursionError, MemoryError):
        raise ExpressionError(f"cannot parse {expr[:40]!r}...: nested too deeply") from None
    allowed = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Call, ast.Name, ast.Constant, ast.Load, ast.Add, ast.Sub,
               ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd)
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            raise ExpressionError(f"{expr!r}: {type(node).__name__} is not allowed; use x, numbers, + - * / ** "
                                  f"and {', '.join(_FUNCS)}")
        if isinstance(node, ast.Name) and node.id != "x" and node.id not in _FUNCS:
            raise ExpressionError(f"{expr!r}: unknown name {node.id!r}; the variable is x and the functions are "
                                  f"{', '.join(_FUNCS)}")
        if isinstance(node, ast.Call) and (not isinstance(node.func, ast.Name) or node.keywords or len(node.args) != 1):
            raise ExpressionError(f"{expr!r}: functions take one argument")
        if isinstance(node, ast.Constant) and (not isinstance(node.value, (int, float)) or isinstance(node.value, bool)):
            raise ExpressionError(f"{expr!r}: only numbers are allowed as constants")
    tree = _FloatLiterals(expr).visit(tree)
    return compile(ast.fix_missing_locations(tree), "<expr>", "eval")


class _FloatLiterals(ast.NodeTransformer):
    """Every number in the expression a NumPy float64 (``_num(9.0)``), so that arithmetic on literals alone is
    float arithmetic under the floating-point guard: ``9**9**9`` overflows at once instead of Python computing
    an integer of 370 million digits, and ``(-8)**0.5`` is an invalid value, not a complex number.  A literal
    beyond a float's range (``1e309``, a 400-digit integer) is refused here."""

    def __init__(self, expr):
        self.expr = expr

    def visit_Constant(self, node):
        try:
            value = float(node.value)
        except OverflowError:
            value = float("inf")
        if not np.isfinite(value):
            raise ExpressionError(f"{self.expr!r}: the number {ast.get_source_segment(self.expr, node) or node.value!s:.40} "
                                  f"is beyond a float's range (about 1.8e308)")
        return ast.copy_location(ast.Call(ast.Name("_num", ast.Load()), [ast.Constant(value)], []), node)


def _label(node, names):
    name = node.op
    parts = [names[a.id] if isinstance(a, NodeRef) else (f"{float(a):g}" if np.ndim(a) == 0 else "c") for a in node.args]
    sym = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/", "power": "**"}
    if name in sym and len(parts) == 2:
        return f"{parts[0]} {sym[name]} {parts[1]}"
    if name == "negative":
        return f"-{parts[0]}"
    return f"{name}({', '.join(parts)})"


def explain_expression(expr, at, graph_path=None):
    """The notes' hand computation for ``expr`` at ``x = at``.

    Returns ``(text, report)`` with every node's value, tangent (forward mode,
    dx = 1) and adjoint (reverse mode, seed 1 at the output), the derivative
    from both modes and from central differences; draws the graph to
    ``graph_path`` if given.  An expression without a finite value, tangent
    or adjoint at ``at`` (overflow, division by zero, log of a negative
    number) raises :class:`ExpressionError` naming it.
    """
    if not isinstance(expr, str):
        raise V.InvalidTypeError(f"expr: expected an expression in x as a string, got {expr!r}")
    at = V.finite_number(at, "at")
    if graph_path is not None:
        graph_path = V.output_file(graph_path, "graph_path")
    code = _parse(expr)
    return _explain_expression(expr, code, at, graph_path)


@_finite(lambda expr, code, at, graph_path: f"{expr!r} at x = {at:g}")
def _explain_expression(expr, code, x0, graph_path):
    env = {name: getattr(anp, name) for name in _FUNCS}
    env["_num"] = np.float64
    f = lambda x: eval(code, {"__builtins__": {}}, {**env, "x": x})  # noqa: S307 - parsed against a whitelist
    tape = trace(f, x0)
    if tape.outputs[0] is None:
        raise ExpressionError(f"{expr!r} does not depend on x")
    nodes = tape.nodes[: tape.outputs[0] + 1]
    names = {n.id: "x" if n.primitive is None else f"v{n.id}" for n in nodes}
    tape.forward([1.0])
    tape.backward()
    rows = []
    for n in nodes:
        op = "input" if n.primitive is None else _label(n, names)
        rows.append({"name": names[n.id], "op": op, "value": float(n.value),
                     "tangent": float(n.tangent) if n.tangent is not None else 0.0,
                     "adjoint": float(n.adjoint) if n.adjoint is not None else 0.0,
                     "parents": [j for _, j in n.parents]})
    bad = [f"{k} of {r['name']}" for r in rows for k in ("value", "tangent", "adjoint") if not np.isfinite(r[k])]
    if bad:  # an inf that no operation overflowed to (inf * x): refused as every other non-finite result is
        raise ExpressionError(f"{expr!r} at x = {x0:g}: no finite value (the {bad[0]} is not finite)")
    fd, fd_kind, step = _difference(f, x0)
    if fd is None:  # f has no finite value on either side: no derivative (the rules would still give one, (-2)**x)
        raise ExpressionError(f"{expr!r} at x = {x0:g}: f has no finite (real) value at x +- {DIFFERENCE_STEP:g}, "
                              f"so it has no derivative there")
    fwd, rev = rows[-1]["tangent"], rows[0]["adjoint"]
    w = max(len(r["op"]) for r in rows) + 2
    lines = [f"f(x) = {expr}   at x = {x0:g}", "",
             "forward mode: one sweep from input to output; each node carries its value and its tangent "
             "v' = dv/dx (x' = 1)",
             f"  {'node':<6}{'operation':<{w}}{'value':>20}{'tangent dv/dx':>20}"]
    lines += [f"  {r['name']:<6}{r['op']:<{w}}{r['value']:>20.12g}{r['tangent']:>20.12g}" for r in rows]
    lines += ["", "reverse mode: the sweep above recorded, then adjoints v_bar = df/dv pulled from the output "
              "(f_bar = 1) back to x",
              f"  {'node':<6}{'operation':<{w}}{'adjoint df/dv':>20}"]
    lines += [f"  {r['name']:<6}{r['op']:<{w}}{r['adjoint']:>20.12g}" for r in reversed(rows)]
    lines += ["", f"f({x0:g})            = {rows[-1]['value']:.15g}",
              f"f'({x0:g}) forward   = {fwd:.15g}", f"f'({x0:g}) reverse   = {rev:.15g}",
              f"{fd_kind + ' difference':<20}= {fd:.15g}   (|difference| {abs(fd - rev):.1e})"]
    if step != DIFFERENCE_STEP or fd_kind not in ("central", None):
        why = ({"forward": "f has no finite value at x - h", "backward": "f has no finite value at x + h"}
               .get(fd_kind, f"a step of {DIFFERENCE_STEP:g} leaves f's domain"))
        lines[-1] += f"\n  (h = {step:g}{', one-sided' if fd_kind != 'central' else ''}: {why})"
    if graph_path:
        from . import viz

        nodes = [{"name": r["name"], "parents": r["parents"],
                  "label": f"{r['name']} = {r['op']}\nv = {r['value']:.6g}\nv' = {r['tangent']:.6g}\n"
                           f"v_bar = {r['adjoint']:.6g}"} for r in rows]
        viz.graph(nodes, graph_path, title=f"f(x) = {expr} at x = {x0:g}: values, tangents v', adjoints v_bar")
    return "\n".join(lines), {"value": rows[-1]["value"], "forward": fwd, "reverse": rev, "central_difference": fd,
                              "difference": fd_kind, "nodes": rows}


#: The step h of the finite-difference check of an expression's derivative.
DIFFERENCE_STEP = 1e-6


def _difference(f, x0):
    """``(estimate, kind, h)``: the central difference of ``f`` at ``x0``, or where ``x0 - h`` or ``x0 + h`` is outside
    f's domain (``x**1.5`` at 0, ``sqrt(x)`` at 1e-300) the one-sided one ("forward", "backward") with a step no
    larger than half of ``|x0|`` (first central again, with that step); ``(None, None, h)`` when f is finite on neither side."""
    h = DIFFERENCE_STEP

    def at(x):
        try:
            v = float(f(np.float64(x)))
        except (ArithmeticError, FloatingPointError):
            return None
        return v if np.isfinite(v) else None

    up, down = at(x0 + h), at(x0 - h)
    if up is not None and down is not None:
        return (up - down) / (2 * h), "central", h
    if x0 and abs(x0) / 2 < h:  # near the domain's edge, a step on its scale (sqrt(x) at 1e-300)
        h = abs(x0) / 2
        up, down = at(x0 + h), at(x0 - h)
        if up is not None and down is not None:
            return (up - down) / (2 * h), "central", h
    mid = at(x0)
    if up is not None and mid is not None:
        return (up - mid) / h, "forward", h
    if down is not None and mid is not None:
        return (mid - down) / h, "backward", h
    return None, None, DIFFERENCE_STEP
