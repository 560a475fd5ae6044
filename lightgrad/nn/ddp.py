"""``DistributedDataParallel``: data-parallel training over a process group.

Every rank holds a replica of the model and feeds it its own share of the batch. At wrap
time the parameters and buffers are broadcast from rank 0 (and their shapes checked to
agree). During backward, each parameter's gradient, as soon as it is accumulated, marks
its bucket one step closer to ready; a full bucket's gradients are copied, divided by the
world size, into the bucket's flat buffer (allocated once) and all-reduced (nonblocking)
while backward goes on with the layers below. The MPI backend's progress thread moves the
reduction meanwhile (``lightgrad/distributed/progress.py``). At the end of backward the
reductions are waited for and the averaged gradients written back (or, with
``gradient_as_bucket_view=True``, the gradients simply are views of the buckets), so
``optimizer.step()`` sees the same gradients on every rank: those of the whole global batch.

Buckets hold parameters in reverse registration order (the order backward produces their
gradients), the first one up to 1 MiB (or ``bucket_cap_mb`` if smaller), the others up to
``bucket_cap_mb`` (PyTorch's defaults); they are launched in the same order on every rank.

>>> import lightgrad as lg, lightgrad.distributed as dist             # doctest: +SKIP
>>> from lightgrad import nn                                          # doctest: +SKIP
>>> dist.init_process_group("mpi")                                    # doctest: +SKIP
>>> model = nn.parallel.DistributedDataParallel(nn.Linear(4, 2))      # doctest: +SKIP
>>> model(lg.randn(8, 4)).sum().backward()   # grads averaged over ranks  # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import time
from typing import Any, Iterator, Sequence

from .. import autograd
from ..autograd import no_grad
from .module import Module

FIRST_BUCKET_BYTES = 1024 * 1024  # PyTorch's dist._DEFAULT_FIRST_BUCKET_BYTES


class _Bucket:
    def __init__(self, index: int, params: list, names: list):
        self.index, self.params, self.names = index, params, names
        self.offsets = []
        total = 0
        for p in params:
            self.offsets.append(total)
            total += p.numel()
        self.numel = total
        self.pending = len(params)
        self.work: Any = None
        self.flat: Any = None  # the flat buffer, allocated at the first launch
        self.slots: list = []  # views of flat shaped like the parameters
        self.slot_data: list = []  # their buffers (autograd may rebind a grad's _data)

    def allocate(self) -> None:
        from ..creation import zeros
        p0 = self.params[0]
        self.flat = zeros(self.numel, dtype=p0.dtype, device=p0.device)
        self.slots = [self.flat[off:off + p.numel()].view(p.shape)
                      for p, off in zip(self.params, self.offsets)]
        self.slot_data = [v._data for v in self.slots]


def bucket_assignment(params: Sequence[Any], cap_bytes: int,
                      first_cap_bytes: int = FIRST_BUCKET_BYTES) -> list[list[int]]:
    """Indices of ``params`` per bucket: reverse order, grouped by (dtype, device), each
    bucket closed once it reaches its byte cap (the first one at ``first_cap_bytes``).

    >>> import lightgrad as lg
    >>> ps = [lg.zeros(100), lg.zeros(100), lg.zeros(100)]
    >>> bucket_assignment(ps, cap_bytes=800, first_cap_bytes=400)
    [[2], [1, 0]]
    """
    buckets: list[list[int]] = []
    open_: dict[tuple, tuple[list[int], int]] = {}
    for i in reversed(range(len(params))):
        p = params[i]
        key = (p.dtype, str(p.device))
        idx, size = open_.get(key, ([], 0))
        idx.append(i)
        size += p.numel() * p.dtype.itemsize
        cap = first_cap_bytes if not buckets else cap_bytes
        if size >= cap:
            buckets.append(idx)
            open_.pop(key, None)
        else:
            open_[key] = (idx, size)
    buckets.extend(idx for idx, _ in open_.values())
    return buckets


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training (PyTorch's signature); the wrapped model
    is ``.module``. Gradients are averaged over the ranks during backward; inside
    ``no_sync()`` they only accumulate locally. ``find_unused_parameters=True`` lets the
    forward leave some parameters out of the graph (they count as zero gradients).
    ``gradient_as_bucket_view=True`` makes each ``.grad`` a view of its bucket after the
    first synced backward: no copy back after the reduction and no second copy of the
    gradients in memory (the copy in stays: backward adds into ``.grad`` out of place).
    ``static_graph`` and ``check_reduction`` are accepted (buckets are fixed at wrap time
    anyway). ``sync_stats`` tells how much of the last reduction was
    hidden behind backward.

    >>> from lightgrad import nn                                            # doctest: +SKIP
    >>> ddp = nn.parallel.DistributedDataParallel(nn.Linear(3, 1))          # doctest: +SKIP
    >>> list(ddp.state_dict())                                              # doctest: +SKIP
    ['module.weight', 'module.bias']
    """

    def __init__(self, module: Module, device_ids: Sequence[Any] | None = None,
                 output_device: Any = None, dim: int = 0, broadcast_buffers: bool = True,
                 process_group: Any = None, bucket_cap_mb: float | None = 25,
                 find_unused_parameters: bool = False, check_reduction: bool = False,
                 gradient_as_bucket_view: bool = False, static_graph: bool = False,
                 **kwargs: Any):
        super().__init__()
        from ..distributed.group import get_group
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: module must be a Module, got "
                            f"{type(module).__name__}")
        group = get_group("DistributedDataParallel")
        self.module = module
        self.device_ids = list(device_ids) if device_ids is not None else None
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.gradient_as_bucket_view = gradient_as_bucket_view
        self.static_graph = static_graph
        self.require_backward_grad_sync = True
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        self._names = [n for n, _ in named]
        self._params = [p for _, p in named]
        self._world = group.size
        _check_same_shapes(self._names, self._params, group.rank)
        self._sync_from_rank0(self._params + [b for _, b in module.named_buffers()])
        cap = int((25 if bucket_cap_mb is None else bucket_cap_mb) * 1024 * 1024)
        assignment = bucket_assignment(self._params, cap, min(cap, FIRST_BUCKET_BYTES))
        self._buckets = [_Bucket(k, [self._params[i] for i in idx],
                                 [self._names[i] for i in idx])
                         for k, idx in enumerate(assignment)]
        self._where, self._index = {}, {}
        for b in self._buckets:
            for i, p in enumerate(b.params):
                self._where[id(p)], self._index[id(p)] = b, i
        self._prepare(None)
        self._expect_hooks = False
        # the last synced backward: seconds it waited at its end for the reductions (and
        # launched the buckets left), and the fraction of gradient elements whose
        # all-reduce had already finished when backward ended (hidden behind it)
        self.sync_stats = {"wait_s": 0.0, "reduced_during_backward": 0.0, "launch_s": 0.0}
        self._launch_s = 0.0
        self._numel = sum(b.numel for b in self._buckets)
        for p in self._params:
            p.register_post_accumulate_grad_hook(self._grad_ready)

    # ------------------------------------------------------------------ set-up
    @staticmethod
    def _sync_from_rank0(tensors: list) -> None:
        from ..distributed import broadcast
        with no_grad():
            works = [broadcast(t, src=0, async_op=True) for t in tensors]
            for w in works:
                w.wait()

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """The backward of a forward run inside accumulates gradients locally only (no
        communication); the first synced backward after it reduces the accumulated sum.
        Calling ``.module`` directly never communicates either.

        >>> with ddp.no_sync():                   # doctest: +SKIP
        ...     ddp(x1).sum().backward()          # doctest: +SKIP
        >>> ddp(x2).sum().backward()  # reduces the grads of both  # doctest: +SKIP
        """
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        if self.broadcast_buffers and self.require_backward_grad_sync:
            buffers = [b for _, b in self.module.named_buffers()]
            if buffers and self._world > 1:
                self._sync_from_rank0(buffers)
        out = self.module(*inputs, **kwargs)
        self._prepare(out)
        self._expect_hooks = self.require_backward_grad_sync
        return out

    def _prepare(self, out: Any) -> None:
        """Reset the buckets for the coming backward (and find unused parameters)."""
        self._unused = set()
        if out is not None and self.find_unused_parameters and \
                self.require_backward_grad_sync:
            used = _leaves_reached(out)
            self._unused = {id(p) for p in self._params if id(p) not in used}
        for b in self._buckets:
            b.pending = sum(1 for p in b.params if id(p) not in self._unused)
            b.work = None
        self._next = 0
        self._launch_s = 0.0
        self._in_backward = False
        self._ready: set[int] = set()

    # ------------------------------------------------------------------ backward
    def _grad_ready(self, param: Any) -> None:
        if not self._expect_hooks:  # not after a synced forward of this wrapper
            return
        if not self._in_backward:
            self._in_backward = True
            autograd.queue_callback(self._finish)
        self._ready.add(id(param))
        bucket = self._where[id(param)]
        start = time.perf_counter()
        self._fill(bucket, self._index[id(param)])
        self._launch_s += time.perf_counter() - start
        bucket.pending -= 1
        self._launch_ready()
        for b in self._buckets[:self._next]:  # let MPI progress the reductions in flight
            if b.work is not None and not b.work.is_completed():
                break

    def _launch_ready(self) -> None:
        """Launch, in bucket order, every bucket whose gradients are all there."""
        while self._next < len(self._buckets) and self._buckets[self._next].pending <= 0:
            start = time.perf_counter()
            self._launch(self._buckets[self._next])
            self._next += 1
            self._launch_s += time.perf_counter() - start

    def _fill(self, b: _Bucket, i: int) -> None:
        """Parameter ``i``'s gradient / world size into its slot of the bucket, as soon as
        it is ready (while it is still in cache, as PyTorch's reducer does)."""
        if b.flat is None:
            b.allocate()
        p, slot, data = b.params[i], b.slots[i], b.slot_data[i]
        backend = b.flat.device.backend
        g = p.grad
        if g is slot:
            if slot._data is not data:  # backward accumulated out of place
                backend.assign(data, slot._data)
                slot._data = data
        elif g is None:  # unused parameter: counts as zeros
            backend.assign(data, 0)
            return
        else:
            backend.assign(data, g._data)
        if self._world > 1:
            backend.binary_inplace("div", data, float(self._world))

    def _launch(self, b: _Bucket) -> None:
        """All-reduce a bucket (the slots of parameters without gradient set to zero)."""
        from ..distributed import all_reduce
        for i, p in enumerate(b.params):
            if id(p) not in self._ready:
                self._fill(b, i)
        b.flat._version[0] += 1
        b.work = all_reduce(b.flat, async_op=True)

    def _finish(self) -> None:
        """End of backward: launch what is left, wait, write averaged gradients back."""
        self._in_backward = False
        self._expect_hooks = False
        missing = [n for n, p in zip(self._names, self._params)
                   if id(p) not in self._ready and id(p) not in self._unused]
        if missing:
            raise RuntimeError(
                f"DistributedDataParallel: parameters {missing[:8]} received no gradient in "
                f"this backward; pass find_unused_parameters=True when the forward does not "
                f"use every parameter")
        done = sum(b.numel for b in self._buckets if b.work is not None and
                   b.work.is_completed())
        for b in self._buckets:
            b.pending = 0
        start = time.perf_counter()
        self._launch_ready()
        used = self._globally_used() if self.find_unused_parameters else None
        for b in self._buckets:
            b.work.wait()
        self.sync_stats = {"wait_s": time.perf_counter() - start,
                           "reduced_during_backward": done / max(1, self._numel),
                           "launch_s": self._launch_s}
        for b in self._buckets:
            b.work = None
            for p, slot in zip(b.params, b.slots):
                if used is not None and not used[id(p)]:
                    continue
                if self.gradient_as_bucket_view or p.grad is None:
                    p.grad = slot if self.gradient_as_bucket_view else slot.clone()
                elif p.grad is not slot:
                    _write_into(p.grad, slot)

    def _globally_used(self) -> dict[int, bool]:
        """Which parameters got a gradient on at least one rank."""
        from ..creation import tensor
        from ..distributed import ReduceOp, all_reduce
        flags = tensor([0 if id(p) in self._unused else 1 for p in self._params],
                       device=self._params[0].device)
        all_reduce(flags, op=ReduceOp.MAX)
        return {id(p): bool(f) for p, f in zip(self._params, flags.tolist())}


