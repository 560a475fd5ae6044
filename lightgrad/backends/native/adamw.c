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

void lg_adamw_f32(float* p, const float* g, float* m, float* v, int64_t n, float decay,
                  float one_minus_beta1, float beta2, float one_minus_beta2, float bias2,
                  float eps, float step_size)
{
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float pi = p[i] * decay;
        float mi = m[i] + (g[i] - m[i]) * one_minus_beta1;
        float vi = v[i] * beta2 + g[i] * g[i] * one_minus_beta2;
        p[i] = pi - mi / (sqrtf(vi) / bias2 + eps) * step_size;
        m[i] = mi;
        v[i] = vi;
    }
}

void lg_adamw_f64(double* p, const double* g, double* m, double* v, int64_t n, double decay,
                  double one_minus_beta1, double beta2, double one_minus_beta2, double bias2,
                  double eps, double step_size)
{
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        double pi = p[i] * decay;
        double mi = m[i] + (g[i] - m[i]) * one_minus_beta1;
        double vi = v[i] * beta2 + g[i] * g[i] * one_minus_beta2;
        p[i] = pi - mi / (sqrt(vi) / bias2 + eps) * step_size;
        m[i] = mi;
        v[i] = vi;
    }
}
