"""Scale-out over MPI: data-parallel training and distributed sweeps.

Launch with ``mpiexec -n N nablanet train ...`` (or ``srun``); every rank runs
the same program on the same data, and the parameters are broadcast from rank 0
at the start and on resume.  Two strategies (:data:`PARALLEL_MODES`,
``Trainer(..., parallel=...)``, ``nablanet train --parallel``) train the same
parameters as one process:

- ``"shard"``: Each global minibatch is split into N contiguous shards, one per rank; each
  rank computes the gradient of its shard, and one ``Allreduce`` over the flat
  gradient buffer sums the shard gradients weighted by their sizes, so every
  rank applies the same update.  Batch normalization sums its statistics over
  the global batch.
- ``"lead"``: Rank 0 trains alone, exactly as one process would (the same parameters, bit
  for bit), with the BLAS/OpenMP threads of all the ranks on its machine
  (what one process there uses, so capped like it by ``OMP_NUM_THREADS``,
  ``OPENBLAS_NUM_THREADS`` or ``MKL_NUM_THREADS`` when set: 1 under
  ``OMP_NUM_THREADS=1``; ``Trainer(threads=...)`` or ``--threads`` sets
  them instead).  The other ranks compute nothing: they wait asleep (a
  nonblocking barrier, never a busy MPI wait; on rank 0's machine (in its network namespace) each sleeps
  in ``poll`` on a socket of its own, which rank 0 writes to when its fit ends,
  testing the barrier every 50 ms meanwhile; elsewhere they test it in short
  sleeps) until rank 0's fit ends, then take its trainer state (the checkpoint
  :func:`~nablanet.train.checkpoint.snapshot`: parameters, optimizer slots,
  running statistics, random stream, epoch, history, callbacks' state), so
  every rank's trainer is the same afterwards.  Callbacks (checkpoints, early
  stopping, progress) run on rank 0 only; the other ranks' callback objects
  then load the state rank 0's filed, so they match rank 0's.  Rank 0 always releases the others:
  when its fit is interrupted (Ctrl-C, SIGTERM) they take its state and raise
  KeyboardInterrupt too; when it fails they raise :class:`LeadFailed` naming
  its error.  A Ctrl-C (or SIGTERM) that reaches a waiting rank alone does
  not end its wait: it tells rank 0, which stops at the end of its epoch as on
  its own Ctrl-C (it saves, and sends its state and "interrupted").  Full-batch methods (``lbfgs``...) always train
  this way.  Checkpoints of earlier versions that say ``"replicate"`` (every
  rank computed every step) load as ``"lead"``: the results are the same.
- ``"auto"`` (the default): Before the first epoch, times both on the first global batch (the slowest
  rank's median of a few gradient evaluations: of its shard with the
  Allreduce, and of the whole batch, lead's estimate) and takes the faster,
  shard only by a margin of 10% (its ranks wait for each other every step),
  and lead untimed for batches with fewer rows than ranks: a choice by
  timing, so two runs may differ in the last bits; name the mode for bitwise
  reproducibility.  The choice is kept for the trainer's later fits with
  batches of the same size (another size decides again) and in checkpoints
  (``--resume`` continues with it).

Every fit over several ranks starts with one small collective in which the ranks
agree: a rank whose arguments were refused (a bad batch size, NaN in the data, an
unknown metric) raises its error and the others an error naming that rank and its
error; ranks that called fit with other epochs, batch sizes or modes raise one
error naming what differs; a rank stopped (Ctrl-C, SIGTERM) while it waited there
stops them all.  Sharded ranks must also hold the same data: a fit that may shard
compares the rows, columns and a fingerprint of every rank's data in the same
collective (a BLAKE2b digest of a strided sample of at most 64 KB of each array's
rows, and the float64 sum of the whole array: other shapes, other rows where the
sample falls and a value changed anywhere are seen, rows reordered between the
sampled ones are not), and raises one error naming the ranks that differ (rank 0 leading
uses its own data alone, and checks nothing).

Sharded ranks compute every step together, so a Ctrl-C or SIGTERM must reach them
all, as ``mpiexec`` sends it (a signal caught after that agreement, or during
``"auto"``'s timing, is acted on as training starts).  One that reaches a single
rank stops that rank alone and leaves the others waiting in their next collective.
The command line then ends the job: rank 0 stopped saves its last whole epoch and
ends it at once, with its one line; another rank ends it after a grace of 10 s, and
the training since the last checkpoint is lost.  A program of one's own must end
it itself (mpi4py's ``MPI.COMM_WORLD.Abort()``).

Only rank 0 writes checkpoints, metrics and plots.

Needs the optional extra ``mpi`` (``pip install "nablanet[mpi]"``: mpi4py and
MPICH, both from PyPI).
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from ..autodiff.core import Primitive

__all__ = ["Communicator", "get_comm", "launched_under_mpi", "launched_rank", "allreduce_sum", "MPI_INSTALL_HINT",
           "PARALLEL_MODES", "parallel_choice", "LeadFailed", "default_threads", "thread_limit", "thread_pools",
           "threads_in_use", "thread_controller"]

#: How a trainer shares the steps among the ranks (see the module's documentation).
PARALLEL_MODES = ("auto", "shard", "lead")

#: What checkpoints of earlier versions called a mode, and what it is now: "replicate" (every rank computed every
#: step on the whole batch) trained what "lead" trains (rank 0 alone computes it), bit for bit.
FORMER_MODES = {"replicate": "lead"}


def parallel_choice():
    """The check of a ``parallel`` setting (``Trainer(parallel=...)``, ``--parallel``, a configuration's): one of
    :data:`PARALLEL_MODES`; a former mode's name is one error saying what replaced it (no alias: the name
    asked for is the name used)."""
    from .. import validate as V

    class ParallelChoice(V.Choice):
        def __call__(self, value, name=None):
            if isinstance(value, str) and value in FORMER_MODES:
                now = FORMER_MODES[value]
                raise self.bad(value, name, why=f" ('{value}' was replaced by '{now}', which trains the same "
                                                f"parameters, bit for bit: rank 0 trains alone while the others "
                                                f"wait; ask for '{now}')")
            return super().__call__(value, name)

    return ParallelChoice(PARALLEL_MODES)


class LeadFailed(RuntimeError):
    """Raised on the ranks that waited while rank 0 trained alone (``parallel="lead"``) when rank 0's training
    failed: the message names rank 0's error, which rank 0 raises itself."""

