/*
 * test_onnx.c - the ONNX frontend plugin (plugins/onnx): real models run
 * through the reference interpreter against their reference outputs, a
 * mini conformance loop over the ONNX backend node tests, and malformed
 * input (truncation, byte flips, hostile external-data paths, negative
 * dims, a too-new opset) that must fail with a clear error, never a crash.
 *
 * The model runner (onnx_case_run) and the comparison helper
 * (onnx_compare) are deliberately free of test-framework macros so that a
 * `crucible conformance` command can reuse them.
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

#define ONNX_PLUGIN CR_BUILD_DIR "/lib/crucible/plugins/onnx.so"
#define ONNX_MODELS CR_SOURCE_DIR "/../shared/models/onnx"
#define ONNX_NODE_TESTS "/usr/share/libonnx-testdata/data/node"
#define ONNX_TESTDATA CR_SOURCE_DIR "/tests/data/onnx"
#define BIN CR_CRUCIBLE_BIN

/* ---- the plugin, loaded once in-process ----------------------------------*/
static cr_loader g_loader;
static cr_plugin *g_onnx;
static int g_tried;

static cr_plugin *onnx_plugin(void)
{
    if (g_tried) return g_onnx;
    g_tried = 1;
    struct stat st;
    if (stat(ONNX_PLUGIN, &st)) return NULL;
    cr_loader_init(&g_loader, -1);
    cr_plugin *p = cr_loader_load_file(&g_loader, ONNX_PLUGIN);
    if (p && p->status == CR_PLUGIN_LOADED && p->has_frontend) g_onnx = p;
    else if (p) fprintf(stderr, "    onnx plugin refused: %s\n", p->reason);
    return g_onnx;
}

#define NEED_PLUGIN()                                                       \
    do {                                                                    \
        if (!onnx_plugin())                                                 \
            SKIP("onnx plugin not built (%s); needs protobuf-c-compiler, "  \
                 "libprotobuf-c-dev, libonnx-dev",                         \
                 ONNX_PLUGIN);                                              \
    } while (0)

/* Loads path with the onnx frontend the way the CLI does (load, validate,
 * infer shapes). Returns the graph, or NULL with *status and a message. */
cr_graph *onnx_load_graph(const char *path, int *status, char *err,
                          size_t errlen);
