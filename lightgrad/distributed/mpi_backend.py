"""The MPI backend: collectives on host (NumPy) buffers through mpi4py's nonblocking calls
(``Iallreduce``, ``Ibcast``, ...), so every collective can be polled with a timeout.

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

    def __init__(self, comm: Any):
        self.MPI = import_mpi()
        self.comm = comm

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

    @staticmethod
    def test(request: Any) -> bool:
        return request.Test()

    def close(self) -> None:
        self.comm.Free()
