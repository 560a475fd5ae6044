"""F.layer_norm / rms_norm / batch_norm against PyTorch: forward and backward with and
without affine parameters, batch_norm in training (incl. running-stat updates) and eval;
second-order gradients; float64 gradcheck; input validation messages."""
from __future__ import annotations

import numpy as np
import pytest
from oracle import assert_close, check_parity
from test_functional import second_order_parity

import lightgrad as lg
import lightgrad.nn.functional as F
from lightgrad.autograd import gradcheck

torch = pytest.importorskip("torch")
TF = torch.nn.functional
rng = np.random.default_rng(3)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("affine", ["none", "weight", "both"])
@pytest.mark.parametrize("shape", [(4,), (3, 4)])
def test_layer_norm_parity(shape, affine, dtype):
    arrays = [rng.standard_normal((2, 5) + shape) * 3 + 1]
    arrays += [rng.standard_normal(shape)] if affine != "none" else []
    arrays += [rng.standard_normal(shape)] if affine == "both" else []
    check_parity(lambda x, *p: F.layer_norm(x, shape, *p, eps=1e-4), arrays,
                 lambda x, *p: TF.layer_norm(x, shape, *p, eps=1e-4), dtype=dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("eps", [None, 1e-3])
def test_rms_norm_parity(affine, eps, dtype):
    arrays = [rng.standard_normal((2, 5, 6))] + ([rng.standard_normal(6)] if affine else [])
    check_parity(lambda x, *p: F.rms_norm(x, (6,), *p, eps=eps), arrays,
                 lambda x, *p: TF.rms_norm(x, (6,), *p, eps=eps), dtype=dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (2, 3, 4, 5)])
def test_batch_norm_parity_and_running_stats(shape, affine, training, dtype):
    stats = [rng.standard_normal(3), rng.random(3) + 0.5]
    ours = [lg.tensor(s).to(dtype) for s in stats]
    theirs = [torch.tensor(s).to(getattr(torch, dtype)) for s in stats]
    arrays = [rng.standard_normal(shape) * 2 + 1]
    arrays += [rng.standard_normal(3), rng.standard_normal(3)] if affine else []
    check_parity(lambda x, *p: F.batch_norm(x, *ours, *p, training=training, momentum=0.3),
                 arrays,
                 lambda x, *p: TF.batch_norm(x, *theirs, *p, training=training, momentum=0.3),
                 dtype=dtype)
    for a, b in zip(ours, theirs):  # running_mean, running_var (unbiased) updated in place
        assert_close(a, b, dtype)
    if not training:
        np.testing.assert_array_equal(ours[0].numpy(), stats[0].astype(dtype))


def test_batch_norm_without_running_stats():
    check_parity(lambda x: F.batch_norm(x, None, None, training=True),
                 [rng.standard_normal((4, 3, 2))],
                 lambda x: TF.batch_norm(x, None, None, training=True))


def test_norm_second_order():
    x = rng.standard_normal((3, 4))
    second_order_parity(lambda x, w, b: F.layer_norm(x, (4,), w, b),
                        lambda x, w, b: TF.layer_norm(x, (4,), w, b),
                        [x, rng.standard_normal(4), rng.standard_normal(4)])
    second_order_parity(lambda x, w: F.rms_norm(x, (4,), w, 1e-3),
                        lambda x, w: TF.rms_norm(x, (4,), w, 1e-3),
                        [x, rng.standard_normal(4)])
    second_order_parity(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                        lambda x, w, b: TF.batch_norm(x, None, None, w, b, training=True),
                        [rng.standard_normal((3, 2, 2)), rng.standard_normal(2),
                         rng.standard_normal(2)])


def test_norm_gradcheck():
    x = lg.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    w = lg.tensor(rng.standard_normal(3), requires_grad=True)
    b = lg.tensor(rng.standard_normal(3), requires_grad=True)
    assert gradcheck(lambda x, w, b: F.layer_norm(x, 3, w, b), [x, w, b])
    assert gradcheck(lambda x, w: F.rms_norm(x, 3, w), [x, w])
    xb = lg.tensor(rng.standard_normal((3, 3, 2)), requires_grad=True)
    assert gradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                     [xb, w, b])
    mean, var = lg.zeros(3, dtype=lg.float64), lg.ones(3, dtype=lg.float64)
    assert gradcheck(lambda x, w, b: F.batch_norm(x, mean, var, w, b), [xb, w, b])


def test_norm_errors():
    x = lg.ones(2, 3, 4)
    with pytest.raises(ValueError, match=r"layer_norm: expected input with trailing shape "
                                         r"\(5,\) \(normalized_shape\), got shape \(2, 3, 4\)"):
        F.layer_norm(x, 5)
    with pytest.raises(ValueError, match=r"layer_norm: weight must have shape \(4,\), got "
                                         r"\(3,\)"):
        F.layer_norm(x, 4, lg.ones(3))
    with pytest.raises(TypeError, match="rms_norm: weight dtype float64 does not match"):
        F.rms_norm(x, 4, lg.ones(4, dtype=lg.float64))
    with pytest.raises(ValueError, match=r"batch_norm: running_mean must have shape \(3,\), "
                                         r"got \(4,\)"):
        F.batch_norm(x, lg.zeros(4), lg.ones(3))
    with pytest.raises(ValueError, match="batch_norm: expected more than 1 value per channel "
                                         "when training"):
        F.batch_norm(lg.ones(1, 3), None, None, training=True)
    with pytest.raises(ValueError, match="batch_norm: running_mean and running_var are "
                                         "required"):
        F.batch_norm(x, None, None)
