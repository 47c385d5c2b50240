/* test_fpga.c - the fpga-verilog target: a hand-written int8 MLP compiled
 * to Verilog, bit-exact in Icarus and Verilator, and synthesised to an
 * iCE40 UP5K bitstream; parallelism checks and pre-flight refusals. Tests
 * needing iverilog / verilator / yosys / nextpnr-ice40 / icepack SKIP
 * visibly when they are missing. */
#include "runner.h"
#include "util.h"

#include <crucible/kernels.h>
#include <stdint.h>
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
    fputs("[layer.fc1]\nparallel = 2\n[layer.fc2]\nparallel = 2\n"
          "[target.fpga-verilog]\nsynthesis = off\n", f);
    fclose(f);
    rc = test_sh(&out, "'%s' compile '%s' --target fpga-verilog --board icebreaker "
                       "--config '%s' -o '%s/p.tptpkg' 2>&1",
                 FV_BIN, FV_MODEL, cfg, d);
    if (rc != 0 && test_contains(out, "SKIPPED  fpga-verilog/simulate")) {
        free(out);
        SKIP("FPGA tools missing");
    }
    CHECK_MSG(test_contains(out, "wrote ") &&
                  test_contains(out, "PASS     fpga-verilog/simulate-icarus") &&
                  test_contains(out, "PASS     fpga-verilog/simulate-verilator"),
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
 * that do not divide 8 and LUT multipliers; the refusal of depthwise
 * lanes; average pooling. */
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
    /* average pooling with padding not counted (the divisor changes at
     * the borders): bit-exact, cycles as estimated */
    snprintf(model, sizeof model, "%s/plugins/fpga-verilog/examples/dwnet-avg.onnx",
             CR_SOURCE_DIR);
    snprintf(pkg, sizeof pkg, "%s/avg.tptpkg", d);
    rc = fv_compile_cfg(&out, model, extra, "[target.fpga-verilog]\nsynthesis = off\n", pkg);
    CHECK_MSG(test_contains(out, "wrote ") &&
                  test_contains(out, "PASS     fpga-verilog/lint") &&
                  test_contains(out, "PASS     fpga-verilog/simulate-icarus") &&
                  test_contains(out, "PASS     fpga-verilog/simulate-verilator") &&
                  test_contains(out, "avg_pool2d   yes"),
              "rc=%d %s", rc, out);
    const char *p = strstr(out, "cycles per inference measured, ");
    CHECK_MSG(p != NULL, "%s", out);
    long meas = strtol(strstr(out, "bit-exact; ") + 11, NULL, 10);
    long est = strtol(p + strlen("cycles per inference measured, "), NULL, 10);
    CHECK_MSG(meas > 0 && meas == est, "measured %ld, estimated %ld", meas, est);
    free(out);
    return TEST_PASS;
}

/* The requantisation unit of the generated RTL against crk_requant_one on
 * 4000 vectors (random accumulators, Q31 multipliers and shifts, the
 * edges: INT32_MIN, 0, 2^30, 2^31 - 1, shifts -31..+31) in Icarus; the zero
 * point and clamp change between groups, as between layers. */
