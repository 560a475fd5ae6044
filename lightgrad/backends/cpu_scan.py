"""The selective scan (Mamba's S6 recurrence) on the CPU, forward and backward, in NumPy.

For every batch item b, channel d and state n, with ``delta`` already shifted by
``delta_bias`` and passed through softplus when asked::

    x[t] = exp(delta[t] * A) * x[t-1] + delta[t] * u[t] * B[t]      (x[-1] = 0)
    y[t] = sum_n x[t] * C[t]  +  D * u[t],    then  y[t] * silu(z[t])

How it is vectorised: the recurrence is sequential in t but independent across (b, d, n),
so each step is one whole-array operation over (B, D, N) and the Python loop runs over
positions only. Positions are taken in chunks of ``T``: everything that does not depend on
the previous state (``exp(delta * A)``, ``delta * u * B``, the contraction with ``C`` and all
gradient reductions) is computed for a whole chunk at once, so the per-step loop is two
in-place NumPy calls. Arrays are time-major with channels last, (T, B, N, D): NumPy's inner
loops then run over contiguous channels, and a step's (B, N, D) block is contiguous.

The backward recomputes the states instead of keeping them: a first forward pass stores
only the state at each chunk boundary (B, D, N per chunk); then, chunk by chunk from the
end, the chunk's T states are recomputed from its boundary state and the adjoint
``h[t] = dL/dx[t]`` runs backwards in time::

    h[t] = exp(delta[t+1] * A) * h[t+1] + dy[t] * C[t]

from which every input gradient is a chunk-wide product and sum. Memory beyond the inputs
and gradients is O(B * D * N * (T + L / T)), never O(B * D * N * L).

B and C are (batch, N, L) or, in grouped form, (batch, G, N, L): channel d then reads group
``d // (D / G)``. Internally channels are laid out as (G, D / G), so both are one code path.

>>> import numpy as np
>>> u = np.ones((1, 1, 3)); dt = np.full((1, 1, 3), 0.5); A = -np.ones((1, 1))
>>> B = C = np.ones((1, 1, 3))
>>> y, last = selective_scan(u, dt, A, B, C, None, None, None, False)
>>> np.round(y, 4).tolist()
[[[0.5, 0.8033, 0.9872]]]
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from . import cpu_native_scan

CHUNK = 16          # positions per chunk (8-32 measured alike at B=8, D=256, N=16)


def _quiet(fn: Callable) -> Callable:
    """``fn`` with NumPy's floating-point warnings off: overflow gives inf, as in PyTorch."""
    @functools.wraps(fn)
    def quiet(*args: Any, **kwargs: Any) -> Any:
        with np.errstate(all="ignore"):
            return fn(*args, **kwargs)
    return quiet


