"""The Optimizer base class: parameter groups, per-parameter state, and state dicts.

An optimizer holds ``param_groups``: a list of dicts, each with a ``"params"`` list and
that group's hyperparameters (missing ones are filled from ``defaults``). ``state`` maps each
parameter to a dict of its buffers (momentum, running averages, step count). Subclasses
only write ``_update``: how one parameter changes given its gradient, state and group.

>>> import lightgrad as lg
>>> from lightgrad.optim import SGD
>>> w = lg.tensor([1.0, 2.0], requires_grad=True)
>>> opt = SGD([w], lr=0.5)
>>> (w * w).sum().backward()
>>> opt.step(); w
tensor([0., 0.], requires_grad=True)
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable, Iterable

from ..autograd import enable_grad, no_grad
from ..tensor import Tensor


class Optimizer:
    """Base class of all optimizers (PyTorch's ``torch.optim.Optimizer`` interface).

    ``params`` is an iterable of tensors, or of dicts ``{"params": [...], "lr": ...}``
    giving each group its own options.

    >>> import lightgrad as lg
    >>> from lightgrad.optim import SGD
    >>> a, b = lg.zeros(2, requires_grad=True), lg.zeros(3, requires_grad=True)
    >>> opt = SGD([{"params": [a]}, {"params": [b], "lr": 0.1}], lr=1.0)
    >>> [g["lr"] for g in opt.param_groups]
    [1.0, 0.1]
    """

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]):
        self.defaults = dict(defaults)
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, (Tensor, dict)):
            raise TypeError(f"{self._name}: params must be an iterable of Tensors or of dicts, "
                            f"got a single {type(params).__name__}; wrap it in a list")
        if isinstance(params, set):
            raise TypeError(f"{self._name}: parameters must be an ordered sequence, not a set "
                            "(its order changes between runs)")
        groups = list(params)
        if not groups:
            raise ValueError(f"{self._name}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    @property
    def _name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        lines = [f"{self._name} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines + [")"])

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters (with its own options) to optimize.

        >>> import lightgrad as lg
        >>> from lightgrad.optim import SGD
        >>> opt = SGD([lg.zeros(1, requires_grad=True)], lr=1.0)
        >>> opt.add_param_group({"params": [lg.zeros(2, requires_grad=True)], "lr": 0.5})
        >>> len(opt.param_groups)
        2
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"{self._name}.add_param_group: expected a dict, got "
                            f"{type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"{self._name}.add_param_group: the group has no 'params' key")
        params = param_group["params"]
        if isinstance(params, set):
            raise TypeError(f"{self._name}: parameters must be an ordered sequence, not a set "
                            "(its order changes between runs)")
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{self._name}: can only optimize Tensors, got "
                                f"{type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{self._name}: can't optimize a non-leaf Tensor (shape "
                                 f"{p.shape}); optimize the leaves it was computed from")
        seen = {id(p) for group in self.param_groups for p in group["params"]}
        if len({id(p) for p in params}) != len(params) or any(id(p) in seen for p in params):
            raise ValueError(f"{self._name}: some parameters appear more than once in the "
                             "parameter groups")
        group = {**self.defaults, **param_group, "params": params}
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's gradient: to None (default) or to zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad = p.grad.detach()
                    p.grad.zero_()

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; returns ``closure()`` if one is given
        (the closure recomputes the loss and calls backward)."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                self._step_group(group)
        return loss

    def _step_group(self, group: dict[str, Any]) -> None:
        """Update the parameters of one group that have a gradient (one ``_update`` each;
        optimizers with a multi-tensor kernel override this)."""
        for p in group["params"]:
            if p.grad is not None:
                self._update(p, p.grad.detach(), self.state[p], group)

    def _update(self, param: Tensor, grad: Tensor, state: dict[str, Any],
                group: dict[str, Any]) -> None:
        """Change ``param`` in place from ``grad``; ``state`` is its (mutable) buffer dict."""
        raise NotImplementedError

    # ------------------------------------------------------------------ state dicts
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state in PyTorch's layout: parameters are replaced by their
        position across all groups.

        ``{"state": {index: {buffer: value}}, "param_groups": [{..., "params": [index]}]}``.
        Buffers are the live tensors (not copies), as in PyTorch.

        >>> import lightgrad as lg
        >>> from lightgrad.optim import SGD
        >>> opt = SGD([lg.zeros(1, requires_grad=True)], lr=0.1)
        >>> opt.state_dict()["param_groups"][0]["params"]
        [0]
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)]: dict(s) for p, s in self.state.items()
                 if s and id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyperparameters and buffers saved by ``state_dict()``.

        Groups must match in number and size. Buffers are copied, moved to each
        parameter's device and (for floating-point buffers) cast to its dtype.
        """
        name = f"{self._name}.load_state_dict"
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            raise ValueError(f"{name}: expected a dict with keys 'state' and 'param_groups'")
        saved = state_dict["param_groups"]
        if len(saved) != len(self.param_groups):
            raise ValueError(f"{name}: the state dict has {len(saved)} parameter groups but "
                             f"the optimizer has {len(self.param_groups)}")
        by_index: dict[int, Tensor] = {}
        for i, (group, old) in enumerate(zip(self.param_groups, saved)):
            if len(group["params"]) != len(old["params"]):
                raise ValueError(f"{name}: parameter group {i} has {len(group['params'])} "
                                 f"parameters but the state dict's has {len(old['params'])}")
            by_index.update(zip((int(k) for k in old["params"]), group["params"]))
        state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        for key, buffers in state_dict["state"].items():
            if int(key) not in by_index:
                raise ValueError(f"{name}: the state dict has state for parameter {key}, "
                                 f"which no parameter group lists")
            param = by_index[int(key)]
            state[param] = {k: _load_buffer(param, k, v) for k, v in buffers.items()}
        for group, old in zip(self.param_groups, saved):
            group.update({k: v for k, v in old.items() if k != "params"})
        self.state = state


def _load_buffer(param: Tensor, key: str, value: Any) -> Any:
    """A private copy of a saved buffer, on the parameter's device (and dtype if float)."""
    if key == "step":
        return int(value.item()) if isinstance(value, Tensor) else int(value)
    if not isinstance(value, Tensor):
        return value
    dtype = param.dtype if value.dtype.is_floating_point else value.dtype
    return value.detach().to(device=param.device, dtype=dtype, copy=True)


def check_range(optimizer: str, name: str, value: float, low: float = 0.0,
                high: float | None = None) -> None:
    """Raise a clear ValueError unless ``low <= value`` (and ``value < high``)."""
    if not value >= low or (high is not None and not value < high):
        bound = f"in [{low}, {high})" if high is not None else f">= {low}"
        raise ValueError(f"{optimizer}: invalid {name} {value!r}; it must be {bound}")
