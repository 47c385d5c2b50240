/*
 * spice_net.c - the netlists: the component library (op-amp, diode), one
 * subcircuit per layer (crossbar, TIAs, difference/summing stage,
 * rectifier), the whole-model subcircuit, a stand-alone operating-point
 * deck and the verification harness with its .control script.
 *
 * Names are readable: R_L1_r3_c5p is the crossbar resistor of layer 1,
 * row 3 (input 3), column 5+ (output 5, G+ half); rb is the bias row;
 * X_L1_tia_c5p the transimpedance amplifier of that column, R_L1_f_c5p its
 * feedback resistor; X_L1_dif_c5 the difference (summing) stage of output
 * 5 with R_L1_a_c5p / R_L1_a_c5n / R_L1_fb_c5 / R_L1_g_c5; X_L1_relu_c5 and
 * D_L1_d1_c5 / D_L1_d2_c5 the precision rectifier. Tiled layers add the
 * row tile: R_L1_f_t1_c5p, node col_t1_5p. docs/spice.md has the circuit.
 */
#include "spice_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Value with a SPICE scale suffix: 10.2k, 1.5Meg, 499, 3.3m. */
static void fmt_val(char *buf, size_t n, double v, int exact)
{
    static const struct {
        double f;
        const char *s;
    } sc[] = {{1e12, "T"}, {1e9, "G"},  {1e6, "Meg"}, {1e3, "k"}, {1, ""},
              {1e-3, "m"}, {1e-6, "u"}, {1e-9, "n"},  {1e-12, "p"}};
    double a = fabs(v);
    if (a == 0) {
        snprintf(buf, n, "0");
        return;
    }
    for (size_t i = 0; i < sizeof sc / sizeof sc[0]; i++)
        if (a >= sc[i].f * 0.9999999 || i + 1 == sizeof sc / sizeof sc[0]) {
            snprintf(buf, n, exact ? "%.9g%s" : "%.4g%s", v / sc[i].f, sc[i].s);
            return;
        }
}

/* Component value for this variant: the nominal value, times a seeded
 * tolerance draw when the variant draws. */
typedef struct rctx {
    const sp_variant *v;
    int exact;
} rctx;

static void put_r(sp_buf *b, const rctx *c, const char *name, const char *n1,
                  const char *n2, double nominal)
{
    char val[48];
    const sp_tech *t = &c->v->tech;
    double r = nominal;
    if (c->v->param && !t->pcm) {
        /* drift netlists: tolerance and ageing scaled by .params (on PCM
         * boards these params belong to the devices; the periphery keeps
         * its drawn values) */
        double u = sp_draw(c->v->seed, name);
        double a = 1.0 + c->v->age_spread * sp_draw(c->v->seed ^ 0xA9E1A9E1ull, name);
        sp_printf(b, "%s %s %s {%.9g*(1+ptol*(%.6f))*(1+page*%.6f)}", name, n1,
                  n2, nominal, u, a);
        if (t->tcr_ppm > 0)
            sp_printf(b, " tc1=%.4g", t->tcr_ppm * 1e-6 *
                                          sp_draw(c->v->seed ^ 0x7C7C7C7Cull, name));
        sp_puts(b, "\n");
        return;
    }
    if (c->v->draw && t->tol > 0) r *= 1.0 + t->tol * sp_draw(c->v->seed, name);
    fmt_val(val, sizeof val, r, c->exact || (c->v->draw && t->tol > 0));
    if (c->v->draw && t->tcr_ppm > 0) {
        double tc = t->tcr_ppm * 1e-6 * sp_draw(c->v->seed ^ 0x7C7C7C7Cull, name);
        sp_printf(b, "%s %s %s %s tc1=%.4g\n", name, n1, n2, val, tc);
    } else {
        sp_printf(b, "%s %s %s %s\n", name, n1, n2, val);
    }
}

/* A standard normal draw for a named component (Box-Muller on two
 * seeded uniform draws). */
static double gauss_draw(uint64_t seed, const char *name)
{
    double u1 = 0.5 * (sp_draw(seed ^ 0x6A55A6A5ull, name) + 1.0);
    double u2 = 0.5 * (sp_draw(seed ^ 0x3C3CC3C3ull, name) + 1.0);
    if (u1 < 1e-12) u1 = 1e-12;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * SP_PI * u2);
}

