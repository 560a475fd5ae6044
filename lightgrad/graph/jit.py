"""``lg.jit``: trace a Python function once, then replay its graph.

The first call with given input shapes runs the function eagerly while recording it (the
recording backend in ``execute`` mode, so that call computes exactly what eager code
computes); the second call records again and compares: when both graphs agree (the first
call of a training step also creates the optimizer's state, so the second is the one that
repeats), later calls skip the Python and replay the graph with a prepared executor.

- Tensor arguments are the graph's inputs; parameters, buffers, gradients and optimizer
  state reached during the call are captured and bound to the live tensors at each
  replay, and what the call did to them (in-place updates, new ``.grad`` tensors, step
  counts) is done again by each replay, so ``model``/``optimizer`` objects behave as in
  eager mode. Python numbers among the arguments are part of the cache key.
- Outputs come back as new Tensors (no ``grad_fn``) in the same structure (tensor,
  tuple, list, dict).
- A new input shape/dtype/device (or ``requires_grad`` flag, or grad mode) traces again;
  after ``cache_size`` specializations new ones run eagerly, with a warning.
- Random ops (``dropout``, ``rand``) are graph nodes that draw fresh numbers at each
  replay, from the same generator as eager code.
- What a graph can't hold (a value read in Python: ``.item()`` used for control flow,
  ``np.asarray(t)``, printing, shapes that depend on values such as a boolean mask; a
  learning-rate scheduler stepped inside; a graph that keeps changing from call to call)
  is reported with a warning naming the user's ``file:line``; the function then runs
  eagerly from then on. lightgrad's own value checks (class indices in range...) run on
  traced calls only.
- Gradients of the inputs (``x.grad`` after a ``backward`` inside) are set on the
  caller's tensors; a call whose input already has a ``.grad`` runs eagerly (eager code
  would accumulate into it).
- Not replayed: other Python side effects (appending to a list, setting an attribute to a
  new tensor), like ``torch.cuda`` graphs and tinygrad's ``TinyJit``. Tracing swaps every
  device's backend for the call, so other threads must not use lightgrad meanwhile.

>>> import lightgrad as lg
>>> @lg.jit
... def f(x):
...     return (x * 2).relu().sum()
>>> [f(lg.tensor([1.0, -3.0])).item() for _ in range(3)]
[2.0, 2.0, 2.0]
"""
from __future__ import annotations

import contextlib
import functools
import gc
import os
import warnings
from typing import Any, Callable, Iterator

from ..autograd import _grad_enabled
from ..backends import Device, _devices
from ..tensor import Tensor
from .errors import user_frame
from .executor import Executor, scalar_sources
from .ir import Graph, Node
from .passes import plan_memory, run_passes
from .recording import is_tracing, tracing
from .scalars import sources_of
from .state import Effects, Snapshot

_MAX_TRACES = 4


class JitWarning(UserWarning):
    """``lg.jit`` fell back to eager execution or recompiled too often."""


class _Compiled:
    """One specialization: a graph, its executor and the effects a replay redoes."""

    def __init__(self, graph: Graph, executor: Executor, effects: Effects, device: Device,
                 out_nodes: list, spec: Any, signature: tuple, input_grads: list[int]):
        self.graph, self.executor, self.effects = graph, executor, effects
        self.input_grads = input_grads
        self.device, self.spec = device, spec
        self.none_outputs = [n is None for n in out_nodes]
        self.n_outputs = len(out_nodes) - sum(self.none_outputs)
        self.signature = signature
        self.param_getters = [effects.bindings[p] for p in graph.params]
        self.needed = sorted(scalar_sources(graph).union(
            *(sources_of(sym) for _, _, sym in effects.numbers)))
        self.sources: list = [None] * len(effects.sources)

    def run(self, tensors: list[Tensor]) -> Any:
        fx = self.effects
        params = []
        for kind, obj in self.param_getters:
            params.append(obj._data if kind == "tensor" else
                          obj.grad._data if kind == "grad" else obj)
        sources = self.sources
        for i in self.needed:
            container, key, member = fx.sources[i]
            value = container[key]
            sources[i] = value if member is None else value[member]
        outs = self.executor([t._data for t in tensors], params, sources)
        extra = outs[self.n_outputs:]
        for (t, _), buf in zip(fx.rebinds, extra):
            t._data = buf
        for k, buf in zip(self.input_grads, extra[len(fx.rebinds):]):
            tensors[k].grad = Tensor._from_buffer(buf, tensors[k].device)
        for p, grad in fx.grads:
            p.grad = grad
        for d, key, value in fx.items:
            d[key] = value
        for container, key, sym in fx.numbers:
            container[key] = sym.evaluate(sources)
        device = self.device
        results = iter(outs[:self.n_outputs])
        return _unflatten(self.spec, [None if none else Tensor._from_buffer(next(results),
                                                                           device)
                                      for none in self.none_outputs])


