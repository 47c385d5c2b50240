/*
 * test_spice.c - the spice target plugin (plugins/spice): float MLPs
 * compiled into analog crossbar netlists and verified in ngspice through
 * `crucible compile`: the hand-written tiny MLP, the bundled digits MLP on
 * its real test split (ideal and E96 1 % components), tiled crossbars,
 * pre-flight refusals that name the node, board and config errors, and
 * ngspice missing (SKIPPED, exit 1) or failing (FAIL, no package).
 *
 * Tests that need ngspice SKIP when it is not installed (Debian package
 * ngspice, listed in tests/setup.sh).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runner.h"
#include "tensorio.h"
#include "util.h"

#define BIN CR_CRUCIBLE_BIN
#define SPICE_PLUGIN CR_BUILD_DIR "/lib/crucible/plugins/spice.so"
#define TINY CR_SOURCE_DIR "/docs/examples/tiny-mlp.crir"
#define DIGITS CR_SOURCE_DIR "/docs/examples/digits"

static int have_ngspice(void)
{
    return test_sh(NULL, "command -v ngspice >/dev/null 2>&1") == 0;
}

#define NEED_PLUGIN()                                                       \
    do {                                                                    \
        if (!cr_is_file(SPICE_PLUGIN)) SKIP("spice plugin not built");      \
    } while (0)

#define NEED_NGSPICE()                                                      \
    do {                                                                    \
        NEED_PLUGIN();                                                      \
        if (!have_ngspice())                                                \
            SKIP("ngspice not installed (apt-get install ngspice)");        \
    } while (0)

/* The number that follows "key": after the first occurrence of anchor. */
static int num_after(const char *s, const char *anchor, const char *key,
                     double *v)
{
    const char *a = s ? strstr(s, anchor) : NULL;
    if (!a) return -1;
    char k[128];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(a, k);
    if (!p) return -1;
    char *end;
    *v = strtod(p + strlen(k), &end);
    return end == p + strlen(k) ? -1 : 0;
}

static int file_has(const char *path, const char *needle)
{
    size_t len;
    char err[256];
    uint8_t *b = cr_read_file(path, &len, (size_t)64 << 20, err, sizeof err);
    if (!b) return 0;
    char *s = malloc(len + 1);
    int ok = 0;
    if (s) {
        memcpy(s, b, len);
        s[len] = 0;
        ok = strstr(s, needle) != NULL;
        free(s);
    }
    cr_free(b);
    return ok;
}

/* Writes rows [0, n) of the digits test split as one .npy per sample
 * (float32 [1, 64]) in dir and returns the --input argument list. */
static char *digits_inputs(const char *dir, int n)
{
    cr_array x;
    char err[512], path[1024];
    if (tio_load(DIGITS "/test-x-mlp.npy", &x, err, sizeof err)) {
        fprintf(stderr, "    %s\n", err);
        return NULL;
    }
    if (x.dtype != CRUCIBLE_DT_F32 || x.rank != 2 || x.dims[1] != 64 ||
        x.dims[0] < n) {
        tio_free(&x);
        return NULL;
    }
    size_t cap = (size_t)n * 1100 + 1, len = 0;
    char *args = malloc(cap);
    for (int i = 0; args && i < n; i++) {
        cr_array a;
        memset(&a, 0, sizeof a);
        a.dtype = CRUCIBLE_DT_F32;
        a.rank = 2;
        a.dims[0] = 1;
        a.dims[1] = 64;
        a.data = (char *)x.data + (size_t)i * 64 * 4;
        a.bytes = 64 * 4;
        snprintf(path, sizeof path, "%s/s%03d.npy", dir, i);
        if (tio_save(path, &a, err, sizeof err)) {
            fprintf(stderr, "    %s\n", err);
            free(args);
            args = NULL;
            break;
        }
        len += (size_t)snprintf(args + len, cap - len, " '%s'", path);
    }
    tio_free(&x);
    return args;
}

/* The tiny hand-written MLP (4 -> 8 relu -> 3 softmax) on random inputs:
 * verification passes, the package holds readable netlists, and the
 * stand-alone operating-point deck runs in ngspice. */
