// loss.cu: softmax cross-entropy of logits (M, C) and its gradient (NumPy twins:
// _cross_entropy and _cross_entropy_backward in backends/cpu.py).
//
// One row of C logits per warp (short rows) or per block (long rows), as in softmax.cu:
// an online pass finds the row's max m and s = sum(exp(x - m)), so log p = (x - m) - log(s);
// a second pass writes p = exp(log p) and folds what the loss needs. Targets are class
// indices (int64, `target`) or class probabilities (M, C) (`soft`), whichever is not null.
// With q the weighted, label-smoothed target of a row and Q = sum(q), the gradient is
// (p * Q - q) * scale. Half types are stored in 16 bits and computed in float.
#include "prelude.cuh"

// The weighted, smoothed class-probability target q of class k.
template <class T, class A>
__device__ __forceinline__ A soft_target(const T* soft, lg_layout lt, const T* weight, i64 r,
                                         i64 k, i64 C, A smoothing) {
    A q = A(soft[lg_offset(lt, r * C + k)]) * (A(1) - smoothing) + smoothing / A(C);
    return weight ? q * A(weight[k]) : q;
}

// loss[r]: the row's (weighted, smoothed) cross-entropy; probs = softmax(x); counted[r]:
// the weight of the row's target class (0 when ignored, 1 for probability targets).
template <class T>
__device__ void cross_entropy(i64 M, i64 C, const T* x, lg_layout lx, const i64* target,
                              const T* soft, lg_layout lt, const T* weight, i64 ignore_index,
                              double smoothing_, T* loss, T* probs, T* counted) {
    typedef typename lg_compute<T>::type A;
    __shared__ A scratch_m[32], scratch_s[32];
    A smoothing = A(smoothing_);
    LG_ROWS(r, M) {
        A m = -lg_highest<A>(), s = A(0);
        for (i64 k = threadIdx.x; k < C; k += blockDim.x)
            lg_online_push(m, s, A(x[lg_offset(lx, r * C + k)]));
        lg_row_merge(m, s, scratch_m, scratch_s);
        A log_s = lg_log(s);
        // soft targets: sum(q * log p); index targets with smoothing: sum(w * log p)
        A dot = A(0);
        for (i64 k = threadIdx.x; k < C; k += blockDim.x) {
            A logp = (A(x[lg_offset(lx, r * C + k)]) - m) - log_s;
            probs[r * C + k] = T(lg_exp(logp));
            if (soft) dot += soft_target(soft, lt, weight, r, k, C, smoothing) * logp;
            else if (smoothing != A(0)) dot += weight ? logp * A(weight[k]) : logp;
        }
        if (soft || smoothing != A(0)) dot = lg_row_sum(dot, scratch_m);
        if (threadIdx.x == 0) {
            if (soft) {
                loss[r] = T(-dot);
                counted[r] = T(A(1));
            } else {
                i64 t = target[lg_offset(lt, r)];
                bool valid = t != ignore_index;
                i64 picked = valid ? t : 0;
                A logp = (A(x[lg_offset(lx, r * C + picked)]) - m) - log_s;
                A count = (weight ? A(weight[picked]) : A(1)) * A(valid);
                A value = -logp * count;
                if (smoothing != A(0))
                    value = (A(1) - smoothing) * value + (smoothing / A(C)) * (-dot * A(valid));
                loss[r] = T(value);
                counted[r] = T(count);
            }
        }
    }
}

// d loss / d x = (p * Q - q) * scale[r] (an ignored row gets 0).
template <class T>
__device__ void cross_entropy_backward(i64 M, i64 C, const T* probs, lg_layout lp,
                                       const i64* target, const T* soft, lg_layout lt,
                                       const T* weight, const T* scale, lg_layout ls,
                                       i64 ignore_index, double smoothing_, T* gx) {
    typedef typename lg_compute<T>::type A;
    __shared__ A scratch[32];
    A eps = A(smoothing_);
    LG_ROWS(r, M) {
        A row_scale = A(scale[lg_offset(ls, r)]);
        if (soft) {
            A q_sum = A(0);
            for (i64 k = threadIdx.x; k < C; k += blockDim.x)
                q_sum += soft_target(soft, lt, weight, r, k, C, eps);
            q_sum = lg_row_sum(q_sum, scratch);
            for (i64 k = threadIdx.x; k < C; k += blockDim.x) {
                A q = soft_target(soft, lt, weight, r, k, C, eps);
                gx[r * C + k] = T((A(probs[lg_offset(lp, r * C + k)]) * q_sum - q) * row_scale);
            }
        } else {
            A w_sum = A(C);
            if (weight && eps != A(0)) {
                A part = A(0);
                for (i64 k = threadIdx.x; k < C; k += blockDim.x) part += A(weight[k]);
                w_sum = lg_row_sum(part, scratch);
            }
            i64 t = target[lg_offset(lt, r)];
            bool valid = t != ignore_index;
            i64 picked = valid ? t : 0;
            A row = row_scale * A(valid);
            A hit = weight ? A(weight[picked]) : A(1);
            A total = (A(1) - eps) * hit;
            if (eps != A(0)) total = total + eps / A(C) * w_sum;
            for (i64 k = threadIdx.x; k < C; k += blockDim.x) {
                A v = A(probs[lg_offset(lp, r * C + k)]) * (total * row);
                if (k == picked) v -= (A(1) - eps) * hit * row;
                if (eps != A(0)) v -= (eps / A(C)) * (weight ? A(weight[k]) : A(1)) * row;
                gx[r * C + k] = T(v);
            }
        }
    }
}

#define LOSS_KERNELS(S, T, A)                                                                \
    extern "C" __global__ void cross_entropy_##S(                                            \
            i64 M, i64 C, const T* x, lg_layout lx, const i64* target, const T* soft,        \
            lg_layout lt, const T* weight, i64 ignore_index, double smoothing, T* loss,      \
            T* probs, T* counted) {                                                          \
        cross_entropy<T>(M, C, x, lx, target, soft, lt, weight, ignore_index, smoothing,     \
                         loss, probs, counted);                                              \
    }                                                                                        \
    extern "C" __global__ void cross_entropy_backward_##S(                                   \
            i64 M, i64 C, const T* probs, lg_layout lp, const i64* target, const T* soft,    \
            lg_layout lt, const T* weight, const T* scale, lg_layout ls, i64 ignore_index,   \
            double smoothing, T* gx) {                                                       \
        cross_entropy_backward<T>(M, C, probs, lp, target, soft, lt, weight, scale, ls,      \
                                  ignore_index, smoothing, gx);                              \
    }
LG_NN_FLOAT_TYPES(LOSS_KERNELS)
