/* Mamba's selective scan (S6), forward and backward, one (batch, channel) at a time
 * (twin: cpu_scan.py, whose docstring has the recurrence). For batch b and channel d,
 * with dt[t] = delta[t] + bias[d], passed through softplus when asked:
 *
 *   h[t, k] = exp(dt[t] A[d, k]) h[t-1, k] + dt[t] u[t] B[t, k]      (h[-1] = 0)
 *   y[t]    = (sum_k C[t, k] h[t, k] + D[d] u[t]) * silu(z[t])
 *
 * The state is taken in blocks of LANES values (one 64-byte vector: 16 floats, 8 doubles)
 * kept in registers across the whole sequence; the caller pads the state size n to a
 * multiple of LANES with zeros in A, B, C (a padded lane stays 0 and adds 0).
 *
 * Layouts (all C-contiguous): u, delta, z, y, grad and their gradients (batch, dim, L);
 * A and dA (dim, n); D, bias and their gradients (dim); B, C and their gradients
 * time-major per group, (batch, G, L, n), channel d reading group d / (dim / G); the last
 * state and its gradient (batch, dim, n). D, z, bias and grad_last may be NULL (absent),
 * and so may the gradients of the absent ones.
 *
 * The backward keeps one channel's L states and decays exp(dt A) (work: 2 L n + 5 L values
 * from the caller; the forward's work is L values), then runs the adjoint g[t] = dL/dh[t]
 * backwards in time:
 *
 *   g[t, k] = gy[t] C[t, k] + exp(dt[t+1] A[k]) g[t+1, k]       (g[L] = 0, plus grad_last)
 *
 * where gy is the gradient reaching sum_k C h (through the gate and past the skip D u).
 * With q[t, k] = g[t, k] exp(dt[t] A[k]) h[t-1, k]:
 *   dA[k] += sum_t q dt,   ddt[t] = u[t] sum_k g B + sum_k q A,   du[t] = dt[t] sum_k g B,
 *   dB[t, k] += g dt u (summed over the group's channels),   dC[t, k] += gy h,
 * and through softplus ddelta = ddt * sigmoid(delta + bias). The gradients of A, B, C, D and
 * bias are accumulated into arrays the caller zeroes.
 *
 * exp is lg_expf (fastmath.h) in float32 and lg_scan_exp below in float64, log1p a series:
 * plain arithmetic that the compiler vectorises. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fastmath.h"

/* e^y in double within about an ulp (NaN stays NaN, e^-inf = 0, e^inf = inf), as lg_expf:
 * y = m ln2 + r, |r| <= ln2 / 2, e^r by its Taylor series to r^13 (truncation 4e-18). */
static inline double lg_scan_exp(double y)
{
    const double shifter = 6755399441055744.0;     /* 1.5 * 2^52: adding it rounds to int */
    y = y < -746.0 ? -746.0 : y;
    y = y > 710.0 ? 710.0 : y;
    double k = y * 1.4426950408889634 + shifter;
    double m = k - shifter;
    double r = fma(m, -6.93147180369123816490e-01, y);  /* ln2 in two parts */
    r = fma(m, -1.90821492927058770002e-10, r);
    double p = 1.0 / 6227020800.0;
    p = fma(p, r, 1.0 / 479001600.0);
    p = fma(p, r, 1.0 / 39916800.0);
    p = fma(p, r, 1.0 / 3628800.0);
    p = fma(p, r, 1.0 / 362880.0);
    p = fma(p, r, 1.0 / 40320.0);
    p = fma(p, r, 1.0 / 5040.0);
    p = fma(p, r, 1.0 / 720.0);
    p = fma(p, r, 1.0 / 120.0);
    p = fma(p, r, 1.0 / 24.0);
    p = fma(p, r, 1.0 / 6.0);
    p = fma(p, r, 0.5);
    p = fma(p, r, 1.0);
    p = fma(p, r, 1.0);
    uint64_t kb, sb;
    memcpy(&kb, &k, 8);
    memcpy(&sb, &shifter, 8);
    int64_t e = (int64_t)(kb - sb), e1 = e >> 1, e2 = e - e1;
    uint64_t b1 = (uint64_t)(e1 + 1023) << 52, b2 = (uint64_t)(e2 + 1023) << 52;
    double f1, f2;
    memcpy(&f1, &b1, 8);
    memcpy(&f2, &b2, 8);
    return p * f1 * f2;
}