cr_graph *onnx_load_graph(const char *path, int *status, char *err,
                          size_t errlen)
{
    cr_plugin *p = onnx_plugin();
    *status = CRUCIBLE_E_NOTFOUND;
    snprintf(err, errlen, "onnx plugin not available");
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
        snprintf(err, errlen, "load: %s%s%s", crucible_status_str(rc),
                 bctx.err[0] ? ": " : "", bctx.err);
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

/* ---- comparison -------------------------------------------------------------
 * got vs want: same dims, then per element |got - want| <= atol + rtol *
 * |want| for floats, exact for integers and bools; NaN matches NaN, an
 * infinity the same infinity. Returns 0 when they match, else 1 with a
 * message. */
int onnx_compare(const cr_array *got, const cr_array *want, double rtol,
                 double atol, char *msg, size_t n);
int onnx_compare(const cr_array *got, const cr_array *want, double rtol,
                 double atol, char *msg, size_t n)
{
    size_t ng = tio_numel(got), nw = tio_numel(want);
    int shape_ok = ng == nw && got->rank == want->rank;
    for (int32_t i = 0; shape_ok && i < got->rank; i++)
        if (got->dims[i] != want->dims[i]) shape_ok = 0;
    if (!shape_ok) {
        snprintf(msg, n, "shape differs: got rank %d with %zu elements, want "
                         "rank %d with %zu",
                 (int)got->rank, ng, (int)want->rank, nw);
        return 1;
    }
    cr_array g2, w2;
    char err[256];
    memset(&g2, 0, sizeof g2);
    memset(&w2, 0, sizeof w2);
    int isf = got->dtype == CRUCIBLE_DT_F32 || got->dtype == CRUCIBLE_DT_F16 ||
              want->dtype == CRUCIBLE_DT_F32 || want->dtype == CRUCIBLE_DT_F16;
    int target = isf ? CRUCIBLE_DT_F32 : CRUCIBLE_DT_I64;
    if ((got->dtype == CRUCIBLE_DT_BOOL) != (want->dtype == CRUCIBLE_DT_BOOL) ||
        ((got->dtype == CRUCIBLE_DT_F32) != (want->dtype == CRUCIBLE_DT_F32) &&
         got->dtype != CRUCIBLE_DT_F16 && want->dtype != CRUCIBLE_DT_F16)) {
        snprintf(msg, n, "dtype differs: got %s, want %s",
                 ir_dtype_name(got->dtype), ir_dtype_name(want->dtype));
        return 1;
    }
    if (tio_convert(got, target, &g2, err, sizeof err) ||
        tio_convert(want, target, &w2, err, sizeof err)) {
        tio_free(&g2);
        tio_free(&w2);
        snprintf(msg, n, "cannot compare: %s", err);
        return 1;
    }
    int bad = 0;
    size_t worst = 0;
    double worst_d = -1;
    for (size_t i = 0; i < ng; i++) {
        double a, b;
        if (isf) {
            a = ((const float *)g2.data)[i];
            b = ((const float *)w2.data)[i];
        } else {
            a = (double)((const int64_t *)g2.data)[i];
            b = (double)((const int64_t *)w2.data)[i];
        }
        int ok;
        if (isnan(b)) ok = isnan(a);
        else if (isinf(b)) ok = a == b;
        else ok = isf ? fabs(a - b) <= atol + rtol * fabs(b) : a == b;
        if (!ok) {
            double d = isnan(a) ? INFINITY : fabs(a - b);
            if (!bad || d > worst_d) {
                worst = i;
                worst_d = d;
            }
            bad++;
        }
    }
    if (bad) {
        double a = isf ? ((const float *)g2.data)[worst]
                       : (double)((const int64_t *)g2.data)[worst];
        double b = isf ? ((const float *)w2.data)[worst]
                       : (double)((const int64_t *)w2.data)[worst];
        snprintf(msg, n, "%d of %zu elements differ; worst at %zu: got %.9g, "
                         "want %.9g",
                 bad, ng, worst, a, b);
    }
    tio_free(&g2);
    tio_free(&w2);
    return bad ? 1 : 0;
}

/* Rows [r, r+1) of a (along axis 0) as a new array. */
static int slice_row(const cr_array *a, int64_t r, cr_array *out)
{
    memset(out, 0, sizeof *out);
    size_t per = a->bytes / (size_t)a->dims[0];
    *out = *a;
    out->name = NULL;
    out->dims[0] = 1;
    out->bytes = per;
    out->data = cr_malloc(per ? per : 1);
    if (!out->data) return -1;
    memcpy(out->data, (const char *)a->data + (size_t)r * per, per);
    return 0;
}

/* Runs g on inputs; a model whose inputs were declared with a batch of 1
 * (dynamic dims set to 1 by the frontend) is run once per row when the
 * data has a larger batch, and the outputs are concatenated. */
static int run_batched(const cr_graph *g, const cr_array *in, size_t ni,
                       cr_array *out, char *err, size_t errlen)
{
    int64_t batch = 1;
    for (size_t i = 0; i < ni; i++) {
        const cr_tensor *t = &g->tensors[g->inputs[i]];
        if (t->rank >= 1 && in[i].rank == t->rank && t->dims[0] == 1 &&
            in[i].dims[0] > 1)
            batch = in[i].dims[0];
    }
    if (batch == 1) return interp_run(g, in, ni, out, err, errlen);
    size_t no = g->n_outputs;
    cr_array *rows = cr_calloc(ni ? ni : 1, sizeof *rows);
    cr_array *part = cr_calloc(no ? no : 1, sizeof *part);
    int rc = 0;
    memset(out, 0, no * sizeof *out);
    for (int64_t r = 0; rc == 0 && r < batch; r++) {
        for (size_t i = 0; i < ni; i++) {
            if (in[i].dims[0] == batch) {
                if (slice_row(&in[i], r, &rows[i])) rc = -1;
            } else {
                rows[i] = in[i];
                rows[i].data = cr_malloc(in[i].bytes ? in[i].bytes : 1);
                rows[i].name = NULL;
                if (rows[i].data) memcpy(rows[i].data, in[i].data, in[i].bytes);
            }
        }
        if (!rc) rc = interp_run(g, rows, ni, part, err, errlen);
        for (size_t i = 0; i < ni; i++) tio_free(&rows[i]);
        for (size_t k = 0; rc == 0 && k < no; k++) {
            if (r == 0) {
                out[k] = part[k];
                out[k].dims[0] = batch;
                out[k].bytes = part[k].bytes * (size_t)batch;
                out[k].data = cr_malloc(out[k].bytes ? out[k].bytes : 1);
                if (!out[k].data) rc = -1;
                else memcpy(out[k].data, part[k].data, part[k].bytes);
                part[k].name = NULL;
            } else {
                memcpy((char *)out[k].data + (size_t)r * part[k].bytes,
                       part[k].data, part[k].bytes);
            }
            tio_free(&part[k]);
        }
    }
    cr_free(rows);
    cr_free(part);
    if (rc)
        for (size_t k = 0; k < no; k++) tio_free(&out[k]);
    return rc;
}

/* ---- one test case ----------------------------------------------------------*/
typedef enum {
    CASE_PASS, CASE_FAIL, CASE_UNSUPPORTED, CASE_ERROR
} case_verdict;

typedef struct case_result {
    case_verdict verdict;
    char why[512];   /* failure / refusal detail */
    char ops[256];   /* unsupported source ops, comma-separated */
} case_result;

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

/* Loads dir/model.onnx and, when it has no unsupported node, runs data
 * sets 0..max_sets-1 and compares every output. */
void onnx_case_run(const char *dir, int max_sets, double rtol, double atol,
                   case_result *res);
void onnx_case_run(const char *dir, int max_sets, double rtol, double atol,
                   case_result *res)
{
    char path[4096], err[1024];
    memset(res, 0, sizeof *res);
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    int status;
    cr_graph *g = onnx_load_graph(path, &status, err, sizeof err);
    if (!g) {
        res->verdict = status == CRUCIBLE_E_UNSUPPORTED ? CASE_UNSUPPORTED
                                                        : CASE_ERROR;
        snprintf(res->why, sizeof res->why, "%s", err);
        snprintf(res->ops, sizeof res->ops, "(load)");
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const cr_node *n = &g->nodes[i];
        if (n->op != CRUCIBLE_OP_UNSUPPORTED) continue;
        const char *src = ir_attr_s(n, "source_op", "?");
        if (!res->verdict) {
            snprintf(res->why, sizeof res->why, "%s: %s", n->name,
                     ir_attr_s(n, "reason", "?"));
        }
        res->verdict = CASE_UNSUPPORTED;
        if (!strstr(res->ops, src) && k + strlen(src) + 2 < sizeof res->ops)
            k += (size_t)snprintf(res->ops + k, sizeof res->ops - k, "%s%s",
                                  k ? "," : "", src);
    }
    if (res->verdict == CASE_UNSUPPORTED) {
        ir_free(g);
        return;
    }
    int sets = count_sets(dir);
    if (sets > max_sets) sets = max_sets;
    res->verdict = CASE_PASS;
    for (int s = 0; s < sets && res->verdict == CASE_PASS; s++) {
        cr_array *in = cr_calloc(g->n_inputs + 1, sizeof *in);
        cr_array *out = cr_calloc(g->n_outputs + 1, sizeof *out);
        size_t loaded = 0;
        for (; loaded < g->n_inputs; loaded++) {
            snprintf(path, sizeof path, "%s/test_data_set_%d/input_%zu.pb",
                     dir, s, loaded);
            if (tio_load(path, &in[loaded], err, sizeof err)) {
                res->verdict = CASE_ERROR;
                snprintf(res->why, sizeof res->why, "%s", err);
                break;
            }
        }
        if (res->verdict == CASE_PASS &&
            run_batched(g, in, g->n_inputs, out, err, sizeof err)) {
            res->verdict = CASE_FAIL;
            snprintf(res->why, sizeof res->why, "run: %s", err);
        }
        for (size_t o = 0; res->verdict == CASE_PASS && o < g->n_outputs; o++) {
            cr_array want;
            snprintf(path, sizeof path, "%s/test_data_set_%d/output_%zu.pb",
                     dir, s, o);
            if (tio_load(path, &want, err, sizeof err)) {
                res->verdict = CASE_ERROR;
                snprintf(res->why, sizeof res->why, "%s", err);
                break;
            }
            char msg[400];
            if (onnx_compare(&out[o], &want, rtol, atol, msg, sizeof msg)) {
                res->verdict = CASE_FAIL;
                snprintf(res->why, sizeof res->why, "set %d output %zu (%s): %s",
                         s, o, g->tensors[g->outputs[o]].name, msg);
            }
            tio_free(&want);
        }
        for (size_t i = 0; i < loaded; i++) tio_free(&in[i]);
        for (size_t o = 0; o < g->n_outputs; o++) tio_free(&out[o]);
        cr_free(in);
        cr_free(out);
    }
    ir_free(g);
}

/* ---- real models ------------------------------------------------------------*/
TEST(test_onnx_real_models)
{
    NEED_PLUGIN();
    static const char *const models[] = {"mnist8_cntk", "atmega_mnist14",
                                         "tfl_hello_world_keras2onnx"};
    struct stat st;
    if (stat(ONNX_MODELS, &st)) SKIP("%s is absent", ONNX_MODELS);
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", ONNX_MODELS, models[i]);
        if (stat(dir, &st)) SKIP("%s is absent", dir);
        CHECK_MSG(count_sets(dir) >= 1, "%s has no test data", dir);
        case_result r;
        onnx_case_run(dir, 100, 1e-3, 1e-5, &r);
        CHECK_MSG(r.verdict == CASE_PASS, "%s: %s", models[i], r.why);
    }
    return TEST_PASS;
}

