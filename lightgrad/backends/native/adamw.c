/* One AdamW step over a parameter, in one pass (base.py's adamw_step, same operations in
 * the same order as cpu.py's NumPy version):
 *
 *   p  = p * decay                           decay = 1 - lr * weight_decay
 *   m  = m + (g - m) * (1 - beta1)
 *   v  = v * beta2 + g * g * (1 - beta2)
 *   p  = p - m / (sqrt(v) / bias2 + eps) * step_size
 *                                            bias2 = sqrt(1 - beta2^step),
 *                                            step_size = lr / (1 - beta1^step)
 * The scalars are computed by the caller in double and passed in the array's type. */
#include <math.h>
#include <stdint.h>

/* lg_adamw_f32 and lg_adamw_f64: SQRT is sqrtf or sqrt. */
#define DEFINE_ADAMW(T, SUF, SQRT)                                                         \
void lg_adamw_##SUF(T *p, const T *g, T *m, T *v, int64_t n, T decay, T one_minus_beta1,   \
                    T beta2, T one_minus_beta2, T bias2, T eps, T step_size) {             \
    _Pragma("omp simd")                                                                    \
    for (int64_t i = 0; i < n; i++) {                                                      \
        T pi = p[i] * decay;                                                               \
        T mi = m[i] + (g[i] - m[i]) * one_minus_beta1;                                     \
        T vi = v[i] * beta2 + g[i] * g[i] * one_minus_beta2;                               \
        p[i] = pi - mi / (SQRT(vi) / bias2 + eps) * step_size;                             \
        m[i] = mi;                                                                         \
        v[i] = vi;                                                                         \
    }                                                                                      \
}

DEFINE_ADAMW(float, f32, sqrtf)
DEFINE_ADAMW(double, f64, sqrt)
