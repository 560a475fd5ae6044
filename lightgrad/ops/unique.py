"""``unique`` and ``unique_consecutive``: the distinct elements (or slices) of a tensor.

The output's size depends on the values, so both run on the host: a CUDA tensor is read
back with ``to_numpy``, and the results are put back on its device. Neither is
differentiable (the outputs don't require grad), like PyTorch's.

>>> import lightgrad as lg
>>> unique(lg.tensor([3, 1, 3, 2]), return_inverse=True, return_counts=True)
(tensor([1, 2, 3]), tensor([2, 0, 2, 1]), tensor([1, 1, 2]))
>>> unique_consecutive(lg.tensor([1, 1, 2, 1]))
tensor([1, 2, 1])
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor
from .common import norm_dim, wrap


def _rows(op: str, input: Tensor, dim: int | None) -> tuple[np.ndarray, int | None]:
    """The host values as (n, m) rows to compare (one row per element, or per slice along
    ``dim``), and ``dim`` as an axis."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(input).__name__}")
    host = np.asarray(input.device.backend.to_numpy(input.detach()._data))
    if dim is None:
        return host.reshape(-1, 1), None
    if input.ndim == 0:
        raise IndexError(f"{op}: dim {dim} was given but the tensor is 0-d (no dims)")
    axis = norm_dim(op, dim, input.ndim, input.shape)
    if host.size == 0 and any(n == 0 for i, n in enumerate(host.shape) if i != axis):
        raise RuntimeError(f"{op}: the tensor of shape {tuple(input.shape)} has 0-sized dims "
                           f"other than dim {dim}, so there are no slices to compare")
    moved = np.moveaxis(host, axis, 0)
    return moved.reshape(moved.shape[0], -1), axis


def _results(input: Tensor, rows: np.ndarray, axis: int | None, order: np.ndarray,
             return_inverse: bool, return_counts: bool) -> Any:
    """Group equal neighbours of ``rows[order]`` (NaN never equals NaN, as in PyTorch)."""
    picked = rows[order]
    n = len(picked)
    starts = np.ones(n, dtype=bool)
    if n:
        starts[1:] = np.any(picked[1:] != picked[:-1], axis=1)
    first = np.flatnonzero(starts)
    host = np.asarray(input.device.backend.to_numpy(input.detach()._data))
    if axis is None:
        values = picked[first, 0]
    else:
        values = np.moveaxis(np.moveaxis(host, axis, 0)[order[first]], 0, axis)
    out = [_put(np.ascontiguousarray(values), input)]
    if return_inverse:
        group = np.cumsum(starts) - 1
        inverse = np.empty(n, dtype=np.int64)
        inverse[order] = group
        out.append(_put(inverse.reshape(input.shape if axis is None else (n,)), input))
    if return_counts:
        out.append(_put(np.diff(np.append(first, n)).astype(np.int64), input))
    return out[0] if len(out) == 1 else tuple(out)


def _put(array: np.ndarray, like: Tensor) -> Tensor:
    return wrap(like.device.backend.from_numpy(array), like.device)


def unique(input: Tensor, sorted: bool = True, return_inverse: bool = False,
           return_counts: bool = False, dim: int | None = None) -> Any:
    """The distinct elements of ``input`` (flattened), or with ``dim`` its distinct slices
    along ``dim``, in ascending (lexicographic) order; PyTorch's ``torch.unique``.

    Returns the values alone, or a tuple ``(values, inverse, counts)`` of what was asked
    for: ``inverse`` (int64) maps each element (shape of ``input``) or each slice (shape
    ``(input.shape[dim],)``) to its index in ``values``; ``counts`` (int64) how often each
    value occurs. The result is sorted even with ``sorted=False`` (PyTorch leaves that
    order unspecified). Computed on the host (the output's size depends on the values);
    not differentiable.

    >>> import lightgrad as lg
    >>> unique(lg.tensor([[1, 2], [1, 2], [0, 5]]), dim=0, return_counts=True)
    (tensor([[0, 5],
            [1, 2]]), tensor([1, 2]))
    """
    rows, axis = _rows("unique", input, dim)
    if rows.shape[1] == 1:
        order = np.argsort(rows[:, 0], kind="stable")
    else:  # lexicographic: the first column is the primary key
        order = np.lexsort(rows.T[::-1]) if rows.shape[1] else np.arange(len(rows))
    return _results(input, rows, axis, order, return_inverse, return_counts)


def unique_consecutive(input: Tensor, return_inverse: bool = False,
                       return_counts: bool = False, dim: int | None = None) -> Any:
    """Collapse each run of equal neighbouring elements (or slices along ``dim``) to one;
    PyTorch's ``torch.unique_consecutive``. Returns like ``unique``, without sorting.
    Computed on the host; not differentiable.

    >>> import lightgrad as lg
    >>> unique_consecutive(lg.tensor([1, 1, 2, 2, 1]), return_counts=True)
    (tensor([1, 2, 1]), tensor([2, 2, 1]))
    """
    rows, axis = _rows("unique_consecutive", input, dim)
    order = np.arange(len(rows))
    return _results(input, rows, axis, order, return_inverse, return_counts)
