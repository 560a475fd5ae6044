"""Control flow: If, Loop and Scan, each running its sub-graph(s) with the outer scope visible.

Loop-carried float tensors stay Tensors, so gradients flow through every iteration; scan
outputs are stacked along a new leading axis.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ... import functions
from .registry import op
from .util import lg_float, npy, scalar


def stack(ctx: Any, values: list, axis: int = 0) -> Any:
    if values and all(lg_float(v) for v in values):
        return functions.stack(values, axis)
    return ctx.value(np.stack([npy(v) for v in values], axis=axis))


@op("If")
def if_op(ctx: Any, cond: Any, *, then_branch: Any, else_branch: Any) -> Any:
    branch = then_branch if bool(scalar(cond)) else else_branch
    outs = ctx.run_graph(branch, [])
    return tuple(outs) if len(outs) != 1 else outs[0]


@op("Loop")
def loop(ctx: Any, max_trip: Any, cond: Any, *carried: Any, body: Any) -> Any:
    n_out = ctx.n_outputs
    m = scalar(max_trip)
    keep = True if cond is None else bool(scalar(cond))
    state = list(carried)
    n_state = len(state)
    scans: list[list] = []
    i = 0
    while keep and (m is None or i < m):
        outs = ctx.run_graph(body, [ctx.value(np.array(i, np.int64)),
                                    ctx.value(np.array(keep))] + state)
        keep = bool(scalar(outs[0]))
        state = list(outs[1:1 + n_state])
        extra = outs[1 + n_state:]
        if not scans:
            scans = [[] for _ in extra]
        for lst, v in zip(scans, extra):
            lst.append(v)
        i += 1
    n_scan = n_out - n_state
    results = state
    for k in range(n_scan):
        vals = scans[k] if k < len(scans) else []
        results.append(stack(ctx, vals) if vals else ctx.value(np.zeros((0,), np.float32)))
    return tuple(results) if len(results) != 1 else results[0]


@op("Scan")
def scan(ctx: Any, *inputs: Any, body: Any, num_scan_inputs: int,
         scan_input_axes: Any = None, scan_input_directions: Any = None,
         scan_output_axes: Any = None, scan_output_directions: Any = None,
         directions: Any = None) -> Any:
    if ctx.opset < 9:
        return _scan8(ctx, *inputs, body=body, num_scan_inputs=num_scan_inputs,
                      directions=directions)
    return _scan9(ctx, *inputs, body=body, num_scan_inputs=num_scan_inputs,
                  scan_input_axes=scan_input_axes, scan_input_directions=scan_input_directions,
                  scan_output_axes=scan_output_axes,
                  scan_output_directions=scan_output_directions)


def _scan9(ctx: Any, *inputs: Any, body: Any, num_scan_inputs: int, scan_input_axes: Any,
           scan_input_directions: Any, scan_output_axes: Any,
           scan_output_directions: Any) -> Any:
    n_state = len(inputs) - num_scan_inputs
    state = list(inputs[:n_state])
    xs = list(inputs[n_state:])
    in_axes = list(scan_input_axes or [0] * num_scan_inputs)
    in_dirs = list(scan_input_directions or [0] * num_scan_inputs)
    xs = [_moveaxis(ctx, x, ax if ax >= 0 else ax + len(x.shape), 0) for x, ax in zip(xs, in_axes)]
    steps = xs[0].shape[0] if xs else 0
    n_scan_out = ctx.n_outputs - n_state
    scans: list[list] = [[] for _ in range(n_scan_out)]
    for t in range(steps):
        step_in = [x[(steps - 1 - t) if d else t] for x, d in zip(xs, in_dirs)]
        outs = ctx.run_graph(body, state + step_in)
        state = list(outs[:n_state])
        for lst, v in zip(scans, outs[n_state:]):
            lst.append(v)
    out_axes = list(scan_output_axes or [0] * n_scan_out)
    out_dirs = list(scan_output_directions or [0] * n_scan_out)
    results = list(state)
    for lst, ax, d in zip(scans, out_axes, out_dirs):
        if d:
            lst = lst[::-1]
        y = stack(ctx, lst, 0)
        nd = len(y.shape)
        results.append(_moveaxis(ctx, y, 0, ax if ax >= 0 else ax + nd))
    return tuple(results) if len(results) != 1 else results[0]


def _moveaxis(ctx: Any, x: Any, src: int, dst: int) -> Any:
    if src == dst:
        return x
    perm = list(range(len(x.shape)))
    perm.insert(dst, perm.pop(src))
    return x.permute(*perm) if lg_float(x) else ctx.value(np.transpose(npy(x), perm))


def _scan8(ctx: Any, seq_lens: Any, *inputs: Any, body: Any, num_scan_inputs: int,
           directions: Any) -> Any:
    batch = inputs[0].shape[0] if inputs else 0
    per_batch = []
    for b in range(batch):
        sub = [x[b] for x in inputs]
        outs = _scan9(ctx, *sub, body=body, num_scan_inputs=num_scan_inputs,
                      scan_input_axes=None, scan_input_directions=directions,
                      scan_output_axes=None, scan_output_directions=None)
        per_batch.append(outs if isinstance(outs, tuple) else (outs,))
    n = len(per_batch[0])
    results = [stack(ctx, [pb[i] for pb in per_batch], 0) for i in range(n)]
    return tuple(results) if len(results) != 1 else results[0]
