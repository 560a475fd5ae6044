"""Pooling layers, importable as in PyTorch: ``lightgrad.nn.modules.pooling``.

>>> from lightgrad import nn
>>> from lightgrad.nn.modules.pooling import AdaptiveAvgPool2d
>>> AdaptiveAvgPool2d is nn.AdaptiveAvgPool2d
True
"""
from ..layers.pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d

__all__ = ["AdaptiveAvgPool2d", "AvgPool2d", "MaxPool2d"]
