"""``DeviceArray``: the CUDA backend's buffer, a strided view of device memory.

It holds the allocation (kept alive by reference), the address of element 0, the shape,
the strides in elements and the dtype. Reshape, permute, expand and basic slicing make new
views in Python without touching the device; kernels receive (pointer, lg_layout).

>>> from lightgrad.backends.cuda.runtime import get_runtime  # doctest: +SKIP
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..base import contiguous_strides
from .runtime import layout


class DeviceArray:
    """A strided view of device memory (strides in elements; may be 0 or negative)."""

    __slots__ = ("mem", "ptr", "shape", "strides", "dtype", "runtime", "__weakref__")

    def __init__(self, runtime: Any, mem: Any, ptr: int, shape: tuple, strides: tuple,
                 dtype: np.dtype):
        self.runtime, self.mem, self.ptr = runtime, mem, ptr
        self.shape, self.strides, self.dtype = shape, strides, dtype

    @classmethod
    def empty(cls, runtime: Any, shape: tuple, dtype: Any) -> "DeviceArray":
        dtype = np.dtype(dtype)
        shape = tuple(int(s) for s in shape)
        mem = runtime.alloc(max(math.prod(shape), 1) * dtype.itemsize)
        return cls(runtime, mem, mem.ptr, shape, contiguous_strides(shape), dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def is_contiguous(self) -> bool:
        expected = 1
        for n, s in zip(reversed(self.shape), reversed(self.strides)):
            if n != 1 and s != expected:
                return False
            expected *= n
        return True

    def view(self, shape: tuple, strides: tuple, offset: int = 0) -> "DeviceArray":
        """Another view of the same memory, ``offset`` elements further."""
        return DeviceArray(self.runtime, self.mem, self.ptr + offset * self.dtype.itemsize,
                           tuple(shape), tuple(strides), self.dtype)

    def layout(self, shape: tuple | None = None) -> np.void:
        """The ``lg_layout`` of this view read at ``shape`` (broadcast axes get stride 0),
        with mergeable axes merged: a contiguous view is (ndim 1, stride 1)."""
        return layout(*merged_layout(*broadcast_strides(self, shape or self.shape)))

    def __repr__(self) -> str:
        return (f"DeviceArray(shape={self.shape}, dtype={self.dtype}, strides={self.strides}, "
                f"{self.runtime.name})")

    def __reduce__(self) -> tuple:
        # pickle and deepcopy go through the host: a copy of the values on the device
        return _from_host, (_backend().to_numpy(self),)

    def __deepcopy__(self, memo: dict) -> "DeviceArray":
        return _backend().copy(self)

    def __dlpack__(self, **kwargs: Any) -> Any:
        """DLPack export without a copy (on the emulator: host memory, a CPU capsule)."""
        if self.runtime.emulated:
            return self.runtime.host_view(self).__dlpack__(**kwargs)
        return self.runtime.cupy_view(self).__dlpack__(**kwargs)

    def __dlpack_device__(self) -> tuple:
        return (1, 0) if self.runtime.emulated else (2, 0)

    # NumPy interop for the parts of lightgrad that ask a buffer for these
    @property
    def T(self) -> "DeviceArray":
        return self.view(self.shape[::-1], self.strides[::-1])

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d device array")
        return self.shape[0]


def _backend() -> Any:
    from .. import device
    return device("cuda").backend


def _from_host(array: np.ndarray) -> DeviceArray:
    return _backend().from_numpy(array)


def broadcast_strides(x: DeviceArray, shape: tuple) -> tuple[tuple, tuple]:
    """(shape, strides) reading ``x`` broadcast to ``shape`` (NumPy's rules)."""
    shape = tuple(shape)
    if shape == x.shape:
        return shape, x.strides
    lead = len(shape) - x.ndim
    if lead < 0:
        raise ValueError(f"can't broadcast shape {x.shape} to {shape}")
    strides = [0] * lead
    for n, have, s in zip(shape[lead:], x.shape, x.strides):
        if have == n:
            strides.append(s)
        elif have == 1:
            strides.append(0)
        else:
            raise ValueError(f"can't broadcast shape {x.shape} to {shape}")
    return shape, tuple(strides)


def merged_layout(shape: tuple, strides: tuple) -> tuple[tuple, tuple]:
    """The same element order with size-1 axes dropped and neighbouring axes merged where
    one step of the outer equals a full run of the inner."""
    dims = [(n, s) for n, s in zip(shape, strides) if n != 1]
    if not dims:
        return (1,), (1,)
    out = [list(dims[-1])]
    for n, s in reversed(dims[:-1]):
        inner = out[-1]
        if s == inner[0] * inner[1]:
            inner[0] *= n
        else:
            out.append([n, s])
    out.reverse()
    return tuple(n for n, _ in out), tuple(s for _, s in out)


def device_pointer(arg: Any, param: Any, kernel: str, runtime: Any) -> int:
    """The address a kernel argument passes for a pointer parameter, after checking it."""
    from ...tensor import Tensor
    what = f"kernel {kernel}: parameter {param.name} ({param.ctype}*)"
    if isinstance(arg, Tensor):
        if arg.device.type != "cuda":
            raise TypeError(f"{what} got a tensor on {arg.device}; move it with .cuda()")
        arg = arg._data
    if arg is None:
        return 0
    if isinstance(arg, (int, np.integer)) and not isinstance(arg, bool):
        return int(arg)
    if isinstance(arg, DeviceArray):
        if arg.runtime is not runtime:
            raise TypeError(f"{what} got an array of another runtime")
        if param.dtype is not None and arg.dtype != param.dtype:
            raise TypeError(f"{what} got an array of dtype {arg.dtype}; the kernel reads "
                            f"{param.dtype}")
        return arg.ptr
    foreign = foreign_pointer(arg, runtime)
    if foreign is not None:
        ptr, dtype = foreign
        if param.dtype is not None and dtype != param.dtype:
            raise TypeError(f"{what} got an array of dtype {dtype}; the kernel reads "
                            f"{param.dtype}")
        return ptr
    raise TypeError(f"{what} got {type(arg).__name__}; pass a CUDA tensor, a device array "
                    "or an address")


def foreign_pointer(arg: Any, runtime: Any) -> tuple[int, np.dtype] | None:
    """(address, dtype) of a CuPy array, a PyTorch CUDA tensor or any object with
    ``__cuda_array_interface__`` or DLPack (on the emulator: a NumPy array or a PyTorch CPU
    tensor, host memory); None for anything else."""
    if runtime.emulated and isinstance(arg, np.ndarray):
        return arg.ctypes.data, arg.dtype
    try:
        iface = getattr(arg, "__cuda_array_interface__", None)
    except Exception:  # noqa: BLE001  (some libraries raise for arrays in host memory)
        iface = None
    if iface is not None:
        return int(iface["data"][0]), np.dtype(iface["typestr"])
    return _dlpack_pointer(arg, runtime)


def _dlpack_pointer(arg: Any, runtime: Any) -> tuple[int, np.dtype] | None:
    """(address, dtype) of an array that speaks ``__array_interface__`` or DLPack: host
    arrays (a PyTorch CPU tensor, say) on the emulator, GPU arrays through CuPy on a GPU."""
    if runtime.emulated:
        iface = getattr(arg, "__array_interface__", None)
        if isinstance(iface, dict) and iface.get("data") is not None:
            return int(iface["data"][0]), np.dtype(iface["typestr"])
    if not hasattr(arg, "__dlpack__") or not hasattr(arg, "__dlpack_device__"):
        return None
    try:
        on_host = arg.__dlpack_device__()[0] in (1, 3)  # kDLCPU, kDLCUDAHost
        if runtime.emulated and on_host:
            host = np.from_dlpack(arg)
            return host.ctypes.data, host.dtype
        if not runtime.emulated and not on_host:
            device = runtime.cp.from_dlpack(arg)
            return int(device.data.ptr), np.dtype(device.dtype)
    except (BufferError, RuntimeError, TypeError, ValueError):
        return None
    return None
