"""``torch.utils.data``'s names for lightgrad's data loading (``lightgrad.data``).

>>> import lightgrad as lg
>>> from lightgrad.utils.data import DataLoader, TensorDataset
>>> loader = DataLoader(TensorDataset(lg.arange(6)), batch_size=4)
>>> [b[0].tolist() for b in loader]
[[0, 1, 2, 3], [4, 5]]
"""
from ..data import (
    BatchSampler, ConcatDataset, DataLoader, Dataset, DistributedSampler, Generator,
    RandomSampler, Sampler,
    SequentialSampler, Subset, SubsetRandomSampler, TensorDataset, WeightedRandomSampler,
    WorkerInfo, default_collate, get_worker_info, random_split,
)

__all__ = ["BatchSampler", "ConcatDataset", "DataLoader", "Dataset", "DistributedSampler",
           "Generator",
           "RandomSampler", "Sampler", "SequentialSampler", "Subset", "SubsetRandomSampler",
           "TensorDataset", "WeightedRandomSampler", "WorkerInfo", "default_collate",
           "get_worker_info", "random_split"]
