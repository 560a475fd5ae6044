"""Transposed convolution layers ``ConvTranspose1d``/``ConvTranspose2d`` over the fused
``F.conv_transpose1d``/``F.conv_transpose2d`` (the gradient of conv w.r.t. its input).

The weight has shape (in_channels, out_channels // groups, *kernel_size) and is initialised
like PyTorch's: ``kaiming_uniform_(a=sqrt(5))``, bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

>>> import lightgrad as lg
>>> from lightgrad import nn
>>> up = nn.ConvTranspose2d(3, 2, kernel_size=2, stride=2)
>>> up.weight.shape, up(lg.ones(1, 3, 4, 4)).shape
((3, 2, 2, 2), (1, 2, 8, 8))
"""
from __future__ import annotations

from typing import Any, Sequence

from ...creation import empty
from ...tensor import Tensor
from .. import functional as F
from ..parameter import Parameter
from ._common import check_input, ntuple
from .conv import _ConvBase


class _ConvTransposeNd(_ConvBase):
    """What ConvTranspose1d and ConvTranspose2d share; ``_n`` is the number of spatial dims."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, output_padding: Any = 0, groups: int = 1, bias: bool = True,
                 dilation: Any = 1, padding_mode: str = "zeros", device: Any = None,
                 dtype: Any = None):
        super().__init__()
        name, n = type(self).__name__, self._n
        if groups <= 0 or in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must be divisible by groups ({groups})")
        if padding_mode != "zeros":
            raise ValueError(f"Only \"zeros\" padding mode is supported for {name}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = ntuple(kernel_size, n), ntuple(stride, n)
        self.padding, self.dilation = ntuple(padding, n), ntuple(dilation, n)
        self.output_padding, self.groups = ntuple(output_padding, n), groups
        self.transposed, self.padding_mode = True, padding_mode
        self.weight = Parameter(empty(in_channels, out_channels // groups, *self.kernel_size,
                                      device=device, dtype=dtype))
        if bias:
            self.bias = Parameter(empty(out_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def _output_padding(self, input: Tensor, output_size: Sequence[int] | None) -> tuple:
        if output_size is None:
            return self.output_padding
        size = tuple(int(s) for s in output_size)[-self._n:]
        if len(size) != self._n:
            raise ValueError(f"{type(self).__name__}: output_size must have {self._n} or "
                             f"{self._n + 2} elements, got {tuple(output_size)}")
        pads = []
        for i in range(self._n):
            smallest = ((input.shape[-self._n + i] - 1) * self.stride[i]
                        - 2 * self.padding[i] + self.dilation[i] * (self.kernel_size[i] - 1)
                        + 1)
            extra = size[i] - smallest
            if not 0 <= extra < max(self.stride[i], self.dilation[i]):
                raise ValueError(f"{type(self).__name__}: requested an output size of "
                                 f"{size}, which cannot be reached from input of shape "
                                 f"{tuple(input.shape)}")
            pads.append(extra)
        return tuple(pads)

    def forward(self, input: Tensor, output_size: Sequence[int] | None = None) -> Tensor:
        check_input(self, input, (self._n + 1, self._n + 2))
        batched = input.ndim == self._n + 2
        x = input if batched else input.unsqueeze(0)
        if x.shape[1] != self.in_channels:
            raise RuntimeError(f"{type(self).__name__}: expected input with "
                               f"{self.in_channels} channels, got shape {tuple(input.shape)}")
        op = F.conv_transpose1d if self._n == 1 else F.conv_transpose2d
        out = op(x, self.weight, self.bias, self.stride, self.padding,
                 self._output_padding(x, output_size), self.groups, self.dilation)
        return out if batched else out.squeeze(0)


class ConvTranspose1d(_ConvTransposeNd):
    """Transposed 1-d convolution over (N, C_in, L) or (C_in, L) input.

    >>> import lightgrad as lg
    >>> ConvTranspose1d(2, 3, 3, stride=2, output_padding=1)(lg.ones(1, 2, 4)).shape
    (1, 3, 10)
    """

    _n = 1


class ConvTranspose2d(_ConvTransposeNd):
    """Transposed 2-d convolution over (N, C_in, H, W) or (C_in, H, W) input.

    >>> import lightgrad as lg
    >>> ConvTranspose2d(2, 4, 3, padding=1, groups=2)(lg.ones(2, 3, 3)).shape
    (4, 3, 3)
    """

    _n = 2
