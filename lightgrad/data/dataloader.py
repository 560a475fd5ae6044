"""DataLoader: iterate over a dataset in (optionally shuffled) mini-batches.

>>> import lightgrad as lg
>>> from lightgrad.data import TensorDataset, Generator
>>> ds = TensorDataset(lg.arange(10).float(), lg.arange(10))
>>> loader = DataLoader(ds, batch_size=4, shuffle=True, generator=Generator().manual_seed(0))
>>> [x.shape for x, y in loader], len(loader)
([(4,), (4,), (2,)], 3)

With ``num_workers > 0`` batches are loaded in worker processes and come back in the
same order as with ``num_workers=0``.
"""
from __future__ import annotations

import collections.abc
import multiprocessing
import queue
import sys
import traceback
import weakref
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from ..tensor import Tensor
from .dataset import Dataset
from .generator import Generator, as_numpy_rng
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler


def default_collate(batch: Sequence[Any]) -> Any:
    """Merge a list of samples into a batch: tensors and NumPy arrays are stacked into a
    tensor along a new first dim, Python ints/floats/bools become int64/float64/bool
    tensors, strings stay a list, and dicts, tuples and lists are collated field by field
    (tuples and lists come back as lists, namedtuples as their own type).

    >>> import lightgrad as lg
    >>> default_collate([(lg.zeros(2), 1), (lg.ones(2), 0)])
    [tensor([[0., 0.],
            [1., 1.]]), tensor([1, 0])]
    """
    from ..creation import from_numpy, tensor
    from ..functions import stack
    if not batch:
        raise ValueError("default_collate: got an empty batch")
    elem = batch[0]
    if isinstance(elem, Tensor):
        return stack(list(batch))
    if isinstance(elem, np.ndarray):
        try:
            return from_numpy(np.stack(batch))
        except ValueError as err:
            shapes = sorted({str(np.shape(b)) for b in batch})
            raise RuntimeError(f"default_collate: can't stack NumPy arrays of shapes "
                               f"{', '.join(shapes)} ({err})") from None
    if isinstance(elem, np.generic):
        return tensor(np.array(batch))
    if isinstance(elem, bool):
        return tensor(list(batch), dtype="bool")
    if isinstance(elem, int):
        return tensor(list(batch), dtype="int64")
    if isinstance(elem, float):
        return tensor(list(batch), dtype="float64")
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        return {key: default_collate([sample[key] for sample in batch]) for key in elem}
    if isinstance(elem, collections.abc.Sequence):
        if any(len(sample) != len(elem) for sample in batch):
            raise RuntimeError("default_collate: each sample in the batch should have the "
                               f"same number of fields, got {sorted({len(s) for s in batch})}")
        fields = [default_collate(list(column)) for column in zip(*batch)]
        return type(elem)(*fields) if hasattr(elem, "_fields") else fields
    raise TypeError(f"default_collate: samples must hold tensors, NumPy arrays, numbers, "
                    f"strings, dicts or sequences; found {type(elem).__name__}")


@dataclass(frozen=True)
class WorkerInfo:
    """What ``get_worker_info()`` returns inside a ``DataLoader`` worker process."""
    id: int
    num_workers: int
    seed: int
    dataset: Any


_worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """The current worker's ``WorkerInfo`` in a ``DataLoader`` worker process, ``None``
    in the main process.

    >>> get_worker_info() is None
    True
    """
    return _worker_info


class _WorkerError:
    """An exception raised in a worker, carried back to the main process."""

    def __init__(self, worker_id: int, exc: BaseException):
        self.exc_type = type(exc)
        self.message = (f"Caught {type(exc).__name__} in DataLoader worker process "
                        f"{worker_id}.\nOriginal " + traceback.format_exc())

    def reraise(self) -> None:
        try:
            err = self.exc_type(self.message)
        except Exception:
            err = RuntimeError(self.message)
        raise err


class _Fetcher:
    """What a worker process needs to turn indices into a batch (not the loader itself, so
    that a persistent worker pool doesn't keep its loader alive)."""

    def __init__(self, loader: "DataLoader"):
        self.dataset, self.collate_fn = loader.dataset, loader.collate_fn
        self.auto_batch = loader.batch_sampler is not None
        self.worker_init_fn, self.num_workers = loader.worker_init_fn, loader.num_workers

    def __call__(self, indices: Any) -> Any:
        if not self.auto_batch:  # auto-batching off: one sample at a time
            sample = self.dataset[indices]
            return sample if self.collate_fn is None else self.collate_fn(sample)
        indices = [int(i) for i in indices]
        if self.collate_fn is None and hasattr(self.dataset, "get_batch"):
            return self.dataset.get_batch(indices)
        samples = [self.dataset[i] for i in indices]
        return (self.collate_fn or default_collate)(samples)


