"""Convolution: ``conv1d``, ``conv2d`` and their transposes as fused ops.

Three ``Function``s cover everything, because convolution is bilinear in (input, weight):
``Conv2d`` (y = x * w), ``Conv2dInputGrad`` (dx from dy and w: a transposed convolution)
and ``Conv2dWeightGrad`` (dw from dy and x). The backward of each is written with the other
two, so gradients of any order are exact. 1-d convolution is 2-d convolution with height 1.

>>> import lightgrad as lg
>>> x = lg.ones(1, 1, 3, 3, requires_grad=True)
>>> y = conv2d(x, lg.ones(1, 1, 2, 2))
>>> y.tolist()
[[[[4.0, 4.0], [4.0, 4.0]]]]
>>> y.sum().backward(); x.grad[0, 0]
tensor([[1., 2., 1.],
        [2., 4., 2.],
        [1., 2., 1.]])
"""
from __future__ import annotations

from typing import Any

from ..autograd import Function
from ..tensor import Tensor
from .common import describe, same_device, wrap

# geom = (stride, padding, dilation, groups): stride/dilation (h, w), padding ((t, b), (l, r))


class Conv2d(Function):
    @staticmethod
    def forward(ctx, x, w, bias, geom):
        ctx.geom = geom
        ctx.save_for_backward(x, w)
        b = bias._data if bias is not None else None
        return wrap(x.device.backend.conv2d(x._data, w._data, b, *geom), x.device)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        gx = Conv2dInputGrad.apply(g, w, x.shape, ctx.geom) if need_x else None
        gw = Conv2dWeightGrad.apply(g, x, w.shape, ctx.geom) if need_w else None
        gb = g.sum(dim=(0, 2, 3)) if need_b else None
        return gx, gw, gb, None


class Conv2dInputGrad(Function):
    """dx = the transposed convolution of ``g`` by ``w``, giving a tensor of ``input_shape``."""

    @staticmethod
    def forward(ctx, g, w, input_shape, geom):
        ctx.geom = geom
        ctx.save_for_backward(g, w)
        buf = g.device.backend.conv2d_backward_input(g._data, w._data, tuple(input_shape),
                                                     *geom)
        return wrap(buf, g.device)

    @staticmethod
    def backward(ctx, gg):
        g, w = ctx.saved_tensors
        dg = Conv2d.apply(gg, w, None, ctx.geom) if ctx.needs_input_grad[0] else None
        dw = Conv2dWeightGrad.apply(g, gg, w.shape, ctx.geom) if ctx.needs_input_grad[1] \
            else None
        return dg, dw, None, None


class Conv2dWeightGrad(Function):
    """dw = the correlation of the output gradient ``g`` with the input ``x``."""

    @staticmethod
    def forward(ctx, g, x, weight_shape, geom):
        ctx.geom = geom
        ctx.save_for_backward(g, x)
        buf = g.device.backend.conv2d_backward_weight(g._data, x._data, tuple(weight_shape),
                                                      *geom)
        return wrap(buf, g.device)

    @staticmethod
    def backward(ctx, gg):
        g, x = ctx.saved_tensors
        dg = Conv2d.apply(x, gg, None, ctx.geom) if ctx.needs_input_grad[0] else None
        dx = Conv2dInputGrad.apply(g, gg, x.shape, ctx.geom) if ctx.needs_input_grad[1] \
            else None
        return dg, dx, None, None


# ----------------------------------------------------------------------------- arguments


