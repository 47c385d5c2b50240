/*
 * spice.c - the spice target plugin: float chains of dense layers mapped
 * onto analog crossbars (differential conductance pairs, transimpedance
 * amplifiers, difference stages, precision rectifiers), written as SPICE
 * netlists and verified in ngspice against the reference interpreter with
 * a stated tolerance and the top-1 agreement. See docs/spice.md.
 *
 * Threading: query() is [thread-safe] (pure, no allocation, no logging);
 * everything else is called on the host's main thread.
 */
#include "spice_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define FITS(s, field)                                                      \
    ((size_t)(s)->size >= offsetof(crucible_support, field) +               \
                              sizeof((s)->field))

static void set_reason(crucible_support *out, const char *why)
{
    if (!FITS(out, reason)) return;
    size_t n = strlen(why);
    if (n >= sizeof out->reason) n = sizeof out->reason - 1;
    memcpy(out->reason, why, n);
    out->reason[n] = 0;
}

/* ---- accept_board ---------------------------------------------------------*/
static int sp_accept_board(void *state, const crucible_board *board,
                           char *why, size_t why_len)
{
    (void)state;
    return sp_board_check(board, why, why_len);
}

/* ---- query ----------------------------------------------------------------*/
/* Does a relu consume the output of dense node ni (through reshapes and
 * adds of constants)? Pure. */
static int dense_has_relu(const crucible_graph_view *g, uint32_t ni)
{
    int32_t t = g->nodes[ni]->outputs[0];
    for (uint32_t guard = 0; guard <= g->n_nodes; guard++) {
        uint32_t c = SP_NONE, n = 0;
        for (uint32_t i = 0; i < g->n_nodes; i++)
            for (uint32_t k = 0; k < g->nodes[i]->n_inputs; k++)
                if (g->nodes[i]->inputs[k] == t) {
                    if (!n) c = i;
                    n++;
                }
        if (n != 1) return 0;
        const crucible_node_view *nd = g->nodes[c];
        if (nd->op == CRUCIBLE_OP_RELU) return 1;
        if (nd->op != CRUCIBLE_OP_RESHAPE && nd->op != CRUCIBLE_OP_ADD) return 0;
        t = nd->outputs[0];
    }
    return 0;
}

/* Is dense node ni the first dense layer of the chain (driven by DACs)? */
static int first_dense(const crucible_graph_view *g, uint32_t ni)
{
    for (uint32_t i = 0; i < ni; i++)
        if (g->nodes[i]->op == CRUCIBLE_OP_DENSE ||
            g->nodes[i]->op == CRUCIBLE_OP_CONV2D)
            return 0;
    return 1;
}

