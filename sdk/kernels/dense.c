/*
 * dense.c - fully connected layer, int8 activations, int8 / int4 /
 * ternary / binary weights (crucible/kernels.h).
 */
#include "crk_internal.h"

/* sum_k w[w0 + k] * (x[k] - zp) for k < n, wrapping int32 (as uint32). */
static uint32_t dot_row(const uint8_t *w, crk_wfmt fmt, size_t w0,
                        const int8_t *x, int32_t n, int32_t zp)
{
    uint32_t acc = 0;
    int32_t k;
    switch (fmt) {
    case CRK_W_I8: {
        /* sum(w * x) - zp * sum(w): the same value mod 2^32 */
        const int8_t *ws = (const int8_t *)w + w0;
        acc = crk_i_dot_i8(ws, x, n);
        if (zp) {
            uint32_t sw = 0;
            for (k = 0; k < n; k++) sw += (uint32_t)(int32_t)ws[k];
            acc -= (uint32_t)zp * sw;
        }
        break;
    }
    case CRK_W_I4:
        for (k = 0; k < n; k++)
            acc += (uint32_t)(crk_i_wget(w, CRK_W_I4, w0 + (size_t)k) *
                              ((int32_t)x[k] - zp));
        break;
    case CRK_W_TERNARY:
        for (k = 0; k < n; k++) {
            int32_t v = crk_i_wget(w, CRK_W_TERNARY, w0 + (size_t)k);
            if (v > 0) acc += (uint32_t)((int32_t)x[k] - zp);
            else if (v < 0) acc -= (uint32_t)((int32_t)x[k] - zp);
        }
        break;
    case CRK_W_BINARY:
        for (k = 0; k < n; k++) {
            if (crk_i_wget(w, CRK_W_BINARY, w0 + (size_t)k) > 0)
                acc += (uint32_t)((int32_t)x[k] - zp);
            else
                acc -= (uint32_t)((int32_t)x[k] - zp);
        }
        break;
    }
    return acc;
}

int crk_fully_connected(const crk_fc_params *p, const int8_t *input,
                        const void *weights, crk_wfmt wfmt,
                        const int32_t *bias, int8_t *output)
{
    if (!p || !input || !weights || !output || !p->mult || !p->shift ||
        !crk_i_wfmt_ok(wfmt))
        return CRK_EINVAL;
    if (p->batches < 1 || p->in_features < 1 || p->out_features < 1 ||
        !crk_i_zp_ok(p->input_zp) || !crk_i_zp_ok(p->output_zp) ||
        !crk_i_range_ok(p->act_min, p->act_max))
        return CRK_EINVAL;
    int32_t nq = p->per_channel ? p->out_features : 1;
    for (int32_t c = 0; c < nq; c++)
        if (!crk_i_shift_ok(p->shift[c])) return CRK_EINVAL;

    const uint8_t *w = (const uint8_t *)weights;
    const int32_t K = p->in_features, M = p->out_features;
    for (int32_t n = 0; n < p->batches; n++) {
        const int8_t *x = input + (size_t)n * (size_t)K;
        int8_t *y = output + (size_t)n * (size_t)M;
        int32_t m = 0;
        if (wfmt == CRK_W_I8) /* two rows per pass over x */
            for (; m + 2 <= M; m += 2) {
                const int8_t *wm = (const int8_t *)weights + (size_t)m * (size_t)K;
                uint32_t a0 = bias ? (uint32_t)bias[m] : 0u;
                uint32_t a1 = bias ? (uint32_t)bias[m + 1] : 0u;
                crk_i_dot2_i8(wm, wm + K, x, K, p->input_zp, &a0, &a1);
                int32_t c0 = p->per_channel ? m : 0, c1 = p->per_channel ? m + 1 : 0;
                y[m] = crk_i_requant(crk_i_s32(a0), p->mult[c0], p->shift[c0],
                                     p->output_zp, p->act_min, p->act_max);
                y[m + 1] = crk_i_requant(crk_i_s32(a1), p->mult[c1],
                                         p->shift[c1], p->output_zp,
                                         p->act_min, p->act_max);
            }
        for (; m < M; m++) {
            uint32_t acc = dot_row(w, wfmt, (size_t)m * (size_t)K, x, K,
                                   p->input_zp);
            if (bias) acc += (uint32_t)bias[m];
            int32_t c = p->per_channel ? m : 0;
            y[m] = crk_i_requant(crk_i_s32(acc), p->mult[c], p->shift[c],
                                 p->output_zp, p->act_min, p->act_max);
        }
    }
    return CRK_OK;
}
