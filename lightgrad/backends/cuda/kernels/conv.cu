// conv.cu: the data movement of convolution as GEMM (ops_conv.py does the GEMMs). The NumPy
// twins are _ConvGeometry.columns (im2col) and the tap loop of _conv2d_backward_input
// (col2im) in cpu.py.
//
// im2col_* unrolls the input windows into a column matrix: row (c, i, j) holds, for every
// output position (n, oh, ow), the input pixel under kernel tap (i, j) of channel c
// (zero where the tap falls in the padding). Then conv2d is weights (O, C kh kw) times
// columns (C kh kw, N Ho Wo), per group. One thread per element of the columns: consecutive
// threads write consecutive columns (coalesced), and read along a row of the input.
//
// col2im_* is the adjoint, for the input gradient: given the columns of the gradient,
// each input pixel sums the entries that were read from it. Written as a gather (one
// thread per input pixel walks the taps that can reach it) it needs no atomics and adds
// in the same order as cpu.py's loop over taps.
#include "prelude.cuh"

// The geometry both kernels share: the input x (N, C, H, W) read through its strides, the
// kernel (kh, kw), stride, padding (top, left), dilation, and the output size (Ho, Wo).
struct ConvGeometry {
    i64 C, H, W;
    i64 sn, sc, sh, sw;  // x's strides, elements
    int kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
    i64 Ho, Wo;
};

// cols[(c kh + i) kw + j][(n Ho + oh) Wo + ow] = x[n, c, oh sh - pt + i dh, ow sw - pl + j dw]
template <class T>
__device__ void im2col(i64 images, const T* x, ConvGeometry g, T* cols) {
    const i64 per_image = g.Ho * g.Wo, width = images * per_image;
    const i64 total = g.C * g.kh * g.kw * width;
    LG_GRID_STRIDE(e, total) {
        i64 row = e / width, col = e % width;
        int j = int(row % g.kw), i = int(row / g.kw % g.kh);
        i64 c = row / (i64(g.kw) * g.kh);
        i64 n = col / per_image, ow = col % g.Wo, oh = col / g.Wo % g.Ho;
        i64 h = oh * g.stride_h - g.pad_h + i64(i) * g.dil_h;
        i64 w = ow * g.stride_w - g.pad_w + i64(j) * g.dil_w;
        bool inside = h >= 0 && h < g.H && w >= 0 && w < g.W;
        cols[e] = inside ? x[n * g.sn + c * g.sc + h * g.sh + w * g.sw] : T(0);
    }
}

// gx[n, c, h, w] = sum over taps (i, j) in order of the column entry read from (h, w):
// tap i reaches row h from output row oh = (h + pt - i dh) / sh when that divides exactly.
// gx is contiguous (images, C, H, W).
template <class T>
__device__ void col2im(i64 images, const T* cols, ConvGeometry g, T* gx) {
    const i64 per_image = g.Ho * g.Wo, width = images * per_image;
    const i64 total = images * g.C * g.H * g.W;
    LG_GRID_STRIDE(e, total) {
        i64 w = e % g.W, h = e / g.W % g.H, c = e / (g.W * g.H) % g.C;
        i64 n = e / (g.W * g.H * g.C);
        T acc = T(0);
        for (int i = 0; i < g.kh; ++i) {
            i64 dh = h + g.pad_h - i64(i) * g.dil_h;  // oh * stride_h, if a tap reaches h
            if (dh < 0 || dh % g.stride_h != 0 || dh / g.stride_h >= g.Ho) continue;
            i64 oh = dh / g.stride_h;
            for (int j = 0; j < g.kw; ++j) {
                i64 dw = w + g.pad_w - i64(j) * g.dil_w;
                if (dw < 0 || dw % g.stride_w != 0 || dw / g.stride_w >= g.Wo) continue;
                i64 ow = dw / g.stride_w;
                i64 row = (c * g.kh + i) * g.kw + j;
                acc += cols[row * width + n * per_image + oh * g.Wo + ow];
            }
        }
        gx[e] = acc;
    }
}

// The geometry is passed as scalars (kernel arguments are pointers, numbers and lg_layout).
#define CONV_GEOMETRY_PARAMS()                                                              \
    i64 C, i64 H, i64 W, i64 sn, i64 sc, i64 sh, i64 sw, int kh, int kw, int stride_h,      \
        int stride_w, int pad_h, int pad_w, int dil_h, int dil_w, i64 Ho, i64 Wo
#define CONV_GEOMETRY()                                                                     \
    ConvGeometry{C, H, W, sn, sc, sh, sw, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h,  \
                 dil_w, Ho, Wo}

#define CONV_KERNELS(S, T)                                                                  \
    extern "C" __global__ void im2col_##S(i64 images, const T* x, CONV_GEOMETRY_PARAMS(),    \
                                          T* cols) {                                        \
        im2col<T>(images, x, CONV_GEOMETRY(), cols);                                          \
    }                                                                                       \
    extern "C" __global__ void col2im_##S(i64 images, const T* cols, CONV_GEOMETRY_PARAMS(), \
                                          T* gx) {                                          \
        col2im<T>(images, cols, CONV_GEOMETRY(), gx);                                         \
    }
// float16/bfloat16 convolutions compute in float32 (ops_conv.py converts), as cpu.py does
CONV_KERNELS(f32, float)
CONV_KERNELS(f64, double)
