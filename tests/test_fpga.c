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
