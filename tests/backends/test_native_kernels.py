"""The C kernels (``backends/cpu_native.py``) against their NumPy twins and exact math:
GELU and erf, LayerNorm/RMSNorm, AdamW, softmax, attention's softmax; odd and empty shapes,
strided inputs, NaN and infinity; and the NumPy fallback when the kernels are off."""
from __future__ import annotations

import contextlib
import importlib
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from lightgrad.backends import cpu_gelu, cpu_native, cpu_norm, native

cpu = importlib.import_module("lightgrad.backends.cpu")  # the module, not the Device
pytestmark = [
    pytest.mark.skipif(native.library() is None,
                       reason="native CPU kernels unavailable on this machine"),
    pytest.mark.filterwarnings("ignore:Mean of empty slice"),  # the twins on empty rows
]
FLOATS = [np.float32, np.float64]
SHAPES = [(0,), (1,), (7,), (3, 33), (2, 5, 129)]
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-30, 40.0, -40.0]


@contextlib.contextmanager
def numpy_twins():
    """The CPU backend as with ``LIGHTGRAD_NATIVE=0``: every kernel falls back to NumPy."""
    saved = native._state.get("lib")
    native._state["lib"] = None
    cpu_native._kernels.clear()
    try:
        yield
    finally:
        native._state["lib"] = saved
        cpu_native._kernels.clear()


def backend():
    return cpu.CPUBackend()


def both(fn):
    """``fn()`` with the C kernels, then with the NumPy twins."""
    fast = fn()
    with numpy_twins():
        slow = fn()
    return fast, slow


def random(shape, dtype, seed=0, scale=3.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def close(a, b, dtype, rtol32=1e-5, atol32=1e-6):
    rtol, atol = (rtol32, atol32) if dtype == np.float32 else (1e-12, 1e-14)
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)


def ulps(ours, exact):
    """Error in float32 ulps of ``exact`` (float64), where exact is a normal float32."""
    spacing = np.spacing(np.abs(exact.astype(np.float32))).astype(np.float64)
    keep = np.abs(exact) > 1e-30
    return np.abs(ours.astype(np.float64) - exact)[keep] / spacing[keep]


_erfc = np.frompyfunc(math.erfc, 1, 1)
_erf = np.frompyfunc(math.erf, 1, 1)


def exact_gelu(x):
    """float64 GELU and its derivative from math.erfc (Phi accurate in the left tail)."""
    x = x.astype(np.float64)
    cdf = 0.5 * _erfc(-x / math.sqrt(2)).astype(np.float64)
    return x * cdf, cdf + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


# --- GELU and erf

def test_float32_gelu_and_erf_accurate_to_a_few_ulp_over_a_dense_range():
    x = np.linspace(-9, 9, 400_001, dtype=np.float32)
    y, d = cpu_native.gelu_and_grad(x)
    gelu, grad = exact_gelu(x)
    assert ulps(y, gelu).max() <= 8 and ulps(cpu_native.gelu(x), gelu).max() <= 8
    # the derivative crosses zero near x = -0.75 (cancellation): absolute error there
    np.testing.assert_allclose(d, grad, rtol=4e-7, atol=2e-7)
    z = np.linspace(-6, 6, 400_001, dtype=np.float32)
    assert ulps(cpu_native.erf(z), _erf(z.astype(np.float64)).astype(np.float64)).max() <= 4


