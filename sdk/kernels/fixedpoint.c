/*
 * fixedpoint.c - the integer primitives every kernel is built from
 * (definitions in crucible/kernels.h and docs/integer-semantics.md).
 */
#include "crk_internal.h"

int crk_version(void)
{
    return CRK_VERSION;
}

int32_t crk_srdhm(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
    int64_t p = (int64_t)a * (int64_t)b;
    /* (p + nudge) / 2^31, truncating toward zero. |p| <= 2^62 - 2^31, so
     * neither the sum nor its negation overflows, and the quotient fits in
     * int32. Shifts are only applied to non-negative values. */
    if (p >= 0) {
        uint64_t t = (uint64_t)p + (1u << 30);
        return (int32_t)(t >> 31);
    }
    /* p < 0: t = p + 1 - 2^30 < 0; result = -((-t) >> 31). */
    uint64_t m = (uint64_t)(-(p + 1)) + (1u << 30); /* = -t */
    return -(int32_t)(m >> 31);
}

int32_t crk_rdivpot(int32_t x, int exponent)
{
    if (exponent <= 0) return x;
    uint32_t mag = x < 0 ? 0u - (uint32_t)x : (uint32_t)x; /* |x| <= 2^31 */
    uint32_t q;
    if (exponent < 32) {
        /* |x| + 2^(e-1) <= 2^31 + 2^30: no overflow in uint32. */
        q = (mag + (1u << (exponent - 1))) >> exponent;
    } else {
        /* |x| / 2^e <= 1/2, reaching 1/2 only for |x| = 2^31, e = 32. */
        q = (exponent == 32 && mag == 0x80000000u) ? 1u : 0u;
    }
    /* q <= 2^30 here, so the negation cannot overflow. */
    return x < 0 ? -(int32_t)q : (int32_t)q;
}

int32_t crk_mbqm(int32_t x, int32_t mult, int shift)
{
    int left = shift > 0 ? shift : 0;
    int right = shift > 0 ? 0 : -shift;
    return crk_rdivpot(crk_srdhm(crk_i_shl(x, left), mult), right);
}

int8_t crk_requant_one(int32_t acc, int32_t mult, int shift, int32_t out_zp,
                       int32_t act_min, int32_t act_max)
{
    if (act_min < -128) act_min = -128;
    if (act_max > 127) act_max = 127;
    if (act_min > act_max) act_min = act_max;
    return crk_i_requant(acc, mult, shift, out_zp, act_min, act_max);
}

int32_t crk_weight_get(const void *weights, crk_wfmt fmt, size_t index)
{
    if (!weights || !crk_i_wfmt_ok(fmt)) return 0;
    return crk_i_wget((const uint8_t *)weights, fmt, index);
}

size_t crk_weight_bytes(crk_wfmt fmt, size_t n)
{
    switch (fmt) {
    case CRK_W_I8: return n;
    case CRK_W_I4: return n / 2 + (n & 1u);
    case CRK_W_TERNARY: return n / 4 + ((n & 3u) != 0);
    case CRK_W_BINARY: return n / 8 + ((n & 7u) != 0);
    }
    return 0;
}

int32_t crk_out_dim(int32_t in, int32_t kernel, int32_t stride,
                    int32_t dilation, int32_t pad_before, int32_t pad_after)
{
    if (in < 1 || kernel < 1 || stride < 1 || dilation < 1 || pad_before < 0 ||
        pad_after < 0)
        return 0;
    /* 32-bit unsigned arithmetic with overflow checks (no 64-bit division
     * helpers on small MCUs). */
    uint32_t span = (uint32_t)in + (uint32_t)pad_before; /* < 2^32 */
    if (span > UINT32_MAX - (uint32_t)pad_after) return 0;
    span += (uint32_t)pad_after;
    uint32_t k1 = (uint32_t)kernel - 1u;
    if (k1 != 0 && (uint32_t)dilation > (UINT32_MAX - 1u) / k1) return 0;
    uint32_t extent = (uint32_t)dilation * k1 + 1u;
    if (span < extent) return 0;
    uint32_t n = (span - extent) / (uint32_t)stride + 1u;
    return n > (uint32_t)INT32_MAX ? 0 : (int32_t)n;
}
