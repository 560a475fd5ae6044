/* Convolution and max pooling helpers for the CPU backend (cpu_conv.py calls them).
 *
 * im2col copies what each kernel tap of a 2-d convolution reads from an image into the
 * rows of a column matrix cols (C * kh * kw, rows * Wo), for nb images (their matrices cn
 * elements apart, the images sn elements apart): row (c, i, j) holds input channel c under
 * tap (i, j) for output rows oh0 .. oh0 + rows - 1, zero where the tap reads padding. The
 * convolution of that image is then one GEMM: weight (O, C*kh*kw) @ cols.
 * col2im is its transpose: it adds each column entry back to the input pixel it was read
 * from (the input gradient). Any stride, padding and dilation; the input is read through
 * element strides (sc, sh, sw), so channel-major or channel-last layouts need no copy.
 *
 * Max pooling takes P = N * C contiguous H x W planes and writes the maximum of each
 * window and its flat index ih * W + iw (NaN wins, the first maximum wins ties: PyTorch's
 * rules); its backward adds each output gradient at its index.
 *
 * Winograd F(2x2, 3x3), at the end, runs stride-1 3x3 convolutions with fewer
 * multiplications.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Copy n elements of 32-byte chunks (the last chunk overlapping the one before): short rows
 * cost a couple of vector moves instead of a loop with a remainder. */
static inline void copy_run(void *dst, const void *src, int64_t n, int64_t size) {
    int64_t bytes = n * size;
    char *d = dst;
    const char *s = src;
    if (bytes < 32) {
        memcpy(d, s, (size_t)bytes);
        return;
    }
    int64_t k = 0;
    for (; k + 32 <= bytes; k += 32) memcpy(d + k, s + k, 32);
    if (k < bytes) memcpy(d + bytes - 32, s + bytes - 32, 32);
}

/* dst[k] += src[k] for k < n: AVX-512 masks the tail of short rows, where a plain loop
 * would finish them one element at a time (LANES elements a vector, PS the intrinsics'
 * type suffix). */
#ifdef __AVX512F__
#include <immintrin.h>
#define DEFINE_ADD_RUN(T, SUF, LANES, MASK, PS)                                            \
static inline void add_run_##SUF(T *dst, const T *src, int64_t n) {                        \
    int64_t k = 0;                                                                         \
    for (; k + LANES <= n; k += LANES)                                                     \
        _mm512_storeu_##PS(dst + k, _mm512_add_##PS(_mm512_loadu_##PS(dst + k),            \
                                                    _mm512_loadu_##PS(src + k)));          \
    if (k < n) {                                                                           \
        MASK m = (MASK)((1u << (n - k)) - 1);                                              \
        _mm512_mask_storeu_##PS(dst + k, m,                                                \
                                _mm512_add_##PS(_mm512_maskz_loadu_##PS(m, dst + k),       \
                                                _mm512_maskz_loadu_##PS(m, src + k)));     \
    }                                                                                      \
}
#else
#define DEFINE_ADD_RUN(T, SUF, LANES, MASK, PS)                                            \
static inline void add_run_##SUF(T *dst, const T *src, int64_t n) {                        \
    for (int64_t k = 0; k < n; k++) dst[k] += src[k];                                      \
}
#endif
DEFINE_ADD_RUN(float, f32, 16, __mmask16, ps)
DEFINE_ADD_RUN(double, f64, 8, __mmask8, pd)

/* The taps t in [*lo, *hi) of a pooling window starting at s that land inside [0, n). */
static inline void taps_inside(int64_t s, int64_t n, int64_t k, int64_t d, int64_t *lo,
                               int64_t *hi) {
    int64_t a = s < 0 ? (-s + d - 1) / d : 0;
    int64_t b = n - s > 0 ? (n - s + d - 1) / d : 0;
    *lo = a < k ? a : k;
    *hi = b < k ? b : k;
    if (*hi < *lo) *hi = *lo;
}

