"""Collectives on Python objects (PyTorch's ``broadcast_object_list`` and
``all_gather_object``): each object is pickled into a byte tensor, the sizes and bytes
travel with the tensor collectives, and the receivers unpickle them.

These use ``pickle``, as PyTorch's do: unpickling runs code chosen by the sender, so use
them only between the ranks of your own job, never on data from an untrusted source.

>>> import lightgrad.distributed as dist          # doctest: +SKIP
>>> objs = [{"lr": 0.1}] if dist.get_rank() == 0 else [None]   # doctest: +SKIP
>>> dist.broadcast_object_list(objs, src=0); objs   # doctest: +SKIP
[{'lr': 0.1}]
"""
from __future__ import annotations

import pickle
from typing import Any

import numpy as np

from .collectives import _root, all_gather, broadcast
from .group import resolve


def _device(g: Any, device: Any) -> Any:
    return device if device is not None else ("cuda" if g.backend.name == "nccl" else "cpu")


def broadcast_object_list(object_list: list, src: int = 0, group: Any = None,
                          device: Any = None) -> None:
    """Replace the entries of ``object_list`` on every rank by those of rank ``src`` (the
    lists must have the same length everywhere). Pickle-based: for the job's own ranks
    only (see the module docstring)."""
    from ..creation import tensor, zeros
    g = resolve(group, "broadcast_object_list")
    if g is None:
        return
    is_root = g.rank == _root(g, "broadcast_object_list", src, "src")
    dev = _device(g, device)
    blobs = [pickle.dumps(o) for o in object_list] if is_root else []
    sizes = tensor([len(b) for b in blobs], device=dev) if is_root else \
        zeros(len(object_list), dtype="int64", device=dev)
    broadcast(sizes, src=src, group=group)
    lengths = [int(n) for n in sizes.tolist()]
    if is_root:
        payload = tensor(np.frombuffer(b"".join(blobs) or b"\0", dtype=np.uint8), device=dev)
    else:
        payload = zeros(max(1, sum(lengths)), dtype="uint8", device=dev)
    broadcast(payload, src=src, group=group)
    if not is_root:
        data, start = payload.cpu().numpy().tobytes(), 0
        for i, n in enumerate(lengths):
            object_list[i] = pickle.loads(data[start:start + n])
            start += n


def all_gather_object(object_list: list, obj: Any, group: Any = None) -> None:
    """``object_list[r]`` receives ``obj`` of group rank ``r`` on every rank
    (``object_list`` has the group's size). Pickle-based: for the job's own ranks only
    (see the module docstring).

    >>> import lightgrad.distributed as dist                    # doctest: +SKIP
    >>> out = [None] * dist.get_world_size()                    # doctest: +SKIP
    >>> dist.all_gather_object(out, {"rank": dist.get_rank()}); out   # doctest: +SKIP
    [{'rank': 0}, {'rank': 1}]
    """
    from ..creation import tensor, zeros
    g = resolve(group, "all_gather_object")
    if g is None:
        return
    if len(object_list) != g.size:
        raise ValueError(f"all_gather_object: object_list must have {g.size} entries (the "
                         f"group's size), got {len(object_list)}")
    dev = _device(g, None)
    blob = pickle.dumps(obj)
    sizes = [zeros(1, dtype="int64", device=dev) for _ in range(g.size)]
    all_gather(sizes, tensor([len(blob)], device=dev), group=group)
    lengths = [int(s.item()) for s in sizes]
    longest = max(lengths)
    mine = np.zeros(longest, dtype=np.uint8)
    mine[:len(blob)] = np.frombuffer(blob, dtype=np.uint8)
    outs = [zeros(longest, dtype="uint8", device=dev) for _ in range(g.size)]
    all_gather(outs, tensor(mine, device=dev), group=group)
    for r, (t, n) in enumerate(zip(outs, lengths)):
        object_list[r] = pickle.loads(t.cpu().numpy().tobytes()[:n])