def _worker_loop(fetch: _Fetcher, index_queue: Any, result_queue: Any,
                 worker_id: int, seed: int) -> None:
    global _worker_info
    from ..creation import manual_seed
    _worker_info = WorkerInfo(worker_id, fetch.num_workers, seed, fetch.dataset)
    manual_seed(seed % 2**63)
    np.random.seed(seed % 2**32)
    try:
        if fetch.worker_init_fn is not None:
            fetch.worker_init_fn(worker_id)
    except Exception as exc:  # report it with the first task, then stop
        result_queue.put((None, -1, _WorkerError(worker_id, exc)))
        return
    while True:
        task = index_queue.get()
        if task is None:
            return
        epoch, idx, indices = task
        try:
            data = fetch(indices)
        except Exception as exc:
            data = _WorkerError(worker_id, exc)
        result_queue.put((epoch, idx, data))


class _WorkerPool:
    """``num_workers`` processes, each with its own index queue, sharing one result queue.

    Tasks and results carry an epoch number, so a persistent pool reused by the next epoch
    drops the results still in flight from an epoch that was abandoned early.
    """

    def __init__(self, loader: "DataLoader"):
        ctx = loader.multiprocessing_context or _mp_context()
        base_seed = int(np.random.SeedSequence().entropy % 2**62)
        fetch = _Fetcher(loader)
        self.epoch = 0
        self.result_queue = ctx.Queue()
        self.index_queues, self.workers = [], []
        for wid in range(loader.num_workers):
            iq = ctx.Queue()
            iq.cancel_join_thread()
            w = ctx.Process(target=_worker_loop, daemon=True,
                            args=(fetch, iq, self.result_queue, wid, base_seed + wid))
            w.start()
            self.index_queues.append(iq)
            self.workers.append(w)

    @property
    def pids(self) -> list[int]:
        return [w.pid for w in self.workers]

    def alive(self) -> bool:
        return all(w.is_alive() for w in self.workers)

    def shutdown(self) -> None:
        for iq in self.index_queues:
            with suppress(Exception):
                iq.put(None)
        for w in self.workers:
            w.join(timeout=5)
            if w.is_alive():
                w.terminate()
        self.result_queue.cancel_join_thread()
        self.result_queue.close()
        self.workers = []


def _mp_context() -> Any:
    if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


