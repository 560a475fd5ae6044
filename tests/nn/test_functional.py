"""lightgrad.nn.functional: activations, linear, padding, embedding, dropout and the simple
losses against torch.nn.functional (forward and backward), plus gradcheck.

The fused ops have their own files (test_functional_conv.py, ..._pool, ..._norm, ..._loss,
..._attention); ``second_order_parity`` here is shared with them.
"""
from __future__ import annotations

import numpy as np
import pytest
from oracle import assert_close, check_parity, to_torch

import lightgrad as lg
import lightgrad.nn.functional as F
from lightgrad.autograd import gradcheck

torch = pytest.importorskip("torch")
TF = torch.nn.functional
rng = np.random.default_rng(0)


def randn(*shape: int) -> np.ndarray:
    return rng.standard_normal(shape)


def second_order_parity(fn, torch_fn, arrays, rtol=1e-7, atol=1e-9) -> None:
    """Compare gradients of ``sum(grad(sum(out * w)) * r)`` (a Hessian-vector product) with
    PyTorch, in float64, w.r.t. every float input."""
    ours = [lg.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, tout = fn(*ours), torch_fn(*theirs)
    w = rng.standard_normal(tuple(tout.shape))
    grads = lg.autograd.grad((out * lg.tensor(w)).sum(), ours, create_graph=True)
    tgrads = torch.autograd.grad((tout * torch.tensor(w)).sum(), theirs, create_graph=True)
    rs = [rng.standard_normal(a.shape) for a in arrays]
    total = sum((g * lg.tensor(r)).sum() for g, r in zip(grads, rs))
    ttotal = sum((g * torch.tensor(r)).sum() for g, r in zip(tgrads, rs))
    second = lg.autograd.grad(total, ours, allow_unused=True)
    tsecond = torch.autograd.grad(ttotal, theirs, allow_unused=True)
    for a, b in zip(second, tsecond):
        if b is None:
            assert a is None or np.allclose(a.numpy(), 0)
        else:
            assert_close(a, b, "float64", rtol, atol)


# ----------------------------------------------------------------------------- activations

ACTIVATIONS = [
    ("relu", lambda m, x: m.relu(x)),
    ("relu6", lambda m, x: m.relu6(x * 4)),
    ("leaky_relu", lambda m, x: m.leaky_relu(x, 0.2)),
    ("elu", lambda m, x: m.elu(x, alpha=1.5)),
    ("gelu", lambda m, x: m.gelu(x)),
    ("gelu_tanh", lambda m, x: m.gelu(x, approximate="tanh")),
    ("silu", lambda m, x: m.silu(x)),
    ("mish", lambda m, x: m.mish(x)),
    ("tanh", lambda m, x: m.tanh(x)),
    ("sigmoid", lambda m, x: m.sigmoid(x)),
    ("softplus", lambda m, x: m.softplus(x * 10, beta=2.0, threshold=5.0)),
    ("softmax", lambda m, x: m.softmax(x, dim=1)),
    ("log_softmax", lambda m, x: m.log_softmax(x, dim=-1)),
    ("normalize", lambda m, x: m.normalize(x, p=2.0, dim=1)),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name,fn", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation_parity(name, fn, dtype):
    check_parity(lambda x: fn(F, x), [randn(3, 5)], lambda x: fn(TF, x), dtype=dtype)


def test_activation_gradcheck():
    x = lg.tensor(randn(2, 3), requires_grad=True)
    for _, fn in ACTIVATIONS:
        if _ in ("relu", "relu6", "leaky_relu"):  # kinks: finite differences straddle them
            continue
        assert gradcheck(lambda t, fn=fn: fn(F, t), [x])


# ----------------------------------------------------------------------------- linear


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_parity(dtype, bias):
    arrays = [randn(2, 3, 4), randn(5, 4)] + ([randn(5)] if bias else [])
    check_parity(lambda *a: F.linear(*a), arrays, lambda *a: TF.linear(*a), dtype=dtype)


def test_bilinear_parity():
    check_parity(F.bilinear, [randn(3, 2), randn(3, 4), randn(5, 2, 4), randn(5)],
                 TF.bilinear)


def test_linear_errors():
    with pytest.raises(ValueError, match=r"linear: input of shape \(2, 3\) does not match "
                                         r"weight of shape \(5, 4\)"):
        F.linear(lg.ones(2, 3), lg.ones(5, 4))
    with pytest.raises(ValueError, match=r"linear: weight must have 2 dims"):
        F.linear(lg.ones(2, 3), lg.ones(3))
    with pytest.raises(ValueError, match=r"linear: bias of shape \(4,\)"):
        F.linear(lg.ones(2, 3), lg.ones(5, 3), lg.ones(4))


# ----------------------------------------------------------------------------- pad

PADS = [((1, 2), "constant"), ((1, 0, 2, 1), "constant"), ((-1, 2, 1, -1), "constant"),
        ((2, 1), "reflect"), ((1, 2, 2, 0), "reflect"), ((2, 3, 1, 0), "replicate"),
        ((1, 2, 3, 1), "circular")]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("pad,mode", PADS)
def test_pad_parity(pad, mode, dtype):
    value = 1.5 if mode == "constant" else None
    x = randn(2, 3, 5) if len(pad) == 2 else randn(2, 3, 4, 5)  # torch's supported ranks
    check_parity(lambda t: F.pad(t, pad, mode, value), [x],
                 lambda t: TF.pad(t, pad, mode, value), dtype=dtype)


def test_pad_gradcheck_and_errors():
    x = lg.tensor(randn(1, 2, 3), requires_grad=True)
    assert gradcheck(lambda t: F.pad(t, (2, 1), mode="reflect"), [x])
    with pytest.raises(ValueError, match=r"pad: reflect padding \(3, 0\) is invalid for dim "
                                         r"2 of size 3"):
        F.pad(x, (3, 0), mode="reflect")
    with pytest.raises(ValueError, match="pad: .*must have an even length"):
        F.pad(x, (1, 2, 3))
    with pytest.raises(ValueError, match="pad: .*must have an even length"):
        F.pad(x, (1, 2, 3), mode="replicate")
    with pytest.raises(ValueError, match="pad: mode must be"):
        F.pad(x, (1, 1), mode="wrap")


# ----------------------------------------------------------------------------- embedding


@pytest.mark.parametrize("padding_idx", [None, 2])
def test_embedding_parity_repeated_ids(padding_idx):
    ids = np.array([[0, 2, 2], [4, 0, 2]])  # repeated ids: gradients must add up
    check_parity(lambda i, w: F.embedding(i, w, padding_idx=padding_idx), [ids, randn(5, 3)],
                 lambda i, w: TF.embedding(i, w, padding_idx=padding_idx))


def test_embedding_errors():
    with pytest.raises(IndexError, match=r"embedding: index out of range: ids must be in "
                                         r"\[0, 5\) for weight of shape \(5, 3\)"):
        F.embedding(lg.tensor([1, 5]), lg.ones(5, 3))
    with pytest.raises(TypeError, match="embedding: input must hold integer ids"):
        F.embedding(lg.tensor([1.0]), lg.ones(5, 3))


# ----------------------------------------------------------------------------- dropout


def test_dropout_statistics_and_gradient():
    x = lg.ones(200, 100, requires_grad=True)
    y = F.dropout(x, p=0.3)
    kept = (y.detach() != 0).to(lg.float32)
    assert abs(kept.mean().item() - 0.7) < 0.02
    np.testing.assert_allclose(y.detach().numpy()[kept.numpy() == 1], 1 / 0.7, rtol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), y.detach().numpy(), rtol=1e-6)
    assert F.dropout(x, 0.3, training=False) is x
    assert (F.dropout(x, 1.0).detach().numpy() == 0).all()
    lg.manual_seed(3)
    a = F.dropout(x, 0.5).detach().numpy()
    lg.manual_seed(3)
    np.testing.assert_array_equal(a, F.dropout(x, 0.5).detach().numpy())
    with pytest.raises(ValueError, match="dropout: probability has to be between 0 and 1"):
        F.dropout(x, 1.5)


# ----------------------------------------------------------------------------- simple losses

LOSSES = [
    ("mse_loss", lambda m, x, t, r: m.mse_loss(x, t, reduction=r)),
    ("l1_loss", lambda m, x, t, r: m.l1_loss(x, t, reduction=r)),
    ("smooth_l1_loss", lambda m, x, t, r: m.smooth_l1_loss(x, t, reduction=r, beta=0.7)),
    ("huber_loss", lambda m, x, t, r: m.huber_loss(x, t, reduction=r, delta=0.7)),
    ("kl_div", lambda m, x, t, r: m.kl_div(x.log_softmax(-1), t.softmax(-1), reduction=(
        "batchmean" if r == "mean" else r))),
    ("bce", lambda m, x, t, r: m.binary_cross_entropy(x.sigmoid(), t.sigmoid(),
                                                      reduction=r)),
]


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("name,fn", LOSSES, ids=[a[0] for a in LOSSES])
def test_simple_loss_parity(name, fn, reduction):
    check_parity(lambda x, t: fn(F, x, t, reduction), [randn(4, 3), randn(4, 3)],
                 lambda x, t: fn(TF, x, t, reduction))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_with_logits_parity(reduction, weighted, dtype):
    x = randn(4, 3) * 30  # large logits: the formula must stay finite
    weight, pos = (rng.random(3), rng.random(3) + 0.5) if weighted else (None, None)

    def call(mod, tensor, x, t):
        extra = {}
        if weighted:
            extra = {"weight": tensor(weight).to(x.dtype), "pos_weight": tensor(pos).to(x.dtype)}
        return mod.binary_cross_entropy_with_logits(x, t, reduction=reduction, **extra)
    check_parity(lambda *a: call(F, lg.tensor, *a), [x, rng.random((4, 3))],
                 lambda *a: call(TF, torch.tensor, *a), dtype=dtype)


def test_loss_errors():
    with pytest.raises(ValueError, match=r"mse_loss: target shape \(3,\) must match input "
                                         r"shape \(2,\)"):
        F.mse_loss(lg.ones(2), lg.ones(3))
    with pytest.raises(ValueError, match="l1_loss: reduction must be 'none', 'mean' or 'sum'"):
        F.l1_loss(lg.ones(2), lg.ones(2), reduction="avg")


def test_one_hot_is_reexported():
    assert F.one_hot(lg.tensor([1]), 3).tolist() == [[0, 1, 0]]
    assert_close(F.one_hot(lg.tensor([2, 0])), TF.one_hot(to_torch(lg.tensor([2, 0]))))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_fused_ops_half_precision(dtype):
    """A small CNN + attention head in half precision: values and gradients stay close to
    PyTorch's float32 results (lightgrad computes halves in float32 and rounds). No max
    pooling: rounding can create ties that send its gradient elsewhere."""
    def net(mod, x, w, target):
        c = mod.conv2d(x, w, padding=1)
        y = mod.avg_pool2d(mod.avg_pool2d(c, 2), 2, ceil_mode=True).flatten(1)
        z = mod.layer_norm(y, (16,)) + mod.rms_norm(y, (16,), eps=1e-3)
        q = mod.scaled_dot_product_attention(y.unsqueeze(0), y.unsqueeze(0), y.unsqueeze(0))
        bn = mod.batch_norm(c, None, None, training=True)
        return mod.cross_entropy(z, target) + q.mean() + (bn * mod.tanh(c)).mean()

    local = np.random.default_rng(11)
    x, w = local.standard_normal((2, 3, 6, 6)), local.standard_normal((4, 3, 3, 3))
    target = np.array([1, 2])
    ours = [lg.tensor(a).to(dtype).requires_grad_() for a in (x, w)]
    theirs = [torch.tensor(a, dtype=torch.float32, requires_grad=True) for a in (x, w)]
    loss = net(F, *ours, lg.tensor(target))
    tloss = net(TF, *theirs, torch.tensor(target))
    assert loss.dtype.name == dtype
    loss.backward()
    tloss.backward()
    assert_close(loss.float(), tloss, "float32", rtol=3e-2, atol=3e-2)
    for a, b in zip(ours, theirs):
        assert a.grad.dtype.name == dtype
        np.testing.assert_allclose(a.grad.float().numpy(), b.grad.numpy(), rtol=5e-2,
                                   atol=5e-2)
