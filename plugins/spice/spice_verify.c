/*
 * spice_verify.c - verification in ngspice: every sample through the DAC,
 * one .dc sweep over all samples per component variant, the ADC, the
 * digital softmax (if any), and the comparison with the reference
 * interpreter: top-1 agreement, max absolute and relative error, error as
 * a fraction of the output full scale, and the peak op-amp output
 * voltages per layer. A real board is verified twice: with ideal
 * components (same architecture) and with its real components.
 */
#include "spice_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_MONITORS 1024 /* ngspice looks every wrdata name up among all vectors: 2,334 names on the 30k-node CNN took 18 s */

typedef struct run_metrics {
    const char *label;
    int ran;
    int verdict;
    uint32_t samples;
    uint32_t top1_match;
    double top1;
    double max_abs, max_rel, fs_units, err_fs;
    double logit_max_abs; /* softmax graphs: pre-softmax vs the float model */
    double out_peak_v;    /* largest |output voltage| at the ADC */
    uint32_t worst_sample;
    double seconds;
    double *peak_tia, *peak_stage; /* per layer, volts (NaN: not monitored) */
    int64_t over_fs, saturated;
    double top1_min, err_fs_max;
    double s_out;
    char msg[1024];
} run_metrics;

typedef struct vctx {
    const crucible_host *h;
    const crucible_verify_ctx *ctx;
    const crucible_host_tools *tools;
    sp_params p;
    sp_plan plan;
    uint32_t n;       /* samples simulated */
    double *volts;    /* n * n_in DAC voltages */
    int64_t dac_clipped;
    double float_diff; /* plugin float model vs reference */
    char ngspice_version[96];
} vctx;

static void emit_text(const vctx *v, const char *name, const char *data,
                      size_t len)
{
    const crucible_verify_ctx *c = v->ctx;
    if (c->sink && c->sink->emit) c->sink->emit(c->sink->ctx, name, data, len);
}

static int write_emit(const vctx *v, const char *name, const sp_buf *b)
{
    char path[4096];
    if (b->err) return CRUCIBLE_E_NOMEM;
    if (sp_path_join(path, sizeof path, v->ctx->workdir, name) ||
        sp_write_file(path, b->s ? b->s : "", b->len))
        return CRUCIBLE_E_IO;
    emit_text(v, name, b->s ? b->s : "", b->len);
    return CRUCIBLE_OK;
}

/* First lines of the tool output that mention an error. */
static void excerpt(const char *text, char *dst, size_t n)
{
    size_t k = 0;
    int lines = 0;
    dst[0] = 0;
    for (const char *p = text ? text : ""; *p && lines < 3;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        int hit = 0;
        for (size_t i = 0; i + 4 < len && !hit; i++)
            hit = !strncmp(p + i, "rror", 4) || !strncmp(p + i, "ailed", 5) ||
                  !strncmp(p + i, "not found", 9) || !strncmp(p + i, "timed out", 9);
        if (hit && k + 8 < n) {
            if (k) k += (size_t)snprintf(dst + k, n - k, " | ");
            size_t c = len < n - k - 1 ? len : n - k - 1;
            memcpy(dst + k, p, c);
            k += c;
            dst[k] = 0;
            lines++;
        }
        p = e ? e + 1 : p + len;
    }
    if (!k) snprintf(dst, n, "(no error lines in the ngspice output; see the log)");
}

static void find_version(vctx *v, const char *out)
{
    const char *p = out ? strstr(out, "ngspice-") : NULL;
    if (!p || v->ngspice_version[0]) return;
    size_t k = 0;
    while (p[k] && p[k] != ' ' && p[k] != '\n' && k + 1 < sizeof v->ngspice_version) k++;
    memcpy(v->ngspice_version, p, k);
    v->ngspice_version[k] = 0;
}

/* ---- DAC and ADC ------------------------------------------------------- */
double sp_quantise(double x, double lo, double hi, int bits, int64_t *clipped)
{
    if (x < lo) x = lo, (*clipped)++;
    if (x > hi) x = hi, (*clipped)++;
    if (bits <= 0) return x;
    double fs = fmax(fabs(lo), fabs(hi));
    if (lo < 0) { /* bipolar, two's complement codes */
        double half = ldexp(1.0, bits - 1);
        double step = fs / half;
        double code = floor(x / step + 0.5);
        if (code > half - 1) code = half - 1;
        if (code < -half) code = -half;
        return code * step;
    }
    double levels = ldexp(1.0, bits) - 1.0;
    double step = fs / levels;
    double code = floor(x / step + 0.5);
    if (code > levels) code = levels;
    if (code < 0) code = 0;
    return code * step;
}

