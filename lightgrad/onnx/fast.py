"""The inference fast path of ``OnnxModule``: trace once, replay a compiled graph.

When an imported model runs with gradients off (``lg.no_grad()``, as ``lg.onnx.run`` and
``lightgrad onnx bench`` do) and every graph input is a Tensor, the second call for a
given input signature (shapes, dtypes, device; the first runs eagerly, so a model run
once pays nothing) evaluates the nodes while recording them
(``lightgrad.graph.recording.tracing``, in ``execute`` mode, so that call computes exactly
what the eager path computes). The recorded graph is then prepared for replay:

- the model's initializers, and every value computed in NumPy from them and from the
  input shapes (``Shape``, ``Constant``, ``Reshape`` targets...), become constants, so the
  graph passes fold what only depends on them (transposed Gemm/MatMul weights, scalar
  arithmetic) once;
- the inference rewrites of ``rewrite.py`` (LayerNorm chains become ``layer_norm``...),
  then ``run_passes`` (folding, simplification, CSE, dead code, elementwise fusion) and the
  memory plan run, and an ``Executor`` turns the graph into one straight-line function.

On the CPU the prepared graph is also compiled into a ``NumpyPlan`` (``plan.py``): a flat
list of NumPy calls writing into arrays allocated once (im2col convolutions with the bias
in the product, fused 2x2 max pools, Winograd convolutions ending in their pool, the
backend's C kernels called straight into the plan's arrays, views taken at plan time, BLAS
products split over threads by the plan); a plan is only kept when it reproduces the
traced call's outputs, and a call that finds it busy (another thread) runs the
``Executor`` instead.

Later calls with the same signature replay that plan (or function): no op table, no Tensor
objects per node, no autograd. A replay is only used while every initializer still holds the
buffer, and version, it held when traced (``load_state_dict``, ``p.data = ...`` or an
in-place update retrace). Calls that read values in Python (data-dependent ops such as
``NonZero``, control flow in ``If``/``Loop``), that return non-Tensors (sequences,
integer arrays), or that take integer/NumPy inputs run eagerly, and so does every later
call with that signature; models with unseeded random ops (``RandomNormal``...) always
run eagerly. Like ``lg.jit``, tracing swaps every device's backend for the
duration of that one call, so other threads must not use lightgrad meanwhile.

>>> import lightgrad as lg
>>> m = lg.onnx.load("cnn.onnx")  # doctest: +SKIP
>>> with lg.no_grad():
...     ys = [m(lg.randn(1, 1, 28, 28)) for _ in range(3)]  # doctest: +SKIP
>>> m.fast_path.stats  # eager, traced, replayed  # doctest: +SKIP
{'traced': 1, 'replayed': 1, 'eager': 1}
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Sequence

import numpy as np

from ..backends import _devices
from ..graph.executor import Executor, scalar_sources
from ..graph.ir import Graph, Node
from ..graph.passes import plan_memory, run_passes
from ..graph.recording import is_tracing, tracing
from ..tensor import Tensor
from .plan import NumpyPlan, compile_plan
from .rewrite import rewrite_for_inference

__all__ = ["FastPath"]

MAX_SIGNATURES = 8
"""Input signatures compiled per model; calls with further ones run eagerly."""

PLAN_ENABLED = True
"""Replay CPU graphs through ``plan.py``'s NumPy plans (False: always the Executor)."""


_RANDOM_OPS = ("RandomUniform", "RandomUniformLike", "RandomNormal", "RandomNormalLike",
               "Multinomial", "Bernoulli")


def unseeded_random_op(model: Any) -> str | None:
    """The first random op without a ``seed`` in a ModelProto (its sub-graphs and
    functions too), or None. Such an op draws new numbers at each call, which the NumPy
    values of a trace would freeze, so those models always run eagerly."""
    def nodes_of(graph: Any) -> Any:
        for n in graph.node:
            yield n
            for a in n.attribute:
                for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                    yield from nodes_of(g)
    groups = [nodes_of(model.graph)] + [iter(f.node) for f in model.functions]
    for group in groups:
        for n in group:
            if n.op_type in _RANDOM_OPS and not any(a.name == "seed" for a in n.attribute):
                return f"{n.op_type} {n.name!r} draws new random numbers at each call"
    return None


