"""The CUDA backend's GEMM, convolution and pooling kernels beyond the parity suites: our
own GEMM kernels (naive and tiled) against NumPy on ragged shapes, strided and broadcast
operands and every dtype, under each matmul backend; conv2d and its gradients, max/avg
pooling and their gradients against the CPU backend on ragged geometries. Runs on a GPU or
on the emulator (small shapes)."""
from __future__ import annotations

import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest

import lightgrad as lg
from lightgrad.backends.cpu import CPUBackend
from lightgrad.backends.cuda import ops_conv, ops_linalg

pytestmark = pytest.mark.skipif(not lg.cuda.is_available(), reason="no cuda device")

BF16 = np.dtype(ml_dtypes.bfloat16)
HALVES = (np.dtype(np.float16), BF16)
MATMULS = ["cublas", "lightgrad", "naive"]


@pytest.fixture(scope="module")
def cu():
    return lg.device("cuda").backend


@pytest.fixture(scope="module")
def cpu():
    return CPUBackend()


@pytest.fixture(params=MATMULS)
def matmul(request):
    """Each matmul implementation in turn (restored afterwards)."""
    previous = ops_linalg.matmul_backend()
    ops_linalg.set_matmul_backend(request.param)
    try:
        yield request.param
    finally:
        ops_linalg.set_matmul_backend(previous)


def _random(shape: tuple, dtype, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed + sum(shape))
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        low = 0 if dtype.kind == "u" else -9
        return rng.integers(low, 10, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype in HALVES:  # cpu.py's rule: float32, rounded back
        return np.matmul(a.astype(np.float32), b.astype(np.float32)).astype(a.dtype)
    return np.matmul(a, b)


def _tolerance(dtype: np.dtype, k: int) -> dict:
    if dtype == np.float64:
        return {"rtol": 1e-12, "atol": 1e-12 * k}
    if dtype == np.float32:
        return {"rtol": 1e-5, "atol": 1e-6 * k}
    if dtype in HALVES:  # one rounding of the float32 result apart at most
        return {"rtol": 1e-2 if dtype == np.float16 else 1e-1, "atol": 1e-3}
    return {"rtol": 0, "atol": 0}


def _check_matmul(cu, a: np.ndarray, b: np.ndarray, da=None, db=None) -> None:
    da = cu.from_numpy(a) if da is None else da
    db = cu.from_numpy(b) if db is None else db
    out = cu.matmul(da, db)
    ours, ref = cu.to_numpy(out), _reference(a, b)
    assert ours.shape == ref.shape and ours.dtype == ref.dtype
    np.testing.assert_allclose(ours.astype(np.float64), ref.astype(np.float64),
                               **_tolerance(ref.dtype, a.shape[-1]))


# ----------------------------------------------------------------------------- GEMM

SHAPES = [
    ((1, 1), (1, 1)),
    ((17, 33), (33, 5)),
    ((65, 129), (129, 31)),
    ((130, 20), (20, 140)),            # more than one 128 x 128 tile each way
    ((3, 7, 9), (9, 4)),               # a batch against one matrix (folded into one GEMM)
    ((2, 1, 17, 33), (3, 33, 5)),      # broadcast batch dims
    ((5, 8), (2, 3, 8, 6)),            # a matrix against a batch
]


@pytest.mark.parametrize("sa, sb", SHAPES, ids=[f"{a}@{b}" for a, b in SHAPES])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matmul_ragged_shapes(cu, matmul, sa, sb, dtype):
    _check_matmul(cu, _random(sa, dtype), _random(sb, dtype, seed=1))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "int64", "int32", "int16", "int8",
                                   "uint8", "bool"])
def test_matmul_dtypes(cu, matmul, dtype):
    dtype = BF16 if dtype == "bfloat16" else np.dtype(dtype)
    _check_matmul(cu, _random((19, 70), dtype), _random((70, 67), dtype, seed=1))
    _check_matmul(cu, _random((2, 5, 9), dtype), _random((2, 9, 3), dtype, seed=1))


