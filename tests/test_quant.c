/* test_quant.c - integer execution with TFLite semantics (interp_q.c) and
 * the post-training quantiser (quant.c, crucible quant): multipliers
 * against TFLite's own test values, requantize "fixed_q31" against the
 * kernel library, the int8 ops against independently derived parameters
 * and float, packed weights, the TFLite int8 models bit for bit, the
 * quantised digits models (accuracy, SQNR, fused kernels, IR text round
 * trip) and the command line. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <crucible/kernels.h>

#include "config.h"
#include "interp.h"
#include "ir.h"
#include "loader.h"
#include "quant.h"
#include "runner.h"
#include "tensorio.h"

#define BIN CR_CRUCIBLE_BIN
#define PLUGINS CR_BUILD_DIR "/lib/crucible/plugins"
#define TFL_MODELS CR_SOURCE_DIR "/../shared/models/tflite"
#define DIGITS CR_SOURCE_DIR "/docs/examples/digits"
#define I8 CRUCIBLE_DT_I8
#define I32 CRUCIBLE_DT_I32
#define F32 CRUCIBLE_DT_F32
#define D(x) ((int64_t)(x))

/* ---- helpers ---------------------------------------------------------------*/
static uint32_t g_seed = 777;
static uint32_t urand(void)
{
    g_seed ^= g_seed << 13;
    g_seed ^= g_seed >> 17;
    g_seed ^= g_seed << 5;
    return g_seed;
}

static int32_t tens(cr_graph *g, const char *name, int32_t dt, int rank, ...)
{
    int64_t d[CRUCIBLE_MAX_RANK] = {0};
    va_list ap;
    va_start(ap, rank);
    for (int i = 0; i < rank; i++) d[i] = va_arg(ap, int64_t);
    va_end(ap);
    char err[256];
    int32_t t = ir_add_tensor(g, name, dt, rank, d, err, sizeof err);
    if (t < 0) fprintf(stderr, "    add_tensor %s: %s\n", name, err);
    return t;
}

static int32_t quant(cr_graph *g, int32_t t, int32_t axis, uint32_t n,
                     const float *s, const int32_t *z)
{
    char err[256];
    if (ir_set_quant(g, t, axis, n, s, z, err, sizeof err)) {
        fprintf(stderr, "    set_quant: %s\n", err);
        return -1;
    }
    return t;
}

static int32_t qt1(cr_graph *g, int32_t t, float s, int32_t z)
{
    return quant(g, t, -1, 1, &s, &z);
}

static int32_t cst(cr_graph *g, int32_t t, const void *data)
{
    size_t bytes = ir_dtype_bytes(g->tensors[t].dtype, ir_numel(&g->tensors[t]));
    char err[256];
    if (ir_set_data(g, t, data, bytes, err, sizeof err)) {
        fprintf(stderr, "    set_data: %s\n", err);
        return -1;
    }
    return t;
}

static int32_t node(cr_graph *g, const char *op, const char *name, int n_in,
                    const int32_t *in, int32_t out)
{
    char err[256];
    int32_t r = ir_add_node(g, ir_op_from_name(op), name, (uint32_t)n_in, in,
                            1, &out, err, sizeof err);
    if (r < 0) fprintf(stderr, "    add_node %s: %s\n", name, err);
    return r;
}

static void q31(cr_graph *g, int32_t n)
{
    ir_attr_string(g, n, "rounding", "fixed_q31");
}

static void arr_init(cr_array *a, const cr_tensor *t, void *data)
{
    memset(a, 0, sizeof *a);
    a->dtype = t->dtype;
    a->rank = t->rank;
    memcpy(a->dims, t->dims, sizeof a->dims);
    a->data = data;
    a->bytes = ir_dtype_bytes(t->dtype, ir_numel(t));
}

/* Validates and runs g on data pointers (one per input); output 0. */
static int run(cr_graph *g, void **data, cr_array *out, char *err,
               size_t errlen)
{
    int rc = ir_validate(g, err, errlen);
    if (!rc) rc = ir_infer_shapes(g, err, errlen);
    if (rc) return rc;
    cr_array in[8];
    for (size_t i = 0; i < g->n_inputs; i++)
        arr_init(&in[i], &g->tensors[g->inputs[i]], data[i]);
    cr_array *outs = cr_calloc(g->n_outputs + 1, sizeof *outs);
    rc = interp_run(g, in, g->n_inputs, outs, err, errlen);
    *out = outs[0];
    for (size_t k = 1; k < g->n_outputs; k++) tio_free(&outs[k]);
    cr_free(outs);
    return rc;
}

/* An independent QuantizeMultiplier: the pair (m, s) with m in
 * [2^30, 2^31) nearest to r * 2^(31 - s), found by scaling with ldexp. */
static void ref_multiplier(double r, int32_t *m, int32_t *s)
{
    int e = 0;
    if (r == 0) {
        *m = 0;
        *s = 0;
        return;
    }
    while (ldexp(r, 31 - e) >= 2147483648.0) e++;
    while (ldexp(r, 31 - e) < 1073741824.0) e--;
    double v = floor(ldexp(r, 31 - e) + 0.5);
    if (v >= 2147483648.0) {
        v = 1073741824.0;
        e++;
    }
    *m = (int32_t)v;
    *s = e;
}

/* Loads a model in-process through a plugin (.so in the build tree). */
static cr_loader g_loader;
static int g_loader_init;
static cr_graph *load_model(const char *plugin, const char *path, char *err,
                            size_t errlen)
{
    char so[4096];
    struct stat st;
    snprintf(so, sizeof so, "%s/%s.so", PLUGINS, plugin);
    snprintf(err, errlen, "plugin %s not built", so);
    if (stat(so, &st)) return NULL;
    if (!g_loader_init) {
        cr_loader_init(&g_loader, -1);
        g_loader_init = 1;
    }
    cr_plugin *p = cr_loader_find(&g_loader, plugin, "frontend");
    if (!p) p = cr_loader_load_file(&g_loader, so);
    if (!p || p->status != CR_PLUGIN_LOADED || !p->has_frontend) return NULL;
    cr_graph *g = ir_new();
    ir_builder_ctx bctx;
    memset(&bctx, 0, sizeof bctx);
    bctx.g = g;
    crucible_ir_builder b;
    ir_builder_init(&b, &bctx);
    cr_loader_enter(p, "load");
    int rc = p->frontend.load(p->state, path, &b);
    cr_loader_leave();
    if (rc || ir_validate(g, err, errlen) || ir_infer_shapes(g, err, errlen)) {
        if (rc) snprintf(err, errlen, "load %s failed (%d) %s", path, rc, bctx.err);
        ir_free(g);
        return NULL;
    }
    return g;
}

