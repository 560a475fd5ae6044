"""A rank that raises, dies or hangs makes the others stop with an error naming it (or
the timeout), within a short timeout set here — never a silent hang (also while they wait
for an asynchronous collective that the progress thread drives)."""
from __future__ import annotations

import time

SCRIPT = """
import os, sys, time
from datetime import timedelta
import lightgrad as lg
import lightgrad.distributed as dist

dist.init_process_group("mpi", timeout=timedelta(seconds=float(sys.argv[2])))
r = dist.get_rank()
t = lg.ones(3)
dist.all_reduce(t)
if r == 1:
    if sys.argv[1] == "raise":
        raise ValueError("boom on purpose")
    if sys.argv[1] == "kill":
        os.kill(os.getpid(), 9)
    if sys.argv[1] == "hang":
        time.sleep(60)
work = dist.all_reduce(t, async_op=True)  # driven by the progress thread, waited here
work.wait()
print(f"rank {r} finished")
"""


def _run(mpirun, tmp_path, mode, nproc, timeout):
    start = time.monotonic()
    proc = mpirun(tmp_path, SCRIPT, nproc, mode, str(timeout), timeout=60,
                  env={"LIGHTGRAD_DIST_TIMEOUT": "30"})
    return proc, proc.stdout + proc.stderr, time.monotonic() - start


def test_raising_rank_stops_the_others(tmp_path, mpirun):
    proc, out, took = _run(mpirun, tmp_path, "raise", 3, 20)
    assert proc.returncode != 0 and took < 25, out
    assert "ValueError: boom on purpose" in out
    for r in (0, 2):
        assert f"rank {r}: all_reduce aborted because rank 1 raised ValueError: boom" in out
    assert "finished" not in out


def test_killed_rank_stops_the_others(tmp_path, mpirun):
    proc, out, took = _run(mpirun, tmp_path, "kill", 3, 20)
    assert proc.returncode != 0 and took < 25, out
    assert "rank 1 (pid" in out and "was killed by SIGKILL" in out
    for r in (0, 2):
        assert f"rank {r}: all_reduce aborted because rank 1 died (pid" in out, out
    assert "finished" not in out


def test_hung_rank_ends_in_a_timeout(tmp_path, mpirun):
    proc, out, took = _run(mpirun, tmp_path, "hang", 2, 1.5)
    assert proc.returncode != 0 and took < 25, out
    # collective #2 normally; #1 if the ranks started far apart on a loaded machine
    assert "rank 0: all_reduce (collective #" in out, out
    assert "did not finish within 1.5 s" in out, out