/* The same through the real CLI: crucible run MODEL --input --output. */
TEST(test_onnx_cli_run)
{
    NEED_PLUGIN();
    const char *m = ONNX_MODELS "/mnist8_cntk";
    struct stat st;
    if (stat(m, &st)) SKIP("%s is absent", m);
    const char *d = test_tmpdir();
    for (int s = 0; s < count_sets(m); s++) {
        char *out = NULL;
        int rc = test_sh(&out, "'%s' run '%s/model.onnx' --input "
                               "'%s/test_data_set_%d/input_0.pb' --output "
                               "'%s/out%d.npy'",
                         BIN, m, m, s, d, s);
        CHECK_MSG(rc == 0, "crucible run exited %d: %s", rc, out);
        free(out);
        char p1[4096], p2[4096], err[512], msg[512];
        snprintf(p1, sizeof p1, "%s/out%d.npy", d, s);
        snprintf(p2, sizeof p2, "%s/test_data_set_%d/output_0.pb", m, s);
        cr_array got, want;
        CHECK_MSG(tio_load(p1, &got, err, sizeof err) == 0, "%s", err);
        CHECK_MSG(tio_load(p2, &want, err, sizeof err) == 0, "%s", err);
        int bad = onnx_compare(&got, &want, 1e-3, 1e-5, msg, sizeof msg);
        tio_free(&got);
        tio_free(&want);
        CHECK_MSG(!bad, "set %d: %s", s, msg);
    }
    char *out = NULL;
    int rc = test_sh(&out, "'%s' ir '%s/model.onnx'", BIN, m);
    CHECK_MSG(rc == 0, "crucible ir exited %d", rc);
    CHECK(test_contains(out, "conv2d(") && test_contains(out, "max_pool2d(") &&
          test_contains(out, "dense(") && test_contains(out, "meta producer"));
    free(out);
    rc = test_sh(&out, "'%s' --json ir '%s/atmega_mnist14/model.onnx'", BIN,
                 ONNX_MODELS);
    CHECK_MSG(rc == 0 && test_contains(out, "\"frontend\":\"onnx\"") &&
                  test_contains(out, "\"unsupported\":[]"),
              "%s", out);
    free(out);
    return TEST_PASS;
}

TEST(test_onnx_score)
{
    NEED_PLUGIN();
    const crucible_frontend *fe = &g_onnx->frontend;
    static const uint8_t model[] = {0x08, 0x07, 0x12, 0x04, 't', 'e', 's', 't',
                                    0x3a, 0x80, 0x01};
    static const uint8_t tensor[] = {0x08, 0x01, 0x08, 0x0a, 0x10, 0x01,
                                     0x4a, 0x04, 0, 0, 0, 0};
    static const uint8_t text[] = "crucible-ir 1\ngraph g\n";
    CHECK(fe->score(g_onnx->state, "m.bin", model, sizeof model) >= 90);
    CHECK(fe->score(g_onnx->state, "m.onnx", model, sizeof model) >= 90);
    CHECK(fe->score(g_onnx->state, "t.pb", tensor, sizeof tensor) == 0);
    CHECK(fe->score(g_onnx->state, "x.crir", text, sizeof text - 1) == 0);
    CHECK(fe->score(g_onnx->state, "x.ONNX", text, sizeof text - 1) == 60);
    CHECK(fe->score(g_onnx->state, "empty", model, 0) == 0);
    return TEST_PASS;
}

/* ---- conformance over the ONNX backend node tests ------------------------- */
typedef struct op_count {
    char op[64];
    int n;
} op_count;

static void bump(op_count *t, int *nt, int cap, const char *op)
{
    for (int i = 0; i < *nt; i++)
        if (!strcmp(t[i].op, op)) {
            t[i].n++;
            return;
        }
    if (*nt < cap) {
        snprintf(t[*nt].op, sizeof t[*nt].op, "%s", op);
        t[(*nt)++].n = 1;
    }
}

static int by_count(const void *a, const void *b)
{
    const op_count *x = a, *y = b;
    return y->n != x->n ? y->n - x->n : strcmp(x->op, y->op);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every case directory under root; prints pass / fail / error /
 * unsupported counts and the unsupported source ops. Returns the number of
 * failed or erroring cases (-1 if root cannot be read), *n_pass the
 * passes. */
static int conformance_dir(const char *root, const char *label, int *n_pass)
{
    DIR *d = opendir(root);
    if (!d) return -1;
    char **names = NULL;
    size_t nn = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (nn == cap) {
            cap = cap ? 2 * cap : 1024;
            char **nb = realloc(names, cap * sizeof *names);
            if (!nb) break;
            names = nb;
        }
        names[nn++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, nn, sizeof *names, by_name);
    const char *only = getenv("CR_ONNX_CASE"); /* debugging aid */
    int pass = 0, fail = 0, unsup = 0, error = 0;
    static op_count uops[512];
    int nu = 0;
    cr_host_set_verbosity(-2); /* the plugin's refusals are expected here */
    for (size_t i = 0; i < nn; i++) {
        if (only && !strstr(names[i], only)) continue;
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", root, names[i]);
        case_result r;
        onnx_case_run(dir, 1, 1e-3, 1e-5, &r);
        switch (r.verdict) {
        case CASE_PASS: pass++; break;
        case CASE_UNSUPPORTED: {
            unsup++;
            if (only) fprintf(stderr, "    unsupported %s: %s\n", names[i], r.why);
            char *save = NULL, *tok = strtok_r(r.ops, ",", &save);
            for (; tok; tok = strtok_r(NULL, ",", &save))
                bump(uops, &nu, 512, tok);
            break;
        }
        case CASE_FAIL:
            fail++;
            fprintf(stderr, "    FAIL %s: %s\n", names[i], r.why);
            break;
        default:
            error++;
            fprintf(stderr, "    ERROR %s: %s\n", names[i], r.why);
            break;
        }
    }
    cr_host_set_verbosity(0);
    qsort(uops, (size_t)nu, sizeof uops[0], by_count);
    fprintf(stderr, "    %s: %d cases: %d pass, %d fail, %d error, %d "
                    "unsupported\n",
            label, pass + fail + unsup + error, pass, fail, error, unsup);
    fprintf(stderr, "    unsupported by op (cases):");
    for (int i = 0; i < nu; i++)
        fprintf(stderr, "%s %s=%d", i ? "," : "", uops[i].op, uops[i].n);
    fprintf(stderr, "\n");
    for (size_t i = 0; i < nn; i++) free(names[i]);
    free(names);
    *n_pass = pass;
    return fail + error;
}

TEST(test_onnx_conformance_node)
{
    NEED_PLUGIN();
    int pass;
    int bad = conformance_dir(ONNX_NODE_TESTS, "onnx node conformance", &pass);
    if (bad < 0) SKIP("%s is absent (package libonnx-testdata)", ONNX_NODE_TESTS);
    CHECK_MSG(bad == 0, "%d supported cases failed or errored", bad);
    CHECK(pass > 0);
    return TEST_PASS;
}

/* The other ONNX backend test groups: small real nets (simple) and
 * PyTorch-exported layers and operators. */
TEST(test_onnx_conformance_pytorch)
{
    NEED_PLUGIN();
    static const char *const groups[] = {"simple", "pytorch-converted",
                                         "pytorch-operator"};
    int total = 0, bad = 0, ran = 0;
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        char root[512], label[128];
        snprintf(root, sizeof root, "%s/../%s", ONNX_NODE_TESTS, groups[i]);
        snprintf(label, sizeof label, "onnx %s conformance", groups[i]);
        int pass, b = conformance_dir(root, label, &pass);
        if (b < 0) continue;
        ran++;
        bad += b;
        total += pass;
    }
    if (!ran) SKIP("the ONNX backend test data is absent (libonnx-testdata)");
    CHECK_MSG(bad == 0, "%d supported cases failed or errored", bad);
    CHECK(total > 0);
    return TEST_PASS;
}

