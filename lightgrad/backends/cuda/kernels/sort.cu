// sort.cu: ordering along rows: argmax/argmin, and stable argsort (sort, topk).
//
// Rows are described as in reduce.cu: M rows (layout keep) of K elements (layout red).
// Values are compared in A: float for float32 and the halves, double, int64 for integers
// and bool. NaN counts as the largest value, as in NumPy: argmax and argmin both return
// the first NaN, and sorting puts NaNs last. NumPy twins in cpu.py: np.argmax, np.argmin,
// np.argsort(kind="stable").
#include "prelude.cuh"

// --- argmax / argmin. Short rows: one thread walks a whole row. Long rows: each thread
// keeps the best (value, index) of a strided part of the row, then the block combines them
// with shuffles; very long rows are cut into chunks whose winners a second launch (the
// same kernel over the chunks' values, with their indices in idx_in) reduces again.
enum ArgOp { ARG_max, ARG_min };

// Does (v, i) win over (w, j)? Index -1 is "nothing yet"; ties go to the lower index.
template <class A>
__device__ __forceinline__ bool arg_wins(int op, A v, i64 i, A w, i64 j) {
    if (j < 0) return i >= 0;
    if (i < 0) return false;
    bool v_nan = v != v, w_nan = w != w;
    if (v_nan || w_nan) return v_nan && (!w_nan || i < j);
    if (v == w) return i < j;
    return op == ARG_max ? v > w : v < w;
}

template <class T, class A>
__device__ void arg_reduce(int op, i64 M, i64 K, i64 chunks, const T* x, lg_layout keep,
                           lg_layout red, const i64* idx_in, A* val_out, i64* idx_out) {
    __shared__ A warp_val[32];
    __shared__ i64 warp_idx[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    i64 per_chunk = (K + chunks - 1) / chunks;
    for (i64 m = blockIdx.x; m < M; m += gridDim.x) {
        i64 c = blockIdx.y, start = c * per_chunk;
        i64 stop = start + per_chunk < K ? start + per_chunk : K;
        const T* row = x + lg_offset(keep, m);
        A best = A(0);
        i64 at = -1;
        for (i64 k = start + threadIdx.x; k < stop; k += blockDim.x) {
            A v = A(row[lg_offset(red, k)]);
            i64 i = idx_in != nullptr ? idx_in[m * K + k] : k;
            if (arg_wins(op, v, i, best, at)) {
                best = v;
                at = i;
            }
        }
        for (int offset = 16; offset > 0; offset >>= 1) {
            A v = __shfl_down_sync(0xffffffffu, best, offset);
            i64 i = __shfl_down_sync(0xffffffffu, at, offset);
            if (arg_wins(op, v, i, best, at)) {
                best = v;
                at = i;
            }
        }
        if (lane == 0) {
            warp_val[warp] = best;
            warp_idx[warp] = at;
        }
        __syncthreads();
        if (warp == 0) {
            best = lane < nwarps ? warp_val[lane] : A(0);
            at = lane < nwarps ? warp_idx[lane] : -1;
            for (int offset = 16; offset > 0; offset >>= 1) {
                A v = __shfl_down_sync(0xffffffffu, best, offset);
                i64 i = __shfl_down_sync(0xffffffffu, at, offset);
                if (arg_wins(op, v, i, best, at)) {
                    best = v;
                    at = i;
                }
            }
            if (lane == 0) {
                if (val_out != nullptr) val_out[m * chunks + c] = best;
                idx_out[m * chunks + c] = at;
            }
        }
        __syncthreads();  // warp_val is reused by the next row
    }
}

template <class T, class A>
__device__ void arg_short(int op, i64 M, i64 K, const T* x, lg_layout keep, lg_layout red,
                          i64* out) {
    LG_GRID_STRIDE(m, M) {
        const T* row = x + lg_offset(keep, m);
        A best = A(row[0]);
        i64 at = 0;
        for (i64 k = 1; k < K; ++k) {
            A v = A(row[lg_offset(red, k)]);
            if (arg_wins(op, v, k, best, at)) {
                best = v;
                at = k;
            }
        }
        out[m] = at;
    }
}

// Every dtype the comparison kernels take: (suffix, storage type, key/accumulator type).
#define SORTABLE_TYPES(X)                                                          \
    X(f32, float, float)                                                            \
    X(f64, double, double)                                                          \
    X(f16, lg_half, float)                                                          \
    X(bf16, lg_bf16, float)                                                         \
    X(i64, long long, long long)                                                    \
    X(i32, int, long long)                                                          \
    X(i16, short, long long)                                                        \
    X(i8, signed char, long long)                                                   \
    X(u8, unsigned char, long long)                                                 \
    X(b8, bool, long long)

#define ARG_KERNEL(S, T, A)                                                                 \
    extern "C" __global__ void arg_reduce_##S(int op, i64 M, i64 K, i64 chunks, const T* x, \
                                              lg_layout keep, lg_layout red,                \
                                              const i64* idx_in, A* val_out,                \
                                              i64* idx_out) {                               \
        arg_reduce<T, A>(op, M, K, chunks, x, keep, red, idx_in, val_out, idx_out);         \
    }                                                                                       \
    extern "C" __global__ void arg_short_##S(int op, i64 M, i64 K, const T* x,              \
                                             lg_layout keep, lg_layout red, i64* out) {     \
        arg_short<T, A>(op, M, K, x, keep, red, out);                                       \
    }
