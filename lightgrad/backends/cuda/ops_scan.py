"""Mamba's selective scan on our kernels (scan.cu), forward and the recomputing backward.

Matches its NumPy twin ``backends/cpu_scan.py``: results in u's dtype (gradients in each
input's dtype), float32 math for float16/bfloat16. The kernels read contiguous buffers, so
views are copied first; A, D and delta_bias go in the compute dtype.

>>> import lightgrad as lg                                                # doctest: +SKIP
>>> import lightgrad.nn.functional as F                                   # doctest: +SKIP
>>> u = lg.ones(1, 1, 3, device="cuda"); dt = lg.full((1, 1, 3), 0.5, device="cuda")
>>> F.selective_scan(u, dt, -lg.ones(1, 1, device="cuda"), lg.ones(1, 1, 3, device="cuda"),
...                  lg.ones(1, 1, 3, device="cuda")).shape               # doctest: +SKIP
(1, 1, 3)
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import launch
from .array import DeviceArray
from .backend import FLOATS, suffix

_CHUNK = 8  # scan.cu's SCAN_CHUNK: positions per checkpoint of the backward


def _acc_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype kernels compute in: float64 for float64, float32 for the others."""
    return np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32)


class ScanOps:
    """Mixin of CUDABackend (see backend.py for the shared helpers)."""

    def _scan_setup(self, op: str, u: DeviceArray, A: DeviceArray, B: DeviceArray) -> tuple:
        """(kernel suffix, compute dtype, groups, lanes per channel), checking the state
        size against what the kernels keep in registers."""
        sfx = suffix(u.dtype, op)
        if sfx not in FLOATS:
            raise TypeError(f"{op}: needs floating-point inputs on cuda, got {u.dtype}")
        n = A.shape[1]
        if n > launch.SCAN_MAX_STATE:
            raise ValueError(f"{op}: the cuda kernels keep at most {launch.SCAN_MAX_STATE} "
                             f"states per channel in registers; A {A.shape} has {n}")
        groups = B.shape[1] if B.ndim == 4 else 1
        return sfx, _acc_dtype(u.dtype), groups, launch.scan_lanes(n)

    def _scan_inputs(self, u, delta, A, B, C, D, z, delta_bias, softplus, acc,
                     groups, lanes) -> list:
        """The kernels' common leading arguments: sizes, then contiguous buffers."""
        b, d, length = u.shape

        def data(x: Any) -> Any:
            return None if x is None else self.contiguous(x)

        def param(p: Any) -> Any:
            return None if p is None else self.contiguous(
                p if p.dtype == acc else self.astype(p, acc))

        return [b * d, d, length, A.shape[1], groups, lanes, data(u), data(delta), param(A),
                data(B), data(C), param(D), data(z), param(delta_bias), bool(softplus)]

    def _scan_launch(self, name: str, channels: int, lanes: int, args: list) -> None:
        grid, block = launch.scan_channels(channels, lanes, self.rt.multiprocessor_count)
        self.kernel("scan", name)(grid, block, args)

    def selective_scan(self, u, delta, A, B, C, D, z, delta_bias, delta_softplus) -> tuple:
        sfx, acc, groups, lanes = self._scan_setup("selective_scan", u, A, B)
        b, d, length = u.shape
        y = self.empty((b, d, length), u.dtype)
        last = self.empty((b, d, A.shape[1]), u.dtype)
        if length == 0 or last.size == 0:
            return y, self.full(last.shape, 0, u.dtype)
        args = self._scan_inputs(u, delta, A, B, C, D, z, delta_bias, delta_softplus, acc,
                                 groups, lanes)
        self._scan_launch(f"selective_scan_forward_{sfx}", b * d, lanes, args + [y, last])
        return y, last

    def selective_scan_backward(self, grad, grad_last, u, delta, A, B, C, D, z, delta_bias,
                                delta_softplus) -> tuple:
        sfx, acc, groups, lanes = self._scan_setup("selective_scan_backward", u, A, B)
        b, d, length = u.shape
        n = A.shape[1]
        bc_shape = (b, groups, n, length)
        du = self.empty(u.shape, u.dtype)
        dz = self.empty(u.shape, u.dtype) if z is not None else None
        ddelta = self.empty(u.shape, acc)
        dA, dD = self.empty((b, d, n), acc), self.empty((b, d), acc)
        dB, dC = self.full(bc_shape, 0, acc), self.full(bc_shape, 0, acc)
        chunks = -(-length // _CHUNK)
        if length and b * d and n:
            checkpoints = self.empty((b * d, chunks, n), acc)
            args = self._scan_inputs(u, delta, A, B, C, D, z, delta_bias, delta_softplus,
                                     acc, groups, lanes)
            last = None if grad_last is None else self.contiguous(grad_last)
            self._scan_launch(f"selective_scan_backward_{sfx}", b * d, lanes,
                              args + [self.contiguous(grad), last, du, ddelta, dA, dB, dC, dD,
                                      dz, checkpoints])
        else:  # nothing to walk: every gradient is zero
            for buf in (du, dz, ddelta, dA, dD):
                if buf is not None:
                    self.fill(buf, 0)

        def cast(x: DeviceArray, like: Any) -> DeviceArray:
            return x if x.dtype == like.dtype else self.astype(x, like.dtype)

        g_bias = None
        if delta_bias is not None:
            g_bias = cast(self.reduce("sum", ddelta, (0, 2), False), delta_bias)
        g_A = cast(self.reduce("sum", dA, (0,), False), A)
        g_D = cast(self.reduce("sum", dD, (0,), False), D) if D is not None else None
        if B.ndim == 3:
            dB, dC = (self.reshape(x, (b, n, length)) for x in (dB, dC))
        return du, cast(ddelta, delta), g_A, cast(dB, B), cast(dC, C), g_D, dz, g_bias
