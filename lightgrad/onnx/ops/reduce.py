"""Reductions and normalisers over an axis: Reduce*, ArgMax/ArgMin, CumSum, Softmax, TopK.

Opset rules: ``axes`` is an attribute before opset 13 (ReduceSum) / 18 (the others) and an
input after; both are accepted. Softmax/LogSoftmax/Hardmax before opset 13 flatten the input
to 2-D at ``axis`` (default 1); from 13 they work along ``axis`` (default -1).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...tensor import Tensor
from .registry import op
from .util import axis as norm_axis
from .util import ints, lg_float, npy


def _axes(x: Any, axes_in: Any, axes_attr: Any, noop: int) -> tuple | None:
    """Normalised axes; None means 'no reduction' (noop_with_empty_axes)."""
    axes = ints(axes_in) if axes_in is not None else axes_attr
    if not axes:
        return None if noop else tuple(range(len(x.shape)))
    return tuple(sorted(norm_axis(a, len(x.shape)) for a in axes))


def _reduce(name: str, tensor_fn: Any, np_fn: Any, pre: Any = None, post: Any = None,
            empty: Any = None) -> None:
    def run(ctx: Any, x: Any, axes_in: Any = None, *, axes: Any = None, keepdims: int = 1,
            noop_with_empty_axes: int = 0) -> Any:
        ax = _axes(x, axes_in, axes, noop_with_empty_axes)
        if ax is None:
            return x if pre is None or not lg_float(x) else x
        shape = tuple(x.shape)
        zero = any(shape[a] == 0 for a in ax)
        if lg_float(x) and tensor_fn is not None and not zero:
            y = pre(x) if pre is not None else x
            y = tensor_fn(y, ax, bool(keepdims)) if ax else y
            return post(y) if post is not None else y
        a = npy(x)
        src = pre(a) if pre is not None else a
        with np.errstate(all="ignore"):
            if zero and empty is not None:
                out = np.full([1 if i in ax else s for i, s in enumerate(shape)] if keepdims
                              else [s for i, s in enumerate(shape) if i not in ax],
                              empty(a.dtype), dtype=a.dtype)
            else:
                out = np_fn(src, axis=ax, keepdims=bool(keepdims))
                if post is not None:
                    out = post(out)
        return ctx.value(np.asarray(out).astype(a.dtype))
    op(name)(run)


def _lowest(dt: np.dtype) -> Any:
    return -np.inf if dt.kind == "f" else np.iinfo(dt).min if dt.kind in "iu" else False


def _highest(dt: np.dtype) -> Any:
    return np.inf if dt.kind == "f" else np.iinfo(dt).max if dt.kind in "iu" else True


_reduce("ReduceSum", lambda x, a, k: x.sum(dim=a, keepdim=k), np.sum)
_reduce("ReduceMean", lambda x, a, k: x.mean(dim=a, keepdim=k), np.mean)
_reduce("ReduceMax", lambda x, a, k: x.amax(dim=a, keepdim=k), np.max, empty=_lowest)
_reduce("ReduceMin", lambda x, a, k: x.amin(dim=a, keepdim=k), np.min, empty=_highest)
_reduce("ReduceProd", None, np.prod, empty=lambda dt: 1)
_reduce("ReduceSumSquare", lambda x, a, k: x.sum(dim=a, keepdim=k), np.sum,
        pre=lambda x: x * x, empty=lambda dt: 0)
_reduce("ReduceL1", lambda x, a, k: x.sum(dim=a, keepdim=k), np.sum,
        pre=lambda x: x.abs() if isinstance(x, Tensor) else np.abs(x), empty=lambda dt: 0)
_reduce("ReduceL2", lambda x, a, k: x.sum(dim=a, keepdim=k), np.sum,
        pre=lambda x: x * x, post=lambda y: y ** 0.5 if not isinstance(y, Tensor) else
        y.sqrt(), empty=lambda dt: 0)
_reduce("ReduceLogSum", lambda x, a, k: x.sum(dim=a, keepdim=k), np.sum,
        post=lambda y: y.log() if isinstance(y, Tensor) else np.log(y),
        empty=lambda dt: -np.inf)
_reduce("ReduceLogSumExp", lambda x, a, k: x.logsumexp(dim=a, keepdim=k),
        lambda a, axis, keepdims: np.log(np.sum(np.exp(a.astype(np.float64)), axis=axis,
                                                keepdims=keepdims)),
        empty=lambda dt: -np.inf)


def _arg(name: str, np_fn: Any) -> None:
    def run(ctx: Any, x: Any, *, axis: int = 0, keepdims: int = 1,
            select_last_index: int = 0) -> Any:
        a = npy(x)
        ax = norm_axis(axis, a.ndim)
        if select_last_index:
            flipped = np.flip(a, ax)
            idx = a.shape[ax] - 1 - np_fn(flipped, axis=ax)
        else:
            idx = np_fn(a, axis=ax)
        if keepdims:
            idx = np.expand_dims(idx, ax)
        return ctx.value(np.asarray(idx, dtype=np.int64))
    op(name)(run)


_arg("ArgMax", np.argmax)
_arg("ArgMin", np.argmin)


@op("CumSum")
def cumsum(ctx: Any, x: Any, axis_in: Any, *, exclusive: int = 0, reverse: int = 0) -> Any:
    ax = norm_axis(int(npy(axis_in).reshape(-1)[0]), len(x.shape))
    if lg_float(x):
        y = x.flip(ax) if reverse else x
        out = y.cumsum(ax)
        if exclusive:
            out = out - y
        return out.flip(ax) if reverse else out
    a = npy(x)
    y = np.flip(a, ax) if reverse else a
    out = np.cumsum(y, axis=ax, dtype=a.dtype)
    if exclusive:
        out = out - y
    return ctx.value(np.flip(out, ax) if reverse else out)


def _coerce(ctx: Any, x: Any, axis: int | None) -> tuple[Any, int, tuple | None]:
    """(input, axis, original shape or None) under the opset's axis rules."""
    nd = len(x.shape)
    if ctx.opset >= 13:
        return x, norm_axis(-1 if axis is None else axis, nd), None
    ax = norm_axis(1 if axis is None else axis, nd)
    shape = tuple(x.shape)
    rows = int(np.prod(shape[:ax])) if ax else 1
    return x.reshape(rows, -1) if nd else x, 1 if nd else 0, shape


