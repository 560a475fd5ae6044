"""Upsampling layers, importable as in PyTorch: ``lightgrad.nn.modules.upsampling``.

>>> from lightgrad import nn
>>> from lightgrad.nn.modules.upsampling import Upsample
>>> Upsample is nn.Upsample
True
"""
from ..layers.upsample import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d

__all__ = ["Upsample", "UpsamplingBilinear2d", "UpsamplingNearest2d"]
