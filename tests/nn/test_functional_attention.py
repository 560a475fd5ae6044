"""F.scaled_dot_product_attention against PyTorch: (B, H, L, E) and other batch shapes,
L != S, bool and float masks (broadcast), is_causal, scale; gradients w.r.t. q, k, v and a
float mask; dropout; second-order gradients; float64 gradcheck; validation messages."""
from __future__ import annotations

import numpy as np
import pytest
from oracle import check_parity
from test_functional import second_order_parity

import lightgrad as lg
import lightgrad.nn.functional as F
from lightgrad.autograd import gradcheck

torch = pytest.importorskip("torch")
TF = torch.nn.functional
rng = np.random.default_rng(5)

# (q shape, k shape, v shape)
SHAPES = [((2, 3, 5, 4), (2, 3, 7, 4), (2, 3, 7, 6)),   # (B, H, L, E), L != S
          ((6, 4), (6, 4), (6, 4)),                     # no batch dims
          ((2, 1, 4, 3), (2, 3, 5, 3), (1, 3, 5, 2))]   # broadcast batch dims


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("scale", [None, 0.7])
@pytest.mark.parametrize("qs,ks,vs", SHAPES)
def test_attention_parity(qs, ks, vs, scale, causal, dtype):
    kw = dict(is_causal=causal, scale=scale)
    check_parity(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, **kw),
                 [rng.standard_normal(s) for s in (qs, ks, vs)],
                 lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, **kw), dtype=dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("mask_shape", [(5, 7), (3, 1, 7), (2, 3, 5, 7)])
def test_attention_bool_mask_parity(mask_shape, dtype):
    mask = rng.random(mask_shape) > 0.4
    mask[..., 0] = True  # every query row keeps at least one key
    q, k, v = (rng.standard_normal(s) for s in SHAPES[0])
    check_parity(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, lg.tensor(mask)),
                 [q, k, v],
                 lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, torch.tensor(mask)),
                 dtype=dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("mask_shape", [(5, 7), (3, 1, 7)])
def test_attention_float_mask_parity_with_mask_grad(mask_shape, dtype):
    arrays = [rng.standard_normal(s) for s in SHAPES[0]] + [rng.standard_normal(mask_shape)]
    check_parity(lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, m, scale=0.5),
                 arrays,
                 lambda q, k, v, m: TF.scaled_dot_product_attention(q, k, v, m, scale=0.5),
                 dtype=dtype)


def test_attention_fully_masked_row_gives_zeros():
    mask = np.ones((4, 5), dtype=bool)
    mask[1] = False
    check_parity(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, lg.tensor(mask)),
                 [rng.standard_normal(s) for s in ((4, 3), (5, 3), (5, 2))],
                 lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, torch.tensor(mask)))


def test_attention_dropout():
    q, k, v = (lg.tensor(rng.standard_normal((2, 8, 4)), requires_grad=True)
               for _ in range(3))
    lg.manual_seed(7)
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    lg.manual_seed(7)
    again = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    np.testing.assert_array_equal(out.detach().numpy(), again.detach().numpy())
    plain = F.scaled_dot_product_attention(q, k, v)
    assert not np.allclose(out.detach().numpy(), plain.detach().numpy())
    # the function reseeds, so every call draws the same dropout mask
    assert gradcheck(lambda a, b, c: (lg.manual_seed(7), F.scaled_dot_product_attention(
        a, b, c, dropout_p=0.5))[1], [t.detach().double().requires_grad_() for t in (q, k, v)])


def test_attention_second_order():
    arrays = [rng.standard_normal(s) for s in ((3, 2), (4, 2), (4, 3), (3, 4))]
    second_order_parity(lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, m),
                        lambda q, k, v, m: TF.scaled_dot_product_attention(q, k, v, m),
                        arrays)
    second_order_parity(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                        lambda q, k, v: TF.scaled_dot_product_attention(q, k, v,
                                                                        is_causal=True),
                        arrays[:3])


def test_attention_gradcheck():
    q, k, v = (lg.tensor(rng.standard_normal(s), requires_grad=True)
               for s in ((1, 3, 2), (1, 4, 2), (1, 4, 3)))
    m = lg.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    assert gradcheck(lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, m), [q, k, v, m])
    assert gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                                    scale=0.3), [q, k, v])


def test_attention_errors():
    q, k, v = lg.ones(2, 5, 4), lg.ones(2, 7, 4), lg.ones(2, 7, 3)
    sdpa = F.scaled_dot_product_attention
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention: shapes do not match: "
                                         r"query \(2, 5, 4\) \(..., L, E\), key \(2, 7, 3\)"):
        sdpa(q, lg.ones(2, 7, 3), v)
    with pytest.raises(ValueError, match=r"attn_mask of shape \(5, 6\) does not broadcast to "
                                         r"the attention scores' shape \(2, 5, 7\)"):
        sdpa(q, k, v, lg.ones(5, 6, dtype=lg.bool))
    with pytest.raises(TypeError, match="attn_mask must be bool or float32"):
        sdpa(q, k, v, lg.ones(5, 7, dtype=lg.int64))
    with pytest.raises(ValueError, match="either attn_mask or is_causal"):
        sdpa(q, k, v, lg.ones(5, 7, dtype=lg.bool), is_causal=True)
    with pytest.raises(ValueError, match="batch dims of query"):
        sdpa(q, lg.ones(3, 7, 4), v)
    with pytest.raises(TypeError, match="query, key and value must share one floating-point"):
        sdpa(q, k.double(), v)