void sp_softmax(double *y, int64_t n)
{
    double m = y[0], s = 0;
    for (int64_t i = 1; i < n; i++) m = fmax(m, y[i]);
    for (int64_t i = 0; i < n; i++) s += (y[i] = exp(y[i] - m));
    for (int64_t i = 0; i < n; i++) y[i] /= s;
}

static int64_t argmax_d(const double *y, int64_t n)
{
    int64_t b = 0;
    for (int64_t i = 1; i < n; i++)
        if (y[i] > y[b]) b = i;
    return b;
}

static int64_t argmax_f(const float *y, int64_t n)
{
    int64_t b = 0;
    for (int64_t i = 1; i < n; i++)
        if (y[i] > y[b]) b = i;
    return b;
}

/* ---- samples ------------------------------------------------------------ */
static int check_samples(vctx *v, char *why, size_t n)
{
    const crucible_verify_ctx *c = v->ctx;
    for (uint32_t k = 0; k < v->n; k++) {
        const crucible_sample *s = c->samples[k];
        if (!s || s->n_inputs != 1 || s->n_outputs != 1 || !s->inputs[0] ||
            !s->outputs[0]) {
            snprintf(why, n, "sample %u does not have one input and one output", k);
            return -1;
        }
        const crucible_tensor_view *in = s->inputs[0], *out = s->outputs[0];
        if (in->dtype != CRUCIBLE_DT_F32 || !in->data ||
            in->data_bytes != (size_t)v->plan.n_in * 4) {
            snprintf(why, n, "sample %u: input %s is not f32 data of %lld "
                     "elements", k, v->plan.in_name, (long long)v->plan.n_in);
            return -1;
        }
        if (out->dtype != CRUCIBLE_DT_F32 || !out->data ||
            out->data_bytes != (size_t)v->plan.n_out * 4) {
            snprintf(why, n, "sample %u: reference output %s is not f32 data "
                     "of %lld elements", k, v->plan.out_name,
                     (long long)v->plan.n_out);
            return -1;
        }
    }
    return 0;
}

/* ---- results ------------------------------------------------------------ */
/* Next whitespace-separated token of *p as a number; -1 at the end of the
 * line or on garbage. */
int sp_next_num(const char **p, double *v)
{
    const char *s = *p;
    while (*s == ' ' || *s == '\t' || *s == '\r') s++;
    if (!*s || *s == '\n') return -1;
    char tok[64];
    size_t k = 0;
    while (*s && *s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') {
        if (k + 1 < sizeof tok) tok[k++] = *s;
        s++;
    }
    tok[k] = 0;
    *p = s;
    return sp_parse_num(tok, v);
}

char *sp_read_text(const crucible_host *h, const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            size_t nc = cap ? cap * 2 : 131072;
            char *nb = h->realloc(h, buf, cap, nc);
            if (!nb) {
                if (buf) h->realloc(h, buf, cap, 0);
                fclose(f);
                return NULL;
            }
            buf = nb;
            cap = nc;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (!got) break;
    }
    fclose(f);
    buf[n] = 0;
    /* shrink-free: the caller frees with cap via *len */
    *len = cap;
    return buf;
}

/* ---- one run --------------------------------------------------------- */
typedef struct run_bufs {
    double *vals, *y, *yf, *scr, *x;
    size_t n_vals, n_y, n_scr, n_x;
    char *text;
    size_t text_cap;
    sp_real *real;
    size_t n_real;
} run_bufs;

static void run_bufs_free(const crucible_host *h, run_bufs *rb)
{
    sp_free(h, rb->vals, rb->n_vals, sizeof(double));
    sp_free(h, rb->y, rb->n_y, sizeof(double));
    sp_free(h, rb->yf, rb->n_scr, sizeof(double));
    sp_free(h, rb->scr, rb->n_scr, sizeof(double));
    sp_free(h, rb->x, rb->n_x, sizeof(double));
    sp_free(h, rb->real, rb->n_real, sizeof(sp_real));
    if (rb->text) h->realloc(h, rb->text, rb->text_cap, 0);
    memset(rb, 0, sizeof *rb);
}

/* Writes the variant's netlists (the board's own were written by
 * compile) and its harness. */
