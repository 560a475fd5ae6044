"""``Work``: a collective in flight. ``wait()`` finishes it, polling so that a dead or failed
peer, or the group's timeout, ends the wait with ``DistributedError`` instead of a hang.

>>> import lightgrad.distributed as dist    # doctest: +SKIP
>>> work = dist.all_reduce(t, async_op=True)   # doctest: +SKIP
>>> work.wait()                             # doctest: +SKIP
True
"""
from __future__ import annotations

import time
from typing import Any, Callable

from .errors import DistributedError


class Work:
    """Handle of an asynchronous collective (PyTorch's ``Work``): ``is_completed()`` polls it
    once (and drives MPI's progress), ``wait()`` blocks until it is done and has written its
    result into the output tensors."""

    def __init__(self, group: Any, what: str, test: Callable[[], bool],
                 finish: Callable[[], None] | None = None):
        self.group, self.what = group, what
        self._test, self._finish = test, finish
        self._done = False
        self.seq = group.next_seq()

    def is_completed(self) -> bool:
        """Poll once: True when the data has arrived (the result is written by ``wait``)."""
        if self._done:
            return True
        return bool(self._test())

    def wait(self, timeout: Any = None) -> bool:
        """Block until the collective is done (or raise ``DistributedError``: a peer died or
        failed, or ``timeout`` — default: the group's — passed)."""
        if self._done:
            return True
        limit = self.group.timeout if timeout is None else _seconds(timeout)
        start = time.monotonic()
        spins = 0
        # a request the progress thread drives: sleep on its event (no spinning, which
        # would take the core from the computation of a peer rank on a small machine)
        event = getattr(self._test, "event", None)
        while not self._poll():
            if event is not None:
                event.wait(0.05)
                if self._poll():
                    break
            spins += 1
            try:
                self.group.check_faults(self.what)
            except DistributedError as e:
                self.group.abandon(str(e))
                raise
            elapsed = time.monotonic() - start
            if elapsed > limit:
                self.group.abandon(f"{self.what} (collective #{self.seq}) timed out after "
                                   f"{limit:g} s")
                raise DistributedError(
                    f"rank {self.group.rank}: {self.what} (collective #{self.seq}) did not "
                    f"finish within {limit:g} s: a peer rank is hung, died on another host, "
                    f"or is not calling the same collectives in the same order")
            if spins > 200:  # short waits spin; long ones sleep a little (cores are shared)
                time.sleep(min(0.002, 1e-5 * (spins - 200)))
        self._done = True
        if self._finish is not None:
            self._finish()
        return True

    def _poll(self) -> bool:
        """One test; an MPI error (the progress thread's too) caused by a peer that died or
        failed is reported as that peer's failure."""
        try:
            return bool(self._test())
        except DistributedError:
            raise
        except Exception as e:
            try:
                if self.group.monitor is not None:
                    self.group.monitor.check(self.what, force=True)
            except DistributedError as fault:
                self.group.abandon(str(fault))
                raise fault from e
            self.group.abandon(f"{self.what} failed: {e}")
            raise

    def __repr__(self) -> str:
        return f"<Work {self.what} #{self.seq} {'done' if self._done else 'pending'}>"


def _seconds(timeout: Any) -> float:
    return timeout.total_seconds() if hasattr(timeout, "total_seconds") else float(timeout)
