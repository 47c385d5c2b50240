/* test_kernels.c - the freestanding integer kernels (sdk/kernels/,
 * crucible/kernels.h) against references written here, in a different
 * style, from the TFLite int8 quantisation spec and gemmlowp's fixed-point
 * definitions: 64-bit arithmetic with explicit floor division and rounding,
 * padded buffers instead of bounds checks, coordinate maps instead of
 * strides. Float computations are used only as sanity bounds and to derive
 * multipliers, as a host would. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <crucible/kernels.h>

#include "runner.h"

/* ---- random numbers ------------------------------------------------------ */
static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static void rng_seed(uint64_t s) { g_rng = s ? s : 1; }
static uint64_t rng64(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}
static uint32_t rng32(void) { return (uint32_t)(rng64() >> 32); }
/* uniform in [lo, hi] */
static int32_t rng_range(int32_t lo, int32_t hi)
{
    uint64_t span = (uint64_t)((int64_t)hi - lo) + 1;
    return (int32_t)(lo + (int64_t)(rng64() % span));
}
static int8_t rng_i8(void) { return (int8_t)rng_range(-128, 127); }
static double rng_unit(void) { return (double)(rng64() >> 11) / 9007199254740992.0; }
/* "interesting" int32s: edges, powers of two and their neighbours, random */
static int32_t rng_i32_interesting(void)
{
    switch (rng32() % 6) {
    case 0: {
        static const int32_t e[] = {0, 1, -1, 2, -2, INT32_MAX, INT32_MIN,
                                    INT32_MAX - 1, INT32_MIN + 1, 1 << 30,
                                    -(1 << 30), 3 << 29, -(3 << 29)};
        return e[rng32() % (sizeof e / sizeof e[0])];
    }
    case 1: {
        int b = (int)(rng32() % 31);
        int32_t v = (int32_t)(1u << b) + rng_range(-1, 1);
        return (rng32() & 1) ? v : -v;
    }
    case 2: return rng_range(-70000, 70000);
    default: return (int32_t)rng32();
    }
}

/* ---- 64-bit reference arithmetic ---------------------------------------- */
static int64_t floor_div(int64_t a, int64_t b) /* b > 0 */
{
    int64_t q = a / b;
    if (a % b != 0 && a < 0) q--;
    return q;
}
/* v mod 2^32 as a two's-complement int32 */
static int32_t wrap32(int64_t v)
{
    int64_t m = v % 4294967296LL;
    if (m < 0) m += 4294967296LL;
    if (m >= 2147483648LL) m -= 4294967296LL;
    return (int32_t)m;
}
/* nearest integer to a*b/2^31, ties toward +inf, saturated */
static int32_t ref_srdhm(int32_t a, int32_t b)
{
    int64_t q = floor_div((int64_t)a * b + (1LL << 30), 1LL << 31);
    return q > INT32_MAX ? INT32_MAX : (int32_t)q;
}
/* nearest integer to x/2^e, ties away from zero (any e >= 0) */
static int32_t ref_rdivpot(int32_t x, int e)
{
    if (e <= 0) return x;
    if (e > 40) return 0;
    int64_t d = 1LL << e;
    int64_t q = floor_div(x, d), r = (int64_t)x - q * d;
    if (2 * r > d || (2 * r == d && x > 0)) q++;
    return (int32_t)q;
}
/* gemmlowp's own formulation: mask, remainder, threshold (e in 0..31) */
static int32_t gemmlowp_rdivpot(int32_t x, int e)
{
    int32_t mask = (int32_t)((1LL << e) - 1);
    int32_t rem = x & mask;
    int32_t thr = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + (rem > thr ? 1 : 0);
}
static int32_t ref_mbqm(int32_t x, int32_t m, int s)
{
    int left = s > 0 ? s : 0, right = s > 0 ? 0 : -s;
    return ref_rdivpot(ref_srdhm(wrap32((int64_t)x * (1LL << left)), m), right);
}
static int32_t clampi(int64_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : v > hi ? hi : (int32_t)v;
}
static int8_t ref_requant(int64_t acc64, int32_t m, int s, int32_t zp,
                          int32_t lo, int32_t hi)
{
    return (int8_t)clampi((int64_t)ref_mbqm(wrap32(acc64), m, s) + zp, lo, hi);
}

/* TFLite QuantizeMultiplier (host side; double). */
static void quantize_multiplier(double r, int32_t *m, int32_t *s)
{
    if (r == 0) {
        *m = 0;
        *s = 0;
        return;
    }
    int e;
    double f = frexp(r, &e);
    int64_t q = llround(f * 2147483648.0);
    if (q == 2147483648LL) {
        q /= 2;
        e++;
    }
    if (e < -31) {
        e = 0;
        q = 0;
    }
    *m = (int32_t)q;
    *s = e;
}

/* random clamp range: full, relu-like, or narrow */
static void rng_clamp(int32_t zp, int32_t *lo, int32_t *hi)
{
    switch (rng32() % 4) {
    case 0: *lo = zp; *hi = 127; break;
    case 1: *lo = rng_range(-128, 0); *hi = rng_range(1, 127); break;
    default: *lo = -128; *hi = 127; break;
    }
}

/* ---- packing (written here from ir.h's dtype comments) ------------------ */
static int wbits(crk_wfmt f)
{
    return f == CRK_W_I8 ? 8 : f == CRK_W_I4 ? 4 : f == CRK_W_TERNARY ? 2 : 1;
}
static int32_t rng_weight(crk_wfmt f)
{
    switch (f) {
    case CRK_W_I8: return rng_range(-128, 127);
    case CRK_W_I4: return rng_range(-8, 7);
    case CRK_W_TERNARY: return rng_range(-1, 1);
    default: return (rng32() & 1) ? 1 : -1;
    }
}
static unsigned code_of(crk_wfmt f, int32_t v)
{
    switch (f) {
    case CRK_W_I8: return (unsigned)v & 0xFFu;
    case CRK_W_I4: return (unsigned)v & 0xFu;
    case CRK_W_TERNARY: return v == 0 ? 0u : v == 1 ? 1u : 3u;
    default: return v > 0 ? 1u : 0u;
    }
}
/* values[n] -> packed bytes (calloc'd), element i at bit i*bits */
static uint8_t *pack(crk_wfmt f, const int32_t *v, size_t n)
{
    int b = wbits(f);
    size_t bytes = (n * (size_t)b + 7) / 8;
    uint8_t *p = calloc(bytes + 1, 1);
    for (size_t i = 0; i < n; i++) {
        size_t bit = i * (size_t)b;
        p[bit / 8] |= (uint8_t)(code_of(f, v[i]) << (bit % 8));
    }
    return p;
}

/* ---- tests: primitives --------------------------------------------------- */

TEST(test_kernel_version)
{
    CHECK(CRK_VERSION >= 1);
    CHECK(crk_version() == CRK_VERSION);
    return TEST_PASS;
}

TEST(test_kernel_srdhm)
{
    /* edges worked out by hand */
    CHECK(crk_srdhm(INT32_MIN, INT32_MIN) == INT32_MAX); /* 2^62/2^31 = 2^31 */
    CHECK(crk_srdhm(INT32_MAX, INT32_MAX) == 2147483646);
    CHECK(crk_srdhm(INT32_MIN, INT32_MAX) == -2147483647);
    CHECK(crk_srdhm(INT32_MIN, 1) == -1);
    CHECK(crk_srdhm(1 << 30, 1) == 1);     /* +0.5 -> 1 */
    CHECK(crk_srdhm(-(1 << 30), 1) == 0);  /* -0.5 -> 0: ties toward +inf */
    CHECK(crk_srdhm(3 << 29, 2) == 2);     /* 1.5 -> 2 */
    CHECK(crk_srdhm(-(3 << 29), 2) == -1); /* -1.5 -> -1 */
    CHECK(crk_srdhm(0, INT32_MIN) == 0);
    CHECK(crk_srdhm(1 << 30, 1 << 30) == 1 << 29);
    CHECK(crk_srdhm(-(1 << 30), 1 << 30) == -(1 << 29));
    rng_seed(1);
    for (int i = 0; i < 300000; i++) {
        int32_t a = rng_i32_interesting(), b = rng_i32_interesting();
        int32_t got = crk_srdhm(a, b), want = ref_srdhm(a, b);
        CHECK_MSG(got == want, "srdhm(%d, %d) = %d, want %d", a, b, got, want);
        CHECK(crk_srdhm(b, a) == got); /* symmetric */
    }
    /* every tie: a*b = (2k+1) * 2^30 */
    for (int i = 0; i < 20000; i++) {
        int32_t k = rng_range(-(1 << 20), 1 << 20);
        int32_t a = 2 * k + 1, b = 1 << 30;
        int32_t want = (int32_t)floor_div(2 * (int64_t)k + 2, 2); /* k + 1 */
        CHECK_MSG(crk_srdhm(a, b) == want, "tie %d", a);
    }
    return TEST_PASS;
}

