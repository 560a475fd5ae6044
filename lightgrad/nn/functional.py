"""``lightgrad.nn.functional``: PyTorch's ``torch.nn.functional`` API, usually imported as F.

Activations and simple losses here are compositions of Tensor methods. The heavy ops
(convolution, pooling, normalisation, cross-entropy, attention) are fused ``Function``s
with their own backward, defined in ``lightgrad.ops`` and re-exported here.

>>> import lightgrad as lg
>>> import lightgrad.nn.functional as F
>>> x = lg.tensor([[-1.0, 2.0]])
>>> F.relu(x)
tensor([[0., 2.]])
>>> F.linear(x, lg.ones(3, 2), lg.zeros(3)).shape
(1, 3)
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .. import dtypes, functions
from ..creation import rand, zeros_like
from ..functions import one_hot  # noqa: F401  (F.one_hot, as in PyTorch)
from ..ops.attention import scaled_dot_product_attention  # noqa: F401
from ..ops.common import describe, wrap
from ..ops.conv import (  # noqa: F401
    conv1d, conv2d, conv_transpose1d, conv_transpose2d,
)
from ..ops.loss import cross_entropy, nll_loss, reduce_loss  # noqa: F401
from ..ops.linalg import Linear
from ..ops.movement import IndexSelect
from ..ops.norm import batch_norm, layer_norm, rms_norm  # noqa: F401
from ..ops.pool import (  # noqa: F401
    adaptive_avg_pool1d, adaptive_avg_pool2d, avg_pool1d, avg_pool2d, max_pool1d, max_pool2d,
)
from ..ops.scan import selective_scan  # noqa: F401
from ..tensor import Tensor

# ----------------------------------------------------------------------------- helpers


def _check_tensor(op: str, name: str, t: Any) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")


def _check_float(op: str, name: str, t: Any) -> None:
    _check_tensor(op, name, t)
    if not t.dtype.is_floating_point:
        raise TypeError(f"{op}: {name} must be a floating-point tensor, got {describe(t)}")


def _same_shape(op: str, input: Tensor, target: Tensor) -> None:
    _check_tensor(op, "input", input)
    _check_tensor(op, "target", target)
    if input.shape != target.shape:
        raise ValueError(f"{op}: target shape {tuple(target.shape)} must match input shape "
                         f"{tuple(input.shape)}")


# ----------------------------------------------------------------------------- linear


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias`` with ``weight`` of shape (out_features, in_features).

    >>> import lightgrad as lg
    >>> linear(lg.ones(2, 3), lg.ones(4, 3)).shape
    (2, 4)
    """
    _check_tensor("linear", "input", input)
    _check_tensor("linear", "weight", weight)
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must have 2 dims (out_features, in_features), got "
                         f"shape {tuple(weight.shape)}")
    if input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {tuple(input.shape)} does not match weight "
                         f"of shape {tuple(weight.shape)}: expected the last input dim to be "
                         f"{weight.shape[1]}")
    if bias is not None and tuple(bias.shape) not in ((weight.shape[0],), ()):
        raise ValueError(f"linear: bias of shape {tuple(bias.shape)} does not match "
                         f"{weight.shape[0]} output features")
    if input.ndim >= 2:  # one fused op: a single product with the bias added in place
        return Linear.apply(input, weight, bias)
    out = input.matmul(weight.t())
    return out + bias if bias is not None else out


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor,
             bias: Tensor | None = None) -> Tensor:
    """``y[..., o] = x1 @ weight[o] @ x2 + bias[o]`` with weight (out, in1, in2).

    >>> import lightgrad as lg
    >>> bilinear(lg.ones(2, 3), lg.ones(2, 4), lg.ones(5, 3, 4)).shape
    (2, 5)
    """
    if weight.ndim != 3 or input1.shape[-1] != weight.shape[1] or \
            input2.shape[-1] != weight.shape[2]:
        raise ValueError(f"bilinear: inputs {tuple(input1.shape)} and {tuple(input2.shape)} "
                         f"do not match weight {tuple(weight.shape)} (out, in1, in2)")
    left = input1.unsqueeze(-2).unsqueeze(-2).matmul(weight)  # (..., out, 1, in2)
    out = (left.squeeze(-2) * input2.unsqueeze(-2)).sum(-1)
    return out + bias if bias is not None else out