static int sp_query(void *state, const crucible_query_ctx *ctx,
                    const crucible_graph_view *g, uint32_t node,
                    crucible_support *out)
{
    (void)state;
    char why[256];
    sp_params p;
    if (!g || !out || node >= g->n_nodes) return CRUCIBLE_E_INVALID;
    const crucible_board *board =
        ctx && CRUCIBLE_HAS_FIELD(ctx->hdr, crucible_query_ctx, board) ? ctx->board : NULL;
    const crucible_kv_doc *cfg =
        ctx && CRUCIBLE_HAS_FIELD(ctx->hdr, crucible_query_ctx, config) ? ctx->config : NULL;
    if (FITS(out, level)) out->level = CRUCIBLE_SUPPORT_NO;
    if (sp_params_load(board, cfg, &p, why, sizeof why) != CRUCIBLE_OK) {
        char r[256];
        snprintf(r, sizeof r, "invalid spice parameters: %s", why);
        set_reason(out, r);
        return CRUCIBLE_OK;
    }
    if (sp_check_node(g, node, &p, why, sizeof why) != CRUCIBLE_OK) {
        set_reason(out, why);
        return CRUCIBLE_OK;
    }
    const crucible_node_view *n = g->nodes[node];
    const sp_tech *t = &p.tech;
    const double p_opamp = 2.0 * t->supply_v * t->iq_a;
    int level = CRUCIBLE_SUPPORT_YES;
    int64_t comps = 0;
    double power = 0, secs = -1;
    switch (n->op) {
    case CRUCIBLE_OP_DENSE:
    case CRUCIBLE_OP_CONV2D: {
        const crucible_tensor_view *w = crucible_graph_tensor(g, n->inputs[1]);
        const crucible_tensor_view *b =
            n->n_inputs > 2 && n->inputs[2] >= 0 ? crucible_graph_tensor(g, n->inputs[2]) : NULL;
        const int conv = n->op == CRUCIBLE_OP_CONV2D;
        int64_t M, K;
        const float *wd = w->data;
        double wmax = 0, wsum = 0;
        int64_t nz = 0;
        if (!conv) {
            M = w->dims[0], K = w->dims[1];
            for (int64_t i = 0; i < M * K; i++) {
                double a = fabs((double)wd[i]);
                if (a > wmax) wmax = a;
                wsum += a;
                nz += a != 0;
            }
            if (b)
                for (int64_t m = 0; m < M; m++) nz += ((const float *)b->data)[m] != 0;
        } else {
            /* unrolled: every output position repeats the kernel taps that
             * fall inside the (padded) input */
            const crucible_tensor_view *x = crucible_graph_tensor(g, n->inputs[0]);
            const crucible_tensor_view *o = crucible_graph_tensor(g, n->outputs[0]);
            const int64_t C = x->dims[1], H = x->dims[2], W = x->dims[3];
            const int64_t O = o->dims[1], OH = o->dims[2], OW = o->dims[3];
            const int64_t kh = w->dims[2], kw = w->dims[3];
            const crucible_attr_view *st = crucible_node_attr(n, "strides");
            const crucible_attr_view *pd = crucible_node_attr(n, "pads");
            const crucible_attr_view *dl = crucible_node_attr(n, "dilations");
            const int64_t sh = st && st->count > 0 ? st->ints[0] : 1;
            const int64_t sw = st && st->count > 1 ? st->ints[1] : 1;
            const int64_t top = pd && pd->count > 0 ? pd->ints[0] : 0;
            const int64_t left = pd && pd->count > 1 ? pd->ints[1] : 0;
            const int64_t dh = dl && dl->count > 0 ? dl->ints[0] : 1;
            const int64_t dw = dl && dl->count > 1 ? dl->ints[1] : 1;
            M = O * OH * OW, K = C * H * W;
            for (int64_t co = 0; co < O; co++)
                for (int64_t oy = 0; oy < OH; oy++)
                    for (int64_t ox = 0; ox < OW; ox++) {
                        for (int64_t ic = 0; ic < C; ic++)
                            for (int64_t ky = 0; ky < kh; ky++)
                                for (int64_t kx = 0; kx < kw; kx++) {
                                    int64_t iy = oy * sh - top + ky * dh;
                                    int64_t ix = ox * sw - left + kx * dw;
                                    if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                    double a = fabs((double)wd[((co * C + ic) * kh + ky) * kw + kx]);
                                    if (a > wmax) wmax = a;
                                    wsum += a;
                                    nz += a != 0;
                                }
                        if (b) nz += ((const float *)b->data)[co] != 0;
                    }
        }
        sp_geom gm;
        sp_geometry(K, M, &p, &gm);
        if (p.off_rmax) nz = (int64_t)gm.crosspoints;
        const int64_t res = nz + M * (4 * gm.tiles_r + 2);
        const int64_t ops = 2 * M * gm.tiles_r + M;
        comps = res + ops;
        const double vrow = (first_dense(g, node) ? p.dac_vmax : p.v_fs) / 2.0;
        const double gsc = wmax > 0 ? 1.0 / (t->r_min * wmax) : 0.0;
        power = (double)ops * p_opamp + gsc * wsum * vrow * vrow;
        if (t->gbw_hz > 0) {
            /* TIA noise gain ~ 1 + full scale / peak row voltage (R_f *
             * column conductance), difference stage ~2 (docs/spice.md) */
            double vpk = first_dense(g, node) ? p.dac_vmax : p.v_fs;
            double tau = ((1.0 + p.v_fs / vpk) + 2.0) / (2.0 * SP_PI * t->gbw_hz);
            secs = tau * log(pow(2.0, p.adc_bits + 1));
        }
        double sim = sp_sim_seconds((double)res, (double)ops, t->opamp_macro);
        char cr[32];
        sp_fmt_count(cr, sizeof cr, (double)res);
        char dv[64] = "";
        if (t->pcm)
            snprintf(dv, sizeof dv, " (%lld PCM devices)",
                     (long long)nz);
        snprintf(why, sizeof why, "%scrossbar %lld x %lld (%lld x %lld tile%s of "
                 "%d x %d): %s resistors%s, %lld op-amps%s; static power ~%.3g "
                 "%s; ngspice ~%.2g ms per sample",
                 conv ? "unrolled (im2col, a column pair per output position): " : "",
                 (long long)gm.rows, (long long)gm.cols, (long long)gm.tiles_r,
                 (long long)gm.tiles_c, gm.tiles_r * gm.tiles_c > 1 ? "s" : "",
                 p.xbar_rows, p.xbar_cols, cr, dv, (long long)ops,
                 dense_has_relu(g, node) ? " (rectifiers: see the relu)" : "",
                 power >= 1 ? power : power * 1e3, power >= 1 ? "W" : "mW",
                 sim * 1e3);
        break;
    }
    case CRUCIBLE_OP_RELU: {
        const crucible_tensor_view *o = crucible_graph_tensor(g, n->outputs[0]);
        const int64_t M = (int64_t)crucible_tensor_numel(o);
        if (t->relu_diode) {
            comps = 5 * M; /* op-amp, 2 diodes, 2 resistors */
            power = (double)M * p_opamp;
            if (t->gbw_hz > 0) secs = 2.0 / (2.0 * SP_PI * t->gbw_hz) * log(pow(2.0, p.adc_bits + 1));
            snprintf(why, sizeof why, "%lld precision rectifiers (op-amp + 2 "
                     "diodes + 2 resistors each): %lld op-amps, %lld diodes",
                     (long long)M, (long long)M, (long long)(2 * M));
        } else {
            comps = M;
            power = 0;
            secs = -1;
            snprintf(why, sizeof why, "%lld ideal behavioural limiters "
                     "(ideal components; real boards use precision rectifiers)",
                     (long long)M);
        }
        break;
    }
    case CRUCIBLE_OP_ADD:
        comps = 0, power = 0, secs = 0;
        snprintf(why, sizeof why, "folded into the bias row of the adjacent "
                 "dense layer (no extra components)");
        break;
    case CRUCIBLE_OP_RESHAPE:
        comps = 0, power = 0, secs = 0;
        snprintf(why, sizeof why, "wiring only");
        break;
    case CRUCIBLE_OP_MAX_POOL2D: {
        const crucible_tensor_view *o = crucible_graph_tensor(g, n->outputs[0]);
        comps = (int64_t)crucible_tensor_numel(o);
        power = 0, secs = 0;
        snprintf(why, sizeof why, "%lld behavioural max sources (an ideal max "
                 "over each window, on every board; no physical max circuit "
                 "is modelled)", (long long)comps);
        break;
    }
    case CRUCIBLE_OP_SOFTMAX:
        level = CRUCIBLE_SUPPORT_FALLBACK;
        comps = 0, power = 0, secs = 0;
        snprintf(why, sizeof why, "computed digitally after the ADC (no "
                 "analog circuit)");
        break;
    default:
        break;
    }
    if (FITS(out, level)) out->level = level;
    if (FITS(out, components)) out->components = comps;
    if (FITS(out, seconds)) out->seconds = secs;
    if (FITS(out, energy_j) && secs >= 0) out->energy_j = power * secs;
    set_reason(out, why);
    return CRUCIBLE_OK;
}

