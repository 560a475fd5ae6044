"""lightgrad.distributed without a job: imports without mpi4py/CuPy, clear errors before
init_process_group and for bad arguments (in process, no MPI launch)."""
from __future__ import annotations

import subprocess
import sys

import pytest

import lightgrad as lg
import lightgrad.distributed as dist


def test_import_needs_neither_mpi4py_nor_cupy():
    code = ("import sys; sys.modules['mpi4py'] = None; sys.modules['cupy'] = None\n"
            "import lightgrad.distributed as dist\n"
            "from lightgrad.nn.parallel import DistributedDataParallel\n"
            "try:\n"
            "    dist.init_process_group('mpi')\n"
            "except ImportError as e:\n"
            "    assert \"pip install 'lightgrad[distributed]'\" in str(e), e\n"
            "    print('ok')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.stdout.strip() == "ok", proc.stderr


def test_errors_before_init_and_bad_arguments():
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match="all_reduce: the default process group is not "
                                           "initialized"):
        dist.all_reduce(lg.ones(2))
    with pytest.raises(RuntimeError, match="get_rank"):
        dist.get_rank()
    with pytest.raises(RuntimeError, match="DistributedDataParallel"):
        lg.nn.parallel.DistributedDataParallel(lg.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="unknown backend 'tcp'"):
        dist.init_process_group("tcp")
    with pytest.raises(ValueError, match="timeout must be positive"):
        dist.init_process_group("mpi", timeout=0)
    assert not dist.is_initialized()
    assert dist.ReduceOp("avg") is dist.ReduceOp.AVG
    assert isinstance(dist.is_available(), bool)


@pytest.mark.skipif(dist.is_nccl_available(), reason="NCCL is available here")
def test_nccl_backend_without_gpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match="'nccl' backend needs CuPy with NCCL and a GPU"):
        dist.init_process_group("nccl")
    assert not dist.is_initialized()
    assert dist.is_nccl_available() is False


def test_subgroups_and_objects_need_a_job():
    for call in (lambda: dist.new_group([0]), lambda: dist.reduce(lg.ones(1)),
                 lambda: dist.send(lg.ones(1), dst=1),
                 lambda: dist.all_gather_object([None], 1)):
        with pytest.raises(RuntimeError, match="not initialized"):
            call()


def test_progress_thread_completes_requests_and_reports_errors():
    from lightgrad.distributed.progress import ProgressThread

    class Request:  # completes at its n-th test, or raises there
        def __init__(self, n, error=None):
            self.n, self.error, self.tests = n, error, 0

        def Test(self):
            self.tests += 1
            if self.tests >= self.n and self.error:
                raise self.error
            return self.tests >= self.n

    thread = ProgressThread()
    reqs = [Request(1), Request(5), Request(20)]
    done = [thread.track(q) for q in reqs]
    assert thread.wait_idle(timeout=10.0)
    assert all(d() for d in done) and [q.tests for q in reqs] == [1, 5, 20]
    assert thread.polls == 26
    failing = thread.track(Request(3, error=ValueError("truncated")))
    assert failing.event.wait(10.0)
    with pytest.raises(ValueError, match="truncated"):
        failing()
    thread.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        thread.track(Request(1))
