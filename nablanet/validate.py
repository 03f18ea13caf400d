"""Validation of user input: one place per kind of value, shared by every entry point.

The Python API (``fit``, ``Trainer``, optimizers, layers, data loaders), the
scikit-learn estimators (at fit time), every command-line flag and every key
of a TOML configuration check their values with the objects below, so a bad
value gets the same answer wherever it comes in: one error that names the
setting, the value, and what was expected::

    >>> positive_number(float("nan"), "lr")
    Traceback (most recent call last):
    InvalidValueError: lr: expected a positive finite number, got nan

A check is called as ``check(value, name)`` on a Python value and returns the
value normalized (a float, an int, a list of ints, ...); ``check.parse(text,
name)`` reads the same kind of value from text (a flag, a grid value).
:func:`flag` turns a check into an ``argparse`` ``type=``.

Nothing is coerced silently: ``2.5`` is not a whole number (it is refused, not
truncated), ``"no"`` is not a boolean, NaN and infinities are not numbers of
any range.  Whole numbers are integers: a float, even ``2.0``, is refused.

The error classes are subclasses of :class:`ValueError` and :class:`TypeError`,
so ``except ValueError`` keeps working; :class:`NablanetError` catches them all.
This module is at the bottom of the house: it imports nothing from nablanet.
"""

from __future__ import annotations

import math
import numbers
import os

import numpy as np

__all__ = [
    "NablanetError", "InvalidValueError", "InvalidTypeError", "ConfigError", "FileFormatError", "MissingFileError",
    "Check", "Number", "Whole", "Choice", "Boolean", "Sizes", "Optional", "Seed", "Path", "FloatDtype",
    "positive_number", "non_negative_number", "finite_number", "probability", "open_fraction",
    "positive_int", "non_negative_int", "boolean", "sizes", "seed",
    "existing_file", "existing_dir", "output_dir", "output_file", "MODEL_DTYPES", "model_dtype",
    "flag", "check_settings", "affordable", "physical_memory", "finite_array", "as_array",
]


# --------------------------------------------------------------------------------------------- errors


class NablanetError(Exception):
    """Base of the errors nablanet raises for bad input and damaged files."""


class InvalidValueError(NablanetError, ValueError):
    """A value of the right kind but outside what is allowed (NaN, negative, 2.5 epochs, unknown name)."""


class InvalidTypeError(NablanetError, TypeError):
    """A value of the wrong kind (a string where a number belongs, a number where a list belongs)."""


class ConfigError(InvalidValueError):
    """A configuration that cannot run, said in one sentence."""


class FileFormatError(InvalidValueError):
    """A file that cannot be used: damaged, truncated, of another format, or describing something impossible.

    The message starts with the file's path; ``error.path`` holds it.
    """

    def __init__(self, path, problem):
        self.path = os.fspath(path)
        super().__init__(f"{self.path}: {problem}")


class MissingFileError(NablanetError, FileNotFoundError, ValueError):
    """A file or folder that should exist and does not (a FileNotFoundError and a ValueError)."""

    def __init__(self, message):
        super().__init__(message)

    def __str__(self):
        return self.args[0]


def _where(name):
    return f"{name}: " if name else ""


def _show(value):
    if isinstance(value, (np.generic, np.ndarray)) and np.ndim(value) == 0:
        value = value.item()
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --------------------------------------------------------------------------------------------- checks


class Check:
    """A kind of value: ``check(value, name)`` validates and normalizes; ``parse(text, name)`` reads text."""

    expected = "a value"

    def __call__(self, value, name=None):
        raise NotImplementedError

    def parse(self, text, name=None):
        return self(text, name)

    def bad(self, value, name, cls=InvalidValueError, why=""):
        return cls(f"{_where(name)}expected {self.expected}, got {_show(value)}{why}")

    def __repr__(self):
        return f"<{type(self).__name__}: {self.expected}>"


