// prelude.cuh: what every lightgrad kernel file shares. NVRTC has no host headers, so this
// file defines everything itself; the emulator compiles it with the host C++ compiler.
#pragma once

#ifndef LG_EMULATOR
#define LG_INF __int_as_float(0x7f800000)
#define LG_NAN __int_as_float(0x7fffffff)
#else
#define LG_INF __builtin_inff()
#define LG_NAN __builtin_nanf("")
#endif
#define LG_INF_D __longlong_as_double(0x7ff0000000000000LL)

typedef long long i64;

// A strided view: element i (in row-major order over `shape`) is at
// sum(coordinate[d] * stride[d]), strides in elements. Contiguous data is passed as
// ndim 1 with stride 1, and broadcast axes have stride 0.
#define LG_MAX_DIMS 8
struct lg_layout {
    i64 ndim;
    i64 shape[LG_MAX_DIMS];
    i64 stride[LG_MAX_DIMS];
};

__device__ __forceinline__ i64 lg_offset(const lg_layout& L, i64 i) {
    if (L.ndim == 1) return i * L.stride[0];
    i64 off = 0;
    for (int d = int(L.ndim) - 1; d >= 0; --d) {
        i64 n = L.shape[d];
        off += (i % n) * L.stride[d];
        i /= n;
    }
    return off;
}

// --- half precision storage types with float math (bit-exact round-to-nearest-even)
__device__ __forceinline__ float lg_half_bits_to_float(unsigned short h) {
    unsigned sign = unsigned(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    if (exp == 0x1f) return __uint_as_float(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {
        float v = float(mant) * 5.9604644775390625e-8f;  // mant * 2^-24
        return sign ? -v : v;
    }
    return __uint_as_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

__device__ __forceinline__ unsigned short lg_float_to_half_bits(float f) {
    unsigned x = __float_as_uint(f);
    unsigned sign = (x >> 16) & 0x8000u, exp = (x >> 23) & 0xffu, mant = x & 0x7fffffu;
    if (exp == 0xff) return (unsigned short)(sign | 0x7c00u | (mant ? 0x200u : 0u));
    int e = int(exp) - 112;
    if (e >= 31) return (unsigned short)(sign | 0x7c00u);
    if (e <= 0) {
        if (e < -10) return (unsigned short)sign;
        mant |= 0x800000u;
        int shift = 14 - e;
        unsigned h = mant >> shift, rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1u))) ++h;
        return (unsigned short)(sign | h);
    }
    unsigned h = (unsigned(e) << 10) | (mant >> 13), rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry rounds up to inf
    return (unsigned short)(sign | h);
}

struct lg_half {
    unsigned short bits;
    lg_half() = default;
    __device__ lg_half(float f) : bits(lg_float_to_half_bits(f)) {}
    __device__ operator float() const { return lg_half_bits_to_float(bits); }
};

struct lg_bf16 {
    unsigned short bits;
    lg_bf16() = default;
    __device__ lg_bf16(float f) {
        unsigned x = __float_as_uint(f);
        if ((x & 0x7fffffffu) > 0x7f800000u) bits = (unsigned short)((x >> 16) | 0x40u);
        else bits = (unsigned short)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
    }
    __device__ operator float() const { return __uint_as_float(unsigned(bits) << 16); }
};

// The type arithmetic happens in: float for the half types, the type itself otherwise.
template <class T> struct lg_compute { typedef T type; };
template <> struct lg_compute<lg_half> { typedef float type; };
template <> struct lg_compute<lg_bf16> { typedef float type; };

// --- reductions inside a warp and a block (blockDim.x a multiple of 32, at most 1024)
template <class T>
__device__ __forceinline__ T lg_warp_sum(T v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
    return v;
}

// max that propagates NaN, as NumPy's and PyTorch's max do
template <class T>
__device__ __forceinline__ T lg_max(T a, T b) { return (a > b || a != a) ? a : b; }
template <class T>
__device__ __forceinline__ T lg_min(T a, T b) { return (a < b || a != a) ? a : b; }

template <class T>
__device__ __forceinline__ T lg_warp_max(T v) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        v = lg_max(v, __shfl_down_sync(0xffffffffu, v, offset));
    }
    return v;
}

// Sum of v over the block, returned to every thread. `scratch` holds 32 values.
template <class T>
__device__ __forceinline__ T lg_block_sum(T v, T* scratch) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = (blockDim.x + 31) >> 5;
    v = lg_warp_sum(v);
    __syncthreads();  // scratch may still be read by a previous call
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < nwarps ? scratch[lane] : T(0);
    if (warp == 0) v = lg_warp_sum(v);
    if (threadIdx.x == 0) scratch[0] = v;
    __syncthreads();
    return scratch[0];
}

template <class T>
__device__ __forceinline__ T lg_block_max(T v, T* scratch, T lowest) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = (blockDim.x + 31) >> 5;
    v = lg_warp_max(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < nwarps ? scratch[lane] : lowest;
    if (warp == 0) v = lg_warp_max(v);
    if (threadIdx.x == 0) scratch[0] = v;
    __syncthreads();
    return scratch[0];
}

