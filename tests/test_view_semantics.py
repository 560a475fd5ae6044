"""``view`` is a view or an error (PyTorch's stride rule); ``reshape`` views when it can.

Checked against PyTorch on many strided layouts (permutes and stepped slices), on every
device: where PyTorch's ``view`` works ours must too and share memory (a write through the
view shows in the base), where PyTorch raises ours raises.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lightgrad as lg
from lightgrad.ops.movement import view_strides


def _factorizations(n: int, parts: int) -> list[tuple[int, ...]]:
    if parts == 1:
        return [(n,)]
    return [(d,) + rest for d in range(1, n + 1) if n % d == 0
            for rest in _factorizations(n // d, parts - 1)]


def _layouts():
    """(base shape, permutation, slices) triples: transposed, stepped and sliced views."""
    yield (3, 4), (1, 0), ()
    yield (4, 6), (0, 1), (slice(None), slice(0, 4))
    yield (2, 3, 4), (1, 0, 2), ()
    yield (2, 3, 4), (0, 2, 1), ()
    yield (4, 1, 6), (0, 1, 2), (slice(None), slice(None), slice(0, 4))
    yield (6, 4), (0, 1), (slice(0, 6, 2),)
    yield (2, 2, 6), (0, 1, 2), (slice(None), slice(None), slice(0, 6, 2))
    yield (5, 3), (1, 0), (slice(1, 5),)


def _targets(numel: int) -> list[tuple[int, ...]]:
    out = []
    for parts in (1, 2, 3, 4):
        out += _factorizations(numel, parts)
    return out


def test_view_strides_matches_pytorch():
    checked = viewable = 0
    for base, perm, index in _layouts():
        t = torch.arange(float(np.prod(base))).reshape(base).permute(perm)[index]
        for shape in _targets(t.numel()):
            try:
                want = t.view(shape).stride()
            except RuntimeError:
                want = None
            got = view_strides(tuple(t.shape), t.stride(), shape)
            checked += 1
            if want is None:
                assert got is None, (base, perm, index, shape)
            else:
                viewable += 1
                assert got is not None, (base, perm, index, shape)
                assert all(g == w for g, w, n in zip(got, want, shape) if n != 1), \
                    (base, perm, index, shape, got, want)
    assert checked > 100 and 0 < viewable < checked


@pytest.mark.parametrize("layout", list(_layouts()), ids=str)
def test_view_shares_memory_or_raises(device, layout):
    base_shape, perm, index = layout
    numel = int(np.prod(base_shape))
    numel_view = torch.zeros(base_shape).permute(perm)[index].numel()
    targets = _targets(numel_view)
    for shape in targets[:: max(1, len(targets) // 12)] + [(-1,)]:
        theirs = torch.arange(float(numel)).reshape(base_shape).permute(perm)[index]
        base = lg.arange(float(numel), device=device).reshape(base_shape)
        ours = base.permute(*perm)[index]
        try:
            expected = theirs.view(shape)
        except RuntimeError:
            with pytest.raises(RuntimeError, match="view size is not compatible.*reshape"):
                ours.view(shape)
            # reshape still works, by copying
            np.testing.assert_array_equal(ours.reshape(shape).numpy(),
                                          theirs.reshape(shape).numpy())
            continue
        view = ours.view(shape)
        np.testing.assert_array_equal(view.numpy(), expected.numpy())
        view.fill_(-1.0)  # every element the view reads is in the base
        expected.fill_(-1.0)
        assert (base.numpy() == -1).sum() == theirs.numel()
        np.testing.assert_array_equal(ours.numpy(), np.full(theirs.shape, -1.0))


def test_transpose_view_raises_with_shapes_and_strides(device):
    x = lg.zeros(3, 4, device=device)
    with pytest.raises(RuntimeError) as err:
        x.t().view(-1)
    message = str(err.value)
    assert "(4, 3)" in message and "(1, 4)" in message and "(12,)" in message
    assert "view size is not compatible with input tensor's size and stride" in message
    assert "Use .reshape(...) instead." in message


def test_reshape_of_viewable_layout_is_a_view(device):
    base = lg.zeros(4, 6, device=device)
    r = base[:, :4].reshape(2, 2, 4)  # rows of a column slice: viewable, so a view
    r[1, 1, 3] = 7.0
    assert base.numpy()[3, 3] == 7.0
    c = base.t().reshape(-1)  # not viewable: a copy
    c[0] = 5.0
    assert base.numpy()[0, 0] == 0.0


def test_view_write_through_and_autograd(device):
    x = lg.arange(6.0, device=device).reshape(2, 3).requires_grad_()
    y = (x * 1.0).t()  # (3, 2), strides (1, 3)
    z = y.view(3, 1, 2)  # splitting in size-1 dims is fine
    (z * lg.arange(6.0, device=device).reshape(3, 1, 2)).sum().backward()
    xt = torch.arange(6.0).reshape(2, 3).requires_grad_()
    ((xt * 1.0).t().view(3, 1, 2) * torch.arange(6.0).reshape(3, 1, 2)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), xt.grad.numpy())


def test_stride_and_view_as(device):
    x = lg.zeros(2, 3, 4, device=device)
    assert x.stride() == (12, 4, 1) and x.permute(2, 0, 1).stride() == (1, 12, 4)
    assert x.stride(-1) == 1
    with pytest.raises(RuntimeError, match="view size"):
        x.transpose(0, 1).view_as(lg.zeros(24))
    assert x.transpose(0, 1).reshape_as(lg.zeros(24)).shape == (24,)


@pytest.mark.parametrize("shape", list([(0, 3), (2, 0), (0, 0)]))
def test_empty_and_scalar_views(device, shape):
    x = lg.zeros(*shape, device=device).t()
    assert x.view(-1).shape == (0,)  # nothing to read: any view of an empty tensor works
    s = lg.tensor(3.0, device=device)
    v = s.view(1, 1)
    v.fill_(4.0)
    assert s.item() == 4.0 and s.view(()).shape == ()


def test_expanded_tensors_follow_the_same_rule(device):
    ours = lg.arange(3.0, device=device).reshape(3, 1).expand(3, 4)
    theirs = torch.arange(3.0).reshape(3, 1).expand(3, 4)
    np.testing.assert_array_equal(ours.view(3, 2, 2).numpy(), theirs.view(3, 2, 2).numpy())
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        theirs.view(12)
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        ours.view(12)
