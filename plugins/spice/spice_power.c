/*
 * spice_power.c - power and settling time measured in ngspice on the
 * board's own circuit (model.cir):
 *
 *   power.cir   a .dc sweep over the first samples (operating points);
 *               per sample the static power
 *                 P = sum_k |V_k I_k| (DAC outputs) + |V_ref I_ref|
 *                   + sum_opamps (2 supply_v iq_a + supply_v |I_out|)
 *               i.e. every op-amp (and ideal limiter) draws its output
 *               current from one rail of +-supply_v, plus its quiescent
 *               current from both.
 *   settle.cir  a transient run: the DAC outputs step from 0 V to the
 *               first sample's voltages at t = 0 (1 ns ramp); the settling
 *               time is when every output stays within half an ADC LSB of
 *               its final value. Ideal op-amps have no dynamics: not run.
 *
 * Energy per inference = mean static power x settling time.
 */
#include "spice_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POWER_SAMPLES 16
#define POWER_MAX_TRAN_OPAMPS 1000

static int put(const crucible_verify_ctx *ctx, const char *name, const sp_buf *b)
{
    char path[4096];
    if (b->err) return CRUCIBLE_E_NOMEM;
    if (sp_path_join(path, sizeof path, ctx->workdir, name) ||
        sp_write_file(path, b->s ? b->s : "", b->len))
        return CRUCIBLE_E_IO;
    if (ctx->sink && ctx->sink->emit)
        return ctx->sink->emit(ctx->sink->ctx, name, b->s ? b->s : "", b->len);
    return CRUCIBLE_OK;
}

/* The harness (model, DAC table, instance) without its .control part. */
static void harness_head(sp_buf *b, const sp_plan *plan, const sp_params *p,
                         const sp_variant *v, const sp_real *real,
                         const double *volts, uint32_t n)
{
    sp_net_harness(b, plan, p, v, real, volts, n, "unused.txt", 0);
    char *c = b->s ? strstr(b->s, ".control\n") : NULL;
    if (c) {
        b->len = (size_t)(c - b->s);
        b->s[b->len] = 0;
    }
}

