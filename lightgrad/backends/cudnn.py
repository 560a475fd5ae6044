"""PyTorch's ``torch.backends.cudnn``: its flags as settable module attributes.

lightgrad's CUDA backend does not use cuDNN, so ``is_available()`` is False and the flags
change nothing; they exist so that code which sets them (``cudnn.benchmark = True``) runs.

>>> import lightgrad as lg
>>> lg.backends.cudnn.is_available(), lg.backends.cudnn.enabled
(False, True)
>>> with lg.backends.cudnn.flags(benchmark=True):
...     lg.backends.cudnn.benchmark
True
>>> lg.backends.cudnn.benchmark
False
"""
from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator

enabled: bool = True
benchmark: bool = False
deterministic: bool = False
allow_tf32: bool = True
benchmark_limit: int = 10


def is_available() -> bool:
    """Whether cuDNN is used: never, in lightgrad."""
    return False


def version() -> int | None:
    """cuDNN's version: None, as PyTorch answers without cuDNN."""
    return None


def is_acceptable(tensor: object) -> bool:
    """Whether cuDNN would handle ``tensor``: never, in lightgrad."""
    return False


@contextmanager
def flags(enabled: bool | None = None, benchmark: bool | None = None,
          deterministic: bool | None = None, allow_tf32: bool | None = None) -> Iterator[None]:
    """Set some flags for the duration of a ``with`` block (None leaves one as it is)."""
    module = sys.modules[__name__]
    wanted = {"enabled": enabled, "benchmark": benchmark, "deterministic": deterministic,
              "allow_tf32": allow_tf32}
    before = {name: getattr(module, name) for name in wanted}
    for name, value in wanted.items():
        if value is not None:
            setattr(module, name, value)
    try:
        yield
    finally:
        for name, value in before.items():
            setattr(module, name, value)
