// index.cu: advanced indexing, gathers and scatters, triangles, and the scan (cumsum).
//
// Every gather and scatter here reads or writes x through a "plan" that Python builds from
// the index: output element i splits into (p, b, q) with i = (p * nb + b) * nq + q, where b
// runs over the broadcast shape of the index arrays and p, q over the sliced (basic) axes
// before and after them. Its element of x is at
//     lg_offset(xl, p * nq + q) + lin[b]
// with xl the layout of the basic axes and lin[b] the summed offsets that the index arrays
// pick (index_offsets builds lin, checking bounds and wrapping negative indices). So
// x[idx], x[idx] = v, index_put (with atomics to add at repeated indices), gather,
// scatter_add, index_select and index_add are the same three kernels: take, put, put_add.
// NumPy twins in cpu.py: x[index], x[index] = v, np.add.at, take_along_axis, np.take,
// np.tril/np.triu, np.cumsum.
#include "prelude.cuh"

// --- building the plan

// lin[b] (+)= lg_offset(base, b) + wrap(idx[b]) * stride, idx read through li. An index
// outside [-size, size) is recorded in err (a flag and the value) and read as 0; size < 0
// takes idx as ready-made offsets (bool masks: see mask_offsets).
extern "C" __global__ void index_offsets(i64 n, const i64* idx, lg_layout li, i64 size,
                                         i64 stride, lg_layout base, int accumulate, i64* lin,
                                         i64* err) {
    LG_GRID_STRIDE(b, n) {
        i64 v = idx[lg_offset(li, b)];
        if (size >= 0) {
            if (v < -size || v >= size) {
                atomicExch((unsigned long long*)&err[1], (unsigned long long)v);
                atomicExch((unsigned long long*)&err[0], 1ull);
                v = 0;
            } else if (v < 0) {
                v += size;
            }
        }
        i64 off = lg_offset(base, b) + v * stride;
        lin[b] = accumulate ? lin[b] + off : off;
    }
}

// Compaction of a bool mask to the offsets of its true elements (np.nonzero, as offsets):
// `pos` is the inclusive running count of trues, so a true element i goes to pos[i] - 1.
// `region` is the layout of the masked axes of x.
extern "C" __global__ void mask_offsets(i64 n, const bool* mask, lg_layout lm, const i64* pos,
                                        lg_layout region, i64* out) {
    LG_GRID_STRIDE(i, n) {
        if (mask[lg_offset(lm, i)]) out[pos[i] - 1] = lg_offset(region, i);
    }
}

// --- the three plan kernels

__device__ __forceinline__ i64 plan_offset(i64 i, i64 nb, i64 nq, const lg_layout& xl,
                                           const i64* lin) {
    i64 q = i % nq, rest = i / nq;
    i64 b = rest % nb, p = rest / nb;
    return lg_offset(xl, p * nq + q) + lin[b];
}

// take: out[i] = x[plan(i)]; put: x[plan(i)] = v[i] (v read through lv, broadcast). Both
// move k-byte elements, whatever the dtype. Repeated indices in put: one of the writes wins.
#define PLAN_COPY_KERNELS(K, T)                                                             \
    extern "C" __global__ void take_##K(i64 n, i64 nb, i64 nq, const T* x, lg_layout xl,    \
                                        const i64* lin, T* out) {                           \
        LG_GRID_STRIDE(i, n) out[i] = x[plan_offset(i, nb, nq, xl, lin)];                   \
    }                                                                                       \
    extern "C" __global__ void put_##K(i64 n, i64 nb, i64 nq, T* x, lg_layout xl,           \
                                       const i64* lin, const T* v, lg_layout lv) {          \
        LG_GRID_STRIDE(i, n) x[plan_offset(i, nb, nq, xl, lin)] = v[lg_offset(lv, i)];      \
    }
PLAN_COPY_KERNELS(1, unsigned char)
PLAN_COPY_KERNELS(2, unsigned short)
PLAN_COPY_KERNELS(4, unsigned int)
PLAN_COPY_KERNELS(8, unsigned long long)

// put_add: x[plan(i)] += v[i] with atomics, so repeated indices add up (np.add.at). The
// types with hardware atomics only; Python adds halves in a float32 copy and small
// integers and bools in an int64 copy.
template <class T>
__device__ __forceinline__ void atomic_add(T* p, T v) { atomicAdd(p, v); }
template <>
__device__ __forceinline__ void atomic_add<long long>(long long* p, long long v) {
    atomicAdd((unsigned long long*)p, (unsigned long long)v);  // two's complement: the same
}

#define PUT_ADD_KERNEL(S, T)                                                                \
    extern "C" __global__ void put_add_##S(i64 n, i64 nb, i64 nq, T* x, lg_layout xl,       \
                                           const i64* lin, const T* v, lg_layout lv) {      \
        LG_GRID_STRIDE(i, n) atomic_add(x + plan_offset(i, nb, nq, xl, lin),                \
                                        v[lg_offset(lv, i)]);                               \
    }
PUT_ADD_KERNEL(f32, float)
PUT_ADD_KERNEL(f64, double)
PUT_ADD_KERNEL(i32, int)
PUT_ADD_KERNEL(i64, long long)

// --- triangles: out = x where the element (row, col) of the last two axes keeps
// col - row <= k (tril) or col - row >= k (triu), zero (all bits clear) elsewhere.
#define TRIANGLE_KERNEL(K, T)                                                               \
    extern "C" __global__ void triangle_##K(i64 n, i64 rows, i64 cols, i64 k, int upper,    \
                                            const T* x, lg_layout lx, T* out) {             \
        LG_GRID_STRIDE(i, n) {                                                              \
            i64 col = i % cols, row = (i / cols) % rows;                                    \
            bool keep = upper ? col - row >= k : col - row <= k;                            \
            out[i] = keep ? x[lg_offset(lx, i)] : (T)0;                                     \
        }                                                                                   \
    }
