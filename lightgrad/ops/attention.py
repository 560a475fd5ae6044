"""Scaled dot-product attention as one fused op.

Forward (one backend primitive): ``P = softmax(Q K^T * scale + mask)``, ``O = P V``; the
probabilities P are kept for backward, which is four matmuls and a softmax backward:
``dV = P^T dO``, ``dP = dO V^T``, ``dS = P * (dP - rowsum(dP * P))``,
``dQ = dS K * scale``, ``dK = dS^T Q * scale`` (and ``dS`` for a float mask).

>>> import lightgrad as lg
>>> q = k = v = lg.eye(2).reshape(1, 2, 2)
>>> scaled_dot_product_attention(q, k, v, is_causal=True)[0, 0].tolist()
[1.0, 0.0]
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import dtypes
from ..autograd import Function, is_grad_enabled
from ..tensor import Tensor
from .common import describe, same_device, unbroadcast, wrap


def _scores_probs(q: Tensor, k: Tensor, mask: Tensor | None, scale: float,
                  is_causal: bool) -> Tensor:
    """The attention probabilities with Tensor ops (differentiable; used by create_graph)."""
    from ..creation import ones
    scores = q.matmul(k.mT) * scale
    if is_causal:
        keep = ones(scores.shape[-2:], dtype=dtypes.bool_, device=q.device).tril()
        scores = scores.masked_fill(~keep, -math.inf)
    if mask is not None:
        scores = scores.masked_fill(~mask, -math.inf) if mask.dtype is dtypes.bool_ \
            else scores + mask
    return scores.softmax(-1)


class Attention(Function):
    @staticmethod
    def forward(ctx, q, k, v, mask, scale, is_causal, keep):
        out, probs = q.device.backend.scaled_dot_product_attention(
            q._data, k._data, v._data, mask._data if mask is not None else None, scale,
            is_causal, keep._data if keep is not None else None)
        if ctx._record:
            ctx.scale, ctx.is_causal = scale, is_causal
            ctx.save_for_backward(q, k, v, mask, keep, wrap(probs, q.device))
        return wrap(out, q.device)

    @staticmethod
    def backward(ctx, g):
        q, k, v, mask, keep, probs = ctx.saved_tensors
        if is_grad_enabled():  # create_graph: probabilities as functions of q, k, mask
            probs = _scores_probs(q, k, mask, ctx.scale, ctx.is_causal)
        need_q, need_k, need_v, need_mask = ctx.needs_input_grad[:4]
        dropped = probs * keep if keep is not None else probs
        gv = unbroadcast(dropped.mT.matmul(g), v.shape) if need_v else None
        gq = gk = gmask = None
        if need_q or need_k or need_mask:
            gp = g.matmul(v.mT)
            if keep is not None:
                gp = gp * keep
            gs = probs * (gp - (gp * probs).sum(dim=-1, keepdim=True))
            if need_q:
                gq = unbroadcast(gs.matmul(k) * ctx.scale, q.shape)
            if need_k:
                gk = unbroadcast(gs.mT.matmul(q) * ctx.scale, k.shape)
            if need_mask:
                gmask = unbroadcast(gs, mask.shape)
        return gq, gk, gv, gmask, None, None, None


def _check(q: Any, k: Any, v: Any, mask: Any) -> tuple:
    """Validated operands; returns the broadcast batch shape."""
    op = "scaled_dot_product_attention"
    for name, t in (("query", q), ("key", k), ("value", v)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
        if t.ndim < 2:
            raise ValueError(f"{op}: {name} must have at least 2 dims (..., L, E), got "
                             f"shape {tuple(t.shape)}")
    tensors = [q, k, v] + ([mask] if mask is not None else [])
    same_device(op, tensors)
    if not q.dtype.is_floating_point or k.dtype is not q.dtype or v.dtype is not q.dtype:
        raise TypeError(f"{op}: query, key and value must share one floating-point dtype, "
                        f"got {describe(q)}, {describe(k)}, {describe(v)}")
    if k.shape[-1] != q.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"{op}: shapes do not match: query {tuple(q.shape)} (..., L, E), key "
                         f"{tuple(k.shape)} (..., S, E), value {tuple(v.shape)} (..., S, Ev)")
    try:
        batch = q.shape[:-2]
        if not batch == k.shape[:-2] == v.shape[:-2]:  # (equal batch dims: the usual case)
            batch = np.broadcast_shapes(batch, k.shape[:-2], v.shape[:-2])
    except ValueError:
        raise ValueError(f"{op}: batch dims of query {tuple(q.shape)}, key {tuple(k.shape)} "
                         f"and value {tuple(v.shape)} do not broadcast") from None
    if mask is not None:
        if mask.dtype is not dtypes.bool_ and mask.dtype is not q.dtype:
            raise TypeError(f"{op}: attn_mask must be bool or {q.dtype.name}, got "
                            f"{describe(mask)}")
        scores = tuple(batch) + (q.shape[-2], k.shape[-2])
        try:
            if np.broadcast_shapes(mask.shape, scores) != scores:
                raise ValueError
        except ValueError:
            raise ValueError(f"{op}: attn_mask of shape {tuple(mask.shape)} does not "
                             f"broadcast to the attention scores' shape {scores}") from None
    return tuple(batch)


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor,
                                 attn_mask: Tensor | None = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """``softmax(query @ key^T * scale + mask) @ value`` over (..., L, E) queries and
    (..., S, E) keys; leading dims broadcast.

    ``attn_mask``: bool (True = may attend, as in PyTorch) or float (added to the scores).
    ``is_causal``: query i attends to keys j <= i. ``scale`` defaults to 1/sqrt(E). A query
    row that may attend to nothing gives zeros.

    >>> import lightgrad as lg
    >>> q = lg.randn(2, 4, 5, 8)
    >>> scaled_dot_product_attention(q, lg.randn(2, 4, 7, 8), lg.randn(2, 4, 7, 3)).shape
    (2, 4, 5, 3)
    """
    op = "scaled_dot_product_attention"
    batch = _check(query, key, value, attn_mask)
    if enable_gqa:
        raise NotImplementedError(f"{op}: enable_gqa is not supported; repeat the key/value "
                                  "heads instead")
    if is_causal and attn_mask is not None:
        raise ValueError(f"{op}: pass either attn_mask or is_causal=True, not both")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"{op}: dropout_p must be in [0, 1), got {dropout_p}")
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    keep = None
    if dropout_p > 0.0:
        from ..creation import rand
        shape = batch + (query.shape[-2], key.shape[-2])
        keep = (rand(*shape, dtype=query.dtype, device=query.device) >= dropout_p)
        keep = keep.to(query.dtype) * (1.0 / (1.0 - dropout_p))
    return Attention.apply(query, key, value, attn_mask, scale, bool(is_causal), keep)
