"""Classification losses: a fused ``cross_entropy`` and ``nll_loss``.

``CrossEntropy`` runs log-softmax once in the backend and keeps the softmax ``p``. With
``q`` the (weighted, label-smoothed) target distribution of a row and ``Q = sum(q)``, the
gradient of the row's loss is ``p * Q - q`` -- for plain one-hot targets simply
``softmax - onehot`` -- times the upstream gradient and the reduction's scale.

>>> import lightgrad as lg
>>> logits = lg.tensor([[2.0, 0.0, 0.0]], requires_grad=True)
>>> loss = cross_entropy(logits, lg.tensor([0]))
>>> round(loss.item(), 4)
0.2395
>>> loss.backward(); [round(v, 4) for v in logits.grad[0].tolist()]
[-0.213, 0.1065, 0.1065]
"""
from __future__ import annotations

from typing import Any

from .. import dtypes
from ..autograd import Function, is_grad_enabled
from ..tensor import Tensor
from .common import describe, same_device, wrap

REDUCTIONS = ("none", "mean", "sum")


def reduce_loss(op: str, loss: Tensor, reduction: str) -> Tensor:
    """Apply a loss ``reduction``: ``'none'`` (elementwise), ``'sum'`` or ``'mean'``."""
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.mean()
    raise ValueError(f"{op}: reduction must be 'none', 'mean' or 'sum', got {reduction!r}")


def _buf(t: Tensor | None) -> Any:
    return t._data if t is not None else None


class CrossEntropy(Function):
    """Rows of logits x (M, C) against class indices (M,) or class probabilities (M, C)."""

    @staticmethod
    def forward(ctx, x, target, weight, ignore_index, label_smoothing, reduction):
        backend = x.device.backend
        loss, probs, counted = backend.cross_entropy(x._data, target._data, _buf(weight),
                                                     ignore_index, label_smoothing)
        ctx.args = (ignore_index, label_smoothing)
        denom = None
        if reduction != "none":
            loss = backend.sum(loss, (0,), False)
            if reduction == "mean":
                denom = wrap(backend.sum(counted, (0,), False), x.device)
                loss = backend.div(loss, denom._data)
        ctx.save_for_backward(x, target, weight, wrap(probs, x.device), denom)
        return wrap(loss, x.device)

    @staticmethod
    def backward(ctx, g):
        x, target, weight, probs, denom = ctx.saved_tensors
        scale = g / denom if denom is not None else g
        gx = CrossEntropyBackward.apply(scale, x, target, weight, probs, ctx.args) \
            if ctx.needs_input_grad[0] else None
        gt = None
        if ctx.needs_input_grad[1]:  # class-probability targets
            w = weight if weight is not None else 1.0
            gt = -x.log_softmax(-1) * w * (_rows(scale) * (1.0 - ctx.args[1]))
        return gx, gt, None, None, None, None


def _rows(scale: Tensor) -> Tensor:
    """A per-row scale (M,) as (M, 1); a scalar as is."""
    return scale.reshape(-1, 1) if scale.ndim else scale


class CrossEntropyBackward(Function):
    """d loss / d logits = ``(p * Q - q) * scale``, p = softmax(x), q = the weighted, smoothed
    target of a row and Q = sum(q). Its own backward gives exact second derivatives."""

    @staticmethod
    def forward(ctx, scale, x, target, weight, probs, args):
        ctx.args = args
        ctx.save_for_backward(scale, x, target, weight, probs)
        buf = x.device.backend.cross_entropy_backward(probs._data, target._data, _buf(weight),
                                                      scale._data, *args)
        return wrap(buf, x.device)

    @staticmethod
    def backward(ctx, gg):
        scale, x, target, weight, probs = ctx.saved_tensors
        ignore_index, eps = ctx.args
        if is_grad_enabled():  # create_graph: softmax as a function of x
            probs = x.softmax(-1)
        n_classes = x.shape[1]
        w = weight if weight is not None else 1.0
        gg_p = (gg * probs).sum(dim=1, keepdim=True)
        if target.ndim == 2:
            q = (target * (1.0 - eps) + eps / n_classes) * w
            total = q.sum(dim=1, keepdim=True)  # Q
            gg_q = (gg * q).sum(dim=1, keepdim=True)
        else:
            valid = (target != ignore_index).to(x.dtype).reshape(-1, 1)
            safe = target.masked_fill(target == ignore_index, 0).reshape(-1, 1)
            hit = weight.index_select(0, safe.reshape(-1)).reshape(-1, 1) \
                if weight is not None else 1.0
            w_sum = weight.sum() if weight is not None else float(n_classes)
            total = ((1.0 - eps) * hit + eps / n_classes * w_sum) * valid
            gg_q = (1.0 - eps) * hit * gg.gather(1, safe)
            if eps:
                gg_q = gg_q + eps / n_classes * (gg * w).sum(dim=1, keepdim=True)
            gg_q = gg_q * valid
        d_scale = d_x = d_target = None
        if ctx.needs_input_grad[0]:
            d_scale = (gg_p * total - gg_q).reshape(-1)
            d_scale = d_scale.sum() if scale.ndim == 0 else d_scale
        if ctx.needs_input_grad[1]:
            d_x = probs * (gg - gg_p) * (total * _rows(scale))
        if ctx.needs_input_grad[2]:
            d_target = (1.0 - eps) * w * _rows(scale) * (gg_p - gg)
        return d_scale, d_x, d_target, None, None, None


