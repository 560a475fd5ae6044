"""Convolutions: Conv and ConvTranspose, and the spatial helpers pools share.

2-D and 1-D convolutions use lightgrad's fused ``conv2d``/``conv1d`` (asymmetric padding is
a ``pad`` first); other ranks decompose into one strided slice of the padded input per
kernel offset, stacked and multiplied with the weights, so they stay differentiable.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ... import functions
from ...nn import functional as F
from ..values import to_value
from .registry import op
from .util import lg_float, npy


def _auto_pads(auto_pad: str, spatial: tuple, kernel: list, strides: list, dilations: list,
               pads: list | None) -> list:
    n = len(spatial)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        begin, end = [], []
        for i in range(n):
            out = -(-spatial[i] // strides[i])
            total = max((out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - spatial[i], 0)
            small, big = total // 2, total - total // 2
            begin.append(small if auto_pad == "SAME_UPPER" else big)
            end.append(big if auto_pad == "SAME_UPPER" else small)
        return begin + end
    if auto_pad == "VALID":
        return [0] * (2 * n)
    return list(pads) if pads else [0] * (2 * n)


def _pad_spatial(x: Any, pads: list, value: float = 0.0) -> Any:
    n = len(pads) // 2
    if not any(pads):
        return x
    flat = []
    for i in reversed(range(n)):
        flat += [pads[i], pads[i + n]]
    if lg_float(x):
        return functions.pad(x, tuple(flat), value=value)
    widths = [(0, 0), (0, 0)] + [(pads[i], pads[i + n]) for i in range(n)]
    return np.pad(npy(x), widths, constant_values=value)


def _windows(x: Any, kernel: list, strides: list, dilations: list, out: list) -> list:
    """One strided slice of (padded) x per kernel offset, each (N, C, *out)."""
    parts = []
    for offs in np.ndindex(*kernel):
        sl = [slice(None), slice(None)]
        for i, k in enumerate(offs):
            start = k * dilations[i]
            sl.append(slice(start, start + (out[i] - 1) * strides[i] + 1, strides[i]))
        parts.append(x[tuple(sl)])
    return parts


# ----------------------------------------------------------------------------- conv


@op("Conv")
def conv(ctx: Any, x: Any, w: Any, b: Any = None, *, auto_pad: str = "NOTSET",
         dilations: Any = None, group: int = 1, kernel_shape: Any = None, pads: Any = None,
         strides: Any = None) -> Any:
    if not lg_float(x):
        x, w = to_value(npy(x).astype(np.float32)), to_value(npy(w).astype(np.float32))
    spatial = tuple(x.shape[2:])
    n = len(spatial)
    kernel = list(kernel_shape or w.shape[2:])
    strides = list(strides or [1] * n)
    dilations = list(dilations or [1] * n)
    pads = _auto_pads(auto_pad, spatial, kernel, strides, dilations, pads)
    sym = pads[:n] == pads[n:]
    if n in (1, 2) and sym:
        fn = F.conv2d if n == 2 else F.conv1d
        return fn(x, w, b, stride=tuple(strides), padding=tuple(pads[:n]),
                  dilation=tuple(dilations), groups=group)
    if n in (1, 2):
        fn = F.conv2d if n == 2 else F.conv1d
        return fn(_pad_spatial(x, pads), w, b, stride=tuple(strides), padding=0,
                  dilation=tuple(dilations), groups=group)
    xp = _pad_spatial(x, pads)
    out = [(xp.shape[2 + i] - (kernel[i] - 1) * dilations[i] - 1) // strides[i] + 1
           for i in range(n)]
    N, C = x.shape[:2]
    M = w.shape[0]
    K = int(np.prod(kernel))
    P = int(np.prod(out))
    patches = functions.stack(_windows(xp, kernel, strides, dilations, out), 2)
    patches = patches.reshape(N, group, (C // group) * K, P)
    wm = w.reshape(group, M // group, (C // group) * K)
    y = wm.matmul(patches).reshape(N, M, *out)
    if b is not None:
        y = y + b.reshape(M, *([1] * n))
    return y


@op("ConvTranspose")
def conv_transpose(ctx: Any, x: Any, w: Any, b: Any = None, *, auto_pad: str = "NOTSET",
                   dilations: Any = None, group: int = 1, kernel_shape: Any = None,
                   output_padding: Any = None, output_shape: Any = None, pads: Any = None,
                   strides: Any = None) -> Any:
    spatial = tuple(x.shape[2:])
    n = len(spatial)
    kernel = list(kernel_shape or w.shape[2:])
    strides = list(strides or [1] * n)
    dilations = list(dilations or [1] * n)
    opad = list(output_padding or [0] * n)
    full = [strides[i] * (spatial[i] - 1) + (kernel[i] - 1) * dilations[i] + 1 for i in range(n)]
    if output_shape is not None:
        target = list(output_shape)[-n:]
        total = [strides[i] * (spatial[i] - 1) + opad[i] + (kernel[i] - 1) * dilations[i] + 1
                 - target[i] for i in range(n)]
        if auto_pad == "SAME_UPPER":
            pads = [t // 2 for t in total] + [t - t // 2 for t in total]
        else:
            pads = [t - t // 2 for t in total] + [t // 2 for t in total]
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        total = [max(full[i] + opad[i] - spatial[i] * strides[i], 0) for i in range(n)]
        if auto_pad == "SAME_UPPER":
            pads = [t // 2 for t in total] + [t - t // 2 for t in total]
        else:
            pads = [t - t // 2 for t in total] + [t // 2 for t in total]
    elif not pads or auto_pad == "VALID":
        pads = [0] * (2 * n)
    if lg_float(x) and n in (1, 2):
        fn = F.conv_transpose2d if n == 2 else F.conv_transpose1d
        y = fn(x, w, None, stride=tuple(strides), padding=0, groups=group,
               dilation=tuple(dilations))
    else:
        y = _conv_transpose_np(ctx, npy(x), npy(w), kernel, strides, dilations, group, full)
    # crop pads, add output_padding zeros at the end
    sl = [slice(None), slice(None)]
    extra = []
    for i in range(n):
        size = full[i] + opad[i] - pads[i] - pads[i + n]
        stop = pads[i] + size
        extra.append(max(stop - full[i], 0))
        sl.append(slice(pads[i], min(stop, full[i])))
    y = y[tuple(sl)]
    if any(extra):
        y = _pad_spatial(y, [0] * n + extra)
    if b is not None:
        y = y + b.reshape(-1, *([1] * n))
    return y


def _conv_transpose_np(ctx: Any, x: np.ndarray, w: np.ndarray, kernel: list, strides: list,
                       dilations: list, group: int, full: list) -> Any:
    N, C = x.shape[:2]
    Mg = w.shape[1]
    out = np.zeros((N, Mg * group, *full), dtype=x.dtype)
    cg = C // group
    for g in range(group):
        xs = x[:, g * cg:(g + 1) * cg]
        for offs in np.ndindex(*kernel):
            wk = w[(slice(g * cg, (g + 1) * cg), slice(None)) + offs]  # (cg, Mg)
            contrib = np.einsum("nc...,cm->nm...", xs, wk)
            sl = [slice(None), slice(g * Mg, (g + 1) * Mg)]
            for i, k in enumerate(offs):
                start = k * dilations[i]
                sl.append(slice(start, start + (x.shape[2 + i] - 1) * strides[i] + 1,
                                strides[i]))
            out[tuple(sl)] += contrib
    return ctx.value(out)
