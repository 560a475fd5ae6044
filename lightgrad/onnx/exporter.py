"""``export``: trace a model through graph mode and write the recorded primitives as ONNX.

The model runs once on the example inputs with every device recording into a
``lightgrad.graph.Graph`` (the recording backend in execute mode, as ``lg.jit`` traces);
each vocabulary primitive then maps to one ONNX node or a short fixed pattern (``rsqrt`` is
``Reciprocal(Sqrt)``, ``gelu`` is the erf formula, attention is MatMul-Softmax-MatMul).
Parameters and buffers become initializers named like ``state_dict()``; values computed
from constants only are folded. ``dynamic_axes`` marks input dims symbolic and keeps
reshapes/expands that copy such a dim size-agnostic.

>>> import lightgrad as lg
>>> model = lg.nn.Sequential(lg.nn.Linear(4, 2), lg.nn.ReLU())
>>> lg.onnx.export(model, (lg.randn(1, 4),), "mlp.onnx", input_names=["x"])  # doctest: +SKIP
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from ..autograd import no_grad
from ..graph.ir import Node
from ..tensor import Tensor
from .errors import OnnxError, UnsupportedOpError
from .export_ops import SOURCES, Writer, elem_type, emit
from .load import onnx_package

OPSET = 17


def export(model: Any, args: Any, f: Any = None, *, input_names: Sequence[str] | None = None,
           output_names: Sequence[str] | None = None, dynamic_axes: dict | None = None,
           opset_version: int | None = None, **_: Any) -> Any:
    """Export ``model(*args)`` to ONNX at ``f`` (a path or a binary file); returns the
    ModelProto. ``dynamic_axes``: ``{input_or_output_name: {axis: "name"} or [axes]}``."""
    onnx = onnx_package()
    from onnx import helper, numpy_helper

    from ..graph import Graph
    from ..graph.recording import _read_by_lightgrad, tracing
    from . import _exporting
    args = (args,) if isinstance(args, Tensor) else tuple(args)
    if not all(isinstance(a, Tensor) for a in args):
        raise TypeError("lightgrad.onnx.export: example inputs must be Tensors")
    input_names = list(input_names or [f"input_{i}" for i in range(len(args))])
    dynamic_axes = {k: (dict(v) if isinstance(v, dict) else {a: f"{k}_{a}" for a in v})
                    for k, v in (dynamic_axes or {}).items()}
    graph = Graph()
    device = args[0].device
    proxies = []
    for name, t in zip(input_names, args):
        node = graph.input(t.shape, t._data.dtype, name=name)
        proxies.append(Tensor._from_buffer(node, device))
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    _exporting[0] = True
    try:
        # keep_values: constants computed from parameters become initializers
        with no_grad(), tracing(graph, [device], execute=True, keep_values=True) as recorders:
            rec = recorders[device]
            for p, t in zip(proxies, args):
                rec.values[p._data] = t._data
            reads: list = []
            read = rec.to_numpy

            def spy(x: Any) -> Any:  # values read in Python are baked into the graph
                if not _read_by_lightgrad():  # (lightgrad's own range checks aside)
                    reads.append(x)
                return read(x)

            rec.to_numpy = spy
            result = model(*proxies)
    finally:
        _exporting[0] = False
        if was_training and hasattr(model, "train"):
            model.train()
    _check_reads(graph, reads)
    outs = list(result) if isinstance(result, (tuple, list)) else [result]
    outs = [o for o in outs if o is not None]  # (logits, None): optional outputs left out
    if not outs or not all(isinstance(o, Tensor) for o in outs):
        raise TypeError("lightgrad.onnx.export: the model must return a Tensor or a "
                        "tuple/list of Tensors")
    out_nodes = [rec.node_of(o._data) for o in outs]
    output_names = list(output_names or [f"output_{i}" for i in range(len(outs))])
    names = {}
    if hasattr(model, "named_parameters"):
        for n, p in list(model.named_parameters()) + list(model.named_buffers()):
            names.setdefault(id(p._data), n)
    proto = _to_onnx(graph, rec, out_nodes, input_names, output_names, names, dynamic_axes,
                     opset_version or OPSET, helper, numpy_helper)
    onnx.checker.check_model(proto, full_check=True)
    if f is not None:
        data = proto.SerializeToString()
        if hasattr(f, "write"):
            f.write(data)
        else:
            with open(os.fspath(f), "wb") as fh:
                fh.write(data)
    return proto


def _to_onnx(graph: Any, rec: Any, out_nodes: list, input_names: list, output_names: list,
             param_names: dict, dynamic_axes: dict, opset: int, helper: Any,
             numpy_helper: Any) -> Any:
    w = Writer(helper, numpy_helper)
    const_nodes = _constant_nodes(graph)
    needed = _needed(out_nodes, const_nodes, graph)
    dyn: dict = {}  # node -> set of its dims that follow a dynamic input dim
    for node in graph.inputs:
        w.names[node] = node.name
        dyn[node] = set(dynamic_axes.get(node.name, {}))
    taken: set = set()
    for node in graph.nodes:
        if node not in needed or node.op == "input":
            continue
        if node.op == "param" or node in const_nodes and node.op != "select":
            value = rec.values.get(node, node.value)
            name = param_names.get(id(node.value)) if node.op == "param" else None
            if name is None or name in taken:
                name = w.fresh("param" if node.op == "param" else "const")
            taken.add(name)
            w.inits.append(numpy_helper.from_array(np.ascontiguousarray(np.asarray(value)),
                                                   name))
            w.names[node] = name
            dyn[node] = set()
            continue
        if node.op == "select":
            parent, index = node.args
            w.names[node] = w.names[(parent, index)]
            dyn[node] = dyn.get((parent, index), set())
            continue
        emit(w, node, dyn)
    outputs = []
    for node, name in zip(out_nodes, output_names):
        w.nodes.append(helper.make_node("Identity", [w.names[node]], [name]))
        dims = list(node.shape)
        for a, label in dynamic_axes.get(name, {}).items():
            dims[a] = label
        if name not in dynamic_axes:
            for a in dyn.get(node, ()):
                dims[a] = f"{name}_{a}"
        outputs.append(helper.make_tensor_value_info(name, elem_type(node.dtype), dims))
    inputs = []
    for node in graph.inputs:
        dims = list(node.shape)
        for a, label in dynamic_axes.get(node.name, {}).items():
            dims[a] = label
        inputs.append(helper.make_tensor_value_info(node.name, elem_type(node.dtype), dims))
    g = helper.make_graph(w.nodes, "lightgrad", inputs, outputs, w.inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="lightgrad")
    model.ir_version = min(model.ir_version, 8)
    return model


def _check_reads(graph: Any, reads: list) -> None:
    """Refuse a trace whose Python code read values computed from the inputs: those values
    would be frozen into the exported graph (data-dependent shapes or control flow)."""
    live: set = set(graph.inputs)
    for n in graph.nodes:
        if n not in live and any(i in live for i in n.inputs):
            live.add(n)
    for x in reads:
        if isinstance(x, Node) and x in live:
            raise UnsupportedOpError(
                "export: the model reads the values of a tensor computed from its inputs in "
                f"Python ({x.op} {tuple(x.shape or ())}); a traced graph would freeze them "
                "(data-dependent control flow or shapes can't be exported)")


def _needed(out_nodes: list, const_nodes: set, graph: Any) -> set:
    """The nodes the outputs read (not looking inside folded constants), with the in-place
    calls that write any of them."""
    seen: set = set()
    stack = list(out_nodes)
    writers = [n for n in graph.nodes if n.mutated]
    while True:
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            if n not in const_nodes or n.op == "select":
                stack.extend(n.inputs)
        stack = [n for n in writers if n not in seen and any(m in seen for m in n.mutated)]
        if not stack:
            return seen


def _constant_nodes(graph: Any) -> set:
    """Nodes computed from literals only (no input, no parameter) and never written in
    place afterwards: folded to initializers."""
    const: set = set()
    written = {m for n in graph.nodes for m in n.mutated}
    for n in graph.nodes:
        if n.op in ("input", "param") or n in written:
            continue
        if n.op in SOURCES and not n.inputs or n.inputs and all(i in const for i in n.inputs):
            const.add(n)
    return const


__all__ = ["export", "OnnxError"]

