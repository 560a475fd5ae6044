"""Choosing the next token from a language model's logits: greedy, top-k, nucleus.

Shared by every generating model (``GPT.generate``, ``Mamba.generate``).
"""
from __future__ import annotations

import math

import lightgrad as lg


def sample_next(logits: lg.Tensor, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None) -> lg.Tensor:
    """One token id per row of ``logits`` (batch, vocab): greedy, top-k and/or nucleus.

    >>> import lightgrad as lg
    >>> sample_next(lg.tensor([[0.0, 5.0, 1.0]]), temperature=0)
    tensor([[1]])
    """
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    if temperature < 0:
        raise ValueError(f"sample_next: temperature must be >= 0, got {temperature}")
    logits = logits / temperature
    if top_k is not None:
        k = min(top_k, logits.shape[-1])
        kth = logits.topk(k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    probs = logits.softmax(dim=-1)
    if top_p is not None:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        before = sorted_probs.cumsum(dim=-1) - sorted_probs
        sorted_probs = sorted_probs.masked_fill(before >= top_p, 0.0)
        choice = sorted_probs.multinomial(1)
        return order.gather(-1, choice)
    return probs.multinomial(1)
