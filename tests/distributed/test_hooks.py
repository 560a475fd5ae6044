"""The autograd pieces DDP stands on: post-accumulate-grad hooks fire as soon as a leaf's
gradient is final (during backward), queue_callback runs at the end of backward."""
from __future__ import annotations

import numpy as np
import pytest

import lightgrad as lg
from lightgrad import nn
from lightgrad.autograd import queue_callback


def test_post_accumulate_hooks_fire_in_backward_order_with_final_grads():
    lg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    events = []
    for name, p in model.named_parameters():
        p.register_post_accumulate_grad_hook(
            lambda t, name=name: events.append((name, t.grad.numpy().copy())))
    w = model[0].weight
    x = lg.randn(5, 3)
    loss = (model(x) ** 2).sum() + (w * w).sum()  # w used twice: one hook, summed grad
    loss.backward()
    names = [n for n, _ in events]
    assert sorted(names) == sorted(n for n, _ in model.named_parameters())
    assert names.index("2.weight") < names.index("0.weight")  # last layer first
    for name, grad in events:
        np.testing.assert_array_equal(grad, dict(model.named_parameters())[name].grad.numpy())


def test_queue_callback_runs_after_every_leaf():
    a, b = lg.ones(2, requires_grad=True), lg.ones(2, requires_grad=True)
    log = []

    def first_hook(t):
        log.append("hook")
        queue_callback(lambda: log.append(("callback", b.grad is not None)))
    a.register_post_accumulate_grad_hook(first_hook)
    (a * 2 + b * 3).sum().backward()
    assert log == ["hook", ("callback", True)]
    with pytest.raises(RuntimeError, match="queue_callback"):
        queue_callback(lambda: None)


def test_hook_handle_removes_and_non_leaf_is_refused():
    a = lg.ones(2, requires_grad=True)
    calls = []
    handle = a.register_post_accumulate_grad_hook(calls.append)
    handle.remove()
    a.sum().backward()
    assert calls == [] and a.grad.tolist() == [1.0, 1.0]
    with pytest.raises(RuntimeError, match="leaf"):
        (a * 2).register_post_accumulate_grad_hook(calls.append)
