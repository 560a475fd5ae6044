"""The graph IR: building nodes, shape rules, printing, to_dot and validate."""
from __future__ import annotations

import numpy as np
import pytest

from lightgrad.backends import base
from lightgrad.graph import Graph, GraphError

F32 = np.dtype(np.float32)


def small_graph() -> Graph:
    g = Graph()
    x = g.input((4, 3), F32, name="x")
    w = g.input((3, 5), F32, name="w")
    y = g.call("relu", g.call("matmul", x, w))
    g.outputs = [g.call("sum", y, (1,), False)]
    return g


def test_printing_one_line_per_node():
    assert str(small_graph()) == (
        "graph(%x : (4, 3) float32, %w : (3, 5) float32):\n"
        "    %2 = matmul(%x, %w) : (4, 5) float32\n"
        "    %3 = relu(%2) : (4, 5) float32\n"
        "    %4 = sum(%3, axes=(1,), keepdim=False) : (4,) float32\n"
        "    return (%4,)")


def test_tuple_valued_primitive_gets_select_nodes():
    g = Graph()
    x = g.input((2, 3, 8), F32)
    y, mean, rstd = g.call("layer_norm", x, None, None, 1, 1e-5)
    assert (y.shape, mean.shape, rstd.shape) == ((2, 3, 8), (2, 3, 1), (2, 3, 1))
    tup = y.args[0]
    assert tup.op == "layer_norm" and tup.shape is None and tup.outputs == (y, mean, rstd)
    assert [n.op for n in g.nodes] == ["input", "layer_norm", "select", "select", "select"]
    assert "= %1[2] : (2, 3, 1) float32" in str(g)
    g.outputs = [mean]
    g.validate()


def test_in_place_primitive_is_an_effect_with_no_result():
    g = Graph()
    p = g.param(np.zeros((3,), np.float32), name="p")
    x = g.input((3,), F32)
    assert g.call("binary_inplace", "add", p, x) is None
    node = g.nodes[-1]
    assert node.mutated == (p,) and node.is_effect and node.types == ()
    assert "binary_inplace(op='add', %p, %in0)  # writes %p" in str(g)
    g.validate()


@pytest.mark.parametrize("op, args, shape, dtype", [
    ("add", ((2, 1), (3,)), (2, 3), "float32"),
    ("lt", ((4,), (4,)), (4,), "bool"),
    ("matmul", ((7, 2, 3), (3, 5)), (7, 2, 5), "float32"),
])
def test_shape_rules(op, args, shape, dtype):
    g = Graph()
    ins = [g.input(s, F32) for s in args]
    out = g.call(op, *ins)
    assert out.shape == shape and out.dtype == np.dtype(dtype)


def test_shape_rules_of_fused_ops():
    g = Graph()
    x = g.input((2, 3, 9, 9), F32)
    w = g.input((4, 3, 3, 3), F32)
    conv = g.call("conv2d", x, w, None, (2, 2), ((1, 1), (1, 1)), (1, 1), 1)
    assert conv.shape == (2, 4, 5, 5)  # (9 + 2 - 3) // 2 + 1
    vals, idx = g.call("max_pool2d", conv, (2, 2), (2, 2), (0, 0), (1, 1), True)
    assert vals.shape == idx.shape == (2, 4, 3, 3) and idx.dtype == np.int64
    index = g.input((6,), np.int64)
    assert g.call("getitem", x, (slice(None), 0, index)).shape == (2, 6, 9)
    assert g.call("getitem", x, (None, Ellipsis, slice(1, 4))).shape == (1, 2, 3, 9, 3)


def test_boolean_mask_index_has_no_static_shape():
    g = Graph()
    x = g.input((4,), F32)
    mask = g.input((4,), np.bool_)
    with pytest.raises(base.ShapeUnknown, match="boolean mask"):
        g.call("getitem", x, (mask,))


def test_bad_shapes_are_reported_by_the_rule():
    g = Graph()
    a, b = g.input((4, 3), F32), g.input((4, 5), F32)
    with pytest.raises(ValueError, match=r"matmul: shapes \(4, 3\) and \(4, 5\)"):
        g.call("matmul", a, b)
    with pytest.raises(ValueError, match="unknown primitive 'nope'"):
        g.call("nope", a)


def test_validate_finds_wrong_types_dangling_edges_and_order():
    g = small_graph()
    g.validate()
    relu = g.nodes[3]
    relu.shape, relu.types = (9,), (base.Meta((9,), F32),)
    with pytest.raises(GraphError, match="relu.*recorded type"):
        g.validate()

    g = small_graph()
    g.nodes[2], g.nodes[3] = g.nodes[3], g.nodes[2]  # relu before the matmul it reads
    with pytest.raises(GraphError, match="comes later"):
        g.validate()

    g = small_graph()
    other = Graph().input((4, 5), F32)
    g.nodes[3].args = (other,)
    with pytest.raises(GraphError, match="another graph"):
        g.validate()

    g = small_graph()
    g.erase(g.nodes[2])  # the matmul: relu now reads a node that is gone
    with pytest.raises(GraphError, match="not in the graph"):
        g.validate()


def test_replace_uses_and_users():
    g = small_graph()
    x, w, mm, relu, total = g.nodes
    assert g.users()[mm] == [relu]
    g.replace_uses(relu, mm)
    g.erase(relu)
    assert total.args[0] is mm and g.users()[mm] == [total]
    g.validate()


def test_to_dot():
    dot = small_graph().to_dot()
    assert dot.startswith("digraph lightgrad {") and dot.rstrip().endswith("}")
    assert '[label="%2 = matmul\\n(4, 5) float32"]' in dot
    assert "n0 -> n2;" in dot and "n1 -> n2;" in dot and "n4 -> out0;" in dot


def test_render_needs_graphviz(tmp_path):
    try:
        import graphviz  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="graphviz"):
            small_graph().render(str(tmp_path / "g"))
        return
    import shutil
    if shutil.which("dot") is None:
        pytest.skip("graphviz binaries not installed")
    path = small_graph().render(str(tmp_path / "g"))
    assert path.endswith(".svg")
