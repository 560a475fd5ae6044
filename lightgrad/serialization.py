"""PyTorch's ``torch.serialization`` names: ``save``/``load`` and the safe-globals list.

lightgrad checkpoints are safetensors files (see ``lightgrad.io``); nothing is ever
unpickled. The only thing ``load(..., weights_only=True)`` refuses is a whole saved
``nn.Module``, because rebuilding one imports and runs its class's code. Classes added
with ``add_safe_globals`` (or inside a ``safe_globals`` block) are trusted to be rebuilt
with ``weights_only=True`` too.

>>> from lightgrad import nn
>>> with safe_globals([nn.Linear]):
...     nn.Linear in get_safe_globals()
True
>>> get_safe_globals()
[]
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterable, Iterator

from .io import UnsafeLoadError, load, load_file, save, save_file

__all__ = ["UnsafeLoadError", "add_safe_globals", "clear_safe_globals", "get_safe_globals",
           "load", "load_file", "safe_globals", "save", "save_file"]

_safe: list[Any] = []


def _path(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', repr(obj))}"


def add_safe_globals(globals_: Iterable[Any]) -> None:
    """Trust these classes: ``load(..., weights_only=True)`` may rebuild saved modules of
    exactly these classes.

    >>> from lightgrad import nn
    >>> add_safe_globals([nn.ReLU]); _is_safe(_path(nn.ReLU))
    True
    >>> clear_safe_globals()
    """
    for g in globals_:
        if isinstance(g, tuple):  # PyTorch also accepts (obj, "name") pairs
            g = g[0]
        if g not in _safe:
            _safe.append(g)


def get_safe_globals() -> list[Any]:
    """The classes ``add_safe_globals`` trusted so far."""
    return list(_safe)


def clear_safe_globals() -> None:
    """Forget every class ``add_safe_globals`` trusted."""
    _safe.clear()


@contextmanager
def safe_globals(globals_: Iterable[Any]) -> Iterator[None]:
    """Trust these classes for the duration of a ``with`` block."""
    before = list(_safe)
    add_safe_globals(globals_)
    try:
        yield
    finally:
        _safe[:] = before


def _is_safe(path: str) -> bool:
    return any(_path(g) == path for g in _safe)