/* The node tests again with every input but the first frozen into an
 * initializer (tests/data/onnx/freeze.py): exercises the constant paths. */
TEST(test_onnx_conformance_frozen)
{
    NEED_PLUGIN();
    struct stat st;
    if (stat(ONNX_NODE_TESTS, &st))
        SKIP("%s is absent (package libonnx-testdata)", ONNX_NODE_TESTS);
    const char *d = test_tmpdir();
    char *out = NULL;
    int rc = test_sh(&out, "/usr/bin/python3 '%s/freeze.py' '%s' '%s/frozen'",
                     ONNX_TESTDATA, ONNX_NODE_TESTS, d);
    if (rc != 0) {
        fprintf(stderr, "    %s", out ? out : "");
        free(out);
        SKIP("/usr/bin/python3 with python3-onnx is needed to freeze inputs");
    }
    free(out);
    char root[4096];
    snprintf(root, sizeof root, "%s/frozen", d);
    int pass;
    int bad = conformance_dir(root, "onnx node conformance, inputs frozen",
                              &pass);
    CHECK_MSG(bad == 0, "%d supported cases failed or errored", bad);
    CHECK(pass > 0);
    return TEST_PASS;
}

/* ---- quantised integer ops ------------------------------------------------
 * Models in the ONNX backend-test layout made by the generator below
 * (python3 with python3-onnx, as for the frozen test). Their expected
 * outputs are computed there with numpy, independently of the C code, by
 * the documented rules: int64 products of centred operands, the f32
 * multiplier (x_scale * w_scale) / y_scale, an f32 multiply, round half to
 * even, + y_zero_point, saturation. Case A is built so that many results
 * are exact .5 ties; F chains QuantizeLinear -> QLinearConv ->
 * DequantizeLinear and reads the quantised tensor again with another zero
 * point (which needs a view). */
