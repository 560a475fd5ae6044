"""The recording backend: eager code run on placeholder nodes records a graph; the executor
replays it (on the CPU and on the emulated CUDA backend) with eager's numbers."""
from __future__ import annotations

import numpy as np
import pytest

import lightgrad as lg
from lightgrad.backends import get_backend
from lightgrad.graph import Executor, Graph, Plan, TraceError, tracing
from lightgrad.nn import functional as F


def close(got, want) -> None:
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-6)


def placeholder(g: Graph, shape: tuple, dtype=np.float32, requires_grad=False, name=None):
    t = lg.Tensor._from_buffer(g.input(shape, dtype, name=name), lg.device("cpu"))
    t.requires_grad = requires_grad
    return t


def ops_of(g: Graph) -> list[str]:
    return [n.op for n in g.nodes if n.op not in ("input", "param", "constant")]


def test_elementwise_matmul_and_reduce_record_their_primitives():
    g = Graph()
    with tracing(g):
        x = placeholder(g, (4, 3), name="x")
        w = placeholder(g, (3, 5), name="w")
        y = (x @ w).exp().sum(dim=1) * 2.0
    assert ops_of(g) == ["matmul", "exp", "sum", "mul"]
    assert y.shape == (4,) and y.dtype is lg.float32
    assert g.nodes[-1].args[1] == 2.0
    g.outputs = [y._data]
    g.validate()


def test_values_of_real_tensors_are_captured_as_params():
    w = lg.randn(3, 2)
    g = Graph()
    with tracing(g):
        x = placeholder(g, (4, 3))
        y = x @ w
    (param,) = g.params
    assert param.value is w._data and y._data.args == (g.inputs[0], param)
    assert w._data is param.value and isinstance(w._data, np.ndarray)  # w is untouched


def test_multi_output_primitive_records_select_nodes():
    g = Graph()
    with tracing(g):
        x = placeholder(g, (2, 8))
        y = F.layer_norm(x, (8,))
    assert ops_of(g) == ["layer_norm", "select", "select", "select"]
    assert y._data.op == "select" and y._data.args[1] == 0 and y.shape == (2, 8)


def test_reading_a_value_while_building_a_graph_names_the_line():
    g = Graph()
    with tracing(g):
        x = placeholder(g, (3,))
        with pytest.raises(TraceError, match=r"test_recording\.py:\d+"):
            x.sum().item()
        with pytest.raises(TraceError, match="read in Python"):
            np.asarray(x)


def test_in_place_update_of_a_parameter_is_recorded_and_replayed():
    w = lg.zeros(3)
    g = Graph()
    with tracing(g), lg.no_grad():
        x = placeholder(g, (3,))
        w.add_(x * 2)
    assert ops_of(g) == ["mul", "binary_inplace"]
    assert g.nodes[-1].mutated == (g.params[0],)
    run = Executor(g, get_backend("cpu"))
    for _ in range(2):
        run([np.array([1.0, 2.0, 3.0], np.float32)])
    assert w.tolist() == [4.0, 8.0, 12.0]


def mlp_graph():
    """A recorded forward + backward of a small MLP with cross-entropy."""
    lg.manual_seed(0)
    model = lg.nn.Sequential(lg.nn.Linear(5, 7), lg.nn.Tanh(), lg.nn.Linear(7, 3))
    g = Graph()
    with tracing(g):
        x = placeholder(g, (6, 5), name="x")
        y = placeholder(g, (6,), np.int64, name="y")
        loss = F.cross_entropy(model(x), y)
        grads = lg.autograd.grad(loss, list(model.parameters()))
    g.outputs = [loss._data] + [gr._data for gr in grads]
    return model, g


def test_executor_replays_forward_and_gradient_graph_like_eager():
    model, g = mlp_graph()
    g.validate()
    assert {"tanh", "matmul", "cross_entropy", "cross_entropy_backward"} <= set(ops_of(g))
    rng = np.random.default_rng(1)
    for _ in range(2):  # new numbers each run
        x = rng.standard_normal((6, 5)).astype(np.float32)
        y = rng.integers(0, 3, 6)
        outs = Executor(g, get_backend("cpu"))([x, y])
        loss = F.cross_entropy(model(lg.tensor(x)), lg.tensor(y))
        expected = [loss] + list(lg.autograd.grad(loss, list(model.parameters())))
        for got, want in zip(outs, expected):
            close(got, want.detach().numpy())


