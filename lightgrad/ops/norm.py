"""Normalisation layers as fused ops: ``layer_norm``, ``rms_norm``, ``batch_norm``.

Forward is one backend primitive; backward uses the closed form
``dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))`` (``dxhat = dy * weight``)
written with Tensor ops. Under ``create_graph`` the statistics are recomputed from x with
Tensor ops, so second derivatives see their dependence on x too.

>>> import lightgrad as lg
>>> [round(v, 4) for v in layer_norm(lg.tensor([[1.0, 3.0]]), (2,))[0].tolist()]
[-1.0, 1.0]
"""
from __future__ import annotations

from typing import Any

import ml_dtypes

from ..autograd import Function, is_grad_enabled, no_grad
from ..tensor import Tensor
from .common import describe, same_device, wrap


def _buf(t: Tensor | None) -> Any:
    return t._data if t is not None else None


def _normalized_grad(g: Tensor, xhat: Tensor, rstd: Tensor, weight: Tensor | None,
                     axes: tuple, center: bool) -> Tensor:
    """dx of ``y = xhat * weight`` where ``xhat`` is x normalised over ``axes``."""
    gxhat = g * weight if weight is not None else g
    inner = gxhat - xhat * (gxhat * xhat).mean(dim=axes, keepdim=True)
    if center:
        inner = inner - gxhat.mean(dim=axes, keepdim=True)
    return inner * rstd


def _affine_grads(ctx: Any, g: Tensor, xhat: Tensor, axes: tuple, shape: tuple) -> tuple:
    """Gradients of weight and bias (summed over ``axes``, reshaped to ``shape``)."""
    need_w, need_b = ctx.needs_input_grad[1:3]
    gw = (g * xhat).sum(dim=axes).reshape(shape) if need_w else None
    gb = g.sum(dim=axes).reshape(shape) if need_b else None
    return gw, gb


class LayerNorm(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, n_axes, eps):
        y, mean, rstd = x.device.backend.layer_norm(x._data, _buf(weight), _buf(bias),
                                                    n_axes, eps)
        if ctx._record:
            ctx.n_axes, ctx.eps = n_axes, eps
            ctx.save_for_backward(x, weight, wrap(mean, x.device), wrap(rstd, x.device))
        return wrap(y, x.device)

    @staticmethod
    def backward(ctx, g):
        x, weight, mean, rstd = ctx.saved_tensors
        if not is_grad_enabled():  # first-order backward: one fused primitive
            gx, gw, gb = x.device.backend.layer_norm_backward(
                g._data, x._data, _buf(weight), mean._data, rstd._data, ctx.n_axes)
            need = ctx.needs_input_grad
            return (wrap(gx, x.device) if need[0] else None,
                    wrap(gw, x.device) if need[1] else None,
                    wrap(gb, x.device) if need[2] else None, None, None)
        # create_graph: Tensor ops, with the statistics as functions of x
        axes = tuple(range(x.ndim - ctx.n_axes, x.ndim))
        mean = x.mean(dim=axes, keepdim=True)
        rstd = (x.var(dim=axes, correction=0, keepdim=True) + ctx.eps).rsqrt()
        xhat = (x - mean) * rstd
        gx = _normalized_grad(g, xhat, rstd, weight, axes, True) \
            if ctx.needs_input_grad[0] else None
        lead = tuple(range(x.ndim - ctx.n_axes))
        gw, gb = _affine_grads(ctx, g, xhat, lead, x.shape[x.ndim - ctx.n_axes:])
        return gx, gw, gb, None, None


class RMSNorm(Function):
    @staticmethod
    def forward(ctx, x, weight, n_axes, eps):
        y, rstd = x.device.backend.rms_norm(x._data, _buf(weight), n_axes, eps)
        ctx.n_axes, ctx.eps = n_axes, eps
        ctx.save_for_backward(x, weight, wrap(rstd, x.device))
        return wrap(y, x.device)

    @staticmethod
    def backward(ctx, g):
        x, weight, rstd = ctx.saved_tensors
        axes = tuple(range(x.ndim - ctx.n_axes, x.ndim))
        if is_grad_enabled():
            rstd = ((x * x).mean(dim=axes, keepdim=True) + ctx.eps).rsqrt()
        xhat = x * rstd
        gx = _normalized_grad(g, xhat, rstd, weight, axes, False) \
            if ctx.needs_input_grad[0] else None
        gw = None
        if ctx.needs_input_grad[1]:
            lead = tuple(range(x.ndim - ctx.n_axes))
            gw = (g * xhat).sum(dim=lead).reshape(weight.shape)
        return gx, gw, None, None


