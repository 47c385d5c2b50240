/* test_fpga.c - the fpga-verilog target: a hand-written int8 MLP compiled
 * to Verilog, bit-exact in Icarus and Verilator, and synthesised to an
 * iCE40 UP5K bitstream; parallelism checks and pre-flight refusals. Tests
 * needing iverilog / verilator / yosys / nextpnr-ice40 / icepack SKIP
 * visibly when they are missing. */
#include "runner.h"
#include "util.h"

#include <stdio.h>

#include <stdlib.h>
#include <string.h>

#define FV_BIN CR_BUILD_DIR "/bin/crucible"
#define FV_SO CR_BUILD_DIR "/lib/crucible/plugins/fpga-verilog.so"
#define FV_MODEL CR_SOURCE_DIR "/plugins/fpga-verilog/examples/int8-mlp.crir"

TEST(test_fpga_mlp_bitexact_bitstream)
{
    if (!cr_is_file(FV_SO)) SKIP("fpga-verilog plugin not built");
    const char *d = test_tmpdir();
    char *out = NULL;
    int rc = test_sh(&out, "'%s' compile '%s' --target fpga-verilog --board icebreaker "
                           "-o '%s/m.tptpkg' 2>&1", FV_BIN, FV_MODEL, d);
    if (rc != 0 && test_contains(out, "SKIPPED")) {
        fprintf(stderr, "%s\n", out);
        free(out);
        SKIP("FPGA tools missing (install iverilog verilator yosys nextpnr-ice40 fpga-icestorm)");
    }
    CHECK_MSG(rc == 0, "compile rc=%d: %s", rc, out);
    CHECK_MSG(test_contains(out, "PASS     fpga-verilog/simulate-icarus"), "%s", out);
    CHECK_MSG(test_contains(out, "PASS     fpga-verilog/simulate-verilator"), "%s", out);
    CHECK_MSG(test_contains(out, "PASS     fpga-verilog/lint"), "%s", out);
    CHECK_MSG(test_contains(out, "top.bin bitstream"), "%s", out);
    free(out);
    rc = test_sh(&out, "'%s' inspect '%s/m.tptpkg' 2>&1", FV_BIN, d);
    CHECK_MSG(rc == 0 && test_contains(out, "targets/fpga-verilog/bitstream/top.bin") &&
                  test_contains(out, "targets/fpga-verilog/rtl/core.v"),
              "inspect: %s", out);
    free(out);
    return TEST_PASS;
}

