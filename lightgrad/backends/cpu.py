"""The NumPy backend: the reference implementation of every primitive in ``base.py``.

Buffers are ``numpy.ndarray``. Movement ops return views wherever NumPy can (reshape,
permute, expand, basic slicing); matmul goes to NumPy's BLAS. float16 and bfloat16 compute
transcendental functions, reductions and matmul in float32 and round the result back,
as PyTorch does on the CPU.

>>> import numpy as np
>>> cpu = CPUBackend()
>>> cpu.softmax(np.array([0.0, 0.0]), axis=0)
array([0.5, 0.5])
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, Callable

import ml_dtypes
import numpy as np

from .. import threads
from . import cpu_conv, cpu_gelu, cpu_memory, cpu_native, cpu_norm, cpu_scan
from .cpu_conv import _conv_out, _pool_out_hw  # noqa: F401 (cuda/ops_conv.py uses them)
from .base import Backend

cpu_memory.keep_freed_memory()  # reuse freed big arrays: no page faults every step

_HALF = (np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16))
_FAST_NORM = (np.dtype(np.float32), np.dtype(np.float64))
_SQRT_HALF = 1.0 / math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_erf64 = np.frompyfunc(math.erf, 1, 1)


def _erf(x: np.ndarray) -> np.ndarray:
    """erf without SciPy: exact (math.erf) in float64, ``cpu_gelu.erf`` in float32 (within
    about two ulp, few passes over the data)."""
    if x.dtype == np.float64:
        return np.asarray(_erf64(x), dtype=np.float64)  # 0-d: frompyfunc gives a float
    return cpu_gelu.erf(x).astype(x.dtype, copy=False)


def _gelu(x: np.ndarray) -> np.ndarray:
    """x * Phi(x), Phi the standard normal CDF: ``cpu_gelu`` in float32, exact in float64."""
    if x.dtype != np.float64:
        return cpu_gelu.gelu(x).astype(x.dtype, copy=False)
    if x.ndim == 0:  # NumPy turns 0-d results into scalars, which can't be written in place
        return _gelu(x.reshape(1)).reshape(())
    out = _erf(x * _SQRT_HALF)
    out += 1.0
    out *= 0.5
    out *= x
    return out


def _gelu_backward(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """g * (Phi(x) + x phi(x)): the derivative of exact GELU times the incoming gradient."""
    if x.dtype != np.float64:
        return cpu_gelu.gelu_backward(x, g).astype(x.dtype, copy=False)
    if x.ndim == 0:
        return _gelu_backward(x.reshape(1), np.reshape(g, 1)).reshape(())
    cdf = _erf(x * _SQRT_HALF)
    cdf += 1.0
    cdf *= 0.5
    pdf = np.square(x)
    pdf *= -0.5
    np.exp(pdf, out=pdf)
    pdf *= 1.0 / math.sqrt(2.0 * math.pi)
    pdf *= x
    cdf += pdf
    cdf *= g
    return cdf


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # exp(-|x|) never overflows; the two branches join into one stable formula.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


try:  # NumPy >= 2 keeps the error state in a context variable: set it directly
    from numpy._core._ufunc_config import _extobj_contextvar, _make_extobj
    _IGNORE_ALL: Any = _make_extobj(all="ignore")
except (ImportError, AttributeError, TypeError):  # other NumPy versions: np.errstate
    _extobj_contextvar = None


def _quiet(fn: Callable) -> Callable:
    """``fn`` under ``np.errstate(all="ignore")``: like PyTorch, log(-1), 1/0 or the mean of
    an empty tensor give nan/inf without a RuntimeWarning. Applied only to the ops whose
    finite inputs can give nan/inf (log, sqrt, div, pow, exp, mean, softmax...).

    On NumPy 2 the error-state context variable is set directly (about 0.3 µs a call);
    ``with np.errstate(...)`` does the same but costs about 1.7 µs, a third of the per-op
    overhead of a small op (``benchmarks/op_overhead.py``)."""
    if _extobj_contextvar is None:
        def quiet(*args: Any, **kwargs: Any) -> Any:
            with np.errstate(all="ignore"):
                return fn(*args, **kwargs)
    else:
        var, ignore_all = _extobj_contextvar, _IGNORE_ALL

        def quiet(*args: Any, **kwargs: Any) -> Any:
            token = var.set(ignore_all)
            try:
                return fn(*args, **kwargs)
            finally:
                var.reset(token)
    quiet.__name__ = getattr(fn, "__name__", "quiet")
    quiet.__doc__ = fn.__doc__
    return quiet


def _in_float32(fn):
    """Run ``fn`` in float32 for half-precision inputs and round the result back."""
    def wrapped(x: np.ndarray, *args: Any) -> np.ndarray:
        if x.dtype in _HALF:
            return fn(x.astype(np.float32), *args).astype(x.dtype)
        return fn(x, *args)
    wrapped.__name__ = fn.__name__
    return wrapped


_UNARY = {
    "neg": np.negative,
    "abs": np.abs,
    "exp": _in_float32(np.exp),
    "log": _in_float32(np.log),
    "sqrt": _in_float32(np.sqrt),
    "rsqrt": _in_float32(lambda x: 1.0 / np.sqrt(x)),
    "sin": _in_float32(np.sin),
    "cos": _in_float32(np.cos),
    "tanh": _in_float32(np.tanh),
    "sigmoid": _in_float32(_sigmoid),
    "relu": lambda x: np.maximum(x, 0, dtype=x.dtype),
    "gelu": _in_float32(cpu_native.first(cpu_native.gelu, _gelu)),
    "gelu_tanh": _in_float32(cpu_native.first(cpu_native.gelu_tanh, lambda x: 0.5 * x * (
        1.0 + np.tanh(x.dtype.type(_SQRT_2_OVER_PI) * (x + x.dtype.type(0.044715) * x * x * x))))),
    "silu": _in_float32(lambda x: x * _sigmoid(x)),
    "softplus": _in_float32(lambda x: np.logaddexp(x, x.dtype.type(0))),
    "erf": _in_float32(cpu_native.first(cpu_native.erf, _erf)),
    "reciprocal": _in_float32(np.reciprocal),
    "sign": np.sign,
    "floor": np.floor,
    "ceil": np.ceil,
    "round": np.round,
    "logical_not": np.logical_not,
}

_BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide,
    "pow": np.power, "maximum": np.maximum, "minimum": np.minimum,
    "eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
    "gt": np.greater, "ge": np.greater_equal,
    "logical_and": np.logical_and, "logical_or": np.logical_or,
    "logical_xor": np.logical_xor,
}


def _reduce_dtype(x: np.ndarray, dtype: Any) -> Any:
    if dtype is not None:
        return dtype
    return np.float32 if x.dtype in _HALF else None


def _reduce(ufunc: np.ufunc, x: np.ndarray, axes: tuple, keepdim: bool, dtype: Any) -> Any:
    """``ufunc.reduce`` over ``axes``; halves accumulate in float32 and round back."""
    acc = _reduce_dtype(x, dtype)
    out = ufunc.reduce(x, axis=axes, keepdims=keepdim, dtype=acc)
    want = dtype or x.dtype
    if type(out) is not np.ndarray or out.dtype != want:
        out = np.asarray(out, dtype=want)
    return out


# ops that turn finite inputs into nan/inf (and so would warn) run under _quiet
_QUIET_UNARY = ("exp", "log", "sqrt", "rsqrt", "reciprocal", "sin", "cos", "tanh", "sigmoid",
                "gelu", "gelu_tanh", "silu", "softplus", "erf")
_QUIET_BINARY = ("div", "pow")
_QUIET_METHODS = ("mean", "prod", "gelu_backward", "gelu_and_grad", "softmax", "log_softmax",
                  "adamw_step",
                  "avg_pool2d", "avg_pool2d_backward", "layer_norm", "layer_norm_backward",
                  "rms_norm", "batch_norm_stats", "batch_norm", "cross_entropy",
                  "cross_entropy_backward", "scaled_dot_product_attention", "binary_inplace",
                  "fused_elementwise")
for _op in _QUIET_UNARY:
    _UNARY[_op] = _quiet(_UNARY[_op])
for _op in _QUIET_BINARY:
    _BINARY[_op] = _quiet(_BINARY[_op])


class CPUBackend(Backend):
    """NumPy implementation of the op vocabulary (see ``base.Backend`` for each meaning)."""

    name = "cpu"

    def __init__(self) -> None:
        self.rng = np.random.default_rng()
        for op, fn in _UNARY.items():
            setattr(self, op, fn)
        for op, fn in _BINARY.items():
            setattr(self, op, fn)

    # --- creation and transfer
    def from_numpy(self, array: Any) -> np.ndarray:
        return np.asarray(array)

    def to_numpy(self, x: np.ndarray) -> np.ndarray:
        return x

    def full(self, shape, value, dtype) -> np.ndarray:
        return np.full(shape, value, dtype=dtype)

    def arange(self, start, end, step, dtype) -> np.ndarray:
        return np.arange(start, end, step, dtype=np.float64).astype(dtype) \
            if np.dtype(dtype) in _HALF else np.arange(start, end, step, dtype=dtype)

    def linspace(self, start, end, steps, dtype) -> np.ndarray:
        return np.linspace(start, end, steps).astype(dtype)

    def eye(self, n, m, dtype) -> np.ndarray:
        return np.eye(n, m, dtype=dtype)

    def seed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def rand(self, shape, dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        if dtype in (np.float32, np.float64):
            return self.rng.random(shape, dtype=dtype)
        return self.rng.random(shape, dtype=np.float32).astype(dtype)

    def randn(self, shape, dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        if dtype in (np.float32, np.float64):
            return self.rng.standard_normal(shape, dtype=dtype)
        return self.rng.standard_normal(shape, dtype=np.float32).astype(dtype)

    def randint(self, low, high, shape, dtype) -> np.ndarray:
        return self.rng.integers(low, high, size=shape, dtype=np.int64).astype(dtype, copy=False)

    def astype(self, x, dtype) -> np.ndarray:
        return x.astype(dtype)

    def contiguous(self, x) -> np.ndarray:
        # np.ascontiguousarray would turn a 0-d array into shape (1,).
        return x if x.flags.c_contiguous else np.ascontiguousarray(x)

    def copy(self, x) -> np.ndarray:
        return np.array(x, order="C", copy=True)

    def is_contiguous(self, x) -> bool:
        return x.flags.c_contiguous

    # --- elementwise
    def gelu_and_grad(self, x) -> tuple:
        fast = cpu_native.gelu_and_grad(x)  # C kernel (None: not available for x)
        if fast is not None:
            return fast
        if x.dtype == np.float64:
            return _gelu(x), _gelu_backward(x, np.ones_like(x))
        y, d = cpu_gelu.gelu_and_grad(x)
        return y.astype(x.dtype, copy=False), d.astype(x.dtype, copy=False)

    def gelu_backward(self, x, g) -> np.ndarray:
        if x.dtype in _HALF:
            return _gelu_backward(x.astype(np.float32), g.astype(np.float32)).astype(x.dtype)
        fast = cpu_native.gelu_backward(x, g)
        return _gelu_backward(x, g) if fast is None else fast

    def where(self, cond, a, b) -> np.ndarray:
        return np.where(cond, a, b)

    def clamp(self, x, low, high) -> np.ndarray:
        if low is not None and high is not None:
            return np.clip(x, low, high).astype(x.dtype, copy=False)
        if low is not None:
            return np.maximum(x, low).astype(x.dtype, copy=False)
        return np.minimum(x, high).astype(x.dtype, copy=False)

    # --- reductions
    def sum(self, x, axes, keepdim, dtype=None) -> np.ndarray:
        return _reduce(np.add, x, axes, keepdim, dtype)

    def mean(self, x, axes, keepdim, dtype=None) -> np.ndarray:
        count = 1
        for a in axes:
            count *= x.shape[a]
        total = _reduce(np.add, x, axes, keepdim, dtype or (np.float32 if x.dtype in _HALF
                                                             else None))
        return np.true_divide(total, count, dtype=total.dtype).astype(dtype or x.dtype,
                                                                     copy=False)

    def prod(self, x, axes, keepdim, dtype=None) -> np.ndarray:
        return _reduce(np.multiply, x, axes, keepdim, dtype)

    def amax(self, x, axes, keepdim) -> np.ndarray:
        return np.asarray(np.max(x, axis=axes, keepdims=keepdim))

    def amin(self, x, axes, keepdim) -> np.ndarray:
        return np.asarray(np.min(x, axis=axes, keepdims=keepdim))

    def all(self, x, axes, keepdim) -> np.ndarray:
        return np.asarray(np.all(x, axis=axes, keepdims=keepdim))

    def any(self, x, axes, keepdim) -> np.ndarray:
        return np.asarray(np.any(x, axis=axes, keepdims=keepdim))

    def argmax(self, x, axis, keepdim) -> np.ndarray:
        return np.asarray(np.argmax(x, axis=axis, keepdims=keepdim), dtype=np.int64)

    def argmin(self, x, axis, keepdim) -> np.ndarray:
        return np.asarray(np.argmin(x, axis=axis, keepdims=keepdim), dtype=np.int64)

    def cumsum(self, x, axis) -> np.ndarray:
        return np.cumsum(x, axis=axis, dtype=_reduce_dtype(x, None)).astype(x.dtype, copy=False)

    # --- movement
    def reshape(self, x, shape) -> np.ndarray:
        return x.reshape(shape)

    def bitcast(self, x: np.ndarray, dtype: Any) -> np.ndarray:
        return x.view(dtype)

    def permute(self, x, axes) -> np.ndarray:
        return x.transpose(axes)

    def expand(self, x, shape) -> np.ndarray:
        return np.broadcast_to(x, shape)

    def getitem(self, x, index) -> np.ndarray:
        out = x[index]
        # An all-int index gives a NumPy scalar (a copy); a trailing ... keeps a 0-d view.
        return out if isinstance(out, np.ndarray) else x[index + (Ellipsis,)]

    def setitem(self, x, index, value) -> None:
        x[index] = value

    def index_put(self, x, index, value, accumulate) -> np.ndarray:
        out = np.array(x, copy=True)
        if accumulate:
            np.add.at(out, index, value)
        else:
            out[index] = value
        return out

    def assign(self, dst, src) -> None:
        np.copyto(dst, src, casting="unsafe")

    def binary_inplace(self, op, dst, src) -> None:
        if type(src) is not np.ndarray:
            src = np.asarray(src, dtype=dst.dtype)  # weak Python numbers keep dst's dtype
        _BINARY[op](dst, src, out=dst)

    def fused_elementwise(self, program, operands) -> np.ndarray:
        return program.run_numpy(self, operands)

    def pad(self, x, pads, value) -> np.ndarray:
        return np.pad(x, pads, mode="constant", constant_values=value)

    def flip(self, x, axes) -> np.ndarray:
        return np.flip(x, axes).copy()

    def cat(self, xs, axis) -> np.ndarray:
        return np.concatenate(xs, axis=axis)

    def tile(self, x, reps) -> np.ndarray:
        return np.tile(x, reps)

    def tril(self, x, k) -> np.ndarray:
        return np.tril(x, k)

    def triu(self, x, k) -> np.ndarray:
        return np.triu(x, k)

    def gather(self, x, axis, index) -> np.ndarray:
        return np.take_along_axis(x, index, axis=axis)

    def scatter_add(self, x, axis, index, src) -> np.ndarray:
        out = np.array(x, copy=True)
        np.add.at(out, _scatter_index(index, axis), src[tuple(slice(0, n) for n in index.shape)])
        return out

    def index_add(self, x, axis, index, src) -> np.ndarray:
        out = np.array(x, copy=True)
        if axis == 0 and index.ndim == 1 and src.ndim >= 1 and len(index) > 16 and \
                out.dtype.kind == "f" and out.dtype not in _HALF:
            # an embedding's backward: sum the rows of each index with one sort and one
            # reduceat (np.add.at adds them one at a time, 10x slower)
            rows_at = np.where(index < 0, index + len(out), index)  # one key per row
            if rows_at.min() < 0 or rows_at.max() >= len(out):
                np.add.at(out, index, src)  # raises NumPy's IndexError, naming the index
            order = np.argsort(rows_at, kind="stable")
            keys = rows_at[order]
            starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
            rows = np.add.reduceat(np.broadcast_to(src, (len(index),) + out.shape[1:])[order],
                                   starts, axis=0)
            out[keys[starts]] += rows.astype(out.dtype, copy=False)
            return out
        np.add.at(out, (slice(None),) * axis + (index,), src)
        return out

    def index_select(self, x, axis, index) -> np.ndarray:
        return np.take(x, index, axis=axis)

    # --- linear algebra and fused NN ops
    def matmul(self, a, b) -> np.ndarray:
        threads.adapt()
        if a.dtype in _HALF:
            return self.matmul(a.astype(np.float32), b.astype(np.float32)).astype(a.dtype)
        if b.ndim == 2 and a.ndim > 2:
            # (..., K) @ (K, N) as one 2-D product: a single BLAS call instead of a loop
            # over the batch (NumPy's stacked matmul can fall back to a slow non-BLAS loop)
            rows = np.ascontiguousarray(a).reshape(-1, a.shape[-1])
            return np.matmul(rows, b).reshape(a.shape[:-1] + (b.shape[1],))
        if a.ndim > 2 or b.ndim > 2:
            # stacked products: BLAS is only used on matrices with a unit-stride axis
            a, b = _blas_ready(a), _blas_ready(b)
        return np.matmul(a, b)

    def softmax(self, x, axis) -> np.ndarray:
        fast = cpu_native.softmax(x, axis)
        return _in_float32(_softmax)(x, axis) if fast is None else fast

    def log_softmax(self, x, axis) -> np.ndarray:
        fast = cpu_native.log_softmax(x, axis)
        return _in_float32(_log_softmax)(x, axis) if fast is None else fast

    # --- sampling and selection
    def multinomial(self, probs, num_samples, replacement) -> np.ndarray:
        p = np.asarray(probs, dtype=np.float64)
        rows = p.reshape(-1, p.shape[-1])
        out = np.empty((rows.shape[0], num_samples), dtype=np.int64)
        for r, row in enumerate(rows):
            row = row / row.sum()
            if replacement:
                cdf = np.cumsum(row)
                draws = np.searchsorted(cdf, self.rng.random(num_samples) * cdf[-1], "right")
                out[r] = np.minimum(draws, len(row) - 1)
            else:
                out[r] = self.rng.choice(len(row), size=num_samples, replace=False, p=row)
        return out.reshape(p.shape[:-1] + (num_samples,))

    def topk(self, x, k, axis, largest) -> np.ndarray:
        keys = -x.astype(np.float64) if largest else x
        part = np.argpartition(keys, k - 1, axis=axis) if k < x.shape[axis] else \
            np.argsort(keys, axis=axis, kind="stable")
        part = np.take(part, np.arange(k), axis=axis)
        order = np.argsort(np.take_along_axis(keys, part, axis=axis), axis=axis, kind="stable")
        return np.take_along_axis(part, order, axis=axis).astype(np.int64)

    def sort(self, x, axis, descending) -> np.ndarray:
        keys = -x.astype(np.float64) if descending else x
        return np.argsort(keys, axis=axis, kind="stable").astype(np.int64)

    # --- optimizer primitives
    def adamw_step(self, param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps,
                   weight_decay, step) -> None:
        if param.dtype in _HALF:  # update in float32, round the results back
            wide = [a.astype(np.float32) for a in (param, exp_avg, exp_avg_sq)]
            self.adamw_step(wide[0], grad.astype(np.float32), wide[1], wide[2], lr, beta1,
                            beta2, eps, weight_decay, step)
            for dst, src in zip((param, exp_avg, exp_avg_sq), wide):
                np.copyto(dst, src, casting="unsafe")
            return
        if cpu_native.adamw_step(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps,
                                 weight_decay, step):  # one C pass; below: its NumPy twin
            return
        if weight_decay != 0:
            param *= 1 - lr * weight_decay
        scratch = np.subtract(grad, exp_avg)  # the one temporary, reused below
        scratch *= 1 - beta1
        exp_avg += scratch
        np.multiply(grad, grad, out=scratch)
        scratch *= 1 - beta2
        exp_avg_sq *= beta2
        exp_avg_sq += scratch
        np.sqrt(exp_avg_sq, out=scratch)
        scratch /= math.sqrt(1 - beta2 ** step)
        scratch += eps
        np.divide(exp_avg, scratch, out=scratch)
        scratch *= lr / (1 - beta1 ** step)
        param -= scratch

    # --- fused NN primitives (conv, pooling, norms, losses, attention)
    # Thin wrappers: convolution and pooling run in cpu_conv.py (C kernels, NumPy twins),
    # the others' NumPy kernels are the module-level functions at the end of this file.
    def conv2d(self, x, w, bias, stride, padding, dilation, groups) -> np.ndarray:
        threads.adapt()
        xc, wc, bc = _compute_dtype(x, w, bias)
        out = cpu_conv.conv2d(xc, wc, bc, stride, padding, dilation, groups)
        return out.astype(x.dtype, copy=False)

    def conv2d_backward_input(self, grad, w, input_shape, stride, padding, dilation,
                              groups) -> np.ndarray:
        gc, wc = _compute_dtype(grad, w)
        out = cpu_conv.conv2d_backward_input(gc, wc, input_shape, stride, padding, dilation,
                                             groups)
        return out.astype(grad.dtype, copy=False)

    def conv2d_backward_weight(self, grad, x, weight_shape, stride, padding, dilation,
                               groups) -> np.ndarray:
        gc, xc = _compute_dtype(grad, x)
        out = cpu_conv.conv2d_backward_weight(gc, xc, weight_shape, stride, padding, dilation,
                                              groups)
        return out.astype(grad.dtype, copy=False)

    def max_pool2d(self, x, kernel, stride, padding, dilation, ceil_mode) -> tuple:
        (xc,) = _compute_dtype(x)
        values, indices = cpu_conv.max_pool2d(xc, kernel, stride, padding, dilation, ceil_mode)
        return values.astype(x.dtype, copy=False), indices

    def max_pool2d_backward(self, grad, indices, input_shape) -> np.ndarray:
        return cpu_conv.max_pool2d_backward(grad, indices, input_shape)

    def avg_pool2d(self, x, kernel, stride, padding, ceil_mode, count_include_pad,
                   divisor_override) -> np.ndarray:
        (xc,) = _compute_dtype(x)
        out = cpu_conv.avg_pool2d(xc, kernel, stride, padding, ceil_mode, count_include_pad,
                                  divisor_override)
        return out.astype(x.dtype, copy=False)

    def avg_pool2d_backward(self, grad, input_shape, kernel, stride, padding, ceil_mode,
                            count_include_pad, divisor_override) -> np.ndarray:
        (gc,) = _compute_dtype(grad)
        out = cpu_conv.avg_pool2d_backward(gc, input_shape, kernel, stride, padding, ceil_mode,
                                           count_include_pad, divisor_override)
        return out.astype(grad.dtype, copy=False)

    def layer_norm(self, x, weight, bias, n_axes, eps) -> tuple:
        if x.dtype in _FAST_NORM and x.size and n_axes:  # C kernel, else BLAS sums (cpu_norm)
            return (cpu_native.layer_norm(x, weight, bias, n_axes, eps) or
                    cpu_norm.layer_norm(x, weight, bias, n_axes, eps))
        xc, wc, bc = _compute_dtype(x, weight, bias)
        axes = tuple(range(x.ndim - n_axes, x.ndim))
        mean = np.mean(xc, axis=axes, keepdims=True)
        y = xc - mean
        rstd = 1.0 / np.sqrt(np.mean(np.square(y), axis=axes, keepdims=True) + eps)
        y *= rstd
        _affine(y, wc, bc)
        return tuple(a.astype(x.dtype, copy=False) for a in (y, mean, rstd))

    def layer_norm_backward(self, g, x, weight, mean, rstd, n_axes) -> tuple:
        if x.dtype in _FAST_NORM and x.size and n_axes and g.dtype == x.dtype:
            return (cpu_native.layer_norm_backward(g, x, weight, mean, rstd, n_axes) or
                    cpu_norm.layer_norm_backward(g, x, weight, mean, rstd, n_axes))
        gc, xc, wc = _compute_dtype(g, x, weight)
        axes = tuple(range(x.ndim - n_axes, x.ndim))
        lead = tuple(range(x.ndim - n_axes))
        xhat = xc - mean
        xhat *= rstd
        gw = np.sum(gc * xhat, axis=lead) if wc is not None else None
        gb = np.sum(gc, axis=lead)
        gxhat = gc * wc if wc is not None else gc.copy()
        # dx = rstd * (gxhat - mean(gxhat) - xhat * mean(gxhat * xhat))
        proj = np.mean(gxhat * xhat, axis=axes, keepdims=True)
        xhat *= proj
        gxhat -= np.mean(gxhat, axis=axes, keepdims=True)
        gxhat -= xhat
        gxhat *= rstd
        return tuple(None if a is None else a.astype(x.dtype, copy=False)
                     for a in (gxhat, gw, gb))

    def rms_norm(self, x, weight, n_axes, eps) -> tuple:
        fast = cpu_native.rms_norm(x, weight, n_axes, eps)  # C kernel, else NumPy below
        if fast is not None:
            return fast
        xc, wc = _compute_dtype(x, weight)
        axes = tuple(range(x.ndim - n_axes, x.ndim))
        rstd = 1.0 / np.sqrt(np.mean(np.square(xc), axis=axes, keepdims=True) + eps)
        y = xc * rstd
        _affine(y, wc, None)
        return y.astype(x.dtype, copy=False), rstd.astype(x.dtype, copy=False)

    def batch_norm_stats(self, x) -> tuple:
        (xc,) = _compute_dtype(x)
        axes = (0,) + tuple(range(2, x.ndim))
        mean = np.mean(xc, axis=axes)
        var = np.mean(np.square(xc - _channel(mean, x.ndim)), axis=axes)
        return mean.astype(x.dtype, copy=False), var.astype(x.dtype, copy=False)

    def batch_norm(self, x, weight, bias, mean, var, eps) -> np.ndarray:
        xc, wc, bc, mc, vc = _compute_dtype(x, weight, bias, mean, var)
        scale = 1.0 / np.sqrt(vc + eps)
        if wc is not None:
            scale = scale * wc
        shift = -mc * scale if bc is None else bc - mc * scale
        y = xc * _channel(scale, x.ndim) + _channel(shift, x.ndim)
        return y.astype(x.dtype, copy=False)

    def cross_entropy(self, x, target, weight, ignore_index, label_smoothing) -> tuple:
        fast = cpu_native.cross_entropy(x, target, weight, ignore_index, label_smoothing)
        if fast is not None:  # C kernel (class indices, no weights or smoothing)
            return fast
        xc, wc = _compute_dtype(x, weight)
        out = _cross_entropy(xc, target, wc, ignore_index, label_smoothing)
        return tuple(a.astype(x.dtype, copy=False) for a in out)

    def cross_entropy_backward(self, probs, target, weight, scale, ignore_index,
                               label_smoothing) -> np.ndarray:
        fast = cpu_native.cross_entropy_backward(probs, target, weight, scale, ignore_index,
                                                 label_smoothing)
        if fast is not None:
            return fast
        pc, wc, sc = _compute_dtype(probs, weight, scale)
        gx = _cross_entropy_backward(pc, target, wc, sc, ignore_index, label_smoothing)
        return gx.astype(probs.dtype, copy=False)

    def scaled_dot_product_attention(self, q, k, v, mask, scale, is_causal, keep) -> tuple:
        qc, kc, vc, mc, keepc = _compute_dtype(q, k, v, mask, keep)
        out, probs = _attention(qc, kc, vc, mc, scale, is_causal, keepc)
        return out.astype(q.dtype, copy=False), probs.astype(q.dtype, copy=False)

    def selective_scan(self, u, delta, A, B, C, D, z, delta_bias, delta_softplus) -> tuple:
        return cpu_scan.selective_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus)

    def selective_scan_backward(self, grad, grad_last, *inputs) -> tuple:
        return cpu_scan.selective_scan_backward(grad, grad_last, *inputs)


def _blas_ready(m: np.ndarray) -> np.ndarray:
    """``m`` unchanged when each of its matrices is C- or Fortran-ordered, else a copy."""
    item = m.itemsize
    if m.strides[-1] == item or m.strides[-2] == item:
        return m
    return np.ascontiguousarray(m)


def _shifted(x: np.ndarray, axis: int) -> np.ndarray:
    """``x - max(x, axis)``. ``fmax`` skips NumPy's NaN checks in the reduction loop (~15%
    faster over short rows); a NaN still turns its whole row to NaN through the sum."""
    return x - np.fmax.reduce(x, axis=axis, keepdims=True)


def _sum_keepdims(e: np.ndarray, axis: int) -> np.ndarray:
    """``np.sum(e, axis, keepdims=True)``; over a short last axis (<= 1024, where np.sum's
    pairwise blocks don't apply anyway) ``einsum``'s row sums are 3-4x faster."""
    if e.ndim and axis % e.ndim == e.ndim - 1 and 0 < e.shape[-1] <= 1024 \
            and e.dtype in _FAST_NORM:
        return np.einsum("...i->...", e)[..., None]
    return np.sum(e, axis=axis, keepdims=True)


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = _shifted(x, axis)
    np.exp(shifted, out=shifted)
    shifted /= _sum_keepdims(shifted, axis)
    return shifted


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = _shifted(x, axis)
    shifted -= np.log(_sum_keepdims(np.exp(shifted), axis))
    return shifted


def _scatter_index(index: np.ndarray, axis: int) -> tuple:
    """Full index tuple addressing ``out[..., index[...], ...]`` for scatter along ``axis``."""
    grids = list(np.indices(index.shape, sparse=True))
    grids[axis] = index
    return tuple(grids)


# --- fused NN primitives (norms, losses, attention): the NumPy kernels. Convolution and
# pooling live in cpu_conv.py.


def _compute_dtype(*bufs: Any) -> list:
    """The buffers in a dtype NumPy computes well in: float16/bfloat16 become float32."""
    return [b.astype(np.float32) if b is not None and b.dtype in _HALF else b for b in bufs]


def _channel(v: np.ndarray, ndim: int) -> np.ndarray:
    """A per-channel vector (C,) shaped to broadcast against (N, C, ...)."""
    return v.reshape((-1,) + (1,) * (ndim - 2))


def _affine(y: np.ndarray, weight: Any, bias: Any) -> None:
    """``y = y * weight + bias`` in place (either may be None)."""
    if weight is not None:
        y *= weight
    if bias is not None:
        y += bias


def _soft_target(target, weight, label_smoothing) -> np.ndarray:
    """Class-probability targets, smoothed and weighted: q (M, C)."""
    q = target * (1.0 - label_smoothing) + label_smoothing / target.shape[1]
    return q * weight if weight is not None else q


def _cross_entropy(x, target, weight, ignore_index, label_smoothing) -> tuple:
    logp = _log_softmax(x, 1)
    n_classes = x.shape[1]
    if target.ndim == 2:  # class probabilities
        q = _soft_target(target, weight, label_smoothing)
        return -np.einsum("mc,mc->m", q, logp), np.exp(logp), np.ones(len(x), x.dtype)
    valid = target != ignore_index
    picked = np.where(valid, target, 0)
    loss = -np.take_along_axis(logp, picked[:, None], axis=1)[:, 0]
    counted = weight[picked] * valid if weight is not None else valid.astype(x.dtype)
    loss *= counted
    if label_smoothing:
        smooth = -(logp @ weight if weight is not None else logp.sum(axis=1)) * valid
        loss = (1.0 - label_smoothing) * loss + (label_smoothing / n_classes) * smooth
    return loss, np.exp(logp), counted


def _cross_entropy_backward(probs, target, weight, scale, ignore_index,
                            label_smoothing) -> np.ndarray:
    rows = np.broadcast_to(scale, probs.shape[:1])
    if target.ndim == 2:
        q = _soft_target(target, weight, label_smoothing)
        return (probs * q.sum(axis=1, keepdims=True) - q) * rows[:, None]
    eps, n_classes = label_smoothing, probs.shape[1]
    valid = target != ignore_index
    picked = np.where(valid, target, 0)
    hit = weight[picked] if weight is not None else 1.0
    row = rows * valid  # ignored rows get no gradient
    total = (1.0 - eps) * hit
    if eps:
        total = total + eps / n_classes * (weight.sum() if weight is not None else n_classes)
    gx = probs * (total * row)[:, None]
    gx[np.arange(len(gx)), picked] -= (1.0 - eps) * hit * row
    if eps:
        gx -= (eps / n_classes) * (weight if weight is not None else 1.0) * row[:, None]
    return gx


@lru_cache(maxsize=16)
def _causal_bias(length: int, source: int, dtype: Any) -> np.ndarray:
    """(length, source): 0 where query i may see key j <= i, -inf above the diagonal."""
    bias = np.zeros((length, source), dtype=dtype)
    bias[~np.tri(length, source, dtype=bool)] = -np.inf
    bias.flags.writeable = False
    return bias


def _attention(q, k, v, mask, scale, is_causal, keep, native: bool = True) -> tuple:
    # scale the queries (L x E) rather than the scores (L x S); the softmax runs in place on
    # the scores buffer: in C without a mask (unless native is False), else in NumPy
    scores = np.matmul(q * q.dtype.type(scale), np.swapaxes(k, -1, -2))
    if not (native and mask is None and cpu_native.attention_softmax_(scores, is_causal)):
        scores = _attention_softmax(scores, mask, is_causal)
    out = np.matmul(scores * keep if keep is not None else scores, v)
    return out, scores


def _attention_softmax(scores, mask, is_causal) -> np.ndarray:
    """Attention probabilities from the scores, in place where it can (the NumPy twin of
    ``cpu_native.attention_softmax_``); masks are added in one broadcast pass."""
    if is_causal:
        scores += _causal_bias(*scores.shape[-2:], scores.dtype)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf) if mask.dtype == np.bool_ else scores + mask
    peak = np.max(scores, axis=-1, keepdims=True)
    peak[~np.isfinite(peak)] = 0  # rows with nothing to attend to give zeros, not NaN
    scores -= peak
    probs = np.exp(scores, out=scores)
    total = np.sum(probs, axis=-1, keepdims=True)
    total[total == 0] = 1
    probs *= np.reciprocal(total, out=total)
    return probs


for _name in _QUIET_METHODS:
    setattr(CPUBackend, _name, _quiet(getattr(CPUBackend, _name)))
