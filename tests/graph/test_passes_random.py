"""All passes together (and the memory plan) preserve what random graphs compute: chains of
elementwise ops, matmuls, reductions, reshapes, permutes and expands, with constants,
identity operands, repeated subexpressions and in-place writes to a param in between,
float64, compared with the unoptimised graph replayed the same way."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lightgrad.backends import get_backend
from lightgrad.graph import Executor, Graph
from lightgrad.graph.passes import plan_memory, run_passes

F64 = np.dtype("float64")
UNARY = ("neg", "abs", "tanh", "sigmoid", "relu", "sin", "cos", "exp")
BINARY = ("add", "sub", "mul", "maximum", "minimum")


def build(seed: int) -> tuple[Graph, list, list]:
    """A random graph, its input values and its param values."""
    rng = np.random.default_rng(seed)
    g = Graph()
    inputs = [rng.uniform(-1, 1, (3, 4)), rng.uniform(-1, 1, (4,))]
    params = [rng.uniform(-1, 1, (3, 4))]
    pool = [g.input((3, 4), F64, name="x"), g.input((4,), F64, name="b")]
    p = g.param(params[0].copy(), name="p")
    pool.append(p)
    history: list[tuple] = []

    def pick(shape=None):
        found = [n for n in pool if shape is None or n.shape == shape]
        return found[rng.integers(len(found))] if found else None

    for _ in range(int(rng.integers(4, 24))):
        kind = rng.integers(10)
        a = pick()
        if kind < 3:
            op = UNARY[rng.integers(len(UNARY))]
            args = (g.call("tanh", a),) if op == "exp" else (a,)
        elif kind < 6:
            op = BINARY[rng.integers(len(BINARY))]
            choice = rng.integers(5)
            if choice == 0:
                b = float(rng.choice([0.0, 1.0, 2.0, -0.5]))
            elif choice == 1:
                b = g.constant(rng.choice([0.0, 1.0, 0.25], size=a.shape[-1:]))
            else:
                b = pick(a.shape) or pick(a.shape[-1:]) or 1.0
            args = (a, b) if rng.integers(2) else (b, a)
            if not isinstance(args[0], type(a)) and not isinstance(args[1], type(a)):
                args = (a, b)
        elif kind == 6 and a.ndim == 2:
            op, args = "matmul", (a, g.call("permute", a, (1, 0)))
        elif kind == 7 and a.ndim >= 1:
            op, args = ("sum" if rng.integers(2) else "mean"), (a, (a.ndim - 1,), bool(
                rng.integers(2)), None)
        elif kind == 8 and a.ndim == 2:
            flat = g.call("reshape", a, (a.size,))
            back = g.call("reshape", flat, a.shape)
            twice = g.call("permute", g.call("permute", back, (1, 0)), (1, 0))
            op, args = "expand", (g.call("astype", twice, F64), a.shape)
        elif kind == 9 and history:
            op, args = history[rng.integers(len(history))]     # a repeated subexpression
        else:
            op, args = "mul", (a, 1.0)
        node = g.call(op, *args)
        history.append((op, args))
        pool.append(node)
        if rng.integers(6) == 0:                                # write p in place
            g.call("binary_inplace", "add", p, 0.125)
    g.outputs = [pool[-1], pool[rng.integers(3, len(pool))], g.call("mul", p, 1.0)]
    return g, inputs, params


def replay(graph: Graph, inputs: list, params: list, plan=None) -> list:
    fresh = [np.array(v, copy=True) for v in params]
    outs = Executor(graph, get_backend("cpu"), plan)(list(inputs), fresh, [])
    return [np.array(o, copy=True) for o in outs] + fresh


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_passes_preserve_results_on_random_graphs(seed):
    g, inputs, params = build(seed)
    g.validate()
    want = replay(g, inputs, params)
    g2, _, _ = build(seed)
    optimised = run_passes(g2)
    optimised.validate()
    assert len(optimised) <= len(g)
    for plan in (None, plan_memory(optimised)):
        got = replay(optimised, inputs, params, plan)
        assert len(got) == len(want)
        for gv, wv in zip(got, want):
            np.testing.assert_allclose(gv, wv, rtol=1e-12, atol=1e-12)
