"""Recurrent ONNX ops (RNN, GRU, LSTM) unrolled over time in Tensor ops (differentiable).

Gate layouts follow ONNX: LSTM ``iofc``, GRU ``zrh``. ``sequence_lens`` freezes the state
and zeroes the output past each sequence's end; ``layout=1`` means batch-first.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ... import functions
from ...nn import functional as F
from ..values import to_value
from .registry import op
from .util import np_dtype, npy


def _act(name: str, alpha: float | None, beta: float | None) -> Any:
    n = name.lower()
    if n == "sigmoid":
        return lambda x: x.sigmoid()
    if n == "tanh":
        return lambda x: x.tanh()
    if n == "relu":
        return lambda x: x.relu()
    if n == "affine":
        return lambda x: x * (1.0 if alpha is None else alpha) + (0.0 if beta is None else beta)
    if n == "leakyrelu":
        a = 0.01 if alpha is None else alpha
        return lambda x: functions.where(x < 0, x * a, x)
    if n == "thresholdedrelu":
        a = 1.0 if alpha is None else alpha
        return lambda x: functions.where(x > a, x, x * 0)
    if n == "scaledtanh":
        return lambda x: (x * (1.0 if beta is None else beta)).tanh() * \
            (1.0 if alpha is None else alpha)
    if n == "hardsigmoid":
        a, b = (0.2 if alpha is None else alpha), (0.5 if beta is None else beta)
        return lambda x: (x * a + b).clamp(0.0, 1.0)
    if n == "elu":
        a = 1.0 if alpha is None else alpha
        return lambda x: functions.where(x < 0, (x.exp() - 1) * a, x)
    if n == "softsign":
        return lambda x: x / (x.abs() + 1)
    if n == "softplus":
        return lambda x: F.softplus(x)
    raise ValueError(f"unknown activation {name!r}")


def _acts(names: list, alphas: list | None, betas: list | None, per_dir: int,
          n_dir: int) -> list:
    out = []
    ai = bi = 0
    for nm in names:
        a = b = None
        if nm.lower() in ("affine", "leakyrelu", "thresholdedrelu", "scaledtanh", "hardsigmoid",
                          "elu") and alphas is not None and ai < len(alphas):
            a = alphas[ai]
            ai += 1
        if nm.lower() in ("affine", "scaledtanh", "hardsigmoid") and betas is not None and \
                bi < len(betas):
            b = betas[bi]
            bi += 1
        out.append(_act(nm, a, b))
    if len(out) < per_dir * n_dir:
        out = (out * n_dir)[:per_dir * n_dir]
    return [out[d * per_dir:(d + 1) * per_dir] for d in range(n_dir)]


def _run(ctx: Any, kind: str, x: Any, w: Any, r: Any, b: Any, seq_lens: Any, h0: Any,
         c0: Any, p: Any, attrs: dict) -> tuple:
    layout = attrs.get("layout", 0)
    if layout:
        x = x.permute(1, 0, 2)
        h0 = h0.permute(1, 0, 2) if h0 is not None else None
        c0 = c0.permute(1, 0, 2) if c0 is not None else None
    seq, batch, _ = x.shape
    hidden = attrs["hidden_size"] or r.shape[-1]
    direction = attrs.get("direction", "forward")
    n_dir = 2 if direction == "bidirectional" else 1
    gates = {"RNN": 1, "GRU": 3, "LSTM": 4}[kind]
    defaults = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"],
                "LSTM": ["Sigmoid", "Tanh", "Tanh"]}[kind]
    names = attrs.get("activations") or defaults * n_dir
    acts = _acts(names, attrs.get("activation_alpha"), attrs.get("activation_beta"),
                 len(defaults), n_dir)
    clip = attrs.get("clip")
    dt = np_dtype(x)
    lens = npy(seq_lens).astype(np.int64) if seq_lens is not None else np.full(batch, seq)
    zeros = to_value(np.zeros((batch, hidden), dt), ctx.device)
    ys, hs, cs = [], [], []
    for d in range(n_dir):
        f = acts[d]
        wd, rd = w[d], r[d]
        if b is not None:
            wb, rb = b[d][:gates * hidden], b[d][gates * hidden:]
        else:
            wb = rb = None
        h = h0[d] if h0 is not None else zeros
        c = c0[d] if c0 is not None else zeros
        reverse = direction == "reverse" or d == 1
        steps = range(seq - 1, -1, -1) if reverse else range(seq)
        outs: list = [None] * seq
        for t in steps:
            xt = x[t]
            gx = xt.matmul(wd.t())
            if wb is not None:
                gx = gx + wb
            live = to_value((t < lens).astype(dt).reshape(batch, 1), ctx.device)
            if kind == "RNN":
                pre = gx + h.matmul(rd.t()) + (rb if rb is not None else 0)
                if clip:
                    pre = pre.clamp(-clip, clip)
                hn = f[0](pre)
                cn = c
            elif kind == "GRU":
                H = hidden
                rz = rd[:2 * H]
                gh = h.matmul(rz.t())
                if rb is not None:
                    gh = gh + rb[:2 * H]
                zr = gx[:, :2 * H] + gh
                if clip:
                    zr = zr.clamp(-clip, clip)
                z, rr = f[0](zr[:, :H]), f[0](zr[:, H:])
                rh = rd[2 * H:]
                if attrs.get("linear_before_reset", 0):
                    hh = h.matmul(rh.t())
                    if rb is not None:
                        hh = hh + rb[2 * H:]
                    pre = gx[:, 2 * H:] + rr * hh
                else:
                    pre = gx[:, 2 * H:] + (rr * h).matmul(rh.t())
                    if rb is not None:
                        pre = pre + rb[2 * H:]
                if clip:
                    pre = pre.clamp(-clip, clip)
                hc = f[1](pre)
                hn = (1 - z) * hc + z * h
                cn = c
            else:
                H = hidden
                g = gx + h.matmul(rd.t())
                if rb is not None:
                    g = g + rb
                if clip:
                    g = g.clamp(-clip, clip)
                gi, go, gf, gc = g[:, :H], g[:, H:2 * H], g[:, 2 * H:3 * H], g[:, 3 * H:]
                if p is not None:
                    pi, po, pf = p[d][:H], p[d][H:2 * H], p[d][2 * H:]
                    gi = gi + pi * c
                    gf = gf + pf * c
                i_, f_ = f[0](gi), f[0](gf)
                if attrs.get("input_forget", 0):
                    f_ = 1 - i_
                cn = f_ * c + i_ * f[1](gc)
                if p is not None:
                    go = go + po * cn
                o_ = f[0](go)
                hn = o_ * f[2](cn)
            h = hn * live + h * (1 - live)
            c = cn * live + c * (1 - live)
            outs[t] = hn * live
        ys.append(functions.stack(outs, 0))
        hs.append(h)
        cs.append(c)
    y = functions.stack(ys, 1)  # (seq, dir, batch, hidden)
    yh = functions.stack(hs, 0)
    yc = functions.stack(cs, 0)
    if layout:
        y = y.permute(2, 0, 1, 3)
        yh = yh.permute(1, 0, 2)
        yc = yc.permute(1, 0, 2)
    return y, yh, yc


def _make(kind: str) -> None:
    def run(ctx: Any, x: Any, w: Any, r: Any, b: Any = None, seq_lens: Any = None,
            h0: Any = None, c0: Any = None, p: Any = None, **attrs: Any) -> Any:
        y, yh, yc = _run(ctx, kind, x, w, r, b, seq_lens, h0, c0 if kind == "LSTM" else None,
                         p, attrs)
        outs = (y, yh, yc) if kind == "LSTM" else (y, yh)
        return outs[:max(ctx.n_outputs, 1)] if ctx.n_outputs > 1 else outs[0]
    op(kind)(run)


for _k in ("RNN", "GRU", "LSTM"):
    _make(_k)
