"""conv2d forward and forward+backward: lightgrad (NumPy backend) vs PyTorch CPU, one run.

    python benchmarks/conv.py [--threads N]

Shapes: LeNet-sized (N=64, 1->6 5x5 on 28x28; 6->16 5x5 on 12x12; the CLI's LeNet layers
1->32 5x5 pad 2 on 28x28 and 32->64 on 14x14) and ResNet-sized (N=8, 64->64 3x3 pad 1 on
56x56), float32, both libraries on 2 threads (``--threads`` sets PyTorch's threads and
OpenBLAS's). Prints ms per call for each and the ratio lightgrad / PyTorch. Target (issue
12): ResNet fwd+bwd <= 1.2x; ``cpu_time.py conv`` is the one-thread CPU-time figure. The two
frameworks are timed in alternating rounds (best round wins), so load from other processes
hits both alike; with ``--threads 1`` the clock is the process's CPU time, which other
processes barely disturb. lightgrad's paths: ``backends/cpu_conv.py``.
"""
from __future__ import annotations

import argparse
import os
import time

THREADS = argparse.ArgumentParser()
THREADS.add_argument("--threads", type=int, default=2)
N_THREADS = THREADS.parse_args().threads
os.environ["OPENBLAS_NUM_THREADS"] = str(N_THREADS)  # before NumPy loads OpenBLAS
clock = time.process_time if N_THREADS == 1 else time.perf_counter

import numpy as np  # noqa: E402

import lightgrad as lg  # noqa: E402
import lightgrad.nn.functional as F  # noqa: E402

# name, (N, C_in, H, W), (C_out, C_in, kh, kw), padding
CASES = [
    ("LeNet conv1 1->6 5x5 28x28", (64, 1, 28, 28), (6, 1, 5, 5), 0),
    ("LeNet conv2 6->16 5x5 12x12", (64, 6, 12, 12), (16, 6, 5, 5), 0),
    ("LeNet 1->32 5x5 28x28 pad 2", (64, 1, 28, 28), (32, 1, 5, 5), 2),
    ("LeNet 32->64 5x5 14x14 pad 2", (64, 32, 14, 14), (64, 32, 5, 5), 2),
    ("ResNet 64->64 3x3 56x56", (8, 64, 56, 56), (64, 64, 3, 3), 1),
]


def best_ms(fns, rounds: int = 7, budget_s: float = 0.25) -> list[float]:
    """Best per-call time (ms) of each fn, timed in alternating rounds."""
    for fn in fns:
        fn()
    iters = []
    for fn in fns:  # calls per round so one round of each takes about budget_s / rounds
        start = clock()
        fn()
        iters.append(max(1, int(budget_s / rounds / max(clock() - start, 1e-6))))
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            start = clock()
            for _ in range(iters[i]):
                fn()
            best[i] = min(best[i], (clock() - start) / iters[i] * 1e3)
    return best


def bench_case(torch, name: str, xs: tuple, ws: tuple, pad: int, report: bool = True) -> None:
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal(xs, dtype=np.float32)
    w_np = rng.standard_normal(ws, dtype=np.float32) * 0.1
    b_np = rng.standard_normal(ws[0], dtype=np.float32)
    x, w, b = (lg.tensor(a, requires_grad=True) for a in (x_np, w_np, b_np))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x_np, w_np, b_np))
    with lg.no_grad():
        g = lg.ones(F.conv2d(x, w, b, padding=pad).shape)
    tg = torch.ones(tuple(g.shape))

    def lg_forward():
        with lg.no_grad():
            F.conv2d(x, w, b, padding=pad)

    def torch_forward():
        with torch.no_grad():
            torch.nn.functional.conv2d(tx, tw, tb, padding=pad)

    def lg_train():
        x.grad = w.grad = b.grad = None
        F.conv2d(x, w, b, padding=pad).backward(g)

    def torch_train():
        tx.grad = tw.grad = tb.grad = None
        torch.nn.functional.conv2d(tx, tw, tb, padding=pad).backward(tg)

    for label, ours, theirs in (("forward", lg_forward, torch_forward),
                                ("fwd+bwd", lg_train, torch_train)):
        if not report:  # warm-up: the first large allocations of a process are slow
            for fn in (ours, theirs):
                fn()
            continue
        ms_lg, ms_torch = best_ms([ours, theirs])
        print(f"{name:30s} {label:9s} {ms_lg:10.3f} {ms_torch:8.3f} {ms_lg / ms_torch:6.2f}")


def main() -> None:
    import torch
    torch.set_num_threads(N_THREADS)
    kind = "CPU time" if N_THREADS == 1 else "wall time"
    print(f"ms per call, {N_THREADS} thread(s), {kind}")
    print(f"{'case':30s} {'pass':9s} {'lightgrad':>10s} {'torch':>8s} {'ratio':>6s}")
    for case in CASES:
        bench_case(torch, *case, report=False)
    for case in CASES:
        bench_case(torch, *case)


if __name__ == "__main__":
    main()
