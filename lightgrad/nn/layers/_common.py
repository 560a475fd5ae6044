"""Helpers the layer files share: int-or-tuple arguments and input checks that name the layer.

>>> ntuple(3, 2), ntuple((1, 2), 2)
((3, 3), (1, 2))
"""
from __future__ import annotations

from typing import Any

from ...tensor import Tensor


def ntuple(value: Any, n: int) -> tuple:
    """``value`` repeated ``n`` times if it is a single number, else as a tuple of length n."""
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ValueError(f"expected an int or a sequence of {n} ints, got {tuple(value)}")
        return tuple(value)
    return (value,) * n


def check_input(layer: Any, input: Any, ndims: tuple[int, ...]) -> Tensor:
    """``input`` if it is a Tensor with one of ``ndims`` dims; a clear error otherwise."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{describe(layer)}: expected a Tensor input, got "
                        f"{type(input).__name__}")
    if ndims and input.ndim not in ndims:
        wanted = " or ".join(f"{d}D" for d in ndims)
        raise RuntimeError(f"{describe(layer)}: expected {wanted} input, got input of shape "
                           f"{tuple(input.shape)}")
    return input


def describe(layer: Any) -> str:
    """How error messages name a layer: its ``_short_repr()`` if it has one, else its repr
    (one line for layers without children)."""
    short = getattr(layer, "_short_repr", None)
    return short() if short is not None else f"{type(layer).__name__}({layer.extra_repr()})"


def legacy_reduction(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """PyTorch's deprecated ``size_average``/``reduce`` flags as a ``reduction`` string."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"
