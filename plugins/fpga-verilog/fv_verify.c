/* fv_verify.c - verification (Verilator lint, Icarus and Verilator
 * simulation against the reference outputs) and iCE40 synthesis. */
#include "fv_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct vr {
    const crucible_host *h;
    const crucible_host_tools *t;
    const crucible_verify_ctx *ctx;
} vr;

static int run(vr *v, const char *const *argv, const char *pkg, const char *log,
               crucible_tool_result *res, double timeout)
{
    crucible_tool_request req;
    memset(&req, 0, sizeof req);
    memset(res, 0, sizeof *res);
    req.hdr = (crucible_header)CRUCIBLE_HEADER(crucible_tool_request);
    res->hdr = (crucible_header)CRUCIBLE_HEADER(crucible_tool_result);
    req.argv = argv;
    req.cwd = v->ctx->workdir;
    req.timeout_s = timeout;
    req.debian_package = pkg;
    if (!strcmp(argv[0], "vvp") || argv[0][0] == '/') req.version_arg = "";
    if (!strcmp(argv[0], "iverilog")) req.version_arg = "-V";
    if (!strcmp(argv[0], "icepack")) req.version_arg = "";
    int st = v->t->run(v->h, &req, res);
    if (log && res->output && v->ctx->sink && v->ctx->sink->emit)
        v->ctx->sink->emit(v->ctx->sink->ctx, log, res->output, res->output_len);
    return st;
}

static void excerpt(const char *s, char *out, size_t n)
{
    if (!s) s = "";
    size_t l = strlen(s);
    const char *p = l > n - 1 ? s + l - (n - 1) : s;
    snprintf(out, n, "%s", p);
    for (char *q = out; *q; q++) if (*q == '\n') *q = ' ';
}

static int write_text(const char *dir, const char *name, const fv_buf *b)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t put = b->len ? fwrite(b->data, 1, b->len, f) : 0;
    return (fclose(f) || put != b->len) ? -1 : 0;
}

/* Parses "CYCLES n" lines and "RESULT e errors" of a simulation. */
static int sim_result(const char *out, long *cycles, long *errors)
{
    *cycles = -1;
    *errors = -1;
    const char *p = out;
    while (p && (p = strstr(p, "CYCLES ")) != NULL) {
        *cycles = strtol(p + 7, NULL, 10);
        p += 7;
    }
    p = out ? strstr(out, "RESULT ") : NULL;
    if (p) *errors = strtol(p + 7, NULL, 10);
    return *errors == 0 && *cycles >= 0;
}

static void report_sim(vr *v, const char *step, const char *tool, int st,
                       crucible_tool_result *res, double est)
{
    char msg[600], met[200], ex[300];
    long cyc, err;
    if (st == CRUCIBLE_E_SKIPPED) {
        v->ctx->report(v->ctx->ctx, step, tool, CRUCIBLE_VERDICT_SKIPPED,
                       res->output && *res->output ? res->output : "tool not found", NULL);
        return;
    }
    int ok = st == CRUCIBLE_OK && sim_result(res->output, &cyc, &err);
    if (!ok) {
        excerpt(res->output, ex, sizeof ex);
        snprintf(msg, sizeof msg, "%s failed (%s): %s", tool, crucible_status_str(st), ex);
        v->ctx->report(v->ctx->ctx, step, tool, CRUCIBLE_VERDICT_FAIL, msg, NULL);
        return;
    }
    snprintf(msg, sizeof msg, "%u sample(s) bit-exact; %ld cycles per inference "
             "measured, %.0f estimated", v->ctx->n_samples, cyc, est);
    snprintf(met, sizeof met, "{\"cycles\":%ld,\"cycles_estimate\":%.0f,\"seconds\":%.3f}",
             cyc, est, res->seconds);
    v->ctx->report(v->ctx->ctx, step, tool, CRUCIBLE_VERDICT_PASS, msg, met);
}

static double num_after(const char *s, const char *key)
{
    const char *p = s ? strstr(s, key) : NULL;
    return p ? strtod(p + strlen(key), NULL) : -1;
}

