"""Elementwise ops against PyTorch: forward and backward parity, broadcasting, views,
half precision, finite-difference gradchecks and a hypothesis property test."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes
from oracle import assert_close, check_parity

import lightgrad as lg

torch = pytest.importorskip("torch")
F = torch.nn.functional

FLOATS = ["float64", "float32"]


def _values(shape, domain: str, seed: int = 0) -> np.ndarray:
    """Random float64 values suited to an op's domain (away from kinks and poles)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2.0, 2.0, size=shape)
    if domain == "pos":  # log, sqrt, rsqrt: strictly positive
        return rng.uniform(0.2, 2.0, size=shape)
    if domain == "gt-1":  # log1p
        return rng.uniform(-0.8, 2.0, size=shape)
    if domain == "nonzero":  # abs, relu, sign, reciprocal: away from 0
        return np.sign(x + 1e-12) * (np.abs(x) + 0.2)
    if domain == "offgrid":  # floor/ceil/round: away from the jumps at n and n + 0.5
        return np.round(x * 4) / 4 + 0.1
    return x


# name -> (lightgrad fn, torch fn, domain, differentiable)
UNARY = {
    "neg": (lambda x: -x, lambda x: -x, "any", True),
    "neg_method": (lambda x: x.neg(), lambda x: x.neg(), "any", True),
    "abs": (lambda x: x.abs(), lambda x: x.abs(), "nonzero", True),
    "abs_builtin": (abs, abs, "nonzero", True),
    "exp": (lambda x: x.exp(), lambda x: x.exp(), "any", True),
    "log": (lambda x: x.log(), lambda x: x.log(), "pos", True),
    "sqrt": (lambda x: x.sqrt(), lambda x: x.sqrt(), "pos", True),
    "rsqrt": (lambda x: x.rsqrt(), lambda x: x.rsqrt(), "pos", True),
    "sin": (lambda x: x.sin(), lambda x: x.sin(), "any", True),
    "cos": (lambda x: x.cos(), lambda x: x.cos(), "any", True),
    "tanh": (lambda x: x.tanh(), lambda x: x.tanh(), "any", True),
    "sigmoid": (lambda x: x.sigmoid(), lambda x: x.sigmoid(), "any", True),
    "relu": (lambda x: x.relu(), lambda x: x.relu(), "nonzero", True),
    "gelu": (lambda x: x.gelu(), F.gelu, "any", True),
    "gelu_tanh": (lambda x: x.gelu(approximate="tanh"),
                  lambda x: F.gelu(x, approximate="tanh"), "any", True),
    "silu": (lambda x: x.silu(), F.silu, "any", True),
    "softplus": (lambda x: x.softplus(), F.softplus, "any", True),
    "softplus_beta": (lambda x: x.softplus(beta=2.0),
                      lambda x: F.softplus(x, beta=2.0), "any", True),
    # threshold 1.5 with beta 2: x > 0.75 takes the linear branch; values stay off the kink
    "softplus_threshold": (lambda x: x.softplus(beta=2.0, threshold=1.5),
                           lambda x: F.softplus(x, beta=2.0, threshold=1.5), "nonzero", True),
    "erf": (lambda x: x.erf(), lambda x: x.erf(), "any", True),
    "reciprocal": (lambda x: x.reciprocal(), lambda x: x.reciprocal(), "nonzero", True),
    "sign": (lambda x: x.sign(), lambda x: x.sign(), "nonzero", True),
    "floor": (lambda x: x.floor(), lambda x: x.floor(), "offgrid", True),
    "ceil": (lambda x: x.ceil(), lambda x: x.ceil(), "offgrid", True),
    "round": (lambda x: x.round(), lambda x: x.round(), "offgrid", True),
    "clamp_min": (lambda x: x.clamp(min=-0.55), lambda x: x.clamp(min=-0.55), "any", True),
    "clamp_max": (lambda x: x.clamp(max=0.45), lambda x: x.clamp(max=0.45), "any", True),
    "clamp_both": (lambda x: x.clamp(-0.55, 0.45), lambda x: x.clamp(-0.55, 0.45), "any",
                   True),
    "clip": (lambda x: x.clip(-0.55, 0.45), lambda x: x.clip(-0.55, 0.45), "any", True),
    "square": (lambda x: x.square(), lambda x: x.square(), "any", True),
    "log1p": (lambda x: x.log1p(), lambda x: x.log1p(), "gt-1", True),
    # the free-function forms route to the same ops
    "lg.exp": (lambda x: lg.exp(x), torch.exp, "any", True),
    "lg.sigmoid": (lambda x: lg.sigmoid(x), torch.sigmoid, "any", True),
    "lg.clamp": (lambda x: lg.clamp(x, min=-0.5), lambda x: torch.clamp(x, min=-0.5), "any",
                 True),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_parity(name, dtype):
    ours, theirs, domain, _ = UNARY[name]
    check_parity(ours, [_values((3, 4), domain)], theirs, dtype=dtype)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_non_contiguous(name):
    ours, theirs, domain, _ = UNARY[name]
    base = _values((4, 6), domain, seed=1)
    check_parity(lambda x: ours(x.T[:, ::2]), [base], lambda x: theirs(x.T[:, ::2]))


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_zero_dim(name):
    ours, theirs, domain, _ = UNARY[name]
    check_parity(ours, [_values((), domain, seed=2)], theirs)


@pytest.mark.parametrize("name", sorted(n for n, v in UNARY.items() if v[3]))
def test_unary_gradcheck(name):
    ours, _, domain, _ = UNARY[name]
    x = lg.tensor(_values((2, 3), domain, seed=3), requires_grad=True)
    assert lg.autograd.gradcheck(ours, [x])


def test_unary_edge_values():
    """Kinks and special points: torch's choice of subgradient and rounding rule."""
    vals = np.array([-2.5, -1.5, -0.5, 0.0, 0.5, 1.5, 2.5, -0.55, 0.45, 3.0])
    for ours, theirs in [
        (lambda x: x.abs(), lambda x: x.abs()),
        (lambda x: x.relu(), lambda x: x.relu()),
        (lambda x: x.sign(), lambda x: x.sign()),
        (lambda x: x.round(), lambda x: x.round()),  # half to even
        (lambda x: x.floor(), lambda x: x.floor()),
        (lambda x: x.ceil(), lambda x: x.ceil()),
        (lambda x: x.clamp(-0.55, 0.45), lambda x: x.clamp(-0.55, 0.45)),  # at the bounds
        (lambda x: x.softplus(threshold=1.5), lambda x: F.softplus(x, threshold=1.5)),
    ]:
        check_parity(ours, [vals], theirs)


def test_unary_extreme_values():
    """Large magnitudes must not overflow to nan (stable sigmoid/softplus/silu)."""
    vals = np.array([-800.0, -60.0, -20.0, 0.0, 20.0, 60.0, 800.0])
    for ours, theirs in [
        (lambda x: x.sigmoid(), torch.sigmoid),
        (lambda x: x.softplus(), F.softplus),
        (lambda x: x.silu(), F.silu),
        (lambda x: x.tanh(), torch.tanh),
        (lambda x: x.gelu(), F.gelu),
        (lambda x: x.erf(), torch.erf),
    ]:
        for dtype in FLOATS:
            check_parity(ours, [vals], theirs, dtype=dtype)


@pytest.mark.parametrize("name", ["neg", "abs", "sign", "relu", "square", "floor", "ceil",
                                  "round", "exp", "sqrt", "sigmoid", "reciprocal", "log1p"])
def test_unary_integer_input(name):
    """Integer inputs: sign-like ops keep the dtype, transcendental ones give float32."""
    ours, theirs, _, _ = UNARY[name]
    check_parity(ours, [np.array([[1, 4, 2], [3, 9, 5]], dtype=np.int64)], theirs, grad=False)


HALF_SUBSET = ["neg", "abs", "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "gelu",
               "gelu_tanh", "silu", "softplus", "erf", "reciprocal", "clamp_both", "square"]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", HALF_SUBSET)
def test_unary_half_forward(name, dtype):
    ours, theirs, domain, _ = UNARY[name]
    check_parity(ours, [_values((3, 4), domain, seed=4)], theirs, dtype=dtype, grad=False)


# ----------------------------------------------------------------------------- binary

def _pos(shape, seed):
    return np.random.default_rng(seed).uniform(0.3, 2.0, size=shape)


def _any(shape, seed):
    return np.random.default_rng(seed).uniform(-2.0, 2.0, size=shape)


# name -> (lightgrad fn, torch fn, value maker for b, differentiable)
BINARY = {
    "add": (lambda a, b: a + b, None, _any, True),
    "add_alpha": (lambda a, b: a.add(b, alpha=2.5), None, _any, True),
    "lg.add": (lambda a, b: lg.add(a, b), torch.add, _any, True),
    "sub": (lambda a, b: a - b, None, _any, True),
    "sub_alpha": (lambda a, b: a.sub(b, alpha=-1.5), None, _any, True),
    "mul": (lambda a, b: a * b, None, _any, True),
    "mul_method": (lambda a, b: a.mul(b), None, _any, True),
    "div": (lambda a, b: a / b, None, _pos, True),
    "div_method": (lambda a, b: a.div(b), None, _pos, True),
    "pow": (lambda a, b: a ** b, None, _any, True),  # a is positive (see _binary_inputs)
    "pow_method": (lambda a, b: a.pow(b), None, _any, True),
    "maximum": (lambda a, b: a.maximum(b), None, _any, True),
    "minimum": (lambda a, b: a.minimum(b), None, _any, True),
    "lg.maximum": (lambda a, b: lg.maximum(a, b), torch.maximum, _any, True),
    "max_tensor": (lambda a, b: a.max(b), None, _any, True),
    "min_tensor": (lambda a, b: a.min(b), None, _any, True),
}
COMPARE = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b, "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
    "eq_method": lambda a, b: a.eq(b), "ne_method": lambda a, b: a.ne(b),
    "lt_method": lambda a, b: a.lt(b), "le_method": lambda a, b: a.le(b),
    "gt_method": lambda a, b: a.gt(b), "ge_method": lambda a, b: a.ge(b),
}
SHAPES = [((3, 4), (3, 4)), ((3, 1, 4), (2, 4)), ((2, 4), (3, 1, 4)), ((4,), (3, 4)),
          ((3, 4), ()), ((), (3, 4)), ((1,), (2, 1))]


