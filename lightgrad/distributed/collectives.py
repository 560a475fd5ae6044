"""Collectives on tensors (PyTorch's signatures): ``all_reduce``, ``broadcast``,
``all_gather``, ``reduce_scatter``, ``all_gather_into_tensor``, ``reduce_scatter_tensor``,
``all_to_all_single``, ``barrier``. Results are written in place into the output tensors;
``async_op=True`` returns a ``Work`` whose ``wait()`` does that. ``group=`` takes a group
from ``new_group`` (``src``/``dst`` stay global ranks).

Buffers go to the backend as they are when contiguous in a dtype it carries; otherwise
through a contiguous staging copy (float16/bfloat16 travel as float32).

>>> import lightgrad as lg, lightgrad.distributed as dist   # doctest: +SKIP
>>> t = lg.tensor([float(dist.get_rank())])                 # doctest: +SKIP
>>> dist.all_reduce(t); t                                   # doctest: +SKIP
tensor([1.])
"""
from __future__ import annotations

import operator
from typing import Any, Callable, Sequence

from .group import ProcessGroup, resolve
from .reduce_op import ReduceOp, as_reduce_op
from .work import Work


def _check_tensor(what: str, t: Any, group: ProcessGroup) -> None:
    from ..tensor import Tensor
    if not isinstance(t, Tensor):
        raise TypeError(f"{what}: expected a Tensor, got {type(t).__name__}")
    want = "cuda" if group.backend.name == "nccl" else "cpu"
    if t.device.type != want:
        raise TypeError(f"{what}: the {group.backend.name} backend works on {want} tensors, "
                        f"got a tensor on {t.device}")


def _stage(group: ProcessGroup, t: Any) -> tuple[Any, Any]:
    """(view of t's memory, contiguous buffer in a wire dtype: the view itself if it can)."""
    backend = group.backend
    view = backend.view(t)
    wire = backend.wire_dtype(view.dtype)
    return view, backend.xp.ascontiguousarray(view, dtype=wire)


def _write(t: Any, view: Any, buf: Any) -> None:
    if buf is not view:
        view[...] = buf.astype(view.dtype, copy=False)
    t._version[0] += 1


def _run(group: ProcessGroup, what: str, request: Any, finish: Callable[[], None],
         async_op: bool) -> Work | None:
    backend = group.backend
    if async_op:  # progressed by the backend's progress thread when it has one
        track = getattr(backend, "track", None)
        test = track(request) if track is not None else None
        return Work(group, what, test or (lambda: backend.test(request)), finish)
    Work(group, what, lambda: backend.test(request), finish).wait()
    return None


def _root(g: ProcessGroup, what: str, rank: Any, name: str) -> int:
    """The group rank of the global rank ``rank`` (``src``/``dst`` arguments)."""
    try:
        rank = operator.index(rank)
    except TypeError:
        raise TypeError(f"{what}: {name} must be an integer rank, got {rank!r}") from None
    if rank not in g.ranks:
        where = (f"a world of size {g.size}" if g.ranks == list(range(g.size)) else
                 f"the group (global ranks {g.ranks})")
        raise ValueError(f"{what}: {name}={rank} is not a rank of {where}")
    return g.ranks.index(rank)


def _start(group: Any, what: str, *tensors: Any) -> ProcessGroup | None:
    """The group ``what`` runs on, once ``tensors`` are checked; None when this rank is not
    in it (the collective is then skipped)."""
    g = resolve(group, what)
    if g is not None:
        for t in tensors:
            _check_tensor(what, t, g)
    return g


def _start_at(group: Any, what: str, tensor: Any, rank: Any, name: str,
              group_rank: Callable[[ProcessGroup, str, Any, str], int] = _root
              ) -> tuple[ProcessGroup, int] | None:
    """``_start`` of a message of ``tensor`` to or from global ``rank`` (argument ``name``):
    the group, usable, and ``group_rank`` of ``rank`` in it; None when this rank is not in
    the group."""
    g = _start(group, what, tensor)
    if g is None:
        return None
    peer = group_rank(g, what, rank, name)
    g.ensure_usable(what)
    return g, peer


