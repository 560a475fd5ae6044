"""The remaining ONNX ops: Det, CumProd, BitCast, LpNormalization, TensorScatter,
CausalConvWithState, LinearAttention, random generators and the training optimisers
(ai.onnx.preview.training Adagrad, Momentum, Adam).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ... import functions
from ...nn import functional as F
from ..values import onnx_np_dtype, to_value
from .registry import op
from .util import axis as norm_axis
from .util import np_dtype, npy, scalar


@op("Det")
def det(ctx: Any, x: Any) -> Any:
    a = npy(x)
    return ctx.value(np.linalg.det(a).astype(a.dtype))


@op("CumProd")
def cumprod(ctx: Any, x: Any, axis_in: Any, *, exclusive: int = 0, reverse: int = 0) -> Any:
    a = npy(x)
    ax = norm_axis(int(scalar(axis_in)), a.ndim)
    y = np.flip(a, ax) if reverse else a
    out = np.cumprod(y, axis=ax, dtype=a.dtype)
    if exclusive:
        ones = np.ones_like(np.take(out, [0], axis=ax))
        out = np.concatenate([ones, np.take(out, np.arange(out.shape[ax] - 1), axis=ax)], ax)
    return ctx.value(np.flip(out, ax) if reverse else out)


@op("BitCast")
def bitcast(ctx: Any, x: Any, *, to: int) -> Any:
    a = np.array(npy(x), copy=True)
    dt = onnx_np_dtype(to)
    if dt.itemsize == a.dtype.itemsize:
        return ctx.value(a.view(dt))
    return ctx.value(a.view(dt).reshape(a.shape[:-1] + (-1,)) if a.ndim else a.view(dt))


@op("LpNormalization")
def lp_normalization(ctx: Any, x: Any, *, axis: int = -1, p: int = 2) -> Any:
    if p == 1:
        norm = x.abs().sum(dim=axis, keepdim=True)
    else:
        norm = (x * x).sum(dim=axis, keepdim=True).sqrt()
    safe = functions.where(norm == 0, norm * 0 + 1, norm)
    return x / safe


@op("TensorScatter")
def tensor_scatter(ctx: Any, cache: Any, update: Any, write_indices: Any = None, *,
                   axis: int = -2, mode: str = "linear") -> Any:
    c = npy(cache).copy()
    u = npy(update)
    ax = norm_axis(axis, c.ndim)
    idx = npy(write_indices).astype(np.int64) if write_indices is not None else \
        np.zeros(c.shape[0], np.int64)
    n = c.shape[ax]
    for b in range(c.shape[0]):
        for s in range(u.shape[ax]):
            pos = idx[b] + s
            if mode == "circular":
                pos %= n
            dst = [b] + [slice(None)] * (ax - 1) + [pos]
            src = [b] + [slice(None)] * (ax - 1) + [s]
            c[tuple(dst)] = u[tuple(src)]
    return ctx.value(c)


@op("CausalConvWithState")
def causal_conv_with_state(ctx: Any, x: Any, w: Any, b: Any = None, past_state: Any = None, *,
                           activation: str = "none") -> Any:
    batch, ch, _ = x.shape
    k = w.shape[2]
    pad = past_state if past_state is not None else \
        to_value(np.zeros((batch, ch, k - 1), np_dtype(x)), ctx.device)
    padded = functions.cat([pad, x], 2) if k > 1 else x
    y = F.conv1d(padded, w, b, groups=ch)
    if activation in ("silu", "swish"):
        y = y * y.sigmoid()
    state = padded[:, :, padded.shape[2] - (k - 1):]
    return y, state


@op("LinearAttention")
def linear_attention(ctx: Any, q: Any, k: Any, v: Any, past_state: Any = None,
                     decay: Any = None, beta: Any = None, *, chunk_size: int = 0,
                     kv_num_heads: int, q_num_heads: int, scale: float = 0.0,
                     update_rule: str = "gated_delta") -> Any:
    def heads(t: Any, h: int) -> np.ndarray:
        a = npy(t).astype(np.float32)
        b_, t_, hd = a.shape
        return a.reshape(b_, t_, h, hd // h).transpose(0, 2, 1, 3)

    out_dt = np_dtype(q)
    q4, k4, v4 = heads(q, q_num_heads), heads(k, kv_num_heads), heads(v, kv_num_heads)
    b, _, t, dk = q4.shape
    dv = v4.shape[-1]
    group = q_num_heads // kv_num_heads
    if decay is not None:
        d = npy(decay).astype(np.float32)
        d4 = d.reshape(b, t, kv_num_heads, 1).transpose(0, 2, 1, 3) \
            if d.shape[-1] == kv_num_heads else heads(decay, kv_num_heads)
    if beta is not None:
        be = npy(beta).astype(np.float32)
        be4 = be.reshape(b, t, be.shape[-1], 1).transpose(0, 2, 1, 3)
    state_dt = np_dtype(past_state) if past_state is not None else out_dt
    state = npy(past_state).astype(np.float32).copy() if past_state is not None else \
        np.zeros((b, kv_num_heads, dk, dv), np.float32)
    s = 1.0 / np.sqrt(dk) if not scale else float(scale)
    outs = np.zeros((b, q_num_heads, t, dv), np.float32)
    for i in range(t):
        kt, vt = k4[:, :, i], v4[:, :, i]
        if decay is not None:
            state = state * np.exp(d4[:, :, i])[..., None]
        if beta is not None:
            vt = be4[:, :, i] * (vt - np.einsum("bhdm,bhd->bhm", state, kt))
        state = state + kt[..., :, None] * vt[..., None, :]
        read = np.repeat(state, group, axis=1) if group > 1 else state
        outs[:, :, i] = s * np.einsum("bhd,bhdm->bhm", q4[:, :, i], read)
    y = outs.transpose(0, 2, 1, 3).reshape(b, t, q_num_heads * dv)
    return ctx.value(y.astype(out_dt)), ctx.value(state.astype(state_dt))


# ----------------------------------------------------------------------------- random


def _rng(seed: float | None) -> np.random.RandomState:
    return np.random.RandomState(None if seed is None else int(seed) % (2 ** 32))


@op("RandomUniform", "RandomUniformLike")
def random_uniform(ctx: Any, like: Any = None, *, dtype: int | None = None, high: float = 1.0,
                   low: float = 0.0, seed: float | None = None, shape: Any = None) -> Any:
    shp = tuple(like.shape) if like is not None else tuple(shape)
    dt = onnx_np_dtype(dtype) if dtype is not None else \
        (np_dtype(like) if like is not None else np.dtype(np.float32))
    return ctx.value(_rng(seed).uniform(low, high, shp).astype(dt))


@op("RandomNormal", "RandomNormalLike")
def random_normal(ctx: Any, like: Any = None, *, dtype: int | None = None, mean: float = 0.0,
                  scale: float = 1.0, seed: float | None = None, shape: Any = None) -> Any:
    shp = tuple(like.shape) if like is not None else tuple(shape)
    dt = onnx_np_dtype(dtype) if dtype is not None else \
        (np_dtype(like) if like is not None else np.dtype(np.float32))
    return ctx.value(_rng(seed).normal(mean, scale, shp).astype(dt))


@op("Bernoulli")
def bernoulli(ctx: Any, x: Any, *, dtype: int | None = None, seed: float | None = None) -> Any:
    p = npy(x)
    dt = onnx_np_dtype(dtype) if dtype is not None else p.dtype
    return ctx.value((_rng(seed).uniform(0.0, 1.0, p.shape) < p).astype(dt))


@op("Multinomial")
def multinomial(ctx: Any, x: Any, *, dtype: int = 6, sample_size: int = 1,
                seed: float | None = None) -> Any:
    logits = npy(x).astype(np.float64)
    rng = _rng(seed)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    out = np.stack([rng.choice(p.shape[1], size=sample_size, p=row) for row in p])
    return ctx.value(out.astype(onnx_np_dtype(dtype)))


# ----------------------------------------------------------------------------- optimisers

TRAINING = "ai.onnx.preview.training"


def _split_groups(xs: tuple, groups: int) -> list:
    n = len(xs) // groups
    return [list(xs[i * n:(i + 1) * n]) for i in range(groups)]


@op("Adagrad", domain=TRAINING)
def adagrad(ctx: Any, r: Any, t: Any, *rest: Any, decay_factor: float = 0.0,
            epsilon: float = 0.0, norm_coefficient: float = 0.0) -> Any:
    xs, gs, hs = _split_groups(rest, 3)
    lr = float(scalar(r)) / (1 + float(scalar(t)) * decay_factor)
    new_x, new_h = [], []
    for x, g, h in zip(xs, gs, hs):
        xa, ga, ha = npy(x), npy(g), npy(h)
        gg = norm_coefficient * xa + ga
        hn = ha + gg * gg
        new_x.append(ctx.value((xa - lr * gg / (np.sqrt(hn) + epsilon)).astype(xa.dtype)))
        new_h.append(ctx.value(hn.astype(ha.dtype)))
    return tuple(new_x + new_h)


@op("Momentum", domain=TRAINING)
def momentum(ctx: Any, r: Any, t: Any, *rest: Any, alpha: float, beta: float, mode: str,
             norm_coefficient: float) -> Any:
    xs, gs, vs = _split_groups(rest, 3)
    lr, step = float(scalar(r)), float(scalar(t))
    b = beta if step > 0 else 1.0
    new_x, new_v = [], []
    for x, g, v in zip(xs, gs, vs):
        xa, ga, va = npy(x), npy(g), npy(v)
        gg = norm_coefficient * xa + ga
        vn = alpha * va + b * gg
        xn = xa - lr * (gg + alpha * vn) if mode == "nesterov" else xa - lr * vn
        new_x.append(ctx.value(xn.astype(xa.dtype)))
        new_v.append(ctx.value(vn.astype(va.dtype)))
    return tuple(new_x + new_v)


@op("Adam", domain=TRAINING)
def adam(ctx: Any, r: Any, t: Any, *rest: Any, alpha: float = 0.9, beta: float = 0.999,
         epsilon: float = 1e-6, norm_coefficient: float = 0.0,
         norm_coefficient_post: float = 0.0) -> Any:
    xs, gs, vs, hs = _split_groups(rest, 4)
    lr, step = float(scalar(r)), float(scalar(t))
    if step > 0:
        lr = lr * np.sqrt(1 - beta ** step) / (1 - alpha ** step)
    out_x, out_v, out_h = [], [], []
    for x, g, v, h in zip(xs, gs, vs, hs):
        xa, ga, va, ha = npy(x), npy(g), npy(v), npy(h)
        gg = norm_coefficient * xa + ga
        vn = alpha * va + (1 - alpha) * gg
        hn = beta * ha + (1 - beta) * gg * gg
        xn = (1 - norm_coefficient_post) * (xa - lr * vn / (np.sqrt(hn) + epsilon))
        out_x.append(ctx.value(xn.astype(xa.dtype)))
        out_v.append(ctx.value(vn.astype(va.dtype)))
        out_h.append(ctx.value(hn.astype(ha.dtype)))
    return tuple(out_x + out_v + out_h)


