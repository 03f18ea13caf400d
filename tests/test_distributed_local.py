"""The parts of nablanet.distributed that need no MPI: the cached threadpoolctl controller behind thread_limit,
and the wake-up socket a rank waiting while rank 0 leads sleeps on."""

import os
import socket
import sys
import threading
import time
import types

import pytest
import threadpoolctl

from nablanet import distributed
from nablanet.train import loop

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux: the loader's counters, abstract sockets")


def test_thread_limit_builds_a_controller_only_when_modules_were_imported(monkeypatch):
    """Every thread_limit (threadpoolctl's threadpool_limits) built a ThreadpoolController, which reads the
    process's memory map to find the BLAS and OpenMP libraries: 0.7-2.9 ms each time rank 0 raised its limit
    to lead. Now threadpoolctl's cached controller is used, built again only when modules were imported since
    (a new library comes with one); the limits are still set inside and put back after."""
    built, real = [], threadpoolctl.ThreadpoolController
    if not hasattr(threadpoolctl, "get_cached_controller"):
        pytest.skip("threadpoolctl before 3.6 has no cached controller")

    class Counting(real):
        def __init__(self):
            built.append(1)
            super().__init__()

    before = {lib["filepath"]: lib["num_threads"] for lib in threadpoolctl.threadpool_info()}
    assert before, "no BLAS/OpenMP library loaded (NumPy's OpenBLAS expected)"
    monkeypatch.setattr(threadpoolctl, "ThreadpoolController", Counting)
    threadpoolctl.reset_cached_controller()
    with distributed.thread_limit(3):
        inside = {lib["filepath"]: lib["num_threads"] for lib in real().info()}
    assert len(built) == 1 and inside == {path: 3 for path in before}, (built, inside)
    with distributed.thread_limit(1):
        inside = {lib["filepath"]: lib["num_threads"] for lib in real().info()}
    assert len(built) == 1 and inside == {path: 1 for path in before}, (built, inside)  # nothing new: none built
    assert {lib["filepath"]: lib["num_threads"] for lib in real().info()} == before  # restored
    monkeypatch.setitem(sys.modules, "nablanet_test_imported_since", types.ModuleType("nablanet_test_imported_since"))
    with distributed.thread_limit(2):
        assert {lib["num_threads"] for lib in real().info()} == {2}
    assert len(built) == 2, built
    with distributed.thread_limit(2):
        pass
    assert len(built) == 2, built
    threadpoolctl.reset_cached_controller()  # (not the counting class's, for the tests after)


def test_the_threads_in_use_are_what_the_libraries_say():
    with distributed.thread_limit(2):
        assert distributed.threads_in_use() == 2
        assert [lib["num_threads"] for lib in distributed.thread_pools()] == [
            lib["num_threads"] for lib in threadpoolctl.threadpool_info()]


@linux
def test_a_forked_child_keeps_the_controller_and_makes_its_own_wake_up_socket():
    """A forked child (a sweep worker) sets its limits through its parent's controller; a wake-up socket is
    the process's own (the parent's name keeps reaching the parent)."""
    controller = distributed.thread_controller()
    sock, name = distributed._wake_socket()
    if sock is None:
        pytest.skip("no abstract-namespace socket here")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, and leave without running the parent's cleanup
        ok = 0
        try:
            same = distributed.thread_controller() is controller
            with distributed.thread_limit(1):
                limited = distributed.threads_in_use() == 1
            child_sock, child_name = distributed._wake_socket()
            ok = int(same and limited and child_name not in (None, name) and distributed._wake_reachable(name))
        finally:
            os.write(write, bytes([ok]))
            os._exit(0)
    os.close(write)
    try:
        assert os.read(read, 1) == b"\x01"
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert distributed._wake_socket() == (sock, name)
    distributed._wake([name])
    assert sock.recv(16) == b"w"


@linux
def test_a_wake_up_name_is_reachable_only_on_its_machine():
    sock, name = distributed._wake_socket()
    if sock is None:
        pytest.skip("no abstract-namespace socket here")
    assert name.startswith(b"\0nablanet-") and len(name) == 42
    assert distributed._wake_reachable(name)
    assert not distributed._wake_reachable(b"\0nablanet-" + b"0" * 32)  # no such socket: another machine's
    assert not distributed._wake_reachable(None)


class _Request:
    """An MPI request that completes when ``done`` is set; the times it was tested."""

    def __init__(self):
        self.done, self.tests = threading.Event(), []

    def Test(self):  # noqa: N802 - MPI's name
        self.tests.append(time.monotonic())
        return self.done.is_set()


def _release_later(request, name, seconds, sent):
    """Complete ``request`` after ``seconds``, then send a datagram to the wake-up socket ``name`` (as rank 0
    does: its part of the barrier first); ``sent`` gets the time."""
    def release():
        time.sleep(seconds)
        request.done.set()
        sent.append(time.monotonic())
        if name is not None:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.sendto(b"w", name)

    thread = threading.Thread(target=release)
    thread.start()
    return thread


