"""What the passes need to know about a graph beyond its edges: which buffers alias which
(views), which get written in place, and how to rewrite many uses at once.

``root(n)`` follows view ops (``base.VIEW_OPS``: the result may share memory with the
first argument) back to the node owning the memory; ``mutated_roots(graph)`` is the set
of roots some in-place primitive writes (through any view). A pass must not merge,
move or drop a read of such memory across the write, nor hand out a buffer that is
later written (see each pass's docstring for the rule it applies).

>>> import numpy as np
>>> from lightgrad.graph import Graph
>>> g = Graph()
>>> x = g.input((2, 3), np.float32, name="x")
>>> y = g.call("permute", g.call("reshape", x, (3, 2)), (1, 0))
>>> root(y) is x
True
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from ...backends.base import VIEW_OPS
from ..ir import Graph, Node, _substitute
from ..scalars import SymFloat, SymInt


def root(node: Node) -> Node:
    """The node whose memory ``node`` may share (itself unless it is a view)."""
    while node.op in VIEW_OPS:
        node = node.args[0]
    return node


def mutated_roots(graph: Graph) -> set[Node]:
    """Roots of every buffer that an in-place primitive of the graph writes."""
    return {root(m) for n in graph.nodes for m in n.mutated}


def output_roots(graph: Graph) -> set[Node]:
    """Roots of the graph's outputs (memory the caller receives)."""
    return {root(o) for o in graph.outputs}


def resolve(mapping: dict[Node, Node], node: Node) -> Node:
    """Follow ``mapping`` (old -> new) to the end of its chain."""
    while node in mapping:
        node = mapping[node]
    return node


def substitute(graph: Graph, mapping: dict[Node, Node]) -> None:
    """Make every reader of a key of ``mapping`` (and the outputs) read its value instead,
    in one sweep (``Graph.replace_uses`` does one node at a time)."""
    if not mapping:
        return
    final = {old: resolve(mapping, old) for old in mapping}
    for n in graph.nodes:
        if any(i in final for i in n.inputs):
            n.args = _substitute(n.args, final)
    graph.outputs = [final.get(o, o) for o in graph.outputs]


def remove(graph: Graph, dead: Iterable[Node]) -> None:
    """Drop ``dead`` nodes from the node, input and param lists (one sweep)."""
    gone = set(dead)
    if gone:
        graph.nodes = [n for n in graph.nodes if n not in gone]
        graph.inputs = [n for n in graph.inputs if n not in gone]
        graph.params = [n for n in graph.params if n not in gone]


def cpu_backend() -> Any:
    """The CPU backend itself (also while a trace has the CPU device recording)."""
    from ...backends import get_backend
    backend = get_backend("cpu")
    while hasattr(backend, "real") and hasattr(backend, "graph"):
        backend = backend.real
    return backend


def is_plain_number(value: Any) -> bool:
    """A Python/NumPy number fixed at build time (not a symbolic scalar, not a bool)."""
    if isinstance(value, (SymInt, SymFloat, bool, np.bool_)):
        return False
    return isinstance(value, (int, float, np.integer, np.floating))