def _compute(*bufs: Any) -> tuple[Any, ...]:
    """The buffers in the dtype the scan computes in: float64 if any is float64, else
    float32 (half types compute in float32)."""
    wide = any(b is not None and b.dtype == np.float64 for b in bufs)
    dtype = np.float64 if wide else np.float32
    return tuple(None if b is None else np.asarray(b, dtype=dtype) for b in bufs)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) without overflow (tanh saturates instead of exp)."""
    out = np.tanh(x * 0.5)
    out *= 0.5
    out += 0.5
    return out


def _grouped(B: np.ndarray) -> np.ndarray:
    """B or C as (batch, G, N, L): the plain (batch, N, L) form is one group."""
    return B[:, None] if B.ndim == 3 else B


def _deltas(delta: np.ndarray, delta_bias: Any, softplus: bool) -> tuple[Any, Any]:
    """(delta used by the recurrence, the raw delta + bias that softplus saw or None)."""
    raw = delta + delta_bias[:, None] if delta_bias is not None else delta
    if not softplus:
        return raw, None
    return np.logaddexp(raw, 0.0), raw


def _time_major(x: np.ndarray, g: int) -> np.ndarray:
    """(b, d, L) as a contiguous (L, b, G, D/G)."""
    b, d, length = x.shape
    return np.ascontiguousarray(np.moveaxis(x, 2, 0)).reshape(length, b, g, d // g)


def _batch_major(x: np.ndarray) -> np.ndarray:
    """(L, b, G, D/G) back to a contiguous (b, d, L)."""
    length, b, g, dg = x.shape
    return np.ascontiguousarray(np.moveaxis(x.reshape(length, b, g * dg), 0, 2))


class _Sequence:
    """The inputs time-major and contiguous, channels last so that NumPy's inner loops
    run over contiguous channels: delta and u (L, b, G, D/G), B and C (L, b, G, N), A as
    (G, N, D/G). Slicing by position gives a chunk; states are (T, b, G, N, D/G)."""

    def __init__(self, u, delta, A, B, C):
        g = B.shape[1]
        d, n = A.shape
        self.delta, self.u = _time_major(delta, g), _time_major(u, g)
        self.B = np.ascontiguousarray(np.moveaxis(B, 3, 0))
        self.C = np.ascontiguousarray(np.moveaxis(C, 3, 0))
        self.At = np.ascontiguousarray(A.reshape(g, d // g, n).transpose(0, 2, 1))
        self.state_shape = (u.shape[0], g, n, d // g)
        self._work: dict = {}

    def buffer(self, name: str, t: slice) -> np.ndarray:
        """A (T, b, G, N, D/G) work array for the positions ``t``, reused from chunk to
        chunk (fresh arrays would cost a page fault per 4 KiB on every chunk)."""
        length = len(range(*t.indices(len(self.u))))
        if name not in self._work or len(self._work[name]) < length:
            self._work[name] = np.empty((length,) + self.state_shape, dtype=self.u.dtype)
        return self._work[name][:length]

    def states(self, t: slice, prev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(states x, decays exp(delta * A)) of the positions ``t``, starting from the
        state ``prev`` before them: x[t] = decay[t] * x[t-1] + delta[t] * u[t] * B[t].
        Both live in work buffers that the next call overwrites."""
        decay = np.multiply(self.delta[t, ..., None, :], self.At, out=self.buffer("decay", t))
        np.exp(decay, out=decay)
        x = np.multiply((self.delta[t] * self.u[t])[..., None, :], self.B[t, ..., None],
                        out=self.buffer("x", t))
        step = np.empty_like(prev)
        for i in range(len(x)):
            np.multiply(decay[i], x[i - 1] if i else prev, out=step)
            x[i] += step
        return x, decay

    def readout(self, t: slice, x: np.ndarray) -> np.ndarray:
        """sum_n x * C of the positions ``t``, (T, b, G, D/G)."""
        return np.matmul(self.C[t, ..., None, :], x)[..., 0, :]

    def scan(self, chunk: int, boundaries: list | None = None,
             readout: bool = True) -> tuple[Any, np.ndarray]:
        """(sum_n x * C as (L, b, G, D/G), or None without ``readout``; the last state).
        With ``boundaries`` a list, the state before each chunk is appended to it."""
        length = len(self.u)
        y = np.empty_like(self.u) if readout else None
        prev = np.zeros(self.state_shape, dtype=self.u.dtype)
        for start in range(0, length, chunk):
            if boundaries is not None:
                boundaries.append(prev)
            t = slice(start, start + chunk)
            x, _ = self.states(t, prev)
            if readout:
                y[t] = self.readout(t, x)
            prev = x[-1].copy()
        return y, prev


@_quiet
def selective_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus,
                   chunk: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(y (b, d, L), last state (b, d, N)) in u's dtype; see the module docstring."""
    done = cpu_native_scan.selective_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    if done is not None:  # the C kernel ran (native/scan.c); else NumPy below
        return done
    chunk = chunk or CHUNK
    out_dtype = u.dtype
    u, delta, A, B, C, D, z, delta_bias = _compute(u, delta, A, B, C, D, z, delta_bias)
    delta, _ = _deltas(delta, delta_bias, delta_softplus)
    y, last = _Sequence(u, delta, A, _grouped(B), _grouped(C)).scan(chunk)
    y = _batch_major(y)
    if D is not None:
        y += D[:, None] * u
    if z is not None:
        y *= z * _sigmoid(z)
    b, d, _ = u.shape
    last = np.swapaxes(last, -1, -2).reshape(b, d, -1)
    return y.astype(out_dtype, copy=False), last.astype(out_dtype)


