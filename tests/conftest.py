"""Suite-wide settings and fixtures shared by several test modules.

Every test process runs with one BLAS/OpenMP thread (a session-wide limit): the machines that
run the suite are shared and small, a BLAS pool spread over every core only oversubscribes
them, and results must not depend on how many threads a product happened to get.  A test that
wants more threads asks inside (``threadpool_limits(n)`` nests); subprocesses set their own
limits through the environment (the fault and MPI tests pass OMP/OPENBLAS=1).
"""

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(scope="session", autouse=True)
def _one_blas_thread_everywhere():
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def one_blas_thread():
    """Small matrices: one BLAS thread is fastest, and immune to a busy machine's oversubscription.

    A module asks for it with ``pytestmark = pytest.mark.usefixtures("one_blas_thread")`` (it holds
    even where the session-wide limit is lifted).
    """
    with threadpool_limits(1):
        yield
