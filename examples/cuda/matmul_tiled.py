"""A tiled shared-memory matrix multiply, its backward, and a race against cuBLAS.

Each block of TILE x TILE threads computes one TILE x TILE tile of ``C = A @ B``. It walks
along K one tile at a time: every thread loads one element of A's tile and one of B's into
shared memory, the block waits (``__syncthreads``), each thread adds the TILE products of
its row of A's tile and its column of B's, and the block waits again before the tiles are
overwritten. Each value loaded from global memory is used TILE times.

The backward is two more products, ``grad_A = grad_C @ B.T`` and ``grad_B = A.T @ grad_C``,
by the same kernel (the transposes are built-in copies). On a GPU, ``benchmark`` times
the kernel against lightgrad's matmul on cuBLAS (and PyTorch's, if it sees the GPU)::

    python examples/cuda/matmul_tiled.py            # check, then time at 1024..4096

>>> import lightgrad as lg
>>> a, b = lg.randn(5, 7, device="cuda"), lg.randn(7, 3, device="cuda")  # doctest: +SKIP
>>> (matmul_tiled(a, b) - a @ b).abs().max().item() < 1e-5               # doctest: +SKIP
True
"""
from __future__ import annotations

import importlib.util
import os
import time

if importlib.util.find_spec("cupy") is None:  # no GPU here: run the kernels on the emulator
    os.environ.setdefault("LIGHTGRAD_CUDA", "emulate")
import lightgrad as lg  # noqa: E402

SOURCE = r"""
// C (M x N) = A (M x K) @ B (K x N), all row-major float32. TILE comes from the compile
// options (-DTILE=16); blocks are TILE x TILE threads, the grid covers C in tiles.
extern "C" __global__ void matmul_tiled(const float* A, const float* B, float* C,
                                        int M, int N, int K) {
    __shared__ float As[TILE][TILE];
    __shared__ float Bs[TILE][TILE];
    int tx = threadIdx.x, ty = threadIdx.y;
    int row = blockIdx.y * TILE + ty, col = blockIdx.x * TILE + tx;
    float acc = 0.0f;
    for (int t = 0; t < K; t += TILE) {
        // Load one tile of A and one of B; zeros past the edges keep the sum right.
        As[ty][tx] = (row < M && t + tx < K) ? A[(long long)row * K + t + tx] : 0.0f;
        Bs[ty][tx] = (t + ty < K && col < N) ? B[(long long)(t + ty) * N + col] : 0.0f;
        __syncthreads();  // the tiles are complete
        for (int k = 0; k < TILE; ++k) acc += As[ty][k] * Bs[k][tx];
        __syncthreads();  // everyone is done with them before the next load
    }
    // No early return above: every thread of the block must reach both barriers.
    if (row < M && col < N) C[(long long)row * N + col] = acc;
}
"""

TILE = 16
KERNELS = lg.cuda.compile(SOURCE, options=(f"-DTILE={TILE}",), name="matmul_tiled.cu")
matmul_kernel = KERNELS.get_function("matmul_tiled")


def mm(a: lg.Tensor, b: lg.Tensor) -> lg.Tensor:
    """``a @ b`` for 2-D float32 cuda tensors by the tiled kernel (no autograd)."""
    (m, k), (k_b, n) = a.shape, b.shape
    if k != k_b:
        raise ValueError(f"matmul_tiled: shapes {tuple(a.shape)} and {tuple(b.shape)} "
                         "don't chain")
    c = lg.empty(m, n, device=a.device)
    grid = ((n + TILE - 1) // TILE, (m + TILE - 1) // TILE)
    matmul_kernel(grid, (TILE, TILE), (a.contiguous(), b.contiguous(), c, m, n, k))
    return c


class MatmulTiled(lg.autograd.Function):
    """``a @ b`` (2-D) whose forward and backward run the tiled kernel."""

    @staticmethod
    def forward(ctx, a: lg.Tensor, b: lg.Tensor) -> lg.Tensor:
        if a.ndim != 2 or b.ndim != 2:
            raise ValueError(f"matmul_tiled: expects 2-D tensors, got {tuple(a.shape)} and "
                             f"{tuple(b.shape)}")
        ctx.save_for_backward(a, b)
        return mm(a, b)

    @staticmethod
    def backward(ctx, grad_c: lg.Tensor) -> tuple:
        a, b = ctx.saved_tensors
        grad_a = mm(grad_c, b.T) if ctx.needs_input_grad[0] else None
        grad_b = mm(a.T, grad_c) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


def matmul_tiled(a: lg.Tensor, b: lg.Tensor) -> lg.Tensor:
    """``a @ b`` by the tiled kernel, differentiable in both."""
    return MatmulTiled.apply(a, b)


def _time(fn, repeat: int) -> float:
    fn()  # warm up (compile, allocate)
    lg.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    lg.cuda.synchronize()
    return (time.perf_counter() - start) / repeat


def benchmark(sizes: tuple = (1024, 2048, 4096), repeat: int = 10) -> list[dict]:
    """Seconds per ``n x n`` product: the tiled kernel, lightgrad's matmul (cuBLAS) and,
    when PyTorch sees the GPU, ``torch.matmul`` (``lg.cuda.synchronize`` waits for the
    whole device, PyTorch's work included). Meant for a real GPU."""
    previous = lg.cuda.get_matmul_backend()
    lg.cuda.set_matmul_backend("cublas")  # lightgrad's matmul on cuBLAS (the default)
    try:
        return [_benchmark_one(n, repeat) for n in sizes]
    finally:
        lg.cuda.set_matmul_backend(previous)


def _benchmark_one(n: int, repeat: int) -> dict:
    a, b = lg.randn(n, n, device="cuda"), lg.randn(n, n, device="cuda")
    row = {"n": n, "tiled": _time(lambda: mm(a, b), repeat),
           "cublas": _time(lambda: a @ b, repeat)}
    try:
        import torch
    except ImportError:
        return row
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = False  # float32 products, as ours
        ta, tb = torch.randn(n, n, device="cuda"), torch.randn(n, n, device="cuda")
        row["torch"] = _time(lambda: torch.matmul(ta, tb), repeat)
    return row


def main() -> None:
    import numpy as np
    a = lg.randn(300, 200, device="cuda", requires_grad=True)
    b = lg.randn(200, 100, device="cuda", requires_grad=True)
    matmul_tiled(a, b).square().sum().backward()
    a2, b2 = a.detach().requires_grad_(), b.detach().requires_grad_()
    (a2 @ b2).square().sum().backward()
    for name, ours, ref in (("grad A", a.grad, a2.grad), ("grad B", b.grad, b2.grad)):
        scale = np.abs(ref.cpu().numpy()).max()
        print(f"{name}: max relative difference to lightgrad's matmul "
              f"{np.abs(ours.cpu().numpy() - ref.cpu().numpy()).max() / scale:.1e}")
    if lg.cuda.is_emulated():
        print("on the emulator: timings against cuBLAS need a GPU")
        return
    print(f"{lg.cuda.get_device_name()}: ms per n x n float32 product (TFLOP/s)")
    for row in benchmark():
        cells = [f"{k} {v * 1e3:8.3f} ({2 * row['n'] ** 3 / v / 1e12:5.1f})"
                 for k, v in row.items() if k != "n"]
        print(f"n={row['n']:5d}  " + "   ".join(cells))


if __name__ == "__main__":
    main()
