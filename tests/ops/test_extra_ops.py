"""Extra PyTorch names against PyTorch: mm/bmm/mv/outer/addmm/baddbmm, einsum, floor_divide,
remainder, fmod, new_* factories, device flags, ``__format__`` and ``inference_mode``."""
from __future__ import annotations

import numpy as np
import pytest
from oracle import assert_close, check_parity

import lightgrad as lg

torch = pytest.importorskip("torch")


def _r(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


# ----------------------------------------------------------------------------- products
PRODUCTS = {
    "mm": (lambda a, b: lg.mm(a, b), torch.mm, [(2, 3), (3, 4)]),
    "mm_method": (lambda a, b: a.mm(b), lambda a, b: a.mm(b), [(2, 3), (3, 4)]),
    "bmm": (lambda a, b: lg.bmm(a, b), torch.bmm, [(2, 2, 3), (2, 3, 4)]),
    "bmm_method": (lambda a, b: a.bmm(b), lambda a, b: a.bmm(b), [(2, 2, 3), (2, 3, 4)]),
    "mv": (lambda a, b: lg.mv(a, b), torch.mv, [(2, 3), (3,)]),
    "mv_method": (lambda a, b: a.mv(b), lambda a, b: a.mv(b), [(2, 3), (3,)]),
    "outer": (lambda a, b: lg.outer(a, b), torch.outer, [(2,), (3,)]),
    "outer_method": (lambda a, b: a.outer(b), lambda a, b: a.outer(b), [(2,), (3,)]),
}


@pytest.mark.parametrize("name", PRODUCTS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_products_parity(name, dtype):
    ours, theirs, shapes = PRODUCTS[name]
    check_parity(ours, [_r(*s, seed=i) for i, s in enumerate(shapes)], theirs, dtype=dtype)


@pytest.mark.parametrize("beta,alpha", [(1, 1), (0.5, 2.0), (0, 1)])
def test_addmm_baddbmm_parity(beta, alpha):
    check_parity(lambda i, a, b: lg.addmm(i, a, b, beta=beta, alpha=alpha),
                 [_r(3), _r(2, 4, seed=1), _r(4, 3, seed=2)],
                 lambda i, a, b: torch.addmm(i, a, b, beta=beta, alpha=alpha))
    check_parity(lambda i, a, b: i.baddbmm(a, b, beta=beta, alpha=alpha),
                 [_r(2, 1, 3), _r(2, 2, 4, seed=1), _r(2, 4, 3, seed=2)],
                 lambda i, a, b: i.baddbmm(a, b, beta=beta, alpha=alpha))


def test_addmm_beta_zero_ignores_nan():
    out = lg.addmm(lg.full((2, 2), float("nan")), lg.ones(2, 3), lg.ones(3, 2), beta=0)
    assert out.tolist() == [[3.0, 3.0], [3.0, 3.0]]


def test_products_gradcheck():
    a = lg.tensor(_r(2, 3), requires_grad=True)
    b = lg.tensor(_r(3, 2, seed=1), requires_grad=True)
    i = lg.tensor(_r(2), requires_grad=True)
    assert lg.autograd.gradcheck(lambda i, a, b: lg.addmm(i, a, b, beta=0.5, alpha=2),
                                 [i, a, b])
    v = lg.tensor(_r(3, seed=2), requires_grad=True)
    assert lg.autograd.gradcheck(lambda a, v: lg.outer(lg.mv(a, v), v), [a, v])


@pytest.mark.parametrize("fn,a,b,match", [
    (lg.mm, (2, 3), (4, 2), "mm: shapes"),
    (lg.mm, (2, 3, 1), (1, 2), "mm: expected a 2-D and a 2-D"),
    (lg.bmm, (2, 3), (3, 2), "bmm: expected a 3-D"),
    (lg.bmm, (2, 2, 3), (3, 3, 2), "bmm: batch sizes differ"),
    (lg.bmm, (2, 2, 3), (2, 2, 2), "bmm: shapes"),
    (lg.mv, (2, 3), (2, 3), "mv: expected a 2-D and a 1-D"),
    (lg.mv, (2, 3), (2,), "mv: shapes"),
    (lg.outer, (2, 1), (2,), "outer: expected two 1-D"),
])
def test_product_errors(fn, a, b, match):
    with pytest.raises(RuntimeError, match=match):
        fn(lg.ones(*a), lg.ones(*b))


def test_product_dtype_and_input_errors():
    with pytest.raises(RuntimeError, match="same dtype"):
        lg.mm(lg.ones(2, 2), lg.ones(2, 2, dtype=lg.float64))
    with pytest.raises(RuntimeError, match="addmm: input of shape"):
        lg.addmm(lg.ones(3, 3), lg.ones(2, 2), lg.ones(2, 2))
    with pytest.raises(TypeError, match="mm: expected Tensors"):
        lg.mm(lg.ones(2, 2), [[1.0]])


# ----------------------------------------------------------------------------- einsum
EINSUM = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 3), (3, 4)]),
    ("bij,bjk->bik", [(2, 2, 3), (2, 3, 4)]),
    ("ii", [(3, 3)]),
    ("ii->i", [(3, 3)]),
    ("iij,jk->ik", [(2, 2, 3), (3, 4)]),
    ("iji->j", [(2, 3, 2)]),
    ("...i,i", [(2, 3), (3,)]),
    ("b...i,b...j->b...ij", [(2, 3, 4), (2, 1, 5)]),
    ("...ij->ij", [(2, 2, 3)]),
    ("a...,...a", [(2, 3), (3, 2)]),
    ("i,j->ij", [(2,), (3,)]),
    ("ij->", [(2, 3)]),
    ("ij -> ji", [(2, 3)]),
    ("Ba,b", [(2, 3), (4,)]),
    ("ij,ij->ij", [(2, 1), (2, 4)]),
    ("ijk,jl,lk->i", [(2, 3, 4), (3, 2), (2, 4)]),
    ("ij,j,jk->ik", [(2, 3), (3,), (3, 4)]),
    ("i,i", [(3,), (3,)]),
    ("ij,kl->", [(2, 3), (2, 2)]),
]