@linux
def test_a_waiting_rank_sleeps_until_its_wake_up_datagram(monkeypatch):
    """A rank waiting for rank 0 tested the barrier every 2 ms (500 wake-ups a second on rank 0's cores). Now
    it sleeps in poll on its wake-up socket (datagrams left from an earlier fit were read before the fit's
    agreement, not taken for a wake-up) and tests the barrier when rank 0's datagram comes."""
    sock, name = distributed._wake_socket()
    if sock is None:
        pytest.skip("no abstract-namespace socket here")
    monkeypatch.setattr(loop, "WAKE_POLL_MS", 5000)  # only the datagram can end the wait in time
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        for _ in range(3):
            s.sendto(b"w", name)  # stale: an earlier fit's
    assert distributed._drain(sock)  # what the start-of-fit agreement does, before rank 0 can wake this rank
    request, between, sent = _Request(), [], []
    thread = _release_later(request, name, 0.3, sent)
    t0 = time.monotonic()
    loop._wait_asleep(request, lambda: between.append(time.monotonic()), sock)
    ended = time.monotonic()
    thread.join()
    # woken by the datagram: after the release (not by a stale one), long before the 5 s poll would end
    assert sent[0] <= ended < sent[0] + 1.0, (ended - t0, ended - sent[0])
    assert len(request.tests) == 2 and len(between) == 1, (request.tests, between)  # asleep, then woken once
    with pytest.raises(BlockingIOError):
        sock.recv(16)  # read: none left for the next wait


@linux
def test_a_waiting_rank_without_a_datagram_tests_the_barrier_every_50_ms():
    """The datagram is a hint: without it the barrier is tested every WAKE_POLL_MS, with ``between`` (the
    relay of a Ctrl-C to rank 0) called before each sleep, and the wait ends when the request completes."""
    sock, _ = distributed._wake_socket()
    if sock is None:
        pytest.skip("no abstract-namespace socket here")
    distributed._drain(sock)
    request, between, sent = _Request(), [], []
    thread = _release_later(request, None, 0.3, sent)
    loop._wait_asleep(request, lambda: between.append(time.monotonic()), sock)
    ended = time.monotonic()
    thread.join()
    assert 0.3 / (loop.WAKE_POLL_MS / 1000) - 1 <= len(request.tests) <= 15, request.tests
    assert len(between) == len(request.tests) - 1
    assert ended - sent[0] < 0.5, ended - sent[0]


def test_a_wait_without_a_socket_naps_as_before():
    request, between, sent = _Request(), [], []
    thread = _release_later(request, None, 0.1, sent)
    loop._wait_asleep(request, lambda: between.append(1))
    thread.join()
    assert len(request.tests) >= 10 and len(between) == len(request.tests) - 1, len(request.tests)


def test_a_wait_without_a_socket_tests_every_0_1_ms_for_its_first_20_ms_then_backs_off(monkeypatch):
    """The other ranks of a fit's agreement come within milliseconds (rank 0 writes its configuration first): a
    waiting rank backed off to naps of 2 ms at once and kept rank 0 waiting 2-4 ms there.  On a clock of its
    own (no time passes but the naps)."""
    clock, naps = [0.0], []

    def sleep(seconds):
        naps.append(seconds)
        clock[0] += seconds

    class Request:
        def Test(self):  # noqa: N802 - MPI's name
            return clock[0] >= 0.05

    monkeypatch.setattr(loop.time, "sleep", sleep)
    monkeypatch.setattr(loop.time, "monotonic", lambda: clock[0])
    loop._wait_asleep(Request())
    short = [n for k, n in enumerate(naps) if sum(naps[:k]) < loop.SHORT_NAPS_SECONDS]
    assert set(short) == {1e-4} and len(short) >= 0.9 * loop.SHORT_NAPS_SECONDS / 1e-4
    assert max(naps) == 0.002 and naps[-1] == 0.002  # then backed off, as before


def test_a_signal_between_the_two_handlers_taken_leaves_no_handler_of_the_block():
    """_SignalsCaught takes SIGINT, then SIGTERM: a SIGTERM whose handler raises (the command line's) coming
    between the two left SIGINT recorded and ignored for the rest of the process (found by review)."""
    import signal

    class Terminated(Exception):
        pass

    def on_term(signum, frame):
        raise Terminated

    old_int, old_term = signal.getsignal(signal.SIGINT), signal.signal(signal.SIGTERM, on_term)
    real = signal.signal

    def taking(sig, handler):
        out = real(sig, handler)
        if sig == signal.SIGINT and getattr(handler, "__name__", "") == "_record":
            signal.raise_signal(signal.SIGTERM)  # acted on at the next check, inside __enter__
        return out

    try:
        signal.signal = taking
        try:
            with pytest.raises(Terminated):
                with loop._SignalsCaught():
                    pass
        finally:
            signal.signal = real
        assert signal.getsignal(signal.SIGINT) is old_int and signal.getsignal(signal.SIGTERM) is on_term
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
            time.sleep(0.01)
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
