"""``Linear`` (y = x W^T + b), ``Identity`` and ``Flatten``/``Unflatten``.

>>> import lightgrad as lg
>>> from lightgrad import nn
>>> fc = nn.Linear(4, 2)
>>> fc.weight.shape, fc(lg.ones(3, 4)).shape
((2, 4), (3, 2))
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from ...creation import empty
from ...ops.linalg import check_same_dtype
from ...tensor import Tensor
from .. import functional as F
from .. import init
from ..module import Module
from ..parameter import Parameter
from ._common import check_input, describe


class Identity(Module):
    """Returns its input unchanged (arguments are accepted and ignored, as in PyTorch).

    >>> import lightgrad as lg
    >>> Identity(54, unused="x")(lg.ones(1))
    tensor([1.])
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return input


class Linear(Module):
    """``y = x @ weight.T + bias`` over the last dim; weight (out_features, in_features).

    Initialised like PyTorch: weight by ``kaiming_uniform_(a=sqrt(5))``, i.e.
    U(-1/sqrt(in), 1/sqrt(in)), and bias U(-1/sqrt(in), 1/sqrt(in)).

    >>> import lightgrad as lg
    >>> Linear(3, 1, bias=False)(lg.zeros(2, 3))
    tensor([[0.],
            [0.]], grad_fn=<LinearBackward>)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device: Any = None, dtype: Any = None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(empty(out_features, in_features, device=device, dtype=dtype))
        if bias:
            self.bias = Parameter(empty(out_features, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        check_input(self, input, ())
        if input.ndim == 0 or input.shape[-1] != self.in_features:
            raise RuntimeError(f"{describe(self)}: expected input with last dim "
                               f"{self.in_features}, got shape {tuple(input.shape)}")
        # PyTorch never converts the input: an int or float64 batch into float32 weights
        # is "mat1 and mat2 must have the same dtype, but got Double and Float"
        weight = self.weight  # a registry lookup (Module.__getattr__): read once
        check_same_dtype(input, weight)
        return F.linear(input, weight, self.bias)

    def _short_repr(self) -> str:
        return f"Linear(in_features={self.in_features}, out_features={self.out_features})"

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Flatten(Module):
    """Flatten dims ``start_dim..end_dim`` into one (by default all but the batch dim).

    >>> import lightgrad as lg
    >>> Flatten()(lg.ones(2, 3, 4)).shape
    (2, 12)
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input: Tensor) -> Tensor:
        return check_input(self, input, ()).flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dim ``dim`` into ``unflattened_size``.

    >>> import lightgrad as lg
    >>> Unflatten(1, (3, 4))(lg.ones(2, 12)).shape
    (2, 3, 4)
    """

    def __init__(self, dim: int, unflattened_size: Sequence[int]):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, input: Tensor) -> Tensor:
        return check_input(self, input, ()).unflatten(self.dim, self.unflattened_size)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
