"""The inference fast path of imported models (``lightgrad/onnx/fast.py``): replays equal
the eager evaluation, and calls a graph can't hold fall back to it."""
from __future__ import annotations

import numpy as np
import pytest
from onnx_helpers import make_model, ort_run, small_mlp, tensor_info

import lightgrad as lg
from lightgrad.onnx.model import OnnxModule

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402


def _eager(m: OnnxModule, *args):
    m.fast_path.enabled = False
    try:
        with lg.no_grad():
            out = m(*args)
    finally:
        m.fast_path.enabled = True
    return out


def _fast(m: OnnxModule, *args, calls: int = 3) -> list:
    """The outputs of ``calls`` no-grad calls (eager, traced, replayed...)."""
    with lg.no_grad():
        return [m(*args) for _ in range(calls)]


def test_mlp_replay_equals_eager_and_is_used():
    m = lg.onnx.load(small_mlp())
    x = lg.from_numpy(np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32))
    ref = _eager(m, x).numpy()
    outs = _fast(m, x, calls=4)
    for o in outs:
        np.testing.assert_array_equal(o.numpy(), ref)
    assert m.fast_path.stats == {"eager": 1, "traced": 1, "replayed": 2}
    # other data of the same shape: the replay computes, it doesn't remember
    x2 = lg.from_numpy(np.random.default_rng(2).standard_normal((5, 4)).astype(np.float32))
    with lg.no_grad():
        got = m(x2).numpy()
    np.testing.assert_array_equal(got, _eager(m, x2).numpy())
    assert not np.allclose(got, ref)
    assert m.fast_path.stats["replayed"] == 3


def test_new_shape_is_compiled_separately():
    m = lg.onnx.load(small_mlp())
    rng = np.random.default_rng(0)
    for n in (1, 7, 1):
        x = lg.from_numpy(rng.standard_normal((n, 4)).astype(np.float32))
        outs = _fast(m, x)
        np.testing.assert_array_equal(outs[-1].numpy(), _eager(m, x).numpy())
    assert m.fast_path.stats["traced"] == 2


def test_changed_weights_are_used_by_the_next_call():
    m = lg.onnx.load(small_mlp())
    x = lg.from_numpy(np.ones((2, 4), np.float32))
    before = _fast(m, x)[-1].numpy()
    state = {k: v * 2 for k, v in m.state_dict().items()}
    m.load_state_dict(state)
    after = _fast(m, x)[-1].numpy()
    np.testing.assert_array_equal(after, _eager(m, x).numpy())
    assert not np.allclose(after, before)
    p = next(iter(m.parameters()))
    with lg.no_grad():
        p.mul_(0.5)  # in place: the version counter moves
    np.testing.assert_array_equal(_fast(m, x)[-1].numpy(), _eager(m, x).numpy())


def test_copied_module_compiles_afresh():
    import copy
    m = lg.onnx.load(small_mlp())
    x = lg.from_numpy(np.ones((2, 4), np.float32))
    ref = _fast(m, x)[-1].numpy()
    clone = copy.deepcopy(m)
    assert clone.fast_path.graphs == []
    with lg.no_grad():
        next(iter(clone.parameters())).mul_(0.0)
    outs = _fast(clone, x)
    np.testing.assert_array_equal(outs[-1].numpy(), _eager(clone, x).numpy())
    assert clone.fast_path.stats["replayed"] == 1
    np.testing.assert_array_equal(_fast(m, x)[-1].numpy(), ref)


def test_grad_mode_runs_eagerly_and_backpropagates():
    m = lg.onnx.load(small_mlp())
    x = lg.from_numpy(np.ones((2, 4), np.float32))
    _fast(m, x)
    y = m(x)
    assert y.grad_fn is not None
    y.sum().backward()
    assert all(p.grad is not None for p in m.parameters())


