"""F.cross_entropy and F.nll_loss against PyTorch: class-index targets (N, C) and spatial
(N, C, d1, d2), class-probability targets, weight, ignore_index, label_smoothing and every
reduction; second-order gradients; float64 gradcheck; input validation messages."""
from __future__ import annotations

import numpy as np
import pytest
from oracle import check_parity
from test_functional import second_order_parity

import lightgrad as lg
import lightgrad.nn.functional as F
from lightgrad.autograd import gradcheck

torch = pytest.importorskip("torch")
TF = torch.nn.functional
rng = np.random.default_rng(4)
C = 5


def class_targets(shape: tuple, ignore: bool) -> np.ndarray:
    t = rng.integers(0, C, shape)
    if ignore:
        t.reshape(-1)[::3] = -1
    return t


def call(mod, tensor, x, t, weight, kw):
    w = tensor(weight).to(x.dtype) if weight is not None else None
    return mod.cross_entropy(x, t, weight=w, **kw)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.15])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(6, C), (2, C, 3, 2)], ids=["2d", "spatial"])
def test_cross_entropy_class_index_parity(shape, weighted, smoothing, reduction, dtype):
    weight = rng.random(C) + 0.2 if weighted else None
    target = class_targets(shape[:1] + shape[2:], ignore=True)
    kw = dict(ignore_index=-1, reduction=reduction, label_smoothing=smoothing)
    check_parity(lambda x, t: call(F, lg.tensor, x, t, weight, kw),
                 [rng.standard_normal(shape) * 3, target],
                 lambda x, t: call(TF, torch.tensor, x, t, weight, kw), dtype=dtype)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_probability_targets_parity(weighted, smoothing, reduction):
    weight = rng.random(C) + 0.2 if weighted else None
    probs = rng.random((3, C, 2))
    probs /= probs.sum(axis=1, keepdims=True)
    kw = dict(reduction=reduction, label_smoothing=smoothing)
    check_parity(lambda x, t: call(F, lg.tensor, x, t, weight, kw),
                 [rng.standard_normal((3, C, 2)), probs],
                 lambda x, t: call(TF, torch.tensor, x, t, weight, kw))


def test_cross_entropy_unbatched_and_large_logits():
    check_parity(lambda x, t: F.cross_entropy(x, t), [rng.standard_normal(C), np.array(2)],
                 lambda x, t: TF.cross_entropy(x, t))
    big = rng.standard_normal((4, C)) * 1000  # stable: no overflow in exp
    check_parity(lambda x, t: F.cross_entropy(x, t), [big, class_targets((4,), False)],
                 lambda x, t: TF.cross_entropy(x, t), dtype="float32")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss_parity(weighted, reduction):
    weight = rng.random(C) + 0.2 if weighted else None

    def run(mod, tensor, x, t):
        w = tensor(weight) if weighted else None
        return mod.nll_loss(x.log_softmax(1), t, w, ignore_index=-1, reduction=reduction)
    check_parity(lambda x, t: run(F, lg.tensor, x, t),
                 [rng.standard_normal((2, C, 3)), class_targets((2, 3), ignore=True)],
                 lambda x, t: run(TF, torch.tensor, x, t))


def test_cross_entropy_second_order():
    weight = rng.random(C) + 0.2
    target = class_targets((4,), ignore=True)
    kw = dict(ignore_index=-1, label_smoothing=0.1)
    second_order_parity(
        lambda x: F.cross_entropy(x, lg.tensor(target), lg.tensor(weight), **kw),
        lambda x: TF.cross_entropy(x, torch.tensor(target), torch.tensor(weight), **kw),
        [rng.standard_normal((4, C))])
    second_order_parity(  # class probabilities: second derivatives w.r.t. target too
        lambda x, t: F.cross_entropy(x, t, lg.tensor(weight), label_smoothing=0.1,
                                     reduction="none"),
        lambda x, t: TF.cross_entropy(x, t, torch.tensor(weight), label_smoothing=0.1,
                                      reduction="none"),
        [rng.standard_normal((4, C)), rng.random((4, C))])


def test_cross_entropy_gradcheck():
    x = lg.tensor(rng.standard_normal((3, C, 2)), requires_grad=True)
    t = lg.tensor(class_targets((3, 2), ignore=True))
    w = lg.tensor(rng.random(C) + 0.2)
    assert gradcheck(lambda x: F.cross_entropy(x, t, w, ignore_index=-1,
                                               label_smoothing=0.3), [x])
    assert gradcheck(lambda x: F.cross_entropy(x, t, reduction="none", ignore_index=-1), [x])
    probs = lg.tensor(rng.random((3, C)), requires_grad=True)
    x2 = lg.tensor(rng.standard_normal((3, C)), requires_grad=True)
    assert gradcheck(lambda x, p: F.cross_entropy(x, p, label_smoothing=0.2), [x2, probs])


def test_cross_entropy_errors():
    x = lg.zeros(4, C)
    with pytest.raises(ValueError, match=r"cross_entropy: expected target of shape \(4,\) for "
                                         r"input of shape \(4, 5\) \(N, C, ...\), got target "
                                         r"shape \(3,\)"):
        F.cross_entropy(x, lg.tensor([0, 1, 2]))
    with pytest.raises(IndexError, match=r"cross_entropy: target class 7 is out of range for "
                                         r"5 classes \(input shape \(4, 5\)"):
        F.cross_entropy(x, lg.tensor([0, 7, 1, 2]))
    with pytest.raises(IndexError, match="cross_entropy: target class -2 is out of range"):
        F.cross_entropy(x, lg.tensor([0, -2, 1, 2]))
    with pytest.raises(ValueError, match=r"cross_entropy: weight must be a float32 tensor of "
                                         r"shape \(5,\)"):
        F.cross_entropy(x, lg.tensor([0, 1, 1, 2]), weight=lg.ones(4))
    with pytest.raises(ValueError, match="cross_entropy: class-probability targets must have "
                                         "the input's shape"):
        F.cross_entropy(x, lg.zeros(4, 3))
    with pytest.raises(ValueError, match="cross_entropy: reduction must be"):
        F.cross_entropy(x, lg.tensor([0, 1, 1, 2]), reduction="avg")
    with pytest.raises(ValueError, match="cross_entropy: label_smoothing must be in"):
        F.cross_entropy(x, lg.tensor([0, 1, 1, 2]), label_smoothing=1.5)
    with pytest.raises(IndexError, match="nll_loss: target class 5 is out of range"):
        F.nll_loss(x, lg.tensor([0, 5, 1, 2]))
