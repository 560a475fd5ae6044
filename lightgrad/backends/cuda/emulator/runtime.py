"""The emulator runtime: the same ``.cu`` files, compiled by the host C++ compiler against
``cuda_emu.h`` and run on host threads over host memory.

Each compiled source becomes a shared library with one launcher per kernel,
``lg_launch__<name>(grid, block, shared, args, err, errlen)``, called through ctypes (which
releases the GIL while the kernel runs). Device memory is host memory: an allocation is a
NumPy byte array and a device pointer is its address.

``LIGHTGRAD_EMULATOR_CXX`` picks the compiler (default ``g++``) and
``LIGHTGRAD_EMULATOR_FLAGS`` adds flags. The sanitizers work when their runtime is preloaded
into the Python binary itself (``python`` of pyenv or conda is a shell script: use the real
interpreter), e.g. for data races (a missing ``__syncthreads``)::

    PY=$(python -c 'import sys; print(sys.executable)')
    LD_PRELOAD=$(g++ -print-file-name=libtsan.so) LIGHTGRAD_CUDA=emulate \
        LIGHTGRAD_EMULATOR_FLAGS='-fsanitize=thread -g' $PY script.py

and for out-of-bounds accesses ``ASAN_OPTIONS=detect_leaks=0`` with ``libasan.so`` and
``-fsanitize=address -g`` (allocations are then exactly their size, so one element past
the end is caught). See docs/06-cuda.md. ``LIGHTGRAD_EMULATOR_THREADS`` and
``LIGHTGRAD_EMULATOR_TIMEOUT`` are described in ``cuda_emu.h``.
"""
from __future__ import annotations

import ctypes
import os
import re
import shlex
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..runtime import CompileError, CudaError, Module, OutOfMemoryError, Runtime, cache_dir, \
    cache_key
from ..source import parse_kernels

HEADER = Path(__file__).parent / "cuda_emu.h"
_DYNAMIC_SHARED = re.compile(
    r"extern\s+__shared__\s+(?:__align__\s*\(\s*\d+\s*\)\s*)?([\w\s]+?)\s+(\w+)\s*\[\s*\]\s*;")
# NVRTC-only options the host compiler has no use for
_IGNORED = re.compile(r"^(-arch|--gpu-architecture|-lineinfo|--use_fast_math|-use_fast_math|"
                      r"--ptxas-options|-Xptxas|-G|--device-debug|-dopt|--fmad|-ftz|"
                      r"-prec-div|-prec-sqrt|--std|-std|-default-device|--extra-device)")


class _Memory:
    """Host bytes standing in for a device allocation."""

    __slots__ = ("array", "ptr", "nbytes", "runtime", "__weakref__")

    def __init__(self, runtime: "EmulatorRuntime", nbytes: int):
        if runtime.exact_allocations:  # the address sanitizer guards the very end
            self.array = np.empty(nbytes, dtype=np.uint8)
        else:  # 64-byte alignment, as cudaMalloc's 256, for vectorised loads
            raw = np.empty(nbytes + 64, dtype=np.uint8)
            start = (-raw.ctypes.data) % 64
            self.array = raw[start:start + nbytes]
        self.ptr, self.nbytes, self.runtime = self.array.ctypes.data, nbytes, runtime
        runtime.count_alloc(nbytes)

    def __del__(self) -> None:
        if hasattr(self, "nbytes"):  # not when the allocation itself failed
            self.runtime.allocated -= self.nbytes


def _host_source(source: str, names: Sequence[str], filename: str = "kernel.cu") -> str:
    """The kernel source as host C++: dynamic shared memory arrays become pointers into the
    block's dynamic shared buffer, and each kernel gets a launcher. Compiler messages,
    debuggers and sanitizers name `filename` and its lines."""
    if not re.match(r"\s*#\s*line\b", source):
        source = f'#line 1 "{filename}"\n{source}'
    body = _DYNAMIC_SHARED.sub(
        lambda m: f"{m.group(1)}* {m.group(2)} = reinterpret_cast<{m.group(1)}*>"
                  "(lg::dynamic_shared());", source)
    launchers = "".join(
        f'\nextern "C" int lg_launch__{n}(unsigned gx, unsigned gy, unsigned gz, unsigned bx, '
        f"unsigned by, unsigned bz, unsigned long long shared, void** args, char* err, "
        f"int errlen) {{\n    return lg::launch(dim3(gx, gy, gz), dim3(bx, by, bz), shared, "
        f"err, errlen, [&] {{ lg::call({n}, args); }});\n}}\n" for n in names)
    return body + '\n#line 1 "(emulator launchers)"\n' + launchers