@pytest.mark.parametrize("eq,shapes", EINSUM)
def test_einsum_parity(eq, shapes):
    check_parity(lambda *ts: lg.einsum(eq, *ts), [_r(*s, seed=i) for i, s in enumerate(shapes)],
                 lambda *ts: torch.einsum(eq, *ts))


def test_einsum_list_float32_and_gradcheck():
    check_parity(lambda a, b: lg.einsum("ij,jk", [a, b]), [_r(2, 3), _r(3, 2, seed=1)],
                 lambda a, b: torch.einsum("ij,jk", [a, b]), dtype="float32")
    a = lg.tensor(_r(2, 2, 3), requires_grad=True)
    b = lg.tensor(_r(3, 2, seed=1), requires_grad=True)
    assert lg.autograd.gradcheck(lambda a, b: lg.einsum("iij,jk->ki", a, b), [a, b])


@pytest.mark.parametrize("eq,shapes,match", [
    ("ij,jk", [(2, 3)], "2 input subscripts but 1 operands"),
    ("ij", [(2, 3, 4)], "operand 0 has 3 dims"),
    ("ij,jk", [(2, 3), (4, 5)], "subscript 'j' has size"),
    ("i1", [(2, 3)], "invalid subscript '1'"),
    ("ij->k", [(2, 3)], "'k' does not appear"),
    ("ij->ii", [(2, 3)], "more than once"),
    ("ii", [(2, 3)], "subscript 'i' has size"),
    ("ii", [(1, 3)], "different sizes"),
    ("....i", [(2, 3)], "at most once"),
])
def test_einsum_errors(eq, shapes, match):
    with pytest.raises(ValueError, match=match):
        lg.einsum(eq, *[lg.ones(*s) for s in shapes])


