"""``OnnxModule``: an imported ONNX model as an ordinary lightgrad ``nn.Module``.

Float initializers are Parameters (trainable, in ``parameters()`` and ``state_dict()``),
the others buffers; ``forward(*inputs, **named)`` takes the graph's inputs by position or
by name, checks their dtypes and static dims, and evaluates the nodes in order, each
through the op table (``lightgrad.onnx.ops``). Gradients flow through every op built from
Tensor ops (the float math, movement, NN and reduction ops). Under ``no_grad``, repeated
calls with the same input shapes replay a compiled graph instead (``fast.py``; the module's
``fast_path`` holds it, ``fast_path.enabled = False`` turns it off).

>>> import lightgrad as lg
>>> m = lg.onnx.load("cnn.onnx")  # doctest: +SKIP
>>> logits = m(lg.randn(8, 1, 28, 28))  # doctest: +SKIP
>>> logits.sum().backward()  # doctest: +SKIP
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np

from ..autograd import _grad_enabled
from ..nn.module import Module
from ..nn.parameter import Parameter
from ..tensor import Tensor
from .errors import OnnxInputError
from .fast import FastPath, unseeded_random_op
from .graph import Context, Graph, GraphBuilder, norm_domain, sparse_to_numpy
from .values import onnx_np_dtype, tensor_proto_to_numpy, to_value

__all__ = ["OnnxModule", "InputSpec"]


class InputSpec:
    """A graph input's name, kind ('tensor', 'sequence', 'optional', ...), dtype and dims."""

    def __init__(self, vi: Any) -> None:
        self.name = vi.name
        t = vi.type
        self.kind = t.WhichOneof("value") or "tensor_type"
        self.kind = self.kind.replace("_type", "")
        self.dtype: np.dtype | None = None
        self.dims: list | None = None
        if self.kind == "tensor" and t.tensor_type.elem_type:
            try:
                self.dtype = onnx_np_dtype(t.tensor_type.elem_type)
            except Exception:
                self.dtype = None
            if t.tensor_type.HasField("shape"):
                self.dims = [d.dim_value if d.HasField("dim_value") else
                             (d.dim_param or None) for d in t.tensor_type.shape.dim]

    def describe(self) -> str:
        if self.kind != "tensor":
            return self.kind
        dims = "?" if self.dims is None else "(" + ", ".join(str(d) for d in self.dims) + ")"
        return f"{self.dtype} {dims}"

    def check(self, v: Any) -> Any:
        """``v`` as a graph value, or OnnxInputError naming the input."""
        if self.kind != "tensor":
            return v
        if not isinstance(v, (Tensor, np.ndarray)):
            try:
                v = np.asarray(v, dtype=self.dtype)
            except (TypeError, ValueError) as e:
                raise OnnxInputError(f"input {self.name!r}: cannot convert "
                                     f"{type(v).__name__} to {self.dtype}: {e}") from None
        given = v.dtype.np if isinstance(v, Tensor) else v.dtype
        if self.dtype is not None and given != self.dtype:
            raise OnnxInputError(f"input {self.name!r}: expected dtype {self.dtype}, given "
                                 f"{given} (shape {tuple(v.shape)})")
        if self.dims is not None:
            shape = tuple(v.shape)
            ok = len(shape) == len(self.dims) and all(
                not isinstance(d, int) or d == 0 or d == s for d, s in zip(self.dims, shape))
            if not ok:
                raise OnnxInputError(f"input {self.name!r}: expected shape "
                                     f"{self.describe().split(' ', 1)[1]}, given {shape}")
        return v


def _attr_name(name: str, taken: set) -> str:
    base = re.sub(r"\W", "_", name) or "init"
    if base[0].isdigit():
        base = "p_" + base
    out, i = base, 1
    while out in taken:
        i += 1
        out = f"{base}_{i}"
    taken.add(out)
    return out


def _as_output(v: Any, device: Any) -> Any:
    """Integer/bool results leave the graph as Tensors too (other dtypes stay NumPy)."""
    if isinstance(v, np.ndarray):
        return to_value(v, device)
    if isinstance(v, list):
        return [_as_output(x, device) for x in v]
    return v


