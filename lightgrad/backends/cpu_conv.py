"""Convolution and pooling on the CPU: C kernels (``native/conv.c``) with NumPy twins.

``conv2d`` and its two backwards run a block of output rows of one image (or a few small
images) at a time, as im2col + one BLAS GEMM: ``weight (O, C*kh*kw) @ cols (C*kh*kw,
rows*Wo)`` writes straight into those rows of the (N, O, Ho, Wo) output, the bias riding in
the GEMM as a column of the weight times a row of ones. The input gradient is the
transposed GEMM followed by col2im (a C loop adding each column back where it was read);
the weight gradient one GEMM per block, summed. Blocks keep the columns in the L2 cache.
1x1 convolutions skip im2col. Stride-1 3x3 convolutions with 32 channels or more (ResNet's)
run all three passes by Winograd F(2x2, 3x3) instead: 16 GEMMs over transformed 4x4 tiles,
2.25 times fewer multiplications. Any stride, padding and dilation; grouped convolutions,
other dtypes and machines without the C kernels use the NumPy reference (``_conv2d`` and
friends below), which the tests compare the C paths against.

Max pooling is one C pass over the windows (values and PyTorch's flat indices), its
backward one scatter-add pass; average pooling is NumPy.

>>> import numpy as np
>>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
>>> conv2d(x, np.ones((1, 1, 2, 2), np.float32), None, (2, 2), ((0, 0), (0, 0)),
...        (1, 1), 1).tolist()
[[[[10.0, 18.0], [42.0, 50.0]]]]
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import native
from .cpu_native import kernel

native.declare(lg_im2col_f32="pppp", lg_im2col_f64="pppp", lg_col2im_f32="pppp",
               lg_col2im_f64="pppp",
               lg_max_pool2d_f32="ppp" + "i" * 13, lg_max_pool2d_f64="ppp" + "i" * 13,
               lg_max_pool2d_backward_f32="pppiii", lg_max_pool2d_backward_f64="pppiii",
               lg_winograd_input_f32="pp" + "i" * 9, lg_winograd_input_f64="pp" + "i" * 9,
               lg_winograd_output_f32="ppp" + "i" * 7, lg_winograd_output_f64="ppp" + "i" * 7,
               lg_winograd_grad_f32="pp" + "i" * 7, lg_winograd_grad_f64="pp" + "i" * 7)

_ptr = native.pointer

# Column matrices of about this size (a block of output rows of one image, or a few small
# images) stay in a current core's L2 cache while the GEMM reads them. CPU time of forward,
# input and weight gradient, one thread, LeNet's 32->64 5x5 layer (batch 64, 14x14):
# 20.0/20.2/20.0 ms with 256 KB, 16.3/17.1/17.1 with 1 MB, 19.9/18.4/21.6 with 8 MB.
_COLUMN_BYTES = 1 << 20


# --- public entry points: the C path when it applies, else the NumPy reference


def conv2d(x: np.ndarray, w: np.ndarray, bias: Any, stride: tuple, padding: tuple,
           dilation: tuple, groups: int) -> np.ndarray:
    """(N, C, H, W) convolved with (O, C // groups, kh, kw), plus bias (O,) or None;
    ``padding`` is ((top, bottom), (left, right))."""
    geo = _NativeGeometry.of(x.shape, w.shape, x.dtype, w.dtype, stride, padding, dilation,
                             groups)
    if geo is None:
        return _conv2d(x, w, bias, stride, padding, dilation, groups)
    return geo.forward(x, w, bias)


def conv2d_backward_input(grad: np.ndarray, w: np.ndarray, input_shape: tuple,
                          stride: tuple, padding: tuple, dilation: tuple,
                          groups: int) -> np.ndarray:
    """The gradient of ``conv2d`` with respect to its input, of ``input_shape``."""
    geo = _NativeGeometry.of(tuple(input_shape), w.shape, grad.dtype, w.dtype, stride,
                             padding, dilation, groups)
    if geo is None:
        return _conv2d_backward_input(grad, w, input_shape, stride, padding, dilation, groups)
    return geo.backward_input(grad, w)


def conv2d_backward_weight(grad: np.ndarray, x: np.ndarray, weight_shape: tuple,
                           stride: tuple, padding: tuple, dilation: tuple,
                           groups: int) -> np.ndarray:
    """The gradient of ``conv2d`` with respect to its weight, of ``weight_shape``."""
    geo = _NativeGeometry.of(x.shape, tuple(weight_shape), x.dtype, grad.dtype, stride,
                             padding, dilation, groups)
    if geo is None:
        return _conv2d_backward_weight(grad, x, weight_shape, stride, padding, dilation,
                                       groups)
    return geo.backward_weight(grad, x)


def max_pool2d(x: np.ndarray, kernel_size: tuple, stride: tuple, padding: tuple,
               dilation: tuple, ceil_mode: bool) -> tuple:
    """(values, int64 flat indices ``h * W + w`` of each window's maximum)."""
    fn = kernel("max_pool2d", x.dtype)
    if fn is None or x.size == 0 or kernel_size[1] > 64:
        return _max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode)
    n, c, h, w = x.shape
    ho, wo = _pool_out_hw((h, w), kernel_size, stride, padding, dilation, ceil_mode)
    x = np.ascontiguousarray(x)
    out = np.empty((n, c, ho, wo), x.dtype)
    index = np.empty((n, c, ho, wo), np.int64)
    fn(_ptr(out), _ptr(index), _ptr(x), n * c, h, w, ho, wo, *kernel_size, *stride,
       *padding, *dilation)
    return out, index


def max_pool2d_backward(grad: np.ndarray, indices: np.ndarray,
                        input_shape: tuple) -> np.ndarray:
    """``grad`` of max pooling added at the input positions ``indices``."""
    fn = kernel("max_pool2d_backward", grad.dtype)
    if fn is None or indices.dtype != np.int64 or grad.size == 0:
        return _max_pool2d_backward(grad, indices, input_shape)
    n, c, h, w = input_shape
    grad, indices = np.ascontiguousarray(grad), np.ascontiguousarray(indices)
    dx = np.empty(tuple(input_shape), grad.dtype)
    fn(_ptr(dx), _ptr(grad), _ptr(indices), n * c, h * w, grad.shape[2] * grad.shape[3])
    return dx


def avg_pool2d(x: np.ndarray, kernel_size: tuple, stride: tuple, padding: tuple,
               ceil_mode: bool, count_include_pad: bool, divisor_override: Any) -> np.ndarray:
    """Window means (PyTorch's divisor rules)."""
    return _avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override)