class DataLoader:
    """Batches of ``dataset``, with PyTorch's ``torch.utils.data.DataLoader`` arguments.

    Indices come from ``sampler`` (default: ``SequentialSampler``, or ``RandomSampler``
    with ``shuffle=True``) grouped by ``BatchSampler(sampler, batch_size, drop_last)``, or
    straight from ``batch_sampler``; ``batch_size=None`` yields single samples.
    ``generator`` (a ``lightgrad.data.Generator`` or ``numpy.random.Generator``) fixes
    the shuffling; without one, each epoch's order is drawn from lightgrad's global
    generator, so ``lightgrad.manual_seed`` makes runs repeat. ``collate_fn`` merges a
    list of samples (default: ``default_collate``, or the dataset's ``get_batch`` when it
    has one). ``num_workers > 0`` loads batches in that many worker processes (each calls
    ``worker_init_fn(worker_id)`` first and keeps ``prefetch_factor`` batches in flight);
    batches come back in sampler order, equal to ``num_workers=0``'s. ``timeout`` (seconds,
    0 = wait forever) bounds the wait for a worker's batch. ``multiprocessing_context``
    (a start-method name or context) picks how workers start (default: ``fork`` on
    Linux). ``pin_memory`` is accepted and ignored (CPU only). With
    ``persistent_workers=True`` the worker processes outlive an epoch and serve the next
    ``iter()`` too (``worker_init_fn`` runs once per worker); they stop when the loader is
    garbage-collected, or after an epoch that raised.

    >>> import lightgrad as lg
    >>> from lightgrad.data import TensorDataset
    >>> ds = TensorDataset(lg.arange(6))
    >>> [b[0].tolist() for b in DataLoader(ds, batch_size=4)]
    [[0, 1, 2, 3], [4, 5]]
    >>> [b[0].tolist() for b in DataLoader(ds, batch_size=4, num_workers=2)]
    [[0, 1, 2, 3], [4, 5]]
    >>> len(DataLoader(ds, batch_sampler=[[0, 1], [2], [3, 4, 5]]))
    3
    """

    def __init__(self, dataset: Dataset, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler: Sampler | Iterable[int] | None = None,
                 batch_sampler: Sampler | Iterable[Sequence[int]] | None = None,
                 num_workers: int = 0, collate_fn: Callable[[list], Any] | None = None,
                 pin_memory: bool = False, drop_last: bool = False, timeout: float = 0,
                 worker_init_fn: Callable[[int], None] | None = None,
                 multiprocessing_context: Any = None,
                 generator: "Generator | np.random.Generator | None" = None, *,
                 prefetch_factor: int | None = None, persistent_workers: bool = False):
        if batch_size is not None and (not isinstance(batch_size, (int, np.integer))
                                       or isinstance(batch_size, bool) or batch_size <= 0):
            raise ValueError(f"DataLoader: batch_size must be a positive int, got "
                             f"{batch_size!r} (or None to disable batching)")
        if not isinstance(num_workers, (int, np.integer)) or num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 "
                             "to disable multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in "
                             "multiprocessing.let num_workers > 0 to enable multiprocessing, "
                             "otherwise set prefetch_factor to None.")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        if prefetch_factor is not None and prefetch_factor < 0:
            raise ValueError("prefetch_factor option should be non-negative")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        if generator is not None:
            as_numpy_rng(generator)  # type check now rather than at the first epoch
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with "
                                 "batch_size, shuffle, sampler, and drop_last")
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually "
                             "exclusive with drop_last")
        if sampler is None:
            sampler = (RandomSampler(dataset, generator=generator) if shuffle
                       else SequentialSampler(dataset))
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, int(batch_size), bool(drop_last))
        self.dataset = dataset
        self.batch_size = None if batch_size is None else int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = int(num_workers)
        self.collate_fn = collate_fn
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.generator = generator
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = persistent_workers
        if isinstance(multiprocessing_context, str):
            multiprocessing_context = multiprocessing.get_context(multiprocessing_context)
        self.multiprocessing_context = multiprocessing_context

    def __len__(self) -> int:
        if self.batch_sampler is not None:
            return len(self.batch_sampler)  # type: ignore[arg-type]
        return len(self.sampler)  # type: ignore[arg-type]

    def _index_iter(self) -> Iterator[Any]:
        if self.batch_sampler is not None:
            return iter(self.batch_sampler)
        return iter(self.sampler)

    def _fetch(self, indices: Any) -> Any:
        return _Fetcher(self)(indices)

    def __iter__(self) -> Iterator[Any]:
        if self.num_workers == 0:
            for indices in self._index_iter():
                yield self._fetch(indices)
            return
        yield from self._iter_workers()

    def _pool(self) -> _WorkerPool:
        """This epoch's workers: new ones, or with ``persistent_workers`` the previous
        epoch's (started once, then reused while they live)."""
        pool = getattr(self, "_persistent_pool", None)
        if pool is not None and pool.alive():
            return pool
        pool = _WorkerPool(self)
        if self.persistent_workers:
            self._persistent_pool = pool
            weakref.finalize(self, pool.shutdown)
        return pool

    def _iter_workers(self) -> Iterator[Any]:
        pool = self._pool()
        pool.epoch += 1
        epoch, workers = pool.epoch, pool.workers
        tasks = enumerate(self._index_iter())
        sent = received = 0
        buffer: dict[int, Any] = {}
        limit = max(1, self.prefetch_factor or 0) * self.num_workers
        failed = True
        try:
            def send_one() -> bool:
                nonlocal sent
                task = next(tasks, None)
                if task is None:
                    return False
                pool.index_queues[task[0] % self.num_workers].put((epoch,) + task)
                sent += 1
                return True
            while sent < limit and send_one():
                pass
            while received < sent:
                while received not in buffer:
                    got, idx, data = self._get_result(pool.result_queue, workers)
                    if got not in (epoch, None):
                        continue  # left over from an epoch abandoned early
                    if isinstance(data, _WorkerError):
                        data.reraise()
                    buffer[idx] = data
                data = buffer.pop(received)
                received += 1
                send_one()
                yield data
            failed = False
        except GeneratorExit:  # the epoch was abandoned (break): the workers are fine
            failed = False
            raise
        finally:
            if failed or not self.persistent_workers:
                pool.shutdown()
                if getattr(self, "_persistent_pool", None) is pool:
                    self._persistent_pool = None

    def _get_result(self, result_queue: Any, workers: list) -> tuple[Any, int, Any]:
        waited = 0.0
        while True:
            try:
                return result_queue.get(timeout=1.0 if not self.timeout
                                        else min(1.0, self.timeout))
            except queue.Empty:
                waited += 1.0 if not self.timeout else min(1.0, self.timeout)
                dead = [i for i, w in enumerate(workers) if not w.is_alive()]
                if dead:
                    raise RuntimeError(f"DataLoader worker(s) {dead} exited unexpectedly"
                                       ) from None
                if self.timeout and waited >= self.timeout:
                    raise RuntimeError(f"DataLoader timed out after {self.timeout} seconds"
                                       ) from None
