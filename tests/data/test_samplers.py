"""Samplers, ConcatDataset, DataLoader arguments and worker processes, and the
``lightgrad.utils.data`` module path, against PyTorch's ``torch.utils.data`` semantics."""
import os

import numpy as np
import pytest

import lightgrad as lg
from lightgrad.data import (
    BatchSampler, ConcatDataset, DataLoader, Generator, RandomSampler, Sampler,
    SequentialSampler, SubsetRandomSampler, TensorDataset, WeightedRandomSampler,
    get_worker_info,
)

torch = pytest.importorskip("torch")
tud = torch.utils.data


def _dataset(n=10):
    return TensorDataset(lg.arange(n).float(), lg.arange(n))


class Squares:
    """A dataset without get_batch (so the loader collates sample by sample)."""

    def __init__(self, n=11):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.float64(i * i), i


def _as_lists(batches):
    return [[np.asarray(t.tolist()).tolist() for t in b] for b in batches]


# ------------------------------------------------------------------------------ samplers

def test_sequential_sampler_matches_torch():
    for n in (0, 1, 7):
        assert list(SequentialSampler(range(n))) == list(tud.SequentialSampler(range(n)))
        assert len(SequentialSampler(range(n))) == n


@pytest.mark.parametrize("n,batch_size,drop_last", [(10, 3, False), (10, 3, True),
                                                    (9, 3, True), (2, 5, False),
                                                    (2, 5, True), (0, 2, False)])
def test_batch_sampler_matches_torch(n, batch_size, drop_last):
    ours = BatchSampler(SequentialSampler(range(n)), batch_size, drop_last)
    theirs = tud.BatchSampler(tud.SequentialSampler(range(n)), batch_size, drop_last)
    assert list(ours) == list(theirs)
    assert len(ours) == len(theirs)


def test_batch_sampler_errors():
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="batch_size should be a positive integer"):
            BatchSampler(range(4), bad, False)
    with pytest.raises(ValueError, match="drop_last should be a boolean"):
        BatchSampler(range(4), 2, 1)


def test_random_sampler_is_a_seeded_permutation():
    s = RandomSampler(range(20), generator=Generator().manual_seed(3))
    first, second = list(s), list(s)
    assert sorted(first) == sorted(second) == list(range(20))
    assert first != second  # a fresh order each epoch
    again = RandomSampler(range(20), generator=Generator().manual_seed(3))
    assert list(again) == first and list(again) == second
    assert len(s) == 20


def test_random_sampler_num_samples_and_replacement():
    # Without replacement and num_samples > n, PyTorch chains whole permutations.
    s = RandomSampler(range(4), num_samples=10, generator=Generator(0))
    draws = list(s)
    assert len(draws) == len(s) == 10
    assert sorted(draws[:4]) == sorted(draws[4:8]) == [0, 1, 2, 3]
    assert len(set(draws[8:])) == 2
    short = list(RandomSampler(range(10), num_samples=3, generator=Generator(0)))
    assert len(short) == len(set(short)) == 3
    r = RandomSampler(range(5), replacement=True, num_samples=200, generator=Generator(1))
    draws = list(r)
    assert len(draws) == 200 and set(draws) == set(range(5))
    assert draws == list(RandomSampler(range(5), replacement=True, num_samples=200,
                                       generator=Generator(1)))
    assert len(RandomSampler(range(5), replacement=True)) == 5


def test_random_sampler_global_seed_and_errors():
    lg.manual_seed(0)
    a = list(RandomSampler(range(15)))
    lg.manual_seed(0)
    assert list(RandomSampler(range(15))) == a
    with pytest.raises(TypeError, match="replacement should be a boolean"):
        RandomSampler(range(3), replacement=1)
    for bad in (0, -2):
        with pytest.raises(ValueError, match="num_samples should be a positive integer"):
            RandomSampler(range(3), num_samples=bad)
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        RandomSampler([])  # like torch: an empty data source can't be sampled


def test_subset_random_sampler():
    idx = [9, 2, 5, 7]
    s = SubsetRandomSampler(idx, generator=Generator(4))
    first = list(s)
    assert sorted(first) == sorted(idx) and len(s) == 4
    assert list(SubsetRandomSampler(idx, generator=Generator(4))) == first
    assert sorted(tud.SubsetRandomSampler(idx)) == sorted(first)


def test_weighted_random_sampler():
    w = [0.0, 1.0, 3.0, 0.0]
    s = WeightedRandomSampler(w, 4000, generator=Generator(0))
    draws = np.array(list(s))
    assert len(s) == 4000 and len(draws) == 4000
    assert set(draws.tolist()) == {1, 2}
    assert abs((draws == 2).mean() - 0.75) < 0.03
    again = list(WeightedRandomSampler(w, 4000, generator=Generator(0)))
    assert again == draws.tolist()
    no_repeat = list(WeightedRandomSampler([1, 2, 3, 4, 5], 5, replacement=False,
                                           generator=Generator(2)))
    assert sorted(no_repeat) == [0, 1, 2, 3, 4]
    assert list(WeightedRandomSampler(lg.tensor([0.0, 2.0]), 3)) == [1, 1, 1]
    # torch agrees on the support
    torch_draws = list(tud.WeightedRandomSampler(w, 200))
    assert set(torch_draws) <= {1, 2}


