"""Tests for lightgrad.models.gpt.

Oracle: a minimal nanoGPT-style PyTorch GPT written here (same parameter names, causal
``scaled_dot_product_attention``, exact GELU, tied head) that receives lightgrad's weights;
one training step must give the same loss, the same gradient for every parameter and, after
AdamW, the same parameters. Generation with the KV cache is checked against generation
without it, and the cached incremental forward against the full forward.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import lightgrad as lg
from lightgrad.models.gpt import GPT, GPTConfig, sample_next

torch = pytest.importorskip("torch")

TINY = dict(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=16)


def torch_gpt(config: GPTConfig):
    """nanoGPT's model in PyTorch, with the names lightgrad uses (dropout 0)."""
    from torch import nn
    from torch.nn import functional as F

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
            self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = self.c_attn(x).split(C, dim=2)
            q, k, v = (t.view(B, T, config.n_head, C // config.n_head).transpose(1, 2)
                       for t in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.c_proj(y.transpose(1, 2).reshape(B, T, C))

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
            self.gelu = nn.GELU()
            self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)

        def forward(self, x):
            return self.c_proj(self.gelu(self.c_fc(x)))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            eps = config.layer_norm_epsilon
            self.ln_1 = nn.LayerNorm(config.n_embd, eps=eps, bias=config.bias)
            self.attn = Attention()
            self.ln_2 = nn.LayerNorm(config.n_embd, eps=eps, bias=config.bias)
            self.mlp = MLP()

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class TorchGPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = nn.ModuleDict(dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                wpe=nn.Embedding(config.block_size, config.n_embd),
                h=nn.ModuleList([Block() for _ in range(config.n_layer)]),
                ln_f=nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon,
                                  bias=config.bias),
            ))
            self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
            self.lm_head.weight = self.transformer.wte.weight

        def forward(self, idx, targets):
            T = idx.shape[1]
            x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(T))
            for block in self.transformer.h:
                x = block(x)
            logits = self.lm_head(self.transformer.ln_f(x))
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
            return logits, loss

    return TorchGPT()


def to_torch_model(model: GPT, dtype):
    tm = torch_gpt(model.config).to(dtype)
    state = {k: torch.tensor(np.array(v.numpy())) for k, v in model.state_dict().items()}
    tm.load_state_dict(state, strict=True)
    return tm


def batch(config: GPTConfig, B: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, config.vocab_size, (B, config.block_size + 1))
    return ids[:, :-1], ids[:, 1:]


def torch_groups(tm, weight_decay: float) -> list[dict]:
    """nanoGPT's rule, by name: every weight matrix and embedding decays, nothing else."""
    decay = [p for n, p in tm.named_parameters() if n.endswith("weight") and ".ln_" not in n
             and "ln_f" not in n]
    no_decay = [p for n, p in tm.named_parameters() if not (n.endswith("weight") and ".ln_"
                not in n and "ln_f" not in n)]
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


# ----------------------------------------------------------------------------- parity


@pytest.mark.parametrize("dtype, rtol, atol", [("float64", 1e-9, 1e-11),
                                               ("float32", 1e-4, 1e-5)])
def test_training_step_matches_pytorch(dtype, rtol, atol):
    lg_dtype, t_dtype = getattr(lg, dtype), getattr(torch, dtype)
    config = GPTConfig(vocab_size=23, block_size=8, n_layer=2, n_head=2, n_embd=16)
    model = GPT(config).to(lg_dtype)
    tm = to_torch_model(model, t_dtype)
    opt = model.configure_optimizers(weight_decay=0.1, learning_rate=1e-2, betas=(0.9, 0.99))
    topt = torch.optim.AdamW(torch_groups(tm, 0.1), lr=1e-2, betas=(0.9, 0.99))
    params = dict(model.named_parameters())
    tparams = dict(tm.named_parameters())
    assert params.keys() == tparams.keys()
    for step in range(2):  # the second step checks the optimizer's moments too
        x, y = batch(config, seed=step)
        logits, loss = model(lg.tensor(x), lg.tensor(y))
        tlogits, tloss = tm(torch.tensor(x), torch.tensor(y))
        np.testing.assert_allclose(logits.detach().numpy(), tlogits.detach().numpy(),
                                   rtol=rtol, atol=atol)
        assert loss.dtype is lg_dtype
        np.testing.assert_allclose(loss.item(), tloss.item(), rtol=rtol, atol=atol)
        opt.zero_grad(set_to_none=True)
        topt.zero_grad(set_to_none=True)
        loss.backward()
        tloss.backward()
        for name, p in params.items():
            g, tg = p.grad.numpy(), tparams[name].grad.numpy()
            # gradients are ~1e-2: compare relative to the largest entry of each tensor
            np.testing.assert_allclose(g, tg, rtol=rtol, atol=atol * max(1e-2, abs(tg).max()),
                                       err_msg=f"gradient of {name}, step {step}")
        opt.step()
        topt.step()
        # Adam divides by |grad|: a gradient near zero with float32 rounding noise moves its
        # parameter by a visible fraction of lr, so parameters are compared to 1% of a step.
        step_atol = atol if dtype == "float64" else 1e-2 * 1e-2
        for name, p in params.items():
            np.testing.assert_allclose(p.detach().numpy(), tparams[name].detach().numpy(),
                                       rtol=rtol, atol=step_atol,
                                       err_msg=f"{name} after step {step}")