static int write_variant(vctx *v, const sp_variant *var, const sp_real *real,
                         const char *harness, const char *results, int monitor)
{
    const crucible_host *h = v->h;
    const sp_plan *plan = &v->plan;
    char name[192];
    int rc = CRUCIBLE_OK;
    sp_buf b;
    sp_buf_init(&b, h);
    if (var->prefix[0]) {
        snprintf(name, sizeof name, "%slib.cir", var->prefix);
        sp_net_lib(&b, plan, &v->p, var);
        rc = write_emit(v, name, &b);
        for (uint32_t l = 0; !rc && l < plan->n_layers; l++) {
            sp_buf_free(&b);
            sp_buf_init(&b, h);
            sp_net_layer(&b, plan, &v->p, var, real, l);
            sp_layer_file(plan, l, var->prefix, name, sizeof name);
            rc = write_emit(v, name, &b);
        }
        if (!rc) {
            sp_buf_free(&b);
            sp_buf_init(&b, h);
            sp_net_model(&b, plan, &v->p, var, real);
            snprintf(name, sizeof name, "%smodel.cir", var->prefix);
            rc = write_emit(v, name, &b);
        }
        sp_buf_free(&b);
        sp_buf_init(&b, h);
    }
    if (!rc) {
        sp_net_harness(&b, plan, &v->p, var, real, v->volts, v->n, results,
                       monitor);
        rc = write_emit(v, harness, &b);
    }
    sp_buf_free(&b);
    return rc;
}