TEST(test_spice_tiny_mlp)
{
    NEED_NGSPICE();
    char d[600], p[1024];
    snprintf(d, sizeof d, "%s", test_tmpdir());
    char *out = NULL;
    int rc = test_sh(&out, "'%s' compile '%s' --target spice --samples 16 "
                           "-o '%s/t.tptpkg'", BIN, TINY, d);
    CHECK_MSG(rc == 0 && test_contains(out, "PASS     spice/simulate-ideal") &&
                  test_contains(out, "top-1 agreement 16/16"),
              "rc=%d %s", rc, out);
    CHECK_MSG(test_contains(out, "softmax is computed digitally after the ADC"),
              "%s", out);
    free(out);
    rc = test_sh(&out, "'%s' extract '%s/t.tptpkg' '%s/x'", BIN, d, d);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    snprintf(p, sizeof p, "%s/x/targets/spice/layer1_fc1.cir", d);
    CHECK(file_has(p, ".subckt LAYER1 in_0 in_1 in_2 in_3 vref out_0"));
    CHECK(file_has(p, "R_L1_r0_c0p in_0 col_0p"));
    CHECK(file_has(p, "R_L1_rb_c0n vref col_0n"));
    CHECK(file_has(p, "B_L1_relu_c0 out_0 0 V = max(-V(d_0), 0)"));
    snprintf(p, sizeof p, "%s/x/targets/spice/model.cir", d);
    CHECK(file_has(p, ".subckt MODEL") && file_has(p, ".include layer2_fc2.cir"));
    snprintf(p, sizeof p, "%s/x/targets/spice/verify_ideal.cir", d);
    CHECK(file_has(p, "dc V_SEL 0 15 1") && file_has(p, "wrdata results_ideal.txt"));
    snprintf(p, sizeof p, "%s/x/targets/spice/report.json", d);
    CHECK(file_has(p, "\"top1_agreement\":1") && file_has(p, "digital, after the ADC") &&
          file_has(p, "\"verdict\":\"pass\""));
    snprintf(p, sizeof p, "%s/x/targets/spice/ngspice_ideal.log", d);
    CHECK(file_has(p, "ngspice"));
    rc = test_sh(&out, "cd '%s/x/targets/spice' && ngspice -b op.cir", d);
    CHECK_MSG(rc == 0 && test_contains(out, "v(out_2) ="), "%s", out);
    free(out);
    return TEST_PASS;
}

/* The bundled digits MLP on 100 rows of its real test split: top-1
 * agreement with the float reference >= 99 % with ideal components. */
TEST(test_spice_digits_ideal)
{
    NEED_NGSPICE();
    char d[600], p[1024];
    snprintf(d, sizeof d, "%s", test_tmpdir());
    char *inputs = digits_inputs(d, 100);
    CHECK(inputs != NULL);
    snprintf(p, sizeof p, "%s/digits.ini", d);
    CHECK(test_write(p, "[target.spice]\ninput.min = 0\ninput.max = 1\n") == 0);
    char *out = NULL;
    int rc = test_sh(&out, "'%s' --json compile '%s/mlp/model.onnx' --target "
                           "spice --config '%s' -o '%s/d.tptpkg' --input%s",
                     BIN, DIGITS, p, d, inputs);
    free(inputs);
    double top1 = -1, samples = -1, err_fs = -1;
    num_after(out, "\"step\":\"simulate-ideal\"", "top1_agreement", &top1);
    num_after(out, "\"step\":\"simulate-ideal\"", "samples", &samples);
    num_after(out, "\"step\":\"simulate-ideal\"", "err_fs", &err_fs);
    fprintf(stderr, "    digits MLP, ideal: top-1 agreement %.4f on %.0f "
                    "samples, max error %.3g of full scale\n", top1, samples,
            err_fs);
    CHECK_MSG(rc == 0 && samples == 100 && top1 >= 0.99 && err_fs <= 0.01,
              "rc=%d %s", rc, out);
    free(out);
    return TEST_PASS;
}

/* The same with the E96 1 % board: the ideal-components run and the
 * real-components run (tolerances, offsets, diodes) both pass, >= 97 %. */