def _as_scalar(value):
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value[()]
    return value


def _plain_text(text):
    """``text`` stripped, refused (ValueError) unless written in plain ASCII without underscores.

    Python's ``int``/``float`` read "1_0" as 10 and Arabic-Indic or full-width digits as numbers; a flag or
    grid value written that way is a typo or a pasted glyph, never silently taken as a different number.
    """
    s = str(text).strip()
    if not s.isascii() or "_" in s:
        raise ValueError(s)
    return s


def as_array(value, name):
    """``numpy.asarray(value)``; a value NumPy cannot make an array of (ragged lists) is one error naming ``name``."""
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as e:
        why = "rows of different lengths" if "inhomogeneous" in str(e) else str(e).split(". ")[0]
        raise InvalidValueError(f"{name} cannot be made an array ({why})") from None


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


class Number(Check):
    """A finite real number in a range; returns a float.  Bounds are closed unless marked open."""

    def __init__(self, low=None, high=None, low_open=False, high_open=False, expected=None):
        self.low, self.high, self.low_open, self.high_open = low, high, low_open, high_open
        self.expected = expected or self._describe()

    def _describe(self):
        lo, hi = self.low, self.high
        if lo is None and hi is None:
            return "a finite number"
        if hi is None:
            return f"a number {'>' if self.low_open else '>='} {lo:g}"
        if lo is None:
            return f"a number {'<' if self.high_open else '<='} {hi:g}"
        return f"a number in {'(' if self.low_open else '['}{lo:g}, {hi:g}{')' if self.high_open else ']'}"

    def _in_range(self, v):
        if self.low is not None and (v <= self.low if self.low_open else v < self.low):
            return False
        if self.high is not None and (v >= self.high if self.high_open else v > self.high):
            return False
        return True

    def __call__(self, value, name=None):
        value = _as_scalar(value)
        if not _is_real(value):
            raise self.bad(value, name, InvalidTypeError)
        try:
            v = float(value)
        except OverflowError:  # an integer beyond any float (10**400): not a finite number
            raise self.bad(value, name) from None
        if not math.isfinite(v) or not self._in_range(v):
            raise self.bad(value, name)
        return v

    def parse(self, text, name=None):
        try:
            value = float(_plain_text(text))
        except ValueError:
            raise self.bad(text, name) from None
        return self(value, name)


class Whole(Check):
    """A whole number in ``[low, high]``: a Python or NumPy integer; returns an int.

    Floats are refused, integral or not (``2.5`` is never truncated, and
    ``2.0`` is refused too, as scikit-learn does), so a count is always exact.
    """

    def __init__(self, low=None, high=None, expected=None):
        self.low, self.high = low, high
        if expected is None:
            if low is not None and high is not None:
                expected = f"an integer in {low}..{high}"
            elif low is not None:
                expected = f"an integer >= {low}"
            else:
                expected = "an integer"
        self.expected = expected

    def __call__(self, value, name=None):
        value = _as_scalar(value)
        if not _is_real(value):
            raise self.bad(value, name, InvalidTypeError)
        if not isinstance(value, numbers.Integral):
            raise self.bad(value, name, why=" (a float; nablanet never rounds: give an integer)")
        v = int(value)
        if (self.low is not None and v < self.low) or (self.high is not None and v > self.high):
            raise self.bad(value, name)
        return v

    def parse(self, text, name=None):
        try:
            value = int(_plain_text(text))
        except ValueError:
            raise self.bad(text, name) from None
        return self(value, name)


class Choice(Check):
    """One name from a fixed set; the message lists the choices.  ``normalize`` maps text before the lookup."""

    def __init__(self, choices, normalize=None, what="one of"):
        self.choices = tuple(choices)
        self.normalize = normalize
        self.expected = f"{what} {', '.join(map(str, self.choices))}"

    def __call__(self, value, name=None):
        if not isinstance(value, str):
            raise self.bad(value, name, InvalidTypeError)
        key = self.normalize(value) if self.normalize else value
        if key not in self.choices:
            raise self.bad(value, name)
        return key