TEST(test_kernel_rdivpot)
{
    CHECK(crk_rdivpot(5, 1) == 3);   /* 2.5 -> 3 */
    CHECK(crk_rdivpot(-5, 1) == -3); /* -2.5 -> -3: away from zero */
    CHECK(crk_rdivpot(3, 1) == 2);
    CHECK(crk_rdivpot(-3, 1) == -2);
    CHECK(crk_rdivpot(-4, 1) == -2);
    CHECK(crk_rdivpot(6, 2) == 2);   /* 1.5 -> 2 */
    CHECK(crk_rdivpot(-6, 2) == -2);
    CHECK(crk_rdivpot(-5, 2) == -1); /* -1.25 -> -1 */
    CHECK(crk_rdivpot(-7, 2) == -2); /* -1.75 -> -2 */
    CHECK(crk_rdivpot(12345, 0) == 12345);
    CHECK(crk_rdivpot(INT32_MIN, 31) == -1);
    CHECK(crk_rdivpot(INT32_MAX, 31) == 1);
    CHECK(crk_rdivpot(1 << 30, 31) == 1);     /* 0.5 -> 1 */
    CHECK(crk_rdivpot(-(1 << 30), 31) == -1); /* -0.5 -> -1 */
    CHECK(crk_rdivpot((1 << 30) - 1, 31) == 0);
    CHECK(crk_rdivpot(INT32_MIN, 32) == -1);  /* -0.5 -> -1 */
    CHECK(crk_rdivpot(INT32_MAX, 32) == 0);
    CHECK(crk_rdivpot(INT32_MIN, 40) == 0);
    CHECK(crk_rdivpot(INT32_MIN, 1) == -(1 << 30));
    rng_seed(2);
    for (int i = 0; i < 300000; i++) {
        int32_t x = rng_i32_interesting();
        int e = (int)(rng32() % 32);
        int32_t got = crk_rdivpot(x, e);
        CHECK_MSG(got == ref_rdivpot(x, e), "rdivpot(%d, %d) = %d want %d", x, e,
                  got, ref_rdivpot(x, e));
        CHECK_MSG(got == gemmlowp_rdivpot(x, e), "rdivpot(%d, %d) = %d, gemmlowp %d",
                  x, e, got, gemmlowp_rdivpot(x, e));
    }
    /* exact ties at every exponent, both signs */
    for (int e = 1; e < 31; e++)
        for (int32_t k = -50; k <= 50; k++) {
            int64_t x = (2 * (int64_t)k + 1) * (1LL << (e - 1));
            if (x < INT32_MIN || x > INT32_MAX) continue;
            int32_t want = k >= 0 ? k + 1 : k; /* away from zero */
            CHECK_MSG(crk_rdivpot((int32_t)x, e) == want, "tie x=%lld e=%d",
                      (long long)x, e);
        }
    return TEST_PASS;
}

TEST(test_kernel_mbqm)
{
    rng_seed(3);
    for (int i = 0; i < 300000; i++) {
        int32_t x = rng_i32_interesting();
        int32_t m = (rng32() % 8 == 0) ? rng_i32_interesting()
                                       : rng_range(1 << 30, INT32_MAX);
        int s = rng_range(-31, 31);
        int32_t got = crk_mbqm(x, m, s);
        CHECK_MSG(got == ref_mbqm(x, m, s), "mbqm(%d, %d, %d) = %d want %d", x,
                  m, s, got, ref_mbqm(x, m, s));
        /* against the real value where the left shift did not wrap */
        int left = s > 0 ? s : 0;
        if ((int64_t)x * (1LL << left) == wrap32((int64_t)x * (1LL << left))) {
            double real = (double)x * (double)m * ldexp(1.0, s - 31);
            CHECK_MSG(fabs(real - got) <= 1.0, "mbqm(%d,%d,%d)=%d real %.3f", x, m,
                      s, got, real);
        }
    }
    /* a multiplier of 0.5 and shift 0 halves with ties away from zero;
     * 0.75 * 2^1 = 1.5 */
    CHECK(crk_mbqm(7, 1 << 30, 0) == 4);
    CHECK(crk_mbqm(-7, 1 << 30, 0) == -3); /* srdhm: -3.5 -> -3 (tie up) */
    CHECK(crk_mbqm(-7, 1 << 30, -1) == -2); /* -3.5 -> -3 -> -1.5 -> -2 */
    CHECK(crk_mbqm(10, 3 << 29, 1) == 15);
    /* double rounding, the documented behaviour: 0.5 * 5 = 2.5 -> 3, then
     * /2 = 1.5 -> 2 (single rounding of 1.25 would give 1) */
    CHECK(crk_mbqm(5, 1 << 30, -1) == 2);
    /* requant_one = clamp(mbqm + zp) */
    CHECK(crk_requant_one(1000, 1 << 30, -3, 5, -128, 127) == 68); /* 62.5->63, +5 */
    CHECK(crk_requant_one(INT32_MAX, INT32_MAX, 0, 127, -128, 127) == 127);
    CHECK(crk_requant_one(INT32_MIN, INT32_MAX, 0, -128, -128, 127) == -128);
    CHECK(crk_requant_one(-1000, 1 << 30, 0, 0, 0, 127) == 0);
    return TEST_PASS;
}

TEST(test_kernel_weight_packing)
{
    /* bit patterns from ir.h: I4 low nibble first, two's complement */
    const uint8_t i4[] = {0x21, 0xF8, 0x7F};
    CHECK(crk_weight_get(i4, CRK_W_I4, 0) == 1);
    CHECK(crk_weight_get(i4, CRK_W_I4, 1) == 2);
    CHECK(crk_weight_get(i4, CRK_W_I4, 2) == -8);
    CHECK(crk_weight_get(i4, CRK_W_I4, 3) == -1);
    CHECK(crk_weight_get(i4, CRK_W_I4, 4) == -1);
    CHECK(crk_weight_get(i4, CRK_W_I4, 5) == 7);
    /* TERNARY 2 bits, LSB first: 0x1D = 00 01 11 01 -> +1 -1 +1 0 */
    const uint8_t t[] = {0x1D, 0x02};
    CHECK(crk_weight_get(t, CRK_W_TERNARY, 0) == 1);
    CHECK(crk_weight_get(t, CRK_W_TERNARY, 1) == -1);
    CHECK(crk_weight_get(t, CRK_W_TERNARY, 2) == 1);
    CHECK(crk_weight_get(t, CRK_W_TERNARY, 3) == 0);
    CHECK(crk_weight_get(t, CRK_W_TERNARY, 4) == 0); /* 10: invalid -> 0 */
    /* BINARY 1 bit, LSB first: 1 = +1, 0 = -1 */
    const uint8_t b[] = {0x05};
    const int32_t bw[8] = {1, -1, 1, -1, -1, -1, -1, -1};
    for (int i = 0; i < 8; i++) CHECK(crk_weight_get(b, CRK_W_BINARY, (size_t)i) == bw[i]);
    const uint8_t i8[] = {0x80, 0x7F, 0xFF};
    CHECK(crk_weight_get(i8, CRK_W_I8, 0) == -128);
    CHECK(crk_weight_get(i8, CRK_W_I8, 1) == 127);
    CHECK(crk_weight_get(i8, CRK_W_I8, 2) == -1);
    CHECK(crk_weight_bytes(CRK_W_I8, 5) == 5);
    CHECK(crk_weight_bytes(CRK_W_I4, 5) == 3);
    CHECK(crk_weight_bytes(CRK_W_TERNARY, 5) == 2);
    CHECK(crk_weight_bytes(CRK_W_TERNARY, 8) == 2);
    CHECK(crk_weight_bytes(CRK_W_BINARY, 9) == 2);
    CHECK(crk_weight_bytes(CRK_W_BINARY, 8) == 1);
    /* random round trips through the test's packer */
    rng_seed(4);
    const crk_wfmt fmts[] = {CRK_W_I8, CRK_W_I4, CRK_W_TERNARY, CRK_W_BINARY};
    for (int f = 0; f < 4; f++) {
        int32_t v[517];
        for (int i = 0; i < 517; i++) v[i] = rng_weight(fmts[f]);
        uint8_t *p = pack(fmts[f], v, 517);
        for (int i = 0; i < 517; i++)
            CHECK(crk_weight_get(p, fmts[f], (size_t)i) == v[i]);
        free(p);
    }
    return TEST_PASS;
}

/* ---- fully connected ----------------------------------------------------- */

typedef struct fc_case {
    int32_t N, K, M, in_zp, out_zp, lo, hi, per_channel, has_bias;
    int8_t *x;
    int32_t *w; /* unpacked values */
    int32_t *bias, *mult, *shift;
} fc_case;

static void fc_case_free(fc_case *c)
{
    free(c->x);
    free(c->w);
    free(c->bias);
    free(c->mult);
    free(c->shift);
}

