"""DistributedSampler: PyTorch's per-rank index sets (padding, drop_last, striding), each
index exactly once per epoch; in process, no MPI needed."""
from __future__ import annotations

from collections import Counter

import pytest

from lightgrad.utils.data import DistributedSampler

torch_data = pytest.importorskip("torch.utils.data")


@pytest.mark.parametrize("size", [1, 5, 10, 12, 13])
@pytest.mark.parametrize("replicas", [1, 2, 3, 4])
@pytest.mark.parametrize("drop_last", [False, True])
def test_matches_torch_without_shuffle(size, replicas, drop_last):
    for rank in range(replicas):
        ours = DistributedSampler(range(size), replicas, rank, shuffle=False,
                                  drop_last=drop_last)
        theirs = torch_data.DistributedSampler(range(size), replicas, rank, shuffle=False,
                                               drop_last=drop_last)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)


@pytest.mark.parametrize("size,replicas", [(10, 3), (12, 4), (7, 2), (2, 3)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_shuffled_epoch_covers_the_data_once(size, replicas, drop_last):
    for epoch in range(2):
        shards = []
        for rank in range(replicas):
            s = DistributedSampler(range(size), replicas, rank, seed=3, drop_last=drop_last)
            s.set_epoch(epoch)
            shards.append(list(s))
            theirs = torch_data.DistributedSampler(range(size), replicas, rank, seed=3,
                                                   drop_last=drop_last)
            assert len(s) == len(theirs) == len(shards[-1])
        counts = Counter(i for shard in shards for i in shard)
        total = sum(len(x) for x in shards)
        if drop_last:  # each kept index exactly once, len - len % replicas of them
            assert set(counts.values()) <= {1} and total == size - size % replicas
        else:  # every index at least once; the padding repeats the first ones
            assert set(counts) == set(range(size)) and total >= size
            assert total - size == sum(c - 1 for c in counts.values()) < replicas
    a = DistributedSampler(range(20), 2, 0, seed=3)
    b = DistributedSampler(range(20), 2, 0, seed=3)
    b.set_epoch(1)
    assert list(a) != list(b) and list(a) == list(DistributedSampler(range(20), 2, 0, seed=3))


def test_bad_rank_and_missing_group():
    with pytest.raises(ValueError, match="invalid rank 2"):
        DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(RuntimeError, match="init_process_group"):
        DistributedSampler(range(4))
