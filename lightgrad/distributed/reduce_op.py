"""``ReduceOp``: how a collective combines the tensors of the ranks (PyTorch's names).

>>> from lightgrad.distributed import ReduceOp
>>> ReduceOp.SUM, ReduceOp.AVG.name
(<ReduceOp.SUM: 'sum'>, 'AVG')
"""
from __future__ import annotations

import enum


class ReduceOp(enum.Enum):
    """Element-wise reduction of a collective: SUM, AVG (sum / world size), MAX, MIN and
    PRODUCT.

    >>> ReduceOp("max")
    <ReduceOp.MAX: 'max'>
    """

    SUM = "sum"
    AVG = "avg"
    MAX = "max"
    MIN = "min"
    PRODUCT = "product"


def as_reduce_op(op: object, where: str) -> ReduceOp:
    """``op`` as a ``ReduceOp`` (a ReduceOp or its name), or a clear error."""
    if isinstance(op, ReduceOp):
        return op
    if isinstance(op, str):
        try:
            return ReduceOp(op.lower())
        except ValueError:
            pass
    raise ValueError(f"{where}: op must be a ReduceOp (SUM, AVG, MAX, MIN, PRODUCT), got "
                     f"{op!r}")