def test_no_bias_config_matches_pytorch():
    config = GPTConfig(vocab_size=11, block_size=6, n_layer=1, n_head=2, n_embd=8, bias=False)
    model = GPT(config).double()
    assert not any(n.endswith("bias") for n, _ in model.named_parameters())
    tm = to_torch_model(model, torch.float64)
    x, y = batch(config, B=2)
    _, loss = model(lg.tensor(x), lg.tensor(y))
    _, tloss = tm(torch.tensor(x), torch.tensor(y))
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-10)


# ----------------------------------------------------------------------------- KV cache


def sharp_model(seed: int = 0, **overrides) -> GPT:
    """A tiny random model whose next-token distributions are far from uniform, so that
    rounding differences cannot flip a greedy choice."""
    lg.manual_seed(seed)
    model = GPT(GPTConfig(**{**TINY, **overrides}))
    with lg.no_grad():
        for p in model.parameters():
            if p.ndim >= 2:
                lg.nn.init.normal_(p, 0.0, 0.5)
    return model.eval()


@pytest.mark.parametrize("new_tokens, crop", [(5, False), (21, True)])
def test_greedy_generation_with_and_without_cache_agree(new_tokens, crop):
    model = sharp_model()
    prompt = lg.tensor([[1, 2, 3], [4, 4, 0]])
    with_cache = model.generate(prompt, new_tokens, temperature=0, use_cache=True, crop=crop)
    without = model.generate(prompt, new_tokens, temperature=0, use_cache=False, crop=crop)
    assert with_cache.shape == (2, 3 + new_tokens)
    assert with_cache.tolist() == without.tolist()
    assert with_cache[:, :3].tolist() == prompt.tolist()
    # greedy means each new token is the argmax of the full forward over its context
    block = model.config.block_size
    for t in range(3, 3 + new_tokens):
        context = with_cache[:, max(0, t - block):t]
        logits, _ = model(context)
        assert with_cache[:, t].tolist() == logits[:, -1].argmax(dim=-1).tolist()


def test_generation_result_dtype_and_zero_new_tokens():
    # the new ids (int64) join the prompt as torch.cat would: an int32 prompt gives int64
    model = sharp_model()
    prompt = lg.tensor([[1, 2]], dtype=lg.int32)
    out = model.generate(prompt, 3, temperature=0)
    assert out.dtype is lg.int64 and out[:, :2].tolist() == [[1, 2]]
    assert model.generate(prompt, 0).tolist() == [[1, 2]]


@pytest.mark.parametrize("options", [dict(temperature=1.0),
                                     dict(temperature=0.7, top_k=4),
                                     dict(temperature=1.3, top_p=0.8),
                                     dict(temperature=0.9, top_k=5, top_p=0.9)])
@pytest.mark.parametrize("new_tokens, crop", [(6, False), (15, True)])
def test_sampled_generation_with_and_without_cache_agree(options, new_tokens, crop):
    model = sharp_model(seed=1)
    prompt = lg.tensor([[5], [7]])
    lg.manual_seed(123)
    a = model.generate(prompt, new_tokens, use_cache=True, crop=crop, **options)
    lg.manual_seed(123)
    b = model.generate(prompt, new_tokens, use_cache=False, crop=crop, **options)
    assert a.tolist() == b.tolist()
    lg.manual_seed(124)
    c = model.generate(prompt, new_tokens, use_cache=True, crop=crop, **options)
    assert a.shape == c.shape == (2, 1 + new_tokens)


def test_cached_incremental_forward_equals_full_forward():
    model = sharp_model(seed=2)
    ids = lg.tensor([[3, 1, 4, 1, 5, 9, 2, 6], [2, 7, 1, 8, 2, 8, 1, 8]])
    full, _ = model(ids)
    caches = model._new_caches(2)
    pieces = [(0, 3), (3, 4), (4, 6), (6, 7), (7, 8)]  # a prompt, single tokens and a chunk
    with lg.no_grad():
        for start, end in pieces:
            logits, _ = model(ids[:, start:end], caches=caches)
            np.testing.assert_allclose(logits.numpy(), full[:, start:end].detach().numpy(),
                                       rtol=1e-5, atol=1e-5, err_msg=f"positions {start}:{end}")
    assert caches[0].length == 8
    with pytest.raises(ValueError, match="block_size"):
        model(ids[:, :1], caches=caches)


def test_generate_restores_training_mode():
    model = sharp_model()
    model.train()
    model.generate(lg.tensor([[1]]), 2)
    assert model.training
    model.eval()
    model.generate(lg.tensor([[1]]), 2)
    assert not model.training


# ----------------------------------------------------------------------------- errors


