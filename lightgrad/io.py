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

import importlib
import inspect
import io
import json
import math
import os
import struct
import sys
import tempfile
import zipfile
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

import numpy as np

from . import dtypes
from .backends import Device, device as as_device
from .tensor import Tensor

_CODES = {"F64": dtypes.float64, "F32": dtypes.float32, "F16": dtypes.float16,
          "BF16": dtypes.bfloat16, "I64": dtypes.int64, "I32": dtypes.int32,
          "I16": dtypes.int16, "I8": dtypes.int8, "U8": dtypes.uint8, "BOOL": dtypes.bool_}
_CODE_OF = {dt.name: code for code, dt in _CODES.items()}
_STRUCTURE_KEY = "lightgrad"
File = str | os.PathLike | BinaryIO
MapLocation = None | str | Device | dict | Callable[..., Any]
_DEVICES_KEY = "lightgrad.devices"


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


def load_file(path: File, device: Any = "cpu") -> dict[str, Tensor]:
    """Read every tensor of a safetensors file (a path or a binary file object) into
    ``{name: tensor}`` on ``device``."""
    arrays, _ = _read(_target(path), "load_file")
    return {name: _to_tensor(arr, device) for name, arr in arrays.items()}


def read_metadata(path: File) -> dict[str, str]:
    """The ``__metadata__`` dict of a safetensors file (empty when it has none)."""
    return _read(_target(path), "read_metadata")[1]


# ----------------------------------------------------------------------------- nested objects


class UnsafeLoadError(RuntimeError):
    """``load(..., weights_only=True)`` met something that needs code to be imported and
    run (a whole ``nn.Module``): pass ``weights_only=False`` only for files you trust."""


def save(obj: Any, f: File) -> None:
    """Save a nest of dicts/lists/tuples of tensors, NumPy arrays, numbers, strings and None
    (e.g. ``{"model": m.state_dict(), "optimizer": opt.state_dict(), "step": 10}``) as a
    safetensors file: to a path (atomically) or to a binary file object. A tensor reached
    twice is stored once and comes back as one tensor (tied weights stay tied). A whole
    ``nn.Module`` is stored as its class path and state dict (see ``load``).

    >>> import io
    >>> import lightgrad as lg
    >>> buf = io.BytesIO()
    >>> save({"w": lg.ones(2), "epoch": 3}, buf)
    >>> _ = buf.seek(0)
    >>> load(buf)
    {'w': tensor([1., 1.]), 'epoch': 3}
    """
    arrays: dict[str, np.ndarray] = {}
    devices: dict[str, str] = {}
    structure = _encode(obj, "", arrays, {}, devices)
    metadata = {"format": "pt", _STRUCTURE_KEY: json.dumps(structure)}
    if devices:
        metadata[_DEVICES_KEY] = json.dumps(devices)
    _write(_target(f), arrays, metadata)


