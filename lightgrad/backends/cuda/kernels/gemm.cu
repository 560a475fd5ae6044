// gemm.cu: C = A @ B over a batch of matrices: matmul when the backend's choice is
// "lightgrad" (our kernels) rather than "cublas" (ops_linalg.py). The NumPy twin is np.matmul
// in cpu.py's matmul.
//
// Every kernel takes the same arguments. Sizes M, N, K and the batch count; then each operand
// as a pointer, an lg_layout that gives the offset of batch item z (broadcast batch axes have
// stride 0) and its row and column strides in elements, so transposed and sliced views need
// no copy. C has unit column stride and a row stride of its own (a slice of a wider matrix).
// Accumulation: float for float32 and the half types, double for float64, long long for
// integers and bool (cast back at the end: the same wrap-around as NumPy's integer matmul).
//
// gemm_naive_*: the textbook first step. One thread per element of C walks a row of A and a
//   column of B. Correct for every shape, and slow: each input element is fetched from
//   memory M or N times, and the multiply-adds wait on those loads.
//
// gemm_tiled_*: the classic fast GEMM, with three ideas on top of the naive kernel.
//   1. Shared-memory tiles. A block of 256 threads owns a BM x BN tile of C. It walks K in
//      steps of BK = 8: the threads copy a BM x BK tile of A and a BK x BN tile of B into
//      shared memory, then every thread reads them from there. Each element fetched from
//      global memory is now used BN (or BM) times.
//   2. Register blocking. Each thread computes TM x TN outputs (8 x 8 for float, 4 x 4 for
//      8-byte types) held in registers: per k it loads TM values of A and TN of B from shared
//      memory and does TM * TN multiply-adds, so shared-memory traffic is no longer the limit.
//   3. Wide, overlapped loads. Global loads are 16-byte float4 loads when the operand is
//      contiguous along one axis and aligned (otherwise 4 scalar loads); the next k-tile is
//      fetched into registers while the current one is multiplied, and shared memory is
//      double buffered, so one __syncthreads per k-step suffices.
//   Ragged edges: elements outside the matrices load as 0 (adding nothing) and the stores
//   are guarded. The batch runs over blockIdx.z, M-tiles over blockIdx.y (both loop when the
//   grid is smaller), N-tiles over blockIdx.x.
#include "prelude.cuh"

// --------------------------------------------------------------------------- naive

template <class T, class A>
__device__ void gemm_naive(i64 M, i64 N, i64 K, i64 batch,
                           const T* a, lg_layout a_batch, i64 a_rs, i64 a_cs,
                           const T* b, lg_layout b_batch, i64 b_rs, i64 b_cs,
                           T* c, lg_layout c_batch, i64 c_rs) {
    i64 n = i64(blockIdx.x) * blockDim.x + threadIdx.x;
    if (n >= N) return;
    for (i64 z = blockIdx.z; z < batch; z += gridDim.z) {
        for (i64 m = i64(blockIdx.y) * blockDim.y + threadIdx.y; m < M;
             m += i64(gridDim.y) * blockDim.y) {
            const T* row = a + lg_offset(a_batch, z) + m * a_rs;  // A[m, :]
            const T* col = b + lg_offset(b_batch, z) + n * b_cs;  // B[:, n]
            A acc = A(0);
            for (i64 k = 0; k < K; ++k) acc += A(row[k * a_cs]) * A(col[k * b_rs]);
            c[lg_offset(c_batch, z) + m * c_rs + n] = (T)acc;
        }
    }
}

// --------------------------------------------------------------------------- tiled

#define GEMM_BK 8          // depth of a k-step
#define GEMM_THREADS 256   // a 16 x 16 grid of threads
#define GEMM_PAD 4         // shared rows padded by 4: transposing stores spread over banks

// Both operands' tiles, twice (double buffering). Stored k-major: a[k][m] and b[k][n], so
// the TM values of A a thread needs at one k are consecutive (float4 reads). 16-byte aligned.
template <class S, int BM, int BN>
struct __align__(16) GemmTiles {
    S a[2][GEMM_BK][BM + GEMM_PAD];
    S b[2][GEMM_BK][BN + GEMM_PAD];
};

// Which element types move as float4 (16 bytes = 4 elements).
template <class T> struct gemm_vec4 { enum { ok = 0 }; };
template <> struct gemm_vec4<float> { enum { ok = 1 }; };

__device__ __forceinline__ bool aligned16(const void* p) {
    return ((unsigned long long)p & 15ull) == 0;
}

// 4 consecutive elements as one 16-byte access (float only; callers check gemm_vec4 first).
template <class T, class S>
__device__ __forceinline__ void load_vec4(const T* p, S* v) {}
__device__ __forceinline__ void load_vec4(const float* p, float* v) {
    float4 q = *reinterpret_cast<const float4*>(p);
    v[0] = q.x; v[1] = q.y; v[2] = q.z; v[3] = q.w;
}
template <class T, class S>
__device__ __forceinline__ void store_vec4(T* p, const S* v) {}
__device__ __forceinline__ void store_vec4(float* p, const float* v) {
    *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
}

