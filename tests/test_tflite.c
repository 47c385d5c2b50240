/*
 * test_tflite.c - the TFLite frontend plugin (plugins/tflite): the shared
 * real models (hello_world float run against its reference outputs; the
 * int8 models and the 127 seanet single-op int16 models loaded and their
 * IR checked), and hostile input: truncation at every offset, seeded byte
 * flips, and FlatBuffers crafted by a small writer below (offsets out of
 * range, self / shared / overlapping references, huge vector lengths,
 * unknown op codes and versions, bad quantisation) - each must fail with a
 * clear message (or load), never crash.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "interp.h"
#include "ir.h"
#include "loader.h"
#include "runner.h"
#include "tensorio.h"

#define TFL_PLUGIN CR_BUILD_DIR "/lib/crucible/plugins/tflite.so"
#define TFL_MODELS CR_SOURCE_DIR "/../shared/models/tflite"
#define BIN CR_CRUCIBLE_BIN

/* ---- the plugin, loaded once in-process ----------------------------------*/
static cr_loader g_loader;
static cr_plugin *g_tfl;
static int g_tried;

static cr_plugin *tfl_plugin(void)
{
    if (g_tried) return g_tfl;
    g_tried = 1;
    struct stat st;
    if (stat(TFL_PLUGIN, &st)) return NULL;
    cr_loader_init(&g_loader, -1);
    cr_plugin *p = cr_loader_load_file(&g_loader, TFL_PLUGIN);
    if (p && p->status == CR_PLUGIN_LOADED && p->has_frontend) g_tfl = p;
    else if (p) fprintf(stderr, "    tflite plugin refused: %s\n", p->reason);
    return g_tfl;
}

#define NEED_PLUGIN()                                                       \
    do {                                                                    \
        if (!tfl_plugin()) SKIP("tflite plugin not built (%s)", TFL_PLUGIN); \
    } while (0)

#define NEED_MODELS()                                                       \
    do {                                                                    \
        struct stat st_;                                                    \
        if (stat(TFL_MODELS, &st_))                                         \
            SKIP("%s is absent (the shared real models)", TFL_MODELS);      \
    } while (0)

/* Loads path the way the CLI does (load, validate, infer shapes). */
static cr_graph *tfl_load(const char *path, int *status, char *err,
                          size_t errlen)
{
    cr_plugin *p = tfl_plugin();
    *status = CRUCIBLE_E_NOTFOUND;
    snprintf(err, errlen, "tflite plugin not available");
    if (!p) return NULL;
    cr_graph *g = ir_new();
    if (!g) return NULL;
    ir_builder_ctx bctx;
    memset(&bctx, 0, sizeof bctx);
    bctx.g = g;
    crucible_ir_builder b;
    ir_builder_init(&b, &bctx);
    cr_loader_enter(p, "load");
    int rc = p->frontend.load(p->state, path, &b);
    cr_loader_leave();
    *status = rc;
    if (rc != CRUCIBLE_OK) {
        const char *last = cr_host_last_error();
        snprintf(err, errlen, "load: %s: %s%s%s", crucible_status_str(rc),
                 last ? last : "", bctx.err[0] ? " / builder: " : "",
                 bctx.err);
        ir_free(g);
        return NULL;
    }
    if ((rc = ir_validate(g, err, errlen)) != CRUCIBLE_OK ||
        (rc = ir_infer_shapes(g, err, errlen)) != CRUCIBLE_OK) {
        *status = rc;
        ir_free(g);
        return NULL;
    }
    err[0] = 0;
    return g;
}

static size_t count_op(const cr_graph *g, int32_t op)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n_nodes; i++) n += g->nodes[i].op == op;
    return n;
}

/* |got - want| <= atol + rtol * |want| elementwise (floats), exact for
 * integers. Returns the number of mismatches; *worst the largest error. */
static size_t compare(const cr_array *got, const cr_array *want, double rtol,
                      double atol, double *worst, char *msg, size_t n)
{
    *worst = 0;
    size_t ng = got->bytes / (interp_elem_size(got->dtype) ? interp_elem_size(got->dtype) : 1);
    size_t nw = want->bytes / (interp_elem_size(want->dtype) ? interp_elem_size(want->dtype) : 1);
    if (got->dtype != want->dtype || ng != nw) {
        snprintf(msg, n, "got %s x %zu, want %s x %zu",
                 ir_dtype_name(got->dtype), ng, ir_dtype_name(want->dtype), nw);
        return ng > nw ? ng : nw ? nw : 1;
    }
    size_t bad = 0;
    for (size_t i = 0; i < ng; i++) {
        double a, b;
        if (got->dtype == CRUCIBLE_DT_F32) {
            a = ((const float *)got->data)[i];
            b = ((const float *)want->data)[i];
        } else {
            a = (double)ir_elem_i64(got->dtype, got->data, i);
            b = (double)ir_elem_i64(want->dtype, want->data, i);
        }
        double d = fabs(a - b);
        if (d > *worst) *worst = d;
        int ok = got->dtype == CRUCIBLE_DT_F32 ? d <= atol + rtol * fabs(b)
                                               : a == b;
        if (!ok) {
            if (!bad) snprintf(msg, n, "element %zu: got %.9g, want %.9g", i, a, b);
            bad++;
        }
    }
    return bad;
}

static int count_sets(const char *dir)
{
    int n = 0;
    char p[4096];
    for (;;) {
        struct stat st;
        snprintf(p, sizeof p, "%s/test_data_set_%d", dir, n);
        if (stat(p, &st) || !S_ISDIR(st.st_mode)) return n;
        n++;
    }
}

/* Runs every test set of dir/model.tflite through the reference
 * interpreter. Returns 0 when all match, 1 on a mismatch, -1 when the
 * graph cannot be run (message in why). */
static int run_sets(const char *dir, double rtol, double atol, int *n_sets,
                    double *worst, char *why, size_t wl)
{
    char path[4096], err[1024];
    snprintf(path, sizeof path, "%s/model.tflite", dir);
    int st;
    *n_sets = 0;
    *worst = 0;
    cr_graph *g = tfl_load(path, &st, err, sizeof err);
    if (!g) {
        snprintf(why, wl, "%s", err);
        return 1;
    }
    int sets = count_sets(dir), result = 0;
    for (int s = 0; s < sets && !result; s++) {
        cr_array in, want, *out = cr_calloc(g->n_outputs + 1, sizeof *out);
        snprintf(path, sizeof path, "%s/test_data_set_%d/input_0.npy", dir, s);
        if (tio_load(path, &in, err, sizeof err)) {
            snprintf(why, wl, "%s", err);
            result = 1;
        } else {
            if (interp_run(g, &in, 1, out, err, sizeof err)) {
                snprintf(why, wl, "set %d: %s", s, err);
                result = -1;
            } else {
                snprintf(path, sizeof path, "%s/test_data_set_%d/output_0.npy",
                         dir, s);
                if (tio_load(path, &want, err, sizeof err)) {
                    snprintf(why, wl, "%s", err);
                    result = 1;
                } else {
                    double w;
                    char m[256];
                    if (compare(&out[0], &want, rtol, atol, &w, m, sizeof m)) {
                        snprintf(why, wl, "set %d: %s", s, m);
                        result = 1;
                    }
                    if (w > *worst) *worst = w;
                    tio_free(&want);
                }
                for (size_t k = 0; k < g->n_outputs; k++) tio_free(&out[k]);
            }
            tio_free(&in);
            (*n_sets)++;
        }
        cr_free(out);
    }
    ir_free(g);
    return result;
}

/* ---- real models --------------------------------------------------------*/
TEST(test_tflite_score)
{
    NEED_PLUGIN();
    const crucible_frontend *fe = &g_tfl->frontend;
    static const uint8_t head[] = {0x1c, 0, 0, 0, 'T', 'F', 'L', '3', 0, 0};
    static const uint8_t onnx[] = {0x08, 0x07, 0x12, 0x04, 't', 'e', 's', 't'};
    CHECK(fe->score(g_tfl->state, "m.bin", head, sizeof head) >= 90);
    CHECK(fe->score(g_tfl->state, "m.tflite", head, sizeof head) >= 90);
    CHECK(fe->score(g_tfl->state, "m.onnx", onnx, sizeof onnx) == 0);
    CHECK(fe->score(g_tfl->state, "x.TFLITE", onnx, sizeof onnx) == 60);
    CHECK(fe->score(g_tfl->state, "empty", head, 0) == 0);
    return TEST_PASS;
}

/* hello_world (float): every test set through the reference interpreter.
 * Tolerance rtol 1e-5 / atol 1e-6: three small dense layers in f32, the
 * TFLite reference kernels accumulate in the same order (it is bit-exact
 * in practice; the max error is printed). */
TEST(test_tflite_hello_world_float)
{
    NEED_PLUGIN();
    NEED_MODELS();
    const char *dir = TFL_MODELS "/hello_world_float";
    CHECK_MSG(count_sets(dir) >= 1, "%s has no test sets", dir);
    int n;
    double worst;
    char why[1024] = "";
    int r = run_sets(dir, 1e-5, 1e-6, &n, &worst, why, sizeof why);
    CHECK_MSG(r == 0, "hello_world_float: %s", why);
    CHECK(n == count_sets(dir));
    fprintf(stderr, "    hello_world_float: %d test sets match (max |error| "
                    "%g)\n",
            n, worst);
    return TEST_PASS;
}

