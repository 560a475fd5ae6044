"""NN ONNX ops: MatMul, Gemm, Einsum, the normalisations and the losses (Tensor ops).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ... import functions
from ...ops.einsum import einsum as lg_einsum
from ..values import to_value
from .registry import op
from .util import axis as norm_axis
from .util import lg_float, np_dtype, npy, spatial_axes


@op("MatMul")
def matmul(ctx: Any, a: Any, b: Any) -> Any:
    if lg_float(a) and lg_float(b):
        return a.matmul(b)
    x, y = npy(a), npy(b)
    return ctx.value(np.matmul(x, y).astype(x.dtype))


@op("Gemm")
def gemm(ctx: Any, a: Any, b: Any, c: Any = None, *, alpha: float = 1.0, beta: float = 1.0,
         transA: int = 0, transB: int = 0, broadcast: int = 0) -> Any:
    if lg_float(a) and lg_float(b):
        x = a.t() if transA else a
        y = b.t() if transB else b
        out = x.matmul(y)
        if alpha != 1.0:
            out = out * alpha
        if c is not None:
            out = out + (c * beta if beta != 1.0 else c)
        return out
    x, y = npy(a), npy(b)
    x = x.T if transA else x
    y = y.T if transB else y
    out = alpha * (x @ y)
    if c is not None:
        out = out + beta * npy(c)
    return ctx.value(out.astype(npy(a).dtype))


@op("Einsum")
def einsum(ctx: Any, *xs: Any, equation: str) -> Any:
    if all(lg_float(x) for x in xs):
        return lg_einsum(equation, *xs)
    arrs = [npy(x) for x in xs]
    return ctx.value(np.einsum(equation, *arrs).astype(arrs[0].dtype))


# ----------------------------------------------------------------------------- norms


def _channel_shape(x: Any) -> tuple:
    return (1, -1) + (1,) * (len(x.shape) - 2)


@op("BatchNormalization")
def batch_normalization(ctx: Any, x: Any, scale: Any, bias: Any, mean: Any, var: Any, *,
                        epsilon: float = 1e-5, momentum: float = 0.9, training_mode: int = 0,
                        spatial: int = 1, is_test: int = 0, consumed_inputs: Any = None) -> Any:
    cs = _channel_shape(x)
    if training_mode:
        axes = (0,) + spatial_axes(x)
        bm = x.mean(dim=axes)
        bv = ((x - bm.reshape(*cs)) ** 2).mean(dim=axes)
        y = (x - bm.reshape(*cs)) / (bv.reshape(*cs) + epsilon).sqrt() * scale.reshape(*cs) \
            + bias.reshape(*cs)
        rm = mean * momentum + bm * (1 - momentum)
        rv = var * momentum + bv * (1 - momentum)
        return (y, rm, rv)[:max(ctx.n_outputs, 1)]
    inv = (var + epsilon).rsqrt() * scale
    y = x * inv.reshape(*cs) + (bias - mean * inv).reshape(*cs)
    return y


@op("InstanceNormalization")
def instance_normalization(ctx: Any, x: Any, scale: Any, bias: Any, *,
                           epsilon: float = 1e-5) -> Any:
    axes = spatial_axes(x)
    m = x.mean(dim=axes, keepdim=True)
    d = x - m
    v = (d * d).mean(dim=axes, keepdim=True)
    cs = _channel_shape(x)
    return d * (v + epsilon).rsqrt() * scale.reshape(*cs) + bias.reshape(*cs)


@op("LayerNormalization")
def layer_normalization(ctx: Any, x: Any, scale: Any, bias: Any = None, *, axis: int = -1,
                        epsilon: float = 1e-5, stash_type: int = 1) -> Any:
    nd = len(x.shape)
    ax = norm_axis(axis, nd)
    axes = tuple(range(ax, nd))
    xs = x.to(lg_dtype32(x)) if stash_type == 1 and x.dtype.itemsize < 4 else x
    m = xs.mean(dim=axes, keepdim=True)
    d = xs - m
    v = (d * d).mean(dim=axes, keepdim=True)
    inv = (v + epsilon).rsqrt()
    y = (d * inv).to(x.dtype) * scale
    if bias is not None:
        y = y + bias
    if ctx.n_outputs == 1:
        return y
    return y, m, inv


def lg_dtype32(x: Any) -> Any:
    from ... import float32
    return float32


@op("RMSNormalization")
def rms_normalization(ctx: Any, x: Any, scale: Any, *, axis: int = -1, epsilon: float = 1e-5,
                      stash_type: int = 1) -> Any:
    nd = len(x.shape)
    axes = tuple(range(norm_axis(axis, nd), nd))
    xs = x.to(lg_dtype32(x)) if stash_type == 1 and x.dtype.itemsize < 4 else x
    r = ((xs * xs).mean(dim=axes, keepdim=True) + epsilon).rsqrt()
    return (xs * r).to(x.dtype) * scale


@op("GroupNormalization")
def group_normalization(ctx: Any, x: Any, scale: Any, bias: Any, *, num_groups: int,
                        epsilon: float = 1e-5, stash_type: int = 1) -> Any:
    shape = tuple(x.shape)
    N, C = shape[:2]
    g = x.reshape(N, num_groups, -1)
    m = g.mean(dim=2, keepdim=True)
    d = g - m
    v = (d * d).mean(dim=2, keepdim=True)
    y = (d * (v + epsilon).rsqrt()).reshape(*shape)
    cs = _channel_shape(x)
    if scale.shape[0] != C:
        rep = C // num_groups
        idx = to_value(np.repeat(np.arange(num_groups), rep), ctx.device)
        scale, bias = scale.index_select(0, idx), bias.index_select(0, idx)
    return y * scale.reshape(*cs) + bias.reshape(*cs)


@op("LRN")
def lrn(ctx: Any, x: Any, *, size: int, alpha: float = 1e-4, beta: float = 0.75,
        bias: float = 1.0) -> Any:
    C = x.shape[1]
    sq = x * x
    before, after = (size - 1) // 2, size // 2
    flat = [0, 0] * (len(x.shape) - 2) + [before, after]
    padded = functions.pad(sq, tuple(flat))
    total = padded[:, 0:C]
    for i in range(1, size):
        total = total + padded[:, i:i + C]
    return x / (total * (alpha / size) + bias).pow(beta)


# ----------------------------------------------------------------------------- losses


def _nll(ctx: Any, logp: Any, target: Any, weight: Any, reduction: str,
         ignore_index: Any) -> Any:
    t = npy(target).astype(np.int64)
    ignored = (t == ignore_index) if ignore_index is not None else np.zeros(t.shape, bool)
    safe = np.where(ignored, 0, t)
    w = npy(weight)[safe] if weight is not None else np.ones(t.shape, np_dtype(logp))
    w = np.where(ignored, 0, w).astype(np_dtype(logp))
    picked = logp.gather(1, to_value(np.expand_dims(safe, 1), ctx.device)).reshape(*t.shape) \
        if t.ndim else logp
    loss = -picked * to_value(w, ctx.device)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / float(w.sum()) if weight is not None else loss.sum() / \
        float(max((~ignored).sum(), 1)) if ignore_index is not None else loss.mean()


@op("NegativeLogLikelihoodLoss")
def nll_loss(ctx: Any, x: Any, target: Any, weight: Any = None, *, ignore_index: Any = None,
             reduction: str = "mean") -> Any:
    return _nll(ctx, x, target, weight, reduction, ignore_index)


@op("SoftmaxCrossEntropyLoss")
def softmax_cross_entropy(ctx: Any, scores: Any, labels: Any, weights: Any = None, *,
                          ignore_index: Any = None, reduction: str = "mean") -> Any:
    logp = scores.log_softmax(1)
    loss = _nll(ctx, logp, labels, weights, reduction, ignore_index)
    return (loss, logp) if ctx.n_outputs > 1 else loss
