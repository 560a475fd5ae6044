"""The CUDA backend: the op vocabulary (``backends/base.py``) over ``DeviceArray`` buffers,
each primitive one or a few launches of our kernels (``kernels/*.cu``).

The class is put together from one mixin per kernel family (``ops_*.py``); this file holds
what they share: the runtime, compiled modules, allocation and host transfers.

>>> import lightgrad as lg                                    # doctest: +SKIP
>>> lg.ones(3, device="cuda").sum().item()                    # doctest: +SKIP
3.0
"""
from __future__ import annotations

import sys
from typing import Any

import ml_dtypes
import numpy as np

from ..base import Backend
from . import launch
from .array import DeviceArray, contiguous_strides
from .runtime import CudaError, Kernel, Module, OutOfMemoryError, get_runtime
from .source import enum_values, kernel_file

SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64",
          np.dtype(np.float16): "f16", np.dtype(ml_dtypes.bfloat16): "bf16",
          np.dtype(np.int64): "i64", np.dtype(np.int32): "i32", np.dtype(np.int16): "i16",
          np.dtype(np.int8): "i8", np.dtype(np.uint8): "u8", np.dtype(np.bool_): "b8"}
FLOATS = ("f32", "f64", "f16", "bf16")
HALF = (np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16))


def suffix(dtype: Any, op: str) -> str:
    """The kernel-name suffix of a dtype ("f32", "i64", ...)."""
    found = SUFFIX.get(np.dtype(dtype))
    if found is None:
        raise TypeError(f"{op}: dtype {np.dtype(dtype)} is not supported on cuda")
    return found


class BackendCore(Backend):
    """Shared plumbing of the CUDA backend's mixins."""

    name = "cuda"

    def __init__(self, index: int = 0):
        self.index = index
        self.rt = get_runtime()
        self._modules: dict[str, Module] = {}
        self._kernels: dict[tuple, Kernel] = {}
        self._enums: dict[tuple, dict] = {}

    # --- kernels
    def module(self, family: str) -> Module:
        """The compiled ``kernels/<family>.cu``."""
        module = self._modules.get(family)
        if module is None:
            source, filename = kernel_file(family)
            module = self._modules[family] = self.rt.compile(source, filename=filename)
        return module

    def kernel(self, family: str, name: str) -> Kernel:
        key = (family, name)
        found = self._kernels.get(key)
        if found is None:
            found = self._kernels[key] = self.module(family).get_function(name)
        return found

    def enum(self, family: str, enum: str, prefix: str) -> dict[str, int]:
        """Op codes of ``enum`` in ``kernels/<family>.cu``, keyed without ``prefix``."""
        key = (family, enum)
        if key not in self._enums:
            source, _ = kernel_file(family)
            self._enums[key] = {k[len(prefix):]: v
                                for k, v in enum_values(source, enum).items()}
        return self._enums[key]

    def launch_elementwise(self, kernel: Kernel, n: int, args: list) -> None:
        if n == 0:
            return
        grid, block = launch.elementwise(n, self.rt.multiprocessor_count)
        kernel(grid, block, args)

    # --- buffers
    def empty(self, shape: tuple, dtype: Any) -> DeviceArray:
        try:
            return DeviceArray.empty(self.rt, shape, dtype)
        except OutOfMemoryError as e:
            op = sys._getframe(1).f_code.co_name  # the primitive that asked
            raise OutOfMemoryError(f"{op}: {e} (a buffer of shape {tuple(shape)}, "
                                   f"{np.dtype(dtype)})") from None

    def from_numpy(self, array: Any) -> DeviceArray:
        host = np.asarray(array)
        if not host.flags.c_contiguous:  # (np.ascontiguousarray would make 0-d into 1-d)
            host = host.copy(order="C")
        out = self.empty(host.shape, host.dtype)
        if host.nbytes:
            self.rt.htod(out.ptr, host)
        return out

    def to_numpy(self, x: DeviceArray) -> np.ndarray:
        src = x if x.is_contiguous else self.copy(x)
        host = np.empty(x.shape, dtype=x.dtype)
        if host.nbytes:
            self.rt.dtoh(host, src.ptr)
        return host

    def import_dlpack(self, obj: Any) -> DeviceArray:
        """A DeviceArray sharing the memory of a GPU array (CuPy, PyTorch...) by DLPack."""
        if self.rt.emulated:
            raise CudaError(f"from_dlpack: a {type(obj).__name__} on a GPU can't be used by "
                            "the CUDA emulator; copy it to the CPU first")
        arr = self.rt.cp.from_dlpack(obj)
        item = arr.dtype.itemsize
        return DeviceArray(self.rt, arr, arr.data.ptr, tuple(arr.shape),
                           tuple(s // item for s in arr.strides), np.dtype(arr.dtype))

    def check(self, op: str, *bufs: Any) -> None:
        for b in bufs:
            if b is not None and not isinstance(b, (DeviceArray, int, float, bool)):
                raise CudaError(f"{op}: expected cuda buffers, got {type(b).__name__}")

    @staticmethod
    def strides_of(shape: tuple) -> tuple:
        return contiguous_strides(shape)
