"""Data-parallel GPT training on 2 processes (MPI): communication overlap and throughput.

    python benchmarks/ddp.py [--models baby,wide] [--rounds 15] [--batch 12]
                             [--bucket-cap-mb 25] [--gradient-as-bucket-view]
                             [--no-progress-thread]

Models: the ``baby`` GPT preset (4 layers, width 128, context 64, vocabulary 65: 0.8M
parameters, 2 buckets at PyTorch's default bucket size) and ``wide`` (8 layers, width 512,
context 64: 25M parameters, 100 MB of float32 gradients, 5 buckets at the default 25 MB
cap with a 1 MB first bucket: the size of model PyTorch's defaults are made for), on
random tokens.

1. Overlap, on 2 ranks with 1 BLAS thread each, per model: forward + backward through
   ``DistributedDataParallel`` (T_ddp: gradients all-reduced in buckets during backward)
   vs the same forward + backward on the bare module (T_plain: no communication), and the
   all-reduce of the same buckets alone (T_comm). The issue's figure:
   hidden = 1 - (T_ddp - T_plain) / T_comm (1: communication entirely behind backward, 0:
   none of it; below 0: DDP costs more than its communication). Beside it, DDP's
   ``sync_stats``: the share of gradient elements already reduced when backward ended, the
   wait at the end of backward, and the time backward spent filling buckets. PyTorch's DDP
   (gloo) on the same model gives the same figure alongside.
2. Throughput of a full training step (forward, backward, clip, AdamW) on ``baby`` at the
   same global batch (2 x batch): 2 processes x 1 BLAS thread (DDP) vs 1 process x 2
   threads (and x 1 thread, the scaling baseline); PyTorch alongside (DDP on gloo for 2 x 1,
   eager else).

Every time is the best of ``--rounds`` single steps, the modes interleaved, the ranks
meeting at a barrier before each (the cores are shared: the best step is the one least
disturbed). Other jobs on a shared machine stretch wall times by more than the
communication costs, so each time is also given as an estimate of what it would be with
a core to itself ("own core": process CPU time, all threads, plus the time the main
thread was blocked waiting, without the time it was runnable while another process had the
core; from Linux's /proc/thread-self/schedstat), and the figure is computed from both.
Beside them, the process CPU time that DDP adds to a step and that the all-reduce alone
takes: when every core computes, as with 2 ranks on 2 cores, MPI's own work (copies and
sums through shared memory) cannot hide behind backward, only its waiting can.
``--no-progress-thread`` runs the MPI backend without its progress thread
(LIGHTGRAD_MPI_PROGRESS_THREAD=0), for comparison.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lightgrad as lg  # noqa: E402
from lightgrad.models.gpt import GPT, GPTConfig  # noqa: E402
from steps import best_ms, lm_step  # noqa: E402

VOCAB = 65
MODELS = {"baby": dict(preset="baby", batch=None),
          "wide": dict(config=dict(n_layer=8, n_head=8, n_embd=512, block_size=64, bias=False),
                       batch=2)}


def model_config(name: str) -> GPTConfig:
    spec = MODELS[name]
    if "preset" in spec:
        return GPTConfig.preset(spec["preset"], vocab_size=VOCAB)
    return GPTConfig(vocab_size=VOCAB, **spec["config"])


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


def _main_thread_sched() -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for one) of the calling thread, from
    Linux's schedstat; (0, 0) where there is none."""
    try:
        with open("/proc/thread-self/schedstat") as f:
            run_ns, wait_ns = f.read().split()[:2]
        return int(run_ns) * 1e-9, int(wait_ns) * 1e-9
    except (OSError, ValueError):
        return 0.0, 0.0


def best_wall_cpu(fns: dict[str, Callable[[], object]], rounds: int,
                  sync: Callable[[], object]) -> dict[str, float]:
    """Per function, the best over single calls (ms; the functions interleaved, the ranks
    meeting at ``sync`` before each call) of: the wall time; the process CPU time (all
    threads: MPI's work in the progress thread included); and ``name_own``, an estimate of
    the wall time with a core to itself: the process CPU time plus the time the main thread
    was blocked (waiting for data or a peer), leaving out the time it was runnable but
    another process had the core."""
    import time
    out: dict[str, float] = {}
    for _ in range(rounds):
        for name, fn in fns.items():
            sync()
            run0, wait0 = _main_thread_sched()
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            run1, wait1 = _main_thread_sched()
            blocked = max(0.0, wall - (run1 - run0) - (wait1 - wait0)) if run1 else 0.0
            for key, value in ((name, wall), (f"{name}_cpu", cpu),
                               (f"{name}_own", cpu + blocked)):
                out[key] = min(out.get(key, float("inf")), value * 1e3)
    return out


