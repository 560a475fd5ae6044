"""dtype promotion and conversion against PyTorch: every pair of dtypes, dimensioned and
0-dim tensors, Python scalars, result_type/promote_types, the default dtype and .to()."""
from __future__ import annotations

import numpy as np
import pytest
from oracle import assert_close, check_parity, to_torch, torch_dtype

import lightgrad as lg
from lightgrad.dtypes import as_dtype

torch = pytest.importorskip("torch")

DTYPES = [lg.bool, lg.uint8, lg.int8, lg.int16, lg.int32, lg.int64, lg.float16, lg.bfloat16,
          lg.float32, lg.float64]
NAMES = [d.name for d in DTYPES]
OPS = {
    "add": lambda a, b: a + b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "eq": lambda a, b: a == b,
    "lt": lambda a, b: a < b,
    "maximum": lambda a, b: a.maximum(b) if hasattr(a, "maximum") else b.maximum(a),
}


def _make(dtype: lg.DType, zero_dim: bool, offset: int = 0) -> lg.Tensor:
    """Small positive values every dtype holds exactly (1, 2, 3 or True/False)."""
    vals = np.array([1, 2, 3]) + offset
    if dtype is lg.bool:
        vals = vals % 2 == 1
    t = lg.tensor(vals).to(dtype)
    return t[1] if zero_dim else t


def _result_name(t) -> str:
    return t.dtype.name if isinstance(t, lg.Tensor) else str(t.dtype).replace("torch.", "")


def _tol(name: str) -> str:
    return name if name in ("float16", "bfloat16", "float32", "float64") else "float64"


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("dims", ["nd-nd", "nd-0d", "0d-nd", "0d-0d"])
@pytest.mark.parametrize("a_dtype", NAMES)
def test_tensor_tensor_promotion(op, dims, a_dtype):
    """(a op b).dtype and values for every pair of dtypes, as torch computes them."""
    fn = OPS[op]
    for b_dtype in NAMES:
        a = _make(as_dtype(a_dtype), dims.startswith("0d"))
        b = _make(as_dtype(b_dtype), dims.endswith("0d"), offset=1)
        theirs = fn(to_torch(a), to_torch(b))
        with np.errstate(divide="ignore", invalid="ignore"):  # x / False
            ours = fn(a, b)
        assert _result_name(ours) == _result_name(theirs), (a_dtype, b_dtype, dims)
        assert_close(ours, theirs, _tol(_result_name(theirs)))


SCALARS = [True, False, 2, -1, 2.5, 0.5]


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("zero_dim", [False, True], ids=["nd", "0d"])
@pytest.mark.parametrize("dtype", NAMES)
def test_tensor_scalar_promotion(op, zero_dim, dtype):
    """A Python bool/int/float only contributes its category, on either side."""
    fn = OPS[op]
    a = _make(as_dtype(dtype), zero_dim)
    for s in SCALARS:
        if op == "maximum":
            continue  # torch.maximum takes tensors only
        if dtype == "uint8" and s == -1:
            continue  # out of uint8's range: torch wraps it to 255 (so 1 < -1 is True)
        with np.errstate(divide="ignore", invalid="ignore"):  # x / False
            pairs = ((fn(a, s), fn(to_torch(a), s)), (fn(s, a), fn(s, to_torch(a))))
        for ours, theirs in pairs:
            assert _result_name(ours) == _result_name(theirs), (dtype, s)
            assert_close(ours, theirs, _tol(_result_name(theirs)))


@pytest.mark.parametrize("a_dtype", NAMES)
def test_promote_types(a_dtype):
    for b_dtype in NAMES:
        ours = lg.promote_types(as_dtype(a_dtype), as_dtype(b_dtype))
        theirs = torch.promote_types(getattr(torch, a_dtype), getattr(torch, b_dtype))
        assert ours.name == _result_name(torch.empty(0, dtype=theirs)), (a_dtype, b_dtype)


@pytest.mark.parametrize("a_dtype", NAMES)
def test_result_type_of_tensors(a_dtype):
    for b_dtype in NAMES:
        for a0, b0 in ((False, False), (True, False), (False, True), (True, True)):
            a = _make(as_dtype(a_dtype), a0)
            b = _make(as_dtype(b_dtype), b0)
            theirs = torch.result_type(to_torch(a), to_torch(b))
            assert lg.result_type(a, b).name == str(theirs).replace("torch.", ""), \
                (a_dtype, a0, b_dtype, b0)


