"""Every layer against torch.nn: the same constructor call on both libraries, torch's
weights copied across through state_dict, then forward outputs, input and parameter
gradients (and BatchNorm's running statistics) compared in float64. Also reprs, PyTorch's
initialisation schemes, dropout statistics, losses with options and input-shape errors."""
from __future__ import annotations

import math
import warnings
from typing import Any, Callable

import numpy as np
import pytest
from oracle import assert_close, to_numpy

import lightgrad as lg
from lightgrad import nn
from lightgrad.autograd import gradcheck

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.filterwarnings("ignore:Using padding='same'"),
              pytest.mark.filterwarnings("ignore:size_average and reduce args")]


def _copy_weights(ours: Any, theirs: Any) -> None:
    """Randomise torch's float parameters (so ones/zeros inits hide nothing), then load
    torch's state_dict into ours."""
    with torch.no_grad():
        for p in theirs.parameters():
            p.uniform_(-1.0, 1.0)
    result = ours.load_state_dict({k: lg.tensor(to_numpy(v))
                                   for k, v in theirs.state_dict().items()})
    assert result.missing_keys == [] and result.unexpected_keys == []


def _inputs(specs: list, rng: np.random.Generator) -> list:
    """A shape tuple becomes a random float64 array; an array is used as is."""
    return [rng.standard_normal(s) if isinstance(s, tuple) else s for s in specs]