TEST(test_fpga_parallel_and_refusals)
{
    if (!cr_is_file(FV_SO)) SKIP("fpga-verilog plugin not built");
    const char *d = test_tmpdir();
    char *out = NULL;
    /* parallel 3 does not divide 8 outputs: refused in pre-flight */
    char cfg[4096];
    snprintf(cfg, sizeof cfg, "%s/p3.ini", d);
    FILE *f = fopen(cfg, "w");
    CHECK(f != NULL);
    fputs("[target.fpga-verilog]\nparallel = 3\n", f);
    fclose(f);
    int rc = test_sh(&out, "'%s' compile '%s' --target fpga-verilog --board icebreaker "
                           "--config '%s' --no-verify -o '%s/p.tptpkg' 2>&1",
                     FV_BIN, FV_MODEL, cfg, d);
    CHECK_MSG(rc != 0 && test_contains(out, "parallel = 3") &&
                  test_contains(out, "divide"), "rc=%d %s", rc, out);
    free(out);
    /* parallel 4: 8 lanes, the 4 DSPs the requantiser leaves go to fc1,
     * fc2's lanes are LUT multipliers (pre-flight says so) */
    f = fopen(cfg, "w");
    CHECK(f != NULL);
    fputs("[target.fpga-verilog]\nparallel = 4\nsynthesis = off\n", f);
    fclose(f);
    rc = test_sh(&out, "'%s' compile '%s' --target fpga-verilog --board icebreaker "
                       "--config '%s' -o '%s/p.tptpkg' 2>&1",
                 FV_BIN, FV_MODEL, cfg, d);
    if (rc != 0 && !test_contains(out, "PASS     fpga-verilog/simulate-icarus") &&
        test_contains(out, "SKIPPED  fpga-verilog/simulate")) {
        free(out);
        SKIP("FPGA simulators missing");
    }
    /* exit status 1: the host counts the skipped synthesis; the package
     * is written */
    CHECK_MSG(test_contains(out, "wrote ") &&
                  test_contains(out, "PASS     fpga-verilog/simulate-icarus") &&
                  test_contains(out, "PASS     fpga-verilog/simulate-verilator") &&
                  test_contains(out, "SKIPPED  fpga-verilog/synthesis"),
              "rc=%d %s", rc, out);
    free(out);
    rc = test_sh(&out, "'%s' extract '%s/p.tptpkg' '%s/px' 2>&1", FV_BIN, d, d);
    CHECK_MSG(rc == 0, "extract: %s", out);
    free(out);
    char path[4096];
    snprintf(path, sizeof path, "%s/px/targets/fpga-verilog/rtl/core.v", d);
    size_t len = 0;
    char *core = (char *)test_read_file(path, &len);
    CHECK_MSG(core && test_contains(core, "dense 16 -> 8, 4 MAC lane(s) (4 on DSPs)") &&
                  test_contains(core, "dense 8 -> 4, 4 MAC lane(s) (0 on DSPs)"),
              "%s: lanes beyond the DSPs must be LUT multipliers", path);
    free(core);
    /* per-layer parallelism: fc1 and fc2 with 2 lanes each, verified */
    f = fopen(cfg, "w");
    CHECK(f != NULL);
    fputs("[layer.fc1]\nparallel = 2\n[layer.fc2]\nparallel = 2\n", f);
    fclose(f);
    rc = test_sh(&out, "'%s' compile '%s' --target fpga-verilog --board icebreaker "
                       "--config '%s' -o '%s/p.tptpkg' 2>&1",
                 FV_BIN, FV_MODEL, cfg, d);
    if (rc != 0 && test_contains(out, "SKIPPED")) {
        free(out);
        SKIP("FPGA tools missing");
    }
    CHECK_MSG(rc == 0 && test_contains(out, "PASS     fpga-verilog/simulate-icarus"),
              "rc=%d %s", rc, out);
    free(out);
    /* a float graph is refused with the reason */
    rc = test_sh(&out, "'%s' compile '%s/docs/examples/tiny-mlp.crir' --target "
                       "fpga-verilog --board icebreaker --no-verify -o '%s/f.tptpkg' 2>&1",
                 FV_BIN, CR_SOURCE_DIR, d);
    CHECK_MSG(rc != 0 && test_contains(out, "i8"), "rc=%d %s", rc, out);
    free(out);
    return TEST_PASS;
}

/* Runs `crucible compile` on a model with a config; returns the exit status
 * and the output in *out. */
static int fv_compile_cfg(char **out, const char *model, const char *extra,
                          const char *cfg_text, const char *pkg)
{
    char cfg[4096];
    snprintf(cfg, sizeof cfg, "%s.ini", pkg);
    if (test_write(cfg, cfg_text)) return -1;
    return test_sh(out, "'%s' compile '%s' %s --target fpga-verilog --board "
                        "icebreaker --config '%s' -o '%s' 2>&1",
                   FV_BIN, model, extra, cfg, pkg);
}

/* The bundled digits CNN, quantised to int8: conv 3x3 pad 1 -> relu ->
 * max pool -> conv -> relu -> max pool -> flatten -> dense, bit-exact in
 * both simulators with the measured cycles equal to the estimate
 * (synthesis of a CNN is left to the main job). */
TEST(test_fpga_cnn_bitexact)
{
    if (!cr_is_file(FV_SO)) SKIP("fpga-verilog plugin not built");
    const char *d = test_tmpdir();
    char *out = NULL, pkg[4096], extra[4096];
    snprintf(pkg, sizeof pkg, "%s/cnn.tptpkg", d);
    snprintf(extra, sizeof extra, "--quant int8 --calib '%s/docs/examples/digits/"
             "test-x-cnn.npy' --calib-samples 100 --io int8 --samples 3", CR_SOURCE_DIR);
    char model[4096];
    snprintf(model, sizeof model, "%s/docs/examples/digits/cnn/model.onnx", CR_SOURCE_DIR);
    if (!cr_is_file(model)) SKIP("bundled CNN example missing");
    int rc = fv_compile_cfg(&out, model, extra,
                            "[target.fpga-verilog]\nsynthesis = off\n"
                            "[layer./3/Conv]\nparallel = 4\n", pkg);
    if (rc != 0 && test_contains(out, "SKIPPED  fpga-verilog/simulate")) {
        free(out);
        SKIP("FPGA simulators missing (iverilog, verilator)");
    }
    CHECK_MSG(test_contains(out, "wrote ") &&
                  test_contains(out, "PASS     fpga-verilog/lint") &&
                  test_contains(out, "PASS     fpga-verilog/simulate-icarus") &&
                  test_contains(out, "PASS     fpga-verilog/simulate-verilator") &&
                  test_contains(out, "3 sample(s) bit-exact"),
              "rc=%d %s", rc, out);
    /* the analytic estimate is exact */
    const char *p = strstr(out, "cycles per inference measured, ");
    CHECK_MSG(p != NULL, "%s", out);
    long meas = strtol(strstr(out, "bit-exact; ") + 11, NULL, 10);
    long est = strtol(p + strlen("cycles per inference measured, "), NULL, 10);
    CHECK_MSG(meas > 0 && meas == est, "measured %ld, estimated %ld", meas, est);
    free(out);
    return TEST_PASS;
}

