"""Layer and RMS normalisation, importable as in PyTorch: ``lightgrad.nn.modules.normalization``.

>>> from lightgrad import nn
>>> from lightgrad.nn.modules.normalization import LayerNorm
>>> LayerNorm is nn.LayerNorm
True
"""
from ..layers.normalization import LayerNorm, RMSNorm

__all__ = ["LayerNorm", "RMSNorm"]
