"""CUDA primitives: convolution (im2col + GEMM) and pooling (kernels: conv.cu, pool.cu).

Convolution works in "column space", as cpu.py does: im2col turns the input into columns
(C kh kw, N Ho Wo), and each of the three convolution primitives is one GEMM per group
(``gemm_into``: cuBLAS or our kernels, see ops_linalg.py) around it:

- conv2d: out (O, N Ho Wo) = weight (O, C kh kw) @ columns, plus bias. The result stays
  channel-major, seen as (N, O, Ho, Wo) through strides (no transposing copy; cpu.py too).
- conv2d_backward_input: columns = weight^T @ grad, then col2im folds them back.
- conv2d_backward_weight: grad @ columns^T.

The columns of a large batch would be big (C kh kw times the output size), so they are built
for a block of images at a time (``COLUMN_BYTES``). float16/bfloat16 compute in float32 and
round back, as cpu.py does; output sizes come from cpu.py's helpers.
"""
from __future__ import annotations

import numpy as np

from ..cpu import _conv_out, _pool_out_hw
from .array import DeviceArray
from .backend import HALF, suffix

COLUMN_BYTES = 256 << 20  # the most bytes of im2col columns built at once
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64)) + HALF


def _compute_dtype(dtype: np.dtype, op: str) -> np.dtype:
    if dtype not in _FLOATS:
        raise TypeError(f"{op}: needs a floating-point dtype on cuda, got {dtype}")
    return np.dtype(np.float32) if dtype in HALF else dtype