/* A realistic case: float scales turned into multipliers like a host. */
static void fc_case_make(fc_case *c, crk_wfmt f)
{
    c->N = rng_range(1, 3);
    c->K = rng_range(1, 70);
    c->M = rng_range(1, 17);
    c->in_zp = rng_range(-128, 127);
    c->out_zp = rng_range(-128, 127);
    rng_clamp(c->out_zp, &c->lo, &c->hi);
    c->per_channel = (int32_t)(rng32() & 1);
    c->has_bias = (rng32() % 4) != 0;
    c->x = malloc((size_t)c->N * (size_t)c->K);
    c->w = malloc(sizeof(int32_t) * (size_t)c->M * (size_t)c->K);
    c->bias = malloc(sizeof(int32_t) * (size_t)c->M);
    c->mult = malloc(sizeof(int32_t) * (size_t)c->M);
    c->shift = malloc(sizeof(int32_t) * (size_t)c->M);
    for (int32_t i = 0; i < c->N * c->K; i++) c->x[i] = rng_i8();
    for (int32_t i = 0; i < c->M * c->K; i++) c->w[i] = rng_weight(f);
    double s_in = 0.01 + 0.1 * rng_unit(), s_out = 0.05 + 2.0 * rng_unit();
    int32_t nq = c->per_channel ? c->M : 1;
    for (int32_t m = 0; m < c->M; m++) {
        double s_w = (f == CRK_W_I8 ? 0.002 : 0.05) * (0.2 + rng_unit());
        if (m < nq) quantize_multiplier(s_in * s_w / s_out, &c->mult[m], &c->shift[m]);
        c->bias[m] = rng_range(-20000, 20000);
    }
    /* sometimes raw random multipliers and shifts, including left shifts */
    if (rng32() % 4 == 0)
        for (int32_t m = 0; m < nq; m++) {
            c->mult[m] = rng_range(1 << 30, INT32_MAX);
            c->shift[m] = rng_range(-20, 4);
        }
}

static int8_t *fc_reference(const fc_case *c)
{
    int8_t *y = malloc((size_t)c->N * (size_t)c->M);
    for (int32_t n = 0; n < c->N; n++)
        for (int32_t m = 0; m < c->M; m++) {
            int64_t acc = c->has_bias ? c->bias[m] : 0;
            for (int32_t k = 0; k < c->K; k++)
                acc += (int64_t)c->w[m * c->K + k] * ((int64_t)c->x[n * c->K + k] - c->in_zp);
            int32_t q = c->per_channel ? m : 0;
            y[n * c->M + m] = ref_requant(acc, c->mult[q], c->shift[q], c->out_zp,
                                          c->lo, c->hi);
        }
    return y;
}

static int fc_run(const fc_case *c, crk_wfmt f, int8_t *y)
{
    crk_fc_params p = {c->N, c->K, c->M, c->in_zp, c->out_zp, c->lo, c->hi,
                       c->per_channel, c->mult, c->shift};
    uint8_t *w = pack(f, c->w, (size_t)c->M * (size_t)c->K);
    int rc = crk_fully_connected(&p, c->x, w, f, c->has_bias ? c->bias : NULL, y);
    free(w);
    return rc;
}

TEST(test_kernel_fc_int8)
{
    rng_seed(5);
    int compared = 0;
    for (int iter = 0; iter < 400; iter++) {
        fc_case c;
        fc_case_make(&c, CRK_W_I8);
        int8_t *want = fc_reference(&c);
        int8_t *got = malloc((size_t)c.N * (size_t)c.M);
        CHECK(fc_run(&c, CRK_W_I8, got) == CRK_OK);
        for (int32_t i = 0; i < c.N * c.M; i++) {
            CHECK_MSG(got[i] == want[i], "iter %d elem %d: %d want %d", iter, i,
                      got[i], want[i]);
            compared++;
        }
        free(want);
        free(got);
        fc_case_free(&c);
    }
    CHECK(compared > 1000);
    /* the float model agrees to within one step when nothing saturates */
    const int8_t x[4] = {-3, 20, 100, -128};
    const int8_t w[8] = {10, -20, 30, 127, -128, 5, 0, 1};
    const int32_t bias[2] = {1000, -500};
    double s_in = 0.05, s_w[2] = {0.002, 0.004}, s_out = 0.1;
    int32_t mult[2], shift[2];
    for (int m = 0; m < 2; m++) quantize_multiplier(s_in * s_w[m] / s_out, &mult[m], &shift[m]);
    crk_fc_params p = {1, 4, 2, -3, 5, -128, 127, 1, mult, shift};
    int8_t y[2];
    CHECK(crk_fully_connected(&p, x, w, CRK_W_I8, bias, y) == CRK_OK);
    for (int m = 0; m < 2; m++) {
        double real = bias[m] * s_in * s_w[m];
        for (int k = 0; k < 4; k++) real += (x[k] + 3) * s_in * w[m * 4 + k] * s_w[m];
        double q = real / s_out + 5;
        CHECK_MSG(fabs(q - y[m]) <= 1.0, "m=%d y=%d float %.3f", m, y[m], q);
    }
    return TEST_PASS;
}

TEST(test_kernel_fc_packed)
{
    const crk_wfmt fmts[] = {CRK_W_I4, CRK_W_TERNARY, CRK_W_BINARY};
    rng_seed(6);
    for (int f = 0; f < 3; f++)
        for (int iter = 0; iter < 200; iter++) {
            fc_case c;
            fc_case_make(&c, fmts[f]);
            int8_t *want = fc_reference(&c);
            int8_t *got = malloc((size_t)c.N * (size_t)c.M);
            int8_t *as_i8 = malloc((size_t)c.N * (size_t)c.M);
            CHECK(fc_run(&c, fmts[f], got) == CRK_OK);
            /* the same values unpacked to int8 */
            CHECK(fc_run(&c, CRK_W_I8, as_i8) == CRK_OK);
            for (int32_t i = 0; i < c.N * c.M; i++) {
                CHECK_MSG(got[i] == as_i8[i], "fmt %d iter %d: %d vs int8 %d", f,
                          iter, got[i], as_i8[i]);
                CHECK(got[i] == want[i]);
            }
            free(want);
            free(got);
            free(as_i8);
            fc_case_free(&c);
        }
    return TEST_PASS;
}

/* ---- conv2d ---------------------------------------------------------------- */

typedef struct conv_case {
    crk_conv_params p;
    int32_t OH, OW;
    int8_t *x;
    int32_t *w, *bias, *mult, *shift;
    int has_bias;
} conv_case;

static void conv_case_free(conv_case *c)
{
    free(c->x);
    free(c->w);
    free(c->bias);
    free(c->mult);
    free(c->shift);
}

static void conv_case_make(conv_case *c, crk_wfmt f)
{
    crk_conv_params *p = &c->p;
    memset(p, 0, sizeof *p);
    do {
        p->batches = rng_range(1, 2);
        switch (rng32() % 4) {
        case 0: /* depthwise, multiplier 1 or 2 */
            p->in_ch = rng_range(1, 6);
            p->groups = p->in_ch;
            p->out_ch = p->in_ch * rng_range(1, 2);
            break;
        case 1: /* grouped */
            p->groups = rng_range(2, 3);
            p->in_ch = p->groups * rng_range(1, 3);
            p->out_ch = p->groups * rng_range(1, 3);
            break;
        default:
            p->groups = 1;
            p->in_ch = rng_range(1, 5);
            p->out_ch = rng_range(1, 6);
        }
        p->in_h = rng_range(1, 9);
        p->in_w = rng_range(1, 9);
        p->kernel_h = rng_range(1, 4);
        p->kernel_w = rng_range(1, 4);
        p->stride_h = rng_range(1, 3);
        p->stride_w = rng_range(1, 3);
        p->dilation_h = rng_range(1, 2);
        p->dilation_w = rng_range(1, 2);
        p->pad_top = rng_range(0, 2);
        p->pad_bottom = rng_range(0, 2);
        p->pad_left = rng_range(0, 2);
        p->pad_right = rng_range(0, 3);
        c->OH = crk_out_dim(p->in_h, p->kernel_h, p->stride_h, p->dilation_h,
                            p->pad_top, p->pad_bottom);
        c->OW = crk_out_dim(p->in_w, p->kernel_w, p->stride_w, p->dilation_w,
                            p->pad_left, p->pad_right);
    } while (c->OH < 1 || c->OW < 1);
    p->input_zp = rng_range(-128, 127);
    p->output_zp = rng_range(-128, 127);
    rng_clamp(p->output_zp, &p->act_min, &p->act_max);
    p->per_channel = (int32_t)(rng32() & 1);
    c->has_bias = (rng32() % 4) != 0;
    size_t nx = (size_t)p->batches * (size_t)p->in_ch * (size_t)p->in_h * (size_t)p->in_w;
    size_t nw = (size_t)p->out_ch * (size_t)(p->in_ch / p->groups) *
                (size_t)p->kernel_h * (size_t)p->kernel_w;
    c->x = malloc(nx);
    c->w = malloc(sizeof(int32_t) * nw);
    c->bias = malloc(sizeof(int32_t) * (size_t)p->out_ch);
    c->mult = malloc(sizeof(int32_t) * (size_t)p->out_ch);
    c->shift = malloc(sizeof(int32_t) * (size_t)p->out_ch);
    for (size_t i = 0; i < nx; i++) c->x[i] = rng_i8();
    for (size_t i = 0; i < nw; i++) c->w[i] = rng_weight(f);
    double s_in = 0.02 + 0.05 * rng_unit(), s_out = 0.05 + rng_unit();
    for (int32_t o = 0; o < p->out_ch; o++) {
        double s_w = (f == CRK_W_I8 ? 0.003 : 0.05) * (0.2 + rng_unit());
        quantize_multiplier(s_in * s_w / s_out, &c->mult[o], &c->shift[o]);
        c->bias[o] = rng_range(-30000, 30000);
    }
    p->mult = c->mult;
    p->shift = c->shift;
}

