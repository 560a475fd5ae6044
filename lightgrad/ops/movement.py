"""Movement ops: views (reshape, permute, expand, basic indexing) and data rearrangement
(index/gather/scatter, cat, pad, flip, repeat, tril/triu, dtype casts, copies).

>>> import lightgrad as lg
>>> x = lg.arange(6.0).reshape(2, 3).requires_grad_()
>>> x[:, [0, 0, 2]].sum().backward(); x.grad
tensor([[2., 0., 1.],
        [2., 0., 1.]])
"""
from __future__ import annotations

import math

import numpy as np

from ..autograd import Function
from ..backends.base import contiguous_strides
from .common import unbroadcast, wrap


def _view(x, buf, op, *args):
    """A result that shares memory (and the in-place version counter) with ``x``.

    It remembers its base tensor and the chain of view ops ``(Function, args)`` that leads
    from the base to it, so that an in-place op on the view can update the base's history
    (see ``CopySlices``).
    """
    base = x._base
    return wrap(buf, x.device, x._version,
                (x, ((op, args),)) if base is None else (base[0], base[1] + ((op, args),)))


def replay_view(t, chain):
    """Apply the view ops of ``chain`` to ``t`` (differentiably)."""
    for op, args in chain:
        t = op.apply(t, *args)
    return t


class CopySlices(Function):
    """The new history of a base tensor after an in-place op wrote ``result`` into one of
    its views: outside the view the gradient flows to the old base, inside it to ``result``.

    ``forward`` only re-wraps the base's buffer (the values were already written).
    """

    @staticmethod
    def forward(ctx, old_base, result, chain):
        ctx.chain = chain
        ctx.shape, ctx.np_dtype = old_base.shape, old_base._data.dtype
        return wrap(old_base._data, old_base.device)

    @staticmethod
    def backward(ctx, g):
        g_old = None
        if ctx.needs_input_grad[0]:
            from .. import no_grad, ones
            keep = ones(ctx.shape, dtype=g.dtype, device=g.device)
            with no_grad():
                replay_view(keep, ctx.chain).fill_(0)  # zero where the view overwrote
            g_old = g * keep
        g_result = replay_view(g, ctx.chain) if ctx.needs_input_grad[1] else None
        return g_old, g_result, None


