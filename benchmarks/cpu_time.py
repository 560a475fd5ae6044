"""The CPU benchmarks in CPU time, one thread each: figures that hold on a shared machine.

    python benchmarks/cpu_time.py [gpt mlp cnn conv sample overhead]

Wall-clock times on a machine other jobs share swing by several times from run to run;
the time a process actually ran on a core (``time.process_time``) does not count the
waiting. With one thread in PyTorch and in NumPy's BLAS, each framework's CPU time is its
work. Runs the same work as ``gpt_step.py`` (GPT ``baby`` training step), ``mlp_step.py``,
``cnn_step.py`` (LeNet step), ``conv.py`` (ResNet 64->64 3x3 on 56x56, forward + backward),
``sample.py`` (greedy tokens with the KV cache, context 256) and ``op_overhead.py`` (the
geometric mean over its ops), lightgrad and PyTorch in one process, best of 5 rounds, and
prints each pair and the ratio.
"""
from __future__ import annotations

import os
import sys
import time
import timeit
from functools import partial
from pathlib import Path
from typing import Callable

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads OpenBLAS
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import lightgrad as lg  # noqa: E402
from steps import classifier_step, lm_train_step  # noqa: E402

clock = time.process_time


def best_ms(fns: list[Callable[[], object]], rounds: int = 5, n: int = 5) -> list[float]:
    """Best CPU ms per call of each function over ``rounds`` alternating rounds."""
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            start = clock()
            for _ in range(n):
                fn()
            best[i] = min(best[i], (clock() - start) / n * 1e3)
    return best


def gpt_steps(torch=None) -> dict[str, Callable[[], object]]:
    """The GPT ``baby`` training step of each framework (PyTorch's only when ``torch`` is
    given: a process measuring lightgrad's memory alone never imports it)."""
    from lightgrad.models.gpt import GPT, GPTConfig
    lg.manual_seed(0)
    config = GPTConfig.preset("baby", vocab_size=65)
    model = GPT(config)
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.99))
    data = np.random.default_rng(0).integers(0, 65, (12, config.block_size + 1))
    x, y = lg.tensor(data[:, :-1]), lg.tensor(data[:, 1:])
    steps = {"lightgrad": partial(lm_train_step(model, opt, lg.nn.utils.clip_grad_norm_),
                                  x, y)}
    if torch is None:
        return steps
    from torch_gpt import TorchGPT, copy_weights
    tmodel = TorchGPT(config)
    copy_weights(model, tmodel)
    topt = tmodel.configure_optimizers(0.1, 1e-3, (0.9, 0.99))
    tx, ty = torch.tensor(data[:, :-1]), torch.tensor(data[:, 1:])
    torch_step = lm_train_step(tmodel, topt, torch.nn.utils.clip_grad_norm_)
    return {**steps, "pytorch": partial(torch_step, tx, ty)}


def gpt(torch) -> list[float]:
    return best_ms(list(gpt_steps(torch).values()))


def mlp_steps(torch=None) -> dict[str, Callable[[], object]]:
    """The MLP training step of each framework (PyTorch's only when ``torch`` is given)."""
    import mlp_step

    from lightgrad import nn, optim
    from lightgrad.nn import functional as F
    rng = np.random.default_rng(0)
    x = rng.standard_normal((mlp_step.BATCH, mlp_step.IN), dtype=np.float32)
    y = rng.integers(0, mlp_step.OUT, mlp_step.BATCH)
    sizes = (mlp_step.IN, mlp_step.HIDDEN, mlp_step.OUT)
    model = nn.Sequential(nn.Linear(*sizes[:2]), nn.ReLU(), nn.Linear(*sizes[1:]))
    steps = {"lightgrad": classifier_step(model, optim.SGD(model.parameters(), lr=0.1), F,
                                          lg.tensor(x), lg.tensor(y))}
    if torch is None:
        return steps
    tmodel = torch.nn.Sequential(torch.nn.Linear(*sizes[:2]), torch.nn.ReLU(),
                                 torch.nn.Linear(*sizes[1:]))
    steps["pytorch"] = classifier_step(tmodel, torch.optim.SGD(tmodel.parameters(), lr=0.1),
                                       torch.nn.functional, torch.tensor(x), torch.tensor(y))
    return steps


def mlp(torch) -> list[float]:
    return best_ms(list(mlp_steps(torch).values()), n=20)