def avg_pool2d_backward(grad: np.ndarray, input_shape: tuple, kernel_size: tuple,
                        stride: tuple, padding: tuple, ceil_mode: bool,
                        count_include_pad: bool, divisor_override: Any) -> np.ndarray:
    """Each window's gradient divided by its divisor and spread over the window."""
    return _avg_pool2d_backward(grad, input_shape, kernel_size, stride, padding, ceil_mode,
                                count_include_pad, divisor_override)


class _NativeGeometry:
    """One convolution's shapes for the C kernels: im2col/col2im of one image's output
    rows ``oh0 : oh0 + rows`` and the GEMMs around them."""

    @classmethod
    def of(cls, x_shape: tuple, w_shape: tuple, dtype: Any, w_dtype: Any, stride: tuple,
           padding: tuple, dilation: tuple, groups: int) -> _NativeGeometry | None:
        """The geometry, or None where the C path does not apply (dtypes, no C kernels,
        empty shapes): the caller then runs the NumPy reference."""
        if np.dtype(dtype) != np.dtype(w_dtype):
            return None
        im2col, col2im = kernel("im2col", dtype), kernel("col2im", dtype)
        if im2col is None or col2im is None:
            return None
        geo = cls(x_shape, w_shape, stride, padding, dilation, groups)
        if not (geo.n and geo.k and geo.o and geo.ho > 0 and geo.wo > 0):
            return None
        geo.im2col, geo.col2im, geo.dtype = im2col, col2im, np.dtype(dtype)
        return geo

    def __init__(self, x_shape: tuple, w_shape: tuple, stride: tuple, padding: tuple,
                 dilation: tuple, groups: int = 1):
        self.n, self.c, self.h, self.w = x_shape
        self.o, _, self.kh, self.kw = w_shape
        self.k = self.c * self.kh * self.kw
        # groups: group g's columns are rows g*kg : (g+1)*kg of cols, its weights rows
        # g*og : (g+1)*og of the (O, kg) weight; each block runs one GEMM per group
        self.groups, self.kg, self.og = groups, self.k // groups, self.o // groups
        self.stride, self.dilation = stride, dilation
        self.top, self.left = padding[0][0], padding[1][0]
        self.ho, self.wo = _conv_out((self.h, self.w), (self.kh, self.kw), stride, padding,
                                     dilation)
        self.plain = groups == 1 and (self.kh, self.kw) == (1, 1) and stride == (1, 1) and \
            (self.top, self.left) == (0, 0) and (self.ho, self.wo) == (self.h, self.w)

    def winograd(self, top: int, left: int) -> bool:
        """Whether Winograd F(2x2, 3x3) runs this convolution (or its input gradient, with
        ``top``/``left`` its padding): stride 1, 3x3, no dilation, padding the transform
        handles, and enough channels that the GEMMs outweigh the transforms."""
        return ((self.kh, self.kw) == (3, 3) and self.stride == (1, 1) and self.groups == 1 and
                self.dilation == (1, 1) and 0 <= top <= 2 and 0 <= left <= 2 and
                min(self.c, self.o) >= _WINOGRAD_MIN_CHANNELS and _winograd_kernels(
                    self.dtype) is not None)

    def blocks(self, itemsize: int) -> list:
        """(n0, nb, oh0, rows): nb images from n0, output rows oh0 : oh0 + rows, whose
        column matrices take about _COLUMN_BYTES (a whole image's or more when small)."""
        row_bytes = max(self.k * self.wo * itemsize, 1)
        rows = max(1, min(self.ho, _COLUMN_BYTES // row_bytes))
        nb = max(1, min(self.n, _COLUMN_BYTES // (row_bytes * self.ho))) \
            if rows == self.ho else 1
        return [(n0, min(nb, self.n - n0), oh0, min(rows, self.ho - oh0))
                for oh0 in range(0, self.ho, rows) for n0 in range(0, self.n, nb)]

    def _geometry(self, a: np.ndarray, cols: int) -> np.ndarray:
        """The C kernels' int64 geometry for images of ``a`` (strides non-negative multiples
        of the itemsize, see _positive_strides) and ``cols`` elements per column matrix;
        entries 0, 18, 19 (images, first output row, rows) are set per block."""
        strides = [v // a.itemsize for v in a.strides]
        return np.array([0, cols, strides[0], self.c, self.h, self.w, *strides[1:], self.kh,
                         self.kw, *self.stride, self.top, self.left, *self.dilation, self.wo,
                         0, 0], np.int64)

    def _columns(self, blocks: list, dtype: Any, extra: int = 0) -> tuple:
        """A buffer for the largest block's column matrices (``extra`` more rows each) and
        the C kernels' scratch: one image's zero-padded input rows for the largest block."""
        size = max(nb * rows for _, nb, _, rows in blocks)
        rows = max(rows for *_, rows in blocks)
        (sh, sw), (dh, dw) = self.stride, self.dilation
        padded = ((rows - 1) * sh + (self.kh - 1) * dh + 1) * \
            ((self.wo - 1) * sw + (self.kw - 1) * dw + 1)
        return (np.empty((self.k + extra) * size * self.wo, dtype),
                np.empty(self.c * padded, dtype))

    def forward(self, x: np.ndarray, w: np.ndarray, bias: Any) -> np.ndarray:
        x = _positive_strides(x)
        if self.winograd(self.top, self.left):
            return _winograd(x, w, bias, self.top, self.left, (self.ho, self.wo))
        out = np.empty((self.n, self.o, self.ho * self.wo), x.dtype)
        weight = w.reshape(self.o, self.kg)
        if self.plain:  # 1x1: the image itself is the column matrix
            np.matmul(weight, x.reshape(self.n, self.c, -1), out=out)
            if bias is not None:
                out += bias.reshape(-1, 1).astype(x.dtype, copy=False)
            return out.reshape(self.n, self.o, self.ho, self.wo)
        extra = int(bias is not None and self.groups == 1)
        if extra:  # the bias: a last weight column times a row of ones
            weight = np.concatenate([weight, bias.reshape(-1, 1).astype(x.dtype)], axis=1)
        weight = weight.reshape(self.groups, self.og, -1)
        blocks = self.blocks(x.itemsize)
        buf, scratch = self._columns(blocks, x.dtype, extra)
        geometry = self._geometry(x, (self.k + extra) * blocks[0][3] * self.wo)
        for n0, nb, oh0, rows in blocks:
            cols = buf[:nb * (self.k + extra) * rows * self.wo].reshape(nb, self.k + extra, -1)
            self._run(self.im2col, cols, x[n0], scratch, geometry, nb, oh0, rows)
            if extra:
                cols[:, self.k] = 1
            span = slice(oh0 * self.wo, (oh0 + rows) * self.wo)
            np.matmul(weight, self._grouped(cols), out=self._grouped(out[n0:n0 + nb, :, span]))
        if bias is not None and not extra:
            out += bias.reshape(-1, 1).astype(x.dtype, copy=False)
        return out.reshape(self.n, self.o, self.ho, self.wo)

    def backward_input(self, grad: np.ndarray, w: np.ndarray) -> np.ndarray:
        if self.winograd(2 - self.top, 2 - self.left):
            # the input gradient of a stride-1 convolution is a convolution of the output
            # gradient with the flipped, transposed kernel and the complementary padding
            flipped = w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]
            return _winograd(_positive_strides(grad), flipped, None, 2 - self.top,
                             2 - self.left, (self.h, self.w))
        grad = np.ascontiguousarray(grad).reshape(self.n, self.o, -1)
        weight_t = np.ascontiguousarray(
            w.reshape(self.groups, self.og, self.kg).transpose(0, 2, 1))
        dx = np.zeros((self.n, self.c, self.h, self.w), grad.dtype)
        if self.plain:
            np.matmul(weight_t[0], grad, out=dx.reshape(self.n, self.c, -1))
            return dx
        blocks = self.blocks(grad.itemsize)
        buf, scratch = self._columns(blocks, dx.dtype)
        geometry = self._geometry(dx, self.k * blocks[0][3] * self.wo)
        for n0, nb, oh0, rows in blocks:
            cols = buf[:nb * self.k * rows * self.wo].reshape(nb, self.k, -1)
            span = slice(oh0 * self.wo, (oh0 + rows) * self.wo)
            np.matmul(weight_t, self._grouped(grad[n0:n0 + nb, :, span]),
                      out=self._grouped(cols))
            self._run(self.col2im, dx[n0], cols, scratch, geometry, nb, oh0, rows)
        return dx

    def backward_weight(self, grad: np.ndarray, x: np.ndarray) -> np.ndarray:
        if self.winograd(self.top, self.left):
            return _winograd_weight_grad(grad, x, self.top, self.left)
        grad = np.ascontiguousarray(grad).reshape(self.n, self.o, -1)
        x = _positive_strides(x)
        if self.plain:
            gw = np.matmul(grad, x.reshape(self.n, self.c, -1).transpose(0, 2, 1)).sum(0)
            return gw.reshape(self.o, self.c, self.kh, self.kw)
        blocks = self.blocks(x.itemsize)
        buf, scratch = self._columns(blocks, x.dtype)
        geometry = self._geometry(x, self.k * blocks[0][3] * self.wo)
        # (K, O) = cols @ grad.T per image: BLAS runs this orientation fastest (CPU time,
        # one thread, LeNet's 32->64 5x5 layer: 15.7 ms against 17.6 for grad @ cols.T)
        gw_t = np.zeros((self.groups, self.kg, self.og), grad.dtype)
        part = np.empty((blocks[0][1], self.groups, self.kg, self.og), grad.dtype)
        for n0, nb, oh0, rows in blocks:
            cols = buf[:nb * self.k * rows * self.wo].reshape(nb, self.k, -1)
            self._run(self.im2col, cols, x[n0], scratch, geometry, nb, oh0, rows)
            span = slice(oh0 * self.wo, (oh0 + rows) * self.wo)
            np.matmul(self._grouped(cols),
                      self._grouped(grad[n0:n0 + nb, :, span]).transpose(0, 1, 3, 2),
                      out=part[:nb])
            gw_t += part[:nb].sum(0) if nb > 1 else part[0]
        return gw_t.transpose(0, 2, 1).reshape(self.o, self.c // self.groups, self.kh, self.kw)

    def _grouped(self, a: np.ndarray) -> np.ndarray:
        """(nb, rows, P) as the view (nb, groups, rows // groups, P)."""
        return a.reshape(a.shape[0], self.groups, -1, a.shape[2])  # splits an axis: a view

    @staticmethod
    def _run(fn: Any, first: np.ndarray, second: np.ndarray, scratch: np.ndarray,
             geometry: np.ndarray, nb: int, oh0: int, rows: int) -> None:
        """im2col (cols, image) or col2im (image, cols) of one block."""
        geometry[0], geometry[18], geometry[19] = nb, oh0, rows
        fn(_ptr(first), _ptr(second), _ptr(scratch), _ptr(geometry))


# Winograd F(2x2, 3x3) (native/conv.c): G maps a 3-tap filter to the 4 transform points;
# kron(G, G) (16, 9) maps a 3x3 kernel to its 16 transformed entries, G g G^T flattened.
_WINOGRAD_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
_WINOGRAD_GG = np.kron(_WINOGRAD_G, _WINOGRAD_G)
# below about 32 channels the transforms cost what the GEMMs save (CPU time, one thread:
# 16->32 on 14x14, batch 1, 0.078 ms against 0.055 by im2col; 64->64 on 56x56 1.8 ms
# against 2.9)
_WINOGRAD_MIN_CHANNELS = 32
_WINOGRAD_BYTES = 4 << 20  # transformed tiles (V and M) of a block of images


def _winograd_kernels(dtype: Any) -> tuple | None:
    found = tuple(kernel(f"winograd_{name}", dtype) for name in ("input", "output", "grad"))
    return None if None in found else found


def _winograd(x: np.ndarray, w: np.ndarray, bias: Any, top: int, left: int,
              out_hw: tuple) -> np.ndarray:
    """Stride-1 3x3 convolution of x (N, C, H, W) with w (O, C, 3, 3), padding top/left
    (bottom/right: whatever ``out_hw`` needs), by Winograd F(2x2, 3x3)."""
    transform_in, transform_out, _ = _winograd_kernels(x.dtype)
    x = np.ascontiguousarray(x)
    n, c, h, wd = x.shape
    o = w.shape[0]
    ho, wo = out_hw
    th, tw = -(-ho // 2), -(-wo // 2)
    u = (_WINOGRAD_GG.astype(x.dtype) @ w.reshape(o * c, 9).T).reshape(16, o, c)
    nb = max(1, min(n, _WINOGRAD_BYTES // (16 * (c + o) * th * tw * x.itemsize)))
    # the 16 planes of V and M a little more than a page-multiple apart: 16 streams a
    # multiple of 4 KiB apart would fight over the same L1 cache sets
    ve, me = c * nb * th * tw + 16, o * nb * th * tw + 16
    v, m = np.empty((16, ve), x.dtype), np.empty((16, me), x.dtype)
    out = np.empty((n, o, ho, wo), x.dtype)
    bias = None if bias is None else np.ascontiguousarray(bias, dtype=x.dtype)
    for n0 in range(0, n, nb):
        k = min(nb, n - n0)
        vk = v[:, :c * k * th * tw].reshape(16, c, -1)
        mk = m[:, :o * k * th * tw].reshape(16, o, -1)
        transform_in(_ptr(vk), _ptr(x[n0]), k, ve, c, h, wd, top, left, th, tw)
        np.matmul(u, vk, out=mk)
        transform_out(_ptr(out[n0]), _ptr(mk), None if bias is None else _ptr(bias), k, me,
                      o, ho, wo, th, tw)
    return out


def _winograd_weight_grad(grad: np.ndarray, x: np.ndarray, top: int, left: int
                          ) -> np.ndarray:
    """The weight gradient (O, C, 3, 3) of a stride-1 3x3 convolution of x (padding
    top/left) whose output gradient is grad, by Winograd F(2x2, 3x3): per tile entry, one
    GEMM of the transformed gradient and the transformed input over all tiles."""
    transform_in, _, transform_grad = _winograd_kernels(x.dtype)
    x, grad = np.ascontiguousarray(x), np.ascontiguousarray(grad)
    n, c, h, wd = x.shape
    o, ho, wo = grad.shape[1:]
    th, tw = -(-ho // 2), -(-wo // 2)
    nb = max(1, min(n, _WINOGRAD_BYTES // (16 * (c + o) * th * tw * x.itemsize)))
    ve, ge = c * nb * th * tw + 16, o * nb * th * tw + 16  # not page multiples: see above
    v, gt = np.empty((16, ve), x.dtype), np.empty((16, ge), x.dtype)
    total, part = np.zeros((16, o, c), x.dtype), np.empty((16, o, c), x.dtype)
    for n0 in range(0, n, nb):
        k = min(nb, n - n0)
        vk = v[:, :c * k * th * tw].reshape(16, c, -1)
        gk = gt[:, :o * k * th * tw].reshape(16, o, -1)
        transform_in(_ptr(vk), _ptr(x[n0]), k, ve, c, h, wd, top, left, th, tw)
        transform_grad(_ptr(gk), _ptr(grad[n0]), k, ge, o, ho, wo, th, tw)
        np.matmul(gk, vk.transpose(0, 2, 1), out=part)
        total += part
    return (total.reshape(16, o * c).T @ _WINOGRAD_GG.astype(x.dtype)).reshape(o, c, 3, 3)


def _positive_strides(x: np.ndarray) -> np.ndarray:
    """x itself when its strides are non-negative multiples of its itemsize, else a copy."""
    if all(s >= 0 and s % x.itemsize == 0 for s in x.strides):
        return x
    return np.ascontiguousarray(x)


# --- the NumPy reference (and the path for what the C kernels don't cover).
# No Python loop runs over pixels or batch items: convolution is one im2col copy per kernel
# tap plus one BLAS matmul; pooling loops over the kernel taps only.


def _taps(kernel: tuple, stride: tuple, dilation: tuple, rows: tuple, wo: int) -> list:
    """For each kernel tap t = i * kw + j: the (height, width) slices of a padded input that
    the tap reads for output rows ``rows[0]:rows[1]`` and all ``wo`` output columns."""
    (kh, kw), (sh, sw), (dh, dw), (r0, r1) = kernel, stride, dilation, rows
    return [(i * kw + j, (slice(i * dh + r0 * sh, i * dh + (r1 - 1) * sh + 1, sh),
                          slice(j * dw, j * dw + sw * (wo - 1) + 1, sw)))
            for i in range(kh) for j in range(kw)]


def _padded(x: np.ndarray, pads: tuple, value: float, leading: tuple) -> np.ndarray:
    """x's last two axes surrounded by ``pads = ((top, bottom), (left, right))`` of
    ``value``, with ``x``'s leading axes transposed to ``leading`` order."""
    (pt, pb), (pl, pr) = pads
    xt = x.transpose(leading + (x.ndim - 2, x.ndim - 1))
    if not (pt or pb or pl or pr):
        return xt
    h, w = x.shape[-2:]
    out = np.full(xt.shape[:-2] + (h + pt + pb, w + pl + pr), value, dtype=x.dtype)
    out[..., pt:pt + h, pl:pl + w] = xt
    return out


def _conv_out(x_hw: tuple, kernel: tuple, stride: tuple, padding: tuple,
              dilation: tuple) -> tuple:
    return tuple((n + p[0] + p[1] - d * (k - 1) - 1) // s + 1
                 for n, k, s, p, d in zip(x_hw, kernel, stride, padding, dilation))


# Column buffers are built for a block of output rows at a time: about _BLOCK_BYTES, so the
# buffer is reused heap memory that stays in cache, where one for the whole batch (tens of
# MB for a ResNet layer) would be fresh pages from the OS on every call. But each im2col
# copy moves runs of (rows in the block) x (row width) elements: with narrow images a 4 MB
# block is a single row and the copies crawl, so a block holds enough rows for runs of
# _MIN_RUN elements, up to _MAX_BLOCK_BYTES (under glibc's mmap threshold as cpu_memory
# sets it). CPU time of fwd + both backwards, one thread: LeNet's 32->64 5x5 conv (batch
# 64, 14x14) 105 ms with 4 MB blocks, 89 ms with 24 MB; ResNet's 64->64 3x3 (batch 8,
# 56x56) 94 ms with 4 MB, 103 ms with 24 MB: this rule takes the better of each.
_BLOCK_BYTES = 4 << 20
_MAX_BLOCK_BYTES = 24 << 20
_MIN_RUN = 128


def _row_blocks(rows: int, row_bytes: int, width: int = 1) -> list:
    """``range(rows)`` cut into (start, stop) blocks of about _BLOCK_BYTES of columns, or
    more rows when rows of ``width`` elements would make runs shorter than _MIN_RUN."""
    row_bytes = max(row_bytes, 1)
    step = max(_BLOCK_BYTES // row_bytes, -(-_MIN_RUN // max(width, 1)))
    step = min(step, _MAX_BLOCK_BYTES // row_bytes)
    step = max(1, min(rows, step))
    return [(r, min(r + step, rows)) for r in range(0, rows, step)]


class _ConvGeometry:
    """Where each kernel tap of a convolution reads, in a channel-major padded input
    (C, N, Hp + 1, Wp) (one spare zero row).

    With unit stride, a tap reading output rows r0:r1 is ONE contiguous run of every
    (c, n) plane, if each output row is computed ``wp`` wide instead of ``wo`` wide: the
    ``wp - wo`` extra columns wrap into the next row and are thrown away (forward) or get a
    zero gradient (backward). Long runs make im2col and col2im fast. Strided convolutions
    read a strided window per tap instead."""

    def __init__(self, x_shape: tuple, kernel: tuple, stride: tuple, padding: tuple,
                 dilation: tuple):
        self.kernel, self.stride, self.padding, self.dilation = kernel, stride, padding, dilation
        self.n, self.c, h, w = x_shape
        (pt, pb), (pl, pr) = padding
        self.hp, self.wp = h + pt + pb, w + pl + pr
        self.ho, self.wo = _conv_out((h, w), kernel, stride, padding, dilation)
        self.flat = tuple(stride) == (1, 1)
        self.width = self.wp if self.flat else self.wo  # columns computed per output row

    def pad(self, x: np.ndarray) -> np.ndarray:
        """x (N, C, H, W) as the zero-padded channel-major (C, N, Hp + 1, Wp)."""
        (pt, _), (pl, _) = self.padding
        out = np.zeros((self.c, self.n, self.hp + 1, self.wp), dtype=x.dtype)
        out[:, :, pt:pt + x.shape[2], pl:pl + x.shape[3]] = x.transpose(1, 0, 2, 3)
        return out

    def crop(self, xp: np.ndarray) -> np.ndarray:
        """The inverse of ``pad``: (N, C, H, W) as a view of the channel-major buffer."""
        (pt, pb), (pl, pr) = self.padding
        return xp[:, :, pt:self.hp - pb, pl:self.wp - pr].transpose(1, 0, 2, 3)

    def blocks(self, itemsize: int) -> list:
        taps = self.kernel[0] * self.kernel[1]
        return _row_blocks(self.ho, self.c * taps * self.n * self.width * itemsize, self.width)

    def taps(self, xp: np.ndarray, r0: int, r1: int) -> list:
        """(t, view of xp) per kernel tap t: what the tap reads for output rows r0:r1."""
        (kh, kw), (sh, sw), (dh, dw) = self.kernel, self.stride, self.dilation
        out = []
        if self.flat:
            planes = xp.reshape(self.c, self.n, -1)
            for i in range(kh):
                for j in range(kw):
                    start = (r0 + i * dh) * self.wp + j * dw
                    out.append((i * kw + j, planes[:, :, start:start + (r1 - r0) * self.wp]))
            return out
        for i in range(kh):
            for j in range(kw):
                rows = slice(i * dh + r0 * sh, i * dh + (r1 - 1) * sh + 1, sh)
                cols = slice(j * dw, j * dw + sw * (self.wo - 1) + 1, sw)
                out.append((i * kw + j, xp[:, :, rows, cols]))
        return out

    def columns(self, xp: np.ndarray, ones_row: bool = False):
        """Yield (r0, r1, cols): im2col of output rows r0:r1, cols (C * kh * kw,
        N * (r1 - r0) * width) with row (c, i, j) the input under tap (i, j) of channel c,
        and with ``ones_row`` one more row of ones last (a bias column of the weights then
        adds the bias inside the GEMM). One buffer is reused: cols is overwritten by the
        next block."""
        taps = self.kernel[0] * self.kernel[1]
        blocks = self.blocks(xp.itemsize)
        extra = self.n * self.width if ones_row else 0
        size = self.c * taps * self.n * self.width
        buf = np.empty((size + extra) * (blocks[0][1] - blocks[0][0]), dtype=xp.dtype)
        for r0, r1 in blocks:
            rows = r1 - r0
            cols = buf[:size * rows].reshape(self.c, taps, self.n, -1)
            for t, src in self.taps(xp, r0, r1):
                cols[:, t] = src.reshape(self.c, self.n, -1)
            if ones_row:
                buf[size * rows:(size + extra) * rows] = 1
            yield r0, r1, buf[:(size + extra) * rows].reshape(self.c * taps + ones_row, -1)

    def grad_rows(self, grad: np.ndarray, r0: int, r1: int, groups: int) -> np.ndarray:
        """Output rows r0:r1 of grad (N, O, Ho, Wo) as (groups, O // groups, N * r * width),
        zero in the extra columns."""
        block = grad.transpose(1, 0, 2, 3)[:, :, r0:r1]
        if self.width != self.wo:
            wide = np.zeros(block.shape[:3] + (self.width,), dtype=grad.dtype)
            wide[..., :self.wo] = block
            block = wide
        return block.reshape(groups, grad.shape[1] // groups, -1)


def _group_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(G, M, K) @ (G, K, P); one plain 2-d BLAS call when G == 1 (NumPy's stacked matmul
    is much slower for a single wide product)."""
    if a.shape[0] == 1:
        return np.matmul(a[0], b[0])[None]
    return np.matmul(a, b)


def _conv2d(x, w, bias, stride, padding, dilation, groups) -> np.ndarray:
    o = w.shape[0]
    geo = _ConvGeometry(x.shape, w.shape[2:], stride, padding, dilation)
    weight = w.reshape(groups, o // groups, -1)
    # one group: the bias is a last weight column times a row of ones in the columns, so
    # the GEMM adds it (no extra pass over the strided output)
    in_gemm = bias is not None and groups == 1
    if in_gemm:
        weight = np.concatenate([weight, bias.reshape(1, o, 1).astype(w.dtype)], axis=2)
    pieces = []
    for r0, r1, cols in geo.columns(geo.pad(x), ones_row=in_gemm):
        out = _group_matmul(weight, cols.reshape(groups, -1, cols.shape[1]))
        pieces.append(out.reshape(o, geo.n, r1 - r0, geo.width)[..., :geo.wo])
    out = pieces[0] if len(pieces) == 1 else np.concatenate(pieces, axis=2)
    if bias is not None and not in_gemm:
        out += bias.reshape(o, 1, 1, 1)
    # Channel-major memory (O, N, Ho, Wo) seen as (N, O, Ho, Wo): no transposing copy; the
    # next conv's im2col and this conv's backward want exactly this layout.
    return out.transpose(1, 0, 2, 3)


def _conv2d_backward_input(grad, w, input_shape, stride, padding, dilation,
                           groups) -> np.ndarray:
    o = w.shape[0]
    geo = _ConvGeometry(tuple(input_shape), w.shape[2:], stride, padding, dilation)
    weight_t = w.reshape(groups, o // groups, -1).transpose(0, 2, 1)
    gx = np.zeros((geo.c, geo.n, geo.hp + 1, geo.wp), dtype=np.result_type(grad, w))
    for r0, r1 in geo.blocks(gx.itemsize):
        cols = _group_matmul(weight_t, geo.grad_rows(grad, r0, r1, groups))
        cols = cols.reshape(geo.c, -1, geo.n, r1 - r0, geo.width)
        for t, dst in geo.taps(gx, r0, r1):  # col2im: each tap adds back where it read
            dst += cols[:, t].reshape(dst.shape)
    return geo.crop(gx)  # channel-major, as above


def _conv2d_backward_weight(grad, x, weight_shape, stride, padding, dilation,
                            groups) -> np.ndarray:
    geo = _ConvGeometry(x.shape, weight_shape[2:], stride, padding, dilation)
    gw = 0
    for r0, r1, cols in geo.columns(geo.pad(x)):
        cols = cols.reshape(groups, -1, cols.shape[1]).transpose(0, 2, 1)
        gw = gw + _group_matmul(geo.grad_rows(grad, r0, r1, groups), cols)
    return gw.reshape(weight_shape)


def _pool_geometry(x_hw: tuple, out_hw: tuple, kernel: tuple, stride: tuple,
                   padding: tuple, dilation: tuple) -> tuple:
    """((top, bottom), (left, right)) padding that covers every window, ceil_mode included."""
    pads = []
    for n, no, k, s, p, d in zip(x_hw, out_hw, kernel, stride, padding, dilation):
        need = (no - 1) * s + d * (k - 1) + 1
        pads.append((p, max(need - n - p, 0)))
    return tuple(pads)


def _pool_out(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output size: the last window must start inside input or left pad."""
    span = n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = span // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def _pool_out_hw(x_hw, kernel, stride, padding, dilation, ceil_mode) -> tuple:
    return tuple(_pool_out(n, k, s, p, d, ceil_mode)
                 for n, k, s, p, d in zip(x_hw, kernel, stride, padding, dilation))


def _max_pool2d(x, kernel, stride, padding, dilation, ceil_mode) -> tuple:
    h, w = x.shape[2:]
    out_hw = _pool_out_hw((h, w), kernel, stride, padding, dilation, ceil_mode)
    best, arg = _max_pool2d_taps(x, kernel, stride, padding, dilation, out_hw)
    # flat input index of each window's winner: window origin + the winning tap's offset
    offsets = np.array([i * dilation[0] * w + j * dilation[1] for i in range(kernel[0])
                        for j in range(kernel[1])], dtype=np.int64)
    origin = (np.arange(out_hw[0]) * stride[0] - padding[0]).reshape(-1, 1) * w + \
        np.arange(out_hw[1]) * stride[1] - padding[1]
    indices = offsets[arg]
    indices += origin
    if padding[0] or padding[1]:  # a window of -inf keeps a padding tap: PyTorch's index
        indices = _first_inside_tap(indices, arg, (h, w), out_hw, kernel, stride, padding,
                                    dilation)  # is the window's first tap inside the input
    return best, indices


def _first_inside_tap(indices, arg, x_hw, out_hw, kernel, stride, padding, dilation):
    """``indices`` with each winning tap that lies in the padding replaced by the flat index
    of the window's first tap inside the input."""
    inside, first = [], []
    for n, no, k, s, p, d in zip(x_hw, out_hw, kernel, stride, padding, dilation):
        pos = (np.arange(no) * s - p)[None, :] + (np.arange(k) * d)[:, None]  # (k, no)
        ok = (pos >= 0) & (pos < n)
        inside.append(ok)
        first.append(pos[ok.argmax(axis=0), np.arange(no)])
    ti, tj = np.divmod(arg, kernel[1])
    ok = inside[0][ti, np.arange(out_hw[0])[:, None]] & inside[1][tj, np.arange(out_hw[1])]
    return np.where(ok, indices, first[0][:, None] * x_hw[1] + first[1])


def _max_pool2d_taps(x, kernel, stride, padding, dilation, out_hw) -> tuple:
    """Max and its tap number over every kernel tap (any stride/padding/dilation): one
    strided view of the (padded) input per tap, no copy of the windows."""
    pads = _pool_geometry(x.shape[2:], out_hw, kernel, stride, padding, dilation)
    low = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    xp = _padded(x, pads, low, (0, 1))
    best = arg = None
    for t, window in _taps(kernel, stride, dilation, (0, out_hw[0]), out_hw[1]):
        v = xp[(slice(None), slice(None)) + window]
        if best is None:
            best = np.array(v, order="C")
            arg = np.zeros(v.shape, np.uint8 if kernel[0] * kernel[1] <= 256 else np.int64)
            continue
        take = v > best
        if x.dtype.kind == "f":
            take |= np.isnan(v)  # NaN wins, as in PyTorch (np.maximum propagates it too)
        np.maximum(best, v, out=best)
        np.putmask(arg, take, t)
    return best, arg


def _max_pool2d_backward(grad, indices, input_shape) -> np.ndarray:
    n, c, h, w = input_shape
    planes = n * c
    flat = indices.reshape(planes, -1) + (np.arange(planes) * (h * w)).reshape(-1, 1)
    total = np.bincount(flat.ravel(), weights=grad.reshape(-1), minlength=planes * h * w)
    return total.astype(grad.dtype).reshape(input_shape)


def _avg_scale(x_hw, out_hw, kernel, stride, padding, count_include_pad,
               divisor_override, dtype) -> np.ndarray:
    """1 / divisor for every output position (Ho, Wo), PyTorch's rules."""
    if divisor_override:
        return np.full(out_hw, 1.0 / divisor_override, dtype=dtype)
    sizes = []
    for n, no, k, s, p in zip(x_hw, out_hw, kernel, stride, padding):
        start = np.arange(no) * s - p
        end = np.minimum(start + k, n + p)
        if count_include_pad:
            sizes.append(end - start)
        else:
            sizes.append(np.minimum(end, n) - np.maximum(start, 0))
    return (1.0 / np.outer(sizes[0], sizes[1])).astype(dtype)


def _avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad,
                divisor_override) -> np.ndarray:
    x_hw = x.shape[2:]
    out_hw = _pool_out_hw(x_hw, kernel, stride, padding, (1, 1), ceil_mode)
    xp = _padded(x, _pool_geometry(x_hw, out_hw, kernel, stride, padding, (1, 1)), 0, (0, 1))
    total = np.zeros(x.shape[:2] + out_hw, dtype=x.dtype)
    for _, window in _taps(kernel, stride, (1, 1), (0, out_hw[0]), out_hw[1]):
        total += xp[(slice(None), slice(None)) + window]
    total *= _avg_scale(x_hw, out_hw, kernel, stride, padding, count_include_pad,
                        divisor_override, x.dtype)
    return total


def _avg_pool2d_backward(grad, input_shape, kernel, stride, padding, ceil_mode,
                         count_include_pad, divisor_override) -> np.ndarray:
    x_hw, out_hw = tuple(input_shape[2:]), grad.shape[2:]
    share = grad * _avg_scale(x_hw, out_hw, kernel, stride, padding, count_include_pad,
                              divisor_override, grad.dtype)
    (pt, pb), (pl, pr) = _pool_geometry(x_hw, out_hw, kernel, stride, padding, (1, 1))
    gx = np.zeros(tuple(input_shape[:2]) + (x_hw[0] + pt + pb, x_hw[1] + pl + pr),
                  dtype=grad.dtype)
    for _, window in _taps(kernel, stride, (1, 1), (0, out_hw[0]), out_hw[1]):
        gx[(slice(None), slice(None)) + window] += share
    return np.ascontiguousarray(gx[:, :, pt:pt + x_hw[0], pl:pl + x_hw[1]])


