// random.cu: random numbers (Philox4x32-10), sampling, and the small creation kernels.
//
// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011) is
// counter-based: ten rounds of multiply-and-xor turn a 128-bit counter and a 64-bit key into
// four 32-bit random words, with no state carried between threads. The key is the seed; the
// counter is (block g as two words, stream offset as two words): Philox block g holds the
// words for elements [4g, 4g + 4) (one word per element) or [2g, 2g + 2) (two words per
// element: float64, int64). Python advances the offset after every call, so successive calls
// differ, and the same seed gives the same bits on any GPU and on the emulator.
//
// NumPy twins in cpu.py: rand/randn/randint (rng.random, standard_normal, integers; a
// different generator, so different numbers), arange, linspace, eye, multinomial.
#include "prelude.cuh"

#define PHILOX_M0 0xD2511F53u  // round multipliers
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u  // key schedule increments (golden ratio, sqrt(3) - 1)
#define PHILOX_W1 0xBB67AE85u

struct philox_words { unsigned w[4]; };

// The four random words of counter (g, offset) under key `seed`.
__device__ __forceinline__ philox_words philox(unsigned long long seed,
                                               unsigned long long offset, unsigned long long g) {
    unsigned c0 = unsigned(g), c1 = unsigned(g >> 32);
    unsigned c2 = unsigned(offset), c3 = unsigned(offset >> 32);
    unsigned k0 = unsigned(seed), k1 = unsigned(seed >> 32);
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {  // the key is bumped between rounds
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        unsigned hi0 = __umulhi(PHILOX_M0, c0), lo0 = PHILOX_M0 * c0;
        unsigned hi1 = __umulhi(PHILOX_M1, c2), lo1 = PHILOX_M1 * c2;
        unsigned n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
    }
    philox_words r;
    r.w[0] = c0;
    r.w[1] = c1;
    r.w[2] = c2;
    r.w[3] = c3;
    return r;
}

// --- words to numbers. Uniforms keep as many bits as the type's mantissa holds, so every
// value is exact and below 1; `open` variants add half a step: (0, 1), never 0.
__device__ __forceinline__ float u32_to_unit(unsigned w) {
    return float(w >> 8) * 5.9604644775390625e-8f;  // 24 bits * 2^-24
}
__device__ __forceinline__ double u64_to_unit(unsigned hi, unsigned lo) {
    unsigned long long bits = ((unsigned long long)hi << 21) ^ (lo >> 11);  // 53 bits
    return double(bits) * 1.1102230246251565e-16;                            // * 2^-53
}
__device__ __forceinline__ double u64_to_open_unit(unsigned hi, unsigned lo) {
    unsigned long long bits = ((unsigned long long)hi << 21) ^ (lo >> 11);
    return (double(bits) + 0.5) * 1.1102230246251565e-16;
}

// Uniform [0, 1) in T from one word (float32 and halves) or two (float64).
template <class T> __device__ __forceinline__ T unit_from(const philox_words& r, int j);
template <> __device__ __forceinline__ float unit_from<float>(const philox_words& r, int j) {
    return u32_to_unit(r.w[j]);
}
template <> __device__ __forceinline__ lg_half unit_from<lg_half>(const philox_words& r,
                                                                  int j) {
    return lg_half(float(r.w[j] >> 21) * 4.8828125e-4f);  // 11 bits * 2^-11: exact in half
}
template <> __device__ __forceinline__ lg_bf16 unit_from<lg_bf16>(const philox_words& r,
                                                                  int j) {
    return lg_bf16(float(r.w[j] >> 24) * 3.90625e-3f);  // 8 bits * 2^-8: exact in bfloat16
}
template <> __device__ __forceinline__ double unit_from<double>(const philox_words& r, int j) {
    return u64_to_unit(r.w[2 * j], r.w[2 * j + 1]);
}

// Elements per Philox block: 4 for one-word types, 2 for float64.
template <class T> struct per_block { enum { value = 4 }; };
template <> struct per_block<double> { enum { value = 2 }; };

template <class T>
__device__ void rand_kernel(i64 n, unsigned long long seed, unsigned long long offset, T* out) {
    const int per = per_block<T>::value;
    LG_GRID_STRIDE(g, (n + per - 1) / per) {
        philox_words r = philox(seed, offset, (unsigned long long)g);
        for (int j = 0; j < per; ++j)
            if (g * per + j < n) out[g * per + j] = unit_from<T>(r, j);
    }
}

