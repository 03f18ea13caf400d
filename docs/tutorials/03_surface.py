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
# # Gradient descent on a surface
#
# The notes (004) fit a single neuron $y = \sigma(w x + b)$ to data
# $(x_i, y_i)$ by minimizing
#
# $$J(w, b) = \frac{1}{m}\sum_{i=1}^m \left(\sigma(w x_i + b) - y_i\right)^2 .$$
#
# $-\nabla J = -(\partial J/\partial w, \partial J/\partial b)$ points in the
# direction in which $J$ falls fastest, and gradient descent steps
# $(w, b) \leftarrow (w, b) - \alpha \nabla J$ until $\nabla J = 0$. Here we
# draw $J$ as a surface, $-\nabla J$ as arrows (from the engine), and the paths
# of seven optimizers from one start.

# %%
import numpy as np

from nablanet import surface, viz

rng = np.random.default_rng(0)
x = rng.uniform(-1, 1, 60)
y = 1 / (1 + np.exp(-(3 * x - 1))) + 0.01 * rng.standard_normal(60)   # data from w = 3, b = -1
J = surface.single_neuron(x, y)

# %% [markdown]
# ## The surface and the field $-\nabla J$

# %%
w = np.linspace(-4, 8, 31)
b = np.linspace(-6, 5, 29)
Z = surface.cost_grid(J, w, b)
U, V = surface.descent_field(J, w, b)
# the arrows are the engine's gradient; check one against central differences of J
i, j = 10, 12
h = 1e-6
fd = ((J(np.array([w[j] + h, b[i]])) - J(np.array([w[j] - h, b[i]]))) / (2 * h),
      (J(np.array([w[j], b[i] + h])) - J(np.array([w[j], b[i] - h]))) / (2 * h))
print(f"-grad J at (w, b) = ({w[j]:.2f}, {b[i]:.2f}): engine ({U[i, j]:.8f}, {V[i, j]:.8f}), "
      f"central differences ({-fd[0]:.8f}, {-fd[1]:.8f})")
assert np.allclose((U[i, j], V[i, j]), (-fd[0], -fd[1]), rtol=1e-6)

# %% [markdown]
# ## Seven optimizers from one start
#
# Each runs the library's own optimizer (`nablanet.optim`) with its own
# learning rate; minibatch SGD sees 8 samples per step, the others all 60.

# %%
paths = surface.optimizer_paths(J, start=[-3.0, 4.0], steps=150)
for p in paths.values():
    print(p)
viz.cost_surface(w, b, Z, (U, V), paths)

# %% [markdown]
# Plain gradient descent creeps along the flat valley; momentum and Nesterov
# overshoot and come back; the adaptive methods (AdaGrad, RMSprop, Adam)
# rescale each coordinate and reach the minimum near the true $(3, -1)$
# fastest. Every path starts at the star, and with a small enough step
# gradient descent lowers $J$ at every step:

# %%
gd = surface.optimizer_paths(J, [-3.0, 4.0], {"GD": ("sgd", {"lr": 0.5}, False)}, steps=300)["GD"]
assert all(np.array_equal(p.points[0], [-3.0, 4.0]) for p in paths.values())
assert np.all(np.diff(gd.costs) <= 0)
best = min(paths.values(), key=lambda p: p.final_cost)
print(f"GD (lr 0.5) after 300 steps: J = {gd.final_cost:.5f}; best of the seven: {best.name}, J = {best.final_cost:.2e}")
print("where it ended:", best.points[-1].round(2))
assert best.final_cost < 1e-3 and abs(best.points[-1][0] - 3) < 0.5

# %% [markdown]
# ## The landscape of a real network
#
# A network has far more than two parameters. Li et al. (2018) look at $J$ on
# a plane through the trained parameters $\theta^*$, along two random
# directions whose every filter (column of a weight matrix) is scaled to the
# norm of the matching filter of $\theta^*$, so that planes of networks with
# different weight scales can be compared. Here: a 2-32-32-1 network on the
# Franke function, with its training trajectory projected onto the plane.

# %%
from nablanet.data import load_dataset, split_scale
from nablanet.nn import MLP
from nablanet.train import fit
from nablanet.train.callbacks import Callback

ds = load_dataset("franke", n=400, noise=0.0, seed=0)
Xtr, Xte, ytr, yte, scaler = split_scale(ds, test_size=0.25, seed=0)
model = MLP([2, 32, 32, 1], activation="tanh", seed=0, dtype=np.float64)
snapshots = [[{k: np.array(v) for k, v in p.items()} for p in model.params]]   # the start, then every epoch


class Snapshot(Callback):
    def on_epoch_end(self, trainer, epoch, logs):
        snapshots.append([{k: np.array(v) for k, v in p.items()} for p in trainer.model.params])


hist = fit(model, Xtr, ytr, loss="mse", optimizer="adam", lr=1e-2, epochs=60, batch_size=32,
           seed=0, callbacks=[Snapshot()])
plane = surface.loss_plane(model, Xtr, ytr, "mse", trajectory=snapshots, span=1.0, n=25)
print(plane)
viz.loss_plane(plane)

# %%
assert abs(plane.center_cost - hist["loss"][-1]) < 0.5 * hist["loss"][-1] + 1e-3
assert plane.cost.min() >= 0 and plane.center_cost <= np.median(plane.cost)

# %% [markdown]
# The projected trajectory is a short scribble at the centre: in a space of
# 1,185 parameters two random directions are almost orthogonal to the path
# training took. Li et al. therefore draw trajectories on the plane of the
# path's two principal directions, which shows where training went:

# %%
pca = surface.loss_plane(model, Xtr, ytr, "mse", trajectory=snapshots, n=25, directions="pca")
print(pca)
viz.loss_plane(pca, title="Loss on the plane of the trajectory's two principal directions")

# %%
t = pca.trajectory
assert np.allclose(t[-1], 0, atol=1e-8)                        # training ends at theta*
assert np.hypot(*t[0]) > 10 * np.hypot(*plane.trajectory[0])    # the start is far from theta* on this plane
