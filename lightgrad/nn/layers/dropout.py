"""``Dropout``: zero elements with probability ``p`` in training, identity in eval.

>>> import lightgrad as lg
>>> from lightgrad import nn
>>> drop = nn.Dropout(0.5).eval()
>>> drop(lg.ones(3))
tensor([1., 1., 1.])
"""
from __future__ import annotations

from ...tensor import Tensor
from .. import functional as F
from ..module import Module
from ._common import check_input


class Dropout(Module):
    """Zero each element with probability ``p`` and scale the others by 1/(1-p) while
    training; pass the input through unchanged in eval mode.

    >>> Dropout(0.1)
    Dropout(p=0.1, inplace=False)
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 <= p <= 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(check_input(self, input, ()), self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
