"""2-D pooling layers: ``MaxPool2d``, ``AvgPool2d`` and ``AdaptiveAvgPool2d``.

Each accepts (N, C, H, W) or unbatched (C, H, W) input and stores its arguments as given
(``kernel_size=2`` stays ``2``), so reprs match PyTorch's.

>>> import lightgrad as lg
>>> from lightgrad import nn
>>> nn.MaxPool2d(2)(lg.ones(1, 3, 4, 4)).shape
(1, 3, 2, 2)
"""
from __future__ import annotations

from typing import Any, Callable

from ...tensor import Tensor
from .. import functional as F
from ..module import Module
from ._common import check_input, ntuple


def _pool(layer: Module, input: Tensor, fn: Callable[[Tensor], Any]) -> Any:
    """Run ``fn`` on 4-D input, adding and removing a batch dim for 3-D input."""
    check_input(layer, input, (3, 4))
    if input.ndim == 4:
        return fn(input)
    out = fn(input.unsqueeze(0))
    if isinstance(out, tuple):
        return tuple(o.squeeze(0) for o in out)
    return out.squeeze(0)


class MaxPool2d(Module):
    """The maximum over each ``kernel_size`` window (stride defaults to kernel_size).

    >>> MaxPool2d(3, stride=2, padding=1)
    MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)
    """

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 dilation: Any = 1, return_indices: bool = False, ceil_mode: bool = False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input: Tensor) -> Any:
        return _pool(self, input, lambda x: F.max_pool2d(
            x, self.kernel_size, self.stride, self.padding, self.dilation,
            ceil_mode=self.ceil_mode, return_indices=self.return_indices))

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
                f", dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """The mean over each ``kernel_size`` window (stride defaults to kernel_size).

    >>> import lightgrad as lg
    >>> AvgPool2d(2)(lg.ones(1, 1, 2, 2))
    tensor([[[[1.]]]])
    """

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return _pool(self, input, lambda x: F.avg_pool2d(
            x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
            self.count_include_pad, self.divisor_override))

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average-pool to a fixed ``output_size`` (an int, a pair, or None to keep a dim).

    >>> import lightgrad as lg
    >>> AdaptiveAvgPool2d((1, 1))(lg.ones(2, 3, 5, 7)).shape
    (2, 3, 1, 1)
    """

    def __init__(self, output_size: Any):
        super().__init__()
        self.output_size = output_size

    def forward(self, input: Tensor) -> Tensor:
        return _pool(self, input, lambda x: F.adaptive_avg_pool2d(x, self._size(x)))

    def _size(self, x: Tensor) -> tuple[int, int]:
        """``output_size`` as two ints (None keeps that input dim)."""
        size = ntuple(self.output_size, 2)
        return tuple(x.shape[2 + i] if s is None else s for i, s in enumerate(size))

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