def test_matmul_int8_wraps_like_numpy(cu, matmul):
    a = np.full((3, 40), 100, np.int8)
    _check_matmul(cu, a, a.T.copy())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matmul_strided_operands(cu, matmul, dtype):
    """Transposed, sliced (misaligned, stepped), broadcast (stride 0) and reversed
    operands, read in place by our kernels (copied where cuBLAS can't take them)."""
    a, w, c = (_random(s, dtype, i) for i, s in enumerate([(3, 40, 21), (3, 34, 21),
                                                             (3, 40, 13)]))
    da, dw, dc = cu.from_numpy(a), cu.from_numpy(w), cu.from_numpy(c)
    everything = (slice(None),)
    cases = [
        (a, w.transpose(0, 2, 1), da, cu.permute(dw, (0, 2, 1))),  # x @ W.T
        (a.transpose(0, 2, 1), c, cu.permute(da, (0, 2, 1)), dc),  # A column-major
        (a[:, 1:, 3:], w.transpose(0, 2, 1)[:, 3:, ::2],           # misaligned, stepped
         cu.getitem(da, everything + (slice(1, None), slice(3, None))),
         cu.getitem(cu.permute(dw, (0, 2, 1)), everything + (slice(3, None),
                                                             slice(None, None, 2)))),
        (np.broadcast_to(a[:1, :1], (3, 40, 21)), w.transpose(0, 2, 1),  # stride 0
         cu.expand(cu.getitem(da, (slice(0, 1), slice(0, 1))), (3, 40, 21)),
         cu.permute(dw, (0, 2, 1))),
        (a[:, ::-1], w[::-1].transpose(0, 2, 1),                     # negative strides
         cu.getitem(da, everything + (slice(None, None, -1),)),
         cu.permute(cu.getitem(dw, (slice(None, None, -1),)), (0, 2, 1))),
    ]
    for x, y, dx, dy in cases:
        _check_matmul(cu, np.ascontiguousarray(x), np.ascontiguousarray(y), dx, dy)


def test_matmul_empty_and_k0(cu, matmul):
    for sa, sb in [((3, 0), (0, 4)), ((0, 3), (3, 4)), ((2, 0, 5), (5, 3)), ((4, 5), (5, 0))]:
        _check_matmul(cu, _random(sa, "float32"), _random(sb, "float32"))


def test_naive_and_tiled_agree_on_larger_shapes(cu):
    """Grids of several tiles in both directions and batches (tile sizes: 128 for float32,
    64 for float64)."""
    a32, b32 = _random((2, 200, 37), "float32"), _random((2, 37, 260), "float32", 1)
    a64, b64 = a32[:, :130].astype(np.float64), b32[:, :, :140].astype(np.float64)
    for a, b in ((a32, b32), (a64, b64)):
        da, db = cu.from_numpy(a), cu.from_numpy(b)
        outs = []
        for kind in ("naive", "tiled"):
            out = cu.empty(a.shape[:-1] + b.shape[-1:], a.dtype)
            cu.gemm_into(da, db, out, backend="naive" if kind == "naive" else "lightgrad")
            outs.append(cu.to_numpy(out))
        np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(outs[1], a @ b, rtol=1e-5, atol=1e-5)


def test_gemm_into_strided_output(cu, matmul):
    """A slice of a wider matrix as the output (what convolution's blocks write)."""
    a, b = _random((2, 6, 9), "float32"), _random((2, 9, 5), "float32", 1)
    wide = cu.full((2, 6, 12), 7.0, np.float32)
    cu.gemm_into(cu.from_numpy(a), cu.from_numpy(b), wide.view((2, 6, 5), wide.strides, 3))
    got = cu.to_numpy(wide)
    np.testing.assert_allclose(got[:, :, 3:8], a @ b, rtol=1e-5, atol=1e-6)
    assert (got[:, :, :3] == 7).all() and (got[:, :, 8:] == 7).all()


