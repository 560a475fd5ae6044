"""Signal ops: DFT, STFT, the Hann/Hamming/Blackman windows and MelWeightMatrix (NumPy FFT).

Complex values are real tensors with a trailing dimension of 2 (real, imaginary), as in
ONNX.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..values import onnx_np_dtype
from .registry import op
from .util import npy, scalar


def _complex(a: np.ndarray) -> np.ndarray:
    return a[..., 0] + 1j * a[..., 1] if a.shape[-1] == 2 else a[..., 0] + 0j


def _pack(c: np.ndarray, dt: np.dtype) -> np.ndarray:
    return np.stack([c.real, c.imag], axis=-1).astype(dt)


@op("DFT")
def dft(ctx: Any, x: Any, dft_length: Any = None, axis_in: Any = None, *, axis: int = 1,
        inverse: int = 0, onesided: int = 0) -> Any:
    a = npy(x)
    ax = int(scalar(axis_in, -2)) if ctx.opset >= 20 else axis
    ax = ax + a.ndim if ax < 0 else ax
    c = _complex(a)
    n = int(scalar(dft_length, 2 * (c.shape[ax] - 1) if inverse and onesided else c.shape[ax]))
    if inverse and onesided:
        return ctx.value(np.fft.irfft(c, n=n, axis=ax)[..., None].astype(a.dtype))
    if n != c.shape[ax]:
        if n < c.shape[ax]:
            c = np.take(c, np.arange(n), axis=ax)
        else:
            widths = [(0, 0)] * c.ndim
            widths[ax] = (0, n - c.shape[ax])
            c = np.pad(c, widths)
    out = np.fft.ifft(c, axis=ax) if inverse else np.fft.fft(c, axis=ax)
    if onesided:
        out = np.take(out, np.arange(n // 2 + 1), axis=ax)
    return ctx.value(_pack(out, a.dtype))


@op("STFT")
def stft(ctx: Any, signal: Any, frame_step: Any, window: Any = None, frame_length: Any = None,
         *, onesided: int = 1) -> Any:
    a = npy(signal)
    c = _complex(a)  # (batch, length)
    step = int(scalar(frame_step))
    win = npy(window).astype(np.float64) if window is not None else None
    length = int(scalar(frame_length, len(win) if win is not None else c.shape[1]))
    if win is None:
        win = np.ones(length)
    frames = (c.shape[1] - length) // step + 1
    idx = np.arange(frames)[:, None] * step + np.arange(length)[None, :]
    seg = c[:, idx] * win
    out = np.fft.fft(seg, axis=-1)
    if onesided:
        out = out[..., :length // 2 + 1]
    return ctx.value(_pack(out, a.dtype))


def _window(name: str, size: Any, output_datatype: int, periodic: int) -> np.ndarray:
    n = int(scalar(size))
    denom = n if periodic else n - 1
    k = np.arange(n, dtype=np.float64)
    t = 2 * np.pi * k / max(denom, 1)
    if name == "hann":
        w = 0.5 - 0.5 * np.cos(t)
    elif name == "hamming":
        w = 25 / 46 - 21 / 46 * np.cos(t)
    else:
        w = 0.42 - 0.5 * np.cos(t) + 0.08 * np.cos(2 * t)
    return w.astype(onnx_np_dtype(output_datatype))


@op("HannWindow")
def hann_window(ctx: Any, size: Any, *, output_datatype: int = 1, periodic: int = 1) -> Any:
    return ctx.value(_window("hann", size, output_datatype, periodic))


@op("HammingWindow")
def hamming_window(ctx: Any, size: Any, *, output_datatype: int = 1, periodic: int = 1) -> Any:
    return ctx.value(_window("hamming", size, output_datatype, periodic))


@op("BlackmanWindow")
def blackman_window(ctx: Any, size: Any, *, output_datatype: int = 1,
                    periodic: int = 1) -> Any:
    return ctx.value(_window("blackman", size, output_datatype, periodic))


@op("MelWeightMatrix")
def mel_weight_matrix(ctx: Any, num_mel_bins: Any, dft_length: Any, sample_rate: Any,
                      lower_edge_hertz: Any, upper_edge_hertz: Any, *,
                      output_datatype: int = 1) -> Any:
    bins, n_fft, sr = int(scalar(num_mel_bins)), int(scalar(dft_length)), int(scalar(sample_rate))
    lo, hi = float(scalar(lower_edge_hertz)), float(scalar(upper_edge_hertz))
    n_spec = n_fft // 2 + 1

    def mel(f: Any) -> Any:
        return 2595 * np.log10(1 + f / 700)

    lo_m, hi_m = mel(lo), mel(hi)
    mel_pts = np.arange(bins + 2) * ((hi_m - lo_m) / (bins + 2)) + lo_m
    hz = 700 * (10 ** (mel_pts / 2595) - 1)
    fbin = np.floor((n_fft + 1) * hz / sr).astype(np.int64)
    out = np.zeros((n_spec, bins))
    for i in range(bins):
        left, center, right = fbin[i], fbin[i + 1], fbin[i + 2]
        if center == left:
            out[center, i] = 1.0
        else:
            for j in range(left, center + 1):
                out[j, i] = (j - left) / (center - left)
        for j in range(center, right):
            out[j, i] = (right - j) / (right - center)
    return ctx.value(out.astype(onnx_np_dtype(output_datatype)))
