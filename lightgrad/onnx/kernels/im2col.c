/* im2col of a zero-padded float32 batch, for the ONNX replay plan (lightgrad/onnx/plan.py):
 * cols[b][(ch*kh + ki)*kw + kj][i*wo + j] = xp[b][ch][i*sh + ki*dh][j*sw + kj*dw], with xp
 * contiguous (n, c, hp, wp) and cols (n, rows, ho*wo) where rows >= c*kh*kw (the plan keeps
 * a row of ones after them for the bias). The source must be readable 16 floats past its
 * end. Short rows (wo <= 16, unit stride) are copied as whole 16-float blocks, in order, so
 * a block's extra floats are overwritten by the next row; rows whose block would reach past
 * their column row's end are copied exactly (nothing spills out of it). */
#include <stdint.h>
#include <string.h>

void lg_onnx_im2col_f32(const float *xp, float *cols, const int64_t *dims) {
    /* dims: n, c, hp, wp, kh, kw, sh, sw, dh, dw, ho, wo, rows (one ctypes argument) */
    const int64_t n = dims[0], c = dims[1], hp = dims[2], wp = dims[3], kh = dims[4],
                  kw = dims[5], sh = dims[6], sw = dims[7], dh = dims[8], dw = dims[9],
                  ho = dims[10], wo = dims[11], rows = dims[12];
    const int64_t l = ho * wo;
    const int wide = sw == 1 && wo <= 16;
    for (int64_t b = 0; b < n; b++) {
        for (int64_t ch = 0; ch < c; ch++) {
            const float *plane = xp + (b * c + ch) * hp * wp;
            for (int64_t ki = 0; ki < kh; ki++) {
                for (int64_t kj = 0; kj < kw; kj++) {
                    float *dst = cols + (b * rows + (ch * kh + ki) * kw + kj) * l;
                    for (int64_t i = 0; i < ho; i++) {
                        const float *src = plane + (i * sh + ki * dh) * wp + kj * dw;
                        float *d = dst + i * wo;
                        if (wide && i * wo + 16 <= l) {
                            memcpy(d, src, 16 * sizeof(float));
                        } else if (sw == 1) {
                            memcpy(d, src, (size_t)wo * sizeof(float));
                        } else {
                            for (int64_t j = 0; j < wo; j++) d[j] = src[j * sw];
                        }
                    }
                }
            }
        }
    }
}
