"""The CUDA backend: our kernels (``kernels/*.cu``), a runtime that compiles and launches
them on a GPU (NVRTC + CuPy) or on the CPU emulator, and the vocabulary over device arrays.

``LIGHTGRAD_CUDA=emulate`` (set before ``import lightgrad``) runs the ``cuda`` device on the
emulator: same kernels, host threads and memory.

>>> import lightgrad as lg                                    # doctest: +SKIP
>>> (lg.ones(3, device="cuda") * 2).tolist()                  # doctest: +SKIP
[2.0, 2.0, 2.0]
"""
from __future__ import annotations

import importlib.util

from .runtime import emulation_requested


def is_available() -> bool:
    """Whether the ``cuda`` device can be used: the emulator was asked for, or CuPy is
    installed and sees a GPU."""
    if emulation_requested():
        return True
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001  (no driver, no device: not available)
        return False


def make_backend(index: int | None):
    """The CUDA backend for device ``index`` (the factory ``backends.device`` calls)."""
    from .backend_class import CUDABackend
    return CUDABackend(index or 0)