/* The outputs ow in [*lo, *hi) whose tap at column ow * st + off lands inside [0, W). */
static inline void columns_inside(int64_t off, int64_t W, int64_t Wo, int64_t st,
                                  int64_t *lo, int64_t *hi) {
    int64_t a = off < 0 ? (-off + st - 1) / st : 0;
    int64_t b = W - off > 0 ? (W - off + st - 1) / st : 0;
    *lo = a < Wo ? a : Wo;
    *hi = b < Wo ? b : Wo;
    if (*hi < *lo) *hi = *lo;
}

/* im2col and col2im of one image go through a zero-padded copy of the input rows the block
 * reads, ``scratch`` (C, Hs, Ws): then every tap reads full rows, with no bounds checks.
 * Padded row pr, column pc is input row pr + r0, column pc - pl (r0 = oh0 * st_h - pt);
 * padded columns [lo, hi) are the ones inside the input.
 * lg_im2col / lg_col2im take the geometry as int64 g {nb, cn, sn, C, H, W, sc, sh, sw, kh,
 * kw, st_h, st_w, pt, pl, dh, dw, Wo, oh0, rows} (one pointer argument is far cheaper to
 * pass through ctypes than twenty); conv_geom_of reads it once for both. */
typedef struct {
    int64_t C, H, W, sc, sh, sw, kh, kw, st_h, st_w, pl, dh, dw, Wo, rows;
    int64_t Hs, Ws, width, r0, lo, hi; /* derived: scratch's shape, a cols row's length, */
} conv_geom;                           /* the first padded row's input row, inside columns */

static inline conv_geom conv_geom_of(const int64_t *g) {
    conv_geom q = {.C = g[3], .H = g[4], .W = g[5], .sc = g[6], .sh = g[7], .sw = g[8],
                   .kh = g[9], .kw = g[10], .st_h = g[11], .st_w = g[12], .pl = g[14],
                   .dh = g[15], .dw = g[16], .Wo = g[17], .rows = g[19]};
    q.Hs = (q.rows - 1) * q.st_h + (q.kh - 1) * q.dh + 1;
    q.Ws = (q.Wo - 1) * q.st_w + (q.kw - 1) * q.dw + 1;
    q.width = q.rows * q.Wo;
    q.r0 = g[18] * q.st_h - g[13];
    q.lo = q.pl < q.Ws ? q.pl : q.Ws;
    q.hi = q.W + q.pl < q.Ws ? q.W + q.pl : q.Ws;
    return q;
}

/* The per-image helpers below stay calls: inlined into the loop over images, the geometry's
 * fields crowd out the registers the strided loops need (col2im at stride 2 ran 1.5x
 * slower). */
#define NOINLINE __attribute__((noinline))

#define DEFINE_CONV_KERNELS(T, SUF)                                                        \
NOINLINE static void pad_rows_##SUF(T *scratch, const T *x, const conv_geom q) {           \
    for (int64_t c = 0; c < q.C; c++)                                                      \
        for (int64_t r = 0; r < q.Hs; r++) {                                               \
            T *dst = scratch + (c * q.Hs + r) * q.Ws;                                      \
            int64_t ih = q.r0 + r;                                                         \
            if (ih < 0 || ih >= q.H) {                                                     \
                memset(dst, 0, (size_t)q.Ws * sizeof(T));                                  \
                continue;                                                                  \
            }                                                                              \
            const T *src = x + c * q.sc + ih * q.sh;                                       \
            for (int64_t pc = 0; pc < q.lo; pc++) dst[pc] = 0;                             \
            if (q.sw == 1)                                                                 \
                memcpy(dst + q.lo, src + (q.lo - q.pl),                                    \
                       (size_t)(q.hi - q.lo) * sizeof(T));                                 \
            else                                                                           \
                for (int64_t pc = q.lo; pc < q.hi; pc++)                                   \
                    dst[pc] = src[(pc - q.pl) * q.sw];                                     \
            for (int64_t pc = q.hi; pc < q.Ws; pc++) dst[pc] = 0;                          \
        }                                                                                  \
}                                                                                          \
                                                                                           \
