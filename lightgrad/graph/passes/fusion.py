"""Elementwise fusion: a tree of elementwise nodes of one shape becomes one
``fused_elementwise`` node holding a small expression ``Program`` (``program.py``).

A node joins the group of its readers when it is elementwise (``program.FUSABLE``), has
their shape, is read only by nodes of that one group, is not an output, and its memory is
not written in place; the group runs where its last node (the *root*) ran, so a node
also stays out when an in-place write between it and the root touches memory it reads.
Operands from outside the group may broadcast (``x * scale + bias``).

The CPU backend runs a fused node with NumPy ``out=`` into a few reused buffers; other
backends run its steps one by one (``base.Backend.fused_elementwise``).

>>> import numpy as np
>>> from lightgrad.graph import Graph
>>> g = Graph()
>>> x = g.input((4, 3), np.float32, name="x")
>>> b = g.input((3,), np.float32, name="b")
>>> g.outputs = [g.call("relu", g.call("add", g.call("mul", x, 2.0), b))]
>>> print(fuse_elementwise(g))
graph(%x : (4, 3) float32, %b : (3,) float32):
    %2 = fused_elementwise(program={t0=mul($0,$1); t1=add(t0,$2); t2=relu(t1)}, \
(%x, 2.0, %b)) : (4, 3) float32
    return (%2,)
"""
from __future__ import annotations

import bisect

from ..ir import Graph, Node
from .analysis import mutated_roots, remove, root, substitute
from .program import FUSABLE, Program

MIN_GROUP = 2
"""Smallest group worth a fused node."""


def fuse_elementwise(graph: Graph) -> Graph:
    """Fuse elementwise groups of ``graph`` in place; returns it."""
    users = graph.users()
    outputs = set(graph.outputs)
    written = mutated_roots(graph)
    pos = {n: i for i, n in enumerate(graph.nodes)}
    writes = [(i, root(w)) for i, n in enumerate(graph.nodes) for w in n.mutated]
    write_positions = [i for i, _ in writes]
    group_of: dict[Node, Node] = {}
    for n in reversed(graph.nodes):
        if n.op not in FUSABLE or n.shape is None:
            continue
        readers = users[n]
        target = None
        if readers and n not in outputs and root(n) not in written:
            groups = {group_of.get(u) for u in readers}
            if len(groups) == 1 and None not in groups:
                target = groups.pop()
                if target.shape != n.shape or _written_between(
                        writes, write_positions, pos[n], pos[target], n.inputs):
                    target = None
        group_of[n] = target if target is not None else n
    members: dict[Node, list[Node]] = {}
    for n in graph.nodes:
        if n in group_of:
            members.setdefault(group_of[n], []).append(n)
    mapping: dict[Node, Node] = {}
    drop: list[Node] = []
    for top, group in members.items():
        if len(group) < MIN_GROUP:
            continue
        fused = _fuse(graph, group)
        graph.nodes[pos[top]] = fused
        mapping[top] = fused
        drop += group[:-1]
    remove(graph, drop)
    substitute(graph, mapping)
    return graph


def _written_between(writes: list, positions: list, start: int, end: int,
                     reads: tuple) -> bool:
    """Whether an in-place write strictly between ``start`` and ``end`` touches memory
    that ``reads`` share."""
    lo = bisect.bisect_right(positions, start)
    hi = bisect.bisect_left(positions, end)
    if lo >= hi:
        return False
    roots = {root(r) for r in reads}
    return any(writes[k][1] in roots for k in range(lo, hi))


def _fuse(graph: Graph, group: list[Node]) -> Node:
    """One ``fused_elementwise`` node computing ``group`` (in graph order; the last one is
    the result)."""
    inside = {n: k for k, n in enumerate(group)}
    operands: list = []
    index: dict[Node, int] = {}
    raw_steps = []
    for n in group:
        refs = []
        for a in n.args:
            if isinstance(a, Node) and a in inside:
                refs.append(("step", inside[a]))
            elif isinstance(a, Node):
                if a not in index:
                    index[a] = len(operands)
                    operands.append(a)
                refs.append(("operand", index[a]))
            else:
                refs.append(("operand", len(operands)))
                operands.append(a)
        raw_steps.append((n.op, refs))
    count = len(operands)
    steps = [(op, tuple(k if kind == "operand" else count + k for kind, k in refs))
             for op, refs in raw_steps]
    types = [n.types[0] for n in group]
    operand_types = [a.types[0] if isinstance(a, Node) else None for a in operands]
    return graph.make("fused_elementwise", Program(operand_types, steps, types),
                      tuple(operands))
