"""F.conv1d / conv2d / conv_transpose1d / conv_transpose2d against PyTorch: forward and
backward over stride, padding (incl. 'same'/'valid'), dilation, groups (incl. depthwise) and
bias; second-order gradients; float64 gradcheck; input validation messages."""
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
rng = np.random.default_rng(1)

# (in_channels, out_channels, kernel, stride, padding, dilation, groups)
CONV2D = [
    (3, 4, (3, 3), 1, 0, 1, 1),
    (3, 4, (3, 2), (2, 1), 1, 1, 1),
    (2, 6, (3, 3), 2, (1, 2), (2, 1), 2),
    (4, 4, (3, 3), 1, "same", 1, 4),       # depthwise
    (4, 8, (2, 3), 1, "same", (2, 1), 4),  # depthwise multiplier 2, even kernel
    (3, 2, (4, 4), 3, "valid", 1, 1),
    (3, 5, (1, 1), 1, 0, 1, 1),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("cin,cout,k,stride,padding,dilation,groups", CONV2D)
def test_conv2d_parity(cin, cout, k, stride, padding, dilation, groups, bias, dtype):
    arrays = [rng.standard_normal((2, cin, 7, 8)),
              rng.standard_normal((cout, cin // groups) + k)]
    arrays += [rng.standard_normal(cout)] if bias else []
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    tol = {"rtol": 1e-4, "atol": 1e-4} if dtype == "float32" else {}
    check_parity(lambda *a: F.conv2d(*a, **kw), arrays, lambda *a: TF.conv2d(*a, **kw),
                 dtype=dtype, **tol)


CONV1D = [(3, 4, 3, 1, 0, 1, 1), (4, 6, 3, 2, 2, 2, 2), (4, 4, 4, 1, "same", 1, 4),
          (2, 3, 5, 3, "valid", 1, 1)]


@pytest.mark.filterwarnings("ignore:Using padding='same'")  # PyTorch's note on even kernels
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("cin,cout,k,stride,padding,dilation,groups", CONV1D)
def test_conv1d_parity(cin, cout, k, stride, padding, dilation, groups, dtype):
    arrays = [rng.standard_normal((2, cin, 11)), rng.standard_normal((cout, cin // groups, k)),
              rng.standard_normal(cout)]
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    tol = {"rtol": 1e-4, "atol": 1e-4} if dtype == "float32" else {}
    check_parity(lambda *a: F.conv1d(*a, **kw), arrays, lambda *a: TF.conv1d(*a, **kw),
                 dtype=dtype, **tol)


# (in, out // groups, kernel, stride, padding, output_padding, groups, dilation)
TRANSPOSED = [(4, 3, (3, 3), 1, 0, 0, 1, 1), (4, 2, (3, 2), (2, 3), 1, (1, 2), 2, 1),
              (2, 3, (2, 2), 2, 0, 1, 1, 2)]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("cin,cout_g,k,stride,padding,out_pad,groups,dilation", TRANSPOSED)
def test_conv_transpose2d_parity(cin, cout_g, k, stride, padding, out_pad, groups, dilation,
                                 dtype):
    arrays = [rng.standard_normal((2, cin, 4, 5)), rng.standard_normal((cin, cout_g) + k),
              rng.standard_normal(cout_g * groups)]
    kw = dict(stride=stride, padding=padding, output_padding=out_pad, groups=groups,
              dilation=dilation)
    tol = {"rtol": 1e-4, "atol": 1e-4} if dtype == "float32" else {}
    check_parity(lambda *a: F.conv_transpose2d(*a, **kw), arrays,
                 lambda *a: TF.conv_transpose2d(*a, **kw), dtype=dtype, **tol)


def test_conv_transpose1d_parity():
    kw = dict(stride=2, padding=1, output_padding=1)
    check_parity(lambda *a: F.conv_transpose1d(*a, **kw),
                 [rng.standard_normal((2, 4, 5)), rng.standard_normal((4, 3, 3))],
                 lambda *a: TF.conv_transpose1d(*a, **kw))


@pytest.mark.parametrize("kw", [dict(stride=2, padding=1, dilation=(1, 2), groups=2),
                                dict(padding="same", groups=4)])
def test_conv2d_second_order(kw):
    cout, cin_g = (4, 2) if kw["groups"] == 2 else (4, 1)
    arrays = [rng.standard_normal((2, 4, 5, 6)), rng.standard_normal((cout, cin_g, 3, 2)),
              rng.standard_normal(cout)]
    second_order_parity(lambda *a: F.conv2d(*a, **kw), lambda *a: TF.conv2d(*a, **kw), arrays)


def test_conv_transpose2d_second_order():
    kw = dict(stride=2, padding=1, output_padding=1)
    second_order_parity(lambda *a: F.conv_transpose2d(*a, **kw),
                        lambda *a: TF.conv_transpose2d(*a, **kw),
                        [rng.standard_normal((1, 2, 3, 3)), rng.standard_normal((2, 2, 3, 3))])


@pytest.mark.parametrize("stride", [1, 2])
def test_conv2d_row_blocks(monkeypatch, stride):
    """Large inputs are processed in blocks of output rows; force tiny blocks here."""
    import importlib
    conv = importlib.import_module("lightgrad.backends.cpu_conv")
    monkeypatch.setattr(conv, "_BLOCK_BYTES", 64)  # the NumPy path's blocks
    monkeypatch.setattr(conv, "_COLUMN_BYTES", 64)  # the C path's
    kw = dict(stride=stride, padding=(2, 1), dilation=(1, 2), groups=2)
    arrays = [rng.standard_normal((2, 4, 9, 8)), rng.standard_normal((6, 2, 3, 2)),
              rng.standard_normal(6)]
    check_parity(lambda *a: F.conv2d(*a, **kw), arrays, lambda *a: TF.conv2d(*a, **kw))


def test_conv_gradcheck():
    x = lg.tensor(rng.standard_normal((1, 2, 4, 4)), requires_grad=True)
    w = lg.tensor(rng.standard_normal((2, 1, 2, 3)), requires_grad=True)
    b = lg.tensor(rng.standard_normal(2), requires_grad=True)
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=1, groups=2),
                     [x, w, b])
    x1 = lg.tensor(rng.standard_normal((1, 2, 5)), requires_grad=True)
    w1 = lg.tensor(rng.standard_normal((2, 2, 2)), requires_grad=True)
    assert gradcheck(lambda x, w: F.conv1d(x, w, padding="same", dilation=2), [x1, w1])
    assert gradcheck(lambda x, w: F.conv_transpose1d(x, w, stride=2), [x1, w1])


def test_conv_float32_stays_float32():
    y = F.conv2d(lg.ones(1, 2, 4, 4), lg.ones(3, 2, 3, 3), lg.ones(3))
    assert y.dtype is lg.float32
    assert y.tolist()[0][0] == [[19.0, 19.0], [19.0, 19.0]]


def test_conv_errors():
    x, w = lg.ones(2, 4, 8, 8), lg.ones(6, 2, 3, 3)
    with pytest.raises(ValueError, match=r"conv2d: expected input with 4 dims \(N, C, H, W\), "
                                         r"got shape \(3, 28, 28\)"):
        F.conv2d(lg.ones(3, 28, 28), lg.ones(6, 3, 5, 5))
    with pytest.raises(ValueError, match=r"conv2d: input of shape \(2, 4, 8, 8\) has 4 "
                                         r"channels, but weight of shape \(6, 2, 3, 3\) with "
                                         r"groups=1 expects 2"):
        F.conv2d(x, w)
    with pytest.raises(ValueError, match=r"conv2d: groups=3 must divide both in_channels "
                                         r"\(4\) and out_channels \(6\)"):
        F.conv2d(x, w, groups=3)
    with pytest.raises(ValueError, match=r"conv2d: kernel size \(3, 3\) \(dilated: \(9, 9\)\) "
                                         r"is larger than the padded input size \(8, 8\)"):
        F.conv2d(x, w, groups=2, dilation=4)
    with pytest.raises(ValueError, match=r"conv2d: bias must have shape \(6,\), got \(4,\)"):
        F.conv2d(x, w, lg.ones(4), groups=2)
    with pytest.raises(ValueError, match="conv2d: padding='same' is not supported for "
                                         "strided convolutions"):
        F.conv2d(x, w, groups=2, stride=2, padding="same")
    with pytest.raises(TypeError, match="conv2d: input, weight and bias must share one "
                                        "floating-point dtype"):
        F.conv2d(x.double(), w, groups=2)
    with pytest.raises(ValueError, match=r"conv1d: expected input with 3 dims \(N, C, L\)"):
        F.conv1d(lg.ones(2, 4), lg.ones(2, 4, 3))
    with pytest.raises(ValueError, match="conv2d: stride must be >= 1"):
        F.conv2d(x, w, groups=2, stride=0)
    with pytest.raises(ValueError, match="conv_transpose2d: output_padding"):
        F.conv_transpose2d(x, lg.ones(4, 2, 3, 3), output_padding=1)
