"""MultiheadAttention and the Transformer layers against torch.nn: torch's weights loaded
through state_dict, then outputs and the gradients of a loss w.r.t. the inputs and every
parameter compared in float64; state_dict keys must equal PyTorch's. Shapes stay tiny
(sequence 3, batch 2, embedding 4) because this file also runs on the cuda emulator."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest
from oracle import assert_close, compare_modules, to_numpy

import lightgrad as lg
from lightgrad import nn

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

L, S, N, E, H = 3, 2, 2, 4, 2


def _pair(make: Callable[[Any], Any]) -> tuple[Any, Any]:
    """The same module on both libraries, torch's (float64) weights loaded into ours."""
    torch.manual_seed(0)
    theirs = make(torch.nn).double()
    ours = make(nn).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    result = ours.load_state_dict({k: lg.tensor(to_numpy(v))
                                   for k, v in theirs.state_dict().items()})
    assert result.missing_keys == [] and result.unexpected_keys == []
    return ours, theirs


def _masks(lib: Any, kind: str) -> tuple:
    """(attn_mask (L, S), key_padding_mask (N, S)) of ``kind``; no row is fully masked."""
    if kind == "none":
        return None, None
    attn = np.array([[False, True], [False, False], [False, True]])
    pad = np.array([[False, False], [False, True]])
    if kind == "bool":
        return lib.tensor(attn), lib.tensor(pad)
    f = np.where(attn, -1e9, 0.0) + 0.25 * np.arange(L * S).reshape(L, S)
    return lib.tensor(f), lib.tensor(np.where(pad, -2.0, 0.5))


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("masks", ["none", "bool", "float"])
@pytest.mark.parametrize("average", [True, False])
def test_multihead_attention_matches_torch(batch_first: bool, masks: str,
                                           average: bool) -> None:
    ours, theirs = _pair(lambda m: m.MultiheadAttention(E, H, batch_first=batch_first))
    rng = np.random.default_rng(0)
    qs, ks = ((N, L, E), (N, S, E)) if batch_first else ((L, N, E), (S, N, E))
    arrays = [rng.standard_normal(qs), rng.standard_normal(ks), rng.standard_normal(ks)]

    def call(mod: Any, ts: list, lib: Any) -> Any:
        attn, pad = _masks(lib, masks)
        return mod(*ts, key_padding_mask=pad, attn_mask=attn, average_attn_weights=average)

    compare_modules(ours, theirs, arrays, call)


@pytest.mark.parametrize("bias", [True, False])
def test_multihead_attention_kdim_vdim_unbatched(bias: bool) -> None:
    ours, theirs = _pair(lambda m: m.MultiheadAttention(E, H, bias=bias, kdim=3, vdim=5))
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((L, E)), rng.standard_normal((S, 3)),
              rng.standard_normal((S, 5))]
    compare_modules(ours, theirs, arrays, lambda mod, ts, lib: mod(*ts))


def test_multihead_attention_3d_mask_and_no_weights() -> None:
    ours, theirs = _pair(lambda m: m.MultiheadAttention(E, H))
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((L, N, E)), rng.standard_normal((L, N, E)),
              rng.standard_normal((L, N, E)), rng.standard_normal((N * H, L, L))]

    def call(mod: Any, ts: list, lib: Any) -> Any:
        out, w = mod(ts[0], ts[1], ts[2], attn_mask=ts[3], need_weights=False)
        assert w is None
        return out

    compare_modules(ours, theirs, arrays, call)


def test_multihead_attention_causal_and_errors() -> None:
    mha = nn.MultiheadAttention(E, H).double()
    x = lg.tensor(np.random.default_rng(0).standard_normal((L, 1, E)))
    mask = nn.Transformer.generate_square_subsequent_mask(L, dtype=lg.float64)
    a = mha(x, x, x, attn_mask=mask)[0]
    b = mha(x, x, x, is_causal=True, need_weights=False)[0]
    assert_close(a, b.detach().numpy())
    with pytest.raises(ValueError):
        nn.MultiheadAttention(5, 2)


