"""Detection/vision ops in NumPy: NonMaxSuppression, RoiAlign, GridSample, Col2Im.

These index data-dependently (box selection, sampling positions); they run on real values
and carry no gradient.
"""
from __future__ import annotations

from itertools import product
from typing import Any

import numpy as np

from .registry import op
from .util import ints, npy, scalar


@op("NonMaxSuppression")
def non_max_suppression(ctx: Any, boxes: Any, scores: Any, max_out: Any = None,
                        iou_threshold: Any = None, score_threshold: Any = None, *,
                        center_point_box: int = 0) -> Any:
    bx, sc = npy(boxes).astype(np.float64), npy(scores).astype(np.float64)
    limit = int(scalar(max_out, 0))
    iou_t = float(scalar(iou_threshold, 0.0))
    score_t = scalar(score_threshold, None)
    if center_point_box:
        xc, yc, w, h = bx[..., 0], bx[..., 1], bx[..., 2], bx[..., 3]
        y1, x1, y2, x2 = yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2
    else:
        y1 = np.minimum(bx[..., 0], bx[..., 2])
        y2 = np.maximum(bx[..., 0], bx[..., 2])
        x1 = np.minimum(bx[..., 1], bx[..., 3])
        x2 = np.maximum(bx[..., 1], bx[..., 3])
    area = (y2 - y1) * (x2 - x1)
    out = []
    for b in range(sc.shape[0]):
        for c in range(sc.shape[1]):
            s = sc[b, c]
            order = np.argsort(-s, kind="stable")
            if score_t is not None:
                order = order[s[order] > score_t]
            chosen: list[int] = []
            for i in order:
                if len(chosen) >= limit:
                    break
                keep = True
                for j in chosen:
                    ih = max(0.0, min(y2[b, i], y2[b, j]) - max(y1[b, i], y1[b, j]))
                    iw = max(0.0, min(x2[b, i], x2[b, j]) - max(x1[b, i], x1[b, j]))
                    inter = ih * iw
                    union = area[b, i] + area[b, j] - inter
                    if union > 0 and inter / union > iou_t:
                        keep = False
                        break
                if keep:
                    chosen.append(int(i))
            out += [[b, c, i] for i in chosen]
    return ctx.value(np.array(out, dtype=np.int64).reshape(-1, 3))


def _bilinear(img: np.ndarray, y: float, x: float) -> Any:
    H, W = img.shape[-2:]
    if y < -1.0 or y > H or x < -1.0 or x > W:
        return np.zeros(img.shape[:-2])
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(y), int(x)
    if y0 >= H - 1:
        y0 = y1 = H - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= W - 1:
        x0 = x1 = W - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    hy, hx = 1 - ly, 1 - lx
    return (hy * hx, img[..., y0, x0]), (hy * lx, img[..., y0, x1]), \
        (ly * hx, img[..., y1, x0]), (ly * lx, img[..., y1, x1])


@op("RoiAlign")
def roi_align(ctx: Any, x: Any, rois: Any, batch_indices: Any, *,
              coordinate_transformation_mode: str = "half_pixel", mode: str = "avg",
              output_height: int = 1, output_width: int = 1, sampling_ratio: int = 0,
              spatial_scale: float = 1.0) -> Any:
    a = npy(x).astype(np.float64)
    r = npy(rois).astype(np.float64)
    bi = npy(batch_indices).astype(np.int64)
    off = 0.5 if coordinate_transformation_mode == "half_pixel" else 0.0
    out = np.zeros((r.shape[0], a.shape[1], output_height, output_width))
    for n in range(r.shape[0]):
        x1, y1, x2, y2 = r[n] * spatial_scale - off
        rw, rh = x2 - x1, y2 - y1
        if not off:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bh, bw = rh / output_height, rw / output_width
        gh = sampling_ratio or int(np.ceil(rh / output_height))
        gw = sampling_ratio or int(np.ceil(rw / output_width))
        count = max(gh * gw, 1)
        img = a[bi[n]]
        for ph in range(output_height):
            for pw in range(output_width):
                acc = None
                for iy in range(gh):
                    yy = y1 + ph * bh + (iy + 0.5) * bh / gh
                    for ix in range(gw):
                        xx = x1 + pw * bw + (ix + 0.5) * bw / gw
                        terms = _bilinear(img, yy, xx)
                        if isinstance(terms, np.ndarray):
                            val = terms
                        elif mode == "max":
                            val = np.max([w * v for w, v in terms], axis=0)
                        else:
                            val = sum(w * v for w, v in terms)
                        if acc is None:
                            acc = val
                        elif mode == "max":
                            acc = np.maximum(acc, val)
                        else:
                            acc = acc + val
                out[n, :, ph, pw] = acc if mode == "max" else acc / count
    return ctx.value(out.astype(npy(x).dtype))