TEST(test_spice_digits_real)
{
    NEED_NGSPICE();
    char d[600], p[1024];
    snprintf(d, sizeof d, "%s", test_tmpdir());
    char *inputs = digits_inputs(d, 100);
    CHECK(inputs != NULL);
    snprintf(p, sizeof p, "%s/digits.ini", d);
    CHECK(test_write(p, "[target.spice]\ninput.min = 0\ninput.max = 1\n") == 0);
    char *out = NULL;
    int rc = test_sh(&out, "'%s' --json compile '%s/mlp/model.onnx' --target "
                           "spice --board e96-1pct --config '%s' -o "
                           "'%s/d.tptpkg' --input%s",
                     BIN, DIGITS, p, d, inputs);
    free(inputs);
    double ideal = -1, real = -1;
    num_after(out, "\"step\":\"simulate-ideal\"", "top1_agreement", &ideal);
    num_after(out, "\"step\":\"simulate-real\"", "top1_agreement", &real);
    fprintf(stderr, "    digits MLP, e96-1pct: top-1 agreement ideal %.4f, "
                    "real %.4f\n", ideal, real);
    CHECK_MSG(rc == 0 && ideal >= 0.99 && real >= 0.97, "rc=%d %s", rc, out);
    CHECK(test_contains(out, "PASS     spice/simulate-real"));
    free(out);
    rc = test_sh(&out, "'%s' extract '%s/d.tptpkg' '%s/x'", BIN, d, d);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    snprintf(p, sizeof p, "%s/x/targets/spice/layer1_0_Gemm.cir", d);
    CHECK(file_has(p, "D_L1_d1_c0 rn_0 ro_0 DRECT"));
    CHECK(file_has(p, "tc1="));
    snprintf(p, sizeof p, "%s/x/targets/spice/lib.cir", d);
    CHECK(file_has(p, ".model DRECT D(") && file_has(p, ".subckt OPAMP inp inn out vos=0"));
    snprintf(p, sizeof p, "%s/x/targets/spice/ideal_model.cir", d);
    CHECK(file_has(p, ".include ideal_lib.cir"));
    return TEST_PASS;
}

/* The drift analysis at compile time (E96 1 % board, 10 samples, 2
 * Monte Carlo trials): tables, plots, parametric netlists and the
 * predictor in the package; `crucible drift` answers from the predictor,
 * its --verify run in ngspice agrees within 5 % of the drift on a
 * condition it was not trained on, and bad requests are refused. */
