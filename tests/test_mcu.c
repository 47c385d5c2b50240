/* test_mcu.c - the MCU targets (sdk/mcu, plugins/mcu-*): a hand-written
 * int8 graph (conv2d + requantize + relu, max_pool2d, reshape, dense) is
 * compiled, cross-compiled, run in QEMU and compared bit for bit; tests
 * SKIP visibly when a cross-compiler or QEMU is missing. */
#include "runner.h"

#include <stdlib.h>
#include <string.h>

#define BIN CR_CRUCIBLE_BIN
#define PLUGINS CR_BUILD_DIR "/lib/crucible/plugins"

static const char small_ir[] =
    "crucible-ir 1\n"
    "graph mcu_small\n"
    "tensor x : i8[1, 1, 6, 6] quant(scales=[0.0625], zero_points=[-3])\n"
    "tensor cw : i8[4, 1, 3, 3] quant(axis=0, scales=[0.0078125, 0.00390625, 0.015625, 0.001953125], zero_points=[0, 0, 0, 0]) = [96, 91, 43, -26, -82, -100, -71, -8, 58, 97, 90, 41, -27, -83, -99, -69, -7, 59, 97, 89, 40, -29, -84, -99, -68, -5, 61, 98, 89, 38, -30, -85, -99, -67, -3, 62]\n"
    "tensor cb : i32[4] quant(axis=0, scales=[0.00048828125, 0.000244140625, 0.0009765625, 0.0001220703125], zero_points=[0,0,0,0]) = [100, -200, 50, 3000]\n"
    "tensor acc1 : i32[1, 4, 6, 6] quant(axis=1, scales=[0.00048828125, 0.000244140625, 0.0009765625, 0.0001220703125], zero_points=[0,0,0,0])\n"
    "tensor y1 : i8[1, 4, 6, 6] quant(scales=[0.03], zero_points=[-10])\n"
    "tensor r1 : i8[1, 4, 6, 6] quant(scales=[0.03], zero_points=[-10])\n"
    "tensor p1 : i8[1, 4, 3, 3] quant(scales=[0.03], zero_points=[-10])\n"
    "tensor f1 : i8[1, 36] quant(scales=[0.03], zero_points=[-10])\n"
    "tensor dw : i8[5, 36] quant(axis=0, scales=[0.01, 0.02, 0.005, 0.015, 0.008], zero_points=[0,0,0,0,0]) = [86, 33, -35, -87, -98, -63, 2, 66, 99, 85, 32, -37, -88, -98, -62, 3, 67, 99, 85, 30, -38, -89, -98, -60, 5, 68, 99, 84, 29, -40, -90, -97, -59, 7, 69, 99, 83, 27, -41, -90, -97, -58, 8, 71, 100, 82, 25, -43, -91, -96, -56, 10, 72, 100, 81, 24, -44, -92, -96, -55, 12, 73, 100, 80, 22, -46, -92, -95, -54, 13, 74, 100, 79, 21, -47, -93, -95, -52, 15, 75, 100, 78, 19, -49, -94, -94, -51, 17, 76, 100, 77, 17, -50, -94, -94, -49, 18, 77, 100, 76, 16, -52, -95, -93, -48, 20, 78, 100, 74, 14, -53, -95, -93, -46, 22, 79, 100, 73, 12, -55, -96, -92, -45, 23, 80, 100, 72, 11, -56, -96, -91, -43, 25, 81, 100, 71, 9, -57, -97, -90, -42, 27, 82, 100, 70, 7, -59, -97, -90, -40, 28, 83, 99, 69, 6, -60, -97, -89, -39, 30, 84, 99, 67, 4, -61, -98, -88, -37, 31, 85, 99, 66, 2, -63, -98, -87, -36, 33, 86, 99]\n"
    "tensor db : i32[5] = [10, -20, 300, -400, 5]\n"
    "tensor acc2 : i32[1, 5] quant(axis=1, scales=[0.000299999985, 0.00059999997, 0.000149999993, 0.000449999992, 0.000240000008], zero_points=[0,0,0,0,0])\n"
    "tensor out : i8[1, 5] quant(scales=[0.07], zero_points=[3])\n"
    "node conv : conv2d(x, cw, cb) -> (acc1) {pads=[1, 1, 1, 1]}\n"
    "node rq1 : requantize(acc1) -> (y1) {rounding=\"fixed_q31\"}\n"
    "node relu1 : relu(y1) -> (r1) {rounding=\"fixed_q31\"}\n"
    "node pool : max_pool2d(r1) -> (p1) {kernel=[2, 2], strides=[2, 2]}\n"
    "node flat : reshape(p1) -> (f1) {shape=[1, 36]}\n"
    "node fc : dense(f1, dw, db) -> (acc2)\n"
    "node rq2 : requantize(acc2) -> (out) {rounding=\"fixed_q31\"}\n"
    "inputs (x)\n"
    "outputs (out)\n"
;

