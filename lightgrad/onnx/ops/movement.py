"""Movement and shape ONNX ops: Reshape, Transpose, Slice, Gather*, Scatter*, Concat, Split,
Squeeze/Unsqueeze, Expand, Tile, Pad, Shape, Constant*, Range, NonZero, Unique, ...

Float tensors move with Tensor ops (differentiable: Slice, Gather, Pad, Concat, ... all pass
gradients); integer tensors (shapes, indices) with NumPy. Opset rules: Squeeze/Unsqueeze
(13), Split (13, 18), Slice (10) and Pad (11) take inputs where older opsets had attributes.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ... import dtypes, functions
from ...tensor import Tensor
from ..values import onnx_np_dtype, to_value
from .registry import op
from .util import axis as norm_axis
from .util import check_alloc, ints, lg_float, np_dtype, npy, scalar


def _idx(ctx: Any, a: np.ndarray) -> Tensor:
    return to_value(np.ascontiguousarray(a, dtype=np.int64), ctx.device)


def take(ctx: Any, x: Any, index: np.ndarray, ax: int) -> Any:
    """``np.take(x, index, axis=ax)`` for any value (differentiable for float Tensors)."""
    if lg_float(x):
        flat = x.index_select(ax, _idx(ctx, index.reshape(-1)))
        shape = tuple(x.shape)
        return flat.reshape(shape[:ax] + tuple(index.shape) + shape[ax + 1:])
    return ctx.value(np.take(npy(x), index, axis=ax))


@op("Identity")
def identity(ctx: Any, x: Any) -> Any:
    return x


@op("Reshape")
def reshape(ctx: Any, x: Any, shape_in: Any = None, *, shape: Any = None,
            allowzero: int = 0) -> Any:
    target = ints(shape_in) if shape_in is not None else list(shape)
    src = tuple(x.shape)
    if not allowzero:
        target = [src[i] if d == 0 else d for i, d in enumerate(target)]
    if lg_float(x):
        return x.reshape(*target) if target else x.reshape(())
    return ctx.value(npy(x).reshape(target))


@op("Flatten")
def flatten(ctx: Any, x: Any, *, axis: int = 1) -> Any:
    shape = tuple(x.shape)
    ax = axis + len(shape) if axis < 0 else axis
    rows = int(np.prod(shape[:ax])) if ax else 1
    cols = int(np.prod(shape[ax:]))
    return x.reshape(rows, cols) if lg_float(x) else ctx.value(npy(x).reshape(rows, cols))


@op("Transpose")
def transpose(ctx: Any, x: Any, *, perm: Any = None) -> Any:
    nd = len(x.shape)
    p = list(perm) if perm is not None else list(range(nd))[::-1]
    return x.permute(*p) if lg_float(x) else ctx.value(np.transpose(npy(x), p))


@op("Squeeze")
def squeeze(ctx: Any, x: Any, axes_in: Any = None, *, axes: Any = None) -> Any:
    ax = ints(axes_in) if axes_in is not None else axes
    shape = tuple(x.shape)
    if ax is None:
        ax = [i for i, s in enumerate(shape) if s == 1]
    ax = {norm_axis(a, len(shape)) for a in ax}
    new = [s for i, s in enumerate(shape) if i not in ax]
    return x.reshape(*new) if lg_float(x) and new else x.reshape(()) if lg_float(x) else \
        ctx.value(npy(x).reshape(new))


@op("Unsqueeze")
def unsqueeze(ctx: Any, x: Any, axes_in: Any = None, *, axes: Any = None) -> Any:
    ax = ints(axes_in) if axes_in is not None else axes
    shape = list(x.shape)
    out_nd = len(shape) + len(ax)
    ax = sorted(norm_axis(a, out_nd) for a in ax)
    for a in ax:
        shape.insert(a, 1)
    return x.reshape(*shape) if lg_float(x) else ctx.value(npy(x).reshape(shape))


@op("Concat")
def concat(ctx: Any, *xs: Any, axis: int) -> Any:
    xs = [x for x in xs if x is not None]
    ax = norm_axis(axis, len(xs[0].shape))
    if all(lg_float(x) for x in xs) and len({x.dtype for x in xs}) == 1:
        live = [x for x in xs if x.shape[ax] != 0] or xs[:1]
        return functions.cat(live, ax) if len(live) > 1 else live[0]
    return ctx.value(np.concatenate([npy(x) for x in xs], axis=ax))


@op("Split")
def split(ctx: Any, x: Any, split_in: Any = None, *, axis: int = 0, split: Any = None,
          num_outputs: int | None = None) -> Any:
    shape = tuple(x.shape)
    ax = norm_axis(axis, len(shape))
    sizes = ints(split_in) if split_in is not None else split
    n = shape[ax]
    if not sizes:
        parts = num_outputs or ctx.n_outputs
        step = -(-n // parts)
        sizes = [min(step, n - i * step) for i in range(parts)]
    offsets = np.cumsum([0] + list(sizes))
    outs = []
    for i, s in enumerate(sizes):
        sl = [slice(None)] * len(shape)
        sl[ax] = slice(int(offsets[i]), int(offsets[i] + s))
        outs.append(x[tuple(sl)] if lg_float(x) else ctx.value(npy(x)[tuple(sl)]))
    return tuple(outs)


def slice_value(ctx: Any, x: Any, starts: list, ends: list, axes: list | None,
                steps: list | None) -> Any:
    shape = tuple(x.shape)
    nd = len(shape)
    axes = list(range(len(starts))) if axes is None else [norm_axis(a, nd) for a in axes]
    steps = [1] * len(starts) if steps is None else steps
    out = x
    index = [slice(None)] * nd
    neg = []
    for s, e, a, st in zip(starts, ends, axes, steps):
        d = shape[a]
        if st == 0:
            raise ValueError("Slice: step 0 is invalid")
        s = s + d if s < 0 else s
        e = e + d if e < 0 else e
        if st > 0:
            s, e = min(max(s, 0), d), min(max(e, 0), d)
            index[a] = slice(s, max(e, s), st)
        else:
            s, e = min(max(s, 0), d - 1), min(max(e, -1), d - 1)
            neg.append((a, np.arange(s, e, st)))
    out = out[tuple(index)] if lg_float(x) else ctx.value(npy(x)[tuple(index)])
    for a, idx in neg:
        out = take(ctx, out, idx, a)
    return out


@op("Slice")
def slice_op(ctx: Any, x: Any, starts_in: Any = None, ends_in: Any = None, axes_in: Any = None,
             steps_in: Any = None, *, starts: Any = None, ends: Any = None,
             axes: Any = None) -> Any:
    if starts_in is not None:
        return slice_value(ctx, x, ints(starts_in), ints(ends_in), ints(axes_in),
                           ints(steps_in))
    return slice_value(ctx, x, list(starts), list(ends), axes, None)


@op("Gather")
def gather(ctx: Any, x: Any, indices: Any, *, axis: int = 0) -> Any:
    ax = norm_axis(axis, len(x.shape))
    if lg_float(x) and isinstance(indices, Tensor) and not isinstance(indices._data, np.ndarray):
        # indices computed inside a trace (lg.jit, export): index with Tensor ops, no reads
        idx = indices.to(dtypes.int64)
        idx = functions.where(idx < 0, idx + x.shape[ax], idx)
        shape = tuple(x.shape)
        flat = x.index_select(ax, idx.reshape(-1))
        return flat.reshape(*(shape[:ax] + tuple(indices.shape) + shape[ax + 1:]))
    idx = npy(indices).astype(np.int64)
    idx = np.where(idx < 0, idx + x.shape[ax], idx)
    return take(ctx, x, idx, ax)


@op("GatherElements")
def gather_elements(ctx: Any, x: Any, indices: Any, *, axis: int = 0) -> Any:
    ax = norm_axis(axis, len(x.shape))
    idx = npy(indices).astype(np.int64)
    idx = np.where(idx < 0, idx + x.shape[ax], idx)
    if lg_float(x):
        return x.gather(ax, _idx(ctx, idx))
    return ctx.value(np.take_along_axis(npy(x), idx, axis=ax))


@op("GatherND")
def gather_nd(ctx: Any, x: Any, indices: Any, *, batch_dims: int = 0) -> Any:
    shape = tuple(x.shape)
    idx = npy(indices).astype(np.int64)
    k = idx.shape[-1]
    b = batch_dims
    lead = shape[b:b + k]
    idx = np.where(idx < 0, idx + np.array(lead, dtype=np.int64), idx)
    bcount = int(np.prod(shape[:b])) if b else 1
    inner = int(np.prod(lead)) if k else 1
    lin = np.ravel_multi_index(np.moveaxis(idx, -1, 0), lead) if k else \
        np.zeros(idx.shape[:-1], np.int64)
    lin = lin.reshape(bcount, -1) + (np.arange(bcount) * inner)[:, None]
    rest = shape[b + k:]
    flat = reshape(ctx, x, to_value(np.array([bcount * inner] + list(rest) or [-1],
                                             np.int64)))
    out = take(ctx, flat, lin.reshape(-1), 0)
    new = list(idx.shape[:-1]) + list(rest)
    return out.reshape(*new) if lg_float(out) else ctx.value(npy(out).reshape(new))


def _reduce_at(dst: np.ndarray, key: tuple, upd: np.ndarray, reduction: str) -> None:
    if reduction == "none":
        dst[key] = upd
    elif reduction == "add":
        np.add.at(dst, key, upd)
    elif reduction == "mul":
        np.multiply.at(dst, key, upd)
    elif reduction == "max":
        np.maximum.at(dst, key, upd)
    elif reduction == "min":
        np.minimum.at(dst, key, upd)
    else:
        raise ValueError(f"unknown reduction {reduction!r}")


@op("ScatterElements", "Scatter")
def scatter_elements(ctx: Any, x: Any, indices: Any, updates: Any, *, axis: int = 0,
                     reduction: str = "none") -> Any:
    a = npy(x).copy()
    ax = norm_axis(axis, a.ndim)
    idx = npy(indices).astype(np.int64)
    idx = np.where(idx < 0, idx + a.shape[ax], idx)
    upd = npy(updates)
    grids = list(np.indices(idx.shape, sparse=True))
    grids[ax] = idx
    _reduce_at(a, tuple(np.broadcast_arrays(*grids)), upd, reduction)
    return ctx.value(a)


@op("ScatterND")
def scatter_nd(ctx: Any, x: Any, indices: Any, updates: Any, *, reduction: str = "none") -> Any:
    a = npy(x).copy()
    idx = npy(indices).astype(np.int64)
    upd = npy(updates)
    k = idx.shape[-1]
    flat_idx = idx.reshape(-1, k)
    flat_upd = upd.reshape((-1,) + a.shape[k:])
    for i in range(flat_idx.shape[0]):
        key = tuple(flat_idx[i])
        if reduction == "none":
            a[key] = flat_upd[i]
        else:
            _reduce_at(a, key, flat_upd[i], reduction)
    return ctx.value(a)


@op("Expand")
def expand(ctx: Any, x: Any, shape: Any) -> Any:
    target = ints(shape)
    out_shape = np.broadcast_shapes(tuple(x.shape), tuple(target))
    check_alloc("Expand", out_shape, np_dtype(x).itemsize)
    if lg_float(x):
        nd = len(out_shape)
        y = x.reshape(*([1] * (nd - len(x.shape)) + list(x.shape))) if len(x.shape) < nd else x
        return y.expand(*out_shape)
    return ctx.value(np.broadcast_to(npy(x), out_shape).copy())


@op("Tile")
def tile(ctx: Any, x: Any, repeats: Any) -> Any:
    r = ints(repeats)
    check_alloc("Tile", [a * b for a, b in zip(x.shape, r)], np_dtype(x).itemsize)
    return x.repeat(*r) if lg_float(x) and r else ctx.value(np.tile(npy(x), r))


def _pad_index(n: int, before: int, after: int, mode: str) -> np.ndarray:
    base = np.arange(n)
    if before < 0:
        base, before = base[-before:], 0
    if after < 0:
        base, after = base[:len(base) + after], 0
    np_mode = {"reflect": "reflect", "edge": "edge", "wrap": "wrap"}[mode]
    return np.pad(base, (before, after), mode=np_mode)


@op("Pad")
def pad(ctx: Any, x: Any, pads_in: Any = None, value_in: Any = None, axes_in: Any = None, *,
        mode: str = "constant", pads: Any = None, value: float = 0.0) -> Any:
    nd = len(x.shape)
    p = ints(pads_in) if pads_in is not None else list(pads)
    cval = scalar(value_in, value) if pads_in is not None else value
    axes = ints(axes_in) if axes_in is not None else list(range(nd))
    axes = [norm_axis(a, nd) for a in axes]
    n = len(axes)
    pairs = {a: (p[i], p[i + n]) for i, a in enumerate(axes)}
    out = x
    if mode == "constant":
        crop = [slice(None)] * nd
        for a, (b, e) in pairs.items():
            crop[a] = slice(max(-b, 0), x.shape[a] - max(-e, 0))
        if lg_float(x):
            out = x[tuple(crop)]
            flat = []
            for a in reversed(range(nd)):
                b, e = pairs.get(a, (0, 0))
                flat += [max(b, 0), max(e, 0)]
            return functions.pad(out, tuple(flat), value=float(cval or 0.0))
        a = npy(x)[tuple(crop)]
        widths = [(max(pairs.get(i, (0, 0))[0], 0), max(pairs.get(i, (0, 0))[1], 0))
                  for i in range(nd)]
        return ctx.value(np.pad(a, widths, constant_values=np.asarray(cval or 0).astype(a.dtype)))
    for a, (b, e) in pairs.items():
        if b or e:
            out = take(ctx, out, _pad_index(out.shape[a], b, e, mode), a)
    return out


@op("Shape")
def shape(ctx: Any, x: Any, *, start: int = 0, end: int | None = None) -> Any:
    s = list(x.shape)
    return ctx.value(np.array(s[slice(start, end)], dtype=np.int64))


@op("Size")
def size(ctx: Any, x: Any) -> Any:
    return ctx.value(np.array(int(np.prod(x.shape)), dtype=np.int64))


@op("ConstantOfShape")
def constant_of_shape(ctx: Any, shape: Any, *, value: Any = None) -> Any:
    v = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)
    check_alloc("ConstantOfShape", ints(shape), v.dtype.itemsize)
    return ctx.value(np.full(ints(shape), v[0], dtype=v.dtype))


@op("Constant")
def constant(ctx: Any, *, value: Any = None, value_float: Any = None, value_floats: Any = None,
             value_int: Any = None, value_ints: Any = None, value_string: Any = None,
             value_strings: Any = None, sparse_value: Any = None) -> Any:
    if value is not None:
        arr = value
    elif sparse_value is not None:
        arr = sparse_value
    elif value_float is not None:
        arr = np.array(value_float, np.float32)
    elif value_floats is not None:
        arr = np.array(value_floats, np.float32)
    elif value_int is not None:
        arr = np.array(value_int, np.int64)
    elif value_ints is not None:
        arr = np.array(value_ints, np.int64)
    elif value_string is not None:
        arr = np.array(value_string, dtype=object)
    elif value_strings is not None:
        arr = np.array(value_strings, dtype=object)
    else:
        raise ValueError("Constant: no value attribute")
    key = id(ctx.node)
    hit = ctx.const_cache.get(key)
    if hit is None or hit[0] is not arr:
        hit = (arr, ctx.value(arr))
        ctx.const_cache[key] = hit
    return hit[1]


@op("Range")
def range_op(ctx: Any, start: Any, limit: Any, delta: Any) -> Any:
    s, lim, d = (npy(v).reshape(-1)[0] for v in (start, limit, delta))
    n = max(int(np.ceil((lim.astype(np.float64) - s) / d)), 0)
    check_alloc("Range", [n], s.dtype.itemsize)
    return ctx.value(np.asarray(s + np.arange(n).astype(s.dtype) * d).astype(s.dtype))


@op("EyeLike")
def eye_like(ctx: Any, x: Any, *, dtype: int | None = None, k: int = 0) -> Any:
    dt = onnx_np_dtype(dtype) if dtype is not None else np_dtype(x)
    r, c = x.shape
    return ctx.value(np.eye(r, c, k=k, dtype=dt))


@op("Trilu")
def trilu(ctx: Any, x: Any, k_in: Any = None, *, upper: int = 1) -> Any:
    k = scalar(k_in, 0)
    if lg_float(x) and len(x.shape) >= 2:
        return x.triu(k) if upper else x.tril(k)
    a = npy(x)
    return ctx.value(np.triu(a, k) if upper else np.tril(a, k))


@op("OneHot")
def one_hot(ctx: Any, indices: Any, depth: Any, values: Any, *, axis: int = -1) -> Any:
    idx = npy(indices).astype(np.int64)
    d = int(npy(depth).reshape(-1)[0])
    vals = npy(values)
    idx = np.where(idx < 0, idx + d, idx)
    ax = norm_axis(axis, idx.ndim + 1)
    hot = np.expand_dims(idx, ax) == np.arange(d).reshape([-1 if i == ax else 1
                                                          for i in range(idx.ndim + 1)])
    return ctx.value(np.where(hot, vals[1], vals[0]).astype(vals.dtype))


@op("NonZero")
def nonzero(ctx: Any, x: Any) -> Any:
    a = npy(x)
    return ctx.value(np.array(np.nonzero(a), dtype=np.int64).reshape(a.ndim, -1))


@op("Compress")
def compress(ctx: Any, x: Any, condition: Any, *, axis: int | None = None) -> Any:
    cond = npy(condition).astype(bool)
    if axis is None:
        return take(ctx, reshape(ctx, x, to_value(np.array([-1], np.int64))),
                    np.nonzero(cond)[0], 0)
    ax = norm_axis(axis, len(x.shape))
    return take(ctx, x, np.nonzero(cond[:x.shape[ax]])[0], ax)


@op("Unique")
def unique(ctx: Any, x: Any, *, axis: int | None = None, sorted: int = 1) -> Any:
    a = npy(x)
    if axis is None:
        vals, idx, inv, cnt = np.unique(a.reshape(-1), return_index=True, return_inverse=True,
                                        return_counts=True)
        ax = 0
    else:
        ax = norm_axis(axis, a.ndim)
        vals, idx, inv, cnt = np.unique(a, axis=ax, return_index=True, return_inverse=True,
                                        return_counts=True)
    if not sorted:
        order = np.argsort(idx, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        vals = np.take(vals, order, axis=ax)
        idx, cnt, inv = idx[order], cnt[order], rank[inv.reshape(-1)]
    i64 = np.int64
    return (ctx.value(vals), ctx.value(idx.astype(i64)), ctx.value(inv.reshape(-1).astype(i64)),
            ctx.value(cnt.astype(i64)))


@op("DepthToSpace")
def depth_to_space(ctx: Any, x: Any, *, blocksize: int, mode: str = "DCR") -> Any:
    n, c, h, w = x.shape
    b = blocksize
    if mode == "DCR":
        y = reshape(ctx, x, to_value(np.array([n, b, b, c // (b * b), h, w], np.int64)))
        y = transpose(ctx, y, perm=[0, 3, 4, 1, 5, 2])
    else:
        y = reshape(ctx, x, to_value(np.array([n, c // (b * b), b, b, h, w], np.int64)))
        y = transpose(ctx, y, perm=[0, 1, 4, 2, 5, 3])
    return reshape(ctx, y, to_value(np.array([n, c // (b * b), h * b, w * b], np.int64)))


@op("SpaceToDepth")
def space_to_depth(ctx: Any, x: Any, *, blocksize: int, mode: str = "DCR") -> Any:
    n, c, h, w = x.shape
    b = blocksize
    y = reshape(ctx, x, to_value(np.array([n, c, h // b, b, w // b, b], np.int64)))
    y = transpose(ctx, y, perm=[0, 3, 5, 1, 2, 4] if mode == "DCR" else [0, 1, 3, 5, 2, 4])
    return reshape(ctx, y, to_value(np.array([n, c * b * b, h // b, w // b], np.int64)))


@op("ReverseSequence")
def reverse_sequence(ctx: Any, x: Any, lens: Any, *, batch_axis: int = 1,
                     time_axis: int = 0) -> Any:
    a = npy(x).copy()
    ln = npy(lens)
    for i, n in enumerate(ln):
        src = [slice(None)] * a.ndim
        src[batch_axis] = i
        src[time_axis] = slice(0, int(n))
        a[tuple(src)] = np.flip(a[tuple(src)], axis=time_axis - (batch_axis < time_axis))
    return ctx.value(a)


@op("CenterCropPad")
def center_crop_pad(ctx: Any, x: Any, shape_in: Any, *, axes: Any = None) -> Any:
    a = npy(x)
    target = ints(shape_in)
    axes = list(range(a.ndim)) if axes is None else [norm_axis(i, a.ndim) for i in axes]
    out = a
    for ax, t in zip(axes, target):
        n = out.shape[ax]
        if t < n:
            s = (n - t) // 2
            out = np.take(out, np.arange(s, s + t), axis=ax)
        elif t > n:
            widths = [(0, 0)] * out.ndim
            before = (t - n) // 2
            widths[ax] = (before, t - n - before)
            out = np.pad(out, widths)
    return ctx.value(out)


@op("Dropout")
def dropout(ctx: Any, x: Any, ratio: Any = None, training_mode: Any = None, *,
            seed: int | None = None, is_test: int = 0, ratio_attr: float = 0.5,
            **_: Any) -> Any:
    train = bool(scalar(training_mode, False))
    r = float(scalar(ratio, 0.5))
    if not train or r == 0:
        return (x, ctx.value(np.ones(tuple(x.shape), dtype=bool))) if ctx.n_outputs > 1 else x
    rng = np.random.RandomState(0 if seed is None else seed)
    mask = rng.uniform(0.0, 1.0, tuple(x.shape)) >= r
    scale = 1.0 / (1.0 - r)
    out = x * to_value(mask.astype(np_dtype(x)) * scale, ctx.device) if lg_float(x) else \
        ctx.value((npy(x) * mask * scale).astype(np_dtype(x)))
    return (out, ctx.value(mask)) if ctx.n_outputs > 1 else out


