"""The Trainer's captured step (``jit(value_and_grad(objective))``) equals the engine's, for every model.

``Trainer(capture=False)`` traces the objective and sweeps it back at every
step; ``capture=True`` (the default) replays the program recorded on the first
step.  The replay calls the same NumPy functions on the same values, so the
two agree bit for bit in float64: costs, gradients, running statistics and the
random draws of dropout.
"""

import numpy as np
import pytest

import nablanet as nb
import nablanet.numpy as anp
from nablanet.losses import mse
from nablanet.nn import MLP, Activation, ActivationFunction, BatchNorm, Dense, Dropout, LayerNorm, Sequential
from nablanet.train import Trainer

ACTS = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "gelu", "silu",
        {"name": "elu", "alpha": 2.0}, {"name": "leaky_relu", "alpha": 0.3}]


def _data(loss, k, rng, n=7, onehot=False):
    X = rng.standard_normal((n, 4))
    if loss in ("mse", "huber", "mae", "half_sse"):
        return X, rng.standard_normal((n, k))
    if loss == "bce":
        return X, rng.integers(0, 2, (n, 1)).astype(float)
    y = rng.integers(0, k, n)
    return X, (np.eye(k)[y] if onehot else y)


def _both(make_model, loss, X, y, steps=3, **kw):
    """Run ``steps`` SGD steps captured and uncaptured; return (costs, params, states, traces) per mode."""
    out = []
    for capture in (True, False):
        m = make_model()
        t = Trainer(m, loss, "sgd", lr=0.1, seed=5, capture=capture, **kw)
        costs = [t.train_step(X, y) for _ in range(steps)]
        traces = sum(getattr(f, "traces", 0) for f in t._steps.values())
        out.append((costs, t.get_flat_params().copy(), [dict(s) for s in m.state], traces))
    return out


def _assert_same(cap, eng):
    assert cap[0] == eng[0]  # costs, bit for bit
    np.testing.assert_array_equal(cap[1], eng[1])
    for a, b in zip(cap[2], eng[2]):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    assert cap[3] == 1 and eng[3] == 0  # traced once, replayed after


@pytest.mark.parametrize("act", ACTS, ids=str)
@pytest.mark.parametrize("loss,out,k,onehot", [("mse", "identity", 2, False), ("cross_entropy", "softmax", 3, False),
                                               ("cross_entropy", "softmax", 3, True), ("bce", "sigmoid", 1, False)])
def test_captured_step_equals_engine(act, loss, out, k, onehot):
    X, y = _data(loss, k, np.random.default_rng(0), onehot=onehot)
    make = lambda: MLP([4, 5, 6, k], activation=act, output_activation=out, seed=1, dtype=np.float64)
    _assert_same(*_both(make, loss, X, y, l2=1e-3, l1=1e-4))


@pytest.mark.parametrize("model", ["dropout", "batch_norm", "dropout+batch_norm", "layer_norm+gelu", "layer_norm+gelu_tanh",
                                   "custom"])
@pytest.mark.parametrize("loss", ["mse", "huber", "mae"])
def test_every_model_and_loss_is_captured(model, loss):
    """The layers and costs that used to leave the fast path: one program, the engine's numbers."""
    X, y = _data("mse", 2, np.random.default_rng(1), n=9)

    def make():
        if model.startswith("layer_norm+"):
            return Sequential(Dense(4, 6), LayerNorm(6), Activation(model[11:]), Dropout(0.2), Dense(6, 2), seed=2,
                              dtype=np.float64)
        if model == "custom":
            return Sequential(Dense(4, 6, "silu"), Dropout(0.3), Dense(6, 5), BatchNorm(5), Activation("tanh"),
                              Dense(5, 2, "elu"), output_activation="tanh", seed=2, dtype=np.float64)
        return MLP([4, 6, 5, 2], dropout=0.3 if "dropout" in model else 0.0, batch_norm="batch_norm" in model,
                   seed=2, dtype=np.float64)

    cap, eng = _both(make, loss, X, y, steps=4)
    _assert_same(cap, eng)


def test_a_user_loss_is_captured():
    def smooth_l1(out, t):
        d = out - t
        return anp.mean(anp.sqrt(d * d + 1.0) - 1.0)

    X, y = _data("mse", 2, np.random.default_rng(2))
    make = lambda: MLP([4, 5, 2], activation="tanh", seed=3, dtype=np.float64)
    _assert_same(*_both(make, smooth_l1, X, y))