def load(f: File, map_location: MapLocation = None, weights_only: bool = True, *,
         device: Any = None) -> Any:
    """Read back what ``save`` wrote, from a path or a binary file object.

    ``map_location`` says where tensors go, as in PyTorch: None (each tensor back on the
    device it was saved from; a RuntimeError suggesting ``map_location`` when that device
    isn't available here), ``"cpu"``, ``"cuda"``, a ``Device``, a dict from saved to
    wanted location (``{"cuda:0": "cpu"}``; locations it doesn't name stay where they were
    saved), or a callable ``fn(cpu_tensor, saved_location)`` returning a tensor, a device,
    or None (keep the saved location). ``device`` is the older name.

    With ``weights_only=True`` (the default) only data comes back; a saved ``nn.Module``
    raises ``UnsafeLoadError`` unless its class was allowed with
    ``lightgrad.serialization.add_safe_globals``. ``weights_only=False`` says "I trust this
    file": the module's class is imported, called with no arguments, and given the saved
    state (a class whose constructor needs arguments can't be rebuilt this way; save its
    ``state_dict()`` instead). A safetensors file written by another tool comes back as a
    flat ``{name: tensor}`` dict. PyTorch pickle checkpoints are refused with a note on how
    to convert them; they are never unpickled.

    >>> import io
    >>> import lightgrad as lg
    >>> buf = io.BytesIO()
    >>> save({"w": lg.zeros(2)}, buf)
    >>> load(io.BytesIO(buf.getvalue()), map_location="cpu")["w"].device
    device(type='cpu')
    """
    if device is not None:
        if map_location is not None:
            raise TypeError("load: pass map_location or device, not both")
        map_location = device
    source = _target(f)
    where = _name(source)
    arrays, metadata = _read(source, "load")
    devices: dict[str, str] = {}
    if _DEVICES_KEY in metadata:
        try:
            devices = json.loads(metadata[_DEVICES_KEY])
            if not (isinstance(devices, dict) and all(
                    isinstance(v, str) for v in devices.values())):
                raise ValueError("not a dict of strings")
        except (ValueError, RecursionError) as err:
            raise ValueError(f"load: {where} is corrupt: its device metadata is invalid "
                             f"({err})") from None
    placer = _Placer(map_location, devices, where)
    if _STRUCTURE_KEY not in metadata:
        return {name: placer(name, arr) for name, arr in arrays.items()}
    try:
        structure = json.loads(metadata[_STRUCTURE_KEY])
    except (json.JSONDecodeError, RecursionError) as err:
        raise ValueError(f"load: {where} is corrupt: its lightgrad metadata is not valid "
                         f"JSON ({err})") from None
    tensors: dict[str, Tensor] = {}
    try:
        return _decode(structure, arrays, tensors, placer, where, weights_only)
    except Exception as err:
        if getattr(err, "_lightgrad", False):
            raise
        raise ValueError(f"load: {where} is corrupt: its lightgrad metadata has an invalid "
                         f"structure ({type(err).__name__}: {err})") from None


def _target(f: File) -> "Path | BinaryIO":
    if hasattr(f, "write") or hasattr(f, "read"):
        return f  # type: ignore[return-value]
    if isinstance(f, (str, os.PathLike)):
        return Path(f)
    raise TypeError(f"expected a path or a binary file object, got {type(f).__name__}")


def _name(source: "Path | BinaryIO") -> str:
    if isinstance(source, Path):
        return str(source)
    name = getattr(source, "name", None)
    return str(name) if isinstance(name, (str, os.PathLike)) else f"<{type(source).__name__}>"


def _mark(err: BaseException) -> BaseException:
    err._lightgrad = True  # type: ignore[attr-defined]
    return err


class _Placer:
    """Turns a stored array into a tensor on the device ``map_location`` asks for."""

    def __init__(self, map_location: MapLocation, devices: dict[str, str], where: str):
        if not (map_location is None or isinstance(map_location, (str, Device, dict))
                or callable(map_location)):
            raise TypeError(f"load: map_location must be None, a string, a device, a dict or "
                            f"a callable, got {type(map_location).__name__}")
        if isinstance(map_location, dict):
            map_location = {str(k): v for k, v in map_location.items()}
        self.map_location, self.devices, self.where = map_location, devices, where

    def __call__(self, name: str, array: np.ndarray) -> Tensor:
        from .creation import from_numpy
        saved = self.devices.get(name, "cpu")
        m = self.map_location
        target: Any = saved
        if isinstance(m, (str, Device)):
            target = m
        elif isinstance(m, dict):
            target = m.get(saved, saved)
        elif m is not None:
            result = m(from_numpy(array), saved)
            if isinstance(result, Tensor):
                return result
            if result is not None:
                target = result
        try:
            dev = as_device(target)
            if dev.type == "cuda" and (dev.index or 0) >= _cuda_device_count():
                raise RuntimeError(f"this machine has {_cuda_device_count()} CUDA device(s)")
        except (RuntimeError, ValueError, TypeError) as err:
            raise _mark(RuntimeError(
                f"load: tensor {name!r} of {self.where} was saved on {saved} and is to go to "
                f"{target}, which is unusable here ({err}); to load it elsewhere pass "
                f"map_location, e.g. lightgrad.load(f, map_location='cpu')")) from None
        out = from_numpy(array)
        return out if dev.type == "cpu" else out.to(dev)


