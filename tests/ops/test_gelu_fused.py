"""Exact GELU with its derivative computed in the forward (``gelu_and_grad``), on every
device: values and gradients against PyTorch, second derivatives, finite differences."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lightgrad as lg
from lightgrad.nn import functional as F
from tests.oracle import check_parity


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gelu_forward_and_backward_match_torch(dtype):
    x = np.random.default_rng(0).standard_normal((4, 33)) * 3
    check_parity(lambda t: F.gelu(t), [x], lambda t: torch.nn.functional.gelu(t), dtype=dtype,
                 rtol=1e-5, atol=2e-6 if dtype == "float32" else None)


def test_gelu_and_grad_primitive_agrees_with_gelu_and_gelu_backward():
    x = lg.tensor(np.linspace(-6, 6, 97, dtype=np.float32))
    be = x.device.backend
    y, d = be.gelu_and_grad(x._data)
    ones = lg.ones(97)._data
    np.testing.assert_allclose(be.to_numpy(y), F.gelu(x).numpy(), rtol=1e-6, atol=1e-7)
    ref = be.gelu_backward(x._data, ones)
    np.testing.assert_allclose(be.to_numpy(d), be.to_numpy(ref), rtol=1e-6, atol=1e-7)


def test_gelu_second_derivative_matches_torch():
    xa = np.random.default_rng(1).standard_normal(20)
    x = lg.tensor(xa, requires_grad=True)
    (g,) = lg.autograd.grad(F.gelu(x).sum(), [x], create_graph=True)
    g.sum().backward()
    tx = torch.tensor(xa, requires_grad=True)
    (tg,) = torch.autograd.grad(torch.nn.functional.gelu(tx).sum(), [tx], create_graph=True)
    tg.sum().backward()
    np.testing.assert_allclose(g.detach().numpy(), tg.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-8, atol=1e-12)


def test_gelu_gradcheck_float64():
    x = lg.randn(3, 5, dtype=lg.float64, requires_grad=True)
    assert lg.autograd.gradcheck(lambda t: F.gelu(t), [x])


def test_gelu_without_grad_saves_nothing():
    with lg.no_grad():
        y = F.gelu(lg.randn(4, requires_grad=True))
    assert y.grad_fn is None
