"""Weight initialisation, in place and outside the graph, with PyTorch's names and formulas.

Each ``*_`` function fills a tensor (usually a Parameter) under ``no_grad`` and returns it.
Kaiming (He) and Xavier (Glorot) scale by the tensor's fans: for a weight of shape
``(out, in, *kernel)``, ``fan_in = in * prod(kernel)`` and ``fan_out = out * prod(kernel)``.

>>> import lightgrad as lg
>>> from lightgrad.nn import init
>>> w = lg.empty(64, 32)
>>> _ = init.kaiming_uniform_(w, nonlinearity="relu")
>>> bool(w.abs().max() <= (6 / 32) ** 0.5)
True
"""
from __future__ import annotations

import math
import warnings
from typing import Any

from .. import dtypes
from ..autograd import no_grad
from ..creation import empty_like
from ..tensor import Tensor

_LINEAR_FNS = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
               "conv_transpose3d")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity: 1 (linear, conv, sigmoid), 5/3 (tanh),
    sqrt(2) (relu), sqrt(2 / (1 + slope**2)) (leaky_relu, slope 0.01 by default), 3/4 (selu).

    >>> round(calculate_gain("leaky_relu", 0.2), 4)
    1.3868
    """
    if nonlinearity in _LINEAR_FNS or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of shape ``(out, in, *receptive_field)``.

    >>> import lightgrad as lg
    >>> _calculate_fan_in_and_fan_out(lg.empty(8, 3, 5, 5))
    (75, 200)
    """
    if tensor.dim() < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 "
                         f"dimensions (got shape {tuple(tensor.shape)})")
    receptive = math.prod(tensor.shape[2:])
    return tensor.size(1) * receptive, tensor.size(0) * receptive


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    mode = mode.lower()
    valid = ["fan_in", "fan_out"]
    if mode not in valid:
        raise ValueError(f"Mode {mode} not supported, please use one of {valid}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fill with values from U(a, b).

    >>> import lightgrad as lg
    >>> bool(uniform_(lg.empty(100), -1, 1).abs().max() <= 1)
    True
    """
    with no_grad():
        return tensor.uniform_(a, b)


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fill with values from N(mean, std**2).

    >>> import lightgrad as lg
    >>> normal_(lg.empty(3), 0.0, 0.02).shape
    (3,)
    """
    with no_grad():
        return tensor.normal_(mean, std)


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with ``val``.

    >>> import lightgrad as lg
    >>> constant_(lg.empty(2), 0.5)
    tensor([0.5000, 0.5000])
    """
    with no_grad():
        return tensor.fill_(val)


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with 0.

    >>> import lightgrad as lg
    >>> zeros_(lg.empty(2))
    tensor([0., 0.])
    """
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    """Fill with 1.

    >>> import lightgrad as lg
    >>> ones_(lg.empty(2))
    tensor([1., 1.])
    """
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Glorot uniform: U(-a, a) with ``a = gain * sqrt(6 / (fan_in + fan_out))``.

    >>> import lightgrad as lg
    >>> bool(xavier_uniform_(lg.empty(4, 2)).abs().max() <= 1.0)
    True
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Glorot normal: N(0, std**2) with ``std = gain * sqrt(2 / (fan_in + fan_out))``.

    >>> import lightgrad as lg
    >>> xavier_normal_(lg.empty(4, 2)).shape
    (4, 2)
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std)


def _kaiming_std(tensor: Tensor, a: float, mode: str, nonlinearity: str) -> float | None:
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return None
    fan = _calculate_correct_fan(tensor, mode)
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu") -> Tensor:
    """He uniform: U(-bound, bound) with ``bound = gain * sqrt(3 / fan)``; ``a`` is the
    leaky_relu slope used in the gain. Linear and Conv use ``a=sqrt(5)``.

    >>> import lightgrad as lg
    >>> bool(kaiming_uniform_(lg.empty(3, 5), a=5 ** 0.5).abs().max() <= 1 / 5 ** 0.5)
    True
    """
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    if std is None:
        return tensor
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu") -> Tensor:
    """He normal: N(0, std**2) with ``std = gain / sqrt(fan)``.

    >>> import lightgrad as lg
    >>> kaiming_normal_(lg.empty(3, 5), mode="fan_out", nonlinearity="relu").shape
    (3, 5)
    """
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    if std is None:
        return tensor
    return normal_(tensor, 0.0, std)


def _norm_cdf(x: float) -> float:
    return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0) -> Tensor:
    """Fill with N(mean, std**2) restricted to [a, b] (``a`` and ``b`` are absolute values,
    not multiples of std), by PyTorch's method: redraw normals outside [a, b] when that
    window holds over 30% of the mass, otherwise accept uniform proposals on [a, b] with
    probability pdf(x) / pdf(mode).

    >>> import lightgrad as lg
    >>> w = trunc_normal_(lg.empty(1000), std=0.02, a=-0.04, b=0.04)
    >>> bool(w.abs().max() <= 0.04)
    True
    """
    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. The "
                      "distribution of values may be incorrect.", stacklevel=2)
    work_dtype = dtypes.float32 if tensor.dtype.itemsize < 4 else tensor.dtype
    with no_grad():
        mass = _norm_cdf((b - mean) / std) - _norm_cdf((a - mean) / std)
        if mass > 0.3:
            result = _redraw_normal(tensor, work_dtype, mean, std, a, b)
        else:
            result = _uniform_rejection(tensor, work_dtype, mean, std, a, b)
        return tensor.copy_(result)


def _redraw_normal(like: Tensor, dtype: Any, mean: float, std: float, a: float,
                   b: float) -> Tensor:
    result = empty_like(like, dtype=dtype).normal_(mean, std)
    while True:
        outside = (result < a) | (result > b)
        if not outside.any().item():
            return result
        result = empty_like(result).normal_(mean, std).where(outside, result)


def _uniform_rejection(like: Tensor, dtype: Any, mean: float, std: float, a: float,
                       b: float) -> Tensor:
    mode = max(a, min(mean, b))
    log_peak = -0.5 * ((mode - mean) / std) ** 2
    result = empty_like(like, dtype=dtype)
    pending = None
    while pending is None or pending.any().item():
        candidates = empty_like(result).uniform_(a, b)
        log_accept = -0.5 * ((candidates - mean) / std) ** 2 - log_peak
        rejected = empty_like(result).uniform_().log() > log_accept
        if pending is None:
            result, pending = candidates, rejected
        else:
            result = candidates.where(pending, result)
            pending = rejected.logical_and(pending)
    return result
