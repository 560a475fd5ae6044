"""Helpers every op family shares: wrapping buffers, promotion, dims and un-broadcasting."""
from __future__ import annotations

from numbers import Number
from typing import Any, Sequence

import numpy as np

from .. import dtypes
from ..tensor import Tensor

wrap = Tensor._from_buffer


def shape_str(t: Any) -> str:
    return str(tuple(t.shape)) if isinstance(t, Tensor) else type(t).__name__


def describe(t: Any) -> str:
    """'(2, 3) float32 on cpu' for error messages; the type name for non-tensors."""
    if isinstance(t, Tensor):
        return f"{tuple(t.shape)} {t.dtype.name} on {t.device}"
    return f"{type(t).__name__} {t!r}"


def check_scalar(op: str, value: Any) -> None:
    if not isinstance(value, (Number, np.bool_)):
        raise TypeError(f"{op}: expected a Tensor or a Python number, got "
                        f"{type(value).__name__}")


def same_device(op: str, tensors: Sequence[Tensor]) -> Any:
    dev = tensors[0].device
    for t in tensors[1:]:
        if t.device is not dev:
            shown = ", ".join(describe(x) for x in tensors)
            raise RuntimeError(f"{op}: expected all tensors on the same device, got {shown}")
    return dev


def binary_operands(op: str, a: Any, b: Any) -> tuple[Any, Any, Any, dtypes.DType]:
    """Buffers (or scalars) of ``a`` and ``b`` promoted to their common dtype, the device,
    and that dtype."""
    if isinstance(a, Tensor):
        dev = a.device
        if isinstance(b, Tensor):
            if b.device is not dev:
                same_device(op, (a, b))
            if a._data.dtype == b._data.dtype:
                return a._data, b._data, dev, a.dtype
            res = dtypes.result_type(a, b)
            return _cast(a, res), _cast(b, res), dev, res
        check_scalar(op, b)
        res = dtypes.result_type(a, b)
        return _cast(a, res), _scalar(b, res), dev, res
    check_scalar(op, a)
    res = dtypes.result_type(a, b)
    return _scalar(a, res), _cast(b, res), b.device, res


def check_broadcast(op: str, *operands: Any) -> None:
    """A clear RuntimeError when the shapes of the tensor operands don't broadcast."""
    shapes = [t.shape for t in operands if isinstance(t, Tensor)]
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        shown = " and ".join(str(tuple(s)) for s in shapes)
        raise RuntimeError(f"{op}: shapes {shown} cannot be broadcast together") from None


def _cast(t: Tensor, dtype: dtypes.DType) -> Any:
    buf = t._data
    return buf if buf.dtype == dtype.np else t.device.backend.astype(buf, dtype.np)


def _scalar(value: Any, dtype: dtypes.DType) -> Any:
    """A Python number for an op computing in ``dtype``. bfloat16 (from ml_dtypes) takes no
    part in NumPy's weak-scalar promotion (bfloat16 + 0.5 would be float32), so the number
    gets that dtype first."""
    return dtype.np.type(value) if dtype is dtypes.bfloat16 else value


def float_input(x: Tensor) -> Any:
    """The buffer of ``x``, converted to the default float dtype if it is not floating."""
    buf = x._data
    if buf.dtype in dtypes.FLOAT_NUMPY_DTYPES:
        return buf
    return x.device.backend.astype(buf, dtypes.get_default_dtype().np)


def norm_dim(op: str, dim: int, ndim: int, shape: Any = None) -> int:
    """A dim in [-ndim, ndim) as a non-negative axis; a clear IndexError otherwise."""
    n = ndim if ndim > 0 else 1
    if type(dim) is int and -n <= dim < n:  # the common case, checked first
        return dim % n
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}")
    n = max(ndim, 1)
    if not -n <= dim < n:
        where = f" of shape {tuple(shape)}" if shape is not None else ""
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor{where} with {ndim} "
                         f"dims (expected a dim in [{-n}, {n - 1}])")
    return int(dim) % n


def norm_dims(op: str, dim: Any, ndim: int, shape: Any = None) -> tuple[int, ...]:
    """``dim`` (None, an int or a sequence) as a sorted tuple of axes; None means all."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, (list, tuple)):
        axes = tuple(sorted({norm_dim(op, d, ndim, shape) for d in dim}))
        if len(axes) != len(dim):
            raise ValueError(f"{op}: dim {tuple(dim)} names a dimension more than once")
        return axes
    return (norm_dim(op, dim, ndim, shape),) if ndim else ()


def kept_shape(shape: Sequence[int], axes: Sequence[int]) -> tuple[int, ...]:
    """``shape`` with every axis in ``axes`` set to 1 (the keepdim shape of a reduction)."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def unbroadcast(grad: Tensor, shape: tuple) -> Tensor:
    """Sum ``grad`` down to ``shape``: the backward of NumPy broadcasting."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and grad.shape[i + lead] != 1)
    if axes:
        grad = grad.sum(dim=axes, keepdim=True)
    return grad.reshape(shape)