/* ---- multipliers -------------------------------------------------------------*/
TEST(test_quant_multiplier_tflite_values)
{
    /* QuantizeMultiplier values from TFLite's quantization_util_test */
    static const struct {
        double r;
        int32_t m, s;
    } v[] = {
        {0.25, 1073741824, -1},       {0.50 - 5e-9, 2147483627, -1},
        {0.50 - 1e-10, 1073741824, 0}, {0.50, 1073741824, 0},
        {0.75, 1610612736, 0},        {1 - 1e-9, 2147483646, 0},
        {1 + 1e-11, 1073741824, 1},   {1.25, 1342177280, 1},
        {1.50, 1610612736, 1},        {1.75, 1879048192, 1},
        {2 - 1e-9, 2147483647, 1},    {2 - 1e-11, 1073741824, 2},
        {2, 1073741824, 2},
        /* the worked example of docs/integer-semantics.md */
        {0.002, 1099511628, -8},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        int32_t m;
        int s;
        CHECK(interp_q_multiplier(v[i].r, &m, &s) == 0);
        CHECK_MSG(m == v[i].m && s == v[i].s, "%.17g: got (%d, %d), TFLite (%d, %d)",
                  v[i].r, (int)m, s, (int)v[i].m, (int)v[i].s);
    }
    /* 0, flushing below 2^-32, refusals */
    int32_t m;
    int s;
    CHECK(interp_q_multiplier(0.0, &m, &s) == 0 && m == 0 && s == 0);
    CHECK(interp_q_multiplier(ldexp(1.0, -40), &m, &s) == 0 && m == 0 && s == 0);
    CHECK(interp_q_multiplier(-1.0, &m, &s) != 0);
    CHECK(interp_q_multiplier(NAN, &m, &s) != 0);
    CHECK(interp_q_multiplier(INFINITY, &m, &s) != 0);
    CHECK(interp_q_multiplier(ldexp(1.0, 40), &m, &s) != 0);
    /* random factors against the independent derivation */
    for (int i = 0; i < 20000; i++) {
        double r = ldexp(0.5 + (urand() % 1000000) / 2e6, (int)(urand() % 50) - 30);
        int32_t rm, rs;
        ref_multiplier(r, &rm, &rs);
        CHECK(interp_q_multiplier(r, &m, &s) == 0);
        CHECK_MSG(m == rm && s == rs, "%.17g: (%d, %d) vs (%d, %d)", r, (int)m,
                  s, (int)rm, (int)rs);
    }
    /* softmax parameters for micro_speech's input scale (beta 1) */
    int32_t bm, bl, dmin;
    CHECK(interp_q_softmax_params(1.0, (double)0.0917319208f, &bm, &bl, &dmin) == 0);
    double real = (double)0.0917319208f * 67108864.0;
    int32_t em, es;
    ref_multiplier(real, &em, &es);
    CHECK(bm == em && bl == es);
    CHECK(dmin == -(int32_t)floor(31.0 * 67108864.0 / ldexp(1.0, es)));
    return TEST_PASS;
}

