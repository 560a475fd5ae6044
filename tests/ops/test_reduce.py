"""Reductions against PyTorch: every dim form (None, int, negative, tuple) with and without
keepdim, forward and backward, ties, zeros in prod, infinities in logsumexp, integer and
bool inputs, and finite-difference gradchecks."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from oracle import assert_close, check_parity

import lightgrad as lg

torch = pytest.importorskip("torch")

FLOATS = ["float64", "float32"]
ALL_DIMS = [None, 1, -1, (0, 2), (-1, 0)]
INT_DIMS = [0, 1, -1]


def _x(shape=(2, 3, 4), seed=0, low=-2.0, high=2.0):
    return np.random.default_rng(seed).uniform(low, high, size=shape)


def _call(method, dim, keepdim, **kw):
    """x.method(dim=..., keepdim=...); torch's prod has no dim=None form, so x.prod()."""
    def fn(x):
        if dim is None and method == "prod":
            return x.prod(**kw)
        return getattr(x, method)(dim=dim, keepdim=keepdim, **kw)
    return fn


# name -> (method, dims torch accepts, input domain)
REDUCE = {
    "sum": ("sum", ALL_DIMS, "any"),
    "mean": ("mean", ALL_DIMS, "any"),
    "prod": ("prod", [None] + INT_DIMS, "any"),
    "amax": ("amax", ALL_DIMS, "any"),
    "amin": ("amin", ALL_DIMS, "any"),
    "logsumexp": ("logsumexp", INT_DIMS + [(0, 2), (-1, 0)], "any"),
    "var": ("var", ALL_DIMS, "any"),
    "std": ("std", ALL_DIMS, "any"),
}
CASES = [(name, dim, keepdim) for name, (_, dims, _) in REDUCE.items() for dim in dims
         for keepdim in (False, True)
         if not (name == "prod" and dim is None and keepdim)]  # torch: prod(keepdim) needs dim


def _case_id(case):
    name, dim, keepdim = case
    return f"{name}-dim{dim}-{'keep' if keepdim else 'drop'}"


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_reduce_parity(case, dtype):
    name, dim, keepdim = case
    fn = _call(REDUCE[name][0], dim, keepdim)
    check_parity(fn, [_x()], dtype=dtype)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_reduce_non_contiguous(case):
    name, dim, keepdim = case
    fn = _call(REDUCE[name][0], dim, keepdim)
    # (2, 3, 4) seen through a permute and a strided slice of a (4, 6, 2) tensor
    check_parity(lambda x: fn(x.permute(2, 1, 0)[:, ::2]), [_x((4, 6, 2), seed=1)])


@pytest.mark.parametrize("case", [c for c in CASES if c[2]], ids=_case_id)
def test_reduce_gradcheck(case):
    name, dim, keepdim = case
    fn = _call(REDUCE[name][0], dim, keepdim)
    x = lg.tensor(_x((2, 3, 2), seed=2), requires_grad=True)
    assert lg.autograd.gradcheck(fn, [x])


def test_free_function_forms():
    x = _x(seed=3)
    check_parity(lambda t: lg.sum(t, 1), [x], lambda t: torch.sum(t, 1))
    check_parity(lambda t: lg.mean(t, (0, 1), True), [x], lambda t: torch.mean(t, (0, 1), True))
    check_parity(lambda t: lg.amax(t, -1), [x], lambda t: torch.amax(t, -1))
    check_parity(lambda t: lg.logsumexp(t, 2), [x], lambda t: torch.logsumexp(t, 2))
    check_parity(lambda t: lg.max(t, 1), [x], lambda t: torch.max(t, 1))
    check_parity(lambda t: lg.var(t, 0, correction=0), [x],
                 lambda t: torch.var(t, 0, correction=0))


def test_reduce_zero_dim_input():
    x = np.array(1.5)
    for fn in (lambda t: t.sum(), lambda t: t.sum(0), lambda t: t.mean(-1), lambda t: t.prod(),
               lambda t: t.amax(0), lambda t: t.amin(), lambda t: t.max(), lambda t: t.max(0),
               lambda t: t.min(-1), lambda t: t.logsumexp(0), lambda t: t.cumsum(0),
               lambda t: t.norm(), lambda t: t.argmax(0), lambda t: t.sum(0, keepdim=True)):
        check_parity(fn, [x])


