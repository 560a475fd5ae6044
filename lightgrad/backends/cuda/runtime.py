"""The CUDA runtime layer: compile a kernel source once, launch kernels by name.

Two implementations share this interface: ``GPURuntime`` (NVRTC and CuPy on an NVIDIA GPU,
``gpu.py``) and ``EmulatorRuntime`` (the host C++ compiler and host threads,
``emulator/runtime.py``). ``LIGHTGRAD_CUDA=emulate`` picks the emulator. Everything above
(the backend, user kernels) is the same code on both.

Compiled kernels are cached on disk under ``$LIGHTGRAD_CUDA_CACHE`` (default
``~/.cache/lightgrad/cuda``), keyed by the source's hash, the architecture and the options.

>>> rt = get_runtime()                                    # doctest: +SKIP
>>> module = rt.compile('extern "C" __global__ void k(float* x) { x[0] = 1; }')  # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .source import LAYOUT_DIMS, STRUCTS, Param, parse_kernels


class CudaError(RuntimeError):
    """A CUDA failure: no device, a launch that failed, an invalid configuration."""


class CompileError(CudaError):
    """A kernel source that does not compile: the file, the line and the compiler's words."""


class OutOfMemoryError(CudaError, MemoryError):
    """The device has no room for an allocation."""


def cache_dir() -> Path:
    """Where compiled kernels are kept (``LIGHTGRAD_CUDA_CACHE`` overrides)."""
    root = os.environ.get("LIGHTGRAD_CUDA_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "lightgrad", "cuda")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_key(*parts: Any) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(repr(part).encode() if not isinstance(part, bytes) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:32]


def as_dim3(value: Any, what: str, kernel: str) -> tuple[int, int, int]:
    """(x, y, z) from an int or a tuple of up to three ints, each at least 1."""
    dims = (value,) if isinstance(value, (int, np.integer)) else \
        tuple(value) if isinstance(value, (tuple, list)) else ()
    if not 1 <= len(dims) <= 3 or not all(isinstance(d, (int, np.integer)) for d in dims):
        raise CudaError(f"{kernel}: {what} must be an int or a tuple of 1 to 3 ints, got "
                        f"{value!r}")
    dims = tuple(int(d) for d in dims) + (1,) * (3 - len(dims))
    if min(dims) < 1:
        raise CudaError(f"{kernel}: {what} {dims} has a dimension below 1")
    return dims


def layout(shape: Sequence[int], strides: Sequence[int]) -> np.void:
    """An ``lg_layout`` struct value (see prelude.cuh) for a strided view."""
    if len(shape) > LAYOUT_DIMS:
        raise CudaError(f"a view of {len(shape)} dims after merging contiguous axes is more "
                        f"than the kernels' {LAYOUT_DIMS}; call .contiguous() first")
    value = np.zeros((), dtype=STRUCTS["lg_layout"])
    value["ndim"] = len(shape)
    value["shape"][:len(shape)] = shape
    value["stride"][:len(shape)] = strides
    return value[()]


class Kernel:
    """A compiled kernel: ``kernel(grid, block, args, shared_mem=0)`` launches it.

    Arguments follow the kernel's declared parameters: a pointer takes a device tensor or
    buffer (its dtype must match the pointed-to type; ``void*`` takes any) or a raw address;
    a scalar takes a Python or NumPy number, converted to the declared C type; an
    ``lg_layout`` takes what ``runtime.layout`` makes. Wrong counts, dtypes and devices
    are errors that name the kernel and the parameter.
    """

    def __init__(self, module: "Module", name: str, params: list[Param]):
        self.module, self.name, self.params = module, name, params

    def __repr__(self) -> str:
        sig = ", ".join(f"{p.ctype}{'*' if p.kind == 'pointer' else ''} {p.name}"
                        for p in self.params)
        return f"<Kernel {self.name}({sig})>"

    def pack(self, args: Sequence[Any]) -> list:
        """The arguments as NumPy scalars of the declared types (pointers as uint64)."""
        if len(args) != len(self.params):
            raise TypeError(f"kernel {self.name}: takes {len(self.params)} arguments "
                            f"({', '.join(p.name for p in self.params)}), got {len(args)}")
        return [self._pack_one(p, a) for p, a in zip(self.params, args)]

    def _pack_one(self, p: Param, arg: Any) -> Any:
        if p.kind == "pointer":
            return np.uint64(self.module.runtime.pointer_of(arg, p, self.name))
        if p.kind == "struct":
            if not (isinstance(arg, np.void) and arg.dtype == p.dtype):
                raise TypeError(f"kernel {self.name}: parameter {p.name} is an {p.ctype}; "
                                f"pass lightgrad.backends.cuda.runtime.layout(shape, strides)")
            return arg
        if hasattr(arg, "_data") or hasattr(arg, "ptr"):
            raise TypeError(f"kernel {self.name}: parameter {p.name} is a {p.ctype} value, "
                            "got an array; pass a number")
        if isinstance(arg, (bool, np.bool_)) or isinstance(arg, (int, float, np.number)):
            if p.dtype.kind in "iu" and not float(arg).is_integer():
                raise TypeError(f"kernel {self.name}: parameter {p.name} is a {p.ctype}, got "
                                f"the non-integer {arg!r}")
            if p.dtype.kind in "iu":
                info = np.iinfo(p.dtype)
                if not info.min <= int(arg) <= info.max:
                    raise OverflowError(f"kernel {self.name}: parameter {p.name} is a "
                                        f"{p.ctype}; {arg!r} does not fit")
                return p.dtype.type(int(arg))
            return p.dtype.type(arg)
        raise TypeError(f"kernel {self.name}: parameter {p.name} is a {p.ctype}, got "
                        f"{type(arg).__name__}")

    def __call__(self, grid: Any, block: Any, args: Sequence[Any], shared_mem: int = 0) -> None:
        grid3, block3 = as_dim3(grid, "grid", self.name), as_dim3(block, "block", self.name)
        self.module.runtime.check_launch(self.name, grid3, block3, int(shared_mem))
        self.module.launch(self, grid3, block3, int(shared_mem), self.pack(args))


class Module:
    """Kernels compiled from one source (CuPy's RawModule spelling: ``get_function``)."""

    def __init__(self, runtime: "Runtime", source: str, handle: Any):
        self.runtime, self.handle = runtime, handle
        self.kernels = parse_kernels(source)

    def get_function(self, name: str) -> Kernel:
        if name not in self.kernels:
            raise AttributeError(f"no kernel named {name!r} in this module; it has "
                                 f"{', '.join(sorted(self.kernels)) or 'none'}")
        return Kernel(self, name, self.kernels[name])

    def launch(self, kernel: Kernel, grid: tuple, block: tuple, shared: int,
               packed: list) -> None:
        raise NotImplementedError


class Runtime:
    """What a CUDA runtime offers the backend: memory, copies, compile, launch, GEMM."""

    name = "abstract"
    emulated = False
    max_threads_per_block = 1024
    max_block_dims = (1024, 1024, 64)
    max_grid_dims = (2**31 - 1, 65535, 65535)
    max_shared_memory = 48 * 1024
    multiprocessor_count = 1
    arch = "sm_80"

    def __init__(self) -> None:
        self._modules: dict[str, Module] = {}
        self.allocated = 0
        self.peak_allocated = 0

    # --- memory
    def alloc(self, nbytes: int) -> Any:
        """Device memory of at least ``nbytes`` with an integer ``.ptr``."""
        raise NotImplementedError

    def count_alloc(self, nbytes: int) -> None:
        self.allocated += nbytes
        self.peak_allocated = max(self.peak_allocated, self.allocated)

    def htod(self, ptr: int, host: np.ndarray) -> None:
        raise NotImplementedError

    def dtoh(self, host: np.ndarray, ptr: int) -> None:
        raise NotImplementedError

    def dtod(self, dst: int, src: int, nbytes: int) -> None:
        raise NotImplementedError

    def synchronize(self) -> None:
        pass

    def device_count(self) -> int:
        return 1

    def device_name(self) -> str:
        return self.name

    def empty_cache(self) -> None:
        pass

    def free_memory(self) -> int | None:
        return None

    def pointer_of(self, arg: Any, param: Param, kernel: str) -> int:
        """The device address an argument passes for a pointer parameter (checked)."""
        from .array import device_pointer
        return device_pointer(arg, param, kernel, self)

    # --- compile and launch
    def compile(self, source: str, options: Sequence[str] = (), filename: str = "kernel.cu"
                ) -> Module:
        """A Module of every kernel in ``source``; compiled once per source and options."""
        key = cache_key(source, tuple(options), filename)
        module = self._modules.get(key)
        if module is None:
            module = self._modules[key] = self._compile(source, tuple(options), filename)
        return module

    def _compile(self, source: str, options: tuple, filename: str) -> Module:
        raise NotImplementedError

    def check_launch(self, name: str, grid: tuple, block: tuple, shared: int) -> None:
        threads = block[0] * block[1] * block[2]
        if threads > self.max_threads_per_block or any(
                b > m for b, m in zip(block, self.max_block_dims)):
            raise CudaError(f"kernel {name}: block {block} has {threads} threads; the limit "
                            f"is {self.max_threads_per_block} per block and "
                            f"{self.max_block_dims} per dimension")
        if any(g > m for g, m in zip(grid, self.max_grid_dims)):
            raise CudaError(f"kernel {name}: grid {grid} is over the limit "
                            f"{self.max_grid_dims}")
        if not 0 <= shared <= self.max_shared_memory:
            raise CudaError(f"kernel {name}: {shared} bytes of dynamic shared memory asked; "
                            f"the limit is {self.max_shared_memory}")

    # --- cuBLAS (or its stand-in)
    def gemm(self, a: Any, b: Any, out: Any) -> None:
        """``out = a @ b`` for device arrays (batched, broadcast), by the vendor BLAS."""
        raise NotImplementedError


_runtime: Runtime | None = None


def emulation_requested() -> bool:
    return os.environ.get("LIGHTGRAD_CUDA", "").strip().lower() in ("emulate", "emulator", "emu")


def get_runtime() -> Runtime:
    """The process's CUDA runtime: the emulator when ``LIGHTGRAD_CUDA=emulate``, else the
    GPU through CuPy (a clear error when there is no GPU or no CuPy)."""
    global _runtime
    if _runtime is None:
        if emulation_requested():
            from .emulator.runtime import EmulatorRuntime
            _runtime = EmulatorRuntime()
        else:
            from .gpu import GPURuntime
            _runtime = GPURuntime()
    return _runtime
