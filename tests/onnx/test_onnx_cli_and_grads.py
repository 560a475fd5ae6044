"""``lightgrad onnx info|run|bench`` and gradients through decomposed ONNX ops."""
from __future__ import annotations

import numpy as np
import pytest
from onnx_helpers import make_model, small_mlp, tensor_info

import lightgrad as lg
from lightgrad.cli import main

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402


@pytest.fixture
def mlp_path(tmp_path):
    path = tmp_path / "mlp.onnx"
    path.write_bytes(small_mlp().SerializeToString())
    return str(path)


def test_info_lists_io_opset_histogram(mlp_path, capsys):
    assert main(["onnx", "info", mlp_path]) == 0
    out = capsys.readouterr().out
    assert "x: float32 (N, 4)" in out and "y: float32 (N, 3)" in out
    assert "ai.onnx 17" in out
    assert "Gemm                         2" in out
    assert "unsupported ops: none" in out


def test_info_reports_unsupported_ops(tmp_path, capsys):
    node = helper.make_node("NoSuchOp", ["x"], ["y"])
    model = make_model([node], [tensor_info("x", TensorProto.FLOAT, [1])],
                       [tensor_info("y", TensorProto.FLOAT, [1])])
    path = tmp_path / "u.onnx"
    path.write_bytes(model.SerializeToString())
    assert main(["onnx", "info", str(path)]) == 1
    assert "ai.onnx::NoSuchOp (opset 17)" in capsys.readouterr().out


def test_run_reads_inputs_and_writes_outputs(mlp_path, tmp_path, capsys):
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.save(tmp_path / "x.npy", x)
    assert main(["onnx", "run", mlp_path, "--input", f"x={tmp_path / 'x.npy'}",
                 "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "output y: float32 (2, 3)" in out
    y = np.load(tmp_path / "o" / "y.npy")
    np.testing.assert_allclose(y, lg.onnx.run(mlp_path, [x])[0])


def test_run_with_bad_input_is_a_clean_error(mlp_path, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((2, 4), np.float64))
    assert main(["onnx", "run", mlp_path, "--input", f"x={tmp_path / 'x.npy'}"]) == 2
    assert "expected dtype float32" in capsys.readouterr().err


def test_bench_prints_latency(mlp_path, capsys):
    assert main(["onnx", "bench", mlp_path, "--batch", "4", "--iters", "3"]) == 0
    out = capsys.readouterr().out
    assert "lightgrad" in out and "ms/run" in out


def _grad_model(nodes, x_shape, out_name="y", inits=None, opset=18):
    model = make_model(nodes, [tensor_info("x", TensorProto.DOUBLE, list(x_shape))],
                       [tensor_info(out_name, TensorProto.DOUBLE, None)], inits, opset=opset)
    return lg.onnx.load(model)


CASES = {
    "conv3d_asymmetric_pads": (
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 0, 0, 0, 1, 1],
                          strides=[1, 2, 1])],
        (1, 2, 4, 5, 3), {"w": np.random.default_rng(0).standard_normal((3, 2, 2, 2, 2))}),
    "slice_negative_step": (
        [helper.make_node("Slice", ["x", "s", "e", "a", "st"], ["y"])], (3, 6),
        {"s": np.array([-1], np.int64), "e": np.array([-7], np.int64),
         "a": np.array([1], np.int64), "st": np.array([-2], np.int64)}),
    "pad_reflect": ([helper.make_node("Pad", ["x", "p"], ["y"], mode="reflect")], (2, 4),
                    {"p": np.array([1, 2, 0, 3], np.int64)}),
    "resize_cubic": ([helper.make_node("Resize", ["x", "", "sc"], ["y"], mode="cubic")],
                     (1, 1, 3, 4), {"sc": np.array([1, 1, 2, 1.5], np.float32)}),
    "averagepool_ceil": ([helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3],
                                           strides=[2, 2], ceil_mode=1, pads=[1, 1, 0, 0])],
                         (1, 2, 5, 6), None),
    "gathernd": ([helper.make_node("GatherND", ["x", "i"], ["y"])], (3, 4),
                 {"i": np.array([[0, 1], [2, 3], [0, 1]], np.int64)}),
    "instance_norm_lrn": (
        [helper.make_node("LRN", ["x"], ["t"], size=3),
         helper.make_node("InstanceNormalization", ["t", "s", "b"], ["y"])],
        (2, 3, 4), {"s": np.array([1.0, 2.0, 0.5]), "b": np.array([0.0, 1.0, -1.0])}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradcheck_through_decomposed_ops(name):
    nodes, shape, inits = CASES[name]
    m = _grad_model(nodes, shape, inits=inits)
    x = lg.randn(*shape, dtype=lg.float64, requires_grad=True)
    assert lg.autograd.gradcheck(lambda t: m(t), [x])
    params = [p for p in m.parameters() if p.dtype == lg.float64]
    for p in params:  # initializers are trainable: check their gradient too
        p.grad = None
    if params:
        m(x).sum().backward()
        assert all(p.grad is not None for p in params)


def test_lstm_gradients_reach_weights():
    rng = np.random.default_rng(0)
    H, n_in = 3, 2
    inits = {"W": rng.standard_normal((1, 4 * H, n_in)),
             "R": rng.standard_normal((1, 4 * H, H)),
             "B": rng.standard_normal((1, 8 * H))}
    node = helper.make_node("LSTM", ["x", "W", "R", "B"], ["y"], hidden_size=H)
    m = _grad_model([node], (4, 2, n_in), inits=inits)
    x = lg.randn(4, 2, n_in, dtype=lg.float64, requires_grad=True)
    assert lg.autograd.gradcheck(lambda t: m(t), [x])
    m(x).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum().item() > 0 for p in m.parameters())


def test_gradients_flow_through_loop_and_if():
    """y <- y * x three times in a Loop, then If picks y or -y: d/dx of sum is 3 x^2 (+/-)."""
    D = TensorProto.DOUBLE
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Mul", ["y_in", "x"], ["y_out"])],
        "body",
        [tensor_info("i", TensorProto.INT64, []), tensor_info("cond_in", TensorProto.BOOL, []),
         tensor_info("y_in", D, [3])],
        [tensor_info("cond_out", TensorProto.BOOL, []), tensor_info("y_out", D, [3])])
    then_g = helper.make_graph([helper.make_node("Identity", ["y"], ["r"])], "then", [],
                               [tensor_info("r", D, [3])])
    else_g = helper.make_graph([helper.make_node("Neg", ["y"], ["r2"])], "else", [],
                               [tensor_info("r2", D, [3])])
    nodes = [helper.make_node("Loop", ["trips", "", "one"], ["y"], body=body),
             helper.make_node("If", ["flag"], ["out"], then_branch=then_g, else_branch=else_g)]
    model = make_model(nodes, [tensor_info("x", D, [3]), tensor_info("flag", TensorProto.BOOL,
                                                                     [])],
                       [tensor_info("out", D, [3])],
                       {"trips": np.array(3, np.int64), "one": np.ones(3)})
    m = lg.onnx.load(model)
    x = lg.tensor([0.5, -1.0, 2.0], dtype=lg.float64, requires_grad=True)
    for flag, sign in ((True, 1.0), (False, -1.0)):
        x.grad = None
        m(x, np.array(flag)).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), sign * 3 * x.detach().numpy() ** 2)
    assert lg.autograd.gradcheck(lambda t: m(t, np.array(True)), [x])
