"""A direct 2-D convolution (no im2col) with its backward, training a small CNN on MNIST.

Three kernels, each with one thread per value it computes and the textbook loops inside:

- forward: ``y[n, k, p, q] = bias[k] + sum over c, r, s of
  x[n, c, p*stride - pad + r, q*stride - pad + s] * w[k, c, r, s]``;
- gradient of the input: each ``x[n, c, h, w]`` gathers the outputs it fed (no atomics);
- gradient of the weight: each ``w[k, c, r, s]`` sums over the batch and the output
  (and a fourth, the bias gradient, sums each channel of the output gradient).

``Conv2d`` below is a module over these kernels, and
``train`` fits ``conv -> relu -> pool -> conv -> relu -> pool -> linear`` to MNIST digits.

Run it (on a GPU, or on the CPU emulator when there is none, where it is slower)::

    python examples/cuda/conv2d_direct.py --steps 200

>>> import lightgrad as lg
>>> conv = Conv2d(1, 4, 3, padding=1).to("cuda")                  # doctest: +SKIP
>>> conv(lg.randn(2, 1, 8, 8, device="cuda")).shape               # doctest: +SKIP
(2, 4, 8, 8)
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import os
import time
from pathlib import Path

if importlib.util.find_spec("cupy") is None:  # no GPU here: run the kernels on the emulator
    os.environ.setdefault("LIGHTGRAD_CUDA", "emulate")
import lightgrad as lg  # noqa: E402

SOURCE = r"""
#include "prelude.cuh"

// Tensors are contiguous NCHW: x (N, C, H, W), w (K, C, R, S), y (N, K, P, Q) with
// P = (H + 2 pad - R) / stride + 1 and Q = (W + 2 pad - S) / stride + 1. As in every
// deep-learning framework, "convolution" is a cross-correlation (no flipped kernel).
// Every kernel takes the sizes last: N, C, H, W, K, R, S, P, Q, stride, pad.

extern "C" __global__ void conv2d_forward(
        const float* x, const float* w, const float* bias, float* y,
        int N, int C, int H, int W, int K, int R, int S, int P, int Q, int stride, int pad) {
    LG_GRID_STRIDE(i, (i64)N * K * P * Q) {
        int q = i % Q, p = i / Q % P, k = i / ((i64)Q * P) % K;
        i64 n = i / ((i64)Q * P * K);
        float acc = bias ? bias[k] : 0.0f;  // bias may be NULL (pass None)
        for (int c = 0; c < C; ++c) {
            for (int r = 0; r < R; ++r) {
                int h = p * stride - pad + r;
                if (h < 0 || h >= H) continue;  // zero padding
                for (int s = 0; s < S; ++s) {
                    int v = q * stride - pad + s;
                    if (v < 0 || v >= W) continue;
                    acc += x[((n * C + c) * H + h) * W + v] * w[((k * C + c) * R + r) * S + s];
                }
            }
        }
        y[i] = acc;
    }
}

// grad_x[n, c, h, v] = sum of grad_y[n, k, p, q] * w[k, c, r, s] over the outputs whose
// window covers (h, v): h = p*stride - pad + r, so p = (h + pad - r) / stride when that
// divides evenly and lands inside the output.
extern "C" __global__ void conv2d_grad_input(
        const float* grad_y, const float* w, float* grad_x,
        int N, int C, int H, int W, int K, int R, int S, int P, int Q, int stride, int pad) {
    LG_GRID_STRIDE(i, (i64)N * C * H * W) {
        int v = i % W, h = i / W % H, c = i / ((i64)W * H) % C;
        i64 n = i / ((i64)W * H * C);
        float acc = 0.0f;
        for (int k = 0; k < K; ++k) {
            for (int r = 0; r < R; ++r) {
                int ph = h + pad - r;
                if (ph < 0 || ph % stride != 0 || ph / stride >= P) continue;
                for (int s = 0; s < S; ++s) {
                    int qw = v + pad - s;
                    if (qw < 0 || qw % stride != 0 || qw / stride >= Q) continue;
                    acc += grad_y[((n * K + k) * P + ph / stride) * Q + qw / stride]
                         * w[((k * C + c) * R + r) * S + s];
                }
            }
        }
        grad_x[i] = acc;
    }
}