/* The same through the CLI: crucible run, ir, --json ir. */
TEST(test_tflite_cli)
{
    NEED_PLUGIN();
    NEED_MODELS();
    const char *m = TFL_MODELS "/hello_world_float";
    const char *d = test_tmpdir();
    char *out = NULL;
    int rc = test_sh(&out, "'%s' run '%s/model.tflite' --input "
                           "'%s/test_data_set_3/input_0.npy' --output "
                           "'%s/out.npy'",
                     BIN, m, m, d);
    CHECK_MSG(rc == 0, "crucible run exited %d: %s", rc, out);
    free(out);
    char p1[4096], p2[4096], err[512], msg[256];
    snprintf(p1, sizeof p1, "%s/out.npy", d);
    snprintf(p2, sizeof p2, "%s/test_data_set_3/output_0.npy", m);
    cr_array got, want;
    CHECK_MSG(tio_load(p1, &got, err, sizeof err) == 0, "%s", err);
    CHECK_MSG(tio_load(p2, &want, err, sizeof err) == 0, "%s", err);
    double w;
    size_t bad = compare(&got, &want, 1e-5, 1e-6, &w, msg, sizeof msg);
    tio_free(&got);
    tio_free(&want);
    CHECK_MSG(!bad, "%s", msg);
    rc = test_sh(&out, "'%s' ir '%s/model.tflite'", BIN, m);
    CHECK_MSG(rc == 0 && test_contains(out, "dense(") &&
                  test_contains(out, "relu(") &&
                  test_contains(out, "meta format \"tflite\""),
              "exit %d: %s", rc, out);
    free(out);
    rc = test_sh(&out, "'%s' --json ir '%s/model.tflite'", BIN, m);
    CHECK_MSG(rc == 0 && test_contains(out, "\"frontend\":\"tflite\"") &&
                  test_contains(out, "\"unsupported\":[]"),
              "%s", out);
    free(out);
    return TEST_PASS;
}

static const cr_tensor *tensor_named(const cr_graph *g, const char *name)
{
    int32_t t = ir_find_tensor(g, name);
    return t >= 0 ? &g->tensors[t] : NULL;
}

/* Runs an int8 model's test sets when the interpreter can (integer
 * kernels are being added); until then the refusal must be clean. */
static int try_int_sets(const char *name)
{
    char dir[4096], why[1024] = "";
    snprintf(dir, sizeof dir, "%s/%s", TFL_MODELS, name);
    int n;
    double worst;
    int r = run_sets(dir, 0, 0, &n, &worst, why, sizeof why);
    if (r < 0)
        fprintf(stderr, "    %s: loads; not executable yet: %s\n", name, why);
    else if (r == 0)
        fprintf(stderr, "    %s: %d test sets match bit for bit\n", name, n);
    else
        fprintf(stderr, "    %s: MISMATCH: %s\n", name, why);
    return r > 0;
}

TEST(test_tflite_hello_world_int8)
{
    NEED_PLUGIN();
    NEED_MODELS();
    char err[1024];
    int st;
    cr_graph *g = tfl_load(TFL_MODELS "/hello_world_int8/model.tflite", &st,
                           err, sizeof err);
    CHECK_MSG(g, "%s", err);
    int ok = count_op(g, CRUCIBLE_OP_DENSE) == 3 &&
             count_op(g, CRUCIBLE_OP_REQUANTIZE) == 3 &&
             count_op(g, CRUCIBLE_OP_RELU) == 2 &&
             count_op(g, CRUCIBLE_OP_UNSUPPORTED) == 0;
    const cr_tensor *in = &g->tensors[g->inputs[0]];
    const cr_tensor *out = &g->tensors[g->outputs[0]];
    ok = ok && in->dtype == CRUCIBLE_DT_I8 && in->quant_count == 1 &&
         in->quant_axis == -1 && in->zero_points[0] == -128 &&
         fabsf(in->scales[0] - 0.0244801f) < 1e-6f;
    ok = ok && out->dtype == CRUCIBLE_DT_I8 && out->quant_count == 1 &&
         out->zero_points[0] == 5;
    /* dense -> i32 accumulator (scale x * w, zp 0) -> requantize */
    const cr_tensor *acc = tensor_named(g, "StatefulPartitionedCall:0:acc");
    const cr_tensor *w = tensor_named(g, "sequential/dense_2/MatMul");
    ok = ok && acc && acc->dtype == CRUCIBLE_DT_I32 && acc->quant_count == 1 &&
         acc->zero_points[0] == 0 && w && w->dtype == CRUCIBLE_DT_I8 &&
         w->quant_count == 1 && w->data;
    for (size_t i = 0; ok && i < g->n_nodes; i++)
        if (g->nodes[i].op == CRUCIBLE_OP_REQUANTIZE)
            ok = !strcmp(ir_attr_s(&g->nodes[i], "rounding", ""), "fixed_q31");
    ir_free(g);
    CHECK_MSG(ok, "hello_world_int8: unexpected IR");
    char *txt = NULL;
    int rc = test_sh(&txt, "'%s' ir '%s/hello_world_int8/model.tflite'", BIN,
                     TFL_MODELS);
    CHECK_MSG(rc == 0 && test_contains(txt, "dense(") &&
                  test_contains(txt, "requantize(") &&
                  test_contains(txt, "i8[1, 1] quant(axis=-1, scales=[") &&
                  test_contains(txt, "zero_points=[-128]"),
              "exit %d: %s", rc, txt);
    free(txt);
    CHECK(try_int_sets("hello_world_int8") == 0);
    return TEST_PASS;
}

