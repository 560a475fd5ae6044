"""Learning-rate schedulers against torch.optim.lr_scheduler: the same rates, exactly."""
from __future__ import annotations

import warnings

import pytest

import lightgrad as lg
from lightgrad import optim
from lightgrad.optim import lr_scheduler as ours_sched

torch = pytest.importorskip("torch")
theirs_sched = torch.optim.lr_scheduler
# torch warns when a scheduler steps before its optimizer; the order doesn't matter here.
pytestmark = pytest.mark.filterwarnings("ignore:Detected call of:UserWarning")

EPOCHS = 30


class Halving:
    """A callable object (not a function): LambdaLR saves its __dict__."""

    def __init__(self, rate: float):
        self.rate = rate

    def __call__(self, epoch: int) -> float:
        return self.rate ** epoch


def _make(lib, opt, spec):
    sched = ours_sched if lib == "lg" else theirs_sched
    name, kwargs = spec
    if name == "SequentialLR":
        children = [_make(lib, opt, child) for child in kwargs["schedulers"]]
        return sched.SequentialLR(opt, children, milestones=kwargs["milestones"])
    return getattr(sched, name)(opt, **kwargs)


SPECS = {
    "step": ("StepLR", dict(step_size=3, gamma=0.5)),
    "multistep": ("MultiStepLR", dict(milestones=[2, 5, 5, 9], gamma=0.3)),
    "lambda": ("LambdaLR", dict(lr_lambda=lambda e: 0.95 ** e)),
    "lambda-per-group": ("LambdaLR", dict(lr_lambda=[lambda e: 1 / (e + 1), Halving(0.8)])),
    "cosine": ("CosineAnnealingLR", dict(T_max=7, eta_min=0.001)),
    "cosine-no-min": ("CosineAnnealingLR", dict(T_max=10)),
    "linear-warmup": ("LinearLR", dict(start_factor=0.25, total_iters=4)),
    "linear-decay": ("LinearLR", dict(start_factor=1.0, end_factor=0.1, total_iters=6)),
    "linear-default": ("LinearLR", dict()),
    "warmup-cosine": ("SequentialLR", dict(
        schedulers=[("LinearLR", dict(start_factor=0.1, total_iters=3)),
                    ("CosineAnnealingLR", dict(T_max=12, eta_min=1e-4))], milestones=[3])),
    "three-phases": ("SequentialLR", dict(
        schedulers=[("LinearLR", dict(start_factor=0.5, total_iters=2)),
                    ("StepLR", dict(step_size=2, gamma=0.7)),
                    ("CosineAnnealingLR", dict(T_max=5))], milestones=[3, 8])),
}


def _optimizers():
    a, b = lg.zeros(2, requires_grad=True), lg.zeros(3, requires_grad=True)
    ta, tb = torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)
    ours = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.05}], lr=0.1, momentum=0.9)
    theirs = torch.optim.SGD([{"params": [ta]}, {"params": [tb], "lr": 0.05}], lr=0.1,
                             momentum=0.9)
    return ours, theirs


def _rates(opt, sched):
    return sched.get_last_lr(), [g["lr"] for g in opt.param_groups]


@pytest.mark.parametrize("key", list(SPECS))
def test_rates_match_torch_exactly(key):
    ours_opt, theirs_opt = _optimizers()
    ours, theirs = _make("lg", ours_opt, SPECS[key]), _make("torch", theirs_opt, SPECS[key])
    for epoch in range(EPOCHS):
        assert _rates(ours_opt, ours) == _rates(theirs_opt, theirs), epoch
        ours_opt.step()
        theirs_opt.step()
        ours.step()
        theirs.step()
    assert _rates(ours_opt, ours) == _rates(theirs_opt, theirs)