static int run_variant(vctx *v, const sp_variant *var, run_metrics *rm)
{
    const crucible_host *h = v->h;
    const sp_plan *plan = &v->plan;
    const sp_params *p = &v->p;
    char path[4096], ex[600], results[96], harness[96], logname[96];
    int rc = CRUCIBLE_OK;
    run_bufs rb;
    memset(&rb, 0, sizeof rb);
    rm->label = var->label;
    rm->verdict = CRUCIBLE_VERDICT_FAIL;
    rb.n_real = plan->n_layers;
    rb.real = sp_calloc(h, rb.n_real, sizeof(sp_real));
    if (!rb.real) return CRUCIBLE_E_NOMEM;
    sp_realise(plan, p, &var->tech, rb.real);
    rm->s_out = rb.real[plan->n_layers - 1].s_out;

    int64_t n_mon = 0;
    for (uint32_t l = 0; l < plan->n_layers; l++) n_mon += sp_monitor_count(plan, l);
    const int monitor = n_mon <= MAX_MONITORS;
    if (!monitor) n_mon = 0;
    snprintf(results, sizeof results, "results_%s.txt", var->label);
    snprintf(harness, sizeof harness, "verify_%s.cir", var->label);
    snprintf(logname, sizeof logname, "ngspice_%s.log", var->label);
    if ((rc = write_variant(v, var, rb.real, harness, results, monitor))) {
        snprintf(rm->msg, sizeof rm->msg, "cannot write the %s netlists in "
                 "the work directory (%s)", var->label, crucible_status_str(rc));
        rc = CRUCIBLE_OK; /* reported as a FAIL */
        goto out;
    }
    if (sp_path_join(path, sizeof path, v->ctx->workdir, results)) {
        snprintf(rm->msg, sizeof rm->msg, "work directory path too long");
        goto out;
    }
    remove(path); /* no stale results can pass */

    /* ngspice in batch mode: every sample in one .dc sweep */
    double est = 0;
    for (uint32_t l = 0; l < plan->n_layers; l++)
        est += sp_sim_seconds((double)rb.real[l].counts.resistors,
                              (double)rb.real[l].counts.opamps,
                              var->tech.opamp_macro);
    double timeout = 60.0 + 20.0 * est * v->n;
    if (timeout > p->sim_timeout_s) timeout = p->sim_timeout_s;
    const char *argv[] = {"ngspice", "-b", harness, NULL};
    crucible_tool_request req;
    crucible_tool_result res;
    memset(&req, 0, sizeof req);
    memset(&res, 0, sizeof res);
    req.hdr = (crucible_header)CRUCIBLE_HEADER(crucible_tool_request);
    res.hdr = (crucible_header)CRUCIBLE_HEADER(crucible_tool_result);
    req.argv = argv;
    req.cwd = v->ctx->workdir;
    req.timeout_s = timeout;
    req.debian_package = "ngspice";
    req.version_arg = NULL; /* the first line of `ngspice --version` is a
                               banner; the version is taken from the log */
    const crucible_host_progress *prog =
        h->get_extension ? h->get_extension(h, CRUCIBLE_EXT_PROGRESS) : NULL;
    char pstep[128];
    snprintf(pstep, sizeof pstep, "ngspice, %s components, %u samples",
             var->label, v->n);
    if (prog && prog->report) prog->report(h, pstep, -1.0);
    int st = v->tools->run(h, &req, &res);
    if (prog && prog->report) prog->report(h, pstep, 1.0);
    rm->seconds = res.seconds;
    if (st == CRUCIBLE_E_SKIPPED) {
        rm->verdict = CRUCIBLE_VERDICT_SKIPPED;
        snprintf(rm->msg, sizeof rm->msg, "%s",
                 res.output && *res.output ? res.output
                                           : "ngspice not found (install ngspice)");
        v->tools->free_result(h, &res);
        goto out;
    }
    rm->ran = 1;
    find_version(v, res.output);
    if (res.output) emit_text(v, logname, res.output, res.output_len);
    excerpt(res.output, ex, sizeof ex);
    v->tools->free_result(h, &res);
    if (st != CRUCIBLE_OK) {
        snprintf(rm->msg, sizeof rm->msg, "ngspice failed on %s (%s): %s",
                 harness, crucible_status_str(st), ex);
        goto out;
    }
    rb.text = sp_read_text(h, path, &rb.text_cap);
    if (!rb.text) {
        snprintf(rm->msg, sizeof rm->msg, "ngspice wrote no %s: %s", results, ex);
        goto out;
    }
    size_t text_len = strlen(rb.text);
    emit_text(v, results, rb.text, text_len);

    /* a header line, then one row per sample: sweep, outputs, monitors */
    const int64_t cols = 1 + plan->n_out + n_mon;
    rb.n_vals = (size_t)cols;
    rb.n_y = (size_t)plan->n_out;
    rb.n_scr = sp_plan_scratch(plan);
    rb.n_x = (size_t)plan->n_in;
    rb.vals = sp_calloc(h, rb.n_vals, sizeof(double));
    rb.y = sp_calloc(h, rb.n_y, sizeof(double));
    rb.yf = sp_calloc(h, rb.n_scr, sizeof(double));
    rb.scr = sp_calloc(h, rb.n_scr, sizeof(double));
    rb.x = sp_calloc(h, rb.n_x, sizeof(double));
    if (!rb.vals || !rb.y || !rb.yf || !rb.scr || !rb.x) {
        rc = CRUCIBLE_E_NOMEM;
        goto out;
    }
    for (uint32_t l = 0; l < plan->n_layers; l++)
        rm->peak_tia[l] = rm->peak_stage[l] = monitor ? 0.0 : NAN;
    const char *line = strchr(rb.text, '\n');
    line = line ? line + 1 : rb.text + text_len;
    const double adc_lo = plan->out_relu ? 0.0 : -p->v_fs;
    const double swing = var->tech.opamp_macro ? var->tech.swing_v : INFINITY;
    const int soft = plan->softmax_node != SP_NONE;
    const int quiet_ex = strstr(ex, "(no error lines") != NULL;
    rm->fs_units = soft ? 1.0 : p->v_fs / rm->s_out;
    int64_t adc_clip = 0;
    uint32_t rows = 0;
    for (uint32_t i = 0; i < v->n; i++) {
        const char *q = line;
        int64_t c = 0;
        while (c < cols && sp_next_num(&q, &rb.vals[c]) == 0) c++;
        if (c != cols || fabs(rb.vals[0] - (double)i) > 0.3) {
            snprintf(rm->msg, sizeof rm->msg, "%s: row %u has %lld of %lld "
                     "values%s%s", results, i, (long long)c, (long long)cols,
                     quiet_ex ? "" : "; ngspice: ", quiet_ex ? "" : ex);
            goto out;
        }
        const char *e = strchr(q, '\n');
        line = e ? e + 1 : q + strlen(q);
        rows++;
        /* ADC, back to units, digital softmax */
        for (int64_t m = 0; m < plan->n_out; m++) {
            rm->out_peak_v = fmax(rm->out_peak_v, fabs(rb.vals[1 + m]));
            rb.y[m] = sp_quantise(rb.vals[1 + m], adc_lo, p->v_fs, p->adc_bits,
                               &adc_clip) / rm->s_out;
        }
        const crucible_sample *s = v->ctx->samples[i];
        const float *ref = s->outputs[0]->data;
        if (soft) {
            /* the analog logits against the float model, before softmax */
            const float *in = s->inputs[0]->data;
            for (int64_t k = 0; k < plan->n_in; k++) rb.x[k] = in[k];
            sp_plan_forward(plan, p, rb.x, rb.yf, rb.scr, NULL, NULL);
            for (int64_t m = 0; m < plan->n_out; m++)
                rm->logit_max_abs = fmax(rm->logit_max_abs, fabs(rb.y[m] - rb.yf[m]));
            sp_softmax(rb.y, plan->n_out);
        }
        double err = 0, rmax = 0;
        for (int64_t m = 0; m < plan->n_out; m++) {
            err = fmax(err, fabs(rb.y[m] - (double)ref[m]));
            rmax = fmax(rmax, fabs((double)ref[m]));
        }
        if (err > rm->max_abs) rm->max_abs = err, rm->worst_sample = i;
        rm->max_rel = fmax(rm->max_rel, err / fmax(rmax, 1e-12));
        if (argmax_d(rb.y, plan->n_out) == argmax_f(ref, plan->n_out))
            rm->top1_match++;
        /* peak op-amp outputs per layer */
        int64_t col = 1 + plan->n_out;
        for (uint32_t l = 0; monitor && l < plan->n_layers; l++) {
            const sp_layer *L = &plan->layers[l];
            int64_t tia = 2 * L->M * L->geom.tiles_r;
            int64_t cnt = sp_monitor_count(plan, l);
            for (int64_t j = 0; j < cnt; j++, col++) {
                double a = fabs(rb.vals[col]);
                double *pk = j < tia ? &rm->peak_tia[l] : &rm->peak_stage[l];
                if (a > *pk) *pk = a;
                if (a > p->v_fs * 1.0001) rm->over_fs++;
                if (a > 0.98 * swing) rm->saturated++;
            }
        }
    }
    rm->samples = rows;
    rm->top1 = rows ? (double)rm->top1_match / rows : 0;
    rm->err_fs = rm->max_abs / rm->fs_units;
    {
        int ok = rm->top1 >= rm->top1_min && rm->err_fs <= rm->err_fs_max;
        rm->verdict = ok ? CRUCIBLE_VERDICT_PASS : CRUCIBLE_VERDICT_FAIL;
        int k = snprintf(rm->msg, sizeof rm->msg,
                         "%s components: top-1 agreement %u/%u (%.2f%%, need "
                         ">= %.2f%%), max |error| %.4g = %.3g%% of the output "
                         "full scale %.4g (limit %.3g%%), max relative error "
                         "%.3g%%; %u samples in %.2f s of ngspice",
                         var->label, rm->top1_match, rows, 100.0 * rm->top1,
                         100.0 * rm->top1_min, rm->max_abs, 100.0 * rm->err_fs,
                         rm->fs_units, 100.0 * rm->err_fs_max,
                         100.0 * rm->max_rel, rows, rm->seconds);
        if (rm->saturated > 0 && k > 0 && (size_t)k < sizeof rm->msg)
            k += snprintf(rm->msg + k, sizeof rm->msg - (size_t)k,
                          "; %lld op-amp output values reached the swing limit",
                          (long long)rm->saturated);
        if (v->dac_clipped > 0 && k > 0 && (size_t)k < sizeof rm->msg)
            k += snprintf(rm->msg + k, sizeof rm->msg - (size_t)k,
                          "; %lld input values outside the declared input "
                          "range %g..%g were clipped by the DAC",
                          (long long)v->dac_clipped, p->in_min, p->in_max);
        if (!ok && rm->out_peak_v < 0.25 * p->v_fs && k > 0 &&
            (size_t)k < sizeof rm->msg)
            snprintf(rm->msg + k, sizeof rm->msg - (size_t)k,
                     "; the outputs use only %.1f%% of the ADC range (peak "
                     "%.3g V of %g V): calibrate the scaling ([scaling] mode "
                     "= calibrated) or raise adc.bits",
                     100.0 * rm->out_peak_v / p->v_fs, rm->out_peak_v, p->v_fs);
    }
out:
    run_bufs_free(h, &rb);
    return rc;
}