def _image_blocks(n: int, bytes_per_image: int) -> list[tuple[int, int]]:
    """``range(n)`` images cut into (start, stop) blocks of about COLUMN_BYTES of columns."""
    step = max(1, min(n, COLUMN_BYTES // max(bytes_per_image, 1)))
    return [(i, min(i + step, n)) for i in range(0, n, step)]


def _grouped(rows: DeviceArray, groups: int) -> DeviceArray:
    """A contiguous (G R, W) matrix as G stacked (R, W) matrices."""
    r, w = rows.shape
    return rows.view((groups, r // groups, w), (r // groups * w, w, 1))


def _columns(matrix: DeviceArray, groups: int, start: int, stop: int) -> DeviceArray:
    """Columns start:stop of a contiguous (G R, W) matrix as G stacked (R, stop - start)."""
    r, w = matrix.shape
    return matrix.view((groups, r // groups, stop - start), (r // groups * w, w, 1), start)


class ConvOps:
    """conv2d and its two gradients; max and average pooling and their gradients."""

    # --- helpers
    def _as_compute(self, x: DeviceArray | None, dtype: np.dtype) -> DeviceArray | None:
        return x if x is None or x.dtype == dtype else self.astype(x, dtype)

    def _round_back(self, x: DeviceArray, dtype: np.dtype) -> DeviceArray:
        return x if x.dtype == dtype else self.astype(x, dtype)

    def _weight_matrix(self, w: DeviceArray, groups: int) -> DeviceArray:
        """w (O, C / G, kh, kw) as G stacked (O / G, C / G kh kw) matrices."""
        w = self.contiguous(w)
        o = w.shape[0]
        k = w.size // o
        return w.view((groups, o // groups, k), (o // groups * k, k, 1))

    def _channel_major(self, grad: DeviceArray) -> DeviceArray:
        """grad (N, O, Ho, Wo) as the contiguous matrix (O, N Ho Wo)."""
        n, o, ho, wo = grad.shape
        s = grad.strides
        dense = self.contiguous(grad.view((o, n, ho, wo), (s[1], s[0], s[2], s[3])))
        return dense.view((o, n * ho * wo), (n * ho * wo, 1))

    def _geometry(self, x_shape: tuple, x_strides: tuple, kernel: tuple, stride: tuple,
                  padding: tuple, dilation: tuple, out_hw: tuple) -> list:
        """The scalar arguments conv.cu's kernels take after the input pointer."""
        _, c, h, w = x_shape
        (pt, _), (pl, _) = padding
        return [c, h, w, *x_strides, *kernel, *stride, pt, pl, *dilation, *out_hw]

    def _im2col(self, x: DeviceArray, start: int, stop: int, kernel: tuple, stride: tuple,
                padding: tuple, dilation: tuple, out_hw: tuple) -> DeviceArray:
        """Columns (C kh kw, (stop - start) Ho Wo) of images start:stop of x."""
        c = x.shape[1]
        width = (stop - start) * out_hw[0] * out_hw[1]
        cols = self.empty((c * kernel[0] * kernel[1], width), x.dtype)
        images = x.view((stop - start,) + x.shape[1:], x.strides, start * x.strides[0])
        geometry = self._geometry(x.shape, x.strides, kernel, stride, padding, dilation,
                                  out_hw)
        self.launch_elementwise(self.kernel("conv", f"im2col_{suffix(x.dtype, 'conv2d')}"),
                                cols.size, [stop - start, images, *geometry, cols])
        return cols

    # --- convolution
    def conv2d(self, x, w, bias, stride, padding, dilation, groups) -> DeviceArray:
        dtype, result = _compute_dtype(x.dtype, "conv2d"), x.dtype
        x, w, bias = (self._as_compute(t, dtype) for t in (x, w, bias))
        n, c, h, wd = x.shape
        o, kernel = w.shape[0], tuple(w.shape[2:])
        out_hw = _conv_out((h, wd), kernel, stride, padding, dilation)
        per_image = out_hw[0] * out_hw[1]
        out = self.empty((o, n * per_image), dtype)  # channel-major (O, N, Ho, Wo)
        if out.size:
            weight = self._weight_matrix(w, groups)
            rows = c * kernel[0] * kernel[1]
            for start, stop in _image_blocks(n, rows * per_image * dtype.itemsize):
                cols = self._im2col(x, start, stop, kernel, stride, padding, dilation, out_hw)
                self.gemm_into(weight, _grouped(cols, groups),
                               _columns(out, groups, start * per_image, stop * per_image))
            if bias is not None:
                self.binary_inplace("add", out, bias.view((o, 1), (bias.strides[0], 0)))
        out = self._round_back(out, result)
        return out.view((n, o) + out_hw, (per_image, n * per_image, out_hw[1], 1))

    def conv2d_backward_input(self, grad, w, input_shape, stride, padding, dilation,
                              groups) -> DeviceArray:
        dtype = _compute_dtype(grad.dtype, "conv2d_backward_input")
        result = grad.dtype
        grad, w = self._as_compute(grad, dtype), self._as_compute(w, dtype)
        n, c, h, wd = (int(s) for s in input_shape)
        kernel, out_hw = tuple(w.shape[2:]), tuple(grad.shape[2:])
        per_image = out_hw[0] * out_hw[1]
        gx = self.empty((n, c, h, wd), dtype)
        if gx.size == 0:
            return self._round_back(gx, result)
        if grad.size == 0:
            self.fill(gx, 0)
            return self._round_back(gx, result)
        g = self._channel_major(grad)
        weight = self._weight_matrix(w, groups)
        weight_t = weight.view((groups,) + weight.shape[:0:-1],
                               (weight.strides[0],) + weight.strides[:0:-1])
        geometry = self._geometry(gx.shape, gx.strides, kernel, stride, padding, dilation,
                                  out_hw)
        col2im = self.kernel("conv", f"col2im_{suffix(dtype, 'conv2d_backward_input')}")
        rows = c * kernel[0] * kernel[1]
        for start, stop in _image_blocks(n, rows * per_image * dtype.itemsize):
            cols = self.empty((rows, (stop - start) * per_image), dtype)
            self.gemm_into(weight_t, _columns(g, groups, start * per_image, stop * per_image),
                           _grouped(cols, groups))
            images = gx.view((stop - start, c, h, wd), gx.strides, start * gx.strides[0])
            self.launch_elementwise(col2im, images.size,
                                    [stop - start, cols, *geometry, images])
        return self._round_back(gx, result)

    def conv2d_backward_weight(self, grad, x, weight_shape, stride, padding, dilation,
                               groups) -> DeviceArray:
        dtype = _compute_dtype(grad.dtype, "conv2d_backward_weight")
        result = grad.dtype
        grad, x = self._as_compute(grad, dtype), self._as_compute(x, dtype)
        o, cg, kh, kw = (int(s) for s in weight_shape)
        n, c = x.shape[:2]
        out_hw = tuple(grad.shape[2:])
        per_image = out_hw[0] * out_hw[1]
        gw = self.empty((groups, o // groups, cg * kh * kw), dtype)
        if grad.size == 0 or x.size == 0:
            self.fill(gw, 0)
        else:
            g = self._channel_major(grad)
            rows = c * kh * kw
            partial = None
            for start, stop in _image_blocks(n, rows * per_image * dtype.itemsize):
                cols = self._im2col(x, start, stop, (kh, kw), stride, padding, dilation,
                                    out_hw)
                cols_t = _grouped(cols, groups)
                cols_t = cols_t.view((groups, cols_t.shape[2], cols_t.shape[1]),
                                     (cols_t.strides[0], 1, cols_t.strides[1]))
                target = gw if start == 0 else partial
                if target is None:
                    target = partial = self.empty(gw.shape, dtype)
                self.gemm_into(_columns(g, groups, start * per_image, stop * per_image),
                               cols_t, target)
                if start:
                    self.binary_inplace("add", gw, target)
        gw = gw.view((o, cg, kh, kw), self.strides_of((o, cg, kh, kw)))
        return self._round_back(gw, result)

    # --- pooling
    def _pool_args(self, x: DeviceArray, out_hw: tuple, kernel: tuple, stride: tuple,
                   padding: tuple, dilation: tuple) -> list:
        """pool.cu's geometry arguments (C, H, W, Ho, Wo, x's strides, window)."""
        _, c, h, w = x.shape
        return [c, h, w, *out_hw, *x.strides, *kernel, *stride, *padding, *dilation]

    def max_pool2d(self, x, kernel, stride, padding, dilation, ceil_mode) -> tuple:
        _compute_dtype(x.dtype, "max_pool2d")
        n, c, h, w = x.shape
        out_hw = _pool_out_hw((h, w), kernel, stride, padding, dilation, ceil_mode)
        out = self.empty((n, c) + out_hw, x.dtype)
        index = self.empty((n, c) + out_hw, np.int64)
        self.launch_elementwise(
            self.kernel("pool", f"max_pool2d_{suffix(x.dtype, 'max_pool2d')}"), out.size,
            [out.size, x, *self._pool_args(x, out_hw, kernel, stride, padding, dilation),
             out, index])
        return out, index

    def max_pool2d_backward(self, grad, indices, input_shape) -> DeviceArray:
        _compute_dtype(grad.dtype, "max_pool2d_backward")
        n, c, h, w = (int(s) for s in input_shape)
        total = self.full((n, c, h, w), 0, np.float64)  # float64 sums, as cpu's bincount
        out_plane = grad.shape[2] * grad.shape[3]
        self.launch_elementwise(
            self.kernel("pool", f"max_pool2d_backward_{suffix(grad.dtype, 'max_pool2d')}"),
            grad.size, [grad.size, grad, grad.layout(), indices, indices.layout(grad.shape),
                        out_plane, h * w, total])
        return self._round_back(total, grad.dtype)

    def avg_pool2d(self, x, kernel, stride, padding, ceil_mode, count_include_pad,
                   divisor_override) -> DeviceArray:
        _compute_dtype(x.dtype, "avg_pool2d")
        n, c, h, w = x.shape
        out_hw = _pool_out_hw((h, w), kernel, stride, padding, (1, 1), ceil_mode)
        out = self.empty((n, c) + out_hw, x.dtype)
        self.launch_elementwise(
            self.kernel("pool", f"avg_pool2d_{suffix(x.dtype, 'avg_pool2d')}"), out.size,
            [out.size, x, *self._pool_args(x, out_hw, kernel, stride, padding, (1, 1)),
             bool(count_include_pad), int(divisor_override or 0), out])
        return out

    def avg_pool2d_backward(self, grad, input_shape, kernel, stride, padding, ceil_mode,
                            count_include_pad, divisor_override) -> DeviceArray:
        _compute_dtype(grad.dtype, "avg_pool2d_backward")
        gx = self.empty(tuple(int(s) for s in input_shape), grad.dtype)
        # the geometry of the forward pass, with grad's strides in place of x's
        args = self._pool_args(grad, tuple(grad.shape[2:]), kernel, stride, padding, (1, 1))
        args[1:3] = gx.shape[2:]
        self.launch_elementwise(
            self.kernel("pool", f"avg_pool2d_backward_{suffix(grad.dtype, 'avg_pool2d')}"),
            gx.size, [gx.size, grad, *args, bool(count_include_pad),
                      int(divisor_override or 0), gx])
        return gx