class _Replay:
    """One compiled signature: the executor, the CPU plan (``plan.py``; None off the CPU or
    when the graph can't be planned) and the initializers they were built from."""

    __slots__ = ("executor", "plan", "device", "guards", "lock")

    def __init__(self, executor: Executor, device: Any, guards: list,
                 plan: NumpyPlan | None = None) -> None:
        self.executor, self.device, self.guards, self.plan = executor, device, guards, plan
        self.lock = threading.Lock()

    def valid(self) -> bool:
        for t, buf, version in self.guards:
            if t._data is not buf or t._version[0] != version:
                return False
        return True

    def __call__(self, inputs: list[Tensor]) -> list[Tensor]:
        device = self.device
        buffers = [t._data for t in inputs]
        if self.plan is not None and self.lock.acquire(blocking=False):
            try:  # the plan's arrays serve one call at a time; others take the executor
                outs = self.plan(buffers)
            finally:
                self.lock.release()
        else:
            outs = self.executor._run(buffers, (), ())
        return [Tensor._from_buffer(b, device) for b in outs]


_SEEN, _EAGER = "seen once", "eager"
"""Cache states besides a ``_Replay``: met once (the next such call traces), or can't
be compiled (runs eagerly for good)."""


class FastPath:
    """The per-model cache of compiled input signatures (see the module docstring).

    ``enabled`` turns it off (every call eager); ``stats`` counts traced, replayed and
    eager calls; ``clear()`` forgets the compiled graphs.
    """

    def __init__(self, blocked: str | None = None) -> None:
        self.enabled = True
        self.blocked = blocked  # why this model never uses the fast path, if it doesn't
        self._cache: dict[tuple, Any] = {}
        self.stats = {"traced": 0, "replayed": 0, "eager": 0}
        self.eager_reasons: dict[tuple, str] = {}

    @property
    def graphs(self) -> list[Graph]:
        """The compiled graphs, one per input signature."""
        return [e.executor.graph for e in self._cache.values() if isinstance(e, _Replay)]

    def __getstate__(self) -> dict:
        """Copies start without compiled graphs (those are bound to this model's tensors)."""
        return {"enabled": self.enabled, "blocked": self.blocked}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state.get("blocked"))
        self.enabled = state.get("enabled", True)

    def clear(self) -> None:
        self._cache.clear()
        self.eager_reasons.clear()

    @staticmethod
    def key(values: Sequence[Any]) -> tuple | None:
        """The cache key of a call with these graph inputs (in the model's input order), or
        None when the call can't use the fast path (an input that isn't a Tensor)."""
        parts = []
        for v in values:
            if type(v) is not Tensor:
                return None
            buf = v._data
            parts.append((buf.shape, buf.dtype, v.device))
        return tuple(parts)

    def replay(self, inputs: Sequence[Any]) -> list | None:
        """The outputs of a call with all the inputs given by position, replayed from a
        compiled graph; None when there is none for them (or it is out of date)."""
        if not self._cache or not self.enabled or is_tracing():
            return None
        key = self.key(inputs)
        entry = self._cache.get(key)
        if not isinstance(entry, _Replay) or not entry.valid():
            return None
        self.stats["replayed"] += 1
        return entry(inputs)

    def call(self, key: tuple, inputs: list[Tensor], evaluate: Callable[[list], list],
             initializers: Callable[[], list[Tensor]]) -> list | None:
        """The outputs of the call (a list of Tensors), or None: evaluate eagerly.

        ``evaluate(inputs)`` runs the graph on the given input tensors and returns its
        output values; ``initializers()`` lists the model's parameters and buffers.
        """
        if is_tracing() or self.blocked:  # inside lg.jit the outer trace records the ops
            return None
        entry = self._cache.get(key)
        if isinstance(entry, _Replay) and entry.valid():
            self.stats["replayed"] += 1
            return entry(inputs)
        if entry is None or entry is _EAGER:
            if entry is None and len(self._cache) < MAX_SIGNATURES:
                self._cache[key] = _SEEN  # traced if it comes again
            self.stats["eager"] += 1
            return None
        self.stats["traced"] += 1
        outs, replay, reason = _trace(inputs, evaluate, initializers())
        self._cache[key] = _EAGER if replay is None else replay
        if replay is None:
            self.eager_reasons[key] = reason
        return outs


