"""The default process group: ``init_process_group`` and friends (PyTorch's names).

``init_process_group("mpi")`` takes rank and world size from the MPI environment set by
``lightgrad run -n N -- script.py`` or ``mpiexec -n N python script.py``. ``"nccl"`` runs
the collectives between GPUs and uses MPI (or ``init_method="file://..."``) only to agree
on an NCCL id.

>>> import lightgrad.distributed as dist
>>> dist.is_initialized()
False
"""
from __future__ import annotations

import atexit
import os
import sys
from datetime import timedelta
from typing import Any

from .errors import DistributedError
from .work import _seconds

_group: list[Any] = [None]
DEFAULT_TIMEOUT = timedelta(minutes=5)


class ProcessGroup:
    """Rank, world size, backend, timeout and fault monitor of the job."""

    def __init__(self, backend: Any, rank: int, size: int, timeout: float,
                 monitor: Any = None, ranks: list[int] | None = None):
        self.backend, self.rank, self.size = backend, rank, size
        self.timeout, self.monitor = timeout, monitor
        self.ranks = list(range(size)) if ranks is None else list(ranks)  # global ranks
        self.broken: str | None = None
        self._seq = 0

    def local(self, global_rank: int, what: str, name: str = "src") -> int:
        """The rank in this group of the process of global rank ``global_rank``."""
        if global_rank not in self.ranks:
            raise ValueError(f"{what}: {name}={global_rank} is not a rank of the group "
                             f"(global ranks {self.ranks})")
        return self.ranks.index(global_rank)

    def __repr__(self) -> str:
        return f"<ProcessGroup {self.backend.name} ranks {self.ranks}>"

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def abandon(self, why: str) -> None:
        """A collective failed: the group is unusable (NCCL kernels in flight are aborted)."""
        self.broken = why
        abort = getattr(self.backend, "abort", None)
        if abort is not None:
            abort()

    def check_faults(self, what: str) -> None:
        if self.monitor is not None:
            self.monitor.check(what)

    def ensure_usable(self, what: str) -> None:
        if self.broken:
            raise DistributedError(f"rank {self.rank}: {what}: the process group is broken "
                                   f"({self.broken}); destroy it and start again")
        if self.monitor is not None:
            self.monitor.check(what, force=False)


def get_group(what: str) -> ProcessGroup:
    group = _group[0]
    if group is None:
        raise RuntimeError(f"{what}: the default process group is not initialized; call "
                           "lightgrad.distributed.init_process_group() first")
    return group


class _NonMember:
    """What ``new_group`` returns on the ranks it leaves out (PyTorch's
    ``GroupMember.NON_GROUP_MEMBER``): collectives given it do nothing and return None."""

    def __repr__(self) -> str:
        return "NON_GROUP_MEMBER"


NON_GROUP_MEMBER = _NonMember()


def resolve(group: Any, what: str) -> ProcessGroup | None:
    """The group a collective runs on: ``group``, or the default one when None; None when
    this rank is not a member (the collective is then skipped, as in PyTorch)."""
    default = get_group(what)
    if group is None:
        return default
    if group is NON_GROUP_MEMBER:
        return None
    if not isinstance(group, ProcessGroup):
        raise TypeError(f"{what}: group must be a process group from new_group() or None, "
                        f"got {type(group).__name__}")
    return group


