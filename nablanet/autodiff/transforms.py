"""Function transforms: functions in, derivative functions out.

Reverse mode (``vjp``, ``grad``, ``value_and_grad``, ``elementwise_grad``)
records one forward pass and sweeps it backwards once per cotangent.  Forward
mode (``jvp``) pushes a tangent alongside the values in the same sweep as the
forward pass.  ``jacobian`` builds either a row at a time (reverse) or a column
at a time (forward); ``hessian`` is forward over reverse, and ``hvp`` is one
forward sweep through a reverse sweep.  All of them accept the others, in any
order and to any depth.
"""

from __future__ import annotations

import functools

import numpy as np

from .core import (
    CTracer,
    ForwardTrace,
    FTracer,
    Primitive,
    ReverseTrace,
    RTracer,
    Tracer,
    array_op,
    backward_pass,
    call_traced,
    getval,
)
from .tree import _leaf_path, tree_flatten, tree_map, tree_unflatten

__all__ = [
    "checkpoint",
    "deriv",
    "grad_and_aux",
    "hessian_tensor_product",
    "hessian_vector_product",
    "holomorphic_grad",
    "grad_named",
    "make_ggnvp",
    "make_hvp",
    "multigrad_dict",
    "make_jvp",
    "make_vjp",
    "tensor_jacobian_product",
    "vector_jacobian_product",
    "grad",
    "value_and_grad",
    "elementwise_grad",
    "vjp",
    "jvp",
    "jacobian",
    "hessian",
    "hvp",
]


def _shape(x):
    v = getval(x)
    return v.shape if hasattr(v, "shape") else np.shape(v)


def _dtype(x):
    v = getval(x)
    return v.dtype if hasattr(v, "dtype") else np.result_type(v)


def _is_complex(x):
    return _dtype(x).kind == "c"


def _check_float(leaves, where, argnum, treedef=None):
    for k, x in enumerate(leaves):
        dt = _dtype(x)
        if dt.kind not in "fc":
            at = _leaf_path(treedef, k) if treedef is not None else ""  # the leaf of a pytree argument: ['n']
            raise TypeError(
                f"{where}: argument {argnum}{at} has dtype {dt}; differentiation needs "
                f"floating-point (or complex) inputs (pass 3.0 rather than 3, or x.astype(float))"
            )


def _argnums(argnums, nargs, where):
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for i in nums:
        if not -nargs <= i < nargs:
            raise ValueError(f"{where}: argnums={argnums!r} but the function got {nargs} positional arguments")
    return tuple(i % nargs for i in nums)


def _unbox(x, trace):
    return x._value if isinstance(x, Tracer) and x._trace is trace else x


def _as_array(x):
    """Python scalars become NumPy scalars, so every traced value has a shape."""
    return np.float64(x) if isinstance(x, float) else np.complex128(x) if isinstance(x, complex) else x


def _zeros(x):
    return np.zeros(_shape(x), _dtype(x))


def _finish(g, x):
    """The adjoint of input ``x``: zeros if it got none, in ``x``'s dtype."""
    if g is None:
        return _zeros(x)
    if _is_complex(g) and not _is_complex(x):  # the convention: a real input's derivative is real
        g = array_op("real")(g)
    if isinstance(g, (np.ndarray, np.generic, CTracer)) and g.dtype != _dtype(x):
        return g.astype(_dtype(x))
    return g


def _own(g, owned):
    """``g`` as an array of the caller's own: a copy when it is read-only (a broadcast view, as a sum's
    rule gives) or already handed out for another input (add's rule gives its cotangent to both
    arguments), so an in-place step on one gradient leaf changes no other, as in autograd."""
    if type(g) is np.ndarray:
        if not g.flags.writeable or id(g) in owned:
            g = g.copy()
        owned.add(id(g))
    return g


