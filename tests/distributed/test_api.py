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
