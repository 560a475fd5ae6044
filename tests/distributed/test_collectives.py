"""Each collective against NumPy, on every rank, for 2 and 3 processes."""
from __future__ import annotations

import pytest


SCRIPT = """
import numpy as np
import lightgrad as lg
import lightgrad.distributed as dist
from lightgrad.distributed import ReduceOp

dist.init_process_group("mpi")
r, n = dist.get_rank(), dist.get_world_size()
assert dist.is_initialized() and dist.get_backend() == "mpi"

def data(rank, shape, dtype):
    rng = np.random.default_rng(100 + rank)
    if np.dtype(dtype).kind == "f":
        return rng.uniform(0.5, 1.5, shape).astype(dtype)
    return rng.integers(-5, 6, shape).astype(dtype)

every = lambda shape, dtype: [data(k, shape, dtype) for k in range(n)]
for dtype in (np.float64, np.float32, np.int64):
    vals = every((3, 4), dtype)
    expected = {"sum": np.sum(vals, 0), "max": np.max(vals, 0), "min": np.min(vals, 0),
                "product": np.prod(vals, 0)}
    if np.dtype(dtype).kind == "f":
        expected["avg"] = np.sum(vals, 0) / n
    tol = 1e-6 if dtype == np.float32 else 0
    for name, want in expected.items():
        t = lg.tensor(vals[r])
        dist.all_reduce(t, op=ReduceOp(name))
        np.testing.assert_allclose(t.numpy(), want, rtol=tol, err_msg=f"{name} {dtype}")

# async, a non-contiguous view written back in place, float16 staging
vals = every((4, 3), np.float64)
base = lg.tensor(vals[r])
view = base.t()
work = dist.all_reduce(view, async_op=True)
work.wait()
assert work.is_completed()
np.testing.assert_allclose(base.numpy(), np.sum(vals, 0), rtol=1e-12)
half = lg.tensor(every((5,), np.float16)[r])
dist.all_reduce(half, op="max")
np.testing.assert_array_equal(half.numpy(), np.max(every((5,), np.float16), 0))

# broadcast from the last rank
t = lg.tensor(data(r, (2, 3), np.float32))
dist.broadcast(t, src=n - 1)
np.testing.assert_array_equal(t.numpy(), data(n - 1, (2, 3), np.float32))

# all_gather and all_gather_into_tensor
outs = [lg.zeros(2, 2, dtype=lg.int64) for _ in range(n)]
dist.all_gather(outs, lg.tensor(data(r, (2, 2), np.int64)))
for k in range(n):
    np.testing.assert_array_equal(outs[k].numpy(), data(k, (2, 2), np.int64))
big = lg.zeros(2 * n, 3)
dist.all_gather_into_tensor(big, lg.tensor(data(r, (2, 3), np.float32)))
np.testing.assert_array_equal(big.numpy(), np.concatenate(every((2, 3), np.float32)))

# reduce_scatter (list) and reduce_scatter_tensor
lists = [[data(10 * k + j, (3,), np.float64) for j in range(n)] for k in range(n)]
out = lg.zeros(3, dtype=lg.float64)
dist.reduce_scatter(out, [lg.tensor(a) for a in lists[r]], op=ReduceOp.SUM)
np.testing.assert_allclose(out.numpy(), sum(lists[k][r] for k in range(n)), rtol=1e-12)
flat = every((n * 2,), np.float64)
out = lg.zeros(2, dtype=lg.float64)
dist.reduce_scatter_tensor(out, lg.tensor(flat[r]), op="avg")
np.testing.assert_allclose(out.numpy(), np.mean(flat, 0)[2 * r:2 * r + 2], rtol=1e-12)

# bad input: clear errors, raised on every rank before any communication
for call, kind in ((lambda: dist.all_gather([lg.zeros(1)], lg.zeros(1)), ValueError),
                   (lambda: dist.broadcast(lg.zeros(1), src=n), ValueError),
                   (lambda: dist.all_reduce(lg.zeros(1, dtype=lg.int64), op="avg"), TypeError),
                   (lambda: dist.all_reduce(lg.zeros(1), op="median"), ValueError)):
    try:
        call()
    except kind as e:
        assert str(e).split(":")[0] in ("all_gather", "broadcast", "all_reduce"), e
    else:
        raise AssertionError("no error")
dist.barrier()
dist.destroy_process_group()
assert not dist.is_initialized()
print(f"OK rank {r}")
"""


@pytest.mark.parametrize("nproc", [2, 3])
def test_collectives_match_numpy(tmp_path, nproc, mpirun, mpi_ok):
    mpi_ok(mpirun(tmp_path, SCRIPT, nproc), nproc)


def test_lightgrad_run_command(tmp_path, mpirun):
    import subprocess
    import sys
    script = tmp_path / "hello.py"
    script.write_text("import os, sys, lightgrad as lg, lightgrad.distributed as dist\n"
                      "dist.init_process_group()\n"
                      "t = lg.ones(1); dist.all_reduce(t)\n"
                      "r, n = os.environ['RANK'], os.environ['WORLD_SIZE']\n"
                      "open(f'{sys.argv[1]}/{r}.txt', 'w').write(f'{r} of {n}: {t.item()}')\n")
    proc = subprocess.run([sys.executable, "-m", "lightgrad.cli", "run", "-n", "2", "--",
                           str(script), str(tmp_path)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for r in range(2):
        assert (tmp_path / f"{r}.txt").read_text() == f"{r} of 2: 2.0"
