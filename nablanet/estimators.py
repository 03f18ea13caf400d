"""scikit-learn estimators on top of :class:`nablanet.nn.MLP` and :class:`nablanet.train.Trainer`.

:class:`NeuralNetRegressor` and :class:`NeuralNetClassifier` follow the
scikit-learn estimator API (``fit``/``predict``/``score``, ``get_params`` and
``set_params``, cloning, pipelines, grid search) and pass its estimator checks::

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from nablanet.estimators import NeuralNetClassifier

    clf = make_pipeline(StandardScaler(), NeuralNetClassifier(hidden_layer_sizes=(32,), random_state=0))
    clf.fit(X_train, y_train).score(X_test, y_test)

Training is nablanet's own loop: the network is an :class:`~nablanet.nn.MLP`
(``model_``), trained by a :class:`~nablanet.train.Trainer` (``trainer_``)
whose per-epoch records are ``history_``.  The same ``random_state`` gives the
same network, the same training and the same predictions, bit for bit.

Fitted estimators pickle: the trainer (parameters, optimizer state, running
statistics, RNG state and history) travels as a nablanet checkpoint (a ``.npz``
of plain arrays), since the network objects themselves hold local functions
that :mod:`pickle` cannot store.
"""

from __future__ import annotations

import inspect
import numbers
import os
import tempfile

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from . import validate as V
from .autodiff.tree import tree_map
from .nn import MLP
from .nn.activations import ACTIVATIONS, get_activation
from .nn.init import get_initializer
from .optim import FULL_BATCH, OPTIMIZERS, FullBatchOptimizer, Optimizer, Schedule
from .train import EarlyStopping, ReduceLROnPlateau, Trainer

__all__ = ["NeuralNetRegressor", "NeuralNetClassifier"]

_REGRESSION_LOSSES = ("mse", "mae", "huber")
_HIDDEN_ACTIVATIONS = tuple(a for a in ACTIVATIONS if a != "softmax")


def _validate_data(*args, **kw):
    """scikit-learn's input check, quietly: an inf in X is one ValueError, without NumPy's RuntimeWarning first."""
    with np.errstate(invalid="ignore", over="ignore"):
        return validate_data(*args, **kw)


# ---------------------------------------------------------------------------------------------- helpers


def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _is_full_batch(opt):
    """Whether an optimizer spec names a full-batch method (which takes no batch size or learning rate)."""
    if isinstance(opt, dict):
        opt = opt.get("name", "")
    if isinstance(opt, str):
        return opt.lower() in FULL_BATCH
    return isinstance(opt, FullBatchOptimizer)


def _same(a, b):
    """Whether two parameter values are the same setting (objects by identity, arrays and tuples by value)."""
    if a is b:
        return True
    try:
        if isinstance(a, (list, tuple, np.ndarray)) or isinstance(b, (list, tuple, np.ndarray)):
            return bool(np.array_equal(np.asarray(a, dtype=object), np.asarray(b, dtype=object)))
        return bool(a == b)
    except (TypeError, ValueError):
        return False


# what the network is made of: a continued fit (warm_start, partial_fit) cannot change these
_NETWORK_PARAMS = ("activation", "dropout", "batch_norm", "dtype")
# how it is trained: a continued fit whose settings changed trains on with a new optimizer
_OPTIMIZER_SETTINGS = ("momentum", "nesterov", "betas", "eps", "rho", "weight_decay", "clip_norm")
_TRAINING_PARAMS = ("loss", "optimizer", "learning_rate", "l1", "l2", "tol", *_OPTIMIZER_SETTINGS, "schedule")
_FIT_NAMES = {"lr": "learning_rate"}  # fit's names of the settings that the estimators name otherwise


def _first_order(est):
    """partial_fit is there only for the first-order optimizers (as scikit-learn's only for its stochastic solvers)."""
    if _is_full_batch(est.optimizer):
        raise AttributeError(f"partial_fit needs a first-order optimizer; {est.optimizer!r} is a full-batch method "
                             f"(fit runs it to its own tolerance)")
    return True


def _n_outputs(classes):
    """Output units of a classifier: one sigmoid unit for two classes, a softmax unit per class otherwise."""
    return 1 if len(classes) == 2 else len(classes)