static int have(const char *tool)
{
    return test_sh(NULL, "command -v %s >/dev/null 2>&1", tool) == 0;
}

static int plugin_built(const char *id)
{
    return test_sh(NULL, "test -f '" PLUGINS "/%s.so'", id) == 0;
}

static int run_target(const char *id, const char *cc, const char *cc_pkg,
                      const char *qemu, const char *qemu_pkg)
{
    if (!plugin_built(id)) SKIP("plugin %s not built", id);
    if (!have(cc)) SKIP("%s not found (install %s)", cc, cc_pkg);
    if (!have(qemu)) SKIP("%s not found (install %s)", qemu, qemu_pkg);
    const char *d = test_tmpdir();
    char path[1024], *out = NULL;
    snprintf(path, sizeof path, "%s/small.crir", d);
    CHECK(test_write(path, small_ir) == 0);
    int rc = test_sh(&out, "'%s' compile '%s' --target %s --samples 6 -o '%s/%s.tptpkg' 2>&1",
                     BIN, path, id, d, id);
    CHECK_MSG(rc == 0, "compile: %s", out);
    CHECK_MSG(test_contains(out, "bit-exact"), "%s", out);
    CHECK_MSG(test_contains(out, "arena 180 bytes"), "%s", out);
    free(out);
    rc = test_sh(&out, "'%s' inspect '%s/%s.tptpkg' 2>&1", BIN, d, id);
    CHECK_MSG(rc == 0 && test_contains(out, "firmware/model.c") &&
              test_contains(out, "bin/fw.elf") &&
              test_contains(out, "firmware/kernels/conv.c"), "inspect: %s", out);
    if (!strcmp(id, "mcu-rp2040"))
        CHECK_MSG(test_contains(out, "bin/fw.uf2"), "no UF2: %s", out);
    free(out);
    return TEST_PASS;
}

TEST(test_mcu_riscv_small_bitexact)
{
    return run_target("mcu-riscv", "riscv64-unknown-elf-gcc",
                      "gcc-riscv64-unknown-elf", "qemu-system-riscv32",
                      "qemu-system-misc");
}

TEST(test_mcu_rp2040_small_bitexact)
{
    return run_target("mcu-rp2040", "arm-none-eabi-gcc", "gcc-arm-none-eabi",
                      "qemu-system-arm", "qemu-system-arm");
}

TEST(test_mcu_esp32c3_small_bitexact)
{
    return run_target("mcu-esp32", "riscv64-unknown-elf-gcc",
                      "gcc-riscv64-unknown-elf", "qemu-system-riscv32",
                      "qemu-system-misc");
}

/* A board too small for the model: pre-flight refuses with the numbers. */
TEST(test_mcu_preflight_too_big)
{
    if (!plugin_built("mcu-riscv")) SKIP("plugin mcu-riscv not built");
    const char *d = test_tmpdir();
    char path[1024], board[1024], *out = NULL;
    snprintf(path, sizeof path, "%s/small.crir", d);
    snprintf(board, sizeof board, "%s/tiny.ini", d);
    CHECK(test_write(path, small_ir) == 0);
    CHECK(test_write(board, "[board]\nname = tiny\ntarget = mcu-riscv\n"
                            "arch = rv32\nflash_bytes = 1024\nram_bytes = 65536\n"
                            "[toolchain]\nprefix = riscv64-unknown-elf-\n"
                            "[link]\nflash_origin = 0x80000000\nflash_length = 0x400\n"
                            "ram_origin = 0x80400000\nram_length = 0x10000\n"
                            "[emulator]\nqemu = qemu-system-riscv32\nmachine = virt\n") == 0);
    int rc = test_sh(&out, "'%s' compile '%s' --target mcu-riscv --board '%s' -o '%s/t.tptpkg' 2>&1",
                     BIN, path, board, d);
    CHECK_MSG(rc != 0 && test_contains(out, "bytes of flash") &&
              test_contains(out, "has 1024"), "%s", out);
    free(out);
    return TEST_PASS;
}

/* A board INI with a missing field is refused with the field's name. */
TEST(test_mcu_board_missing_field)
{
    if (!plugin_built("mcu-rp2040")) SKIP("plugin mcu-rp2040 not built");
    const char *d = test_tmpdir();
    char path[1024], board[1024], *out = NULL;
    snprintf(path, sizeof path, "%s/small.crir", d);
    snprintf(board, sizeof board, "%s/bad.ini", d);
    CHECK(test_write(path, small_ir) == 0);
    CHECK(test_write(board, "[board]\nname = bad\ntarget = mcu-rp2040\n"
                            "arch = armv6m\nflash_bytes = 2M\n") == 0);
    int rc = test_sh(&out, "'%s' compile '%s' --target mcu-rp2040 --board '%s' -o '%s/t.tptpkg' 2>&1",
                     BIN, path, board, d);
    CHECK_MSG(rc != 0 && test_contains(out, "ram_bytes"), "%s", out);
    free(out);
    return TEST_PASS;
}

