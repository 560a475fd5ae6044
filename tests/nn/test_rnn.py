"""RNN, LSTM, GRU and their cells against torch.nn: torch's weights loaded through
state_dict, then outputs, final states and the gradients of a loss w.r.t. the input, the
initial states and every parameter compared in float64. Also state_dict keys, reprs,
initialisation, inter-layer dropout and input-shape errors. Shapes stay tiny (sequence 3,
batch 2, hidden 4) because this file also runs on the cuda emulator."""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import pytest
from oracle import assert_close, compare_modules, to_numpy

import lightgrad as lg
from lightgrad import nn

torch = pytest.importorskip("torch")

L, N, H_IN, H = 3, 2, 3, 4


def _pair(make: Callable[[Any], Any]) -> tuple[Any, Any]:
    """The same module on both libraries, torch's (float64) weights loaded into ours."""
    torch.manual_seed(0)
    theirs = make(torch.nn).double()
    ours = make(nn).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    result = ours.load_state_dict({k: lg.tensor(to_numpy(v))
                                   for k, v in theirs.state_dict().items()})
    assert result.missing_keys == [] and result.unexpected_keys == []
    return ours, theirs


def _compare(ours: Any, theirs: Any, arrays: list, structure: Callable[[list], tuple]) -> None:
    """Both modules called on ``structure(tensors made from arrays)``, compared."""
    compare_modules(ours, theirs, arrays, lambda module, ins, _lib: module(*structure(ins)))


MODULES = {
    "rnn": lambda m, **kw: m.RNN(H_IN, H, **kw),
    "rnn_relu": lambda m, **kw: m.RNN(H_IN, H, nonlinearity="relu", **kw),
    "lstm": lambda m, **kw: m.LSTM(H_IN, H, **kw),
    "gru": lambda m, **kw: m.GRU(H_IN, H, **kw),
}
# (num_layers, bidirectional, batch_first, initial state, unbatched, bias)
CONFIGS = [
    (1, False, False, False, False, True),
    (2, True, True, True, False, True),
    (2, False, False, True, True, True),
    (1, True, False, False, True, False),
    (1, False, True, True, False, False),
    (1, True, True, True, True, True),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(str(int(v)) for v in c))
@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_recurrent_matches_torch(kind: str, config: tuple) -> None:
    layers, bidir, batch_first, init_state, unbatched, bias = config
    ours, theirs = _pair(lambda m: MODULES[kind](m, num_layers=layers, bidirectional=bidir,
                                                 batch_first=batch_first, bias=bias))
    rng = np.random.default_rng(0)
    shape = (L, H_IN) if unbatched else (N, L, H_IN) if batch_first else (L, N, H_IN)
    arrays = [rng.standard_normal(shape)]
    state = (layers * (2 if bidir else 1),) + (() if unbatched else (N,)) + (H,)
    lstm = kind == "lstm"
    if init_state:
        arrays += [rng.standard_normal(state) for _ in range(2 if lstm else 1)]

    def structure(ts: list) -> tuple:
        if not init_state:
            return (ts[0],)
        return (ts[0], (ts[1], ts[2])) if lstm else (ts[0], ts[1])

    _compare(ours, theirs, arrays, structure)


def test_rnn_relu_matches_torch() -> None:
    ours, theirs = _pair(lambda m: MODULES["rnn_relu"](m, num_layers=2))
    rng = np.random.default_rng(0)
    _compare(ours, theirs, [rng.standard_normal((L, N, H_IN)), rng.standard_normal((2, N, H))],
             lambda ts: (ts[0], ts[1]))


CELLS = {
    "rnn_cell": lambda m, **kw: m.RNNCell(H_IN, H, **kw),
    "rnn_cell_relu": lambda m, **kw: m.RNNCell(H_IN, H, nonlinearity="relu", **kw),
    "lstm_cell": lambda m, **kw: m.LSTMCell(H_IN, H, **kw),
    "gru_cell": lambda m, **kw: m.GRUCell(H_IN, H, **kw),
}


@pytest.mark.parametrize("config", [(False, False, True), (True, False, True),
                                    (True, True, False)],
                         ids=["batched", "batched-hx", "unbatched-hx-nobias"])
