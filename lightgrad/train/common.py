"""Pieces every training command shares: a progress bar, loss plots, learning-rate curves.

>>> round(warmup_cosine_lr(0, base_lr=1.0, min_lr=0.1, warmup=10, total=100), 4)
0.0909
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator


def warmup_cosine_lr(it: int, base_lr: float, min_lr: float, warmup: int, total: int) -> float:
    """Linear warm-up for ``warmup`` steps, then cosine decay to ``min_lr`` at ``total``."""
    if it < warmup:
        return base_lr * (it + 1) / (warmup + 1)
    if it >= total:
        return min_lr
    progress = (it - warmup) / max(1, total - warmup)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (base_lr - min_lr)


# ----------------------------------------------------------------------------- options
# argparse ``type=`` callables: a bad value is "lightgrad ...: error: argument --x: ..." and
# exit code 2 before anything runs, as argparse does for a malformed number.


def _number(kind: Callable[[str], Any], text: str) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid {kind.__name__} value: {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type: ``kind(text)`` that must be > 0.

    >>> positive(int)("3")
    3
    """
    def parse(text: str) -> Any:
        value = _number(kind, text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    parse.__name__ = kind.__name__
    return parse


def non_negative(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type: ``kind(text)`` that must be >= 0.

    >>> non_negative(float)("0")
    0.0
    """
    def parse(text: str) -> Any:
        value = _number(kind, text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
        return value
    parse.__name__ = kind.__name__
    return parse


def probability(text: str) -> float:
    """An argparse type for a dropout probability: a float in [0, 1).

    >>> probability("0.2")
    0.2
    """
    value = _number(float, text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def top_p_mass(text: str) -> float:
    """An argparse type for nucleus sampling's probability mass: a float in (0, 1]."""
    value = _number(float, text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def check_out_dir(path: Any, cmd: str) -> None:
    """A ValueError when the run directory ``--out`` names an existing file."""
    if path.exists() and not path.is_dir():
        raise ValueError(f"{cmd}: --out {path} is a file; expected a run directory")


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
    """A progress bar: tqdm when installed, otherwise a line every few seconds.

    The ETA follows the recent speed: an exponential moving average of the step time
    (weight ``smoothing`` for the newest step; tqdm gets the same smoothing), so a run
    that slows down or speeds up (an evaluation, a warm cache) is estimated from its
    current pace, not from the average since the start.
    """

    def __init__(self, total: int, initial: int = 0, desc: str = "train", unit: str = "it",
                 smoothing: float = 0.1):
        self.total, self.n, self.desc = total, initial, desc
        self.smoothing = smoothing
        self.start = self.last_step = time.perf_counter()
        self.step_time: float | None = None  # EMA of seconds per step
        self.last_print = 0.0
        self.postfix = ""
        try:
            from tqdm import tqdm
            self.bar: Any = tqdm(total=total, initial=initial, desc=desc, unit=unit,
                                 dynamic_ncols=True, file=sys.stderr, smoothing=smoothing)
        except ImportError:
            self.bar = None

    def tick(self, now: float | None = None) -> None:
        """Count one step finished at ``now`` into the moving average of the step time."""
        now = time.perf_counter() if now is None else now
        dt, self.last_step = now - self.last_step, now
        self.n += 1
        if self.step_time is None:
            self.step_time = dt
        else:
            self.step_time += self.smoothing * (dt - self.step_time)

    def eta(self) -> float:
        """Seconds left at the recent speed (0 before the first step is timed)."""
        return max(self.total - self.n, 0) * (self.step_time or 0.0)

    def update(self, **postfix: Any) -> None:
        """Advance by one step and show ``postfix`` values (loss, tok/s...)."""
        self.tick()
        text = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                         for k, v in postfix.items())
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(1)
            return
        now = self.last_step
        if now - self.last_print >= 5 or self.n == self.total:
            self.last_print = now
            print(f"{self.desc} {self.n}/{self.total}  {text}  eta {self.eta():.0f}s",
                  flush=True)

    def write(self, line: str) -> None:
        """Print ``line`` above the bar."""
        if self.bar is not None:
            self.bar.write(line)
        else:
            print(line, flush=True)

    def close(self) -> None:
        """Finish the bar."""
        if self.bar is not None:
            self.bar.close()


def save_curves(path: Path, curves: dict[str, Iterable[tuple[float, float]]], xlabel: str,
                ylabel: str, title: str,
                noisy: dict[str, Iterable[tuple[float, float]]] | None = None,
                twin: dict[str, Iterable[tuple[float, float]]] | None = None,
                twin_label: str = "") -> str:
    """Plot ``{label: [(x, y), ...]}`` to a PNG; return a line saying what happened.

    ``noisy`` curves (per-step losses) are drawn thin and light, behind ``curves`` (the
    evaluations); ``twin`` curves (accuracy) go on their own right-hand axis labelled
    ``twin_label``. Labels should carry units, e.g. "cross-entropy loss (nats/token)".
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ("plot skipped: matplotlib is not installed (pip install 'lightgrad[viz]' "
                f"to get {path})")
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    handles = []
    for label, points in (noisy or {}).items():
        points = list(points)
        if points:
            xs, ys = zip(*points)
            handles += ax.plot(xs, ys, label=label, linewidth=0.8, alpha=0.3, zorder=1)
    for label, points in curves.items():
        points = list(points)
        if points:
            xs, ys = zip(*points)
            handles += ax.plot(xs, ys, label=label, linewidth=2, marker="o", markersize=3,
                               zorder=3)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    twin_points = {k: list(v) for k, v in (twin or {}).items()}
    if any(twin_points.values()):
        right = ax.twinx()
        for label, points in twin_points.items():
            if points:
                xs, ys = zip(*points)
                handles += right.plot(xs, ys, label=label, color="tab:red", linewidth=2,
                                      linestyle="--", marker="s", markersize=3, zorder=3)
        right.set_ylabel(twin_label)
    if handles:
        ax.legend(handles=handles, labels=[h.get_label() for h in handles])
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return f"plot written to {path}"