/* Each row of cols against the padded row its entries come from (every st_w-th element):  \
 * copied into cols (im2col), or added back into scratch when add is set (col2im). */      \
NOINLINE static void tap_rows_##SUF(T *cols, T *scratch, const conv_geom q, int add) {     \
    for (int64_t c = 0; c < q.C; c++)                                                      \
        for (int64_t i = 0; i < q.kh; i++)                                                 \
            for (int64_t j = 0; j < q.kw; j++) {                                           \
                T *row = cols + ((c * q.kh + i) * q.kw + j) * q.width;                     \
                T *base = scratch + (c * q.Hs + i * q.dh) * q.Ws + j * q.dw;               \
                for (int64_t r = 0; r < q.rows; r++) {                                     \
                    T *col = row + r * q.Wo, *pad = base + r * q.st_h * q.Ws;              \
                    if (add && q.st_w == 1)                                                \
                        add_run_##SUF(pad, col, q.Wo);                                     \
                    else if (add)                                                          \
                        for (int64_t ow = 0; ow < q.Wo; ow++) pad[ow * q.st_w] += col[ow]; \
                    else if (q.st_w == 1)                                                  \
                        copy_run(col, pad, q.Wo, sizeof(T));                               \
                    else                                                                   \
                        for (int64_t ow = 0; ow < q.Wo; ow++) col[ow] = pad[ow * q.st_w];  \
                }                                                                          \
            }                                                                              \
}                                                                                          \
                                                                                           \
/* col2im of one image: the columns summed into a zeroed scratch, its inside added to x */ \
NOINLINE static void col2im_one_##SUF(T *x, const T *cols, T *scratch,                     \
                                      const conv_geom q) {                                 \
    memset(scratch, 0, (size_t)(q.C * q.Hs * q.Ws) * sizeof(T));                           \
    tap_rows_##SUF((T *)cols, scratch, q, 1); /* with add set, cols is only read */        \
    for (int64_t c = 0; c < q.C; c++)                                                      \
        for (int64_t r = 0; r < q.Hs; r++) {                                               \
            int64_t ih = q.r0 + r;                                                         \
            if (ih < 0 || ih >= q.H) continue;                                             \
            const T *src = scratch + (c * q.Hs + r) * q.Ws;                                \
            T *dst = x + c * q.sc + ih * q.sh;                                             \
            for (int64_t pc = q.lo; pc < q.hi; pc++) dst[(pc - q.pl) * q.sw] += src[pc];   \
        }                                                                                  \
}                                                                                          \
                                                                                           \
/* nb = g[0] images, their column matrices cn = g[1] elements apart, sn = g[2] for x */    \
void lg_im2col_##SUF(T *cols, const T *x, T *scratch, const int64_t *g) {                  \
    const conv_geom q = conv_geom_of(g);                                                   \
    for (int64_t n = 0; n < g[0]; n++) {                                                   \
        pad_rows_##SUF(scratch, x + n * g[2], q);                                          \
        tap_rows_##SUF(cols + n * g[1], scratch, q, 0);                                    \
    }                                                                                      \
}                                                                                          \
                                                                                           \
void lg_col2im_##SUF(T *x, const T *cols, T *scratch, const int64_t *g) {                  \
    const conv_geom q = conv_geom_of(g);                                                   \
    for (int64_t n = 0; n < g[0]; n++)                                                     \
        col2im_one_##SUF(x + n * g[2], cols + n * g[1], scratch, q);                       \
}                                                                                          \
                                                                                           \
