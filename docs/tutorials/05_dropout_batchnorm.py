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
# # Dropout and batch normalization
#
# The notes (001) list both among the components of a network.
#
# * **Dropout** (Srivastava et al., 2014): in training, each hidden unit is
#   zeroed with probability $p$ and the survivors are scaled by $1/(1-p)$, so
#   no unit can rely on a particular other unit; at test time the layer is the
#   identity. It is a regularizer: it trades training fit for test fit.
# * **Batch normalization** (Ioffe and Szegedy, 2015): each unit's $z$ is
#   standardized over the batch, $\hat z = (z - \mu_B)/\sqrt{\sigma_B^2 +
#   \epsilon}$, then scaled and shifted by learned $\gamma, \beta$; running
#   averages of $\mu_B, \sigma_B^2$ replace them at test time. It keeps each
#   layer's input at a steady scale, which lets training go faster.
#
# Two experiments on a small part of the digits data (300 training images,
# so that a network can overfit): dropout on a wide ReLU network, and batch
# normalization on a deep tanh network.

# %%
from nablanet.data import load_dataset, split_scale
from nablanet.nn import MLP
from nablanet.train import fit
from nablanet.viz import Figure

ds = load_dataset("digits")
Xtr, Xte, ytr, yte, _ = split_scale(ds, test_size=0.5, seed=0)
Xtr, ytr = Xtr[:300], ytr[:300]


def train(sizes, activation, epochs, lr, **kw):
    # the notes' scale-keeping initializations (He for ReLU, Glorot for tanh): the default's smaller
    # weights suit shallow networks, and would leave the plain deep tanh network barely learning here
    init = "he_uniform" if activation == "relu" else "glorot_uniform"
    model = MLP(sizes, activation=activation, output_activation="softmax", init=init, seed=0, **kw)
    return fit(model, Xtr, ytr, loss="cross_entropy", optimizer="sgd", lr=lr, epochs=epochs, batch_size=30, seed=0,
               validation_data=(Xte, yte), metrics=["accuracy"])


runs = {
    "plain (wide)": train([64, 128, 128, 10], "relu", 30, 0.01),
    "dropout 0.5 (wide)": train([64, 128, 128, 10], "relu", 30, 0.01, dropout=0.5),
    "plain (deep)": train([64, 64, 64, 64, 64, 10], "tanh", 12, 0.01),
    "batch norm (deep)": train([64, 64, 64, 64, 64, 10], "tanh", 12, 0.01, batch_norm=True),
}

# %%
fig = Figure(figsize=(11, 3.8), layout="constrained")
ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
for k, name in enumerate(runs):
    h, c = runs[name], f"C{k}"
    ax = ax1 if "wide" in name else ax2
    ax.semilogy(h["epoch"], h["loss"], "-", color=c, label=f"{name}: training")
    ax.semilogy(h["epoch"], h["val_loss"], "--", color=c, label=f"{name}: test")
ax1.set(title="dropout: training (solid) and test (dashed) cost", xlabel="epoch", ylabel="cross-entropy")
ax2.set(title="batch normalization: training and test cost", xlabel="epoch", ylabel="cross-entropy")
ax1.legend(fontsize=7)
ax2.legend(fontsize=7)
fig

# %%
print(f"{'':20s} {'train cost':>10s} {'test cost':>10s} {'gap':>8s} {'test accuracy':>14s}")
rows = {}
for name, h in runs.items():
    rows[name] = (h["loss"][-1], h["val_loss"][-1], h["val_loss"][-1] - h["loss"][-1], h["val_accuracy"][-1])
    print(f"{name:20s} {rows[name][0]:10.4f} {rows[name][1]:10.4f} {rows[name][2]:8.4f} {rows[name][3]:14.3f}")

# %% [markdown]
# What the table shows, and what the next cell checks:
#
# * the wide network without help drives its training cost far below its test
#   cost: it memorizes the 300 images;
# * with dropout the training cost (measured on thinned networks) stays up and
#   the gap between training and test cost closes;
# * the deep tanh network learns faster with batch normalization: after the
#   same 12 epochs at the same learning rate it is well ahead on the test set.

# %%
assert rows["dropout 0.5 (wide)"][2] < rows["plain (wide)"][2]      # dropout narrows the generalization gap
assert rows["dropout 0.5 (wide)"][0] > rows["plain (wide)"][0]      # ... by fitting the training set less tightly
assert rows["batch norm (deep)"][3] > rows["plain (deep)"][3] + 0.02  # batch norm learns faster
assert min(r[3] for r in rows.values()) > 0.7                        # every variant learns the digits
