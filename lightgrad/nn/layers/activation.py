"""Activation layers: thin Modules over ``nn.functional`` with PyTorch's arguments and reprs.

``inplace=True`` is accepted for compatibility; the result is computed out of place.

>>> import lightgrad as lg
>>> from lightgrad import nn
>>> nn.ReLU()(lg.tensor([-1.0, 2.0]))
tensor([0., 2.])
"""
from __future__ import annotations


from ...tensor import Tensor
from .. import functional as F
from ..module import Module
from ._common import check_input


class _Inplace(Module):
    """An activation with an ``inplace`` flag, shown in the repr only when True."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class ReLU(_Inplace):
    """max(x, 0).

    >>> ReLU(inplace=True)
    ReLU(inplace=True)
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.relu(check_input(self, input, ()))


class ReLU6(_Inplace):
    """min(max(x, 0), 6).

    >>> import lightgrad as lg
    >>> ReLU6()(lg.tensor([7.0]))
    tensor([6.])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.relu6(check_input(self, input, ()))


class SiLU(_Inplace):
    """x * sigmoid(x) (also called swish).

    >>> import lightgrad as lg
    >>> SiLU()(lg.zeros(1))
    tensor([0.])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.silu(check_input(self, input, ()))


class Mish(_Inplace):
    """x * tanh(softplus(x)).

    >>> import lightgrad as lg
    >>> Mish()(lg.zeros(1))
    tensor([0.])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.mish(check_input(self, input, ()))


class LeakyReLU(Module):
    """x where x >= 0, else negative_slope * x.

    >>> import lightgrad as lg
    >>> LeakyReLU(0.1)(lg.tensor([-2.0]))
    tensor([-0.2000])
    """

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.leaky_relu(check_input(self, input, ()), self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace
                                                          else "")


class ELU(Module):
    """x where x > 0, else alpha * (exp(x) - 1).

    >>> import lightgrad as lg
    >>> ELU()(lg.tensor([0.0]))
    tensor([0.])
    """

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.elu(check_input(self, input, ()), self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class GELU(Module):
    """Gaussian error linear unit; ``approximate="tanh"`` uses the tanh formula.

    >>> GELU(approximate="tanh")
    GELU(approximate='tanh')
    """

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input: Tensor) -> Tensor:
        return F.gelu(check_input(self, input, ()), approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Softplus(Module):
    """log(1 + exp(beta * x)) / beta, linear above ``threshold``.

    >>> Softplus(beta=2.0)
    Softplus(beta=2.0, threshold=20.0)
    """

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input: Tensor) -> Tensor:
        return F.softplus(check_input(self, input, ()), self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Tanh(Module):
    """tanh(x).

    >>> import lightgrad as lg
    >>> Tanh()(lg.zeros(1))
    tensor([0.])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.tanh(check_input(self, input, ()))


class Sigmoid(Module):
    """1 / (1 + exp(-x)).

    >>> import lightgrad as lg
    >>> Sigmoid()(lg.zeros(1))
    tensor([0.5000])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.sigmoid(check_input(self, input, ()))


def _legacy_softmax_dim(ndim: int) -> int:
    """PyTorch's implicit dim for ``Softmax()`` without ``dim``: 0 for 0-, 1- and 3-D input,
    else 1."""
    return 0 if ndim in (0, 1, 3) else 1


class Softmax(Module):
    """exp(x) / sum(exp(x)) along ``dim``.

    >>> import lightgrad as lg
    >>> Softmax(dim=-1)(lg.zeros(1, 2))
    tensor([[0.5000, 0.5000]])
    """

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        check_input(self, input, ())
        dim = self.dim if self.dim is not None else _legacy_softmax_dim(input.ndim)
        return F.softmax(input, dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log(softmax(x)) along ``dim``, computed stably.

    >>> import lightgrad as lg
    >>> LogSoftmax(dim=0)(lg.zeros(2)).exp()
    tensor([0.5000, 0.5000])
    """

    def forward(self, input: Tensor) -> Tensor:
        check_input(self, input, ())
        dim = self.dim if self.dim is not None else _legacy_softmax_dim(input.ndim)
        return F.log_softmax(input, dim)