def check_layer(make: Callable[[Any], Any], specs: list, train: bool = True,
                steps: int = 1) -> tuple[Any, Any]:
    """Build the layer on both libraries, copy weights, then for each step compare outputs,
    input gradients, parameter gradients and the state_dict (running stats)."""
    torch.manual_seed(0)
    theirs = make(torch.nn).double().train(train)
    ours = make(nn).double().train(train)
    _copy_weights(ours, theirs)
    assert repr(ours) == repr(theirs)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        arrays = _inputs(specs, rng)
        lg_in = [lg.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
        th_in = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
        out, tout = ours(*lg_in), theirs(*th_in)
        assert_close(out, tout)
        if out.requires_grad:
            w = rng.standard_normal(out.shape)
            (out * lg.tensor(w)).sum().backward()
            (tout * torch.tensor(w)).sum().backward()
            for a, b in zip(lg_in, th_in):
                if b.requires_grad:
                    assert_close(a.grad, b.grad)
            tparams = dict(theirs.named_parameters())
            for name, p in ours.named_parameters():
                assert_close(p.grad, tparams[name].grad)
        tsd = theirs.state_dict()
        for name, value in ours.state_dict().items():
            assert_close(value, tsd[name])
    return ours, theirs


# ----------------------------------------------------------------------------- simple layers

SIMPLE = [
    ("linear_3d", lambda nn: nn.Linear(4, 3), [(2, 5, 4)]),
    ("linear_no_bias_1d", lambda nn: nn.Linear(4, 3, bias=False), [(4,)]),
    ("identity", lambda nn: nn.Identity(7, x=1), [(2, 3)]),
    ("flatten", lambda nn: nn.Flatten(), [(2, 3, 4, 5)]),
    ("flatten_range", lambda nn: nn.Flatten(0, 2), [(2, 3, 4, 5)]),
    ("unflatten", lambda nn: nn.Unflatten(1, (3, 4)), [(2, 12)]),
    ("relu", lambda nn: nn.ReLU(), [(3, 5)]),
    ("relu6", lambda nn: nn.ReLU6(), [(3, 5)]),
    ("leaky_relu", lambda nn: nn.LeakyReLU(0.2), [(3, 5)]),
    ("elu", lambda nn: nn.ELU(alpha=0.7), [(3, 5)]),
    ("gelu", lambda nn: nn.GELU(), [(3, 5)]),
    ("gelu_tanh", lambda nn: nn.GELU(approximate="tanh"), [(3, 5)]),
    ("silu", lambda nn: nn.SiLU(), [(3, 5)]),
    ("mish", lambda nn: nn.Mish(), [(3, 5)]),
    ("softplus", lambda nn: nn.Softplus(beta=2.0, threshold=1.0), [(3, 5)]),
    ("tanh", lambda nn: nn.Tanh(), [(3, 5)]),
    ("sigmoid", lambda nn: nn.Sigmoid(), [(3, 5)]),
    ("softmax", lambda nn: nn.Softmax(dim=1), [(3, 5, 2)]),
    ("softmax_neg_dim", lambda nn: nn.Softmax(dim=-1), [(3, 5)]),
    ("log_softmax", lambda nn: nn.LogSoftmax(dim=0), [(3, 5)]),
    ("embedding", lambda nn: nn.Embedding(10, 4), [np.array([[1, 3, 3], [9, 0, 1]])]),
    ("embedding_padding", lambda nn: nn.Embedding(10, 4, padding_idx=3),
     [np.array([[1, 3, 3], [9, 0, 3]])]),
    ("embedding_neg_padding", lambda nn: nn.Embedding(10, 4, padding_idx=-1),
     [np.array([9, 9, 2])]),
    ("dropout_eval", lambda nn: nn.Dropout(0.4).eval(), [(4, 6)]),
]


@pytest.mark.parametrize("name,make,specs", SIMPLE, ids=[c[0] for c in SIMPLE])
def test_simple_layers_match_torch(name, make, specs):
    ours, _ = check_layer(make, specs, train=not name.endswith("_eval"))
    if "padding" in name:  # the padding row gets no gradient
        assert not ours.weight.grad[ours.padding_idx].abs().sum().item()


def test_softmax_without_dim_uses_torchs_legacy_choice():
    for shape in [(5,), (3, 5), (2, 3, 5), (2, 3, 4, 5)]:
        x = np.random.default_rng(0).standard_normal(shape)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = torch.nn.Softmax()(torch.tensor(x))
        assert_close(nn.Softmax()(lg.tensor(x)), want)


# ----------------------------------------------------------------------------- conv

CONV = [
    ("c1_basic", lambda nn: nn.Conv1d(4, 6, 3), [(2, 4, 9)]),
    ("c1_stride_pad", lambda nn: nn.Conv1d(4, 6, 3, stride=2, padding=1), [(2, 4, 9)]),
    ("c1_dilation_groups", lambda nn: nn.Conv1d(4, 6, 3, dilation=2, groups=2, bias=False),
     [(2, 4, 11)]),
    ("c1_same_even", lambda nn: nn.Conv1d(4, 2, 4, padding="same", dilation=3), [(2, 4, 10)]),
    ("c1_valid", lambda nn: nn.Conv1d(4, 2, 5, padding="valid"), [(1, 4, 8)]),
    ("c1_reflect", lambda nn: nn.Conv1d(4, 2, 3, padding=2, padding_mode="reflect"),
     [(2, 4, 7)]),
    ("c1_unbatched", lambda nn: nn.Conv1d(4, 3, 2), [(4, 6)]),
    ("c2_basic", lambda nn: nn.Conv2d(4, 6, 3), [(2, 4, 9, 8)]),
    ("c2_rect", lambda nn: nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0)),
     [(2, 4, 9, 8)]),
    ("c2_dilation", lambda nn: nn.Conv2d(4, 6, 3, dilation=2, padding=2), [(2, 4, 9, 8)]),
    ("c2_groups", lambda nn: nn.Conv2d(4, 6, 3, groups=2, stride=2), [(2, 4, 9, 8)]),
    ("c2_depthwise", lambda nn: nn.Conv2d(4, 8, 3, groups=4, padding=1, bias=False),
     [(2, 4, 7, 7)]),
    ("c2_same", lambda nn: nn.Conv2d(4, 3, (4, 3), padding="same", dilation=(1, 2)),
     [(2, 4, 8, 9)]),
    ("c2_reflect", lambda nn: nn.Conv2d(4, 3, 3, padding=(1, 2), padding_mode="reflect"),
     [(1, 4, 6, 7)]),
    ("c2_replicate", lambda nn: nn.Conv2d(4, 3, 3, padding=1, padding_mode="replicate"),
     [(1, 4, 6, 7)]),
    ("c2_circular", lambda nn: nn.Conv2d(4, 3, 3, padding=(2, 1), padding_mode="circular"),
     [(1, 4, 6, 7)]),
    ("c2_unbatched", lambda nn: nn.Conv2d(4, 3, 3, stride=2), [(4, 7, 7)]),
]


@pytest.mark.parametrize("name,make,specs", CONV, ids=[c[0] for c in CONV])
def test_conv_layers_match_torch(name, make, specs):
    check_layer(make, specs)


