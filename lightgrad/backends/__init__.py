"""Devices and the backends that serve them.

A ``Device`` names where a tensor's numbers live ("cpu", "cuda", "cuda:1"); each device
type has one backend object implementing the vocabulary in ``base.py``.

>>> from lightgrad.backends import device
>>> device("cpu"), device("cpu").backend.name
(device(type='cpu'), 'cpu')
"""
from __future__ import annotations

from typing import Callable

from .base import Backend
from .cpu import CPUBackend


class Device:
    """A device type and index; compares equal to its string form ("cpu", "cuda:0")."""

    __slots__ = ("type", "index", "backend")

    def __init__(self, type: str, index: int | None, backend: Backend):
        self.type = type
        self.index = index
        self.backend = backend

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            try:
                other = device(other)
            except (ValueError, RuntimeError):
                return False
        return isinstance(other, Device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __reduce__(self) -> tuple:
        # copy.deepcopy and pickle give back the one shared Device (ops compare with `is`).
        return device, (str(self),)


_factories: dict[str, Callable[[int | None], Backend]] = {}
_devices: dict[str, Device] = {}
cpu = Device("cpu", None, CPUBackend())
_devices["cpu"] = cpu
_default: Device = cpu


def register_backend(device_type: str, factory: Callable[[int | None], Backend]) -> None:
    """Make ``device_type`` available; ``factory(index)`` builds its backend on first use."""
    _factories[device_type] = factory


def device(spec: "str | Device | None") -> Device:
    """The Device for "cpu", "cuda" or "cuda:N" (or a Device, returned as is).

    >>> device("cpu").type
    'cpu'
    """
    if isinstance(spec, Device):
        return spec
    if spec is None:
        return _default
    if not isinstance(spec, str):
        raise TypeError(f"device: expected a string such as 'cpu' or 'cuda:0', got "
                        f"{type(spec).__name__}")
    found = _devices.get(spec)
    if found is not None:
        return found
    kind, _, idx = spec.partition(":")
    if kind not in ("cpu", "cuda") or (idx and not idx.isdigit()):
        raise ValueError(f"device: unknown device {spec!r}; expected 'cpu', 'cuda' or "
                         "'cuda:N'")
    if kind == "cpu":
        return cpu
    if kind not in _factories:
        raise RuntimeError(
            f"device: {spec!r} was requested but no CUDA backend is available here (it "
            "needs an NVIDIA GPU and CuPy: pip install 'lightgrad[cuda]'; or set "
            "LIGHTGRAD_CUDA=emulate before importing lightgrad to run the CUDA kernels on the "
            "CPU emulator); use device='cpu'")
    index = int(idx) if idx else 0
    key = f"{kind}:{index}"
    if key not in _devices:
        _devices[key] = Device(kind, index, _factories[kind](index))
    _devices[spec] = _devices[key]
    return _devices[key]


def get_backend(spec: "str | Device") -> Backend:
    """The backend object that serves a device.

    >>> get_backend("cpu").name
    'cpu'
    """
    return device(spec).backend


def available_devices() -> list[str]:
    """Device types usable in this process."""
    return ["cpu"] + sorted(_factories)


def set_default_device(spec: "str | Device | None") -> None:
    """The device creation functions use when given none (PyTorch's
    ``torch.set_default_device``); None means the CPU.

    >>> set_default_device("cpu"); get_default_device()
    device(type='cpu')
    """
    global _default
    _default = cpu if spec is None else device(spec)


def get_default_device() -> Device:
    """The device creation functions use when given none."""
    return _default


def _register_cuda() -> None:
    from . import cuda
    if cuda.is_available():
        register_backend("cuda", cuda.make_backend)


_register_cuda()
