// adamw.cu: the AdamW update in place (NumPy twin: CPUBackend.adamw_step in
// backends/cpu.py; the formula is base.Backend.adamw_step's):
//
//     param      *= 1 - lr * weight_decay
//     exp_avg    += (grad - exp_avg) * (1 - beta1)
//     exp_avg_sq  = exp_avg_sq * beta2 + grad * grad * (1 - beta2)
//     denom       = sqrt(exp_avg_sq) / sqrt(1 - beta2**step) + eps
//     param      -= exp_avg / denom * (lr / (1 - beta1**step))
//
// Python folds the step's constants; each thread updates elements independently, in float
// for the half types (rounded back on store) and in the type itself otherwise.
// adamw_step updates one tensor (any strides); adamw_multi updates many contiguous tensors
// of one dtype in one launch: the tensors are cut into chunks of `chunk` elements, and a
// block finds the tensor of its chunk by binary search in a table of first chunks.
#include "prelude.cuh"

// The step's constants, rounded once to the compute type as NumPy rounds Python floats.
template <class A>
struct AdamConstants {
    A decay, one_minus_beta1, beta2, one_minus_beta2, bias2_sqrt, eps, step_size;
};

template <class A>
__device__ __forceinline__ AdamConstants<A> constants(double decay, double beta1, double beta2,
                                                      double bias2_sqrt, double eps,
                                                      double step_size) {
    AdamConstants<A> c = {A(decay), A(1.0 - beta1), A(beta2), A(1.0 - beta2), A(bias2_sqrt),
                          A(eps), A(step_size)};
    return c;
}

template <class T, class A>
__device__ __forceinline__ void update(T& param, T grad, T& exp_avg, T& exp_avg_sq,
                                       const AdamConstants<A>& c) {
    A p = A(param), g = A(grad), m = A(exp_avg), v = A(exp_avg_sq);
    p = p * c.decay;
    m = m + (g - m) * c.one_minus_beta1;
    v = v * c.beta2 + g * g * c.one_minus_beta2;
    A denom = lg_sqrt(v) / c.bias2_sqrt + c.eps;
    p = p - m / denom * c.step_size;
    param = T(p);
    exp_avg = T(m);
    exp_avg_sq = T(v);
}

template <class T>
__device__ void adamw_step(i64 n, T* param, lg_layout lp, const T* grad, lg_layout lg,
                           T* exp_avg, lg_layout lm, T* exp_avg_sq, lg_layout lv, double decay,
                           double beta1, double beta2, double bias2_sqrt, double eps,
                           double step_size) {
    typedef typename lg_compute<T>::type A;
    AdamConstants<A> c = constants<A>(decay, beta1, beta2, bias2_sqrt, eps, step_size);
    LG_GRID_STRIDE(i, n) {
        update(param[lg_offset(lp, i)], grad[lg_offset(lg, i)], exp_avg[lg_offset(lm, i)],
               exp_avg_sq[lg_offset(lv, i)], c);
    }
}

// table (int64, n tensors): param addresses [0, n), grad [n, 2n), exp_avg [2n, 3n),
// exp_avg_sq [3n, 4n), sizes [4n, 5n), first chunk of each tensor [5n, 6n] (the last entry
// is the total number of chunks).
template <class T>
__device__ void adamw_multi(int n, const i64* table, i64 chunk, double decay, double beta1,
                            double beta2, double bias2_sqrt, double eps, double step_size) {
    typedef typename lg_compute<T>::type A;
    AdamConstants<A> c = constants<A>(decay, beta1, beta2, bias2_sqrt, eps, step_size);
    const i64* sizes = table + 4 * n;
    const i64* first = table + 5 * n;
    for (i64 ci = blockIdx.x; ci < first[n]; ci += gridDim.x) {
        int lo = 0, hi = n - 1;  // the last tensor whose first chunk is <= ci
        while (lo < hi) {
            int mid = (lo + hi + 1) / 2;
            if (first[mid] <= ci) lo = mid;
            else hi = mid - 1;
        }
        T* param = (T*)table[lo];
        const T* grad = (const T*)table[n + lo];
        T* exp_avg = (T*)table[2 * n + lo];
        T* exp_avg_sq = (T*)table[3 * n + lo];
        i64 start = (ci - first[lo]) * chunk;
        i64 stop = start + chunk < sizes[lo] ? start + chunk : sizes[lo];
        for (i64 i = start + threadIdx.x; i < stop; i += blockDim.x)
            update(param[i], grad[i], exp_avg[i], exp_avg_sq[i], c);
    }
}

#define ADAMW_KERNELS(S, T, A)                                                               \
    extern "C" __global__ void adamw_step_##S(                                               \
            i64 n, T* param, lg_layout lp, const T* grad, lg_layout lg, T* exp_avg,          \
            lg_layout lm, T* exp_avg_sq, lg_layout lv, double decay, double beta1,           \
            double beta2, double bias2_sqrt, double eps, double step_size) {                 \
        adamw_step<T>(n, param, lp, grad, lg, exp_avg, lm, exp_avg_sq, lv, decay, beta1,     \
                      beta2, bias2_sqrt, eps, step_size);                                    \
    }                                                                                        \
    extern "C" __global__ void adamw_multi_##S(int n, const i64* table, i64 chunk,           \
                                               double decay, double beta1, double beta2,     \
                                               double bias2_sqrt, double eps,                \
                                               double step_size) {                           \
        adamw_multi<T>(n, table, chunk, decay, beta1, beta2, bias2_sqrt, eps, step_size);    \
    }
LG_NN_FLOAT_TYPES(ADAMW_KERNELS)
