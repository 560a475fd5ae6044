"""``nn.parallel.DataParallel``: PyTorch's wrapper, here running the wrapped module as is on
its own device (lightgrad uses one device per model), so code written for DataParallel runs
unchanged and its state_dict keys carry the ``module.`` prefix as in PyTorch.

>>> import lightgrad as lg
>>> from lightgrad import nn
>>> model = nn.parallel.DataParallel(nn.Linear(3, 2))
>>> list(model.state_dict())
['module.weight', 'module.bias']
>>> model(lg.ones(4, 3)).shape
(4, 2)
"""
from __future__ import annotations

from typing import Any, Sequence

from .module import Module


class DataParallel(Module):
    """Wraps ``module`` (available as ``.module``); ``forward`` calls it with the same
    arguments. ``device_ids``, ``output_device`` and ``dim`` are accepted and recorded.

    >>> from lightgrad import nn
    >>> wrapped = DataParallel(nn.ReLU())
    >>> wrapped
    DataParallel(
      (module): ReLU()
    )
    """

    def __init__(self, module: Module, device_ids: Sequence[Any] | None = None,
                 output_device: Any = None, dim: int = 0):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DataParallel: module must be a Module, got "
                            f"{type(module).__name__}")
        self.module = module
        self.device_ids = list(device_ids) if device_ids is not None else []
        self.output_device, self.dim = output_device, dim

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        return self.module(*inputs, **kwargs)


def data_parallel(module: Module, inputs: Any, device_ids: Sequence[Any] | None = None,
                  output_device: Any = None, dim: int = 0,
                  module_kwargs: dict | None = None) -> Any:
    """PyTorch's functional ``data_parallel``: here ``module(*inputs, **module_kwargs)`` on
    the module's own device (``device_ids``, ``output_device`` and ``dim`` are accepted).

    >>> import lightgrad as lg
    >>> from lightgrad import nn
    >>> data_parallel(nn.Linear(3, 2), lg.ones(4, 3), range(2)).shape
    (4, 2)
    """
    if not isinstance(inputs, tuple):
        inputs = (inputs,)
    return module(*inputs, **(module_kwargs or {}))


from .ddp import DistributedDataParallel  # noqa: E402

__all__ = ["DataParallel", "DistributedDataParallel", "data_parallel"]
