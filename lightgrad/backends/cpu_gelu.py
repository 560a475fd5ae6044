"""Exact GELU, its derivative and erf in float32, accurate to about one ulp, in NumPy.

NumPy has no erf, and exact GELU ``x * Phi(x)`` (Phi the standard normal CDF) is a large
part of a GPT training step on the CPU. The formula here needs a single ``exp`` for the
CDF, the density and the derivative, and works through blocks of ``BLOCK`` elements with
three small scratch buffers (whole-array temporaries would be as many copies of the input):

    h = Phi(-|x|) = 0.5 * erfc(|x| / sqrt 2) = exp(-x^2 / 2) * R(t),   t = 1 / (1 + p |x|)
    Phi(x) = h for x < 0, 1 - h for x >= 0;   GELU'(x) = Phi(x) + x * exp(-x^2 / 2) / sqrt(2 pi)

``R`` is a degree-9 polynomial in ``t`` fitted (least maximum relative error, float32
coefficients) to ``0.5 * erfc(a) * exp(a^2)`` on ``0 <= a <= 9.3``: relative error 4e-8,
under one float32 ulp. Because the left tail is computed as the small number it is (no
``1 + erf`` cancellation), ``Phi`` keeps its relative accuracy far out: GELU(-5) is right
to a few ulp where ``0.5 * (1 + erf)`` in float32 has no correct digit left.

float64 keeps the exact path (``math.erf``) in ``cpu.py``; these kernels are float32 only.
The C kernels (``native/gelu.c`` through ``cpu_native.py``) compute the same formula in one
pass and run first; this module is their NumPy twin: the fallback and the tests' reference.

>>> import numpy as np
>>> x = np.array([-1.0, 0.0, 2.0], dtype=np.float32)
>>> [round(float(v), 5) for v in gelu(x)]
[-0.15866, 0.0, 1.9545]
"""
from __future__ import annotations

import math

import numpy as np

BLOCK = 1 << 17
"""Elements per block: three float32 scratch buffers of 512 KB, whatever the input's size."""

_P = 0.46  # t = 1 / (1 + _P * |x| / sqrt 2)
_P_X = np.float32(_P / math.sqrt(2.0))
# R(t) ~ 0.5 * erfc(a) * exp(a^2), highest power first (a = |x| / sqrt 2)
_R = tuple(np.float32(0.5 * c) for c in (
    -0.049124132841825485, 0.29353174567222595, -0.6668676733970642, 0.6450052261352539,
    -0.26059281826019287, 0.31689706444740295, 0.19704844057559967, 0.26505300402641296,
    0.25902968645095825, 1.9452783817541786e-05))
# erf(z) / z ~ S(z^2) for |z| < 1, highest power first (relative error 1.2e-9)
_S = tuple(np.float32(c) for c in (
    7.85381205e-05, -8.01018011e-04, 5.18832631e-03, -2.68538113e-02, 1.12835851e-01,
    -3.76126258e-01, 1.12837917e+00))
_HALF = np.float32(-0.5)
_INV_SQRT_2PI = np.float32(1.0 / math.sqrt(2.0 * math.pi))
_SQRT2 = np.float32(math.sqrt(2.0))
_ONE, _ZERO = np.float32(1.0), np.float32(0.0)


def _horner(t: np.ndarray, coefs: tuple, out: np.ndarray) -> np.ndarray:
    np.multiply(t, coefs[0], out=out)
    for c in coefs[1:-1]:
        out += c
        out *= t
    out += coefs[-1]
    return out


