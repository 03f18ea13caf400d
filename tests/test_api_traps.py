"""No silent traps: optimizer settings by name in fit/Trainer/estimators, conflicts named, readable reprs,
progress where a person watches and nowhere else."""

import io
import re
import sys

import numpy as np
import pytest
from sklearn.base import clone

from nablanet import optim
from nablanet.estimators import NeuralNetClassifier, NeuralNetRegressor
from nablanet.nn import MLP
from nablanet.train import Trainer, fit
from nablanet.train.callbacks import ProgressBar, progress_bar


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (64, 2))
    return X, X[:, 0] * X[:, 1]


def model():
    return MLP([2, 8, 1], activation="tanh", seed=0)


def test_an_optimizer_object_with_settings_beside_it_is_an_error_naming_both(data):
    X, y = data
    with pytest.raises(ValueError, match=r"optimizer=Adam\(lr=0.01.*lr=0.001 was given as well"):
        fit(model(), X, y, optimizer=optim.Adam(1e-2), lr=1e-3)
    with pytest.raises(ValueError, match=r"momentum=0.9"):
        Trainer(model(), optimizer=optim.SGD(0.1), momentum=0.9)
    with pytest.raises(ValueError, match="schedule='cosine'"):
        fit(model(), X, y, optimizer=optim.SGD(0.1), schedule="cosine")
    with pytest.raises(ValueError, match="learning_rate=0.1 was given as well"):
        NeuralNetRegressor(optimizer=optim.Adam(1e-2), learning_rate=0.1, epochs=1).fit(X, y)


@pytest.mark.parametrize("params, message", [
    (dict(optimizer=optim.Adam(1e-2), learning_rate=1e-3), r"own settings, and learning_rate=0.001 was given as well"),
    (dict(optimizer={"name": "sgd", "lr": 0.1}, learning_rate=0.2), r"sets lr, and learning_rate=0.2 was given"),
    (dict(schedule=optim.cosine(0.1, 10), learning_rate=0.1), r"^learning_rate=0.1 and schedule=cosine"),
    (dict(optimizer="adam", rho=0.9), r"'rho' is not a setting of the adam optimizer \(its settings: learning_rate, "),
    (dict(optimizer=optim.SGD(0.1), clip_norm=1.0), r"and clip_norm=1.0 was given as well"),
])
def test_an_estimators_conflict_names_the_estimators_parameters(params, message, data):
    """The estimators' learning_rate is fit's lr: their errors said lr=0.001, a name the estimator does not take."""
    X, y = data
    with pytest.raises((ValueError, TypeError), match=message) as e:
        NeuralNetRegressor(hidden_layer_sizes=(4,), epochs=1, **params).fit(X, y)
    assert not re.search(r"(?<!\()\blr=", str(e.value))  # only an Optimizer object's own repr says lr=


def test_rho_and_clip_norm_are_estimator_parameters(data):
    """fit and Trainer took rho and clip_norm; the estimators did not."""
    X, y = data
    reg = NeuralNetRegressor(hidden_layer_sizes=(4,), optimizer="rmsprop", rho=0.8, clip_norm=0.5, epochs=2,
                             random_state=0)
    assert reg.get_params()["rho"] == 0.8 and reg.get_params()["clip_norm"] == 0.5
    assert clone(reg).get_params() == reg.get_params()
    opt = reg.fit(X, y).trainer_.optimizer
    assert (type(opt), opt.rho, opt.clip_norm) == (optim.RMSprop, 0.8, 0.5)
    reg.set_params(warm_start=True, clip_norm=2.0).fit(X, y)  # a training setting: a new optimizer takes it
    assert reg.trainer_.optimizer.clip_norm == 2.0 and reg.n_iter_ == 4
    clf = NeuralNetClassifier(hidden_layer_sizes=(4,), clip_norm=1.0, epochs=1, random_state=0)
    assert clf.set_params(rho=0.5) is clf and clone(clf).get_params()["rho"] == 0.5
    with pytest.raises(ValueError, match="clip_norm: expected a number > 0"):
        NeuralNetClassifier(hidden_layer_sizes=(4,), clip_norm=-1.0, epochs=1).fit(X, (y > 0).astype(int))


