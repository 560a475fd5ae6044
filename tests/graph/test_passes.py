"""Each graph pass on hand-built graphs: what it removes or rewrites (node counts), what it
must leave alone (effects, in-place writes, outputs, symbolic numbers), and that the
optimised graph computes what the original computes (both replayed by the Executor, and
against NumPy)."""
from __future__ import annotations

import numpy as np
import pytest

from lightgrad.backends import get_backend
from lightgrad.graph import Executor, Graph
from lightgrad.graph.passes import (eliminate_common_subexpressions, eliminate_dead_code,
                                    fold_constants, fuse_elementwise, run_passes, simplify)
from lightgrad.graph.scalars import SymFloat

F64 = np.dtype("float64")
X = np.linspace(-2.0, 3.0, 12).reshape(3, 4)


def replay(graph: Graph, inputs=(X,), params=None, plan=None) -> list:
    """The graph's outputs on the CPU backend (params copied: graphs may write them)."""
    if params is not None:
        params = [np.array(p, copy=True) for p in params]
    return Executor(graph, get_backend("cpu"), plan)(list(inputs), params, [])


def ops(graph: Graph) -> list[str]:
    return [n.op for n in graph.nodes]


# ----------------------------------------------------------------------------- folding


def test_fold_constants_folds_constant_subexpressions():
    g = Graph()
    x = g.input((3, 4), F64, name="x")
    three = g.call("add", g.call("full", (3, 4), 1.0, F64), 2.0)
    g.outputs = [g.call("mul", x, g.call("exp", three))]
    eliminate_dead_code(fold_constants(g))
    assert ops(g) == ["input", "constant", "mul"]
    np.testing.assert_array_equal(replay(g)[0], X * np.exp(3.0))


def test_fold_constants_leaves_random_symbolic_written_and_outputs():
    g = Graph()
    x = g.input((3, 4), F64, name="x")
    noise = g.call("rand", (3, 4), F64)                       # an effect
    lr = g.call("mul", g.constant(np.ones((3, 4))), SymFloat(0.5, ("source", 0)))
    buf = g.call("full", (3, 4), 0.0, F64)                    # written in place below
    g.call("assign", buf, x)
    out = g.call("full", (2,), 7.0, F64)                      # an output
    g.outputs = [g.call("add", g.call("add", noise, lr), buf), out]
    before = ops(g)
    fold_constants(g)
    assert ops(g) == before


# ----------------------------------------------------------------------------- dead code


def test_dead_code_removed_but_effects_kept():
    g = Graph()
    x = g.input((3, 4), F64, name="x")
    p = g.param(np.zeros((3, 4)))
    g.call("exp", g.call("neg", x))                           # dead
    g.param(np.ones(2))                                       # dead param
    g.call("rand", (2,), F64)                                 # effect: kept
    g.call("binary_inplace", "add", p, g.call("mul", x, 2.0))  # effect and its input
    g.outputs = [g.call("sin", x)]
    eliminate_dead_code(g)
    assert ops(g) == ["input", "param", "rand", "mul", "binary_inplace", "sin"]
    assert len(g.params) == 1
    g.validate()


# ----------------------------------------------------------------------------- CSE


def test_cse_merges_repeats_and_keeps_their_results():
    g = Graph()
    x = g.input((3, 4), F64, name="x")
    a = g.call("tanh", g.call("mul", x, 2.0))
    b = g.call("tanh", g.call("mul", x, 2.0))
    c = g.call("sum", g.call("add", a, b), (1,), False, None)
    d = g.call("sum", g.call("add", a, b), (1,), False, None)
    g.outputs = [g.call("sub", c, d), c]
    eliminate_dead_code(eliminate_common_subexpressions(g))
    assert ops(g) == ["input", "mul", "tanh", "add", "sum", "sub"]
    np.testing.assert_array_equal(replay(g)[1], (2 * np.tanh(2 * X)).sum(1))


def test_cse_keeps_random_draws_signed_zeros_and_symbolic_numbers_apart():
    g = Graph()
    x = g.input((3, 4), F64, name="x")
    r1, r2 = g.call("rand", (3, 4), F64), g.call("rand", (3, 4), F64)
    z1, z2 = g.call("mul", x, 0.0), g.call("mul", x, -0.0)
    s1 = g.call("mul", x, SymFloat(2.0, ("source", 0)))
    s2 = g.call("mul", x, 2.0)
    g.outputs = [r1, r2, z1, z2, s1, s2]
    n = len(g)
    eliminate_common_subexpressions(g)
    assert len(g) == n