GRADCHECK = [
    ("linear", lambda: nn.Linear(3, 2), (2, 3)),
    ("conv2d_groups", lambda: nn.Conv2d(2, 2, 2, padding=1, groups=2), (1, 2, 3, 3)),
    ("conv1d_same_reflect", lambda: nn.Conv1d(2, 1, 2, padding="same",
                                              padding_mode="reflect"), (1, 2, 4)),
    ("max_pool", lambda: nn.MaxPool2d(2, padding=1), (1, 1, 3, 3)),
    ("avg_pool", lambda: nn.AvgPool2d(2, 1, 1, count_include_pad=False), (1, 1, 3, 3)),
    ("adaptive", lambda: nn.AdaptiveAvgPool2d((2, 3)), (1, 1, 3, 4)),
    ("layer_norm", lambda: nn.LayerNorm(3), (2, 3)),
    ("rms_norm", lambda: nn.RMSNorm(3), (2, 3)),
    ("batch_norm_train", lambda: nn.BatchNorm1d(2), (4, 2)),
    ("softmax", lambda: nn.Softmax(-1), (2, 3)),
    ("gelu_tanh", lambda: nn.GELU("tanh"), (2, 3)),
]


@pytest.mark.parametrize("name,make,shape", GRADCHECK, ids=[c[0] for c in GRADCHECK])
def test_layer_gradcheck_float64(name, make, shape):
    """Backward against finite differences, w.r.t. the input and every parameter."""
    layer = make().double()
    x = lg.randn(*shape, dtype=lg.float64, requires_grad=True)
    # gradcheck perturbs each input's memory in place, so the layer sees its own
    # parameters change
    assert gradcheck(lambda inp, *params: layer(inp), [x, *layer.parameters()])


def test_conv_argument_errors():
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 6, 3, groups=2)
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        nn.Conv2d(3, 6, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        nn.Conv1d(3, 6, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="padding must be 'same', 'valid' or ints"):
        nn.Conv1d(3, 6, 3, padding="full")


# ----------------------------------------------------------------------------- pooling

POOL = [
    ("max_2", lambda nn: nn.MaxPool2d(2), [(2, 3, 8, 9)]),
    ("max_stride_pad", lambda nn: nn.MaxPool2d(3, stride=2, padding=1), [(2, 3, 8, 9)]),
    ("max_rect_dilation", lambda nn: nn.MaxPool2d((2, 3), stride=(1, 2), dilation=(2, 1)),
     [(2, 3, 8, 9)]),
    ("max_ceil", lambda nn: nn.MaxPool2d(3, 2, ceil_mode=True), [(1, 2, 8, 8)]),
    ("max_unbatched", lambda nn: nn.MaxPool2d(2), [(3, 6, 6)]),
    ("avg_2", lambda nn: nn.AvgPool2d(2), [(2, 3, 8, 9)]),
    ("avg_stride_pad", lambda nn: nn.AvgPool2d(3, stride=2, padding=1), [(2, 3, 8, 9)]),
    ("avg_exclude_pad", lambda nn: nn.AvgPool2d(3, 2, 1, count_include_pad=False),
     [(2, 3, 8, 9)]),
    ("avg_ceil", lambda nn: nn.AvgPool2d(3, 2, ceil_mode=True), [(1, 2, 8, 8)]),
    ("avg_divisor", lambda nn: nn.AvgPool2d(2, divisor_override=3), [(1, 2, 6, 6)]),
    ("avg_unbatched", lambda nn: nn.AvgPool2d((2, 3)), [(3, 6, 6)]),
    ("adaptive_1", lambda nn: nn.AdaptiveAvgPool2d(1), [(2, 3, 7, 5)]),
    ("adaptive_uneven", lambda nn: nn.AdaptiveAvgPool2d((3, 5)), [(2, 3, 9, 8)]),
    ("adaptive_upsample", lambda nn: nn.AdaptiveAvgPool2d(4), [(1, 2, 3, 3)]),
    ("adaptive_none", lambda nn: nn.AdaptiveAvgPool2d((None, 2)), [(2, 3, 5, 6)]),
    ("adaptive_unbatched", lambda nn: nn.AdaptiveAvgPool2d(2), [(3, 5, 5)]),
]


@pytest.mark.parametrize("name,make,specs", POOL, ids=[c[0] for c in POOL])
def test_pooling_layers_match_torch(name, make, specs):
    check_layer(make, specs)


def test_max_pool_return_indices():
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 7))
    out, idx = nn.MaxPool2d(3, 2, padding=1, return_indices=True)(lg.tensor(x))
    tout, tidx = torch.nn.MaxPool2d(3, 2, padding=1, return_indices=True)(torch.tensor(x))
    assert_close(out, tout)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())


