"""The parts of nablanet.distributed that need no MPI: the cached threadpoolctl controller behind thread_limit."""

import ctypes
import ctypes.util
import os
import sys

import pytest
import threadpoolctl

from nablanet import distributed

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux: the loader's counters")


def _library_not_loaded():
    """The path of a shared library this process has not loaded, or None."""
    with open("/proc/self/maps") as f:
        loaded = {os.path.basename(line.split()[-1]).split(".so")[0] for line in f if ".so" in line}
    for name in ("uuid", "expat", "sqlite3", "gdbm", "ncursesw", "readline", "crypt", "nsl", "bz2", "lzma"):
        path = ctypes.util.find_library(name)
        if path and path.split(".so")[0] not in loaded:
            return path
    return None


@linux
def test_thread_limit_builds_a_controller_only_when_a_library_was_loaded(monkeypatch):
    """Every thread_limit (threadpoolctl's threadpool_limits) built a ThreadpoolController, which reads the
    process's memory map to find the BLAS and OpenMP libraries: 0.7-2.7 ms each time rank 0 raised its limit
    to lead. Now one controller is kept and built again only when a shared library was loaded since; the
    limits are still set inside and put back after."""
    built, real = [], threadpoolctl.ThreadpoolController

    class Counting(real):
        def __init__(self):
            built.append(1)
            super().__init__()

    before = {lib["filepath"]: lib["num_threads"] for lib in threadpoolctl.threadpool_info()}
    assert before, "no BLAS/OpenMP library loaded (NumPy's OpenBLAS expected)"
    monkeypatch.setattr(threadpoolctl, "ThreadpoolController", Counting)
    monkeypatch.setattr(distributed, "_CONTROLLER", (None, None), raising=False)  # (none before)
    with distributed.thread_limit(3):
        inside = {lib["filepath"]: lib["num_threads"] for lib in real().info()}
    assert len(built) == 1 and inside == {path: 3 for path in before}, (built, inside)
    with distributed.thread_limit(1):
        inside = {lib["filepath"]: lib["num_threads"] for lib in real().info()}
    assert len(built) == 1 and inside == {path: 1 for path in before}, (built, inside)  # nothing loaded: none built
    assert {lib["filepath"]: lib["num_threads"] for lib in real().info()} == before  # restored

    path = _library_not_loaded()
    if path is not None:
        ctypes.CDLL(path)  # a library loaded since: the next limit looks at the libraries again
    else:  # (every candidate is loaded already: the loader's counters moved all the same)
        counted = distributed._loaded_libraries()
        monkeypatch.setattr(distributed, "_loaded_libraries", lambda: (counted[0] + 1, counted[1]))
    with distributed.thread_limit(2):
        assert {lib["num_threads"] for lib in real().info()} == {2}
    assert len(built) == 2, built
    with distributed.thread_limit(2):
        pass
    assert len(built) == 2, built


def test_the_threads_in_use_are_what_the_libraries_say():
    with distributed.thread_limit(2):
        assert distributed.threads_in_use() == 2
        assert [lib["num_threads"] for lib in distributed.thread_pools()] == [
            lib["num_threads"] for lib in threadpoolctl.threadpool_info()]


@linux
def test_the_loader_counters_move_when_a_library_is_loaded():
    counted = distributed._loaded_libraries()
    assert counted is not None and counted[0] > 0, counted
    assert distributed._loaded_libraries() == counted
    path = _library_not_loaded()
    if path is None:
        pytest.skip("every candidate library is loaded already")
    ctypes.CDLL(path)
    assert distributed._loaded_libraries()[0] > counted[0]
