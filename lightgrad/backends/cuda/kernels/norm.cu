// norm.cu: layer norm (forward and backward), RMS norm and batch norm (NumPy twins:
// CPUBackend.layer_norm, layer_norm_backward, rms_norm, batch_norm_stats and batch_norm in
// backends/cpu.py, whose formulas and operation order these kernels follow).
//
// Row kernels normalise rows of K elements (the trailing axes); a row is folded by one warp
// (blockDim = (32, rows per block)) or by a whole block (blockDim.y == 1), with exact two-pass
// statistics: the mean first, then the mean of squared deviations. Element k of row r is
// read through the row-major index r * K + k of the input's layout, so views need no copies.
// Half types are stored in 16 bits and computed in float.
#include "prelude.cuh"

// Row r's exact two-pass statistics, folded by the threads along x: the mean first, then
// the mean of squared deviations (the biased variance).
template <class T, class A>
__device__ __forceinline__ void row_mean_var(i64 r, i64 K, const T* x, lg_layout lx,
                                             A* scratch, A& mean, A& var) {
    A sum = A(0);
    for (i64 k = threadIdx.x; k < K; k += blockDim.x) sum += A(x[lg_offset(lx, r * K + k)]);
    mean = lg_row_sum(sum, scratch) / A(K);
    A squares = A(0);
    for (i64 k = threadIdx.x; k < K; k += blockDim.x) {
        A d = A(x[lg_offset(lx, r * K + k)]) - mean;
        squares += d * d;
    }
    var = lg_row_sum(squares, scratch) / A(K);
}

// y = (x - mean) * rstd * weight + bias; mean and rstd = 1 / sqrt(var + eps) per row.
template <class T>
__device__ void layer_norm(i64 M, i64 K, const T* x, lg_layout lx, const T* weight,
                           const T* bias, double eps, T* y, T* mean_out, T* rstd_out) {
    typedef typename lg_compute<T>::type A;
    __shared__ A scratch[32];
    LG_ROWS(r, M) {
        A mean, var;
        row_mean_var(r, K, x, lx, scratch, mean, var);
        A rstd = A(1) / lg_sqrt(var + A(eps));
        for (i64 k = threadIdx.x; k < K; k += blockDim.x) {
            A v = (A(x[lg_offset(lx, r * K + k)]) - mean) * rstd;
            if (weight) v *= A(weight[k]);
            if (bias) v += A(bias[k]);
            y[r * K + k] = T(v);
        }
        if (threadIdx.x == 0) {
            mean_out[r] = T(mean);
            rstd_out[r] = T(rstd);
        }
    }
}

// dx = rstd * (gxhat - mean(gxhat) - xhat * mean(gxhat * xhat)), gxhat = g * weight.
template <class T>
__device__ void layer_norm_backward(i64 M, i64 K, const T* g, lg_layout lg, const T* x,
                                    lg_layout lx, const T* weight, const T* mean,
                                    const T* rstd, T* dx) {
    typedef typename lg_compute<T>::type A;
    __shared__ A scratch[32];
    LG_ROWS(r, M) {
        A mu = A(mean[r]), rs = A(rstd[r]);
        A sum_g = A(0), sum_gx = A(0);
        for (i64 k = threadIdx.x; k < K; k += blockDim.x) {
            A xhat = (A(x[lg_offset(lx, r * K + k)]) - mu) * rs;
            A gxhat = A(g[lg_offset(lg, r * K + k)]);
            if (weight) gxhat *= A(weight[k]);
            sum_g += gxhat;
            sum_gx += gxhat * xhat;
        }
        A mean_g = lg_row_sum(sum_g, scratch) / A(K);
        A proj = lg_row_sum(sum_gx, scratch) / A(K);
        for (i64 k = threadIdx.x; k < K; k += blockDim.x) {
            A xhat = (A(x[lg_offset(lx, r * K + k)]) - mu) * rs;
            A gxhat = A(g[lg_offset(lg, r * K + k)]);
            if (weight) gxhat *= A(weight[k]);
            dx[r * K + k] = T(((gxhat - mean_g) - xhat * proj) * rs);
        }
    }
}

// Column sums of g * xhat (dweight, when dweight is not null) and of g (dbias) over the
// rows of one chunk: block (32, 8) owns 32 columns, each row of threads a strided run of
// rows; the 8 partial sums of a column are added in shared memory. Chunk c writes row c
// of the (chunks, K) outputs.
template <class T, class A>
__device__ void layer_norm_param_grads(i64 M, i64 K, i64 chunk_rows, const T* g, lg_layout lg,
                                       const T* x, lg_layout lx, const T* mean, const T* rstd,
                                       A* dweight, A* dbias) {
    __shared__ A part_w[8][33], part_b[8][33];
    i64 k = i64(blockIdx.x) * 32 + threadIdx.x;
    i64 start = i64(blockIdx.y) * chunk_rows;
    i64 stop = start + chunk_rows < M ? start + chunk_rows : M;
    A sum_w = A(0), sum_b = A(0);
    if (k < K) {
        for (i64 r = start + threadIdx.y; r < stop; r += blockDim.y) {
            A gv = A(g[lg_offset(lg, r * K + k)]);
            sum_b += gv;
            if (dweight) sum_w += gv * ((A(x[lg_offset(lx, r * K + k)]) - A(mean[r])) *
                                        A(rstd[r]));
        }
    }
    part_w[threadIdx.y][threadIdx.x] = sum_w;
    part_b[threadIdx.y][threadIdx.x] = sum_b;
    __syncthreads();
    if (threadIdx.y == 0 && k < K) {
        for (int i = 1; i < int(blockDim.y); ++i) {
            sum_w += part_w[i][threadIdx.x];
            sum_b += part_b[i][threadIdx.x];
        }
        if (dweight) dweight[blockIdx.y * K + k] = sum_w;
        dbias[blockIdx.y * K + k] = sum_b;
    }
}

