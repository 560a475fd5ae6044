"""A replay plan for the CPU: a traced graph as a flat list of NumPy calls into fixed buffers.

``fast.py`` traces an imported model once per input signature; on the CPU backend the
prepared graph is then turned into a ``NumpyPlan`` (``compile_plan``) instead of going
through the generic ``Executor``:

- every value gets its NumPy array when the plan is built (static shapes: a new input
  signature is a new plan). Views (``getitem`` with slices, ``permute``, ``reshape``
  that needs no copy, ``expand``) are taken once, at plan time, from those arrays, so they
  cost nothing per call; computing nodes write into their array with ``out=``; a node
  whose only reader is the last use of its first operand (a bias added to a MatMul
  result) writes into that operand's array;
- ``conv2d`` runs as one matrix product over im2col columns: the weights are reshaped to
  ``(C_out, C_in*kh*kw)`` once, with the bias appended as one more column that meets a
  row of ones in the columns (so the bias add is part of the product); the input lives in
  a zero-padded array that the node computing it writes straight into (its border is
  never written, so padding costs nothing per call). The columns are copied by the CPU
  backend's C im2col (``backends/native/conv.c``, of the padded input with no padding);
  without it (no compiler, ``LIGHTGRAD_NATIVE=0``) by one strided NumPy copy, which for
  stride 1 copies whole padded rows, so the product's rows carry ``kw - 1`` extra columns
  that the conv's (view) value leaves out. Images go a few at a time (columns still in
  cache for the product), and the products are split into column blocks OpenBLAS runs
  faster. (The backend's own ``conv2d`` forward, blocked im2col or Winograd, measured
  slower here on every convolution of the benchmark CNN: the plan's padded input and
  bias-in-the-product save its padding copy and bias pass);
- a 3x3, stride-1 ``conv2d`` with 16+ channels in and out whose only reader is a 2x2 max
  pool (then maybe relu) is one Winograd F(2x2, 3x3) step (``kernels/winopool.c``, weights
  transformed at plan time): the output tiles are the pool windows, so the output
  transform ends in the pool and the full-size output is never written;
- a 2x2 max-pool written as four strided slices and a ``maximum`` tree (how the ONNX
  ``MaxPool`` is imported), or a ``max_pool2d`` of that shape, with an optional ``relu``,
  is one pass of ``kernels/maxpool2.c`` (NumPy: a max over row pairs, the relu on that
  half-size result, a max over column pairs), written straight into its reader's array
  (the next convolution's padded input);
- ``matmul`` by a 2-D matrix multiplies all leading rows in one product;
- large products (and convolutions over a batch) are split over threads by the plan, with
  OpenBLAS on one thread meanwhile (``plan_threads.py``);
- ``layer_norm``, ``softmax`` (last axis) and a fused program's ``gelu`` call the
  backend's C kernels (what its primitives call) straight into the plan's arrays, with the
  pointers taken at plan time: no wrapper, allocation or copy per call;
- other nodes call the backend's primitive and copy the result into their array.

A call copies the inputs into their arrays, runs the steps, and returns copies of the
outputs (the caller owns them). The arrays are the plan's own, so one plan serves one
call at a time (``fast.py`` takes a lock and falls back to the ``Executor`` when it's
held). Results equal the backend's up to float32 rounding (the convolution sums in another
order); ``fast.py`` checks a new plan against the traced call's values before using it.

>>> import numpy as np
>>> from lightgrad.backends import get_backend
>>> from lightgrad.graph import Graph
>>> g = Graph()
>>> x = g.input((2, 3), np.float32)
>>> g.outputs = [g.call("relu", g.call("add", x, 1.0))]
>>> plan = compile_plan(g, get_backend("cpu"))
>>> plan([np.full((2, 3), -2.0, np.float32)])[0].tolist()
[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable, Sequence

import numpy as np

from .. import threads
from ..graph.ir import Graph, Node
from ..graph.passes.program import _UFUNCS
from .plan_conv import Conv, MaxPool, Results
from .plan_threads import LARGE_PRODUCT, PlanThreads, ranges, split_step

__all__ = ["NumpyPlan", "compile_plan"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_UNARY = {"relu": None, "neg": np.negative, "abs": np.absolute, "exp": np.exp,
          "log": np.log, "sqrt": np.sqrt, "tanh": np.tanh, "sin": np.sin, "cos": np.cos,
          "reciprocal": np.reciprocal, "floor": np.floor, "ceil": np.ceil}
_BINARY = ("add", "sub", "mul", "div", "maximum", "minimum", "pow")
_NATIVE_UNARY = ("gelu", "gelu_tanh", "erf")
"""Fused-program ops run as the backend's C kernel ``lg_<op>_<f32|f64>`` (what its
primitive calls) straight into their register."""
_LOWERED = ("select", "getitem", "permute", "reshape", "expand", "copy", "contiguous",
            "matmul", "fused_elementwise", "conv2d", "max_pool2d", "layer_norm", "softmax")
"""Primitives with a ``_Builder._<name>`` lowering (which may decline: ``False``)."""


MAX_BYTES = 1 << 30
"""A plan keeps every value (and each convolution's columns) in its own array for good;
graphs that would need more memory than this replay through the ``Executor``, which frees
each buffer after its last use."""


class NumpyPlan:
    """A compiled replay: ``plan(inputs) -> outputs`` (NumPy arrays; see the module
    docstring). ``steps`` is the flat list of calls, ``describe()`` names them."""

    def __init__(self, feeds: list, steps: list, outputs: list, names: list,
                 threads: PlanThreads) -> None:
        self.feeds, self.steps, self.outputs, self.names = feeds, steps, outputs, names
        self.threads = threads  # OpenBLAS on one thread during a call (plan_threads.py)

    def __call__(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        threads.adapt()
        for dst, x in zip(self.feeds, inputs):
            if dst is not None:
                np.copyto(dst, x)
        self.threads.enter()
        try:
            for step in self.steps:
                step()
        finally:
            self.threads.exit()
        return [np.array(o, copy=True) for o in self.outputs]

    def describe(self) -> list[str]:
        """One line per step: what it computes."""
        return list(self.names)


class _Unsupported(Exception):
    """The graph holds something the plan can't express (the Executor runs it instead)."""


def compile_plan(graph: Graph, backend: Any) -> NumpyPlan:
    """The ``NumpyPlan`` of ``graph`` (constants as ``constant`` nodes with NumPy values,
    static shapes) on the NumPy ``backend``; raises ``ValueError`` when a node can't be
    planned."""
    try:
        return _Builder(graph, backend).build()
    except _Unsupported as e:
        raise ValueError(f"no NumPy plan: {e}") from None


class _Builder:
    def __init__(self, graph: Graph, backend: Any) -> None:
        self.graph, self.backend = graph, backend
        self.val: dict[Node, Any] = {}
        self.owned: set[Node] = set()  # nodes whose array was allocated for them
        self.dest: dict[Node, np.ndarray] = {}  # arrays a reader wants a node written into
        self.steps: list[Callable[[], Any]] = []
        self.names: list[str] = []
        self.threads = PlanThreads()
        self.users = graph.users()
        self.outputs = set(graph.outputs)
        self.convs: dict[Node, Conv] = {}
        self.done: set[Node] = set()  # nodes an earlier step already computes
        self.nbytes = 0

    # ----------------------------------------------------------------- helpers
    def alloc(self, shape: Any, dtype: Any, zeros: bool = False) -> np.ndarray:
        """A new array of the plan (counted against ``MAX_BYTES``)."""
        arr = np.zeros(shape, dtype) if zeros else np.empty(shape, dtype)
        self.nbytes += arr.nbytes
        if self.nbytes > MAX_BYTES:
            raise _Unsupported(f"its arrays would take more than {MAX_BYTES >> 20} MiB")
        return arr

    def arg(self, a: Any) -> Any:
        return self.val[a] if isinstance(a, Node) else a

    def step(self, fn: Callable[[], Any], name: str) -> None:
        self.steps.append(fn)
        self.names.append(name)

    def sole_reader(self, n: Node, reader: Node) -> bool:
        readers = self.users.get(n, [])
        return n not in self.outputs and len(readers) == 1 and readers[0] is reader

    def out_array(self, n: Node, reuse: Any = None) -> np.ndarray:
        """The array ``n`` is computed into: a reader's destination, the array of
        operand ``reuse`` when this is its last use, or a new one."""
        if n.shape is None:
            raise _Unsupported(f"{n.op} has no static shape")
        if n in self.dest:
            return self.dest[n]
        if (isinstance(reuse, Node) and reuse in self.owned and self.sole_reader(reuse, n)
                and reuse.shape == n.shape and reuse.dtype == n.dtype):
            self.owned.discard(reuse)
            arr = self.val[reuse]
        else:
            arr = self.alloc(n.shape, n.dtype)
        self.owned.add(n)
        return arr

    # ----------------------------------------------------------------- building
    def build(self) -> NumpyPlan:
        g = self.graph
        if g.params:
            raise _Unsupported("the graph reads parameters")
        for n in g.nodes:
            if n.op == "conv2d":
                conv = Conv.make(n, self)
                if conv is not None:
                    self.convs[n] = conv
        feeds = []
        for n in g.nodes:
            self.lower(n)
        for n in g.inputs:
            feeds.append(self.val.get(n))
        return NumpyPlan(feeds, self.steps, [self.val[o] for o in g.outputs], self.names,
                         self.threads)

    def lower(self, n: Node) -> None:
        op = n.op
        if n in self.done:
            return
        if op == "input":
            self.val[n] = self.out_array(n)
            return
        if op == "constant":
            self.val[n] = n.value
            return
        method = getattr(self, "_" + op) if op in _LOWERED else None
        if method is not None and method(n) is not False:
            return
        if op in _UNARY and n.dtype in _FLOATS and len(n.args) == 1:
            self._unary(n)
            return
        if op in _BINARY and n.dtype in _FLOATS and len(n.args) == 2:
            self._binary(n)
            return
        self._fallback(n)

    def _fallback(self, n: Node) -> None:
        fn = getattr(self.backend, n.op, None)
        if fn is None:
            raise _Unsupported(f"the backend has no {n.op!r}")
        args = tuple(self.arg(a) for a in n.args)
        if n.shape is None:  # a tuple of results, read by ``select`` nodes
            cell: list = [None]
            self.val[n] = cell

            def run_tuple(fn=fn, args=args, cell=cell) -> None:
                cell[0] = fn(*args)
            self.step(run_tuple, n.op)
            return
        out = self.val[n] = self.out_array(n)

        def run(fn=fn, args=args, out=out) -> None:
            np.copyto(out, fn(*args), casting="unsafe")
        self.step(run, n.op)

    # ----------------------------------------------------------------- views
    def _select(self, n: Node) -> Any:
        src, k = n.args
        cell = self.val[src]
        if isinstance(cell, Results) and isinstance(k, int) and 0 <= k < len(cell.arrays):
            if n not in self.dest and self._view(n, cell.arrays[k]) is None:
                return None
            out = self.val[n] = self.out_array(n)
            self.step(partial(np.copyto, out, cell.arrays[k], casting="unsafe"), "copy")
            return None
        if not isinstance(cell, list) or not isinstance(k, int):
            return False
        out = self.val[n] = self.out_array(n)

        def run(cell=cell, k=k, out=out) -> None:
            np.copyto(out, cell[0][k], casting="unsafe")
        self.step(run, f"select {k}")

    def _view(self, n: Node, view: np.ndarray) -> Any:
        """``n``'s value is ``view`` of another node's array (taken once, now)."""
        if not isinstance(view, np.ndarray) or view.shape != tuple(n.shape) or \
                view.dtype != n.dtype:  # (a NumPy scalar is a copy, not a view)
            return False
        if n in self.dest or n in self.outputs and not view.flags.writeable:
            return False
        self.val[n] = view
        return None

    def _getitem(self, n: Node) -> Any:
        src, index = n.args
        x = self.val.get(src) if isinstance(src, Node) else None
        if not isinstance(x, np.ndarray):
            return False
        parts = index if isinstance(index, tuple) else (index,)
        if not all(isinstance(p, (slice, int, type(None))) or p is Ellipsis for p in parts):
            return False
        return self._view(n, x[index])

    def _permute(self, n: Node) -> Any:
        x = self.val.get(n.args[0])
        if not isinstance(x, np.ndarray):
            return False
        return self._view(n, x.transpose(n.args[1]))

    def _reshape(self, n: Node) -> Any:
        x = self.val.get(n.args[0])
        if not isinstance(x, np.ndarray):
            return False
        try:
            view = np.reshape(x, tuple(n.shape), copy=False)
        except ValueError:  # needs a copy: one per call into the node's array
            out = self.out_array(n)
            if out.flags.c_contiguous:
                target = out.reshape(x.shape)
                self.step(lambda t=target, x=x: np.copyto(t, x), "reshape (copy)")
            else:  # a reader's (strided) destination
                shape = tuple(n.shape)
                self.step(lambda o=out, x=x, s=shape: np.copyto(o, np.reshape(x, s)),
                          "reshape (copy)")
            self.val[n] = out
            return None
        return self._view(n, view)

    def _expand(self, n: Node) -> Any:
        x = self.val.get(n.args[0])
        if not isinstance(x, np.ndarray):
            return False
        return self._view(n, np.broadcast_to(x, tuple(n.shape)))

    def _copy(self, n: Node) -> Any:
        x = self.val.get(n.args[0])
        if not isinstance(x, np.ndarray) or x.shape != tuple(n.shape):
            return False
        out = self.out_array(n)
        self.step(lambda out=out, x=x: np.copyto(out, x), "copy")
        self.val[n] = out

    _contiguous = _copy

    # ----------------------------------------------------------------- compute
    def _unary(self, n: Node) -> None:
        (a,) = n.args
        x = self.arg(a)
        out = self.out_array(n, reuse=a)
        self.val[n] = out
        if n.op == "relu":
            self.step(lambda x=x, out=out: np.maximum(x, 0, out=out), "relu")
        else:
            f = _UNARY[n.op]
            self.step(lambda f=f, x=x, out=out: f(x, out=out), n.op)

    def _binary(self, n: Node) -> None:
        a, b = n.args
        x, y = self.arg(a), self.arg(b)
        if not all(isinstance(v, (np.ndarray, int, float)) for v in (x, y)):
            return self._fallback(n)
        out = self.out_array(n, reuse=a)
        self.val[n] = out
        f = _UFUNCS[n.op]
        self.step(lambda f=f, x=x, y=y, out=out: f(x, y, out=out), n.op)

    def _matmul(self, n: Node) -> Any:
        a, b = (self.arg(v) for v in n.args)
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)) or \
                a.dtype != n.dtype or b.dtype != n.dtype or n.dtype not in _FLOATS:
            return False
        out = self.out_array(n)
        self.val[n] = out
        if b.ndim == 2 and a.ndim > 2 and out.flags.c_contiguous:
            try:  # all leading rows in one product
                a = np.reshape(a, (-1, a.shape[-1]), copy=False)
                out = out.reshape(-1, out.shape[-1])
            except ValueError:
                pass
        if b.ndim == 2 and not b.flags.c_contiguous and not b.flags.f_contiguous:
            b = np.ascontiguousarray(b) if n.args[1].op == "constant" else b
        whole = partial(np.matmul, a, b, out=out)
        if a.ndim != 2 or out.ndim != 2 or out.size * a.shape[-1] < LARGE_PRODUCT:
            self.step(whole, "matmul")
            return None

        def parts(k: int, a=a, b=b, out=out) -> list:  # rows of a and out
            return [partial(np.matmul, a[r], b, out=out[r])
                    for r in ranges(a.shape[0], 4 * k)]
        self.step(split_step(whole, parts, self.threads), "matmul [split over rows]")

    def _fused_elementwise(self, n: Node) -> Any:
        program, operands = n.args
        values = [self.arg(v) for v in operands]
        if MaxPool.lower(self, n, program, operands):
            return None
        if n.dtype not in _FLOATS or not all(
                isinstance(v, (np.ndarray, int, float)) for v in values):
            return False
        k = program.n_operands
        registers: dict[int, np.ndarray] = {}
        refs_out: list = list(values) + [None] * len(program.steps)
        last = len(program.steps) - 1
        out = self.out_array(n, reuse=operands[0] if program.steps[0][1][0] == 0 else None)
        calls = []
        for j, (op, refs) in enumerate(program.steps):
            t = program.types[j]
            if j == last:
                dst = out
            else:
                reg = program._registers[j]
                dst = registers.get(reg)
                if dst is None or dst.dtype != t.dtype or dst.shape != tuple(t.shape):
                    dst = registers[reg] = self.alloc(t.shape, t.dtype)
            args = tuple(refs_out[r] for r in refs)
            native = _native(op, args[0]) if op in _NATIVE_UNARY and len(args) == 1 and \
                dst.flags.c_contiguous and args[0].shape == dst.shape and \
                args[0].dtype == dst.dtype else None
            if op == "relu":
                calls.append((np.maximum, args + (0,), dst))
            elif program._with_out[j] and op in _UFUNCS:
                calls.append((_UFUNCS[op], args, dst))
            elif native is not None:  # the backend's C kernel, straight into dst
                ptr = _pointer()
                calls.append((partial(native, ptr(dst), ptr(args[0]), dst.size), (args[0],)))
            else:
                calls.append((getattr(self.backend, op), args, dst, True))
            refs_out[k + j] = dst
        self.val[n] = out

        def run(calls=tuple(calls)) -> None:  # keeps what C kernels point into: in calls
            for c in calls:
                if len(c) == 2:
                    c[0]()
                elif len(c) == 4:
                    np.copyto(c[2], c[0](*c[1]), casting="unsafe")
                else:
                    c[0](*c[1], out=c[2])
        self.step(run, f"fused {program!r}")

    def _conv2d(self, n: Node) -> Any:
        conv = self.convs.get(n)
        if conv is None:
            return False
        conv.lower(self, n)

    def _max_pool2d(self, n: Node) -> Any:
        """A 2x2, stride-2 pool whose indices nobody reads: ``_MaxPool``'s step."""
        x, kernel, stride, padding, dilation, ceil_mode = n.args
        xv = self.val.get(x)
        readers = self.users.get(n, [])
        if not isinstance(xv, np.ndarray) or xv.ndim != 4 or xv.dtype not in _FLOATS or \
                tuple(kernel) != (2, 2) or tuple(stride) != (2, 2) or ceil_mode or \
                any(np.ravel(padding)) or any(d != 1 for d in np.ravel(dilation)) or \
                n in self.outputs or not readers or \
                any(r.op != "select" or r.args[1] != 0 for r in readers):
            return False
        Ho, Wo = xv.shape[2] // 2, xv.shape[3] // 2
        out = self.alloc((xv.shape[0], xv.shape[1], Ho, Wo), xv.dtype)
        self.val[n] = Results(out)
        MaxPool.emit(self, xv, out, Ho, Wo, False)

    def _layer_norm(self, n: Node) -> Any:
        """The backend's C kernel called straight into the plan's arrays (output, mean,
        rstd), its pointers taken once: no Python wrapper, allocation or copy per call."""
        x, weight, bias, n_axes, eps = (self.arg(a) for a in n.args)
        fn = _native("layer_norm", x)
        params = [p for p in (weight, bias) if p is not None]
        if fn is None or not n_axes or not all(
                isinstance(p, np.ndarray) and p.dtype == x.dtype and p.flags.c_contiguous
                for p in params):
            return False
        cols = int(np.prod(x.shape[x.ndim - n_axes:]))
        if any(p.size != cols for p in params):
            return False
        rows = x.size // cols
        stat = x.shape[:x.ndim - n_axes] + (1,) * n_axes
        y, mean, rstd = (self.alloc(x.shape, x.dtype), self.alloc(stat, x.dtype),
                         self.alloc(stat, x.dtype))
        self.val[n] = Results(y, mean, rstd)
        ptr = _pointer()
        call = partial(fn, ptr(y), ptr(mean), ptr(rstd), ptr(x),
                       None if weight is None else ptr(weight),
                       None if bias is None else ptr(bias), rows, cols, float(eps))
        self.step(_keeping(call, (x, y, mean, rstd, weight, bias)), "layer_norm (C)")

    def _softmax(self, n: Node) -> Any:
        """Softmax along the last axis: the backend's C kernel into the node's array."""
        x, axis = self.arg(n.args[0]), n.args[1]
        fn = _native("softmax", x)
        if fn is None or axis % x.ndim != x.ndim - 1 or not x.shape[-1]:
            return False
        if n in self.dest and not self.dest[n].flags.c_contiguous:
            return False
        out = self.val[n] = self.out_array(n)
        ptr = _pointer()
        call = partial(fn, ptr(out), ptr(x), x.size // x.shape[-1], x.shape[-1])
        self.step(_keeping(call, (x, out)), "softmax (C)")


def _pointer() -> Callable[[np.ndarray], int]:
    from ..backends import native
    return native.pointer


def _native(name: str, x: Any) -> Any:
    """The CPU backend's C kernel ``lg_<name>_<f32|f64>`` for a C-contiguous, non-empty
    float array ``x`` (what the backend's primitive calls, so the results are the same),
    else None."""
    if not isinstance(x, np.ndarray) or x.dtype not in _FLOATS or x.ndim == 0 or \
            not x.size or not x.flags.c_contiguous:
        return None
    from ..backends.cpu_native import kernel
    return kernel(name, x.dtype)


def _keeping(call: Callable[[], Any], keep: tuple) -> Callable[[], None]:
    """``call`` holding ``keep`` (the arrays its pointers point into) alive."""
    def run(call=call, keep=keep) -> None:
        call()
    return run

