"""The NCCL backend on real GPUs (skipped without CuPy, NCCL and a GPU): a one-rank group
everywhere a GPU is, collectives between two GPUs where there are two."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import lightgrad.distributed as dist

pytestmark = pytest.mark.gpu

SCRIPT = """
import sys
import numpy as np
import lightgrad as lg
import lightgrad.distributed as dist
from lightgrad import nn
rank, world, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
dist.init_process_group("nccl", init_method="file://" + path, world_size=world, rank=rank)
dev = f"cuda:{rank}"
t = lg.tensor([1.0, float(rank)], device=dev)
dist.all_reduce(t)
assert t.cpu().tolist() == [float(world), float(sum(range(world)))], t
t = lg.tensor([float(rank)], device=dev); dist.all_reduce(t, op="max")
assert t.item() == world - 1
outs = [lg.zeros(1, device=dev) for _ in range(world)]
dist.all_gather(outs, lg.tensor([float(rank)], device=dev))
assert [o.item() for o in outs] == list(map(float, range(world)))
lg.manual_seed(0)
ddp = nn.parallel.DistributedDataParallel(nn.Linear(4, 2).to(dev))
ddp(lg.ones(3, 4, device=dev)).sum().backward()
print("OK rank", rank)
"""


def _run(tmp_path, world):
    script = tmp_path / "nccl_script.py"
    script.write_text(textwrap.dedent(SCRIPT))
    idfile = tmp_path / "nccl.id"
    procs = [subprocess.Popen([sys.executable, str(script), str(r), str(world), str(idfile)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for r in range(world)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    for r, (p, out) in enumerate(zip(procs, outs)):
        assert p.returncode == 0 and f"OK rank {r}" in out, out


def _gpus() -> int:
    if not dist.is_nccl_available():
        return 0
    import cupy
    return cupy.cuda.runtime.getDeviceCount()


@pytest.mark.skipif(_gpus() < 1, reason="needs CuPy with NCCL and a GPU")
def test_nccl_single_rank(tmp_path):
    _run(tmp_path, 1)


@pytest.mark.skipif(_gpus() < 2, reason="needs CuPy with NCCL and two GPUs")
def test_nccl_two_gpus(tmp_path):
    _run(tmp_path, 2)