static const char k_qgen_py[] =
    "import os, sys\n"
    "import numpy as np\n"
    "import onnx\n"
    "from onnx import helper, numpy_helper, TensorProto as TP\n"
    "\n"
    "out = sys.argv[1]\n"
    "rng = np.random.RandomState(7)\n"
    "ONNX_T = {np.dtype(np.uint8): TP.UINT8, np.dtype(np.int8): TP.INT8,\n"
    "          np.dtype(np.int32): TP.INT32, np.dtype(np.float32): TP.FLOAT}\n"
    "\n"
    "\n"
    "def save(name, nodes, feeds, expect, inits, opset=13):\n"
    "    ins = [helper.make_tensor_value_info(k, ONNX_T[v.dtype], v.shape)\n"
    "           for k, v in feeds]\n"
    "    outs = [helper.make_tensor_value_info(k, ONNX_T[v.dtype], v.shape)\n"
    "            for k, v in expect]\n"
    "    g = helper.make_graph(nodes, name, ins, outs,\n"
    "                          initializer=[numpy_helper.from_array(np.asarray(v), k)\n"
    "                                       for k, v in inits.items()])\n"
    "    m = helper.make_model(g, opset_imports=[helper.make_opsetid(\"\", opset)])\n"
    "    m.ir_version = 7\n"
    "    onnx.checker.check_model(m)\n"
    "    d = os.path.join(out, name, \"test_data_set_0\")\n"
    "    os.makedirs(d, exist_ok=True)\n"
    "    onnx.save(m, os.path.join(out, name, \"model.onnx\"))\n"
    "    for i, (k, v) in enumerate(feeds):\n"
    "        with open(os.path.join(d, \"input_%d.pb\" % i), \"wb\") as f:\n"
    "            f.write(numpy_helper.from_array(v, k).SerializeToString())\n"
    "    for i, (k, v) in enumerate(expect):\n"
    "        with open(os.path.join(d, \"output_%d.pb\" % i), \"wb\") as f:\n"
    "            f.write(numpy_helper.from_array(v, k).SerializeToString())\n"
    "\n"
    "\n"
    "def conv(X, W, pads, strides, group):\n"
    "    \"\"\"int64 convolution of centred operands, zero padding.\"\"\"\n"
    "    N, C, H, Wd = X.shape\n"
    "    M, Cg, KH, KW = W.shape\n"
    "    Xp = np.pad(X, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))\n"
    "    OH = (H + pads[0] + pads[2] - KH) // strides[0] + 1\n"
    "    OW = (Wd + pads[1] + pads[3] - KW) // strides[1] + 1\n"
    "    y = np.zeros((N, M, OH, OW), np.int64)\n"
    "    for m in range(M):\n"
    "        g = m // (M // group)\n"
    "        for oh in range(OH):\n"
    "            for ow in range(OW):\n"
    "                p = Xp[:, g * Cg:(g + 1) * Cg, oh * strides[0]:oh * strides[0] + KH,\n"
    "                       ow * strides[1]:ow * strides[1] + KW]\n"
    "                y[:, m, oh, ow] = (p * W[m]).sum(axis=(1, 2, 3))\n"
    "    return y\n"
    "\n"
    "\n"
    "def requant(acc, m, zp, dt):\n"
    "    \"\"\"f32 rule: rne(f32(acc) * m) + zp, saturated.\"\"\"\n"
    "    v = acc.astype(np.float32) * m\n"
    "    assert v.dtype == np.float32\n"
    "    r = np.rint(v).astype(np.int64) + int(zp)\n"
    "    info = np.iinfo(dt)\n"
    "    return np.clip(r, info.min, info.max).astype(dt)\n"
    "\n"
    "\n"
    "f32 = np.float32\n"
    "\n"
    "# A: QLinearConv, per-channel int8 weights, bias, pads, strides; scales\n"
    "# chosen so that many results are exact ties (m = 1/8)\n"
    "x = rng.randint(95, 146, (1, 3, 5, 5)).astype(np.uint8)\n"
    "x[0, 0, 0, :] = [0, 255, 0, 255, 0]  # some saturation\n"
    "w = rng.randint(-4, 5, (4, 3, 3, 3)).astype(np.int8)\n"
    "xs, xz = f32(0.5), np.uint8(120)\n"
    "ws = np.array([0.25, 0.125, 0.5, 0.25], f32)\n"
    "wz = np.array([0, 3, -2, 0], np.int8)\n"
    "ys, yz = f32(1.0), np.uint8(100)\n"
    "B = np.array([50, -700, 3, 0], np.int32)\n"
    "acc = conv(x.astype(np.int64) - int(xz), w.astype(np.int64) - wz.astype(np.int64).reshape(4, 1, 1, 1),\n"
    "           [1, 1, 1, 1], [2, 1], 1) + B.reshape(1, 4, 1, 1)\n"
    "m = (xs * ws) / ys\n"
    "y = requant(acc, m.reshape(1, 4, 1, 1), yz, np.uint8)\n"
    "v = acc.astype(np.float32) * m.reshape(1, 4, 1, 1)\n"
    "assert (v - np.floor(v) == 0.5).sum() >= 5, \"no ties to round\"\n"
    "assert (y == 0).any() or (y == 255).any()\n"
    "save(\"qlinearconv_perchannel\",\n"
    "     [helper.make_node(\"QLinearConv\", [\"x\", \"xs\", \"xz\", \"w\", \"ws\", \"wz\", \"ys\", \"yz\", \"B\"], [\"y\"],\n"
    "                       pads=[1, 1, 1, 1], strides=[2, 1])],\n"
    "     [(\"x\", x)], [(\"y\", y)],\n"
    "     {\"xs\": xs, \"xz\": xz, \"w\": w, \"ws\": ws, \"wz\": wz, \"ys\": ys, \"yz\": yz, \"B\": B})\n"
    "\n"
    "# B: 1-D QLinearConv, groups, int8 output, batch 2, arbitrary scales\n"
    "x = rng.randint(0, 256, (2, 4, 9)).astype(np.uint8)\n"
    "w = rng.randint(0, 256, (4, 2, 3)).astype(np.uint8)\n"
    "xs, xz = f32(0.0173), np.uint8(131)\n"
    "ws, wz = f32(0.0041), np.uint8(127)\n"
    "ys, yz = f32(0.0377), np.int8(-7)\n"
    "acc = conv((x.astype(np.int64) - int(xz))[:, :, None, :],\n"
    "           (w.astype(np.int64) - int(wz))[:, :, None, :], [0, 1, 0, 2], [1, 1], 2)[:, :, 0, :]\n"
    "y = requant(acc, (xs * ws) / ys, yz, np.int8)\n"
    "save(\"qlinearconv_1d_group\",\n"
    "     [helper.make_node(\"QLinearConv\", [\"x\", \"xs\", \"xz\", \"w\", \"ws\", \"wz\", \"ys\", \"yz\"], [\"y\"],\n"
    "                       pads=[1, 2], group=2)],\n"
    "     [(\"x\", x)], [(\"y\", y)],\n"
    "     {\"xs\": xs, \"xz\": xz, \"w\": w, \"ws\": ws, \"wz\": wz, \"ys\": ys, \"yz\": yz})\n"
    "\n"
    "# C: QLinearMatMul, rank-3 a, per-column b\n"
    "a = rng.randint(0, 256, (2, 3, 4)).astype(np.uint8)\n"
    "b = rng.randint(0, 256, (4, 5)).astype(np.uint8)\n"
    "a_s, a_z = f32(0.02), np.uint8(128)\n"
    "b_s = np.array([0.01, 0.02, 0.005, 0.04, 0.0123], f32)\n"
    "b_z = np.array([128, 120, 140, 0, 255], np.uint8)\n"
    "ys, yz = f32(0.05), np.uint8(125)\n"
    "acc = np.matmul(a.astype(np.int64) - int(a_z), b.astype(np.int64) - b_z.astype(np.int64))\n"
    "y = requant(acc, (a_s * b_s) / ys, yz, np.uint8)\n"
    "save(\"qlinearmatmul_percolumn\",\n"
    "     [helper.make_node(\"QLinearMatMul\", [\"a\", \"as\", \"az\", \"b\", \"bs\", \"bz\", \"ys\", \"yz\"], [\"y\"])],\n"
    "     [(\"a\", a)], [(\"y\", y)],\n"
    "     {\"as\": a_s, \"az\": a_z, \"b\": b, \"bs\": b_s, \"bz\": b_z, \"ys\": ys, \"yz\": yz}, opset=10)\n"
    "\n"
    "# D: MatMulInteger, per-row a zero points, per-column int8 b zero points\n"
    "A = rng.randint(0, 256, (3, 4)).astype(np.uint8)\n"
    "Bm = rng.randint(-128, 128, (4, 2)).astype(np.int8)\n"
    "az = np.array([0, 200, 17], np.uint8)\n"
    "bz = np.array([-1, 5], np.int8)\n"
    "Y = np.matmul(A.astype(np.int64) - az.astype(np.int64)[:, None],\n"
    "              Bm.astype(np.int64) - bz.astype(np.int64)[None, :]).astype(np.int32)\n"
    "save(\"matmulinteger_rowcol\",\n"
    "     [helper.make_node(\"MatMulInteger\", [\"A\", \"B\", \"az\", \"bz\"], [\"Y\"])],\n"
    "     [(\"A\", A)], [(\"Y\", Y)], {\"B\": Bm, \"az\": az, \"bz\": bz}, opset=10)\n"
    "\n"
    "# E: ConvInteger, int8, per-channel weight zero points, asymmetric pads\n"
    "x = rng.randint(-128, 128, (1, 2, 4, 4)).astype(np.int8)\n"
    "w = rng.randint(-128, 128, (3, 2, 2, 2)).astype(np.int8)\n"
    "xz = np.int8(-5)\n"
    "wz = np.array([1, -1, 0], np.int8)\n"
    "y = conv(x.astype(np.int64) - int(xz), w.astype(np.int64) - wz.astype(np.int64).reshape(3, 1, 1, 1),\n"
    "         [0, 1, 1, 0], [2, 2], 1).astype(np.int32)\n"
    "save(\"convinteger_perchannel\",\n"
    "     [helper.make_node(\"ConvInteger\", [\"x\", \"w\", \"xz\", \"wz\"], [\"y\"], pads=[0, 1, 1, 0],\n"
    "                       strides=[2, 2])],\n"
    "     [(\"x\", x)], [(\"y\", y)], {\"w\": w, \"xz\": xz, \"wz\": wz}, opset=10)\n"
    "\n"
    "# F: QuantizeLinear -> QLinearConv -> DequantizeLinear, and the quantised\n"
    "# tensor also read by a MatMulInteger with another zero point (a view)\n"
    "x = ((rng.rand(1, 2, 4, 4) - 0.5) * 10).astype(np.float32)\n"
    "qs, qz = f32(0.05), np.uint8(128)\n"
    "q = np.clip(np.rint(x / qs).astype(np.int64) + 128, 0, 255).astype(np.uint8)\n"
    "w = rng.randint(0, 256, (2, 2, 1, 1)).astype(np.uint8)\n"
    "ws, wz = f32(0.003), np.uint8(130)\n"
    "ys, yz = f32(0.1), np.uint8(120)\n"
    "acc = conv(q.astype(np.int64) - 128, w.astype(np.int64) - 130, [0, 0, 0, 0], [1, 1], 1)\n"
    "yq = requant(acc, (qs * ws) / ys, yz, np.uint8)\n"
    "deq = (yq.astype(np.int64) - 120).astype(np.float32) * ys\n"
    "Bm = rng.randint(0, 256, (4, 3)).astype(np.uint8)\n"
    "mm = np.matmul(q.astype(np.int64) - 100, Bm.astype(np.int64)).astype(np.int32)\n"
    "save(\"qdq_chain\",\n"
    "     [helper.make_node(\"QuantizeLinear\", [\"x\", \"qs\", \"qz\"], [\"q\"]),\n"
    "      helper.make_node(\"QLinearConv\", [\"q\", \"qs\", \"qz\", \"w\", \"ws\", \"wz\", \"ys\", \"yz\"], [\"yq\"]),\n"
    "      helper.make_node(\"DequantizeLinear\", [\"yq\", \"ys\", \"yz\"], [\"out\"]),\n"
    "      helper.make_node(\"MatMulInteger\", [\"q\", \"B\", \"az\"], [\"mm\"])],\n"
    "     [(\"x\", x)], [(\"out\", deq), (\"mm\", mm)],\n"
    "     {\"qs\": qs, \"qz\": qz, \"w\": w, \"ws\": ws, \"wz\": wz, \"ys\": ys, \"yz\": yz, \"B\": Bm,\n"
    "      \"az\": np.uint8(100)})\n"
    "print(6)\n";

