"""Layers, activations, initializers: gradients against the engine and central differences."""

import math
import warnings

import numpy as np
import pytest
import scipy.special

import nablanet as nb
import nablanet.numpy as anp
from nablanet import init
from nablanet.nn import ACTIVATIONS, MLP, BatchNorm, Dense, Dropout, LayerNorm, Sequential, get_activation
from nablanet.nn import Activation as ActLayer
from nablanet.train import fit

FUSED = [a for a in ACTIVATIONS if get_activation(a).dense is not None]
ALL = list(ACTIVATIONS) + [{"name": "elu", "alpha": 0.5}, {"name": "leaky_relu", "alpha": 0.2}]


def _rng(seed=0):
    return np.random.default_rng(seed)


def _away_from_kinks(z):
    return np.where(np.abs(z) < 0.05, 0.3, z)


# ---------------------------------------------------------------- activations


REFERENCE = {
    "identity": lambda z: z,
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "elu": lambda z: np.where(z > 0, z, np.exp(z) - 1),
    "softplus": lambda z: np.log1p(np.exp(z)),
    "gelu": lambda z: 0.5 * z * (1 + scipy.special.erf(z / np.sqrt(2))),
    "gelu_tanh": lambda z: 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z**3))),
    "silu": lambda z: z / (1 + np.exp(-z)),
    "softmax": lambda z: np.exp(z) / np.exp(z).sum(-1, keepdims=True),
}


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_values(name):
    z = _rng().uniform(-4, 4, (5, 3))
    np.testing.assert_allclose(get_activation(name)(z), REFERENCE[name](z), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ALL, ids=str)
def test_activation_gradients_both_modes_order2(name):
    z = _away_from_kinks(_rng(1).uniform(-3, 3, (4, 3)))
    nb.check_grads(get_activation(name), (z,), order=2)


@pytest.mark.parametrize("name", ALL, ids=str)
def test_activation_stable_at_large_z(name):
    act = get_activation(name)
    for dt in (np.float32, np.float64):
        z = np.array([[-1000.0, -50.0, 0.5, 50.0, 1000.0]], dtype=dt)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with np.errstate(over="raise", invalid="raise", divide="raise"):
                a = act(z)
                g = nb.elementwise_grad(lambda z: act(z))(z) if act.name != "softmax" else nb.grad(
                    lambda z: anp.sum(act(z) * np.arange(5.0)))(z)
        assert np.all(np.isfinite(a)) and np.all(np.isfinite(g)), name
        assert a.dtype == dt and g.dtype == dt


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(64, 128), (3, 50, 40), (5000,), (4, 3)])
def test_relu_is_numpys_maximum_with_zero_to_the_bit(dtype, shape):
    """Large float arrays take max(z, 0) against a row of zeros (NumPy's loop with a scalar is slower): the
    same bits as np.maximum(z, 0), NaN, infinities and signed zeros included, in the forward, in place in
    the fused dense layer, and in its result type."""
    relu = get_activation("relu")
    z = _rng(2).standard_normal(shape).astype(dtype)
    flat = z.reshape(-1)
    flat[:6] = [np.nan, np.inf, -np.inf, -0.0, 0.0, -np.nan]
    expected = np.maximum(z, 0)
    got = relu(z)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got.view(np.uint8), expected.view(np.uint8))
    if z.ndim == 2:
        W, b = _rng(3).standard_normal((shape[1], 7)).astype(dtype), _rng(4).standard_normal(7).astype(dtype)
        out = np.empty((shape[0], 7), dtype)
        relu.dense.into(out, z, W, b)
        np.testing.assert_array_equal(out.view(np.uint8), np.maximum(z @ W + b, 0).view(np.uint8))
    assert np.array_equal(relu(np.arange(-3, 4)), [0, 0, 0, 0, 1, 2, 3])


def test_activation_limits():
    z = np.array([-1000.0, 1000.0])
    np.testing.assert_array_equal(get_activation("sigmoid")(z), [0.0, 1.0])
    np.testing.assert_array_equal(get_activation("softplus")(z), [0.0, 1000.0])
    np.testing.assert_array_equal(get_activation("elu")(z), [-1.0, 1000.0])
    np.testing.assert_allclose(get_activation("softmax")(np.array([[1000.0, 0.0, -1000.0]])), [[1.0, 0.0, 0.0]])


def test_unknown_activation():
    with pytest.raises(ValueError, match="unknown activation 'relux'"):
        get_activation("relux")


# ---------------------------------------------------------------- the fused dense layer = the delta equations


@pytest.mark.parametrize("name", ALL, ids=str)
def test_dense_layer_matches_unfused_engine_and_differences(name):
    rng = _rng(2)
    x = rng.standard_normal((6, 4))
    W = rng.standard_normal((4, 3)) * 0.7
    b = rng.standard_normal(3) * 0.3
    act = get_activation(name)
    layer = Dense(4, 3, act)
    R = rng.standard_normal((6, 3))

    def fused(x, W, b):
        return anp.sum(layer.forward({"W": W, "b": b}, {}, x)[0] * R)

    def unfused(x, W, b):
        z = anp.matmul(x, W) + b
        return anp.sum(act(z) * R)

    gf = nb.grad(fused, argnums=(0, 1, 2))(x, W, b)
    gu = nb.grad(unfused, argnums=(0, 1, 2))(x, W, b)
    for a, c in zip(gf, gu):
        np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-12)
    # forward mode too
    t = tuple(rng.standard_normal(v.shape) for v in (x, W, b))
    np.testing.assert_allclose(nb.jvp(fused, (x, W, b), t)[1], nb.jvp(unfused, (x, W, b), t)[1], rtol=1e-12)
    nb.check_grads(lambda x, W, b: layer.forward({"W": W, "b": b}, {}, x)[0], (x, W, b), order=2)