TEST(test_tflite_micro_speech)
{
    NEED_PLUGIN();
    NEED_MODELS();
    char err[1024];
    int st;
    cr_graph *g = tfl_load(TFL_MODELS "/micro_speech_quantized/model.tflite",
                           &st, err, sizeof err);
    CHECK_MSG(g, "%s", err);
    int ok = count_op(g, CRUCIBLE_OP_CONV2D) == 1 &&
             count_op(g, CRUCIBLE_OP_DENSE) == 1 &&
             count_op(g, CRUCIBLE_OP_SOFTMAX) == 1 &&
             count_op(g, CRUCIBLE_OP_RESHAPE) >= 1 &&
             count_op(g, CRUCIBLE_OP_UNSUPPORTED) == 0;
    /* the depthwise weights 1HW(C*M) became (C*M)1HW, their per-channel
     * quantisation moved from axis 3 to axis 0 */
    const cr_tensor *w = tensor_named(g, "first_weights/read:oihw");
    ok = ok && w && w->rank == 4 && w->dims[0] == 8 && w->dims[1] == 1 &&
         w->dims[2] == 10 && w->dims[3] == 8 && w->quant_axis == 0 &&
         w->quant_count == 8;
    const cr_tensor *acc = tensor_named(g, "Relu:acc");
    ok = ok && acc && acc->rank == 4 && acc->dims[1] == 8 &&
         acc->quant_axis == 1 && acc->quant_count == 8;
    /* NHWC graph input and output are the model's own */
    ok = ok && g->n_inputs == 1 && g->tensors[g->inputs[0]].dims[1] == 1960 &&
         g->tensors[g->outputs[0]].dims[1] == 4;
    for (size_t i = 0; ok && i < g->n_nodes; i++)
        if (g->nodes[i].op == CRUCIBLE_OP_CONV2D)
            ok = ir_attr(&g->nodes[i], "group") &&
                 ir_attr_i(&g->nodes[i], "group", 0) == 1;
    ir_free(g);
    CHECK_MSG(ok, "micro_speech_quantized: unexpected IR");
    char *txt = NULL;
    int rc = test_sh(&txt, "'%s' ir '%s/micro_speech_quantized/model.tflite'",
                     BIN, TFL_MODELS);
    CHECK_MSG(rc == 0 && test_contains(txt, "conv2d(") &&
                  test_contains(txt, "softmax(") &&
                  test_contains(txt, "quant(axis=1, scales=[") &&
                  test_contains(txt, "transpose("),
              "exit %d: %s", rc, txt);
    free(txt);
    CHECK(try_int_sets("micro_speech_quantized") == 0);
    return TEST_PASS;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The 127 seanet single-op models (int16 activations, int8 weights): how
 * many load, per op folder. */
TEST(test_tflite_seanet)
{
    NEED_PLUGIN();
    NEED_MODELS();
    const char *root = TFL_MODELS "/seanet";
    DIR *d = opendir(root);
    if (!d) SKIP("%s is absent", root);
    char *dirs[64];
    size_t nd = 0;
    struct dirent *e;
    while ((e = readdir(d)) && nd < 64)
        if (e->d_name[0] != '.') dirs[nd++] = strdup(e->d_name);
    closedir(d);
    qsort(dirs, nd, sizeof *dirs, by_name);
    int total = 0, loaded = 0, clean = 0;
    char report[1024] = "";
    size_t rl = 0;
    for (size_t i = 0; i < nd; i++) {
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", root, dirs[i]);
        DIR *s = opendir(sub);
        int t = 0, l = 0;
        while (s && (e = readdir(s))) {
            size_t n = strlen(e->d_name);
            if (n < 8 || strcmp(e->d_name + n - 7, ".tflite")) continue;
            char path[8192], err[1024];
            snprintf(path, sizeof path, "%s/%s", sub, e->d_name);
            int st;
            t++;
            cr_graph *g = tfl_load(path, &st, err, sizeof err);
            if (!g) {
                fprintf(stderr, "    seanet %s: %s\n", e->d_name, err);
                continue;
            }
            l++;
            if (!count_op(g, CRUCIBLE_OP_UNSUPPORTED)) clean++;
            ir_free(g);
        }
        if (s) closedir(s);
        total += t;
        loaded += l;
        rl += (size_t)snprintf(report + rl, sizeof report - rl, "%s%s %d/%d",
                               rl ? ", " : "", dirs[i], l, t);
        free(dirs[i]);
    }
    fprintf(stderr, "    seanet: %d of %d models load (%d without any "
                    "unsupported node): %s\n",
            loaded, total, clean, report);
    CHECK_MSG(total == 127, "expected 127 seanet models, found %d", total);
    CHECK_MSG(loaded == total && clean == total, "%d of %d loaded cleanly",
              clean, total);
    return TEST_PASS;
}

/* ---- malformed bytes ------------------------------------------------------*/
/* Runs a loaded graph on zero inputs when it is small and f32. */
static void try_run(const cr_graph *g)
{
    for (size_t i = 0; i < g->n_tensors; i++)
        if (ir_numel(&g->tensors[i]) > 100000 || g->tensors[i].rank < 0) return;
    for (size_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == CRUCIBLE_OP_UNSUPPORTED) return;
    cr_array *in = cr_calloc(g->n_inputs + 1, sizeof *in);
    cr_array *out = cr_calloc(g->n_outputs + 1, sizeof *out);
    size_t ok = 0;
    for (; ok < g->n_inputs; ok++) {
        const cr_tensor *t = &g->tensors[g->inputs[ok]];
        size_t es = interp_elem_size(t->dtype), ne = ir_numel(t);
        if (!es || !ne) break;
        in[ok].dtype = t->dtype;
        in[ok].rank = t->rank;
        memcpy(in[ok].dims, t->dims, sizeof in[ok].dims);
        in[ok].bytes = ne * es;
        in[ok].data = cr_calloc(ne, es);
        if (!in[ok].data) break;
    }
    char err[512];
    if (ok == g->n_inputs && !interp_run(g, in, ok, out, err, sizeof err))
        for (size_t k = 0; k < g->n_outputs; k++) tio_free(&out[k]);
    for (size_t i = 0; i < ok; i++) cr_free(in[i].data);
    cr_free(in);
    cr_free(out);
}

static const char *const g_real[] = {"hello_world_float", "hello_world_int8",
                                     "micro_speech_quantized"};

TEST(test_tflite_truncated)
{
    NEED_PLUGIN();
    NEED_MODELS();
    const char *d = test_tmpdir();
    char path[4096], err[1024];
    snprintf(path, sizeof path, "%s/cut.tflite", d);
    int loaded = 0, cuts = 0;
    cr_host_set_verbosity(-2);
    for (size_t m = 0; m < sizeof g_real / sizeof g_real[0]; m++) {
        char src[4096];
        snprintf(src, sizeof src, "%s/%s/model.tflite", TFL_MODELS, g_real[m]);
        size_t n;
        uint8_t *buf = test_read_file(src, &n);
        if (!buf) {
            cr_host_set_verbosity(0);
            SKIP("%s is absent", src);
        }
        /* every offset of the small models; every 3rd byte of the larger */
        size_t step = n > 8192 ? 7 : 1;
        for (size_t cut = 0; cut < n; cut += cut < 1024 ? 1 : step) {
            if (test_write_file(path, buf, cut)) break;
            int st;
            cr_graph *g = tfl_load(path, &st, err, sizeof err);
            if (g) {
                fprintf(stderr, "    %s cut at %zu of %zu loaded\n", g_real[m],
                        cut, n);
                loaded++;
                ir_free(g);
            }
            cuts++;
        }
        free(buf);
    }
    cr_host_set_verbosity(0);
    fprintf(stderr, "    %d truncations, all refused with an error\n", cuts);
    CHECK_MSG(loaded == 0, "%d truncated files loaded", loaded);
    CHECK(cuts > 4000);
    /* the CLI: a clear error and exit status 1 */
    char *out = NULL;
    int rc = test_sh(&out, "head -c 1000 '%s/hello_world_float/model.tflite' "
                           "> '%s/half.tflite' && '%s' ir '%s/half.tflite'",
                     TFL_MODELS, d, BIN, d);
    CHECK_MSG(rc == 1 && test_contains(out, "malformed TFLite FlatBuffer") &&
                  test_contains(out, "outside the file"),
              "exit %d: %s", rc, out);
    free(out);
    rc = test_sh(&out, "printf '' > '%s/empty.tflite' && '%s' ir "
                       "--frontend tflite '%s/empty.tflite'",
                 d, BIN, d);
    CHECK_MSG(rc == 1 && test_contains(out, "too short"), "exit %d: %s", rc,
              out);
    free(out);
    return TEST_PASS;
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Thousands of seeded random byte flips of the real models (biased to the
 * FlatBuffer structure at the front); set CR_TFLITE_FLIPS=N for more. */
TEST(test_tflite_byte_flips)
{
    NEED_PLUGIN();
    NEED_MODELS();
    static const char *const models[] = {
        "hello_world_float/model.tflite", "hello_world_int8/model.tflite",
        "micro_speech_quantized/model.tflite", "seanet/conv/conv1.tflite",
        "seanet/transpose_conv/transpose_conv1.tflite",
        "seanet/strided_slice/strided_slice0.tflite", "seanet/pad/pad0.tflite",
        "seanet/add/add0.tflite", "seanet/quantize/quantize0.tflite"};
    const char *d = test_tmpdir();
    char path[4096], err[1024];
    snprintf(path, sizeof path, "%s/flip.tflite", d);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    int loaded = 0, refused = 0, per = 1200, expect = 0;
    const char *env = getenv("CR_TFLITE_FLIPS");
    if (env && atoi(env) > 0) per = atoi(env);
    cr_host_set_verbosity(-2);
    for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) {
        char src[4096];
        snprintf(src, sizeof src, "%s/%s", TFL_MODELS, models[m]);
        size_t n;
        uint8_t *orig = test_read_file(src, &n);
        if (!orig || n < 16) {
            free(orig);
            cr_host_set_verbosity(0);
            SKIP("%s is absent", src);
        }
        uint8_t *buf = malloc(n);
        CHECK(buf != NULL);
        int iters = m < 3 ? per : per / 3; /* the seanet ones: fewer */
        for (int it = 0; it < iters; it++) {
            memcpy(buf, orig, n);
            int flips = 1 + (int)(xorshift(&seed) % 4);
            for (int f = 0; f < flips; f++) {
                size_t at = (size_t)(xorshift(&seed) % n);
                if (xorshift(&seed) & 1) at %= n < 1536 ? n : 1536;
                if (xorshift(&seed) & 1)
                    buf[at] ^= (uint8_t)(1u << (xorshift(&seed) % 8));
                else
                    buf[at] = (uint8_t)xorshift(&seed);
            }
            if (test_write_file(path, buf, n)) break;
            int st;
            cr_graph *g = tfl_load(path, &st, err, sizeof err);
            if (g) {
                loaded++;
                try_run(g);
                ir_free(g);
            } else {
                refused++;
            }
            expect++;
        }
        free(buf);
        free(orig);
    }
    cr_host_set_verbosity(0);
    fprintf(stderr, "    byte flips: %d models, %d loaded, %d refused with an "
                    "error\n",
            expect, loaded, refused);
    CHECK(loaded + refused == expect && expect >= 5000);
    return TEST_PASS;
}

/* ---- a small FlatBuffer writer for crafted models -------------------------
 * Forward layout: a parent is written before its children, and the
 * uoffset slots are patched when the child is placed (uoffsets are
 * unsigned, so they always point forward). */
typedef struct fbw {
    uint8_t *b;
    size_t n, cap;
} fbw;

static void w_put(fbw *w, const void *p, size_t k)
{
    if (w->n + k > w->cap) {
        size_t nc = w->cap ? w->cap : 256;
        while (nc < w->n + k) nc *= 2;
        uint8_t *nb = realloc(w->b, nc);
        if (!nb) abort();
        w->b = nb;
        w->cap = nc;
    }
    if (p) memcpy(w->b + w->n, p, k);
    else memset(w->b + w->n, 0, k);
    w->n += k;
}

static void w_le(fbw *w, uint64_t v, int size)
{
    uint8_t t[8];
    for (int i = 0; i < size; i++) t[i] = (uint8_t)(v >> (8 * i));
    w_put(w, t, (size_t)size);
}

static void w_align(fbw *w, size_t a)
{
    while (w->n % a) w_put(w, NULL, 1);
}

static void w_set32(fbw *w, size_t at, uint32_t v)
{
    for (int i = 0; i < 4; i++) w->b[at + i] = (uint8_t)(v >> (8 * i));
}

static void w_ref(fbw *w, size_t slot, size_t target)
{
    w_set32(w, slot, (uint32_t)(target - slot));
}

/* A table field: slot id, size 1/2/4/8 (scalar value v) or 0 (a uoffset,
 * patched later through *slot). */
typedef struct ff {
    int id, size;
    uint64_t v;
} ff;

static size_t w_table(fbw *w, const ff *f, int nf, size_t *slots)
{
    int maxid = -1;
    uint16_t offs[32] = {0};
    size_t off = 4;
    for (int i = 0; i < nf; i++) {
        int sz = f[i].size ? f[i].size : 4;
        off = (off + (size_t)sz - 1) / (size_t)sz * (size_t)sz;
        offs[i] = (uint16_t)off;
        off += (size_t)sz;
        if (f[i].id > maxid) maxid = f[i].id;
    }
    w_align(w, 4);
    size_t vt = w->n;
    w_le(w, 4 + 2 * (uint64_t)(maxid + 1), 2);
    w_le(w, off, 2);
    for (int id = 0; id <= maxid; id++) {
        uint16_t o = 0;
        for (int i = 0; i < nf; i++)
            if (f[i].id == id) o = offs[i];
        w_le(w, o, 2);
    }
    w_align(w, 8);
    size_t t = w->n;
    w_le(w, (uint32_t)(t - vt), 4);
    w_put(w, NULL, off - 4);
    for (int i = 0; i < nf; i++) {
        size_t at = t + offs[i];
        if (!f[i].size) {
            if (slots) slots[i] = at;
            continue;
        }
        for (int k = 0; k < f[i].size; k++)
            w->b[at + (size_t)k] = (uint8_t)(f[i].v >> (8 * k));
    }
    return t;
}

static size_t w_vec(fbw *w, const void *elems, uint32_t n, int es)
{
    w_align(w, es > 4 ? 8 : 4);
    if (es > 4 && w->n % 8 == 0) w_put(w, NULL, 4); /* elements 8-aligned */
    size_t p = w->n;
    w_le(w, n, 4);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t v = 0;
        memcpy(&v, (const uint8_t *)elems + (size_t)i * (size_t)es, (size_t)es);
        w_le(w, v, es);
    }
    return p;
}