// y = x * rstd * weight, rstd = 1 / sqrt(mean(x^2) + eps) per row.
template <class T>
__device__ void rms_norm(i64 M, i64 K, const T* x, lg_layout lx, const T* weight, double eps,
                         T* y, T* rstd_out) {
    typedef typename lg_compute<T>::type A;
    __shared__ A scratch[32];
    LG_ROWS(r, M) {
        A squares = A(0);
        for (i64 k = threadIdx.x; k < K; k += blockDim.x) {
            A v = A(x[lg_offset(lx, r * K + k)]);
            squares += v * v;
        }
        A rstd = A(1) / lg_sqrt(lg_row_sum(squares, scratch) / A(K) + A(eps));
        for (i64 k = threadIdx.x; k < K; k += blockDim.x) {
            A v = A(x[lg_offset(lx, r * K + k)]) * rstd;
            if (weight) v *= A(weight[k]);
            y[r * K + k] = T(v);
        }
        if (threadIdx.x == 0) rstd_out[r] = T(rstd);
    }
}

// Per row: mean and biased variance (batch norm's statistics: a row is one channel, read
// through a layout that walks the batch and spatial axes).
template <class T>
__device__ void row_moments(i64 M, i64 K, const T* x, lg_layout lx, T* mean_out, T* var_out) {
    typedef typename lg_compute<T>::type A;
    __shared__ A scratch[32];
    LG_ROWS(r, M) {
        A mean, var;
        row_mean_var(r, K, x, lx, scratch, mean, var);
        if (threadIdx.x == 0) {
            mean_out[r] = T(mean);
            var_out[r] = T(var);
        }
    }
}

// y = x * scale + shift per channel c = (i / inner) % C of (N, C, inner):
// scale = weight / sqrt(var + eps), shift = bias - mean * scale.
template <class T>
__device__ void batch_norm(i64 n, i64 C, i64 inner, const T* x, lg_layout lx, const T* weight,
                           const T* bias, const T* mean, const T* var, double eps, T* y) {
    typedef typename lg_compute<T>::type A;
    LG_GRID_STRIDE(i, n) {
        i64 c = (i / inner) % C;
        A scale = A(1) / lg_sqrt(A(var[c]) + A(eps));
        if (weight) scale = scale * A(weight[c]);
        A shift = bias ? A(bias[c]) - A(mean[c]) * scale : -A(mean[c]) * scale;
        y[i] = T(A(x[lg_offset(lx, i)]) * scale + shift);
    }
}

#define NORM_KERNELS(S, T, A)                                                                \
    extern "C" __global__ void layer_norm_##S(i64 M, i64 K, const T* x, lg_layout lx,        \
                                              const T* weight, const T* bias, double eps,    \
                                              T* y, T* mean, T* rstd) {                      \
        layer_norm<T>(M, K, x, lx, weight, bias, eps, y, mean, rstd);                        \
    }                                                                                        \
    extern "C" __global__ void layer_norm_backward_##S(i64 M, i64 K, const T* g,             \
                                                       lg_layout lg, const T* x,             \
                                                       lg_layout lx, const T* weight,        \
                                                       const T* mean, const T* rstd,         \
                                                       T* dx) {                              \
        layer_norm_backward<T>(M, K, g, lg, x, lx, weight, mean, rstd, dx);                  \
    }                                                                                        \
    extern "C" __global__ void layer_norm_param_grads_##S(                                   \
            i64 M, i64 K, i64 chunk_rows, const T* g, lg_layout lg, const T* x,              \
            lg_layout lx, const T* mean, const T* rstd, A* dweight, A* dbias) {              \
        layer_norm_param_grads<T, A>(M, K, chunk_rows, g, lg, x, lx, mean, rstd, dweight,    \
                                     dbias);                                                 \
    }                                                                                        \
    extern "C" __global__ void rms_norm_##S(i64 M, i64 K, const T* x, lg_layout lx,          \
                                            const T* weight, double eps, T* y, T* rstd) {    \
        rms_norm<T>(M, K, x, lx, weight, eps, y, rstd);                                      \
    }                                                                                        \
    extern "C" __global__ void row_moments_##S(i64 M, i64 K, const T* x, lg_layout lx,       \
                                               T* mean, T* var) {                            \
        row_moments<T>(M, K, x, lx, mean, var);                                              \
    }                                                                                        \
    extern "C" __global__ void batch_norm_##S(i64 n, i64 C, i64 inner, const T* x,           \
                                              lg_layout lx, const T* weight, const T* bias,  \
                                              const T* mean, const T* var, double eps,       \
                                              T* y) {                                        \
        batch_norm<T>(n, C, inner, x, lx, weight, bias, mean, var, eps, y);                  \
    }
LG_NN_FLOAT_TYPES(NORM_KERNELS)
