"""The errors the ONNX importer raises: every failure is one of these, never a crash.

>>> issubclass(OnnxLoadError, OnnxError) and issubclass(OnnxLoadError, ValueError)
True
"""
from __future__ import annotations

__all__ = ["OnnxError", "OnnxLoadError", "UnsupportedOpError", "OnnxInputError",
           "OnnxRuntimeError"]


class OnnxError(Exception):
    """Base class of every error lightgrad.onnx raises."""


class OnnxLoadError(OnnxError, ValueError):
    """The file or bytes are not a readable ONNX model (truncated, corrupt, unsafe data path)."""


class UnsupportedOpError(OnnxError, NotImplementedError):
    """A node whose op (domain, opset) or attribute lightgrad does not implement."""


class OnnxInputError(OnnxError, ValueError):
    """A model input of the wrong shape, dtype or count."""


class OnnxRuntimeError(OnnxError, RuntimeError):
    """A node failed while running; the message names the node and its op."""