def test_backprop_by_hand_equals_engine():
    """The delta equations written out in NumPy, layer by layer, for a sigmoid net with C = 1/2 sum (a - t)^2."""
    rng = _rng(3)
    m = MLP([3, 5, 4, 2], activation="sigmoid", output_activation="sigmoid", seed=0, dtype=np.float64)
    X = rng.standard_normal((7, 3))
    T = rng.uniform(size=(7, 2))
    sig = lambda z: 1 / (1 + np.exp(-z))
    a = [X]
    zs = []
    for p in m.params:
        zs.append(a[-1] @ p["W"] + p["b"])
        a.append(sig(zs[-1]))
    delta = (a[-1] - T) * a[-1] * (1 - a[-1])  # delta^L = dC/da^L * sigma'(z^L)
    grads = [None] * len(m.params)
    for layer in reversed(range(len(m.params))):
        grads[layer] = {"W": a[layer].T @ delta, "b": delta.sum(0)}
        if layer:
            delta = (delta @ m.params[layer]["W"].T) * a[layer] * (1 - a[layer])
    g = nb.grad(lambda p: nb.losses.half_sse(m.apply(p, X), T))(m.params)
    for gl, hl in zip(g, grads):
        np.testing.assert_allclose(gl["W"], hl["W"], rtol=1e-12)
        np.testing.assert_allclose(gl["b"], hl["b"], rtol=1e-12)


@pytest.mark.parametrize("loss,out", [("mse", "identity"), ("cross_entropy", "softmax"), ("bce", "sigmoid")])
def test_network_gradient_against_central_differences(loss, out):
    rng = _rng(4)
    k = 1 if loss == "bce" else 3
    m = MLP([4, 6, 5, k], activation=["tanh", "elu"], output_activation=out, seed=1, dtype=np.float64)
    X = rng.standard_normal((8, 4))
    y = {"mse": rng.standard_normal((8, k)), "cross_entropy": rng.integers(0, k, 8),
         "bce": rng.integers(0, 2, (8, 1)).astype(float)}[loss]
    L = nb.losses.get_loss(loss)
    f = lambda p: L(m.apply(p, X, logits=L.from_logits), y)
    nb.check_grads(f, (m.params,), order=2)


# ---------------------------------------------------------------- initializers


@pytest.mark.parametrize(
    "name,var",
    [("glorot_normal", 2 / 500), ("glorot_uniform", 2 / 500), ("he_normal", 2 / 200), ("he_uniform", 2 / 200),
     ("lecun_normal", 1 / 200), ("xavier_normal", 2 / 500), ("kaiming_normal", 2 / 200)],
)
def test_initializer_variance(name, var):
    W = init.get_initializer(name)((200, 300), _rng(), np.float64)
    assert W.shape == (200, 300)
    assert abs(W.mean()) < 4 * np.sqrt(var / W.size)
    assert W.var() == pytest.approx(var, rel=0.03)


def test_initializer_factories_and_errors():
    rng = _rng()
    assert np.all(init.constant(0.5)((3, 2), rng) == 0.5)
    assert init.zeros((2, 2)).dtype == np.float32
    assert np.std(init.normal(0.1)((400, 400), rng)) == pytest.approx(0.1, rel=0.02)
    u = init.uniform(-0.2, 0.3)((1000,), rng)
    assert u.min() >= -0.2 and u.max() < 0.3
    assert init.get_initializer({"name": "normal", "std": 2.0})((2000,), rng).std() == pytest.approx(2.0, rel=0.1)
    with pytest.raises(ValueError, match="unknown initializer"):
        init.get_initializer("glorious")


def test_constant_weights_never_break_symmetry():
    """The notes' point: with equal initial weights every hidden unit stays the same through training."""
    rng = _rng(5)
    X = rng.standard_normal((40, 3))
    y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2]
    m = MLP([3, 8, 1], activation="tanh", init=init.constant(0.3), seed=0, dtype=np.float64)
    fit(m, X, y, loss="mse", optimizer="sgd", lr=0.05, epochs=50, batch_size=8, seed=0)
    W1, W2 = m.params[0]["W"], m.params[1]["W"]
    assert np.ptp(W1, axis=1).max() == 0.0  # every column (hidden unit) identical
    assert np.ptp(W2) == 0.0
    assert not np.allclose(W1, 0.3)  # and it did train
    m2 = MLP([3, 8, 1], activation="tanh", seed=0, dtype=np.float64)
    fit(m2, X, y, loss="mse", optimizer="sgd", lr=0.05, epochs=50, batch_size=8, seed=0)
    assert np.ptp(m2.params[0]["W"], axis=1).min() > 0  # random weights do break it


# ---------------------------------------------------------------- models


def test_mlp_structure_and_per_layer_activations():
    m = MLP([4, 8, 6, 3], activation=["relu", "tanh"], output_activation="softmax", dropout=0.2, seed=0)
    kinds = [type(layer).__name__ for layer in m.layers]
    assert kinds == ["Dense", "Dropout", "Dense", "Dropout", "Dense"]
    assert m.layers[0].activation.name == "relu" and m.layers[2].activation.name == "tanh"
    assert m.n_params == 4 * 8 + 8 + 8 * 6 + 6 + 6 * 3 + 3
    assert m.predict(np.zeros((2, 4))).shape == (2, 3)
    np.testing.assert_allclose(m.predict(np.ones((2, 4))).sum(1), 1.0, rtol=1e-6)
    mb = MLP([4, 8, 3], batch_norm=True, seed=0)
    assert [type(layer).__name__ for layer in mb.layers] == ["Dense", "BatchNorm", "Activation", "Dense"]
    with pytest.raises(ValueError, match="2 activations given for 1 hidden layers"):
        MLP([2, 3, 1], activation=["relu", "tanh"])
    with pytest.raises(ValueError, match="Dense\\(4 -> 8, relu\\) got input with 3 features; expected"):
        m.predict(np.zeros((2, 3)))


