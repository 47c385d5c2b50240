/*
 * cpu_c.c - the cpu-c target plugin: portable C99 for a whole float32
 * graph, verified by building it with the build machine's C compiler (the
 * host's tools service, tool "cc") and running it natively on the sample
 * inputs; every output must match the reference interpreter bit for bit.
 *
 * Threading: query() is [thread-safe] (pure, no allocation, no logging);
 * everything else is called on the host's main thread.
 */
#include "cpu_c_int.h"

#include <stdio.h>
#include <string.h>

/* ---- helpers --------------------------------------------------------------*/
static const crucible_kv_doc *board_doc(const crucible_board *b)
{
    if (!b || !CRUCIBLE_HAS_FIELD(*b, crucible_board, doc)) return NULL;
    return b->doc;
}

static const char *board_get(const crucible_board *b, const char *sec,
                             const char *key)
{
    const crucible_kv_doc *d = board_doc(b);
    return d ? crucible_kv_get(d, sec, key) : NULL;
}

void cpuc_toolchain_get(const crucible_board *board, cpuc_toolchain *tc)
{
    const char *v;
    tc->cc = "cc";
    tc->cflags = CPUC_DEFAULT_CFLAGS;
    if ((v = board_get(board, "toolchain", "cc")) && *v) tc->cc = v;
    if ((v = board_get(board, "toolchain", "cflags")) && *v) tc->cflags = v;
}

/* Path dir/name into buf; -1 if it does not fit. */
static int path_join(char *buf, size_t n, const char *dir, const char *name)
{
    int k = snprintf(buf, n, "%s/%s", dir, name);
    return (k < 0 || (size_t)k >= n) ? -1 : 0;
}

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t put = len ? fwrite(data, 1, len, f) : 0;
    int bad = fclose(f) != 0 || put != len;
    return bad ? -1 : 0;
}

/* Whitespace-separated flags: the only tokens a board may not use. */
static const char *const bad_flags[] = {
    "-ffast-math", "-Ofast", "-ffp-contract=fast", "-ffp-contract=on",
    "-funsafe-math-optimizations", "-fassociative-math",
    "-freciprocal-math", "-ffinite-math-only", "-fno-signed-zeros",
    "-mfpmath=387", "-mfpmath=sse+387", NULL};

static const char *find_bad_flag(const char *flags)
{
    const char *p = flags;
    while (p && *p) {
        while (*p == ' ' || *p == '\t') p++;
        const char *e = p;
        while (*e && *e != ' ' && *e != '\t') e++;
        for (int i = 0; bad_flags[i]; i++)
            if ((size_t)(e - p) == strlen(bad_flags[i]) &&
                !strncmp(p, bad_flags[i], (size_t)(e - p)))
                return bad_flags[i];
        p = e;
    }
    return NULL;
}

/* ---- the target interface ------------------------------------------------ */
static int cpuc_accept_board(void *state, const crucible_board *board,
                             char *why, size_t why_len)
{
    (void)state;
    const char *arch = board_get(board, "board", "arch");
    const char *cc = board_get(board, "toolchain", "cc");
    const char *cflags = board_get(board, "toolchain", "cflags");
    const char *bad;
    if (!board_doc(board)) {
        snprintf(why, why_len, "the board has no key/value document");
        return CRUCIBLE_E_BOARD;
    }
    if (!arch || !*arch) {
        snprintf(why, why_len, "[board] arch is required (arch = native "
                 "runs the verification binary on the build machine)");
        return CRUCIBLE_E_BOARD;
    }
    if (cc && (!*cc || strpbrk(cc, " \t"))) {
        snprintf(why, why_len, "[toolchain] cc = '%s' must name one "
                 "compiler (no arguments; put flags in cflags)", cc);
        return CRUCIBLE_E_BOARD;
    }
    if (cflags && (bad = find_bad_flag(cflags))) {
        snprintf(why, why_len, "[toolchain] cflags contains %s, which "
                 "breaks bit-exactness with the reference interpreter", bad);
        return CRUCIBLE_E_BOARD;
    }
    return CRUCIBLE_OK;
}

#define FITS(s, field)                                                      \
    ((size_t)(s)->size >= offsetof(crucible_support, field) +               \
                              sizeof((s)->field))