@pytest.mark.parametrize("kind", list(CELLS))
def test_cell_matches_torch(kind: str, config: tuple) -> None:
    init_state, unbatched, bias = config
    ours, theirs = _pair(lambda m: CELLS[kind](m, bias=bias))
    rng = np.random.default_rng(0)
    batch = () if unbatched else (N,)
    arrays = [rng.standard_normal(batch + (H_IN,))]
    lstm = kind == "lstm_cell"
    if init_state:
        arrays += [rng.standard_normal(batch + (H,)) for _ in range(2 if lstm else 1)]

    def structure(ts: list) -> tuple:
        if not init_state:
            return (ts[0],)
        return (ts[0], (ts[1], ts[2])) if lstm else (ts[0], ts[1])

    _compare(ours, theirs, arrays, structure)


def test_parameter_names_shapes_and_init() -> None:
    for kind, gates in (("rnn", 1), ("lstm", 4), ("gru", 3)):
        ours = MODULES[kind](nn, num_layers=2, bidirectional=True)
        theirs = MODULES[kind](torch.nn, num_layers=2, bidirectional=True)
        tsd = theirs.state_dict()
        assert list(ours.state_dict()) == list(tsd)
        for name, value in ours.state_dict().items():
            assert tuple(value.shape) == tuple(tsd[name].shape), name
        assert tuple(ours.weight_ih_l1_reverse.shape) == (gates * H, 2 * H)
        bound = 1 / math.sqrt(H)
        for p in ours.parameters():
            values = p.detach().numpy()
            assert np.all(np.abs(values) <= bound) and np.any(values != 0)
    cell = nn.LSTMCell(H_IN, H, bias=False)
    assert list(cell.state_dict()) == ["weight_ih", "weight_hh"]


def test_dropout_between_layers_only_in_training() -> None:
    lg.manual_seed(0)
    ours, theirs = _pair(lambda m: m.GRU(H_IN, H, num_layers=2, dropout=0.5))
    ours.eval()
    theirs.eval()
    x = np.random.default_rng(0).standard_normal((L, N, H_IN))
    assert_close(ours(lg.tensor(x))[0], theirs(torch.tensor(x))[0])
    ours.train()
    trained = ours(lg.tensor(x))[0].detach().numpy()
    assert trained.shape == (L, N, H)
    assert not np.allclose(trained, to_numpy(theirs(torch.tensor(x))[0]))
    with pytest.warns(UserWarning, match="dropout"):
        nn.LSTM(H_IN, H, dropout=0.5)


def test_errors() -> None:
    rnn, lstm = nn.RNN(H_IN, H), nn.LSTM(H_IN, H, num_layers=2)
    with pytest.raises(RuntimeError, match="Expected 3, got 5"):
        rnn(lg.randn(L, N, 5))
    with pytest.raises(RuntimeError, match="2D or 3D"):
        rnn(lg.randn(1, L, N, H_IN))
    with pytest.raises(RuntimeError, match="Expected hidden size"):
        rnn(lg.randn(L, N, H_IN), lg.randn(2, N, H))
    with pytest.raises(RuntimeError, match="should also be 2-D"):
        rnn(lg.randn(L, H_IN), lg.randn(1, N, H))
    with pytest.raises(RuntimeError, match="Expected hidden size"):
        lstm(lg.randn(L, N, H_IN), (lg.randn(2, N, H), lg.randn(2, N, 5)))
    with pytest.raises(TypeError, match="tuple"):
        lstm(lg.randn(L, N, H_IN), lg.randn(2, N, H))
    with pytest.raises(RuntimeError, match="inconsistent input_size"):
        nn.GRUCell(H_IN, H)(lg.randn(N, 5))
    with pytest.raises(ValueError, match="1D or 2D"):
        nn.RNNCell(H_IN, H)(lg.randn(1, N, H_IN))
    with pytest.raises(RuntimeError, match="Expected hidden size"):
        nn.LSTMCell(H_IN, H)(lg.randn(N, H_IN), (lg.randn(N, H), lg.randn(N + 1, H)))
    with pytest.raises(NotImplementedError):
        nn.LSTM(H_IN, H, proj_size=2)
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(H_IN, H, nonlinearity="gelu")
    with pytest.raises(ValueError, match="dropout"):
        nn.GRU(H_IN, H, dropout=1.5)