# ----------------------------------------------------------------------------- normalization

NORM = [
    ("ln", lambda nn: nn.LayerNorm(8), [(3, 5, 8)]),
    ("ln_2d_no_affine", lambda nn: nn.LayerNorm((5, 8), elementwise_affine=False),
     [(3, 5, 8)]),
    ("ln_no_bias_eps", lambda nn: nn.LayerNorm([8], eps=1e-2, bias=False), [(4, 8)]),
    ("rms", lambda nn: nn.RMSNorm(8), [(3, 5, 8)]),
    ("rms_2d_eps", lambda nn: nn.RMSNorm((5, 8), eps=1e-3), [(3, 5, 8)]),
    ("rms_no_affine", lambda nn: nn.RMSNorm(8, elementwise_affine=False), [(2, 8)]),
]


@pytest.mark.parametrize("name,make,specs", NORM, ids=[c[0] for c in NORM])
def test_norm_layers_match_torch(name, make, specs):
    check_layer(make, specs)


BATCHNORM = [
    ("bn1d_2d", lambda nn: nn.BatchNorm1d(4), [(6, 4)]),
    ("bn1d_3d", lambda nn: nn.BatchNorm1d(4, momentum=0.3), [(6, 4, 5)]),
    ("bn2d", lambda nn: nn.BatchNorm2d(4), [(3, 4, 5, 5)]),
    ("bn2d_cumulative", lambda nn: nn.BatchNorm2d(4, momentum=None, eps=1e-3),
     [(3, 4, 2, 3)]),
    ("bn2d_no_affine", lambda nn: nn.BatchNorm2d(4, affine=False), [(3, 4, 2, 3)]),
    ("bn2d_no_bias", lambda nn: nn.BatchNorm2d(4, bias=False), [(3, 4, 2, 3)]),
    ("bn1d_untracked", lambda nn: nn.BatchNorm1d(4, track_running_stats=False), [(5, 4)]),
]


@pytest.mark.parametrize("name,make,specs", BATCHNORM, ids=[c[0] for c in BATCHNORM])
def test_batchnorm_train_then_eval_matches_torch(name, make, specs):
    ours, theirs = check_layer(make, specs, train=True, steps=3)
    if ours.track_running_stats:
        assert ours.num_batches_tracked.item() == 3
    # eval: running statistics (or batch statistics when untracked), same weights
    rng = np.random.default_rng(5)
    x = rng.standard_normal(specs[0])
    ours.eval(), theirs.eval()
    xl, xt = lg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, tout = ours(xl), theirs(xt)
    assert_close(out, tout)
    out.sum().backward(), tout.sum().backward()
    assert_close(xl.grad, xt.grad)
    tsd = theirs.state_dict()
    for key, value in ours.state_dict().items():  # eval leaves the statistics alone
        assert_close(value, tsd[key])


def test_batchnorm_buffers_and_state_dict_keys():
    bn = nn.BatchNorm2d(3)
    assert list(bn.state_dict()) == list(torch.nn.BatchNorm2d(3).state_dict())
    assert bn.running_mean.tolist() == [0.0] * 3 and bn.running_var.tolist() == [1.0] * 3
    assert bn.num_batches_tracked.dtype is lg.int64
    assert not bn.running_mean.requires_grad
    untracked = nn.BatchNorm1d(3, track_running_stats=False)
    assert list(untracked.state_dict()) == ["weight", "bias"]
    bn(lg.randn(2, 3, 2, 2))
    bn.reset_running_stats()
    assert bn.num_batches_tracked.item() == 0 and bn.running_var.tolist() == [1.0] * 3


# ----------------------------------------------------------------------------- dropout


def test_dropout_train_mask_statistics():
    p = 0.3
    drop = nn.Dropout(p)
    x = lg.ones(200, 500, requires_grad=True)
    out = drop(x)
    values = out.detach().numpy()
    zero_frac = (values == 0).mean()
    assert abs(zero_frac - p) < 5 * math.sqrt(p * (1 - p) / values.size)
    np.testing.assert_allclose(values[values != 0], 1 / (1 - p), rtol=1e-6)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), values)  # grad is the scaled mask
    assert (drop(x).detach().numpy() != values).any()  # a fresh mask per call
    assert nn.Dropout(0.0)(x).tolist() == x.tolist()
    assert nn.Dropout(1.0)(x).detach().abs().sum().item() == 0