def test_schedule_names_are_the_ones_the_docs_use_and_the_old_name_still_works(data):
    """The README and docstrings said step_decay, fit and the estimators took only "step"."""
    X, y = data
    lr = {}
    for name in ("step_decay", "step"):
        h = fit(model(), X, y, optimizer="sgd", lr=0.1, schedule=name, epochs=3, batch_size=16, seed=0)
        assert h.trainer.optimizer.lr.name == "step_decay"
        lr[name] = h["lr"]
    assert lr["step"] == lr["step_decay"]
    est = NeuralNetRegressor(hidden_layer_sizes=(4,), schedule="step_decay", epochs=2, random_state=0).fit(X, y)
    assert est.trainer_.optimizer.lr.name == "step_decay"
    assert optim.RUN_SCHEDULES == ("constant", "step_decay", "exponential", "inverse_time", "cosine")


def test_warmup_is_refused_by_name_saying_how_to_give_it_and_is_taken_as_an_object_or_a_dict(data):
    X, y = data
    with pytest.raises(ValueError, match=r"schedule: 'warmup' is not fitted to a run by name, it takes settings of "
                                         r"its own \(schedule, warmup_steps\); give it as a Schedule"):
        fit(model(), X, y, schedule="warmup")
    with pytest.raises(ValueError, match="'warmup' is not fitted"):
        NeuralNetRegressor(schedule="warmup", epochs=1).fit(X, y)
    w = optim.warmup(optim.cosine(0.1, 8), warmup_steps=4)
    h = fit(model(), X, y, optimizer="sgd", schedule=w, epochs=2, batch_size=16)
    assert h["lr"] == [w(3), w(7)]  # the rate of each epoch's last step (4 a epoch)
    t = Trainer(model(), optimizer="sgd", schedule=w.config())
    assert [t.optimizer.lr(k) for k in range(8)] == [w(k) for k in range(8)]
    est = NeuralNetRegressor(hidden_layer_sizes=(4,), optimizer="sgd", schedule=w.config(), epochs=1).fit(X, y)
    assert est.trainer_.optimizer.lr.name == "warmup"
    # every schedule nablanet.optim has is either fitted to a run by name or refused saying how it is given
    for name in ("constant", "step_decay", "exponential", "inverse_time", "cosine", "warmup"):
        try:
            assert optim.run_schedule(name) == name
        except ValueError as e:
            assert "give it as a Schedule" in str(e)


def test_optimizer_settings_are_accepted_by_name(data):
    X, y = data
    h = fit(model(), X, y, optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4, epochs=2,
            batch_size=16)
    opt = h.trainer.optimizer
    assert (opt.momentum, opt.nesterov, opt.weight_decay, opt.lr(0)) == (0.9, True, 1e-4, 0.1)
    t = Trainer(model(), optimizer="adam", betas=(0.8, 0.99), eps=1e-6)
    assert (t.optimizer.beta1, t.optimizer.beta2, t.optimizer.eps) == (0.8, 0.99, 1e-6)
    est = NeuralNetRegressor(hidden_layer_sizes=(8,), optimizer="sgd", learning_rate=0.05, momentum=0.9, nesterov=True,
                             schedule="cosine", epochs=3, random_state=0).fit(X, y)
    assert est.trainer_.optimizer.momentum == 0.9 and est.trainer_.optimizer.nesterov
    assert est.trainer_.optimizer.lr.name == "cosine"
    clf = NeuralNetClassifier(hidden_layer_sizes=(4,), betas=(0.5, 0.9), weight_decay=1e-3, epochs=1, random_state=0)
    clf.fit(X, (y > 0).astype(int))
    assert clf.trainer_.optimizer.beta1 == 0.5 and clf.trainer_.optimizer.weight_decay == 1e-3