class JitFunction:
    """A function compiled by ``lg.jit`` (see the module docstring)."""

    def __init__(self, fn: Callable, cache_size: int = 8):
        self.fn = fn
        self.cache_size = cache_size
        self.eager_reason: str | None = None
        self._compiled: dict[tuple, list[_Compiled]] = {}
        self._traces: dict[tuple, list[tuple]] = {}
        self._warned_cap = False
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        state = f"eager ({self.eager_reason})" if self.eager_reason else \
            f"{len(self.graphs)} compiled graph(s)"
        return f"<lg.jit {self._name}: {state}>"

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        return self if obj is None else functools.partial(self.__call__, obj)

    @property
    def graphs(self) -> list[Graph]:
        """The compiled graphs (one per specialization)."""
        return [c.graph for entries in self._compiled.values() for c in entries]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.eager_reason is not None or is_tracing():
            return self.fn(*args, **kwargs)
        leaves, spec = _flatten((args, kwargs))
        tensors = [x for x in leaves if isinstance(x, Tensor)]
        if any(t.grad is not None for t in tensors):  # eager accumulates into x.grad
            return self.fn(*args, **kwargs)
        key = _key(leaves)
        for compiled in self._compiled.get(key, ()):
            if compiled.effects.guards_hold():
                return compiled.run(tensors)
        if key not in self._traces and len(self._traces) >= self.cache_size:
            if not self._warned_cap:
                self._warned_cap = True
                warnings.warn(f"lg.jit: {self._name} was traced for {self.cache_size} "
                              "different input shapes/dtypes (cache_size); new ones run "
                              "eagerly", JitWarning, stacklevel=2)
            return self.fn(*args, **kwargs)
        return self._trace(key, leaves, spec, tensors)

    @property
    def _name(self) -> str:
        return getattr(self.fn, "__qualname__", repr(self.fn))

    # ------------------------------------------------------------------ tracing
    def _trace(self, key: tuple, leaves: list, spec: Any, tensors: list[Tensor]) -> Any:
        with _gc_paused():  # so that the objects the call makes stay in gc generation 0
            return self._trace_paused(key, leaves, spec, tensors)

    def _trace_paused(self, key: tuple, leaves: list, spec: Any,
                      tensors: list[Tensor]) -> Any:
        graph = Graph()
        snapshot = Snapshot().take()  # before the proxies: they are not program state
        proxies: dict[int, Tensor] = {}
        for k, t in enumerate(tensors):
            node = graph.input(t.shape, t._data.dtype, name=f"arg{k}")
            proxy = Tensor._from_buffer(node, t.device)
            proxy.requires_grad = t.requires_grad
            proxies[id(t)] = proxy
        args, kwargs = _unflatten(spec, [proxies.get(id(x), x) if isinstance(x, Tensor) else x
                                         for x in leaves])
        devices = list({id(d): d for d in _devices.values()}.values())
        recorders: dict = {}
        try:
            with tracing(graph, devices, execute=True) as recorders:
                for t in tensors:
                    recorders[t.device].values[proxies[id(t)]._data] = t._data
                result = self.fn(*args, **kwargs)
        except BaseException:
            snapshot.restore_numbers()
            _fix_up(_values(recorders), snapshot)
            raise
        out_leaves, out_spec = _flatten(result)
        used = [d for d, r in recorders.items() if len(r.values) > 0]
        broken = next((r.broken for r in recorders.values() if r.broken), None)
        if len(used) > 1:
            broken = broken or "it computes on more than one device"
        device = used[0] if used else tensors[0].device if tensors else devices[0]
        rec = recorders[device]
        out_nodes = [rec.node_of(x._data) if isinstance(x, Tensor) else x
                     for x in out_leaves]
        effects = snapshot.effects(graph)
        input_grads = []  # gradients of the inputs (x.grad): set on the caller's tensors
        for k, t in enumerate(tensors):
            grad = proxies[id(t)].grad
            if grad is not None:
                input_grads.append((k, rec.node_of(grad._data)))
                t.grad = grad
        position = {n: i for i, n in enumerate(graph.nodes)}
        effects.rebinds.sort(key=lambda tn: position[tn[1]])  # the same order each trace
        _fix_up(_values(recorders), snapshot)
        if broken is None and effects.overwritten:
            broken = ("it changes Python state that a replay can't change: it "
                      + "; ".join(effects.overwritten))
        if broken is not None:
            self._go_eager(broken)
            return result
        if any(n is not None and not isinstance(n, Node) for n in out_nodes):
            self._go_eager("it returns something other than tensors or None (in tuples, "
                           "lists or dicts)", where=user_frame())
            return result
        graph.outputs = [n for n in out_nodes if n is not None] + [
            n for _, n in effects.rebinds] + [n for _, n in input_grads]
        signature = _signature(graph, effects)
        history = self._traces.setdefault(key, [])
        history.append(signature)
        if not effects.creates_state and len(history) >= 2 and history[-2] == signature:
            graph = run_passes(graph)  # only the graph that will be replayed
            executor = Executor(graph, device.backend, plan_memory(graph))
            compiled = _Compiled(graph, executor, effects, device, out_nodes, out_spec,
                                 signature, [k for k, _ in input_grads])
            self._compiled.setdefault(key, []).append(compiled)
            history[:] = [signature]  # count unstable traces afresh (other guard states)
            for node, (kind, _) in effects.bindings.items():
                if kind != "buffer":
                    node.value = None  # bound to a live tensor: don't keep the old buffer
            _debug(f"lg.jit: compiled {self._name}: {len(graph)} nodes")
        elif len(history) >= _MAX_TRACES:
            self._go_eager("its graph changes from call to call (a Python value that "
                           "changes each call, such as a counter, steers the code or is "
                           "baked into the graph)")
        return result

    def _go_eager(self, reason: str, where: str | None = None) -> None:
        self.eager_reason = reason + (f" (at {where})" if where else "")
        warnings.warn(f"lg.jit: can't compile {self._name}: {self.eager_reason}; it runs "
                      "eagerly from now on", JitWarning, stacklevel=4)


