"""Symbolic Python numbers: the optimizer's step counts and hyperparameters while tracing.

An optimizer keeps Python numbers that change between calls (``state["step"] += 1``; a
learning-rate scheduler rewriting ``group["lr"]``) and hands them to primitives
(``adamw_step(..., lr, ..., step)``). Baked into a graph, they would freeze. So while
``lg.jit`` traces, those numbers are ``SymFloat``/``SymInt``: real ``float``/``int``
subclasses (every comparison and ``if`` sees the traced value) that also remember how they
were computed from their *sources* (the numbers in the optimizer's dicts when tracing
began). A primitive argument that is symbolic becomes a run-time scalar of the graph: at
each replay the executor evaluates it from the sources' current values.

>>> step = SymInt(3, ("source", 0))
>>> later = (step + 1) * 2
>>> int(later), later.evaluate([10])
(8, 22)
"""
from __future__ import annotations

import operator
from typing import Any, Callable


def evaluate(value: Any, sources: list) -> Any:
    """``value`` computed from ``sources`` if it is symbolic, else ``value`` itself."""
    return value.evaluate(sources) if isinstance(value, (SymInt, SymFloat)) else value


def is_symbolic(value: Any) -> bool:
    """Whether ``value`` is a symbolic number (or a tuple/list holding one)."""
    if isinstance(value, (SymInt, SymFloat)):
        return True
    if isinstance(value, (tuple, list)):
        return any(is_symbolic(v) for v in value)
    return False


def sources_of(value: Any) -> set[int]:
    """The source indices a symbolic value depends on."""
    if isinstance(value, (SymInt, SymFloat)):
        if value.expr[0] == "source":
            return {value.expr[1]}
        return set().union(*(sources_of(a) for a in value.expr[1:]))
    return set()


def make(value: Any, expr: tuple) -> Any:
    """A symbolic number of ``value``'s type (bools stay plain: they steer code)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return SymInt(value, expr)
    if isinstance(value, float):
        return SymFloat(value, expr)
    return value


def _apply(fn: Callable, *operands: Any) -> Any:
    plain = [float(o) if isinstance(o, SymFloat) else int(o) if isinstance(o, SymInt) else o
             for o in operands]
    result = fn(*plain)
    if result is NotImplemented:
        return result
    return make(result, (fn, *operands))


class _Symbolic:
    """Arithmetic shared by SymInt and SymFloat: each result records its expression."""

    expr: tuple

    def evaluate(self, sources: list) -> Any:
        """This number computed from the current values of its sources."""
        head, *rest = self.expr
        if head == "source":
            return sources[rest[0]]
        return head(*(evaluate(a, sources) for a in rest))

    def __add__(self, o): return _apply(operator.add, self, o)  # noqa: E704
    def __radd__(self, o): return _apply(operator.add, o, self)  # noqa: E704
    def __sub__(self, o): return _apply(operator.sub, self, o)  # noqa: E704
    def __rsub__(self, o): return _apply(operator.sub, o, self)  # noqa: E704
    def __mul__(self, o): return _apply(operator.mul, self, o)  # noqa: E704
    def __rmul__(self, o): return _apply(operator.mul, o, self)  # noqa: E704
    def __truediv__(self, o): return _apply(operator.truediv, self, o)  # noqa: E704
    def __rtruediv__(self, o): return _apply(operator.truediv, o, self)  # noqa: E704
    def __pow__(self, o): return _apply(operator.pow, self, o)  # noqa: E704
    def __rpow__(self, o): return _apply(operator.pow, o, self)  # noqa: E704
    def __neg__(self): return _apply(operator.neg, self)  # noqa: E704

    def __reduce__(self) -> tuple:  # copies and pickles are plain numbers
        return (type(self).__mro__[2], (self.plain(),))


class SymInt(_Symbolic, int):
    """An int that remembers its expression (see the module docstring)."""

    def __new__(cls, value: int, expr: tuple) -> "SymInt":
        obj = int.__new__(cls, value)
        obj.expr = expr
        return obj

    def __repr__(self) -> str:
        return f"SymInt({int(self)})"

    def plain(self) -> int:
        """The traced value as a plain int."""
        return int(self)

    __hash__ = int.__hash__


class SymFloat(_Symbolic, float):
    """A float that remembers its expression (see the module docstring)."""

    def __new__(cls, value: float, expr: tuple) -> "SymFloat":
        obj = float.__new__(cls, value)
        obj.expr = expr
        return obj

    def __repr__(self) -> str:
        return f"SymFloat({float(self)})"

    def plain(self) -> float:
        """The traced value as a plain float."""
        return float(self)

    __hash__ = float.__hash__