def _write_into(grad: Any, value: Any) -> None:
    """``grad[...] = value`` in grad's own memory (a fresh copy if that is read-only)."""
    try:
        grad.device.backend.assign(grad._data, value._data)
        grad._version[0] += 1
    except ValueError:  # a read-only (broadcast) buffer
        grad._data = value.clone()._data


def _leaves_reached(out: Any) -> set[int]:
    """ids of the leaf tensors the autograd graph of ``out`` reaches."""
    from ..tensor import Tensor
    roots, leaves = [], set()
    stack = [out]
    while stack:
        o = stack.pop()
        if isinstance(o, Tensor):
            if o.grad_fn is not None:
                roots.append(o.grad_fn)
            elif o.requires_grad:
                leaves.add(id(o))
        elif isinstance(o, dict):
            stack.extend(o.values())
        elif isinstance(o, (list, tuple)):
            stack.extend(o)
    for node in autograd._topo_order(roots):
        for edge in node._edges:
            if edge is not None and not isinstance(edge[0], autograd.Context):
                leaves.add(id(edge[0]))
    return leaves


def _check_same_shapes(names: list, params: list, rank: int) -> None:
    """All ranks must wrap the same model: compare parameter shapes with rank 0's."""
    from ..creation import tensor, zeros
    from ..distributed import all_gather, get_world_size
    world = get_world_size()
    if world == 1:
        return
    device = params[0].device if params else "cpu"
    sig = [len(params)]
    for p in params:
        sig += [p.ndim, *p.shape]
    length = tensor([len(sig)], device=device)
    lengths = [zeros(1, dtype=length.dtype, device=device) for _ in range(world)]
    all_gather(lengths, length)
    longest = max(int(t.item()) for t in lengths)
    mine = tensor(sig + [-1] * (longest - len(sig)), device=device)
    gathered = [zeros(longest, dtype=mine.dtype, device=device) for _ in range(world)]
    all_gather(gathered, mine)
    reference = _parse_signature(gathered[0].tolist())
    for r in range(1, world):
        other = _parse_signature(gathered[r].tolist())
        if len(other) != len(reference):
            raise RuntimeError(f"DistributedDataParallel: rank {r} has {len(other)} "
                               f"parameters but rank 0 has {len(reference)}: every rank must "
                               f"wrap the same model")
        for i, (a, b) in enumerate(zip(reference, other)):
            if a != b:
                raise RuntimeError(f"DistributedDataParallel: parameter '{names[i]}' has "
                                   f"shape {b} on rank {r} but {a} on rank 0: every rank "
                                   f"must wrap the same model")


def _parse_signature(sig: list) -> list[tuple]:
    shapes, k = [], 1
    for _ in range(sig[0]):
        ndim = sig[k]
        shapes.append(tuple(sig[k + 1:k + 1 + ndim]))
        k += 1 + ndim
    return shapes