def test_a_setting_the_optimizer_does_not_take_names_its_owner():
    with pytest.raises(TypeError, match="'momentum' is not a setting of the adam optimizer.*momentum belongs to sgd"):
        Trainer(model(), optimizer="adam", momentum=0.9)
    with pytest.raises(ValueError, match="schedule: expected one of constant, step_decay, .*, got 'cosin'"):
        Trainer(model(), schedule="cosin")


def test_a_named_schedule_spans_the_epochs_of_each_fit(data):
    X, y = data
    h = fit(model(), X, y, optimizer="sgd", lr=0.2, schedule="cosine", epochs=4, batch_size=16)
    assert h.trainer.optimizer.lr.params["total_steps"] == 4 * 4
    assert h["lr"][0] < 0.2 and 0.002 < h["lr"][-1] < 0.01  # the last step of 16 is close to lr/100
    h.trainer.fit(X, y, epochs=2, batch_size=16)  # continuing stretches the schedule over all 6 epochs
    assert h.trainer.optimizer.lr.params["total_steps"] == 6 * 4


def test_weight_decay_is_the_gradient_of_half_lambda_w_squared():
    params = [np.array([1.0, -2.0])]
    new, _ = optim.SGD(0.1, weight_decay=0.5).update(params, [np.zeros(2)], optim.SGD(0.1).init(params))
    np.testing.assert_allclose(new[0], params[0] * (1 - 0.1 * 0.5))
    new, _ = optim.AdamW(0.1, weight_decay=0.5).update(params, [np.zeros(2)], optim.AdamW().init(params))
    np.testing.assert_allclose(new[0], params[0] * (1 - 0.1 * 0.5))  # decoupled: no Adam step from a zero gradient


def test_reprs_say_what_the_object_is(data):
    X, y = data
    m = model()
    assert repr(m) == "MLP(2 -> 8 -> 1, activation=tanh, output_activation=identity; 33 parameters)"
    h = fit(m, X, y, optimizer="sgd", lr=0.1, epochs=2, metrics=["r2"])
    assert repr(h).startswith("History(2 epochs; last epoch: loss=") and "r2=" in repr(h)
    r = repr(h.trainer)
    assert r.startswith("Trainer(MLP(2 -> 8 -> 1") and "SGD(lr=0.1" in r and "epochs done=2" in r
    assert repr(optim.Adam()) == "Adam(lr=0.003, beta1=0.9, beta2=0.999, eps=1e-08, weight_decay=0)"
    assert "momentum=0.9" in repr(NeuralNetRegressor(momentum=0.9))


def test_a_history_of_one_epoch_and_the_size_of_a_small_model_read_right():
    h = fit(model(), np.zeros((4, 2)), np.zeros(4), epochs=1)
    assert repr(h).startswith("History(1 epoch; last epoch: loss=")
    assert "(float32, 16 bytes)" in str(MLP([3, 1], seed=0).summary())  # it said 0.0 KiB
    assert "(float32, 7.1 MiB)" in str(MLP([784, 1024, 1024, 10], seed=0).summary())


