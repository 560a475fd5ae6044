"""Kernel sources: reading the ``.cu`` files, expanding the prelude, parsing signatures.

A kernel's parameters are read from its source so that a launch can check and pack its
arguments the way ``cuLaunchKernel`` takes them, on the GPU and on the emulator alike.

>>> params = parse_kernels('extern "C" __global__ void f(const float* x, int n) {}')
>>> [(p.name, p.kind, p.ctype) for p in params["f"]]
[('x', 'pointer', 'float'), ('n', 'scalar', 'int')]
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import ml_dtypes
import numpy as np

KERNEL_DIR = Path(__file__).parent / "kernels"
PRELUDE = "prelude.cuh"

# C type -> NumPy dtype, for scalars passed by value and for what pointers point to.
CTYPES = {
    "float": np.float32, "double": np.float64, "lg_half": np.float16,
    "lg_bf16": ml_dtypes.bfloat16, "bool": np.bool_, "char": np.int8,
    "signed char": np.int8, "unsigned char": np.uint8, "short": np.int16,
    "unsigned short": np.uint16, "int": np.int32, "unsigned": np.uint32,
    "unsigned int": np.uint32, "long long": np.int64, "long long int": np.int64,
    "i64": np.int64, "int64_t": np.int64, "long": np.int64, "unsigned long long": np.uint64,
    "size_t": np.uint64, "uint64_t": np.uint64, "int32_t": np.int32, "uint32_t": np.uint32,
    "uint8_t": np.uint8, "int8_t": np.int8,
}
STRUCTS = {"lg_layout": np.dtype([("ndim", np.int64), ("shape", np.int64, 8),
                                  ("stride", np.int64, 8)])}
LAYOUT_DIMS = 8

_KERNEL = re.compile(r"__global__\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?void\s+(\w+)\s*"
                     r"\(([^)]*)\)")
_QUALIFIERS = re.compile(r"\b(const|volatile|__restrict__|__restrict|restrict)\b")


@dataclass(frozen=True)
class Param:
    """One kernel parameter: ``kind`` is "pointer", "scalar" or "struct"; ``ctype`` the
    C type (pointed-to type for pointers); ``dtype`` its NumPy dtype (None for void*)."""

    name: str
    kind: str
    ctype: str
    dtype: np.dtype | None
    const: bool = False


def _param(text: str, kernel: str) -> Param:
    text = " ".join(text.split())
    match = re.match(r"(.*?)(\w+)\s*$", text)
    if match is None or not match.group(1).strip():
        raise ValueError(f"kernel {kernel}: can't read the parameter {text!r}; write each "
                         "parameter as 'type name'")
    ctype, name = match.group(1), match.group(2)
    const = "const" in ctype.split() or ctype.startswith("const")
    base = " ".join(_QUALIFIERS.sub(" ", ctype).replace("*", " * ").split())
    if base.endswith("&"):
        raise ValueError(f"kernel {kernel}: parameter {name} is a reference; kernels take "
                         "pointers and values")
    if "*" in base:
        pointee = base.replace("*", "").strip()
        if base.count("*") > 1:
            return Param(name, "pointer", pointee + "*", None, const)
        dtype = None if pointee == "void" else CTYPES.get(pointee)
        if pointee != "void" and dtype is None:
            dtype = np.dtype(np.uint8) if pointee in STRUCTS else None
        return Param(name, "pointer", pointee, None if dtype is None else np.dtype(dtype),
                     const)
    if base in STRUCTS:
        return Param(name, "struct", base, STRUCTS[base], const)
    if base not in CTYPES:
        raise ValueError(f"kernel {kernel}: parameter {name} has type {base!r}, which a "
                         f"launch can't pass; use one of {', '.join(sorted(CTYPES))}, a "
                         "pointer, or lg_layout")
    return Param(name, "scalar", base, np.dtype(CTYPES[base]), const)


_DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(\w+)\(([^)]*)\)[ \t]*(.*)$", re.M)


def _split_args(text: str) -> list[str]:
    args, depth, current = [], 0, []
    for ch in text:
        if ch == "," and depth == 0:
            args.append("".join(current).strip())
            current = []
            continue
        depth += ch in "([{"
        depth -= ch in ")]}"
        current.append(ch)
    args.append("".join(current).strip())
    return args


def expand_macros(source: str) -> str:
    """``source`` with its own function-like macros expanded (parameters, ``##`` pasting,
    macros passed to macros): enough to see kernels that a macro instantiates per dtype.
    Used to read signatures only; the compilers run their real preprocessors."""
    source = source.replace("\\\n", " ")
    macros = {m.group(1): ([a.strip() for a in m.group(2).split(",") if a.strip()],
                           m.group(3)) for m in _DEFINE.finditer(source)}
    text = _DEFINE.sub("", source)
    if not macros:
        return text
    call = re.compile(r"\b(" + "|".join(map(re.escape, macros)) + r")\s*\(")
    for _ in range(10000):
        match = call.search(text)
        if match is None:
            break
        depth, end = 1, match.end()
        while depth and end < len(text):
            depth += text[end] == "("
            depth -= text[end] == ")"
            end += 1
        params, body = macros[match.group(1)]
        args = _split_args(text[match.end():end - 1])
        for name, value in zip(params, args):
            body = re.sub(r"\b" + re.escape(name) + r"\b", lambda _m, v=value: v, body)
        body = re.sub(r"\s*##\s*", "", body)
        text = text[:match.start()] + " " + body + " " + text[end:]
    return text


def parse_kernels(source: str) -> dict[str, list[Param]]:
    """``{kernel name: [Param, ...]}`` for every ``__global__`` function in ``source``."""
    source = re.sub(r"//[^\n]*|/\*.*?\*/", " ", source, flags=re.S)
    source = expand_macros(source)
    kernels = {}
    for match in _KERNEL.finditer(source):
        name, params = match.group(1), match.group(2).strip()
        if params in ("", "void"):
            kernels[name] = []
            continue
        kernels[name] = [_param(p, name) for p in params.split(",")]
    return kernels


def expand(source: str, filename: str) -> str:
    """``source`` with ``#include "prelude.cuh"`` replaced by the prelude, ``#line``
    directives keeping compiler messages pointed at the right file and line."""
    include = f'#include "{PRELUDE}"'
    if include not in source:
        return f'#line 1 "{filename}"\n{source}'
    prelude = (KERNEL_DIR / PRELUDE).read_text()
    before, _, after = source.partition(include)
    line = before.count("\n") + 1
    return (f'#line 1 "{filename}"\n{before}\n#line 1 "{PRELUDE}"\n{prelude}\n'
            f'#line {line + 1} "{filename}"{after}')  # after: the rest of the include line


def kernel_file(name: str) -> tuple[str, str]:
    """(expanded source, file name) of ``kernels/<name>.cu``."""
    path = KERNEL_DIR / f"{name}.cu"
    return expand(path.read_text(), path.name), path.name


def enum_values(source: str, enum: str) -> dict[str, int]:
    """The members of ``enum <name> { A, B, ... }`` in ``source`` and their values (the
    kernels' op codes, read from the one place they are defined)."""
    match = re.search(r"enum\s+" + enum + r"\s*\{([^}]*)\}", source)
    if match is None:
        raise ValueError(f"no enum {enum} in the kernel source")
    body = re.sub(r"//[^\n]*", "", match.group(1))
    names = [m.strip() for m in body.split(",") if m.strip()]
    return {n: i for i, n in enumerate(names)}
