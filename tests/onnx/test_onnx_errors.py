"""Loader robustness and error messages: corrupt files, unsupported ops, bad inputs, fuzzing."""
from __future__ import annotations

import os

import numpy as np
import pytest
from onnx_helpers import make_model, small_mlp, tensor_info

import lightgrad as lg
from lightgrad.onnx import (OnnxError, OnnxInputError, OnnxLoadError, OnnxRuntimeError,
                            UnsupportedOpError)

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def test_truncated_file_is_a_clear_error(tmp_path):
    data = small_mlp().SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(OnnxLoadError, match="truncated or corrupt|cannot parse|data"):
        lg.onnx.load(str(path))


@pytest.mark.parametrize("data", [b"", b"\x00\x01garbage\xff" * 10, b"\x0a\xff\xff\xff\xff"])
def test_garbage_bytes(data):
    with pytest.raises(OnnxLoadError):
        lg.onnx.load(data)


def test_missing_file(tmp_path):
    with pytest.raises(OnnxLoadError, match="no such file"):
        lg.onnx.load(str(tmp_path / "nope.onnx"))


def test_unsupported_op_names_op_domain_opset_and_node():
    node = helper.make_node("FancyOp", ["x"], ["y"], name="my_node", domain="com.example")
    model = make_model([node], [tensor_info("x", TensorProto.FLOAT, [2])],
                       [tensor_info("y", TensorProto.FLOAT, [2])])
    model.opset_import.append(helper.make_opsetid("com.example", 3))
    with pytest.raises(UnsupportedOpError) as e:
        lg.onnx.load(model)
    msg = str(e.value)
    assert "com.example::FancyOp" in msg and "opset 3" in msg and "my_node" in msg


def test_unsupported_attribute_is_named():
    node = helper.make_node("Relu", ["x"], ["y"], name="r", bogus=3)
    model = make_model([node], [tensor_info("x", TensorProto.FLOAT, [2])],
                       [tensor_info("y", TensorProto.FLOAT, [2])])
    with pytest.raises(UnsupportedOpError, match="bogus"):
        lg.onnx.load(model)


def test_wrong_input_dtype_names_input_and_types():
    m = lg.onnx.load(small_mlp())
    with pytest.raises(OnnxInputError) as e:
        m(np.zeros((2, 4), np.float64))
    msg = str(e.value)
    assert "'x'" in msg and "float32" in msg and "float64" in msg


def test_wrong_input_shape_names_input_and_shapes():
    m = lg.onnx.load(small_mlp())
    with pytest.raises(OnnxInputError) as e:
        m(np.zeros((2, 5), np.float32))
    msg = str(e.value)
    assert "'x'" in msg and "(N, 4)" in msg and "(2, 5)" in msg


def test_missing_and_unknown_inputs():
    m = lg.onnx.load(small_mlp())
    with pytest.raises(OnnxInputError, match="missing input 'x'"):
        m()
    with pytest.raises(OnnxInputError, match="unknown input 'z'"):
        m(z=np.zeros((1, 4), np.float32))
    with pytest.raises(OnnxInputError, match="takes 1 input"):
        m(np.zeros((1, 4), np.float32), np.zeros((1, 4), np.float32))


def test_runtime_failure_names_the_node():
    node = helper.make_node("Reshape", ["x", "s"], ["y"], name="bad_reshape")
    model = make_model([node], [tensor_info("x", TensorProto.FLOAT, [6]),
                                tensor_info("s", TensorProto.INT64, [1])],
                       [tensor_info("y", TensorProto.FLOAT, None)])
    m = lg.onnx.load(model)
    with pytest.raises(OnnxRuntimeError, match="bad_reshape.*Reshape"):
        m(np.zeros(6, np.float32), np.array([4], np.int64))