def cnn_steps(torch=None) -> dict[str, Callable[[], object]]:
    """The LeNet training step of each framework (PyTorch's only when ``torch`` is
    given)."""

    from lightgrad import optim
    from lightgrad.models.cnn import LeNet
    from lightgrad.nn import functional as F
    lg.manual_seed(0)
    model = LeNet(28, channels=(32, 64))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 64)
    steps = {"lightgrad": classifier_step(model, optim.Adam(model.parameters(), lr=1e-3), F,
                                          lg.tensor(x), lg.tensor(y))}
    if torch is None:
        return steps
    from cnn_step import torch_lenet
    tmodel = torch_lenet(model)
    steps["pytorch"] = classifier_step(tmodel, torch.optim.Adam(tmodel.parameters(), lr=1e-3),
                                       torch.nn.functional, torch.tensor(x), torch.tensor(y))
    return steps


def cnn(torch) -> list[float]:
    return best_ms(list(cnn_steps(torch).values()), n=3)


def conv(torch) -> list[float]:
    from lightgrad.nn import functional as F
    rng = np.random.default_rng(0)
    arrays = (rng.standard_normal((8, 64, 56, 56), dtype=np.float32),
              rng.standard_normal((64, 64, 3, 3), dtype=np.float32) * 0.1,
              rng.standard_normal(64, dtype=np.float32))
    x, w, b = (lg.tensor(a, requires_grad=True) for a in arrays)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in arrays)
    g, tg = lg.ones(8, 64, 56, 56), torch.ones(8, 64, 56, 56)

    def ours() -> None:
        x.grad = w.grad = b.grad = None
        F.conv2d(x, w, b, padding=1).backward(g)

    def theirs() -> None:
        tx.grad = tw.grad = tb.grad = None
        torch.nn.functional.conv2d(tx, tw, tb, padding=1).backward(tg)
    return best_ms([ours, theirs], n=2)


def sample(torch) -> list[float]:
    """ms per generated token (greedy, KV cache, 100 tokens)."""
    from torch_gpt import TorchGPT, copy_weights, generate

    from lightgrad.models.gpt import GPT, GPTConfig
    lg.manual_seed(0)
    config = GPTConfig.preset("baby", vocab_size=65, block_size=256)
    model, tmodel = GPT(config).eval(), TorchGPT(config).eval()
    copy_weights(model, tmodel)
    n = 100
    ms = best_ms([lambda: model.generate(lg.tensor([[0]]), n, temperature=0),
                  lambda: generate(tmodel, torch.tensor([[0]]), n, use_cache=True)],
                 rounds=3, n=1)
    return [m / n for m in ms]


def overhead(torch) -> list[float]:
    """Geometric mean of µs per op over op_overhead.py's ops, with and without grad."""
    from op_overhead import OPS
    data = np.random.default_rng(0).standard_normal((2, 4, 4)).astype(np.float32)
    ours, theirs = [], []
    for requires_grad in (False, True):
        pairs = ((lg.tensor(data[0], requires_grad=requires_grad),
                  lg.tensor(data[1], requires_grad=requires_grad)),
                 (torch.tensor(data[0], requires_grad=requires_grad),
                  torch.tensor(data[1], requires_grad=requires_grad)))
        for fn in OPS.values():
            for (a, b), out in zip(pairs, (ours, theirs)):
                runs = timeit.repeat(partial(fn, a, b), number=5000, repeat=5, timer=clock)
                out.append(min(runs) / 5000 * 1e6)
    return [float(np.exp(np.mean(np.log(v)))) for v in (ours, theirs)]


BENCHMARKS = {"gpt": ("GPT baby training step, ms", gpt), "mlp": ("MLP step, ms", mlp),
              "cnn": ("LeNet step, ms", cnn), "conv": ("ResNet 3x3 conv fwd+bwd, ms", conv),
              "sample": ("GPT sampling, ms/token", sample),
              "overhead": ("per-op overhead, µs", overhead)}


def main(argv: list[str] | None = None) -> None:
    import torch
    torch.set_num_threads(1)
    lg.set_num_threads(1)
    names = (argv if argv is not None else sys.argv[1:]) or list(BENCHMARKS)
    print(f"CPU time, 1 thread each; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")
    for name in names:
        title, fn = BENCHMARKS[name]
        ours, theirs = fn(torch)
        print(f"  {title:30s} lightgrad {ours:8.3f}   pytorch {theirs:8.3f}   ratio "
              f"{ours / theirs:5.2f}x")


if __name__ == "__main__":
    main()