/* ---- compile --------------------------------------------------------------*/
static const char *const known_keys[] = {
    "resistor.series", "resistor.tolerance", "resistor.tcr_ppm",
    "resistor.r_min", "resistor.r_max", "opamp.model", "opamp.gain",
    "opamp.gbw_hz", "opamp.offset_v", "opamp.swing_v", "opamp.rout",
    "opamp.rin", "opamp.iq_a", "opamp.supply_v", "relu.model", "relu.r",
    "relu.diode_is", "relu.diode_n", "relu.diode_rs", "relu.diode_bv",
    "relu.diode_cjo", "relu.diode_tt", "stage.r_in", "reference.v_ref",
    "dac.bits", "dac.v_max", "input.min", "input.max", "adc.bits",
    "scaling.mode", "scaling.v_fullscale", "scaling.headroom",
    "scaling.calibration", "crossbar.rows", "crossbar.cols",
    "crossbar.off_state", "limits.max_devices", "limits.force",
    "verify.top1_min", "verify.top1_min_ideal", "verify.max_err_fs",
    "verify.max_err_fs_ideal", "verify.seed", "verify.temp_c",
    "verify.max_samples", "verify.timeout_s", "ageing.drift_ref",
    "ageing.t_ref_h", "ageing.exponent", "ageing.spread", "drift.samples",
    "drift.seeds", "drift.budget_s", "device.technology", "device.g_max", "device.g_min",
    "device.prog_c0", "device.prog_c1", "device.prog_c2", "device.prog_scale",
    "device.nu_mu_a", "device.nu_mu_b", "device.nu_mu_min", "device.nu_mu_max",
    "device.nu_sd_a", "device.nu_sd_b", "device.nu_sd_min", "device.nu_sd_max",
    "device.t0_s", NULL};