def test_cse_respects_in_place_writes_between_reads():
    g = Graph()
    p = g.param(X.copy(), name="p")
    a = g.call("mul", p, 2.0)
    g.call("binary_inplace", "add", p, 1.0)
    b = g.call("mul", p, 2.0)                                 # reads the written p
    g.outputs = [g.call("add", a, b)]
    reference = replay(g, (), [X])[0]
    run_passes(g)
    np.testing.assert_array_equal(reference, 2 * X + 2 * (X + 1))
    np.testing.assert_array_equal(replay(g, (), [X])[0], reference)


# ----------------------------------------------------------------------------- simplify


def test_simplify_removes_identities():
    g = Graph()
    x = g.input((3, 4), F64, name="x")
    y = g.call("div", g.call("sub", g.call("add", g.call("mul", x, 1.0), 0.0), 0), 1.0)
    y = g.call("mul", 1, g.call("add", 0.0, y))
    ones = g.constant(np.ones((3, 4)))
    g.outputs = [g.call("exp", g.call("mul", y, ones))]
    eliminate_dead_code(simplify(g))
    assert ops(g) == ["input", "exp"]
    np.testing.assert_array_equal(replay(g)[0], np.exp(X))


def test_simplify_keeps_what_is_not_an_identity():
    g = Graph()
    x = g.input((3, 4), F64, name="x")
    a = g.call("sub", 0.0, x)                                 # 0 - x is -x
    b = g.call("div", 1.0, x)                                 # 1 / x
    c = g.call("mul", x, g.constant(np.ones((2, 3, 4))))      # broadcasts to a bigger shape
    d = g.call("mul", x, SymFloat(1.0, ("source", 0)))        # symbolic: may change
    g.outputs = [g.call("exp", v) for v in (a, b, c, d)]
    n = len(g)
    eliminate_dead_code(simplify(g))
    assert len(g) == n


def test_simplify_movement_chains():
    g = Graph()
    x = g.input((2, 3, 4), F64, name="x")
    back = g.call("permute", g.call("permute", x, (2, 0, 1)), (1, 2, 0))      # identity
    once = g.call("permute", g.call("permute", x, (1, 0, 2)), (0, 2, 1))      # one permute
    flat = g.call("reshape", g.call("reshape", x, (6, 4)), (24,))
    same = g.call("reshape", g.call("reshape", x, (4, 6)), (2, 3, 4))
    exp = g.call("expand", x, (2, 3, 4))
    cast = g.call("astype", x, F64)
    g.outputs = [g.call("neg", v) for v in (back, once, flat, same, exp, cast)]
    value = np.arange(24.0).reshape(2, 3, 4)
    reference = replay(g, (value,))
    eliminate_dead_code(simplify(g))
    assert g.op_counts() == {"input": 1, "permute": 1, "reshape": 1, "neg": 6}
    perm = next(n for n in g.nodes if n.op == "permute")
    assert perm.args[0] is x and perm.args[1] == (1, 2, 0)
    for got, want in zip(replay(g, (value,)), reference):
        np.testing.assert_array_equal(got, want)


def test_simplify_never_hands_out_or_writes_an_input():
    g = Graph()
    x = g.input((3, 4), F64, name="x")
    p = g.param(X.copy())
    same = g.call("mul", p, 1.0)                              # p is written below
    g.call("binary_inplace", "add", p, 1.0)
    g.outputs = [g.call("mul", x, 1.0), g.call("neg", same)]
    simplify(g)
    assert g.outputs[0] is not x
    np.testing.assert_array_equal(replay(g, (X,), [X])[1], -X)


# ----------------------------------------------------------------------------- fusion


def _chain(g: Graph, x, b):
    y = g.call("mul", g.call("add", x, b), 0.5)
    return g.call("relu", g.call("sub", g.call("tanh", y), g.call("sigmoid", y)))


def test_fusion_makes_one_node_with_the_same_result():
    g = Graph()
    x = g.input((3, 4), F64, name="x")
    b = g.input((4,), F64, name="b")
    g.outputs = [_chain(g, x, b)]
    bias = np.arange(4.0)
    reference = replay(g, (X, bias))[0]
    fuse_elementwise(g)
    assert ops(g) == ["input", "input", "fused_elementwise"]
    g.validate()
    np.testing.assert_array_equal(replay(g, (X, bias))[0], reference)
    y = (X + bias) * 0.5
    np.testing.assert_allclose(reference, np.maximum(np.tanh(y) - 1 / (1 + np.exp(-y)), 0))


