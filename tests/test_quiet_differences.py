"""Quiet differences with PyTorch (issue 9): NumPy warnings must not leak (nan/inf results,
no RuntimeWarning, as PyTorch), and matmul-based layers must not convert a mismatched input
dtype silently (PyTorch raises)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import lightgrad as lg
from lightgrad import nn
from lightgrad.nn import functional as F

torch = pytest.importorskip("torch")

# (name, lightgrad op, torch op, input values)
NAN_INF_CASES = [
    ("log of negative", lambda t: t.log(), [-1.0, 2.0]),
    ("log of zero", lambda t: t.log(), [0.0, 1.0]),
    ("sqrt of negative", lambda t: t.sqrt(), [-4.0, 4.0]),
    ("rsqrt of zero", lambda t: t.rsqrt(), [0.0, 4.0]),
    ("reciprocal of zero", lambda t: t.reciprocal(), [0.0, 2.0]),
    ("divide by zero", lambda t: t / (t * 0), [1.0, -1.0]),
    ("zero over zero", lambda t: (t * 0) / (t * 0), [1.0, 2.0]),
    ("pow of zero to negative", lambda t: t ** -1.0, [0.0, 2.0]),
    ("exp overflow", lambda t: t.exp(), [1000.0, 0.0]),
    ("mean of empty", lambda t: t[:0].mean(), [1.0, 2.0]),
]


def _quietly(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn()


@pytest.mark.parametrize("name, op, values", NAN_INF_CASES, ids=[c[0] for c in NAN_INF_CASES])
def test_no_warning_and_same_values_as_torch(name, op, values):
    ours = _quietly(lambda: op(lg.tensor(values)))
    theirs = op(torch.tensor(values))
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("op, value", [(lambda t: t.log(), 0.0), (lambda t: t.sqrt(), 0.0),
                                       (lambda t: t.rsqrt(), 0.0)])
def test_backward_of_singular_points_is_quiet(op, value):
    x = lg.tensor([value], requires_grad=True)
    _quietly(lambda: op(x).sum().backward())
    tx = torch.tensor([value], requires_grad=True)
    op(tx).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_integer_division_by_zero_is_quiet():
    ours = _quietly(lambda: lg.tensor([1, 0]) / lg.tensor([0, 0]))
    theirs = torch.tensor([1, 0]) / torch.tensor([0, 0])
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_softmax_and_cross_entropy_of_inf_are_quiet():
    x = lg.tensor([[float("inf"), 0.0], [0.0, 1.0]])
    tx = torch.tensor([[float("inf"), 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(_quietly(lambda: F.softmax(x, -1)).numpy(),
                               torch.softmax(tx, -1).numpy(), rtol=1e-6, equal_nan=True)
    target = lg.tensor([0, 1])
    ours = _quietly(lambda: F.cross_entropy(x, target)).item()
    assert np.isnan(ours) == bool(torch.isnan(torch.nn.functional.cross_entropy(
        tx, torch.tensor([0, 1]))))


def test_numpy_error_state_is_left_alone():
    _quietly(lambda: lg.tensor([-1.0]).log())
    with pytest.warns(RuntimeWarning):
        np.log(np.float32(-1.0))


# ----------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("dtype, name", [("float64", "Double"), ("int64", "Long"),
                                         ("int32", "Int")])
def test_linear_mismatched_input_dtype_raises_like_torch(dtype, name):
    layer = nn.Linear(3, 2)
    x = lg.ones(4, 3, dtype=getattr(lg, dtype))
    with pytest.raises(RuntimeError) as theirs:
        torch.nn.Linear(3, 2)(torch.ones(4, 3, dtype=getattr(torch, dtype)))
    with pytest.raises(RuntimeError) as ours:
        layer(x)
    assert str(ours.value) == str(theirs.value)
    assert str(ours.value) == f"mat1 and mat2 must have the same dtype, but got {name} and Float"


def test_functional_linear_mismatch_raises():
    with pytest.raises(RuntimeError, match="same dtype, but got Double and Float"):
        F.linear(lg.ones(2, 3, dtype=lg.float64), lg.ones(4, 3))


@pytest.mark.parametrize("a, b", [("float64", "float32"), ("float32", "float64"),
                                  ("int64", "float32"), ("float16", "float32")])
def test_matmul_does_not_promote(a, b):
    with pytest.raises(RuntimeError):
        torch.ones(2, 3, dtype=getattr(torch, a)) @ torch.ones(3, 2, dtype=getattr(torch, b))
    with pytest.raises(RuntimeError, match="must have the same dtype"):
        lg.ones(2, 3, dtype=getattr(lg, a)) @ lg.ones(3, 2, dtype=getattr(lg, b))


def test_same_dtype_still_works():
    layer = nn.Linear(3, 2, dtype=lg.float64)
    assert layer(lg.ones(1, 3, dtype=lg.float64)).dtype == lg.float64
    assert (lg.ones(2, 3) @ lg.ones(3)).dtype == lg.float32
    assert (lg.ones(2, 3, dtype=lg.int64) @ lg.ones(3, 2, dtype=lg.int64)).dtype == lg.int64


def test_conv_and_embedding_reject_wrong_dtypes():
    with pytest.raises((TypeError, RuntimeError)):
        nn.Conv2d(1, 1, 3)(lg.ones(1, 1, 5, 5, dtype=lg.float64))
    with pytest.raises((TypeError, RuntimeError)):
        nn.Embedding(4, 2)(lg.tensor([1.0]))
