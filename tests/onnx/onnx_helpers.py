"""Helpers for the ONNX tests: small models built with onnx.helper, onnxruntime as oracle."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def tensor_info(name: str, dtype: int, shape: list) -> object:
    return helper.make_tensor_value_info(name, dtype, shape)


def make_model(nodes: list, inputs: list, outputs: list, initializers: list | None = None,
               opset: int = 17, name: str = "g") -> object:
    """A ModelProto from nodes and value infos (initializers as NumPy dict)."""
    inits = [numpy_helper.from_array(v, k) for k, v in (initializers or {}).items()]
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def small_mlp() -> object:
    """x (N, 4) -> Gemm -> Relu -> Gemm -> (N, 3), float initializers."""
    rng = np.random.default_rng(0)
    inits = {"w1": rng.standard_normal((8, 4)).astype(np.float32),
             "b1": rng.standard_normal(8).astype(np.float32),
             "w2": rng.standard_normal((3, 8)).astype(np.float32),
             "b2": np.zeros(3, np.float32)}
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1, name="fc1"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], transB=1, name="fc2")]
    return make_model(nodes, [tensor_info("x", TensorProto.FLOAT, ["N", 4])],
                      [tensor_info("y", TensorProto.FLOAT, ["N", 3])], inits)


def ort_run(model: object, feeds: dict) -> list:
    """onnxruntime's outputs (skips the test when onnxruntime is missing)."""
    ort = pytest.importorskip("onnxruntime")
    data = model if isinstance(model, (bytes, str)) else model.SerializeToString()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    opts.log_severity_level = 3
    sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)
