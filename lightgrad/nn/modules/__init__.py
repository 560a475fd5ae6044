"""``lightgrad.nn.modules``: PyTorch's ``torch.nn.modules`` import paths, re-exporting
the layers of ``lightgrad.nn``.

>>> from lightgrad.nn.modules.linear import Linear
>>> from lightgrad.nn.modules import Linear as L2
>>> Linear is L2
True
"""
from . import (
    activation, batchnorm, container, conv, dropout, linear, loss, module, normalization,
    pooling, rnn, sparse, transformer, upsampling,
)
from .activation import (
    ELU, GELU, LeakyReLU, LogSoftmax, Mish, ReLU, ReLU6, SiLU, Sigmoid, Softmax, Softplus,
    Tanh, MultiheadAttention,
)
from .batchnorm import BatchNorm1d, BatchNorm2d
from .container import ModuleDict, ModuleList, Sequential
from .conv import Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d
from .dropout import Dropout, Dropout1d, Dropout2d
from .linear import Flatten, Identity, Linear, Unflatten
from .loss import (
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss, MSELoss,
    NLLLoss, SmoothL1Loss,
)
from .module import Module
from .normalization import LayerNorm, RMSNorm
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .rnn import GRU, GRUCell, LSTM, LSTMCell, RNN, RNNBase, RNNCell, RNNCellBase
from .sparse import Embedding
from .upsampling import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d
from .transformer import (
    Transformer, TransformerDecoder, TransformerDecoderLayer, TransformerEncoder,
    TransformerEncoderLayer,
)
