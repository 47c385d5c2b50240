/*
 * compile.c - `crucible compile`: load, pre-flight, compile, verify,
 * package.
 *
 * Plugin code runs only before the package writer is opened: artifacts are
 * staged in a private work directory and the package is written and
 * renamed into place at the very end, so a failed (or crashing) compile
 * never leaves a package behind.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "interp.h"
#include "package.h"
#include "quant.h"
#include "sha256.h"
#include "tensorio.h"

/* ----------------------------------------------------------- staging */

typedef struct staged {
    char *name; /* full entry name, e.g. targets/x/model.c */
    char *path; /* staged copy */
} staged;

typedef struct stage {
    staged *items;
    size_t n, cap;
    char *dir;
    const char *prefix; /* "targets/<id>/" */
    unsigned counter;
    int errors;
} stage;

static int stage_add_bytes(stage *s, const char *name, const void *bytes,
                           size_t len, const char *src_path)
{
    char why[256];
    if (!name || pkg_check_name(name, why, sizeof why) != 0) {
        cr_host_log("crucible", CRUCIBLE_LOG_MISBEHAVING,
                    "artifact name '%s' refused: %s", name ? name : "(null)",
                    name ? why : "NULL name");
        s->errors++;
        return CRUCIBLE_E_INVALID;
    }
    jbuf full;
    jb_init(&full);
    jb_puts(&full, s->prefix);
    jb_puts(&full, name);
    if (full.err) return CRUCIBLE_E_NOMEM;
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->items[i].name, full.s)) {
            cr_host_log("crucible", CRUCIBLE_LOG_MISBEHAVING,
                        "artifact %s emitted twice", full.s);
            jb_free(&full);
            s->errors++;
            return CRUCIBLE_E_INVALID;
        }
    char fn[64];
    snprintf(fn, sizeof fn, "a%06u", s->counter++);
    char *dst = cr_path_join(s->dir, fn);
    char err[512];
    int rc = CRUCIBLE_OK;
    if (!dst) rc = CRUCIBLE_E_NOMEM;
    uint8_t *buf = NULL;
    if (rc == CRUCIBLE_OK && src_path) {
        buf = cr_read_file(src_path, &len, (size_t)1 << 30, err, sizeof err);
        if (!buf) {
            cr_host_log("crucible", CRUCIBLE_LOG_ERROR, "artifact %s: %s",
                        full.s, err);
            rc = CRUCIBLE_E_IO;
        }
        bytes = buf;
    }
    if (rc == CRUCIBLE_OK &&
        cr_write_file_atomic(dst, bytes ? bytes : "", len, err, sizeof err)) {
        cr_host_log("crucible", CRUCIBLE_LOG_ERROR, "staging %s: %s", full.s,
                    err);
        rc = CRUCIBLE_E_IO;
    }
    cr_free(buf);
    if (rc == CRUCIBLE_OK &&
        cr_grow((void **)&s->items, &s->cap, s->n + 1, sizeof(staged)))
        rc = CRUCIBLE_E_NOMEM;
    if (rc != CRUCIBLE_OK) {
        cr_free(dst);
        jb_free(&full);
        s->errors++;
        return rc;
    }
    s->items[s->n].name = jb_take(&full);
    s->items[s->n].path = dst;
    s->n++;
    return CRUCIBLE_OK;
}

static int sink_emit(void *ctx, const char *name, const void *bytes, size_t len)
{
    if (!bytes && len) return CRUCIBLE_E_INVALID;
    return stage_add_bytes(ctx, name, bytes, len, NULL);
}
static int sink_emit_file(void *ctx, const char *name, const char *path)
{
    if (!path) return CRUCIBLE_E_INVALID;
    return stage_add_bytes(ctx, name, NULL, 0, path);
}

/* ----------------------------------------------------------- samples */

typedef struct sample_set {
    size_t n;          /* samples */
    size_t n_in, n_out;
    cr_array *in;      /* n * n_in */
    cr_array *out;     /* n * n_out */
    crucible_tensor_view *views; /* n * (n_in + n_out) */
    const crucible_tensor_view **view_ptrs;
    crucible_sample *samples;
    const crucible_sample **sample_ptrs;
    char source[256];
} sample_set;

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static int random_input(const cr_tensor *t, uint64_t *rng, cr_array *a,
                        char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    a->dtype = t->dtype;
    a->rank = t->rank;
    for (int32_t d = 0; d < t->rank; d++) a->dims[d] = t->dims[d];
    uint64_t n = ir_numel(t);
    if (!n && t->rank) {
        snprintf(err, errlen, "input %s has an unknown shape; give samples "
                              "with --input", t->name);
        return -1;
    }
    size_t es = interp_elem_size(t->dtype);
    if (!es) {
        snprintf(err, errlen, "cannot make random data for input %s of type %s",
                 t->name, ir_dtype_name(t->dtype));
        return -1;
    }
    a->bytes = (size_t)n * es;
    a->data = cr_calloc(n ? n : 1, es);
    if (!a->data) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (uint64_t i = 0; i < n; i++) {
        uint64_t r = rng_next(rng);
        switch (t->dtype) {
        case CRUCIBLE_DT_F32:
            ((float *)a->data)[i] = (float)((double)(r >> 11) / 9007199254740992.0 * 2.0 - 1.0);
            break;
        case CRUCIBLE_DT_I8: ((int8_t *)a->data)[i] = (int8_t)(r & 0xff); break;
        case CRUCIBLE_DT_U8: ((uint8_t *)a->data)[i] = (uint8_t)(r & 0xff); break;
        case CRUCIBLE_DT_I32: ((int32_t *)a->data)[i] = (int32_t)(r % 8); break;
        case CRUCIBLE_DT_I64: ((int64_t *)a->data)[i] = (int64_t)(r % 8); break;
        case CRUCIBLE_DT_I16: ((int16_t *)a->data)[i] = (int16_t)(r & 0xffff); break;
        default: ((uint8_t *)a->data)[i * es] = 0; break;
        }
    }
    return 0;
}

static void fill_view(crucible_tensor_view *v, const cr_array *a,
                      const char *name)
{
    memset(v, 0, sizeof *v);
    v->size = sizeof *v;
    v->name = name;
    v->dtype = a->dtype;
    v->rank = a->rank;
    v->dims = a->dims;
    v->quant_axis = -1;
    v->data = a->data;
    v->data_bytes = a->bytes;
    v->flags = CRUCIBLE_TENSOR_CONST;
}

static void samples_free(sample_set *s)
{
    if (s->in)
        for (size_t i = 0; i < s->n * s->n_in; i++) tio_free(&s->in[i]);
    if (s->out)
        for (size_t i = 0; i < s->n * s->n_out; i++) tio_free(&s->out[i]);
    cr_free(s->in);
    cr_free(s->out);
    cr_free(s->views);
    cr_free(s->view_ptrs);
    cr_free(s->samples);
    cr_free(s->sample_ptrs);
    memset(s, 0, sizeof *s);
}