def test_float32_gelu_tails_and_tanh_form():
    x = np.linspace(-40, 40, 100_001, dtype=np.float32)
    gelu, _ = exact_gelu(x)
    np.testing.assert_allclose(cpu_native.gelu(x), gelu, rtol=5e-6, atol=1e-40)
    xd = x.astype(np.float64)
    tanh = 0.5 * xd * (1 + np.tanh(math.sqrt(2 / math.pi) * (xd + 0.044715 * xd ** 3)))
    np.testing.assert_allclose(cpu_native.gelu_tanh(x), tanh, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", SHAPES)
def test_gelu_kernels_match_numpy_twins(dtype, shape):
    be, x, g = backend(), random(shape, dtype), random(shape, dtype, seed=1)
    for fast, slow in (both(lambda: be.gelu(x)), both(lambda: be.gelu_backward(x, g)),
                       *zip(*both(lambda: be.gelu_and_grad(x)))):
        close(fast, slow, dtype)
    if dtype == np.float32:
        close(*both(lambda: be.erf(x / 3)), dtype)
        close(*both(lambda: be.gelu_tanh(x)), dtype)


@pytest.mark.parametrize("dtype", FLOATS)
def test_gelu_special_values_and_strided_inputs(dtype):
    be = backend()
    x = np.array(SPECIAL, dtype)
    for fast, slow in (both(lambda: be.gelu(x)), both(lambda: be.gelu_and_grad(x)[1]),
                       both(lambda: be.gelu_backward(x, np.ones_like(x)))):
        np.testing.assert_array_equal(np.isnan(fast), np.isnan(slow))
        close(fast, slow, dtype)
    m = random((6, 9), dtype)
    strided = m.T[::2]  # neither C- nor F-contiguous
    close(be.gelu(strided), be.gelu(np.ascontiguousarray(strided)), dtype)
    close(be.gelu_backward(strided, np.float32(2.0).astype(dtype)),
          2 * be.gelu_backward(strided, np.ones_like(strided)), dtype)


def test_gelu_kernel_is_the_one_running():
    x = random((5,), np.float32)
    assert cpu_native.gelu(x) is not None
    assert cpu_native.gelu(x.astype(np.float16)) is None  # halves: NumPy in float32


# --- LayerNorm and RMSNorm

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape,n_axes", [((1, 1), 1), ((5, 33), 1), ((2, 3, 7, 5), 2),
                                          ((4, 1, 128), 1), ((3, 0), 1), ((1, 4), 2)])
@pytest.mark.parametrize("affine", ["both", "weight", "bias", "none"])
def test_layer_norm_matches_numpy_twin(dtype, shape, n_axes, affine):
    be, x, g = backend(), random(shape, dtype) + 2, random(shape, dtype, seed=1)
    norm = shape[len(shape) - n_axes:]
    w = random(norm, dtype, seed=2) if affine in ("both", "weight") else None
    b = random(norm, dtype, seed=3) if affine in ("both", "bias") else None
    (y, mean, rstd), (y0, mean0, rstd0) = both(lambda: be.layer_norm(x, w, b, n_axes, 1e-5))
    for fast, slow in ((y, y0), (mean, mean0), (rstd, rstd0)):
        close(fast, slow, dtype, rtol32=2e-5, atol32=2e-5)
    fast, slow = both(lambda: be.layer_norm_backward(g, x, w, mean0, rstd0, n_axes))
    for a, b_ in zip(fast, slow):
        assert (a is None) == (b_ is None)
        if a is not None:
            close(a, b_, dtype, rtol32=1e-4, atol32=1e-4)
    if x.size:  # the twin is BLAS (cpu_norm), the C kernel the one the backend used
        assert cpu_native.layer_norm(x, w, b, n_axes, 1e-5) is not None
        close(cpu_norm.layer_norm(x, w, b, n_axes, 1e-5)[0], y, dtype, 2e-5, 2e-5)


@pytest.mark.parametrize("dtype", FLOATS)
def test_layer_norm_nan_row_and_strided_input(dtype):
    be = backend()
    x = random((4, 9), dtype)
    x[1, 3] = np.nan
    (y, _, _), (y0, _, _) = both(lambda: be.layer_norm(x, None, None, 1, 1e-5))
    assert np.isnan(y[1]).all() and not np.isnan(y[[0, 2, 3]]).any()
    close(y, y0, dtype, 2e-5, 2e-5)
    t = random((9, 4), dtype).T
    close(be.layer_norm(t, None, None, 1, 1e-5)[0],
          be.layer_norm(np.ascontiguousarray(t), None, None, 1, 1e-5)[0], dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape,n_axes", [((1, 1), 1), ((5, 33), 1), ((2, 3, 7, 5), 2),
                                          ((3, 0), 1)])