static inline void pool_inside_##SUF(T *out, int64_t *index, const T *x, int64_t P,       \
                                     int64_t H, int64_t W, int64_t Ho, int64_t Wo,         \
                                     int64_t kh, int64_t kw, int64_t st_h, int64_t st_w,   \
                                     int64_t dh, int64_t dw) {                             \
    for (int64_t p = 0; p < P; p++)                                                        \
        for (int64_t oh = 0; oh < Ho; oh++)                                                \
            for (int64_t ow = 0; ow < Wo; ow++) {                                          \
                int64_t start = oh * st_h * W + ow * st_w, at = start;                     \
                const T *plane = x + p * H * W;                                            \
                T best = plane[start];                                                     \
                for (int64_t i = 0; i < kh; i++)                                           \
                    for (int64_t j = 0; j < kw; j++) {                                     \
                        int64_t q = start + i * dh * W + j * dw;                           \
                        T v = plane[q];                                                    \
                        if (v > best || v != v) { /* NaN wins, the first maximum stays */  \
                            best = v;                                                      \
                            at = q;                                                        \
                        }                                                                  \
                    }                                                                      \
                out[(p * Ho + oh) * Wo + ow] = best;                                       \
                index[(p * Ho + oh) * Wo + ow] = at;                                       \
            }                                                                              \
}                                                                                          \
                                                                                           \
void lg_max_pool2d_##SUF(T *out, int64_t *index, const T *x, int64_t P, int64_t H,         \
                         int64_t W, int64_t Ho, int64_t Wo, int64_t kh, int64_t kw,        \
                         int64_t st_h, int64_t st_w, int64_t pt, int64_t pl, int64_t dh,   \
                         int64_t dw) {                                                     \
    /* tap row i, column j of output row oh: a vectorisable pass over the columns ow in  \
     * [lo_j, hi_j) whose tap lands inside the row. */                                   \
    if (pt == 0 && pl == 0 && (Ho - 1) * st_h + (kh - 1) * dh < H &&                       \
        (Wo - 1) * st_w + (kw - 1) * dw < W) { /* every window inside: no bounds checks */ \
        if (kh == 2 && kw == 2 && dh == 1 && dw == 1) /* constants: unrolled 2x2 */       \
            pool_inside_##SUF(out, index, x, P, H, W, Ho, Wo, 2, 2, st_h, st_w, 1, 1);     \
        else                                                                               \
            pool_inside_##SUF(out, index, x, P, H, W, Ho, Wo, kh, kw, st_h, st_w, dh, dw); \
        return;                                                                            \
    }                                                                                      \
    int64_t bounds[2 * 64];                                                                \
    if (kw > 64) return; /* the caller routes wider windows to NumPy */                    \
    for (int64_t j = 0; j < kw; j++)                                                       \
        columns_inside(j * dw - pl, W, Wo, st_w, &bounds[2 * j], &bounds[2 * j + 1]);      \
    for (int64_t p = 0; p < P; p++) {                                                      \
        const T *plane = x + p * H * W;                                                    \
        for (int64_t oh = 0; oh < Ho; oh++) {                                              \
            T *best = out + (p * Ho + oh) * Wo;                                            \
            int64_t *at = index + (p * Ho + oh) * Wo;                                      \
            int64_t h0 = oh * st_h - pt, i0, i1;                                           \
            taps_inside(h0, H, kh, dh, &i0, &i1);                                          \
            for (int64_t ow = 0; ow < Wo; ow++) {                                          \
                best[ow] = -INFINITY;                                                      \
                at[ow] = -1;                                                               \
            }                                                                              \
            for (int64_t i = i0; i < i1; i++) {                                            \
                const T *row = plane + (h0 + i * dh) * W;                                  \
                for (int64_t j = 0; j < kw; j++) {                                         \
                    int64_t off = j * dw - pl, lo = bounds[2 * j], hi = bounds[2 * j + 1]; \
                    _Pragma("omp simd")                                                    \
                    for (int64_t ow = lo; ow < hi; ow++) {                                 \
                        int64_t q = ow * st_w + off;                                       \
                        T v = row[q];                                                      \
                        int take = (v > best[ow]) | (v != v); /* NaN wins */               \
                        best[ow] = take ? v : best[ow];                                    \
                        at[ow] = take ? (h0 + i * dh) * W + q : at[ow];                    \
                    }                                                                      \
                }                                                                          \
            }                                                                              \
            for (int64_t ow = 0; ow < Wo; ow++) /* all -inf: the first tap inside wins */  \
                if (at[ow] < 0) {                                                          \
                    int64_t w0 = ow * st_w - pl, j0, j1;                                   \
                    taps_inside(w0, W, kw, dw, &j0, &j1);                                  \
                    at[ow] = (h0 + i0 * dh) * W + w0 + j0 * dw;                            \
                }                                                                          \
        }                                                                                  \
    }                                                                                      \
}                                                                                          \
                                                                                           \
