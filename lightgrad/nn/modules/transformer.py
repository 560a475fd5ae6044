"""Transformer layers, importable as in PyTorch: ``lightgrad.nn.modules.transformer``.

>>> from lightgrad import nn
>>> from lightgrad.nn.modules.transformer import Transformer
>>> Transformer is nn.Transformer
True
"""
from ..layers.transformer import (
    Transformer, TransformerDecoder, TransformerDecoderLayer, TransformerEncoder,
    TransformerEncoderLayer,
)

__all__ = [
    "Transformer", "TransformerDecoder", "TransformerDecoderLayer", "TransformerEncoder",
    "TransformerEncoderLayer"
]
