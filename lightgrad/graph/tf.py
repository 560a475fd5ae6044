"""The TensorFlow-style API: build a graph first, then run it in a ``Session``.

Inside ``with lg.graph.Graph() as g:`` every lightgrad operation records into ``g``
instead of computing (the recording backend stands in for the real ones): ``placeholder``
makes an input fed at each run, ``Variable`` a value the session keeps between runs, and
ordinary Tensor methods, ``lg.*`` functions and ``nn`` modules (made outside the block:
their parameters are captured, and trained in place) add nodes. ``gradients(ys, xs)``
runs the ordinary ``backward`` code on the recorded tensors, so the gradient graph is the
backward pass, recorded. ``GradientDescentOptimizer(lr).minimize(loss)`` records an SGD
step (``optim.SGD``'s update) and returns the ``Operation`` that runs it.

Outside any ``with`` block, placeholders and Variables go to the *default graph*
(``get_default_graph()``), and a graph's tensors live on its graph-only device: ops on them
still record into it, but tensors of ordinary devices (``nn`` modules) mix with them only
inside a ``with`` block; build training ops there.

A ``None`` in a placeholder's shape is a free dimension: while building it stands at
``FREE_DIM`` (a prime no real shape is likely to hold), and each run specializes the graph
to the fed size (see ``session.py``). All free dimensions of a graph are one size per run
(the batch size).

>>> import numpy as np
>>> import lightgrad as lg
>>> with lg.graph.Graph() as g:
...     x = lg.graph.placeholder((None, 2), name="x")
...     w = lg.graph.Variable([[1.0], [2.0]], name="w")
...     y = (x @ w).sum()
...     (dw,) = lg.graph.gradients(y, [w])
>>> sess = lg.graph.Session(g)
>>> sess.run([y, dw], {x: np.ones((3, 2))})
[array(9., dtype=float32), array([[3.],
       [3.]], dtype=float32)]
"""
from __future__ import annotations

import weakref
from typing import Any, Sequence

import numpy as np

from .. import dtypes
from ..backends import _devices
from ..tensor import Tensor
from .errors import GraphError
from .ir import Graph, Node
from .recording import graph_device, tracing

FREE_DIM = 10007
"""The size a free (``None``) dimension has while the graph is built."""


class _GraphState:
    """What the TensorFlow-style API keeps about one graph."""

    def __init__(self, graph: Graph):
        self.placeholders: dict[Node, tuple[tuple, str]] = {}   # node -> (shape, name)
        self.variables: dict[Node, np.ndarray] = {}             # node -> initial value
        self.variable_tensors: list[Tensor] = []
        self.operation_nodes: set[Node] = set()                  # run only when fetched
        self.device: Any = None
        self._graph = weakref.ref(graph)

    def graph_device(self) -> Any:
        if self.device is None:
            from .passes.analysis import cpu_backend
            self.device = graph_device(self._graph(), cpu_backend())
        return self.device


_STATES: "weakref.WeakKeyDictionary[Graph, _GraphState]" = weakref.WeakKeyDictionary()
_building: list[tuple[Graph, Any]] = []      # (graph, its tracing context or None)
_default: list[Graph] = [Graph()]


def state_of(graph: Graph) -> _GraphState:
    """The API's bookkeeping for ``graph`` (made on first use)."""
    found = _STATES.get(graph)
    if found is None:
        found = _STATES[graph] = _GraphState(graph)
    return found


def get_default_graph() -> Graph:
    """The graph being built (innermost ``with`` block), else the default graph.

    >>> import lightgrad as lg
    >>> with lg.graph.Graph() as g:
    ...     lg.graph.get_default_graph() is g
    True
    """
    return _building[-1][0] if _building else _default[0]


def reset_default_graph() -> None:
    """Start a fresh default graph."""
    if _building:
        raise GraphError("reset_default_graph: can't reset while a graph is being built")
    _default[0] = Graph()


def enter_graph(graph: Graph) -> None:
    """Start recording every device's operations into ``graph`` (``Graph.__enter__``)."""
    if _building and _building[-1][0] is graph:
        _building.append((graph, None))           # re-entered: already recording
        return
    if _building:
        raise GraphError("graphs can't be built inside one another: leave the `with` block "
                         "of the graph being built first")
    context = tracing(graph, list({id(d): d for d in _devices.values()}.values()))
    context.__enter__()
    _building.append((graph, context))
    if "cpu" in _devices:
        _move(graph, _devices["cpu"])


def exit_graph(graph: Graph) -> None:
    """Stop recording into ``graph`` (``Graph.__exit__``)."""
    if not _building or _building[-1][0] is not graph:
        raise GraphError("Graph.__exit__: this graph is not the one being built")
    _, context = _building.pop()
    if context is not None:
        context.__exit__(None, None, None)
        _move(graph, state_of(graph).graph_device())