@pytest.mark.parametrize("config", [("relu", False, False), ("gelu", True, True)])
def test_transformer_encoder_matches_torch(config: tuple) -> None:
    act, norm_first, batch_first = config

    def make(m: Any) -> Any:
        layer = m.TransformerEncoderLayer(E, H, dim_feedforward=6, dropout=0.0, activation=act,
                                          norm_first=norm_first, batch_first=batch_first)
        return m.TransformerEncoder(layer, 2, norm=m.LayerNorm(E))

    ours, theirs = _pair(make)
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((N, L, E) if batch_first else (L, N, E))]

    def call(mod: Any, ts: list, lib: Any) -> Any:
        mask = lib.tensor(np.array([[0.0, -1.0, 0.5], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
        pad = lib.tensor(np.array([[False, False, True], [False, False, False]]))
        return mod(ts[0], mask=mask, src_key_padding_mask=pad)

    compare_modules(ours, theirs, arrays, call)


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_matches_torch(norm_first: bool) -> None:
    ours, theirs = _pair(lambda m: m.Transformer(E, H, 1, 1, dim_feedforward=6, dropout=0.0,
                                                 norm_first=norm_first))
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((S, N, E)), rng.standard_normal((L, N, E))]

    def call(mod: Any, ts: list, lib: Any) -> Any:
        mask = mod.generate_square_subsequent_mask(L, dtype=lib.float64)
        pad = lib.tensor(np.array([[False, True], [False, False]]))
        return mod(ts[0], ts[1], tgt_mask=mask, memory_key_padding_mask=pad)

    compare_modules(ours, theirs, arrays, call)


def test_transformer_decoder_layer_and_subclass() -> None:
    class Model(nn.Transformer):
        def __init__(self) -> None:
            super().__init__(d_model=E, nhead=H, num_encoder_layers=1, num_decoder_layers=1,
                             dim_feedforward=6)
            self.head = nn.Linear(E, 3)

        def forward(self, src: Any, tgt: Any) -> Any:  # type: ignore[override]
            return self.head(super().forward(src, tgt))

    model = Model()
    assert "head.weight" in model.state_dict()
    assert model(lg.randn(S, N, E), lg.randn(L, N, E)).shape == (L, N, 3)
    ours, theirs = _pair(lambda m: m.TransformerDecoderLayer(E, H, 6, dropout=0.0))
    keys = [k for k in ours.state_dict() if k.startswith(("multihead_attn.in", "norm3"))]
    assert keys == ["multihead_attn.in_proj_weight", "multihead_attn.in_proj_bias",
                    "norm3.weight", "norm3.bias"]
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((L, N, E)), rng.standard_normal((S, N, E))]
    compare_modules(ours, theirs, arrays,
                    lambda mod, ts, lib: mod(ts[0], ts[1], tgt_is_causal=False))


CONV_T = [
    (1, dict(kernel_size=3)),
    (1, dict(kernel_size=3, stride=2, padding=1, output_padding=1, dilation=2, bias=False)),
    (2, dict(kernel_size=2, stride=2)),
    (2, dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), output_padding=(1, 0),
             groups=2)),
]


@pytest.mark.parametrize("config", CONV_T, ids=range(len(CONV_T)))
def test_conv_transpose_matches_torch(config: tuple) -> None:
    n, kw = config
    name = f"ConvTranspose{n}d"
    ours, theirs = _pair(lambda m: getattr(m, name)(2, 4, **kw))
    assert repr(ours) == repr(theirs)
    rng = np.random.default_rng(0)
    compare_modules(ours, theirs, [rng.standard_normal((2, 2) + (3,) * n)],
             lambda mod, ts, lib: mod(ts[0]))


def test_conv_transpose_output_size_and_unbatched() -> None:
    ours, theirs = _pair(lambda m: m.ConvTranspose2d(2, 3, 3, stride=2, padding=1))
    rng = np.random.default_rng(0)
    compare_modules(ours, theirs, [rng.standard_normal((2, 3, 3))],
             lambda mod, ts, lib: mod(ts[0], output_size=[6, 5]))