/* ---- reports --------------------------------------------------------- */
static void metrics_json(sp_buf *j, const vctx *v, const run_metrics *rm)
{
    sp_printf(j, "{\"components\":\"%s\",\"samples\":%u,\"top1_matches\":%u,"
                 "\"top1_agreement\":", rm->label, rm->samples, rm->top1_match);
    sp_json_num(j, rm->top1);
    sp_puts(j, ",\"top1_min\":");
    sp_json_num(j, rm->top1_min);
    sp_puts(j, ",\"max_abs_err\":");
    sp_json_num(j, rm->max_abs);
    sp_puts(j, ",\"max_rel_err\":");
    sp_json_num(j, rm->max_rel);
    sp_puts(j, ",\"output_fullscale\":");
    sp_json_num(j, rm->fs_units);
    sp_puts(j, ",\"err_fs\":");
    sp_json_num(j, rm->err_fs);
    sp_puts(j, ",\"err_fs_max\":");
    sp_json_num(j, rm->err_fs_max);
    sp_puts(j, ",\"output_peak_v\":");
    sp_json_num(j, rm->out_peak_v);
    if (v->plan.softmax_node != SP_NONE) {
        sp_puts(j, ",\"logit_max_abs_err\":");
        sp_json_num(j, rm->logit_max_abs);
    }
    sp_printf(j, ",\"worst_sample\":%u,\"adc_bits\":%d,\"dac_bits\":%d,"
                 "\"dac_clipped\":%lld,\"over_fullscale\":%lld,"
                 "\"saturated\":%lld,\"ngspice_seconds\":",
              rm->worst_sample, v->p.adc_bits, v->p.dac_bits,
              (long long)v->dac_clipped, (long long)rm->over_fs,
              (long long)rm->saturated);
    sp_json_num(j, rm->seconds);
    sp_puts(j, ",\"ms_per_sample\":");
    sp_json_num(j, rm->samples ? 1e3 * rm->seconds / rm->samples : NAN);
    sp_puts(j, ",\"peak_v\":[");
    for (uint32_t l = 0; l < v->plan.n_layers; l++) {
        sp_printf(j, "%s{\"layer\":%u,\"tia\":", l ? "," : "", l + 1);
        sp_json_num(j, rm->peak_tia ? rm->peak_tia[l] : NAN);
        sp_puts(j, ",\"stage\":");
        sp_json_num(j, rm->peak_stage ? rm->peak_stage[l] : NAN);
        sp_puts(j, "}");
    }
    sp_puts(j, "]}");
}

