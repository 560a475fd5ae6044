"""Reading an ONNX file defensively: parse with the ``onnx`` package, check, load external data.

``read_model`` returns the ``ModelProto`` (its initializers' data in memory); ``load`` builds
the lightgrad ``Module`` from it. Whatever the bytes, the result is a model or an
``OnnxError`` (never a crash): truncated or corrupt protobuf, tensors whose data do not match
their shape, external data outside the model's own folder, or data larger than memory.

>>> import lightgrad as lg
>>> lg.onnx.load(b"not a model")
Traceback (most recent call last):
    ...
lightgrad.onnx.errors.OnnxLoadError: cannot parse ONNX model: ...
"""
from __future__ import annotations

import os
from typing import Any


from .errors import OnnxError, OnnxLoadError

__all__ = ["onnx_package", "read_model", "load"]


def onnx_package() -> Any:
    """The ``onnx`` module, or an ImportError telling how to install it."""
    try:
        import onnx
    except ImportError as e:  # pragma: no cover - the test extra installs onnx
        raise ImportError("lightgrad.onnx needs the onnx package: pip install lightgrad[onnx]"
                          ) from e
    return onnx


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 1 << 40


def _read_bytes(path_or_bytes: Any) -> tuple[bytes, str | None]:
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return bytes(path_or_bytes), None
    if hasattr(path_or_bytes, "SerializeToString"):
        return path_or_bytes.SerializeToString(), None
    if isinstance(path_or_bytes, (str, os.PathLike)):
        path = os.fspath(path_or_bytes)
        if not os.path.isfile(path):
            raise OnnxLoadError(f"cannot read ONNX model: no such file: {path}")
        size = os.path.getsize(path)
        if size > _memory_bytes():
            raise OnnxLoadError(f"ONNX model {path} is {size} bytes, more than this machine's "
                                "memory")
        with open(path, "rb") as f:
            return f.read(), os.path.dirname(os.path.abspath(path))
    raise OnnxLoadError(f"cannot read ONNX model from a {type(path_or_bytes).__name__}: "
                        "pass a path, bytes or a ModelProto")


def _tensors(graph: Any):
    """Every TensorProto in a graph and its sub-graphs (initializers, attribute tensors)."""
    yield from graph.initializer
    for sp in graph.sparse_initializer:
        yield sp.values
        yield sp.indices
    for node in graph.node:
        for a in node.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            if a.HasField("g"):
                yield from _tensors(a.g)
            for g in a.graphs:
                yield from _tensors(g)


def _external_path(t: Any, base_dir: str | None) -> tuple[str, int, int]:
    info = {e.key: e.value for e in t.external_data}
    location = info.get("location", "")
    if base_dir is None:
        raise OnnxLoadError(f"tensor {t.name!r} keeps its data in an external file "
                            f"{location!r}: load the model from its path, not from bytes")
    if not location or os.path.isabs(location) or "\x00" in location:
        raise OnnxLoadError(f"tensor {t.name!r}: external data location {location!r} is "
                            "refused (must be a relative path inside the model's folder)")
    root = os.path.realpath(base_dir)
    path = os.path.realpath(os.path.join(root, location))
    if os.path.commonpath([root, path]) != root:
        raise OnnxLoadError(f"tensor {t.name!r}: external data location {location!r} leaves "
                            f"the model's folder {base_dir}: refused")
    if not os.path.isfile(path):
        raise OnnxLoadError(f"tensor {t.name!r}: external data file {location!r} not found "
                            f"in {base_dir}")
    try:
        offset = int(info.get("offset", 0) or 0)
        length = int(info["length"]) if info.get("length") else -1
    except ValueError as e:
        raise OnnxLoadError(f"tensor {t.name!r}: bad external data offset/length") from e
    return path, offset, length


