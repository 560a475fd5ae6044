/* 2x2, stride-2 max pool (then maybe relu) of float32 planes, for the ONNX replay plan
 * (lightgrad/onnx/plan.py). Rows of src and dst are contiguous; the other strides (in
 * elements) are free (the sizes come as one int64 array: one ctypes argument, not eleven),
 * so dst can be the inside of the next convolution's padded input. Each output row is the
 * max of two input rows (a contiguous, vectorised pass), then of column pairs. Branch-free
 * (comparisons of random data would mispredict); a window holding a NaN gives NaN, like
 * np.maximum (a row with one is patched afterwards). */
#include <stdint.h>

#define ROW 2048

static inline float mx(float a, float b) { return a > b ? a : b; }

static inline int isnan4(float p, float q, float r, float s) {
    return (p != p) | (q != q) | (r != r) | (s != s);
}

void lg_onnx_maxpool2_f32(const float *src, float *dst, const int64_t *dims) {
    /* dims: n, c, ho, wo, then src's strides of n, c, h, dst's of n, c, h, and relu */
    const int64_t n = dims[0], c = dims[1], ho = dims[2], wo = dims[3], sn = dims[4],
                  sc = dims[5], sh = dims[6], dn = dims[7], dc = dims[8], dh = dims[9],
                  relu = dims[10];
    const float floor = relu ? 0.0f : -__builtin_inff();
    float v[ROW];
    for (int64_t a = 0; a < n; a++) {
        for (int64_t b = 0; b < c; b++) {
            const float *plane = src + a * sn + b * sc;
            float *out = dst + a * dn + b * dc;
            for (int64_t i = 0; i < ho; i++) {
                const float *r0 = plane + 2 * i * sh, *r1 = r0 + sh;
                float *o = out + i * dh;
                if (2 * wo > ROW) {
                    for (int64_t j = 0; j < wo; j++) {
                        float p = r0[2 * j], q = r0[2 * j + 1], r = r1[2 * j],
                              s = r1[2 * j + 1];
                        float m = mx(mx(mx(p, q), mx(r, s)), floor);
                        o[j] = isnan4(p, q, r, s) ? p + q + r + s : m;
                    }
                    continue;
                }
                int nan = 0;
                for (int64_t x = 0; x < 2 * wo; x++) {
                    float p = r0[x], q = r1[x];
                    v[x] = mx(p, q);
                    nan |= (p != p) | (q != q);
                }
                for (int64_t j = 0; j < wo; j++) o[j] = mx(mx(v[2 * j], v[2 * j + 1]), floor);
                if (nan) {
                    for (int64_t j = 0; j < wo; j++) {
                        float p = r0[2 * j], q = r0[2 * j + 1], r = r1[2 * j],
                              s = r1[2 * j + 1];
                        if (isnan4(p, q, r, s)) o[j] = p + q + r + s;
                    }
                }
            }
        }
    }
}
