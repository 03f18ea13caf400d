"""Fixtures shared by several test modules."""

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(scope="module")
def one_blas_thread():
    """Small matrices: one BLAS thread is fastest, and immune to a busy machine's oversubscription.

    A module asks for it with ``pytestmark = pytest.mark.usefixtures("one_blas_thread")``.
    """
    with threadpool_limits(1):
        yield
