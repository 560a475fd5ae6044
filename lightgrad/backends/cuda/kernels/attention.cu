// attention.cu: scaled dot-product attention (NumPy twin: _attention in backends/cpu.py).
//
// Operands are batches of matrices read through strides: for batch b, element (i, e) of q
// is q[lg_offset(qb, b) + i * q_rs + e * q_cs] (a broadcast batch axis has stride 0), so
// head-split views and broadcasts need no copies. Half types are computed in float (A).
//
// attn_probs: the primitive's probabilities. A block owns BM queries of one batch; their
// rows of q stay in shared memory while tiles of BN keys stream through. Pass 1 builds the
// scores tile S = q k^T * scale (+ causal / bool / float mask) and keeps a running row max
// m and sum l = sum(exp(S - m)); pass 2 rebuilds each tile and writes exp(S - m) / l.
// Rows where nothing is kept (m = -inf) get probabilities 0, as cpu.py's.
// attn_pv: out = (probs * keep) @ v, a tiled matrix product (16 x 16 tiles).
//
// flash_attention: the fused forward that never stores the L x S matrix (FlashAttention):
// for each key/value tile, scores -> new running max m' -> p = exp(S - m'), then
// l = l * exp(m - m') + sum(p) and O = O * exp(m - m') + p @ V, all in shared memory;
// at the end out = O / l and logsumexp = m + log(l).
#include "prelude.cuh"

