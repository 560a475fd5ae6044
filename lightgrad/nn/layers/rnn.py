"""Recurrent layers: ``RNN``, ``LSTM``, ``GRU`` and their one-step cells.

The same arguments, parameter names and shapes, gate order (LSTM i,f,g,o; GRU r,z,n),
initialisation (U(-1/sqrt(hidden), 1/sqrt(hidden))) and output shapes as ``torch.nn``, so a
PyTorch state_dict loads unchanged.

>>> import lightgrad as lg
>>> from lightgrad import nn
>>> lstm = nn.LSTM(3, 4, num_layers=2)
>>> out, (h, c) = lstm(lg.randn(5, 2, 3))
>>> out.shape, h.shape, c.shape
((5, 2, 4), (2, 2, 4), (2, 2, 4))
"""
from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

from ...creation import empty, zeros
from ...functions import cat, stack
from ...tensor import Tensor
from .. import functional as F
from .. import init
from ..module import Module
from ..parameter import Parameter
from ._common import check_input

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _rnn_step(mode: str, x_gates: Tensor, h: Tensor, c: Tensor | None, w_hh: Tensor,
              b_hh: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """One time step given ``x_gates = x @ w_ih.T + b_ih``; returns the new (h, c)."""
    h_gates = F.linear(h, w_hh, b_hh)
    if mode == "RNN_TANH":
        return (x_gates + h_gates).tanh(), None
    if mode == "RNN_RELU":
        return (x_gates + h_gates).relu(), None
    if mode == "LSTM":
        i, f, g, o = (x_gates + h_gates).chunk(4, dim=-1)
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        return o.sigmoid() * c.tanh(), c
    x_r, x_z, x_n = x_gates.chunk(3, dim=-1)
    h_r, h_z, h_n = h_gates.chunk(3, dim=-1)
    r, z = (x_r + h_r).sigmoid(), (x_z + h_z).sigmoid()
    n = (x_n + r * h_n).tanh()
    return n + z * (h - n), None


class RNNBase(Module):
    """What ``RNN``, ``LSTM`` and ``GRU`` share: parameters, checks and the layer loop.

    >>> RNNBase("GRU", 3, 4).weight_ih_l0.shape
    (12, 3)
    """

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device: Any = None,
                 dtype: Any = None):
        super().__init__()
        if mode not in _GATES:
            raise ValueError(f"Unrecognized RNN mode: {mode}")
        if (not isinstance(dropout, numbers.Number) or isinstance(dropout, bool)
                or not 0 <= dropout <= 1):
            raise ValueError("dropout should be a number in range [0, 1] representing the "
                             "probability of an element being zeroed")
        if not isinstance(hidden_size, int) or isinstance(hidden_size, bool) \
                or hidden_size <= 0:
            raise ValueError(f"hidden_size must be a positive integer, got {hidden_size}")
        if not isinstance(num_layers, int) or isinstance(num_layers, bool) or num_layers <= 0:
            raise ValueError(f"num_layers must be a positive integer, got {num_layers}")
        if proj_size:
            raise NotImplementedError("proj_size is not supported by lightgrad's LSTM")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, "
                          f"so non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}", stacklevel=2)
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional = float(dropout), bidirectional
        self.proj_size = proj_size
        gate_size = _GATES[mode] * hidden_size
        directions = 2 if bidirectional else 1
        self._flat_weights_names: list[str] = []
        for layer in range(num_layers):
            for direction in range(directions):
                in_size = input_size if layer == 0 else hidden_size * directions
                suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                shapes = [("weight_ih", (gate_size, in_size)),
                          ("weight_hh", (gate_size, hidden_size))]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                for name, shape in shapes:
                    setattr(self, name + suffix,
                            Parameter(empty(*shape, device=device, dtype=dtype)))
                    self._flat_weights_names.append(name + suffix)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -stdv, stdv)

    @property
    def _num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _layer_params(self, layer: int, direction: int) -> tuple[Any, ...]:
        suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
        names = ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if self.bias else ())
        params = tuple(getattr(self, n + suffix) for n in names)
        return params if self.bias else params + (None, None)

    def _check_hidden(self, hx: Any, name: str, batched: bool, batch: int) -> Tensor:
        if not isinstance(hx, Tensor):
            raise TypeError(f"{type(self).__name__}: expected {name} to be a Tensor, got "
                            f"{type(hx).__name__}")
        if batched and hx.ndim != 3:
            raise RuntimeError(f"For batched 3-D input, {name} should also be 3-D but got "
                               f"{hx.ndim}-D tensor")
        if not batched and hx.ndim != 2:
            raise RuntimeError(f"For unbatched 2-D input, {name} should also be 2-D but got "
                               f"{hx.ndim}-D tensor")
        hx = hx if batched else hx.unsqueeze(1)
        expected = (self.num_layers * self._num_directions, batch, self.hidden_size)
        if tuple(hx.shape) != expected:
            raise RuntimeError(f"{type(self).__name__}: Expected hidden size {expected}, got "
                               f"{tuple(hx.shape if batched else hx.squeeze(1).shape)}")
        return hx

    def flatten_parameters(self) -> None:
        """PyTorch packs cuDNN's weights into one buffer here; lightgrad keeps each weight
        its own tensor, so there is nothing to do (kept so PyTorch code runs unchanged)."""

    def forward(self, input: Tensor, hx: Any = None) -> tuple[Any, Any]:
        check_input(self, input, (2, 3))
        batched = input.ndim == 3
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first:
            x = x.transpose(0, 1)
        if x.shape[-1] != self.input_size:
            raise RuntimeError(f"{type(self).__name__}: input.size(-1) must be equal to "
                               f"input_size. Expected {self.input_size}, got {x.shape[-1]}")
        batch, total = x.shape[1], self.num_layers * self._num_directions
        lstm = self.mode == "LSTM"
        if hx is None:
            h0 = zeros(total, batch, self.hidden_size, dtype=x.dtype, device=x.device)
            c0 = h0 if lstm else None
        elif lstm:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError("LSTM: expected hx to be a tuple (h_0, c_0)")
            h0 = self._check_hidden(hx[0], "hx[0]", batched, batch)
            c0 = self._check_hidden(hx[1], "hx[1]", batched, batch)
        else:
            h0, c0 = self._check_hidden(hx, "hx", batched, batch), None
        h_list, c_list = h0.unbind(0), (c0.unbind(0) if lstm else None)
        h_n: list[Tensor] = []
        c_n: list[Tensor] = []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0 and self.training:
                x = F.dropout(x, self.dropout, True)
            outs = []
            for direction in range(self._num_directions):
                k = layer * self._num_directions + direction
                w_ih, w_hh, b_ih, b_hh = self._layer_params(layer, direction)
                steps = F.linear(x, w_ih, b_ih).unbind(0)
                h, c = h_list[k], (c_list[k] if lstm else None)
                ys = []
                order = range(len(steps) - 1, -1, -1) if direction == 1 else range(len(steps))
                for t in order:
                    h, c = _rnn_step(self.mode, steps[t], h, c, w_hh, b_hh)
                    ys.append(h)
                if direction == 1:
                    ys.reverse()
                outs.append(stack(ys, 0))
                h_n.append(h)
                if lstm:
                    c_n.append(c)
            x = outs[0] if len(outs) == 1 else cat(outs, dim=-1)
        output = x
        h_out = stack(h_n, 0)
        c_out = stack(c_n, 0) if lstm else None
        if batched and self.batch_first:
            output = output.transpose(0, 1)
        if not batched:
            output, h_out = output.squeeze(1), h_out.squeeze(1)
            c_out = c_out.squeeze(1) if lstm else None
        return (output, (h_out, c_out)) if lstm else (output, h_out)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s