def _move(graph: Graph, device: Any) -> None:
    """Put the graph's tensors on ``device``: inside a ``with`` block the (recording) CPU
    device, so they mix with ordinary tensors; outside it the graph's own device, so ops
    on them still record (and reading their values is a clear error)."""
    from .state import live_tensors_on_nodes
    for t in live_tensors_on_nodes():
        if t._data.graph is graph:
            t.device = device


class _build:
    """Record into ``graph`` for a block unless that is already happening."""

    def __init__(self, graph: Graph):
        self.graph = graph

    def __enter__(self) -> None:
        self.entered = not (_building and _building[-1][0] is self.graph)
        if self.entered:
            enter_graph(self.graph)

    def __exit__(self, *exc: Any) -> None:
        if self.entered:
            exit_graph(self.graph)


def _device_for(graph: Graph) -> Any:
    """Where new graph tensors live: the recording CPU device inside a ``with`` block,
    else the graph's own graph-only device."""
    if _building and _building[-1][0] is graph:
        return _devices["cpu"] if "cpu" in _devices else state_of(graph).graph_device()
    return state_of(graph).graph_device()


def placeholder(shape: Sequence[int | None], dtype: Any = dtypes.float32,
                name: str | None = None) -> Tensor:
    """A graph input of ``shape`` (``None`` = free dimension) fed at each run through
    ``Session.run``'s ``feed_dict``.

    >>> import lightgrad as lg
    >>> with lg.graph.Graph():
    ...     x = lg.graph.placeholder((None, 3), name="x")
    >>> x.shape[1], x.dtype
    (3, lightgrad.float32)
    """
    graph = get_default_graph()
    shape = tuple(shape)
    for d in shape:
        if d is not None and (not isinstance(d, (int, np.integer)) or d < 0):
            raise ValueError(f"placeholder {name!r}: shape {shape} must hold sizes >= 0 or "
                             "None")
    np_dtype = dtypes.as_dtype(dtype).np
    state = state_of(graph)
    name = name or f"placeholder_{len(state.placeholders)}"
    if any(info[1] == name for info in state.placeholders.values()):
        raise ValueError(f"placeholder: the graph already has a placeholder named {name!r}")
    node = graph.input(tuple(FREE_DIM if d is None else int(d) for d in shape), np_dtype,
                       name=name)
    state.placeholders[node] = (shape, name)
    t = Tensor._from_buffer(node, _device_for(graph))
    t.requires_grad = np_dtype.kind == "f"       # so gradients() can reach it
    return t


def Variable(initial_value: Any, name: str | None = None, dtype: Any = None) -> Tensor:  # noqa: N802
    """A value the graph's sessions keep between runs (each ``Session`` starts from
    ``initial_value``: an array, a list, a number, or a Tensor with values).

    >>> import lightgrad as lg
    >>> with lg.graph.Graph():
    ...     w = lg.graph.Variable([1.0, 2.0], name="w")
    >>> w.shape, w.requires_grad
    ((2,), True)
    """
    graph = get_default_graph()
    value = _initial_value(initial_value, name)
    if dtype is not None:
        value = value.astype(dtypes.as_dtype(dtype).np)
    node = graph.param(value.copy(), name=name)
    state_of(graph).variables[node] = value
    t = Tensor._from_buffer(node, _device_for(graph))
    t.requires_grad = value.dtype.kind == "f"
    state_of(graph).variable_tensors.append(t)
    return t


def _initial_value(value: Any, name: str | None) -> np.ndarray:
    if isinstance(value, Tensor):
        buf = value._data
        if isinstance(buf, Node):
            from .session import evaluate_constant
            return evaluate_constant(buf, f"Variable {name!r}")
        return np.array(value.device.backend.to_numpy(buf), copy=True)
    array = np.array(value)
    if not isinstance(value, np.ndarray) and array.dtype == np.float64:
        array = array.astype(dtypes.get_default_dtype().np)
    return array


def trainable_variables(graph: Graph | None = None) -> list[Tensor]:
    """The floating-point Variables of ``graph`` (default: the default graph), as tensors
    in creation order."""
    graph = graph or get_default_graph()
    return [t for t in state_of(graph).variable_tensors if t.requires_grad]