def _start_reduce(group: Any, what: str, op: Any, *tensors: Any
                  ) -> tuple[ProcessGroup, ReduceOp] | None:
    """``_start`` for a reduction: the group and the ``ReduceOp`` that ``op`` names (checked
    before the tensors); None when this rank is not in the group."""
    g = resolve(group, what)
    if g is None:
        return None
    op = as_reduce_op(op, what)
    for t in tensors:
        _check_tensor(what, t, g)
    return g, op


def _wire_op(what: str, op: ReduceOp, dtype: Any) -> str:
    """The backend's name of ``op`` on NumPy ``dtype``: AVG travels as a sum that ``_avg``
    divides afterwards, so it needs a floating dtype."""
    if op is ReduceOp.AVG and dtype.kind != "f":
        raise TypeError(f"{what}: ReduceOp.AVG needs a floating tensor, got {dtype}")
    return "sum" if op is ReduceOp.AVG else op.value


def _avg(what: str, buf: Any, n: int) -> None:
    if buf.dtype.kind != "f":
        raise TypeError(f"{what}: ReduceOp.AVG needs a floating tensor, got {buf.dtype}")
    buf /= n


def _write_reduced(g: ProcessGroup, what: str, op: ReduceOp, t: Any, view: Any,
                   buf: Any) -> None:
    """``_write`` of a reduction's result, divided by the group size first for AVG."""
    if op is ReduceOp.AVG:
        _avg(what, buf, g.size)
    _write(t, view, buf)


def all_reduce(tensor: Any, op: ReduceOp | str = ReduceOp.SUM, group: Any = None,
               async_op: bool = False) -> Work | None:
    """Reduce ``tensor`` over all ranks and write the result into it on every rank.

    >>> import lightgrad as lg, lightgrad.distributed as dist   # doctest: +SKIP
    >>> t = lg.ones(2) * (dist.get_rank() + 1)                  # doctest: +SKIP
    >>> dist.all_reduce(t, op=dist.ReduceOp.MAX); t             # doctest: +SKIP
    tensor([2., 2.])
    """
    started = _start_reduce(group, "all_reduce", op, tensor)
    if started is None:
        return None
    g, op = started
    g.ensure_usable("all_reduce")
    wire_op = _wire_op("all_reduce", op, tensor.dtype.np)
    view, buf = _stage(g, tensor)
    request = g.backend.all_reduce(buf, wire_op)
    return _run(g, "all_reduce", request,
                lambda: _write_reduced(g, "all_reduce", op, tensor, view, buf), async_op)


def broadcast(tensor: Any, src: int = 0, group: Any = None,
              async_op: bool = False) -> Work | None:
    """Copy ``tensor`` of rank ``src`` into ``tensor`` on every rank.

    >>> import lightgrad as lg, lightgrad.distributed as dist   # doctest: +SKIP
    >>> t = lg.tensor([dist.get_rank()])                        # doctest: +SKIP
    >>> dist.broadcast(t, src=0); t                             # doctest: +SKIP
    tensor([0])
    """
    started = _start_at(group, "broadcast", tensor, src, "src")
    if started is None:
        return None
    g, root = started
    view, buf = _stage(g, tensor)
    request = g.backend.broadcast(buf, root)
    return _run(g, "broadcast", request, lambda: _write(tensor, view, buf), async_op)


def _check_list(what: str, tensors: Sequence[Any], like: Any, g: ProcessGroup) -> None:
    if len(tensors) != g.size:
        raise ValueError(f"{what}: expected a list of {g.size} tensors (the world size), "
                         f"got {len(tensors)}")
    for i, t in enumerate(tensors):
        _check_tensor(what, t, g)
        if t.shape != like.shape or t.dtype is not like.dtype:
            raise ValueError(f"{what}: tensor {i} has shape {tuple(t.shape)} and dtype "
                             f"{t.dtype.name}, expected {tuple(like.shape)} {like.dtype.name}")