def test_matmul_through_tensors(matmul):
    a = lg.tensor(_random((4, 3, 10), "float32"), requires_grad=True)
    b = lg.tensor(_random((10, 6), "float32", 1), requires_grad=True)
    ca, cb = (lg.tensor(t.detach().numpy(), device="cuda", requires_grad=True)
              for t in (a, b))
    (a @ b).sum().backward()
    (ca @ cb).sum().backward()
    for ours, ref in ((ca, a), (cb, b)):
        np.testing.assert_allclose(ours.grad.numpy(), ref.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_set_matmul_backend():
    previous = lg.cuda.get_matmul_backend()
    try:
        lg.cuda.set_matmul_backend("lightgrad")
        assert ops_linalg.matmul_backend() == "lightgrad"
        with pytest.raises(ValueError, match="set_matmul_backend: expected one of cublas"):
            lg.cuda.set_matmul_backend("mkl")
    finally:
        lg.cuda.set_matmul_backend(previous)


def test_matmul_backend_from_environment():
    code = "import lightgrad as lg; print(lg.cuda.get_matmul_backend())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**__import__("os").environ, "LIGHTGRAD_CUDA_MATMUL": "lightgrad"})
    assert done.stdout.strip() == "lightgrad", done.stderr


# ----------------------------------------------------------------------------- conv

# (x shape, w shape, stride, padding ((top, bottom), (left, right)), dilation, groups)
CONVS = [
    ((2, 3, 7, 9), (4, 3, 3, 2), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),
    ((3, 4, 9, 8), (6, 2, 3, 2), (2, 1), ((2, 1), (1, 0)), (1, 2), 2),
    ((1, 6, 5, 6), (6, 1, 3, 3), (2, 2), ((1, 1), (1, 1)), (2, 1), 6),    # depthwise
    ((2, 2, 1, 7), (3, 2, 1, 3), (1, 2), ((0, 0), (2, 2)), (1, 1), 1),    # conv1d-like
    ((2, 5, 6, 5), (3, 5, 1, 1), (2, 3), ((0, 1), (1, 0)), (1, 1), 1),    # 1x1, strided
]
CONV_IDS = [f"conv{i}" for i in range(len(CONVS))]


def _compare(ours, ref, dtype, exact: bool = False) -> None:
    ours = np.asarray(ours)
    assert ours.shape == ref.shape and ours.dtype == ref.dtype, (ours.shape, ours.dtype,
                                                                 ref.shape, ref.dtype)
    if exact:
        np.testing.assert_array_equal(ours, ref)
        return
    tol = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-4}.get(np.dtype(dtype), 2e-2)
    np.testing.assert_allclose(ours.astype(np.float64), ref.astype(np.float64), rtol=tol,
                               atol=tol)


@pytest.mark.parametrize("case", CONVS, ids=CONV_IDS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_conv2d_and_gradients(cu, cpu, matmul, case, dtype):
    if matmul == "naive" and dtype != "float32":
        pytest.skip("the naive kernel: float32 is enough")
    xs, ws, stride, padding, dilation, groups = case
    x, w = _random(xs, dtype), _random(ws, dtype, 1)
    bias = _random(ws[:1], dtype, 2)
    geom = (stride, padding, dilation, groups)
    ref = cpu.conv2d(x, w, bias, *geom)
    out = cu.conv2d(cu.from_numpy(x), cu.from_numpy(w), cu.from_numpy(bias), *geom)
    _compare(cu.to_numpy(out), ref, dtype)
    _compare(cu.to_numpy(cu.conv2d(cu.from_numpy(x), cu.from_numpy(w), None, *geom)),
             cpu.conv2d(x, w, None, *geom), dtype)
    g = _random(ref.shape, dtype, 3)
    _compare(cu.to_numpy(cu.conv2d_backward_input(cu.from_numpy(g), cu.from_numpy(w), xs,
                                                  *geom)),
             cpu.conv2d_backward_input(g, w, xs, *geom), dtype)
    _compare(cu.to_numpy(cu.conv2d_backward_weight(cu.from_numpy(g), cu.from_numpy(x), ws,
                                                   *geom)),
             cpu.conv2d_backward_weight(g, x, ws, *geom), dtype)


@pytest.mark.parametrize("case", CONVS[:2], ids=CONV_IDS[:2])
def test_conv2d_in_image_blocks(cu, cpu, matmul, monkeypatch, case):
    """Columns built a block of images at a time (here one image per block)."""
    monkeypatch.setattr(ops_conv, "COLUMN_BYTES", 1)
    test_conv2d_and_gradients(cu, cpu, matmul, case, "float32")


def test_conv2d_strided_inputs(cu, cpu):
    """A channel-major input (a conv's own output layout) and a transposed gradient."""
    xs, ws, stride, padding, dilation, groups = CONVS[1]
    x, w = _random(xs, "float32"), _random(ws, "float32", 1)
    geom = (stride, padding, dilation, groups)
    dx = cu.permute(cu.from_numpy(np.ascontiguousarray(x.transpose(1, 0, 2, 3))), (1, 0, 2, 3))
    ref = cpu.conv2d(x, w, None, *geom)
    _compare(cu.to_numpy(cu.conv2d(dx, cu.from_numpy(w), None, *geom)), ref, "float32")
    g = _random(ref.shape, "float32", 3)
    dg = cu.permute(cu.from_numpy(np.ascontiguousarray(g.transpose(0, 1, 3, 2))), (0, 1, 3, 2))
    _compare(cu.to_numpy(cu.conv2d_backward_input(dg, cu.from_numpy(w), xs, *geom)),
             cpu.conv2d_backward_input(g, w, xs, *geom), "float32")
    _compare(cu.to_numpy(cu.conv2d_backward_weight(dg, dx, ws, *geom)),
             cpu.conv2d_backward_weight(g, x, ws, *geom), "float32")


# ----------------------------------------------------------------------------- pooling

# (kernel, stride, padding, dilation, ceil_mode)
MAX_POOLS = [((2, 2), (2, 2), (0, 0), (1, 1), False), ((3, 3), (2, 2), (1, 1), (1, 1), True),
             ((3, 2), (1, 2), (1, 0), (2, 1), False), ((2, 2), (3, 3), (1, 1), (1, 1), True),
             ((4, 3), (1, 1), (2, 1), (1, 1), False)]
POOL_DTYPES = ["float32", "float64", "float16", "bfloat16"]


def _pool_input(shape: tuple, dtype: str) -> np.ndarray:
    return _random(shape, BF16 if dtype == "bfloat16" else dtype)


@pytest.mark.parametrize("params", MAX_POOLS, ids=[f"max{i}" for i in range(len(MAX_POOLS))])
@pytest.mark.parametrize("dtype", POOL_DTYPES)
def test_max_pool2d_and_backward(cu, cpu, params, dtype):
    x = _pool_input((2, 3, 7, 9), dtype)
    x[0, 0, 1, 1] = np.nan  # NaN wins its windows
    values, index = cpu.max_pool2d(x, *params)
    dv, di = cu.max_pool2d(cu.from_numpy(x), *params)
    np.testing.assert_array_equal(cu.to_numpy(dv).astype(np.float64),
                                  values.astype(np.float64))
    assert cu.to_numpy(dv).dtype == values.dtype
    _compare(cu.to_numpy(di), index, np.int64, exact=True)
    g = _pool_input(values.shape, dtype)
    _compare(cu.to_numpy(cu.max_pool2d_backward(cu.from_numpy(g), di, x.shape)),
             cpu.max_pool2d_backward(g, index, x.shape), dtype)


def test_max_pool2d_all_padding_window(cu, cpu):
    """A window of -inf only keeps its first tap inside the input: PyTorch's index."""
    import torch
    x = np.full((1, 1, 3, 4), -np.inf, np.float32)
    params = ((2, 2), (2, 2), (1, 1), (1, 1), True)
    values, index = cpu.max_pool2d(x, *params)
    _, expected = torch.nn.functional.max_pool2d(torch.from_numpy(x), 2, 2, 1, 1, True,
                                                 return_indices=True)
    np.testing.assert_array_equal(index, expected.numpy())
    dv, di = cu.max_pool2d(cu.from_numpy(x), *params)
    np.testing.assert_array_equal(cu.to_numpy(dv), values)
    np.testing.assert_array_equal(cu.to_numpy(di), index)


# (kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVG_POOLS = [((2, 2), (2, 2), (0, 0), False, True, None),
             ((3, 3), (2, 2), (1, 1), True, True, None),
             ((3, 3), (2, 2), (1, 1), True, False, None),
             ((3, 2), (1, 2), (1, 1), False, False, None),
             ((2, 3), (3, 2), (1, 1), True, True, 5),
             ((4, 4), (1, 1), (2, 2), False, False, None)]