static int cpuc_query(void *state, const crucible_query_ctx *ctx,
                      const crucible_graph_view *g, uint32_t node,
                      crucible_support *out)
{
    (void)state;
    (void)ctx;
    char why[256];
    if (!g || !out || node >= g->n_nodes) return CRUCIBLE_E_INVALID;
    int rc = cpuc_check_node(g, node, why, sizeof why);
    if (rc != CRUCIBLE_OK) {
        if (FITS(out, level)) out->level = CRUCIBLE_SUPPORT_NO;
        if (FITS(out, reason)) {
            size_t n = strlen(why);
            if (n >= sizeof out->reason) n = sizeof out->reason - 1;
            memcpy(out->reason, why, n);
            out->reason[n] = 0;
        }
        return CRUCIBLE_OK;
    }
    const crucible_node_view *n = g->nodes[node];
    int64_t weights = 0, act = 0;
    for (uint32_t k = 0; k < n->n_inputs; k++) {
        const crucible_tensor_view *t = crucible_graph_tensor(g, n->inputs[k]);
        if (!t || (n->op == CRUCIBLE_OP_RESHAPE && k == 1)) continue;
        int64_t bytes = (int64_t)cpuc_numel(t) * 4;
        if (t->flags & CRUCIBLE_TENSOR_CONST)
            weights += bytes;
        else
            act += bytes;
    }
    act += (int64_t)cpuc_numel(crucible_graph_tensor(g, n->outputs[0])) * 4;
    if (FITS(out, level)) out->level = CRUCIBLE_SUPPORT_YES;
    if (FITS(out, cycles)) out->cycles = cpuc_node_cycles(g, node);
    /* code: about 160 bytes of object code per call site on a 32/64-bit
     * CPU, the shared kernels amortised */
    if (FITS(out, flash_bytes)) out->flash_bytes = weights + 160;
    if (FITS(out, ram_bytes)) out->ram_bytes = act;
    if (FITS(out, reason)) out->reason[0] = 0;
    return CRUCIBLE_OK;
}

static int cpuc_compile(void *state, const crucible_compile_ctx *ctx)
{
    cpuc_state *s = state;
    const crucible_host *h = s->host;
    char why[512], path[4096];
    cpuc_toolchain tc;
    cpuc_output out;
    if (!ctx || !ctx->graph || !ctx->sink || !ctx->sink->emit) {
        h->log(h, CRUCIBLE_LOG_MISBEHAVING, "compile called without a graph "
               "or an artifact sink");
        return CRUCIBLE_E_INVALID;
    }
    cpuc_toolchain_get(ctx->board, &tc);
    int rc = cpuc_generate(h, ctx->graph, &tc, &out, why, sizeof why);
    if (rc != CRUCIBLE_OK) {
        h->log(h, CRUCIBLE_LOG_ERROR, "cannot generate C: %s", why);
        return rc;
    }
    struct {
        const char *name;
        const cpuc_buf *b;
    } files[] = {{"model.c", &out.model_c},     {"model.h", &out.model_h},
                 {"harness.c", &out.harness_c}, {"Makefile", &out.makefile},
                 {"report.json", &out.report}};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        const char *data = files[i].b->s ? files[i].b->s : "";
        if (ctx->workdir) {
            if (path_join(path, sizeof path, ctx->workdir, files[i].name) ||
                write_file(path, data, files[i].b->len)) {
                h->log(h, CRUCIBLE_LOG_ERROR, "cannot write %s in %s",
                       files[i].name, ctx->workdir);
                rc = CRUCIBLE_E_IO;
                break;
            }
        }
        if ((rc = ctx->sink->emit(ctx->sink->ctx, files[i].name, data,
                                  files[i].b->len)) != CRUCIBLE_OK)
            break;
    }
    if (rc == CRUCIBLE_OK)
        h->log(h, CRUCIBLE_LOG_INFO,
               "model.c: %zu bytes, weights %llu bytes, activation arena "
               "%llu bytes (naive %llu)", out.model_c.len,
               (unsigned long long)out.weight_bytes,
               (unsigned long long)out.arena_bytes,
               (unsigned long long)out.naive_bytes);
    cpuc_output_free(&out);
    return rc;
}

