"""Memory-bound kernels against the copy bandwidth of the same GPU: softmax, layer_norm
forward and AdamW, on large float32 tensors.

    python benchmarks/gpu/bandwidth.py [--gib 1] [--iters 10]

Each kernel's bytes are the least it must move (softmax and layer_norm: read x, write y;
AdamW: read param, grad, exp_avg, exp_avg_sq and write three of them back), divided by its
GPU time (CUDA events). The reference is a device-to-device copy of a buffer of the same
size with CuPy (read + write), timed in the same process: "% copy" is the kernel's GB/s
over the copy's. Target: >= 70% for each. AdamW is also timed over GPT-2 small's 148
parameter tensors (124M values), multi-tensor when the backend has ``adamw_step_multi``,
else one launch per tensor as the optimizer does. Needs a real GPU (exits 0 otherwise).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import describe, gpu_ms, require_gpu, table  # noqa: E402

TARGET = 0.70


def device_randn(lg: Any, shape: tuple, seed: int) -> Any:
    """A float32 lightgrad device buffer of normal values, drawn by CuPy and copied in."""
    import cupy as cp
    be = lg.device("cuda").backend
    values = cp.random.default_rng(seed).standard_normal(shape, dtype=cp.float32)
    out = be.empty(shape, np.float32)
    be.rt.dtod(out.ptr, values.data.ptr, values.nbytes)
    return out


def copy_gbps(cp: Any, nbytes: int, iters: int) -> float:
    """The better of CuPy's element-wise copy and cudaMemcpy device-to-device, in GB/s of
    traffic (each byte read once and written once)."""
    src = cp.ones(nbytes // 4, dtype=cp.float32)
    dst = cp.empty_like(src)
    kernel = gpu_ms(lambda: cp.copyto(dst, src), iters)
    memcpy = gpu_ms(lambda: cp.cuda.runtime.memcpyAsync(dst.data.ptr, src.data.ptr, nbytes,
                                                        3, 0), iters)
    return 2 * nbytes / (min(kernel, memcpy) * 1e-3) / 1e9


HYPER = (1e-3, 0.9, 0.95, 1e-8, 0.1)  # lr, beta1, beta2, eps, weight_decay


def adamw_multi(be: Any, params: list, grads: list, m: list, v: list, step: int) -> None:
    """``adamw_step_multi`` with the per-tensor primitive's arguments, the tensors as lists."""
    be.adamw_step_multi(params, grads, m, v, *HYPER, step)


def gpt2_shapes() -> list[tuple]:
    """GPT-2 small's parameter shapes (tied embedding counted once): 148 tensors."""
    d, shapes = 768, [(50257, 768), (1024, 768)]
    for _ in range(12):
        shapes += [(d,), (d,), (d, 3 * d), (3 * d,), (d, d), (d,), (d,), (d,), (d, 4 * d),
                   (4 * d,), (4 * d, d), (d,)]
    return shapes + [(d,), (d,)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0,
                        help="size of each input tensor in GiB (default: 1)")
    parser.add_argument("--iters", type=int, default=10, help="timed calls per kernel")
    args = parser.parse_args(argv)
    lg = require_gpu("bandwidth.py")
    import cupy as cp

    print(f"bandwidth.py: {describe(lg)}")
    be = lg.device("cuda").backend
    n = int(args.gib * 2**30) // 4
    copy = copy_gbps(cp, n * 4, args.iters)
    print(f"device-to-device copy of {n * 4 / 2**30:.2f} GiB: {copy:,.0f} GB/s (read + write)")

    rows: list[list[str]] = []
    worst = 1.0

    def measure(name: str, fn: Callable[[], Any], nbytes: int) -> None:
        nonlocal worst
        try:
            ms = gpu_ms(fn, args.iters)
        except NotImplementedError:
            rows.append([name, "-", "-", "-", "not implemented on cuda"])
            return
        except Exception as err:  # noqa: BLE001  (report and go on with the others)
            rows.append([name, "-", "-", "-", f"failed: {type(err).__name__}: {err}"[:90]])
            return
        gbps = nbytes / (ms * 1e-3) / 1e9
        worst = min(worst, gbps / copy)
        verdict = "ok" if gbps / copy >= TARGET else f"below {TARGET:.0%}"
        rows.append([name, f"{ms:.3f}", f"{gbps:,.0f}", f"{100 * gbps / copy:.0f}%", verdict])

    for rows_, cols in ((n // 4096, 4096), (n // 50257, 50257), (n // 768, 768)):
        x = device_randn(lg, (rows_, cols), 0)
        measure(f"softmax ({rows_}, {cols})", lambda x=x: be.softmax(x, 1),
                2 * rows_ * cols * 4)
        del x
    for rows_, cols in ((n // 1024, 1024), (n // 768, 768)):
        x = device_randn(lg, (rows_, cols), 1)
        w, b = device_randn(lg, (cols,), 2), device_randn(lg, (cols,), 3)
        measure(f"layer_norm fwd ({rows_}, {cols})",
                lambda x=x, w=w, b=b: be.layer_norm(x, w, b, 1, 1e-5),
                2 * rows_ * cols * 4 + rows_ * 8)
        del x, w, b

    # AdamW: one big tensor (a quarter of the size: it touches seven buffers' worth)
    k = n // 4
    p, g, m, v = (device_randn(lg, (k,), s) for s in range(4))
    step = [0]

    def one_tensor() -> None:
        step[0] += 1
        be.adamw_step(p, g, m, v, *HYPER, step[0])
    measure(f"adamw_step ({k:,} values)", one_tensor, 7 * k * 4)

    shapes = gpt2_shapes()
    total = sum(int(np.prod(s)) for s in shapes)
    ps, gs, ms_, vs = ([device_randn(lg, s, i + 10 * j) for j, s in enumerate(shapes)]
                       for i in range(4))

    def per_tensor() -> None:
        step[0] += 1
        for tensors in zip(ps, gs, ms_, vs):
            be.adamw_step(*tensors, *HYPER, step[0])
    measure(f"adamw_step x{len(shapes)} (GPT-2 small, {total / 1e6:.0f}M)", per_tensor,
            7 * total * 4)
    if hasattr(be, "adamw_step_multi"):
        def multi() -> None:
            step[0] += 1
            adamw_multi(be, ps, gs, ms_, vs, step[0])
        measure(f"adamw_step_multi (GPT-2 small, {total / 1e6:.0f}M)", multi, 7 * total * 4)
    else:
        rows.append(["adamw_step_multi", "-", "-", "-", "the backend has none"])

    print(table(rows, ["kernel", "ms", "GB/s", "% copy", f"target {TARGET:.0%}"]))
    print(f"bandwidth.py: worst kernel at {100 * worst:.0f}% of copy bandwidth "
          f"(target {TARGET:.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
