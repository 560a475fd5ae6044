"""Adagrad, Adadelta, LBFGS and the OneCycleLR / CyclicLR / ReduceLROnPlateau schedulers
against torch: same initial weights and gradients, same iterates and learning rates."""
from __future__ import annotations

import numpy as np
import pytest

import lightgrad as lg
from lightgrad import optim
from lightgrad.optim import lr_scheduler

torch = pytest.importorskip("torch")

STEPS = 5
SHAPES = ((3, 4), (5,), (2,))


def _groups(params):
    return [{"params": [params[0], params[2]]}, {"params": [params[1]], "lr": 0.02}]


@pytest.mark.parametrize("name,kwargs", [
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.2,
                     eps=1e-6, maximize=True)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.1, maximize=True)),
], ids=["adagrad", "adagrad-all-options", "adadelta", "adadelta-all-options"])
def test_matches_torch(name, kwargs):
    rng = np.random.default_rng(0)
    init = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES[:2]] for _ in range(STEPS)]
    ours = [lg.tensor(a, dtype="float64", requires_grad=True) for a in init]
    theirs = [torch.tensor(a, requires_grad=True) for a in init]
    opt = getattr(optim, name)(_groups(ours), **kwargs)
    ref = getattr(torch.optim, name)(_groups(theirs), **kwargs, foreach=False)
    for step in range(STEPS):
        for p, q, g in zip(ours, theirs, grads[step]):
            p.grad = lg.tensor(g, dtype="float64")
            q.grad = torch.tensor(g)
        opt.step()
        ref.step()
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-6,
                                   atol=1e-9)
    sd, ref_sd = opt.state_dict(), ref.state_dict()
    assert set(sd["state"]) == set(ref_sd["state"])
    for i, buffers in ref_sd["state"].items():
        assert set(sd["state"][i]) == set(buffers)
        for key, value in buffers.items():
            if key == "step":
                assert sd["state"][i][key] == int(value.item())
            else:
                np.testing.assert_allclose(sd["state"][i][key].numpy(), value.numpy(),
                                           rtol=1e-6, atol=1e-9, err_msg=key)
    # A fresh optimizer resumed from the state dict takes the same next step.
    copies = [lg.tensor(p.detach().numpy(), requires_grad=True) for p in ours]
    resumed = getattr(optim, name)(_groups(copies), **kwargs)
    resumed.load_state_dict(sd)
    for p, c, g in zip(ours, copies, grads[0]):
        p.grad = lg.tensor(g, dtype="float64")
        c.grad = lg.tensor(g, dtype="float64")
    opt.step()
    resumed.step()
    for p, c in zip(ours, copies):
        np.testing.assert_allclose(c.detach().numpy(), p.detach().numpy(), rtol=1e-12)


def test_optimizer_validation():
    w = lg.zeros(2, requires_grad=True)
    with pytest.raises(ValueError):
        optim.Adagrad([w], lr=-1.0)
    with pytest.raises(ValueError):
        optim.Adadelta([w], rho=1.5)
    with pytest.raises(ValueError):
        optim.LBFGS([w], line_search_fn="armijo")
    with pytest.raises(ValueError):
        optim.LBFGS([{"params": [w]}, {"params": [lg.zeros(1, requires_grad=True)]}])


# ------------------------------------------------------------------ LBFGS

