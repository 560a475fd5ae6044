"""The CUDA backend's fused NN kernels beyond the parity suites (tests/nn, tests/ops): the
FlashAttention-style kernel against the unfused primitive, the multi-tensor AdamW against
the per-tensor one, and softmax layouts the functional tests don't reach (a non-last axis,
rows longer than a block). Runs on a GPU or on the emulator."""
from __future__ import annotations

import math

import numpy as np
import pytest

import lightgrad as lg
from lightgrad import optim
from lightgrad.backends import get_backend

pytestmark = pytest.mark.skipif(not lg.cuda.is_available(), reason="no cuda device")

TOL = {"float32": (2e-5, 2e-6), "float64": (1e-12, 1e-13)}


@pytest.fixture(scope="module")
def cu():
    return lg.device("cuda").backend


def _np(dtype: str) -> np.dtype:
    return np.dtype(dtype)


# --------------------------------------------------------------------- flash attention
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("shapes", [
    ((2, 37, 16), (2, 45, 16), (2, 45, 8)),           # ragged: not multiples of a tile
    ((2, 3, 5, 8), (1, 3, 70, 8), (2, 1, 70, 12)),    # broadcast batch dims, L < S
    ((40, 24), (33, 24), (33, 24)),                   # no batch, L > S
])
def test_flash_attention_matches_unfused(cu, shapes, causal, dtype):
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal(s).astype(dtype) for s in shapes)
    scale = 1.0 / math.sqrt(q.shape[-1])
    dq, dk, dv = (cu.from_numpy(a) for a in (q, k, v))
    out, lse = cu.flash_attention(dq, dk, dv, scale, causal)
    ref, probs = cu.scaled_dot_product_attention(dq, dk, dv, None, scale, causal, None)
    rtol, atol = TOL[dtype]
    assert out.shape == ref.shape and out.dtype == _np(dtype)
    np.testing.assert_allclose(cu.to_numpy(out), cu.to_numpy(ref), rtol=rtol, atol=atol)
    # both agree with the NumPy twin, and logsumexp with the scores' log-sum-exp
    cpu = get_backend("cpu")
    np.testing.assert_allclose(cu.to_numpy(out),
                               cpu.scaled_dot_product_attention(q, k, v, None, scale,
                                                                causal, None)[0],
                               rtol=rtol, atol=atol)
    scores = np.matmul(q, np.swapaxes(k, -1, -2)) * scale
    if causal:
        scores = np.where(np.tri(*scores.shape[-2:], dtype=bool), scores, -np.inf)
    peak = scores.max(-1, keepdims=True)
    expected = (peak + np.log(np.exp(scores - peak).sum(-1, keepdims=True)))[..., 0]
    assert lse.shape == expected.shape
    np.testing.assert_allclose(cu.to_numpy(lse), expected, rtol=rtol, atol=atol)


def test_flash_attention_reads_strided_heads(cu):
    """q, k, v as head-split views (B, H, L, E) of (B, L, H, E) buffers: no copies."""
    rng = np.random.default_rng(1)
    b, n, h, e = 2, 19, 3, 8
    arrays = [rng.standard_normal((b, n, h, e)).astype(np.float32) for _ in range(3)]
    views = [cu.permute(cu.from_numpy(a), (0, 2, 1, 3)) for a in arrays]
    assert not views[0].is_contiguous
    out, _ = cu.flash_attention(*views, 0.5, True)
    ref = get_backend("cpu").scaled_dot_product_attention(
        *[a.transpose(0, 2, 1, 3) for a in arrays], None, 0.5, True, None)[0]
    np.testing.assert_allclose(cu.to_numpy(out), ref, rtol=2e-5, atol=2e-6)


# ------------------------------------------------------------------------------ AdamW
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_adamw_step_multi_equals_per_tensor(cu, dtype):
    rng = np.random.default_rng(2)
    shapes = [(3, 4), (5000,), (1,), (0,), (4097,), (2, 3, 70)]   # ragged around a chunk
    host = [[rng.standard_normal(s), rng.standard_normal(s), rng.standard_normal(s),
             rng.random(s)] for s in shapes]
    one = [[cu.from_numpy(a.astype(dtype)) for a in h] for h in host]
    multi = [[cu.from_numpy(a.astype(dtype)) for a in h] for h in host]
    hyper = (0.05, 0.8, 0.95, 1e-3, 0.1)
    for step in (1, 2):
        for bufs in one:
            cu.adamw_step(*bufs, *hyper, step)
        cu.adamw_step_multi(*[[bufs[i] for bufs in multi] for i in range(4)], *hyper, step)
    for a, b in zip(one, multi):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(cu.to_numpy(x), cu.to_numpy(y))


def test_adamw_optimizer_uses_one_launch_per_group(cu, monkeypatch):
    calls = []
    original = type(cu).adamw_step_multi

    def spy(self, params, *args):
        calls.append(len(params))
        return original(self, params, *args)
    monkeypatch.setattr(type(cu), "adamw_step_multi", spy)
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(s) for s in ((3, 4), (300,), (7,))]
    ours = [lg.tensor(a, device="cuda", requires_grad=True) for a in arrays]
    ref = [lg.tensor(a, requires_grad=True) for a in arrays]
    opts = [optim.AdamW(ps, lr=0.1, weight_decay=0.1) for ps in (ours, ref)]
    for _ in range(3):
        grads = [rng.standard_normal(a.shape) for a in arrays]
        for params, opt, device in zip((ours, ref), opts, ("cuda", "cpu")):
            for p, g in zip(params, grads):
                p.grad = lg.tensor(g, device=device)
            opt.step()
    assert calls == [3, 3, 3]
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-13)


# ---------------------------------------------------------------------------- softmax
@pytest.mark.parametrize("shape,axis", [
    ((4, 6, 5), 1),        # a non-last axis with a short inner run: rows through a view
    ((3, 7, 40), 1),       # a non-last axis with a long inner run: one thread per column
    ((5, 9), 0),
    ((3, 3000), 1),        # rows longer than a block
])
@pytest.mark.parametrize("log", [False, True])
def test_softmax_layouts(cu, shape, axis, log):
    x = np.random.default_rng(4).standard_normal(shape).astype(np.float32) * 4
    op = "log_softmax" if log else "softmax"
    got = cu.to_numpy(getattr(cu, op)(cu.from_numpy(x), axis))
    shifted = x.astype(np.float64) - x.max(axis, keepdims=True)
    lse = np.log(np.exp(shifted).sum(axis, keepdims=True))
    expected = shifted - lse if log else np.exp(shifted - lse)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_softmax_of_a_transposed_view(cu):
    x = np.random.default_rng(5).standard_normal((6, 50)).astype(np.float32)
    view = cu.permute(cu.from_numpy(x), (1, 0))
    np.testing.assert_allclose(cu.to_numpy(cu.softmax(view, 1)),
                               get_backend("cpu").softmax(np.ascontiguousarray(x.T), 1),
                               rtol=1e-6, atol=1e-7)