def test_sum_prod_of_chained_dims_match_tuple_dims():
    """lightgrad's prod also takes a tuple of dims; torch needs one prod per dim."""
    x = _x(seed=4)
    check_parity(lambda t: t.prod(dim=(0, 2)), [x], lambda t: t.prod(2).prod(0))
    check_parity(lambda t: t.prod(dim=(-1, 0), keepdim=True), [x],
                 lambda t: t.prod(2, keepdim=True).prod(0, keepdim=True))


# ----------------------------------------------------------------------------- prod with zeros

PROD_ZEROS = {
    "one_zero": np.array([[2.0, 0.0, 3.0, -1.5], [1.0, 2.0, 0.5, 4.0]]),
    "two_zeros": np.array([[0.0, 2.0, 0.0, 3.0], [1.0, -2.0, 0.5, 4.0]]),
    "all_zero_row": np.array([[0.0, 0.0, 0.0, 0.0], [0.0, 1.5, 2.0, -1.0]]),
}


@pytest.mark.parametrize("name", sorted(PROD_ZEROS))
@pytest.mark.parametrize("dim", [None, 0, 1, -1])
@pytest.mark.parametrize("dtype", FLOATS)
def test_prod_with_zeros(name, dim, dtype):
    x = PROD_ZEROS[name]
    check_parity((lambda t: t.prod()) if dim is None else (lambda t: t.prod(dim)), [x],
                 dtype=dtype)
    if dim is not None:
        check_parity(lambda t: t.prod(dim, keepdim=True), [x], dtype=dtype)
        check_parity(lambda t: t.T.prod(dim), [x], dtype=dtype)  # non-contiguous


@pytest.mark.parametrize("name", sorted(PROD_ZEROS))
def test_prod_with_zeros_gradcheck(name):
    x = lg.tensor(PROD_ZEROS[name], requires_grad=True)
    for fn in (lambda t: t.prod(), lambda t: t.prod(1), lambda t: t.prod(0, keepdim=True)):
        assert lg.autograd.gradcheck(fn, [x])


@pytest.mark.parametrize("vals", [[0.0, 2.0, 3.0, -1.0], [0.0, 2.0, 0.0, -1.0],
                                  [0.0, 0.0, 0.0, 2.0], [[0.0, 2.0], [0.0, 3.0], [1.0, 0.0]]],
                         ids=["one_zero", "two_zeros", "three_zeros", "2d"])
@pytest.mark.parametrize("dim", [None, 0, -1])
def test_prod_second_derivative_with_zeros(vals, dim):
    """The gradient of prod is differentiable again, zeros included (create_graph)."""
    vals = np.array(vals)

    def hessian_vector(lib, make):
        x = make(vals)
        out = x.prod() if dim is None else x.prod(dim)
        w = make(np.arange(1.0, out.numel() + 1).reshape(tuple(out.shape)))
        v = make(np.arange(1.0, vals.size + 1).reshape(vals.shape))
        (g,) = lib.autograd.grad((out * w).sum(), x, create_graph=True)
        (gg,) = lib.autograd.grad((g * v).sum(), x)
        return g, gg

    g, gg = hessian_vector(lg, lambda a: lg.tensor(a, requires_grad=True))
    tg, tgg = hessian_vector(torch, lambda a: torch.tensor(a, requires_grad=True))
    assert_close(g, tg)
    assert_close(gg, tgg)


# ----------------------------------------------------------------------------- extremes, ties