@_quiet
def selective_scan_backward(grad, grad_last, u, delta, A, B, C, D, z, delta_bias,
                            delta_softplus, chunk: int | None = None) -> tuple:
    """Gradients (du, ddelta, dA, dB, dC, dD, dz, ddelta_bias) of ``selective_scan`` for
    the output gradient ``grad`` (b, d, L) and the last state's gradient ``grad_last``
    (b, d, N) or None; entries for absent optional inputs are None. Each gradient has its
    input's dtype and shape."""
    done = cpu_native_scan.selective_scan_backward(grad, grad_last, u, delta, A, B, C, D, z,
                                                   delta_bias, delta_softplus)
    if done is not None:  # the C kernel ran (native/scan.c); else NumPy below
        return done
    chunk = chunk or CHUNK
    inputs = (u, delta, A, B, C, D, z, delta_bias)
    grad, grad_last, u, delta, A, B, C, D, z, delta_bias = _compute(grad, grad_last, *inputs)
    dt, raw = _deltas(delta, delta_bias, delta_softplus)
    seq = _Sequence(u, dt, A, _grouped(B), _grouped(C))
    b, d, length = u.shape
    _, g, n, dg = seq.state_shape
    # pass 1: the state before each chunk (and the output, which the gate's gradient needs)
    boundaries: list = []
    y, _ = seq.scan(chunk, boundaries, readout=z is not None)

    # through the gate and the skip connection: gy = dL/d(scan output)
    gz = None
    if z is not None:
        y = _batch_major(y)
        sig = _sigmoid(z)
        if D is not None:
            y += D[:, None] * u
        gz = grad * y * (sig * (1.0 + z * (1.0 - sig)))
        gy = grad * (z * sig)
    else:
        gy = grad
    gD = np.einsum("bdl,bdl->d", gy, u) if D is not None else None
    gu_skip = gy * D[:, None] if D is not None else None
    gy = _time_major(gy, g)

    gdt = np.empty_like(seq.u)                  # time-major like seq's arrays
    gu = np.empty_like(seq.u)
    gAt = np.zeros_like(seq.At)
    gB, gC = np.empty_like(seq.B), np.empty_like(seq.C)
    # the adjoint arriving from after the chunk, decay[t+1] * h[t+1]: at the end, the last
    # state's gradient
    carry = np.zeros(seq.state_shape, dtype=u.dtype) if grad_last is None \
        else np.ascontiguousarray(grad_last.reshape(b, g, dg, n).swapaxes(-1, -2))
    starts = range(0, length, chunk)
    for start, prev in zip(reversed(starts), reversed(boundaries)):
        t = slice(start, start + chunk)
        x, decay = seq.states(t, prev)                  # pass 2: the chunk's states again
        # the adjoint h[t] = dL/dx[t] = dy[t] * C[t] + decay[t+1] * h[t+1], backwards in t;
        # decay[t] is overwritten by decay[t] * h[t] on the way
        h = np.multiply(gy[t, ..., None, :], seq.C[t, ..., None], out=seq.buffer("h", t))
        h[-1] += carry
        for i in range(len(h) - 1, -1, -1):
            np.multiply(decay[i], h[i], out=decay[i])
            if i:
                h[i - 1] += decay[i]
        carry = decay[0].copy()
        # q = dL/d(decay) * decay = h[t] * decay[t] * x[t-1]
        q = decay
        q[1:] *= x[:-1]
        q[0] *= prev
        gAt += np.einsum("tbgnd,tbgd->gnd", q, seq.delta[t])
        hb = np.matmul(seq.B[t, ..., None, :], h)[..., 0, :]   # sum_n h * B
        np.einsum("tbgnd,gnd->tbgd", q, seq.At, out=gdt[t])
        gdt[t] += hb * seq.u[t]
        np.multiply(hb, seq.delta[t], out=gu[t])
        # dB[t] = sum over the group's channels of h * delta * u; dC[t] = sum of dy * x
        np.matmul(h, (seq.delta[t] * seq.u[t])[..., None], out=gB[t, ..., None])
        np.matmul(x, gy[t, ..., None], out=gC[t, ..., None])
    gdt, gu = _batch_major(gdt), _batch_major(gu)
    if gu_skip is not None:
        gu += gu_skip
    if raw is not None:
        gdt *= _sigmoid(raw)
    g_bias = gdt.sum(axis=(0, 2)) if delta_bias is not None else None
    gB, gC = np.moveaxis(gB, 0, 3), np.moveaxis(gC, 0, 3)
    if B.ndim == 3:
        gB, gC = gB[:, 0], gC[:, 0]
    gA = gAt.transpose(0, 2, 1).reshape(d, n)
    grads = (gu, gdt, gA, gB, gC, gD, gz, g_bias)
    return tuple(None if gr is None else np.ascontiguousarray(gr, dtype=x_in.dtype)
                 for gr, x_in in zip(grads, inputs))
