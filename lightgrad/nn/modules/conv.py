"""Convolution layers, importable as in PyTorch: ``lightgrad.nn.modules.conv``.

>>> from lightgrad import nn
>>> from lightgrad.nn.modules.conv import Conv1d
>>> Conv1d is nn.Conv1d
True
"""
from ..layers.conv import Conv1d, Conv2d
from ..layers.conv_transpose import ConvTranspose1d, ConvTranspose2d

__all__ = ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"]