#define LG_GRID_STRIDE(i, n) \
    for (i64 i = i64(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
         i += i64(blockDim.x) * gridDim.x)

// --- math by overload, so templates read the same in float and double
__device__ __forceinline__ float lg_exp(float x) { return expf(x); }
__device__ __forceinline__ double lg_exp(double x) { return exp(x); }
__device__ __forceinline__ float lg_log(float x) { return logf(x); }
__device__ __forceinline__ double lg_log(double x) { return log(x); }
__device__ __forceinline__ float lg_log1p(float x) { return log1pf(x); }
__device__ __forceinline__ double lg_log1p(double x) { return log1p(x); }
__device__ __forceinline__ float lg_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double lg_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float lg_sin(float x) { return sinf(x); }
__device__ __forceinline__ double lg_sin(double x) { return sin(x); }
__device__ __forceinline__ float lg_cos(float x) { return cosf(x); }
__device__ __forceinline__ double lg_cos(double x) { return cos(x); }
__device__ __forceinline__ float lg_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double lg_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float lg_erf(float x) { return erff(x); }
__device__ __forceinline__ double lg_erf(double x) { return erf(x); }
__device__ __forceinline__ float lg_floor(float x) { return floorf(x); }
__device__ __forceinline__ double lg_floor(double x) { return floor(x); }
__device__ __forceinline__ float lg_ceil(float x) { return ceilf(x); }
__device__ __forceinline__ double lg_ceil(double x) { return ceil(x); }
__device__ __forceinline__ float lg_rint(float x) { return rintf(x); }  // halves to even
__device__ __forceinline__ double lg_rint(double x) { return rint(x); }
__device__ __forceinline__ float lg_abs(float x) { return fabsf(x); }
__device__ __forceinline__ double lg_abs(double x) { return fabs(x); }
__device__ __forceinline__ float lg_pow(float x, float y) { return powf(x, y); }
__device__ __forceinline__ double lg_pow(double x, double y) { return pow(x, y); }

// The largest finite value of a type (infinity for floating types: max/min identities).
template <class T> __device__ __forceinline__ T lg_highest();
template <> __device__ __forceinline__ float lg_highest<float>() { return LG_INF; }
template <> __device__ __forceinline__ double lg_highest<double>() { return LG_INF_D; }
template <> __device__ __forceinline__ long long lg_highest<long long>() {
    return 0x7fffffffffffffffLL;
}
template <> __device__ __forceinline__ int lg_highest<int>() { return 0x7fffffff; }

// --- row helpers of the NN kernels (softmax, norms, losses): a row is folded by one warp
// (blockDim = (32, rows per block)) or by the whole block (blockDim.y == 1)
// s * exp(m - m_new), where an empty sum (s == 0, also while m is still -inf) stays 0.
template <class A>
__device__ __forceinline__ A lg_rescale(A s, A m, A m_new) {
    return s == A(0) ? A(0) : s * lg_exp(m - m_new);
}

// Fold one value into a running (max, sum of exp) pair. A -inf value adds nothing (also
// while the max is -inf, where exp(x - m) would be NaN).
template <class A>
__device__ __forceinline__ void lg_online_push(A& m, A& s, A x) {
    A m_new = lg_max(m, x);
    s = lg_rescale(s, m, m_new) + (x == -lg_highest<A>() ? A(0) : lg_exp(x - m_new));
    m = m_new;
}

template <class A>
__device__ __forceinline__ void lg_online_merge(A& m, A& s, A m2, A s2) {
    A m_new = lg_max(m, m2);
    s = lg_rescale(s, m, m_new) + lg_rescale(s2, m2, m_new);
    m = m_new;
}

// Merge the (m, s) pairs of the threads sharing a row: every thread gets the row's pair.
// A row is one warp when blockDim.y > 1, else the whole block (scratch: 2 x 32 values).
template <class A>
__device__ void lg_row_merge(A& m, A& s, A* scratch_m, A* scratch_s) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        A m2 = __shfl_xor_sync(0xffffffffu, m, offset);
        A s2 = __shfl_xor_sync(0xffffffffu, s, offset);
        lg_online_merge(m, s, m2, s2);
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
    for (int w = 0; w < nwarps; ++w) lg_online_merge(m, s, scratch_m[w], scratch_s[w]);
}

// Sum of v over the threads sharing a row (a warp when blockDim.y > 1, else the block),
// returned to each of them. `scratch` holds 32 values.
template <class A>
__device__ A lg_row_sum(A v, A* scratch) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    if (blockDim.y > 1) return v;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
    __syncthreads();  // the previous sum may still be reading the scratch
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    A total = A(0);
    for (int w = 0; w < nwarps; ++w) total += scratch[w];
    return total;
}

// Row r of M for the threads of row group threadIdx.y (rows beyond the grid loop).
#define LG_ROWS(r, M)                                                                   \
    for (i64 r = i64(blockIdx.x) * blockDim.y + threadIdx.y; r < (M);                   \
         r += i64(gridDim.x) * blockDim.y)

#define LG_NN_FLOAT_TYPES(X) \
    X(f32, float, float) X(f64, double, double) X(f16, lg_half, float) X(bf16, lg_bf16, float)
