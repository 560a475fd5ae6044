"""Mamba: a language model built on the selective state-space scan.

Token embedding, ``n_layer`` residual blocks (RMSNorm, then a mixer: input projection,
causal depthwise convolution, SiLU, the input-dependent step size ``delta`` and matrices
``B``, ``C``, the selective scan ``F.selective_scan``, a SiLU gate and an output
projection), a final RMSNorm and a head tied to the embedding. Parameter names follow
Hugging Face's ``MambaForCausalLM`` (``backbone.layers.0.mixer.in_proj.weight``...), so
checkpoints map one to one (``Mamba.from_pretrained``). Generation keeps, per layer, the
last ``d_conv - 1`` convolution inputs and the (batch, d_inner, d_state) SSM state, so each
new token costs the same whatever the length so far.

>>> import lightgrad as lg
>>> from lightgrad.models.mamba import Mamba, MambaConfig
>>> lg.manual_seed(0)
>>> model = Mamba(MambaConfig(d_model=16, n_layer=2, vocab_size=11, d_state=4))
>>> logits, loss = model(lg.tensor([[1, 2, 3]]), targets=lg.tensor([[2, 3, 4]]))
>>> logits.shape, model.generate(lg.tensor([[1]]), 4).shape
((1, 3, 11), (1, 5))
"""
from __future__ import annotations

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
    # about the parameter count of GPT's preset of the same name (baby: 0.82M vs 0.80M,
    # mini: 2.77M vs 2.68M, without embeddings) at the same width: a Mamba layer holds
    # about 6 d_model^2 weights, a transformer block 12, so it takes about twice the layers
    "baby": dict(d_model=128, n_layer=7),
    "mini": dict(d_model=192, n_layer=11),
    # the published state-spaces/mamba-* shapes (GPT-NeoX tokenizer, vocab padded to 50280)
    "130m": dict(d_model=768, n_layer=24, vocab_size=50277, pad_vocab_size_multiple=8),
    "370m": dict(d_model=1024, n_layer=48, vocab_size=50277, pad_vocab_size_multiple=8),
    "790m": dict(d_model=1536, n_layer=48, vocab_size=50277, pad_vocab_size_multiple=8),
    "1.4b": dict(d_model=2048, n_layer=48, vocab_size=50277, pad_vocab_size_multiple=8),
    "2.8b": dict(d_model=2560, n_layer=64, vocab_size=50277, pad_vocab_size_multiple=8),
}


