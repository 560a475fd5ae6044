// softmax.cu: softmax and log-softmax along one axis (NumPy twins: _softmax and
// _log_softmax in backends/cpu.py; half types compute in float, as _in_float32 does).
//
// Rows: the softmax axis is the row (Python passes a view with that axis last, so any axis
// and any strides work). A row is folded by one warp (short rows, blockDim = (32, rows per
// block)) or by a whole block (long rows, blockDim.y == 1). One pass keeps an "online"
// running max m and sum s = sum(exp(x - m)), rescaling s whenever m grows; warps merge
// their (m, s) pairs with shuffles. A second pass writes exp(x - m) / s, or
// (x - m) - log(s) for log-softmax.
//
// Columns: for an axis with a long run of contiguous elements after it, each thread owns
// one column (outer, inner) and walks down the axis, so a warp reads consecutive addresses.
#include "prelude.cuh"

#define NN_FLOAT_TYPES(X) \
    X(f32, float, float) X(f64, double, double) X(f16, lg_half, float) X(bf16, lg_bf16, float)

// s * exp(m - m_new), where an empty sum (s == 0, also while m is still -inf) stays 0.
template <class A>
__device__ __forceinline__ A rescale(A s, A m, A m_new) {
    return s == A(0) ? A(0) : s * lg_exp(m - m_new);
}

// Fold one value into a running (max, sum of exp) pair. A -inf value adds nothing (also
// while the max is -inf, where exp(x - m) would be NaN).
template <class A>
__device__ __forceinline__ void online_push(A& m, A& s, A x) {
    A m_new = lg_max(m, x);
    s = rescale(s, m, m_new) + (x == -lg_highest<A>() ? A(0) : lg_exp(x - m_new));
    m = m_new;
}

template <class A>
__device__ __forceinline__ void online_merge(A& m, A& s, A m2, A s2) {
    A m_new = lg_max(m, m2);
    s = rescale(s, m, m_new) + rescale(s2, m2, m_new);
    m = m_new;
}

// Merge the (m, s) pairs of the threads sharing a row: every thread gets the row's pair.
// A row is one warp when blockDim.y > 1, else the whole block (scratch: 2 x 32 values).
template <class A>
__device__ void row_merge(A& m, A& s, A* scratch_m, A* scratch_s) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        A m2 = __shfl_xor_sync(0xffffffffu, m, offset);
        A s2 = __shfl_xor_sync(0xffffffffu, s, offset);
        online_merge(m, s, m2, s2);
    }
    if (blockDim.y > 1) return;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    __syncthreads();  // the previous row may still be reading the scratch
    if (lane == 0) {
        scratch_m[warp] = m;
        scratch_s[warp] = s;
    }
    __syncthreads();
    m = -lg_highest<A>();
    s = A(0);
    for (int w = 0; w < nwarps; ++w) online_merge(m, s, scratch_m[w], scratch_s[w]);
}

// Rows of K elements: element k of row r is x[lg_offset(lx, r * K + k)] (likewise y).
template <class T>
__device__ void softmax_rows(i64 M, i64 K, const T* x, lg_layout lx, T* y, lg_layout ly,
                             bool as_log) {
    typedef typename lg_compute<T>::type A;
    __shared__ A scratch_m[32], scratch_s[32];
    i64 first = i64(blockIdx.x) * blockDim.y + threadIdx.y, step = i64(gridDim.x) * blockDim.y;
    for (i64 r = first; r < M; r += step) {
        A m = -lg_highest<A>(), s = A(0);
        for (i64 k = threadIdx.x; k < K; k += blockDim.x)
            online_push(m, s, A(x[lg_offset(lx, r * K + k)]));
        row_merge(m, s, scratch_m, scratch_s);
        A log_s = lg_log(s);
        for (i64 k = threadIdx.x; k < K; k += blockDim.x) {
            A shifted = A(x[lg_offset(lx, r * K + k)]) - m;
            y[lg_offset(ly, r * K + k)] = T(as_log ? shifted - log_s : lg_exp(shifted) / s);
        }
    }
}

// Columns: x is (outer, K, inner) in row-major order through lx; y likewise through ly.
template <class T>
__device__ void softmax_columns(i64 outer, i64 K, i64 inner, const T* x, lg_layout lx, T* y,
                                lg_layout ly, bool as_log) {
    typedef typename lg_compute<T>::type A;
    LG_GRID_STRIDE(c, outer * inner) {
        i64 base = (c / inner) * K * inner + c % inner;
        A m = -lg_highest<A>(), s = A(0);
        for (i64 k = 0; k < K; ++k) online_push(m, s, A(x[lg_offset(lx, base + k * inner)]));
        A log_s = lg_log(s);
        for (i64 k = 0; k < K; ++k) {
            A shifted = A(x[lg_offset(lx, base + k * inner)]) - m;
            y[lg_offset(ly, base + k * inner)] = T(as_log ? shifted - log_s : lg_exp(shifted) / s);
        }
    }
}

#define SOFTMAX_KERNELS(S, T, A)                                                             \
    extern "C" __global__ void softmax_rows_##S(i64 M, i64 K, const T* x, lg_layout lx,      \
                                                T* y, lg_layout ly, bool as_log) {           \
        softmax_rows<T>(M, K, x, lx, y, ly, as_log);                                         \
    }                                                                                        \
    extern "C" __global__ void softmax_columns_##S(i64 outer, i64 K, i64 inner, const T* x,  \
                                                   lg_layout lx, T* y, lg_layout ly,         \
                                                   bool as_log) {                            \
        softmax_columns<T>(outer, K, inner, x, lx, y, ly, as_log);                           \
    }
NN_FLOAT_TYPES(SOFTMAX_KERNELS)
