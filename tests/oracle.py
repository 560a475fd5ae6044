"""Compare lightgrad with PyTorch: the same op on the same numbers, forward and backward.

>>> import numpy as np
>>> check_parity(lambda x: x.exp().sum(), [np.ones(3)])  # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

import lightgrad as lg

TOL = {"float64": (1e-7, 1e-9), "float32": (1e-4, 1e-5), "float16": (1e-2, 1e-2),
       "bfloat16": (2e-2, 2e-2)}


def torch_dtype(dtype: lg.DType) -> Any:
    import torch
    return getattr(torch, dtype.name if dtype.name != "bool" else "bool")


def to_torch(t: lg.Tensor, requires_grad: bool | None = None) -> Any:
    import torch
    arr = t.detach().numpy()
    if t.dtype is lg.bfloat16:
        out = torch.tensor(arr.astype(np.float32)).to(torch.bfloat16)
    else:
        out = torch.tensor(np.array(arr))
    if requires_grad if requires_grad is not None else t.requires_grad:
        out.requires_grad_(True)
    return out


def to_numpy(x: Any) -> np.ndarray:
    """float64 (or original int/bool) NumPy copy of a lightgrad or torch tensor."""
    if isinstance(x, lg.Tensor):
        arr = x.detach().numpy()
        return arr.astype(np.float64) if x.dtype.is_floating_point else np.array(arr)
    import torch
    x = x.detach()
    if x.dtype in (torch.bfloat16, torch.float16):
        x = x.float()
    arr = x.numpy()
    return arr.astype(np.float64) if x.is_floating_point() else arr


def assert_close(ours: Any, theirs: Any, dtype: str = "float64", rtol: float | None = None,
                 atol: float | None = None) -> None:
    """Same shape, same dtype name (for torch tensors), same values within tolerance."""
    r, a = TOL.get(dtype, (1e-5, 1e-6))
    r, a = rtol if rtol is not None else r, atol if atol is not None else a
    if not isinstance(theirs, (np.ndarray, float, int)):
        assert tuple(ours.shape) == tuple(theirs.shape), (ours.shape, theirs.shape)
        assert ours.dtype.name == str(theirs.dtype).replace("torch.", ""), \
            (ours.dtype, theirs.dtype)
    np.testing.assert_allclose(to_numpy(ours), to_numpy(theirs) if not isinstance(
        theirs, np.ndarray) else theirs, rtol=r, atol=a, equal_nan=True)


def check_parity(fn: Callable[..., Any], arrays: Sequence[np.ndarray], torch_fn:
                 Callable[..., Any] | None = None, dtype: str = "float64",
                 grad: bool = True, rtol: float | None = None,
                 atol: float | None = None) -> None:
    """Run ``fn`` on lightgrad and torch tensors made from ``arrays``; compare outputs and the
    gradients of ``sum(out * w)`` for a fixed random ``w`` w.r.t. every float input."""
    import torch
    torch_fn = torch_fn or fn
    lg_in, th_in = [], []
    for arr in arrays:
        t = lg.tensor(np.asarray(arr)).to(dtype) if np.asarray(arr).dtype.kind == "f" \
            else lg.tensor(np.asarray(arr))
        needs = grad and t.dtype.is_floating_point
        lg_in.append(t.requires_grad_(needs) if needs else t)
        th_in.append(to_torch(t, needs))
    ours, theirs = fn(*lg_in), torch_fn(*th_in)
    outs = ours if isinstance(ours, (tuple, list)) else (ours,)
    touts = theirs if isinstance(theirs, (tuple, list)) else (theirs,)
    for o, t in zip(outs, touts):
        assert_close(o, t, dtype, rtol, atol)
    if not grad:
        return
    rng = np.random.default_rng(1)
    lg_loss, th_loss = 0, 0
    for o, t in zip(outs, touts):
        if isinstance(o, lg.Tensor) and o.requires_grad:
            w = rng.standard_normal(o.shape)
            lg_loss = lg_loss + (o * lg.tensor(w).to(o.dtype)).sum()
            th_loss = th_loss + (t * torch.tensor(w).to(t.dtype)).sum()
    if isinstance(lg_loss, int):
        return
    lg_loss.backward()
    th_loss.backward()
    for a, b in zip(lg_in, th_in):
        if a.requires_grad:
            assert (a.grad is None) == (b.grad is None)
            if a.grad is not None:
                assert_close(a.grad, b.grad, dtype, rtol, atol)


def flat_tensors(x: Any) -> list:
    """The tensors of an output like ``(out, (h, c))`` in order (None entries dropped)."""
    if isinstance(x, (tuple, list)):
        return [t for item in x for t in flat_tensors(item) if t is not None]
    return [x]


def compare_modules(ours: Any, theirs: Any, arrays: Sequence[np.ndarray],
                    call: Callable[[Any, list, Any], Any]) -> None:
    """``call(module, input tensors, library)`` on a lightgrad and a torch module holding the
    same weights; compare every output, then the gradients of ``sum(out_i * w_i)`` (fixed
    random ``w_i``) w.r.t. the inputs and every parameter."""
    import torch
    lg_in = [lg.tensor(a, requires_grad=True) for a in arrays]
    th_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    outs = flat_tensors(call(ours, lg_in, lg))
    touts = flat_tensors(call(theirs, th_in, torch))
    assert len(outs) == len(touts)
    rng = np.random.default_rng(1)
    loss, tloss = 0, 0
    for o, t in zip(outs, touts):
        assert_close(o, t)
        w = rng.standard_normal(tuple(t.shape))
        loss = loss + (o * lg.tensor(w)).sum()
        tloss = tloss + (t * torch.tensor(w)).sum()
    loss.backward()
    tloss.backward()
    for a, b in zip(lg_in, th_in):
        assert_close(a.grad, b.grad)
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad, tparams[name].grad)