static size_t w_str(fbw *w, const char *s)
{
    w_align(w, 4);
    size_t p = w->n, n = strlen(s);
    w_le(w, n, 4);
    w_put(w, s, n + 1);
    return p;
}

/* A vector of n uoffsets: returns its position; slot i at p + 4 + 4i. */
static size_t w_refs(fbw *w, uint32_t n)
{
    w_align(w, 4);
    size_t p = w->n;
    w_le(w, n, 4);
    w_put(w, NULL, 4 * (size_t)n);
    return p;
}

/* ---- crafted model descriptions ------------------------------------------*/
typedef struct mt_tensor {
    const char *name;
    int8_t type;
    int rank;
    int32_t dims[4];
    uint32_t buffer;
    int nq; /* quantisation entries, 0: none */
    float scale[2];
    int64_t zp[2];
    int qdim;
} mt_tensor;

typedef struct mt_op {
    uint32_t opcode_index;
    int nin, nout;
    int32_t in[4], out[2];
    uint8_t opt_type;
    int nopt;
    ff opt[8];
} mt_op;

typedef struct mt_model {
    const char *ident;
    uint32_t version;
    int ncodes;
    int32_t code[5], dep[5], ver[5];
    const char *custom[5];
    int nt;
    mt_tensor t[10];
    int nin, nout;
    int32_t in[3], out[3];
    int nops;
    mt_op ops[5];
    int nbuf;
    uint32_t buflen[6];
    uint64_t bufoff[6], bufsize[6];
    const void *bufdata[6]; /* NULL: k_consts */
    /* positions recorded while writing (for patching tests) */
    size_t pos_model, pos_tensors_vec, pos_tensor[10], pos_name[10],
        pos_sg, pos_codes_vec, pos_zp_vec, pos_buf_data[6], pos_scale_vec;
} mt_model;

static const float k_consts[8] = {1, 2, 3, 4, 5, 6, 7, 8};

static uint8_t *mt_build(mt_model *m, size_t *len)
{
    fbw w = {0};
    w_le(&w, 0, 4);
    w_put(&w, m->ident ? m->ident : "TFL3", 4);
    size_t s[8];
    ff mf[] = {{0, 4, m->version}, {1, 0, 0}, {2, 0, 0}, {4, 0, 0}};
    size_t model = w_table(&w, mf, 4, s);
    m->pos_model = model;
    w_ref(&w, 0, model);
    size_t slot_codes = s[1], slot_sgs = s[2], slot_bufs = s[3];
    /* operator codes */
    size_t cv = w_refs(&w, (uint32_t)m->ncodes);
    m->pos_codes_vec = cv;
    w_ref(&w, slot_codes, cv);
    for (int i = 0; i < m->ncodes; i++) {
        ff cf[4] = {{0, 1, (uint64_t)(uint8_t)m->dep[i]},
                    {2, 4, (uint64_t)(uint32_t)m->ver[i]},
                    {3, 4, (uint64_t)(uint32_t)m->code[i]},
                    {1, 0, 0}};
        size_t cs[4];
        size_t t = w_table(&w, cf, m->custom[i] ? 4 : 3, cs);
        w_ref(&w, cv + 4 + 4 * (size_t)i, t);
        if (m->custom[i]) w_ref(&w, cs[3], w_str(&w, m->custom[i]));
    }
    /* subgraph */
    size_t sv = w_refs(&w, 1);
    w_ref(&w, slot_sgs, sv);
    ff sf[] = {{0, 0, 0}, {1, 0, 0}, {2, 0, 0}, {3, 0, 0}};
    size_t ss[4];
    size_t sg = w_table(&w, sf, 4, ss);
    m->pos_sg = sg;
    w_ref(&w, sv + 4, sg);
    size_t tv = w_refs(&w, (uint32_t)m->nt);
    m->pos_tensors_vec = tv;
    w_ref(&w, ss[0], tv);
    for (int i = 0; i < m->nt; i++) {
        const mt_tensor *x = &m->t[i];
        ff tf[] = {{0, 0, 0}, {1, 1, (uint64_t)(uint8_t)x->type},
                   {2, 4, x->buffer}, {3, 0, 0}, {4, 0, 0}};
        size_t ts[5];
        size_t t = w_table(&w, tf, x->nq ? 5 : 4, ts);
        m->pos_tensor[i] = t;
        w_ref(&w, tv + 4 + 4 * (size_t)i, t);
        w_ref(&w, ts[0], w_vec(&w, x->dims, (uint32_t)x->rank, 4));
        m->pos_name[i] = w_str(&w, x->name);
        w_ref(&w, ts[3], m->pos_name[i]);
        if (x->nq) {
            ff qf[] = {{2, 0, 0}, {3, 0, 0}, {6, 4, (uint64_t)(uint32_t)x->qdim}};
            size_t qs[3];
            size_t q = w_table(&w, qf, 3, qs);
            w_ref(&w, ts[4], q);
            m->pos_scale_vec = w_vec(&w, x->scale, (uint32_t)x->nq, 4);
            w_ref(&w, qs[0], m->pos_scale_vec);
            m->pos_zp_vec = w_vec(&w, x->zp, (uint32_t)x->nq, 8);
            w_ref(&w, qs[1], m->pos_zp_vec);
        }
    }
    w_ref(&w, ss[1], w_vec(&w, m->in, (uint32_t)m->nin, 4));
    w_ref(&w, ss[2], w_vec(&w, m->out, (uint32_t)m->nout, 4));
    size_t ov = w_refs(&w, (uint32_t)m->nops);
    w_ref(&w, ss[3], ov);
    for (int i = 0; i < m->nops; i++) {
        const mt_op *o = &m->ops[i];
        ff of[] = {{0, 4, o->opcode_index}, {1, 0, 0}, {2, 0, 0},
                   {3, 1, o->opt_type}, {4, 0, 0}};
        size_t os[5];
        size_t t = w_table(&w, of, o->opt_type ? 5 : 3, os);
        w_ref(&w, ov + 4 + 4 * (size_t)i, t);
        w_ref(&w, os[1], w_vec(&w, o->in, (uint32_t)o->nin, 4));
        w_ref(&w, os[2], w_vec(&w, o->out, (uint32_t)o->nout, 4));
        if (o->opt_type) w_ref(&w, os[4], w_table(&w, o->opt, o->nopt, NULL));
    }
    /* buffers */
    size_t bv = w_refs(&w, (uint32_t)m->nbuf);
    w_ref(&w, slot_bufs, bv);
    for (int i = 0; i < m->nbuf; i++) {
        ff bf[] = {{1, 8, m->bufoff[i]}, {2, 8, m->bufsize[i]}, {0, 0, 0}};
        size_t bs[3];
        size_t t = w_table(&w, bf, m->buflen[i] ? 3 : 2, bs);
        w_ref(&w, bv + 4 + 4 * (size_t)i, t);
        if (m->buflen[i]) {
            m->pos_buf_data[i] = w_vec(&w, m->bufdata[i] ? m->bufdata[i]
                                                          : k_consts,
                                       m->buflen[i], 1);
            w_ref(&w, bs[2], m->pos_buf_data[i]);
        }
    }
    *len = w.n;
    return w.b;
}