def _binary_inputs(name, sa, sb):
    maker = BINARY[name][2]
    a = _pos(sa, 10) if name.startswith("pow") else _any(sa, 10)
    return [a, maker(sb, 11)]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shapes", SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_parity(name, shapes, dtype):
    ours, theirs, _, _ = BINARY[name]
    check_parity(ours, _binary_inputs(name, *shapes), theirs, dtype=dtype)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_non_contiguous(name):
    ours, theirs, _, _ = BINARY[name]
    theirs = theirs or ours
    a, b = _binary_inputs(name, (5, 3), (6, 5))

    def view(fn):
        return lambda x, y: fn(x.T, y[::2, 1:2])  # (3, 5) with a strided (3, 1)

    check_parity(view(ours), [a, b], view(theirs))


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_gradcheck(name):
    ours, _, _, _ = BINARY[name]
    a, b = _binary_inputs(name, (2, 1, 3), (2, 3))
    ta = lg.tensor(a, requires_grad=True)
    tb = lg.tensor(b, requires_grad=True)
    assert lg.autograd.gradcheck(ours, [ta, tb])


SCALAR_CASES = {
    "x+s": (lambda x: x + 1.5, "any"), "s+x": (lambda x: 1.5 + x, "any"),
    "x+int": (lambda x: x + 2, "any"), "x-s": (lambda x: x - 1.5, "any"),
    "s-x": (lambda x: 1.5 - x, "any"), "x*s": (lambda x: x * -3.0, "any"),
    "s*x": (lambda x: -3.0 * x, "any"), "x/s": (lambda x: x / 4.0, "any"),
    "s/x": (lambda x: 4.0 / x, "pos"), "int/x": (lambda x: 3 / x, "pos"),
    "x**2": (lambda x: x ** 2, "any"), "x**3": (lambda x: x ** 3, "any"),
    "x**0.5": (lambda x: x ** 0.5, "pos"), "x**-1.5": (lambda x: x ** -1.5, "pos"),
    "x**0": (lambda x: x ** 0, "any"), "x**1": (lambda x: x ** 1, "any"),
    "2**x": (lambda x: 2 ** x, "any"), "2.5**x": (lambda x: 2.5 ** x, "any"),
    "x.pow(s)": (lambda x: x.pow(1.5), "pos"),
    "max(x,s)": (lambda x: x.clamp(min=0.1), "any"),
    "x.add(s,alpha)": (lambda x: x.add(2.0, alpha=3), "any"),
    "x.where(c, s)": (lambda x: x.where(x > 0, 0.5), "any"),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", sorted(SCALAR_CASES))
def test_scalar_operands(name, dtype):
    fn, domain = SCALAR_CASES[name]
    x = _pos((3, 4), 20) if domain == "pos" else _any((3, 4), 20)
    check_parity(fn, [x], dtype=dtype)
    check_parity(fn, [x[0, 0]], dtype=dtype)  # 0-dim tensor with a scalar


@pytest.mark.parametrize("name", sorted(SCALAR_CASES))
def test_scalar_operands_gradcheck(name):
    fn, domain = SCALAR_CASES[name]
    x = _pos((2, 3), 21) if domain == "pos" else _any((2, 3), 21)
    assert lg.autograd.gradcheck(fn, [lg.tensor(x, requires_grad=True)])


@pytest.mark.filterwarnings("ignore:divide by zero", "ignore:invalid value")
def test_pow_tensor_tensor_with_zero_base():
    """0 ** y: torch's gradient is 0 for the base where y == 0 and for the exponent where
    y >= 0 (instead of nan from 0 * log 0); 0 ** negative is inf with gradient -inf."""
    base = np.array([0.0, 0.0, 0.0, 2.0, 1.5, 0.0])
    expo = np.array([0.0, 2.0, 0.5, 0.0, -1.0, 1.0])
    check_parity(lambda a, b: a ** b, [base, expo])
    check_parity(lambda a, b: a ** b, [base, expo], dtype="float32")
    check_parity(lambda a: a ** 0.0, [base])
    check_parity(lambda a: a ** 2, [base])
    check_parity(lambda a: a ** 1.0, [base])
    check_parity(lambda b: 0.0 ** b, [np.array([0.0, 1.0, 2.5])])
    check_parity(lambda b: 1.0 ** b, [np.array([0.0, 1.0, -2.5])])


@pytest.mark.filterwarnings("ignore:invalid value")
def test_pow_negative_base_integer_exponent():
    x = np.array([-2.0, -0.5, 0.5, 3.0])
    for e in (2, 3, -1, 2.0):
        check_parity(lambda a, e=e: a ** e, [x])
    # d/db a ** b = a ** b * log(a) is nan for a < 0, in torch as here
    check_parity(lambda a, b: a ** b, [x, np.array([2.0, 3.0, -2.0, 1.0])])


def test_pow_integer_tensors():
    a = np.array([[1, 2, 3], [4, 0, 2]])
    check_parity(lambda x: x ** 2, [a], grad=False)
    check_parity(lambda x: 2 ** x, [a], grad=False)
    check_parity(lambda x: x ** 0.5, [a], grad=False)
    check_parity(lambda x, y: x ** y, [a, np.array([2, 1, 0])], grad=False)


@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_maximum_minimum_ties(op):
    """Equal values split the gradient evenly between both inputs, as torch does."""
    a = np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 5.0]])
    b = np.array([[1.0, 0.0, 3.0], [0.0, 4.0, 5.0]])
    check_parity(lambda x, y: getattr(x, op)(y), [a, b])
    check_parity(lambda x, y: getattr(x, op)(y), [a, b[:1]])  # broadcast ties
    check_parity(lambda x: getattr(x, op)(x), [a])  # same tensor on both sides


