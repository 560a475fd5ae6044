"""Dead-code elimination: drop nodes nothing needs.

A node is needed when it is an output, an effect (an in-place write, a random draw: they
always run, in order), a graph input (the caller feeds it), or read by a needed node.
Unneeded ``param`` and ``constant`` nodes go too (``graph.params`` shrinks with them).

>>> import numpy as np
>>> from lightgrad.graph import Graph
>>> g = Graph()
>>> x = g.input((3,), np.float32, name="x")
>>> unused = g.call("exp", x)
>>> g.outputs = [g.call("neg", x)]
>>> len(eliminate_dead_code(g).nodes)
2
"""
from __future__ import annotations

from ..ir import Graph, Node
from .analysis import remove


def eliminate_dead_code(graph: Graph) -> Graph:
    """Remove the nodes of ``graph`` that no output or effect needs; returns it."""
    needed: set[Node] = set(graph.outputs)
    for n in reversed(graph.nodes):
        if n in needed or n.is_effect or n.op == "input":
            needed.add(n)
            needed.update(n.inputs)
    remove(graph, [n for n in graph.nodes if n not in needed])
    return graph