@pytest.mark.parametrize("key", list(SPECS))
def test_state_dict_round_trip_continues_identically(key):
    ours_opt, theirs_opt = _optimizers()
    ours, theirs = _make("lg", ours_opt, SPECS[key]), _make("torch", theirs_opt, SPECS[key])
    for _ in range(11):
        ours.step()
        theirs.step()
    # A fresh optimizer and scheduler, restored from the state dicts.
    opt2, _ = _optimizers()
    sched2 = _make("lg", opt2, SPECS[key])
    opt2.load_state_dict(ours_opt.state_dict())
    sched2.load_state_dict(ours.state_dict())
    for epoch in range(12):
        assert _rates(opt2, sched2) == _rates(theirs_opt, theirs), epoch
        assert _rates(ours_opt, ours) == _rates(theirs_opt, theirs), epoch
        sched2.step()
        ours.step()
        theirs.step()


def test_lambda_state_dict_saves_callable_objects_only():
    opt, _ = _optimizers()
    sched = ours_sched.LambdaLR(opt, [lambda e: 1.0, Halving(0.5)])
    saved = sched.state_dict()
    assert saved["lr_lambdas"] == [None, {"rate": 0.5}]
    other = ours_sched.LambdaLR(opt, [lambda e: 1.0, Halving(0.9)])
    other.load_state_dict(saved)
    assert other.lr_lambdas[1].rate == 0.5
    assert "lr_lambdas" in saved  # loading doesn't consume the caller's dict


@pytest.mark.parametrize("key", ["step", "multistep", "cosine", "linear-warmup"])
def test_step_with_epoch_uses_closed_form_like_torch(key):
    ours_opt, theirs_opt = _optimizers()
    ours, theirs = _make("lg", ours_opt, SPECS[key]), _make("torch", theirs_opt, SPECS[key])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in (4, 9, 2, 15):
            ours.step(epoch)
            theirs.step(epoch)
            assert _rates(ours_opt, ours) == _rates(theirs_opt, theirs), epoch


def test_resume_with_last_epoch():
    opt, theirs_opt = _optimizers()
    for group, tgroup in zip(opt.param_groups, theirs_opt.param_groups):
        group["initial_lr"] = tgroup["initial_lr"] = group["lr"]
    ours = ours_sched.StepLR(opt, step_size=2, last_epoch=4)
    theirs = theirs_sched.StepLR(theirs_opt, step_size=2, last_epoch=4)
    for _ in range(5):
        assert _rates(opt, ours) == _rates(theirs_opt, theirs)
        ours.step()
        theirs.step()


def test_errors():
    opt, _ = _optimizers()
    with pytest.raises(KeyError, match=r"param_groups\[0\] has no 'initial_lr'"):
        ours_sched.StepLR(opt, step_size=2, last_epoch=3)
    with pytest.raises(TypeError, match="StepLR: expected an Optimizer, got list"):
        ours_sched.StepLR([], step_size=2)
    with pytest.raises(ValueError, match="LinearLR: start_factor must be in"):
        ours_sched.LinearLR(opt, start_factor=0.0)
    with pytest.raises(ValueError, match="LinearLR: end_factor must be in"):
        ours_sched.LinearLR(opt, end_factor=1.5)
    with pytest.raises(ValueError, match="LambdaLR: expected 2 lr_lambdas"):
        ours_sched.LambdaLR(opt, [lambda e: 1.0])
    first = ours_sched.StepLR(opt, step_size=2)
    second = ours_sched.StepLR(opt, step_size=3)
    with pytest.raises(ValueError, match="expected 1 milestones for 2 schedulers, got 2"):
        ours_sched.SequentialLR(opt, [first, second], milestones=[2, 4])
    other, _ = _optimizers()
    with pytest.raises(ValueError, match="scheduler 1 .StepLR. belongs to a different"):
        ours_sched.SequentialLR(opt, [first, ours_sched.StepLR(other, 2)], milestones=[2])
    with pytest.raises(ValueError, match="at least one scheduler"):
        ours_sched.SequentialLR(opt, [], milestones=[])
