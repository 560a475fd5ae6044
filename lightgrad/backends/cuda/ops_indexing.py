"""Indexing, gathers and scatters, concatenation, padding, cumsum, argmax/argmin, sort/topk
and sampling (kernels: index.cu, sort.cu; multinomial's draws: random.cu).

Advanced indexing becomes a *plan* (see index.cu): the sliced axes as a strided layout of x,
and one int64 offset per element of the index arrays' broadcast shape, summed from the
arrays (bounds checked and wrapped on the device; bool masks compacted to offsets with a
scan). x[index], x[index] = v, index_put, gather, scatter_add, index_select and index_add
all run the same three kernels over a plan: take, put and put_add (atomics).

>>> import lightgrad as lg                                    # doctest: +SKIP
>>> lg.arange(6, device="cuda").reshape(2, 3)[:, [2, 0]].tolist()  # doctest: +SKIP
[[2, 0], [5, 3]]
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from . import launch
from .array import DeviceArray, contiguous_strides, merged_layout
from .backend import HALF, suffix
from .runtime import CudaError, layout

_NULL = layout((1,), (0,))  # every element at offset 0
_GAP = object()  # an Ellipsis that stands for no axes
_I64 = np.dtype(np.int64)
_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)


def _layout_of(shape: Sequence[int], strides: Sequence[int]) -> np.void:
    return layout(*merged_layout(tuple(shape), tuple(strides)))


def _key_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype sort.cu compares ``dtype``'s values in."""
    if dtype == _F64:
        return _F64
    return _F32 if dtype.kind == "f" or dtype in HALF else _I64


def _add_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype put_add adds in: its own where the GPU has atomics, else a wider one."""
    if dtype in HALF:
        return _F32
    return dtype if dtype in (_F32, _F64, _I64, np.dtype(np.int32)) else _I64


def _sum_dtype(dtype: np.dtype) -> np.dtype:
    """reduce.cu's accumulator for ``dtype``."""
    if dtype == _F64:
        return _F64
    return _F32 if dtype.kind == "f" or dtype in HALF else _I64


@dataclass
class _Plan:
    """Where ``x[index]`` reads: element (p, b, q) of the result is at
    ``base + lg_offset(xl, p * nq + q) + lin[b]`` (see index.cu)."""

    base: int            # address of x moved by the int indices and slice starts
    xl: np.void          # layout of the sliced axes
    nb: int              # elements of the index arrays' broadcast shape
    nq: int              # elements of the sliced axes after the advanced ones
    lin: DeviceArray     # (nb,) int64 offsets picked by the index arrays
    shape: tuple         # shape of the result

    @property
    def size(self) -> int:
        return math.prod(self.shape)