int sp_power(const crucible_host *h, const crucible_verify_ctx *ctx,
             const crucible_host_tools *tools, const sp_params *p,
             const sp_plan *plan, const double *volts, uint32_t n_avail,
             sp_buf *json, sp_buf *txt)
{
    char msg[1024], path[4096];
    const uint32_t n = n_avail < POWER_SAMPLES ? n_avail : POWER_SAMPLES;
    const sp_tech *t = &p->tech;
    int rc = CRUCIBLE_OK;
    if (!n) return CRUCIBLE_OK;
    sp_real *real = sp_calloc(h, plan->n_layers, sizeof(sp_real));
    if (!real) return CRUCIBLE_E_NOMEM;
    sp_realise(plan, p, t, real);
    sp_variant v;
    memset(&v, 0, sizeof v);
    v.label = sp_tech_is_ideal(t) ? "ideal" : "real";
    v.prefix = "";
    v.tech = *t;
    v.draw = !sp_tech_is_ideal(t);
    v.seed = p->seed;
    double secs = 0, est = 0;
    for (uint32_t l = 0; l < plan->n_layers; l++)
        est += sp_sim_seconds((double)real[l].counts.resistors,
                              (double)real[l].counts.opamps, t->opamp_macro);
    double timeout = fmin(60.0 + 20.0 * est * n, p->sim_timeout_s);

    /* operating points */
    sp_buf b;
    sp_buf_init(&b, h);
    harness_head(&b, plan, p, &v, real, volts, n);
    sp_puts(&b, ".control\nset noaskquit\n");
    sp_printf(&b, "dc V_SEL 0 %u 1\n", n - 1);
    /* every vector at once: naming thousands of vectors one by one costs
     * ngspice a lookup each (seconds on the unrolled CNN); the columns are
     * classified by their names in the header */
    sp_puts(&b, "set wr_singlescale\nset wr_vecnames\nwrdata power_out.txt all");
    sp_puts(&b, "\nquit 0\n.endc\n.end\n");
    rc = put(ctx, "power.cir", &b);
    sp_buf_free(&b);
    if (rc) goto out;
    if (sp_path_join(path, sizeof path, ctx->workdir, "power_out.txt")) {
        rc = CRUCIBLE_E_IO;
        goto out;
    }
    remove(path);
    int st = sp_run_ngspice(h, tools, ctx->workdir, "power.cir", timeout, &secs,
                            msg, sizeof msg);
    if (st != CRUCIBLE_OK) {
        ctx->report(ctx->ctx, "power", "ngspice",
                    st == CRUCIBLE_E_SKIPPED ? CRUCIBLE_VERDICT_SKIPPED
                                             : CRUCIBLE_VERDICT_FAIL, msg, NULL);
        goto out;
    }
    size_t cap = 0;
    char *text = sp_read_text(h, path, &cap);
    double pmin = 1e300, pmax = 0, psum = 0, p_q = 0, p_io = 0;
    uint32_t rows = 0;
    int64_t n_act = 0;
    for (uint32_t l = 0; l < plan->n_layers; l++)
        p_q += (double)real[l].counts.opamps * 2.0 * t->supply_v * t->iq_a;
    if (text) {
        /* the header: classify the columns */
        size_t ncol = 0, cc = 0;
        const char *hd = text;
        const char *eol = strchr(text, '\n');
        if (!eol) eol = text + strlen(text);
        for (const char *q = hd; q < eol;) {
            while (q < eol && *q == ' ') q++;
            if (q >= eol) break;
            ncol++;
            while (q < eol && *q != ' ') q++;
        }
        int64_t *cls = sp_calloc(h, ncol + 1, sizeof(int64_t));
        if (!cls) {
            h->realloc(h, text, cap, 0);
            rc = CRUCIBLE_E_NOMEM;
            goto out;
        }
        /* 0 ignore, -1 reference, -2 active output, k+1 DAC k */
        for (const char *q = hd; q < eol && cc < ncol;) {
            while (q < eol && *q == ' ') q++;
            const char *st0 = q;
            while (q < eol && *q != ' ') q++;
            size_t len = (size_t)(q - st0);
            char nm[160];
            if (len >= sizeof nm) len = sizeof nm - 1;
            memcpy(nm, st0, len);
            nm[len] = 0;
            int64_t c = 0;
            const char *br = strstr(nm, "#branch");
            if (br && !strcmp(nm, "v.x_model.v_ref#branch")) c = -1;
            else if (br && !strncmp(nm, "b_dac_", 6)) c = 1 + strtoll(nm + 6, NULL, 10);
            else if (br && !strncmp(nm, "e.x_model.", 10)) c = -2;
            else if (br && !strncmp(nm, "b.x_model.", 10)) c = -2;
            if (c == -2) n_act++;
            cls[cc++] = c;
        }
        const char *line = *eol ? eol + 1 : eol;
        for (uint32_t i = 0; i < n; i++) {
            const char *q = line;
            double x, pw = 0, pio = 0;
            int ok = sp_next_num(&q, &x) == 0 && fabs(x - i) <= 0.3;
            for (size_t k = 1; ok && k < ncol; k++) {
                double cv;
                if (sp_next_num(&q, &cv)) {
                    ok = 0;
                    break;
                }
                if (cls[k] == -1) pw += fabs(p->v_ref * cv);
                else if (cls[k] == -2) pio += t->supply_v * fabs(cv);
                else if (cls[k] > 0 && cls[k] <= plan->n_in)
                    pw += fabs(volts[(size_t)i * (size_t)plan->n_in + (size_t)(cls[k] - 1)] * cv);
            }
            if (!ok) break;
            p_io += pio;
            pw += pio + p_q;
            pmin = fmin(pmin, pw), pmax = fmax(pmax, pw), psum += pw;
            rows++;
            const char *e = strchr(q, '\n');
            line = e ? e + 1 : q + strlen(q);
        }
        sp_free(h, cls, ncol + 1, sizeof(int64_t));
        h->realloc(h, text, cap, 0);
    }
    remove(path);
    if (rows != n) {
        snprintf(msg, sizeof msg, "power.cir: ngspice wrote %u of %u operating "
                 "points", rows, n);
        ctx->report(ctx->ctx, "power", "ngspice", CRUCIBLE_VERDICT_FAIL, msg, NULL);
        goto out;
    }
    const double pmean = psum / rows;
    p_io /= rows;

    /* settling: a step to the first sample (macro op-amps only) */
    double settle = -1, t_stop = 0, settle_est = 0;
    int settled = 0, skip_tran = 0;
    int64_t n_op = 0;
    for (uint32_t l = 0; l < plan->n_layers; l++) {
        n_op += real[l].counts.opamps;
        settle_est += real[l].settle_s > 0 ? real[l].settle_s : 0;
    }
    /* a transient of thousands of macro op-amps (an unrolled conv) takes
     * longer than the whole verification: the estimate is reported */
    if (t->opamp_macro && n_op > POWER_MAX_TRAN_OPAMPS) skip_tran = 1;
    if (t->opamp_macro && !skip_tran) {
        double est_settle = 0;
        for (uint32_t l = 0; l < plan->n_layers; l++)
            est_settle += real[l].settle_s > 0 ? real[l].settle_s : 0;
        t_stop = fmax(10.0 * est_settle, 20e-6);
        sp_buf_init(&b, h);
        sp_printf(&b, "* crucible spice: settling of the whole model (%s "
                      "components): the DAC outputs step from 0 V to the first "
                      "sample's voltages at t = 0\n", v.label);
        sp_puts(&b, ".include model.cir\n");
        sp_printf(&b, ".temp %g\n", p->temp_c);
        for (int64_t k = 0; k < plan->n_in; k++)
            sp_printf(&b, "V_IN_%lld in_%lld 0 PWL(0 0 1n %.9g)\n", (long long)k,
                      (long long)k, volts[k]);
        sp_puts(&b, "X_MODEL");
        for (int64_t k = 0; k < plan->n_in; k++) sp_printf(&b, " in_%lld", (long long)k);
        for (int64_t m = 0; m < plan->n_out; m++) sp_printf(&b, " out_%lld", (long long)m);
        sp_puts(&b, " MODEL\n.control\nset noaskquit\n");
        sp_printf(&b, "tran %.6g %.6g 0 %.6g uic\n", t_stop / 2000, t_stop, t_stop / 2000);
        sp_puts(&b, "set wr_singlescale\nset wr_vecnames\nwrdata settle_out.txt");
        for (int64_t m = 0; m < plan->n_out; m++) sp_printf(&b, " v(out_%lld)", (long long)m);
        sp_puts(&b, "\nquit 0\n.endc\n.end\n");
        rc = put(ctx, "settle.cir", &b);
        sp_buf_free(&b);
        if (rc) goto out;
        if (sp_path_join(path, sizeof path, ctx->workdir, "settle_out.txt")) {
            rc = CRUCIBLE_E_IO;
            goto out;
        }
        remove(path);
        st = sp_run_ngspice(h, tools, ctx->workdir, "settle.cir", timeout, &secs,
                            msg, sizeof msg);
        if (st != CRUCIBLE_OK) {
            ctx->report(ctx->ctx, "power", "ngspice", CRUCIBLE_VERDICT_FAIL, msg, NULL);
            goto out;
        }
        text = sp_read_text(h, path, &cap);
        const int64_t M = plan->n_out;
        double *fin = sp_calloc(h, (size_t)M + 1, sizeof(double));
        double *row = sp_calloc(h, (size_t)M + 1, sizeof(double));
        if (text && fin && row) {
            /* pass 1: the final values; pass 2: the last time outside */
            for (int pass = 0; pass < 2; pass++) {
                const char *line = strchr(text, '\n');
                line = line ? line + 1 : text + strlen(text);
                const double lsb = (p->v_fs - (plan->out_relu ? 0.0 : -p->v_fs)) /
                                   ldexp(1.0, p->adc_bits);
                double last_out = 0, tt = 0;
                int any = 0;
                while (*line) {
                    const char *q = line;
                    int ok = sp_next_num(&q, &tt) == 0;
                    for (int64_t m = 0; ok && m < M; m++) ok = sp_next_num(&q, &row[m]) == 0;
                    const char *e = strchr(q, '\n');
                    line = e ? e + 1 : q + strlen(q);
                    if (!ok) continue;
                    any = 1;
                    if (pass == 0) {
                        memcpy(fin, row, (size_t)M * sizeof(double));
                        continue;
                    }
                    for (int64_t m = 0; m < M; m++)
                        if (fabs(row[m] - fin[m]) > 0.5 * lsb) last_out = tt;
                }
                if (pass == 1 && any) {
                    settle = last_out;
                    settled = last_out < 0.9 * t_stop;
                }
            }
        }
        if (text) h->realloc(h, text, cap, 0);
        sp_free(h, fin, (size_t)M + 1, sizeof(double));
        sp_free(h, row, (size_t)M + 1, sizeof(double));
        remove(path);
    }

    /* report */
    sp_printf(txt, "\npower (ngspice operating points of the first %u samples, "
                   "power.cir): static %.4g W per inference (%.4g..%.4g W): "
                   "op-amp quiescent %.4g W (%g A each on +-%g V), op-amp "
                   "output currents %.4g W, DAC and reference %.4g W\n",
              rows, pmean, pmin, pmax, p_q, t->iq_a, t->supply_v, p_io,
              pmean - p_q - p_io);
    if (skip_tran) {
        sp_printf(txt, "settling: not simulated (%lld macro op-amps: the "
                       "transient would outlast the verification); estimate "
                       "%.4g us (pre-flight model), energy per inference ~%.4g J\n",
                  (long long)n_op, settle_est * 1e6, pmean * settle_est);
    } else if (t->opamp_macro) {
        if (settled)
            sp_printf(txt, "settling (transient, settle.cir: a step to sample 0): "
                           "%.4g us to half an ADC LSB; energy per inference "
                           "%.4g J\n", settle * 1e6, pmean * settle);
        else
            sp_printf(txt, "settling (transient, settle.cir): not within %.4g us "
                           "(half an ADC LSB)\n", t_stop * 1e6);
    } else {
        sp_puts(txt, "settling: not simulated (ideal op-amps have no dynamics)\n");
    }
    sp_printf(json, "{\"samples\":%u,\"outputs_counted\":%lld,\"static_w_mean\":", rows, (long long)n_act);
    sp_json_num(json, pmean);
    sp_puts(json, ",\"static_w_min\":");
    sp_json_num(json, pmin);
    sp_puts(json, ",\"static_w_max\":");
    sp_json_num(json, pmax);
    sp_puts(json, ",\"opamp_quiescent_w\":");
    sp_json_num(json, p_q);
    sp_puts(json, ",\"opamp_output_w\":");
    sp_json_num(json, p_io);
    sp_puts(json, ",\"settle_s\":");
    sp_json_num(json, settled ? settle : NAN);
    sp_puts(json, ",\"settle_estimate_s\":");
    sp_json_num(json, settle_est > 0 ? settle_est : NAN);
    sp_puts(json, ",\"settle_simulated\":");
    sp_puts(json, t->opamp_macro && !skip_tran ? "true" : "false");
    sp_puts(json, ",\"energy_j\":");
    sp_json_num(json, settled ? settle * pmean : NAN);
    sp_puts(json, ",\"ngspice_seconds\":");
    sp_json_num(json, secs);
    sp_puts(json, "}");
    if (skip_tran)
        snprintf(msg, sizeof msg, "static power %.4g W per inference (mean of %u "
                 "operating points, %.4g W op-amp quiescent); settling not "
                 "simulated (%lld macro op-amps), estimated %.4g us", pmean, rows,
                 p_q, (long long)n_op, settle_est * 1e6);
    else if (t->opamp_macro && !settled)
        snprintf(msg, sizeof msg, "static power %.4g W per inference (mean of %u "
                 "operating points); the outputs did not settle to half an ADC "
                 "LSB within %.4g us", pmean, rows, t_stop * 1e6);
    else if (t->opamp_macro)
        snprintf(msg, sizeof msg, "static power %.4g W per inference (mean of %u "
                 "operating points, %.4g W op-amp quiescent), settling %.4g us "
                 "(transient, half an ADC LSB), energy %.4g J per inference",
                 pmean, rows, p_q, settle * 1e6, settle * pmean);
    else
        snprintf(msg, sizeof msg, "static power %.4g W per inference (mean of %u "
                 "operating points); settling not simulated (ideal op-amps)",
                 pmean, rows);
    ctx->report(ctx->ctx, "power", "ngspice",
                t->opamp_macro && !settled && !skip_tran ? CRUCIBLE_VERDICT_FAIL
                                                         : CRUCIBLE_VERDICT_PASS,
                msg, NULL);
out:
    sp_free(h, real, plan->n_layers, sizeof(sp_real));
    return rc;
}