/* x [1,4] + c [4] (constant) -> y [1,4], all FLOAT32: a valid model. */
static void mt_add_model(mt_model *m)
{
    memset(m, 0, sizeof *m);
    m->version = 3;
    m->ncodes = 1;
    m->code[0] = 0; /* ADD */
    m->ver[0] = 1;
    m->nt = 3;
    m->t[0] = (mt_tensor){"x", 0, 2, {1, 4}, 0, 0, {0}, {0}, 0};
    m->t[1] = (mt_tensor){"c", 0, 1, {4}, 1, 0, {0}, {0}, 0};
    m->t[2] = (mt_tensor){"y", 0, 2, {1, 4}, 0, 0, {0}, {0}, 0};
    m->nin = 1;
    m->in[0] = 0;
    m->nout = 1;
    m->out[0] = 2;
    m->nops = 1;
    m->ops[0] = (mt_op){0, 2, 1, {0, 1}, {2}, 11, 0, {{0}}};
    m->nbuf = 2;
    m->buflen[1] = 16;
}

/* The same with INT8 tensors quantised per tensor. */
static void mt_add_int8(mt_model *m)
{
    mt_add_model(m);
    for (int i = 0; i < 3; i++) {
        m->t[i].type = 9; /* INT8 */
        m->t[i].nq = 1;
        m->t[i].scale[0] = 0.5f;
        m->t[i].zp[0] = -3;
    }
    m->buflen[1] = 4;
}

/* conv [1,3,3,1] * w [1,1,1,1] -> [1,3,3,1]; options as given. */
static void mt_conv_model(mt_model *m)
{
    memset(m, 0, sizeof *m);
    m->version = 3;
    m->ncodes = 1;
    m->code[0] = 3; /* CONV_2D */
    m->dep[0] = 3;
    m->ver[0] = 1;
    m->nt = 3;
    m->t[0] = (mt_tensor){"x", 0, 4, {1, 3, 3, 1}, 0, 0, {0}, {0}, 0};
    m->t[1] = (mt_tensor){"w", 0, 4, {1, 1, 1, 1}, 1, 0, {0}, {0}, 0};
    m->t[2] = (mt_tensor){"y", 0, 4, {1, 3, 3, 1}, 0, 0, {0}, {0}, 0};
    m->nin = 1;
    m->nout = 1;
    m->out[0] = 2;
    m->nops = 1;
    m->ops[0] = (mt_op){0, 2, 1, {0, 1}, {2}, 1, 3,
                        {{0, 1, 1}, {1, 4, 1}, {2, 4, 1}}};
    m->nbuf = 2;
    m->buflen[1] = 4;
}

typedef struct crafted {
    const char *name, *expect;
    int loads; /* 1: loads (with unsupported nodes: `ir` exits 1 anyway) */
} crafted;

/* Builds the crafted case i into *buf. Returns 0, or -1 past the end. */
static int make_case(int i, crafted *cs, uint8_t **buf, size_t *len)
{
    mt_model m;
    mt_add_model(&m);
    uint8_t *b = NULL;
#define CASE(n, e, l) cs->name = n, cs->expect = e, cs->loads = l
    switch (i) {
    case 0: CASE("unknown builtin code", "tflite:BUILTIN_250", 1);
        m.code[0] = 250;
        break;
    case 1: CASE("newer op version", "version 99 of ADD is newer", 1);
        m.ver[0] = 99;
        break;
    case 2: CASE("custom op", "tflite:CUSTOM:MyOp", 1);
        m.code[0] = 32;
        m.custom[0] = "MyOp";
        break;
    case 3: CASE("zero scale", "scale 0 is 0; scales must be positive", 0);
        mt_add_int8(&m);
        m.t[1].scale[0] = 0.0f;
        break;
    case 4: CASE("NaN scale", "scales must be positive and finite", 0);
        mt_add_int8(&m);
        m.t[0].scale[0] = NAN;
        break;
    case 5: CASE("infinite scale", "scales must be positive and finite", 0);
        mt_add_int8(&m);
        m.t[2].scale[0] = INFINITY;
        break;
    case 6: CASE("zero point out of range", "zero point 0 is 300, outside", 0);
        mt_add_int8(&m);
        m.t[0].zp[0] = 300;
        break;
    case 7: CASE("schema version 2", "schema version 2", 0);
        m.version = 2;
        break;
    case 8: CASE("wrong identifier", "\"TFL3\"", 0);
        m.ident = "TFL2";
        break;
    case 9: CASE("root offset out of range", "outside the file", 0);
        b = mt_build(&m, len);
        w_set32(&(fbw){b, *len, *len}, 0, 0x7ffffff0u);
        break;
    case 10: CASE("vtable out of range", "outside the file", 0);
        b = mt_build(&m, len);
        w_set32(&(fbw){b, *len, *len}, m.pos_model, 0x80000000u);
        break;
    case 11: CASE("huge vector length", "outside the file", 0);
        b = mt_build(&m, len);
        w_set32(&(fbw){b, *len, *len}, m.pos_tensors_vec, 0x7fffffffu);
        break;
    case 12: CASE("vector byte length overflows 32 bits", "outside the file",
                  0);
        mt_add_int8(&m);
        b = mt_build(&m, len);
        w_set32(&(fbw){b, *len, *len}, m.pos_zp_vec, 0xffffffffu);
        break;
    case 13: CASE("self reference (uoffset 0)", "malformed table", 0);
        b = mt_build(&m, len);
        w_set32(&(fbw){b, *len, *len}, m.pos_tensors_vec + 4, 0);
        break;
    case 14: CASE("shared tensor table", "which is not a graph input", 0);
        b = mt_build(&m, len); /* tensors[1] -> tensors[0]'s table */
        w_ref(&(fbw){b, *len, *len}, m.pos_tensors_vec + 8, m.pos_tensor[0]);
        break;
    case 15: CASE("overlapping tables (a subgraph inside a vector)",
                  "malformed TFLite FlatBuffer", 0);
        b = mt_build(&m, len);
        {
            /* the subgraph vector is written right before the subgraph's
             * vtable; point its only entry at the tensors vector */
            size_t sv = 0;
            for (size_t p = m.pos_codes_vec; p + 8 <= m.pos_sg; p += 4)
                if (b[p] == 1 && !b[p + 1] && !b[p + 2] && !b[p + 3]) sv = p;
            if (sv) w_ref(&(fbw){b, *len, *len}, sv + 4, m.pos_tensors_vec + 4);
        }
        break;
    case 16: CASE("name without its NUL", "not NUL-terminated", 0);
        b = mt_build(&m, len);
        b[m.pos_name[0] + 4 + 1] = 'z';
        break;
    case 17: CASE("buffer shorter than its tensor",
                  "need 16 bytes, but buffer 1 holds 8", 0);
        m.buflen[1] = 8;
        break;
    case 18: CASE("external buffer (>2 GB layout)",
                  "keeps its 16 bytes outside the FlatBuffer at file offset "
                  "4096", 0);
        m.buflen[1] = 0;
        m.bufoff[1] = 4096;
        m.bufsize[1] = 16;
        break;
    case 19: CASE("read before write", "which is not a graph input, a "
                                       "constant, or the output", 0);
        m.ops[0].in[0] = 2;
        m.ops[0].out[0] = 0;
        m.nin = 0;
        break;
    case 20: CASE("writes a graph input", "writes tensor x, which is a graph "
                                          "input", 0);
        m.ops[0].out[0] = 0;
        break;
    case 21: CASE("opcode_index out of range", "opcode_index 5", 0);
        m.ops[0].opcode_index = 5;
        break;
    case 22: CASE("tensor index out of range", "input 1 is tensor 99", 0);
        m.ops[0].in[1] = 99;
        break;
    case 23: CASE("negative dimension", "dimension 0 is negative (-2)", 0);
        m.t[0].dims[0] = -2;
        break;
    case 24: CASE("options of another op", "carries builtin options of "
                                           "union type 1", 0);
        m.ops[0].opt_type = 1;
        break;
    case 25: CASE("conv stride 0", "strides 0,0 and dilations 1,1", 0);
        mt_conv_model(&m);
        m.ops[0].nopt = 1; /* only the padding field */
        break;
    case 26: CASE("graph output never written", "graph output y is not "
                                                "written", 0);
        m.nops = 0;
        break;
    case 27: CASE("per-axis scales along a missing dimension",
                  "quantized_dimension 5", 0);
        mt_add_int8(&m);
        m.t[1].nq = 2;
        m.t[1].scale[1] = 1.0f;
        m.t[1].qdim = 5;
        break;
    case 28: CASE("graph input index out of range", "input 0 is tensor 7",
                  0);
        m.in[0] = 7;
        break;
    case 29: CASE("a 7-byte file", "too short", 0);
        b = malloc(7);
        memcpy(b, "\x08\0\0\0TFL", 7);
        *len = 7;
        break;
    case 30: CASE("deprecated code only (TANH via the byte field)", "", 2);
        m.code[0] = 0;
        m.dep[0] = 28; /* TANH: max(builtin, deprecated) */
        m.ops[0].nin = 1;
        m.ops[0].opt_type = 0;
        break;
    default: return -1;
    }
#undef CASE
    if (!b) b = mt_build(&m, len);
    *buf = b;
    return 0;
}

