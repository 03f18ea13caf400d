"""The PyTorch baseline of ``compare``: the same MLP, optimizer, epochs and batch size in PyTorch (CPU, float32).

Importing this module imports torch; when torch is not installed it raises
ImportError with a one-line message saying how to get it.
"""

from __future__ import annotations

import time

import numpy as np

try:
    import torch
except ImportError:  # one line for the user; compare() shows it and skips the row
    raise ImportError("PyTorch baseline skipped: torch is not installed (pip install 'nablanet[peers]')") from None

__all__ = ["torch_baseline"]


def torch_baseline(cfg, Xtr, ytr, task):
    """The same architecture, optimizer, epochs and batch size in PyTorch (CPU, float32)."""
    from threadpoolctl import threadpool_limits

    # One thread each: PyTorch's OpenMP pool and NumPy's BLAS pool spinning side by side on
    # few cores slow these small networks down a hundredfold.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            return _torch_train(cfg, Xtr, ytr, task)
    finally:
        torch.set_num_threads(threads)


def _torch_train(cfg, Xtr, ytr, task):
    torch.manual_seed(cfg["seed"])
    acts = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid, "elu": torch.nn.ELU,
            "leaky_relu": torch.nn.LeakyReLU, "gelu": torch.nn.GELU, "silu": torch.nn.SiLU, "softplus": torch.nn.Softplus,
            "identity": torch.nn.Identity}
    act = cfg["activation"] if isinstance(cfg["activation"], str) else cfg["activation"][0]
    sizes = [Xtr.shape[1]] + cfg["hidden"] + [cfg["n_outputs"]]
    layers = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        layers += [torch.nn.Linear(a, b), acts.get(act, torch.nn.ReLU)()]
    layers.append(torch.nn.Linear(sizes[-2], sizes[-1]))
    model = torch.nn.Sequential(*layers)
    opt = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "adamw": torch.optim.AdamW, "rmsprop": torch.optim.RMSprop,
           "adagrad": torch.optim.Adagrad}.get(cfg["optimizer"], torch.optim.Adam)(model.parameters(), lr=cfg["lr"])
    X = torch.from_numpy(np.asarray(Xtr, np.float32))
    if task == "classification":
        y = torch.from_numpy(np.asarray(ytr, np.int64))
        lossf = torch.nn.CrossEntropyLoss() if cfg["n_outputs"] > 1 else torch.nn.BCEWithLogitsLoss()
        if cfg["n_outputs"] == 1:
            y = y.float()[:, None]
    else:
        y = torch.from_numpy(np.asarray(ytr, np.float32).reshape(len(Xtr), -1))
        lossf = torch.nn.MSELoss()
    n, bs = len(X), cfg["batch_size"] or len(X)
    g = torch.Generator().manual_seed(cfg["seed"])
    t0 = time.perf_counter()
    for _ in range(int(cfg["epochs"])):
        perm = torch.randperm(n, generator=g)
        for s in range(0, n, bs):
            idx = perm[s:s + bs]
            opt.zero_grad(set_to_none=True)
            lossf(model(X[idx]), y[idx]).backward()
            opt.step()
    secs = time.perf_counter() - t0

    def predict(Xn):
        with torch.no_grad():
            z = model(torch.from_numpy(np.asarray(Xn, np.float32))).numpy()
        if task == "classification":
            return z.argmax(1) if z.shape[1] > 1 else (z[:, 0] > 0).astype(np.int64)
        return z

    return predict, secs
