"""Checkpoints as safetensors files, written and read by hand (no pickle, ever).

A safetensors file is an 8-byte little-endian header length ``n``, ``n`` bytes of JSON
header, then the raw tensor bytes. The header maps each tensor's name to its ``dtype``
(F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL), ``shape`` and ``data_offsets``
(begin and end within the data section); the optional ``"__metadata__"`` entry is a
string-to-string dict.

``save_file``/``load_file`` store a flat ``{name: tensor}`` dict (Hugging Face weights).
``save``/``load`` store any nest of dicts, lists and tuples of tensors, NumPy arrays,
numbers, strings and None (a model's and an optimizer's state dicts, a step count): the
tensors are named after their path in the nest (``"model.fc.weight"``), and the nest
itself goes into ``__metadata__["lightgrad"]`` as JSON. Writes are atomic: a crash leaves
the previous file untouched.

>>> import os, tempfile
>>> import lightgrad as lg
>>> path = os.path.join(tempfile.mkdtemp(), "ckpt.safetensors")
>>> save({"w": lg.ones(2), "step": 3, "betas": (0.9, 0.99)}, path)
>>> load(path)
{'w': tensor([1., 1.]), 'step': 3, 'betas': (0.9, 0.99)}
"""
from __future__ import annotations

import json
import math
import os
import struct
import sys
import tempfile
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import numpy as np

from . import dtypes
from .backends import device as as_device
from .tensor import Tensor

_CODES = {"F64": dtypes.float64, "F32": dtypes.float32, "F16": dtypes.float16,
          "BF16": dtypes.bfloat16, "I64": dtypes.int64, "I32": dtypes.int32,
          "I16": dtypes.int16, "I8": dtypes.int8, "U8": dtypes.uint8, "BOOL": dtypes.bool_}
_CODE_OF = {dt.name: code for code, dt in _CODES.items()}
_STRUCTURE_KEY = "lightgrad"


# ----------------------------------------------------------------------------- flat files
def save_file(tensors: dict[str, Tensor], path: str | os.PathLike,
              metadata: dict[str, str] | None = None) -> None:
    """Write ``{name: tensor}`` to a safetensors file (atomically).

    >>> import os, tempfile
    >>> import lightgrad as lg
    >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
    >>> save_file({"weight": lg.zeros(2, 3)}, path, metadata={"format": "pt"})
    >>> load_file(path)["weight"].shape
    (2, 3)
    """
    if not isinstance(tensors, dict):
        raise TypeError(f"save_file: expected a dict of tensors, got {type(tensors).__name__}")
    arrays = {}
    for name, t in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise TypeError(f"save_file: tensor names must be strings other than "
                            f"'__metadata__', got {name!r}")
        if not isinstance(t, Tensor):
            raise TypeError(f"save_file: value for {name!r} is a {type(t).__name__}, not a "
                            "Tensor")
        arrays[name] = _to_numpy(t)
    if metadata is not None and not (isinstance(metadata, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())):
        raise TypeError("save_file: metadata must be a dict of str to str")
    _write(Path(path), arrays, metadata)


