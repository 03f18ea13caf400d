"""Training keeps no arrays from step to step: array memory is flat over epochs."""

import tracemalloc

import numpy as np
import pytest

from nablanet.nn import MLP
from nablanet.train import Trainer


def _array_bytes():
    """Bytes of NumPy array data alive now (NumPy reports its buffers under its own tracemalloc domain)."""
    snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.DomainFilter(True, np.lib.tracemalloc_domain)])
    return sum(s.size for s in snap.statistics("filename"))


@pytest.mark.parametrize("dropout", [0.0, 0.2], ids=["captured step", "engine"])
def test_array_memory_is_flat_over_epochs(dropout):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((512, 20)), rng.integers(0, 5, 512)
    t = Trainer(MLP([20, 64, 32, 5], output_activation="softmax", dropout=dropout, seed=0), "cross_entropy", seed=0)
    t.fit(X, y, epochs=2, batch_size=32)  # buffers, plans and optimizer state are made here
    tracemalloc.start()
    try:
        t.fit(X, y, epochs=2, batch_size=32)
        before = _array_bytes()
        t.fit(X, y, epochs=10, batch_size=32)
        after = _array_bytes()
    finally:
        tracemalloc.stop()
    # 160 steps of this network allocate ~100 kB of arrays each; none of it may stay behind
    assert after - before <= 0, (before, after)
