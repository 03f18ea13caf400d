"""Costs, penalties, optimizers and schedules, each against its formula."""

import math
import warnings

import numpy as np
import pytest

import nablanet as nb
from nablanet import losses as L
from nablanet import optim
from nablanet.nn import MLP
from nablanet.train import Trainer

RNG = np.random.default_rng(0)
Z = RNG.standard_normal((6, 3))
T = RNG.standard_normal((6, 3))
LABELS = RNG.integers(0, 3, 6)
PROBS = RNG.dirichlet(np.ones(3), 6)
BIN = RNG.integers(0, 2, (6, 3)).astype(float)


@pytest.mark.parametrize("fn", [L.mse, L.half_sse, L.mae, L.huber, L.binary_cross_entropy, L.softmax_cross_entropy])
def test_loss_gradients_both_modes_order2(fn):
    t = BIN if fn is L.binary_cross_entropy else PROBS if fn is L.softmax_cross_entropy else T
    z = np.where(np.abs(Z - t) < 0.05, Z + 0.2, Z)  # away from the kinks of mae/huber
    nb.check_grads(fn, (z, t), order=2)


def test_loss_values():
    np.testing.assert_allclose(L.mse(Z, T), np.mean((Z - T) ** 2))
    np.testing.assert_allclose(L.half_sse(Z, T), 0.5 * np.sum((Z - T) ** 2))
    np.testing.assert_allclose(L.mae(Z, T), np.mean(np.abs(Z - T)))
    d = np.abs(Z - T)
    np.testing.assert_allclose(L.huber(Z, T), np.mean(np.where(d <= 1, 0.5 * d**2, d - 0.5)))
    p = 1 / (1 + np.exp(-Z))
    np.testing.assert_allclose(L.binary_cross_entropy(Z, BIN), -np.mean(BIN * np.log(p) + (1 - BIN) * np.log(1 - p)))
    P = np.exp(Z) / np.exp(Z).sum(1, keepdims=True)
    np.testing.assert_allclose(L.softmax_cross_entropy(Z, LABELS), -np.mean(np.log(P[np.arange(6), LABELS])))
    np.testing.assert_allclose(L.softmax_cross_entropy(Z, PROBS), -np.mean(np.sum(PROBS * np.log(P), 1)))


def test_cross_entropy_gradients_are_p_minus_t():
    P = np.exp(Z) / np.exp(Z).sum(1, keepdims=True)
    onehot = np.eye(3)[LABELS]
    np.testing.assert_allclose(nb.grad(lambda z: L.softmax_cross_entropy(z, LABELS))(Z), (P - onehot) / 6, atol=1e-16)
    np.testing.assert_allclose(nb.grad(lambda z: L.softmax_cross_entropy(z, onehot))(Z), (P - onehot) / 6, atol=1e-16)
    S = 1 / (1 + np.exp(-Z))
    np.testing.assert_allclose(nb.grad(lambda z: L.binary_cross_entropy(z, BIN))(Z), (S - BIN) / 18, atol=1e-16)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_captured_cross_entropy_checks_its_labels_at_every_replay(dtype):
    """The softmax cross-entropy's rule subtracts 1 at each label in one step (no one-hot array), and its
    primitive checks the labels' range: a captured program has neither a one-hot step nor guards, gives
    the engine's cost and gradient to the bit, and a replay with a label out of range (negative, or k)
    raises the loss's error instead of indexing the wrong entry."""
    rng = np.random.default_rng(4)
    z = rng.standard_normal((40, 5)).astype(dtype)
    f = nb.value_and_grad(L.softmax_cross_entropy)
    step = nb.jit(f)
    for labels in (rng.integers(0, 5, 40), rng.integers(0, 5, 40).astype(np.int32), rng.integers(0, 5, 40)):
        cost, g = step(z, labels)
        cost0, g0 = f(z, labels)
        assert cost == cost0 and g.dtype == dtype
        np.testing.assert_array_equal(g, g0)
        p = np.exp(z - z.max(1, keepdims=True))
        np.testing.assert_allclose(g, (p / p.sum(1, keepdims=True) - np.eye(5)[labels]) / 40, atol=1e-7)
    prog = step.program(z, labels)
    assert "onehot(" not in prog.source and "raise" not in prog.source and step.traces == 2  # int64 and int32
    for bad, got in ((-1, "-1, 4"), (5, "0, 5")):
        wrong = labels.copy()
        wrong[7] = bad
        wrong[0], wrong[1] = 0, 4
        with pytest.raises(ValueError, match=f"labels must lie in \\[0, 5\\), got \\[{got}\\]"):
            step(z, wrong)
        with pytest.raises(ValueError, match="labels must lie in"):
            f(z, wrong)
    assert step.traces == 2
    np.testing.assert_array_equal(step(z, labels)[1], g0)  # and the program still runs


