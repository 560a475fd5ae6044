"""Mamba vs GPT on Tiny Shakespeare: the same steps, tokens and recipe; validation loss.

    python benchmarks/mamba_quality.py [--data FILE] [--max-iters 2000] [--eval-iters 200]

Both models run through ``lightgrad train``'s own loop (``lightgrad.train.gpt.train``,
the code behind ``lightgrad train gpt`` and ``lightgrad train mamba``) with the same
arguments: the ``baby`` preset of each (GPT: 4 layers, 4 heads, width 128; Mamba: 7
layers, width 128, state 16 - about the same parameter count), character tokens, batch 12
of 64-token windows drawn from the same seeded generator, AdamW with warm-up and cosine
decay, clipping at 1. Printed: parameters, wall time, and the final train and
validation losses over ``--eval-iters`` fixed batches. Default data:
../shared/data/tinyshakespeare.txt. Run directories go to a temporary folder.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from lightgrad.cli import build_parser
from lightgrad.train.gpt import train


def main() -> None:
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--max-iters", type=int, default=2000)
    parser.add_argument("--eval-iters", type=int, default=200)
    parser.add_argument("--eval-interval", type=int, default=0,
                        help="steps between evaluations, printed as they come (default: "
                             "only at the end)")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--kinds", nargs="+", default=["gpt", "mamba"],
                        choices=["gpt", "mamba"], help="which models (default: both)")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds:
            argv = ["train", kind, "--data", str(args.data), "--out", f"{tmp}/{kind}",
                    "--max-iters", str(args.max_iters), "--eval-iters", str(args.eval_iters),
                    "--eval-interval", str(args.eval_interval or args.max_iters),
                    "--seed", str(args.seed),
                    "--sample-chars", "0"]
            run_args = build_parser().parse_args(argv)
            lines: list[str] = []
            start = time.perf_counter()
            out = train(run_args, log=lines.append)
            seconds = time.perf_counter() - start
            params = next(line for line in lines if line.startswith("model:"))
            results[kind] = (out["losses"], seconds, params)
            print(f"{kind}: {params}; {seconds:.0f}s; train {out['losses']['train']:.4f}, "
                  f"val {out['losses']['val']:.4f}", flush=True)
    print(f"validation loss after {args.max_iters} steps of batch 12 x 64 tokens "
          f"({args.eval_iters} eval batches): " + ", ".join(
              f"{kind} {losses['val']:.4f}" for kind, (losses, _, _) in results.items()))


if __name__ == "__main__":
    main()
