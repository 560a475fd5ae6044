"""Elementwise ops: unary math, binary arithmetic with broadcasting, comparisons, where, clamp.

Each op is a ``Function``: ``forward`` calls the backend primitive of the same name,
``backward`` is written with Tensor ops.

>>> import lightgrad as lg
>>> x = lg.tensor([1.0, -2.0], requires_grad=True)
>>> (x.exp() * x.abs()).sum().backward(); x.grad
tensor([5.4366, 0.1353])
"""
from __future__ import annotations

import math
from typing import Any

from .. import dtypes
from ..autograd import Function, is_grad_enabled
from ..tensor import Tensor
from .common import (binary_operands, check_broadcast, check_scalar, describe, float_input,
                     same_device, unbroadcast, wrap)

_FLOAT = dtypes.FLOAT_NUMPY_DTYPES

# ----------------------------------------------------------------------------- unary


class _Unary(Function):
    """``y = op(x)``; saves x (``save='x'``), y (``save='y'``) or nothing."""

    op = ""
    save = "x"
    float_only = True

    @classmethod
    def forward(cls, ctx, x):
        buf = x._data
        if cls.float_only and buf.dtype not in _FLOAT:
            buf = float_input(x)
        dev = x.device
        y = wrap(getattr(dev.backend, cls.op)(buf), dev)
        if ctx._record and cls.save:
            if cls.save == "x":
                ctx.save_for_backward(x)
            else:
                ctx._save_output(y)
        return y


class Neg(_Unary):
    op, save, float_only = "neg", None, False

    @staticmethod
    def backward(ctx, g):
        return -g


class Abs(_Unary):
    op, float_only = "abs", False

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x.sign()


class Exp(_Unary):
    op, save = "exp", "y"

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y


class Log(_Unary):
    op = "log"

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / x


class Sqrt(_Unary):
    op, save = "sqrt", "y"

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g / (2 * y)


class Rsqrt(_Unary):
    op, save = "rsqrt", "y"

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * (-0.5) * y * y * y


class Sin(_Unary):
    op = "sin"

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x.cos()


class Cos(_Unary):
    op = "cos"

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return -g * x.sin()


class Tanh(_Unary):
    op, save = "tanh", "y"

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * (1 - y * y)


class Sigmoid(_Unary):
    op, save = "sigmoid", "y"

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y * (1 - y)


class Relu(_Unary):
    op, save, float_only = "relu", "y", False

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * (y > 0)


_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


class Gelu(_Unary):
    """Exact GELU. When its gradient will be needed the forward also computes the
    derivative (``gelu_and_grad``: the CDF and the exp are shared), so a first-order
    backward is one product instead of evaluating erf again."""

    op = "gelu"

    @classmethod
    def forward(cls, ctx, x):
        if not ctx._record:
            return super().forward(ctx, x)
        y, d = x.device.backend.gelu_and_grad(float_input(x))
        ctx.save_for_backward(x, wrap(d, x.device))
        return wrap(y, x.device)

    @staticmethod
    def backward(ctx, g):
        x, d = ctx.saved_tensors
        if not is_grad_enabled():  # first-order backward: the saved derivative
            return g * d
        cdf = 0.5 * (1 + (x * (1 / math.sqrt(2.0))).erf())
        pdf = (x * x * -0.5).exp() * _INV_SQRT_2PI
        return g * (cdf + x * pdf)


class GeluTanh(_Unary):
    op = "gelu_tanh"

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        inner = _SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)
        t = inner.tanh()
        d_inner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
        return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * d_inner)


class Silu(_Unary):
    op = "silu"

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        s = x.sigmoid()
        return g * s * (1 + x * (1 - s))


class Softplus(_Unary):
    op = "softplus"

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x.sigmoid()


class Erf(_Unary):
    op = "erf"

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (2 / math.sqrt(math.pi)) * (-(x * x)).exp()


class Reciprocal(_Unary):
    op, save = "reciprocal", "y"

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return -g * y * y


class _Stepwise(_Unary):
    """Piecewise-constant ops: their gradient is zero almost everywhere."""

    save, float_only = None, False

    @staticmethod
    def backward(ctx, g):
        return g * 0


class Sign(_Stepwise):
    op = "sign"


class Floor(_Stepwise):
    op = "floor"


