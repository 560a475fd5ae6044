"""A fused bias + GELU with its backward: your own CUDA op, trainable, in a few lines.

``gelu(x + bias)`` as two built-in ops reads and writes the whole activation twice; one
kernel reads ``x`` once and writes ``y`` once. The forward kernel computes ``y``, the
backward kernel ``grad_x``; the bias gradient is a built-in column sum of ``grad_x``.
A custom op is an ordinary ``lg.autograd.Function`` whose forward and backward launch
kernels, so it trains like any built-in op.

Run it (on a GPU, or on the CPU emulator when there is none)::

    python examples/cuda/bias_gelu.py

>>> import lightgrad as lg
>>> x = lg.randn(4, 8, device="cuda", requires_grad=True)       # doctest: +SKIP
>>> b = lg.zeros(8, device="cuda", requires_grad=True)          # doctest: +SKIP
>>> bias_gelu(x, b).sum().backward()                            # doctest: +SKIP
"""
from __future__ import annotations

import importlib.util
import os

if importlib.util.find_spec("cupy") is None:  # no GPU here: run the kernels on the emulator
    os.environ.setdefault("LIGHTGRAD_CUDA", "emulate")
import lightgrad as lg  # noqa: E402

SOURCE = r"""
#include "prelude.cuh"

// GELU(u) = u * Phi(u), Phi the standard normal CDF (the exact form, PyTorch's default).
__device__ float gelu(float u) {
    return 0.5f * u * (1.0f + erff(u * 0.70710678118654752f));
}

// d/du u * Phi(u) = Phi(u) + u * phi(u), phi the normal density.
__device__ float gelu_grad(float u) {
    float cdf = 0.5f * (1.0f + erff(u * 0.70710678118654752f));
    float pdf = 0.39894228040143268f * expf(-0.5f * u * u);
    return cdf + u * pdf;
}

// x and y are (n / cols, cols) row-major; bias has cols values, added to every row.
extern "C" __global__ void bias_gelu_forward(const float* x, const float* bias, float* y,
                                             i64 n, i64 cols) {
    LG_GRID_STRIDE(i, n) y[i] = gelu(x[i] + bias[i % cols]);
}

extern "C" __global__ void bias_gelu_backward(const float* grad_y, const float* x,
                                              const float* bias, float* grad_x,
                                              i64 n, i64 cols) {
    LG_GRID_STRIDE(i, n) grad_x[i] = grad_y[i] * gelu_grad(x[i] + bias[i % cols]);
}
"""

KERNELS = lg.cuda.compile(SOURCE, name="bias_gelu.cu")  # compiled on first launch
forward_kernel = KERNELS.get_function("bias_gelu_forward")
backward_kernel = KERNELS.get_function("bias_gelu_backward")
THREADS = 256


def blocks(n: int) -> int:
    """Enough blocks of THREADS for n elements (the kernels loop if there are fewer)."""
    return max(1, min((n + THREADS - 1) // THREADS, 4096))


class BiasGELU(lg.autograd.Function):
    """``gelu(x + bias)`` over the last dimension of ``x`` (float32, on cuda)."""

    @staticmethod
    def forward(ctx, x: lg.Tensor, bias: lg.Tensor) -> lg.Tensor:
        if bias.ndim != 1 or x.ndim == 0 or x.shape[-1] != bias.shape[0]:
            raise ValueError(f"bias_gelu: bias of shape {tuple(bias.shape)} does not match "
                             f"the last dimension of x {tuple(x.shape)}")
        x, bias = x.contiguous(), bias.contiguous()  # kernels index flat arrays
        y = lg.empty_like(x)
        forward_kernel(blocks(x.numel()), THREADS, (x, bias, y, x.numel(), bias.numel()))
        ctx.save_for_backward(x, bias)
        return y

    @staticmethod
    def backward(ctx, grad_y: lg.Tensor) -> tuple:
        x, bias = ctx.saved_tensors
        grad_x = lg.empty_like(x)
        backward_kernel(blocks(x.numel()), THREADS,
                        (grad_y.contiguous(), x, bias, grad_x, x.numel(), bias.numel()))
        grad_bias = grad_x.reshape(-1, bias.numel()).sum(0) if ctx.needs_input_grad[1] \
            else None
        return grad_x, grad_bias


def bias_gelu(x: lg.Tensor, bias: lg.Tensor) -> lg.Tensor:
    """``gelu(x + bias)`` by the fused kernels, differentiable in ``x`` and ``bias``."""
    return BiasGELU.apply(x, bias)


def main() -> None:
    import numpy as np
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((64, 256)).astype(np.float32)
    b_np = rng.standard_normal(256).astype(np.float32)
    x = lg.tensor(x_np, device="cuda", requires_grad=True)
    b = lg.tensor(b_np, device="cuda", requires_grad=True)
    y = bias_gelu(x, b)
    (y * y).sum().backward()

    x2 = lg.tensor(x_np, device="cuda", requires_grad=True)
    b2 = lg.tensor(b_np, device="cuda", requires_grad=True)
    y2 = lg.nn.functional.gelu(x2 + b2)
    (y2 * y2).sum().backward()
    for name, ours, builtin in (("y", y, y2), ("grad x", x.grad, x2.grad),
                                ("grad bias", b.grad, b2.grad)):
        diff = np.abs(ours.detach().cpu().numpy() - builtin.detach().cpu().numpy()).max()
        print(f"{name:10s} max |fused - built-in| = {diff:.2e}")
    print(f"ran on: {lg.cuda.get_device_name()}")


if __name__ == "__main__":
    main()
