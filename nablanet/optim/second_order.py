"""Full-batch optimizers that use curvature: L-BFGS, damped Newton and Hessian-free (truncated Newton).

They minimize a scalar function of one flat parameter vector x, given as an
:class:`Objective`::

    F(x) = f(x) + sum_i l1_i |x_i|

where f is smooth (a cost and its L2 penalty, written with
:mod:`nablanet.numpy`) and the L1 term is kept apart because it is not
differentiable at zero.  The engine supplies what each method needs: the
gradient (one reverse sweep), Hessian-vector products ``H v`` (a forward sweep
through the reverse sweep, :func:`nablanet.hvp`) and the whole Hessian
(forward over reverse, :func:`nablanet.hessian`).

================  ======================================================================
method            step
================  ======================================================================
``lbfgs``         SciPy's L-BFGS-B on ``(f, grad f)``: a quasi-Newton model of H from the
                  last ``history_size`` steps.  L1 is exact: each penalized x_i is split as
                  ``p_i - q_i`` with ``p_i, q_i >= 0`` (bounds L-BFGS-B handles), so F becomes
                  smooth: ``f(p - q) + sum l1_i (p_i + q_i)``.
``newton``        ``x <- x + t d`` with ``(H + mu I) d = -g`` solved by Cholesky; mu = 0 when H
                  is positive definite, else the smallest of ``mu0, 10 mu0, 100 mu0, ...`` that
                  makes it so (Levenberg damping).  t from a backtracking (Armijo) line search.
                  One Hessian costs n_params Hessian-vector products: for small models.
``hessian_free``  Truncated Newton: the step solves ``(B + lam I) d = -g`` approximately by
                  conjugate gradients that only ever touch B through products ``B v``:
                  ``B = H`` (``hvp``) or, with ``gauss_newton=True``, the Gauss-Newton matrix
                  ``G = J^T H_C J`` (J the Jacobian of the network's outputs, H_C the Hessian
                  of a convex cost in the outputs), which is positive semi-definite.
                  ``lam`` adapts (Levenberg-Marquardt, Martens 2010) from the ratio of the
                  actual to the predicted decrease.  Each iteration costs at most
                  ``cg_max_iter`` products, each linear in the number of parameters.
================  ======================================================================

Newton and Hessian-free smooth the L1 term as ``l1_i sqrt(x_i^2 + eps^2)`` (``eps =
l1_smoothing``, 1e-3 by default): its minimizer tends to the exact one as eps -> 0
(for logistic regression on breast cancer with eps = 1e-3, every weight lies within
0.01 of it), but a small eps makes the problem stiff and slow to solve, and no
weight becomes exactly zero.  For exact L1 and sparse weights use ``lbfgs``.

All three stop when the gradient's 2-norm of F is at most ``tol`` (for L-BFGS:
the largest entry of the projected gradient, SciPy's ``gtol``), or after
``max_iter`` iterations, and say which in ``info["stop_reason"]``.  They
compute in ``dtype`` (float64 by default) whatever the dtype of the caller's
parameters.
"""

from __future__ import annotations

import math

import numpy as np

from .. import validate as V
from ..autodiff.transforms import hessian, hvp, value_and_grad
from .optimizers import Optimizer

__all__ = ["Objective", "FullBatchOptimizer", "LBFGS", "Newton", "HessianFree", "FULL_BATCH"]


class Objective:
    """A function of a flat vector for the full-batch optimizers.

    Parameters
    ----------
    fun : callable
        ``fun(x) -> scalar``, the smooth part f, written with
        :mod:`nablanet.numpy` so the engine differentiates it (to second order
        for ``newton`` and ``hessian_free``).
    l1 : float or ndarray, optional
        Per-entry strengths of the L1 term ``sum l1_i |x_i|`` (a scalar applies to all).
    gauss_newton_product : callable, optional
        ``(x, v) -> G(x) v``, a positive semi-definite curvature product used
        by ``HessianFree(gauss_newton=True)``.
    """

    def __init__(self, fun, l1=0.0, gauss_newton_product=None):
        self.fun = fun
        self.l1 = l1
        self.gauss_newton_product = gauss_newton_product
        self._vg = value_and_grad(fun)
        self.n_fev = 0  # evaluations of f and its gradient
        self.n_hvp = 0  # curvature-vector products (a whole Hessian counts n of them)

    def value_and_grad(self, x):
        self.n_fev += 1
        v, g = self._vg(x)
        return float(v), np.asarray(g, dtype=x.dtype)

    def value(self, x):
        self.n_fev += 1
        return float(self.fun(x))

    def hvp(self, x, v):
        self.n_hvp += 1
        return np.asarray(hvp(self.fun, x, v), dtype=x.dtype)

    def gnvp(self, x, v):
        if self.gauss_newton_product is None:
            raise ValueError("this objective has no Gauss-Newton product; use gauss_newton=False")
        self.n_hvp += 1
        return np.asarray(self.gauss_newton_product(x, v), dtype=x.dtype)

    def hessian(self, x):
        self.n_hvp += x.size
        return np.asarray(hessian(self.fun)(x), dtype=x.dtype)