class Boolean(Check):
    """True or False (a TOML boolean, a Python bool); text may say true/false, yes/no, on/off, 1/0."""

    expected = "true or false"
    _WORDS = {"true": True, "false": False, "yes": True, "no": False, "on": True, "off": False, "1": True, "0": False}

    def __call__(self, value, name=None):
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        raise self.bad(value, name, InvalidTypeError)

    def parse(self, text, name=None):
        key = str(text).strip().lower()
        if key not in self._WORDS:
            raise self.bad(text, name)
        return self._WORDS[key]


class Sizes(Check):
    """A list of positive whole numbers (layer sizes); one number is a list of one.

    Text separates the sizes by commas or ``x`` (``"64,32"``, ``"64x32"``).
    """

    def __init__(self, min_len=0, low=1, expected=None, high=None):
        self.min_len, self.item = min_len, Whole(low, high)
        self.expected = expected or (
            "layer sizes like 64,32" + (f" (at least {min_len} of them)" if min_len else " (or none)")
            + (f", each at most {high}" if high is not None else ""))

    def __call__(self, value, name=None):
        value = _as_scalar(value)
        if _is_real(value):
            value = [value]
        none = "; [] for none" if self.min_len == 0 else ""  # the text's spellings of none (0, none) are text's
        if isinstance(value, (str, bytes)):  # text is read by parse (the flags); a value is a list
            raise self.bad(value, name, InvalidTypeError, why=f" (a string; here the sizes are a list, such as [64, 32]{none})")
        if isinstance(value, dict) or not hasattr(value, "__iter__"):
            raise self.bad(value, name, InvalidTypeError)
        out = []
        for i, v in enumerate(value):
            try:
                out.append(self.item(v))
            except (InvalidValueError, InvalidTypeError):
                zero = none if _is_real(v) and not isinstance(v, bool) and v == 0 else ""
                raise self.bad(list(value) if not isinstance(value, np.ndarray) else value.tolist(), name,
                               why=f" (item {i} is {_show(v)}{zero})") from None
        if len(out) < self.min_len:
            raise self.bad(out, name)
        return out

    def parse(self, text, name=None):
        s = str(text).strip()
        if s.lower() in ("", "none", "0") and self.min_len == 0:
            return []  # no hidden layer
        parts = s.replace("x", ",").split(",")  # an empty part (64,,32 or a lone ',') is a mistake, not a size
        try:
            if not all(p.strip() for p in parts):
                raise InvalidValueError("empty size")
            return self([self.item.parse(p) for p in parts], name)
        except (InvalidValueError, InvalidTypeError):
            raise self.bad(text, name) from None


class Optional(Check):
    """``None`` or what ``inner`` accepts; text ``none`` (any case) or an empty string is None."""

    def __init__(self, inner, none_words=("none", "")):
        self.inner, self.none_words = inner, none_words
        self.expected = f"{inner.expected} or none"

    def __call__(self, value, name=None):
        if value is None:
            return None
        try:
            return self.inner(value, name)
        except (InvalidValueError, InvalidTypeError) as e:
            raise self.bad(value, name, type(e)) from None

    def parse(self, text, name=None):
        if str(text).strip().lower() in self.none_words:
            return None
        try:
            return self.inner.parse(text, name)
        except (InvalidValueError, InvalidTypeError) as e:
            raise self.bad(text, name, type(e)) from None