def test_dropout_eval_is_identity_and_arguments():
    x = lg.randn(4, 5)
    assert nn.Dropout(0.9).eval()(x).tolist() == x.tolist()
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but "
                                         "got 1.5"):
        nn.Dropout(1.5)
    assert repr(nn.Dropout(0.1)) == repr(torch.nn.Dropout(0.1))


# ----------------------------------------------------------------------------- losses

N, C = 6, 5
TARGET = np.array([0, 3, 4, 1, 3, 2])
TARGET_IGNORE = np.array([0, -100, 4, 1, 7, 2])
TARGET_2D = np.array([[[0, 1], [2, 3], [4, 0]], [[1, 1], [3, 2], [0, 4]]])
CLS_WEIGHT = np.array([0.5, 1.0, 2.0, 0.3, 1.5])

LOSSES = [
    ("ce", lambda nn, lib: nn.CrossEntropyLoss(), [(N, C), TARGET]),
    ("ce_sum", lambda nn, lib: nn.CrossEntropyLoss(reduction="sum"), [(N, C), TARGET]),
    ("ce_none", lambda nn, lib: nn.CrossEntropyLoss(reduction="none"), [(N, C), TARGET]),
    ("ce_weight", lambda nn, lib: nn.CrossEntropyLoss(weight=lib.tensor(CLS_WEIGHT)),
     [(N, C), TARGET]),
    ("ce_ignore", lambda nn, lib: nn.CrossEntropyLoss(ignore_index=7),
     [(N, C), np.where(TARGET_IGNORE == -100, 7, TARGET_IGNORE)]),
    ("ce_ignore_default", lambda nn, lib: nn.CrossEntropyLoss(),
     [(N, C), np.where(TARGET_IGNORE == 7, 0, TARGET_IGNORE)]),
    ("ce_smoothing", lambda nn, lib: nn.CrossEntropyLoss(label_smoothing=0.2),
     [(N, C), TARGET]),
    ("ce_all_options", lambda nn, lib: nn.CrossEntropyLoss(
        weight=lib.tensor(CLS_WEIGHT), ignore_index=1, label_smoothing=0.1), [(N, C), TARGET]),
    ("ce_kdim", lambda nn, lib: nn.CrossEntropyLoss(), [(2, C, 3, 2), TARGET_2D]),
    ("ce_probs", lambda nn, lib: nn.CrossEntropyLoss(label_smoothing=0.1),
     [(N, C), np.random.default_rng(3).dirichlet(np.ones(C), N)]),
    ("ce_legacy_flags", lambda nn, lib: nn.CrossEntropyLoss(size_average=False),
     [(N, C), TARGET]),
    ("nll", lambda nn, lib: nn.NLLLoss(), [(N, C), TARGET]),
    ("nll_weight_ignore", lambda nn, lib: nn.NLLLoss(weight=lib.tensor(CLS_WEIGHT),
                                                     ignore_index=3), [(N, C), TARGET]),
    ("nll_none", lambda nn, lib: nn.NLLLoss(reduction="none"), [(N, C), TARGET]),
    ("mse", lambda nn, lib: nn.MSELoss(), [(4, 3), (4, 3)]),
    ("mse_sum", lambda nn, lib: nn.MSELoss(reduction="sum"), [(4, 3), (4, 3)]),
    ("mse_none", lambda nn, lib: nn.MSELoss(reduce=False), [(4, 3), (4, 3)]),
    ("l1", lambda nn, lib: nn.L1Loss(), [(4, 3), (4, 3)]),
    ("smooth_l1", lambda nn, lib: nn.SmoothL1Loss(beta=0.5), [(4, 3), (4, 3)]),
    ("huber", lambda nn, lib: nn.HuberLoss(delta=0.7, reduction="sum"), [(4, 3), (4, 3)]),
    ("bce_logits", lambda nn, lib: nn.BCEWithLogitsLoss(),
     [(4, 3), np.random.default_rng(4).random((4, 3))]),
    ("bce_logits_weights", lambda nn, lib: nn.BCEWithLogitsLoss(
        weight=lib.tensor(np.array([1.0, 0.5, 2.0])),
        pos_weight=lib.tensor(np.array([3.0, 1.0, 0.2])), reduction="sum"),
     [(4, 3), np.random.default_rng(4).random((4, 3))]),
    ("kl_div_batchmean", lambda nn, lib: nn.KLDivLoss(reduction="batchmean"),
     [(4, 3), np.random.default_rng(5).dirichlet(np.ones(3), 4)]),
    ("kl_div_log_target", lambda nn, lib: nn.KLDivLoss(reduction="sum", log_target=True),
     [(4, 3), (4, 3)]),
]