SORTABLE_TYPES(ARG_KERNEL)

// --- stable argsort
//
// Ties are broken by index, which makes the order total: any sorting network then gives
// the stable order. Ascending: a < b, NaN last. Descending: cpu.py sorts the keys
// -float64(x), so the values compare as doubles (a > b), NaN still last. Indices >= n mark
// padding, which goes after everything.
template <class A>
__device__ __forceinline__ bool before(A a, i64 ia, A b, i64 ib, bool descending, i64 n) {
    if (ia >= n || ib >= n) return ia < ib;
    bool a_nan = a != a, b_nan = b != b;
    if (a_nan || b_nan) return b_nan && (!a_nan || ia < ib);
    if (descending) {
        double da = double(a), db = double(b);
        if (da != db) return da > db;
    } else if (a != b) {
        return a < b;
    }
    return ia < ib;
}

// Short rows: each element counts the elements of its row that come before it, and that
// count is its place (O(K^2) work per row, but no synchronisation at all).
template <class T, class A>
__device__ void sort_rank(i64 M, i64 K, const T* x, lg_layout keep, lg_layout red,
                          bool descending, i64* out, lg_layout okeep, i64 ostride) {
    LG_GRID_STRIDE(e, M * K) {
        i64 m = e / K, k = e % K;
        const T* row = x + lg_offset(keep, m);
        A key = A(row[lg_offset(red, k)]);
        i64 place = 0;
        for (i64 j = 0; j < K; ++j)
            place += before(A(row[lg_offset(red, j)]), j, key, k, descending, K);
        out[lg_offset(okeep, m) + place * ostride] = k;
    }
}