// grad_w[k, c, r, s] = sum over n, p, q of grad_y[n, k, p, q] * x[n, c, h, v]. One thread
// per weight: few threads with long loops (a GPU would rather split the sum over the batch
// and add the parts), but the simplest correct version.
extern "C" __global__ void conv2d_grad_weight(
        const float* grad_y, const float* x, float* grad_w,
        int N, int C, int H, int W, int K, int R, int S, int P, int Q, int stride, int pad) {
    LG_GRID_STRIDE(i, (i64)K * C * R * S) {
        int s = i % S, r = i / S % R, c = i / ((i64)S * R) % C, k = i / ((i64)S * R * C);
        float acc = 0.0f;
        for (i64 n = 0; n < N; ++n) {
            for (int p = 0; p < P; ++p) {
                int h = p * stride - pad + r;
                if (h < 0 || h >= H) continue;
                for (int q = 0; q < Q; ++q) {
                    int v = q * stride - pad + s;
                    if (v < 0 || v >= W) continue;
                    acc += grad_y[((n * K + k) * P + p) * Q + q]
                         * x[((n * C + c) * H + h) * W + v];
                }
            }
        }
        grad_w[i] = acc;
    }
}

// grad_bias[k] = sum over n, p, q of grad_y[n, k, p, q]: one thread per channel.
extern "C" __global__ void conv2d_grad_bias(const float* grad_y, float* grad_bias,
                                            int N, int K, int P, int Q) {
    LG_GRID_STRIDE(k, K) {
        float acc = 0.0f;
        for (i64 n = 0; n < N; ++n) {
            const float* plane = grad_y + (n * K + k) * P * Q;
            for (int j = 0; j < P * Q; ++j) acc += plane[j];
        }
        grad_bias[k] = acc;
    }
}
"""

KERNELS = lg.cuda.compile(SOURCE, name="conv2d_direct.cu")  # compiled on first launch
forward_kernel = KERNELS.get_function("conv2d_forward")
grad_input_kernel = KERNELS.get_function("conv2d_grad_input")
grad_weight_kernel = KERNELS.get_function("conv2d_grad_weight")
grad_bias_kernel = KERNELS.get_function("conv2d_grad_bias")
THREADS = 256


def blocks(n: int) -> int:
    """Enough blocks of THREADS for n elements (the kernels loop if there are fewer)."""
    return max(1, min((n + THREADS - 1) // THREADS, 4096))


class Conv2dDirect(lg.autograd.Function):
    """``conv2d(x, weight, bias, stride, padding)`` for float32 NCHW tensors on cuda."""

    @staticmethod
    def forward(ctx, x: lg.Tensor, weight: lg.Tensor, bias: lg.Tensor | None,
                stride: int, padding: int) -> lg.Tensor:
        (n, c, h, w), (k, c_w, r, s) = x.shape, weight.shape
        if c != c_w:
            raise ValueError(f"conv2d_direct: x has {c} channels, weight expects {c_w}")
        p, q = (h + 2 * padding - r) // stride + 1, (w + 2 * padding - s) // stride + 1
        x, weight = x.contiguous(), weight.contiguous()
        y = lg.empty(n, k, p, q, device=x.device)
        dims = (n, c, h, w, k, r, s, p, q, stride, padding)
        forward_kernel(blocks(y.numel()), THREADS,
                       (x, weight, None if bias is None else bias.contiguous(), y, *dims))
        ctx.save_for_backward(x, weight)
        ctx.dims = dims
        return y

    @staticmethod
    def backward(ctx, grad_y: lg.Tensor) -> tuple:
        x, weight = ctx.saved_tensors
        grad_y = grad_y.contiguous()
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = lg.empty_like(x)
            grad_input_kernel(blocks(x.numel()), THREADS, (grad_y, weight, grad_x, *ctx.dims))
        if ctx.needs_input_grad[1]:
            grad_w = lg.empty_like(weight)
            grad_weight_kernel(blocks(weight.numel()), THREADS, (grad_y, x, grad_w, *ctx.dims))
        if ctx.needs_input_grad[2]:
            (n, _, _, _, k, _, _, p, q, _, _) = ctx.dims
            grad_b = lg.empty(k, device=grad_y.device)
            grad_bias_kernel(blocks(k), THREADS, (grad_y, grad_b, n, k, p, q))
        return grad_x, grad_w, grad_b, None, None


def conv2d_direct(x: lg.Tensor, weight: lg.Tensor, bias: lg.Tensor | None = None,
                  stride: int = 1, padding: int = 0) -> lg.Tensor:
    """2-D convolution by the direct kernels (same result as ``F.conv2d``)."""
    return Conv2dDirect.apply(x, weight, bias, int(stride), int(padding))


class Conv2d(lg.nn.Module):
    """``nn.Conv2d`` (square kernel, int stride and zero padding) on the direct kernels,
    initialised like PyTorch's: weight and bias uniform in +-1/sqrt(fan_in)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, padding: int = 0):
        super().__init__()
        bound = 1 / math.sqrt(in_channels * kernel_size * kernel_size)
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight = lg.nn.Parameter((lg.rand(*shape) * 2 - 1) * bound)
        self.bias = lg.nn.Parameter((lg.rand(out_channels) * 2 - 1) * bound)
        self.stride, self.padding = stride, padding

    def forward(self, x: lg.Tensor) -> lg.Tensor:
        return conv2d_direct(x, self.weight, self.bias, self.stride, self.padding)


