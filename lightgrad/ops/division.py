"""Integer-style division: ``floor_divide`` (``//``), ``remainder`` (``%``) and ``fmod``.

Built from existing ops. ``remainder`` has the sign of the divisor (Python's ``%``),
``fmod`` the sign of the dividend (C's ``fmod``). Integer operands divide in float64 (exact
below 2**53) and the quotient is cast back. Gradients follow PyTorch: ``remainder`` and
``fmod`` get 1 w.r.t. the dividend and ``-floor(a / b)`` / ``-trunc(a / b)`` w.r.t. the
divisor; ``floor_divide`` has no gradient (its result never requires grad).

>>> import lightgrad as lg
>>> x = lg.tensor([5, -5])
>>> (x // 3).tolist(), (x % 3).tolist(), lg.fmod(x, 3).tolist()
([1, -2], [2, 1], [2, -2])
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import dtypes
from ..tensor import Tensor
from .common import check_broadcast, check_scalar, describe, same_device


def _operands(op: str, a: Any, b: Any) -> dtypes.DType:
    """Check the operands (a Tensor and a Tensor or a number) and return the result dtype."""
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{op}: expected at least one Tensor, got {type(a).__name__} and "
                        f"{type(b).__name__}")
    for v in (a, b):
        if not isinstance(v, Tensor):
            check_scalar(op, v)
    tensors = [v for v in (a, b) if isinstance(v, Tensor)]
    same_device(op, tensors)
    check_broadcast(op, a, b)
    res = dtypes.result_type(a, b)
    if res is dtypes.bool_:
        raise TypeError(f"{op}: not supported for bool operands: {describe(a)} and "
                        f"{describe(b)}")
    return res


def _as_float64(v: Any) -> Any:
    return v.to(dtypes.float64) if isinstance(v, Tensor) else float(v)


def _check_nonzero(op: str, b: Any) -> None:
    zero = bool((b == 0).any()) if isinstance(b, Tensor) else b == 0
    if zero:
        raise ZeroDivisionError(f"{op}: integer division by zero")


def _trunc(x: Tensor) -> Tensor:
    return x.sign() * x.abs().floor()


def _quotient(op: str, a: Any, b: Any, rounding: str) -> tuple[Tensor, dtypes.DType]:
    """``floor(a / b)`` or ``trunc(a / b)`` in the result dtype, without a gradient."""
    res = _operands(op, a, b)
    a_ = a.detach() if isinstance(a, Tensor) else a
    b_ = b.detach() if isinstance(b, Tensor) else b
    if res.is_floating_point:
        with np.errstate(divide="ignore", invalid="ignore"):  # IEEE inf/nan, like PyTorch
            q = _to(a_, res) / _to(b_, res)
    else:
        _check_nonzero(op, b_)
        q = _as_float64(a_) / _as_float64(b_)
    q = q.floor() if rounding == "floor" else _trunc(q)
    return (q if q.dtype is res else q.to(res)), res


def _to(v: Any, dtype: dtypes.DType) -> Any:
    return v.to(dtype) if isinstance(v, Tensor) and v.dtype is not dtype else v


def _residue(op: str, a: Any, b: Any, rounding: str) -> Tensor:
    q, res = _quotient(op, a, b, rounding)
    out = _to(a, res) - q * _to(b, res)
    return out if isinstance(out, Tensor) and out.dtype is res else out.to(res)


def floor_divide(input: Any, other: Any) -> Tensor:
    """``floor(input / other)`` elementwise (Python's ``//``); ints stay ints.

    >>> import lightgrad as lg
    >>> lg.floor_divide(lg.tensor([7.0, -7.0]), 2).tolist()
    [3.0, -4.0]
    """
    return _quotient("floor_divide", input, other, "floor")[0]


def remainder(input: Any, other: Any) -> Tensor:
    """``input - floor(input / other) * other``: the sign of ``other`` (Python's ``%``).

    >>> import lightgrad as lg
    >>> lg.remainder(lg.tensor([5, -5]), -3).tolist()
    [-1, -2]
    """
    return _residue("remainder", input, other, "floor")


def fmod(input: Any, other: Any) -> Tensor:
    """``input - trunc(input / other) * other``: the sign of ``input`` (C's ``fmod``).

    >>> import lightgrad as lg
    >>> lg.fmod(lg.tensor([5.5, -5.5]), 2).tolist()
    [1.5, -1.5]
    """
    return _residue("fmod", input, other, "trunc")
