"""PyTorch's ``torch.onnx``: a namespace for now, so code that references
``torch.onnx.export`` imports; exporting is the ONNX issue's work.

>>> import lightgrad as lg
>>> lg.onnx.export(None, None, "model.onnx")
Traceback (most recent call last):
    ...
NotImplementedError: lightgrad.onnx.export is not implemented yet: the ONNX issue adds it
"""
from __future__ import annotations

from typing import Any

__all__ = ["export", "is_in_onnx_export"]


def export(model: Any, args: Any, f: Any = None, *rest: Any, **kwargs: Any) -> Any:
    """Export ``model`` to ONNX: not implemented yet (raises NotImplementedError)."""
    raise NotImplementedError("lightgrad.onnx.export is not implemented yet: the ONNX issue "
                              "adds it")


def is_in_onnx_export() -> bool:
    """Whether an ONNX export is tracing right now: never, yet."""
    return False