def test_plan_seam_shares_slots_and_runs_in_place():
    g = Graph()
    x = g.input((4,), np.float32, name="x")
    a = g.call("exp", x)
    b = g.call("add", a, 1.0)
    c = g.call("mul", b, b)
    g.outputs = [c]
    plan = Plan({x: 0, a: 1, b: 1, c: 2}, inplace={b})
    run = Executor(g, get_backend("cpu"), plan)
    assert "binary_inplace_" in run.source and "v2 = mul_" in run.source
    data = np.linspace(-1, 1, 4).astype(np.float32)
    want = (np.exp(data) + 1) ** 2
    close(run([data])[0], want)
    close(Executor(g, get_backend("cpu"))([data])[0], want)


@pytest.mark.skipif(not lg.cuda.is_available(), reason="no CUDA backend (GPU or emulator)")
def test_executor_replays_a_cpu_recorded_graph_on_cuda():
    g = Graph()
    with tracing(g):
        x = placeholder(g, (3, 4), name="x")
        w = placeholder(g, (4, 2), name="w")
        out = ((x @ w).relu() * 0.5 + lg.tensor([1.0, 2.0])).sum(dim=0)
    g.outputs = [out._data]
    rng = np.random.default_rng(0)
    xv = rng.standard_normal((3, 4)).astype(np.float32)
    wv = rng.standard_normal((4, 2)).astype(np.float32)
    cuda = get_backend("cuda")
    (got,) = Executor(g, cuda)([cuda.from_numpy(xv), cuda.from_numpy(wv)])
    want = (np.maximum(xv @ wv, 0) * 0.5 + np.array([1.0, 2.0])).sum(0)
    close(cuda.to_numpy(got), want)


def test_conv_pool_and_attention_graphs_replay_like_eager():
    lg.manual_seed(0)
    conv = lg.nn.Conv2d(2, 3, 3, padding=1)
    g = Graph()
    with tracing(g):
        img = placeholder(g, (2, 2, 6, 6), requires_grad=True, name="img")
        seq = placeholder(g, (2, 5, 4), name="seq")
        pooled = F.max_pool2d(conv(img).relu(), 2)
        out = F.scaled_dot_product_attention(seq, seq, seq, is_causal=True)
        total = pooled.sum() + out.square().mean()
        (grad_img,) = lg.autograd.grad(total, [img])
    g.outputs = [total._data, grad_img._data]
    g.validate()
    assert {"conv2d", "max_pool2d", "scaled_dot_product_attention",
            "conv2d_backward_input", "max_pool2d_backward"} <= set(ops_of(g))
    rng = np.random.default_rng(0)
    img_v = rng.standard_normal((2, 2, 6, 6)).astype(np.float32)
    seq_v = rng.standard_normal((2, 5, 4)).astype(np.float32)
    got_total, got_grad = Executor(g, get_backend("cpu"))([img_v, seq_v])
    x = lg.tensor(img_v, requires_grad=True)
    s = lg.tensor(seq_v)
    want = F.max_pool2d(conv(x).relu(), 2).sum() + F.scaled_dot_product_attention(
        s, s, s, is_causal=True).square().mean()
    want.backward()
    close(got_total, want.item())
    close(got_grad, x.grad.numpy())


def test_errors_are_clear():
    g = Graph()
    x = g.input((2,), np.float32)
    g.outputs = [g.call("neg", x)]
    with pytest.raises(lg.graph.GraphError, match="1 inputs, got 0"):
        Executor(g, get_backend("cpu"))([])
    with tracing(Graph()):
        with pytest.raises(TraceError, match="already tracing"):
            with tracing(Graph()):
                pass
    other = Graph()
    with tracing(other):
        y = placeholder(g, (2,))
        with pytest.raises(TraceError, match="another graph"):
            y + 1
