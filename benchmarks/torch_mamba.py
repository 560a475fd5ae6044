"""Mamba in PyTorch the mamba-minimal way, with lightgrad's parameter names: the peer of
``benchmarks/mamba_step.py``.

mamba-minimal (johnma2006/mamba-minimal) writes the selective scan as a Python loop over
the sequence ("not meant to be fast") on a (batch, length, d_inner) layout; everything
else is ordinary PyTorch layers. ``TorchMamba(config)`` takes a lightgrad ``MambaConfig``;
``copy_weights`` gives it a lightgrad model's weights (the names are the same).

>>> import lightgrad as lg
>>> from lightgrad.models.mamba import Mamba, MambaConfig
>>> config = MambaConfig(d_model=16, n_layer=1, vocab_size=11, d_state=4)
>>> model = TorchMamba(config); copy_weights(Mamba(config), model)
>>> tuple(model(torch.tensor([[1, 2, 3]]))[0].shape)
(1, 3, 11)
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


def selective_scan(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                   C: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
    """mamba-minimal's sequential scan: u, delta (b, l, d); A (d, n); B, C (b, l, n)."""
    b, length, _ = u.shape
    deltaA = torch.exp(torch.einsum("bld,dn->bldn", delta, A))
    deltaB_u = torch.einsum("bld,bln,bld->bldn", delta, B, u)
    x = torch.zeros(b, A.shape[0], A.shape[1], dtype=u.dtype)
    ys = []
    for i in range(length):
        x = deltaA[:, i] * x + deltaB_u[:, i]
        ys.append(torch.einsum("bdn,bn->bd", x, C[:, i, :]))
    return torch.stack(ys, dim=1) + u * D


class Mixer(nn.Module):
    def __init__(self, c: Any):
        super().__init__()
        self.c = c
        self.in_proj = nn.Linear(c.d_model, 2 * c.d_inner, bias=c.bias)
        self.conv1d = nn.Conv1d(c.d_inner, c.d_inner, c.d_conv, groups=c.d_inner,
                                padding=c.d_conv - 1, bias=c.conv_bias)
        self.x_proj = nn.Linear(c.d_inner, c.dt_rank + 2 * c.d_state, bias=False)
        self.dt_proj = nn.Linear(c.dt_rank, c.d_inner, bias=True)
        self.A_log = nn.Parameter(torch.zeros(c.d_inner, c.d_state))
        self.D = nn.Parameter(torch.ones(c.d_inner))
        self.out_proj = nn.Linear(c.d_inner, c.d_model, bias=c.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[1]
        x, res = self.in_proj(x).chunk(2, dim=-1)
        x = F.silu(self.conv1d(x.transpose(1, 2))[:, :, :length].transpose(1, 2))
        delta, B, C = self.x_proj(x).split([self.c.dt_rank, self.c.d_state, self.c.d_state],
                                           dim=-1)
        delta = F.softplus(self.dt_proj(delta))
        y = selective_scan(x, delta, -torch.exp(self.A_log), B, C, self.D)
        return self.out_proj(y * F.silu(res))


class Block(nn.Module):
    def __init__(self, c: Any):
        super().__init__()
        self.norm = nn.RMSNorm(c.d_model, eps=c.norm_epsilon)
        self.mixer = Mixer(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mixer(self.norm(x))


class TorchMamba(nn.Module):
    def __init__(self, config: Any):
        super().__init__()
        c = self.config = config
        self.backbone = nn.ModuleDict(dict(
            embeddings=nn.Embedding(c.padded_vocab_size, c.d_model),
            layers=nn.ModuleList([Block(c) for _ in range(c.n_layer)]),
            norm_f=nn.RMSNorm(c.d_model, eps=c.norm_epsilon),
        ))
        self.lm_head = nn.Linear(c.d_model, c.padded_vocab_size, bias=False)
        self.lm_head.weight = self.backbone.embeddings.weight

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> tuple:
        x = self.backbone.embeddings(idx)
        for layer in self.backbone.layers:
            x = layer(x)
        logits = self.lm_head(self.backbone.norm_f(x))
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten())

    def configure_optimizers(self, weight_decay: float, learning_rate: float,
                             betas: tuple[float, float]) -> torch.optim.AdamW:
        """The groups of lightgrad's ``Mamba.configure_optimizers``."""
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            ssm = name.endswith(("A_log", ".D"))
            (decay if p.ndim >= 2 and not ssm else no_decay).append(p)
        return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                  {"params": no_decay, "weight_decay": 0.0}],
                                 lr=learning_rate, betas=betas)


def copy_weights(lg_model: Any, model: TorchMamba) -> None:
    """Give ``model`` the weights of the lightgrad ``Mamba`` ``lg_model``."""
    state = {k: torch.from_numpy(v.detach().numpy().copy())
             for k, v in lg_model.state_dict().items()}
    model.load_state_dict(state)
