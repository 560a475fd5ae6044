"""PyTorch's strict matrix products: ``mm``, ``bmm``, ``mv``, ``outer``, ``addmm``, ``baddbmm``.

Unlike ``matmul`` they check the exact ranks (``mm`` 2-D, ``bmm`` 3-D with equal batch,
``mv`` 2-D @ 1-D) and then build on ``Tensor.matmul``, so autograd comes for free.

>>> import lightgrad as lg
>>> lg.mm(lg.ones(2, 3), lg.ones(3, 4)).shape
(2, 4)
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import dtypes
from ..tensor import Tensor
from .common import describe, same_device


def _tensors(op: str, *ts: Any) -> None:
    for t in ts:
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: expected Tensors, got {type(t).__name__}")
    same_device(op, ts)


def _same_dtype(op: str, a: Tensor, b: Tensor) -> None:
    if a.dtype is not b.dtype:
        raise RuntimeError(f"{op}: expected both operands to have the same dtype, got "
                           f"{describe(a)} and {describe(b)}")


def _ranks(op: str, a: Tensor, b: Tensor, ra: int, rb: int) -> None:
    _tensors(op, a, b)
    if a.ndim != ra or b.ndim != rb:
        raise RuntimeError(f"{op}: expected a {ra}-D and a {rb}-D tensor, got shapes "
                           f"{tuple(a.shape)} and {tuple(b.shape)}")
    _same_dtype(op, a, b)


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    """Product of two matrices: (n, m) @ (m, p) -> (n, p).

    >>> import lightgrad as lg
    >>> lg.mm(lg.ones(2, 3), lg.ones(3, 1)).tolist()
    [[3.0], [3.0]]
    """
    _ranks("mm", input, mat2, 2, 2)
    if input.shape[1] != mat2.shape[0]:
        raise RuntimeError(f"mm: shapes {tuple(input.shape)} and {tuple(mat2.shape)} cannot "
                           f"be multiplied ({input.shape[1]} != {mat2.shape[0]})")
    return input.matmul(mat2)


def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    """Batched product: (b, n, m) @ (b, m, p) -> (b, n, p); no broadcasting.

    >>> import lightgrad as lg
    >>> lg.bmm(lg.ones(4, 2, 3), lg.ones(4, 3, 5)).shape
    (4, 2, 5)
    """
    _ranks("bmm", input, mat2, 3, 3)
    if input.shape[0] != mat2.shape[0]:
        raise RuntimeError(f"bmm: batch sizes differ: shapes {tuple(input.shape)} and "
                           f"{tuple(mat2.shape)}")
    if input.shape[2] != mat2.shape[1]:
        raise RuntimeError(f"bmm: shapes {tuple(input.shape)} and {tuple(mat2.shape)} cannot "
                           f"be multiplied ({input.shape[2]} != {mat2.shape[1]})")
    return input.matmul(mat2)


def mv(input: Tensor, vec: Tensor) -> Tensor:
    """Matrix-vector product: (n, m) @ (m,) -> (n,).

    >>> import lightgrad as lg
    >>> lg.mv(lg.ones(2, 3), lg.ones(3)).tolist()
    [3.0, 3.0]
    """
    _ranks("mv", input, vec, 2, 1)
    if input.shape[1] != vec.shape[0]:
        raise RuntimeError(f"mv: shapes {tuple(input.shape)} and {tuple(vec.shape)} cannot "
                           f"be multiplied ({input.shape[1]} != {vec.shape[0]})")
    return input.matmul(vec)


def outer(input: Tensor, vec2: Tensor) -> Tensor:
    """Outer product of two vectors: (n,) x (m,) -> (n, m).

    >>> import lightgrad as lg
    >>> lg.outer(lg.tensor([1., 2.]), lg.tensor([1., 10.])).tolist()
    [[1.0, 10.0], [2.0, 20.0]]
    """
    _tensors("outer", input, vec2)
    if input.ndim != 1 or vec2.ndim != 1:
        raise RuntimeError(f"outer: expected two 1-D tensors, got shapes "
                           f"{tuple(input.shape)} and {tuple(vec2.shape)}")
    return input.unsqueeze(1) * vec2.unsqueeze(0)


def _scaled_sum(op: str, input: Tensor, product: Tensor, beta: Any, alpha: Any) -> Tensor:
    """``beta * input + alpha * product``; ``input`` is ignored (even NaN) when beta is 0."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected input to be a Tensor, got {type(input).__name__}")
    same_device(op, (input, product))
    try:
        fits = np.broadcast_shapes(input.shape, product.shape) == tuple(product.shape)
    except ValueError:
        fits = False
    if not fits:
        raise RuntimeError(f"{op}: input of shape {tuple(input.shape)} does not broadcast to "
                           f"the product's shape {tuple(product.shape)}")
    out = product if alpha == 1 else product * alpha
    if beta == 0:  # like PyTorch: input gets a zero gradient but never leaks NaN/inf
        if not input.requires_grad:
            return out
        return out + input.masked_fill(input.new_ones(input.shape, dtype=dtypes.bool_), 0)
    return out + (input if beta == 1 else input * beta)


def addmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta: Any = 1,
          alpha: Any = 1) -> Tensor:
    """``beta * input + alpha * (mat1 @ mat2)`` with ``input`` broadcast to (n, p).

    >>> import lightgrad as lg
    >>> lg.addmm(lg.ones(2), lg.ones(1, 3), lg.ones(3, 2), beta=2).tolist()
    [[5.0, 5.0]]
    """
    return _scaled_sum("addmm", input, mm(mat1, mat2), beta, alpha)


def baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta: Any = 1,
            alpha: Any = 1) -> Tensor:
    """``beta * input + alpha * bmm(batch1, batch2)`` with ``input`` broadcast to (b, n, p).

    >>> import lightgrad as lg
    >>> lg.baddbmm(lg.zeros(1), lg.ones(2, 1, 3), lg.ones(2, 3, 1), alpha=0.5).tolist()
    [[[1.5]], [[1.5]]]
    """
    return _scaled_sum("baddbmm", input, bmm(batch1, batch2), beta, alpha)
