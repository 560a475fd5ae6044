"""Optimizers against torch.optim: same parameters, same gradients, same results."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import lightgrad as lg
from lightgrad import optim

torch = pytest.importorskip("torch")

STEPS = 6


def _sgd_configs():
    for momentum, dampening, nesterov, wd, maximize in itertools.product(
            (0.0, 0.9), (0.0, 0.3), (False, True), (0.0, 0.1), (False, True)):
        if nesterov and (momentum == 0 or dampening != 0):
            continue
        yield "SGD", dict(lr=0.1, momentum=momentum, dampening=dampening, nesterov=nesterov,
                          weight_decay=wd, maximize=maximize)


def _adam_configs():
    for name, wd, amsgrad, maximize in itertools.product(
            ("Adam", "AdamW"), (0.0, 0.1), (False, True), (False, True)):
        yield name, dict(lr=0.05, betas=(0.8, 0.95), eps=1e-6, weight_decay=wd,
                         amsgrad=amsgrad, maximize=maximize)


def _rmsprop_configs():
    for wd, momentum, centered, maximize in itertools.product(
            (0.0, 0.1), (0.0, 0.9), (False, True), (False, True)):
        yield "RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=wd, momentum=momentum,
                              centered=centered, maximize=maximize)


CONFIGS = [*_sgd_configs(), *_adam_configs(), *_rmsprop_configs()]
IDS = [f"{n}-" + "-".join(f"{k}={v}" for k, v in kw.items() if k not in ("lr", "betas", "eps"))
       for n, kw in CONFIGS]


class Run:
    """The same three parameters (two groups, the second with its own lr; the third never
    gets a gradient) in lightgrad and in torch, stepped with the same gradients."""

    def __init__(self, name: str, kwargs: dict, dtype: str = "float64", seed: int = 0):
        rng = np.random.default_rng(seed)
        self.init = [rng.standard_normal(s) for s in ((3, 4), (5,), (2,))]
        self.grads = [[rng.standard_normal(s) for s in ((3, 4), (5,))]
                      for _ in range(STEPS)]
        self.name, self.kwargs, self.dtype = name, kwargs, dtype
        self.lg_params = [lg.tensor(a, dtype=dtype, requires_grad=True) for a in self.init]
        self.th_params = [torch.tensor(a, dtype=getattr(torch, dtype), requires_grad=True)
                          for a in self.init]
        self.lg_opt = self.make_lg(self.lg_params)
        th_kwargs = dict(kwargs, foreach=False)
        self.th_opt = getattr(torch.optim, name)(self.groups(self.th_params), **th_kwargs)

    def groups(self, params):
        return [{"params": [params[0], params[2]]}, {"params": [params[1]], "lr": 0.02}]

    def make_lg(self, params):
        return getattr(optim, self.name)(self.groups(params), **self.kwargs)

    def step(self, i: int, opt=None, params=None) -> None:
        opt, params = opt or self.lg_opt, params or self.lg_params
        for p, g in zip(params, self.grads[i]):
            p.grad = lg.tensor(g, dtype=self.dtype)
        opt.step()

    def step_torch(self, i: int) -> None:
        for p, g in zip(self.th_params, self.grads[i]):
            p.grad = torch.tensor(g, dtype=getattr(torch, self.dtype))
        self.th_opt.step()


def _assert_params(ours, theirs, rtol=1e-12, atol=1e-14):
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.detach().numpy().astype(np.float64),
                                   b.detach().double().numpy(), rtol=rtol, atol=atol)


def _assert_state(run: Run, rtol=1e-12, atol=1e-14):
    """Every tensor buffer torch keeps (momentum, averages) equals ours."""
    for lp, tp in zip(run.lg_params, run.th_params):
        ours, theirs = run.lg_opt.state.get(lp, {}), run.th_opt.state.get(tp, {})
        assert set(ours) == set(theirs)
        for key, value in theirs.items():
            if key == "step":
                assert ours[key] == int(value.item())
            else:
                np.testing.assert_allclose(ours[key].numpy(), value.numpy(), rtol=rtol,
                                           atol=atol, err_msg=key)


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=IDS)
def test_matches_torch_with_state_dict_round_trip(name, kwargs):
    run = Run(name, kwargs)
    for i in range(STEPS // 2):
        run.step(i)
        run.step_torch(i)
        _assert_params(run.lg_params, run.th_params)
    _assert_state(run)
    # Resume mid-way: fresh parameters (copies) and a fresh optimizer from the state dict.
    params2 = [lg.tensor(p.detach().numpy(), requires_grad=True) for p in run.lg_params]
    opt2 = run.make_lg(params2)
    opt2.load_state_dict(run.lg_opt.state_dict())
    for i in range(STEPS // 2, STEPS):
        run.step(i)
        run.step(i, opt2, params2)
        run.step_torch(i)
        _assert_params(run.lg_params, run.th_params)
        _assert_params(params2, run.th_params)
    _assert_state(run)
    assert run.lg_params[2].grad is None and run.lg_params[2] not in run.lg_opt.state
    np.testing.assert_array_equal(run.lg_params[2].detach().numpy(), run.init[2])


@pytest.mark.parametrize("name,kwargs", [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("Adam", dict(lr=0.01, weight_decay=0.01)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, amsgrad=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True)),
])
def test_float32_matches_torch(name, kwargs):
    run = Run(name, kwargs, dtype="float32", seed=3)
    for i in range(STEPS):
        run.step(i)
        run.step_torch(i)
    _assert_params(run.lg_params, run.th_params, rtol=1e-5, atol=1e-6)
    for p in run.lg_params:
        assert p.dtype is lg.float32
    for state in run.lg_opt.state.values():
        assert all(v.dtype is lg.float32 for v in state.values() if isinstance(v, lg.Tensor))


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_adamw_half_precision_keeps_dtype_and_tracks_torch(dtype):
    # eps above float16's underflow; the update itself runs in float32 and rounds back.
    run = Run("AdamW", dict(lr=0.01, weight_decay=0.1, eps=1e-3), dtype=dtype, seed=4)
    for i in range(STEPS):
        run.step(i)
        run.step_torch(i)
    _assert_params(run.lg_params, run.th_params, rtol=2e-2, atol=2e-2)
    assert all(np.isfinite(p.detach().numpy().astype(np.float32)).all() for p in run.lg_params)
    assert run.lg_opt.state[run.lg_params[0]]["exp_avg"].dtype.name == dtype


def test_adamw_step_primitive_matches_torch_and_updates_in_place():
    cpu = lg.device("cpu").backend
    rng = np.random.default_rng(5)
    param, grad = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    exp_avg, exp_avg_sq = rng.standard_normal((4, 3)), rng.random((4, 3))
    tp, tg = torch.tensor(param, requires_grad=True), torch.tensor(grad)
    topt = torch.optim.AdamW([tp], lr=0.1, betas=(0.7, 0.9), eps=1e-3, weight_decay=0.2,
                             foreach=False)
    tp.grad = tg
    topt.step()  # initialise the state, then overwrite it with our buffers at step 3
    state = topt.state[tp]
    with torch.no_grad():
        tp.copy_(torch.tensor(param))
        state["exp_avg"].copy_(torch.tensor(exp_avg))
        state["exp_avg_sq"].copy_(torch.tensor(exp_avg_sq))
        state["step"].fill_(2.0)
    topt.step()
    buffers = [param.copy(), exp_avg.copy(), exp_avg_sq.copy()]
    ids = [id(b) for b in buffers]
    cpu.adamw_step(buffers[0], grad, buffers[1], buffers[2], 0.1, 0.7, 0.9, 1e-3, 0.2, 3)
    assert [id(b) for b in buffers] == ids
    np.testing.assert_allclose(buffers[0], tp.detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(buffers[1], state["exp_avg"].numpy(), rtol=1e-13)
    np.testing.assert_allclose(buffers[2], state["exp_avg_sq"].numpy(), rtol=1e-13)


def test_step_with_closure_returns_loss_and_converges():
    w = lg.tensor([3.0, -2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss
    first = opt.step(closure)
    assert first.item() == pytest.approx(13.0)
    for _ in range(50):
        opt.step(closure)
    assert np.abs(w.detach().numpy()).max() < 1e-3


def test_zero_grad():
    w = lg.ones(3, requires_grad=True)
    opt = optim.Adam([w])
    (w * 2).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert w.grad is not None and w.grad.tolist() == [0.0, 0.0, 0.0]
    opt.zero_grad()
    assert w.grad is None


def test_param_groups_defaults_and_add_param_group():
    a, b = lg.zeros(2, requires_grad=True), lg.zeros(3, requires_grad=True)
    opt = optim.SGD([a], lr=0.5, momentum=0.9)
    opt.add_param_group({"params": b, "momentum": 0.0})
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.5]
    assert [g["momentum"] for g in opt.param_groups] == [0.9, 0.0]
    assert opt.param_groups[1]["params"] == [b]
    assert "Parameter Group 1" in repr(opt)
    assert opt.state_dict()["param_groups"][1]["params"] == [1]


def test_state_dict_layout_matches_torch():
    w = lg.zeros(2, requires_grad=True)
    opt = optim.AdamW([w], lr=0.1)
    w.grad = lg.ones(2)
    opt.step()
    tw = torch.zeros(2, requires_grad=True)
    topt = torch.optim.AdamW([tw], lr=0.1)
    tw.grad = torch.ones(2)
    topt.step()
    ours, theirs = opt.state_dict(), topt.state_dict()
    assert set(ours) == set(theirs)
    assert list(ours["state"]) == list(theirs["state"]) == [0]
    assert set(ours["state"][0]) == set(theirs["state"][0])
    assert ours["param_groups"][0]["params"] == theirs["param_groups"][0]["params"]
    for key in ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize"):
        assert ours["param_groups"][0][key] == theirs["param_groups"][0][key]


def test_load_state_dict_copies_and_casts_buffers():
    w = lg.zeros(2, requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    w.grad = lg.ones(2)
    opt.step()
    w2 = lg.zeros(2, dtype=lg.float64, requires_grad=True)
    opt2 = optim.SGD([w2], lr=1.0, momentum=0.0)
    opt2.load_state_dict(opt.state_dict())
    assert opt2.param_groups[0]["lr"] == 0.1 and opt2.param_groups[0]["momentum"] == 0.9
    buf2 = opt2.state[w2]["momentum_buffer"]
    assert buf2.dtype is lg.float64
    assert buf2 is not opt.state[w]["momentum_buffer"]


def test_load_state_dict_errors():
    a, b = lg.zeros(2, requires_grad=True), lg.zeros(2, requires_grad=True)
    saved = optim.SGD([a, b], lr=0.1).state_dict()
    with pytest.raises(ValueError, match="group 0 has 1 parameters but the state dict's has 2"):
        optim.SGD([a], lr=0.1).load_state_dict(saved)
    with pytest.raises(ValueError, match="has 1 parameter groups but the optimizer has 2"):
        optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1).load_state_dict(saved)
    with pytest.raises(ValueError, match="keys 'state' and 'param_groups'"):
        optim.SGD([a], lr=0.1).load_state_dict({"state": {}})


def test_bad_arguments():
    w = lg.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="SGD: invalid learning rate -1"):
        optim.SGD([w], lr=-1)
    with pytest.raises(ValueError, match="Nesterov momentum needs momentum > 0"):
        optim.SGD([w], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"AdamW: invalid beta2 1.0; it must be in \[0.0, 1.0\)"):
        optim.AdamW([w], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Adam: invalid epsilon"):
        optim.Adam([w], eps=-1e-8)
    with pytest.raises(ValueError, match="RMSprop: invalid alpha"):
        optim.RMSprop([w], alpha=-0.5)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="wrap it in a list"):
        optim.SGD(w, lr=0.1)
    with pytest.raises(TypeError, match="not a set"):
        optim.SGD({w}, lr=0.1)
    with pytest.raises(TypeError, match="can only optimize Tensors, got ndarray"):
        optim.SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([w * 2], lr=0.1)
    with pytest.raises(ValueError, match="appear more than once"):
        optim.SGD([{"params": [w]}, {"params": [w]}], lr=0.1)
