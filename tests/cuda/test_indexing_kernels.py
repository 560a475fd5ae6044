"""The CUDA backend's indexing, scan, sort and creation kernels against NumPy (cpu.py), at
the backend level: the paths the device-parametrized suites reach rarely (long rows that
take the chunked scan, the two-pass argmax and the merge sort; repeated indices adding up
with atomics in every dtype; bool masks mixed with slices and arrays; out-of-range indices
found on the device) and exact agreement of arange/linspace/eye with NumPy."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import lightgrad as lg
from lightgrad.backends.cpu import CPUBackend

pytestmark = pytest.mark.skipif(not lg.cuda.is_available(),
                                reason="needs the cuda device (a GPU or LIGHTGRAD_CUDA=emulate)")

BF16 = np.dtype(ml_dtypes.bfloat16)
CPU = CPUBackend()


@pytest.fixture
def be():
    return lg.device("cuda").backend


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def dev(be, value):
    """A device array of ``value``; a list of values becomes a tuple (an index)."""
    if isinstance(value, tuple):
        return tuple(dev(be, v) for v in value)
    return be.from_numpy(value) if isinstance(value, np.ndarray) and value.ndim else value


def host(be, x) -> np.ndarray:
    return be.to_numpy(x)


# ----------------------------------------------------------------------------- advanced indexing

def _i(*values):
    return np.array(values, dtype=np.int64)


X345 = np.arange(60.0).reshape(3, 4, 5)
GET = [
    ("mask_2d", (X345[:, :, 0] > 7,)),
    ("array_slice_array", (_i(0, 2), slice(None), _i(1, 4))),        # not adjacent: first
    ("slice_array_none_array", (slice(None), _i(0, 1), None, _i(1, 2))),
    ("int_slice_array", (1, slice(1, 3), _i(0, 4, 4))),                # int counts as array
    ("array_int_adjacent", (slice(None), _i([0], [3]), 2)),
    ("broadcast_2d", (_i([0], [2]), _i(1, 3), slice(None, None, 2))),
    ("mask_with_array", (np.array([True, False, True]), _i(3, 0))),
    ("bool_scalar_true", (slice(None), np.array(True))),
    ("bool_scalar_false", (np.array(False),)),
    ("negative", (_i(-1, -3), Ellipsis, _i(-5, 4))),
    ("empty_ellipsis_separates", (slice(None), _i(0, 1), Ellipsis, _i(1, 2))),
    ("none_separates", (_i(0, 2), None, _i(1, 1), slice(1, 3))),
    ("empty_list", (np.zeros(0, dtype=np.int64),)),
    ("mask_all_false", (np.zeros((3, 4), dtype=bool),)),
    ("mask_last_axes", (Ellipsis, X345[1] % 3 == 0)),
]


@pytest.mark.parametrize("name, index", GET, ids=[g[0] for g in GET])
@pytest.mark.parametrize("dtype", ["float32", "float16", "int8", "bool"])
def test_advanced_getitem_matches_numpy(be, name, index, dtype):
    x = X345.astype(dtype)
    out = be.getitem(be.from_numpy(x), dev(be, index))
    want = x[index]
    assert out.shape == want.shape and out.dtype == want.dtype
    np.testing.assert_array_equal(host(be, out), want)


def _random_index(r: np.random.Generator, shape: tuple) -> tuple:
    """Ints, slices, None, one Ellipsis, int arrays (broadcasting), bool masks and 0-d
    bools, in any order."""
    items, axis, ellipsis = [], 0, False
    while axis < len(shape) and r.random() < 0.9:
        kind, n = r.choice(["int", "slice", "array", "mask", "none", "ellipsis", "bool"]), \
            shape[axis]
        if kind == "int":
            items.append(int(r.integers(-n, n)))
            axis += 1
        elif kind == "slice":
            items.append(slice(int(r.integers(0, n)), None, int(r.integers(1, 3))))
            axis += 1
        elif kind == "array":
            items.append(r.integers(-n, n, tuple(r.integers(1, 3, r.integers(0, 3)))))
            axis += 1
        elif kind == "mask":
            k = int(r.integers(1, len(shape) - axis + 1))
            items.append(r.random(shape[axis:axis + k]) > 0.4)
            axis += k
        elif kind == "none":
            items.append(None)
        elif kind == "bool":
            items.append(np.array(r.random() < 0.7))
        elif not ellipsis:
            ellipsis = True
            items.append(Ellipsis)
            axis = len(shape) - int(r.integers(0, len(shape) - axis + 1))
    return tuple(items)


def test_random_advanced_indices_match_numpy(be):
    r = rng(42)
    for _ in range(150):
        shape = tuple(int(n) for n in r.integers(1, 4, r.integers(1, 5)))
        x = r.standard_normal(shape)
        index = _random_index(r, shape)
        try:
            want = x[index]
        except IndexError:  # arrays that don't broadcast together
            with pytest.raises(IndexError):
                be.getitem(be.from_numpy(x), dev(be, index))
            continue
        got = host(be, be.getitem(be.from_numpy(x), dev(be, index)))
        assert got.shape == want.shape, (shape, index)
        np.testing.assert_array_equal(got, want)
        value = r.integers(-9, 9, want.shape).astype(np.float64)
        once = np.zeros(shape)
        np.add.at(once, index, 1.0)
        if (once <= 1).all():  # with repeated indices NumPy's last write wins; ours: any
            y = x.copy()
            buf = be.from_numpy(y)
            be.setitem(buf, dev(be, index), dev(be, value) if value.ndim else float(value))
            y[index] = value
            np.testing.assert_array_equal(host(be, buf), y)
        got = be.index_put(be.from_numpy(x), dev(be, index),
                           dev(be, value) if value.ndim else float(value), True)
        # repeated indices add in whatever order the atomics land: equal up to rounding
        np.testing.assert_allclose(host(be, got), CPU.index_put(x, index, value, True),
                                   rtol=1e-12, atol=1e-12)


def test_advanced_getitem_of_a_strided_view(be):
    x = be.permute(be.from_numpy(X345), (2, 0, 1))
    x = be.getitem(x, (slice(1, None), slice(None, None, 2)))
    want = X345.transpose(2, 0, 1)[1:, ::2][_i(0, 3, 1), :, _i(2, 0, 2)]
    got = be.getitem(x, (dev(be, _i(0, 3, 1)), slice(None), dev(be, _i(2, 0, 2))))
    np.testing.assert_array_equal(host(be, got), want)


@pytest.mark.parametrize("index, value", [
    ((_i(0, 2), slice(1, 3)), np.arange(5.0)),
    ((slice(None), X345[0] > 10), np.array(-1.0)),
    ((_i(2, 0), Ellipsis, _i(4, 1)), np.arange(8.0).reshape(4, 2).T),
    ((np.array(True), 1), np.arange(5.0)),
])
def test_advanced_setitem_matches_numpy(be, index, value):
    x = X345.copy()
    buf = be.from_numpy(x)
    be.setitem(buf, dev(be, index), dev(be, value) if value.ndim else float(value))
    x[index] = value
    np.testing.assert_array_equal(host(be, buf), x)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16", "int64",
                                   "int32", "int16", "int8", "uint8", "bool"])
def test_index_put_accumulates_repeated_indices(be, dtype):
    dtype = BF16 if dtype == "bfloat16" else np.dtype(dtype)
    x = np.arange(12).reshape(3, 4).astype(dtype)
    rows = _i(0, 2, 0, 0, 1)
    value = (np.arange(5 * 4) % 3).reshape(5, 4).astype(dtype)
    got = be.index_put(be.from_numpy(x), (dev(be, rows),), be.from_numpy(value), True)
    want = CPU.index_put(x, (rows,), value, True)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(host(be, got), want)


def test_index_put_accumulate_with_mask_and_scalar(be):
    x = np.zeros((3, 4))
    mask = np.array([[True, False, True, False]] * 3)
    got = be.index_put(be.from_numpy(x), (be.from_numpy(mask),), 2.5, True)
    np.testing.assert_array_equal(host(be, got), CPU.index_put(x, (mask,), 2.5, True))


def test_out_of_range_indices_are_found_on_the_device(be):
    x = be.from_numpy(X345)
    with pytest.raises(IndexError, match=r"index 5 is out of range for dim 2 with size 5"):
        be.getitem(x, (slice(None), slice(None), dev(be, _i(0, 5, 1))))
    with pytest.raises(IndexError, match=r"index -4 is out of range for dim 0 with size 3"):
        be.getitem(x, (dev(be, _i(-4)),))
    with pytest.raises(IndexError, match=r"index 9 is out of range for dim 1 with size 4"):
        be.index_select(x, 1, dev(be, _i(1, 9)))
    with pytest.raises(IndexError, match="out of range"):
        be.gather(x, 2, dev(be, np.full((3, 4, 1), 7, dtype=np.int64)))
    with pytest.raises(IndexError, match="shape mismatch"):
        be.getitem(x, (dev(be, _i(0, 1)), dev(be, _i(0, 1, 2))))
    with pytest.raises(IndexError, match="bool mask of shape"):
        be.getitem(x, (dev(be, np.array([True, False])),))


# ----------------------------------------------------------------------------- gathers, scatters

@pytest.mark.parametrize("dtype", ["float32", "float16", "int16", "bool"])
def test_gather_scatter_add_index_add_select(be, dtype):
    dtype = np.dtype(dtype)
    x = (rng(1).standard_normal((4, 5)) * 3).astype(dtype)
    idx = rng(2).integers(-4, 4, (3, 5))
    np.testing.assert_array_equal(host(be, be.gather(be.from_numpy(x), 0, be.from_numpy(idx))),
                                  CPU.gather(x, 0, idx))
    src = (rng(3).standard_normal((5, 6)) * 3).astype(dtype)
    col = rng(4).integers(0, 5, (4, 3))  # repeats: atomics add them up
    got = be.scatter_add(be.from_numpy(x), 1, be.from_numpy(col), be.from_numpy(src))
    np.testing.assert_allclose(host(be, got).astype(np.float64),
                               CPU.scatter_add(x, 1, col, src).astype(np.float64), rtol=1e-3)
    rows = _i(3, 0, 3, 3, 1)
    src = (rng(5).standard_normal((5, 5)) * 3).astype(dtype)
    got = be.index_add(be.from_numpy(x), 0, be.from_numpy(rows), be.from_numpy(src))
    np.testing.assert_allclose(host(be, got).astype(np.float64),
                               CPU.index_add(x, 0, rows, src).astype(np.float64), rtol=1e-3)
    got = be.index_select(be.from_numpy(x), 1, be.from_numpy(_i(4, -1, 0)))
    np.testing.assert_array_equal(host(be, got), CPU.index_select(x, 1, _i(4, -1, 0)))


def test_gather_with_a_smaller_index_reads_the_leading_part(be):
    x = np.arange(20.0).reshape(4, 5)
    idx = np.array([[4, 0], [1, 1]])  # torch.gather: index shorter than x on other dims
    got = host(be, be.gather(be.from_numpy(x), 1, be.from_numpy(idx)))
    np.testing.assert_array_equal(got, np.take_along_axis(x[:2], idx, axis=1))


# ----------------------------------------------------------------------------- movement

@pytest.mark.parametrize("dtype", ["float64", "float16", "int8", "bool"])
def test_pad_flip_cat_tile_tril_triu(be, dtype):
    x = (rng(6).standard_normal((2, 3, 4)) > 0).astype(dtype) if dtype == "bool" else \
        (rng(6).standard_normal((2, 3, 4)) * 4).astype(dtype)
    buf = be.from_numpy(x)
    view = be.permute(buf, (2, 0, 1))  # non-contiguous input
    xv = x.transpose(2, 0, 1)
    checks = [
        (be.pad(view, [(1, 0), (0, 2), (3, 1)], 1), CPU.pad(xv, [(1, 0), (0, 2), (3, 1)], 1)),
        (be.flip(view, (0, 2)), CPU.flip(xv, (0, 2))),
        (be.cat([buf, be.copy(buf), buf], 1), CPU.cat([x, x, x], 1)),
        (be.tile(view, (2, 1, 3)), CPU.tile(xv, (2, 1, 3))),
        (be.tile(buf, (2, 1, 1, 2)), CPU.tile(x, (2, 1, 1, 2))),
        (be.tril(view, -1), CPU.tril(xv, -1)),
        (be.triu(view, 1), CPU.triu(xv, 1)),
    ]
    for got, want in checks:
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_array_equal(host(be, got), want)


# ----------------------------------------------------------------------------- along an axis

def test_cumsum_long_rows_take_the_chunked_scan(be):
    x = rng(7).standard_normal(30_000)
    np.testing.assert_allclose(host(be, be.cumsum(be.from_numpy(x), 0)), np.cumsum(x),
                               rtol=1e-9, atol=1e-9)
    xi = rng(8).integers(-100, 100, (2, 9000)).astype(np.int32)
    got = be.cumsum(be.permute(be.from_numpy(np.ascontiguousarray(xi.T)), (1, 0)), 1)
    np.testing.assert_array_equal(host(be, got), CPU.cumsum(xi, 1))
    xh = rng(9).standard_normal(5000).astype(np.float16)
    np.testing.assert_allclose(host(be, be.cumsum(be.from_numpy(xh), 0)).astype(np.float64),
                               CPU.cumsum(xh, 0).astype(np.float64), rtol=2e-2, atol=0.1)


@pytest.mark.parametrize("dtype", ["float32", "float16", "int64", "uint8", "bool"])
def test_cumsum_short_rows_match_numpy_exactly(be, dtype):
    x = (rng(10).standard_normal((5, 7, 3)) * 5).astype(dtype)
    for axis in range(3):
        got = be.cumsum(be.from_numpy(x), axis)
        want = CPU.cumsum(x, axis)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(host(be, got), want)


@pytest.mark.parametrize("op", ["argmax", "argmin"])
def test_argmax_argmin_long_rows_nan_and_ties(be, op):
    x = rng(11).standard_normal(40_000)
    x[[123, 30_000]] = 9.0 if op == "argmax" else -9.0  # a tie: the first one wins
    for data in (x, np.where(np.arange(x.size) == 25_000, np.nan, x)):
        got = getattr(be, op)(be.from_numpy(data), None, False)
        want = getattr(CPU, op)(data, None, False)
        assert got.shape == () and int(host(be, got)) == int(want)
    m = rng(12).integers(0, 3, (6, 3000)).astype(np.int8)  # many ties
    got = getattr(be, op)(be.from_numpy(m), 1, True)
    np.testing.assert_array_equal(host(be, got), getattr(CPU, op)(m, 1, True))


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("k", [5, 100, 700])
def test_sort_is_stable_with_ties_and_nan(be, descending, k):
    x = rng(13).integers(0, 6, (3, k)).astype(np.float32)
    x[0, ::7] = np.nan
    got = be._argsort(be.from_numpy(x), 1, descending, tile=64)  # tiles + merge passes
    np.testing.assert_array_equal(host(be, got), CPU.sort(x, 1, descending))
    got = be.sort(be.permute(be.from_numpy(x), (1, 0)), 0, descending)
    np.testing.assert_array_equal(host(be, got), CPU.sort(x.T, 0, descending))


def test_sort_one_long_row_default_tile(be):
    x = rng(14).standard_normal(5000)
    x[::3] = 0.25
    np.testing.assert_array_equal(host(be, be.sort(be.from_numpy(x), 0, True)),
                                  CPU.sort(x, 0, True))


@pytest.mark.parametrize("dtype", ["float64", "bfloat16", "int32", "bool"])
def test_sort_and_topk_dtypes(be, dtype):
    dtype = BF16 if dtype == "bfloat16" else np.dtype(dtype)
    x = (rng(15).standard_normal((4, 9)) * 3).astype(dtype)
    for descending in (False, True):
        np.testing.assert_array_equal(host(be, be.sort(be.from_numpy(x), 1, descending)),
                                      CPU.sort(x, 1, descending))
    values = np.take_along_axis(x, host(be, be.topk(be.from_numpy(x), 3, 1, True)), 1)
    np.testing.assert_array_equal(values, np.take_along_axis(x, CPU.topk(x, 3, 1, True), 1))


# ----------------------------------------------------------------------------- creation

@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16", "int64",
                                   "int32", "int8"])
def test_arange_linspace_eye_match_numpy_exactly(be, dtype):
    dtype = BF16 if dtype == "bfloat16" else np.dtype(dtype)
    cases = [(0, 10, 1), (-3, 7, 2), (5, -4, -3)]
    if dtype.kind == "f" or dtype == BF16:
        cases += [(0.1, 7.3, 0.37), (-2.5, 1e3, 3.3), (1.0, 0.0, -0.1)]
    for start, end, step in cases:
        got, want = be.arange(start, end, step, dtype), CPU.arange(start, end, step, dtype)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(host(be, got), want)
    for start, end, steps in [(0, 1, 7), (-3.3, 1e4, 1001), (2, 2, 4), (5, -1, 1), (1, 9, 0)]:
        got, want = be.linspace(start, end, steps, dtype), CPU.linspace(start, end, steps, dtype)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(host(be, got), want)
    np.testing.assert_array_equal(host(be, be.eye(3, 5, dtype)), CPU.eye(3, 5, dtype))
    np.testing.assert_array_equal(host(be, be.eye(4, 2, dtype)), CPU.eye(4, 2, dtype))
