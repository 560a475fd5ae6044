"""Neural-network building blocks: modules, layers, functional ops and initialisers.

``lightgrad.nn`` mirrors ``torch.nn``: the same class names, arguments, defaults,
initialisation and state_dict keys, so a PyTorch model definition ports by changing the
import.

>>> import lightgrad as lg
>>> from lightgrad import nn
>>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
>>> [k for k in model.state_dict()]
['0.weight', '0.bias', '2.weight', '2.bias']
>>> model(lg.randn(3, 4)).shape
(3, 2)
"""
from . import functional, init, modules, parallel, utils
from .containers import ModuleDict, ModuleList, Sequential
from .layers.activation import (
    ELU, GELU, LeakyReLU, LogSoftmax, Mish, ReLU, ReLU6, SiLU, Sigmoid, Softmax, Softplus, Tanh,
)
from .layers.attention import MultiheadAttention
from .layers.conv import Conv1d, Conv2d
from .layers.conv_transpose import ConvTranspose1d, ConvTranspose2d
from .layers.dropout import Dropout
from .layers.dropout_nd import Dropout1d, Dropout2d
from .layers.linear import Flatten, Identity, Linear, Unflatten
from .layers.loss import (
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss, MSELoss, NLLLoss,
    SmoothL1Loss,
)
from .layers.normalization import BatchNorm1d, BatchNorm2d, LayerNorm, RMSNorm
from .layers.pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .layers.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase
from .layers.sparse import Embedding
from .layers.upsample import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d
from .layers.transformer import (
    Transformer, TransformerDecoder, TransformerDecoderLayer, TransformerEncoder,
    TransformerEncoderLayer,
)
from .module import Module
from .parallel import DataParallel
from .parameter import Parameter