def new_group(ranks: Any = None, timeout: timedelta | float | None = None,
              backend: str | None = None, **kwargs: Any) -> Any:
    """A process group of the global ``ranks`` (all ranks when None), for the ``group=``
    argument of collectives. Every rank of the job must call it, members or not (as in
    PyTorch); the others get ``NON_GROUP_MEMBER``, on which collectives do nothing. Ranks
    in the group are numbered in sorted order; ``src``/``dst`` arguments of collectives
    stay global ranks. MPI backend only.

    >>> import lightgrad as lg, lightgrad.distributed as dist     # doctest: +SKIP
    >>> evens = dist.new_group([0, 2])                            # doctest: +SKIP
    >>> if dist.get_rank() in (0, 2):                             # doctest: +SKIP
    ...     dist.all_reduce(t, group=evens)                       # doctest: +SKIP
    """
    default = get_group("new_group")
    members = sorted(set(range(default.size) if ranks is None else (int(r) for r in ranks)))
    bad = [r for r in members if not 0 <= r < default.size]
    if bad or not members:
        raise ValueError(f"new_group: ranks must be a non-empty list of ranks in 0.."
                         f"{default.size - 1}, got {ranks}")
    if default.backend.name != "mpi" or (backend not in (None, "mpi", "gloo")):
        raise NotImplementedError("new_group: subgroups are available on the mpi backend "
                                  "only")
    default.ensure_usable("new_group")
    from .mpi_backend import MPIBackend
    MPI = default.backend.MPI
    me = default.rank in members
    sub = default.backend.comm.Split(0 if me else MPI.UNDEFINED,
                                     members.index(default.rank) if me else 0)
    if not me:
        return NON_GROUP_MEMBER
    seconds = default.timeout if timeout is None else _seconds(timeout)
    group = ProcessGroup(MPIBackend(sub, progress_thread=default.backend.progress is not None),
                         sub.rank, sub.size, seconds, default.monitor, ranks=members)
    _subgroups.append(group)
    return group


_subgroups: list[ProcessGroup] = []


def is_initialized() -> bool:
    """Whether ``init_process_group`` has been called (and not destroyed).

    >>> import lightgrad.distributed as dist
    >>> dist.is_initialized()
    False
    """
    return _group[0] is not None


def get_rank(group: Any = None) -> int:
    """This process's rank, 0 .. world size - 1 (in ``group`` when given; -1 when not a
    member).

    >>> import lightgrad.distributed as dist   # doctest: +SKIP
    >>> dist.get_rank()                        # doctest: +SKIP
    0
    """
    g = resolve(group, "get_rank")
    return -1 if g is None else g.rank


def get_world_size(group: Any = None) -> int:
    """The number of processes in the job (in ``group`` when given; -1 when not a
    member).

    >>> import lightgrad.distributed as dist   # doctest: +SKIP
    >>> dist.get_world_size()                  # doctest: +SKIP
    2
    """
    g = resolve(group, "get_world_size")
    return -1 if g is None else g.size


def get_backend(group: Any = None) -> str:
    """``"mpi"`` or ``"nccl"``."""
    g = resolve(group, "get_backend")
    if g is None:
        raise ValueError("get_backend: this rank is not a member of the group")
    return g.backend.name


def init_process_group(backend: str | None = "mpi", init_method: str | None = None,
                       world_size: int = -1, rank: int = -1,
                       timeout: timedelta | float = DEFAULT_TIMEOUT, **kwargs: Any) -> None:
    """Join the job: every rank calls this once before any collective.

    ``backend``: ``"mpi"`` (CPU tensors; ``"gloo"`` is accepted as an alias) or ``"nccl"``
    (``cuda`` tensors, one GPU per rank). Rank and size come from the launcher's
    environment; ``world_size``/``rank``, when given, must agree with it. ``timeout`` bounds
    every wait on a collective (a ``timedelta`` or seconds).

    >>> import lightgrad.distributed as dist                  # doctest: +SKIP
    >>> dist.init_process_group("mpi")                        # doctest: +SKIP
    >>> dist.get_rank(), dist.get_world_size()                # doctest: +SKIP
    (0, 2)
    """
    if _group[0] is not None:
        raise RuntimeError("init_process_group: trying to initialize the default process "
                           "group twice")
    name = (backend or "mpi").lower()
    if name == "gloo":
        name = "mpi"
    seconds = _seconds(timeout)
    if seconds <= 0:
        raise ValueError(f"init_process_group: timeout must be positive, got {timeout}")
    if name == "mpi":
        group = _init_mpi(world_size, rank, seconds)
    elif name == "nccl":
        group = _init_nccl(init_method, world_size, rank, seconds)
    else:
        raise ValueError(f"init_process_group: unknown backend {backend!r}; expected 'mpi' or "
                         "'nccl'")
    _group[0] = group
    _install_exit_hooks(group)


def _check_env(what: str, given: int, actual: int) -> None:
    if given not in (-1, None) and given != actual:
        raise ValueError(f"init_process_group: {what}={given} but the launcher started this "
                         f"process with {what}={actual}")


