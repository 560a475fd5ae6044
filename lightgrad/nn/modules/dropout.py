"""Dropout layers, importable as in PyTorch: ``lightgrad.nn.modules.dropout``.

>>> from lightgrad import nn
>>> from lightgrad.nn.modules.dropout import Dropout
>>> Dropout is nn.Dropout
True
"""
from ..layers.dropout import Dropout
from ..layers.dropout_nd import Dropout1d, Dropout2d

__all__ = ["Dropout", "Dropout1d", "Dropout2d"]
