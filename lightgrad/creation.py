"""Creating tensors: from data, filled, ranges, random, and from other libraries.

>>> import lightgrad as lg
>>> lg.manual_seed(0)
>>> lg.zeros(2, 3).shape, lg.arange(5).dtype, lg.randn(2).dtype
((2, 3), lightgrad.int64, lightgrad.float32)
"""
from __future__ import annotations

import random as _random
from typing import Any

import numpy as np

from . import dtypes
from .backends import device as as_device, _devices
from .tensor import Tensor, _shape_args


def _sizes(op: str, size: Any) -> tuple[int, ...]:
    """The shape of a new tensor: ints (or one tuple of them), none negative."""
    shape = _shape_args(op, size)
    if any(n < 0 for n in shape):
        raise RuntimeError(f"{op}: sizes must be non-negative, got {shape}")
    return shape


def _infer_numpy(data: Any, op: str) -> np.ndarray:
    if isinstance(data, Tensor):
        return np.array(data.device.backend.to_numpy(data._data))
    if isinstance(data, np.ndarray):
        return np.array(data)
    if isinstance(data, (list, tuple)) and any(isinstance(d, Tensor) for d in data):
        data = [_infer_numpy(d, op) for d in data]
    try:
        arr = np.array(data)
    except ValueError as err:
        raise ValueError(f"{op}: could not build a tensor from the data: the nested "
                         f"sequences are ragged ({err})") from None
    if arr.dtype == object or arr.dtype.kind in "USM":
        raise TypeError(f"{op}: could not infer a dtype for data of type "
                        f"{type(data).__name__} (got NumPy dtype {arr.dtype})")
    if isinstance(data, np.generic):
        return arr  # NumPy scalars keep their dtype, like NumPy arrays (and PyTorch)
    if arr.dtype.kind == "f":
        arr = arr.astype(dtypes.get_default_dtype().np)
    elif arr.dtype.kind in "iu":
        arr = arr.astype(np.int64)
    return arr