/* ---- verify -------------------------------------------------------------- */
#define MAX_ARGS 96
#define SAMPLES_PER_RUN 256

/* A one-line excerpt of tool output: the first line mentioning "error"
 * and the two after it, else the first three lines. */
static void excerpt(const char *text, char *dst, size_t n)
{
    const char *start = text ? text : "";
    const char *e = strstr(start, "error");
    if (e) {
        while (e > start && e[-1] != '\n') e--;
        start = e;
    }
    size_t k = 0;
    int lines = 0;
    for (const char *p = start; *p && k + 4 < n && lines < 3; p++) {
        if (*p == '\n') {
            lines++;
            if (p[1] && lines < 3) {
                memcpy(dst + k, " | ", 3);
                k += 3;
            }
            continue;
        }
        dst[k++] = (*p == '\t' || *p == '\r') ? ' ' : *p;
    }
    dst[k] = 0;
    if (!k) snprintf(dst, n, "(no output)");
}

/* Splits cflags (a copy in store) into argv; adds what bit-exactness
 * needs when the board left it out. native: link model_test (model.c +
 * harness.c); else compile model.c to model.o only. Returns argc, or -1. */
static int build_argv(const cpuc_toolchain *tc, int native, char *store,
                      size_t store_n, const char **argv)
{
    int argc = 0, has_std = 0, has_contract = 0, has_nofast = 0;
    if (strlen(tc->cflags) >= store_n) return -1;
    strcpy(store, tc->cflags);
    argv[argc++] = tc->cc;
    for (char *p = store; *p;) {
        while (*p == ' ' || *p == '\t') *p++ = 0;
        if (!*p) break;
        if (argc >= MAX_ARGS - 12) return -1;
        argv[argc++] = p;
        if (!strncmp(p, "-std=", 5)) has_std = 1;
        if (!strncmp(p, "-ffp-contract=off", 17)) has_contract = 1;
        if (!strncmp(p, "-fno-fast-math", 14)) has_nofast = 1;
        while (*p && *p != ' ' && *p != '\t') p++;
    }
    if (!has_std) argv[argc++] = "-std=c99";
    if (!has_contract) argv[argc++] = "-ffp-contract=off";
    if (!has_nofast) argv[argc++] = "-fno-fast-math";
    if (native) { /* the whole test program */
        argv[argc++] = "-o";
        argv[argc++] = "model_test";
        argv[argc++] = "model.c";
        argv[argc++] = "harness.c";
        argv[argc++] = "-lm";
    } else { /* a cross compiler: model.c must compile, nothing runs */
        argv[argc++] = "-c";
        argv[argc++] = "-o";
        argv[argc++] = "model.o";
        argv[argc++] = "model.c";
    }
    argv[argc] = NULL;
    return argc;
}

static int write_le_f32(const char *path, const void *data, uint64_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    const unsigned char *p = data;
    int bad = 0;
    for (uint64_t i = 0; i < n && !bad; i++) {
        uint32_t u;
        unsigned char b[4];
        memcpy(&u, p + 4 * i, 4);
        b[0] = (unsigned char)u;
        b[1] = (unsigned char)(u >> 8);
        b[2] = (unsigned char)(u >> 16);
        b[3] = (unsigned char)(u >> 24);
        if (fwrite(b, 1, 4, f) != 4) bad = 1;
    }
    if (fclose(f) != 0) bad = 1;
    return bad ? -1 : 0;
}

