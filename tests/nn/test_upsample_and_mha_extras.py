"""``nn.Upsample`` (and ``UpsamplingNearest2d``/``UpsamplingBilinear2d``) and
``MultiheadAttention(add_bias_kv=..., add_zero_attn=...)`` against torch.nn: outputs,
gradients and state_dict names (float64, tiny shapes: this also runs on the emulator)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from oracle import compare_modules, to_numpy

import lightgrad as lg
from lightgrad import nn

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

L, S, N, E, H = 3, 2, 2, 4, 2


def _pair(make: Any) -> tuple[Any, Any]:
    torch.manual_seed(0)
    theirs = make(torch.nn).double()
    ours = make(nn).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict({k: lg.tensor(to_numpy(v)) for k, v in theirs.state_dict().items()})
    return ours, theirs


@pytest.mark.parametrize("make, shape", [
    (lambda m: m.Upsample(scale_factor=2), (1, 2, 2, 3)),
    (lambda m: m.Upsample(size=(3, 5), mode="bilinear", align_corners=False), (2, 1, 2, 3)),
    (lambda m: m.Upsample(scale_factor=(1.5, 2), mode="bilinear", align_corners=True),
     (1, 1, 2, 3)),
    (lambda m: m.Upsample(size=5, mode="linear"), (1, 2, 3)),
    (lambda m: m.UpsamplingNearest2d(size=(4, 3)), (1, 1, 2, 3)),
    (lambda m: m.UpsamplingBilinear2d(scale_factor=2), (1, 2, 2, 2)),
])
def test_upsample_matches_torch(make: Any, shape: tuple) -> None:
    ours, theirs = make(nn), make(torch.nn)
    assert repr(ours) == repr(theirs)
    x = np.random.default_rng(0).standard_normal(shape)
    compare_modules(ours, theirs, [x], lambda mod, ts, lib: mod(ts[0]))


def test_upsample_errors() -> None:
    with pytest.raises(ValueError, match="align_corners"):
        nn.Upsample(scale_factor=2, align_corners=True)(lg.zeros(1, 1, 2, 2))


@pytest.mark.parametrize("bias_kv, zero_attn", [(True, False), (False, True), (True, True)])
@pytest.mark.parametrize("masks", ["none", "bool", "float3d"])
def test_multihead_attention_bias_kv_zero_attn(bias_kv: bool, zero_attn: bool,
                                               masks: str) -> None:
    ours, theirs = _pair(lambda m: m.MultiheadAttention(E, H, add_bias_kv=bias_kv,
                                                        add_zero_attn=zero_attn))
    if bias_kv:
        assert ours.bias_k.shape == (1, 1, E) and "bias_v" in ours.state_dict()
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((L, N, E)), rng.standard_normal((S, N, E)),
              rng.standard_normal((S, N, E))]
    if masks == "float3d":
        arrays.append(rng.standard_normal((N * H, L, S)))

    def call(mod: Any, ts: list, lib: Any) -> Any:
        attn = pad = None
        if masks == "bool":
            attn = lib.tensor(np.array([[False, True], [False, False], [True, False]]))
            pad = lib.tensor(np.array([[False, False], [False, True]]))
        elif masks == "float3d":
            attn = ts[3]
        return mod(ts[0], ts[1], ts[2], attn_mask=attn, key_padding_mask=pad)

    compare_modules(ours, theirs, arrays, call)
