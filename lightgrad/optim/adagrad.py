"""Adagrad: scale each coordinate by the root of its accumulated squared gradients.

Per parameter at step ``t`` (``g`` the gradient, negated when ``maximize``)::

    g = g + weight_decay * p
    clr = lr / (1 + (t - 1) * lr_decay)
    sum = sum + g * g
    p = p - clr * g / (sqrt(sum) + eps)

>>> import lightgrad as lg
>>> w = lg.tensor([1.0], requires_grad=True)
>>> opt = Adagrad([w], lr=0.5)
>>> (w * w).sum().backward(); opt.step(); round(w.item(), 4)
0.5
"""
from __future__ import annotations

from typing import Any, Iterable

from ..creation import full_like
from ..tensor import Tensor
from .optimizer import Optimizer, check_range


class Adagrad(Optimizer):
    """``Adagrad(params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
    eps=1e-10, maximize=False)``, the same update as ``torch.optim.Adagrad``.

    As in PyTorch, each parameter's state (``"step"`` and ``"sum"``) is created when the
    optimizer is built.

    >>> import lightgrad as lg
    >>> w = lg.zeros(2, requires_grad=True)
    >>> opt = Adagrad([w], initial_accumulator_value=0.1)
    >>> sorted(opt.state[w]), opt.state[w]["sum"]
    (['step', 'sum'], tensor([0.1000, 0.1000]))
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, *, maximize: bool = False):
        check_range("Adagrad", "learning rate", lr)
        check_range("Adagrad", "lr_decay", lr_decay)
        check_range("Adagrad", "weight_decay", weight_decay)
        check_range("Adagrad", "initial_accumulator_value", initial_accumulator_value)
        check_range("Adagrad", "epsilon", eps)
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps, maximize=maximize))
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group)

    def _init_state(self, param: Tensor, group: dict[str, Any]) -> None:
        state = self.state[param]
        if not state:
            state["step"] = 0
            state["sum"] = full_like(param, group["initial_accumulator_value"])

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        super().add_param_group(param_group)
        if hasattr(self, "state"):
            group = self.param_groups[-1]
            for p in group["params"]:
                self._init_state(p, group)

    def _update(self, param: Tensor, grad: Tensor, state: dict[str, Any],
                group: dict[str, Any]) -> None:
        self._init_state(param, group)
        state["step"] += 1
        if group["maximize"]:
            grad = -grad
        if group["weight_decay"] != 0:
            grad = grad.add(param, alpha=group["weight_decay"])
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        state["sum"].addcmul_(grad, grad, value=1)
        std = state["sum"].sqrt() + group["eps"]
        param.addcdiv_(grad, std, value=-clr)
