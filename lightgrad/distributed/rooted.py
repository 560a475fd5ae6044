"""Collectives with a root rank (PyTorch's signatures): ``reduce`` to ``dst``, ``gather`` to
``dst``, ``scatter`` from ``src``. ``src``/``dst`` are global ranks, also with ``group=``.

>>> import lightgrad as lg, lightgrad.distributed as dist   # doctest: +SKIP
>>> t = lg.tensor([float(dist.get_rank() + 1)])             # doctest: +SKIP
>>> dist.reduce(t, dst=0); t      # on rank 0 of 2 ranks: 1 + 2   # doctest: +SKIP
tensor([3.])
"""
from __future__ import annotations

from typing import Any

from .collectives import _avg, _check_list, _check_tensor, _root, _run, _stage, _write
from .group import resolve
from .reduce_op import ReduceOp, as_reduce_op
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
    g = resolve(group, "reduce")
    if g is None:
        return None
    op = as_reduce_op(op, "reduce")
    _check_tensor("reduce", tensor, g)
    root = _root(g, "reduce", dst, "dst")
    if op is ReduceOp.AVG and tensor.dtype.np.kind != "f":
        raise TypeError(f"reduce: ReduceOp.AVG needs a floating tensor, got "
                        f"{tensor.dtype.name}")
    g.ensure_usable("reduce")
    view, buf = _stage(g, tensor)
    request = g.backend.reduce(buf, "sum" if op is ReduceOp.AVG else op.value, root)

    def finish() -> None:
        if g.rank == root:
            if op is ReduceOp.AVG:
                _avg("reduce", buf, g.size)
            _write(tensor, view, buf)
    return _run(g, "reduce", request, finish, async_op)


def _only_on_root(what: str, name: str, values: Any, is_root: bool, root: int) -> None:
    if not is_root and values:
        raise ValueError(f"{what}: {name} must be None (or empty) on ranks other than "
                         f"{'dst' if what == 'gather' else 'src'}={root}")
    if is_root and values is None:
        raise ValueError(f"{what}: {name} is required on rank "
                         f"{'dst' if what == 'gather' else 'src'}={root}")


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
    g = resolve(group, "gather")
    if g is None:
        return None
    _check_tensor("gather", tensor, g)
    root = _root(g, "gather", dst, "dst")
    is_root = g.rank == root
    _only_on_root("gather", "gather_list", gather_list, is_root, dst)
    if is_root:
        _check_list("gather", gather_list, tensor, g)
    g.ensure_usable("gather")
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
    g = resolve(group, "scatter")
    if g is None:
        return None
    _check_tensor("scatter", tensor, g)
    root = _root(g, "scatter", src, "src")
    is_root = g.rank == root
    _only_on_root("scatter", "scatter_list", scatter_list, is_root, src)
    if is_root:
        _check_list("scatter", scatter_list, tensor, g)
    g.ensure_usable("scatter")
    view, recv = _stage(g, tensor)
    send = g.backend.xp.stack([_stage(g, t)[1] for t in scatter_list]) if is_root else None
    request = g.backend.scatter(send, recv, root)
    return _run(g, "scatter", request, lambda: _write(tensor, view, recv), async_op)