MPI_INSTALL_HINT = 'MPI needs mpi4py and an MPI library: pip install "nablanet[mpi]" (mpi4py and mpich from PyPI)'

_ENV_RANK = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID")
_ENV_SIZE = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS", "PMIX_SIZE")


def launched_under_mpi():
    """True when an MPI launcher started this process as one of several ranks."""
    for key in _ENV_SIZE:
        v = os.environ.get(key)
        if v and v.isdigit() and int(v) > 1 and (key != "SLURM_NTASKS" or "PMI_RANK" in os.environ):
            return True
    return False


def launched_rank():
    """This process's rank when an MPI launcher started it as one of several ranks (read from the launcher's
    environment, before MPI is initialized), else 0."""
    if launched_under_mpi():
        for key in _ENV_RANK:
            v = os.environ.get(key)
            if v and v.isdigit():
                return int(v)
    return 0


#: The environment variables that set the thread pools of BLAS and OpenMP libraries loaded after them.
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _cores():
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_threads(processes):
    """BLAS/OpenMP threads for each of ``processes`` processes sharing this machine's cores (at least 1), and no
    more than the environment asks for: the smallest of ``THREAD_ENV`` that is set (a batch script's
    ``OMP_NUM_THREADS``, a shared machine's ``OPENBLAS_NUM_THREADS=1``)."""
    share = max(1, _cores() // max(1, int(processes)))
    asked = [int(v) for v in (os.environ.get(k, "").strip() for k in THREAD_ENV) if v.isdigit() and int(v) > 0]
    return min([share, *asked])


def thread_limit(threads=None, comm=None):
    """BLAS/OpenMP limited to ``threads`` in this process, else to its share of the cores (the MPI ranks of
    ``comm`` on this machine, or this process alone): a threadpoolctl context (or a limit that lasts as long
    as the object, called without ``with``), set through this process's cached controller
    (:func:`thread_controller`)."""
    return thread_controller().limit(limits=threads or default_threads(1 if comm is None else
                                                                        _ranks_on_this_node(comm)))


def thread_pools():
    """The BLAS/OpenMP libraries loaded in this process, as ``threadpoolctl.threadpool_info()`` describes them
    (one dict each: ``num_threads``, ``internal_api``, ``filepath``...), read through the cached controller."""
    return thread_controller().info()


def threads_in_use():
    """The most threads any loaded BLAS/OpenMP library uses now (None when none is loaded)."""
    return max((lib["num_threads"] for lib in thread_pools()), default=None)


def thread_controller():
    """This process's threadpoolctl ``ThreadpoolController``: threadpoolctl's cached one (built again when
    modules were imported since, as a new BLAS or OpenMP library comes with one), else a new one each call
    (threadpoolctl before 3.6).

    A controller finds the BLAS and OpenMP libraries among all the loaded objects (on Linux, reading
    ``/proc/self/maps``): 0.7-2.9 ms here, each time ``threadpool_limits`` or ``threadpool_info`` is called,
    against about 0.01 ms for a limit through the cached one.  A library loaded without an import (a ctypes
    ``CDLL``) is not seen until the next import; ``threadpoolctl.reset_cached_controller()`` makes it seen.
    A forked child keeps its parent's controller: the same libraries at the same addresses."""
    import threadpoolctl

    cached = getattr(threadpoolctl, "get_cached_controller", None)
    return cached() if cached is not None else threadpoolctl.ThreadpoolController()


# A rank waiting while rank 0 leads sleeps in poll() on a socket of its own, which rank 0 writes to when it
# releases the ranks (see _wait_asleep in nablanet.train.loop): a wake-up hint, the barrier decides.

_WAKE = (None, None, None)  # (the process that made it, the socket, its name)
_REACHABLE = {}  # wake names probed from this process: whether they are on its machine


def _wake_socket():
    """This process's wake-up socket and its name, made at the first call (again in a forked child): a datagram
    socket in Linux's abstract namespace (no file), bound to ``\\0nablanet-`` and 32 random hex digits,
    nonblocking, kept open while the process lives; ``(None, None)`` where none can be made (not Linux, no
    permission)."""
    global _WAKE
    import socket

    pid = os.getpid()
    if _WAKE[0] != pid:
        inherited = _WAKE[1]
        _WAKE = (pid, None, None)
        if inherited is not None:  # the parent's, forked: the parent keeps it
            inherited.close()
        if sys.platform.startswith("linux") and hasattr(socket, "AF_UNIX"):
            import secrets

            name = b"\0nablanet-" + secrets.token_hex(16).encode()
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            except OSError:
                return None, None
            try:
                sock.bind(name)
                sock.setblocking(False)
            except OSError:
                sock.close()
                return None, None
            _WAKE = (pid, sock, name)
    return _WAKE[1], _WAKE[2]


def _wake_reachable(name):
    """Whether this process can write to the wake-up socket ``name`` (another process's
    :func:`_wake_socket`): whether the two share a machine (an abstract name is seen only by the processes of
    its network namespace).  Probed by connecting a socket, which sends nothing; a definite answer is kept for
    the process's life, and None (not known: the probe's socket could not be made, EMFILE...) is asked again."""
    import socket

    if not name or not hasattr(socket, "AF_UNIX"):  # (a rank without AF_UNIX in a job with Linux ranks)
        return False
    seen = _REACHABLE.get(name)
    if seen is None:
        import errno

        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
                probe.connect(name)
                seen = True
        except OSError as e:
            if e.errno not in (errno.ECONNREFUSED, errno.ENOENT):
                return None  # (EMFILE, ENOBUFS...) not known: not cached, asked again at the next fit
            seen = False  # no such name here: another machine, or another network namespace
        _REACHABLE[name] = seen
    return seen


def _wake(names):
    """Send one datagram to each wake-up socket of ``names`` (:func:`_wake_socket`), errors ignored: a hint,
    never waited for (a full queue already wakes its reader; a socket gone was its process's)."""
    sock = _wake_socket()[0]
    if sock is None:
        return
    for name in names:
        try:
            sock.sendto(b"w", name)
        except OSError:
            pass


def _drain(sock):
    """Read every datagram waiting on the nonblocking ``sock``; False when it failed (not to be used again)."""
    try:
        while True:
            sock.recv(16)
    except BlockingIOError:
        return True
    except OSError:
        return False


def _ranks_on_this_node(comm):
    """How many MPI ranks share this machine (and so its cores)."""
    try:
        return comm.comm.Split_type(comm.MPI.COMM_TYPE_SHARED).Get_size()
    except Exception:  # noqa: BLE001 - an MPI without shared-memory split: assume all ranks on one node
        return comm.size


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError:
        raise ImportError(MPI_INSTALL_HINT) from None
    return MPI


class Communicator:
    """The few collective operations training needs, over an mpi4py communicator.

    Parameters
    ----------
    comm : mpi4py communicator, optional
        ``MPI.COMM_WORLD`` by default.

    Attributes
    ----------
    seconds : float
        Wall seconds this rank has spent in the collective operations below, waiting for the other
        ranks included: what communication costs a data-parallel training (``run_training`` reports it
        as a fraction of the training).
    """

    def __init__(self, comm=None):
        MPI = _mpi()
        self.MPI = MPI
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.seconds = 0.0

    def __repr__(self):
        return f"Communicator(rank {self.rank} of {self.size})"

    @property
    def is_root(self):
        return self.rank == 0

    def shard(self, start, stop):
        """This rank's contiguous part of the rows ``[start, stop)``."""
        n = stop - start
        base, extra = divmod(n, self.size)
        lo = start + self.rank * base + min(self.rank, extra)
        return lo, lo + base + (1 if self.rank < extra else 0)

    def allreduce_sum_(self, buf):
        """Sum ``buf`` (a contiguous array) over the ranks, in place: one Allreduce."""
        t0 = time.perf_counter()
        self.comm.Allreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM)
        self.seconds += time.perf_counter() - t0
        return buf

    def allreduce_sum(self, x):
        """The sum of ``x`` over the ranks, as a new array."""
        out = np.array(x, copy=True)
        return self.allreduce_sum_(out)

    def sum_over_ranks(self, x):
        """The differentiable sum of ``x`` over the ranks (its adjoint is the same sum)."""
        return allreduce_sum(x, self)

    def max_over_ranks(self, values):
        """The elementwise maximum of the float64 array ``values`` over the ranks, as a new array."""
        out = np.array(values, dtype=np.float64, copy=True)
        t0 = time.perf_counter()
        self.comm.Allreduce(self.MPI.IN_PLACE, out, op=self.MPI.MAX)
        self.seconds += time.perf_counter() - t0
        return out

    def bcast_(self, buf, root=0):
        """Overwrite ``buf`` on every rank with rank ``root``'s, in place."""
        t0 = time.perf_counter()
        self.comm.Bcast(buf, root=root)
        self.seconds += time.perf_counter() - t0
        return buf

    def bcast_object(self, obj, root=0):
        t0 = time.perf_counter()
        obj = self.comm.bcast(obj, root=root)
        self.seconds += time.perf_counter() - t0
        return obj

    def barrier(self):
        t0 = time.perf_counter()
        self.comm.Barrier()
        self.seconds += time.perf_counter() - t0


def get_comm(comm=None):
    """A :class:`Communicator`; raises ImportError with the install command when mpi4py is missing."""
    if isinstance(comm, Communicator):
        return comm
    return Communicator(comm)


# A differentiable sum over the ranks, for statistics over the global batch (batch normalization).
# Its adjoint is the same sum: every rank's output depends on every rank's input.


def _allreduce_sum(x, comm):
    return comm.allreduce_sum(x)


allreduce_sum = Primitive(_allreduce_sum, "allreduce_sum")
allreduce_sum.defvjp(lambda ans, x, comm: lambda g: allreduce_sum(g, comm))
allreduce_sum.defjvp(lambda g, ans, x, comm: allreduce_sum(g, comm))