/* inputs: explicit files (one sample), else `count` random samples. */
static int samples_make(const cr_graph *g, const char *const *files,
                        size_t n_files, size_t count, uint64_t seed,
                        sample_set *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->n_in = g->n_inputs;
    s->n_out = g->n_outputs;
    if (n_files) {
        if (n_files % (g->n_inputs ? g->n_inputs : 1) != 0 || !g->n_inputs) {
            snprintf(err, errlen, "the model has %zu inputs; --input got %zu "
                                  "files (give one file per input, per sample)",
                     g->n_inputs, n_files);
            return -1;
        }
        s->n = n_files / g->n_inputs;
        snprintf(s->source, sizeof s->source, "%zu sample%s from --input", s->n,
                 s->n == 1 ? "" : "s");
    } else {
        s->n = count;
        snprintf(s->source, sizeof s->source,
                 "%zu random sample%s (seed %llu)", count, count == 1 ? "" : "s",
                 (unsigned long long)seed);
    }
    s->in = cr_calloc(s->n * s->n_in + 1, sizeof(cr_array));
    s->out = cr_calloc(s->n * s->n_out + 1, sizeof(cr_array));
    size_t nv = s->n * (s->n_in + s->n_out) + 1;
    s->views = cr_calloc(nv, sizeof(crucible_tensor_view));
    s->view_ptrs = cr_calloc(nv, sizeof(void *));
    s->samples = cr_calloc(s->n + 1, sizeof(crucible_sample));
    s->sample_ptrs = cr_calloc(s->n + 1, sizeof(void *));
    if (!s->in || !s->out || !s->views || !s->view_ptrs || !s->samples ||
        !s->sample_ptrs) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    uint64_t rng = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    for (size_t k = 0; k < s->n; k++) {
        for (size_t i = 0; i < s->n_in; i++) {
            cr_array *a = &s->in[k * s->n_in + i];
            const cr_tensor *t = &g->tensors[g->inputs[i]];
            if (n_files) {
                const char *f = files[k * s->n_in + i];
                if (tio_load(f, a, err, errlen)) return -1;
                if (a->dtype != t->dtype) {
                    cr_array conv;
                    if (tio_convert(a, t->dtype, &conv, err, errlen)) return -1;
                    tio_free(a);
                    *a = conv;
                }
            } else if (random_input(t, &rng, a, err, errlen)) {
                return -1;
            }
        }
        if (interp_run(g, &s->in[k * s->n_in], s->n_in, &s->out[k * s->n_out],
                       err, errlen))
            return -1;
        crucible_sample *sm = &s->samples[k];
        sm->size = sizeof *sm;
        size_t base = k * (s->n_in + s->n_out);
        for (size_t i = 0; i < s->n_in; i++) {
            fill_view(&s->views[base + i], &s->in[k * s->n_in + i],
                      g->tensors[g->inputs[i]].name);
            s->view_ptrs[base + i] = &s->views[base + i];
        }
        for (size_t i = 0; i < s->n_out; i++) {
            fill_view(&s->views[base + s->n_in + i], &s->out[k * s->n_out + i],
                      g->tensors[g->outputs[i]].name);
            s->view_ptrs[base + s->n_in + i] = &s->views[base + s->n_in + i];
        }
        sm->n_inputs = (uint32_t)s->n_in;
        sm->inputs = &s->view_ptrs[base];
        sm->n_outputs = (uint32_t)s->n_out;
        sm->outputs = &s->view_ptrs[base + s->n_in];
        s->sample_ptrs[k] = sm;
    }
    return 0;
}

/* ------------------------------------------------------ verification */

typedef struct vstep {
    char *target, *step, *tool, *message, *metrics;
    int verdict;
} vstep;

typedef struct vlog {
    vstep *items;
    size_t n, cap;
    const char *target;
    int quiet;
} vlog;

static void verify_report(void *ctx, const char *step, const char *tool,
                          int verdict, const char *message,
                          const char *metrics_json)
{
    vlog *v = ctx;
    if (cr_grow((void **)&v->items, &v->cap, v->n + 1, sizeof(vstep))) return;
    vstep *s = &v->items[v->n++];
    if (verdict < CRUCIBLE_VERDICT_PASS || verdict > CRUCIBLE_VERDICT_SKIPPED)
        verdict = CRUCIBLE_VERDICT_FAIL;
    s->target = cr_strdup(v->target);
    s->step = cr_strdup(step ? step : "verify");
    s->tool = tool ? cr_strdup(tool) : NULL;
    s->message = cr_strdup(message ? message : "");
    s->metrics = metrics_json && *metrics_json ? cr_strdup(metrics_json) : NULL;
    s->verdict = verdict;
    int show = !v->quiet || verdict != CRUCIBLE_VERDICT_PASS;
    if (show)
        fprintf(stderr, "  %-8s %s/%s%s%s%s%s\n",
                verdict == CRUCIBLE_VERDICT_PASS ? "PASS"
                : verdict == CRUCIBLE_VERDICT_SKIPPED ? "SKIPPED" : "FAIL",
                v->target, s->step, tool ? " [" : "", tool ? tool : "",
                tool ? "]" : "", "");
    if (show && s->message[0]) fprintf(stderr, "           %s\n", s->message);
}

static void vlog_free(vlog *v)
{
    for (size_t i = 0; i < v->n; i++) {
        cr_free(v->items[i].target);
        cr_free(v->items[i].step);
        cr_free(v->items[i].tool);
        cr_free(v->items[i].message);
        cr_free(v->items[i].metrics);
    }
    cr_free(v->items);
}

/* ----------------------------------------------------------- helpers */

static const char *level_name(int l)
{
    switch (l) {
    case CRUCIBLE_SUPPORT_PREFERRED: return "preferred";
    case CRUCIBLE_SUPPORT_YES: return "yes";
    case CRUCIBLE_SUPPORT_FALLBACK: return "fallback";
    default: return "no";
    }
}

