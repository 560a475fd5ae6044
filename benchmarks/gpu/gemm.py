"""Our tiled SGEMM (``kernels/gemm.cu``, ``gemm_tiled_f32``) against cuBLAS (CuPy's
``matmul``) on square float32 matrices.

    python benchmarks/gpu/gemm.py [--sizes 1024,2048,4096] [--iters 10]

For each size n: C = A @ B with A, B (n, n) of unit normals, timed with CUDA events after a
warmup (``_common.gpu_ms``); GFLOP/s = 2 n^3 / time. Our result is checked against
cuBLAS's first (a wrong kernel has no speed). Prints both GFLOP/s and ours / cuBLAS.
Target: >= 80% of cuBLAS. TF32 stays off (CUPY_TF32=0): both sides do true float32
multiply-adds. Needs a real GPU (exits 0 with a message otherwise); takes a few seconds.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import describe, gpu_ms, require_gpu, table  # noqa: E402

TARGET = 0.80


def measure(lg, cp, n: int, iters: int) -> tuple[float, float, float]:
    """(our ms, cuBLAS ms, max |ours - cuBLAS| / max |cuBLAS|) for n x n @ n x n."""
    be = lg.device("cuda").backend
    rng = cp.random.default_rng(n)
    a = rng.standard_normal((n, n), dtype=cp.float32)
    b = rng.standard_normal((n, n), dtype=cp.float32)
    theirs = cp.empty((n, n), dtype=cp.float32)
    # the same matrices as lightgrad device buffers (device-to-device copies)
    da, db, ours = (be.empty((n, n), np.float32) for _ in range(3))
    be.rt.dtod(da.ptr, a.data.ptr, a.nbytes)
    be.rt.dtod(db.ptr, b.data.ptr, b.nbytes)

    def run_ours() -> None:
        be.gemm_into(da, db, ours, backend="lightgrad")

    def run_cublas() -> None:
        cp.matmul(a, b, out=theirs)

    run_ours()
    run_cublas()
    cp.cuda.runtime.deviceSynchronize()
    got = cp.empty((n, n), dtype=cp.float32)
    be.rt.dtod(got.data.ptr, ours.ptr, got.nbytes)
    error = float(cp.abs(got - theirs).max() / cp.abs(theirs).max())
    return gpu_ms(run_ours, iters, warmup=3), gpu_ms(run_cublas, iters, warmup=3), error


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1024,2048,4096")
    parser.add_argument("--iters", type=int, default=10)
    args = parser.parse_args()
    os.environ["CUPY_TF32"] = "0"  # before CuPy is imported: cuBLAS in true float32
    lg = require_gpu("gemm.py")
    import cupy as cp

    print(describe(lg))
    rows, worst = [], float("inf")
    for n in (int(s) for s in args.sizes.split(",")):
        ms_ours, ms_cublas, error = measure(lg, cp, n, args.iters)
        if not error < 1e-4:  # a wrong kernel has no speed
            print(f"n={n}: our SGEMM differs from cuBLAS (max error {error:.2e} of the "
                  "largest entry)")
            return 1
        flops = 2.0 * n ** 3
        ours_gf, cublas_gf = flops / ms_ours / 1e6, flops / ms_cublas / 1e6
        ratio = ours_gf / cublas_gf
        worst = min(worst, ratio)
        rows.append([f"{n} x {n}", f"{ms_ours:.3f}", f"{ours_gf:,.0f}", f"{ms_cublas:.3f}",
                     f"{cublas_gf:,.0f}", f"{ratio:.0%}", f"{error:.1e}"])
    print(table(rows, ["float32 GEMM", "ours ms", "ours GFLOP/s", "cuBLAS ms",
                       "cuBLAS GFLOP/s", "ours/cuBLAS", "max rel err"]))
    verdict = "meets" if worst >= TARGET else "is BELOW"
    print(f"worst ratio {worst:.0%}: {verdict} the target of {TARGET:.0%} of cuBLAS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
