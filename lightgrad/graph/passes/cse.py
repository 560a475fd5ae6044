"""Common-subexpression elimination: a node equal to an earlier one (same op, same
arguments, same type) is replaced by it.

Never merged: effects (two random draws differ; in-place writes must all run), inputs and
params, any node whose memory the graph writes in place (through any view: after the
write the two would differ), and two outputs (the caller would get one buffer twice).
Arguments are compared as the graph sees them at that point: reads of a buffer that an
in-place primitive writes between them are different (each buffer's *version* is part of
the key). Small constants with equal values merge too.

>>> import numpy as np
>>> from lightgrad.graph import Graph
>>> g = Graph()
>>> x = g.input((3,), np.float32, name="x")
>>> g.outputs = [g.call("add", g.call("exp", x), g.call("exp", x))]
>>> print(eliminate_common_subexpressions(g))
graph(%x : (3,) float32):
    %1 = exp(%x) : (3,) float32
    %2 = add(%1, %1) : (3,) float32
    return (%2,)
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..ir import Graph, Node, _substitute
from ..scalars import SymFloat, SymInt
from .analysis import mutated_roots, remove, root

MAX_CONSTANT_ELEMENTS = 1 << 12
"""Constants up to this size are compared by value."""


def eliminate_common_subexpressions(graph: Graph) -> Graph:
    """Merge repeated computations of ``graph`` in place; returns it."""
    written = mutated_roots(graph)
    outputs, output_roots = set(graph.outputs), {root(o) for o in graph.outputs}
    present = set(graph.nodes)
    version: dict[Node, int] = {}
    seen: dict[Any, Node] = {}
    mapping: dict[Node, Node] = {}
    for n in graph.nodes:
        if mapping and any(i in mapping for i in n.inputs):
            n.args = _substitute(n.args, mapping)
        key = _key(n, written, version)
        if key is not None:
            first = seen.get(key)
            if first is None:
                seen[key] = n
            elif _outputs_present(n, first, present) and not (
                    n in outputs and root(first) in output_roots):
                mapping[n] = first
                mapping.update({o: f for o, f in zip(n.outputs, first.outputs)
                                if o is not None})
        for w in n.mutated:
            r = root(w)
            version[r] = version.get(r, 0) + 1
    remove(graph, mapping)
    graph.outputs = [mapping.get(o, o) for o in graph.outputs]
    return graph


def _key(n: Node, written: set, version: dict) -> Any:
    if n.op in ("input", "param") or n.is_effect or root(n) in written:
        return None
    if n.op == "constant":
        if n.value is None or n.size > MAX_CONSTANT_ELEMENTS:
            return None
        value = np.asarray(n.value)
        return ("constant", n.shape, value.dtype.str, value.tobytes())
    versions = tuple(version.get(root(i), 0) for i in n.inputs)
    return (n.op, _norm(n.args), n.types, versions)


def _outputs_present(n: Node, first: Node, present: set) -> bool:
    """A tuple node merges only if each of its used outputs has a counterpart."""
    return all(f is not None and f in present
               for o, f in zip(n.outputs, first.outputs) if o is not None and o in present)


def _norm(v: Any) -> Any:
    """A hashable stand-in for an argument that tells apart what computes differently
    (``0.0``/``-0.0``, ``1``/``1.0``/``True``, symbolic numbers)."""
    if isinstance(v, Node):
        return ("%", id(v))
    if isinstance(v, (SymInt, SymFloat)):
        return ("sym", id(v))
    if isinstance(v, (tuple, list)):
        return (type(v).__name__, tuple(_norm(x) for x in v))
    if isinstance(v, slice):
        return ("slice", _norm(v.start), _norm(v.stop), _norm(v.step))
    if isinstance(v, (bool, int, float, complex, np.generic)):
        return (type(v).__name__, repr(v))
    try:
        hash(v)
    except TypeError:
        return ("id", id(v))
    return ("value", type(v).__name__, v)
