"""``Parameter``: a Tensor that a ``Module`` registers as one of its learnable weights.

Assigning a Parameter to a module attribute (``self.weight = Parameter(...)``) adds it to
``module.parameters()``; a plain Tensor attribute is not. A Parameter shares memory with the
tensor it was made from and requires grad by default.

>>> import lightgrad as lg
>>> from lightgrad.nn import Parameter
>>> p = Parameter(lg.zeros(2))
>>> p.requires_grad, isinstance(p, lg.Tensor)
(True, True)
>>> p
Parameter containing:
tensor([0., 0.], requires_grad=True)
"""
from __future__ import annotations

from typing import Any

from ..creation import empty
from ..tensor import Tensor


class Parameter(Tensor):
    """A learnable tensor of a Module: ``Parameter(data, requires_grad=True)``.

    >>> import lightgrad as lg
    >>> Parameter(lg.ones(1), requires_grad=False).requires_grad
    False
    """

    __slots__ = ()

    def __new__(cls, data: Tensor | None = None, requires_grad: bool = True) -> "Parameter":
        if data is None:
            data = empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter: data must be a Tensor, got {type(data).__name__}")
        if requires_grad and not data.dtype.is_floating_point:
            raise RuntimeError(f"Parameter: only floating-point tensors can require gradients, "
                               f"got {data.dtype.name} of shape {tuple(data.shape)}; pass "
                               "requires_grad=False")
        param = object.__new__(cls)
        param._data, param.device = data._data, data.device
        param.grad, param.grad_fn, param._output_nr = None, None, 0
        param._version, param._hooks, param._base = data._version, None, None
        param.requires_grad = bool(requires_grad)
        return param

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True):
        pass  # everything happens in __new__ (Tensor.__init__ would build a new tensor)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo: dict) -> "Parameter":
        if id(self) in memo:
            return memo[id(self)]
        copied = Parameter(self.detach().clone(), self.requires_grad)
        if self.grad is not None:
            copied.grad = self.grad.detach().clone()
        memo[id(self)] = copied
        return copied

    def __reduce_ex__(self, protocol: Any) -> Any:
        return Parameter, (self.detach(), self.requires_grad)
