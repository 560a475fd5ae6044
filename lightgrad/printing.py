"""``repr`` of a tensor in PyTorch's style.

>>> import lightgrad as lg
>>> lg.tensor([1.0, 2.5], requires_grad=True)
tensor([1.0000, 2.5000], requires_grad=True)
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import dtypes

_IMPLICIT = ("float32", "int64", "bool")


def _float_formatter(values: np.ndarray) -> Any:
    finite = values[np.isfinite(values)].astype(np.float64)
    if finite.size == 0:
        return lambda v: _special(v) or f"{v:.4f}"
    big, small = np.abs(finite).max(), np.abs(finite).min()
    if np.all(finite == np.round(finite)) and big < 1e8:
        width = max(len(f"{v:.0f}") for v in (finite.max(), finite.min())) + 1
        return lambda v: _special(v) or f"{v:.0f}.".rjust(width)
    if big >= 1e8 or (small < 1e-4 and small != 0) or (small and big / small > 1e3):
        return lambda v: _special(v) or f"{v:.4e}"
    return lambda v: _special(v) or f"{v:.4f}"


def _special(v: float) -> str:
    if np.isnan(v):
        return "nan"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return ""


def format_tensor(t: Any) -> str:
    """The text ``repr(t)`` shows."""
    arr = np.asarray(t.device.backend.to_numpy(t._data))
    dtype = t.dtype
    suffix = []
    if arr.size == 0 and arr.shape != (0,):
        suffix.append(f"size={tuple(arr.shape)}")
    if dtype.name not in _IMPLICIT or (dtype.name == "float32" and
                                       dtypes.get_default_dtype() is not dtypes.float32):
        suffix.append(f"dtype=lightgrad.{dtype.name}")
    if t.device.type != "cpu":
        suffix.append(f"device='{t.device}'")
    if t.grad_fn is not None:
        suffix.append(f"grad_fn={t.grad_fn!r}")
    elif t.requires_grad:
        suffix.append("requires_grad=True")
    prefix = "tensor("
    if dtype.is_floating_point:
        shown = arr.astype(np.float64)
        fmt = _float_formatter(shown)
        body = np.array2string(shown, separator=", ", prefix=prefix, threshold=1000,
                               edgeitems=3, formatter={"float_kind": fmt}, max_line_width=80)
    else:
        body = np.array2string(arr, separator=", ", prefix=prefix, threshold=1000,
                               edgeitems=3, max_line_width=80)
    extra = "".join(", " + s for s in suffix)
    return f"{prefix}{body}{extra})"
