"""lg.jit vs eager lightgrad vs PyTorch eager: the GPT ``baby`` training step and the MLP
step, in one process.

    python benchmarks/jit.py [--steps 10] [--rounds 5] [--threads 2]

For each step it prints the time per step of eager lightgrad, of the same step compiled
with ``lg.jit`` (replayed graph) and of PyTorch eager, and the *per-op Python overhead*:
step time minus the time spent inside backend primitives (measured in a separate run with
every primitive of the CPU backend wrapped by a timer; CPU time of the main thread, so the
split holds on a busy machine; one BLAS thread by default). Targets: jit removes at least 80%
of that overhead, and the jitted GPT step is at or below PyTorch eager's time. The last line
of each step is its *floor*: the CPU time of the jitted step's matmuls (the same OpenBLAS
speed as PyTorch's on these shapes) as a fraction of PyTorch's whole step; no jitted step
can go below it without fewer or faster products.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lightgrad as lg  # noqa: E402
from steps import best_ms, cycling, lm_train_step  # noqa: E402
from lightgrad.backends import base, get_backend  # noqa: E402
from steps import classifier_step  # noqa: E402

BATCH, VOCAB = 12, 65


class PrimitiveTimer:
    """Wrap every vocabulary method of a backend object to add up the time spent in it."""

    def __init__(self, backend: object, clock: Callable[[], float] = time.perf_counter):
        self.backend = backend
        self.clock = clock
        self.total = 0.0
        self.calls = 0
        self.by_op: dict[str, float] = {}  # seconds per primitive name

    def __enter__(self) -> "PrimitiveTimer":
        self.saved = dict(vars(self.backend))
        for op in base.SHAPE_RULES:
            fn = getattr(self.backend, op, None)
            if fn is not None:
                setattr(self.backend, op, self._timed(fn, op))
        return self

    def __exit__(self, *exc: object) -> None:
        for op in base.SHAPE_RULES:
            self.backend.__dict__.pop(op, None)
        self.backend.__dict__.update(self.saved)

    def _timed(self, fn: Callable, name: str = "") -> Callable:
        clock, by_op = self.clock, self.by_op

        def timed(*args, **kwargs):
            start = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = clock() - start
                self.total += spent
                self.calls += 1
                by_op[name] = by_op.get(name, 0.0) + spent
        return timed


def cpu_split(make_step: Callable[[], Callable[[], object]], steps: int, rounds: int,
              warmup: int = 3) -> tuple[float, float, float, float]:
    """(CPU ms per step, CPU ms of it inside primitives, primitive calls per step, CPU ms
    of it inside ``matmul``) for a
    step built while the timers are on (so a jitted step's executor calls the timed
    methods). CPU time of this thread (``time.thread_time``) rather than wall time: with
    one BLAS thread it is what the step costs, however busy the machine is. The best
    (smallest) round counts; the timer's own cost (two clock reads a call) lands in the
    overhead, the same for eager and jit per primitive call."""
    with PrimitiveTimer(get_backend("cpu"), time.thread_time) as timer:
        step = make_step()
        for _ in range(warmup):
            step()
        best = (float("inf"), 0.0, 0.0, 0.0)
        for _ in range(rounds):
            timer.total, timer.calls = 0.0, 0
            timer.by_op.clear()
            start = time.thread_time()
            for _ in range(steps):
                step()
            total = time.thread_time() - start
            if total < best[0]:
                best = (total, timer.total, timer.calls, timer.by_op.get("matmul", 0.0))
        return (best[0] / steps * 1e3, best[1] / steps * 1e3, best[2] / steps,
                best[3] / steps * 1e3)


def timer_cost_us(n: int = 20000) -> float:
    """CPU µs that one timed primitive call adds outside the measured span (the wrapper and
    a clock read): subtracted from the overhead of eager and jit alike."""
    class Noop:
        def add(self, *args: object) -> None:
            return None
    noop = Noop()
    with PrimitiveTimer(noop, time.thread_time) as timer:
        start = time.thread_time()
        for _ in range(n):
            noop.add()
        total = time.thread_time() - start
    return (total - timer.total) / n * 1e6


def cpu_ms(step: Callable[[], object], steps: int, rounds: int) -> float:
    """Best-of-rounds CPU ms per step of this thread."""
    best = float("inf")
    for _ in range(rounds):
        start = time.thread_time()
        for _ in range(steps):
            step()
        best = min(best, time.thread_time() - start)
    return best / steps * 1e3


def report(name: str, makers: dict[str, Callable], steps: int, rounds: int) -> dict:
    fns = {}
    for label, make in makers.items():
        fns[label] = make()
        for _ in range(3):  # warm up: the jitted step traces until it replays
            fns[label]()
    ms = best_ms(fns, steps, rounds)
    cpu_total = {label: cpu_ms(fn, steps, rounds) for label, fn in fns.items()}
    cpu = {label: cpu_split(makers[label], steps, rounds) for label in ("eager", "jit")}
    cost = timer_cost_us() / 1e3
    over = {label: c[0] - c[1] - c[2] * cost for label, c in cpu.items()}
    matmul = cpu["jit"][3]
    removed = 1 - over["jit"] / over["eager"]
    print(f"{name}")
    print(f"  wall ms/step   eager {ms['eager']:8.2f}   jit {ms['jit']:8.2f}   pytorch "
          f"{ms['pytorch']:8.2f}   jit/eager {ms['jit'] / ms['eager']:.2f}x   jit/pytorch "
          f"{ms['jit'] / ms['pytorch']:.2f}x   eager/pytorch "
          f"{ms['eager'] / ms['pytorch']:.2f}x")
    print(f"  CPU ms/step    eager {cpu_total['eager']:8.2f}   jit {cpu_total['jit']:8.2f}   "
          f"pytorch {cpu_total['pytorch']:8.2f}   jit/pytorch "
          f"{cpu_total['jit'] / cpu_total['pytorch']:.2f}x   eager/pytorch "
          f"{cpu_total['eager'] / cpu_total['pytorch']:.2f}x")
    for label in ("eager", "jit"):
        step, prim, calls, _ = cpu[label]
        print(f"  {label:5} timed step {step:8.2f} CPU ms = primitives {prim:8.2f} "
              f"({calls:.0f} calls) + timers {calls * cost:5.2f} + Python overhead "
              f"{over[label]:7.2f}")
    print(f"  jit removes {removed * 100:.0f}% of the per-op Python overhead (target >= 80%)")
    print(f"  floor: the jitted step's matmuls alone take {matmul:.2f} CPU ms = "
          f"{matmul / cpu_total['pytorch']:.2f}x PyTorch's whole step (same BLAS speed on "
          f"both sides); everything else in the jitted step: {cpu_total['jit'] - matmul:.2f} "
          "CPU ms")
    return {"ms": ms, "cpu": cpu, "cpu_total": cpu_total, "removed": removed}


def gpt_makers(threads: int) -> dict[str, Callable]:
    import torch

    from lightgrad.models.gpt import GPT, GPTConfig
    from torch_gpt import TorchGPT, copy_weights
    config = GPTConfig.preset("baby", vocab_size=VOCAB)
    rng = np.random.default_rng(0)
    data = rng.integers(0, VOCAB, (8, BATCH, config.block_size + 1))

    def lg_step(jitted: bool) -> Callable[[], object]:
        lg.manual_seed(0)
        model = GPT(config)
        opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.99))
        batches = [(lg.tensor(b[:, :-1]), lg.tensor(b[:, 1:])) for b in data]
        step = lm_train_step(model, opt, lg.nn.utils.clip_grad_norm_)
        return cycling(lg.jit(step) if jitted else step, batches)

    def torch_step() -> Callable[[], object]:
        lg.manual_seed(0)
        tmodel = TorchGPT(config)
        copy_weights(GPT(config), tmodel)
        topt = tmodel.configure_optimizers(0.1, 1e-3, (0.9, 0.99))
        batches = [(torch.tensor(b[:, :-1]), torch.tensor(b[:, 1:])) for b in data]
        return cycling(lm_train_step(tmodel, topt, torch.nn.utils.clip_grad_norm_), batches)

    return {"eager": lambda: lg_step(False), "jit": lambda: lg_step(True),
            "pytorch": torch_step}


def mlp_makers() -> dict[str, Callable]:
    import torch

    from lightgrad.nn import functional as F
    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, 784), dtype=np.float32)
    y = rng.integers(0, 10, 128)

    def lg_step(jitted: bool) -> Callable[[], object]:
        lg.manual_seed(0)
        model = lg.nn.Sequential(lg.nn.Linear(784, 256), lg.nn.ReLU(), lg.nn.Linear(256, 10))
        opt = lg.optim.SGD(model.parameters(), lr=0.1)
        step = classifier_step(model, opt, F, lg.tensor(x), lg.tensor(y))
        return lg.jit(step) if jitted else step

    def torch_step() -> Callable[[], object]:
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(),
                                    torch.nn.Linear(256, 10))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        return classifier_step(model, opt, torch.nn.functional, torch.tensor(x),
                               torch.tensor(y))

    return {"eager": lambda: lg_step(False), "jit": lambda: lg_step(True),
            "pytorch": torch_step}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for both (default 1: CPU times are then exact)")
    args = parser.parse_args(argv)
    from torch_gpt import set_threads
    print(f"threads: {set_threads(args.threads)}")
    report("GPT baby train step (batch 12, fwd + bwd + clip + AdamW)",
           gpt_makers(args.threads), args.steps, args.rounds)
    report("MLP 784-256-10 train step (batch 128, SGD)", mlp_makers(), args.steps * 5,
           args.rounds)


if __name__ == "__main__":
    main()
