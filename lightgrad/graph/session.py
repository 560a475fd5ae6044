"""``Session``: runs what was fetched from a TensorFlow-style graph (``tf.py``).

``run(fetches, feed_dict)`` takes the part of the graph the fetches need (the nodes they
read, back to placeholders, Variables and constants, plus the in-place nodes of fetched
``Operation``s; nothing else runs, random draws included), copies it into a fresh graph
specialized to the fed sizes, optimizes it (``passes.run_passes``, ``plan_memory``) and
replays it with the ``Executor``; the prepared run is cached by fetches and free size.

Free dimensions: the graph was recorded with each ``None`` at ``tf.FREE_DIM``, a prime.
Specializing replaces it by the fed size wherever it appears: in shapes, and in every
integer argument that is a multiple of it (``reshape(x, (FREE_DIM * 4,))``) or within
``NEAR`` of one (a variance's ``n - 1``), and in float arguments that are such numbers or
one over them (a mean's ``1 / n``); then every node's type is inferred again for the new
sizes. (An unrelated number that happens to be that close to a multiple of ``FREE_DIM``
would be rewritten too; ``FREE_DIM`` is a prime away from round numbers to make that
unlikely.) Other uses of the size in Python (``n // 2``, ``n ** 0.5``) are not seen.

Each session keeps its own Variable values (starting from their initial values); the
parameters of ``nn`` modules captured while building are the modules' own tensors, read
and trained in place.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor
from .errors import GraphError
from .executor import Executor
from .ir import Graph, Node
from .jit import _flatten, _unflatten
from .passes import plan_memory, run_passes
from .passes.analysis import cpu_backend, root
from .tf import FREE_DIM, Operation, _describe, get_default_graph, state_of


class Session:
    """Runs fetches of ``graph`` (default: the default graph); see the module docstring.

    >>> import numpy as np
    >>> import lightgrad as lg
    >>> with lg.graph.Graph() as g:
    ...     a = lg.graph.placeholder((None,), name="a")
    ...     b = a * 2 + 1
    >>> with lg.graph.Session(g) as sess:
    ...     sess.run({"b": b}, {a: np.arange(3)})
    {'b': array([1., 3., 5.], dtype=float32)}
    """

    def __init__(self, graph: Graph | None = None):
        self.graph = graph if graph is not None else get_default_graph()
        self.backend = cpu_backend()
        self.values: dict[Node, Any] = {}
        self._cache: dict[tuple, _Prepared] = {}
        self._closed = False

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Free the session's Variable values and prepared runs."""
        self.values.clear()
        self._cache.clear()
        self._closed = True

    def run(self, fetches: Any, feed_dict: dict | None = None) -> Any:
        """Values of ``fetches`` (a graph tensor, an ``Operation``, or nested lists, tuples
        and dicts of them) as NumPy arrays (None for operations), with the placeholders
        fed from ``feed_dict``; fetched operations update the Variables."""
        if self._closed:
            raise GraphError("Session.run: the session is closed")
        leaves, spec = _flatten(fetches)
        state = state_of(self.graph)
        for op in leaves:
            if isinstance(op, Operation) and op.initializer:
                if op.graph is not self.graph:
                    raise ValueError("Session.run: the initializer is of another graph")
                self.values = {n: np.array(v, copy=True) for n, v in state.variables.items()}
        tensors = [t._data for t in leaves if isinstance(t, Tensor)]
        effects = [n for op in leaves if isinstance(op, Operation) for n in op.nodes]
        for leaf in leaves:
            self._check_fetch(leaf)
        feeds = _check_feeds(feed_dict or {}, state)
        size = _free_size(feeds, state)
        key = (tuple(id(n) for n in tensors), tuple(id(n) for n in effects), size)
        prepared = self._cache.get(key)
        if prepared is None:
            needed = _needed(self.graph, tensors + effects)
            _check_fed(needed, feeds, state)
            prepared = self._cache[key] = _Prepared(needed, tensors, size, self.backend)
        outs = iter(prepared(self, feeds, state))
        results = [next(outs) if isinstance(leaf, Tensor) else None for leaf in leaves]
        return _unflatten(spec, results)

    def _check_fetch(self, leaf: Any) -> None:
        if isinstance(leaf, Operation):
            if leaf.graph is not self.graph:
                raise ValueError(f"Session.run: {leaf!r} belongs to another graph")
            return
        if not isinstance(leaf, Tensor) or not isinstance(leaf._data, Node):
            raise TypeError(f"Session.run: fetches must be graph tensors or operations "
                            f"(in lists, tuples or dicts), got {type(leaf).__name__}")
        if leaf._data.graph is not self.graph:
            raise ValueError("Session.run: a fetched tensor belongs to another graph than "
                             "the session's")

    def variable_value(self, node: Node, state: Any) -> Any:
        """The session's current value of Variable ``node`` (made on first use)."""
        found = self.values.get(node)
        if found is None:
            found = self.values[node] = np.array(state.variables[node], copy=True)
        return found


