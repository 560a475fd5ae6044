"""Mamba's selective scan as one fused op (``mamba_ssm``'s ``selective_scan_fn``).

Forward is one backend primitive that returns the output and the last state; only the
inputs are saved. Backward is a second primitive that recomputes the hidden states
(B, D, N per position) chunk by chunk, so memory between forward and backward grows with
B * L * D (the inputs), not B * L * D * N. Under ``create_graph`` the gradient is taken
through the step-by-step formulation written with Tensor ops instead, so it is itself
differentiable.

>>> import lightgrad as lg
>>> u = lg.ones(1, 1, 3); dt = lg.full((1, 1, 3), 0.5); A = -lg.ones(1, 1)
>>> [round(v, 4) for v in selective_scan(u, dt, A, lg.ones(1, 1, 3), lg.ones(1, 1, 3))[0, 0]
...  .tolist()]
[0.5, 0.8033, 0.9872]
"""
from __future__ import annotations

from typing import Any

from .. import dtypes
from ..autograd import Function, grad, is_grad_enabled
from ..tensor import Tensor
from .common import describe, same_device, wrap

_OP = "selective_scan"


def reference_scan(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                   D: Tensor | None, z: Tensor | None, delta_bias: Tensor | None,
                   delta_softplus: bool) -> tuple[Tensor, Tensor]:
    """(y, last_state) of the selective scan, one position at a time with Tensor ops (the
    mamba-minimal formulation: slow, but every step is differentiable)."""
    from ..functions import stack
    if delta_bias is not None:
        delta = delta + delta_bias.unsqueeze(-1)
    if delta_softplus:
        delta = delta.softplus()
    b, d, length = u.shape
    n = A.shape[1]

    def per_channel(m: Tensor) -> Tensor:  # (b, N, L) or (b, G, N, L) -> (b, d or 1, N, L)
        if m.ndim == 3:
            return m.unsqueeze(1)
        g = m.shape[1]
        return m.unsqueeze(2).expand(b, g, d // g, n, length).reshape(b, d, n, length)

    Bx, Cx = per_channel(B), per_channel(C)
    decay = (delta.unsqueeze(-1) * A.unsqueeze(1)).exp()                 # (b, d, L, N)
    inputs = (delta * u).unsqueeze(-1) * Bx.transpose(-1, -2)           # (b, d, L, N)
    x = None
    ys = []
    for t in range(length):
        x = inputs[:, :, t] if x is None else decay[:, :, t] * x + inputs[:, :, t]
        ys.append((x * Cx[:, :, :, t]).sum(-1))
    y = stack(ys, dim=-1)
    if D is not None:
        y = y + D.unsqueeze(-1) * u
    if z is not None:
        y = y * z.silu()
    return y, x


class SelectiveScan(Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus, want_last):
        bufs = [t._data if t is not None else None for t in (u, delta, A, B, C, D, z,
                                                            delta_bias)]
        y, last = u.device.backend.selective_scan(*bufs, delta_softplus)
        ctx.delta_softplus, ctx.want_last = delta_softplus, want_last
        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias)
        return wrap(y, u.device), wrap(last, u.device)

    @staticmethod
    def backward(ctx, g, g_last):
        inputs = ctx.saved_tensors
        needs = ctx.needs_input_grad[:8]
        if is_grad_enabled():  # create_graph: differentiate the step-by-step formulation
            wanted = [t for t, need in zip(inputs, needs) if need]
            y, last = reference_scan(*inputs, ctx.delta_softplus)
            found = iter(grad((y, last), wanted, (g, g_last), create_graph=True,
                              allow_unused=True))
            return tuple(next(found) if need else None for need in needs) + (None, None)
        bufs = [t._data if t is not None else None for t in inputs]
        # without return_last_state nothing can have used the last state: its grad is 0
        last = g_last._data if ctx.want_last else None
        grads = g.device.backend.selective_scan_backward(g._data, last, *bufs,
                                                         ctx.delta_softplus)
        return tuple(wrap(buf, g.device) if need and buf is not None else None
                     for buf, need in zip(grads, needs)) + (None, None)


def _shape_error(message: str, **tensors: Any) -> ValueError:
    shown = ", ".join(f"{name} {tuple(t.shape)}" for name, t in tensors.items()
                      if t is not None)
    return ValueError(f"{_OP}: {message}; got {shown}")


