"""Inference rewrites of a traced ONNX graph, before the generic graph passes.

Exporters write some layers as chains of small ops; on the replay path (``fast.py``) each
op is a full pass over memory, so the chains are put back together:

- LayerNorm as ``ReduceMean, Sub, Pow/Mul, ReduceMean, Add(eps), Sqrt+Div or rsqrt+Mul``
  (and optionally ``Mul(weight), Add(bias)`` with constant weight/bias) becomes the
  ``layer_norm`` primitive;
- ``relu`` before a max-pool written as slices and ``maximum`` (how the ONNX ``MaxPool``
  is imported) moves after it: the two commute exactly, and the pooled tensor is a
  quarter of the size;
- ``add(c, y)``/``mul(c, y)`` with a constant ``c`` broadcast against a computed ``y``
  of the result's shape (a bias added to a MatMul result) become ``add(y, c)``, which the
  memory planner can run in place into ``y``.

Each rewrite computes what the chain computes (up to float32 rounding).

>>> import numpy as np
>>> from lightgrad.graph import Graph
>>> g = Graph()
>>> x = g.input((2, 4), np.float32)
>>> m = g.call("mean", x, (1,), True)
>>> d = g.call("sub", x, m)
>>> v = g.call("mean", g.call("mul", d, d), (1,), True)
>>> g.outputs = [g.call("mul", d, g.call("rsqrt", g.call("add", v, 1e-5)))]
>>> from lightgrad.graph.passes import eliminate_dead_code
>>> [n.op for n in eliminate_dead_code(rewrite_for_inference(g)).nodes]
['input', 'layer_norm', 'select']
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..graph.ir import Graph, Node

__all__ = ["rewrite_for_inference"]

_COMMUTATIVE = ("add", "mul")


def rewrite_for_inference(graph: Graph) -> Graph:
    """Apply the rewrites above to ``graph`` in place; returns it (dead nodes are left
    for dead-code elimination)."""
    _layer_norms(graph)
    _relu_after_max(graph)
    _operands_first(graph)
    return graph


def _scalar(v: Any) -> float | None:
    """A Python number or a one-element constant node as a float, else None."""
    if isinstance(v, Node):
        if v.op == "constant" and v.value is not None and np.size(v.value) == 1:
            return float(np.asarray(v.value).reshape(()))
        return None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    return None


def _const_vector(v: Any, shape: tuple) -> bool:
    """Whether ``v`` is a constant node broadcasting like weights over the last axes."""
    return (isinstance(v, Node) and v.op == "constant" and v.value is not None
            and tuple(v.shape) == shape)


def _layer_norms(graph: Graph) -> None:
    users = graph.users()
    outputs = set(graph.outputs)

    def only(n: Node) -> Node | None:
        """The single reader of ``n`` (None if several or it is a graph output)."""
        readers = users.get(n, [])
        return readers[0] if len(readers) == 1 and n not in outputs else None

    for m in list(graph.nodes):
        if m.op != "mean" or len(m.args) < 3 or m.args[2] is not True or any(
                a is not None for a in m.args[3:]):  # a mean in another dtype
            continue
        x, axes = m.args[0], m.args[1]
        if not isinstance(x, Node) or x.dtype != np.float32 or not axes:
            continue
        k = len(axes)
        if sorted(a % x.ndim for a in axes) != list(range(x.ndim - k, x.ndim)):
            continue
        d = only(m)
        if d is None or d.op != "sub" or d.args[0] is not x or d.args[1] is not m:
            continue
        readers = users.get(d, [])
        if len(readers) != 2 or d in outputs:
            continue
        sq, y = readers
        if not (sq.op == "mul" and sq.args == (d, d)
                or sq.op == "pow" and sq.args[0] is d and _scalar(sq.args[1]) == 2.0):
            continue
        v = only(sq)
        if v is None or v.op != "mean" or tuple(v.args[1:]) != tuple(m.args[1:]):
            continue
        ve = only(v)
        if ve is None or ve.op != "add" or ve.args[0] is not v or _scalar(ve.args[1]) is None:
            continue
        eps = _scalar(ve.args[1])
        r = only(ve)
        if r is None or not (r.op == "rsqrt" and y.op == "mul" and y.args == (d, r)
                             or r.op == "sqrt" and y.op == "div" and y.args == (d, r)):
            continue
        if only(r) is not y:
            continue
        weight = bias = None
        last = y
        norm_shape = tuple(x.shape[x.ndim - k:])
        nxt = only(last)
        if nxt is not None and nxt.op == "mul" and nxt.args[0] is last and \
                _const_vector(nxt.args[1], norm_shape):
            weight, last = nxt.args[1], nxt
            nxt = only(last)
            if nxt is not None and nxt.op == "add" and nxt.args[0] is last and \
                    _const_vector(nxt.args[1], norm_shape):
                bias, last = nxt.args[1], nxt
        if bias is not None and weight is None:
            continue
        index = graph.nodes.index(last)
        out = graph.call("layer_norm", x, weight, bias, k, eps, index=index + 1)[0]
        graph.replace_uses(last, out)
        users = graph.users()
        outputs = set(graph.outputs)


def _relu_after_max(graph: Graph) -> None:
    """``maximum`` trees over slices of ``relu(y)`` -> ``relu`` of the tree over ``y``."""
    outputs = set(graph.outputs)
    for r in [n for n in graph.nodes if n.op == "relu"]:
        users = graph.users()
        views = users.get(r, [])
        if not views or r in outputs or any(v.op != "getitem" or v.args[0] is not r
                                            for v in views):
            continue
        tree: list[Node] = []
        queue = list(views)
        for n in queue:
            for u in users.get(n, []):
                if u.op == "maximum" and u not in tree:
                    tree.append(u)
                    queue.append(u)
        members = set(views) | set(tree)
        if not tree or any(not all(isinstance(a, Node) and a in members for a in t.args)
                           for t in tree):
            continue
        roots = [n for n in members
                 if n in outputs or any(u not in tree for u in users.get(n, []))]
        if len(roots) != 1 or roots[0] not in tree:
            continue
        root = roots[0]
        for v in views:
            v.args = (r.args[0],) + tuple(v.args[1:])
        index = max(graph.nodes.index(t) for t in tree)
        relu = graph.call("relu", root, index=index + 1)
        graph.replace_uses(root, relu)
        relu.args = (root,)
        outputs = set(graph.outputs)


def _operands_first(graph: Graph) -> None:
    for n in graph.nodes:
        if n.op not in _COMMUTATIVE or len(n.args) != 2:
            continue
        a, b = n.args
        if (isinstance(a, Node) and isinstance(b, Node) and a.op == "constant"
                and b.op != "constant" and b.shape == n.shape and b.dtype == n.dtype):
            n.args = (b, a)