/* The reference method for instruction counts: QEMU -singlestep exec
 * tracing (one line per executed instruction), counting the lines after
 * mcu_count_begin's instructions up to the entry of mcu_count_end. $1 is
 * the nm tool, $2 the ELF, $3 the trace. Prints the count. */
static const char ss_count_sh[] =
    "b=$($1 -S \"$2\" | awk '$4==\"mcu_count_begin\"{print $1, $2}'); "
    "e=$($1 \"$2\" | awk '$3==\"mcu_count_end\"{print $1}'); "
    "set -- $b $e \"$3\"; "
    "B=$(printf %08x $((0x$1 & ~1))); BE=$(printf %08x $((0x$1 + 0x$2))); "
    "E=$(printf %08x $((0x$3 & ~1))); "
    "awk -v b=x$B -v be=x$BE -v e=x$E '/^Trace/{split($0,a,\"/\"); pc=\"x\" a[2]; "
    "if(!st){if(pc==b)st=1; next} if(pc==e){print n+0; done=1; exit} "
    "if(pc>=b && pc<be) next; n++} END{if(!done) print -1}' \"$4\"\n";

/* The method itself, on a loop whose count is known by hand: after
 * mcu_count_begin returns, li + 1000 x (addi, bnez) + the call of
 * mcu_count_end = 2002 instructions. */
TEST(test_mcu_count_method_known_loop)
{
    if (!have("riscv64-unknown-elf-gcc"))
        SKIP("riscv64-unknown-elf-gcc not found (install gcc-riscv64-unknown-elf)");
    if (!have("qemu-system-riscv32"))
        SKIP("qemu-system-riscv32 not found (install qemu-system-misc)");
    const char *d = test_tmpdir();
    char path[1024], *out = NULL;
    snprintf(path, sizeof path, "%s/ss_count.sh", d);
    CHECK(test_write(path, ss_count_sh) == 0);
    snprintf(path, sizeof path, "%s/loop.S", d);
    CHECK(test_write(path,
        ".option norvc\n.text\n.globl _start\n_start:\n"
        "  la sp, 0x80100000\n  call mcu_count_begin\n  li t0, 1000\n"
        "1: addi t0, t0, -1\n  bnez t0, 1b\n  call mcu_count_end\n"
        "  li a0, 0x18\n  li a1, 0x20026\n  .balign 16\n"
        "  slli zero, zero, 0x1f\n  ebreak\n  srai zero, zero, 7\n2: j 2b\n"
        ".globl mcu_count_begin\n.type mcu_count_begin, @function\n"
        "mcu_count_begin:\n  nop\n  ret\n.size mcu_count_begin, .-mcu_count_begin\n"
        ".globl mcu_count_end\n.type mcu_count_end, @function\n"
        "mcu_count_end:\n  ret\n.size mcu_count_end, .-mcu_count_end\n") == 0);
    int rc = test_sh(&out, "cd '%s' && riscv64-unknown-elf-gcc -march=rv32imac "
                     "-mabi=ilp32 -nostdlib -Wl,-Ttext=0x80000000 -o loop.elf "
                     "loop.S 2>&1 && timeout 30 qemu-system-riscv32 -M virt "
                     "-bios none -nographic -monitor none -serial none "
                     "-semihosting-config enable=on,target=native -singlestep "
                     "-d exec,nochain -D ss.log -kernel loop.elf 2>&1 && "
                     "sh ss_count.sh riscv64-unknown-elf-nm loop.elf ss.log",
                     d);
    CHECK_MSG(rc == 0, "%s", out);
    CHECK_MSG(atol(out) == 2002, "single-step count %s, want 2002", out);
    free(out);
    return TEST_PASS;
}

/* crucible's block-level count (compile with count_instructions) equals
 * the single-step count of the same firmware, on both architectures. */
