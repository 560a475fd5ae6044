"""Pieces every training command shares: a progress bar, loss plots, learning-rate curves.

>>> warmup_cosine_lr(0, base_lr=1.0, min_lr=0.1, warmup=10, total=100)
0.1
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator


def warmup_cosine_lr(it: int, base_lr: float, min_lr: float, warmup: int, total: int) -> float:
    """Linear warm-up for ``warmup`` steps, then cosine decay to ``min_lr`` at ``total``."""
    if it < warmup:
        return base_lr * (it + 1) / (warmup + 1)
    if it >= total:
        return min_lr
    progress = (it - warmup) / max(1, total - warmup)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (base_lr - min_lr)


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--device`` option every training and sampling command shares."""
    parser.add_argument(
        "--device", default="cpu",
        help="where the model runs: cpu (default), cuda or cuda:N (an NVIDIA GPU with CuPy, "
             "or the CPU emulator with LIGHTGRAD_CUDA=emulate)")


def resolve_device(spec: str, cmd: str) -> Any:
    """The lightgrad device named by ``--device``; a ValueError that says what to install
    when it is not usable here."""
    import lightgrad as lg
    try:
        return lg.device(spec)
    except (RuntimeError, TypeError, ValueError) as err:
        raise ValueError(f"{cmd} --device {spec}: {err}") from None


def model_device(model: Any) -> Any:
    """The device of a module's parameters (the CPU for a module without any)."""
    import lightgrad as lg
    first = next(iter(model.parameters()), None)
    return lg.device("cpu") if first is None else first.device


@contextmanager
def default_device(dev: Any) -> Iterator[None]:
    """Make ``dev`` the device creation functions use when given none, for the duration
    (``with torch.device(dev):`` in PyTorch), so that tensors a model makes on the fly
    (a KV cache, a mask) land beside its weights."""
    import lightgrad as lg
    previous = lg.get_default_device()
    lg.set_default_device(dev)
    try:
        yield
    finally:
        lg.set_default_device(previous)


class Progress:
    """A progress bar: tqdm when installed, otherwise a line every few seconds."""

    def __init__(self, total: int, initial: int = 0, desc: str = "train", unit: str = "it"):
        self.total, self.n, self.desc = total, initial, desc
        self.start = time.perf_counter()
        self.last_print = 0.0
        self.postfix = ""
        try:
            from tqdm import tqdm
            self.bar: Any = tqdm(total=total, initial=initial, desc=desc, unit=unit,
                                 dynamic_ncols=True, file=sys.stderr)
        except ImportError:
            self.bar = None

    def update(self, **postfix: Any) -> None:
        """Advance by one step and show ``postfix`` values (loss, tok/s...)."""
        self.n += 1
        text = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                         for k, v in postfix.items())
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(1)
            return
        now = time.perf_counter()
        if now - self.last_print >= 5 or self.n == self.total:
            self.last_print = now
            rate = (self.n) / max(now - self.start, 1e-9)
            eta = (self.total - self.n) / max(rate, 1e-9)
            print(f"{self.desc} {self.n}/{self.total}  {text}  eta {eta:.0f}s", flush=True)

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line)
        else:
            print(line, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def save_curves(path: Path, curves: dict[str, Iterable[tuple[float, float]]], xlabel: str,
                ylabel: str, title: str) -> str:
    """Plot ``{label: [(x, y), ...]}`` to a PNG; return a line saying what happened."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ("plot skipped: matplotlib is not installed (pip install 'lightgrad[viz]' "
                f"to get {path})")
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for label, points in curves.items():
        points = list(points)
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return f"plot written to {path}"