# ----------------------------------------------------------------------------- activations


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0).

    >>> import lightgrad as lg
    >>> relu(lg.tensor([-1.0, 1.0]))
    tensor([0., 1.])
    """
    return input.relu()


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6).

    >>> import lightgrad as lg
    >>> relu6(lg.tensor([-1.0, 7.0]))
    tensor([0., 6.])
    """
    return input.clamp(0.0, 6.0)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x for x > 0, ``negative_slope * x`` otherwise.

    >>> import lightgrad as lg
    >>> leaky_relu(lg.tensor([-1.0, 1.0]), 0.5).tolist()
    [-0.5, 1.0]
    """
    return input.where(input > 0, input * negative_slope)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, ``alpha * (exp(x) - 1)`` otherwise.

    >>> import lightgrad as lg
    >>> elu(lg.tensor([0.0, 1.0]))
    tensor([0., 1.])
    """
    negative = (input.clamp(max=0.0).exp() - 1) * alpha
    return input.where(input > 0, negative)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit; ``approximate='tanh'`` uses the tanh formula.

    >>> import lightgrad as lg
    >>> gelu(lg.tensor([0.0]))
    tensor([0.])
    """
    return input.gelu(approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x) (a.k.a. swish).

    >>> import lightgrad as lg
    >>> silu(lg.tensor([0.0]))
    tensor([0.])
    """
    return input.silu()


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x)).

    >>> import lightgrad as lg
    >>> mish(lg.tensor([0.0]))
    tensor([0.])
    """
    return input * softplus(input).tanh()


def tanh(input: Tensor) -> Tensor:
    """Hyperbolic tangent.

    >>> import lightgrad as lg
    >>> tanh(lg.tensor([0.0]))
    tensor([0.])
    """
    return input.tanh()


def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + exp(-x)).

    >>> import lightgrad as lg
    >>> sigmoid(lg.tensor([0.0]))
    tensor([0.5000])
    """
    return input.sigmoid()


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta * x)) / beta, linear where ``beta * x > threshold``.

    >>> import lightgrad as lg
    >>> softplus(lg.tensor([0.0]))
    tensor([0.6931])
    """
    return input.softplus(beta, threshold)


def softmax(input: Tensor, dim: int, dtype: Any = None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim`` (computed stably).

    >>> import lightgrad as lg
    >>> softmax(lg.tensor([0.0, 0.0]), dim=0)
    tensor([0.5000, 0.5000])
    """
    if dim is None:
        raise TypeError("softmax: dim must be given explicitly")
    return (input.to(dtype) if dtype is not None else input).softmax(dim)


def log_softmax(input: Tensor, dim: int, dtype: Any = None) -> Tensor:
    """log(softmax(x)) along ``dim``, computed stably.

    >>> import lightgrad as lg
    >>> log_softmax(lg.tensor([0.0, 0.0]), dim=0)
    tensor([-0.6931, -0.6931])
    """
    if dim is None:
        raise TypeError("log_softmax: dim must be given explicitly")
    return (input.to(dtype) if dtype is not None else input).log_softmax(dim)


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """``x / max(||x||_p, eps)`` along ``dim``.

    >>> import lightgrad as lg
    >>> normalize(lg.tensor([[3.0, 4.0]]))
    tensor([[0.6000, 0.8000]])
    """
    return input / input.norm(p, dim, keepdim=True).clamp(min=eps)


def dropout(input: Tensor, p: float = 0.5, training: bool = True,
            inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) (training only).

    The mask comes from lightgrad's RNG, so ``lg.manual_seed`` makes it reproducible.

    >>> import lightgrad as lg
    >>> dropout(lg.ones(3), p=0.5, training=False)
    tensor([1., 1., 1.])
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * zeros_like(input)
    keep = rand(*input.shape, dtype=input.dtype, device=input.device) >= p
    return input * keep.to(input.dtype) * (1.0 / (1.0 - p))


# ----------------------------------------------------------------------------- padding


