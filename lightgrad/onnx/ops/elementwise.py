"""Elementwise ONNX ops: unary math, activations, binary arithmetic, comparisons, logic, Cast.

Float inputs take the Tensor path (differentiable); integer, bool and the dtypes lightgrad
lacks take NumPy (their results carry no gradient, as in any framework).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ... import functions
from ...autograd import Function
from ...nn import functional as F
from ...tensor import Tensor
from ..values import onnx_np_dtype, to_value
from .registry import op
from .util import cast_like, lg_float, np_dtype, npy, scalar


class NumpyUnary(Function):
    """``y = f(x)`` computed by NumPy, with gradient ``g * df(x)`` written in Tensor ops."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, f: Any, df: Any) -> Tensor:
        ctx.save_for_backward(x)
        ctx.df = df
        y = f(x.numpy()).astype(x.dtype.np)
        return to_value(y, x.device)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> Any:
        (x,) = ctx.saved_tensors
        return g * ctx.df(x), None, None


def _unary(name: str, tensor_fn: Any, np_fn: Any) -> None:
    def run(ctx: Any, x: Any) -> Any:
        if lg_float(x) and tensor_fn is not None:
            return tensor_fn(x)
        a = npy(x)
        return ctx.value(np.asarray(np_fn(a)).astype(a.dtype))
    op(name)(run)


def _np_grad(np_fn: Any, df: Any) -> Any:
    return lambda x: NumpyUnary.apply(x, np_fn, df)


_UNARY = {
    "Abs": (Tensor.abs, np.abs),
    "Neg": (Tensor.neg, np.negative),
    "Exp": (Tensor.exp, np.exp),
    "Log": (Tensor.log, np.log),
    "Sqrt": (Tensor.sqrt, np.sqrt),
    "Reciprocal": (Tensor.reciprocal, np.reciprocal),
    "Sin": (Tensor.sin, np.sin),
    "Cos": (Tensor.cos, np.cos),
    "Tan": (lambda x: x.sin() / x.cos(), np.tan),
    "Tanh": (Tensor.tanh, np.tanh),
    "Sigmoid": (Tensor.sigmoid, lambda a: 1 / (1 + np.exp(-a))),
    "Relu": (Tensor.relu, lambda a: np.maximum(a, 0)),
    "Erf": (Tensor.erf, None),
    "Floor": (Tensor.floor, np.floor),
    "Ceil": (Tensor.ceil, np.ceil),
    "Round": (Tensor.round, np.round),
    "Sign": (Tensor.sign, np.sign),
    "Sinh": (lambda x: (x.exp() - (-x).exp()) * 0.5, np.sinh),
    "Cosh": (lambda x: (x.exp() + (-x).exp()) * 0.5, np.cosh),
    "Asin": (_np_grad(np.arcsin, lambda x: (1 - x * x).rsqrt()), np.arcsin),
    "Acos": (_np_grad(np.arccos, lambda x: -(1 - x * x).rsqrt()), np.arccos),
    "Atan": (_np_grad(np.arctan, lambda x: (1 + x * x).reciprocal()), np.arctan),
    "Asinh": (_np_grad(np.arcsinh, lambda x: (x * x + 1).rsqrt()), np.arcsinh),
    "Acosh": (_np_grad(np.arccosh, lambda x: (x * x - 1).rsqrt()), np.arccosh),
    "Atanh": (_np_grad(np.arctanh, lambda x: (1 - x * x).reciprocal()), np.arctanh),
    "Softsign": (lambda x: x / (x.abs() + 1), lambda a: a / (1 + np.abs(a))),
    "Softplus": (lambda x: F.softplus(x), lambda a: np.log1p(np.exp(a))),
    "Mish": (lambda x: x * F.softplus(x).tanh(), None),
}
for _name, (_t, _n) in _UNARY.items():
    _unary(_name, _t, _n)


@op("Not")
def not_(ctx: Any, x: Any) -> Any:
    return ctx.value(np.logical_not(npy(x)))


@op("BitwiseNot")
def bitwise_not(ctx: Any, x: Any) -> Any:
    return ctx.value(np.invert(npy(x)))


@op("IsNaN")
def isnan(ctx: Any, x: Any) -> Any:
    return ctx.value(np.isnan(npy(x).astype(np.float64)))


@op("IsInf")
def isinf(ctx: Any, x: Any, *, detect_negative: int = 1, detect_positive: int = 1) -> Any:
    a = npy(x).astype(np.float64)
    out = ((a == np.inf) & bool(detect_positive)) | ((a == -np.inf) & bool(detect_negative))
    return ctx.value(out)


# ----------------------------------------------------------------------------- activations


def _float_act(x: Any, tensor_fn: Any) -> Any:
    return tensor_fn(x if isinstance(x, Tensor) else to_value(npy(x)))