@pytest.mark.parametrize("params", AVG_POOLS, ids=[f"avg{i}" for i in range(len(AVG_POOLS))])
@pytest.mark.parametrize("dtype", POOL_DTYPES)
def test_avg_pool2d_and_backward(cu, cpu, params, dtype):
    x = _pool_input((2, 3, 7, 9), dtype)
    ref = cpu.avg_pool2d(x, *params)
    _compare(cu.to_numpy(cu.avg_pool2d(cu.from_numpy(x), *params)), ref, dtype)
    g = _pool_input(ref.shape, dtype)
    _compare(cu.to_numpy(cu.avg_pool2d_backward(cu.from_numpy(g), x.shape, *params)),
             cpu.avg_pool2d_backward(g, x.shape, *params), dtype)


def test_pool_strided_input(cu, cpu):
    x = _random((3, 2, 8, 7), "float32")
    dx = cu.permute(cu.from_numpy(np.ascontiguousarray(x.transpose(1, 0, 3, 2))), (1, 0, 3, 2))
    values, index = cpu.max_pool2d(x, *MAX_POOLS[1])
    dv, di = cu.max_pool2d(dx, *MAX_POOLS[1])
    np.testing.assert_array_equal(cu.to_numpy(dv), values)
    np.testing.assert_array_equal(cu.to_numpy(di), index)
    _compare(cu.to_numpy(cu.avg_pool2d(dx, *AVG_POOLS[2])), cpu.avg_pool2d(x, *AVG_POOLS[2]),
             "float32")