def test_generate_past_block_size_without_crop_raises():
    model = sharp_model()
    with pytest.raises(ValueError, match=r"exceeds block_size 8.*crop=True"):
        model.generate(lg.tensor([[1, 2, 3]]), 6)
    model.generate(lg.tensor([[1, 2, 3]]), 5)  # exactly block_size is fine
    with pytest.raises(ValueError, match="at least one token"):
        model.generate(lg.zeros(1, 0, dtype=lg.int64), 2)


def test_forward_rejects_bad_ids():
    model = sharp_model()
    with pytest.raises(ValueError, match=r"integer token ids.*float32"):
        model(lg.tensor([[1.0, 2.0]]))
    with pytest.raises(ValueError, match=r"shape \(batch, time\)"):
        model(lg.tensor([1, 2]))
    with pytest.raises(ValueError, match="longer than block_size 8"):
        model(lg.zeros(1, 9, dtype=lg.int64))


def test_config_errors():
    with pytest.raises(ValueError, match="divisible by n_head"):
        GPTConfig(n_embd=10, n_head=3)
    with pytest.raises(ValueError, match="n_layer must be positive"):
        GPTConfig(n_layer=0)
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        GPTConfig.preset("huge")
    assert GPTConfig.preset("baby", vocab_size=65) == GPTConfig(  # nanoGPT's CPU config
        vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128, bias=False)


def test_sample_next_filters():
    logits = lg.tensor([[0.0, 3.0, 1.0, 2.0]] * 400)
    assert sample_next(logits, temperature=0).flatten().tolist() == [1] * 400
    top2 = set(sample_next(logits, top_k=2).flatten().tolist())
    assert top2 == {1, 3}
    # p = softmax([0, 3, 1, 2]) = [.032, .644, .087, .237]: top_p 0.7 keeps ids 1 and 3
    nucleus = set(sample_next(logits, top_p=0.7).flatten().tolist())
    assert nucleus == {1, 3}
    assert set(sample_next(logits, top_p=0.5).flatten().tolist()) == {1}
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        sample_next(logits, temperature=-1)


# ----------------------------------------------------------------------------- training


def test_short_training_run_lowers_the_loss():
    text = "the quick brown fox jumps over the lazy dog. " * 20
    chars = sorted(set(text))
    data = np.array([chars.index(c) for c in text])
    config = GPTConfig(vocab_size=len(chars), block_size=16, n_layer=2, n_head=2, n_embd=32)
    model = GPT(config)
    opt = model.configure_optimizers(weight_decay=0.1, learning_rate=1e-2)
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(60):
        starts = rng.integers(0, len(data) - 17, 8)
        windows = np.stack([data[s:s + 17] for s in starts])
        _, loss = model(lg.tensor(windows[:, :-1]), lg.tensor(windows[:, 1:]))
        opt.zero_grad()
        loss.backward()
        lg.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    assert abs(losses[0] - math.log(len(chars))) < 0.3  # starts near uniform
    assert np.mean(losses[-5:]) < 0.25 * losses[0], losses


# ----------------------------------------------------------------------------- groups, init


def test_configure_optimizers_groups():
    model = GPT(GPTConfig(**TINY))
    opt = model.configure_optimizers(weight_decay=0.05, learning_rate=3e-4, betas=(0.8, 0.9))
    names = {id(p): n for n, p in model.named_parameters()}
    assert model.lm_head.weight is model.transformer.wte.weight
    assert "lm_head.weight" not in names.values()  # the tied weight is counted once
    grouped = [[names[id(p)] for p in g["params"]] for g in opt.param_groups]
    flat = [n for g in grouped for n in g]
    assert sorted(flat) == sorted(names.values())  # every parameter in exactly one group
    decay = {g["weight_decay"]: set(n) for g, n in zip(opt.param_groups, grouped)}
    matrices = {"transformer.wte.weight", "transformer.wpe.weight"} | {
        f"transformer.h.{i}.{m}.weight" for i in range(2)
        for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")}
    assert decay == {0.05: matrices, 0.0: set(names.values()) - matrices}
    assert all(n.endswith("bias") or ".ln_" in n or "ln_f" in n for n in decay[0.0])
    assert all(g["lr"] == 3e-4 and tuple(g["betas"]) == (0.8, 0.9) for g in opt.param_groups)
    assert type(opt).__name__ == "AdamW"


def test_gpt2_initialisation_statistics():
    config = GPTConfig(vocab_size=500, block_size=64, n_layer=6, n_head=4, n_embd=64)
    model = GPT(config)
    proj_std = 0.02 / math.sqrt(2 * config.n_layer)
    for name, p in model.named_parameters():
        values = p.detach().numpy().astype(np.float64)
        if name.endswith("bias") or (".ln_" in name or "ln_f" in name):
            expected = 1.0 if name.endswith("weight") else 0.0
            assert np.all(values == expected), name
            continue
        std = proj_std if name.endswith("c_proj.weight") else 0.02
        assert abs(values.std() - std) < 0.08 * std, (name, values.std(), std)
        assert abs(values.mean()) < 4 * std / math.sqrt(values.size), name
    assert model.num_parameters() == model.num_parameters(False) - 64 * 64
