"""``MultiheadAttention``: PyTorch's multi-head attention layer, built from Tensor ops.

Parameters and state_dict keys match ``torch.nn.MultiheadAttention``: ``in_proj_weight`` and
``in_proj_bias`` (or ``q_proj_weight``/``k_proj_weight``/``v_proj_weight`` when ``kdim`` or
``vdim`` differ from ``embed_dim``) and ``out_proj``.

>>> import lightgrad as lg
>>> from lightgrad import nn
>>> mha = nn.MultiheadAttention(4, 2)
>>> out, w = mha(lg.randn(3, 1, 4), lg.randn(5, 1, 4), lg.randn(5, 1, 4))
>>> out.shape, w.shape
((3, 1, 4), (1, 3, 5))
"""
from __future__ import annotations

import math
from typing import Any

from ... import dtypes
from ...creation import empty, ones, zeros
from ...functions import cat
from ...tensor import Tensor
from .. import functional as F
from .. import init
from ..module import Module
from ..parameter import Parameter
from .linear import Linear


class NonDynamicallyQuantizableLinear(Linear):
    """A plain ``Linear``; the name matches PyTorch's ``MultiheadAttention.out_proj``."""


def _pad_keys(mask: Tensor, extra: int) -> Tensor:
    """``mask`` with ``extra`` key positions appended (not masked: False or 0.0)."""
    if not extra:
        return mask
    return cat([mask, zeros(*mask.shape[:-1], extra, dtype=mask.dtype, device=mask.device)], -1)


def _apply_mask(scores: Tensor, mask: Tensor | None) -> Tensor:
    """Bool ``mask``: True positions are masked out (-inf); float ``mask``: added."""
    if mask is None:
        return scores
    if mask.dtype is dtypes.bool_:
        return scores.masked_fill(mask, -math.inf)
    return scores + mask.to(scores.dtype)


