"""Mamba against Hugging Face ``transformers``' ``MambaForCausalLM`` (a test-only oracle).

A small random ``MambaForCausalLM`` saved with ``save_pretrained`` must load with
``Mamba.from_pretrained`` and give the same logits, the same gradient for every parameter
and the same greedy continuation; the original state-spaces config names, sharded
checkpoints and lightgrad's own ``save_pretrained`` (read back by transformers) too.
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import lightgrad as lg
from lightgrad.models.mamba import Mamba

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

HF = dict(hidden_size=32, num_hidden_layers=2, vocab_size=100, state_size=8)


def random_hf_mamba(**overrides):
    """A small MambaForCausalLM with lively weights (the init's are nearly silent)."""
    torch.manual_seed(0)
    model = transformers.MambaForCausalLM(transformers.MambaConfig(**{**HF, **overrides}))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim >= 2 and "A_log" not in name:
                p.normal_(0.0, 0.3)
            else:
                p.add_(0.1 * torch.randn_like(p))
    return model.eval()


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("hf") / "mamba-random"
    model = random_hf_mamba()
    model.save_pretrained(path, safe_serialization=True)
    return path, model


def random_ids(shape=(2, 20), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 100, shape)


def hf_logits(model, ids: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.tensor(ids)).logits.numpy()


def our_logits(model: Mamba, ids: np.ndarray) -> np.ndarray:
    with lg.no_grad():
        return model(lg.tensor(ids))[0].numpy()


def test_config_and_names(hf_dir):
    path, hf = hf_dir
    model = Mamba.from_pretrained(path)
    c = model.config
    assert (c.d_model, c.n_layer, c.d_state, c.d_conv, c.dt_rank, c.vocab_size) == \
        (32, 2, 8, 4, 2, 100)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == {k: tuple(v.shape) for k, v in hf.state_dict().items()}


def test_same_logits_as_transformers(hf_dir):
    path, hf = hf_dir
    ids = random_ids()
    expected = hf_logits(hf, ids)
    assert np.abs(expected).max() > 1  # weights lively enough to show a wrong detail
    np.testing.assert_allclose(our_logits(Mamba.from_pretrained(path), ids), expected,
                               atol=1e-4, rtol=1e-4)


def test_same_gradients_as_transformers(hf_dir):
    path, hf = hf_dir
    ids, targets = random_ids((2, 12), seed=1), random_ids((2, 12), seed=2)
    model = Mamba.from_pretrained(path)
    _, loss = model(lg.tensor(ids), lg.tensor(targets))
    loss.backward()
    hf.zero_grad()
    logits = hf(torch.tensor(ids)).logits
    tloss = torch.nn.functional.cross_entropy(logits.reshape(24, -1),
                                              torch.tensor(targets).reshape(24))
    tloss.backward()
    assert abs(loss.item() - tloss.item()) < 1e-4
    theirs = dict(hf.named_parameters())
    for name, p in model.named_parameters():
        expected = theirs[name].grad.numpy()
        np.testing.assert_allclose(p.grad.numpy(), expected, rtol=2e-3,
                                   atol=2e-4 * np.abs(expected).max(), err_msg=name)


def test_same_greedy_continuation_as_transformers(hf_dir):
    path, hf = hf_dir
    prompt = random_ids((1, 5), seed=3)
    with torch.no_grad():
        expected = hf.generate(torch.tensor(prompt), max_new_tokens=15, do_sample=False,
                               min_new_tokens=15).numpy()
    got = Mamba.from_pretrained(path).generate(lg.tensor(prompt), 15, temperature=0)
    np.testing.assert_array_equal(got.numpy(), expected)


def test_state_spaces_names(hf_dir, tmp_path):
    """The original repositories: d_model/n_layer/ssm_cfg and ``backbone.embedding``."""
    path, hf = hf_dir
    config = {"d_model": 32, "n_layer": 2, "vocab_size": 97, "pad_vocab_size_multiple": 4,
              "ssm_cfg": {"d_state": 8}, "rms_norm": True, "residual_in_fp32": True,
              "fused_add_norm": True}
    (tmp_path / "config.json").write_text(json.dumps(config))
    tensors = lg.io.load_file(path / "model.safetensors")
    tensors["backbone.embedding.weight"] = tensors.pop("backbone.embeddings.weight")
    lg.io.save_file(tensors, tmp_path / "model.safetensors")
    model = Mamba.from_pretrained(tmp_path)
    assert (model.config.vocab_size, model.config.padded_vocab_size) == (97, 100)
    ids = random_ids()
    np.testing.assert_allclose(our_logits(model, ids), hf_logits(hf, ids), atol=1e-4,
                               rtol=1e-4)


def test_sharded_checkpoint(tmp_path):
    hf = random_hf_mamba()
    hf.save_pretrained(tmp_path, safe_serialization=True, max_shard_size="20KB")
    assert (tmp_path / "model.safetensors.index.json").is_file()
    assert not (tmp_path / "model.safetensors").exists()
    ids = random_ids()
    np.testing.assert_allclose(our_logits(Mamba.from_pretrained(tmp_path), ids),
                               hf_logits(hf, ids), atol=1e-4, rtol=1e-4)


def test_save_pretrained_is_read_by_transformers(tmp_path):
    lg.manual_seed(1)
    from lightgrad.models.mamba import MambaConfig
    model = Mamba(MambaConfig(d_model=32, n_layer=2, vocab_size=50, d_state=8, bias=True))
    with lg.no_grad():
        for p in model.parameters():
            p.add_(0.2 * lg.randn(*p.shape))
    model.save_pretrained(tmp_path)
    hf = transformers.MambaForCausalLM.from_pretrained(tmp_path).eval()
    ids = random_ids() % 50
    np.testing.assert_allclose(hf_logits(hf, ids), our_logits(model, ids), atol=1e-4,
                               rtol=1e-4)
    again = Mamba.from_pretrained(tmp_path)
    np.testing.assert_array_equal(our_logits(again, ids), our_logits(model, ids))


def test_pickle_checkpoint_is_refused_with_a_conversion_hint(hf_dir, tmp_path):
    path, hf = hf_dir
    shutil.copy(path / "config.json", tmp_path / "config.json")
    torch.save(hf.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(ValueError, match="lightgrad convert .*pytorch_model.bin"):
        Mamba.from_pretrained(tmp_path)


def test_checkpoint_converted_from_pytorch_model_bin(hf_dir, tmp_path):
    """``lightgrad convert`` output (tied weights stored once) loads too."""
    from lightgrad.convert import convert
    path, hf = hf_dir
    shutil.copy(path / "config.json", tmp_path / "config.json")
    torch.save(hf.state_dict(), tmp_path / "pytorch_model.bin")
    convert(tmp_path / "pytorch_model.bin", tmp_path / "model.safetensors")
    ids = random_ids()
    np.testing.assert_allclose(our_logits(Mamba.from_pretrained(tmp_path), ids),
                               hf_logits(hf, ids), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("change, message", [
    ({"model_type": "gpt2"}, "model_type 'gpt2'"),
    ({"hidden_act": "gelu"}, "hidden_act 'gelu'"),
    ({"intermediate_size": 10}, "intermediate_size 10"),
    ({"vocab_size": 120}, "the embedding has 100 rows"),
])
def test_bad_configs_are_clear_errors(hf_dir, tmp_path, change, message):
    path, _ = hf_dir
    config = {**json.loads((path / "config.json").read_text()), **change}
    (tmp_path / "config.json").write_text(json.dumps(config))
    shutil.copy(path / "model.safetensors", tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match=message):
        Mamba.from_pretrained(tmp_path)


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json not found"):
        Mamba.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"d_model": 8, "n_layer": 1,
                                                      "vocab_size": 8}))
    with pytest.raises(FileNotFoundError, match="neither model.safetensors"):
        Mamba.from_pretrained(tmp_path)