def _init_mpi(world_size: int, rank: int, timeout: float) -> ProcessGroup:
    from .faults import FaultMonitor
    from .mpi_backend import MPIBackend, import_mpi
    MPI = import_mpi()
    world = MPI.COMM_WORLD
    _check_env("world_size", world_size, world.size)
    _check_env("rank", rank, world.rank)
    monitor = FaultMonitor(world.Dup(), world.rank, world.size)
    # LIGHTGRAD_MPI_PROGRESS_THREAD=0: no progress thread (benchmarks compare the two)
    thread = os.environ.get("LIGHTGRAD_MPI_PROGRESS_THREAD", "1") != "0"
    return ProcessGroup(MPIBackend(world.Dup(), progress_thread=thread), world.rank,
                        world.size, timeout, monitor)


def _init_nccl(init_method: str | None, world_size: int, rank: int,
               timeout: float) -> ProcessGroup:
    from .nccl_backend import NCCLBackend, exchange_id_via_file, nccl_available
    if not nccl_available():
        raise RuntimeError("init_process_group: the 'nccl' backend needs CuPy with NCCL and "
                           "a GPU (pip install 'lightgrad[cuda]'); use backend='mpi' for CPU "
                           "tensors")
    monitor = None
    if init_method and init_method.startswith("file://"):
        if world_size < 1 or rank < 0:
            raise ValueError("init_process_group(nccl, file://): pass world_size and rank")
        uid = exchange_id_via_file(init_method[len("file://"):], rank, timeout)
    else:
        from cupy.cuda import nccl

        from .faults import FaultMonitor
        from .mpi_backend import import_mpi
        world = import_mpi().COMM_WORLD
        _check_env("world_size", world_size, world.size)
        _check_env("rank", rank, world.rank)
        world_size, rank = world.size, world.rank
        uid = world.bcast(nccl.get_unique_id() if rank == 0 else None, root=0)
        monitor = FaultMonitor(world.Dup(), rank, world_size)
    local = int(os.environ.get("LOCAL_RANK", os.environ.get("MPI_LOCALRANKID", rank)))
    import cupy
    device = local % cupy.cuda.runtime.getDeviceCount()
    return ProcessGroup(NCCLBackend(uid, rank, world_size, device), rank, world_size, timeout,
                        monitor)


def _install_exit_hooks(group: ProcessGroup) -> None:
    """Uncaught exceptions notify the peers; a normal exit waits for them (barrier)."""
    previous = sys.excepthook

    def hook(tp: type, value: BaseException, tb: Any) -> None:
        previous(tp, value, tb)
        if _group[0] is not group:
            return
        if issubclass(tp, KeyboardInterrupt):  # Ctrl-C reaches every rank: just leave
            sys.stderr.flush()
            os._exit(130)
        if group.monitor is not None:
            from .faults import exit_after_failure
            exit_after_failure(group.monitor, value, group.timeout)

    sys.excepthook = hook
    group._previous_excepthook = previous
    atexit.register(_destroy_at_exit, group)


def _destroy_at_exit(group: ProcessGroup) -> None:
    """Interpreter exit: leave the group (a barrier) unless the script did. A broken group
    left a collective unfinished, on which ``MPI_Finalize`` could hang: exit without it."""
    if _group[0] is group:
        try:
            destroy_process_group()
        except DistributedError as e:
            print(f"lightgrad.distributed: {e}", file=sys.stderr, flush=True)
            if group.monitor is not None:
                from .faults import exit_after_failure
                exit_after_failure(group.monitor, e, group.timeout)
    if group.broken:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)


def destroy_process_group(group: Any = None) -> None:
    """Leave the job: wait for the other ranks (a barrier, so a failure is reported), then
    free the communicators.

    >>> import lightgrad.distributed as dist   # doctest: +SKIP
    >>> dist.destroy_process_group()           # doctest: +SKIP
    """
    if group is not None and group is not _group[0]:  # a subgroup
        if isinstance(group, ProcessGroup) and group in _subgroups:
            _subgroups.remove(group)
            group.backend.close()
        return
    current = get_group("destroy_process_group")
    for sub in _subgroups:
        sub.backend.close()
    _subgroups.clear()
    if not current.broken:
        from .collectives import barrier
        barrier()
    _group[0] = None
    sys.excepthook = getattr(current, "_previous_excepthook", sys.excepthook)
    current.backend.close()
    if current.monitor is not None:
        current.monitor.ctrl.Free()