def _vjp(fun, args, argnums, where, has_aux=False):
    trace = ReverseTrace()
    args = list(args)
    inputs = []
    for i in argnums:
        leaves, treedef = tree_flatten(args[i])
        _check_float(leaves, where, i, treedef)
        boxed = [trace.new_input(_as_array(x)) for x in leaves]
        inputs.append((treedef, boxed, leaves))
        args[i] = tree_unflatten(treedef, boxed)
    out = call_traced(fun, args)
    aux = None
    if has_aux:
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError(f"{where}: with has_aux=True the function must return (output, aux)")
        out, aux = out
        aux = tree_map(lambda x: _unbox(x, trace), aux)
    if out is None:
        trace.tape.clear()
        wanted = "a scalar (a float or an array of one element)" if where == "grad" else "an array or a pytree of arrays"
        raise TypeError(
            f"{where}: the function returned None{' as its output' if has_aux else ''}; it must return {wanted} "
            f"(is a return statement missing?)"
        )
    out_leaves, out_def = tree_flatten(out)
    out_value = tree_unflatten(out_def, [_unbox(o, trace) for o in out_leaves])

    def vjp_fn(cotangent):
        ct_leaves, ct_def = tree_flatten(cotangent)
        if ct_def != out_def:
            raise ValueError(f"{where}: the cotangent's structure does not match the output's")
        seeds = []
        for o, g in zip(out_leaves, ct_leaves):
            if _shape(g) != _shape(o):
                raise ValueError(f"{where}: cotangent of shape {_shape(g)} for an output of shape {_shape(o)}")
            if isinstance(o, RTracer) and o._trace is trace:
                if _is_complex(g) and not _is_complex(o):  # L = Re(g w) for a real output w
                    g = array_op("real")(g)
                seeds.append((o, g))
        adjoints = backward_pass(seeds, trace) if seeds else {}
        owned = set()
        return tuple(
            tree_unflatten(treedef, [_own(_finish(adjoints.get(b), x), owned) for b, x in zip(boxed, leaves)])
            for treedef, boxed, leaves in inputs
        )

    # The tape and its nodes refer to each other; a transform that is done with the
    # sweep calls vjp_fn.release() so the graph is freed at once, not by the cyclic GC.
    vjp_fn.release = trace.tape.clear
    vjp_fn.traced = any(isinstance(o, RTracer) and o._trace is trace for o in out_leaves)
    return out_value, vjp_fn, aux


def vjp(fun, *primals):
    """Reverse mode: ``out, vjp_fn = vjp(f, *primals)``.

    ``vjp_fn(cotangent)`` returns a tuple with one cotangent per primal, each
    a pytree of the primal's structure.  It may be called any number of times;
    nothing accumulates between calls.
    """
    out, fn, _ = _vjp(fun, primals, tuple(range(len(primals))), "vjp")
    return out, fn


def value_and_grad(fun, argnums=0, has_aux=False, *, argnum=None):
    """Return a function computing ``(f(*args), grad f(*args))``.

    ``f`` must return a real scalar.  ``argnums`` picks the argument (an int)
    or arguments (a tuple, giving a tuple of gradients) to differentiate; each
    may be a pytree of arrays.  With ``has_aux=True``, ``f`` returns
    ``(value, aux)`` and the result is ``((value, aux), gradient)``.
    """
    argnums = argnums if argnum is None else argnum  # autograd spells it argnum

    @functools.wraps(fun)
    def value_and_grad_fun(*args, **kwargs):
        f = functools.partial(fun, **kwargs) if kwargs else fun
        nums = _argnums(argnums, len(args), "grad")
        out, vjp_fn, aux = _vjp(f, args, nums, "grad", has_aux)
        if isinstance(out, (dict, list, tuple)) or int(np.prod(_shape(out))) != 1:
            shape = "a pytree" if isinstance(out, (dict, list, tuple)) else f"shape {_shape(out)}"
            raise TypeError(
                f"grad: the function must return a scalar, but it returned {shape}; "
                f"use jacobian, vjp or elementwise_grad for non-scalar outputs"
            )
        dt = _dtype(out)
        if dt.kind == "c":  # autograd's rule: grad is for real-valued functions
            vjp_fn.release()
            raise TypeError(
                f"grad: the function returned a complex value (dtype {dt}); grad needs a real scalar "
                f"output. For the complex derivative f'(z) of a holomorphic function use holomorphic_grad; "
                f"otherwise differentiate a real function of it (anp.real(f), anp.abs(f) ** 2)"
            )
        if dt.kind != "f":  # a bool (a comparison, allclose) or an integer has no gradient, as in autograd
            vjp_fn.release()
            raise TypeError(f"grad: the function returned dtype {dt}; it must return a float")
        # a float output that does not depend on the inputs (a constant) has gradient 0
        g = vjp_fn(np.ones(_shape(out), dt))
        vjp_fn.release()
        g = g[0] if isinstance(argnums, int) else g
        return ((out, aux) if has_aux else out), g

    return value_and_grad_fun