TEST(test_spice_drift)
{
    NEED_NGSPICE();
    char d[600], p[1024];
    snprintf(d, sizeof d, "%s", test_tmpdir());
    char *inputs = digits_inputs(d, 12);
    CHECK(inputs != NULL);
    snprintf(p, sizeof p, "%s/digits.ini", d);
    CHECK(test_write(p, "[target.spice]\ninput.min = 0\ninput.max = 1\n"
                        "drift.samples = 10\ndrift.seeds = 2\n") == 0);
    char *out = NULL;
    int rc = test_sh(&out, "'%s' compile '%s/mlp/model.onnx' --target spice "
                           "--board e96-1pct --config '%s' -o '%s/d.tptpkg' "
                           "--input%s && '%s' extract '%s/d.tptpkg' '%s/x'",
                     BIN, DIGITS, p, d, inputs, BIN, d, d);
    free(inputs);
    CHECK_MSG(rc == 0 && test_contains(out, "PASS     spice/drift-analysis") &&
                  test_contains(out, "on 10 samples x 2 trials") &&
                  test_contains(out, "PASS     spice/power"),
              "rc=%d %s", rc, out);
    free(out);
    snprintf(p, sizeof p, "%s/x/targets/spice/report.txt", d);
    CHECK(file_has(p, "drift analysis in ngspice: 10 samples, 2 trials"));
    CHECK(file_has(p, "temperature  125 degC"));
    CHECK(file_has(p, "age          10 years"));
    CHECK(file_has(p, "tolerance    tolerance 5%"));
    /* power from operating points, settling from a transient run */
    CHECK(file_has(p, "power (ngspice operating points"));
    CHECK(file_has(p, "settling (transient, settle.cir: a step to sample 0)"));
    snprintf(p, sizeof p, "%s/x/targets/spice/report.json", d);
    CHECK(file_has(p, "\"drift\":{\"samples\":10,\"trials\":2"));
    static const char *const svgs[] = {"drift_temperature.svg", "drift_age.svg",
                                       "drift_tolerance.svg"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/x/targets/spice/%s", d, svgs[i]);
        CHECK_MSG(file_has(p, "<svg xmlns") && file_has(p, "<polyline"), "%s", p);
    }
    snprintf(p, sizeof p, "%s/x/targets/spice/drift_s2_layer1_0_Gemm.cir", d);
    CHECK(file_has(p, "*(1+ptol*(") && file_has(p, "*(1+page*"));
    snprintf(p, sizeof p, "%s/x/targets/spice/predictor.json", d);
    CHECK(file_has(p, "\"format\":\"crucible-drift-predictor\""));

    /* the nominal condition: no drift by construction */
    rc = test_sh(&out, "'%s' drift '%s/d.tptpkg' --json", BIN, d);
    double v = -1;
    CHECK_MSG(rc == 0 && num_after(out, "\"predicted\"", "drift_max", &v) == 0 &&
                  v == 0, "rc=%d %s", rc, out);
    free(out);
    /* a held-out condition, checked in ngspice */
    rc = test_sh(&out, "'%s' drift '%s/d.tptpkg' --temp 60 --age 1000h "
                       "--tolerance 2%% --seed 2 --verify --json", BIN, d);
    double ratio = -1, ng_drift = -1, top1 = -1, speed = -1;
    num_after(out, "\"predictor_error\"", "of_ngspice_drift_rms", &ratio);
    num_after(out, "\"ngspice\"", "drift_rms", &ng_drift);
    num_after(out, "\"ngspice\"", "top1_agreement", &top1);
    num_after(out, "\"predictor_error\"", "speedup", &speed);
    fprintf(stderr, "    drift at 60 degC, 1000 h, 2 %%: ngspice rms drift %.4g, "
                    "predictor error %.2f%% of it, %.3gx faster, top-1 %.2f\n",
            ng_drift, 100 * ratio, speed, top1);
    CHECK_MSG(rc == 0 && ng_drift > 0.01 && ratio >= 0 && ratio <= 0.05 &&
                  top1 >= 0.9 && speed > 100, "rc=%d %s", rc, out);
    free(out);
    /* human output names the figures */
    rc = test_sh(&out, "'%s' drift '%s/d.tptpkg' --temp 85 --age 10y", BIN, d);
    CHECK_MSG(rc == 0 && test_contains(out, "predictor (no SPICE") &&
                  test_contains(out, "top-1 agreement with the float reference"),
              "rc=%d %s", rc, out);
    free(out);
    /* refusals */
    rc = test_sh(&out, "'%s' drift '%s/d.tptpkg' --seed 7", BIN, d);
    CHECK_MSG(rc == 1 && test_contains(out, "trained on seeds 1, 2, not 7"),
              "rc=%d %s", rc, out);
    free(out);
    rc = test_sh(&out, "'%s' drift '%s/d.tptpkg' --age 5", BIN, d);
    CHECK_MSG(rc == 2 && test_contains(out, "--age needs a duration"), "rc=%d %s",
              rc, out);
    free(out);
    rc = test_sh(&out, "'%s' drift '%s/d.tptpkg' --tolerance 40%%", BIN, d);
    CHECK_MSG(rc == 2, "rc=%d %s", rc, out);
    free(out);
    /* --max-error can fail: an impossible limit */
    rc = test_sh(&out, "'%s' drift '%s/d.tptpkg' --temp 60 --verify "
                       "--max-error 0.00001%%", BIN, d);
    CHECK_MSG(rc == 1 && test_contains(out, "FAIL: the predictor's rms error"),
              "rc=%d %s", rc, out);
    free(out);
    /* --verify without ngspice: the check cannot run, exit 1 */
    rc = test_sh(&out, "PATH='%s/empty' '%s' drift '%s/d.tptpkg' --verify", d,
                 BIN, d);
    CHECK_MSG(rc == 1 && test_contains(out, "SKIPPED") &&
                  test_contains(out, "ngspice"), "rc=%d %s", rc, out);
    free(out);
    /* a package without a predictor */
    snprintf(p, sizeof p, "%s/nodrift.ini", d);
    CHECK(test_write(p, "[target.spice]\ndrift.samples = 0\n") == 0);
    rc = test_sh(&out, "'%s' compile '%s' --target spice --config '%s' --samples "
                       "4 -o '%s/t.tptpkg' && '%s' drift '%s/t.tptpkg'",
                 BIN, TINY, p, d, BIN, d);
    CHECK_MSG(rc == 1 && test_contains(out, "has no targets/spice/predictor.json"),
              "rc=%d %s", rc, out);
    free(out);
    return TEST_PASS;
}