def int_tuple(op: str, name: str, value: Any, n: int, minimum: int = 1) -> tuple[int, ...]:
    """An int or a sequence of ``n`` ints (each >= minimum) as a tuple of ``n`` ints."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,) * n
    if len(items) != n or not all(isinstance(v, int) and not isinstance(v, bool)
                                  for v in items):
        raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    if any(v < minimum for v in items):
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return items


def _check_operands(op: str, input: Any, weight: Any, bias: Any, dims: int) -> None:
    spatial = "(N, C, L)" if dims == 1 else "(N, C, H, W)"
    for name, t in (("input", input), ("weight", weight)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    if input.ndim != dims + 2:
        raise ValueError(f"{op}: expected input with {dims + 2} dims {spatial}, got shape "
                         f"{tuple(input.shape)}")
    if weight.ndim != dims + 2:
        raise ValueError(f"{op}: expected weight with {dims + 2} dims, got shape "
                         f"{tuple(weight.shape)}")
    tensors = [input, weight] + ([bias] if bias is not None else [])
    same_device(op, tensors)
    if not input.dtype.is_floating_point or any(t.dtype is not input.dtype for t in tensors):
        shown = ", ".join(describe(t) for t in tensors)
        raise TypeError(f"{op}: input, weight and bias must share one floating-point dtype, "
                        f"got {shown}")


def _check_groups(op: str, groups: Any, in_channels: int, out_channels: int,
                  weight: Tensor, input: Tensor, per_group_in: int) -> None:
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"{op}: groups={groups} must divide both in_channels "
                         f"({in_channels}) and out_channels ({out_channels})")
    if per_group_in * groups != in_channels:
        raise ValueError(f"{op}: input of shape {tuple(input.shape)} has {input.shape[1]} "
                         f"channels, but weight of shape {tuple(weight.shape)} with "
                         f"groups={groups} expects {per_group_in * groups}")


def _padding(op: str, padding: Any, kernel: tuple, stride: tuple, dilation: tuple) -> tuple:
    """((before, after), ...) per spatial dim from an int, a tuple, 'valid' or 'same'."""
    if padding == "valid":
        return tuple((0, 0) for _ in kernel)
    if padding == "same":
        if any(s != 1 for s in stride):
            raise ValueError(f"{op}: padding='same' is not supported for strided "
                             f"convolutions (stride={stride})")
        total = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in total)
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be an int, a tuple, 'valid' or 'same', got "
                         f"{padding!r}")
    return tuple((p, p) for p in int_tuple(op, "padding", padding, len(kernel), 0))


def _check_fits(op: str, input: Tensor, kernel: tuple, pads: tuple, dilation: tuple) -> None:
    padded = tuple(n + a + b for n, (a, b) in zip(input.shape[2:], pads))
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    if any(s > p for s, p in zip(span, padded)):
        raise ValueError(f"{op}: kernel size {kernel} (dilated: {span}) is larger than the "
                         f"padded input size {padded} (input shape {tuple(input.shape)})")


def _conv(op: str, input: Tensor, weight: Tensor, bias: Tensor | None, stride: Any,
          padding: Any, dilation: Any, groups: int, dims: int) -> Tensor:
    _check_operands(op, input, weight, bias, dims)
    out_channels = weight.shape[0]
    _check_groups(op, groups, input.shape[1], out_channels, weight, input, weight.shape[1])
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise ValueError(f"{op}: bias must have shape ({out_channels},), got "
                         f"{tuple(bias.shape)}")
    kernel = tuple(weight.shape[2:])
    stride = int_tuple(op, "stride", stride, dims)
    dilation = int_tuple(op, "dilation", dilation, dims)
    pads = _padding(op, padding, kernel, stride, dilation)
    _check_fits(op, input, kernel, pads, dilation)
    if dims == 2:
        return Conv2d.apply(input, weight, bias, (stride, pads, dilation, groups))
    geom = ((1,) + stride, ((0, 0),) + pads, (1,) + dilation, groups)
    out = Conv2d.apply(input.unsqueeze(2), weight.unsqueeze(2), bias, geom)
    return out.squeeze(2)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
           padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Tensor:
    """2-d cross-correlation of input (N, C, H, W) with weight (O, C // groups, kh, kw).

    ``padding`` is an int, a pair, ``'valid'`` or ``'same'``; ``groups == C`` gives a
    depthwise convolution.

    >>> import lightgrad as lg
    >>> conv2d(lg.ones(2, 3, 8, 8), lg.ones(4, 3, 3, 3), padding="same").shape
    (2, 4, 8, 8)
    """
    return _conv("conv2d", input, weight, bias, stride, padding, dilation, groups, 2)


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
           padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Tensor:
    """1-d cross-correlation of input (N, C, L) with weight (O, C // groups, k).

    >>> import lightgrad as lg
    >>> conv1d(lg.ones(1, 2, 5), lg.ones(3, 2, 3), stride=2).shape
    (1, 3, 2)
    """
    return _conv("conv1d", input, weight, bias, stride, padding, dilation, groups, 1)


def _conv_transpose(op: str, input: Tensor, weight: Tensor, bias: Tensor | None, stride: Any,
                    padding: Any, output_padding: Any, groups: int, dilation: Any,
                    dims: int) -> Tensor:
    _check_operands(op, input, weight, bias, dims)
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    in_channels, out_channels = weight.shape[0], weight.shape[1] * groups
    if input.shape[1] != in_channels or in_channels % groups:
        raise ValueError(f"{op}: input of shape {tuple(input.shape)} does not match weight "
                         f"of shape {tuple(weight.shape)} (in_channels, out_channels // "
                         f"groups, ...) with groups={groups}")
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise ValueError(f"{op}: bias must have shape ({out_channels},), got "
                         f"{tuple(bias.shape)}")
    kernel = tuple(weight.shape[2:])
    stride = int_tuple(op, "stride", stride, dims)
    dilation = int_tuple(op, "dilation", dilation, dims)
    pad = int_tuple(op, "padding", padding, dims, 0)
    extra = int_tuple(op, "output_padding", output_padding, dims, 0)
    if any(e >= max(s, d) for e, s, d in zip(extra, stride, dilation)):
        raise ValueError(f"{op}: output_padding {extra} must be smaller than stride {stride} "
                         f"or dilation {dilation}")
    size = tuple((n - 1) * s - 2 * p + d * (k - 1) + e + 1 for n, s, p, d, k, e in
                 zip(input.shape[2:], stride, pad, dilation, kernel, extra))
    if any(n <= 0 for n in size):
        raise ValueError(f"{op}: output size {size} is not positive for input shape "
                         f"{tuple(input.shape)} and weight shape {tuple(weight.shape)}")
    pads = tuple((p, p) for p in pad)
    x, w = (input, weight) if dims == 2 else (input.unsqueeze(2), weight.unsqueeze(2))
    if dims == 1:
        stride, pads, dilation, size = (1,) + stride, ((0, 0),) + pads, (1,) + dilation, \
            (1,) + size
    out = Conv2dInputGrad.apply(x, w, (input.shape[0], out_channels) + size,
                                (stride, pads, dilation, groups))
    if bias is not None:
        out = out + bias.reshape(-1, 1, 1)
    return out if dims == 2 else out.squeeze(2)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None,
                     stride: Any = 1, padding: Any = 0, output_padding: Any = 0,
                     groups: int = 1, dilation: Any = 1) -> Tensor:
    """Transposed 2-d convolution (the gradient of ``conv2d`` w.r.t. its input) with weight
    (C_in, C_out // groups, kh, kw).

    >>> import lightgrad as lg
    >>> conv_transpose2d(lg.ones(1, 4, 3, 3), lg.ones(4, 2, 2, 2), stride=2).shape
    (1, 2, 6, 6)
    """
    return _conv_transpose("conv_transpose2d", input, weight, bias, stride, padding,
                           output_padding, groups, dilation, 2)


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None,
                     stride: Any = 1, padding: Any = 0, output_padding: Any = 0,
                     groups: int = 1, dilation: Any = 1) -> Tensor:
    """Transposed 1-d convolution with weight (C_in, C_out // groups, k).

    >>> import lightgrad as lg
    >>> conv_transpose1d(lg.ones(1, 4, 3), lg.ones(4, 2, 3)).shape
    (1, 2, 5)
    """
    return _conv_transpose("conv_transpose1d", input, weight, bias, stride, padding,
                           output_padding, groups, dilation, 1)