# ----------------------------------------------------------------------------- division
DIVISION = {
    "floordiv_op": (lambda a, b: a // b, False),
    "floor_divide": (lambda a, b: lg.floor_divide(a, b), False),
    "remainder_op": (lambda a, b: a % b, True),
    "remainder": (lambda a, b: lg.remainder(a, b), True),
    "remainder_method": (lambda a, b: a.remainder(b), True),
    "fmod": (lambda a, b: lg.fmod(a, b), True),
    "fmod_method": (lambda a, b: a.fmod(b), True),
}
_TORCH_DIV = {"floor_divide": torch.floor_divide, "remainder": torch.remainder,
              "fmod": torch.fmod}


def _torch_div(name):
    if name.endswith("_op"):
        return DIVISION[name][0]
    return _TORCH_DIV[name.replace("_method", "")]


def _dividends():
    # values away from exact multiples, divisors of both signs away from 0
    a = np.array([[5.3, -5.3, 2.7], [-0.4, 7.9, -8.6]])
    b = np.array([[2.0, 2.0, -1.5], [-3.1, -2.2, 1.7]])
    return a, b


@pytest.mark.parametrize("name", DIVISION)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_division_float_parity(name, dtype):
    ours, differentiable = DIVISION[name]
    a, b = _dividends()
    theirs = _torch_div(name)
    check_parity(ours, [a, b], theirs, dtype=dtype, grad=differentiable)
    check_parity(lambda x: ours(x, 2.5), [a], lambda x: theirs(x, 2.5), dtype=dtype,
                 grad=differentiable)


@pytest.mark.parametrize("name", DIVISION)
def test_division_int_parity(name):
    ours, _ = DIVISION[name]
    theirs = _torch_div(name)
    a = np.array([[7, -7, 0, 9], [-9, 4, -4, 1]], dtype=np.int64)
    b = np.array([[2, 2, -3, -4], [4, -3, 3, -1]], dtype=np.int64)
    check_parity(ours, [a, b], theirs, grad=False)
    check_parity(lambda x: ours(x, -3), [a], lambda x: theirs(x, -3), grad=False)
    check_parity(lambda x: ours(x, 2.5), [a], lambda x: theirs(x, 2.5), grad=False)


def test_reflected_division():
    for x in (np.array([2.0, -3.0, 4.5]), np.array([2, -3, 4], dtype=np.int64)):
        ours, theirs = lg.tensor(x), torch.tensor(x)
        assert_close(7 // ours, 7 // theirs)
        assert_close(5 % ours, 5 % theirs)
        assert_close(-5.5 % ours, -5.5 % theirs)


def test_division_gradcheck_and_floor_divide_no_grad():
    a = lg.tensor(_dividends()[0], requires_grad=True)
    b = lg.tensor(_dividends()[1], requires_grad=True)
    assert lg.autograd.gradcheck(lambda a, b: a % b, [a, b])
    assert lg.autograd.gradcheck(lambda a, b: lg.fmod(a, b), [a, b])
    assert not (a // b).requires_grad


def test_division_errors():
    with pytest.raises(ZeroDivisionError, match="floor_divide"):
        lg.tensor([1, 2]) // lg.tensor([1, 0])
    with pytest.raises(ZeroDivisionError, match="remainder"):
        lg.tensor([1, 2]) % 0
    with pytest.raises(RuntimeError, match="cannot be broadcast"):
        lg.ones(2) % lg.ones(3)
    with pytest.raises(TypeError, match="bool"):
        lg.tensor([True]) // lg.tensor([True])
    with pytest.raises(TypeError, match="fmod"):
        lg.fmod(lg.ones(2), "a")
    # float division by zero follows IEEE like PyTorch
    assert_close(lg.tensor([1.0, -1.0]) // 0.0, torch.tensor([1.0, -1.0]) // 0.0)


# ----------------------------------------------------------------------------- misc
def test_new_factories():
    x = lg.ones(2, dtype=lg.float64)
    for t in (x.new_zeros(2, 3), x.new_ones((2, 3)), x.new_empty(2, 3), x.new_full((2, 3), 7)):
        assert t.shape == (2, 3) and t.dtype is lg.float64 and t.device is x.device
    assert x.new_full((2,), 7).tolist() == [7.0, 7.0]
    assert x.new_ones(1).tolist() == [1.0] and x.new_zeros(1).tolist() == [0.0]
    t = x.new_tensor([1, 2])
    assert t.dtype is lg.float64 and t.tolist() == [1.0, 2.0] and not t.requires_grad
    assert x.new_zeros(2, dtype=lg.int64).dtype is lg.int64
    assert x.new_ones(2, requires_grad=True).requires_grad
    assert x.new_tensor(lg.ones(2, requires_grad=True)).requires_grad is False


def test_device_flags():
    x = lg.ones(1)
    assert not (x.is_xpu or x.is_mps or x.is_meta or x.is_sparse or x.is_quantized)


def test_format():
    assert format(lg.tensor(3.14159), "+.2f") == "+3.14"
    assert f"{lg.tensor([2.5]):.1e}" == "2.5e+00"
    assert f"{lg.tensor(7):03d}" == "007"
    assert f"{lg.tensor(2.5)}" == "2.5" and f"{lg.tensor([2.5])}" == str(lg.tensor([2.5]))
    assert f"{lg.tensor(1.5, requires_grad=True) * 2:.1f}" == "3.0"
    x = lg.tensor([1.0, 2.0])
    assert format(x, "") == str(x) and f"{x}" == str(x)
    with pytest.raises(TypeError, match="format"):
        format(x, ".2f")


def test_inference_mode():
    x = lg.ones(2, requires_grad=True)
    assert not lg.is_inference_mode_enabled()
    with lg.inference_mode():
        assert lg.is_inference_mode_enabled() and not lg.is_grad_enabled()
        assert not (x * 2).requires_grad
        with lg.inference_mode(False):  # like PyTorch: inference off, grad on
            assert not lg.is_inference_mode_enabled() and lg.is_grad_enabled()
        assert lg.is_inference_mode_enabled() and not lg.is_grad_enabled()
    assert not lg.is_inference_mode_enabled() and lg.is_grad_enabled()

    @lg.inference_mode()
    def f(t):
        return t * 2, lg.is_inference_mode_enabled()

    @lg.inference_mode
    def g(t):
        return t * 2

    y, inside = f(x)
    assert inside and not y.requires_grad and not g(x).requires_grad
    assert lg.is_grad_enabled() and (x * 2).requires_grad