/* PCM crossbar devices (board pcm: aihwkit's PCM model): verification
 * with programming noise passes, the drift netlists carry the PCM drift
 * law, and the predictor follows ngspice on an age it was not trained on. */
TEST(test_spice_pcm)
{
    NEED_NGSPICE();
    char d[600], p[1024];
    snprintf(d, sizeof d, "%s", test_tmpdir());
    char *inputs = digits_inputs(d, 8);
    CHECK(inputs != NULL);
    snprintf(p, sizeof p, "%s/digits.ini", d);
    CHECK(test_write(p, "[target.spice]\ninput.min = 0\ninput.max = 1\n"
                        "drift.samples = 6\ndrift.seeds = 1\n") == 0);
    char *out = NULL;
    int rc = test_sh(&out, "'%s' compile '%s/mlp/model.onnx' --target spice "
                           "--board pcm --config '%s' -o '%s/p.tptpkg' "
                           "--input%s && '%s' extract '%s/p.tptpkg' '%s/x'",
                     BIN, DIGITS, p, d, inputs, BIN, d, d);
    free(inputs);
    CHECK_MSG(rc == 0 && test_contains(out, "PASS     spice/simulate-real") &&
                  test_contains(out, "PASS     spice/drift-analysis"),
              "rc=%d %s", rc, out);
    free(out);
    snprintf(p, sizeof p, "%s/x/targets/spice/report.txt", d);
    CHECK(file_has(p, "crossbar: PCM devices (g_max 25 uS"));
    CHECK(file_has(p, "programming noise x2"));
    CHECK(file_has(p, "age          10 years"));
    snprintf(p, sizeof p, "%s/x/targets/spice/drift_s1_layer1_0_Gemm.cir", d);
    CHECK(file_has(p, "{exp(page*"));
    rc = test_sh(&out, "'%s' drift '%s/p.tptpkg' --age 3y --verify --json", BIN, d);
    double ratio = -1, ng_drift = -1;
    num_after(out, "\"predictor_error\"", "of_ngspice_drift_rms", &ratio);
    num_after(out, "\"ngspice\"", "drift_rms", &ng_drift);
    fprintf(stderr, "    PCM, 3 years: ngspice rms drift %.4g, predictor error "
                    "%.2f%% of it\n", ng_drift, 100 * ratio);
    CHECK_MSG(rc == 0 && ng_drift > 1 && ratio >= 0 && ratio <= 0.05, "rc=%d %s",
              rc, out);
    free(out);
    return TEST_PASS;
}

/* The bundled digits CNN: conv2d unrolled onto crossbars (a column pair
 * per output position), relu rectifiers, max-pool as behavioural max
 * sources, dense; 2 rows of the real test split agree with the float
 * reference in ngspice. */