class Ceil(_Stepwise):
    op = "ceil"


class Round(_Stepwise):
    op = "round"


class LogicalNot(_Stepwise):
    op = "logical_not"


# ----------------------------------------------------------------------------- binary


class _Binary(Function):
    """``y = op(a, b)`` with broadcasting; either operand may be a Python number."""

    op = ""
    save = True
    numbers = (None, None)  # the operands that are Python numbers (see _remember)

    @classmethod
    def forward(cls, ctx, a, b):
        if isinstance(b, Tensor) and isinstance(a, Tensor) and a.device is b.device and \
                a._data.dtype == b._data.dtype:  # the common case: nothing to promote
            x, y, dev = a._data, b._data, a.device
        else:
            x, y, dev, _ = binary_operands(cls.op, a, b)
        if ctx._record and cls.save:
            _remember(ctx, a, b)
        try:
            return wrap(getattr(dev.backend, cls.op)(x, y), dev)
        except (ValueError, TypeError) as err:
            _binary_error(cls.op, a, b, err)

    @staticmethod
    def _operands(ctx):
        """(a, b) with saved tensors checked for in-place changes; numbers as they were."""
        sa, sb = ctx.saved_tensors
        na, nb = ctx.numbers
        return (na if sa is None else sa), (nb if sb is None else sb)


def _run_binary(op, dev, x, y, a, b):
    """The backend's ``op(x, y)`` on promoted operands, with errors that name the op and the
    original operands ``a`` and ``b`` instead of NumPy's own messages."""
    try:
        return wrap(getattr(dev.backend, op)(x, y), dev)
    except (ValueError, TypeError) as err:
        _binary_error(op, a, b, err)


def _binary_error(op, a, b, err):
    """Raise the clear error for ``op(a, b)`` that failed in the backend with ``err``."""
    check_broadcast(op, a, b)  # raises the clear error when shapes don't fit
    # e.g. bool - bool, or an integer to a negative integer power
    raise type(err)(f"{op}: not supported for {describe(a)} and {describe(b)}: "
                    f"{err}") from None


def _remember(ctx, a, b):
    """Keep the operands for backward: numbers as they are (in ``ctx.numbers``), tensors
    saved."""
    a_is_num, b_is_num = _is_number(a), _is_number(b)
    if a_is_num or b_is_num:
        ctx.numbers = (a if a_is_num else None, b if b_is_num else None)
    ctx.save_for_backward(None if a_is_num else a, None if b_is_num else b)


def _input_shape(ctx, i):
    """The shape input ``i`` had when the op was recorded (an input that needs a grad)."""
    return ctx._edges[i][2]


def _grads(ctx, ga, gb):
    """Gradients for (a, b), summed to their shapes, None where not needed."""
    need_a, need_b = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    return (unbroadcast(ga(), _input_shape(ctx, 0)) if need_a else None,
            unbroadcast(gb(), _input_shape(ctx, 1)) if need_b else None)


class Add(_Binary):
    op, save = "add", False

    @staticmethod
    def backward(ctx, g):
        return _grads(ctx, lambda: g, lambda: g)


class Sub(_Binary):
    op, save = "sub", False

    @staticmethod
    def backward(ctx, g):
        return _grads(ctx, lambda: g, lambda: -g)


class Mul(_Binary):
    op = "mul"

    @classmethod
    def backward(cls, ctx, g):
        a, b = cls._operands(ctx)
        return _grads(ctx, lambda: g * b, lambda: g * a)


class Div(_Binary):
    op = "div"

    @classmethod
    def forward(cls, ctx, a, b):
        x, y, dev, res = binary_operands("div", a, b)
        if not res.is_floating_point:  # true division of integers gives floats
            x, y, dev, _ = binary_operands("div", _to_float(a), _to_float(b))
        if ctx._record:
            _remember(ctx, a, b)
        return _run_binary("div", dev, x, y, a, b)

    @classmethod
    def backward(cls, ctx, g):
        a, b = cls._operands(ctx)
        return _grads(ctx, lambda: g / b, lambda: -g * a / (b * b))