TRIANGLE_KERNEL(1, unsigned char)
TRIANGLE_KERNEL(2, unsigned short)
TRIANGLE_KERNEL(4, unsigned int)
TRIANGLE_KERNEL(8, unsigned long long)

// --- scan: inclusive running sums along rows (cumsum)
//
// Input as M rows (layout keep) of K elements (layout red); row m of the output starts at
// lg_offset(okeep, m) and steps by ostride. Short rows: one thread adds up a whole row, in
// order (NumPy's order, so the same roundings). Long rows: a block scans a slice of a row
// (chunk c of `chunks`, the same split as reduce.cu's) in tiles of blockDim.x * SCAN_ITEMS
// elements: each thread adds up SCAN_ITEMS neighbours, the threads' totals are scanned
// across the block (warp shuffles, then warp 0 scans the warps' totals), and a carry runs
// from tile to tile. Very long rows use three launches: reduce.cu sums each chunk, this
// kernel scans the chunk sums, then scans each chunk starting from the sum of the chunks
// before it (`carry`: the inclusive scan of the chunk sums, or null). Halves add in float,
// integers and bools in int64.
#define SCAN_ITEMS 8

template <class T, class A>
__device__ void scan_short(i64 M, i64 K, const T* x, lg_layout keep, lg_layout red, T* out,
                           lg_layout okeep, i64 ostride) {
    LG_GRID_STRIDE(m, M) {
        const T* row = x + lg_offset(keep, m);
        T* dst = out + lg_offset(okeep, m);
        A running = A(0);
        for (i64 k = 0; k < K; ++k) {
            running += A(row[lg_offset(red, k)]);
            dst[k * ostride] = (T)running;
        }
    }
}

// Inclusive scan of v over the block; `total` gets the block's sum. sums holds 32 values.
template <class A>
__device__ A block_scan(A v, A* sums, A& total) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    for (int d = 1; d < 32; d <<= 1) {
        A up = __shfl_up_sync(0xffffffffu, v, d);
        if (lane >= d) v += up;
    }
    if (lane == 31) sums[warp] = v;
    __syncthreads();
    if (warp == 0) {
        A s = lane < nwarps ? sums[lane] : A(0);
        for (int d = 1; d < 32; d <<= 1) {
            A up = __shfl_up_sync(0xffffffffu, s, d);
            if (lane >= d) s += up;
        }
        sums[lane] = s;
    }
    __syncthreads();
    if (warp > 0) v += sums[warp - 1];
    total = sums[nwarps - 1];
    __syncthreads();  // sums is rewritten by the next tile
    return v;
}

template <class T, class A>
__device__ void scan(i64 M, i64 K, i64 chunks, const T* x, lg_layout keep, lg_layout red,
                     const A* carry, T* out, lg_layout okeep, i64 ostride) {
    __shared__ A sums[32];
    i64 per_chunk = (K + chunks - 1) / chunks;
    for (i64 m = blockIdx.x; m < M; m += gridDim.x) {
        i64 c = blockIdx.y, start = c * per_chunk;
        i64 stop = start + per_chunk < K ? start + per_chunk : K;
        const T* row = x + lg_offset(keep, m);
        T* dst = out + lg_offset(okeep, m);
        A running = carry != nullptr && c > 0 ? carry[m * chunks + c - 1] : A(0);
        for (i64 tile = start; tile < stop; tile += i64(blockDim.x) * SCAN_ITEMS) {
            i64 first = tile + i64(threadIdx.x) * SCAN_ITEMS;
            A part[SCAN_ITEMS];  // this thread's neighbours, summed in order
            A mine = A(0);
#pragma unroll
            for (int j = 0; j < SCAN_ITEMS; ++j) {
                if (first + j < stop) mine += A(row[lg_offset(red, first + j)]);
                part[j] = mine;
            }
            A total;
            A before = block_scan(mine, sums, total) - mine + running;
#pragma unroll
            for (int j = 0; j < SCAN_ITEMS; ++j)
                if (first + j < stop) dst[(first + j) * ostride] = (T)(before + part[j]);
            running += total;
        }
    }
}

#define SCAN_KERNELS(S, T, A)                                                               \
    extern "C" __global__ void scan_##S(i64 M, i64 K, i64 chunks, const T* x,               \
                                        lg_layout keep, lg_layout red, const A* carry,      \
                                        T* out, lg_layout okeep, i64 ostride) {             \
        scan<T, A>(M, K, chunks, x, keep, red, carry, out, okeep, ostride);                 \
    }                                                                                       \
    extern "C" __global__ void scan_short_##S(i64 M, i64 K, const T* x, lg_layout keep,     \
                                              lg_layout red, T* out, lg_layout okeep,       \
                                              i64 ostride) {                                \
        scan_short<T, A>(M, K, x, keep, red, out, okeep, ostride);                          \
    }
SCAN_KERNELS(f32, float, float)
SCAN_KERNELS(f64, double, double)
SCAN_KERNELS(f16, lg_half, float)
SCAN_KERNELS(bf16, lg_bf16, float)
SCAN_KERNELS(i64, long long, long long)
SCAN_KERNELS(i32, int, long long)
SCAN_KERNELS(i16, short, long long)
SCAN_KERNELS(i8, signed char, long long)
SCAN_KERNELS(u8, unsigned char, long long)
SCAN_KERNELS(b8, bool, long long)
