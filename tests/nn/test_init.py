"""nn.init against torch.nn.init: gains and fans exactly equal, every initialiser's bounds
and sample statistics against PyTorch's formulas (and torch's own samples), in place under
no_grad; trunc_normal_ against the truncated normal's exact moments."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import lightgrad as lg
from lightgrad import nn
from lightgrad.nn import init

torch = pytest.importorskip("torch")
tinit = torch.nn.init

SHAPES = [(3, 5), (64, 32), (8, 3, 5, 5), (4, 6, 7), (2, 3, 2, 2, 2), (0, 4)]


@pytest.mark.parametrize("name,param", [
    ("linear", None), ("conv1d", None), ("conv2d", None), ("conv3d", None),
    ("conv_transpose2d", None), ("sigmoid", None), ("tanh", None), ("relu", None),
    ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", 3), ("selu", None)])
def test_calculate_gain_equals_torch(name, param):
    assert init.calculate_gain(name, param) == tinit.calculate_gain(name, param)


def test_calculate_gain_errors():
    with pytest.raises(ValueError, match="Unsupported nonlinearity gelu"):
        init.calculate_gain("gelu")
    with pytest.raises(ValueError, match="negative_slope True not a valid number"):
        init.calculate_gain("leaky_relu", True)


@pytest.mark.parametrize("shape", SHAPES)
def test_fans_equal_torch(shape):
    ours = init._calculate_fan_in_and_fan_out(lg.empty(*shape))
    assert ours == tinit._calculate_fan_in_and_fan_out(torch.empty(*shape))
    for mode in ("fan_in", "fan_out", "FAN_IN"):
        assert init._calculate_correct_fan(lg.empty(*shape), mode) == \
            tinit._calculate_correct_fan(torch.empty(*shape), mode)


def test_fan_errors():
    with pytest.raises(ValueError, match="fewer than 2 dimensions.*shape \\(5,\\)"):
        init._calculate_fan_in_and_fan_out(lg.empty(5))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_uniform_(lg.empty(3, 3), mode="fan_avg")


def _stats(t) -> tuple[float, float, float]:
    arr = (t.detach().numpy() if isinstance(t, lg.Tensor) else t.numpy()).astype(np.float64)
    return arr.mean(), arr.std(), np.abs(arr).max()


SHAPE = (256, 64, 3, 3)  # fan_in 576, fan_out 2304; 147456 samples
FAN_IN, FAN_OUT = 64 * 9, 256 * 9


def _uniform_bound(gain: float, fan: int) -> float:
    return gain * math.sqrt(3.0 / fan)


# (name, our call, torch call, expected std, uniform bound or None)
CASES = [
    ("uniform", lambda t: init.uniform_(t, -0.3, 0.7), lambda t: tinit.uniform_(t, -0.3, 0.7),
     1.0 / math.sqrt(12), None),
    ("normal", lambda t: init.normal_(t, 0.5, 0.02), lambda t: tinit.normal_(t, 0.5, 0.02),
     0.02, None),
    ("xavier_uniform", lambda t: init.xavier_uniform_(t, gain=2.0),
     lambda t: tinit.xavier_uniform_(t, gain=2.0), 2.0 * math.sqrt(2.0 / (FAN_IN + FAN_OUT)),
     2.0 * math.sqrt(6.0 / (FAN_IN + FAN_OUT))),
    ("xavier_normal", lambda t: init.xavier_normal_(t), lambda t: tinit.xavier_normal_(t),
     math.sqrt(2.0 / (FAN_IN + FAN_OUT)), None),
    ("kaiming_uniform_default", lambda t: init.kaiming_uniform_(t),
     lambda t: tinit.kaiming_uniform_(t), math.sqrt(2.0 / FAN_IN),  # a=0: slope 0
     _uniform_bound(math.sqrt(2.0), FAN_IN)),
    ("kaiming_uniform_sqrt5", lambda t: init.kaiming_uniform_(t, a=math.sqrt(5)),
     lambda t: tinit.kaiming_uniform_(t, a=math.sqrt(5)), 1 / math.sqrt(3 * FAN_IN),
     1 / math.sqrt(FAN_IN)),
    ("kaiming_uniform_fan_out_relu",
     lambda t: init.kaiming_uniform_(t, mode="fan_out", nonlinearity="relu"),
     lambda t: tinit.kaiming_uniform_(t, mode="fan_out", nonlinearity="relu"),
     math.sqrt(2.0 / FAN_OUT), _uniform_bound(math.sqrt(2.0), FAN_OUT)),
    ("kaiming_normal_relu", lambda t: init.kaiming_normal_(t, nonlinearity="relu"),
     lambda t: tinit.kaiming_normal_(t, nonlinearity="relu"), math.sqrt(2.0 / FAN_IN), None),
    ("kaiming_normal_leaky_fan_out",
     lambda t: init.kaiming_normal_(t, a=0.2, mode="fan_out"),
     lambda t: tinit.kaiming_normal_(t, a=0.2, mode="fan_out"),
     math.sqrt(2.0 / 1.04) / math.sqrt(FAN_OUT), None),
]


@pytest.mark.parametrize("name,ours,theirs,std,bound", CASES, ids=[c[0] for c in CASES])
def test_init_statistics_match_formula_and_torch(name, ours, theirs, std, bound):
    t = lg.empty(*SHAPE)
    assert ours(t) is t
    tt = theirs(torch.empty(*SHAPE))
    mean, got_std, peak = _stats(t)
    t_mean, t_std, t_peak = _stats(tt)
    np.testing.assert_allclose(got_std, std, rtol=0.02)
    np.testing.assert_allclose(got_std, t_std, rtol=0.03)
    want_mean = {"uniform": 0.2, "normal": 0.5}.get(name, 0.0)
    tol = 6 * std / math.sqrt(t.numel())
    assert abs(mean - want_mean) < tol and abs(t_mean - want_mean) < tol
    if bound is not None:
        assert peak <= bound * (1 + 1e-6)
        assert peak >= bound * 0.999  # the bound is reached: the interval is right
        assert t_peak <= bound * (1 + 1e-6)


def test_uniform_interval_and_constants():
    t = init.uniform_(lg.empty(20000), -0.3, 0.7).numpy()
    assert t.min() >= -0.3 and t.max() < 0.7 and t.min() < -0.29 and t.max() > 0.69
    np.testing.assert_allclose(t.mean(), 0.2, atol=0.01)
    assert init.zeros_(lg.empty(3)).tolist() == [0.0] * 3
    assert init.ones_(lg.empty(2, 2)).tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert init.constant_(lg.empty(2), 0.25).tolist() == [0.25, 0.25]
    assert init.constant_(lg.empty(2, dtype=lg.float16), 3).dtype is lg.float16


def test_in_place_on_parameters_without_graph():
    p = nn.Parameter(lg.zeros(16, 8))
    for fn in (init.kaiming_uniform_, init.kaiming_normal_, init.xavier_uniform_,
               init.xavier_normal_, init.normal_, init.uniform_, init.trunc_normal_,
               init.zeros_, init.ones_, lambda t: init.constant_(t, 2.0)):
        data = p._data
        assert fn(p) is p
        assert p.grad_fn is None and p.requires_grad and p.is_leaf and p._data is data
    (p * 2).sum().backward()  # still a usable leaf
    assert p.grad.shape == (16, 8)


def test_zero_element_tensors_are_a_no_op_with_warning():
    with pytest.warns(UserWarning, match="zero-element"):
        assert init.kaiming_uniform_(lg.empty(0, 3)).shape == (0, 3)
    with pytest.warns(UserWarning, match="zero-element"):
        init.kaiming_normal_(lg.empty(4, 0))


def _trunc_moments(mean: float, std: float, a: float, b: float) -> tuple[float, float]:
    """Mean and std of N(mean, std**2) truncated to [a, b] (closed form)."""
    alpha, beta = (a - mean) / std, (b - mean) / std
    pdf = lambda x: math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))  # noqa: E731
    z = cdf(beta) - cdf(alpha)
    m = (pdf(alpha) - pdf(beta)) / z
    var = 1 + (alpha * pdf(alpha) - beta * pdf(beta)) / z - m * m
    return mean + std * m, std * math.sqrt(var)


@pytest.mark.filterwarnings("ignore:mean is more than 2 std")
@pytest.mark.parametrize("mean,std,a,b", [
    (0.0, 1.0, -2.0, 2.0),      # the default: normals redrawn outside [a, b]
    (0.0, 0.02, -0.04, 0.04),   # +-2 std, typical for transformers
    (0.0, 1.0, 0.5, 3.0),       # one-sided window, 30% of the mass: uniform proposals
    (1.0, 2.0, 0.5, 1.5),       # a narrow window around the mean: uniform proposals
    (0.0, 1.0, 2.5, 4.0),       # far in the tail
])
def test_trunc_normal_bounds_and_moments(mean, std, a, b):
    t = init.trunc_normal_(lg.empty(200, 200), mean, std, a, b)
    arr = t.numpy().astype(np.float64)
    tt = tinit.trunc_normal_(torch.empty(200, 200), mean, std, a, b).numpy()
    want_mean, want_std = _trunc_moments(mean, std, a, b)
    assert arr.min() >= a and arr.max() <= b
    tol = 6 * want_std / math.sqrt(arr.size)
    assert abs(arr.mean() - want_mean) < tol and abs(tt.mean() - want_mean) < tol
    np.testing.assert_allclose(arr.std(), want_std, rtol=0.02)
    np.testing.assert_allclose(arr.std(), tt.std(), rtol=0.03)


def test_trunc_normal_warns_when_mean_is_far_from_window():
    with pytest.warns(UserWarning, match="more than 2 std"):
        init.trunc_normal_(lg.empty(10), mean=10.0, std=1.0, a=-1.0, b=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        init.trunc_normal_(lg.empty(10))


def test_trunc_normal_half_precision():
    t = init.trunc_normal_(lg.empty(1000, dtype=lg.bfloat16), std=0.02, a=-0.04, b=0.04)
    assert t.dtype is lg.bfloat16
    bound = lg.tensor(0.04).bfloat16().item()  # 0.04 rounded to bfloat16
    assert float(t.float().abs().amax().item()) <= bound


def test_seeded_init_is_reproducible():
    lg.manual_seed(3)
    a = init.kaiming_uniform_(lg.empty(4, 4)).tolist()
    lg.manual_seed(3)
    assert init.kaiming_uniform_(lg.empty(4, 4)).tolist() == a