def test_a_user_activation_named_tanh_trains_as_the_engine_says():
    """Regression: a user activation named "tanh" computing 2 tanh(z) was replayed as np.tanh."""
    act = ActivationFunction("tanh", lambda z: 2 * np.tanh(z), lambda a: 2 - a * a / 2)
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((16, 4)), rng.standard_normal((16, 1))
    m = Sequential(Dense(4, 6, act), Dense(6, 1), seed=0, dtype=np.float64)
    t = Trainer(m, "mse", "sgd", lr=0.05, seed=0)
    for _ in range(3):
        p0 = [{k: v.copy() for k, v in p.items()} for p in m.params]
        cost_engine, g = nb.value_and_grad(lambda p: mse(m.apply(p, X), y))(p0)
        cost = t.train_step(X, y)
        assert cost == pytest.approx(float(cost_engine), rel=1e-14)
        for pl, gl, ql in zip(p0, g, m.params):
            for k in pl:
                np.testing.assert_allclose(ql[k], pl[k] - 0.05 * gl[k], rtol=1e-13, atol=1e-15)
    # and the engine's numbers are 2 tanh's, not tanh's
    h = 2 * np.tanh(X @ p0[0]["W"] + p0[0]["b"])
    assert float(cost_engine) == pytest.approx(np.mean((h @ p0[1]["W"] + p0[1]["b"] - y) ** 2), rel=1e-13)


def test_captured_training_matches_engine_in_float32_with_a_short_last_batch():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((64, 4)), rng.integers(0, 3, 64)
    flats = []
    for capture in (True, False):
        m = MLP([4, 16, 3], output_activation="softmax", dropout=0.2, batch_norm=True, seed=0)
        t = Trainer(m, "cross_entropy", "adam", lr=1e-2, seed=0, capture=capture)
        t.fit(X, y, epochs=5, batch_size=10)  # a last batch of 4 rows: a second program
        flats.append(t.get_flat_params().copy())
        assert flats[-1].dtype == np.float32
    np.testing.assert_array_equal(flats[0], flats[1])


def test_a_changed_penalty_is_never_replayed_stale():
    X, y = _data("mse", 1, np.random.default_rng(4))
    m = MLP([4, 3, 1], seed=0, dtype=np.float64)
    t = Trainer(m, "mse", "sgd", lr=0.1, seed=0)
    c0 = t.gradient(X, y)
    t.l2 = 0.5
    c1 = t.gradient(X, y)
    assert c1 == pytest.approx(c0 + 0.5 * sum(float((p["W"] ** 2).sum()) for p in m.params), rel=1e-12)


def _replace_by_a_new_tree(m, kept):
    m.state = [dict(s) for s in kept]  # back to the statistics of two steps ago, as a new tree


def _replace_an_entry_in_place(m, kept):
    m.state[1]["mean"] = kept[1]["mean"]  # in place, in the tree the last step set


@pytest.mark.parametrize("replace", [_replace_by_a_new_tree, _replace_an_entry_in_place])
@pytest.mark.parametrize("capture", [True, False])
def test_running_statistics_replaced_between_steps_are_read(capture, replace):
    """The step reads the model's state tree at every call: running statistics put in place of the ones the
    last step set (a new tree from a checkpoint or a callback restoring the best epoch, or one entry replaced
    in the same tree) are what the next step reads and updates, and the same tree structure replays."""
    X, y = _data("mse", 2, np.random.default_rng(6), n=9)
    m = MLP([4, 5, 2], batch_norm=True, seed=0, dtype=np.float64)
    t = Trainer(m, "mse", "sgd", lr=0.1, seed=0, capture=capture)
    t.train_step(X, y)
    t.train_step(X, y)
    kept = [dict(s) for s in m.state]
    t.train_step(X, y)
    after = [dict(s) for s in m.state]
    replace(m, kept)
    W, b = m.params[0]["W"].copy(), m.params[0]["b"].copy()
    t.train_step(X, y)
    mom, batch_mean = m.layers[1].momentum, (X @ W + b).mean(0)
    np.testing.assert_allclose(m.state[1]["mean"], mom * kept[1]["mean"] + (1 - mom) * batch_mean, rtol=1e-12)
    assert not np.allclose(m.state[1]["mean"], mom * after[1]["mean"] + (1 - mom) * batch_mean, rtol=1e-6)
    assert sum(getattr(f, "traces", 0) for f in t._steps.values()) == (1 if capture else 0)
