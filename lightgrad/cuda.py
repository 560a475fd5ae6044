"""``lightgrad.cuda``: the CUDA device from Python (PyTorch's ``torch.cuda`` names).

With ``LIGHTGRAD_CUDA=emulate`` set before ``import lightgrad`` the ``cuda`` device runs
our kernels on the CPU emulator and everything here works the same.

>>> import lightgrad as lg
>>> isinstance(lg.cuda.is_available(), bool)
True
"""
from __future__ import annotations

import os
from typing import Any, Sequence

from .backends import cuda as _cuda


def is_available() -> bool:
    """Whether ``device="cuda"`` works here (a GPU with CuPy, or the emulator)."""
    return _cuda.is_available()


def _runtime() -> Any:
    if not is_available():
        raise RuntimeError("lightgrad.cuda: no CUDA device here (it needs an NVIDIA GPU and "
                           "CuPy: pip install 'lightgrad[cuda]'; or set LIGHTGRAD_CUDA=emulate "
                           "before importing lightgrad)")
    from .backends.cuda.runtime import get_runtime
    return get_runtime()


def is_emulated() -> bool:
    """Whether the ``cuda`` device is the CPU emulator."""
    return is_available() and _runtime().emulated


def device_count() -> int:
    """Number of CUDA devices (1 on the emulator, 0 without CUDA)."""
    if not is_available():
        return 0
    return _runtime().device_count()


def current_device() -> int:
    return 0


def get_device_name(device: Any = None) -> str:
    """The GPU's name (``"lightgrad CUDA emulator"`` on the emulator)."""
    return _runtime().device_name()


def synchronize(device: Any = None) -> None:
    """Wait for every kernel launched so far to finish."""
    _runtime().synchronize()


def manual_seed(seed: int) -> None:
    """Seed the CUDA device's random generator (Philox: the same numbers on GPU and
    emulator)."""
    from .backends import device
    device("cuda").backend.seed(seed)


manual_seed_all = manual_seed


def memory_allocated(device: Any = None) -> int:
    """Bytes of device memory held by live tensors."""
    return _runtime().allocated


def max_memory_allocated(device: Any = None) -> int:
    """The peak of ``memory_allocated`` since the start (or the last reset)."""
    return _runtime().peak_allocated


def reset_peak_memory_stats(device: Any = None) -> None:
    rt = _runtime()
    rt.peak_allocated = rt.allocated


def empty_cache() -> None:
    """Give cached, unused device memory back to the driver."""
    _runtime().empty_cache()


def set_matmul_backend(name: str) -> None:
    """Run CUDA matmul (and convolution's GEMMs) on cuBLAS (``"cublas"``, the default) or
    on lightgrad's own GEMM kernels (``"lightgrad"``; ``"naive"``: the textbook kernel).
    The ``LIGHTGRAD_CUDA_MATMUL`` environment variable sets the initial choice."""
    from .backends.cuda.ops_linalg import set_matmul_backend as choose
    choose(name)


def get_matmul_backend() -> str:
    """The current choice of ``set_matmul_backend``."""
    from .backends.cuda.ops_linalg import matmul_backend
    return matmul_backend()


# ----------------------------------------------------------------------------- your own kernels
# CuPy's RawModule/RawKernel spelling over lightgrad's runtime: the same compile cache and,
# under LIGHTGRAD_CUDA=emulate, the same emulator as the built-in kernels.

from .backends.cuda.runtime import CompileError as CompileError  # noqa: E402
from .backends.cuda.runtime import CudaError as CudaError  # noqa: E402


class Module:
    """Kernels compiled from one CUDA source: ``module.get_function(name)`` gives a
    ``RawKernel``. Made by ``lightgrad.cuda.compile`` or ``compile_file``.

    As in CuPy, the source is compiled on the first launch (or by ``module.compile()``,
    which raises a ``CompileError`` at once); signatures are read right away, so
    ``get_function`` knows every kernel's parameters before anything is compiled.

    >>> module = compile('extern "C" __global__ void inc(float* x) { x[0] += 1; }')
    >>> module.get_function("inc")
    <RawKernel inc(float* x)>
    >>> module.names
    ['inc']
    """

    def __init__(self, source: str, options: Sequence[str] = (), name: str | None = None):
        from .backends.cuda.source import parse_kernels
        if not isinstance(source, str):
            raise TypeError(f"lightgrad.cuda.compile: source must be a str of CUDA C, got "
                            f"{type(source).__name__}")
        if isinstance(options, str):
            options = (options,)
        self.source, self.options = source, tuple(options)
        self.kernels = parse_kernels(source)
        self.filename = name or (f"{next(iter(self.kernels))}.cu" if self.kernels
                                 else "kernel.cu")
        self._compiled: Any = None

    @property
    def names(self) -> list[str]:
        """The names of the source's ``__global__`` functions, in source order."""
        return list(self.kernels)

    def compile(self) -> "Module":
        """Compile now (on the first call; later calls do nothing) and return the module.
        Compile errors are ``CompileError``s naming the file and line."""
        if self._compiled is None:
            from .backends.cuda.source import expand
            self._compiled = _runtime().compile(expand(self.source, self.filename),
                                                self.options, self.filename)
        return self

    def get_function(self, name: str) -> "RawKernel":
        """The kernel ``name`` of this module (an ``extern "C" __global__`` function)."""
        if name not in self.kernels:
            raise AttributeError(f"{self.filename}: no kernel named {name!r}; the module has "
                                 f"{', '.join(self.kernels) or 'no __global__ functions'}")
        if not _extern_c(self.source, name):
            raise TypeError(f"{self.filename}: kernel {name} is not declared extern \"C\", so "
                            "the GPU knows it only by its mangled C++ name; write "
                            f"extern \"C\" __global__ void {name}(...)")
        return RawKernel._of(self, name)

    def __repr__(self) -> str:
        return f"<lightgrad.cuda.Module {self.filename}: {', '.join(self.kernels)}>"


