"""One Mamba training step, lightgrad vs PyTorch written the mamba-minimal way; and
generation with the recurrent state vs recomputing the sequence.

    python benchmarks/mamba_step.py [--steps 10] [--rounds 3] [--threads 2] [--gen 512]

The model is lightgrad's ``baby`` Mamba preset (7 layers, width 128, state 16, about the
baby GPT's parameter count), vocabulary 65, batch 12, context 64 (the baby GPT's
batch). PyTorch runs the same model (``torch_mamba.py``: mamba-minimal's sequential scan
loop, ordinary layers elsewhere) from the same weights on the same batches; a step is
forward + backward + ``clip_grad_norm_(1.0)`` + AdamW. Both run on ``--threads`` threads;
the two are timed in alternating rounds and the best round of each is reported.
Target: lightgrad <= 1.0x PyTorch.

Generation: ``--gen`` new tokens (greedy, batch 1, prompt of one token) with
``Mamba.generate`` (prompt once, then one recurrent ``step`` per token) and with
``use_cache=False`` (the whole sequence recomputed for every token, as mamba-minimal's
``generate`` does); tokens/s of each, and whether the two agree.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lightgrad as lg  # noqa: E402
from lightgrad.models.mamba import Mamba, MambaConfig  # noqa: E402

BATCH, VOCAB, CONTEXT = 12, 65, 64


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per framework")
    parser.add_argument("--threads", type=int, default=2, help="threads for both (default 2)")
    parser.add_argument("--gen", type=int, default=512, help="tokens to generate (0 = skip)")
    args = parser.parse_args(argv)

    import torch

    from steps import best_ms, lm_batches, lm_step
    from torch_gpt import set_threads
    from torch_mamba import TorchMamba, copy_weights
    threads = set_threads(args.threads)

    lg.manual_seed(0)
    config = MambaConfig.preset("baby", vocab_size=VOCAB)
    model = Mamba(config)
    tmodel = TorchMamba(config)
    copy_weights(model, tmodel)
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.99))
    topt = tmodel.configure_optimizers(0.1, 1e-3, (0.9, 0.99))

    lg_batches, t_batches = lm_batches(VOCAB, 8, BATCH, CONTEXT, torch)
    lg_step = lm_step(model, opt, lg_batches, lg.nn.utils.clip_grad_norm_)
    torch_step = lm_step(tmodel, topt, t_batches, torch.nn.utils.clip_grad_norm_)

    first = [(lg_step(), torch_step()) for _ in range(3)]  # same weights, same batches
    worst = max(abs(a - b) for a, b in first)
    step_ms = best_ms({"lightgrad": lg_step, "pytorch": torch_step}, args.steps, args.rounds)
    print(f"Mamba baby ({config.n_layer} layers, width {config.d_model}, state "
          f"{config.d_state}, {model.num_parameters() / 1e6:.2f}M params), batch {BATCH}, "
          f"context {CONTEXT}, vocab {VOCAB}")
    print(f"  numpy {np.__version__}, torch {torch.__version__}; {threads}; load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; first 3 losses differ by "
          f"at most {worst:.1e}")
    print(f"  train step (fwd + bwd + clip + AdamW):  lightgrad {step_ms['lightgrad']:7.2f} ms"
          f"   pytorch (mamba-minimal loop) {step_ms['pytorch']:7.2f} ms   ratio "
          f"{step_ms['lightgrad'] / step_ms['pytorch']:.2f}x")

    if args.gen:
        prompt = lg.tensor([[1]])
        timings, outputs = {}, {}
        for name, cached in (("recurrent state", True), ("recompute sequence", False)):
            start = time.perf_counter()
            outputs[name] = model.generate(prompt, args.gen, temperature=0, use_cache=cached)
            timings[name] = time.perf_counter() - start
        same = np.array_equal(*(o.numpy() for o in outputs.values()))
        rates = {k: args.gen / v for k, v in timings.items()}
        print(f"  generation of {args.gen} tokens (greedy, batch 1): " + ", ".join(
            f"{k} {v:,.0f} tok/s" for k, v in rates.items())
            + f"; speed-up {rates['recurrent state'] / rates['recompute sequence']:.1f}x; "
              f"same tokens: {same}")


if __name__ == "__main__":
    main()
