"""Native CPU kernels: plain C loops for the work NumPy does in many passes over memory.

NumPy runs one operation over a whole array per call: exact GELU and its derivative take
about thirty passes, a layer norm backward a dozen. The C files beside this module do each
such job in one or two passes, element by element, the way the textbook writes it. They are
compiled together, at first use, by the machine's C compiler (``$CC``, else ``cc`` or
``gcc``) into one shared library kept in ``~/.cache/lightgrad/native`` (or
``$LIGHTGRAD_NATIVE_CACHE``), keyed by the sources, the flags, the compiler and the CPU's
instruction sets; later runs load it in milliseconds. Calls go through ctypes, which releases
the GIL while a kernel runs.

Nothing here is required: without a compiler, when the build fails, or with
``LIGHTGRAD_NATIVE=0``, :func:`library` is ``None`` and every caller uses its NumPy twin
(the reference the tests compare the C kernels against).

Writing a kernel: add ``name.c`` here with ``void lg_<name>(...)`` functions taking
pointers to contiguous arrays and ``int64_t`` sizes (shared ``.h`` files here are part of
the build's key too), declare each one's argument types in :data:`SIGNATURES` (``"p"``
pointer, ``"i"`` int64, ``"f"`` float, ``"d"`` double), and call it as
``lib.lg_<name>(pointer(x), ...)`` where ``lib = library()`` is not ``None``. The kernels
and their Python faces (which fall back to the NumPy twins) are in ``cpu_native.py``.

>>> lib = library()
>>> lib is None or hasattr(lib, "lg_gelu_f32")
True
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

SOURCES = Path(__file__).parent
FLAGS = ("-std=c11", "-O3", "-march=native", "-fPIC", "-shared", "-fno-math-errno",
         "-fno-trapping-math", "-fopenmp-simd", "-Wall", "-Wno-unknown-pragmas")
"""No ``-ffast-math``: NaN and infinity keep IEEE meaning; ``#pragma omp simd reduction``
marks the sums that may be vectorised (reassociated)."""

_CTYPES = {"p": ctypes.c_void_p, "i": ctypes.c_int64, "f": ctypes.c_float,
           "d": ctypes.c_double}

SIGNATURES: dict[str, str] = {}
"""Each C function's argument types, one letter per argument (see the module docstring).
Kernel families add their entries from their own Python module with :func:`declare`."""

_lock = threading.Lock()
_state: dict[str, Any] = {}


class NativeBuildError(RuntimeError):
    """The native kernels did not compile (the compiler's first errors are in the message)."""


def declare(**signatures: str) -> None:
    """Record C functions' argument types: ``declare(lg_gelu_f32="ppi")``."""
    for name, letters in signatures.items():
        if any(c not in _CTYPES for c in letters):
            raise ValueError(f"native.declare: {name}: argument letters must be among "
                             f"{''.join(_CTYPES)}, got {letters!r}")
        SIGNATURES[name] = letters
    lib = _state.get("lib")
    if lib is not None:  # declared after the library was loaded
        open_library_functions(lib, signatures)


def enabled() -> bool:
    """False when ``LIGHTGRAD_NATIVE=0`` turns the C kernels off."""
    return os.environ.get("LIGHTGRAD_NATIVE", "1") != "0"


def pointer(array: np.ndarray) -> int:
    """The address of a C-contiguous array's first element. Through ctypes' buffer view
    when the array is writable (0.3 µs), else its ``__array_interface__`` (2 µs: it builds
    a dict describing the whole array)."""
    try:
        return _addressof(_byte.from_buffer(array))
    except (TypeError, ValueError):  # read-only or empty
        return array.__array_interface__["data"][0]


_addressof, _byte = ctypes.addressof, ctypes.c_char


def optional_pointer(array: np.ndarray | None) -> int | None:
    """:func:`pointer`, or ``None`` (passed as NULL) for an absent array."""
    return None if array is None else pointer(array)


def library() -> Any:
    """The loaded kernel library (a ``ctypes.CDLL``), or ``None`` when the C kernels are off
    or cannot be built here (then a warning says why, once)."""
    lib = _state.get("lib", False)
    if lib is not False:
        return lib
    with _lock:
        if "lib" not in _state:
            _state["lib"] = _load() if enabled() else None
    return _state["lib"]


def _load() -> Any:
    try:
        path = build(sorted(SOURCES.glob("*.c")))
    except NativeBuildError as e:
        _state["why"] = str(e)
        warnings.warn(f"lightgrad: native CPU kernels unavailable, using NumPy ({e})",
                      RuntimeWarning, stacklevel=3)
        return None
    _state["path"] = path
    return open_library(path, SIGNATURES)


def describe() -> str:
    """One line on the C kernels: in use (and where the library is), off, or why not built.

    >>> describe().startswith(("NumPy + C", "NumPy only"))
    True
    """
    if not enabled():
        return "NumPy only (LIGHTGRAD_NATIVE=0)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lib = library()
    if lib is None:
        return f"NumPy only (C kernels not built: {_state.get('why', 'unknown reason')})"
    return f"NumPy + C kernels ({_state.get('path', 'loaded')})"


def open_library(path: Path, signatures: dict[str, str]) -> Any:
    """Load a built library and give each declared function its argument types."""
    return open_library_functions(ctypes.CDLL(str(path)), signatures)


def open_library_functions(lib: Any, signatures: dict[str, str]) -> Any:
    for name, letters in signatures.items():
        fn = getattr(lib, name, None)
        if fn is not None:
            fn.argtypes = [_CTYPES[c] for c in letters]
            fn.restype = None
    return lib


def compiler() -> list[str] | None:
    """The C compiler command: ``$CC``, else the first of cc, gcc, clang on the PATH."""
    if os.environ.get("CC"):
        return shlex.split(os.environ["CC"])
    for name in ("cc", "gcc", "clang"):
        if shutil.which(name):
            return [name]
    return None


def cache_dir() -> Path:
    """Where built libraries are kept (``LIGHTGRAD_NATIVE_CACHE`` overrides)."""
    root = os.environ.get("LIGHTGRAD_NATIVE_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "lightgrad", "native")
    return Path(root)


def _cpu_features() -> str:
    """The CPU's instruction-set flags: ``-march=native`` code is only valid on them."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((ln for ln in f if ln.startswith(("flags", "Features"))), "")
    except OSError:
        return platform.processor()


def build(sources: list[Path], flags: tuple[str, ...] = FLAGS) -> Path:
    """Compile C sources into one shared library in the cache (once per content) and return
    its path. Raises :class:`NativeBuildError` with the compiler's first errors."""
    cc = compiler()
    if cc is None:
        raise NativeBuildError("no C compiler found (set CC)")
    digest = hashlib.sha256()
    for part in (*cc, *flags, platform.machine(), _cpu_features()):
        digest.update(part.encode() + b"\0")
    headers = sorted({h for src in sources for h in src.parent.glob("*.h")})
    for src in [*sources, *headers]:  # the headers the sources include change them too
        digest.update(src.name.encode() + b"\0" + src.read_bytes() + b"\0")
    folder = cache_dir()
    lib = folder / f"native-{digest.hexdigest()[:24]}.so"
    if lib.exists():
        return lib
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "kernels.so"
            done = subprocess.run([*cc, *flags, *map(str, sources), "-o", str(out), "-lm"],
                                  capture_output=True, text=True, timeout=300)
            if done.returncode != 0:
                errors = [ln for ln in done.stderr.splitlines() if "error" in ln]
                raise NativeBuildError("\n".join((errors or done.stderr.splitlines())[:8]))
            staged = lib.with_suffix(f".{os.getpid()}.tmp")
            shutil.copyfile(out, staged)
            os.replace(staged, lib)  # atomic: a concurrent process sees all or nothing
    except (OSError, subprocess.SubprocessError) as e:
        raise NativeBuildError(f"{type(e).__name__}: {e}") from None
    return lib
