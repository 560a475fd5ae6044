"""matmul, softmax/log_softmax, one_hot, topk, sort/argsort and multinomial against PyTorch
(forward, backward, gradcheck) and, for sampling, against the requested probabilities."""
from __future__ import annotations

import numpy as np
import pytest
from oracle import assert_close, check_parity

import lightgrad as lg
from lightgrad.autograd import gradcheck

torch = pytest.importorskip("torch")


def _rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed + sum(shape)).standard_normal(shape)


# ----------------------------------------------------------------------------- matmul

MATMUL_SHAPES = [
    ("1d_1d", (3,), (3,)),
    ("1d_2d", (3,), (3, 4)),
    ("2d_1d", (4, 3), (3,)),
    ("2d_2d", (2, 3), (3, 4)),
    ("3d_3d", (2, 3, 4), (2, 4, 5)),
    ("broadcast_batch", (2, 1, 3, 4), (5, 4, 2)),
    ("1d_3d", (4,), (2, 4, 3)),
    ("3d_1d", (2, 3, 4), (4,)),
    ("3d_2d", (2, 3, 4), (4, 5)),
    ("2d_3d", (3, 4), (2, 4, 2)),
]
MATMUL_IDS = [c[0] for c in MATMUL_SHAPES]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name, sa, sb", MATMUL_SHAPES, ids=MATMUL_IDS)
def test_matmul_operator_parity(name, sa, sb, dtype):
    check_parity(lambda a, b: a @ b, [_rand(*sa), _rand(*sb, seed=1)], dtype=dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name, sa, sb", MATMUL_SHAPES, ids=MATMUL_IDS)
def test_lg_matmul_parity(name, sa, sb, dtype):
    check_parity(lambda a, b: lg.matmul(a, b), [_rand(*sa), _rand(*sb, seed=1)],
                 lambda a, b: torch.matmul(a, b), dtype=dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_matmul_non_contiguous_parity(dtype):
    check_parity(lambda a, b: a.mT @ b[:, ::2], [_rand(2, 4, 3), _rand(4, 10, seed=1)],
                 dtype=dtype)


@pytest.mark.parametrize("name, sa, sb", MATMUL_SHAPES, ids=MATMUL_IDS)
def test_matmul_gradcheck(name, sa, sb):
    a = lg.tensor(_rand(*sa), requires_grad=True)
    b = lg.tensor(_rand(*sb, seed=1), requires_grad=True)
    assert gradcheck(lambda a, b: a @ b, [a, b])


def test_matmul_errors():
    with pytest.raises(RuntimeError, match=r"matmul: shapes \(4, 3\) and \(4, 5\) do not "
                                           r"align: 3 != 4"):
        lg.zeros(4, 3) @ lg.zeros(4, 5)
    with pytest.raises(RuntimeError, match=r"matmul: shapes \(3,\) and \(4,\) do not align"):
        lg.zeros(3) @ lg.zeros(4)
    with pytest.raises(RuntimeError, match="matmul: both arguments need at least 1 dim"):
        lg.tensor(2.0) @ lg.zeros(3)
    with pytest.raises(RuntimeError, match=r"matmul: batch dims of shapes \(2, 3, 4\) and "
                                           r"\(3, 4, 5\) do not broadcast"):
        lg.zeros(2, 3, 4) @ lg.zeros(3, 4, 5)
    with pytest.raises(TypeError, match="matmul: expected a Tensor, got list"):
        lg.zeros(2, 2).matmul([[1.0, 0.0], [0.0, 1.0]])


# ----------------------------------------------------------------------------- softmax

SOFTMAX_CASES = [((5,), 0), ((3, 4), 1), ((3, 4), 0), ((2, 3, 4), -1), ((2, 3, 4), 1),
                 ((2, 3, 4), -3)]


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape, dim", SOFTMAX_CASES)
def test_softmax_parity(op, dtype, shape, dim):
    check_parity(lambda x: getattr(x, op)(dim), [_rand(*shape)], dtype=dtype)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_free_function_parity(op):
    check_parity(lambda x: getattr(lg, op)(x, dim=1), [_rand(2, 3)],
                 lambda x: getattr(torch, op)(x, dim=1))


LARGE = np.array([[1e4, 1e4 - 1.0, 0.0, -1e4], [-1e4, -1e4 + 2.0, -1e4 + 0.5, -1e4],
                  [3e4, -3e4, 1e4, 2e4]])


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("dim", [0, 1])
def test_softmax_large_inputs_are_stable(op, dtype, dim):
    check_parity(lambda x: getattr(x, op)(dim), [LARGE], dtype=dtype)
    out = getattr(lg.tensor(LARGE).to(dtype), op)(dim)
    assert np.isfinite(out.numpy()).all() if op == "softmax" else \
        not np.isnan(out.numpy()).any()


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape, dim", SOFTMAX_CASES)
def test_softmax_gradcheck(op, shape, dim):
    x = lg.tensor(_rand(*shape), requires_grad=True)
    assert gradcheck(lambda t: getattr(t, op)(dim), [x])


def test_softmax_non_contiguous_and_second_order():
    check_parity(lambda x: x.mT.softmax(-1), [_rand(3, 4)])

    def first_derivative(t: lg.Tensor) -> lg.Tensor:
        with lg.enable_grad():  # gradcheck's finite differences run under no_grad
            return lg.autograd.grad((t.log_softmax(1) ** 2).sum(), t, create_graph=True)[0]
    assert gradcheck(first_derivative, [lg.tensor(_rand(2, 3), requires_grad=True)])


def test_softmax_errors():
    with pytest.raises(IndexError, match=r"softmax: dim 2 is out of range for a tensor of "
                                          r"shape \(2, 3\)"):
        lg.zeros(2, 3).softmax(2)
    with pytest.raises(IndexError, match="log_softmax: dim -3 is out of range"):
        lg.zeros(2, 3).log_softmax(-3)


# ----------------------------------------------------------------------------- one_hot


@pytest.mark.parametrize("values, classes", [([0, 2, 1, 2], 3), ([0, 2, 1, 2], 5),
                                             ([[1, 0], [3, 3]], -1), ([4], -1)])
def test_one_hot_parity(values, classes):
    t = np.array(values)
    assert_close(lg.one_hot(lg.tensor(t), classes),
                 torch.nn.functional.one_hot(torch.tensor(t), classes))


def test_one_hot_errors():
    with pytest.raises(TypeError, match="one_hot: expects an integer tensor, got .*float32"):
        lg.one_hot(lg.tensor([0.0, 1.0]), 2)
    with pytest.raises(RuntimeError, match="one_hot: class values must be non-negative"):
        lg.one_hot(lg.tensor([0, -1]), 2)
    with pytest.raises(RuntimeError, match="one_hot: class value 3 is too large for "
                                           "num_classes=3"):
        lg.one_hot(lg.tensor([0, 3]), 3)


# ----------------------------------------------------------------------------- topk / sort

TOPK_CASES = [((6,), 2, -1, True), ((6,), 6, 0, False), ((3, 5), 2, -1, True),
              ((3, 5), 3, 1, False), ((4, 3), 1, 0, True), ((2, 4, 3), 2, 1, False),
              ((2, 4, 3), 3, -1, True)]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape, k, dim, largest", TOPK_CASES)
def test_topk_parity(shape, k, dim, largest, dtype):
    check_parity(lambda x: tuple(x.topk(k, dim=dim, largest=largest)), [_rand(*shape)],
                 dtype=dtype)


@pytest.mark.parametrize("shape, k, dim, largest", TOPK_CASES)
def test_topk_gradcheck(shape, k, dim, largest):
    x = lg.tensor(_rand(*shape), requires_grad=True)
    assert gradcheck(lambda t: t.topk(k, dim, largest).values, [x])


def test_topk_of_non_contiguous_and_errors():
    check_parity(lambda x: tuple(x.mT.topk(2)), [_rand(4, 3)])
    with pytest.raises(RuntimeError, match=r"topk: k=4 is out of range for dim -1 of size 3"):
        lg.zeros(2, 3).topk(4)
    with pytest.raises(IndexError, match="topk: dim 2 is out of range"):
        lg.zeros(2, 3).topk(1, dim=2)


SORT_CASES = [((6,), -1, False), ((6,), 0, True), ((3, 5), 1, False), ((3, 5), 0, True),
              ((2, 3, 4), -2, True)]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape, dim, descending", SORT_CASES)
def test_sort_parity(shape, dim, descending, dtype):
    check_parity(lambda x: tuple(x.sort(dim=dim, descending=descending)), [_rand(*shape)],
                 dtype=dtype)
    check_parity(lambda x: x.argsort(dim=dim, descending=descending), [_rand(*shape)],
                 dtype=dtype, grad=False)
    check_parity(lambda x: lg.argsort(x, dim, descending), [_rand(*shape)],
                 lambda x: torch.argsort(x, dim=dim, descending=descending), dtype=dtype,
                 grad=False)


@pytest.mark.parametrize("shape, dim, descending", SORT_CASES)
def test_sort_gradcheck(shape, dim, descending):
    x = lg.tensor(_rand(*shape), requires_grad=True)
    assert gradcheck(lambda t: t.sort(dim, descending).values, [x])


@pytest.mark.parametrize("descending", [False, True])
def test_sort_with_ties_is_stable_like_torch_stable(descending):
    data = np.array([[3, 1, 3, 2, 1, 3], [0, 0, 5, 5, 0, 1]])
    ours = lg.tensor(data).sort(dim=1, descending=descending)
    theirs = torch.tensor(data).sort(dim=1, descending=descending, stable=True)
    assert_close(ours.values, theirs.values)
    assert_close(ours.indices, theirs.indices)


# ----------------------------------------------------------------------------- multinomial


def test_multinomial_shape_and_dtype():
    p = lg.tensor([0.1, 0.2, 0.3, 0.4])
    draws = p.multinomial(7, replacement=True)
    assert draws.shape == (7,) and draws.dtype is lg.int64
    rows = lg.tensor([[1.0, 2.0, 3.0], [0.0, 5.0, 1.0]])
    draws = rows.multinomial(2)
    assert draws.shape == (2, 2) and draws.dtype is lg.int64
    assert not draws.requires_grad
    assert lg.multinomial(rows, 3, replacement=True).shape == (2, 3)


def test_multinomial_without_replacement_gives_distinct_indices():
    p = lg.tensor(np.random.default_rng(0).random((20, 6)) + 0.01)
    draws = p.multinomial(6).numpy()
    for row in draws:
        assert sorted(row.tolist()) == list(range(6))
    some = p.multinomial(4).numpy()
    assert all(len(set(row.tolist())) == 4 for row in some)


def test_multinomial_never_draws_zero_probability():
    p = lg.tensor([[0.0, 1.0, 0.0, 2.0], [3.0, 0.0, 0.0, 0.0]])
    with_repl = p.multinomial(200, replacement=True).numpy()
    assert set(with_repl[0].tolist()) <= {1, 3} and set(with_repl[1].tolist()) == {0}
    assert sorted(p[0].multinomial(2).tolist()) == [1, 3]


def test_multinomial_seeded_reproducibility():
    p = lg.tensor([0.1, 0.2, 0.3, 0.4])
    lg.manual_seed(123)
    first = p.multinomial(50, replacement=True).tolist()
    first_no = p.multinomial(4).tolist()
    lg.manual_seed(123)
    assert p.multinomial(50, replacement=True).tolist() == first
    assert p.multinomial(4).tolist() == first_no
    lg.manual_seed(124)
    assert p.multinomial(50, replacement=True).tolist() != first


@pytest.mark.parametrize("dtype", [lg.float32, lg.float64])
def test_multinomial_frequencies_match_probabilities(dtype):
    weights = np.array([1.0, 2.0, 3.0, 4.0, 0.5])  # unnormalised on purpose
    n = 20000
    draws = lg.tensor(weights, dtype=dtype).multinomial(n, replacement=True).numpy()
    freq = np.bincount(draws, minlength=5) / n
    expected = weights / weights.sum()
    # 6 standard deviations of a binomial proportion: fails by chance ~1e-9 of the time.
    np.testing.assert_allclose(freq, expected, atol=6 * np.sqrt(0.25 / n))


def test_multinomial_first_draw_without_replacement_follows_probabilities():
    weights = lg.tensor([[1.0, 3.0, 6.0]]).expand(4000, 3)
    first = weights.multinomial(2)[:, 0].numpy()
    freq = np.bincount(first, minlength=3) / 4000
    np.testing.assert_allclose(freq, [0.1, 0.3, 0.6], atol=6 * np.sqrt(0.25 / 4000))


def test_multinomial_errors():
    with pytest.raises(RuntimeError, match="multinomial: probabilities must be non-negative"):
        lg.tensor([0.5, -0.1, 0.6]).multinomial(1)
    with pytest.raises(RuntimeError, match="non-negative and finite"):
        lg.tensor([0.5, float("nan")]).multinomial(1)
    with pytest.raises(RuntimeError, match=r"multinomial: cannot draw 4 samples without "
                                           r"replacement from 3 categories"):
        lg.tensor([0.2, 0.3, 0.5]).multinomial(4)
    with pytest.raises(RuntimeError, match="multinomial: each row of probabilities must have "
                                           "a positive sum"):
        lg.tensor([[0.2, 0.8], [0.0, 0.0]]).multinomial(1)
    with pytest.raises(RuntimeError, match=r"multinomial: probabilities must be 1-D or 2-D, "
                                           r"got shape \(2, 2, 2\)"):
        lg.ones(2, 2, 2).multinomial(1)