class Seed(Whole):
    """A random seed: None, a non-negative whole number, or (Python API) a ``numpy.random.Generator``, a
    ``SeedSequence`` or a bit generator (``PCG64(0)``)."""

    def __init__(self, allow_generator=True, high=None):
        super().__init__(0, high, expected=(f"an integer in 0..{high}" if high is not None else "an integer >= 0") + (
            ", None or a numpy.random.Generator" if allow_generator else ""))
        self.allow_generator = allow_generator

    def __call__(self, value, name=None):
        if value is None or (self.allow_generator and isinstance(
                value, (np.random.Generator, np.random.SeedSequence, np.random.BitGenerator))):
            return value  # (a SeedSequence or a bit generator: what numpy.random.default_rng takes besides ints)
        return super().__call__(value, name)


class Path(Check):
    """A path on disk, by role.

    ``kind``: ``"file"`` (an existing file, not a folder), ``"dir"`` (an existing
    folder), ``"out_dir"`` (a folder that may not exist yet; refused when it is a
    file or sits under one), ``"out_file"`` (a file to write: not a folder, and
    its folder exists).  Returns the path as a string.
    """

    _EXPECTED = {"file": "an existing file", "dir": "an existing folder",
                 "out_dir": "a folder (existing or to be made)", "out_file": "a file path in an existing folder"}

    def __init__(self, kind):
        if kind not in self._EXPECTED:
            raise ValueError(f"unknown path kind {kind!r}")
        self.kind, self.expected = kind, self._EXPECTED[kind]

    def __call__(self, value, name=None):
        if not isinstance(value, (str, os.PathLike)):
            raise self.bad(value, name, InvalidTypeError)
        p = os.fspath(value)
        if not p or "\0" in p:
            raise self.bad(value, name)
        w = _where(name)
        full = os.path.expanduser(p)
        if self.kind == "file":
            if os.path.isdir(full):
                raise InvalidValueError(f"{w}{p!r} is a folder; expected a file")
            if not os.path.isfile(full):
                raise MissingFileError(f"{w}no file {p!r}")
            if not os.access(full, os.R_OK):
                raise InvalidValueError(f"{w}{p!r} cannot be read (permission denied)")
        elif self.kind == "dir":
            if os.path.exists(full) and not os.path.isdir(full):
                raise InvalidValueError(f"{w}{p!r} is a file; expected a folder")
            if not os.path.isdir(full):
                raise MissingFileError(f"{w}no folder {p!r}")
        elif self.kind == "out_dir":
            if os.path.exists(full) and not os.path.isdir(full):
                raise InvalidValueError(f"{w}{p!r} exists and is not a folder; give a folder to write into")
            probe = os.path.abspath(full)
            while not os.path.exists(probe):
                probe = os.path.dirname(probe)
            if not os.path.isdir(probe):
                raise InvalidValueError(f"{w}cannot make the folder {p!r}: {probe!r} is a file")
            if not os.access(probe, os.W_OK | os.X_OK):
                raise InvalidValueError(f"{w}cannot write into {probe!r} (permission denied)")
        else:  # out_file
            if os.path.isdir(full):
                raise InvalidValueError(f"{w}{p!r} is a folder; expected a file name to write")
            folder = os.path.dirname(os.path.abspath(full))
            if not os.path.isdir(folder):
                raise InvalidValueError(f"{w}cannot write {p!r}: no folder {folder!r}")
            if not os.access(folder, os.W_OK | os.X_OK):
                raise InvalidValueError(f"{w}cannot write into {folder!r} (permission denied)")
        return p


# --------------------------------------------------------------------------------------------- the kinds

#: The dtypes a network is built, trained and checkpointed in (MLP, Sequential, the estimators, checkpoints).
MODEL_DTYPES = ("float32", "float64")


class FloatDtype(Check):
    """A network's dtype, one of :data:`MODEL_DTYPES` (a name or a NumPy dtype); returns the ``numpy.dtype``."""

    expected = " or ".join(repr(d) for d in MODEL_DTYPES)

    def __call__(self, value, name=None):
        try:
            if value is None:
                raise TypeError
            dtype = np.dtype(value)
        except (TypeError, ValueError):
            raise self.bad(value, name, InvalidTypeError) from None
        if dtype.name not in MODEL_DTYPES:
            raise self.bad(value, name)
        return dtype