def _check_activation(spec, where):
    """Raise a clear error unless ``spec`` names a hidden-layer activation."""
    if isinstance(spec, str):
        if spec not in _HIDDEN_ACTIVATIONS and spec != "linear":
            raise ValueError(f"{where} must be one of {', '.join(_HIDDEN_ACTIVATIONS)}; got {spec!r}")
        return
    if isinstance(spec, dict):
        try:
            get_activation(spec)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{where} is not a valid activation ({e}); got {spec!r}") from None
        return
    raise TypeError(f"{where} must be an activation name or a dict such as {{'name': 'elu', 'alpha': 0.5}}; got {spec!r}")


class _NoImprovement(EarlyStopping):
    """scikit-learn's MLP rule for ``n_iter_no_change`` (``patience``) and ``tol`` (``min_delta``).

    An epoch counts when the monitored value misses the best so far by
    ``tol``; training stops once more than ``patience`` epochs in a row have
    counted.  The best is the best value seen, whatever the margin, so a cost
    that falls by less than ``tol`` an epoch stops training, where the Keras
    rule of :class:`~nablanet.train.EarlyStopping` (best moved only by
    improvements of ``tol``) lets it run on.

    With ``adaptive`` (scikit-learn's ``learning_rate="adaptive"``), where
    the rule would stop, the learning rate is divided by 5 instead and the
    count starts again; training stops when the rate is at most 1e-6.  The
    division is a :class:`~nablanet.train.ReduceLROnPlateau`'s scale, so it
    travels in checkpoints.
    """

    def __init__(self, monitor, patience, min_delta, restore_best, adaptive=False):
        super().__init__(monitor, patience=patience, min_delta=min_delta, restore_best=restore_best)
        self.rate = ReduceLROnPlateau(monitor, factor=0.2, patience=1 << 30, min_delta=min_delta) if adaptive else None

    def on_train_begin(self, trainer):
        super().on_train_begin(trainer)
        if self.rate is not None:
            self.rate.on_train_begin(trainer)  # the scaled rate (the scale restored from a checkpoint)

    def on_train_end(self, trainer):
        super().on_train_end(trainer)
        if self.rate is not None:
            self.rate.on_train_end(trainer)

    def on_epoch_end(self, trainer, epoch, logs):
        v = logs.get(self.monitor)
        if v is None:
            return super().on_epoch_end(trainer, epoch, logs)  # its clear error
        counts = not self._better(v)
        if self.best is None or (v < self.best if self.mode == "min" else v > self.best):
            self.best, self.best_epoch = v, epoch
            if self.restore_best:
                self._best_params = trainer.get_flat_params().copy()
                self._best_state = tree_map(np.copy, trainer.model.state)
        self.wait = self.wait + 1 if counts else 0
        if self.wait > self.patience:
            rate = self.rate
            if rate is not None and trainer.optimizer.lr(max(trainer.opt_state["t"] - 1, 0)) > 1e-6:
                rate.scale *= rate.factor
                rate.reductions += 1
                rate.save_state(trainer)
                self.wait = 0
                return False
            self.stopped_epoch = epoch
            return True
        return False


class _Checkpoint:
    """A trainer in flight through :mod:`pickle`: the bytes of a nablanet checkpoint."""

    def __init__(self, data):
        self.data = data


def _trainer_to_bytes(trainer):
    with tempfile.TemporaryDirectory(prefix="nablanet-") as folder:
        path = os.path.join(folder, "trainer.npz")
        trainer.save(path)
        with open(path, "rb") as f:
            return f.read()


def _trainer_from_bytes(data):
    from .train import load

    with tempfile.TemporaryDirectory(prefix="nablanet-") as folder:
        path = os.path.join(folder, "trainer.npz")
        with open(path, "wb") as f:
            f.write(data)
        return load(path)


# ---------------------------------------------------------------------------------------------- the base


