"""An imported model is an ordinary Module: gradients flow, it trains, parameters save."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from onnx_helpers import small_mlp

import lightgrad as lg
import lightgrad.nn.functional as F

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

MNIST_DIR = Path(os.environ.get("LIGHTGRAD_MNIST", "/work/shared/data/mnist"))


class TorchCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.c2 = torch.nn.Conv2d(8, 16, 3, padding=1)
        self.fc = torch.nn.Linear(16 * 7 * 7, 10)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.c1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.c2(x)), 2)
        return self.fc(x.flatten(1))


def export_torch(model, example, path, **kw):
    """torch.onnx.export with the TorchScript exporter (no onnxscript needed offline)."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(model, example, str(path), dynamo=False, **kw)
        except Exception as e:  # pragma: no cover - depends on the torch build
            pytest.skip(f"torch.onnx.export does not work here: {e}")
    return str(path)


def test_parameters_buffers_and_state_dict():
    m = lg.onnx.load(small_mlp())
    names = dict(m.named_parameters())
    assert set(names) == {"w1", "b1", "w2", "b2"}
    assert all(p.requires_grad for p in names.values())
    sd = m.state_dict()
    assert sd["w1"].shape == (8, 4)


def test_gradients_match_torch_through_imported_mlp():
    model = small_mlp()
    m = lg.onnx.load(model)
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    y = m(lg.tensor(x))
    y.square().sum().backward()
    inits = {t.name: torch.tensor(onnx_array(t), requires_grad=True)
             for t in model.graph.initializer}
    h = torch.relu(torch.tensor(x) @ inits["w1"].T + inits["b1"])
    ((h @ inits["w2"].T + inits["b2"]) ** 2).sum().backward()
    for name, p in m.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), inits[name].grad.numpy(), rtol=1e-4,
                                   atol=1e-5)


def onnx_array(t):
    from onnx import numpy_helper
    return numpy_helper.to_array(t).copy()


@pytest.mark.skipif(not MNIST_DIR.is_dir(), reason="shared MNIST images not found")
def test_finetune_exported_cnn_on_mnist(tmp_path):
    torch.manual_seed(0)
    path = export_torch(TorchCNN().eval(), (torch.randn(2, 1, 28, 28),), tmp_path / "cnn.onnx",
                        input_names=["x"], output_names=["logits"],
                        dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})
    model = lg.onnx.load(path)
    assert len(list(model.parameters())) == 6
    ds = lg.data.MNIST(MNIST_DIR, train=False)
    x, t = ds.data[:512], ds.targets[:512]
    opt = lg.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for step in range(12):
        i = (step * 64) % 512
        logits = model(x[i:i + 64])
        loss = F.cross_entropy(logits, t[i:i + 64])
        opt.zero_grad()
        loss.backward()
        assert all(p.grad is not None for p in model.parameters())
        opt.step()
        losses.append(loss.item())
    with lg.no_grad():
        final = F.cross_entropy(model(x[:256]), t[:256]).item()
    assert final < losses[0] - 0.2, (losses, final)


def test_imported_model_runs_and_trains_on_cuda_device():
    """The same module on the `cuda` device (a GPU, or the emulator without one)."""
    cpu = lg.onnx.load(small_mlp())
    dev = lg.onnx.load(small_mlp(), device="cuda")
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    y = dev(x)
    assert str(y.device).startswith("cuda")
    np.testing.assert_allclose(y.detach().cpu().numpy(), cpu(x).detach().numpy(), rtol=1e-5,
                               atol=1e-6)
    y.sum().backward()
    assert str(dev.w1.grad.device).startswith("cuda")


def test_imported_model_compiles_with_jit(tmp_path):
    """Shape arithmetic stays in NumPy, so lg.jit records only the float math and replays."""
    import warnings

    from test_onnx_models import TransformerBlock
    torch.manual_seed(0)
    path = export_torch(TransformerBlock().eval(), (torch.randn(2, 8, 64),), tmp_path / "b.onnx",
                        input_names=["x"], dynamic_axes={"x": {0: "b", 1: "t"}})
    model = lg.onnx.load(path)
    step = lg.jit(lambda x: model(x))
    x = lg.randn(2, 8, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("error", lg.graph.JitWarning)
        with lg.no_grad():
            outs = [step(x) for _ in range(3)]
            ref = model(x)
    for y in outs:
        np.testing.assert_allclose(y.numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)
