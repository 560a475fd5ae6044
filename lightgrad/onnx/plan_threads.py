"""Threads of a CPU replay plan (``plan.py``): BLAS on one thread, big products split by us.

OpenBLAS splits every product over its threads, which spin while they wait: for the small
products of a batch-1 model the start-up costs more than it saves, and on a machine whose
cores other processes keep busy a spinning thread that waits for a core stalls the whole
product (measured on 2 busy cores: a transformer block at batch 32 took 15x the wall
time with 2 OpenBLAS threads than with 1). So while a plan runs, OpenBLAS uses one thread
(``PlanThreads.enter`` / ``exit`` set and restore its count), and the steps whose products
are large (``LARGE_PRODUCT`` multiply-adds or more) split their rows (or their batch) into
parts that the caller and a pool of ``lightgrad.set_num_threads(n) - 1`` threads share out
(``split_step``; NumPy and ctypes release the GIL). Pool threads sleep, not spin, between
calls, and the caller never waits for one that hasn't started: on a machine whose cores
are all busy it does the parts itself.

>>> t = PlanThreads()
>>> t.enter(); t.count >= 1
True
>>> t.exit()
"""
from __future__ import annotations

import ctypes
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from .. import threads

__all__ = ["PlanThreads", "LARGE_PRODUCT", "split_step", "ranges"]

LARGE_PRODUCT = 8_000_000
"""Multiply-adds from which a product is split over threads (smaller ones run whole on
one thread: e.g. the transformer block's (32x128)@(128x384) at batch 1)."""

_pool: dict[int, ThreadPoolExecutor] = {}
_pool_lock = threading.Lock()


def _workers(n: int) -> ThreadPoolExecutor:
    with _pool_lock:
        pool = _pool.get(n)
        if pool is None:
            pool = _pool[n] = ThreadPoolExecutor(n, thread_name_prefix="lightgrad-plan")
        return pool


class PlanThreads:
    """The thread count of one plan call: ``enter`` reads lightgrad's count into ``count``
    and sets OpenBLAS to one thread; ``exit`` puts OpenBLAS back."""

    def __init__(self) -> None:
        self.setter = threads._function(threads._SETTERS)
        self.getter = threads._function(threads._GETTERS)
        if self.getter is not None:
            self.getter.restype = ctypes.c_int
        self.count = 1
        self._saved: int | None = None

    def enter(self) -> None:
        if self.setter is None or self.getter is None:
            self.count = 1
            return
        saved = int(self.getter())
        self.count = max(1, saved)
        if saved != 1:
            self.setter(1)
            self._saved = saved

    def exit(self) -> None:
        if self._saved is not None:
            self.setter(self._saved)
            self._saved = None


def split_step(whole: Callable[[], Any], parts: Callable[[int], list],
               ctx: PlanThreads) -> Callable[[], None]:
    """A step that runs ``whole()`` on one thread, or shares out the ``parts(k)`` callables
    (made once per ``k``; more parts than threads) when ``ctx.count = k`` threads are
    allowed: the caller and ``k - 1`` pool threads each take the next part not yet taken
    until none is left, and the caller then waits only for parts a pool thread is running.
    A pool thread that a busy machine doesn't schedule in time finds nothing left to do,
    so the step never waits for a core (the caller does all the parts itself)."""
    made: dict[int, list] = {}

    def run() -> None:
        k = ctx.count
        if k <= 1:
            whole()
            return
        todo = made.get(k)
        if todo is None:
            todo = made[k] = parts(k)
        if len(todo) <= 1:
            whole()
            return
        share = _Share(todo)
        pool = _workers(k - 1)
        for _ in range(k - 1):
            pool.submit(share.work)
        share.work()
        share.wait()
    return run


class _Share:
    """The parts of one step's call, handed out one at a time to whichever thread asks."""

    __slots__ = ("parts", "next", "running", "error", "cond")

    def __init__(self, parts: list) -> None:
        self.parts, self.next, self.running, self.error = parts, 0, 0, None
        self.cond = threading.Condition(threading.Lock())

    def work(self) -> None:
        parts, cond = self.parts, self.cond
        while True:
            with cond:
                i = self.next
                if i >= len(parts) or self.error is not None:
                    return
                self.next, self.running = i + 1, self.running + 1
            try:
                parts[i]()
            except BaseException as e:  # noqa: BLE001 - re-raised by the caller
                with cond:
                    self.error = self.error or e
            finally:
                with cond:
                    self.running -= 1
                    if self.running == 0:
                        cond.notify_all()

    def wait(self) -> None:
        with self.cond:
            while self.running:
                self.cond.wait()
        if self.error is not None:
            raise self.error


def ranges(n: int, k: int) -> list[slice]:
    """``range(n)`` cut into at most ``k`` nearly equal non-empty slices."""
    k = max(1, min(k, n))
    bounds = [n * i // k for i in range(k + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]