def overlap_steps(model: Any, ddp: Any, x: Any, y: Any, flats: list,
                  all_reduce: Callable, after_ddp: Callable[[], None] | None = None
                  ) -> dict[str, Callable[[], None]]:
    """The three steps the overlap figure times, for either framework: forward + backward on
    the bare ``model`` ("plain") and through ``ddp`` (then ``after_ddp``), and the async
    ``all_reduce`` of every bucket-sized tensor in ``flats`` alone ("comm")."""
    def bare() -> None:
        model.zero_grad(set_to_none=True)
        model(x, y)[1].backward()

    def wrapped() -> None:
        model.zero_grad(set_to_none=True)
        ddp(x, y)[1].backward()
        if after_ddp is not None:
            after_ddp()

    def comm_only() -> None:
        works = [all_reduce(f, async_op=True) for f in flats]
        for w in works:
            w.wait()
    return {"plain": bare, "ddp": wrapped, "comm": comm_only}


def overlap_lg(name: str, args: argparse.Namespace, rank: int) -> dict:
    """T_plain, T_ddp, T_comm (ms) and DDP's sync_stats for one model, lightgrad."""
    import lightgrad.distributed as dist
    from lightgrad.nn.parallel import DistributedDataParallel
    config = model_config(name)
    lg.manual_seed(0)
    model = GPT(config)
    ddp = DistributedDataParallel(model, bucket_cap_mb=args.bucket_cap_mb,
                                  gradient_as_bucket_view=args.gradient_as_bucket_view)
    x, y = (lg.tensor(a) for a in batches(config, MODELS[name]["batch"] or args.batch,
                                          seed=rank)[0])
    stats: list[dict] = []
    flats = [lg.zeros(b.numel) for b in ddp._buckets]
    steps = overlap_steps(model, ddp, x, y, flats, dist.all_reduce,
                          lambda: stats.append(dict(ddp.sync_stats)))
    ms = best_wall_cpu(steps, args.rounds, sync=dist.barrier)
    ms.update({k: float(np.median([st[k] for st in stats])) * (1e3 if k.endswith("_s") else 1)
               for k in ("wait_s", "launch_s", "reduced_during_backward")})
    ms["buckets"] = [b.numel for b in ddp._buckets]
    ms["params"] = model.num_parameters()
    return ms


def overlap_torch(name: str, args: argparse.Namespace, rank: int, buckets: list) -> dict:
    """The same figures for PyTorch's DDP on gloo (T_comm: gloo all-reduces of buckets of
    the sizes lightgrad used)."""
    import torch
    import torch.distributed as tdist

    from torch_gpt import TorchGPT
    config = model_config(name)
    torch.manual_seed(0)
    model = TorchGPT(config)
    ddp = torch.nn.parallel.DistributedDataParallel(
        model, bucket_cap_mb=args.bucket_cap_mb,
        gradient_as_bucket_view=args.gradient_as_bucket_view)
    x, y = (torch.tensor(a) for a in batches(config, MODELS[name]["batch"] or args.batch,
                                             seed=rank)[0])
    flats = [torch.zeros(n) for n in buckets]
    return best_wall_cpu(overlap_steps(model, ddp, x, y, flats, tdist.all_reduce),
                         args.rounds, sync=tdist.barrier)


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
    port = int(os.environ.get("BENCH_TORCH_PORT", "29512"))
    tdist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                             world_size=world)
    out: dict = {"overlap": {}}
    for name in args.models.split(","):
        lg_ms = overlap_lg(name, args, rank)
        out["overlap"][name] = {"lg": lg_ms,
                                "torch": overlap_torch(name, args, rank, lg_ms["buckets"])}
    config = model_config("baby")
    lg.manual_seed(0)
    model = GPT(config)
    ddp = DistributedDataParallel(model, bucket_cap_mb=args.bucket_cap_mb)
    data = batches(config, args.batch, seed=rank)
    out["train"] = best_ms({"ddp": lg_trainer(model, ddp, data)}, args.steps, 3,
                           sync=dist.barrier)["ddp"]
    out["torch_train"] = best_ms({"ddp": torch_trainer(config, data, ddp=True)}, args.steps,
                                 3, sync=tdist.barrier)["ddp"]
    tdist.destroy_process_group()
    if rank == 0:
        print("RESULT " + json.dumps(out), flush=True)
    dist.destroy_process_group()


