"""CUDA primitives: matmul: the vendor BLAS (cuBLAS through ``runtime.gemm``) or our own
GEMM kernels (``kernels/gemm.cu``).

Which one runs is a process-wide choice: ``lightgrad.cuda.set_matmul_backend("cublas" |
"lightgrad")``, or the ``LIGHTGRAD_CUDA_MATMUL`` environment variable (default "cublas"; on
the emulator "cublas" is NumPy's BLAS over the emulated memory). "naive" selects the
textbook one-thread-per-output kernel (for teaching and tests).

cuBLAS computes float32 and float64; float16/bfloat16 go through it in float32 and are
rounded back (as cpu.py does), and integer and bool products always run on our kernels
(cuBLAS has none). Our tiled kernel reads half types directly, accumulating in float32.

>>> previous = matmul_backend()
>>> set_matmul_backend("lightgrad"); matmul_backend()
'lightgrad'
>>> set_matmul_backend(previous)
"""
from __future__ import annotations

import math
import os

import numpy as np

from . import launch
from .array import DeviceArray, merged_layout
from .backend import HALF, suffix
from .runtime import layout

MATMUL_BACKENDS = ("cublas", "lightgrad", "naive")
_BLAS_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# gemm_tiled_*'s tile of C per block: 128 x 128 for 4-byte accumulators (TM = TN = 8 in
# gemm.cu), 64 x 64 for 8-byte ones (double, long long: TM = TN = 4)
_TILE_128 = ("f32", "f16", "bf16")
_INT32_LIMIT = 2**31 - 256

_choice = os.environ.get("LIGHTGRAD_CUDA_MATMUL", "cublas").strip().lower() or "cublas"


def set_matmul_backend(name: str) -> None:
    """Run matmul (and the GEMMs of convolution) on cuBLAS ("cublas") or on our own
    kernels ("lightgrad"; "naive" for the textbook kernel)."""
    global _choice
    name = str(name).strip().lower()
    if name not in MATMUL_BACKENDS:
        raise ValueError(f"set_matmul_backend: expected one of {', '.join(MATMUL_BACKENDS)}, "
                         f"got {name!r}")
    _choice = name


def matmul_backend() -> str:
    """The current choice (see ``set_matmul_backend``)."""
    if _choice not in MATMUL_BACKENDS:
        raise ValueError(f"LIGHTGRAD_CUDA_MATMUL={_choice!r}: expected one of "
                         f"{', '.join(MATMUL_BACKENDS)}")
    return _choice


def _batch_strides(x: DeviceArray, batch: tuple) -> tuple:
    """Strides of x's batch axes (all but the last two) read at ``batch`` (broadcast: 0)."""
    own = x.ndim - 2
    lead = len(batch) - own
    return (0,) * lead + tuple(s if n != 1 else 0
                               for n, s in zip(x.shape[:own], x.strides[:own]))


def _batch_layout(x: DeviceArray, batch: tuple):
    """The lg_layout giving the offset of batch item z of x (gemm.cu's *_batch)."""
    return layout(*merged_layout(batch, _batch_strides(x, batch)))


def _blas_strides(rows: int, cols: int, rs: int, cs: int) -> tuple | None:
    """(rs, cs) of a matrix as BLAS takes it: row-major (cs == 1, rs >= cols) or
    column-major (rs == 1, cs >= rows), strides of length-1 axes normalised; None if it is
    neither."""
    if cols == 1:
        cs = 1
    if rows == 1:
        rs = max(cols, 1) if cs == 1 else 1
    if cs == 1 and rs >= cols:
        return rs, cs
    if rs == 1 and cs >= rows:
        return rs, cs
    return None


