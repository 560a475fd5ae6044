"""The ONNX op table: each ONNX op type maps to one function built from lightgrad ops.

Families, one module each: ``elementwise`` (math, activations, logic, casts), ``reduce``
(Reduce*, ArgMax, CumSum, Softmax, TopK), ``movement`` (shape ops, Slice, Gather, Scatter,
Pad, ...), ``conv`` (Conv, ConvTranspose), ``pool`` (MaxPool, AveragePool, ...), ``nn``
(Gemm/MatMul, Einsum, norms, losses), ``attention`` (Attention,
RotaryEmbedding, FlexAttention), ``resize`` (Resize, Upsample), ``rnn`` (RNN, GRU, LSTM),
``control`` (If, Loop, Scan), ``sequence`` (sequences, optionals), ``quantize``, ``signal``
(DFT, STFT, windows), ``vision`` (NonMaxSuppression, RoiAlign, GridSample, Col2Im,
DeformConv, ImageDecoder), ``misc`` (random, optimisers, LinearAttention, ...) and ``text``
(string ops, TfIdfVectorizer, ai.onnx.ml). ``registry`` holds the table and the fallback to
ONNX function bodies.

>>> from lightgrad.onnx.ops import OPS
>>> ("", "Conv") in OPS
True
"""
from .registry import OPS, lookup, op  # noqa: I001
from . import (  # noqa: F401  (each module registers its ops)
    attention, control, conv, elementwise, misc, movement, nn, pool, quantize, reduce, resize,
    rnn, sequence, signal, text, vision,
)

__all__ = ["OPS", "lookup", "op"]
