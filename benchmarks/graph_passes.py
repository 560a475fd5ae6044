"""What the graph passes do to real training steps: node counts before and after each pass,
and the memory plan's effect, for the GPT ``baby`` step and the MLP step under ``lg.jit``.

    python benchmarks/graph_passes.py

Memory is what the step's computed values need (inputs, parameters and optimizer state
not counted): ``peak`` is the most alive at once when each buffer is freed after its last
reader (what the executor does), ``arena`` the total of one buffer per slot (without a plan:
one per value). The peak allocated during one step, eager and replayed, is measured too
(``tracemalloc``), and the jitted steps are checked to compute what the eager ones do.
"""
from __future__ import annotations

import sys
import tracemalloc
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lightgrad as lg  # noqa: E402
from lightgrad.graph import memory_stats, plan_memory  # noqa: E402
from lightgrad.nn import functional as F  # noqa: E402
from steps import classifier_step, lm_train_step  # noqa: E402


def gpt_step() -> tuple[Callable, list]:
    from lightgrad.models.gpt import GPT, GPTConfig
    config = GPTConfig.preset("baby", vocab_size=65)
    model = GPT(config)
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.99))
    data = np.random.default_rng(0).integers(0, 65, (12, config.block_size + 1))
    step = lm_train_step(model, opt, lg.nn.utils.clip_grad_norm_)
    return step, [lg.tensor(data[:, :-1]), lg.tensor(data[:, 1:])]


def mlp_step() -> tuple[Callable, list]:
    rng = np.random.default_rng(0)
    model = lg.nn.Sequential(lg.nn.Linear(784, 256), lg.nn.ReLU(), lg.nn.Linear(256, 10))
    opt = lg.optim.SGD(model.parameters(), lr=0.1)
    x = lg.tensor(rng.standard_normal((128, 784), dtype=np.float32))
    step = classifier_step(model, opt, F, x, lg.tensor(rng.integers(0, 10, 128)))
    return (lambda: step()), []


def measured_peak(fn: Callable, args: list) -> int:
    """Bytes allocated at the peak of one call beyond what was allocated before it
    (NumPy reports its buffers to ``tracemalloc``)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    start = tracemalloc.get_traced_memory()[0]
    fn(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak - start


def report(name: str, make: Callable[[], tuple[Callable, list]], steps: int = 4) -> None:
    losses, peaks = {}, {}
    for jitted in (False, True):
        lg.manual_seed(0)
        step, args = make()
        fn = lg.jit(step) if jitted else step
        losses[jitted] = [fn(*args).item() for _ in range(steps)]
        peaks[jitted] = measured_peak(fn, args)
    graph = fn.graphs[0]
    print(name)
    print("  passes: " + ", ".join(f"{p} {a}->{b}" for p, a, b in graph.pass_log))
    print(f"  nodes: {graph.pass_log[0][1]} traced -> {len(graph)} after passes; ops now: "
          f"{len([n for n in graph if n.op == 'fused_elementwise'])} fused_elementwise")
    plan = plan_memory(graph)
    before, after = memory_stats(graph), memory_stats(graph, plan)
    mb = 1 / 2**20
    print(f"  memory: peak {before['peak_bytes'] * mb:.2f} MiB unplanned -> "
          f"{after['peak_bytes'] * mb:.2f} MiB planned ({len(plan.inplace)} in place); "
          f"arena {before['arena_bytes'] * mb:.2f} MiB in {before['buffers']} buffers -> "
          f"{after['arena_bytes'] * mb:.2f} MiB in {after['buffers']}")
    print(f"  measured (tracemalloc) peak of one step: eager {peaks[False] * mb:.2f} MiB, "
          f"jit replay {peaks[True] * mb:.2f} MiB")
    worst = max(abs(a - b) for a, b in zip(losses[False], losses[True]))
    print(f"  losses eager vs jit: max difference {worst:.3g}")


if __name__ == "__main__":
    report("GPT baby train step (batch 12, fwd + bwd + clip + AdamW)", gpt_step)
    report("MLP 784-256-10 train step (batch 128, SGD)", mlp_step)