def tensor(data: Any, dtype: Any = None, device: Any = None,
           requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (numbers, nested lists, NumPy arrays).

    Python floats give float32, ints int64, bools bool; NumPy arrays keep their dtype.

    >>> tensor([[1, 2], [3, 4]], dtype=float)
    tensor([[1., 2.],
            [3., 4.]])
    """
    arr = _infer_numpy(data, "tensor")
    if dtype is not None:
        arr = arr.astype(dtypes.as_dtype(dtype).np)
    else:
        dtypes.from_numpy_dtype(arr.dtype)
    dev = as_device(device)
    return _on(dev, dev.backend.from_numpy(arr), requires_grad)


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """Like ``tensor`` but returns ``data`` unchanged when it already is a fitting Tensor."""
    if isinstance(data, Tensor) and (dtype is None or dtypes.as_dtype(dtype) is data.dtype):
        return data if device is None else data.to(device)
    if isinstance(data, np.ndarray) and dtype is None and device is None \
            and as_device(None).type == "cpu":
        return from_numpy(data)
    return tensor(data, dtype, device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with a NumPy array (changes show through both ways).

    >>> import numpy as np
    >>> a = np.zeros(2, dtype=np.float32); t = from_numpy(a); a[0] = 5; t
    tensor([5., 0.])
    """
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    dtypes.from_numpy_dtype(array.dtype)
    return Tensor._from_buffer(array, as_device("cpu"))


def from_dlpack(obj: Any) -> Tensor:
    """A CPU tensor sharing memory with any object implementing ``__dlpack__``.

    >>> import numpy as np
    >>> from_dlpack(np.arange(3.0)).dtype
    lightgrad.float64
    """
    if isinstance(obj, Tensor):
        return obj.detach()
    if not hasattr(obj, "__dlpack__"):
        raise TypeError(f"from_dlpack: expected an object implementing __dlpack__ (a tensor "
                        f"or array), got {type(obj).__name__}")
    if obj.__dlpack_device__()[0] != 1:  # a GPU array: share its device memory
        dev = as_device("cuda")
        return Tensor._from_buffer(dev.backend.import_dlpack(obj), dev)
    try:
        array = np.from_dlpack(obj)
    except (BufferError, RuntimeError, TypeError) as err:
        raise RuntimeError(f"from_dlpack: cannot import a {type(obj).__name__} through DLPack "
                           f"(dtype {getattr(obj, 'dtype', '?')}): {err}") from None
    return from_numpy(array)


def _dtype_or_default(dtype: Any) -> dtypes.DType:
    return dtypes.get_default_dtype() if dtype is None else dtypes.as_dtype(dtype)


def full(size: Any, fill_value: Any, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    """A tensor of ``size`` filled with ``fill_value`` (dtype inferred from the value).

    >>> full((2,), 7)
    tensor([7, 7])
    """
    shape = _sizes("full", (size,) if not isinstance(size, (tuple, list)) else size)
    if dtype is None:
        dtype = dtypes.result_type(fill_value)
    dt = dtypes.as_dtype(dtype)
    dev = as_device(device)
    return _on(dev, dev.backend.full(shape, fill_value, dt.np), requires_grad)


def _on(dev: Any, buf: Any, requires_grad: bool) -> Tensor:
    """A tensor on ``dev`` around a buffer of that device's backend."""
    t = Tensor._from_buffer(buf, dev)
    if requires_grad:
        t.requires_grad_(True)
    return t


def zeros(*size: Any, dtype: Any = None, device: Any = None,
          requires_grad: bool = False) -> Tensor:
    """A tensor of zeros: ``zeros(2, 3)`` or ``zeros((2, 3))``.

    >>> zeros(2)
    tensor([0., 0.])
    """
    return full(_sizes("zeros", size), 0, _dtype_or_default(dtype), device, requires_grad)


def ones(*size: Any, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    """A tensor of ones.

    >>> ones(2, dtype=int)
    tensor([1, 1])
    """
    return full(_sizes("ones", size), 1, _dtype_or_default(dtype), device, requires_grad)


def empty(*size: Any, dtype: Any = None, device: Any = None,
          requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor (here: zeros, which costs about the same on NumPy).

    >>> empty(3).shape
    (3,)
    """
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def _like(op: str, t: Tensor, dtype: Any, device: Any) -> tuple:
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(t).__name__}")
    return (t.dtype if dtype is None else dtype), (t.device if device is None else device)


def zeros_like(t: Tensor, dtype: Any = None, device: Any = None,
               requires_grad: bool = False) -> Tensor:
    """Zeros with ``t``'s shape, dtype and device.

    >>> zeros_like(ones(2, dtype=int))
    tensor([0, 0])
    """
    dt, dev = _like("zeros_like", t, dtype, device)
    return full(t.shape, 0, dt, dev, requires_grad)


def ones_like(t: Tensor, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    """Ones with ``t``'s shape, dtype and device.

    >>> ones_like(zeros(2))
    tensor([1., 1.])
    """
    dt, dev = _like("ones_like", t, dtype, device)
    return full(t.shape, 1, dt, dev, requires_grad)


def full_like(t: Tensor, fill_value: Any, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    """``fill_value`` with ``t``'s shape, dtype and device.

    >>> full_like(zeros(2), 3)
    tensor([3., 3.])
    """
    dt, dev = _like("full_like", t, dtype, device)
    return full(t.shape, fill_value, dt, dev, requires_grad)


def empty_like(t: Tensor, dtype: Any = None, device: Any = None,
               requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor like ``t``.

    >>> empty_like(zeros(2, 2)).shape
    (2, 2)
    """
    return zeros_like(t, dtype, device, requires_grad)


def arange(start: Any, end: Any = None, step: Any = 1, dtype: Any = None, device: Any = None,
           requires_grad: bool = False) -> Tensor:
    """Values from ``start`` up to (not including) ``end``; ints give int64.

    >>> arange(3), arange(0, 1, 0.5)
    (tensor([0, 1, 2]), tensor([0.0000, 0.5000]))
    """
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    if dtype is None:
        dtype = dtypes.result_type(start, end, step)
    dt = dtypes.as_dtype(dtype)
    dev = as_device(device)
    return _on(dev, dev.backend.arange(start, end, step, dt.np), requires_grad)


def linspace(start: float, end: float, steps: int, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    """``steps`` values evenly spaced from ``start`` to ``end`` inclusive.

    >>> linspace(0, 1, 3)
    tensor([0.0000, 0.5000, 1.0000])
    """
    if steps < 0:
        raise ValueError(f"linspace: number of steps must be non-negative, got {steps}")
    dt = _dtype_or_default(dtype)
    dev = as_device(device)
    return _on(dev, dev.backend.linspace(start, end, steps, dt.np), requires_grad)


def eye(n: int, m: int | None = None, dtype: Any = None, device: Any = None,
        requires_grad: bool = False) -> Tensor:
    """The identity matrix (``n x m``).

    >>> eye(2)
    tensor([[1., 0.],
            [0., 1.]])
    """
    dt = _dtype_or_default(dtype)
    dev = as_device(device)
    shape = _sizes("eye", (n, n if m is None else m))
    return _on(dev, dev.backend.eye(*shape, dt.np), requires_grad)


def manual_seed(seed: int) -> None:
    """Seed every backend's random generator (and Python's ``random``) for reproducibility.

    >>> manual_seed(0); a = rand(2); manual_seed(0); bool((a == rand(2)).all())
    True
    """
    _random.seed(seed)
    backends = {id(dev.backend): dev.backend for dev in _devices.values()}  # devices in use
    for backend in backends.values():
        backend.seed(seed)


def _random_tensor(op: str, size: tuple, dtype: Any, device: Any, requires_grad: bool) -> Any:
    shape = _sizes(op, size)
    dt = _dtype_or_default(dtype)
    if not dt.is_floating_point:
        raise TypeError(f"{op}: dtype must be floating point, got {dt.name}")
    dev = as_device(device)
    backend = dev.backend
    return _on(dev, getattr(backend, op)(shape, dt.np), requires_grad)


def rand(*size: Any, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    """Uniform random numbers in [0, 1).

    >>> rand(2, 3).shape
    (2, 3)
    """
    return _random_tensor("rand", size, dtype, device, requires_grad)


def randn(*size: Any, dtype: Any = None, device: Any = None,
          requires_grad: bool = False) -> Tensor:
    """Standard normal random numbers.

    >>> randn(4).dtype
    lightgrad.float32
    """
    return _random_tensor("randn", size, dtype, device, requires_grad)


def randint(low: int, high: int | None = None, size: Any = None, dtype: Any = None,
            device: Any = None) -> Tensor:
    """Random integers in [low, high): ``randint(10, (3,))`` or ``randint(2, 10, (3,))``.

    >>> randint(0, 5, (4,)).dtype
    lightgrad.int64
    """
    if size is None:
        if not isinstance(high, (tuple, list)):
            raise TypeError("randint: size must be given as a tuple, e.g. randint(10, (3,))")
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if high <= low:
        raise ValueError(f"randint: high ({high}) must be greater than low ({low})")
    dt = dtypes.int64 if dtype is None else dtypes.as_dtype(dtype)
    dev = as_device(device)
    shape = _sizes("randint", (size,) if isinstance(size, int) else size)
    return _on(dev, dev.backend.randint(low, high, shape, dt.np), False)


def randperm(n: int, dtype: Any = None, device: Any = None) -> Tensor:
    """A random permutation of ``0..n-1``.

    >>> sorted(randperm(4).tolist())
    [0, 1, 2, 3]
    """
    keys = rand(n, dtype=dtypes.float64, device=device)
    return keys.argsort().to(dtypes.int64 if dtype is None else dtype)


def rand_like(t: Tensor, dtype: Any = None, device: Any = None) -> Tensor:
    """Uniform random numbers shaped like ``t``.

    >>> rand_like(zeros(3)).shape
    (3,)
    """
    dt, dev = _like("rand_like", t, dtype, device)
    return rand(t.shape, dtype=dt, device=dev)


def randn_like(t: Tensor, dtype: Any = None, device: Any = None) -> Tensor:
    """Normal random numbers shaped like ``t``.

    >>> randn_like(zeros(3)).shape
    (3,)
    """
    dt, dev = _like("randn_like", t, dtype, device)
    return randn(t.shape, dtype=dt, device=dev)
