"""Every kernel file compiles where it must run: with NVRTC for the GPUs we target (no GPU
needed: ``pip install cuda-bindings nvidia-cuda-nvrtc``, part of the ``test`` extra), without
register spills, and with the host compiler for the emulator.

New files in ``kernels/`` are picked up automatically.
"""
from __future__ import annotations

import functools

import pytest

from lightgrad.backends.cuda.source import KERNEL_DIR, kernel_file, parse_kernels

FAMILIES = sorted(p.stem for p in KERNEL_DIR.glob("*.cu"))
ARCHS = ["sm_80", "sm_90"]  # A100, H100


@functools.cache
def _nvrtc_missing() -> str | None:
    """Why NVRTC can't be used here (None when it can)."""
    try:
        from cuda.bindings import nvrtc
    except ImportError:
        return "cuda-bindings is not installed (pip install cuda-bindings nvidia-cuda-nvrtc)"
    try:
        err, prog = nvrtc.nvrtcCreateProgram(b"", b"probe.cu", 0, [], [])
    except RuntimeError as e:  # cuda.pathfinder found no libnvrtc
        return f"the NVRTC library is missing (pip install nvidia-cuda-nvrtc): {e}"
    nvrtc.nvrtcDestroyProgram(prog)
    return None


def test_there_are_kernel_files():
    assert {"elementwise", "copy", "reduce"} <= set(FAMILIES)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("family", FAMILIES)
def test_compiles_with_nvrtc_without_spills(family, arch):
    if _nvrtc_missing():
        pytest.skip(_nvrtc_missing())
    from lightgrad.backends.cuda.nvrtc import check_file
    report = check_file(family, arch=arch)
    assert report.binary
    assert report.spills == {}, f"{family}.cu spills registers on {arch}: {report.spills}"
    # ptxas reported on every kernel the launcher knows of (so "no spills" means something,
    # and Python reads the same kernels from the source as NVRTC compiles)
    source, _ = kernel_file(family)
    assert set(report.registers) == set(parse_kernels(source))


@pytest.fixture(scope="module")
def emulator():
    from lightgrad.backends.cuda.runtime import get_runtime
    from lightgrad.backends.cuda.emulator.runtime import EmulatorRuntime
    try:
        rt = get_runtime()
    except Exception:  # noqa: BLE001  (no GPU runtime here: use the emulator directly)
        rt = None
    return rt if rt is not None and rt.emulated else EmulatorRuntime()


@pytest.mark.parametrize("family", FAMILIES)
def test_compiles_for_the_emulator(emulator, family):
    source, filename = kernel_file(family)
    module = emulator.compile(source, filename=filename)
    for name in parse_kernels(source):
        module.get_function(name)  # every kernel has its launcher