@pytest.mark.parametrize("name,make,specs", LOSSES, ids=[c[0] for c in LOSSES])
def test_losses_match_torch(name, make, specs):
    rng = np.random.default_rng(0)
    arrays = _inputs(specs, rng)
    if name.startswith("nll"):
        arrays[0] = np.log(np.exp(arrays[0]) / np.exp(arrays[0]).sum(1, keepdims=True))
    ours, theirs = make(nn, lg), make(torch.nn, torch)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())  # class weights are buffers
    x, tx = lg.tensor(arrays[0], requires_grad=True), torch.tensor(arrays[0],
                                                                   requires_grad=True)
    target = lg.tensor(arrays[1])
    out, tout = ours(x, target), theirs(tx, torch.tensor(arrays[1]))
    assert_close(out, tout)
    w = rng.standard_normal(out.shape)
    (out * lg.tensor(w)).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    assert_close(x.grad, tx.grad)


def test_bce_loss_matches_torch():
    rng = np.random.default_rng(0)
    p, t = rng.uniform(0.05, 0.95, (4, 3)), rng.random((4, 3))
    x, tx = lg.tensor(p, requires_grad=True), torch.tensor(p, requires_grad=True)
    out = nn.BCELoss(weight=lg.tensor(np.array([1.0, 2.0, 0.5])))(x, lg.tensor(t))
    tout = torch.nn.BCELoss(weight=torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64))(
        tx, torch.tensor(t))
    assert_close(out, tout)
    out.backward(), tout.backward()
    assert_close(x.grad, tx.grad)


def test_loss_argument_errors():
    with pytest.raises(ValueError, match="'avg' is not a valid value for reduction"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        nn.CrossEntropyLoss(label_smoothing=1.5)
    assert nn.MSELoss(size_average=False).reduction == "sum"
    assert nn.MSELoss(size_average=True, reduce=False).reduction == "none"


# ----------------------------------------------------------------------------- init schemes


@pytest.mark.parametrize("make", [
    lambda nn: nn.Linear(100, 50), lambda nn: nn.Conv2d(8, 16, 3),
    lambda nn: nn.Conv2d(8, 16, (3, 5), groups=4), lambda nn: nn.Conv1d(6, 40, 7)])
def test_linear_and_conv_init_like_torch(make):
    ours, theirs = make(nn), make(torch.nn)
    assert ours.weight.shape == tuple(theirs.weight.shape)
    fan_in = math.prod(theirs.weight.shape[1:])
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)) reduces to this
    w = ours.weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    np.testing.assert_allclose(w.std(), theirs.weight.detach().numpy().std(), rtol=0.15)
    np.testing.assert_allclose(w.std(), bound / math.sqrt(3), rtol=0.15)
    b = ours.bias.detach().numpy()
    assert np.abs(b).max() <= bound and b.std() > 0.3 * bound


def test_embedding_norm_layers_init_like_torch():
    emb = nn.Embedding(400, 50, padding_idx=7)
    w = emb.weight.detach().numpy()
    assert np.all(w[7] == 0)
    np.testing.assert_allclose([w.mean(), w.std()], [0.0, 1.0], atol=0.02)
    frozen = nn.Embedding.from_pretrained(lg.eye(3), padding_idx=1)
    assert not frozen.weight.requires_grad and frozen.padding_idx == 1
    assert nn.Embedding.from_pretrained(lg.eye(3), freeze=False).weight.requires_grad
    ln = nn.LayerNorm((2, 3))
    assert ln.weight.tolist() == [[1.0] * 3] * 2 and ln.bias.tolist() == [[0.0] * 3] * 2
    assert nn.RMSNorm(4).weight.tolist() == [1.0] * 4
    bn = nn.BatchNorm1d(3)
    assert bn.weight.tolist() == [1.0] * 3 and bn.bias.tolist() == [0.0] * 3
    assert nn.Linear(3, 2, dtype=lg.float64).weight.dtype is lg.float64


