"""Recurrent layers, importable as in PyTorch: ``lightgrad.nn.modules.rnn``.

>>> from lightgrad import nn
>>> from lightgrad.nn.modules.rnn import GRU
>>> GRU is nn.GRU
True
"""
from ..layers.rnn import GRU, GRUCell, LSTM, LSTMCell, RNN, RNNBase, RNNCell, RNNCellBase

__all__ = ["GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNBase", "RNNCell", "RNNCellBase"]
