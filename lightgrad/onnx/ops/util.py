"""Helpers the op families share: NumPy views of values, int lists, dtype checks."""
from __future__ import annotations

from typing import Any

import numpy as np

from ... import dtypes
from ...tensor import Tensor
from ..values import to_numpy


def npy(v: Any) -> Any:
    """The NumPy array of a tensor value (None stays None)."""
    return to_numpy(v)


def ints(v: Any) -> list[int] | None:
    """A list of Python ints from a 1-D (or scalar) int tensor value, None for None."""
    if v is None:
        return None
    return [int(x) for x in np.asarray(to_numpy(v)).reshape(-1)]


def scalar(v: Any, default: Any = None) -> Any:
    if v is None:
        return default
    a = np.asarray(to_numpy(v)).reshape(-1)
    if a.size == 0:
        return default
    return a[0].item()


def is_float(v: Any) -> bool:
    if isinstance(v, Tensor):
        return v.dtype.is_floating_point
    return np.asarray(v).dtype.kind == "f"


def lg_float(v: Any) -> bool:
    """A floating-point lightgrad Tensor (the differentiable path)."""
    return isinstance(v, Tensor) and v.dtype.is_floating_point


def np_dtype(v: Any) -> np.dtype:
    return v.dtype.np if isinstance(v, Tensor) else np.asarray(v).dtype


def cast_like(t: Tensor, np_dt: np.dtype) -> Tensor:
    return t.to(dtypes.from_numpy_dtype(np.dtype(np_dt)))


def spatial_axes(x: Any) -> tuple:
    """The axes after (N, C)."""
    return tuple(range(2, len(x.shape)))


def axis(a: int, ndim: int) -> int:
    if not -max(ndim, 1) <= a < max(ndim, 1):
        raise ValueError(f"axis {a} is out of range for rank {ndim}")
    return a + ndim if a < 0 else a


def check_alloc(op: str, shape: Any, itemsize: int = 8) -> None:
    """Refuse to build a result larger than this machine's memory (a clear error instead
    of the kernel killing the process)."""
    from ..load import _memory_bytes
    n = 1
    for d in shape:
        if d < 0:
            raise ValueError(f"{op}: negative dimension in {list(shape)}")
        n *= int(d)
    if n * itemsize > _memory_bytes():
        raise MemoryError(f"{op}: a result of shape {list(shape)} needs {n * itemsize} bytes, "
                          "more than this machine's memory")