class RawKernel:
    """One CUDA kernel: ``kernel(grid, block, args, shared_mem=0)`` launches it.

    ``RawKernel(source, name, options=())`` compiles ``name`` from ``source`` (on the first
    launch), or take one from a module with ``module.get_function(name)``.

    ``grid`` and ``block`` are ints or tuples of up to three ints; ``args`` is a tuple with
    one value per kernel parameter: a CUDA tensor (or a CuPy array, a PyTorch CUDA tensor,
    anything with ``__cuda_array_interface__``; on the emulator also NumPy arrays and
    PyTorch CPU tensors) for a pointer, whose dtype must match the pointed-to type
    (``void*`` takes any); a Python number for a scalar, converted to its declared C type.
    A tensor must be contiguous (kernels index it as a flat array; call ``.contiguous()``);
    an int passes a raw device address unchecked. Anything else is a ``TypeError`` naming
    the kernel and the parameter, before the launch.

    >>> import lightgrad as lg
    >>> double = lg.cuda.RawKernel('''
    ... extern "C" __global__ void double_it(float* x, int n) {
    ...     int i = blockIdx.x * blockDim.x + threadIdx.x;
    ...     if (i < n) x[i] *= 2;
    ... }''', "double_it")
    >>> double
    <RawKernel double_it(float* x, int n)>
    >>> x = lg.arange(5.0, device="cuda")                     # doctest: +SKIP
    >>> double((1,), (32,), (x, 5))                           # doctest: +SKIP
    >>> x.tolist()                                            # doctest: +SKIP
    [0.0, 2.0, 4.0, 6.0, 8.0]
    """

    def __init__(self, source: str, name: str, options: Sequence[str] = ()):
        module = Module(source, options)
        module.get_function(name)  # checks the name
        self._bind(module, name)

    @classmethod
    def _of(cls, module: Module, name: str) -> "RawKernel":
        kernel = object.__new__(cls)
        kernel._bind(module, name)
        return kernel

    def _bind(self, module: Module, name: str) -> None:
        self.module, self.name = module, name
        self.params = module.kernels[name]
        self._kernel: Any = None

    def compile(self) -> "RawKernel":
        """Compile the kernel's module now (see ``Module.compile``)."""
        if self._kernel is None:
            self._kernel = self.module.compile()._compiled.get_function(self.name)
        return self

    def __call__(self, grid: Any, block: Any, args: Sequence[Any], shared_mem: int = 0) -> None:
        if not isinstance(args, (tuple, list)):
            raise TypeError(f"kernel {self.name}: args must be a tuple (or list) with one "
                            f"value per parameter ({self._signature()}), got "
                            f"{type(args).__name__}")
        if len(args) == len(self.params):
            for param, arg in zip(self.params, args):
                if param.kind == "pointer":
                    _check_flat(arg, param, self.name)
        self.compile()._kernel(grid, block, args, shared_mem)

    def _signature(self) -> str:
        return ", ".join(f"{'const ' if p.const else ''}{p.ctype}"
                         f"{'*' if p.kind == 'pointer' else ''} {p.name}" for p in self.params)

    def __repr__(self) -> str:
        return f"<RawKernel {self.name}({self._signature()})>"


def _extern_c(source: str, name: str) -> bool:
    """Whether kernel ``name`` has C linkage (``extern "C" __global__ ...`` or inside an
    ``extern "C" { }`` block), macros expanded."""
    import re

    from .backends.cuda.source import expand_macros
    text = expand_macros(re.sub(r"//[^\n]*|/\*.*?\*/", " ", source, flags=re.S))
    if re.search(r'extern\s*"C"\s*\{', text):
        return True
    return re.search(r'extern\s*"C"[^;{}]*?__global__[^;{}]*?\b' + re.escape(name) +
                     r"\s*\(", text) is not None


