"""Free functions of the ``lightgrad`` namespace that are not Tensor methods: ``lg.cat``,
``lg.stack``, ``lg.where``, ``lg.one_hot``, ``lg.matmul``, ``lg.pad``.

>>> import lightgrad as lg
>>> lg.stack([lg.ones(2), lg.zeros(2)], dim=1)
tensor([[1., 0.],
        [1., 0.]])
"""
from __future__ import annotations

from typing import Any, Sequence

from . import dtypes
from .ops.common import describe, norm_dim, same_device
from .tensor import Tensor


def _tensor_list(op: str, tensors: Sequence[Tensor]) -> list[Tensor]:
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty sequence of tensors")
    for t in tensors:
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: expected a sequence of Tensors, got {type(t).__name__}")
    same_device(op, tensors)
    return tensors


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors along an existing dim.

    >>> import lightgrad as lg
    >>> lg.cat([lg.ones(1), lg.zeros(2)])
    tensor([1., 0., 0.])
    """
    from .ops.movement import Cat
    tensors = _tensor_list("cat", tensors)
    first = tensors[0]
    axis = norm_dim("cat", dim, first.ndim, first.shape)
    for t in tensors[1:]:
        if t.ndim != first.ndim or any(a != b for i, (a, b) in
                                       enumerate(zip(t.shape, first.shape)) if i != axis):
            shown = ", ".join(describe(x) for x in tensors)
            raise RuntimeError(f"cat: sizes of tensors must match except in dim {dim}; got "
                               f"{shown}")
    result = dtypes.result_type(*tensors)
    tensors = [t if t.dtype is result else t.to(result) for t in tensors]
    return Cat.apply(axis, *tensors)


concat = concatenate = cat


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join same-shaped tensors along a new dim.

    >>> import lightgrad as lg
    >>> lg.stack([lg.ones(2), lg.ones(2)]).shape
    (2, 2)
    """
    tensors = _tensor_list("stack", tensors)
    shape = tensors[0].shape
    for t in tensors[1:]:
        if t.shape != shape:
            shown = ", ".join(str(x.shape) for x in tensors)
            raise RuntimeError(f"stack: expects each tensor to be equal size, got {shown}")
    axis = norm_dim("stack", dim, len(shape) + 1, shape)
    return cat([t.unsqueeze(axis) for t in tensors], axis)


def where(condition: Tensor, input: Any, other: Any) -> Tensor:
    """``input`` where ``condition`` else ``other`` (either may be a number).

    >>> import lightgrad as lg
    >>> lg.where(lg.tensor([True, False]), 1.0, lg.zeros(2))
    tensor([1., 0.])
    """
    from .ops.elementwise import Where
    return Where.apply(condition, input, other)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 one-hot encoding along a new last dim.

    >>> import lightgrad as lg
    >>> lg.one_hot(lg.tensor([0, 2]), 3)
    tensor([[1, 0, 0],
            [0, 0, 1]])
    """
    from .creation import arange
    if not isinstance(tensor, Tensor) or tensor.dtype.is_floating_point or \
            tensor.dtype is dtypes.bool_:
        raise TypeError(f"one_hot: expects an integer tensor, got "
                        f"{getattr(tensor, 'dtype', type(tensor).__name__)}")
    if tensor.numel() and tensor.amin().item() < 0:
        raise RuntimeError("one_hot: class values must be non-negative")
    if num_classes == -1:
        num_classes = int(tensor.amax().item()) + 1 if tensor.numel() else 0
    elif tensor.numel() and tensor.amax().item() >= num_classes:
        raise RuntimeError(f"one_hot: class value {tensor.amax().item()} is too large for "
                           f"num_classes={num_classes}")
    classes = arange(num_classes, device=tensor.device)
    return (tensor.unsqueeze(-1) == classes).long()


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with PyTorch's rules for 1-D and batched operands.

    >>> import lightgrad as lg
    >>> lg.matmul(lg.ones(2, 3), lg.ones(3)).tolist()
    [3.0, 3.0]
    """
    return a.matmul(b)


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad ``input`` with ``value`` like ``torch.nn.functional.pad``: ``pad`` lists
    ``(before, after)`` pairs starting from the LAST dim, e.g. ``(left, right, top, bottom)``.

    >>> import lightgrad as lg
    >>> lg.pad(lg.ones(1, 2), (1, 0, 0, 1))
    tensor([[0., 1., 1.],
            [0., 0., 0.]])
    """
    from .ops.movement import Pad
    if not isinstance(input, Tensor):
        raise TypeError(f"pad: expected a Tensor, got {type(input).__name__}")
    if mode != "constant":
        raise NotImplementedError(f"pad: only mode='constant' is implemented, got {mode!r}")
    pad = tuple(pad)
    if any(not isinstance(p, int) or isinstance(p, bool) for p in pad):
        raise TypeError(f"pad: pad sizes must be ints, got {pad}")
    if len(pad) % 2:
        raise ValueError(f"pad: pad must have an even length ((before, after) per dim), got "
                         f"{len(pad)} values {pad}")
    if len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: {len(pad)} values {pad} pad {len(pad) // 2} dims but the input "
                         f"of shape {tuple(input.shape)} has only {input.ndim}")
    if any(p < 0 for p in pad):
        raise ValueError(f"pad: negative padding is not supported, got {pad}")
    pairs = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        pairs[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return Pad.apply(input, tuple(pairs), value)
