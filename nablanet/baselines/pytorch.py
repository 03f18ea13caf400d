"""The same network in PyTorch (CPU, float32): nablanet's layers, initial weights, cost, penalties,
optimizer, schedule, batch size and epochs.

Loaded only on request; PyTorch is an optional extra (``pip install "nablanet[peers]"``).
"""

from __future__ import annotations

import time

import numpy as np

from . import network_layers

__all__ = ["train", "TORCH_INSTALL_HINT"]

TORCH_INSTALL_HINT = "PyTorch baseline skipped: torch is not installed (pip install 'nablanet[peers]')"


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError(TORCH_INSTALL_HINT) from None
    return torch


def _activation(torch, name, alpha):
    nn = torch.nn
    table = {
        "identity": nn.Identity, "relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
        "silu": nn.SiLU, "softplus": nn.Softplus,
        "gelu": nn.GELU,  # the exact erf form, as nablanet's "gelu"
        "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
        "leaky_relu": lambda: nn.LeakyReLU(alpha),
        "elu": lambda: nn.ELU(alpha),
        "softmax": lambda: nn.Softmax(dim=1),
    }
    if name not in table:
        raise ValueError(f"no PyTorch equivalent of the activation {name!r}")
    return table[name]()


def _loss(torch, name):
    nn = torch.nn
    if name == "half_sse":
        mse = nn.MSELoss(reduction="sum")
        return lambda y, t: 0.5 * mse(y, t)
    table = {"mse": nn.MSELoss, "mae": nn.L1Loss, "huber": lambda: nn.HuberLoss(delta=1.0),
             "cross_entropy": nn.CrossEntropyLoss, "softmax_cross_entropy": nn.CrossEntropyLoss,
             "bce": nn.BCEWithLogitsLoss, "binary_cross_entropy": nn.BCEWithLogitsLoss}
    if name not in table:
        raise ValueError(f"no PyTorch equivalent of the loss {name!r}")
    return table[name]()


def _build(torch, model):
    """torch.nn.Sequential with the nablanet model's layers and current parameters; its weight tensors."""
    nn = torch.nn
    mods, weights = [], []
    for rec in network_layers(model):
        if rec["kind"] == "dense":
            W, b = rec["W"], rec["b"]
            lin = nn.Linear(W.shape[0], W.shape[1])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T, np.float32)))
                lin.bias.copy_(torch.from_numpy(np.asarray(b, np.float32)))
            mods.append(lin)
            weights.append(lin.weight)
            if rec["activation"] != "identity":
                mods.append(_activation(torch, rec["activation"], rec["alpha"]))
        elif rec["kind"] == "batch_norm":
            bn = nn.BatchNorm1d(len(rec["gamma"]), eps=rec["eps"], momentum=1.0 - rec["momentum"])
            with torch.no_grad():
                bn.weight.copy_(torch.from_numpy(np.asarray(rec["gamma"], np.float32)))
                bn.bias.copy_(torch.from_numpy(np.asarray(rec["beta"], np.float32)))
            mods.append(bn)
        elif rec["kind"] == "dropout":
            mods.append(nn.Dropout(rec["p"]))
        else:
            mods.append(_activation(torch, rec["activation"], rec["alpha"]))
    return nn.Sequential(*mods), weights


def _optimizer(torch, optimizer, net, weights, l2):
    """The torch optimizer matching nablanet's, with the L2 penalty as weight decay on the weights."""
    conf = optimizer.config()
    name = conf["name"]
    base = float(optimizer.lr(0))
    wids = {id(w) for w in weights}
    others = [p for p in net.parameters() if id(p) not in wids]
    if name == "adamw":  # torch's weight_decay is AdamW's own decoupled decay, on every parameter as in nablanet
        groups = [{"params": list(net.parameters())}]
        kw = {"betas": (conf["beta1"], conf["beta2"]), "eps": conf["eps"], "weight_decay": conf["weight_decay"]}
        return torch.optim.AdamW(groups, lr=base, **kw), True
    wd = float(conf.get("weight_decay", 0.0))  # the optimizer's own decay, on every parameter (as torch's)
    groups = [{"params": weights, "weight_decay": 2.0 * l2 + wd}, {"params": others, "weight_decay": wd}]
    if name in ("sgd", "gd"):
        opt = torch.optim.SGD(groups, lr=base, momentum=conf["momentum"], nesterov=conf["nesterov"])
    elif name == "adam":
        opt = torch.optim.Adam(groups, lr=base, betas=(conf["beta1"], conf["beta2"]), eps=conf["eps"])
    elif name == "rmsprop":
        opt = torch.optim.RMSprop(groups, lr=base, alpha=conf["rho"], eps=conf["eps"])
    elif name == "adagrad":
        opt = torch.optim.Adagrad(groups, lr=base, eps=conf["eps"])
    else:
        raise ValueError(f"no PyTorch equivalent of the optimizer {name!r}")
    return opt, False