def grad(fun, argnums=0, has_aux=False, *, argnum=None):
    """
    Returns a function which computes the gradient of scalar ``fun`` with respect
    to argument ``argnums`` (an int, or a tuple giving a tuple of gradients).

    ``f`` must return a real scalar (a complex one raises TypeError, as in
    autograd).  Complex inputs follow HIPS autograd's convention: with
    ``z = x + iy``, ``grad(f)(z) = df/dx - i df/dy``, so a descent step on a real
    loss of a complex parameter is ``z - lr * conj(grad(f)(z))``.  A real
    function of real inputs that uses complex numbers inside (an FFT) gets the
    real gradient a purely real implementation would give.  For a holomorphic
    ``f`` with complex values, ``holomorphic_grad`` gives ``f'(z)``.

    Examples
    --------
    >>> import nablanet as nn, nablanet.numpy as anp
    >>> nn.grad(lambda x: anp.exp(x**2))(1.0)   # 2 x exp(x^2)
    np.float64(5.43656365691809)
    """
    argnums = argnums if argnum is None else argnum  # autograd spells it argnum
    vg = value_and_grad(fun, argnums, has_aux)

    @functools.wraps(fun)
    def grad_fun(*args, **kwargs):
        value, g = vg(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    name = getattr(fun, "__name__", "function")  # autograd's names, for tracebacks and introspection
    grad_fun.__name__ = grad_fun.__qualname__ = f"grad_of_{name}_wrt_argnum_{argnums}"
    grad_fun.__doc__ = (
        f"    grad of function {name} with respect to argument number {argnums}; "
        f"{name}'s docstring:\n{fun.__doc__ or ''}"
    )
    return grad_fun


def elementwise_grad(fun, argnums=0, *, argnum=None):
    """Gradient of the sum of the outputs: for elementwise ``f``, ``f'(x)`` per element."""
    argnums = argnums if argnum is None else argnum  # autograd spells it argnum

    @functools.wraps(fun)
    def egrad(*args, **kwargs):
        f = functools.partial(fun, **kwargs) if kwargs else fun
        nums = _argnums(argnums, len(args), "elementwise_grad")
        out, vjp_fn, _ = _vjp(f, args, nums, "elementwise_grad")
        leaves, treedef = tree_flatten(out)
        g = vjp_fn(tree_unflatten(treedef, [np.ones(_shape(x), _dtype(x)) for x in leaves]))
        vjp_fn.release()
        return g[0] if isinstance(argnums, int) else g

    return egrad


def jvp(fun, primals, tangents):
    """Forward mode: ``out, tangent_out = jvp(f, primals, tangents)``.

    ``primals`` and ``tangents`` are tuples (one entry per argument of ``f``)
    of pytrees with matching structures and shapes.  One forward sweep
    evaluates ``f`` and its directional derivative together.
    """
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError("jvp: primals and tangents must be tuples, one entry per argument")
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    trace = ForwardTrace()
    args = []
    for i, (p, t) in enumerate(zip(primals, tangents)):
        pl, pdef = tree_flatten(p)
        tl, tdef = tree_flatten(t)
        if pdef != tdef:
            raise ValueError(f"jvp: the tangent of argument {i} does not match its primal's structure")
        _check_float(pl, "jvp", i, pdef)
        boxed = []
        for x, v in zip(pl, tl):
            if _shape(v) != _shape(x):
                raise ValueError(f"jvp: argument {i} has shape {_shape(x)} but its tangent has shape {_shape(v)}")
            if _is_complex(v) and not _is_complex(x):
                raise TypeError(
                    f"jvp: the tangent of argument {i} is complex (dtype {_dtype(v)}) but the argument is "
                    f"real (dtype {_dtype(x)}); a real input moves along real directions only"
                )
            if not isinstance(v, Tracer):
                v = np.asarray(v, dtype=_dtype(x))
            boxed.append(trace.new_input(_as_array(x), v))
        args.append(tree_unflatten(pdef, boxed))
    out = call_traced(fun, args)
    leaves, treedef = tree_flatten(out)
    values, tans = [], []
    for o in leaves:
        if isinstance(o, FTracer) and o._trace is trace:
            values.append(o._value)
            tans.append(o._tangent)
        else:
            values.append(o)
            tans.append(_zeros(o))
    return tree_unflatten(treedef, values), tree_unflatten(treedef, tans)


def _check_array_arg(x, where, i):
    if isinstance(x, (dict, list, tuple)):
        raise TypeError(f"{where}: argument {i} is a pytree; jacobian takes array arguments")


def jacobian(fun, argnums=0, mode="rev", *, argnum=None):
    """The Jacobian ``J[i..., j...] = d out[i...] / d x[j...]``.

    Its shape is ``out.shape + x.shape``.  ``mode="rev"`` takes one reverse
    sweep per output element, ``mode="fwd"`` one forward sweep per input
    element; both give the same matrix, and either can be differentiated
    again (``hessian`` is ``jacobian(jacobian(f, mode="rev"), mode="fwd")``).
    """
    argnums = argnums if argnum is None else argnum  # autograd spells it argnum
    if mode not in ("rev", "fwd"):
        raise ValueError(f"jacobian: mode must be 'rev' or 'fwd', not {mode!r}")
    stack, reshape = array_op("stack"), array_op("reshape")

    @functools.wraps(fun)
    def jac(*args, **kwargs):
        f = functools.partial(fun, **kwargs) if kwargs else fun
        nums = _argnums(argnums, len(args), "jacobian")
        for i in nums:
            _check_array_arg(args[i], "jacobian", i)
        if mode == "rev":
            out, vjp_fn, _ = _vjp(f, args, nums, "jacobian")
            _check_array_arg(out, "jacobian", "output")
            oshape, odt = _shape(out), _dtype(out)
            n = int(np.prod(oshape))
            rows = []
            for k in range(n):
                e = np.zeros(n, odt)
                e[k] = 1
                rows.append(vjp_fn(e.reshape(oshape)))
            vjp_fn.release()
            jacs = []
            for j, i in enumerate(nums):
                ishape = _shape(args[i])
                if n == 0:
                    jacs.append(np.zeros(oshape + ishape, _dtype(args[i])))
                else:
                    jacs.append(reshape(stack([r[j] for r in rows]), oshape + ishape))
        else:
            jacs = []
            for i in nums:
                x = args[i]
                ishape, idt = _shape(x), _dtype(x)
                _check_float([x], "jacobian", i)
                m = int(np.prod(ishape))

                def f_i(xi, i=i):
                    a = list(args)
                    a[i] = xi
                    return f(*a)

                cols = []
                for k in range(m):
                    e = np.zeros(m, idt)
                    e[k] = 1
                    out, t = jvp(f_i, (x,), (e.reshape(ishape),))
                    cols.append(t)
                if m == 0:
                    out = f_i(x)
                    jacs.append(np.zeros(_shape(out) + ishape, _dtype(out)))
                else:
                    _check_array_arg(out, "jacobian", "output")
                    jacs.append(reshape(stack(cols, axis=-1), _shape(out) + ishape))
        return jacs[0] if isinstance(argnums, int) else tuple(jacs)

    return jac


def hessian(fun, argnums=0, *, argnum=None):
    """The Hessian of a scalar function: forward mode over reverse mode."""
    argnums = argnums if argnum is None else argnum  # autograd spells it argnum
    return jacobian(jacobian(fun, argnums, mode="rev"), argnums, mode="fwd")


def hvp(fun, x, v):
    """Hessian-vector product ``H(x) v`` of a scalar ``fun`` without forming ``H``.

    One forward sweep (tangent ``v``) through the reverse sweep of ``grad``;
    ``x`` and ``v`` may be pytrees of the same structure.
    """
    return jvp(grad(fun), (x,), (v,))[1]


# ----------------------------------------------------------------------------
# The names HIPS-autograd code calls, as thin wrappers over the transforms above
# (``argnum`` an int or a tuple; the returned function takes f's arguments).
# ----------------------------------------------------------------------------


def _select(argnum):
    return (lambda r: r[0]) if isinstance(argnum, int) else (lambda r: r)


def make_vjp(fun, argnum=0):
    """autograd's ``make_vjp``: ``make_vjp(f, argnum)(*args)`` is ``(vjp_fn, f(*args))``."""

    def maker(*args, **kwargs):
        f = functools.partial(fun, **kwargs) if kwargs else fun
        out, fn, _ = _vjp(f, args, _argnums(argnum, len(args), "make_vjp"), "make_vjp")
        pick = _select(argnum)
        return (lambda g: pick(fn(g))), out

    return maker


def make_jvp(fun, argnum=0):
    """autograd's ``make_jvp``: ``make_jvp(f, argnum)(*args)(v)`` is ``(f(*args), J v)``."""

    def maker(*args, **kwargs):
        nums = _argnums(argnum, len(args), "make_jvp")

        def jvp_fn(v):
            vs = (v,) if isinstance(argnum, int) else tuple(v)

            def f(*xs):
                a = list(args)
                for i, x in zip(nums, xs):
                    a[i] = x
                return fun(*a, **kwargs)

            return jvp(f, tuple(args[i] for i in nums), vs)

        return jvp_fn

    return maker


def deriv(fun, argnum=0):
    """autograd's ``deriv``: the forward-mode derivative along a tangent of ones."""

    def d(*args, **kwargs):
        x = args[argnum]
        return make_jvp(fun, argnum)(*args, **kwargs)(tree_map(lambda v: np.ones(_shape(v), _dtype(v)), x))[1]

    return d


def holomorphic_grad(fun, argnum=0):
    """autograd's ``holomorphic_grad``: the complex derivative ``f'(z)`` of a holomorphic ``f``.

    It is :func:`grad` of the real part ``u`` of ``f = u + iv``: ``du/dx - i du/dy``,
    which for a holomorphic ``f`` is exactly ``f'(z)`` (Cauchy-Riemann).  For a
    real input it is ``du/dx``.
    """
    real = array_op("real")

    @functools.wraps(fun)
    def real_part(*args, **kwargs):
        return real(fun(*args, **kwargs))

    return grad(real_part, argnum)


def _signature(fun, where, instead):
    """``inspect.signature(fun)``, or an error naming ``where`` for a function whose parameters cannot be read."""
    import inspect

    try:
        return inspect.signature(fun)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{where}: the parameters of {getattr(fun, '__name__', fun)!r} cannot be read ({e}); "
                        f"name arguments by position with {instead}") from None


