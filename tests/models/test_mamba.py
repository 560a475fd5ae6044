"""Tests for lightgrad.models.mamba (PyTorch parity lives in test_mamba_hf.py).

Generation with the recurrent state is checked against generation that recomputes the
whole sequence for every token (greedy and seeded sampling), and the one-token ``step``
against the full forward; the initialisation against mamba_ssm's recipe, computed here
from the config.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import lightgrad as lg
from lightgrad.models.mamba import PRESETS, Mamba, MambaConfig, MambaState

TINY = dict(d_model=16, n_layer=2, vocab_size=13, d_state=4)


def tiny(**overrides) -> Mamba:
    lg.manual_seed(0)
    model = Mamba(MambaConfig(**{**TINY, **overrides}))
    with lg.no_grad():  # livelier than the init, so that states matter for the logits
        for p in model.parameters():
            if p.ndim >= 2:
                p.add_(0.5 * lg.randn(*p.shape))
    return model


def ids(shape=(2, 7), vocab=13, seed=0) -> lg.Tensor:
    return lg.tensor(np.random.default_rng(seed).integers(0, vocab, shape))


def test_published_shapes():
    # d_model, n_layer, dt_rank = ceil(d_model / 16), as the state-spaces checkpoints
    published = {"130m": (768, 24, 48), "370m": (1024, 48, 64), "790m": (1536, 48, 96),
                 "1.4b": (2048, 48, 128), "2.8b": (2560, 64, 160)}
    for name, (width, layers, rank) in published.items():
        c = MambaConfig.preset(name)
        assert (c.d_model, c.n_layer, c.dt_rank, c.d_inner) == (width, layers, rank, 2 * width)
        assert (c.d_state, c.d_conv, c.vocab_size, c.padded_vocab_size) == (16, 4, 50277, 50280)
    assert set(PRESETS) >= {"baby", "mini"}


def test_baby_preset_is_about_the_baby_gpt():
    from lightgrad.models.gpt import GPT, GPTConfig
    gpt = GPT(GPTConfig.preset("baby", vocab_size=65)).num_parameters()
    mamba = Mamba(MambaConfig.preset("baby", vocab_size=65)).num_parameters()
    assert abs(mamba - gpt) / gpt < 0.1


def test_parameter_names_and_shapes():
    model = tiny()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    d_inner, rank = 32, 1
    assert shapes["backbone.embeddings.weight"] == (13, 16)
    assert shapes["backbone.layers.1.mixer.in_proj.weight"] == (2 * d_inner, 16)
    assert shapes["backbone.layers.1.mixer.conv1d.weight"] == (d_inner, 1, 4)
    assert shapes["backbone.layers.1.mixer.x_proj.weight"] == (rank + 2 * 4, d_inner)
    assert shapes["backbone.layers.1.mixer.dt_proj.weight"] == (d_inner, rank)
    assert shapes["backbone.layers.1.mixer.A_log"] == (d_inner, 4)
    assert shapes["backbone.layers.1.mixer.D"] == (d_inner,)
    assert shapes["backbone.norm_f.weight"] == (16,)
    assert model.lm_head.weight is model.backbone.embeddings.weight
    assert "backbone.layers.0.mixer.in_proj.bias" not in shapes  # bias=False by default


def test_initialisation_follows_mamba_ssm():
    lg.manual_seed(0)
    c = MambaConfig(d_model=64, n_layer=4, vocab_size=10, d_state=8)
    model = Mamba(c)
    m = model.backbone.layers[2].mixer
    np.testing.assert_allclose(m.A_log.detach().numpy(),
                               np.log(np.tile(np.arange(1, 9), (128, 1))), rtol=1e-6)
    np.testing.assert_array_equal(m.D.detach().numpy(), 1.0)
    dt = np.log1p(np.exp(m.dt_proj.bias.detach().numpy()))  # softplus
    assert dt.min() >= c.dt_min * (1 - 1e-4) and dt.max() <= c.dt_max * (1 + 1e-4)
    assert dt.min() < 0.002 and dt.max() > 0.05  # spread over the log-uniform range
    w = m.dt_proj.weight.detach().numpy()
    assert np.abs(w).max() <= c.dt_rank ** -0.5 and np.abs(w).max() > 0.8 * c.dt_rank ** -0.5
    # PyTorch's Linear init is U(+-1/sqrt(fan_in)); out_proj divided by sqrt(n_layer)
    bound = 1 / math.sqrt(c.d_inner)
    assert 0.8 * bound < np.abs(m.in_proj.weight.detach().numpy()).max() <= 1 / math.sqrt(64)
    out = np.abs(m.out_proj.weight.detach().numpy()).max()
    assert 0.8 * bound / 2 < out <= bound / 2
    assert abs(model.backbone.embeddings.weight.detach().numpy().std() - 0.02) < 0.005


def test_forward_shapes_and_loss():
    model = tiny()
    logits, loss = model(ids())
    assert logits.shape == (2, 7, 13) and loss is None
    x, y = ids(seed=1), ids(seed=2)
    logits, loss = model(x, y)
    manual = lg.nn.functional.cross_entropy(logits.reshape(14, 13), y.reshape(14))
    assert abs(loss.item() - manual.item()) < 1e-6
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and np.isfinite(p.grad.numpy()).all(), name
        assert np.abs(p.grad.numpy()).max() > 0, name


def test_padded_vocabulary():
    model = tiny(vocab_size=10, pad_vocab_size_multiple=8)
    assert model.config.padded_vocab_size == 16
    assert model(ids(vocab=10))[0].shape == (2, 7, 16)


def test_step_by_step_equals_full_forward():
    model = tiny().eval()
    x = ids((2, 9))
    with lg.no_grad():
        full = model(x)[0].numpy()
        states = [MambaState() for _ in range(2)]
        prompt = model(x[:, :3], states=states)[0].numpy()  # prompt shorter than d_conv
        steps = [model.step(x[:, t], states).numpy() for t in range(3, 9)]
    np.testing.assert_allclose(prompt, full[:, :3], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.stack(steps, axis=1), full[:, 3:], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("prompt_len", [1, 6])
def test_greedy_generation_with_and_without_state_agree(prompt_len):
    model = tiny()
    prompt = ids((2, prompt_len))
    fast = model.generate(prompt, 12, temperature=0)
    slow = model.generate(prompt, 12, temperature=0, use_cache=False)
    assert fast.shape == (2, prompt_len + 12)
    np.testing.assert_array_equal(fast.numpy(), slow.numpy())
    np.testing.assert_array_equal(fast[:, :prompt_len].numpy(), prompt.numpy())
    assert len(set(fast[0, prompt_len:].tolist())) > 1  # not a constant continuation


@pytest.mark.parametrize("options", [dict(temperature=1.0), dict(temperature=0.7, top_k=5),
                                     dict(top_p=0.8)])
def test_sampled_generation_with_and_without_state_agree(options):
    model = tiny()
    lg.manual_seed(3)
    fast = model.generate(ids((2, 3)), 10, **options)
    lg.manual_seed(3)
    slow = model.generate(ids((2, 3)), 10, use_cache=False, **options)
    np.testing.assert_array_equal(fast.numpy(), slow.numpy())


def test_generate_restores_training_mode_and_has_no_context_limit():
    model = tiny()
    model.train()
    out = model.generate(ids((1, 2)), 3, crop=True)
    assert model.training and out.shape == (1, 5)
    model.eval()
    model.generate(ids((1, 2)), 1)
    assert not model.training


def test_errors():
    model = tiny()
    with pytest.raises(ValueError, match="Mamba: expected integer token ids"):
        model(lg.randn(2, 3))
    with pytest.raises(ValueError, match="Mamba: expected integer token ids"):
        model(ids((6,)))
    with pytest.raises(ValueError, match="prompt must hold at least one token"):
        model.generate(lg.zeros(1, 0, dtype=lg.int64), 3)
    with pytest.raises(ValueError, match="d_state must be a positive int"):
        MambaConfig(d_state=0)
    with pytest.raises(ValueError, match="dt_min <= dt_max"):
        MambaConfig(dt_min=0.1, dt_max=0.01)
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        MambaConfig.preset("huge")


def test_config_round_trip():
    c = MambaConfig.preset("130m")
    assert MambaConfig.from_dict({**c.to_dict(), "block_size": 64}) == c


def test_configure_optimizers_groups():
    model = tiny()
    opt = model.configure_optimizers(weight_decay=0.1, learning_rate=1e-3)
    decay, no_decay = opt.param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)].split(".")[-2] + "." + names[id(p)].split(".")[-1]
               for p in decay["params"]}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert "mixer.A_log" not in decayed and "mixer.D" not in decayed
    assert {"in_proj.weight", "x_proj.weight", "out_proj.weight", "conv1d.weight"} <= decayed
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_short_training_run_lowers_the_loss():
    model = tiny()
    opt = model.configure_optimizers(learning_rate=1e-2)
    x = ids((4, 12), seed=5)
    y = lg.tensor(np.roll(x.numpy(), -1, axis=1))
    first = None
    for _ in range(15):
        _, loss = model(x, y)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


def test_same_logits_gradients_and_generation_on_every_device(device):
    model = tiny()
    x = ids((2, 6))
    logits, loss = model(x, x)
    loss.backward()
    other = tiny().to(device)
    got, loss_d = other(x.to(device), x.to(device))
    loss_d.backward()
    np.testing.assert_allclose(got.cpu().detach().numpy(), logits.detach().numpy(),
                               rtol=1e-4, atol=1e-5)
    for (name, p), q in zip(model.named_parameters(), other.parameters()):
        np.testing.assert_allclose(q.grad.cpu().numpy(), p.grad.numpy(), rtol=1e-3,
                                   atol=1e-5, err_msg=name)
    greedy = model.generate(x[:, :3], 4, top_k=1)
    assert other.generate(x[:, :3].to(device), 4, top_k=1).cpu().tolist() == greedy.tolist()