class OnnxModule(Module):
    """An ONNX model as a Module: ``OnnxModule(model_proto)``; see ``lightgrad.onnx.load``."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        opsets = {}
        for imp in model.opset_import:
            opsets[norm_domain(imp.domain)] = int(imp.version)
        if "" not in opsets and model.ir_version < 3:
            opsets[""] = 1
        functions = {(norm_domain(f.domain), f.name): f for f in model.functions}
        g = model.graph
        self.opsets = opsets
        self.ir_version = int(model.ir_version)
        self.producer = f"{model.producer_name} {model.producer_version}".strip()
        inits: dict[str, np.ndarray] = {t.name: tensor_proto_to_numpy(t) for t in g.initializer}
        for sp in g.sparse_initializer:
            inits[sp.values.name] = sparse_to_numpy(sp)
        self.onnx_names: dict[str, str] = {}
        self._np_consts: dict[str, np.ndarray] = {}
        taken: set = set()
        for name, arr in inits.items():
            v = to_value(arr)
            if not isinstance(v, Tensor):
                self._np_consts[name] = arr
                continue
            attr = _attr_name(name, taken)
            self.onnx_names[name] = attr
            if v.dtype.is_floating_point:
                self.register_parameter(attr, Parameter(v))
            else:
                self.register_buffer(attr, v)
        specs = [InputSpec(vi) for vi in g.input]
        self.input_specs = [s for s in specs if s.name not in inits]
        self.override_specs = {s.name: s for s in specs if s.name in inits}
        self.output_names = [o.name for o in g.output]
        self.graph = Graph(g, GraphBuilder(opsets, functions), skip_inits=True)
        self._ctx: dict[str, Context] = {}
        self.fast_path = FastPath(blocked=unseeded_random_op(model))

    @property
    def input_names(self) -> list[str]:
        return [s.name for s in self.input_specs]

    def _device(self) -> Any:
        for t in self.parameters():
            return t.device
        for t in self.buffers():
            return t.device
        return None

    def forward(self, *inputs: Any, **named: Any) -> Any:
        if not named and not _grad_enabled[0]:
            outs = self.fast_path.replay(inputs)  # a compiled graph for these inputs?
            if outs is not None:
                return outs[0] if len(outs) == 1 else tuple(outs)
        specs = self.input_specs
        if len(inputs) > len(specs):
            raise OnnxInputError(f"the model takes {len(specs)} input(s) "
                                 f"{self.input_names}, given {len(inputs)}")
        env: dict[str, Any] = {}
        device = self._device()
        key = str(device)
        ctx = self._ctx.get(key)
        if ctx is None:
            ctx = self._ctx[key] = Context(device)
        for name, arr in self._np_consts.items():
            env[name] = arr
        params, buffers = self._parameters, self._buffers
        for name, attr in self.onnx_names.items():
            env[name] = params[attr] if attr in params else buffers[attr]
        given = dict(zip(self.input_names, inputs))
        for name, v in named.items():
            if name in given:
                raise OnnxInputError(f"input {name!r} given both by position and by name")
            if name not in self.override_specs and name not in self.input_names:
                raise OnnxInputError(f"unknown input {name!r}; the model's inputs are "
                                     f"{self.input_names}")
            given[name] = v
        for s in specs:
            if s.name not in given:
                if s.kind == "optional":
                    given[s.name] = None
                    continue
                raise OnnxInputError(f"missing input {s.name!r} ({s.describe()}); the model's "
                                     f"inputs are {self.input_names}")
        for name, v in given.items():
            spec = self.override_specs.get(name) or next(s for s in specs if s.name == name)
            v = spec.check(v)
            env[name] = ctx.value(v) if isinstance(v, np.ndarray) else v
        outs = None
        if not _grad_enabled[0] and self.fast_path.enabled and len(given) == len(specs):
            outs = self._fast(env, device)
        if outs is None:
            outs = self.graph.evaluate(ctx, env)
        outs = [_as_output(o, device) for o in outs]
        return outs[0] if len(outs) == 1 else tuple(outs)

    def _fast(self, env: dict, device: Any) -> list | None:
        """The outputs through the inference fast path (``fast.py``), or None."""
        names = self.input_names
        values = [env[n] for n in names]
        key = self.fast_path.key(values)
        if not key:  # an input that isn't a Tensor, or no inputs at all
            return None

        def evaluate(inputs: list) -> list:
            env2 = dict(env)
            env2.update(zip(names, inputs))
            return self.graph.evaluate(Context(device), env2)  # a fresh constant cache
        return self.fast_path.call(key, values, evaluate,
                                   lambda: list(self.parameters()) + list(self.buffers()))

    def extra_repr(self) -> str:
        ops = len(self.graph.nodes)
        return (f"inputs={self.input_names}, outputs={self.output_names}, nodes={ops}, "
                f"opset={self.opsets.get('', 0)}")
