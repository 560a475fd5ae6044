"""Real models exported from PyTorch and transformers: lightgrad equals onnxruntime (rtol 1e-4)."""
from __future__ import annotations

import numpy as np
import pytest
from onnx_helpers import ort_run
from test_onnx_finetune import TorchCNN, export_torch

import lightgrad as lg

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


class Block(torch.nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        nn = torch.nn
        self.c1, self.b1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.c2, self.b2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.down = None if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.b2(self.c2(torch.relu(self.b1(self.c1(x)))))
        return torch.relu(y + (x if self.down is None else self.down(x)))


class ResNet18(torch.nn.Module):
    """ResNet-18's layout (stem, 4 stages of 2 basic blocks, pool, fc) at width 16."""

    def __init__(self, width=16, classes=10):
        super().__init__()
        nn = torch.nn
        self.stem = nn.Sequential(nn.Conv2d(3, width, 7, 2, 3, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        layers, c = [], width
        for i, mult in enumerate((1, 2, 4, 8)):
            layers += [Block(c, width * mult, 1 if i == 0 else 2),
                       Block(width * mult, width * mult, 1)]
            c = width * mult
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(c, classes)
        for m in self.modules():  # non-trivial running statistics
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.data.uniform_(0.5, 1.5)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(torch.nn.functional.adaptive_avg_pool2d(x, 1).flatten(1))


class TransformerBlock(torch.nn.Module):
    """Pre-norm causal self-attention + GELU MLP."""

    def __init__(self, d=64, heads=4, hidden=128):
        super().__init__()
        nn = torch.nn
        self.heads = heads
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.n1, self.n2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.f1, self.f2 = nn.Linear(d, hidden), nn.Linear(hidden, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.n1(x)).split(d, -1)
        q, k, v = (z.reshape(b, t, self.heads, d // self.heads).transpose(1, 2)
                   for z in (q, k, v))
        mask = torch.triu(torch.full((t, t), -1e9), 1)
        a = torch.softmax(q @ k.transpose(-1, -2) / (d // self.heads) ** 0.5 + mask, -1)
        x = x + self.proj((a @ v).transpose(1, 2).reshape(b, t, d))
        return x + self.f2(torch.nn.functional.gelu(self.f1(self.n2(x))))


def _check(path, feeds):
    ref = ort_run(path, feeds)
    out = lg.onnx.run(path, list(feeds.values()))
    assert len(out) == len(ref)
    for o, r in zip(out, ref):
        assert o.dtype == r.dtype and o.shape == r.shape
        np.testing.assert_allclose(o, r, rtol=1e-4, atol=1e-5)


def test_cnn_matches_onnxruntime(tmp_path):
    torch.manual_seed(0)
    path = export_torch(TorchCNN().eval(), (torch.randn(1, 1, 28, 28),), tmp_path / "c.onnx",
                        input_names=["x"], dynamic_axes={"x": {0: "b"}})
    _check(path, {"x": np.random.default_rng(0).standard_normal((3, 1, 28, 28), np.float32)})


def test_resnet18_like_matches_onnxruntime(tmp_path):
    torch.manual_seed(0)
    path = export_torch(ResNet18().eval(), (torch.randn(1, 3, 64, 64),), tmp_path / "r.onnx",
                        input_names=["x"], dynamic_axes={"x": {0: "b"}})
    _check(path, {"x": np.random.default_rng(0).standard_normal((2, 3, 64, 64), np.float32)})


def test_transformer_block_matches_onnxruntime_with_dynamic_length(tmp_path):
    torch.manual_seed(0)
    path = export_torch(TransformerBlock().eval(), (torch.randn(2, 16, 64),),
                        tmp_path / "t.onnx", input_names=["x"],
                        dynamic_axes={"x": {0: "b", 1: "t"}})
    rng = np.random.default_rng(0)
    for t in (16, 5):  # a length other than the exported one
        _check(path, {"x": rng.standard_normal((3, t, 64), np.float32)})


@pytest.mark.slow  # importing transformers takes longer than the default suite's budget allows
def test_gpt2_from_transformers_matches_onnxruntime(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=100,
                                  n_positions=32)
    cfg._attn_implementation = "eager"
    gpt = transformers.GPT2LMHeadModel(cfg).eval()

    class Logits(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gpt = gpt

        def forward(self, ids):
            return self.gpt(input_ids=ids, attention_mask=torch.ones_like(ids),
                            use_cache=False).logits

    path = export_torch(Logits().eval(), (torch.randint(0, 100, (1, 8)),), tmp_path / "g.onnx",
                        input_names=["ids"], dynamic_axes={"ids": {0: "b", 1: "t"}},
                        opset_version=17)
    ids = np.random.default_rng(0).integers(0, 100, (2, 8)).astype(np.int64)
    _check(path, {"ids": ids})
    with torch.no_grad():
        np.testing.assert_allclose(lg.onnx.run(path, [ids])[0],
                                   Logits()(torch.from_numpy(ids)).numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.slow  # importing transformers takes longer than the default suite's budget allows
def test_mamba_from_transformers_matches_onnxruntime(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.MambaConfig(vocab_size=100, hidden_size=32, state_size=8,
                                   num_hidden_layers=2, expand=2, conv_kernel=4)
    mamba = transformers.MambaForCausalLM(cfg).eval()

    class Logits(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mamba = mamba

        def forward(self, ids):
            return self.mamba(input_ids=ids, use_cache=False).logits

    path = export_torch(Logits().eval(), (torch.randint(0, 100, (1, 8)),), tmp_path / "m.onnx",
                        input_names=["ids"], opset_version=17)
    ids = np.random.default_rng(0).integers(0, 100, (1, 8)).astype(np.int64)
    _check(path, {"ids": ids})