TEST(test_spice_cnn)
{
    NEED_NGSPICE();
    char d[600], p[1024], path[1024], err[512];
    snprintf(d, sizeof d, "%s", test_tmpdir());
    cr_array x;
    CHECK(tio_load(DIGITS "/test-x-cnn.npy", &x, err, sizeof err) == 0);
    CHECK(x.dtype == CRUCIBLE_DT_F32 && x.rank == 4 && x.dims[0] >= 2);
    char args[4096];
    size_t len = 0;
    for (int i = 0; i < 2; i++) {
        cr_array a;
        memset(&a, 0, sizeof a);
        a.dtype = CRUCIBLE_DT_F32;
        a.rank = 4;
        a.dims[0] = 1, a.dims[1] = 1, a.dims[2] = 8, a.dims[3] = 8;
        a.data = (char *)x.data + (size_t)i * 64 * 4;
        a.bytes = 64 * 4;
        snprintf(path, sizeof path, "%s/c%d.npy", d, i);
        CHECK(tio_save(path, &a, err, sizeof err) == 0);
        len += (size_t)snprintf(args + len, sizeof args - len, " '%s'", path);
    }
    tio_free(&x);
    snprintf(p, sizeof p, "%s/cnn.ini", d);
    CHECK(test_write(p, "[target.spice]\ninput.min = 0\ninput.max = 1\n"
                        "drift.samples = 0\n") == 0);
    char *out = NULL;
    int rc = test_sh(&out, "'%s' --json compile '%s/cnn/model.onnx' --target "
                           "spice --config '%s' -o '%s/c.tptpkg' --input%s",
                     BIN, DIGITS, p, d, args);
    double top1 = -1, err_fs = -1;
    num_after(out, "\"step\":\"simulate-ideal\"", "top1_agreement", &top1);
    num_after(out, "\"step\":\"simulate-ideal\"", "err_fs", &err_fs);
    fprintf(stderr, "    digits CNN, ideal: top-1 agreement %.4f on 2 samples, "
                    "max error %.3g of full scale\n", top1, err_fs);
    CHECK_MSG(rc == 0 && top1 >= 0.99 && err_fs >= 0 && err_fs <= 0.01,
              "rc=%d %s", rc, out);
    CHECK(test_contains(out, "unrolled (im2col"));
    free(out);
    rc = test_sh(&out, "'%s' extract '%s/c.tptpkg' '%s/x'", BIN, d, d);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    snprintf(p, sizeof p, "%s/x/targets/spice/model.cir", d);
    CHECK(file_has(p, "B_P1_0 p1_0 0 V = max("));
    CHECK(file_has(p, "X_L2 p1_0"));
    return TEST_PASS;
}

/* A layer split over several row tiles: partial sums meet in the
 * summing difference stage. */
TEST(test_spice_tiled)
{
    NEED_NGSPICE();
    char d[600], p[1024];
    snprintf(d, sizeof d, "%s", test_tmpdir());
    snprintf(p, sizeof p, "%s/tiles.ini", d);
    CHECK(test_write(p, "[target.spice]\ncrossbar.rows = 3\ncrossbar.cols = 4\n") == 0);
    char *out = NULL;
    int rc = test_sh(&out, "'%s' compile '%s' --target spice --config '%s' "
                           "--samples 8 -o '%s/t.tptpkg' && '%s' extract "
                           "'%s/t.tptpkg' '%s/x'", BIN, TINY, p, d, BIN, d, d);
    CHECK_MSG(rc == 0 && test_contains(out, "PASS     spice/simulate-ideal"),
              "rc=%d %s", rc, out);
    free(out);
    snprintf(p, sizeof p, "%s/x/targets/spice/layer1_fc1.cir", d);
    CHECK(file_has(p, "2 x 4 tile(s) of 3 x 4"));
    CHECK(file_has(p, "R_L1_f_t1_c0p col_t1_0p tia_t1_0p"));
    CHECK(file_has(p, "R_L1_a_t1_c0n tia_t1_0n"));
    return TEST_PASS;
}

/* Pre-flight refusals name the node, the op and the reason; nothing is
 * compiled and no package is written. */