def test_fusion_stops_at_values_read_elsewhere_and_at_in_place_writes():
    g = Graph()
    x = g.input((3, 4), F64, name="x")
    p = g.param(X.copy())
    shared = g.call("exp", x)                                 # also an output
    early = g.call("mul", p, 3.0)                             # p is written after it
    g.call("binary_inplace", "add", p, 1.0)
    g.outputs = [g.call("add", g.call("neg", shared), early), shared]
    reference = replay(g, (X,), [X])
    fuse_elementwise(g)
    assert g.op_counts()["fused_elementwise"] == 1
    assert g.op_counts()["exp"] == 1 and g.op_counts()["mul"] == 1
    for got, want in zip(replay(g, (X,), [X]), reference):
        np.testing.assert_array_equal(got, want)


def test_fused_program_runs_op_by_op_on_cuda():
    import lightgrad as lg
    if not lg.cuda.is_available():
        pytest.skip("no cuda device (nor emulator)")
    g = Graph()
    x = g.input((3, 4), np.float32, name="x")
    b = g.input((4,), np.float32, name="b")
    g.outputs = [_chain(g, x, b)]
    fuse_elementwise(g)
    cuda = get_backend("cuda")
    xs, bs = X.astype(np.float32), np.arange(4, dtype=np.float32)
    got = Executor(g, cuda)([cuda.from_numpy(xs), cuda.from_numpy(bs)])[0]
    want = replay(g, (xs, bs))[0]
    np.testing.assert_allclose(cuda.to_numpy(got), want, rtol=1e-5, atol=1e-6)


def test_fused_program_float32_matches_unfused():
    g = Graph()
    x = g.input((3, 4), np.float32, name="x")
    y = g.call("div", g.call("exp", g.call("neg", x)), g.call("add", x, 3.0))
    g.outputs = [g.call("where", g.call("lt", y, 0.5), y, g.call("sqrt", y))]
    xs = X.astype(np.float32)
    reference = replay(g, (xs,))[0]
    fuse_elementwise(g)
    assert len(g) == 2
    got = replay(g, (xs,))[0]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, reference)


# ----------------------------------------------------------------------------- together


def test_run_passes_prints_each_pass_with_debug(monkeypatch, capsys):
    monkeypatch.setenv("LIGHTGRAD_DEBUG", "1")
    g = Graph()
    x = g.input((3, 4), F64, name="x")
    g.outputs = [g.call("add", g.call("exp", g.call("mul", x, 1.0)), g.call("exp", x))]
    run_passes(g)
    err = capsys.readouterr().err
    for name in ("fold_constants", "simplify", "cse", "dce", "fuse_elementwise"):
        assert f"{name}: " in err
    assert "simplify: 5 -> 4 nodes\ncse: 4 -> 3 nodes\n" in err


def test_cse_never_makes_two_outputs_share_a_buffer():
    g = Graph()
    x = g.input((3, 4), F64, name="x")
    g.outputs = [g.call("exp", x), g.call("exp", x), g.call("neg", g.call("exp", x))]
    eliminate_common_subexpressions(g)
    assert g.outputs[0] is not g.outputs[1]
    assert g.op_counts()["exp"] == 2


def test_simplify_may_hand_out_a_computed_value_of_its_own():
    g = Graph()
    x = g.input((3, 4), F64, name="x")
    e = g.call("exp", x)
    back = g.call("permute", g.call("permute", e, (1, 0)), (1, 0))
    shared = g.call("mul", e, 1.0)                 # e would then be two outputs
    g.outputs = [back, shared]
    eliminate_dead_code(simplify(g))
    assert g.outputs[0] is e and g.outputs[1] is not e
    got = replay(g)
    np.testing.assert_array_equal(got[0], np.exp(X))
    np.testing.assert_array_equal(got[1], np.exp(X))


def test_fused_chain_runs_in_one_scratch_buffer():
    g = Graph()
    x = g.input((3, 4), F64, name="x")
    y = x
    for op in ("exp", "neg", "tanh", "abs", "sqrt"):
        y = g.call(op, y)
    g.outputs = [g.call("mul", y, x)]
    fuse_elementwise(g)
    (fused,) = [n for n in g.nodes if n.op == "fused_elementwise"]
    program = fused.args[0]
    assert len(program) == 6 and set(program._registers) == {0}
    np.testing.assert_array_equal(replay(g)[0], np.sqrt(np.abs(np.tanh(-np.exp(X)))) * X)


def test_cse_sees_writes_through_views():
    g = Graph()
    p = g.param(X.copy(), name="p")
    before = g.call("mul", g.call("reshape", p, (12,)), 2.0)
    row = g.call("getitem", p, (0,))                          # a view of p's first row
    g.call("setitem", row, (slice(None),), 7.0)               # writes p through it
    after = g.call("mul", g.call("reshape", p, (12,)), 2.0)
    g.outputs = [g.call("sub", after, before)]
    run_passes(g)
    want = np.zeros(12)
    want[:4] = 2 * (7.0 - X[0])
    np.testing.assert_array_equal(replay(g, (), [X])[0], want)
