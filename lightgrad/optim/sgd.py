"""Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay.

Per parameter, with ``g`` its gradient (negated when ``maximize``)::

    g = g + weight_decay * p
    buf = g                                  (first step)
    buf = momentum * buf + (1 - dampening) * g   (later steps)
    g = g + momentum * buf if nesterov else buf
    p = p - lr * g

>>> import lightgrad as lg
>>> w = lg.tensor([1.0], requires_grad=True)
>>> opt = SGD([w], lr=0.1, momentum=0.9)
>>> for _ in range(2):
...     opt.zero_grad(); (w * w).sum().backward(); opt.step()
>>> round(w.item(), 4)
0.46
"""
from __future__ import annotations

from typing import Any, Iterable

from ..tensor import Tensor
from .optimizer import Optimizer, check_range


class SGD(Optimizer):
    """``SGD(params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
    maximize=False)``, the same update as ``torch.optim.SGD``.

    >>> import lightgrad as lg
    >>> w = lg.tensor([2.0], requires_grad=True)
    >>> opt = SGD([w], lr=0.25)
    >>> (w * w).sum().backward(); opt.step(); w.item()
    1.0
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                 *, maximize: bool = False):
        check_range("SGD", "learning rate", lr)
        check_range("SGD", "momentum", momentum)
        check_range("SGD", "weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(f"SGD: Nesterov momentum needs momentum > 0 and dampening = 0, "
                             f"got momentum={momentum}, dampening={dampening}")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def _update(self, param: Tensor, grad: Tensor, state: dict[str, Any],
                group: dict[str, Any]) -> None:
        if group["maximize"]:
            grad = -grad
        if group["weight_decay"] != 0:
            grad = grad.add(param, alpha=group["weight_decay"])
        momentum = group["momentum"]
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.clone()
            else:
                buf.mul_(momentum).add_(grad, alpha=1 - group["dampening"])
            grad = grad.add(buf, alpha=momentum) if group["nesterov"] else buf
        param.add_(grad, alpha=-group["lr"])
