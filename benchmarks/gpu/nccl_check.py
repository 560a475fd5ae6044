"""The NCCL backend on 2 GPUs: collectives checked against NumPy, DDP against one process,
and the bandwidth of a 100 MB all-reduce. Runs only where at least 2 GPUs are visible
(otherwise it says why and exits 0), in well under a minute:

    python benchmarks/gpu/nccl_check.py

Two ranks are started as processes (one GPU each, ``CUDA_VISIBLE_DEVICES``) that meet
through an NCCL id in a file (``init_process_group("nccl", init_method="file://...")``),
so neither MPI nor ``lightgrad run`` is needed. Exit status 1 when a check fails.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import require_gpu  # noqa: E402

RANK = """
import sys, time
import numpy as np
import lightgrad as lg
import lightgrad.distributed as dist
from lightgrad import nn
rank, world, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
dist.init_process_group("nccl", init_method="file://" + path, world_size=world, rank=rank)
dev = "cuda"
vals = [np.random.default_rng(k).uniform(0.5, 1.5, (3, 5)) for k in range(world)]
for op, fn in (("sum", np.sum), ("max", np.max), ("min", np.min), ("avg", np.mean)):
    t = lg.tensor(vals[rank], device=dev)
    dist.all_reduce(t, op=op)
    np.testing.assert_allclose(t.cpu().numpy(), fn(vals, 0), rtol=1e-12, err_msg=op)
t = lg.tensor(vals[rank], device=dev); dist.broadcast(t, src=world - 1)
np.testing.assert_array_equal(t.cpu().numpy(), vals[-1])
outs = [lg.zeros(3, 5, dtype=lg.float64, device=dev) for _ in range(world)]
dist.all_gather(outs, lg.tensor(vals[rank], device=dev))
for k in range(world):
    np.testing.assert_array_equal(outs[k].cpu().numpy(), vals[k])
flat = lg.tensor(np.concatenate(vals), device=dev)      # (3 * world, 5)
out = lg.zeros(3, 5, dtype=lg.float64, device=dev)
dist.reduce_scatter_tensor(out, flat)
np.testing.assert_allclose(out.cpu().numpy(), world * np.concatenate(vals)[3 * rank:3 * rank + 3]
                           , rtol=1e-12)
t = lg.tensor(vals[rank], device=dev); dist.reduce(t, dst=0)
if rank == 0:
    np.testing.assert_allclose(t.cpu().numpy(), np.sum(vals, 0), rtol=1e-12)
if rank == 0:
    dist.send(lg.tensor(vals[0], device=dev), dst=1)
elif rank == 1:
    t = lg.zeros(3, 5, dtype=lg.float64, device=dev); dist.recv(t, src=0)
    np.testing.assert_array_equal(t.cpu().numpy(), vals[0])
# DDP: rank r's half of the batch == the whole batch in one process (float64)
def make():
    lg.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 4)).to(lg.float64).to(dev)
x = np.random.default_rng(9).standard_normal((4 * world, 8))
ddp, ref = nn.parallel.DistributedDataParallel(make(), bucket_cap_mb=0.001), make()
ddp(lg.tensor(x[4 * rank:4 * rank + 4], device=dev)).pow(2).mean().backward()
ref(lg.tensor(x, device=dev)).pow(2).mean().backward()
for p, q in zip(ddp.module.parameters(), ref.parameters()):
    np.testing.assert_allclose(p.grad.cpu().numpy(), q.grad.cpu().numpy(), rtol=1e-10,
                               atol=1e-12)
# bandwidth: 100 MB float32 all-reduce (NCCL's "bus bandwidth": 2 (n-1)/n x bytes / time)
big = lg.ones(25 * 2 ** 20, device=dev)
for _ in range(2):
    dist.all_reduce(big)
dist.barrier()
start, iters = time.perf_counter(), 10
for _ in range(iters):
    dist.all_reduce(big)
ms = (time.perf_counter() - start) / iters * 1e3
if rank == 0:
    busbw = 2 * (world - 1) / world * big.numel() * 4 / (ms * 1e-3) / 1e9
    print(f"  all_reduce 100 MB float32: {ms:.2f} ms, bus bandwidth {busbw:.1f} GB/s")
dist.destroy_process_group()
print(f"OK rank {rank}")
"""


def gpu_count() -> int:
    import cupy
    return cupy.cuda.runtime.getDeviceCount()


def skip(why: str) -> None:
    print(f"nccl_check.py: skipped: {why}")
    sys.exit(0)


def main() -> int:
    require_gpu("nccl_check.py")
    import lightgrad.distributed as dist
    if not dist.is_nccl_available():
        skip("CuPy has no NCCL (cupy.cuda.nccl.available is False)")
    n = gpu_count()
    if n < 2:
        skip(f"{n} GPU visible; the NCCL check needs 2")
    with tempfile.TemporaryDirectory() as tmp:
        script, idfile = Path(tmp) / "rank.py", Path(tmp) / "nccl.id"
        script.write_text(RANK)
        start = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, str(script), str(r), "2", str(idfile)],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  env=dict(os.environ, CUDA_VISIBLE_DEVICES=str(r),
                                           LOCAL_RANK="0"))
                 for r in range(2)]
        outs = [p.communicate(timeout=240)[0] for p in procs]
    ok = all(p.returncode == 0 and f"OK rank {r}" in out
             for r, (p, out) in enumerate(zip(procs, outs)))
    print(f"NCCL on 2 of {n} GPUs: {'all checks passed' if ok else 'FAILED'} in "
          f"{time.perf_counter() - start:.1f} s")
    for r, out in enumerate(outs):
        print(f"--- rank {r}\n{out.rstrip()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
