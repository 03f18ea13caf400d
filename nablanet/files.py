"""Writing files so that an interruption never leaves half of one, and reading JSON sidecars safely.

Every file nablanet writes into a run or sweep folder goes through
:func:`atomic_path` (or the helpers built on it): the content is written to a
temporary file in the same folder (named ``.nablanet-tmp-*``), flushed to disk
(``fsync``), and renamed over the target with ``os.replace``, which is atomic
on POSIX and Windows.  A reader therefore sees the old file or the new one,
never a mixture; a process killed mid-write leaves at most a temporary file,
which :func:`remove_stale_temps` deletes when the folder is next used.
A write with ``durable="background"`` finishes (flush and rename) on a thread
of its own while the writer goes on; the writer's next write, or
:func:`settle`, waits for it first, so a thread's files land in the order it
wrote them.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import threading

from .validate import FileFormatError, MissingFileError

__all__ = ["TEMP_PREFIX", "atomic_path", "atomic_write_bytes", "atomic_write_text", "atomic_write_json",
           "settle", "remove_stale_temps", "read_json"]

TEMP_PREFIX = ".nablanet-tmp-"
_OLD_TEMP = (".nablanet-", ".tmp")  # the checkpoint writer's earlier naming


def _fsync_dir(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path, durable=True):
    """Yield a temporary path next to ``path``; on success it replaces ``path`` atomically.

    The temporary name keeps ``path``'s extension (so writers that choose a
    format by extension, such as matplotlib, still work).  On any exception,
    including KeyboardInterrupt, the temporary file is removed and ``path``
    is left as it was.

    ``durable`` (the default) also flushes the file to the disk before the
    rename and the folder after it (fsync), so that a power failure or an
    operating-system crash leaves the old file or the new one whole.  Without
    it, the replacement is as atomic for a process stopped or killed at any
    moment, and costs two flushes less (each some tenths of a millisecond):
    for files a command makes again, such as a run folder's metrics and plots
    (rewritten by ``--resume``), not for the state a run resumes from.

    ``durable="background"``: the same flushes and the rename are done on a
    thread of their own, and this returns once the file is written; the file
    is in its place when :func:`settle` returns, which this thread's next
    write calls first (so its files land in the order written, and one at most
    is pending), and raises there what the flush raised.  A run folder's
    ``config.json`` is flushed so while the model trains, its last checkpoint
    while the test metrics are computed.
    """
    if durable not in (True, False, "background"):
        raise ValueError(f"durable: expected True, False or 'background', got {durable!r}")
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    settle()
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f"{TEMP_PREFIX}{secrets.token_hex(6)}-{os.path.basename(path)}")
    try:
        yield tmp
        if durable == "background":
            _local.pending = _Pending(tmp, path, folder)
        elif durable:
            _finish(tmp, path, folder)
        else:
            os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        named = _naming(e, path)
        if named is not e:
            raise named from None
        raise


def _finish(tmp, path, folder):
    """A durable write's end: the file flushed to the disk, renamed into place, its folder flushed."""
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(folder)


def _naming(e, path):
    """``e``, or for an OSError that names no file (a full disk says nothing of which file) one naming ``path``."""
    if isinstance(e, OSError) and not e.filename and e.errno:
        return OSError(e.errno, e.strerror or str(e), path)
    return e


_local = threading.local()  # .pending: this thread's write finishing in the background (_Pending), if any


class _Pending:
    """A durable write finishing on a thread of its own (see :func:`atomic_path`).  The thread is not a daemon:
    a process that exits, a Ctrl-C included, lets it finish first, so the file is whole in its place or the old
    one is (never waited for with ``Thread.join``, which a Ctrl-C can leave taking a running thread for ended)."""

    def __init__(self, tmp, path, folder):
        self.pid, self.done, self.error = os.getpid(), threading.Event(), None
        threading.Thread(target=self._run, args=(tmp, path, folder), name="nablanet-flush").start()

    def _run(self, tmp, path, folder):
        try:
            _finish(tmp, path, folder)
        except BaseException as e:  # noqa: BLE001 - raised by settle(), in the writer's thread
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            self.error = _naming(e, path)
        finally:
            self.done.set()


def settle():
    """Wait until the write this thread started with ``durable="background"`` (see :func:`atomic_path`), if any,
    is in its place; raise what its flush or rename raised (an OSError naming the file).  Returns at once when
    none is pending, as in a process forked while one was (the write is its parent's)."""
    pending = getattr(_local, "pending", None)
    if pending is None:
        return
    if pending.pid == os.getpid():
        pending.done.wait()
    _local.pending = None
    if pending.error is not None and pending.pid == os.getpid():
        raise pending.error


def atomic_write_bytes(path, data, durable=True):
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path, durable) as tmp, open(tmp, "wb") as f:
        f.write(data)


def atomic_write_text(path, text, durable=True):
    atomic_write_bytes(path, text.encode("utf-8"), durable)


def atomic_write_json(path, obj, durable=True, **kw):
    atomic_write_text(path, json.dumps(obj, indent=2, **kw), durable)


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