@dataclass
class MambaConfig(ModelConfig):
    """Model hyper-parameters (mamba_ssm's names); ``MambaConfig.preset("130m")`` for the
    published shapes. ``dt_rank="auto"`` becomes ``ceil(d_model / 16)``.

    >>> c = MambaConfig.preset("130m")
    >>> c.d_inner, c.dt_rank, c.padded_vocab_size
    (1536, 48, 50280)
    """

    PRESETS = PRESETS  # the module's table, for ModelConfig.preset

    d_model: int = 128
    n_layer: int = 8
    vocab_size: int = 65
    d_state: int = 16
    expand: int = 2
    d_conv: int = 4
    dt_rank: int | str = "auto"
    conv_bias: bool = True
    bias: bool = False
    pad_vocab_size_multiple: int = 1
    norm_epsilon: float = 1e-5
    dt_min: float = 0.001
    dt_max: float = 0.1
    dt_init: str = "random"  # or "constant": dt_proj.weight = dt_rank ** -0.5 * dt_scale
    dt_scale: float = 1.0
    dt_init_floor: float = 1e-4
    rescale_prenorm_residual: bool = True

    def __post_init__(self) -> None:
        if self.dt_rank == "auto":
            self.dt_rank = math.ceil(self.d_model / 16)
        for name in ("d_model", "n_layer", "vocab_size", "d_state", "expand", "d_conv",
                     "dt_rank", "pad_vocab_size_multiple"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"MambaConfig: {name} must be a positive int, got {value!r}")
        if not 0 < self.dt_min <= self.dt_max:
            raise ValueError(f"MambaConfig: need 0 < dt_min <= dt_max, got dt_min="
                             f"{self.dt_min}, dt_max={self.dt_max}")
        if self.dt_init not in ("random", "constant"):
            raise ValueError(f"MambaConfig: dt_init must be 'random' or 'constant', got "
                             f"{self.dt_init!r}")

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model

    @property
    def padded_vocab_size(self) -> int:
        """``vocab_size`` rounded up to ``pad_vocab_size_multiple`` (the embedding's rows)."""
        m = self.pad_vocab_size_multiple
        return -(-self.vocab_size // m) * m


class MambaState:
    """One layer's recurrent state for generation: ``conv`` holds the last ``d_conv - 1``
    inputs of the convolution (batch, d_inner, d_conv - 1), ``ssm`` the state
    (batch, d_inner, d_state)."""

    def __init__(self) -> None:
        self.conv: lg.Tensor | None = None
        self.ssm: lg.Tensor | None = None


class MambaMixer(nn.Module):
    """The selective SSM layer (mamba_ssm's ``Mamba``) on (batch, length, d_model)."""

    def __init__(self, config: MambaConfig):
        super().__init__()
        c = config
        d_inner, self.d_state, self.dt_rank = c.d_inner, c.d_state, c.dt_rank
        self.in_proj = nn.Linear(c.d_model, 2 * d_inner, bias=c.bias)
        self.conv1d = nn.Conv1d(d_inner, d_inner, c.d_conv, groups=d_inner,
                                padding=c.d_conv - 1, bias=c.conv_bias)
        self.x_proj = nn.Linear(d_inner, c.dt_rank + 2 * c.d_state, bias=False)
        self.dt_proj = nn.Linear(c.dt_rank, d_inner, bias=True)
        self.A_log = nn.Parameter(lg.zeros(d_inner, c.d_state))
        self.D = nn.Parameter(lg.ones(d_inner))
        self.out_proj = nn.Linear(d_inner, c.d_model, bias=c.bias)

    def forward(self, x: lg.Tensor, state: MambaState | None = None) -> lg.Tensor:
        """(batch, length, d_model) -> same; with ``state``, fill it for generation."""
        L = x.shape[1]
        u, z = self.in_proj(x).transpose(1, 2).chunk(2, dim=1)  # (B, d_inner, L) each
        if state is not None:  # the convolution's last d_conv - 1 inputs, zeros before
            k = self.conv1d.kernel_size[0] - 1
            state.conv = F.pad(u, (max(k - L, 0), 0))[:, :, -k:] if k else u[:, :, :0]
        u = F.silu(self.conv1d(u)[:, :, :L])
        dt, B, C = self.x_proj(u.transpose(1, 2)).split(
            [self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.linear(dt, self.dt_proj.weight).transpose(1, 2)  # bias added in the scan
        y = F.selective_scan(u, delta, -self.A_log.exp(), B.transpose(1, 2),
                             C.transpose(1, 2), self.D, z, delta_bias=self.dt_proj.bias,
                             delta_softplus=True, return_last_state=state is not None)
        if state is not None:
            y, state.ssm = y
        return self.out_proj(y.transpose(1, 2))

    def step(self, x: lg.Tensor, state: MambaState) -> lg.Tensor:
        """One position (batch, d_model) -> (batch, d_model), advancing ``state``:
        the convolution window slides by one and h <- exp(delta A) h + delta B u."""
        u, z = self.in_proj(x).chunk(2, dim=-1)  # (B, d_inner)
        window = lg.cat([state.conv, u.unsqueeze(-1)], dim=-1)  # (B, d_inner, d_conv)
        state.conv = window[:, :, 1:]
        u = (window * self.conv1d.weight[:, 0, :]).sum(-1)
        if self.conv1d.bias is not None:
            u = u + self.conv1d.bias
        u = F.silu(u)
        dt, B, C = self.x_proj(u).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.softplus(self.dt_proj(dt)).unsqueeze(-1)  # (B, d_inner, 1)
        decay = (delta * -self.A_log.exp()).exp()  # (B, d_inner, d_state)
        state.ssm = decay * state.ssm + (delta * u.unsqueeze(-1)) * B.unsqueeze(1)
        y = (state.ssm @ C.unsqueeze(-1)).squeeze(-1) + self.D * u
        return self.out_proj(y * F.silu(z))


class MambaBlock(nn.Module):
    """x + mixer(RMSNorm(x))."""

    def __init__(self, config: MambaConfig):
        super().__init__()
        self.norm = nn.RMSNorm(config.d_model, eps=config.norm_epsilon)
        self.mixer = MambaMixer(config)

    def forward(self, x: lg.Tensor, state: MambaState | None = None) -> lg.Tensor:
        return x + self.mixer(self.norm(x), state)

    def step(self, x: lg.Tensor, state: MambaState) -> lg.Tensor:
        return x + self.mixer.step(self.norm(x), state)


class Mamba(nn.Module):
    """The Mamba language model; ``model(idx, targets)`` returns ``(logits, loss)`` like
    ``GPT`` (logits over ``config.padded_vocab_size``)."""

    def __init__(self, config: MambaConfig):
        super().__init__()
        self.config = config
        self.backbone = nn.ModuleDict(dict(
            embeddings=nn.Embedding(config.padded_vocab_size, config.d_model),
            layers=nn.ModuleList([MambaBlock(config) for _ in range(config.n_layer)]),
            norm_f=nn.RMSNorm(config.d_model, eps=config.norm_epsilon),
        ))
        self.lm_head = nn.Linear(config.d_model, config.padded_vocab_size, bias=False)
        self.lm_head.weight = self.backbone.embeddings.weight  # weight tying
        self._init_weights()

    @lg.no_grad()
    def _init_weights(self) -> None:
        """mamba_ssm's initialisation: Linear layers keep PyTorch's default, biases zero,
        embedding N(0, 0.02); per mixer, dt_proj's bias is softplus^-1 of a log-uniform
        dt in [dt_min, dt_max], A_log = log(1..d_state), D = 1; out_proj divided by
        sqrt(n_layer) (one residual per layer)."""
        c = self.config
        nn.init.normal_(self.backbone.embeddings.weight, std=0.02)
        for layer in self.backbone.layers:
            m = layer.mixer
            for linear in (m.in_proj, m.x_proj, m.out_proj):
                if linear.bias is not None:
                    nn.init.zeros_(linear.bias)
            std = c.dt_rank ** -0.5 * c.dt_scale
            if c.dt_init == "constant":
                nn.init.constant_(m.dt_proj.weight, std)
            else:
                nn.init.uniform_(m.dt_proj.weight, -std, std)
            lo, hi = math.log(c.dt_min), math.log(c.dt_max)
            dt = (lg.rand(c.d_inner) * (hi - lo) + lo).exp().clamp(min=c.dt_init_floor)
            m.dt_proj.bias.copy_(dt + (1 - (-dt).exp()).log())  # softplus^-1(dt)
            a = lg.arange(1, c.d_state + 1, dtype=lg.float32).log()
            m.A_log.copy_(a.unsqueeze(0).expand(c.d_inner, c.d_state))
            nn.init.ones_(m.D)
            if c.rescale_prenorm_residual:
                m.out_proj.weight.div_(math.sqrt(c.n_layer))

    def num_parameters(self, non_embedding: bool = True) -> int:
        """Parameter count (the tied embedding counted once); by default without the
        embedding, as ``GPT.num_parameters`` leaves out its position table."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.backbone.embeddings.weight.numel() if non_embedding else n

    def forward(self, idx: lg.Tensor, targets: lg.Tensor | None = None,
                states: list[MambaState] | None = None) -> tuple[lg.Tensor, lg.Tensor | None]:
        if idx.ndim != 2 or idx.dtype.is_floating_point:
            raise ValueError(f"Mamba: expected integer token ids of shape (batch, time), got "
                             f"{idx.dtype.name} of shape {idx.shape}")
        x = self.backbone.embeddings(idx)
        for i, layer in enumerate(self.backbone.layers):
            x = layer(x, states[i] if states is not None else None)
        logits = self.lm_head(self.backbone.norm_f(x))
        if targets is None:
            return logits, None
        B, T = idx.shape
        loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T),
                               ignore_index=-1)
        return logits, loss

    def step(self, ids: lg.Tensor, states: list[MambaState]) -> lg.Tensor:
        """Logits (batch, vocab) for one new token per row (``ids`` of shape (batch,)),
        advancing every layer's state by one position."""
        x = self.backbone.embeddings(ids)
        for layer, state in zip(self.backbone.layers, states):
            x = layer.step(x, state)
        return self.lm_head(self.backbone.norm_f(x))

    def configure_optimizers(self, weight_decay: float = 0.1, learning_rate: float = 1e-3,
                             betas: tuple[float, float] = (0.9, 0.99)) -> Any:
        """AdamW with weight decay on the weight matrices only: as in mamba_ssm, none on
        ``A_log`` and ``D`` (the SSM's own parameters), biases and norms."""
        from lightgrad import optim
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            ssm = name.endswith(("A_log", ".D"))
            (decay if p.ndim >= 2 and not ssm else no_decay).append(p)
        groups = [{"params": decay, "weight_decay": weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        return optim.AdamW(groups, lr=learning_rate, betas=betas)

    @lg.no_grad()
    def generate(self, idx: lg.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None,
                 use_cache: bool = True, crop: bool = False) -> lg.Tensor:
        """Append ``max_new_tokens`` sampled tokens to ``idx`` (batch, time), as
        ``GPT.generate`` (``temperature=0`` is greedy). The prompt is read once; then each
        token is one ``step`` on the carried states. ``use_cache=False`` recomputes the
        whole sequence for every token instead (same tokens, slower). A Mamba has no
        context limit, so ``crop`` changes nothing (it is accepted for GPT's callers).
        """
        if idx.shape[1] == 0:
            raise ValueError("Mamba.generate: the prompt must hold at least one token")
        was_training = self.training
        self.eval()
        states = [MambaState() for _ in self.backbone.layers] if use_cache else None
        logits = self(idx, states=states)[0][:, -1, :]
        for i in range(max_new_tokens):
            next_id = sample_next(logits, temperature, top_k, top_p)
            idx = lg.cat([idx, next_id], dim=1)
            if i + 1 == max_new_tokens:
                break
            logits = (self.step(next_id[:, 0], states) if states is not None
                      else self(idx)[0][:, -1, :])
        self.train(was_training)
        return idx

    # ------------------------------------------------------------------ weights
    @classmethod
    def from_pretrained(cls, path: str | Path) -> "Mamba":
        """Load a local Hugging Face directory: ``config.json`` (transformers' or
        state-spaces' names) and ``model.safetensors`` (or a sharded index)."""
        from lightgrad.models.mamba_weights import load_mamba
        return load_mamba(cls, Path(path))

    def save_pretrained(self, path: str | Path) -> None:
        """Write ``config.json`` and ``model.safetensors`` in transformers' layout."""
        from lightgrad.models.mamba_weights import save_mamba
        save_mamba(self, Path(path))