TEST(test_spice_refusals)
{
    NEED_PLUGIN();
    char d[600], p[1024], q[1024];
    snprintf(d, sizeof d, "%s", test_tmpdir());
    struct stat st;
    char *out = NULL;
    /* an unsupported op */
    snprintf(p, sizeof p, "%s/sig.crir", d);
    CHECK(test_write(p,
        "crucible-ir 1\ngraph sig\n"
        "tensor x : f32[1, 2]\ntensor w : f32[2, 2] = [1, 2, 3, 4]\n"
        "tensor h : f32[1, 2]\ntensor y : f32[1, 2]\n"
        "node fc : dense(x, w) -> (h)\nnode act : sigmoid(h) -> (y)\n"
        "inputs (x)\noutputs (y)\n") == 0);
    int rc = test_sh(&out, "'%s' compile '%s' --target spice -o '%s/s.tptpkg'",
                     BIN, p, d);
    CHECK_MSG(rc == 1 && test_contains(out, "cannot build node act (op sigmoid)") &&
                  test_contains(out, "op sigmoid is not supported by spice"),
              "rc=%d %s", rc, out);
    free(out);
    snprintf(q, sizeof q, "%s/s.tptpkg", d);
    CHECK(stat(q, &st) != 0);
    /* relu straight on the graph input: no layer to put the rectifier on */
    snprintf(p, sizeof p, "%s/relu.crir", d);
    CHECK(test_write(p,
        "crucible-ir 1\ngraph r\n"
        "tensor x : f32[1, 2]\ntensor a : f32[1, 2]\n"
        "tensor w : f32[2, 2] = [1, 2, 3, 4]\ntensor y : f32[1, 2]\n"
        "node r0 : relu(x) -> (a)\nnode fc : dense(a, w) -> (y)\n"
        "inputs (x)\noutputs (y)\n") == 0);
    rc = test_sh(&out, "'%s' compile '%s' --target spice -o '%s/s.tptpkg'",
                 BIN, p, d);
    CHECK_MSG(rc == 1 && test_contains(out, "cannot build node r0 (op relu)") &&
                  test_contains(out, "relu on the graph input"),
              "rc=%d %s", rc, out);
    free(out);
    /* a layer above the size limit, with the numbers; force allows it */
    snprintf(p, sizeof p, "%s/limit.ini", d);
    CHECK(test_write(p, "[target.spice]\nlimits.max_devices = 50\n") == 0);
    rc = test_sh(&out, "'%s' compile '%s' --target spice --config '%s' -o "
                       "'%s/s.tptpkg'", BIN, TINY, p, d);
    CHECK_MSG(rc == 1 && test_contains(out, "cannot build node fc1 (op dense)") &&
                  test_contains(out, "needs 80 crossbar devices (5 x 16, 1 x "
                                     "1 tiles of 128 x 128), limit 50") &&
                  test_contains(out, "set limits.force = true"),
              "rc=%d %s", rc, out);
    free(out);
    CHECK(stat(q, &st) != 0);
    snprintf(p, sizeof p, "%s/force.ini", d);
    CHECK(test_write(p, "[target.spice]\nlimits.max_devices = 50\n"
                        "limits.force = true\n") == 0);
    rc = test_sh(&out, "'%s' compile '%s' --target spice --config '%s' "
                       "--no-verify -o '%s/s.tptpkg'", BIN, TINY, p, d);
    CHECK_MSG(rc == 0, "rc=%d %s", rc, out);
    free(out);
    return TEST_PASS;
}

/* accept_board and the parameters: required fields and bad values are
 * named; nothing is compiled. */