def small_cnn() -> lg.nn.Module:
    """28x28 digits -> 10 logits: two direct convolutions, then a linear layer."""
    nn = lg.nn
    return nn.Sequential(
        Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),    # 8 x 14 x 14
        Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 16 x 7 x 7
        nn.Flatten(), nn.Linear(16 * 7 * 7, 10))


def mnist_dir() -> Path:
    """The shared MNIST files: ``$LIGHTGRAD_MNIST``, else ``../shared/data/mnist`` from the
    project root."""
    default = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mnist"
    return Path(os.environ.get("LIGHTGRAD_MNIST", default))


def train(steps: int, images: int, batch_size: int = 64, lr: float = 3e-3,
          seed: int = 0, log_every: int = 0) -> tuple[lg.nn.Module, list[float]]:
    """Train ``small_cnn`` on the first ``images`` MNIST digits (of the test split, the
    one shared) for ``steps`` steps of Adam on cuda: the model and the loss of each step."""
    lg.manual_seed(seed)
    data = lg.data.MNIST(mnist_dir(), train=False)
    x_all = data.data[:images].to("cuda")
    y_all = data.targets[:images].to("cuda")
    model = small_cnn().to("cuda")
    optimizer = lg.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for step in range(steps):
        start = step * batch_size % images
        x, y = x_all[start:start + batch_size], y_all[start:start + batch_size]
        loss = lg.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if log_every and (step % log_every == 0 or step == steps - 1):
            print(f"step {step:4d}  loss {losses[-1]:.4f}")
    return model, losses


@lg.no_grad()
def accuracy(model: lg.nn.Module, first: int, batch_size: int = 500) -> float:
    """The fraction of MNIST digits from index ``first`` on that ``model`` gets right."""
    data = lg.data.MNIST(mnist_dir(), train=False)
    right = 0
    for start in range(first, len(data.targets), batch_size):
        x = data.data[start:start + batch_size].to("cuda")
        y = data.targets[start:start + batch_size].to("cuda")
        right += (model(x).argmax(1) == y).sum().item()
    return right / (len(data.targets) - first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    emulated = lg.cuda.is_emulated()
    parser.add_argument("--steps", type=int, default=60 if emulated else 500)
    parser.add_argument("--images", type=int, default=2000 if emulated else 8000,
                        help="train on the first N digits (at most 8000: the last 2000 are "
                             "held out)")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    if not 0 < args.images <= 8000:
        parser.error("--images must be in 1..8000")
    print(f"training on {lg.cuda.get_device_name()}")
    start = time.perf_counter()
    model, losses = train(args.steps, args.images, args.batch_size,
                          log_every=max(1, args.steps // 10))
    print(f"loss {losses[0]:.3f} -> {sum(losses[-10:]) / len(losses[-10:]):.3f} (mean of the "
          f"last 10) in {time.perf_counter() - start:.1f} s")
    held_out = 8000  # the last 2,000 digits: never trained on
    print(f"accuracy on the last 2,000 digits: {accuracy(model, held_out):.1%}")


if __name__ == "__main__":
    main()
