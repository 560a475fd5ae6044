"""``lightgrad demo``: train the scalar MLP and a tensor MLP on a built-in toy data set.

The data set is "two moons": two interleaved half circles in the plane, 2 classes, made
from a seed so that every machine gets the same points.

>>> from lightgrad.demo import make_moons
>>> x, y = make_moons(8, seed=0); x.shape, y.shape
((8, 2), (8,))
"""
from __future__ import annotations

import gc
import math
import time
from typing import Callable

import numpy as np


def make_moons(n: int = 100, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points on two interleaved half circles with Gaussian noise, labels 0/1."""
    rng = np.random.default_rng(seed)
    half = n // 2
    t_out = np.linspace(0, math.pi, half)
    t_in = np.linspace(0, math.pi, n - half)
    x = np.concatenate([np.stack([np.cos(t_out), np.sin(t_out)], 1),
                        np.stack([1 - np.cos(t_in), 0.5 - np.sin(t_in)], 1)])
    x += rng.normal(scale=noise, size=x.shape)
    y = np.concatenate([np.zeros(half, dtype=np.int64), np.ones(n - half, dtype=np.int64)])
    return x.astype(np.float32), y


def train_scalar_mlp(steps: int = 40, n: int = 60, log: Callable[[str], None] = print) -> float:
    """Train ``micro.MLP`` (scalar Values) with an SVM hinge loss; return the final loss.

    Each step builds a graph of ~100,000 Values. None of them sits in a reference cycle, so
    plain reference counting frees them; Python's cycle collector would only re-scan them
    every few hundred allocations (5x slower), so it is paused while training.
    """
    gc.disable()
    try:
        return _train_scalar_mlp(steps, n, log)
    finally:
        gc.enable()


def _train_scalar_mlp(steps: int, n: int, log: Callable[[str], None]) -> float:
    from .micro import MLP, Value
    x, y = make_moons(n, seed=1)
    signs = [1.0 if label else -1.0 for label in y]
    model = MLP(2, [16, 16, 1], seed=1)
    loss_value = math.nan
    for step in range(steps):
        scores = [model([Value(float(a)), Value(float(b))]) for a, b in x]
        losses = [(1 + -s * score).relu() for s, score in zip(signs, scores)]
        reg = sum((p * p for p in model.parameters()), Value(0.0)) * 1e-4
        loss = sum(losses, Value(0.0)) * (1.0 / len(losses)) + reg
        model.zero_grad()
        loss.backward()
        lr = 1.0 - 0.9 * step / steps
        for p in model.parameters():
            p.data -= lr * p.grad
        loss_value = loss.data
        if step % 10 == 0 or step == steps - 1:
            acc = np.mean([(sc.data > 0) == (s > 0) for s, sc in zip(signs, scores)])
            log(f"  scalar step {step:3d}  loss {loss.data:.4f}  accuracy {acc:.0%}")
    return loss_value


def train_tensor_mlp(steps: int = 300, n: int = 400, log: Callable[[str], None] = print
                     ) -> float:
    """Train a 2-64-64-2 tensor MLP with cross-entropy and SGD; return the final loss."""
    import lightgrad as lg
    lg.manual_seed(0)
    x_np, y_np = make_moons(n, seed=2)
    x, y = lg.from_numpy(x_np), lg.from_numpy(y_np)
    sizes = [2, 64, 64, 2]
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1 / math.sqrt(fan_in)
        params.append(lg.empty(fan_in, fan_out).uniform_(-bound, bound).requires_grad_())
        params.append(lg.empty(fan_out).uniform_(-bound, bound).requires_grad_())
    loss_value = math.nan
    for step in range(steps):
        h = x
        for i in range(0, len(params), 2):
            h = h @ params[i] + params[i + 1]
            if i + 2 < len(params):
                h = h.relu()
        loss = -h.log_softmax(dim=1).gather(1, y.unsqueeze(1)).mean()
        for p in params:
            p.grad = None
        loss.backward()
        with lg.no_grad():
            for p in params:
                p.sub_(p.grad * 0.5)
        loss_value = loss.item()
        if step % 50 == 0 or step == steps - 1:
            acc = (h.argmax(1) == y).float().mean().item()
            log(f"  tensor step {step:3d}  loss {loss_value:.4f}  accuracy {acc:.0%}")
    return loss_value


def run(log: Callable[[str], None] = print) -> None:
    """Both demos, with timings."""
    start = time.perf_counter()
    log("micrograd chapter: a scalar MLP (2-16-16-1) on two moons")
    train_scalar_mlp(log=log)
    log(f"  ({time.perf_counter() - start:.1f}s)")
    start = time.perf_counter()
    log("tensors: a 2-64-64-2 MLP on two moons, cross-entropy + SGD")
    train_tensor_mlp(log=log)
    log(f"  ({time.perf_counter() - start:.1f}s)")