static void warn_unknown_keys(const crucible_host *h, const crucible_kv_doc *cfg)
{
    if (!cfg) return;
    for (uint32_t i = 0; i < cfg->count; i++) {
        const crucible_kv *e = cfg->entries[i];
        if (strcmp(e->section, SPICE_CFG_SECTION)) continue;
        int ok = 0;
        for (int k = 0; known_keys[k] && !ok; k++) ok = !strcmp(known_keys[k], e->key);
        if (!ok)
            h->log(h, CRUCIBLE_LOG_WARN, "config [%s] %s is not a spice "
                   "parameter (ignored; see docs/spice.md)", SPICE_CFG_SECTION,
                   e->key);
    }
}

static int emit_buf(const crucible_host *h, const crucible_compile_ctx *ctx,
                    const char *name, const sp_buf *b)
{
    char path[4096];
    const char *data = b->s ? b->s : "";
    if (b->err) return CRUCIBLE_E_NOMEM;
    if (ctx->workdir) {
        if (sp_path_join(path, sizeof path, ctx->workdir, name) ||
            sp_write_file(path, data, b->len)) {
            h->log(h, CRUCIBLE_LOG_ERROR, "cannot write %s in %s", name,
                   ctx->workdir);
            return CRUCIBLE_E_IO;
        }
    }
    return ctx->sink->emit(ctx->sink->ctx, name, data, b->len);
}

