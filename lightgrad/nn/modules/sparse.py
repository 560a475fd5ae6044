"""Embedding, importable as in PyTorch: ``lightgrad.nn.modules.sparse``.

>>> from lightgrad import nn
>>> from lightgrad.nn.modules.sparse import Embedding
>>> Embedding is nn.Embedding
True
"""
from ..layers.sparse import Embedding

__all__ = ["Embedding"]
