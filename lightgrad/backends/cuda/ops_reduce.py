"""Reductions over any axes (kernel: reduce.cu)."""
from __future__ import annotations

import math

import numpy as np

from . import launch
from .array import DeviceArray, merged_layout
from .backend import HALF, suffix
from .runtime import layout

_NO_IDENTITY = ("max", "min")


def _acc_dtype(dtype: np.dtype) -> np.dtype:
    if dtype.kind == "f" or dtype in HALF:
        return np.dtype(np.float64) if dtype == np.float64 else np.dtype(np.float32)
    return np.dtype(np.int64)


class ReduceOps:
    """sum, mean, prod, amax, amin, all, any."""

    def reduce(self, op: str, x: DeviceArray, axes: tuple, keepdim: bool,
               scale_by_count: bool = False) -> DeviceArray:
        """``op`` over ``axes`` in the accumulator dtype (float32, float64 or int64)."""
        axes = tuple(sorted(a % max(x.ndim, 1) for a in axes)) if x.ndim else ()
        kept = [a for a in range(x.ndim) if a not in axes]
        keep_shape = tuple(x.shape[a] for a in kept)
        red_shape = tuple(x.shape[a] for a in axes)
        m, k = math.prod(keep_shape), math.prod(red_shape)
        out_shape = tuple(1 if a in axes else n for a, n in enumerate(x.shape)) if keepdim \
            else keep_shape
        acc = _acc_dtype(x.dtype)
        if k == 0 and op in _NO_IDENTITY and m:
            raise ValueError(f"a{op}: zero-size reduction over axes {axes} of shape "
                             f"{x.shape} has no identity")
        out = self.empty((m,), acc)
        if m == 0:
            return DeviceArray(self.rt, out.mem, out.ptr, out_shape,
                               self.strides_of(out_shape), acc)
        code = self.enum("reduce", "ReduceOp", "R_")[op]
        keep = layout(*merged_layout(keep_shape, tuple(x.strides[a] for a in kept)))
        red = layout(*merged_layout(red_shape, tuple(x.strides[a] for a in axes)))
        scale = 1.0 / k if scale_by_count and k and acc.kind == "f" else 1
        if launch.short_reduction(m, k):
            kernel = self.kernel("reduce", f"reduce_short_{suffix(x.dtype, op)}")
            self.launch_elementwise(kernel, m, [code, m, k, x, keep, red, scale, out])
            return DeviceArray(self.rt, out.mem, out.ptr, out_shape,
                               self.strides_of(out_shape), acc)
        grid, block, chunks = launch.reduction(m, k, self.rt.multiprocessor_count)
        kernel = self.kernel("reduce", f"reduce_{suffix(x.dtype, op)}")
        if chunks == 1:
            kernel(grid, block, [code, m, k, 1, x, keep, red, scale, out])
        else:
            partial = self.empty((m * chunks,), acc)
            kernel(grid, block, [code, m, k, chunks, x, keep, red, 1, partial])
            grid2, block2, _ = launch.reduction(m, 1, self.rt.multiprocessor_count)
            again = self.kernel("reduce", f"reduce_{suffix(acc, op)}")
            again((grid2[0], 1), launch.rows(m, chunks, 1)[1],
                  [code, m, chunks, 1, partial, layout((m,), (chunks,)), layout((chunks,), (1,)),
                   scale, out])
        return DeviceArray(self.rt, out.mem, out.ptr, out_shape, self.strides_of(out_shape),
                           acc)

    def _finish(self, out: DeviceArray, dtype) -> DeviceArray:
        return out if out.dtype == np.dtype(dtype) else self.astype(out, dtype)

    def sum(self, x, axes, keepdim, dtype=None) -> DeviceArray:
        return self._finish(self.reduce("sum", x, axes, keepdim), dtype or x.dtype)

    def mean(self, x, axes, keepdim, dtype=None) -> DeviceArray:
        src = x if dtype is None or np.dtype(dtype) == x.dtype else self.astype(x, dtype)
        return self._finish(self.reduce("sum", src, axes, keepdim, scale_by_count=True),
                            dtype or x.dtype)

    def prod(self, x, axes, keepdim, dtype=None) -> DeviceArray:
        return self._finish(self.reduce("prod", x, axes, keepdim), dtype or x.dtype)

    def amax(self, x, axes, keepdim) -> DeviceArray:
        return self._finish(self.reduce("max", x, axes, keepdim), x.dtype)

    def amin(self, x, axes, keepdim) -> DeviceArray:
        return self._finish(self.reduce("min", x, axes, keepdim), x.dtype)

    def all(self, x, axes, keepdim) -> DeviceArray:
        return self._finish(self.reduce("all", x, axes, keepdim), np.bool_)

    def any(self, x, axes, keepdim) -> DeviceArray:
        return self._finish(self.reduce("any", x, axes, keepdim), np.bool_)
