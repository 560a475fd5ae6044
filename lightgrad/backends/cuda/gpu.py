"""The GPU runtime: NVRTC compiles, the driver API (``cuda-bindings``) loads and launches,
CuPy holds device memory (its caching pool) and reaches cuBLAS. The kernels are ours.

Install with ``pip install 'lightgrad[cuda]'`` and the CuPy wheel that fits the CUDA driver
(``cupy-cuda12x`` or ``cupy-cuda13x``).
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import nvrtc
from .runtime import CompileError, CudaError, Module, OutOfMemoryError, Runtime, cache_dir, \
    cache_key

_INSTALL = ("install CuPy for your CUDA driver: pip install 'lightgrad[cuda]' cupy-cuda12x "
            "(CUDA 12) or cupy-cuda13x (CUDA 13); or set LIGHTGRAD_CUDA=emulate to run the "
            "kernels on the CPU emulator")


class _Memory:
    """A device allocation from CuPy's pool, counted in memory_allocated()."""

    __slots__ = ("pointer", "ptr", "nbytes", "runtime", "__weakref__")

    def __init__(self, runtime: "GPURuntime", pointer: Any, nbytes: int):
        self.pointer, self.ptr, self.nbytes, self.runtime = pointer, pointer.ptr, nbytes, runtime
        runtime.count_alloc(nbytes)

    def __del__(self) -> None:
        if hasattr(self, "nbytes"):  # not when the allocation itself failed
            self.runtime.allocated -= self.nbytes


class GPUModule(Module):
    """A cubin loaded with the driver API; launches pack arguments for cuLaunchKernel."""

    def __init__(self, runtime: "GPURuntime", source: str, handle: Any):
        super().__init__(runtime, source, handle)
        self._functions: dict[str, Any] = {}

    def function(self, name: str, shared: int) -> Any:
        from cuda.bindings import driver
        fn = self._functions.get(name)
        if fn is None:
            err, fn = driver.cuModuleGetFunction(self.handle, name.encode())
            _check(err, f"kernel {name}: cuModuleGetFunction")
            self._functions[name] = fn
        if shared > 48 * 1024:  # opt in to more than the default dynamic shared memory
            attr = driver.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
            (err,) = driver.cuFuncSetAttribute(fn, attr, shared)
            _check(err, f"kernel {name}: {shared} bytes of shared memory")
        return fn

    def launch(self, kernel, grid, block, shared, packed) -> None:
        from cuda.bindings import driver
        holders = [np.array(v) for v in packed]  # each argument's bytes, kept alive
        params = np.array([h.ctypes.data for h in holders] or [0], dtype=np.uint64)
        stream = self.runtime.cp.cuda.get_current_stream().ptr
        (err,) = driver.cuLaunchKernel(self.function(kernel.name, shared), *grid, *block,
                                       shared, stream, params.ctypes.data, 0)
        _check(err, f"kernel {kernel.name} (grid {grid}, block {block}, shared {shared} B) "
                    "launch")


def _check(err: Any, what: str) -> None:
    from cuda.bindings import driver
    if err != driver.CUresult.CUDA_SUCCESS:
        _, text = driver.cuGetErrorString(err)
        raise CudaError(f"{what} failed: {err.name}: "
                        f"{text.decode() if isinstance(text, bytes) else text}")


class GPURuntime(Runtime):
    """An NVIDIA GPU through CuPy."""

    name = "cuda"

    def __init__(self, device: int = 0):
        super().__init__()
        try:
            import cupy
        except ImportError:
            raise CudaError(f"cuda: CuPy is not installed; {_INSTALL}") from None
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as e:  # noqa: BLE001
            raise CudaError(f"cuda: no usable GPU ({e}); {_INSTALL}") from None
        if count == 0:
            raise CudaError(f"cuda: no GPU found; {_INSTALL}")
        self.cp = cupy
        props = cupy.cuda.runtime.getDeviceProperties(device)
        self.arch = f"sm_{props['major']}{props['minor']}"
        self.multiprocessor_count = int(props["multiProcessorCount"])
        self.max_shared_memory = int(props["sharedMemPerBlock"])
        self._name = props["name"].decode() if isinstance(props["name"], bytes) \
            else str(props["name"])
        self._count = count
        cupy.cuda.Device(device).use()
        self._context_anchor = cupy.cuda.alloc(1)  # the runtime's primary context is now
        # created and current: the driver API calls below run in it

    def device_count(self) -> int:
        return self._count

    def device_name(self) -> str:
        return self._name

    # --- memory
    def alloc(self, nbytes: int) -> _Memory:
        try:
            return _Memory(self, self.cp.cuda.alloc(int(nbytes)), int(nbytes))
        except self.cp.cuda.memory.OutOfMemoryError:
            free = self.free_memory()
            raise OutOfMemoryError(f"cuda: out of memory allocating {nbytes:,} bytes "
                                   f"({free:,} bytes free on the device, "
                                   f"{self.allocated:,} held by lightgrad tensors)") from None

    def free_memory(self) -> int:
        return int(self.cp.cuda.runtime.memGetInfo()[0])

    def empty_cache(self) -> None:
        self.cp.get_default_memory_pool().free_all_blocks()

    def htod(self, ptr: int, host: np.ndarray) -> None:
        host = np.ascontiguousarray(host)
        self.cp.cuda.runtime.memcpy(ptr, host.ctypes.data, host.nbytes, 1)

    def dtoh(self, host: np.ndarray, ptr: int) -> None:
        self.cp.cuda.runtime.memcpy(host.ctypes.data, ptr, host.nbytes, 2)

    def dtod(self, dst: int, src: int, nbytes: int) -> None:
        self.cp.cuda.runtime.memcpy(dst, src, nbytes, 3)

    def synchronize(self) -> None:
        self.cp.cuda.runtime.deviceSynchronize()

    def cupy_view(self, arr: Any) -> Any:
        """A CuPy array over a DeviceArray's memory (no copy), for cuBLAS and DLPack."""
        cp = self.cp
        base = arr.mem
        owner_ptr, size = (base.ptr, base.nbytes) if isinstance(base, _Memory) else \
            (arr.ptr, arr.nbytes)
        memory = cp.cuda.UnownedMemory(owner_ptr, size, base)
        pointer = cp.cuda.MemoryPointer(memory, arr.ptr - owner_ptr)
        itemsize = arr.dtype.itemsize
        return cp.ndarray(arr.shape, dtype=arr.dtype, memptr=pointer,
                          strides=tuple(s * itemsize for s in arr.strides))

    def gemm(self, a, b, out) -> None:
        """cuBLAS through CuPy's matmul."""
        self.cp.matmul(self.cupy_view(a), self.cupy_view(b), out=self.cupy_view(out))

    # --- compile
    def _compile(self, source: str, options: tuple, filename: str) -> Module:
        if not nvrtc.available():
            raise CompileError(f"{filename}: compiling kernels needs NVRTC and the driver API "
                               "bindings: pip install cuda-bindings nvidia-cuda-nvrtc (both in "
                               "lightgrad[cuda])")
        from cuda.bindings import driver
        key = cache_key("cubin", source, options, self.arch)
        path = cache_dir() / f"{key}.cubin"
        if path.exists():
            binary = path.read_bytes()
        else:
            binary = nvrtc.compile_source(source, filename, self.arch, options).binary
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(binary)
            tmp.replace(path)
        image = np.frombuffer(binary, dtype=np.uint8)
        err, handle = driver.cuModuleLoadData(image.ctypes.data)
        _check(err, f"{filename}: cuModuleLoadData")
        return GPUModule(self, source, handle)
