/* LayerNorm and RMSNorm over the rows of a (rows, cols) matrix, one row at a time.
 *
 * Forward:  mean = sum(x) / C,  rstd = 1 / sqrt(sum((x - mean)^2) / C + eps),
 *           y = (x - mean) * rstd * w + b           (w, b may be NULL: 1 and 0)
 * Backward: xhat = (x - mean) * rstd,  gxhat = g * w,
 *           dx = rstd * (gxhat - mean(gxhat) - xhat * mean(gxhat * xhat)),
 *           gw += g * xhat,  gb += g               (summed over rows; the caller zeroes them)
 * RMSNorm:  rstd = 1 / sqrt(sum(x^2) / C + eps),  y = x * rstd * w.
 *
 * The row sums are "omp simd" reductions (vectorised: a few interleaved partial sums).
 * The loops are in norm_rows.h, included once per type. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#define T float
#define NAME(f) f##_f32
#define SQRT sqrtf
#include "norm_rows.h"
#undef T
#undef NAME
#undef SQRT

#define T double
#define NAME(f) f##_f64
#define SQRT sqrt
#include "norm_rows.h"