def test_cross_entropies_stable_from_logits():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is benign
            assert L.softmax_cross_entropy(np.array([[1000.0, -1000.0]]), np.array([1])) == 2000.0
            assert L.softmax_cross_entropy(np.array([[1000.0, -1000.0]]), np.array([0])) == 0.0
            assert L.binary_cross_entropy(np.array([[1000.0], [-1000.0]]), np.array([[0.0], [1.0]])) == 1000.0
            g = nb.grad(lambda z: L.binary_cross_entropy(z, np.array([[0.0], [1.0]])))(np.array([[1000.0], [-1000.0]]))
            np.testing.assert_allclose(g, [[0.5], [-0.5]])


def test_huber_rule_carries_its_own_mask():
    """The mask |y - t| <= delta is computed in the rule from the values the rule gets, not baked in."""
    y = np.array([[0.1, 2.0, -3.0], [0.4, -0.2, 0.9]])
    t = np.zeros_like(y)
    for delta in (0.5, 1.5):
        d = y - t
        ref = np.mean(np.where(np.abs(d) <= delta, 0.5 * d * d, delta * (np.abs(d) - 0.5 * delta)))
        assert L.huber(y, t, delta) == pytest.approx(ref, rel=1e-15)
        g = nb.grad(lambda y: L.huber(y, t, delta))(y)
        np.testing.assert_allclose(g, np.clip(d, -delta, delta) / d.size, rtol=1e-15)
        # the gradient function recorded once is right for values on the other side of delta
        _, vjp_fn = nb.vjp(lambda y: L.huber(y, t, delta), y)
        np.testing.assert_allclose(vjp_fn(1.0)[0], np.clip(d, -delta, delta) / d.size)
        nb.check_grads(lambda y: L.huber(y, t, delta), (y,), order=2)
    with pytest.raises(ValueError, match="delta must be positive"):
        L.huber(y, t, 0.0)
    assert L.huber(y.astype(np.float32), t.astype(np.float32)).dtype == np.float32


def test_loss_input_errors():
    with pytest.raises(ValueError, match="predictions have shape \\(6, 3\\) but targets have shape \\(6,\\)"):
        L.mse(Z, T[:, 0])
    with pytest.raises(ValueError, match="labels must lie in \\[0, 3\\)"):
        L.softmax_cross_entropy(Z, np.array([0, 1, 2, 3, 0, 1]))
    with pytest.raises(ValueError, match="labels must lie in \\[0, 3\\), got \\[-1, 2\\]"):
        L.softmax_cross_entropy(Z, [0, 1, 2, -1, 0, 1])
    assert L.softmax_cross_entropy(Z, list(LABELS)) == L.softmax_cross_entropy(Z, LABELS)
    assert L.softmax_cross_entropy(Z, tuple(map(tuple, PROBS))) == L.softmax_cross_entropy(Z, PROBS)
    with pytest.raises(TypeError, match="integer class labels"):
        L.softmax_cross_entropy(Z, np.zeros(6))
    with pytest.raises(ValueError, match="unknown loss"):
        L.get_loss("crossentropy")


