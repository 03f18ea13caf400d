"""Memory of a long training run on the ``wide`` network (784-1024-1024-10, batch 256).

Each system trains in a fresh subprocess; the script reads the resident set
size after the set-up (imports, data, model) and after every epoch, and the
peak at the end.  It reports the peak above the set-up level, and whether the
resident size grows from epoch to epoch after the first.

Run:  python benchmarks/bench_memory.py [--epochs 5] [--steps 40] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, os, resource, sys
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np
system, epochs, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
rng = np.random.default_rng(0)
X = rng.standard_normal((256 * steps, 784)).astype(np.float32)
y = rng.integers(0, 10, 256 * steps)
if system == "nablanet":
    from nablanet.nn import MLP
    from nablanet.train import Trainer
    t = Trainer(MLP([784, 1024, 1024, 10], output_activation="softmax", seed=0), "cross_entropy", "adam", lr=1e-3, seed=0)
    def epoch():
        t.fit(X, y, epochs=1, batch_size=256)
else:
    import torch
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 1024), torch.nn.ReLU(),
                                torch.nn.Linear(1024, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    lossf = torch.nn.CrossEntropyLoss()
    def epoch():
        perm = torch.randperm(len(Xt))
        for s in range(0, len(Xt), 256):
            idx = perm[s:s + 256]
            opt.zero_grad(set_to_none=True)
            lossf(model(Xt[idx]), yt[idx]).backward()
            opt.step()
base = rss()
per_epoch = []
for _ in range(epochs):
    epoch()
    per_epoch.append(rss())
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"base": base, "per_epoch": per_epoch, "peak": peak}))
"""


def measure(system, epochs, steps):
    env = {**os.environ, "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", CHILD, system, str(epochs), str(steps)], capture_output=True, text=True,
                         env=env, timeout=1800)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    r = json.loads(out.stdout.strip().splitlines()[-1])
    mb = 1 / 2**20
    return {"setup_MB": r["base"] * mb, "peak_above_setup_MB": (r["peak"] - r["base"]) * mb,
            "rss_per_epoch_MB": [v * mb for v in r["per_epoch"]],
            "growth_after_first_epoch_MB": (r["per_epoch"][-1] - r["per_epoch"][0]) * mb}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--steps", type=int, default=40, help="steps per epoch")
    ap.add_argument("--systems", default="nablanet,torch")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    res = {}
    for s in args.systems.split(","):
        try:
            res[s] = measure(s, args.epochs, args.steps)
        except RuntimeError as e:
            if "No module named" in str(e):
                continue
            raise
    if "nablanet" in res and "torch" in res:
        res["peak_ratio_nablanet_over_torch"] = res["nablanet"]["peak_above_setup_MB"] / res["torch"]["peak_above_setup_MB"]
    if args.json:
        print(json.dumps(res, indent=2))
        return res
    for s, r in res.items():
        if isinstance(r, dict):
            print(f"{s:<10} set-up {r['setup_MB']:8.1f} MB   peak above set-up {r['peak_above_setup_MB']:8.1f} MB   "
                  f"growth after epoch 1 {r['growth_after_first_epoch_MB']:+6.1f} MB   per epoch "
                  + " ".join(f"{v:.0f}" for v in r["rss_per_epoch_MB"]))
    if "peak_ratio_nablanet_over_torch" in res:
        print(f"peak ratio nablanet / PyTorch: {res['peak_ratio_nablanet_over_torch']:.2f}")
    return res


if __name__ == "__main__":
    main()
