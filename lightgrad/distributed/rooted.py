"""Collectives with a root rank (PyTorch's signatures): ``reduce`` to ``dst``, ``gather`` to
``dst``, ``scatter`` from ``src``. ``src``/``dst`` are global ranks, also with ``group=``.

>>> import lightgrad as lg, lightgrad.distributed as dist   # doctest: +SKIP
>>> t = lg.tensor([float(dist.get_rank() + 1)])             # doctest: +SKIP
>>> dist.reduce(t, dst=0); t      # on rank 0 of 2 ranks: 1 + 2   # doctest: +SKIP
tensor([3.])
"""
from __future__ import annotations

from typing import Any

from .collectives import (_check_list, _root, _run, _stage, _start, _start_reduce, _wire_op,
                          _write, _write_reduced)
from .group import ProcessGroup
from .reduce_op import ReduceOp
from .work import Work


def reduce(tensor: Any, dst: int = 0, op: ReduceOp | str = ReduceOp.SUM, group: Any = None,
           async_op: bool = False) -> Work | None:
    """Reduce ``tensor`` over the ranks into ``tensor`` of rank ``dst`` (the others' are
    left as they were).

    >>> import lightgrad as lg, lightgrad.distributed as dist   # doctest: +SKIP
    >>> t = lg.ones(2) * (dist.get_rank() + 1)                  # doctest: +SKIP
    >>> dist.reduce(t, dst=1, op=dist.ReduceOp.MAX); t          # on rank 1 of 2   # doctest: +SKIP
    tensor([2., 2.])
    """
    started = _start_reduce(group, "reduce", op, tensor)
    if started is None:
        return None
    g, op = started
    root = _root(g, "reduce", dst, "dst")
    wire_op = _wire_op("reduce", op, tensor.dtype.np)
    g.ensure_usable("reduce")
    view, buf = _stage(g, tensor)
    request = g.backend.reduce(buf, wire_op, root)

    def finish() -> None:
        if g.rank == root:
            _write_reduced(g, "reduce", op, tensor, view, buf)
    return _run(g, "reduce", request, finish, async_op)


def _start_rooted(group: Any, what: str, tensor: Any, rank: Any, name: str,
                  tensors: list | None, list_name: str) -> tuple[ProcessGroup, int] | None:
    """The group and group rank of root ``rank`` (argument ``name``) of gather/scatter, once
    ``tensor`` and ``tensors`` (argument ``list_name``, given on the root alone) are checked;
    None when this rank is not in the group."""
    g = _start(group, what, tensor)
    if g is None:
        return None
    root = _root(g, what, rank, name)
    is_root = g.rank == root
    if not is_root and tensors:
        raise ValueError(f"{what}: {list_name} must be None (or empty) on ranks other than "
                         f"{name}={rank}")
    if is_root and tensors is None:
        raise ValueError(f"{what}: {list_name} is required on rank {name}={rank}")
    if is_root:
        _check_list(what, tensors, tensor, g)
    g.ensure_usable(what)
    return g, root


def gather(tensor: Any, gather_list: list | None = None, dst: int = 0, group: Any = None,
           async_op: bool = False) -> Work | None:
    """``gather_list[r]`` of rank ``dst`` receives ``tensor`` of group rank ``r``; the other
    ranks pass ``gather_list=None``.

    >>> import lightgrad as lg, lightgrad.distributed as dist   # doctest: +SKIP
    >>> r = dist.get_rank()                                     # doctest: +SKIP
    >>> out = [lg.zeros(1), lg.zeros(1)] if r == 0 else None    # doctest: +SKIP
    >>> dist.gather(lg.tensor([float(r)]), out, dst=0)          # doctest: +SKIP
    >>> out                                     # on rank 0 of 2   # doctest: +SKIP
    [tensor([0.]), tensor([1.])]
    """
    started = _start_rooted(group, "gather", tensor, dst, "dst", gather_list, "gather_list")
    if started is None:
        return None
    g, root = started
    is_root = g.rank == root
    _, send = _stage(g, tensor)
    recv = g.backend.xp.empty((g.size,) + tuple(send.shape), dtype=send.dtype) \
        if is_root else None
    request = g.backend.gather(send, recv, root)

    def finish() -> None:
        if is_root:
            for r, t in enumerate(gather_list):
                _write(t, g.backend.view(t), recv[r])
    return _run(g, "gather", request, finish, async_op)


def scatter(tensor: Any, scatter_list: list | None = None, src: int = 0, group: Any = None,
            async_op: bool = False) -> Work | None:
    """``tensor`` of group rank ``r`` receives ``scatter_list[r]`` of rank ``src``; the
    other ranks pass ``scatter_list=None``.

    >>> import lightgrad as lg, lightgrad.distributed as dist   # doctest: +SKIP
    >>> r = dist.get_rank()                                     # doctest: +SKIP
    >>> parts = [lg.tensor([10.0]), lg.tensor([11.0])] if r == 0 else None  # doctest: +SKIP
    >>> t = lg.zeros(1)                                         # doctest: +SKIP
    >>> dist.scatter(t, parts, src=0)                           # doctest: +SKIP
    >>> t                                       # on rank 1 of 2   # doctest: +SKIP
    tensor([11.])
    """
    started = _start_rooted(group, "scatter", tensor, src, "src", scatter_list,
                            "scatter_list")
    if started is None:
        return None
    g, root = started
    is_root = g.rank == root
    view, recv = _stage(g, tensor)
    send = g.backend.xp.stack([_stage(g, t)[1] for t in scatter_list]) if is_root else None
    request = g.backend.scatter(send, recv, root)
    return _run(g, "scatter", request, lambda: _write(tensor, view, recv), async_op)
