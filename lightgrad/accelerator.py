"""PyTorch's ``torch.accelerator``: the one accelerator this process may use, if any.

lightgrad's only accelerator is CUDA (a GPU with CuPy, or the CPU emulator).

>>> import lightgrad as lg
>>> lg.accelerator.is_available() == lg.cuda.is_available()
True
>>> acc = lg.accelerator.current_accelerator()
>>> acc is None or acc.type == "cuda"
True
"""
from __future__ import annotations

from . import cuda as _cuda
from .backends import Device, device as _device

__all__ = ["current_accelerator", "device_count", "is_available"]


def is_available() -> bool:
    """Whether an accelerator (CUDA) is usable here."""
    return _cuda.is_available()


def current_accelerator() -> Device | None:
    """``device('cuda')`` when CUDA is usable, else None (as PyTorch)."""
    return _device("cuda") if is_available() else None


def device_count() -> int:
    """How many accelerator devices there are (0 without one)."""
    return _cuda.device_count() if is_available() else 0