static double clampd(double x, double lo, double hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

/* A PCM crossbar device programmed to conductance g_t (aihwkit's PCM
 * statistical model): programming noise g_prog = g_t + scale * sigma_prog
 * * z, then drift g(t) = g_prog (t / t0)^-nu, nu ~ N(mu_nu, sigma_nu),
 * both functions of gn = g_t / g_max. Drawn devices are at t = t0 (right
 * after programming); parametric ones take .param ptol (programming noise
 * scale) and page (= ln(t / t0), t >= t0). */
static void put_dev(sp_buf *b, const rctx *c, const char *name, const char *n1,
                    const char *n2, double g_t)
{
    const sp_tech *t = &c->v->tech;
    const double gn = clampd(g_t / t->g_max, 1e-7, 1.0);
    const double sig = fmax(t->prog_c[0] + t->prog_c[1] * gn + t->prog_c[2] * gn * gn, 0.0);
    const double floor_g = 1e-3 * t->g_min;
    const double mu = clampd(t->nu_mu[0] * log(gn) + t->nu_mu[1], t->nu_mu[2], t->nu_mu[3]);
    const double sd = clampd(t->nu_sd[0] * log(gn) + t->nu_sd[1], t->nu_sd[2], t->nu_sd[3]);
    const double z = c->v->draw ? gauss_draw(c->v->seed, name) : 0.0;
    const double nu = fmax(mu + sd * gauss_draw(c->v->seed ^ 0x5EED0DD5ull, name), 0.0);
    if (c->v->param) {
        sp_printf(b, "%s %s %s {exp(page*%.6f)/max(%.9g+ptol*(%.6g),%.4g)}\n",
                  name, n1, n2, nu, g_t, sig * z, floor_g);
        return;
    }
    double g = fmax(g_t + t->prog_scale * sig * z, floor_g);
    sp_printf(b, "%s %s %s %.9g\n", name, n1, n2, 1.0 / g);
}

static void put_opamp(sp_buf *b, const rctx *c, const char *name,
                      const char *inp, const char *inn, const char *out)
{
    const sp_tech *t = &c->v->tech;
    if (t->opamp_macro && c->v->draw && t->offset_v > 0) {
        double vos = t->offset_v * sp_draw(c->v->seed ^ 0x0F5E70FFull, name);
        sp_printf(b, "%s %s %s %s OPAMP vos=%.4g\n", name, inp, inn, out, vos);
    } else {
        sp_printf(b, "%s %s %s %s OPAMP\n", name, inp, inn, out);
    }
}

void sp_layer_file(const sp_plan *plan, uint32_t l, const char *prefix,
                   char *buf, size_t n)
{
    const char *name = plan->layers[l].name ? plan->layers[l].name : "dense";
    char clean[48];
    size_t k = 0;
    int under = 1; /* drop leading and repeated separators */
    for (const char *p = name; *p && k + 1 < sizeof clean; p++) {
        int ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                 (*p >= '0' && *p <= '9') || *p == '-';
        if (ok) {
            clean[k++] = *p;
            under = 0;
        } else if (!under) {
            clean[k++] = '_';
            under = 1;
        }
    }
    while (k && clean[k - 1] == '_') k--;
    clean[k] = 0;
    snprintf(buf, n, "%slayer%u%s%s.cir", prefix, l + 1, k ? "_" : "", clean);
}

void sp_net_lib(sp_buf *b, const sp_plan *plan, const sp_params *p,
                const sp_variant *v)
{
    const sp_tech *t = &v->tech;
    (void)plan;
    sp_printf(b, "* crucible spice: component library (%s components, "
                 "board %s)\n", v->label, p->board_name);
    sp_puts(b, "* OPAMP pins: non-inverting input, inverting input, output\n");
    if (!t->opamp_macro) {
        sp_printf(b, "* ideal op-amp: a voltage-controlled voltage source of "
                     "gain %g, no swing limit\n", t->gain);
        sp_puts(b, ".subckt OPAMP inp inn out\n");
        sp_printf(b, "E_1 out 0 inp inn %g\n", t->gain);
        sp_puts(b, ".ends OPAMP\n");
    } else {
        const double gm = 1e-3;
        double r1 = t->gain / gm;
        double c1 = gm / (2.0 * SP_PI * t->gbw_hz);
        sp_printf(b, "* op-amp macro-model: DC gain %g, GBW %g Hz (one pole "
                     "at %g Hz), input offset vos (per instance, +-%g V on "
                     "this board), output swing +-%g V (diode clamps on the "
                     "gain node), output resistance %g ohm, input resistance "
                     "%g ohm\n",
                  t->gain, t->gbw_hz, t->gbw_hz / t->gain, t->offset_v,
                  t->swing_v, t->rout, t->rin);
        sp_puts(b, ".subckt OPAMP inp inn out vos=0\n");
        sp_puts(b, "V_os inp inp_o DC {vos}\n");
        if (t->rin > 0) sp_printf(b, "R_in inp_o inn %g\n", t->rin);
        sp_printf(b, "G_1 0 n1 inp_o inn %g\n", gm);
        sp_printf(b, "R_1 n1 0 %g\n", r1);
        sp_printf(b, "C_1 n1 0 %g\n", c1);
        sp_printf(b, "V_hi vhi 0 DC %g\n", t->swing_v - 0.6);
        sp_printf(b, "V_lo vlo 0 DC %g\n", -(t->swing_v - 0.6));
        sp_puts(b, "D_hi n1 vhi DCLAMP\nD_lo vlo n1 DCLAMP\n");
        sp_puts(b, "E_o o_int 0 n1 0 1\n");
        sp_printf(b, "R_o o_int out %g\n", t->rout > 0 ? t->rout : 1e-3);
        sp_puts(b, ".ends OPAMP\n");
        sp_puts(b, ".model DCLAMP D(IS=1e-14 N=1)\n");
    }
    if (t->relu_diode) {
        sp_puts(b, "* rectifier diode (1N4148-like small-signal silicon diode)\n");
        sp_printf(b, ".model DRECT D(IS=%g N=%g RS=%g BV=%g IBV=1u CJO=%g "
                     "M=0.4 TT=%g)\n", t->d_is, t->d_n, t->d_rs, t->d_bv,
                  t->d_cjo, t->d_tt);
    }
    sp_puts(b, "* end of library\n");
}

/* Column node of output m, half h ('p'/'n'), row tile ti. */
static void col_node(char *buf, size_t n, const sp_layer *L, int64_t ti,
                     int64_t m, char h)
{
    if (L->geom.tiles_r > 1) snprintf(buf, n, "col_t%lld_%lld%c", (long long)ti, (long long)m, h);
    else snprintf(buf, n, "col_%lld%c", (long long)m, h);
}

static void tia_node(char *buf, size_t n, const sp_layer *L, int64_t ti,
                     int64_t m, char h)
{
    if (L->geom.tiles_r > 1) snprintf(buf, n, "tia_t%lld_%lld%c", (long long)ti, (long long)m, h);
    else snprintf(buf, n, "tia_%lld%c", (long long)m, h);
}

static void tile_tag(char *buf, size_t n, const sp_layer *L, int64_t ti)
{
    if (L->geom.tiles_r > 1) snprintf(buf, n, "_t%lld", (long long)ti);
    else buf[0] = 0;
}

int64_t sp_monitor_count(const sp_plan *plan, uint32_t l)
{
    const sp_layer *L = &plan->layers[l];
    return 2 * L->M * L->geom.tiles_r + L->M;
}

/* Writes tokens after `head`, wrapping long lines with '+' continuations. */
typedef struct wrap {
    sp_buf *b;
    size_t col;
    int nowrap; /* .control lines: no continuation lines */
} wrap;

static void wrap_start(wrap *w, sp_buf *b, const char *head)
{
    w->b = b;
    w->nowrap = 0;
    sp_puts(b, head);
    w->col = strlen(head);
}

static void wrap_tok(wrap *w, const char *tok)
{
    size_t n = strlen(tok);
    if (!w->nowrap && w->col + n + 1 > 100) {
        sp_puts(w->b, "\n+");
        w->col = 1;
    }
    sp_putn(w->b, " ", 1);
    sp_puts(w->b, tok);
    w->col += n + 1;
}

static void wrap_end(wrap *w) { sp_puts(w->b, "\n"); }

void sp_net_layer(sp_buf *b, const sp_plan *plan, const sp_params *p,
                  const sp_variant *v, const sp_real *real, uint32_t l)
{
    const sp_layer *L = &plan->layers[l];
    const sp_real *r = &real[l];
    const sp_tech *t = &v->tech;
    const unsigned li = l + 1;
    const int relu = L->relu_node != SP_NONE;
    const int64_t R = p->xbar_rows;
    const double g_min = 1.0 / t->r_max;
    rctx c = {v, t->series == SP_SERIES_EXACT};
    char nm[128], n1[64], n2[64], n3[64], tg[32], tok[64];
    char cnt[32];
    wrap w;

    sp_printf(b, "* crucible spice: layer %u = dense node %s (%lld inputs -> "
                 "%lld outputs)%s%s\n", li, L->name, (long long)L->K,
              (long long)L->M, relu ? " + relu node " : "",
              relu ? L->relu_name : "");
    sp_printf(b, "* %s components (board %s)%s\n", v->label, p->board_name,
              v->draw && (t->tol > 0 || t->offset_v > 0)
                  ? "; resistor tolerances and op-amp offsets are one seeded draw"
                  : "");
    sp_printf(b, "* weights: w = (G+ - G-) / G_scale, G_scale = %.6g S per "
                 "unit (|w| = %.6g -> %g ohm)\n", r->g_scale,
              L->w_max > 0 ? L->w_max : 1.0, t->r_min);
    sp_printf(b, "* inputs in_k: V = %.6g V per unit; bias row: vref = %g V "
                 "through G = |b| * %.6g S\n", r->s_in, p->v_ref, r->g_bias);
    sp_printf(b, "* crossbar: %lld rows (%lld inputs + bias) x %lld columns "
                 "(G+/G- per output), %lld x %lld tile(s) of %d x %d\n",
              (long long)L->geom.rows, (long long)L->K, (long long)L->geom.cols,
              (long long)L->geom.tiles_r, (long long)L->geom.tiles_c,
              p->xbar_rows, p->xbar_cols);
    sp_printf(b, "* TIA per column (and row tile): V = -R_f * I, R_f = %.6g "
                 "ohm; difference stage gain R_fb/R_a = %.6g\n", r->r_f, r->gain);
    sp_printf(b, "* stage output: V = %s%.6g V per unit of y (design full "
                 "scale %g V = |y| %.6g)%s\n", relu ? "-" : "", r->s_out,
              p->v_fs, L->y_range,
              relu ? (t->relu_diode ? "; relu: inverting precision rectifier "
                                      "(op-amp + 2 diodes), out = max(0, -V)"
                                    : "; relu: ideal behavioural limiter, "
                                      "out = max(0, -V)")
                   : "");
    sp_fmt_count(cnt, sizeof cnt, (double)r->counts.resistors);
    sp_printf(b, "* components: %s resistors, %lld op-amps, %lld diodes, %lld "
                 "limiters; %lld weights below G_min = 1/%g ohm left open\n",
              cnt, (long long)r->counts.opamps, (long long)r->counts.diodes,
              (long long)r->counts.limiters, (long long)r->counts.dropped,
              t->r_max);

    snprintf(nm, sizeof nm, ".subckt LAYER%u", li);
    wrap_start(&w, b, nm);
    for (int64_t k = 0; k < L->K; k++) {
        snprintf(tok, sizeof tok, "in_%lld", (long long)k);
        wrap_tok(&w, tok);
    }
    wrap_tok(&w, "vref");
    for (int64_t m = 0; m < L->M; m++) {
        snprintf(tok, sizeof tok, "out_%lld", (long long)m);
        wrap_tok(&w, tok);
    }
    wrap_end(&w);

    /* crossbar rows: inputs, then the bias row */
    for (int64_t k = 0; k <= L->K; k++) {
        const int bias = k == L->K;
        const int64_t ti = k / R;
        char row[32], src[32];
        if (bias) {
            snprintf(row, sizeof row, "rb");
            snprintf(src, sizeof src, "vref");
            sp_puts(b, "* bias row (reference vref)\n");
        } else {
            snprintf(row, sizeof row, "r%lld", (long long)k);
            snprintf(src, sizeof src, "in_%lld", (long long)k);
            if (k % R == 0 && L->geom.tiles_r > 1)
                sp_printf(b, "* row tile %lld\n", (long long)ti);
        }
        for (int64_t m = 0; m < L->M; m++) {
            double wv = bias ? L->bias[m] : (double)L->W[m * L->K + k];
            double gs = bias ? r->g_bias : r->g_scale;
            double g = gs * fabs(wv);
            char h = wv > 0 ? 'p' : 'n';
            int placed = 0;
            if (wv != 0 && g >= g_min) {
                snprintf(nm, sizeof nm, "R_L%u_%s_c%lld%c", li, row, (long long)m, h);
                col_node(n1, sizeof n1, L, ti, m, h);
                if (t->pcm) put_dev(b, &c, nm, src, n1, g);
                else put_r(b, &c, nm, src, n1, sp_series_round(1.0 / g, t->series));
                placed = 1;
            }
            if (p->off_rmax) { /* the unused half(s) at the off conductance */
                for (int hh = 0; hh < 2; hh++) {
                    char hc = hh ? 'n' : 'p';
                    if (placed && hc == h) continue;
                    snprintf(nm, sizeof nm, "R_L%u_%s_c%lld%c", li, row, (long long)m, hc);
                    col_node(n1, sizeof n1, L, ti, m, hc);
                    put_r(b, &c, nm, src, n1, t->r_max);
                }
            }
        }
    }
    const int64_t tiles_used = (L->K + 1 + R - 1) / R;
    /* column amplifiers */
    sp_puts(b, "* transimpedance amplifiers (virtual ground at every column)\n");
    for (int64_t m = 0; m < L->M; m++)
        for (int64_t ti = 0; ti < tiles_used; ti++)
            for (int hh = 0; hh < 2; hh++) {
                char h = hh ? 'n' : 'p';
                tile_tag(tg, sizeof tg, L, ti);
                col_node(n1, sizeof n1, L, ti, m, h);
                tia_node(n2, sizeof n2, L, ti, m, h);
                snprintf(nm, sizeof nm, "X_L%u_tia%s_c%lld%c", li, tg, (long long)m, h);
                put_opamp(b, &c, nm, "0", n1, n2);
                snprintf(nm, sizeof nm, "R_L%u_f%s_c%lld%c", li, tg, (long long)m, h);
                put_r(b, &c, nm, n1, n2, r->r_f);
            }
    /* difference / summing stages and rectifiers */
    const char hn = relu ? 'p' : 'n'; /* TIA half on the non-inverting side */
    const char hi = relu ? 'n' : 'p'; /* ... on the inverting side */
    const double r_rect = sp_series_round(t->r_rect, t->series);
    sp_printf(b, "* difference stages: V = (R_fb/R_a) * (sum V(tia %c) - sum "
                 "V(tia %c))%s\n", hn, hi,
              relu ? " = -s_out * y, then the rectifier" : " = s_out * y");
    for (int64_t m = 0; m < L->M; m++) {
        char dp[32], dn[32], so[32];
        snprintf(dp, sizeof dp, "dp_%lld", (long long)m);
        snprintf(dn, sizeof dn, "dn_%lld", (long long)m);
        snprintf(so, sizeof so, relu ? "d_%lld" : "out_%lld", (long long)m);
        for (int64_t ti = 0; ti < tiles_used; ti++) {
            tile_tag(tg, sizeof tg, L, ti);
            tia_node(n1, sizeof n1, L, ti, m, hi);
            snprintf(nm, sizeof nm, "R_L%u_a%s_c%lld%c", li, tg, (long long)m, hi);
            put_r(b, &c, nm, n1, dn, r->r_a);
            tia_node(n1, sizeof n1, L, ti, m, hn);
            snprintf(nm, sizeof nm, "R_L%u_a%s_c%lld%c", li, tg, (long long)m, hn);
            put_r(b, &c, nm, n1, dp, r->r_a);
        }
        snprintf(nm, sizeof nm, "R_L%u_fb_c%lld", li, (long long)m);
        put_r(b, &c, nm, so, dn, r->r_fb);
        snprintf(nm, sizeof nm, "R_L%u_g_c%lld", li, (long long)m);
        put_r(b, &c, nm, dp, "0", r->r_fb);
        snprintf(nm, sizeof nm, "X_L%u_dif_c%lld", li, (long long)m);
        put_opamp(b, &c, nm, dp, dn, so);
        if (!relu) continue;
        snprintf(n2, sizeof n2, "out_%lld", (long long)m);
        if (t->relu_diode) {
            snprintf(n1, sizeof n1, "rn_%lld", (long long)m);
            snprintf(n3, sizeof n3, "ro_%lld", (long long)m);
            snprintf(nm, sizeof nm, "R_L%u_ri_c%lld", li, (long long)m);
            put_r(b, &c, nm, so, n1, r_rect);
            snprintf(nm, sizeof nm, "X_L%u_relu_c%lld", li, (long long)m);
            put_opamp(b, &c, nm, "0", n1, n3);
            sp_printf(b, "D_L%u_d1_c%lld %s %s DRECT\n", li, (long long)m, n1, n3);
            sp_printf(b, "D_L%u_d2_c%lld %s %s DRECT\n", li, (long long)m, n3, n2);
            snprintf(nm, sizeof nm, "R_L%u_ro_c%lld", li, (long long)m);
            put_r(b, &c, nm, n2, n1, r_rect);
        } else {
            sp_printf(b, "B_L%u_relu_c%lld %s 0 V = max(-V(%s), 0)\n", li,
                      (long long)m, n2, so);
        }
    }
    sp_printf(b, ".ends LAYER%u\n", li);
}

/* Node name of layer l's output m at the model level. */
static void act_node(char *buf, size_t n, const sp_plan *plan, uint32_t l,
                     int64_t m)
{
    if (l + 1 == plan->n_layers) snprintf(buf, n, "out_%lld", (long long)m);
    else snprintf(buf, n, "a%u_%lld", l + 1, (long long)m);
}

void sp_net_model(sp_buf *b, const sp_plan *plan, const sp_params *p,
                  const sp_variant *v, const sp_real *real)
{
    char tok[64], file[160];
    wrap w;
    const sp_real *last = &real[plan->n_layers - 1];
    sp_printf(b, "* crucible spice: whole model, %u layer(s), %s components "
                 "(board %s)\n", plan->n_layers, v->label, p->board_name);
    sp_printf(b, "* input %s: in_k = %.6g V per unit (DAC, declared range "
                 "%g..%g, %d bits)\n", plan->in_name, real[0].s_in, p->in_min,
              p->in_max, p->dac_bits);
    sp_printf(b, "* output %s: out_m = %.6g V per unit (ADC %d bits over "
                 "%s%g V)%s\n", plan->out_name, last->s_out, p->adc_bits,
              plan->out_relu ? "0.." : "+-", p->v_fs,
              plan->softmax_node != SP_NONE
                  ? "; softmax is computed digitally after the ADC"
                  : "");
    sp_printf(b, ".include %slib.cir\n", v->prefix);
    for (uint32_t l = 0; l < plan->n_layers; l++) {
        sp_layer_file(plan, l, v->prefix, file, sizeof file);
        sp_printf(b, ".include %s\n", file);
    }
    wrap_start(&w, b, ".subckt MODEL");
    for (int64_t k = 0; k < plan->n_in; k++) {
        snprintf(tok, sizeof tok, "in_%lld", (long long)k);
        wrap_tok(&w, tok);
    }
    for (int64_t m = 0; m < plan->n_out; m++) {
        snprintf(tok, sizeof tok, "out_%lld", (long long)m);
        wrap_tok(&w, tok);
    }
    wrap_end(&w);
    sp_printf(b, "V_REF vref 0 DC %g\n", p->v_ref);
    for (uint32_t l = 0; l < plan->n_layers; l++) {
        const sp_layer *L = &plan->layers[l];
        snprintf(tok, sizeof tok, "X_L%u", l + 1);
        wrap_start(&w, b, tok);
        for (int64_t k = 0; k < L->K; k++) {
            if (l == 0) snprintf(tok, sizeof tok, "in_%lld", (long long)k);
            else if (plan->layers[l - 1].pool)
                snprintf(tok, sizeof tok, "p%u_%lld", l, (long long)k);
            else act_node(tok, sizeof tok, plan, l - 1, k);
            wrap_tok(&w, tok);
        }
        wrap_tok(&w, "vref");
        for (int64_t m = 0; m < L->M; m++) {
            act_node(tok, sizeof tok, plan, l, m);
            wrap_tok(&w, tok);
        }
        snprintf(tok, sizeof tok, "LAYER%u", l + 1);
        wrap_tok(&w, tok);
        wrap_end(&w);
        if (!L->pool) continue;
        /* max-pool: a behavioural max over each window (ideal on every
         * board; docs/spice.md) */
        sp_printf(b, "* max-pool of layer %u: %lld x %lld windows, stride %lld "
                     "x %lld, behavioural max sources\n", l + 1,
                  (long long)L->p_kh, (long long)L->p_kw, (long long)L->p_sh,
                  (long long)L->p_sw);
        int64_t taps[256];
        for (int64_t j = 0; j < L->P; j++) {
            int64_t nt = L->p_kh * L->p_kw <= 256 ? sp_pool_taps(L, j, taps) : 0;
            snprintf(tok, sizeof tok, "B_P%u_%lld p%u_%lld 0 V =", l + 1,
                     (long long)j, l + 1, (long long)j);
            wrap_start(&w, b, tok);
            for (int64_t t = 0; t + 1 < nt; t++) wrap_tok(&w, "max(");
            for (int64_t t = 0; t < nt; t++) {
                char vn[64];
                act_node(vn, sizeof vn, plan, l, taps[t]);
                snprintf(tok, sizeof tok, "%sV(%s)%s", t > 0 ? ", " : "", vn,
                         t > 0 ? ")" : "");
                wrap_tok(&w, tok);
            }
            if (nt == 0) wrap_tok(&w, "0");
            wrap_end(&w);
        }
    }
    sp_puts(b, ".ends MODEL\n");
}

static void model_instance(sp_buf *b, const sp_plan *plan)
{
    char tok[64];
    wrap w;
    wrap_start(&w, b, "X_MODEL");
    for (int64_t k = 0; k < plan->n_in; k++) {
        snprintf(tok, sizeof tok, "in_%lld", (long long)k);
        wrap_tok(&w, tok);
    }
    for (int64_t m = 0; m < plan->n_out; m++) {
        snprintf(tok, sizeof tok, "out_%lld", (long long)m);
        wrap_tok(&w, tok);
    }
    wrap_tok(&w, "MODEL");
    wrap_end(&w);
}

void sp_net_op(sp_buf *b, const sp_plan *plan, const sp_params *p,
               const sp_variant *v)
{
    char tok[64];
    wrap w;
    sp_printf(b, "* crucible spice: operating point of the whole model with "
                 "every DAC input at 0 V\n* run: ngspice -b %sop.cir (set the "
                 "V_IN_k sources to other input voltages)\n", v->prefix);
    sp_printf(b, ".include %smodel.cir\n", v->prefix);
    sp_printf(b, ".temp %g\n", p->temp_c);
    for (int64_t k = 0; k < plan->n_in; k++)
        sp_printf(b, "V_IN_%lld in_%lld 0 DC 0\n", (long long)k, (long long)k);
    model_instance(b, plan);
    sp_puts(b, ".control\nop\n");
    wrap_start(&w, b, "print");
    w.nowrap = 1;
    for (int64_t m = 0; m < plan->n_out; m++) {
        snprintf(tok, sizeof tok, "v(out_%lld)", (long long)m);
        wrap_tok(&w, tok);
    }
    wrap_end(&w);
    sp_puts(b, "quit 0\n.endc\n.end\n");
}

/* ---- the verification harness ------------------------------------------ */
static void monitor_vec(char *buf, size_t n, const sp_plan *plan, uint32_t l,
                        int64_t idx)
{
    const sp_layer *L = &plan->layers[l];
    const int64_t tia = 2 * L->M * L->geom.tiles_r;
    if (idx < tia) {
        int64_t m = idx / (2 * L->geom.tiles_r);
        int64_t rest = idx % (2 * L->geom.tiles_r);
        char node[64];
        tia_node(node, sizeof node, L, rest / 2, m, rest % 2 ? 'n' : 'p');
        snprintf(buf, n, "v(x_model.x_l%u.%s)", l + 1, node);
        return;
    }
    int64_t m = idx - tia;
    if (L->relu_node != SP_NONE)
        snprintf(buf, n, "v(x_model.x_l%u.d_%lld)", l + 1, (long long)m);
    else if (l + 1 == plan->n_layers)
        snprintf(buf, n, "v(out_%lld)", (long long)m);
    else
        snprintf(buf, n, "v(x_model.a%u_%lld)", l + 1, (long long)m);
}

void sp_net_harness(sp_buf *b, const sp_plan *plan, const sp_params *p,
                    const sp_variant *v, const sp_real *real,
                    const double *volts, uint32_t n_samples,
                    const char *results, int monitor)
{
    char tok[96];
    wrap w;
    (void)real;
    sp_printf(b, "* crucible spice: verification harness, %u sample(s), %s "
                 "components (board %s)\n", n_samples, v->label, p->board_name);
    sp_puts(b, "* The DAC outputs are tabulated over a sample index V(sel): "
               "sample i holds for sel in [i-0.25, i+0.25].\n"
               "* One .dc sweep of V_SEL over 0..N-1 simulates every sample "
               "(each point starts from the previous solution).\n");
    sp_printf(b, "* run: ngspice -b %s\n", "<this file>");
    sp_printf(b, ".include %smodel.cir\n", v->prefix);
    if (v->param)
        sp_puts(b, "* the condition: .param ptol (resistor tolerance), page "
                   "(mean ageing dR/R) and .temp\n.include drift_cond.cir\n");
    else
        sp_printf(b, ".temp %g\n", p->temp_c);
    sp_puts(b, "V_SEL sel 0 DC 0\n");
    for (int64_t k = 0; k < plan->n_in; k++) {
        snprintf(tok, sizeof tok, "B_DAC_%lld in_%lld 0 V = pwl(V(sel),",
                 (long long)k, (long long)k);
        wrap_start(&w, b, tok);
        for (uint32_t i = 0; i < n_samples; i++) {
            double x = volts[(size_t)i * (size_t)plan->n_in + (size_t)k];
            if (n_samples == 1) {
                snprintf(tok, sizeof tok, "-1, %.9g, 1, %.9g", x, x);
            } else {
                snprintf(tok, sizeof tok, "%s%.2f, %.9g, %.2f, %.9g",
                         i ? ", " : "", i - 0.25, x, i + 0.25, x);
            }
            wrap_tok(&w, tok);
        }
        wrap_tok(&w, ")");
        wrap_end(&w);
    }
    model_instance(b, plan);
    sp_puts(b, ".control\nset noaskquit\n");
    sp_printf(b, "dc V_SEL 0 %u 1\n", n_samples ? n_samples - 1 : 0);
    sp_puts(b, "set wr_singlescale\nset wr_vecnames\n");
    snprintf(tok, sizeof tok, "wrdata %s", results);
    wrap_start(&w, b, tok);
    w.nowrap = 1;
    for (int64_t m = 0; m < plan->n_out; m++) {
        snprintf(tok, sizeof tok, "v(out_%lld)", (long long)m);
        wrap_tok(&w, tok);
    }
    if (monitor)
        for (uint32_t l = 0; l < plan->n_layers; l++)
            for (int64_t i = 0; i < sp_monitor_count(plan, l); i++) {
                monitor_vec(tok, sizeof tok, plan, l, i);
                wrap_tok(&w, tok);
            }
    wrap_end(&w);
    sp_puts(b, "quit 0\n.endc\n.end\n");
}

/* ---- supply currents (power) -------------------------------------------- */
static void lower_str(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z') *s = (char)(*s - 'A' + 'a');
}

int64_t sp_net_supply_vecs(sp_buf *b, const sp_plan *plan, const sp_tech *t)
{
    const char *e = t->opamp_macro ? "e_o" : "e_1";
    char tg[32], tok[160];
    int64_t n = 0;
    for (uint32_t l = 0; l < plan->n_layers; l++) {
        const sp_layer *L = &plan->layers[l];
        const unsigned li = l + 1;
        const int64_t tiles_used = L->geom.tiles_r; /* = ceil((K+1)/rows) */
        for (int64_t m = 0; m < L->M; m++) {
            for (int64_t ti = 0; ti < tiles_used; ti++)
                for (int hh = 0; hh < 2; hh++) {
                    tile_tag(tg, sizeof tg, L, ti);
                    snprintf(tok, sizeof tok, " i(e.x_model.x_l%u.x_l%u_tia%s_c%lld%c.%s)",
                             li, li, tg, (long long)m, hh ? 'n' : 'p', e);
                    lower_str(tok);
                    sp_puts(b, tok);
                    n++;
                }
            snprintf(tok, sizeof tok, " i(e.x_model.x_l%u.x_l%u_dif_c%lld.%s)", li,
                     li, (long long)m, e);
            lower_str(tok);
            sp_puts(b, tok);
            n++;
            if (L->relu_node == SP_NONE) continue;
            if (t->relu_diode)
                snprintf(tok, sizeof tok, " i(e.x_model.x_l%u.x_l%u_relu_c%lld.%s)",
                         li, li, (long long)m, e);
            else
                snprintf(tok, sizeof tok, " i(b.x_model.x_l%u.b_l%u_relu_c%lld)", li,
                         li, (long long)m);
            lower_str(tok);
            sp_puts(b, tok);
            n++;
        }
    }
    return n;
}
