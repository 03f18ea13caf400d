"""End to end: Fashion-MNIST, 784-256-128-10 ReLU, Adam 1e-3, batch 128, 20 epochs.

Wall time of the whole training (shuffling and batching included) and test
accuracy, for nablanet, PyTorch (the usual DataLoader loop) and scikit-learn's
MLPClassifier, one after the other in one process with the same thread count.
The data come from the Debian package ``dataset-fashion-mnist`` through
nablanet's IDX reader (``apt-get install dataset-fashion-mnist``).

Run:  python benchmarks/bench_e2e.py [--epochs 20] [--threads 2] [--systems nablanet,torch,sklearn] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

SIZES = [784, 256, 128, 10]


def run_nablanet(Xtr, ytr, Xte, yte, epochs, seed=0):
    from nablanet.nn import MLP
    from nablanet.train import fit

    m = MLP(SIZES, activation="relu", output_activation="softmax", seed=seed)
    t0 = time.perf_counter()
    fit(m, Xtr, ytr, loss="cross_entropy", optimizer="adam", lr=1e-3, epochs=epochs, batch_size=128, seed=seed)
    secs = time.perf_counter() - t0
    return secs, float(np.mean(m.predict(Xte).argmax(1) == yte))


def run_torch(Xtr, ytr, Xte, yte, epochs, seed=0):
    import torch

    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128), torch.nn.ReLU(),
                                torch.nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    ds = torch.utils.data.TensorDataset(torch.from_numpy(Xtr), torch.from_numpy(ytr))
    loader = torch.utils.data.DataLoader(ds, batch_size=128, shuffle=True)
    lossf = torch.nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad(set_to_none=True)
            lossf(model(xb), yb).backward()
            opt.step()
    secs = time.perf_counter() - t0
    with torch.no_grad():
        acc = float((model(torch.from_numpy(Xte)).argmax(1).numpy() == yte).mean())
    return secs, acc


def run_sklearn(Xtr, ytr, Xte, yte, epochs, seed=0):
    from sklearn.neural_network import MLPClassifier

    m = MLPClassifier(hidden_layer_sizes=(256, 128), solver="adam", learning_rate_init=1e-3, batch_size=128,
                      max_iter=epochs, random_state=seed, tol=0, n_iter_no_change=epochs + 1)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(Xtr, ytr)
    secs = time.perf_counter() - t0
    return secs, float(np.mean(m.predict(Xte) == yte))


SYSTEMS = {"nablanet": run_nablanet, "torch": run_torch, "sklearn": run_sklearn}


def main(argv=None):
    ap = argparse.ArgumentParser(description="Fashion-MNIST end to end")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--systems", default="nablanet,torch,sklearn")
    ap.add_argument("--path", default=None, help="directory of the Fashion-MNIST IDX files")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits

    from nablanet.data import load_fashion_mnist

    threadpool_limits(args.threads)
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        pass
    Xtr, ytr = load_fashion_mnist(args.path, kind="train")
    Xte, yte = load_fashion_mnist(args.path, kind="test")
    results = {}
    for name in args.systems.split(","):
        try:
            secs, acc = SYSTEMS[name](Xtr, ytr, Xte, yte, args.epochs)
        except ImportError:
            continue
        results[name] = {"seconds": secs, "test_accuracy": acc}
        if not args.json:
            print(f"{name:<10}{secs:>9.1f} s   test accuracy {acc:.4f}", flush=True)
    doc = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "threads": args.threads, "epochs": args.epochs, "results": results}
    if "torch" in results and "nablanet" in results:
        doc["time_ratio_nablanet_over_torch"] = results["nablanet"]["seconds"] / results["torch"]["seconds"]
    if args.json:
        print(json.dumps(doc, indent=2))
    elif "time_ratio_nablanet_over_torch" in doc:
        print(f"nablanet / PyTorch wall time: {doc['time_ratio_nablanet_over_torch']:.2f}")
    return doc


if __name__ == "__main__":
    main()
