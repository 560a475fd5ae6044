"""The selective scan's C kernels (native/scan.c via cpu_native_scan) against the NumPy
scan they replace (cpu_scan with the C hook off): outputs, last state and every gradient,
float32 and float64, every option (D, z gate, delta bias, softplus, grouped B/C, the last
state's gradient), ragged shapes (odd dim and state, lengths across the NumPy chunk size).
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from lightgrad.backends import cpu_native_scan, cpu_scan, native

pytestmark = pytest.mark.skipif(native.library() is None, reason="C kernels not built here")

TOL = {np.float32: 1e-4, np.float64: 1e-10}
NAMES = ("du", "ddelta", "dA", "dB", "dC", "dD", "dz", "ddelta_bias")


def numpy_scan(monkeypatch, backward: bool, *args):
    """cpu_scan's own NumPy path: the C faces return None (their fallback signal)."""
    with monkeypatch.context() as m:
        m.setattr(cpu_native_scan, "selective_scan", lambda *a: None)
        m.setattr(cpu_native_scan, "selective_scan_backward", lambda *a: None)
        fn = cpu_scan.selective_scan_backward if backward else cpu_scan.selective_scan
        return fn(*args)


def make(rng, dtype, b, d, length, n, groups, D, z, bias, softplus):
    """Mamba-like inputs: A < 0, delta a small positive step (or a raw one for softplus)."""
    def rand(*shape):
        return rng.standard_normal(shape).astype(dtype)
    delta = rand(b, d, length) * 0.5 - 1.0 if softplus else \
        rng.uniform(0.01, 0.6, (b, d, length)).astype(dtype)
    bc_shape = (b, n, length) if groups == 0 else (b, groups, n, length)
    return (rand(b, d, length), delta, -np.exp(rand(d, n) * 0.5), rand(*bc_shape),
            rand(*bc_shape), rand(d) if D else None, rand(b, d, length) if z else None,
            rand(d) * 0.3 if bias else None)


def close(name, got, want, rtol):
    assert got.dtype == want.dtype and got.shape == want.shape, (name, got.shape, want.shape)
    scale = float(np.abs(want).max()) if want.size else 1.0
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=name)


# (b, d, L, N, groups: 0 = plain (b, N, L), else G), then D, z, bias, softplus, grad_last
SHAPES = [(2, 5, 37, 3, 0), (1, 6, 16, 17, 2), (3, 9, 1, 4, 3), (2, 4, 50, 16, 1),
          (1, 7, 33, 5, 7)]
OPTIONS = list(itertools.product((False, True), repeat=5))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(OPTIONS)))
def test_c_matches_numpy(monkeypatch, dtype, case):
    D, z, bias, softplus, want_last = OPTIONS[case]
    b, d, length, n, groups = SHAPES[case % len(SHAPES)]
    rng = np.random.default_rng(case)
    inputs = make(rng, dtype, b, d, length, n, groups, D, z, bias, softplus)
    rtol = TOL[dtype]

    got = cpu_native_scan.selective_scan(*inputs, softplus)
    assert got is not None
    want = numpy_scan(monkeypatch, False, *inputs, softplus)
    close("y", got[0], want[0], rtol)
    close("last", got[1], want[1], rtol)

    grad = rng.standard_normal((b, d, length)).astype(dtype)
    grad_last = rng.standard_normal((b, d, n)).astype(dtype) if want_last else None
    got = cpu_native_scan.selective_scan_backward(grad, grad_last, *inputs, softplus)
    assert got is not None
    want = numpy_scan(monkeypatch, True, grad, grad_last, *inputs, softplus)
    for name, g, w, x in zip(NAMES, got, want, inputs):
        if x is None:
            assert g is None and w is None, name
        else:
            close(name, g, w, rtol)


