"""The memory plan: liveness over the node list, shared slots and in-place updates.

Each node's value is *live* from the node that makes it to its last reader (outputs to the
end). ``plan_memory`` gives the executor a ``Plan``:

- ``inplace``: ``add``/``sub``/``mul``/``div`` nodes that write their result into their
  first operand (run as ``binary_inplace``), when that operand has the result's shape and
  dtype (not 0-d), dies at this node, owns its memory (not a view, not an input, param or constant:
  those belong to the caller, and the graph's own in-place writes already say when it
  may write them), has no view still to be read, is not an output and is not aliased by
  the other operand (for ``add``/``mul`` the plan swaps the operands when the second
  one is the dying one: the node's ``args`` change order, the result doesn't);
- ``slots``: a slot per value; values of one shape and dtype whose lifetimes don't overlap
  share a slot (an in-place result takes its operand's slot), so a fixed set of buffers,
  one per slot, could hold the whole run (``memory_stats`` measures it).

Memory a value owns lives while the value or any view of it is live.

>>> import numpy as np
>>> from lightgrad.graph import Graph
>>> g = Graph()
>>> x = g.input((1000,), np.float32, name="x")
>>> y = g.call("mul", g.call("exp", x), 2.0)
>>> g.outputs = [g.call("sum", g.call("add", y, 1.0), (0,), False, None)]
>>> plan = plan_memory(g)
>>> sorted(n.op for n in plan.inplace)
['add', 'mul']
>>> memory_stats(g, plan)["peak_bytes"], memory_stats(g)["peak_bytes"]
(4004, 8000)
"""
from __future__ import annotations

from typing import Any

from ...backends.base import VIEW_OPS
from ..executor import Plan, _last_uses
from ..ir import SPECIAL_OPS, Graph, Node
from .analysis import root

INPLACE_OPS = ("add", "sub", "mul", "div")
"""Ops the executor can run in place (``binary_inplace``)."""
COMMUTATIVE = ("add", "mul")
"""Ops whose operands the plan may swap so that the dying one is written."""


def plan_memory(graph: Graph) -> Plan:
    """A ``Plan`` for ``graph`` (see the module docstring)."""
    life = _Lifetimes(graph)
    inplace = _choose_inplace(graph, life)
    return Plan(_assign_slots(graph, life, inplace), inplace)


class _Lifetimes:
    """Positions, last reads and view-extended ends of a graph's values."""

    def __init__(self, graph: Graph):
        self.pos = {n: i for i, n in enumerate(graph.nodes)}
        last = _last_uses(graph)
        end_of_run = len(graph.nodes)
        outputs = set(graph.outputs)
        self.end = {n: end_of_run if n in outputs else max(last.get(n, i), i)
                    for n, i in self.pos.items()}
        self.reach = dict(self.end)   # the node's end, or the end of a view of it
        for n in reversed(graph.nodes):
            if n.op in VIEW_OPS and isinstance(n.args[0], Node):
                base = n.args[0]
                self.reach[base] = max(self.reach[base], self.reach[n])


def _owns_memory(n: Node) -> bool:
    return n.op not in SPECIAL_OPS and n.op not in VIEW_OPS and n.shape is not None or \
        n.op == "select"


def _choose_inplace(graph: Graph, life: _Lifetimes) -> set[Node]:
    chosen: set[Node] = set()
    for n in graph.nodes:
        if n.op not in INPLACE_OPS or not n.shape:
            continue   # (0-d results: NumPy hands back scalars, which can't be written)
        a, b = n.args
        if _may_overwrite(n, a, b, life):
            chosen.add(n)
        elif n.op in COMMUTATIVE and _may_overwrite(n, b, a, life):
            n.args = (b, a)
            chosen.add(n)
    return chosen


def _may_overwrite(n: Node, a: Any, b: Any, life: _Lifetimes) -> bool:
    """Whether ``n = a op b`` may write its result into ``a``."""
    i = life.pos[n]
    return (isinstance(a, Node) and (a.shape, a.dtype) == (n.shape, n.dtype)
            and _owns_memory(a) and life.end[a] == i and life.reach[a] <= i
            and not (isinstance(b, Node) and root(b) is a))


def _assign_slots(graph: Graph, life: _Lifetimes, inplace: set[Node]) -> dict[Node, int]:
    slots: dict[Node, int] = {}
    free: dict[tuple, list[int]] = {}
    count = 0
    dying_at: dict[int, list[Node]] = {}
    for n, e in life.end.items():
        dying_at.setdefault(e, []).append(n)
    kind: dict[int, Any] = {}
    for i, n in enumerate(graph.nodes):
        key = (n.shape, n.dtype) if n.shape is not None else None
        shareable = key is not None and n.op not in SPECIAL_OPS and n.types
        released = [m for m in dying_at.get(i, ()) if m is not n and m in slots]
        if n in inplace:
            slots[n] = slots[n.args[0]]
            released = [m for m in released if slots[m] != slots[n]]
        for m in released:
            if kind.get(slots[m]) is not None:
                free.setdefault(kind[slots[m]], []).append(slots[m])
        if n not in slots:
            pool = free.get(key) if shareable else None
            if pool:
                slots[n] = pool.pop()
            else:
                slots[n] = count
                kind[count] = key if shareable else None
                count += 1
        if life.end[n] == i and kind.get(slots[n]) is not None and n not in graph.outputs:
            free.setdefault(kind[slots[n]], []).append(slots[n])
    return slots


def memory_stats(graph: Graph, plan: Plan | None = None) -> dict[str, int]:
    """Bytes the graph's computed values need: ``peak_bytes``, the most alive at once
    (memory a value owns lives while it or a view of it is live; an in-place result
    shares its operand's), and ``arena_bytes``, the total of one buffer per slot (without
    a plan: one per value). Inputs, params and constants are not counted; neither is the
    scratch inside fused nodes."""
    life = _Lifetimes(graph)
    inplace = plan.inplace if plan is not None else set()
    owner: dict[Node, Node] = {}
    for n in graph.nodes:
        if n in inplace or (n.op in VIEW_OPS and isinstance(n.args[0], Node)):
            owner[n] = owner.get(n.args[0], n.args[0])
        else:
            owner[n] = n
    spans: dict[Node, list[int]] = {}
    for n in graph.nodes:
        o = owner[n]
        if not _owns_memory(o):
            continue
        start, end = spans.setdefault(o, [life.pos[o], life.pos[o]])
        spans[o][1] = max(end, life.reach[n])
    delta = [0] * (len(graph.nodes) + 2)
    for o, (start, end) in spans.items():
        delta[start] += _nbytes(o)
        delta[end + 1] -= _nbytes(o)
    peak = live = 0
    for d in delta:
        live += d
        peak = max(peak, live)
    slot_bytes: dict[Any, int] = {}
    for o in spans:
        key = plan.slots.get(o, ("own", o)) if plan is not None else ("own", o)
        slot_bytes[key] = max(slot_bytes.get(key, 0), _nbytes(o))
    return {"peak_bytes": peak, "arena_bytes": sum(slot_bytes.values()),
            "buffers": len(slot_bytes)}


def _nbytes(n: Node) -> int:
    return n.size * n.dtype.itemsize if n.shape is not None else 0