// Box-Muller: two uniforms u1 in (0, 1], u2 in [0, 1) give two independent normals
// r cos(theta), r sin(theta) with r = sqrt(-2 log u1), theta = 2 pi u2. float32 and the
// halves use words (0, 1) and (2, 3) for four normals; float64 uses all four for two.
template <class T>
__device__ void randn_kernel(i64 n, unsigned long long seed, unsigned long long offset,
                             T* out) {
    LG_GRID_STRIDE(g, (n + 3) / 4) {
        philox_words r = philox(seed, offset, (unsigned long long)g);
        for (int pair = 0; pair < 2; ++pair) {
            float u1 = float((r.w[2 * pair] >> 8) + 1u) * 5.9604644775390625e-8f;
            float u2 = u32_to_unit(r.w[2 * pair + 1]);
            float radius = lg_sqrt(-2.0f * lg_log(u1)), theta = 6.2831853071795865f * u2;
            i64 e = g * 4 + pair * 2;
            if (e < n) out[e] = T(radius * lg_cos(theta));
            if (e + 1 < n) out[e + 1] = T(radius * lg_sin(theta));
        }
    }
}

__device__ void randn_f64_kernel(i64 n, unsigned long long seed, unsigned long long offset,
                                 double* out) {
    LG_GRID_STRIDE(g, (n + 1) / 2) {
        philox_words r = philox(seed, offset, (unsigned long long)g);
        double u1 = 1.0 - u64_to_unit(r.w[0], r.w[1]);  // (0, 1]
        double u2 = u64_to_unit(r.w[2], r.w[3]);
        double radius = lg_sqrt(-2.0 * lg_log(u1)), theta = 6.283185307179586477 * u2;
        if (2 * g < n) out[2 * g] = radius * lg_cos(theta);
        if (2 * g + 1 < n) out[2 * g + 1] = radius * lg_sin(theta);
    }
}

#define RANDOM_KERNELS(S, T)                                                                \
    extern "C" __global__ void rand_##S(i64 n, unsigned long long seed,                     \
                                        unsigned long long offset, T* out) {                \
        rand_kernel<T>(n, seed, offset, out);                                               \
    }
RANDOM_KERNELS(f32, float)
RANDOM_KERNELS(f64, double)
RANDOM_KERNELS(f16, lg_half)
RANDOM_KERNELS(bf16, lg_bf16)

#define RANDN_KERNEL(S, T)                                                                  \
    extern "C" __global__ void randn_##S(i64 n, unsigned long long seed,                    \
                                         unsigned long long offset, T* out) {               \
        randn_kernel<T>(n, seed, offset, out);                                              \
    }
RANDN_KERNEL(f32, float)
RANDN_KERNEL(f16, lg_half)
RANDN_KERNEL(bf16, lg_bf16)

extern "C" __global__ void randn_f64(i64 n, unsigned long long seed, unsigned long long offset,
                                     double* out) {
    randn_f64_kernel(n, seed, offset, out);
}

// Integers in [low, low + range) from 64 random bits x: floor(x * range / 2^64), the high
// half of the product (Lemire's multiply-shift; bias below range / 2^64). range 0 means 2^64.
extern "C" __global__ void randint_i64(i64 n, unsigned long long seed, unsigned long long offset,
                                       i64 low, unsigned long long range, i64* out) {
    LG_GRID_STRIDE(g, (n + 1) / 2) {
        philox_words r = philox(seed, offset, (unsigned long long)g);
        for (int j = 0; j < 2; ++j) {
            unsigned long long x = ((unsigned long long)r.w[2 * j] << 32) | r.w[2 * j + 1];
            unsigned long long pick = range ? __umul64hi(x, range) : x;
            if (2 * g + j < n) out[2 * g + j] = (i64)((unsigned long long)low + pick);
        }
    }
}

// The raw words of Philox blocks [0, blocks): for tests against a reference implementation.
extern "C" __global__ void philox_raw(i64 blocks, unsigned long long seed,
                                      unsigned long long offset, unsigned* out) {
    LG_GRID_STRIDE(g, blocks) {
        philox_words r = philox(seed, offset, (unsigned long long)g);
        for (int j = 0; j < 4; ++j) out[4 * g + j] = r.w[j];
    }
}

// --- multinomial sampling (rows of M x K probabilities, not necessarily normalised)

// With replacement, by inverse CDF: sample s of row m draws u in [0, 1) and picks the first
// category whose running total exceeds u * total (a binary search in the row's inclusive
// cumsum `cdf`); categories of probability 0 are never picked.
extern "C" __global__ void multinomial_cdf(i64 M, i64 K, i64 S, const double* cdf,
                                           unsigned long long seed, unsigned long long offset,
                                           i64* out) {
    LG_GRID_STRIDE(e, M * S) {
        const double* row = cdf + (e / S) * K;
        philox_words r = philox(seed, offset, (unsigned long long)(e >> 1));
        double target = u64_to_unit(r.w[2 * (e & 1)], r.w[2 * (e & 1) + 1]) * row[K - 1];
        i64 lo = 0, hi = K - 1;  // first k with row[k] > target; the last one if none
        while (lo < hi) {
            i64 mid = (lo + hi) / 2;
            if (row[mid] > target) hi = mid;
            else lo = mid + 1;
        }
        out[e] = lo;
    }
}