TEST(test_onnx_quant_int_ops)
{
    NEED_PLUGIN();
    const char *d = test_tmpdir();
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/qgen.py", d);
    CHECK(test_write(path, k_qgen_py) == 0);
    char *out = NULL;
    int rc = test_sh(&out, "/usr/bin/python3 '%s' '%s/q'", path, d);
    if (rc != 0) {
        fprintf(stderr, "    %s", out ? out : "");
        free(out);
        SKIP("/usr/bin/python3 with python3-onnx is needed to make the "
             "models");
    }
    free(out);
    static const char *const cases[] = {
        "qlinearconv_perchannel", "qlinearconv_1d_group",
        "qlinearmatmul_percolumn", "matmulinteger_rowcol",
        "convinteger_perchannel", "qdq_chain"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/q/%s", d, cases[i]);
        case_result r;
        onnx_case_run(dir, 1, 0.0, 0.0, &r); /* integers compare exactly */
        CHECK_MSG(r.verdict == CASE_PASS, "%s: %s", cases[i], r.why);
    }

    /* A: conv2d (i32 accumulator, per channel x_scale * w_scale on axis 1)
     * then requantize into y (y_scale, y_zero_point) */
    int st;
    snprintf(path, sizeof path, "%s/q/qlinearconv_perchannel/model.onnx", d);
    cr_graph *g = onnx_load_graph(path, &st, err, sizeof err);
    CHECK_MSG(g != NULL, "%s", err);
    int ok = g->n_nodes == 2 && g->nodes[0].op == CRUCIBLE_OP_CONV2D &&
             g->nodes[0].n_inputs == 3 &&
             g->nodes[1].op == CRUCIBLE_OP_REQUANTIZE &&
             !strcmp(ir_attr_s(&g->nodes[1], "rounding", ""), "float_rne");
    if (ok) {
        const cr_tensor *x = &g->tensors[g->nodes[0].inputs[0]];
        const cr_tensor *w = &g->tensors[g->nodes[0].inputs[1]];
        const cr_tensor *acc = &g->tensors[g->nodes[0].outputs[0]];
        const cr_tensor *y = &g->tensors[g->nodes[1].outputs[0]];
        static const float ws[4] = {0.25f, 0.125f, 0.5f, 0.25f};
        static const int32_t wz[4] = {0, 3, -2, 0};
        ok = x->dtype == CRUCIBLE_DT_U8 && x->quant_count == 1 &&
             x->scales[0] == 0.5f && x->zero_points[0] == 120 &&
             w->dtype == CRUCIBLE_DT_I8 && w->quant_axis == 0 &&
             w->quant_count == 4 && acc->dtype == CRUCIBLE_DT_I32 &&
             acc->quant_axis == 1 && acc->quant_count == 4 &&
             y->dtype == CRUCIBLE_DT_U8 && y->quant_count == 1 &&
             y->scales[0] == 1.0f && y->zero_points[0] == 100;
        for (int c = 0; ok && c < 4; c++)
            ok = w->scales[c] == ws[c] && w->zero_points[c] == wz[c] &&
                 acc->scales[c] == 0.5f * ws[c] && acc->zero_points[c] == 0;
    }
    ir_free(g);
    CHECK_MSG(ok, "QLinearConv did not become conv2d + requantize with the "
                  "expected quantisation parameters");

    /* F: the quantize output carries (0.05, 128) and feeds the conv2d
     * directly; the MatMulInteger (zero point 100) reads it through a
     * reshape view */
    snprintf(path, sizeof path, "%s/q/qdq_chain/model.onnx", d);
    g = onnx_load_graph(path, &st, err, sizeof err);
    CHECK_MSG(g != NULL, "%s", err);
    int32_t q = ir_find_tensor(g, "q");
    int conv_direct = 0, view = 0;
    for (size_t i = 0; q >= 0 && i < g->n_nodes; i++) {
        const cr_node *n = &g->nodes[i];
        if (n->op == CRUCIBLE_OP_CONV2D && n->inputs[0] == q) conv_direct = 1;
        if (n->op == CRUCIBLE_OP_RESHAPE && n->inputs[0] == q) {
            const cr_tensor *v = &g->tensors[n->outputs[0]];
            view = v->quant_count == 1 && v->zero_points[0] == 100;
        }
    }
    ok = q >= 0 && g->tensors[q].quant_count == 1 &&
         g->tensors[q].scales[0] == 0.05f &&
         g->tensors[q].zero_points[0] == 128 && conv_direct && view;
    ir_free(g);
    CHECK_MSG(ok, "qdq_chain: unexpected quantisation parameters or views");

    /* the same cases through the CLI */
    rc = test_sh(&out, "'%s' conformance '%s/q'", BIN, d);
    CHECK_MSG(rc == 0 && test_contains(out, "6 passed, 0 failed"), "%s", out);
    free(out);

    /* run-time scales / zero points stay unsupported, with the reason */
    snprintf(path, sizeof path, "%s/test_qlinearconv/model.onnx",
             ONNX_NODE_TESTS);
    struct stat sb;
    if (!stat(path, &sb)) {
        g = onnx_load_graph(path, &st, err, sizeof err);
        CHECK_MSG(g != NULL, "%s", err);
        ok = g->n_nodes == 1 && g->nodes[0].op == CRUCIBLE_OP_UNSUPPORTED &&
             test_contains(ir_attr_s(&g->nodes[0], "reason", ""),
                           "x_scale (x_scale) is a run-time value, not a "
                           "constant");
        ir_free(g);
        CHECK_MSG(ok, "test_qlinearconv: expected an unsupported node naming "
                      "the run-time x_scale");
    }
    return TEST_PASS;
}