TEST(test_spice_bad_board)
{
    NEED_PLUGIN();
    char d[600], p[1024];
    snprintf(d, sizeof d, "%s", test_tmpdir());
    static const struct {
        const char *ini, *expect;
    } cases[] = {
        {"[board]\nname = b\ntarget = spice\narch = fpga\n", "needs arch = analog"},
        {"[board]\nname = b\ntarget = spice\narch = analog\n[resistor]\n"
         "series = exact\nr_max = 1G\n[opamp]\nmodel = ideal\n[relu]\nmodel = ideal\n",
         "[resistor] r_min is required"},
        {"[board]\nname = b\ntarget = spice\narch = analog\n[resistor]\n"
         "series = E96\ntolerance = 1%\nr_min = 10k\nr_max = 1Meg\n[opamp]\n"
         "model = macro\ngain = 1e5\nswing_v = 13\noffset_v = 1m\n[relu]\n"
         "model = ideal\n",
         "[opamp] gbw_hz is required for model = macro"},
        {"[board]\nname = b\ntarget = spice\narch = analog\n[resistor]\n"
         "series = exact\nr_min = 10k\nr_max = lots\n[opamp]\nmodel = ideal\n"
         "[relu]\nmodel = ideal\n",
         "[resistor] r_max = 'lots' is not a number"},
        {"[board]\nname = b\ntarget = spice\narch = analog\n[resistor]\n"
         "series = E97\nr_min = 10k\nr_max = 1Meg\n[opamp]\nmodel = ideal\n"
         "[relu]\nmodel = ideal\n",
         "[resistor] series = 'E97' must be one of: exact, e6"},
        {"[board]\nname = b\ntarget = spice\narch = analog\n[resistor]\n"
         "series = exact\nr_min = 10k\nr_max = 1Meg\n[opamp]\nmodel = ideal\n"
         "[relu]\nmodel = ideal\n[ageing]\ndrift_ref = 0.25%\nt_ref_h = 1000\n"
         "spread = 0.5\n",
         "[ageing] exponent is required with [ageing] drift_ref"},
        {"[board]\nname = b\ntarget = spice\narch = analog\n[resistor]\n"
         "series = exact\nr_min = 10k\nr_max = 1Meg\n[opamp]\nmodel = ideal\n"
         "[relu]\nmodel = ideal\n[device]\ntechnology = pcm\ng_max = 25u\n"
         "g_min = 0.1u\nprog_c0 = 0.26u\n",
         "[device] prog_c1 is required with technology = pcm"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(p, sizeof p, "%s/b%zu.ini", d, i);
        CHECK(test_write(p, cases[i].ini) == 0);
        char *out = NULL;
        int rc = test_sh(&out, "'%s' compile '%s' --target spice --board '%s' "
                               "-o '%s/b.tptpkg'", BIN, TINY, p, d);
        CHECK_MSG(rc == 1 && test_contains(out, "refuses board") &&
                      test_contains(out, cases[i].expect),
                  "case %zu: rc=%d %s", i, rc, out);
        free(out);
    }
    /* a bad value in the project config: pre-flight names it */
    snprintf(p, sizeof p, "%s/cfg.ini", d);
    CHECK(test_write(p, "[target.spice]\nadc.bits = 99\n") == 0);
    char *out = NULL;
    int rc = test_sh(&out, "'%s' compile '%s' --target spice --config '%s' "
                           "-o '%s/b.tptpkg'", BIN, TINY, p, d);
    CHECK_MSG(rc == 1 && test_contains(out, "config [target.spice] adc.bits = 99 "
                                            "is outside 1..32"),
              "rc=%d %s", rc, out);
    free(out);
    return TEST_PASS;
}

/* ngspice missing (PATH without it): the simulation steps are SKIPPED
 * with the Debian package named, and the exit status is 1. */
TEST(test_spice_ngspice_missing)
{
    NEED_PLUGIN();
    char d[600];
    snprintf(d, sizeof d, "%s", test_tmpdir());
    char *out = NULL;
    int rc = test_sh(&out, "PATH='%s/empty' '%s' compile '%s' --target spice "
                           "--board e96-1pct -o '%s/m.tptpkg'", d, BIN, TINY, d);
    CHECK_MSG(rc == 1 && test_contains(out, "SKIPPED  spice/simulate-ideal") &&
                  test_contains(out, "SKIPPED  spice/simulate-real") &&
                  test_contains(out, "ngspice not found (install ngspice)") &&
                  !test_contains(out, "PASS "),
              "rc=%d %s", rc, out);
    free(out);
    return TEST_PASS;
}

/* ngspice failing: its error is shown, the step FAILs, no package. */
TEST(test_spice_ngspice_fails)
{
    NEED_PLUGIN();
    char d[600], p[1024];
    snprintf(d, sizeof d, "%s", test_tmpdir());
    snprintf(p, sizeof p, "%s/bin/ngspice", d);
    CHECK(test_sh(NULL, "mkdir -p '%s/bin'", d) == 0);
    CHECK(test_write(p, "#!/bin/sh\necho 'Error: too many nodes (fake "
                        "ngspice)' >&2\nexit 1\n") == 0);
    CHECK(test_sh(NULL, "chmod +x '%s'", p) == 0);
    char *out = NULL;
    int rc = test_sh(&out, "PATH='%s/bin':/usr/bin:/bin '%s' compile '%s' "
                           "--target spice -o '%s/m.tptpkg'", d, BIN, TINY, d);
    CHECK_MSG(rc == 1 && test_contains(out, "FAIL     spice/simulate-ideal") &&
                  test_contains(out, "Error: too many nodes (fake ngspice)") &&
                  test_contains(out, "no package was written"),
              "rc=%d %s", rc, out);
    free(out);
    snprintf(p, sizeof p, "%s/m.tptpkg", d);
    struct stat st;
    CHECK(stat(p, &st) != 0);
    return TEST_PASS;
}