TEST(test_fpga_requant_unit)
{
    if (!cr_is_file(FV_SO)) SKIP("fpga-verilog plugin not built");
    const char *d = test_tmpdir();
    char *out = NULL;
    int rc = test_sh(&out, "'%s' compile '%s' --target fpga-verilog --board icebreaker "
                           "--no-verify -o '%s/r.tptpkg' 2>&1 && '%s' extract "
                           "'%s/r.tptpkg' '%s/rx' 2>&1", FV_BIN, FV_MODEL, d, FV_BIN, d, d);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    char path[4096];
    snprintf(path, sizeof path, "%s/rx/targets/fpga-verilog/rtl/core.v", d);
    size_t len = 0;
    char *core = (char *)test_read_file(path, &len);
    CHECK_MSG(core != NULL, "%s missing", path);
    char *b = strstr(core, "module cr_requant");
    char *e = b ? strstr(b, "endmodule") : NULL;
    CHECK_MSG(b && e, "no cr_requant in %s", path);
    e[strlen("endmodule")] = 0;
    snprintf(path, sizeof path, "%s/rq.v", d);
    CHECK(test_write(path, b) == 0);
    free(core);
    enum { N = 4000, G = 250 };
    size_t cap = (size_t)N * 40;
    char *vec = malloc(cap), *exp = malloc((size_t)N * 4);
    CHECK(vec && exp);
    size_t vl = 0, el = 0;
    uint64_t s = 0x9e3779b97f4a7c15ull;
    int32_t zp = 0, lo = -128, hi = 127;
    for (int i = 0; i < N; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        uint32_t r = (uint32_t)(s >> 32), r2 = (uint32_t)s;
        if (i % G == 0) {
            zp = (int32_t)(r2 % 256) - 128;
            lo = -(int32_t)(r2 >> 8) % 129;
            hi = (int32_t)((r2 >> 16) % 128);
        }
        int32_t acc;
        switch (r % 5) {
        case 0: acc = (int32_t)r2; break;
        case 1: acc = (int32_t)(r2 % 20001) - 10000; break;
        case 2: acc = INT32_MIN; break;
        case 3: acc = 0; break;
        default: acc = (int32_t)(r2 % 2000001) - 1000000; break;
        }
        int32_t mult;
        switch ((r >> 4) % 4) {
        case 0: mult = (int32_t)((1u << 30) | (r2 & 0x3fffffffu)); break;
        case 1: mult = 1 << 30; break;
        case 2: mult = INT32_MAX; break;
        default: mult = (r >> 8) % 8 ? (int32_t)((1u << 30) | (r & 0x3fffff00u)) : 0; break;
        }
        int sh = (r >> 10) % 2 ? (int)((r >> 12) % 63) - 31 : (int)((r >> 12) % 14) - 12;
        unsigned lsh = sh > 0 ? (unsigned)sh : 0, rsh = sh > 0 ? 0 : (unsigned)-sh;
        vl += (size_t)snprintf(vec + vl, cap - vl, "%08x%08x%02x%02x%02x%02x%02x\n",
                               (unsigned)acc, (unsigned)mult, lsh, rsh, (unsigned)(zp & 255),
                               (unsigned)(lo & 255), (unsigned)(hi & 255));
        el += (size_t)snprintf(exp + el, (size_t)N * 4 - el, "%02x\n",
                               (unsigned)(uint8_t)crk_requant_one(acc, mult, sh, zp, lo, hi));
    }
    snprintf(path, sizeof path, "%s/vec.hex", d);
    CHECK(test_write_file(path, vec, vl) == 0);
    snprintf(path, sizeof path, "%s/exp.hex", d);
    CHECK(test_write_file(path, exp, el) == 0);
    free(vec);
    free(exp);
    char tb[3000];
    snprintf(tb, sizeof tb,
        "module tb; reg clk = 0; always #5 clk = ~clk;\n"
        "reg [103:0] vec [0:%d]; reg [7:0] ex [0:%d]; integer i, n, err;\n"
        "reg v = 0; reg [31:0] a = 0, m = 0; reg [4:0] l = 0; reg [5:0] r = 0;\n"
        "reg [7:0] zp = 0, lo = 0, hi = 0; reg [15:0] t = 0;\n"
        "wire ov; wire [7:0] od; wire [15:0] ot;\n"
        "cr_requant u (.clk(clk), .in_valid(v), .in_acc(a), .in_mult(m), .in_lsh(l),\n"
        "  .in_rsh(r), .in_zp(zp), .in_lo(lo), .in_hi(hi), .in_tag(t), .out_valid(ov),\n"
        "  .out_data(od), .out_tag(ot));\n"
        "always @(posedge clk) if (ov === 1'b1) begin n = n + 1;\n"
        "  if (od !== ex[ot]) begin err = err + 1;\n"
        "    if (err < 10) $display(\"MISMATCH %%0d got %%02x expected %%02x\", ot, od, ex[ot]); end end\n"
        "initial begin $readmemh(\"vec.hex\", vec); $readmemh(\"exp.hex\", ex); err = 0; n = 0;\n"
        "  repeat (14) @(negedge clk);\n"
        "  for (i = 0; i < %d; i = i + 1) begin @(negedge clk);\n"
        "    if (i %% %d == 0) begin v = 0; repeat (14) @(negedge clk); end\n"
        "    v = 1; {a, m} = vec[i][103:40]; l = vec[i][36:32]; r = vec[i][29:24];\n"
        "    zp = vec[i][23:16]; lo = vec[i][15:8]; hi = vec[i][7:0]; t = i; end\n"
        "  @(negedge clk); v = 0; repeat (20) @(negedge clk);\n"
        "  $display(\"RESULT %%0d errors of %%0d\", err, n); $finish; end\nendmodule\n",
        N - 1, N - 1, N, G);
    snprintf(path, sizeof path, "%s/tb.v", d);
    CHECK(test_write(path, tb) == 0);
    rc = test_sh(&out, "cd '%s' && iverilog -g2005 -o rqsim tb.v rq.v 2>&1 && vvp -n rqsim 2>&1", d);
    if (rc != 0 && (test_contains(out, "not found") || test_contains(out, "No such file"))) {
        free(out);
        SKIP("iverilog missing");
    }
    char want[64];
    snprintf(want, sizeof want, "RESULT 0 errors of %d", N);
    CHECK_MSG(rc == 0 && test_contains(out, want), "rc=%d %s", rc, out);
    free(out);
    return TEST_PASS;
}