void lg_max_pool2d_backward_##SUF(T *dx, const T *g, const int64_t *index, int64_t P,      \
                                  int64_t HW, int64_t HoWo) {                              \
    memset(dx, 0, (size_t)(P * HW) * sizeof(T));                                           \
    for (int64_t p = 0; p < P; p++) {                                                      \
        T *plane = dx + p * HW;                                                            \
        const T *gp = g + p * HoWo;                                                        \
        const int64_t *ip = index + p * HoWo;                                              \
        for (int64_t o = 0; o < HoWo; o++) /* never outside the plane, whatever index */   \
            if ((uint64_t)ip[o] < (uint64_t)HW) plane[ip[o]] += gp[o];                     \
    }                                                                                      \
}

DEFINE_CONV_KERNELS(float, f32)
DEFINE_CONV_KERNELS(double, f64)

/* Winograd F(2x2, 3x3): a stride-1 3x3 convolution as 16 GEMMs over 4x4 input tiles, 2.25
 * times fewer multiplications than im2col + GEMM (Lavin & Gray, 2015). Tile t = (n, ty, tx)
 * of nb images reads input rows 2 ty - pt .. + 3, columns 2 tx - pl .. + 3 (zero outside)
 * and writes V[e][c][t] = (B^T d B)[e] for the 16 entries e (planes ``ve`` elements apart);
 * the GEMMs make M[e][o][t] = sum_c U[e][o][c] V[e][c][t] (U = G g G^T, from NumPy), and
 * the output transform writes the 2x2 outputs A^T m A (plus the bias) of each tile. The
 * input is C-contiguous (N, C, H, W) and so is the output. Loops run along a row of tiles,
 * which the compiler vectorises; tiles at the image's edges take the bounds-checked path. */
#define DEFINE_WINOGRAD(T, SUF)                                                            \
static inline void winograd_tile_in_##SUF(T *out, int64_t ve, T d[4][4]) {                 \
    T u[4][4];                                                                             \
    for (int q = 0; q < 4; q++) {                                                          \
        u[0][q] = d[0][q] - d[2][q];                                                       \
        u[1][q] = d[1][q] + d[2][q];                                                       \
        u[2][q] = d[2][q] - d[1][q];                                                       \
        u[3][q] = d[1][q] - d[3][q];                                                       \
    }                                                                                      \
    for (int r = 0; r < 4; r++) {                                                          \
        out[(4 * r + 0) * ve] = u[r][0] - u[r][2];                                         \
        out[(4 * r + 1) * ve] = u[r][1] + u[r][2];                                         \
        out[(4 * r + 2) * ve] = u[r][2] - u[r][1];                                         \
        out[(4 * r + 3) * ve] = u[r][1] - u[r][3];                                         \
    }                                                                                      \
}                                                                                          \
                                                                                           \