// 4 consecutive values from shared memory (one float4 read for float).
template <class S>
__device__ __forceinline__ void read4(const S* p, S* v) {
    v[0] = p[0]; v[1] = p[1]; v[2] = p[2]; v[3] = p[3];
}
__device__ __forceinline__ void read4(const float* p, float* v) {
    float4 q = *reinterpret_cast<const float4*>(p);
    v[0] = q.x; v[1] = q.y; v[2] = q.z; v[3] = q.w;
}

// One thread's share of copying an operand's tiles: quad q of each BO x BK tile. The operand
// is seen as O x K elements (O is M for A, N for B), element (o, k) at p[o * so + k * sk]. A
// quad is 4 elements consecutive along the operand's unit-stride axis (along k when sk == 1,
// else along o): one float4 load when the operand is float, aligned and the quad lies inside
// the matrix. Where the quad sits is fixed for the thread; each k-step moves it BK columns.
template <class T, int BO>
struct QuadLoader {
    const T* src;     // the quad's first element at the current k-step
    i64 advance;      // src's move per k-step: BK * sk
    i64 step;         // between the quad's elements: sk along k, so along o
    int k_left;       // K - (the quad's k at the current k-step)
    int o_left;       // O - (the quad's o)
    int at, stride;   // the quad's place in the shared tile, and between its elements
    bool along_k, vec;

    __device__ __forceinline__ QuadLoader(int q, const T* p, i64 so, i64 sk, i64 O, i64 K,
                                          i64 o0) {
        along_k = sk == 1 || so != 1;
        int o, k;
        if (along_k) { o = q / (GEMM_BK / 4); k = (q % (GEMM_BK / 4)) * 4; }
        else { k = q / (BO / 4); o = (q % (BO / 4)) * 4; }
        at = k * (BO + GEMM_PAD) + o;
        stride = along_k ? BO + GEMM_PAD : 1;
        i64 quad_step = along_k ? so : sk;  // between the starts of two quads' lines
        vec = gemm_vec4<T>::ok && (along_k ? sk == 1 : so == 1) && quad_step % 4 == 0 &&
              aligned16(p);
        o_left = int(O - (o0 + o) < 4 ? O - (o0 + o) : 4);  // all that matters: 0..4
        k_left = int(K - k);
        step = along_k ? sk : so;
        advance = GEMM_BK * sk;
        src = p + (o0 + o) * so + k * sk;
    }

    // This k-step's quad into v (elements outside the matrix read as 0), then on to the next.
    template <class S>
    __device__ __forceinline__ void fetch(S* v) {
        bool inside = along_k ? o_left > 0 : k_left > 0;   // the quad's line is in the matrix
        int left = along_k ? k_left : o_left;              // elements of the line from here
        if (inside && vec && left >= 4) {
            load_vec4(src, v);
        } else {
#pragma unroll
            for (int e = 0; e < 4; ++e) v[e] = inside && e < left ? S(src[e * step]) : S(0);
        }
        src += advance;
        k_left -= GEMM_BK;
    }

    // The quad into the k-major shared tile at s (BK rows of BO + GEMM_PAD, flat).
    template <class S>
    __device__ __forceinline__ void stash(const S* v, S* s) const {
#pragma unroll
        for (int e = 0; e < 4; ++e) s[at + e * stride] = v[e];
    }
};

