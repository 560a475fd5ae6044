"""Data-parallel GPT training on 2 processes (MPI): communication overlap and throughput.

    python benchmarks/ddp.py [--steps 10] [--rounds 3] [--batch 12] [--bucket-cap-mb 25]

The ``baby`` GPT preset (4 layers, width 128, context 64, vocabulary 65) on random tokens.

1. Overlap, on 2 ranks with 1 BLAS thread each: forward + backward through
   ``DistributedDataParallel`` (gradients all-reduced in buckets during backward) vs the
   same forward + backward on the bare module (no communication), and the all-reduce of
   the same buckets alone. DDP records (``sync_stats``) which share of the gradient
   elements was already reduced when backward ended (hidden behind it) and how long the
   end of backward waited for the rest.
2. Throughput of a full training step (forward, backward, clip, AdamW) at the same global
   batch (2 x batch): 2 processes x 1 BLAS thread (DDP) vs 1 process x 2 threads (and x 1
   thread, the scaling baseline); PyTorch alongside (DDP on gloo for 2 x 1, eager else).

Timings are the best of ``--rounds`` rounds (the ranks meet at a barrier before each).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lightgrad as lg  # noqa: E402
from lightgrad.models.gpt import GPT, GPTConfig  # noqa: E402
from steps import best_ms, lm_step  # noqa: E402

VOCAB = 65


def batches(config: GPTConfig, batch: int, seed: int) -> list:
    data = np.random.default_rng(seed).integers(0, VOCAB, (8, batch, config.block_size + 1))
    return [(b[:, :-1], b[:, 1:]) for b in data]


def lg_trainer(model: GPT, wrapped: object, data: list) -> Callable[[], float]:
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.99))
    tensors = [(lg.tensor(x), lg.tensor(y)) for x, y in data]
    return lm_step(model, opt, tensors, lg.nn.utils.clip_grad_norm_, forward=wrapped)


def torch_trainer(config: GPTConfig, data: list, ddp: bool) -> Callable[[], float]:
    import torch

    from torch_gpt import TorchGPT
    torch.manual_seed(0)
    model = TorchGPT(config)
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.99))
    wrapped = torch.nn.parallel.DistributedDataParallel(model) if ddp else model
    tensors = [(torch.tensor(x), torch.tensor(y)) for x, y in data]
    return lm_step(model, opt, tensors, torch.nn.utils.clip_grad_norm_, forward=wrapped)


def rank_main(args: argparse.Namespace) -> None:
    """One of the 2 ranks: overlap and DDP throughput; rank 0 prints a RESULT line."""
    import torch
    import torch.distributed as tdist

    import lightgrad.distributed as dist
    from lightgrad.nn.parallel import DistributedDataParallel
    lg.set_num_threads(1)
    torch.set_num_threads(1)
    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    lg.manual_seed(0)
    config = GPTConfig.preset("baby", vocab_size=VOCAB)
    model = GPT(config)
    ddp = DistributedDataParallel(model, bucket_cap_mb=args.bucket_cap_mb)
    data = batches(config, args.batch, seed=rank)
    x, y = lg.tensor(data[0][0]), lg.tensor(data[0][1])

    def bare() -> None:
        model.zero_grad(set_to_none=True)
        model(x, y)[1].backward()

    waits: list[float] = []
    hidden: list[float] = []

    def wrapped() -> None:
        model.zero_grad(set_to_none=True)
        ddp(x, y)[1].backward()
        waits.append(ddp.sync_stats["wait_s"])
        hidden.append(ddp.sync_stats["reduced_during_backward"])

    flats = [lg.zeros(b.numel) for b in ddp._buckets]

    def comm_only() -> None:
        works = [dist.all_reduce(f, async_op=True) for f in flats]
        for w in works:
            w.wait()

    ms = best_ms({"bare": bare, "ddp": wrapped, "comm": comm_only}, args.steps, args.rounds,
                 sync=dist.barrier)
    train = best_ms({"ddp": lg_trainer(model, ddp, data)}, args.steps, args.rounds,
                    sync=dist.barrier)["ddp"]
    port = int(os.environ.get("BENCH_TORCH_PORT", "29512"))
    tdist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                             world_size=world)
    torch_train = best_ms({"ddp": torch_trainer(config, data, ddp=True)}, args.steps,
                          args.rounds, sync=tdist.barrier)["ddp"]
    tdist.destroy_process_group()
    if rank == 0:
        print("RESULT " + json.dumps({**ms, "train": train, "torch_train": torch_train,
                                      "wait": float(np.median(waits)) * 1e3,
                                      "hidden": float(np.mean(hidden)),
                                      "buckets": [b.numel for b in ddp._buckets]}),
              flush=True)
    dist.destroy_process_group()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds")
    parser.add_argument("--batch", type=int, default=12, help="sequences per rank")
    parser.add_argument("--bucket-cap-mb", type=float, default=25,
                        help="DDP bucket size (default 25, PyTorch's)")
    parser.add_argument("--rank", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rank:
        return rank_main(args)

    from lightgrad.distributed.launch import mpiexec_command
    with socket.socket() as s:  # a free port for PyTorch's gloo rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               BENCH_TORCH_PORT=str(port))
    cmd = mpiexec_command(2, [__file__, "--rank", "--steps", str(args.steps), "--rounds",
                              str(args.rounds), "--batch", str(args.batch),
                              "--bucket-cap-mb", str(args.bucket_cap_mb)])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        sys.exit(f"the 2-rank run failed:\n{proc.stdout}\n{proc.stderr}")
    r = json.loads(line[len("RESULT "):])

    import torch

    from torch_gpt import set_threads
    config = GPTConfig.preset("baby", vocab_size=VOCAB)
    data = batches(config, 2 * args.batch, seed=0)
    single = {}
    for threads in (2, 1):
        set_threads(threads)
        lg.manual_seed(0)
        model = GPT(config)
        single[threads] = best_ms({"lg": lg_trainer(model, model, data),
                                   "torch": torch_trainer(config, data, ddp=False)},
                                  args.steps, args.rounds)

    tokens = 2 * args.batch * config.block_size  # global batch per step
    print(f"GPT baby ({model.num_parameters() / 1e6:.2f}M params), batch {args.batch} per "
          f"rank, {os.cpu_count()} cores, numpy {np.__version__}, torch {torch.__version__}")
    print(f"  load average {os.getloadavg()[0]:.2f}; DDP buckets (bucket_cap_mb="
          f"{args.bucket_cap_mb:g}), elements: {r['buckets']}")
    print(f"  fwd+bwd, 2 ranks x 1 thread: bare module {r['bare']:7.2f} ms   DDP "
          f"{r['ddp']:7.2f} ms   all-reduce alone {r['comm']:6.2f} ms")
    print(f"  communication hidden behind backward: {100 * r['hidden']:5.1f} % of the gradient "
          f"elements were reduced before backward ended")
    print(f"  end-of-backward wait {r['wait']:.2f} ms (median; includes waiting for the other "
          f"rank), DDP - bare {r['ddp'] - r['bare']:+.2f} ms")
    print(f"  train step, global batch {2 * args.batch} ({tokens} tokens):")
    for name, ms_lg, ms_t in (("2 procs x 1 thread (DDP)", r["train"], r["torch_train"]),
                              ("1 proc  x 2 threads     ", single[2]["lg"], single[2]["torch"]),
                              ("1 proc  x 1 thread      ", single[1]["lg"], single[1]["torch"])):
        print(f"    {name}: lightgrad {ms_lg:7.2f} ms = {tokens / ms_lg * 1e3:8.0f} tok/s   "
              f"pytorch {ms_t:7.2f} ms = {tokens / ms_t * 1e3:8.0f} tok/s   ratio "
              f"{ms_lg / ms_t:.2f}x")
    print(f"  lightgrad tokens/s: 2x1 DDP = {single[2]['lg'] / r['train']:.2f}x 1x2 threads, "
          f"{single[1]['lg'] / r['train']:.2f}x 1x1 thread (2 = perfect scaling)")


if __name__ == "__main__":
    main()
