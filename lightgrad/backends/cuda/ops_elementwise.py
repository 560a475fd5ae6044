"""Elementwise primitives, dtype conversion and copies (kernels: elementwise.cu, copy.cu)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..base import BINARY_OPS, UNARY_OPS
from .array import DeviceArray, broadcast_strides, merged_layout
from .backend import FLOATS, suffix
from .runtime import layout

_COMPARE = ("eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor")
_INT_UNARY = ("neg", "abs", "sign", "relu", "floor", "ceil", "round")
_NULL_LAYOUT = layout((1,), (0,))


def _shape_of(*operands: Any) -> tuple:
    return tuple(np.broadcast_shapes(*[o.shape for o in operands
                                       if isinstance(o, DeviceArray)]))


def _number(value: Any) -> float:
    return float(value.item() if hasattr(value, "item") else value)


class ElementwiseOps:
    """Unary/binary/ternary ops, astype, copies and fills."""

    def __init__(self) -> None:
        for op in UNARY_OPS:
            setattr(self, op, self._unary_method(op))
        for op in BINARY_OPS:
            setattr(self, op, self._binary_method(op))

    def _unary_method(self, op: str):
        def method(x: DeviceArray) -> DeviceArray:
            return self.unary(op, x)
        method.__name__ = op
        return method

    def _binary_method(self, op: str):
        def method(a: Any, b: Any) -> DeviceArray:
            return self.binary(op, a, b)
        method.__name__ = op
        return method

    def operand(self, x: Any, shape: tuple) -> tuple:
        """(pointer-or-None, layout, scalar) of a buffer or a number, read at ``shape``."""
        if isinstance(x, DeviceArray):
            return x, x.layout(shape), 0.0
        return None, _NULL_LAYOUT, _number(x)

    def unary(self, op: str, x: DeviceArray) -> DeviceArray:
        sfx = suffix(x.dtype, op)
        if op == "logical_not":
            out = self.empty(x.shape, np.bool_)
            self.launch_elementwise(self.kernel("elementwise", f"logical_not_{sfx}"), x.size,
                                    [x.size, x, x.layout(), out])
            return out
        if sfx not in FLOATS and op not in _INT_UNARY:
            raise TypeError(f"{op}: needs a floating-point input on cuda, got {x.dtype}")
        code = self.enum("elementwise", "UnaryOp", "U_")[op]
        out = self.empty(x.shape, x.dtype)
        self.launch_elementwise(self.kernel("elementwise", f"unary_{sfx}"), x.size,
                                [code, x.size, x, x.layout(), out])
        return out

    def binary(self, op: str, a: Any, b: Any, out: DeviceArray | None = None) -> DeviceArray:
        ref = a if isinstance(a, DeviceArray) else b
        if op == "div" and ref.dtype.kind in "iub":  # true division, as NumPy's
            a, b = (self.astype(v, np.float64) if isinstance(v, DeviceArray) else v
                    for v in (a, b))
            ref = a if isinstance(a, DeviceArray) else b
        for v in (a, b):
            if isinstance(v, DeviceArray) and v.dtype != ref.dtype:
                raise TypeError(f"{op}: operands must share a dtype on cuda, got {a.dtype} "
                                f"and {b.dtype}")
        shape = _shape_of(a, b)
        n = math.prod(shape)
        sfx = suffix(ref.dtype, op)
        pa, la, sa = self.operand(a, shape)
        pb, lb, sb = self.operand(b, shape)
        code = self.enum("elementwise", "BinaryOp", "B_")[op]
        if op in _COMPARE:
            result = self.empty(shape, np.bool_)
            self.launch_elementwise(self.kernel("elementwise", f"compare_{sfx}"), n,
                                    [code, n, pa, la, sa, pb, lb, sb, result])
            return result
        result = out if out is not None else self.empty(shape, ref.dtype)
        self.launch_elementwise(self.kernel("elementwise", f"binary_{sfx}"), n,
                                [code, n, pa, la, sa, pb, lb, sb, result, result.layout()])
        return result

    def binary_inplace(self, op, dst, src) -> None:
        _check_writable(dst)
        if isinstance(src, DeviceArray):
            broadcast_strides(src, dst.shape)  # raises on shapes that don't broadcast
        self.binary(op, dst, src, out=dst)

    def where(self, cond, a, b) -> DeviceArray:
        ref = a if isinstance(a, DeviceArray) else b
        dtype = ref.dtype if isinstance(ref, DeviceArray) else np.result_type(a, b)
        shape = _shape_of(cond, a, b)
        n = math.prod(shape)
        pa, la, sa = self.operand(a, shape)
        pb, lb, sb = self.operand(b, shape)
        out = self.empty(shape, dtype)
        self.launch_elementwise(self.kernel("elementwise", f"where_{suffix(dtype, 'where')}"),
                                n, [n, cond, cond.layout(shape), pa, la, sa, pb, lb, sb, out])
        return out

    def clamp(self, x, low, high) -> DeviceArray:
        out = self.empty(x.shape, x.dtype)
        self.launch_elementwise(
            self.kernel("elementwise", f"clamp_{suffix(x.dtype, 'clamp')}"), x.size,
            [x.size, x, x.layout(), low is not None, 0.0 if low is None else _number(low),
             high is not None, 0.0 if high is None else _number(high), out])
        return out

    def gelu_backward(self, x, grad) -> DeviceArray:
        sfx = suffix(x.dtype, "gelu_backward")
        if sfx not in FLOATS:
            raise TypeError(f"gelu_backward: needs a floating-point input, got {x.dtype}")
        out = self.empty(x.shape, x.dtype)
        self.launch_elementwise(self.kernel("elementwise", f"gelu_backward_{sfx}"), x.size,
                                [x.size, x, x.layout(), grad, grad.layout(x.shape), out])
        return out

    def gelu_and_grad(self, x) -> tuple:
        # two launches: each kernel is one pass over x already
        return self.gelu(x), self.gelu_backward(x, self.full(x.shape, 1.0, x.dtype))

    # --- conversion and copies
    def astype(self, x, dtype) -> DeviceArray:
        out = self.empty(x.shape, dtype)
        self.cast_into(out, x)
        return out

    def cast_into(self, dst: DeviceArray, src: DeviceArray) -> None:
        """``dst[...] = src`` (broadcast) with conversion to dst's dtype."""
        n = dst.size
        if src.dtype == dst.dtype:
            kernel = self.kernel("copy", f"copy_{dst.itemsize}")
            self.launch_elementwise(kernel, n, [n, self.raw(src), src.layout(dst.shape),
                                                self.raw(dst), dst.layout()])
            return
        to = self.enum("copy", "DType", "D_")[suffix(dst.dtype, "astype")]
        kernel = self.kernel("copy", f"cast_{suffix(src.dtype, 'astype')}")
        self.launch_elementwise(kernel, n, [n, src, src.layout(dst.shape), to, dst.ptr,
                                            dst.layout()])

    def raw(self, x: DeviceArray) -> int:
        """The address of a buffer, for the dtype-agnostic byte kernels."""
        return x.ptr

    def fill(self, dst: DeviceArray, value: Any) -> None:
        bits = np.array(value).astype(dst.dtype).view(f"u{dst.itemsize}")
        self.launch_elementwise(self.kernel("copy", f"fill_{dst.itemsize}"), dst.size,
                                [dst.size, int(bits), self.raw(dst), dst.layout()])

    def full(self, shape, value, dtype) -> DeviceArray:
        out = self.empty(tuple(shape), dtype)
        self.fill(out, value)
        return out

    def copy(self, x) -> DeviceArray:
        out = self.empty(x.shape, x.dtype)
        self.cast_into(out, x)
        return out

    def contiguous(self, x) -> DeviceArray:
        return x if x.is_contiguous else self.copy(x)

    def is_contiguous(self, x) -> bool:
        return x.is_contiguous

    def assign(self, dst, src) -> None:
        _check_writable(dst)
        if isinstance(src, DeviceArray):
            broadcast_strides(src, dst.shape)
            if _overlaps(dst, src):
                src = self.copy(src)
            self.cast_into(dst, src)
        else:
            self.fill(dst, src)


def _check_writable(dst: DeviceArray) -> None:
    """A broadcast view (stride 0 over several elements) can't be written, as in NumPy."""
    if any(s == 0 and n > 1 for n, s in zip(dst.shape, dst.strides)):
        raise ValueError(f"assignment destination is read-only (a broadcast view of shape "
                         f"{dst.shape})")


def _overlaps(a: DeviceArray, b: DeviceArray) -> bool:
    """Whether two views share memory and differ (copying one into the other in place
    would read values it already overwrote)."""
    if a.mem is not b.mem:
        return False
    return (a.ptr, a.shape, a.strides) != (b.ptr, b.shape, b.strides)


__all__ = ["ElementwiseOps", "merged_layout"]