class LinalgOps:
    """matmul, and ``gemm_into`` (the GEMM that convolution uses too)."""

    def matmul(self, a: DeviceArray, b: DeviceArray) -> DeviceArray:
        if a.ndim < 2 or b.ndim < 2:
            raise ValueError(f"matmul: the cuda backend takes operands with at least 2 dims, "
                             f"got shapes {a.shape} and {b.shape}")
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align: "
                             f"{a.shape[-1]} != {b.shape[-2]}")
        if a.dtype != b.dtype:
            dtype = np.result_type(a.dtype, b.dtype)
            a, b = self.astype(a, dtype), self.astype(b, dtype)
        batch = tuple(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
        out = self.empty(batch + (a.shape[-2], b.shape[-1]), a.dtype)
        self.gemm_into(a, b, out)
        return out

    def gemm_into(self, a: DeviceArray, b: DeviceArray, out: DeviceArray,
                  backend: str | None = None) -> None:
        """``out[...] = a @ b``: a (..., M, K), b (..., K, N), out (batch..., M, N) with unit
        column stride (any row and batch strides); batch axes broadcast; one dtype."""
        if out.size == 0:
            return
        if a.shape[-1] == 0:
            self.fill(out, 0)
            return
        a, b, out = _fold_rows(a, b, out)
        backend = backend or matmul_backend()
        if backend == "cublas" and a.dtype in _BLAS_DTYPES:
            self._gemm_blas(a, b, out)
        elif backend == "cublas" and a.dtype in HALF:  # in float32, rounded back
            wide = self.empty(out.shape, np.float32)
            self._gemm_blas(self.astype(a, np.float32), self.astype(b, np.float32), wide)
            self.cast_into(out, wide)
        else:
            self._gemm_kernel("naive" if backend == "naive" else "tiled", a, b, out)

    # --- our kernels
    def _gemm_kernel(self, kind: str, a: DeviceArray, b: DeviceArray,
                     out: DeviceArray) -> None:
        batch = out.shape[:-2]
        (m, k), n = a.shape[-2:], b.shape[-1]
        count = math.prod(batch)
        sfx = suffix(a.dtype, "matmul")
        if max(m, n, k) >= _INT32_LIMIT:  # gemm_tiled counts rows and k-steps in int
            kind = "naive"
        if kind == "naive":
            grid, block = launch.gemm_naive(m, n, count)
        else:
            tile = 128 if sfx in _TILE_128 else 64
            grid, block = launch.gemm_tiled(m, n, count, tile, tile)
        kernel = self.kernel("gemm", f"gemm_{kind}_{sfx}")
        kernel(grid, block, [m, n, k, count,
                             a, _batch_layout(a, batch), a.strides[-2], a.strides[-1],
                             b, _batch_layout(b, batch), b.strides[-2], b.strides[-1],
                             out, _batch_layout(out, batch), out.strides[-2]])

    # --- the vendor BLAS
    def _gemm_blas(self, a: DeviceArray, b: DeviceArray, out: DeviceArray) -> None:
        """``runtime.gemm`` on 3-d operands (B, rows, cols): each matrix row- or
        column-major (see _blas_strides) with one batch stride per operand (0: broadcast),
        out row-major with a leading dimension >= N. Inputs that are neither are copied."""
        batch = out.shape[:-2]
        a3, b3 = self._blas_operand(a, batch), self._blas_operand(b, batch)
        out3 = self._blas_operand(out, batch, writable=True)
        if out3 is not None:
            self.rt.gemm(a3, b3, out3)
            return
        dense = self.empty((math.prod(batch),) + out.shape[-2:], out.dtype)
        self.rt.gemm(a3, b3, dense)
        self.cast_into(out, dense.view(out.shape, self.strides_of(out.shape)))

    def _blas_operand(self, x: DeviceArray, batch: tuple,
                      writable: bool = False) -> DeviceArray | None:
        """x as the (B, rows, cols) view runtime.gemm takes, or a dense copy of it (None
        for an output that can't be written in place)."""
        rows, cols = x.shape[-2:]
        count = math.prod(batch)
        bshape, bstrides = merged_layout(batch, _batch_strides(x, batch))
        strides = _blas_strides(rows, cols, *x.strides[-2:])
        if writable and strides is not None and strides[1] != 1:
            strides = None
        if len(bshape) == 1 and strides is not None and bstrides[0] >= 0:
            step = bstrides[0] if count > 1 else 0
            return x.view((count, rows, cols), (step,) + strides)
        if writable:
            return None
        wide = x.view(tuple(batch) + (rows, cols),
                      _batch_strides(x, batch) + tuple(x.strides[-2:]))
        dense = self.copy(wide)  # broadcast batch axes expanded, matrices row-major
        return dense.view((count, rows, cols), (rows * cols, cols, 1))


def _fold_rows(a: DeviceArray, b: DeviceArray, out: DeviceArray) -> tuple:
    """(..., M, K) @ (K, N) as one (rows, K) @ (K, N) product when a's and out's leading
    axes merge into one (a linear layer on a batch: one big GEMM instead of many small)."""
    if a.ndim <= 2 or any(n != 1 for n in b.shape[:-2]):
        return a, b, out
    a_rows = merged_layout(a.shape[:-1], a.strides[:-1])
    out_rows = merged_layout(out.shape[:-1], out.strides[:-1])
    if len(a_rows[0]) != 1 or len(out_rows[0]) != 1:
        return a, b, out
    rows = math.prod(a.shape[:-1])
    return (a.view((rows, a.shape[-1]), (a_rows[1][0], a.strides[-1])),
            b.view(b.shape[-2:], b.strides[-2:]),
            out.view((rows, out.shape[-1]), (out_rows[1][0], out.strides[-1])))