def _cuda_device_count() -> int:
    from . import cuda
    return cuda.device_count()


def _join(prefix: str, key: Any) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def _encode(obj: Any, where: str, arrays: dict[str, np.ndarray], seen: dict[int, str],
            devices: dict[str, str] | None = None) -> Any:
    """The JSON form of ``obj``; tensors and arrays go into ``arrays`` under their path."""
    devices = {} if devices is None else devices

    def enc(value: Any, at: str) -> Any:
        return _encode(value, at, arrays, seen, devices)
    if isinstance(obj, (Tensor, np.ndarray)):
        kind = "__tensor__" if isinstance(obj, Tensor) else "__ndarray__"
        if id(obj) not in seen:
            name, n = where or "tensor", 1
            while name in arrays or name == "__metadata__":
                name, n = f"{where or 'tensor'}~{n}", n + 1
            arrays[name] = _to_numpy(obj) if isinstance(obj, Tensor) else _check_array(obj)
            seen[id(obj)] = name
            if isinstance(obj, Tensor) and obj.device.type != "cpu":
                devices[name] = str(obj.device)
        return {kind: seen[id(obj)]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.generic) and obj.dtype.kind in "biuf":
        return obj.item()
    if isinstance(obj, tuple):
        return {"__tuple__": [enc(v, _join(where, i)) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [enc(v, _join(where, i)) for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: enc(v, _join(where, k)) for k, v in obj.items()}
        for k in obj:
            if k is not None and not isinstance(k, (str, int, float, bool)):
                raise TypeError(f"save: dict keys must be strings, numbers, bools or None; "
                                f"got a {type(k).__name__} key at {where or 'the top level'}")
        return {"__dict__": [[k, enc(v, _join(where, k))] for k, v in obj.items()]}
    from .nn.module import Module
    if isinstance(obj, Module):
        cls = type(obj)
        if "<locals>" in cls.__qualname__ or cls.__module__ == "__main__":
            raise TypeError(f"save: can't store a whole {cls.__qualname__} module at "
                            f"{where or 'the top level'}: its class must be importable (not "
                            "defined in __main__ or inside a function); save its "
                            "state_dict() instead")
        return {"__module__": {"class": f"{cls.__module__}:{cls.__qualname__}",
                               "training": bool(obj.training),
                               "state": enc(dict(obj.state_dict()), where)}}
    raise TypeError(f"save: can't store a {type(obj).__name__} at {where or 'the top level'}; "
                    "checkpoints hold tensors, NumPy arrays, numbers, strings, None, "
                    "nn.Modules, and dicts, lists and tuples of them")


def _decode(node: Any, arrays: dict[str, np.ndarray], tensors: dict[str, Tensor],
            place: Callable[[str, np.ndarray], Tensor], where: str,
            weights_only: bool = True) -> Any:
    def dec(value: Any) -> Any:
        return _decode(value, arrays, tensors, place, where, weights_only)
    if isinstance(node, list):
        return [dec(v) for v in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        (tag, value), = node.items()
        if tag in ("__tensor__", "__ndarray__"):
            if not isinstance(value, str) or value not in arrays:
                raise _mark(ValueError(f"load: {where} is corrupt: its metadata refers to "
                                       f"tensor {value!r}, which the file does not hold"))
            if tag == "__ndarray__":
                return arrays[value]
            if value not in tensors:
                tensors[value] = place(value, arrays[value])
            return tensors[value]
        if tag == "__tuple__":
            return tuple(dec(v) for v in value)
        if tag == "__dict__":
            return {k: dec(v) for k, v in value}
        if tag == "__module__":
            return _rebuild_module(value, dec(value["state"]), where, weights_only)
    return {k: dec(v) for k, v in node.items()}


def _rebuild_module(info: dict, state: dict, where: str, weights_only: bool) -> Any:
    """Import a saved module's class, build it with no arguments and load its state."""
    from .nn.module import Module
    from .serialization import _is_safe
    path = info["class"]
    if not isinstance(path, str) or path.count(":") != 1:
        raise ValueError(f"invalid class path {path!r}")
    if weights_only and not _is_safe(path):
        raise _mark(UnsafeLoadError(
            f"load: {where} holds a whole nn.Module of class {path}; rebuilding it imports "
            "and runs that class's code, which weights_only=True refuses. If you trust this "
            "file, call lg.load(f, weights_only=False) (or allow the class with "
            "lightgrad.serialization.add_safe_globals([cls])); better, save "
            "model.state_dict() and load that into a model you build yourself"))
    try:
        modname, qualname = path.split(":")
        obj: Any = importlib.import_module(modname)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        if not (isinstance(obj, type) and issubclass(obj, Module)):
            raise TypeError(f"load: {where} names {path} as a module class, but it is not "
                            "an nn.Module subclass")
        try:
            inspect.signature(obj).bind()
        except TypeError:
            raise TypeError(f"load: {where} holds a {path} module, whose constructor needs "
                            "arguments; lightgrad stores a module's class and state, not its "
                            "constructor arguments. Save model.state_dict() instead and "
                            "load it into a model you build yourself") from None
        module = obj()
        devs = {t.device for t in state.values() if isinstance(t, Tensor)}
        if len(devs) == 1 and next(iter(devs)).type != "cpu":
            module = module.to(next(iter(devs)))
        module.load_state_dict(state)
        module.train(bool(info.get("training", True)))
        return module
    except Exception as err:
        _mark(err)
        raise


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


def _write(path: "Path | BinaryIO", arrays: dict[str, np.ndarray],
           metadata: dict[str, str] | None) -> None:
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
    def emit(f: BinaryIO) -> None:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name in order:
            f.write(_tensor_bytes(arrays[name]))
    if not isinstance(path, Path):
        emit(path)
        return
    with _atomic_writer(path) as f:
        emit(f)


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


def _corrupt(path: Any, op: str, what: str) -> ValueError:
    return _mark(ValueError(f"{op}: {path} is not a valid safetensors file: {what}"))


_CONVERT = ("lightgrad never unpickles files (unpickling can run arbitrary code). Convert it "
            "once where PyTorch is installed: lightgrad convert in.pt out.safetensors, then "
            "load the .safetensors file")


def _pickle_kind(data: bytes | bytearray) -> str | None:
    """What kind of pickle ``data`` is, or None when it doesn't look like one."""
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, ValueError, OSError):
            return "a zip archive (not a safetensors file)"
        if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            return "a PyTorch pickle checkpoint (torch.save's zip format, with data.pkl)"
        return "a zip archive (not a safetensors file)"
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5 and data[8:9] != b"{":
        if b"torch" in data[:4096] or b"storage" in data[:4096]:
            return "a PyTorch pickle checkpoint (torch.save's legacy format)"
        return "a Python pickle"
    return None


def _read(path: "Path | BinaryIO", op: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Parse and validate a safetensors file: ``({name: array}, metadata)``."""
    if isinstance(path, Path):
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
    else:
        raw = path.read()
        if not isinstance(raw, (bytes, bytearray)):
            raise TypeError(f"{op}: the file object must be opened in binary mode ('rb'), "
                            f"its read() gave a {type(raw).__name__}")
        data, size = bytearray(raw), len(raw)
        path = _name(path)  # type: ignore[assignment]
    kind = _pickle_kind(data)
    if kind is not None:
        raise _corrupt(path, op, f"it is {kind}. {_CONVERT}")
    if size < 8:
        raise _corrupt(path, op, f"it has only {size} bytes, too few for the 8-byte header "
                                 "length (empty or truncated file)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > size - 8:
        raise _corrupt(path, op, f"the header length says {n} bytes but only {size - 8} "
                                 "follow (truncated file, or not a safetensors file)")
    try:
        header = json.loads(bytes(data[8:8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
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