def test_weighted_random_sampler_errors():
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        WeightedRandomSampler([1.0], 0)
    with pytest.raises(ValueError, match="replacement should be a boolean"):
        WeightedRandomSampler([1.0], 1, replacement=0)
    with pytest.raises(ValueError, match="weights should be a 1d sequence"):
        WeightedRandomSampler([[1.0, 2.0]], 1)
    with pytest.raises(RuntimeError, match="without replacement"):
        WeightedRandomSampler([1.0, 0.0, 1.0], 3, replacement=False)
    with pytest.raises(RuntimeError, match="invalid multinomial"):
        WeightedRandomSampler([1.0, -1.0], 1)


def test_base_sampler_and_custom_sampler():
    with pytest.raises(NotImplementedError):
        iter(Sampler())

    class Reverse(Sampler):
        def __init__(self, n):
            self.n = n

        def __iter__(self):
            return iter(range(self.n - 1, -1, -1))

        def __len__(self):
            return self.n

    loader = DataLoader(_dataset(5), batch_size=2, sampler=Reverse(5))
    assert [y.tolist() for _, y in loader] == [[4, 3], [2, 1], [0]]
    assert len(loader) == 3


# --------------------------------------------------------------------------- ConcatDataset

def test_concat_dataset_matches_torch():
    parts = [list(range(3)), list(range(10, 12)), [], list(range(20, 24))]
    ours = ConcatDataset(parts)
    theirs = tud.ConcatDataset(parts)
    assert len(ours) == len(theirs) == 9
    assert ours.cumulative_sizes == theirs.cumulative_sizes
    assert [ours[i] for i in range(-9, 9)] == [theirs[i] for i in range(-9, 9)]
    with pytest.raises(IndexError):
        ours[9]
    with pytest.raises(ValueError, match="should not exceed"):
        ours[-10]
    with pytest.raises(AssertionError):
        ConcatDataset([])
    loader = DataLoader(ConcatDataset([_dataset(3), _dataset(2)]), batch_size=5)
    assert [y.tolist() for _, y in loader] == [[0, 1, 2, 0, 1]]


# ------------------------------------------------------------------------------ DataLoader

def test_dataloader_lengths_match_torch():
    for n, bs, drop in [(10, 3, False), (10, 3, True), (9, 3, False), (1, 4, True)]:
        assert len(DataLoader(_dataset(n), batch_size=bs, drop_last=drop)) == \
            len(tud.DataLoader(range(n), batch_size=bs, drop_last=drop))
    assert len(DataLoader(_dataset(7), batch_size=None)) == 7
    assert len(DataLoader(_dataset(7), batch_sampler=[[0, 1], [2]])) == 2


def test_dataloader_with_batch_sampler_and_no_batching():
    loader = DataLoader(_dataset(6), batch_sampler=[[5, 0], [1, 2, 3]])
    assert [y.tolist() for _, y in loader] == [[5, 0], [1, 2, 3]]
    items = list(DataLoader(Squares(3), batch_size=None))
    assert items == [(0.0, 0), (1.0, 1), (4.0, 2)]
    loader = DataLoader(_dataset(6), batch_sampler=BatchSampler(range(6), 4, True))
    assert [y.tolist() for _, y in loader] == [[0, 1, 2, 3]]


def test_dataloader_with_sampler_and_shuffle_orders():
    sampler = SubsetRandomSampler([1, 3, 5], generator=Generator(0))
    ys = [y.tolist() for _, y in DataLoader(_dataset(6), batch_size=3, sampler=sampler)]
    assert sorted(ys[0]) == [1, 3, 5]
    a = [y.tolist() for _, y in DataLoader(_dataset(9), batch_size=4, shuffle=True,
                                              generator=Generator(7))]
    b = [y.tolist() for _, y in DataLoader(_dataset(9), batch_size=4, shuffle=True,
                                              generator=Generator(7))]
    assert a == b and sorted(sum(a, [])) == list(range(9))