static int count_matches(const char *id, const char *cc, const char *nm,
                         const char *qemu_cmd, const char *qemu)
{
    if (!plugin_built(id)) SKIP("plugin %s not built", id);
    if (!have(cc)) SKIP("%s not found", cc);
    if (!have(qemu)) SKIP("%s not found", qemu);
    const char *d = test_tmpdir();
    char path[1024], cfg[1024], *out = NULL;
    snprintf(path, sizeof path, "%s/small.crir", d);
    snprintf(cfg, sizeof cfg, "%s/c.ini", d);
    CHECK(test_write(path, small_ir) == 0);
    char ini[256];
    snprintf(ini, sizeof ini, "[target.%s]\ncount_instructions = true\n", id);
    CHECK(test_write(cfg, ini) == 0);
    snprintf(path, sizeof path, "%s/ss_count.sh", d);
    CHECK(test_write(path, ss_count_sh) == 0);
    snprintf(path, sizeof path, "%s/small.crir", d);
    int rc = test_sh(&out, "'%s' compile '%s' --target %s --samples 2 "
                     "--config '%s' --keep-workdir -o '%s/p.tptpkg' 2>&1",
                     BIN, path, id, cfg, d);
    CHECK_MSG(rc == 0, "compile: %s", out);
    const char *m = strstr(out, "instructions executed");
    CHECK_MSG(m != NULL, "no count: %s", out);
    if (m > out) m--; /* the space before the word */
    while (m > out && m[-1] != ' ') m--;
    long got = atol(m);
    const char *w = strstr(out, "work directory of ");
    CHECK_MSG(w && strstr(w, "kept: "), "%s", out);
    char wd[512];
    snprintf(wd, sizeof wd, "%s", strstr(w, "kept: ") + 6);
    wd[strcspn(wd, "\n")] = 0;
    free(out);
    rc = test_sh(&out, "cd '%s' && timeout 60 %s -nographic -monitor none "
                 "-serial none -semihosting-config "
                 "enable=on,target=native,arg=fw.elf,arg=count -singlestep "
                 "-d exec,nochain -D ss.log -kernel fw.elf >/dev/null 2>&1; "
                 "sh '%s/ss_count.sh' %s fw.elf ss.log; rm -rf '%s'",
                 wd, qemu_cmd, d, nm, wd);
    CHECK_MSG(rc == 0, "%s", out);
    long want = atol(out);
    CHECK_MSG(got > 1476 && got == want, "%s: block count %ld, single-step "
              "count %ld", id, got, want);
    free(out);
    return TEST_PASS;
}

TEST(test_mcu_count_riscv_matches_singlestep)
{
    return count_matches("mcu-riscv", "riscv64-unknown-elf-gcc",
                         "riscv64-unknown-elf-nm",
                         "qemu-system-riscv32 -M virt -bios none",
                         "qemu-system-riscv32");
}

TEST(test_mcu_count_rp2040_matches_singlestep)
{
    return count_matches("mcu-rp2040", "arm-none-eabi-gcc",
                         "arm-none-eabi-nm", "qemu-system-arm -M mps2-an385",
                         "qemu-system-arm");
}

/* TFLite Micro's micro_speech (int8; reshape, NHWC<->NCHW transposes,
 * conv2d + relu, dense, softmax) on its own test inputs, bit-exact on
 * Cortex-M0+ and rv32imac. */
TEST(test_mcu_micro_speech_bitexact)
{
    const char *m = CR_SOURCE_DIR "/../shared/models/tflite/micro_speech_quantized";
    if (test_sh(NULL, "test -f '%s/model.tflite'", m) != 0)
        SKIP("%s absent", m);
    if (!plugin_built("mcu-riscv") || !plugin_built("mcu-rp2040"))
        SKIP("MCU plugins not built");
    if (!have("riscv64-unknown-elf-gcc") || !have("qemu-system-riscv32") ||
        !have("arm-none-eabi-gcc") || !have("qemu-system-arm"))
        SKIP("cross-compilers or QEMU missing (gcc-riscv64-unknown-elf, "
             "qemu-system-misc, gcc-arm-none-eabi, qemu-system-arm)");
    const char *d = test_tmpdir();
    char *out = NULL;
    int rc = test_sh(&out, "'%s' compile '%s/model.tflite' --target "
                     "mcu-riscv,mcu-rp2040 --input '%s'/test_data_set_*/input_0.npy "
                     "-o '%s/ms.tptpkg' 2>&1", BIN, m, m, d);
    CHECK_MSG(rc == 0, "%s", out);
    const char *p = strstr(out, "bit-exact");
    CHECK_MSG(p && strstr(p + 1, "bit-exact"), "%s", out);
    CHECK_MSG(test_contains(out, "arena 8000"), "%s", out);
    free(out);
    return TEST_PASS;
}

/* The micro:bit board (Cortex-M0, 256 KiB flash, 16 KiB RAM): the board
 * INI picks QEMU's microbit machine and its real memory map; no UF2. */
TEST(test_mcu_microbit_bitexact)
{
    if (!plugin_built("mcu-rp2040")) SKIP("plugin mcu-rp2040 not built");
    if (!have("arm-none-eabi-gcc")) SKIP("arm-none-eabi-gcc not found (install gcc-arm-none-eabi)");
    if (!have("qemu-system-arm")) SKIP("qemu-system-arm not found (install qemu-system-arm)");
    const char *d = test_tmpdir();
    char path[1024], *out = NULL;
    snprintf(path, sizeof path, "%s/small.crir", d);
    CHECK(test_write(path, small_ir) == 0);
    int rc = test_sh(&out, "'%s' compile '%s' --target mcu-rp2040 --board microbit "
                     "--samples 3 -o '%s/mb.tptpkg' 2>&1", BIN, path, d);
    CHECK_MSG(rc == 0 && test_contains(out, "bit-exact") &&
              test_contains(out, "-M microbit"), "%s", out);
    free(out);
    rc = test_sh(&out, "'%s' inspect '%s/mb.tptpkg' 2>&1", BIN, d);
    CHECK_MSG(rc == 0 && !test_contains(out, "fw.uf2"), "%s", out);
    free(out);
    return TEST_PASS;
}