class IndexingOps:
    """Advanced indexing, index_put, pad/flip/cat/tile/tril/triu, gather/scatter_add/
    index_add/index_select, argmax/argmin, cumsum, sort/topk, multinomial."""

    # ------------------------------------------------------------------ plans
    def _index_items(self, x: DeviceArray, index: tuple) -> list:
        """The index with arrays as device int64/bool arrays, 0-d bools as Python bools,
        Ellipsis expanded (to _GAP if it stands for no axes: it still separates advanced
        indices, as in NumPy) and missing trailing axes as full slices."""
        items: list[Any] = []
        for item in index:
            if isinstance(item, (list, np.ndarray)):
                arr = np.asarray(item)
                if arr.dtype.kind not in "iub" and arr.size:
                    raise IndexError(f"index: arrays used as indices must hold ints or bools, "
                                     f"got {arr.dtype}")
                item = arr[()] if arr.dtype == np.bool_ and arr.ndim == 0 else \
                    self.from_numpy(arr if arr.dtype == np.bool_ else arr.astype(np.int64))
            if isinstance(item, DeviceArray):
                if item.dtype == np.bool_ and item.ndim == 0:
                    item = bool(self.to_numpy(item))
                elif item.dtype.kind in "iu":
                    item = item if item.dtype == _I64 else self.astype(item, _I64)
                elif item.dtype != np.bool_:
                    raise IndexError(f"index: tensors used as indices must be integer or bool, "
                                     f"got {item.dtype}")
            if isinstance(item, (bool, np.bool_)):
                item = bool(item)
            elif isinstance(item, (int, np.integer)):
                item = int(item)
            items.append(item)
        used = sum(i.ndim if isinstance(i, DeviceArray) and i.dtype == np.bool_ else 1
                   for i in items if i is not None and i is not Ellipsis
                   and not isinstance(i, bool))
        if used > x.ndim:
            raise IndexError(f"index: too many indices for a tensor of shape {x.shape}: "
                             f"{used} given, {x.ndim} dims")
        if sum(1 for i in items if i is Ellipsis) > 1:  # (no ==: arrays don't compare)
            raise IndexError("index: an index can only have a single ellipsis ('...')")
        fill = [slice(None)] * (x.ndim - used)
        if any(i is Ellipsis for i in items):
            at = next(k for k, i in enumerate(items) if i is Ellipsis)
            return items[:at] + (fill or [_GAP]) + items[at + 1:]
        return items + fill

    def _plan(self, x: DeviceArray, index: tuple) -> _Plan:
        """The plan of ``x[index]`` for any index (NumPy's rules: the advanced axes replace
        the indexed ones where they are adjacent in the index, else they go first)."""
        offset, axis = 0, 0
        pre: list[tuple] = []    # (size, stride) of sliced axes before the advanced ones
        post: list[tuple] = []   # ... and after (all of them when those are not adjacent)
        parts: list[tuple] = []  # (int64 array, size, stride, axis) summed into lin
        shapes: list[tuple] = []
        advanced: list[int] = []  # positions of advanced items (arrays, ints, bools)
        for pos, item in enumerate(self._index_items(x, index)):
            basic = post if advanced else pre
            if item is _GAP:
                continue
            if item is None:
                basic.append((1, 0))
                continue
            if isinstance(item, slice):
                n, s = x.shape[axis], x.strides[axis]
                start, stop, step = item.indices(n)
                count = len(range(start, stop, step))
                basic.append((count, s * step))
                offset += start * s if count else 0
                axis += 1
                continue
            advanced.append(pos)
            if isinstance(item, bool):  # a 0-d bool: an axis of length 1 (True) or 0
                shapes.append((int(item),))
            elif isinstance(item, int):
                n = x.shape[axis]
                if not -n <= item < n:
                    raise IndexError(f"index: index {item} is out of range for dim {axis} "
                                     f"with size {n} (tensor of shape {x.shape})")
                offset += (item % n) * x.strides[axis]
                axis += 1
            elif item.dtype == np.bool_:
                offsets = self._mask_offsets(x, axis, item)
                parts.append((offsets, -1, 1, axis))
                shapes.append(offsets.shape)
                axis += item.ndim
            else:
                parts.append((item, x.shape[axis], x.strides[axis], axis))
                shapes.append(item.shape)
                axis += 1
        if advanced and advanced[-1] - advanced[0] + 1 != len(advanced):
            pre, post = [], pre + post
        try:
            middle = tuple(np.broadcast_shapes(*shapes)) if shapes else ()
        except ValueError:
            raise IndexError("index: shape mismatch: indexing arrays could not be broadcast "
                             f"together with shapes {' '.join(map(str, shapes))}") from None
        lin = self._offsets(parts, middle, x.shape)
        sliced = pre + post
        return _Plan(x.ptr + offset * x.itemsize,
                     _layout_of([n for n, _ in sliced], [s for _, s in sliced]),
                     math.prod(middle), math.prod(n for n, _ in post), lin,
                     tuple(n for n, _ in pre) + middle + tuple(n for n, _ in post))

    def _offsets(self, parts: list, shape: tuple, x_shape: tuple,
                 base: np.void = _NULL) -> DeviceArray:
        """lin: for each element of ``shape``, the base layout's offset plus each part's
        index (read broadcast, bounds checked, wrapped) times its stride."""
        nb = math.prod(shape)
        if not parts or not nb:
            return self.full((nb,), 0, _I64)
        lin = self.empty((nb,), _I64)
        err = self.full((2 * len(parts),), 0, _I64)
        kernel = self.kernel("index", "index_offsets")
        for k, (arr, size, stride, _) in enumerate(parts):
            self.launch_elementwise(kernel, nb, [nb, arr, arr.layout(shape), size, stride,
                                                 base if k == 0 else _NULL, int(k > 0), lin,
                                                 err.ptr + 16 * k])
        bad = self.to_numpy(err).reshape(-1, 2)
        for (flag, value), (_, size, _, axis) in zip(bad, parts):
            if flag:
                raise IndexError(f"index: index {value} is out of range for dim {axis} with "
                                 f"size {size} (tensor of shape {x_shape})")
        return lin

    def _mask_offsets(self, x: DeviceArray, axis: int, mask: DeviceArray) -> DeviceArray:
        """Offsets (int64, in row-major order) of the True elements of ``mask`` over axes
        axis.. of x: a running count (scan) says where each one goes."""
        region = x.shape[axis:axis + mask.ndim]
        if mask.shape != region:
            raise IndexError(f"index: bool mask of shape {mask.shape} does not match dims "
                             f"{axis}.. of a tensor of shape {x.shape}")
        n = mask.size
        if n == 0:
            return self.empty((0,), _I64)
        counts = self.astype(mask, _I64)
        counts = self.cumsum(counts.view((n,), (1,)), 0)
        total = int(self.to_numpy(counts.view((1,), (1,), n - 1))[0])
        out = self.empty((total,), _I64)
        if total:
            self.launch_elementwise(
                self.kernel("index", "mask_offsets"), n,
                [n, mask, mask.layout(), counts,
                 _layout_of(region, x.strides[axis:axis + mask.ndim]), out])
        return out

    def _value(self, value: Any, dtype: np.dtype, shape: tuple,
               target: DeviceArray | None = None) -> tuple[DeviceArray, np.void]:
        """``value`` as a device array of ``dtype`` and its layout read at ``shape``
        (ValueError if it does not broadcast), copied if it shares memory with target."""
        if isinstance(value, np.ndarray):
            value = value[()] if value.ndim == 0 else self.from_numpy(value)
        if isinstance(value, DeviceArray):
            v = value if value.dtype == dtype else self.astype(value, dtype)
            if target is not None and v.mem is target.mem:
                v = self.copy(v)
            while v.ndim > len(shape) and v.shape[0] == 1:  # NumPy drops leading 1s
                v = v.view(v.shape[1:], v.strides[1:])
        else:
            v = self.full((), value, dtype)
        return v, v.layout(shape)

    def _take(self, plan: _Plan, dtype: np.dtype) -> DeviceArray:
        out = self.empty(plan.shape, dtype)
        if out.size:
            self.launch_elementwise(self.kernel("index", f"take_{out.itemsize}"), out.size,
                                    [out.size, plan.nb, plan.nq, plan.base, plan.xl, plan.lin,
                                     self.raw(out)])
        return out

    def _put_add(self, x: DeviceArray, index: tuple, value: Any) -> None:
        """x[index] += value in place, repeated indices adding up (np.add.at)."""
        wide = _add_dtype(x.dtype)
        target = x if wide == x.dtype else self.astype(x, wide)
        plan = self._plan(target, index)
        v, lv = self._value(value, wide, plan.shape, target)
        if plan.size:
            self.launch_elementwise(self.kernel("index", f"put_add_{suffix(wide, 'add')}"),
                                    plan.size, [plan.size, plan.nb, plan.nq, plan.base,
                                                plan.xl, plan.lin, v, lv])
        if target is not x:
            self.cast_into(x, target)

    # ------------------------------------------------------------------ indexing
    def advanced_getitem(self, x, index) -> DeviceArray:
        return self._take(self._plan(x, tuple(index)), x.dtype)

    def advanced_setitem(self, x, index, value) -> None:
        plan = self._plan(x, tuple(index))
        v, lv = self._value(value, x.dtype, plan.shape, x)
        if plan.size:
            self.launch_elementwise(self.kernel("index", f"put_{x.itemsize}"), plan.size,
                                    [plan.size, plan.nb, plan.nq, plan.base, plan.xl, plan.lin,
                                     self.raw(v), lv])

    def index_put(self, x, index, value, accumulate) -> DeviceArray:
        out = self.copy(x)
        if accumulate:
            self._put_add(out, tuple(index), value)
        else:
            self.setitem(out, tuple(index), value)
        return out

    def gather(self, x, axis, index) -> DeviceArray:
        shape = index.shape
        base = self._along_axis("gather", x, axis, shape)
        out = self.empty(shape, x.dtype)
        if out.size:
            lin = self._offsets([(index, x.shape[axis], x.strides[axis], axis)], shape, x.shape,
                                base)
            self.launch_elementwise(self.kernel("index", f"take_{out.itemsize}"), out.size,
                                    [out.size, out.size, 1, self.raw(x), _NULL, lin,
                                     self.raw(out)])
        return out

    def scatter_add(self, x, axis, index, src) -> DeviceArray:
        shape = index.shape
        if src.ndim != len(shape) or any(s < n for s, n in zip(src.shape, shape)):
            raise ValueError(f"scatter_add: src of shape {src.shape} is smaller than the "
                             f"index of shape {shape}")
        out = self.copy(x)
        wide = _add_dtype(x.dtype)
        target = out if wide == out.dtype else self.astype(out, wide)
        base = self._along_axis("scatter_add", target, axis, shape, broadcast=False)
        if math.prod(shape):
            lin = self._offsets([(index, x.shape[axis], target.strides[axis], axis)], shape,
                                x.shape, base)
            v, lv = self._value(src.view(shape, src.strides), wide, shape)
            n = math.prod(shape)
            self.launch_elementwise(self.kernel("index", f"put_add_{suffix(wide, 'add')}"), n,
                                    [n, n, 1, target.ptr, _NULL, lin, v, lv])
        if target is not out:
            self.cast_into(out, target)
        return out

    def _along_axis(self, op: str, x: DeviceArray, axis: int, shape: tuple,
                    broadcast: bool = True) -> np.void:
        """Layout of x over an index of ``shape`` along ``axis``: x's strides on the other
        axes (an index may be shorter than x there; a size-1 axis of x broadcasts when
        ``broadcast``), 0 on ``axis``."""
        if len(shape) != x.ndim:
            raise ValueError(f"{op}: index has {len(shape)} dims, the tensor {x.ndim}")
        strides = []
        for d, (n, have, s) in enumerate(zip(shape, x.shape, x.strides)):
            if d == axis:
                strides.append(0)
            elif n <= have:
                strides.append(s)
            elif have == 1 and broadcast:
                strides.append(0)
            else:
                raise IndexError(f"{op}: index of shape {shape} does not fit a tensor of "
                                 f"shape {x.shape} along dim {axis}")
        return _layout_of(shape, strides)

    def index_select(self, x, axis, index) -> DeviceArray:
        return self.advanced_getitem(x, (slice(None),) * axis + (index,))

    def index_add(self, x, axis, index, src) -> DeviceArray:
        out = self.copy(x)
        self._put_add(out, (slice(None),) * axis + (index,), src)
        return out

    # ------------------------------------------------------------------ movement
    def pad(self, x, pads, value) -> DeviceArray:
        pads = [(int(b), int(a)) for b, a in pads]
        if len(pads) == 1 and x.ndim > 1:
            pads = pads * x.ndim
        if len(pads) != x.ndim:
            raise ValueError(f"pad: {len(pads)} (before, after) pairs for {x.ndim} dims")
        if any(b < 0 or a < 0 for b, a in pads):
            raise ValueError(f"pad: widths must be non-negative, got {pads}")
        shape = tuple(n + b + a for n, (b, a) in zip(x.shape, pads))
        out = self.full(shape, value, x.dtype)
        if x.size:
            start = sum(b * s for (b, _), s in zip(pads, out.strides))
            self.cast_into(out.view(x.shape, out.strides, start), x)
        return out

    def flip(self, x, axes) -> DeviceArray:
        strides, start = list(x.strides), 0
        for a in {a % max(x.ndim, 1) for a in axes}:
            if x.shape[a]:
                start += (x.shape[a] - 1) * x.strides[a]
            strides[a] = -strides[a]
        return self.copy(x.view(x.shape, tuple(strides), start))

    def cat(self, xs, axis) -> DeviceArray:
        xs = list(xs)
        if not xs:
            raise ValueError("cat: need at least one array to concatenate")
        ndim = xs[0].ndim
        if ndim == 0:
            raise ValueError("cat: zero-dimensional arrays cannot be concatenated")
        axis = axis % ndim
        for t in xs:
            if t.ndim != ndim or any(a != b for d, (a, b) in enumerate(zip(t.shape, xs[0].shape))
                                     if d != axis):
                raise ValueError(f"cat: shapes {xs[0].shape} and {t.shape} differ outside "
                                 f"axis {axis}")
        dtypes = {t.dtype for t in xs}
        dtype = xs[0].dtype if len(dtypes) == 1 else np.result_type(*dtypes)
        shape = list(xs[0].shape)
        shape[axis] = sum(t.shape[axis] for t in xs)
        out = self.empty(tuple(shape), dtype)
        at = 0
        for t in xs:
            if t.size:
                self.cast_into(out.view(t.shape, out.strides, at * out.strides[axis]), t)
            at += t.shape[axis]
        return out

    def tile(self, x, reps) -> DeviceArray:
        reps = tuple(int(r) for r in reps)
        ndim = max(len(reps), x.ndim)
        reps = (1,) * (ndim - len(reps)) + reps
        lead = ndim - x.ndim
        src = x.view((1,) * lead + x.shape, (0,) * lead + x.strides)
        out = self.empty(tuple(r * n for r, n in zip(reps, src.shape)), x.dtype)
        if not out.size:
            return out
        try:
            self._tile_into(out, src, reps)
        except CudaError:  # too many axes for one layout: repeat one axis at a time
            for axis, r in enumerate(reps):
                if r != 1:
                    src = self.tile(src, (1,) * axis + (r,) + (1,) * (ndim - axis - 1))
            self.cast_into(out, src)
        return out

    def _tile_into(self, out: DeviceArray, src: DeviceArray, reps: tuple) -> None:
        """out (r0 * n0, r1 * n1, ...) seen as (r0, n0, r1, n1, ...), filled from src
        read with stride 0 on the repeat axes: one copy launch."""
        shape, dst_strides, src_strides = [], [], []
        for r, n, o, s in zip(reps, src.shape, out.strides, src.strides):
            shape += [r, n]
            dst_strides += [n * o, o]
            src_strides += [0, s]
        self.cast_into(out.view(tuple(shape), tuple(dst_strides)),
                       src.view(tuple(shape), tuple(src_strides)))

    def tril(self, x, k) -> DeviceArray:
        return self._triangle(x, k, upper=False)

    def triu(self, x, k) -> DeviceArray:
        return self._triangle(x, k, upper=True)

    def _triangle(self, x: DeviceArray, k: int, upper: bool) -> DeviceArray:
        if x.ndim < 2:
            raise ValueError(f"{'triu' if upper else 'tril'}: needs at least 2 dims, got "
                             f"shape {x.shape}")
        out = self.empty(x.shape, x.dtype)
        if out.size:
            rows, cols = x.shape[-2:]
            self.launch_elementwise(self.kernel("index", f"triangle_{x.itemsize}"), out.size,
                                    [out.size, rows, cols, int(k), int(upper), self.raw(x),
                                     x.layout(), self.raw(out)])
        return out

    # ------------------------------------------------------------------ along an axis
    @staticmethod
    def _rows(x: DeviceArray, axis: int | None) -> tuple:
        """(M, K, keep, red, kept axes) viewing x as M rows of K elements along ``axis``
        (every element in one row when axis is None)."""
        if axis is None or x.ndim == 0:
            return 1, x.size, _NULL, x.layout(), []
        kept = [a for a in range(x.ndim) if a != axis]
        keep = _layout_of([x.shape[a] for a in kept], [x.strides[a] for a in kept])
        return (math.prod(x.shape[a] for a in kept), x.shape[axis], keep,
                layout((x.shape[axis],), (x.strides[axis],)), kept)

    def argmax(self, x, axis, keepdim) -> DeviceArray:
        return self._arg("max", x, axis, keepdim)

    def argmin(self, x, axis, keepdim) -> DeviceArray:
        return self._arg("min", x, axis, keepdim)

    def _arg(self, op: str, x: DeviceArray, axis: int | None, keepdim: bool) -> DeviceArray:
        if axis is not None and x.ndim:
            axis %= x.ndim
        m, k, keep, red, _ = self._rows(x, axis)
        if axis is None or x.ndim == 0:
            shape = (1,) * x.ndim if keepdim else ()
        else:
            shape = tuple(1 if a == axis else n for a, n in enumerate(x.shape) if
                          keepdim or a != axis)
        out = self.empty(shape, _I64)
        if m == 0:
            return out
        if k == 0:
            raise ValueError(f"arg{op}: attempt to get arg{op} of an empty sequence")
        code = self.enum("sort", "ArgOp", "ARG_")[op]
        sfx = suffix(x.dtype, f"arg{op}")
        if launch.short_rows(k):
            self.launch_elementwise(self.kernel("sort", f"arg_short_{sfx}"), m,
                                    [code, m, k, x, keep, red, out])
            return out
        grid, block, chunks = launch.reduction(m, k, self.rt.multiprocessor_count)
        kernel = self.kernel("sort", f"arg_reduce_{sfx}")
        if chunks == 1:
            kernel(grid, block, [code, m, k, 1, x, keep, red, None, None, out])
            return out
        wide = _sum_dtype(x.dtype)  # the kernel's compare type, here the partials' type
        values, where = self.empty((m * chunks,), wide), self.empty((m * chunks,), _I64)
        kernel(grid, block, [code, m, k, chunks, x, keep, red, None, values, where])
        again = self.kernel("sort", f"arg_reduce_{suffix(wide, 'arg' + op)}")
        again((grid[0], 1), launch.rows(m, chunks, 1)[1],
              [code, m, chunks, 1, values, layout((m,), (chunks,)), layout((chunks,), (1,)),
               where, None, out])
        return out

    def cumsum(self, x, axis) -> DeviceArray:
        out = self.empty(x.shape, x.dtype)
        if not x.size:
            return out
        axis = axis % x.ndim if x.ndim else None
        m, k, keep, red, kept = self._rows(x, axis)
        if axis is None:
            okeep, ostride = _NULL, 1
        else:
            okeep = _layout_of([x.shape[a] for a in kept], [out.strides[a] for a in kept])
            ostride = out.strides[axis]
        self._scan(x, m, k, keep, red, out, okeep, ostride)
        return out

    def _scan(self, x: DeviceArray, m: int, k: int, keep: np.void, red: np.void,
              out: DeviceArray, okeep: np.void, ostride: int) -> None:
        """Inclusive running sums of M rows of K elements into out (see index.cu)."""
        sfx = suffix(x.dtype, "cumsum")
        if launch.short_rows(k):
            self.launch_elementwise(self.kernel("index", f"scan_short_{sfx}"), m,
                                    [m, k, x, keep, red, out, okeep, ostride])
            return
        grid, block, chunks = launch.reduction(m, k, self.rt.multiprocessor_count)
        kernel = self.kernel("index", f"scan_{sfx}")
        if chunks == 1:
            kernel(grid, block, [m, k, 1, x, keep, red, None, out, okeep, ostride])
            return
        wide = _sum_dtype(x.dtype)
        sums = self.empty((m * chunks,), wide)
        code = self.enum("reduce", "ReduceOp", "R_")["sum"]
        self.kernel("reduce", f"reduce_{sfx}")(grid, block,
                                               [code, m, k, chunks, x, keep, red, 1, sums])
        before = self.empty((m * chunks,), wide)  # inclusive scan of each row's chunk sums
        rows = layout((m,), (chunks,))
        self.kernel("index", f"scan_{suffix(wide, 'cumsum')}")(
            (grid[0], 1), launch.rows(m, chunks, 1)[1],
            [m, chunks, 1, sums, rows, layout((chunks,), (1,)), None, before, rows, 1])
        kernel(grid, block, [m, k, chunks, x, keep, red, before, out, okeep, ostride])

    # ------------------------------------------------------------------ ordering
    def sort(self, x, axis, descending) -> DeviceArray:
        return self._argsort(x, axis, bool(descending))

    def _argsort(self, x: DeviceArray, axis: int, descending: bool,
                 tile: int = launch.SORT_TILE) -> DeviceArray:
        """Stable argsort along ``axis``: short rows by counting ranks; rows that fit a tile
        in shared memory (bitonic); longer rows tile by tile, then merged in passes."""
        out = self.empty(x.shape, _I64)
        if not x.size:
            return out
        if x.ndim == 0:
            self.fill(out, 0)
            return out
        axis %= x.ndim
        m, k, keep, red, kept = self._rows(x, axis)
        okeep = _layout_of([x.shape[a] for a in kept], [out.strides[a] for a in kept])
        sfx = suffix(x.dtype, "sort")
        if k <= launch.RANK_SORT:
            self.launch_elementwise(self.kernel("sort", f"sort_rank_{sfx}"), m * k,
                                    [m, k, x, keep, red, descending, out, okeep,
                                     out.strides[axis]])
            return out
        key = _key_dtype(x.dtype)
        tile, width, threads, shared = launch.sort_tile(k, key.itemsize, tile)
        tiles = -(-k // tile)
        grid = (launch.rows(m, width, self.rt.multiprocessor_count)[0][0], tiles)
        kernel = self.kernel("sort", f"sort_tile_{sfx}")
        if tiles == 1:
            kernel(grid, (threads,), [m, k, tile, width, x, keep, red, descending, None, None,
                                      out, okeep, out.strides[axis]], shared)
            return out
        keys, idx = self.empty((m, k), key), self.empty((m, k), _I64)
        kernel(grid, (threads,), [m, k, tile, width, x, keep, red, descending, keys, idx,
                                  None, _NULL, 0], shared)
        spare_keys, spare_idx = self.empty((m, k), key), self.empty((m, k), _I64)
        merge = self.kernel("sort", f"merge_{suffix(key, 'sort')}")
        run = tile
        while run < k:
            self.launch_elementwise(merge, m * k, [m, k, run, descending, keys, idx,
                                                   spare_keys, spare_idx])
            keys, spare_keys, idx, spare_idx = spare_keys, keys, spare_idx, idx
            run *= 2
        rows = tuple(x.shape[a] for a in kept) + (k,)
        self.cast_into(out.view(rows, tuple(out.strides[a] for a in kept) + (out.strides[axis],)),
                       idx.view(rows, contiguous_strides(rows)))
        return out

    def topk(self, x, k, axis, largest) -> DeviceArray:
        order = self.sort(x, axis, largest)
        return self.copy(self.getitem(order, (slice(None),) * (axis % x.ndim) + (slice(0, k),)))

    def multinomial(self, probs, num_samples, replacement) -> DeviceArray:
        p = probs if probs.dtype == _F64 and probs.is_contiguous else self.astype(probs, _F64)
        k = p.shape[-1]
        m = p.size // k if k else 0
        rows = p.view((m, k), (k, 1))
        key, offset = self.philox_next()
        if replacement:
            out = self.empty((m, num_samples), _I64)
            if out.size:
                cdf = self.cumsum(rows, 1)
                self.launch_elementwise(self.kernel("random", "multinomial_cdf"), out.size,
                                        [m, k, num_samples, cdf, key, offset, out])
        else:
            keys = self.empty((m, k), _F64)
            if keys.size:
                self.launch_elementwise(self.kernel("random", "multinomial_race"), keys.size,
                                        [keys.size, rows, key, offset, keys])
            out = self.topk(keys, num_samples, 1, False)
        shape = p.shape[:-1] + (num_samples,)
        return out.view(shape, contiguous_strides(shape))
