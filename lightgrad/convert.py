"""``lightgrad convert in.pt out.safetensors``: turn a PyTorch checkpoint into a lightgrad one.

lightgrad never unpickles files. PyTorch's ``torch.save`` files are pickles, so this
command needs PyTorch itself, and reads them with ``torch.load(weights_only=True)``
(PyTorch's restricted unpickler: tensors, containers and plain values only). What comes
out is written with ``lightgrad.save``: ``lightgrad.load`` then gives back the same nest of
dicts, lists and tuples, with lightgrad tensors where there were torch tensors (all on the
CPU), and tensors that shared storage (tied weights) stored once.

PyTorch is imported inside ``convert`` only; importing lightgrad never imports it.

>>> import os, tempfile
>>> from lightgrad.convert import convert
>>> convert(os.path.join(tempfile.mkdtemp(), "missing.pt"), "out.safetensors")
... # doctest: +ELLIPSIS
Traceback (most recent call last):
...
FileNotFoundError: convert: no such file: ...missing.pt
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np


class TorchMissingError(ImportError):
    """``convert`` needs PyTorch, which isn't installed."""


def convert(src: str | os.PathLike, dst: str | os.PathLike) -> dict[str, int]:
    """Convert the ``torch.save`` file ``src`` to the lightgrad checkpoint ``dst``; returns
    ``{"tensors": count, "bytes": total}``. Raises ``FileNotFoundError``/``ValueError``
    with a one-line message for a bad input, ``TorchMissingError`` without PyTorch."""
    from .io import save
    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise FileNotFoundError(f"convert: no such file: {src}")
    if src.is_dir():
        raise ValueError(f"convert: {src} is a directory, not a PyTorch checkpoint file")
    if dst.is_dir():
        raise ValueError(f"convert: the output {dst} is a directory; give a file name")
    if dst.exists() and dst.resolve() == src.resolve():
        raise ValueError(f"convert: the output {dst} is the input file; choose another name")
    try:
        import torch
    except ImportError:
        raise TorchMissingError("convert: reading a PyTorch checkpoint needs PyTorch; install "
                                "it (pip install torch) and run the command again") from None
    try:
        obj = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001  (torch raises many kinds; report each in a line)
        raise ValueError(f"convert: torch.load(weights_only=True) can't read {src} "
                         f"({type(err).__name__}: {_reason(err)})") from None
    stats = {"tensors": 0, "bytes": 0}
    converted = _from_torch(obj, "", {}, stats, torch)
    save(converted, dst)
    return stats


def _reason(err: Exception) -> str:
    """The informative line of a ``torch.load`` error (its messages run to many lines)."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(err).splitlines()]
    lines = [line for line in lines if line] or [type(err).__name__]
    for line in lines:
        if "Unsupported global" in line:
            what = line.split("Unsupported global:", 1)[-1].split(". ")[0].strip()
            return f"{what}; a pickled object, not data, which weights_only=True refuses"
    return lines[0]


def _from_torch(obj: Any, where: str, seen: dict[Any, Any], stats: dict[str, int],
                torch: Any) -> Any:
    """``obj`` with torch tensors replaced by lightgrad tensors (tied ones stay tied)."""
    from collections import OrderedDict

    def at(key: Any) -> str:
        return f"{where}.{key}" if where else str(key)
    if isinstance(obj, torch.Tensor):
        return _tensor(obj, where, seen, stats, torch)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (torch.Size,)):
        return tuple(int(n) for n in obj)
    if isinstance(obj, (torch.dtype, torch.device)):
        return str(obj)
    if isinstance(obj, np.ndarray):
        return obj
    if isinstance(obj, (dict, OrderedDict)):
        return {k: _from_torch(v, at(k), seen, stats, torch) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return tuple(_from_torch(v, at(i), seen, stats, torch) for i, v in enumerate(obj))
    if isinstance(obj, list):
        return [_from_torch(v, at(i), seen, stats, torch) for i, v in enumerate(obj)]
    raise ValueError(f"convert: the checkpoint holds a {type(obj).__name__} at "
                     f"{where or 'the top level'}, which a lightgrad checkpoint can't store "
                     "(it stores tensors, numbers, strings, None and dicts, lists and tuples "
                     "of them)")


def _tensor(t: Any, where: str, seen: dict[Any, Any], stats: dict[str, int], torch: Any) -> Any:
    from .creation import from_numpy
    if t.is_sparse or t.is_complex() or t.is_quantized:
        raise ValueError(f"convert: tensor {where or '<top level>'} is sparse, complex or "
                         f"quantized ({t.dtype}, layout {t.layout}); lightgrad can't store it")
    key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride(),
           t.dtype) if t.numel() else id(t)
    if key in seen:
        return seen[key]
    t = t.detach().cpu().contiguous()
    try:
        if t.dtype == torch.bfloat16:
            import ml_dtypes
            array = t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
        else:
            array = t.numpy()
        out = from_numpy(array.copy())
    except TypeError as err:
        raise ValueError(f"convert: tensor {where or '<top level>'} has dtype {t.dtype}, "
                         f"which lightgrad doesn't support ({err})") from None
    seen[key] = out
    stats["tensors"] += 1
    stats["bytes"] += array.nbytes
    return out
