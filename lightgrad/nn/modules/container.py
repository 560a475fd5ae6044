"""Containers, importable as in PyTorch: ``lightgrad.nn.modules.container``.

>>> from lightgrad import nn
>>> from lightgrad.nn.modules.container import ModuleDict
>>> ModuleDict is nn.ModuleDict
True
"""
from ..containers import ModuleDict, ModuleList, Sequential

__all__ = ["ModuleDict", "ModuleList", "Sequential"]