# ----------------------------------------------------------------------------- public API


def _class_last(t: Tensor) -> Tensor:
    """(N, C, d1, ...) as rows (N * d1 * ..., C); (N, C) as is."""
    if t.ndim <= 2:
        return t
    return t.permute(0, *range(2, t.ndim), 1).reshape(-1, t.shape[1])


def _as_rows(op: str, input: Any, target: Any, weight: Any, allow_probs: bool) -> tuple:
    """Validated (x (M, C), target (M,) or (M, C), out_shape, soft) for input (N, C, ...)."""
    for name, t in (("input", input), ("target", target)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    if not input.dtype.is_floating_point or input.ndim == 0:
        raise TypeError(f"{op}: input must be a floating-point tensor with a class dim, got "
                        f"{describe(input)}")
    same_device(op, [input, target] + ([weight] if weight is not None else []))
    batched = input if input.ndim > 1 else input.unsqueeze(0)
    n_classes = batched.shape[1]
    if weight is not None and (tuple(weight.shape) != (n_classes,) or
                               weight.dtype is not input.dtype):
        raise ValueError(f"{op}: weight must be a {input.dtype.name} tensor of shape "
                         f"({n_classes},), got {describe(weight)}")
    soft = target.dtype.is_floating_point
    rows = _class_last(batched)
    if soft:
        if not allow_probs or target.shape != input.shape or target.dtype is not input.dtype:
            raise ValueError(f"{op}: class-probability targets must have the input's shape "
                             f"and dtype {tuple(input.shape)} {input.dtype.name}, got "
                             f"{describe(target)}")
        t = target if target.ndim > 1 else target.unsqueeze(0)
        t = _class_last(t)
        return rows, t, tuple(batched.shape[:1] + batched.shape[2:]), True
    if target.dtype is dtypes.bool_:
        raise TypeError(f"{op}: target must hold class indices (int) or probabilities "
                        f"(float), got {describe(target)}")
    want = tuple(input.shape[:1] + input.shape[2:]) if input.ndim > 1 else ()
    if tuple(target.shape) != want:
        raise ValueError(f"{op}: expected target of shape {want} for input of shape "
                         f"{tuple(input.shape)} (N, C, ...), got target shape "
                         f"{tuple(target.shape)}")
    return rows, target.long().reshape(-1), want, False


def _check_classes(op: str, target: Tensor, n_classes: int, ignore_index: int,
                   input: Tensor) -> None:
    if not target.numel():
        return
    low, high = int(target.amin().item()), int(target.amax().item())
    if (low < 0 or high >= n_classes) and ignore_index in (low, high):
        counted = target.masked_fill(target == ignore_index, 0)
        low, high = int(counted.amin().item()), int(counted.amax().item())
    if low < 0 or high >= n_classes:
        bad = low if low < 0 else high
        raise IndexError(f"{op}: target class {bad} is out of range for {n_classes} classes "
                         f"(input shape {tuple(input.shape)}, ignore_index={ignore_index})")


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                  ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy of logits (N, C) or (N, C, d1, ...) against class indices
    (N,) / (N, d1, ...) or class probabilities (the input's shape).

    ``weight`` rescales classes, ``ignore_index`` targets contribute nothing, and
    ``'mean'`` divides by the summed weights of the counted targets, as in PyTorch.

    >>> import lightgrad as lg
    >>> cross_entropy(lg.zeros(2, 4), lg.tensor([1, 3]), reduction="none").shape
    (2,)
    """
    op = "cross_entropy"
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'none', 'mean' or 'sum', got "
                         f"{reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")
    rows, t, out_shape, soft = _as_rows(op, input, target, weight, True)
    if not soft:
        _check_classes(op, t, rows.shape[1], ignore_index, input)
    loss = CrossEntropy.apply(rows, t, weight, int(ignore_index), float(label_smoothing),
                              reduction)
    return loss.reshape(out_shape) if reduction == "none" else loss


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None,
             ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities (N, C, ...) at class indices
    (N, ...): ``-weight[t] * input[t]``, ``'mean'`` divided by the summed weights.

    >>> import lightgrad as lg
    >>> nll_loss(lg.tensor([[-1.0, -2.0]]), lg.tensor([1]))
    tensor(2.)
    """
    op = "nll_loss"
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'none', 'mean' or 'sum', got "
                         f"{reduction!r}")
    rows, t, out_shape, _ = _as_rows(op, input, target, weight, False)
    _check_classes(op, t, rows.shape[1], ignore_index, input)
    valid = t != ignore_index
    safe = t.masked_fill(~valid, 0)
    counted = valid.to(rows.dtype)
    if weight is not None:
        counted = counted * weight.index_select(0, safe)
    loss = -rows.gather(1, safe.reshape(-1, 1)).reshape(-1) * counted
    if reduction == "none":
        return loss.reshape(out_shape)
    return loss.sum() / counted.sum() if reduction == "mean" else loss.sum()