/* The valid crafted models load and compute what they say. */
TEST(test_tflite_crafted_valid)
{
    NEED_PLUGIN();
    const char *d = test_tmpdir();
    char path[4096], err[1024];
    snprintf(path, sizeof path, "%s/add.tflite", d);
    mt_model m;
    mt_add_model(&m);
    size_t n;
    uint8_t *b = mt_build(&m, &n);
    CHECK(test_write_file(path, b, n) == 0);
    free(b);
    int st;
    cr_graph *g = tfl_load(path, &st, err, sizeof err);
    CHECK_MSG(g, "%s", err);
    float x[4] = {10, 20, 30, 40};
    cr_array in, out;
    memset(&in, 0, sizeof in);
    memset(&out, 0, sizeof out);
    in.dtype = CRUCIBLE_DT_F32;
    in.rank = 2;
    in.dims[0] = 1;
    in.dims[1] = 4;
    in.data = x;
    in.bytes = sizeof x;
    int rc = interp_run(g, &in, 1, &out, err, sizeof err);
    ir_free(g);
    CHECK_MSG(rc == 0, "%s", err);
    const float *y = out.data;
    int ok = y[0] == 11 && y[1] == 22 && y[2] == 33 && y[3] == 44;
    tio_free(&out);
    CHECK_MSG(ok, "x + c is wrong");
    /* the conv model with valid options: NHWC in, NCHW conv, NHWC out */
    mt_conv_model(&m);
    b = mt_build(&m, &n);
    CHECK(test_write_file(path, b, n) == 0);
    free(b);
    g = tfl_load(path, &st, err, sizeof err);
    CHECK_MSG(g, "%s", err);
    ok = count_op(g, CRUCIBLE_OP_CONV2D) == 1 &&
         count_op(g, CRUCIBLE_OP_TRANSPOSE) == 2;
    ir_free(g);
    CHECK_MSG(ok, "conv: expected transpose, conv2d, transpose");
    return TEST_PASS;
}

/* Every crafted hostile model through the CLI: exit 1 and a message
 * naming the problem; never a crash or a sanitizer report. */
TEST(test_tflite_crafted_errors)
{
    NEED_PLUGIN();
    const char *d = test_tmpdir();
    char path[4096], err[1024];
    int n_cases = 0;
    for (int i = 0;; i++) {
        crafted cs;
        uint8_t *b;
        size_t n;
        if (make_case(i, &cs, &b, &n)) break;
        snprintf(path, sizeof path, "%s/case%d.tflite", d, i);
        CHECK(test_write_file(path, b, n) == 0);
        free(b);
        n_cases++;
        cr_host_set_verbosity(-2);
        int st;
        cr_graph *g = tfl_load(path, &st, err, sizeof err);
        cr_host_set_verbosity(0);
        if (cs.loads) {
            CHECK_MSG(g != NULL, "%s: %s", cs.name, err);
            size_t nu = count_op(g, CRUCIBLE_OP_UNSUPPORTED);
            int tanh = count_op(g, CRUCIBLE_OP_TANH) == 1;
            ir_free(g);
            if (cs.loads == 2) {
                CHECK_MSG(tanh && !nu, "%s: not lowered as TANH", cs.name);
                continue;
            }
            CHECK_MSG(nu == 1, "%s: no unsupported node", cs.name);
        } else {
            CHECK_MSG(g == NULL, "%s: loaded", cs.name);
        }
        char *out = NULL;
        int rc = test_sh(&out, "'%s' ir --frontend tflite '%s'", BIN, path);
        CHECK_MSG(rc == 1 && test_contains(out, cs.expect),
                  "%s: exit %d, want \"%s\" in:\n%s", cs.name, rc, cs.expect,
                  out ? out : "");
        CHECK_MSG(!test_contains(out, "crashed") &&
                      !test_contains(out, "Sanitizer") &&
                      !test_contains(out, "runtime error"),
                  "%s: %s", cs.name, out);
        free(out);
    }
    CHECK(n_cases >= 30);
    /* an unsupported op also stops `run`, naming it */
    snprintf(path, sizeof path, "%s/case0.tflite", d);
    char in[4096];
    snprintf(in, sizeof in, "%s/x.npy", d);
    float zero[4] = {0};
    cr_array x;
    memset(&x, 0, sizeof x);
    x.dtype = CRUCIBLE_DT_F32;
    x.rank = 2;
    x.dims[0] = 1;
    x.dims[1] = 4;
    x.data = zero;
    x.bytes = sizeof zero;
    CHECK_MSG(tio_save(in, &x, err, sizeof err) == 0, "%s", err);
    char *out = NULL;
    int rc = test_sh(&out, "'%s' run '%s' --input '%s'", BIN, path, in);
    CHECK_MSG(rc == 1 && test_contains(out, "op tflite:BUILTIN_250 is not "
                                            "supported"),
              "exit %d: %s", rc, out);
    free(out);
    return TEST_PASS;
}

/* Shared references: 60000 tensors all pointing at one tensor whose
 * quantisation has 60000 scales. Decoding it naively is 3.6e9 element
 * reads from a 0.5 MB file; the work budget refuses it quickly. */
TEST(test_tflite_crafted_amplification)
{
    NEED_PLUGIN();
    mt_model m;
    mt_add_int8(&m);
    size_t n;
    uint8_t *b0 = mt_build(&m, &n);
    free(b0);
    /* a fresh writer: same layout but with the big tensor vector */
    fbw w = {0};
    const uint32_t N = 60000;
    w_le(&w, 0, 4);
    w_put(&w, "TFL3", 4);
    size_t s[4];
    ff mf[] = {{0, 4, 3}, {1, 0, 0}, {2, 0, 0}};
    size_t model = w_table(&w, mf, 3, s);
    w_ref(&w, 0, model);
    size_t cv = w_refs(&w, 1);
    w_ref(&w, s[1], cv);
    ff cf[] = {{2, 4, 1}, {3, 4, 0}};
    w_ref(&w, cv + 4, w_table(&w, cf, 2, NULL));
    size_t sv = w_refs(&w, 1);
    w_ref(&w, s[2], sv);
    ff sf[] = {{0, 0, 0}};
    size_t ss[1];
    w_ref(&w, sv + 4, w_table(&w, sf, 1, ss));
    size_t tv = w_refs(&w, N);
    w_ref(&w, ss[0], tv);
    int32_t dims[2] = {1, (int32_t)N};
    ff tf[] = {{0, 0, 0}, {1, 1, 9}, {4, 0, 0}};
    size_t ts[3];
    size_t t = w_table(&w, tf, 3, ts);
    for (uint32_t i = 0; i < N; i++) w_ref(&w, tv + 4 + 4 * (size_t)i, t);
    w_ref(&w, ts[0], w_vec(&w, dims, 2, 4));
    ff qf[] = {{2, 0, 0}, {3, 0, 0}, {6, 4, 1}};
    size_t qs[3];
    w_ref(&w, ts[2], w_table(&w, qf, 3, qs));
    float *sc = malloc(N * sizeof *sc);
    int64_t *zp = calloc(N, sizeof *zp);
    CHECK(sc && zp);
    for (uint32_t i = 0; i < N; i++) sc[i] = 1.0f;
    w_ref(&w, qs[0], w_vec(&w, sc, N, 4));
    w_ref(&w, qs[1], w_vec(&w, zp, N, 8));
    free(sc);
    free(zp);
    const char *d = test_tmpdir();
    char path[4096], err[1024];
    snprintf(path, sizeof path, "%s/amp.tflite", d);
    CHECK(test_write_file(path, w.b, w.n) == 0);
    free(w.b);
    cr_host_set_verbosity(-2);
    int st;
    cr_graph *g = tfl_load(path, &st, err, sizeof err);
    cr_host_set_verbosity(0);
    CHECK_MSG(g == NULL && st == CRUCIBLE_E_LIMIT, "status %d: %s", st, err);
    CHECK_MSG(test_contains(err, "too much work for the file size"), "%s", err);
    return TEST_PASS;
}

/* ---- float numerics of the layout handling ---------------------------------
 * Crafted float models run through the reference interpreter and compared
 * with a direct NHWC computation written here from the TFLite operator
 * definitions (SAME: out = ceil(in / stride), pad_before = total / 2). */
static float frand(uint64_t *s)
{
    return (float)((int64_t)(xorshift(s) % 2001) - 1000) / 1000.0f;
}

static int same_pad(int in, int k, int s, int d, int out)
{
    int eff = (k - 1) * d + 1, t = (out - 1) * s + eff - in;
    return t > 0 ? t / 2 : 0;
}

#define AT(a, d, i, j, k, l)                                                \
    (a)[(((size_t)(i) * (d)[1] + (size_t)(j)) * (d)[2] + (size_t)(k)) * (d)[3] + (size_t)(l)]

