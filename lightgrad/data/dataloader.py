"""DataLoader: iterate over a dataset in (optionally shuffled) mini-batches.

>>> import lightgrad as lg
>>> from lightgrad.data import TensorDataset, Generator
>>> ds = TensorDataset(lg.arange(10).float(), lg.arange(10))
>>> loader = DataLoader(ds, batch_size=4, shuffle=True, generator=Generator().manual_seed(0))
>>> [x.shape for x, y in loader], len(loader)
([(4,), (4,), (2,)], 3)
"""
from __future__ import annotations

import collections.abc
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..tensor import Tensor
from .dataset import Dataset
from .generator import Generator, as_numpy_rng


def default_collate(batch: Sequence[Any]) -> Any:
    """Merge a list of samples into a batch: tensors and NumPy arrays are stacked into a
    tensor along a new first dim, Python ints/floats/bools become int64/float64/bool
    tensors, strings stay a list, and dicts, tuples and lists are collated field by field
    (tuples and lists come back as lists, namedtuples as their own type).

    >>> import lightgrad as lg
    >>> default_collate([(lg.zeros(2), 1), (lg.ones(2), 0)])
    [tensor([[0., 0.],
            [1., 1.]]), tensor([1, 0])]
    """
    from ..creation import from_numpy, tensor
    from ..functions import stack
    if not batch:
        raise ValueError("default_collate: got an empty batch")
    elem = batch[0]
    if isinstance(elem, Tensor):
        return stack(list(batch))
    if isinstance(elem, np.ndarray):
        try:
            return from_numpy(np.stack(batch))
        except ValueError as err:
            shapes = sorted({str(np.shape(b)) for b in batch})
            raise RuntimeError(f"default_collate: can't stack NumPy arrays of shapes "
                               f"{', '.join(shapes)} ({err})") from None
    if isinstance(elem, np.generic):
        return tensor(np.array(batch))
    if isinstance(elem, bool):
        return tensor(list(batch), dtype="bool")
    if isinstance(elem, int):
        return tensor(list(batch), dtype="int64")
    if isinstance(elem, float):
        return tensor(list(batch), dtype="float64")
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        return {key: default_collate([sample[key] for sample in batch]) for key in elem}
    if isinstance(elem, collections.abc.Sequence):
        if any(len(sample) != len(elem) for sample in batch):
            raise RuntimeError("default_collate: each sample in the batch should have the "
                               f"same number of fields, got {sorted({len(s) for s in batch})}")
        fields = [default_collate(list(column)) for column in zip(*batch)]
        return type(elem)(*fields) if hasattr(elem, "_fields") else fields
    raise TypeError(f"default_collate: samples must hold tensors, NumPy arrays, numbers, "
                    f"strings, dicts or sequences; found {type(elem).__name__}")


class DataLoader:
    """Batches of ``dataset`` in order, or reshuffled each epoch with ``shuffle=True``.

    ``generator`` (a ``lightgrad.data.Generator`` or ``numpy.random.Generator``) fixes
    the shuffling; without one, each epoch's order is drawn from lightgrad's global
    generator, so ``lightgrad.manual_seed`` makes runs repeat. ``drop_last`` drops a last
    incomplete batch. ``collate_fn`` merges a list of samples (default:
    ``default_collate``, or the dataset's ``get_batch`` when it has one).
    """

    def __init__(self, dataset: Dataset, batch_size: int = 1, shuffle: bool = False,
                 drop_last: bool = False, collate_fn: Callable[[list], Any] | None = None,
                 generator: "Generator | np.random.Generator | None" = None):
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) \
                or batch_size <= 0:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got "
                             f"{batch_size!r}")
        if generator is not None:
            as_numpy_rng(generator)  # type check now rather than at the first epoch
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.collate_fn = collate_fn
        self.generator = generator

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self) -> np.ndarray:
        n = len(self.dataset)
        if self.shuffle:
            return as_numpy_rng(self.generator).permutation(n)
        return np.arange(n)

    def _fetch(self, indices: list[int]) -> Any:
        if self.collate_fn is None and hasattr(self.dataset, "get_batch"):
            return self.dataset.get_batch(indices)
        samples = [self.dataset[i] for i in indices]
        return (self.collate_fn or default_collate)(samples)

    def __iter__(self) -> Iterator[Any]:
        order = self._order().tolist()
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            yield self._fetch(order[start:start + self.batch_size])
