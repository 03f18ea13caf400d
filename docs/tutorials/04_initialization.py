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
# # Initialization: symmetry, and scale through depth
#
# ## Equal weights never break symmetry
#
# The notes (004): if every hidden unit of a layer starts with the same
# weights, every unit computes the same activation, $a^{(1)}_1 = a^{(1)}_2 =
# a^{(1)}_3$, receives the same $\delta$ in the backward sweep, and so gets the
# same update. The units stay identical through training: the layer is
# equivalent to a layer with one unit. Random weights (and zero biases) break
# the tie.
#
# `nablanet.symmetry.equal_weights` trains one network from constant weights
# and one from random weights on the same data and measures, after every
# epoch, the largest difference between two units of each hidden layer.

# %%
import numpy as np

from nablanet import symmetry
from nablanet.data import load_dataset, split_scale
from nablanet.viz import Figure

ds = load_dataset("franke", n=300, noise=0.0, seed=0)
Xtr, Xte, ytr, yte, _ = split_scale(ds, seed=0)
runs = symmetry.equal_weights(Xtr, ytr, hidden=(8, 8), activation="tanh", epochs=100, lr=0.1, seed=0)
for run in runs.values():
    print(run)

# %%
fig = Figure(figsize=(10, 3.6), layout="constrained")
for k, (title, key) in enumerate((("incoming weights", "weight_spread"), ("activations", "activation_spread"))):
    ax = fig.add_subplot(1, 2, k + 1)
    for name, run in runs.items():
        spread = getattr(run, key)
        for layer in range(spread.shape[1]):
            ax.semilogy(np.maximum(spread[:, layer], 1e-18), label=f"{name} init, hidden layer {layer + 1}")
    ax.set(title=f"largest difference between two units: {title}", xlabel="epoch", ylabel="spread")
    ax.legend(fontsize=8)
fig

# %%
c, r = runs["constant"], runs["random"]
assert c.symmetric and np.max(c.weight_spread) <= 1e-12
assert not r.symmetric and r.final_loss < c.final_loss
print(f"final training MSE: constant init {c.final_loss:.4f}, random init {r.final_loss:.4f}")

# %% [markdown]
# The constant network did learn something (its loss fell), but only what a
# network with one unit per hidden layer can: its spread stays at zero, to the
# last bit, for all 100 epochs.
#
# ## Scale through depth: Glorot and He
#
# Random is not enough; the scale matters. With $n$ inputs per unit, weights of
# variance $\mathrm{Var}\,W$ multiply the variance of the signal by about
# $n\,\mathrm{Var}\,W$ per layer. Glorot (Xavier) initialization picks
# $\mathrm{Var}\,W = 2/(n_{in}+n_{out})$ for tanh and sigmoid; He (Kaiming)
# picks $\mathrm{Var}\,W = 2/n_{in}$ for ReLU, whose output discards half of
# the signal. Below: the standard deviation of the activations through 20
# layers of width 256, for each pairing.

# %%
from nablanet.nn import init as initializers

rng = np.random.default_rng(0)
X = rng.standard_normal((512, 256))
activations = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0)}
schemes = {"normal(0.01)": initializers.normal(0.01), "normal(1)": initializers.normal(1.0),
           "glorot_normal": initializers.glorot_normal, "he_normal": initializers.he_normal,
           "fan_in_uniform (default)": initializers.fan_in_uniform}
stds = {}
for act_name, act in activations.items():
    for name, scheme in schemes.items():
        a, trace = X, []
        r = np.random.default_rng(1)
        for _ in range(20):
            a = act(a @ scheme((256, 256), r, np.float64))
            trace.append(a.std())
        stds[act_name, name] = np.array(trace)

fig = Figure(figsize=(10, 3.6), layout="constrained")
for k, act_name in enumerate(activations):
    ax = fig.add_subplot(1, 2, k + 1)
    for name in schemes:
        ax.semilogy(np.arange(1, 21), np.maximum(stds[act_name, name], 1e-30), marker=".", label=name)
    ax.set(title=f"{act_name}: std of activations", xlabel="layer", ylabel="std")
    ax.legend(fontsize=8)
fig

# %%
for (act_name, name), s in stds.items():
    print(f"{act_name:5s} {name:24s} layer 1: {s[0]:.3g}   layer 20: {s[-1]:.3g}")
assert 0.1 < stds["relu", "he_normal"][-1] < 10        # He keeps ReLU signals at scale
assert stds["relu", "normal(0.01)"][-1] < 1e-15        # too small: the signal vanishes
assert stds["relu", "normal(1)"][-1] > 1e15            # too large: it explodes
assert stds["tanh", "glorot_normal"][-1] > 0.05        # Glorot keeps tanh alive through depth
assert stds["tanh", "normal(1)"][-1] > 0.9             # too large: tanh saturates at +-1
# the default, Var W = 1/(3 n_in), is a third of what keeps a linear layer's scale and a sixth of He's
assert stds["relu", "fan_in_uniform (default)"][-1] < 1e-5 * stds["relu", "he_normal"][-1]

# %% [markdown]
# Too small and the signal (and, in the backward sweep, the gradient) dies
# out layer by layer; too large and tanh saturates, where its derivative is
# zero. The fan-in scaled schemes keep it in between. nablanet's default,
# `init="auto"` (PyTorch's too), draws $W \sim U(\pm 1/\sqrt{n_{in}})$, a variance
# of $1/(3 n_{in})$: it wins on the course's shallow networks, but through 20
# ReLU layers it shrinks the signal like any too-small scale. For a deep
# network name the scheme: `MLP(..., init="he_uniform")` for the ReLU family,
# `init="glorot_uniform"` for tanh and sigmoid (tutorial 5 does).
