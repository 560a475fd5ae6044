"""Batch normalisation, importable as in PyTorch: ``lightgrad.nn.modules.batchnorm``.

>>> from lightgrad import nn
>>> from lightgrad.nn.modules.batchnorm import BatchNorm1d
>>> BatchNorm1d is nn.BatchNorm1d
True
"""
from ..layers.normalization import BatchNorm1d, BatchNorm2d

__all__ = ["BatchNorm1d", "BatchNorm2d"]