@pytest.mark.parametrize("name", sorted(COMPARE))
@pytest.mark.parametrize("shapes", SHAPES[:5], ids=str)
def test_comparisons(name, shapes):
    fn = COMPARE[name]
    rng = np.random.default_rng(30)
    a = rng.integers(-2, 3, size=shapes[0]).astype(np.float64)  # small ints: plenty of ties
    b = rng.integers(-2, 3, size=shapes[1]).astype(np.float64)
    for dtype in FLOATS:
        check_parity(fn, [a, b], dtype=dtype)  # bool output, nothing to differentiate
    check_parity(fn, [a.astype(np.int64), b.astype(np.int64)])
    check_parity(fn, [a.astype(np.int64), b])  # int with float
    check_parity(lambda x: fn(x, 1.0), [a])
    check_parity(lambda x: fn(x, 1), [a.astype(np.int64)])
    if not name.endswith("_method"):
        check_parity(lambda x: fn(1, x), [a])  # reflected: 1 < x is x > 1


def test_comparison_results_have_no_grad():
    x = lg.tensor([1.0, 2.0], requires_grad=True)
    out = x > 1.5
    assert out.dtype is lg.bool and not out.requires_grad


def test_comparison_with_bool_tensors():
    a = np.array([True, False, True])
    b = np.array([True, True, False])
    for fn in COMPARE.values():
        check_parity(fn, [a, b])