static void write_reports(vctx *v, run_metrics *runs, int n_runs,
                          const sp_buf *dj, const sp_buf *dt,
                          const sp_buf *pj, const sp_buf *pt)
{
    const crucible_host *h = v->h;
    const crucible_verify_ctx *c = v->ctx;
    sp_buf j, t;
    sp_buf_init(&j, h);
    sp_buf_init(&t, h);
    sp_printf(&j, "{\"target\":\"%s\",\"version\":\"%s\",\"board\":", SPICE_ID,
              SPICE_VERSION);
    sp_json_str(&j, v->p.board_name);
    sp_puts(&j, ",\"ngspice\":");
    sp_json_str(&j, v->ngspice_version[0] ? v->ngspice_version : NULL);
    sp_printf(&j, ",\"samples_given\":%u,\"samples_simulated\":%u,"
                  "\"softmax\":", c->n_samples, v->n);
    sp_json_str(&j, v->plan.softmax_node != SP_NONE ? "digital, after the ADC" : NULL);
    sp_puts(&j, ",\"float_model_max_diff\":");
    sp_json_num(&j, v->float_diff);
    sp_puts(&j, ",\"runs\":[");
    sp_printf(&t, "crucible spice verification (board %s, %s)\n\n",
              v->p.board_name, v->ngspice_version[0] ? v->ngspice_version : "ngspice");
    sp_printf(&t, "samples: %u simulated of %u given; DAC %d bits over %g..%g "
                  "(%lld values clipped); ADC %d bits over %s%g V%s\n",
              v->n, c->n_samples, v->p.dac_bits, v->p.in_min, v->p.in_max,
              (long long)v->dac_clipped, v->p.adc_bits,
              v->plan.out_relu ? "0.." : "+-", v->p.v_fs,
              v->plan.softmax_node != SP_NONE
                  ? "; softmax computed digitally after the ADC" : "");
    sp_printf(&t, "float model of the mapped chain vs reference interpreter: "
                  "max |diff| %.3g\n\n", v->float_diff);
    int first = 1;
    for (int i = 0; i < n_runs; i++) {
        run_metrics *rm = &runs[i];
        if (!rm->label) continue;
        const char *vd = rm->verdict == CRUCIBLE_VERDICT_PASS ? "PASS"
                         : rm->verdict == CRUCIBLE_VERDICT_SKIPPED ? "SKIPPED" : "FAIL";
        sp_printf(&t, "%-8s %s\n", vd, rm->msg);
        if (rm->samples && rm->peak_tia) {
            for (uint32_t l = 0; l < v->plan.n_layers; l++)
                sp_printf(&t, "         layer %u peak |V|: TIA %.3g V, stage "
                              "%.3g V (design full scale %g V)\n", l + 1,
                          rm->peak_tia[l], rm->peak_stage[l], v->p.v_fs);
        }
        sp_puts(&j, first ? "{\"verdict\":" : ",{\"verdict\":");
        first = 0;
        sp_json_str(&j, rm->verdict == CRUCIBLE_VERDICT_PASS ? "pass"
                        : rm->verdict == CRUCIBLE_VERDICT_SKIPPED ? "skipped" : "fail");
        sp_puts(&j, ",\"message\":");
        sp_json_str(&j, rm->msg);
        sp_puts(&j, ",\"metrics\":");
        if (rm->samples) metrics_json(&j, v, rm);
        else sp_printf(&j, "{\"components\":\"%s\"}", rm->label);
        sp_puts(&j, "}");
    }
    sp_puts(&j, "],\"power\":");
    sp_puts(&j, pj && pj->len && !pj->err ? pj->s : "null");
    if (pt && pt->len && !pt->err) sp_puts(&t, pt->s);
    sp_puts(&j, ",\"drift\":");
    sp_puts(&j, dj && dj->len && !dj->err ? dj->s : "null");
    sp_puts(&j, "}\n");
    if (dt && dt->len && !dt->err) sp_puts(&t, dt->s);
    if (!j.err) emit_text(v, "report.json", j.s, j.len);
    if (!t.err) emit_text(v, "report.txt", t.s, t.len);
    sp_buf_free(&j);
    sp_buf_free(&t);
}