def _external_model(tmp_path, location: str) -> str:
    w = numpy_helper.from_array(np.arange(4, dtype=np.float32), "w")
    w.ClearField("raw_data")
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", "16")):
        e = w.external_data.add()
        e.key, e.value = k, v
    node = helper.make_node("Add", ["x", "w"], ["y"])
    graph = helper.make_graph([node], "g", [tensor_info("x", TensorProto.FLOAT, [4])],
                              [tensor_info("y", TensorProto.FLOAT, [4])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "sub" / "model.onnx"
    path.parent.mkdir()
    path.write_bytes(model.SerializeToString())
    return str(path)


def test_external_data_inside_the_folder_loads(tmp_path):
    path = _external_model(tmp_path, "weights.bin")
    (tmp_path / "sub" / "weights.bin").write_bytes(np.arange(4, dtype=np.float32).tobytes())
    out = lg.onnx.run(path, [np.ones(4, np.float32)])[0]
    np.testing.assert_array_equal(out, np.arange(4) + 1.0)


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "a/../../secret.bin"])
def test_external_data_outside_the_folder_is_refused(tmp_path, location):
    (tmp_path / "secret.bin").write_bytes(b"\x00" * 16)
    path = _external_model(tmp_path, location)
    with pytest.raises(OnnxLoadError, match="refused|leaves"):
        lg.onnx.load(path)


def test_external_data_symlink_escape_is_refused(tmp_path):
    (tmp_path / "secret.bin").write_bytes(b"\x00" * 16)
    path = _external_model(tmp_path, "link.bin")
    os.symlink(tmp_path / "secret.bin", tmp_path / "sub" / "link.bin")
    with pytest.raises(OnnxLoadError, match="leaves"):
        lg.onnx.load(path)


def test_external_data_from_bytes_is_refused(tmp_path):
    path = _external_model(tmp_path, "weights.bin")
    with pytest.raises(OnnxLoadError, match="external"):
        lg.onnx.load(open(path, "rb").read())


def test_tensor_data_not_matching_dims():
    model = small_mlp()
    model.graph.initializer[0].dims[0] = 1000
    with pytest.raises(OnnxLoadError, match="w1"):
        lg.onnx.load(model)


def test_huge_dims_are_refused_before_allocating():
    model = small_mlp()
    t = model.graph.initializer[0]
    del t.dims[:]
    t.dims.extend([1 << 40, 1 << 20])
    with pytest.raises(OnnxLoadError, match="memory|w1"):
        lg.onnx.load(model)


def test_fuzzed_bytes_never_crash():
    """~200 mutations of a real small model: each loads and runs, or raises OnnxError."""
    data = bytearray(small_mlp().SerializeToString())
    rng = np.random.default_rng(1234)
    x = np.ones((2, 4), np.float32)
    outcomes = {"ok": 0, "error": 0}
    for i in range(200):
        b = bytearray(data)
        kind = i % 4
        if kind == 0:  # flip random bytes
            for p in rng.integers(0, len(b), size=rng.integers(1, 8)):
                b[p] = int(rng.integers(0, 256))
        elif kind == 1:  # truncate
            b = b[: int(rng.integers(0, len(b)))]
        elif kind == 2:  # insert random bytes
            p = int(rng.integers(0, len(b)))
            b[p:p] = bytes(rng.integers(0, 256, size=int(rng.integers(1, 16)), dtype=np.uint8))
        else:  # delete a span
            p = int(rng.integers(0, len(b)))
            del b[p:p + int(rng.integers(1, 32))]
        try:
            m = lg.onnx.load(bytes(b))
            lg.onnx.run(m, [x])
            outcomes["ok"] += 1
        except OnnxError:
            outcomes["error"] += 1
    assert outcomes["ok"] + outcomes["error"] == 200
    assert outcomes["error"] > 50  # most mutations must be caught, not silently accepted


def test_result_larger_than_memory_is_a_clear_error():
    node = helper.make_node("ConstantOfShape", ["s"], ["y"], name="huge")
    model = make_model([node], [tensor_info("s", TensorProto.INT64, [2])],
                       [tensor_info("y", TensorProto.FLOAT, None)])
    with pytest.raises(OnnxRuntimeError, match="huge.*more than this machine's memory"):
        lg.onnx.run(model, [np.array([1 << 30, 1 << 30], np.int64)])
