"""Resize and Upsample: separable interpolation, one (out x in) weight matrix per resized axis.

Every mode (nearest with its rounding rules, linear, cubic, antialiased linear/cubic) and
every coordinate transformation is a matrix built in NumPy from the ONNX formulas; the
input is contracted with it axis by axis with Tensor matmuls, so Resize is differentiable.
Opsets before 11 (and Upsample) use the 'asymmetric' transform with 'floor' nearest.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..values import to_value
from .registry import op
from .util import lg_float, np_dtype, npy


def _source(mode: str, x: np.ndarray, scale: float, n_out: int, n_in: int, roi: tuple) -> Any:
    if mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        adj = n_out / (scale * n_in)
        center = n_in / 2
        return center * (1 - adj) + (x + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if n_out > 1 else np.zeros_like(x)
    if mode == "align_corners":
        length = scale * n_in
        return x * (n_in - 1) / (length - 1) if length != 1 else np.zeros_like(x)
    if mode == "asymmetric":
        return x / scale
    if mode == "tf_crop_and_resize":
        s, e = roi
        if n_out > 1:
            return s * (n_in - 1) + x * (e - s) * (n_in - 1) / (n_out - 1)
        return np.full_like(x, 0.5 * (s + e) * (n_in - 1))
    raise ValueError(f"unknown coordinate_transformation_mode {mode!r}")


def _cubic(t: np.ndarray, a: float) -> np.ndarray:
    t = np.abs(t)
    return np.where(t <= 1, ((a + 2) * t - (a + 3)) * t * t + 1,
                    np.where(t < 2, ((a * t - 5 * a) * t + 8 * a) * t - 4 * a, 0.0))


def _matrix(n_in: int, n_out: int, scale: float, roi: tuple, mode: str, coord: str,
            nearest: str, cubic_a: float, exclude_outside: int, antialias: int) -> tuple:
    """(weights (n_out, n_in), outside mask (n_out,)) for one axis."""
    xs = np.arange(n_out, dtype=np.float64)
    src = _source(coord, xs, scale, n_out, n_in, roi)
    outside = (src < 0) | (src > n_in - 1) if coord == "tf_crop_and_resize" else \
        np.zeros(n_out, bool)
    w = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    if mode == "nearest":
        if nearest == "round_prefer_floor":
            idx = np.ceil(src - 0.5)
        elif nearest == "round_prefer_ceil":
            idx = np.floor(src + 0.5)
        elif nearest == "floor":
            idx = np.floor(src)
        else:
            idx = np.ceil(src)
        idx = np.clip(idx, 0, n_in - 1).astype(np.int64)
        w[rows, idx] = 1.0
        return w, outside
    base = np.floor(src)
    ratio = src - base
    if mode == "linear":
        if antialias and scale < 1:
            start = int(np.floor(-1 / scale) + 1)
            offs = np.arange(start, 2 - start)
            coeff = np.clip(1 - np.abs((offs[None, :] - ratio[:, None]) * scale), 0, 1)
        else:
            offs = np.array([0, 1])
            coeff = np.stack([1 - ratio, ratio], axis=1)
    else:
        if antialias and scale < 1:
            start = int(np.floor(-2 / scale) + 1)
            offs = np.arange(start, 2 - start)
            coeff = _cubic((offs[None, :] - ratio[:, None]) * scale, cubic_a)
        else:
            offs = np.array([-1, 0, 1, 2])
            coeff = _cubic(offs[None, :] - ratio[:, None], cubic_a)
    idx = base[:, None].astype(np.int64) + offs[None, :]
    if exclude_outside:
        coeff = np.where((idx >= 0) & (idx < n_in), coeff, 0.0)
    if antialias and scale < 1 or exclude_outside:
        total = coeff.sum(axis=1, keepdims=True)
        coeff = coeff / np.where(total == 0, 1, total)
    idx = np.clip(idx, 0, n_in - 1)
    for j in range(idx.shape[1]):
        np.add.at(w, (rows, idx[:, j]), coeff[:, j])
    return w, outside


def resize_value(ctx: Any, x: Any, scales: list | None, sizes: list | None, axes: list,
                 roi: list | None, *, mode: str = "nearest", coord: str = "half_pixel",
                 nearest: str = "round_prefer_floor", cubic_a: float = -0.75,
                 exclude_outside: int = 0, extrapolation_value: float = 0.0,
                 antialias: int = 0, keep_aspect_ratio_policy: str = "stretch") -> Any:
    shape = tuple(x.shape)
    nd = len(shape)
    axes = [a + nd if a < 0 else a for a in axes]
    n = len(axes)
    if sizes is not None:
        in_sizes = [shape[a] for a in axes]
        if keep_aspect_ratio_policy != "stretch":
            ratios = [s / i for s, i in zip(sizes, in_sizes)]
            r = min(ratios) if keep_aspect_ratio_policy == "not_larger" else max(ratios)
            scales = [r] * n
            sizes = [int(np.floor(r * i + 0.5)) for i in in_sizes]
        else:
            scales = [s / i for s, i in zip(sizes, in_sizes)]
    else:
        sizes = [int(np.floor(shape[a] * s)) for a, s in zip(axes, scales)]
    rois = [(0.0, 1.0)] * n
    if roi is not None and len(roi) == 2 * n:
        rois = [(roi[i], roi[i + n]) for i in range(n)]
    elif roi is not None and len(roi) == 2 * nd:
        rois = [(roi[a], roi[a + nd]) for a in axes]
    dt = np_dtype(x)
    floating = lg_float(x)
    y = x if floating else to_value(npy(x).astype(np.float64), ctx.device)
    outside_all = None
    for i, a in enumerate(axes):
        if sizes[i] == shape[a] and scales[i] == 1 and coord != "tf_crop_and_resize":
            continue
        w, outside = _matrix(shape[a], sizes[i], scales[i], rois[i], mode, coord, nearest,
                             cubic_a, exclude_outside, antialias)
        wt = to_value(w.T.astype(np_dtype(y)), ctx.device)
        perm = [d for d in range(nd) if d != a] + [a]
        inv = list(np.argsort(perm))
        y = y.permute(*perm).matmul(wt).permute(*inv)
        if outside.any():
            m = outside.reshape([-1 if d == a else 1 for d in range(nd)])
            outside_all = m if outside_all is None else (outside_all | m)
    if outside_all is not None:
        keep = to_value((~outside_all).astype(np_dtype(y)), ctx.device)
        fill = to_value((outside_all * extrapolation_value).astype(np_dtype(y)), ctx.device)
        y = y * keep + fill
    if floating:
        return y
    out = npy(y)
    if dt.kind in "iu":
        out = np.clip(np.round(out), np.iinfo(dt).min, np.iinfo(dt).max)
    return ctx.value(out.astype(dt))


@op("Resize")
def resize(ctx: Any, x: Any, roi: Any = None, scales: Any = None, sizes: Any = None, *,
           antialias: int = 0, axes: Any = None, coordinate_transformation_mode: str =
           "half_pixel", cubic_coeff_a: float = -0.75, exclude_outside: int = 0,
           extrapolation_value: float = 0.0, keep_aspect_ratio_policy: str = "stretch",
           mode: str = "nearest", nearest_mode: str = "round_prefer_floor") -> Any:
    nd = len(x.shape)
    if ctx.opset < 11:
        scales, roi = roi, None
        coordinate_transformation_mode, nearest_mode = "asymmetric", "floor"
    ax = list(axes) if axes is not None else list(range(nd))
    sc = [float(v) for v in npy(scales).reshape(-1)] if scales is not None and \
        npy(scales).size else None
    sz = [int(v) for v in npy(sizes).reshape(-1)] if sizes is not None and \
        npy(sizes).size else None
    rv = [float(v) for v in npy(roi).reshape(-1)] if roi is not None and npy(roi).size else None
    return resize_value(ctx, x, sc, sz, ax, rv, mode=mode,
                        coord=coordinate_transformation_mode, nearest=nearest_mode,
                        cubic_a=cubic_coeff_a, exclude_outside=exclude_outside,
                        extrapolation_value=extrapolation_value, antialias=antialias,
                        keep_aspect_ratio_policy=keep_aspect_ratio_policy)


@op("Upsample")
def upsample(ctx: Any, x: Any, scales_in: Any = None, *, mode: str = "nearest",
             scales: Any = None, height_scale: float | None = None,
             width_scale: float | None = None) -> Any:
    sc = [float(v) for v in npy(scales_in).reshape(-1)] if scales_in is not None else \
        list(scales)
    return resize_value(ctx, x, sc, None, list(range(len(x.shape))), None,
                        mode="linear" if mode in ("linear", "bilinear") else mode,
                        coord="asymmetric", nearest="floor")
