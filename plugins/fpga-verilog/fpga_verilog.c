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

/* Parallel lanes for layer `name`: [layer.NAME] parallel, else
 * [target.fpga-verilog] parallel, else 1. */
static int32_t parallel_of(const crucible_kv_doc *cfg, const char *name)
{
    char sec[300];
    snprintf(sec, sizeof sec, "layer.%s", name);
    const char *v = crucible_kv_get(cfg, sec, "parallel");
    if (!v) v = crucible_kv_get(cfg, "target.fpga-verilog", "parallel");
    return v ? (int32_t)strtol(v, NULL, 10) : 1;
}

static int check_parallel(const fv_layer *L, int32_t P, const char *name,
                          char *why, size_t why_len)
{
    if (P < 1 || P > 64 || L->M % P) {
        int32_t best = 1;
        for (int32_t d = 1; d <= 64 && d <= L->M; d++)
            if (L->M % d == 0 && d <= (P > 0 ? P : 1)) best = d;
        snprintf(why, why_len, "layer %s: parallel = %d must be 1..64 and "
                 "divide the %d outputs (each lane computes M/P outputs); "
                 "try parallel = %d", name, P, L->M, best);
        return CRUCIBLE_E_INVALID;
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
    /* requantize / relu / clip: part of the chain of the dense before */
    uint32_t di = node;
    if (n->op == CRUCIBLE_OP_REQUANTIZE || n->op == CRUCIBLE_OP_RELU ||
        n->op == CRUCIBLE_OP_CLIP) {
        uint32_t found = UINT32_MAX;
        for (uint32_t i = 0; i < node; i++)
            if (g->nodes[i]->op == CRUCIBLE_OP_DENSE &&
                fv_chain(g, i, &L, why, sizeof why) == CRUCIBLE_OK &&
                (L.rq == node || L.act == node))
                found = i;
        if (found == UINT32_MAX) {
            snprintf(why, sizeof why, "%s %s: supported only fused after an "
                     "integer dense (dense -> requantize fixed_q31 -> "
                     "relu/clip with the same scale)", n->op_name, n->name);
            set_reason(out, why);
            return CRUCIBLE_OK;
        }
        if (FITS(out, level)) out->level = CRUCIBLE_SUPPORT_YES;
        if (FITS(out, cycles)) out->cycles = 0;
        set_reason(out, "fused into the dense engine's requantisation unit");
        return CRUCIBLE_OK;
    }
    if (fv_chain(g, di, &L, why, sizeof why) != CRUCIBLE_OK) {
        set_reason(out, why);
        return CRUCIBLE_OK;
    }
    const crucible_kv_doc *cfg = ctx && CRUCIBLE_HAS_FIELD(ctx->hdr, crucible_query_ctx, config) ? ctx->config : NULL;
    const crucible_board *bd = ctx ? ctx->board : NULL;
    int32_t P = parallel_of(cfg, n->name);
    if (check_parallel(&L, P, n->name, why, sizeof why)) {
        set_reason(out, why);
        return CRUCIBLE_OK;
    }
    fv_board r;
    board_res(bd, &r);
    fv_cost c;
    fv_layer_cost(L.K, L.M, P, P <= r.dsp - 4, &c);
    if (c.bram > r.bram || c.lut > r.lc) {
        snprintf(why, sizeof why, "layer %s (%d x %d, parallel %d) needs %lld "
                 "BRAM and ~%lld LCs; %s has %lld BRAM and %lld LCs (try a lower "
                 "parallel, int4 weights, or a larger board)", n->name, L.M,
                 L.K, P, (long long)c.bram, (long long)c.lut, r.name,
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
    snprintf(why, sizeof why, "dense %d -> %d, %d MAC lane(s): %.0f cycles "
             "(MAC efficiency %.2f)", L.K, L.M, P, c.cycles,
             (double)L.K * L.M / (c.cycles * P));
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

/* Builds the design from the graph; on error writes why. */
static int build_design(const crucible_graph_view *g, const crucible_kv_doc *cfg,
                        fv_design *D, char *why, size_t why_len)
{
    D->n = 0;
    uint32_t covered = 0;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i]->op != CRUCIBLE_OP_DENSE) continue;
        if (D->n >= FV_MAX_LAYERS) {
            snprintf(why, why_len, "more than %d layers", FV_MAX_LAYERS);
            return CRUCIBLE_E_LIMIT;
        }
        fv_layer *L = &D->L[D->n];
        int rc = fv_chain(g, i, L, why, why_len);
        if (!rc) rc = fv_mults(g, L, why, why_len);
        if (rc) return rc;
        L->P = parallel_of(cfg, g->nodes[i]->name);
        if ((rc = check_parallel(L, L->P, g->nodes[i]->name, why, why_len)))
            return rc;
        if (D->n && D->L[D->n - 1].out_t != L->in_t) {
            snprintf(why, why_len, "dense %s does not read the previous layer's "
                     "output: only a chain of layers is supported",
                     g->nodes[i]->name);
            return CRUCIBLE_E_UNSUPPORTED;
        }
        covered += 2 + (L->act != UINT32_MAX);
        D->n++;
    }
    if (!D->n || covered != g->n_nodes) {
        snprintf(why, why_len, "the graph must be a chain of integer dense -> "
                 "requantize (-> relu/clip) layers (%u of %u nodes covered)",
                 covered, g->n_nodes);
        return CRUCIBLE_E_UNSUPPORTED;
    }
    if (g->n_inputs != 1 || g->inputs[0] != D->L[0].in_t || g->n_outputs != 1 ||
        g->outputs[0] != D->L[D->n - 1].out_t) {
        snprintf(why, why_len, "one graph input feeding the first layer and one "
                 "output from the last are required");
        return CRUCIBLE_E_UNSUPPORTED;
    }
    D->in_bytes = D->L[0].K;
    D->out_bytes = D->L[D->n - 1].M;
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
    int rc = build_design(ctx->graph, ctx->config, D, why, sizeof why);
    if (rc) {
        h->log(h, CRUCIBLE_LOG_ERROR, "%s", why);
        crucible_free(h, D, sizeof *D);
        return rc;
    }
    fv_board br;
    board_res(ctx->board, &br);
    int64_t lanes = 0;
    for (uint32_t i = 0; i < D->n; i++) lanes += D->L[i].P;
    if (lanes + 4 > br.dsp) {
        h->log(h, CRUCIBLE_LOG_ERROR, "board %s: %lld MAC lanes + 4 SB_MAC16 for "
               "the requantiser need %lld DSPs; the board has %lld (multipliers "
               "in LUTs do not fit a UP5K). Lower [layer.*] parallel so the "
               "lanes sum to at most %lld.", br.name, (long long)lanes,
               (long long)(lanes + 4), (long long)br.dsp, (long long)(br.dsp - 4));
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
