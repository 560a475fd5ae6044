"""What the GPU benchmarks share: the "is there a real GPU" gate and CUDA-event timing.

The scripts exit 0 with a one-line message when there is no GPU (or when
``LIGHTGRAD_CUDA=emulate`` selects the CPU emulator, whose speed means nothing), so a
machine without one can run them harmlessly.
"""
from __future__ import annotations

import os
import platform
import sys
import time
from typing import Any, Callable


def require_gpu(script: str) -> Any:
    """``lightgrad`` when its ``cuda`` device is a real GPU with CuPy; otherwise print why
    not and exit with status 0."""
    if os.environ.get("LIGHTGRAD_CUDA", "").strip().lower() in ("emulate", "emulator", "emu"):
        _skip(script, "LIGHTGRAD_CUDA=emulate selects the CPU emulator, whose timings mean "
                      "nothing; unset it on a machine with an NVIDIA GPU")
    try:
        import cupy  # noqa: F401
    except ImportError:
        _skip(script, "CuPy is not installed (pip install 'lightgrad[cuda]' cupy-cuda12x or "
                      "cupy-cuda13x)")
    import lightgrad as lg
    if not lg.cuda.is_available():
        _skip(script, "lightgrad.cuda.is_available() is False (no NVIDIA GPU or driver)")
    if lg.cuda.is_emulated():
        _skip(script, "the cuda device is the CPU emulator")
    return lg


def torch_on_gpu(script: str) -> Any:
    """PyTorch with TF32 off (exact float32 matmuls and convolutions, like ours) when it is
    installed and sees the GPU; otherwise print why there is nothing to compare with and
    return None."""
    try:
        import torch
    except ImportError:
        print(f"{script}: PyTorch is not installed; nothing to compare with")
        return None
    if not torch.cuda.is_available():
        print(f"{script}: PyTorch sees no CUDA device; nothing to compare with")
        return None
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return torch


def _skip(script: str, why: str) -> None:
    print(f"{script}: no GPU, nothing measured: {why}")
    sys.exit(0)


def describe(lg: Any) -> str:
    """One line: GPU, lightgrad, CuPy, PyTorch and Python versions."""
    import cupy
    parts = [lg.cuda.get_device_name(), f"lightgrad {lg.__version__}",
             f"cupy {cupy.__version__}", f"python {platform.python_version()}"]
    try:
        import torch
        parts.append(f"torch {torch.__version__} (CUDA {torch.version.cuda})")
    except ImportError:
        parts.append("no torch")
    return ", ".join(parts)


def gpu_ms(fn: Callable[[], Any], iters: int = 10, warmup: int = 2) -> float:
    """Mean milliseconds of GPU time per call of ``fn``, by CUDA events around ``iters``
    calls on the current stream (lightgrad and CuPy launch there; the events also wait for
    PyTorch's default stream, the legacy one). Launch overhead counts when the GPU waits
    for Python."""
    import cupy
    for _ in range(warmup):
        fn()
    cupy.cuda.runtime.deviceSynchronize()
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    end.synchronize()
    cupy.cuda.runtime.deviceSynchronize()
    return cupy.cuda.get_elapsed_time(start, end) / iters


def wall_ms(fn: Callable[[], Any], iters: int = 5, warmup: int = 1) -> float:
    """Mean wall-clock milliseconds per call, the device synchronised before and after."""
    import cupy
    for _ in range(warmup):
        fn()
    cupy.cuda.runtime.deviceSynchronize()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    cupy.cuda.runtime.deviceSynchronize()
    return (time.perf_counter() - start) / iters * 1e3


def table(rows: list[list[str]], header: list[str]) -> str:
    """A plain text table, columns right-aligned except the first."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [str(row[0]).ljust(widths[0])] + [str(c).rjust(w)
                                                  for c, w in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells))
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