/* ---- the verify slot ------------------------------------------------- */
int sp_verify(sp_state *s, const crucible_verify_ctx *ctx)
{
    const crucible_host *h = s->host;
    char why[1024];
    vctx v;
    run_metrics runs[2];
    int rc = CRUCIBLE_OK;
    if (!ctx || !ctx->report || !ctx->graph || !ctx->workdir)
        return CRUCIBLE_E_INVALID;
    memset(&v, 0, sizeof v);
    memset(runs, 0, sizeof runs);
    v.h = h;
    v.ctx = ctx;
    if (sp_params_load(ctx->board, ctx->config, &v.p, why, sizeof why)) {
        ctx->report(ctx->ctx, "design", NULL, CRUCIBLE_VERDICT_FAIL, why, NULL);
        return CRUCIBLE_OK;
    }
    if (sp_plan_build(h, ctx->graph, &v.p, &v.plan, why, sizeof why)) {
        ctx->report(ctx->ctx, "design", NULL, CRUCIBLE_VERDICT_FAIL, why, NULL);
        return CRUCIBLE_OK;
    }
    const int ideal = sp_tech_is_ideal(&v.p.tech);
    const char *first_step = "simulate-ideal";
    v.tools = h->get_extension ? h->get_extension(h, CRUCIBLE_EXT_TOOLS) : NULL;
    if (!v.tools || !CRUCIBLE_HAS_FIELD(v.tools->hdr, crucible_host_tools, free_result) ||
        !v.tools->run || !v.tools->free_result) {
        ctx->report(ctx->ctx, first_step, "ngspice", CRUCIBLE_VERDICT_SKIPPED,
                    "the host offers no tools service (" CRUCIBLE_EXT_TOOLS ")", NULL);
        if (!ideal)
            ctx->report(ctx->ctx, "simulate-real", "ngspice", CRUCIBLE_VERDICT_SKIPPED,
                        "the host offers no tools service", NULL);
        goto out;
    }
    v.n = ctx->n_samples;
    if (v.p.max_samples && v.n > (uint32_t)v.p.max_samples) v.n = (uint32_t)v.p.max_samples;
    if (!v.n) {
        ctx->report(ctx->ctx, first_step, "ngspice", CRUCIBLE_VERDICT_SKIPPED,
                    "not run: no samples", NULL);
        goto out;
    }
    if (check_samples(&v, why, sizeof why)) {
        ctx->report(ctx->ctx, first_step, "ngspice", CRUCIBLE_VERDICT_FAIL, why, NULL);
        goto out;
    }
    /* DAC voltages, and the plugin's float model against the reference */
    size_t sw = sp_plan_scratch(&v.plan);
    double *x = sp_calloc(h, (size_t)v.plan.n_in, sizeof(double));
    double *yf = sp_calloc(h, sw, sizeof(double));
    double *scr = sp_calloc(h, sw, sizeof(double));
    v.volts = sp_calloc(h, (size_t)v.n * (size_t)v.plan.n_in, sizeof(double));
    if (!x || !yf || !scr || !v.volts) {
        sp_free(h, x, (size_t)v.plan.n_in, sizeof(double));
        sp_free(h, yf, sw, sizeof(double));
        sp_free(h, scr, sw, sizeof(double));
        rc = CRUCIBLE_E_NOMEM;
        goto out;
    }
    const double s_in = v.p.dac_vmax / fmax(fabs(v.p.in_min), fabs(v.p.in_max));
    for (uint32_t i = 0; i < v.n; i++) {
        const float *in = ctx->samples[i]->inputs[0]->data;
        const float *ref = ctx->samples[i]->outputs[0]->data;
        for (int64_t k = 0; k < v.plan.n_in; k++) {
            x[k] = in[k];
            v.volts[(size_t)i * (size_t)v.plan.n_in + (size_t)k] =
                s_in * sp_quantise(in[k], v.p.in_min, v.p.in_max, v.p.dac_bits,
                                &v.dac_clipped);
        }
        sp_plan_forward(&v.plan, &v.p, x, yf, scr, NULL, NULL);
        if (v.plan.softmax_node != SP_NONE) sp_softmax(yf, v.plan.n_out);
        for (int64_t m = 0; m < v.plan.n_out; m++)
            v.float_diff = fmax(v.float_diff, fabs(yf[m] - (double)ref[m]));
    }
    sp_free(h, x, (size_t)v.plan.n_in, sizeof(double));
    sp_free(h, yf, sw, sizeof(double));
    sp_free(h, scr, sw, sizeof(double));
    if (v.dac_clipped)
        h->log(h, CRUCIBLE_LOG_WARN, "%lld input values lie outside the "
               "declared input range %g..%g and were clipped by the DAC (set "
               "input.min / input.max in [%s] of the config)",
               (long long)v.dac_clipped, v.p.in_min, v.p.in_max, SPICE_CFG_SECTION);

    /* the variants: ideal components first; a real board adds its own */
    sp_variant vars[2];
    int n_vars = 0;
    memset(vars, 0, sizeof vars);
    vars[0].label = "ideal";
    vars[0].tech = v.p.tech;
    vars[0].tech.series = SP_SERIES_EXACT;
    vars[0].tech.tol = 0;
    vars[0].tech.tcr_ppm = 0;
    vars[0].tech.opamp_macro = 0;
    vars[0].tech.gain = ideal ? v.p.tech.gain : 1e6;
    vars[0].tech.gbw_hz = -1;
    vars[0].tech.offset_v = 0;
    vars[0].tech.relu_diode = 0;
    vars[0].tech.pcm = 0; /* exact conductances (same range and scaling) */
    vars[0].prefix = ideal ? "" : "ideal_";
    n_vars = 1;
    if (!ideal) {
        vars[1].label = "real";
        vars[1].prefix = "";
        vars[1].tech = v.p.tech;
        vars[1].draw = 1;
        vars[1].seed = v.p.seed;
        n_vars = 2;
    }
    for (int i = 0; i < n_vars; i++) {
        run_metrics *rm = &runs[i];
        char step[32];
        snprintf(step, sizeof step, "simulate-%s", vars[i].label);
        rm->top1_min = i == 0 && !ideal ? v.p.top1_min_ideal : v.p.top1_min;
        rm->err_fs_max = i == 0 && !ideal ? v.p.err_fs_ideal : v.p.err_fs;
        if (ideal) {
            rm->top1_min = v.p.top1_min;
            rm->err_fs_max = v.p.err_fs;
        }
        rm->peak_tia = sp_calloc(h, v.plan.n_layers, sizeof(double));
        rm->peak_stage = sp_calloc(h, v.plan.n_layers, sizeof(double));
        if (!rm->peak_tia || !rm->peak_stage) {
            rc = CRUCIBLE_E_NOMEM;
            break;
        }
        if ((rc = run_variant(&v, &vars[i], rm))) break;
        sp_buf mj;
        sp_buf_init(&mj, h);
        if (rm->samples) metrics_json(&mj, &v, rm);
        if (v.n < ctx->n_samples && rm->verdict != CRUCIBLE_VERDICT_SKIPPED) {
            size_t k = strlen(rm->msg);
            snprintf(rm->msg + k, sizeof rm->msg - k, " (first %u of %u "
                     "samples: [verify] max_samples)", v.n, ctx->n_samples);
        }
        ctx->report(ctx->ctx, step, "ngspice", rm->verdict, rm->msg,
                    mj.s && !mj.err ? mj.s : NULL);
        sp_buf_free(&mj);
        if (rm->verdict == CRUCIBLE_VERDICT_SKIPPED) {
            for (int k = i + 1; k < n_vars; k++) {
                snprintf(step, sizeof step, "simulate-%s", vars[k].label);
                ctx->report(ctx->ctx, step, "ngspice", CRUCIBLE_VERDICT_SKIPPED,
                            rm->msg, NULL);
            }
            break;
        }
    }
    {
        /* drift analysis on the board's components, when the runs passed */
        sp_buf dj, dt, pj, pt;
        sp_buf_init(&dj, h);
        sp_buf_init(&dt, h);
        sp_buf_init(&pj, h);
        sp_buf_init(&pt, h);
        const run_metrics *last = &runs[n_vars - 1];
        if (!rc && last->ran && last->samples)
            rc = sp_power(h, ctx, v.tools, &v.p, &v.plan, v.volts, v.n, &pj, &pt);
        if (!rc && last->ran && last->samples && v.p.drift_samples > 0)
            rc = sp_drift(h, ctx, v.tools, &v.p, &v.plan, v.volts, v.n, &dj, &dt);
        write_reports(&v, runs, n_vars, &dj, &dt, &pj, &pt);
        sp_buf_free(&dj);
        sp_buf_free(&dt);
        sp_buf_free(&pj);
        sp_buf_free(&pt);
    }
out:
    for (int i = 0; i < 2; i++) {
        sp_free(h, runs[i].peak_tia, v.plan.n_layers, sizeof(double));
        sp_free(h, runs[i].peak_stage, v.plan.n_layers, sizeof(double));
    }
    sp_free(h, v.volts, (size_t)v.n * (size_t)v.plan.n_in, sizeof(double));
    sp_plan_free(&v.plan);
    return rc;
}
