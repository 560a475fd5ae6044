"""Views and basic indexing: reshape, permute, expand, slicing (no kernels: new strides)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .array import DeviceArray, broadcast_strides


def _view_strides(shape: tuple, strides: tuple, new_shape: tuple) -> tuple | None:
    """Strides that read ``new_shape`` from the same memory in row-major order, or None
    when the layout can't be reshaped without a copy (PyTorch's rule, shared with
    ``Tensor.view``'s check)."""
    from ...ops.movement import view_strides
    return view_strides(shape, strides, new_shape)


def _resolve_shape(shape: tuple, size: int, op: str) -> tuple:
    shape = tuple(int(s) for s in shape)
    if -1 in shape:
        known = math.prod(s for s in shape if s != -1)
        shape = tuple(size // known if s == -1 and known else s for s in shape)
    if math.prod(shape) != size:
        raise ValueError(f"{op}: can't reshape {size} elements to {shape}")
    return shape


class ViewOps:
    """reshape, permute, expand, getitem/setitem with basic indices."""

    def reshape(self, x, shape) -> DeviceArray:
        shape = _resolve_shape(tuple(shape), x.size, "reshape")
        if x.is_contiguous:
            return x.view(shape, self.strides_of(shape))
        strides = _view_strides(x.shape, x.strides, shape)
        if strides is None:
            return self.copy(x).view(shape, self.strides_of(shape))
        return x.view(shape, strides)

    def bitcast(self, x: DeviceArray, dtype: Any) -> DeviceArray:
        new = np.dtype(dtype)
        old = x.dtype.itemsize
        shape, strides = list(x.shape), list(x.strides)
        if new.itemsize < old:      # each element becomes `ratio` narrower ones
            ratio = old // new.itemsize
            strides = [st * ratio for st in strides[:-1]] + [1]
            shape[-1] *= ratio
        elif new.itemsize > old:    # `ratio` neighbours become one wider element
            ratio = new.itemsize // old
            strides = [st // ratio for st in strides[:-1]] + [1]
            shape[-1] //= ratio
        return DeviceArray(x.runtime, x.mem, x.ptr, tuple(shape), tuple(strides), new)

    def permute(self, x, axes) -> DeviceArray:
        axes = tuple(axes)
        return x.view(tuple(x.shape[a] for a in axes), tuple(x.strides[a] for a in axes))

    def expand(self, x, shape) -> DeviceArray:
        shape, strides = broadcast_strides(x, tuple(shape))
        return x.view(shape, strides)

    def basic_view(self, x: DeviceArray, index: tuple) -> DeviceArray | None:
        """The view ``x[index]`` for ints, slices, None and Ellipsis; None if the index has
        arrays (advanced indexing)."""
        if any(isinstance(i, (DeviceArray, np.ndarray, list)) for i in index):
            return None
        used = sum(1 for i in index if i is not None and i is not Ellipsis)
        if used > x.ndim:
            raise IndexError(f"too many indices: {used} for a tensor of {x.ndim} dims")
        if Ellipsis in index:
            at = index.index(Ellipsis)
            index = index[:at] + (slice(None),) * (x.ndim - used) + index[at + 1:]
        index = index + (slice(None),) * (x.ndim - sum(1 for i in index if i is not None))
        shape, strides, offset, axis = [], [], 0, 0
        for item in index:
            if item is None:
                shape.append(1)
                strides.append(0)
                continue
            n, s = x.shape[axis], x.strides[axis]
            if isinstance(item, slice):
                start, stop, step = item.indices(n)
                count = len(range(start, stop, step))
                shape.append(count)
                strides.append(s * step)
                offset += start * s if count else 0
            else:
                i = int(item)
                if not -n <= i < n:
                    raise IndexError(f"index {i} is out of bounds for dimension {axis} with "
                                     f"size {n}")
                offset += (i % n) * s
            axis += 1
        return x.view(tuple(shape), tuple(strides), offset)

    def getitem(self, x, index) -> DeviceArray:
        view = self.basic_view(x, tuple(index))
        if view is not None:
            return view
        return self.advanced_getitem(x, tuple(index))

    def setitem(self, x, index, value) -> None:
        view = self.basic_view(x, tuple(index))
        if view is None:
            self.advanced_setitem(x, tuple(index), value)
            return
        if isinstance(value, np.ndarray) and value.ndim:
            value = self.from_numpy(value)
        self.assign(view, value if isinstance(value, DeviceArray) else _host_value(value))


def _host_value(value: Any) -> Any:
    return value.item() if isinstance(value, np.ndarray) and value.ndim == 0 else value
