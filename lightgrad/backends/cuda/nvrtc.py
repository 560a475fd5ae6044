"""Compiling kernel sources with NVRTC (``cuda-bindings``), with or without a GPU.

The GPU runtime compiles through here; CI uses ``check_file`` to compile every kernel file
for sm_80 and sm_90 and to read ptxas's resource report (registers, spills).

>>> report = check_file("elementwise", arch="sm_90")      # doctest: +SKIP
>>> report.spills                                         # doctest: +SKIP
{}
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from .runtime import CompileError
from .source import kernel_file

_SPILL = re.compile(r"Function properties for (\w+)\s*\n\s*ptxas\s+\.\s+(\d+) bytes stack "
                    r"frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_REGS = re.compile(r"Compiling entry function '(\w+)'.*?Used (\d+) registers", re.S)


@dataclass
class CompileReport:
    """What NVRTC produced: the binary (cubin), its log, and per-kernel spills/registers."""

    binary: bytes
    log: str
    spills: dict[str, tuple[int, int]] = field(default_factory=dict)
    registers: dict[str, int] = field(default_factory=dict)


def available() -> bool:
    try:
        from cuda.bindings import nvrtc  # noqa: F401
    except ImportError:
        return False
    return True


def _check(result: tuple, what: str) -> tuple:
    from cuda.bindings import nvrtc
    if result[0] != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        raise CompileError(f"NVRTC {what} failed: {result[0]}")
    return result[1:]


def compile_source(source: str, filename: str, arch: str,
                   options: Sequence[str] = ()) -> CompileReport:
    """Compile ``source`` for ``arch`` ("sm_90"); a CompileError carries NVRTC's log."""
    try:
        from cuda.bindings import nvrtc
    except ImportError:
        raise CompileError("compiling CUDA kernels needs NVRTC: pip install cuda-bindings "
                           "nvidia-cuda-nvrtc (or install CuPy)") from None
    (prog,) = _check(nvrtc.nvrtcCreateProgram(source.encode(), filename.encode(), 0, [], []),
                     "createProgram")
    opts = [f"--gpu-architecture={arch}", "-std=c++17", "--ptxas-options=-v", *options]
    encoded = [o.encode() for o in opts]
    status = nvrtc.nvrtcCompileProgram(prog, len(encoded), encoded)[0]
    (size,) = _check(nvrtc.nvrtcGetProgramLogSize(prog), "getProgramLogSize")
    log = b" " * size
    nvrtc.nvrtcGetProgramLog(prog, log)
    text = log.decode(errors="replace").rstrip("\x00 ")
    if status != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        nvrtc.nvrtcDestroyProgram(prog)
        errors = [ln for ln in text.splitlines() if "error" in ln] or text.splitlines()
        raise CompileError(f"{filename}: does not compile for {arch}:\n" +
                           "\n".join(errors[:12]))
    (size,) = _check(nvrtc.nvrtcGetCUBINSize(prog), "getCUBINSize")
    binary = b" " * size
    nvrtc.nvrtcGetCUBIN(prog, binary)
    nvrtc.nvrtcDestroyProgram(prog)
    report = CompileReport(binary, text)
    for name, _stack, stores, loads in _SPILL.findall(text):
        if int(stores) or int(loads):
            report.spills[name] = (int(stores), int(loads))
    for name, regs in _REGS.findall(text):
        report.registers[name] = int(regs)
    return report


def check_file(family: str, arch: str = "sm_90") -> CompileReport:
    """Compile ``kernels/<family>.cu`` with NVRTC for ``arch`` (no GPU needed)."""
    source, filename = kernel_file(family)
    return compile_source(source, filename, arch)