def gradients(ys: Tensor | Sequence[Tensor], xs: Tensor | Sequence[Tensor],
              grad_ys: Sequence[Tensor] | None = None) -> list[Tensor | None]:
    """Graph tensors holding d(sum of ``ys``)/d``x`` for each ``x`` of ``xs`` (None where
    ``x`` doesn't influence ``ys``): lightgrad's backward code, recorded into the graph.

    >>> import lightgrad as lg
    >>> with lg.graph.Graph() as g:
    ...     x = lg.graph.placeholder((), name="x")
    ...     (dx,) = lg.graph.gradients(x ** 3, [x])
    >>> float(lg.graph.Session(g).run(dx, {x: 2.0}))
    12.0
    """
    from .. import autograd
    ys = [ys] if isinstance(ys, Tensor) else list(ys)
    xs = [xs] if isinstance(xs, Tensor) else list(xs)
    graph = _graph_of(ys, "gradients")
    for x in xs:
        if not x.requires_grad:
            raise ValueError(f"gradients: {_describe(x)} does not require grad (integer "
                             "placeholders and values computed without grad have no gradient)")
    with _build(graph):
        if grad_ys is None:
            from ..creation import ones_like
            grad_ys = [ones_like(y) for y in ys]
        grads = autograd.grad(ys, xs, grad_outputs=list(grad_ys), retain_graph=True,
                              allow_unused=True)
    return list(grads)


class Operation:
    """Something ``Session.run`` does rather than computes (its result is None): the
    in-place updates of a training step (``minimize``), or resetting the Variables
    (``global_variables_initializer``)."""

    def __init__(self, graph: Graph, nodes: Sequence[Node], name: str,
                 initializer: bool = False):
        self.graph, self.nodes, self.name = graph, tuple(nodes), name
        self.initializer = initializer
        state_of(graph).operation_nodes.update(self.nodes)

    def __repr__(self) -> str:
        return f"<Operation {self.name!r}: {len(self.nodes)} in-place nodes>"


def global_variables_initializer(graph: Graph | None = None) -> Operation:
    """An op that puts every Variable of the graph back to its initial value (sessions
    start initialized, so running it is optional)."""
    return Operation(graph or get_default_graph(), (), "init", initializer=True)


class GradientDescentOptimizer:
    """``minimize(loss)`` records ``var -= learning_rate * d loss / d var`` for each
    Variable (``optim.SGD``'s update, recorded) and returns the ``Operation`` doing it.

    >>> import numpy as np
    >>> import lightgrad as lg
    >>> with lg.graph.Graph() as g:
    ...     w = lg.graph.Variable([3.0], name="w")
    ...     train = lg.graph.GradientDescentOptimizer(0.25).minimize((w * w).sum())
    >>> sess = lg.graph.Session(g)
    >>> _ = sess.run(train); sess.run(w)
    array([1.5], dtype=float32)
    """

    def __init__(self, learning_rate: float):
        if not learning_rate > 0:
            raise ValueError(f"GradientDescentOptimizer: learning_rate must be > 0, got "
                             f"{learning_rate}")
        self.learning_rate = float(learning_rate)

    def minimize(self, loss: Tensor, var_list: Sequence[Tensor] | None = None) -> Operation:
        from ..optim.sgd import SGD
        graph = _graph_of([loss], "minimize")
        var_list = list(var_list) if var_list is not None else trainable_variables(graph)
        if not var_list:
            raise ValueError("minimize: the graph has no trainable Variables")
        grads = gradients(loss, var_list)
        pairs = [(v, g) for v, g in zip(var_list, grads) if g is not None]
        if not pairs:
            raise ValueError("minimize: the loss depends on none of the Variables")
        with _build(graph):
            start = len(graph.nodes)
            opt = SGD([v for v, _ in pairs], lr=self.learning_rate)
            for v, g in pairs:
                v.grad = g.detach()
            opt.step()
            for v, _ in pairs:
                v.grad = None
        updates = [n for n in graph.nodes[start:] if n.is_effect]
        return Operation(graph, updates, "minimize")


def _graph_of(tensors: Sequence[Any], op: str) -> Graph:
    """The one graph the tensors were recorded into."""
    graphs = {id(t._data.graph): t._data.graph for t in tensors
              if isinstance(t, Tensor) and isinstance(t._data, Node)}
    if len(graphs) != 1 or not all(isinstance(t, Tensor) and isinstance(t._data, Node)
                                   for t in tensors):
        raise ValueError(f"{op}: expected tensors of one graph (placeholders, Variables and "
                         "what was computed from them)")
    return next(iter(graphs.values()))


def _describe(t: Tensor) -> str:
    node = t._data
    if isinstance(node, Node) and node.op in ("input", "param") and node.name:
        kind = "placeholder" if node.op == "input" else "Variable"
        return f"{kind} {node.name!r}"
    return f"a {tuple(t.shape)} {t.dtype.name} tensor"