/* Activations of 18 KiB do not fit the micro:bit's 16 KiB of RAM:
 * pre-flight refuses with needed and available bytes; no package. */
TEST(test_mcu_microbit_ram_refused)
{
    if (!plugin_built("mcu-rp2040")) SKIP("plugin mcu-rp2040 not built");
    const char *d = test_tmpdir();
    char path[1024], ir[4096], *out = NULL;
    int k = snprintf(ir, sizeof ir,
        "crucible-ir 1\ngraph big\n"
        "tensor x : i8[1, 1, 48, 48] quant(scales=[0.05], zero_points=[0])\n"
        "tensor w : i8[8, 1, 3, 3] quant(scales=[0.01], zero_points=[0]) = [");
    for (int i = 0; i < 72; i++)
        k += snprintf(ir + k, sizeof ir - (size_t)k, "%s%d", i ? ", " : "", (i * 37) % 200 - 100);
    snprintf(ir + k, sizeof ir - (size_t)k, "]\n"
        "tensor acc : i32[1, 8, 48, 48] quant(scales=[0.0005], zero_points=[0])\n"
        "tensor y : i8[1, 8, 48, 48] quant(scales=[0.1], zero_points=[0])\n"
        "node c : conv2d(x, w) -> (acc) {pads=[1, 1, 1, 1]}\n"
        "node r : requantize(acc) -> (y) {rounding=\"fixed_q31\"}\n"
        "inputs (x)\noutputs (y)\n");
    snprintf(path, sizeof path, "%s/big.crir", d);
    CHECK(test_write(path, ir) == 0);
    int rc = test_sh(&out, "'%s' compile '%s' --target mcu-rp2040 --board microbit "
                     "-o '%s/big.tptpkg' 2>&1; test ! -e '%s/big.tptpkg'",
                     BIN, path, d, d);
    CHECK_MSG(rc == 0 && test_contains(out, "bytes of RAM") &&
              test_contains(out, "has 16384"), "%s", out);
    free(out);
    /* the same model fits the Pico's 264 KiB */
    rc = test_sh(&out, "'%s' compile '%s' --target mcu-rp2040 --no-verify "
                 "-o '%s/big2.tptpkg' 2>&1", BIN, path, d);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    return TEST_PASS;
}

/* compile the small model for id with a project config; out gets the log */
static int compile_cfg(const char *id, const char *cfg_text, const char *env,
                       const char *extra, char **out)
{
    const char *d = test_tmpdir();
    char path[1024], cfg[1024];
    snprintf(path, sizeof path, "%s/small.crir", d);
    snprintf(cfg, sizeof cfg, "%s/cfg.ini", d);
    if (test_write(path, small_ir) || test_write(cfg, cfg_text)) return -1;
    return test_sh(out, "%s '%s' compile '%s' --target %s --samples 3 "
                   "--config '%s' %s -o '%s/x.tptpkg' 2>&1; rc=$?; "
                   "test -e '%s/x.tptpkg' && echo PACKAGE-WRITTEN; exit $rc",
                   env, BIN, path, id, cfg, extra, d, d);
}

/* A firmware that never finishes is stopped at the time bound and
 * reported as a hang; the compile fails and writes no package. */
TEST(test_mcu_hang_bounded)
{
    if (!plugin_built("mcu-riscv")) SKIP("plugin mcu-riscv not built");
    if (!have("riscv64-unknown-elf-gcc")) SKIP("riscv64-unknown-elf-gcc not found (install gcc-riscv64-unknown-elf)");
    if (!have("qemu-system-riscv32")) SKIP("qemu-system-riscv32 not found (install qemu-system-misc)");
    char *out = NULL;
    int rc = compile_cfg("mcu-riscv", "[target.mcu-riscv]\ntest_inject = hang\n"
                         "timeout_s = 2\n", "", "", &out);
    CHECK_MSG(rc != 0 && test_contains(out, "did not finish within 2 s") &&
              !test_contains(out, "PACKAGE-WRITTEN"), "%s", out);
    free(out);
    return TEST_PASS;
}

/* A wrong output byte is reported with the sample, index and both values. */
TEST(test_mcu_mismatch_reported)
{
    if (!plugin_built("mcu-rp2040")) SKIP("plugin mcu-rp2040 not built");
    if (!have("arm-none-eabi-gcc")) SKIP("arm-none-eabi-gcc not found (install gcc-arm-none-eabi)");
    if (!have("qemu-system-arm")) SKIP("qemu-system-arm not found (install qemu-system-arm)");
    char *out = NULL;
    int rc = compile_cfg("mcu-rp2040", "[target.mcu-rp2040]\ntest_inject = mismatch\n",
                         "", "", &out);
    CHECK_MSG(rc != 0 && test_contains(out, "sample 2, output out[2]: firmware ") &&
              test_contains(out, ", reference ") &&
              test_contains(out, "1 of 15 values differ") &&
              !test_contains(out, "PACKAGE-WRITTEN"), "%s", out);
    free(out);
    return TEST_PASS;
}

