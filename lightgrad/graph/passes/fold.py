"""Constant folding: a node whose inputs are all ``constant`` nodes (or that has no inputs,
like ``full`` or ``arange``) is computed once, with the CPU backend, and becomes a
``constant``.

Never folded: effects (random draws, in-place writes), nodes with symbolic scalar
arguments (they change between replays), tuple-valued primitives, results larger than
``MAX_ELEMENTS`` (the graph would hold them for good), and memory the caller receives (an
output) or that the graph writes in place (a constant buffer is shared by every replay).

>>> import numpy as np
>>> from lightgrad.graph import Graph
>>> g = Graph()
>>> x = g.input((3,), np.float32, name="x")
>>> two = g.call("add", g.call("full", (3,), 1.0, np.dtype("float32")), 1.0)
>>> g.outputs = [g.call("mul", x, two)]
>>> print(fold_constants(g))
graph(%x : (3,) float32):
    %1 = constant() : (3,) float32
    %2 = constant() : (3,) float32
    %3 = mul(%x, %2) : (3,) float32
    return (%3,)

(``%1``, the folded ``full``, has no reader left: dead-code elimination removes it.)
"""
from __future__ import annotations

import numpy as np

from ...backends.base import Meta
from ..ir import SPECIAL_OPS, Graph, Node, _substitute
from ..scalars import is_symbolic
from .analysis import cpu_backend, mutated_roots, output_roots, root

MAX_ELEMENTS = 1 << 16
"""Largest result (in elements) folded into a constant."""


def fold_constants(graph: Graph) -> Graph:
    """Fold constant subexpressions of ``graph`` in place; returns it."""
    cpu = cpu_backend()
    written = mutated_roots(graph)
    protected = output_roots(graph) | set(graph.outputs)
    mapping: dict[Node, Node] = {}
    nodes = []
    for n in graph.nodes:
        if mapping and any(i in mapping for i in n.inputs):
            n.args = _substitute(n.args, mapping)
        folded = _fold(cpu, graph, n, written, protected)
        if folded is None:
            nodes.append(n)
        else:
            mapping[n] = folded
            nodes.append(folded)
    graph.nodes = nodes
    graph.outputs = [mapping.get(o, o) for o in graph.outputs]
    return graph


def _fold(cpu, graph: Graph, n: Node, written: set, protected: set) -> Node | None:
    if (n.op in SPECIAL_OPS or n.is_effect or n.outputs or n.shape is None
            or n.size > MAX_ELEMENTS or n in protected or root(n) in written
            or is_symbolic(n.args)):
        return None
    inputs = n.inputs
    if any(i.op != "constant" or i.value is None or root(i) in written for i in inputs):
        return None
    values = {i: i.value for i in inputs}
    try:
        result = getattr(cpu, n.op)(*_substitute(n.args, values))
    except Exception:   # leave it to run time, where the error names the user's line
        return None
    value = np.array(result, copy=True)
    if value.shape != n.shape or value.dtype != n.dtype:
        return None
    return Node(graph, "constant", (), (Meta(n.shape, n.dtype),), value=value)