def train(model, loss, optimizer, X, y, *, task, epochs, batch_size=None, l1=0.0, l2=0.0, seed=0):
    """Train the PyTorch copy of ``model`` (an untrained nablanet network) on ``(X, y)``.

    ``loss`` is nablanet's loss name; ``optimizer`` a :class:`nablanet.optim.Optimizer`
    (its class, hyperparameters, schedule and ``clip_norm`` are followed); ``l1``
    and ``l2`` are nablanet's penalty strengths on the weights.  One thread for
    PyTorch and for BLAS while it runs (small networks on few cores are slowed
    down many times by two thread pools spinning side by side).

    Returns ``(predict, seconds, notes)``: ``predict(X)`` gives labels
    (classification) or outputs (regression), ``seconds`` is the training
    time, ``notes`` lists what differs from nablanet (empty when nothing does).
    """
    if getattr(optimizer, "full_batch", False):
        return None, 0.0, [f"no PyTorch counterpart of nablanet's full-batch {optimizer.config()['name']} here"]
    torch = _torch()
    from ..distributed import thread_limit

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:  # the seed goes to a forked generator: the caller's torch RNG is as it was (a notebook's draws unchanged)
        with thread_limit(1), torch.random.fork_rng(devices=[]):
            return _train(torch, model, loss, optimizer, X, y, task, int(epochs), batch_size, float(l1), float(l2),
                          int(seed))
    finally:
        torch.set_num_threads(threads)


def _train(torch, model, loss, optimizer, X, y, task, epochs, batch_size, l1, l2, seed):
    torch.manual_seed(seed)
    net, weights = _build(torch, model)
    out_act = model.output_activation.name
    lossf = _loss(torch, loss)
    logits = loss in ("cross_entropy", "softmax_cross_entropy", "bce", "binary_cross_entropy")
    head = None if logits or out_act == "identity" else _activation(torch, out_act, model.output_activation.params.get("alpha"))
    opt, l2_in_loss = _optimizer(torch, optimizer, net, weights, l2)
    base = float(optimizer.lr(0))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: float(optimizer.lr(t)) / base)
    clip = optimizer.config().get("clip_norm")
    Xt = torch.from_numpy(np.asarray(X, np.float32))
    if task == "classification":
        yt = torch.from_numpy(np.asarray(y, np.int64))
        if loss in ("bce", "binary_cross_entropy"):
            yt = yt.float()[:, None]
    else:
        yt = torch.from_numpy(np.asarray(y, np.float32).reshape(len(X), -1))
    n = len(Xt)
    bs = int(batch_size) if batch_size else n
    g = torch.Generator().manual_seed(seed)
    net.train()
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        for s in range(0, n, bs):
            idx = perm[s:s + bs]
            opt.zero_grad(set_to_none=True)
            out = net(Xt[idx])
            if head is not None:
                out = head(out)
            cost = lossf(out, yt[idx])
            if l1:
                cost = cost + l1 * sum(w.abs().sum() for w in weights)
            if l2 and l2_in_loss:
                cost = cost + l2 * sum((w * w).sum() for w in weights)
            cost.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(list(net.parameters()), clip)
            opt.step()
            sched.step()
    seconds = time.perf_counter() - t0
    net.eval()

    def predict(Xn):
        with torch.no_grad():
            z = net(torch.from_numpy(np.asarray(Xn, np.float32)))
            if head is not None:
                z = head(z)
            z = z.numpy()
        if task == "classification":
            return z.argmax(1) if z.shape[1] > 1 else (z[:, 0] > 0).astype(np.int64)
        return z

    return predict, seconds, []