class _BaseNeuralNet(BaseEstimator):
    """What the regressor and the classifier share: validation, the network, the training, pickling.

    Subclasses define ``__init__`` (the parameters), ``fit`` (validating and
    encoding the targets, then calling ``_fit_network``) and ``predict``.
    """

    # ------------------------------------------------------------------ parameters
    def _check_params(self):
        """Check the constructor parameters; return the hidden sizes as a tuple of ints."""
        sizes = self.hidden_layer_sizes
        if _is_int(sizes):
            sizes = (sizes,)
        try:
            sizes = tuple(sizes)
        except TypeError:
            raise TypeError(
                f"hidden_layer_sizes must be a sequence of positive integers (or one integer); got {self.hidden_layer_sizes!r}"
            ) from None
        if not all(_is_int(s) and s >= 1 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must hold positive integers; got {self.hidden_layer_sizes!r}")
        sizes = tuple(int(s) for s in sizes)

        act = self.activation
        if isinstance(act, (list, tuple)):
            if len(act) != len(sizes):
                raise ValueError(
                    f"activation lists {len(act)} activations but hidden_layer_sizes has {len(sizes)} hidden layers"
                )
            for i, a in enumerate(act):
                _check_activation(a, f"activation[{i}]")
        else:
            _check_activation(act, "activation")

        opt = self.optimizer
        if isinstance(opt, str):
            if opt.lower() not in OPTIMIZERS:
                raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {opt!r}")
        elif isinstance(opt, dict):
            if opt.get("name", "").lower() not in OPTIMIZERS:
                raise ValueError(f"an optimizer dict needs a 'name' among {', '.join(OPTIMIZERS)}; got {opt!r}")
        elif not isinstance(opt, Optimizer):
            raise TypeError(f"optimizer must be a name, a dict or a nablanet.optim.Optimizer; got {opt!r}")

        lr = self.learning_rate
        if lr is not None and not isinstance(lr, (Schedule, dict)):
            V.positive_number(lr, "learning_rate")
        # the shared checks of nablanet.validate: one answer per kind of value, as in fit() and on the CLI
        V.non_negative_number(self.l1, "l1")
        V.non_negative_number(self.l2, "l2")
        V.Optional(V.positive_int)(self.batch_size, "batch_size")
        V.positive_int(self.epochs, "epochs")
        V.probability(self.dropout, "dropout")
        V.boolean(self.batch_norm, "batch_norm")
        V.boolean(self.early_stopping, "early_stopping")

        if self.init != "auto":
            if not isinstance(self.init, (str, dict)):
                raise TypeError(f"init must be 'auto', an initializer name or a dict; got {self.init!r}")
            try:
                get_initializer(self.init)
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"init is not a valid initializer ({e})") from None

        V.open_fraction(self.validation_fraction, "validation_fraction")
        V.positive_int(self.n_iter_no_change, "n_iter_no_change")
        V.non_negative_number(self.tol, "tol")
        V.boolean(self.adaptive_learning_rate, "adaptive_learning_rate")
        V.boolean(self.warm_start, "warm_start")
        if self.adaptive_learning_rate and _is_full_batch(self.optimizer):
            raise ValueError(f"adaptive_learning_rate needs a first-order optimizer; {self.optimizer!r} has no learning rate")
        scheduled = self.schedule not in (None, "constant") or isinstance(self.learning_rate, Schedule) or (
            isinstance(self.optimizer, Optimizer) and isinstance(getattr(self.optimizer, "lr", None), Schedule))
        if self.adaptive_learning_rate and scheduled:
            # two rules for one rate (scikit-learn's learning_rate takes one of them): the division by 5 and the
            # schedule would compound, with no word
            given = (f"schedule={self.schedule!r}" if self.schedule not in (None, "constant") else
                     f"learning_rate={self.learning_rate!r}" if isinstance(self.learning_rate, Schedule) else
                     f"optimizer={self.optimizer!r}")
            raise ValueError(f"adaptive_learning_rate=True is a schedule of its own, and {given} was given as well; "
                             f"choose one")

        return sizes, V.model_dtype(self.dtype, "dtype")

    # ------------------------------------------------------------------ training
    def _continues(self, incremental):
        """Whether this fit continues the fitted network (``warm_start`` or ``partial_fit``)."""
        return (incremental or self.warm_start) and hasattr(self, "trainer_")

    def _settings(self, names, full_batch=True):
        """The current values of these parameters (``tol`` is a training setting of the full-batch methods only)."""
        return {k: getattr(self, k) for k in names if hasattr(self, k) and (k != "tol" or full_batch)}

    def _check_continuation(self, n_features, sizes, n_outputs, incremental):
        """Raise a clear error when a continued fit would need another network than the fitted one.

        Called before any fitted attribute changes, so a refused call leaves the estimator as it was.
        """
        if not self._continues(incremental):
            return
        how = "partial_fit" if incremental else "warm_start"
        need = [n_features, *sizes, n_outputs]
        if self.model_.sizes != need:
            raise ValueError(
                f"{how} continues the fitted network {self.model_.sizes}, but these data and parameters need "
                f"{need}; fit anew with warm_start=False"
            )
        built = self._built_network
        for k, v in self._settings(_NETWORK_PARAMS).items():
            if not _same(v, built[k]):
                raise ValueError(
                    f"{how} continues the fitted network, built with {k}={built[k]!r}, but {k} is now {v!r}; "
                    f"set it back, or fit anew with warm_start=False"
                )

    def _make_trainer(self, model, loss, full_batch, seed):
        lr = float(self.learning_rate) if _is_real(self.learning_rate) else self.learning_rate
        optimizer = self.optimizer.lower() if isinstance(self.optimizer, str) else self.optimizer
        settings = {k: getattr(self, k) for k in _OPTIMIZER_SETTINGS}
        if full_batch and isinstance(optimizer, str):
            # by name, so that a setting the method does not take is refused as in fit (not as a conflict with
            # an Optimizer object the user never made)
            settings["tol"] = float(self.tol)
        trainer = Trainer(model, loss, optimizer, lr=None if full_batch else lr, l1=float(self.l1),
                          l2=float(self.l2), seed=seed, schedule=self.schedule, _names=_FIT_NAMES, **settings)
        self._built_training = self._settings(_TRAINING_PARAMS, full_batch)
        return trainer

    def _fit_network(self, X, y, n_outputs, output_activation, loss, sizes, dtype, stratify=None, incremental=False):
        """Build (or, with ``warm_start`` or ``incremental``, reuse) ``model_`` and ``trainer_`` and train.

        ``(X, y)`` are validated and encoded, and :meth:`_check_continuation`
        has passed.  ``incremental`` is one epoch for :meth:`partial_fit`,
        without a validation split or stopping rule.  A continued fit whose
        training settings (optimizer, rates, penalties, ...) changed since the
        trainer was built goes on from the same network and history with a
        new optimizer built from them (as scikit-learn's warm start does).
        """
        reuse = self._continues(incremental)
        rng = check_random_state(self.random_state)
        model_seed, trainer_seed, split_seed = (int(s) for s in rng.randint(0, np.iinfo(np.int32).max, size=3))

        X_train, y_train, validation = X, y, None
        if self.early_stopping and not incremental:
            try:
                X_train, X_val, y_train, y_val = train_test_split(
                    X, y, test_size=self.validation_fraction, random_state=split_seed, stratify=stratify
                )
            except ValueError:
                if stratify is None:
                    raise
                # a class too small to stratify on: fall back to a plain random split
                X_train, X_val, y_train, y_val = train_test_split(
                    X, y, test_size=self.validation_fraction, random_state=split_seed
                )
            validation = (X_val, y_val)

        n = X_train.shape[0]
        batch_size = n if self.batch_size is None else min(int(self.batch_size), n)
        full_batch = _is_full_batch(self.optimizer)
        if full_batch:  # lbfgs, newton, hessian_free: all rows, no learning rate (as scikit-learn's lbfgs)
            if incremental:
                raise ValueError(f"partial_fit needs a first-order optimizer; {self.optimizer!r} is a full-batch method")
            batch_size = n
        if self.batch_norm:
            if n < 2:
                raise ValueError(f"batch_norm=True needs at least 2 training samples; got {n} sample")

        if not reuse:
            model = MLP(
                [X.shape[1], *sizes, n_outputs], activation=self.activation, output_activation=output_activation,
                init=self.init, dropout=float(self.dropout), batch_norm=bool(self.batch_norm), seed=model_seed,
                dtype=dtype,
            )
            trainer = self._make_trainer(model, loss, full_batch, trainer_seed)
            self._built_network = self._settings(_NETWORK_PARAMS)
            self.t_ = 0
        else:
            model, trainer = self.model_, self.trainer_
            now = self._settings(_TRAINING_PARAMS, full_batch)
            if now.keys() != self._built_training.keys() or any(not _same(v, self._built_training[k])
                                                                 for k, v in now.items()):
                old = trainer
                trainer = self._make_trainer(model, loss, full_batch, trainer_seed)
                trainer.history, trainer.epoch, trainer.rng = old.history, old.epoch, old.rng
        callbacks, metrics = [], []
        if not incremental:
            adaptive = bool(self.adaptive_learning_rate)
            if self.early_stopping:
                metrics = ["accuracy"] if loss in ("bce", "cross_entropy") else ["r2"]
                callbacks.append(_NoImprovement("val_loss", patience=int(self.n_iter_no_change),
                                                min_delta=float(self.tol), restore_best=True, adaptive=adaptive))
            elif not full_batch:
                callbacks.append(_NoImprovement("loss", patience=int(self.n_iter_no_change), min_delta=float(self.tol),
                                                restore_best=False, adaptive=adaptive))
        before = len(trainer.history)
        history = trainer.fit(
            X_train, y_train, epochs=1 if incremental else int(self.epochs), batch_size=batch_size, shuffle=True,
            validation_data=validation, callbacks=callbacks, metrics=metrics,
        )
        self.model_ = model
        self.trainer_ = trainer
        self.history_ = history
        self.loss_curve_ = [float(v) for v in history["loss"]] if "loss" in history else []
        self.n_iter_ = len(history)
        self.t_ = getattr(self, "t_", 0) + n * (len(history) - before)
        if self.early_stopping and not incremental:
            key = f"val_{metrics[0]}"
            self.validation_scores_ = [float(v) for v in history[key] if v is not None] if key in history else []
            self.best_validation_score_ = max(self.validation_scores_, default=None)
            self.best_loss_ = None
        else:
            self.validation_scores_ = self.best_validation_score_ = None
            # a full-batch method that took no step (converged at the start) reports the cost where it stood
            self.best_loss_ = min(self.loss_curve_) if self.loss_curve_ else float(history.solver["value"])
        return self

    def _forward(self, X):
        """Network outputs for validated ``X``, evaluated in float64.

        The parameters may be float32; evaluating in float64 makes each row's
        output independent of the other rows it is computed with (float32
        matrix products of different shapes round differently).
        """
        model = self.model_
        as64 = lambda a: np.asarray(a, dtype=np.float64)
        out = model.apply(tree_map(as64, model.params), X.astype(np.float64, copy=False), state=tree_map(as64, model.state))
        return np.asarray(out, dtype=np.float64)

    def _validate_X_predict(self, X):
        check_is_fitted(self)
        return _validate_data(self, X, reset=False, dtype=(np.float64, np.float32))

    # ------------------------------------------------------------------ pickling
    def __getstate__(self):
        state = dict(super().__getstate__())
        trainer = state.get("trainer_")
        if isinstance(trainer, Trainer):
            state["trainer_"] = _Checkpoint(_trainer_to_bytes(trainer))
            state.pop("model_", None)
            state.pop("history_", None)
        return state

    def __setstate__(self, state):
        state = dict(state)
        # an estimator pickled by an earlier version lacks the parameters added since: their defaults (what it
        # trained with, as they change nothing by default), so get_params, clone and repr work on it
        for name, param in inspect.signature(type(self).__init__).parameters.items():
            if param.default is not inspect.Parameter.empty:
                state.setdefault(name, param.default)
        if isinstance(state.get("trainer_"), _Checkpoint):
            trainer = _trainer_from_bytes(state["trainer_"].data)
            state.update(trainer_=trainer, model_=trainer.model, history_=trainer.history)
        super().__setstate__(state)


