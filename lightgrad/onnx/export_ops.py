"""The other half of ``export``: each recorded vocabulary primitive as ONNX node(s).

``emit`` writes one graph node into a ``Writer`` (ONNX nodes + initializers); a few
primitives become short fixed patterns (``rsqrt`` -> ``Reciprocal(Sqrt)``, ``gelu`` -> the
erf formula, attention -> MatMul-Softmax-MatMul); in-place writes become new SSA values.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .errors import UnsupportedOpError

_UNARY = {"neg": "Neg", "abs": "Abs", "exp": "Exp", "log": "Log", "sqrt": "Sqrt",
          "sin": "Sin", "cos": "Cos", "tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu",
          "softplus": "Softplus", "erf": "Erf", "reciprocal": "Reciprocal", "sign": "Sign",
          "floor": "Floor", "ceil": "Ceil", "round": "Round", "logical_not": "Not"}
_BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow",
           "maximum": "Max", "minimum": "Min", "eq": "Equal", "lt": "Less",
           "le": "LessOrEqual", "gt": "Greater", "ge": "GreaterOrEqual",
           "logical_and": "And", "logical_or": "Or", "logical_xor": "Xor"}
_REDUCE = {"sum": "ReduceSum", "mean": "ReduceMean", "prod": "ReduceProd",
           "amax": "ReduceMax", "amin": "ReduceMin"}
SOURCES = ("full", "arange", "eye", "linspace", "from_numpy", "constant")


class Writer:
    """Accumulates ONNX nodes and initializers while walking the recorded graph."""

    def __init__(self, helper: Any, numpy_helper: Any) -> None:
        self.h, self.nh = helper, numpy_helper
        self.nodes: list = []
        self.inits: list = []
        self.names: dict = {}
        self.count = 0

    def fresh(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, value: Any, dtype: Any = None, hint: str = "c") -> str:
        arr = np.asarray(value, dtype=dtype)
        name = self.fresh(hint)
        self.inits.append(self.nh.from_array(np.ascontiguousarray(arr), name))
        return name

    def ints(self, values: Sequence[int], hint: str = "i") -> str:
        return self.const(np.array(list(values), np.int64), hint=hint)

    def node(self, op: str, inputs: list, n_out: int = 1, **attrs: Any) -> Any:
        outs = [self.fresh(op.lower()) for _ in range(n_out)]
        self.nodes.append(self.h.make_node(op, inputs, outs, name=outs[0], **attrs))
        return outs[0] if n_out == 1 else outs


def _dyn_shape(src: tuple, dst: tuple, dynamic: set) -> list:
    """Reshape target: keep 0 ('copy the input dim') where a dynamic dim passes through."""
    out = list(dst)
    for i, (a, b) in enumerate(zip(src, dst)):
        if i in dynamic and a == b:
            out[i] = 0
        elif a != b:
            break
    return out


def elem_type(dtype: Any) -> int:
    from .values import onnx_elem_type
    return onnx_elem_type(dtype)


def emit(w: Writer, node: Any, dyn: dict) -> None:
    op, a = node.op, node.args
    x = a[0] if a else None

    def name(v: Any, dtype: Any = None) -> str:
        if hasattr(v, "op"):
            return w.names[v]
        return w.const(np.asarray(v, dtype=dtype or node.dtype))

    def put(out: str, dims: set | None = None) -> None:
        w.names[node] = out
        dyn[node] = dims if dims is not None else set(dyn.get(x, set())) if hasattr(
            x, "op") else set()

    if op in ("binary_inplace", "assign"):
        return _inplace(w, node, name, dyn)
    if op in SOURCES:  # a literal that is written in place later: its value at creation
        return put(w.const(_source_value(node), hint="init"), set())
    if op in _UNARY:
        return put(w.node(_UNARY[op], [name(x)]))
    if op == "rsqrt":
        return put(w.node("Reciprocal", [w.node("Sqrt", [name(x)])]))
    if op in ("gelu", "gelu_tanh", "silu"):
        return put(_activation(w, op, name(x), node.dtype))
    if op in _BINARY or op == "ne":
        common = np.result_type(*(v.dtype if hasattr(v, "op") else node.dtype for v in a[:2]))
        if op in ("eq", "ne", "lt", "le", "gt", "ge"):
            ins = [_as(w, v, common, name) for v in a[:2]]
        else:
            ins = [_as(w, v, node.dtype, name) for v in a[:2]]
        out = w.node(_BINARY.get(op, "Equal"), ins)
        if op == "ne":
            out = w.node("Not", [out])
        dims = set().union(*(dyn.get(v, set()) for v in a[:2] if hasattr(v, "op")))
        return put(out, dims)
    if op == "where":
        return put(w.node("Where", [name(a[0]), _as(w, a[1], node.dtype, name),
                                    _as(w, a[2], node.dtype, name)]))
    if op == "clamp":
        lo = "" if a[1] is None else w.const(np.asarray(a[1], node.dtype))
        hi = "" if a[2] is None else w.const(np.asarray(a[2], node.dtype))
        return put(w.node("Clip", [name(x), lo, hi]))
    if op in _REDUCE:
        axes, keep = a[1], int(bool(a[2]))
        src = name(x)
        if op == "sum":
            out = w.node("ReduceSum", [src, w.ints(axes)], keepdims=keep)
        else:
            out = w.node(_REDUCE[op], [src], axes=list(axes), keepdims=keep)
        if np.dtype(node.dtype) != np.dtype(x.dtype):
            out = w.node("Cast", [out], to=elem_type(node.dtype))
        kept = {d for d in dyn.get(x, set()) if d not in axes}
        return put(out, kept if keep else {d - sum(1 for q in axes if q < d) for d in kept})
    if op in ("argmax", "argmin"):
        src, axis = name(x), a[1]
        if axis is None:
            src, axis = w.node("Reshape", [src, w.ints([-1])]), 0
        return put(w.node("ArgMax" if op == "argmax" else "ArgMin", [src], axis=axis,
                          keepdims=int(bool(a[2]))), set())
    if op == "cumsum":
        return put(w.node("CumSum", [name(x), w.const(np.int64(a[1]))]))
    if op in ("softmax", "log_softmax"):
        return put(w.node("Softmax" if op == "softmax" else "LogSoftmax", [name(x)],
                          axis=int(a[1])))
    if op == "reshape":
        target = _dyn_shape(tuple(x.shape), tuple(a[1]), dyn.get(x, set()))
        keep = {i for i, v in enumerate(target) if v == 0}
        return put(w.node("Reshape", [name(x), w.ints(target)]), keep)
    if op == "permute":
        perm = list(a[1])
        return put(w.node("Transpose", [name(x)], perm=perm),
                   {i for i, p in enumerate(perm) if p in dyn.get(x, set())})
    if op == "expand":
        shape = list(a[1])
        off = len(shape) - len(x.shape)
        for d in dyn.get(x, set()):
            shape[d + off] = 1
        return put(w.node("Expand", [name(x), w.ints(shape)]),
                   {d + off for d in dyn.get(x, set())})
    if op in ("contiguous", "copy"):
        return put(w.node("Identity", [name(x)]))
    if op == "astype":
        return put(w.node("Cast", [name(x)], to=elem_type(a[1])))
    if op == "getitem":
        return put(*_getitem(w, name(x), x, a[1], dyn.get(x, set())))
    if op == "cat":
        xs = [v for v in a[0]]
        return put(w.node("Concat", [_as(w, v, node.dtype, name) for v in xs], axis=int(a[1])),
                   set().union(*(dyn.get(v, set()) for v in xs)) - {int(a[1])})
    if op == "pad":
        pads = list(a[1])
        flat = [p[0] for p in pads] + [p[1] for p in pads]
        value = w.const(np.asarray(a[2] or 0, node.dtype))
        return put(w.node("Pad", [name(x), w.ints(flat), value], mode="constant"))
    if op == "flip":
        axes = list(a[1])
        big = np.iinfo(np.int64).max
        return put(w.node("Slice", [name(x), w.ints([-1] * len(axes)),
                                    w.ints([-big] * len(axes)), w.ints(axes),
                                    w.ints([-1] * len(axes))]))
    if op == "tile":
        return put(w.node("Tile", [name(x), w.ints(a[1])]))
    if op in ("tril", "triu"):
        return put(w.node("Trilu", [name(x), w.const(np.int64(a[1]))],
                          upper=int(op == "triu")))
    if op == "gather":
        return put(w.node("GatherElements", [name(x), name(a[2])], axis=int(a[1])))
    if op == "index_select":
        return put(w.node("Gather", [name(x), name(a[2])], axis=int(a[1])))
    if op == "matmul":
        return put(w.node("MatMul", [name(a[0]), name(a[1])]),
                   {d for d in dyn.get(a[0], set()) if d < len(node.shape) - 1})
    if op == "conv2d":
        (pt, pb), (pl, pr) = a[4]
        ins = [name(x), name(a[1])] + ([name(a[2])] if a[2] is not None else [])
        return put(w.node("Conv", ins, strides=list(a[3]), pads=[pt, pl, pb, pr],
                          dilations=list(a[5]), group=int(a[6])))
    if op == "max_pool2d":
        ph, pw = a[3]
        out = w.node("MaxPool", [name(x)], kernel_shape=list(a[1]), strides=list(a[2]),
                     pads=[ph, pw, ph, pw], dilations=list(a[4]), ceil_mode=int(bool(a[5])))
        w.names[(node, 0)] = out
        dyn[(node, 0)] = set(dyn.get(x, set()))
        return None
    if op == "avg_pool2d":
        if a[6] is not None:
            raise UnsupportedOpError("export: avg_pool2d with divisor_override has no ONNX op")
        ph, pw = a[3]
        return put(w.node("AveragePool", [name(x)], kernel_shape=list(a[1]),
                          strides=list(a[2]), pads=[ph, pw, ph, pw], ceil_mode=int(bool(a[4])),
                          count_include_pad=int(bool(a[5]))))
    if op == "layer_norm":
        n_axes, eps = int(a[3]), float(a[4])
        shape = x.shape[len(x.shape) - n_axes:]
        scale = name(a[1]) if a[1] is not None else w.const(np.ones(shape, x.dtype))
        bias = name(a[2]) if a[2] is not None else w.const(np.zeros(shape, x.dtype))
        outs = w.node("LayerNormalization", [name(x), scale, bias], n_out=3, axis=-n_axes,
                      epsilon=eps)
        for i, o in enumerate(outs):
            w.names[(node, i)] = o
            dyn[(node, i)] = set(dyn.get(x, set()))
        return None
    if op == "rms_norm":
        n_axes, eps = int(a[2]), float(a[3])
        axes = list(range(len(x.shape) - n_axes, len(x.shape)))
        src = name(x)
        ms = w.node("ReduceMean", [w.node("Mul", [src, src])], axes=axes, keepdims=1)
        r = w.node("Reciprocal", [w.node("Sqrt", [w.node("Add", [ms, w.const(
            np.asarray(eps, x.dtype))])])])
        out = w.node("Mul", [src, r])
        if a[1] is not None:
            out = w.node("Mul", [out, name(a[1])])
        return put(out)
    if op == "batch_norm":
        c = x.shape[1]
        ins = [name(x)] + [name(v) if v is not None else w.const(np.full(c, fill, x.dtype))
                           for v, fill in ((a[1], 1.0), (a[2], 0.0), (a[3], 0.0), (a[4], 1.0))]
        return put(w.node("BatchNormalization", ins, epsilon=float(a[5])))
    if op == "scaled_dot_product_attention":
        outs = _attention(w, node, name)
        for i, o in enumerate(outs):
            w.names[(node, i)] = o
            dyn[(node, i)] = set(dyn.get(x, set()))
        return None
    raise UnsupportedOpError(f"export: the primitive {op!r} has no ONNX mapping yet")


def _inplace(w: Writer, node: Any, name: Any, dyn: dict) -> None:
    """An in-place write becomes a new SSA value that later readers of ``dst`` see."""
    from ..backends import base
    if node.op == "assign":
        dst, src = node.args
        value = _as(w, src, dst.dtype, name)
        if tuple(getattr(src, "shape", ())) != tuple(dst.shape):
            value = w.node("Expand", [value, w.ints(dst.shape)])
    else:
        kind, dst, src = node.args
        if kind not in _BINARY:
            raise UnsupportedOpError(f"export: in-place {kind!r} has no ONNX mapping")
        value = w.node(_BINARY[kind], [name(dst), _as(w, src, dst.dtype, name)])
    if dst.op in base.VIEW_OPS or dst.op in ("param", "input"):
        raise UnsupportedOpError(f"export: an in-place write into a {dst.op} result (a view, "
                                 "a weight or an input) can't be expressed in ONNX")
    w.names[dst] = value


def _source_value(node: Any) -> np.ndarray:
    a = node.args
    if node.op == "full":
        return np.full(tuple(a[0]), a[1], dtype=a[2])
    if node.op == "arange":
        return np.arange(a[0], a[1], a[2]).astype(a[3])
    if node.op == "eye":
        return np.eye(a[0], a[1], dtype=a[2])
    if node.op == "linspace":
        return np.linspace(a[0], a[1], a[2]).astype(a[3])
    return np.array(node.value)


def _as(w: Writer, v: Any, dtype: Any, name: Any) -> str:
    """``v`` (node or Python number) as an ONNX value of ``dtype``."""
    if not hasattr(v, "op"):
        return w.const(np.asarray(v, dtype=dtype))
    n = name(v)
    if np.dtype(v.dtype) != np.dtype(dtype):
        return w.node("Cast", [n], to=elem_type(dtype))
    return n


def _activation(w: Writer, op: str, x: str, dtype: Any) -> str:
    def c(v: float) -> str:
        return w.const(np.asarray(v, dtype))

    if op == "silu":
        return w.node("Mul", [x, w.node("Sigmoid", [x])])
    if op == "gelu":
        inner = w.node("Erf", [w.node("Mul", [x, c(1 / np.sqrt(2.0))])])
        return w.node("Mul", [w.node("Mul", [x, c(0.5)]), w.node("Add", [inner, c(1.0)])])
    cube = w.node("Mul", [w.node("Mul", [x, x]), x])
    inner = w.node("Mul", [w.node("Add", [x, w.node("Mul", [cube, c(0.044715)])]),
                           c(np.sqrt(2 / np.pi))])
    return w.node("Mul", [w.node("Mul", [x, c(0.5)]),
                          w.node("Add", [w.node("Tanh", [inner]), c(1.0)])])


def _getitem(w: Writer, src: str, x: Any, index: tuple, dims: set) -> tuple:
    index = tuple(index) if isinstance(index, tuple) else (index,)
    if any(hasattr(i, "op") or isinstance(i, np.ndarray) for i in index):
        raise UnsupportedOpError("export: advanced (tensor) indexing has no ONNX mapping yet")
    nd = len(x.shape)
    if Ellipsis in index:
        k = index.index(Ellipsis)
        fill = nd - (len(index) - 1 - sum(1 for i in index if i is None))
        index = index[:k] + (slice(None),) * fill + index[k + 1:]
    starts, ends, axes, steps, squeeze, unsq = [], [], [], [], [], []
    axis = 0
    out_pos = 0
    for item in index:
        if item is None:
            unsq.append(out_pos)
            out_pos += 1
            continue
        if isinstance(item, (int, np.integer)):
            i = int(item) + (x.shape[axis] if item < 0 else 0)
            starts.append(i), ends.append(i + 1), axes.append(axis), steps.append(1)
            squeeze.append(axis)
        else:
            s, e, st = item.indices(x.shape[axis])
            if (s, e, st) != (0, x.shape[axis], 1):
                if st < 0 and e < 0:
                    e = -np.iinfo(np.int64).max
                starts.append(s), ends.append(e), axes.append(axis), steps.append(st)
            out_pos += 1
        axis += 1
    out = src
    if axes:
        out = w.node("Slice", [out, w.ints(starts), w.ints(ends), w.ints(axes), w.ints(steps)])
    if squeeze:
        out = w.node("Squeeze", [out, w.ints(squeeze)])
    if unsq:
        out = w.node("Unsqueeze", [out, w.ints(unsq)])
    kept = {d for d in dims if d not in axes}
    if squeeze or unsq:
        kept = set()
    return out, kept


def _attention(w: Writer, node: Any, name: Any) -> tuple:
    """(output, probabilities) of softmax(q k^T * scale + mask) v."""
    q, k, v, mask, scale, is_causal, keep = node.args
    if keep is not None:
        raise UnsupportedOpError("export: attention dropout has no ONNX mapping")
    d = q.shape[-1]
    s = scale if scale is not None else 1.0 / np.sqrt(d)
    nd = len(k.shape)
    perm = list(range(nd - 2)) + [nd - 1, nd - 2]
    scores = w.node("MatMul", [name(q), w.node("Transpose", [name(k)], perm=perm)])
    scores = w.node("Mul", [scores, w.const(np.asarray(s, q.dtype))])
    if mask is not None:
        if np.dtype(mask.dtype) == np.bool_:
            neg = w.const(np.asarray(-np.inf, q.dtype))
            scores = w.node("Where", [name(mask), scores, neg])
        else:
            scores = w.node("Add", [scores, name(mask)])
    if is_causal:
        lq, lk = q.shape[-2], k.shape[-2]
        bias = np.triu(np.full((lq, lk), -np.inf, q.dtype), 1 + lk - lq)
        scores = w.node("Add", [scores, w.const(bias)])
    probs = w.node("Softmax", [scores], axis=-1)
    return w.node("MatMul", [probs, name(v)]), probs