/* ---- fixtures from tests/data/onnx (gen.py) ------------------------------*/
TEST(test_onnx_fixtures_run)
{
    NEED_PLUGIN();
    case_result r;
    onnx_case_run(ONNX_TESTDATA "/ext_ok", 1, 1e-5, 1e-6, &r);
    CHECK_MSG(r.verdict == CASE_PASS, "ext_ok: %s", r.why);
    static const char *const cases[] = {"conv_bn", "legacy6", "ops11",
                                        "dense_paths"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", ONNX_TESTDATA, cases[i]);
        onnx_case_run(dir, 1, 1e-4, 1e-5, &r);
        CHECK_MSG(r.verdict == CASE_PASS, "%s: %s", cases[i], r.why);
    }
    /* the BatchNormalization is folded into the convolution */
    char err[512];
    int st;
    cr_graph *g = onnx_load_graph(ONNX_TESTDATA "/conv_bn/model.onnx", &st,
                                  err, sizeof err);
    CHECK_MSG(g != NULL, "%s", err);
    int ok = g->n_nodes == 2 && g->nodes[0].op == CRUCIBLE_OP_CONV2D &&
             g->nodes[0].n_inputs == 3 && g->nodes[1].op == CRUCIBLE_OP_RELU &&
             !strcmp(g->nodes[0].name, "conv");
    ir_free(g);
    CHECK_MSG(ok, "conv + batchnorm + relu did not become conv2d + relu");
    return TEST_PASS;
}

/* Each hostile or broken model: exit status 1 and a message that names
 * the problem, through the real CLI. */
TEST(test_onnx_cli_errors)
{
    NEED_PLUGIN();
    static const struct {
        const char *file, *cmd, *expect;
    } cases[] = {
        {"ext_traversal.onnx", "ir", "outside the model's directory"},
        {"ext_absolute.onnx", "ir", "is an absolute path"},
        {"neg_dims.onnx", "ir", "dimension 0 is negative (-4)"},
        {"opset99.onnx", "ir", "opset 99 is newer than supported (18)"},
        {"unsupported_op.onnx", "ir",
         "unsupported: node my_erf: op onnx:Erf: no lowering to the canonical "
         "op set (domain ai.onnx, opset 13)"},
        {"unsupported_op.onnx", "run", "op onnx:Erf is not supported"},
    };
    const char *d = test_tmpdir();
    char in[4096];
    snprintf(in, sizeof in, "%s/x.npy", d);
    cr_array x;
    memset(&x, 0, sizeof x);
    float zero[6] = {0};
    x.dtype = CRUCIBLE_DT_F32;
    x.rank = 2;
    x.dims[0] = 2;
    x.dims[1] = 3;
    x.data = zero;
    x.bytes = sizeof zero;
    char err[256];
    CHECK_MSG(tio_save(in, &x, err, sizeof err) == 0, "%s", err);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL;
        int rc;
        if (!strcmp(cases[i].cmd, "run"))
            rc = test_sh(&out, "'%s' run '%s/%s' --input '%s'", BIN,
                         ONNX_TESTDATA, cases[i].file, in);
        else
            rc = test_sh(&out, "'%s' ir '%s/%s' >/dev/null", BIN,
                         ONNX_TESTDATA, cases[i].file);
        CHECK_MSG(rc == 1 && test_contains(out, cases[i].expect),
                  "%s %s: exit %d, output:\n%s", cases[i].cmd, cases[i].file,
                  rc, out ? out : "");
        CHECK_MSG(!test_contains(out, "crashed") &&
                      !test_contains(out, "Sanitizer") &&
                      !test_contains(out, "runtime error"),
                  "%s: %s", cases[i].file, out);
        free(out);
    }
    return TEST_PASS;
}

/* An external data file that is a symlink out of the model's directory. */
TEST(test_onnx_external_symlink)
{
    NEED_PLUGIN();
    const char *d = test_tmpdir();
    char *out = NULL;
    int rc = test_sh(&out, "cp '%s/ext_ok/model.onnx' '%s/m.onnx' && "
                           "ln -s /etc/passwd '%s/weights.bin'",
                     ONNX_TESTDATA, d, d);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    rc = test_sh(&out, "'%s' ir '%s/m.onnx'", BIN, d);
    CHECK_MSG(rc == 1 && test_contains(out, "resolves outside the model's "
                                            "directory"),
              "exit %d: %s", rc, out);
    free(out);
    /* and an offset past the end of a real file */
    rc = test_sh(&out, "cp '%s/ext_ok/model.onnx' '%s/m.onnx' && rm -f "
                       "'%s/weights.bin' && printf 'short' > '%s/weights.bin' "
                       "&& '%s' ir '%s/m.onnx'",
                 ONNX_TESTDATA, d, d, d, BIN, d);
    CHECK_MSG(rc == 1 && test_contains(out, "past its end"), "exit %d: %s",
              rc, out);
    free(out);
    return TEST_PASS;
}

/* ---- malformed bytes ------------------------------------------------------*/
/* Runs a loaded graph on zero inputs when it is small (exercises the
 * interpreter on whatever the frontend accepted). */
