"""Errors of graph mode, and where in the user's code they come from."""
from __future__ import annotations

import os
import sys

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class GraphError(RuntimeError):
    """A graph is malformed (``Graph.validate``) or can't be run as asked."""


class TraceError(RuntimeError):
    """Code being traced did something a graph can't record: read a value in Python
    (``.item()``, ``.numpy()``, ``bool(t)``), or made a shape depend on values.
    ``where`` is the user's ``file:line`` that did it."""

    def __init__(self, message: str, where: str | None = None):
        self.where = where if where is not None else user_frame()
        super().__init__(f"{message} (at {self.where})" if self.where else message)


def user_frame() -> str:
    """``file:line`` of the innermost stack frame outside the lightgrad package (the
    user's line that called into lightgrad); '' when there is none.

    >>> user_frame().endswith(")") or ":" in user_frame() or user_frame() == ""
    True
    """
    frame = sys._getframe(1)
    while frame is not None:
        path = os.path.abspath(frame.f_code.co_filename)
        if not path.startswith(_PACKAGE + os.sep):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return ""