/* Reads exactly n little-endian floats as bit patterns into dst. */
static int read_le_u32(const char *path, uint32_t *dst, uint64_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    int bad = 0;
    for (uint64_t i = 0; i < n && !bad; i++) {
        unsigned char b[4];
        if (fread(b, 1, 4, f) != 4) {
            bad = 1;
            break;
        }
        dst[i] = (uint32_t)b[0] | (uint32_t)b[1] << 8 |
                 (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    }
    if (!bad && fgetc(f) != EOF) bad = 2;
    fclose(f);
    return bad ? -1 : 0;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

typedef struct vrun {
    const crucible_host *host;
    const crucible_host_tools *tools;
    const crucible_verify_ctx *ctx;
    char bin[4096];
} vrun;

static void report(const crucible_verify_ctx *ctx, const char *step,
                   const char *tool, int verdict, const char *msg,
                   const char *metrics)
{
    ctx->report(ctx->ctx, step, tool, verdict, msg, metrics);
}

/* Checks the samples against the graph; a message on mismatch. */
static int check_samples(const crucible_verify_ctx *ctx, char *why, size_t n)
{
    const crucible_graph_view *g = ctx->graph;
    for (uint32_t k = 0; k < ctx->n_samples; k++) {
        const crucible_sample *s = ctx->samples[k];
        if (!s || s->n_inputs != g->n_inputs || s->n_outputs != g->n_outputs) {
            snprintf(why, n, "sample %u does not have the graph's %u inputs "
                     "and %u outputs", k, g->n_inputs, g->n_outputs);
            return -1;
        }
        for (int io = 0; io < 2; io++) {
            uint32_t cnt = io ? s->n_outputs : s->n_inputs;
            for (uint32_t i = 0; i < cnt; i++) {
                const crucible_tensor_view *v = io ? s->outputs[i] : s->inputs[i];
                const crucible_tensor_view *t = crucible_graph_tensor(
                    g, io ? g->outputs[i] : g->inputs[i]);
                uint64_t e = t ? cpuc_numel(t) : 0;
                if (!v || !t || v->dtype != CRUCIBLE_DT_F32 || !v->data ||
                    v->data_bytes != e * 4) {
                    snprintf(why, n, "sample %u %s %u (%s) is not f32 data "
                             "of %llu elements", k, io ? "output" : "input", i,
                             t ? t->name : "?", (unsigned long long)e);
                    return -1;
                }
            }
        }
    }
    return 0;
}

static int run_samples(vrun *v, char *msg, size_t msg_n, char *metrics,
                       size_t met_n, int *verdict)
{
    const crucible_verify_ctx *ctx = v->ctx;
    const crucible_host *h = v->host;
    const crucible_graph_view *g = ctx->graph;
    const uint32_t per = g->n_inputs + g->n_outputs;
    const char **argv = NULL;
    char *names = NULL;
    uint32_t *got = NULL;
    size_t argv_n = (size_t)SAMPLES_PER_RUN * per + 2, names_n = 0, got_n = 0;
    uint64_t max_out = 0, elements = 0, mismatches = 0;
    double max_abs = 0.0, seconds = 0.0;
    int max_inf = 0, rc = CRUCIBLE_OK;
    char path[4096];

    *verdict = CRUCIBLE_VERDICT_FAIL;
    for (uint32_t i = 0; i < g->n_outputs; i++) {
        uint64_t e = cpuc_numel(crucible_graph_tensor(g, g->outputs[i]));
        if (e > max_out) max_out = e;
    }
    names_n = argv_n * 32;
    got_n = (size_t)max_out * sizeof *got;
    argv = crucible_alloc(h, argv_n * sizeof *argv);
    names = crucible_alloc(h, names_n);
    got = crucible_alloc(h, got_n);
    if (!argv || !names || !got) {
        rc = CRUCIBLE_E_NOMEM;
        goto out;
    }
    msg[0] = 0;
    for (uint32_t k0 = 0; k0 < ctx->n_samples; k0 += SAMPLES_PER_RUN) {
        uint32_t k1 = k0 + SAMPLES_PER_RUN;
        if (k1 > ctx->n_samples) k1 = ctx->n_samples;
        size_t argc = 0, used = 0;
        argv[argc++] = v->bin;
        /* the files, relative to the work directory */
        for (uint32_t k = k0; k < k1; k++) {
            const crucible_sample *s = ctx->samples[k];
            for (uint32_t i = 0; i < per; i++) {
                char *name = names + used;
                int is_in = i < g->n_inputs;
                int w = snprintf(name, 32, "s%u_%s%u.bin", k, is_in ? "i" : "o",
                                 is_in ? i : i - g->n_inputs);
                used += (size_t)w + 1;
                argv[argc++] = name;
                if (path_join(path, sizeof path, ctx->workdir, name)) {
                    rc = CRUCIBLE_E_IO;
                    goto out;
                }
                if (is_in) {
                    const crucible_tensor_view *t = s->inputs[i];
                    if (write_le_f32(path, t->data, t->data_bytes / 4)) {
                        snprintf(msg, msg_n, "cannot write %s", path);
                        rc = CRUCIBLE_E_IO;
                        goto out;
                    }
                } else {
                    remove(path); /* no stale output can pass */
                }
            }
        }
        argv[argc] = NULL;
        crucible_tool_request req;
        crucible_tool_result res;
        memset(&req, 0, sizeof req);
        memset(&res, 0, sizeof res);
        req.hdr = (crucible_header)CRUCIBLE_HEADER(crucible_tool_request);
        res.hdr = (crucible_header)CRUCIBLE_HEADER(crucible_tool_result);
        req.argv = argv;
        req.cwd = ctx->workdir;
        req.timeout_s = 600;
        int st = v->tools->run(h, &req, &res);
        seconds += res.seconds;
        if (st != CRUCIBLE_OK) {
            char ex[400];
            excerpt(res.output, ex, sizeof ex);
            snprintf(msg, msg_n, "model_test failed on samples %u..%u (%s, "
                     "exit code %d): %s", k0, k1 - 1, crucible_status_str(st),
                     res.exit_code, ex);
            v->tools->free_result(h, &res);
            goto out;
        }
        v->tools->free_result(h, &res);
        /* compare, bit for bit */
        for (uint32_t k = k0; k < k1; k++) {
            const crucible_sample *s = ctx->samples[k];
            for (uint32_t i = 0; i < g->n_outputs; i++) {
                const crucible_tensor_view *ref = s->outputs[i];
                const crucible_tensor_view *t =
                    crucible_graph_tensor(g, g->outputs[i]);
                uint64_t e = cpuc_numel(t);
                snprintf(path, sizeof path, "%s/s%u_o%u.bin", ctx->workdir, k, i);
                if (read_le_u32(path, got, e)) {
                    if (!msg[0])
                        snprintf(msg, msg_n, "sample %u, output %s: the file "
                                 "model_test wrote is missing or not %llu "
                                 "bytes", k, t->name,
                                 (unsigned long long)(e * 4));
                    mismatches += e;
                    continue;
                }
                const unsigned char *rp = ref->data;
                for (uint64_t j = 0; j < e; j++) {
                    uint32_t want;
                    memcpy(&want, rp + 4 * j, 4);
                    elements++;
                    float fg = bits_f32(got[j]), fw = bits_f32(want);
                    if (fg == fg && fw == fw) {
                        double d = (double)fg - (double)fw;
                        if (d < 0) d = -d;
                        if (d != d || d > 1e308) max_inf = 1;
                        else if (d > max_abs) max_abs = d;
                    }
                    if (got[j] == want) continue;
                    if (!mismatches && !msg[0])
                        snprintf(msg, msg_n, "sample %u, output %s[%llu]: got "
                                 "%.9g (0x%08lx), expected %.9g (0x%08lx)", k,
                                 t->name, (unsigned long long)j, (double)fg,
                                 (unsigned long)got[j], (double)fw,
                                 (unsigned long)want);
                    mismatches++;
                }
            }
        }
    }
    if (mismatches) {
        size_t l = strlen(msg);
        snprintf(msg + l, msg_n - l, "; %llu of %llu values differ",
                 (unsigned long long)mismatches, (unsigned long long)elements);
    } else {
        snprintf(msg, msg_n, "%u samples, %u outputs bit-exact (%llu values)",
                 ctx->n_samples, ctx->n_samples * g->n_outputs,
                 (unsigned long long)elements);
        *verdict = CRUCIBLE_VERDICT_PASS;
    }
    {
        char mx[64];
        if (max_inf) snprintf(mx, sizeof mx, "null");
        else snprintf(mx, sizeof mx, "%.9g", max_abs);
        snprintf(metrics, met_n, "{\"samples\":%u,\"outputs\":%u,\"values\":%llu,"
                 "\"mismatches\":%llu,\"max_abs_diff\":%s,\"seconds\":%.3f}",
                 ctx->n_samples, ctx->n_samples * g->n_outputs,
                 (unsigned long long)elements, (unsigned long long)mismatches,
                 mx, seconds);
    }
out:
    if (argv) crucible_free(h, argv, argv_n * sizeof *argv);
    if (names) crucible_free(h, names, names_n);
    if (got) crucible_free(h, got, got_n);
    return rc;
}

static int cpuc_verify(void *state, const crucible_verify_ctx *ctx)
{
    cpuc_state *s = state;
    const crucible_host *h = s->host;
    char why[1024], path[4096], store[2048], metrics[512];
    const char *argv[MAX_ARGS + 1];
    cpuc_toolchain tc;
    vrun v;
    if (!ctx || !ctx->report || !ctx->graph || !ctx->workdir)
        return CRUCIBLE_E_INVALID;
    memset(&v, 0, sizeof v);
    v.host = h;
    v.ctx = ctx;
    cpuc_toolchain_get(ctx->board, &tc);

    v.tools = h->get_extension ? h->get_extension(h, CRUCIBLE_EXT_TOOLS) : NULL;
    if (!v.tools || !CRUCIBLE_HAS_FIELD(v.tools->hdr, crucible_host_tools, free_result) ||
        !v.tools->run || !v.tools->free_result) {
        report(ctx, "build", tc.cc, CRUCIBLE_VERDICT_SKIPPED,
               "the host offers no tools service (" CRUCIBLE_EXT_TOOLS ")", NULL);
        return CRUCIBLE_OK;
    }
    if (path_join(path, sizeof path, ctx->workdir, "model.c")) return CRUCIBLE_E_IO;
    FILE *f = fopen(path, "rb");
    if (!f) {
        report(ctx, "build", tc.cc, CRUCIBLE_VERDICT_FAIL,
               "model.c is missing from the work directory (compile did not "
               "run?)", NULL);
        return CRUCIBLE_OK;
    }
    fclose(f);

    /* build */
    const char *arch = board_get(ctx->board, "board", "arch");
    const int native = !arch || !strcmp(arch, "native");
    if (build_argv(&tc, native, store, sizeof store, argv) < 0) {
        report(ctx, "build", tc.cc, CRUCIBLE_VERDICT_FAIL,
               "[toolchain] cflags is too long", NULL);
        return CRUCIBLE_OK;
    }
    crucible_tool_request req;
    crucible_tool_result res;
    memset(&req, 0, sizeof req);
    memset(&res, 0, sizeof res);
    req.hdr = (crucible_header)CRUCIBLE_HEADER(crucible_tool_request);
    res.hdr = (crucible_header)CRUCIBLE_HEADER(crucible_tool_result);
    req.argv = argv;
    req.cwd = ctx->workdir;
    req.timeout_s = 900;
    req.debian_package = "gcc";
    req.version_arg = "--version";
    int st = v.tools->run(h, &req, &res);
    if (st == CRUCIBLE_E_SKIPPED) {
        report(ctx, "build", tc.cc, CRUCIBLE_VERDICT_SKIPPED,
               res.output && *res.output ? res.output : "cc not found (install gcc)",
               NULL);
        report(ctx, "run", NULL, CRUCIBLE_VERDICT_SKIPPED,
               "not run: model_test could not be built", NULL);
        v.tools->free_result(h, &res);
        return CRUCIBLE_OK;
    }
    if (st != CRUCIBLE_OK) {
        char ex[600];
        excerpt(res.output, ex, sizeof ex);
        snprintf(why, sizeof why, "%s failed (%s, exit code %d): %s", tc.cc,
                 crucible_status_str(st), res.exit_code, ex);
        if (res.output && ctx->sink && ctx->sink->emit)
            ctx->sink->emit(ctx->sink->ctx, "logs/build.txt", res.output,
                            res.output_len);
        report(ctx, "build", tc.cc, CRUCIBLE_VERDICT_FAIL, why, NULL);
        report(ctx, "run", NULL, CRUCIBLE_VERDICT_SKIPPED,
               "not run: model_test could not be built", NULL);
        v.tools->free_result(h, &res);
        return CRUCIBLE_OK;
    }
    {
        size_t k = (size_t)snprintf(why, sizeof why, "%s:",
                                    native ? "model_test built" : "model.o compiled");
        for (int i = 0; argv[i] && k < sizeof why; i++)
            k += (size_t)snprintf(why + k, sizeof why - k, " %s", argv[i]);
    }
    snprintf(metrics, sizeof metrics, "{\"seconds\":%.3f}", res.seconds);
    v.tools->free_result(h, &res);
    report(ctx, "build", tc.cc, CRUCIBLE_VERDICT_PASS, why, metrics);

    /* run */
    if (!native) {
        snprintf(why, sizeof why, "not run: board arch %s is not the build "
                 "machine's (arch = native)", arch);
        report(ctx, "run", NULL, CRUCIBLE_VERDICT_SKIPPED, why, NULL);
        return CRUCIBLE_OK;
    }
    if (path_join(v.bin, sizeof v.bin, ctx->workdir, "model_test"))
        return CRUCIBLE_E_IO;
    if (ctx->sink && ctx->sink->emit_file)
        ctx->sink->emit_file(ctx->sink->ctx, "bin/model_test", v.bin);
    if (!ctx->n_samples) {
        report(ctx, "run", NULL, CRUCIBLE_VERDICT_SKIPPED,
               "not run: no samples", NULL);
        return CRUCIBLE_OK;
    }
    if (check_samples(ctx, why, sizeof why)) {
        report(ctx, "run", NULL, CRUCIBLE_VERDICT_FAIL, why, NULL);
        return CRUCIBLE_OK;
    }
    int verdict;
    metrics[0] = 0;
    int rc = run_samples(&v, why, sizeof why, metrics, sizeof metrics, &verdict);
    if (rc != CRUCIBLE_OK) {
        if (!why[0]) snprintf(why, sizeof why, "%s", crucible_status_str(rc));
        report(ctx, "run", "model_test", CRUCIBLE_VERDICT_FAIL, why, NULL);
        return CRUCIBLE_OK;
    }
    report(ctx, "run", "model_test", verdict, why, metrics[0] ? metrics : NULL);
    return CRUCIBLE_OK;
}

/* ---- entry ---------------------------------------------------------------*/
static const crucible_boundary cpuc_memory = {
    sizeof(crucible_boundary), CRUCIBLE_LINK_MEMORY, 0.0, 32, 0.0};
static const crucible_boundary *const cpuc_boundaries[] = {&cpuc_memory, NULL};

static const crucible_target cpuc_target = {
    CRUCIBLE_HEADER(crucible_target),
    "portable C99 for a whole float32 graph; verified bit-exact by building "
    "it with the build machine's C compiler and running it on the samples",
    cpuc_boundaries,
    cpuc_accept_board,
    cpuc_query,
    cpuc_compile,
    cpuc_verify};

static int cpuc_init(const crucible_host *host, void **state)
{
    if (!host || !host->realloc || !host->log || !state) return CRUCIBLE_E_INVALID;
    cpuc_state *s = crucible_alloc(host, sizeof *s);
    if (!s) return CRUCIBLE_E_NOMEM;
    s->host = host;
    *state = s;
    return CRUCIBLE_OK;
}

static void cpuc_deinit(void *state)
{
    cpuc_state *s = state;
    if (s) crucible_free(s->host, s, sizeof *s);
}

static const void *cpuc_get_interface(void *state, const char *iface_id)
{
    (void)state;
    if (iface_id && !strcmp(iface_id, CRUCIBLE_IFACE_TARGET)) return &cpuc_target;
    return NULL;
}

static const char *const cpuc_interfaces[] = {CRUCIBLE_IFACE_TARGET, NULL};

/* The one exported symbol. Its name is also the name of its type, which C
 * does not allow in one scope, so the object has a local name and an
 * assembler label carrying the exported name (as tests/oot does). */
CRUCIBLE_EXPORT const crucible_plugin_entry cpuc_entry
    __asm__(CRUCIBLE_ENTRY_SYMBOL) = {
    CRUCIBLE_HEADER(crucible_plugin_entry),
    CRUCIBLE_ABI_TAG,
    0,
    CPUC_ID,
    "Portable C (CPU)",
    CPUC_VERSION,
    "crucible",
    "portable C99 source for a whole float32 graph, verified bit-exact "
    "with the build machine's C compiler",
    cpuc_interfaces,
    cpuc_init,
    cpuc_deinit,
    cpuc_get_interface};
