"""Graph passes, each its own module: constant folding (``fold``), algebraic
simplification (``simplify``), common-subexpression elimination (``cse``), dead-code
elimination (``dce``), elementwise fusion (``fusion``), and the memory plan (``memory``,
which makes the executor's ``Plan`` rather than a new graph).

``run_passes`` is what ``lg.jit`` and ``Session`` call on each graph; with
``LIGHTGRAD_DEBUG=1`` it prints what each pass did to stderr.

>>> import numpy as np
>>> from lightgrad.graph import Graph
>>> g = Graph()
>>> x = g.input((3,), np.float32, name="x")
>>> y = g.call("add", g.call("mul", g.call("exp", x), 1.0), g.call("exp", x))
>>> g.outputs = [g.call("relu", y)]
>>> print(run_passes(g))
graph(%x : (3,) float32):
    %1 = fused_elementwise(program={t0=exp($0); t1=add(t0,t0); t2=relu(t1)}, (%x,)) : \
(3,) float32
    return (%1,)
"""
from __future__ import annotations

import os
import sys
from typing import Callable

from ..ir import Graph
from .cse import eliminate_common_subexpressions
from .dce import eliminate_dead_code
from .fold import fold_constants
from .fusion import fuse_elementwise
from .memory import memory_stats, plan_memory
from .simplify import simplify

PASSES: list[tuple[str, Callable[[Graph], Graph]]] = [
    ("fold_constants", fold_constants),
    ("simplify", simplify),
    ("cse", eliminate_common_subexpressions),
    ("dce", eliminate_dead_code),
    ("fuse_elementwise", fuse_elementwise),
]
"""The passes ``run_passes`` applies, in order: folding first (it makes identities and
duplicates visible), then the rewrites, then dead code goes before fusion (fewer readers,
bigger groups)."""


def run_passes(graph: Graph, passes: list | None = None) -> Graph:
    """``graph`` after each of ``passes`` (default ``PASSES``), changed in place; its
    ``pass_log`` lists ``(pass name, nodes before, nodes after)``."""
    debug = os.environ.get("LIGHTGRAD_DEBUG") == "1"
    log = []
    for name, apply in PASSES if passes is None else passes:
        before = len(graph)
        graph = apply(graph)
        log.append((name, before, len(graph)))
        if debug:
            print(f"{name}: {before} -> {len(graph)} nodes", file=sys.stderr)
    graph.pass_log = log
    return graph


__all__ = ["PASSES", "eliminate_common_subexpressions", "eliminate_dead_code",
           "fold_constants", "fuse_elementwise", "memory_stats", "plan_memory", "run_passes",
           "simplify"]