static void design_json(sp_buf *j, const sp_plan *plan, const sp_params *p,
                        const sp_variant *v, const sp_real *real)
{
    const sp_real *last = &real[plan->n_layers - 1];
    double tot_r = 0, tot_o = 0, tot_d = 0, tot_l = 0, tot_p = 0, tot_drop = 0;
    double tot_dev = 0;
    double tot_sim = 0;
    sp_printf(j, "{\"target\":\"%s\",\"version\":\"%s\",\"board\":", SPICE_ID,
              SPICE_VERSION);
    sp_json_str(j, p->board_name);
    sp_printf(j, ",\"components\":\"%s\",\"input\":{\"name\":", v->label);
    sp_json_str(j, plan->in_name);
    sp_printf(j, ",\"elements\":%lld,\"range\":[", (long long)plan->n_in);
    sp_json_num(j, p->in_min);
    sp_puts(j, ",");
    sp_json_num(j, p->in_max);
    sp_printf(j, "],\"dac_bits\":%d,\"dac_v_max\":", p->dac_bits);
    sp_json_num(j, p->dac_vmax);
    sp_puts(j, ",\"volts_per_unit\":");
    sp_json_num(j, real[0].s_in);
    sp_puts(j, "},\"output\":{\"name\":");
    sp_json_str(j, plan->out_name);
    sp_printf(j, ",\"elements\":%lld,\"adc_bits\":%d,\"adc_range_v\":[",
              (long long)plan->n_out, p->adc_bits);
    sp_json_num(j, plan->out_relu ? 0.0 : -p->v_fs);
    sp_puts(j, ",");
    sp_json_num(j, p->v_fs);
    sp_puts(j, "],\"volts_per_unit\":");
    sp_json_num(j, last->s_out);
    sp_puts(j, ",\"softmax\":");
    sp_json_str(j, plan->softmax_node != SP_NONE ? "digital, after the ADC" : NULL);
    sp_printf(j, "},\"scaling\":{\"mode\":\"%s\",\"v_fullscale\":",
              p->calibrated ? "calibrated" : "bound");
    sp_json_num(j, p->v_fs);
    sp_puts(j, ",\"headroom\":");
    sp_json_num(j, p->headroom);
    sp_puts(j, ",\"calibration\":");
    sp_json_str(j, plan->n_cal ? plan->cal_note : NULL);
    sp_puts(j, "},\"layers\":[");
    for (uint32_t l = 0; l < plan->n_layers; l++) {
        const sp_layer *L = &plan->layers[l];
        const sp_real *r = &real[l];
        const sp_counts *c = &r->counts;
        char file[160];
        sp_layer_file(plan, l, v->prefix, file, sizeof file);
        double sim = sp_sim_seconds((double)c->resistors, (double)c->opamps,
                                    v->tech.opamp_macro);
        tot_r += (double)c->resistors, tot_o += (double)c->opamps;
        tot_d += (double)c->diodes, tot_l += (double)c->limiters;
        tot_dev += (double)c->devices;
        tot_p += r->power_w, tot_drop += (double)c->dropped, tot_sim += sim;
        sp_printf(j, "%s{\"index\":%u,\"file\":", l ? "," : "", l + 1);
        sp_json_str(j, file);
        sp_puts(j, ",\"node\":");
        sp_json_str(j, L->name);
        sp_puts(j, ",\"relu\":");
        sp_json_str(j, L->relu_name);
        sp_printf(j, ",\"inputs\":%lld,\"outputs\":%lld,\"rows\":%lld,"
                     "\"cols\":%lld,\"tiles\":[%lld,%lld]",
                  (long long)L->K, (long long)L->M, (long long)L->geom.rows,
                  (long long)L->geom.cols, (long long)L->geom.tiles_r,
                  (long long)L->geom.tiles_c);
#define JN(key, val)                                                        \
    do {                                                                    \
        sp_puts(j, ",\"" key "\":");                                        \
        sp_json_num(j, (val));                                              \
    } while (0)
        JN("w_max", L->w_max);
        JN("g_scale_s", r->g_scale);
        JN("g_bias_s", r->g_bias);
        JN("s_in_v", r->s_in);
        JN("s_out_v", r->s_out);
        JN("r_f", r->r_f);
        JN("r_a", r->r_a);
        JN("r_fb", r->r_fb);
        JN("stage_gain", r->gain);
        JN("y_bound", L->y_bound);
        JN("y_calibrated", L->y_cal >= 0 ? L->y_cal : NAN);
        JN("y_range", L->y_range);
        JN("tia_bound", L->t_bound);
        JN("tia_range", L->t_range);
        JN("resistors", (double)c->resistors);
        JN("opamps", (double)c->opamps);
        JN("diodes", (double)c->diodes);
        JN("pcm_devices", (double)c->devices);
        JN("limiters", (double)c->limiters);
        JN("dropped_weights", (double)c->dropped);
        JN("max_dropped_w", c->max_dropped_w);
        JN("power_w", r->power_w);
        JN("settle_s", r->settle_s >= 0 ? r->settle_s : NAN);
        JN("sim_s_per_sample", sim);
        sp_puts(j, "}");
    }
    sp_puts(j, "],\"totals\":{");
    sp_puts(j, "\"resistors\":");
    sp_json_num(j, tot_r);
    JN("opamps", tot_o);
    JN("diodes", tot_d);
    JN("pcm_devices", tot_dev);
    JN("limiters", tot_l);
    JN("dropped_weights", tot_drop);
    JN("power_w", tot_p);
    JN("sim_s_per_sample", tot_sim);
#undef JN
    sp_puts(j, "}}\n");
}

