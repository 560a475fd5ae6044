"""The op table: (domain, op type) -> function, and how a node finds its function.

An op function takes ``(ctx, *inputs, **attributes)`` (a missing optional input is None)
and returns one value or a tuple. Register it with ``@op("Name")``. Ops the table lacks but
whose ONNX schema defines a function body (at the node's opset) run that body, expanded into
nodes the table has; a model's local functions expand the same way.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

from ..errors import UnsupportedOpError

OPS: dict[tuple[str, str], Callable] = {}
_ACCEPTS: dict[Callable, Any] = {}


def op(*names: str, domain: str = "") -> Callable:
    """Register a function for one or more op types."""

    def deco(fn: Callable) -> Callable:
        for n in names:
            OPS[(domain, n)] = fn
        return fn

    return deco


def _accepted(fn: Callable) -> Any:
    """The attribute names ``fn`` takes (None: any)."""
    if fn not in _ACCEPTS:
        params = inspect.signature(fn).parameters.values()
        if any(p.kind is p.VAR_KEYWORD for p in params):
            _ACCEPTS[fn] = None
        else:
            _ACCEPTS[fn] = {p.name for p in params if p.kind is p.KEYWORD_ONLY}
    return _ACCEPTS[fn]


def _schema_function(node: Any, opset: int) -> Any:
    """The FunctionProto the ONNX schema defines for this op at this opset, or None."""
    fp = _schema_function_raw(node, opset)
    if isinstance(fp, bytes):
        from onnx import FunctionProto
        fp = FunctionProto.FromString(fp)
    return fp if fp is not None and len(fp.node) else None


def _schema_function_raw(node: Any, opset: int) -> Any:
    try:
        from onnx import defs
        schema = defs.get_schema(node.op_type, opset, node.domain)
    except Exception:
        return None
    try:
        if hasattr(schema, "get_function_with_opset_version"):
            fp = schema.get_function_with_opset_version(opset)
            if fp is not None:
                return fp
    except Exception:
        pass
    return schema.function_body if schema.has_function else None


def _expand(fp: Any, node: Any, builder: Any) -> Callable:
    """An op function that runs FunctionProto ``fp`` with the node's attributes bound."""
    from ..graph import Graph, GraphBuilder
    attrs = dict(node.attrs)
    for a in getattr(fp, "attribute_proto", []):
        if a.name not in attrs:
            from ..graph import _decode_attr
            attrs[a.name] = _decode_attr(a, builder)
    try:
        from onnx import defs
        schema = defs.get_schema(node.op_type, node.opset, node.domain)
        for name, a in schema.attributes.items():
            if name not in attrs and a.default_value.type:
                from ..graph import _decode_attr
                attrs[name] = _decode_attr(a.default_value, builder)
    except Exception:
        pass
    opsets = dict(builder.opsets)
    for imp in fp.opset_import:
        opsets[imp.domain if imp.domain != "ai.onnx" else ""] = imp.version
    sub = GraphBuilder(opsets, builder.functions)
    body = Graph.__new__(Graph)
    body.name = fp.name
    body.input_names = list(fp.input)
    body.output_names = list(fp.output)
    body.consts = {}
    body.nodes = [sub.node(p, attrs) for p in fp.node]

    def run_function(ctx: Any, *inputs: Any, **_: Any) -> Any:
        n_out = ctx.n_outputs
        outs = ctx.run_graph(body, list(inputs) + [None] * (len(body.input_names) - len(inputs)))
        return tuple(outs[:max(n_out, 1)]) if len(outs) > 1 else outs[0]

    run_function.body = body
    return run_function


def lookup(node: Any, builder: Any, where: str) -> Callable:
    """The function for ``node``, or UnsupportedOpError naming op, domain, opset and node."""
    key = (node.domain, node.op_type)
    local = builder.functions.get(key)
    if local is not None:
        return _expand(local, node, builder)
    fn = OPS.get(key)
    if fn is None:
        fp = _schema_function(node, node.opset) if node.opset else None
        if fp is not None:
            return _expand(fp, node, builder)
        raise UnsupportedOpError(f"unsupported ONNX op {node.domain or 'ai.onnx'}::"
                                 f"{node.op_type} (opset {node.opset}) at {where}")
    accepts = _accepted(fn)
    if accepts is not None:
        unknown = set(node.attrs) - accepts
        if unknown:
            raise UnsupportedOpError(f"ONNX op {node.domain or 'ai.onnx'}::{node.op_type} "
                                     f"(opset {node.opset}) at {where}: attribute(s) "
                                     f"{sorted(unknown)} not supported")
    return fn
