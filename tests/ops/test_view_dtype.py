"""``Tensor.view(dtype)``: the same bytes read as another dtype (PyTorch's semantics: a view,
no grad, the last dim scaling with the item size, PyTorch's errors). Runs on every device."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lightgrad as lg

CASES = [("float32", "int32"), ("float32", "float16"), ("float32", "bfloat16"),
         ("float32", "float64"), ("float32", "uint8"), ("int64", "float32"),
         ("float16", "int16"), ("float64", "int64"), ("uint8", "float32")]


@pytest.mark.parametrize("src,dst", CASES)
@pytest.mark.parametrize("layout", ["contiguous", "row_slice", "column_pair"])
def test_matches_torch_bytes_and_shape(src, dst, layout):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, size=(4, 16)).astype(np.uint8).view(getattr(np, src)
                                                                    if src != "bfloat16"
                                                                    else np.uint16)
    ours, theirs = lg.tensor(base.copy()), torch.tensor(base.copy())
    if layout == "row_slice":
        ours, theirs = ours[1:3], theirs[1:3]
    elif layout == "column_pair":  # offset and width that every item-size ratio divides
        width = base.shape[1]
        ours, theirs = ours[:, :width // 2], theirs[:, :width // 2]
    got = ours.view(getattr(lg, dst))
    want = theirs.view(getattr(torch, dst))
    assert tuple(got.shape) == tuple(want.shape) and got.dtype is getattr(lg, dst)
    if dst == "bfloat16":
        want = want.view(torch.int16)
        got_bits = got.cpu().numpy().view(np.int16)
    else:
        got_bits = got.cpu().numpy()
    np.testing.assert_array_equal(got_bits.view(np.uint8), want.numpy().view(np.uint8))


def test_is_a_view_and_never_requires_grad():
    x = lg.zeros(2, 4, requires_grad=True)
    y = x.view(lg.int32)
    assert not y.requires_grad and y.grad_fn is None
    with lg.no_grad():
        x.view(lg.int32)[0, 0] = 0x3F800000           # the bits of 1.0 in float32
    assert x[0, 0].item() == 1.0
    assert x.view(lg.float32).requires_grad is False     # as torch: even to the same dtype


@pytest.mark.parametrize("make,dtype", [
    (lambda m: m.randn(4, 6).t(), "float16"),             # stride(-1) != 1
    (lambda m: m.randn(3), "float64"),                    # size(-1) not divisible
    (lambda m: m.tensor(1.0), "float16"),                 # 0-dim
    (lambda m: m.randn(4, 6)[:, 1:5], "float64"),         # storage offset
    (lambda m: m.randn(3, 3)[:, :2], "float64"),          # stride(0) not divisible
])
def test_errors_are_torchs(make, dtype):
    with pytest.raises(RuntimeError) as theirs:
        make(torch).view(getattr(torch, dtype))
    with pytest.raises(RuntimeError) as ours:
        make(lg).view(getattr(lg, dtype))
    assert str(ours.value) == str(theirs.value)