/* log1p(e) for 0 <= e <= 1: 2 atanh(s), s = e / (2 + e) <= 1/3, by its series in s^2
 * to s^(2 terms - 1) (7 terms: 1e-8 relative, 16 terms: 2e-17). */
#define DEFINE_LOG1P(T, SUF, TERMS)                                                        \
static inline T lg_scan_log1p_##SUF(T e) {                                                 \
    T s = e / (2 + e), w = s * s, p = (T)1 / (2 * TERMS - 1);                              \
    for (int j = TERMS - 2; j >= 0; j--)                                                   \
        p = p * w + (T)1 / (2 * j + 1);                                                    \
    return 2 * s * p;                                                                      \
}
DEFINE_LOG1P(float, f32, 7)
DEFINE_LOG1P(double, f64, 16)

#define DEFINE_SCAN(T, SUF, EXP, FABS, LANES)                                              \
/* the sum of LANES values by halving (vector adds; not one long chain of scalar ones) */  \
static inline T lg_scan_sum_##SUF(T *v) {                                                  \
    for (int w = LANES / 2; w > 0; w /= 2)                                                 \
        for (int k = 0; k < w; k++)                                                        \
            v[k] += v[k + w];                                                              \
    return v[0];                                                                           \
}                                                                                          \
                                                                                           \
/* dt of one row, and sigmoid(delta + bias) into sig when softplus and sig is not NULL */  \
static void lg_scan_dt_##SUF(T *dt, T *sig, const T *delta, T bias, int64_t len,           \
                             int64_t softplus) {                                           \
    if (!softplus) {                                                                       \
        for (int64_t t = 0; t < len; t++)                                                  \
            dt[t] = delta[t] + bias;                                                       \
        return;                                                                            \
    }                                                                                      \
    _Pragma("omp simd")                                                                    \
    for (int64_t t = 0; t < len; t++) {                                                    \
        T raw = delta[t] + bias, e = EXP(-FABS(raw));       /* e^-|raw| in (0, 1] */       \
        dt[t] = (raw > 0 ? raw : 0) + lg_scan_log1p_##SUF(e);                              \
        if (sig)                                                                           \
            sig[t] = (raw >= 0 ? 1 : e) / (1 + e);                                         \
    }                                                                                      \
}                                                                                          \
                                                                                           \
/* The states of one block of LANES state values over the row; s[t] += sum_k C h (= when  \
 * first); H and E (row stride n) get the states and decays when not NULL; last gets the   \
 * final state. */                                                                         \
static void lg_scan_states_##SUF(T *s, T *H, T *E, T *last, const T *dt, const T *u,       \
                                 const T *a, const T *B, const T *C, int64_t len,          \
                                 int64_t n, int first) {                                   \
    T h[LANES];                                                                            \
    for (int k = 0; k < LANES; k++)                                                        \
        h[k] = 0;                                                                          \
    for (int64_t t = 0; t < len; t++) {                                                    \
        const T d = dt[t], du = d * u[t], *Bt = B + t * n, *Ct = C + t * n;                \
        T e[LANES], ch[LANES];                                                             \
        for (int k = 0; k < LANES; k++) {                                                  \
            e[k] = EXP(d * a[k]);                                                          \
            h[k] = e[k] * h[k] + du * Bt[k];                                               \
            ch[k] = Ct[k] * h[k];                                                          \
        }                                                                                  \
        T acc = lg_scan_sum_##SUF(ch);                                                     \
        if (H) {                                                                           \
            memcpy(H + t * n, h, sizeof h);                                                \
            memcpy(E + t * n, e, sizeof e);                                                \
        }                                                                                  \
        s[t] = first ? acc : s[t] + acc;                                                   \
    }                                                                                      \
    memcpy(last, h, sizeof h);                                                             \
}                                                                                          \
                                                                                           \
