"""``lightgrad run -n N -- script.py args``: start N ranks of a script with MPI's launcher
(``mpiexec`` of the mpich wheel, or any on PATH), each through ``worker.py`` (launcher
variables, killed-rank reporting).

>>> from lightgrad.distributed.launch import mpiexec_command
>>> mpiexec_command(2, ["train.py"], mpiexec="mpiexec")[:3]
['mpiexec', '-n', '2']
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Sequence


def find_mpiexec() -> str:
    """``mpiexec`` next to this Python (the mpich wheel puts it there), else on PATH."""
    here = Path(sysconfig.get_path("scripts")) / "mpiexec"
    if here.exists():
        return str(here)
    found = shutil.which("mpiexec")
    if found is None:
        raise FileNotFoundError("lightgrad run: no mpiexec found; pip install "
                                "'lightgrad[distributed]' (mpi4py + the mpich wheel)")
    return found


def mpiexec_command(nproc: int, argv: Sequence[str], mpiexec: str | None = None,
                    hosts: str | None = None) -> list[str]:
    """The command line that starts ``nproc`` ranks of ``python argv...``."""
    cmd = [mpiexec or find_mpiexec(), "-n", str(nproc)]
    if hosts:
        cmd += ["-hosts", hosts]
    # worker.py by path: stdlib only, so the rank's slot doesn't import lightgrad
    return cmd + [sys.executable, str(Path(__file__).with_name("worker.py")), *argv]


def run(nproc: int, argv: Sequence[str], hosts: str | None = None,
        timeout: float | None = None, threads: int | None = None) -> int:
    """Run ``python argv...`` on ``nproc`` ranks; returns the launcher's exit status.
    ``threads`` sets OMP/OPENBLAS threads per rank (default: cores // nproc, at least 1)."""
    if nproc < 1:
        raise ValueError(f"lightgrad run: -n must be at least 1, got {nproc}")
    if not argv:
        raise ValueError("lightgrad run: give the script to run, e.g. "
                         "lightgrad run -n 2 -- train.py")
    env = dict(os.environ)
    per_rank = str(threads or max(1, (os.cpu_count() or 1) // nproc))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, per_rank)
    if timeout is not None:
        env["LIGHTGRAD_DIST_TIMEOUT"] = str(timeout)
    return subprocess.call(mpiexec_command(nproc, argv, hosts=hosts), env=env)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--nproc", type=int, default=2, help="number of ranks")
    parser.add_argument("--hosts", default=None, help="comma-separated hosts (mpiexec -hosts)")
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS threads per rank (default: cores // nproc)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds a killed rank's slot waits for the others to report")
    parser.add_argument("script", nargs=argparse.REMAINDER,
                        help="-- script.py [args...] (or -m module [args...])")


def main(args: argparse.Namespace) -> int:
    argv = list(args.script)
    if argv and argv[0] == "--":
        argv = argv[1:]
    return run(args.nproc, argv, hosts=args.hosts, timeout=args.timeout, threads=args.threads)