def test_summary_is_a_table_of_layers_shapes_and_counts():
    m = MLP([64, 32, 10], output_activation="softmax", batch_norm=True, seed=0)
    s = m.summary()
    text = str(s)
    assert s.n_params == m.n_params == 64 * 32 + 32 + 2 * 32 + 32 * 10 + 10
    assert [r[0] for r in s.rows] == ["Dense(64 -> 32)", "BatchNorm(32)", "Activation(relu)", "Dense(32 -> 10)"]
    assert s.rows[0][1:] == ("(n, 32)", "W 64x32, b 32", 2080)
    assert "2,474 parameters" in text and "output activation softmax" in text and repr(s) == text
    assert "<table>" in s._repr_html_()


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_shows_in_terminals_and_not_in_pipes_or_ci(data, monkeypatch):
    X, y = data
    monkeypatch.delenv("CI", raising=False)
    tty, pipe = _Tty(), io.StringIO()
    fit(model(), X, y, epochs=3, callbacks=[ProgressBar(file=tty)])
    assert "3/3" in tty.getvalue() and "loss=" in tty.getvalue()
    fit(model(), X, y, epochs=3, callbacks=[ProgressBar(file=pipe)])
    assert pipe.getvalue() == ""
    monkeypatch.setenv("CI", "true")
    assert progress_bar(3, file=_Tty()) is None
    forced = io.StringIO()
    fit(model(), X, y, epochs=2, callbacks=[ProgressBar(force=True, file=forced)])
    assert "2/2" in forced.getvalue()


class _Kernel:
    config = {"IPKernelApp": {}}


def test_in_a_notebook_without_ipywidgets_progress_is_text_without_warnings(monkeypatch, recwarn):
    import types

    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: _Kernel()))
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import fails
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    bar = progress_bar(2)
    bar.update(2)
    bar.close()
    assert type(bar).__module__ == "tqdm.std" and "2/2" in out.getvalue()
    assert not [w for w in recwarn if "IProgress" in str(w.message)]


def test_reprs_and_summary_of_odd_models():
    from nablanet.nn import Activation, Dense, Dropout, Sequential

    # an activation with parameters reads as a call, not as the keys of its dict
    assert "activation=elu(alpha=0.5)," in repr(MLP([2, 4, 1], activation={"name": "elu", "alpha": 0.5}))
    mixed = MLP([2, 4, 3, 1], activation=["tanh", {"name": "elu", "alpha": 0.5}], batch_norm=True)
    assert "activation=[tanh; elu(alpha=0.5)]" in repr(mixed)
    assert repr(MLP([3, 1])).startswith("MLP(3 -> 1, output_activation=")  # no hidden layer, no hidden activation
    # layers that keep the width (Dropout, Activation) before the first Dense: the input width is still known
    for first in (Dropout(0.5), Activation("relu")):
        s = Sequential(first, Dense(3, 2)).summary()
        assert s.rows[0][1] == "(n, 3)" and "input (n, 3)" in s.footer and "None" not in str(s)
    assert "None" not in str(Sequential(Activation("relu")).summary())


def test_an_initializer_function_builds_a_network_and_is_refused_only_when_saved(tmp_path):
    init = lambda shape, rng, dtype: np.full(shape, 0.25, dtype)  # noqa: E731
    m = MLP([2, 4, 1], init=init, seed=0)  # the docstring's "str, dict or callable"
    assert np.all(m.params[0]["W"] == 0.25) and "init=<lambda>" in repr(m)
    t = Trainer(m)
    t.fit(np.ones((8, 2)), np.ones((8, 1)), epochs=1)
    with pytest.raises(ValueError, match="custom initializer function cannot be saved"):
        t.save(tmp_path / "c.npz")


def test_a_full_batch_method_by_name_refuses_first_order_settings_as_fit_does(data):
    X, y = data
    for opt in ("lbfgs", "newton"):
        # the estimator builds the method by name: the message must not speak of an Optimizer object the user never made
        with pytest.raises(TypeError, match=f"'momentum' is not a setting of the {opt} optimizer"):
            NeuralNetRegressor(optimizer=opt, momentum=0.5, epochs=2, hidden_layer_sizes=(4,)).fit(X, y)
        with pytest.raises(ValueError, match=f"{opt} takes no learning rate or schedule .schedule='cosine'"):
            fit(model(), X, y, optimizer=opt, schedule="cosine", epochs=2)
        with pytest.raises(ValueError, match="schedule='cosine'"):
            NeuralNetRegressor(optimizer=opt, schedule="cosine", epochs=2, hidden_layer_sizes=(4,)).fit(X, y)
    est = NeuralNetRegressor(optimizer="lbfgs", tol=1e-9, epochs=2, hidden_layer_sizes=(4,)).fit(X, y)
    assert est.trainer_.optimizer.tol == 1e-9


