/*
 * fpga_verilog.c - the fpga-verilog target plugin: integer (int8) dense
 * networks as plain Verilog-2005 (a MAC engine with P parallel lanes per
 * layer, weights in $readmemh ROMs, one shared requantisation unit that is
 * bit-exact with crk_mbqm), verified in Verilator and Icarus Verilog against
 * the reference interpreter, and synthesised for iCE40 boards with Yosys,
 * nextpnr-ice40 and icepack. See docs/fpga.md.
 *
 * Threading: query() is [thread-safe] (pure, allocation-free); everything
 * else runs on the host's main thread.
 */
#include "fv_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct fv_state {
    const crucible_host *host;
} fv_state;

static const char *bget(const crucible_board *b, const char *sec, const char *key)
{
    if (!b || !CRUCIBLE_HAS_FIELD(*b, crucible_board, doc) || !b->doc) return NULL;
    return crucible_kv_get(b->doc, sec, key);
}

static int64_t bnum(const crucible_board *b, const char *sec, const char *key,
                    int64_t dflt)
{
    const char *v = bget(b, sec, key);
    return v && *v ? strtoll(v, NULL, 10) : dflt;
}

/* Board resources; defaults: the iCEBreaker's UP5K. */
static void board_res(const crucible_board *b, fv_board *r)
{
    r->name = b && b->name ? b->name : "icebreaker";
    r->device = bget(b, "board", "device");
    if (!r->device) r->device = "up5k";
    r->package = bget(b, "board", "package");
    if (!r->package) r->package = "sg48";
    const char *c = bget(b, "board", "clock_mhz");
    r->clock_mhz = c ? strtod(c, NULL) : 12.0;
    r->lc = bnum(b, "resources", "lc", 5280);
    r->dsp = bnum(b, "resources", "dsp", 8);
    r->bram = bnum(b, "resources", "bram", 30);
    r->spram = bnum(b, "resources", "spram", 4);
    r->pcf_pins = NULL;
}

static const char *const pin_keys[] = {"clk", "in_data", "out_data", "in_valid",
                                       "in_ready", "out_valid", "out_ready",
                                       "done", NULL};

static int fv_accept_board(void *state, const crucible_board *board, char *why,
                           size_t why_len)
{
    (void)state;
    static const char *const req[][2] = {
        {"board", "device"}, {"board", "package"}, {"board", "clock_mhz"},
        {"resources", "lc"}, {"resources", "dsp"}, {"resources", "bram"}};
    for (size_t i = 0; i < sizeof req / sizeof req[0]; i++)
        if (!bget(board, req[i][0], req[i][1])) {
            snprintf(why, why_len, "[%s] %s is required", req[i][0], req[i][1]);
            return CRUCIBLE_E_BOARD;
        }
    for (int i = 0; pin_keys[i]; i++)
        if (!bget(board, "pins", pin_keys[i])) {
            snprintf(why, why_len, "[pins] %s is required (the package pin(s) "
                     "of the stream port)", pin_keys[i]);
            return CRUCIBLE_E_BOARD;
        }
    const char *dev = bget(board, "board", "device");
    if (strcmp(dev, "up5k") && strcmp(dev, "hx8k") && strcmp(dev, "hx1k") &&
        strcmp(dev, "lp8k")) {
        snprintf(why, why_len, "[board] device = %s: nextpnr-ice40 devices "
                 "up5k, hx8k, hx1k, lp8k only", dev);
        return CRUCIBLE_E_BOARD;
    }
    if (strtod(bget(board, "board", "clock_mhz"), NULL) <= 0) {
        snprintf(why, why_len, "[board] clock_mhz must be > 0");
        return CRUCIBLE_E_BOARD;
    }
    return CRUCIBLE_OK;
}

#define FITS(s, field) \
    ((size_t)(s)->size >= offsetof(crucible_support, field) + sizeof((s)->field))

static void set_reason(crucible_support *out, const char *why)
{
    if (!FITS(out, reason)) return;
    size_t n = strlen(why);
    if (n >= sizeof out->reason) n = sizeof out->reason - 1;
    memcpy(out->reason, why, n);
    out->reason[n] = 0;
}