def element_strides(buf) -> tuple | None:
    """The strides of a backend buffer in elements (None when the buffer has no layout)."""
    strides = getattr(buf, "strides", None)
    if strides is None:
        return None
    if isinstance(buf, np.ndarray):
        return tuple(s // buf.itemsize for s in strides)
    return tuple(strides)


def byte_offset(buf) -> int:
    """How many bytes into its allocation a buffer starts (0 when unknown)."""
    if isinstance(buf, np.ndarray):
        root = buf
        while isinstance(root.base, np.ndarray):
            root = root.base
        return buf.__array_interface__["data"][0] - root.__array_interface__["data"][0]
    mem = getattr(buf, "mem", None)
    return buf.ptr - mem.ptr if mem is not None and hasattr(mem, "ptr") else 0


# PyTorch's names for dtypes in its messages (view(dtype) errors match its wording)
_TORCH_NAMES = {"float32": "Float", "float64": "Double", "float16": "Half",
                "bfloat16": "BFloat16", "int64": "Long", "int32": "Int", "int16": "Short",
                "int8": "Char", "uint8": "Byte", "bool": "Bool"}


def bitcast(x, dtype):
    """``x.view(dtype)``: the same bytes read as ``dtype``, a view that does not require
    grad (as in PyTorch). With another item size the last dim scales; PyTorch's conditions
    are checked (stride(-1) == 1, divisible size, strides and offset)."""
    from ..tensor import Tensor
    old, new = x.dtype, dtype
    if old.itemsize != new.itemsize:
        what = (f"to view {_TORCH_NAMES.get(old.name, old.name)} as "
                f"{_TORCH_NAMES.get(new.name, new.name)} (different element sizes)")
        if x.ndim == 0:
            raise RuntimeError(f"self.dim() cannot be 0 {what}")
        strides = element_strides(x._data) or contiguous_strides(x.shape)
        if strides[-1] != 1 and x.shape[-1] != 1:
            raise RuntimeError(f"self.stride(-1) must be 1 {what}, but got {strides[-1]}")
        if new.itemsize > old.itemsize:
            ratio = new.itemsize // old.itemsize
            if x.shape[-1] % ratio:
                raise RuntimeError(f"self.size(-1) must be divisible by {ratio} {what}, but "
                                   f"got {x.shape[-1]}")
            offset = byte_offset(x._data) // old.itemsize
            if offset % ratio:
                raise RuntimeError(f"self.storage_offset() must be divisible by {ratio} "
                                   f"{what}, but got {offset}")
            for d, st in enumerate(strides[:-1]):
                if st % ratio:
                    raise RuntimeError(f"self.stride({d}) must be divisible by {ratio} "
                                       f"{what}, but got {st}")
    return Tensor._from_buffer(x.device.backend.bitcast(x._data, new.np), x.device)


def view_strides(shape: tuple, strides: tuple, new_shape: tuple) -> tuple | None:
    """The strides reading ``new_shape`` from the memory of a (``shape``, ``strides``)
    layout in row-major order, or None when no such strides exist (PyTorch's rule: each run
    of the new dims must split or merge a run of old dims that are contiguous with each
    other; size-1 dims go anywhere).

    >>> view_strides((3, 4), (1, 3), (12,)) is None  # a transpose can't be flattened
    True
    >>> view_strides((4, 6), (12, 1), (2, 2, 3, 2))  # a row slice splits fine
    (24, 12, 2, 1)
    """
    shape, strides, new_shape = tuple(shape), tuple(strides), tuple(new_shape)
    if math.prod(shape) == 0 or not shape:  # nothing to read, or a single element
        return strides if shape == new_shape else contiguous_strides(new_shape)
    out = [0] * len(new_shape)
    view_d = len(new_shape) - 1
    base, tensor_numel, view_numel = strides[-1], 1, 1
    for d in range(len(shape) - 1, -1, -1):
        tensor_numel *= shape[d]
        # a chunk ends where the next dim out is not contiguous with this one
        if d == 0 or (shape[d - 1] != 1 and strides[d - 1] != tensor_numel * base):
            while view_d >= 0 and (view_numel < tensor_numel or new_shape[view_d] == 1):
                out[view_d] = view_numel * base
                view_numel *= new_shape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if d > 0:
                base, tensor_numel, view_numel = strides[d - 1], 1, 1
    return tuple(out) if view_d == -1 else None


def check_viewable(x, shape: tuple) -> None:
    """Raise PyTorch's error when ``x.view(shape)`` can't share ``x``'s memory."""
    strides = element_strides(x._data)
    if strides is None or x.device.backend.is_contiguous(x._data):
        return
    if view_strides(x.shape, strides, shape) is None:
        raise RuntimeError(
            f"view: shape {tuple(shape)} can't be read from a tensor of shape "
            f"{tuple(x.shape)} and strides {strides} without a copy: view size is not "
            "compatible with input tensor's size and stride (at least one dimension spans "
            "across two contiguous subspaces). Use .reshape(...) instead.")


class Reshape(Function):
    """A view of ``x`` at ``shape`` when the strides allow one (PyTorch's rule, see
    ``view_strides``), else a copy (``Tensor.view`` checks first and raises instead)."""

    @staticmethod
    def forward(ctx, x, shape):
        buf = x._data
        if ctx._record:
            ctx.shape = buf.shape
        backend = x.device.backend
        if not backend.is_contiguous(buf):
            strides = element_strides(buf)
            if strides is None or view_strides(buf.shape, strides, shape) is None:
                return wrap(backend.reshape(backend.copy(buf), shape), x.device)
        return _view(x, backend.reshape(buf, shape), Reshape, shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape), None


class Permute(Function):
    @staticmethod
    def forward(ctx, x, axes):
        if ctx._record:
            ctx.axes = axes
        return _view(x, x.device.backend.permute(x._data, axes), Permute, axes)

    @staticmethod
    def backward(ctx, g):
        inverse = [0] * len(ctx.axes)
        for i, a in enumerate(ctx.axes):
            inverse[a] = i
        return g.permute(*inverse), None


class Expand(Function):
    @staticmethod
    def forward(ctx, x, shape):
        if ctx._record:
            ctx.shape = x._data.shape
        return _view(x, x.device.backend.expand(x._data, shape), Expand, shape)

    @staticmethod
    def backward(ctx, g):
        return unbroadcast(g, ctx.shape), None


class GetItem(Function):
    """``x[index]`` for an index already converted to backend form (see tensor.py)."""

    @staticmethod
    def forward(ctx, x, index, basic):
        if ctx._record:
            ctx.shape, ctx.index, ctx.basic = x._data.shape, index, basic
        buf = x.device.backend.getitem(x._data, index)
        return _view(x, buf, GetItem, index, basic) if basic else wrap(buf, x.device)

    @staticmethod
    def backward(ctx, g):
        from .. import zeros
        base = zeros(ctx.shape, dtype=g.dtype, device=g.device)
        return IndexPut.apply(base, g, ctx.index, not ctx.basic), None, None


class IndexPut(Function):
    """A copy of ``x`` with ``value`` written (or added) at ``index``."""

    @staticmethod
    def forward(ctx, x, value, index, accumulate):
        ctx.index, ctx.accumulate = index, accumulate
        ctx.value_shape = getattr(value, "shape", None)
        val = value._data if hasattr(value, "_data") else value
        return wrap(x.device.backend.index_put(x._data, index, val, accumulate), x.device)

    @staticmethod
    def backward(ctx, g):
        gx = gv = None
        if ctx.needs_input_grad[0]:
            gx = g if ctx.accumulate else IndexPut.apply(g, 0.0, ctx.index, False)
        if ctx.needs_input_grad[1]:
            picked = GetItem.apply(g, ctx.index, False)
            gv = unbroadcast(picked, ctx.value_shape)
        return gx, gv, None, None


class Cast(Function):
    @staticmethod
    def forward(ctx, x, dtype):
        ctx.dtype = x.dtype
        return wrap(x.device.backend.astype(x._data, dtype.np), x.device)

    @staticmethod
    def backward(ctx, g):
        return g.to(ctx.dtype), None


class Copy(Function):
    """A contiguous copy (``clone``); with ``only_if_needed``, ``contiguous``."""

    @staticmethod
    def forward(ctx, x, only_if_needed=False):
        backend = x.device.backend
        if only_if_needed:
            buf = backend.contiguous(x._data)
            return _view(x, buf, Copy, True) if buf is x._data else wrap(buf, x.device)
        return wrap(backend.copy(x._data), x.device)

    @staticmethod
    def backward(ctx, g):
        return g, None


class Pad(Function):
    """Constant padding; ``pads[i] = (before, after)`` for axis i."""

    @staticmethod
    def forward(ctx, x, pads, value):
        ctx.pads = pads
        return wrap(x.device.backend.pad(x._data, pads, value), x.device)

    @staticmethod
    def backward(ctx, g):
        index = tuple(slice(b, n - a) for (b, a), n in zip(ctx.pads, g.shape))
        return g[index], None, None


class Flip(Function):
    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return wrap(x.device.backend.flip(x._data, axes), x.device)

    @staticmethod
    def backward(ctx, g):
        return g.flip(ctx.axes), None


class Cat(Function):
    """``Cat.apply(axis, *tensors)``: tensors joined along ``axis``."""

    @staticmethod
    def forward(ctx, axis, *tensors):
        ctx.axis = axis
        ctx.sizes = [t.shape[axis] for t in tensors]
        buf = tensors[0].device.backend.cat([t._data for t in tensors], axis)
        return wrap(buf, tensors[0].device)

    @staticmethod
    def backward(ctx, g):
        pieces = g.split(ctx.sizes, dim=ctx.axis)
        return (None,) + tuple(p if need else None
                               for p, need in zip(pieces, ctx.needs_input_grad[1:]))


class Split(Function):
    """Consecutive pieces of ``sizes`` along ``axis``, as views of ``x``; the backward joins
    the pieces' gradients with one ``Cat`` (zeros for pieces that got none)."""

    @staticmethod
    def forward(ctx, x, sizes, axis):
        ctx.axis = axis
        backend = x.device.backend
        pieces, start = [], 0
        for size in sizes:
            index = (slice(None),) * axis + (slice(start, start + size),)
            pieces.append(_view(x, backend.getitem(x._data, index), GetItem, index, True))
            start += size
        return tuple(pieces)

    @staticmethod
    def backward(ctx, *grads):
        return Cat.apply(ctx.axis, *grads), None, None


class Tile(Function):
    """``Tensor.repeat``: ``reps`` has at least x.ndim entries."""

    @staticmethod
    def forward(ctx, x, reps):
        ctx.shape = (1,) * (len(reps) - x.ndim) + tuple(x.shape)
        ctx.reps = reps
        ctx.orig = x.shape
        return wrap(x.device.backend.tile(x._data, reps), x.device)

    @staticmethod
    def backward(ctx, g):
        split = []
        for r, n in zip(ctx.reps, ctx.shape):
            split += [r, n]
        summed = g.reshape(split).sum(dim=tuple(range(0, len(split), 2)))
        return summed.reshape(ctx.orig), None


class Triangle(Function):
    """``tril`` (``upper=False``) or ``triu`` of the last two axes."""

    @staticmethod
    def forward(ctx, x, k, upper):
        ctx.k, ctx.upper = k, upper
        backend = x.device.backend
        fn = backend.triu if upper else backend.tril
        return wrap(fn(x._data, k), x.device)

    @staticmethod
    def backward(ctx, g):
        return Triangle.apply(g, ctx.k, ctx.upper), None, None


class Gather(Function):
    @staticmethod
    def forward(ctx, x, axis, index):
        ctx.shape, ctx.axis = x.shape, axis
        ctx.save_for_backward(index)
        return wrap(x.device.backend.gather(x._data, axis, index._data), x.device)

    @staticmethod
    def backward(ctx, g):
        from .. import zeros
        (index,) = ctx.saved_tensors
        base = zeros(ctx.shape, dtype=g.dtype, device=g.device)
        return ScatterAdd.apply(base, ctx.axis, index, g), None, None


class ScatterAdd(Function):
    @staticmethod
    def forward(ctx, x, axis, index, src):
        ctx.axis, ctx.src_shape = axis, src.shape
        ctx.save_for_backward(index)
        buf = x.device.backend.scatter_add(x._data, axis, index._data, src._data)
        return wrap(buf, x.device)

    @staticmethod
    def backward(ctx, g):
        (index,) = ctx.saved_tensors
        gsrc = None
        if ctx.needs_input_grad[3]:
            gsrc = Gather.apply(g, ctx.axis, index)
            if gsrc.shape != ctx.src_shape:  # src entries outside index's extent are unused
                pads = tuple((0, n - m) for n, m in zip(ctx.src_shape, gsrc.shape))
                gsrc = Pad.apply(gsrc, pads, 0.0)
        return g, None, None, gsrc


class IndexSelect(Function):
    @staticmethod
    def forward(ctx, x, axis, index):
        ctx.shape, ctx.axis = x.shape, axis
        ctx.save_for_backward(index)
        return wrap(x.device.backend.index_select(x._data, axis, index._data), x.device)

    @staticmethod
    def backward(ctx, g):
        from .. import zeros
        (index,) = ctx.saved_tensors
        base = zeros(ctx.shape, dtype=g.dtype, device=g.device)
        return IndexAdd.apply(base, ctx.axis, index, g), None, None


class IndexAdd(Function):
    @staticmethod
    def forward(ctx, x, axis, index, src):
        ctx.axis = axis
        ctx.save_for_backward(index)
        buf = x.device.backend.index_add(x._data, axis, index._data, src._data)
        return wrap(buf, x.device)

    @staticmethod
    def backward(ctx, g):
        (index,) = ctx.saved_tensors
        gsrc = IndexSelect.apply(g, ctx.axis, index) if ctx.needs_input_grad[3] else None
        return g, None, None, gsrc


class ToDevice(Function):
    """A copy of ``x`` on another device."""

    @staticmethod
    def forward(ctx, x, device):
        ctx.device = x.device
        host = x.device.backend.to_numpy(x._data)
        return wrap(device.backend.from_numpy(host), device)

    @staticmethod
    def backward(ctx, g):
        return g.to(ctx.device), None
