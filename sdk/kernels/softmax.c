/*
 * softmax.c - TFLite's int8 reference softmax, written from the gemmlowp
 * fixed-point definitions (crucible/kernels.h, docs/integer-semantics.md).
 *
 * Notation: "Qm" is a fixed-point int32 with m integer bits and 31-m
 * fractional bits (gemmlowp FixedPoint<int32_t, m>).
 */
#include "crk_internal.h"

enum {
    SCALED_DIFF_BITS = 5,  /* the rescaled input difference is Q5 */
    ACCUM_BITS = 12        /* the sum of exponentials is Q12 */
};

/* gemmlowp SaturatingRoundingMultiplyByPOT<e> for e > 0: x * 2^e,
 * saturated. */
static int32_t sat_shl(int32_t x, int e)
{
    const int32_t thr = (int32_t)((1u << (31 - e)) - 1u);
    if (x > thr) return INT32_MAX;
    if (x < -thr) return INT32_MIN;
    return crk_i_shl(x, e);
}

/* (a + b) / 2 rounded half away from zero, computed exactly
 * (gemmlowp RoundingHalfSum). */
static int32_t rounding_half_sum(int32_t a, int32_t b)
{
    int64_t s = (int64_t)a + (int64_t)b;
    if (s >= 0) return (int32_t)((uint64_t)(s + 1) >> 1);
    return -(int32_t)((uint64_t)(-(s - 1)) >> 1);
}

/* exp(a) for a in [-1/4, 0), a and result Q0: Taylor series around -1/8
 * to the 4th order. */
static int32_t exp_quarter(int32_t a)
{
    const int32_t exp_minus_one_eighth = 1895147668; /* exp(-1/8) Q0 */
    const int32_t one_third = 715827883;             /* 1/3 Q0 */
    const int32_t x = crk_i_add(a, 1 << 28);         /* a + 1/8 */
    const int32_t x2 = crk_srdhm(x, x);
    const int32_t x3 = crk_srdhm(x2, x);
    const int32_t x4 = crk_srdhm(x2, x2);
    const int32_t x4_over_4 = crk_rdivpot(x4, 2);
    /* (x4/4 + x3) / 3 + x2, halved: x^4/24 + x^3/6 + x^2/2 */
    const int32_t poly = crk_rdivpot(
        crk_i_add(crk_srdhm(crk_i_add(x4_over_4, x3), one_third), x2), 1);
    return crk_i_add(exp_minus_one_eighth,
                     crk_srdhm(exp_minus_one_eighth, crk_i_add(x, poly)));
}

/* exp(a) for a <= 0 given in Q5; result Q0. */
int32_t crk_exp_on_negative_values(int32_t a)
{
    /* exp(-2^k) in Q0 for k = -2 .. 4 */
    static const int32_t factor[7] = {1672461947, 1302514674, 790015084,
                                      290630308,  39332535,   720401,
                                      242};
    const int frac = 31 - SCALED_DIFF_BITS; /* 26 fractional bits */
    const int32_t quarter = 1 << (frac - 2);
    /* a = r - (multiple of 1/4) with r in [-1/4, 0) */
    const int32_t r = crk_i_sub(a & (quarter - 1), quarter);
    int32_t result = exp_quarter(sat_shl(r, SCALED_DIFF_BITS)); /* Q5->Q0 */
    const int32_t rest = crk_i_sub(r, a); /* >= 0, multiple of 1/4 */
    for (int k = 0; k < 7; k++)
        if (rest & (int32_t)(1u << (frac - 2 + k)))
            result = crk_srdhm(result, factor[k]);
    return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + a) for a in [0, 1) Q0; result Q0 (Newton-Raphson in Q2). */
int32_t crk_one_over_one_plus_x(int32_t a)
{
    const int32_t half_den = rounding_half_sum(a, INT32_MAX);
    const int32_t c48_17 = 1515870810;   /* 48/17 Q2 */
    const int32_t cm32_17 = -1010580540; /* -32/17 Q2 */
    int32_t x = crk_i_add(c48_17, crk_srdhm(half_den, cm32_17));
    for (int i = 0; i < 3; i++) {
        const int32_t hx = crk_srdhm(half_den, x);         /* Q2 */
        const int32_t one_minus = crk_i_sub(1 << 29, hx);  /* 1 - hx, Q2 */
        /* x * one_minus is Q4; back to Q2 */
        x = crk_i_add(x, sat_shl(crk_srdhm(x, one_minus), 2));
    }
    return sat_shl(x, 1); /* x / 2 in Q1 read as Q0 */
}

static int clz32(uint32_t v)
{
    int n = 0;
    if (v == 0) return 32;
    while (!(v & 0x80000000u)) {
        v <<= 1;
        n++;
    }
    return n;
}

int crk_softmax_i8(const crk_softmax_params *p, const int8_t *in,
                   int8_t *out)
{
    if (!p || !in || !out || p->outer < 1 || p->depth < 1 || p->inner < 1 ||
        p->input_beta_left_shift < 0 || p->input_beta_left_shift > 31 ||
        p->diff_min > 0)
        return CRK_EINVAL;
    const int32_t D = p->depth;
    const size_t inner = (size_t)p->inner;
    const int ls = p->input_beta_left_shift;
    const int32_t mult = p->input_beta_multiplier;

    for (int32_t o = 0; o < p->outer; o++) {
        for (size_t i = 0; i < inner; i++) {
            const size_t base = (size_t)o * (size_t)D * inner + i;
            int32_t mx = -128;
            for (int32_t c = 0; c < D; c++) {
                int32_t v = in[base + (size_t)c * inner];
                if (v > mx) mx = v;
            }
            int32_t sum = 0; /* Q12 */
            for (int32_t c = 0; c < D; c++) {
                int32_t d = (int32_t)in[base + (size_t)c * inner] - mx;
                if (d >= p->diff_min) {
                    int32_t e = crk_exp_on_negative_values(
                        crk_srdhm(crk_i_shl(d, ls), mult));
                    sum = crk_i_add(sum, crk_rdivpot(e, ACCUM_BITS));
                }
            }
            /* reciprocal: sum = 2^(bits_over) * (1 + frac) */
            const int headroom = clz32((uint32_t)sum);
            const int bits_over = ACCUM_BITS - headroom;
            const int32_t frac = crk_i_s32(
                (headroom >= 32 ? 0u : (uint32_t)sum << headroom) -
                0x80000000u);
            const int32_t recip = crk_one_over_one_plus_x(frac);
            for (int32_t c = 0; c < D; c++) {
                const size_t at = base + (size_t)c * inner;
                int32_t d = (int32_t)in[at] - mx;
                int32_t y = -128;
                if (d >= p->diff_min) {
                    int32_t e = crk_exp_on_negative_values(
                        crk_srdhm(crk_i_shl(d, ls), mult));
                    int32_t u = crk_rdivpot(crk_srdhm(recip, e),
                                            bits_over + 31 - 8);
                    y = crk_i_clamp(u - 128, -128, 127);
                }
                out[at] = (int8_t)y;
            }
        }
    }
    return CRK_OK;
}
