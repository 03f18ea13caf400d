# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Automatic differentiation, by hand and by machine
#
# The notes (001) work two functions by hand,
#
# $$f(x) = e^{x^2}, \qquad g(x) = \sqrt{x^2 + e^{x^2}},$$
#
# in both modes of automatic differentiation:
#
# * **forward mode** pushes a *tangent* $\dot v = dv/dx$ along with every
#   intermediate value $v$, from the input to the output, in the same sweep
#   as the values;
# * **reverse mode** first records the values, then pulls an *adjoint*
#   $\bar v = \partial f / \partial v$ from the output ($\bar f = 1$) back to
#   the input.
#
# Both give the exact derivative (to rounding), unlike finite differences.
# This notebook does the sweeps by hand in NumPy, then lets nablanet's engine
# do them, and checks that the numbers agree.

# %%
import time

import numpy as np

import nablanet as nb
import nablanet.numpy as anp
from nablanet.explain import explain_expression

# %% [markdown]
# ## $f(x) = e^{x^2}$ by hand
#
# The graph has three nodes: $v_0 = x$, $v_1 = v_0^2$, $v_2 = e^{v_1} = f$.
#
# | node | value | tangent (forward) | adjoint (reverse) |
# |---|---|---|---|
# | $v_0 = x$ | $x$ | $\dot v_0 = 1$ | $\bar v_0 = \bar v_1 \cdot 2 v_0$ |
# | $v_1 = v_0^2$ | $x^2$ | $\dot v_1 = 2 v_0 \dot v_0$ | $\bar v_1 = \bar v_2 \cdot e^{v_1}$ |
# | $v_2 = e^{v_1}$ | $e^{x^2}$ | $\dot v_2 = e^{v_1} \dot v_1$ | $\bar v_2 = 1$ |

# %%
x = 1.5
v0 = x
v1 = v0**2
v2 = np.exp(v1)
# forward sweep: tangents in the same order as the values
d0 = 1.0
d1 = 2 * v0 * d0
d2 = np.exp(v1) * d1
# reverse sweep: adjoints in the opposite order
a2 = 1.0
a1 = a2 * np.exp(v1)
a0 = a1 * 2 * v0
print(f"f({x}) = {v2:.12f}   forward f' = {d2:.12f}   reverse f' = {a0:.12f}   exact 2x e^(x^2) = {2 * x * np.exp(x**2):.12f}")

# %% [markdown]
# The engine does the same: `nb.jvp` is one forward sweep, `nb.grad` one
# reverse sweep.

# %%
f = lambda x: anp.exp(x**2)
value, tangent = nb.jvp(f, (x,), (1.0,))
reverse = nb.grad(f)(x)
print(value, tangent, reverse)
assert abs(tangent - d2) < 1e-12 * abs(d2) and abs(reverse - a0) < 1e-12 * abs(a0)

# %% [markdown]
# ## $g(x) = \sqrt{x^2 + e^{x^2}}$: the engine's own sweep tables
#
# `explain_expression` records the engine's tape for an expression and prints
# every node's value, tangent and adjoint, the table the notes fill in by hand.
# With $b = e^{x^2}$ and $d = \sqrt{x^2 + b}$, the notes' closed form is
# $g'(x) = x (1 + b) / d$.

# %%
text, report = explain_expression("sqrt(x**2 + exp(x**2))", at=1.5)
print(text)

# %%
b = np.exp(1.5**2)
closed = 1.5 * (1 + b) / np.sqrt(1.5**2 + b)
assert abs(report["forward"] - closed) < 1e-12 * closed
assert abs(report["reverse"] - closed) < 1e-12 * closed
print(f"closed form {closed:.15f}, both modes agree to {abs(report['forward'] - closed):.1e}")

# %% [markdown]
# ## Higher derivatives
#
# The derivative rules are themselves written with differentiable primitives,
# so transforms compose: `grad(grad(g))` is the second derivative, and any
# mix of modes works (forward over reverse is how `hessian` is built).

# %%
g = lambda x: anp.sqrt(x**2 + anp.exp(x**2))
d2g = nb.grad(nb.grad(g))(1.5)
d3g = nb.grad(nb.grad(nb.grad(g)))(1.5)
h = 1e-4
fd2 = (g(1.5 + h) - 2 * g(1.5) + g(1.5 - h)) / h**2
print(f"g''(1.5) = {d2g:.10f}  (central differences: {fd2:.10f})   g'''(1.5) = {d3g:.6f}")
assert abs(d2g - fd2) < 1e-5 * abs(d2g)

# %% [markdown]
# ## Jacobians in both modes
#
# For $F:\mathbb{R}^n \to \mathbb{R}^m$, reverse mode builds the Jacobian a
# row at a time (one sweep per output), forward mode a column at a time (one
# sweep per input). Both give the same matrix; which is cheaper depends on
# whether $m$ or $n$ is smaller.

# %%
A = np.random.default_rng(0).standard_normal((3, 4))
F = lambda x: anp.tanh(A @ x) * anp.sum(x**2)
x0 = np.linspace(-1, 1, 4)
J_rev = nb.jacobian(F, mode="rev")(x0)
J_fwd = nb.jacobian(F, mode="fwd")(x0)
print(J_rev.round(4))
assert J_rev.shape == (3, 4) and np.allclose(J_rev, J_fwd, rtol=1e-13, atol=1e-14)

# %% [markdown]
# ## Why reverse mode: one sweep against $2n$ function evaluations
#
# Central differences need two evaluations of the cost per parameter, so
# their cost grows with the number of parameters $n$; one reverse sweep gives
# the whole gradient for a small constant times one evaluation. We time both
# on $C(w) = \tfrac12 \lVert \tanh(X w) - y \rVert^2$ as $n$ grows.

# %%
rng = np.random.default_rng(1)
rows = []
for n in (10, 40, 160, 640):
    X = rng.standard_normal((200, n))
    y = rng.standard_normal(200)
    C = lambda w: 0.5 * anp.sum((anp.tanh(X @ w) - y) ** 2)
    w = rng.standard_normal(n) / np.sqrt(n)
    t0 = time.perf_counter()
    g_rev = nb.grad(C)(w)
    t_rev = time.perf_counter() - t0
    t0 = time.perf_counter()
    eps = 1e-6
    E = np.eye(n) * eps
    g_fd = np.array([(C(w + E[i]) - C(w - E[i])) / (2 * eps) for i in range(n)])
    t_fd = time.perf_counter() - t0
    rows.append((n, t_rev, t_fd, np.max(np.abs(g_fd - g_rev)) / np.max(np.abs(g_rev))))
print(f"{'n':>5} {'reverse sweep':>14} {'finite diff.':>13} {'ratio':>7} {'rel. difference':>16}")
for n, tr, tf, err in rows:
    print(f"{n:>5} {tr * 1e3:>11.2f} ms {tf * 1e3:>10.1f} ms {tf / tr:>7.0f} {err:>16.1e}")
assert all(err < 1e-6 for *_, err in rows)

# %% [markdown]
# The finite-difference time grows linearly with $n$ while the reverse sweep
# stays nearly flat, and the two gradients agree to the accuracy of the
# differences (about $10^{-8}$ relative), which is why backpropagation, reverse
# mode on a network, is how networks are trained.
