"""ONNX import, running and conformance (PyTorch's ``torch.onnx`` namespace too).

``load`` imports a model as an ordinary ``nn.Module`` (fine-tune it like any other);
``run`` is the one-call helper; ``export`` traces a model through graph mode and writes
it. Needs the ``onnx`` package: ``pip install lightgrad[onnx]``.

>>> import lightgrad as lg
>>> outs = lg.onnx.run("model.onnx", [x])  # doctest: +SKIP
>>> model = lg.onnx.load("model.onnx")  # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any

from .errors import (OnnxError, OnnxInputError, OnnxLoadError, OnnxRuntimeError,
                     UnsupportedOpError)
from .load import load, read_model
from .run import run

__all__ = ["load", "run", "read_model", "export", "is_in_onnx_export", "OnnxError",
           "OnnxLoadError", "UnsupportedOpError", "OnnxInputError", "OnnxRuntimeError"]

_exporting = [False]


def export(model: Any, args: Any, f: Any = None, **kwargs: Any) -> Any:
    """Export ``model(*args)`` to ONNX by tracing it through graph mode (see ``exporter.py``):
    ``export(model, (x,), "model.onnx", input_names=["x"], dynamic_axes={"x": [0]})``."""
    from .exporter import export as _export
    return _export(model, args, f, **kwargs)


def is_in_onnx_export() -> bool:
    """Whether an ONNX export is tracing right now."""
    return _exporting[0]
