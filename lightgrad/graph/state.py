"""What a traced call did to the program's state, so that a replay can do it again.

A training step changes more than its outputs: it updates parameters and optimizer
buffers in place (recorded as in-place nodes on captured buffers), sets ``p.grad`` to new
tensors, may rebind a tensor's buffer (``leaf.grad`` accumulation, ``p.data = ...``), adds
entries to dicts (optimizer state), and counts steps in Python numbers. ``Snapshot.take``
notes the state before tracing (and makes the optimizers' numbers symbolic, see
``scalars.py``); ``Snapshot.effects`` compares it with the state after and returns the
``Effects`` a replay must redo: how to bind each captured buffer (read from its owning
tensor at replay time), which tensors and dict entries get which graph outputs, which
Python numbers get which new values, and the guards under which this is valid.
"""
from __future__ import annotations

import gc
from dataclasses import dataclass, field
from typing import Any

from ..tensor import Tensor
from . import scalars
from .ir import Graph, Node


@dataclass
class Effects:
    """How a replay binds the graph to live state and writes its results back."""

    bindings: dict[Node, tuple] = field(default_factory=dict)
    """param node -> ("tensor", t) (read ``t._data``), ("grad", p) (read ``p.grad._data``)
    or ("buffer", buf) (the captured buffer itself)."""
    rebinds: list[tuple[Tensor, Node]] = field(default_factory=list)
    """``t._data = <node's value>`` after each replay."""
    grads: list[tuple[Tensor, Any]] = field(default_factory=list)
    """``p.grad = value`` (a Tensor or None) after each replay."""
    items: list[tuple[dict, Any, Any]] = field(default_factory=list)
    """``d[key] = value`` after each replay (tensors that the call put into dicts)."""
    sources: list[tuple[Any, Any, Any]] = field(default_factory=list)
    """(container, key, tuple member or None) of each symbolic number's source, read
    before each replay."""
    numbers: list[tuple[Any, Any, Any]] = field(default_factory=list)
    """(container, key, symbolic value): Python numbers the call changed (step counts)."""
    grad_guards: list[tuple[Tensor, bool]] = field(default_factory=list)
    """(p, whether p.grad was None on entry): replays need the same."""
    mode_guards: list[tuple[Any, bool]] = field(default_factory=list)
    """(module, its ``training`` flag): replays need the same."""
    flag_guards: list[tuple[Tensor, bool]] = field(default_factory=list)
    """(captured tensor, its ``requires_grad``): replays need the same."""
    value_guards: list[tuple[Any, Any, Any, Any]] = field(default_factory=list)
    """(container, key, tuple member or None, value): optimizer numbers baked into the
    graph; replays need the same values."""
    creates_state: bool = False
    """The call added optimizer state (a first step): replays can't redo that."""
    overwritten: list[str] = field(default_factory=list)
    """Python state the call changed in ways a replay can't redo (a scheduler's step)."""

    def guards_hold(self) -> bool:
        for p, was_none in self.grad_guards:
            if (p.grad is None) is not was_none:
                return False
        for m, training in self.mode_guards:
            if m.training is not training:
                return False
        for t, flag in self.flag_guards:
            if t.requires_grad is not flag:
                return False
        for container, key, member, value in self.value_guards:
            now = container.get(key)
            if (now if member is None else now[member]) != value:
                return False
        return True


