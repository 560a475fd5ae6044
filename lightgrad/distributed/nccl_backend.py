"""The NCCL backend: collectives between GPUs on lightgrad ``cuda`` tensors through CuPy's
NCCL bindings (``cupy.cuda.nccl``). Each collective is queued on the current CUDA stream;
its ``Work`` polls a CUDA event, so the group's timeout applies (the communicator is
aborted on timeout).

The ranks agree on an NCCL id through MPI (when launched by ``lightgrad run``/``mpiexec``)
or through a file (``init_method="file:///shared/path"``).

>>> from lightgrad.distributed.nccl_backend import nccl_available
>>> isinstance(nccl_available(), bool)
True
"""
from __future__ import annotations

import importlib.util
import os
import pickle
import time
from typing import Any

import numpy as np


def nccl_available() -> bool:
    """CuPy with NCCL is installed and sees a real GPU (not the emulator)."""
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy
        from cupy.cuda import nccl
        return bool(nccl.available) and cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001  (no driver, no NCCL build: not available)
        return False


def exchange_id_via_file(path: str, rank: int, timeout: float) -> Any:
    """Rank 0 writes the NCCL id to ``path``; the others read it (waiting up to timeout)."""
    from cupy.cuda import nccl
    if rank == 0:
        uid = nccl.get_unique_id()
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            pickle.dump(uid, f)
        os.replace(tmp, path)
        return uid
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"init_process_group(nccl): rank {rank} found no NCCL id in "
                               f"{path} after {timeout:g} s (is rank 0 running?)")
        time.sleep(0.05)
    with open(path, "rb") as f:
        return pickle.load(f)


class NCCLBackend:
    """Collectives over an NCCL communicator on CuPy views of lightgrad device arrays."""

    name = "nccl"

    def __init__(self, uid: Any, rank: int, size: int, device: int):
        import cupy
        from cupy.cuda import nccl
        self.cp, self.nccl, self.xp = cupy, nccl, cupy
        cupy.cuda.Device(device).use()
        self.comm = nccl.NcclCommunicator(size, uid, rank)
        self._aborted = False
        self.ops = {"sum": nccl.NCCL_SUM, "max": nccl.NCCL_MAX, "min": nccl.NCCL_MIN,
                    "product": nccl.NCCL_PROD}
        self.types = {np.dtype(np.float32): nccl.NCCL_FLOAT32,
                      np.dtype(np.float64): nccl.NCCL_FLOAT64,
                      np.dtype(np.float16): nccl.NCCL_FLOAT16,
                      np.dtype(np.int32): nccl.NCCL_INT32, np.dtype(np.int64): nccl.NCCL_INT64,
                      np.dtype(np.int8): nccl.NCCL_INT8, np.dtype(np.uint8): nccl.NCCL_UINT8}

    def wire_dtype(self, dtype: np.dtype) -> np.dtype:
        return dtype if dtype in self.types else np.dtype(np.float32)

    def view(self, tensor: Any) -> Any:
        buf = tensor._data
        runtime = getattr(buf, "runtime", None)
        if runtime is None or runtime.emulated:
            raise TypeError(f"nccl backend: collectives need tensors on a real GPU ('cuda' "
                            f"device), got a tensor on {tensor.device}")
        return runtime.cupy_view(buf)

    def _event(self) -> Any:
        event = self.cp.cuda.Event(block=False, disable_timing=True)
        event.record(self._stream())
        return event

    def _stream(self) -> Any:
        return self.cp.cuda.get_current_stream()

    def all_reduce(self, buf: Any, op: str) -> Any:
        self.comm.allReduce(buf.data.ptr, buf.data.ptr, buf.size, self.types[buf.dtype],
                            self.ops[op], self._stream().ptr)
        return self._event()

    def broadcast(self, buf: Any, src: int) -> Any:
        self.comm.broadcast(buf.data.ptr, buf.data.ptr, buf.size, self.types[buf.dtype], src,
                            self._stream().ptr)
        return self._event()

    def all_gather(self, send: Any, recv: Any) -> Any:
        self.comm.allGather(send.data.ptr, recv.data.ptr, send.size, self.types[send.dtype],
                            self._stream().ptr)
        return self._event()

    def reduce_scatter(self, send: Any, recv: Any, op: str) -> Any:
        self.comm.reduceScatter(send.data.ptr, recv.data.ptr, recv.size,
                                self.types[send.dtype], self.ops[op], self._stream().ptr)
        return self._event()

    def reduce(self, buf: Any, op: str, root: int) -> Any:
        self.comm.reduce(buf.data.ptr, buf.data.ptr, buf.size, self.types[buf.dtype],
                         self.ops[op], root, self._stream().ptr)
        return self._event()

    def send(self, buf: Any, dst: int, tag: int) -> Any:
        self.comm.send(buf.data.ptr, buf.size, self.types[buf.dtype], dst, self._stream().ptr)
        return self._event()

    def recv(self, buf: Any, src: int | None, tag: int) -> Any:
        if src is None:
            raise NotImplementedError("recv: the nccl backend needs src (no any-source "
                                      "receive in NCCL)")
        self.comm.recv(buf.data.ptr, buf.size, self.types[buf.dtype], src, self._stream().ptr)
        return self._event()

    def _unsupported(self, what: str) -> Any:
        raise NotImplementedError(f"{what}: not available on the nccl backend here; use "
                                  f"all_gather / reduce_scatter / send and recv")

    def gather(self, send: Any, recv: Any, root: int) -> Any:
        return self._unsupported("gather")

    def scatter(self, send: Any, recv: Any, root: int) -> Any:
        return self._unsupported("scatter")

    def all_to_all(self, send: Any, recv: Any, send_counts: Any = None,
                   recv_counts: Any = None) -> Any:
        return self._unsupported("all_to_all_single")

    def barrier(self) -> Any:
        one = self.cp.zeros(1, dtype=np.float32)
        return self.all_reduce(one, "sum")

    @staticmethod
    def test(event: Any) -> bool:
        return event.done

    def close(self) -> None:
        if not self._aborted:
            self.comm.destroy()

    def abort(self) -> None:
        if not self._aborted:
            self._aborted = True
            self.comm.abort()