/* The adjoint of one block backwards in time: hb[t] (+)= sum_k g B, qa[t] (+)= sum_k q A, \
 * and the block's dA, dB, dC; g_last (LANES values) or NULL. */                           \
static void lg_scan_adjoint_##SUF(T *hb, T *qa, T *ga, T *gB, T *gC, const T *g_last,      \
                                  const T *gy, const T *dt, const T *u, const T *a,        \
                                  const T *B, const T *C, const T *H, const T *E,          \
                                  int64_t len, int64_t n, int first) {                     \
    T carry[LANES], gak[LANES], zeros[LANES];                                              \
    for (int k = 0; k < LANES; k++) {                                                      \
        carry[k] = g_last ? g_last[k] : 0;                                                 \
        gak[k] = zeros[k] = 0;                                                             \
    }                                                                                      \
    for (int64_t t = len - 1; t >= 0; t--) {                                               \
        const T gyt = gy[t], d = dt[t], du = d * u[t];                                     \
        const int64_t o = t * n;                                                           \
        const T *hp = t ? H + o - n : zeros;                                               \
        T hbs = 0, qas = 0;                                                                \
        _Pragma("omp simd reduction(+:hbs, qas)")                                          \
        for (int k = 0; k < LANES; k++) {                                                  \
            T g = gyt * C[o + k] + carry[k];                                               \
            T ge = g * E[o + k], q = ge * hp[k];                                           \
            gak[k] += q * d;                                                               \
            qas += q * a[k];                                                               \
            hbs += g * B[o + k];                                                           \
            gB[o + k] += g * du;                                                           \
            gC[o + k] += gyt * H[o + k];                                                   \
            carry[k] = ge;                                                                 \
        }                                                                                  \
        hb[t] = first ? hbs : hb[t] + hbs;                                                 \
        qa[t] = first ? qas : qa[t] + qas;                                                 \
    }                                                                                      \
    for (int k = 0; k < LANES; k++)                                                        \
        ga[k] += gak[k];                                                                   \
}                                                                                          \
                                                                                           \
void lg_selective_scan_##SUF(T *y, T *last, T *work, const T *u, const T *delta,          \
                             const T *A, const T *Bt, const T *Ct, const T *D, const T *z, \
                             const T *bias, int64_t batch, int64_t dim, int64_t len,       \
                             int64_t n, int64_t groups, int64_t softplus) {                \
    const int64_t per_group = dim / groups;                                                \
    T *dt = work;                                                                          \
    for (int64_t b = 0; b < batch; b++) {                                                  \
        for (int64_t d = 0; d < dim; d++) {                                                \
            const int64_t row = (b * dim + d) * len, grp = (b * groups + d / per_group);   \
            const T *ur = u + row, Dd = D ? D[d] : 0;                                      \
            T *yr = y + row;                                                               \
            lg_scan_dt_##SUF(dt, NULL, delta + row, bias ? bias[d] : 0, len, softplus);    \
            for (int64_t kb = 0; kb < n; kb += LANES)                                      \
                lg_scan_states_##SUF(yr, NULL, NULL, last + (b * dim + d) * n + kb, dt,    \
                                     ur, A + d * n + kb, Bt + grp * len * n + kb,          \
                                     Ct + grp * len * n + kb, len, n, kb == 0);            \
            if (z) {                                                                       \
                const T *zr = z + row;                                                     \
                _Pragma("omp simd")                                                        \
                for (int64_t t = 0; t < len; t++)                                          \
                    yr[t] = (yr[t] + Dd * ur[t]) * zr[t] / (1 + EXP(-zr[t]));              \
            } else {                                                                       \
                for (int64_t t = 0; t < len; t++)                                          \
                    yr[t] += Dd * ur[t];                                                   \
            }                                                                              \
        }                                                                                  \
    }                                                                                      \
}                                                                                          \
                                                                                           \