static int sp_compile(void *state, const crucible_compile_ctx *ctx)
{
    sp_state *s = state;
    const crucible_host *h = s->host;
    char why[512], file[160];
    sp_params p;
    sp_plan plan;
    if (!ctx || !ctx->graph || !ctx->sink || !ctx->sink->emit) {
        h->log(h, CRUCIBLE_LOG_MISBEHAVING, "compile called without a graph "
               "or an artifact sink");
        return CRUCIBLE_E_INVALID;
    }
    int rc = sp_params_load(ctx->board, ctx->config, &p, why, sizeof why);
    if (rc) {
        h->log(h, CRUCIBLE_LOG_ERROR, "%s", why);
        return rc;
    }
    warn_unknown_keys(h, ctx->config);
    rc = sp_plan_build(h, ctx->graph, &p, &plan, why, sizeof why);
    if (rc) {
        h->log(h, CRUCIBLE_LOG_ERROR, "cannot map the graph: %s", why);
        return rc;
    }
    sp_variant v;
    memset(&v, 0, sizeof v);
    v.tech = p.tech;
    v.label = sp_tech_is_ideal(&p.tech) ? "ideal" : "real";
    v.prefix = "";
    v.draw = !sp_tech_is_ideal(&p.tech);
    v.seed = p.seed;
    sp_real *real = sp_calloc(h, plan.n_layers, sizeof(sp_real));
    if (!real) {
        sp_plan_free(&plan);
        return CRUCIBLE_E_NOMEM;
    }
    sp_realise(&plan, &p, &p.tech, real);

    sp_buf b;
    sp_buf_init(&b, h);
    sp_net_lib(&b, &plan, &p, &v);
    rc = emit_buf(h, ctx, "lib.cir", &b);
    for (uint32_t l = 0; !rc && l < plan.n_layers; l++) {
        sp_buf_free(&b);
        sp_buf_init(&b, h);
        sp_net_layer(&b, &plan, &p, &v, real, l);
        sp_layer_file(&plan, l, "", file, sizeof file);
        rc = emit_buf(h, ctx, file, &b);
    }
    if (!rc) {
        sp_buf_free(&b);
        sp_buf_init(&b, h);
        sp_net_model(&b, &plan, &p, &v, real);
        rc = emit_buf(h, ctx, "model.cir", &b);
    }
    if (!rc) {
        sp_buf_free(&b);
        sp_buf_init(&b, h);
        sp_net_op(&b, &plan, &p, &v);
        rc = emit_buf(h, ctx, "op.cir", &b);
    }
    if (!rc) {
        sp_buf_free(&b);
        sp_buf_init(&b, h);
        design_json(&b, &plan, &p, &v, real);
        rc = emit_buf(h, ctx, "design.json", &b);
    }
    sp_buf_free(&b);
    if (!rc) {
        double tr = 0, to = 0, td = 0, tp = 0, drop = 0, tdev = 0;
        for (uint32_t l = 0; l < plan.n_layers; l++) {
            const sp_real *r = &real[l];
            tr += (double)r->counts.resistors, to += (double)r->counts.opamps;
            td += (double)r->counts.diodes, tp += r->power_w;
            drop += (double)r->counts.dropped;
            tdev += (double)r->counts.devices;
            h->log(h, CRUCIBLE_LOG_INFO, "layer %u (%s%s%s): %lld x %lld, "
                   "G_scale %.4g S/unit, R_f %.4g ohm, stage gain %.4g, "
                   "%.4g -> %.4g V/unit, %lld resistors, %lld op-amps, %lld "
                   "diodes", l + 1, plan.layers[l].name,
                   plan.layers[l].relu_name ? " + " : "",
                   plan.layers[l].relu_name ? plan.layers[l].relu_name : "",
                   (long long)plan.layers[l].M, (long long)plan.layers[l].K,
                   r->g_scale, r->r_f, r->gain, r->s_in, r->s_out,
                   (long long)r->counts.resistors, (long long)r->counts.opamps,
                   (long long)r->counts.diodes);
        }
        h->log(h, CRUCIBLE_LOG_INFO, "%s components (board %s): %.0f "
               "resistors%s, %.0f op-amps, %.0f diodes, ~%.3g %s static; "
               "scaling %s%s", v.label, p.board_name, tr,
               tdev > 0 ? " (crossbar: PCM devices)" : "", to, td,
               tp >= 1 ? tp : tp * 1e3, tp >= 1 ? "W" : "mW",
               p.calibrated ? "calibrated: " : "bound (interval arithmetic "
                                               "over the declared input range)",
               p.calibrated ? plan.cal_note : "");
        if (tdev > 0)
            h->log(h, CRUCIBLE_LOG_INFO, "%.0f PCM devices (g_max %g S, the "
                   "largest |w| of each layer; weights below g_min %g S left "
                   "open)", tdev, p.tech.g_max, p.tech.g_min);
        if (drop > 0 && p.tech.pcm)
            h->log(h, CRUCIBLE_LOG_WARN, "%.0f weights would need PCM "
                   "conductances below g_min = %g S and are left open (w = 0)",
                   drop, p.tech.g_min);
        else if (drop > 0)
            h->log(h, CRUCIBLE_LOG_WARN, "%.0f weights map to resistors above "
                   "r_max = %g ohm and are left open (w = 0)", drop, p.tech.r_max);
        if (plan.softmax_node != SP_NONE)
            h->log(h, CRUCIBLE_LOG_INFO, "softmax node %s is computed "
                   "digitally after the ADC (no analog circuit)",
                   ctx->graph->nodes[plan.softmax_node]->name);
    }
    sp_free(h, real, plan.n_layers, sizeof(sp_real));
    sp_plan_free(&plan);
    return rc;
}

