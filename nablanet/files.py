"""Writing files so that an interruption never leaves half of one, and reading JSON sidecars safely.

Every file nablanet writes into a run or sweep folder goes through
:func:`atomic_path` (or the helpers built on it): the content is written to a
temporary file in the same folder (named ``.nablanet-tmp-*``), flushed to disk
(``fsync``) when it is the state a run resumes from (its checkpoints, which hold
its settings too), and renamed over the target with ``os.replace``, which is atomic
on POSIX and Windows.  A reader therefore sees the old file or the new one,
never a mixture; a process killed mid-write leaves at most a temporary file,
which :func:`remove_stale_temps` deletes when the folder is next used.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets

from .validate import FileFormatError, MissingFileError

__all__ = ["TEMP_PREFIX", "atomic_path", "atomic_write_bytes", "atomic_write_text", "atomic_write_json", "dumps",
           "remove_stale_temps", "read_json"]

TEMP_PREFIX = ".nablanet-tmp-"
_OLD_TEMP = (".nablanet-", ".tmp")  # the checkpoint writer's earlier naming


@contextlib.contextmanager
def atomic_path(path, durable=True):
    """Yield a temporary path next to ``path``; on success it replaces ``path`` atomically.

    The temporary name keeps ``path``'s extension (so writers that choose a
    format by extension, such as matplotlib, still work).  On any exception,
    including KeyboardInterrupt, the temporary file is removed and ``path``
    is left as it was.

    ``durable`` (the default) also flushes the file to the disk before the
    rename (fsync), so that a power failure or an operating-system crash
    leaves the old file or the new one whole, never the new name on a file
    whose contents had not reached the disk.  The folder is not flushed after
    the rename: the rename reaches the disk with the file system's next commit
    (ext4: within 5 s; btrfs, XFS: about 30 s), and until then a crash (on a
    journaling file system) leaves the old file, whole, as
    if the write had come a moment later (a flush of the folder costs as much
    as the file's, some tenths of a millisecond).  Without ``durable``, the
    replacement is as atomic for a process stopped or killed at any moment,
    and costs the flush less: for files a command makes again, such as a run
    folder's metrics and plots (rewritten by ``--resume``), not for the state
    a run resumes from.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f"{TEMP_PREFIX}{secrets.token_hex(6)}-{os.path.basename(path)}")
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        # The error names the file asked for, never the temporary one (which is gone): a full disk says nothing
        # of which file, and a folder without write permission names the temporary file or both
        # (os.replace).  An error about some other file (one the writer reads) is left as it is.
        if isinstance(e, OSError) and e.errno and (not e.filename or tmp in (e.filename, e.filename2)):
            raise OSError(e.errno, e.strerror or str(e), path) from None
        raise


def atomic_write_bytes(path, data, durable=True):
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path, durable) as tmp, open(tmp, "wb") as f:
        f.write(data)


def atomic_write_text(path, text, durable=True):
    atomic_write_bytes(path, text.encode("utf-8"), durable)


def atomic_write_json(path, obj, durable=True, **kw):
    """Write ``obj`` as JSON to ``path`` atomically (see :func:`atomic_path`), laid out by :func:`dumps`."""
    atomic_write_text(path, dumps(obj, **kw), durable)


def dumps(obj, **kw):
    """``obj`` as JSON, each object's members on lines of their own (as ``json.dumps(indent=2)``) and each list
    of numbers or strings on one line: a history of 30 epochs is one line per metric, not 30.  The lines are
    made by json's C encoder (before Python 3.14 its indented output is made by its Python one: a few tenths
    of a millisecond for a run's metrics).  ``kw`` are ``json.dumps``'s options (``default``, ``sort_keys``,
    ``ensure_ascii``, ``allow_nan``, ...), but the layout is this one's: ``indent``, ``separators`` and
    ``cls`` are refused."""
    bad = sorted(set(kw) & {"indent", "separators", "cls"})
    if bad:
        raise TypeError(f"dumps() lays out the JSON itself; it takes no {', '.join(bad)}")
    return _layout(obj, 0, set(), kw)


def _layout(obj, level, open_, kw):
    """:func:`dumps` of ``obj`` at nesting ``level``; ``open_``: the ids of the containers being written."""
    if isinstance(obj, dict) and obj and all(isinstance(k, str) for k in obj):
        members = sorted(obj.items()) if kw.get("sort_keys") else list(obj.items())
        keys = [json.dumps(k, ensure_ascii=kw.get("ensure_ascii", True)) + ": " for k, _ in members]
        values, ends = [v for _, v in members], "{}"
    elif isinstance(obj, (list, tuple)) and any(isinstance(v, (dict, list, tuple)) for v in obj):
        keys, values, ends = [""] * len(obj), list(obj), "[]"
    else:  # a value, or a list of values, on one line
        return json.dumps(obj, **kw)
    if id(obj) in open_:
        raise ValueError("Circular reference detected")
    open_.add(id(obj))
    pad = "  " * (level + 1)
    lines = [pad + k + _layout(v, level + 1, open_, kw) for k, v in zip(keys, values)]
    open_.discard(id(obj))
    return ends[0] + "\n" + ",\n".join(lines) + "\n" + "  " * level + ends[1]


def remove_stale_temps(folder):
    """Delete the temporary files that interrupted writes left in ``folder``; returns their names."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for n in names:
        if n.startswith(TEMP_PREFIX) or (n.startswith(_OLD_TEMP[0]) and n.endswith(_OLD_TEMP[1])):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, n))
                removed.append(n)
    return removed


def read_json(path, what="file", expect=None):
    """Parse the JSON file ``path``; every failure is one :class:`FileFormatError` naming the file.

    ``expect`` is a type (e.g. ``dict``) the document must have.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise FileFormatError(path, f"is a folder, not a {what}")
    if not os.path.exists(path):
        raise MissingFileError(f"no {what} {path!r}")
    try:
        with open(path, "rb") as f:
            raw = f.read()
        doc = json.loads(raw.decode("utf-8"))
    except OSError as e:
        raise FileFormatError(path, f"cannot read the {what} ({e.strerror or e})") from None
    except (UnicodeDecodeError, ValueError) as e:
        why = "it is empty" if not raw.strip() else f"not valid JSON: {e}"
        raise FileFormatError(path, f"damaged {what} ({why})") from None
    except RecursionError:
        raise FileFormatError(path, f"damaged {what} (nested too deeply)") from None
    if expect is not None and not isinstance(doc, expect):
        raise FileFormatError(path, f"damaged {what}: expected a JSON {expect.__name__}, got {type(doc).__name__}")
    return doc
