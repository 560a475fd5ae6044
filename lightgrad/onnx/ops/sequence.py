"""Sequence and optional values: a sequence is a Python list of tensors, an empty optional
is None.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .control import stack
from .movement import concat, split
from .registry import op
from .util import axis as norm_axis
from .util import ints, npy, scalar


@op("SequenceConstruct")
def sequence_construct(ctx: Any, *xs: Any) -> Any:
    return list(xs)


@op("SequenceEmpty")
def sequence_empty(ctx: Any, *, dtype: int | None = None) -> Any:
    return []


def _pos(seq: list, pos: Any, insert: bool = False) -> int:
    p = scalar(pos, len(seq) if insert else -1)
    n = len(seq) + (1 if insert else 0)
    p = int(p) + (n if insert and p < 0 else len(seq) if p < 0 else 0)
    if not 0 <= p <= len(seq) - (0 if insert else 1):
        raise IndexError(f"sequence position {pos} is out of range for length {len(seq)}")
    return p


@op("SequenceInsert")
def sequence_insert(ctx: Any, seq: list, x: Any, pos: Any = None) -> Any:
    out = list(seq)
    out.insert(_pos(seq, pos, insert=True) if pos is not None else len(seq), x)
    return out


@op("SequenceAt")
def sequence_at(ctx: Any, seq: list, pos: Any) -> Any:
    return seq[_pos(seq, pos)]


@op("SequenceErase")
def sequence_erase(ctx: Any, seq: list, pos: Any = None) -> Any:
    out = list(seq)
    del out[_pos(seq, pos) if pos is not None else -1]
    return out


@op("SequenceLength")
def sequence_length(ctx: Any, seq: list) -> Any:
    return ctx.value(np.array(len(seq), np.int64))


@op("SplitToSequence")
def split_to_sequence(ctx: Any, x: Any, split_in: Any = None, *, axis: int = 0,
                      keepdims: int = 1) -> Any:
    ax = norm_axis(axis, len(x.shape))
    n = x.shape[ax]
    if split_in is None:
        parts = [x[(slice(None),) * ax + (i,)] for i in range(n)] if not keepdims else \
            list(_split(ctx, x, [1] * n, ax))
        return parts
    s = ints(split_in)
    if np.ndim(npy(split_in)) == 0:
        size = s[0]
        s = [size] * (n // size) + ([n % size] if n % size else [])
    return list(_split(ctx, x, s, ax))


def _split(ctx: Any, x: Any, sizes: list, ax: int) -> tuple:
    saved = ctx.n_outputs
    ctx.n_outputs = len(sizes)
    try:
        out = split(ctx, x, None, axis=ax, split=sizes)
    finally:
        ctx.n_outputs = saved
    return out


@op("ConcatFromSequence")
def concat_from_sequence(ctx: Any, seq: list, *, axis: int, new_axis: int = 0) -> Any:
    if new_axis:
        nd = len(seq[0].shape) + 1
        return stack(ctx, seq, norm_axis(axis, nd))
    return concat(ctx, *seq, axis=axis)


@op("SequenceMap")
def sequence_map(ctx: Any, seq: list, *extra: Any, body: Any) -> Any:
    n = len(seq)
    n_out = ctx.n_outputs
    outs: list[list] = [[] for _ in range(n_out)]
    for i in range(n):
        args = [seq[i]] + [e[i] if isinstance(e, list) else e for e in extra]
        res = ctx.run_graph(body, args)
        for lst, v in zip(outs, res):
            lst.append(v)
    return tuple(outs) if n_out > 1 else outs[0]


@op("Optional")
def optional(ctx: Any, x: Any = None, *, type: Any = None) -> Any:
    return x


@op("OptionalHasElement")
def optional_has_element(ctx: Any, x: Any = None) -> Any:
    return ctx.value(np.array(x is not None))


@op("OptionalGetElement")
def optional_get_element(ctx: Any, x: Any) -> Any:
    if x is None:
        raise ValueError("OptionalGetElement: the optional is empty")
    return x