// Longer rows: one block sorts a tile of up to `tile` elements of a row in shared memory,
// a bitonic network over `width` slots (a power of two, padded). Grid: (rows, tiles).
// With one tile the indices go straight to the output (row m at lg_offset(okeep, m),
// stepping by ostride); otherwise the sorted keys and indices go to keys_out/idx_out
// (M x K, contiguous) for merge passes.
template <class T, class A>
__device__ void sort_tile(i64 M, i64 K, i64 tile, int width, const T* x, lg_layout keep,
                          lg_layout red, bool descending, A* keys_out, i64* idx_out,
                          i64* out, lg_layout okeep, i64 ostride) {
    extern __shared__ __align__(8) unsigned char sort_smem[];
    A* keys = (A*)sort_smem;
    int* ids = (int*)(keys + width);
    for (i64 m = blockIdx.x; m < M; m += gridDim.x) {
        i64 first = blockIdx.y * tile;
        i64 count = K - first < tile ? K - first : tile;
        const T* row = x + lg_offset(keep, m);
        for (int s = threadIdx.x; s < width; s += blockDim.x) {
            keys[s] = s < count ? A(row[lg_offset(red, first + s)]) : A(0);
            ids[s] = s;  // the slot's place in the tile; >= count is padding
        }
        __syncthreads();
        for (int size = 2; size <= width; size <<= 1) {
            for (int stride = size >> 1; stride > 0; stride >>= 1) {
                for (int t = threadIdx.x; t < width / 2; t += blockDim.x) {
                    int lo = 2 * stride * (t / stride) + t % stride, hi = lo + stride;
                    bool up = (lo & size) == 0;  // this run ends up in order (else reversed)
                    if (before(keys[hi], ids[hi], keys[lo], ids[lo], descending, count) == up) {
                        A k = keys[lo];
                        keys[lo] = keys[hi];
                        keys[hi] = k;
                        int i = ids[lo];
                        ids[lo] = ids[hi];
                        ids[hi] = i;
                    }
                }
                __syncthreads();
            }
        }
        for (int s = threadIdx.x; s < count; s += blockDim.x) {
            if (out != nullptr) {
                out[lg_offset(okeep, m) + (first + s) * ostride] = first + ids[s];
            } else {
                keys_out[m * K + first + s] = keys[s];
                idx_out[m * K + first + s] = first + ids[s];
            }
        }
        __syncthreads();  // the tile is reloaded for the next row
    }
}

// One merge pass: sorted runs of `run` elements are merged in pairs. Each element finds
// its place directly: its rank in its own run plus the number of elements of the other
// run that come before it (a binary search; the order is total, so no two agree).
template <class A>
__device__ void merge_pass(i64 M, i64 K, i64 run, bool descending, const A* keys,
                           const i64* idx, A* keys_out, i64* idx_out) {
    LG_GRID_STRIDE(e, M * K) {
        i64 m = e / K, p = e % K;
        const A* rk = keys + m * K;
        const i64* ri = idx + m * K;
        i64 pair = p / (2 * run) * (2 * run), mine = p / run * run;
        i64 other = mine == pair ? pair + run : pair;
        i64 other_end = other + run < K ? other + run : K;
        i64 lo = other, hi = other_end > other ? other_end : other;
        A key = rk[p];
        i64 id = ri[p];
        while (lo < hi) {  // first element of the other run that comes after this one
            i64 mid = (lo + hi) / 2;
            if (before(rk[mid], ri[mid], key, id, descending, K)) lo = mid + 1;
            else hi = mid;
        }
        i64 dest = pair + (p - mine) + (lo - other);
        keys_out[m * K + dest] = key;
        idx_out[m * K + dest] = id;
    }
}

#define SORT_KERNELS(S, T, A)                                                               \
    extern "C" __global__ void sort_tile_##S(i64 M, i64 K, i64 tile, int width, const T* x, \
                                             lg_layout keep, lg_layout red, bool descending,\
                                             A* keys_out, i64* idx_out, i64* out,           \
                                             lg_layout okeep, i64 ostride) {                \
        sort_tile<T, A>(M, K, tile, width, x, keep, red, descending, keys_out, idx_out,     \
                        out, okeep, ostride);                                               \
    }                                                                                       \
    extern "C" __global__ void sort_rank_##S(i64 M, i64 K, const T* x, lg_layout keep,      \
                                             lg_layout red, bool descending, i64* out,      \
                                             lg_layout okeep, i64 ostride) {                \
        sort_rank<T, A>(M, K, x, keep, red, descending, out, okeep, ostride);               \
    }
SORTABLE_TYPES(SORT_KERNELS)

#define MERGE_KERNEL(S, A)                                                                  \
    extern "C" __global__ void merge_##S(i64 M, i64 K, i64 run, bool descending,            \
                                         const A* keys, const i64* idx, A* keys_out,        \
                                         i64* idx_out) {                                    \
        merge_pass<A>(M, K, run, descending, keys, idx, keys_out, idx_out);                 \
    }
MERGE_KERNEL(f32, float)
MERGE_KERNEL(f64, double)
MERGE_KERNEL(i64, long long)
