"""``set_num_threads`` / ``get_num_threads``: how many threads lightgrad's CPU kernels use.

lightgrad's CPU matmuls and convolutions run in the OpenBLAS library that NumPy ships: this
module is the one place that decides its thread count. PyTorch has the same knob
(``torch.set_num_threads``); benchmarks set both to the same number.

Until ``set_num_threads`` is called the count is *automatic*: one thread per core that
other processes leave (at least three quarters) free, re-decided at most every
``AUTO_INTERVAL`` seconds from the machine's CPU counters (``/proc/stat``) minus this
process's own CPU time. OpenBLAS splits
a matmul evenly over its threads and they spin while they wait, so a thread placed on a
core that another process keeps busy makes every product wait for it: measured on 2 cores
with both busy, a GPT training step took 4.5x longer with 2 threads than with 1.
``set_num_threads(n)`` fixes the count (as in PyTorch); ``set_num_threads(None)`` goes back
to automatic.

>>> n = get_num_threads()
>>> set_num_threads(1); get_num_threads()
1
>>> set_num_threads(None)
"""
from __future__ import annotations

import ctypes
import glob
import os
import time
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


AUTO_INTERVAL = 0.5
"""Seconds between two decisions of the automatic thread count."""


class _Auto:
    """State of the automatic thread count: on until ``set_num_threads(n)``."""

    # an OPENBLAS_NUM_THREADS / OMP_NUM_THREADS set by the user is respected
    on = not (os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS"))
    next_check = 0.0
    threads = 0  # last count set by the automatic policy (0: none yet)
    sample: tuple | None = None  # (monotonic time, machine busy ticks, own CPU seconds)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _busy_ticks() -> int | None:
    """Busy clock ticks (1/100 s) of all cores since boot; None off Linux."""
    try:
        with open("/proc/stat", "rb") as f:
            fields = f.readline().split()[1:]
    except OSError:
        return None
    ticks = [int(v) for v in fields[:8]]
    return sum(ticks) - ticks[3] - ticks[4]  # minus idle and iowait


def free_cores(before: tuple, after: tuple, cores: int) -> float:
    """Cores that other processes left free between two ``(time, busy ticks, own CPU
    seconds)`` samples.

    >>> free_cores((0.0, 0, 0.0), (1.0, 100, 1.0), 2)  # only we ran, on one core
    2.0
    >>> free_cores((0.0, 0, 0.0), (1.0, 200, 1.0), 2)  # another process took a core
    1.0
    """
    elapsed = after[0] - before[0]
    if elapsed <= 0:
        return float(cores)
    others = ((after[1] - before[1]) / 100.0 - (after[2] - before[2])) / elapsed
    return min(float(cores), max(0.0, cores - max(others, 0.0)))


def _sample() -> tuple | None:
    ticks = _busy_ticks()
    if ticks is None:
        return None
    own = os.times()
    return time.monotonic(), ticks, own.user + own.system


def adapt() -> None:
    """Re-decide the automatic thread count if ``AUTO_INTERVAL`` has passed (a no-op once
    ``set_num_threads(n)`` fixed it). The CPU backend calls this before BLAS calls."""
    now = time.monotonic()
    if not _Auto.on or now < _Auto.next_check:
        return
    _Auto.next_check = now + AUTO_INTERVAL
    sample = _sample()
    if sample is None:
        return
    before, _Auto.sample = _Auto.sample, sample
    cores = _cores()
    if before is None:  # first call: other processes' load so far, from the load average
        free = cores - min(float(cores), os.getloadavg()[0]) if hasattr(os, "getloadavg") \
            else float(cores)
    else:
        free = free_cores(before, sample, cores)
    want = max(1, min(cores, int(free + 0.25)))  # a core 3/4 free or more
    if want != _Auto.threads:
        setter = _function(_SETTERS)
        if setter is None:
            _Auto.on = False
            return
        setter(ctypes.c_int(want))
        _Auto.threads = want


def set_num_threads(n: int | None) -> None:
    """Use ``n`` BLAS threads for lightgrad's CPU matmuls (like ``torch.set_num_threads``);
    ``None`` lets lightgrad choose (one per core other processes leave free)."""
    if n is None:
        _Auto.on, _Auto.next_check, _Auto.threads, _Auto.sample = True, 0.0, 0, None
        return
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive int or None, got {n!r}")
    setter = _function(_SETTERS)
    if setter is None:
        raise RuntimeError("set_num_threads: NumPy's OpenBLAS library was not found; set the "
                           "OPENBLAS_NUM_THREADS environment variable before starting Python")
    _Auto.on = False
    setter(ctypes.c_int(n))


def get_num_threads() -> int:
    """The number of BLAS threads in use (the core count when nothing was set)."""
    getter = _function(_GETTERS)
    if getter is None:
        return int(os.environ.get("OPENBLAS_NUM_THREADS", os.cpu_count() or 1))
    getter.restype = ctypes.c_int
    return int(getter())