static int fv_query(void *state, const crucible_query_ctx *ctx,
                    const crucible_graph_view *g, uint32_t node,
                    crucible_support *out)
{
    (void)state;
    char why[256];
    fv_layer L;
    if (!g || !out || node >= g->n_nodes) return CRUCIBLE_E_INVALID;
    const crucible_node_view *n = g->nodes[node];
    if (n->op == CRUCIBLE_OP_RESHAPE) {
        if (FITS(out, level)) out->level = CRUCIBLE_SUPPORT_YES;
        if (FITS(out, cycles)) out->cycles = 0;
        set_reason(out, "free: the engines' buffers are row-major");
        return CRUCIBLE_OK;
    }
    /* requantize / relu / clip: fused into the dense / conv2d before it */
    if (n->op == CRUCIBLE_OP_REQUANTIZE || n->op == CRUCIBLE_OP_RELU ||
        n->op == CRUCIBLE_OP_CLIP) {
        uint32_t found = UINT32_MAX;
        for (uint32_t i = 0; i < node; i++)
            if ((g->nodes[i]->op == CRUCIBLE_OP_DENSE ||
                 g->nodes[i]->op == CRUCIBLE_OP_CONV2D) &&
                fv_chain(g, i, &L, why, sizeof why) == CRUCIBLE_OK &&
                (L.rq == node || L.act == node))
                found = i;
        if (found != UINT32_MAX) {
            if (FITS(out, level)) out->level = CRUCIBLE_SUPPORT_YES;
            if (FITS(out, cycles)) out->cycles = 0;
            set_reason(out, "fused into the MAC engine's requantisation");
            return CRUCIBLE_OK;
        }
        if (n->op == CRUCIBLE_OP_REQUANTIZE) {
            snprintf(why, sizeof why, "requantize %s: supported only fused after "
                     "an integer dense / conv2d (dense -> requantize fixed_q31 -> "
                     "relu/clip with the same scale)", n->name);
            set_reason(out, why);
            return CRUCIBLE_OK;
        }
    }
    int rc = (n->op == CRUCIBLE_OP_DENSE || n->op == CRUCIBLE_OP_CONV2D)
                 ? fv_chain(g, node, &L, why, sizeof why)
                 : fv_pool(g, node, &L, why, sizeof why);
    if (rc != CRUCIBLE_OK) {
        set_reason(out, why);
        return CRUCIBLE_OK;
    }
    const crucible_kv_doc *cfg = ctx && CRUCIBLE_HAS_FIELD(ctx->hdr, crucible_query_ctx, config) ? ctx->config : NULL;
    const crucible_board *bd = ctx ? ctx->board : NULL;
    L.P = L.kind == FV_MAC ? fv_parallel_of(cfg, n->name) : 1;
    if (fv_check_parallel(&L, L.P, n->name, why, sizeof why)) {
        set_reason(out, why);
        return CRUCIBLE_OK;
    }
    fv_board r;
    board_res(bd, &r);
    /* DSPs left by the requantiser (4) and the MAC engines before this
     * one, in graph order, as compile assigns them */
    int64_t spare = r.dsp >= 4 ? r.dsp - 4 : 0;
    for (uint32_t i = 0; i < node && spare > 0; i++)
        if (g->nodes[i]->op == CRUCIBLE_OP_DENSE || g->nodes[i]->op == CRUCIBLE_OP_CONV2D)
            spare -= fv_parallel_of(cfg, g->nodes[i]->name);
    if (spare < 0) spare = 0;
    L.dsp_lanes = L.kind == FV_MAC ? (int32_t)(L.P < spare ? L.P : spare) : 0;
    fv_cost c;
    fv_layer_cost(&L, &c);
    if (c.bram > r.bram || c.lut > r.lc) {
        snprintf(why, sizeof why, "layer %s (%s, parallel %d) needs %lld "
                 "BRAM and ~%lld LCs; %s has %lld BRAM and %lld LCs (try a lower "
                 "parallel, int4 weights, or a larger board)", n->name,
                 n->op_name, L.P, (long long)c.bram, (long long)c.lut, r.name,
                 (long long)r.bram, (long long)r.lc);
        set_reason(out, why);
        return CRUCIBLE_OK;
    }
    if (FITS(out, level)) out->level = CRUCIBLE_SUPPORT_YES;
    if (FITS(out, cycles)) out->cycles = c.cycles;
    if (FITS(out, seconds)) out->seconds = c.cycles / (r.clock_mhz * 1e6);
    if (FITS(out, lut)) out->lut = c.lut;
    if (FITS(out, ff)) out->ff = c.ff;
    if (FITS(out, dsp)) out->dsp = c.dsp;
    if (FITS(out, bram)) out->bram = c.bram;
    if (FITS(out, spram)) out->spram = 0;
    if (L.kind == FV_MAC) {
        double macs = (double)L.K * L.OC * L.OH * L.OW;
        snprintf(why, sizeof why, "%s %dx%dx%d -> %dx%dx%d, %d MAC lane(s) (%d "
                 "on DSPs): %.0f cycles (MAC efficiency %.2f)", n->op_name, L.C,
                 L.H, L.W, L.OC, L.OH, L.OW, L.P, L.dsp_lanes, c.cycles,
                 macs / (c.cycles * L.P));
    } else {
        snprintf(why, sizeof why, "%s %dx%dx%d -> %dx%dx%d: %.0f cycles (one "
                 "tap a cycle)", n->op_name, L.C, L.H, L.W, L.OC, L.OH, L.OW,
                 c.cycles);
    }
    set_reason(out, why);
    return CRUCIBLE_OK;
}