def _check(u: Any, delta: Any, A: Any, B: Any, C: Any, D: Any, z: Any,
           delta_bias: Any) -> None:
    named = {"u": u, "delta": delta, "A": A, "B": B, "C": C, "D": D, "z": z,
             "delta_bias": delta_bias}
    for name, t in named.items():
        if t is not None and not isinstance(t, Tensor):
            raise TypeError(f"{_OP}: {name} must be a Tensor, got {type(t).__name__}")
    given = {k: t for k, t in named.items() if t is not None}
    same_device(_OP, list(given.values()))
    shown = ", ".join(f"{k} {describe(t)}" for k, t in given.items())
    if not all(t.dtype.is_floating_point for t in given.values()):
        raise TypeError(f"{_OP}: every input must be floating point; got {shown}")
    # u, delta, B, C, z share one dtype; A, D, delta_bias have it too, or float32 when it
    # is a half type (mamba_ssm keeps those parameters in float32)
    main = u.dtype
    half = main in (dtypes.float16, dtypes.bfloat16)
    for k, t in given.items():
        ok = t.dtype is main or (k in ("A", "D", "delta_bias") and half
                                 and t.dtype is dtypes.float32)
        if not ok:
            raise TypeError(f"{_OP}: inputs must share u's dtype ({main.name}; A, D and "
                            f"delta_bias may also be float32 for half u); got {shown}")
    if u.ndim != 3:
        raise _shape_error("u must be (batch, dim, length)", u=u)
    b, d, length = u.shape
    if tuple(delta.shape) != (b, d, length):
        raise _shape_error("delta must have u's shape (batch, dim, length)", u=u, delta=delta)
    if z is not None and tuple(z.shape) != (b, d, length):
        raise _shape_error("z must have u's shape (batch, dim, length)", u=u, z=z)
    if A.ndim != 2 or A.shape[0] != d:
        raise _shape_error("A must be (dim, state)", u=u, A=A)
    n = A.shape[1]
    for name, m in (("B", B), ("C", C)):
        if m.ndim == 2:
            raise _shape_error(f"a fixed {name} of shape (dim, state) is not supported; pass "
                               f"an input-dependent {name} of shape (batch, state, length)",
                               **{name: m})
        plain = m.ndim == 3 and tuple(m.shape) == (b, n, length)
        grouped = m.ndim == 4 and tuple(m.shape[:1] + m.shape[2:]) == (b, n, length) \
            and m.shape[1] > 0 and d % m.shape[1] == 0
        if not (plain or grouped):
            raise _shape_error(f"{name} must be (batch, state, length) or (batch, groups, "
                               "state, length) with groups dividing dim", u=u, A=A,
                               **{name: m})
    for name, p in (("D", D), ("delta_bias", delta_bias)):
        if p is not None and tuple(p.shape) != (d,):
            raise _shape_error(f"{name} must be (dim,)", u=u, **{name: p})


def selective_scan(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                   D: Tensor | None = None, z: Tensor | None = None,
                   delta_bias: Tensor | None = None, delta_softplus: bool = False,
                   return_last_state: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Mamba's selective scan, with ``mamba_ssm.selective_scan_fn``'s signature and layout.

    u, delta, z: (batch, dim, length); A: (dim, state); B, C: (batch, state, length) or
    (batch, groups, state, length) (channel i reads group ``i // (dim // groups)``);
    D, delta_bias: (dim,). With ``delta = softplus(delta + delta_bias)`` (softplus only if
    ``delta_softplus``) and x[-1] = 0::

        x[t] = exp(delta[t] * A) * x[t-1] + delta[t] * u[t] * B[t]     # (batch, dim, state)
        y[t] = sum over state of x[t] * C[t] + D * u[t];   y = y * silu(z)

    Returns y (batch, dim, length), and with ``return_last_state`` also x[length - 1]
    (batch, dim, state), the state to continue from (e.g. for generation).

    >>> import lightgrad as lg
    >>> u = lg.randn(2, 8, 5); A = -lg.rand(8, 4)
    >>> y, last = selective_scan(u, lg.rand(2, 8, 5), A, lg.randn(2, 4, 5), lg.randn(2, 4, 5),
    ...                          return_last_state=True)
    >>> y.shape, last.shape
    ((2, 8, 5), (2, 8, 4))
    """
    _check(u, delta, A, B, C, D, z, delta_bias)
    y, last = SelectiveScan.apply(u, delta, A, B, C, D, z, delta_bias, bool(delta_softplus),
                                  bool(return_last_state))
    return (y, last) if return_last_state else y