/* ---- requantize fixed_q31 against the kernel library ---------------------------*/
TEST(test_quant_requantize_fixed_q31)
{
    char err[512];
    /* acc i32 [2, 3, 4] per channel (axis 1) -> i8, per tensor */
    const float sacc[3] = {0.00031f, 0.0021f, 7.5e-6f};
    const float sy = 0.047f;
    const int32_t zy = -7;
    cr_graph *g = ir_new();
    int32_t tx = quant(g, tens(g, "acc", I32, 3, D(2), D(3), D(4)), 1, 3, sacc,
                       (int32_t[]){0, 0, 0});
    int32_t ty = qt1(g, tens(g, "y", I8, 3, D(2), D(3), D(4)), sy, zy);
    ir_mark_input(g, tx);
    ir_mark_output(g, ty);
    int32_t nd = node(g, "requantize", "rq", 1, &tx, ty);
    q31(g, nd);
    int32_t x[24];
    for (int i = 0; i < 24; i++) x[i] = (int32_t)(urand() % 200001) - 100000;
    x[0] = INT32_MAX;
    x[1] = INT32_MIN;
    x[2] = 0;
    void *d[1] = {x};
    cr_array out;
    int rc = run(g, d, &out, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    for (int i = 0; i < 24; i++) {
        int c = (i / 4) % 3;
        int32_t m, s;
        ref_multiplier((double)sacc[c] / (double)sy, &m, &s);
        int8_t want = crk_requant_one(x[i], m, s, zy, -128, 127);
        CHECK_MSG(((int8_t *)out.data)[i] == want, "element %d: %d vs %d", i,
                  ((int8_t *)out.data)[i], want);
    }
    tio_free(&out);
    /* a fused ReLU6 as attributes min / max: [zp, zp + round(6 / s)] */
    ir_attr_float(g, nd, "min", 0.0);
    ir_attr_float(g, nd, "max", 6.0);
    rc = run(g, d, &out, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    int32_t hi = zy + (int32_t)roundf(6.0f / sy);
    if (hi > 127) hi = 127;
    for (int i = 0; i < 24; i++) {
        int c = (i / 4) % 3;
        int32_t m, s;
        ref_multiplier((double)sacc[c] / (double)sy, &m, &s);
        CHECK(((int8_t *)out.data)[i] == crk_requant_one(x[i], m, s, zy, zy, hi));
    }
    tio_free(&out);
    ir_free(g);

    /* The accumulator of an integer dense: TFLite's factor is
     * (double)s_x * (double)s_w / s_y, not the f32 accumulator scale. Pick
     * scales for which the two multipliers differ. */
    float sx = 0.1f, sw = 0.0f, so = 0.0f;
    int32_t m_dbl = 0, m_f32 = 0, s_dbl = 0, s_f32 = 0;
    for (int tries = 0; tries < 100000 && m_dbl == m_f32; tries++) {
        sx = (float)(0.01 + (urand() % 100000) * 1e-7);
        sw = (float)(0.001 + (urand() % 100000) * 1e-8);
        so = (float)(0.05 + (urand() % 100000) * 1e-7);
        ref_multiplier((double)sx * (double)sw / (double)so, &m_dbl, &s_dbl);
        ref_multiplier((double)(float)((double)sx * sw) / (double)so, &m_f32, &s_f32);
    }
    CHECK_MSG(m_dbl != m_f32, "no scales found where f32 rounding matters");
    g = ir_new();
    tx = qt1(g, tens(g, "x", I8, 2, D(1), D(64)), sx, 3);
    int8_t w[64];
    int8_t xin[64];
    for (int i = 0; i < 64; i++) {
        w[i] = (int8_t)((int)(urand() % 255) - 127);
        xin[i] = (int8_t)((int)(urand() % 256) - 128);
    }
    int32_t tw = qt1(g, cst(g, tens(g, "w", I8, 2, D(1), D(64)), w), sw, 0);
    float sa = (float)((double)sx * (double)sw);
    int32_t ta = qt1(g, tens(g, "acc", I32, 2, D(1), D(1)), sa, 0);
    ty = qt1(g, tens(g, "y", I8, 2, D(1), D(1)), so, -5);
    ir_mark_input(g, tx);
    ir_mark_output(g, ty);
    node(g, "dense", "fc", 2, (int32_t[]){tx, tw}, ta);
    q31(g, node(g, "requantize", "fc/rq", 1, &ta, ty));
    d[0] = xin;
    rc = run(g, d, &out, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    int32_t acc = 0;
    for (int i = 0; i < 64; i++) acc += w[i] * (xin[i] - 3);
    int8_t want = crk_requant_one(acc, m_dbl, s_dbl, -5, -128, 127);
    CHECK_MSG(((int8_t *)out.data)[0] == want, "acc %d: got %d, double-product "
              "factor gives %d, f32 %d", (int)acc, ((int8_t *)out.data)[0], want,
              crk_requant_one(acc, m_f32, s_f32, -5, -128, 127));
    tio_free(&out);
    /* an accumulator scale inconsistent with the operands is an error */
    g->tensors[ta].scales[0] = sa * 1.5f;
    rc = run(g, d, &out, err, sizeof err);
    CHECK(rc != 0);
    CHECK_MSG(test_contains(err, "x_scale * w_scale"), "%s", err);
    ir_free(g);
    return TEST_PASS;
}

/* ---- int8 ops ------------------------------------------------------------------*/
/* y = op(x) on i8 [n]; returns the output (caller frees). */
static int unary_i8(const char *op, float si, int32_t zi, float so, int32_t zo,
                    const int8_t *x, int n, cr_array *out, char *err,
                    size_t errlen, double attr_min, double attr_max)
{
    cr_graph *g = ir_new();
    int32_t tx = qt1(g, tens(g, "x", I8, 1, D(n)), si, zi);
    int32_t ty = qt1(g, tens(g, "y", I8, 1, D(n)), so, zo);
    ir_mark_input(g, tx);
    ir_mark_output(g, ty);
    int32_t nd = node(g, op, "op", 1, &tx, ty);
    q31(g, nd);
    if (!isnan(attr_min)) ir_attr_float(g, nd, strcmp(op, "leaky_relu") ? "min" : "alpha", attr_min);
    if (!isnan(attr_max)) ir_attr_float(g, nd, "max", attr_max);
    void *d[1] = {(void *)x};
    int rc = run(g, d, out, err, errlen);
    ir_free(g);
    return rc;
}

TEST(test_quant_int8_activations)
{
    char err[512];
    int8_t x[256];
    for (int i = 0; i < 256; i++) x[i] = (int8_t)(i - 128);
    cr_array out;
    /* relu with different in / out parameters: TFLite ReluQuantized */
    const float si = 0.05f, so = 0.031f;
    const int32_t zi = 10, zo = -100;
    CHECK_MSG(unary_i8("relu", si, zi, so, zo, x, 256, &out, err, sizeof err,
                       NAN, NAN) == 0, "%s", err);
    int32_t m, s;
    ref_multiplier((double)si / (double)so, &m, &s);
    for (int i = 0; i < 256; i++) {
        int32_t v = zo + crk_mbqm(x[i] - zi, m, s);
        v = v < zo ? zo : v > 127 ? 127 : v;
        CHECK(((int8_t *)out.data)[i] == v);
        /* and close to the real relu */
        double real = si * (x[i] - zi);
        real = real < 0 ? 0 : real;
        double got = so * (((int8_t *)out.data)[i] - zo);
        CHECK(got > 127 * so + 1 || fabs(got - real) <= so * 0.5 + 1e-6 ||
              real > so * (127 - zo));
    }
    tio_free(&out);
    /* clip [0, 6] with equal parameters: a clamp to [zp, zp + round(6/s)] */
    CHECK_MSG(unary_i8("clip", 0.08f, -20, 0.08f, -20, x, 256, &out, err,
                       sizeof err, 0.0, 6.0) == 0, "%s", err);
    for (int i = 0; i < 256; i++) {
        int32_t v = x[i] < -20 ? -20 : x[i] > 55 ? 55 : x[i];
        CHECK(((int8_t *)out.data)[i] == v);
    }
    tio_free(&out);
    /* leaky relu: two multipliers (identity, alpha) */
    CHECK_MSG(unary_i8("leaky_relu", 0.02f, 5, 0.015f, -3, x, 256, &out, err,
                       sizeof err, 0.2, NAN) == 0, "%s", err);
    for (int i = 0; i < 256; i++) {
        double real = 0.02 * (x[i] - 5);
        real = real < 0 ? real * (double)0.2f : real;
        double got = 0.015 * (((int8_t *)out.data)[i] + 3);
        double lo = 0.015 * (-128 + 3), hi = 0.015 * (127 + 3);
        double clamped = real < lo ? lo : real > hi ? hi : real;
        /* two roundings (srdhm, then rdivpot): within one step */
        CHECK_MSG(fabs(got - clamped) <= 0.015 + 1e-9, "x %d: %g vs %g",
                  x[i], got, clamped);
    }
    tio_free(&out);
    /* without rounding = "fixed_q31" an i8 relu has no integer form */
    {
        cr_graph *g = ir_new();
        int32_t tx = qt1(g, tens(g, "x", I8, 1, D(4)), 0.1f, 0);
        int32_t ty = qt1(g, tens(g, "y", I8, 1, D(4)), 0.1f, 0);
        ir_mark_input(g, tx);
        ir_mark_output(g, ty);
        int32_t nd = node(g, "relu", "r", 1, &tx, ty);
        void *d[1] = {x};
        CHECK(run(g, d, &out, err, sizeof err) == CRUCIBLE_E_UNSUPPORTED);
        CHECK_MSG(test_contains(err, "f32 only"), "%s", err);
        ir_attr_string(g, nd, "rounding", "float_rne");
        CHECK(run(g, d, &out, err, sizeof err) != 0);
        ir_free(g);
    }
    /* sigmoid / tanh tables: TFLite LUTPopulate, within 1 LSB of the
     * exactly rounded double result */
    for (int k = 0; k < 2; k++) {
        const char *op = k ? "tanh" : "sigmoid";
        float sO = k ? 1.0f / 128 : 1.0f / 256;
        int32_t zO = k ? 0 : -128;
        CHECK_MSG(unary_i8(op, 0.06f, 4, sO, zO, x, 256, &out, err, sizeof err,
                           NAN, NAN) == 0, "%s", err);
        int8_t table[256];
        interp_q_lut(k ? CRUCIBLE_OP_TANH : CRUCIBLE_OP_SIGMOID, 0.06f, 4, sO, zO,
                     table);
        for (int i = 0; i < 256; i++) {
            double r = 0.06 * (x[i] - 4);
            double f = k ? tanh(r) : 1.0 / (1.0 + exp(-r));
            double q = floor(f / sO + 0.5) + zO;
            q = q < -128 ? -128 : q > 127 ? 127 : q;
            int8_t got = ((int8_t *)out.data)[i];
            CHECK(got == table[i]);
            CHECK_MSG(fabs(got - q) <= 1, "%s(%g): %d vs %g", op, r, got, q);
        }
        tio_free(&out);
    }
    /* softmax: rows sum to ~1 and follow the float softmax within 2 LSB */
    {
        cr_graph *g = ir_new();
        int32_t tx = qt1(g, tens(g, "x", I8, 2, D(4), D(10)), 0.1f, 3);
        int32_t ty = qt1(g, tens(g, "y", I8, 2, D(4), D(10)), 1.0f / 256, -128);
        ir_mark_input(g, tx);
        ir_mark_output(g, ty);
        q31(g, node(g, "softmax", "sm", 1, &tx, ty));
        int8_t xs[40];
        for (int i = 0; i < 40; i++) xs[i] = (int8_t)((int)(urand() % 256) - 128);
        void *d[1] = {xs};
        CHECK_MSG(run(g, d, &out, err, sizeof err) == 0, "%s", err);
        for (int r = 0; r < 4; r++) {
            double mx = -1e9, sum = 0;
            for (int c = 0; c < 10; c++)
                if (0.1 * (xs[r * 10 + c] - 3) > mx) mx = 0.1 * (xs[r * 10 + c] - 3);
            for (int c = 0; c < 10; c++) sum += exp(0.1 * (xs[r * 10 + c] - 3) - mx);
            for (int c = 0; c < 10; c++) {
                double p = exp(0.1 * (xs[r * 10 + c] - 3) - mx) / sum;
                double got = (((int8_t *)out.data)[r * 10 + c] + 128) / 256.0;
                CHECK_MSG(fabs(got - p) <= 2.0 / 256, "row %d col %d: %g vs %g",
                          r, c, got, p);
            }
        }
        tio_free(&out);
        /* an output that is not 1/256, -128 is refused clearly */
        g->tensors[ty].zero_points[0] = 0;
        CHECK(run(g, d, &out, err, sizeof err) == CRUCIBLE_E_UNSUPPORTED);
        CHECK_MSG(test_contains(err, "1/256"), "%s", err);
        ir_free(g);
    }
    return TEST_PASS;
}

TEST(test_quant_int8_binary_pool_concat)
{
    char err[512];
    cr_array out;
    /* add with broadcasting and a fused relu (min 0), mul: against the
     * kernels with parameters derived here as TFLite's Prepare does */
    const float sa = 0.02f, sb = 0.035f, so = 0.05f;
    const int32_t za = -3, zb = 12, zo = -20;
    int8_t a[2 * 3 * 4], b[4];
    for (int i = 0; i < 24; i++) a[i] = (int8_t)((int)(urand() % 256) - 128);
    for (int i = 0; i < 4; i++) b[i] = (int8_t)((int)(urand() % 256) - 128);
    for (int k = 0; k < 3; k++) {
        const char *op = k == 0 ? "add" : k == 1 ? "sub" : "mul";
        cr_graph *g = ir_new();
        int32_t ta = qt1(g, tens(g, "a", I8, 3, D(2), D(3), D(4)), sa, za);
        int32_t tb = qt1(g, tens(g, "b", I8, 1, D(4)), sb, zb);
        int32_t ty = qt1(g, tens(g, "y", I8, 3, D(2), D(3), D(4)), so, zo);
        ir_mark_input(g, ta);
        ir_mark_input(g, tb);
        ir_mark_output(g, ty);
        int32_t nd = node(g, op, "op", 2, (int32_t[]){ta, tb}, ty);
        q31(g, nd);
        if (k == 0) ir_attr_float(g, nd, "min", 0.0);
        void *d[2] = {a, b};
        CHECK_MSG(run(g, d, &out, err, sizeof err) == 0, "%s: %s", op, err);
        crk_bcast4 sh = {{1, 2, 3, 4}, {1, 2, 3, 4}, {1, 1, 1, 4}};
        int8_t want[24];
        if (k < 2) {
            double tw = 2.0 * (double)(sa > sb ? sa : sb);
            crk_add_params p = {za, zb, zo, 20, 0, 0, 0, 0, 0, 0, k == 0 ? zo : -128, 127};
            ref_multiplier(sa / tw, &p.a_mult, &p.a_shift);
            ref_multiplier(sb / tw, &p.b_mult, &p.b_shift);
            ref_multiplier(tw / (1048576.0 * so), &p.out_mult, &p.out_shift);
            CHECK((k == 0 ? crk_add_i8 : crk_sub_i8)(&p, &sh, a, b, want) == 0);
        } else {
            crk_mul_params p = {za, zb, zo, 0, 0, -128, 127};
            ref_multiplier((double)sa * sb / so, &p.out_mult, &p.out_shift);
            CHECK(crk_mul_i8(&p, &sh, a, b, want) == 0);
        }
        CHECK_MSG(memcmp(out.data, want, 24) == 0, "%s differs", op);
        /* and within 1 LSB of the real result (unless saturated) */
        for (int i = 0; i < 24; i++) {
            double ra = sa * (a[i] - za), rb = sb * (b[i % 4] - zb);
            double r = k == 0 ? ra + rb : k == 1 ? ra - rb : ra * rb;
            if (k == 0 && r < 0) r = 0;
            double got = so * (((int8_t *)out.data)[i] - zo);
            if (r > so * (127 - zo) || r < so * (-128 - zo)) continue;
            CHECK_MSG(fabs(got - r) <= so * 1.01, "%s %d: %g vs %g", op, i, got, r);
        }
        tio_free(&out);
        ir_free(g);
    }
    /* max / avg pool 2x2 stride 2 with padding, and ceil mode */
    int8_t px[2 * 5 * 5];
    for (int i = 0; i < 50; i++) px[i] = (int8_t)((int)(urand() % 256) - 128);
    for (int k = 0; k < 3; k++) {
        cr_graph *g = ir_new();
        int32_t tx = qt1(g, tens(g, "x", I8, 4, D(1), D(2), D(5), D(5)), 0.1f, 7);
        int32_t ty = qt1(g, tens(g, "y", I8, 4, D(0), D(0), D(0), D(0)), 0.1f, 7);
        ir_mark_input(g, tx);
        ir_mark_output(g, ty);
        int32_t nd = node(g, k == 1 ? "avg_pool2d" : "max_pool2d", "pool", 1, &tx, ty);
        ir_attr_ints(g, nd, "kernel", 2, (int64_t[]){2, 2});
        ir_attr_ints(g, nd, "strides", 2, (int64_t[]){2, 2});
        if (k < 2) ir_attr_ints(g, nd, "pads", 4, (int64_t[]){1, 0, 0, 1});
        else ir_attr_int(g, nd, "ceil_mode", 1);
        if (k == 1) q31(g, nd);
        void *d[1] = {px};
        CHECK_MSG(run(g, d, &out, err, sizeof err) == 0, "%s", err);
        /* direct loops over NCHW */
        int pt = k < 2 ? 1 : 0, pl = 0;
        int OH = out.dims[2], OW = out.dims[3];
        CHECK(OH == 3 && OW == 3);
        for (int c = 0; c < 2; c++)
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++) {
                    int mx = -128, sum = 0, cnt = 0;
                    for (int ky = 0; ky < 2; ky++)
                        for (int kx = 0; kx < 2; kx++) {
                            int iy = oy * 2 - pt + ky, ix = ox * 2 - pl + kx;
                            if (iy < 0 || iy >= 5 || ix < 0 || ix >= 5) continue;
                            int v = px[c * 25 + iy * 5 + ix];
                            mx = v > mx ? v : mx;
                            sum += v;
                            cnt++;
                        }
                    int avg = sum > 0 ? (sum + cnt / 2) / cnt : (sum - cnt / 2) / cnt;
                    int want = k == 1 ? avg : mx;
                    CHECK(((int8_t *)out.data)[c * 9 + oy * 3 + ox] == want);
                }
        tio_free(&out);
        ir_free(g);
    }
    /* concat: the second input is requantised to the output's parameters */
    {
        cr_graph *g = ir_new();
        int32_t t1 = qt1(g, tens(g, "a", I8, 2, D(2), D(3)), 0.125f, 0);
        int32_t t2 = qt1(g, tens(g, "b", I8, 2, D(2), D(2)), 0.3125f, 10);
        int32_t ty = qt1(g, tens(g, "y", I8, 2, D(2), D(5)), 0.125f, 0);
        ir_mark_input(g, t1);
        ir_mark_input(g, t2);
        ir_mark_output(g, ty);
        int32_t nd = node(g, "concat", "cat", 2, (int32_t[]){t1, t2}, ty);
        ir_attr_int(g, nd, "axis", 1);
        q31(g, nd);
        int8_t a1[6] = {1, 2, 3, 4, 5, 6}, b1[4] = {10, 11, 60, -128};
        void *d[2] = {a1, b1};
        CHECK_MSG(run(g, d, &out, err, sizeof err) == 0, "%s", err);
        /* b: 0.3125 (q - 10) / 0.125 = 2.5 (q - 10), exactly: 0, 2.5 -> 3
         * (srdhm rounds the tie up), 125, -345 -> -128 */
        static const int8_t want[10] = {1, 2, 3, 0, 3, 4, 5, 6, 125, -128};
        const int8_t *o8 = out.data;
        CHECK_MSG(memcmp(out.data, want, 10) == 0,
                  "concat: %d %d %d %d %d %d %d %d %d %d", o8[0], o8[1], o8[2],
                  o8[3], o8[4], o8[5], o8[6], o8[7], o8[8], o8[9]);
        tio_free(&out);
        ir_free(g);
    }
    return TEST_PASS;
}

/* ---- packed weights ---------------------------------------------------------------*/
TEST(test_quant_packed_weights)
{
    char err[512];
    static const int32_t fmts[3] = {CRUCIBLE_DT_I4, CRUCIBLE_DT_TERNARY,
                                    CRUCIBLE_DT_BINARY};
    for (int f = 0; f < 3; f++) {
        for (int conv = 0; conv < 2; conv++) {
            /* weights [O=3, K=7] (dense) or [3, 2, 2, 2] (conv): odd sizes so
             * that rows are not byte aligned */
            int n = conv ? 24 : 21;
            int8_t v[24];
            for (int i = 0; i < n; i++) {
                int r = (int)(urand() % 16) - 8;
                v[i] = (int8_t)(f == 0 ? r : f == 1 ? r % 2 : (r >= 0 ? 1 : -1));
            }
            uint8_t packed[24] = {0};
            for (int i = 0; i < n; i++) {
                if (f == 0) packed[i / 2] |= (uint8_t)((v[i] & 15) << ((i & 1) * 4));
                else if (f == 1)
                    packed[i / 4] |= (uint8_t)((v[i] > 0 ? 1 : v[i] < 0 ? 3 : 0) << ((i & 3) * 2));
                else if (v[i] > 0) packed[i / 8] |= (uint8_t)(1u << (i & 7));
            }
            int8_t xin[2 * 2 * 3 * 3];
            for (int i = 0; i < 36; i++) xin[i] = (int8_t)((int)(urand() % 256) - 128);
            cr_array outs[2];
            for (int p = 0; p < 2; p++) {
                cr_graph *g = ir_new();
                int32_t tx = conv ? qt1(g, tens(g, "x", I8, 4, D(2), D(2), D(3), D(3)), 0.1f, 5)
                                  : qt1(g, tens(g, "x", I8, 2, D(2), D(7)), 0.1f, 5);
                int32_t dt = p ? fmts[f] : I8;
                int32_t tw = conv ? tens(g, "w", dt, 4, D(3), D(2), D(2), D(2))
                                  : tens(g, "w", dt, 2, D(3), D(7));
                cst(g, tw, p ? (const void *)packed : (const void *)v);
                quant(g, tw, 0, 3, (float[]){0.1f, 0.2f, 0.3f}, (int32_t[]){0, 0, 0});
                int32_t ty = tens(g, "y", I32, conv ? 4 : 2, D(0), D(0), D(0), D(0));
                ir_mark_input(g, tx);
                ir_mark_output(g, ty);
                int32_t nd = node(g, conv ? "conv2d" : "dense", "p", 2,
                                  (int32_t[]){tx, tw}, ty);
                if (conv) ir_attr_ints(g, nd, "pads", 4, (int64_t[]){1, 0, 0, 1});
                void *d[1] = {xin};
                CHECK_MSG(run(g, d, &outs[p], err, sizeof err) == 0, "%s: %s",
                          ir_dtype_name(dt), err);
                ir_free(g);
            }
            CHECK(outs[0].bytes == outs[1].bytes);
            CHECK_MSG(memcmp(outs[0].data, outs[1].data, outs[0].bytes) == 0,
                      "%s %s differs from int8", ir_dtype_name(fmts[f]),
                      conv ? "conv2d" : "dense");
            tio_free(&outs[0]);
            tio_free(&outs[1]);
        }
    }
    return TEST_PASS;
}

/* ---- TFLite int8 models, bit for bit ----------------------------------------------*/
static int tflite_sets(const char *name, int *n_sets, size_t *fused, char *why,
                       size_t wl)
{
    char path[4096], err[1024];
    snprintf(path, sizeof path, "%s/%s/model.tflite", TFL_MODELS, name);
    cr_graph *g = load_model("tflite", path, err, sizeof err);
    *n_sets = 0;
    *fused = 0;
    if (!g) {
        snprintf(why, wl, "%s", err);
        return -1;
    }
    int result = 0;
    for (int s = 0; !result; s++) {
        cr_array in, want;
        snprintf(path, sizeof path, "%s/%s/test_data_set_%d/input_0.npy",
                 TFL_MODELS, name, s);
        struct stat st;
        if (stat(path, &st)) break;
        if (tio_load(path, &in, err, sizeof err)) {
            snprintf(why, wl, "%s", err);
            result = 1;
            break;
        }
        cr_array *vals = cr_calloc(g->n_tensors, sizeof *vals);
        if (interp_run_all(g, &in, 1, vals, err, sizeof err)) {
            snprintf(why, wl, "set %d: %s", s, err);
            result = 1;
        } else {
            snprintf(path, sizeof path, "%s/%s/test_data_set_%d/output_0.npy",
                     TFL_MODELS, name, s);
            const cr_array *got = &vals[g->outputs[0]];
            if (tio_load(path, &want, err, sizeof err)) {
                snprintf(why, wl, "%s", err);
                result = 1;
            } else {
                if (want.dtype != got->dtype || want.bytes != got->bytes ||
                    memcmp(want.data, got->data, want.bytes)) {
                    snprintf(why, wl, "set %d: output differs from TFLite Micro", s);
                    result = 1;
                }
                tio_free(&want);
            }
            size_t nf = 0;
            if (!result && interp_q_fused_check(g, vals, &nf, err, sizeof err)) {
                snprintf(why, wl, "set %d: %s", s, err);
                result = 1;
            }
            *fused += nf;
            for (size_t t = 0; t < g->n_tensors; t++) tio_free(&vals[t]);
        }
        cr_free(vals);
        tio_free(&in);
        (*n_sets)++;
    }
    ir_free(g);
    return result;
}

TEST(test_quant_tflite_bitexact)
{
    struct stat st;
    if (stat(TFL_MODELS, &st)) SKIP("%s is absent (the shared real models)", TFL_MODELS);
    if (stat(PLUGINS "/tflite.so", &st)) SKIP("the tflite plugin is not built");
    static const char *const models[] = {"hello_world_int8", "micro_speech_quantized"};
    for (size_t i = 0; i < 2; i++) {
        int n;
        size_t fused;
        char why[1024] = "";
        int r = tflite_sets(models[i], &n, &fused, why, sizeof why);
        CHECK_MSG(r == 0, "%s: %s", models[i], why);
        CHECK_MSG(n >= 2, "%s: only %d test sets", models[i], n);
        CHECK_MSG(fused > 0, "%s: no layer went through the fused kernels", models[i]);
        fprintf(stderr, "    %s: %d test sets bit-exact with TFLite Micro; "
                        "%zu fused-kernel layer runs agree\n",
                models[i], n, fused);
    }
    return TEST_PASS;
}

/* ---- the quantiser on the digits models ----------------------------------------------*/
typedef struct digits {
    cr_graph *g;
    cr_array x, y;
    size_t n, per;
} digits;

static int digits_load(const char *which, digits *d, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    char p[4096];
    snprintf(p, sizeof p, "%s/%s/model.onnx", DIGITS, which);
    d->g = load_model("onnx", p, err, errlen);
    if (!d->g) return -1;
    snprintf(p, sizeof p, "%s/test-x-%s.npy", DIGITS, which);
    if (tio_load(p, &d->x, err, errlen)) return -1;
    snprintf(p, sizeof p, "%s/test-y.npy", DIGITS);
    if (tio_load(p, &d->y, err, errlen)) return -1;
    d->n = (size_t)d->x.dims[0];
    d->per = tio_numel(&d->x) / d->n;
    return 0;
}

static void digits_free(digits *d)
{
    ir_free(d->g);
    tio_free(&d->x);
    tio_free(&d->y);
}

/* One sample of the test split as a graph input. */
static void digits_sample(const digits *d, const cr_graph *g, size_t s,
                          cr_array *a)
{
    arr_init(a, &g->tensors[g->inputs[0]], (float *)d->x.data + s * d->per);
}

/* Top-1 accuracy of g on the whole split (count of correct). */
static size_t digits_correct(const digits *d, const cr_graph *g, char *err,
                             size_t errlen, int *rc)
{
    size_t ok = 0;
    *rc = 0;
    for (size_t s = 0; s < d->n; s++) {
        cr_array in, out;
        digits_sample(d, g, s, &in);
        if ((*rc = interp_run(g, &in, 1, &out, err, errlen))) return ok;
        const float *p = out.data;
        size_t best = 0;
        for (size_t k = 1; k < 10; k++)
            if (p[k] > p[best]) best = k;
        if ((int64_t)best == ir_elem_i64(d->y.dtype, d->y.data, s)) ok++;
        tio_free(&out);
    }
    return ok;
}

/* The first 100 test rows as calibration samples. */
static cr_array *digits_calib(const digits *d, size_t n)
{
    cr_array *c = cr_calloc(n, sizeof *c);
    for (size_t s = 0; s < n; s++) {
        cr_array v;
        digits_sample(d, d->g, s, &v);
        c[s] = v;
        c[s].data = cr_malloc(v.bytes);
        memcpy(c[s].data, v.data, v.bytes);
    }
    return c;
}

static int check_digits(const char *which)
{
    char err[2048];
    digits d;
    if (digits_load(which, &d, err, sizeof err)) {
        digits_free(&d);
        if (test_contains(err, "not built")) SKIP("%s", err);
        CHECK_MSG(0, "%s", err);
    }
    int rc;
    size_t fl = digits_correct(&d, d.g, err, sizeof err, &rc);
    CHECK_MSG(rc == 0, "%s", err);
    const size_t ncal = 100;
    cr_array *cal = digits_calib(&d, ncal);
    static const quant_fmt fmts[3] = {QF_INT8, QF_INT4, QF_TERNARY};
    for (int f = 0; f < 3; f++) {
        quant_opts o;
        memset(&o, 0, sizeof o);
        o.weights = fmts[f];
        o.method = QM_PERCENTILE;
        cr_graph *q = NULL;
        quant_report rep;
        rc = quant_graph(d.g, cal, ncal, &o, &q, &rep, err, sizeof err);
        CHECK_MSG(rc == 0 && q, "%s", err);
        size_t qc = digits_correct(&d, q, err, sizeof err, &rc);
        CHECK_MSG(rc == 0, "%s %s: %s", which, quant_fmt_name(fmts[f]), err);
        fprintf(stderr, "    digits-%s %-7s: %zu/360 (float %zu/360), output "
                        "SQNR %.1f dB\n",
                which, quant_fmt_name(fmts[f]), qc, fl, rep.out_sqnr_db);
        /* no layer left in float; integer ops everywhere */
        CHECK(rep.n_float_nodes == 0);
        for (size_t i = 0; i < rep.n_layers; i++) {
            const quant_layer *l = &rep.layers[i];
            if (fmts[f] == QF_INT8 && l->has_weights)
                CHECK_MSG(l->w_sqnr_db > 35 && l->out_sqnr_db > 25,
                          "%s: weights %.1f dB, output %.1f dB", l->node,
                          l->w_sqnr_db, l->out_sqnr_db);
            if (fmts[f] == QF_INT4 && l->has_weights)
                CHECK_MSG(l->w_sqnr_db > 15, "%s: int4 weights %.1f dB", l->node,
                          l->w_sqnr_db);
            if (fmts[f] == QF_INT8 && !isnan(l->out_sqnr_db))
                CHECK_MSG(l->out_sqnr_db > 25, "%s %.1f dB", l->node, l->out_sqnr_db);
        }
        if (fmts[f] == QF_INT8) {
            /* within 1 % of float on the test split */
            CHECK_MSG((double)qc >= (double)fl - 0.01 * 360, "int8 %zu vs float %zu",
                      qc, fl);
            CHECK(rep.top1_agree >= 98);
        }
        /* the fused kernels agree with the node-by-node interpreter */
        cr_array *vals = cr_calloc(q->n_tensors, sizeof *vals);
        size_t nf = 0, layers = 0;
        for (size_t s = 0; s < 20; s++) {
            cr_array in;
            digits_sample(&d, q, s, &in);
            CHECK_MSG(interp_run_all(q, &in, 1, vals, err, sizeof err) == 0, "%s", err);
            rc = interp_q_fused_check(q, vals, &nf, err, sizeof err);
            for (size_t t = 0; t < q->n_tensors; t++) tio_free(&vals[t]);
            CHECK_MSG(rc == 0, "%s", err);
            layers += nf;
        }
        cr_free(vals);
        CHECK_MSG(layers == 20 * (strcmp(which, "cnn") ? 2u : 3u),
                  "%zu fused layer runs", layers);
        /* the IR text round-trips, and the parsed graph computes the same */
        jbuf t1, t2;
        jb_init(&t1);
        jb_init(&t2);
        ir_print(q, &t1);
        cr_graph *p = ir_parse(t1.s, t1.len, "quant.crir", err, sizeof err);
        CHECK_MSG(p, "%s", err);
        CHECK(ir_validate(p, err, sizeof err) == 0 &&
              ir_infer_shapes(p, err, sizeof err) == 0);
        ir_print(p, &t2);
        CHECK_MSG(t1.len == t2.len && !memcmp(t1.s, t2.s, t1.len),
                  "IR text does not round-trip");
        for (size_t s = 0; s < 30; s++) {
            cr_array in, o1, o2;
            digits_sample(&d, q, s, &in);
            CHECK(interp_run(q, &in, 1, &o1, err, sizeof err) == 0);
            CHECK(interp_run(p, &in, 1, &o2, err, sizeof err) == 0);
            CHECK(o1.bytes == o2.bytes && !memcmp(o1.data, o2.data, o1.bytes));
            tio_free(&o1);
            tio_free(&o2);
        }
        jb_free(&t1);
        jb_free(&t2);
        ir_free(p);
        quant_report_free(&rep);
        ir_free(q);
    }
    for (size_t s = 0; s < ncal; s++) tio_free(&cal[s]);
    cr_free(cal);
    digits_free(&d);
    return TEST_PASS;
}

TEST(test_quant_digits_mlp) { return check_digits("mlp"); }
TEST(test_quant_digits_cnn) { return check_digits("cnn"); }

/* Per-layer overrides, minmax, and a model that arrives quantised. */
TEST(test_quant_mixed_and_kept)
{
    char err[2048];
    digits d;
    if (digits_load("cnn", &d, err, sizeof err)) {
        digits_free(&d);
        if (test_contains(err, "not built")) SKIP("%s", err);
        CHECK_MSG(0, "%s", err);
    }
    cr_array *cal = digits_calib(&d, 20);
    char ini[4096];
    snprintf(ini, sizeof ini, "%s/mixed.ini", test_tmpdir());
    CHECK(test_write(ini, "[layer./0/conv]\nquant = int4\n[layer./3/Conv]\n"
                          "quant = ternary\n[layer./2/maxpool]\nquant = float\n") == 0);
    cr_kvdoc *kv = cr_kv_load(ini, err, sizeof err);
    CHECK_MSG(kv, "%s", err);
    quant_opts o;
    memset(&o, 0, sizeof o);
    o.weights = QF_INT8;
    o.mixed = 1;
    o.method = QM_MINMAX;
    o.config = kv;
    cr_graph *q = NULL;
    quant_report rep;
    CHECK_MSG(quant_graph(d.g, cal, 20, &o, &q, &rep, err, sizeof err) == 0, "%s", err);
    int seen = 0;
    for (size_t i = 0; i < rep.n_layers; i++) {
        const quant_layer *l = &rep.layers[i];
        if (!strcmp(l->node, "/0/Conv")) seen += l->fmt == QF_INT4;
        if (!strcmp(l->node, "/3/Conv")) seen += l->fmt == QF_TERNARY;
        if (!strcmp(l->node, "/7/Gemm")) seen += l->fmt == QF_INT8;
        CHECK(strcmp(l->node, "/2/MaxPool"));
    }
    CHECK_MSG(seen == 3, "per-layer formats not applied");
    CHECK(rep.n_float_nodes == 1); /* the max pool, between dequantize / quantize */
    int32_t w0 = ir_find_tensor(q, "0.weight:q"), w3 = ir_find_tensor(q, "3.weight:q");
    CHECK(w0 >= 0 && q->tensors[w0].dtype == CRUCIBLE_DT_I4);
    CHECK(w3 >= 0 && q->tensors[w3].dtype == CRUCIBLE_DT_TERNARY);
    int rc;
    size_t qc = digits_correct(&d, q, err, sizeof err, &rc);
    CHECK_MSG(rc == 0 && qc > 200, "mixed: %zu correct: %s", qc, err);
    quant_report_free(&rep);
    /* a model that arrives quantised is kept: no new graph */
    cr_graph *q2 = NULL;
    CHECK(quant_graph(q, cal, 20, &o, &q2, &rep, err, sizeof err) == 0);
    CHECK(q2 == NULL && rep.kept);
    quant_report_free(&rep);
    ir_free(q);
    cr_kv_free(kv);
    /* mixed without per-layer keys, and a key naming no node */
    o.config = NULL;
    CHECK(quant_graph(d.g, cal, 20, &o, &q, &rep, err, sizeof err) != 0);
    CHECK_MSG(test_contains(err, "layer."), "%s", err);
    CHECK(test_write(ini, "[layer.nope]\nquant = int4\n") == 0);
    kv = cr_kv_load(ini, err, sizeof err);
    o.config = kv;
    CHECK(quant_graph(d.g, cal, 20, &o, &q, &rep, err, sizeof err) != 0);
    CHECK_MSG(test_contains(err, "no node 'nope'"), "%s", err);
    cr_kv_free(kv);
    for (size_t s = 0; s < 20; s++) tio_free(&cal[s]);
    cr_free(cal);
    digits_free(&d);
    return TEST_PASS;
}

/* ---- the command line ------------------------------------------------------------------*/
TEST(test_quant_cli)
{
    struct stat st;
    if (stat(PLUGINS "/onnx.so", &st)) SKIP("the onnx plugin is not built");
    const char *dir = test_tmpdir();
    char *out = NULL;
    int rc = test_sh(&out, "'%s' quant '%s/mlp/model.onnx' --calib "
                           "'%s/test-x-mlp.npy' --samples 30 --json -o '%s/q.crir'",
                     BIN, DIGITS, DIGITS, dir);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    CHECK_MSG(test_contains(out, "\"layers\":[") &&
                  test_contains(out, "\"format\":\"int8\"") &&
                  test_contains(out, "\"zero_point\":-128") &&
                  test_contains(out, "\"folded\":\"/1/Relu\"") &&
                  test_contains(out, "\"output_sqnr_db\":") &&
                  test_contains(out, "\"samples\":30"),
              "%s", out);
    free(out);
    rc = test_sh(&out, "'%s' accuracy '%s/q.crir' --inputs '%s/test-x-mlp.npy' "
                       "--labels '%s/test-y.npy'",
                 BIN, dir, DIGITS, DIGITS);
    CHECK_MSG(rc == 0 && test_contains(out, "top-1 accuracy 0.9"), "%s", out);
    free(out);
    /* text report, int4 */
    rc = test_sh(&out, "'%s' quant '%s/cnn/model.onnx' --calib '%s/test-x-cnn.npy' "
                       "--samples 10 --quant int4 --method minmax",
                 BIN, DIGITS, DIGITS);
    CHECK_MSG(rc == 0 && test_contains(out, "int4 weights") &&
                  test_contains(out, "/0/Conv") && test_contains(out, "dB"),
              "%s", out);
    free(out);
    /* usage errors */
    rc = test_sh(&out, "'%s' quant '%s/mlp/model.onnx' --calib '%s/test-x-mlp.npy' "
                       "--quant int3",
                 BIN, DIGITS, DIGITS);
    CHECK_MSG(rc == 2 && test_contains(out, "int3"), "%d %s", rc, out);
    free(out);
    rc = test_sh(&out, "'%s' quant '%s/mlp/model.onnx' --calib '%s/test-x-cnn.npy' "
                       "--samples 3 --quant mixed",
                 BIN, DIGITS, DIGITS);
    CHECK_MSG(rc == 1 && test_contains(out, "mixed needs per-layer"), "%d %s", rc, out);
    free(out);
    /* compile quantises before pre-flight; cpu-c then refuses integer ops */
    rc = test_sh(&out, "'%s' compile '%s/mlp/model.onnx' --target cpu-c -o "
                       "'%s/x.tptpkg' --quant int8 --calib '%s/test-x-mlp.npy' "
                       "--calib-samples 10",
                 BIN, DIGITS, dir, DIGITS);
    CHECK_MSG(rc == 1 && test_contains(out, "quantising (int8)") &&
                  test_contains(out, "requantize"),
              "%d %s", rc, out);
    free(out);
    /* an int8 TFLite model is kept */
    if (!stat(TFL_MODELS, &st) && !stat(PLUGINS "/tflite.so", &st)) {
        rc = test_sh(&out, "'%s' quant '%s/hello_world_int8/model.tflite' --calib "
                           "'%s/hello_world_int8/test_data_set_0/input_0.npy' --json",
                     BIN, TFL_MODELS, TFL_MODELS);
        CHECK_MSG(rc == 0 && test_contains(out, "\"kept\":true") &&
                      test_contains(out, "\"node\":\"fully_connected_0\""),
                  "%s", out);
        free(out);
    }
    return TEST_PASS;
}

/* A constant per-channel add after a conv2d / dense (how CNTK exports the
 * bias: mnist8_cntk's conv -> add(C [M,1,1]) -> relu) is folded into the
 * integer bias, so the whole model quantises; and the quantised mnist8
 * agrees with the float model on its own test inputs. */
TEST(test_quant_bias_add_folded)
{
    struct stat st;
    if (stat(PLUGINS "/onnx.so", &st)) SKIP("the onnx plugin is not built");
    const char *m8 = CR_SOURCE_DIR "/../shared/models/onnx/mnist8_cntk";
    char p[4200];
    snprintf(p, sizeof p, "%s/model.onnx", m8);
    if (stat(p, &st)) SKIP("%s is absent (../shared/models)", p);
    const char *dir = test_tmpdir();
    char *out = NULL;
    int rc = test_sh(&out, "'%s' quant '%s' --calib '%s/test_data_set_0/input_0.pb' "
                           "'%s/test_data_set_1/input_0.pb' "
                           "'%s/test_data_set_2/input_0.pb' --json -o '%s/q.crir'",
                     BIN, p, m8, m8, m8, dir);
    CHECK_MSG(rc == 0 && test_contains(out, "\"bias_add\":\"Plus30\"") &&
                  test_contains(out, "\"bias_add\":\"Plus112\"") &&
                  test_contains(out, "\"bias_add\":\"Plus214\"") &&
                  test_contains(out, "\"folded\":\"ReLU32\""),
              "exit %d: %s", rc, out);
    free(out);
    /* no float op left between the quantize and dequantize edges */
    rc = test_sh(&out, "grep -c '^node .* : add(' '%s/q.crir'", dir);
    CHECK_MSG(test_contains(out, "0"), "adds left: %s", out);
    free(out);
    /* the quantised model gives the float model's answer on its 3 inputs */
    for (int i = 0; i < 3; i++) {
        rc = test_sh(&out, "'%s' run '%s/q.crir' --input "
                           "'%s/test_data_set_%d/input_0.pb' --output '%s/q.npy' && "
                           "'%s' run '%s' --input '%s/test_data_set_%d/input_0.pb' "
                           "--output '%s/f.npy' && /usr/bin/python3 -c \"import numpy "
                           "as n; a=n.load('%s/q.npy'); b=n.load('%s/f.npy'); "
                           "print('argmax', a.argmax(), b.argmax()); "
                           "assert a.argmax()==b.argmax()\"",
                     BIN, dir, m8, i, dir, BIN, p, m8, i, dir, dir, dir);
        CHECK_MSG(rc == 0, "input %d: %s", i, out);
        free(out);
    }
    return TEST_PASS;
}