class RNN(RNNBase):
    """Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (or relu).

    Input (L, N, H_in), (N, L, H_in) with ``batch_first`` or unbatched (L, H_in); optional
    ``hx`` of shape (num_layers * num_directions, N, H). Returns ``(output, h_n)``.

    >>> import lightgrad as lg
    >>> out, h = RNN(3, 4, bidirectional=True)(lg.randn(5, 2, 3))
    >>> out.shape, h.shape
    ((5, 2, 8), (2, 2, 4))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device: Any = None,
                 dtype: Any = None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or "
                             "'relu'.")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype)


class LSTM(RNNBase):
    """Long short-term memory, gates in PyTorch's order i, f, g, o.

    ``hx`` is an optional tuple ``(h_0, c_0)``; returns ``(output, (h_n, c_n))``.
    ``proj_size`` is not supported (NotImplementedError).

    >>> import lightgrad as lg
    >>> out, (h, c) = LSTM(3, 4, batch_first=True)(lg.randn(2, 5, 3))
    >>> out.shape, h.shape, c.shape
    ((2, 5, 4), (1, 2, 4), (1, 2, 4))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device: Any = None,
                 dtype: Any = None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, proj_size, device=device, dtype=dtype)


class GRU(RNNBase):
    """Gated recurrent unit, gates in PyTorch's order r, z, n with
    ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))`` and ``h' = (1 - z) * n + z * h``.

    >>> import lightgrad as lg
    >>> out, h = GRU(3, 4, num_layers=2)(lg.randn(5, 3))
    >>> out.shape, h.shape
    ((5, 4), (2, 4))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, device: Any = None, dtype: Any = None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, device=device, dtype=dtype)


class RNNCellBase(Module):
    """What the cells share: ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh`` and checks.

    >>> RNNCellBase(3, 4, True, 4).weight_hh.shape
    (16, 4)
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int,
                 device: Any = None, dtype: Any = None):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        gates = num_chunks * hidden_size
        self.weight_ih = Parameter(empty(gates, input_size, device=device, dtype=dtype))
        self.weight_hh = Parameter(empty(gates, hidden_size, device=device, dtype=dtype))
        if bias:
            self.bias_ih = Parameter(empty(gates, device=device, dtype=dtype))
            self.bias_hh = Parameter(empty(gates, device=device, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for p in self.parameters():
            init.uniform_(p, -stdv, stdv)

    def _prepare(self, input: Tensor, hx: Any, n_states: int) -> tuple[Tensor, list, bool]:
        """Check shapes; return the 2-D input, the 2-D states (zeros if none), batched."""
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: expected a Tensor input, got {type(input).__name__}")
        if input.ndim not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.ndim}D "
                             "input instead")
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"{name}: input has inconsistent input_size: got "
                               f"{input.shape[-1]} expected {self.input_size}")
        batched = input.ndim == 2
        x = input if batched else input.unsqueeze(0)
        if hx is None:
            z = zeros(x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device)
            return x, [z] * n_states, batched
        states = list(hx) if n_states == 2 else [hx]
        if n_states == 2 and len(states) != 2:
            raise TypeError(f"{name}: expected hx to be a tuple (h_0, c_0)")
        out = []
        for s in states:
            if not isinstance(s, Tensor):
                raise TypeError(f"{name}: expected hx to be a Tensor, got {type(s).__name__}")
            if s.ndim != input.ndim:
                raise RuntimeError(f"{name}: Expected hidden to be {input.ndim}D for "
                                   f"{input.ndim}D input, got {s.ndim}D")
            s = s if batched else s.unsqueeze(0)
            if tuple(s.shape) != (x.shape[0], self.hidden_size):
                raise RuntimeError(f"{name}: Expected hidden size "
                                   f"{(x.shape[0], self.hidden_size)}, got {tuple(s.shape)}")
            out.append(s)
        return x, out, batched

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        nonlinearity = getattr(self, "nonlinearity", "tanh")
        if nonlinearity != "tanh":
            s += f", nonlinearity={nonlinearity}"
        return s


