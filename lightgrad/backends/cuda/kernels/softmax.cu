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
            lg_online_push(m, s, A(x[lg_offset(lx, r * K + k)]));
        lg_row_merge(m, s, scratch_m, scratch_s);
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
        for (i64 k = 0; k < K; ++k) lg_online_push(m, s, A(x[lg_offset(lx, base + k * inner)]));
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
LG_NN_FLOAT_TYPES(SOFTMAX_KERNELS)