def _pad_pairs(op: str, ndim: int, pad: Sequence[int]) -> list[tuple[int, int]]:
    """Torch's flat pad list (last dim first) as one (before, after) pair per axis."""
    pad = [int(p) for p in pad]
    if len(pad) % 2 or len(pad) // 2 > ndim:
        raise ValueError(f"{op}: pad {tuple(pad)} must have an even length of at most "
                         f"2 * {ndim} (two entries per padded dim, last dim first)")
    pairs = [(0, 0)] * ndim
    for i in range(len(pad) // 2):
        pairs[ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return pairs


def _source_index(mode: str, n: int, before: int, after: int) -> np.ndarray:
    """For each position of a padded axis, the position of the input it copies."""
    pos = np.arange(-before, n + after)
    if mode == "replicate":
        return np.clip(pos, 0, n - 1)
    if mode == "circular":
        return np.mod(pos, n)
    period = 2 * (n - 1)  # reflect: mirror around the first and last element
    folded = np.mod(pos, period) if period else np.zeros_like(pos)
    return np.where(folded < n, folded, period - folded)


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant",
        value: float | None = None) -> Tensor:
    """Pad the last ``len(pad) // 2`` dims; ``pad`` lists (left, right) of the last dim
    first, as in PyTorch. Modes: constant (negative pads crop), reflect, replicate, circular.

    >>> import lightgrad as lg
    >>> pad(lg.ones(1, 2), (1, 0), value=5.0)
    tensor([[5., 1., 1.]])
    >>> pad(lg.arange(3.0).reshape(1, 3), (2, 1), mode="reflect")
    tensor([[2., 1., 0., 1., 2., 1.]])
    """
    _check_tensor("pad", "input", input)
    if mode == "constant":
        grow = tuple(max(int(p), 0) for p in pad)
        out = functions.pad(input, grow, value=0.0 if value is None else value) \
            if any(grow) else input
        if any(p < 0 for p in pad):
            pairs = _pad_pairs("pad", input.ndim, pad)
            out = out[tuple(slice(-min(b, 0), n + min(a, 0))
                            for (b, a), n in zip(pairs, out.shape))]
        return out
    if mode not in ("reflect", "replicate", "circular"):
        raise ValueError(f"pad: mode must be 'constant', 'reflect', 'replicate' or "
                         f"'circular', got {mode!r}")
    out = input
    for axis, (before, after) in enumerate(_pad_pairs("pad", input.ndim, pad)):
        if not before and not after:
            continue
        n = input.shape[axis]
        limit = n - 1 if mode == "reflect" else n
        if min(before, after) < 0 or max(before, after) > limit or n == 0:
            raise ValueError(f"pad: {mode} padding ({before}, {after}) is invalid for dim "
                             f"{axis} of size {n} in input of shape {tuple(input.shape)} "
                             f"(each pad must be in [0, {limit}])")
        index = wrap(input.device.backend.from_numpy(_source_index(mode, n, before, after)),
                     input.device)
        out = IndexSelect.apply(out, axis, index)
    return out


# ----------------------------------------------------------------------------- embedding


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None,
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of ``weight`` (num_embeddings, dim) picked by the integer ``input``; gradients
    of repeated ids add up, and the row ``padding_idx`` gets no gradient.

    >>> import lightgrad as lg
    >>> embedding(lg.tensor([[0, 2]]), lg.eye(3)).tolist()
    [[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]]
    """
    _check_tensor("embedding", "input", input)
    _check_float("embedding", "weight", weight)
    if input.dtype.is_floating_point or input.dtype is dtypes.bool_:
        raise TypeError(f"embedding: input must hold integer ids, got {describe(input)}")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must have 2 dims (num_embeddings, "
                         f"embedding_dim), got shape {tuple(weight.shape)}")
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: max_norm, scale_grad_by_freq and sparse are "
                                  "not supported")
    n = weight.shape[0]
    if input.numel():  # range check on the raw buffer: no autograd nodes, no Tensor wraps
        be, axes = input.device.backend, input._dims("embedding", None)
        lo = int(be.to_numpy(be.amin(input._data, axes, False)))
        hi = int(be.to_numpy(be.amax(input._data, axes, False)))
        if lo < 0 or hi >= n:
            raise IndexError(f"embedding: index out of range: ids must be in [0, {n}) for "
                             f"weight of shape {tuple(weight.shape)}, got values in "
                             f"[{lo}, {hi}]")
    flat = input.long().reshape(-1)
    out = IndexSelect.apply(weight, 0, flat)
    if padding_idx is not None:
        padding_idx = padding_idx % n
        keep = (flat != padding_idx).to(out.dtype).unsqueeze(-1)
        out = out * keep + out.detach() * (1 - keep)  # same values, no gradient at padding
    return out.reshape(*input.shape, weight.shape[1])


# ----------------------------------------------------------------------------- simple losses


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean squared error.

    >>> import lightgrad as lg
    >>> mse_loss(lg.tensor([1.0, 3.0]), lg.tensor([0.0, 0.0]))
    tensor(5.)
    """
    _same_shape("mse_loss", input, target)
    diff = input - target
    return reduce_loss("mse_loss", diff * diff, reduction)


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean absolute error.

    >>> import lightgrad as lg
    >>> l1_loss(lg.tensor([1.0, -3.0]), lg.tensor([0.0, 0.0]))
    tensor(2.)
    """
    _same_shape("l1_loss", input, target)
    return reduce_loss("l1_loss", (input - target).abs(), reduction)


def smooth_l1_loss(input: Tensor, target: Tensor, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """0.5 * d**2 / beta where |d| < beta, else |d| - 0.5 * beta (d = input - target).

    >>> import lightgrad as lg
    >>> smooth_l1_loss(lg.tensor([0.5, 3.0]), lg.zeros(2), reduction="sum")
    tensor(2.6250)
    """
    _same_shape("smooth_l1_loss", input, target)
    d = (input - target).abs()
    if beta == 0:
        return reduce_loss("smooth_l1_loss", d, reduction)
    loss = (d * d * (0.5 / beta)).where(d < beta, d - 0.5 * beta)
    return reduce_loss("smooth_l1_loss", loss, reduction)


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean",
               delta: float = 1.0) -> Tensor:
    """``delta * smooth_l1_loss(input, target, beta=delta)``.

    >>> import lightgrad as lg
    >>> huber_loss(lg.tensor([3.0]), lg.zeros(1), delta=2.0)
    tensor(4.)
    """
    return smooth_l1_loss(input, target, reduction, beta=delta) * delta


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         reduction: str = "mean") -> Tensor:
    """-(t * log(p) + (1 - t) * log(1 - p)) for probabilities ``p``; logs clamped at -100.

    >>> import lightgrad as lg
    >>> binary_cross_entropy(lg.tensor([0.5]), lg.tensor([1.0]))
    tensor(0.6931)
    """
    _same_shape("binary_cross_entropy", input, target)
    log_p = input.log().clamp(min=-100.0)
    log_q = (1 - input).log().clamp(min=-100.0)
    loss = -(target * log_p + (1 - target) * log_q)
    if weight is not None:
        loss = loss * weight
    return reduce_loss("binary_cross_entropy", loss, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor,
                                     weight: Tensor | None = None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """Sigmoid + binary cross-entropy in one numerically stable formula:
    ``(1 - t) * x + (1 + (pos_weight - 1) * t) * softplus(-x)``.

    >>> import lightgrad as lg
    >>> binary_cross_entropy_with_logits(lg.tensor([0.0]), lg.tensor([1.0]))
    tensor(0.6931)
    """
    op = "binary_cross_entropy_with_logits"
    _same_shape(op, input, target)
    _check_float(op, "input", input)
    soft = (-input).softplus(threshold=None)  # log(1 + exp(-x)), stable for any x
    if pos_weight is not None:
        soft = soft * ((pos_weight - 1) * target + 1)
    loss = (1 - target) * input + soft
    if weight is not None:
        loss = loss * weight
    return reduce_loss(op, loss, reduction)


def kl_div(input: Tensor, target: Tensor, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """KL divergence with ``input`` as log-probabilities: ``t * (log t - input)``.

    >>> import lightgrad as lg
    >>> kl_div(lg.tensor([0.5, 0.5]).log(), lg.tensor([0.5, 0.5]), reduction="sum")
    tensor(0.)
    """
    _same_shape("kl_div", input, target)
    if log_target:
        loss = target.exp() * (target - input)
    else:
        safe = target.where(target > 0, 1.0)
        loss = (target * (safe.log() - input)).where(target > 0, 0.0)
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return reduce_loss("kl_div", loss, reduction)



# ----------------------------------------------------------------------------- interpolate


def _interp_scales(op: str, input: Tensor, size: Any, scale_factor: Any) -> tuple:
    """(output sizes, source-per-output scales or None) for each spatial dim."""
    n = input.ndim - 2
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: exactly one of size or scale_factor should be defined")
    if size is not None:
        sizes = tuple(int(s) for s in (size if isinstance(size, (tuple, list)) else [size] * n))
        if len(sizes) != n:
            raise ValueError(f"{op}: size {size} must have {n} elements for input of shape "
                             f"{tuple(input.shape)}")
        return sizes, (None,) * n
    factors = tuple(float(f) for f in (scale_factor if isinstance(scale_factor, (tuple, list))
                                       else [scale_factor] * n))
    if len(factors) != n:
        raise ValueError(f"{op}: scale_factor {scale_factor} must have {n} elements for input "
                         f"of shape {tuple(input.shape)}")
    sizes = tuple(int(np.floor(s * f)) for s, f in zip(input.shape[2:], factors))
    return sizes, tuple(1.0 / f for f in factors)


def interpolate(input: Tensor, size: Any = None, scale_factor: Any = None,
                mode: str = "nearest", align_corners: bool | None = None,
                recompute_scale_factor: bool | None = None, antialias: bool = False) -> Tensor:
    """Resize (N, C, L) or (N, C, H, W) input to ``size`` or by ``scale_factor``.

    ``mode``: ``'nearest'`` (3-D/4-D), ``'linear'`` (3-D) or ``'bilinear'`` (4-D), with
    PyTorch's source-index rules (``align_corners`` for the linear modes). Differentiable
    (built from index_select and elementwise ops).

    >>> import lightgrad as lg
    >>> interpolate(lg.arange(4.0).reshape(1, 1, 2, 2), scale_factor=2).shape
    (1, 1, 4, 4)
    >>> interpolate(lg.tensor([[[0.0, 1.0]]]), size=3, mode="linear", align_corners=True)
    tensor([[[0.0000, 0.5000, 1.0000]]])
    """
    from ..creation import tensor as _tensor
    op = "interpolate"
    _check_float(op, "input", input)
    if input.ndim not in (3, 4):
        raise NotImplementedError(f"{op}: only 3-D and 4-D input is supported, got shape "
                                  f"{tuple(input.shape)}")
    linear_mode = {3: "linear", 4: "bilinear"}[input.ndim]
    if mode not in ("nearest", linear_mode):
        raise NotImplementedError(f"{op}: mode {mode!r} is not supported for "
                                  f"{input.ndim}-D input (use 'nearest' or {linear_mode!r})")
    if mode == "nearest" and align_corners is not None:
        raise ValueError(f"{op}: align_corners option can only be set with the interpolating "
                         "modes: linear | bilinear | bicubic | trilinear")
    if antialias:
        raise NotImplementedError(f"{op}: antialias is not supported")
    sizes, scales = _interp_scales(op, input, size, scale_factor)
    if recompute_scale_factor:
        scales = (None,) * len(sizes)
    out = input
    for i, (n_out, scale) in enumerate(zip(sizes, scales)):
        dim, n_in = 2 + i, input.shape[2 + i]
        dst = np.arange(n_out, dtype=np.float64)
        if mode == "nearest":
            s = n_in / n_out if scale is None else scale
            src = np.minimum(np.floor(dst * s).astype(np.int64), n_in - 1)
            out = out.index_select(dim, _tensor(src, device=input.device))
            continue
        if align_corners:
            pos = dst * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
        else:
            s = n_in / n_out if scale is None else scale
            pos = np.maximum((dst + 0.5) * s - 0.5, 0.0)
        i0 = np.minimum(np.floor(pos).astype(np.int64), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        shape = [1] * input.ndim
        shape[dim] = n_out
        w1 = _tensor((pos - i0).reshape(shape), dtype=input.dtype, device=input.device)
        lo = out.index_select(dim, _tensor(i0, device=input.device))
        hi = out.index_select(dim, _tensor(i1, device=input.device))
        out = lo * (1.0 - w1) + hi * w1
    return out
