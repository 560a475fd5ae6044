"""Activation layers, importable as in PyTorch: ``lightgrad.nn.modules.activation``.

>>> from lightgrad import nn
>>> from lightgrad.nn.modules.activation import ELU
>>> ELU is nn.ELU
True
"""
from ..layers.activation import (
    ELU, GELU, LeakyReLU, LogSoftmax, Mish, ReLU, ReLU6, SiLU, Sigmoid, Softmax, Softplus, Tanh,
)
from ..layers.attention import MultiheadAttention

__all__ = [
    "ELU", "GELU", "LeakyReLU", "LogSoftmax", "Mish", "ReLU", "ReLU6", "SiLU", "Sigmoid",
    "Softmax", "Softplus", "Tanh", "MultiheadAttention"
]
