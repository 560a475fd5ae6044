"""F.max_pool1d/2d, avg_pool1d/2d, adaptive_avg_pool1d/2d against PyTorch: forward (values
and indices), backward over kernel/stride/padding/dilation/ceil_mode/count_include_pad;
second-order gradients; float64 gradcheck; input validation messages."""
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
rng = np.random.default_rng(2)

# (kernel, stride, padding, dilation, ceil_mode)
MAX2D = [(2, None, 0, 1, False), (3, 2, 1, 1, False), (3, 2, 1, 1, True),
         ((3, 2), (1, 2), (1, 0), (2, 1), False), (2, 3, 1, 1, True), (4, 1, 2, 1, False)]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kernel,stride,padding,dilation,ceil_mode", MAX2D)
def test_max_pool2d_parity(kernel, stride, padding, dilation, ceil_mode, dtype):
    kw = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation,
              ceil_mode=ceil_mode, return_indices=True)
    check_parity(lambda x: F.max_pool2d(x, **kw), [rng.standard_normal((2, 3, 7, 8))],
                 lambda x: TF.max_pool2d(x, **kw), dtype=dtype)


@pytest.mark.parametrize("kernel,stride,padding,dilation,ceil_mode",
                         [(2, None, 0, 1, False), (3, 2, 1, 2, True)])
def test_max_pool1d_parity(kernel, stride, padding, dilation, ceil_mode):
    kw = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation,
              ceil_mode=ceil_mode, return_indices=True)
    check_parity(lambda x: F.max_pool1d(x, **kw), [rng.standard_normal((2, 3, 11))],
                 lambda x: TF.max_pool1d(x, **kw))


def test_max_pool_overlapping_windows_accumulate():
    # stride 1 with kernel 3: one input can be the max of several windows
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 5.0
    check_parity(lambda t: F.max_pool2d(t, 3, stride=1), [x + rng.random(x.shape) * 0.1],
                 lambda t: TF.max_pool2d(t, 3, stride=1))


# (kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVG2D = [(2, None, 0, False, True, None), (3, 2, 1, False, True, None),
         (3, 2, 1, True, False, None), ((3, 2), (2, 1), (1, 1), True, True, None),
         (2, 3, 1, True, False, None), (3, 2, 1, False, True, 4)]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kernel,stride,padding,ceil_mode,count_include_pad,divisor", AVG2D)
def test_avg_pool2d_parity(kernel, stride, padding, ceil_mode, count_include_pad, divisor,
                           dtype):
    kw = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
              count_include_pad=count_include_pad, divisor_override=divisor)
    check_parity(lambda x: F.avg_pool2d(x, **kw), [rng.standard_normal((2, 3, 7, 8))],
                 lambda x: TF.avg_pool2d(x, **kw), dtype=dtype)


@pytest.mark.parametrize("ceil_mode,count_include_pad", [(False, True), (True, False)])
def test_avg_pool1d_parity(ceil_mode, count_include_pad):
    kw = dict(kernel_size=4, stride=3, padding=2, ceil_mode=ceil_mode,
              count_include_pad=count_include_pad)
    check_parity(lambda x: F.avg_pool1d(x, **kw), [rng.standard_normal((2, 3, 10))],
                 lambda x: TF.avg_pool1d(x, **kw))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("size", [1, (3, 4), (7, None), (5, 3)])
def test_adaptive_avg_pool2d_parity(size, dtype):
    check_parity(lambda x: F.adaptive_avg_pool2d(x, size), [rng.standard_normal((2, 3, 7, 6))],
                 lambda x: TF.adaptive_avg_pool2d(x, size), dtype=dtype)


def test_adaptive_avg_pool1d_parity():
    check_parity(lambda x: F.adaptive_avg_pool1d(x, 4), [rng.standard_normal((2, 3, 10))],
                 lambda x: TF.adaptive_avg_pool1d(x, 4))


def test_pool_second_order():
    x = [rng.standard_normal((1, 2, 5, 5))]
    second_order_parity(lambda t: F.max_pool2d(t, 3, 1, 1).square(),
                        lambda t: TF.max_pool2d(t, 3, 1, 1).square(), x)
    second_order_parity(lambda t: F.avg_pool2d(t, 3, 2, 1, True, False).square(),
                        lambda t: TF.avg_pool2d(t, 3, 2, 1, True, False).square(), x)


def test_pool_gradcheck():
    x = lg.tensor(rng.standard_normal((1, 2, 5, 4)), requires_grad=True)
    assert gradcheck(lambda t: F.max_pool2d(t, 2, stride=1, padding=1), [x])
    assert gradcheck(lambda t: F.avg_pool2d(t, 3, 2, 1, ceil_mode=True,
                                            count_include_pad=False), [x])
    assert gradcheck(lambda t: F.adaptive_avg_pool2d(t, (3, 3)), [x])
    x1 = lg.tensor(rng.standard_normal((1, 2, 6)), requires_grad=True)
    assert gradcheck(lambda t: F.max_pool1d(t, 3, 2, ceil_mode=True), [x1])


def test_pool_errors():
    x = lg.ones(1, 2, 4, 4)
    with pytest.raises(ValueError, match=r"max_pool2d: expected input with 4 dims \(N, C, H, "
                                         r"W\), got shape \(2, 4, 4\)"):
        F.max_pool2d(lg.ones(2, 4, 4), 2)
    with pytest.raises(ValueError, match=r"max_pool2d: padding \(2, 2\) must be at most half "
                                         r"of the \(dilated\) kernel size \(2, 2\)"):
        F.max_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match=r"avg_pool2d: output size \(0, 0\) is too small"):
        F.avg_pool2d(x, 5)
    with pytest.raises(TypeError, match="max_pool2d: kernel_size must be an int or a tuple"):
        F.max_pool2d(x, (2, 2, 2))
    with pytest.raises(TypeError, match="avg_pool1d: expected a floating-point input"):
        F.avg_pool1d(lg.ones(1, 2, 4, dtype=lg.int64), 2)
    with pytest.raises(ValueError, match="adaptive_avg_pool2d: output_size must hold "
                                         "positive ints"):
        F.adaptive_avg_pool2d(x, (0, 2))
