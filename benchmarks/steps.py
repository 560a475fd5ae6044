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


def lm_batches(vocab: int, n: int, batch: int, length: int, torch: Any) -> tuple[list, list]:
    """``n`` random (inputs, targets) batches of token ids, as lightgrad and as torch
    tensors (the same numbers)."""
    import numpy as np

    import lightgrad as lg
    data = np.random.default_rng(0).integers(0, vocab, (n, batch, length + 1))
    return ([(lg.tensor(b[:, :-1]), lg.tensor(b[:, 1:])) for b in data],
            [(torch.tensor(b[:, :-1]), torch.tensor(b[:, 1:])) for b in data])


def lm_train_step(model: Any, opt: Any, clip: Callable[..., Any],
                  forward: Any = None) -> Callable[[Any, Any], Any]:
    """``step(x, y)``: one language-model training step (forward through ``forward``,
    default the model itself, e.g. a DistributedDataParallel wrapper; backward, gradient
    clipping at 1.0, optimizer step), returning the loss tensor (a function ``lg.jit`` can
    trace)."""
    forward = model if forward is None else forward

    def step(x: Any, y: Any) -> Any:
        _, loss = forward(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        clip(model.parameters(), 1.0)
        opt.step()
        return loss
    return step


def cycling(step: Callable[[Any, Any], Any], batches: list) -> Callable[[], Any]:
    """A closure calling ``step(x, y)`` on the next of ``batches`` each time."""
    counter = [0]

    def run() -> Any:
        x, y = batches[counter[0] % len(batches)]
        counter[0] += 1
        return step(x, y)
    return run


def lm_step(model: Any, opt: Any, batches: list, clip: Callable[..., Any],
            forward: Any = None) -> Callable[[], float]:
    """A closure doing :func:`lm_train_step` on the next of ``batches``, returning the
    loss as a float."""
    run = cycling(lm_train_step(model, opt, clip, forward), batches)
    return lambda: run().item()


def best_ms(fns: dict[str, Callable[[], object]], steps: int, rounds: int,
            sync: Callable[[], object] = lambda: None) -> dict[str, float]:
    """Best-of-``rounds`` mean ms per call of each function, the functions interleaved."""
    import time
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            sync()
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / steps * 1e3)
    return best
