"""The convolution and max-pool steps of the CPU replay plan (``plan.py``).

``Conv`` lowers ``conv2d`` (groups 1, constant weights) to im2col columns (the CPU
backend's C im2col) and one matrix product with the bias folded in; ``MaxPool`` lowers a
2x2, stride-2 max pool (the four strided slices and ``maximum`` tree the ONNX importer
writes, or ``max_pool2d``) to one pass; ``WinogradPool`` runs a 3x3 convolution and the
max pool that reads it as one Winograd step. The plan's own C kernels live in
``kernels/`` (the pool: relu fused, strided destination, no indices, which the backend's
``lg_max_pool2d`` doesn't do; the pooled Winograd transforms) and are built by
``lightgrad.backends.native``; without a compiler (or with ``LIGHTGRAD_NATIVE=0``) the
steps use NumPy. ``plan.py``'s docstring says what each step does and why.

>>> c_kernel("maxpool2") is None or callable(c_kernel("maxpool2"))
True
"""
from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..graph.ir import Node
from .plan_threads import LARGE_PRODUCT, split_step

if TYPE_CHECKING:
    from .plan import _Builder

__all__ = ["Conv", "MaxPool", "Results", "WinogradPool", "c_kernel"]

_HERE = Path(__file__).parent
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
VIEW_OPS = ("getitem", "permute", "reshape", "expand", "select")
"""Nodes whose value is a view of another's array (nothing can be computed into them)."""


class Results:
    """The value of a planned node with several results (``max_pool2d``'s values,
    ``layer_norm``'s output, mean and rstd): ``select k`` reads ``arrays[k]``."""

    def __init__(self, *arrays: np.ndarray) -> None:
        self.arrays = arrays