def test_penalties_value_and_gradient_match_the_trainer():
    """One penalty implementation: the trainer differentiates losses.l1_penalty/l2_penalty."""
    m = MLP([3, 4, 2], bias_init={"name": "normal", "std": 0.5}, seed=0, dtype=np.float64)
    lam = 0.3
    W = [p["W"] for p in m.params]
    assert L.l2_penalty(m.params, lam) == pytest.approx(lam * sum((w**2).sum() for w in W))
    assert L.l1_penalty(m.params, lam) == pytest.approx(lam * sum(np.abs(w).sum() for w in W))
    assert L.l2_penalty(m.params, lam, include_bias=True) > L.l2_penalty(m.params, lam)
    # the trainer's analytic penalty gradient equals the engine's gradient of the penalized cost
    X = RNG.standard_normal((5, 3))
    y = RNG.standard_normal((5, 2))
    for l1, l2 in ((0.0, 0.2), (0.1, 0.0), (0.05, 0.3)):
        mm = MLP([3, 4, 2], bias_init={"name": "normal", "std": 0.5}, seed=0, dtype=np.float64)
        tr = Trainer(mm, "mse", optim.SGD(lr=1.0), l1=l1, l2=l2)
        p0 = [dict(p) for p in mm.params]
        p0 = [{k: v.copy() for k, v in p.items()} for p in p0]
        full = lambda p: L.mse(mm.apply(p, X), y) + L.l1_penalty(p, l1) + L.l2_penalty(p, l2)
        expected_cost = full(p0)
        g = nb.grad(full)(p0)
        cost = tr.train_step(X, y)
        assert cost == pytest.approx(expected_cost, rel=1e-12)
        for pl, gl, ql in zip(p0, g, mm.params):  # SGD with lr = 1: new = old - grad
            np.testing.assert_allclose(ql["W"], pl["W"] - gl["W"], rtol=1e-12)
            np.testing.assert_allclose(ql["b"], pl["b"] - gl["b"], rtol=1e-12)


# ---------------------------------------------------------------- optimizers: hand-computed steps

X0 = np.array([1.0, -2.0, 0.5])
G1 = np.array([0.3, -0.1, 0.8])
G2 = np.array([-0.2, 0.4, 0.1])


def _run(opt, grads=(G1, G2)):
    x = X0.copy()
    st = opt.init([x])
    for g in grads:
        opt.step([x], [g.copy()], st)
    return x, st


def test_sgd_plain_momentum_nesterov():
    x, _ = _run(optim.SGD(lr=0.1))
    np.testing.assert_allclose(x, X0 - 0.1 * G1 - 0.1 * G2)
    x, _ = _run(optim.SGD(lr=0.1, momentum=0.9))
    v1 = G1
    v2 = 0.9 * v1 + G2
    np.testing.assert_allclose(x, X0 - 0.1 * v1 - 0.1 * v2)
    x, _ = _run(optim.SGD(lr=0.1, momentum=0.9, nesterov=True))
    np.testing.assert_allclose(x, X0 - 0.1 * (G1 + 0.9 * v1) - 0.1 * (G2 + 0.9 * v2))


def test_adagrad():
    x, st = _run(optim.Adagrad(lr=0.5, eps=1e-8))
    G = G1**2
    e = X0 - 0.5 * G1 / (np.sqrt(G) + 1e-8)
    G = G + G2**2
    e = e - 0.5 * G2 / (np.sqrt(G) + 1e-8)
    np.testing.assert_allclose(x, e)
    np.testing.assert_allclose(st["sum_sq"][0], G1**2 + G2**2)


def test_rmsprop():
    x, _ = _run(optim.RMSprop(lr=0.01, rho=0.9, eps=1e-8))
    s = 0.1 * G1**2
    e = X0 - 0.01 * G1 / (np.sqrt(s) + 1e-8)
    s = 0.9 * s + 0.1 * G2**2
    e = e - 0.01 * G2 / (np.sqrt(s) + 1e-8)
    np.testing.assert_allclose(x, e)


def _adam_by_hand(wd=0.0, lr=0.01):
    b1, b2, eps = 0.9, 0.999, 1e-8
    m = v = 0
    x = X0.copy()
    for t, g in enumerate((G1, G2), start=1):
        x = x * (1 - lr * wd)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat, vhat = m / (1 - b1**t), v / (1 - b2**t)
        x = x - lr * mhat / (np.sqrt(vhat) + eps)
    return x


def test_adam_and_adamw():
    np.testing.assert_allclose(_run(optim.Adam(lr=0.01))[0], _adam_by_hand(), rtol=1e-12)
    np.testing.assert_allclose(_run(optim.AdamW(lr=0.01, weight_decay=0.1))[0], _adam_by_hand(wd=0.1), rtol=1e-12)


