"""Matrix multiplication (batched, with broadcast batch dims).

``Tensor.matmul`` handles 1-D operands by adding and removing a dim, so ``MatMul`` only
sees operands with at least two dims.

>>> import lightgrad as lg
>>> a = lg.ones(2, 3, requires_grad=True)
>>> (a @ lg.ones(3, 4)).sum().backward(); a.grad
tensor([[4., 4., 4.],
        [4., 4., 4.]])
"""
from __future__ import annotations

from ..autograd import Function
from .common import binary_operands, unbroadcast, wrap


class MatMul(Function):
    @staticmethod
    def forward(ctx, a, b):
        x, y, dev, _ = binary_operands("matmul", a, b)
        ctx.save_for_backward(a, b)
        return wrap(dev.backend.matmul(x, y), dev)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        ga = unbroadcast(g @ b.mT, a.shape) if ctx.needs_input_grad[0] else None
        gb = None
        if ctx.needs_input_grad[1]:
            if b.ndim == 2 and a.ndim > 2:
                # a linear layer on (..., K) inputs: one (K, rows) @ (rows, N) product
                gb = a.reshape(-1, a.shape[-1]).mT @ g.reshape(-1, g.shape[-1])
            else:
                gb = unbroadcast(a.mT @ g, b.shape)
        return ga, gb
