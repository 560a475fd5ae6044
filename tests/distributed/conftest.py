"""Fixture of the distributed tests: ``mpirun(tmp_path, source, nproc)`` runs a script on N
ranks through ``lightgrad run``'s command line (mpiexec + worker); tests that use it skip
when mpi4py or mpiexec is missing."""
from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest


@pytest.fixture
def mpirun():
    pytest.importorskip("mpi4py")
    from lightgrad.distributed.launch import find_mpiexec
    try:
        find_mpiexec()
    except FileNotFoundError:
        pytest.skip("no mpiexec (pip install mpich)")
    return launch


@pytest.fixture
def mpi_ok():
    return assert_ok


def launch(tmp_path: Path, source: str, nproc: int, *args: str, timeout: float = 60,
           env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``source`` (a script) on ``nproc`` ranks; returns the finished process."""
    from lightgrad.distributed.launch import find_mpiexec, mpiexec_command
    mpiexec = find_mpiexec()
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source))
    full_env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                    **(env or {}))
    cmd = mpiexec_command(nproc, [str(script), *args], mpiexec=mpiexec)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env)


def assert_ok(proc: subprocess.CompletedProcess, nproc: int) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    for r in range(nproc):
        assert f"OK rank {r}" in proc.stdout, out