_PARAMS_DOC = """
    hidden_layer_sizes : int or sequence of int, default=(64,)
        Units of each hidden layer; ``()`` gives a network with no hidden
        layer (linear or logistic regression).
    activation : str, dict or sequence of them, default="relu"
        Hidden activation (``"relu"``, ``"tanh"``, ``"sigmoid"``, ``"elu"``,
        ``"gelu"``, ...), one for all hidden layers or one per hidden layer.
    optimizer : str, dict or nablanet.optim.Optimizer, default="adam"
        ``"adam"``, ``"adamw"``, ``"sgd"``, ``"rmsprop"``, ``"adagrad"``; a dict
        such as ``{"name": "sgd", "momentum": 0.9}`` for more hyperparameters.
        An ``Optimizer`` instance brings its own learning rate.  The
        full-batch methods ``"lbfgs"``, ``"newton"``, ``"hessian_free"``
        (scikit-learn's ``solver="lbfgs"``) use all rows and no learning
        rate (``batch_size`` and ``learning_rate`` are ignored); ``epochs``
        is their iteration budget, and they compute in float64.
    learning_rate : float or nablanet.optim.Schedule, default=None
        Step size (or a schedule of it); ``None`` is the optimizer's default
        (3e-3 for Adam).  An ``Optimizer`` object brings its own: giving this
        or any setting below beside one is an error naming both.
    momentum, nesterov, betas, eps, rho, weight_decay, clip_norm : default=None
        Settings of the named optimizer (``momentum`` and ``nesterov`` for
        ``"sgd"``, ``betas=(b1, b2)`` for Adam, ``rho`` for ``"rmsprop"``,
        ``weight_decay`` and ``clip_norm``, the gradient's largest global
        2-norm, for any); ``None`` is the optimizer's default.  A setting the
        optimizer does not take is an error.
    schedule : str, dict or nablanet.optim.Schedule, default=None
        ``"cosine"``, ``"step_decay"`` (also ``"step"``), ``"exponential"`` or
        ``"inverse_time"``, starting at the learning rate and fitted to
        ``epochs``; or a Schedule (or its config dict), such as
        ``nablanet.optim.warmup(nablanet.optim.cosine(0.01, 1000), 100)``,
        which is the learning rate itself.
    l1, l2 : float, default=0.0
        Strengths of the penalties ``l1 * sum|W|`` and ``l2 * sum W^2`` on the
        weight matrices (not the biases), added to the training cost.
    batch_size : int or None, default=32
        Rows per minibatch (capped at the number of training rows); ``None``
        is full-batch gradient descent.  With ``batch_norm=True`` it is raised
        by the least amount that avoids a last batch of a single row.
    epochs : int, default=200
        Passes over the training data (fewer with early stopping).
    dropout : float, default=0.0
        Dropout probability after each hidden layer, in [0, 1).
    batch_norm : bool, default=False
        Batch normalization before each hidden activation.
    init : str or dict, default="auto"
        Weight initializer; ``"auto"`` is U(+-1/sqrt(fan_in)) for weights and
        biases (see :mod:`nablanet.nn.init`).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training rows and stop by
        ``n_iter_no_change`` and ``tol`` on their cost; the parameters of the
        best epoch are restored.
    validation_fraction : float, default=0.1
        Fraction of the rows held out for early stopping, in (0, 1).
    n_iter_no_change : int, default=10
        Training stops once more than ``n_iter_no_change`` epochs in a row
        have missed the best cost so far by ``tol`` (scikit-learn's rule): the
        validation cost with ``early_stopping``, else the training cost.  Not
        used by the full-batch methods, which stop on their own tolerance.
    tol : float, default=1e-4
        The improvement that counts for ``n_iter_no_change`` and
        ``adaptive_learning_rate``; for ``"lbfgs"``, ``"newton"`` and
        ``"hessian_free"`` given by name, their gradient tolerance.
    adaptive_learning_rate : bool, default=False
        Where ``n_iter_no_change`` and ``tol`` would stop training, divide
        the learning rate by 5 and count again; stop when the rate is at
        most 1e-6 (scikit-learn's ``learning_rate="adaptive"`` as its code
        does it; the division is a :class:`~nablanet.train.ReduceLROnPlateau`
        scale).
    warm_start : bool, default=False
        ``fit`` continues from the previous fit's network and optimizer state
        instead of starting anew (the data must have the same features,
        outputs and classes).  Training settings changed since (optimizer,
        learning rate, penalties, ``tol`` of a full-batch method, ...) take
        effect with a new optimizer state, as in scikit-learn; a changed
        network (``activation``, ``dropout``, ``batch_norm``, ``dtype``) is
        an error.  The same holds between ``partial_fit`` calls.
    random_state : int, numpy.random.RandomState or None, default=None
        Seeds the initial weights, the shuffling, dropout and the validation
        split.  An int gives the same fit every time.
    dtype : {"float32", "float64"}, default="float32"
        Precision of the parameters and of training.  Predictions are
        evaluated in float64 from the trained parameters."""

