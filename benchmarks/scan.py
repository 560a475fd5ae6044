"""The fused selective scan (F.selective_scan) vs the step-by-step loop, forward+backward.

    python benchmarks/scan.py [--threads N] [--size B L D N]

Mamba's usage at B=8, L=256, D=256, N=16 (float32; D, z, delta_bias and softplus on):
``F.selective_scan`` (one primitive forward, a recomputing primitive backward) against
the mamba-minimal loop, one position at a time, written with lightgrad ops and with
PyTorch ops. The PyTorch loop is timed twice: exactly as mamba-minimal writes it
(``deltaA[:, i]`` indexing, whose backward writes a full-size gradient at every step) and
with ``unbind`` instead (the same arithmetic, a cheap backward) - the stronger baseline.
Prints ms per forward+backward and the ratios. Targets: >= 20x the lightgrad loop, faster
than the PyTorch loop. With ``--threads 1`` the clock is the process's CPU time, which other
processes on the machine barely disturb; the slow loops run once (after one warm-up call
of the fused op and of the unbind loop), so a full run takes a few minutes.
"""
from __future__ import annotations

import argparse
import os
import time

ARGS = argparse.ArgumentParser()
ARGS.add_argument("--threads", type=int, default=2)
ARGS.add_argument("--size", type=int, nargs=4, default=(8, 256, 256, 16),
                  metavar=("B", "L", "D", "N"))
OPTS = ARGS.parse_args()
os.environ["OPENBLAS_NUM_THREADS"] = str(OPTS.threads)  # before NumPy loads OpenBLAS
clock = time.process_time if OPTS.threads == 1 else time.perf_counter

import numpy as np  # noqa: E402

import lightgrad as lg  # noqa: E402
import lightgrad.nn.functional as F  # noqa: E402


def best_ms(fn, rounds: int, warm_up: bool = True) -> float:
    if warm_up:
        fn()
    best = float("inf")
    for _ in range(rounds):
        start = clock()
        fn()
        best = min(best, clock() - start)
    return best * 1e3


def lightgrad_loop(u, delta, A, B, C, D, z, delta_bias):
    """mamba-minimal's selective_scan with lightgrad ops ((b, d, l) inputs)."""
    b, d, length = u.shape
    delta = F.softplus(delta + delta_bias.reshape(d, 1))
    delta_a = lg.einsum("bdl,dn->bldn", delta, A).exp()
    delta_b_u = lg.einsum("bdl,bnl,bdl->bldn", delta, B, u)
    x = lg.zeros(b, d, A.shape[1])
    ys = []
    for i in range(length):
        x = delta_a[:, i] * x + delta_b_u[:, i]
        ys.append(lg.einsum("bdn,bn->bd", x, C[:, :, i]))
    y = lg.stack(ys, dim=2) + u * D.reshape(d, 1)
    return y * F.silu(z)


def torch_loop(torch, u, delta, A, B, C, D, z, delta_bias, unbind: bool):
    """The same loop in PyTorch; ``unbind`` takes the steps apart with unbind instead of
    indexing (same values, a backward that doesn't write a full-size tensor per step)."""
    b, d, length = u.shape
    delta = torch.nn.functional.softplus(delta + delta_bias[:, None])
    delta_a = torch.exp(torch.einsum("bdl,dn->bldn", delta, A))
    delta_b_u = torch.einsum("bdl,bnl,bdl->bldn", delta, B, u)
    if unbind:
        delta_a, delta_b_u = delta_a.unbind(1), delta_b_u.unbind(1)
        cs = C.unbind(2)
    else:
        cs = [C[:, :, i] for i in range(length)]
    x = u.new_zeros(b, d, A.shape[1])
    ys = []
    for i in range(length):
        step_a = delta_a[i] if unbind else delta_a[:, i]
        step_b = delta_b_u[i] if unbind else delta_b_u[:, i]
        x = step_a * x + step_b
        ys.append(torch.einsum("bdn,bn->bd", x, cs[i]))
    y = torch.stack(ys, dim=2) + u * D[:, None]
    return y * torch.nn.functional.silu(z)


def main() -> None:
    import torch
    torch.set_num_threads(OPTS.threads)
    b, length, d, n = OPTS.size
    rng = np.random.default_rng(0)
    f32 = np.float32
    arrays = [rng.standard_normal((b, d, length), dtype=f32),           # u
              rng.standard_normal((b, d, length), dtype=f32) * 0.5,     # delta
              -np.tile(np.arange(1, n + 1, dtype=f32), (d, 1)),         # A as in Mamba
              rng.standard_normal((b, n, length), dtype=f32),           # B
              rng.standard_normal((b, n, length), dtype=f32),           # C
              rng.standard_normal(d, dtype=f32),                        # D
              rng.standard_normal((b, d, length), dtype=f32),           # z
              rng.standard_normal(d, dtype=f32) * 0.5 - 2.0]            # delta_bias
    ours = [lg.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    grad = rng.standard_normal((b, d, length), dtype=f32)
    g_lg, g_torch = lg.tensor(grad), torch.tensor(grad)

    def fused():
        for t in ours:
            t.grad = None
        u, delta, A, B, C, D, z, bias = ours
        F.selective_scan(u, delta, A, B, C, D, z, bias, delta_softplus=True).backward(g_lg)

    def lg_loop():
        for t in ours:
            t.grad = None
        lightgrad_loop(*ours).backward(g_lg)

    def torch_run(unbind: bool):
        def run():
            for t in theirs:
                t.grad = None
            torch_loop(torch, *theirs, unbind=unbind).backward(g_torch)
        return run

    # the same numbers first: fused vs the PyTorch loop (values and one gradient)
    with lg.no_grad():
        y = F.selective_scan(*ours[:5], *ours[5:], delta_softplus=True).numpy()
    ty = torch_loop(torch, *theirs, unbind=True)
    err = np.abs(y - ty.detach().numpy()).max() / np.abs(ty.detach().numpy()).max()
    kind = "CPU time" if OPTS.threads == 1 else "wall time"
    print(f"B={b} L={length} D={d} N={n} float32, {OPTS.threads} thread(s), {kind}; "
          f"max |y - y_torch| / max |y_torch| = {err:.1e}")
    results = [("fused F.selective_scan", best_ms(fused, 5)),
               ("lightgrad loop (mamba-minimal)", best_ms(lg_loop, 1, warm_up=False)),
               ("PyTorch loop, unbind", best_ms(torch_run(True), 2)),
               ("PyTorch loop, mamba-minimal indexing",
                best_ms(torch_run(False), 1, warm_up=False))]
    base = results[0][1]
    print(f"{'forward+backward':38s} {'ms':>10s} {'x fused':>9s}")
    for name, ms in results:
        print(f"{name:38s} {ms:10.1f} {ms / base:9.1f}")


if __name__ == "__main__":
    main()
