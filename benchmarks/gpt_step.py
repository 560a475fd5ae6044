"""One GPT training step, lightgrad vs PyTorch eager: the ``baby`` preset on characters.

    python benchmarks/gpt_step.py [--steps 20] [--rounds 5] [--threads 2] [--profile]

The model is 4 layers, 4 heads, width 128, context 64, vocabulary 65, batch 12 (nanoGPT's
CPU configuration for Tiny Shakespeare). Both frameworks start from the same weights and
see the same batches; a step is forward + backward + ``clip_grad_norm_(1.0)`` + AdamW
(decay/no-decay groups). PyTorch runs on 2 threads (``torch.set_num_threads(2)``), and so
does NumPy's BLAS under lightgrad (``--threads`` changes both; ``--threads 0`` keeps each
framework's default: lightgrad's automatic count, PyTorch's one thread per core). The two
are timed in alternating rounds in one process and the best round of each is reported (the
machine may be shared). Also printed: a forward-only time (no_grad, logits and loss),
lightgrad's forward / backward / optimizer split, and with ``--profile`` a cProfile top-15
of lightgrad's step by own time.
Target: lightgrad <= 1.0x PyTorch (eager).
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lightgrad as lg  # noqa: E402
from lightgrad.models.gpt import GPT, GPTConfig  # noqa: E402
from steps import best_ms, lm_batches, lm_step  # noqa: E402

BATCH, VOCAB = 12, 65


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per framework")
    parser.add_argument("--profile", action="store_true", help="cProfile lightgrad's step")
    parser.add_argument("--threads", type=int, default=2, help="threads for both (default 2)")
    args = parser.parse_args(argv)

    import torch

    from torch_gpt import TorchGPT, copy_weights, set_threads
    threads = set_threads(args.threads)

    lg.manual_seed(0)
    config = GPTConfig.preset("baby", vocab_size=VOCAB)
    model = GPT(config)
    tmodel = TorchGPT(config)
    copy_weights(model, tmodel)
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.99))
    topt = tmodel.configure_optimizers(0.1, 1e-3, (0.9, 0.99))

    lg_batches, t_batches = lm_batches(VOCAB, 16, BATCH, config.block_size, torch)
    counter = {"lg": 0}
    phases = {"forward": 0.0, "backward": 0.0, "optimizer": 0.0}

    def lg_step(split: bool = False) -> float:
        x, y = lg_batches[counter["lg"] % len(lg_batches)]
        counter["lg"] += 1
        t0 = time.perf_counter()
        _, loss = model(x, y)
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        lg.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if split:
            t3 = time.perf_counter()
            phases["forward"] += t1 - t0
            phases["backward"] += t2 - t1
            phases["optimizer"] += t3 - t2
        return loss.item()

    torch_step = lm_step(tmodel, topt, t_batches, torch.nn.utils.clip_grad_norm_)

    # sanity: the first steps agree (same weights, same batches)
    first = [(lg_step(), torch_step()) for _ in range(3)]
    worst = max(abs(a - b) for a, b in first)

    def lg_forward() -> None:
        with lg.no_grad():
            model(*lg_batches[0])[1].item()

    def torch_forward() -> None:
        with torch.no_grad():
            tmodel(*t_batches[0])[1].item()

    step_ms = best_ms({"lightgrad": lg_step, "pytorch": torch_step}, args.steps, args.rounds)
    fwd_ms = best_ms({"lightgrad": lg_forward, "pytorch": torch_forward}, args.steps,
                     args.rounds)
    split = dict(phases)
    for _ in range(args.rounds):  # the round with the smallest total, as for the timings
        phases.update(dict.fromkeys(phases, 0.0))
        for _ in range(args.steps):
            lg_step(split=True)
        if sum(split.values()) == 0 or sum(phases.values()) < sum(split.values()):
            split = dict(phases)

    print(f"GPT baby (4 layers, 4 heads, width 128, context {config.block_size}, vocab "
          f"{VOCAB}, {model.num_parameters() / 1e6:.2f}M params), batch {BATCH}")
    print(f"  numpy {np.__version__}, torch {torch.__version__}; {threads}; load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; first 3 losses differ by "
          f"at most {worst:.1e}")
    print(f"  train step (fwd + bwd + clip + AdamW):  lightgrad {step_ms['lightgrad']:7.2f} ms"
          f"   pytorch {step_ms['pytorch']:7.2f} ms   ratio "
          f"{step_ms['lightgrad'] / step_ms['pytorch']:.2f}x")
    print(f"  forward only (no_grad, with loss):       lightgrad {fwd_ms['lightgrad']:7.2f} ms"
          f"   pytorch {fwd_ms['pytorch']:7.2f} ms   ratio "
          f"{fwd_ms['lightgrad'] / fwd_ms['pytorch']:.2f}x")
    total = sum(split.values())
    print(f"  lightgrad step split (best round of {args.steps} steps): " + ", ".join(
        f"{k} {v / args.steps * 1e3:.2f} ms ({v / total:.0%})" for k, v in split.items()))

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.steps):
            lg_step()
        profiler.disable()
        print(f"\ncProfile of {args.steps} lightgrad steps, top 15 by own time:")
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
