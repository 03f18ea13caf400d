"""The captured training step equals the engine's, for every activation and cost it covers."""

import numpy as np
import pytest

from nablanet.nn import MLP
from nablanet.train import Trainer
from nablanet.train.fast import capturable

ACTS = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus",
        {"name": "elu", "alpha": 2.0}, {"name": "leaky_relu", "alpha": 0.3}]


def _data(loss, k, rng, n=7, onehot=False):
    X = rng.standard_normal((n, 4))
    if loss == "mse":
        return X, rng.standard_normal((n, k))
    if loss == "bce":
        return X, rng.integers(0, 2, (n, 1)).astype(float)
    y = rng.integers(0, k, n)
    return X, (np.eye(k)[y] if onehot else y)


@pytest.mark.parametrize("act", ACTS, ids=str)
@pytest.mark.parametrize("loss,out,k,onehot", [("mse", "identity", 2, False), ("cross_entropy", "softmax", 3, False),
                                               ("cross_entropy", "softmax", 3, True), ("bce", "sigmoid", 1, False)])
def test_captured_gradient_equals_engine(act, loss, out, k, onehot):
    rng = np.random.default_rng(0)
    X, y = _data(loss, k, rng, onehot=onehot)
    res = []
    for capture in (True, False):
        m = MLP([4, 5, 6, k], activation=act, output_activation=out, seed=1, dtype=np.float64)
        t = Trainer(m, loss, "sgd", lr=0.1, l2=1e-3, capture=capture)
        assert (t._captured is not None) == capture
        res.append((t.gradient(X, y), t._gflat.copy()))
    assert res[0][0] == pytest.approx(res[1][0], rel=1e-13)
    np.testing.assert_allclose(res[0][1], res[1][1], rtol=1e-12, atol=1e-15)


def test_captured_training_matches_engine_in_float32():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((64, 4)), rng.integers(0, 3, 64)
    flats = []
    for capture in (True, False):
        m = MLP([4, 16, 3], output_activation="softmax", seed=0)
        t = Trainer(m, "cross_entropy", "adam", lr=1e-2, seed=0, capture=capture)
        t.fit(X, y, epochs=5, batch_size=10)  # includes a short last batch
        flats.append(t.get_flat_params().copy())
        assert flats[-1].dtype == np.float32
    np.testing.assert_allclose(flats[0], flats[1], rtol=1e-4, atol=1e-5)


def test_what_is_not_captured_falls_back_to_the_engine():
    from nablanet.losses import get_loss

    assert capturable(MLP([2, 3, 1], seed=0), get_loss("mse")) is None
    assert "Dropout" in capturable(MLP([2, 3, 1], dropout=0.5, seed=0), get_loss("mse"))
    assert "BatchNorm" in capturable(MLP([2, 3, 1], batch_norm=True, seed=0), get_loss("mse"))
    assert "gelu" in capturable(MLP([2, 3, 1], activation="gelu", seed=0), get_loss("mse"))
    assert "huber" in capturable(MLP([2, 3, 1], seed=0), get_loss("huber"))
    assert "output activation" in capturable(MLP([2, 3, 1], output_activation="sigmoid", seed=0), get_loss("mse"))
    assert Trainer(MLP([2, 3, 1], dropout=0.5, seed=0), "mse")._captured is None


@pytest.mark.parametrize("last", ["tanh", "relu", "sigmoid"])
@pytest.mark.parametrize("loss,k", [("mse", 1), ("cross_entropy", 3)])
def test_captured_step_with_an_activation_on_the_last_layer(last, loss, k):
    from nablanet.nn import Dense, Sequential

    rng = np.random.default_rng(2)
    X, y = _data(loss, k, rng)
    res = []
    for capture in (True, False):
        m = Sequential(Dense(4, 5, "relu"), Dense(5, k, last), seed=0, dtype=np.float64)
        t = Trainer(m, loss, "sgd", lr=0.1, capture=capture)
        assert (t._captured is not None) == capture
        res.append((t.gradient(X, y), t._gflat.copy()))
    assert res[0][0] == pytest.approx(res[1][0], rel=1e-13)
    np.testing.assert_allclose(res[0][1], res[1][1], rtol=1e-12, atol=1e-15)


def test_a_user_activation_named_tanh_trains_as_the_engine_says():
    """Regression: a user activation named "tanh" computing 2 tanh(z) was replayed as np.tanh."""
    from nablanet.nn import ActivationFunction, Dense, Sequential

    act = ActivationFunction("tanh", lambda z: 2 * np.tanh(z), lambda a: 2 - a * a / 2)
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((16, 4)), rng.standard_normal((16, 1))
    m = Sequential(Dense(4, 6, act), Dense(6, 1), seed=0, dtype=np.float64)
    t = Trainer(m, "mse", "sgd", lr=0.05, seed=0)
    import nablanet as nb
    from nablanet.losses import mse

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
