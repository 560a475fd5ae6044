"""One training step of a 784-256-10 MLP (batch 128): forward, backward, SGD update.

    python benchmarks/mlp_step.py

Runs the same step in lightgrad (nn.Linear + F.cross_entropy + optim.SGD), in hand-written
NumPy (the floor: the same BLAS calls with no framework) and in PyTorch (2 threads), in one
process, and prints ms/step and the ratios. Targets: <= 1.3x NumPy, <= 1.2x PyTorch.
PyTorch and NumPy's BLAS use the same number of threads (``--threads``, default 2).
"""
from __future__ import annotations

import time

import numpy as np

import lightgrad as lg
from steps import classifier_step

BATCH, IN, HIDDEN, OUT = 128, 784, 256, 10


def timed(step, warmup: int = 5, iters: int = 200) -> float:
    for _ in range(warmup):
        step()
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(iters // 5):
            step()
        best = min(best, (time.perf_counter() - start) / (iters // 5))
    return best * 1e3


def numpy_step(x, y, params, lr=0.1):
    w1, b1, w2, b2 = params
    h = x @ w1.T + b1
    a = np.maximum(h, 0)
    logits = a @ w2.T + b2
    shifted = logits - logits.max(1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(1, keepdims=True)
    loss = -np.log(probs[np.arange(len(y)), y]).mean()
    dlogits = probs
    dlogits[np.arange(len(y)), y] -= 1
    dlogits /= len(y)
    dw2 = dlogits.T @ a
    db2 = dlogits.sum(0)
    da = dlogits @ w2
    da *= h > 0
    dw1 = da.T @ x
    db1 = da.sum(0)
    for p, g in zip(params, (dw1, db1, dw2, db2)):
        p -= lr * g
    return loss


def main() -> None:
    import argparse

    import torch
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2,
                        help="threads for PyTorch and NumPy's BLAS (default 2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lg.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, IN), dtype=np.float32)
    y = rng.integers(0, OUT, BATCH)
    init = [rng.standard_normal(s, dtype=np.float32) * 0.05
            for s in ((HIDDEN, IN), (HIDDEN,), (OUT, HIDDEN), (OUT,))]

    np_params = [p.copy() for p in init]
    t_numpy = timed(lambda: numpy_step(x, y, np_params))

    from lightgrad import nn, optim
    from lightgrad.nn import functional as F
    model = nn.Sequential(nn.Linear(IN, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, OUT))
    for p, v in zip(model.parameters(), init):
        p.data = lg.tensor(v)
    opt = optim.SGD(model.parameters(), lr=0.1)
    lx, ly = lg.tensor(x), lg.tensor(y)

    lg_step = classifier_step(model, opt, F, lx, ly)
    t_lg = timed(lg_step)

    tmodel = torch.nn.Sequential(torch.nn.Linear(IN, HIDDEN), torch.nn.ReLU(),
                                 torch.nn.Linear(HIDDEN, OUT))
    with torch.no_grad():
        for p, v in zip(tmodel.parameters(), init):
            p.copy_(torch.tensor(v))
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.1)
    tx, ty = torch.tensor(x), torch.tensor(y)

    torch_step = classifier_step(tmodel, topt, torch.nn.functional, tx, ty)
    t_torch = timed(torch_step)

    print(f"MLP {IN}-{HIDDEN}-{OUT}, batch {BATCH}: forward + backward + SGD step")
    print(f"  numpy     {t_numpy:7.3f} ms/step")
    print(f"  lightgrad {t_lg:7.3f} ms/step   {t_lg / t_numpy:.2f}x numpy")
    print(f"  pytorch   {t_torch:7.3f} ms/step   lightgrad/pytorch = {t_lg / t_torch:.2f}x")


if __name__ == "__main__":
    main()
