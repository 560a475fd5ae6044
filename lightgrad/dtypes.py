"""Data types and PyTorch's type-promotion rules.

Every tensor has one of the dtypes below. Backends store numbers in NumPy-compatible
buffers, so each dtype maps to one NumPy dtype (bfloat16 comes from ``ml_dtypes``).

>>> import lightgrad as lg
>>> (lg.tensor([1, 2]) + 0.5).dtype
lightgrad.float32
>>> lg.promote_types(lg.int32, lg.float16)
lightgrad.float16
"""
from __future__ import annotations

import ml_dtypes
import numpy as np


class DType:
    """A tensor element type: a name, a NumPy dtype and its category."""

    __slots__ = ("name", "np", "itemsize", "is_floating_point", "is_signed", "_rank")

    def __init__(self, name: str, np_dtype: np.dtype, is_floating_point: bool, rank: int):
        self.name = name
        self.np = np.dtype(np_dtype)
        self.itemsize = self.np.itemsize
        self.is_floating_point = is_floating_point
        self.is_signed = name not in ("bool", "uint8")
        self._rank = rank

    @property
    def category(self) -> int:
        """0 for bool, 1 for integers, 2 for floating point."""
        if self.name == "bool":
            return 0
        return 2 if self.is_floating_point else 1

    def __repr__(self) -> str:
        return f"lightgrad.{self.name}"

    def __reduce__(self) -> str:
        return self.name


bool_ = DType("bool", np.bool_, False, 0)
uint8 = DType("uint8", np.uint8, False, 1)
int8 = DType("int8", np.int8, False, 2)
int16 = DType("int16", np.int16, False, 3)
int32 = DType("int32", np.int32, False, 4)
int64 = DType("int64", np.int64, False, 5)
float16 = DType("float16", np.float16, True, 6)
bfloat16 = DType("bfloat16", ml_dtypes.bfloat16, True, 6)
float32 = DType("float32", np.float32, True, 7)
float64 = DType("float64", np.float64, True, 8)

ALL = (bool_, uint8, int8, int16, int32, int64, float16, bfloat16, float32, float64)
FLOATING = tuple(d for d in ALL if d.is_floating_point)
BY_NAME = {d.name: d for d in ALL}
BY_NAME.update({"bool": bool_, "float": float32, "double": float64, "half": float16,
                "long": int64, "int": int32})
_BY_NUMPY = {d.np: d for d in ALL}
FLOAT_NUMPY_DTYPES = frozenset(d.np for d in FLOATING)

_default_float = [float32]


def get_default_dtype() -> DType:
    """The dtype of floating-point tensors made from Python floats (float32 unless changed).

    >>> import lightgrad as lg
    >>> lg.get_default_dtype()
    lightgrad.float32
    """
    return _default_float[0]


def set_default_dtype(dtype: DType) -> None:
    """Set the default floating-point dtype (float32 or float64), like torch.set_default_dtype.

    >>> import lightgrad as lg
    >>> lg.set_default_dtype(lg.float64); lg.tensor(1.0).dtype
    lightgrad.float64
    >>> lg.set_default_dtype(lg.float32)
    """
    dtype = as_dtype(dtype)
    if not dtype.is_floating_point:
        raise TypeError(f"set_default_dtype: only floating-point dtypes are allowed, got {dtype}")
    _default_float[0] = dtype


def as_dtype(value: object) -> DType:
    """Turn a DType, a name ("float32") or a NumPy dtype into a lightgrad DType.

    >>> as_dtype("float16")
    lightgrad.float16
    """
    if isinstance(value, DType):
        return value
    if isinstance(value, str) and value in BY_NAME:
        return BY_NAME[value]
    if value is float:
        return get_default_dtype()
    if value is int:
        return int64
    if value is bool:
        return bool_
    try:
        return _BY_NUMPY[np.dtype(value)]
    except (TypeError, KeyError):
        names = ", ".join(d.name for d in ALL)
        raise TypeError(f"unsupported dtype {value!r}; expected one of {names}") from None


def from_numpy_dtype(np_dtype: np.dtype) -> DType:
    """The lightgrad dtype stored in a NumPy dtype; a clear TypeError for unsupported ones."""
    found = _BY_NUMPY.get(np_dtype)
    if found is None:
        names = ", ".join(d.name for d in ALL)
        raise TypeError(f"unsupported NumPy dtype {np_dtype}; lightgrad supports {names}")
    return found


def promote_types(a: DType, b: DType) -> DType:
    """The smallest dtype both ``a`` and ``b`` convert to without losing their category.

    >>> promote_types(int64, float16), promote_types(float16, bfloat16)
    (lightgrad.float16, lightgrad.float32)
    """
    if a is b:
        return a
    if a.category != b.category:
        return a if a.category > b.category else b
    if a.is_floating_point:
        if a._rank == b._rank:  # float16 with bfloat16
            return float32
        return a if a._rank > b._rank else b
    if a is bool_:
        return b
    return _BY_NUMPY[np.promote_types(a.np, b.np)]


def _scalar_category(value: object) -> int:
    if isinstance(value, (bool, np.bool_)):
        return 0
    if isinstance(value, (int, np.integer)):
        return 1
    return 2


def result_type(*operands: object) -> DType:
    """The dtype of an elementwise op on tensors and Python scalars, by PyTorch's rules.

    Dimensioned tensors decide first; zero-dim tensors count only when they are of a
    higher category (bool < integer < float); Python scalars only contribute a category.

    >>> import lightgrad as lg
    >>> result_type(lg.ones(3, dtype=lg.int32), 2.5), result_type(lg.tensor(1.0), 2)
    (lightgrad.float32, lightgrad.float32)
    """
    dims = None
    zero_dims = None
    scalar_cat = -1
    for op in operands:
        dtype = getattr(op, "dtype", None)
        if isinstance(dtype, DType):
            if op.ndim > 0:
                dims = dtype if dims is None else promote_types(dims, dtype)
            else:
                zero_dims = dtype if zero_dims is None else promote_types(zero_dims, dtype)
        else:
            scalar_cat = max(scalar_cat, _scalar_category(op))
    result = dims
    if zero_dims is not None:
        if result is None or zero_dims.category > result.category:
            result = zero_dims
    if result is None:
        return {0: bool_, 1: int64, 2: get_default_dtype()}[scalar_cat]
    if scalar_cat > result.category:
        result = int64 if scalar_cat == 1 else get_default_dtype()
    return result