_ATTRS_DOC = """
    model_ : nablanet.nn.MLP
        The trained network.
    trainer_ : nablanet.train.Trainer
        The trainer (optimizer state, RNG, history); ``trainer_.fit`` continues training.
    history_ : nablanet.train.History
        Per-epoch records (``history_["loss"]``, ``history_["val_loss"]`` with
        early stopping, ...).
    loss_curve_ : list of float
        Training cost (penalties included) of each epoch (of all fits, with
        ``warm_start`` or ``partial_fit``).
    best_loss_ : float or None
        The lowest of ``loss_curve_``; None with ``early_stopping``.
    validation_scores_ : list of float or None
        The score (R^2, or accuracy) on the held-out rows after each epoch,
        with ``early_stopping``; None without.
    best_validation_score_ : float or None
        The best of ``validation_scores_``; None without ``early_stopping``.
    n_iter_ : int
        Epochs (iterations of a full-batch method) run.
    t_ : int
        Training rows seen: rows times epochs (the full-batch methods see
        all rows once per iteration).
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Feature names seen in ``fit``; only when ``X`` had string column names."""


# ---------------------------------------------------------------------------------------------- regressor


class NeuralNetRegressor(RegressorMixin, _BaseNeuralNet):
    __doc__ = f"""A feed-forward neural network regressor (one or several targets).

    The network is ``n_features -> hidden_layer_sizes -> n_outputs`` with a
    linear output layer, trained by minimizing ``loss`` with ``optimizer``.
    Inputs are not scaled for you: put a ``StandardScaler`` in front of it (and
    keep the targets of order one) for fast training.

    Parameters
    ----------
    loss : {{"mse", "mae", "huber"}}, default="mse"
        Training cost: mean squared error, mean absolute error, or Huber
        (quadratic within 1 of the target, linear beyond).{_PARAMS_DOC}

    Attributes
    ----------{_ATTRS_DOC}
    n_outputs_ : int
        Number of targets.

    See Also
    --------
    NeuralNetClassifier : the classifier.

    Examples
    --------
    >>> import numpy as np
    >>> from nablanet.estimators import NeuralNetRegressor
    >>> X = np.linspace(-1, 1, 200)[:, None]
    >>> reg = NeuralNetRegressor(hidden_layer_sizes=(32,), activation="tanh", learning_rate=0.01,
    ...                          epochs=100, random_state=0).fit(X, X[:, 0] ** 2)
    >>> reg.predict(X[:2]).shape
    (2,)
    """

    def __init__(self, hidden_layer_sizes=(64,), activation="relu", loss="mse", optimizer="adam", learning_rate=None,
                 l1=0.0, l2=0.0, batch_size=32, epochs=200, dropout=0.0, batch_norm=False, init="auto",
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=10, tol=1e-4,
                 adaptive_learning_rate=False, warm_start=False, random_state=None, dtype="float32",
                 momentum=None, nesterov=None, betas=None, eps=None, weight_decay=None, schedule=None, rho=None,
                 clip_norm=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.loss = loss
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.l1 = l1
        self.l2 = l2
        self.batch_size = batch_size
        self.epochs = epochs
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.init = init
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.adaptive_learning_rate = adaptive_learning_rate
        self.warm_start = warm_start
        self.random_state = random_state
        self.dtype = dtype
        self.momentum = momentum
        self.nesterov = nesterov
        self.betas = betas
        self.eps = eps
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.rho = rho
        self.clip_norm = clip_norm

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X, y):
        """Train the network on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets; ``predict`` returns the same number of dimensions.

        Returns
        -------
        self : NeuralNetRegressor
        """
        return self._fit_regression(X, y, incremental=False)

    @available_if(_first_order)
    def partial_fit(self, X, y):
        """Train one epoch on ``(X, y)``, continuing from the current network (built on the first call).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        self : NeuralNetRegressor
        """
        return self._fit_regression(X, y, incremental=True)

    def _fit_regression(self, X, y, incremental):
        sizes, dtype = self._check_params()
        if self.loss not in _REGRESSION_LOSSES:
            raise ValueError(f"loss must be one of {', '.join(_REGRESSION_LOSSES)}; got {self.loss!r}")
        continues = self._continues(incremental)
        X, y = _validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=(np.float64, np.float32),
                             reset=not continues)
        y2 = y.reshape(-1, 1) if y.ndim == 1 else y
        if continues and y2.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {y2.shape[1]} targets but the network was fitted with {self.n_outputs_}; "
                             f"fit anew with warm_start=False")
        self._check_continuation(X.shape[1], sizes, y2.shape[1], incremental)
        if not continues:  # a continued fit keeps the shape of predict's output from the first
            self._y_ndim, self.n_outputs_ = y.ndim, y2.shape[1]
        return self._fit_network(X, y2, self.n_outputs_, "identity", self.loss, sizes, dtype, incremental=incremental)

    def predict(self, X):
        """Predicted targets.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs), float64
            One-dimensional when ``y`` was one-dimensional in ``fit``.
        """
        X = self._validate_X_predict(X)
        out = self._forward(X)
        return out.ravel() if self._y_ndim == 1 else out


