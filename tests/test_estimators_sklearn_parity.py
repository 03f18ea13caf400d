"""What scikit-learn's MLP users reach for: full-batch solvers, partial_fit, warm_start, n_iter_no_change/tol,
an adaptive learning rate, and the fitted attributes loss_curve_, validation_scores_, best_loss_, n_iter_, t_."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from nablanet.data import runge
from nablanet.estimators import NeuralNetClassifier, NeuralNetRegressor

pytestmark = pytest.mark.usefixtures("one_blas_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def test_newton_classifier_is_sklearns_logistic_regression(cancer):
    X, y = cancer
    C = 1.0
    clf = NeuralNetClassifier(hidden_layer_sizes=(), optimizer="newton", tol=1e-12, epochs=20,
                              l2=1.0 / (2 * len(X) * C), dtype="float64", random_state=0).fit(X, y)
    ref = LogisticRegression(C=C, tol=1e-12, max_iter=1000, solver="newton-cholesky").fit(X, y)
    np.testing.assert_allclose(clf.predict_proba(X), ref.predict_proba(X), rtol=0, atol=1e-6)
    assert clf.history_.solver["converged"] and clf.n_iter_ <= 15
    assert clf.t_ == clf.n_iter_ * len(X)


def test_lbfgs_regressor_fits_runge():
    X, y = runge(n=200, seed=0)
    reg = NeuralNetRegressor(hidden_layer_sizes=(16,), activation="tanh", optimizer="lbfgs", epochs=500, tol=1e-10,
                             random_state=0).fit(X, y)
    Xt, yt = runge(n=300, seed=1)
    assert r2_score(yt, reg.predict(Xt)) > 0.999
    assert reg.best_loss_ == min(reg.loss_curve_) and reg.validation_scores_ is None
    back = pickle.loads(pickle.dumps(reg))
    np.testing.assert_array_equal(back.predict(Xt), reg.predict(Xt))
    with pytest.raises(AttributeError, match="partial_fit") as info:
        reg.partial_fit(X, y)
    assert "partial_fit needs a first-order optimizer" in str(info.value.__cause__)


def test_partial_fit_streams_batches_to_an_accurate_classifier():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    clf = NeuralNetClassifier(hidden_layer_sizes=(32,), learning_rate=3e-3, random_state=0)
    with pytest.raises(ValueError, match="classes="):
        clf.partial_fit(Xtr[:100], ytr[:100])
    chunks = np.array_split(np.arange(len(Xtr)), 6)
    for epoch in range(8):
        for c in chunks:
            clf.partial_fit(Xtr[c], ytr[c], classes=np.arange(10) if epoch == 0 else None)
    assert clf.score(Xte, yte) > 0.93
    assert clf.n_iter_ == 48 == len(clf.loss_curve_) and clf.t_ == 8 * len(Xtr)
    with pytest.raises(ValueError, match="not among classes"):
        clf.partial_fit(Xtr[:5], np.array([0, 1, 2, 3, 11]))
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(Xtr[:5, :10], ytr[:5])
    # a first call with a batch holding one class only is fine when classes= names them all
    one = NeuralNetClassifier(hidden_layer_sizes=(4,), random_state=0).partial_fit(X[y == 3][:20], y[y == 3][:20],
                                                                                    classes=np.arange(10))
    assert list(one.classes_) == list(range(10)) and one.predict_proba(X[:3]).shape == (3, 10)


def test_partial_fit_regressor_matches_fit_epoch_by_epoch():
    X, y = runge(n=120, seed=0)
    kw = dict(hidden_layer_sizes=(8,), activation="tanh", learning_rate=1e-2, random_state=0, n_iter_no_change=100)
    a = NeuralNetRegressor(epochs=3, **kw).fit(X, y)
    b = NeuralNetRegressor(**kw)
    for _ in range(3):
        b.partial_fit(X, y)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert a.loss_curve_ == b.loss_curve_


def test_warm_start_continues_where_the_last_fit_stopped(cancer):
    X, y = cancer
    kw = dict(hidden_layer_sizes=(8,), epochs=5, random_state=0, n_iter_no_change=100)
    once = NeuralNetClassifier(**{**kw, "epochs": 10}).fit(X, y)
    warm = NeuralNetClassifier(warm_start=True, **kw).fit(X, y).fit(X, y)
    np.testing.assert_array_equal(warm.predict_proba(X), once.predict_proba(X))
    assert warm.n_iter_ == 10 and warm.loss_curve_ == once.loss_curve_ and warm.t_ == 10 * len(X)
    cold = NeuralNetClassifier(**kw).fit(X, y).fit(X, y)
    assert cold.n_iter_ == 5
    with pytest.raises(ValueError, match="classes"):
        warm.fit(X, np.where(y == 1, "a", "b"))


def test_n_iter_no_change_and_tol_stop_on_the_training_cost(cancer):
    """scikit-learn's rule: stop when more than n_iter_no_change epochs in a row miss the best by tol."""
    from sklearn.neural_network import MLPClassifier

    X, y = cancer
    # an improvement of 10 is never reached: every epoch after the first counts, on any data, in both libraries
    for n in (1, 3):
        est = NeuralNetClassifier(hidden_layer_sizes=(8,), epochs=100, n_iter_no_change=n, tol=10.0, random_state=0)
        ref = MLPClassifier(hidden_layer_sizes=(8,), max_iter=100, n_iter_no_change=n, tol=10.0, random_state=0)
        assert est.fit(X, y).n_iter_ == ref.fit(X, y).n_iter_ == n + 2
    est.set_params(tol=0.0, n_iter_no_change=100, epochs=12)
    assert est.fit(X, y).n_iter_ == 12