def test_adam_in_place_is_the_textbook_formula_over_many_steps():
    """The in-place update (scaled slots, one folded step size, scratch buffers) is Kingma & Ba's
    formula to rounding, over many steps and gradients of very different scales."""
    rng = np.random.default_rng(3)
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 0.01
    x0 = rng.standard_normal(200)
    opt = optim.Adam(lr=lr, beta1=b1, beta2=b2, eps=eps)
    x, st = x0.copy(), opt.init([x0])
    xr, m, v = x0.copy(), 0.0, 0.0
    for t in range(1, 61):
        g = rng.standard_normal(200) * 10.0 ** rng.uniform(-6, 3, 200)
        opt.step([x], [g], st)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        xr = xr - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        np.testing.assert_allclose(x - x0, xr - x0, rtol=1e-13, atol=1e-15, err_msg=f"step {t}")


@pytest.mark.parametrize("make", [lambda: optim.SGD(lr=0.1), lambda: optim.SGD(lr=0.1, momentum=0.9),
                                  lambda: optim.SGD(lr=0.1, momentum=0.9, nesterov=True),
                                  lambda: optim.Adagrad(), lambda: optim.RMSprop(), lambda: optim.Adam(),
                                  lambda: optim.AdamW()])
def test_in_place_step_allocates_nothing_the_size_of_the_parameters(make):
    import tracemalloc

    p, g = np.ones(250_000), np.full(250_000, 0.5)  # 2 MB each
    opt = make()
    st = opt.init([p])
    opt.step([p], [g], st)  # the scratch buffers are made once
    tracemalloc.start()
    try:
        for _ in range(3):
            opt.step([p], [g], st)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100_000, f"{type(opt).__name__}: {peak} bytes allocated in a step"


_ALL_OPTIMIZERS = [
    lambda: optim.SGD(lr=0.1), lambda: optim.SGD(lr=0.1, momentum=0.9),
    lambda: optim.SGD(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01),
    lambda: optim.Adagrad(lr=0.1, weight_decay=0.1), lambda: optim.RMSprop(lr=0.01, rho=0.8),
    lambda: optim.Adam(lr=0.01), lambda: optim.Adam(lr=0.01, weight_decay=0.05, clip_norm=3.0),
    lambda: optim.Adam(lr=optim.cosine(0.01, 10), beta1=0.5, beta2=0.9, eps=1e-3),
    lambda: optim.AdamW(lr=0.01, weight_decay=0.2),
]


def _steps(opt, x0, grads, chunk_bytes, monkeypatch):
    monkeypatch.setattr(optim.optimizers, "CHUNK_BYTES", chunk_bytes)
    x = x0.copy()
    st = opt.init([x])
    for g in grads:
        opt.step([x], [g], st)
    return x, st


@pytest.mark.parametrize("make", _ALL_OPTIMIZERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 13, 64, 1001])
def test_a_chunked_update_is_the_whole_array_update_to_the_bit(make, dtype, n, monkeypatch):
    """Large arrays are updated in chunks (all passes over one chunk, then the next); chunks of 16 bytes
    here, on sizes that are no multiple of a chunk, give the same bits as one update of the whole array."""
    rng = np.random.default_rng(n)
    x0 = rng.standard_normal(n).astype(dtype)
    grads = [(rng.standard_normal(n) * 10.0 ** rng.uniform(-4, 2, n)).astype(dtype) for _ in range(4)]
    whole, st_whole = _steps(make(), x0, grads, 1 << 40, monkeypatch)
    chunked, st_chunked = _steps(make(), x0, grads, 16, monkeypatch)
    assert chunked.dtype == dtype
    np.testing.assert_array_equal(chunked, whole)
    assert st_chunked["t"] == st_whole["t"] == 4
    for slot in make().slots:
        np.testing.assert_array_equal(st_chunked[slot][0], st_whole[slot][0])
    assert not np.array_equal(whole, x0)


@pytest.mark.parametrize("make", _ALL_OPTIMIZERS)
def test_arrays_that_are_not_contiguous_are_updated_whole(make, monkeypatch):
    """A parameter that is a strided view is not cut into chunks (its flat form would be a copy): it gets
    the update a contiguous copy gets, written through the view."""
    rng = np.random.default_rng(1)
    base = rng.standard_normal((40, 6))
    grads = [rng.standard_normal((6, 20)) for _ in range(3)]
    expected, _ = _steps(make(), np.ascontiguousarray(base[::2].T), grads, 1 << 40, monkeypatch)
    monkeypatch.setattr(optim.optimizers, "CHUNK_BYTES", 16)
    x = base[::2].T  # (6, 20), neither C- nor F-contiguous; its gradient and slots are
    opt = make()
    st = opt.init([np.ascontiguousarray(x)])
    for g in grads:
        opt.step([x], [g], st)
    np.testing.assert_array_equal(x, expected)
    np.testing.assert_array_equal(base[::2].T, expected)  # written through the view