# ---------------------------------------------------------------------------------------------- the base


class FullBatchOptimizer(Optimizer):
    """Base of the methods that take whole steps on the whole training set.

    Not a step-by-step update: :meth:`minimize` runs the method, and the
    training loop (:class:`nablanet.train.Trainer`) calls it when the
    optimizer is one of these.
    """

    full_batch = True
    slots = ()
    name = ""

    def __init__(self, tol, dtype="float64", lr=None):
        if lr is not None:
            raise ValueError(f"{self.name} takes no learning rate: its steps come from a line search")
        self.lr = None
        self.clip_norm = None
        self._scratch = {}
        self.tol = V.non_negative_number(tol, f"{self.name} tol")
        if dtype is not None and np.dtype(dtype) not in (np.float32, np.float64):
            raise ValueError(f"{self.name}: dtype must be 'float32', 'float64' or None (the model's), got {dtype!r}")
        self.dtype = None if dtype is None else np.dtype(dtype).name

    def config(self):
        return {"name": self.name, **self.hyper()}

    def hyper(self):
        return {"tol": self.tol, "dtype": self.dtype}

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in self.hyper().items())})"

    def step(self, params, grads, state):
        raise TypeError(
            f"{type(self).__name__} is a full-batch method and takes no single steps; train with "
            f"nablanet.train.fit or Trainer.fit (batch_size=None), or call .minimize(objective, x0)"
        )

    def minimize(self, objective, x0, max_iter, callback=None):
        """Minimize ``objective`` from ``x0`` for at most ``max_iter`` iterations.

        ``callback(k, x, value, grad_norm)`` is called after iteration k = 0,
        1, ... with the current iterate (a view: copy it to keep it); a true
        return value stops the run.  Returns ``(x, info)`` with ``info`` a dict:
        ``n_iter``, ``n_fev``, ``n_hvp``, ``stop_reason``, ``converged``,
        ``value``, ``grad_norm``.
        """
        max_iter = V.non_negative_int(max_iter, f"{self.name} max_iter")
        dtype = np.dtype(self.dtype) if self.dtype else np.asarray(x0).dtype
        x = np.array(x0, dtype=dtype, copy=True)
        self.check_size(x.size)
        l1 = np.broadcast_to(np.asarray(objective.l1, dtype=dtype), x.shape)
        if (l1 < 0).any():
            raise ValueError(f"{self.name}: L1 strengths must be non-negative")
        objective.n_fev = objective.n_hvp = 0
        x, info = self._run(objective, x, l1, max_iter, callback or (lambda *a: False))
        info.update(n_fev=objective.n_fev, n_hvp=objective.n_hvp)
        return x, info

    def check_size(self, n_params):
        """Raise a clear error when the method cannot take ``n_params`` parameters (the training loop asks first)."""

    def _descend(self, F, x, max_iter, callback, step):
        """The loop of the methods that step on the smoothed F: ``step(x, f, g, gnorm)`` returns the next
        iterate, or None when its line search finds no decrease.

        Stops when F or its gradient is not finite, at ``||grad F|| <= tol``,
        after ``max_iter`` steps, when no step decreases F, or when the
        callback asks; ``n_iter`` counts the steps taken.
        """
        f, g = F.value_and_grad(x)
        gnorm = _norm(g)
        k, reason = 0, "max_iter reached"
        for k in range(max_iter + 1):
            if not math.isfinite(f) or not np.isfinite(gnorm):
                reason = "the cost or its gradient is not finite"
                break
            if gnorm <= self.tol:
                reason = f"gradient norm {gnorm:.3g} <= tol"
                break
            if k == max_iter:
                break
            x_new = step(x, f, g, gnorm)
            if x_new is None:
                reason = "line search found no decrease (at the limit of precision)"
                break
            x = x_new
            f, g = F.value_and_grad(x)
            gnorm = _norm(g)
            if callback(k, x, f, gnorm):
                k += 1
                reason = "stopped by a callback"
                break
        return x, {"n_iter": k, "stop_reason": reason, "converged": gnorm <= self.tol, "value": f, "grad_norm": gnorm}


