"""lg.onnx.export: traced through graph mode; the file passes onnx.checker (full check, in
export), runs in onnxruntime with the same outputs, and round-trips through lg.onnx.load."""
from __future__ import annotations

import numpy as np
import pytest
from onnx_helpers import ort_run

import lightgrad as lg
from lightgrad import nn
from lightgrad.onnx import UnsupportedOpError

onnx = pytest.importorskip("onnx")


def _roundtrip(model, x, tmp_path, **kw):
    path = str(tmp_path / "m.onnx")
    proto = lg.onnx.export(model, (x,), path, input_names=["x"], **kw)
    was_training = model.training
    model.eval()  # export traces eval mode
    with lg.no_grad():
        ref = model(x)
    model.train(was_training)
    ref = (ref[0] if isinstance(ref, tuple) else ref).numpy()
    np.testing.assert_allclose(ort_run(path, {"x": x.numpy()})[0], ref, rtol=1e-4, atol=1e-5)
    back = lg.onnx.load(path)
    with lg.no_grad():
        np.testing.assert_allclose(back(x).numpy(), ref, rtol=1e-5, atol=1e-6)
    return proto, path


def test_mlp_with_gelu(tmp_path):
    model = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 3), nn.Softmax(-1))
    proto, _ = _roundtrip(model, lg.randn(2, 4), tmp_path)
    names = {t.name for t in proto.graph.initializer}
    assert {"0.weight", "0.bias", "2.weight", "2.bias"} <= names  # state_dict names


def test_cnn_with_batchnorm_and_dynamic_batch(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 14 * 14, 10))
    model.train()
    _, path = _roundtrip(model, lg.randn(2, 1, 28, 28), tmp_path, dynamic_axes={"x": [0]})
    assert model.training  # export traced in eval mode and restored the mode
    model.eval()
    x5 = lg.randn(5, 1, 28, 28)
    with lg.no_grad():
        ref = model(x5).numpy()
    np.testing.assert_allclose(ort_run(path, {"x": x5.numpy()})[0], ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(lg.onnx.run(path, [x5.numpy()])[0], ref, rtol=1e-4, atol=1e-5)


def test_transformer_layer(tmp_path):
    layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
    _roundtrip(layer, lg.randn(2, 5, 16), tmp_path)


def test_gpt_model(tmp_path):
    from lightgrad.models.gpt import GPT, GPTConfig
    gpt = GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=32))
    ids = lg.tensor(np.random.default_rng(0).integers(0, 50, (2, 8)))
    _roundtrip(gpt, ids, tmp_path)


def test_imported_model_exports_again(tmp_path):
    from onnx_helpers import small_mlp
    m = lg.onnx.load(small_mlp())
    x = lg.randn(3, 4)
    _roundtrip(m, x, tmp_path)


def test_data_dependent_python_is_refused(tmp_path):
    class Branchy(nn.Module):
        def forward(self, x):
            return x * 2 if x.sum().item() > 0 else x

    with pytest.raises(UnsupportedOpError, match="reads the values"):
        lg.onnx.export(Branchy(), (lg.ones(3),), str(tmp_path / "b.onnx"))


def test_is_in_onnx_export_flag(tmp_path):
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(lg.onnx.is_in_onnx_export())
            return x + 1

    lg.onnx.export(Probe(), (lg.ones(2),), str(tmp_path / "p.onnx"))
    assert seen == [True] and not lg.onnx.is_in_onnx_export()


def test_in_place_updates_become_new_values(tmp_path):
    class Accumulate(nn.Module):
        def forward(self, x):
            z = lg.zeros(x.shape)
            z += x * 2
            z += 1
            return z

    x = lg.randn(2, 3)
    path = str(tmp_path / "acc.onnx")
    lg.onnx.export(Accumulate(), (x,), path, input_names=["x"])
    np.testing.assert_allclose(ort_run(path, {"x": x.numpy()})[0], x.numpy() * 2 + 1,
                               rtol=1e-6)
