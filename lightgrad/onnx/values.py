"""Values flowing through an imported graph, and conversions between ONNX, NumPy and lightgrad.

Inside a graph, floating-point tensors are lightgrad ``Tensor``s (they carry gradients) and
everything else (shapes, indices, masks, strings, float8, ...) is a NumPy array: integer
arithmetic on shapes then never enters autograd or a graph-mode trace. A user may pass
integer Tensors too; ops read them with ``to_numpy``. A sequence value is a Python list; an
empty optional is ``None``.

>>> import numpy as np
>>> v = to_value(np.arange(3, dtype=np.int64))
>>> type(v).__name__, to_numpy(v).tolist()
('Tensor', [0, 1, 2])
>>> type(to_value(np.arange(3, dtype=np.uint32))).__name__
'ndarray'
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import dtypes
from ..creation import from_numpy
from ..tensor import Tensor

_LG_NUMPY = {d.np for d in dtypes.ALL}
_BF16 = dtypes.bfloat16.np


def is_tensor_value(v: Any) -> bool:
    """Whether ``v`` is a tensor value (a Tensor or an ndarray), not a sequence or None."""
    return isinstance(v, (Tensor, np.ndarray))


def to_numpy(v: Any) -> Any:
    """A NumPy array for a tensor value (a CPU tensor's own buffer, not a copy: read it,
    don't write it); lists map elementwise; None stays None."""
    if isinstance(v, Tensor):
        data = v._data
        if isinstance(data, np.ndarray):
            return data
        return v.detach().numpy()
    if isinstance(v, list):
        return [to_numpy(x) for x in v]
    if v is None or isinstance(v, np.ndarray):
        return v
    return np.asarray(v)


def to_value(a: Any, device: Any = None) -> Any:
    """The graph value for a NumPy array: a Tensor where lightgrad has the dtype."""
    if isinstance(a, Tensor) or a is None:
        return a
    if isinstance(a, list):
        return [to_value(x, device) for x in a]
    a = np.asarray(a)
    if a.dtype in _LG_NUMPY:
        t = from_numpy(a if a.flags.c_contiguous else a.copy())
        return t if device is None or str(device) == "cpu" else t.to(device)
    return a


def graph_value(a: Any, device: Any = None) -> Any:
    """How a NumPy result lives in a graph: a Tensor if floating point (and a lightgrad
    dtype), else the array itself."""
    a = np.asarray(a)
    if a.dtype.kind == "f" and a.dtype in _LG_NUMPY or a.dtype == _BF16:
        return to_value(a, device)
    return a


def dtype_of(v: Any) -> np.dtype:
    """The NumPy dtype of a tensor value."""
    return v.dtype.np if isinstance(v, Tensor) else np.asarray(v).dtype


def shape_of(v: Any) -> tuple:
    return tuple(v.shape)


def onnx_np_dtype(elem_type: int) -> np.dtype:
    """The NumPy dtype of an ONNX TensorProto element type."""
    from onnx import helper
    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, ValueError, TypeError) as e:
        from .errors import UnsupportedOpError
        raise UnsupportedOpError(f"ONNX element type {elem_type} is not supported") from e


def onnx_elem_type(dtype: Any) -> int:
    """The ONNX element type of a NumPy dtype."""
    from onnx import helper
    return int(helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))


def tensor_proto_to_numpy(t: Any) -> np.ndarray:
    """A TensorProto's array (raw, typed or string data), writable."""
    from onnx import numpy_helper
    arr = numpy_helper.to_array(t)
    return arr if arr.flags.writeable else arr.copy()