def _norm(g):
    return float(np.sqrt(np.dot(g, g)))


class _Smoothed:
    """F(x) = f(x) + sum l1_i sqrt(x_i^2 + eps^2), with its gradient and diagonal curvature."""

    def __init__(self, objective, l1, eps):
        self.obj, self.l1, self.eps = objective, l1, eps
        self.active = bool(l1.any())

    def value_and_grad(self, x):
        v, g = self.obj.value_and_grad(x)
        if self.active:
            r = np.sqrt(x * x + self.eps**2)
            v += float(np.dot(self.l1, r))
            g = g + self.l1 * x / r
        return v, g

    def value(self, x):
        v = self.obj.value(x)
        if self.active:
            v += float(np.dot(self.l1, np.sqrt(x * x + self.eps**2)))
        return v

    def diag(self, x):
        """The L1 term's Hessian, a diagonal: l1 eps^2 / (x^2 + eps^2)^(3/2)."""
        return self.l1 * self.eps**2 / (x * x + self.eps**2) ** 1.5


def _backtrack(F, x, f, g, d, c=1e-4, shrink=0.5, max_halvings=40):
    """Armijo line search along d: the largest t = shrink^k with F(x + t d) <= f + c t g.d.

    When the predicted decrease -g.d is at the rounding level of f, the full
    step is taken (near the optimum f can no longer tell steps apart, while
    the Newton step still halves the digits of error).
    Returns ``(t, f_new)``, t = 0 when no step decreases F.
    """
    slope = float(np.dot(g, d))
    if -slope <= 64 * np.finfo(x.dtype).eps * max(1.0, abs(f)):
        return 1.0, F.value(x + d)
    t = 1.0
    for _ in range(max_halvings):
        fn = F.value(x + t * d)
        if fn <= f + c * t * slope:
            return t, fn
        t *= shrink
    return 0.0, f


# ---------------------------------------------------------------------------------------------- L-BFGS


class LBFGS(FullBatchOptimizer):
    """L-BFGS (SciPy's L-BFGS-B) on the flat parameter vector.

    Parameters
    ----------
    tol : float
        Stop when the largest entry of the (projected) gradient is at most ``tol``.
    ftol : float
        Also stop when a step lowers F by at most ``ftol * max(|F|, 1)``;
        0 (the default) leaves only ``tol`` and the budget, so small costs
        (a fit to 1e-7) are not cut short.
    history_size : int
        Pairs of steps and gradient changes kept for the inverse-Hessian model.
    max_fun : int
        Budget of function evaluations (line-search trials included).
    dtype : {"float64", "float32", None}
        Precision of the computation (None: the parameters').
    """

    name = "lbfgs"

    def __init__(self, tol=1e-7, ftol=0.0, history_size=10, max_fun=15000, dtype="float64", lr=None):
        super().__init__(tol, dtype, lr)
        self.ftol = V.non_negative_number(ftol, "lbfgs ftol")
        self.history_size = V.positive_int(history_size, "lbfgs history_size")
        self.max_fun = V.positive_int(max_fun, "lbfgs max_fun")

    def hyper(self):
        return {"tol": self.tol, "ftol": self.ftol, "history_size": self.history_size, "max_fun": self.max_fun,
                "dtype": self.dtype}

    def _run(self, obj, x, l1, max_iter, callback):
        from scipy.optimize import minimize

        pen = np.flatnonzero(l1)  # entries under L1: split into p - q, p, q >= 0
        n, m = x.size, pen.size
        w = l1[pen]

        def unpack(z):
            if not m:
                return z
            x = z[:n].copy()
            x[pen] = z[n:n + m] - z[n + m:]
            return x

        last = {}

        def fg(z):
            xx = unpack(z)
            v, g = obj.value_and_grad(xx)
            if m:
                p, q = z[n:n + m], z[n + m:]
                v += float(np.dot(w, p + q))
                g = np.concatenate([g, g[pen] + w, -g[pen] + w])
                g[pen] = 0.0  # the original entries of split coordinates are held at 0
            last.update(z=z.copy(), v=v, g=g)
            return v, g

        def projected_norm(z, g):
            """The gradient's norm with the components that push against a bound at 0 removed."""
            if not m:
                return _norm(g)
            gp = g.copy()
            gp[n:][(z[n:] <= 0) & (g[n:] > 0)] = 0.0
            return _norm(gp)

        if m:
            z0 = np.concatenate([x, np.maximum(x[pen], 0), np.maximum(-x[pen], 0)])
            z0[pen] = 0.0
            bounds = [(None, None)] * n + [(0, None)] * (2 * m)
            for i in pen:
                bounds[i] = (0.0, 0.0)
        else:
            z0, bounds = x, None

        state = {"k": 0, "stopped": False}

        def on_iter(intermediate_result):
            z = intermediate_result.x
            if "z" in last and np.array_equal(last["z"], z):
                v, g = last["v"], last["g"]
            else:  # not the point last evaluated: one more evaluation, to report the gradient
                v, g = fg(z)
            k = state["k"]
            state["k"] += 1
            if callback(k, unpack(z), float(v), projected_norm(z, g)):
                state["stopped"] = True
                raise StopIteration

        if max_iter == 0:
            v, g = fg(z0)
            return unpack(z0), {"n_iter": 0, "stop_reason": "max_iter reached", "converged": False, "value": v,
                                "grad_norm": projected_norm(z0, g)}
        res = minimize(fg, z0, jac=True, method="L-BFGS-B", bounds=bounds, callback=on_iter,
                       options={"maxiter": max_iter, "maxcor": self.history_size, "gtol": self.tol,
                                "ftol": self.ftol, "maxfun": self.max_fun})
        v, g = fg(res.x)
        if state["stopped"]:
            reason, converged = "stopped by a callback", False
        elif res.nit >= max_iter and not res.success:
            reason, converged = "max_iter reached", False
        else:
            reason, converged = str(res.message), bool(res.success)
        return unpack(res.x), {"n_iter": state["k"], "stop_reason": reason, "converged": converged, "value": v,
                               "grad_norm": projected_norm(res.x, g)}