class BatchNorm(Function):
    """``training=True``: ``mean``/``var`` are the batch statistics of x (so backward
    differentiates through them); otherwise they are constants (running statistics)."""

    @staticmethod
    def forward(ctx, x, weight, bias, mean, var, eps, training):
        y = x.device.backend.batch_norm(x._data, _buf(weight), _buf(bias), mean._data,
                                        var._data, eps)
        ctx.eps, ctx.training = eps, training
        ctx.save_for_backward(x, weight, mean, var)
        return wrap(y, x.device)

    @staticmethod
    def backward(ctx, g):
        x, weight, mean, var = ctx.saved_tensors
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, -1) + (1,) * (x.ndim - 2)
        if ctx.training and is_grad_enabled():
            mean = x.mean(dim=axes)
            var = x.var(dim=axes, correction=0)
        rstd = (var + ctx.eps).rsqrt().reshape(shape)
        xhat = (x - mean.reshape(shape)) * rstd
        gx = None
        if ctx.needs_input_grad[0]:
            w = weight.reshape(shape) if weight is not None else None
            if ctx.training:
                gx = _normalized_grad(g, xhat, rstd, w, axes, True)
            else:
                gx = g * (rstd * w if w is not None else rstd)
        gw, gb = _affine_grads(ctx, g, xhat, axes, (x.shape[1],))
        return gx, gw, gb, None, None, None, None


# ----------------------------------------------------------------------------- public API


def _check_float(op: str, name: str, t: Any) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    if not t.dtype.is_floating_point:
        raise TypeError(f"{op}: {name} must be floating point, got {describe(t)}")


def _check_param(op: str, name: str, t: Any, input: Tensor, shape: tuple) -> None:
    if t is None:
        return
    _check_float(op, name, t)
    same_device(op, (input, t))
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"{op}: {name} must have shape {tuple(shape)}, got "
                         f"{tuple(t.shape)} (input shape {tuple(input.shape)})")
    if t.dtype is not input.dtype:
        raise TypeError(f"{op}: {name} dtype {t.dtype.name} does not match the input dtype "
                        f"{input.dtype.name}")


def _trailing(op: str, input: Any, normalized_shape: Any) -> tuple:
    _check_float(op, "input", input)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else \
        tuple(normalized_shape)
    if not shape or tuple(input.shape[input.ndim - len(shape):]) != shape or \
            len(shape) > input.ndim:
        raise ValueError(f"{op}: expected input with trailing shape {shape} "
                         f"(normalized_shape), got shape {tuple(input.shape)}")
    return shape


def layer_norm(input: Tensor, normalized_shape: Any, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` dims to mean 0 and variance 1
    (biased), then scale by ``weight`` and shift by ``bias``.

    >>> import lightgrad as lg
    >>> layer_norm(lg.randn(4, 3, 8), 8, lg.ones(8), lg.zeros(8)).shape
    (4, 3, 8)
    """
    shape = _trailing("layer_norm", input, normalized_shape)
    _check_param("layer_norm", "weight", weight, input, shape)
    _check_param("layer_norm", "bias", bias, input, shape)
    return LayerNorm.apply(input, weight, bias, len(shape), float(eps))


def rms_norm(input: Tensor, normalized_shape: Any, weight: Tensor | None = None,
             eps: float | None = None) -> Tensor:
    """``x / sqrt(mean(x**2) + eps) * weight`` over the trailing ``normalized_shape`` dims;
    ``eps`` defaults to the machine epsilon of the input dtype, as in PyTorch.

    >>> import lightgrad as lg
    >>> rms_norm(lg.tensor([[3.0, 4.0]]), 2, eps=0.0)
    tensor([[0.8485, 1.1314]])
    """
    shape = _trailing("rms_norm", input, normalized_shape)
    _check_param("rms_norm", "weight", weight, input, shape)
    if eps is None:
        eps = float(ml_dtypes.finfo(input.dtype.np).eps)
    return RMSNorm.apply(input, weight, len(shape), float(eps))


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise each channel (dim 1) of input (N, C, ...). In training, batch statistics
    are used and the running ones updated in place (``running_var`` with the unbiased
    variance); otherwise the running statistics are used.

    >>> import lightgrad as lg
    >>> mean, var = lg.zeros(2), lg.ones(2)
    >>> y = batch_norm(lg.tensor([[1.0, 2.0], [3.0, 6.0]]), mean, var, training=True)
    >>> mean
    tensor([0.2000, 0.4000])
    """
    op = "batch_norm"
    _check_float(op, "input", input)
    if input.ndim < 2:
        raise ValueError(f"{op}: expected input with at least 2 dims (N, C, ...), got shape "
                         f"{tuple(input.shape)}")
    channels = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_param(op, name, t, input, (channels,))
    if not training:
        if running_mean is None or running_var is None:
            raise ValueError(f"{op}: running_mean and running_var are required when "
                             "training=False")
        return BatchNorm.apply(input, weight, bias, running_mean, running_var, float(eps),
                               False)
    count = input.numel() // max(channels, 1)
    if count <= 1:
        raise ValueError(f"{op}: expected more than 1 value per channel when training, got "
                         f"input of shape {tuple(input.shape)}")
    mean, var = input.device.backend.batch_norm_stats(input._data)
    mean, var = wrap(mean, input.device), wrap(var, input.device)
    with no_grad():
        if running_mean is not None:
            running_mean.mul_(1 - momentum).add_(mean * momentum)
        if running_var is not None:
            running_var.mul_(1 - momentum).add_(var * (momentum * count / (count - 1)))
    return BatchNorm.apply(input, weight, bias, mean, var, float(eps), True)