def test_progress_takes_true_false_or_force(data):
    X, y = data
    for bad in ("yes", 1, None):
        with pytest.raises(ValueError, match="progress: expected True, False or 'force'"):
            fit(model(), X, y, epochs=1, progress=bad)


def test_a_trainer_with_a_named_schedule_says_so_in_its_repr():
    r = repr(Trainer(model(), optimizer="sgd", lr=0.1, schedule="cosine", l2=1e-3))
    assert "SGD(lr=0.1" in r and ", schedule=cosine, l2=0.001," in r  # it read as a constant rate of 0.1


def test_adaptive_learning_rate_and_a_schedule_are_one_error_naming_both(data):
    X, y = data
    kw = dict(adaptive_learning_rate=True, epochs=2, hidden_layer_sizes=(4,))
    for extra, named in ((dict(schedule="cosine"), "schedule='cosine'"),
                         (dict(optimizer=optim.SGD(optim.cosine(0.1, 100))), r"optimizer=SGD\(lr=cosine"),
                         (dict(learning_rate=optim.cosine(0.1, 100)), r"learning_rate=cosine")):
        with pytest.raises(ValueError, match=f"adaptive_learning_rate=True is a schedule of its own, and {named}"):
            NeuralNetRegressor(**kw, **extra).fit(X, y)
    NeuralNetRegressor(**kw).fit(X, y)  # alone it trains


def test_an_optimizer_dict_and_the_same_setting_beside_it_is_an_error_naming_both(data):
    X, y = data
    # the keyword silently won over the dict's value
    with pytest.raises(ValueError, match=r"optimizer=\{'name': 'adam', 'lr': 0.01\} sets lr, and lr=0.001 was given"):
        fit(model(), X, y, optimizer={"name": "adam", "lr": 1e-2}, lr=1e-3, epochs=1)
    with pytest.raises(ValueError, match="sets momentum, and momentum=0.9"):
        Trainer(model(), optimizer={"name": "sgd", "momentum": 0.5}, momentum=0.9)
    with pytest.raises(ValueError, match="sets lr, and learning_rate=0.1 was given"):  # the estimator's name
        NeuralNetRegressor(optimizer={"name": "sgd", "lr": 0.5}, learning_rate=0.1, epochs=1).fit(X, y)
    t = Trainer(model(), optimizer={"name": "sgd", "momentum": 0.9}, lr=0.05, momentum=0.9)  # the same value twice
    assert (t.optimizer.lr(0), t.optimizer.momentum) == (0.05, 0.9)


def test_betas_given_to_an_optimizer_without_them_are_named_as_given(data):
    X, y = data
    with pytest.raises(TypeError, match=r"^'betas' is not a setting of the sgd optimizer .*; betas belongs to adam"):
        fit(model(), X, y, optimizer="sgd", betas=(0.9, 0.99), epochs=1)  # it spoke of 'beta1', 'beta2'
    with pytest.raises(TypeError, match=r"^'momentum', 'rho' are not settings of the adam optimizer"):
        fit(model(), X, y, optimizer="adam", momentum=0.9, rho=0.9, epochs=1)


# ------------------------------------------------------------------ the API's messages in its own words


@pytest.mark.parametrize("val, got", [("X", "an array of shape (64, 2)"), ("XYY", "a tuple of 3 items")])
def test_validation_data_that_is_not_a_pair_says_so(data, val, got):
    # prepare_data() takes from 4 to 5 positional arguments but 66 were given
    X, y = data
    bad = X if val == "X" else (X, y, y)
    with pytest.raises(TypeError, match=re.escape(f"validation_data: expected an (X_val, y_val) pair, got {got}")):
        fit(model(), X, y, validation_data=bad, epochs=1)
    assert fit(model(), X, y, validation_data=[X, y], epochs=1).history["val_loss"]  # a list of two is a pair