static void support_json(jbuf *j, const crucible_support *s)
{
    jb_printf(j, "\"level\":\"%s\"", level_name(s->level));
#define DF(f)                                                               \
    do {                                                                    \
        jb_puts(j, ",\"" #f "\":");                                         \
        if (s->f < 0) jb_puts(j, "null"); else jb_jnum(j, (double)s->f);    \
    } while (0)
    DF(cycles); DF(seconds); DF(energy_j); DF(lut); DF(ff); DF(dsp); DF(bram);
    DF(spram); DF(flash_bytes); DF(ram_bytes); DF(components);
#undef DF
    jb_puts(j, ",\"reason\":");
    jb_jstr(j, s->reason[0] ? s->reason : NULL);
}

static void fmt_cost(char *buf, size_t n, double v)
{
    if (v < 0)
        snprintf(buf, n, "-");
    else if (v >= 1e6)
        snprintf(buf, n, "%.3gM", v / 1e6);
    else if (v >= 1e4)
        snprintf(buf, n, "%.3gk", v / 1e3);
    else
        snprintf(buf, n, "%.0f", v);
}

static char *split_next(char **s)
{
    char *p = *s;
    if (!p) return NULL;
    char *c = strchr(p, ',');
    if (c) {
        *c = 0;
        *s = c + 1;
    } else {
        *s = NULL;
    }
    return p;
}

/* ---------------------------------------------------------- compile */

#define MAX_TARGETS 16

typedef struct tsel {
    cr_plugin *p;
    cr_board *board;
    crucible_support *support; /* per node */
    char *workdir;
    stage st;
    int compiled;
} tsel;

/* ---- fit: does the model fit the chosen board, or a swarm of them? -----
 * Needed: the model's weights as stored (a frontend's cost.fit_weight_bytes,
 * e.g. GGUF Q4_0 blocks; else the constants' bytes) plus its state (the
 * KV cache, cost.kv_cache_bytes). Available per board: flash_bytes +
 * psram_bytes + ram_bytes of the board INI's [board] section. Checked for
 * boards that declare memory when the model carries cost figures or
 * --swarm is given; a model that does not fit stops pre-flight. */
static double meta_num(const cr_graph *g, const char *key, int *found)
{
    for (size_t i = 0; i < g->n_meta; i++)
        if (!strcmp(g->meta[i].key, key)) {
            char *end;
            double v = strtod(g->meta[i].value, &end);
            if (end != g->meta[i].value && v >= 0) {
                *found = 1;
                return v;
            }
        }
    *found = 0;
    return 0;
}

static void fit_bytes(char *b, size_t n, double v)
{
    if (v >= 1e9) snprintf(b, n, "%.2f GB", v / 1e9);
    else if (v >= 1e6) snprintf(b, n, "%.1f MB", v / 1e6);
    else if (v >= 1e3) snprintf(b, n, "%.1f kB", v / 1e3);
    else snprintf(b, n, "%.0f B", v);
}

static double board_bytes(const cr_board *b, const char *key)
{
    const char *v = cr_kv_get(b->kv, "board", key);
    if (!v) return 0;
    char *end;
    double d = strtod(v, &end);
    return end != v && d > 0 ? d : 0;
}

static int compile_fit(const cr_graph *g, tsel *ts, size_t nt, long swarm,
                       int quiet, FILE *hout, jbuf *js)
{
    int fw, fk, any_cost = 0;
    for (size_t i = 0; i < g->n_meta; i++)
        if (!strncmp(g->meta[i].key, "cost.", 5)) any_cost = 1;
    double w = meta_num(g, "cost.fit_weight_bytes", &fw);
    double kv = meta_num(g, "cost.kv_cache_bytes", &fk);
    if (!fw) {
        w = 0;
        for (size_t i = 0; i < g->n_tensors; i++)
            if (g->tensors[i].flags & CRUCIBLE_TENSOR_CONST)
                w += (double)g->tensors[i].data_bytes;
    }
    const char *wfmt = "";
    for (size_t i = 0; i < g->n_meta; i++)
        if (!strcmp(g->meta[i].key, "cost.fit_weight_bytes")) {
            wfmt = strchr(g->meta[i].value, '(');
            if (!wfmt) wfmt = "";
        }
    int bad = 0, first = 1;
    jb_putc(js, '[');
    for (size_t k = 0; k < nt; k++) {
        const cr_board *b = ts[k].board;
        if (!b || (!any_cost && swarm <= 1)) continue;
        double fl = board_bytes(b, "flash_bytes"), ps = board_bytes(b, "psram_bytes"),
               ram = board_bytes(b, "ram_bytes");
        double per = fl + ps + ram;
        if (per <= 0) continue;
        double need = w + kv, have = per * (double)swarm;
        double boards = ceil(need / per);
        int fits = need <= have;
        char hw[32], hk[32], hn[32], hf[32], hp[32], hr[32], hper[32], hh[32];
        fit_bytes(hw, sizeof hw, w);
        fit_bytes(hk, sizeof hk, kv);
        fit_bytes(hn, sizeof hn, need);
        fit_bytes(hf, sizeof hf, fl);
        fit_bytes(hp, sizeof hp, ps);
        fit_bytes(hr, sizeof hr, ram);
        fit_bytes(hper, sizeof hper, per);
        fit_bytes(hh, sizeof hh, have);
        if (!quiet) {
            fprintf(hout, "fit: target %s, board %s%s: model weights %s %s%s+ "
                          "state %s%s = %s; one %s holds %s flash + %s PSRAM "
                          "+ %s RAM = %s",
                    ts[k].p->id, b->view.name,
                    swarm > 1 ? " (swarm)" : "", hw, *wfmt ? wfmt : "(constants)",
                    *wfmt ? " " : " ", hk, fk ? " (KV cache)" : "", hn,
                    b->view.name, hf, hp, hr, hper);
            if (swarm > 1)
                fprintf(hout, ", a swarm of %ld holds %s", swarm, hh);
            if (fits)
                fprintf(hout, ": fits (%.0f board%s needed)\n", boards,
                        boards == 1 ? "" : "s");
            else
                fprintf(hout, ": does NOT fit (needs at least %.0f boards of "
                              "%s; that is %.1fx what %ld hold%s)\n",
                        boards, b->view.name, need / have, swarm,
                        swarm == 1 ? "s" : "");
        }
        jb_printf(js, "%s{\"target\":", first ? "" : ",");
        jb_jstr(js, ts[k].p->id);
        jb_puts(js, ",\"board\":");
        jb_jstr(js, b->view.name);
        jb_printf(js, ",\"weight_bytes\":%.0f,\"state_bytes\":%.0f,"
                      "\"needed_bytes\":%.0f,\"board_bytes\":%.0f,"
                      "\"swarm\":%ld,\"available_bytes\":%.0f,"
                      "\"boards_needed\":%.0f,\"fits\":%s}",
                  w, kv, need, per, swarm, have, boards,
                  fits ? "true" : "false");
        first = 0;
        if (!fits) bad = 1;
    }
    jb_putc(js, ']');
    return bad;
}

static void fit_json(const cli *c, const char *model, const jbuf *fitj)
{
    if (!c->json) return;
    jbuf o;
    jb_init(&o);
    jb_puts(&o, "{\"model\":");
    jb_jstr(&o, model);
    jb_puts(&o, ",\"fit\":");
    jb_puts(&o, fitj->s ? fitj->s : "[]");
    jb_puts(&o, "}\n");
    if (o.s) fputs(o.s, stdout);
    jb_free(&o);
}

/* --quant: replaces *g by its quantised form (a model that arrives
 * quantised is kept); the JSON report goes to *qjson for the package. */
static int compile_quantise(cli *c, cr_graph **g, const cr_kvdoc *config,
                            const char *mode, const char *method,
                            const char *const *calib, size_t n_calib,
                            size_t limit, int quiet, const char *model,
                            int int8_io, jbuf *qjson)
{
    quant_opts o;
    memset(&o, 0, sizeof o);
    o.weights = QF_INT8;
    o.method = QM_PERCENTILE;
    o.percentile = 99.99;
    o.config = config;
    if (!mode || !n_calib) {
        fprintf(stderr, "crucible compile: --quant and --calib go together\n");
        return -1;
    }
    if (quant_cli_mode(mode, &o)) {
        fprintf(stderr, "crucible compile: --quant %s: expected int8, int4, "
                        "ternary, binary or mixed\n", mode);
        return -1;
    }
    if (method && quant_cli_method(method, &o)) {
        fprintf(stderr, "crucible compile: --quant-method %s: expected minmax "
                        "or percentile\n", method);
        return -1;
    }
    char err[2048];
    cr_array *samples = NULL;
    size_t ns = 0;
    cr_graph *q = NULL;
    quant_report rep;
    memset(&rep, 0, sizeof rep);
    int rc = -1;
    if (quant_load_calib(*g, calib, n_calib, limit, &samples, &ns, err,
                         sizeof err)) {
        fprintf(stderr, "crucible compile: calibration: %s\n", err);
        goto done;
    }
    if (!quiet)
        fprintf(stderr, "[crucible] quantising (%s) with %zu calibration "
                        "sample%s\n", mode, ns, ns == 1 ? "" : "s");
    if (quant_graph(*g, samples, ns, &o, &q, &rep, err, sizeof err)) {
        fprintf(stderr, "crucible compile: quantisation: %s\n", err);
        goto done;
    }
    if (!quiet && !c->json) quant_report_text(&rep, stderr);
    quant_report_json(&rep, model, qjson);
    if (qjson->err) die_oom();
    if (q) {
        ir_free(*g);
        *g = q;
    }
    if (int8_io) {
        int k = quant_int8_io(*g, err, sizeof err);
        if (k < 0) {
            fprintf(stderr, "crucible compile: --io int8: %s\n", err);
            goto done;
        }
        if (!quiet)
            fprintf(stderr, "[crucible] --io int8: %d port%s now exchange int8\n",
                    k, k == 1 ? "" : "s");
    }
    rc = 0;
done:
    quant_report_free(&rep);
    quant_samples_free(samples, ns * (*g)->n_inputs);
    return rc;
}

static void compile_help(void)
{
    printf(
        "usage: crucible compile MODEL --target ID[,ID...] -o OUT.tptpkg\n"
        "                        [--board NAME|FILE.ini] [--board-dir DIR]...\n"
        "                        [--config FILE.ini] [--input FILE...]\n"
        "                        [--samples N] [--seed S] [--no-verify]\n"
        "                        [--frontend ID] [--keep-workdir] [--json] [--swarm N]\n"
        "                        [--quant int8|int4|ternary|binary|mixed\n"
        "                         --calib FILE|DIR... [--calib-samples N]\n"
        "                         [--quant-method minmax|percentile]]\n"
        "\n"
        "Loads MODEL, runs pre-flight (every target answers per layer, with cost\n"
        "estimates; an unsupported layer is named with node, op and reason before\n"
        "any slow step), compiles the whole graph for each target, verifies the\n"
        "artifacts in real external tools against the reference interpreter, and\n"
        "writes the package atomically (no package is left on failure).\n"
        "\n"
        "  --target ID[,ID]   target plugin ids (see 'crucible plugins')\n"
        "  --board NAME       board for the targets (see 'crucible boards'), or an\n"
        "                     INI file path\n"
        "  --board-dir DIR    more board INI files: a folder or one file (repeatable)\n"
        "  --config FILE      project config (INI; docs/config.md)\n"
        "  --input FILE...    verification inputs: one file per graph input per\n"
        "                     sample (.npy or .pb); default: random samples\n"
        "  --samples N        number of random samples (default 4)\n"
        "  --seed S           random seed (default 1)\n"
        "  --batch N          size bound to dynamic input dims (default 1)\n"
        "  --swarm N          fit check for N boards sharing the model (weights\n"
        "                     as stored + KV cache vs flash + PSRAM + RAM of the\n"
        "                     board INIs); with N > 1 compile stops after it\n"
        "  --no-verify        skip verification (the package says so)\n"
        "  --io float|int8    with --quant: the model's interface stays float\n"
        "                     (default) or becomes its int8 tensors (MCU, FPGA)\n"
        "  --quant FMT        quantise a float model before pre-flight (weights\n"
        "                     FMT, int8 activations; mixed: per layer from the\n"
        "                     config's [layer.<node>] quant keys); targets then\n"
        "                     see the integer graph (docs/quantisation.md)\n"
        "  --calib FILE|DIR   calibration samples for --quant (.npy/.pb)\n"
        "  --calib-samples N  use the first N calibration samples\n"
        "  --quant-method M   activation ranges: percentile (default) or minmax\n"
        "  -o, --output PKG   the package to write\n"
        "\n"
        "Exit status: 0 when everything ran and passed; 1 on any failure, a\n"
        "verification mismatch, or a verification step that could not run\n"
        "(a missing tool is named with its Debian package) unless --no-verify.\n");
}

int cmd_compile(cli *c, int argc, char **argv);
int cmd_compile(cli *c, int argc, char **argv)
{
    const char *model = NULL, *targets_arg = NULL, *board_arg = NULL;
    const char *config_path = NULL, *out_path = NULL, *fe = NULL;
    const char **inputs = calloc((size_t)argc + 1, sizeof(char *));
    const char **board_dirs = calloc((size_t)argc + 1, sizeof(char *));
    size_t n_inputs = 0, n_board_dirs = 0, n_random = 4;
    uint64_t seed = 1;
    int64_t batch = 1;
    long swarm = 1; /* --swarm: boards sharing the model (fit check) */
    jbuf fitj;
    jb_init(&fitj);
    int rebind = 0;
    int no_verify = 0, keep = 0, rc = 1;
    const char *quant_arg = NULL, *quant_meth = NULL;
    int int8_io = 0;
    const char **calib = calloc((size_t)argc + 1, sizeof(char *));
    size_t n_calib = 0, calib_limit = 0;
    jbuf qjson;
    jb_init(&qjson);
    if (!calib) die_oom();
    if (!inputs || !board_dirs) die_oom();

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (is_help(a)) {
            compile_help();
            free(inputs);
            free(board_dirs);
            free(calib);
            return 0;
        } else if (!strcmp(a, "--json")) c->json = 1;
        else if (!strcmp(a, "--target") && has) targets_arg = argv[++i];
        else if (!strncmp(a, "--target=", 9)) targets_arg = a + 9;
        else if (!strcmp(a, "--board") && has) board_arg = argv[++i];
        else if (!strcmp(a, "--board-dir") && has) board_dirs[n_board_dirs++] = argv[++i];
        else if (!strcmp(a, "--config") && has) config_path = argv[++i];
        else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && has) out_path = argv[++i];
        else if (!strcmp(a, "--frontend") && has) fe = argv[++i];
        else if (!strcmp(a, "--no-verify")) no_verify = 1;
        else if (!strcmp(a, "--quant") && has) quant_arg = argv[++i];
        else if (!strcmp(a, "--quant-method") && has) quant_meth = argv[++i];
        else if (!strcmp(a, "--io") && has) {
            const char *v = argv[++i];
            if (!strcmp(v, "int8")) int8_io = 1;
            else if (!strcmp(v, "float")) int8_io = 0;
            else {
                free(inputs);
                free(board_dirs);
                return usage_error("compile", "--io takes float or int8");
            }
        }
        else if (!strcmp(a, "--calib") && has) {
            calib[n_calib++] = argv[++i];
            while (i + 1 < argc && argv[i + 1][0] != '-') calib[n_calib++] = argv[++i];
        } else if (!strcmp(a, "--calib-samples") && has) {
            char *end;
            long long v = strtoll(argv[++i], &end, 10);
            if (*end || v < 1) {
                free(inputs);
                free(board_dirs);
                free(calib);
                return usage_error("compile", "--calib-samples needs a positive number");
            }
            calib_limit = (size_t)v;
        }
        else if (!strcmp(a, "--keep-workdir")) keep = 1;
        else if (!strcmp(a, "--samples") && has) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 10000) {
                free(inputs);
                free(board_dirs);
                free(calib);
                return usage_error("compile", "--samples needs 1..10000");
            }
            n_random = (size_t)v;
        } else if (!strcmp(a, "--swarm") && has) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 100000) {
                free(inputs);
                free(board_dirs);
                free(calib);
                return usage_error("compile", "--swarm needs 1..100000");
            }
            swarm = v;
        } else if (!strcmp(a, "--batch") && has) {
            char *end;
            long long v = strtoll(argv[++i], &end, 10);
            if (*end || v < 1 || v > 65536) {
                free(inputs);
                free(board_dirs);
                free(calib);
                return usage_error("compile", "--batch needs 1..65536");
            }
            batch = v;
        } else if (!strcmp(a, "--seed") && has) {
            seed = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(a, "--input") && has) {
            inputs[n_inputs++] = argv[++i];
            while (i + 1 < argc && argv[i + 1][0] != '-') inputs[n_inputs++] = argv[++i];
        } else if (a[0] == '-') {
            free(inputs);
            free(board_dirs);
            free(calib);
            return usage_error("compile", "unknown option %s (or missing value)", a);
        } else if (!model) model = a;
        else {
            free(inputs);
            free(board_dirs);
            free(calib);
            return usage_error("compile", "unexpected argument %s", a);
        }
    }
    if (!model || !targets_arg || !out_path) {
        free(inputs);
        free(board_dirs);
        free(calib);
        return usage_error("compile", "need MODEL, --target ID and -o OUT.tptpkg");
    }

    char err[2048] = "";
    cr_kvdoc *config = NULL;
    cr_graph *g = NULL;
    ir_view *view = NULL;
    cr_boardset boards, fileboards; /* found; named with --board FILE */
    memset(&boards, 0, sizeof boards);
    memset(&fileboards, 0, sizeof fileboards);
    tsel ts[MAX_TARGETS];
    memset(ts, 0, sizeof ts);
    size_t nt = 0;
    sample_set samples;
    memset(&samples, 0, sizeof samples);
    vlog vl;
    memset(&vl, 0, sizeof vl);
    vl.quiet = c->verbosity < 0;
    jbuf pre, rep, js;
    jb_init(&pre);
    jb_init(&rep);
    jb_init(&js);
    char *tlist = cr_strdup(targets_arg);
    const cr_plugin *fe_used = NULL;
    int quiet = c->verbosity < 0;
    FILE *hout = c->json ? stderr : stdout;
    char *out_dir = NULL;

    /* The output directory must exist; check before any slow step. */
    out_dir = cr_dirname(out_path);
    if (!out_dir || !cr_is_dir(out_dir)) {
        fprintf(stderr, "crucible compile: the directory of %s does not exist\n",
                out_path);
        goto out;
    }
    if (config_path) {
        config = cr_kv_load(config_path, err, sizeof err);
        if (!config) {
            fprintf(stderr, "crucible compile: config: %s\n", err);
            goto out;
        }
    }
    if (cli_load_plugins(c)) goto out;

    /* Targets. */
    for (char *s = tlist, *id; (id = split_next(&s));) {
        if (!*id) continue;
        if (nt >= MAX_TARGETS) {
            fprintf(stderr, "crucible compile: at most %d targets\n", MAX_TARGETS);
            goto out;
        }
        cr_plugin *p = cr_loader_find(&c->loader, id, "target");
        if (!p) {
            fprintf(stderr, "crucible compile: no loaded target plugin '%s'.", id);
            for (size_t i = 0; i < c->loader.n; i++) {
                cr_plugin *q = c->loader.plugins[i];
                if (q->id && !strcmp(q->id, id) && q->status != CR_PLUGIN_LOADED)
                    fprintf(stderr, " A plugin with that id at %s was refused: %s.",
                            q->path, q->reason);
            }
            fprintf(stderr, " Loaded targets:");
            int any = 0;
            for (size_t i = 0; i < c->loader.n; i++) {
                cr_plugin *q = c->loader.plugins[i];
                if (q->status == CR_PLUGIN_LOADED && q->has_target) {
                    fprintf(stderr, " %s", q->id);
                    any = 1;
                }
            }
            fprintf(stderr, "%s\n", any ? "" : " none (see 'crucible plugins')");
            goto out;
        }
        for (size_t k = 0; k < nt; k++)
            if (ts[k].p == p) p = NULL;
        if (p) ts[nt++].p = p;
    }
    if (!nt) {
        fprintf(stderr, "crucible compile: --target names no target\n");
        goto out;
    }

    /* Boards. */
    cli_collect_boards(c, &boards, board_dirs, n_board_dirs);
    for (size_t k = 0; k < nt; k++) {
        if (!board_arg) {
            /* A board marked "[board] default = true" is the target's
             * default; without one the target gets no board (NULL). */
            for (size_t i = 0; i < boards.n && !ts[k].board; i++) {
                cr_board *b = boards.boards[i];
                const char *dv = cr_kv_get(b->kv, "board", "default");
                if (strcmp(b->view.target, ts[k].p->id) || !dv ||
                    (strcmp(dv, "true") && strcmp(dv, "yes") && strcmp(dv, "1")))
                    continue;
                char why[512];
                if (cli_accept_board(ts[k].p, b, why, sizeof why) != CRUCIBLE_OK) {
                    fprintf(stderr, "crucible compile: target %s refuses its "
                                    "default board %s (%s): %s\n", ts[k].p->id,
                            b->view.name, b->kv->doc.path, why);
                    goto out;
                }
                ts[k].board = b;
            }
            continue;
        }
        cr_board *b = NULL;
        if (strchr(board_arg, '/') || strstr(board_arg, ".ini")) {
            b = cr_boards_add_file(&fileboards, board_arg, err, sizeof err);
            if (!b) {
                fprintf(stderr, "crucible compile: board: %s\n", err);
                goto out;
            }
            if (strcmp(b->view.target, ts[k].p->id)) {
                fprintf(stderr, "crucible compile: board %s (%s) is for target "
                                "%s, not %s\n", b->view.name, board_arg,
                        b->view.target, ts[k].p->id);
                goto out;
            }
        } else {
            b = cr_boards_find(&boards, ts[k].p->id, board_arg);
            if (!b) {
                fprintf(stderr, "crucible compile: no board '%s' for target %s.",
                        board_arg, ts[k].p->id);
                int any = 0;
                for (size_t i = 0; i < boards.n; i++)
                    if (!strcmp(boards.boards[i]->view.target, ts[k].p->id)) {
                        fprintf(stderr, "%s %s", any ? "," : " Known boards:",
                                boards.boards[i]->view.name);
                        any = 1;
                    }
                fprintf(stderr, "%s\n", any ? "" : " It has no boards installed "
                                                   "(see 'crucible boards')");
                if (boards.errors.s)
                    fprintf(stderr, "Board files that failed to parse:\n%s",
                            boards.errors.s);
                goto out;
            }
        }
        char why[512];
        if (cli_accept_board(ts[k].p, b, why, sizeof why) != CRUCIBLE_OK) {
            fprintf(stderr, "crucible compile: target %s refuses board %s (%s): "
                            "%s\n", ts[k].p->id, b->view.name, b->kv->doc.path,
                    why);
            goto out;
        }
        ts[k].board = b;
    }

    /* Model. */
    if (!quiet) fprintf(stderr, "[crucible] loading %s\n", model);
    g = cli_load_model(c, model, fe, &fe_used);
    if (!g) goto out;
    /* Model-level cost figures a frontend computed (e.g. GGUF: parameters,
     * bytes per weight format, KV-cache bytes per token, MACs per token),
     * and whether the model fits the boards at all, before anything else. */
    if (!quiet)
        for (size_t i = 0; i < g->n_meta; i++)
            if (!strncmp(g->meta[i].key, "cost.", 5))
                fprintf(hout, "model %s: %s\n", g->meta[i].key + 5, g->meta[i].value);
    if (compile_fit(g, ts, nt, swarm, quiet, hout, &fitj)) {
        fprintf(stderr, "crucible compile: pre-flight failed: the model does "
                        "not fit %s (see the fit line above: use a larger "
                        "board, more boards with --swarm N, or smaller weights, "
                        "e.g. a Q4_0 file)\n",
                swarm > 1 ? "the swarm" : "the board");
        fit_json(c, model, &fitj);
        goto out;
    }
    if (swarm > 1) {
        fprintf(stderr, "crucible compile: --swarm %ld: the model fits; "
                        "partitioning a model over a swarm is not implemented "
                        "yet, so compile stops after the fit check\n", swarm);
        fit_json(c, model, &fitj);
        rc = 0;
        goto out;
    }
    /* Hardware needs static shapes: bind unknown (dynamic) input dims. */
    for (size_t i = 0; i < g->n_inputs; i++) {
        cr_tensor *t = &g->tensors[g->inputs[i]];
        for (int32_t d = 0; d < t->rank; d++)
            if (t->dims[d] <= 0) {
                t->dims[d] = batch;
                if (!quiet)
                    fprintf(stderr, "[crucible] input %s: dynamic dim %d bound to "
                                    "%lld (--batch)\n", t->name, (int)d,
                            (long long)batch);
                rebind = 1;
            }
    }
    if (rebind && ir_infer_shapes(g, err, sizeof err) != CRUCIBLE_OK) {
        fprintf(stderr, "crucible compile: shape inference with --batch %lld "
                        "failed: %s\n", (long long)batch, err);
        goto out;
    }
    for (size_t i = 0; i < g->n_tensors; i++)
        if (!ir_numel(&g->tensors[i]) && !(g->tensors[i].flags & CRUCIBLE_TENSOR_CONST)) {
            fprintf(stderr, "crucible compile: tensor %s has an unknown shape "
                            "after shape inference; targets need static shapes\n",
                    g->tensors[i].name);
            goto out;
        }
    {
        jbuf uh;
        jb_init(&uh);
        size_t nu = cli_unsupported(g, &uh, NULL);
        if (nu) {
            fprintf(stderr, "crucible compile: pre-flight failed: %zu node%s "
                            "could not be lowered to the canonical op set:\n%s",
                    nu, nu == 1 ? "" : "s", uh.s);
            jb_free(&uh);
            goto out;
        }
        jb_free(&uh);
    }
    if ((quant_arg || n_calib) &&
        compile_quantise(c, &g, config, quant_arg, quant_meth, calib,
                         n_calib, calib_limit, quiet, model, int8_io, &qjson))
        goto out;
    view = ir_view_build(g, NULL);
    if (!view) die_oom();
    const crucible_graph_view *gv = ir_view_graph(view);

    /* Pre-flight: every target answers for every node. */
    if (!quiet) fprintf(stderr, "[crucible] pre-flight: %zu nodes x %zu target%s\n",
                        g->n_nodes, nt, nt == 1 ? "" : "s");
    int preflight_ok = 1;
    jb_puts(&pre, "{\"model\":");
    jb_jstr(&pre, model);
    jb_puts(&pre, ",\"fit\":");
    jb_puts(&pre, fitj.s ? fitj.s : "[]");
    jb_puts(&pre, ",\"targets\":[");
    for (size_t k = 0; k < nt; k++) {
        tsel *t = &ts[k];
        t->support = cr_calloc(g->n_nodes + 1, sizeof(crucible_support));
        if (!t->support) die_oom();
        crucible_query_ctx qc;
        memset(&qc, 0, sizeof qc);
        qc.hdr = (crucible_header)CRUCIBLE_HEADER(crucible_query_ctx);
        qc.board = t->board ? &t->board->view : NULL;
        qc.config = config ? &config->doc : NULL;
        double tot_cycles = 0, tot_s = 0;
        int64_t tot[8] = {0};
        int known[8] = {0};
        int unknown_cycles = 0;
        if (!c->json && !quiet)
            fprintf(hout, "pre-flight: target %s%s%s\n  %-20s %-12s %-9s %8s %8s %6s %6s %4s %4s %8s %8s\n",
                    t->p->id, t->board ? ", board " : "",
                    t->board ? t->board->view.name : "", "NODE", "OP", "SUPPORT",
                    "CYCLES", "LUT", "FF", "DSP", "BRAM", "COMP", "FLASH", "RAM");
        jb_puts(&pre, k ? ",{\"id\":" : "{\"id\":");
        jb_jstr(&pre, t->p->id);
        jb_puts(&pre, ",\"board\":");
        jb_jstr(&pre, t->board ? t->board->view.name : NULL);
        jb_puts(&pre, ",\"nodes\":[");
        for (size_t i = 0; i < g->n_nodes; i++) {
            crucible_support *s = &t->support[i];
            s->size = sizeof *s;
            s->level = CRUCIBLE_SUPPORT_NO;
            s->cycles = s->seconds = s->energy_j = CRUCIBLE_UNKNOWN;
            s->lut = s->ff = s->dsp = s->bram = s->spram = CRUCIBLE_UNKNOWN;
            s->flash_bytes = s->ram_bytes = s->components = CRUCIBLE_UNKNOWN;
            cr_loader_enter(t->p, "query");
            int qr = t->p->target.query(t->p->state, &qc, gv, (uint32_t)i, s);
            cr_loader_leave();
            s->reason[sizeof s->reason - 1] = 0;
            if (qr != CRUCIBLE_OK) {
                s->level = CRUCIBLE_SUPPORT_NO;
                if (!s->reason[0])
                    snprintf(s->reason, sizeof s->reason, "query failed: %s",
                             crucible_status_str(qr));
            }
            if (s->level < CRUCIBLE_SUPPORT_NO || s->level > CRUCIBLE_SUPPORT_PREFERRED)
                s->level = CRUCIBLE_SUPPORT_NO;
            const cr_node *nd = &g->nodes[i];
            if (s->level == CRUCIBLE_SUPPORT_NO) {
                preflight_ok = 0;
                fprintf(stderr, "pre-flight: target %s cannot build node %s (op %s): %s\n",
                        t->p->id, nd->name, ir_op_name(nd->op),
                        s->reason[0] ? s->reason : "no reason given");
            }
            if (s->cycles >= 0) tot_cycles += s->cycles; else unknown_cycles = 1;
            if (s->seconds >= 0) tot_s += s->seconds;
            int64_t vals[8] = {s->lut, s->ff, s->dsp, s->bram, s->spram,
                               s->flash_bytes, s->ram_bytes, s->components};
            for (int q = 0; q < 8; q++)
                if (vals[q] >= 0) {
                    tot[q] += vals[q];
                    known[q] = 1;
                }
            if (!c->json && !quiet) {
                char cy[16], lu[16], ffb[16], fl[16], ra[16], co[16], ds[16], br[16];
                fmt_cost(ds, sizeof ds, (double)s->dsp);
                fmt_cost(br, sizeof br, (double)s->bram);
                fmt_cost(cy, sizeof cy, s->cycles);
                fmt_cost(lu, sizeof lu, (double)s->lut);
                fmt_cost(ffb, sizeof ffb, (double)s->ff);
                fmt_cost(fl, sizeof fl, (double)s->flash_bytes);
                fmt_cost(ra, sizeof ra, (double)s->ram_bytes);
                fmt_cost(co, sizeof co, (double)s->components);
                fprintf(hout, "  %-20.20s %-12s %-9s %8s %8s %6s %6s %4s %4s %8s %8s\n",
                        nd->name, ir_op_name(nd->op), level_name(s->level), cy,
                        lu, ffb, ds, br, co, fl, ra);
            }
            jb_puts(&pre, i ? ",{\"node\":" : "{\"node\":");
            jb_jstr(&pre, nd->name);
            jb_puts(&pre, ",\"op\":");
            jb_jstr(&pre, ir_op_name(nd->op));
            jb_putc(&pre, ',');
            support_json(&pre, s);
            jb_putc(&pre, '}');
        }
        jb_puts(&pre, "],\"totals\":{\"cycles\":");
        if (unknown_cycles) jb_puts(&pre, "null"); else jb_jnum(&pre, tot_cycles);
        jb_printf(&pre, ",\"lut\":%lld,\"ff\":%lld,\"dsp\":%lld,\"bram\":%lld,"
                        "\"spram\":%lld,\"flash_bytes\":%lld,\"ram_bytes\":%lld,"
                        "\"components\":%lld}}",
                  (long long)tot[0], (long long)tot[1], (long long)tot[2],
                  (long long)tot[3], (long long)tot[4], (long long)tot[5],
                  (long long)tot[6], (long long)tot[7]);
        if (!c->json && !quiet) {
            char cy[16];
            fmt_cost(cy, sizeof cy, unknown_cycles ? -1 : tot_cycles);
            static const char *const tn[8] = {"LUT", "FF", "DSP", "BRAM", "SPRAM",
                                              "flash bytes", "RAM bytes",
                                              "components"};
            fprintf(hout, "  total: %s cycles%s", cy,
                    unknown_cycles ? " (some unknown)" : "");
            for (int q = 0; q < 8; q++)
                if (known[q]) fprintf(hout, ", %s %lld", tn[q], (long long)tot[q]);
            fprintf(hout, "\n");
        }
    }
    jb_puts(&pre, "]}");
    if (!preflight_ok) {
        fprintf(stderr, "crucible compile: pre-flight failed; nothing was "
                        "compiled and no package was written\n");
        goto out;
    }

    /* Samples and reference outputs. */
    if (samples_make(g, inputs, n_inputs, n_random, seed, &samples, err,
                     sizeof err)) {
        fprintf(stderr, "crucible compile: samples: %s\n", err);
        goto out;
    }

    /* Compile and verify, target by target. */
    int any_fail = 0, any_skip = 0;
    for (size_t k = 0; k < nt; k++) {
        tsel *t = &ts[k];
        const char *tmp = getenv("TMPDIR");
        char tmpl[4096];
        snprintf(tmpl, sizeof tmpl, "%s/crucible-%s.XXXXXX",
                 tmp && *tmp ? tmp : "/tmp", t->p->id);
        if (!mkdtemp(tmpl)) {
            fprintf(stderr, "crucible compile: cannot create a work directory "
                            "in %s\n", tmp && *tmp ? tmp : "/tmp");
            goto out;
        }
        t->workdir = cr_strdup(tmpl);
        if (!keep) cli_register_workdir(tmpl, 1);
        char *stdir = cr_path_join(tmpl, ".crucible-stage");
        if (!t->workdir || !stdir || cr_mkdirs(stdir, 0700)) die_oom();
        t->st.dir = stdir;
        char prefix[128];
        snprintf(prefix, sizeof prefix, "targets/%s/", t->p->id);
        t->st.prefix = cr_strdup(prefix);
        crucible_artifact_sink sink = {CRUCIBLE_HEADER(crucible_artifact_sink),
                                       &t->st, sink_emit, sink_emit_file};
        crucible_compile_ctx cc;
        memset(&cc, 0, sizeof cc);
        cc.hdr = (crucible_header)CRUCIBLE_HEADER(crucible_compile_ctx);
        cc.graph = gv;
        cc.board = t->board ? &t->board->view : NULL;
        cc.config = config ? &config->doc : NULL;
        cc.workdir = t->workdir;
        cc.sink = &sink;
        if (!quiet) fprintf(stderr, "[crucible] compiling for %s\n", t->p->id);
        cr_loader_enter(t->p, "compile");
        int r = t->p->target.compile(t->p->state, &cc);
        cr_loader_leave();
        if (r != CRUCIBLE_OK || t->st.errors) {
            fprintf(stderr, "crucible compile: target %s failed to compile: %s\n",
                    t->p->id, r != CRUCIBLE_OK ? crucible_status_str(r)
                                               : "an artifact could not be stored");
            goto out;
        }
        t->compiled = 1;
        vl.target = t->p->id;
        if (no_verify) {
            verify_report(&vl, "verify", NULL, CRUCIBLE_VERDICT_SKIPPED,
                          "not run: --no-verify", NULL);
            continue;
        }
        if (!t->p->target.verify) {
            verify_report(&vl, "verify", NULL, CRUCIBLE_VERDICT_SKIPPED,
                          "this target plugin implements no verification", NULL);
            any_skip = 1;
            continue;
        }
        if (!quiet) fprintf(stderr, "[crucible] verifying %s on %s\n", t->p->id,
                            samples.source);
        crucible_verify_ctx vc;
        memset(&vc, 0, sizeof vc);
        vc.hdr = (crucible_header)CRUCIBLE_HEADER(crucible_verify_ctx);
        vc.graph = gv;
        vc.board = cc.board;
        vc.config = cc.config;
        vc.workdir = t->workdir;
        vc.n_samples = (uint32_t)samples.n;
        vc.samples = samples.sample_ptrs;
        vc.sink = &sink;
        vc.ctx = &vl;
        vc.report = verify_report;
        size_t before = vl.n;
        cr_loader_enter(t->p, "verify");
        r = t->p->target.verify(t->p->state, &vc);
        cr_loader_leave();
        if (r != CRUCIBLE_OK)
            verify_report(&vl, "verify", NULL, CRUCIBLE_VERDICT_FAIL,
                          crucible_status_str(r), NULL);
        else if (vl.n == before)
            verify_report(&vl, "verify", NULL, CRUCIBLE_VERDICT_FAIL,
                          "the target reported no verification steps", NULL);
        if (t->st.errors) {
            fprintf(stderr, "crucible compile: target %s emitted an invalid "
                            "artifact during verification\n", t->p->id);
            goto out;
        }
    }
    for (size_t i = 0; i < vl.n; i++) {
        if (vl.items[i].verdict == CRUCIBLE_VERDICT_FAIL) any_fail = 1;
        if (vl.items[i].verdict == CRUCIBLE_VERDICT_SKIPPED && !no_verify)
            any_skip = 1;
    }
    if (any_fail) {
        fprintf(stderr, "crucible compile: verification FAILED (details "
                        "above); no package was written\n");
        goto out;
    }

    /* Reports. */
    const char *vstate = no_verify ? "not run" : any_skip ? "skipped" : "passed";
    jb_printf(&js, "{\"samples\":%zu,\"sample_source\":", samples.n);
    jb_jstr(&js, samples.source);
    jb_puts(&js, ",\"status\":");
    jb_jstr(&js, vstate);
    jb_puts(&js, ",\"steps\":[");
    for (size_t i = 0; i < vl.n; i++) {
        vstep *s = &vl.items[i];
        jb_puts(&js, i ? ",{\"target\":" : "{\"target\":");
        jb_jstr(&js, s->target);
        jb_puts(&js, ",\"step\":");
        jb_jstr(&js, s->step);
        jb_puts(&js, ",\"tool\":");
        jb_jstr(&js, s->tool);
        jb_puts(&js, ",\"verdict\":");
        jb_jstr(&js, s->verdict == CRUCIBLE_VERDICT_PASS ? "pass"
                     : s->verdict == CRUCIBLE_VERDICT_SKIPPED ? "skipped" : "fail");
        jb_puts(&js, ",\"message\":");
        jb_jstr(&js, s->message);
        jb_puts(&js, ",\"metrics\":");
        jb_puts(&js, s->metrics ? s->metrics : "null");
        jb_putc(&js, '}');
    }
    jb_puts(&js, "]}");

    char model_hash[65];
    if (cr_sha256_file(model, model_hash)) {
        fprintf(stderr, "crucible compile: cannot hash %s\n", model);
        goto out;
    }
    time_t now = time(NULL);
    jb_printf(&rep, "crucible %s compile report\n\nmodel:     %s\nsha256:    %s\n"
                    "frontend:  %s %s\nnodes:     %zu, tensors: %zu\n"
                    "samples:   %s\nverified:  %s\n\n",
              CRUCIBLE_VERSION, model, model_hash, fe_used->id,
              fe_used->version, g->n_nodes, g->n_tensors, samples.source, vstate);
    (void)now;
    for (size_t k = 0; k < nt; k++) {
        jb_printf(&rep, "target %s %s%s%s\n", ts[k].p->id, ts[k].p->version,
                  ts[k].board ? ", board " : "",
                  ts[k].board ? ts[k].board->view.name : "");
        for (size_t i = 0; i < ts[k].st.n; i++)
            jb_printf(&rep, "  artifact %s\n", ts[k].st.items[i].name);
    }
    jb_puts(&rep, "\nverification:\n");
    for (size_t i = 0; i < vl.n; i++)
        jb_printf(&rep, "  %-8s %s/%s%s%s%s: %s\n",
                  vl.items[i].verdict == CRUCIBLE_VERDICT_PASS ? "PASS"
                  : vl.items[i].verdict == CRUCIBLE_VERDICT_SKIPPED ? "SKIPPED" : "FAIL",
                  vl.items[i].target, vl.items[i].step,
                  vl.items[i].tool ? " [" : "", vl.items[i].tool ? vl.items[i].tool : "",
                  vl.items[i].tool ? "]" : "", vl.items[i].message);

    /* Manifest members. */
    jbuf man;
    jb_init(&man);
    jb_puts(&man, "\"model\":{\"path\":");
    jb_jstr(&man, cr_basename(model));
    jb_puts(&man, ",\"sha256\":");
    jb_jstr(&man, model_hash);
    jb_puts(&man, ",\"frontend\":");
    jb_jstr(&man, fe_used->id);
    jb_puts(&man, "},\"plugins\":[{\"id\":");
    jb_jstr(&man, fe_used->id);
    jb_puts(&man, ",\"version\":");
    jb_jstr(&man, fe_used->version);
    jb_printf(&man, ",\"abi\":\"%u.%u\",\"kind\":\"frontend\"}", fe_used->abi_major,
              fe_used->abi_minor);
    for (size_t k = 0; k < nt; k++) {
        jb_puts(&man, ",{\"id\":");
        jb_jstr(&man, ts[k].p->id);
        jb_puts(&man, ",\"version\":");
        jb_jstr(&man, ts[k].p->version);
        jb_printf(&man, ",\"abi\":\"%u.%u\",\"kind\":\"target\",\"board\":",
                  ts[k].p->abi_major, ts[k].p->abi_minor);
        jb_jstr(&man, ts[k].board ? ts[k].board->view.name : NULL);
        jb_putc(&man, '}');
    }
    jb_puts(&man, "],\"tools\":");
    cr_tools_versions_json(&man);
    jb_puts(&man, ",\"verification\":");
    jb_jstr(&man, vstate);
    if (man.err || pre.err || js.err || rep.err) die_oom();

    /* Write the package: no plugin code runs from here on. */
    pkg_writer *w = pkg_writer_open(out_path, err, sizeof err);
    if (!w) {
        fprintf(stderr, "crucible compile: %s\n", err);
        jb_free(&man);
        goto out;
    }
    jbuf irt;
    jb_init(&irt);
    ir_print(g, &irt);
    int wr = irt.err ? -1 : pkg_add(w, "ir.txt", irt.s, irt.len);
    jb_free(&irt);
    if (!wr) wr = pkg_add(w, "reports/preflight.json", pre.s, pre.len);
    if (!wr) wr = pkg_add(w, "reports/verification.json", js.s, js.len);
    if (!wr) wr = pkg_add(w, "reports/report.txt", rep.s, rep.len);
    if (!wr && qjson.len)
        wr = pkg_add(w, "reports/quantisation.json", qjson.s, qjson.len);
    for (size_t k = 0; k < nt && !wr; k++)
        for (size_t i = 0; i < ts[k].st.n && !wr; i++)
            wr = pkg_add_file(w, ts[k].st.items[i].name, ts[k].st.items[i].path);
    if (wr) {
        fprintf(stderr, "crucible compile: writing %s: %s\n", out_path,
                pkg_writer_error(w));
        pkg_writer_abort(w);
        jb_free(&man);
        goto out;
    }
    if (pkg_writer_commit(w, man.s, err, sizeof err)) {
        fprintf(stderr, "crucible compile: %s\n", err);
        jb_free(&man);
        goto out;
    }
    jb_free(&man);
    rc = (any_skip && !no_verify) ? 1 : 0;
    if (c->json) {
        printf("{\"package\":");
        jbuf o;
        jb_init(&o);
        jb_jstr(&o, out_path);
        printf("%s,\"ok\":%s,\"verification\":%s,\"preflight\":%s}\n", o.s,
               rc == 0 ? "true" : "false", js.s, pre.s);
        jb_free(&o);
    }
    if (!quiet || rc) {
        fprintf(stderr, "crucible compile: wrote %s (verification %s)\n",
                out_path, vstate);
        if (any_skip && !no_verify)
            fprintf(stderr, "crucible compile: some verification steps were "
                            "SKIPPED (see above: install the named tools, or "
                            "pass --no-verify to accept an unverified "
                            "package); exit status 1\n");
    }

out:
    for (size_t k = 0; k < nt; k++) {
        tsel *t = &ts[k];
        cr_free(t->support);
        for (size_t i = 0; i < t->st.n; i++) {
            cr_free(t->st.items[i].name);
            cr_free(t->st.items[i].path);
        }
        cr_free(t->st.items);
        cr_free(t->st.dir);
        cr_free((char *)t->st.prefix);
        if (t->workdir) {
            if (keep)
                fprintf(stderr, "crucible compile: work directory of %s kept: %s\n",
                        t->p->id, t->workdir);
            else
                cr_rmtree(t->workdir);
            cli_register_workdir(t->workdir, 0);
        }
        cr_free(t->workdir);
    }
    vlog_free(&vl);
    samples_free(&samples);
    ir_view_free(view);
    ir_free(g);
    cr_boards_free(&boards);
    cr_boards_free(&fileboards);
    cr_kv_free(config);
    jb_free(&pre);
    jb_free(&rep);
    jb_free(&js);
    jb_free(&fitj);
    jb_free(&qjson);
    free(calib);
    cr_free(tlist);
    cr_free(out_dir);
    free(inputs);
    free(board_dirs);
    return rc;
}
