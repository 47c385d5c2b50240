/*
 * conv.c - 2-D convolution, NCHW, grouped / depthwise, padding, stride,
 * dilation; int8 / int4 / ternary / binary weights (crucible/kernels.h).
 */
#include "crk_internal.h"

#if defined(__GNUC__)
#define CRK_NOINLINE __attribute__((noinline))
#else
#define CRK_NOINLINE
#endif

/* sum of w * x over a window of cin channels x kh rows x kw contiguous
 * taps (weights contiguous; input rows row_step apart, channels plane
 * apart). A small separate function: its loop variables stay in
 * registers even on Cortex-M0+. */
static size_t wo_of(int32_t o, int32_t cin_g, size_t ksize)
{
    return (size_t)o * (size_t)cin_g * ksize;
}

static CRK_NOINLINE uint32_t win_dot(const int8_t *w, const int8_t *x,
                                     int32_t cin, int32_t kh, int32_t kw,
                                     size_t row_step, size_t plane)
{
    uint32_t acc = 0;
    for (; cin > 0; cin--, x += plane) {
        const int8_t *xr = x;
        for (int32_t r = kh; r > 0; r--, w += kw, xr += row_step)
            acc += crk_i_dot_i8(w, xr, kw);
    }
    return acc;
}

/* Two output channels at once (weights w and w + w_next), each input
 * byte loaded once for both: acc[j] = sum of w_j * (x - zp) over cin
 * channels (weights w_ch apart, input plane apart) x kh rows (weights
 * w_row apart, input row_step apart) x nk contiguous taps. zp is 0 for
 * whole windows (their zero-point term is folded per channel). */
static CRK_NOINLINE void win_dot2(const int8_t *w, size_t w_next,
                                  const int8_t *x, int32_t cin, int32_t kh,
                                  int32_t nk, size_t row_step, size_t plane,
                                  size_t w_row, size_t w_ch, int32_t zp,
                                  uint32_t *acc)
{
    uint32_t a0 = 0, a1 = 0;
    for (; cin > 0; cin--, x += plane, w += w_ch) {
        const int8_t *xr = x, *wr = w, *v = w + w_next;
        for (int32_t r = kh; r > 0; r--, wr += w_row, v += w_row,
                     xr += row_step) {
#ifdef CRK_I_DOT2_M0
            CRK_I_DOT2_M0(wr, v, xr, nk, zp, a0, a1); /* inline: nk >= 1 */
#else
            if (zp)
                crk_i_dot2_i8(wr, v, xr, nk, zp, &a0, &a1);
            else /* zp constant-folded */
                crk_i_dot2_i8(wr, v, xr, nk, 0, &a0, &a1);
#endif
        }
    }
    acc[0] = a0;
    acc[1] = a1;
}

/* The same over a clipped window, as sum of w * (x - zp) (|x - zp| <= 255,
 * so each product fits easily): rows of nk taps
 * whose weights start w_row apart (w_ch apart per channel). */
static CRK_NOINLINE uint32_t win_dot_zp(const int8_t *w, const int8_t *x,
                                        int32_t cin, int32_t kh, int32_t nk,
                                        size_t row_step, size_t plane,
                                        size_t w_row, size_t w_ch,
                                        int32_t zp)
{
    uint32_t acc = 0;
    for (; cin > 0; cin--, x += plane, w += w_ch) {
        const int8_t *xr = x, *wr = w;
        for (int32_t r = kh; r > 0; r--, wr += w_row, xr += row_step)
            for (int32_t k = 0; k < nk; k++)
                acc += (uint32_t)((int32_t)wr[k] * ((int32_t)xr[k] - zp));
    }
    return acc;
}

