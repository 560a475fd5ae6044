"""Reductions: sum, mean, prod, amax/amin (max/min values), cumsum.

``axes`` are normalised by the Tensor methods; each Function gets a tuple of axes.

>>> import lightgrad as lg
>>> x = lg.tensor([[1.0, 5.0], [3.0, 2.0]], requires_grad=True)
>>> x.amax(dim=1).sum().backward(); x.grad
tensor([[0., 1.],
        [1., 0.]])
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from .common import kept_shape, wrap


def _expand_back(g, ctx):
    """Broadcast a reduced gradient back over the reduced axes."""
    if not ctx.keepdim:
        g = g.reshape(kept_shape(ctx.shape, ctx.axes))
    return g.expand(ctx.shape)


class Sum(Function):
    @staticmethod
    def forward(ctx, x, axes, keepdim, dtype=None):
        buf, dev = x._data, x.device
        if ctx._record:
            ctx.shape, ctx.axes, ctx.keepdim = buf.shape, axes, keepdim
        return wrap(dev.backend.sum(buf, axes, keepdim, dtype), dev)

    @staticmethod
    def backward(ctx, g):
        return _expand_back(g, ctx), None, None, None


class Mean(Function):
    @staticmethod
    def forward(ctx, x, axes, keepdim):
        ctx.shape, ctx.axes, ctx.keepdim = x.shape, axes, keepdim
        ctx.count = int(np.prod([x.shape[a] for a in axes]))
        return wrap(x.device.backend.mean(x._data, axes, keepdim), x.device)

    @staticmethod
    def backward(ctx, g):
        return _expand_back(g / ctx.count, ctx), None, None


class Prod(Function):
    @staticmethod
    def forward(ctx, x, axes, keepdim, dtype=None):
        ctx.shape, ctx.axes, ctx.keepdim = x.shape, axes, keepdim
        out = wrap(x.device.backend.prod(x._data, axes, keepdim, dtype), x.device)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_tensors
        g = _expand_back(g, ctx)
        if not (x == 0).any().item():
            return g * _expand_back(out, ctx) / x, None, None, None
        # With zeros, d prod / d x_i is the product of the other elements: out / x_i where
        # x_i != 0 (0 when another element is zero). Where x_i == 0 it is the product of the
        # nonzero rest times the other zero if there are two (written as a sum of the zeros
        # minus x_i, so the second derivative is right too), and 0 with three or more.
        zero = x == 0
        rest = x.masked_fill(zero, 1.0).prod(ctx.axes, keepdim=True)
        count = zero.sum(ctx.axes, keepdim=True)
        other_zero = x.masked_fill(zero.logical_not(), 0.0).sum(ctx.axes, keepdim=True) - x
        at_zero = rest * ((count == 1) + (count == 2) * other_zero)
        others = at_zero.where(zero, _expand_back(out, ctx) / x.masked_fill(zero, 1.0))
        return g * others, None, None, None


class _Extreme(Function):
    """amax/amin: the gradient is shared evenly between tied extreme values."""

    op = ""

    @classmethod
    def forward(cls, ctx, x, axes, keepdim):
        if x.numel() == 0:
            raise RuntimeError(f"{cls.op}: cannot reduce an empty tensor of shape "
                               f"{tuple(x.shape)}")
        ctx.shape, ctx.axes, ctx.keepdim = x.shape, axes, keepdim
        out = wrap(getattr(x.device.backend, cls.op)(x._data, axes, keepdim), x.device)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved_tensors
        hit = x == _expand_back(out, ctx)
        share = hit / hit.sum(dim=ctx.axes, keepdim=True)
        return _expand_back(g, ctx) * share, None, None


class Amax(_Extreme):
    op = "amax"


class Amin(_Extreme):
    op = "amin"


class Cumsum(Function):
    @staticmethod
    def forward(ctx, x, axis):
        ctx.axis = axis
        return wrap(x.device.backend.cumsum(x._data, axis), x.device)

    @staticmethod
    def backward(ctx, g):
        return g.flip(ctx.axis).cumsum(ctx.axis).flip(ctx.axis), None