def test_dataloader_argument_errors_match_torch():
    ds = _dataset(6)
    cases = [
        (dict(sampler=SequentialSampler(ds), shuffle=True), "mutually exclusive with shuffle"),
        (dict(batch_sampler=[[0]], batch_size=2), "batch_sampler option is mutually"),
        (dict(batch_sampler=[[0]], shuffle=True), "batch_sampler option is mutually"),
        (dict(batch_sampler=[[0]], sampler=[0]), "batch_sampler option is mutually"),
        (dict(batch_sampler=[[0]], drop_last=True), "batch_sampler option is mutually"),
        (dict(batch_size=None, drop_last=True), "disables auto-batching"),
        (dict(num_workers=-1), "num_workers option should be non-negative"),
        (dict(timeout=-1), "timeout option should be non-negative"),
        (dict(prefetch_factor=2), "prefetch_factor option could only be specified"),
        (dict(persistent_workers=True), "persistent_workers option needs num_workers > 0"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            DataLoader(ds, **kwargs)
        with pytest.raises(ValueError, match=message):
            tud.DataLoader(list(range(6)), **kwargs)


def test_dataloader_signature_matches_torch():
    import inspect
    ours = inspect.signature(DataLoader).parameters
    theirs = inspect.signature(tud.DataLoader).parameters
    extra = {"pin_memory_device", "in_order"}  # CUDA pinning and out-of-order loading
    assert list(ours) == [name for name in theirs if name not in extra]
    for name, p in ours.items():
        assert (p.kind, p.default) == (theirs[name].kind, theirs[name].default), name


# ------------------------------------------------------------------------- worker processes

def _record_worker(worker_id):
    info = get_worker_info()
    assert info is not None and info.id == worker_id and info.num_workers == 2
    os.environ["LIGHTGRAD_TEST_WORKER"] = str(worker_id)


class WhoLoads:
    """Returns (index, pid, worker id set by worker_init_fn)."""

    def __len__(self):
        return 13

    def __getitem__(self, i):
        return i, os.getpid(), int(os.environ.get("LIGHTGRAD_TEST_WORKER", "-1"))


def test_workers_give_the_same_batches_as_the_main_process():
    for ds, kw in [(_dataset(23), dict(batch_size=4)),
                   (Squares(11), dict(batch_size=3, drop_last=True)),
                   (_dataset(9), dict(batch_size=2, shuffle=True))]:
        gen = dict(generator=Generator(5)) if kw.get("shuffle") else {}
        main = list(DataLoader(ds, **kw, **gen))
        gen = dict(generator=Generator(5)) if kw.get("shuffle") else {}
        workers = DataLoader(ds, num_workers=2, **kw, **gen)
        got = list(workers)
        assert len(got) == len(main) == len(workers)
        assert _as_lists(got) == _as_lists(main)


def test_workers_are_other_processes_and_call_worker_init_fn():
    assert get_worker_info() is None
    loader = DataLoader(WhoLoads(), batch_size=2, num_workers=2,
                        worker_init_fn=_record_worker, prefetch_factor=1)
    batches = list(loader)
    indices = sum((b[0].tolist() for b in batches), [])
    assert indices == list(range(13))
    pids = {p for b in batches for p in b[1].tolist()}
    assert os.getpid() not in pids and len(pids) == 2
    assert {w for b in batches for w in b[2].tolist()} == {0, 1}
    assert "LIGHTGRAD_TEST_WORKER" not in os.environ
    ctx = DataLoader(_dataset(5), batch_size=2, num_workers=2,
                     multiprocessing_context="fork")
    assert [y.tolist() for _, y in ctx] == [[0, 1], [2, 3], [4]]
    # breaking off early shuts the workers down cleanly; a new epoch works
    it = iter(loader)
    next(it)
    del it
    assert len(list(loader)) == 7


class Faulty:
    def __len__(self):
        return 6

    def __getitem__(self, i):
        if i == 4:
            raise KeyError("bad sample 4")
        return i


def test_worker_errors_reach_the_main_process():
    with pytest.raises(KeyError, match="DataLoader worker process"):
        list(DataLoader(Faulty(), batch_size=2, num_workers=2))


# ------------------------------------------------------------------------ module path

def test_lightgrad_utils_data_module_path():
    import lightgrad.utils.data as lud
    from lightgrad.utils.data import DataLoader as DL
    from lightgrad.utils.data import (  # noqa: F401
        BatchSampler, ConcatDataset, Dataset, RandomSampler, Sampler, SequentialSampler,
        Subset, SubsetRandomSampler, TensorDataset, WeightedRandomSampler, random_split,
    )
    assert DL is DataLoader and lud.Dataset is lg.data.Dataset
    assert lg.utils.data.TensorDataset is lg.data.TensorDataset
    for name in ("DataLoader", "Dataset", "TensorDataset", "Subset", "ConcatDataset",
                 "random_split", "Sampler", "SequentialSampler", "RandomSampler",
                 "SubsetRandomSampler", "WeightedRandomSampler", "BatchSampler",
                 "get_worker_info", "default_collate"):
        assert hasattr(lud, name) and hasattr(tud, name), name


class Slow:
    def __len__(self):
        return 2

    def __getitem__(self, i):
        import time
        time.sleep(0.5)
        return i


def test_worker_timeout():
    with pytest.raises(RuntimeError, match="timed out after 0.2 seconds"):
        list(DataLoader(Slow(), batch_size=1, num_workers=1, timeout=0.2))
