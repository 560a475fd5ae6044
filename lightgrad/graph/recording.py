"""The recording backend: the op vocabulary with graph nodes as buffers.

``RecordingBackend(real, graph)`` implements every primitive of ``base.Backend`` by adding
a node to ``graph`` (its type from the primitive's shape rule) and returning the node, which
has ``.shape`` and ``.dtype`` like any buffer. Ordinary eager code (Tensor methods,
Functions, modules, ``loss.backward()``, ``optimizer.step()``) run against it therefore
records a graph; the backward pass recorded this way is the gradient graph.

A real buffer of the ``real`` backend met as an argument (a parameter, optimizer state, a
tensor made before recording) becomes a ``param`` node that captures it; in-place
primitives on it are recorded as in-place nodes, so replaying the graph updates it.
Reading values into Python (``to_numpy``: ``.item()``, ``.numpy()``, ``bool(t)``) is not
recordable and raises ``TraceError`` naming the user's line.

``tracing(graph)`` makes every device record into ``graph`` for the duration of a
``with`` block (how ``lg.jit`` traces); a graph-only device can be made with
``graph_device``.

>>> import lightgrad as lg
>>> from lightgrad.graph import Graph
>>> g = Graph()
>>> w = lg.ones(3)
>>> with tracing(g):
...     y = (w * 2).sum()
>>> print(g)
graph():
    %0 = param() : (3,) float32
    %1 = mul(%0, 2) : (3,) float32
    %2 = sum(%1, axes=(0,), keepdim=False, dtype=None) : () float32
    return ()
"""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Iterator

import numpy as np

from ..backends import Device, _devices, base
from ..backends.base import Backend
from .errors import _PACKAGE, TraceError, user_frame
from .ir import Graph, Node, _nodes_in
from .scalars import SymFloat, SymInt