int crk_conv2d(const crk_conv_params *p, const int8_t *input,
               const void *weights, crk_wfmt wfmt, const int32_t *bias,
               int8_t *output)
{
    if (!p || !input || !weights || !output || !p->mult || !p->shift ||
        !crk_i_wfmt_ok(wfmt))
        return CRK_EINVAL;
    if (p->batches < 1 || p->in_ch < 1 || p->out_ch < 1 || p->groups < 1 ||
        p->in_ch % p->groups != 0 || p->out_ch % p->groups != 0 ||
        !crk_i_zp_ok(p->input_zp) || !crk_i_zp_ok(p->output_zp) ||
        !crk_i_range_ok(p->act_min, p->act_max))
        return CRK_EINVAL;
    if (!crk_i_geom_ok(p->in_h, p->kernel_h, p->stride_h, p->dilation_h,
                       p->pad_top, p->pad_bottom) ||
        !crk_i_geom_ok(p->in_w, p->kernel_w, p->stride_w, p->dilation_w,
                       p->pad_left, p->pad_right))
        return CRK_EINVAL;
    const int32_t OH = crk_out_dim(p->in_h, p->kernel_h, p->stride_h,
                                   p->dilation_h, p->pad_top, p->pad_bottom);
    const int32_t OW = crk_out_dim(p->in_w, p->kernel_w, p->stride_w,
                                   p->dilation_w, p->pad_left, p->pad_right);
    int32_t nq = p->per_channel ? p->out_ch : 1;
    for (int32_t c = 0; c < nq; c++)
        if (!crk_i_shift_ok(p->shift[c])) return CRK_EINVAL;

    const uint8_t *w = (const uint8_t *)weights;
    const int32_t H = p->in_h, W = p->in_w, KH = p->kernel_h,
                  KW = p->kernel_w;
    const int32_t cin_g = p->in_ch / p->groups;
    const int32_t cout_g = p->out_ch / p->groups;
    const int32_t zp = p->input_zp;
    const size_t plane = (size_t)H * (size_t)W;
    const size_t ksize = (size_t)KH * (size_t)KW;

    /* int8 weights, unit horizontal dilation: the fast path. The window
     * is clipped to the input once per output (no per-tap bounds checks)
     * and each kernel row is a contiguous dot product. Whole windows use
     * acc = bias + sum(w * x) - zp * sum(w) with sum(w) per output channel
     * computed once; clipped ones subtract zp * (their weights' sum). Both
     * equal sum(w * (x - zp)) + bias mod 2^32, as the generic loop. */
    const int fast = wfmt == CRK_W_I8 && p->dilation_w == 1;
    const int32_t dh = p->dilation_h;

    for (int32_t n = 0; n < p->batches; n++) {
        const int8_t *xn = input + (size_t)n * (size_t)p->in_ch * plane;
        for (int32_t o = 0; o < p->out_ch; o++) {
            const int32_t g = o / cout_g;
            /* fast path: channels o and o + 1 together when in one group */
            const int pair = fast && o + 1 < p->out_ch && (o + 1) / cout_g == g;
            const size_t wnext = (size_t)cin_g * ksize;
            const int32_t c1 = p->per_channel && pair ? o + 1 : 0;
            const int32_t mult1 = p->mult[c1], shift1 = p->shift[c1];
            int8_t *yo1 = output +
                          ((size_t)n * (size_t)p->out_ch + (size_t)o + 1) *
                              (size_t)OH * (size_t)OW;
            const uint32_t b1 = bias && pair ? (uint32_t)bias[o + 1] : 0u;
            uint32_t base1 = b1;
            if (pair) {
                const int8_t *wk = (const int8_t *)weights + wo_of(o + 1, cin_g, ksize);
                uint32_t ws = 0;
                for (size_t k = 0; k < wnext; k++) ws += (uint32_t)(int32_t)wk[k];
                base1 -= (uint32_t)zp * ws;
            }
            const int8_t *xg = xn + (size_t)g * (size_t)cin_g * plane;
            const size_t wo = (size_t)o * (size_t)cin_g * ksize;
            const int32_t c = p->per_channel ? o : 0;
            const int32_t mult = p->mult[c], shift = p->shift[c];
            int8_t *yo = output +
                         ((size_t)n * (size_t)p->out_ch + (size_t)o) *
                             (size_t)OH * (size_t)OW;
            const uint32_t b0 = bias ? (uint32_t)bias[o] : 0u;
            uint32_t base = b0;
            if (fast) {
                const int8_t *wk = (const int8_t *)weights + wo;
                uint32_t ws = 0;
                for (size_t k = 0; k < (size_t)cin_g * ksize; k++)
                    ws += (uint32_t)(int32_t)wk[k];
                base -= (uint32_t)zp * ws;
            }
            for (int32_t oy = 0; oy < OH; oy++) {
                const int32_t y0 = oy * p->stride_h - p->pad_top;
                const int32_t ky_lo = y0 < 0 ? (-y0 + dh - 1) / dh : 0;
                const int32_t ky_top = H - 1 - y0 < 0 ? 0 : (H - 1 - y0) / dh + 1;
                const int32_t ky_hi = ky_top < KH ? ky_top : KH;
                for (int32_t ox = 0; ox < OW; ox++) {
                    const int32_t x0 = ox * p->stride_w - p->pad_left;
                    if (fast) {
                        const int32_t kx_lo = x0 < 0 ? -x0 : 0;
                        const int32_t kx_hi = W - x0 < KW ? W - x0 : KW;
                        const int8_t *wk = (const int8_t *)weights + wo;
                        uint32_t a, a1 = b1, two[2];
                        const size_t yi = (size_t)oy * (size_t)OW + (size_t)ox;
                        if (ky_lo == 0 && ky_hi == KH && kx_lo == 0 &&
                            kx_hi == KW) {
                            const int8_t *xw = xg + (size_t)y0 * (size_t)W +
                                               (size_t)x0;
                            if (pair) {
                                win_dot2(wk, wnext, xw, cin_g, KH, KW,
                                         (size_t)dh * (size_t)W, plane,
                                         (size_t)KW, ksize, 0, two);
                                a = base + two[0];
                                a1 = base1 + two[1];
                            } else {
                                a = base + win_dot(wk, xw, cin_g, KH, KW,
                                                   (size_t)dh * (size_t)W,
                                                   plane);
                            }
                        } else if (kx_hi > kx_lo && ky_hi > ky_lo) {
                            const size_t wofs = (size_t)ky_lo * (size_t)KW +
                                                (size_t)kx_lo;
                            const int8_t *xw = xg + (size_t)(y0 + ky_lo * dh) *
                                                        (size_t)W +
                                               (size_t)(x0 + kx_lo);
                            if (pair) {
                                win_dot2(wk + wofs, wnext, xw, cin_g,
                                         ky_hi - ky_lo, kx_hi - kx_lo,
                                         (size_t)dh * (size_t)W, plane,
                                         (size_t)KW, ksize, zp, two);
                                a = b0 + two[0];
                                a1 = b1 + two[1];
                            } else {
                                a = b0 + win_dot_zp(wk + wofs, xw, cin_g,
                                                    ky_hi - ky_lo,
                                                    kx_hi - kx_lo,
                                                    (size_t)dh * (size_t)W,
                                                    plane, (size_t)KW, ksize,
                                                    zp);
                            }
                        } else {
                            a = b0;
                        }
                        yo[yi] = crk_i_requant(crk_i_s32(a), mult, shift,
                                               p->output_zp, p->act_min,
                                               p->act_max);
                        if (pair)
                            yo1[yi] = crk_i_requant(crk_i_s32(a1), mult1,
                                                    shift1, p->output_zp,
                                                    p->act_min, p->act_max);
                        continue;
                    }
                    uint32_t acc = bias ? (uint32_t)bias[o] : 0u;
                    for (int32_t ci = 0; ci < cin_g; ci++) {
                        const int8_t *xc = xg + (size_t)ci * plane;
                        const size_t wc = wo + (size_t)ci * ksize;
                        for (int32_t ky = 0; ky < KH; ky++) {
                            const int32_t iy = y0 + ky * p->dilation_h;
                            if (iy < 0 || iy >= H) continue;
                            const int8_t *row = xc + (size_t)iy * (size_t)W;
                            const size_t wr = wc + (size_t)ky * (size_t)KW;
                            for (int32_t kx = 0; kx < KW; kx++) {
                                const int32_t ix = x0 + kx * p->dilation_w;
                                if (ix < 0 || ix >= W) continue;
                                int32_t wv =
                                    crk_i_wget(w, wfmt, wr + (size_t)kx);
                                acc += (uint32_t)(wv *
                                                  ((int32_t)row[ix] - zp));
                            }
                        }
                    }
                    yo[(size_t)oy * (size_t)OW + (size_t)ox] = crk_i_requant(
                        crk_i_s32(acc), mult, shift, p->output_zp, p->act_min,
                        p->act_max);
                }
            }
            if (pair) o++;
        }
    }
    return CRK_OK;
}