/* Reference: copy the input into a zero-point-filled padded buffer, then a
 * plain dilated correlation with no bounds checks. */
static int8_t *conv_reference(const conv_case *c)
{
    const crk_conv_params *p = &c->p;
    const int32_t PH = p->in_h + p->pad_top + p->pad_bottom;
    const int32_t PW = p->in_w + p->pad_left + p->pad_right;
    const int32_t C = p->in_ch, O = p->out_ch, G = p->groups;
    const int32_t Cg = C / G, Og = O / G;
    int8_t *pad = malloc((size_t)C * (size_t)PH * (size_t)PW);
    int8_t *y = malloc((size_t)p->batches * (size_t)O * (size_t)c->OH * (size_t)c->OW);
    for (int32_t n = 0; n < p->batches; n++) {
        for (int32_t i = 0; i < C * PH * PW; i++) pad[i] = (int8_t)p->input_zp;
        for (int32_t ch = 0; ch < C; ch++)
            for (int32_t yy = 0; yy < p->in_h; yy++)
                for (int32_t xx = 0; xx < p->in_w; xx++)
                    pad[(ch * PH + yy + p->pad_top) * PW + xx + p->pad_left] =
                        c->x[((n * C + ch) * p->in_h + yy) * p->in_w + xx];
        for (int32_t o = 0; o < O; o++)
            for (int32_t oy = 0; oy < c->OH; oy++)
                for (int32_t ox = 0; ox < c->OW; ox++) {
                    int64_t acc = c->has_bias ? c->bias[o] : 0;
                    for (int32_t ci = 0; ci < Cg; ci++)
                        for (int32_t ky = 0; ky < p->kernel_h; ky++)
                            for (int32_t kx = 0; kx < p->kernel_w; kx++) {
                                int32_t ch = (o / Og) * Cg + ci;
                                int32_t py = oy * p->stride_h + ky * p->dilation_h;
                                int32_t px = ox * p->stride_w + kx * p->dilation_w;
                                int64_t xv = pad[(ch * PH + py) * PW + px];
                                int64_t wv = c->w[((o * Cg + ci) * p->kernel_h + ky) *
                                                      p->kernel_w + kx];
                                acc += wv * (xv - p->input_zp);
                            }
                    int32_t q = p->per_channel ? o : 0;
                    y[((n * O + o) * c->OH + oy) * c->OW + ox] =
                        ref_requant(acc, c->mult[q], c->shift[q], p->output_zp,
                                    p->act_min, p->act_max);
                }
    }
    free(pad);
    return y;
}

static int conv_run(const conv_case *c, crk_wfmt f, int8_t *y)
{
    const crk_conv_params *p = &c->p;
    size_t nw = (size_t)p->out_ch * (size_t)(p->in_ch / p->groups) *
                (size_t)p->kernel_h * (size_t)p->kernel_w;
    uint8_t *w = pack(f, c->w, nw);
    int rc = crk_conv2d(p, c->x, w, f, c->has_bias ? c->bias : NULL, y);
    free(w);
    return rc;
}

static int conv_check(crk_wfmt f, int iters, uint64_t seed)
{
    rng_seed(seed);
    for (int iter = 0; iter < iters; iter++) {
        conv_case c;
        conv_case_make(&c, f);
        size_t ny = (size_t)c.p.batches * (size_t)c.p.out_ch * (size_t)c.OH * (size_t)c.OW;
        int8_t *want = conv_reference(&c);
        int8_t *got = malloc(ny), *as_i8 = malloc(ny);
        CHECK(conv_run(&c, f, got) == CRK_OK);
        CHECK(conv_run(&c, CRK_W_I8, as_i8) == CRK_OK);
        for (size_t i = 0; i < ny; i++) {
            CHECK_MSG(got[i] == want[i],
                      "fmt %d iter %d elem %zu: %d want %d (C%d O%d g%d k%dx%d s%d,%d d%d,%d)",
                      (int)f, iter, i, got[i], want[i], c.p.in_ch, c.p.out_ch,
                      c.p.groups, c.p.kernel_h, c.p.kernel_w, c.p.stride_h,
                      c.p.stride_w, c.p.dilation_h, c.p.dilation_w);
            CHECK(got[i] == as_i8[i]);
        }
        free(want);
        free(got);
        free(as_i8);
        conv_case_free(&c);
    }
    return TEST_PASS;
}

TEST(test_kernel_conv2d_int8)
{
    if (conv_check(CRK_W_I8, 500, 7) != TEST_PASS) return TEST_FAIL;
    /* a hand case: 1x1x3x3 input, 2x2 kernel of ones, pad 1 on the left and
     * top only, zp 0, unit multiplier 0.5 * 2^1 */
    const int8_t x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const int8_t w[4] = {1, 1, 1, 1};
    int32_t m = 1 << 30, s = 1;
    crk_conv_params p = {1, 1, 3, 3, 1, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0, 0,
                         0, 0, -128, 127, 0, &m, &s};
    CHECK(crk_out_dim(3, 2, 1, 1, 1, 0) == 3);
    int8_t y[9];
    CHECK(crk_conv2d(&p, x, w, CRK_W_I8, NULL, y) == CRK_OK);
    const int8_t want[9] = {1, 3, 5, 5, 12, 16, 11, 24, 28};
    for (int i = 0; i < 9; i++) CHECK_MSG(y[i] == want[i], "y[%d]=%d", i, y[i]);
    return TEST_PASS;
}

TEST(test_kernel_conv2d_packed)
{
    if (conv_check(CRK_W_I4, 200, 8) != TEST_PASS) return TEST_FAIL;
    if (conv_check(CRK_W_TERNARY, 200, 9) != TEST_PASS) return TEST_FAIL;
    return conv_check(CRK_W_BINARY, 200, 10);
}

TEST(test_kernel_out_dim)
{
    CHECK(crk_out_dim(5, 3, 1, 1, 0, 0) == 3);
    CHECK(crk_out_dim(5, 3, 2, 1, 1, 1) == 3);
    CHECK(crk_out_dim(7, 3, 1, 2, 0, 0) == 3);
    CHECK(crk_out_dim(2, 3, 1, 1, 0, 0) == 0);
    CHECK(crk_out_dim(0, 1, 1, 1, 0, 0) == 0);
    CHECK(crk_out_dim(5, 1, 0, 1, 0, 0) == 0);
    CHECK(crk_out_dim(INT32_MAX, 1, 1, 1, INT32_MAX, INT32_MAX) == 0);
    CHECK(crk_out_dim(INT32_MAX, 1, 1, 1, 0, 0) == INT32_MAX);
    CHECK(crk_out_dim(10, INT32_MAX, 1, INT32_MAX, 0, 0) == 0);
    return TEST_PASS;
}

/* ---- pooling --------------------------------------------------------------- */

/* nearest integer to s / c, ties away from zero, computed as
 * sign(s) * floor((2|s| + c) / 2c) */
static int32_t div_round_away(int64_t s, int64_t c)
{
    int64_t a = s < 0 ? -s : s;
    int64_t q = (2 * a + c) / (2 * c);
    return (int32_t)(s < 0 ? -q : q);
}

static int pool_check_one(const crk_pool_params *p, const int8_t *x, int is_max)
{
    const int32_t OH = crk_out_dim(p->in_h, p->kernel_h, p->stride_h, p->dilation_h,
                                   p->pad_top, p->pad_bottom);
    const int32_t OW = crk_out_dim(p->in_w, p->kernel_w, p->stride_w, p->dilation_w,
                                   p->pad_left, p->pad_right);
    const int32_t PH = p->in_h + p->pad_top + p->pad_bottom;
    const int32_t PW = p->in_w + p->pad_left + p->pad_right;
    size_t planes = (size_t)p->batches * (size_t)p->channels;
    int8_t *y = malloc(planes * (size_t)OH * (size_t)OW);
    int rc = is_max ? crk_max_pool2d(p, x, y) : crk_avg_pool2d(p, x, y);
    CHECK(rc == CRK_OK);
    /* padded plane where padding is marked with a value outside int8 */
    int32_t *pad = malloc(sizeof(int32_t) * (size_t)PH * (size_t)PW);
    for (size_t pl = 0; pl < planes; pl++) {
        for (int32_t i = 0; i < PH * PW; i++) pad[i] = 1000;
        for (int32_t yy = 0; yy < p->in_h; yy++)
            for (int32_t xx = 0; xx < p->in_w; xx++)
                pad[(yy + p->pad_top) * PW + xx + p->pad_left] =
                    x[pl * (size_t)p->in_h * (size_t)p->in_w + (size_t)(yy * p->in_w + xx)];
        for (int32_t oy = 0; oy < OH; oy++)
            for (int32_t ox = 0; ox < OW; ox++) {
                int64_t sum = 0, count = 0, best = -1000;
                for (int32_t ky = 0; ky < p->kernel_h; ky++)
                    for (int32_t kx = 0; kx < p->kernel_w; kx++) {
                        int32_t v = pad[(oy * p->stride_h + ky * p->dilation_h) * PW +
                                        ox * p->stride_w + kx * p->dilation_w];
                        if (v == 1000) {
                            if (!is_max && p->count_include_pad) {
                                sum += p->pad_value;
                                count++;
                            }
                            continue;
                        }
                        sum += v;
                        count++;
                        if (v > best) best = v;
                    }
                int64_t r;
                if (is_max) r = best == -1000 ? -128 : best;
                else r = count ? div_round_away(sum, count) : p->pad_value;
                int8_t want = (int8_t)clampi(r, p->act_min, p->act_max);
                int8_t got = y[(pl * (size_t)OH + (size_t)oy) * (size_t)OW + (size_t)ox];
                if (got != want) {
                    fprintf(stderr, "    %s pool plane %zu (%d,%d): %d want %d\n",
                            is_max ? "max" : "avg", pl, oy, ox, got, want);
                    free(pad);
                    free(y);
                    return TEST_FAIL;
                }
            }
    }
    free(pad);
    free(y);
    return TEST_PASS;
}