def hidden(r: dict) -> float:
    """The issue's figure: 1 - (T_ddp - T_plain) / T_comm."""
    return 1 - (r["ddp"] - r["plain"]) / r["comm"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="baby,wide",
                        help="models of the overlap measurement (baby, wide)")
    parser.add_argument("--rounds", type=int, default=15,
                        help="timed single steps per mode (overlap); best counts")
    parser.add_argument("--steps", type=int, default=5, help="steps per round (throughput)")
    parser.add_argument("--batch", type=int, default=12, help="sequences per rank (baby)")
    parser.add_argument("--bucket-cap-mb", type=float, default=25,
                        help="DDP bucket size (default 25, PyTorch's)")
    parser.add_argument("--gradient-as-bucket-view", action="store_true",
                        help="DDP(gradient_as_bucket_view=True) in the overlap measurement")
    parser.add_argument("--no-progress-thread", action="store_true",
                        help="MPI backend without its progress thread")
    parser.add_argument("--rank", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rank:
        return rank_main(args)
    for name in args.models.split(","):
        if name not in MODELS:
            parser.error(f"unknown model {name!r}; choose among {', '.join(MODELS)}")

    from lightgrad.distributed.launch import mpiexec_command
    with socket.socket() as s:  # a free port for PyTorch's gloo rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               BENCH_TORCH_PORT=str(port),
               LIGHTGRAD_MPI_PROGRESS_THREAD="0" if args.no_progress_thread else "1")
    load_before = os.getloadavg()[0]
    cmd = mpiexec_command(2, [__file__, "--rank", "--models", args.models, "--rounds",
                              str(args.rounds), "--steps", str(args.steps), "--batch",
                              str(args.batch), "--bucket-cap-mb", str(args.bucket_cap_mb)]
                          + (["--gradient-as-bucket-view"] if args.gradient_as_bucket_view
                             else []))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        sys.exit(f"the 2-rank run failed:\n{proc.stdout}\n{proc.stderr}")
    r = json.loads(line[len("RESULT "):])

    import torch

    from torch_gpt import set_threads
    config = model_config("baby")
    data = batches(config, 2 * args.batch, seed=0)
    single = {}
    for threads in (2, 1):
        set_threads(threads)
        lg.manual_seed(0)
        model = GPT(config)
        single[threads] = best_ms({"lg": lg_trainer(model, model, data),
                                   "torch": torch_trainer(config, data, ddp=False)},
                                  args.steps, 3)

    print(f"DDP on 2 ranks x 1 BLAS thread, {os.cpu_count()} cores, numpy {np.__version__}, "
          f"torch {torch.__version__}; load average {load_before:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after; MPI progress thread "
          f"{'off' if args.no_progress_thread else 'on'}; bucket_cap_mb="
          f"{args.bucket_cap_mb:g}; gradient_as_bucket_view={args.gradient_as_bucket_view}")
    print("overlap (fwd+bwd, best single step): hidden = 1 - (T_ddp - T_plain) / T_comm")
    for name, o in r["overlap"].items():
        a, t = o["lg"], o["torch"]
        batch = MODELS[name]["batch"] or args.batch
        print(f"  {name}: {a['params'] / 1e6:.2f}M params, batch {batch} per rank, buckets "
              f"(elements) {a['buckets']}")
        for who, m in (("lightgrad", a), ("pytorch  ", t)):
            print(f"    {who} wall: T_plain {m['plain']:8.2f} ms  T_ddp {m['ddp']:8.2f} ms  "
                  f"T_comm {m['comm']:7.2f} ms  hidden {100 * hidden(m):6.1f} %")
            own = {k: m[f"{k}_own"] for k in ("plain", "ddp", "comm")}
            print(f"      own core: T_plain {own['plain']:8.2f} ms  T_ddp {own['ddp']:8.2f} ms  "
                  f"T_comm {own['comm']:7.2f} ms  hidden {100 * hidden(own):6.1f} %   CPU: "
                  f"DDP adds {m['ddp_cpu'] - m['plain_cpu']:6.2f} ms, comm alone "
                  f"{m['comm_cpu']:6.2f} ms")
        print(f"    lightgrad sync_stats (median): {100 * a['reduced_during_backward']:5.1f} % "
              f"of gradient elements reduced before backward ended; end-of-backward wait "
              f"{a['wait_s']:.2f} ms; filling buckets {a['launch_s']:.2f} ms")
    tokens = 2 * args.batch * config.block_size  # global batch per step
    print(f"train step, baby, global batch {2 * args.batch} ({tokens} tokens):")
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
