"""Pooling: MaxPool (with indices), AveragePool, LpPool, the global pools, MaxUnpool.

Windows are strided slices of the padded input reduced with Tensor ops (differentiable);
the common non-overlapping 2x2 max pool is an elementwise max of four views, and symmetric
2-D max pools without indices use the fused ``max_pool2d``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ... import functions
from ...nn import functional as F
from ..values import to_value
from .conv import _auto_pads, _pad_spatial, _windows
from .registry import op
from .util import lg_float, np_dtype, npy, spatial_axes


def _pool_geometry(x: Any, kernel_shape: list, strides: Any, dilations: Any, pads: Any,
                   auto_pad: str, ceil_mode: int) -> tuple:
    spatial = tuple(x.shape[2:])
    n = len(spatial)
    kernel = list(kernel_shape)
    strides = list(strides or [1] * n)
    dilations = list(dilations or [1] * n)
    pads = _auto_pads(auto_pad, spatial, kernel, strides, dilations, pads)
    out, extra = [], []
    for i in range(n):
        eff = (kernel[i] - 1) * dilations[i] + 1
        span = spatial[i] + pads[i] + pads[i + n] - eff
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            o = -(-spatial[i] // strides[i])
        elif auto_pad == "VALID":
            o = -(-(spatial[i] - eff + 1) // strides[i])
        elif ceil_mode:
            o = -(-span // strides[i]) + 1
            if (o - 1) * strides[i] >= spatial[i] + pads[i]:
                o -= 1
        else:
            o = span // strides[i] + 1
        out.append(o)
        need = (o - 1) * strides[i] + eff - (spatial[i] + pads[i] + pads[i + n])
        extra.append(max(need, 0))
    return kernel, strides, dilations, pads, out, extra


def _pool(ctx: Any, x: Any, kind: str, kernel_shape: list, strides: Any, dilations: Any,
          pads: Any, auto_pad: str, ceil_mode: int, count_include_pad: int = 0,
          p: int = 2) -> Any:
    kernel, strides, dilations, pads, out, extra = _pool_geometry(
        x, kernel_shape, strides, dilations, pads, auto_pad, ceil_mode)
    n = len(kernel)
    full = pads[:n] + [pads[n + i] + extra[i] for i in range(n)]
    if not lg_float(x):
        dt = np_dtype(x)
        y = _pool(ctx, to_value(npy(x).astype(np.float64)), kind, kernel_shape, strides,
                  dilations, pads, auto_pad, ceil_mode, count_include_pad, p)
        return ctx.value(npy(y).astype(dt))
    if kind == "max":
        lo = float(np.finfo(np_dtype(x)).min) if np_dtype(x).kind == "f" else -2 ** 31
        xp = _pad_spatial(x, full, lo if lg_float(x) else lo)
        parts = _windows(xp, kernel, strides, dilations, out)
        y = parts[0]
        for q in parts[1:]:
            y = y.maximum(q)
        return y
    src = x if kind == "avg" else x.abs().pow(float(p))
    xp = _pad_spatial(src, full)
    total = functions.stack(_windows(xp, kernel, strides, dilations, out), 0).sum(0)
    if kind == "lp":
        return total.pow(1.0 / p)
    ones = np.ones((1, 1) + tuple(x.shape[2:]), np_dtype(x))
    if count_include_pad:
        mask = np.pad(ones, [(0, 0), (0, 0)] + [(pads[i], pads[i + n]) for i in range(n)],
                      constant_values=1)
        mask = np.pad(mask, [(0, 0), (0, 0)] + [(0, extra[i]) for i in range(n)])
    else:
        mask = np.pad(ones, [(0, 0), (0, 0)] + [(full[i], full[i + n]) for i in range(n)])
    counts = sum(_windows(mask, kernel, strides, dilations, out))
    return total / to_value(np.maximum(counts, 1).astype(np_dtype(x)), ctx.device)


@op("MaxPool")
def max_pool(ctx: Any, x: Any, *, kernel_shape: Any, auto_pad: str = "NOTSET",
             ceil_mode: int = 0, dilations: Any = None, pads: Any = None,
             storage_order: int = 0, strides: Any = None) -> Any:
    if ctx.n_outputs > 1:
        return _max_pool_indices(ctx, x, kernel_shape, strides, dilations, pads, auto_pad,
                                 ceil_mode, storage_order)
    n = len(kernel_shape)
    tiles = (lg_float(x) and auto_pad == "NOTSET" and not any(pads or [])
             and list(strides or [1] * n) == list(kernel_shape) and not ceil_mode
             and all(d == 1 for d in (dilations or [1] * n))
             and all(s % k == 0 for s, k in zip(x.shape[2:], kernel_shape)))
    if tiles:  # non-overlapping windows: elementwise max of strided views, no argmax
        return _pool(ctx, x, "max", kernel_shape, strides, dilations, pads, auto_pad, 0)
    simple = (n == 2 and auto_pad == "NOTSET" and lg_float(x) and not ceil_mode
              and (not pads or (pads[:2] == pads[2:] and all(pp <= k // 2 for pp, k in
                                                              zip(pads[:2], kernel_shape)))))
    if simple:
        return F.max_pool2d(x, tuple(kernel_shape), stride=tuple(strides or [1, 1]),
                            padding=tuple(pads[:2]) if pads else 0,
                            dilation=tuple(dilations or [1, 1]))
    return _pool(ctx, x, "max", kernel_shape, strides, dilations, pads, auto_pad, ceil_mode)


def _max_pool_indices(ctx: Any, x: Any, kernel_shape: list, strides: Any, dilations: Any,
                      pads: Any, auto_pad: str, ceil_mode: int, storage_order: int) -> Any:
    a = npy(x)
    kernel, strides, dilations, pads, out, extra = _pool_geometry(
        x, kernel_shape, strides, dilations, pads, auto_pad, ceil_mode)
    n = len(kernel)
    full = pads[:n] + [pads[n + i] + extra[i] for i in range(n)]
    spatial = a.shape[2:]
    lo = np.finfo(a.dtype).min if a.dtype.kind == "f" else np.iinfo(a.dtype).min
    xp = np.pad(a, [(0, 0), (0, 0)] + [(full[i], full[i + n]) for i in range(n)],
                constant_values=lo)
    best = None
    best_idx = None
    for offs in np.ndindex(*kernel):
        sl = [slice(None), slice(None)]
        pos = []
        for i, k in enumerate(offs):
            start = k * dilations[i]
            sl.append(slice(start, start + (out[i] - 1) * strides[i] + 1, strides[i]))
            pos.append(np.arange(out[i]) * strides[i] + start - full[i])
        v = xp[tuple(sl)]
        grid = np.meshgrid(*pos, indexing="ij")
        inside = np.all([(g >= 0) & (g < spatial[i]) for i, g in enumerate(grid)], axis=0)
        clipped = [np.clip(g, 0, spatial[i] - 1) for i, g in enumerate(grid)]
        if storage_order:
            flat = np.ravel_multi_index(clipped[::-1], spatial[::-1])
        else:
            flat = np.ravel_multi_index(clipped, spatial)
        v = np.where(inside, v, lo)
        if best is None:
            best, best_idx = v.copy(), np.broadcast_to(flat, v.shape).copy()
        else:
            take_new = v > best
            best = np.where(take_new, v, best)
            best_idx = np.where(take_new, flat, best_idx)
    N, C = a.shape[:2]
    per = int(np.prod(spatial))
    base = (np.arange(N * C).reshape(N, C) * per).reshape((N, C) + (1,) * n)
    return ctx.value(best), ctx.value((best_idx + base).astype(np.int64))


@op("AveragePool")
def average_pool(ctx: Any, x: Any, *, kernel_shape: Any, auto_pad: str = "NOTSET",
                 ceil_mode: int = 0, count_include_pad: int = 0, dilations: Any = None,
                 pads: Any = None, strides: Any = None) -> Any:
    return _pool(ctx, x, "avg", kernel_shape, strides, dilations, pads, auto_pad, ceil_mode,
                 count_include_pad)


@op("LpPool")
def lp_pool(ctx: Any, x: Any, *, kernel_shape: Any, auto_pad: str = "NOTSET",
            ceil_mode: int = 0, dilations: Any = None, p: int = 2, pads: Any = None,
            strides: Any = None) -> Any:
    return _pool(ctx, x, "lp", kernel_shape, strides, dilations, pads, auto_pad, ceil_mode,
                 p=p)


@op("GlobalAveragePool")
def global_average_pool(ctx: Any, x: Any) -> Any:
    return x.mean(dim=spatial_axes(x), keepdim=True)


@op("GlobalMaxPool")
def global_max_pool(ctx: Any, x: Any) -> Any:
    return x.amax(dim=spatial_axes(x), keepdim=True)


@op("GlobalLpPool")
def global_lp_pool(ctx: Any, x: Any, *, p: int = 2) -> Any:
    return x.abs().pow(float(p)).sum(dim=spatial_axes(x), keepdim=True).pow(1.0 / p)


@op("MaxUnpool")
def max_unpool(ctx: Any, x: Any, indices: Any, output_shape: Any = None, *, kernel_shape: Any,
               pads: Any = None, strides: Any = None) -> Any:
    a, idx = npy(x), npy(indices).astype(np.int64)
    n = len(kernel_shape)
    strides = list(strides or [1] * n)
    pads = list(pads or [0] * (2 * n))
    inferred = list(a.shape[:2]) + [(a.shape[2 + i] - 1) * strides[i] - pads[i] - pads[i + n]
                                    + kernel_shape[i] for i in range(n)]
    flat = np.zeros(int(np.prod(inferred)), dtype=a.dtype)
    flat[idx.reshape(-1)] = a.reshape(-1)
    if output_shape is None:
        return ctx.value(flat.reshape(inferred))
    # indices address the inferred shape; a larger output_shape pads it at the end
    out = np.zeros([int(v) for v in npy(output_shape)], dtype=a.dtype)
    out[tuple(slice(0, d) for d in inferred)] = flat.reshape(inferred)
    return ctx.value(out)