TIES = np.array([[[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [-1.0, 5.0, 4.0, 5.0]],
                 [[0.0, 0.0, -2.0, 1.0], [7.0, 1.0, 7.0, 7.0], [3.0, 3.0, 1.0, 1.0]]])


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("method", ["amax", "amin"])
@pytest.mark.parametrize("dim", ALL_DIMS)
def test_amax_amin_ties_share_gradient(method, dim, dtype):
    for keepdim in (False, True):
        check_parity(_call(method, dim, keepdim), [TIES], dtype=dtype)


@pytest.mark.parametrize("method", ["max", "min"])
def test_max_min_without_dim_share_gradient(method):
    check_parity(lambda t: getattr(t, method)(), [TIES])
    check_parity(lambda t: getattr(t, method)(), [np.array([4.0, 1.0, 4.0, 4.0])])
    check_parity(lambda t: getattr(lg, method)(t), [TIES], lambda t: getattr(torch, method)(t))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("method", ["max", "min"])
@pytest.mark.parametrize("dim", INT_DIMS)
@pytest.mark.parametrize("keepdim", [False, True])
def test_max_min_with_dim(method, dim, keepdim, dtype):
    """(values, indices): the first extreme on ties; the gradient goes to that index only."""
    def fn(t):
        return getattr(t, method)(dim, keepdim)

    check_parity(fn, [TIES], dtype=dtype)
    check_parity(fn, [_x(seed=5)], dtype=dtype)
    check_parity(lambda t: fn(t.transpose(0, 2)), [TIES], dtype=dtype)
    out = fn(lg.tensor(TIES))
    assert isinstance(out, tuple) and out.values is out[0] and out.indices is out[1]


def test_max_with_dim_keywords_and_gradcheck():
    check_parity(lambda t: t.max(dim=1, keepdim=True), [_x(seed=6)])
    x = lg.tensor(_x((3, 4), seed=7), requires_grad=True)
    assert lg.autograd.gradcheck(lambda t: t.max(1).values, [x])
    assert lg.autograd.gradcheck(lambda t: t.min(0, keepdim=True).values, [x])
    assert lg.autograd.gradcheck(lambda t: t.max(), [x])


@pytest.mark.parametrize("method", ["argmax", "argmin"])
@pytest.mark.parametrize("dim", [None, 0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_argmax_argmin(method, dim, keepdim):
    def fn(t):
        return getattr(t, method)(dim=dim, keepdim=keepdim)

    check_parity(fn, [TIES])  # ties: the first index
    check_parity(fn, [_x(seed=8)])
    check_parity(fn, [TIES.astype(np.int64)])
    check_parity(fn, [TIES.astype(np.int32)])
    check_parity(lambda t: fn(t.permute(2, 0, 1)), [TIES])


@pytest.mark.parametrize("method", ["amax", "amin", "max", "min"])
def test_extremes_of_integers_keep_dtype(method):
    x = TIES.astype(np.int64)
    check_parity(lambda t: getattr(t, method)(), [x])
    check_parity(lambda t: getattr(t, method)(1), [x])
    check_parity(lambda t: getattr(t, method)(1), [x.astype(np.int32)])
    check_parity(lambda t: getattr(t, method)(), [x > 2])  # bool stays bool


def test_extremes_with_infinities():
    x = np.array([[-np.inf, 1.0, np.inf], [-np.inf, -np.inf, 2.0]])
    for fn in (lambda t: t.amax(1), lambda t: t.amin(0), lambda t: t.max(1), lambda t: t.max()):
        check_parity(fn, [x])


# ----------------------------------------------------------------------------- var and std

@pytest.mark.parametrize("method", ["var", "std"])
@pytest.mark.parametrize("correction", [0, 1, 2])
@pytest.mark.parametrize("dim", ALL_DIMS)
def test_var_std_correction(method, correction, dim):
    for keepdim in (False, True):
        def fn(t, keepdim=keepdim):
            return getattr(t, method)(dim=dim, correction=correction, keepdim=keepdim)

        check_parity(fn, [_x(seed=9)])
        check_parity(fn, [_x(seed=9)], dtype="float32")


@pytest.mark.parametrize("method", ["var", "std"])
@pytest.mark.parametrize("unbiased", [True, False])
def test_var_std_unbiased(method, unbiased):
    x = _x(seed=10)
    check_parity(lambda t: getattr(t, method)(unbiased=unbiased), [x])
    check_parity(lambda t: getattr(t, method)(1, unbiased=unbiased), [x])
    check_parity(lambda t: getattr(t, method)(-1, unbiased, True), [x])  # positional form
    check_parity(lambda t: getattr(t, method)((0, 2), unbiased=unbiased, keepdim=True), [x])


@pytest.mark.parametrize("method", ["var", "std"])
def test_var_std_gradcheck(method):
    x = lg.tensor(_x((3, 4), seed=11), requires_grad=True)
    for correction in (0, 1, 2):
        assert lg.autograd.gradcheck(
            lambda t, c=correction: getattr(t, method)(1, correction=c), [x])
    assert lg.autograd.gradcheck(lambda t: getattr(t, method)(unbiased=False), [x])


def test_var_of_a_single_element_with_correction():
    """More correction than elements: torch gives inf or nan (n - correction <= 0)."""
    x = np.array([[1.0], [2.0]])
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about degrees of freedom <= 0
        check_parity(lambda t: t.var(1), [x], grad=False)
        check_parity(lambda t: t.std(1, correction=2), [x], grad=False)


# ----------------------------------------------------------------------------- logsumexp

@pytest.mark.parametrize("dtype", FLOATS)
def test_logsumexp_large_values(dtype):
    # (float32 keeps 3 decimals at 1000: torch's exp(x - logsumexp) is still accurate)
    x = np.array([[1000.0, 1000.0, -1000.0], [-5e4, 500.0, 499.0], [88.0, 89.0, 90.0]])
    check_parity(lambda t: t.logsumexp(1), [x], dtype=dtype)
    check_parity(lambda t: t.logsumexp(0), [x], dtype=dtype)
    check_parity(lambda t: t.logsumexp((0, 1)), [x], dtype=dtype)


@pytest.mark.parametrize("dtype", FLOATS)
def test_logsumexp_with_infinities(dtype):
    # a few -inf entries: they add nothing and get zero gradient
    x = np.array([[-np.inf, 0.5, 1.0], [2.0, -np.inf, -np.inf], [0.1, 0.2, 0.3]])
    check_parity(lambda t: t.logsumexp(1), [x], dtype=dtype)
    check_parity(lambda t: t.logsumexp(0, keepdim=True), [x], dtype=dtype)
    # a row of only -inf gives -inf (its gradient is nan in torch and here)
    y = np.array([[-np.inf, -np.inf], [1.0, 2.0]])
    with np.errstate(divide="ignore", invalid="ignore"):
        check_parity(lambda t: t.logsumexp(1), [y], dtype=dtype)
    # +inf entries give +inf
    z = np.array([[np.inf, 1.0], [2.0, 3.0]])
    check_parity(lambda t: t.logsumexp(1), [z], dtype=dtype, grad=False)


def test_logsumexp_integer_input():
    check_parity(lambda t: t.logsumexp(1), [np.array([[1, 2, 3], [4, 5, 6]])])


def test_logsumexp_gradcheck_large():
    x = lg.tensor(np.array([[500.0, 501.0, 499.0], [-300.0, -301.0, -299.5]]),
                  requires_grad=True)
    assert lg.autograd.gradcheck(lambda t: t.logsumexp(1), [x])


# ----------------------------------------------------------------------------- norm

NORM_PS = [2, 1, 3, float("inf"), 0.5]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("p", NORM_PS)
@pytest.mark.parametrize("dim", ALL_DIMS)
def test_norm(p, dim, dtype):
    x = _x(seed=12)
    x[np.abs(x) < 0.1] = 0.3  # away from the kink of |x| at 0
    for keepdim in (False, True):
        check_parity(lambda t, k=keepdim: t.norm(p, dim, k), [x], dtype=dtype)
    check_parity(lambda t: lg.norm(t, p=p, dim=dim), [x],
                 lambda t: torch.norm(t, p=p, dim=dim), dtype=dtype)


def test_norm_default_and_ties():
    check_parity(lambda t: t.norm(), [_x(seed=13)])
    # inf-norm: tied largest magnitudes share the gradient
    check_parity(lambda t: t.norm(float("inf")), [np.array([-3.0, 1.0, 3.0, 2.0])])


@pytest.mark.parametrize("p", [2, 1, float("inf")])
def test_norm_gradcheck(p):
    x = lg.tensor(_x((3, 4), seed=14), requires_grad=True)
    assert lg.autograd.gradcheck(lambda t: t.norm(p), [x])
    assert lg.autograd.gradcheck(lambda t: t.norm(p, dim=1), [x])


def test_norm_of_zeros_has_zero_gradient():
    """torch's subgradient at 0 is 0, so e.g. a zero row does not poison a batch with nan."""
    x = np.array([[0.0, 0.0, 0.0], [3.0, 4.0, 0.0]])
    check_parity(lambda t: t.norm(dim=1), [x])
    check_parity(lambda t: t.norm(), [np.zeros(3)])


# ----------------------------------------------------------------------------- all, any

@pytest.mark.parametrize("method", ["all", "any"])
@pytest.mark.parametrize("dim", ALL_DIMS)
def test_all_any(method, dim):
    rng = np.random.default_rng(15)
    b = rng.random((2, 3, 4)) > 0.3
    for keepdim in (False, True):
        fn = _call(method, dim, keepdim)
        check_parity(fn, [b])
        check_parity(fn, [b.astype(np.float64) * rng.standard_normal((2, 3, 4))])
        check_parity(fn, [b.astype(np.int64)])
    check_parity(_call(method, None, False), [np.zeros((2, 2), dtype=bool)])
    check_parity(_call(method, None, False), [np.ones((2, 2), dtype=bool)])


# ----------------------------------------------------------------------------- cumsum

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("dim", [0, 1, 2, -1, -3])
def test_cumsum(dim, dtype):
    check_parity(lambda t: t.cumsum(dim), [_x(seed=16)], dtype=dtype)
    check_parity(lambda t: t.transpose(0, 2).cumsum(dim), [_x(seed=16)], dtype=dtype)
    check_parity(lambda t: lg.cumsum(t, dim), [_x(seed=16)], lambda t: torch.cumsum(t, dim),
                 dtype=dtype)


def test_cumsum_gradcheck():
    x = lg.tensor(_x((3, 4), seed=17), requires_grad=True)
    assert lg.autograd.gradcheck(lambda t: t.cumsum(1), [x])
    assert lg.autograd.gradcheck(lambda t: t.cumsum(-2), [x])


# ----------------------------------------------------------------------------- int and bool

INT_INPUTS = {
    "int64": np.array([[1, -2, 3], [4, 5, -6]], dtype=np.int64),
    "int32": np.array([[1, -2, 3], [4, 5, -6]], dtype=np.int32),
    "int16": np.array([[1, -2, 3], [4, 5, -6]], dtype=np.int16),
    "uint8": np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8),
    "bool": np.array([[True, False, True], [True, True, False]]),
}


@pytest.mark.parametrize("kind", sorted(INT_INPUTS))
def test_sum_prod_cumsum_of_integers_give_int64(kind):
    """Like torch: sums, products and cumulative sums of bool/int tensors are int64."""
    x = INT_INPUTS[kind]
    for fn in (lambda t: t.sum(), lambda t: t.sum(1), lambda t: t.sum((0, 1), keepdim=True),
               lambda t: t.prod(), lambda t: t.prod(0), lambda t: t.cumsum(1),
               lambda t: t.cumsum(-2)):
        check_parity(fn, [x])


def test_sum_with_dtype():
    x = INT_INPUTS["int32"]
    check_parity(lambda t: t.sum(dtype=lg.float64), [x], lambda t: t.sum(dtype=torch.float64))
    check_parity(lambda t: t.sum(1, dtype=lg.int32), [x], lambda t: t.sum(1, dtype=torch.int32))


def test_mean_of_integers_is_an_error():
    with pytest.raises(TypeError, match="mean: input dtype must be floating point.*int64"):
        lg.tensor([1, 2]).mean()


# ----------------------------------------------------------------------------- half precision

@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_reduce_half_forward(dtype):
    x = _x(seed=18)
    for fn in (lambda t: t.sum(), lambda t: t.sum(1), lambda t: t.mean((0, 2)),
               lambda t: t.amax(-1), lambda t: t.max(1), lambda t: t.logsumexp(1),
               lambda t: t.var(1), lambda t: t.cumsum(2), lambda t: t.prod(2),
               lambda t: t.norm(dim=1)):
        check_parity(fn, [x], dtype=dtype, grad=False)


# ----------------------------------------------------------------------------- errors

def test_dim_out_of_range():
    x = lg.ones(2, 3)
    with pytest.raises(IndexError, match=r"sum: dim 2 is out of range.*\(2, 3\)"):
        x.sum(2)
    with pytest.raises(IndexError, match=r"amax: dim -3 is out of range"):
        x.amax(-3)
    with pytest.raises(IndexError, match=r"cumsum: dim 5 is out of range"):
        x.cumsum(5)
    with pytest.raises(IndexError, match=r"max: dim 2 is out of range"):
        x.max(2)


def test_repeated_dim_is_an_error():
    with pytest.raises(ValueError, match=r"sum: dim \(1, -1\) names a dimension more than once"):
        lg.ones(2, 3).sum((1, -1))


def test_extreme_of_empty_is_an_error():
    with pytest.raises(RuntimeError, match=r"amax: cannot reduce an empty tensor of shape \(0,"):
        lg.ones(0, 3).amax()
    with pytest.raises(RuntimeError, match=r"argmax: cannot reduce an empty tensor"):
        lg.ones(0).argmax()