def _rosenbrock(mod, x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def _least_squares(mod, w, b, a, y):
    return ((a @ w + b - y) ** 2).sum()


def _lbfgs_problem(problem: str):
    rng = np.random.default_rng(1)
    if problem == "rosenbrock":
        return [np.array([-1.2, 1.0])], [], _rosenbrock
    a, y = rng.standard_normal((6, 3)), rng.standard_normal(6)
    return [rng.standard_normal(3), rng.standard_normal(1)], [a, y], _least_squares


@pytest.mark.parametrize("problem", ["rosenbrock", "least_squares"])
@pytest.mark.parametrize("kwargs", [
    dict(max_iter=6),
    dict(max_iter=6, history_size=3, line_search_fn="strong_wolfe"),
    dict(lr=0.5, max_iter=4, max_eval=6, line_search_fn="strong_wolfe"),
], ids=["plain", "strong_wolfe", "strong_wolfe-max_eval"])
def test_lbfgs_iterates_match_torch(problem, kwargs):
    init, data, fn = _lbfgs_problem(problem)
    ours = [lg.tensor(a, dtype="float64", requires_grad=True) for a in init]
    theirs = [torch.tensor(a, requires_grad=True) for a in init]
    our_data = [lg.tensor(a, dtype="float64") for a in data]
    their_data = [torch.tensor(a) for a in data]
    opt, ref = optim.LBFGS(ours, **kwargs), torch.optim.LBFGS(theirs, **kwargs)

    def closure():
        opt.zero_grad()
        loss = fn(lg, *ours, *our_data)
        loss.backward()
        return loss

    def ref_closure():
        ref.zero_grad()
        loss = fn(torch, *theirs, *their_data)
        loss.backward()
        return loss

    for _ in range(3):
        loss, ref_loss = opt.step(closure), ref.step(ref_closure)
        np.testing.assert_allclose(loss.item(), ref_loss.item(), rtol=1e-6, atol=1e-12)
        for p, q in zip(ours, theirs):
            np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-6,
                                       atol=1e-9)
    state, ref_state = opt.state[ours[0]], ref.state[theirs[0]]
    assert set(state) == set(ref_state)
    assert state["func_evals"] == ref_state["func_evals"]
    assert state["n_iter"] == ref_state["n_iter"]
    assert len(state["old_dirs"]) == len(ref_state["old_dirs"])


# ------------------------------------------------------------------ schedulers

def _pair(opt_name: str, two_groups: bool = False):
    """The same optimizer (one or two groups) in lightgrad and torch."""
    kwargs = dict(lr=0.1, momentum=0.9) if opt_name == "SGD" else dict(lr=0.1)
    ours = [lg.zeros(1, requires_grad=True), lg.zeros(1, requires_grad=True)]
    theirs = [torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)]
    if two_groups:
        ours = [{"params": [ours[0]]}, {"params": [ours[1]], "lr": 0.05}]
        theirs = [{"params": [theirs[0]]}, {"params": [theirs[1]], "lr": 0.05}]
    return (getattr(optim, opt_name)(ours, **kwargs),
            getattr(torch.optim, opt_name)(theirs, **kwargs))


def _momenta(opt):
    return [g["betas"][0] if "betas" in g else g.get("momentum") for g in opt.param_groups]