def all_gather_into_tensor(output_tensor: Any, input_tensor: Any, group: Any = None,
                           async_op: bool = False) -> Work | None:
    """Concatenate ``input_tensor`` of every rank (in rank order) along dim 0 into
    ``output_tensor`` (shape ``(world * n, ...)`` for an input ``(n, ...)``).

    >>> import lightgrad as lg, lightgrad.distributed as dist   # doctest: +SKIP
    >>> out = lg.zeros(2)                                       # doctest: +SKIP
    >>> dist.all_gather_into_tensor(out, lg.tensor([float(dist.get_rank())]))  # doctest: +SKIP
    >>> out                                                     # doctest: +SKIP
    tensor([0., 1.])
    """
    g = _start(group, "all_gather_into_tensor", input_tensor, output_tensor)
    if g is None:
        return None
    if output_tensor.numel() != input_tensor.numel() * g.size or \
            output_tensor.dtype is not input_tensor.dtype:
        raise ValueError(f"all_gather_into_tensor: output {tuple(output_tensor.shape)} "
                         f"{output_tensor.dtype.name} must hold {g.size} inputs of shape "
                         f"{tuple(input_tensor.shape)} {input_tensor.dtype.name}")
    g.ensure_usable("all_gather_into_tensor")
    _, send = _stage(g, input_tensor)
    view, recv = _stage(g, output_tensor)
    request = g.backend.all_gather(send, recv)
    return _run(g, "all_gather_into_tensor", request,
                lambda: _write(output_tensor, view, recv), async_op)


def all_gather(tensor_list: list, tensor: Any, group: Any = None,
               async_op: bool = False) -> Work | None:
    """``tensor_list[r]`` receives ``tensor`` of rank ``r``, on every rank.

    >>> import lightgrad as lg, lightgrad.distributed as dist   # doctest: +SKIP
    >>> out = [lg.zeros(1) for _ in range(dist.get_world_size())]   # doctest: +SKIP
    >>> dist.all_gather(out, lg.tensor([float(dist.get_rank())])); out   # doctest: +SKIP
    [tensor([0.]), tensor([1.])]
    """
    g = _start(group, "all_gather", tensor)
    if g is None:
        return None
    _check_list("all_gather", tensor_list, tensor, g)
    g.ensure_usable("all_gather")
    _, send = _stage(g, tensor)
    xp = g.backend.xp
    recv = xp.empty((g.size,) + tuple(send.shape), dtype=send.dtype)
    request = g.backend.all_gather(send, recv)

    def finish() -> None:
        for r, t in enumerate(tensor_list):
            _write(t, g.backend.view(t), recv[r])
    return _run(g, "all_gather", request, finish, async_op)


def reduce_scatter_tensor(output: Any, input: Any, op: ReduceOp | str = ReduceOp.SUM,
                          group: Any = None, async_op: bool = False) -> Work | None:
    """Reduce ``input`` (shape ``(world * n, ...)``) over the ranks and give rank ``r`` the
    ``r``-th block of ``n`` rows in ``output``.

    >>> import lightgrad as lg, lightgrad.distributed as dist   # doctest: +SKIP
    >>> out = lg.zeros(1)                                       # doctest: +SKIP
    >>> dist.reduce_scatter_tensor(out, lg.tensor([1.0, 2.0]))  # doctest: +SKIP
    >>> out                                     # on rank 1 of 2   # doctest: +SKIP
    tensor([4.])
    """
    started = _start_reduce(group, "reduce_scatter_tensor", op, input, output)
    if started is None:
        return None
    g, op = started
    if input.numel() != output.numel() * g.size or output.dtype is not input.dtype:
        raise ValueError(f"reduce_scatter_tensor: input {tuple(input.shape)} "
                         f"{input.dtype.name} must hold {g.size} outputs of shape "
                         f"{tuple(output.shape)} {output.dtype.name}")
    return _reduce_scatter(g, "reduce_scatter_tensor", output, _stage(g, input)[1], op,
                           async_op)


