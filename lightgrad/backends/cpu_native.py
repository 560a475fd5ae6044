"""The C kernels of ``backends/native/`` as NumPy functions, for ``cpu.py`` and friends.

Each function here takes and returns NumPy arrays, like its NumPy twin (named in its
docstring), or returns ``None`` when the C kernels can't run it: the library is off or
failed to build (``native.library()`` is ``None``), or the dtype is not float32/float64.
The caller then runs the twin, so every call site reads ``native(...) or numpy(...)``:

    out = cpu_native.gelu(x)
    if out is None:
        out = cpu_gelu.gelu(x)

Inputs may be any layout: the kernels read C-contiguous copies of non-contiguous ones.

>>> import numpy as np
>>> y = gelu(np.array([0.0, 1.0], dtype=np.float32))
>>> y is None or [round(float(v), 4) for v in y] == [0.0, 0.8413]
True
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import native

native.declare(
    lg_gelu_f32="ppi", lg_gelu_f64="ppi", lg_gelu_backward_f32="pppi",
    lg_gelu_backward_f64="pppi", lg_gelu_and_grad_f32="pppi", lg_gelu_and_grad_f64="pppi",
    lg_erf_f32="ppi", lg_gelu_tanh_f32="ppi",
    lg_layer_norm_f32="ppppppiid", lg_layer_norm_f64="ppppppiid",
    lg_layer_norm_backward_f32="ppppppppii", lg_layer_norm_backward_f64="ppppppppii",
    lg_rms_norm_f32="ppppiid", lg_rms_norm_f64="ppppiid",
    lg_adamw_f32="ppppifffffff", lg_adamw_f64="ppppiddddddd",
    lg_softmax_f32="ppii", lg_softmax_f64="ppii",
    lg_log_softmax_f32="ppii", lg_log_softmax_f64="ppii",
    lg_attention_softmax_f32="piiii", lg_attention_softmax_f64="piiii",
    lg_cross_entropy_f32="ppppiiii", lg_cross_entropy_f64="ppppiiii",
    lg_cross_entropy_backward_f32="ppppiiii", lg_cross_entropy_backward_f64="ppppiiii",
)

_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}
_kernels: dict[tuple, Any] = {}
_ptr = native.pointer


def kernel(name: str, dtype: Any) -> Any:
    """The C function ``lg_<name>_<f32|f64>`` for ``dtype``, or None (see the module doc)."""
    key = (name, dtype)
    fn = _kernels.get(key, False)
    if fn is False:
        lib, suffix = native.library(), _SUFFIX.get(np.dtype(dtype))
        fn = getattr(lib, f"lg_{name}_{suffix}", None) if lib is not None and suffix \
            else None
        _kernels[key] = fn
    return fn


def _c(x: np.ndarray) -> np.ndarray:
    """``x`` itself when C-contiguous, else a C-contiguous copy."""
    return x if x.flags.c_contiguous else np.ascontiguousarray(x)


# --- GELU and erf (twins: cpu_gelu.py in float32, cpu.py's math.erf path in float64)

def _unary(name: str, x: np.ndarray) -> np.ndarray | None:
    fn = kernel(name, x.dtype)
    if fn is None:
        return None
    x = _c(x)
    y = np.empty(x.shape, x.dtype)
    fn(_ptr(y), _ptr(x), x.size)
    return y


def gelu(x: np.ndarray) -> np.ndarray | None:
    """Exact GELU ``x * Phi(x)`` (twin: ``cpu_gelu.gelu``, ``cpu._gelu``)."""
    return _unary("gelu", x)


def gelu_tanh(x: np.ndarray) -> np.ndarray | None:
    """GELU's tanh approximation, float32 only (twin: ``cpu._UNARY["gelu_tanh"]``)."""
    return _unary("gelu_tanh", x)


def erf(x: np.ndarray) -> np.ndarray | None:
    """erf, float32 only (twin: ``cpu_gelu.erf``)."""
    return _unary("erf", x)


def gelu_backward(x: np.ndarray, g: np.ndarray) -> np.ndarray | None:
    """``g * gelu'(x)``, ``g`` broadcast to ``x`` (twin: ``cpu_gelu.gelu_backward``)."""
    fn = kernel("gelu_backward", x.dtype)
    if fn is None or getattr(g, "dtype", None) != x.dtype:
        return None
    x, g = _c(x), _c(g if g.shape == x.shape else np.broadcast_to(g, x.shape))
    out = np.empty(x.shape, x.dtype)
    fn(_ptr(out), _ptr(x), _ptr(g), x.size)
    return out