TEST(test_kernel_pool)
{
    /* hand cases: averages of 2 with ties both ways */
    {
        const int8_t x[4] = {1, 2, -1, -2};
        crk_pool_params p = {1, 1, 2, 2, 1, 2, 1, 2, 1, 1, 0, 0, 0, 0, -128, 127, 0, 0};
        int8_t y[3];
        CHECK(crk_avg_pool2d(&p, x, y) == CRK_OK);
        CHECK(y[0] == 2 && y[1] == -2); /* 1.5 -> 2, -1.5 -> -2 */
        CHECK(crk_max_pool2d(&p, x, y) == CRK_OK);
        CHECK(y[0] == 2 && y[1] == -1);
        const int8_t x3[3] = {1, 1, 2}; /* 4/3 -> 1 */
        crk_pool_params p3 = {1, 1, 1, 3, 1, 3, 1, 1, 1, 1, 0, 0, 0, 0, -128, 127, 0, 0};
        CHECK(crk_avg_pool2d(&p3, x3, y) == CRK_OK && y[0] == 1);
        /* padded: TFLite excludes the padding from the count */
        crk_pool_params pp = {1, 1, 1, 3, 1, 3, 1, 1, 1, 1, 0, 1, 0, 1, -128, 127, 0, -7};
        const int8_t x4[3] = {10, 20, 31};
        CHECK(crk_avg_pool2d(&pp, x4, y) == CRK_OK);
        CHECK(y[0] == 15 && y[1] == 20 && y[2] == 26); /* 15, 20.33, 25.5 */
        pp.count_include_pad = 1; /* pads hold -7 */
        CHECK(crk_avg_pool2d(&pp, x4, y) == CRK_OK);
        CHECK(y[0] == 8 && y[1] == 20 && y[2] == 15); /* 23/3, 61/3, 44/3 */
    }
    rng_seed(11);
    for (int iter = 0; iter < 600; iter++) {
        crk_pool_params p;
        memset(&p, 0, sizeof p);
        p.batches = rng_range(1, 2);
        p.channels = rng_range(1, 4);
        p.in_h = rng_range(1, 9);
        p.in_w = rng_range(1, 9);
        p.kernel_h = rng_range(1, 4);
        p.kernel_w = rng_range(1, 4);
        p.stride_h = rng_range(1, 3);
        p.stride_w = rng_range(1, 3);
        p.dilation_h = (rng32() % 4 == 0) ? 2 : 1;
        p.dilation_w = (rng32() % 4 == 0) ? 2 : 1;
        p.pad_top = rng_range(0, p.kernel_h - 1);
        p.pad_left = rng_range(0, p.kernel_w - 1);
        p.pad_bottom = rng_range(0, p.kernel_h - 1);
        p.pad_right = rng_range(0, p.kernel_w - 1);
        p.pad_value = rng_range(-128, 127);
        p.count_include_pad = (int32_t)(rng32() & 1);
        rng_clamp(0, &p.act_min, &p.act_max);
        if (crk_out_dim(p.in_h, p.kernel_h, p.stride_h, p.dilation_h, p.pad_top,
                        p.pad_bottom) < 1 ||
            crk_out_dim(p.in_w, p.kernel_w, p.stride_w, p.dilation_w, p.pad_left,
                        p.pad_right) < 1)
            continue;
        size_t nx = (size_t)p.batches * (size_t)p.channels * (size_t)p.in_h * (size_t)p.in_w;
        int8_t *x = malloc(nx);
        for (size_t i = 0; i < nx; i++) x[i] = rng_i8();
        int r1 = pool_check_one(&p, x, 1), r2 = pool_check_one(&p, x, 0);
        free(x);
        CHECK_MSG(r1 == TEST_PASS && r2 == TEST_PASS, "iter %d", iter);
    }
    /* global average pooling = a kernel as large as the input */
    int8_t g[64], gy;
    int64_t gs = 0;
    for (int i = 0; i < 64; i++) gs += g[i] = rng_i8();
    crk_pool_params gp = {1, 1, 8, 8, 8, 8, 1, 1, 1, 1, 0, 0, 0, 0, -128, 127, 0, 0};
    CHECK(crk_avg_pool2d(&gp, g, &gy) == CRK_OK);
    CHECK(gy == div_round_away(gs, 64));
    return TEST_PASS;
}

/* ---- add / sub / mul ------------------------------------------------------- */

static void rand_bcast(crk_bcast4 *b)
{
    for (int i = 0; i < 4; i++) {
        b->out[i] = rng_range(1, 4);
        b->a[i] = (rng32() % 3 == 0) ? 1 : b->out[i];
        b->b[i] = (rng32() % 3 == 0) ? 1 : b->out[i];
    }
}
static size_t numel4(const int32_t d[4])
{
    return (size_t)d[0] * (size_t)d[1] * (size_t)d[2] * (size_t)d[3];
}
/* offset of output coordinate j in an input of dims d (broadcast) */
static size_t bcast_offset(const int32_t d[4], const int32_t j[4])
{
    size_t off = 0;
    for (int i = 0; i < 4; i++) off = off * (size_t)d[i] + (size_t)(d[i] == 1 ? 0 : j[i]);
    return off;
}

TEST(test_kernel_add_sub_mul)
{
    rng_seed(12);
    for (int iter = 0; iter < 600; iter++) {
        crk_bcast4 sh;
        rand_bcast(&sh);
        size_t na = numel4(sh.a), nb = numel4(sh.b), no = numel4(sh.out);
        int8_t *a = malloc(na), *b = malloc(nb), *y = malloc(no);
        for (size_t i = 0; i < na; i++) a[i] = rng_i8();
        for (size_t i = 0; i < nb; i++) b[i] = rng_i8();
        double sa = 0.01 + 0.2 * rng_unit(), sb = 0.01 + 0.2 * rng_unit();
        double so = 0.02 + 0.3 * rng_unit();
        int32_t za = rng_range(-128, 127), zb = rng_range(-128, 127), zo = rng_range(-128, 127);
        int32_t lo, hi;
        rng_clamp(zo, &lo, &hi);
        /* host side of TFLite's int8 add */
        crk_add_params ap;
        ap.a_zp = za;
        ap.b_zp = zb;
        ap.out_zp = zo;
        ap.left_shift = 20;
        double twice_max = 2 * (sa > sb ? sa : sb);
        quantize_multiplier(sa / twice_max, &ap.a_mult, &ap.a_shift);
        quantize_multiplier(sb / twice_max, &ap.b_mult, &ap.b_shift);
        quantize_multiplier(twice_max / ((1 << 20) * so), &ap.out_mult, &ap.out_shift);
        ap.act_min = lo;
        ap.act_max = hi;
        crk_mul_params mp = {za, zb, zo, 0, 0, lo, hi};
        quantize_multiplier(sa * sb / so, &mp.out_mult, &mp.out_shift);

        for (int op = 0; op < 3; op++) {
            int rc = op == 0   ? crk_add_i8(&ap, &sh, a, b, y)
                     : op == 1 ? crk_sub_i8(&ap, &sh, a, b, y)
                               : crk_mul_i8(&mp, &sh, a, b, y);
            CHECK(rc == CRK_OK);
            size_t k = 0;
            int32_t j[4];
            for (j[0] = 0; j[0] < sh.out[0]; j[0]++)
                for (j[1] = 0; j[1] < sh.out[1]; j[1]++)
                    for (j[2] = 0; j[2] < sh.out[2]; j[2]++)
                        for (j[3] = 0; j[3] < sh.out[3]; j[3]++, k++) {
                            int64_t va = a[bcast_offset(sh.a, j)] - za;
                            int64_t vb = b[bcast_offset(sh.b, j)] - zb;
                            int64_t raw;
                            int32_t want;
                            if (op < 2) {
                                int64_t xa = ref_mbqm((int32_t)(va * (1 << 20)), ap.a_mult, ap.a_shift);
                                int64_t xb = ref_mbqm((int32_t)(vb * (1 << 20)), ap.b_mult, ap.b_shift);
                                raw = op == 0 ? xa + xb : xa - xb;
                                want = clampi((int64_t)ref_mbqm((int32_t)raw, ap.out_mult,
                                                                ap.out_shift) + zo, lo, hi);
                            } else {
                                raw = va * vb;
                                want = clampi((int64_t)ref_mbqm((int32_t)raw, mp.out_mult,
                                                                mp.out_shift) + zo, lo, hi);
                            }
                            CHECK_MSG(y[k] == want, "op %d iter %d: %d want %d", op,
                                      iter, y[k], want);
                            /* the float model, where unclamped: within 1 step */
                            double real = op == 0   ? (va * sa + vb * sb)
                                          : op == 1 ? (va * sa - vb * sb)
                                                    : (va * sa) * (vb * sb);
                            double q = real / so + zo;
                            if (q > lo + 1 && q < hi - 1)
                                CHECK_MSG(fabs(q - y[k]) <= 1.0, "op %d: %d vs float %.3f",
                                          op, y[k], q);
                        }
        }
        free(a);
        free(b);
        free(y);
    }
    /* broadcasting shape errors */
    crk_bcast4 bad = {{1, 1, 2, 3}, {1, 1, 2, 3}, {1, 1, 3, 3}};
    crk_mul_params mp = {0, 0, 0, 1 << 30, 1, -128, 127};
    int8_t buf[9] = {0}, out[9];
    CHECK(crk_mul_i8(&mp, &bad, buf, buf, out) == CRK_EINVAL);
    return TEST_PASS;
}

