/* GELU, its derivative, and erf, element by element.
 *
 *   gelu(x)  = x Phi(x)                    Phi: the standard normal CDF
 *   gelu'(x) = Phi(x) + x phi(x)           phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
 *   gelu_tanh(x) = x / (1 + exp(-2u)),     u = sqrt(2 / pi) (x + 0.044715 x^3)
 *                  (the same as 0.5 x (1 + tanh u), without its cancellation for x < 0)
 *
 * float32 uses lg_normal_cdf (fastmath.h: one exp, a polynomial); float64 the C library's
 * erfc, Phi(x) = erfc(-x / sqrt 2) / 2 (exact to the last bits, also far in the left tail).
 * Sizes are element counts; g has x's size (the caller broadcasts it). */
#include <math.h>
#include <stdint.h>

#include "fastmath.h"

#define INV_SQRT_2PI 0.3989422804014327
#define SQRT_HALF 0.7071067811865476

void lg_gelu_f32(float* y, const float* x, int64_t n)
{
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float gauss;
        y[i] = x[i] * lg_normal_cdf(x[i], &gauss);
    }
}

void lg_gelu_backward_f32(float* out, const float* x, const float* g, int64_t n)
{
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float gauss;
        float cdf = lg_normal_cdf(x[i], &gauss);
        out[i] = g[i] * fmaf(x[i] * (float)INV_SQRT_2PI, gauss, cdf);
    }
}

void lg_gelu_and_grad_f32(float* y, float* d, const float* x, int64_t n)
{
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float gauss;
        float cdf = lg_normal_cdf(x[i], &gauss);
        y[i] = x[i] * cdf;
        d[i] = fmaf(x[i] * (float)INV_SQRT_2PI, gauss, cdf);
    }
}

/* erf(z) = z S(z^2) for |z| < 1 (a polynomial, relative error 1e-9), else
 * 2 Phi(z sqrt 2) - 1 (no cancellation there: |erf| > 0.84). */
void lg_erf_f32(float* out, const float* z, int64_t n)
{
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float gauss;
        float big = 2.0f * lg_normal_cdf(z[i] * 1.41421356f, &gauss) - 1.0f;
        float c = z[i] > 1.0f ? 1.0f : z[i] < -1.0f ? -1.0f : z[i], c2 = c * c;
        float S = 7.853811985e-05f;
        S = fmaf(S, c2, -8.010180318e-04f);
        S = fmaf(S, c2, 5.188326351e-03f);
        S = fmaf(S, c2, -2.685381100e-02f);
        S = fmaf(S, c2, 1.128358543e-01f);
        S = fmaf(S, c2, -3.761262596e-01f);
        S = fmaf(S, c2, 1.128379226e+00f);
        out[i] = fabsf(z[i]) < 1.0f ? c * S : big;  /* NaN: big is NaN */
    }
}

void lg_gelu_tanh_f32(float* y, const float* x, int64_t n)
{
    #pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float u = 0.7978845608f * fmaf(0.044715f * x[i], x[i] * x[i], x[i]);
        y[i] = x[i] / (1.0f + lg_expf(-2.0f * u));
    }
}

void lg_gelu_f64(double* y, const double* x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * 0.5 * erfc(-x[i] * SQRT_HALF);
}

void lg_gelu_backward_f64(double* out, const double* x, const double* g, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        double cdf = 0.5 * erfc(-x[i] * SQRT_HALF);
        out[i] = g[i] * (cdf + x[i] * exp(-0.5 * x[i] * x[i]) * INV_SQRT_2PI);
    }
}

void lg_gelu_and_grad_f64(double* y, double* d, const double* x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        double cdf = 0.5 * erfc(-x[i] * SQRT_HALF);
        y[i] = x[i] * cdf;
        d[i] = cdf + x[i] * exp(-0.5 * x[i] * x[i]) * INV_SQRT_2PI;
    }
}