class _Prepared:
    """One run's specialized, optimized graph with its executor and bindings."""

    def __init__(self, needed: list[Node], tensors: list[Node], size: int | None,
                 backend: Any):
        run_graph, copies = instantiate(needed, size)
        run_graph.outputs = [copies[n] for n in tensors]
        back = {new: old for old, new in copies.items()}
        run_graph = run_passes(run_graph)
        self.graph = run_graph
        self.inputs = [back[n] for n in run_graph.inputs]
        self.params = [back[n] for n in run_graph.params]
        self.executor = Executor(run_graph, backend, plan_memory(run_graph))

    def __call__(self, session: Session, feeds: dict[Node, np.ndarray], state: Any) -> list:
        _check_fed(self.inputs, feeds, state)
        inputs = [feeds[node] for node in self.inputs]
        params = [session.variable_value(n, state) if n in state.variables else n.value
                  for n in self.params]
        outs = self.executor(inputs, params)
        return [np.array(o, copy=True) for o in outs]


def _check_fed(nodes: list[Node], feeds: dict, state: Any) -> None:
    """Every placeholder among ``nodes`` is fed, or a clear error names it."""
    for node in nodes:
        if node.op == "input" and node not in feeds:
            name = state.placeholders[node][1]
            raise ValueError(f"Session.run: placeholder {name!r} must be fed (it is needed "
                             "by the fetches); add it to feed_dict")


def _needed(graph: Graph, targets: list[Node]) -> list[Node]:
    """The nodes ``targets`` need (themselves included), in graph order: what they read,
    and the in-place writes into memory they read (a bias added in place to a matmul's
    result), except those of ``Operation``s, which run only when fetched."""
    skip = state_of(graph).operation_nodes
    writers = [n for n in graph.nodes if n.mutated and n not in skip]
    needed: set[Node] = set()
    stack = list(targets)
    while stack:
        while stack:
            n = stack.pop()
            if n not in needed:
                needed.add(n)
                stack.extend(n.inputs)
        read = {root(i) for n in needed for i in (n, *n.inputs)}
        stack = [w for w in writers if w not in needed
                 and any(root(m) in read for m in w.mutated)]
    return [n for n in graph.nodes if n in needed]


def instantiate(nodes: list[Node], size: int | None = None) -> tuple[Graph, dict]:
    """A new graph copying ``nodes`` (in order; each node's inputs among them), with the
    free dimension set to ``size`` (None: left as recorded) and every type inferred again.
    Returns it and the map old node -> copy."""
    graph = Graph()
    copies: dict[Node, Node] = {}
    fix = _Specializer(size)
    for n in nodes:
        if n.op == "input":
            new = graph.input(fix(n.shape), n.dtype, name=n.name)
        elif n.op == "param":
            new = graph.param(n.value, name=n.name)
        elif n.op == "constant":
            new = graph.constant(n.value, name=n.name)
        elif n.op == "select":
            new = copies[n.args[0]].outputs[n.args[1]]
            graph.nodes.append(new)
        else:
            args = fix(_copy_args(n.args, copies))
            try:
                new = graph.make(n.op, *args)
            except (ValueError, TypeError) as err:
                raise GraphError(f"can't run the graph with its free dimension at {size}: "
                                 f"{n.op}: {err}") from None
            graph.nodes.append(new)
        copies[n] = new
    return graph, copies


def _copy_args(value: Any, copies: dict) -> Any:
    if isinstance(value, Node):
        return copies[value]
    if isinstance(value, (tuple, list)):
        return type(value)(_copy_args(v, copies) for v in value)
    return value


NEAR = 2
"""How far from a multiple of ``FREE_DIM`` a number may be and still count as derived
from it (``n - 1``, ``n + 1``)."""