# ---------------------------------------------------------------------------------------------- classifier


class NeuralNetClassifier(ClassifierMixin, _BaseNeuralNet):
    __doc__ = f"""A feed-forward neural network classifier (two or more classes, labels of any type).

    Two classes: one sigmoid output unit trained with binary cross-entropy;
    more: one softmax unit per class trained with softmax cross-entropy (both
    from logits).  Labels are encoded with a ``LabelEncoder``, so ``classes_``
    is sorted and ``predict_proba``'s columns follow it.

    Parameters
    ----------{_PARAMS_DOC}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.{_ATTRS_DOC}
    n_outputs_ : int
        Output units of the network: 1 for two classes, ``n_classes`` otherwise
        (as in scikit-learn's ``MLPClassifier``).

    See Also
    --------
    NeuralNetRegressor : the regressor.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from nablanet.estimators import NeuralNetClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = make_pipeline(StandardScaler(), NeuralNetClassifier(hidden_layer_sizes=(16,), learning_rate=0.01,
    ...                                                           epochs=50, random_state=0)).fit(X, y)
    >>> clf.predict_proba(X[:1]).shape
    (1, 3)
    """

    def __init__(self, hidden_layer_sizes=(64,), activation="relu", optimizer="adam", learning_rate=None,
                 l1=0.0, l2=0.0, batch_size=32, epochs=200, dropout=0.0, batch_norm=False, init="auto",
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=10, tol=1e-4,
                 adaptive_learning_rate=False, warm_start=False, random_state=None, dtype="float32",
                 momentum=None, nesterov=None, betas=None, eps=None, weight_decay=None, schedule=None, rho=None,
                 clip_norm=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.l1 = l1
        self.l2 = l2
        self.batch_size = batch_size
        self.epochs = epochs
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.init = init
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.adaptive_learning_rate = adaptive_learning_rate
        self.warm_start = warm_start
        self.random_state = random_state
        self.dtype = dtype
        self.momentum = momentum
        self.nesterov = nesterov
        self.betas = betas
        self.eps = eps
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.rho = rho
        self.clip_norm = clip_norm

    def fit(self, X, y):
        """Train the network on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels (numbers, strings, any hashable and sortable type);
            at least two classes.

        Returns
        -------
        self : NeuralNetClassifier
        """
        sizes, dtype = self._check_params()
        continues = self._continues(False)
        X, y = _validate_data(self, X, y, dtype=(np.float64, np.float32), reset=not continues)
        check_classification_targets(y)
        classes = LabelEncoder().fit(y).classes_
        if continues and not np.array_equal(classes, self.classes_):
            raise ValueError(
                f"warm_start continues a network fitted on the classes {self.classes_.tolist()}, but y has the "
                f"classes {classes.tolist()}; fit anew with warm_start=False"
            )
        self._check_continuation(X.shape[1], sizes, _n_outputs(classes), False)
        self.classes_ = classes
        codes, args = self._encode(y, dtype)
        return self._fit_network(X, *args, sizes, dtype, stratify=codes)

    @available_if(_first_order)
    def partial_fit(self, X, y, classes=None):
        """Train one epoch on ``(X, y)``, continuing from the current network (built on the first call).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like, optional
            All the classes the calls will see; required on the first call
            (a batch need not contain every class), optional and checked
            afterwards.

        Returns
        -------
        self : NeuralNetClassifier
        """
        sizes, dtype = self._check_params()
        first = not hasattr(self, "trainer_")
        if classes is not None:
            classes = LabelEncoder().fit(np.asarray(classes)).classes_
        if first:
            if classes is None:
                raise ValueError("partial_fit needs classes= (every class the calls will see) on its first call")
        elif classes is not None and not np.array_equal(classes, self.classes_):
            raise ValueError(f"classes={classes.tolist()} differs from the classes of the first call, "
                             f"{self.classes_.tolist()}")
        else:
            classes = self.classes_
        X, y = _validate_data(self, X, y, dtype=(np.float64, np.float32), reset=first)
        check_classification_targets(y)
        unknown = np.setdiff1d(y, classes)
        if unknown.size:
            raise ValueError(f"y has labels {unknown.tolist()} that are not among classes={classes.tolist()}")
        self._check_continuation(X.shape[1], sizes, _n_outputs(classes), True)
        self.classes_ = classes
        _, args = self._encode(y, dtype)
        return self._fit_network(X, *args, sizes, dtype, incremental=True)

    def _encode(self, y, dtype):
        """Codes of ``y`` in ``classes_``, and (targets, n_outputs, output activation, loss) for training."""
        n_classes = len(self.classes_)
        if n_classes < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 classes in y; got 1 class ({self.classes_[0]!r})"
            )
        codes = np.searchsorted(self.classes_, y)
        if n_classes == 2:
            self.n_outputs_ = 1
            return codes, (codes.astype(dtype), 1, "sigmoid", "bce")
        self.n_outputs_ = n_classes
        return codes, (codes.astype(np.int64), n_classes, "softmax", "cross_entropy")

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes), float64
            Columns in the order of ``classes_``; each row sums to one.
        """
        X = self._validate_X_predict(X)
        out = self._forward(X)
        if len(self.classes_) == 2:
            p = out[:, 0]
            out = np.column_stack([1.0 - p, p])
        return out / out.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        """Logarithms of :meth:`predict_proba` (``-inf`` where a probability is zero).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Predicted class labels: the most probable class of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]