/* Narrow weights: the bundled MLP with i4 weights (8 lanes on fc1, 4 of
 * them on DSPs and 4 narrow LUT multipliers; 2 LUT lanes on fc2) and with
 * ternary weights (add / subtract, no multiplier), bit-exact in both
 * simulators. */
TEST(test_fpga_int4_ternary)
{
    if (!cr_is_file(FV_SO)) SKIP("fpga-verilog plugin not built");
    const char *d = test_tmpdir();
    char model[4096], extra[4096], pkg[4096], path[4096];
    snprintf(model, sizeof model, "%s/docs/examples/digits/mlp/model.onnx", CR_SOURCE_DIR);
    if (!cr_is_file(model)) SKIP("bundled MLP example missing");
    static const char *const fmt[] = {"int4", "ternary"};
    static const char *const tag[] = {"i4 weights", "ternary weights"};
    for (int i = 0; i < 2; i++) {
        char *out = NULL;
        snprintf(extra, sizeof extra, "--quant %s --calib '%s/docs/examples/digits/"
                 "test-x-mlp.npy' --io int8 --samples 3", fmt[i], CR_SOURCE_DIR);
        snprintf(pkg, sizeof pkg, "%s/%s.tptpkg", d, fmt[i]);
        int rc = fv_compile_cfg(&out, model, extra,
                                "[target.fpga-verilog]\nsynthesis = off\n"
                                "[layer./0/Gemm]\nparallel = 8\n[layer./2/Gemm]\nparallel = 2\n",
                                pkg);
        if (rc != 0 && test_contains(out, "SKIPPED  fpga-verilog/simulate")) {
            free(out);
            SKIP("FPGA simulators missing (iverilog, verilator)");
        }
        CHECK_MSG(test_contains(out, "wrote ") &&
                      test_contains(out, "PASS     fpga-verilog/lint") &&
                      test_contains(out, "PASS     fpga-verilog/simulate-icarus") &&
                      test_contains(out, "PASS     fpga-verilog/simulate-verilator"),
                  "%s: rc=%d %s", fmt[i], rc, out);
        free(out);
        rc = test_sh(&out, "'%s' extract '%s' '%s/x%d' 2>&1", FV_BIN, pkg, d, i);
        CHECK_MSG(rc == 0, "extract: %s", out);
        free(out);
        snprintf(path, sizeof path, "%s/x%d/targets/fpga-verilog/rtl/core.v", d, i);
        size_t len = 0;
        char *core = (char *)test_read_file(path, &len);
        CHECK_MSG(core && test_contains(core, tag[i]) &&
                      (i == 0 ? test_contains(core, "8 MAC lane(s) (4 on DSPs)")
                              : test_contains(core, "no multiplier") &&
                                    !strstr(core, "pr <= xc4 * wv")),
                  "%s: %s", fmt[i], path);
        free(core);
    }
    return TEST_PASS;
}