LOGICAL = {
    "logical_and": (lambda a, b: a.logical_and(b), lambda a, b: a.logical_and(b)),
    "logical_or": (lambda a, b: a.logical_or(b), lambda a, b: a.logical_or(b)),
    "logical_xor": (lambda a, b: a.logical_xor(b), lambda a, b: a.logical_xor(b)),
    "lg.logical_and": (lambda a, b: lg.logical_and(a, b), torch.logical_and),
    "&": (lambda a, b: a & b, None),
    "|": (lambda a, b: a | b, None),
    "^": (lambda a, b: a ^ b, None),
}


@pytest.mark.parametrize("name", sorted(LOGICAL))
def test_logical_binary(name):
    ours, theirs = LOGICAL[name]
    rng = np.random.default_rng(40)
    a = rng.random((3, 1, 4)) > 0.5
    b = rng.random((2, 4)) > 0.5
    check_parity(ours, [a, b], theirs)
    theirs = theirs or ours
    check_parity(lambda x, y: ours(x[:, 0].T, y[:1].T), [a, b],
                 lambda x, y: theirs(x[:, 0].T, y[:1].T))  # views: (4, 3) with (4, 1)
    if name in "&|^":  # Python operators also take a bool on either side
        check_parity(lambda x: ours(x, True), [a])
        check_parity(lambda x: ours(False, x), [a])