# ---------------------------------------------------------------------------------------------- Newton


class Newton(FullBatchOptimizer):
    """Damped Newton with a backtracking line search; the Hessian from the engine.

    Parameters
    ----------
    tol : float
        Stop when ``||grad F||_2 <= tol``.
    damping : float
        First Levenberg damping tried, relative to the largest diagonal entry
        of H, when the Cholesky factorization of H fails.
    l1_smoothing : float
        eps of the smoothed L1 term ``sqrt(x^2 + eps^2)``.
    max_params : int
        The most parameters it takes (5000 by default): the Hessian of n
        parameters costs n Hessian-vector products and ``8 n^2`` bytes
        (twice that while it is assembled), so past this a clear error
        suggests ``hessian_free`` or ``lbfgs`` instead of hours of work or
        running out of memory.
    dtype : {"float64", "float32", None}
    """

    name = "newton"

    def __init__(self, tol=1e-10, damping=1e-8, l1_smoothing=1e-3, max_params=5000, dtype="float64", lr=None):
        super().__init__(tol, dtype, lr)
        self.damping = V.positive_number(damping, "newton damping")
        self.l1_smoothing = V.positive_number(l1_smoothing, "newton l1_smoothing")
        self.max_params = V.positive_int(max_params, "newton max_params")

    def hyper(self):
        return {"tol": self.tol, "damping": self.damping, "l1_smoothing": self.l1_smoothing,
                "max_params": self.max_params, "dtype": self.dtype}

    def _solve(self, H, g):
        """d with (H + mu I) d = -g: mu = 0 if H is positive definite, else the first that makes it so."""
        scale = max(1.0, float(np.abs(np.diag(H)).max(initial=0.0)))
        mu = 0.0
        eye = np.eye(H.shape[0], dtype=H.dtype)
        for _ in range(40):
            try:
                L = np.linalg.cholesky(H + mu * eye if mu else H)
            except np.linalg.LinAlgError:
                mu = self.damping * scale if mu == 0.0 else mu * 10.0
                continue
            y = _solve_triangular(L, -g, lower=True)
            return _solve_triangular(L.T, y, lower=False), mu
        raise np.linalg.LinAlgError("newton: the Hessian stays indefinite under any damping tried (NaN in it?)")

    def check_size(self, n_params):
        if n_params > self.max_params:
            gb = 8 * n_params**2 / 1e9
            raise ValueError(
                f"newton: the model has {n_params} parameters, more than max_params={self.max_params}: its Hessian "
                f"would take {gb:.3g} GB and {n_params} Hessian-vector products per iteration; use 'hessian_free' "
                f"or 'lbfgs', or Newton(max_params={n_params}) to go on"
            )

    def _run(self, obj, x, l1, max_iter, callback):
        F = _Smoothed(obj, l1, self.l1_smoothing)

        def step(x, f, g, gnorm):
            H = obj.hessian(x)
            if F.active:
                H[np.diag_indices_from(H)] += F.diag(x)
            d, _ = self._solve(H, g)
            t, _ = _backtrack(F, x, f, g, d)
            return None if t == 0.0 else x + t * d

        return self._descend(F, x, max_iter, callback, step)


