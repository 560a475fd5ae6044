"""``run``: import an ONNX model and run it once on NumPy inputs.

>>> import lightgrad as lg, numpy as np
>>> outs = lg.onnx.run("model.onnx", [np.zeros((1, 3), np.float32)])  # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..autograd import no_grad
from .load import load
from .values import to_numpy

__all__ = ["run"]


def run(model: Any, inputs: Sequence[Any] = (), device: Any = None) -> list:
    """Run ``model`` (path, bytes, ModelProto or an imported module) on ``inputs``.

    ``inputs``: NumPy arrays (or lists for sequence inputs, None for empty optionals) in the
    graph's input order, or a dict by name. Returns the outputs as NumPy arrays (lists of
    arrays for sequence outputs). Given an imported module, repeated runs with the same
    input shapes replay its compiled graph (``OnnxModule.fast_path``).
    """
    from .model import OnnxModule
    m = model if isinstance(model, OnnxModule) else load(model, device=device)
    with no_grad():
        if isinstance(inputs, dict):
            out = m(**inputs)
        else:
            out = m(*inputs)
    outs = list(out) if isinstance(out, tuple) else [out]
    return [_copy(to_numpy(o)) for o in outs]


def _copy(v: Any) -> Any:
    """Outputs the caller owns (an output may be a parameter's own buffer)."""
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return None if v is None else np.array(v, copy=True)