def _reflect(c: np.ndarray, lo: float, hi: float) -> np.ndarray:
    span = hi - lo
    if span <= 0:
        return np.zeros_like(c)
    flips = np.floor(np.abs(c - lo) / span).astype(np.int64)
    r = np.where(flips % 2 == 0, lo + (np.abs(c - lo) % span), hi - (np.abs(c - lo) % span))
    return np.where((c >= lo) & (c <= hi), c, r)


def _cubic_w(t: np.ndarray, a: float = -0.75) -> list:
    ts = [t + 1, t, 1 - t, 2 - t]
    out = []
    for v in ts:
        v = np.abs(v)
        out.append(np.where(v <= 1, ((a + 2) * v - (a + 3)) * v * v + 1,
                            np.where(v < 2, ((a * v - 5 * a) * v + 8 * a) * v - 4 * a, 0.0)))
    return out


@op("GridSample")
def grid_sample(ctx: Any, x: Any, grid: Any, *, align_corners: int = 0, mode: str = "linear",
                padding_mode: str = "zeros") -> Any:
    a = npy(x).astype(np.float64)
    g = npy(grid).astype(np.float64)
    N, C = a.shape[:2]
    sizes = a.shape[2:]
    nd = len(sizes)
    mode = {"bilinear": "linear", "bicubic": "cubic"}.get(mode, mode)
    coords = []
    for d in range(nd):
        gc = g[..., nd - 1 - d]
        n = sizes[d]
        c = (gc + 1) / 2 * (n - 1) if align_corners else ((gc + 1) * n - 1) / 2
        if padding_mode == "border":
            c = np.clip(c, 0, n - 1)
        elif padding_mode == "reflection":
            c = _reflect(c, 0, n - 1) if align_corners else \
                np.clip(_reflect(c, -0.5, n - 0.5), 0, n - 1)
        coords.append(c)
    out_sp = g.shape[1:-1]
    out = np.zeros((N, C) + out_sp)
    bidx = np.arange(N).reshape((N,) + (1,) * len(out_sp))

    def gather(idx: list) -> np.ndarray:
        valid = np.ones(idx[0].shape, bool)
        clipped = []
        for d, i in enumerate(idx):
            n = sizes[d]
            if padding_mode == "zeros":
                valid &= (i >= 0) & (i < n)
                clipped.append(np.clip(i, 0, n - 1))
            elif padding_mode == "border":
                clipped.append(np.clip(i, 0, n - 1))
            else:
                ii = i.copy()
                ii = np.where(ii < 0, -ii - (0 if align_corners else 1), ii)
                ii = np.where(ii >= n, 2 * (n - 1) - ii + (0 if align_corners else 1), ii)
                clipped.append(np.clip(ii, 0, n - 1))
        chan = np.arange(C).reshape((1,) + (1,) * len(out_sp) + (C,))
        vals = a[(bidx[..., None], chan) + tuple(cl[..., None] for cl in clipped)]
        vals = np.moveaxis(vals, -1, 1)
        return vals * np.expand_dims(valid, 1)

    if mode == "nearest":
        idx = [np.rint(c).astype(np.int64) for c in coords]
        out = gather(idx)
    elif mode == "linear":
        base = [np.floor(c).astype(np.int64) for c in coords]
        frac = [c - b for c, b in zip(coords, base)]
        for corner in product((0, 1), repeat=nd):
            w = np.ones(base[0].shape)
            for d, k in enumerate(corner):
                w = w * (frac[d] if k else 1 - frac[d])
            out = out + gather([b + k for b, k in zip(base, corner)]) * np.expand_dims(w, 1)
    else:
        base = [np.floor(c).astype(np.int64) for c in coords]
        ws = [_cubic_w(c - b) for c, b in zip(coords, base)]
        for corner in product(range(4), repeat=nd):
            w = np.ones(base[0].shape)
            for d, k in enumerate(corner):
                w = w * ws[d][k]
            out = out + gather([b + k - 1 for b, k in zip(base, corner)]) * \
                np.expand_dims(w, 1)
    return ctx.value(out.astype(npy(x).dtype))


