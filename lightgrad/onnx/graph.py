"""A prepared ONNX graph: nodes bound to their op functions, attributes decoded, run in order.

Built once at load time (so an unsupported op is reported before anything runs); ``run``
evaluates the nodes in the file's (topological) order on real values. Sub-graphs (If, Loop,
Scan) are ``Graph`` objects too and see their outer scope's values.
"""
from __future__ import annotations

from collections import ChainMap
from typing import Any

import numpy as np

from .errors import OnnxError, OnnxRuntimeError, UnsupportedOpError
from .values import graph_value, tensor_proto_to_numpy

DEFAULT_DOMAINS = ("", "ai.onnx")


def norm_domain(domain: str) -> str:
    return "" if domain in DEFAULT_DOMAINS else domain


class Context:
    """What an op function sees besides its inputs: opset, node, device, sub-graph runner."""

    __slots__ = ("opset", "node", "n_outputs", "device", "const_cache", "env")

    def __init__(self, device: Any = None) -> None:
        self.device = device
        self.opset = 0
        self.node = None
        self.n_outputs = 1
        self.const_cache: dict = {}
        self.env: Any = None

    def run_graph(self, graph: "Graph", inputs: list) -> list:
        """Run a sub-graph on ``inputs`` with the current node's scope as its outer scope."""
        saved = (self.opset, self.node, self.n_outputs, self.env)
        try:
            return graph.run(self, inputs, outer=self.env)
        finally:
            self.opset, self.node, self.n_outputs, self.env = saved

    def value(self, a: Any) -> Any:
        """A NumPy result as a graph value: a Tensor on this run's device if floating
        point, else the array (see ``values.py``)."""
        if isinstance(a, list):
            return [self.value(x) for x in a]
        return graph_value(a, self.device)


class Node:
    __slots__ = ("op_type", "domain", "name", "inputs", "outputs", "attrs", "fn", "opset")

    def __repr__(self) -> str:
        return f"Node({self.op_type}, {self.name!r})"


def _decode_attr(a: Any, g: "GraphBuilder") -> Any:
    t = a.type
    if t == 1:
        return float(a.f)
    if t == 2:
        return int(a.i)
    if t == 3:
        return a.s.decode("utf-8", "replace")
    if t == 4:
        return tensor_proto_to_numpy(a.t)
    if t == 5:
        return g.subgraph(a.g)
    if t == 6:
        return [float(x) for x in a.floats]
    if t == 7:
        return [int(x) for x in a.ints]
    if t == 8:
        return [s.decode("utf-8", "replace") for s in a.strings]
    if t == 9:
        return [tensor_proto_to_numpy(x) for x in a.tensors]
    if t == 10:
        return [g.subgraph(x) for x in a.graphs]
    if t == 11:
        return sparse_to_numpy(a.sparse_tensor)
    if t == 12:
        return [sparse_to_numpy(x) for x in a.sparse_tensors]
    if t == 13:
        return a.tp
    if t == 14:
        return list(a.type_protos)
    raise UnsupportedOpError(f"attribute {a.name!r} has unknown type {t}")


def sparse_to_numpy(sp: Any) -> np.ndarray:
    """A dense array for a SparseTensorProto."""
    values = tensor_proto_to_numpy(sp.values)
    indices = tensor_proto_to_numpy(sp.indices).astype(np.int64)
    dims = tuple(int(d) for d in sp.dims)
    dense = np.zeros(int(np.prod(dims)), dtype=values.dtype)
    if indices.ndim == 2:
        indices = np.ravel_multi_index(indices.T, dims) if indices.size else indices[:, 0]
    dense[indices.reshape(-1)] = values.reshape(-1)
    return dense.reshape(dims)


class GraphBuilder:
    """Turns GraphProtos into Graphs with one opset map and the model's local functions."""

    def __init__(self, opsets: dict, functions: dict) -> None:
        self.opsets = opsets
        self.functions = functions

    def subgraph(self, proto: Any) -> "Graph":
        return Graph(proto, self)

    def node(self, p: Any, outer_attrs: dict | None = None) -> Node:
        from .ops import lookup
        n = Node()
        n.op_type, n.domain, n.name = p.op_type, norm_domain(p.domain), p.name
        n.inputs, n.outputs = list(p.input), list(p.output)
        attrs = {}
        for a in p.attribute:
            if a.ref_attr_name:
                if outer_attrs is not None and a.ref_attr_name in outer_attrs:
                    attrs[a.name] = outer_attrs[a.ref_attr_name]
                continue
            attrs[a.name] = _decode_attr(a, self)
        n.attrs = attrs
        n.opset = self.opsets.get(n.domain, 0)
        where = f"node {n.name!r}" if n.name else f"a node with outputs {n.outputs}"
        n.fn = lookup(n, self, where)
        return n


class Graph:
    """A runnable (sub-)graph: constants, nodes, input and output names."""

    def __init__(self, proto: Any, builder: GraphBuilder, skip_inits: bool = False) -> None:
        self.name = proto.name
        self.input_names = [i.name for i in proto.input]
        self.output_names = [o.name for o in proto.output]
        self.consts: dict[str, np.ndarray] = {}
        if not skip_inits:
            for t in proto.initializer:
                self.consts[t.name] = tensor_proto_to_numpy(t)
            for sp in proto.sparse_initializer:
                self.consts[sp.values.name] = sparse_to_numpy(sp)
        self.nodes = [builder.node(p) for p in proto.node]

    def ops(self):
        """Every Node in this graph and its sub-graphs."""
        for n in self.nodes:
            yield n
            for v in n.attrs.values():
                for g in (v if isinstance(v, list) else [v]):
                    if isinstance(g, Graph):
                        yield from g.ops()

    def run(self, ctx: Context, inputs: list, outer: Any = None) -> list:
        """Run on positional ``inputs`` (sub-graph style), outer scope ``outer``."""
        env = ChainMap({}, outer) if outer is not None else {}
        for name, v in self.consts.items():
            env[name] = _const(ctx, name, v)
        for name, v in zip(self.input_names, inputs):
            env[name] = v
        return self.evaluate(ctx, env)

    def evaluate(self, ctx: Context, env: Any) -> list:
        for node in self.nodes:
            try:
                args = [env[i] if i else None for i in node.inputs]
            except KeyError as e:
                raise OnnxRuntimeError(f"node {node.name!r} ({node.op_type}): input {e} has "
                                       "no value (not a graph input, initializer or earlier "
                                       "node output)") from None
            ctx.opset, ctx.node, ctx.n_outputs = node.opset, node, len(node.outputs)
            ctx.env = env
            try:
                out = node.fn(ctx, *args, **node.attrs)
            except OnnxError:
                raise
            except Exception as e:
                raise OnnxRuntimeError(f"node {node.name!r} ({node.domain or 'ai.onnx'}::"
                                       f"{node.op_type}, opset {node.opset}) failed: "
                                       f"{type(e).__name__}: {e}") from e
            if not isinstance(out, tuple):
                out = (out,)
            for name, v in zip(node.outputs, out):
                if name:
                    env[name] = v
        try:
            return [env[o] for o in self.output_names]
        except KeyError as e:
            raise OnnxRuntimeError(f"graph output {e} is never computed") from None


def _const(ctx: Context, name: str, v: np.ndarray) -> Any:
    key = id(v)
    hit = ctx.const_cache.get(key)
    if hit is None or hit[0] is not v:
        hit = (v, ctx.value(v))
        ctx.const_cache[key] = hit
    return hit[1]
