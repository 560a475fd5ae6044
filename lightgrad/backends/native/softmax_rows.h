/* The body of softmax.c for a real type T (float or double): NAME(f) is f_f32 or f_f64,
 * EXP and LOG the exponential and the logarithm.
 *
 * Rows are often short (65 classes, a 64-token context) and, under a causal mask, of
 * every length. Vectorised loops over a short row of uneven length spend much of their
 * time on the ragged end, one element at a time, so the two row helpers go by blocks of
 * LANES elements with one running maximum or sum per lane; they take a width >= n, the
 * number of elements a block may touch, so that the last, partly used block of a causal
 * row is a whole vector too (its elements past n count as -inf). */
#ifndef LANES
#define LANES 16
#endif

/* The largest of x[0 .. n); NaNs are skipped (like NumPy's fmax), and still turn the row
 * to NaN through the sum of exponentials. -inf for n = 0. */
static inline T NAME(row_max)(const T* x, int64_t n, int64_t width)
{
    T lanes[LANES], peak = -(T)INFINITY;
    for (int k = 0; k < LANES; k++) lanes[k] = -(T)INFINITY;
    int64_t head = width / LANES * LANES;
    for (int64_t j = 0; j < head; j += LANES)
        #pragma omp simd
        for (int k = 0; k < LANES; k++) {
            T v = j + k < n ? x[j + k] : -(T)INFINITY;
            lanes[k] = v > lanes[k] ? v : lanes[k];
        }
    for (int64_t j = head; j < n; j++) peak = x[j] > peak ? x[j] : peak;
    for (int k = 0; k < LANES; k++) peak = lanes[k] > peak ? lanes[k] : peak;
    return peak;
}

/* y[j] = exp(x[j] - shift) for j < n and 0 for n <= j < width; returns the sum. y may be
 * x (in place). */
static inline T NAME(exp_shifted)(T* y, const T* x, T shift, int64_t n, int64_t width)
{
    T lanes[LANES], total = 0;
    for (int k = 0; k < LANES; k++) lanes[k] = 0;
    int64_t head = width / LANES * LANES;
    for (int64_t j = 0; j < head; j += LANES)
        #pragma omp simd
        for (int k = 0; k < LANES; k++) {
            T e = j + k < n ? EXP(x[j + k] - shift) : 0;
            y[j + k] = e;
            lanes[k] += e;
        }
    for (int64_t j = head; j < width; j++) {
        y[j] = j < n ? EXP(x[j] - shift) : 0;
        total += y[j];
    }
    for (int k = 0; k < LANES; k++) total += lanes[k];
    return total;
}

void NAME(lg_softmax)(T* y, const T* x, int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++) {
        const T* xr = x + r * cols;
        T* yr = y + r * cols;
        T total = NAME(exp_shifted)(yr, xr, NAME(row_max)(xr, cols, cols), cols, cols);
        #pragma omp simd
        for (int64_t j = 0; j < cols; j++) yr[j] /= total;
    }
}

void NAME(lg_log_softmax)(T* y, const T* x, int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++) {
        const T* xr = x + r * cols;
        T* yr = y + r * cols;
        T peak = NAME(row_max)(xr, cols, cols);
        T log_total = LOG(NAME(exp_shifted)(yr, xr, peak, cols, cols));
        #pragma omp simd
        for (int64_t j = 0; j < cols; j++) yr[j] = (xr[j] - peak) - log_total;
    }
}

/* Attention probabilities in place over scores (rows, S), row r the query r % L: with
 * causal set, query i sees keys j <= i and the others get 0. A row whose largest score is
 * not finite is shifted by 0 (not inf - inf = NaN), and one that attends to nothing (all
 * -inf) gives zeros, as in cpu.py's _attention. */
void NAME(lg_attention_softmax)(T* s, int64_t rows, int64_t L, int64_t S, int64_t causal)
{
    for (int64_t r = 0; r < rows; r++) {
        T* sr = s + r * S;
        int64_t seen = causal && r % L + 1 < S ? r % L + 1 : S;  /* keys 0 .. seen-1 */
        int64_t width = (seen + LANES - 1) / LANES * LANES;
        width = width < S ? width : S;
        T peak = NAME(row_max)(sr, seen, width);
        if (!isfinite(peak)) peak = 0;
        T total = NAME(exp_shifted)(sr, sr, peak, seen, width);
        T scale = total == 0 ? (T)1 : (T)1 / total;
        #pragma omp simd
        for (int64_t j = 0; j < width; j++) sr[j] *= scale;
        for (int64_t j = width; j < S; j++) sr[j] = 0;
    }
}

/* Cross-entropy of logits x (rows, cols) against class indices, without class weights or
 * label smoothing: loss_r = log(sum_j exp(x_rj)) - x_r,t (0 where t == ignore_index, and
 * NaN for a class outside 0 .. cols-1, which the caller has ruled out), probs = softmax(x),
 * counted_r = 1 for the rows that count, else 0. */
void NAME(lg_cross_entropy)(T* loss, T* probs, T* counted, const T* x, const int64_t* target,
                            int64_t rows, int64_t cols, int64_t ignore_index)
{
    for (int64_t r = 0; r < rows; r++) {
        const T* xr = x + r * cols;
        T* pr = probs + r * cols;
        T peak = NAME(row_max)(xr, cols, cols);
        T total = NAME(exp_shifted)(pr, xr, peak, cols, cols);
        #pragma omp simd
        for (int64_t j = 0; j < cols; j++) pr[j] /= total;
        int64_t t = target[r];
        int valid = t != ignore_index;
        counted[r] = valid ? 1 : 0;
        if (!valid) loss[r] = 0;
        else if (t < 0 || t >= cols) loss[r] = (T)NAN;
        else loss[r] = LOG(total) - (xr[t] - peak);
    }
}

/* Its gradient: gx_r = (probs_r - onehot(t_r)) * scale_r, and 0 for ignored rows; scale
 * has one value per row (scale_step 1) or one for all (scale_step 0). */
void NAME(lg_cross_entropy_backward)(T* gx, const T* probs, const int64_t* target,
                                     const T* scale, int64_t scale_step, int64_t rows,
                                     int64_t cols, int64_t ignore_index)
{
    for (int64_t r = 0; r < rows; r++) {
        const T* pr = probs + r * cols;
        T* gr = gx + r * cols;
        int64_t t = target[r];
        T s = t != ignore_index ? scale[r * scale_step] : 0;
        #pragma omp simd
        for (int64_t j = 0; j < cols; j++) gr[j] = pr[j] * s;
        if (t >= 0 && t < cols) gr[t] -= s;
    }
}
