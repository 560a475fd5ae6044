/* Softmax and log-softmax along the last axis of a (rows, cols) matrix, one row at a time
 * in two or three passes (maximum; exponentials and their sum; scale):
 *
 *   softmax(x)_j     = exp(x_j - max x) / sum_k exp(x_k - max x)
 *   log_softmax(x)_j = (x_j - max x) - log(sum_k exp(x_k - max x))
 *
 * attention's softmax in place over its scores, with the causal mask applied as it goes
 * (no -inf bias added first), and cross-entropy against class indices with its gradient.
 * float32 uses lg_expf (fastmath.h, vectorised); float64 the C library's exp. The loops
 * are in softmax_rows.h, included once per type. */
#include <math.h>
#include <stdint.h>

#include "fastmath.h"

#define T float
#define NAME(f) f##_f32
#define EXP lg_expf
#define LOG logf
#include "softmax_rows.h"
#undef T
#undef NAME
#undef EXP
#undef LOG

#define T double
#define NAME(f) f##_f64
#define EXP exp
#define LOG log
#include "softmax_rows.h"
