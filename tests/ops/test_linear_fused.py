"""``F.linear`` / ``nn.Linear`` as one fused op (``ops.linalg.Linear``) against PyTorch and
finite differences, on every device."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lightgrad as lg
from lightgrad.nn import functional as F
from tests.oracle import check_parity


@pytest.mark.parametrize("x_shape", [(5, 3), (2, 4, 3), (2, 1, 2, 3)])
@pytest.mark.parametrize("bias", ["vector", "scalar", None])
def test_linear_matches_torch(x_shape, bias):
    r = np.random.default_rng(0)
    arrays = [r.standard_normal(x_shape), r.standard_normal((4, 3))]
    if bias == "vector":
        arrays.append(r.standard_normal(4))
    elif bias == "scalar":
        arrays.append(np.array(r.standard_normal()))
    check_parity(lambda *t: F.linear(*t), arrays,
                 lambda *t: torch.nn.functional.linear(*t), dtype="float32")


def test_linear_is_one_recorded_op():
    x = lg.randn(2, 3, 4, requires_grad=True)
    y = F.linear(x, lg.randn(5, 4, requires_grad=True), lg.randn(5, requires_grad=True))
    assert "grad_fn=<LinearBackward>" in repr(y)


def test_linear_gradcheck_float64():
    x = lg.randn(2, 3, 4, dtype=lg.float64, requires_grad=True)
    w = lg.randn(5, 4, dtype=lg.float64, requires_grad=True)
    b = lg.randn(5, dtype=lg.float64, requires_grad=True)
    assert lg.autograd.gradcheck(lambda x, w, b: F.linear(x, w, b), [x, w, b])


def test_linear_second_order_matches_torch():
    r = np.random.default_rng(1)
    xa, wa = r.standard_normal((3, 4)), r.standard_normal((2, 4))
    x, w = lg.tensor(xa, requires_grad=True), lg.tensor(wa, requires_grad=True)
    (gx,) = lg.autograd.grad((F.linear(x, w) ** 2).sum(), [x], create_graph=True)
    gx.sum().backward()
    tx, tw = torch.tensor(xa, requires_grad=True), torch.tensor(wa, requires_grad=True)
    (tgx,) = torch.autograd.grad((torch.nn.functional.linear(tx, tw) ** 2).sum(), [tx],
                                 create_graph=True)
    tgx.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-10)


def test_linear_only_weight_needs_grad():
    w = lg.randn(4, 3, requires_grad=True)
    F.linear(lg.ones(2, 5, 3), w).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), np.full((4, 3), 10.0))


def test_linear_rejects_mixed_dtypes_naming_them():
    with pytest.raises(RuntimeError, match="same dtype"):
        F.linear(lg.ones(2, 3, dtype=lg.float64), lg.ones(4, 3))
    with pytest.raises(RuntimeError, match="bias"):
        F.linear(lg.ones(2, 3), lg.ones(4, 3), lg.ones(4, dtype=lg.float64))
