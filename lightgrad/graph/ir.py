"""The graph IR: a ``Graph`` is an ordered list of ``Node``s, each one call of a vocabulary
primitive (``lightgrad/backends/base.py``) with its arguments, result shape and dtype.

A node's ``args`` are the primitive's positional arguments in signature order: other nodes
(possibly inside tuples or lists, as in ``cat`` or an index tuple) and plain values (axes,
scalars, dtypes). A few special ops are not primitives:

- ``input``: a value fed to each run (``graph.inputs``), attrs ``name``;
- ``param``: a captured buffer, read at each run from ``node.value`` or from the binding
  the caller passes (``graph.params``; the parameters and optimizer state of ``lg.jit``);
- ``constant``: a buffer fixed when the graph was built (``node.value``);
- ``select``: output ``i`` of a primitive that returns a tuple (``layer_norm`` gives
  ``(y, mean, rstd)``): the tuple node has ``types``, one ``Meta`` (or None) per output,
  ``shape``/``dtype`` None, and ``node.outputs`` holds its ``select`` nodes.

Nodes run in list order, which is a topological order. The list is a *program*, not only a
dataflow graph: a primitive in ``base.MUTATES`` (``assign``, ``setitem``,
``binary_inplace``, ``adamw_step``) writes some of its arguments in place and has no
result (``types == ()``); ops in ``base.VIEW_OPS`` may return views that share memory with
their first argument, and ``base.EFFECT_OPS`` (in-place writes, random draws) must all run,
in order. A pass that removes or moves nodes keeps those rules.

>>> import numpy as np
>>> g = Graph()
>>> x = g.input((4, 3), np.float32, name="x")
>>> w = g.input((3, 5), np.float32, name="w")
>>> y = g.call("relu", g.call("matmul", x, w))
>>> g.outputs = [y]
>>> print(g)
graph(%x : (4, 3) float32, %w : (3, 5) float32):
    %2 = matmul(%x, %w) : (4, 5) float32
    %3 = relu(%2) : (4, 5) float32
    return (%3,)
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..backends import base
from ..backends.base import Meta

SPECIAL_OPS = ("input", "param", "constant", "select")
"""Node ops that are not vocabulary primitives."""


class Node:
    """One value (or in-place call) of a graph: ``op`` applied to ``args``.

    ``shape``/``dtype`` describe the result like any buffer's (so a node can stand in for a
    buffer while tracing); ``types`` is ``(Meta(shape, dtype),)`` for a single result, one
    Meta per output for tuple-valued primitives and ``()`` for in-place ones.

    >>> import numpy as np
    >>> g = Graph()
    >>> n = g.call("full", (2,), 1.0, np.dtype("float32"))
    >>> n.op, n.shape, n.dtype, n.attrs["value"]
    ('full', (2,), dtype('float32'), 1.0)
    """

    __slots__ = ("op", "args", "types", "shape", "dtype", "name", "value", "outputs",
                 "contiguous", "strides", "graph", "__weakref__")

    def __init__(self, graph: "Graph", op: str, args: tuple, types: tuple,
                 name: str | None = None, value: Any = None):
        self.graph = graph
        self.op = op
        self.args = tuple(args)
        self.types = types
        single = len(types) == 1 and not _is_tuple_valued(op)
        self.shape = tuple(types[0].shape) if single else None
        self.dtype = np.dtype(types[0].dtype) if single else None
        self.name = name
        self.value = value
        self.outputs: tuple = ()
        # the layout, when recording knows it (a traced call's real buffer); else views
        # count as non-contiguous (code that asks then copies, which is always correct)
        self.contiguous = op not in base.VIEW_OPS
        self.strides: tuple | None = None

    # ------------------------------------------------------------------ like a buffer
    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        """Number of elements (NumPy's ``size``)."""
        return int(np.prod(self.shape, dtype=np.int64))

    # ------------------------------------------------------------------ structure
    @property
    def inputs(self) -> tuple["Node", ...]:
        """The nodes this one reads, in argument order (duplicates kept)."""
        return tuple(_nodes_in(self.args))

    @property
    def attrs(self) -> dict[str, Any]:
        """The arguments that are not nodes, by parameter name (special ops: ``name``,
        ``index``)."""
        if self.op in SPECIAL_OPS:
            out = {"name": self.name} if self.op == "input" else {}
            if self.op == "select":
                out["index"] = self.args[1]
            return out
        return {k: v for k, v in zip(param_names(self.op), self.args)
                if not any(True for _ in _nodes_in((v,)))}

    @property
    def mutated(self) -> tuple["Node", ...]:
        """The nodes this call writes in place (empty for pure ops)."""
        return tuple(self.args[i] for i in base.MUTATES.get(self.op, ())
                     if isinstance(self.args[i], Node))

    @property
    def is_effect(self) -> bool:
        """Whether the call must run even if nothing reads its result (in-place writes,
        random draws), in its place in the order."""
        return self.op in base.EFFECT_OPS

    def __repr__(self) -> str:
        label = self.name or f"#{id(self) % 10000}"
        return f"<Node %{label} = {self.op} : {_type_str(self.types, self.op)}>"


class Graph:
    """Nodes in execution order, with the graph's ``inputs``, ``params`` and ``outputs``.

    Build nodes with ``input``, ``param``, ``constant`` and ``call`` (which infers the result
    type with the primitive's shape rule); print the graph, draw it with ``to_dot``, check
    it with ``validate``. See the module docstring for an example.
    """

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.inputs: list[Node] = []
        self.params: list[Node] = []
        self.outputs: list[Node] = []

    # ------------------------------------------------------------------ building
    def input(self, shape: Sequence[int], dtype: Any, name: str | None = None) -> Node:
        """A new graph input of this type, fed at each run."""
        node = self._append(Node(self, "input", (), (Meta(tuple(shape), np.dtype(dtype)),),
                                 name=name or f"in{len(self.inputs)}"))
        self.inputs.append(node)
        return node

    def param(self, buffer: Any, name: str | None = None) -> Node:
        """A captured buffer (``node.value``), rebound by the caller at each run if it
        wants (``lg.jit`` binds parameters and optimizer state this way)."""
        node = self._append(Node(self, "param", (), (Meta(tuple(buffer.shape),
                                                          np.dtype(buffer.dtype)),),
                                 name=name, value=buffer))
        self.params.append(node)
        return node

    def constant(self, buffer: Any, name: str | None = None) -> Node:
        """A buffer fixed at build time."""
        return self._append(Node(self, "constant", (), (Meta(tuple(buffer.shape),
                                                             np.dtype(buffer.dtype)),),
                                 name=name, value=buffer))

    def call(self, op: str, *args: Any, name: str | None = None,
             index: int | None = None) -> Any:
        """Append (or insert at ``index``) a call of primitive ``op``.

        Returns the node; for a tuple-valued primitive the tuple of its output nodes (None
        where the primitive returns None); for an in-place primitive None (the node is
        still added; find it in ``nodes``).
        """
        node = self.make(op, *args, name=name)
        self._append(node, index)
        if node.outputs or _is_tuple_valued(op):
            if index is not None:
                for k, out in enumerate(o for o in node.outputs if o is not None):
                    self.nodes.insert(index + 1 + k, out)
            else:
                self.nodes.extend(o for o in node.outputs if o is not None)
            return node.outputs
        return None if not node.types else node

    def make(self, op: str, *args: Any, name: str | None = None) -> Node:
        """A node for ``op(*args)`` with its inferred type, not yet in the node list (tuple
        results get their ``select`` nodes in ``node.outputs``)."""
        if op in SPECIAL_OPS:
            raise ValueError(f"Graph.call: {op!r} is a special op; use Graph.{op}()")
        for n in _nodes_in(args):
            if n.graph is not self:
                raise ValueError(f"{op}: an argument is a node of another graph ({n!r})")
        if op not in base.SHAPE_RULES:
            raise ValueError(f"Graph.call: unknown primitive {op!r} (not in the vocabulary "
                             "of lightgrad/backends/base.py)")
        result = base.infer(op, *args)
        if result is None:
            return Node(self, op, args, (), name=name)
        if isinstance(result, Meta):
            return Node(self, op, args, (result,), name=name)
        node = Node(self, op, args, tuple(result), name=name)
        node.outputs = tuple(None if t is None else Node(self, "select", (node, i), (t,))
                             for i, t in enumerate(result))
        return node

    def _append(self, node: Node, index: int | None = None) -> Node:
        if index is None:
            self.nodes.append(node)
        else:
            self.nodes.insert(index, node)
        return node

    # ------------------------------------------------------------------ editing (passes)
    def users(self) -> dict[Node, list[Node]]:
        """Each node -> the nodes that read it, in order."""
        found: dict[Node, list[Node]] = {n: [] for n in self.nodes}
        for n in self.nodes:
            for i in n.inputs:
                if i in found and (not found[i] or found[i][-1] is not n):
                    found[i].append(n)
        return found

    def replace_uses(self, old: Node, new: Node) -> None:
        """Make every reader of ``old`` (and the outputs) read ``new`` instead."""
        for n in self.nodes:
            if any(i is old for i in _nodes_in(n.args)):
                n.args = _substitute(n.args, {old: new})
        self.outputs = [new if o is old else o for o in self.outputs]

    def erase(self, node: Node) -> None:
        """Remove ``node`` (with its ``select`` outputs) from the graph."""
        gone = {node, *(o for o in node.outputs if o is not None)}
        self.nodes = [n for n in self.nodes if n not in gone]
        self.inputs = [n for n in self.inputs if n not in gone]
        self.params = [n for n in self.params if n not in gone]

    # ------------------------------------------------------------------ building (TF style)
    def __enter__(self) -> "Graph":
        """``with graph:`` records every lightgrad operation of the block into this graph
        (the TensorFlow-style API, ``tf.py``)."""
        from .tf import enter_graph
        enter_graph(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        from .tf import exit_graph
        exit_graph(self)

    # ------------------------------------------------------------------ reading
    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def op_counts(self) -> dict[str, int]:
        """How many nodes of each op (special ops included)."""
        counts: dict[str, int] = {}
        for n in self.nodes:
            counts[n.op] = counts.get(n.op, 0) + 1
        return counts

    def labels(self) -> dict[Node, str]:
        """The printed name of each node: its ``name``, else its position."""
        out, taken = {}, set()
        for i, n in enumerate(self.nodes):
            label = n.name if n.name and n.name not in taken else str(i)
            taken.add(label)
            out[n] = label
        return out

    def __str__(self) -> str:
        names = self.labels()

        def show(v: Any) -> str:
            return _format(v, names)

        head = ", ".join(f"%{names[n]} : {_type_str(n.types, n.op)}" for n in self.inputs)
        lines = [f"graph({head}):"]
        for n in self.nodes:
            if n.op == "input":
                continue
            lines.append("    " + _node_line(n, show))
        lines.append(f"    return {_format(tuple(self.outputs), names)}")
        return "\n".join(lines)

    __repr__ = __str__

    def to_dot(self) -> str:
        """Graphviz source: one box per node, an edge per input (render it with
        ``render``, or paste it into any Graphviz viewer)."""
        names = self.labels()
        ids = {n: f"n{i}" for i, n in enumerate(self.nodes)}
        lines = ["digraph lightgrad {", '  node [shape=box, fontname="monospace"];']
        for n in self.nodes:
            attrs = ", ".join(f"{k}={_format(v, names)}" for k, v in n.attrs.items()
                              if k != "name")
            label = f"%{names[n]} = {n.op}" + (f"({attrs})" if attrs else "")
            label += "\\n" + _type_str(n.types, n.op)
            style = ', style=filled, fillcolor="#ffe0b0"' if n.is_effect else ""
            if n.op in ("input", "param", "constant"):
                style = ', style=filled, fillcolor="#d0e8ff"'
            lines.append(f'  {ids[n]} [label="{_escape(label)}"{style}];')
            for i in dict.fromkeys(n.inputs):
                if i in ids:
                    lines.append(f"  {ids[i]} -> {ids[n]};")
        for k, o in enumerate(self.outputs):
            lines.append(f'  out{k} [label="output {k}", shape=oval];')
            if o in ids:
                lines.append(f"  {ids[o]} -> out{k};")
        lines.append("}")
        return "\n".join(lines)

    def render(self, path: str, format: str = "svg") -> str:
        """Draw the graph to ``path.<format>`` with the ``graphviz`` package (``pip install
        graphviz`` and the Graphviz binaries); returns the written file's path."""
        try:
            import graphviz
        except ImportError:
            raise ImportError("Graph.render needs the graphviz package (pip install "
                              "graphviz); to_dot() gives the source without it") from None
        return graphviz.Source(self.to_dot()).render(path, format=format, cleanup=True)

    # ------------------------------------------------------------------ checking
    def validate(self) -> None:
        """Check the graph: every input of a node is a node of this graph defined earlier
        (no dangling edges, topological order), every output is in the graph, and each
        node's shape and dtype are what its primitive's shape rule gives for its inputs.
        Raises ``GraphError`` naming the node; returns None when all is well."""
        from .errors import GraphError
        names = self.labels()
        seen: set[Node] = set()
        for n in self.nodes:
            where = f"node %{names[n]} ({n.op})"
            for i in n.inputs:
                if i.graph is not self:
                    raise GraphError(f"{where}: reads a node of another graph ({i!r})")
                if i not in seen:
                    known = i in names
                    raise GraphError(f"{where}: reads {'%' + names[i] if known else repr(i)}"
                                     f", which {'comes later' if known else 'is not in'} "
                                     "the graph")
            if n.op == "select":
                parent, k = n.args
                if n not in parent.outputs or parent.outputs[k] is not n:
                    raise GraphError(f"{where}: is not output {k} of its tuple node")
                expected = (parent.types[k],)
            elif n.op in ("input", "param", "constant"):
                expected = n.types
                if n.op != "input" and n.value is not None and (
                        tuple(n.value.shape), np.dtype(n.value.dtype)) != (
                        n.shape, n.dtype):
                    raise GraphError(f"{where}: its value has type {tuple(n.value.shape)} "
                                     f"{n.value.dtype}, the node says "
                                     f"{_type_str(n.types, n.op)}")
            else:
                result = base.infer(n.op, *n.args)
                expected = () if result is None else (
                    (result,) if isinstance(result, Meta) else tuple(result))
            if _normal(expected) != _normal(n.types):
                raise GraphError(f"{where}: recorded type {_type_str(n.types, n.op)} but "
                                 f"its inputs give {_type_str(expected, n.op)}")
            seen.add(n)
        for k, o in enumerate(self.outputs):
            if o not in seen:
                raise GraphError(f"output {k} ({o!r}) is not a node of the graph")


# ----------------------------------------------------------------------------- helpers

_PARAMS: dict[str, tuple[str, ...]] = {}


def param_names(op: str) -> tuple[str, ...]:
    """The parameter names of primitive ``op`` (from its declaration in ``base.Backend``;
    the elementwise groups use ``x`` / ``a, b`` and the reductions ``x, axes, keepdim,
    dtype``).

    >>> param_names("matmul")
    ('a', 'b')
    """
    found = _PARAMS.get(op)
    if found is None:
        method = getattr(base.Backend, op, None)
        if method is not None:
            found = tuple(inspect.signature(method).parameters)[1:]
        elif op in base.UNARY_OPS:
            found = ("x",)
        elif op in base.BINARY_OPS:
            found = ("a", "b")
        elif op in base.REDUCE_OPS:
            found = ("x", "axes", "keepdim", "dtype")
        else:
            found = ()
        _PARAMS[op] = found
    return found


@functools.cache
def _buffer_params(op: str) -> frozenset[str]:
    """The parameters of ``op`` that take buffers (or numbers in their place); printed
    without their names."""
    if op in base.BINARY_OPS or op in base.UNARY_OPS:
        return frozenset({"a", "b", "x"})
    method = getattr(base.Backend, op, None)
    if method is None:
        return frozenset()
    return frozenset(name for name, p in inspect.signature(method).parameters.items()
                     if "Buffer" in str(p.annotation))


@functools.cache
def _is_tuple_valued(op: str) -> bool:
    """Whether primitive ``op`` returns a tuple (its declared return annotation)."""
    method = getattr(base.Backend, op, None)
    if method is None:
        return False
    ret = inspect.signature(method).return_annotation
    return isinstance(ret, str) and ret.startswith("tuple")


def _nodes_in(value: Any) -> Iterator[Node]:
    if isinstance(value, Node):
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _nodes_in(v)


def _substitute(value: Any, mapping: dict) -> Any:
    if isinstance(value, Node):
        return mapping.get(value, value)
    if isinstance(value, (tuple, list)):
        return type(value)(_substitute(v, mapping) for v in value)
    return value


def _dtype_name(dtype: Any) -> str:
    return np.dtype(dtype).name if dtype is not None else "?"


def _type_str(types: tuple, op: str = "") -> str:
    if not types:
        return "()"

    def one(t: Meta | None) -> str:
        return "None" if t is None else f"{tuple(t.shape)} {_dtype_name(t.dtype)}"
    if len(types) == 1 and not _is_tuple_valued(op):
        return one(types[0])
    return "(" + ", ".join(one(t) for t in types) + ")"


def _normal(types: tuple) -> tuple:
    return tuple(None if t is None else (tuple(t.shape), _dtype_name(t.dtype)) for t in types)


def _format(value: Any, names: dict) -> str:
    if isinstance(value, Node):
        return f"%{names.get(value, '?')}"
    if isinstance(value, tuple):
        inner = ", ".join(_format(v, names) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(_format(v, names) for v in value) + "]"
    if isinstance(value, (np.dtype, type)) and value is not type(None):
        try:
            return np.dtype(value).name
        except TypeError:
            return getattr(value, "__name__", repr(value))
    if isinstance(value, slice):
        parts = [("" if p is None else _format(p, names))
                 for p in (value.start, value.stop, value.step)]
        return ":".join(parts).rstrip(":") or ":"
    if value is Ellipsis:
        return "..."
    if isinstance(value, np.generic):
        return repr(value.item())
    return repr(value)


def _node_line(n: Node, show: Callable[[Any], str]) -> str:
    me = show(n)
    if n.op == "select":
        call = f"{show(n.args[0])}[{n.args[1]}]"
    elif n.op in ("param", "constant"):
        call = n.op + "()"
    else:
        parts = []
        buffers = _buffer_params(n.op)
        for pname, v in zip(param_names(n.op) or [""] * len(n.args), n.args):
            if any(True for _ in _nodes_in((v,))) or not pname or pname in buffers:
                parts.append(show(v))
            else:
                parts.append(f"{pname}={show(v)}")
        call = f"{n.op}({', '.join(parts)})"
    typ = _type_str(n.types, n.op)
    if not n.types:
        written = ", ".join(show(m) for m in n.mutated)
        return f"{call}" + (f"  # writes {written}" if written else "")
    return f"{me} = {call} : {typ}"


def _escape(text: str) -> str:
    return text.replace('"', '\\"')