// Without replacement, by an exponential race: category k finishes at time E_k / p_k with
// E_k ~ Exp(1); the order of finishing is the order of successive draws without replacement
// (the same law as Gumbel-top-k), so the S smallest keys are the sample. p_k = 0 gives an
// infinite key: never picked before a positive category.
extern "C" __global__ void multinomial_race(i64 n, const double* probs, unsigned long long seed,
                                            unsigned long long offset, double* keys) {
    LG_GRID_STRIDE(e, n) {
        philox_words r = philox(seed, offset, (unsigned long long)(e >> 1));
        double u = u64_to_open_unit(r.w[2 * (e & 1)], r.w[2 * (e & 1) + 1]);
        keys[e] = -lg_log(u) / probs[e];
    }
}

// --- creation kernels

// Products and sums rounded on their own, never fused into an FMA, so the values are
// NumPy's bit for bit (the GPU compiler contracts a * b + c by default).
__device__ __forceinline__ float mul_rn(float a, float b) {
#ifdef LG_EMULATOR
    return a * b;
#else
    return __fmul_rn(a, b);
#endif
}
__device__ __forceinline__ double mul_rn(double a, double b) {
#ifdef LG_EMULATOR
    return a * b;
#else
    return __dmul_rn(a, b);
#endif
}
__device__ __forceinline__ i64 mul_rn(i64 a, i64 b) {  // wraps around, as NumPy's fill does
    return (i64)((unsigned long long)a * (unsigned long long)b);
}
__device__ __forceinline__ i64 add_wrap(i64 a, i64 b) {
    return (i64)((unsigned long long)a + (unsigned long long)b);
}
__device__ __forceinline__ float add_wrap(float a, float b) { return a + b; }
__device__ __forceinline__ double add_wrap(double a, double b) { return a + b; }

// NumPy's arange: out[0] = first, out[1] = second (start and start + step, each converted
// to the type), then first + i * (second - first) in the type's arithmetic W (float for
// float32, double for float64 and, as cpu.py computes them, the halves; int64 for integers).
template <class T, class W>
__device__ void arange_kernel(i64 n, W first, W second, W delta, T* out) {
    LG_GRID_STRIDE(i, n) {
        W v = i == 0 ? first : (i == 1 ? second : add_wrap(first, mul_rn((W)i, delta)));
        out[i] = (T)v;
    }
}

#define ARANGE_KERNEL(S, T, W)                                                              \
    extern "C" __global__ void arange_##S(i64 n, W first, W second, W delta, T* out) {      \
        arange_kernel<T, W>(n, first, second, delta, out);                                  \
    }
ARANGE_KERNEL(f32, float, float)
ARANGE_KERNEL(f64, double, double)
ARANGE_KERNEL(f16, lg_half, double)
ARANGE_KERNEL(bf16, lg_bf16, double)
ARANGE_KERNEL(i64, long long, i64)
ARANGE_KERNEL(i32, int, i64)
ARANGE_KERNEL(i16, short, i64)
ARANGE_KERNEL(i8, signed char, i64)
ARANGE_KERNEL(u8, unsigned char, i64)
ARANGE_KERNEL(b8, bool, i64)

// NumPy's linspace, in double, then converted: i * step + start (each step rounded on its
// own); mode 1 (step underflowed to 0): (i / div) * delta + start; mode 2 (fewer than two
// values): i * delta + start. The last value is `stop` exactly.
enum LinspaceMode { L_step, L_divide, L_single };

template <class T>
__device__ void linspace_kernel(i64 n, int mode, double start, double stop, double step,
                                double div, double delta, T* out) {
    LG_GRID_STRIDE(i, n) {
        double v;
        if (mode == L_step) v = mul_rn(double(i), step);
        else if (mode == L_divide) v = mul_rn(double(i) / div, delta);
        else v = mul_rn(double(i), delta);
        v += start;
        if (n > 1 && i == n - 1) v = stop;
        out[i] = (T)v;
    }
}

#define LINSPACE_KERNEL(S, T)                                                               \
    extern "C" __global__ void linspace_##S(i64 n, int mode, double start, double stop,     \
                                            double step, double div, double delta, T* out) {\
        linspace_kernel<T>(n, mode, start, stop, step, div, delta, out);                    \
    }
LINSPACE_KERNEL(f32, float)  // other dtypes: float64 values, then the cast kernels
LINSPACE_KERNEL(f64, double)

// An n x m identity of k-byte elements: `one` is the bit pattern of 1 in the dtype.
#define EYE_KERNEL(K, T)                                                                    \
    extern "C" __global__ void eye_##K(i64 n, i64 m, unsigned long long one, T* out) {      \
        LG_GRID_STRIDE(i, n * m) out[i] = i / m == i % m ? (T)one : (T)0;                   \
    }
EYE_KERNEL(1, unsigned char)
EYE_KERNEL(2, unsigned short)
EYE_KERNEL(4, unsigned int)
EYE_KERNEL(8, unsigned long long)