@pytest.mark.parametrize("chunk_bytes", [64, 1 << 40])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_takes_the_factors_as_numpy_casts_python_floats(dtype, chunk_bytes, monkeypatch):
    """Adam's factors are 0-d arrays of the parameters' dtype when it runs in chunks, Python floats when it
    updates whole arrays; either way the update is the same bits as the passes written with Python floats
    (which NumPy casts to the arrays' dtype)."""
    monkeypatch.setattr(optim.optimizers, "CHUNK_BYTES", chunk_bytes)
    rng = np.random.default_rng(5)
    x0 = rng.standard_normal(257).astype(dtype)
    opt = optim.Adam(lr=0.003, beta1=0.85, beta2=0.995, eps=1e-6)
    x, st = x0.copy(), opt.init([x0])
    xr, m, v, d = x0.copy(), np.zeros_like(x0), np.zeros_like(x0), np.empty_like(x0)
    for t in range(1, 6):
        g = (rng.standard_normal(257) * 10.0 ** rng.uniform(-3, 1, 257)).astype(dtype)
        opt.step([x], [g], st)
        c = math.sqrt((1 - 0.995) / (1 - 0.995**t))
        k = 0.003 * (1 - 0.85) / ((1 - 0.85**t) * c)
        m *= 0.85
        m += g
        np.multiply(g, g, out=d)
        v *= 0.995
        v += d
        np.sqrt(v, out=d)
        d += 1e-6 / c
        np.divide(m, d, out=d)
        d *= k
        xr -= d
        np.testing.assert_array_equal(x, xr, err_msg=f"step {t}")
    np.testing.assert_array_equal(st["m"][0], m)
    np.testing.assert_array_equal(st["v"][0], v)


