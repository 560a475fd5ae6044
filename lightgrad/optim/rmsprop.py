"""RMSprop: divide the gradient by a running root-mean-square of recent gradients.

Per parameter (``g`` the gradient, negated when ``maximize``)::

    g = g + weight_decay * p
    v = alpha * v + (1 - alpha) * g * g
    avg = sqrt(v - mean_g ** 2) if centered else sqrt(v)     (mean_g: running mean of g)
    buf = momentum * buf + g / (avg + eps);  p = p - lr * buf     (momentum > 0)
    p = p - lr * g / (avg + eps)                                  (otherwise)

>>> import lightgrad as lg
>>> w = lg.tensor([1.0], requires_grad=True)
>>> opt = RMSprop([w], lr=0.01, alpha=0.0, eps=0.0)
>>> (w * w).sum().backward(); opt.step(); round(w.item(), 4)
0.99
"""
from __future__ import annotations

from typing import Any, Iterable

from ..creation import zeros_like
from ..tensor import Tensor
from .optimizer import Optimizer, check_range


class RMSprop(Optimizer):
    """``RMSprop(params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
    centered=False, maximize=False)``, the same update as ``torch.optim.RMSprop``.

    >>> import lightgrad as lg
    >>> opt = RMSprop([lg.zeros(2, requires_grad=True)], momentum=0.9, centered=True)
    >>> opt.param_groups[0]["alpha"]
    0.99
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False, *, maximize: bool = False):
        check_range("RMSprop", "learning rate", lr)
        check_range("RMSprop", "epsilon", eps)
        check_range("RMSprop", "alpha", alpha)
        check_range("RMSprop", "momentum", momentum)
        check_range("RMSprop", "weight_decay", weight_decay)
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered,
                                      maximize=maximize))

    def _update(self, param: Tensor, grad: Tensor, state: dict[str, Any],
                group: dict[str, Any]) -> None:
        if not state:
            state["step"] = 0
            state["square_avg"] = zeros_like(param)
            if group["momentum"] > 0:
                state["momentum_buffer"] = zeros_like(param)
            if group["centered"]:
                state["grad_avg"] = zeros_like(param)
        state["step"] += 1
        alpha = group["alpha"]
        if group["maximize"]:
            grad = -grad
        if group["weight_decay"] != 0:
            grad = grad.add(param, alpha=group["weight_decay"])
        square_avg = state["square_avg"]
        square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg.lerp_(grad, 1 - alpha)
            avg = (square_avg - grad_avg * grad_avg).sqrt()
        else:
            avg = square_avg.sqrt()
        avg = avg + group["eps"]
        if group["momentum"] > 0:
            buf = state["momentum_buffer"]
            buf.mul_(group["momentum"]).addcdiv_(grad, avg)
            param.add_(buf, alpha=-group["lr"])
        else:
            param.addcdiv_(grad, avg, value=-group["lr"])