class MultiheadAttention(Module):
    """Multi-head attention (Vaswani et al.), with PyTorch's arguments and semantics.

    ``forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True, is_causal=False)`` returns ``(output, weights or None)``.
    Inputs are (L, N, E) (or (N, L, E) with ``batch_first``) or unbatched (L, E).
    ``key_padding_mask`` (N, S) and ``attn_mask`` (L, S) or (N*num_heads, L, S): bool
    (True = not allowed to attend) or float (added to the scores). ``is_causal`` with no
    ``attn_mask`` applies a causal mask. ``add_bias_kv`` appends a learned key and value
    (parameters ``bias_k``, ``bias_v``) to every sequence, ``add_zero_attn`` a zero key and
    value after that; masks cover the given keys only (the added ones are never masked).

    >>> import lightgrad as lg
    >>> mha = MultiheadAttention(4, 2, batch_first=True, kdim=3, vdim=2)
    >>> [k for k in mha.state_dict()]  # doctest: +NORMALIZE_WHITESPACE
    ['q_proj_weight', 'k_proj_weight', 'v_proj_weight', 'in_proj_bias', 'out_proj.weight',
     'out_proj.bias']
    >>> mha(lg.randn(2, 3, 4), lg.randn(2, 5, 3), lg.randn(2, 5, 2))[0].shape
    (2, 3, 4)
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False,
                 kdim: int | None = None, vdim: int | None = None, batch_first: bool = False,
                 device: Any = None, dtype: Any = None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"embed_dim and num_heads must be greater than 0, got "
                             f"embed_dim={embed_dim} and num_heads={num_heads} instead")
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads "
                             f"({num_heads})")
        kw = {"device": device, "dtype": dtype}
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads, self.dropout, self.batch_first = num_heads, dropout, batch_first
        self.head_dim = embed_dim // num_heads
        if not self._qkv_same_embed_dim:
            self.q_proj_weight = Parameter(empty(embed_dim, embed_dim, **kw))
            self.k_proj_weight = Parameter(empty(embed_dim, self.kdim, **kw))
            self.v_proj_weight = Parameter(empty(embed_dim, self.vdim, **kw))
            self.register_parameter("in_proj_weight", None)
        else:
            self.in_proj_weight = Parameter(empty(3 * embed_dim, embed_dim, **kw))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(empty(3 * embed_dim, **kw))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias, **kw)
        if add_bias_kv:  # one learned key and value appended to every sequence
            self.bias_k = Parameter(empty(1, 1, embed_dim, **kw))
            self.bias_v = Parameter(empty(1, 1, embed_dim, **kw))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
            init.xavier_normal_(self.bias_v)

    def _projections(self) -> tuple:
        e = self.embed_dim
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            ws = (w[:e], w[e:2 * e], w[2 * e:])
        else:
            ws = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        b = self.in_proj_bias
        bs = (None, None, None) if b is None else (b[:e], b[e:2 * e], b[2 * e:])
        return ws, bs

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Tensor | None = None, need_weights: bool = True,
                attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        for name, t in (("query", query), ("key", key), ("value", value)):
            if not isinstance(t, Tensor):
                raise TypeError(f"MultiheadAttention: {name} must be a Tensor, got "
                                f"{type(t).__name__}")
        batched = query.ndim == 3
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise RuntimeError(f"MultiheadAttention: query, key and value must all be 3-D "
                               f"(batched) or 2-D (unbatched), got shapes {tuple(query.shape)}, "
                               f"{tuple(key.shape)}, {tuple(value.shape)}")
        if not batched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        n, tgt_len, e = query.shape
        src_len = key.shape[1]
        if e != self.embed_dim:
            raise RuntimeError(f"MultiheadAttention: expected query embedding dim "
                               f"{self.embed_dim}, got {e}")
        if key.shape[:2] != value.shape[:2] or key.shape[0] != n:
            raise RuntimeError(f"MultiheadAttention: key shape {tuple(key.shape)} does not "
                               f"match value shape {tuple(value.shape)} or the batch size {n}")
        (wq, wk, wv), (bq, bk, bv) = self._projections()
        h, d = self.num_heads, self.head_dim
        q = F.linear(query, wq, bq).reshape(n, tgt_len, h, d).transpose(1, 2)
        k, v = F.linear(key, wk, bk), F.linear(value, wv, bv)
        extra = 0  # key positions added after the given ones (bias_k/v, a zero key)
        if self.bias_k is not None:
            k = cat([k, self.bias_k.expand(n, 1, e)], 1)
            v = cat([v, self.bias_v.expand(n, 1, e)], 1)
            extra += 1
        k = k.reshape(n, src_len + extra, h, d).transpose(1, 2)
        v = v.reshape(n, src_len + extra, h, d).transpose(1, 2)
        if self.add_zero_attn:
            k = cat([k, zeros(n, h, 1, d, dtype=k.dtype, device=k.device)], 2)
            v = cat([v, zeros(n, h, 1, d, dtype=v.dtype, device=v.device)], 2)
            extra += 1
        scores = (q * (1.0 / math.sqrt(d))).matmul(k.mT)  # (N, H, L, S)
        if attn_mask is None and is_causal:
            allowed = ones(tgt_len, src_len, dtype=dtypes.bool_, device=query.device).tril()
            attn_mask = ~allowed
        if attn_mask is not None:
            if attn_mask.ndim == 3:
                if tuple(attn_mask.shape) != (n * h, tgt_len, src_len):
                    raise RuntimeError(f"MultiheadAttention: 3-D attn_mask must have shape "
                                       f"{(n * h, tgt_len, src_len)}, got "
                                       f"{tuple(attn_mask.shape)}")
                attn_mask = attn_mask.reshape(n, h, tgt_len, src_len)
            elif tuple(attn_mask.shape) != (tgt_len, src_len):
                raise RuntimeError(f"MultiheadAttention: 2-D attn_mask must have shape "
                                   f"{(tgt_len, src_len)}, got {tuple(attn_mask.shape)}")
            scores = _apply_mask(scores, _pad_keys(attn_mask, extra))
        if key_padding_mask is not None:
            if tuple(key_padding_mask.shape) != (n, src_len):
                raise RuntimeError(f"MultiheadAttention: key_padding_mask must have shape "
                                   f"{(n, src_len)}, got {tuple(key_padding_mask.shape)}")
            scores = _apply_mask(scores, _pad_keys(key_padding_mask, extra).reshape(
                n, 1, 1, src_len + extra))
        weights = scores.softmax(-1)
        weights = F.dropout(weights, self.dropout, self.training)
        out = weights.matmul(v).transpose(1, 2).reshape(n, tgt_len, e)
        out = self.out_proj(out)
        if not batched:
            out = out.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(1)
        if not batched:
            weights = weights.squeeze(0)
        return out, weights

    def extra_repr(self) -> str:
        return ""