def test_one_metric_name_is_one_metric_not_its_letters(data):
    X, y = data
    h = fit(model(), X, y, metrics="r2", epochs=1)  # was: unknown metric 'r'
    assert "r2" in h.history and "r" not in h.history
    with pytest.raises(TypeError, match="metrics: expected a metric name .* or a list of them, got 5"):
        fit(model(), X, y, metrics=5, epochs=1)
    assert set(Trainer(model()).evaluate(X, y, metrics="mae")) == {"loss", "mae"}


def test_callbacks_take_one_callback_or_a_list_and_refuse_anything_else(data):
    from nablanet.train import LambdaCallback

    X, y = data
    seen = []
    fit(model(), X, y, callbacks=LambdaCallback(on_epoch_end=lambda trainer, epoch, logs: seen.append(epoch)), epochs=2)
    assert len(seen) == 2
    with pytest.raises(TypeError, match="callbacks: expected a Callback or a list of Callbacks, got 5"):
        fit(model(), X, y, callbacks=5, epochs=1)


def test_an_activation_function_that_cannot_be_used_says_what_can():
    from nablanet.nn.activations import ActivationFunction

    with pytest.raises(TypeError, match=r"MLP: activation: expected a name \(identity, .*\), a dict .* or an "
                                        r"ActivationFunction .*; got a function"):
        MLP([3, 4, 1], activation=lambda z: z)  # was: 'function' object is not iterable
    with pytest.raises(TypeError, match=r"MLP: activation \(item 1\): expected"):
        MLP([3, 4, 4, 1], activation=["relu", 5])
    with pytest.raises(TypeError, match="MLP: activation: expected"):
        MLP([3, 1], activation=print)  # no hidden layer: still not silently accepted
    scaled = ActivationFunction("scaled_tanh", lambda z: 2 * np.tanh(z), lambda a: 2 - a * a / 2)
    assert MLP([3, 4, 1], activation=scaled).layers[0].activation is scaled  # one object alone, as a name is


@pytest.mark.parametrize("seed", [1.5, -1, "1", True])
def test_a_bad_seed_is_refused_naming_the_seed(seed):
    with pytest.raises((TypeError, ValueError), match="MLP: seed: expected an integer >= 0, None or a numpy.random"):
        MLP([3, 4, 1], seed=seed)  # was: SeedSequence expects int or sequence of ints for entropy not 1.5
    assert MLP([3, 4, 1], seed=np.random.default_rng(0)).n_params == 21


def test_a_checkpoint_into_a_folder_that_cannot_be_written_names_the_checkpoint_not_the_temporary_file(tmp_path,
                                                                                                         monkeypatch):
    import errno
    import os

    from nablanet import files

    def denied(src, dst):  # what renaming into a folder without write permission raises: both names
        raise PermissionError(errno.EACCES, "Permission denied", src, dst)

    monkeypatch.setattr(files.os, "replace", denied)
    target = str(tmp_path / "c.npz")
    with pytest.raises(PermissionError) as e:
        Trainer(model()).save(target)
    assert e.value.filename == target and files.TEMP_PREFIX not in str(e.value), str(e.value)
    assert not [f for f in os.listdir(tmp_path)]  # the temporary file is gone
    with pytest.raises(PermissionError) as e, files.atomic_path(target) as tmp:
        raise PermissionError(errno.EACCES, "Permission denied", tmp)  # opening the temporary file
    assert e.value.filename == target
    other = str(tmp_path / "source.txt")
    with pytest.raises(FileNotFoundError) as e, files.atomic_path(target):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", other)  # another file: its own name
    assert e.value.filename == other
