"""The expression program of a ``fused_elementwise`` node (made by ``fusion.py``).

A ``Program`` is a list of steps, each one elementwise primitive (``UNARY_OPS``,
``BINARY_OPS``, ``where``, ``clamp``) whose arguments are *references*: ``k <
n_operands`` is the fused node's ``k``-th operand (a buffer or a number), ``n_operands + j``
is the result of step ``j`` (printed ``$k`` and ``tj``). The last step's result is the
node's result. Every step has the same shape (the fused node's); dtypes may differ (``lt``
gives bool, ``where`` reads it).

Two ways to run it:

- ``run(backend, operands)``: step by step through the backend's own primitives (what
  ``base.Backend.fused_elementwise`` does, so any backend, CUDA included, replays it);
- ``run_numpy(backend, operands)``: the CPU backend's way: NumPy ufuncs writing with
  ``out=`` into a few scratch buffers (``registers``, assigned once here so that a step
  reuses the buffer of an operand that dies at it), fewer temporaries than op by op, the
  same numbers.

>>> import numpy as np
>>> from lightgrad.backends import get_backend
>>> f32 = np.dtype("float32")
>>> p = Program((Meta((3,), f32), None), [("mul", (0, 1)), ("exp", (2,))],
...             [Meta((3,), f32)] * 2)
>>> p
{t0=mul($0,$1); t1=exp(t0)}
>>> p.run_numpy(get_backend("cpu"), (np.zeros(3, f32), 2.0))
array([1., 1., 1.], dtype=float32)
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ...backends import base
from ...backends.base import Meta

FUSABLE = frozenset(base.UNARY_OPS) | frozenset(base.BINARY_OPS) | {"where", "clamp"}
"""Primitives a fused node may hold."""

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_BOOL = np.dtype(bool)
_COMPARISONS = {"eq", "ne", "lt", "le", "gt", "ge"}
_UFUNCS: dict[str, Any] = {
    "neg": np.negative, "abs": np.absolute, "exp": np.exp, "log": np.log, "sqrt": np.sqrt,
    "sin": np.sin, "cos": np.cos, "tanh": np.tanh, "reciprocal": np.reciprocal,
    "sign": np.sign, "floor": np.floor, "ceil": np.ceil, "logical_not": np.logical_not,
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide,
    "pow": np.power, "maximum": np.maximum, "minimum": np.minimum, "eq": np.equal,
    "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater,
    "ge": np.greater_equal, "logical_and": np.logical_and, "logical_or": np.logical_or,
    "logical_xor": np.logical_xor,
}
"""Steps the CPU path runs as one ufunc call with ``out=`` (the CPU backend's own
functions for these are these ufuncs for float32/float64)."""


class Program:
    """Steps of a fused elementwise computation (see the module docstring).

    ``operand_types``: a ``Meta`` per operand (None for a number); ``steps``: ``(op,
    refs)`` pairs; ``types``: each step's result ``Meta``.
    """

    __slots__ = ("n_operands", "steps", "types", "operand_types", "_key", "_registers",
                 "_with_out")

    def __init__(self, operand_types: Sequence[Meta | None],
                 steps: Sequence[tuple[str, tuple[int, ...]]], types: Sequence[Meta]):
        self.operand_types = tuple(operand_types)
        self.n_operands = len(self.operand_types)
        self.steps = tuple((op, tuple(refs)) for op, refs in steps)
        self.types = tuple(Meta(tuple(t.shape), np.dtype(t.dtype)) for t in types)
        for op, _ in self.steps:
            if op not in FUSABLE:
                raise ValueError(f"fused_elementwise: {op!r} is not an elementwise primitive")
        self._key = (tuple(None if t is None else (t.shape, t.dtype.str)
                           for t in self.operand_types), self.steps,
                     tuple((t.shape, t.dtype.str) for t in self.types))
        self._with_out = tuple(self._can_write_out(j) for j in range(len(self.steps)))
        self._registers = self._assign_registers()

    # ------------------------------------------------------------------ identity
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Program) and other._key == self._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        n = self.n_operands

        def ref(r: int) -> str:
            return f"${r}" if r < n else f"t{r - n}"
        parts = [f"t{j}={op}({','.join(ref(r) for r in refs)})"
                 for j, (op, refs) in enumerate(self.steps)]
        return "{" + "; ".join(parts) + "}"

    def __len__(self) -> int:
        return len(self.steps)

    # ------------------------------------------------------------------ typing
    def result_type(self, operands: Sequence[Any]) -> Meta:
        """The result's type for these operands (each step's shape rule in turn); the
        shape rule of ``fused_elementwise``."""
        if len(operands) != self.n_operands:
            raise ValueError(f"fused_elementwise: the program takes {self.n_operands} "
                             f"operands, got {len(operands)}")
        values = list(operands)
        for op, refs in self.steps:
            values.append(base.infer(op, *(values[r] for r in refs)))
        return values[-1]

    # ------------------------------------------------------------------ running
    def run(self, backend: Any, operands: Sequence[Any]) -> Any:
        """Each step through ``backend``'s primitive (any backend)."""
        values = list(operands)
        for op, refs in self.steps:
            values.append(getattr(backend, op)(*(values[r] for r in refs)))
        return values[-1]

    def run_numpy(self, backend: Any, operands: Sequence[Any]) -> np.ndarray:
        """The CPU way: ufuncs with ``out=`` into reused scratch buffers; steps without a
        plain ufunc (``sigmoid``, ``gelu``, ``where``, half precision...) call ``backend``'s
        primitive. Same results as ``run`` on the CPU backend."""
        n = self.n_operands
        values = list(operands) + [None] * len(self.steps)
        registers: list = [None] * (max(self._registers, default=-1) + 1)
        owned = [False] * len(registers)   # allocated here (safe to write into)
        for j, (op, refs) in enumerate(self.steps):
            args = [values[r] for r in refs]
            reg = self._registers[j]
            if self._with_out[j]:
                if not owned[reg]:
                    t = self.types[j]
                    registers[reg], owned[reg] = np.empty(t.shape, t.dtype), True
                out = registers[reg]
                if op == "relu":
                    np.maximum(args[0], 0, out=out)
                else:
                    _UFUNCS[op](*args, out=out)
            else:
                registers[reg], owned[reg] = getattr(backend, op)(*args), False
            values[n + j] = registers[reg]
        return values[-1]

    # ------------------------------------------------------------------ planning
    def _can_write_out(self, j: int) -> bool:
        op, refs = self.steps[j]
        if op not in _UFUNCS and op != "relu":
            return False
        result = self.types[j].dtype
        wanted = (_FLOATS + (_BOOL,)) if op.startswith("logical") or op in _COMPARISONS \
            else (result,)
        if result not in _FLOATS + (_BOOL,):
            return False
        for r in refs:
            t = self.operand_types[r] if r < self.n_operands else \
                self.types[r - self.n_operands]
            if t is not None and np.dtype(t.dtype) not in wanted:
                return False
        return True

    def _assign_registers(self) -> tuple[int, ...]:
        """A register per step: a step takes the register of a step result that dies at
        it (same dtype) or a free one, so a chain runs in one buffer."""
        n = self.n_operands
        last_read: dict[int, int] = {}
        for j, (_, refs) in enumerate(self.steps):
            for r in refs:
                last_read[r] = j
        registers: list[int] = []
        dtype_of: list[np.dtype] = []
        free: list[int] = []
        for j, (_, refs) in enumerate(self.steps):
            dtype = self.types[j].dtype
            dying = [registers[r - n] for r in dict.fromkeys(refs)
                     if r >= n and last_read[r] == j]
            chosen = next((g for g in dying if dtype_of[g] == dtype), None)
            free += [g for g in dying if g != chosen]
            if chosen is None:
                chosen = next((g for g in free if dtype_of[g] == dtype), None)
                if chosen is not None:
                    free.remove(chosen)
            if chosen is None:
                chosen = len(dtype_of)
                dtype_of.append(dtype)
            registers.append(chosen)
        return tuple(registers)