def load_file(path: str | os.PathLike, device: Any = "cpu") -> dict[str, Tensor]:
    """Read every tensor of a safetensors file into ``{name: tensor}`` on ``device``."""
    arrays, _ = _read(Path(path), "load_file")
    return {name: _to_tensor(arr, device) for name, arr in arrays.items()}


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``__metadata__`` dict of a safetensors file (empty when it has none)."""
    return _read(Path(path), "read_metadata")[1]


# ----------------------------------------------------------------------------- nested objects
def save(obj: Any, path: str | os.PathLike) -> None:
    """Save a nest of dicts/lists/tuples of tensors, NumPy arrays, numbers, strings and None
    (e.g. ``{"model": m.state_dict(), "optimizer": opt.state_dict(), "step": 10}``) as a
    safetensors file, atomically. A tensor reached twice is stored once and comes back as
    one tensor (tied weights stay tied).
    """
    arrays: dict[str, np.ndarray] = {}
    structure = _encode(obj, "", arrays, {})
    metadata = {"format": "pt", _STRUCTURE_KEY: json.dumps(structure)}
    _write(Path(path), arrays, metadata)


def load(path: str | os.PathLike, device: Any = "cpu") -> Any:
    """Read back what ``save`` wrote, tensors on ``device``. A safetensors file written by
    another tool comes back as a flat ``{name: tensor}`` dict."""
    path = Path(path)
    arrays, metadata = _read(path, "load")
    if _STRUCTURE_KEY not in metadata:
        return {name: _to_tensor(arr, device) for name, arr in arrays.items()}
    try:
        structure = json.loads(metadata[_STRUCTURE_KEY])
    except json.JSONDecodeError as err:
        raise ValueError(f"load: {path} is corrupt: its lightgrad metadata is not valid "
                         f"JSON ({err})") from None
    tensors: dict[str, Tensor] = {}
    return _decode(structure, arrays, tensors, device, path)


def _join(prefix: str, key: Any) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def _encode(obj: Any, where: str, arrays: dict[str, np.ndarray], seen: dict[int, str]) -> Any:
    """The JSON form of ``obj``; tensors and arrays go into ``arrays`` under their path."""
    if isinstance(obj, (Tensor, np.ndarray)):
        kind = "__tensor__" if isinstance(obj, Tensor) else "__ndarray__"
        if id(obj) not in seen:
            name, n = where or "tensor", 1
            while name in arrays or name == "__metadata__":
                name, n = f"{where or 'tensor'}~{n}", n + 1
            arrays[name] = _to_numpy(obj) if isinstance(obj, Tensor) else _check_array(obj)
            seen[id(obj)] = name
        return {kind: seen[id(obj)]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.generic) and obj.dtype.kind in "biuf":
        return obj.item()
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, _join(where, i), arrays, seen)
                              for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, _join(where, i), arrays, seen) for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _encode(v, _join(where, k), arrays, seen) for k, v in obj.items()}
        for k in obj:
            if k is not None and not isinstance(k, (str, int, float, bool)):
                raise TypeError(f"save: dict keys must be strings, numbers, bools or None; "
                                f"got a {type(k).__name__} key at {where or 'the top level'}")
        return {"__dict__": [[k, _encode(v, _join(where, k), arrays, seen)]
                             for k, v in obj.items()]}
    raise TypeError(f"save: can't store a {type(obj).__name__} at {where or 'the top level'}; "
                    "checkpoints hold tensors, NumPy arrays, numbers, strings, None, and "
                    "dicts, lists and tuples of them")


def _decode(node: Any, arrays: dict[str, np.ndarray], tensors: dict[str, Tensor],
            device: Any, path: Path) -> Any:
    if isinstance(node, list):
        return [_decode(v, arrays, tensors, device, path) for v in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        (tag, value), = node.items()
        if tag in ("__tensor__", "__ndarray__"):
            if value not in arrays:
                raise ValueError(f"load: {path} is corrupt: its metadata refers to tensor "
                                 f"{value!r}, which the file does not hold")
            if tag == "__ndarray__":
                return arrays[value]
            if value not in tensors:
                tensors[value] = _to_tensor(arrays[value], device)
            return tensors[value]
        if tag == "__tuple__":
            return tuple(_decode(v, arrays, tensors, device, path) for v in value)
        if tag == "__dict__":
            return {k: _decode(v, arrays, tensors, device, path) for k, v in value}
    return {k: _decode(v, arrays, tensors, device, path) for k, v in node.items()}


# ----------------------------------------------------------------------------- conversion
def _check_array(array: np.ndarray) -> np.ndarray:
    if array.dtype not in dtypes._BY_NUMPY:
        raise TypeError(f"save: NumPy arrays of dtype {array.dtype} can't be stored; "
                        f"supported: {', '.join(dt.name for dt in _CODES.values())}")
    return array


def _to_numpy(t: Tensor) -> np.ndarray:
    return t.device.backend.to_numpy(t.detach()._data)


def _to_tensor(array: np.ndarray, device: Any) -> Tensor:
    from .creation import from_numpy
    out = from_numpy(array)
    return out if as_device(device).type == "cpu" else out.to(device)


# ----------------------------------------------------------------------------- the file format
def _tensor_bytes(array: np.ndarray) -> np.ndarray:
    """The array's little-endian bytes, as a flat uint8 view where possible."""
    flat = np.ascontiguousarray(array).reshape(-1)
    if sys.byteorder == "big":
        flat = flat.byteswap()
    return flat.view(np.uint8)