def test_same_seed_same_model_bit_for_bit():
    a = MLP([5, 7, 2], seed=42)
    b = MLP([5, 7, 2], seed=42)
    c = MLP([5, 7, 2], seed=43)
    for pa, pb, pc in zip(a.params, b.params, c.params):
        assert np.array_equal(pa["W"], pb["W"]) and not np.array_equal(pa["W"], pc["W"])
    assert a.params[0]["W"].dtype == np.float32
    assert MLP([5, 7, 2], seed=1, dtype=np.float64).params[0]["W"].dtype == np.float64


def test_no_hidden_layer_is_linear_regression():
    rng = _rng(6)
    X = rng.standard_normal((200, 3))
    beta = np.array([1.5, -2.0, 0.5])
    y = X @ beta + 0.7 + 0.01 * rng.standard_normal(200)
    m = MLP([3, 1], seed=0, dtype=np.float64)
    fit(m, X, y, loss="mse", optimizer="sgd", lr=0.1, epochs=500, seed=0)  # full-batch gradient descent
    A = np.hstack([X, np.ones((200, 1))])
    ols = np.linalg.lstsq(A, y, rcond=None)[0]
    np.testing.assert_allclose(m.params[0]["W"][:, 0], ols[:3], atol=1e-6)
    assert m.params[0]["b"][0] == pytest.approx(ols[3], abs=1e-6)


def test_dropout_train_and_eval():
    d = Dropout(0.25)
    x = np.ones((400, 50))
    y, _ = d.forward({}, {}, x, train=True, rng=_rng())
    kept = y != 0
    assert kept.mean() == pytest.approx(0.75, abs=0.02)
    np.testing.assert_allclose(y[kept], 1 / 0.75)
    assert d.forward({}, {}, x, train=False)[0] is x
    with pytest.raises(ValueError, match="needs rng"):
        d.forward({}, {}, x, train=True)
    with pytest.raises(ValueError, match="p: expected a number in"):
        Dropout(1.0)


