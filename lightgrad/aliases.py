"""``lightgrad.exp(x)``, ``lightgrad.sum(x, dim)``...: free-function forms of Tensor methods.

Kept in its own module because the names shadow Python built-ins (sum, max, abs...).

>>> import lightgrad as lg
>>> lg.sum(lg.ones(2, 3), dim=1)
tensor([3., 3.])
"""
from __future__ import annotations

from typing import Any

from .tensor import Tensor


def _method_alias(name: str) -> Any:
    def fn(input: Tensor, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: expected a Tensor, got {type(input).__name__}")
        return getattr(input, name)(*args, **kwargs)
    fn.__name__ = name
    fn.__doc__ = f"``lightgrad.{name}(x, ...)`` is ``x.{name}(...)``."
    return fn


_ALIASES = (
    "neg", "abs", "exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "relu",
    "erf", "reciprocal", "sign", "floor", "ceil", "round", "clamp", "clip", "square", "log1p",
    "add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne", "lt", "le", "gt",
    "ge", "logical_and", "logical_or", "logical_xor", "logical_not", "masked_fill",
    "sum", "mean", "prod", "amax", "amin", "max", "min", "argmax", "argmin", "var", "std",
    "logsumexp", "norm", "all", "any", "cumsum", "reshape", "permute", "transpose",
    "squeeze", "unsqueeze", "flatten", "split", "chunk", "unbind", "narrow", "flip", "tril",
    "triu", "gather", "scatter_add", "index_select", "index_add", "softmax", "log_softmax",
    "topk", "sort", "argsort", "multinomial", "clone", "detach", "numel", "t",
)
for _name in _ALIASES:
    globals()[_name] = _method_alias(_name)
__all__ = list(_ALIASES)