@pytest.mark.parametrize("dtype", NAMES)
def test_result_type_with_scalars(dtype):
    for zero_dim in (False, True):
        a = _make(as_dtype(dtype), zero_dim)
        for s in SCALARS:
            theirs = torch.result_type(to_torch(a), s)
            assert lg.result_type(a, s).name == str(theirs).replace("torch.", ""), \
                (dtype, zero_dim, s)
            assert lg.result_type(s, a) is lg.result_type(a, s)


def test_result_type_of_three_operands():
    cases = [(lg.ones(2, dtype=lg.int8), lg.tensor(1.5, dtype=lg.float64), 2),
             (lg.ones(2, dtype=lg.float16), lg.tensor(1, dtype=lg.int64), 2.5),
             (lg.ones(2, dtype=lg.bool), lg.tensor(1, dtype=lg.int32), True),
             (lg.ones(2, dtype=lg.uint8), lg.ones(2, dtype=lg.int8), 1.0)]
    for a, b, s in cases:
        theirs = (to_torch(a) + to_torch(b) + s).dtype
        assert lg.result_type(a, b, s).name == str(theirs).replace("torch.", "")
        assert (a + b + s).dtype is lg.result_type(a, b, s)


def test_scalar_only_result_type():
    assert lg.result_type(True, False) is lg.bool
    assert lg.result_type(1, True) is lg.int64
    assert lg.result_type(1, 2.5) is lg.float32


def test_promote_types_examples():
    assert lg.promote_types(lg.uint8, lg.int8) is lg.int16
    assert lg.promote_types(lg.float16, lg.bfloat16) is lg.float32
    assert lg.promote_types(lg.int64, lg.float16) is lg.float16
    assert lg.promote_types(lg.bool, lg.uint8) is lg.uint8


# ----------------------------------------------------------------------------- default dtype

@pytest.fixture
def float64_default():
    lg.set_default_dtype(lg.float64)
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        lg.set_default_dtype(lg.float32)
        torch.set_default_dtype(torch.float32)


def test_default_dtype_is_float32():
    assert lg.get_default_dtype() is lg.float32
    assert lg.tensor(1.5).dtype is lg.float32
    assert lg.ones(2).dtype is lg.float32
    assert (lg.tensor([1, 2]) / 2).dtype is lg.float32


def test_set_default_dtype(float64_default):
    assert lg.get_default_dtype() is lg.float64
    int_t = lg.tensor([1, 2])
    for ours, theirs in [
        (lg.tensor(1.5), torch.tensor(1.5)),
        (lg.tensor([1, 2.5]), torch.tensor([1, 2.5])),
        (lg.ones(2), torch.ones(2)),
        (lg.zeros(2, 3), torch.zeros(2, 3)),
        (lg.randn(3), torch.randn(3)),
        (lg.arange(0, 1, 0.25), torch.arange(0, 1, 0.25)),
        (lg.full((2,), 1.5), torch.full((2,), 1.5)),
        (int_t + 1.5, to_torch(int_t) + 1.5),
        (int_t / 2, to_torch(int_t) / 2),
        (int_t.exp(), to_torch(int_t).exp()),
        (lg.tensor([1.0], dtype=lg.float32) + 1.5, torch.tensor([1.0], dtype=torch.float32)
         + 1.5),
    ]:
        assert _result_name(ours) == _result_name(theirs)
    assert lg.result_type(int_t, 2.5) is lg.float64
    # the default applies to new tensors only
    lg.set_default_dtype(lg.float32)
    assert lg.tensor(1.5).dtype is lg.float32


def test_set_default_dtype_accepts_names_and_rejects_integers(float64_default):
    lg.set_default_dtype("float32")
    assert lg.get_default_dtype() is lg.float32
    with pytest.raises(TypeError, match="set_default_dtype: only floating-point dtypes.*int64"):
        lg.set_default_dtype(lg.int64)
    with pytest.raises(TypeError, match="unsupported dtype 'complex64'"):
        lg.set_default_dtype("complex64")


def test_dtype_of_python_data_matches_torch():
    for data in ([1, 2], [True, False], [1.5, 2], [[1, 2], [3, 4]], 3, 2.5, True, [True, 2],
                 [1, 2.0], np.array([1, 2], dtype=np.int32), np.array([1.0], np.float64),
                 np.array([1.0], np.float16), np.array(True)):
        assert lg.tensor(data).dtype.name == _result_name(torch.tensor(data)), data


def test_dtype_aliases():
    assert lg.float is lg.float32 and lg.double is lg.float64 and lg.half is lg.float16
    assert lg.long is lg.int64 and lg.int is lg.int32
    for name in NAMES:
        assert as_dtype(name).name == name
        assert repr(as_dtype(name)) == f"lightgrad.{name}"
    assert as_dtype(np.float16) is lg.float16
    assert as_dtype(float) is lg.float32 and as_dtype(int) is lg.int64
    with pytest.raises(TypeError, match="unsupported dtype 'float8'"):
        as_dtype("float8")


