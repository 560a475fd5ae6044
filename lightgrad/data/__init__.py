"""Data loading: datasets, random splits, batching, and built-in data sets.

>>> import lightgrad as lg
>>> from lightgrad.data import DataLoader, TensorDataset
>>> loader = DataLoader(TensorDataset(lg.randn(10, 3), lg.arange(10)), batch_size=5)
>>> [tuple(x.shape) for x, _ in loader]
[(5, 3), (5, 3)]
"""
from .dataloader import DataLoader, WorkerInfo, default_collate, get_worker_info
from .dataset import (
    ConcatDataset, Dataset, LabeledImages, Subset, TensorDataset, random_split,
)
from .digits import Digits
from .distributed import DistributedSampler
from .generator import Generator
from .mnist import MNIST, FashionMNIST, load_idx
from .sampler import (
    BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
    WeightedRandomSampler,
)

__all__ = ["DataLoader", "default_collate", "get_worker_info", "WorkerInfo", "Dataset",
           "ConcatDataset", "LabeledImages", "Subset", "TensorDataset", "random_split",
           "Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler",
           "WeightedRandomSampler", "BatchSampler", "DistributedSampler", "Digits",
           "Generator", "MNIST", "FashionMNIST", "load_idx"]