def _solve_triangular(L, b, lower):
    from scipy.linalg import solve_triangular

    return solve_triangular(L, b, lower=lower, check_finite=False)


# ---------------------------------------------------------------------------------------------- Hessian-free


class HessianFree(FullBatchOptimizer):
    """Truncated Newton: conjugate gradients on curvature-vector products.

    Parameters
    ----------
    tol : float
        Stop when ``||grad F||_2 <= tol``.  At a point with ``||grad F|| <= tol``
        of a function whose Hessian's smallest eigenvalue is m > 0, the
        distance to the minimizer is at most about ``tol / m``.
    gauss_newton : bool
        Use the Gauss-Newton matrix (positive semi-definite; needs an
        objective built with a Gauss-Newton product, as the training loop
        builds for MSE and cross-entropy costs) instead of the Hessian.
    cg_max_iter : int
        Most conjugate-gradient iterations (curvature products) per step.
    damping : float
        Initial Levenberg-Marquardt damping lam, adapted by the reduction ratio.
    l1_smoothing : float
        eps of the smoothed L1 term.
    dtype : {"float64", "float32", None}
    """

    name = "hessian_free"

    def __init__(self, tol=1e-8, gauss_newton=False, cg_max_iter=50, damping=1e-3, l1_smoothing=1e-3,
                 dtype="float64", lr=None):
        super().__init__(tol, dtype, lr)
        self.gauss_newton = V.boolean(gauss_newton, "hessian_free gauss_newton")
        self.cg_max_iter = V.positive_int(cg_max_iter, "hessian_free cg_max_iter")
        self.damping = V.non_negative_number(damping, "hessian_free damping")
        self.l1_smoothing = V.positive_number(l1_smoothing, "hessian_free l1_smoothing")

    def hyper(self):
        return {"tol": self.tol, "gauss_newton": self.gauss_newton, "cg_max_iter": self.cg_max_iter,
                "damping": self.damping, "l1_smoothing": self.l1_smoothing, "dtype": self.dtype}

    def _cg(self, Bv, g, forcing):
        """Approximately solve B d = -g; stops at ||B d + g|| <= forcing ||g|| or at negative curvature."""
        d = np.zeros_like(g)
        r = -g.copy()  # residual -g - B d
        p = r.copy()
        rr = float(np.dot(r, r))
        stop = (forcing**2) * rr
        for _ in range(self.cg_max_iter):
            Bp = Bv(p)
            curv = float(np.dot(p, Bp))
            if curv <= 0.0:  # a direction of negative curvature: keep what we have (or steepest descent)
                return d if d.any() else -g
            alpha = rr / curv
            d += alpha * p
            r -= alpha * Bp
            rr_new = float(np.dot(r, r))
            if rr_new <= stop:
                break
            p *= rr_new / rr
            p += r
            rr = rr_new
        return d

    def _run(self, obj, x, l1, max_iter, callback):
        F = _Smoothed(obj, l1, self.l1_smoothing)
        product = obj.gnvp if self.gauss_newton else obj.hvp
        if self.gauss_newton and obj.gauss_newton_product is None:
            raise ValueError("hessian_free: gauss_newton=True needs an objective with a Gauss-Newton product")
        lam = self.damping

        def step(x, f, g, gnorm):
            nonlocal lam
            diag = F.diag(x) if F.active else None

            def B(v, lam=lam):
                out = product(x, v)
                if diag is not None:
                    out = out + diag * v
                return out + lam * v if lam else out

            forcing = min(0.5, math.sqrt(gnorm))  # looser far away, tighter near the optimum (superlinear)
            d = self._cg(B, g, forcing)
            Bd = B(d)
            predicted = -(float(np.dot(g, d)) + 0.5 * float(np.dot(d, Bd)))
            t, f_new = _backtrack(F, x, f, g, d)
            if t == 0.0:  # the model misled: distrust it more, and fall back on steepest descent for this step
                lam = max(lam * 10.0, 1e-8)
                d = -g
                t, f_new = _backtrack(F, x, f, g, d)
                predicted = 0.0
            if t == 0.0:
                return None
            if t == 1.0 and predicted > 0:  # Levenberg-Marquardt: adapt lam by how well the model predicted
                rho = (f - f_new) / predicted
                lam = lam * 1.5 if rho < 0.25 else lam * (2.0 / 3.0) if rho > 0.75 else lam
            elif t < 1.0:
                lam *= 1.5
            return x + t * d

        return self._descend(F, x, max_iter, callback, step)


FULL_BATCH = {"lbfgs": LBFGS, "newton": Newton, "hessian_free": HessianFree}