/* Tools missing from PATH: the step is SKIPPED naming the Debian package,
 * the exit status is non-zero, and --no-verify accepts it. */
TEST(test_mcu_missing_tools_skipped)
{
    if (!plugin_built("mcu-riscv")) SKIP("plugin mcu-riscv not built");
    if (!have("riscv64-unknown-elf-gcc")) SKIP("riscv64-unknown-elf-gcc not found (install gcc-riscv64-unknown-elf)");
    const char *d = test_tmpdir();
    char env[1200], *out = NULL;
    /* a PATH with the cross tools but no QEMU */
    CHECK(test_sh(NULL, "mkdir -p '%s/tools' && for t in gcc size objcopy nm; do "
                  "ln -sf \"$(command -v riscv64-unknown-elf-$t)\" "
                  "'%s/tools/riscv64-unknown-elf-'$t; done", d, d) == 0);
    snprintf(env, sizeof env, "PATH='%s/tools'", d);
    int rc = compile_cfg("mcu-riscv", "", env, "", &out);
    CHECK_MSG(rc != 0 && test_contains(out, "SKIPPED") &&
              test_contains(out, "qemu-system-riscv32 not found (install "
                            "qemu-system-misc)"), "%s", out);
    free(out);
    /* no cross-compiler at all */
    snprintf(env, sizeof env, "PATH='%s/empty'", d);
    rc = compile_cfg("mcu-riscv", "", env, "", &out);
    CHECK_MSG(rc != 0 && test_contains(out, "riscv64-unknown-elf-gcc not found "
                                       "(install gcc-riscv64-unknown-elf)"), "%s", out);
    free(out);
    rc = compile_cfg("mcu-riscv", "", env, "--no-verify", &out);
    CHECK_MSG(rc == 0 && test_contains(out, "PACKAGE-WRITTEN"), "%s", out);
    free(out);
    return TEST_PASS;
}

/* mnist8_cntk as the quantiser leaves it: int8 convolutions and dense
 * with float islands between them (dequantize, bias add, relu, max pool,
 * quantize) and a float output - bit-exact (f32 bits) in QEMU. */
TEST(test_mcu_mnist8_float_islands_bitexact)
{
    const char *m = CR_SOURCE_DIR "/../shared/models/onnx/mnist8_cntk";
    if (test_sh(NULL, "test -f '%s/model.onnx'", m) != 0) SKIP("%s absent", m);
    if (!plugin_built("mcu-riscv")) SKIP("plugin mcu-riscv not built");
    if (!have("riscv64-unknown-elf-gcc")) SKIP("riscv64-unknown-elf-gcc not found (install gcc-riscv64-unknown-elf)");
    if (!have("qemu-system-riscv32")) SKIP("qemu-system-riscv32 not found (install qemu-system-misc)");
    const char *d = test_tmpdir();
    char *out = NULL;
    /* the quantiser folds CNTK's bias adds: all int8, int8 out */
    int rc = test_sh(&out, "'%s' compile '%s/model.onnx' --target mcu-riscv "
                     "--quant int8 --calib '%s'/test_data_set_*/input_0.pb "
                     "--io int8 --samples 3 -o '%s/m8.tptpkg' 2>&1", BIN, m, m, d);
    CHECK_MSG(rc == 0 && test_contains(out, "3 samples bit-exact (30 int8 values)"),
              "%s", out);
    free(out);
    /* two adds kept in float by the config: float islands and a float
     * graph output, still bit-exact (f32 bits) */
    char ini[1024];
    snprintf(ini, sizeof ini, "%s/islands.ini", d);
    CHECK(test_write(ini, "[layer.Plus30]\nquant = float\n"
                          "[layer.Plus214]\nquant = float\n") == 0);
    rc = test_sh(&out, "'%s' compile '%s/model.onnx' --target mcu-riscv "
                 "--quant int8 --calib '%s'/test_data_set_*/input_0.pb "
                 "--io int8 --samples 3 --config '%s' -o '%s/m8f.tptpkg' 2>&1",
                 BIN, m, m, ini, d);
    CHECK_MSG(rc == 0 && test_contains(out, "nodes left in float") &&
                  test_contains(out, "3 samples bit-exact (30 f32 values)"),
              "%s", out);
    free(out);
    return TEST_PASS;
}

/* int8 add / mul / sub (TFLite semantics): a residual add of the graph
 * input, a per-channel constant multiplier (broadcast), and a subtraction
 * reading the input a third time - bit-exact on both architectures. */
