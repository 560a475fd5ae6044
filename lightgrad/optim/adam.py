"""Adam and AdamW: adaptive moment estimation, with L2 or decoupled weight decay.

Per parameter at step ``t`` (``g`` the gradient, negated when ``maximize``)::

    Adam:  g = g + weight_decay * p          AdamW:  p = p * (1 - lr * weight_decay)
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    v_hat = max(v_hat, v) if amsgrad else v
    p = p - lr / (1 - beta1**t) * m / (sqrt(v_hat) / sqrt(1 - beta2**t) + eps)

Without amsgrad the whole update is one fused backend primitive, ``adamw_step``; on a
backend with ``adamw_step_multi`` (CUDA) a parameter group is updated by one launch.

>>> import lightgrad as lg
>>> w = lg.tensor([1.0, -1.0], requires_grad=True)
>>> opt = AdamW([w], lr=0.1, weight_decay=0.0)
>>> (w * w).sum().backward(); opt.step(); w
tensor([ 0.9000, -0.9000], requires_grad=True)
"""
from __future__ import annotations

import math
from typing import Any, Iterable

from ..creation import zeros_like
from ..tensor import Tensor
from .optimizer import Optimizer, check_range


class Adam(Optimizer):
    """``Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False,
    maximize=False)``, the same update as ``torch.optim.Adam``; weight decay is added to
    the gradient (L2 regularisation).

    >>> import lightgrad as lg
    >>> w = lg.tensor([3.0], requires_grad=True)
    >>> opt = Adam([w], lr=0.5)
    >>> (w * w).sum().backward(); opt.step(); round(w.item(), 4)
    2.5
    """

    decoupled_weight_decay = False

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, maximize: bool = False):
        name = type(self).__name__
        check_range(name, "learning rate", lr)
        check_range(name, "epsilon", eps)
        check_range(name, "beta1", betas[0], 0.0, 1.0)
        check_range(name, "beta2", betas[1], 0.0, 1.0)
        check_range(name, "weight_decay", weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize))

    def _prepare(self, param: Tensor, grad: Tensor, state: dict[str, Any],
                 group: dict[str, Any]) -> tuple[Tensor, float]:
        """Start the step of one parameter: create its state, count the step, and return
        the gradient to use (negated for ``maximize``, plus L2 decay for Adam) and the
        decoupled weight decay left for the update."""
        if not state:
            state["step"] = 0
            state["exp_avg"] = zeros_like(param)
            state["exp_avg_sq"] = zeros_like(param)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = zeros_like(param)
        state["step"] += 1
        decay = group["weight_decay"]
        if group["maximize"]:
            grad = -grad
        if decay != 0 and not self.decoupled_weight_decay:
            grad, decay = grad.add(param, alpha=decay), 0.0
        return grad, decay

    def _update(self, param: Tensor, grad: Tensor, state: dict[str, Any],
                group: dict[str, Any]) -> None:
        grad, decay = self._prepare(param, grad, state, group)
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        if not group["amsgrad"]:
            param.device.backend.adamw_step(
                param._data, grad._data, state["exp_avg"]._data, state["exp_avg_sq"]._data,
                lr, beta1, beta2, eps, decay, state["step"])
            param._version[0] += 1
            return
        self._amsgrad_update(param, grad, state, lr, beta1, beta2, eps, decay)

    def _step_group(self, group: dict[str, Any]) -> None:
        """The whole group in one ``adamw_step_multi`` launch per step count when the
        backend has that primitive and the parameters share a device and dtype (and
        amsgrad is off); else one ``adamw_step`` per parameter."""
        params = [p for p in group["params"] if p.grad is not None]
        backend = params[0].device.backend if params else None
        if (group["amsgrad"] or not params or
                not hasattr(backend, "adamw_step_multi") or
                any(p.device != params[0].device or p.dtype is not params[0].dtype or
                    p.grad.dtype is not p.dtype for p in params)):
            super()._step_group(group)
            return
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        by_step: dict[tuple, list] = {}
        for p in params:
            state = self.state[p]
            grad, decay = self._prepare(p, p.grad.detach(), state, group)
            by_step.setdefault((state["step"], decay), []).append((p, grad, state))
        for (step, decay), members in by_step.items():
            backend.adamw_step_multi(
                [p._data for p, _, _ in members], [g._data for _, g, _ in members],
                [s["exp_avg"]._data for _, _, s in members],
                [s["exp_avg_sq"]._data for _, _, s in members],
                lr, beta1, beta2, eps, decay, step)
            for p, _, _ in members:
                p._version[0] += 1

    @staticmethod
    def _amsgrad_update(param: Tensor, grad: Tensor, state: dict[str, Any], lr: float,
                        beta1: float, beta2: float, eps: float, decay: float) -> None:
        """The AMSGrad variant: normalise by the largest second moment seen so far."""
        step, exp_avg, exp_avg_sq = state["step"], state["exp_avg"], state["exp_avg_sq"]
        if decay != 0:
            param.mul_(1 - lr * decay)
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        max_sq = state["max_exp_avg_sq"]
        max_sq.copy_(max_sq.maximum(exp_avg_sq))
        denom = max_sq.sqrt() / math.sqrt(1 - beta2 ** step) + eps
        param.addcdiv_(exp_avg, denom, value=-lr / (1 - beta1 ** step))


class AdamW(Adam):
    """``AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
    amsgrad=False, maximize=False)``: Adam with decoupled weight decay (the parameter
    shrinks by ``lr * weight_decay`` each step), as ``torch.optim.AdamW``.

    >>> import lightgrad as lg
    >>> w = lg.tensor([1.0], requires_grad=True)
    >>> opt = AdamW([w], lr=0.1, weight_decay=0.5)
    >>> w.grad = lg.zeros(1); opt.step(); round(w.item(), 4)
    0.95
    """

    decoupled_weight_decay = True

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