static int sp_verify_slot(void *state, const crucible_verify_ctx *ctx)
{
    return sp_verify(state, ctx);
}

/* ---- entry ---------------------------------------------------------------*/
static const crucible_boundary sp_dac_adc = {
    sizeof(crucible_boundary), CRUCIBLE_LINK_DAC_ADC, 0.0, 12, 1e-6};
static const crucible_boundary *const sp_boundaries[] = {&sp_dac_adc, NULL};

static const crucible_target sp_target = {
    CRUCIBLE_HEADER(crucible_target),
    "analog crossbar circuits (resistor conductance pairs, op-amp "
    "transimpedance and difference stages, precision rectifiers) as SPICE "
    "netlists, verified in ngspice against the reference interpreter",
    sp_boundaries,
    sp_accept_board,
    sp_query,
    sp_compile,
    sp_verify_slot};

static int sp_init(const crucible_host *host, void **state)
{
    if (!host || !host->realloc || !host->log || !state) return CRUCIBLE_E_INVALID;
    sp_state *s = sp_calloc(host, 1, sizeof *s);
    if (!s) return CRUCIBLE_E_NOMEM;
    s->host = host;
    *state = s;
    return CRUCIBLE_OK;
}

static void sp_deinit(void *state)
{
    sp_state *s = state;
    if (s) sp_free(s->host, s, 1, sizeof *s);
}

static const void *sp_get_interface(void *state, const char *iface_id)
{
    (void)state;
    if (iface_id && !strcmp(iface_id, CRUCIBLE_IFACE_TARGET)) return &sp_target;
    return NULL;
}

static const char *const sp_interfaces[] = {CRUCIBLE_IFACE_TARGET, NULL};

CRUCIBLE_ENTRY(sp_entry) = {
    CRUCIBLE_HEADER(crucible_plugin_entry),
    CRUCIBLE_ABI_TAG,
    0,
    SPICE_ID,
    "SPICE analog crossbar",
    SPICE_VERSION,
    "crucible",
    "float dense/relu chains as analog crossbar circuits (SPICE netlists), "
    "verified in ngspice",
    sp_interfaces,
    sp_init,
    sp_deinit,
    sp_get_interface};