void lg_selective_scan_backward_##SUF(                                                    \
        T *gu, T *gdelta, T *gA, T *gBt, T *gCt, T *gD, T *gz, T *gbias, T *work,          \
        const T *grad, const T *grad_last, const T *u, const T *delta, const T *A,         \
        const T *Bt, const T *Ct, const T *D, const T *z, const T *bias, int64_t batch,    \
        int64_t dim, int64_t len, int64_t n, int64_t groups, int64_t softplus) {           \
    const int64_t per_group = dim / groups;                                                \
    T *H = work, *E = H + len * n, *dt = E + len * n, *sig = dt + len, *gy = sig + len;   \
    T *hb = gy + len, *qa = hb + len, scratch[LANES];                                      \
    for (int64_t b = 0; b < batch; b++) {                                                  \
        for (int64_t d = 0; d < dim; d++) {                                                \
            const int64_t row = (b * dim + d) * len, grp = (b * groups + d / per_group);   \
            const T *ur = u + row, *gr = grad + row, Dd = D ? D[d] : 0;                    \
            const T *Bg = Bt + grp * len * n, *Cg = Ct + grp * len * n, *a = A + d * n;    \
            lg_scan_dt_##SUF(dt, sig, delta + row, bias ? bias[d] : 0, len, softplus);     \
            for (int64_t kb = 0; kb < n; kb += LANES)       /* the states again */         \
                lg_scan_states_##SUF(gy, H + kb, E + kb, scratch, dt, ur, a + kb, Bg + kb, \
                                     Cg + kb, len, n, kb == 0);                            \
            if (z) {                    /* gy holds sum_k C h: through the gate */         \
                const T *zr = z + row;                                                     \
                T *gzr = gz + row;                                                         \
                _Pragma("omp simd")                                                        \
                for (int64_t t = 0; t < len; t++) {                                        \
                    T sz = 1 / (1 + EXP(-zr[t]));                                          \
                    gzr[t] = gr[t] * (gy[t] + Dd * ur[t]) * (sz * (1 + zr[t] * (1 - sz))); \
                    gy[t] = gr[t] * (zr[t] * sz);                                          \
                }                                                                          \
            } else {                                                                       \
                memcpy(gy, gr, len * sizeof(T));                                           \
            }                                                                              \
            for (int64_t kb = 0; kb < n; kb += LANES)                                      \
                lg_scan_adjoint_##SUF(                                                     \
                    hb, qa, gA + d * n + kb, gBt + grp * len * n + kb,                     \
                    gCt + grp * len * n + kb,                                              \
                    grad_last ? grad_last + (b * dim + d) * n + kb : NULL, gy, dt, ur,     \
                    a + kb, Bg + kb, Cg + kb, H + kb, E + kb, len, n, kb == 0);            \
            T gD_d = 0, gbias_d = 0;                                                       \
            T *gur = gu + row, *gdr = gdelta + row;                                        \
            _Pragma("omp simd reduction(+:gD_d, gbias_d)")                                 \
            for (int64_t t = 0; t < len; t++) {                                            \
                T gdt = hb[t] * ur[t] + qa[t];                                             \
                gur[t] = hb[t] * dt[t] + gy[t] * Dd;                                       \
                gdt = softplus ? gdt * sig[t] : gdt;                                       \
                gdr[t] = gdt;                                                              \
                gD_d += gy[t] * ur[t];                                                     \
                gbias_d += gdt;                                                            \
            }                                                                              \
            if (gD)                                                                        \
                gD[d] += gD_d;                                                             \
            if (gbias)                                                                     \
                gbias[d] += gbias_d;                                                       \
        }                                                                                  \
    }                                                                                      \
}

DEFINE_SCAN(float, f32, lg_expf, fabsf, 16)
DEFINE_SCAN(double, f64, lg_scan_exp, fabs, 8)
