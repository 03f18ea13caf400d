"""Equal weights never break symmetry; random weights do (notes 004)."""

import numpy as np
import pytest

from nablanet import symmetry
from nablanet.data import load_dataset


@pytest.fixture(scope="module")
def runs():
    rng = np.random.default_rng(3)
    X = rng.uniform(-1, 1, (80, 3))
    y = np.sin(2 * X[:, 0]) * X[:, 1] + 0.5 * X[:, 2] ** 2
    return symmetry.equal_weights(X, y, hidden=(5, 4), activation="tanh", epochs=40, lr=0.2, seed=0)


def test_constant_initialization_keeps_every_hidden_unit_identical(runs):
    c = runs["constant"]
    assert c.weight_spread.shape == (41, 2) and c.activation_spread.shape == (41, 2)
    assert c.symmetric
    assert np.max(c.weight_spread) <= 1e-12 and np.max(c.activation_spread) <= 1e-12
    # and yet it trained: the weights moved away from the constant
    assert c.final_loss < 1.0


def test_random_initialization_breaks_symmetry_and_fits_better(runs):
    r, c = runs["random"], runs["constant"]
    assert not r.symmetric
    assert np.min(r.weight_spread) > 1e-2 and np.min(r.activation_spread) > 1e-2
    assert r.final_loss < c.final_loss
    assert "symmetry broken" in repr(r) and "symmetric" in repr(c)


def test_constant_network_behaves_like_one_unit_per_layer():
    """The symmetric network's function equals a network with one unit per hidden layer, scaled."""
    from nablanet.nn import MLP, init

    X = np.random.default_rng(0).uniform(-1, 1, (20, 2))
    wide = MLP([2, 6, 1], activation="tanh", init=init.constant(0.3), seed=0, dtype=np.float64)
    narrow = MLP([2, 1, 1], activation="tanh", init=init.constant(0.3), seed=0, dtype=np.float64)
    narrow.params[-1]["W"] = narrow.params[-1]["W"] * 6  # six equal units sum to six times one
    np.testing.assert_allclose(wide.predict(X), narrow.predict(X), rtol=1e-12)


def test_on_real_data_breast_cancer():
    ds = load_dataset("breast_cancer")
    X = (ds.X - ds.X.mean(0)) / ds.X.std(0)
    runs = symmetry.equal_weights(X[:200], ds.y[:200].astype(float), hidden=(8,), activation="sigmoid",
                                  loss="binary_cross_entropy", output_activation="sigmoid", epochs=20, lr=0.5)
    assert runs["constant"].symmetric and not runs["random"].symmetric


@pytest.mark.parametrize("kw, words", [
    ({"hidden": ()}, "hidden: expected .*at least 2 units"),
    ({"hidden": (4, 1)}, "hidden: expected .*at least 2 units"),
    ({"X": np.linspace(-1, 1, 10)}, r"X: expected a 2-D array \(rows are samples\)"),
    ({"y": np.zeros(7)}, "y has 7 rows, X has 10"),
    ({"value": float("nan")}, "value: expected a finite number, got nan"),  # not "lower the learning rate"
])
def test_equal_weights_refuses_what_cannot_show_symmetry(kw, words):
    """No hidden layer, or a layer of one unit, has no two units to compare: 'symmetric' would say nothing."""
    args = {"X": np.random.default_rng(0).uniform(-1, 1, (10, 2)), "y": np.zeros(10), **kw}
    with pytest.raises(ValueError, match=words):
        symmetry.equal_weights(args.pop("X"), args.pop("y"), epochs=1, **args)


def test_random_weights_alone_break_the_tie_biases_start_at_zero(monkeypatch):
    """The notes (004): random weights and zero biases. Random biases would break the tie by themselves, so the
    random run must start its biases at zero for the demonstration to be about the weights."""
    import nablanet.nn

    made = []
    real = nablanet.nn.MLP

    def recording_mlp(*args, **kwargs):
        m = real(*args, **kwargs)
        made.append([{k: np.array(v) for k, v in p.items()} for p in m.params])
        return m

    monkeypatch.setattr(nablanet.nn, "MLP", recording_mlp)
    X = np.random.default_rng(0).uniform(-1, 1, (20, 2))
    runs = symmetry.equal_weights(X, X[:, 0] * X[:, 1], hidden=(3,), epochs=5)
    constant, random = made
    for start in (constant, random):
        assert all(not np.any(p["b"]) for p in start)
    assert np.ptp(random[0]["W"]) > 0.1 and not np.ptp(constant[0]["W"])
    assert runs["constant"].symmetric and not runs["random"].symmetric