def test_hook_runs_c_and_half_inputs_compute_in_float32(monkeypatch):
    """cpu_scan's entry points return the C results; float16 computes in float32 and
    comes back in float16, like the NumPy path."""
    rng = np.random.default_rng(7)
    inputs = make(rng, np.float32, 2, 4, 20, 5, 2, True, True, True, True)
    c_out = cpu_native_scan.selective_scan(*inputs, True)
    hooked = cpu_scan.selective_scan(*inputs, True)
    assert all(np.array_equal(a, b) for a, b in zip(c_out, hooked))
    grad = rng.standard_normal((2, 4, 20)).astype(np.float32)
    c_grads = cpu_native_scan.selective_scan_backward(grad, None, *inputs, True)
    hooked = cpu_scan.selective_scan_backward(grad, None, *inputs, True)
    assert all(np.array_equal(a, b) for a, b in zip(c_grads, hooked))

    half = tuple(x.astype(np.float16) if x.ndim == 3 or x.ndim == 4 else x for x in inputs)
    got = cpu_native_scan.selective_scan(*half, True)
    want = numpy_scan(monkeypatch, False, *half, True)
    assert got[0].dtype == np.float16 and got[1].dtype == np.float16
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.astype(np.float32), w.astype(np.float32), rtol=2e-3,
                                   atol=2e-3 * float(np.abs(w).max()))
    got = cpu_native_scan.selective_scan_backward(grad.astype(np.float16), None, *half, True)
    want = numpy_scan(monkeypatch, True, grad.astype(np.float16), None, *half, True)
    for name, g, w, x in zip(NAMES, got, want, half):
        assert g.dtype == x.dtype and g.shape == x.shape, name
        np.testing.assert_allclose(g.astype(np.float32), w.astype(np.float32), rtol=5e-3,
                                   atol=5e-3 * float(np.abs(w).max()), err_msg=name)


def test_empty_inputs_fall_back_to_numpy():
    rng = np.random.default_rng(3)
    inputs = make(rng, np.float32, 2, 3, 0, 4, 0, True, True, False, False)
    assert cpu_native_scan.selective_scan(*inputs, False) is None
    y, last = cpu_scan.selective_scan(*inputs, False)
    assert y.shape == (2, 3, 0) and last.shape == (2, 3, 4) and not last.any()


def test_overflow_gives_inf_not_nan_on_the_quiet():
    """A growing state overflows to inf in float32 (positive A), as the NumPy path does."""
    u = np.ones((1, 1, 200), np.float32)
    delta = np.ones((1, 1, 200), np.float32)
    A = np.ones((1, 1), np.float32)
    B = C = np.ones((1, 1, 200), np.float32)
    y, _ = cpu_native_scan.selective_scan(u, delta, A, B, C, None, None, None, False)
    assert np.isinf(y[0, 0, -1]) and not np.isnan(y).any()


def test_shapes_that_do_not_fit_go_to_numpy():
    """The C loops trust the shapes: anything that doesn't fit returns None (the NumPy path
    then raises its own error) instead of reading out of bounds."""
    rng = np.random.default_rng(4)
    good = make(rng, np.float32, 2, 6, 8, 4, 2, True, True, True, True)
    assert cpu_native_scan.selective_scan(*good, True) is not None
    grad = np.ones((2, 6, 8), np.float32)
    u, delta, A, B, C, D, z, bias = good
    four_groups = rng.standard_normal((2, 4, 4, 8)).astype(np.float32)   # 4 doesn't divide 6
    bad_inputs = [{1: delta[:, :, :7]}, {2: A[:5]}, {3: B[..., :7]}, {3: B[:, :, :3]},
                  {4: C[:1]}, {5: D[:5]}, {6: z[:1]}, {7: bias[:4]},
                  {3: four_groups, 4: four_groups}]
    for bad in bad_inputs:
        inputs = [bad.get(i, x) for i, x in enumerate(good)]
        assert cpu_native_scan.selective_scan(*inputs, True) is None, bad.keys()
        assert cpu_native_scan.selective_scan_backward(grad, None, *inputs, True) is None
    assert cpu_native_scan.selective_scan_backward(grad[:1], None, *good, True) is None
    last = np.ones((2, 6, 5), np.float32)
    assert cpu_native_scan.selective_scan_backward(grad, last, *good, True) is None
