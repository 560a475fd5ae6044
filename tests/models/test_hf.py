"""Tests for loading Hugging Face GPT-2 checkpoints (lightgrad.models.hf).

Oracle: ``transformers``' ``GPT2LMHeadModel`` (a test-only dependency), randomly
initialised, saved with ``save_pretrained`` and loaded with ``GPT.from_pretrained``: the
same logits and the same greedy continuation.
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import lightgrad as lg
from lightgrad.models.gpt import GPT, GPTConfig

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def save_random_gpt2(path, **overrides):
    """A small random GPT-2 written by transformers' save_pretrained; returns the model."""
    torch.manual_seed(0)
    config = transformers.GPT2Config(**{**dict(
        n_layer=2, n_head=2, n_embd=32, n_positions=64, vocab_size=100, bos_token_id=0,
        eos_token_id=0), **overrides})
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        # GPT-2's init (std 0.02) leaves activations so small that a wrong GELU variant or
        # a missing transpose of a square matrix would hide below 1e-4: use wider weights,
        # and non-trivial biases and LayerNorms
        for p in model.parameters():
            if p.ndim >= 2:
                p.normal_(0.0, 0.3)
            else:
                p.add_(0.1 * torch.randn_like(p))
    model.save_pretrained(path, safe_serialization=True)
    assert (path / "model.safetensors").is_file()
    return model


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    """A small random GPT-2 (GELU "gelu_new", as GPT-2) and its directory."""
    path = tmp_path_factory.mktemp("hf") / "gpt2-small-random"
    return path, save_random_gpt2(path)


def random_ids(vocab: int = 100, shape=(2, 20), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, vocab, shape)


def hf_logits(model, ids: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.tensor(ids)).logits.numpy()


def test_config_is_read(hf_dir):
    path, _ = hf_dir
    model = GPT.from_pretrained(path)
    c = model.config
    assert (c.n_layer, c.n_head, c.n_embd, c.block_size, c.vocab_size) == (2, 2, 32, 64, 100)
    assert c.bias and c.dropout == 0.0 and c.gelu_approximate == "tanh"
    assert model.lm_head.weight is model.transformer.wte.weight


def test_same_logits_as_transformers(hf_dir):
    path, hf = hf_dir
    model = GPT.from_pretrained(path).eval()
    ids = random_ids()
    with lg.no_grad():
        logits, _ = model(lg.tensor(ids))
    np.testing.assert_allclose(logits.numpy(), hf_logits(hf, ids), atol=1e-4, rtol=1e-4)


def test_exact_gelu_checkpoint(tmp_path):
    hf = save_random_gpt2(tmp_path, activation_function="gelu")
    model = GPT.from_pretrained(tmp_path)
    assert model.config.gelu_approximate == "none"
    ids = random_ids(seed=3)
    with lg.no_grad():
        logits, _ = model(lg.tensor(ids))
    np.testing.assert_allclose(logits.numpy(), hf_logits(hf, ids), atol=1e-4, rtol=1e-4)


def test_same_greedy_continuation_as_transformers(hf_dir):
    path, hf = hf_dir
    model = GPT.from_pretrained(path)
    prompt = random_ids(shape=(1, 5), seed=1)
    with torch.no_grad():
        expected = hf.generate(torch.tensor(prompt), max_new_tokens=20, do_sample=False,
                               attention_mask=torch.ones(1, 5, dtype=torch.long),
                               pad_token_id=0)
    ours = model.generate(lg.tensor(prompt), 20, temperature=0)
    assert ours.tolist() == expected.tolist()


def test_keys_without_transformer_prefix(hf_dir, tmp_path):
    path, hf = hf_dir
    tensors = lg.io.load_file(path / "model.safetensors")
    assert any(k.startswith("transformer.") for k in tensors)
    stripped = {k.removeprefix("transformer."): v for k, v in tensors.items()}
    assert not any(k.startswith("transformer.") for k in stripped)
    shutil.copy(path / "config.json", tmp_path / "config.json")
    lg.io.save_file(stripped, tmp_path / "model.safetensors")
    model = GPT.from_pretrained(tmp_path)
    ids = random_ids(seed=2)
    with lg.no_grad():
        logits, _ = model(lg.tensor(ids))
    np.testing.assert_allclose(logits.numpy(), hf_logits(hf, ids), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("missing", ["config.json", "model.safetensors"])
def test_missing_file_is_a_clear_error(hf_dir, tmp_path, missing):
    path, _ = hf_dir
    for name in ("config.json", "model.safetensors"):
        if name != missing:
            shutil.copy(path / name, tmp_path / name)
    with pytest.raises(FileNotFoundError, match=rf"{missing} not found.*config\.json and "
                                                r"model\.safetensors"):
        GPT.from_pretrained(tmp_path)


def test_config_without_gpt2_fields_is_a_clear_error(hf_dir, tmp_path):
    path, _ = hf_dir
    values = json.loads((path / "config.json").read_text())
    del values["n_head"]
    (tmp_path / "config.json").write_text(json.dumps(values))
    shutil.copy(path / "model.safetensors", tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match="n_head"):
        GPT.from_pretrained(tmp_path)


@pytest.mark.parametrize("change, message", [
    (dict(activation_function="relu"), "unsupported activation_function 'relu'"),
    (dict(n_inner=40), "n_inner=40 is not supported")])
def test_unsupported_config_is_a_clear_error(hf_dir, tmp_path, change, message):
    path, _ = hf_dir
    values = {**json.loads((path / "config.json").read_text()), **change}
    (tmp_path / "config.json").write_text(json.dumps(values))
    shutil.copy(path / "model.safetensors", tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match=message):
        GPT.from_pretrained(tmp_path)


def test_save_pretrained_round_trip(tmp_path):
    config = GPTConfig(vocab_size=37, block_size=12, n_layer=2, n_head=2, n_embd=16,
                       bias=False, layer_norm_epsilon=1e-6)
    model = GPT(config)
    with lg.no_grad():  # LayerNorm weights away from their initial ones
        for p in model.parameters():
            p.add_(0.05 * lg.randn(*p.shape))
    model.save_pretrained(tmp_path / "run")
    loaded = GPT.from_pretrained(tmp_path / "run")
    assert loaded.config == config
    assert loaded.lm_head.weight is loaded.transformer.wte.weight
    ours, theirs = model.state_dict(), loaded.state_dict()
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert np.array_equal(ours[key].numpy(), theirs[key].numpy()), key
    ids = lg.tensor(random_ids(37, (2, 12)))
    with lg.no_grad():
        assert np.array_equal(model(ids)[0].numpy(), loaded(ids)[0].numpy())