def _cdf(x: np.ndarray, e: np.ndarray, t: np.ndarray, out: np.ndarray,
         s: np.ndarray) -> None:
    """out = Phi(x), e = exp(-x^2 / 2) for one block (t and s are scratch).

    With h = Phi(-|x|) <= 1/2 and s = 1 where x >= 0 else 0: Phi(x) = max(h, min(1 - h, s)),
    which is h itself on the left (no cancellation) and 1 - h on the right; NaN stays NaN.
    Four passes, all array-array (NumPy's ``where=``/``np.where`` loops are ten to twenty
    times slower than plain ones, its scalar ``maximum`` three times)."""
    np.multiply(x, x, out=e)
    e *= _HALF
    np.exp(e, out=e)
    np.abs(x, out=t)
    t *= _P_X
    t += _ONE
    np.reciprocal(t, out=t)
    _horner(t, _R, out)
    out *= e                                   # h = Phi(-|x|)
    np.subtract(_ONE, out, out=t)
    np.greater_equal(x, _ZERO, out=s, casting="unsafe")
    np.minimum(t, s, out=t)
    np.maximum(out, t, out=out)


def _blocked(fn, out: np.ndarray, *arrays: np.ndarray) -> np.ndarray:
    """Run ``fn(block of out, blocks of arrays, scratch...)`` over flat blocks of BLOCK."""
    n = out.size
    flat_out = out.reshape(-1)
    flats = [np.ascontiguousarray(a, dtype=np.float32).reshape(-1) for a in arrays]
    size = min(n, BLOCK)
    e, t, s = (np.empty(size, np.float32) for _ in range(3))
    for start in range(0, n, BLOCK):
        stop = min(start + BLOCK, n)
        k = stop - start
        fn(flat_out[start:stop], *(f[start:stop] for f in flats), e[:k], t[:k], s[:k])
    return out


def _gelu_block(out, x, e, t, s) -> None:
    _cdf(x, e, t, out, s)
    out *= x


def _gelu_backward_block(out, x, g, e, t, s) -> None:
    _cdf(x, e, t, out, s)
    e *= x
    e *= _INV_SQRT_2PI
    out += e                                   # Phi(x) + x phi(x)
    out *= g


def _gelu_and_grad_block(out, x, d, e, t, s) -> None:
    _cdf(x, e, t, d, s)                        # d = Phi(x)
    np.multiply(d, x, out=out)                 # gelu = x Phi(x)
    e *= x
    e *= _INV_SQRT_2PI
    d += e                                     # gelu' = Phi(x) + x phi(x)


def _erf_block(out, z, e, t, s) -> None:
    """erf(z) = 2 Phi(z sqrt 2) - 1 for |z| >= 1 (no cancellation there), z S(z^2) below."""
    x = np.multiply(z, _SQRT2)
    _cdf(x, e, t, out, s)
    out *= np.float32(2.0)
    out -= _ONE
    np.clip(z, -_ONE, _ONE, out=s)             # the small-|z| formula on clipped z: finite
    np.multiply(s, s, out=t)
    _horner(t, _S, e)
    e *= s
    np.abs(z, out=t)
    np.less(t, _ONE, out=s, casting="unsafe")  # s = 1 where |z| < 1
    e *= s
    np.subtract(_ONE, s, out=t)
    out *= t
    out += e                                   # one of the two terms is zero


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU ``x * Phi(x)`` of a float32 array."""
    return _blocked(_gelu_block, np.empty(x.shape, np.float32), x)


def gelu_backward(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``g * GELU'(x)`` for float32 arrays (``g`` broadcast to ``x``'s shape)."""
    return _blocked(_gelu_backward_block, np.empty(x.shape, np.float32), x,
                    np.broadcast_to(g, x.shape))


def gelu_and_grad(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(gelu(x), gelu'(x))`` of a float32 array, sharing the CDF and the exp."""
    y, d = np.empty(x.shape, np.float32), np.empty(x.shape, np.float32)
    _blocked(_gelu_and_grad_block, y, x, d.reshape(-1))  # d's flat view: written in place
    return y, d


def erf(z: np.ndarray) -> np.ndarray:
    """erf of a float32 array, within about one float32 ulp."""
    return _blocked(_erf_block, np.empty(z.shape, np.float32), z)