def _softmax(name: str, log: bool) -> None:
    def run(ctx: Any, x: Any, *, axis: int | None = None) -> Any:
        y, ax, shape = _coerce(ctx, x, axis)
        if lg_float(y):
            out = y.log_softmax(ax) if log else y.softmax(ax)
        else:
            a = npy(y).astype(np.float64)
            m = a - a.max(axis=ax, keepdims=True)
            lse = np.log(np.exp(m).sum(axis=ax, keepdims=True))
            out = ctx.value((m - lse if log else np.exp(m - lse)).astype(npy(y).dtype))
        return out.reshape(shape) if shape is not None else out
    op(name)(run)


_softmax("Softmax", False)
_softmax("LogSoftmax", True)


@op("Hardmax")
def hardmax(ctx: Any, x: Any, *, axis: int | None = None) -> Any:
    y, ax, shape = _coerce(ctx, x, axis)
    a = npy(y)
    out = np.zeros_like(a)
    np.put_along_axis(out, np.expand_dims(np.argmax(a, axis=ax), ax), 1, axis=ax)
    return ctx.value(out.reshape(shape) if shape is not None else out)


@op("TopK")
def topk(ctx: Any, x: Any, k_in: Any = None, *, axis: int = -1, largest: int = 1,
         sorted: int = 1, k: int | None = None) -> Any:
    kk = int(npy(k_in).reshape(-1)[0]) if k_in is not None else int(k)
    a = npy(x)
    ax = norm_axis(axis, a.ndim)
    # stable order: by value (descending when largest), ties by lower index
    key = -a if largest and a.dtype.kind != "u" else a
    if largest and a.dtype.kind == "u":
        key = a.max() - a if a.size else a
    idx = np.argsort(key, axis=ax, kind="stable")
    idx = np.take(idx, np.arange(kk), axis=ax)
    if lg_float(x):
        from ..values import to_value
        it = to_value(idx.astype(np.int64), x.device)
        return x.gather(ax, it), it
    return ctx.value(np.take_along_axis(a, idx, axis=ax)), ctx.value(idx.astype(np.int64))
