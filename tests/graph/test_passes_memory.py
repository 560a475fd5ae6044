"""The memory plan: which nodes run in place (dying operands only; never inputs, params,
outputs, or memory with a live view), slot sharing by lifetime, the same results through
the Executor, and the planned peak below the unplanned one."""
from __future__ import annotations

import numpy as np

from lightgrad.backends import get_backend
from lightgrad.graph import Executor, Graph
from lightgrad.graph.passes import memory_stats, plan_memory

F64 = np.dtype("float64")
X = np.linspace(-1.0, 1.0, 12).reshape(3, 4)


def replay(graph, inputs, plan=None, params=None):
    if params is not None:
        params = [np.array(p, copy=True) for p in params]
    return Executor(graph, get_backend("cpu"), plan)(list(inputs), params, [])


def chain() -> tuple[Graph, dict]:
    g = Graph()
    x = g.input((3, 4), F64, name="x")
    e = g.call("exp", x)
    a = g.call("mul", e, 2.0)            # e dies here: in place
    b = g.call("add", a, x)              # a dies here: in place
    c = g.call("sub", x, 2.0)            # x is an input: not in place
    d = g.call("div", b, c)
    g.outputs = [g.call("sum", d, (0,), False, None)]
    return g, dict(x=x, e=e, a=a, b=b, c=c, d=d)


def test_dying_operands_are_written_in_place():
    g, n = chain()
    plan = plan_memory(g)
    assert plan.inplace == {n["a"], n["b"], n["d"]}
    assert plan.slots[n["a"]] == plan.slots[n["e"]] == plan.slots[n["b"]]
    want = ((np.exp(X) * 2 + X) / (X - 2)).sum(0)
    np.testing.assert_allclose(replay(g, [X], plan)[0], want, rtol=1e-15)
    np.testing.assert_array_equal(replay(g, [X], plan)[0], replay(g, [X])[0])


def test_planned_peak_and_arena_are_smaller():
    g, _ = chain()
    plan = plan_memory(g)
    planned, unplanned = memory_stats(g, plan), memory_stats(g)
    value = 3 * 4 * 8
    assert unplanned["peak_bytes"] == 3 * value      # b, c and d alive together
    assert planned["peak_bytes"] == 2 * value        # e's buffer (holding b) and c
    assert planned["arena_bytes"] < unplanned["arena_bytes"]


def test_no_in_place_into_inputs_params_outputs_or_viewed_memory():
    g = Graph()
    x = g.input((3, 4), F64, name="x")
    p = g.param(X.copy(), name="p")
    a = g.call("add", x, 1.0)                          # input operand
    b = g.call("mul", p, 3.0)                          # param operand
    e = g.call("exp", x)
    view = g.call("permute", e, (1, 0))                # a view of e, read after f
    f = g.call("add", e, 1.0)
    h = g.call("neg", x)
    out = g.call("mul", h, 2.0)                        # h is also an output
    g.outputs = [a, b, f, g.call("neg", view), out, h]
    plan = plan_memory(g)
    assert plan.inplace == set()
    got = replay(g, [X], plan, [X])
    want = [X + 1, X * 3, np.exp(X) + 1, -np.exp(X).T, -X * 2, -X]
    for gv, wv in zip(got, want):
        np.testing.assert_allclose(gv, wv, rtol=1e-15)


def test_no_in_place_when_the_other_operand_is_a_view_of_it():
    g = Graph()
    x = g.input((4, 4), F64, name="x")
    e = g.call("exp", x)
    g.outputs = [g.call("add", e, g.call("permute", e, (1, 0)))]
    plan = plan_memory(g)
    assert plan.inplace == set()
    sq = np.arange(16.0).reshape(4, 4) / 16
    np.testing.assert_allclose(replay(g, [sq], plan)[0], np.exp(sq) + np.exp(sq).T)


def test_slots_are_shared_only_by_values_that_do_not_overlap():
    g = Graph()
    x = g.input((3, 4), F64, name="x")
    values = [x]
    for k in range(6):                                  # each value dies at the next one
        values.append(g.call("tanh" if k % 2 else "exp", values[-1]))
    g.outputs = [values[-1]]
    plan = plan_memory(g)
    assert len({plan.slots[v] for v in values[1:]}) == 1  # each takes its operand's slot
    a, b = g.call("exp", x), g.call("tanh", x)
    g.outputs = [values[-1], g.call("add", a, b)]
    plan = plan_memory(g)
    assert plan.slots[a] != plan.slots[b]                  # alive together
    want = X
    for k in range(6):
        want = np.tanh(want) if k % 2 else np.exp(want)
    np.testing.assert_allclose(replay(g, [X], plan)[0], want, rtol=1e-15)
    np.testing.assert_allclose(replay(g, [X], plan)[1], np.exp(X) + np.tanh(X), rtol=1e-15)


def test_commutative_ops_write_into_their_dying_second_operand():
    g = Graph()
    x = g.input((3, 4), F64, name="x")
    e = g.call("exp", x)
    m = g.call("mul", x, e)             # x: an input; e dies here
    s = g.call("sub", x, m)             # not commutative: stays out of place
    g.outputs = [s]
    plan = plan_memory(g)
    assert plan.inplace == {m}
    assert m.args == (e, x)
    np.testing.assert_array_equal(replay(g, [X], plan)[0], X - X * np.exp(X))
