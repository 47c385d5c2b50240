/*
 * elementwise.c - add, sub, mul (broadcasting), requantise, clamp, table
 * lookup; int8 (crucible/kernels.h).
 */
#include "crk_internal.h"

/* Strides (in elements) of a row-major rank-4 shape, 0 on broadcast dims. */
static int bcast_strides(const int32_t out[4], const int32_t in[4],
                         size_t st[4])
{
    size_t s = 1;
    for (int i = 3; i >= 0; i--) {
        if (out[i] < 1 || in[i] < 1) return 0;
        if (in[i] != out[i] && in[i] != 1) return 0;
        st[i] = in[i] == 1 ? 0 : s;
        s *= (size_t)in[i];
    }
    return 1;
}

enum { OP_ADD, OP_SUB, OP_MUL };

typedef struct binop {
    int op;
    const crk_add_params *ap;
    const crk_mul_params *mp;
} binop;

static int8_t binop_one(const binop *b, int32_t x, int32_t y)
{
    if (b->op == OP_MUL) {
        const crk_mul_params *p = b->mp;
        int32_t prod = (x - p->a_zp) * (y - p->b_zp); /* |.| <= 255^2 */
        return crk_i_requant(prod, p->out_mult, p->out_shift, p->out_zp,
                             p->act_min, p->act_max);
    }
    const crk_add_params *p = b->ap;
    int32_t xs = crk_mbqm(crk_i_shl(x - p->a_zp, p->left_shift), p->a_mult,
                          p->a_shift);
    int32_t ys = crk_mbqm(crk_i_shl(y - p->b_zp, p->left_shift), p->b_mult,
                          p->b_shift);
    int32_t raw = b->op == OP_ADD ? crk_i_add(xs, ys) : crk_i_sub(xs, ys);
    return crk_i_requant(raw, p->out_mult, p->out_shift, p->out_zp,
                         p->act_min, p->act_max);
}

static int binop_run(const binop *b, const crk_bcast4 *shape,
                     const int8_t *a, const int8_t *bb, int8_t *out)
{
    size_t sa[4], sb[4];
    if (!shape || !a || !bb || !out) return CRK_EINVAL;
    if (!bcast_strides(shape->out, shape->a, sa) ||
        !bcast_strides(shape->out, shape->b, sb))
        return CRK_EINVAL;
    const int32_t *o = shape->out;
    size_t k = 0;
    for (int32_t i0 = 0; i0 < o[0]; i0++)
        for (int32_t i1 = 0; i1 < o[1]; i1++)
            for (int32_t i2 = 0; i2 < o[2]; i2++) {
                size_t ia = (size_t)i0 * sa[0] + (size_t)i1 * sa[1] +
                            (size_t)i2 * sa[2];
                size_t ib = (size_t)i0 * sb[0] + (size_t)i1 * sb[1] +
                            (size_t)i2 * sb[2];
                for (int32_t i3 = 0; i3 < o[3]; i3++) {
                    out[k++] = binop_one(b, a[ia], bb[ib]);
                    ia += sa[3];
                    ib += sb[3];
                }
            }
    return CRK_OK;
}

static int add_params_ok(const crk_add_params *p)
{
    return p && crk_i_zp_ok(p->a_zp) && crk_i_zp_ok(p->b_zp) &&
           crk_i_zp_ok(p->out_zp) && p->left_shift >= 0 &&
           p->left_shift <= 31 && crk_i_shift_ok(p->a_shift) &&
           crk_i_shift_ok(p->b_shift) && crk_i_shift_ok(p->out_shift) &&
           crk_i_range_ok(p->act_min, p->act_max);
}

int crk_add_i8(const crk_add_params *p, const crk_bcast4 *shape,
               const int8_t *a, const int8_t *b, int8_t *out)
{
    if (!add_params_ok(p)) return CRK_EINVAL;
    binop op = {OP_ADD, p, NULL};
    return binop_run(&op, shape, a, b, out);
}

int crk_sub_i8(const crk_add_params *p, const crk_bcast4 *shape,
               const int8_t *a, const int8_t *b, int8_t *out)
{
    if (!add_params_ok(p)) return CRK_EINVAL;
    binop op = {OP_SUB, p, NULL};
    return binop_run(&op, shape, a, b, out);
}

int crk_mul_i8(const crk_mul_params *p, const crk_bcast4 *shape,
               const int8_t *a, const int8_t *b, int8_t *out)
{
    if (!p || !crk_i_zp_ok(p->a_zp) || !crk_i_zp_ok(p->b_zp) ||
        !crk_i_zp_ok(p->out_zp) || !crk_i_shift_ok(p->out_shift) ||
        !crk_i_range_ok(p->act_min, p->act_max))
        return CRK_EINVAL;
    binop op = {OP_MUL, NULL, p};
    return binop_run(&op, shape, a, b, out);
}

/* ---- requantise ---------------------------------------------------------- */

static int requant_ok(const crk_requant_params *p, const void *in,
                      const void *out)
{
    if (!p || !in || !out || !p->mult || !p->shift) return 0;
    if (p->outer < 1 || p->channels < 1 || p->inner < 1 ||
        !crk_i_zp_ok(p->output_zp) || !crk_i_range_ok(p->act_min, p->act_max))
        return 0;
    int32_t nq = p->per_channel ? p->channels : 1;
    for (int32_t c = 0; c < nq; c++)
        if (!crk_i_shift_ok(p->shift[c])) return 0;
    return 1;
}

int crk_requantize_i32_i8(const crk_requant_params *p, const int32_t *in,
                          int8_t *out)
{
    if (!requant_ok(p, in, out)) return CRK_EINVAL;
    size_t k = 0;
    for (int32_t o = 0; o < p->outer; o++)
        for (int32_t c = 0; c < p->channels; c++) {
            const int32_t q = p->per_channel ? c : 0;
            for (int32_t i = 0; i < p->inner; i++, k++)
                out[k] = crk_i_requant(in[k], p->mult[q], p->shift[q],
                                       p->output_zp, p->act_min, p->act_max);
        }
    return CRK_OK;
}

int crk_requantize_i8_i8(const crk_requant_params *p, const int8_t *in,
                         int8_t *out)
{
    if (!requant_ok(p, in, out) || !crk_i_zp_ok(p->input_zp))
        return CRK_EINVAL;
    size_t k = 0;
    for (int32_t o = 0; o < p->outer; o++)
        for (int32_t c = 0; c < p->channels; c++) {
            const int32_t q = p->per_channel ? c : 0;
            for (int32_t i = 0; i < p->inner; i++, k++)
                out[k] = crk_i_requant((int32_t)in[k] - p->input_zp,
                                       p->mult[q], p->shift[q], p->output_zp,
                                       p->act_min, p->act_max);
        }
    return CRK_OK;
}

/* ---- activations --------------------------------------------------------- */

int crk_clamp_i8(const int8_t *in, int8_t *out, size_t n, int32_t lo,
                 int32_t hi)
{
    if (!in || !out || !crk_i_range_ok(lo, hi)) return CRK_EINVAL;
    for (size_t i = 0; i < n; i++)
        out[i] = (int8_t)crk_i_clamp(in[i], lo, hi);
    return CRK_OK;
}

void crk_lut_i8(const int8_t *in, int8_t *out, size_t n,
                const int8_t table[256])
{
    if (!in || !out || !table) return;
    for (size_t i = 0; i < n; i++)
        out[i] = table[(int32_t)in[i] + 128];
}