@pytest.mark.parametrize("name", ["logical_and", "logical_or", "logical_xor"])
def test_logical_on_numbers(name):
    """logical_* treat nonzero numbers as True (any dtype), like torch."""
    ours, theirs = LOGICAL[name]
    a = np.array([0.0, 1.5, -2.0, 0.0])
    b = np.array([0, 0, 3, 7])
    check_parity(ours, [a, b], theirs, grad=False)


def test_logical_not_and_invert():
    a = np.array([[True, False], [False, False]])
    check_parity(lambda x: ~x, [a])
    check_parity(lambda x: x.logical_not(), [a])
    check_parity(lambda x: lg.logical_not(x), [a], torch.logical_not)
    check_parity(lambda x: x.logical_not(), [np.array([0.0, 2.0, -1.0])], grad=False)
    check_parity(lambda x: x.logical_not(), [np.array([0, 3])])


def test_bitwise_operators_need_bool():
    # Deliberate: lightgrad implements &, |, ^, ~ for bool tensors only (torch also does
    # integer bitwise arithmetic); other dtypes are a clear error.
    with pytest.raises(TypeError, match="bool tensors only.*int64"):
        lg.tensor([1, 2]) & lg.tensor([3, 1])
    with pytest.raises(TypeError, match="bool tensors only"):
        lg.tensor([1.0]) | lg.tensor([True])
    with pytest.raises(TypeError, match=r"~.*float32"):
        ~lg.tensor([1.0])


# ----------------------------------------------------------------------------- where, masked

def test_masked_fill():
    rng = np.random.default_rng(50)
    x = rng.standard_normal((3, 4))
    mask = rng.random((3, 4)) > 0.5
    for dtype in FLOATS:
        check_parity(lambda t, m: t.masked_fill(m, -1.5), [x, mask], dtype=dtype)
        with np.errstate(invalid="ignore"):  # the check's loss sums -inf * w: nan
            check_parity(lambda t, m: t.masked_fill(m, float("-inf")), [x, mask], dtype=dtype)
        check_parity(lambda t, m: t.masked_fill(m[:1], 0.0), [x, mask], dtype=dtype)  # bcast
        check_parity(lambda t, m: t.T.masked_fill(m.T, 2), [x, mask], dtype=dtype)
        check_parity(lambda t, m: lg.masked_fill(t, m, 3.0), [x, mask],
                     lambda t, m: torch.masked_fill(t, m, 3.0), dtype=dtype)
    # a 0-dim tensor value receives the gradient of the positions it fills
    check_parity(lambda t, m, v: t.masked_fill(m, v), [x, mask, np.array(0.25)])
    # integer tensors keep their dtype
    check_parity(lambda t, m: t.masked_fill(m, 7), [np.arange(12).reshape(3, 4), mask])


