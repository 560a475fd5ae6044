"""Sampling speed: tokens/s of GPT generation with and without the KV cache, vs PyTorch.

    python benchmarks/sample.py [--tokens 200] [--repeats 3] [--threads 2]

The ``baby`` preset (4 layers, 4 heads, width 128, vocab 65), batch 1, a one-token prompt,
greedy decoding (``temperature=0``), in two settings:

- context 256: all 200 new tokens fit in the context window, so the cache is used for
  every token after the prompt (the pure cache speed-up);
- context 64 (the preset's own), ``crop=True``: once the window is full it slides, the
  learned position embeddings of every kept token change, and the whole window is
  recomputed each step with or without the cache (the cache helps the first 63 tokens).

PyTorch (eager, no_grad) runs the same model with the same weights through the loop in
``torch_gpt.generate``: its own simple cache (``torch.cat`` of past keys and values) or no
cache; all four runs must produce the same tokens. PyTorch and NumPy's BLAS use
``--threads`` threads (default 2). Best of ``--repeats``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from functools import partial
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lightgrad as lg  # noqa: E402
from lightgrad.models.gpt import GPT, GPTConfig  # noqa: E402


def best_seconds(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=200, help="new tokens to generate")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (best is kept)")
    parser.add_argument("--threads", type=int, default=2, help="threads for both (default 2)")
    args = parser.parse_args(argv)

    import torch

    from torch_gpt import TorchGPT, copy_weights, generate, set_threads
    threads = set_threads(args.threads)

    n = args.tokens
    print(f"GPT baby (4 layers, 4 heads, width 128, vocab 65), batch 1, {n} new tokens, "
          f"greedy; torch {torch.__version__}; {threads}; load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for block, crop in ((256, False), (64, True)):
        lg.manual_seed(0)
        config = GPTConfig.preset("baby", vocab_size=65, block_size=block)
        model = GPT(config).eval()
        tmodel = TorchGPT(config).eval()
        copy_weights(model, tmodel)
        rows = {}
        tokens = {}
        for use_cache in (True, False):
            lg_run = partial(model.generate, lg.tensor([[0]]), n, temperature=0,
                             use_cache=use_cache, crop=crop)
            torch_run = partial(generate, tmodel, torch.tensor([[0]]), n, use_cache=use_cache)
            rows[f"lightgrad, {'cache' if use_cache else 'no cache'}"], tokens[use_cache] = \
                best_seconds(lg_run, args.repeats)
            name = f"pytorch, {'own simple cache' if use_cache else 'no cache'}"
            rows[name], tokens[f"torch{use_cache}"] = best_seconds(torch_run, args.repeats)
        same = (tokens[True].tolist() == tokens[False].tolist()
                == tokens["torchTrue"].tolist() == tokens["torchFalse"].tolist())
        title = (f"context {block}" + (", crop=True (window slides after 63 tokens)"
                                       if crop else " (every token fits)"))
        print(f"\n{title}; identical tokens across all four: {same}")
        for name, seconds in rows.items():
            print(f"  {name:28s} {n / seconds:8.0f} tokens/s  ({seconds * 1e3 / n:6.2f} "
                  "ms/token)")
        lg_cache, lg_plain = rows["lightgrad, cache"], rows["lightgrad, no cache"]
        print(f"  lightgrad cache speed-up {lg_plain / lg_cache:.2f}x; lightgrad/pytorch "
              f"(cache) {lg_cache / rows['pytorch, own simple cache']:.2f}x, (no cache) "
              f"{lg_plain / rows['pytorch, no cache']:.2f}x time")


if __name__ == "__main__":
    main()
