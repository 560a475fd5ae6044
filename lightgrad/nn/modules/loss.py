"""Loss layers, importable as in PyTorch: ``lightgrad.nn.modules.loss``.

>>> from lightgrad import nn
>>> from lightgrad.nn.modules.loss import BCELoss
>>> BCELoss is nn.BCELoss
True
"""
from ..layers.loss import (
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss, MSELoss,
    NLLLoss, SmoothL1Loss,
)

__all__ = [
    "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "HuberLoss", "KLDivLoss", "L1Loss",
    "MSELoss", "NLLLoss", "SmoothL1Loss"
]