def test_masked_fill_gradcheck():
    x = lg.tensor(np.random.default_rng(51).standard_normal((2, 3)), requires_grad=True)
    v = lg.tensor(0.5, dtype=lg.float64, requires_grad=True)
    mask = lg.tensor([[True, False, True], [False, False, True]])
    assert lg.autograd.gradcheck(lambda t, s: t.masked_fill(mask, s), [x, v])


def test_masked_fill_bad_mask():
    with pytest.raises(TypeError, match="masked_fill: mask must be a bool tensor"):
        lg.ones(2).masked_fill(lg.tensor([1, 0]), 0.0)


WHERE = {
    "lg.where": (lambda c, a, b: lg.where(c, a, b), torch.where),
    "method": (lambda c, a, b: a.where(c, b), lambda c, a, b: a.where(c, b)),
    "scalar_other": (lambda c, a, b: lg.where(c, a, 0.5), lambda c, a, b: torch.where(c, a, 0.5)),
    "scalar_input": (lambda c, a, b: lg.where(c, -1.0, b),
                     lambda c, a, b: torch.where(c, -1.0, b)),
    "int_scalar": (lambda c, a, b: lg.where(c, a, 2), lambda c, a, b: torch.where(c, a, 2)),
    "method_scalar": (lambda c, a, b: a.where(c, 0.0), lambda c, a, b: a.where(c, 0.0)),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", sorted(WHERE))
def test_where(name, dtype):
    ours, theirs = WHERE[name]
    rng = np.random.default_rng(60)
    cond = rng.random((3, 1, 4)) > 0.5
    a = rng.standard_normal((2, 4))
    b = rng.standard_normal((3, 2, 1))
    check_parity(ours, [cond, a, b], theirs, dtype=dtype)

    def views(fn):  # transposed (3, 4) condition and input, strided (3, 1) other
        return lambda c, x, y: fn(c[:, 0].T, x.T, y[::2, :1])
    cond, a, b = rng.random((4, 2, 3)) > 0.5, rng.standard_normal((4, 3)), \
        rng.standard_normal((6, 2))
    check_parity(views(ours), [cond, a, b], views(theirs), dtype=dtype)


def test_where_both_scalars_and_mixed_dtypes():
    cond = np.array([True, False, True])
    check_parity(lambda c: lg.where(c, 1.0, 0.0), [cond], lambda c: torch.where(c, 1.0, 0.0))
    check_parity(lambda c: lg.where(c, 1, 0), [cond], lambda c: torch.where(c, 1, 0))
    a, b = np.array([1, 2, 3]), np.array([0.5, 1.5, 2.5])
    check_parity(lambda c, x, y: lg.where(c, x, y), [cond, a, b], torch.where)


def test_where_gradcheck():
    rng = np.random.default_rng(61)
    cond = lg.tensor(rng.random((2, 1, 3)) > 0.5)
    a = lg.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    b = lg.tensor(rng.standard_normal((2, 1, 1)), requires_grad=True)
    assert lg.autograd.gradcheck(lambda x, y: lg.where(cond, x, y), [a, b])


def test_where_bad_condition():
    with pytest.raises(TypeError, match="where: condition must be a bool tensor"):
        lg.where(lg.tensor([1.0, 0.0]), lg.ones(2), lg.zeros(2))


# ----------------------------------------------------------------------------- half precision

HALF_BINARY = ["add", "sub", "mul", "div", "pow", "maximum", "minimum"]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", HALF_BINARY)
def test_binary_half_forward(name, dtype):
    ours, theirs, _, _ = BINARY[name]
    check_parity(ours, _binary_inputs(name, (3, 1, 4), (2, 4)), theirs, dtype=dtype,
                 grad=False)
    x = _pos((3, 4), 70)
    check_parity(lambda t: ours(t, 0.75) if name not in ("maximum", "minimum")
                 else ours(t, t * 0.5), [x], dtype=dtype, grad=False)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_comparisons_and_where(dtype):
    rng = np.random.default_rng(71)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4,))
    check_parity(COMPARE["lt"], [a, b], dtype=dtype, grad=False)
    check_parity(lambda x: x > 0.1, [a], dtype=dtype, grad=False)
    check_parity(lambda x, y: lg.where(x > y, x, y), [a, b],
                 lambda x, y: torch.where(x > y, x, y), dtype=dtype, grad=False)
    check_parity(lambda x: lg.where(x > 0, x, 0.5), [a],
                 lambda x: torch.where(x > 0, x, 0.5), dtype=dtype, grad=False)
    check_parity(lambda x: x.masked_fill(x > 0, 0.3), [a], dtype=dtype, grad=False)


