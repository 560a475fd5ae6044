"""The op vocabulary: every primitive a backend implements, with its signature and meaning.

A backend works on its own buffer type (NumPy arrays on the CPU, device arrays on CUDA,
IR nodes in graph mode). Every buffer has ``.shape`` (a tuple) and ``.dtype`` (a NumPy
dtype; bfloat16 is ``ml_dtypes.bfloat16``). Primitives never see Tensors or autograd:
``Function``s in ``lightgrad.ops`` call them and handle dtype promotion and gradients.

Conventions: ``axes`` is a tuple of non-negative axes; ``keepdim`` keeps reduced axes with
size 1; binary ops broadcast like NumPy and receive operands already promoted to one dtype
(a Python scalar operand takes the dtype of the other operand); results are new buffers
unless the primitive is documented as a view.

>>> from lightgrad.backends import get_backend
>>> cpu = get_backend("cpu")
>>> cpu.add(cpu.from_numpy(__import__("numpy").ones(2)), 1.0)
array([2., 2.])
"""
from __future__ import annotations

from typing import Any, Sequence

Buffer = Any
Shape = tuple

UNARY_OPS = (
    "neg", "abs", "exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "relu",
    "gelu", "gelu_tanh", "silu", "softplus", "erf", "reciprocal", "sign", "floor", "ceil",
    "round", "logical_not",
)
"""Elementwise ``op(x) -> y``, same shape; float ops receive floating-point buffers."""

BINARY_OPS = (
    "add", "sub", "mul", "div", "pow", "maximum", "minimum",
    "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor",
)
"""Elementwise ``op(a, b) -> y`` with broadcasting; comparisons and logical ops give bool."""

REDUCE_OPS = ("sum", "mean", "prod", "amax", "amin", "all", "any")
"""``op(x, axes, keepdim) -> y``; ``sum``/``prod``/``mean`` also take ``dtype``."""