void lg_winograd_input_##SUF(T *V, const T *x, int64_t nb, int64_t ve, int64_t C,          \
                             int64_t H, int64_t W, int64_t pt, int64_t pl, int64_t th,     \
                             int64_t tw) {                                                 \
    int64_t tiles = nb * th * tw;                                                          \
    int64_t tx0 = (pl + 1) / 2, tx1 = (W + pl - 4) / 2 + 1; /* 0 <= 2tx - pl <= W - 4 */   \
    if (W + pl - 4 < 0) tx1 = 0;                                                           \
    if (tx0 > tw) tx0 = tw;                                                                \
    if (tx1 > tw) tx1 = tw;                                                                \
    if (tx1 < tx0) tx1 = tx0;                                                              \
    for (int64_t n = 0; n < nb; n++)                                                       \
        for (int64_t c = 0; c < C; c++) {                                                  \
            const T *plane = x + (n * C + c) * H * W;                                      \
            for (int64_t ty = 0; ty < th; ty++) {                                          \
                int64_t ih = 2 * ty - pt;                                                  \
                T *row = V + c * tiles + (n * th + ty) * tw;                               \
                int inside = ih >= 0 && ih + 4 <= H;                                       \
                for (int64_t tx = 0; tx < tw; tx++) {                                      \
                    if (inside && tx == tx0) tx = tx1; /* the interior: below */           \
                    if (tx >= tw) break;                                                   \
                    int64_t iw = 2 * tx - pl;                                              \
                    T d[4][4];                                                             \
                    for (int r = 0; r < 4; r++)                                            \
                        for (int q = 0; q < 4; q++) {                                      \
                            int64_t a = ih + r, b = iw + q;                                \
                            d[r][q] = a >= 0 && a < H && b >= 0 && b < W                   \
                                ? plane[a * W + b] : 0;                                    \
                        }                                                                  \
                    winograd_tile_in_##SUF(row + tx, ve, d);                               \
                }                                                                          \
                if (!inside) continue;                                                     \
                const T *r0 = plane + ih * W - pl, *r1 = r0 + W, *r2 = r1 + W, *r3 = r2 + W; \
                _Pragma("omp simd")                                                        \
                for (int64_t tx = tx0; tx < tx1; tx++) {                                   \
                    int64_t b = 2 * tx;                                                    \
                    T d[4][4] = {{r0[b], r0[b + 1], r0[b + 2], r0[b + 3]},                 \
                                 {r1[b], r1[b + 1], r1[b + 2], r1[b + 3]},                 \
                                 {r2[b], r2[b + 1], r2[b + 2], r2[b + 3]},                 \
                                 {r3[b], r3[b + 1], r3[b + 2], r3[b + 3]}};                \
                    winograd_tile_in_##SUF(row + tx, ve, d);                               \
                }                                                                          \
            }                                                                              \
        }                                                                                  \
}                                                                                          \
                                                                                           \
static inline void winograd_tile_out_##SUF(const T *m, int64_t ve, T b, T y[2][2]) {       \
    T s[2][4];                                                                             \
    for (int q = 0; q < 4; q++) {                                                          \
        T m0 = m[q * ve], m1 = m[(4 + q) * ve], m2 = m[(8 + q) * ve], m3 = m[(12 + q) * ve]; \
        s[0][q] = m0 + m1 + m2;                                                            \
        s[1][q] = m1 - m2 - m3;                                                            \
    }                                                                                      \
    for (int r = 0; r < 2; r++) {                                                          \
        y[r][0] = s[r][0] + s[r][1] + s[r][2] + b;                                         \
        y[r][1] = s[r][1] - s[r][2] - s[r][3] + b;                                         \
    }                                                                                      \
}                                                                                          \
                                                                                           \