/* ---- requantise, clamp, lookup --------------------------------------------- */

TEST(test_kernel_requantize)
{
    rng_seed(13);
    for (int iter = 0; iter < 300; iter++) {
        crk_requant_params p;
        p.outer = rng_range(1, 3);
        p.channels = rng_range(1, 5);
        p.inner = rng_range(1, 7);
        p.input_zp = rng_range(-128, 127);
        p.output_zp = rng_range(-128, 127);
        rng_clamp(p.output_zp, &p.act_min, &p.act_max);
        p.per_channel = (int32_t)(rng32() & 1);
        int32_t mult[5], shift[5];
        for (int c = 0; c < 5; c++) {
            quantize_multiplier(ldexp(0.5 + rng_unit(), rng_range(-20, 3)), &mult[c], &shift[c]);
        }
        p.mult = mult;
        p.shift = shift;
        size_t n = (size_t)p.outer * (size_t)p.channels * (size_t)p.inner;
        int32_t *x32 = malloc(sizeof(int32_t) * n);
        int8_t *x8 = malloc(n), *y = malloc(n), *y8 = malloc(n);
        for (size_t i = 0; i < n; i++) {
            x32[i] = rng_i32_interesting();
            x8[i] = rng_i8();
        }
        CHECK(crk_requantize_i32_i8(&p, x32, y) == CRK_OK);
        CHECK(crk_requantize_i8_i8(&p, x8, y8) == CRK_OK);
        for (size_t i = 0; i < n; i++) {
            int32_t c = p.per_channel ? (int32_t)((i / (size_t)p.inner) % (size_t)p.channels) : 0;
            CHECK(y[i] == ref_requant(x32[i], mult[c], shift[c], p.output_zp, p.act_min, p.act_max));
            CHECK(y8[i] == ref_requant((int64_t)x8[i] - p.input_zp, mult[c], shift[c],
                                       p.output_zp, p.act_min, p.act_max));
        }
        free(x32);
        free(x8);
        free(y);
        free(y8);
    }
    /* i8 -> i8 with scale 0.5 -> 0.25 doubles the distance to the zp */
    int32_t m, s;
    quantize_multiplier(2.0, &m, &s);
    crk_requant_params p = {1, 1, 4, 10, -20, -128, 127, 0, &m, &s};
    const int8_t x[4] = {10, 11, 60, -128};
    int8_t y[4];
    CHECK(crk_requantize_i8_i8(&p, x, y) == CRK_OK);
    CHECK(y[0] == -20 && y[1] == -18 && y[2] == 80 && y[3] == -128);
    return TEST_PASS;
}

TEST(test_kernel_clamp_lut)
{
    int8_t x[256], y[256];
    for (int i = 0; i < 256; i++) x[i] = (int8_t)(i - 128);
    CHECK(crk_clamp_i8(x, y, 256, -5, 6) == CRK_OK);
    for (int i = 0; i < 256; i++) CHECK(y[i] == (x[i] < -5 ? -5 : x[i] > 6 ? 6 : x[i]));
    CHECK(crk_clamp_i8(x, y, 256, 6, -5) == CRK_EINVAL);
    CHECK(crk_clamp_i8(x, y, 256, -129, 0) == CRK_EINVAL);
    /* in place */
    memcpy(y, x, sizeof y);
    CHECK(crk_clamp_i8(y, y, 256, 0, 127) == CRK_OK);
    CHECK(y[0] == 0 && y[255] == 127 && y[200] == 72);
    /* a sigmoid table as a host builds it: s_in 0.1 zp 3, s_out 1/256 zp -128 */
    int8_t table[256];
    for (int j = 0; j < 256; j++) {
        double v = 1.0 / (1.0 + exp(-0.1 * ((j - 128) - 3)));
        table[j] = (int8_t)clampi(llround(v * 256.0) - 128, -128, 127);
    }
    crk_lut_i8(x, y, 256, table);
    for (int i = 0; i < 256; i++) CHECK(y[i] == table[x[i] + 128]);
    CHECK(y[128 + 3] == 0); /* sigmoid(0) = 0.5 */
    memcpy(y, x, sizeof y);
    crk_lut_i8(y, y, 256, table);
    for (int i = 0; i < 256; i++) CHECK(y[i] == table[i]);
    return TEST_PASS;
}

/* ---- softmax ----------------------------------------------------------------
 * The reference below follows TFLite's int8 softmax (reference_ops::Softmax)
 * and gemmlowp's FixedPoint definitions, written with a tiny fixed-point
 * value type {raw, integer bits} and the 64-bit reference primitives. */

typedef struct fx {
    int32_t raw;
    int ib; /* integer bits */
} fx;
static fx fx_mk(int32_t raw, int ib) { fx v = {raw, ib}; return v; }
static fx fx_mul(fx a, fx b) { return fx_mk(ref_srdhm(a.raw, b.raw), a.ib + b.ib); }
static fx fx_add(fx a, fx b) { return fx_mk(wrap32((int64_t)a.raw + b.raw), a.ib); }
static fx fx_sub(fx a, fx b) { return fx_mk(wrap32((int64_t)a.raw - b.raw), a.ib); }
/* value * 2^e, rounding / saturating as gemmlowp's
 * SaturatingRoundingMultiplyByPOT */
static int32_t sat_round_pot(int32_t x, int e)
{
    if (e <= 0) return ref_rdivpot(x, -e);
    int64_t v = (int64_t)x * (1LL << e);
    /* gemmlowp saturates when |x| > 2^(31-e) - 1 */
    int64_t thr = (1LL << (31 - e)) - 1;
    if (x > thr) return INT32_MAX;
    if (x < -thr) return INT32_MIN;
    return (int32_t)v;
}
static fx fx_rescale(fx a, int ib) { return fx_mk(sat_round_pot(a.raw, a.ib - ib), ib); }
static fx fx_const(double v, int ib) /* exact constants, derived by math */
{
    return fx_mk((int32_t)llround(v * ldexp(1.0, 31 - ib)), ib);
}

static fx ref_exp_quarter(fx a) /* a: Q0 in [-1/4, 0) */
{
    fx x = fx_add(a, fx_mk(1 << 28, 0));
    fx x2 = fx_mul(x, x), x3 = fx_mul(x2, x), x4 = fx_mul(x2, x2);
    fx x4_4 = fx_mk(ref_rdivpot(x4.raw, 2), 0);
    fx third = fx_const(1.0 / 3.0, 0);
    fx inner = fx_add(fx_mul(fx_add(x4_4, x3), third), x2);
    fx poly = fx_mk(ref_rdivpot(inner.raw, 1), 0);
    fx c = fx_const(exp(-1.0 / 8.0), 0);
    return fx_add(c, fx_mul(c, fx_add(x, poly)));
}

static fx ref_exp_neg(fx a) /* a: Q5, <= 0 */
{
    const int frac = 31 - a.ib;
    fx quarter = fx_mk(1 << (frac - 2), a.ib);
    fx r = fx_sub(fx_mk(a.raw & (quarter.raw - 1), a.ib), quarter);
    fx result = ref_exp_quarter(fx_rescale(r, 0));
    int32_t rem = fx_sub(r, a).raw;
    for (int k = -2; k <= 4; k++) {
        if (a.ib > k && (rem & (1 << (frac + k))))
            result = fx_mul(result, fx_const(exp(-ldexp(1.0, k)), 0));
    }
    if (a.raw == 0) result = fx_mk(INT32_MAX, 0);
    return result;
}

static fx ref_one_over_one_plus(fx a) /* Q0 */
{
    int64_t s = (int64_t)a.raw + INT32_MAX;
    fx half = fx_mk((int32_t)((s + (s >= 0 ? 1 : -1)) / 2), 0);
    fx x = fx_add(fx_const(48.0 / 17.0, 2), fx_mul(half, fx_const(-32.0 / 17.0, 2)));
    for (int i = 0; i < 3; i++) {
        fx hx = fx_mul(half, x);
        fx om = fx_sub(fx_mk(1 << 29, 2), hx);
        x = fx_add(x, fx_rescale(fx_mul(x, om), 2));
    }
    return fx_rescale(fx_mk(x.raw, 1), 0);
}