class RNNCell(RNNCellBase):
    """One Elman RNN step: ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (or relu).

    Input (N, H_in) or (H_in,), optional ``hx`` (N, H) or (H,); returns ``h'``.

    >>> import lightgrad as lg
    >>> RNNCell(3, 4)(lg.randn(2, 3)).shape
    (2, 4)
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device: Any = None, dtype: Any = None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}")
        super().__init__(input_size, hidden_size, bias, 1, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, (h,), batched = self._prepare(input, hx, 1)
        mode = "RNN_TANH" if self.nonlinearity == "tanh" else "RNN_RELU"
        h, _ = _rnn_step(mode, F.linear(x, self.weight_ih, self.bias_ih), h, None,
                         self.weight_hh, self.bias_hh)
        return h if batched else h.squeeze(0)


class LSTMCell(RNNCellBase):
    """One LSTM step (gates i, f, g, o); ``hx`` is an optional ``(h, c)``; returns
    ``(h', c')``.

    >>> import lightgrad as lg
    >>> h, c = LSTMCell(3, 4)(lg.randn(3))
    >>> h.shape, c.shape
    ((4,), (4,))
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device: Any = None, dtype: Any = None):
        super().__init__(input_size, hidden_size, bias, 4, device=device, dtype=dtype)

    def forward(self, input: Tensor, hx: Any = None) -> tuple[Tensor, Tensor]:
        x, (h, c), batched = self._prepare(input, hx, 2)
        h, c = _rnn_step("LSTM", F.linear(x, self.weight_ih, self.bias_ih), h, c,
                         self.weight_hh, self.bias_hh)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(RNNCellBase):
    """One GRU step (gates r, z, n, as ``GRU``); returns ``h'``.

    >>> import lightgrad as lg
    >>> GRUCell(3, 4)(lg.randn(2, 3), lg.zeros(2, 4)).shape
    (2, 4)
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device: Any = None, dtype: Any = None):
        super().__init__(input_size, hidden_size, bias, 3, device=device, dtype=dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, (h,), batched = self._prepare(input, hx, 1)
        h, _ = _rnn_step("GRU", F.linear(x, self.weight_ih, self.bias_ih), h, None,
                         self.weight_hh, self.bias_hh)
        return h if batched else h.squeeze(0)