def _compare_schedules(name, opt_name, kwargs, steps, two_groups=False):
    opt, ref = _pair(opt_name, two_groups)
    sched = getattr(lr_scheduler, name)(opt, **kwargs)
    ref_sched = getattr(torch.optim.lr_scheduler, name)(ref, **kwargs)
    for _ in range(steps):
        np.testing.assert_allclose(sched.get_last_lr(), ref_sched.get_last_lr(),
                                   rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose([g["lr"] for g in opt.param_groups],
                                   [g["lr"] for g in ref.param_groups], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(_momenta(opt), _momenta(ref), rtol=1e-12, atol=1e-15)
        opt.step()
        ref.step()
        sched.step()
        ref_sched.step()


@pytest.mark.parametrize("opt_name,kwargs,steps", [
    ("SGD", dict(max_lr=1.0, total_steps=50), 50),
    ("SGD", dict(max_lr=[1.0, 0.3], epochs=4, steps_per_epoch=9, pct_start=0.25,
                 anneal_strategy="linear", div_factor=10.0, final_div_factor=100.0), 36),
    ("Adam", dict(max_lr=0.5, total_steps=40, three_phase=True, base_momentum=0.8,
                  max_momentum=0.9), 40),
    ("SGD", dict(max_lr=1.0, total_steps=30, cycle_momentum=False), 30),
], ids=["cos", "linear-two-groups", "adam-three-phase", "no-momentum"])
def test_one_cycle_matches_torch(opt_name, kwargs, steps):
    _compare_schedules("OneCycleLR", opt_name, kwargs, steps,
                       two_groups=isinstance(kwargs["max_lr"], list))


def test_one_cycle_too_many_steps():
    opt, _ = _pair("SGD")
    sched = lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=3)
    sched.step()
    sched.step()
    sched.step()
    with pytest.raises(ValueError):
        sched.step()
    with pytest.raises(ValueError):
        lr_scheduler.OneCycleLR(opt, max_lr=1.0)


@pytest.mark.parametrize("opt_name,kwargs", [
    ("SGD", dict(base_lr=0.01, max_lr=0.1, step_size_up=4)),
    ("SGD", dict(base_lr=[0.01, 0.02], max_lr=[0.1, 0.3], step_size_up=3, step_size_down=5,
                 mode="triangular2")),
    ("SGD", dict(base_lr=0.01, max_lr=0.1, step_size_up=4, mode="exp_range", gamma=0.95)),
    ("Adam", dict(base_lr=0.001, max_lr=0.01, step_size_up=3, base_momentum=0.7,
                  max_momentum=0.95)),
    ("SGD", dict(base_lr=0.01, max_lr=0.1, step_size_up=2, scale_fn=lambda x: 1 / (1 + x),
                 scale_mode="iterations", cycle_momentum=False)),
], ids=["triangular", "triangular2-two-groups", "exp_range", "adam-betas", "scale_fn"])
def test_cyclic_matches_torch(opt_name, kwargs):
    _compare_schedules("CyclicLR", opt_name, kwargs, 40,
                       two_groups=isinstance(kwargs["base_lr"], list))


PLATEAU_METRICS = [1.0, 0.9, 0.9, 0.95, 0.9, 0.899, 0.91, 0.92, 0.5, 0.5, 0.5, 0.6, 0.7, 0.4,
                   0.4, 0.4, 0.4, 0.4, 0.4, 0.39999, 0.3, 0.3, 0.3, 0.3]


@pytest.mark.parametrize("kwargs", [
    dict(patience=1),
    dict(mode="max", factor=0.5, patience=2, threshold=0.01, threshold_mode="abs"),
    dict(factor=0.5, patience=0, cooldown=2, min_lr=[0.01, 0.02]),
    dict(factor=0.2, patience=1, threshold=0.05, eps=1e-2, min_lr=0.003),
], ids=["default", "max-abs", "cooldown-min_lr", "eps"])
def test_reduce_on_plateau_matches_torch(kwargs):
    opt, ref = _pair("SGD", two_groups=True)
    sched = lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
    ref_sched = torch.optim.lr_scheduler.ReduceLROnPlateau(ref, **kwargs)
    for metric in PLATEAU_METRICS:
        sched.step(metric)
        ref_sched.step(metric)
        assert sched.get_last_lr() == pytest.approx(ref_sched.get_last_lr(), rel=1e-12)
        assert [g["lr"] for g in opt.param_groups] == pytest.approx(
            [g["lr"] for g in ref.param_groups], rel=1e-12)
        assert sched.num_bad_epochs == ref_sched.num_bad_epochs
        assert sched.best == ref_sched.best
    assert sched.get_last_lr() != [0.1, 0.05]


def test_reduce_on_plateau_accepts_a_tensor_metric_and_validates():
    opt, _ = _pair("SGD")
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    sched.step(lg.tensor(1.0))
    sched.step(lg.tensor(2.0))
    assert sched.get_last_lr() == [0.05]
    with pytest.raises(ValueError):
        lr_scheduler.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError):
        lr_scheduler.ReduceLROnPlateau(opt, mode="median")
