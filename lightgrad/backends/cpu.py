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
from typing import Any

import ml_dtypes
import numpy as np

from .base import Backend

_HALF = (np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16))
_SQRT_HALF = 1.0 / math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_erf64 = np.frompyfunc(math.erf, 1, 1)


def _erf(x: np.ndarray) -> np.ndarray:
    """erf without SciPy: exact (math.erf) in float64, Abramowitz-Stegun 7.1.26 otherwise
    (absolute error below 1.5e-7, under float32's resolution)."""
    if x.dtype == np.float64:
        return np.asarray(_erf64(x), dtype=np.float64)  # 0-d: frompyfunc gives a float
    a = np.abs(x)
    t = 1.0 / (1.0 + np.float32(0.3275911) * a)
    poly = t * (np.float32(0.254829592) + t * (np.float32(-0.284496736) + t * (
        np.float32(1.421413741) + t * (np.float32(-1.453152027) + t * np.float32(1.061405429)))))
    return np.copysign(1.0 - poly * np.exp(-a * a), x).astype(x.dtype, copy=False)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # exp(-|x|) never overflows; the two branches join into one stable formula.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


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
    "gelu": _in_float32(lambda x: x * (0.5 * (1.0 + _erf(x * x.dtype.type(_SQRT_HALF))))),
    "gelu_tanh": _in_float32(lambda x: 0.5 * x * (1.0 + np.tanh(
        x.dtype.type(_SQRT_2_OVER_PI) * (x + x.dtype.type(0.044715) * x * x * x)))),
    "silu": _in_float32(lambda x: x * _sigmoid(x)),
    "softplus": _in_float32(lambda x: np.logaddexp(x, x.dtype.type(0))),
    "erf": _in_float32(_erf),
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
        return np.ascontiguousarray(x)

    def copy(self, x) -> np.ndarray:
        return np.array(x, order="C", copy=True)

    def is_contiguous(self, x) -> bool:
        return x.flags.c_contiguous

    # --- elementwise
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

    def permute(self, x, axes) -> np.ndarray:
        return x.transpose(axes)

    def expand(self, x, shape) -> np.ndarray:
        return np.broadcast_to(x, shape)

    def getitem(self, x, index) -> np.ndarray:
        return np.asarray(x[index])

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
        np.add.at(out, (slice(None),) * axis + (index,), src)
        return out

    def index_select(self, x, axis, index) -> np.ndarray:
        return np.take(x, index, axis=axis)

    # --- linear algebra and fused NN ops
    def matmul(self, a, b) -> np.ndarray:
        if a.dtype in _HALF:
            return np.matmul(a.astype(np.float32), b.astype(np.float32)).astype(a.dtype)
        return np.matmul(a, b)

    def softmax(self, x, axis) -> np.ndarray:
        return _in_float32(_softmax)(x, axis)

    def log_softmax(self, x, axis) -> np.ndarray:
        return _in_float32(_log_softmax)(x, axis)

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


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - np.max(x, axis=axis, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= np.sum(shifted, axis=axis, keepdims=True)
    return shifted


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _scatter_index(index: np.ndarray, axis: int) -> tuple:
    """Full index tuple addressing ``out[..., index[...], ...]`` for scatter along ``axis``."""
    grids = list(np.indices(index.shape, sparse=True))
    grids[axis] = index
    return tuple(grids)
