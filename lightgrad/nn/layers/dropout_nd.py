"""Channel dropout ``Dropout1d``/``Dropout2d``: zero whole channels with probability ``p``.

>>> import lightgrad as lg
>>> from lightgrad import nn
>>> nn.Dropout2d(0.5).eval()(lg.ones(1, 2, 2, 2)).sum().item()
8.0
"""
from __future__ import annotations

from ...creation import rand
from ...tensor import Tensor
from ..module import Module
from ._common import check_input


class _DropoutNd(Module):
    _n = 0

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 <= p <= 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, input: Tensor) -> Tensor:
        n = self._n
        check_input(self, input, (n + 1, n + 2))
        if not self.training or self.p == 0:
            return input
        # one keep/drop draw per (batch, channel); spatial dims broadcast
        shape = tuple(input.shape[:-n]) + (1,) * n
        keep = (rand(*shape, dtype=input.dtype, device=input.device) >= self.p)
        if self.p == 1:
            return input * keep.to(input.dtype)
        return input * keep.to(input.dtype) * (1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout1d(_DropoutNd):
    """Zero whole channels of (N, C, L) or (C, L) input in training.

    >>> Dropout1d(0.2)
    Dropout1d(p=0.2, inplace=False)
    """

    _n = 1


class Dropout2d(_DropoutNd):
    """Zero whole channels of (N, C, H, W) or (C, H, W) input in training.

    >>> import lightgrad as lg
    >>> out = Dropout2d(0.5)(lg.ones(4, 3, 2, 2))
    >>> bool(((out == 0) | (out == 2)).all().item())
    True
    """

    _n = 2