template <class T, class S, int TM, int TN>
__device__ void gemm_tiled(i64 M, i64 N, i64 K, i64 batch,
                           const T* a, lg_layout a_batch, i64 a_rs, i64 a_cs,
                           const T* b, lg_layout b_batch, i64 b_rs, i64 b_cs,
                           T* c, lg_layout c_batch, i64 c_rs) {
    constexpr int BM = 16 * TM, BN = 16 * TN;
    // quads per tile: one per thread for 128-wide tiles; half the threads for 64-wide ones
    constexpr int QUADS_A = BM * GEMM_BK / 4, QUADS_B = BN * GEMM_BK / 4;
    static_assert(QUADS_A <= GEMM_THREADS && QUADS_B <= GEMM_THREADS, "one quad a thread");
    __shared__ GemmTiles<S, BM, BN> tiles;

    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    const bool loads_a = tid < QUADS_A, loads_b = tid < QUADS_B;
    // Thread (ty, tx) owns rows {64 i + 4 ty + r} and columns {64 j + 4 tx + r} (r < 4) of the
    // tile: runs of 4 consecutive rows and columns, so that its reads of a k-row of the shared
    // tiles are float4 reads, and a warp's reads are broadcasts or distinct banks.
    const i64 m_tiles = (M + BM - 1) / BM;
    const int k_steps = int((K + GEMM_BK - 1) / GEMM_BK);  // Python: M, N, K < 2^31
    const i64 n0 = i64(blockIdx.x) * BN;

    for (i64 z = blockIdx.z; z < batch; z += gridDim.z) {
        for (i64 mt = blockIdx.y; mt < m_tiles; mt += gridDim.y) {
            const i64 m0 = mt * BM;
            QuadLoader<T, BM> load_a(tid, a + lg_offset(a_batch, z), a_rs, a_cs, M, K, m0);
            QuadLoader<T, BN> load_b(tid, b + lg_offset(b_batch, z), b_cs, b_rs, N, K, n0);
            S acc[TM][TN];
#pragma unroll
            for (int i = 0; i < TM; ++i)
#pragma unroll
                for (int j = 0; j < TN; ++j) acc[i][j] = S(0);

            // this thread's quads of the next k-step, fetched while the current one computes
            S next_a[4], next_b[4];
            if (loads_a) { load_a.fetch(next_a); load_a.stash(next_a, &tiles.a[0][0][0]); }
            if (loads_b) { load_b.fetch(next_b); load_b.stash(next_b, &tiles.b[0][0][0]); }
            __syncthreads();

            for (int step = 0; step < k_steps; ++step) {
                const int cur = step & 1;
                const bool more = step + 1 < k_steps;
                if (more) {  // global loads in flight during the multiply-adds below
                    if (loads_a) load_a.fetch(next_a);
                    if (loads_b) load_b.fetch(next_b);
                }
#pragma unroll
                for (int k = 0; k < GEMM_BK; ++k) {
                    S fa[TM], fb[TN];
#pragma unroll
                    for (int i = 0; i < TM / 4; ++i)
                        read4(&tiles.a[cur][k][64 * i + 4 * ty], &fa[4 * i]);
#pragma unroll
                    for (int j = 0; j < TN / 4; ++j)
                        read4(&tiles.b[cur][k][64 * j + 4 * tx], &fb[4 * j]);
#pragma unroll
                    for (int i = 0; i < TM; ++i)
#pragma unroll
                        for (int j = 0; j < TN; ++j) acc[i][j] += fa[i] * fb[j];
                }
                if (more) {  // the other buffer: its last readers finished before the sync
                    if (loads_a) load_a.stash(next_a, &tiles.a[cur ^ 1][0][0]);
                    if (loads_b) load_b.stash(next_b, &tiles.b[cur ^ 1][0][0]);
                }
                __syncthreads();
            }

            // C: runs of 4 consecutive columns, one float4 store when aligned and inside
            T* cz = c + lg_offset(c_batch, z);
            const bool vec = gemm_vec4<T>::ok && aligned16(cz) && c_rs % 4 == 0;
#pragma unroll
            for (int i = 0; i < TM; ++i) {
                const i64 m = m0 + 64 * (i / 4) + 4 * ty + (i % 4);
                if (m >= M) continue;
#pragma unroll
                for (int j = 0; j < TN / 4; ++j) {
                    const i64 n = n0 + 64 * j + 4 * tx;
                    T* dst = cz + m * c_rs + n;
                    if (vec && n + 3 < N) {
                        store_vec4(dst, &acc[i][4 * j]);
                        continue;
                    }
#pragma unroll
                    for (int e = 0; e < 4; ++e)
                        if (n + e < N) dst[e] = (T)acc[i][4 * j + e];
                }
            }
        }
    }
}

// gemm_naive_<S> and gemm_tiled_<S> for storage type T, accumulating in A, TM x TN outputs
// per thread in the tiled kernel (tile BM x BN = 16 TM x 16 TN).
#define GEMM_KERNELS(S, T, A, TM)                                                           \
    extern "C" __global__ void gemm_naive_##S(                                              \
        i64 M, i64 N, i64 K, i64 batch, const T* a, lg_layout a_batch, i64 a_rs, i64 a_cs,  \
        const T* b, lg_layout b_batch, i64 b_rs, i64 b_cs, T* c, lg_layout c_batch,         \
        i64 c_rs) {                                                                         \
        gemm_naive<T, A>(M, N, K, batch, a, a_batch, a_rs, a_cs, b, b_batch, b_rs, b_cs,    \
                         c, c_batch, c_rs);                                                 \
    }                                                                                       \
    extern "C" __global__ __launch_bounds__(GEMM_THREADS, 1) void gemm_tiled_##S(              \
        i64 M, i64 N, i64 K, i64 batch, const T* a, lg_layout a_batch, i64 a_rs, i64 a_cs,  \
        const T* b, lg_layout b_batch, i64 b_rs, i64 b_cs, T* c, lg_layout c_batch,         \
        i64 c_rs) {                                                                         \
        gemm_tiled<T, A, TM, TM>(M, N, K, batch, a, a_batch, a_rs, a_cs, b, b_batch, b_rs,  \
                                 b_cs, c, c_batch, c_rs);                                   \
    }
GEMM_KERNELS(f32, float, float, 8)
GEMM_KERNELS(f16, lg_half, float, 8)
GEMM_KERNELS(bf16, lg_bf16, float, 8)
GEMM_KERNELS(f64, double, double, 4)
GEMM_KERNELS(i64, long long, long long, 4)
GEMM_KERNELS(i32, int, long long, 4)
GEMM_KERNELS(i16, short, long long, 4)
GEMM_KERNELS(i8, signed char, long long, 4)
GEMM_KERNELS(u8, unsigned char, long long, 4)
GEMM_KERNELS(b8, bool, long long, 4)
