"""Fault detection: a rank that dies or raises must stop the others with a clear error.

Three mechanisms, all checked while a rank waits for a collective (``Work.wait``):

* notices: a rank that fails with an uncaught exception sends ``(origin, text)`` to every
  peer on a control communicator before exiting; a waiting peer raises
  ``DistributedError`` naming the origin rank.
* liveness: at start-up the ranks exchange (host, pid); a waiting rank checks that peers on
  its own host still exist (``lightgrad run`` keeps a killed rank's slot alive so the
  others can report it instead of being torn down silently by the launcher).
* the timeout of the process group: anything else (a hung rank, a rank on another host
  that died, mismatched collectives) ends in an error after ``timeout``.

>>> from lightgrad.distributed.faults import pid_alive
>>> import os
>>> pid_alive(os.getpid())
True
"""
from __future__ import annotations

import os
import pickle
import socket
import sys
import time
from typing import Any

from .errors import DistributedError

NOTICE_TAG = 7001
_CHECK_PERIOD_S = 0.05
_LINGER_S = 10.0  # longest wait for the peers to report before exiting on an error


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    except OSError:  # no /proc (macOS): ask the kernel
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True


class FaultMonitor:
    """Notices and liveness of the peers of one rank (MPI control communicator ``ctrl``)."""

    def __init__(self, ctrl: Any, rank: int, size: int):
        self.ctrl, self.rank, self.size = ctrl, rank, size
        self.host = socket.gethostname()
        self.peers: list[tuple[str, int]] = ctrl.allgather((self.host, os.getpid()))
        # peers whose process this one can see (same host, same pid namespace)
        self.watched = [r for r, (host, pid) in enumerate(self.peers)
                        if r != rank and host == self.host and pid_alive(pid)]
        self.heard: dict[int, tuple[int, str]] = {}  # sender -> (origin rank, text)
        self._sends: list[Any] = []
        self._last_check = 0.0

    # -- receiving
    def poll_notices(self) -> None:
        from mpi4py import MPI
        status = MPI.Status()
        while self.ctrl.Iprobe(source=MPI.ANY_SOURCE, tag=NOTICE_TAG, status=status):
            sender = status.Get_source()
            self.heard[sender] = pickle.loads(self.ctrl.recv(source=sender, tag=NOTICE_TAG))

    def dead_peers(self) -> list[int]:
        """Ranks on this host whose process is gone."""
        return [r for r in self.watched if not pid_alive(self.peers[r][1])]

    def check(self, what: str, force: bool = False) -> None:
        """Raise ``DistributedError`` if a peer sent a failure notice or died."""
        now = time.monotonic()
        if not force and now - self._last_check < _CHECK_PERIOD_S:
            return
        self._last_check = now
        self.poll_notices()
        if self.heard:
            # prefer the notice a failing rank sent about itself over relayed ones
            own = [o for sender, (o, _) in self.heard.items() if sender == o]
            origin = min(own) if own else min(o for o, _ in self.heard.values())
            text = next(t for o, t in self.heard.values() if o == origin)
            raise DistributedError(f"rank {self.rank}: {what} aborted because rank {origin} "
                                   f"{text}", rank=origin, reason=text)
        dead = self.dead_peers()
        if dead:
            host, pid = self.peers[dead[0]]
            reason = f"died (pid {pid} on {host})"
            raise DistributedError(f"rank {self.rank}: {what} aborted because rank {dead[0]} "
                                   f"{reason}", rank=dead[0], reason=reason)

    # -- sending
    def notify(self, origin: int, text: str) -> None:
        """Tell every peer that this rank stops because ``origin`` failed with ``text``."""
        payload = pickle.dumps((origin, text[:2000]))
        for r in range(self.size):
            if r != self.rank:
                self._sends.append(self.ctrl.isend(payload, dest=r, tag=NOTICE_TAG))

    def linger(self, timeout: float) -> None:
        """Before exiting on an error: wait (at most ``timeout`` seconds) until every peer
        has stopped too (sent its own notice) or died, so each can print its error before
        the launcher tears the job down."""
        deadline = time.monotonic() + timeout
        dead: set[int] = set()
        while time.monotonic() < deadline:
            self.poll_notices()
            if time.monotonic() - self._last_check > 0.2:
                self._last_check = time.monotonic()
                dead = set(self.dead_peers())
            if all(r == self.rank or r in self.heard or r in dead for r in range(self.size)):
                break
            time.sleep(0.005)


def exit_after_failure(monitor: FaultMonitor, exc: BaseException, timeout: float) -> None:
    """Uncaught exception on this rank: notify the peers, linger, exit without
    ``MPI_Finalize`` (which could hang on the collectives left unfinished)."""
    if isinstance(exc, DistributedError) and exc.rank is not None:
        origin, text = exc.rank, exc.reason
    else:
        origin, text = monitor.rank, f"raised {type(exc).__name__}: {exc}"
    try:
        monitor.notify(origin, text)
        monitor.linger(min(timeout, _LINGER_S))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