def test_n_iter_no_change_measures_from_the_best_so_far():
    """A cost that falls by less than tol each epoch counts every epoch (scikit-learn), even though it falls by
    more than tol over several (the Keras rule, EarlyStopping's, would never stop it)."""
    from nablanet.estimators import _NoImprovement

    rule = _NoImprovement("loss", patience=2, min_delta=0.6, restore_best=False)
    rule.on_train_begin(None)
    stops = [rule.on_epoch_end(None, e, {"loss": v}) for e, v in enumerate([5.0, 4.5, 4.0, 3.5, 3.0, 2.5])]
    assert stops == [False, False, False, True, True, True] and rule.best == 2.5
    rule.on_train_begin(None)
    stops = [rule.on_epoch_end(None, e, {"loss": v}) for e, v in enumerate([5.0, 4.9, 4.0, 3.9, 3.8, 3.0])]
    assert not any(stops) and rule.best == 3.0  # improvements by more than tol reset the count


def test_adaptive_learning_rate_divides_by_five_on_plateaus(cancer):
    """scikit-learn's learning_rate="adaptive" as its code does it: where n_iter_no_change/tol would stop, the
    rate is divided by 5 and the count starts again; training stops when the rate is at most 1e-6."""
    from sklearn.neural_network import MLPClassifier

    X, y = cancer
    # tol = 10 is never met: every epoch after the first counts, in both libraries, whatever the data
    est = NeuralNetClassifier(hidden_layer_sizes=(8,), optimizer="sgd", learning_rate=0.5, epochs=200, tol=10.0,
                              n_iter_no_change=3, adaptive_learning_rate=True, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = MLPClassifier(hidden_layer_sizes=(8,), solver="sgd", learning_rate="adaptive", learning_rate_init=0.5,
                            max_iter=200, tol=10.0, n_iter_no_change=3, random_state=0).fit(X, y)
    assert est.n_iter_ == ref.n_iter_ == 41  # 9 divisions, 4 epochs apart, then 2.56e-7 <= 1e-6 stops
    lrs = np.array(est.history_["lr"])
    np.testing.assert_allclose(lrs, 0.5 * 0.2 ** np.maximum(0, (np.arange(41) - 1) // 4), rtol=1e-12)
    assert lrs[-1] == pytest.approx(ref._optimizer.learning_rate, rel=1e-12)
    with pytest.raises(ValueError, match="adaptive_learning_rate"):
        NeuralNetClassifier(optimizer="lbfgs", adaptive_learning_rate=True).fit(X, y)


def test_validation_scores_with_early_stopping(cancer):
    X, y = cancer
    est = NeuralNetClassifier(hidden_layer_sizes=(8,), epochs=40, early_stopping=True, random_state=0).fit(X, y)
    assert len(est.validation_scores_) == est.n_iter_ and est.best_loss_ is None
    assert est.best_validation_score_ == max(est.validation_scores_) > 0.9
    np.testing.assert_allclose(est.validation_scores_, est.history_["val_accuracy"])
    reg = NeuralNetRegressor(hidden_layer_sizes=(16,), activation="tanh", learning_rate=3e-2, epochs=60, tol=0.0,
                             early_stopping=True, random_state=0).fit(*runge(n=200, seed=0))
    assert len(reg.validation_scores_) == reg.n_iter_ and max(reg.validation_scores_) > 0.5  # R^2


def test_warm_start_trains_with_the_settings_changed_since_the_last_fit(cancer):
    """scikit-learn's warm_start uses the current alpha, solver and rates; a change is not silently ignored."""
    X, y = cancer
    est = NeuralNetClassifier(hidden_layer_sizes=(8,), epochs=3, warm_start=True, learning_rate=1e-3,
                              n_iter_no_change=100, random_state=0).fit(X, y)
    first = est.loss_curve_[-1]
    est.set_params(l2=0.5, optimizer="sgd", learning_rate=0.05)
    est.fit(X, y)
    assert est.trainer_.l2 == 0.5 and type(est.trainer_.optimizer).__name__ == "SGD"
    assert est.trainer_.optimizer.lr(0) == 0.05
    assert est.n_iter_ == 6 and len(est.loss_curve_) == 6 and est.t_ == 6 * len(X)  # one run, continued
    assert est.loss_curve_[3] > first  # the same network, now paying the L2 penalty
    est.set_params(optimizer="lbfgs", learning_rate=None, l2=0.0, epochs=5)
    est.fit(X, y)
    assert est.history_.solver["method"] == "lbfgs" and est.n_iter_ == 6 + est.history_.solver["n_iter"]


@pytest.mark.parametrize("change", [{"activation": "tanh"}, {"dropout": 0.5}, {"batch_norm": True},
                                    {"dtype": "float64"}])
def test_warm_start_refuses_a_changed_network(cancer, change):
    X, y = cancer
    est = NeuralNetClassifier(hidden_layer_sizes=(8,), epochs=2, warm_start=True, random_state=0).fit(X, y)
    before = est.predict_proba(X)
    est.set_params(**change)
    with pytest.raises(ValueError, match=f"{next(iter(change))}.*warm_start=False"):
        est.fit(X, y)
    with pytest.raises(ValueError, match=next(iter(change))):
        est.partial_fit(X, y)
    np.testing.assert_array_equal(est.predict_proba(X), before)  # untouched


def test_a_refused_continuation_leaves_the_fitted_estimator_as_it_was():
    X, y = runge(n=60, seed=0)
    reg = NeuralNetRegressor(hidden_layer_sizes=(4,), epochs=2, warm_start=True, random_state=0).fit(X, y)
    before = reg.predict(X)
    with pytest.raises(ValueError, match="network"):
        reg.fit(X, np.c_[y, y])  # two targets: another network
    with pytest.raises(ValueError, match="features"):
        reg.fit(np.c_[X, X], y)
    assert reg.n_outputs_ == 1 and reg.n_features_in_ == 1
    np.testing.assert_array_equal(reg.predict(X), before)  # still 1-D, still the same network


def test_a_full_batch_fit_that_needs_no_iteration(cancer):
    """Started at the optimum by the standard of tol, a full-batch method takes no step: a fit all the same."""
    X, y = cancer
    est = NeuralNetClassifier(hidden_layer_sizes=(), optimizer="newton", tol=1e3, random_state=0).fit(X, y)
    assert est.n_iter_ == 0 and est.loss_curve_ == [] and est.t_ == 0
    assert est.best_loss_ == est.history_.solver["value"] and est.history_.solver["converged"]
    assert est.predict(X).shape == y.shape


def test_partial_fit_exists_only_for_first_order_optimizers():
    """As scikit-learn's MLP (partial_fit only for its stochastic solvers): hasattr says so, and the checks skip it."""
    for optimizer in ("lbfgs", "newton", "hessian_free", {"name": "lbfgs"}):
        for est in (NeuralNetRegressor(optimizer=optimizer), NeuralNetClassifier(optimizer=optimizer)):
            assert not hasattr(est, "partial_fit")
            with pytest.raises(AttributeError, match="partial_fit") as info:
                est.partial_fit  # noqa: B018 (the attribute access is what raises)
            assert "needs a first-order optimizer" in str(info.value.__cause__)
    assert hasattr(NeuralNetRegressor(optimizer="sgd"), "partial_fit")
