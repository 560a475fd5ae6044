"""Training on several processes (PyTorch's ``torch.distributed`` names).

Collectives move tensors between the ranks of a job: MPI (through mpi4py) for CPU tensors
between processes and machines, NCCL (through CuPy) between GPUs. Launch a job with
``lightgrad run -n 2 -- script.py`` (or ``mpiexec -n 2 python script.py``); in the script:

>>> import lightgrad as lg                          # doctest: +SKIP
>>> import lightgrad.distributed as dist            # doctest: +SKIP
>>> dist.init_process_group("mpi")                  # doctest: +SKIP
>>> t = lg.tensor([float(dist.get_rank())])         # doctest: +SKIP
>>> dist.all_reduce(t, op=dist.ReduceOp.SUM); t     # 2 ranks: 0 + 1   # doctest: +SKIP
tensor([1.])

``lightgrad.nn.parallel.DistributedDataParallel`` builds data-parallel training on these,
``lightgrad.utils.data.DistributedSampler`` gives each rank its share of a data set.
Importing this module needs neither mpi4py nor CuPy.

>>> import lightgrad.distributed as dist
>>> dist.is_initialized()
False
"""
from __future__ import annotations

import importlib.util

from .collectives import (
    all_gather, all_gather_into_tensor, all_reduce, all_to_all_single, barrier, broadcast,
    reduce_scatter, reduce_scatter_tensor,
)
from .errors import DistributedError
from .group import (
    NON_GROUP_MEMBER, ProcessGroup, destroy_process_group, get_backend, get_rank,
    get_world_size, init_process_group, is_initialized, new_group,
)
from .objects import all_gather_object, broadcast_object_list
from .p2p import irecv, isend, recv, send
from .reduce_op import ReduceOp
from .rooted import gather, reduce, scatter
from .work import Work


def is_mpi_available() -> bool:
    """Whether mpi4py is installed (``pip install 'lightgrad[distributed]'``).

    >>> isinstance(is_mpi_available(), bool)
    True
    """
    return importlib.util.find_spec("mpi4py") is not None


def is_nccl_available() -> bool:
    """Whether CuPy's NCCL bindings and a GPU are present.

    >>> isinstance(is_nccl_available(), bool)
    True
    """
    from .nccl_backend import nccl_available
    return nccl_available()


def is_available() -> bool:
    """Whether some backend can be used (MPI or NCCL).

    >>> isinstance(is_available(), bool)
    True
    """
    return is_mpi_available() or is_nccl_available()


__all__ = ["DistributedError", "NON_GROUP_MEMBER", "ProcessGroup", "ReduceOp", "Work",
           "all_gather", "all_gather_into_tensor", "all_gather_object", "all_reduce",
           "all_to_all_single", "barrier", "broadcast", "broadcast_object_list",
           "destroy_process_group", "gather", "get_backend", "get_rank", "get_world_size",
           "init_process_group", "irecv", "is_available", "is_initialized",
           "is_mpi_available", "is_nccl_available", "isend", "new_group", "recv", "reduce",
           "reduce_scatter", "reduce_scatter_tensor", "scatter", "send"]
