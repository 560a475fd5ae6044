"""One classifier training step, written once for both frameworks.

lightgrad keeps PyTorch's names, so the same function serves ``lightgrad.nn.functional``
and ``torch.nn.functional``: that is the point of the API, and it keeps the benchmarks
honest (both sides run literally the same code).
"""
from __future__ import annotations

from typing import Any, Callable


def classifier_step(model: Any, opt: Any, functional: Any, x: Any, y: Any
                    ) -> Callable[[], Any]:
    """A closure doing cross-entropy forward, backward and an optimizer step."""
    def step() -> Any:
        loss = functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    return step
