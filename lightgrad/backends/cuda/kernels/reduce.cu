// reduce.cu: sum, prod, max, min, all, any over any set of axes.
//
// Python permutes the reduced axes to the end (a view) and describes the input as M
// output positions (layout `keep`) times K reduced elements (layout `red`). Block (m, c)
// reduces the c-th of `chunks` slices of row m: each thread folds a strided run of the
// row, then the block combines its threads' values with warp shuffles and shared memory
// (prelude: lg_block_*). With chunks > 1 the partial results are reduced again by a
// second launch. Accumulators: float for the half types, the type itself for float and
// double, long long for integers and bool. The NumPy twin is ufunc.reduce in cpu.py.
#include "prelude.cuh"

enum ReduceOp { R_sum, R_prod, R_max, R_min, R_all, R_any };

template <class A>
__device__ __forceinline__ A identity(int op) {
    switch (op) {
        case R_prod: case R_all: return A(1);
        case R_max: return -lg_highest<A>();
        case R_min: return lg_highest<A>();
        default: return A(0);
    }
}

template <class A>
__device__ __forceinline__ A combine(int op, A a, A b) {
    switch (op) {
        case R_sum: return a + b;
        case R_prod: return a * b;
        case R_max: return lg_max(a, b);
        case R_min: return lg_min(a, b);
        case R_all: return A(a != A(0) && b != A(0));
        default: return A(a != A(0) || b != A(0));
    }
}

template <class A>
__device__ A block_combine(int op, A v, A* scratch) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = (blockDim.x + 31) >> 5;
    for (int offset = 16; offset > 0; offset >>= 1)
        v = combine(op, v, __shfl_down_sync(0xffffffffu, v, offset));
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < nwarps ? scratch[lane] : identity<A>(op);
        for (int offset = 16; offset > 0; offset >>= 1)
            v = combine(op, v, __shfl_down_sync(0xffffffffu, v, offset));
    }
    return v;
}

// out[m * chunks + c] = op over k in chunk c of row m, times `scale` (1/K for mean).
template <class T, class A>
__device__ void reduce(int op, i64 M, i64 K, i64 chunks, const T* x, lg_layout keep,
                       lg_layout red, A scale, A* out) {
    __shared__ A scratch[32];
    i64 per_chunk = (K + chunks - 1) / chunks;
    for (i64 m = blockIdx.x; m < M; m += gridDim.x) {
        i64 c = blockIdx.y, start = c * per_chunk;
        i64 stop = start + per_chunk < K ? start + per_chunk : K;
        const T* row = x + lg_offset(keep, m);
        A v = identity<A>(op);
        for (i64 k = start + threadIdx.x; k < stop; k += blockDim.x)
            v = combine(op, v, A(row[lg_offset(red, k)]));
        v = block_combine(op, v, scratch);
        if (threadIdx.x == 0) out[m * chunks + c] = op == R_sum ? v * scale : v;
        __syncthreads();  // scratch is reused by the next row
    }
}

// Short rows (a few elements each, many rows): one thread folds a whole row.
template <class T, class A>
__device__ void reduce_short(int op, i64 M, i64 K, const T* x, lg_layout keep, lg_layout red,
                             A scale, A* out) {
    LG_GRID_STRIDE(m, M) {
        const T* row = x + lg_offset(keep, m);
        A v = identity<A>(op);
        for (i64 k = 0; k < K; ++k) v = combine(op, v, A(row[lg_offset(red, k)]));
        out[m] = op == R_sum ? v * scale : v;
    }
}

#define REDUCE_KERNEL(S, T, A)                                                              \
    extern "C" __global__ void reduce_##S(int op, i64 M, i64 K, i64 chunks, const T* x,     \
                                          lg_layout keep, lg_layout red, A scale, A* out) { \
        reduce<T, A>(op, M, K, chunks, x, keep, red, scale, out);                           \
    }                                                                                       \
    extern "C" __global__ void reduce_short_##S(int op, i64 M, i64 K, const T* x,           \
                                                lg_layout keep, lg_layout red, A scale,     \
                                                A* out) {                                   \
        reduce_short<T, A>(op, M, K, x, keep, red, scale, out);                             \
    }
REDUCE_KERNEL(f32, float, float)
REDUCE_KERNEL(f64, double, double)
REDUCE_KERNEL(f16, lg_half, float)
REDUCE_KERNEL(bf16, lg_bf16, float)
REDUCE_KERNEL(i64, long long, long long)
REDUCE_KERNEL(i32, int, long long)
REDUCE_KERNEL(i16, short, long long)
REDUCE_KERNEL(i8, signed char, long long)
REDUCE_KERNEL(u8, unsigned char, long long)
REDUCE_KERNEL(b8, bool, long long)