@op("LeakyRelu")
def leaky_relu(ctx: Any, x: Any, *, alpha: float = 0.01) -> Any:
    return functions.where(x < 0, x * alpha, x)


@op("Elu")
def elu(ctx: Any, x: Any, *, alpha: float = 1.0) -> Any:
    return functions.where(x < 0, (x.exp() - 1) * alpha, x)


@op("Selu")
def selu(ctx: Any, x: Any, *, alpha: float = 1.67326319217681884765625,
         gamma: float = 1.05070102214813232421875) -> Any:
    return functions.where(x <= 0, (x.exp() - 1) * (alpha * gamma), x * gamma)


@op("Celu")
def celu(ctx: Any, x: Any, *, alpha: float = 1.0) -> Any:
    return x.relu() + ((x / alpha).exp() - 1).clamp(max=0.0) * alpha


@op("ThresholdedRelu")
def thresholded_relu(ctx: Any, x: Any, *, alpha: float = 1.0) -> Any:
    return functions.where(x > alpha, x, x * 0)


@op("HardSigmoid")
def hard_sigmoid(ctx: Any, x: Any, *, alpha: float = 0.2, beta: float = 0.5) -> Any:
    return (x * alpha + beta).clamp(0.0, 1.0)


@op("HardSwish")
def hard_swish(ctx: Any, x: Any) -> Any:
    return x * (x * (1 / 6) + 0.5).clamp(0.0, 1.0)


@op("Gelu")
def gelu(ctx: Any, x: Any, *, approximate: str = "none") -> Any:
    return F.gelu(x, approximate=approximate)


@op("PRelu")
def prelu(ctx: Any, x: Any, slope: Any) -> Any:
    if lg_float(x):
        return functions.where(x < 0, x * slope, x)
    a, s = npy(x), npy(slope)
    return ctx.value(np.where(a < 0, a * s, a).astype(a.dtype))


@op("Shrink")
def shrink(ctx: Any, x: Any, *, bias: float = 0.0, lambd: float = 0.5) -> Any:
    if lg_float(x):
        return functions.where(x < -lambd, x + bias, functions.where(x > lambd, x - bias,
                                                                       x * 0))
    a = npy(x)
    out = np.where(a < -lambd, a + bias, np.where(a > lambd, a - bias, 0))
    return ctx.value(out.astype(a.dtype))


@op("Clip")
def clip(ctx: Any, x: Any, lo: Any = None, hi: Any = None, *, min: float | None = None,
         max: float | None = None) -> Any:
    lo_v = scalar(lo, min)
    hi_v = scalar(hi, max)
    if lg_float(x):
        if lo_v is not None and hi_v is not None and lo_v > hi_v:
            return x * 0 + hi_v
        return x.clamp(lo_v, hi_v) if (lo_v is not None or hi_v is not None) else x
    a = npy(x)
    if lo_v is not None:
        a = np.maximum(a, np.asarray(lo_v).astype(a.dtype))
    if hi_v is not None:
        a = np.minimum(a, np.asarray(hi_v).astype(a.dtype))
    return ctx.value(a)


# ----------------------------------------------------------------------------- binary


def _both_float(a: Any, b: Any) -> bool:
    return lg_float(a) and lg_float(b) and a.dtype == b.dtype


def _int_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind in "iu":
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.trunc(a.astype(np.float64) / b)
        return q.astype(a.dtype)
    return a / b


_BINARY = {
    "Add": (Tensor.add, np.add),
    "Sub": (Tensor.sub, np.subtract),
    "Mul": (Tensor.mul, np.multiply),
    "Div": (Tensor.div, _int_div),
}


def _binary(name: str, tensor_fn: Any, np_fn: Any) -> None:
    def run(ctx: Any, a: Any, b: Any) -> Any:
        if _both_float(a, b):
            return tensor_fn(a, b)
        x, y = npy(a), npy(b)
        with np.errstate(all="ignore"):
            return ctx.value(np.asarray(np_fn(x, y)).astype(x.dtype))
    op(name)(run)


for _name, (_t, _n) in _BINARY.items():
    _binary(_name, _t, _n)


@op("Pow")
def pow_(ctx: Any, a: Any, b: Any) -> Any:
    if lg_float(a) and lg_float(b):
        return a.pow(b if b.dtype == a.dtype else b.to(a.dtype))
    if lg_float(a):
        return a.pow(to_value(npy(b).astype(np_dtype(a)), ctx.device))
    x, y = npy(a), npy(b)
    with np.errstate(all="ignore"):
        if x.dtype.kind in "iu":
            return ctx.value(np.power(x.astype(np.float64), y).astype(x.dtype))
        return ctx.value(np.power(x, y.astype(x.dtype)).astype(x.dtype))


