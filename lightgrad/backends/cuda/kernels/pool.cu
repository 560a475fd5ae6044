// pool.cu: 2-d max and average pooling and their gradients, for x (N, C, H, W) read through
// its strides. The NumPy twins are _max_pool2d, _max_pool2d_backward, _avg_pool2d and
// _avg_pool2d_backward in cpu.py (output sizes: _pool_out there, computed in Python).
//
// Forward kernels: one thread per output element walks its window's taps (i, j) in order.
// Max pooling keeps the first largest value and its flat index h * W + w in the input plane
// (PyTorch's); a NaN wins over any number (a later NaN over an earlier one, as PyTorch's
// `val > max || isnan(val)`); taps in the padding count as -inf. Average pooling sums the
// taps inside the input and multiplies by 1 / divisor, PyTorch's divisor rules (_avg_scale).
//
// Backward: max pooling scatters each gradient onto the input element its index names,
// with atomicAdd (windows overlap, so several outputs may name one input) into a float64
// buffer, as cpu.py's bincount sums in float64; average pooling gathers: each input pixel
// sums the shares of the windows that cover it, taps in order (no atomics).
// Half types are stored as 16 bits and computed in float.
#include "prelude.cuh"

template <class A> __device__ __forceinline__ A pool_lowest() { return -lg_highest<A>(); }

// Where output (n c, oh, ow) of a pooling reads, and where its input plane starts.
struct PoolGeometry {
    i64 C, H, W, Ho, Wo;
    i64 sn, sc, sh, sw;  // the strides of x (or of grad, for avg_pool2d_backward), elements
    int kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
};

template <class T>
__device__ void max_pool2d(i64 total, const T* x, PoolGeometry g, T* out, i64* index) {
    typedef typename lg_compute<T>::type A;
    LG_GRID_STRIDE(e, total) {
        i64 ow = e % g.Wo, oh = e / g.Wo % g.Ho, c = e / (g.Wo * g.Ho) % g.C;
        i64 n = e / (g.Wo * g.Ho * g.C);
        const T* plane = x + n * g.sn + c * g.sc;
        i64 h0 = oh * g.stride_h - g.pad_h, w0 = ow * g.stride_w - g.pad_w;
        A best = pool_lowest<A>();
        i64 best_at = -1;
        for (int i = 0; i < g.kh; ++i) {
            i64 h = h0 + i64(i) * g.dil_h;
            for (int j = 0; j < g.kw; ++j) {
                i64 w = w0 + i64(j) * g.dil_w;
                if (h < 0 || h >= g.H || w < 0 || w >= g.W) continue;  // padding: never wins
                A v = A(plane[h * g.sh + w * g.sw]);
                // the first tap inside starts the max (PyTorch's index for an all -inf
                // window; cpu_conv.py too)
                if (best_at < 0 || v > best || v != v) {
                    best = v;
                    best_at = h * g.W + w;
                }
            }
        }
        out[e] = (T)best;
        index[e] = best_at;
    }
}

// gx (N C planes of H W, float64, zeroed) += grad at each plane's index.
template <class T>
__device__ void max_pool2d_backward(i64 total, const T* grad, lg_layout grad_layout,
                                    const i64* index, lg_layout index_layout, i64 out_plane,
                                    i64 in_plane, double* gx) {
    typedef typename lg_compute<T>::type A;
    LG_GRID_STRIDE(e, total) {
        i64 at = index[lg_offset(index_layout, e)];
        if (at < 0 || at >= in_plane) continue;  // only a window wholly in the padding
        atomicAdd(&gx[e / out_plane * in_plane + at],
                  double(A(grad[lg_offset(grad_layout, e)])));
    }
}

// 1 / divisor of output (oh, ow): the window's size clipped to the padded input, or to the
// input itself without count_include_pad; a nonzero divisor_override replaces it. Computed in
// double and rounded to A, as cpu.py's (1.0 / sizes).astype(dtype).
template <class A>
__device__ __forceinline__ A avg_scale(const PoolGeometry& g, i64 oh, i64 ow,
                                       bool count_include_pad, i64 divisor_override) {
    if (divisor_override != 0) return A(1.0 / double(divisor_override));
    i64 h0 = oh * g.stride_h - g.pad_h, w0 = ow * g.stride_w - g.pad_w;
    i64 h1 = h0 + g.kh < g.H + g.pad_h ? h0 + g.kh : g.H + g.pad_h;
    i64 w1 = w0 + g.kw < g.W + g.pad_w ? w0 + g.kw : g.W + g.pad_w;
    if (!count_include_pad) {
        h0 = h0 > 0 ? h0 : 0;
        w0 = w0 > 0 ? w0 : 0;
        h1 = h1 < g.H ? h1 : g.H;
        w1 = w1 < g.W ? w1 : g.W;
    }
    return A(1.0 / double((h1 - h0) * (w1 - w0)));
}