class RecordingBackend(Backend):
    """Every primitive records a node into ``self.graph``.

    ``real`` is the backend whose buffers may come in as arguments (captured as ``param``
    nodes). With ``execute=True`` (how ``lg.jit`` traces) each primitive also runs on
    ``real``, so the traced call computes exactly what eager code would (``values`` maps
    each node to its real buffer) and reading a value in Python is possible: it is
    answered, and noted in ``broken`` (the graph can't replay that call). Without
    ``execute`` (graphs built from placeholders) nodes have no values and reading one
    raises ``TraceError``.
    """

    name = "graph"

    def __init__(self, real: Backend, graph: Graph, execute: bool = False,
                 keep_values: bool = False):
        self.real = real
        self.graph = graph
        self.execute = execute
        self.free_dead = PRUNE and not keep_values
        self.values: dict[Node, Any] = {}
        self.captured: dict[int, Node] = {}
        self.broken: str | None = None
        self._uses: dict[Node, int] = {}  # how many times later nodes' args name a node
        self._recorded = 0

    # ------------------------------------------------------------------ arguments
    def node_of(self, buf: Any) -> Node:
        """The node standing for buffer ``buf``: itself if a node, else (a real buffer) the
        ``param`` node capturing it, made on first sight."""
        if isinstance(buf, Node):
            if buf.graph is not self.graph:
                raise TraceError("a tensor recorded into another graph was used here; "
                                 "tensors from one trace can't be used in another")
            return buf
        node = self.captured.get(id(buf))
        if node is None or node.value is not buf:
            node = self.graph.param(buf)
            self._layout(node, buf)
            self.captured[id(buf)] = node
            self.values[node] = buf
        return node

    def _arg(self, value: Any) -> Any:
        if isinstance(value, Node):
            return self.node_of(value)
        if isinstance(value, (tuple, list)):
            return type(value)(self._arg(v) for v in value)
        if isinstance(value, _LITERALS):
            return value
        if hasattr(value, "shape") and hasattr(value, "dtype"):
            return self.node_of(value)
        return value

    def _real(self, value: Any) -> Any:
        """The argument for the real backend: buffers for nodes, plain numbers for symbolic
        ones (NumPy would treat a float subclass as float64)."""
        if isinstance(value, Node):
            return self.values[value]
        if isinstance(value, (tuple, list)):
            return type(value)(self._real(v) for v in value)
        if isinstance(value, (SymInt, SymFloat)):
            return value.plain()
        return value

    def record(self, op: str, *args: Any) -> Any:
        """Add the call ``op(*args)`` to the graph (and run it when executing); returns
        what the primitive returns (a node, a tuple of nodes, or None for in-place
        primitives)."""
        args = tuple(self._arg(a) for a in args)
        result = None
        if self.execute:
            self._recorded += 1
            if self.free_dead and self._recorded % PRUNE_EVERY == 0:
                self._prune()
            result = getattr(self.real, op)(*self._real(args))
            uses = self._uses
            for n in _nodes_in(args):
                uses[n] = uses.get(n, 0) + 1
        try:
            out = self.graph.call(op, *args)
        except base.ShapeUnknown as err:
            if not self.execute:
                raise TraceError(f"{err}; such shapes can't be traced") from None
            self.note_broken(str(err))
            return result
        if op == "reshape" and isinstance(out, Node) and not self.execute:
            out.contiguous = args[0].contiguous
        if self.execute:
            self._keep(op, out, result)
        return out

    def _prune(self) -> None:
        """Drop the real buffers of computed nodes that nothing outside the graph holds any
        more (no tensor, saved value or local variable: only the graph's own node list and
        the arguments of later nodes name them), so a traced call frees memory as eager
        code does instead of keeping every intermediate to the end. Such a node can't be
        an argument again: code can only pass what it holds. CPython reference counts
        tell: ``list(values)``, the loop variable, ``getrefcount``'s argument, the dict key
        and ``graph.nodes`` make ``_HELD_BY_PRUNE``; each naming in a later node's
        arguments, the key in ``_uses`` and a ``select`` node's place in its producer's
        ``outputs`` add one."""
        values, uses, getrefcount = self.values, self._uses, sys.getrefcount
        for node in list(values):
            if node.op in _KEPT_OPS:
                continue
            count = uses.get(node, 0)  # and its key in ``uses``, if there
            graph_refs = _HELD_BY_PRUNE + count + (count > 0) + (node.op == "select")
            if getrefcount(node) <= graph_refs:
                del values[node]

    def _keep(self, op: str, out: Any, result: Any) -> None:
        """Remember the real results of an executed call (and check the shape rule)."""
        pairs = [(out, result)] if isinstance(out, Node) else (
            list(zip(out, result)) if out is not None else [])
        for node, buf in pairs:
            if node is None:
                continue
            if (tuple(buf.shape), np.dtype(buf.dtype)) != (node.shape, node.dtype):
                raise TraceError(f"{op}: the shape rule in backends/base.py says "
                                 f"{node.shape} {node.dtype}, the {self.real.name} backend "
                                 f"gave {tuple(buf.shape)} {np.dtype(buf.dtype)}", where="")
            self.values[node] = buf
            self._layout(node, buf)

    def _layout(self, node: Node, buf: Any) -> None:
        """Give ``node`` the layout of its real buffer: replays make the same layouts, so
        code asking for it (``is_contiguous``, strides for views) decides as in eager."""
        node.contiguous = bool(self.real.is_contiguous(buf))
        strides = getattr(buf, "strides", None)
        if strides is not None and isinstance(buf, np.ndarray):
            strides = tuple(s // buf.itemsize for s in strides) if buf.itemsize else None
        node.strides = tuple(strides) if strides is not None else None

    def note_broken(self, reason: str) -> None:
        """Record (once) why this trace can't be replayed, with the user's line."""
        if self.broken is None:
            self.broken = f"{reason} (at {user_frame() or 'unknown location'})"

    # ------------------------------------------------------------------ special cases
    def from_numpy(self, array: Any) -> Node:
        """A constant node holding a host copy of ``array``'s values."""
        node = self.graph.constant(np.array(array))
        if self.execute:  # the traced call may write into its copy, not into the graph's
            self.values[node] = self.real.from_numpy(np.array(node.value))
        return node

    def to_numpy(self, x: Any) -> Any:
        reason = ("a tensor's values were read in Python (.item(), .numpy(), .tolist(), "
                  "bool(), float(), printing...)")
        check = _read_by_lightgrad()
        if not self.execute:
            if check:  # lightgrad's own checks see zeros (in range) and pass
                return np.zeros(x.shape, x.dtype)
            raise TraceError(f"{reason} while building a graph; its nodes have no values "
                             "until the graph runs")
        if not check:
            self.note_broken(reason)
        return self.real.to_numpy(self._real(x))

    def is_contiguous(self, x: Any) -> bool:
        if isinstance(x, Node):
            return x.contiguous
        return bool(self.real.is_contiguous(x))

    def contiguous(self, x: Any) -> Node:
        node = self.node_of(x)
        if node.contiguous:
            return node
        out = self.record("contiguous", node)
        out.contiguous = True
        return out


PRUNE_EVERY = 32
"""Recorded calls between two ``RecordingBackend._prune`` sweeps while executing."""
PRUNE = sys.implementation.name == "cpython" and sys.version_info < (3, 14)
"""The sweep counts references the way CPython 3.8-3.13 does (3.14 skips some increments:
a held node could look free); elsewhere a trace keeps every intermediate to the end."""
_HELD_BY_PRUNE = 5  # references to a node that _prune's own loop and the graph make
_KEPT_OPS = ("input", "param", "constant")  # their buffers belong to the caller or graph

_LITERALS = (np.generic, SymInt, SymFloat, bool, int, float, str, slice, type(None),
             type(Ellipsis), np.dtype, type)


CHECKS_SKIPPED_BY_REPLAY = {
    ("ops/loss.py", "_check_classes"),      # cross_entropy: target classes in range
    ("nn/functional.py", "embedding"),      # embedding: ids in range
    ("tensor.py", "_check_bounds"),         # index_select & co: indices in range
}
"""lightgrad's own argument checks that read values: they run on traced calls (where a bad
value raises as in eager mode) and replays skip them; graphs built without values (from
placeholders) skip them too (the check sees zeros). Any other read of a value in Python
(``if loss.item() > 3``, ``np.asarray(t)``, printing, ``one_hot`` without num_classes)
makes the trace unreplayable."""

_CONVERSIONS = {"item", "tolist", "numpy", "__array__", "__float__", "__int__", "__bool__",
                "__index__", "__format__", "__repr__", "__str__"}


def _read_by_lightgrad() -> bool:
    """Whether the value read comes from one of ``CHECKS_SKIPPED_BY_REPLAY``."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_name in _CONVERSIONS:
        frame = frame.f_back
    if frame is None:
        return False
    path = os.path.relpath(frame.f_code.co_filename, _PACKAGE).replace(os.sep, "/")
    return (path, frame.f_code.co_name) in CHECKS_SKIPPED_BY_REPLAY


_active = [0]


def is_tracing() -> bool:
    """True while ``lg.jit`` (or graph recording) is tracing: code whose Python decisions
    read tensor values (a shortcut such as "skip when the factor is 1") takes the
    general path then.

    >>> is_tracing()
    False
    """
    return _active[0] > 0


def _recorder(op: str) -> Any:
    def primitive(self: RecordingBackend, *args: Any) -> Any:
        return self.record(op, *args)
    primitive.__name__ = op
    primitive.__doc__ = f"Record a call of ``{op}`` (see ``base.Backend.{op}``)."
    return primitive


for _op in base.SHAPE_RULES:
    if _op not in vars(RecordingBackend):
        setattr(RecordingBackend, _op, _recorder(_op))


@contextlib.contextmanager
def tracing(graph: Graph, devices: list[Device] | None = None,
            execute: bool = False, keep_values: bool = False) -> Iterator[dict]:
    """Within the block, tensors on ``devices`` (default: every device in use) record
    into ``graph`` (and compute too, with ``execute``; ``keep_values`` keeps every computed
    buffer in the recorders' ``values``, not only those still held). Yields
    ``{device: recorder}``."""
    chosen = list({id(d): d for d in (devices or _devices.values())}.values())
    saved = [(d, d.backend) for d in chosen]
    recorders = {}
    for d, real in saved:
        if isinstance(real, RecordingBackend):
            raise TraceError(f"already tracing on device {d}: lg.jit functions and graph "
                             "recording can't be nested")
        recorders[d] = RecordingBackend(real, graph, execute, keep_values)
        d.backend = recorders[d]
    _active[0] += 1
    try:
        yield recorders
    finally:
        _active[0] -= 1
        for d, real in saved:
            d.backend = real


def graph_device(graph: Graph, real: Backend | None = None) -> Device:
    """A device (type ``"graph"``) whose tensors always record into ``graph``: the
    TensorFlow-style API makes placeholders and variables on one."""
    from ..backends import cpu
    return Device("graph", None, RecordingBackend(real or cpu.backend, graph))