class Snapshot:
    """The state before a traced call (see the module docstring)."""

    def take(self) -> "Snapshot":
        from ..nn.module import Module        # here: nn and optim import graph mode
        from ..optim.lr_scheduler import LRScheduler
        from ..optim.optimizer import Optimizer
        found: dict[type, list] = {Tensor: [], Optimizer: [], Module: [], LRScheduler: []}
        kinds = {sub: found[base] for base in found for sub in _family(base)}
        for o in gc.get_objects():  # one pass over every object (a type lookup each)
            bucket = kinds.get(type(o))
            if bucket is not None:
                bucket.append(o)
        self.tensor_types = frozenset(_family(Tensor))
        self.collections = sum(g["collections"] for g in gc.get_stats())
        self.schedulers = [(o, dict(vars(o))) for o in found[LRScheduler]]
        self.tensors = {id(o): (o, o._data, o.grad) for o in found[Tensor]}
        self.requires_grad = {key: t.requires_grad for key, (t, _, _) in self.tensors.items()}
        self.optimizers = found[Optimizer]
        self.modules = found[Module]
        self.dicts = [s for opt in self.optimizers for s in opt.state.values()
                      if isinstance(s, dict)]
        self.dicts += [m._buffers for m in self.modules]
        self.dict_items = [dict(d) for d in self.dicts]
        self.state_sizes = [len(opt.state) for opt in self.optimizers]
        self._make_symbolic()
        return self

    # ------------------------------------------------------------------ python numbers
    def tensors_on_nodes(self) -> list[Tensor]:
        """Live tensors whose buffer is a node: those of the snapshot, and new ones, found
        among the objects made since (the youngest gc generation: ``lg.jit`` pauses the
        collector while it traces, so everything made meanwhile is there)."""
        collected = sum(g["collections"] for g in gc.get_stats()) != self.collections
        young = [o for o in gc.get_objects(generation=None if collected else 0)
                 if type(o) in self.tensor_types]  # everything if gc ran meanwhile
        seen: set[int] = set()
        out = []
        for t in [t for t, _, _ in self.tensors.values()] + young:
            if type(t._data) is Node and id(t) not in seen:
                seen.add(id(t))
                out.append(t)
        return out

    def _make_symbolic(self) -> None:
        """Replace the optimizers' numbers by symbolic ones (sources 0, 1, ...)."""
        self.sources: list[tuple] = []   # (container, key, tuple member or None, original)
        self.source_ranges: list[tuple[Any, range]] = []  # (optimizer, its sources)
        for opt in self.optimizers:
            start = len(self.sources)
            for group in opt.param_groups:
                for key in list(group):
                    if key != "params":
                        self._symbolic(group, key)
            for state in opt.state.values():
                for key in list(state):
                    self._symbolic(state, key)
            self.source_ranges.append((opt, range(start, len(self.sources))))

    def _symbolic(self, container: dict, key: Any) -> None:
        value = container[key]
        if isinstance(value, tuple) and value and all(_is_number(v) for v in value):
            members = []
            for k, v in enumerate(value):  # each member of (beta1, beta2) is a source
                self.sources.append((container, key, k, value))
                members.append(scalars.make(v, ("source", len(self.sources) - 1)))
            container[key] = tuple(members)
        elif _is_number(value):
            self.sources.append((container, key, None, value))
            container[key] = scalars.make(value, ("source", len(self.sources) - 1))

    def restore_numbers(self) -> list[tuple[Any, Any, Any]]:
        """Put plain numbers back; returns the (container, key, symbolic value) of those
        the call changed by arithmetic on them (step counts). Numbers the call replaced
        by values computed elsewhere (a scheduler setting ``lr``) go to ``overwritten``:
        a replay can't redo that."""
        changed: list[tuple[Any, Any, Any]] = []
        self.overwritten: list[Any] = []
        for index, (container, key, member, original) in enumerate(self.sources):
            value = container.get(key)
            if member is not None:
                if isinstance(value, tuple) and any(isinstance(v, _SYMBOLIC) for v in value):
                    container[key] = original
            elif isinstance(value, _SYMBOLIC):
                if value.expr == ("source", index):
                    container[key] = original
                else:
                    container[key] = _plain(value)
                    changed.append((container, key, value))
            elif value is not original and key not in self.overwritten:
                self.overwritten.append(key)
        return changed

    # ------------------------------------------------------------------ after the call
    def effects(self, graph: Graph) -> Effects:
        """Compare with the state now (after the traced call)."""
        fx = Effects()
        fx.sources = [(c, k, m) for c, k, m, _ in self.sources]
        fx.numbers = self.restore_numbers()
        fx.overwritten = self.overwritten
        fx.overwritten = [f"sets the optimizer's {key!r}" for key in fx.overwritten]
        if any(vars(o) != before for o, before in self.schedulers):
            fx.overwritten.append("steps a learning-rate scheduler (step it outside the "
                                  "jitted function)")
        fx.creates_state = any(len(o.state) != n for o, n in
                               zip(self.optimizers, self.state_sizes))
        owners: dict[int, tuple] = {}
        for t, buf, grad in self.tensors.values():
            owners.setdefault(id(buf), ("tensor", t))
            if isinstance(t._data, Node) and t._data.graph is graph:  # (not a TF graph's)
                fx.rebinds.append((t, t._data))
                owners[id(buf)] = ("tensor", t)
            elif t._data is not buf:
                fx.overwritten.append("points a tensor at a buffer made outside the call")
            if t.grad is not grad:
                fx.grads.append((t, t.grad))
                fx.grad_guards.append((t, grad is None))
                if t.grad is not None and isinstance(t.grad._data, Node) and \
                        t.grad._data.graph is graph:
                    fx.rebinds.append((t.grad, t.grad._data))
        for t, _, grad in self.tensors.values():
            if grad is not None and t.grad is grad and id(grad) in self.tensors:
                owners[id(self.tensors[id(grad)][1])] = ("grad", t)
        for d, before in zip(self.dicts, self.dict_items):
            for key, value in d.items():
                if isinstance(value, Tensor) and before.get(key) is not value:
                    fx.items.append((d, key, value))
                    fx.creates_state |= key not in before
                    if isinstance(value._data, Node) and value._data.graph is graph:
                        fx.rebinds.append((value, value._data))
        for node in graph.params:
            fx.bindings[node] = owners.get(id(node.value), ("buffer", node.value))
            kind, owner = fx.bindings[node]
            if kind == "grad":
                fx.grad_guards.append((owner, False))
            elif kind == "tensor":
                fx.flag_guards.append((owner, self.requires_grad[id(owner)]))
        used = {id(node.value) for node in graph.params}
        for m in self.modules:
            if any(id(p._data) in used for p in m.parameters()):
                fx.mode_guards += [(sub, sub.training) for sub in m.modules()]
        fx.mode_guards = list({id(m): (m, t) for m, t in fx.mode_guards}.values())
        fx.rebinds = list({id(t): (t, n) for t, n in fx.rebinds}.values())
        self._value_guards(fx, graph, used)
        return fx

    def _value_guards(self, fx: Effects, graph: Graph, used: set[int]) -> None:
        """Guard the numbers of the graph's optimizers that the graph doesn't read as
        symbolic values (a value baked in, through ``math.sqrt`` or a bfloat16 cast): a
        replay needs them unchanged."""
        from .executor import scalar_sources
        dynamic = scalar_sources(graph).union(*(scalars.sources_of(sym)
                                                for _, _, sym in fx.numbers))
        for opt, indices in self.source_ranges:
            if not any(id(p._data) in used for g in opt.param_groups for p in g["params"]):
                continue
            for i in indices:
                if i not in dynamic:
                    container, key, member, original = self.sources[i]
                    value = original if member is None else original[member]
                    fx.value_guards.append((container, key, member, value))


_SYMBOLIC = (scalars.SymInt, scalars.SymFloat)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, (bool, *_SYMBOLIC))


def _plain(v: Any) -> Any:
    return int(v) if isinstance(v, int) else float(v)


def _family(cls: type) -> set[type]:
    """``cls`` and all its subclasses."""
    out, todo = set(), [cls]
    while todo:
        c = todo.pop()
        if c not in out:
            out.add(c)
            todo.extend(c.__subclasses__())
    return out


def live_tensors_on_nodes() -> list[Tensor]:
    """Every live tensor whose buffer is a graph node (after a trace)."""
    return [o for o in gc.get_objects() if issubclass(type(o), Tensor) and type(o._data) is Node]
