"""The ``Module`` base class, importable as in PyTorch: ``lightgrad.nn.modules.module``.

>>> from lightgrad import nn
>>> from lightgrad.nn.modules.module import Module
>>> Module is nn.Module
True
"""
from ..module import Module

__all__ = ["Module"]
