"""GPT from scratch: the GPT-2 architecture, generation with a KV cache, GPT-2 weights.

Token and learned position embeddings, ``n_layer`` pre-LayerNorm blocks (causal
self-attention through ``F.scaled_dot_product_attention``, then a GELU MLP), a final
LayerNorm and a head tied to the token embedding. Parameter names follow GPT-2 / nanoGPT
(``transformer.h.0.attn.c_attn.weight``...), so checkpoints map one to one.

>>> import lightgrad as lg
>>> from lightgrad.models.gpt import GPT, GPTConfig
>>> lg.manual_seed(0)
>>> model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8))
>>> logits, loss = model(lg.tensor([[1, 2, 3]]), targets=lg.tensor([[2, 3, 4]]))
>>> logits.shape, model.generate(lg.tensor([[1]]), 4).shape
((1, 3, 11), (1, 5))
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgrad as lg
from lightgrad import nn
from lightgrad.models.config import ModelConfig
from lightgrad.models.sampling import sample_next
from lightgrad.nn import functional as F

PRESETS: dict[str, dict[str, Any]] = {
    # nanoGPT's CPU config for Tiny Shakespeare (nanoGPT trains without biases)
    "baby": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, bias=False),
    # a small model that still trains on a laptop CPU in minutes
    "mini": dict(n_layer=6, n_head=6, n_embd=192, block_size=128),
    # the GPT-2 family (vocab 50257, context 1024)
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768, block_size=1024, vocab_size=50257),
    "gpt2-medium": dict(n_layer=24, n_head=16, n_embd=1024, block_size=1024,
                        vocab_size=50257),
    "gpt2-large": dict(n_layer=36, n_head=20, n_embd=1280, block_size=1024,
                       vocab_size=50257),
    "gpt2-xl": dict(n_layer=48, n_head=25, n_embd=1600, block_size=1024, vocab_size=50257),
}


@dataclass
class GPTConfig(ModelConfig):
    """Model hyper-parameters; ``GPTConfig.preset("baby", vocab_size=65)`` for the presets."""

    PRESETS = PRESETS  # the module's table, for ModelConfig.preset

    vocab_size: int = 65
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True
    layer_norm_epsilon: float = 1e-5
    # "tanh" is GPT-2's own "gelu_new"; nanoGPT (and training here) use the exact "none"
    gelu_approximate: str = "none"

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head:
            raise ValueError(f"GPTConfig: n_embd ({self.n_embd}) must be divisible by n_head "
                             f"({self.n_head})")
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) <= 0:
                raise ValueError(f"GPTConfig: {name} must be positive, got "
                                 f"{getattr(self, name)}")


class KVCache:
    """Keys and values of past positions for one attention layer, preallocated.

    One (batch, 2 * n_head, max_len, head_dim) buffer ``kv``: the keys are its first
    ``n_head`` heads (``k``), the values the others (``v``), so that the keys and values
    of a new position, computed side by side by the attention's input projection, are
    stored with a single write (``append_kv``).
    """

    def __init__(self, batch: int, n_head: int, max_len: int, head_dim: int, dtype: Any):
        self.kv = lg.zeros(batch, 2 * n_head, max_len, head_dim, dtype=dtype)
        self.k, self.v = self.kv[:, :n_head], self.kv[:, n_head:]
        self.length = 0

    def append(self, k: lg.Tensor, v: lg.Tensor) -> tuple[lg.Tensor, lg.Tensor]:
        """Store ``k``/``v`` (B, H, T, D) after the past ones; return all keys and values."""
        end = self.length + k.shape[2]
        self.k[:, :, self.length:end] = k
        self.v[:, :, self.length:end] = v
        self.length = end
        return self.k[:, :, :end], self.v[:, :, :end]

    def append_kv(self, kv: lg.Tensor) -> tuple[lg.Tensor, lg.Tensor]:
        """``append`` for keys and values side by side in one (B, 2H, T, D) tensor."""
        end = self.length + kv.shape[2]
        self.kv[:, :, self.length:end] = kv
        self.length = end
        return self.k[:, :, :end], self.v[:, :, :end]


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: lg.Tensor, cache: KVCache | None = None) -> lg.Tensor:
        B, T, C = x.shape
        dropout = self.dropout if self.training else 0.0
        if cache is not None and T == 1:
            return self.resid_dropout(self.c_proj(self._step(x, cache, dropout)))
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q, k, v = (t.reshape(B, T, self.n_head, C // self.n_head).transpose(1, 2)
                   for t in (q, k, v))
        past = 0 if cache is None else cache.length
        if cache is not None:
            k, v = cache.append(k, v)
        if past == 0:  # no earlier positions: plain causal attention
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
        else:
            # query i sits at position past + i and sees keys 0 .. past + i
            mask = lg.ones(T, past + T, dtype=lg.bool).tril(past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).reshape(B, T, C)))

    def _step(self, x: lg.Tensor, cache: KVCache, dropout: float) -> lg.Tensor:
        """Attention of one new position (B, 1, C) to itself and the cached ones.

        With one position, (B, 1, 3C) -> (B, 3 * n_head, 1, head_dim) is a plain reshape
        (moving the head axis moves no element): its first n_head heads are the queries,
        the others the keys and values in the cache's layout, stored with one write. The
        result (B, n_head, 1, head_dim) reshapes back to (B, 1, C) the same way.
        """
        B, _, C = x.shape
        H = self.n_head
        qkv = self.c_attn(x).reshape(B, 3 * H, 1, C // H)
        k, v = cache.append_kv(qkv[:, H:])
        y = F.scaled_dot_product_attention(qkv[:, :H], k, v, dropout_p=dropout)
        return y.reshape(B, 1, C)


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU(approximate=config.gelu_approximate)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: lg.Tensor) -> lg.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        eps = config.layer_norm_epsilon
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=eps, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=eps, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: lg.Tensor, cache: KVCache | None = None) -> lg.Tensor:
        x = x + self.attn(self.ln_1(x), cache)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """The GPT-2 language model; ``model(idx, targets)`` returns ``(logits, loss)``."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # weight tying
        self.apply(self._init_weights)
        # GPT-2 scales the residual projections by 1/sqrt(2 * n_layer)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self, non_embedding: bool = True) -> int:
        """Parameter count; by default without the position embedding (as GPT-2 counts)."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.transformer.wpe.weight.numel() if non_embedding else n

    def forward(self, idx: lg.Tensor, targets: lg.Tensor | None = None,
                caches: list[KVCache] | None = None) -> tuple[lg.Tensor, lg.Tensor | None]:
        if idx.ndim != 2 or idx.dtype.is_floating_point:
            raise ValueError(f"GPT: expected integer token ids of shape (batch, time), got "
                             f"{idx.dtype.name} of shape {idx.shape}")
        B, T = idx.shape
        start = caches[0].length if caches else 0
        if start + T > self.config.block_size:
            raise ValueError(f"GPT: sequence of length {start + T} is longer than block_size "
                             f"{self.config.block_size}")
        if caches:  # generating: the positions' rows of the table, no lookup by id
            pos_emb = self.transformer.wpe.weight[start:start + T]
        else:
            pos_emb = self.transformer.wpe(lg.arange(start, start + T, device=idx.device))
        x = self.transformer.drop(self.transformer.wte(idx) + pos_emb)
        for i, block in enumerate(self.transformer.h):
            x = block(x, caches[i] if caches else None)
        x = self.transformer.ln_f(x)
        if targets is None:
            return self.lm_head(x), None
        logits = self.lm_head(x)
        loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T),
                               ignore_index=-1)
        return logits, loss

    def configure_optimizers(self, weight_decay: float = 0.1, learning_rate: float = 1e-3,
                             betas: tuple[float, float] = (0.9, 0.99)) -> Any:
        """AdamW with weight decay on matrices (dim >= 2) and none on biases and norms."""
        from lightgrad import optim
        decay = [p for p in self.parameters() if p.ndim >= 2]
        no_decay = [p for p in self.parameters() if p.ndim < 2]
        groups = [{"params": decay, "weight_decay": weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        return optim.AdamW(groups, lr=learning_rate, betas=betas)

    def _new_caches(self, batch: int) -> list[KVCache]:
        c = self.config
        dtype = self.transformer.wte.weight.dtype
        return [KVCache(batch, c.n_head, c.block_size, c.n_embd // c.n_head, dtype)
                for _ in range(c.n_layer)]

    @lg.no_grad()
    def generate(self, idx: lg.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None,
                 use_cache: bool = True, crop: bool = False) -> lg.Tensor:
        """Append ``max_new_tokens`` sampled tokens to ``idx`` (batch, time).

        ``temperature=0`` is greedy decoding. Past ``block_size`` tokens it raises unless
        ``crop=True``, which keeps only the last ``block_size`` tokens as context. With
        ``use_cache`` past keys/values are kept instead of recomputed: same tokens, faster.
        """
        block = self.config.block_size
        if idx.shape[1] + max_new_tokens > block and not crop:
            raise ValueError(
                f"GPT.generate: prompt length {idx.shape[1]} + max_new_tokens "
                f"{max_new_tokens} exceeds block_size {block}; pass crop=True to slide the "
                "context window")
        if idx.shape[1] == 0:
            raise ValueError("GPT.generate: the prompt must hold at least one token")
        was_training = self.training
        self.eval()
        caches = None
        new_ids: list[lg.Tensor] = []  # joined to idx once at the end (or when needed)
        for _ in range(max_new_tokens):
            if use_cache and caches is not None and caches[0].length < block:
                logits, _ = self(new_ids[-1], caches=caches)  # the last token, (B, 1)
            else:  # first step, no cache, or the window slid: (re)compute the context
                if new_ids:
                    idx, new_ids = lg.cat([idx] + new_ids, dim=1), []
                context = idx if idx.shape[1] <= block else idx[:, -block:]
                caches = self._new_caches(idx.shape[0]) if use_cache else None
                logits, _ = self(context, caches=caches)
            new_ids.append(sample_next(logits[:, -1, :], temperature, top_k, top_p))
        self.train(was_training)
        return lg.cat([idx] + new_ids, dim=1) if new_ids else idx

    # ------------------------------------------------------------------ weights
    @classmethod
    def from_pretrained(cls, path: str | Path) -> "GPT":
        """Load a Hugging Face GPT-2 checkpoint from a local directory holding
        ``config.json`` and ``model.safetensors``."""
        from lightgrad.models.hf import load_gpt2
        return load_gpt2(cls, Path(path))

    def save_pretrained(self, path: str | Path) -> None:
        """Write ``config.json`` (lightgrad's fields) and ``model.safetensors``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "config.json").write_text(json.dumps(self.config.to_dict(), indent=2))
        lg.io.save_file({k: v for k, v in self.state_dict().items()
                         if k != "lm_head.weight"}, path / "model.safetensors")