@pytest.mark.parametrize("n", [1, 2])
def test_channel_dropout(n: int) -> None:
    drop = getattr(nn, f"Dropout{n}d")(0.5)
    assert repr(drop) == repr(getattr(torch.nn, f"Dropout{n}d")(0.5))
    x = lg.ones(*((8, 6) + (3,) * n))
    out = drop(x).detach().numpy()
    per_channel = out.reshape(8, 6, -1)
    assert np.all((per_channel == 0) | (per_channel == 2))
    assert np.all(per_channel.min(-1) == per_channel.max(-1))  # whole channels
    assert 0 < (per_channel == 0).mean() < 1
    assert drop.eval()(x) is x


INTERP = [
    ((1, 2, 3), dict(size=7, mode="nearest")),
    ((1, 2, 4), dict(scale_factor=1.5, mode="nearest")),
    ((1, 2, 3), dict(size=5, mode="linear", align_corners=True)),
    ((2, 1, 4), dict(scale_factor=0.75, mode="linear")),
    ((1, 2, 2, 3), dict(size=(3, 5), mode="nearest")),
    ((1, 1, 3, 2), dict(scale_factor=2, mode="bilinear")),
    ((2, 1, 3, 3), dict(size=(4, 2), mode="bilinear", align_corners=True)),
    ((1, 1, 4, 3), dict(scale_factor=(0.5, 1.7), mode="bilinear", align_corners=False)),
]


@pytest.mark.parametrize("config", INTERP, ids=range(len(INTERP)))
def test_interpolate_matches_torch(config: tuple) -> None:
    shape, kw = config
    a = np.random.default_rng(0).standard_normal(shape)
    x, tx = lg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    out, tout = nn.functional.interpolate(x, **kw), torch.nn.functional.interpolate(tx, **kw)
    assert_close(out, tout)
    w = np.random.default_rng(1).standard_normal(tuple(tout.shape))
    (out * lg.tensor(w)).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    assert_close(x.grad, tx.grad)


def test_interpolate_errors() -> None:
    x = lg.ones(1, 1, 2, 2)
    with pytest.raises(ValueError):
        nn.functional.interpolate(x)
    with pytest.raises(NotImplementedError):
        nn.functional.interpolate(x, size=3, mode="bicubic")
    with pytest.raises(ValueError):
        nn.functional.interpolate(x, size=3, align_corners=True)


def test_modules_import_paths() -> None:
    import importlib
    paths = {
        "linear": ["Linear", "Identity"], "conv": ["Conv2d", "ConvTranspose2d"],
        "activation": ["ReLU", "MultiheadAttention"], "loss": ["MSELoss"],
        "module": ["Module"], "container": ["Sequential", "ModuleList"],
        "batchnorm": ["BatchNorm1d"], "normalization": ["LayerNorm"],
        "dropout": ["Dropout", "Dropout2d"], "rnn": ["LSTM", "RNNBase"],
        "transformer": ["Transformer", "TransformerEncoderLayer"],
        "pooling": ["MaxPool2d"], "sparse": ["Embedding"],
    }
    for mod, names in paths.items():
        ours = importlib.import_module(f"lightgrad.nn.modules.{mod}")
        theirs = importlib.import_module(f"torch.nn.modules.{mod}")
        for name in names:
            assert getattr(ours, name) is getattr(nn, name)
            assert hasattr(theirs, name)
    from lightgrad.nn.modules.linear import Linear
    assert Linear is nn.Linear


def test_data_parallel() -> None:
    ours, theirs = _pair(lambda m: m.DataParallel(m.Linear(3, 2)))
    assert list(ours.state_dict()) == ["module.weight", "module.bias"]
    assert isinstance(ours.module, nn.Linear) and nn.parallel.DataParallel is nn.DataParallel
    rng = np.random.default_rng(0)
    compare_modules(ours, theirs, [rng.standard_normal((4, 3))], lambda mod, ts, lib: mod(ts[0]))
