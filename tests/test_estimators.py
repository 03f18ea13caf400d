"""The scikit-learn estimators: the estimator checks, pipelines, grid search, learning, determinism."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, make_blobs, make_classification
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from nablanet.estimators import NeuralNetClassifier, NeuralNetRegressor
from nablanet.nn import MLP
from nablanet.train import History, Trainer

# Small, quick settings for the check suite.  They must still *learn*: the suite
# asks for training accuracy > 0.83 on blobs, R^2 > 0.5 on a noisy linear
# problem, and every class predicted on 30 well-separated points (one minibatch,
# so 30 epochs are 30 steps: hence the larger learning rate).
FAST = dict(hidden_layer_sizes=(16,), learning_rate=0.01, epochs=30)


# and the full-batch methods (which have no partial_fit, as scikit-learn's lbfgs has none)
FULL_BATCH = [NeuralNetRegressor(hidden_layer_sizes=(16,), optimizer="lbfgs", epochs=50),
              NeuralNetClassifier(hidden_layer_sizes=(), optimizer="newton", epochs=20)]


@parametrize_with_checks([NeuralNetRegressor(**FAST), NeuralNetClassifier(**FAST), *FULL_BATCH])
def test_sklearn_compatible(estimator, check):
    check(estimator)


# ------------------------------------------------------------------ data


def _franke(x, y):
    return (0.75 * np.exp(-((9 * x - 2) ** 2) / 4 - ((9 * y - 2) ** 2) / 4)
            + 0.75 * np.exp(-((9 * x + 1) ** 2) / 49 - (9 * y + 1) / 10)
            + 0.5 * np.exp(-((9 * x - 7) ** 2) / 4 - ((9 * y - 3) ** 2) / 4)
            - 0.2 * np.exp(-((9 * x - 4) ** 2) - (9 * y - 7) ** 2))


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=150, centers=3, cluster_std=1.0, random_state=0)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def wave():
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, size=(200, 1))
    return X, np.sin(X[:, 0])


# ------------------------------------------------------------------ learning


def test_pipeline_breast_cancer_accuracy():
    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    clf = make_pipeline(StandardScaler(), NeuralNetClassifier(hidden_layer_sizes=(32,), epochs=50, l2=1e-3, random_state=0))
    clf.fit(Xtr, ytr)
    assert clf.score(Xte, yte) >= 0.95
    net = clf[-1]
    assert net.n_outputs_ == 1 and net.model_.output_activation.name == "sigmoid"
    assert net.trainer_.loss.name == "binary_cross_entropy"
    assert list(net.classes_) == [0, 1]


def test_regressor_smooth_1d_function():
    rng = np.random.default_rng(1)
    X = rng.uniform(-3, 3, size=(400, 1))
    y = np.sin(X[:, 0])
    reg = NeuralNetRegressor(hidden_layer_sizes=(32, 32), activation="tanh", learning_rate=0.01, epochs=100, random_state=0)
    reg.fit(X[:300], y[:300])
    assert reg.score(X[300:], y[300:]) >= 0.95
    assert reg.predict(X[300:]).shape == (100,)


def test_regressor_smooth_2d_function():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, size=(600, 2))
    y = _franke(X[:, 0], X[:, 1])
    # the cost falls to ~1e-3 here: stopping needs a tolerance below scikit-learn's default 1e-4 to go on learning
    reg = make_pipeline(StandardScaler(), NeuralNetRegressor(hidden_layer_sizes=(64, 64), activation="tanh",
                                                             learning_rate=0.005, epochs=200, tol=1e-5, random_state=0))
    reg.fit(X[:450], y[:450])
    assert reg.score(X[450:], y[450:]) >= 0.95


def test_regressor_multi_output():
    rng = np.random.default_rng(2)
    X = rng.uniform(-1, 1, size=(300, 2))
    Y = np.column_stack([np.sin(2 * X[:, 0]), X[:, 0] * X[:, 1], np.cos(X[:, 1])])
    reg = NeuralNetRegressor(hidden_layer_sizes=(32, 32), activation="tanh", learning_rate=0.01, epochs=150, random_state=0)
    reg.fit(X[:250], Y[:250])
    pred = reg.predict(X[250:])
    assert pred.shape == (50, 3) and pred.dtype == np.float64
    assert reg.n_outputs_ == 3
    assert reg.score(X[250:], Y[250:]) >= 0.95


@pytest.mark.parametrize("shape", [(60,), (60, 1), (60, 2)])
def test_regressor_predict_has_the_dimensionality_of_y(shape):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = rng.normal(size=shape)
    reg = NeuralNetRegressor(hidden_layer_sizes=(4,), epochs=2, random_state=0).fit(X, y)
    assert reg.predict(X).shape == shape
    assert reg.n_outputs_ == (1 if len(shape) == 1 else shape[1])


@pytest.mark.parametrize("loss", ["mse", "mae", "huber"])
def test_regressor_losses(loss, wave):
    X, y = wave
    reg = NeuralNetRegressor(hidden_layer_sizes=(32,), activation="tanh", loss=loss, learning_rate=0.01, epochs=60,
                             random_state=0).fit(X, y)
    assert reg.trainer_.loss.name == loss
    assert reg.loss_curve_[-1] < 0.5 * reg.loss_curve_[0]
    assert reg.score(X, y) > 0.8


def test_grid_search_over_l2_and_learning_rate():
    X, y = make_classification(n_samples=150, n_features=6, n_informative=4, class_sep=1.5, random_state=0)
    grid = {"l2": [0.0, 1e-2], "learning_rate": [1e-4, 1e-2]}
    search = GridSearchCV(NeuralNetClassifier(hidden_layer_sizes=(8,), epochs=15, random_state=0), grid, cv=3)
    search.fit(X, y)
    assert set(search.best_params_) == {"l2", "learning_rate"}
    assert search.best_params_["l2"] in grid["l2"]
    assert search.best_params_["learning_rate"] == 1e-2  # 15 epochs at 1e-4 barely move the weights
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    best = search.best_estimator_
    assert best.l2 == search.best_params_["l2"] and best.learning_rate == search.best_params_["learning_rate"]
    assert best.score(X, y) > 0.8


# ------------------------------------------------------------------ classification specifics


@pytest.mark.parametrize("labels", [["cat", "dog"], ["red", "green", "blue"], [-1, 1], [2.0, 10.0, -3.0], [True, False]])
def test_labels_of_any_type_round_trip(labels, blobs):
    X, codes = blobs
    keep = codes < len(labels)
    X, y = X[keep], np.asarray(labels)[codes[keep]]
    clf = NeuralNetClassifier(hidden_layer_sizes=(16,), learning_rate=0.01, epochs=20, random_state=0).fit(X, y)
    assert list(clf.classes_) == sorted(labels)
    pred = clf.predict(X)
    assert pred.dtype == y.dtype and set(pred) <= set(labels)
    assert clf.score(X, y) > 0.9
    assert clf.n_outputs_ == (1 if len(labels) == 2 else len(labels))


def test_object_string_labels(blobs):
    X, codes = blobs
    y = np.array(["one", "two", "three"], dtype=object)[codes]
    clf = NeuralNetClassifier(hidden_layer_sizes=(16,), learning_rate=0.01, epochs=20, random_state=0).fit(X, y)
    assert set(clf.predict(X)) == {"one", "two", "three"}


@pytest.mark.parametrize("n_classes", [2, 3])
def test_predict_proba_rows_sum_to_one_in_classes_order(n_classes, blobs):
    X, codes = blobs
    keep = codes < n_classes
    names = np.array(["zebra", "ant", "moose"])[: n_classes]  # not in sorted order
    X, y = X[keep], names[codes[keep]]
    clf = NeuralNetClassifier(hidden_layer_sizes=(16,), learning_rate=0.01, epochs=20, random_state=0).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (X.shape[0], n_classes) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X))
    # column j is the probability of classes_[j]: it is highest on the rows of that class
    for j, c in enumerate(clf.classes_):
        assert proba[y == c, j].mean() > 0.8
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba))


def test_one_class_is_refused():
    X = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match="at least 2 classes"):
        NeuralNetClassifier(epochs=1).fit(X, ["a"] * 10)


def test_continuous_targets_are_refused_by_the_classifier():
    X = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match="Unknown label type"):
        NeuralNetClassifier(epochs=1).fit(X, X[:, 0])


# ------------------------------------------------------------------ training behaviour


@pytest.mark.parametrize("Est", [NeuralNetRegressor, NeuralNetClassifier])
@pytest.mark.parametrize("extra", [{}, {"dropout": 0.2}, {"batch_norm": True}, {"early_stopping": True}])
def test_same_random_state_same_predictions(Est, extra, blobs):
    X, y = blobs
    target = X[:, 0] * X[:, 1] if Est is NeuralNetRegressor else y
    make = lambda rs: Est(hidden_layer_sizes=(8, 8), epochs=5, random_state=rs, **extra).fit(X, target)
    a, b, c = make(3), make(3), make(4)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert a.loss_curve_ == b.loss_curve_
    np.testing.assert_array_equal(a.trainer_.get_flat_params(), b.trainer_.get_flat_params())
    assert not np.array_equal(a.trainer_.get_flat_params(), c.trainer_.get_flat_params())
    # refitting the same estimator object gives the same result again
    np.testing.assert_array_equal(a.fit(X, target).predict(X), b.predict(X))


def test_random_state_instance_is_accepted(blobs):
    X, y = blobs
    clf = NeuralNetClassifier(hidden_layer_sizes=(4,), epochs=2, random_state=np.random.RandomState(0)).fit(X, y)
    assert clf.predict(X).shape == y.shape


def test_loss_curve_decreases(blobs):
    X, y = blobs
    clf = NeuralNetClassifier(hidden_layer_sizes=(16,), learning_rate=1e-3, epochs=60, random_state=0).fit(X, y)
    curve = np.asarray(clf.loss_curve_)
    assert len(curve) == clf.n_iter_ == 60
    assert curve[-1] < 0.3 * curve[0]
    # decreasing overall: each block of ten epochs averages lower than the one before
    blocks = curve.reshape(6, 10).mean(axis=1)
    assert np.all(np.diff(blocks) < 0)
    assert clf.loss_curve_ == list(clf.history_["loss"])
    assert isinstance(clf.history_, History) and isinstance(clf.trainer_, Trainer) and isinstance(clf.model_, MLP)


@pytest.mark.parametrize("Est", [NeuralNetRegressor, NeuralNetClassifier])
def test_early_stopping_stops_before_epochs(Est):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    # pure noise: the validation cost stops improving early
    y = rng.normal(size=200) if Est is NeuralNetRegressor else rng.integers(0, 2, size=200)
    est = Est(hidden_layer_sizes=(64,), learning_rate=0.01, epochs=500, early_stopping=True, n_iter_no_change=5, random_state=0)
    est.fit(X, y)
    assert est.n_iter_ < 500
    assert len(est.loss_curve_) == est.n_iter_ == len(est.history_)
    val = est.history_["val_loss"]
    assert len(val) == est.n_iter_
    # scikit-learn's rule: the last epoch that beat the best so far by tol came n_iter_no_change + 1 epochs before
    # the end (each later one missed it by tol, though one may still have set a new best by less)
    best, last = np.inf, None
    for i, v in enumerate(val):
        if v < best - est.tol:
            last = i
        best = min(best, v)
    assert last == est.n_iter_ - 1 - (5 + 1)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_early_stopping_restores_the_best_epoch(batch_norm):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = rng.normal(size=200)
    est = NeuralNetRegressor(hidden_layer_sizes=(64,), learning_rate=0.01, epochs=500, early_stopping=True, n_iter_no_change=5,
                             validation_fraction=0.2, batch_norm=batch_norm, random_state=0).fit(X, y)
    assert est.n_iter_ < 500
    # rebuild the held-out rows: the split is seeded from random_state like the rest.  With batch
    # normalization the best epoch's running statistics must come back too, not only its weights.
    seeds = np.random.RandomState(0).randint(0, np.iinfo(np.int32).max, size=3)
    _, X_val, _, y_val = train_test_split(X, y, test_size=0.2, random_state=int(seeds[2]))
    mse = float(np.mean((est.model_.predict(X_val)[:, 0] - y_val) ** 2))
    assert mse == pytest.approx(min(est.history_["val_loss"]), rel=1e-5)


def test_batch_norm_never_gets_a_batch_of_one():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(33, 3))  # 33 = 32 + 1: a last batch of one row would break batch normalization
    reg = NeuralNetRegressor(hidden_layer_sizes=(8,), batch_norm=True, epochs=3, random_state=0).fit(X, X[:, 0])
    assert reg.n_iter_ == 3
    with pytest.raises(ValueError, match="1 sample"):
        NeuralNetRegressor(batch_norm=True, epochs=1).fit(X[:1], X[:1, 0])


def test_full_batch_and_float64(wave):
    X, y = wave
    reg = NeuralNetRegressor(hidden_layer_sizes=(16,), activation="tanh", batch_size=None, learning_rate=0.05, epochs=100,
                             optimizer="adam", dtype="float64", random_state=0).fit(X, y)
    assert reg.model_.dtype == np.float64 and reg.trainer_.get_flat_params().dtype == np.float64
    assert reg.trainer_.opt_state["t"] == 100  # one step per epoch
    assert reg.score(X, y) > 0.8


def test_optimizers_and_penalties(blobs):
    X, y = blobs
    for opt in ["sgd", "rmsprop", "adagrad", "adamw", {"name": "sgd", "momentum": 0.9}]:
        clf = NeuralNetClassifier(hidden_layer_sizes=(8,), optimizer=opt, learning_rate=0.05, l1=1e-4, l2=1e-4, epochs=20,
                                  random_state=0).fit(X, y)
        assert clf.score(X, y) > 0.8, opt


def test_numpy_scalar_hyperparameters(blobs):
    X, y = blobs
    clf = NeuralNetClassifier(hidden_layer_sizes=np.array([8]), learning_rate=np.float32(0.01), l2=np.float32(1e-3),
                              batch_size=np.int64(16), epochs=np.int64(3), random_state=np.int64(0)).fit(X, y)
    assert clf.n_iter_ == 3


def test_per_layer_activations_and_init(blobs):
    X, y = blobs
    clf = NeuralNetClassifier(hidden_layer_sizes=(8, 8), activation=["tanh", "relu"], init="glorot_uniform", epochs=3,
                              random_state=0).fit(X, y)
    assert [layer.activation.name for layer in clf.model_.layers] == ["tanh", "relu", "identity"]
    logistic = NeuralNetClassifier(hidden_layer_sizes=(), epochs=3, random_state=0).fit(X, y)
    assert len(logistic.model_.layers) == 1


# ------------------------------------------------------------------ the estimator API


def test_get_set_params_and_clone():
    reg = NeuralNetRegressor(hidden_layer_sizes=(5, 3), loss="huber", random_state=7)
    params = reg.get_params()
    assert params["hidden_layer_sizes"] == (5, 3) and params["loss"] == "huber" and params["dtype"] == "float32"
    assert reg.set_params(l2=0.5, epochs=3) is reg and reg.l2 == 0.5 and reg.epochs == 3
    assert clone(reg).get_params() == reg.get_params()
    assert "loss" not in NeuralNetClassifier().get_params()


@pytest.mark.parametrize("Est", [NeuralNetRegressor, NeuralNetClassifier])
def test_pickle_round_trip(Est, blobs):
    X, y = blobs
    target = X[:, 0] if Est is NeuralNetRegressor else y  # blobs' labels are already 0, 1, 2
    est = Est(hidden_layer_sizes=(8,), batch_norm=True, dropout=0.1, epochs=4, random_state=0).fit(X, target)
    copy = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(copy.predict(X), est.predict(X))
    assert copy.loss_curve_ == est.loss_curve_ and copy.n_iter_ == est.n_iter_
    assert copy.model_ is copy.trainer_.model and copy.history_ is copy.trainer_.history and len(copy.history_) == 4
    # the trainer comes back whole (optimizer state, running statistics, RNG): continuing both agrees bit for bit
    for e in (est, copy):
        e.trainer_.fit(X, target, epochs=2, batch_size=32)
    np.testing.assert_array_equal(copy.trainer_.get_flat_params(), est.trainer_.get_flat_params())
    np.testing.assert_array_equal(copy.predict(X), est.predict(X))
    # an unfitted estimator pickles too
    assert pickle.loads(pickle.dumps(Est(epochs=3))).epochs == 3


@pytest.mark.parametrize("Est", [NeuralNetRegressor, NeuralNetClassifier])
def test_an_estimator_pickled_before_parameters_were_added_gets_their_defaults(Est, blobs):
    """An estimator pickled by an earlier version has no attribute for a parameter added since (rho, clip_norm):
    it unpickles with the parameter's default, and get_params, clone, repr and a new fit work."""
    X, y = blobs
    target = X[:, 0] if Est is NeuralNetRegressor else y
    est = Est(hidden_layer_sizes=(4,), epochs=2, random_state=0).fit(X, target)
    state = est.__getstate__()
    for name in ("rho", "clip_norm"):
        del state[name]  # what an earlier version pickled
    old = Est.__new__(Est)
    old.__setstate__(state)
    assert old.rho is None and old.clip_norm is None
    assert clone(old).get_params() == est.get_params() and "NeuralNet" in repr(old)
    np.testing.assert_array_equal(old.predict(X), est.predict(X))
    old.fit(X, target)


