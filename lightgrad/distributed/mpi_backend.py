"""The MPI backend: collectives on host (NumPy) buffers through mpi4py's nonblocking calls
(``Iallreduce``, ``Ibcast``, ...), so every collective can be polled with a timeout. The
requests of asynchronous collectives are handed to a progress thread (``progress.py``) so
that they move while the main thread computes (DDP's buckets during backward).

>>> from lightgrad.distributed.mpi_backend import MPI_OPS
>>> sorted(MPI_OPS)
['max', 'min', 'product', 'sum']
"""
from __future__ import annotations

from typing import Any

import numpy as np

MPI_OPS = {"sum": "SUM", "max": "MAX", "min": "MIN", "product": "PROD"}
_NATIVE = {np.dtype(t) for t in (np.float32, np.float64, np.int8, np.uint8, np.int16,
                                 np.int32, np.int64, np.bool_)}


def import_mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError:
        raise ImportError("the 'mpi' backend needs mpi4py and an MPI runtime: pip install "
                          "'lightgrad[distributed]' (mpi4py + the mpich wheel)") from None
    return MPI


class MPIBackend:
    """Collectives over an MPI communicator; each returns an ``MPI.Request``."""

    name = "mpi"
    xp = np

    def __init__(self, comm: Any, progress_thread: bool = True):
        self.MPI = import_mpi()
        self.comm = comm
        self.progress = None
        if progress_thread and self.MPI.Query_thread() == self.MPI.THREAD_MULTIPLE:
            from .progress import ProgressThread
            self.progress = ProgressThread()

    def track(self, request: Any) -> Any:
        """A function telling whether ``request`` completed, its progress driven by the
        progress thread (or None: the caller tests it itself)."""
        return None if self.progress is None else self.progress.track(request)

    @staticmethod
    def wire_dtype(dtype: np.dtype) -> np.dtype:
        """The dtype buffers travel in (float16/bfloat16 go as float32)."""
        return dtype if dtype in _NATIVE else np.dtype(np.float32)

    def view(self, tensor: Any) -> np.ndarray:
        return tensor._data

    def _op(self, op: str) -> Any:
        return getattr(self.MPI, MPI_OPS[op])

    def all_reduce(self, buf: np.ndarray, op: str) -> Any:
        return self.comm.Iallreduce(self.MPI.IN_PLACE, buf, self._op(op))

    def broadcast(self, buf: np.ndarray, src: int) -> Any:
        return self.comm.Ibcast(buf, root=src)

    def all_gather(self, send: np.ndarray, recv: np.ndarray) -> Any:
        return self.comm.Iallgather(send, recv)

    def reduce_scatter(self, send: np.ndarray, recv: np.ndarray, op: str) -> Any:
        return self.comm.Ireduce_scatter_block(send, recv, self._op(op))

    def barrier(self) -> Any:
        return self.comm.Ibarrier()

    def reduce(self, buf: np.ndarray, op: str, root: int) -> Any:
        if self.comm.rank == root:
            return self.comm.Ireduce(self.MPI.IN_PLACE, buf, self._op(op), root=root)
        return self.comm.Ireduce(buf, None, self._op(op), root=root)

    def gather(self, send: np.ndarray, recv: np.ndarray | None, root: int) -> Any:
        return self.comm.Igather(send, recv, root=root)

    def scatter(self, send: np.ndarray | None, recv: np.ndarray, root: int) -> Any:
        return self.comm.Iscatter(send, recv, root=root)

    def all_to_all(self, send: np.ndarray, recv: np.ndarray,
                   send_counts: list[int] | None = None,
                   recv_counts: list[int] | None = None) -> Any:
        """Equal blocks, or ``*_counts`` elements to/from each rank (in rank order)."""
        if send_counts is None or recv_counts is None:
            return self.comm.Ialltoall(send, recv)
        return self.comm.Ialltoallv([send, (send_counts, _displacements(send_counts))],
                                    [recv, (recv_counts, _displacements(recv_counts))])

    def send(self, buf: np.ndarray, dst: int, tag: int) -> Any:
        return self.comm.Isend(buf, dest=dst, tag=tag)

    def recv(self, buf: np.ndarray, src: int | None, tag: int) -> Any:
        return self.comm.Irecv(buf, source=self.MPI.ANY_SOURCE if src is None else src,
                               tag=tag)

    def probe(self, tag: int) -> int | None:
        """The rank of a sender with a message of ``tag`` waiting, or None."""
        status = self.MPI.Status()
        if self.comm.Iprobe(source=self.MPI.ANY_SOURCE, tag=tag, status=status):
            return status.Get_source()
        return None

    @staticmethod
    def test(request: Any) -> bool:
        return request.Test()

    def abort(self) -> None:
        """The group is broken: stop polling (the requests left never complete)."""
        if self.progress is not None:
            self.progress.stop()

    def close(self) -> None:
        self.abort()
        self.comm.Free()


def _displacements(counts: list[int]) -> list[int]:
    return [sum(counts[:i]) for i in range(len(counts))]
