"""Quantisation ops: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, QLinearMatMul,
QLinearConv, MatMulInteger, ConvInteger (NumPy; integer results carry no gradient).

Scales/zero points are per tensor, per axis (1-D) or blocked (``block_size``); rounding is
half to even and results saturate to the output type.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..values import onnx_np_dtype, to_value
from .conv import conv
from .registry import op
from .util import npy


def _expand(param: np.ndarray, x_shape: tuple, axis: int, block: int) -> np.ndarray:
    if param.ndim == 0 or param.size == 1 and param.ndim <= 1:
        return param.reshape(())
    nd = len(x_shape)
    ax = axis + nd if axis < 0 else axis
    if block:
        return np.repeat(param, block, axis=ax).take(np.arange(x_shape[ax]), axis=ax)
    return param.reshape([-1 if i == ax else 1 for i in range(nd)])


def _saturate(v: np.ndarray, dt: np.dtype, saturate: int = 1) -> np.ndarray:
    name = str(dt)
    if dt.kind in "iu" or name in ("int4", "uint4", "int2", "uint2"):
        if name in ("int4", "uint4", "int2", "uint2"):
            import ml_dtypes
            info = ml_dtypes.iinfo(dt)
        else:
            info = np.iinfo(dt)
        return np.clip(np.rint(v), info.min, info.max).astype(dt)
    if name.startswith("float8") or name.startswith("float4"):
        import ml_dtypes
        if saturate:
            fi = ml_dtypes.finfo(dt)
            v = np.where(np.isnan(v), v, np.clip(v, float(fi.min), float(fi.max)))
        return v.astype(np.float32).astype(dt)
    return v.astype(dt)


@op("QuantizeLinear")
def quantize_linear(ctx: Any, x: Any, scale: Any, zero_point: Any = None, *, axis: int = 1,
                    block_size: int = 0, output_dtype: int = 0, saturate: int = 1,
                    precision: int = 0) -> Any:
    a = npy(x).astype(np.float64 if npy(x).dtype == np.float64 else np.float32)
    s = _expand(npy(scale).astype(np.float32), a.shape, axis, block_size)
    if zero_point is not None:
        zp_raw = npy(zero_point)
        dt = zp_raw.dtype
        zp = _expand(zp_raw.astype(np.float32), a.shape, axis, block_size)
    else:
        dt = onnx_np_dtype(output_dtype) if output_dtype else np.dtype(np.uint8)
        zp = 0.0
    q = a / s
    if dt.kind in "iu" or str(dt) in ("int4", "uint4", "int2", "uint2"):
        q = np.rint(q) + zp
    else:
        q = q + zp
    return ctx.value(_saturate(q, np.dtype(dt), saturate))


@op("DequantizeLinear")
def dequantize_linear(ctx: Any, x: Any, scale: Any, zero_point: Any = None, *, axis: int = 1,
                      block_size: int = 0, output_dtype: int = 0) -> Any:
    a = npy(x)
    sc = npy(scale)
    s = _expand(sc, a.shape, axis, block_size)
    zp = _expand(npy(zero_point).astype(np.float32), a.shape, axis, block_size) \
        if zero_point is not None else 0.0
    out_dt = onnx_np_dtype(output_dtype) if output_dtype else sc.dtype
    y = (a.astype(np.float32) - zp) * s.astype(np.float32)
    return ctx.value(y.astype(out_dt))


@op("DynamicQuantizeLinear")
def dynamic_quantize_linear(ctx: Any, x: Any) -> Any:
    a = npy(x).astype(np.float32)
    lo, hi = min(0.0, float(a.min())), max(0.0, float(a.max()))
    scale = np.float32((hi - lo) / 255.0) if hi != lo else np.float32(1.0)
    zp = np.clip(np.rint(0 - lo / scale), 0, 255)
    y = np.clip(np.rint(a / scale) + zp, 0, 255).astype(np.uint8)
    return ctx.value(y), ctx.value(np.array(scale, np.float32)), \
        ctx.value(np.array(zp, np.uint8))


def _centered(v: Any, zp: Any) -> np.ndarray:
    a = npy(v).astype(np.int64)
    return a - (npy(zp).astype(np.int64) if zp is not None else 0)


@op("MatMulInteger")
def matmul_integer(ctx: Any, a: Any, b: Any, a_zp: Any = None, b_zp: Any = None) -> Any:
    A = _centered(a, a_zp if a_zp is None or npy(a_zp).ndim == 0 else
                  to_value(npy(a_zp).reshape(-1, 1)))
    B = _centered(b, b_zp)
    return ctx.value(np.matmul(A, B).astype(np.int32))


@op("QLinearMatMul")
def qlinear_matmul(ctx: Any, a: Any, a_scale: Any, a_zp: Any, b: Any, b_scale: Any, b_zp: Any,
                   y_scale: Any, y_zp: Any) -> Any:
    A = (npy(a).astype(np.float64) - npy(a_zp).astype(np.float64)) * npy(a_scale)
    B = (npy(b).astype(np.float64) - npy(b_zp).astype(np.float64)) * npy(b_scale)
    y = np.matmul(A, B) / npy(y_scale).astype(np.float64) + npy(y_zp).astype(np.float64)
    return ctx.value(_saturate(y, npy(y_zp).dtype))


@op("ConvInteger")
def conv_integer(ctx: Any, x: Any, w: Any, x_zp: Any = None, w_zp: Any = None,
                 **attrs: Any) -> Any:
    X = _centered(x, x_zp).astype(np.float64)
    wzp = npy(w_zp) if w_zp is not None else None
    W = npy(w).astype(np.int64) - (wzp.reshape(-1, *([1] * (npy(w).ndim - 1))).astype(np.int64)
                                   if wzp is not None else 0)
    y = conv(ctx, to_value(X), to_value(W.astype(np.float64)), None, **attrs)
    return ctx.value(np.rint(npy(y)).astype(np.int32))


@op("QLinearConv")
def qlinear_conv(ctx: Any, x: Any, x_scale: Any, x_zp: Any, w: Any, w_scale: Any, w_zp: Any,
                 y_scale: Any, y_zp: Any, bias: Any = None, **attrs: Any) -> Any:
    X = (npy(x).astype(np.float64) - npy(x_zp).astype(np.float64)) * npy(x_scale)
    nw = npy(w).ndim
    ws = npy(w_scale).astype(np.float64).reshape(-1, *([1] * (nw - 1)))
    wz = npy(w_zp).astype(np.float64).reshape(-1, *([1] * (nw - 1)))
    W = (npy(w).astype(np.float64) - wz) * ws
    y = npy(conv(ctx, to_value(X), to_value(W), None, **attrs))
    if bias is not None:
        b = npy(bias).astype(np.float64) * (float(npy(x_scale)) * ws.reshape(-1))
        y = y + b.reshape(1, -1, *([1] * (nw - 2)))
    y = y / float(npy(y_scale)) + npy(y_zp).astype(np.float64)
    return ctx.value(_saturate(y, npy(y_zp).dtype))