void lg_winograd_output_##SUF(T *y, const T *M, const T *bias, int64_t nb, int64_t ve,     \
                              int64_t O, int64_t Ho, int64_t Wo, int64_t th, int64_t tw) { \
    int64_t tiles = nb * th * tw, full = Wo / 2; /* tiles with both columns inside */      \
    for (int64_t n = 0; n < nb; n++)                                                       \
        for (int64_t o = 0; o < O; o++) {                                                  \
            T *plane = y + (n * O + o) * Ho * Wo, b = bias ? bias[o] : 0;                  \
            for (int64_t ty = 0; ty < th; ty++) {                                          \
                const T *m = M + o * tiles + (n * th + ty) * tw;                           \
                T *y0 = plane + 2 * ty * Wo;                                               \
                if (2 * ty + 1 < Ho) {                                                     \
                    T *y1 = y0 + Wo;                                                       \
                    _Pragma("omp simd")                                                    \
                    for (int64_t tx = 0; tx < full; tx++) {                                \
                        T t[2][2];                                                         \
                        winograd_tile_out_##SUF(m + tx, ve, b, t);                         \
                        y0[2 * tx] = t[0][0];                                              \
                        y0[2 * tx + 1] = t[0][1];                                          \
                        y1[2 * tx] = t[1][0];                                              \
                        y1[2 * tx + 1] = t[1][1];                                          \
                    }                                                                      \
                }                                                                          \
                for (int64_t tx = 2 * ty + 1 < Ho ? full : 0; tx < tw; tx++) {             \
                    T t[2][2];                                                             \
                    winograd_tile_out_##SUF(m + tx, ve, b, t);                             \
                    for (int r = 0; r < 2 && 2 * ty + r < Ho; r++)                         \
                        for (int q = 0; q < 2 && 2 * tx + q < Wo; q++)                     \
                            plane[(2 * ty + r) * Wo + 2 * tx + q] = t[r][q];               \
                }                                                                          \
            }                                                                              \
        }                                                                                  \
}                                                                                          \
                                                                                           \
static inline void winograd_tile_grad_##SUF(T *out, int64_t ve, T g00, T g01, T g10,       \
                                            T g11) {                                       \
    T h[4][2] = {{g00, g01}, {g00 + g10, g01 + g11}, {g00 - g10, g01 - g11}, {-g10, -g11}}; \
    for (int a = 0; a < 4; a++) {                                                          \
        out[(4 * a + 0) * ve] = h[a][0];                                                   \
        out[(4 * a + 1) * ve] = h[a][0] + h[a][1];                                         \
        out[(4 * a + 2) * ve] = h[a][0] - h[a][1];                                         \
        out[(4 * a + 3) * ve] = -h[a][1];                                                  \
    }                                                                                      \
}                                                                                          \
                                                                                           \
/* The weight gradient's transform of the output gradient g (nb, O, Ho, Wo): 2x2 tiles     \
 * (zero outside) as A g A^T, laid out like V; then dW = G^T (sum over tiles of the        \
 * transformed g times V, entry by entry) G. */                                            \
void lg_winograd_grad_##SUF(T *Gt, const T *g, int64_t nb, int64_t ve, int64_t O,          \
                            int64_t Ho, int64_t Wo, int64_t th, int64_t tw) {              \
    int64_t tiles = nb * th * tw, full = Wo / 2;                                           \
    for (int64_t n = 0; n < nb; n++)                                                       \
        for (int64_t o = 0; o < O; o++) {                                                  \
            const T *plane = g + (n * O + o) * Ho * Wo;                                    \
            for (int64_t ty = 0; ty < th; ty++) {                                          \
                T *row = Gt + o * tiles + (n * th + ty) * tw;                              \
                const T *y0 = plane + 2 * ty * Wo, *y1 = y0 + Wo;                          \
                int two = 2 * ty + 1 < Ho;                                                 \
                int64_t tx = 0;                                                            \
                if (two) {                                                                 \
                    _Pragma("omp simd")                                                    \
                    for (tx = 0; tx < full; tx++)                                          \
                        winograd_tile_grad_##SUF(row + tx, ve, y0[2 * tx], y0[2 * tx + 1], \
                                                 y1[2 * tx], y1[2 * tx + 1]);              \
                }                                                                          \
                for (; tx < tw; tx++) {                                                    \
                    int right = 2 * tx + 1 < Wo;                                           \
                    winograd_tile_grad_##SUF(row + tx, ve, y0[2 * tx],                     \
                                             right ? y0[2 * tx + 1] : 0,                   \
                                             two ? y1[2 * tx] : 0,                         \
                                             two && right ? y1[2 * tx + 1] : 0);           \
                }                                                                          \
            }                                                                              \
        }                                                                                  \
}

DEFINE_WINOGRAD(float, f32)
DEFINE_WINOGRAD(double, f64)