@op("Mod")
def mod(ctx: Any, a: Any, b: Any, *, fmod: int = 0) -> Any:
    x, y = npy(a), npy(b)
    with np.errstate(all="ignore"):
        out = np.fmod(x, y) if fmod else np.mod(x, y)
    return ctx.value(out.astype(x.dtype))


@op("BitShift")
def bit_shift(ctx: Any, a: Any, b: Any, *, direction: str) -> Any:
    x, y = npy(a), npy(b)
    out = np.left_shift(x, y) if direction == "LEFT" else np.right_shift(x, y)
    return ctx.value(out.astype(x.dtype))


def _np_binary(name: str, np_fn: Any) -> None:
    def run(ctx: Any, a: Any, b: Any) -> Any:
        return ctx.value(np_fn(npy(a), npy(b)))
    op(name)(run)


for _name, _n in {"And": np.logical_and, "Or": np.logical_or, "Xor": np.logical_xor,
                  "BitwiseAnd": np.bitwise_and, "BitwiseOr": np.bitwise_or,
                  "BitwiseXor": np.bitwise_xor, "Equal": np.equal, "Less": np.less,
                  "LessOrEqual": np.less_equal, "Greater": np.greater,
                  "GreaterOrEqual": np.greater_equal}.items():
    _np_binary(_name, _n)


@op("Where")
def where(ctx: Any, cond: Any, a: Any, b: Any) -> Any:
    if _both_float(a, b):
        c = cond if isinstance(cond, Tensor) else to_value(npy(cond), ctx.device)
        return functions.where(c, a, b)
    return ctx.value(np.where(npy(cond), npy(a), npy(b)))


def _variadic(name: str, tensor_fn: Any, np_fn: Any, mean: bool = False) -> None:
    def run(ctx: Any, *xs: Any) -> Any:
        xs = [x for x in xs if x is not None]
        if all(lg_float(x) and x.dtype == xs[0].dtype for x in xs):
            out = xs[0]
            for x in xs[1:]:
                out = tensor_fn(out, x)
            return out / len(xs) if mean else out
        arrs = [npy(x) for x in xs]
        out = arrs[0]
        for x in arrs[1:]:
            out = np_fn(out, x)
        if mean:
            out = out / len(arrs)
        return ctx.value(np.asarray(out).astype(arrs[0].dtype))
    op(name)(run)


_variadic("Max", Tensor.maximum, np.maximum)
_variadic("Min", Tensor.minimum, np.minimum)
_variadic("Sum", Tensor.add, np.add)
_variadic("Mean", Tensor.add, np.add, mean=True)


# ----------------------------------------------------------------------------- casts


def cast_value(ctx: Any, x: Any, dt: np.dtype, saturate: int = 1) -> Any:
    """``x`` cast to NumPy dtype ``dt`` (float -> float stays differentiable)."""
    if lg_float(x) and dt.kind == "f" and isinstance(to_value(np.zeros(0, dt)), Tensor):
        return cast_like(x, dt)
    a = npy(x)
    if a.dtype == dt:
        return x
    if dt.kind in "USO":
        if a.dtype.kind == "f":
            out = np.array([_float_str(v) for v in a.reshape(-1)], dtype=object).reshape(a.shape)
        else:
            out = a.astype(str).astype(object)
        return out
    if a.dtype == object or a.dtype.kind in "US":
        return ctx.value(a.astype(np.float64 if dt.kind == "f" else dt).astype(dt))
    if dt.kind in "iu" and a.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            return ctx.value(np.trunc(a.astype(np.float64)).astype(dt))
    if dt.kind == "V" or str(dt).startswith("float8") or str(dt).startswith("float4"):
        src = a.astype(np.float32)
        if saturate and str(dt).startswith("float8"):
            import ml_dtypes
            finfo = ml_dtypes.finfo(dt)
            src = np.where(np.isnan(src), src, np.clip(src, float(finfo.min), float(finfo.max)))
        return ctx.value(src.astype(dt))
    return ctx.value(a.astype(dt))


def _float_str(v: Any) -> str:
    v = float(v)
    if np.isnan(v):
        return "NaN"
    if np.isinf(v):
        return "INF" if v > 0 else "-INF"
    return np.format_float_positional(np.float32(v), trim="-") if abs(v) < 1e16 and (
        v == 0 or abs(v) >= 1e-4) else str(np.float32(v))


@op("Cast")
def cast(ctx: Any, x: Any, *, to: int, saturate: int = 1, round_mode: str = "up") -> Any:
    return cast_value(ctx, x, onnx_np_dtype(to), saturate)


@op("CastLike")
def cast_like_op(ctx: Any, x: Any, like: Any, *, saturate: int = 1,
                 round_mode: str = "up") -> Any:
    return cast_value(ctx, x, np_dtype(like), saturate)