static const char residual_ir[] =
    "crucible-ir 1\n"
    "graph mcu_residual\n"
    "tensor x : i8[1, 2, 4, 4] quant(scales=[0.05], zero_points=[3])\n"
    "tensor cw : i8[2, 2, 3, 3] quant(axis=0, scales=[0.01, 0.02], zero_points=[0, 0]) = [12, -50, 33, 7, 90, -17, 44, -3, 21, -66, 8, 19, -27, 101, -5, 38, -74, 2, 55, -9, 16, 70, -35, 4, -88, 29, 13, -41, 60, 9, -12, 25, 47, -56, 3, 18]\n"
    "tensor cb : i32[2] quant(axis=0, scales=[0.0005, 0.001], zero_points=[0, 0]) = [150, -90]\n"
    "tensor acc : i32[1, 2, 4, 4] quant(axis=1, scales=[0.0005, 0.001], zero_points=[0, 0])\n"
    "tensor y1 : i8[1, 2, 4, 4] quant(scales=[0.04], zero_points=[-5])\n"
    "tensor s1 : i8[1, 2, 4, 4] quant(scales=[0.07], zero_points=[2])\n"
    "tensor k : i8[2, 1, 1] quant(scales=[0.02], zero_points=[1]) = [37, -60]\n"
    "tensor m1 : i8[1, 2, 4, 4] quant(scales=[0.03], zero_points=[-4])\n"
    "tensor out : i8[1, 2, 4, 4] quant(scales=[0.06], zero_points=[0])\n"
    "node conv : conv2d(x, cw, cb) -> (acc) {pads=[1, 1, 1, 1]}\n"
    "node rq : requantize(acc) -> (y1) {rounding=\"fixed_q31\"}\n"
    "node res : add(y1, x) -> (s1) {rounding=\"fixed_q31\"}\n"
    "node scale : mul(s1, k) -> (m1) {rounding=\"fixed_q31\"}\n"
    "node back : sub(m1, x) -> (out) {rounding=\"fixed_q31\"}\n"
    "inputs (x)\n"
    "outputs (out)\n";

TEST(test_mcu_int8_add_mul_sub_bitexact)
{
    if (!plugin_built("mcu-riscv") || !plugin_built("mcu-rp2040"))
        SKIP("MCU plugins not built");
    if (!have("riscv64-unknown-elf-gcc") || !have("qemu-system-riscv32") ||
        !have("arm-none-eabi-gcc") || !have("qemu-system-arm"))
        SKIP("cross-compilers or QEMU missing (gcc-riscv64-unknown-elf, "
             "qemu-system-misc, gcc-arm-none-eabi, qemu-system-arm)");
    const char *d = test_tmpdir();
    char path[1024], *out = NULL;
    snprintf(path, sizeof path, "%s/res.crir", d);
    CHECK(test_write(path, residual_ir) == 0);
    int rc = test_sh(&out, "'%s' compile '%s' --target mcu-riscv,mcu-rp2040 "
                     "--samples 6 -o '%s/res.tptpkg' 2>&1", BIN, path, d);
    CHECK_MSG(rc == 0, "%s", out);
    const char *p = strstr(out, "6 samples bit-exact (192 int8 values)");
    CHECK_MSG(p && strstr(p + 1, "6 samples bit-exact (192 int8 values)"), "%s", out);
    free(out);
    return TEST_PASS;
}

/* int8 sigmoid / tanh / leaky_relu as 256-entry tables computed like the
 * interpreter's;
 * an int8 relu without the int8 rounding attribute is refused by name. */
static const char lut_ir[] =
    "crucible-ir 1\n"
    "graph mcu_lut\n"
    "tensor x : i8[1, 40] quant(scales=[0.08], zero_points=[-7])\n"
    "tensor s : i8[1, 40] quant(scales=[0.00390625], zero_points=[-128])\n"
    "tensor t2 : i8[1, 40] quant(scales=[0.0078125], zero_points=[0])\n"
    "tensor t : i8[1, 40] quant(scales=[0.005], zero_points=[-20])\n"
    "node sg : sigmoid(x) -> (s) {rounding=\"fixed_q31\"}\n"
    "node th : tanh(s) -> (t2) {rounding=\"fixed_q31\"}\n"
    "node lk : leaky_relu(t2) -> (t) {alpha=0.2, rounding=\"fixed_q31\"}\n"
    "inputs (x)\n"
    "outputs (t)\n";

TEST(test_mcu_lut_bitexact_and_relu_refusal)
{
    if (!plugin_built("mcu-riscv")) SKIP("plugin mcu-riscv not built");
    if (!have("riscv64-unknown-elf-gcc")) SKIP("riscv64-unknown-elf-gcc not found (install gcc-riscv64-unknown-elf)");
    if (!have("qemu-system-riscv32")) SKIP("qemu-system-riscv32 not found (install qemu-system-misc)");
    const char *d = test_tmpdir();
    char path[1024], *out = NULL;
    snprintf(path, sizeof path, "%s/lut.crir", d);
    CHECK(test_write(path, lut_ir) == 0);
    int rc = test_sh(&out, "'%s' compile '%s' --target mcu-riscv --samples 6 "
                     "-o '%s/lut.tptpkg' 2>&1", BIN, path, d);
    CHECK_MSG(rc == 0 && test_contains(out, "6 samples bit-exact (240 int8 values)"),
              "%s", out);
    free(out);
    snprintf(path, sizeof path, "%s/relu.crir", d);
    CHECK(test_write(path, "crucible-ir 1\ngraph r\n"
                     "tensor x : i8[1, 8] quant(scales=[0.1], zero_points=[3])\n"
                     "tensor y : i8[1, 8] quant(scales=[0.1], zero_points=[3])\n"
                     "node r1 : relu(x) -> (y)\ninputs (x)\noutputs (y)\n") == 0);
    rc = test_sh(&out, "'%s' compile '%s' --target mcu-riscv -o '%s/r.tptpkg' 2>&1",
                 BIN, path, d);
    CHECK_MSG(rc != 0 && test_contains(out, "relu r1") &&
              test_contains(out, "fixed_q31"), "%s", out);
    free(out);
    return TEST_PASS;
}