def _check_flat(arg: Any, param: Any, kernel: str) -> None:
    """A tensor or foreign array passed for a pointer must be one dense row-major block
    and live where kernels run (a CPU array on a GPU is refused)."""
    from .backends.cuda.array import DeviceArray
    from .backends.cuda.runtime import get_runtime
    from .tensor import Tensor
    what = f"kernel {kernel}: parameter {param.name} ({param.ctype}*)"
    if isinstance(arg, Tensor):
        if arg.device.type == "cuda" and not arg.is_contiguous():
            raise TypeError(f"{what} got a non-contiguous tensor (shape {tuple(arg.shape)}, "
                            f"strides {arg._data.strides}); kernels index pointers as flat "
                            "arrays: pass tensor.contiguous()")
        return
    if isinstance(arg, (int, type(None), DeviceArray)):
        return  # an address, NULL, or a DeviceArray (low level: its own strides apply)
    dense = _foreign_is_dense(arg)
    if dense is False:
        raise TypeError(f"{what} got a non-contiguous {type(arg).__name__} (kernels index "
                        "pointers as flat arrays); pass a contiguous copy")
    dl_device = getattr(arg, "__dlpack_device__", None)
    if callable(dl_device) and not get_runtime().emulated:
        try:
            on_cpu = dl_device()[0] in (1, 3)  # kDLCPU, kDLCUDAHost
        except Exception:  # noqa: BLE001  (not our business: the runtime will judge)
            on_cpu = False
        if on_cpu:
            raise TypeError(f"{what} got a {type(arg).__name__} in CPU memory; the kernel "
                            "runs on the GPU: move it there first (e.g. .cuda())")


def _foreign_is_dense(arg: Any) -> bool | None:
    """Whether a NumPy/CuPy/PyTorch array is C-contiguous (None: can't tell)."""
    import numpy as np
    if isinstance(arg, np.ndarray):
        return bool(arg.flags.c_contiguous)
    is_contiguous = getattr(arg, "is_contiguous", None)  # PyTorch
    if callable(is_contiguous):
        return bool(is_contiguous())
    flags = getattr(arg, "flags", None)  # CuPy
    if flags is not None and hasattr(flags, "c_contiguous"):
        return bool(flags.c_contiguous)
    try:
        iface = getattr(arg, "__cuda_array_interface__", None)
    except Exception:  # noqa: BLE001
        iface = None
    if iface is not None:
        strides = iface.get("strides")
        if strides is None:
            return True
        itemsize, expected = np.dtype(iface["typestr"]).itemsize, []
        step = itemsize
        for n in reversed(iface["shape"]):
            expected.append(step)
            step *= n
        return all(n == 1 or s == e for n, s, e in
                   zip(iface["shape"], strides, reversed(expected)))
    return None


def compile(source: str, options: Sequence[str] = (), name: str | None = None) -> Module:
    """A module of the kernels in ``source`` (CUDA C; CuPy's ``RawModule``).

    Entry points are ``extern "C" __global__`` functions whose parameters are pointers and
    scalars. ``#include "prelude.cuh"`` brings lightgrad's helpers (``i64``,
    ``LG_GRID_STRIDE``, ``lg_half``, warp/block reductions); plain CUDA works too.
    ``options`` go to NVRTC (``"-DTILE=16"``, ``"--use_fast_math"``; the emulator passes
    ``-D``/``-I`` ones to the host compiler and drops the GPU-only ones it knows). ``name``
    is the file name compile errors cite (default: the first kernel's name + ``.cu``).
    Compiled once per source and options, then cached on disk like the built-in kernels.

    >>> import lightgrad as lg
    >>> module = lg.cuda.compile('''
    ... #include "prelude.cuh"
    ... extern "C" __global__ void axpy(i64 n, float a, const float* x, float* y) {
    ...     LG_GRID_STRIDE(i, n) y[i] = a * x[i] + y[i];
    ... }''')
    >>> axpy = module.get_function("axpy")
    >>> axpy
    <RawKernel axpy(i64 n, float a, const float* x, float* y)>
    >>> x, y = lg.arange(4.0, device="cuda"), lg.ones(4, device="cuda")  # doctest: +SKIP
    >>> axpy(1, 32, (4, 2.0, x, y))                                       # doctest: +SKIP
    >>> y.tolist()                                                        # doctest: +SKIP
    [1.0, 3.0, 5.0, 7.0]
    """
    return Module(source, options, name)


def compile_file(path: "str | os.PathLike[str]", options: Sequence[str] = ()) -> Module:
    """``compile`` the CUDA source in the file ``path`` (errors cite that path).

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "scale.cu")
    >>> _ = open(path, "w").write('extern "C" __global__ void scale(float* x, float a) {}')
    >>> compile_file(path).get_function("scale")
    <RawKernel scale(float* x, float a)>
    """
    from pathlib import Path
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"lightgrad.cuda.compile_file: no such file: {file}")
    return Module(file.read_text(), options, str(file))