/* Writes an int8 crir: x [1, K] -> dense K -> M -> requantize, and when
 * branch, the output also added to itself (a branch). */
static int fv_write_dense_crir(const char *path, int K, int M, int branch)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "crucible-ir 1\ngraph gen\n"
               "tensor x : i8[1, %d] quant(axis=-1, scales=[0.02], zero_points=[-3])\n"
               "tensor w : i8[%d, %d] quant(axis=-1, scales=[0.01], zero_points=[0]) = [",
            K, M, K);
    for (long i = 0; i < (long)K * M; i++) fprintf(f, "%s%ld", i ? ", " : "", (i * 37) % 255 - 127);
    fprintf(f, "]\ntensor acc : i32[1, %d] quant(axis=-1, scales=[0.0002], zero_points=[0])\n"
               "tensor y : i8[1, %d] quant(axis=-1, scales=[0.5], zero_points=[1])\n", M, M);
    if (branch)
        fprintf(f, "tensor z : i8[1, %d] quant(axis=-1, scales=[1.0], zero_points=[0])\n", M);
    fprintf(f, "node fc : dense(x, w) -> (acc)\n"
               "node rq : requantize(acc) -> (y) {rounding=\"fixed_q31\"}\n");
    if (branch) fprintf(f, "node sum : add(y, y) -> (z)\n");
    fprintf(f, "inputs (x)\noutputs (%s)\n", branch ? "z" : "y");
    return fclose(f);
}

/* Pre-flight refusals with the numbers: weights beyond the board's block
 * RAM (784 -> 128 int8: 100 KB), and a branch (add). */
TEST(test_fpga_refusals_capacity_branch)
{
    if (!cr_is_file(FV_SO)) SKIP("fpga-verilog plugin not built");
    const char *d = test_tmpdir();
    char m[4096], pkg[4096];
    char *out = NULL;
    snprintf(m, sizeof m, "%s/big.crir", d);
    CHECK(fv_write_dense_crir(m, 784, 128, 0) == 0);
    snprintf(pkg, sizeof pkg, "%s/big.tptpkg", d);
    int rc = fv_compile_cfg(&out, m, "--no-verify", "", pkg);
    CHECK_MSG(rc != 0 && test_contains(out, "layer fc") && test_contains(out, "BRAM") &&
                  test_contains(out, "icebreaker has 30 BRAM") &&
                  test_contains(out, "try a lower parallel") && !cr_is_file(pkg),
              "rc=%d %s", rc, out);
    free(out);
    snprintf(m, sizeof m, "%s/branch.crir", d);
    CHECK(fv_write_dense_crir(m, 16, 8, 1) == 0);
    snprintf(pkg, sizeof pkg, "%s/branch.tptpkg", d);
    rc = fv_compile_cfg(&out, m, "--no-verify", "", pkg);
    CHECK_MSG(rc != 0 && test_contains(out, "add") && test_contains(out, "not implemented") &&
                  !cr_is_file(pkg),
              "rc=%d %s", rc, out);
    free(out);
    return TEST_PASS;
}
