"""Fused neural-network ops with their own backward: softmax and log_softmax.

>>> import lightgrad as lg
>>> lg.tensor([1.0, 1.0]).softmax(dim=0)
tensor([0.5000, 0.5000])
"""
from __future__ import annotations

from ..autograd import Function
from .common import float_input, wrap


class _SoftmaxFamily(Function):
    """softmax / log_softmax along ``axis``; both save their output for backward."""

    op = ""

    @classmethod
    def forward(cls, ctx, x, axis):
        y = wrap(getattr(x.device.backend, cls.op)(float_input(x), axis), x.device)
        ctx.axis = axis
        ctx.save_for_backward(y)
        return y


class Softmax(_SoftmaxFamily):
    op = "softmax"

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return y * (g - (g * y).sum(dim=ctx.axis, keepdim=True)), None


class LogSoftmax(_SoftmaxFamily):
    op = "log_softmax"

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g - y.exp() * g.sum(dim=ctx.axis, keepdim=True), None
