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
# # Backpropagation: the delta equations, step by step
#
# The notes (000, 002, 003) derive backpropagation for a feed-forward network
# as four equations. With rows as samples (nablanet's convention; the notes
# write the same math with samples as columns):
#
# $$z^l = a^{l-1} W^l + b^l, \qquad a^l = \sigma_l(z^l),$$
#
# $$\delta^L = \frac{\partial C}{\partial a^L} \odot \sigma_L'(z^L), \qquad
#   \delta^l = \left(\delta^{l+1} (W^{l+1})^T\right) \odot \sigma_l'(z^l),$$
#
# $$\frac{\partial C}{\partial W^l} = (a^{l-1})^T \delta^l, \qquad
#   \frac{\partial C}{\partial b^l} = \sum_{\text{rows}} \delta^l .$$
#
# Below, a 3-4-3-2 network with sigmoid hidden layers and a sigmoid output is
# pushed forward and pulled back by hand in NumPy, with the cost
# $C = \frac{1}{2}\sum (a^L - t)^2$ over a batch of five samples. The
# result is checked against the engine, which runs the same equations inside
# its fused dense primitive, and against central differences.

# %%
import numpy as np

import nablanet as nb
from nablanet.losses import get_loss
from nablanet.nn import MLP

rng = np.random.default_rng(0)
sizes = [3, 4, 3, 2]
model = MLP(sizes, activation="sigmoid", output_activation="sigmoid", seed=0, dtype=np.float64)
X = rng.uniform(-1, 1, (5, 3))
t = rng.uniform(0, 1, (5, 2))
Ws = [p["W"] for p in model.params]
bs = [p["b"] for p in model.params]
print(model)

# %% [markdown]
# ## Forward pass: keep every $z^l$ and $a^l$

# %%
sigma = lambda z: 1 / (1 + np.exp(-z))
dsigma = lambda z: sigma(z) * (1 - sigma(z))
a = [X]
z = [None]
for W, b in zip(Ws, bs):
    z.append(a[-1] @ W + b)
    a.append(sigma(z[-1]))
C = 0.5 * np.sum((a[-1] - t) ** 2)
for l in range(1, len(a)):
    print(f"layer {l}: z^{l} shape {z[l].shape}, a^{l}[0] = {np.round(a[l][0], 5)}")
print(f"C = {C:.12f}")

# %% [markdown]
# ## Backward pass: $\delta^L$ first, then each layer's from the next one's

# %%
L = len(Ws)
delta = [None] * (L + 1)
delta[L] = (a[L] - t) * dsigma(z[L])                      # dC/da^L = a^L - t for the half sum of squares
for l in range(L - 1, 0, -1):
    delta[l] = (delta[l + 1] @ Ws[l].T) * dsigma(z[l])   # Ws[l] is W^(l+1) (0-based list)
dW = [a[l - 1].T @ delta[l] for l in range(1, L + 1)]
db = [delta[l].sum(axis=0) for l in range(1, L + 1)]
for l in range(1, L + 1):
    print(f"delta^{l}[0] = {np.round(delta[l][0], 6)}   |dC/dW^{l}| = {np.linalg.norm(dW[l - 1]):.6f}")

# %% [markdown]
# ## The engine's gradient
#
# `model.apply(params, X)` is the network's forward pass, differentiable in
# `params`; one reverse sweep of the engine gives every $\partial C/\partial W^l$ and
# $\partial C/\partial b^l$.

# %%
half_sse = get_loss("half_sse")
cost = lambda params: half_sse(model.apply(params, X), t)   # the notes' 1/2 sum of squares
grads = nb.grad(cost)(model.params)
engine_err = max(max(np.max(np.abs(g["W"] - w)), np.max(np.abs(g["b"] - b_))) for g, w, b_ in zip(grads, dW, db))
print(f"C from the engine's loss: {cost(model.params):.12f};  largest |engine - delta equations| = {engine_err:.1e}")
assert abs(cost(model.params) - C) < 1e-12 and engine_err < 1e-12

# %% [markdown]
# ## Central differences, entry by entry
#
# The slow, approximate check the notes mention: perturb each weight by
# $\pm\varepsilon$ and difference the cost.

# %%
eps = 1e-6
fd_err = 0.0
for l, W in enumerate(Ws):
    for idx in np.ndindex(W.shape):
        plus = [dict(p) for p in model.params]
        minus = [dict(p) for p in model.params]
        plus[l]["W"] = W.copy()
        plus[l]["W"][idx] += eps
        minus[l]["W"] = W.copy()
        minus[l]["W"][idx] -= eps
        fd = (cost(plus) - cost(minus)) / (2 * eps)
        fd_err = max(fd_err, abs(fd - dW[l][idx]))
print(f"largest |central difference - delta equations| over all {sum(W.size for W in Ws)} weights: {fd_err:.1e}")
assert fd_err < 1e-8

# %% [markdown]
# Three independent routes, one answer: the delta equations by hand, the
# engine's reverse sweep, and finite differences (to their own accuracy of
# about $\varepsilon^2$). `nablanet explain --sizes 2,3,2` prints the same
# walk-through for one sample from the command line.