def test_dtype_properties_match_torch():
    for d in DTYPES:
        t = torch_dtype(d)
        assert d.is_floating_point == t.is_floating_point, d
        assert d.itemsize == t.itemsize, d
        assert d.is_signed == t.is_signed, d
        assert lg.ones(2, dtype=d).element_size() == torch.ones(2, dtype=t).element_size()


# ----------------------------------------------------------------------------- conversions

EXACT = np.array([0, 1, 2, 3, 100])  # held exactly by every dtype (bool: 0/1 only)


@pytest.mark.parametrize("src", NAMES)
def test_to_matches_torch(src):
    for dst in NAMES:
        x = lg.tensor(EXACT).to(src)
        ours = x.to(as_dtype(dst))
        theirs = to_torch(x).to(getattr(torch, dst))
        assert ours.dtype.name == dst
        assert_close(ours, theirs, _tol(dst))


@pytest.mark.parametrize("src", NAMES)
def test_to_round_trip(src):
    """src -> dst -> src gives the values back whenever dst holds them all."""
    x = lg.tensor(EXACT).to(src)
    for dst in NAMES:
        if dst == "bool" and src != "bool":
            continue  # bool keeps only zero / nonzero
        back = x.to(dst).to(src)
        assert back.dtype.name == src
        np.testing.assert_array_equal(np.asarray(back.numpy(), dtype=np.float64),
                                      np.asarray(x.numpy(), dtype=np.float64))


def test_float_to_integer_truncates_like_torch():
    x = lg.tensor([-2.7, -0.5, 0.0, 0.5, 2.7, 99.9], dtype=lg.float64)
    for dst in ("int8", "int16", "int32", "int64", "bool"):
        assert_close(x.to(dst), to_torch(x).to(getattr(torch, dst)))
    for src in ("float32", "float16", "bfloat16"):
        y = x.to(src)
        for dst in ("int32", "int64", "bool"):
            assert_close(y.to(dst), to_torch(y).to(getattr(torch, dst)))


def test_float_narrowing_rounds_like_torch():
    x = lg.tensor([1 / 3, 1e-8, 65504.0, 70000.0, 3e38, -1e-40], dtype=lg.float64)
    for dst in ("float32", "float16", "bfloat16"):
        with np.errstate(over="ignore"):
            ours = x.to(dst)
        theirs = to_torch(x).to(getattr(torch, dst))
        assert_close(ours, theirs, dst, rtol=0, atol=0)


def test_conversion_methods():
    x = lg.tensor([1.5, -2.0])
    tx = to_torch(x)
    for method in ("float", "double", "half", "bfloat16", "int", "long", "bool"):
        ours, theirs = getattr(x, method)(), getattr(tx, method)()
        assert_close(ours, theirs, _tol(_result_name(theirs)))
    assert x.to("float64").dtype is lg.float64
    assert x.to(dtype=lg.int16).dtype is lg.int16
    assert x.type(lg.float16).dtype is lg.float16
    assert x.type() == "lightgrad.float32"
    assert x.type_as(lg.ones(1, dtype=lg.int8)).dtype is lg.int8
    assert x.to(lg.ones(1, dtype=lg.float64)).dtype is lg.float64


def test_to_same_dtype_returns_self_and_copy_copies():
    x = lg.tensor([1.0, 2.0])
    assert x.to(lg.float32) is x
    y = x.to(lg.float32, copy=True)
    assert y is not x and y.dtype is lg.float32
    y.add_(1)
    assert x.tolist() == [1.0, 2.0]


def test_to_is_differentiable():
    x = np.array([0.1, -1.7, 3.25])
    check_parity(lambda t: t.to(lg.float32) * 3, [x], lambda t: t.to(torch.float32) * 3,
                 dtype="float64", rtol=1e-6, atol=1e-6)
    check_parity(lambda t: t.to(lg.float64).exp(), [x], lambda t: t.to(torch.float64).exp(),
                 dtype="float32")
    check_parity(lambda t: t.half().float(), [x], lambda t: t.half().float(), dtype="float32")
    # the gradient of a float -> int conversion is cut, as in torch
    t = lg.tensor(x, requires_grad=True)
    assert not t.long().requires_grad and t.long().grad_fn is None
    assert lg.autograd.gradcheck(lambda u: u.to(lg.float64) * u, [t])


def test_requires_grad_needs_a_float_dtype():
    with pytest.raises(RuntimeError, match="only floating-point tensors can require .*int64"):
        lg.tensor([1, 2]).requires_grad_()