/* conv (dw == 0) or depthwise (dw == 1); w is OHWI or 1HW(C*M) */
static void ref_conv(const float *x, const int *xd, const float *w,
                     const int *wd, const float *b, int s, int dil, int same,
                     int dw, float *y, const int *yd)
{
    int kh = wd[1], kw = wd[2];
    int pt = same ? same_pad(xd[1], kh, s, dil, yd[1]) : 0;
    int pl = same ? same_pad(xd[2], kw, s, dil, yd[2]) : 0;
    int groups = dw ? xd[3] : xd[3] / wd[3];
    for (int n = 0; n < yd[0]; n++)
        for (int oy = 0; oy < yd[1]; oy++)
            for (int ox = 0; ox < yd[2]; ox++)
                for (int oc = 0; oc < yd[3]; oc++) {
                    double acc = b ? b[oc] : 0;
                    for (int ky = 0; ky < kh; ky++)
                        for (int kx = 0; kx < kw; kx++) {
                            int iy = oy * s - pt + ky * dil,
                                ix = ox * s - pl + kx * dil;
                            if (iy < 0 || ix < 0 || iy >= xd[1] || ix >= xd[2])
                                continue;
                            if (dw) {
                                int ic = oc / (yd[3] / xd[3]);
                                acc += (double)AT(x, xd, n, iy, ix, ic) *
                                       AT(w, wd, 0, ky, kx, oc);
                            } else {
                                int I = wd[3], g = oc / (yd[3] / groups);
                                for (int ic = 0; ic < I; ic++)
                                    acc += (double)AT(x, xd, n, iy, ix,
                                                      g * I + ic) *
                                           AT(w, wd, oc, ky, kx, ic);
                            }
                        }
                    AT(y, yd, n, oy, ox, oc) = (float)acc;
                }
}

static void ref_pool(const float *x, const int *xd, int k, int s, int same,
                     int is_max, float *y, const int *yd)
{
    int pt = same ? same_pad(xd[1], k, s, 1, yd[1]) : 0;
    int pl = same ? same_pad(xd[2], k, s, 1, yd[2]) : 0;
    for (int n = 0; n < yd[0]; n++)
        for (int oy = 0; oy < yd[1]; oy++)
            for (int ox = 0; ox < yd[2]; ox++)
                for (int c = 0; c < yd[3]; c++) {
                    double acc = 0, m = -INFINITY;
                    int cnt = 0;
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            int iy = oy * s - pt + ky, ix = ox * s - pl + kx;
                            if (iy < 0 || ix < 0 || iy >= xd[1] || ix >= xd[2])
                                continue;
                            double v = AT(x, xd, n, iy, ix, c);
                            acc += v;
                            if (v > m) m = v;
                            cnt++;
                        }
                    AT(y, yd, n, oy, ox, c) = (float)(is_max ? m : acc / cnt);
                }
}

/* TFLite TRANSPOSE_CONV, scatter form: w is [O, KH, KW, I] */
static void ref_tconv(const float *x, const int *xd, const float *w,
                      const int *wd, int s, int same, float *y, const int *yd)
{
    int kh = wd[1], kw = wd[2];
    /* TFLite: pads of the forward conv from the output size */
    int oh = same ? (yd[1] + s - 1) / s : (yd[1] + s - kh) / s;
    int ow = same ? (yd[2] + s - 1) / s : (yd[2] + s - kw) / s;
    int th = (oh - 1) * s + kh - yd[1], tw = (ow - 1) * s + kw - yd[2];
    int pt = th > 0 ? th / 2 : 0, pl = tw > 0 ? tw / 2 : 0;
    size_t ny = (size_t)yd[0] * yd[1] * yd[2] * yd[3];
    double *acc = calloc(ny, sizeof *acc);
    for (int n = 0; n < xd[0]; n++)
        for (int iy = 0; iy < xd[1]; iy++)
            for (int ix = 0; ix < xd[2]; ix++)
                for (int ky = 0; ky < kh; ky++)
                    for (int kx = 0; kx < kw; kx++) {
                        int oy = iy * s - pt + ky, ox = ix * s - pl + kx;
                        if (oy < 0 || ox < 0 || oy >= yd[1] || ox >= yd[2])
                            continue;
                        for (int oc = 0; oc < yd[3]; oc++)
                            for (int ic = 0; ic < xd[3]; ic++)
                                AT(acc, yd, n, oy, ox, oc) +=
                                    (double)AT(x, xd, n, iy, ix, ic) *
                                    AT(w, wd, oc, ky, kx, ic);
                    }
    for (size_t i = 0; i < ny; i++) y[i] = (float)acc[i];
    free(acc);
}

static size_t prod4(const int *d)
{
    return (size_t)d[0] * (size_t)d[1] * (size_t)d[2] * (size_t)d[3];
}

static mt_tensor t4(const char *name, const int *d, uint32_t buffer)
{
    mt_tensor t;
    memset(&t, 0, sizeof t);
    t.name = name;
    t.rank = 4;
    for (int i = 0; i < 4; i++) t.dims[i] = d[i];
    t.buffer = buffer;
    return t;
}

/* Loads the model, runs it on x, compares output 0 with want. */
static int run_crafted(mt_model *m, const float *x, const int *xd,
                       const float *want, size_t n_want, const char *what)
{
    const char *d = test_tmpdir();
    char path[4096], err[1024];
    snprintf(path, sizeof path, "%s/m.tflite", d);
    size_t n;
    uint8_t *b = mt_build(m, &n);
    int ok = test_write_file(path, b, n) == 0;
    free(b);
    if (!ok) return 0;
    int st;
    cr_graph *g = tfl_load(path, &st, err, sizeof err);
    if (!g) {
        fprintf(stderr, "    %s: %s\n", what, err);
        return 0;
    }
    cr_array in, out;
    memset(&in, 0, sizeof in);
    memset(&out, 0, sizeof out);
    in.dtype = CRUCIBLE_DT_F32;
    in.rank = 4;
    for (int i = 0; i < 4; i++) in.dims[i] = xd[i];
    in.data = (void *)x;
    in.bytes = prod4(xd) * sizeof(float);
    int rc = interp_run(g, &in, 1, &out, err, sizeof err);
    size_t transposes = count_op(g, CRUCIBLE_OP_TRANSPOSE);
    ir_free(g);
    if (rc) {
        fprintf(stderr, "    %s: run: %s\n", what, err);
        return 0;
    }
    cr_array w;
    memset(&w, 0, sizeof w);
    w.dtype = CRUCIBLE_DT_F32;
    w.data = (void *)want;
    w.bytes = n_want * sizeof(float);
    double worst;
    char msg[256];
    size_t bad = compare(&out, &w, 1e-5, 1e-5, &worst, msg, sizeof msg);
    tio_free(&out);
    if (bad) fprintf(stderr, "    %s: %zu differ: %s\n", what, bad, msg);
    else
        fprintf(stderr, "    %s: ok (max |error| %.3g, %zu transposes)\n",
                what, worst, transposes);
    return bad == 0;
}

/* one spatial op on a random NHWC input */
typedef struct spatial_case {
    const char *what;
    int code, opt_type;
    int xd[4], wd[4], yd[4];
    int stride, dil, same, bias, filter;
} spatial_case;