@pytest.mark.parametrize("with_weight", [True, False])
def test_rms_norm_matches_numpy_twin_and_formula(dtype, shape, n_axes, with_weight):
    be, x = backend(), random(shape, dtype)
    w = random(shape[len(shape) - n_axes:], dtype, seed=2) if with_weight else None
    (y, rstd), (y0, rstd0) = both(lambda: be.rms_norm(x, w, n_axes, 1e-6))
    close(y, y0, dtype, 2e-5, 2e-5)
    close(rstd, rstd0, dtype, 2e-5, 2e-5)
    axes = tuple(range(x.ndim - n_axes, x.ndim))
    x64 = x.astype(np.float64)
    with np.errstate(invalid="ignore"):  # the mean of an empty row
        want = x64 / np.sqrt(np.mean(x64 * x64, axis=axes, keepdims=True) + 1e-6)
    np.testing.assert_allclose(y, want * (1 if w is None else w), rtol=1e-4, atol=1e-5)


# --- AdamW

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("size", [0, 1, 37, 1000])
@pytest.mark.parametrize("decay", [0.0, 0.1])
def test_adamw_matches_numpy_twin(dtype, size, decay):
    be = backend()

    def run():
        p, g = random(size, dtype), random(size, dtype, seed=1)
        m, v = random(size, dtype, seed=2), np.abs(random(size, dtype, seed=3))
        for step in (1, 2, 7):
            be.adamw_step(p, g, m, v, 1e-2, 0.9, 0.99, 1e-8, decay, step)
        return p, m, v

    for fast, slow in zip(*both(run)):
        close(fast, slow, dtype, rtol32=1e-6, atol32=1e-7)


def test_adamw_strided_state_falls_back_and_nan_propagates():
    be = backend()
    p = random((4, 6), np.float32).T  # a strided parameter: updated in place by NumPy
    g, m, v = (np.zeros((6, 4), np.float32) for _ in range(3))
    g[0, 0] = np.nan
    assert not cpu_native.adamw_step(p, g, m, v, 1e-2, 0.9, 0.99, 1e-8, 0.0, 1)
    be.adamw_step(p, g, m, v, 1e-2, 0.9, 0.99, 1e-8, 0.0, 1)
    assert np.isnan(p[0, 0]) and np.isnan(m[0, 0]) and np.isfinite(p[1:]).all()


def test_numpy_scalar_hyperparameters_are_taken():
    be = backend()

    def run(lr, eps):
        p, g = np.ones(5, np.float32), np.linspace(-1, 1, 5, dtype=np.float32)
        m, v = np.zeros(5, np.float32), np.zeros(5, np.float32)
        be.adamw_step(p, g, m, v, lr, 0.9, 0.99, 1e-8, 0.1, 1)
        return p, be.layer_norm(g.reshape(1, 5), None, None, 1, eps)[0]

    for a, b in zip(run(np.float32(0.1), np.float32(1e-5)), run(0.1, 1e-5)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


# --- softmax, log_softmax, attention

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(1,), (3, 1), (4, 7), (2, 3, 129), (0, 5), (3, 0)])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_matches_numpy_twin(dtype, shape, op):
    be, x = backend(), random(shape, dtype, scale=10)
    if not shape[-1]:  # nothing to normalise: an empty result (NumPy's max has no identity)
        assert getattr(be, op)(x, -1).shape == shape
        return
    fast, slow = both(lambda: getattr(be, op)(x, -1))
    close(fast, slow, dtype)
    if x.ndim == 2 and x.size:  # other axes and strided inputs
        close(*both(lambda: getattr(be, op)(x, 0)), dtype)
        close(getattr(be, op)(x.T, -1), getattr(be, op)(np.ascontiguousarray(x.T), -1), dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_special_values(dtype, op):
    be = backend()
    x = np.array([[0, 1, 2], [np.nan, 0, 1], [-np.inf, 0, 1], [-np.inf] * 3, [np.inf, 0, 1],
                  [1e30, -1e30, 0]], dtype)
    fast, slow = both(lambda: getattr(be, op)(x, -1))
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(slow))
    close(fast, slow, dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("length,source", [(1, 1), (5, 5), (4, 9), (9, 4)])
@pytest.mark.parametrize("causal", [True, False])
def test_attention_softmax_matches_numpy_twin(dtype, length, source, causal):
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, 3, n, 8)).astype(dtype) for n in (length, source,
                                                                         source))
    keep = (rng.random((2, 3, length, source)) > 0.3).astype(dtype)
    for drop in (None, keep):
        out, probs = cpu._attention(q, k, v, None, 0.3, causal, drop)
        out0, probs0 = cpu._attention(q, k, v, None, 0.3, causal, drop, native=False)
        close(probs, probs0, dtype)
        close(out, out0, dtype)