/* int8 concat along channels of two activations (one the graph input,
 * also live for the concat) and a constant with its own scale (requantised
 * on the way in), bit-exact. */
static const char concat_ir[] =
    "crucible-ir 1\n"
    "graph mcu_concat\n"
    "tensor x : i8[1, 2, 3, 3] quant(scales=[0.05], zero_points=[3])\n"
    "tensor k : i8[1, 1, 3, 3] quant(scales=[0.02], zero_points=[-1]) = [5, -7, 9, 100, -100, 0, 1, 2, 3]\n"
    "tensor y1 : i8[1, 2, 3, 3] quant(scales=[0.05], zero_points=[3])\n"
    "tensor out : i8[1, 5, 3, 3] quant(scales=[0.05], zero_points=[3])\n"
    "node r : relu(x) -> (y1) {rounding=\"fixed_q31\"}\n"
    "node c : concat(y1, k, x) -> (out) {axis=1, rounding=\"fixed_q31\"}\n"
    "inputs (x)\n"
    "outputs (out)\n";

TEST(test_mcu_concat_bitexact)
{
    if (!plugin_built("mcu-riscv")) SKIP("plugin mcu-riscv not built");
    if (!have("riscv64-unknown-elf-gcc")) SKIP("riscv64-unknown-elf-gcc not found (install gcc-riscv64-unknown-elf)");
    if (!have("qemu-system-riscv32")) SKIP("qemu-system-riscv32 not found (install qemu-system-misc)");
    const char *d = test_tmpdir();
    char path[1024], *out = NULL;
    snprintf(path, sizeof path, "%s/cat.crir", d);
    CHECK(test_write(path, concat_ir) == 0);
    int rc = test_sh(&out, "'%s' compile '%s' --target mcu-riscv --samples 6 "
                     "-o '%s/cat.tptpkg' 2>&1", BIN, path, d);
    CHECK_MSG(rc == 0 && test_contains(out, "6 samples bit-exact (270 int8 values)"),
              "%s", out);
    free(out);
    return TEST_PASS;
}

/* Contradictory board INIs are refused naming the fields: an overlapping
 * memory map, an unknown architecture, a stack larger than the RAM. */
TEST(test_mcu_board_contradictions)
{
    if (!plugin_built("mcu-riscv")) SKIP("plugin mcu-riscv not built");
    const char *d = test_tmpdir();
    static const struct { const char *body, *want; } cases[] = {
        {"arch = rv32\nflash_bytes = 4M\nram_bytes = 1M\n[toolchain]\n"
         "prefix = riscv64-unknown-elf-\n[link]\nflash_origin = 0x80000000\n"
         "flash_length = 0x400000\nram_origin = 0x80200000\nram_length = 0x100000\n"
         "[emulator]\nqemu = qemu-system-riscv32\nmachine = virt\n",
         "must not overlap"},
        {"arch = mips\nflash_bytes = 4M\nram_bytes = 1M\n", "arch = 'mips'"},
        {"arch = rv32\nflash_bytes = 4M\nram_bytes = 1M\n[toolchain]\n"
         "prefix = riscv64-unknown-elf-\n[link]\nflash_origin = 0x80000000\n"
         "flash_length = 0x400000\nram_origin = 0x80400000\nram_length = 0x1000\n"
         "stack_bytes = 8192\n[emulator]\nqemu = qemu-system-riscv32\nmachine = virt\n",
         "stack_bytes = 8192"},
    };
    char path[1024], board[1024], text[1024], *out = NULL;
    snprintf(path, sizeof path, "%s/small.crir", d);
    CHECK(test_write(path, small_ir) == 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(board, sizeof board, "%s/b%zu.ini", d, i);
        snprintf(text, sizeof text, "[board]\nname = b%zu\ntarget = mcu-riscv\n%s",
                 i, cases[i].body);
        CHECK(test_write(board, text) == 0);
        int rc = test_sh(&out, "'%s' compile '%s' --target mcu-riscv --board '%s' "
                         "-o '%s/b.tptpkg' 2>&1", BIN, path, board, d);
        CHECK_MSG(rc != 0 && test_contains(out, cases[i].want), "case %zu: %s", i, out);
        free(out);
    }
    return TEST_PASS;
}
