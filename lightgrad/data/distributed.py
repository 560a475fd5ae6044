"""``DistributedSampler``: each rank's share of a data set (PyTorch's index semantics).

With ``num_replicas`` ranks every rank gets ``ceil(len / num_replicas)`` indices: the
(optionally shuffled) index list is padded by repeating its start until it divides evenly
(or, with ``drop_last``, cut to a multiple), then rank ``r`` takes every
``num_replicas``-th index from position ``r``. Shuffling uses ``seed + epoch``, so call
``set_epoch`` each epoch; all ranks then agree on the permutation. The permutation comes
from lightgrad's Generator, so it differs from torch's; the padding, dropping and striding
are PyTorch's.

>>> list(DistributedSampler(range(5), num_replicas=2, rank=0, shuffle=False))
[0, 2, 4]
>>> list(DistributedSampler(range(5), num_replicas=2, rank=1, shuffle=False))
[1, 3, 0]
"""
from __future__ import annotations

import math
from typing import Iterator, Sized

from .generator import Generator
from .sampler import Sampler


class DistributedSampler(Sampler):
    """Indices of ``dataset`` for rank ``rank`` of ``num_replicas`` (default: the process
    group's rank and world size).

    >>> s = DistributedSampler(range(10), num_replicas=3, rank=2, drop_last=True, seed=1)
    >>> len(s), len(list(s))
    (3, 3)
    """

    def __init__(self, dataset: Sized, num_replicas: int | None = None,
                 rank: int | None = None, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False):
        if num_replicas is None or rank is None:
            from .. import distributed as dist
            if not dist.is_initialized():
                raise RuntimeError("DistributedSampler: pass num_replicas and rank, or call "
                                   "lightgrad.distributed.init_process_group() first")
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be at least 1, got "
                             f"{num_replicas}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: invalid rank {rank}, rank should be in "
                             f"the interval [0, {num_replicas - 1}]")
        self.dataset, self.num_replicas, self.rank = dataset, num_replicas, rank
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.epoch = 0
        n = len(dataset)
        if drop_last and n % num_replicas != 0:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            indices = Generator(self.seed + self.epoch).randperm(n).tolist()
        else:
            indices = list(range(n))
        if not self.drop_last:
            padding = self.total_size - len(indices)
            if padding <= len(indices):
                indices += indices[:padding]
            else:
                indices += (indices * math.ceil(padding / len(indices)))[:padding]
        else:
            indices = indices[:self.total_size]
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch: with ``shuffle``, each epoch gets its own permutation."""
        self.epoch = epoch
