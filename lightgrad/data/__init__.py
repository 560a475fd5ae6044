"""Data loading: datasets, random splits, batching, and built-in data sets.

>>> import lightgrad as lg
>>> from lightgrad.data import DataLoader, TensorDataset
>>> loader = DataLoader(TensorDataset(lg.randn(10, 3), lg.arange(10)), batch_size=5)
>>> [tuple(x.shape) for x, _ in loader]
[(5, 3), (5, 3)]
"""
from .dataloader import DataLoader, default_collate
from .dataset import Dataset, LabeledImages, Subset, TensorDataset, random_split
from .digits import Digits
from .generator import Generator
from .mnist import MNIST, FashionMNIST, load_idx

__all__ = ["DataLoader", "default_collate", "Dataset", "LabeledImages", "Subset",
           "TensorDataset", "random_split", "Digits", "Generator", "MNIST", "FashionMNIST",
           "load_idx"]
