"""Gradient clipping and parameter/vector conversion, as in ``torch.nn.utils``.

>>> import lightgrad as lg
>>> from lightgrad import nn
>>> w = nn.Parameter(lg.zeros(2))
>>> w.grad = lg.tensor([3.0, 4.0])
>>> nn.utils.clip_grad_norm_([w], max_norm=1.0)
tensor(5.)
>>> w.grad
tensor([0.6000, 0.8000])
"""
from __future__ import annotations

import math
from typing import Iterable

from ..autograd import no_grad
from ..graph.recording import is_tracing
from ..creation import tensor
from ..functions import cat, stack
from ..tensor import Tensor

Tensors = Tensor | Iterable[Tensor]


def _as_list(tensors: Tensors) -> list[Tensor]:
    return [tensors] if isinstance(tensors, Tensor) else list(tensors)


def _vector_norm(x: Tensor, p: float) -> Tensor:
    """The p-norm of all elements of ``x`` (p may be inf, -inf or 0, like torch's)."""
    if p == math.inf:
        return x.abs().amax()
    if p == -math.inf:
        return x.abs().amin()
    if p == 0:
        return (x != 0).sum().to(x.dtype)
    if p == 1:
        return x.abs().sum()
    if p == 2:
        return (x * x).sum().sqrt()
    return (x.abs() ** p).sum() ** (1.0 / p)


@no_grad()
def get_total_norm(tensors: Tensors, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False) -> Tensor:
    """The p-norm of all ``tensors`` together, as if concatenated into one vector.

    >>> import lightgrad as lg
    >>> get_total_norm([lg.tensor([3.0]), lg.tensor([4.0])])
    tensor(5.)
    """
    tensors = _as_list(tensors)
    norm_type = float(norm_type)
    if not tensors:
        return tensor(0.0)
    device = tensors[0].device
    norms = [_vector_norm(t, norm_type).to(device) for t in tensors]
    total = _vector_norm(stack(norms), norm_type)
    if error_if_nonfinite and not math.isfinite(total.item()):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from "
                           "`parameters` is non-finite, so it cannot be clipped. To disable "
                           "this error and scale the gradients by the non-finite norm "
                           "anyway, set `error_if_nonfinite=False`")
    return total


@no_grad()
def clip_grads_with_norm_(parameters: Tensors, max_norm: float, total_norm: Tensor) -> None:
    """Scale every ``.grad`` in place by ``min(max_norm / (total_norm + 1e-6), 1)``.

    >>> import lightgrad as lg
    >>> p = lg.ones(1, requires_grad=True); p.grad = lg.tensor([2.0])
    >>> clip_grads_with_norm_([p], 1.0, lg.tensor(4.0)); p.grad
    tensor([0.5000])
    """
    grads = [p.grad for p in _as_list(parameters) if p.grad is not None]
    if not grads:
        return
    coef = (float(max_norm) / (total_norm + 1e-6)).clamp(max=1.0)
    if not is_tracing() and coef.item() == 1.0:  # a graph records the general path
        return  # nothing to scale (multiplying by 1 would change no value)
    for g in grads:
        g.mul_(coef.to(g.device))


def clip_grad_norm_(parameters: Tensors, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> Tensor:
    """Rescale the gradients so that their joint p-norm is at most ``max_norm``; returns the
    norm before clipping. ``norm_type`` may be ``float("inf")``.

    >>> import lightgrad as lg
    >>> p = lg.ones(2, requires_grad=True); p.grad = lg.tensor([-3.0, 1.0])
    >>> clip_grad_norm_(p, 1.0, norm_type=float("inf"))
    tensor(3.)
    """
    parameters = _as_list(parameters)
    grads = [p.grad for p in parameters if p.grad is not None]
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    clip_grads_with_norm_(parameters, max_norm, total)
    return total


@no_grad()
def clip_grad_value_(parameters: Tensors, clip_value: float) -> None:
    """Clamp every ``.grad`` in place to [-clip_value, clip_value].

    >>> import lightgrad as lg
    >>> p = lg.ones(2, requires_grad=True); p.grad = lg.tensor([-3.0, 0.5])
    >>> clip_grad_value_(p, 1.0); p.grad
    tensor([-1.0000,  0.5000])
    """
    clip_value = float(clip_value)
    for p in _as_list(parameters):
        if p.grad is not None:
            p.grad.clamp_(-clip_value, clip_value)


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All parameters flattened and joined into one 1-D tensor.

    >>> import lightgrad as lg
    >>> parameters_to_vector([lg.ones(2, 2), lg.zeros(1)])
    tensor([1., 1., 1., 1., 0.])
    """
    return cat([p.reshape(-1) for p in parameters])


@no_grad()
def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of the 1-D ``vec`` into each parameter, in place.

    >>> import lightgrad as lg
    >>> a, b = lg.zeros(2), lg.zeros(1)
    >>> vector_to_parameters(lg.tensor([1.0, 2.0, 3.0]), [a, b]); b
    tensor([3.])
    """
    if not isinstance(vec, Tensor) or vec.ndim != 1:
        raise TypeError(f"vector_to_parameters: expected a 1-D Tensor, got "
                        f"{getattr(vec, 'shape', type(vec).__name__)}")
    parameters = list(parameters)
    total = sum(p.numel() for p in parameters)
    if total != vec.numel():
        raise ValueError(f"vector_to_parameters: the vector has {vec.numel()} elements but the "
                         f"parameters hold {total}")
    start = 0
    for p in parameters:
        n = p.numel()
        p.copy_(vec[start:start + n].reshape(p.shape))
        start += n
