"""Utilities under PyTorch's names: ``lightgrad.utils.data`` is ``torch.utils.data``.

>>> import lightgrad.utils.data
>>> lightgrad.utils.data.DataLoader is lightgrad.data.DataLoader
True
"""
from . import data

__all__ = ["data"]
