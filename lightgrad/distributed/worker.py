"""One rank of ``lightgrad run``: ``python -m lightgrad.distributed.worker script.py args``.

It sets PyTorch's launcher variables (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE) from
MPI's, runs the script in a child process and waits for it. When the script is killed by
a signal, it reports which rank died and keeps the rank's slot alive, so the other ranks
detect the death and stop with an error naming this rank (the MPI launcher would otherwise
kill them at once, silently); after ``LIGHTGRAD_DIST_TIMEOUT`` seconds it gives up.

>>> from lightgrad.distributed.worker import launcher_env
>>> launcher_env({"PMI_RANK": "1", "PMI_SIZE": "2"})["RANK"]
'1'
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


def launcher_env(env: dict) -> dict:
    """PyTorch's launcher variables from MPI's (MPICH/Hydra and Open MPI names)."""
    def pick(*names: str, default: str = "0") -> str:
        return next((env[n] for n in names if n in env), default)

    out = dict(env)
    out.setdefault("RANK", pick("PMI_RANK", "OMPI_COMM_WORLD_RANK"))
    out.setdefault("WORLD_SIZE", pick("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", default="1"))
    out.setdefault("LOCAL_RANK", pick("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK"))
    out.setdefault("LOCAL_WORLD_SIZE", pick("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE",
                                            default="1"))
    return out


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m lightgrad.distributed.worker script.py [args...]",
              file=sys.stderr)
        return 2
    env = launcher_env(dict(os.environ))
    # the MPI launcher's file descriptors (PMI) must reach the script
    child = subprocess.Popen([sys.executable, *argv], env=env, close_fds=False)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda s, _f: child.send_signal(s))
    rc = child.wait()
    if rc >= 0:
        return rc
    name = signal.Signals(-rc).name if -rc in signal.Signals._value2member_map_ else -rc
    print(f"lightgrad run: rank {env['RANK']} (pid {child.pid}) was killed by {name}",
          file=sys.stderr, flush=True)
    time.sleep(float(os.environ.get("LIGHTGRAD_DIST_TIMEOUT", "300")))
    return 128 - rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
