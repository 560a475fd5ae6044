"""``lg.unique`` / ``Tensor.unique`` / ``lg.unique_consecutive`` against PyTorch (runs on
every device: see tests/ops/conftest.py)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import lightgrad as lg
from oracle import assert_close


def _compare(ours, theirs) -> None:
    if isinstance(theirs, tuple):
        assert isinstance(ours, tuple) and len(ours) == len(theirs)
        for o, t in zip(ours, theirs):
            _compare(o, t)
        return
    assert isinstance(ours, lg.Tensor)
    assert ours.device == lg.get_default_device()
    assert_close(ours, theirs, rtol=0, atol=0)


INPUTS = [
    np.array([3, 1, 3, 2, 2, 7, 1], dtype=np.int64),
    np.array([[0.5, -1.0, 0.5], [2.0, -1.0, -0.0]], dtype=np.float32),
    np.array([[1, 2, 1], [1, 2, 1], [0, 5, 0], [1, 2, 1]], dtype=np.int32),
    np.array([[[1, 0], [1, 0]], [[0, 1], [1, 0]], [[1, 0], [1, 0]]], dtype=np.int64),
    np.array([True, False, True]),
    np.array(4.0, dtype=np.float32),
    np.zeros((0,), dtype=np.float32),
]


@pytest.mark.parametrize("array", INPUTS, ids=lambda a: f"{a.dtype}{a.shape}")
def test_unique_matches_pytorch(array):
    ours, theirs = lg.tensor(array), torch.tensor(array)
    dims = [None] + list(range(-array.ndim, array.ndim))
    for dim, inv, cnt in itertools.product(dims, (False, True), (False, True)):
        if dim is not None and array.size == 0:
            continue
        kw = dict(return_inverse=inv, return_counts=cnt, dim=dim)
        _compare(lg.unique(ours, **kw), torch.unique(theirs, **kw))
        _compare(ours.unique(**kw), theirs.unique(**kw))
        _compare(lg.unique_consecutive(ours, **kw), torch.unique_consecutive(theirs, **kw))


def test_unique_consecutive_runs():
    x = [1, 1, 2, 2, 3, 1, 1, 2]
    kw = dict(return_inverse=True, return_counts=True)
    _compare(lg.tensor(x).unique_consecutive(**kw), torch.tensor(x).unique_consecutive(**kw))


def test_nan_is_never_equal_to_nan():
    x = [float("nan"), 1.0, float("nan"), 1.0]
    _compare(lg.unique(lg.tensor(x), return_counts=True),
             torch.unique(torch.tensor(x), return_counts=True))


def test_sorted_false_still_returns_every_value_once():
    out = lg.unique(lg.tensor([5, 3, 5, 1]), sorted=False)
    assert sorted(out.tolist()) == [1, 3, 5]


def test_not_differentiable_and_errors():
    x = lg.tensor([1.0, 1.0, 2.0], requires_grad=True)
    values, inverse = x.unique(return_inverse=True)
    assert not values.requires_grad and inverse.dtype is lg.int64
    with pytest.raises(IndexError, match="unique: dim 2 is out of range"):
        lg.unique(lg.zeros(2, 2), dim=2)
    with pytest.raises(IndexError, match="0-d"):
        lg.unique(lg.tensor(1.0), dim=0)
    with pytest.raises(RuntimeError, match="0-sized dims"):
        lg.unique(lg.zeros(0, 3), dim=1)
    with pytest.raises(TypeError, match="unique: expected a Tensor"):
        lg.unique([1, 2])
