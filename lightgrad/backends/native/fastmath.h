/* exp and the normal CDF in float32 from plain arithmetic, so that loops calling them are
 * vectorised by the compiler (the C library's expf is one element per call).
 * Shared by the kernel files; every function is static inline. */
#ifndef LG_FASTMATH_H
#define LG_FASTMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float lg_bits_to_float(uint32_t b) { float f; memcpy(&f, &b, 4); return f; }
static inline uint32_t lg_float_to_bits(float f) { uint32_t b; memcpy(&b, &f, 4); return b; }

/* e^y, within about one ulp, for every float y (NaN stays NaN, e^-inf = 0, e^inf = inf).
 * y = n ln2 + r with n an integer and |r| <= ln2 / 2; e^r by its Taylor series to r^7
 * (truncation 6e-9 relative); 2^n made from the exponent bits, as 2^(n/2) * 2^(n - n/2)
 * so that results down in the subnormal range are rounded once, correctly. */
static inline float lg_expf(float y)
{
    const float shifter = 12582912.0f;            /* 1.5 * 2^23: adding it rounds to int */
    y = y < -104.0f ? -104.0f : y;                 /* e^-104 < the smallest subnormal */
    y = y > 89.0f ? 89.0f : y;                     /* e^89 > the largest float: gives inf */
    float k = y * 1.44269504f + shifter;           /* round(y / ln2) in k's low bits */
    float n = k - shifter;
    float r = fmaf(n, -0.693359375f, y);           /* ln2 in two parts (Cody and Waite) */
    r = fmaf(n, 2.12194440e-4f, r);
    float p = 1.0f / 5040.0f;
    p = fmaf(p, r, 1.0f / 720.0f);
    p = fmaf(p, r, 1.0f / 120.0f);
    p = fmaf(p, r, 1.0f / 24.0f);
    p = fmaf(p, r, 1.0f / 6.0f);
    p = fmaf(p, r, 0.5f);
    p = fmaf(p, r, 1.0f);
    p = fmaf(p, r, 1.0f);
    int32_t e = (int32_t)(lg_float_to_bits(k) - lg_float_to_bits(shifter));  /* n */
    int32_t e1 = e >> 1, e2 = e - e1;
    return p * lg_bits_to_float((uint32_t)(e1 + 127) << 23)
             * lg_bits_to_float((uint32_t)(e2 + 127) << 23);
}

/* Phi(x), the standard normal CDF, and exp(-x^2 / 2), from one exp (see cpu_gelu.py):
 *   h = Phi(-|x|) = exp(-x^2 / 2) * R(t),  t = 1 / (1 + p |x| / sqrt 2),
 *   Phi(x) = h for x < 0, 1 - h for x >= 0 (the left tail keeps its relative accuracy).
 * R is a degree-9 polynomial fitted to 0.5 erfc(a) exp(a^2) (relative error 4e-8). */
static inline float lg_normal_cdf(float x, float* gauss)
{
    float a = fabsf(x);
    float t = 1.0f / fmaf(0.32526913f, a, 1.0f);
    float R = -2.456206642e-02f;
    R = fmaf(R, t, 1.467658728e-01f);
    R = fmaf(R, t, -3.334338367e-01f);
    R = fmaf(R, t, 3.225026131e-01f);
    R = fmaf(R, t, -1.302964091e-01f);
    R = fmaf(R, t, 1.584485322e-01f);
    R = fmaf(R, t, 9.852422029e-02f);
    R = fmaf(R, t, 1.325265020e-01f);
    R = fmaf(R, t, 1.295148432e-01f);
    R = fmaf(R, t, 9.726391909e-06f);
    float sq = x * x, sq_err = fmaf(x, x, -sq);   /* x^2 = sq + sq_err exactly */
    sq_err = sq <= 1e30f ? sq_err : 0.0f;           /* (not inf - inf for x = inf) */
    float e = lg_expf(-0.5f * sq) * fmaf(-0.5f, sq_err, 1.0f);  /* far tails: exact x^2 */
    float h = e * R;
    *gauss = e;
    return x >= 0.0f ? 1.0f - h : h;  /* NaN: h is NaN, and so is the result */
}

#endif