static void try_run(const cr_graph *g)
{
    for (size_t i = 0; i < g->n_tensors; i++)
        if (ir_numel(&g->tensors[i]) > 200000 || g->tensors[i].rank < 0) return;
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

TEST(test_onnx_truncated)
{
    NEED_PLUGIN();
    const char *src = ONNX_MODELS "/mnist8_cntk/model.onnx";
    size_t n;
    uint8_t *buf = test_read_file(src, &n);
    if (!buf) SKIP("%s is absent", src);
    const char *d = test_tmpdir();
    char path[4096], err[1024];
    snprintf(path, sizeof path, "%s/cut.onnx", d);
    cr_host_set_verbosity(-2);
    int failures = 0;
    size_t cuts = 0;
    for (size_t cut = 0; cut < n; cut += cut < 96 ? 1 : 1 + n / 160) {
        if (test_write_file(path, buf, cut)) break;
        int st;
        cr_graph *g = onnx_load_graph(path, &st, err, sizeof err);
        if (g) {
            fprintf(stderr, "    cut at %zu of %zu loaded\n", cut, n);
            failures++;
            ir_free(g);
        }
        cuts++;
    }
    if (!test_write_file(path, buf, n - 1)) {
        int st;
        cr_graph *g = onnx_load_graph(path, &st, err, sizeof err);
        failures += g != NULL;
        ir_free(g);
    }
    cr_host_set_verbosity(0);
    CHECK_MSG(failures == 0, "%d truncated files loaded", failures);
    CHECK(cuts > 100);
    /* the CLI: a clear error and exit status 1 */
    test_write_file(path, buf, n / 2);
    free(buf);
    char *out = NULL;
    int rc = test_sh(&out, "'%s' ir '%s'", BIN, path);
    CHECK_MSG(rc == 1 && test_contains(out, "malformed protobuf"),
              "exit %d: %s", rc, out);
    free(out);
    rc = test_sh(&out, "printf '' > '%s/empty.onnx' && '%s' ir '%s/empty.onnx'",
                 d, BIN, d);
    CHECK_MSG(rc == 1 && test_contains(out, "no ir_version"), "exit %d: %s",
              rc, out);
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

TEST(test_onnx_byte_flips)
{
    NEED_PLUGIN();
    static const char *const models[] = {"atmega_mnist14", "mnist8_cntk",
                                         "tfl_hello_world_keras2onnx"};
    const char *d = test_tmpdir();
    char path[4096], err[1024];
    snprintf(path, sizeof path, "%s/flip.onnx", d);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    int loaded = 0, refused = 0;
    cr_host_set_verbosity(-2);
    for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) {
        char src[4096];
        snprintf(src, sizeof src, "%s/%s/model.onnx", ONNX_MODELS, models[m]);
        size_t n;
        uint8_t *orig = test_read_file(src, &n);
        if (!orig) {
            cr_host_set_verbosity(0);
            SKIP("%s is absent", src);
        }
        uint8_t *buf = malloc(n);
        CHECK(buf != NULL);
        for (int it = 0; it < 150; it++) {
            memcpy(buf, orig, n);
            int flips = 1 + (int)(xorshift(&seed) % 4);
            for (int f = 0; f < flips; f++) {
                size_t at = (size_t)(xorshift(&seed) % n);
                /* bias towards the structure at the front (the weights at
                 * the end are mostly harmless to flip) */
                if (xorshift(&seed) & 1) at %= n < 2048 ? n : 2048;
                buf[at] = (uint8_t)xorshift(&seed);
            }
            if (test_write_file(path, buf, n)) break;
            int st;
            cr_graph *g = onnx_load_graph(path, &st, err, sizeof err);
            if (g) {
                loaded++;
                try_run(g);
                ir_free(g);
            } else {
                refused++;
            }
        }
        free(buf);
        free(orig);
    }
    /* CR_ONNX_FUZZ=N: also N flipped variants of every node test model
     * (or of every case under CR_ONNX_FUZZ_DIR) */
    const char *fz = getenv("CR_ONNX_FUZZ");
    int extra = fz ? atoi(fz) : 0, expect = 450;
    const char *froot = getenv("CR_ONNX_FUZZ_DIR");
    if (!froot) froot = ONNX_NODE_TESTS;
    DIR *dir = extra > 0 ? opendir(froot) : NULL;
    struct dirent *e;
    while (dir && (e = readdir(dir))) {
        if (e->d_name[0] == '.') continue;
        char src[4096];
        snprintf(src, sizeof src, "%s/%s/model.onnx", froot, e->d_name);
        size_t n;
        uint8_t *orig = test_read_file(src, &n);
        if (!orig || !n) {
            free(orig);
            continue;
        }
        uint8_t *buf = malloc(n);
        for (int it = 0; buf && it < extra; it++) {
            memcpy(buf, orig, n);
            int flips = 1 + (int)(xorshift(&seed) % 3);
            for (int f = 0; f < flips; f++)
                buf[xorshift(&seed) % n] = (uint8_t)xorshift(&seed);
            if (test_write_file(path, buf, n)) break;
            int st;
            cr_graph *g = onnx_load_graph(path, &st, err, sizeof err);
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
    if (dir) closedir(dir);
    cr_host_set_verbosity(0);
    fprintf(stderr, "    byte flips: %d loaded, %d refused with an error\n",
            loaded, refused);
    CHECK(loaded + refused == expect);
    return TEST_PASS;
}

/* Graphs nested in attributes 200 deep: refused before protobuf-c's
 * recursive unpacker sees them. */
TEST(test_onnx_deep_nesting)
{
    NEED_PLUGIN();
    size_t cap = 1 << 16, len = 0;
    uint8_t *b = malloc(cap), *t = malloc(cap);
    CHECK(b && t);
    /* wraps b[0..len) as field `f` (length-delimited) of a new message */
    for (int lvl = 0; lvl < 200; lvl++) {
        static const uint8_t fields[3] = {6 << 3 | 2, 5 << 3 | 2, 1 << 3 | 2};
        for (int k = 0; k < 3; k++) {
            size_t o = 0;
            t[o++] = fields[k];
            size_t v = len;
            do {
                t[o++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
                v >>= 7;
            } while (v);
            CHECK(o + len < cap);
            memcpy(t + o, b, len);
            len += o;
            memcpy(b, t, len);
        }
    }
    /* ModelProto { ir_version: 7, graph: ... } */
    t[0] = 0x08;
    t[1] = 7;
    t[2] = 7 << 3 | 2;
    size_t o = 3, v = len;
    do {
        t[o++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    CHECK(o + len < cap);
    memcpy(t + o, b, len);
    const char *d = test_tmpdir();
    char path[4096], err[1024];
    snprintf(path, sizeof path, "%s/deep.onnx", d);
    CHECK(test_write_file(path, t, o + len) == 0);
    free(b);
    free(t);
    cr_host_set_verbosity(-2);
    int st;
    cr_graph *g = onnx_load_graph(path, &st, err, sizeof err);
    cr_host_set_verbosity(0);
    CHECK(g == NULL && st == CRUCIBLE_E_LIMIT);
    char *out = NULL;
    int rc = test_sh(&out, "'%s' ir '%s'", BIN, path);
    CHECK_MSG(rc == 1 && test_contains(out, "nested more than"), "exit %d: %s",
              rc, out);
    free(out);
    return TEST_PASS;
}
