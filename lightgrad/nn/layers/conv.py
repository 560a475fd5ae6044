"""Convolution layers ``Conv1d`` and ``Conv2d`` (stride, padding incl. 'same'/'valid',
dilation, groups, bias, padding_mode) over the fused ``F.conv1d``/``F.conv2d``.

The weight has shape (out_channels, in_channels // groups, *kernel_size) and is initialised
like PyTorch's: ``kaiming_uniform_(a=sqrt(5))``, bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

>>> import lightgrad as lg
>>> from lightgrad import nn
>>> conv = nn.Conv2d(3, 8, kernel_size=3, padding="same")
>>> conv(lg.ones(1, 3, 5, 5)).shape
(1, 8, 5, 5)
"""
from __future__ import annotations

import math
from typing import Any

from ...creation import empty
from ...tensor import Tensor
from .. import functional as F
from .. import init
from ..module import Module
from ..parameter import Parameter
from ._common import check_input, describe, ntuple

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvBase(Module):
    """What convolutions and transposed convolutions share: PyTorch's initialisation and
    repr (``_n`` spatial dims; ``weight``, ``bias`` and the geometry attributes set by the
    subclass)."""

    _n = 0

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * self._n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self._n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _ConvNd(_ConvBase):
    """What Conv1d and Conv2d share; ``_n`` is the number of spatial dims."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", device: Any = None, dtype: Any = None):
        super().__init__()
        name, n = type(self).__name__, self._n
        if groups <= 0 or in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must be divisible by groups ({groups})")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {_PADDING_MODES}, got "
                             f"{padding_mode!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = ntuple(kernel_size, n), ntuple(stride, n)
        self.dilation, self.groups = ntuple(dilation, n), groups
        self.padding_mode = padding_mode
        self.output_padding, self.transposed = (0,) * n, False
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{name}: padding must be 'same', 'valid' or ints, got "
                                 f"{padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided "
                                 "convolutions")
            self.padding = padding
        else:
            self.padding = ntuple(padding, n)
        self._pads = self._padding_pairs()
        self.weight = Parameter(empty(out_channels, in_channels // groups, *self.kernel_size,
                                      device=device, dtype=dtype))
        if bias:
            self.bias = Parameter(empty(out_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def _padding_pairs(self) -> list[tuple[int, int]]:
        """(before, after) padding per spatial dim; 'same' puts the odd one after."""
        if self.padding == "valid":
            return [(0, 0)] * self._n
        if self.padding == "same":
            pairs = []
            for d, k in zip(self.dilation, self.kernel_size):
                total = d * (k - 1)
                pairs.append((total // 2, total - total // 2))
            return pairs
        return [(p, p) for p in self.padding]

    def _conv(self, input: Tensor, padding: tuple[int, ...]) -> Tensor:
        raise NotImplementedError

    def forward(self, input: Tensor) -> Tensor:
        n = self._n
        check_input(self, input, (n + 1, n + 2))
        unbatched = input.ndim == n + 1
        x = input.unsqueeze(0) if unbatched else input
        if x.shape[1] != self.in_channels:
            raise RuntimeError(f"{describe(self)}: expected {self.in_channels} input channels, "
                               f"got input of shape {tuple(input.shape)}")
        symmetric = all(b == a for b, a in self._pads)
        if self.padding_mode == "zeros" and symmetric:
            out = self._conv(x, tuple(b for b, _ in self._pads))
        else:
            flat = [p for pair in reversed(self._pads) for p in pair]  # last dim first
            mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
            out = self._conv(F.pad(x, flat, mode=mode), (0,) * n)
        return out.squeeze(0) if unbatched else out

    def _short_repr(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"kernel_size={self.kernel_size})")



class Conv1d(_ConvNd):
    """1-D convolution over (N, C, L) or unbatched (C, L) input.

    >>> import lightgrad as lg
    >>> Conv1d(2, 4, kernel_size=3, stride=2)(lg.ones(1, 2, 9)).shape
    (1, 4, 4)
    """

    _n = 1

    def _conv(self, input: Tensor, padding: tuple[int, ...]) -> Tensor:
        return F.conv1d(input, self.weight, self.bias, self.stride, padding, self.dilation,
                        self.groups)


class Conv2d(_ConvNd):
    """2-D convolution over (N, C, H, W) or unbatched (C, H, W) input.

    >>> Conv2d(3, 8, kernel_size=3, stride=2, bias=False)
    Conv2d(3, 8, kernel_size=(3, 3), stride=(2, 2), bias=False)
    """

    _n = 2

    def _conv(self, input: Tensor, padding: tuple[int, ...]) -> Tensor:
        return F.conv2d(input, self.weight, self.bias, self.stride, padding, self.dilation,
                        self.groups)
