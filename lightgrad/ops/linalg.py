"""Matrix multiplication (batched, with broadcast batch dims).

``Tensor.matmul`` handles 1-D operands by adding and removing a dim, so ``MatMul`` only
sees operands with at least two dims.

>>> import lightgrad as lg
>>> a = lg.ones(2, 3, requires_grad=True)
>>> (a @ lg.ones(3, 4)).sum().backward(); a.grad
tensor([[4., 4., 4.],
        [4., 4., 4.]])
"""
from __future__ import annotations

from typing import Any

from ..autograd import Function
from .common import same_device, unbroadcast, wrap

# PyTorch's C++ scalar-type names, used in its dtype-mismatch messages
TORCH_TYPE_NAMES = {"float64": "Double", "float32": "Float", "float16": "Half",
                    "bfloat16": "BFloat16", "int64": "Long", "int32": "Int", "int16": "Short",
                    "int8": "Char", "uint8": "Byte", "bool": "Bool"}


def torch_type_name(dtype: Any) -> str:
    """PyTorch's name for a dtype in error messages (``float64`` -> ``Double``).

    >>> import lightgrad as lg
    >>> torch_type_name(lg.float64), torch_type_name(lg.int64)
    ('Double', 'Long')
    """
    name = getattr(dtype, "name", str(dtype))
    return TORCH_TYPE_NAMES.get(name, name)


def check_same_dtype(a: Any, b: Any, what: str = "mat1 and mat2") -> None:
    """A RuntimeError, worded as PyTorch's, when two matmul operands differ in dtype
    (PyTorch does not promote in ``matmul``, ``mm``, ``bmm`` or ``linear``)."""
    if a.dtype is not b.dtype and a.dtype != b.dtype:
        raise RuntimeError(f"{what} must have the same dtype, but got "
                           f"{torch_type_name(a.dtype)} and {torch_type_name(b.dtype)}")


class MatMul(Function):
    """``a @ b`` for operands of the same dtype (mixed dtypes raise, as in PyTorch)."""

    @staticmethod
    def forward(ctx, a, b):
        x, y, dev = a._data, b._data, a.device
        if x.dtype != y.dtype:
            check_same_dtype(a, b)
        if b.device is not dev:
            same_device("matmul", (a, b))
        ctx.save_for_backward(a, b)
        return wrap(dev.backend.matmul(x, y), dev)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        ga = unbroadcast(g @ b.mT, a.shape) if ctx.needs_input_grad[0] else None
        gb = None
        if ctx.needs_input_grad[1]:
            if b.ndim == 2 and a.ndim > 2:
                # a linear layer on (..., K) inputs: one (K, rows) @ (rows, N) product
                gb = a.reshape(-1, a.shape[-1]).mT @ g.reshape(-1, g.shape[-1])
            else:
                gb = unbroadcast(a.mT @ g, b.shape)
        return ga, gb


class Linear(Function):
    """``x @ weight.T + bias`` as one recorded op: one BLAS product (the transposed weight
    is a view, BLAS reads it as is) with the bias added in place, and a backward of two
    products and a sum, where ``x.matmul(weight.t()) + bias`` records three ops (a
    transpose, a product, a broadcast add) and reduces the bias gradient separately.
    ``x`` has at least 2 dims; ``bias`` is None or broadcasts to the output's last dim.
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        buf, dev = x._data, x.device
        if weight._data.dtype != buf.dtype:
            check_same_dtype(x, weight)
        if weight.device is not dev or (bias is not None and bias.device is not dev):
            same_device("linear", [x, weight] + ([bias] if bias is not None else []))
        be = dev.backend
        out = be.matmul(buf, be.permute(weight._data, (1, 0)))
        if bias is not None:
            if bias._data.dtype != buf.dtype:
                check_same_dtype(x, bias, "input and bias")
            be.binary_inplace("add", out, bias._data)  # out is a new buffer: add in place
        if ctx._record:
            ctx.save_for_backward(x, weight)
            ctx.bias_shape = None if bias is None else tuple(bias.shape)
        return wrap(out, dev)

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        gx = g @ weight if need_x else None
        rows = g.reshape(-1, g.shape[-1]) if (need_w or need_b) else None
        gw = rows.mT @ x.reshape(-1, x.shape[-1]) if need_w else None
        gb = None
        if need_b and ctx.bias_shape is not None:
            gb = rows.sum(dim=0)
            gb = gb.sum() if ctx.bias_shape == () else gb
        return gx, gw, gb