/* Engine geometry: conv stride 2 with padding, depthwise conv with
 * asymmetric pads, 1x1 conv, max pool with padding, flatten, dense; lanes
 * that do not divide 8 and LUT multipliers; and the refusals: depthwise
 * lanes, avg_pool2d. */
TEST(test_fpga_conv_depthwise_pool)
{
    if (!cr_is_file(FV_SO)) SKIP("fpga-verilog plugin not built");
    const char *d = test_tmpdir();
    char *out = NULL, pkg[4096], extra[4096], model[4096];
    snprintf(model, sizeof model, "%s/plugins/fpga-verilog/examples/dwnet.onnx", CR_SOURCE_DIR);
    snprintf(extra, sizeof extra, "--quant int8 --calib '%s/plugins/fpga-verilog/"
             "examples/dwnet-calib.npy' --io int8 --samples 3", CR_SOURCE_DIR);
    snprintf(pkg, sizeof pkg, "%s/dw.tptpkg", d);
    int rc = fv_compile_cfg(&out, model, extra,
                            "[target.fpga-verilog]\nsynthesis = off\n"
                            "[layer.Conv_0]\nparallel = 3\n[layer.Conv_3]\nparallel = 4\n"
                            "[layer.Gemm_7]\nparallel = 5\n", pkg);
    if (rc != 0 && test_contains(out, "SKIPPED  fpga-verilog/simulate")) {
        free(out);
        SKIP("FPGA simulators missing (iverilog, verilator)");
    }
    CHECK_MSG(test_contains(out, "wrote ") &&
                  test_contains(out, "PASS     fpga-verilog/lint") &&
                  test_contains(out, "PASS     fpga-verilog/simulate-icarus") &&
                  test_contains(out, "PASS     fpga-verilog/simulate-verilator"),
              "rc=%d %s", rc, out);
    free(out);
    /* depthwise: the lanes of one engine share an input value, so parallel
     * must divide the channels per group (1) */
    snprintf(pkg, sizeof pkg, "%s/dw2.tptpkg", d);
    rc = fv_compile_cfg(&out, model, extra, "[layer.Conv_2]\nparallel = 2\n", pkg);
    CHECK_MSG(rc != 0 && test_contains(out, "Conv_2") &&
                  test_contains(out, "per group") && test_contains(out, "try parallel = 1") &&
                  !cr_is_file(pkg),
              "rc=%d %s", rc, out);
    free(out);
    /* avg_pool2d has no engine yet: a precise refusal in pre-flight */
    char q[4096], a[4096];
    snprintf(q, sizeof q, "%s/q.crir", d);
    snprintf(a, sizeof a, "%s/avg.crir", d);
    rc = test_sh(&out, "'%s' quant '%s' --calib '%s/plugins/fpga-verilog/examples/"
                       "dwnet-calib.npy' -o '%s' 2>&1 && sed 's/max_pool2d(/avg_pool2d(/' "
                       "'%s' > '%s'", FV_BIN, model, CR_SOURCE_DIR, q, q, a);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    snprintf(pkg, sizeof pkg, "%s/avg.tptpkg", d);
    rc = fv_compile_cfg(&out, a, "--io int8 --no-verify", "", pkg);
    CHECK_MSG(rc != 0 && test_contains(out, "avg_pool2d MaxPool_5") &&
                  test_contains(out, "not implemented") && !cr_is_file(pkg),
              "rc=%d %s", rc, out);
    free(out);
    return TEST_PASS;
}
