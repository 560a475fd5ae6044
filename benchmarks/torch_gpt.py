"""nanoGPT's GPT in PyTorch, with lightgrad's parameter names: the benchmarks' peer.

``TorchGPT(config)`` takes a lightgrad ``GPTConfig``; ``copy_weights`` gives it a lightgrad
model's weights; ``generate`` is greedy decoding with or without a simple KV cache (the
cache is rebuilt from the last ``block_size`` tokens when the window slides, as lightgrad
does, so both give the same tokens).

>>> import lightgrad as lg
>>> from lightgrad.models.gpt import GPT, GPTConfig
>>> config = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8)
>>> model = TorchGPT(config); copy_weights(GPT(config), model)
>>> tuple(generate(model, torch.tensor([[1]]), 4, use_cache=True).shape)
(1, 5)
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class Attention(nn.Module):
    def __init__(self, config: Any):
        super().__init__()
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)

    def forward(self, x: torch.Tensor, cache: list | None = None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
                   for t in (q, k, v))
        if cache is not None:
            if cache:  # keys and values of the past positions
                k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
            cache[:] = [k, v]
        # a single new query attends to every cached key; a prompt is causal
        y = F.scaled_dot_product_attention(q, k, v, is_causal=T > 1)
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, config: Any):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, config: Any):
        super().__init__()
        eps = config.layer_norm_epsilon
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=eps, bias=config.bias)
        self.attn = Attention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=eps, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: list | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache)
        return x + self.mlp(self.ln_2(x))


class TorchGPT(nn.Module):
    def __init__(self, config: Any):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                caches: list[list] | None = None) -> tuple[torch.Tensor, Any]:
        T = idx.shape[1]
        start = caches[0][0].shape[2] if caches and caches[0] else 0
        pos = torch.arange(start, start + T, device=idx.device)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        for i, block in enumerate(self.transformer.h):
            x = block(x, caches[i] if caches is not None else None)
        logits = self.lm_head(self.transformer.ln_f(x))
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    def configure_optimizers(self, weight_decay: float, learning_rate: float,
                             betas: tuple[float, float]) -> torch.optim.AdamW:
        """nanoGPT's groups: matrices decay, biases and LayerNorm weights do not."""
        params = list(self.parameters())
        groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas)


def copy_weights(lg_model: Any, model: TorchGPT) -> None:
    """Load a lightgrad GPT's state dict into ``model``."""
    state = {k: torch.from_numpy(np.array(v.numpy())) for k, v in lg_model.state_dict().items()}
    model.load_state_dict(state, strict=True)


def set_threads(n: int) -> str:
    """Use ``n`` threads in PyTorch and in NumPy's BLAS (lightgrad's matmuls); returns a
    line saying so. ``n = 0`` keeps each framework's default."""
    import lightgrad as lg
    if n == 0:  # each framework's default: lightgrad's automatic count, torch's core count
        lg.set_num_threads(None)
        return f"default threads (torch {torch.get_num_threads()}, lightgrad automatic)"
    torch.set_num_threads(n)
    lg.set_num_threads(n)
    return f"torch and NumPy BLAS on {n} thread{'s' if n > 1 else ''}"


@torch.no_grad()
def generate(model: TorchGPT, idx: torch.Tensor, max_new_tokens: int,
             use_cache: bool = True) -> torch.Tensor:
    """Greedy decoding; the context slides past ``block_size`` (cache rebuilt then)."""
    block = model.config.block_size
    caches = None
    for _ in range(max_new_tokens):
        if use_cache and caches is not None and caches[0][0].shape[2] < block:
            logits, _ = model(idx[:, -1:], caches=caches)
        else:
            caches = [[] for _ in model.transformer.h] if use_cache else None
            logits, _ = model(idx[:, -block:], caches=caches)
        idx = torch.cat([idx, logits[:, -1].argmax(dim=-1, keepdim=True)], dim=1)
    return idx
