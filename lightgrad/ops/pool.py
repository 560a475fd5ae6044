"""Pooling: max and average pooling over windows, adaptive average pooling.

``MaxPool2d`` remembers where each maximum came from (PyTorch's flat ``h * W + w``
indices) and sends the gradient back there; ``AvgPool2d`` spreads it over the window.
Each backward is itself a ``Function`` whose backward is the forward op again (pooling is
linear once the argmax is fixed), so higher-order gradients are exact. 1-d pooling is 2-d
pooling with height 1; adaptive average pooling is two matmuls with averaging matrices.

>>> import lightgrad as lg
>>> x = lg.arange(16.0).reshape(1, 1, 4, 4)
>>> max_pool2d(x, 2)
tensor([[[[ 5.,  7.],
          [13., 15.]]]])
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Function
from ..tensor import Tensor
from .common import describe, wrap
from .conv import int_tuple


class MaxPool2d(Function):
    @staticmethod
    def forward(ctx, x, kernel, stride, padding, dilation, ceil_mode):
        values, indices = x.device.backend.max_pool2d(x._data, kernel, stride, padding,
                                                      dilation, ceil_mode)
        values, indices = wrap(values, x.device), wrap(indices, x.device)
        ctx.shape = x.shape
        ctx.save_for_backward(indices)
        ctx.mark_non_differentiable(indices)
        return values, indices

    @staticmethod
    def backward(ctx, g, _g_indices):
        (indices,) = ctx.saved_tensors
        return MaxPool2dBackward.apply(g, indices, ctx.shape), None, None, None, None, None


class MaxPool2dBackward(Function):
    """The gradient ``g`` of max pooling routed to the input positions in ``indices``."""

    @staticmethod
    def forward(ctx, g, indices, input_shape):
        ctx.save_for_backward(indices)
        buf = g.device.backend.max_pool2d_backward(g._data, indices._data, tuple(input_shape))
        return wrap(buf, g.device)

    @staticmethod
    def backward(ctx, gg):
        (indices,) = ctx.saved_tensors
        picked = gg.flatten(2).gather(2, indices.flatten(2)).reshape(indices.shape)
        return picked, None, None


class AvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, params):
        ctx.params, ctx.shape = params, x.shape
        return wrap(x.device.backend.avg_pool2d(x._data, *params), x.device)

    @staticmethod
    def backward(ctx, g):
        return AvgPool2dBackward.apply(g, ctx.shape, ctx.params), None


class AvgPool2dBackward(Function):
    """Each window's gradient divided by its divisor and spread over the window."""

    @staticmethod
    def forward(ctx, g, input_shape, params):
        ctx.params = params
        buf = g.device.backend.avg_pool2d_backward(g._data, tuple(input_shape), *params)
        return wrap(buf, g.device)

    @staticmethod
    def backward(ctx, gg):
        return AvgPool2d.apply(gg, ctx.params), None, None


# ----------------------------------------------------------------------------- arguments


def _check_input(op: str, input: Any, dims: int) -> None:
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    layout = "(N, C, L)" if dims == 1 else "(N, C, H, W)"
    if input.ndim != dims + 2:
        raise ValueError(f"{op}: expected input with {dims + 2} dims {layout}, got shape "
                         f"{tuple(input.shape)}")
    if not input.dtype.is_floating_point:
        raise TypeError(f"{op}: expected a floating-point input, got {describe(input)}")


def _window(op: str, input: Tensor, kernel_size: Any, stride: Any, padding: Any,
            dilation: Any, ceil_mode: bool, dims: int) -> tuple:
    """Validated (kernel, stride, padding, dilation) as 2-d tuples (height 1 for 1-d)."""
    kernel = int_tuple(op, "kernel_size", kernel_size, dims)
    stride = kernel if stride is None or stride == [] else int_tuple(op, "stride", stride,
                                                                     dims)
    padding = int_tuple(op, "padding", padding, dims, 0)
    dilation = int_tuple(op, "dilation", dilation, dims)
    for k, p, d in zip(kernel, padding, dilation):
        if p > (d * (k - 1) + 1) // 2:
            raise ValueError(f"{op}: padding {padding} must be at most half of the "
                             f"(dilated) kernel size {kernel}")
    sizes = []
    for n, k, s, p, d in zip(input.shape[2:], kernel, stride, padding, dilation):
        span = n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
        out = span // s + 1 if span >= 0 else 0
        if ceil_mode and out > 0 and (out - 1) * s >= n + p:
            out -= 1
        sizes.append(out)
    if any(n < 1 for n in sizes):
        raise ValueError(f"{op}: output size {tuple(sizes)} is too small: kernel {kernel} "
                         f"(dilation {dilation}, padding {padding}) does not fit input of "
                         f"shape {tuple(input.shape)}")
    if dims == 1:
        return (1,) + kernel, (1,) + stride, (0,) + padding, (1,) + dilation
    return kernel, stride, padding, dilation


