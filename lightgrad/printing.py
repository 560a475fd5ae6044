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
    """PyTorch's rules: the nonzero finite values pick integer ("3."), scientific or fixed
    form; every value is right-aligned to the widest of them."""
    nonzero = values[np.isfinite(values) & (values != 0)].astype(np.float64)
    if nonzero.size == 0:
        return lambda v: _special(v) or f"{v:.0f}."
    big, small = np.abs(nonzero).max(), np.abs(nonzero).min()
    if big / small > 1e3 or big > 1e8 or small < 1e-4:
        form = "{:.4e}"
    elif np.all(nonzero == np.ceil(nonzero)):
        form = "{:.0f}."
    else:
        form = "{:.4f}"
    # the longest text comes from the largest or smallest magnitude of either sign
    extremes = []
    for side in (nonzero[nonzero > 0], nonzero[nonzero < 0]):
        if side.size:
            extremes += [side.max(), side.min()]
    width = max(len(form.format(v)) for v in extremes)
    return lambda v: (_special(v) or form.format(v)).rjust(width)


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
    # an empty tensor has no values to tell int64/bool apart, so only the default float is
    # left implicit (like PyTorch)
    if dtype.name not in _IMPLICIT or (arr.size == 0 and not dtype.is_floating_point) or \
            (dtype.name == "float32" and dtypes.get_default_dtype() is not dtypes.float32):
        suffix.append(f"dtype=lightgrad.{dtype.name}")
    if t.device.type != "cpu":
        suffix.append(f"device='{t.device}'")
    if t.grad_fn is not None:
        suffix.append(f"grad_fn={t.grad_fn!r}")
    elif t.requires_grad:
        suffix.append("requires_grad=True")
    prefix = "tensor("
    # NumPy keeps room for each enclosing "]" on a row; PyTorch fills rows to 80 characters
    width = 80 + max(arr.ndim - 1, 0)
    if dtype.is_floating_point:
        shown = arr.astype(np.float64)
        fmt = _float_formatter(shown)
        body = np.array2string(shown, separator=", ", prefix=prefix, threshold=1000,
                               edgeitems=3, formatter={"float_kind": fmt}, max_line_width=width)
    else:
        body = np.array2string(arr, separator=", ", prefix=prefix, threshold=1000,
                               edgeitems=3, max_line_width=width)
    extra = "".join(", " + s for s in suffix)
    return f"{prefix}{body}{extra})"
