"""Do nablanet's defaults reach PyTorch's default result at the same budget?

For each data set (Franke, Runge, breast cancer, digits) and seeds 0..4, the
same split (``split_scale``, standard scaling), the same network
(``n_features -> 64 relu -> outputs``, the command line's default), the same
optimizer (Adam), batch size 32 and 30 epochs; what differs is what each
library does when not told: the initialization of weights and biases and
Adam's learning rate (PyTorch: ``U(+-1/sqrt(fan_in))`` for both, lr 1e-3;
nablanet: whatever ``MLP(...)`` and ``Trainer(..., "adam")`` do with no
``init`` and no ``lr``), and each library's own shuffling.  ``--config readme``
uses the README's Franke network instead (64,64 tanh, 150 epochs, lr 3e-3
cosine, batch 64) with the learning rate given to both.

Reported: mean (and spread over seeds) of the test MSE (regression) or test
accuracy (classification), and the ratio nablanet / PyTorch of the MSE or of
the error rate (below 1: nablanet's default does better).  Other choices can be
tried with ``--inits``: an initializer name (``he_uniform``), a candidate of
:data:`CANDIDATES`, and ``NAME@LR`` to set the learning rate as well
(``default@0.001``).

Run:  python benchmarks/bench_defaults.py [--seeds 5] [--data franke,runge,breast_cancer,digits] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import numpy as np

DATA = {"franke": 1000, "runge": 1000, "breast_cancer": None, "digits": None}
CONFIGS = {
    # the command line's defaults (nablanet train --data NAME); lr None: each library's default for Adam
    "cli": {"hidden": [64], "activation": "relu", "lr": None, "epochs": 30, "batch_size": 32, "schedule": None},
    # the README's Franke example
    "readme": {"hidden": [64, 64], "activation": "tanh", "lr": 3e-3, "epochs": 150, "batch_size": 64, "schedule": "cosine"},
}


def load(name, seed):
    from nablanet.data import load_dataset, split_scale

    ds = load_dataset(name, n=DATA[name], seed=seed)
    Xtr, Xte, ytr, yte, _ = split_scale(ds, seed=seed)
    return ds, Xtr.astype(np.float32), Xte.astype(np.float32), ytr, yte


def _outputs(ds):
    if ds.task == "regression":
        return 1, "identity", "mse"
    if ds.n_classes == 2:
        return 1, "sigmoid", "bce"
    return ds.n_classes, "softmax", "cross_entropy"


def score(ds, pred, yte):
    if ds.task == "regression":
        return float(np.mean((pred.reshape(-1) - yte) ** 2))
    if pred.ndim == 2 and pred.shape[1] > 1:
        labels = pred.argmax(1)
    else:
        labels = (pred.reshape(-1) > 0.5).astype(int)
    return float(np.mean(labels == yte))


def _fan_in_uniform(params, rng, bias=True, weights=True):
    for p in params:
        if "W" in p:
            lim = 1 / math.sqrt(p["W"].shape[0])
            if weights:
                p["W"][...] = rng.uniform(-lim, lim, p["W"].shape)
            if bias:
                p["b"][...] = rng.uniform(-lim, lim, p["b"].shape)


# candidate defaults, tried by overwriting the parameters of a default-built model
CANDIDATES = {
    "torch_like": _fan_in_uniform,  # PyTorch's nn.Linear: U(+-1/sqrt(fan_in)) for W and b
    "torch_w": lambda params, rng: _fan_in_uniform(params, rng, bias=False),
    "fan_in_bias": lambda params, rng: _fan_in_uniform(params, rng, weights=False),
}


def run_nablanet(ds, Xtr, Xte, ytr, yte, seed, cfg, init):
    """``init`` names an initialization (``default``: none given); ``NAME@LR`` also sets the learning rate."""
    from nablanet import optim

    init, _, lr_text = init.partition("@")
    if lr_text:
        cfg = {**cfg, "lr": float(lr_text)}
    from nablanet.nn import MLP
    from nablanet.train import Trainer

    n_out, out_act, loss = _outputs(ds)
    kw = {} if init in CANDIDATES or init == "default" else {"init": init}
    model = MLP([Xtr.shape[1], *cfg["hidden"], n_out], activation=cfg["activation"], output_activation=out_act,
                seed=seed, **kw)
    if init in CANDIDATES:
        CANDIDATES[init](model.params, np.random.default_rng(seed))
    steps = cfg["epochs"] * math.ceil(len(Xtr) / cfg["batch_size"])
    lr = optim.cosine(cfg["lr"], steps, cfg["lr"] / 100) if cfg["schedule"] == "cosine" else cfg["lr"]
    trainer = Trainer(model, loss, "adam", lr=lr, seed=seed)  # lr None: nablanet's default
    t0 = time.perf_counter()
    trainer.fit(Xtr, ytr, epochs=cfg["epochs"], batch_size=cfg["batch_size"])
    return score(ds, model.predict(Xte), yte), time.perf_counter() - t0


def run_torch(ds, Xtr, Xte, ytr, yte, seed, cfg):
    import torch

    torch.manual_seed(seed)
    n_out, _, loss = _outputs(ds)
    act = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[cfg["activation"]]
    sizes = [Xtr.shape[1], *cfg["hidden"], n_out]
    layers = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        layers += [torch.nn.Linear(a, b), act()]
    layers.append(torch.nn.Linear(sizes[-2], sizes[-1]))
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), **({} if cfg["lr"] is None else {"lr": cfg["lr"]}))
    n, bs = len(Xtr), cfg["batch_size"]
    steps = cfg["epochs"] * math.ceil(n / bs)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, cfg["lr"] / 100) if cfg["schedule"] == "cosine" else None
    X = torch.from_numpy(Xtr)
    if loss == "mse":
        y, lossf = torch.from_numpy(np.asarray(ytr, np.float32)[:, None]), torch.nn.MSELoss()
    elif loss == "bce":
        y, lossf = torch.from_numpy(np.asarray(ytr, np.float32)[:, None]), torch.nn.BCEWithLogitsLoss()
    else:
        y, lossf = torch.from_numpy(np.asarray(ytr, np.int64)), torch.nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for _ in range(cfg["epochs"]):
        perm = torch.randperm(n, generator=g)
        for s in range(0, n, bs):
            idx = perm[s:s + bs]
            opt.zero_grad(set_to_none=True)
            lossf(model(X[idx]), y[idx]).backward()
            opt.step()
            if sched is not None:
                sched.step()
    secs = time.perf_counter() - t0
    with torch.no_grad():
        z = model(torch.from_numpy(Xte))
        if loss == "bce":
            z = torch.sigmoid(z)
    return score(ds, z.numpy(), yte), secs


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--data", default=",".join(DATA))
    p.add_argument("--config", default="cli", choices=list(CONFIGS))
    p.add_argument("--inits", default="default", help="nablanet initializations to try (comma-separated)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    a = p.parse_args(argv)
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    cfg = CONFIGS[a.config]
    inits = a.inits.split(",")
    rows = []
    with threadpool_limits(1):
        for name in a.data.split(","):
            res = {k: [] for k in ["torch", *inits]}
            for seed in range(a.seeds):
                ds, Xtr, Xte, ytr, yte = load(name, seed)
                res["torch"].append(run_torch(ds, Xtr, Xte, ytr, yte, seed, cfg)[0])
                for init in inits:
                    res[init].append(run_nablanet(ds, Xtr, Xte, ytr, yte, seed, cfg, init)[0])
            metric = "test MSE" if ds.task == "regression" else "test accuracy"
            for k, v in res.items():
                mean = statistics.fmean(v)
                ref = statistics.fmean(res["torch"])
                ratio = mean / ref if ds.task == "regression" else (1 - mean) / max(1 - ref, 1e-12)
                rows.append({"data": name, "system": "PyTorch" if k == "torch" else f"nablanet ({k})", "metric": metric,
                             "mean": mean, "std": statistics.pstdev(v), "ratio_to_torch": ratio, "values": v})
    if a.json:
        print(json.dumps({"config": cfg, "seeds": a.seeds, "rows": rows}, indent=2))
        return
    print(f"config {a.config}: {cfg}; seeds 0..{a.seeds - 1}; ratio = nablanet/PyTorch of the MSE or of the error rate")
    print("| data | system | metric | mean | spread (std) | ratio to PyTorch |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['data']} | {r['system']} | {r['metric']} | {r['mean']:.4g} | {r['std']:.2g} | {r['ratio_to_torch']:.2f} |")


if __name__ == "__main__":
    main()