template <class T>
__device__ void avg_pool2d(i64 total, const T* x, PoolGeometry g, bool count_include_pad,
                           i64 divisor_override, T* out) {
    typedef typename lg_compute<T>::type A;
    LG_GRID_STRIDE(e, total) {
        i64 ow = e % g.Wo, oh = e / g.Wo % g.Ho, c = e / (g.Wo * g.Ho) % g.C;
        i64 n = e / (g.Wo * g.Ho * g.C);
        const T* plane = x + n * g.sn + c * g.sc;
        i64 h0 = oh * g.stride_h - g.pad_h, w0 = ow * g.stride_w - g.pad_w;
        A sum = A(0);
        for (int i = 0; i < g.kh; ++i) {
            i64 h = h0 + i;
            if (h < 0 || h >= g.H) continue;
            for (int j = 0; j < g.kw; ++j) {
                i64 w = w0 + j;
                if (w >= 0 && w < g.W) sum += A(plane[h * g.sh + w * g.sw]);
            }
        }
        out[e] = (T)(sum * avg_scale<A>(g, oh, ow, count_include_pad, divisor_override));
    }
}

// gx[n, c, h, w] = sum over taps (i, j) in order of grad[n, c, oh, ow] / divisor(oh, ow),
// where the window of (oh, ow) puts tap (i, j) on (h, w). gx is contiguous; the strides in
// g are grad's.
template <class T>
__device__ void avg_pool2d_backward(i64 total, const T* grad, PoolGeometry g,
                                    bool count_include_pad, i64 divisor_override, T* gx) {
    typedef typename lg_compute<T>::type A;
    LG_GRID_STRIDE(e, total) {
        i64 w = e % g.W, h = e / g.W % g.H, c = e / (g.W * g.H) % g.C;
        i64 n = e / (g.W * g.H * g.C);
        const T* plane = grad + n * g.sn + c * g.sc;
        A sum = A(0);
        for (int i = 0; i < g.kh; ++i) {
            i64 dh = h + g.pad_h - i;  // oh * stride_h, if tap i of a window lands on h
            if (dh < 0 || dh % g.stride_h != 0 || dh / g.stride_h >= g.Ho) continue;
            i64 oh = dh / g.stride_h;
            for (int j = 0; j < g.kw; ++j) {
                i64 dw = w + g.pad_w - j;
                if (dw < 0 || dw % g.stride_w != 0 || dw / g.stride_w >= g.Wo) continue;
                i64 ow = dw / g.stride_w;
                A share = A(plane[oh * g.sh + ow * g.sw]) *
                          avg_scale<A>(g, oh, ow, count_include_pad, divisor_override);
                sum += share;
            }
        }
        gx[e] = (T)sum;
    }
}

#define POOL_GEOMETRY_PARAMS()                                                              \
    i64 C, i64 H, i64 W, i64 Ho, i64 Wo, i64 sn, i64 sc, i64 sh, i64 sw, int kh, int kw,    \
        int stride_h, int stride_w, int pad_h, int pad_w, int dil_h, int dil_w
#define POOL_GEOMETRY()                                                                     \
    PoolGeometry{C, H, W, Ho, Wo, sn, sc, sh, sw, kh, kw, stride_h, stride_w, pad_h, pad_w, \
                 dil_h, dil_w}

#define POOL_KERNELS(S, T)                                                                  \
    extern "C" __global__ void max_pool2d_##S(i64 total, const T* x, POOL_GEOMETRY_PARAMS(), \
                                              T* out, i64* index) {                         \
        max_pool2d<T>(total, x, POOL_GEOMETRY(), out, index);                               \
    }                                                                                       \
    extern "C" __global__ void max_pool2d_backward_##S(                                     \
        i64 total, const T* grad, lg_layout grad_layout, const i64* index,                  \
        lg_layout index_layout, i64 out_plane, i64 in_plane, double* gx) {                  \
        max_pool2d_backward<T>(total, grad, grad_layout, index, index_layout, out_plane,    \
                               in_plane, gx);                                               \
    }                                                                                       \
    extern "C" __global__ void avg_pool2d_##S(i64 total, const T* x, POOL_GEOMETRY_PARAMS(), \
                                              bool count_include_pad, i64 divisor_override, \
                                              T* out) {                                     \
        avg_pool2d<T>(total, x, POOL_GEOMETRY(), count_include_pad, divisor_override, out); \
    }                                                                                       \
    extern "C" __global__ void avg_pool2d_backward_##S(                                     \
        i64 total, const T* grad, POOL_GEOMETRY_PARAMS(), bool count_include_pad,           \
        i64 divisor_override, T* gx) {                                                      \
        avg_pool2d_backward<T>(total, grad, POOL_GEOMETRY(), count_include_pad,             \
                               divisor_override, gx);                                       \
    }
POOL_KERNELS(f32, float)
POOL_KERNELS(f64, double)
POOL_KERNELS(f16, lg_half)
POOL_KERNELS(bf16, lg_bf16)