class _Specializer:
    """Replaces the stand-in free size by ``size`` in shapes and number arguments."""

    def __init__(self, size: int | None):
        self.size = size

    def __call__(self, value: Any) -> Any:
        if self.size is None or self.size == FREE_DIM:
            return value
        if isinstance(value, (tuple, list)):
            return type(value)(self(v) for v in value)
        if isinstance(value, slice):
            return slice(self(value.start), self(value.stop), self(value.step))
        if isinstance(value, (bool, np.bool_)) or isinstance(value, Node):
            return value
        if type(value) is int or isinstance(value, np.integer):
            return type(value)(self._int(int(value)))
        if type(value) is float and value != 0 and np.isfinite(value):
            if value == round(value):
                return float(self._int(round(value)))
            inverse = 1.0 / value
            whole = round(inverse)
            if abs(inverse - whole) <= 1e-9 * abs(inverse):
                fixed = self._int(whole)
                return value if fixed == whole else 1.0 / fixed
        return value

    def _int(self, value: int) -> int:
        """``m * FREE_DIM**p`` -> ``m * size**p``; ``m * FREE_DIM + k`` -> ``m * size + k``
        for ``|k| <= NEAR`` (an ``n - 1`` such as a variance's); anything else unchanged."""
        if value == 0:
            return value
        rest, power = value, 0
        while rest % FREE_DIM == 0:
            rest //= FREE_DIM
            power += 1
        if power:
            return rest * self.size ** power
        m = round(value / FREE_DIM)
        k = value - m * FREE_DIM
        return m * self.size + k if m != 0 and abs(k) <= NEAR else value


def _check_feeds(feed_dict: dict, state: Any) -> dict[Node, np.ndarray]:
    """Fed values as arrays of each placeholder's dtype, checked against its shape."""
    feeds: dict[Node, np.ndarray] = {}
    for key, value in feed_dict.items():
        node = key._data if isinstance(key, Tensor) else None
        if node not in state.placeholders:
            shown = _describe(key) if isinstance(key, Tensor) else type(key).__name__
            raise ValueError(f"Session.run: feed_dict keys must be placeholders of the "
                             f"session's graph, got {shown}")
        shape, name = state.placeholders[node]
        if isinstance(value, Tensor):
            value = value.detach().numpy()
        given = isinstance(value, np.ndarray) or isinstance(value, np.generic)
        array = np.asarray(value)
        if given and array.dtype != node.dtype and not np.can_cast(array.dtype, node.dtype,
                                                                   "same_kind"):
            raise TypeError(f"Session.run: placeholder {name!r} takes {node.dtype.name}, "
                            f"was fed {array.dtype.name}")
        if not given and array.dtype.kind not in "biuf":
            raise TypeError(f"Session.run: placeholder {name!r} takes {node.dtype.name}, "
                            f"was fed {array.dtype}")
        if not given and array.dtype.kind == "f" and node.dtype.kind in "iub":
            raise TypeError(f"Session.run: placeholder {name!r} takes {node.dtype.name}, "
                            "was fed floating-point values")
        if len(array.shape) != len(shape) or any(
                d is not None and d != n for d, n in zip(shape, array.shape)):
            shown = "(" + ", ".join("None" if d is None else str(d) for d in shape) + \
                (",)" if len(shape) == 1 else ")")
            raise ValueError(f"Session.run: placeholder {name!r} has shape {shown}, was fed "
                             f"shape {array.shape}")
        feeds[node] = np.asarray(array, dtype=node.dtype, order="C")
    return feeds


def _free_size(feeds: dict[Node, np.ndarray], state: Any) -> int | None:
    """The one size the fed arrays give the free dimensions (None if none is fed)."""
    size, first = None, None
    for node, array in feeds.items():
        shape, name = state.placeholders[node]
        for d, n in zip(shape, array.shape):
            if d is None:
                if size is not None and n != size:
                    raise ValueError(f"Session.run: the free (None) dimensions are one size "
                                     f"per run; placeholder {first!r} was fed {size}, "
                                     f"{name!r} {n}")
                size, first = n, name
    return size


def evaluate_constant(node: Node, what: str) -> np.ndarray:
    """The value of a node computed from constants only (a Variable's initial value made
    with lightgrad ops inside a ``with`` block)."""
    needed = _needed(node.graph, [node])
    for n in needed:
        if n.op in ("input", "param"):
            kind = "placeholder" if n.op == "input" else "Variable or captured tensor"
            raise ValueError(f"{what}: the initial value depends on {kind} {n.name!r}; it "
                             "must be computable when the graph is built")
    graph, copies = instantiate(needed)
    graph.outputs = [copies[node]]
    out = Executor(graph, cpu_backend())([], [])[0]
    return np.array(out, copy=True)