static void ref_softmax_row(const int8_t *x, int8_t *y, int n, int32_t mult, int ls,
                            int32_t diff_min)
{
    int32_t mx = -128;
    for (int c = 0; c < n; c++) mx = x[c] > mx ? x[c] : mx;
    fx sum = fx_mk(0, 12);
    for (int c = 0; c < n; c++) {
        int32_t d = x[c] - mx;
        if (d >= diff_min)
            sum = fx_add(sum, fx_rescale(ref_exp_neg(fx_mk(ref_srdhm(d * (1 << ls), mult), 5)), 12));
    }
    int lz = 0;
    while (lz < 32 && !((uint32_t)sum.raw & (0x80000000u >> lz))) lz++;
    int bits_over = 12 - lz;
    fx recip = ref_one_over_one_plus(
        fx_mk(wrap32(((int64_t)(uint32_t)sum.raw << lz) - 2147483648LL), 0));
    for (int c = 0; c < n; c++) {
        int32_t d = x[c] - mx;
        if (d < diff_min) {
            y[c] = -128;
            continue;
        }
        fx e = ref_exp_neg(fx_mk(ref_srdhm(d * (1 << ls), mult), 5));
        int32_t u = ref_rdivpot(fx_mul(recip, e).raw, bits_over + 31 - 8);
        y[c] = (int8_t)clampi((int64_t)u - 128, -128, 127);
    }
}

TEST(test_kernel_softmax_fixedpoint)
{
    /* exp over the whole Q5.26 domain <= 0: bit-exact with the reference
     * (its constants derived from exp() here), and close to exp() */
    CHECK(crk_exp_on_negative_values(0) == INT32_MAX);
    rng_seed(17);
    for (int i = 0; i < 400000; i++) {
        int32_t a;
        switch (i % 4) {
        case 0: a = -(int32_t)(rng32() >> 1); break;              /* anywhere */
        case 1: a = -(int32_t)(rng32() >> (1 + rng32() % 31)); break; /* near 0 */
        case 2: a = -(int32_t)(rng_range(0, 32) << 24) + rng_range(-2, 2); break;
        default: a = -(int32_t)(rng32() >> 5); break;              /* [-2, 0] */
        }
        if (a > 0) a = -a;
        int32_t got = crk_exp_on_negative_values(a);
        int32_t want = ref_exp_neg(fx_mk(a, 5)).raw;
        CHECK_MSG(got == want, "exp(%d) = %d want %d", a, got, want);
        double real = exp(ldexp((double)a, -26)) * 2147483648.0;
        /* the 4th-order Taylor term limits it to ~2.5e-7 */
        CHECK_MSG(fabs(real - got) <= 1024.0, "exp(%d) = %d, real %.1f", a, got, real);
    }
    CHECK(crk_exp_on_negative_values(INT32_MIN) == 0); /* exp(-32) < 2^-31 */
    /* 1/(1+x) over [0, 1) */
    CHECK(crk_one_over_one_plus_x(0) == INT32_MAX);
    for (int i = 0; i < 400000; i++) {
        int32_t a = (int32_t)(rng32() >> 1);
        if (i < 64) a = i < 32 ? i : INT32_MAX - (i - 32);
        int32_t got = crk_one_over_one_plus_x(a);
        CHECK_MSG(got == ref_one_over_one_plus(fx_mk(a, 0)).raw, "1/(1+%d)", a);
        double real = 2147483648.0 / (1.0 + ldexp((double)a, -31));
        CHECK_MSG(fabs(real - got) <= 64.0, "1/(1+%d) = %d, real %.1f", a, got, real);
    }
    return TEST_PASS;
}

/* host side: TFLite's PreprocessSoftmaxScaling and CalculateInputRadius */
static void softmax_host(double beta, double s_in, int32_t *mult, int32_t *ls,
                         int32_t *diff_min)
{
    double real = beta * s_in * (double)(1 << (31 - 5));
    if (real > 2147483647.0) real = 2147483647.0;
    quantize_multiplier(real, mult, ls);
    double radius = 31.0 * ldexp(1.0, 31 - 5) / ldexp(1.0, *ls);
    *diff_min = -(int32_t)floor(radius);
}