@op("Col2Im")
def col2im(ctx: Any, x: Any, image_shape: Any, block_shape: Any, *, dilations: Any = None,
           pads: Any = None, strides: Any = None) -> Any:
    a = npy(x)
    img = ints(image_shape)
    blk = ints(block_shape)
    n = len(img)
    dil = list(dilations or [1] * n)
    pad = list(pads or [0] * (2 * n))
    st = list(strides or [1] * n)
    N = a.shape[0]
    kprod = int(np.prod(blk))
    C = a.shape[1] // kprod
    padded = [img[i] + pad[i] + pad[i + n] for i in range(n)]
    outs = [(padded[i] - dil[i] * (blk[i] - 1) - 1) // st[i] + 1 for i in range(n)]
    cols = a.reshape(N, C, *blk, *outs)
    res = np.zeros((N, C, *padded), dtype=a.dtype)
    for k in np.ndindex(*blk):
        sl = [slice(None), slice(None)]
        for i in range(n):
            s = k[i] * dil[i]
            sl.append(slice(s, s + (outs[i] - 1) * st[i] + 1, st[i]))
        res[tuple(sl)] += cols[(slice(None), slice(None)) + k]
    crop = [slice(None), slice(None)] + [slice(pad[i], pad[i] + img[i]) for i in range(n)]
    return ctx.value(res[tuple(crop)])


@op("DeformConv")
def deform_conv(ctx: Any, x: Any, w: Any, offset: Any, b: Any = None, mask: Any = None, *,
                dilations: Any = None, group: int = 1, kernel_shape: Any = None,
                offset_group: int = 1, pads: Any = None, strides: Any = None) -> Any:
    """2-D deformable convolution: each kernel tap samples x (bilinear, zeros outside) at its
    grid position plus a learned offset, scaled by ``mask``."""
    X, W, off = npy(x).astype(np.float64), npy(w).astype(np.float64), npy(offset)
    n, ic, ih, iw = X.shape
    oc = W.shape[0]
    kh, kw = kernel_shape or W.shape[2:]
    dh, dw = dilations or (1, 1)
    sh, sw = strides or (1, 1)
    pads = pads or (0, 0, 0, 0)
    oh, ow = off.shape[2:]
    off = off.reshape(n, offset_group, kh, kw, 2, oh, ow).astype(np.float64)
    m = npy(mask).reshape(n, offset_group, kh, kw, oh, ow) if mask is not None else \
        np.ones((n, offset_group, kh, kw, oh, ow))
    base_y = (-pads[0] + sh * np.arange(oh))[None, :, None] + dh * np.arange(kh)[:, None, None]
    base_x = (-pads[1] + sw * np.arange(ow))[None, None, :] + dw * np.arange(kw)[:, None, None]
    per_og = ic // offset_group
    cols = np.zeros((n, ic, kh, kw, oh, ow))
    for c in range(ic):
        g = c // per_og
        y = base_y[:, None] + off[:, g, :, :, 0]  # (n, kh, kw, oh, ow)
        xx = base_x[None] + off[:, g, :, :, 1]
        y0, x0 = np.floor(y).astype(np.int64), np.floor(xx).astype(np.int64)
        acc = np.zeros(y.shape)
        for cy in (0, 1):
            for cx in (0, 1):
                yi, xi = y0 + cy, x0 + cx
                wgt = (1 - np.abs(y - yi)) * (1 - np.abs(xx - xi))
                ok = (yi >= 0) & (yi < ih) & (xi >= 0) & (xi < iw)
                vals = X[np.arange(n)[:, None, None, None, None], c, np.clip(yi, 0, ih - 1),
                         np.clip(xi, 0, iw - 1)]
                acc += np.where(ok, vals * wgt, 0.0)
        cols[:, c] = acc * m[:, g]
    icg, ocg = ic // group, oc // group
    out = np.zeros((n, oc, oh, ow))
    for g in range(group):
        out[:, g * ocg:(g + 1) * ocg] = np.einsum(
            "oikl,niklhw->nohw", W[g * ocg:(g + 1) * ocg], cols[:, g * icg:(g + 1) * icg])
    if b is not None:
        out += npy(b).reshape(1, -1, 1, 1)
    return ctx.value(out.astype(npy(x).dtype))


@op("ImageDecoder")
def image_decoder(ctx: Any, encoded: Any, *, pixel_format: str = "RGB") -> Any:
    """Decode a PNG/JPEG/BMP/... byte stream to (H, W, C) uint8 with Pillow (optional)."""
    import io
    try:
        from PIL import Image
    except ImportError as e:  # pragma: no cover - Pillow comes with matplotlib
        raise ImportError("ImageDecoder needs Pillow: pip install pillow") from e
    img = Image.open(io.BytesIO(np.asarray(npy(encoded), np.uint8).tobytes()))
    if pixel_format == "Grayscale":
        return ctx.value(np.asarray(img.convert("L"))[:, :, None])
    rgb = np.asarray(img.convert("RGB") if img.mode != "RGB" else img)
    return ctx.value(np.ascontiguousarray(rgb[:, :, ::-1] if pixel_format == "BGR" else rgb))