int fv_verify(const crucible_host *h, const crucible_verify_ctx *ctx)
{
    vr v = {h, NULL, ctx};
    const crucible_graph_view *g = ctx->graph;
    v.t = h->get_extension ? h->get_extension(h, CRUCIBLE_EXT_TOOLS) : NULL;
    if (!v.t || !v.t->run || !v.t->free_result) {
        ctx->report(ctx->ctx, "simulate", "iverilog", CRUCIBLE_VERDICT_SKIPPED,
                    "the host offers no tools service", NULL);
        return CRUCIBLE_OK;
    }
    if (g->n_inputs != 1 || g->n_outputs != 1) return CRUCIBLE_E_INVALID;
    const crucible_tensor_view *ti = crucible_graph_tensor(g, g->inputs[0]);
    const crucible_tensor_view *to = crucible_graph_tensor(g, g->outputs[0]);
    uint64_t K0 = crucible_tensor_numel(ti), MO = crucible_tensor_numel(to);
    /* board DSPs: the engines put lanes beyond them in LUTs */
    long ndsp = 8;
    if (ctx->board && CRUCIBLE_HAS_FIELD(*ctx->board, crucible_board, doc) &&
        ctx->board->doc && crucible_kv_get(ctx->board->doc, "resources", "dsp"))
        ndsp = strtol(crucible_kv_get(ctx->board->doc, "resources", "dsp"), NULL, 10);
    /* cycle estimate: the same analysis as compile */
    fv_design *D = crucible_alloc(h, sizeof *D);
    if (!D) return CRUCIBLE_E_NOMEM;
    char bwhy[512];
    int brc = fv_build(g, ctx->config, ndsp, D, bwhy, sizeof bwhy);
    double est = brc ? -1 : fv_design_cycles(D);
    crucible_free(h, D, sizeof *D);
    if (brc) {
        ctx->report(ctx->ctx, "simulate", "iverilog", CRUCIBLE_VERDICT_FAIL, bwhy, NULL);
        return CRUCIBLE_OK;
    }
    fv_buf in = {h, NULL, 0, 0, 0}, out = in, tb = in;
    uint32_t ns = ctx->n_samples;
    for (uint32_t s = 0; s < ns; s++) {
        const crucible_tensor_view *x = ctx->samples[s]->inputs[0];
        const crucible_tensor_view *y = ctx->samples[s]->outputs[0];
        for (uint64_t k = 0; k < K0; k++)
            fv_printf(&in, "%02x\n", ((const uint8_t *)x->data)[k]);
        for (uint64_t k = 0; k < MO; k++)
            fv_printf(&out, "%02x\n", ((const uint8_t *)y->data)[k]);
    }
    fv_printf(&tb,
        "`timescale 1ns/1ps\n"
        "// generated testbench: feeds every sample, compares every output byte\n"
        "module tb;\n    reg clk = 1'b0, rst = 1'b1;\n    always #5 clk = ~clk;\n"
        "    reg [7:0] in_data = 8'd0;\n    reg in_valid = 1'b0;\n    wire in_ready;\n"
        "    wire [7:0] out_data;\n    wire out_valid, done;\n    reg out_ready = 1'b1;\n"
        "    cr_core dut (.clk(clk), .rst(rst), .in_data(in_data), .in_valid(in_valid),\n"
        "        .in_ready(in_ready), .out_data(out_data), .out_valid(out_valid),\n"
        "        .out_ready(out_ready), .done(done));\n"
        "    reg [7:0] xin [0:%llu];\n    reg [7:0] yexp [0:%llu];\n"
        "    integer s, i, errors, cyc, t0;\n"
        "    always @(posedge clk) cyc <= cyc + 1;\n"
        "    initial begin\n        cyc = 0; errors = 0; t0 = 0;\n"
        "        $readmemh(\"samples_in.hex\", xin);\n        $readmemh(\"samples_out.hex\", yexp);\n"
        "        repeat (3) @(negedge clk);\n        rst = 1'b0;\n"
        "        for (s = 0; s < %u; s = s + 1) begin\n"
        "            for (i = 0; i < %llu; i = i + 1) begin\n"
        "                @(negedge clk); in_data = xin[s*%llu+i]; in_valid = 1'b1;\n"
        "                while (!in_ready) @(negedge clk);\n            end\n"
        "            @(negedge clk); in_valid = 1'b0; t0 = cyc;\n"
        "            for (i = 0; i < %llu; i = i + 1) begin\n"
        "                while (!out_valid) @(negedge clk);\n"
        "                if (i == 0) $display(\"CYCLES %%0d\", cyc - t0 + 1);\n"
        "                if (out_data !== yexp[s*%llu+i]) begin\n"
        "                    errors = errors + 1;\n"
        "                    $display(\"MISMATCH sample %%0d byte %%0d got %%02x expected %%02x\", s, i, out_data, yexp[s*%llu+i]);\n"
        "                end\n                @(negedge clk);\n            end\n        end\n"
        "        $display(\"RESULT %%0d errors\", errors);\n        $finish;\n    end\n"
        "    initial begin #%llu; $display(\"TIMEOUT\"); $finish; end\nendmodule\n",
        (unsigned long long)(ns * K0 - 1), (unsigned long long)(ns * MO - 1), ns,
        (unsigned long long)K0, (unsigned long long)K0, (unsigned long long)MO,
        (unsigned long long)MO, (unsigned long long)MO,
        (unsigned long long)(ns + 1) * (unsigned long long)(est + 4 * (K0 + MO) + 100) * 10ull);
    int bad = in.failed || out.failed || tb.failed ||
              write_text(ctx->workdir, "samples_in.hex", &in) ||
              write_text(ctx->workdir, "samples_out.hex", &out) ||
              write_text(ctx->workdir, "tb.v", &tb);
    if (!bad && ctx->sink && ctx->sink->emit) {
        ctx->sink->emit(ctx->sink->ctx, "tb/tb.v", tb.data, tb.len);
        ctx->sink->emit(ctx->sink->ctx, "tb/samples_in.hex", in.data, in.len);
        ctx->sink->emit(ctx->sink->ctx, "tb/samples_out.hex", out.data, out.len);
    }
    fv_buf_free(&in); fv_buf_free(&out); fv_buf_free(&tb);
    if (bad) return CRUCIBLE_E_IO;

    crucible_tool_result res;
    char msg[700], ex[400], met[400];
    /* lint */
    const char *lint[] = {"verilator", "--lint-only", "-Wall", "--top-module", "top",
                          "top.v", "core.v", NULL};
    int st = run(&v, lint, "verilator", "logs/lint.txt", &res, 120);
    excerpt(res.output, ex, sizeof ex);
    snprintf(msg, sizeof msg, st == CRUCIBLE_OK ? "verilator --lint-only -Wall: clean" : "%s", ex);
    ctx->report(ctx->ctx, "lint", "verilator",
                st == CRUCIBLE_E_SKIPPED ? CRUCIBLE_VERDICT_SKIPPED
                : st == CRUCIBLE_OK && !strstr(res.output ? res.output : "", "%Warning")
                    ? CRUCIBLE_VERDICT_PASS : CRUCIBLE_VERDICT_FAIL,
                msg, NULL);
    v.t->free_result(h, &res);
    /* Icarus */
    const char *iv[] = {"iverilog", "-g2005", "-o", "sim_iv", "-s", "tb", "tb.v", "core.v", NULL};
    st = run(&v, iv, "iverilog", "logs/iverilog.txt", &res, 120);
    if (st == CRUCIBLE_OK) {
        v.t->free_result(h, &res);
        const char *vvp[] = {"vvp", "-n", "sim_iv", NULL};
        st = run(&v, vvp, "iverilog", "logs/sim_icarus.txt", &res, 300);
    }
    report_sim(&v, "simulate-icarus", "iverilog", st, &res, est);
    v.t->free_result(h, &res);
    /* Verilator */
    const char *vl[] = {"verilator", "--binary", "-Wno-fatal", "-Wno-lint", "-Wno-style",
                        "--top-module", "tb", "-o", "sim_vl", "tb.v", "core.v", NULL};
    st = run(&v, vl, "verilator", "logs/verilator_build.txt", &res, 600);
    if (st == CRUCIBLE_OK) {
        v.t->free_result(h, &res);
        char exe[4096];
        snprintf(exe, sizeof exe, "%s/obj_dir/sim_vl", ctx->workdir);
        const char *sv[] = {exe, NULL};
        st = run(&v, sv, NULL, "logs/sim_verilator.txt", &res, 300);
    }
    report_sim(&v, "simulate-verilator", "verilator", st, &res, est);
    v.t->free_result(h, &res);
    /* synthesis (off: [target.fpga-verilog] synthesis = off, e.g. to
     * verify the RTL of a design quickly) */
    const char *syn = crucible_kv_get(ctx->config, "target.fpga-verilog", "synthesis");
    if (syn && (!strcmp(syn, "off") || !strcmp(syn, "0") || !strcmp(syn, "no"))) {
        ctx->report(ctx->ctx, "synthesis", "yosys", CRUCIBLE_VERDICT_SKIPPED,
                    "synthesis = off in [target.fpga-verilog] of the config: "
                    "no bitstream", NULL);
        return CRUCIBLE_OK;
    }
    /* synthesis */
    const crucible_board *bd = ctx->board;
    const char *dev = "up5k", *pkg = "sg48";
    double clk = 12;
    if (bd && CRUCIBLE_HAS_FIELD(*bd, crucible_board, doc) && bd->doc) {
        const char *x;
        if ((x = crucible_kv_get(bd->doc, "board", "device"))) dev = x;
        if ((x = crucible_kv_get(bd->doc, "board", "package"))) pkg = x;
        if ((x = crucible_kv_get(bd->doc, "board", "clock_mhz"))) clk = strtod(x, NULL);
    }
    const char *ys[] = {"yosys", "-q", "-l", "yosys.log", "-p",
                        ndsp >= 4
                            ? "read_verilog top.v core.v; synth_ice40 -dsp -top top -json top.json"
                            : "read_verilog top.v core.v; synth_ice40 -top top -json top.json",
                        NULL};
    st = run(&v, ys, "yosys", "logs/yosys.txt", &res, 600);
    double tsyn = res.seconds;
    if (st != CRUCIBLE_OK) {
        excerpt(res.output, ex, sizeof ex);
        ctx->report(ctx->ctx, "synthesis", "yosys",
                    st == CRUCIBLE_E_SKIPPED ? CRUCIBLE_VERDICT_SKIPPED : CRUCIBLE_VERDICT_FAIL,
                    ex, NULL);
        v.t->free_result(h, &res);
        return CRUCIBLE_OK;
    }
    v.t->free_result(h, &res);
    if (!ctx->board) {
        /* no board: no pins, so no place-and-route and no bitstream */
        ctx->report(ctx->ctx, "place-and-route", "nextpnr-ice40",
                    CRUCIBLE_VERDICT_SKIPPED,
                    "no board given (--board NAME; see 'crucible boards'): "
                    "synthesis only, no bitstream", NULL);
        return CRUCIBLE_OK;
    }
    char devopt[32], freq[32];
    snprintf(devopt, sizeof devopt, "--%s", dev);
    snprintf(freq, sizeof freq, "%g", clk);
    const char *pnr[] = {"nextpnr-ice40", devopt, "--package", pkg, "--pcf", "top.pcf",
                         "--json", "top.json", "--asc", "top.asc", "--freq", freq,
                         "--seed", "1", NULL};
    st = run(&v, pnr, "nextpnr-ice40", "logs/nextpnr.txt", &res, 600);
    double tpnr = res.seconds;
    if (st != CRUCIBLE_OK) {
        excerpt(res.output, ex, sizeof ex);
        ctx->report(ctx->ctx, "place-and-route", "nextpnr-ice40",
                    st == CRUCIBLE_E_SKIPPED ? CRUCIBLE_VERDICT_SKIPPED : CRUCIBLE_VERDICT_FAIL,
                    ex, NULL);
        v.t->free_result(h, &res);
        return CRUCIBLE_OK;
    }
    /* utilisation and the last (post-route) Fmax */
    double lc = num_after(res.output, "ICESTORM_LC: "), dsp = num_after(res.output, "ICESTORM_DSP: ");
    double ram = num_after(res.output, "ICESTORM_RAM: ");
    double fmax = -1;
    const char *p = res.output;
    while (p && (p = strstr(p, "Max frequency for clock")) != NULL) {
        const char *c = strstr(p, "': ");
        if (c) fmax = strtod(c + 3, NULL);
        p += 10;
    }
    v.t->free_result(h, &res);
    const char *pk[] = {"icepack", "top.asc", "top.bin", NULL};
    st = run(&v, pk, "fpga-icestorm", "logs/icepack.txt", &res, 120);
    v.t->free_result(h, &res);
    char binp[4096];
    snprintf(binp, sizeof binp, "%s/top.bin", ctx->workdir);
    if (st == CRUCIBLE_OK && ctx->sink && ctx->sink->emit_file) {
        ctx->sink->emit_file(ctx->sink->ctx, "bitstream/top.bin", binp);
        snprintf(binp, sizeof binp, "%s/top.json", ctx->workdir);
    }
    snprintf(msg, sizeof msg, "%s bitstream: %.0f LCs, %.0f DSP, %.0f BRAM; post-route "
             "Fmax %.2f MHz (board clock %g MHz); latency %.0f cycles = %.2f us; "
             "yosys %.1f s, nextpnr %.1f s",
             st == CRUCIBLE_OK ? "top.bin" : "no", lc, dsp, ram, fmax, clk, est,
             fmax > 0 ? est / fmax : -1.0, tsyn, tpnr);
    snprintf(met, sizeof met, "{\"lc\":%.0f,\"dsp\":%.0f,\"bram\":%.0f,\"fmax_mhz\":%.2f,"
             "\"cycles_estimate\":%.0f,\"yosys_s\":%.2f,\"nextpnr_s\":%.2f}",
             lc, dsp, ram, fmax, est, tsyn, tpnr);
    ctx->report(ctx->ctx, "bitstream", "icepack",
                st == CRUCIBLE_OK ? (fmax >= clk ? CRUCIBLE_VERDICT_PASS : CRUCIBLE_VERDICT_FAIL)
                : st == CRUCIBLE_E_SKIPPED ? CRUCIBLE_VERDICT_SKIPPED : CRUCIBLE_VERDICT_FAIL,
                msg, met);
    if (ctx->sink && ctx->sink->emit) ctx->sink->emit(ctx->sink->ctx, "report.txt", msg, strlen(msg));
    if (ctx->sink && ctx->sink->emit) ctx->sink->emit(ctx->sink->ctx, "report.json", met, strlen(met));
    return CRUCIBLE_OK;
}
