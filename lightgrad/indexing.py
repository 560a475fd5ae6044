"""Turning a Python index (``x[1:, None, idx, ...]``) into the backend's index form.

Ints, slices, None and Ellipsis are basic indexing (a view). Integer or bool tensors,
lists and NumPy arrays are advanced indexing (a copy); their backward adds gradients at
repeated positions.

>>> import lightgrad as lg
>>> x = lg.arange(6).reshape(2, 3)
>>> x[1, [0, 2]]
tensor([3, 5])
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .tensor import Tensor


def _advanced(x: Tensor, item: Any) -> Any:
    if isinstance(item, Tensor):
        if item.device is not x.device:
            raise IndexError(f"index: index tensor is on {item.device} but the indexed tensor "
                             f"is on {x.device}")
        if item.dtype.is_floating_point:
            raise IndexError(f"index: tensors used as indices must be integer or bool, got "
                             f"{item.dtype.name}")
        buf = item._data
        return buf if buf.dtype in (np.bool_, np.int64) else buf.astype(np.int64)
    arr = np.asarray(item)
    if arr.dtype.kind not in "iub" or (arr.size == 0 and arr.dtype.kind == "f"):
        if arr.size == 0:
            arr = arr.astype(np.int64)
        else:
            raise IndexError(f"index: lists used as indices must hold ints or bools, got "
                             f"{arr.dtype}")
    if arr.dtype.kind in "iu":
        arr = arr.astype(np.int64)
    return x.device.backend.from_numpy(arr)


def convert_index(x: Tensor, index: Any) -> tuple[tuple, bool]:
    """(backend index tuple, whether it is basic indexing) for ``x[index]``."""
    if type(index) is slice and x._data.ndim and (index.step is None or index.step > 0):
        return (index,), True
    items = index if isinstance(index, tuple) else (index,)
    out = []
    basic = True
    for item in items:
        if item is None or item is Ellipsis or isinstance(item, slice):
            if isinstance(item, slice) and item.step is not None and item.step <= 0:
                raise ValueError(f"index: slice step must be positive, got {item.step}")
            out.append(item)
        elif isinstance(item, (bool, np.bool_)):
            out.append(np.asarray(item))
            basic = False
        elif isinstance(item, (int, np.integer)):
            out.append(int(item))
        elif isinstance(item, Tensor) or isinstance(item, (list, np.ndarray)):
            out.append(_advanced(x, item))
            basic = False
        else:
            raise IndexError(f"index: unsupported index of type {type(item).__name__}; use "
                             "ints, slices, None, ..., or integer/bool tensors")
    idx = tuple(out)
    _validate(x, idx)
    return idx, basic


def _validate(x: Tensor, idx: tuple) -> None:
    """Raise a clear IndexError for indices that don't fit ``x``'s shape."""
    ellipses = sum(1 for i in idx if i is Ellipsis)
    if ellipses > 1:
        raise IndexError("index: an index can only have a single ellipsis ('...')")
    used = sum(getattr(i, "ndim", 1) if getattr(i, "dtype", None) == np.bool_ else 1
               for i in idx if i is not None and i is not Ellipsis)
    if used > x.ndim:
        raise IndexError(f"index: too many indices for a tensor of shape {x.shape}: "
                         f"{used} given, {x.ndim} dims")
    dim = 0
    for i in idx:
        if i is None:
            continue
        if i is Ellipsis:
            dim += x.ndim - used
            continue
        if isinstance(i, int):
            size = x.shape[dim]
            if not -size <= i < size:
                raise IndexError(f"index: index {i} is out of range for dim {dim} with size "
                                 f"{size} (tensor of shape {x.shape})")
        elif hasattr(i, "dtype") and i.dtype == np.bool_:
            if i.ndim and i.shape != x.shape[dim:dim + i.ndim]:
                raise IndexError(f"index: bool mask of shape {i.shape} does not match dims "
                                 f"{dim}.. of a tensor of shape {x.shape}")
            dim += i.ndim
            continue
        elif isinstance(i, np.ndarray) and i.size:  # device buffers: checked on the device
            size = x.shape[dim]
            hi, lo = int(i.max()), int(i.min())
            if hi >= size or lo < -size:
                bad = hi if hi >= size else lo
                raise IndexError(f"index: index {bad} is out of range for dim {dim} with "
                                 f"size {size} (tensor of shape {x.shape})")
        dim += 1
