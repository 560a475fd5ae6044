"""Replaying a graph on a backend: the nodes become one straight-line Python function.

``Executor(graph, backend)`` prepares the graph once: each node's backend method is looked
up and bound, its constant arguments are stored, and the calls are written out as the
source of one function (``executor.source``) in which buffers are local variables and
every call is a direct call of a bound method; nothing is decided per node at run time.
A buffer is dropped (``del``) right after its last reader, so memory is freed as early as
eager code frees it.

A ``Plan`` (``plan=``) chooses the variable (slot) of each node, so nodes whose lifetimes
don't overlap can share one, and names elementwise nodes that may write their result into
their first operand (``binary_inplace``); the memory planner pass makes plans.

>>> import numpy as np
>>> from lightgrad.backends import get_backend
>>> from lightgrad.graph import Graph
>>> g = Graph()
>>> x = g.input((3,), np.float32, name="x")
>>> g.outputs = [g.call("mul", g.call("exp", x), 2.0)]
>>> run = Executor(g, get_backend("cpu"))
>>> run([np.zeros(3, np.float32)])
[array([2., 2., 2.], dtype=float32)]
>>> print(run.source)
def replay(inputs, params, scalars):
    v0, = inputs
    v1 = exp_1(v0)
    del v0
    v2 = mul_2(v1, 2.0)
    del v1
    return [v2]
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..backends.base import VIEW_OPS, Backend
from .errors import GraphError
from .ir import Graph, Node
from .scalars import SymFloat, SymInt, sources_of

_ELEMENTWISE_INPLACE = ("add", "sub", "mul", "div")


@dataclass
class Plan:
    """Where each node's buffer lives while a graph runs.

    ``slots`` maps a node to a slot number; nodes sharing a slot reuse one variable (the
    planner must make sure their lifetimes don't overlap). ``inplace`` holds nodes of
    ``add``/``sub``/``mul``/``div`` whose result may be written into their first operand
    (same shape and dtype, operand not read later, not a graph input or param): they run as
    ``binary_inplace`` and take the operand's slot.
    """

    slots: dict[Node, int] = field(default_factory=dict)
    inplace: set[Node] = field(default_factory=set)

    @staticmethod
    def default(graph: Graph) -> "Plan":
        """One slot per node, nothing in place."""
        return Plan({n: i for i, n in enumerate(graph.nodes)})


class Executor:
    """A graph prepared to run on ``backend``; call it with the input buffers (in
    ``graph.inputs`` order) and optionally the param buffers (``graph.params`` order;
    default: each param node's captured ``value``) and the current values of the symbolic
    scalars' sources. Returns the output buffers (``graph.outputs`` order)."""

    def __init__(self, graph: Graph, backend: Backend, plan: Plan | None = None):
        self.graph = graph
        self.backend = backend
        self.plan = plan or Plan.default(graph)
        self.source, self._run = _compile(graph, backend, self.plan)

    def __call__(self, inputs: Sequence[Any], params: Sequence[Any] | None = None,
                 scalars: Sequence[Any] = ()) -> list:
        if len(inputs) != len(self.graph.inputs):
            raise GraphError(f"the graph has {len(self.graph.inputs)} inputs, got "
                             f"{len(inputs)} buffers")
        if params is None:
            params = [p.value for p in self.graph.params]
        return self._run(inputs, params, scalars)


# ----------------------------------------------------------------------------- compiling


class _Writer:
    """Collects the generated lines and the objects they refer to by name."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {}
        self.count = 0

    def name(self, prefix: str, obj: Any) -> str:
        self.count += 1
        label = f"{prefix}{self.count}"
        self.names[label] = obj
        return label

    def literal(self, value: Any, var: Callable[[Node], str]) -> str:
        """Source text for an argument: variables for nodes, names for other objects."""
        if isinstance(value, Node):
            return var(value)
        if isinstance(value, (SymInt, SymFloat)):
            return f"{self.name('s', value)}.evaluate(scalars)"
        if isinstance(value, tuple):
            inner = "".join(self.literal(v, var) + ", " for v in value)
            return f"({inner})"
        if isinstance(value, list):
            return "[" + ", ".join(self.literal(v, var) for v in value) + "]"
        if value is None or isinstance(value, bool) or (
                type(value) in (int, float) and repr(value) == str(value)
                and value == value and abs(value) != float("inf")):
            return repr(value)
        return self.name("c", value)


def _compile(graph: Graph, backend: Backend, plan: Plan) -> tuple[str, Callable]:
    w = _Writer()
    slot = {n: plan.slots.get(n, i) for i, n in enumerate(graph.nodes)}
    last_use = _last_uses(graph)
    written = _written_roots(graph)
    inputs = [f"v{slot[n]}" for n in graph.inputs]
    params = [f"v{slot[n]}" for n in graph.params]
    body: list[str] = []
    if inputs:
        body.append(f"{', '.join(inputs)}, = inputs")
    if params:
        body.append(f"{', '.join(params)}, = params")

    def var(n: Node) -> str:
        return f"v{slot[n]}"

    for i, n in enumerate(graph.nodes):
        if n.op in ("input", "param"):
            pass
        elif n.op == "constant":
            const = w.name("k", _on_backend(backend, n.value))
            if n in written:  # the run writes into it: each run starts from a fresh copy
                const = f"{w.name('copy_', backend.copy)}({const})"
            body.append(f"{var(n)} = {const}")
        elif n.op == "select":
            body.append(f"{var(n)} = {var(n.args[0])}[{n.args[1]}]")
        elif n in plan.inplace and n.op in _ELEMENTWISE_INPLACE:
            fn = w.name("binary_inplace_", backend.binary_inplace)
            a, b = (w.literal(x, var) for x in n.args)
            body.append(f"{fn}({n.op!r}, {a}, {b})")
            if slot[n] != slot[n.args[0]]:
                body.append(f"{var(n)} = {a}")
        else:
            method = getattr(backend, n.op, None)
            if method is None:
                raise GraphError(f"the {backend.name} backend has no primitive {n.op!r}")
            fn = w.name(n.op + "_", method)
            args = ", ".join(w.literal(a, var) for a in n.args)
            call = f"{fn}({args})"
            used = n in last_use or n in graph.outputs
            body.append(f"{var(n)} = {call}" if n.types and used else call)
        dead = [m for m in dict.fromkeys(n.inputs) if last_use.get(m) == i
                and m not in graph.outputs]
        dead = [m for m in dead if slot[m] != slot[n]]
        if dead:
            body.append("del " + ", ".join(sorted({var(m) for m in dead})))
    outs = ", ".join(var(o) for o in graph.outputs)
    body.append(f"return [{outs}]")
    source = "def replay(inputs, params, scalars):\n" + "".join(
        f"    {line}\n" for line in body)
    namespace = dict(w.names)
    exec(compile(source, "<lightgrad graph>", "exec"), namespace)
    return source.rstrip("\n"), namespace["replay"]


def _last_uses(graph: Graph) -> dict[Node, int]:
    """Each node -> the position of the last node reading it."""
    last: dict[Node, int] = {}
    for i, n in enumerate(graph.nodes):
        for m in n.inputs:
            last[m] = i
        if n.op == "select":
            last[n.args[0]] = i
    return last


def _written_roots(graph: Graph) -> set[Node]:
    """Nodes whose memory some in-place node writes (directly or through views)."""
    found = set()
    for n in graph.nodes:
        for m in n.mutated:
            while m.op in VIEW_OPS and isinstance(m.args[0], Node):
                m = m.args[0]
            found.add(m)
    return found


def _on_backend(backend: Backend, value: Any) -> Any:
    """A constant's host array as a buffer of ``backend``."""
    return backend.from_numpy(value)


def scalar_sources(graph: Graph) -> set[int]:
    """The symbolic-scalar sources the graph's arguments read."""
    found: set[int] = set()

    def visit(value: Any) -> None:
        if isinstance(value, (tuple, list)):
            for v in value:
                visit(v)
        else:
            found.update(sources_of(value))
    for n in graph.nodes:
        visit(n.args)
    return found

