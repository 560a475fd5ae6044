"""The selective scan's C kernels (``native/scan.c``) as NumPy functions, for ``cpu_scan.py``.

Same arguments and results as ``cpu_scan.selective_scan`` and
``cpu_scan.selective_scan_backward`` (the NumPy twins), or ``None`` when the C kernels
can't run them (the library is off or not built, an input is empty, or the shapes don't
fit together, for which the twins raise their errors). The twins call these first and fall
back to themselves::

    done = cpu_native_scan.selective_scan(u, delta, A, B, C, D, z, delta_bias, softplus)
    if done is not None:
        return done

They compute in float32 or float64 as the twins do (``cpu_scan._compute``); B and C go to
the kernels time-major, (batch, G, L, N), with N padded by zeros (also in A) to a multiple
of the kernels' 64-byte vectors. The backward keeps one channel's states at a time
(2 L N + 5 L values of work), never the whole (batch, dim, L, N).

>>> import numpy as np
>>> u = np.ones((1, 1, 3)); dt = np.full((1, 1, 3), 0.5); A = -np.ones((1, 1))
>>> out = selective_scan(u, dt, A, u[:, :1], u[:, :1], None, None, None, False)
>>> out is None or np.round(out[0], 4).tolist() == [[[0.5, 0.8033, 0.9872]]]
True
"""
from __future__ import annotations

import numpy as np

from . import cpu_native, cpu_scan, native

native.declare(
    lg_selective_scan_f32="p" * 11 + "i" * 6, lg_selective_scan_f64="p" * 11 + "i" * 6,
    lg_selective_scan_backward_f32="p" * 19 + "i" * 6,
    lg_selective_scan_backward_f64="p" * 19 + "i" * 6,
)

_ptr, _opt = native.pointer, native.optional_pointer  # _opt: an absent input is NULL


def _padded(x: np.ndarray, width: int) -> np.ndarray:
    """``x`` with its last axis zero-padded to ``width``, C-contiguous."""
    out = np.zeros(x.shape[:-1] + (width,), x.dtype)
    out[..., :x.shape[-1]] = x
    return out


def _fits(grads: tuple, u, delta, A, B, C, D, z, delta_bias) -> bool:
    """Whether the shapes fit together (the C loops trust them; the op layer checks them
    with clear errors before any backend runs)."""
    b, d, length = u.shape
    n = A.shape[1] if A.ndim == 2 else -1
    want = [((b, d, length), (delta, z, *grads[:1])), ((d, n), (A,)),
            ((d,), (D, delta_bias)), ((b, d, n), grads[1:])]
    groups = B.shape[1] if B.ndim == 4 else 1
    return B.shape == C.shape and B.shape[0] == b and B.shape[-2:] == (n, length) \
        and d % groups == 0 \
        and all(x is None or x.shape == shape for shape, xs in want for x in xs)


def _operands(name: str, bufs: tuple) -> tuple | None:
    """``(kernel, bufs in the compute dtype, A (d, n), B and C (b, G, L, n))`` with the state
    size padded to ``n``, a multiple of the kernels' 64-byte blocks; None when the C kernels
    can't take them."""
    bufs = cpu_scan._compute(*bufs)
    u, A, B = bufs[-8], bufs[-6], bufs[-5]
    fn = cpu_native.kernel(name, u.dtype)
    if fn is None or u.size == 0 or A.size == 0 or u.ndim != 3 or B.ndim not in (3, 4) \
            or not _fits(bufs[:-8], *bufs[-8:]):
        return None
    lanes = 64 // u.dtype.itemsize
    width = -(-A.shape[1] // lanes) * lanes
    bufs = tuple(None if x is None else cpu_native._c(x) for x in bufs)
    Bt, Ct = (_padded(np.swapaxes(cpu_scan._grouped(m), 2, 3), width) for m in bufs[-5:-3])
    return fn, bufs, _padded(A, width), Bt, Ct


def selective_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus) -> tuple | None:
    """(y (b, d, L), last state (b, d, N)) in u's dtype (twin: ``cpu_scan.selective_scan``),
    or None."""
    ops = _operands("selective_scan", (u, delta, A, B, C, D, z, delta_bias))
    if ops is None:
        return None
    fn, (uc, dc, _, _, _, Dc, zc, bc), Ap, Bt, Ct = ops
    b, d, length = uc.shape
    groups, width = Bt.shape[1], Ap.shape[1]
    y = np.empty_like(uc)
    last = np.empty((b, d, width), uc.dtype)
    work = np.empty(length, uc.dtype)
    fn(_ptr(y), _ptr(last), _ptr(work), _ptr(uc), _ptr(dc), _ptr(Ap), _ptr(Bt), _ptr(Ct),
       _opt(Dc), _opt(zc), _opt(bc), b, d, length, width, groups, int(bool(delta_softplus)))
    return y.astype(u.dtype, copy=False), last[..., :A.shape[1]].astype(u.dtype)


def selective_scan_backward(grad, grad_last, u, delta, A, B, C, D, z, delta_bias,
                            delta_softplus) -> tuple | None:
    """Gradients (du, ddelta, dA, dB, dC, dD, dz, ddelta_bias), None for absent inputs
    (twin: ``cpu_scan.selective_scan_backward``), or None."""
    inputs = (u, delta, A, B, C, D, z, delta_bias)
    ops = _operands("selective_scan_backward", (grad, grad_last, *inputs))
    if ops is None:
        return None
    fn, (gc, glc, uc, dc, _, _, _, Dc, zc, bc), Ap, Bt, Ct = ops
    b, d, length = uc.shape
    groups, width = Bt.shape[1], Ap.shape[1]
    glc = None if glc is None else _padded(glc, width)
    gu, gdelta = np.empty_like(uc), np.empty_like(uc)
    gA, gBt, gCt = np.zeros_like(Ap), np.zeros_like(Bt), np.zeros_like(Ct)
    gD = None if Dc is None else np.zeros_like(Dc)
    gz = None if zc is None else np.empty_like(zc)
    gbias = None if bc is None else np.zeros_like(bc)
    work = np.empty(2 * length * width + 5 * length, uc.dtype)
    fn(_ptr(gu), _ptr(gdelta), _ptr(gA), _ptr(gBt), _ptr(gCt), _opt(gD), _opt(gz),
       _opt(gbias), _ptr(work), _ptr(gc), _opt(glc), _ptr(uc), _ptr(dc), _ptr(Ap), _ptr(Bt),
       _ptr(Ct), _opt(Dc), _opt(zc), _opt(bc), b, d, length, width, groups,
       int(bool(delta_softplus)))
    n = A.shape[1]
    gA = gA[:, :n]
    gB, gC = (np.swapaxes(m[..., :n], 2, 3) for m in (gBt, gCt))
    if B.ndim == 3:
        gB, gC = gB[:, 0], gC[:, 0]
    grads = (gu, gdelta, gA, gB, gC, gD, gz, gbias)
    return tuple(None if gr is None else np.ascontiguousarray(gr, dtype=x.dtype)
                 for gr, x in zip(grads, inputs))
