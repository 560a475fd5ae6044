"""Datasets: indexable collections of samples, and ways to slice them.

A ``Dataset`` has ``__getitem__(i)`` and ``__len__``. A dataset whose samples live in
tensors may also define ``get_batch(indices)``, which returns a whole collated batch at
once; ``DataLoader`` uses it (instead of collating sample by sample) when no
``collate_fn`` is given.

>>> import lightgrad as lg
>>> ds = TensorDataset(lg.arange(10).float(), lg.arange(10))
>>> train, test = random_split(ds, [0.8, 0.2], generator=Generator().manual_seed(0))
>>> len(train), len(test), ds[3][1].item()
(8, 2, 3)
"""
from __future__ import annotations

import bisect
import math
from itertools import accumulate
from typing import Any, Callable, Sequence

import numpy as np

from ..tensor import Tensor
from .generator import Generator, as_numpy_rng


class Dataset:
    """Base class: subclasses implement ``__getitem__`` and ``__len__``."""

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")


def _index_tensor(indices: Sequence[int]) -> Tensor:
    from ..creation import tensor
    return tensor(np.asarray(indices, dtype=np.int64))


class TensorDataset(Dataset):
    """Samples are slices ``(t[i] for t in tensors)`` of tensors sharing their first dim.

    >>> import lightgrad as lg
    >>> ds = TensorDataset(lg.zeros(4, 2), lg.arange(4))
    >>> len(ds), ds[1][0].shape
    (4, (2,))
    """

    def __init__(self, *tensors: Tensor):
        if not tensors:
            raise ValueError("TensorDataset: expected at least one tensor")
        for t in tensors:
            if not isinstance(t, Tensor):
                raise TypeError(f"TensorDataset: expected Tensors, got {type(t).__name__}")
            if t.ndim == 0:
                raise ValueError("TensorDataset: tensors need at least one dim (the samples)")
        sizes = [t.shape[0] for t in tensors]
        if len(set(sizes)) != 1:
            shapes = ", ".join(str(t.shape) for t in tensors)
            raise ValueError(f"TensorDataset: size mismatch between tensors: the first dims "
                             f"differ in shapes {shapes}")
        self.tensors = tensors

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def get_batch(self, indices: Sequence[int]) -> list[Tensor]:
        """The samples at ``indices`` stacked, as ``default_collate`` would give them."""
        idx = _index_tensor(indices)
        return [t[idx] for t in self.tensors]


class LabeledImages(Dataset):
    """Images and integer labels held in two tensors (``data``: (N, C, H, W) float32,
    ``targets``: (N,) int64); items are ``(image, label)`` after the optional transforms.
    Base of the built-in image datasets.

    >>> import lightgrad as lg
    >>> ds = LabeledImages(lg.zeros(3, 1, 2, 2), lg.tensor([0, 1, 2]))
    >>> image, label = ds[2]; image.shape, label
    ((1, 2, 2), 2)
    """

    def __init__(self, data: Tensor, targets: Tensor, transform: Callable | None = None,
                 target_transform: Callable | None = None):
        if len(data) != len(targets):
            raise ValueError(f"{type(self).__name__}: {len(data)} images but {len(targets)} "
                             "labels")
        self.data, self.targets = data, targets
        self.transform, self.target_transform = transform, target_transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        image, target = self.data[index], int(self.targets[index].item())
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def get_batch(self, indices: Sequence[int]) -> list[Any]:
        """``[images, labels]`` at ``indices``, as ``default_collate`` would give them."""
        if self.transform is not None or self.target_transform is not None:
            from .dataloader import default_collate
            return default_collate([self[i] for i in indices])
        idx = _index_tensor(indices)
        return [self.data[idx], self.targets[idx]]


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order.

    >>> import lightgrad as lg
    >>> sub = Subset(TensorDataset(lg.arange(5)), [4, 0])
    >>> len(sub), sub[0][0].item()
    (2, 4)
    """

    def __init__(self, dataset: Dataset, indices: Sequence[int]):
        self.dataset = dataset
        self.indices = list(indices)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)

    def get_batch(self, indices: Sequence[int]) -> Any:
        """The collated batch at ``indices`` (through the dataset's own ``get_batch`` when
        it has one)."""
        mapped = [self.indices[i] for i in indices]
        if hasattr(self.dataset, "get_batch"):
            return self.dataset.get_batch(mapped)
        from .dataloader import default_collate
        return default_collate([self.dataset[i] for i in mapped])


def _split_lengths(n: int, lengths: Sequence[float]) -> list[int]:
    """Turn fractions summing to 1 into counts (remainders go round-robin from the first),
    as PyTorch does; integer lengths pass through and must sum to ``n``."""
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        for i, frac in enumerate(lengths):
            if not 0 <= frac <= 1:
                raise ValueError(f"random_split: fraction at index {i} is {frac}, not in "
                                 "[0, 1]")
        counts = [int(math.floor(n * frac)) for frac in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if any(not isinstance(k, (int, np.integer)) or k < 0 for k in lengths):
        raise ValueError(f"random_split: lengths must be non-negative ints or fractions "
                         f"summing to 1, got {lengths}")
    if sum(lengths) != n:
        raise ValueError(f"random_split: lengths {lengths} sum to {sum(lengths)} but the "
                         f"dataset has {n} samples")
    return [int(k) for k in lengths]


def random_split(dataset: Dataset, lengths: Sequence[float],
                 generator: "Generator | np.random.Generator | None" = None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random subsets of the given lengths (counts,
    or fractions summing to 1).

    >>> import lightgrad as lg
    >>> parts = random_split(TensorDataset(lg.arange(10)), [3, 7],
    ...                      generator=Generator().manual_seed(1))
    >>> [len(p) for p in parts]
    [3, 7]
    """
    counts = _split_lengths(len(dataset), lengths)
    order = as_numpy_rng(generator).permutation(sum(counts)).tolist()
    return [Subset(dataset, order[end - k:end]) for end, k in zip(accumulate(counts), counts)]


class ConcatDataset(Dataset):
    """The samples of several datasets one after another.

    >>> import lightgrad as lg
    >>> ds = ConcatDataset([TensorDataset(lg.arange(3)), TensorDataset(lg.arange(10, 12))])
    >>> len(ds), ds[3][0].item(), ds[-1][0].item()
    (5, 10, 11)
    """

    def __init__(self, datasets: Sequence[Dataset]):
        self.datasets = list(datasets)
        if not self.datasets:
            raise AssertionError("datasets should not be an empty iterable")
        self.cumulative_sizes = list(accumulate(len(d) for d in self.datasets))

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: int) -> Any:
        if index < 0:
            if -index > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            index += len(self)
        if index >= len(self):
            raise IndexError(f"ConcatDataset: index {index} out of range for {len(self)}")
        d = bisect.bisect_right(self.cumulative_sizes, index)
        start = self.cumulative_sizes[d - 1] if d > 0 else 0
        return self.datasets[d][index - start]