TEST(test_tflite_layout_ops)
{
    NEED_PLUGIN();
    static const spatial_case cases[] = {
        {"CONV_2D SAME stride 2", 3, 1, {1, 7, 6, 3}, {4, 3, 3, 3},
         {1, 4, 3, 4}, 2, 1, 1, 1, 0},
        {"CONV_2D VALID dilation 2, 2 groups", 3, 1, {2, 7, 8, 4},
         {6, 2, 3, 2}, {2, 5, 4, 6}, 1, 2, 0, 0, 0},
        {"DEPTHWISE_CONV_2D SAME multiplier 2", 4, 2, {1, 5, 5, 3},
         {1, 3, 3, 6}, {1, 5, 5, 6}, 1, 1, 1, 1, 0},
        {"AVERAGE_POOL_2D SAME 3x3 stride 2", 1, 5, {1, 6, 5, 2}, {0},
         {1, 3, 3, 2}, 2, 1, 1, 0, 3},
        {"MAX_POOL_2D VALID 2x2 stride 2", 17, 5, {1, 6, 5, 2}, {0},
         {1, 3, 2, 2}, 2, 1, 0, 0, 2},
        {"TRANSPOSE_CONV SAME stride 2", 67, 49, {1, 3, 4, 3}, {2, 3, 3, 3},
         {1, 6, 8, 2}, 2, 1, 1, 0, 0},
        {"TRANSPOSE_CONV VALID stride 2", 67, 49, {1, 3, 2, 2}, {2, 3, 3, 2},
         {1, 7, 5, 2}, 2, 1, 0, 0, 0},
    };
    uint64_t seed = 42;
    int failed = 0;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const spatial_case *k = &cases[ci];
        size_t nx = prod4(k->xd), ny = prod4(k->yd);
        size_t nw = k->wd[0] ? prod4(k->wd) : 0;
        float *x = malloc(nx * 4), *w = malloc((nw + 1) * 4),
              *bias = malloc(16 * 4), *y = calloc(ny, 4);
        for (size_t i = 0; i < nx; i++) x[i] = frand(&seed);
        for (size_t i = 0; i < nw; i++) w[i] = frand(&seed);
        for (int i = 0; i < 16; i++) bias[i] = frand(&seed);
        mt_model m;
        memset(&m, 0, sizeof m);
        m.version = 3;
        m.ncodes = 1;
        m.code[0] = k->code;
        m.dep[0] = (int32_t)k->code;
        m.ver[0] = 1;
        m.nin = 1;
        m.nout = 1;
        m.nops = 1;
        mt_op *o = &m.ops[0];
        o->opt_type = (uint8_t)k->opt_type;
        o->nout = 1;
        int pad = k->same ? 0 : 1;
        if (k->code == 67) { /* output_shape, weights, input */
            int32_t shp[4] = {k->yd[0], k->yd[1], k->yd[2], k->yd[3]};
            m.nt = 4;
            m.t[0] = t4("x", k->xd, 0);
            m.t[1] = t4("w", k->wd, 1);
            m.t[2] = (mt_tensor){"shape", 2, 1, {4}, 2, 0, {0}, {0}, 0};
            m.t[3] = t4("y", k->yd, 0);
            m.nbuf = 3;
            m.buflen[1] = (uint32_t)(nw * 4);
            m.bufdata[1] = w;
            m.buflen[2] = 16;
            m.bufdata[2] = shp;
            *o = (mt_op){0, 3, 1, {2, 1, 0}, {3}, 49, 3,
                         {{0, 1, (uint64_t)pad}, {1, 4, (uint64_t)k->stride},
                          {2, 4, (uint64_t)k->stride}}};
            ref_tconv(x, k->xd, w, k->wd, k->stride, k->same, y, k->yd);
            m.out[0] = 3;
            int okc = run_crafted(&m, x, k->xd, y, ny, k->what);
            failed += !okc;
            free(x), free(w), free(bias), free(y);
            continue;
        }
        if (k->filter) { /* pooling: Pool2DOptions slots 0 padding, 1/2
                          * strides w/h, 3/4 filter w/h */
            m.nt = 2;
            m.t[0] = t4("x", k->xd, 0);
            m.t[1] = t4("y", k->yd, 0);
            m.nbuf = 1;
            *o = (mt_op){0, 1, 1, {0}, {1}, 5, 5,
                         {{0, 1, (uint64_t)pad}, {1, 4, (uint64_t)k->stride},
                          {2, 4, (uint64_t)k->stride},
                          {3, 4, (uint64_t)k->filter},
                          {4, 4, (uint64_t)k->filter}}};
            ref_pool(x, k->xd, k->filter, k->stride, k->same, k->code == 17, y,
                     k->yd);
            m.out[0] = 1;
        } else { /* Conv2DOptions: 0 padding, 1/2 strides w/h, 4/5
                  * dilations w/h; DepthwiseConv2DOptions: 0 padding, 1/2
                  * strides, 5/6 dilations */
            int dwc = k->code == 4;
            m.nt = k->bias ? 4 : 3;
            m.t[0] = t4("x", k->xd, 0);
            m.t[1] = t4("w", k->wd, 1);
            m.t[2] = t4("y", k->yd, 0);
            m.nbuf = 3;
            m.buflen[1] = (uint32_t)(nw * 4);
            m.bufdata[1] = w;
            if (k->bias) {
                m.t[3] = (mt_tensor){"b", 0, 1, {k->yd[3]}, 2, 0, {0}, {0}, 0};
                m.buflen[2] = (uint32_t)(k->yd[3] * 4);
                m.bufdata[2] = bias;
            }
            *o = (mt_op){0, k->bias ? 3 : 2, 1, {0, 1, 3}, {2},
                         (uint8_t)k->opt_type, 5,
                         {{0, 1, (uint64_t)pad}, {1, 4, (uint64_t)k->stride},
                          {2, 4, (uint64_t)k->stride},
                          {dwc ? 5 : 4, 4, (uint64_t)k->dil},
                          {dwc ? 6 : 5, 4, (uint64_t)k->dil}}};
            ref_conv(x, k->xd, w, k->wd, k->bias ? bias : NULL, k->stride,
                     k->dil, k->same, dwc, y, k->yd);
            m.out[0] = 2;
        }
        failed += !run_crafted(&m, x, k->xd, y, ny, k->what);
        free(x), free(w), free(bias), free(y);
    }
    CHECK_MSG(failed == 0, "%d layout cases differ from the NHWC reference",
              failed);
    return TEST_PASS;
}

/* A chain that stays in NCHW between the input's transpose and the end:
 * CONV_2D (fused RELU6) -> ADD(y1, y1) -> CONCATENATION(y1, y2, axis -1)
 * -> PAD -> MEAN over H, W. Only one transpose (the input's) may appear. */
TEST(test_tflite_layout_chain)
{
    NEED_PLUGIN();
    const int xd[4] = {1, 5, 5, 2}, wd[4] = {3, 3, 3, 2},
              y1d[4] = {1, 5, 5, 3}, y3d[4] = {1, 5, 5, 6},
              y4d[4] = {1, 6, 7, 6};
    uint64_t seed = 7;
    float x[50], w[54], b[3], y1[75], y3[150], y4[252], y5[6];
    for (int i = 0; i < 50; i++) x[i] = 3 * frand(&seed);
    for (int i = 0; i < 54; i++) w[i] = frand(&seed);
    for (int i = 0; i < 3; i++) b[i] = frand(&seed);
    int32_t pads[8] = {0, 0, 1, 0, 0, 2, 0, 0}, axes[2] = {1, 2};
    /* reference, NHWC */
    ref_conv(x, xd, w, wd, b, 1, 1, 1, 0, y1, y1d);
    for (int i = 0; i < 75; i++) y1[i] = y1[i] < 0 ? 0 : y1[i] > 6 ? 6 : y1[i];
    for (int p = 0; p < 25; p++)
        for (int c = 0; c < 6; c++)
            y3[p * 6 + c] = c < 3 ? y1[p * 3 + c] : y1[p * 3 + c - 3] + y1[p * 3 + c - 3];
    memset(y4, 0, sizeof y4);
    for (int h = 0; h < 5; h++)
        for (int ww = 0; ww < 5; ww++)
            for (int c = 0; c < 6; c++)
                AT(y4, y4d, 0, h + 1, ww, c) = AT(y3, y3d, 0, h, ww, c);
    for (int c = 0; c < 6; c++) {
        double s = 0;
        for (int p = 0; p < 42; p++) s += y4[p * 6 + c];
        y5[c] = (float)(s / 42);
    }
    mt_model m;
    memset(&m, 0, sizeof m);
    m.version = 3;
    m.ncodes = 5;
    int32_t codes[5] = {3, 0, 2, 34, 40};
    for (int i = 0; i < 5; i++) {
        m.code[i] = codes[i];
        m.dep[i] = codes[i];
        m.ver[i] = 1;
    }
    m.nt = 10;
    m.t[0] = t4("x", xd, 0);
    m.t[1] = t4("w", wd, 1);
    m.t[2] = (mt_tensor){"b", 0, 1, {3}, 2, 0, {0}, {0}, 0};
    m.t[3] = t4("y1", y1d, 0);
    m.t[4] = t4("y2", y1d, 0);
    m.t[5] = t4("y3", y3d, 0);
    m.t[6] = (mt_tensor){"pads", 2, 2, {4, 2}, 3, 0, {0}, {0}, 0};
    m.t[7] = t4("y4", y4d, 0);
    m.t[8] = (mt_tensor){"axes", 2, 1, {2}, 4, 0, {0}, {0}, 0};
    m.t[9] = (mt_tensor){"y5", 0, 2, {1, 6}, 0, 0, {0}, {0}, 0};
    m.nin = 1;
    m.nout = 1;
    m.out[0] = 9;
    m.nbuf = 5;
    m.buflen[1] = sizeof w;
    m.bufdata[1] = w;
    m.buflen[2] = sizeof b;
    m.bufdata[2] = b;
    m.buflen[3] = sizeof pads;
    m.bufdata[3] = pads;
    m.buflen[4] = sizeof axes;
    m.bufdata[4] = axes;
    m.nops = 5;
    m.ops[0] = (mt_op){0, 3, 1, {0, 1, 2}, {3}, 1, 4,
                       {{0, 1, 0}, {1, 4, 1}, {2, 4, 1}, {3, 1, 3 /* RELU6 */}}};
    m.ops[1] = (mt_op){1, 2, 1, {3, 3}, {4}, 11, 0, {{0}}};
    m.ops[2] = (mt_op){2, 2, 1, {3, 4}, {5}, 10, 1,
                       {{0, 4, (uint64_t)(uint32_t)-1}}};
    m.ops[3] = (mt_op){3, 2, 1, {5, 6}, {7}, 0, 0, {{0}}};
    m.ops[4] = (mt_op){4, 2, 1, {7, 8}, {9}, 27, 0, {{0}}}; /* keep_dims 0 */
    CHECK(run_crafted(&m, x, xd, y5, 6, "conv-add-concat-pad-mean chain"));
    /* and the IR: one transpose (NHWC input -> NCHW), none back */
    const char *d = test_tmpdir();
    char path[4096], err[1024];
    snprintf(path, sizeof path, "%s/chain.tflite", d);
    size_t n;
    uint8_t *bb = mt_build(&m, &n);
    CHECK(test_write_file(path, bb, n) == 0);
    free(bb);
    int st;
    cr_graph *g = tfl_load(path, &st, err, sizeof err);
    CHECK_MSG(g, "%s", err);
    size_t nt = count_op(g, CRUCIBLE_OP_TRANSPOSE);
    int concat_axis1 = 0;
    for (size_t i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == CRUCIBLE_OP_CONCAT)
            concat_axis1 = ir_attr_i(&g->nodes[i], "axis", -9) == 1;
    ir_free(g);
    CHECK_MSG(nt == 1 && concat_axis1,
              "%zu transposes (want 1), concat on NCHW axis 1: %d", nt,
              concat_axis1);
    return TEST_PASS;
}