def _nonzero_model() -> object:
    """y = x * (number of nonzeros of x): a value-dependent shape inside."""
    nodes = [helper.make_node("NonZero", ["x"], ["nz"]),
             helper.make_node("Shape", ["nz"], ["s"]),
             helper.make_node("ReduceProd", ["s"], ["k"], keepdims=0),
             helper.make_node("Cast", ["k"], ["kf"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["x", "kf"], ["y"])]
    return make_model(nodes, [tensor_info("x", TensorProto.FLOAT, [4])],
                      [tensor_info("y", TensorProto.FLOAT, [4])])


def test_data_dependent_model_falls_back_to_eager():
    model = _nonzero_model()
    m = lg.onnx.load(model)
    for data in ([1, 0, 2, 0], [1, 1, 1, 0], [0, 0, 0, 3], [5, 5, 5, 5]):
        x = np.array(data, np.float32)
        with lg.no_grad():
            got = m(lg.from_numpy(x)).numpy()
        np.testing.assert_array_equal(got, ort_run(model, {"x": x})[0])
    assert m.fast_path.stats["replayed"] == 0 and m.fast_path.stats["traced"] == 1
    (reason,) = m.fast_path.eager_reasons.values()
    assert "read" in reason


@pytest.mark.parametrize("seed", [None, 3.0])
def test_unseeded_random_ops_run_eagerly(seed):
    kw = {} if seed is None else {"seed": seed}
    nodes = [helper.make_node("RandomNormalLike", ["x"], ["r"], **kw),
             helper.make_node("Add", ["x", "r"], ["y"])]
    model = make_model(nodes, [tensor_info("x", TensorProto.FLOAT, [64])],
                       [tensor_info("y", TensorProto.FLOAT, [64])])
    m = lg.onnx.load(model)
    x = lg.from_numpy(np.zeros(64, np.float32))
    outs = [o.numpy() for o in _fast(m, x, calls=4)]
    if seed is None:  # fresh numbers at every call, as eager code draws them
        assert m.fast_path.blocked and m.fast_path.stats["replayed"] == 0
        assert not np.array_equal(outs[-1], outs[-2])
    else:  # a fixed seed draws the same numbers each call: replayed
        assert m.fast_path.stats["replayed"] == 2
        np.testing.assert_array_equal(outs[-1], outs[0])


def test_integer_input_runs_eagerly():
    nodes = [helper.make_node("Gather", ["t", "i"], ["y"], axis=0)]
    table = np.arange(12, dtype=np.float32).reshape(6, 2)
    model = make_model(nodes, [tensor_info("i", TensorProto.INT64, [3])],
                       [tensor_info("y", TensorProto.FLOAT, [3, 2])], {"t": table})
    m = lg.onnx.load(model)
    for idx in ([0, 1, 2], [5, 4, 3], [1, 1, 1]):
        out = lg.onnx.run(m, [np.array(idx, np.int64)])[0]
        np.testing.assert_array_equal(out, table[idx])
    assert m.fast_path.stats["replayed"] == 0


def test_run_reuses_the_compiled_graph_of_a_module():
    m = lg.onnx.load(small_mlp())
    x = np.random.default_rng(3).standard_normal((3, 4)).astype(np.float32)
    outs = [lg.onnx.run(m, [x])[0] for _ in range(3)]
    np.testing.assert_allclose(outs[-1], ort_run(small_mlp(), {"x": x})[0], rtol=1e-5,
                               atol=1e-6)
    assert m.fast_path.stats["replayed"] == 1
    outs[-1][:] = 0  # the caller owns the outputs
    np.testing.assert_array_equal(lg.onnx.run(m, [x])[0], outs[0])


def test_module_inside_lg_jit():
    m = lg.onnx.load(small_mlp())
    x = lg.from_numpy(np.ones((2, 4), np.float32))
    f = lg.jit(lambda a: m(a) * 2)
    with lg.no_grad():
        outs = [f(x).numpy() for _ in range(3)]
    np.testing.assert_array_equal(outs[-1], _eager(m, x).numpy() * 2)


def _layer_norm_model(d: int = 8) -> tuple:
    """LayerNorm as opset-13 exporters write it (ReduceMean, Sub, Pow, Sqrt, Div...),
    then MatMul + Add + Relu."""
    rng = np.random.default_rng(0)
    inits = {"two": np.array(2.0, np.float32), "eps": np.array(1e-5, np.float32),
             "g": rng.uniform(0.5, 1.5, d).astype(np.float32),
             "b": rng.standard_normal(d).astype(np.float32),
             "w": rng.standard_normal((d, d)).astype(np.float32),
             "c": rng.standard_normal(d).astype(np.float32)}
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], axes=[-1]),
             helper.make_node("Sub", ["x", "m"], ["d"]),
             helper.make_node("Pow", ["d", "two"], ["sq"]),
             helper.make_node("ReduceMean", ["sq"], ["v"], axes=[-1]),
             helper.make_node("Add", ["v", "eps"], ["ve"]),
             helper.make_node("Sqrt", ["ve"], ["sd"]),
             helper.make_node("Div", ["d", "sd"], ["n"]),
             helper.make_node("Mul", ["n", "g"], ["ng"]),
             helper.make_node("Add", ["ng", "b"], ["ln"]),
             helper.make_node("MatMul", ["ln", "w"], ["h"]),
             helper.make_node("Add", ["c", "h"], ["hb"]),
             helper.make_node("Relu", ["hb"], ["y"])]
    return make_model(nodes, [tensor_info("x", TensorProto.FLOAT, ["N", 3, d])],
                      [tensor_info("y", TensorProto.FLOAT, ["N", 3, d])], inits, opset=13)


