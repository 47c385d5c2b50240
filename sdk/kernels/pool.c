/*
 * pool.c - max and average pooling, int8 NCHW (crucible/kernels.h).
 */
#include "crk_internal.h"

static int pool_check(const crk_pool_params *p, const int8_t *input,
                      const int8_t *output)
{
    if (!p || !input || !output) return 0;
    if (p->batches < 1 || p->channels < 1 ||
        !crk_i_range_ok(p->act_min, p->act_max))
        return 0;
    return crk_i_geom_ok(p->in_h, p->kernel_h, p->stride_h, p->dilation_h,
                         p->pad_top, p->pad_bottom) &&
           crk_i_geom_ok(p->in_w, p->kernel_w, p->stride_w, p->dilation_w,
                         p->pad_left, p->pad_right);
}

/* One kernel for both: is_max selects the reduction. */
static void pool_run(const crk_pool_params *p, const int8_t *input,
                     int8_t *output, int is_max)
{
    const int32_t H = p->in_h, W = p->in_w;
    const int32_t OH = crk_out_dim(H, p->kernel_h, p->stride_h, p->dilation_h,
                                   p->pad_top, p->pad_bottom);
    const int32_t OW = crk_out_dim(W, p->kernel_w, p->stride_w, p->dilation_w,
                                   p->pad_left, p->pad_right);
    const size_t plane = (size_t)H * (size_t)W;
    const size_t oplane = (size_t)OH * (size_t)OW;
    const size_t nplanes = (size_t)p->batches * (size_t)p->channels;

    for (size_t pl = 0; pl < nplanes; pl++) {
        const int8_t *x = input + pl * plane;
        int8_t *y = output + pl * oplane;
        for (int32_t oy = 0; oy < OH; oy++) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            for (int32_t ox = 0; ox < OW; ox++) {
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                int32_t mx = -128, count = 0;
                uint32_t sum = 0;
                for (int32_t ky = 0; ky < p->kernel_h; ky++) {
                    const int32_t iy = y0 + ky * p->dilation_h;
                    if (iy < 0 || iy >= H) continue;
                    for (int32_t kx = 0; kx < p->kernel_w; kx++) {
                        const int32_t ix = x0 + kx * p->dilation_w;
                        if (ix < 0 || ix >= W) continue;
                        const int32_t v = x[(size_t)iy * (size_t)W + (size_t)ix];
                        if (v > mx) mx = v;
                        sum += (uint32_t)v;
                        count++;
                    }
                }
                int32_t r;
                if (is_max) {
                    r = mx;
                } else {
                    int32_t s = crk_i_s32(sum);
                    if (p->count_include_pad) {
                        /* padded taps hold pad_value (|sum| <= 2^30) */
                        const int32_t full = p->kernel_h * p->kernel_w;
                        s = crk_i_add(s, crk_i_mul(full - count, p->pad_value));
                        count = full;
                    }
                    if (count == 0)
                        r = p->pad_value;
                    else if (s > 0)
                        r = (s + count / 2) / count;
                    else
                        r = (s - count / 2) / count;
                }
                y[(size_t)oy * (size_t)OW + (size_t)ox] =
                    (int8_t)crk_i_clamp(r, p->act_min, p->act_max);
            }
        }
    }
}

int crk_max_pool2d(const crk_pool_params *p, const int8_t *input,
                   int8_t *output)
{
    if (!pool_check(p, input, output)) return CRK_EINVAL;
    pool_run(p, input, output, 1);
    return CRK_OK;
}

int crk_avg_pool2d(const crk_pool_params *p, const int8_t *input,
                   int8_t *output)
{
    if (!pool_check(p, input, output)) return CRK_EINVAL;
    /* at most 2^23 taps: the int32 sum of int8 values cannot overflow */
    if (p->kernel_h > (1 << 23) / p->kernel_w) return CRK_EINVAL;
    if (p->count_include_pad && !crk_i_zp_ok(p->pad_value)) return CRK_EINVAL;
    pool_run(p, input, output, 0);
    return CRK_OK;
}
