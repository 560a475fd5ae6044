/* The body of norm.c, written once for a real type T: norm.c includes it for float and for
 * double, with NAME(f) naming the function f_f32 or f_f64 and SQRT the square root. */

void NAME(lg_layer_norm)(T* y, T* mean_out, T* rstd_out, const T* x, const T* w,
                         const T* b, int64_t rows, int64_t cols, double eps)
{
    for (int64_t r = 0; r < rows; r++) {
        const T* xr = x + r * cols;
        T* yr = y + r * cols;
        T sum = 0, sq = 0;
        #pragma omp simd reduction(+:sum)
        for (int64_t j = 0; j < cols; j++) sum += xr[j];
        T mean = sum / (T)cols;
        #pragma omp simd reduction(+:sq)
        for (int64_t j = 0; j < cols; j++) sq += (xr[j] - mean) * (xr[j] - mean);
        T rstd = (T)1 / SQRT(sq / (T)cols + (T)eps);
        mean_out[r] = mean;
        rstd_out[r] = rstd;
        if (w && b) {
            #pragma omp simd
            for (int64_t j = 0; j < cols; j++) yr[j] = (xr[j] - mean) * rstd * w[j] + b[j];
        } else if (w) {
            #pragma omp simd
            for (int64_t j = 0; j < cols; j++) yr[j] = (xr[j] - mean) * rstd * w[j];
        } else {
            #pragma omp simd
            for (int64_t j = 0; j < cols; j++) yr[j] = (xr[j] - mean) * rstd + (b ? b[j] : 0);
        }
    }
}

void NAME(lg_layer_norm_backward)(T* gx, T* gw, T* gb, const T* g, const T* x, const T* w,
                                  const T* mean, const T* rstd, int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++) {
        const T* gr = g + r * cols;
        const T* xr = x + r * cols;
        T* gxr = gx + r * cols;
        T mu = mean[r], rs = rstd[r], sum_g = 0, sum_gx = 0;
        #pragma omp simd reduction(+:sum_g, sum_gx)
        for (int64_t j = 0; j < cols; j++) {
            T xhat = (xr[j] - mu) * rs;
            T gxhat = w ? gr[j] * w[j] : gr[j];
            sum_g += gxhat;
            sum_gx += gxhat * xhat;
            gb[j] += gr[j];
            if (gw) gw[j] += gr[j] * xhat;
        }
        T centre = sum_g / (T)cols, proj = sum_gx / (T)cols;
        #pragma omp simd
        for (int64_t j = 0; j < cols; j++) {
            T xhat = (xr[j] - mu) * rs;
            T gxhat = w ? gr[j] * w[j] : gr[j];
            gxr[j] = (gxhat - centre - xhat * proj) * rs;
        }
    }
}

void NAME(lg_rms_norm)(T* y, T* rstd_out, const T* x, const T* w, int64_t rows, int64_t cols,
                       double eps)
{
    for (int64_t r = 0; r < rows; r++) {
        const T* xr = x + r * cols;
        T* yr = y + r * cols;
        T sq = 0;
        #pragma omp simd reduction(+:sq)
        for (int64_t j = 0; j < cols; j++) sq += xr[j] * xr[j];
        T rstd = (T)1 / SQRT(sq / (T)cols + (T)eps);
        rstd_out[r] = rstd;
        #pragma omp simd
        for (int64_t j = 0; j < cols; j++) yr[j] = xr[j] * rstd * (w ? w[j] : 1);
    }
}