def _trace(inputs: list[Tensor], evaluate: Callable[[list], list],
           initializers: list[Tensor]) -> tuple[list, _Replay | None, str]:
    """Run the call while recording it; the real outputs, the replay (or None) and why
    there is none."""
    graph = Graph()
    proxies = []
    for k, t in enumerate(inputs):
        node = graph.input(t.shape, t._data.dtype, name=f"in{k}")
        proxies.append(Tensor._from_buffer(node, t.device))
    devices = list({id(d): d for d in _devices.values()}.values())
    for t in inputs:
        if all(t.device is not d for d in devices):
            devices.append(t.device)
    with tracing(graph, devices, execute=True) as recorders:
        for t, p in zip(inputs, proxies):
            recorders[t.device].values[p._data] = t._data
        outs = evaluate(proxies)
    used = [d for d, r in recorders.items() if len(r.values) > 0]
    device = used[0] if used else inputs[0].device
    rec = recorders[device]
    real = [_real(o, recorders) for o in outs]
    reason = next((r.broken for r in recorders.values() if r.broken), None)
    if len(used) > 1:
        reason = reason or "it computes on more than one device"
    if reason is None and not all(isinstance(o, Tensor) and isinstance(o._data, Node)
                                  for o in outs):
        reason = "an output is not a tensor computed by the graph"
    if reason is not None:
        return real, None, reason
    graph.outputs = [o._data for o in outs]
    for n in graph.outputs:
        rec.node_of(n)  # an output recorded into another graph raises here
    guards = _bake_params(graph, device, initializers)
    graph = run_passes(rewrite_for_inference(graph))
    if scalar_sources(graph):
        return real, None, "it reads Python numbers that change between calls"
    executor = Executor(graph, device.backend, plan_memory(graph))
    plan = _numpy_plan(graph, device, [t._data for t in inputs], real)
    return real, _Replay(executor, device, guards, plan), ""


def _numpy_plan(graph: Graph, device: Any, inputs: list, expected: list) -> NumpyPlan | None:
    """The CPU plan of ``graph`` if it can be built and reproduces the traced call's
    outputs (``expected``, as eager evaluation computed them), else None."""
    if device.type != "cpu" or not PLAN_ENABLED:
        return None
    try:
        plan = compile_plan(graph, device.backend)
        got = plan(inputs)
    except Exception:  # noqa: BLE001 - an optimisation: any failure keeps the Executor
        return None
    for g, e in zip(got, expected):
        e = getattr(e, "_data", e)
        if not isinstance(e, np.ndarray) or g.shape != e.shape or g.dtype != e.dtype:
            return None
        if e.dtype.kind == "f":
            scale = float(np.max(np.abs(e), initial=0.0, where=np.isfinite(e)))
            if not np.allclose(g, e, rtol=1e-4, atol=1e-5 * max(scale, 1.0), equal_nan=True):
                return None
        elif not np.array_equal(g, e):
            return None
    return plan


def _real(v: Any, recorders: dict) -> Any:
    """``v`` with its node (if any) replaced by the buffer computed while tracing."""
    if isinstance(v, list):
        return [_real(x, recorders) for x in v]
    if isinstance(v, Tensor) and isinstance(v._data, Node):
        for r in recorders.values():
            if v._data in r.values:
                return Tensor._from_buffer(r.values[v._data], v.device)
    return v


def _bake_params(graph: Graph, device: Any, initializers: list[Tensor]) -> list:
    """Turn every captured buffer into a constant; the guards that keep them valid."""
    owners = {id(t._data): t for t in initializers}
    guards = []
    to_numpy = device.backend.to_numpy
    for node in graph.params:
        buf = node.value
        owner = owners.get(id(buf))
        if owner is not None and owner._data is buf:
            guards.append((owner, buf, owner._version[0]))
        node.op = "constant"
        node.value = to_numpy(buf)
    graph.params = []
    return guards
