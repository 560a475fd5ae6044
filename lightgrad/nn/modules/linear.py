"""Linear layers, importable as in PyTorch: ``lightgrad.nn.modules.linear``.

>>> from lightgrad import nn
>>> from lightgrad.nn.modules.linear import Flatten
>>> Flatten is nn.Flatten
True
"""
from ..layers.linear import Flatten, Identity, Linear, Unflatten

__all__ = ["Flatten", "Identity", "Linear", "Unflatten"]