template <class A>
__device__ __forceinline__ A warp_allmax(A v) {
    for (int offset = 16; offset > 0; offset >>= 1)
        v = lg_max(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

template <class A>
__device__ __forceinline__ A warp_allsum(A v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

// The block's shared-memory tiles (dynamic shared memory, sizes chosen by launch.py).
template <class A>
struct Tiles {
    A* q;      // BM x E      the block's queries
    A* k;      // BN x (E+1)  a key tile (one pad column: threads reading a column of keys
               //             hit different banks)
    A* s;      // BM x BN     scores, then probabilities
    A* row_m;  // BM          running max
    A* row_l;  // BM          running sum of exp(score - max)
    A* row_a;  // BM          this tile's rescale factor exp(m_old - m_new)
    A* v;      // BN x Ev     a value tile (flash only)
    A* o;      // BM x Ev     output accumulators (flash only)
};

template <class A>
__device__ Tiles<A> carve(unsigned char* smem, int BM, int BN, int E, int Ev) {
    Tiles<A> t;
    t.q = reinterpret_cast<A*>(smem);
    t.k = t.q + BM * E;
    t.s = t.k + BN * (E + 1);
    t.row_m = t.s + BM * BN;
    t.row_l = t.row_m + BM;
    t.row_a = t.row_l + BM;
    t.v = t.row_a + BM;
    t.o = t.v + BN * Ev;
    return t;
}

// dst[i * pitch + e] = src[(row0 + i) * rs + e * cs] for `rows` rows (0 past row n_rows).
// Indices inside a tile are ints (a tile is small); global offsets are 64-bit.
template <class T, class A>
__device__ void load_rows(A* dst, int rows, int cols, int pitch, const T* src, i64 row0,
                          i64 n_rows, i64 rs, i64 cs) {
    for (int p = threadIdx.x; p < rows * cols; p += blockDim.x) {
        int i = p / cols, e = p % cols;
        dst[i * pitch + e] = row0 + i < n_rows ? A(src[(row0 + i) * rs + e * cs]) : A(0);
    }
}

// The masks of one batch: bool (keeps True) or float (added), one of them or none;
// element (i, j) at i * rs + j * cs.
template <class T>
struct Mask {
    const bool* keep;
    const T* add;
    i64 rs, cs;
};

// t.s = the scores of queries i0.. against keys j0..: q k^T * scale, -inf where causal or
// the bool mask drops a key (and outside the matrix), plus the float mask.
template <class T, class A>
__device__ void score_tile(Tiles<A> t, int BM, int BN, int E, i64 i0, i64 j0, i64 L, i64 S,
                           A scale, bool causal, Mask<T> mask) {
    for (int p = threadIdx.x; p < BM * BN; p += blockDim.x) {
        int i = p / BN, j = p % BN;
        i64 gi = i0 + i, gj = j0 + j;
        A score = -lg_highest<A>();
        if (gi < L && gj < S && !(causal && gj > gi)) {
            A dot = A(0);
            for (int e = 0; e < E; ++e) dot += t.q[i * E + e] * t.k[j * (E + 1) + e];
            score = dot * scale;
            i64 at = gi * mask.rs + gj * mask.cs;
            if (mask.keep && !mask.keep[at]) score = -lg_highest<A>();
            if (mask.add) score = score + A(mask.add[at]);
        }
        t.s[i * BN + j] = score;
    }
}

// One warp per query row: fold the scores tile into the running (max, sum); with
// `to_probs` also turn t.s into exp(score - new max) and keep the rescale factor.
template <class A>
__device__ void online_rows(Tiles<A> t, int BM, int BN, bool to_probs) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    const A lowest = -lg_highest<A>();
    for (int i = warp; i < BM; i += nwarps) {
        A tile_max = lowest;
        for (int j = lane; j < BN; j += 32) tile_max = lg_max(tile_max, t.s[i * BN + j]);
        tile_max = warp_allmax(tile_max);
        A m_old = t.row_m[i], m_new = lg_max(m_old, tile_max);
        A sum = A(0);
        for (int j = lane; j < BN; j += 32) {
            A score = t.s[i * BN + j];
            A p = score == lowest ? A(0) : lg_exp(score - m_new);
            if (to_probs) t.s[i * BN + j] = p;
            sum += p;
        }
        sum = warp_allsum(sum);
        if (lane == 0) {
            A alpha = m_old == m_new ? A(1) : lg_exp(m_old - m_new);  // 1 while both -inf
            t.row_l[i] = t.row_l[i] * alpha + sum;
            t.row_m[i] = m_new;
            t.row_a[i] = alpha;
        }
    }
}

template <class A>
__device__ void init_rows(Tiles<A> t, int BM) {
    for (int i = threadIdx.x; i < BM; i += blockDim.x) {
        t.row_m[i] = -lg_highest<A>();
        t.row_l[i] = A(0);
    }
}

template <class T>
__device__ void attn_probs(i64 B, i64 L, i64 S, int E, const T* q, lg_layout qb, i64 q_rs,
                           i64 q_cs, const T* k, lg_layout kb, i64 k_rs, i64 k_cs,
                           const bool* keep_mask, const T* add_mask, lg_layout mb, i64 m_rs,
                           i64 m_cs, double scale_, bool causal, int BM, int BN,
                           typename lg_compute<T>::type* probs) {
    typedef typename lg_compute<T>::type A;
    extern __shared__ __align__(16) unsigned char attn_smem[];
    Tiles<A> t = carve<A>(attn_smem, BM, BN, E, 0);
    A scale = A(scale_);
    i64 i0 = i64(blockIdx.x) * BM;
    i64 stop = causal ? (S < i0 + BM ? S : i0 + BM) : S;  // later keys are all masked
    for (i64 b = blockIdx.y; b < B; b += gridDim.y) {
        const T* kb_ptr = k + lg_offset(kb, b);
        i64 m_off = lg_offset(mb, b);
        Mask<T> mask = {keep_mask ? keep_mask + m_off : nullptr,
                        add_mask ? add_mask + m_off : nullptr, m_rs, m_cs};
        __syncthreads();  // the previous batch is done with the tiles
        load_rows(t.q, BM, E, E, q + lg_offset(qb, b), i0, L, q_rs, q_cs);
        init_rows(t, BM);
        for (i64 j0 = 0; j0 < stop; j0 += BN) {  // pass 1: row max and sum
            __syncthreads();
            load_rows(t.k, BN, E, E + 1, kb_ptr, j0, S, k_rs, k_cs);
            __syncthreads();
            score_tile(t, BM, BN, E, i0, j0, L, S, scale, causal, mask);
            __syncthreads();
            online_rows(t, BM, BN, false);
        }
        for (i64 j0 = 0; j0 < S; j0 += BN) {  // pass 2: the probabilities
            __syncthreads();
            if (j0 < stop) load_rows(t.k, BN, E, E + 1, kb_ptr, j0, S, k_rs, k_cs);
            __syncthreads();
            if (j0 < stop) score_tile(t, BM, BN, E, i0, j0, L, S, scale, causal, mask);
            __syncthreads();
            for (int p = threadIdx.x; p < BM * BN; p += blockDim.x) {
                int i = p / BN, j = p % BN;
                i64 gi = i0 + i, gj = j0 + j;
                if (gi >= L || gj >= S) continue;
                A score = j0 < stop ? t.s[i * BN + j] : -lg_highest<A>();
                A m = t.row_m[i];
                A prob = m == -lg_highest<A>() || score == -lg_highest<A>()
                             ? A(0) : lg_exp(score - m) / t.row_l[i];
                probs[(b * L + gi) * S + gj] = prob;
            }
        }
    }
}

#define TILE 16  // launch.py's MATMUL_TILE

// out[b, i, d] = sum_j probs[b, i, j] * keep[b, i, j] * v[b, j, d]: block (TILE, TILE) computes
// a TILE x TILE tile of out, walking j in steps of TILE through shared memory.
template <class T>
__device__ void attn_pv(i64 B, i64 L, i64 S, i64 Ev, const typename lg_compute<T>::type* probs,
                        lg_layout pb, i64 p_rs, i64 p_cs, const T* keep, lg_layout kb,
                        i64 keep_rs, i64 keep_cs, const T* v, lg_layout vb, i64 v_rs,
                        i64 v_cs, T* out) {
    typedef typename lg_compute<T>::type A;
    __shared__ A p_tile[TILE][TILE + 1], v_tile[TILE][TILE + 1];
    int tx = threadIdx.x, ty = threadIdx.y;
    i64 i = i64(blockIdx.y) * TILE + ty, d = i64(blockIdx.x) * TILE + tx;
    for (i64 b = blockIdx.z; b < B; b += gridDim.z) {
        const A* pm = probs + lg_offset(pb, b);
        const T* vm = v + lg_offset(vb, b);
        const T* km = keep ? keep + lg_offset(kb, b) : nullptr;
        A acc = A(0);
        for (i64 j0 = 0; j0 < S; j0 += TILE) {
            __syncthreads();  // the previous step is done with the tiles
            i64 j = j0 + tx;
            A p = A(0);
            if (i < L && j < S) {
                p = pm[i * p_rs + j * p_cs];
                if (km) p = p * A(km[i * keep_rs + j * keep_cs]);
            }
            p_tile[ty][tx] = p;
            v_tile[ty][tx] = j0 + ty < S && d < Ev ? A(vm[(j0 + ty) * v_rs + d * v_cs]) : A(0);
            __syncthreads();
            for (int jj = 0; jj < TILE; ++jj) acc += p_tile[ty][jj] * v_tile[jj][tx];
        }
        if (i < L && d < Ev) out[(b * L + i) * Ev + d] = T(acc);
    }
}

template <class T>
__device__ void flash_attention(i64 B, i64 L, i64 S, int E, int Ev, const T* q, lg_layout qb,
                                i64 q_rs, i64 q_cs, const T* k, lg_layout kb, i64 k_rs,
                                i64 k_cs, const T* v, lg_layout vb, i64 v_rs, i64 v_cs,
                                double scale_, bool causal, int BM, int BN, T* out,
                                typename lg_compute<T>::type* lse) {
    typedef typename lg_compute<T>::type A;
    extern __shared__ __align__(16) unsigned char attn_smem[];
    Tiles<A> t = carve<A>(attn_smem, BM, BN, E, Ev);
    A scale = A(scale_);
    Mask<T> no_mask = {nullptr, nullptr, 0, 0};
    i64 i0 = i64(blockIdx.x) * BM;
    i64 stop = causal ? (S < i0 + BM ? S : i0 + BM) : S;
    for (i64 b = blockIdx.y; b < B; b += gridDim.y) {
        const T* kb_ptr = k + lg_offset(kb, b);
        const T* vb_ptr = v + lg_offset(vb, b);
        __syncthreads();
        load_rows(t.q, BM, E, E, q + lg_offset(qb, b), i0, L, q_rs, q_cs);
        init_rows(t, BM);
        for (int p = threadIdx.x; p < BM * Ev; p += blockDim.x) t.o[p] = A(0);
        for (i64 j0 = 0; j0 < stop; j0 += BN) {
            __syncthreads();
            load_rows(t.k, BN, E, E + 1, kb_ptr, j0, S, k_rs, k_cs);
            load_rows(t.v, BN, Ev, Ev, vb_ptr, j0, S, v_rs, v_cs);
            __syncthreads();
            score_tile(t, BM, BN, E, i0, j0, L, S, scale, causal, no_mask);
            __syncthreads();
            online_rows(t, BM, BN, true);
            __syncthreads();
            // O = O * exp(m_old - m_new) + P @ V
            for (int p = threadIdx.x; p < BM * Ev; p += blockDim.x) {
                int i = p / Ev, d = p % Ev;
                A acc = t.o[p] * t.row_a[i];
                for (int j = 0; j < BN; ++j) acc += t.s[i * BN + j] * t.v[j * Ev + d];
                t.o[p] = acc;
            }
        }
        __syncthreads();
        for (int p = threadIdx.x; p < BM * Ev; p += blockDim.x) {
            int i = p / Ev, d = p % Ev;
            A l = t.row_l[i];
            if (i0 + i < L) out[(b * L + i0 + i) * Ev + d] = T(l == A(0) ? A(0) : t.o[p] / l);
        }
        for (int i = threadIdx.x; i < BM; i += blockDim.x) {
            A l = t.row_l[i];
            if (i0 + i < L) lse[b * L + i0 + i] = l == A(0) ? -lg_highest<A>()
                                                              : t.row_m[i] + lg_log(l);
        }
    }
}

#define ATTENTION_KERNELS(S, T, A)                                                           \
    extern "C" __global__ void attn_probs_##S(                                               \
            i64 B, i64 L, i64 S_, int E, const T* q, lg_layout qb, i64 q_rs, i64 q_cs,       \
            const T* k, lg_layout kb, i64 k_rs, i64 k_cs, const bool* keep_mask,             \
            const T* add_mask, lg_layout mb, i64 m_rs, i64 m_cs, double scale, bool causal,  \
            int BM, int BN, A* probs) {                                                      \
        attn_probs<T>(B, L, S_, E, q, qb, q_rs, q_cs, k, kb, k_rs, k_cs, keep_mask,          \
                      add_mask, mb, m_rs, m_cs, scale, causal, BM, BN, probs);               \
    }                                                                                        \
    extern "C" __global__ void attn_pv_##S(                                                  \
            i64 B, i64 L, i64 S_, i64 Ev, const A* probs, lg_layout pb, i64 p_rs, i64 p_cs,  \
            const T* keep, lg_layout kb, i64 keep_rs, i64 keep_cs, const T* v, lg_layout vb, \
            i64 v_rs, i64 v_cs, T* out) {                                                    \
        attn_pv<T>(B, L, S_, Ev, probs, pb, p_rs, p_cs, keep, kb, keep_rs, keep_cs, v, vb,   \
                   v_rs, v_cs, out);                                                         \
    }                                                                                        \
    extern "C" __global__ void flash_attention_forward_##S(                                  \
            i64 B, i64 L, i64 S_, int E, int Ev, const T* q, lg_layout qb, i64 q_rs,         \
            i64 q_cs, const T* k, lg_layout kb, i64 k_rs, i64 k_cs, const T* v,              \
            lg_layout vb, i64 v_rs, i64 v_cs, double scale, bool causal, int BM, int BN,     \
            T* out, A* lse) {                                                                \
        flash_attention<T>(B, L, S_, E, Ev, q, qb, q_rs, q_cs, k, kb, k_rs, k_cs, v, vb,     \
                           v_rs, v_cs, scale, causal, BM, BN, out, lse);                     \
    }
LG_NN_FLOAT_TYPES(ATTENTION_KERNELS)
