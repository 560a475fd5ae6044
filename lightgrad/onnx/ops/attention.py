"""ONNX ``Attention`` (opset 23+) and ``RotaryEmbedding``, in Tensor ops (differentiable).

Attention: 3-D inputs are split into heads (``q_num_heads``/``kv_num_heads``); past key/
value are concatenated in front; grouped-query heads are repeated; the bias combines the
(bool or additive) mask, causal (bottom-right aligned to the past), sliding window and
padding masks; rows with every key masked give zeros.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ... import functions
from ...tensor import Tensor
from ..values import onnx_np_dtype, to_value
from .registry import op
from .util import cast_like, lg_float, np_dtype, npy


def _heads(x: Tensor, n: int | None) -> Tensor:
    b, s, h = x.shape
    return x.reshape(b, s, n, h // n).permute(0, 2, 1, 3)


def _as_float(ctx: Any, x: Any, dt: np.dtype) -> Any:
    if x is None:
        return None
    return x if lg_float(x) else to_value(npy(x).astype(dt), ctx.device)


@op("Attention")
def attention(ctx: Any, q: Any, k: Any, v: Any, attn_mask: Any = None, past_key: Any = None,
              past_value: Any = None, nonpad_kv_seqlen: Any = None, *, is_causal: int = 0,
              kv_num_heads: int | None = None, q_num_heads: int | None = None,
              qk_matmul_output_mode: int = 0, scale: float | None = None, softcap: float = 0.0,
              softmax_precision: int | None = None, left_window_size: int = -1,
              right_window_size: int = -1) -> Any:
    three_d = len(q.shape) == 3
    if three_d:
        q, k, v = _heads(q, q_num_heads), _heads(k, kv_num_heads), _heads(v, kv_num_heads)
    dt = np_dtype(q)
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[3])
    if past_key is not None:
        k = functions.cat([past_key, k], 2)
    if past_value is not None:
        v = functions.cat([past_value, v], 2)
    present_k, present_v = k, v
    sq, skv = q.shape[2], k.shape[2]
    past = past_key.shape[2] if past_key is not None else 0
    bias = np.zeros((sq, skv), np.float32)
    mask_t = None
    if attn_mask is not None:
        m = npy(attn_mask)
        pad = skv - m.shape[-1]
        if m.dtype == bool:
            if pad > 0:
                m = np.pad(m, [(0, 0)] * (m.ndim - 1) + [(0, pad)], constant_values=False)
            bias = bias + np.where(m, 0.0, -np.inf).astype(np.float32)
        elif lg_float(attn_mask) and attn_mask.requires_grad and pad <= 0:
            mask_t = attn_mask
        else:
            if pad > 0:
                m = np.pad(m, [(0, 0)] * (m.ndim - 1) + [(0, pad)], constant_values=-np.inf)
            bias = bias + m.astype(np.float32)
    seqlen = npy(nonpad_kv_seqlen).reshape(-1) if nonpad_kv_seqlen is not None else None
    if past_key is None and seqlen is not None:
        offset = (seqlen - sq).reshape(-1, 1, 1, 1)
    else:
        offset = past
    i = np.arange(sq).reshape(sq, 1)
    j = np.arange(skv).reshape(1, skv)
    if is_causal:
        bias = bias + np.where(j <= i + offset, 0.0, -np.inf).astype(np.float32)
    if left_window_size >= 0 or right_window_size >= 0:
        diff = (i + offset) - j
        ok = np.ones(np.shape(diff), bool)
        if left_window_size >= 0:
            ok &= diff <= left_window_size
        if right_window_size >= 0:
            ok &= -diff <= right_window_size
        bias = bias + np.where(ok, 0.0, -np.inf).astype(np.float32)
    if seqlen is not None:
        keep = np.arange(skv) < seqlen[:, None]
        bias = bias + np.where(keep, 0.0, -np.inf).reshape(-1, 1, 1, skv).astype(np.float32)
    hq, hk = q.shape[1], k.shape[1]
    if hq != hk and hq % hk == 0:
        rep = to_value(np.repeat(np.arange(hk), hq // hk), ctx.device)
        k, v = k.index_select(1, rep), v.index_select(1, rep)
    root = math.sqrt(scale)
    qk = (q * root).matmul(k.transpose(-1, -2) * root)
    if softcap and softcap > 0:
        qk = (qk / softcap).tanh() * softcap
    bias = np.broadcast_to(bias, np.broadcast_shapes(bias.shape, (1, 1, sq, skv)))
    dead = np.isneginf(bias.max(axis=-1, keepdims=True))
    safe = np.where(dead, 0.0, bias).astype(dt)
    with_bias = qk + to_value(safe, ctx.device)
    if mask_t is not None:
        with_bias = with_bias + mask_t
    qk_out = with_bias if qk_matmul_output_mode == 2 else qk
    sm_in = with_bias
    if softmax_precision is not None:
        sm_in = cast_like(sm_in, onnx_np_dtype(softmax_precision))
    p = sm_in.softmax(-1)
    if dead.any():
        p = p * to_value((~dead).astype(np_dtype(p)), ctx.device)
    p = cast_like(p, dt) if np_dtype(p) != dt else p
    if qk_matmul_output_mode == 3:
        qk_out = p
    y = p.matmul(v)
    if three_d:
        b, h, s, d = y.shape
        y = y.permute(0, 2, 1, 3).reshape(b, s, h * d)
    return (y, present_k, present_v, qk_out)[:max(ctx.n_outputs, 1)] if ctx.n_outputs > 1 \
        else y


@op("RotaryEmbedding")
def rotary_embedding(ctx: Any, x: Any, cos_cache: Any, sin_cache: Any, position_ids: Any = None,
                     *, interleaved: int = 0, num_heads: int = 0,
                     rotary_embedding_dim: int = 0) -> Any:
    shape = tuple(x.shape)
    if len(shape) == 3:
        b, s, hidden = shape
        x4 = x.reshape(b, s, num_heads, hidden // num_heads)
    else:
        x4 = x.permute(0, 2, 1, 3)  # (B, H, S, D) -> (B, S, H, D)
    d = x4.shape[3]
    rd = rotary_embedding_dim or d
    cos, sin = cos_cache, sin_cache
    if position_ids is not None:
        pid = npy(position_ids).astype(np.int64)
        cos = _take_rows(ctx, cos, pid)
        sin = _take_rows(ctx, sin, pid)
    half = rd // 2
    cos = cos[..., :half].reshape(cos.shape[0], cos.shape[1], 1, half)
    sin = sin[..., :half].reshape(sin.shape[0], sin.shape[1], 1, half)
    rot, rest = x4[..., :rd], x4[..., rd:]
    if interleaved:
        x1, x2 = rot[..., 0::2], rot[..., 1::2]
    else:
        x1, x2 = rot[..., :half], rot[..., half:]
    r1 = x1 * cos - x2 * sin
    r2 = x2 * cos + x1 * sin
    if interleaved:
        out = functions.stack([r1, r2], -1).reshape(*r1.shape[:-1], rd)
    else:
        out = functions.cat([r1, r2], -1)
    if rd < d:
        out = functions.cat([out, rest], -1)
    if len(shape) == 3:
        return out.reshape(*shape)
    return out.permute(0, 2, 1, 3)


def _take_rows(ctx: Any, cache: Any, pid: np.ndarray) -> Any:
    flat = cache.index_select(0, to_value(pid.reshape(-1), ctx.device))
    return flat.reshape(*pid.shape, cache.shape[-1])


@op("FlexAttention", domain="ai.onnx.preview")
def flex_attention(ctx: Any, q: Any, k: Any, v: Any, *, scale: float | None = None,
                   score_mod: Any = None, prob_mod: Any = None,
                   softmax_precision: int | None = None) -> Any:
    """softmax(score_mod(q k^T * scale)) -> prob_mod -> @ v; the mods are sub-graphs."""
    dt = np_dtype(q)
    hq, hk = q.shape[1], k.shape[1]
    if hq != hk:
        rep = to_value(np.repeat(np.arange(hk), hq // hk), ctx.device)
        k, v = k.index_select(1, rep), v.index_select(1, rep)
    s = 1.0 / math.sqrt(q.shape[3]) if scale is None else scale
    root = float(np.sqrt(np.float32(s)))
    scores = (q * root).matmul(k.transpose(-1, -2) * root)
    if softmax_precision is not None:
        work = onnx_np_dtype(softmax_precision)
    else:
        work = np.dtype(np.float32) if dt.itemsize < 4 else dt
    scores = cast_like(scores, work) if np_dtype(scores) != work else scores
    if score_mod is not None:
        scores = ctx.run_graph(score_mod, [scores])[0]
    p = scores.softmax(-1)
    if prob_mod is not None:
        p = ctx.run_graph(prob_mod, [p])[0]
    out = p.matmul(cast_like(v, work) if np_dtype(v) != work else v)
    return cast_like(out, np_dtype(v)) if np_dtype(out) != np_dtype(v) else out
