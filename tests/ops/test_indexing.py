"""Indexing against PyTorch and NumPy: basic and advanced ``x[...]`` forward and backward,
``x[...] = value`` (also in grad mode), and hypothesis property tests for basic indexing and
movement ops."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import assert_close, check_parity

import lightgrad as lg
from lightgrad.autograd import gradcheck

torch = pytest.importorskip("torch")


def _rand(*shape: int) -> np.ndarray:
    return np.random.default_rng(sum(shape) + len(shape)).standard_normal(shape)


def _i(*values: Any) -> np.ndarray:
    return np.array(values, dtype=np.int64)


# (id, fn(x, *extra), arrays): arrays[0] is x, the rest are index tensors (int or bool).
GET_CASES: list[tuple[str, Callable[..., Any], list[np.ndarray]]] = [
    ("slice_step", lambda x: x[1:, ::2], [_rand(3, 5)]),
    ("slice_neg_start", lambda x: x[-2:, 1:-1], [_rand(3, 5)]),
    ("slice_step_int", lambda x: x[::3, -1], [_rand(7, 4)]),
    ("slice_past_end", lambda x: x[1:100, -100:2], [_rand(3, 5)]),
    ("slice_empty", lambda x: x[5:, 2:1], [_rand(3, 5)]),
    ("only_slice", lambda x: x[1::2], [_rand(5, 2)]),
    ("int", lambda x: x[1], [_rand(3, 4)]),
    ("int_neg", lambda x: x[-1], [_rand(3, 4)]),
    ("int_neg_dim1", lambda x: x[:, -2], [_rand(3, 4)]),
    ("none", lambda x: x[None], [_rand(3, 4)]),
    ("none_mid", lambda x: x[:, None, 1:], [_rand(3, 4)]),
    ("ellipsis", lambda x: x[..., 1], [_rand(2, 3, 4)]),
    ("ellipsis_none", lambda x: x[..., None], [_rand(2, 3)]),
    ("int_ellipsis_int", lambda x: x[1, ..., -1], [_rand(2, 3, 4)]),
    ("ellipsis_slice", lambda x: x[0, ..., 1:3, None], [_rand(2, 3, 4)]),
    ("scalar_3d", lambda x: x[0, 1, 2], [_rand(2, 3, 4)]),
    ("scalar_neg", lambda x: x[-1, -1], [_rand(3, 4)]),
    ("scalar_1d", lambda x: x[-2], [_rand(5)]),
    ("list", lambda x: x[[0, 2, 0]], [_rand(3, 4)]),
    ("list_neg", lambda x: x[[-1, 0, -1, -1]], [_rand(3, 4)]),
    ("list_dim1", lambda x: x[:, [3, 3, 0]], [_rand(3, 4)]),
    ("tensor_1d", lambda x, i: x[i], [_rand(4, 3), _i(3, 1, 3, 3)]),
    ("tensor_2d", lambda x, i: x[i], [_rand(4, 3), _i([0, 1], [1, 0], [3, 0])]),
    ("tensor_0d", lambda x, i: x[i], [_rand(4, 3), np.array(2)]),
    ("two_tensors", lambda x, i, j: x[i, j], [_rand(3, 4), _i(0, 2, 0), _i(1, 1, 1)]),
    ("broadcast_tensors", lambda x, i, j: x[i, j], [_rand(3, 4), _i([0], [2]), _i(3, 0, 3)]),
    ("tensors_scalar", lambda x, i, j: x[i, j], [_rand(3, 4), np.array(1), np.array(-1)]),
    ("mask_full", lambda x, m: x[m], [_rand(3, 4), _rand(3, 4) > 0]),
    ("mask_rows", lambda x, m: x[m], [_rand(4, 3), np.array([True, False, True, True])]),
    ("mask_cols", lambda x, m: x[:, m], [_rand(2, 3), np.array([False, True, True])]),
    ("mask_2of3", lambda x, m: x[m], [_rand(2, 3, 2), _rand(2, 3) > 0]),
    ("mask_none", lambda x, m: x[m], [_rand(3, 2), np.zeros(3, dtype=bool)]),
    ("mask_then_slice", lambda x, m: x[m, 1:], [_rand(3, 4), np.array([True, False, True])]),
    ("slice_list", lambda x: x[1:, [0, 2]], [_rand(3, 4)]),
    ("list_slice_list", lambda x: x[[0, 1], :, [1, 2]], [_rand(2, 3, 4)]),
    ("ellipsis_list", lambda x: x[..., [0, 0]], [_rand(2, 3, 4)]),
    ("none_list", lambda x: x[None, [1, 2]], [_rand(3, 4)]),
    ("int_list", lambda x: x[1, [0, 2, 2]], [_rand(3, 4)]),
    ("list_slice_none", lambda x: x[[0, 2], 1:, None], [_rand(3, 4)]),
    ("tensor_int_slice", lambda x, i: x[i, 0, ::2], [_rand(3, 2, 4), _i([2, 2], [0, 1])]),
    ("non_contiguous_base", lambda x, i: x.mT[i, 1:], [_rand(3, 4), _i(0, 3, 0)]),
    ("chained", lambda x: x[1:][:, [0, 0]][0], [_rand(3, 4)]),
]
GET_IDS = [c[0] for c in GET_CASES]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name, fn, arrays", GET_CASES, ids=GET_IDS)
def test_getitem_parity(name, fn, arrays, dtype):
    check_parity(fn, arrays, dtype=dtype)


@pytest.mark.parametrize("name, fn, arrays", GET_CASES, ids=GET_IDS)
def test_getitem_gradcheck(name, fn, arrays):
    x = lg.tensor(arrays[0], requires_grad=True)
    rest = [lg.tensor(a) for a in arrays[1:]]
    assert gradcheck(lambda t: fn(t, *rest), [x])


def test_repeated_indices_accumulate_gradient():
    x = lg.zeros(3, requires_grad=True)
    x[[0, 2, 0, 0]].sum().backward()
    tx = torch.zeros(3, requires_grad=True)
    tx[[0, 2, 0, 0]].sum().backward()
    assert_close(x.grad, tx.grad, "float32")
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 0.0, 1.0])


def test_basic_index_is_a_view_advanced_is_a_copy():
    arr = np.arange(6.0).reshape(2, 3)
    x = lg.from_numpy(arr)
    view, copy = x[:, 1:], x[:, [1, 2]]
    arr[0, 1] = 100.0
    assert view[0, 0].item() == 100.0 and copy[0, 0].item() == 1.0


def test_zero_dim_index_result():
    x = lg.tensor(_rand(2, 3), requires_grad=True)
    y = x[1, -1]
    assert y.shape == () and y.ndim == 0
    assert y.item() == _rand(2, 3)[1, -1]
    y.backward()
    expected = np.zeros((2, 3))
    expected[1, -1] = 1.0
    np.testing.assert_array_equal(x.grad.numpy(), expected)


# ----------------------------------------------------------------------------- setitem


def _convert(index: Any, make: Callable[[np.ndarray], Any]) -> Any:
    """``index`` with every NumPy array in it turned into a tensor by ``make``."""
    if isinstance(index, tuple):
        return tuple(_convert(i, make) for i in index)
    return make(index) if isinstance(index, np.ndarray) else index


def _lgify(index: Any) -> Any:
    return _convert(index, lg.tensor)


def _torchify(index: Any) -> Any:
    return _convert(index, torch.tensor)


def _set(index: Any, value: Any) -> Callable[[Any], Any]:
    def run(x: Any) -> Any:
        x[index] = value
        return x
    return run


SET_CASES = [
    ("scalar_int", 0, 5.0),
    ("scalar_slice", (slice(None), slice(1, None, 2)), -1.5),
    ("scalar_ellipsis", (Ellipsis, 0), 2.0),
    ("tensor_row", 1, np.array([1.0, 2.0, 3.0, 4.0])),
    ("broadcast_row", slice(1, None), np.array([1.0, 2.0, 3.0, 4.0])),
    ("broadcast_col", (slice(None), slice(0, 2)), np.array([[7.0], [8.0], [9.0]])),
    ("zero_dim_tensor", (1, 2), np.array(6.5)),
    ("list_rows", [0, 2], np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])),
    ("list_scalar", ([0, 2], [3, 1]), 0.25),
    ("neg_ints", (-1, -1), 3.0),
    ("list_broadcast", (slice(None), [0, 3]), np.array([10.0, 20.0])),
    ("mask", np.array([[True, False, True, False]] * 3), 0.0),
    ("mask_rows_tensor", np.array([True, False, True]), np.array([1.0, 1.0, 2.0, 2.0])),
]


@pytest.mark.parametrize("name, index, value", SET_CASES, ids=[c[0] for c in SET_CASES])
def test_setitem_parity(name, index, value):
    base = _rand(3, 4)
    x, tx = lg.tensor(base), torch.tensor(base)
    lg_index, th_index = _lgify(index), _torchify(index)
    lg_value = lg.tensor(value) if isinstance(value, np.ndarray) else value
    th_value = torch.tensor(value) if isinstance(value, np.ndarray) else value
    _set(lg_index, lg_value)(x)
    _set(th_index, th_value)(tx)
    assert_close(x, tx)


def test_setitem_casts_to_target_dtype():
    x, tx = lg.zeros(3, dtype=lg.int64), torch.zeros(3, dtype=torch.int64)
    x[0], tx[0] = 2.7, 2.7
    x[1:], tx[1:] = lg.tensor([1.9, -1.9]), torch.tensor([1.9, -1.9])
    assert_close(x, tx)
    y, ty = lg.zeros(2), torch.zeros(2)
    y[0], ty[0] = lg.tensor(3, dtype=lg.int64), torch.tensor(3)
    assert_close(y, ty, "float32")


# Setitem in grad mode on a non-leaf: the gradient reaches both the base and the value.
GRAD_SET_CASES = [
    ("slice", (slice(1, None), slice(None, None, 2)), (2, 2)),
    ("int", 1, (4,)),
    ("broadcast", (slice(None), slice(1, 3)), (2,)),
    ("list", ([0, 2],), (2, 4)),
    ("list_pairs", ([0, 2, 1], [3, 0, 0]), (3,)),
    ("mask", (np.array([True, False, True]),), (4,)),
    ("ellipsis_none", (Ellipsis, 0, None), (3, 1)),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name, index, vshape", GRAD_SET_CASES,
                         ids=[c[0] for c in GRAD_SET_CASES])
def test_setitem_grad_mode_non_leaf(name, index, vshape, dtype):
    def fn(index: Any) -> Callable[..., Any]:
        def run(b: Any, v: Any) -> Any:
            y = b * 2.0
            y[index] = v.exp()
            return y * y
        return run
    check_parity(fn(_lgify(index)), [_rand(3, 4), _rand(*vshape)], fn(_torchify(index)),
                 dtype)


@pytest.mark.parametrize("name, index, vshape", GRAD_SET_CASES,
                         ids=[c[0] for c in GRAD_SET_CASES])
def test_setitem_grad_mode_gradcheck(name, index, vshape):
    def run(b: lg.Tensor, v: lg.Tensor) -> lg.Tensor:
        y = b * 2.0
        y[_lgify(index)] = v.exp()
        return y * y
    b = lg.tensor(_rand(3, 4), requires_grad=True)
    v = lg.tensor(_rand(*vshape), requires_grad=True)
    assert gradcheck(run, [b, v])


def test_setitem_value_with_grad_into_plain_tensor():
    def run(b: Any, v: Any) -> Any:
        y = b.detach().clone()
        y[[0, 2]] = v * 3.0
        return y
    check_parity(run, [_rand(3, 4), _rand(2, 4)])


def test_augmented_setitem_on_non_leaf():
    def run(b: Any, v: Any) -> Any:
        y = b * 1.0
        y[1:, [0, 2]] += v
        y[0] *= 2.0
        return y.sin()
    check_parity(run, [_rand(3, 4), _rand(2, 2)])


def test_setitem_on_view_of_non_leaf_reaches_base_grad():
    def run(b: Any, v: Any) -> Any:
        y = b * 1.0
        y.T[1:, 0] = v
        return y.sin()
    check_parity(run, [_rand(3, 4), _rand(3)])


def test_inplace_on_view_reaches_base_and_the_view():
    def run(b: Any, v: Any) -> Any:
        y = b * 2.0
        row = y[1]
        row.mul_(v)            # writes through the view into y
        return y.exp().sum() + (row * row).sum()
    check_parity(run, [_rand(3, 4), _rand(4)])


def test_inplace_on_view_of_leaf_requiring_grad_is_an_error():
    x = lg.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        x[0].add_(1.0)


def test_setitem_on_leaf_requiring_grad_is_an_error():
    x = lg.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="setitem: a leaf tensor that requires grad"):
        x[0] = 1.0
    with lg.no_grad():
        x[0] = 1.0
    assert x.tolist() == [1.0, 0.0, 0.0]


# ----------------------------------------------------------------------------- errors


def test_index_errors():
    x = lg.zeros(2, 3)
    with pytest.raises(IndexError, match=r"too many indices for a tensor of shape \(2, 3\)"):
        x[0, 0, 0]
    with pytest.raises(IndexError, match=r"index 3 is out of range for dim 1 with size 3"):
        x[0, 3]
    with pytest.raises(IndexError, match=r"index -3 is out of range for dim 0 with size 2"):
        x[-3]
    with pytest.raises(IndexError, match="index 5 is out of range for dim 1"):
        x[:, [0, 5]]
    with pytest.raises(IndexError, match="integer or bool, got float32"):
        x[lg.tensor([0.0])]
    with pytest.raises(IndexError, match=r"bool mask of shape \(3,\) does not match"):
        x[lg.tensor([True, False, True])]
    with pytest.raises(ValueError, match="slice step must be positive, got -1"):
        x[::-1]
    with pytest.raises(IndexError, match="single ellipsis"):
        x[..., ...]
    with pytest.raises(IndexError, match="unsupported index of type str"):
        x["a"]
    with pytest.raises(IndexError, match="lists used as indices must hold ints or bools"):
        x[[0.5]]


def test_setitem_errors():
    x = lg.zeros(2, 3)
    with pytest.raises(RuntimeError):
        x[0] = lg.ones(4)
    with pytest.raises(IndexError, match="out of range"):
        x[2] = 1.0
    with pytest.raises(TypeError, match="expected a number"):
        x[0] = "a"


# ----------------------------------------------------------------------------- properties

HYP = settings(max_examples=60, deadline=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture])


def _basic_item(draw: Any, n: int) -> Any:
    """An int, a slice or a full slice for a dim of size ``n``."""
    kind = draw(st.sampled_from(["int", "slice", "full"]))
    if kind == "int":
        return draw(st.integers(-n, n - 1))
    if kind == "slice":
        bound = st.none() | st.integers(-n - 2, n + 2)
        return slice(draw(bound), draw(bound), draw(st.none() | st.integers(1, 3)))
    return slice(None)


@st.composite
def shape_and_index(draw: Any) -> tuple[tuple[int, ...], tuple]:
    """A shape and a basic index for it: items for leading dims, optionally ``...`` and items
    for trailing dims, with up to two ``None`` anywhere."""
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    n_lead = draw(st.integers(0, len(shape)))
    items: list[Any] = [_basic_item(draw, n) for n in shape[:n_lead]]
    if draw(st.booleans()):
        n_tail = draw(st.integers(0, len(shape) - n_lead))
        items.append(Ellipsis)
        items += [_basic_item(draw, n) for n in shape[len(shape) - n_tail:]]
    for _ in range(draw(st.integers(0, 2))):
        items.insert(draw(st.integers(0, len(items))), None)
    return shape, tuple(items)


@HYP
@given(shape_and_index(), st.booleans())
def test_property_basic_indexing_matches_numpy(case, transposed):
    shape, index = case
    arr = np.random.default_rng(len(shape)).standard_normal(shape)
    if transposed:  # a non-contiguous base with the same shape
        arr = np.ascontiguousarray(arr.T).T
    x = lg.tensor(arr, requires_grad=True)
    out = x[index]
    expected = arr[index]
    assert out.shape == expected.shape
    np.testing.assert_array_equal(out.detach().numpy(), expected)
    w = np.random.default_rng(0).standard_normal(expected.shape)
    (out * lg.tensor(w)).sum().backward()
    grad = np.zeros(shape)
    grad[index] += w  # basic indexing never repeats an element
    np.testing.assert_allclose(x.grad.numpy(), grad, rtol=1e-12, atol=0)


@st.composite
def movement_case(draw: Any) -> tuple[tuple[int, ...], tuple[int, ...], list[int], tuple]:
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    perm = draw(st.permutations(range(len(shape))))
    numel = int(np.prod(shape))
    divisors = [d for d in range(1, numel + 1) if numel % d == 0]
    first = draw(st.sampled_from(divisors))
    new_shape = (first, -1) if draw(st.booleans()) else (-1, first)
    flips = tuple(sorted(set(draw(st.lists(st.integers(0, 1), max_size=2)))))
    return shape, new_shape, list(perm), flips


@HYP
@given(movement_case())
def test_property_movement_ops_match_numpy(case):
    shape, new_shape, perm, flips = case
    arr = np.random.default_rng(len(shape)).standard_normal(shape)
    x = lg.tensor(arr, requires_grad=True)
    out = x.permute(*perm).reshape(*new_shape).flip(flips)
    expected = np.flip(np.transpose(arr, perm).reshape(new_shape), flips)
    assert out.shape == expected.shape
    np.testing.assert_array_equal(out.detach().numpy(), expected)
    w = np.random.default_rng(1).standard_normal(expected.shape)
    (out * lg.tensor(w)).sum().backward()
    inverse = np.argsort(perm)
    grad = np.transpose(np.flip(w, flips).reshape(np.transpose(arr, perm).shape), inverse)
    np.testing.assert_allclose(x.grad.numpy(), grad, rtol=1e-12, atol=0)