def gelu_and_grad(x: np.ndarray) -> tuple | None:
    """``(gelu(x), gelu'(x))`` (twin: ``cpu_gelu.gelu_and_grad``)."""
    fn = kernel("gelu_and_grad", x.dtype)
    if fn is None:
        return None
    x = _c(x)
    y, d = np.empty(x.shape, x.dtype), np.empty(x.shape, x.dtype)
    fn(_ptr(y), _ptr(d), _ptr(x), x.size)
    return y, d


# --- LayerNorm and RMSNorm over the last n_axes dims (twins: cpu_norm.py, cpu.rms_norm)

def _norm_operands(x: np.ndarray, n_axes: int, *params: Any) -> tuple | None:
    """``(x as (rows, cols), params flat or None)`` when the C kernels take these, else
    None: float32/float64 throughout, not empty, at least one normalised axis."""
    if not (n_axes and x.size) or any(p is not None and p.dtype != x.dtype for p in params):
        return None
    cols = math.prod(x.shape[x.ndim - n_axes:])
    rows = x.size // cols
    flat = [None if p is None else _c(p).reshape(-1) for p in params]
    return _c(x).reshape(rows, cols), flat


def _stat_shape(x: np.ndarray, n_axes: int) -> tuple:
    return x.shape[:x.ndim - n_axes] + (1,) * n_axes


_opt = native.optional_pointer  # a missing weight or bias is NULL


def layer_norm(x: np.ndarray, weight: Any, bias: Any, n_axes: int, eps: float) -> tuple | None:
    """``(y, mean, rstd)`` as the ``layer_norm`` primitive (twin: ``cpu_norm.layer_norm``)."""
    fn = kernel("layer_norm", x.dtype)
    ops = fn and _norm_operands(x, n_axes, weight, bias)
    if not ops:
        return None
    x2, (w, b) = ops
    rows, cols = x2.shape
    y = np.empty(x2.shape, x.dtype)
    mean, rstd = np.empty(rows, x.dtype), np.empty(rows, x.dtype)
    fn(_ptr(y), _ptr(mean), _ptr(rstd), _ptr(x2), _opt(w), _opt(b), rows, cols, float(eps))
    stat = _stat_shape(x, n_axes)
    return y.reshape(x.shape), mean.reshape(stat), rstd.reshape(stat)


def layer_norm_backward(g: np.ndarray, x: np.ndarray, weight: Any, mean: np.ndarray,
                        rstd: np.ndarray, n_axes: int) -> tuple | None:
    """``(gx, gweight, gbias)`` (twin: ``cpu_norm.layer_norm_backward``)."""
    fn = kernel("layer_norm_backward", x.dtype)
    ops = fn and g.shape == x.shape and _norm_operands(x, n_axes, g, weight, mean, rstd)
    if not ops:
        return None
    x2, (g2, w, mu, rs) = ops
    rows, cols = x2.shape
    gx = np.empty(x2.shape, x.dtype)
    shape = x.shape[x.ndim - n_axes:]
    gb = np.zeros(shape, x.dtype)
    gw = np.zeros(shape, x.dtype) if w is not None else None
    fn(_ptr(gx), _opt(gw), _ptr(gb), _ptr(g2), _ptr(x2), _opt(w), _ptr(mu), _ptr(rs), rows,
       cols)
    return gx.reshape(x.shape), gw, gb


def rms_norm(x: np.ndarray, weight: Any, n_axes: int, eps: float) -> tuple | None:
    """``(y, rstd)`` as the ``rms_norm`` primitive (twin: ``CPUBackend.rms_norm``)."""
    fn = kernel("rms_norm", x.dtype)
    ops = fn and _norm_operands(x, n_axes, weight)
    if not ops:
        return None
    x2, (w,) = ops
    rows, cols = x2.shape
    y, rstd = np.empty(x2.shape, x.dtype), np.empty(rows, x.dtype)
    fn(_ptr(y), _ptr(rstd), _ptr(x2), _opt(w), rows, cols, float(eps))
    return y.reshape(x.shape), rstd.reshape(_stat_shape(x, n_axes))


# --- AdamW (twin: the NumPy lines of CPUBackend.adamw_step)