def test_attention_softmax_special_rows():
    scores = np.array([[[0, 1, 2], [np.nan, 0, 1], [-np.inf] * 3, [np.inf, 0, 1]]],
                      np.float32)
    mine = scores.copy()
    assert cpu_native.attention_softmax_(mine, False)
    peak = np.max(scores, axis=-1, keepdims=True)
    peak[~np.isfinite(peak)] = 0
    with np.errstate(invalid="ignore"):
        e = np.exp(scores - peak)
        total = e.sum(axis=-1, keepdims=True)
        total[total == 0] = 1
        want = e / total
    np.testing.assert_allclose(mine, want, rtol=1e-6)  # NaN rows, an all-zero row
    assert np.isnan(mine[0, 1]).all() and (mine[0, 2] == 0).all()


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("rows,cols", [(1, 1), (5, 3), (33, 65), (0, 4)])
@pytest.mark.parametrize("per_row_scale", [True, False])
def test_cross_entropy_matches_numpy_twin(dtype, rows, cols, per_row_scale):
    be, rng = backend(), np.random.default_rng(0)
    x = random((rows, cols), dtype, scale=4)
    target = rng.integers(0, cols, rows)
    target[::3] = -100  # ignored rows
    if rows > 1:
        x[1, 0] = np.nan  # a row of NaN (counted) next to finite ones
    fast, slow = both(lambda: be.cross_entropy(x, target, None, -100, 0.0))
    for a, b in zip(fast, slow):
        close(a, b, dtype)
    assert cpu_native.cross_entropy(x, target, None, -100, 0.0) is not None
    scale = random((rows,) if per_row_scale else (), dtype, seed=5)
    close(*both(lambda: be.cross_entropy_backward(slow[1], target, None, scale, -100, 0.0)),
          dtype)
    # weights and smoothing stay with NumPy
    assert cpu_native.cross_entropy(x, target, np.ones(cols, dtype), -100, 0.0) is None
    assert cpu_native.cross_entropy(x, target, None, -100, 0.1) is None


# --- the NumPy fallback

SCRIPT = """
import numpy as np
import lightgrad as lg
from lightgrad.backends import native
from lightgrad.nn import functional as F
assert native.library() is None
x = lg.randn(3, 8, requires_grad=True)
w = lg.randn(8, requires_grad=True)
y = F.layer_norm(F.gelu(x), (8,), weight=w).softmax(-1).log().sum()
y.backward()
opt = lg.optim.AdamW([x, w], lr=0.1)
opt.step()
assert np.isfinite(x.detach().numpy()).all() and np.isfinite(w.grad.numpy()).all()
print("ok")
"""


def test_lightgrad_native_0_runs_the_numpy_twins():
    env = dict(os.environ, LIGHTGRAD_NATIVE="0")
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_fallback_twins_agree_on_a_small_training_step():
    import lightgrad as lg
    from lightgrad.nn import functional as F

    def step():
        lg.manual_seed(0)
        x = lg.randn(4, 6, 16, requires_grad=True)
        w = lg.randn(16, requires_grad=True)
        h = F.layer_norm(F.gelu(x), (16,), weight=w)
        att = F.scaled_dot_product_attention(h, h, h, is_causal=True)
        loss = F.cross_entropy(att.reshape(-1, 16), lg.tensor(np.arange(24) % 16))
        loss.backward()
        opt = lg.optim.AdamW([x, w], lr=0.1)
        opt.step()
        return [loss.detach().numpy(), x.grad.numpy(), w.grad.numpy(), x.detach().numpy()]

    for fast, slow in zip(*both(step)):
        np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-5)


def test_numpy_twin_of_gelu_is_untouched_reference():
    x = np.linspace(-5, 5, 101, dtype=np.float32)
    with numpy_twins():
        assert cpu_native.gelu(x) is None
        np.testing.assert_array_equal(backend().gelu(x), cpu_gelu.gelu(x))
