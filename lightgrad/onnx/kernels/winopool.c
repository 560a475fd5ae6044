/* A stride-1 3x3 convolution followed by (relu and) a 2x2, stride-2 max pool, by Winograd
 * F(2x2, 3x3), for the ONNX replay plan (lightgrad/onnx/plan_conv.py). F(2x2, 3x3) computes
 * the output in 2x2 tiles, and the tiles of an even-sized output are exactly the pool's
 * windows: the output transform ends in the max of its tile (plus the bias, then maybe
 * relu), so the convolution's full-size output is never written.
 *
 * The plan keeps the input zero-padded (n, c, hp, wp), so every 4x4 input tile lies inside
 * it: tile (ty, tx) reads padded rows 2 ty .. 2 ty + 3, columns 2 tx .. 2 tx + 3.
 * The input transform writes V[e][c][t] = (B^T d B)[e] for the 16 entries e (planes ``ve``
 * elements apart, t = (n, ty, tx)); the plan runs the 16 GEMMs M[e] = U[e] @ V[e] (U =
 * G g G^T, transformed once at plan time); the output transform reads M[e][o][t] (planes
 * ``me`` apart). The transforms are those of the backend's Winograd convolution
 * (backends/native/conv.c), laid out for this case: the column half of B^T d B runs along
 * a whole padded row (one vector), and the output of a (n, o) plane is one contiguous run
 * of tiles. */
#include <stdint.h>
#include <string.h>

/* One output tile A^T m A (entry e of m at m[e * stride]) pooled: the max of its 2x2
 * values plus the bias, at least ``floor`` (0 for relu, else -inf); a NaN in the tile gives
 * NaN (like np.maximum). */
static inline float pool_tile(const float *m, int64_t stride, float bias, float floor) {
    float s[2][4];
    for (int q = 0; q < 4; q++) {
        float m0 = m[q * stride], m1 = m[(4 + q) * stride], m2 = m[(8 + q) * stride],
              m3 = m[(12 + q) * stride];
        s[0][q] = m0 + m1 + m2;
        s[1][q] = m1 - m2 - m3;
    }
    float y00 = s[0][0] + s[0][1] + s[0][2], y01 = s[0][1] - s[0][2] - s[0][3],
          y10 = s[1][0] + s[1][1] + s[1][2], y11 = s[1][1] - s[1][2] - s[1][3];
    float a = y00 > y01 ? y00 : y01, b = y10 > y11 ? y10 : y11;
    float p = (a > b ? a : b) + bias;
    p = p > floor ? p : floor;
    int nan = (y00 != y00) | (y01 != y01) | (y10 != y10) | (y11 != y11);
    return nan ? y00 + y01 + y10 + y11 : p;
}

/* Rows of a plane's pooled tiles y[t0 : t0 + len] (t = ty * tw + tx) into dst (rows dh
 * apart). */
static inline void store_tiles(float *d, const float *y, int64_t t0, int64_t len, int64_t tw,
                               int64_t dh) {
    if (dh == tw) {
        memcpy(d + t0, y, (size_t)len * sizeof(float));
        return;
    }
    int64_t i = t0, end = t0 + len, ty = t0 / tw, tx = t0 % tw;
    while (i < end) { /* row by row: no division per element */
        int64_t run = tw - tx < end - i ? tw - tx : end - i;
        memcpy(d + ty * dh + tx, y + (i - t0), (size_t)run * sizeof(float));
        i += run;
        ty++;
        tx = 0;
    }
}

void lg_onnx_winopool_in_f32(const float *xp, float *V, const int64_t *dims) {
    /* dims: n, c, hp, wp, th, tw, ve */
    const int64_t n = dims[0], c = dims[1], hp = dims[2], wp = dims[3], th = dims[4],
                  tw = dims[5], ve = dims[6];
    const int64_t tiles = n * th * tw, half = tw + 1;
    float ev[4][512], od[4][512]; /* a tile row's 4 input rows: even and odd columns */
    if (half > 512) return; /* the plan only takes narrower images */
    for (int64_t b = 0; b < n; b++)
        for (int64_t ch = 0; ch < c; ch++) {
            const float *plane = xp + (b * c + ch) * hp * wp;
            for (int64_t ty = 0; ty < th; ty++) {
                for (int r = 0; r < 4; r++) {
                    const float *row = plane + (2 * ty + r) * wp;
                    for (int64_t j = 0; j < half; j++) {
                        ev[r][j] = row[2 * j];
                        od[r][j] = row[2 * j + 1];
                    }
                }
                float *out = V + ch * tiles + (b * th + ty) * tw;
                for (int q = 0; q < 2; q++) { /* B^T d on even (q 0) and odd columns */
                    float(*z)[512] = q ? od : ev;
                    for (int64_t j = 0; j < half; j++) {
                        float z0 = z[0][j], z1 = z[1][j], z2 = z[2][j], z3 = z[3][j];
                        z[0][j] = z0 - z2;
                        z[3][j] = z1 - z3;
                        z[1][j] = z1 + z2;
                        z[2][j] = z2 - z1;
                    }
                }
                for (int r = 0; r < 4; r++) { /* (B^T d) B: unit-stride runs of tiles */
                    const float *e = ev[r], *o = od[r];
                    float *o0 = out + (4 * r) * ve, *o1 = o0 + ve, *o2 = o1 + ve,
                          *o3 = o2 + ve;
                    for (int64_t tx = 0; tx < tw; tx++) {
                        o0[tx] = e[tx] - e[tx + 1];
                        o1[tx] = o[tx] + e[tx + 1];
                        o2[tx] = e[tx + 1] - o[tx];
                        o3[tx] = o[tx] - o[tx + 1];
                    }
                }
            }
        }
}

void lg_onnx_winopool_out_f32(const float *M, const float *bias, float *dst,
                              const int64_t *dims) {
    /* dims: n, o, th, tw, me, dst's strides (elements) of n, o, row, and relu */
    const int64_t n = dims[0], o = dims[1], th = dims[2], tw = dims[3], me = dims[4],
                  dn = dims[5], dc = dims[6], dh = dims[7], relu = dims[8];
    const int64_t tiles = n * th * tw;
    const float floor = relu ? 0.0f : -__builtin_inff();
    for (int64_t b = 0; b < n; b++)
        for (int64_t k = 0; k < o; k++) {
            const float bk = bias ? bias[k] : 0.0f;
            const float *m = M + k * tiles + b * th * tw;
            float *d = dst + b * dn + k * dc;
            for (int64_t t0 = 0; t0 < th * tw; t0 += 256) { /* a run of tiles, vectorised */
                int64_t len = th * tw - t0 < 256 ? th * tw - t0 : 256;
                float y[256];
                _Pragma("omp simd")
                for (int64_t t = 0; t < len; t++) y[t] = pool_tile(m + t0 + t, me, bk, floor);
                store_tiles(d, y, t0, len, tw, dh);
            }
        }
}

