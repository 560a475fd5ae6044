"""Optimizers and learning-rate schedulers, with PyTorch's names and update rules.

>>> import lightgrad as lg
>>> from lightgrad import optim
>>> w = lg.tensor([1.0], requires_grad=True)
>>> opt = optim.AdamW([w], lr=1e-2)
>>> sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
>>> (w * w).sum().backward(); opt.step(); sched.step(); opt.zero_grad()
"""
from . import lr_scheduler
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .lbfgs import LBFGS
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "LBFGS",
           "lr_scheduler"]
