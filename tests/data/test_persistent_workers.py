"""``DataLoader(persistent_workers=True)``: the same worker processes serve every epoch, and
the batches are still those of ``num_workers=0``."""
from __future__ import annotations

import gc
import os
import time

import numpy as np

import lightgrad as lg
from lightgrad.data import DataLoader, Dataset, Generator

_init_calls = 0


def _count_init(worker_id: int) -> None:
    global _init_calls
    _init_calls += 1


class _Numbers(Dataset):
    """Sample i: (i as float, the pid of the process that loaded it, worker inits seen)."""

    def __len__(self) -> int:
        return 10

    def __getitem__(self, i: int):
        return np.float32(i), os.getpid(), _init_calls


def _loader(**kw) -> DataLoader:
    return DataLoader(_Numbers(), batch_size=3, shuffle=True,
                      generator=Generator().manual_seed(7), **kw)


def _epoch(loader) -> tuple[list, set]:
    values, pids = [], set()
    for x, pid, _ in loader:
        values.append(x.tolist())
        pids.update(pid.tolist())
    return values, pids


def test_same_workers_and_batches_across_epochs():
    serial = _loader()
    persistent = _loader(num_workers=2, persistent_workers=True, worker_init_fn=_count_init)
    seen = []
    for _epoch_number in range(2):
        want, _pids = _epoch(serial)
        got, pids = _epoch(persistent)
        assert got == want and sorted(sum(got, [])) == list(range(10))
        assert os.getpid() not in pids and len(pids) == 2
        seen.append(pids)
    assert seen[0] == seen[1]
    assert set(persistent._persistent_pool.pids) == pids
    # worker_init_fn ran once per worker, not once per epoch
    assert {int(c) for *_, counts in persistent for c in counts.tolist()} == {1}


def test_without_persistence_each_epoch_has_new_workers():
    loader = _loader(num_workers=2)
    _, first = _epoch(loader)
    _, second = _epoch(loader)
    assert first.isdisjoint(second)


def test_abandoned_epoch_then_full_epoch():
    serial, loader = _loader(), _loader(num_workers=2, persistent_workers=True)
    for source in (serial, loader):
        for _ in source:
            break  # with workers, results still in flight belong to this abandoned epoch
    pids = set(loader._persistent_pool.pids)
    want, _ = _epoch(serial)
    got, _ = _epoch(loader)
    assert got == want and sorted(sum(got, [])) == list(range(10))
    assert set(loader._persistent_pool.pids) == pids


def test_workers_stop_when_the_loader_is_collected():
    loader = _loader(num_workers=2, persistent_workers=True)
    _epoch(loader)
    pids = loader._persistent_pool.pids
    del loader
    gc.collect()
    deadline = time.time() + 10
    while time.time() < deadline and any(os.path.exists(f"/proc/{p}") for p in pids):
        time.sleep(0.05)
    assert not any(os.path.exists(f"/proc/{p}") for p in pids)


def test_error_in_a_persistent_worker_surfaces():
    ds = lg.data.TensorDataset(lg.arange(4.0))
    loader = DataLoader(ds, batch_size=2, num_workers=1, persistent_workers=True,
                        collate_fn=_broken_collate)
    try:
        next(iter(loader))
    except ValueError as err:
        assert "Caught ValueError in DataLoader worker process 0" in str(err)
    else:
        raise AssertionError("the worker's error was lost")


def _broken_collate(batch):
    raise ValueError("bad batch")