def test_batchnorm_train_eval_and_gradients():
    rng = _rng(7)
    bn = BatchNorm(3, momentum=0.5)
    p = bn.init(rng, np.float64)
    s = bn.init_state(np.float64)
    x = rng.standard_normal((64, 3)) * [1, 5, 0.2] + [3, -1, 10]
    y, s2 = bn.forward(p, s, x, train=True)
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(0), 1, rtol=1e-3)
    np.testing.assert_allclose(s2["mean"], 0.5 * x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(s2["var"], 0.5 + 0.5 * x.var(0, ddof=1), rtol=1e-12)
    ye, s3 = bn.forward(p, s2, x, train=False)
    np.testing.assert_allclose(ye, (x - s2["mean"]) / np.sqrt(s2["var"] + 1e-5))
    assert s3 is s2
    p = {"gamma": rng.uniform(0.5, 2, 3), "beta": rng.standard_normal(3)}
    nb.check_grads(lambda p, x: bn.forward(p, s, x, train=True)[0], (p, x[:10]), order=2)
    nb.check_grads(lambda p, x: bn.forward(p, s2, x, train=False)[0], (p, x[:10]), order=2)


def test_layernorm_gradients():
    rng = _rng(8)
    ln = LayerNorm(5)
    p = {"gamma": rng.uniform(0.5, 2, 5), "beta": rng.standard_normal(5)}
    x = rng.standard_normal((4, 5)) * 3
    y, _ = ln.forward(p, {}, x)
    np.testing.assert_allclose(((y - p["beta"]) / p["gamma"]).mean(1), 0, atol=1e-12)
    nb.check_grads(lambda p, x: ln.forward(p, {}, x)[0], (p, x), order=2)


def test_sequential_from_layers_and_config_roundtrip():
    m = Sequential(Dense(3, 4, "relu"), LayerNorm(4), ActLayer("tanh"), Dense(4, 2), output_activation="softmax", seed=3)
    m2 = Sequential.from_config(m.config())
    x = _rng().standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_array_equal(m.predict(x), m2.predict(x))
    mlp = MLP([3, 5, 2], activation="elu", dropout=0.1, batch_norm=True, seed=9)
    np.testing.assert_array_equal(Sequential.from_config(mlp.config()).predict(x), mlp.predict(x))


# ------------------------------------------------------------------ stable kernels, pure layers


def test_kernels_at_the_edges():
    from nablanet.numpy import _kernels as K

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow, no log(0), no invalid value
        z = np.array([[-np.inf, -np.inf], [0.0, -np.inf], [1000.0, 1000.0], [np.inf, 0.0]])
        lse = K.logsumexp(z, axis=1)
        assert lse[0] == -np.inf and lse[1] == 0.0 and lse[2] == pytest.approx(1000 + np.log(2)) and lse[3] == np.inf
        assert K.logsumexp(np.full(3, -np.inf)) == -np.inf
        np.testing.assert_allclose(K.softmax(z[1:3]), [[1.0, 0.0], [0.5, 0.5]])
        big = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
        np.testing.assert_allclose(K.sigmoid(big), [0.0, np.exp(-50.0), 0.5, 1.0, 1.0], rtol=1e-15, atol=0)
        np.testing.assert_allclose(K.softplus(big), [0.0, np.exp(-50.0), np.log(2), 50.0, 1000.0], rtol=1e-15)
        np.testing.assert_allclose(K.log_sigmoid(big), [-1000.0, -50.0, -np.log(2), -np.exp(-50.0), 0.0], rtol=1e-15)
        z32 = np.linspace(-30, 30, 7, dtype=np.float32)
        for f in (K.sigmoid, K.softplus, K.log_sigmoid):
            assert f(z32).dtype == np.float32
        assert K.logsumexp(z32.reshape(1, -1), axis=1).dtype == np.float32
    mid = np.linspace(-5, 5, 11)
    np.testing.assert_allclose(K.sigmoid(mid), 1 / (1 + np.exp(-mid)), rtol=1e-14)
    np.testing.assert_allclose(K.logsumexp(np.stack([mid, -mid]), axis=0), np.log(np.exp(mid) + np.exp(-mid)), rtol=1e-14)


@pytest.mark.parametrize("shape", [(128, 10), (33, 2), (16, 16), (20, 17), (5, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logsumexp_of_short_rows_is_the_row_maximum_formula_to_the_bit(shape, dtype):
    """Short rows take their maxima as the columns of a transposed copy: the same values, so the same
    log-sum-exp bits as the formula with np.max along the rows, infinite and NaN rows included."""
    from nablanet.numpy import _kernels as K

    x = _rng(7).standard_normal(shape).astype(dtype) * 30
    x[1] = -np.inf
    x[2, 0] = np.inf
    x[3, -1] = np.nan
    m = np.max(x, axis=1, keepdims=True)
    np.testing.assert_array_equal(K._row_max(x), m)
    np.testing.assert_array_equal(K._row_max(np.asfortranarray(x)), m)
    fin = np.isfinite(m)
    mm = np.where(fin, m, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.log(np.sum(np.exp(x - mm), axis=1, keepdims=True)) + mm
    got = K.logsumexp(x, axis=1, keepdims=True)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(K.logsumexp(x, axis=-1), expected[:, 0])
    ok = np.ones(shape[0], bool)
    ok[1:4] = False
    np.testing.assert_array_equal(K.logsumexp(x[ok], axis=1), np.log(np.sum(np.exp(x[ok] - m[ok]), axis=1)) + m[ok, 0])


def test_the_activations_and_the_primitive_use_the_kernels():
    from nablanet.numpy import _kernels as K

    z = np.linspace(-40, 40, 9)
    np.testing.assert_array_equal(get_activation("sigmoid")(z), K.sigmoid(z))
    np.testing.assert_array_equal(get_activation("softplus")(z), K.softplus(z))
    np.testing.assert_array_equal(nb.nn.softmax(z.reshape(3, 3)), K.softmax(z.reshape(3, 3)))
    np.testing.assert_array_equal(nb.nn.log_sigmoid(z), K.log_sigmoid(z))
    np.testing.assert_array_equal(anp.logsumexp(np.array([-np.inf, -np.inf])), -np.inf)


def test_log_sigmoid_and_sigmoid_gradients():
    z = _rng(3).standard_normal((3, 4)) * 4
    nb.check_grads(nb.nn.log_sigmoid, (z,), order=2)
    nb.check_grads(nb.nn.sigmoid, (z,), order=2)
    g = nb.elementwise_grad(nb.nn.log_sigmoid)(np.array([-800.0, 0.0, 800.0]))
    np.testing.assert_allclose(g, [1.0, 0.5, 0.0])


def test_stop_gradient_passes_values_and_no_derivative():
    from nablanet.nn.functional import stop_gradient

    x = _rng(4).standard_normal(5)
    f = lambda x: anp.sum(x * x + stop_gradient(x * x))
    np.testing.assert_allclose(f(x), 2 * np.sum(x * x))
    np.testing.assert_allclose(nb.grad(f)(x), 2 * x)
    np.testing.assert_allclose(nb.jvp(f, (x,), (np.ones(5),))[1], np.sum(2 * x))
    np.testing.assert_allclose(nb.hessian(f)(x), 2 * np.eye(5))


def test_dropout_mask_is_drawn_from_the_rng_it_is_given():
    d = Dropout(0.5)
    x = _rng(5).standard_normal((6, 8))
    y1, _ = d.forward({}, {}, x, _rng(11), train=True)
    y2, _ = d.forward({}, {}, x, _rng(11), train=True)
    y3, _ = d.forward({}, {}, x, _rng(12), train=True)
    np.testing.assert_array_equal(y1, y2)  # the same random state, the same mask: no hidden state
    assert not np.array_equal(y1, y3)
    mask = y1 / np.where(x == 0, 1, x)
    # the derivative with respect to x is the mask, in both modes
    g = nb.grad(lambda x: anp.sum(d.forward({}, {}, x, _rng(11), train=True)[0]))(x)
    np.testing.assert_allclose(g, mask)
    _, t = nb.jvp(lambda x: d.forward({}, {}, x, _rng(11), train=True)[0], (x,), (np.ones_like(x),))
    np.testing.assert_allclose(t, mask)
    with pytest.raises(TypeError, match="Generator"):
        nb.nn.functional.dropout_mask(x, 3, 0.5)
    # p outside [0, 1): a clear error naming it (p = 1 was a ZeroDivisionError; p = 2 a mask of zeros,
    # p = -0.5 every unit kept and scaled by 2/3, silently)
    for p in (1.0, 2.0, -0.5, float("nan")):
        with pytest.raises(ValueError, match="dropout_mask: p"):
            nb.nn.functional.dropout_mask(x, _rng(11), p)


def test_dropout_keeps_the_dtype_and_the_rate():
    x = np.ones((300, 40), np.float32)
    y, _ = Dropout(0.3).forward({}, {}, x, _rng(), train=True)
    assert y.dtype == np.float32
    assert (y != 0).mean() == pytest.approx(0.7, abs=0.02)


def test_batchnorm_returns_its_statistics_and_changes_nothing():
    rng = _rng(9)
    bn = BatchNorm(3, momentum=0.8)
    p = {"gamma": rng.uniform(0.5, 2, 3), "beta": rng.standard_normal(3)}
    s = {"mean": rng.standard_normal(3), "var": rng.uniform(0.5, 2, 3)}
    before = {k: v.copy() for k, v in s.items()}
    x = rng.standard_normal((16, 3))
    assert not hasattr(bn, "comm")

    def stats(p, x):
        _, new = bn.forward(p, s, x, train=True)
        return anp.sum(new["mean"]) + anp.sum(new["var"])

    # the running statistics are values out of the forward pass, with no derivative
    gp, gx = nb.grad(stats, argnums=(0, 1))(p, x)
    assert all(np.all(v == 0) for v in gp.values()) and np.all(gx == 0)
    _, new = bn.forward(p, s, x, train=True)
    np.testing.assert_allclose(new["mean"], 0.8 * before["mean"] + 0.2 * x.mean(0), rtol=1e-13)
    np.testing.assert_allclose(new["var"], 0.8 * before["var"] + 0.2 * x.var(0, ddof=1), rtol=1e-13)
    for k in s:
        np.testing.assert_array_equal(s[k], before[k])


def _two_ranks(bn, p, s, x, R, cut=6):
    """Two ranks' batch normalization in one process: each rank's `reduce` adds the other shard's sums.

    BatchNorm reduces three things in order: the row count, the column sums of x
    and those of (x - mu)^2; the partner's terms are computed from its shard.
    """
    shards = (x[:cut], x[cut:])
    total, states = 0.0, []
    for r in (0, 1):
        mine, other = shards[r], shards[1 - r]
        seen = []

        def reduce(v, other=other, seen=seen):
            k = len(seen)
            if k == 0:
                out = v + other.shape[0]
            elif k == 1:
                out = v + anp.sum(other, axis=0)
            else:
                mu = seen[1] / seen[0]
                out = v + anp.sum((other - mu) ** 2, axis=0)
            seen.append(out)
            return out

        y, new = bn.forward(p, s, mine, train=True, reduce=reduce)
        assert len(seen) == 3
        total = total + anp.sum(y * (R[:cut] if r == 0 else R[cut:]))
        states.append(new)
    return total, states


def test_batchnorm_with_a_reduction_is_the_global_batch():
    """Shards whose sums are completed by the `reduce` argument give the whole batch's values and gradients."""
    rng = _rng(10)
    bn = BatchNorm(4)
    p = {"gamma": rng.uniform(0.5, 2, 4), "beta": rng.standard_normal(4)}
    s = bn.init_state(np.float64)
    x = rng.standard_normal((10, 4)) * 3 + 1
    R = rng.standard_normal((10, 4))
    whole = lambda p, x: anp.sum(bn.forward(p, s, x, train=True)[0] * R)
    v, states = _two_ranks(bn, p, s, x, R)
    assert v == pytest.approx(whole(p, x), rel=1e-12)
    _, new = bn.forward(p, s, x, train=True)
    for st in states:  # every rank keeps the global batch's running statistics
        np.testing.assert_allclose(st["mean"], new["mean"], rtol=1e-12)
        np.testing.assert_allclose(st["var"], new["var"], rtol=1e-12)
    gw = nb.grad(whole, argnums=(0, 1))(p, x)
    gs = nb.grad(lambda p, x: _two_ranks(bn, p, s, x, R)[0], argnums=(0, 1))(p, x)
    for k in p:
        np.testing.assert_allclose(gs[0][k], gw[0][k], rtol=1e-10)
    np.testing.assert_allclose(gs[1], gw[1], rtol=1e-10, atol=1e-12)


def test_a_user_activation_is_never_taken_for_a_builtin_of_the_same_name():
    import pickle

    from nablanet.nn import ActivationFunction

    for name in ("tanh", "identity"):
        act = ActivationFunction(name, _twice_tanh, _twice_tanh_deriv)
        z = _rng(12).standard_normal((4, 3))
        W, b = _rng(13).standard_normal((3, 2)), np.zeros(2)
        np.testing.assert_allclose(act.dense(z, W, b), 2 * np.tanh(z @ W))
        nb.check_grads(act.dense, (z, W, b), order=2)
        with pytest.raises(ValueError, match="user-defined"):
            act.config()
        again = pickle.loads(pickle.dumps(act))
        np.testing.assert_array_equal(again(z), 2 * np.tanh(z))
    assert get_activation("tanh").config() == {"name": "tanh"}


def _twice_tanh(z):
    return 2 * np.tanh(z)


def _twice_tanh_deriv(a):
    return 2 - a * a / 2


@pytest.mark.parametrize("axis", [0, 1])
def test_normalize_is_the_composition_as_one_primitive(axis):
    from nablanet.nn.functional import normalize

    rng = _rng(14)
    x = rng.standard_normal((7, 5)) * [1, 5, 0.2, 3, 1] + [3, -1, 10, 0, 2]
    ref = lambda x: (x - anp.mean(x, axis=axis, keepdims=True)) / anp.sqrt(anp.var(x, axis=axis, keepdims=True) + 1e-5)
    np.testing.assert_allclose(normalize(x, axis), ref(x), rtol=1e-13, atol=1e-14)
    R = rng.standard_normal(x.shape)
    np.testing.assert_allclose(nb.grad(lambda x: anp.sum(normalize(x, axis) * R))(x),
                               nb.grad(lambda x: anp.sum(ref(x) * R))(x), rtol=1e-10, atol=1e-13)
    nb.check_grads(lambda x: normalize(x, axis), (x,), order=2)
    assert normalize(x.astype(np.float32), axis).dtype == np.float32


@pytest.mark.parametrize("axis", [0, 1])
def test_normalize_fast_rule_is_the_differentiable_one_to_every_order(axis):
    """The first-order rule reads the saved statistics (one node); it equals the rule written with
    differentiable functions to rounding, and its own rules give exact second and third derivatives."""
    from nablanet.nn.functional import _inv_std, _jac_fun, moments, normalize

    rng = _rng(15)
    x = rng.standard_normal((7, 5)) * [1, 5, 0.2, 3, 1] + [3, -1, 10, 0, 2]
    R = rng.standard_normal(x.shape)
    # the rule on the same point: the fast map from the saved statistics against the formula
    st, xhat = moments(x, axis), normalize(x, axis)
    mean = lambda v: anp.mean(v, axis=axis, keepdims=True)  # noqa: E731
    # (to the rounding of the statistics: their mean and the formula's differ by an ulp of the column
    # offset 10, 1e-14 of the column's spread 0.2)
    np.testing.assert_allclose(_jac_fun(R, xhat, x, st, axis, 1e-5),
                               _inv_std(x, axis, 1e-5) * (R - mean(R) - xhat * mean(R * xhat)), rtol=1e-14, atol=1e-14)

    def ref(x):  # the composition, every step differentiated by the engine (its own rounding of the statistics)
        return (x - anp.mean(x, axis=axis, keepdims=True)) * _inv_std(x, axis, 1e-5)

    for f in (lambda v: anp.sum(v * R), lambda v: anp.sum(anp.tanh(v) * R)):
        np.testing.assert_allclose(nb.grad(lambda x: f(normalize(x, axis)))(x), nb.grad(lambda x: f(ref(x)))(x),
                                   rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(nb.hessian(lambda x: f(normalize(x, axis)))(x),
                                   nb.hessian(lambda x: f(ref(x)))(x), rtol=1e-11, atol=1e-12)
    nb.check_grads(lambda x: normalize(x, axis), (x,), order=3)
    nb.check_grads(lambda x: normalize(x, axis), (x[:2],), order=2)  # two samples: the smallest batch


def test_normalize_step_computes_the_statistics_once():
    """A captured first-order step of batch normalization: the statistics once, the backward pass one node."""
    from nablanet.nn.functional import normalize

    rng = _rng(16)
    x = rng.standard_normal((9, 4))
    R = rng.standard_normal(x.shape)
    step = nb.jit(nb.value_and_grad(lambda x: anp.sum(anp.tanh(normalize(x, 0)) * R)))
    names = [p.name for p in step.program(x).prims]
    assert names.count("moments") == 1 and names.count("normalize_jacobian") == 1, names
    assert names.count("sum") == 1 and not {"sqrt", "mean", "divide"} & set(names), names  # the sum is the loss
    v, g = step(x)
    v0, g0 = nb.value_and_grad(lambda x: anp.sum(anp.tanh(normalize(x, 0)) * R))(x)
    assert v == v0 and np.array_equal(g, g0)


def test_gelu_computes_erf_once_and_is_the_composition():
    from nablanet.scipy.special import erf

    gelu = get_activation("gelu")
    ref = lambda z: 0.5 * z * (1.0 + erf(z * (1.0 / math.sqrt(2.0))))  # noqa: E731
    z = _rng(17).standard_normal((6, 5)) * 3
    for dt in (np.float64, np.float32):
        np.testing.assert_array_equal(gelu(z.astype(dt)), ref(z.astype(dt)))  # the same bits
        assert gelu(z.astype(dt)).dtype == dt
    d1, d1r = nb.elementwise_grad(gelu)(z), nb.elementwise_grad(ref)(z)
    np.testing.assert_allclose(d1, d1r, rtol=1e-13)
    np.testing.assert_allclose(nb.elementwise_grad(nb.elementwise_grad(gelu))(z),
                               nb.elementwise_grad(nb.elementwise_grad(ref))(z), rtol=1e-13, atol=1e-15)
    nb.check_grads(gelu, (z,), order=3)
    names = [p.name for p in nb.jit(nb.grad(lambda z: anp.sum(gelu(z)))).program(z).prims]
    assert names.count("gelu_cdf") == 1 and "erf" not in names and "exp" not in names, names


def test_gelu_tanh_computes_tanh_once_and_is_the_composition():
    """The tanh form is z * gate with the gate computed once and a derivative of one node: the composition's
    bits forward (float64 and float32), its derivatives to rounding, every order exact (at 0 and in the tails)."""
    gelu = get_activation("gelu_tanh")
    c = math.sqrt(2.0 / math.pi)
    ref = lambda z: 0.5 * z * (1.0 + anp.tanh(c * (z + 0.044715 * z * z * z)))  # noqa: E731
    z = np.concatenate([_rng(18).standard_normal(27) * 3, [0.0, -12.0, 12.0]]).reshape(6, 5)
    for dt in (np.float64, np.float32):
        np.testing.assert_array_equal(gelu(z.astype(dt)), ref(z.astype(dt)))  # the same bits
        assert gelu(z.astype(dt)).dtype == dt
    d1 = nb.elementwise_grad(gelu)
    np.testing.assert_allclose(d1(z), nb.elementwise_grad(ref)(z), rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(nb.elementwise_grad(d1)(z), nb.elementwise_grad(nb.elementwise_grad(ref))(z),
                               rtol=1e-12, atol=1e-15)
    nb.check_grads(gelu, (z,), order=3)
    nb.check_grads(lambda z, w: gelu(z * w), (z, z[:1] * 0.5 + 1.0), order=2)  # through a broadcast product
    names = [p.name for p in nb.jit(nb.grad(lambda z: anp.sum(gelu(z)))).program(z).prims]
    assert names.count("gelu_tanh_gate") == 1 and names.count("gelu_tanh_derivative") == 1, names
    assert "tanh" not in names and "power" not in names, names


@pytest.mark.parametrize("shape,axis", [((7, 5), 0), ((7, 5), 1), ((2, 5), 0), ((6, 1), 1), ((3, 4, 5), 1),
                                        ((3, 4, 5), 2), ((7, 5), -1)])
def test_moments_and_normalize_on_every_layout(shape, axis):
    """The statistics are the biased mean and variance whether taken as BLAS products (matrices) or as NumPy
    reductions (other arrays), in float64 and float32; normalize's derivatives are exact on each layout."""
    from nablanet.nn.functional import moments, normalize

    rng = _rng(19)
    x = rng.standard_normal(shape) * 3 + 1
    for dt, tol in ((np.float64, 1e-13), (np.float32, 2e-6)):
        st = moments(x.astype(dt), axis)
        assert st.dtype == dt and st.shape == (3,) + tuple(1 if i == axis % len(shape) else n
                                                           for i, n in enumerate(shape))
        np.testing.assert_allclose(st[0], x.mean(axis, keepdims=True), rtol=tol, atol=tol)
        np.testing.assert_allclose(st[1], x.var(axis, keepdims=True), rtol=tol, atol=tol)
        np.testing.assert_allclose(st[2], np.sqrt(x.var(axis, keepdims=True) + 1e-5), rtol=tol)
    nb.check_grads(lambda x: normalize(x, axis), (x,), order=2)
    R = rng.standard_normal(shape[-1])  # an adjoint broadcast along the leading axes
    nb.check_grads(lambda x: anp.sum(normalize(x, axis) * R), (x,), order=2)


def test_normalize_jacobian_with_a_broadcast_adjoint_and_mixed_dtypes():
    from nablanet.nn.functional import _inv_std, _jac_fun, moments, normalize

    x = _rng(20).standard_normal((6, 4)) * 2
    for axis in (0, 1):
        st, xhat = moments(x, axis), normalize(x, axis)
        t = np.arange(4.0)  # broadcast over the rows
        mean = lambda v: np.mean(v, axis=axis, keepdims=True)  # noqa: E731
        want = _inv_std(x, axis, 1e-5) * (t - mean(np.broadcast_to(t, x.shape)) - xhat * mean(t * xhat))
        np.testing.assert_allclose(_jac_fun(t, xhat, x, st, axis, 1e-5), want, rtol=1e-14, atol=1e-15)
        # a float64 adjoint on float32 statistics: NumPy's reductions, the wider dtype
        x32 = x.astype(np.float32)
        got = _jac_fun(np.ones(x.shape), normalize(x32, axis), x32, moments(x32, axis), axis, 1e-5)
        assert got.dtype == np.float64 and np.abs(got).max() < 1e-5


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_dropout_mask_in_a_buffer_is_the_drawn_mask(dtype):
    """The mask a captured program draws into its buffer is the one the engine draws: uniforms of the dtype
    (float64 for float16) from the same state, kept where >= p, scaled by 1/(1-p)."""
    from nablanet.nn.functional import _dropout_mask_p, _mask_into, dropout_mask

    x = np.ones((40, 30), dtype)
    got = dropout_mask(x, _rng(21), 0.25)
    u = _rng(21).random(x.shape, dtype=dtype if dtype != np.float16 else np.float64)
    np.testing.assert_array_equal(got, np.multiply(u >= 0.25, 1.0 / 0.75, dtype=dtype))
    assert got.dtype == dtype
    out = np.full(x.shape, np.nan, dtype)
    assert _mask_into(out, _rng(21), x.shape, 0.25, np.dtype(dtype)) is out
    np.testing.assert_array_equal(out, got)
    assert _dropout_mask_p.into is _mask_into
    # in a captured step the draw is a buffered step, new at every replay and the engine's bits
    W = _rng(22).standard_normal((30, 2)).astype(dtype)
    f = lambda W, rng: anp.sum((x * dropout_mask(x, rng, 0.25)) @ W)  # noqa: E731
    step = nb.jit(nb.value_and_grad(f))
    r1, r2 = _rng(23), _rng(23)
    for _ in range(3):
        (v, g), (v0, g0) = step(W, r1), nb.value_and_grad(f)(W, r2)
        assert v == v0 and np.array_equal(g, g0)
    assert step.traces == 1
    if dtype != np.float16:
        assert "dropout_mask_into" in step.program(W, r1).source


def test_an_activation_layer_writes_into_a_buffer_of_the_captured_step():
    """ReLU after batch normalization (its own layer) is computed into a buffer of the program, the engine's bits."""
    m = MLP([4, 6, 2], batch_norm=True, seed=0, dtype=np.float64)
    X = _rng(24).standard_normal((8, 4))
    f = lambda p: anp.sum(m.apply(p, X, train=True) ** 2)  # noqa: E731
    step = nb.jit(nb.value_and_grad(f))
    v, g = step(m.params)
    v0, g0 = nb.value_and_grad(f)(m.params)
    assert v == v0 and all(np.array_equal(a[k], b[k]) for a, b in zip(g, g0) for k in a)
    assert "relu_into(b" in step.program(m.params).source


@pytest.mark.parametrize("shape", [(7, 5), (2, 3), (6, 1)])
def test_batch_normalize_is_the_composition_with_one_backward_node(shape):
    """gamma xhat + beta over the rows as one primitive: the composition's bits forward, its derivatives (in x,
    gamma and beta, both modes, to third order), and a captured step whose backward pass for x is one node
    reading the gradients of gamma and beta (the statistics and xhat once)."""
    from nablanet.nn.functional import batch_normalize, normalize

    rng = _rng(25)
    x = rng.standard_normal(shape) * 3 + 1
    x[:, -1] = 2.0 + 1e-4 * np.arange(shape[0])  # a nearly constant column: var << eps
    gamma, beta = rng.uniform(0.5, 2, shape[1]), rng.standard_normal(shape[1])
    ref = lambda x, g, b: normalize(x, 0) * g + b  # noqa: E731
    for dt in (np.float64, np.float32):
        args = [v.astype(dt) for v in (x, gamma, beta)]
        np.testing.assert_array_equal(batch_normalize(*args), ref(*args))
        assert batch_normalize(*args).dtype == dt
    R = rng.standard_normal(shape)
    cost = lambda h: lambda x, g, b: anp.sum(anp.tanh(h(x, g, b)) * R)  # noqa: E731
    for a, b in zip(nb.grad(cost(batch_normalize), argnums=(0, 1, 2))(x, gamma, beta),
                    nb.grad(cost(ref), argnums=(0, 1, 2))(x, gamma, beta)):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-12)
    for i in (0, 1):
        h = lambda v: cost(batch_normalize)(*[v if j == i else w for j, w in enumerate((x, gamma, beta))])  # noqa: E731
        hr = lambda v: cost(ref)(*[v if j == i else w for j, w in enumerate((x, gamma, beta))])  # noqa: E731
        v0 = (x, gamma)[i]
        np.testing.assert_allclose(nb.hessian(h)(v0), nb.hessian(hr)(v0), rtol=1e-9, atol=1e-10)
    nb.check_grads(batch_normalize, (x, gamma, beta), order=3 if shape == (7, 5) else 2)
    nb.check_grads(lambda x, g, b: batch_normalize(x, g, b) * R[0], (x, gamma, beta), order=2)  # a broadcast adjoint
    step = nb.jit(nb.value_and_grad(cost(batch_normalize), argnums=(0, 1, 2)))
    names = [p.name for p in step.program(x, gamma, beta).prims]
    assert names.count("normalize") == 1 and names.count("moments") == 1 and names.count("batch_norm_dx") == 1
    assert "normalize_jacobian" not in names, names
    v, g = step(x, gamma, beta)
    v0, g0 = nb.value_and_grad(cost(batch_normalize), argnums=(0, 1, 2))(x, gamma, beta)
    assert v == v0 and all(np.array_equal(a, b) for a, b in zip(g, g0))


@pytest.mark.parametrize("shape,axis", [((4096, 16), 0), ((16, 8192), 1), ((8, 2048, 3), 1)])
def test_moments_of_float32_data_with_a_large_offset_keep_their_digits(shape, axis):
    """x = 1e4 + N(0, 1) in float32 (BLAS products for matrices, reductions otherwise): the statistics are
    those of the float64 reference to the rounding of the result (xhat within half an ulp of 1e4, 4.9e-4),
    where summing x itself lost 1e-2 of the mean; a constant column normalizes to exactly 0, variance 0
    (it got a variance of ~1e-2 and |xhat| up to 1); batch_normalize agrees."""
    from nablanet.nn.functional import batch_normalize, moments, normalize

    x = (1e4 + _rng(40).standard_normal(shape)).astype(np.float32)
    const = (slice(None),) * (1 - axis % 2) + (slice(0, 2),)  # two columns (axis 0) / rows (axis 1)
    x[const] = np.float32(12345.678)
    x64 = x.astype(np.float64)
    mean, var = x64.mean(axis, keepdims=True), x64.var(axis, keepdims=True)
    st, xhat = moments(x, axis), normalize(x, axis)
    assert np.abs(st[0] - mean).max() <= 4.9e-4
    np.testing.assert_allclose(st[1], var, rtol=2e-5, atol=0)
    np.testing.assert_allclose(xhat, (x64 - mean) / np.sqrt(var + 1e-5), rtol=0, atol=6e-4)
    assert not xhat[const].any() and not st[1][const].any()
    if len(shape) == 2 and axis == 0:
        y = batch_normalize(x, np.float32(2.0), np.float32(0.5))
        np.testing.assert_allclose(y, 2 * (x64 - mean) / np.sqrt(var + 1e-5) + 0.5, rtol=0, atol=1.2e-3)
        assert (y[const] == 0.5).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gelu_tanh_derivatives_at_large_finite_z_are_its_limits(dtype):
    """Where the gate saturates the first derivative is 1 (z > 0) or 0, the second 0, as the composition
    and PyTorch's GELU(approximate='tanh') give: no power of z overflows into inf * 0 = nan (the fused
    derivative did from |z| = 1.5e13 in float32); the values stay those of the formula."""
    from nablanet.nn.activations import _gelu_tanh

    z = np.array([-1e18, -1e14, -2e13, -1e10, -30.0, 30.0, 1e10, 2e13, 1e14, 1e18], dtype)
    with np.errstate(over="ignore"):
        d1 = nb.elementwise_grad(_gelu_tanh)(z)
        d2 = nb.elementwise_grad(nb.elementwise_grad(_gelu_tanh))(z)
        np.testing.assert_array_equal(_gelu_tanh(z), np.where(z > 0, z, 0.0).astype(dtype))
    np.testing.assert_array_equal(d1, (z > 0).astype(dtype))
    np.testing.assert_array_equal(d2, np.zeros_like(z))


@pytest.mark.parametrize("shape", [(), (1, 4), (4,)], ids=str)
def test_batch_normalize_gradients_of_broadcast_gamma_and_beta_have_their_shapes(shape):
    """gamma and beta as a scalar or a (1, c) row, broadcast over the columns: their gradients are those of
    the composition normalize(x, 0) * gamma + beta, of their own shapes (the fused rule gave the column
    sums, shape (c,), for a scalar gamma: c numbers where one, their sum, is the gradient)."""
    from nablanet.nn.functional import batch_normalize, normalize

    rng = _rng(41)
    x, R = rng.standard_normal((7, 4)), rng.standard_normal((7, 4))
    gamma, beta = rng.standard_normal(shape) + 1.5, rng.standard_normal(shape)
    for i in (0, 1, 2):
        got = nb.grad(lambda *a: anp.sum(batch_normalize(*a) * R), i)(x, gamma, beta)
        want = nb.grad(lambda x, g, b: anp.sum((normalize(x, 0) * g + b) * R), i)(x, gamma, beta)
        assert np.shape(got) == np.shape(want) == np.shape((x, gamma, beta)[i])
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)
    nb.check_grads(batch_normalize, (x, gamma, beta), order=2)


def test_dropout_or_batch_norm_without_a_hidden_layer_is_left_out_with_a_warning_not_ignored():
    """A warning, not an error: a model saved with such a setting (accepted, and ignored, before) still loads."""
    for kw in ({"dropout": 0.5}, {"batch_norm": True}):
        with pytest.warns(UserWarning, match=r"acts on hidden layers, and MLP\(\[3, 1\]\) has none: left out"):
            m = MLP([3, 1], **kw)
        assert m.config()["dropout"] == 0.0 and m.config()["batch_norm"] is False
        assert m.config() == MLP([3, 1]).config()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert MLP([3, 1]).predict(np.ones((2, 3))).shape == (2, 1)