def test_feature_names_from_a_dataframe(blobs):
    pd = pytest.importorskip("pandas")
    X, y = blobs
    df = pd.DataFrame(X, columns=["a", "b"])
    clf = NeuralNetClassifier(hidden_layer_sizes=(4,), epochs=2, random_state=0).fit(df, y)
    assert list(clf.feature_names_in_) == ["a", "b"] and clf.n_features_in_ == 2
    with pytest.warns(UserWarning, match="feature names"):
        clf.predict(X)


def test_unfitted_and_wrong_features(blobs):
    from sklearn.exceptions import NotFittedError

    X, y = blobs
    with pytest.raises(NotFittedError):
        NeuralNetClassifier().predict_proba(X)
    clf = NeuralNetClassifier(hidden_layer_sizes=(4,), epochs=1, random_state=0).fit(X, y)
    assert clf.n_features_in_ == 2 and not hasattr(clf, "feature_names_in_")
    with pytest.raises(ValueError, match="X has 3 features"):
        clf.predict(np.ones((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        clf.fit(np.where(X > 1, np.nan, X), y)


@pytest.mark.parametrize("params, error, match", [
    ({"hidden_layer_sizes": (8, 0)}, ValueError, "hidden_layer_sizes"),
    ({"hidden_layer_sizes": "wide"}, ValueError, "hidden_layer_sizes"),
    ({"hidden_layer_sizes": 2.5}, TypeError, "hidden_layer_sizes"),
    ({"activation": "swish"}, ValueError, "activation"),
    ({"activation": ["tanh", "relu"]}, ValueError, "2 activations"),
    ({"activation": 3}, TypeError, "activation"),
    ({"optimizer": "bfgs"}, ValueError, "optimizer"),
    ({"optimizer": 1}, TypeError, "optimizer"),
    ({"learning_rate": 0.0}, ValueError, "learning_rate"),
    ({"learning_rate": -1e-3}, ValueError, "learning_rate"),
    ({"learning_rate": "fast"}, TypeError, "learning_rate"),
    ({"l1": -1.0}, ValueError, "l1"),
    ({"l2": None}, TypeError, "l2"),
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"batch_size": 8.0}, ValueError, "batch_size"),
    ({"epochs": 0}, ValueError, "epochs"),
    ({"epochs": 2.5}, ValueError, "epochs"),
    ({"dropout": 1.0}, ValueError, "dropout"),
    ({"batch_norm": "yes"}, TypeError, "batch_norm"),
    ({"early_stopping": 1}, TypeError, "early_stopping"),
    ({"init": "bogus"}, ValueError, "init"),
    ({"validation_fraction": 1.0}, ValueError, "validation_fraction"),
    ({"validation_fraction": 0}, ValueError, "validation_fraction"),
    ({"n_iter_no_change": 0}, ValueError, "n_iter_no_change"),
    ({"tol": -1.0}, ValueError, "tol"),
    ({"warm_start": 1}, TypeError, "warm_start"),
    ({"random_state": "seed"}, ValueError, "RandomState"),
    ({"dtype": "int32"}, ValueError, "dtype"),
    ({"dtype": "float17"}, TypeError, "dtype"),
    ({"dtype": None}, TypeError, "dtype"),
])
@pytest.mark.parametrize("Est", [NeuralNetRegressor, NeuralNetClassifier])
def test_bad_parameters_are_refused_in_fit(Est, params, error, match, blobs):
    X, y = blobs
    est = Est(**{"epochs": 1, **params})  # no validation in __init__ ...
    with pytest.raises(error, match=match):  # ... but in fit
        est.fit(X, y)


def test_bad_regression_loss_is_refused(wave):
    X, y = wave
    with pytest.raises(ValueError, match="loss must be one of"):
        NeuralNetRegressor(loss="cross_entropy", epochs=1).fit(X, y)