def test_optimizers_against_torch():
    torch = pytest.importorskip("torch")
    cases = [
        (optim.SGD(lr=0.1, momentum=0.9, nesterov=True), lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
        (optim.RMSprop(lr=0.01, rho=0.9), lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-8)),
        (optim.Adam(lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
        (optim.AdamW(lr=0.01, weight_decay=0.1), lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1)),
    ]
    grads = [RNG.standard_normal(3) for _ in range(5)]
    for ours, theirs in cases:
        x, _ = _run(ours, grads)
        p = torch.tensor(X0, dtype=torch.float64, requires_grad=True)
        o = theirs([p])
        for g in grads:
            p.grad = torch.tensor(g)
            o.step()
        np.testing.assert_allclose(x, p.detach().numpy(), rtol=1e-10, err_msg=type(ours).__name__)


def test_pure_update_on_pytrees_leaves_inputs_alone():
    params = {"a": X0.copy(), "b": [np.ones(2)]}
    grads = {"a": G1, "b": [np.full(2, 0.5)]}
    opt = optim.SGD(lr=0.1)
    st = opt.init(params)
    new, st2 = opt.update(params, grads, st)
    np.testing.assert_allclose(new["a"], X0 - 0.1 * G1)
    np.testing.assert_allclose(new["b"][0], 0.95)
    np.testing.assert_array_equal(params["a"], X0)
    assert st["t"] == 0 and st2["t"] == 1


def test_gradient_clipping_by_global_norm():
    x = np.zeros(2)
    opt = optim.SGD(lr=1.0, clip_norm=1.0)
    st = opt.init([x])
    opt.step([x], [np.array([3.0, 4.0])], st)
    np.testing.assert_allclose(x, [-0.6, -0.8])
    opt.step([x], [np.array([0.3, 0.4])], st)  # under the threshold: untouched
    np.testing.assert_allclose(x, [-0.9, -1.2])


def test_schedules():
    s = optim.step_decay(1.0, step_size=10, gamma=0.5)
    assert [s(0), s(9), s(10), s(25)] == [1.0, 1.0, 0.5, 0.25]
    assert optim.exponential(2.0, 0.9)(3) == pytest.approx(2.0 * 0.9**3)
    assert optim.inverse_time(5.0, 50.0)(10) == pytest.approx(5.0 / 60.0)
    c = optim.cosine(1.0, 100, min_lr=0.1)
    assert c(0) == pytest.approx(1.0) and c(50) == pytest.approx(0.55) and c(100) == 0.1 and c(500) == 0.1
    w = optim.warmup(0.1, 10)
    assert w(0) == pytest.approx(0.01) and w(4) == pytest.approx(0.05) and w(9) == pytest.approx(0.1) and w(50) == 0.1
    assert optim.get_schedule(c.config())(50) == pytest.approx(0.55)
    assert optim.get_schedule(w.config())(4) == pytest.approx(0.05)
    # the schedule drives the optimizer's steps
    x = np.zeros(1)
    opt = optim.SGD(lr=optim.step_decay(1.0, 1, 0.5))
    st = opt.init([x])
    for _ in range(3):
        opt.step([x], [np.ones(1)], st)
    assert x[0] == pytest.approx(-(1 + 0.5 + 0.25))


@pytest.mark.parametrize("spec, message", [
    ({"name": "warmup", "lr": 0.01, "warmup_steps": 5},
     r"schedule 'warmup': missing key 'schedule'; unknown key 'lr'; it takes name, schedule, warmup_steps$"),
    ({"name": "step_decay", "lr": 0.1}, r"'step_decay': missing key 'step_size'; it takes name, lr, step_size, gamma"),
    ({"name": "cosine", "lr": 1.0, "total_steps": 5, "min": 0.1}, r"'cosine': unknown key 'min'; .*min_lr \(default 0.0\)"),
    ({"name": "exponential", "gamma": 0.9}, r"'exponential': missing key 'lr'; it takes name, lr, gamma$"),
    ({"name": "inverse_time", "t0": 1.0, "t1": 2.0, "t2": 3}, r"'inverse_time': unknown key 't2'"),
    ({"name": "constant"}, r"'constant': missing key 'lr'; it takes name, lr$"),
    ({"lr": 0.1}, r"a schedule dict needs a 'name', one of constant, step_decay, exponential, inverse_time, cosine"),
    ({"name": "cosin"}, r"unknown schedule 'cosin'; choose from constant, step_decay"),
    ({"name": "constant", "lr": -1.0}, r"lr: expected a number > 0, got -1.0"),
])
def test_a_schedule_spec_with_a_missing_or_unknown_key_is_one_error_naming_the_key(spec, message):
    """get_schedule({"name": "warmup", "lr": 0.01, "warmup_steps": 5}) raised KeyError: 'schedule'."""
    with pytest.raises(ValueError, match=message):
        optim.get_schedule(spec)
    with pytest.raises(ValueError, match=message):  # the same wherever a spec is read: an optimizer's lr
        optim.SGD(lr=spec)


def test_optimizer_errors():
    with pytest.raises(ValueError, match="unknown optimizer 'adamm'"):
        optim.get_optimizer("adamm")
    with pytest.raises(ValueError, match="momentum: expected a number in"):
        optim.SGD(momentum=1.5)
    with pytest.raises(ValueError, match="learning rate: expected a number > 0"):
        optim.SGD(lr=-1.0)
    with pytest.raises(ValueError, match="beta1"):
        optim.Adam(beta1=1.0)
    assert math.isclose(optim.get_optimizer({"name": "adam", "lr": 0.5, "beta1": 0.8}).beta1, 0.8)


# ----------------------------------------------------------------------------
# metrics: scikit-learn's, to the bit
# ----------------------------------------------------------------------------


def _metric_cases():
    rng = np.random.default_rng(0)
    for n, k in ((1, None), (2, None), (7, None), (114, None), (1000, None), (5, 1), (50, 3), (333, 2)):
        shape = (n,) if k is None else (n, k)
        y = rng.normal(size=shape) * 3 + 1
        yield y, y + rng.normal(size=shape)  # a fit with errors
        yield y, y.copy()  # exact
        yield np.full(shape, 2.5), y  # constant target, missed
        yield np.full(shape, 2.5), np.full(shape, 2.5)  # constant target, hit
    y = rng.normal(size=(40, 3))
    y[:, 1] = 4.0  # one constant output among others
    yield y, y + np.r_[[0.0, 0.0, 0.1]] * rng.normal(size=(40, 3))
    yield np.arange(6.0), np.arange(6.0)[::-1].astype(np.float32)  # float32 predictions


@pytest.mark.parametrize("case", list(_metric_cases()), ids=lambda c: f"{c[0].shape}")
def test_regression_metrics_are_scikit_learns_to_the_bit(case):
    from sklearn import metrics as skm

    from nablanet.train import metrics as M

    y, pred = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns on R² of one sample (NaN)
        expected = {"mse": skm.mean_squared_error(y, pred), "mae": skm.mean_absolute_error(y, pred),
                    "r2": skm.r2_score(y, pred)}
    for name, want in expected.items():
        got = getattr(M, name)(y, pred)
        assert type(got) is float
        assert got == want or (np.isnan(got) and np.isnan(want)), (name, got, want)
        assert M.compute_metric(name, pred, y, "regression") == got or np.isnan(got)


@pytest.mark.parametrize("n_classes", [2, 3, 10])
def test_accuracy_is_scikit_learns_and_labels_come_from_argmax_or_threshold(n_classes):
    from sklearn.metrics import accuracy_score

    from nablanet.train import metrics as M

    rng = np.random.default_rng(n_classes)
    for n in (1, 5, 114, 999):
        y = rng.integers(0, n_classes, n)
        out = rng.random((n, n_classes if n_classes > 2 else 1))
        labels = M.to_labels(out)
        assert M.accuracy(y, labels) == accuracy_score(y, labels)
        assert M.compute_metric("accuracy", out, y, "classification") == accuracy_score(y, labels)
    onehot = np.eye(3)[[0, 2, 1, 1]]
    assert M.compute_metric("accuracy", np.eye(3)[[0, 2, 2, 1]], onehot, "classification") == 0.75


def test_metrics_refuse_targets_and_predictions_that_do_not_pair_up():
    from nablanet.train import metrics as M

    with pytest.raises(ValueError, match="accuracy: 3 targets and 4 predictions"):
        M.accuracy([0, 1, 1], [0, 1, 1, 0])  # broadcasting would compare them silently
    with pytest.raises(ValueError, match=r"mse: targets of shape \(4, 2\) and predictions of shape \(4, 1\)"):
        M.mse(np.zeros((4, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="r2: 5 targets and 4 predictions"):
        M.r2(np.zeros(5), np.zeros(4))


@pytest.mark.parametrize("call, match", [
    (lambda M: M.accuracy(np.eye(3), np.eye(3)[[0, 2, 1]]), "one label per sample, got shape \\(3, 3\\)"),
    (lambda M: M.accuracy([], []), "at least one sample"),
    (lambda M: M.accuracy([0.5, 1.0], [0, 1]), "class labels \\(whole numbers\\)"),
    (lambda M: M.accuracy(["a", "b"], [0, 1]), "numbers on one side, strings on the other"),
    (lambda M: M.mse([1.0, np.nan], [1.0, 2.0]), "the targets hold NaN or infinite values"),
    (lambda M: M.mae([1.0, 2.0], [np.inf, 2.0]), "the predictions hold NaN or infinite values"),
    (lambda M: M.r2(np.zeros((2, 2, 2)), np.zeros((2, 2, 2))), "got shape \\(2, 2, 2\\)"),
    (lambda M: M.mse(np.zeros((3, 0)), np.zeros((3, 0))), "at least one sample"),
    (lambda M: M.mse(np.float64(1.0), np.float64(1.0)), "got shape \\(\\)"),
    (lambda M: M.mse([1 + 1j, 2], [1, 2]), "real numbers, got dtype complex128"),
    (lambda M: M.mse(np.array([{}], dtype=object), [1.0]), "real numbers, got dtype object"),
])
def test_metrics_refuse_what_scikit_learn_refuses_never_a_number(call, match):
    """Each of these was a number (or NumPy's IndexError, ZeroDivisionError) where scikit-learn refuses."""
    from nablanet.train import metrics as M
    from nablanet.validate import InvalidValueError

    with pytest.raises(InvalidValueError, match=match):
        call(M)


def test_float32_metrics_are_computed_in_float32_as_scikit_learns():
    from sklearn import metrics as skm

    from nablanet.train import metrics as M

    rng = np.random.default_rng(5)
    y, p = (rng.normal(size=(200, 2)).astype(np.float32) for _ in range(2))
    assert M.mse(y, p) == skm.mean_squared_error(y, p) and M.mae(y, p) == skm.mean_absolute_error(y, p)
    assert M.r2(y, p) == skm.r2_score(y, p)
    assert M.mse(y, p.astype(np.float64)) == skm.mean_squared_error(y, p.astype(np.float64))  # one float64: float64