positive_number = Number(0, low_open=True)
non_negative_number = Number(0)
finite_number = Number()
probability = Number(0, 1, high_open=True)  # dropout, momentum, betas: [0, 1)
open_fraction = Number(0, 1, low_open=True, high_open=True)  # test and validation fractions: (0, 1)
positive_int = Whole(1)
non_negative_int = Whole(0)
boolean = Boolean()
sizes = Sizes()
seed = Seed()
existing_file = Path("file")
existing_dir = Path("dir")
output_dir = Path("out_dir")
output_file = Path("out_file")
model_dtype = FloatDtype()


def finite_array(a, name, dtype=None):
    """``a`` (an array of numbers) cast to ``dtype``, refused if any entry is NaN or infinite after the cast.

    The one check of data arrays (training data, targets, inputs to predict): a value that is finite in
    float64 but beyond float32's range (1e300 into a float32 model) is refused as well, naming where,
    instead of becoming inf with a RuntimeWarning and training a NaN model.
    """
    a = np.asarray(a)
    if dtype is not None and a.dtype != dtype:
        with np.errstate(over="ignore", invalid="ignore"):
            cast = a.astype(dtype)
    else:
        cast = a
    if cast.dtype.kind in "fc" and not np.isfinite(cast).all():
        bad = ~np.isfinite(cast)
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        first = a[where] if a.ndim else a[()]
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            raise InvalidValueError(f"{name} contains NaN or inf (first at index {where})")
        raise InvalidValueError(f"{name} holds {_show(first)} at index {where}, beyond the range of "
                                f"{np.dtype(dtype).name} (the model's dtype); scale the data or use float64")
    return cast


def physical_memory():
    """Bytes of memory this machine has (None where the system does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def affordable(n_values, itemsize, what):
    """Refuse, before allocating, ``n_values`` numbers of ``itemsize`` bytes that exceed this machine's memory.

    A size typed with a few zeros too many (a layer of 10**9 units) is one error naming ``what`` and the
    bytes, instead of minutes of swapping or an out-of-memory kill.
    """
    need, have = int(n_values) * int(itemsize), physical_memory()
    if have is not None and need > have:
        raise InvalidValueError(f"{what} needs {need / 2**30:.1f} GiB for its numbers; this machine has "
                                f"{have / 2**30:.1f} GiB")


# --------------------------------------------------------------------------------------------- wiring


def flag(check):
    """An argparse ``type=`` reading the flag's text with ``check``; argparse names the flag in the error."""
    import argparse

    def parse(text):
        try:
            return check.parse(text)
        except (InvalidValueError, InvalidTypeError, MissingFileError) as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parse.__name__ = type(check).__name__.lower()
    return parse


def check_settings(values, schema, where=None):
    """Validate a mapping of settings (a TOML table, a config dict) against ``schema`` (name -> Check).

    Returns a new dict of normalized values.  Names missing from ``schema``
    are refused (listing the known ones); each error names the setting, its
    value and what was expected, prefixed by ``where`` (e.g. the file).
    """
    prefix = f"{where}: " if where else ""
    if not isinstance(values, dict):
        raise InvalidTypeError(f"{prefix}expected a table of settings, got {_show(values)}")
    unknown = sorted(str(k) for k in values if k not in schema)
    if unknown:
        raise ConfigError(f"{prefix}unknown setting(s) {', '.join(unknown)}; known: {', '.join(schema)}")
    out = {}
    for k, v in values.items():
        try:
            out[k] = schema[k](v, f"setting {k}")
        except InvalidTypeError as e:
            raise InvalidTypeError(f"{prefix}{e}") from None
        except (InvalidValueError, MissingFileError) as e:
            raise ConfigError(f"{prefix}{e}") from None
    return out