def grad_named(fun, argname):
    """autograd's ``grad_named``: :func:`grad` with respect to the parameter of ``fun`` called ``argname``."""
    params = [p.name for p in _signature(fun, "grad_named", "grad(fun, argnum)").parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if argname not in params:
        raise ValueError(f"grad_named: {getattr(fun, '__name__', fun)!r} has no positional parameter "
                         f"{argname!r} (it has {params})")
    return grad(fun, params.index(argname))


def multigrad_dict(fun):
    """autograd's ``multigrad_dict``: the gradient with respect to every argument, as ``{name: gradient}``.

    The arguments are bound to ``fun``'s parameters (defaults included); a
    ``*args`` parameter's gradient is a tuple, a ``**kwargs`` parameter's a dict.
    """
    import inspect

    sig = _signature(fun, "multigrad_dict", "grad(fun, argnums=(0, 1, ...))")

    def gradfun(*args, **kwargs):
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError as e:  # Python's "missing a required argument: 'n'", naming no function
            raise TypeError(f"multigrad_dict: {getattr(fun, '__name__', fun)!r} {e}") from None
        bound.apply_defaults()

        def of_dict(arguments):
            rebound = inspect.BoundArguments(sig, arguments)
            return fun(*rebound.args, **rebound.kwargs)

        return grad(of_dict)(dict(bound.arguments))

    return gradfun


def grad_and_aux(fun, argnum=0):
    """autograd's ``grad_and_aux``: ``f`` returns ``(value, aux)``; the result is ``(gradient, aux)``."""
    return grad(fun, argnum, has_aux=True)


def make_hvp(fun, argnum=0):
    """autograd's ``make_hvp``: ``make_hvp(f)(*args)`` is ``(hvp_fn, grad f(*args))``, the sweep reused."""
    return make_vjp(grad(fun, argnum), argnum)


def make_ggnvp(f, g=None, f_argnum=0):
    """autograd's ``make_ggnvp``: ``make_ggnvp(f, g)(*args)(v)`` is ``J^T H_g J v``.

    The generalized Gauss-Newton product of the composition ``g(f(x))``: ``J``
    the Jacobian of ``f`` at ``x``, ``H_g`` the Hessian of the scalar ``g`` at
    ``f(x)`` (by default ``g(y) = sum(y**2, axis=-1) / 2``, so ``H_g = I``).
    One forward sweep of ``f`` for ``J v``, a Hessian-vector product of ``g``,
    and ``f``'s reverse sweep, recorded once and reused for every ``v``.
    """
    asum = array_op("sum")
    multiply = array_op("multiply")
    if g is None:
        def g(y):
            return multiply(0.5, asum(multiply(y, y), axis=-1))

    def maker(*args, **kwargs):
        nums = _argnums(f_argnum, len(args), "make_ggnvp")

        def f_i(*xs):
            a = list(args)
            for i, x in zip(nums, xs):
                a[i] = x
            return f(*a, **kwargs)

        xs = tuple(args[i] for i in nums)
        fx, f_vjp, _ = _vjp(f_i, xs, tuple(range(len(xs))), "make_ggnvp")
        hvp_g = hessian_tensor_product(lambda y: asum(g(y)))
        pick = _select(f_argnum)

        def ggnvp(v):
            vs = (v,) if isinstance(f_argnum, int) else tuple(v)
            jv = jvp(f_i, xs, vs)[1]
            return pick(f_vjp(hvp_g(fx, jv)))

        return ggnvp

    return maker


def hessian_tensor_product(fun, argnum=0):
    """``(*args, v) -> H v`` (forward mode over reverse mode) for a scalar ``fun``."""
    g = grad(fun, argnum)

    def htp(*args, **kwargs):
        args, v = args[:-1], args[-1]
        return make_jvp(g, argnum)(*args, **kwargs)(v)[1]

    return htp


hessian_vector_product = hessian_tensor_product


def tensor_jacobian_product(fun, argnum=0):
    """``(*args, v) -> v . J``: ``v`` contracted with the leading axes of ``fun``'s output."""
    asum, multiply = array_op("sum"), array_op("multiply")

    def tjp(*args, **kwargs):
        args, v = args[:-1], args[-1]
        nv = np.ndim(v)

        def contracted(*a):
            out = fun(*a, **kwargs)
            vb = np.reshape(v, np.shape(v) + (1,) * (len(_shape(out)) - nv))
            return asum(multiply(vb, out), axis=tuple(range(nv))) if nv else multiply(v, out)

        return jacobian(contracted, argnum)(*args)

    return tjp


vector_jacobian_product = tensor_jacobian_product


def checkpoint(fun):
    """autograd's ``checkpoint``: ``fun`` whose intermediate values are not kept for the reverse sweep.

    The result behaves as ``fun`` in every transform, but a reverse sweep
    records only its inputs and output; when the sweep reaches it, ``fun`` is
    run again (recorded this time) and swept at once.  Memory falls from all of
    ``fun``'s intermediates to its arguments, for one more forward pass.  Every
    positional argument may be traced; ``fun`` returns one array.  The recompute
    is itself differentiable, so checkpointed code works at any order and in
    forward mode (where nothing is stored and ``fun`` runs as usual).
    """
    name = getattr(fun, "__name__", "function")

    def _call(*args, **kwargs):
        return fun(*args, **kwargs)

    prim = Primitive(_call, f"checkpoint({name})")

    def vjp_maker(argnums, ans, *args, **kwargs):
        def back(g):
            f = functools.partial(fun, **kwargs) if kwargs else fun
            _, vjp_fn, _ = _vjp(f, args, tuple(argnums), "checkpoint")
            contributions = vjp_fn(g)
            vjp_fn.release()
            return contributions

        return back

    def jvp_rule(argnum, g, ans, *args, **kwargs):
        def f(xi):
            return fun(*args[:argnum], xi, *args[argnum + 1 :], **kwargs)

        return jvp(f, (args[argnum],), (g,))[1]

    prim.defvjp_argnums(vjp_maker)
    prim.jvps["*"] = jvp_rule
    functools.update_wrapper(prim, fun)
    return prim
