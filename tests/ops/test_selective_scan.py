"""F.selective_scan (Mamba's fused scan) against two step-by-step references: the
mamba-minimal loop written with plain lightgrad ops, and the same loop in PyTorch. Forward,
last state and every gradient; float64 gradcheck; every option; bad input."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from oracle import assert_close, to_torch

import lightgrad as lg
import lightgrad.nn.functional as F
from lightgrad.autograd import gradcheck
from lightgrad.backends import cpu_scan

torch = pytest.importorskip("torch")

NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def _arrays(b=2, d=4, length=6, n=3, groups=None, seed=0, D=True, z=True, bias=True):
    """Inputs as NumPy float64 arrays (None for absent options); A negative as in Mamba."""
    rng = np.random.default_rng(seed)
    bc = (b, n, length) if groups is None else (b, groups, n, length)
    return {"u": rng.standard_normal((b, d, length)),
            "delta": rng.standard_normal((b, d, length)) * 0.5,
            "A": -np.exp(rng.standard_normal((d, n)) * 0.5),
            "B": rng.standard_normal(bc), "C": rng.standard_normal(bc),
            "D": rng.standard_normal(d) if D else None,
            "z": rng.standard_normal((b, d, length)) if z else None,
            "delta_bias": rng.standard_normal(d) * 0.5 if bias else None}


def _np(t):
    return t.detach().cpu().numpy()


def _lg_inputs(arrays, dtype="float64", grad=True):
    return {k: None if a is None else lg.tensor(a).to(dtype).requires_grad_(grad)
            for k, a in arrays.items()}


def _lg_loop(u, delta, A, B, C, D, z, delta_bias, softplus):
    """The mamba-minimal selective scan, (batch, length, dim) inside, plain lightgrad ops."""
    b, d, length = u.shape
    if delta_bias is not None:
        delta = delta + delta_bias.reshape(d, 1)
    if softplus:
        delta = F.softplus(delta)
    if B.ndim == 4:  # groups: each channel reads its group's B and C
        g = B.shape[1]
        B = B.unsqueeze(2).expand(b, g, d // g, *B.shape[2:]).reshape(b, d, *B.shape[2:])
        C = C.unsqueeze(2).expand(b, g, d // g, *C.shape[2:]).reshape(b, d, *C.shape[2:])
        Bt, Ct = B.permute(0, 3, 1, 2), C.permute(0, 3, 1, 2)        # (b, l, d, n)
        delta_b_u = lg.einsum("bld,bldn,bld->bldn", delta.mT, Bt, u.mT)
    else:
        Bt, Ct = B.mT, C.mT                                          # (b, l, n)
        delta_b_u = lg.einsum("bld,bln,bld->bldn", delta.mT, Bt, u.mT)
    delta_a = lg.einsum("bld,dn->bldn", delta.mT, A).exp()
    x = lg.zeros(b, d, A.shape[1], dtype=u.dtype)
    ys = []
    for i in range(length):
        x = delta_a[:, i] * x + delta_b_u[:, i]
        ys.append(lg.einsum("bdn,bdn->bd", x, Ct[:, i].unsqueeze(1).expand(x.shape)))
    y = lg.stack(ys, dim=2)
    if D is not None:
        y = y + u * D.reshape(d, 1)
    if z is not None:
        y = y * F.silu(z)
    return y, x


def _torch_loop(u, delta, A, B, C, D, z, delta_bias, softplus):
    """The same loop in PyTorch."""
    b, d, length = u.shape
    if delta_bias is not None:
        delta = delta + delta_bias[:, None]
    if softplus:
        delta = torch.nn.functional.softplus(delta)
    if B.dim() == 4:
        r = d // B.shape[1]
        B, C = B.repeat_interleave(r, dim=1), C.repeat_interleave(r, dim=1)  # (b, d, n, l)
        delta_b_u = torch.einsum("bdl,bdnl,bdl->bldn", delta, B, u)
        c_at = lambda i: C[..., i]                                   # noqa: E731
    else:
        delta_b_u = torch.einsum("bdl,bnl,bdl->bldn", delta, B, u)
        c_at = lambda i: C[:, None, :, i]                            # noqa: E731
    delta_a = torch.exp(torch.einsum("bdl,dn->bldn", delta, A))
    x = u.new_zeros(b, d, A.shape[1])
    ys = []
    for i in range(length):
        x = delta_a[:, i] * x + delta_b_u[:, i]
        ys.append((x * c_at(i)).sum(-1))
    y = torch.stack(ys, dim=2)
    if D is not None:
        y = y + u * D[:, None]
    if z is not None:
        y = y * torch.nn.functional.silu(z)
    return y, x


def _weights(y_shape, last_shape, seed=7):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(y_shape), rng.standard_normal(last_shape)


def _run_fused(inputs, softplus, return_last, weights):
    out = F.selective_scan(*(inputs[k] for k in NAMES), delta_softplus=softplus,
                           return_last_state=return_last)
    y, last = out if return_last else (out, None)
    wy, wl = weights
    loss = (y * lg.tensor(wy).to(y.dtype)).sum()
    if last is not None:
        loss = loss + (last * lg.tensor(wl).to(y.dtype)).sum()
    loss.backward()
    return y, last


def _check_against_torch(arrays, softplus, return_last, dtype="float64", rtol=None, atol=None):
    ours = _lg_inputs(arrays, dtype)
    b, d, _ = arrays["u"].shape
    weights = _weights(arrays["u"].shape, (b, d, arrays["A"].shape[1]))
    y, last = _run_fused(ours, softplus, return_last, weights)
    theirs = {k: None if t is None else to_torch(t.detach().cpu(), True)
              for k, t in ours.items()}
    ty, tlast = _torch_loop(*(theirs[k] for k in NAMES), softplus)
    tloss = (ty * torch.tensor(weights[0]).to(ty.dtype)).sum()
    if return_last:
        tloss = tloss + (tlast * torch.tensor(weights[1]).to(ty.dtype)).sum()
    tloss.backward()
    assert_close(y.cpu(), ty, dtype, rtol, atol)
    if return_last:
        assert_close(last.cpu(), tlast, dtype, rtol, atol)
    for k in NAMES:
        if ours[k] is not None:
            assert ours[k].grad is not None, k
            assert_close(ours[k].grad.cpu(), theirs[k].grad, dtype, rtol, atol)


FLAGS = list(itertools.product([False, True], repeat=4))


@pytest.mark.parametrize("D, z, bias, softplus", FLAGS,
                         ids=["".join(c for c, f in zip("DzbS", flags) if f) or "plain"
                              for flags in FLAGS])
def test_every_option_matches_torch(D, z, bias, softplus):
    arrays = _arrays(D=D, z=z, bias=bias, seed=int(D) + 2 * z + 4 * bias)
    _check_against_torch(arrays, softplus, return_last=D != z)


@pytest.mark.parametrize("return_last", [False, True])
def test_matches_lightgrad_loop(return_last):
    arrays = _arrays(b=2, d=4, length=7, n=3)
    fused = _lg_inputs(arrays)
    b, d, _ = arrays["u"].shape
    weights = _weights(arrays["u"].shape, (b, d, 3))
    y, last = _run_fused(fused, True, return_last, weights)
    loop = _lg_inputs(arrays)
    ly, llast = _lg_loop(*(loop[k] for k in NAMES), True)
    loss = (ly * lg.tensor(weights[0])).sum()
    if return_last:
        loss = loss + (llast * lg.tensor(weights[1])).sum()
        np.testing.assert_allclose(_np(last), _np(llast), rtol=1e-9, atol=1e-12)
    loss.backward()
    np.testing.assert_allclose(_np(y), _np(ly), rtol=1e-9, atol=1e-12)
    for k in NAMES:
        np.testing.assert_allclose(_np(fused[k].grad), _np(loop[k].grad), rtol=1e-8,
                                   atol=1e-10, err_msg=k)


@pytest.mark.parametrize("groups", [1, 2])
def test_grouped_B_C_match_torch(groups):
    _check_against_torch(_arrays(d=4, groups=groups), True, True)


def test_more_states_than_a_warp_matches_torch():
    """N = 40: on cuda each lane of the warp walking a channel keeps two states."""
    _check_against_torch(_arrays(b=1, d=2, length=5, n=40), True, True)


def test_cuda_state_limit(device):
    if device == "cpu":
        pytest.skip("the limit is the cuda kernels' (states kept in registers)")
    inputs = _lg_inputs(_arrays(b=1, d=2, length=3, n=65), grad=False)
    with pytest.raises(ValueError, match="selective_scan: .* at most 64 states"):
        F.selective_scan(*(inputs[k] for k in NAMES))


def test_many_chunks_match_torch(monkeypatch):
    """Chunk boundaries (and a short last chunk) in forward and in the recomputing backward."""
    monkeypatch.setattr(cpu_scan, "CHUNK", 4)
    _check_against_torch(_arrays(b=1, d=3, length=11, n=2), True, True)


def test_float32_matches_torch():
    _check_against_torch(_arrays(length=9), True, True, dtype="float32", rtol=1e-4,
                         atol=1e-5)


def test_bfloat16_input_with_float32_parameters():
    """mamba_ssm's mixed precision: u, delta, B, C, z in bfloat16, A, D, delta_bias float32;
    the result is bfloat16, close to the float32 scan of the same (rounded) values."""
    arrays = _arrays()
    low = {k: None if a is None else lg.tensor(a).to(
        "float32" if k in ("A", "D", "delta_bias") else "bfloat16").requires_grad_()
        for k, a in arrays.items()}
    y = F.selective_scan(*(low[k] for k in NAMES), delta_softplus=True)
    assert y.dtype is lg.bfloat16
    y.float().sum().backward()
    assert low["A"].grad.dtype is lg.float32 and low["u"].grad.dtype is lg.bfloat16
    wide = {k: None if t is None else t.detach().float() for k, t in low.items()}
    ref = F.selective_scan(*(wide[k] for k in NAMES), delta_softplus=True)
    np.testing.assert_allclose(_np(y.float()), _np(ref), rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("groups", [None, 2])
def test_gradcheck(groups):
    inputs = _lg_inputs(_arrays(b=1, d=2, length=4, n=2, groups=groups))

    def fn(*args):
        return F.selective_scan(*args, delta_softplus=True, return_last_state=True)
    assert gradcheck(fn, [inputs[k] for k in NAMES])


@pytest.mark.parametrize("groups", [None, 2])
def test_double_backward_matches_torch(groups):
    """create_graph: the gradient is itself differentiable (through the step-by-step
    formulation); d/du of |dy/dA|^2 against PyTorch."""
    arrays = _arrays(b=1, d=2, length=4, n=2, groups=groups)
    ours = _lg_inputs(arrays)
    theirs = {k: to_torch(t.detach().cpu(), True) for k, t in ours.items()}
    y = F.selective_scan(*(ours[k] for k in NAMES), delta_softplus=True)
    (ga,) = lg.autograd.grad(y.sum(), ours["A"], create_graph=True)
    (ga * ga).sum().backward()
    ty, _ = _torch_loop(*(theirs[k] for k in NAMES), True)
    (tga,) = torch.autograd.grad(ty.sum(), theirs["A"], create_graph=True)
    (tga * tga).sum().backward()
    assert_close(ga.detach().cpu(), tga)
    for k in ("u", "delta", "C"):
        assert_close(ours[k].grad.cpu(), theirs[k].grad)


def test_saves_only_the_inputs():
    """No (b, d, L, N) hidden states are kept between forward and backward."""
    inputs = _lg_inputs(_arrays())
    y = F.selective_scan(*(inputs[k] for k in NAMES), delta_softplus=True)
    saved = y.grad_fn.saved_tensors
    assert [id(t) for t in saved] == [id(inputs[k]) for k in NAMES]


def test_without_grad_and_last_state_values():
    arrays = _arrays(b=1, d=2, length=3, n=2, D=False, z=False, bias=False)
    inputs = _lg_inputs(arrays, grad=False)
    y, last = F.selective_scan(*(inputs[k] for k in NAMES), return_last_state=True)
    assert not y.requires_grad
    # by hand: x0 = dt0 u0 B0, x1 = exp(dt1 A) x0 + dt1 u1 B1, ... (b=0)
    u, dt, A, B, C = (arrays[k][0] if k != "A" else arrays[k] for k in "u delta A B C".split())
    x = np.zeros((2, 2))
    for t in range(3):
        x = np.exp(dt[:, t, None] * A) * x + (dt[:, t] * u[:, t])[:, None] * B[None, :, t]
        np.testing.assert_allclose(_np(y)[0, :, t], x @ C[:, t], rtol=1e-12)
    np.testing.assert_allclose(_np(last)[0], x, rtol=1e-12)


def test_views_as_in_the_mamba_mixer():
    """Transposed and sliced views (as a Mamba block makes them) give the values of
    contiguous copies, and gradients flow back through the views."""
    rng = np.random.default_rng(3)
    b, length, d, n = 2, 5, 4, 3
    proj = lg.tensor(rng.standard_normal((b, length, 2 * d + 2 * n)), requires_grad=True)
    u, delta = proj[..., :d].transpose(1, 2), proj[..., d:2 * d].transpose(1, 2)
    B, C = proj[..., 2 * d:2 * d + n].transpose(1, 2), proj[..., 2 * d + n:].transpose(1, 2)
    A = -lg.tensor(rng.random((d, n)) + 0.5)
    y = F.selective_scan(u, delta, A, B, C, delta_softplus=True)
    y.sum().backward()
    copies = [t.detach().contiguous().requires_grad_() for t in (u, delta, B, C)]
    y2 = F.selective_scan(copies[0], copies[1], A, copies[2], copies[3], delta_softplus=True)
    y2.sum().backward()
    np.testing.assert_allclose(_np(y), _np(y2), rtol=1e-12)
    grads = np.concatenate([_np(t.grad).swapaxes(1, 2) for t in copies], axis=-1)
    np.testing.assert_allclose(_np(proj.grad), grads, rtol=1e-12, atol=1e-14)


def test_empty_sequence():
    inputs = _lg_inputs(_arrays(length=0))
    y, last = F.selective_scan(*(inputs[k] for k in NAMES), return_last_state=True)
    assert y.shape == (2, 4, 0) and _np(last).tolist() == np.zeros((2, 4, 3)).tolist()
    (y.sum() + last.sum()).backward()
    assert _np(inputs["A"].grad).tolist() == np.zeros((4, 3)).tolist()


def _bad(**changes):
    arrays = _arrays(b=2, d=4, length=5, n=3)
    inputs = _lg_inputs(arrays, grad=False)
    inputs.update(changes)
    return inputs


def _zeros(*shape, dtype=lg.float64):
    return lambda: lg.zeros(*shape, dtype=dtype)


@pytest.mark.parametrize("name, make, error, words", [
    ("u", _zeros(2, 4), ValueError, "u must be (batch, dim, length)"),
    ("delta", _zeros(2, 4, 6), ValueError, "delta (2, 4, 6)"),
    ("z", _zeros(2, 3, 5), ValueError, "z must have u's shape"),
    ("A", _zeros(3, 3), ValueError, "A must be (dim, state)"),
    ("B", _zeros(2, 4, 5), ValueError, "B (2, 4, 5)"),
    ("C", _zeros(4, 3), ValueError, "fixed C"),
    ("B", _zeros(2, 3, 3, 5), ValueError, "groups dividing dim"),
    ("D", _zeros(3), ValueError, "D must be (dim,)"),
    ("delta_bias", _zeros(4, 1), ValueError, "delta_bias (4, 1)"),
    ("u", _zeros(2, 4, 5, dtype=lg.float32), TypeError, "u (2, 4, 5) float32"),
    ("A", _zeros(4, 3, dtype=lg.int64), TypeError, "floating point"),
    ("B", lambda: np.zeros((2, 3, 5)), TypeError, "B must be a Tensor"),
])
def test_bad_input_errors(name, make, error, words):
    inputs = _bad(**{name: make()})
    with pytest.raises(error, match="selective_scan") as info:
        F.selective_scan(*(inputs[k] for k in NAMES))
    assert words in str(info.value)


def test_device_mismatch_error(device):
    if device == "cpu":
        pytest.skip("needs a second device")
    inputs = _bad(A=lg.zeros(4, 3, dtype=lg.float64, device="cpu"))
    with pytest.raises(RuntimeError, match="selective_scan.*same device"):
        F.selective_scan(*(inputs[k] for k in NAMES))
