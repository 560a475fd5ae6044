"""The CPU backend's fast paths against their references: the float32 erf/GELU kernels
(cpu_gelu) against exact float64 math and PyTorch, the fused attention kernel, the
allocator setting and the automatic thread count."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import lightgrad as lg
from lightgrad import threads
from lightgrad.backends import cpu_gelu, cpu_memory
from lightgrad.backends.cpu import CPUBackend

_erf64 = np.frompyfunc(math.erf, 1, 1)
_erfc64 = np.frompyfunc(math.erfc, 1, 1)


def _points() -> np.ndarray:
    """float32 points over the whole useful range, both signs, tiny to huge, more than one
    BLOCK of them (so the block loop and its last short block run)."""
    mag = np.concatenate([np.geomspace(1e-30, 12.0, 30000), np.linspace(0.0, 12.0, 60001)])
    return np.concatenate([mag, -mag]).astype(np.float32)


def _ulps(got: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """|got - ref| in float32 ulps of ref (ref in float64)."""
    spacing = np.spacing(np.abs(ref.astype(np.float32))).astype(np.float64)
    return np.abs(got.astype(np.float64) - ref) / np.maximum(spacing, np.finfo(np.float32).tiny)


def _phi(x: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * _erfc64(-np.asarray(x) / math.sqrt(2.0)), dtype=np.float64)


def test_erf_float32_within_three_ulp():
    x = _points()
    got = cpu_gelu.erf(x)
    assert got.dtype == np.float32 and got.shape == x.shape
    assert _ulps(got, _erf64(x.astype(np.float64)).astype(np.float64)).max() <= 3


def test_gelu_float32_matches_exact_math():
    x = _points()
    xd = x.astype(np.float64)
    got = cpu_gelu.gelu(x)
    ref = xd * _phi(xd)
    # a few ulp where GELU is not tiny; the far left tail (|GELU| < 1e-6) stays within
    # 1e-5 relative error (float32's own rounding of x^2 inside exp)
    core = np.abs(xd) < 3
    assert _ulps(got[core], ref[core]).max() <= 8
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-37)


def test_gelu_backward_float32_matches_exact_math():
    x = _points()
    xd = x.astype(np.float64)
    g = np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
    got = cpu_gelu.gelu_backward(x, g)
    ref = (_phi(xd) + xd * np.exp(-xd * xd / 2) / math.sqrt(2 * math.pi)) * g
    np.testing.assert_allclose(got, ref, rtol=2e-6, atol=3e-7)


def test_gelu_float32_agrees_with_torch_forward_and_backward():
    x = np.random.default_rng(1).standard_normal((3, 70, 1000)).astype(np.float32) * 3
    g = np.random.default_rng(2).standard_normal(x.shape).astype(np.float32)
    tx = torch.from_numpy(x).requires_grad_()
    ty = torch.nn.functional.gelu(tx)
    ty.backward(torch.from_numpy(g))
    # PyTorch's float32 GELU loses up to ~1e-6 absolute left of 0 (1 + erf cancels); the
    # exact-math tests above hold ours to a few ulp
    np.testing.assert_allclose(cpu_gelu.gelu(x), ty.detach().numpy(), rtol=1e-6, atol=2e-6)
    # PyTorch's own float32 derivative is off by up to ~3e-7 * |g| (1 + erf cancels)
    np.testing.assert_allclose(cpu_gelu.gelu_backward(x, g), tx.grad.numpy(), rtol=1e-5,
                               atol=2e-6)


def test_gelu_kernels_take_strided_broadcast_and_zero_dim_inputs():
    x = np.random.default_rng(3).standard_normal((40, 30)).astype(np.float32)
    ref = x.astype(np.float64) * _phi(x.astype(np.float64))
    np.testing.assert_allclose(cpu_gelu.gelu(x.T), ref.T, rtol=1e-6, atol=1e-7)
    scalar = cpu_gelu.gelu(np.array(1.5, np.float32))
    assert scalar.shape == () and abs(float(scalar) - 1.5 * _phi(np.array(1.5))) < 1e-6
    ones = cpu_gelu.gelu_backward(x, np.float32(1.0))  # g broadcast from a scalar
    np.testing.assert_allclose(ones * 2, cpu_gelu.gelu_backward(x, np.full_like(x, 2.0)))


def test_special_values_follow_torch():
    x = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1e-45], dtype=np.float32)
    tx = torch.from_numpy(x)
    np.testing.assert_array_equal(cpu_gelu.erf(x), torch.erf(tx).numpy())
    with np.errstate(invalid="ignore"):  # -inf * Phi(-inf) = -inf * 0 (the backend is quiet)
        got = cpu_gelu.gelu(x)
    np.testing.assert_allclose(got[1:], torch.nn.functional.gelu(tx).numpy()[1:])
    assert got[0] == np.inf  # the limit (PyTorch's float32 kernel gives nan here)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_backend_gelu_and_erf_route_each_dtype(dtype):
    """float64 stays exact (math.erf); float32 and the halves use the fast kernels."""
    be = CPUBackend()
    x = np.linspace(-4, 4, 101)
    ref_erf = _erf64(x).astype(np.float64)
    ref_gelu = x * _phi(x)
    xs = lg.tensor(x).to(dtype)._data
    tol = {"float64": 1e-15, "float32": 3e-7, "float16": 2e-3, "bfloat16": 1e-2}[dtype]
    for got, ref in ((be.erf(xs), ref_erf), (be.gelu(xs), ref_gelu)):
        assert got.dtype == xs.dtype
        np.testing.assert_allclose(got.astype(np.float64), ref, rtol=tol, atol=tol)


def test_attention_kernel_matches_torch_causal_and_masked():
    be = CPUBackend()
    r = np.random.default_rng(4)
    q, k, v = (r.standard_normal((2, 3, 9, 8)).astype(np.float32) for _ in range(3))
    tq, tk, tv = map(torch.from_numpy, (q, k, v))
    out, probs = be.scaled_dot_product_attention(q, k, v, None, 8 ** -0.5, True, None)
    ref = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=True)
    np.testing.assert_allclose(out, ref.numpy(), rtol=1e-5, atol=1e-6)
    assert np.all(np.triu(probs[0, 0], 1) == 0)
    mask = r.random((9, 9)) > 0.3
    mask[:, 0] = True
    out, _ = be.scaled_dot_product_attention(q, k, v, mask, 0.5, False, None)
    ref = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, torch.from_numpy(mask),
                                                           scale=0.5)
    np.testing.assert_allclose(out, ref.numpy(), rtol=1e-5, atol=1e-6)


def test_keep_freed_memory_is_idempotent_and_reports_glibc():
    first = cpu_memory.keep_freed_memory()
    assert cpu_memory.keep_freed_memory() is first
    import sys
    if sys.platform.startswith("linux"):
        import platform
        assert first == (platform.libc_ver()[0] == "glibc")


def test_free_cores_counts_only_other_processes():
    assert threads.free_cores((0.0, 0, 0.0), (2.0, 400, 4.0), 2) == 2.0  # all ours
    assert threads.free_cores((0.0, 0, 0.0), (1.0, 200, 0.0), 2) == 0.0  # all theirs
    assert threads.free_cores((0.0, 0, 0.0), (1.0, 150, 1.0), 4) == 3.5
    assert threads.free_cores((5.0, 0, 0.0), (5.0, 10, 0.0), 3) == 3.0  # no time passed


def test_set_num_threads_fixes_the_count_and_none_restores_automatic():
    before = threads.get_num_threads()
    try:
        lg.set_num_threads(1)
        assert not threads._Auto.on and lg.get_num_threads() == 1
        threads.adapt()  # fixed: automatic policy does nothing
        assert lg.get_num_threads() == 1
        lg.set_num_threads(None)
        assert threads._Auto.on
        threads.adapt()  # decides now: between 1 and the cores we may use
        assert 1 <= lg.get_num_threads() <= (threads._cores())
        for bad in (0, -2, 1.5, True):
            with pytest.raises(ValueError, match="set_num_threads"):
                lg.set_num_threads(bad)
    finally:
        lg.set_num_threads(before)


@pytest.mark.parametrize("n_axes", [1, 2])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_norm_kernel_matches_torch(n_axes, affine, dtype):
    r = np.random.default_rng(5)
    x = r.standard_normal((3, 7, 5, 6)).astype(dtype).transpose(0, 2, 1, 3)  # strided
    shape = x.shape[x.ndim - n_axes:]
    w = r.standard_normal(shape).astype(dtype) if affine else None
    b = r.standard_normal(shape).astype(dtype) if affine else None
    g = r.standard_normal(x.shape).astype(dtype)
    be = CPUBackend()
    y, mean, rstd = be.layer_norm(x, w, b, n_axes, 1e-5)
    gx, gw, gb = be.layer_norm_backward(g, x, w, mean, rstd, n_axes)
    tx = torch.tensor(x, requires_grad=True)
    tw, tb = ((torch.tensor(a, requires_grad=True) if a is not None else None) for a in (w, b))
    ty = torch.nn.functional.layer_norm(tx, shape, tw, tb, 1e-5)
    ty.backward(torch.tensor(g))
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    assert y.dtype == dtype and mean.shape == x.shape[:4 - n_axes] + (1,) * n_axes
    np.testing.assert_allclose(y, ty.detach().numpy(), **tol)
    np.testing.assert_allclose(gx, tx.grad.numpy(), **tol)
    if affine:
        np.testing.assert_allclose(gw, tw.grad.numpy(), **tol)
        np.testing.assert_allclose(gb, tb.grad.numpy(), **tol)
    else:
        assert gw is None
        np.testing.assert_allclose(gb, g.reshape((-1,) + shape).sum(0), **tol)


def test_index_add_fast_path_matches_add_at_and_raises_out_of_range():
    be = CPUBackend()
    r = np.random.default_rng(6)
    x = r.standard_normal((9, 4)).astype(np.float32)
    src = r.standard_normal((50, 4)).astype(np.float32)
    index = r.integers(-9, 9, 50)  # negative indices count from the end, as in add.at
    ref = x.copy()
    np.add.at(ref, index, src)
    np.testing.assert_allclose(be.index_add(x, 0, index, src), ref, rtol=1e-6, atol=1e-6)
    for bad in (9, -10):
        with pytest.raises(IndexError):
            be.index_add(x, 0, np.where(np.arange(50) == 7, bad, index), src)