class EmulatorModule(Module):
    def __init__(self, runtime: "EmulatorRuntime", source: str, handle: Any):
        super().__init__(runtime, source, handle)
        self._launchers = {name: getattr(handle, f"lg_launch__{name}") for name in self.kernels}

    def launch(self, kernel, grid, block, shared, packed) -> None:
        # every argument's bytes in one buffer, each at an offset aligned to 16
        chunks, offsets, offset = [], [], 0
        for value in packed:
            raw = value.tobytes()
            offsets.append(offset)
            chunks.append(raw.ljust(-(-len(raw) // 16) * 16, b"\0"))
            offset += len(chunks[-1])
        blob = ctypes.create_string_buffer(b"".join(chunks), max(offset, 1))
        base = ctypes.addressof(blob)
        args = (ctypes.c_void_p * max(len(offsets), 1))(*[base + o for o in offsets])
        err = ctypes.create_string_buffer(1024)
        status = self._launchers[kernel.name](*grid, *block, shared, args, err, 1024)
        if status != 0:
            raise CudaError(f"kernel {kernel.name} (grid {grid}, block {block}) failed on the "
                            f"emulator: {err.value.decode(errors='replace')}")


class EmulatorRuntime(Runtime):
    """CUDA on the CPU: same kernels, same launch interface, host memory."""

    name = "emulator"
    emulated = True
    multiprocessor_count = 2
    arch = "host"

    def __init__(self) -> None:
        super().__init__()
        self.cxx = os.environ.get("LIGHTGRAD_EMULATOR_CXX", "g++")
        self.flags = shlex.split(os.environ.get("LIGHTGRAD_EMULATOR_FLAGS", ""))
        self.exact_allocations = any(f.startswith("-fsanitize=") and "address" in f
                                     for f in self.flags)
        self._lock = threading.Lock()

    def device_name(self) -> str:
        return "lightgrad CUDA emulator"

    def alloc(self, nbytes: int) -> _Memory:
        try:
            return _Memory(self, int(nbytes))
        except MemoryError:
            raise OutOfMemoryError(f"cuda (emulator): out of memory allocating {nbytes} "
                                   "bytes") from None

    def htod(self, ptr: int, host: np.ndarray) -> None:
        host = np.ascontiguousarray(host)
        ctypes.memmove(ptr, host.ctypes.data, host.nbytes)

    def dtoh(self, host: np.ndarray, ptr: int) -> None:
        ctypes.memmove(host.ctypes.data, ptr, host.nbytes)

    def dtod(self, dst: int, src: int, nbytes: int) -> None:
        ctypes.memmove(dst, src, nbytes)

    def host_view(self, arr: Any) -> np.ndarray:
        """A NumPy view of a device array's memory (the emulator's memory is the host's)."""
        itemsize = arr.dtype.itemsize
        base = arr.mem.array
        offset = arr.ptr - base.ctypes.data
        return np.ndarray(arr.shape, arr.dtype, buffer=base, offset=offset,
                          strides=tuple(s * itemsize for s in arr.strides))

    def gemm(self, a, b, out) -> None:
        """The cuBLAS stand-in: NumPy's BLAS on the host memory."""
        np.matmul(self.host_view(a), self.host_view(b), out=self.host_view(out))

    def _compile(self, source: str, options: tuple, filename: str) -> Module:
        names = list(parse_kernels(source))
        flags = [o for o in options if not _IGNORED.match(o)] + self.flags
        text = _host_source(source, names, filename)
        key = cache_key("emulator", text, HEADER.read_text(), flags, self.cxx)
        lib = cache_dir() / f"emu-{key}.so"
        with self._lock:
            if not lib.exists():
                self._build(text, flags, lib, filename)
        try:
            handle = ctypes.CDLL(str(lib))
        except OSError as e:
            hint = ""
            if any(f.startswith("-fsanitize=") for f in flags):
                hint = ("; kernels built with a sanitizer need its runtime preloaded into "
                        "Python: LD_PRELOAD=$(g++ -print-file-name=libtsan.so) (or libasan.so)"
                        " with the real interpreter, see emulator/runtime.py")
            raise CompileError(f"{filename}: the emulator could not load its build: {e}"
                               f"{hint}") from None
        for n in names:
            fn = getattr(handle, f"lg_launch__{n}")
            fn.restype = ctypes.c_int
            fn.argtypes = [ctypes.c_uint] * 6 + [ctypes.c_ulonglong, ctypes.c_void_p,
                                                 ctypes.c_char_p, ctypes.c_int]
        return EmulatorModule(self, source, handle)

    def _build(self, text: str, flags: list, lib: Path, filename: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "kernel.cpp"
            src.write_text(text)
            out = Path(tmp) / "kernel.so"
            cmd = [self.cxx, "-std=c++20", "-O2", "-fPIC", "-shared", "-pthread",
                   "-fno-strict-aliasing", "-Wno-unused-function", "-include", str(HEADER),
                   *flags, str(src), "-o", str(out)]
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                                      env=_compiler_env())
            except FileNotFoundError:
                raise CompileError(f"{filename}: the CUDA emulator needs a C++20 compiler "
                                   f"({self.cxx!r} not found; set LIGHTGRAD_EMULATOR_CXX)") \
                    from None
            if done.returncode != 0:
                raise CompileError(f"{filename}: does not compile for the emulator:\n"
                                   + _first_errors(done.stderr))
            tmp_lib = lib.with_suffix(f".{os.getpid()}.tmp")
            tmp_lib.write_bytes(out.read_bytes())
            os.replace(tmp_lib, lib)


def _compiler_env() -> dict:
    """The environment for the compiler: without a sanitizer runtime preloaded into Python
    (the compiler would run under it, and the leak checker fail it at exit)."""
    env = dict(os.environ)
    preload = [p for p in re.split(r"[:\s]+", env.get("LD_PRELOAD", ""))
               if p and not re.match(r"lib(a|t|l|ub|hwa|m)san\b", os.path.basename(p))]
    if preload:
        env["LD_PRELOAD"] = " ".join(preload)
    else:
        env.pop("LD_PRELOAD", None)
    return env


def _first_errors(log: str, limit: int = 12) -> str:
    lines = [ln for ln in log.splitlines() if "error" in ln or "note" in ln]
    return "\n".join((lines or log.splitlines())[:limit])