# ----------------------------------------------------------------------------- errors

def test_broadcast_error_names_op_and_shapes():
    with pytest.raises((RuntimeError, ValueError), match=r"add.*\(2, 3\).*\(4,\)"):
        lg.ones(2, 3) + lg.ones(4)
    with pytest.raises((RuntimeError, ValueError), match=r"maximum.*\(3,\).*\(2,\)"):
        lg.ones(3).maximum(lg.ones(2))


def test_non_number_operand_is_an_error():
    with pytest.raises(TypeError, match="mul: expected a Tensor or a Python number, got str"):
        lg.ones(2) * "a"


def test_gelu_bad_approximate():
    with pytest.raises(ValueError, match="gelu: approximate must be 'none' or 'tanh'"):
        lg.ones(2).gelu(approximate="fast")


def test_clamp_needs_a_bound():
    with pytest.raises(ValueError, match="clamp: at least one of min and max"):
        lg.ones(2).clamp()


def test_clamp_integer_tensor_with_float_bounds():
    check_parity(lambda x: x.clamp(1.5, 3), [np.array([1, 2, 5])])
    check_parity(lambda x: x.clamp(0, 3), [np.array([-1, 2, 5])])


# ----------------------------------------------------------------------------- second order

@pytest.mark.parametrize("name", ["exp", "log", "tanh", "sigmoid", "gelu", "gelu_tanh",
                                  "silu", "softplus", "erf", "rsqrt", "sin", "reciprocal"])
def test_unary_second_derivative(name):
    """backward is written with Tensor ops, so the gradient is itself differentiable."""
    ours, theirs, domain, _ = UNARY[name]
    vals = _values((5,), domain, seed=80)

    x = lg.tensor(vals, requires_grad=True)
    (g,) = lg.autograd.grad(ours(x).sum(), x, create_graph=True)
    (gg,) = lg.autograd.grad(g.sum(), x)
    tx = torch.tensor(vals, requires_grad=True)
    (tg,) = torch.autograd.grad(theirs(tx).sum(), tx, create_graph=True)
    (tgg,) = torch.autograd.grad(tg.sum(), tx)
    assert_close(g, tg)
    assert_close(gg, tgg, rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------- property test

_NP_OPS = {"add": np.add, "mul": np.multiply, "maximum": np.maximum}


@settings(max_examples=40, deadline=None, database=None)
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=3),
       op=st.sampled_from(sorted(_NP_OPS)), seed=st.integers(0, 2 ** 16),
       ties=st.booleans())
def test_broadcast_property(shapes, op, seed, ties):
    sa, sb = shapes.input_shapes
    rng = np.random.default_rng(seed)
    if ties:  # few distinct values: maximum sees many ties
        a, b = (rng.integers(-2, 3, size=s).astype(np.float64) for s in (sa, sb))
    else:
        a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    ta, tb = lg.tensor(a, requires_grad=True), lg.tensor(b, requires_grad=True)
    out = getattr(ta, op)(tb)
    expected = _NP_OPS[op](a, b)
    assert out.shape == expected.shape == shapes.result_shape
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-12, atol=0)

    out.sum().backward()
    xa, xb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    getattr(xa, op)(xb).sum().backward()
    assert_close(ta.grad, xa.grad)
    assert_close(tb.grad, xb.grad)