/* ---- compile -------------------------------------------------------------*/
static int write_buf(const char *dir, const char *name, const fv_buf *b,
                     const crucible_artifact_sink *sink)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return CRUCIBLE_E_IO;
    size_t put = b->len ? fwrite(b->data, 1, b->len, f) : 0;
    if (fclose(f) || put != b->len) return CRUCIBLE_E_IO;
    if (sink && sink->emit) {
        char an[300];
        snprintf(an, sizeof an, "rtl/%s", name);
        return sink->emit(sink->ctx, an, b->data ? b->data : "", b->len);
    }
    return CRUCIBLE_OK;
}

static void gen_board_files(fv_buf *top, fv_buf *pcf, const crucible_board *bd)
{
    fv_printf(top,
        "// board top: power-on reset and the stream port on package pins\n"
        "module top (\n    input  wire       clk,\n    input  wire [7:0] in_data,\n"
        "    input  wire       in_valid,\n    output wire       in_ready,\n"
        "    output wire [7:0] out_data,\n    output wire       out_valid,\n"
        "    input  wire       out_ready,\n    output wire       done\n);\n"
        "    reg [3:0] por = 4'd0;\n"
        "    always @(posedge clk) if (!por[3]) por <= por + 4'd1;\n"
        "    cr_core u_core (.clk(clk), .rst(~por[3]), .in_data(in_data),\n"
        "        .in_valid(in_valid), .in_ready(in_ready), .out_data(out_data),\n"
        "        .out_valid(out_valid), .out_ready(out_ready), .done(done));\n"
        "endmodule\n");
    for (int i = 0; pin_keys[i]; i++) {
        const char *v = bget(bd, "pins", pin_keys[i]);
        if (!v) continue;
        int multi = !strcmp(pin_keys[i], "in_data") || !strcmp(pin_keys[i], "out_data");
        int bit = 0;
        const char *p = v;
        while (*p) {
            while (*p == ' ') p++;
            if (!*p) break;
            char *e;
            long pin = strtol(p, &e, 10);
            if (e == p) break;
            if (multi) fv_printf(pcf, "set_io %s[%d] %ld\n", pin_keys[i], bit++, pin);
            else fv_printf(pcf, "set_io %s %ld\n", pin_keys[i], pin);
            p = e;
        }
    }
}

