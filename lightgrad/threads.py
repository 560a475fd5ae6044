"""``set_num_threads`` / ``get_num_threads``: how many threads NumPy's BLAS uses.

lightgrad's CPU matmuls and convolutions run in the OpenBLAS library that NumPy ships.
OpenBLAS starts one thread per core; on small matrices, or on a machine whose cores are
busy, fewer threads are often faster (its threads spin while they wait). PyTorch has the
same knob (``torch.set_num_threads``); benchmarks set both to the same number.

>>> n = get_num_threads()
>>> set_num_threads(1); get_num_threads()
1
>>> set_num_threads(n)
"""
from __future__ import annotations

import ctypes
import glob
import os
from functools import lru_cache
from typing import Any

_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
            "openblas_set_num_threads64_", "openblas_set_num_threads")
_GETTERS = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
            "openblas_get_num_threads64_", "openblas_get_num_threads")


@lru_cache(maxsize=1)
def _openblas() -> Any:
    """The OpenBLAS library NumPy loaded, or None when it cannot be found."""
    import numpy
    root = os.path.dirname(os.path.dirname(numpy.__file__))
    candidates = glob.glob(os.path.join(root, "numpy.libs", "*openblas*")) + \
        glob.glob(os.path.join(root, "numpy", ".dylibs", "*openblas*"))
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        if any(hasattr(lib, name) for name in _SETTERS):
            return lib
    return None


def _function(names: tuple[str, ...]) -> Any:
    lib = _openblas()
    for name in names if lib is not None else ():
        if hasattr(lib, name):
            return getattr(lib, name)
    return None


def set_num_threads(n: int) -> None:
    """Use ``n`` BLAS threads for lightgrad's CPU matmuls (like ``torch.set_num_threads``)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {n!r}")
    setter = _function(_SETTERS)
    if setter is None:
        raise RuntimeError("set_num_threads: NumPy's OpenBLAS library was not found; set the "
                           "OPENBLAS_NUM_THREADS environment variable before starting Python")
    setter(ctypes.c_int(n))


def get_num_threads() -> int:
    """The number of BLAS threads in use (the core count when nothing was set)."""
    getter = _function(_GETTERS)
    if getter is None:
        return int(os.environ.get("OPENBLAS_NUM_THREADS", os.cpu_count() or 1))
    getter.restype = ctypes.c_int
    return int(getter())