TEST(test_kernel_softmax)
{
    int32_t mult, ls, dmin;
    softmax_host(1.0, 0.1, &mult, &ls, &dmin);
    CHECK(ls == 23 && dmin == -248);
    int8_t y[300];
    /* hand-derived anchors: uniform rows give 1/n exactly */
    {
        const int8_t x4[4] = {7, 7, 7, 7};
        crk_softmax_params p = {1, 4, 1, mult, ls, dmin};
        CHECK(crk_softmax_i8(&p, x4, y) == CRK_OK);
        for (int i = 0; i < 4; i++) CHECK_MSG(y[i] == -64, "y=%d", y[i]); /* 0.25 */
        const int8_t x1[1] = {-100};
        p.depth = 1;
        CHECK(crk_softmax_i8(&p, x1, y) == CRK_OK && y[0] == 127); /* 1.0 */
        /* below diff_min contributes nothing and reads -128 */
        const int8_t x2[2] = {127, -128};
        p.depth = 2;
        CHECK(crk_softmax_i8(&p, x2, y) == CRK_OK && y[0] == 127 && y[1] == -128);
    }
    /* random rows: bit-exact against the reference, and near the float */
    rng_seed(14);
    for (int iter = 0; iter < 2000; iter++) {
        double beta = (iter % 3 == 0) ? 1.0 : 0.2 + 2.0 * rng_unit();
        double s_in = ldexp(0.5 + rng_unit(), -rng_range(2, 7));
        softmax_host(beta, s_in, &mult, &ls, &dmin);
        int n = rng_range(1, 40);
        if (iter % 50 == 0) n = 300;
        int8_t x[300], want[300];
        int32_t base = rng_range(-128, 127), spread = rng_range(1, 255);
        for (int i = 0; i < n; i++) x[i] = (int8_t)clampi(base + rng_range(-spread, spread), -128, 127);
        crk_softmax_params p = {1, n, 1, mult, ls, dmin};
        CHECK(crk_softmax_i8(&p, x, y) == CRK_OK);
        ref_softmax_row(x, want, n, mult, ls, dmin);
        double mx = -1e9, den = 0;
        for (int i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
        for (int i = 0; i < n; i++) den += exp(beta * s_in * (x[i] - mx));
        for (int i = 0; i < n; i++) {
            CHECK_MSG(y[i] == want[i], "iter %d n %d i %d: %d want %d", iter, n, i,
                      y[i], want[i]);
            double q = exp(beta * s_in * (x[i] - mx)) / den * 256.0 - 128.0;
            if (q > 127) q = 127;
            CHECK_MSG(fabs(q - y[i]) <= 1.5, "iter %d: %d vs float %.3f", iter, y[i], q);
        }
    }
    /* NCHW: softmax over the middle axis equals softmax over rows of the
     * transposed tensor */
    {
        softmax_host(1.0, 0.05, &mult, &ls, &dmin);
        enum { N = 2, C = 5, HW = 6 };
        int8_t x[N * C * HW], yy[N * C * HW], row[C], rowy[C];
        for (int i = 0; i < N * C * HW; i++) x[i] = rng_i8();
        crk_softmax_params p = {N, C, HW, mult, ls, dmin};
        CHECK(crk_softmax_i8(&p, x, yy) == CRK_OK);
        for (int n = 0; n < N; n++)
            for (int s = 0; s < HW; s++) {
                for (int c = 0; c < C; c++) row[c] = x[(n * C + c) * HW + s];
                ref_softmax_row(row, rowy, C, mult, ls, dmin);
                for (int c = 0; c < C; c++) CHECK(yy[(n * C + c) * HW + s] == rowy[c]);
            }
    }
    return TEST_PASS;
}

/* ---- data movement ----------------------------------------------------------- */

TEST(test_kernel_transpose_reshape)
{
    rng_seed(15);
    for (int iter = 0; iter < 400; iter++) {
        int32_t rank = rng_range(1, 4), dims[4], perm[4], od[4];
        size_t esz = (size_t)(1 << rng_range(0, 2)) + (iter % 7 == 0 ? 1 : 0);
        size_t n = 1;
        for (int i = 0; i < rank; i++) {
            dims[i] = rng_range(1, 5);
            n *= (size_t)dims[i];
            perm[i] = i;
        }
        for (int i = rank - 1; i > 0; i--) { /* shuffle */
            int j = rng_range(0, i);
            int32_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        for (int i = 0; i < rank; i++) od[i] = dims[perm[i]];
        unsigned char *in = malloc(n * esz), *out = malloc(n * esz);
        for (size_t i = 0; i < n * esz; i++) in[i] = (unsigned char)rng32();
        CHECK(crk_transpose(in, out, esz, rank, dims, perm) == CRK_OK);
        /* for every input coordinate, find where it must land */
        for (size_t lin = 0; lin < n; lin++) {
            int32_t ic[4];
            size_t r = lin;
            for (int i = rank - 1; i >= 0; i--) {
                ic[i] = (int32_t)(r % (size_t)dims[i]);
                r /= (size_t)dims[i];
            }
            size_t olin = 0;
            for (int i = 0; i < rank; i++) olin = olin * (size_t)od[i] + (size_t)ic[perm[i]];
            CHECK(memcmp(out + olin * esz, in + lin * esz, esz) == 0);
        }
        free(in);
        free(out);
    }
    int32_t d2[2] = {2, 3}, badp[2] = {0, 0}, badp2[2] = {0, 2};
    char b1[6] = {0}, b2[6];
    CHECK(crk_transpose(b1, b2, 1, 2, d2, badp) == CRK_EINVAL);
    CHECK(crk_transpose(b1, b2, 1, 2, d2, badp2) == CRK_EINVAL);
    CHECK(crk_transpose(b1, b2, 1, 5, d2, badp2) == CRK_EINVAL);
    /* reshape = identity map on the bytes */
    unsigned char src[1000], dst[1000];
    for (int i = 0; i < 1000; i++) src[i] = (unsigned char)(i * 7);
    memset(dst, 0xAA, sizeof dst);
    crk_reshape(src, dst, 999);
    CHECK(memcmp(src, dst, 999) == 0 && dst[999] == 0xAA);
    crk_reshape(src, src, 1000);
    CHECK(src[500] == (unsigned char)3500);
    return TEST_PASS;
}

TEST(test_kernel_concat)
{
    rng_seed(16);
    for (int iter = 0; iter < 200; iter++) {
        int32_t outer = rng_range(1, 4), inner = rng_range(1, 5);
        int32_t ni = rng_range(1, 4), out_zp = rng_range(-128, 127), total = 0;
        double s_out = 0.05 + rng_unit();
        crk_concat_input in[4];
        for (int i = 0; i < ni; i++) {
            in[i].axis_dim = rng_range(1, 4);
            total += in[i].axis_dim;
            size_t n = (size_t)outer * (size_t)in[i].axis_dim * (size_t)inner;
            int8_t *d = malloc(n);
            for (size_t k = 0; k < n; k++) d[k] = rng_i8();
            in[i].data = d;
            in[i].requant = (int32_t)(rng32() & 1);
            in[i].zp = rng_range(-128, 127);
            quantize_multiplier((0.05 + rng_unit()) / s_out, &in[i].mult, &in[i].shift);
        }
        size_t no = (size_t)outer * (size_t)total * (size_t)inner;
        int8_t *y = malloc(no);
        CHECK(crk_concat_i8(in, ni, outer, inner, out_zp, y) == CRK_OK);
        for (int32_t o = 0; o < outer; o++) {
            int32_t a0 = 0;
            for (int i = 0; i < ni; i++) {
                for (int32_t a = 0; a < in[i].axis_dim; a++)
                    for (int32_t k = 0; k < inner; k++) {
                        int8_t v = in[i].data[(o * in[i].axis_dim + a) * inner + k];
                        int8_t want = in[i].requant
                                          ? ref_requant((int64_t)v - in[i].zp, in[i].mult,
                                                        in[i].shift, out_zp, -128, 127)
                                          : v;
                        CHECK(y[(o * total + a0 + a) * inner + k] == want);
                    }
                a0 += in[i].axis_dim;
            }
        }
        for (int i = 0; i < ni; i++) free((void *)in[i].data);
        free(y);
    }
    return TEST_PASS;
}

/* ---- argument checking ---------------------------------------------------------- */

TEST(test_kernel_invalid_args)
{
    int8_t x[16] = {0}, y[16];
    int32_t m = 1 << 30, s = 0, bad_s = 40;
    memset(y, 0x5A, sizeof y);
    crk_fc_params fc = {1, 4, 2, 0, 0, -128, 127, 0, &m, &s};
    CHECK(crk_fully_connected(&fc, x, x, CRK_W_I8, NULL, y) == CRK_OK);
    memset(y, 0x5A, sizeof y);
    crk_fc_params f2 = fc;
    f2.act_min = 10;
    f2.act_max = 5;
    CHECK(crk_fully_connected(&f2, x, x, CRK_W_I8, NULL, y) == CRK_EINVAL);
    f2 = fc;
    f2.input_zp = 200;
    CHECK(crk_fully_connected(&f2, x, x, CRK_W_I8, NULL, y) == CRK_EINVAL);
    f2 = fc;
    f2.shift = &bad_s;
    CHECK(crk_fully_connected(&f2, x, x, CRK_W_I8, NULL, y) == CRK_EINVAL);
    CHECK(crk_fully_connected(&fc, x, x, (crk_wfmt)9, NULL, y) == CRK_EINVAL);
    CHECK(crk_fully_connected(&fc, NULL, x, CRK_W_I8, NULL, y) == CRK_EINVAL);
    CHECK(crk_fully_connected(NULL, x, x, CRK_W_I8, NULL, y) == CRK_EINVAL);
    for (int i = 0; i < 16; i++) CHECK(y[i] == 0x5A); /* nothing written */
    crk_conv_params cp = {1, 3, 2, 2, 2, 1, 1, 2, 1, 1, 1, 1, 0, 0, 0, 0,
                          0, 0, -128, 127, 0, &m, &s};
    CHECK(crk_conv2d(&cp, x, x, CRK_W_I8, NULL, y) == CRK_EINVAL); /* 3 % 2 */
    cp.in_ch = 2;
    CHECK(crk_conv2d(&cp, x, x, CRK_W_I8, NULL, y) == CRK_OK);
    cp.kernel_h = 5; /* no output */
    CHECK(crk_conv2d(&cp, x, x, CRK_W_I8, NULL, y) == CRK_EINVAL);
    cp.kernel_h = 1;
    cp.stride_w = 0;
    CHECK(crk_conv2d(&cp, x, x, CRK_W_I8, NULL, y) == CRK_EINVAL);
    crk_pool_params pp = {1, 1, 2, 2, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, -128, 127, 0, 0};
    CHECK(crk_max_pool2d(&pp, x, y) == CRK_EINVAL);
    CHECK(crk_avg_pool2d(&pp, x, y) == CRK_EINVAL);
    crk_softmax_params sp = {1, 4, 1, 1 << 30, 40, -10};
    CHECK(crk_softmax_i8(&sp, x, y) == CRK_EINVAL);
    sp.input_beta_left_shift = 3;
    sp.diff_min = 1;
    CHECK(crk_softmax_i8(&sp, x, y) == CRK_EINVAL);
    crk_requant_params rp = {1, 1, 0, 0, 0, -128, 127, 0, &m, &s};
    CHECK(crk_requantize_i8_i8(&rp, x, y) == CRK_EINVAL);
    crk_concat_input ci = {NULL, 1, 0, 0, 0, 0};
    CHECK(crk_concat_i8(&ci, 1, 1, 1, 0, y) == CRK_EINVAL);
    CHECK(crk_weight_get(NULL, CRK_W_I8, 0) == 0);
    return TEST_PASS;
}

/* ---- the worked example of docs/integer-semantics.md ------------------------- */

TEST(test_kernel_worked_example)
{
    /* input scale 0.05 zp -3; weights scale 0.004; bias scale 0.0002;
     * output scale 0.1 zp 5; ReLU (act_min = 5) */
    const int8_t x[4] = {17, -3, 100, -128};
    const int8_t w[4] = {25, -100, 127, 64};
    const int32_t bias[1] = {1500};
    int32_t mult, shift;
    quantize_multiplier(0.05 * 0.004 / 0.1, &mult, &shift);
    CHECK(mult == 1099511628 && shift == -8); /* 0.002 = 0.512 * 2^-8 */
    int64_t acc = bias[0];
    for (int k = 0; k < 4; k++) acc += (int64_t)w[k] * (x[k] + 3);
    CHECK(acc == 1500 + 500 + 0 + 13081 - 8000); /* 7081 */
    CHECK(crk_srdhm(7081, mult) == 3625);
    CHECK(crk_rdivpot(3625, 8) == 14); /* 14.16 */
    crk_fc_params p = {1, 4, 1, -3, 5, 5, 127, 0, &mult, &shift};
    int8_t y;
    CHECK(crk_fully_connected(&p, x, w, CRK_W_I8, bias, &y) == CRK_OK);
    CHECK(y == 19); /* 14 + 5; the float model gives 19.162 */
    /* the same row as int4 weights {3, -7, 7, 4} (scale 0.05): bytes
     * 0x93 0x47 */
    const uint8_t w4[2] = {0x93, 0x47};
    const int8_t w4u[4] = {3, -7, 7, 4};
    for (int k = 0; k < 4; k++) CHECK(crk_weight_get(w4, CRK_W_I4, (size_t)k) == w4u[k]);
    return TEST_PASS;
}

/* ---- freestanding build ------------------------------------------------------ */

TEST(test_kernels_freestanding)
{
    char *out = NULL;
    int rc = test_sh(&out, "sh '%s/tests/kernels-freestanding.sh'", CR_SOURCE_DIR);
    if (rc == 77) {
        const char *why = out ? strstr(out, "SKIP: ") : NULL;
        char msg[300];
        snprintf(msg, sizeof msg, "%s", why ? why + 6 : "toolchains absent");
        char *nl = strchr(msg, '\n');
        if (nl) *nl = 0;
        free(out);
        SKIP("%s", msg);
    }
    if (rc != 0) fprintf(stderr, "%s", out ? out : "");
    else if (out) {
        /* show the sizes */
        for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"))
            if (strstr(line, "text")) fprintf(stderr, "    %s\n", line);
    }
    free(out);
    CHECK(rc == 0);
    return TEST_PASS;
}