def jit(fn: Callable | None = None, *, cache_size: int = 8) -> Any:
    """Compile ``fn`` by tracing it (``@lg.jit``, ``@lg.jit(cache_size=4)`` or
    ``lg.jit(fn)``); see the module docstring for what is traced and replayed.

    >>> import lightgrad as lg
    >>> double = lg.jit(lambda x: x * 2)
    >>> double(lg.ones(2)).tolist()
    [2.0, 2.0]
    """
    if fn is None:
        return lambda f: JitFunction(f, cache_size)
    return JitFunction(fn, cache_size)


# ----------------------------------------------------------------------------- helpers


def _values(recorders: dict) -> dict:
    """Node -> real buffer, from every recorder of a trace."""
    values: dict = {}
    for r in recorders.values():
        values.update(r.values)
    return values


def _fix_up(values: dict, snapshot: Snapshot) -> None:
    """Give every live tensor that holds a node the real buffer computed for it."""
    for t in snapshot.tensors_on_nodes():
        if t._data in values:
            t._data = values[t._data]


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _key(leaves: list) -> tuple:
    parts: list = [_grad_enabled[0]]
    first: dict[int, int] = {}
    for i, x in enumerate(leaves):
        if isinstance(x, Tensor):
            parts.append((tuple(x.shape), x._data.dtype, str(x.device), x.requires_grad,
                          first.setdefault(id(x), i)))  # the same tensor twice is traced so
        elif isinstance(x, (int, float, str, bool, type(None))):
            parts.append((type(x), x))
        else:
            parts.append(("object", id(x)))
    return tuple(parts)


def _flatten(obj: Any) -> tuple[list, Any]:
    """Leaves (tensors and other values) of nested tuples/lists/dicts, and their layout."""
    leaves: list = []

    def walk(o: Any) -> Any:
        if isinstance(o, (tuple, list)) and not isinstance(o, Tensor):
            return (type(o), [walk(v) for v in o])
        if isinstance(o, dict):
            return (dict, [(k, walk(v)) for k, v in o.items()])
        leaves.append(o)
        return None
    return leaves, walk(obj)


def _unflatten(spec: Any, leaves: list) -> Any:
    it = iter(leaves)

    def build(s: Any) -> Any:
        if s is None:
            return next(it)
        kind, items = s
        if kind is dict:
            return {k: build(v) for k, v in items}
        values = [build(v) for v in items]
        if kind in (tuple, list):
            return kind(values)
        return kind(*values) if hasattr(kind, "_fields") else kind(values)
    return build(spec)


def _signature(graph: Graph, effects: Effects) -> tuple:
    """What must be equal for two traces to be the same program."""
    index = {n: i for i, n in enumerate(graph.nodes)}

    def norm(v: Any) -> Any:
        if isinstance(v, Node):
            return ("%", index.get(v))
        if isinstance(v, (tuple, list)):
            return (type(v).__name__, tuple(norm(x) for x in v))
        expr = getattr(v, "expr", None)
        if expr is not None:
            return ("sym", _expr_shape(expr))
        if hasattr(v, "tobytes"):
            return ("array", v.shape, str(v.dtype), v.tobytes())
        return v

    nodes = []
    for n in graph.nodes:
        if n.op == "param":
            kind, obj = effects.bindings[n]
            nodes.append(("param", kind, id(obj)))
        elif n.op == "constant":
            nodes.append(("constant", norm(n.value)))
        else:
            nodes.append((n.op, norm(n.args), n.types))
    numbers = tuple((key, _expr_shape(sym.expr)) for _, key, sym in effects.numbers)
    return (tuple(nodes), tuple(norm(o) for o in graph.outputs), numbers)


def _expr_shape(expr: tuple) -> Any:
    head, *rest = expr
    if head == "source":
        return expr
    return (getattr(head, "__name__", head),
            tuple(_expr_shape(a.expr) if hasattr(a, "expr") else a for a in rest))


def _debug(message: str) -> None:
    if os.environ.get("LIGHTGRAD_DEBUG") == "1":
        print(message)
