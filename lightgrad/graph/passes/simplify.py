"""Algebraic simplification: rewrite nodes that compute nothing, or less than they say.

- ``x * 1``, ``1 * x``, ``x / 1``, ``x + 0``, ``0 + x``, ``x - 0`` -> ``x`` (the number
  fixed at build time, or a constant node holding only that value, broadcasting to no
  larger shape). All exact, except that ``-0.0 + 0`` is ``+0.0`` and ``x`` keeps ``-0.0``
  (equal values; only ``1 / x`` tells them apart);
- ``permute(permute(x, a), b)`` -> one ``permute`` (or ``x`` when the axes come back in
  order); ``permute(x, (0, 1, ...))`` -> ``x``;
- ``reshape(reshape(x, s1), s2)`` -> ``reshape(x, s2)``; ``reshape(x, x.shape)`` -> ``x``;
- ``expand(x, x.shape)`` -> ``x``; ``astype(x, x.dtype)`` -> ``x``.

Each rewrite changes which memory a reader sees, so it is skipped when the graph writes in
place to the memory of ``x`` or of the node (through any view), and, for an output, when
the caller would receive memory that isn't its own (an input, a param, a constant, or
another output's).

>>> import numpy as np
>>> from lightgrad.graph import Graph
>>> g = Graph()
>>> x = g.input((2, 3), np.float32, name="x")
>>> t = g.call("permute", g.call("permute", x, (1, 0)), (1, 0))
>>> g.outputs = [g.call("exp", g.call("mul", t, 1.0))]
>>> print(simplify(g))
graph(%x : (2, 3) float32):
    %1 = permute(%x, axes=(1, 0)) : (3, 2) float32
    %2 = exp(%x) : (2, 3) float32
    return (%2,)

(``%1`` has no reader left: dead-code elimination removes it.)
"""
from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from ..ir import Graph, Node, _substitute
from .analysis import is_plain_number, mutated_roots, root

_IDENTITY = {"mul": (1, (0, 1)), "div": (1, (1,)), "add": (0, (0, 1)), "sub": (0, (1,))}
"""op -> (its identity element, the argument positions where it may stand)."""


def simplify(graph: Graph) -> Graph:
    """Apply the rewrites of the module docstring to ``graph`` in place; returns it (nodes
    left without readers are for ``eliminate_dead_code``)."""
    written = mutated_roots(graph)
    outputs = Counter(graph.outputs)
    output_roots = Counter(root(o) for o in graph.outputs)
    existing = set(graph.nodes)
    mapping: dict[Node, Node] = {}
    nodes = []
    for n in graph.nodes:
        if mapping and any(i in mapping for i in n.inputs):
            n.args = _substitute(n.args, mapping)
        new = None
        if root(n) not in written:
            new = _rewrite(graph, n)
            if new is not None and (root(new) in written or n in outputs and
                                    not _may_be_output(n, new, outputs, output_roots)):
                new = None
        if new is None:
            nodes.append(n)
            continue
        if new not in existing:
            nodes.append(new)
        mapping[n] = new
    graph.nodes = nodes
    graph.outputs = [mapping.get(o, o) for o in graph.outputs]
    return graph


def _may_be_output(n: Node, new: Node, outputs: Counter, output_roots: Counter) -> bool:
    """Whether output ``n`` may become ``new``: the caller must get memory of its own (not
    an input, param or constant, not shared with another output)."""
    r = root(new)
    if r.op in ("input", "param", "constant"):
        return False
    return output_roots[r] - (outputs[n] if root(n) is r else 0) == 0


def _rewrite(graph: Graph, n: Node) -> Node | None:
    """The node that replaces ``n`` (an existing node, or a new one not yet in the list),
    or None."""
    if n.op in _IDENTITY:
        return _identity(n)
    if n.op in ("permute", "reshape", "expand", "astype"):
        x = n.args[0]
        if n.op == "astype":
            return x if np.dtype(n.args[1]) == x.dtype else None
        if n.op == "expand":
            return x if tuple(n.args[1]) == x.shape else None
        if n.op == "reshape":
            if x.op == "reshape" and x not in graph.outputs:
                x = x.args[0]
            if n.shape == x.shape:
                return x
            if x is n.args[0]:
                return None
            new = graph.make("reshape", x, n.shape)
            new.contiguous = x.contiguous
            return new
        axes = tuple(n.args[1])
        if x.op == "permute":
            axes = tuple(x.args[1][a] for a in axes)
            x = x.args[0]
        if axes == tuple(range(len(axes))):
            return x
        return graph.make("permute", x, axes) if x is not n.args[0] else None
    return None


def _identity(n: Node) -> Node | None:
    """``x`` when ``n`` is ``x op identity`` with ``n``'s type."""
    value, droppable = _IDENTITY[n.op]
    a, b = n.args
    for keep, drop, position in ((a, b, 1), (b, a, 0)):
        if position not in droppable or not isinstance(keep, Node):
            continue
        if (keep.shape, keep.dtype) != (n.shape, n.dtype):
            continue
        if _is_value(drop, value):
            return keep
    return None


def _is_value(v: Any, value: float) -> bool:
    if is_plain_number(v):
        return v == value
    if isinstance(v, Node) and v.op == "constant" and v.value is not None:
        return bool(np.all(np.asarray(v.value) == value))
    return False