def reduce_scatter(output: Any, input_list: list, op: ReduceOp | str = ReduceOp.SUM,
                   group: Any = None, async_op: bool = False) -> Work | None:
    """Reduce ``input_list[r]`` over the ranks into ``output`` of rank ``r``.

    >>> import lightgrad as lg, lightgrad.distributed as dist   # doctest: +SKIP
    >>> out = lg.zeros(1)                                       # doctest: +SKIP
    >>> dist.reduce_scatter(out, [lg.ones(1), lg.ones(1) * 2])  # doctest: +SKIP
    >>> out                                     # on rank 1 of 2   # doctest: +SKIP
    tensor([4.])
    """
    started = _start_reduce(group, "reduce_scatter", op, output)
    if started is None:
        return None
    g, op = started
    _check_list("reduce_scatter", input_list, output, g)
    xp = g.backend.xp
    send = xp.stack([_stage(g, t)[1] for t in input_list])
    return _reduce_scatter(g, "reduce_scatter", output, send, op, async_op)


def _reduce_scatter(g: ProcessGroup, what: str, output: Any, send: Any, op: ReduceOp,
                    async_op: bool) -> Work | None:
    wire_op = _wire_op(what, op, send.dtype)
    g.ensure_usable(what)
    view = g.backend.view(output)
    recv = g.backend.xp.empty(view.shape, dtype=send.dtype)
    request = g.backend.reduce_scatter(send, recv, wire_op)
    return _run(g, what, request, lambda: _write_reduced(g, what, op, output, view, recv),
                async_op)


def barrier(group: Any = None, async_op: bool = False) -> Work | None:
    """Wait until every rank has reached the barrier.

    >>> import lightgrad.distributed as dist   # doctest: +SKIP
    >>> dist.barrier()                         # doctest: +SKIP
    """
    g = resolve(group, "barrier")
    if g is None:
        return None
    g.ensure_usable("barrier")
    return _run(g, "barrier", g.backend.barrier(), lambda: None, async_op)


def all_to_all_single(output: Any, input: Any, output_split_sizes: list | None = None,
                      input_split_sizes: list | None = None, group: Any = None,
                      async_op: bool = False) -> Work | None:
    """Split ``input`` along dim 0 into one block per rank, send block ``r`` to rank ``r``,
    and concatenate the blocks received (in rank order) into ``output``. Without split
    sizes the blocks are equal (dim 0 divisible by the world size).

    >>> import lightgrad as lg, lightgrad.distributed as dist   # doctest: +SKIP
    >>> r = dist.get_rank()                                     # doctest: +SKIP
    >>> out = lg.zeros(2)                                       # doctest: +SKIP
    >>> dist.all_to_all_single(out, lg.tensor([10.0 * r, 10.0 * r + 1]))  # doctest: +SKIP
    >>> out                                     # on rank 1 of 2   # doctest: +SKIP
    tensor([1., 11.])
    """
    what = "all_to_all_single"
    g = _start(group, what, input, output)
    if g is None:
        return None
    if output.dtype is not input.dtype or output.shape[1:] != input.shape[1:]:
        raise ValueError(f"{what}: output {tuple(output.shape)} {output.dtype.name} and input "
                         f"{tuple(input.shape)} {input.dtype.name} must agree in dtype and "
                         f"in every dim but the first")
    row = 1
    for n in input.shape[1:]:
        row *= n
    counts = []
    for name, t, sizes in (("input", input, input_split_sizes),
                           ("output", output, output_split_sizes)):
        if sizes is None:
            if t.shape[0] % g.size:
                raise ValueError(f"{what}: {name} dim 0 ({t.shape[0]}) must divide by the "
                                 f"world size {g.size} when no {name}_split_sizes are given")
            sizes = [t.shape[0] // g.size] * g.size
        sizes = [int(n) for n in sizes]
        if len(sizes) != g.size or sum(sizes) != t.shape[0] or min(sizes) < 0:
            raise ValueError(f"{what}: {name}_split_sizes {sizes} must be {g.size} sizes "
                             f"adding up to {name} dim 0 ({t.shape[0]})")
        counts.append([n * row for n in sizes])
    g.ensure_usable(what)
    _, send = _stage(g, input)
    view, recv = _stage(g, output)
    equal = input_split_sizes is None and output_split_sizes is None
    request = g.backend.all_to_all(send.reshape(-1), recv.reshape(-1),
                                   None if equal else counts[0], None if equal else counts[1])
    return _run(g, what, request, lambda: _write(output, view, recv), async_op)