def test_decomposed_layer_norm_model_replay_matches_eager_and_onnxruntime():
    model = _layer_norm_model()
    m = lg.onnx.load(model)
    x = np.random.default_rng(4).standard_normal((2, 3, 8)).astype(np.float32) * 3 + 1
    ref = ort_run(model, {"x": x})[0]
    outs = _fast(m, lg.from_numpy(x))
    eager = _eager(m, lg.from_numpy(x)).numpy()
    np.testing.assert_allclose(outs[-1].numpy(), eager, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(outs[-1].numpy(), ref, rtol=1e-4, atol=1e-5)
    assert m.fast_path.stats["replayed"] == 1
    (graph,) = m.fast_path.graphs
    ops = [n.op for n in graph.nodes]
    assert "layer_norm" in ops and "mean" not in ops and "sqrt" not in ops


def _relu_pool_model(relu_is_output: bool) -> object:
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["y"], kernel_shape=[2, 2], strides=[2, 2])]
    outputs = [tensor_info("y", TensorProto.FLOAT, [2, 3, 4, 4])]
    if relu_is_output:
        outputs.append(tensor_info("r", TensorProto.FLOAT, [2, 3, 8, 8]))
    return make_model(nodes, [tensor_info("x", TensorProto.FLOAT, [2, 3, 8, 8])], outputs)


@pytest.mark.parametrize("relu_is_output", [False, True])
def test_relu_before_max_pool_moves_after_it(relu_is_output):
    model = _relu_pool_model(relu_is_output)
    m = lg.onnx.load(model)
    x = np.random.default_rng(7).standard_normal((2, 3, 8, 8)).astype(np.float32)
    outs = _fast(m, lg.from_numpy(x))[-1]
    outs = outs if isinstance(outs, tuple) else (outs,)
    for got, ref in zip(outs, ort_run(model, {"x": x})):
        np.testing.assert_array_equal(got.numpy(), ref)
    (graph,) = m.fast_path.graphs
    full_size_relu = [n for n in graph.nodes if n.op == "relu" and n.shape == x.shape]
    assert len(full_size_relu) == int(relu_is_output)


@pytest.mark.parametrize("kind", ["cnn", "transformer"])
def test_exported_models_replay_match_eager(tmp_path, kind):
    torch = pytest.importorskip("torch")
    from test_onnx_finetune import TorchCNN, export_torch
    from test_onnx_models import TransformerBlock
    torch.manual_seed(0)
    if kind == "cnn":
        net, shape = TorchCNN().eval(), (2, 1, 28, 28)
    else:
        net, shape = TransformerBlock().eval(), (2, 16, 64)
        with torch.no_grad():
            for ln in (net.n1, net.n2):  # non-trivial affine parameters
                ln.weight.uniform_(0.5, 1.5)
                ln.bias.uniform_(-0.5, 0.5)
    path = export_torch(net, (torch.randn(*shape),), tmp_path / "m.onnx", input_names=["x"],
                        dynamic_axes={"x": {0: "b"}})
    m = lg.onnx.load(path)
    x = np.random.default_rng(5).standard_normal(shape).astype(np.float32)
    outs = _fast(m, lg.from_numpy(x))
    np.testing.assert_allclose(outs[-1].numpy(), _eager(m, lg.from_numpy(x)).numpy(),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(outs[-1].numpy(), ort_run(path, {"x": x})[0], rtol=1e-4,
                               atol=1e-5)
    assert m.fast_path.stats["replayed"] == 1
