"""cpu_conv's C paths (native/conv.c: im2col/col2im + GEMM, Winograd F(2x2, 3x3), max
pooling) against their NumPy twins in the same module, over stride, padding, dilation,
groups, odd sizes, row blocks, non-contiguous inputs and float64; and the routing of what
the C path does not take (no C kernels) to the twins. tests/nn check what runs (the C
paths here) against PyTorch; one Winograd-sized case here goes to PyTorch too."""
from __future__ import annotations

import numpy as np
import pytest

from lightgrad.backends import cpu_conv

pytestmark = pytest.mark.skipif(cpu_conv.kernel("im2col", np.float32) is None,
                                reason="native C kernels unavailable on this machine")
rng = np.random.default_rng(0)

# x shape, w shape, stride, ((top, bottom), (left, right)), dilation[, groups]
CONVS = [
    ((2, 3, 9, 8), (4, 3, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1)),
    ((2, 3, 9, 8), (4, 3, 3, 2), (2, 1), ((2, 0), (1, 3)), (1, 2)),
    ((1, 2, 5, 5), (2, 2, 3, 3), (3, 3), ((4, 4), (4, 4)), (2, 2)),  # taps all in padding
    ((2, 1, 12, 12), (5, 1, 5, 5), (1, 1), ((2, 2), (2, 2)), (1, 1)),  # LeNet-like
    ((2, 3, 7, 7), (3, 3, 1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1)),  # 1x1: plain GEMM
    ((2, 3, 7, 7), (3, 3, 1, 1), (2, 2), ((1, 0), (0, 1)), (1, 1)),  # strided 1x1
    # Winograd F(2x2, 3x3): 3x3, stride 1, >= 32 channels; odd and tiny sizes, all paddings
    ((2, 32, 9, 8), (33, 32, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1)),
    ((1, 32, 7, 10), (32, 32, 3, 3), (1, 1), ((0, 2), (2, 0)), (1, 1)),
    ((1, 32, 3, 2), (32, 32, 3, 3), (1, 1), ((2, 1), (1, 2)), (1, 1)),
    ((3, 32, 6, 6), (32, 32, 3, 3), (1, 1), ((0, 0), (0, 0)), (1, 1)),
    ((1, 32, 6, 6), (32, 32, 3, 3), (1, 1), ((3, 3), (3, 3)), (1, 1)),  # too much padding
    # groups: one GEMM per group; depthwise; 1x1 grouped
    ((2, 4, 9, 8), (6, 2, 3, 2), (2, 1), ((2, 0), (1, 3)), (1, 2), 2),
    ((1, 6, 7, 7), (6, 1, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 6),
    ((2, 32, 5, 6), (32, 8, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 4),  # no Winograd
    ((2, 4, 5, 5), (4, 2, 1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), 2),
]


def _arrays(x_shape, w_shape, dtype):
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    return x, w, rng.standard_normal(w_shape[0]).astype(dtype)


def _close(ours, reference, dtype):
    tol = 1e-4 if dtype == np.float32 else 1e-10
    assert ours.shape == reference.shape and ours.dtype == reference.dtype
    np.testing.assert_allclose(ours, reference, rtol=tol, atol=tol * np.abs(reference).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CONVS)
def test_conv_matches_numpy_twin(case, dtype):
    x_shape, w_shape, *geom = case
    geom = tuple(geom) + (1,) * (len(geom) == 3)  # groups
    assert cpu_conv._NativeGeometry.of(x_shape, w_shape, dtype, dtype, *geom) is not None
    x, w, b = _arrays(x_shape, w_shape, dtype)
    for bias in (b, None):
        _close(cpu_conv.conv2d(x, w, bias, *geom), cpu_conv._conv2d(x, w, bias, *geom), dtype)
    y = cpu_conv._conv2d(x, w, None, *geom)
    g = rng.standard_normal(y.shape).astype(dtype)
    _close(cpu_conv.conv2d_backward_input(g, w, x_shape, *geom),
           cpu_conv._conv2d_backward_input(g, w, x_shape, *geom), dtype)
    _close(cpu_conv.conv2d_backward_weight(g, x, w_shape, *geom),
           cpu_conv._conv2d_backward_weight(g, x, w_shape, *geom), dtype)


def test_winograd_is_taken_and_matches_torch():
    torch = pytest.importorskip("torch")
    geo = cpu_conv._NativeGeometry.of((2, 32, 9, 8), (32, 32, 3, 3), np.float32, np.float32,
                                      (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    assert geo is not None and geo.winograd(1, 1) and not geo.winograd(3, 1)
    x, w, b = _arrays((2, 32, 9, 8), (32, 32, 3, 3), np.float32)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w)
    ty = torch.nn.functional.conv2d(tx, tw, torch.tensor(b), padding=1)
    g = rng.standard_normal(ty.shape).astype(np.float32)
    ty.backward(torch.tensor(g))
    geom = ((1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    np.testing.assert_allclose(cpu_conv.conv2d(x, w, b, *geom), ty.detach().numpy(),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(cpu_conv.conv2d_backward_input(g, w, x.shape, *geom),
                               tx.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_row_blocks_and_image_blocks(monkeypatch):
    """Tiny column budgets cut each image into blocks of output rows; big ones put several
    images in one block."""
    x, w, b = _arrays((3, 4, 11, 6), (5, 4, 3, 3), np.float64)
    geom = ((1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    g = rng.standard_normal((3, 5, 11, 6))
    for budget in (64, 1 << 12, 1 << 24):
        monkeypatch.setattr(cpu_conv, "_COLUMN_BYTES", budget)
        _close(cpu_conv.conv2d(x, w, b, *geom), cpu_conv._conv2d(x, w, b, *geom), np.float64)
        _close(cpu_conv.conv2d_backward_input(g, w, x.shape, *geom),
               cpu_conv._conv2d_backward_input(g, w, x.shape, *geom), np.float64)
        _close(cpu_conv.conv2d_backward_weight(g, x, w.shape, *geom),
               cpu_conv._conv2d_backward_weight(g, x, w.shape, *geom), np.float64)


def test_non_contiguous_inputs():
    x, w, b = _arrays((5, 4, 9, 3), (6, 3, 3, 3), np.float32)
    views = [x.transpose(3, 1, 0, 2), x.transpose(3, 1, 0, 2)[:, :, ::-1]]  # (3, 4, 5, 9)
    geom = ((1, 2), ((1, 0), (2, 2)), (1, 1), 1)
    for view in views:
        w4 = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
        _close(cpu_conv.conv2d(view, w4, b, *geom), cpu_conv._conv2d(view, w4, b, *geom),
               np.float32)
        y = cpu_conv._conv2d(view, w4, None, *geom)
        g = rng.standard_normal(y.shape[::-1]).astype(np.float32).T  # transposed gradient
        _close(cpu_conv.conv2d_backward_weight(g, view, w4.shape, *geom),
               cpu_conv._conv2d_backward_weight(g, view, w4.shape, *geom), np.float32)


def test_mixed_dtypes_and_missing_kernels_take_the_numpy_twin(monkeypatch):
    assert cpu_conv._NativeGeometry.of((1, 4, 5, 5), (4, 4, 3, 3), np.float32, np.float64,
                                       (1, 1), ((0, 0), (0, 0)), (1, 1), 1) is None
    monkeypatch.setattr(cpu_conv, "kernel", lambda name, dtype: None)
    x, w, b = _arrays((1, 2, 5, 5), (3, 2, 3, 3), np.float32)
    geom = ((1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    _close(cpu_conv.conv2d(x, w, b, *geom), cpu_conv._conv2d(x, w, b, *geom), np.float32)
    values, index = cpu_conv.max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    ref_values, ref_index = cpu_conv._max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    np.testing.assert_array_equal(values, ref_values)
    np.testing.assert_array_equal(index, ref_index)


# x shape, kernel, stride, padding, dilation, ceil_mode
POOLS = [
    ((2, 3, 8, 8), (2, 2), (2, 2), (0, 0), (1, 1), False),  # the common case (no bounds)
    ((2, 3, 7, 9), (3, 3), (2, 2), (1, 1), (1, 1), True),
    ((1, 2, 9, 7), (3, 2), (2, 3), (1, 0), (2, 3), False),
    ((1, 2, 6, 6), (3, 3), (1, 1), (0, 0), (2, 1), False),  # dilated, every window inside
    ((1, 1, 5, 5), (2, 2), (2, 2), (1, 1), (1, 1), True),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", POOLS)
def test_max_pool_matches_numpy_twin(case, dtype):
    x_shape, *args = case
    x = rng.standard_normal(x_shape).astype(dtype)
    x.flat[::7] = x.flat[1]  # ties: the first maximum wins
    values, index = cpu_conv.max_pool2d(x, *args)
    ref_values, ref_index = cpu_conv._max_pool2d(x, *args)
    np.testing.assert_array_equal(values, ref_values)
    np.testing.assert_array_equal(index, ref_index)
    g = rng.standard_normal(values.shape).astype(dtype)
    _close(cpu_conv.max_pool2d_backward(g, index, x_shape),
           cpu_conv._max_pool2d_backward(g, index, x_shape), dtype)


def test_max_pool_nan_and_minus_infinity():
    x = np.full((1, 1, 4, 4), -np.inf, np.float32)
    x[0, 0, 0, 1] = np.nan
    x[0, 0, 2, 2] = 1.0
    for args in [((2, 2), (2, 2), (0, 0), (1, 1), False),
                 ((3, 3), (2, 2), (1, 1), (1, 1), False)]:
        values, index = cpu_conv.max_pool2d(x, *args)
        ref_values, ref_index = cpu_conv._max_pool2d(x, *args)
        np.testing.assert_array_equal(values, ref_values)  # NaN wins, as in PyTorch
        assert np.isnan(values[0, 0, 0, 0]) and values[0, 0, 1, 1] == 1.0
        assert index[0, 0, 0, 0] == 1 and index[0, 0, 1, 1] == 10
    values, index = cpu_conv.max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    assert values[0, 0, 1, 0] == -np.inf and index[0, 0, 1, 0] == 8  # all -inf: first tap
    # all -inf with padding: the first tap INSIDE the input (PyTorch's indices, never one in
    # the padding, which the backward could not scatter to)
    x = np.full((1, 1, 3, 4), -np.inf, np.float32)
    for pool in (cpu_conv.max_pool2d, cpu_conv._max_pool2d):
        _, index = pool(x, (2, 2), (2, 2), (1, 1), (1, 1), True)
        np.testing.assert_array_equal(index[0, 0], [[0, 1, 3], [4, 5, 7]])