class Pow(_Binary):
    op = "pow"

    @classmethod
    def backward(cls, ctx, g):
        a, b = cls._operands(ctx)

        def grad_base():  # zero where the exponent is 0, as in torch (not 0 * 0 ** -1)
            if _is_number(b):
                if b == 0:
                    return g * 0
                return g * b * a ** (b - 1) if b != 2 else g * 2 * a
            return (g * b * a ** (b - 1)).masked_fill(b == 0, 0.0)

        def grad_exponent():
            a_t = a if not _is_number(a) else b * 0 + a
            out = a_t ** b
            return g * (out * a_t.log()).masked_fill((a_t == 0) & (b >= 0), 0.0)

        return _grads(ctx, grad_base, grad_exponent)


class Maximum(_Binary):
    op = "maximum"

    @classmethod
    def backward(cls, ctx, g):
        a, b = cls._operands(ctx)
        share = (a > b) + (a == b) * 0.5
        return _grads(ctx, lambda: g * share, lambda: g * (1 - share))


class Minimum(_Binary):
    op = "minimum"

    @classmethod
    def backward(cls, ctx, g):
        a, b = cls._operands(ctx)
        share = (a < b) + (a == b) * 0.5
        return _grads(ctx, lambda: g * share, lambda: g * (1 - share))


class _Boolean(_Binary):
    """Comparisons and logical ops: bool results, no gradient."""

    save = False

    @staticmethod
    def backward(ctx, g):
        return None, None


class Eq(_Boolean):
    op = "eq"


class Ne(_Boolean):
    op = "ne"


class Lt(_Boolean):
    op = "lt"


class Le(_Boolean):
    op = "le"


class Gt(_Boolean):
    op = "gt"


class Ge(_Boolean):
    op = "ge"


class LogicalAnd(_Boolean):
    op = "logical_and"


class LogicalOr(_Boolean):
    op = "logical_or"


class LogicalXor(_Boolean):
    op = "logical_xor"


def _is_number(v: Any) -> bool:
    return not isinstance(v, Tensor)


def _to_float(v: Any) -> Any:
    if _is_number(v):
        return float(v)
    return v if v.dtype.is_floating_point else v.to(dtypes.get_default_dtype())


# ----------------------------------------------------------------------------- where, clamp


class Where(Function):
    """``a`` where ``cond`` else ``b``; a and b may be Python numbers."""

    @staticmethod
    def forward(ctx, cond, a, b):
        if not (hasattr(cond, "_data") and cond._data.dtype == bool):
            raise TypeError(f"where: condition must be a bool tensor, got "
                            f"{getattr(cond, 'dtype', type(cond).__name__)}")
        if _is_number(a) and _is_number(b):  # two numbers: a 0-d tensor of their dtype
            check_scalar("where", a)
            a = wrap(cond.device.backend.full((), a, dtypes.result_type(a, b).np), cond.device)
        x, y, dev, _ = binary_operands("where", a, b)
        if cond.device is not dev:
            same_device("where", [t for t in (cond, a, b) if hasattr(t, "_data")])
        check_broadcast("where", cond, a, b)
        ctx.save_for_backward(cond)
        return wrap(dev.backend.where(cond._data, x, y), dev)

    @staticmethod
    def backward(ctx, g):
        (cond,) = ctx.saved_tensors
        need = ctx.needs_input_grad
        ga = unbroadcast(g.masked_fill(cond.logical_not(), 0.0), _input_shape(ctx, 1)) \
            if need[1] else None
        gb = unbroadcast(g.masked_fill(cond, 0.0), _input_shape(ctx, 2)) if need[2] else None
        return None, ga, gb


class Clamp(Function):
    """``x`` limited to [low, high] (either bound may be None)."""

    @staticmethod
    def forward(ctx, x, low, high):
        if low is None and high is None:
            raise ValueError("clamp: at least one of min and max must be given")
        for bound in (low, high):
            if bound is not None:
                check_scalar("clamp", bound)
        ctx.save_for_backward(x)
        ctx.low, ctx.high = low, high
        res = dtypes.result_type(x, *(v for v in (low, high) if v is not None))
        # int with float bounds
        buf = x._data if res is x.dtype else x.device.backend.astype(x._data, res.np)
        return wrap(x.device.backend.clamp(buf, low, high), x.device)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        keep = None
        if ctx.low is not None:
            keep = x >= ctx.low
        if ctx.high is not None:
            upper = x <= ctx.high
            keep = upper if keep is None else keep & upper
        return g * keep, None, None