def _check_tensor(t: Any, base_dir: str | None, budget: list[int]) -> None:
    """Check the tensor's data against its dims; load external data into raw_data."""
    if any(d < 0 for d in t.dims):
        raise OnnxLoadError(f"tensor {t.name!r} has negative dims {list(t.dims)}")
    numel = 1
    for d in t.dims:
        numel *= int(d)
    if t.data_location == 1:  # EXTERNAL
        path, offset, length = _external_path(t, base_dir)
        size = os.path.getsize(path)
        if offset < 0 or offset > size or length > size - offset:
            raise OnnxLoadError(f"tensor {t.name!r}: external data range is outside "
                                f"{os.path.basename(path)} ({size} bytes)")
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(length if length >= 0 else size - offset)
        budget[0] -= len(data)
        if budget[0] < 0:
            raise OnnxLoadError("the model's weights are larger than this machine's memory")
        t.raw_data = data
        del t.external_data[:]
        t.data_location = 0
    if t.data_type == 8:  # STRING
        if len(t.string_data) != numel:
            raise OnnxLoadError(f"tensor {t.name!r}: {len(t.string_data)} strings for dims "
                                f"{list(t.dims)}")
        return
    from .values import onnx_np_dtype
    try:
        dt = onnx_np_dtype(t.data_type)
    except OnnxError as e:
        raise OnnxLoadError(f"tensor {t.name!r}: {e}") from None
    nbytes = numel * dt.itemsize
    if nbytes > _memory_bytes():
        raise OnnxLoadError(f"tensor {t.name!r} with dims {list(t.dims)} needs {nbytes} bytes, "
                            "more than this machine's memory")
    if t.HasField("raw_data"):
        bits = 4 if t.data_type in (21, 22, 23) else 8 * dt.itemsize
        expect = (numel * bits + 7) // 8
        if len(t.raw_data) != expect:
            raise OnnxLoadError(f"tensor {t.name!r}: {len(t.raw_data)} bytes of data for "
                                f"dims {list(t.dims)} of {dt} (expected {expect})")
        return
    fields = ("float_data", "int32_data", "int64_data", "double_data", "uint64_data")
    count = max(len(getattr(t, f)) for f in fields)
    if t.data_type in (14, 15):
        count //= 2
    if count != numel and not (t.data_type in (21, 22, 23) and count == (numel + 1) // 2):
        raise OnnxLoadError(f"tensor {t.name!r}: {count} values for dims {list(t.dims)}")


def read_model(path_or_bytes: Any) -> Any:
    """Parse and check an ONNX model; returns the ``onnx.ModelProto`` with data in memory.

    >>> read_model(b"\\x08\\x07")
    Traceback (most recent call last):
        ...
    lightgrad.onnx.errors.OnnxLoadError: ONNX model has no graph ...
    """
    onnx = onnx_package()
    data, base_dir = _read_bytes(path_or_bytes)
    if not data:
        raise OnnxLoadError("cannot parse ONNX model: the file is empty")
    try:
        model = onnx.ModelProto()
        model.ParseFromString(data)
    except Exception as e:  # DecodeError, RuntimeError from the C++ parser, ...
        raise OnnxLoadError(f"cannot parse ONNX model: {type(e).__name__}: {e} (truncated or "
                            "corrupt file?)") from None
    if not model.HasField("graph"):
        raise OnnxLoadError("ONNX model has no graph (truncated or corrupt file?)")
    budget = [_memory_bytes()]
    try:
        for t in _tensors(model.graph):
            _check_tensor(t, base_dir, budget)
    except OnnxError:
        raise
    except Exception as e:
        raise OnnxLoadError(f"corrupt ONNX model: {type(e).__name__}: {e}") from None
    return model


def load(path_or_bytes: Any, device: Any = None) -> Any:
    """Import an ONNX model (path, bytes or ModelProto) as a lightgrad ``nn.Module``.

    Float initializers become trainable Parameters, others buffers; call the module with
    the graph's inputs by position or name.

    >>> import lightgrad as lg
    >>> m = lg.onnx.load("model.onnx")  # doctest: +SKIP
    >>> y = m(lg.randn(1, 3, 32, 32))  # doctest: +SKIP
    """
    from .model import OnnxModule
    model = read_model(path_or_bytes)
    try:
        module = OnnxModule(model)
    except OnnxError:
        raise
    except RecursionError:
        raise OnnxLoadError("ONNX model nests sub-graphs too deeply") from None
    except Exception as e:
        raise OnnxLoadError(f"cannot import ONNX model: {type(e).__name__}: {e}") from None
    if device is not None:
        module.to(device)
    return module