def adamw_step(param: np.ndarray, grad: np.ndarray, exp_avg: np.ndarray,
               exp_avg_sq: np.ndarray, lr: float, beta1: float, beta2: float, eps: float,
               weight_decay: float, step: int) -> bool:
    """One AdamW update in place; False (nothing done) when the C kernel can't take it:
    the three state arrays must be C-contiguous (they are updated where they lie)."""
    fn = kernel("adamw", param.dtype)
    if fn is None or not (param.flags.c_contiguous and exp_avg.flags.c_contiguous and
                          exp_avg_sq.flags.c_contiguous) or \
            not param.dtype == grad.dtype == exp_avg.dtype == exp_avg_sq.dtype or \
            not param.shape == grad.shape == exp_avg.shape == exp_avg_sq.shape:
        return False
    grad = _c(grad)
    lr, beta1, beta2 = float(lr), float(beta1), float(beta2)  # NumPy scalars too
    fn(_ptr(param), _ptr(grad), _ptr(exp_avg), _ptr(exp_avg_sq), param.size,
       1 - lr * float(weight_decay), 1 - beta1, beta2, 1 - beta2,
       math.sqrt(1 - beta2 ** step), float(eps), lr / (1 - beta1 ** step))
    return True


# --- softmax along the last axis (twins: cpu._softmax, cpu._log_softmax, cpu._attention)

def _rows_kernel(name: str, x: np.ndarray, axis: int) -> np.ndarray | None:
    fn = kernel(name, x.dtype)
    if fn is None or x.ndim == 0 or axis % x.ndim != x.ndim - 1:
        return None
    x = _c(x)
    y = np.empty(x.shape, x.dtype)
    cols = x.shape[-1]
    fn(_ptr(y), _ptr(x), x.size // cols if cols else 0, cols)
    return y


def softmax(x: np.ndarray, axis: int) -> np.ndarray | None:
    """Softmax along the last axis (other axes: None)."""
    return _rows_kernel("softmax", x, axis)


def log_softmax(x: np.ndarray, axis: int) -> np.ndarray | None:
    """Log-softmax along the last axis (other axes: None)."""
    return _rows_kernel("log_softmax", x, axis)


def attention_softmax_(scores: np.ndarray, is_causal: bool) -> bool:
    """Attention's softmax in place over C-contiguous scores (..., L, S), the causal mask
    applied on the way; False (nothing done) when the C kernel can't take them."""
    fn = kernel("attention_softmax", scores.dtype)
    if fn is None or scores.ndim < 2 or not scores.flags.c_contiguous or \
            not scores.flags.writeable:
        return False
    length, source = scores.shape[-2:]
    fn(_ptr(scores), scores.size // source if source else 0, length, source, int(is_causal))
    return True


# --- cross-entropy against class indices (twins: cpu._cross_entropy and its backward)

def _class_targets(x: np.ndarray, target: np.ndarray, weight: Any,
                   label_smoothing: float) -> bool:
    """The case the C kernels cover: (M, C) logits, (M,) int64 classes, no class weights,
    no label smoothing."""
    return (weight is None and not label_smoothing and x.ndim == 2 and target.ndim == 1 and
            target.dtype == np.int64 and len(target) == len(x))


def cross_entropy(x: np.ndarray, target: np.ndarray, weight: Any, ignore_index: int,
                  label_smoothing: float) -> tuple | None:
    """``(loss, probs, counted)`` as the ``cross_entropy`` primitive."""
    fn = kernel("cross_entropy", x.dtype)
    if fn is None or not _class_targets(x, target, weight, label_smoothing):
        return None
    x, target = _c(x), _c(target)
    rows, cols = x.shape
    loss, counted = np.empty(rows, x.dtype), np.empty(rows, x.dtype)
    probs = np.empty(x.shape, x.dtype)
    fn(_ptr(loss), _ptr(probs), _ptr(counted), _ptr(x), _ptr(target), rows, cols,
       int(ignore_index))
    return loss, probs, counted


def cross_entropy_backward(probs: np.ndarray, target: np.ndarray, weight: Any,
                           scale: np.ndarray, ignore_index: int,
                           label_smoothing: float) -> np.ndarray | None:
    """d loss / d logits as the ``cross_entropy_backward`` primitive."""
    fn = kernel("cross_entropy_backward", probs.dtype)
    if fn is None or not _class_targets(probs, target, weight, label_smoothing) or \
            scale.dtype != probs.dtype or scale.shape not in ((), (len(probs),)):
        return None
    probs, target, scale = _c(probs), _c(target), _c(scale)
    gx = np.empty(probs.shape, probs.dtype)
    fn(_ptr(gx), _ptr(probs), _ptr(target), _ptr(scale), int(scale.ndim == 1), *probs.shape,
       int(ignore_index))
    return gx


def first(fast: Any, slow: Any) -> Any:
    """A function running ``fast(*args)`` (a kernel here) and, when that gives ``None``,
    ``slow(*args)`` (its NumPy twin)."""
    def run(*args: Any) -> Any:
        out = fast(*args)
        return slow(*args) if out is None else out
    run.__name__ = getattr(slow, "__name__", "run")
    return run