class Backend:
    """Interface of a backend. Subclasses implement every method; see ``cpu.py``."""

    name = "abstract"

    # --- creation and transfer
    def from_numpy(self, array: Any) -> Buffer:
        """A buffer holding ``array``'s values (the CPU backend shares its memory)."""
        raise NotImplementedError

    def to_numpy(self, x: Buffer) -> Any:
        """The values of ``x`` as a NumPy array (a view where the backend allows)."""
        raise NotImplementedError

    def full(self, shape: Shape, value: float, dtype: Any) -> Buffer:
        """A new buffer of ``shape`` filled with ``value``."""
        raise NotImplementedError

    def arange(self, start: float, end: float, step: float, dtype: Any) -> Buffer:
        """Values ``start, start+step, ...`` below ``end``."""
        raise NotImplementedError

    def linspace(self, start: float, end: float, steps: int, dtype: Any) -> Buffer:
        """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
        raise NotImplementedError

    def eye(self, n: int, m: int, dtype: Any) -> Buffer:
        """An ``n x m`` identity matrix."""
        raise NotImplementedError

    def seed(self, seed: int) -> None:
        """Reset the backend's random number generator."""
        raise NotImplementedError

    def rand(self, shape: Shape, dtype: Any) -> Buffer:
        """Uniform samples in [0, 1)."""
        raise NotImplementedError

    def randn(self, shape: Shape, dtype: Any) -> Buffer:
        """Standard normal samples."""
        raise NotImplementedError

    def randint(self, low: int, high: int, shape: Shape, dtype: Any) -> Buffer:
        """Uniform integers in [low, high)."""
        raise NotImplementedError

    def astype(self, x: Buffer, dtype: Any) -> Buffer:
        """``x`` converted to ``dtype`` (a new buffer)."""
        raise NotImplementedError

    def contiguous(self, x: Buffer) -> Buffer:
        """``x`` itself when it is C-contiguous, else a C-contiguous copy."""
        raise NotImplementedError

    def copy(self, x: Buffer) -> Buffer:
        """A C-contiguous copy of ``x``."""
        raise NotImplementedError

    def is_contiguous(self, x: Buffer) -> bool:
        """Whether ``x`` is laid out C-contiguously."""
        raise NotImplementedError

    # --- elementwise (names in UNARY_OPS and BINARY_OPS are methods too)
    def gelu_backward(self, x: Buffer, grad: Buffer) -> Buffer:
        """``grad * d gelu(x) / dx`` for exact GELU, fused."""
        raise NotImplementedError

    def where(self, cond: Buffer, a: Buffer, b: Buffer) -> Buffer:
        """``a`` where ``cond`` is true else ``b``, broadcast together."""
        raise NotImplementedError

    def clamp(self, x: Buffer, low: float | None, high: float | None) -> Buffer:
        """``x`` limited to [low, high]; a None bound is open."""
        raise NotImplementedError

    # --- reductions (names in REDUCE_OPS are methods too)
    def argmax(self, x: Buffer, axis: int | None, keepdim: bool) -> Buffer:
        """Index (int64) of the first largest value along ``axis`` (flattened if None)."""
        raise NotImplementedError

    def argmin(self, x: Buffer, axis: int | None, keepdim: bool) -> Buffer:
        """Index (int64) of the first smallest value along ``axis`` (flattened if None)."""
        raise NotImplementedError

    def cumsum(self, x: Buffer, axis: int) -> Buffer:
        """Inclusive running sum along ``axis``."""
        raise NotImplementedError

    # --- movement
    def reshape(self, x: Buffer, shape: Shape) -> Buffer:
        """``x`` with a new shape of the same size (a view when the layout allows)."""
        raise NotImplementedError

    def permute(self, x: Buffer, axes: Sequence[int]) -> Buffer:
        """A view of ``x`` with its axes reordered."""
        raise NotImplementedError

    def expand(self, x: Buffer, shape: Shape) -> Buffer:
        """A read-only broadcast view of ``x`` at ``shape``."""
        raise NotImplementedError

    def getitem(self, x: Buffer, index: tuple) -> Buffer:
        """NumPy-style indexing; ``index`` holds ints, slices, None, Ellipsis and int64/bool
        buffers. Basic indexing gives a view; advanced indexing gives a copy."""
        raise NotImplementedError

    def setitem(self, x: Buffer, index: tuple, value: Buffer | float) -> None:
        """Write ``value`` into ``x[index]`` in place."""
        raise NotImplementedError

    def index_put(self, x: Buffer, index: tuple, value: Buffer, accumulate: bool) -> Buffer:
        """A copy of ``x`` with ``value`` written (or, with accumulate, added, repeated
        indices adding up) at ``index``."""
        raise NotImplementedError

    def assign(self, dst: Buffer, src: Buffer | float) -> None:
        """Copy ``src`` (broadcast) into ``dst`` in place."""
        raise NotImplementedError

    def binary_inplace(self, op: str, dst: Buffer, src: Buffer | float) -> None:
        """``dst = op(dst, src)`` in place for op in add/sub/mul/div; ``src`` has dst's dtype
        (or is a number) and broadcasts to dst's shape."""
        raise NotImplementedError

    def pad(self, x: Buffer, pads: Sequence[tuple[int, int]], value: float) -> Buffer:
        """``x`` with ``pads[i] = (before, after)`` elements of ``value`` around axis i."""
        raise NotImplementedError

    def flip(self, x: Buffer, axes: Sequence[int]) -> Buffer:
        """``x`` reversed along ``axes``."""
        raise NotImplementedError

    def cat(self, xs: Sequence[Buffer], axis: int) -> Buffer:
        """Buffers joined along ``axis``."""
        raise NotImplementedError

    def tile(self, x: Buffer, reps: Sequence[int]) -> Buffer:
        """``x`` repeated ``reps[i]`` times along axis i (``Tensor.repeat``)."""
        raise NotImplementedError

    def tril(self, x: Buffer, k: int) -> Buffer:
        """Lower triangle of the last two axes (diagonal offset ``k``), zeros elsewhere."""
        raise NotImplementedError

    def triu(self, x: Buffer, k: int) -> Buffer:
        """Upper triangle of the last two axes (diagonal offset ``k``), zeros elsewhere."""
        raise NotImplementedError

    def gather(self, x: Buffer, axis: int, index: Buffer) -> Buffer:
        """``out[i][j] = x[i][index[i][j]]`` along ``axis`` (torch.gather)."""
        raise NotImplementedError

    def scatter_add(self, x: Buffer, axis: int, index: Buffer, src: Buffer) -> Buffer:
        """A copy of ``x`` plus ``src`` added at ``index`` along ``axis`` (torch.scatter_add)."""
        raise NotImplementedError

    def index_add(self, x: Buffer, axis: int, index: Buffer, src: Buffer) -> Buffer:
        """A copy of ``x`` with slices of ``src`` added at positions ``index`` of ``axis``."""
        raise NotImplementedError

    def index_select(self, x: Buffer, axis: int, index: Buffer) -> Buffer:
        """Slices of ``x`` at positions ``index`` (1-D int64) along ``axis``."""
        raise NotImplementedError

    # --- linear algebra and fused NN ops
    def matmul(self, a: Buffer, b: Buffer) -> Buffer:
        """Batched matrix product of buffers with ndim >= 2, batch axes broadcast."""
        raise NotImplementedError

    def softmax(self, x: Buffer, axis: int) -> Buffer:
        """Numerically stable softmax along ``axis``."""
        raise NotImplementedError

    def log_softmax(self, x: Buffer, axis: int) -> Buffer:
        """Numerically stable log-softmax along ``axis``."""
        raise NotImplementedError

    # --- sampling and selection (not differentiable)
    def multinomial(self, probs: Buffer, num_samples: int, replacement: bool) -> Buffer:
        """int64 indices drawn from each row of the (unnormalised) ``probs``."""
        raise NotImplementedError

    def topk(self, x: Buffer, k: int, axis: int, largest: bool) -> Buffer:
        """int64 indices of the ``k`` largest (or smallest) values along ``axis``, sorted."""
        raise NotImplementedError

    def sort(self, x: Buffer, axis: int, descending: bool) -> Buffer:
        """int64 indices that sort ``x`` along ``axis`` (stable)."""
        raise NotImplementedError

    # --- fused NN primitives (conv, pooling, norms, losses, attention)
    # Spatial arguments are pairs (height, width); ``padding`` for conv is
    # ((top, bottom), (left, right)), for pooling (height, width) on both sides.
    def conv2d(self, x: Buffer, w: Buffer, bias: Buffer | None, stride: tuple,
               padding: tuple, dilation: tuple, groups: int) -> Buffer:
        """2-D cross-correlation: x (N, C, H, W), w (O, C // groups, kh, kw), bias (O,) or
        None -> (N, O, Ho, Wo), zero padding; ``Ho = (H + top + bottom - dh*(kh-1) - 1)
        // sh + 1``."""
        raise NotImplementedError

    def conv2d_backward_input(self, grad: Buffer, w: Buffer, input_shape: Shape,
                              stride: tuple, padding: tuple, dilation: tuple,
                              groups: int) -> Buffer:
        """Gradient of ``conv2d`` w.r.t. x (a transposed convolution of ``grad`` by ``w``)."""
        raise NotImplementedError

    def conv2d_backward_weight(self, grad: Buffer, x: Buffer, weight_shape: Shape,
                               stride: tuple, padding: tuple, dilation: tuple,
                               groups: int) -> Buffer:
        """Gradient of ``conv2d`` w.r.t. w: ``grad`` correlated with the input ``x``."""
        raise NotImplementedError

    def max_pool2d(self, x: Buffer, kernel: tuple, stride: tuple, padding: tuple,
                   dilation: tuple, ceil_mode: bool) -> tuple[Buffer, Buffer]:
        """(values, indices): the max of each window of x (N, C, H, W) (padding counts as
        -inf) and its flat int64 index ``h * W + w`` in the input plane (PyTorch's)."""
        raise NotImplementedError

    def max_pool2d_backward(self, grad: Buffer, indices: Buffer, input_shape: Shape) -> Buffer:
        """Zeros of ``input_shape`` with ``grad`` added at ``indices`` of each plane."""
        raise NotImplementedError

    def avg_pool2d(self, x: Buffer, kernel: tuple, stride: tuple, padding: tuple,
                   ceil_mode: bool, count_include_pad: bool,
                   divisor_override: int | None) -> Buffer:
        """The mean of each window of x (N, C, H, W), with PyTorch's divisor rules."""
        raise NotImplementedError

    def avg_pool2d_backward(self, grad: Buffer, input_shape: Shape, kernel: tuple,
                            stride: tuple, padding: tuple, ceil_mode: bool,
                            count_include_pad: bool, divisor_override: int | None) -> Buffer:
        """Gradient of ``avg_pool2d`` w.r.t. its input (each window spreads its share)."""
        raise NotImplementedError

    def layer_norm(self, x: Buffer, weight: Buffer | None, bias: Buffer | None,
                   n_axes: int, eps: float) -> tuple[Buffer, Buffer, Buffer]:
        """(y, mean, rstd): x normalised over its last ``n_axes`` axes, then ``* weight +
        bias``; mean and 1/sqrt(var + eps) keep the reduced axes with size 1."""
        raise NotImplementedError

    def layer_norm_backward(self, g: Buffer, x: Buffer, weight: Buffer | None, mean: Buffer,
                            rstd: Buffer, n_axes: int) -> tuple[Buffer, Buffer, Buffer]:
        """(dx, dweight, dbias) of ``layer_norm`` for the output gradient ``g``, given the
        saved ``mean``/``rstd`` (dweight is None without weight)."""
        raise NotImplementedError

    def rms_norm(self, x: Buffer, weight: Buffer | None, n_axes: int,
                 eps: float) -> tuple[Buffer, Buffer]:
        """(y, rstd): ``x / sqrt(mean(x**2) + eps) * weight`` over the last ``n_axes`` axes."""
        raise NotImplementedError

    def batch_norm_stats(self, x: Buffer) -> tuple[Buffer, Buffer]:
        """(mean, biased var) of x (N, C, ...) per channel (axis 1), each of shape (C,)."""
        raise NotImplementedError

    def batch_norm(self, x: Buffer, weight: Buffer | None, bias: Buffer | None,
                   mean: Buffer, var: Buffer, eps: float) -> Buffer:
        """``(x - mean) / sqrt(var + eps) * weight + bias`` with per-channel (axis 1)
        statistics and affine parameters of shape (C,)."""
        raise NotImplementedError

    def cross_entropy(self, x: Buffer, target: Buffer, weight: Buffer | None,
                      ignore_index: int,
                      label_smoothing: float) -> tuple[Buffer, Buffer, Buffer]:
        """(loss, probs, counted) for logits x (M, C): ``target`` holds class indices (M,)
        int64 or class probabilities (M, C). ``loss`` (M,) is each row's weighted,
        label-smoothed cross-entropy (0 where target == ignore_index); ``probs`` is
        softmax(x); ``counted`` (M,) is the weight of each row's target class (1 without
        weights, 0 for ignored rows, 1 for probability targets): 'mean' divides by its sum."""
        raise NotImplementedError

    def cross_entropy_backward(self, probs: Buffer, target: Buffer, weight: Buffer | None,
                               scale: Buffer, ignore_index: int,
                               label_smoothing: float) -> Buffer:
        """d loss / d x (M, C) of ``cross_entropy``, each row times ``scale`` ((M,) or ()):
        ``(probs * sum(q) - q) * scale`` with q the row's weighted, smoothed target."""
        raise NotImplementedError

    def scaled_dot_product_attention(self, q: Buffer, k: Buffer, v: Buffer,
                                     mask: Buffer | None, scale: float, is_causal: bool,
                                     keep: Buffer | None) -> tuple[Buffer, Buffer]:
        """(out, probs): ``probs = softmax(q @ k^T * scale + mask)`` over the last axis
        (a bool mask keeps True positions, ``is_causal`` keeps key j <= query i; rows with
        nothing kept are 0), ``out = (probs * keep) @ v`` (``keep``: dropout mask already
        scaled by 1/(1-p), or None). q (..., L, E), k (..., S, E), v (..., S, Ev)."""
        raise NotImplementedError

    # --- optimizer primitives
    def adamw_step(self, param: Buffer, grad: Buffer, exp_avg: Buffer, exp_avg_sq: Buffer,
                   lr: float, beta1: float, beta2: float, eps: float, weight_decay: float,
                   step: int) -> None:
        """One AdamW update, in place on ``param``, ``exp_avg`` and ``exp_avg_sq`` (same
        shape and dtype; ``grad`` is only read). ``step`` counts from 1; a zero
        ``weight_decay`` gives plain Adam (L2 decay is then added to ``grad`` by the caller)::

            param      *= 1 - lr * weight_decay
            exp_avg    += (grad - exp_avg) * (1 - beta1)
            exp_avg_sq  = exp_avg_sq * beta2 + grad * grad * (1 - beta2)
            denom       = sqrt(exp_avg_sq) / sqrt(1 - beta2**step) + eps
            param      -= lr / (1 - beta1**step) * exp_avg / denom
        """
        raise NotImplementedError