# ----------------------------------------------------------------------------- reprs


def test_reprs_match_torch():
    for make in [lambda nn: nn.Linear(3, 2, bias=False),
                 lambda nn: nn.Conv2d(3, 8, 3, stride=2, padding=1, dilation=2, groups=1),
                 lambda nn: nn.Conv2d(4, 8, 3, padding="same", groups=2, bias=False,
                                      padding_mode="reflect"),
                 lambda nn: nn.Conv1d(2, 4, 5, padding="valid"),
                 lambda nn: nn.MaxPool2d((2, 3), stride=1, ceil_mode=True),
                 lambda nn: nn.AvgPool2d(3), lambda nn: nn.AdaptiveAvgPool2d((None, 3)),
                 lambda nn: nn.LayerNorm((4, 5), elementwise_affine=False),
                 lambda nn: nn.RMSNorm(4, eps=1e-6),
                 lambda nn: nn.BatchNorm1d(4, momentum=None, track_running_stats=False),
                 lambda nn: nn.Embedding(10, 3, padding_idx=-2),
                 lambda nn: nn.LeakyReLU(inplace=True), lambda nn: nn.SiLU(),
                 lambda nn: nn.ReLU(inplace=True), lambda nn: nn.GELU(),
                 lambda nn: nn.ELU(inplace=True), lambda nn: nn.Softmax(),
                 lambda nn: nn.CrossEntropyLoss(label_smoothing=0.1),
                 lambda nn: nn.Unflatten(-1, (2, 2))]:
        assert repr(make(nn)) == repr(make(torch.nn))


# ----------------------------------------------------------------------------- shape errors


def test_wrong_input_shapes_name_the_layer():
    with pytest.raises(RuntimeError, match=r"^Linear\(in_features=4, out_features=2\): "
                                           r"expected input with last dim 4, got shape "
                                           r"\(3, 5\)$"):
        nn.Linear(4, 2)(lg.ones(3, 5))
    with pytest.raises(RuntimeError, match=r"^Conv2d\(3, 8, kernel_size=\(3, 3\)\): expected "
                                           r"3 input channels, got input of shape "
                                           r"\(1, 1, 28, 28\)$"):
        nn.Conv2d(3, 8, 3)(lg.ones(1, 1, 28, 28))
    with pytest.raises(RuntimeError, match=r"Conv1d\(3, 8, kernel_size=\(3,\)\): expected 2D "
                                           r"or 3D input, got input of shape \(3,\)"):
        nn.Conv1d(3, 8, 3)(lg.ones(3))
    with pytest.raises(RuntimeError, match=r"BatchNorm2d\(4, .*\): expected 4D input, got "
                                           r"input of shape \(2, 4\)"):
        nn.BatchNorm2d(4)(lg.ones(2, 4))
    with pytest.raises(RuntimeError, match=r"BatchNorm1d\(4, .*\): expected 4 channels .* "
                                           r"got input of shape \(2, 3\)"):
        nn.BatchNorm1d(4)(lg.ones(2, 3))
    with pytest.raises(RuntimeError, match=r"LayerNorm\(\(8,\), .*\): expected input with "
                                           r"trailing dims \(8,\), got shape \(2, 7\)"):
        nn.LayerNorm(8)(lg.ones(2, 7))
    with pytest.raises(RuntimeError, match=r"RMSNorm\(\(2, 8\), .*trailing dims \(2, 8\), "
                                           r"got shape \(8,\)"):
        nn.RMSNorm((2, 8))(lg.ones(8))
    with pytest.raises(RuntimeError, match=r"MaxPool2d\(kernel_size=2, .*\): expected 3D or "
                                           r"4D input, got input of shape \(4, 4\)"):
        nn.MaxPool2d(2)(lg.ones(4, 4))
    with pytest.raises(TypeError, match=r"Embedding\(10, 3\): expected an integer tensor of "
                                        r"ids, got float32 of shape \(2,\)"):
        nn.Embedding(10, 3)(lg.ones(2))
    with pytest.raises(TypeError, match=r"ReLU\(\): expected a Tensor input, got list"):
        nn.ReLU()([1.0])
    with pytest.raises(ValueError, match="padding_idx 10 must be within num_embeddings"):
        nn.Embedding(10, 3, padding_idx=10)