def max_pool2d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               dilation: Any = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Any:
    """Max over ``kernel_size`` windows of input (N, C, H, W); ``stride`` defaults to the
    kernel size. With ``return_indices`` also the flat ``h * W + w`` index of each max.

    >>> import lightgrad as lg
    >>> max_pool2d(lg.ones(1, 1, 5, 5), 2, ceil_mode=True).shape
    (1, 1, 3, 3)
    """
    _check_input("max_pool2d", input, 2)
    window = _window("max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode, 2)
    values, indices = MaxPool2d.apply(input, *window, ceil_mode)
    return (values, indices) if return_indices else values


def max_pool1d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               dilation: Any = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Any:
    """Max over ``kernel_size`` windows of input (N, C, L).

    >>> import lightgrad as lg
    >>> max_pool1d(lg.tensor([[[1.0, 3.0, 2.0, 0.0]]]), 2)
    tensor([[[3., 2.]]])
    """
    _check_input("max_pool1d", input, 1)
    window = _window("max_pool1d", input, kernel_size, stride, padding, dilation, ceil_mode, 1)
    values, indices = MaxPool2d.apply(input.unsqueeze(2), *window, ceil_mode)
    values, indices = values.squeeze(2), indices.squeeze(2)
    return (values, indices) if return_indices else values


def _avg(op: str, input: Tensor, kernel_size: Any, stride: Any, padding: Any,
         ceil_mode: bool, count_include_pad: bool, divisor_override: Any, dims: int) -> Tensor:
    _check_input(op, input, dims)
    kernel, stride, padding, _ = _window(op, input, kernel_size, stride, padding, 1,
                                         ceil_mode, dims)
    if divisor_override is not None and (not isinstance(divisor_override, int) or
                                         divisor_override == 0):
        raise ValueError(f"{op}: divisor_override must be a non-zero int, got "
                         f"{divisor_override!r}")
    params = (kernel, stride, padding, bool(ceil_mode), bool(count_include_pad),
              divisor_override)
    x = input if dims == 2 else input.unsqueeze(2)
    out = AvgPool2d.apply(x, params)
    return out if dims == 2 else out.squeeze(2)


def avg_pool2d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:
    """Mean over ``kernel_size`` windows of input (N, C, H, W), PyTorch's divisor rules
    (``count_include_pad`` counts zero padding in the divisor).

    >>> import lightgrad as lg
    >>> avg_pool2d(lg.ones(1, 1, 4, 4), 2)
    tensor([[[[1., 1.],
              [1., 1.]]]])
    """
    return _avg("avg_pool2d", input, kernel_size, stride, padding, ceil_mode,
                count_include_pad, divisor_override, 2)


def avg_pool1d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """Mean over ``kernel_size`` windows of input (N, C, L).

    >>> import lightgrad as lg
    >>> avg_pool1d(lg.tensor([[[1.0, 3.0, 2.0, 0.0]]]), 2)
    tensor([[[2., 1.]]])
    """
    return _avg("avg_pool1d", input, kernel_size, stride, padding, ceil_mode,
                count_include_pad, None, 1)


def _averaging_matrix(n_in: int, n_out: int, like: Tensor) -> Tensor:
    """(n_out, n_in) matrix whose row i averages inputs floor(i*n/m) .. ceil((i+1)*n/m)-1."""
    i = np.arange(n_out)
    start = (i * n_in) // n_out
    end = -((-(i + 1) * n_in) // n_out)
    cols = np.arange(n_in)
    inside = (cols >= start[:, None]) & (cols < end[:, None])
    matrix = inside / (end - start)[:, None]
    return wrap(like.device.backend.from_numpy(matrix.astype(like.dtype.np)), like.device)


def _adaptive_sizes(op: str, input: Tensor, output_size: Any, dims: int) -> tuple:
    _check_input(op, input, dims)
    sizes = output_size if isinstance(output_size, (tuple, list)) else (output_size,) * dims
    if len(sizes) != dims:
        raise ValueError(f"{op}: output_size must be an int or a tuple of {dims}, got "
                         f"{output_size!r}")
    sizes = tuple(n if s is None else s for n, s in zip(input.shape[2:], sizes))
    if any(not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError(f"{op}: output_size must hold positive ints (or None), got "
                         f"{output_size!r}")
    return sizes


def adaptive_avg_pool2d(input: Tensor, output_size: Any) -> Tensor:
    """Average pooling to a fixed (Ho, Wo): window i spans floor(i*H/Ho) to ceil((i+1)*H/Ho).

    >>> import lightgrad as lg
    >>> adaptive_avg_pool2d(lg.ones(2, 3, 7, 5), (3, 2)).shape
    (2, 3, 3, 2)
    """
    ho, wo = _adaptive_sizes("adaptive_avg_pool2d", input, output_size, 2)
    rows = _averaging_matrix(input.shape[2], ho, input)
    cols = _averaging_matrix(input.shape[3], wo, input)
    return rows.matmul(input).matmul(cols.t())


def adaptive_avg_pool1d(input: Tensor, output_size: Any) -> Tensor:
    """Average pooling of input (N, C, L) to a fixed length.

    >>> import lightgrad as lg
    >>> adaptive_avg_pool1d(lg.tensor([[[1.0, 3.0, 2.0]]]), 1)
    tensor([[[2.]]])
    """
    (lo,) = _adaptive_sizes("adaptive_avg_pool1d", input, output_size, 1)
    return input.matmul(_averaging_matrix(input.shape[2], lo, input).t())
