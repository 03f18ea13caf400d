"""Learning-rate schedules: ``schedule(t) -> learning rate`` at optimizer step t = 0, 1, 2, ..."""

from __future__ import annotations

import inspect
import math
import numbers

from .. import validate as V

__all__ = ["Schedule", "constant", "step_decay", "exponential", "inverse_time", "cosine", "warmup", "get_schedule",
           "for_run", "run_schedule", "RUN_SCHEDULES", "RUN_SCHEDULE_ALIASES"]


class Schedule:
    """A learning rate as a function of the step count, with a JSON-able config."""

    def __init__(self, name, fn, **params):
        self.name, self._fn, self.params = name, fn, params

    def __call__(self, t):
        return self._fn(t)

    def __repr__(self):
        return f"{self.name}({', '.join(f'{k}={v}' for k, v in self.params.items())})"

    def config(self):
        return {"name": self.name, **{k: (v.config() if isinstance(v, Schedule) else v) for k, v in self.params.items()}}


def constant(lr):
    """The same rate at every step."""
    lr = V.positive_number(lr, "lr")
    return Schedule("constant", lambda t: lr, lr=lr)


def step_decay(lr, step_size, gamma=0.5):
    """``lr * gamma ** (t // step_size)``."""
    lr, step_size = V.positive_number(lr, "lr"), V.positive_int(step_size, "step_size")
    gamma = V.positive_number(gamma, "gamma")
    return Schedule("step_decay", lambda t: lr * gamma ** (t // step_size), lr=lr, step_size=step_size, gamma=gamma)


def exponential(lr, gamma):
    """``lr * gamma ** t``."""
    lr, gamma = V.positive_number(lr, "lr"), V.positive_number(gamma, "gamma")
    return Schedule("exponential", lambda t: lr * gamma**t, lr=lr, gamma=gamma)


def inverse_time(t0, t1):
    """The course's schedule ``t0 / (t + t1)`` (t counts steps: epoch * batches + batch)."""
    t0, t1 = V.positive_number(t0, "t0"), V.positive_number(t1, "t1")
    return Schedule("inverse_time", lambda t: t0 / (t + t1), t0=t0, t1=t1)


def cosine(lr, total_steps, min_lr=0.0):
    """Cosine annealing from ``lr`` to ``min_lr`` over ``total_steps``, then ``min_lr``."""
    lr, total_steps = V.positive_number(lr, "lr"), V.positive_int(total_steps, "total_steps")
    min_lr = V.non_negative_number(min_lr, "min_lr")

    def f(t):
        if t >= total_steps:
            return min_lr
        return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * t / total_steps))

    return Schedule("cosine", f, lr=lr, total_steps=total_steps, min_lr=min_lr)


def warmup(schedule, warmup_steps):
    """Linear warm-up: ``schedule(t) * (t + 1) / warmup_steps`` for the first steps, then ``schedule(t)``."""
    base = get_schedule(schedule)
    warmup_steps = V.positive_int(warmup_steps, "warmup_steps")
    return Schedule(
        "warmup", lambda t: base(t) * min(1.0, (t + 1) / warmup_steps), schedule=base, warmup_steps=warmup_steps
    )


_FACTORIES = {
    "constant": constant, "step_decay": step_decay, "exponential": exponential,
    "inverse_time": inverse_time, "cosine": cosine, "warmup": warmup,
}


RUN_SCHEDULES = ("constant", "step_decay", "exponential", "inverse_time", "cosine")
RUN_SCHEDULE_ALIASES = {"step": "step_decay"}  # the name step_decay had in fit, Trainer, the estimators and the CLI


class _RunSchedule(V.Choice):
    """The name of a schedule fitted to a run (:data:`RUN_SCHEDULES`, or an alias of one), normalized.

    The schedules that take settings of their own (``warmup``) are not fitted by name; the error says how
    they are given."""

    def __init__(self):
        super().__init__(RUN_SCHEDULES, normalize=lambda s: RUN_SCHEDULE_ALIASES.get(s, s))

    def __call__(self, value, name=None):
        if isinstance(value, str) and value in _FACTORIES and value not in RUN_SCHEDULES:
            takes = ", ".join(inspect.signature(_FACTORIES[value]).parameters)
            raise V.InvalidValueError(
                f"{name or 'schedule'}: {value!r} is not fitted to a run by name, it takes settings of its own "
                f"({takes}); give it as a Schedule, such as nablanet.optim.{value}(...), or choose from "
                f"{', '.join(RUN_SCHEDULES)}")
        return super().__call__(value, name)


run_schedule = _RunSchedule()


def for_run(name, lr, total_steps, steps_per_epoch=1):
    """A named schedule fitted to a run of ``total_steps`` optimizer steps, starting at ``lr``.

    ``"constant"``; ``"step_decay"`` (also ``"step"``): times 0.3 after each third of the run;
    ``"exponential"``: down to lr/100 at the end; ``"inverse_time"``: the course's ``t0 / (t + t1)`` halving
    the rate after 50 epochs; ``"cosine"``: down to lr/100 at the end.
    """
    if isinstance(name, Schedule):
        return name
    name = run_schedule(name, "schedule")
    lr, total = float(lr), max(int(total_steps), 1)
    if name == "constant":
        return constant(lr)
    if name == "step_decay":
        return step_decay(lr, max(1, total // 3), 0.3)
    if name == "exponential":
        return exponential(lr, 0.01 ** (1.0 / total))
    if name == "inverse_time":
        return inverse_time(lr * 50 * steps_per_epoch, 50 * steps_per_epoch)
    return cosine(lr, total, lr / 100)


def get_schedule(spec):
    """A schedule from a number (constant), a Schedule, or a config dict ``{"name": ..., ...}``."""
    if isinstance(spec, Schedule):
        return spec
    if isinstance(spec, numbers.Real) and not isinstance(spec, bool):
        return constant(V.positive_number(spec, "learning rate"))
    if isinstance(spec, dict):
        spec = dict(spec)
        name = spec.pop("name", None)
        if not isinstance(name, str) or name not in _FACTORIES:
            raise V.InvalidValueError(f"unknown schedule {name!r}; choose from {', '.join(_FACTORIES)}" if name is not None
                                      else f"a schedule dict needs a 'name', one of {', '.join(_FACTORIES)}")
        takes = inspect.signature(_FACTORIES[name]).parameters
        missing = [k for k, p in takes.items() if p.default is p.empty and k not in spec]
        unknown = [k for k in spec if k not in takes]
        if missing or unknown:
            keys = lambda ks: ", ".join(map(repr, ks))
            wrong = [f"missing key {keys(missing)}"] * bool(missing) + [f"unknown key {keys(unknown)}"] * bool(unknown)
            usage = ", ".join(k if p.default is p.empty else f"{k} (default {p.default})" for k, p in takes.items())
            raise V.InvalidValueError(f"schedule {name!r}: {'; '.join(wrong)}; it takes name, {usage}")
        return _FACTORIES[name](**spec)
    raise V.InvalidTypeError(f"learning rate must be a number, a Schedule or a dict, not {type(spec).__name__}")
