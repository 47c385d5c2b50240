/*
 * layout.c - reshape, transpose, concat (crucible/kernels.h).
 */
#include "crk_internal.h"

CRK_NO_LIBCALLS
void crk_reshape(const void *in, void *out, size_t bytes)
{
    const unsigned char *s = (const unsigned char *)in;
    unsigned char *d = (unsigned char *)out;
    if (!s || !d || s == d) return;
    for (size_t i = 0; i < bytes; i++) d[i] = s[i];
}

CRK_NO_LIBCALLS
static void copy_elem(unsigned char *d, const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) d[i] = s[i];
}

CRK_NO_LIBCALLS
int crk_transpose(const void *in, void *out, size_t elem_size, int32_t rank,
                  const int32_t *in_dims, const int32_t *perm)
{
    if (!in || !out || !in_dims || !perm || elem_size < 1 || rank < 1 ||
        rank > 4)
        return CRK_EINVAL;
    /* Pad to rank 4 on the left: dims d[], perm q[] over 4 axes. */
    int32_t d[4], q[4];
    size_t st[4];
    const int32_t lead = 4 - rank;
    int seen = 0;
    for (int32_t i = 0; i < 4; i++) {
        if (i < lead) {
            d[i] = 1;
            q[i] = i;
        } else {
            d[i] = in_dims[i - lead];
            int32_t pi = perm[i - lead];
            if (d[i] < 1 || pi < 0 || pi >= rank || (seen & (1 << pi)))
                return CRK_EINVAL;
            seen |= 1 << pi;
            q[i] = pi + lead;
        }
    }
    /* Input strides in elements, then gathered in output axis order. */
    size_t s = 1, ist[4];
    for (int32_t i = 3; i >= 0; i--) {
        ist[i] = s;
        s *= (size_t)d[i];
    }
    int32_t od[4];
    for (int32_t i = 0; i < 4; i++) {
        od[i] = d[q[i]];
        st[i] = ist[q[i]];
    }
    const unsigned char *src = (const unsigned char *)in;
    unsigned char *dst = (unsigned char *)out;
    for (int32_t j0 = 0; j0 < od[0]; j0++)
        for (int32_t j1 = 0; j1 < od[1]; j1++)
            for (int32_t j2 = 0; j2 < od[2]; j2++) {
                size_t off = (size_t)j0 * st[0] + (size_t)j1 * st[1] +
                             (size_t)j2 * st[2];
                for (int32_t j3 = 0; j3 < od[3]; j3++) {
                    copy_elem(dst, src + off * elem_size, elem_size);
                    dst += elem_size;
                    off += st[3];
                }
            }
    return CRK_OK;
}

CRK_NO_LIBCALLS
int crk_concat_i8(const crk_concat_input *inputs, int32_t n_inputs,
                  int32_t outer, int32_t inner, int32_t out_zp, int8_t *out)
{
    if (!inputs || n_inputs < 1 || outer < 1 || inner < 1 || !out ||
        !crk_i_zp_ok(out_zp))
        return CRK_EINVAL;
    size_t total = 0;
    for (int32_t i = 0; i < n_inputs; i++) {
        const crk_concat_input *c = &inputs[i];
        if (!c->data || c->axis_dim < 1) return CRK_EINVAL;
        if (c->requant && (!crk_i_zp_ok(c->zp) || !crk_i_shift_ok(c->shift)))
            return CRK_EINVAL;
        total += (size_t)c->axis_dim;
    }
    const size_t row = total * (size_t)inner; /* output elements per outer */
    size_t at = 0;                            /* offset within a row */
    for (int32_t i = 0; i < n_inputs; i++) {
        const crk_concat_input *c = &inputs[i];
        const size_t chunk = (size_t)c->axis_dim * (size_t)inner;
        for (int32_t o = 0; o < outer; o++) {
            const int8_t *s = c->data + (size_t)o * chunk;
            int8_t *d = out + (size_t)o * row + at;
            if (!c->requant) {
                for (size_t k = 0; k < chunk; k++) d[k] = s[k];
            } else {
                for (size_t k = 0; k < chunk; k++)
                    d[k] = crk_i_requant((int32_t)s[k] - c->zp, c->mult,
                                         c->shift, out_zp, -128, 127);
            }
        }
        at += chunk;
    }
    return CRK_OK;
}
