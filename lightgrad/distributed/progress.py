"""A progress thread for MPI's nonblocking collectives.

MPI moves the data of a nonblocking collective (``Iallreduce``, ...) only while some
thread is inside an MPI call: a bucket launched during backward makes no progress while
the main thread computes the layers below, and is then mostly done at the end of backward,
when the main thread finally waits for it. The progress thread owns the requests of
``async_op=True`` collectives and polls them (``MPI_Test``) every ~0.1 ms, sleeping in
between so it takes little CPU from the computation. mpi4py releases the GIL inside MPI
calls and NumPy inside its kernels, so the polls run while backward computes. It needs
MPI at ``MPI_THREAD_MULTIPLE`` (mpi4py's default), since the main thread launches new
collectives meanwhile; at a lower thread level the backend does without it (the requests
progress when the main thread tests or waits for them).

Only the progress thread tests a request it owns (MPI forbids completing one request from
two threads); the main thread reads the ``threading.Event`` it sets.

>>> import threading
>>> class Done:                      # a request that completes at its second test
...     calls = 0
...     def Test(self):
...         self.calls += 1
...         return self.calls >= 2
>>> p = ProgressThread()
>>> is_done = p.track(Done())
>>> p.wait_idle(timeout=5.0)
True
>>> is_done()
True
>>> p.stop()
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

MIN_INTERVAL_S = 5e-5   # poll period right after a launch or a completion
MAX_INTERVAL_S = 5e-4   # backed off to this while nothing completes


class ProgressThread:
    """Polls tracked MPI requests in a daemon thread until each completes."""

    def __init__(self) -> None:
        self._pending: list[tuple[Any, threading.Event]] = []
        self._cond = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._fresh = False  # a request arrived: poll at the short period again
        self.error: BaseException | None = None  # what a Test raised (ends the thread)
        self.polls = 0  # MPI_Test calls made (for benchmarks and tests)

    def track(self, request: Any) -> Callable[[], bool]:
        """Hand ``request`` (anything with ``Test() -> bool``) to the thread; returns a
        function telling whether it has completed (it raises what MPI raised)."""
        done = threading.Event()
        with self._cond:
            if self._stopped:
                raise RuntimeError("ProgressThread.track: the thread was stopped")
            self._pending.append((request, done))
            self._fresh = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True,
                                                name="lightgrad-mpi-progress")
                self._thread.start()
            self._cond.notify()

        def is_done() -> bool:
            if self.error is not None:
                raise self.error
            return done.is_set()
        is_done.event = done  # type: ignore[attr-defined]  (Work.wait sleeps on it)
        return is_done

    def wait_idle(self, timeout: float) -> bool:
        """Block until no request is pending (True) or ``timeout`` seconds passed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.01))
        return True

    def stop(self) -> None:
        """End the thread (requests still pending are abandoned)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)

    def _loop(self) -> None:
        interval = MIN_INTERVAL_S
        while True:
            with self._cond:
                while not self._pending and not self._stopped:
                    self._cond.wait()
                    interval = MIN_INTERVAL_S
                if self._stopped:
                    return
                if self._fresh:
                    self._fresh, interval = False, MIN_INTERVAL_S
                pending = list(self._pending)
            finished = []
            try:
                for request, done in pending:
                    self.polls += 1
                    if request.Test():
                        done.set()
                        finished.append(request)
            except BaseException as e:  # noqa: BLE001  (reported by the is_done functions)
                self.error = e
                with self._cond:
                    for _, waiting in self._pending:
                        waiting.set()  # wake the waits: is_done raises the error
                    self._pending = []
                    self._cond.notify_all()
                return
            if finished:
                with self._cond:
                    self._pending = [(q, e) for q, e in self._pending
                                     if not e.is_set()]
                    self._cond.notify_all()
                interval = MIN_INTERVAL_S
            else:
                interval = min(MAX_INTERVAL_S, interval * 1.5)
            time.sleep(interval)