class Conv:
    """``conv2d`` (groups 1, constant weights) as one product over im2col columns."""

    flat: np.ndarray  # the zero-padded input (n, c, hp, wp), flat, with a tail
    padded: np.ndarray
    inner: np.ndarray  # its unpadded part: where the input is written
    Hp: int
    Wp: int
    stride: tuple
    dilation: tuple

    @staticmethod
    def make(n: Node, b: _Builder) -> "Conv | None":
        x, w, bias, stride, padding, dilation, groups = n.args
        if groups != 1 or not isinstance(x, Node) or x.shape is None or len(x.shape) != 4:
            return None
        if not (isinstance(w, Node) and w.op == "constant") or \
                bias is not None and not (isinstance(bias, Node) and bias.op == "constant"):
            return None
        if x.dtype not in _FLOATS or w.dtype != x.dtype or n.dtype != x.dtype:
            return None
        c = Conv()
        N, C, H, W = x.shape
        (p0, p1), (q0, q1) = padding
        Hp, Wp = H + p0 + p1, W + q0 + q1
        c.Hp, c.Wp, c.stride, c.dilation = Hp, Wp, tuple(stride), tuple(dilation)
        kw = w.shape[3]
        tail = (kw - 1) * dilation[1]  # what the NumPy path's whole padded rows read past
        flat = b.alloc((N * C * Hp * Wp + tail,), x.dtype, zeros=True)
        c.flat = flat
        c.padded = flat[:N * C * Hp * Wp].reshape(N, C, Hp, Wp)
        c.inner = c.padded[:, :, p0:p0 + H, q0:q0 + W]
        if x.op not in ("constant",) and b.sole_reader(x, n) and x.op not in VIEW_OPS:
            b.dest[x] = c.inner
        return c

    def lower(self, b: _Builder, n: Node) -> None:
        if WinogradPool.lower(self, b, n):
            return
        x, w, bias, stride, padding, dilation, groups = n.args
        N, C, H, W = x.shape
        wv = w.value
        Cout, _, kh, kw = wv.shape
        K = C * kh * kw
        (sh, sw), (dh, dw) = self.stride, self.dilation
        Hp, Wp = self.Hp, self.Wp
        Ho, Wo = n.shape[2], n.shape[3]
        s = self.flat.itemsize
        per = C * Hp * Wp
        im2col = c_kernel("im2col") if wv.dtype == np.float32 else None
        if im2col is not None:
            L = Ho * Wo
            src = None
        elif (sh, sw) == (1, 1):  # whole padded rows: Wp - Wo extra columns per row
            L = Ho * Wp
            src = as_strided(self.flat, (N, C, kh, kw, L),
                             (per * s, Hp * Wp * s, dh * Wp * s, dw * s, s), writeable=False)
            inner_shape = (N, C, kh, kw, L)
        else:
            L = Ho * Wo
            src = as_strided(self.flat, (N, C, kh, kw, Ho, Wo),
                             (per * s, Hp * Wp * s, dh * Wp * s, dw * s, sh * Wp * s, sw * s),
                             writeable=False)
            inner_shape = (N, C, kh, kw, Ho, Wo)
        rows = K + (bias is not None)
        cols = b.alloc((N, rows, L), wv.dtype)
        wm = wv.reshape(Cout, K)
        if bias is not None:
            cols[:, K] = 1
            wm = np.concatenate([wm, bias.value.reshape(Cout, 1).astype(wv.dtype)], 1)
        wm = np.ascontiguousarray(wm)
        out = b.alloc((N, Cout, L), wv.dtype)
        xv = b.val[x]
        pre = [] if b.dest.get(x) is self.inner else [(np.copyto, (self.inner, xv))]
        chunk = -(-L // -(-L // _GEMM_COLUMNS)) if K >= 32 else L
        flat_item = self.flat.itemsize
        keep = [self.flat, cols, out]  # the memory the kernels' addresses point into

        def images(r: slice) -> list:
            """The calls computing images ``r`` of the batch."""
            calls: list = []
            if src is None:  # the backend's im2col, of the padded input (no padding)
                scratch = np.empty(per, wv.dtype)  # its padded copy: one a group (threads)
                geometry = _dims(r.stop - r.start, rows * L, per, C, Hp, Wp, Hp * Wp, Wp, 1,
                                 kh, kw, sh, sw, 0, 0, dh, dw, Wo, 0, Ho)
                calls.append((_c_call(im2col, cols[r].ctypes.data, self.flat.ctypes.data +
                                      r.start * per * flat_item, geometry,
                                      scratch.ctypes.data), ()))
                keep.append(scratch)
            else:
                calls.append((np.copyto, (cols[r, :K].reshape((-1,) + inner_shape[1:]),
                                          src[r])))
            for i in range(0, L, chunk):  # OpenBLAS runs narrower products faster per flop
                part = slice(i, i + chunk)
                if r.stop - r.start == 1:
                    calls.append((np.matmul, (wm, cols[r.start, :, part],
                                              out[r.start, :, part])))
                else:
                    calls.append((np.matmul, (wm, cols[r, :, part], out[r, :, part])))
            return calls

        if src is not None and (sh, sw) == (1, 1):
            value = out.reshape(N, Cout, Ho, Wp)[..., :Wo]
        else:
            value = out.reshape(N, Cout, Ho, Wo)
        post = []
        if n in b.dest:
            post.append((np.copyto, (b.dest[n], value)))
            value = b.dest[n]
        b.val[n] = value

        def calls_of(todo: list) -> Callable[[], None]:
            def run(todo=tuple(todo), keep=tuple(keep)) -> None:
                for f, args in todo:
                    f(*args)
            return run

        group = max(1, _COLS_BYTES // (rows * L * flat_item))

        def grouped(r: slice) -> list:
            """Images ``r`` a few at a time: their columns are still in cache when the
            product reads them."""
            return [c for g in range(r.start, r.stop, group)
                    for c in images(slice(g, min(g + group, r.stop)))]

        split = N >= 2 and N * Cout * rows * L >= LARGE_PRODUCT
        name = (f"conv2d im2col{' (C)' if src is None else ''} ({Cout}x{rows}) @ "
                f"({rows}x{L})")
        if not split:
            b.step(calls_of(pre + grouped(slice(0, N)) + post), name)
            return
        body = split_step(calls_of(grouped(slice(0, N))),
                          lambda k: [calls_of(images(slice(g, min(g + group, N))))
                                     for g in range(0, N, group)], b.threads)
        first, last = calls_of(pre), calls_of(post)

        def run() -> None:
            first()
            body()
            last()
        b.step(run, name + " [split over the batch]")



_COLS_BYTES = 256 * 1024
"""A convolution's im2col and product run a group of images whose columns take about
this much memory at a time (they stay in the core's cache between the two)."""

_GEMM_COLUMNS = 200
"""Im2col products are split into column blocks of at most this width: OpenBLAS's float32
products by a small weight matrix slow down per flop as the columns grow past ~200
(measured: (32x145)@(145x224) takes 1.4x the time of two products of 112 columns, while
(32x145)@(145x196) is fastest whole)."""


_KERNELS: dict[str, Any] = {}


def c_kernel(name: str) -> Any:
    """The C function ``lg_onnx_<name>_f32`` of ``kernels/<file>.c`` (``<file>``: the part of
    ``name`` before any ``_``; built once by ``lightgrad.backends.native``) or, for the
    names in ``_BACKEND``, the CPU backend's; None without a compiler or with
    ``LIGHTGRAD_NATIVE=0`` (then the plan uses NumPy for that step)."""
    if name not in _KERNELS:
        from ..backends import native
        fn = None
        if name in _BACKEND:  # the CPU backend's kernel (backends/native/conv.c)
            from ..backends.cpu_native import kernel
            fn = kernel(_BACKEND[name], np.float32)
        elif native.enabled():
            symbol = f"lg_onnx_{name}_f32"
            source = _HERE / "kernels" / f"{name.split('_')[0]}.c"
            try:
                lib = native.open_library(native.build([source]),
                                          {symbol: _SIGNATURES[name]})
                fn = getattr(lib, symbol)
            except (native.NativeBuildError, OSError, AttributeError):
                fn = None
        _KERNELS[name] = fn
    return _KERNELS[name]


_SIGNATURES = {"maxpool2": "ppp",  # data, result, int64 array of sizes
               "winopool_in": "ppp", "winopool_out": "pppp",  # M, bias, result, sizes
               "im2col": "pppp"}  # columns, padded input, scratch, geometry (conv.c's)
_BACKEND = {"im2col": "im2col"}
"""Kernels the plan takes from the CPU backend (``lg_<name>_f32`` of
``backends/native/conv.c``) rather than from ``kernels/``."""


def _dims(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


def _c_call(kernel: Any, src: int, dst: int, dims: np.ndarray,
            scratch: int | None = None) -> Callable[[], None]:
    """``kernel(src, dst, dims)`` (or ``kernel(src, dst, scratch, dims)``) as a call without
    arguments (it keeps ``dims`` alive)."""
    args = (src, dst, dims.ctypes.data) if scratch is None else \
        (src, dst, scratch, dims.ctypes.data)
    call = partial(kernel, *args)
    call.dims = dims  # type: ignore[attr-defined]
    return call


class MaxPool:
    """A ``maximum`` tree (then maybe ``relu``) over the four stride-2 slices of a 2x2 pool
    window (or a ``max_pool2d`` primitive of that shape) as one step: the C kernel of
    ``kernels/maxpool2.c``, else NumPy's max over row pairs (whole rows), the relu, then the
    max over column pairs."""

    @staticmethod
    def lower(b: _Builder, n: Node, program: Any, operands: Sequence[Any]) -> bool:
        found = MaxPool.pattern(n, program, operands)
        if found is None:
            return False
        src, relu = found
        x = b.val.get(src)
        if not isinstance(x, np.ndarray) or x.ndim != 4:
            return False
        Ho, Wo = n.shape[2], n.shape[3]
        out = b.out_array(n)
        b.val[n] = out
        MaxPool.emit(b, x, out, Ho, Wo, relu)
        return True

    @staticmethod
    def pattern(n: Node, program: Any, operands: Sequence[Any]) -> tuple | None:
        """(the pooled node, whether a relu follows) when the fused node ``n`` is a 2x2,
        stride-2 max pool's ``maximum`` tree over four slices (then maybe ``relu``)."""
        steps = program.steps
        relu = steps[-1][0] == "relu"
        tree = steps[:-1] if relu else steps
        if len(operands) != 4 or len(tree) != 3 or any(op != "maximum" for op, _ in tree):
            return None
        if n.dtype not in _FLOATS or n.shape is None or not all(
                isinstance(v, Node) and v.op == "getitem" for v in operands):
            return None
        src = operands[0].args[0]
        if not all(v.args[0] is src for v in operands) or src.shape is None or \
                len(src.shape) != 4:
            return None
        Ho, Wo = n.shape[2], n.shape[3]
        starts = set()
        for v in operands:
            idx = v.args[1]
            if not isinstance(idx, tuple) or len(idx) != 4 or any(
                    p != slice(None) for p in idx[:2]):
                return None
            rs, cs = idx[2], idx[3]
            if not all(isinstance(p, slice) and p.step == 2 and p.start in (0, 1)
                       for p in (rs, cs)):
                return None
            if len(range(*rs.indices(src.shape[2]))) != Ho or \
                    len(range(*cs.indices(src.shape[3]))) != Wo:
                return None
            starts.add((rs.start, cs.start))
        if starts != {(0, 0), (0, 1), (1, 0), (1, 1)}:
            return None
        return src, relu

    @staticmethod
    def emit(b: _Builder, x: np.ndarray, out: np.ndarray, Ho: int, Wo: int,
             relu: bool) -> None:
        """The step: ``out`` = the 2x2/2 max pool of ``x`` (then maybe relu)."""
        kernel = c_kernel("maxpool2") if x.dtype == np.float32 else None
        if kernel is not None and (x.strides[3] != x.itemsize or
                                   out.strides[3] != out.itemsize):
            kernel = None
        name = "max pool 2x2" + (" (C)" if kernel is not None else "") + \
            (" + relu" if relu else "")
        rows = None if kernel is not None else b.alloc(x.shape[:2] + (Ho, x.shape[3]),
                                                        x.dtype)

        def calls(r: slice) -> list:
            """The calls pooling images ``r``."""
            if kernel is not None:
                s, d = x.itemsize, out.itemsize
                dims = _dims(r.stop - r.start, x.shape[1], Ho, Wo, x.strides[0] // s,
                             x.strides[1] // s, x.strides[2] // s, out.strides[0] // d,
                             out.strides[1] // d, out.strides[2] // d, int(relu))
                return [(_c_call(kernel, x.ctypes.data + r.start * x.strides[0],
                                 out.ctypes.data + r.start * out.strides[0], dims), ())]
            t, o = rows[r], out[r]
            todo = [(partial(np.maximum, x[r, :, 0:2 * Ho:2], x[r, :, 1:2 * Ho:2], out=t), ())]
            if relu:
                todo.append((partial(np.maximum, t, 0, out=t), ()))
            todo.append((partial(np.maximum, t[..., 0:2 * Wo:2], t[..., 1:2 * Wo:2], out=o), ()))
            return todo

        todo = tuple(calls(slice(0, x.shape[0])))

        def run(todo=todo, keep=(x, out)) -> None:  # keep: the memory the kernel writes
            for f, args in todo:
                f(*args)
        b.step(run, name)


class WinogradPool:
    """``conv2d`` (3x3, stride 1) whose only reader is a 2x2, stride-2 max pool (then maybe
    relu), as one step by Winograd F(2x2, 3x3) (``kernels/winopool.c``): the output tiles
    are the pool windows, so the full-size convolution output is never written, and the 16
    GEMMs do 2.25 times fewer multiplications than the im2col product. Taken by shape rule:
    float32 with the C kernels, 16 channels or more in and out (fewer: the transforms cost
    what the GEMMs save), an even-sized output."""

    @staticmethod
    def lower(conv: Conv, b: _Builder, n: Node) -> bool:
        x, w, bias, stride, padding, dilation, groups = n.args
        N, C, H, W = x.shape
        wv = w.value
        Cout = wv.shape[0]
        Ho, Wo = n.shape[2], n.shape[3]
        if wv.dtype != np.float32 or wv.shape[2:] != (3, 3) or conv.stride != (1, 1) or \
                conv.dilation != (1, 1) or Ho % 2 or Wo % 2 or Wo + 2 > 1000 or \
                n in b.outputs or min(C, Cout) < _WINOGRAD_MIN_CHANNELS:
            return False
        kin, kout = c_kernel("winopool_in"), c_kernel("winopool_out")
        if kin is None or kout is None:
            return False
        readers = b.users.get(n, [])
        if len(readers) != 4 or any(len(b.users.get(r, [])) != 1 or r in b.outputs
                                    for r in readers):
            return False
        pool = b.users[readers[0]][0]
        if pool.op != "fused_elementwise" or any(b.users[r][0] is not pool for r in readers):
            return False
        program, operands = pool.args
        found = MaxPool.pattern(pool, program, operands)
        if found is None or found[0] is not n or set(operands) != set(readers):
            return False
        relu = found[1]
        dest = b.dest.get(pool)
        if dest is not None and dest.strides[3] != dest.itemsize:
            return False
        out = b.out_array(pool)
        th, tw = Ho // 2, Wo // 2
        from ..backends.cpu_conv import _WINOGRAD_GG  # G g G^T, as the backend's Winograd
        u = np.ascontiguousarray((_WINOGRAD_GG.astype(np.float32) @
                                  wv.reshape(Cout * C, 9).T).reshape(16, Cout, C))
        bv = np.zeros(Cout, np.float32) if bias is None else \
            np.ascontiguousarray(np.reshape(bias.value, -1), dtype=np.float32)
        per_image = 16 * (C + Cout) * th * tw * 4
        nb = max(1, min(N, _WINOGRAD_BYTES // per_image))
        xv = b.val[x]
        pre = [] if b.dest.get(x) is conv.inner else [(np.copyto, (conv.inner, xv))]
        s, d = conv.flat.itemsize, out.itemsize
        keep: list = [conv.flat, out, u, bv]

        ve, me = C * nb * th * tw + 16, Cout * nb * th * tw + 16  # not page multiples
        strides = [st // d for st in out.strides[:3]]

        def tiles() -> tuple:
            """Buffers for a group's transformed tiles (one set per thread at a time)."""
            v, m = np.empty((16, ve), np.float32), np.empty((16, me), np.float32)
            keep.extend((v, m))
            return v, m

        def images(r: range, vm: tuple) -> list:
            """The calls of images ``r``, nb at a time through the tile buffers ``vm``."""
            v, m = vm
            calls: list = []
            for n0 in range(r.start, r.stop, nb):
                k = min(nb, r.stop - n0)
                din = _dims(k, C, conv.Hp, conv.Wp, th, tw, ve)
                dout = _dims(k, Cout, th, tw, me, *strides, int(relu))
                keep.append(dout)
                calls += [
                    (_c_call(kin, conv.flat.ctypes.data + n0 * C * conv.Hp * conv.Wp * s,
                             v.ctypes.data, din), ()),
                    (np.matmul, (u, v[:, :C * k * th * tw].reshape(16, C, -1),
                                 m[:, :Cout * k * th * tw].reshape(16, Cout, -1))),
                    (partial(kout, m.ctypes.data, bv.ctypes.data,
                             out.ctypes.data + n0 * out.strides[0], dout.ctypes.data), ())]
            return calls

        def calls_of(todo: list) -> Callable[[], None]:
            def run(todo=tuple(todo), keep=keep) -> None:
                for f, args in todo:
                    f(*args)
            return run

        def parts(k: int) -> list:
            """k runs of whole groups, each with its own tile buffers."""
            per = -(-N // nb // k) * nb
            return [calls_of(images(range(i, min(i + per, N)), tiles()))
                    for i in range(0, N, per)]

        b.val[pool] = out
        b.done.update(readers)
        b.done.add(pool)
        name = f"conv2d winograd (C) ({Cout}x{C}) + max pool 2x2{' + relu' if relu else ''}"
        body = calls_of(images(range(N), tiles()))
        if N > nb and N * Cout * C * 9 * Ho * Wo >= LARGE_PRODUCT:
            body = split_step(body, parts, b.threads)
            name += " [split over the batch]"
        first = calls_of(pre)

        def run() -> None:
            first()
            body()
        b.step(run, name)
        return True


_WINOGRAD_MIN_CHANNELS = 16
"""``WinogradPool`` runs convolutions with at least this many input and output channels
(CPU time, one thread, 16->32 on 14x14 then the pool and relu: batch 32 0.55 ms against
0.73 by im2col and the pool step, batch 1 0.020 against 0.023; with one input channel the
16 products are outer products and the transforms dominate: 1->16 on 28x28, batch 32,
0.23 ms against 0.21 when the products are summed in C, far worse through BLAS)."""

_WINOGRAD_BYTES = 1 << 20
"""``WinogradPool`` transforms a group of images whose tiles (in and out) take about this
much memory at a time."""