static int fv_compile(void *state, const crucible_compile_ctx *ctx)
{
    fv_state *s = state;
    const crucible_host *h = s->host;
    char why[512];
    fv_design *D = crucible_alloc(h, sizeof *D);
    if (!D) return CRUCIBLE_E_NOMEM;
    fv_board br;
    board_res(ctx->board, &br);
    int rc = fv_build(ctx->graph, ctx->config, br.dsp, D, why, sizeof why);
    if (rc) {
        h->log(h, CRUCIBLE_LOG_ERROR, "%s", why);
        crucible_free(h, D, sizeof *D);
        return rc;
    }
    /* capacity: every engine's estimate plus the requantiser and the core */
    fv_cost sum, c;
    fv_common_cost(br.dsp >= 4, &sum);
    for (uint32_t i = 0; i < D->n; i++) {
        fv_layer_cost(&D->L[i], &c);
        sum.lut += c.lut;
        sum.ff += c.ff;
        sum.dsp += c.dsp;
        sum.bram += c.bram;
    }
    sum.bram += (D->in_bytes + 511) / 512;
    if (sum.lut > br.lc || sum.bram > br.bram || sum.dsp > br.dsp) {
        int64_t lanes = 0;
        for (uint32_t i = 0; i < D->n; i++) lanes += D->L[i].kind == FV_MAC ? D->L[i].P : 0;
        h->log(h, CRUCIBLE_LOG_ERROR, "board %s: the design needs ~%lld LCs, "
               "%lld BRAM, %lld DSP (%lld MAC lanes, %lld of them LUT "
               "multipliers); the board has %lld LCs, %lld BRAM, %lld DSP. "
               "Lower [layer.*] parallel, use int4/ternary weights or a larger "
               "board.", br.name, (long long)sum.lut, (long long)sum.bram,
               (long long)sum.dsp, (long long)lanes,
               (long long)(lanes - (sum.dsp - (br.dsp >= 4 ? 4 : 0))),
               (long long)br.lc, (long long)br.bram, (long long)br.dsp);
        crucible_free(h, D, sizeof *D);
        return CRUCIBLE_E_CAPACITY;
    }
    fv_buf core = {h, NULL, 0, 0, 0}, top = core, pcf = core;
    fv_core_rtl(&core, D);
    gen_board_files(&top, &pcf, ctx->board);
    rc = write_buf(ctx->workdir, "core.v", &core, ctx->sink);
    if (!rc) rc = write_buf(ctx->workdir, "top.v", &top, ctx->sink);
    if (!rc) rc = write_buf(ctx->workdir, "top.pcf", &pcf, ctx->sink);
    for (uint32_t i = 0; !rc && i < D->n; i++) {
        fv_buf w = core, b = core, m = core, sh = core;
        w.data = b.data = m.data = sh.data = NULL;
        w.cap = b.cap = m.cap = sh.cap = w.len = b.len = m.len = sh.len = 0;
        fv_layer_hex(&D->L[i], &w, &b, &m, &sh);
        char nm[64];
        snprintf(nm, sizeof nm, "l%u_w.hex", i);
        rc = write_buf(ctx->workdir, nm, &w, ctx->sink);
        snprintf(nm, sizeof nm, "l%u_b.hex", i);
        if (!rc) rc = write_buf(ctx->workdir, nm, &b, ctx->sink);
        snprintf(nm, sizeof nm, "l%u_m.hex", i);
        if (!rc) rc = write_buf(ctx->workdir, nm, &m, ctx->sink);
        snprintf(nm, sizeof nm, "l%u_s.hex", i);
        if (!rc) rc = write_buf(ctx->workdir, nm, &sh, ctx->sink);
        fv_buf_free(&w); fv_buf_free(&b); fv_buf_free(&m); fv_buf_free(&sh);
    }
    if (core.failed || top.failed || pcf.failed) rc = CRUCIBLE_E_NOMEM;
    fv_buf_free(&core); fv_buf_free(&top); fv_buf_free(&pcf);
    crucible_free(h, D, sizeof *D);
    return rc;
}


static int fv_verify_slot(void *state, const crucible_verify_ctx *ctx)
{
    fv_state *s = state;
    return fv_verify(s->host, ctx);
}

static const crucible_boundary fv_stream = {
    sizeof(crucible_boundary), CRUCIBLE_LINK_STREAM, 0.0, 8, 0.0};
static const crucible_boundary *const fv_boundaries[] = {&fv_stream, NULL};

static const crucible_target fv_target = {
    CRUCIBLE_HEADER(crucible_target),
    "int8 dense networks as Verilog-2005, bit-exact in Verilator and Icarus, "
    "synthesised for iCE40 (Yosys, nextpnr-ice40, icepack)",
    fv_boundaries, fv_accept_board, fv_query, fv_compile, fv_verify_slot};

static int fv_init(const crucible_host *host, void **state)
{
    if (!host || !host->realloc || !host->log || !state) return CRUCIBLE_E_INVALID;
    fv_state *s = crucible_alloc(host, sizeof *s);
    if (!s) return CRUCIBLE_E_NOMEM;
    s->host = host;
    *state = s;
    return CRUCIBLE_OK;
}

static void fv_deinit(void *state)
{
    fv_state *s = state;
    if (s) crucible_free(s->host, s, sizeof *s);
}

static const void *fv_get_interface(void *state, const char *id)
{
    (void)state;
    return id && !strcmp(id, CRUCIBLE_IFACE_TARGET) ? &fv_target : NULL;
}

static const char *const fv_interfaces[] = {CRUCIBLE_IFACE_TARGET, NULL};

CRUCIBLE_EXPORT const crucible_plugin_entry fv_entry
    __asm__(CRUCIBLE_ENTRY_SYMBOL) = {
    CRUCIBLE_HEADER(crucible_plugin_entry), CRUCIBLE_ABI_TAG, 0, FV_ID,
    "FPGA (Verilog, iCE40)", FV_VERSION, "crucible",
    "int8 dense networks as Verilog-2005: verified in Verilator and Icarus, "
    "synthesised to an iCE40 bitstream",
    fv_interfaces, fv_init, fv_deinit, fv_get_interface};