def _write(path: Path, arrays: dict[str, np.ndarray], metadata: dict[str, str] | None) -> None:
    # Widest dtypes first keeps every tensor aligned to its item size in the file.
    order = sorted(arrays, key=lambda name: -arrays[name].dtype.itemsize)
    header: dict[str, Any] = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for name in order:
        arr = arrays[name]
        header[name] = {"dtype": _CODE_OF[dtypes.from_numpy_dtype(arr.dtype).name],
                        "shape": list(arr.shape), "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with _atomic_writer(path) as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name in order:
            f.write(_tensor_bytes(arrays[name]))


@contextmanager
def _atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """A file object whose contents replace ``path`` only once fully written and synced."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"save: directory {folder} does not exist (saving {path})")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _corrupt(path: Path, op: str, what: str) -> ValueError:
    return ValueError(f"{op}: {path} is not a valid safetensors file: {what}")


def _read(path: Path, op: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Parse and validate a safetensors file: ``({name: array}, metadata)``."""
    if not path.exists():
        raise FileNotFoundError(f"{op}: no such file: {path}")
    if path.is_dir():
        raise IsADirectoryError(f"{op}: {path} is a directory, not a safetensors file")
    size = path.stat().st_size
    data = bytearray(size)
    with open(path, "rb") as f:
        got = f.readinto(data)
    if got != size:
        raise OSError(f"{op}: read only {got} of {size} bytes from {path}")
    if size < 8:
        raise _corrupt(path, op, f"it has only {size} bytes, too few for the 8-byte header "
                                 "length (empty or truncated file)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > size - 8:
        raise _corrupt(path, op, f"the header length says {n} bytes but only {size - 8} "
                                 "follow (truncated file, or not a safetensors file)")
    try:
        header = json.loads(bytes(data[8:8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _corrupt(path, op, f"its header is not valid JSON ({err})") from None
    if not isinstance(header, dict):
        raise _corrupt(path, op, "its header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _corrupt(path, op, "its __metadata__ is not a dict of strings")
    body_start, body_size = 8 + n, size - 8 - n
    arrays, spans = {}, []
    for name, info in header.items():
        dtype, shape, (begin, end) = _entry(path, op, name, info)
        count = math.prod(shape)
        if end - begin != count * dtype.itemsize:
            raise _corrupt(path, op, f"tensor {name!r} of shape {tuple(shape)} and dtype "
                                     f"{info['dtype']} needs {count * dtype.itemsize} bytes "
                                     f"but its data_offsets span {end - begin}")
        if end > body_size:
            raise _corrupt(path, op, f"tensor {name!r} ends at byte {end} of the data but only "
                                     f"{body_size} bytes follow the header (truncated file)")
        arr = np.frombuffer(data, dtype=dtype, count=count, offset=body_start + begin) \
            if count else np.empty(0, dtype=dtype)
        if sys.byteorder == "big":
            arr = arr.byteswap()
        arrays[name] = arr.reshape(shape)
        spans.append((begin, end))
    covered = 0
    for begin, end in sorted(spans):
        if begin != covered:
            raise _corrupt(path, op, f"the tensors' data_offsets leave a gap or overlap at "
                                     f"byte {min(begin, covered)}")
        covered = end
    if covered != body_size:
        raise _corrupt(path, op, f"the tensors cover {covered} bytes but {body_size} follow "
                                 "the header")
    return arrays, metadata


def _entry(path: Path, op: str, name: str, info: Any) -> tuple[np.dtype, list[int], list[int]]:
    """Validate one header entry: its NumPy dtype, shape and data offsets."""
    if not isinstance(info, dict) or info.get("dtype") not in _CODES:
        code = info.get("dtype") if isinstance(info, dict) else info
        raise _corrupt(path, op, f"tensor {name!r} has unsupported or missing dtype {code!r} "
                                 f"(supported: {', '.join(_CODES)})")
    shape, offsets = info.get("shape"), info.get("data_offsets")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise _corrupt(path, op, f"tensor {name!r} has an invalid shape {shape!r}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and
            all(isinstance(o, int) for o in offsets) and 0 <= offsets[0] <= offsets[1]):
        raise _corrupt(path, op, f"tensor {name!r} has invalid data_offsets {offsets!r}")
    return _CODES[info["dtype"]].np, shape, offsets
