"""nn.utils against torch.nn.utils: clip_grad_norm_ (norm types, returned norm, clipped
grads, non-finite handling), clip_grad_value_, get_total_norm and parameter/vector
conversion."""
from __future__ import annotations

import math

import numpy as np
import pytest
from oracle import assert_close

import lightgrad as lg
from lightgrad import nn

torch = pytest.importorskip("torch")
tutils = torch.nn.utils

SHAPES = [(3, 4), (5,), (2, 2, 2)]


def _params(scale: float = 1.0, with_none: bool = True):
    """Matching lightgrad and torch parameters with the same float64 gradients; the last
    parameter has no gradient."""
    rng = np.random.default_rng(1)
    ours, theirs = [], []
    for i, shape in enumerate(SHAPES + [(2,)] * with_none):
        value, grad = rng.standard_normal(shape), rng.standard_normal(shape) * scale
        p = nn.Parameter(lg.tensor(value))
        t = torch.nn.Parameter(torch.tensor(value))
        if i < len(SHAPES):
            p.grad, t.grad = lg.tensor(grad), torch.tensor(grad)
        ours.append(p)
        theirs.append(t)
    return ours, theirs


@pytest.mark.parametrize("norm_type", [2.0, 1, 3.5, math.inf, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    ours, theirs = _params()
    p = float(norm_type)
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type=p)
    t_total = tutils.clip_grad_norm_(theirs, max_norm, norm_type=p)
    assert_close(total, t_total)
    for a, b in zip(ours, theirs):
        assert (a.grad is None) == (b.grad is None)
        if a.grad is not None:
            assert_close(a.grad, b.grad)
    if max_norm < total.item():  # clipped grads now have the requested norm
        clipped = nn.utils.get_total_norm([q.grad for q in ours if q.grad is not None], p)
        np.testing.assert_allclose(clipped.item(), max_norm, rtol=1e-5)


def test_clip_grad_norm_single_tensor_generator_and_float32():
    p = nn.Parameter(lg.ones(4))
    p.grad = lg.full((4,), 2.0)
    t = torch.nn.Parameter(torch.ones(4))
    t.grad = torch.full((4,), 2.0)
    total = nn.utils.clip_grad_norm_(p, 1.0)
    assert_close(total, tutils.clip_grad_norm_(t, 1.0), "float32")
    assert_close(p.grad, t.grad, "float32")
    model = nn.Linear(3, 2)
    model(lg.ones(5, 3)).sum().backward()
    grad_before = model.weight.grad
    norm = nn.utils.clip_grad_norm_(model.parameters(), 0.1)  # a generator, like torch
    assert norm.item() > 0.1 and model.weight.grad is grad_before  # scaled in place
    assert nn.utils.clip_grad_norm_([nn.Parameter(lg.ones(2))], 1.0).item() == 0.0


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_clip_grad_norm_non_finite():
    ours, theirs = _params()
    ours[0].grad[0, 0] = math.inf
    theirs[0].grad[0, 0] = math.inf
    with pytest.raises(RuntimeError, match="total norm of order 2.0 .* non-finite"):
        nn.utils.clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    total = nn.utils.clip_grad_norm_(ours, 1.0)
    t_total = tutils.clip_grad_norm_(theirs, 1.0)
    assert math.isinf(total.item()) and math.isinf(t_total.item())
    for a, b in zip(ours[:3], theirs[:3]):
        assert_close(a.grad, b.grad)


def test_get_total_norm_matches_torch():
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal(s) for s in SHAPES]
    for p in (2.0, 1.0, math.inf, 0.5):
        ours = nn.utils.get_total_norm([lg.tensor(a) for a in arrays], p)
        assert_close(ours, tutils.get_total_norm([torch.tensor(a) for a in arrays], p))


def test_clip_grad_value_matches_torch():
    ours, theirs = _params(scale=3.0)
    nn.utils.clip_grad_value_(ours, 1.5)
    tutils.clip_grad_value_(theirs, 1.5)
    for a, b in zip(ours[:3], theirs[:3]):
        assert_close(a.grad, b.grad)
        assert a.grad.abs().amax().item() <= 1.5


def test_parameters_vector_round_trip_matches_torch():
    ours, theirs = _params(with_none=False)
    vec = nn.utils.parameters_to_vector(ours)
    assert_close(vec, tutils.parameters_to_vector(theirs))
    vec.sum().backward()  # gradients flow back to every parameter, like torch.cat
    new = np.arange(vec.numel(), dtype=np.float64)
    nn.utils.vector_to_parameters(lg.tensor(new), ours)
    with torch.no_grad():
        tutils.vector_to_parameters(torch.tensor(new), theirs)
    for a, b in zip(ours, theirs):
        assert_close(a.detach(), b.detach())
    with pytest.raises(ValueError, match="has 3 elements but the parameters hold 25"):
        nn.utils.vector_to_parameters(lg.zeros(3, dtype=lg.float64), ours)
