/*
 * spice_drift.c - drift analysis in ngspice and the drift predictor.
 *
 * For each Monte Carlo trial (board seeds seed .. seed+n-1) the plugin
 * writes a parametric copy of the circuit (drift_s<seed>_*.cir): every
 * resistor is {R0*(1+ptol*u)*(1+page*(1+spread*v))} with u, v seeded
 * draws in [-1, 1] and its drawn tc1, every op-amp its drawn offset. The
 * harness drift_s<seed>.cir includes drift_cond.cir, which sets .param
 * ptol (tolerance), page (mean ageing dR/R) and .temp. Each condition is
 * one ngspice run (one .dc sweep over the samples):
 *
 *   base       ptol = 0, 27 degC, new
 *   tolerance  ptol in {0.1 %, 1 %, 5 %, board}, 27 degC, new
 *   temperature  -40, 0, 85, 125 degC at the board tolerance, new
 *   age        1 h, 1 day, 1 year, 10 years at the board tolerance, 27 degC
 *
 * The predictor (predictor.json, evaluated by `crucible drift` in the
 * host) is, per trial, sample and output, in output units:
 *
 *   y = y_nom + a1 (p - pb) + a2 (p^2 - pb^2) + b1 dT + b2 dT^2 + b3 L(T)
 *       + c1 A + c2 A^2
 *
 * with L(T) the relative change of a diode's saturation current (the
 * rectifier diodes' leakage, which dominates above ~60 degC).
 *
 * y0 the base run, (a1, a2) fitted on the tolerance runs, (b1, b2) and
 * (c1, c2) on the temperature and age runs minus the nominal board run
 * (least squares through the origin); A = drift_ref (t / t_ref_h)^exponent.
 * docs/spice.md describes the model and its limits.
 */
#include "spice_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { AX_BASE, AX_TOL, AX_TEMP, AX_AGE };

static const double TOLS[] = {0.001, 0.01, 0.05};
static const double TEMPS[] = {-40, -20, 0, 50, 85, 105, 125};
static const double AGES_H[] = {1, 24, 8766, 87660};
#define T_NOM 27.0
#define MAX_CONDS 24

typedef struct dcond {
    int axis;
    double p, t_c, age_h, a; /* a: mean ageing dR/R */
} dcond;

/* PCM: the age variable is ln(t / t0) (0 before t0), the drift basis
 * exp(-r A) - 1 for these rates (one or two layers of nu ~ 0.05..0.1) */
static const double PCM_RATES[3] = {0.05, 0.1, 0.2};
static const double TOLS_PCM[] = {0.25, 0.5, 2.0};
static const double AGES_PCM_H[] = {1, 24, 168, 720, 8766, 87660};

static double age_frac(const sp_params *p, double hours)
{
    if (p->tech.pcm) {
        double r = hours * 3600.0 / p->tech.t0_s;
        return r > 1.0 ? log(r) : 0.0;
    }
    if (!(p->age_ref > 0) || !(hours > 0)) return 0;
    return p->age_ref * pow(hours / p->age_t_ref_h, p->age_exp);
}

static int put_file(const crucible_host *h, const crucible_verify_ctx *ctx,
                    const char *name, const sp_buf *b, int emit)
{
    char path[4096];
    (void)h;
    if (b->err) return CRUCIBLE_E_NOMEM;
    if (sp_path_join(path, sizeof path, ctx->workdir, name) ||
        sp_write_file(path, b->s ? b->s : "", b->len))
        return CRUCIBLE_E_IO;
    if (emit && ctx->sink && ctx->sink->emit)
        return ctx->sink->emit(ctx->sink->ctx, name, b->s ? b->s : "", b->len);
    return CRUCIBLE_OK;
}

/* One ngspice run in the work directory. */
int sp_run_ngspice(const crucible_host *h, const crucible_host_tools *tools,
                  const char *workdir, const char *deck, double timeout,
                  double *secs, char *msg, size_t n)
{
    const char *argv[] = {"ngspice", "-b", deck, NULL};
    crucible_tool_request req;
    crucible_tool_result res;
    memset(&req, 0, sizeof req);
    memset(&res, 0, sizeof res);
    req.hdr = (crucible_header)CRUCIBLE_HEADER(crucible_tool_request);
    res.hdr = (crucible_header)CRUCIBLE_HEADER(crucible_tool_result);
    req.argv = argv;
    req.cwd = workdir;
    req.timeout_s = timeout;
    req.debian_package = "ngspice";
    req.version_arg = NULL;
    int st = tools->run(h, &req, &res);
    *secs += res.seconds;
    if (st != CRUCIBLE_OK) {
        /* the last error-looking line of the output */
        const char *o = res.output ? res.output : "";
        const char *best = NULL;
        for (const char *q = o; (q = strstr(q, "rror")) != NULL; q++) best = q;
        if (best) {
            while (best > o && best[-1] != '\n') best--;
            size_t k = strcspn(best, "\n");
            snprintf(msg, n, "ngspice failed on %s (%s): %.*s", deck,
                     crucible_status_str(st), (int)(k < 300 ? k : 300), best);
        } else {
            snprintf(msg, n, "%s%s(%s)", st == CRUCIBLE_E_SKIPPED && *o ? o : "ngspice failed on ",
                     st == CRUCIBLE_E_SKIPPED && *o ? " " : deck,
                     crucible_status_str(st));
        }
    }
    tools->free_result(h, &res);
    return st;
}

/* Reads n rows of M outputs (volts) from a wrdata file into y (units). */
static int read_results(const crucible_host *h, const char *path, uint32_t n,
                        int64_t M, double s_out, double *y, char *msg,
                        size_t mn)
{
    size_t cap = 0;
    char *text = sp_read_text(h, path, &cap);
    if (!text) {
        snprintf(msg, mn, "ngspice wrote no %s", path);
        return -1;
    }
    const char *line = strchr(text, '\n');
    line = line ? line + 1 : text + strlen(text);
    int rc = 0;
    for (uint32_t i = 0; i < n && !rc; i++) {
        const char *q = line;
        double v;
        if (sp_next_num(&q, &v) || fabs(v - (double)i) > 0.3) rc = -1;
        for (int64_t m = 0; m < M && !rc; m++) {
            if (sp_next_num(&q, &v)) rc = -1;
            else y[(size_t)i * (size_t)M + (size_t)m] = v / s_out;
        }
        const char *e = strchr(q, '\n');
        line = e ? e + 1 : q + strlen(q);
    }
    if (rc) snprintf(msg, mn, "%s: fewer than %u rows of %lld outputs", path,
                     n, (long long)M);
    h->realloc(h, text, cap, 0);
    return rc;
}

typedef struct dmet {
    uint32_t top1;
    double max_err, drift_max, drift_rms;
} dmet;

typedef struct dctx {
    const sp_params *p;
    const sp_plan *plan;
    uint32_t n;
    int64_t M;
    double s_out, adc_lo, adc_hi;
    int soft;
    const double *ref; /* n * M, after the digital softmax if any */
} dctx;

static int64_t argmax(const double *y, int64_t n)
{
    int64_t b = 0;
    for (int64_t i = 1; i < n; i++)
        if (y[i] > y[b]) b = i;
    return b;
}

/* Metrics of outputs y (units, before the ADC) against the reference and
 * against the nominal outputs ynom. tmp holds M doubles. */
static void metrics(const dctx *d, const double *y, const double *ynom,
                    double *tmp, dmet *m)
{
    int64_t clip = 0;
    double ss = 0;
    memset(m, 0, sizeof *m);
    for (uint32_t i = 0; i < d->n; i++) {
        const double *yi = y + (size_t)i * (size_t)d->M;
        const double *ri = d->ref + (size_t)i * (size_t)d->M;
        for (int64_t k = 0; k < d->M; k++) {
            tmp[k] = sp_quantise(yi[k] * d->s_out, d->adc_lo, d->adc_hi,
                                 d->p->adc_bits, &clip) / d->s_out;
            if (ynom) {
                double dd = yi[k] - ynom[(size_t)i * (size_t)d->M + (size_t)k];
                m->drift_max = fmax(m->drift_max, fabs(dd));
                ss += dd * dd;
            }
        }
        if (d->soft) sp_softmax(tmp, d->M);
        for (int64_t k = 0; k < d->M; k++)
            m->max_err = fmax(m->max_err, fabs(tmp[k] - ri[k]));
        if (argmax(tmp, d->M) == argmax(ri, d->M)) m->top1++;
    }
    m->drift_rms = sqrt(ss / ((double)d->n * (double)d->M));
}

/* Least squares sum_q c_q X[i][q] = d through the origin, nb <= 3 basis
 * functions (Gaussian elimination on the normal equations; fewer points
 * than terms or a singular system fall back to fewer terms). */
static void fitp(const double (*X)[3], const double *dv, int k, int nb, double *c)
{
    for (int q = 0; q < 3; q++) c[q] = 0;
    if (nb > k) nb = k;
    while (nb > 0) {
        double A[3][4];
        memset(A, 0, sizeof A);
        for (int i = 0; i < k; i++)
            for (int r = 0; r < nb; r++) {
                for (int q = 0; q < nb; q++) A[r][q] += X[i][r] * X[i][q];
                A[r][nb] += X[i][r] * dv[i];
            }
        int ok = 1;
        for (int col = 0; col < nb && ok; col++) {
            int piv = col;
            for (int r = col + 1; r < nb; r++)
                if (fabs(A[r][col]) > fabs(A[piv][col])) piv = r;
            if (!(fabs(A[piv][col]) > 1e-300 * (1.0 + fabs(A[0][0])))) {
                ok = 0;
                break;
            }
            for (int q = 0; q <= nb; q++) {
                double t = A[col][q];
                A[col][q] = A[piv][q];
                A[piv][q] = t;
            }
            for (int r = 0; r < nb; r++) {
                if (r == col) continue;
                double f = A[r][col] / A[col][col];
                for (int q = col; q <= nb; q++) A[r][q] -= f * A[col][q];
            }
        }
        if (ok) {
            for (int q = 0; q < nb; q++) c[q] = A[q][nb] / A[q][q];
            return;
        }
        nb--;
    }
}

/* The temperature basis function for diode leakage: the relative change
 * of a diode's saturation current (SPICE: IS(T) = IS (T/Tn)^(XTI/N)
 * exp(EG/(N k/q) (1/Tn - 1/T)), EG = 1.11 eV, XTI = 3), minus 1. The
 * rectifier diodes' leakage grows like this and dominates the drift above
 * about 60 degC. */
#define DIODE_EG 1.11
#define DIODE_XTI 3.0
static double leak_basis(double t_c, double n)
{
    const double tn = T_NOM + 273.15, t = t_c + 273.15, kq = 8.617333262e-5;
    return pow(t / tn, DIODE_XTI / n) * exp(DIODE_EG / (n * kq) * (1.0 / tn - 1.0 / t)) - 1.0;
}

/* The age basis: resistors {A, A^2, 0}; PCM {exp(-r A) - 1} for
 * PCM_RATES. */
static void age_basis(int pcm, double a, double *x)
{
    if (pcm) {
        for (int i = 0; i < 3; i++) x[i] = exp(-PCM_RATES[i] * a) - 1.0;
    } else {
        x[0] = a, x[1] = a * a, x[2] = 0;
    }
}

/* ---- SVG -------------------------------------------------------------- */
static void svg_plot(sp_buf *b, const char *title, const char *xlabel,
                     const double *xs, const char *const *xnames, int nx,
                     int logx, const double *err, const double *top1_mean,
                     const double *top1_min, double fs_units)
{
    const double W = 640, H = 380, L = 70, R = 70, T = 40, B = 60;
    const double pw = W - L - R, ph = H - T - B;
    double xmin = 1e300, xmax = -1e300, emax = 0;
    for (int i = 0; i < nx; i++) {
        double x = logx ? log10(xs[i]) : xs[i];
        xmin = fmin(xmin, x), xmax = fmax(xmax, x);
        emax = fmax(emax, err[i]);
    }
    if (xmax <= xmin) xmax = xmin + 1;
    if (!(emax > 0)) emax = 1e-6;
    /* a round upper limit */
    double e10 = pow(10.0, floor(log10(emax)));
    double etop = ceil(emax / e10 * 1.05) * e10;
    double t1lo = 100;
    for (int i = 0; i < nx; i++) t1lo = fmin(t1lo, top1_min[i]);
    t1lo = fmin(90.0, floor(t1lo / 10.0) * 10.0);
#define PX(x) (L + ((logx ? log10(x) : (x)) - xmin) / (xmax - xmin) * pw)
#define PYE(e) (T + ph - (e) / etop * ph)
#define PYT(t) (T + ph - ((t) - t1lo) / (100.0 - t1lo) * ph)
    sp_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" "
                 "height=\"%g\" viewBox=\"0 0 %g %g\" font-family=\"sans-serif\" "
                 "font-size=\"12\">\n", W, H, W, H);
    sp_printf(b, "<rect width=\"%g\" height=\"%g\" fill=\"white\"/>\n", W, H);
    sp_printf(b, "<text x=\"%g\" y=\"22\" text-anchor=\"middle\" "
                 "font-size=\"14\">%s</text>\n", W / 2, title);
    sp_printf(b, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" "
                 "fill=\"none\" stroke=\"black\"/>\n", L, T, pw, ph);
    for (int k = 0; k <= 4; k++) {
        double e = etop * k / 4, t = t1lo + (100.0 - t1lo) * k / 4;
        double y = T + ph - ph * k / 4;
        sp_printf(b, "<line x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\" "
                     "stroke=\"#ddd\"/>\n", L, y, L + pw, y);
        sp_printf(b, "<text x=\"%g\" y=\"%.1f\" text-anchor=\"end\" "
                     "fill=\"#c03\">%.3g</text>\n", L - 6, y + 4, e);
        sp_printf(b, "<text x=\"%g\" y=\"%.1f\" fill=\"#036\">%.4g%%</text>\n",
                  L + pw + 6, y + 4, t);
    }
    for (int i = 0; i < nx; i++) {
        double x = PX(xs[i]);
        sp_printf(b, "<text x=\"%.1f\" y=\"%g\" text-anchor=\"middle\">%s"
                     "</text>\n", x, T + ph + 18, xnames[i]);
    }
    sp_printf(b, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">%s</text>\n",
              L + pw / 2, H - 14, xlabel);
    sp_printf(b, "<text transform=\"translate(16,%g) rotate(-90)\" "
                 "text-anchor=\"middle\" fill=\"#c03\">max |error| vs float "
                 "reference (full scale %.4g)</text>\n", T + ph / 2, fs_units);
    sp_printf(b, "<text transform=\"translate(%g,%g) rotate(90)\" "
                 "text-anchor=\"middle\" fill=\"#036\">top-1 agreement "
                 "(mean; dashed: worst trial)</text>\n", W - 12, T + ph / 2);
    const double *ser[3] = {err, top1_mean, top1_min};
    const char *col[3] = {"#c03", "#036", "#036"};
    for (int s = 0; s < 3; s++) {
        sp_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s "
                     "points=\"", col[s], s == 2 ? " stroke-dasharray=\"5,4\"" : "");
        for (int i = 0; i < nx; i++)
            sp_printf(b, "%.1f,%.1f ", PX(xs[i]),
                      s ? PYT(ser[s][i]) : PYE(ser[s][i]));
        sp_puts(b, "\"/>\n");
        for (int i = 0; s < 2 && i < nx; i++)
            sp_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n",
                      PX(xs[i]), s ? PYT(ser[s][i]) : PYE(ser[s][i]), col[s]);
    }
    sp_puts(b, "</svg>\n");
#undef PX
#undef PYE
#undef PYT
}

static void json_arr(sp_buf *b, const double *v, size_t n)
{
    sp_puts(b, "[");
    for (size_t i = 0; i < n; i++) {
        if (i) sp_puts(b, ",");
        if (isfinite(v[i])) sp_printf(b, "%.7g", v[i]);
        else sp_puts(b, "null");
    }
    sp_puts(b, "]");
}

static void cond_name(char *buf, size_t n, const dcond *c, int pcm)
{
    switch (c->axis) {
    case AX_BASE:
        snprintf(buf, n, pcm ? "no programming noise, 27 degC" : "tolerance 0, 27 degC, new");
        break;
    case AX_TOL:
        if (pcm) snprintf(buf, n, "programming noise x%g", c->p);
        else snprintf(buf, n, "tolerance %g%%", 100.0 * c->p);
        break;
    case AX_TEMP: snprintf(buf, n, "%g degC", c->t_c); break;
    default:
        if (c->age_h < 24) snprintf(buf, n, "%g h", c->age_h);
        else if (c->age_h < 8766) snprintf(buf, n, "%g days", c->age_h / 24);
        else snprintf(buf, n, "%g years", c->age_h / 8766);
        if (!strcmp(buf, "1 days")) snprintf(buf, n, "1 day");
        if (!strcmp(buf, "1 years")) snprintf(buf, n, "1 year");
        break;
    }
}

/* ---- the analysis ----------------------------------------------------- */
typedef struct dwork {
    const crucible_host *h;
    double *Y, *ref, *tmp, *coef;
    size_t nY, nref, ntmp, ncoef;
    sp_real *real;
    size_t nreal;
} dwork;

static void dwork_free(dwork *w)
{
    sp_free(w->h, w->Y, w->nY, sizeof(double));
    sp_free(w->h, w->ref, w->nref, sizeof(double));
    sp_free(w->h, w->tmp, w->ntmp, sizeof(double));
    sp_free(w->h, w->coef, w->ncoef, sizeof(double));
    sp_free(w->h, w->real, w->nreal, sizeof(sp_real));
}

static int write_seed_netlists(const crucible_host *h,
                               const crucible_verify_ctx *ctx,
                               const sp_params *p, const sp_plan *plan,
                               const sp_variant *v, const sp_real *real,
                               const double *volts, uint32_t n,
                               const char *deck, const char *results)
{
    char name[192];
    sp_buf b;
    int rc;
    sp_buf_init(&b, h);
    sp_net_lib(&b, plan, p, v);
    snprintf(name, sizeof name, "%slib.cir", v->prefix);
    rc = put_file(h, ctx, name, &b, 1);
    for (uint32_t l = 0; !rc && l < plan->n_layers; l++) {
        sp_buf_free(&b);
        sp_buf_init(&b, h);
        sp_net_layer(&b, plan, p, v, real, l);
        sp_layer_file(plan, l, v->prefix, name, sizeof name);
        rc = put_file(h, ctx, name, &b, 1);
    }
    if (!rc) {
        sp_buf_free(&b);
        sp_buf_init(&b, h);
        sp_net_model(&b, plan, p, v, real);
        snprintf(name, sizeof name, "%smodel.cir", v->prefix);
        rc = put_file(h, ctx, name, &b, 1);
    }
    if (!rc) {
        sp_buf_free(&b);
        sp_buf_init(&b, h);
        sp_net_harness(&b, plan, p, v, real, volts, n, results, 0);
        rc = put_file(h, ctx, deck, &b, 1);
    }
    sp_buf_free(&b);
    return rc;
}

static int write_cond(const crucible_host *h, const crucible_verify_ctx *ctx,
                      const dcond *c, int emit, int pcm)
{
    sp_buf b;
    char nm[64];
    sp_buf_init(&b, h);
    cond_name(nm, sizeof nm, c, pcm);
    sp_printf(&b, "* crucible spice: drift condition (%s)\n%s"
                  ".param ptol=%.9g page=%.9g\n.temp %.6g\n",
              nm,
              pcm ? "* ptol: PCM programming noise scale (1 = the device "
                    "model); page: ln(t / t0), the PCM drift time\n"
                  : "* ptol: resistor tolerance (each resistor R0*(1+ptol*u), "
                    "u drawn in [-1, 1]); page: mean ageing dR/R\n",
              c->p, c->a, c->t_c);
    int rc = put_file(h, ctx, "drift_cond.cir", &b, emit);
    sp_buf_free(&b);
    return rc;
}

int sp_drift(const crucible_host *h, const crucible_verify_ctx *ctx,
             const crucible_host_tools *tools, const sp_params *p,
             const sp_plan *plan, const double *volts, uint32_t n_avail,
             sp_buf *json, sp_buf *txt)
{
    char msg[1024], deck[96], results[96], path[4096];
    dcond conds[MAX_CONDS];
    int nc = 0, rc = CRUCIBLE_OK;
    uint32_t n = n_avail;
    if (p->drift_samples <= 0 || n == 0) return CRUCIBLE_OK;
    if (n > (uint32_t)p->drift_samples) n = (uint32_t)p->drift_samples;
    const int64_t M = plan->n_out;
    int S = p->drift_seeds;
    const int pcm = p->tech.pcm;
    const double pb = pcm ? p->tech.prog_scale : p->tech.tol;
    const int ageing = pcm || p->age_ref > 0;
    const double *tols = pcm ? TOLS_PCM : TOLS;
    const size_t n_tols = pcm ? sizeof TOLS_PCM / sizeof TOLS_PCM[0] : sizeof TOLS / sizeof TOLS[0];
    const double *ages = pcm ? AGES_PCM_H : AGES_H;
    const size_t n_ages = pcm ? sizeof AGES_PCM_H / sizeof AGES_PCM_H[0] : sizeof AGES_H / sizeof AGES_H[0];

    /* the conditions */
    conds[nc++] = (dcond){AX_BASE, 0, T_NOM, 0, 0};
    int inom = 0, has_pb = pb == 0;
    for (size_t i = 0; i < n_tols; i++) {
        if (!has_pb && pb < tols[i]) {
            inom = nc;
            conds[nc++] = (dcond){AX_TOL, pb, T_NOM, 0, 0};
            has_pb = 1;
        }
        if (fabs(tols[i] - pb) < 1e-12) inom = nc, has_pb = 1;
        conds[nc++] = (dcond){AX_TOL, tols[i], T_NOM, 0, 0};
    }
    if (!has_pb) inom = nc, conds[nc++] = (dcond){AX_TOL, pb, T_NOM, 0, 0};
    /* ideal op-amps and limiters and TCR 0: nothing depends on .temp */
    const int thermal = p->tech.tcr_ppm > 0 || p->tech.opamp_macro || p->tech.relu_diode;
    for (size_t i = 0; thermal && i < sizeof TEMPS / sizeof TEMPS[0]; i++)
        conds[nc++] = (dcond){AX_TEMP, pb, TEMPS[i], 0, 0};
    for (size_t i = 0; ageing && i < n_ages; i++)
        conds[nc++] = (dcond){AX_AGE, pb, T_NOM, ages[i], age_frac(p, ages[i])};

    /* the time budget: fewer trials, then fewer samples */
    char budget_note[256] = "";
    if (p->drift_budget_s > 0) {
        sp_real *rr = sp_calloc(h, plan->n_layers, sizeof(sp_real));
        if (!rr) return CRUCIBLE_E_NOMEM;
        sp_realise(plan, p, &p->tech, rr);
        double tr = 0, to = 0;
        for (uint32_t l = 0; l < plan->n_layers; l++)
            tr += (double)rr[l].counts.resistors, to += (double)rr[l].counts.opamps;
        const double per = sp_sim_seconds(tr, to, p->tech.opamp_macro);
        sp_free(h, rr, plan->n_layers, sizeof(sp_real));
        /* a run also parses and sets up the circuit: ~4 samples' worth */
        const double est = (double)S * nc * per * (n + 4.0);
        if (est > p->drift_budget_s) {
            const int S0 = S;
            const uint32_t n0 = n;
            S = 1;
            double cap = p->drift_budget_s / (nc * per) - 4.0;
            if ((double)n > cap) n = cap < 2 ? 2 : (uint32_t)cap;
            snprintf(budget_note, sizeof budget_note, "estimated %.0f s of "
                     "ngspice for %d trials x %u samples exceeds [drift] "
                     "budget_s = %g s: %d trial(s) x %u samples", est, S0, n0,
                     p->drift_budget_s, S, n);
            h->log(h, CRUCIBLE_LOG_WARN, "drift analysis: %s", budget_note);
        }
    }

    dwork w;
    memset(&w, 0, sizeof w);
    w.h = h;
    const size_t NM = (size_t)n * (size_t)M;
    w.nY = (size_t)S * (size_t)nc * NM;
    w.nref = NM;
    w.ntmp = (size_t)M + 1;
    w.ncoef = 8 * NM;
    w.nreal = plan->n_layers;
    w.Y = sp_calloc(h, w.nY, sizeof(double));
    w.ref = sp_calloc(h, w.nref, sizeof(double));
    w.tmp = sp_calloc(h, w.ntmp, sizeof(double));
    w.coef = sp_calloc(h, w.ncoef, sizeof(double));
    w.real = sp_calloc(h, w.nreal, sizeof(sp_real));
    if (!w.Y || !w.ref || !w.tmp || !w.coef || !w.real) {
        dwork_free(&w);
        return CRUCIBLE_E_NOMEM;
    }
    sp_realise(plan, p, &p->tech, w.real);
    dctx d;
    memset(&d, 0, sizeof d);
    d.p = p;
    d.plan = plan;
    d.n = n;
    d.M = M;
    d.s_out = w.real[plan->n_layers - 1].s_out;
    d.adc_lo = plan->out_relu ? 0.0 : -p->v_fs;
    d.adc_hi = p->v_fs;
    d.soft = plan->softmax_node != SP_NONE;
    d.ref = w.ref;
    for (uint32_t i = 0; i < n; i++) {
        const float *r = ctx->samples[i]->outputs[0]->data;
        for (int64_t k = 0; k < M; k++) w.ref[(size_t)i * (size_t)M + (size_t)k] = r[k];
    }
    const double fs_units = d.soft ? 1.0 : p->v_fs / d.s_out;

    /* ngspice runs */
    double est = 0, secs = 0;
    for (uint32_t l = 0; l < plan->n_layers; l++)
        est += sp_sim_seconds((double)w.real[l].counts.resistors,
                              (double)w.real[l].counts.opamps, p->tech.opamp_macro);
    double timeout = 60.0 + 20.0 * est * n;
    if (timeout > p->sim_timeout_s) timeout = p->sim_timeout_s;
    const crucible_host_progress *prog =
        h->get_extension ? h->get_extension(h, CRUCIBLE_EXT_PROGRESS) : NULL;
    int verdict = CRUCIBLE_VERDICT_PASS, runs = 0;
    msg[0] = 0;
    for (int s = 0; s < S && verdict == CRUCIBLE_VERDICT_PASS && !rc; s++) {
        sp_variant v;
        memset(&v, 0, sizeof v);
        char prefix[48];
        const uint64_t seed = p->seed + (uint64_t)s;
        snprintf(prefix, sizeof prefix, "drift_s%llu_", (unsigned long long)seed);
        v.label = "drift (parametric)";
        v.prefix = prefix;
        v.tech = p->tech;
        v.draw = 1;
        v.seed = seed;
        v.param = 1;
        v.age_spread = p->age_spread;
        snprintf(deck, sizeof deck, "drift_s%llu.cir", (unsigned long long)seed);
        snprintf(results, sizeof results, "drift_s%llu_out.txt", (unsigned long long)seed);
        if ((rc = write_seed_netlists(h, ctx, p, plan, &v, w.real, volts, n,
                                      deck, results))) {
            snprintf(msg, sizeof msg, "cannot write the drift netlists (%s)",
                     crucible_status_str(rc));
            verdict = CRUCIBLE_VERDICT_FAIL;
            rc = CRUCIBLE_OK;
            break;
        }
        if (sp_path_join(path, sizeof path, ctx->workdir, results)) {
            verdict = CRUCIBLE_VERDICT_FAIL;
            snprintf(msg, sizeof msg, "work directory path too long");
            break;
        }
        for (int c = 0; c < nc; c++) {
            if (prog && prog->report) {
                char step[128];
                snprintf(step, sizeof step, "drift analysis in ngspice (trial "
                         "%d of %d)", s + 1, S);
                prog->report(h, step, (double)(s * nc + c) / (double)(S * nc));
            }
            if ((rc = write_cond(h, ctx, &conds[c], 0, pcm))) {
                snprintf(msg, sizeof msg, "cannot write drift_cond.cir");
                verdict = CRUCIBLE_VERDICT_FAIL;
                rc = CRUCIBLE_OK;
                break;
            }
            remove(path);
            int st = sp_run_ngspice(h, tools, ctx->workdir, deck, timeout, &secs, msg,
                            sizeof msg);
            if (st == CRUCIBLE_E_SKIPPED) {
                verdict = CRUCIBLE_VERDICT_SKIPPED;
                break;
            }
            runs++;
            double *y = w.Y + ((size_t)s * (size_t)nc + (size_t)c) * NM;
            if (st != CRUCIBLE_OK ||
                read_results(h, path, n, M, d.s_out, y, msg, sizeof msg)) {
                verdict = CRUCIBLE_VERDICT_FAIL;
                break;
            }
        }
        remove(path);
    }
    if (prog && prog->report) prog->report(h, "drift analysis in ngspice", 1.0);
    /* the package's drift_cond.cir: the nominal board condition */
    if (verdict == CRUCIBLE_VERDICT_PASS && !rc) {
        if ((rc = write_cond(h, ctx, &conds[inom], 1, pcm))) {
            dwork_free(&w);
            return rc;
        }
    }
    if (verdict != CRUCIBLE_VERDICT_PASS || rc) {
        if (!rc)
            ctx->report(ctx->ctx, "drift-analysis", "ngspice", verdict, msg, NULL);
        sp_puts(json, "null");
        dwork_free(&w);
        return rc;
    }

    /* metrics per trial and condition */
    dmet met[MAX_CONDS];
    double t1mean[MAX_CONDS], t1min[MAX_CONDS], emax[MAX_CONDS], dmax[MAX_CONDS];
    for (int c = 0; c < nc; c++) {
        t1mean[c] = 0, t1min[c] = 1e300, emax[c] = 0, dmax[c] = 0;
        for (int s = 0; s < S; s++) {
            const double *ys = w.Y + (size_t)s * (size_t)nc * NM;
            metrics(&d, ys + (size_t)c * NM, ys + (size_t)inom * NM, w.tmp, &met[c]);
            double t1 = 100.0 * met[c].top1 / n;
            t1mean[c] += t1 / S;
            t1min[c] = fmin(t1min[c], t1);
            emax[c] = fmax(emax[c], met[c].max_err);
            dmax[c] = fmax(dmax[c], met[c].drift_max);
        }
    }

    /* predictor: fit per trial */
    const double dn = p->tech.relu_diode ? p->tech.d_n : 1.0;
    sp_buf pj;
    sp_buf_init(&pj, h);
    sp_printf(&pj, "{\"format\":\"crucible-drift-predictor\",\"format_version\":1,"
                   "\"target\":\"%s\",\"target_version\":\"%s\",\"board\":",
              SPICE_ID, SPICE_VERSION);
    sp_json_str(&pj, p->board_name);
    sp_puts(&pj, ",\"model\":\"y = y_nominal + a1*(p - pb) + a2*(p^2 - pb^2) + "
                 "b1*dT + b2*dT^2 + b3*L(T) + c1*f1(A) + c2*f2(A) + c3*f3(A) per trial, "
                 "sample and output (output units, before the ADC); p the "
                 "tolerance (tolerance_kind), pb = tolerance_board, dT = T - "
                 "t_nom_c; age_law resistor_power: A = ageing.drift_ref * "
                 "(hours / ageing.t_ref_h)^ageing.exponent (0 without ageing), "
                 "f = (A, A^2, 0); age_law pcm: A = ln(max(hours*3600/t0_s, 1)), "
                 "f_i = exp(-age_rates[i]*A) - 1; "
                 "L(T) = (T/Tn)^(xti/n) * exp(eg/(n*k/q) * (1/Tn - 1/T)) - 1 in kelvin "
                 "(diode leakage, temp_basis); y0 = the run at p = 0\",\"t_nom_c\":27,\"tolerance_board\":");
    sp_json_num(&pj, pb);
    sp_puts(&pj, ",\"ageing\":{\"drift_ref\":");
    sp_json_num(&pj, p->age_ref);
    sp_puts(&pj, ",\"t_ref_h\":");
    sp_json_num(&pj, p->age_t_ref_h);
    sp_puts(&pj, ",\"exponent\":");
    sp_json_num(&pj, p->age_exp);
    sp_puts(&pj, ",\"spread\":");
    sp_json_num(&pj, p->age_spread);
    sp_printf(&pj, "},\"tolerance_kind\":\"%s\",\"age_law\":\"%s\",\"t0_s\":",
              pcm ? "pcm_programming_noise_scale" : "resistor",
              pcm ? "pcm" : "resistor_power");
    sp_json_num(&pj, pcm ? p->tech.t0_s : 20.0);
    sp_printf(&pj, ",\"age_rates\":[%g,%g,%g]", PCM_RATES[0], PCM_RATES[1],
              PCM_RATES[2]);
    sp_puts(&pj, ",\"temp_basis\":{\"n\":");
    sp_json_num(&pj, dn);
    sp_printf(&pj, ",\"eg\":%g,\"xti\":%g}", DIODE_EG, DIODE_XTI);
    sp_puts(&pj, ",\"trained\":{\"tolerances\":[");
    int first = 1;
    for (int c = 0; c < nc; c++)
        if (conds[c].axis == AX_TOL) {
            sp_printf(&pj, "%s%.6g", first ? "" : ",", conds[c].p);
            first = 0;
        }
    sp_puts(&pj, "],\"temps_c\":[");
    first = 1;
    for (int c = 0; c < nc; c++)
        if (conds[c].axis == AX_TEMP) {
            sp_printf(&pj, "%s%.6g", first ? "" : ",", conds[c].t_c);
            first = 0;
        }
    sp_puts(&pj, "],\"ages_h\":[");
    first = 1;
    for (int c = 0; c < nc; c++)
        if (conds[c].axis == AX_AGE) {
            sp_printf(&pj, "%s%.6g", first ? "" : ",", conds[c].age_h);
            first = 0;
        }
    sp_printf(&pj, "]},\"samples\":%u,\"outputs\":%lld,\"softmax\":%s,"
                   "\"adc\":{\"bits\":%d,\"lo_v\":",
              n, (long long)M, d.soft ? "true" : "false", p->adc_bits);
    sp_json_num(&pj, d.adc_lo);
    sp_puts(&pj, ",\"hi_v\":");
    sp_json_num(&pj, d.adc_hi);
    sp_puts(&pj, "},\"volts_per_unit\":");
    sp_json_num(&pj, d.s_out);
    sp_puts(&pj, ",\"output_fullscale\":");
    sp_json_num(&pj, fs_units);
    sp_puts(&pj, ",\"ngspice_seconds_per_run\":");
    sp_json_num(&pj, runs ? secs / runs : NAN);
    sp_puts(&pj, ",\"reference\":");
    json_arr(&pj, w.ref, NM);
    sp_puts(&pj, ",\"trials\":[");
    double fit_res = 0, drift_all = 0;
    for (int s = 0; s < S; s++) {
        const double *ys = w.Y + (size_t)s * (size_t)nc * NM;
        const double *y0 = ys;
        const double *yn = ys + (size_t)inom * NM;
        double *a1 = w.coef, *a2 = a1 + NM, *b1 = a2 + NM, *b2 = b1 + NM,
               *b3 = b2 + NM, *c1 = b3 + NM, *c2 = c1 + NM, *c3 = c2 + NM;
        for (size_t j = 0; j < NM; j++) {
            double X[MAX_CONDS][3], dv[MAX_CONDS], cf[3];
            int k = 0;
            for (int c = 0; c < nc; c++)
                if (conds[c].axis == AX_TOL) {
                    X[k][0] = conds[c].p, X[k][1] = conds[c].p * conds[c].p, X[k][2] = 0;
                    dv[k++] = ys[(size_t)c * NM + j] - y0[j];
                }
            fitp((const double(*)[3])X, dv, k, 2, cf);
            a1[j] = cf[0], a2[j] = cf[1];
            k = 0;
            for (int c = 0; c < nc; c++)
                if (conds[c].axis == AX_TEMP) {
                    double dt = conds[c].t_c - T_NOM;
                    X[k][0] = dt, X[k][1] = dt * dt, X[k][2] = leak_basis(conds[c].t_c, dn);
                    dv[k++] = ys[(size_t)c * NM + j] - yn[j];
                }
            fitp((const double(*)[3])X, dv, k, 3, cf);
            b1[j] = cf[0], b2[j] = cf[1], b3[j] = cf[2];
            k = 0;
            for (int c = 0; c < nc; c++)
                if (conds[c].axis == AX_AGE) {
                    age_basis(pcm, conds[c].a, X[k]);
                    dv[k++] = ys[(size_t)c * NM + j] - yn[j];
                }
            fitp((const double(*)[3])X, dv, k, pcm ? 3 : 2, cf);
            c1[j] = cf[0], c2[j] = cf[1], c3[j] = cf[2];
            /* residual on the training runs */
            for (int c = 0; c < nc; c++) {
                const dcond *q = &conds[c];
                double dt = q->t_c - T_NOM;
                double pr = yn[j] + a1[j] * (q->p - pb) +
                            a2[j] * (q->p * q->p - pb * pb) +
                            b1[j] * dt + b2[j] * dt * dt +
                            b3[j] * leak_basis(q->t_c, dn);
                double ab[3];
                age_basis(pcm, q->a, ab);
                pr += c1[j] * ab[0] + c2[j] * ab[1] + c3[j] * ab[2];
                fit_res = fmax(fit_res, fabs(pr - ys[(size_t)c * NM + j]));
                drift_all = fmax(drift_all, fabs(ys[(size_t)c * NM + j] - yn[j]));
            }
        }
        sp_printf(&pj, "%s{\"seed\":%llu,\"deck\":\"drift_s%llu.cir\","
                       "\"results\":\"drift_s%llu_out.txt\",\"y0\":",
                  s ? "," : "", (unsigned long long)(p->seed + (uint64_t)s),
                  (unsigned long long)(p->seed + (uint64_t)s),
                  (unsigned long long)(p->seed + (uint64_t)s));
        json_arr(&pj, y0, NM);
        sp_puts(&pj, ",\"y_nominal\":");
        json_arr(&pj, yn, NM);
        static const char *const cn[8] = {"a1", "a2", "b1", "b2", "b3", "c1", "c2", "c3"};
        for (int q = 0; q < 8; q++) {
            sp_printf(&pj, ",\"%s\":", cn[q]);
            json_arr(&pj, w.coef + (size_t)q * NM, NM);
        }
        sp_puts(&pj, "}");
    }
    sp_puts(&pj, "],\"fit_max_residual\":");
    sp_json_num(&pj, fit_res);
    sp_puts(&pj, ",\"training_max_drift\":");
    sp_json_num(&pj, drift_all);
    sp_puts(&pj, "}\n");
    rc = put_file(h, ctx, "predictor.json", &pj, 1);
    sp_buf_free(&pj);

    /* tables */
    char nm[64];
    if (budget_note[0]) sp_printf(txt, "\nnote: %s\n", budget_note);
    sp_printf(txt, "\ndrift analysis in ngspice: %u samples, %d trial%s (board "
                   "seeds %llu..%llu), %d ngspice runs in %.1f s (%.2f s per "
                   "run)\n", n, S, S > 1 ? "s" : "", (unsigned long long)p->seed,
              (unsigned long long)(p->seed + (uint64_t)S - 1), runs, secs,
              runs ? secs / runs : 0.0);
    if (pcm)
        sp_printf(txt, "crossbar: PCM devices (g_max %g uS; programming noise x%g "
                       "of the model; drift g(t) = g_prog (t / %g s)^-nu, no "
                       "drift compensation); periphery resistors: tolerance "
                       "%g%%, TCR +-%g ppm/degC, no ageing\n", p->tech.g_max * 1e6,
                  pb, p->tech.t0_s, 100.0 * p->tech.tol, p->tech.tcr_ppm);
    else
        sp_printf(txt, "resistors: tolerance %g%% (uniform), TCR +-%g ppm/degC; "
                       "ageing ", 100.0 * pb, p->tech.tcr_ppm);
    if (pcm)
        ;
    else if (ageing)
        sp_printf(txt, "dR/R = %g%% * (t / %g h)^%g, times 1 +- %g per "
                       "resistor\n", 100.0 * p->age_ref, p->age_t_ref_h,
                  p->age_exp, p->age_spread);
    else
        sp_puts(txt, "none on this board ([ageing] drift_ref = 0)\n");
    sp_printf(txt, "nominal: board tolerance, 27 degC, new; error vs the float "
                   "reference after the ADC (output full scale %.4g); drift = "
                   "change of the analog outputs vs nominal\n\n", fs_units);
    sp_printf(txt, "%-12s %-32s %-22s %-14s %s\n", "axis", "condition",
              "top-1 mean (worst)", "max |error|", "max drift");
    sp_puts(json, "{\"samples\":");
    sp_printf(json, "%u,\"trials\":%d,\"seeds\":[", n, S);
    for (int s = 0; s < S; s++)
        sp_printf(json, "%s%llu", s ? "," : "", (unsigned long long)(p->seed + (uint64_t)s));
    sp_puts(json, "],\"ngspice_runs\":");
    sp_printf(json, "%d,\"ngspice_seconds\":", runs);
    sp_json_num(json, secs);
    sp_puts(json, ",\"output_fullscale\":");
    sp_json_num(json, fs_units);
    sp_puts(json, ",\"predictor_fit_max_residual\":");
    sp_json_num(json, fit_res);
    sp_puts(json, ",\"conditions\":[");
    static const char *const axn[] = {"base", "tolerance", "temperature", "age"};
    for (int c = 0; c < nc; c++) {
        char t1[48];
        cond_name(nm, sizeof nm, &conds[c], p->tech.pcm);
        if (c == inom) snprintf(nm + strlen(nm), sizeof nm - strlen(nm), " (nominal)");
        snprintf(t1, sizeof t1, "%.2f%% (%.2f%%)", t1mean[c], t1min[c]);
        sp_printf(txt, "%-12s %-32s %-22s %-14.4g %.4g\n", axn[conds[c].axis],
                  nm, t1, emax[c], dmax[c]);
        sp_printf(json, "%s{\"axis\":\"%s\",\"tolerance\":", c ? "," : "",
                  axn[conds[c].axis]);
        sp_json_num(json, conds[c].p);
        sp_puts(json, ",\"temp_c\":");
        sp_json_num(json, conds[c].t_c);
        sp_puts(json, ",\"age_h\":");
        sp_json_num(json, conds[c].age_h);
        sp_puts(json, ",\"age_drift\":");
        sp_json_num(json, conds[c].a);
        sp_puts(json, ",\"top1_mean\":");
        sp_json_num(json, t1mean[c] / 100.0);
        sp_puts(json, ",\"top1_worst\":");
        sp_json_num(json, t1min[c] / 100.0);
        sp_puts(json, ",\"max_abs_err\":");
        sp_json_num(json, emax[c]);
        sp_puts(json, ",\"max_drift\":");
        sp_json_num(json, dmax[c]);
        sp_puts(json, "}");
    }
    sp_puts(json, "]}");
    sp_printf(txt, "\npredictor (predictor.json): max |residual| on its "
                   "training runs %.3g (largest drift %.3g); query it with "
                   "`crucible drift PKG --temp C --age DURATION`\n",
              fit_res, drift_all);

    /* plots */
    for (int ax = AX_TOL; !rc && ax <= AX_AGE; ax++) {
        double xs[MAX_CONDS], e[MAX_CONDS], tm[MAX_CONDS], tn[MAX_CONDS];
        char names[MAX_CONDS][24];
        const char *np[MAX_CONDS];
        int k = 0;
        for (int c = 0; c < nc; c++) {
            int use = conds[c].axis == ax;
            if (ax == AX_TEMP && c == inom) use = 1; /* 27 degC */
            if (ax == AX_AGE && c == inom) use = 0;
            if (!use) continue;
            xs[k] = ax == AX_TOL ? 100.0 * conds[c].p
                    : ax == AX_TEMP ? conds[c].t_c : conds[c].age_h;
            if (ax == AX_TOL) snprintf(names[k], sizeof names[k], "%g%%", xs[k]);
            else if (ax == AX_TEMP) snprintf(names[k], sizeof names[k], "%g", xs[k]);
            else cond_name(names[k], sizeof names[k], &conds[c], p->tech.pcm);
            np[k] = names[k];
            e[k] = emax[c], tm[k] = t1mean[c], tn[k] = t1min[c];
            k++;
        }
        if (ax == AX_TEMP) { /* sort by temperature (27 degC is first) */
            for (int i = 1; i < k; i++)
                for (int j = i; j > 0 && xs[j] < xs[j - 1]; j--) {
                    double t;
                    const char *tp;
                    t = xs[j], xs[j] = xs[j - 1], xs[j - 1] = t;
                    t = e[j], e[j] = e[j - 1], e[j - 1] = t;
                    t = tm[j], tm[j] = tm[j - 1], tm[j - 1] = t;
                    t = tn[j], tn[j] = tn[j - 1], tn[j - 1] = t;
                    tp = np[j], np[j] = np[j - 1], np[j - 1] = tp;
                }
        }
        if (k < 2) continue;
        sp_buf sv;
        sp_buf_init(&sv, h);
        char title[160];
        snprintf(title, sizeof title, "%s (board %s, %u samples, %d trial%s, "
                 "ngspice)", ax == AX_TOL ? "Resistor tolerance (Monte Carlo)"
                 : ax == AX_TEMP ? "Temperature" : "Ageing",
                 p->board_name, n, S, S > 1 ? "s" : "");
        svg_plot(&sv, title,
                 ax == AX_TOL ? "resistor tolerance (log scale)"
                 : ax == AX_TEMP ? "temperature, degC" : "age (log scale)",
                 xs, np, k, ax != AX_TEMP, e, tm, tn, fs_units);
        rc = put_file(h, ctx, ax == AX_TOL ? "drift_tolerance.svg"
                              : ax == AX_TEMP ? "drift_temperature.svg"
                                              : "drift_age.svg", &sv, 1);
        sp_buf_free(&sv);
    }
    if (!rc) {
        int worst = 0;
        for (int c = 1; c < nc; c++)
            if (t1min[c] < t1min[worst]) worst = c;
        cond_name(nm, sizeof nm, &conds[worst], p->tech.pcm);
        double emx = 0;
        for (int c = 0; c < nc; c++) emx = fmax(emx, emax[c]);
        char w1[160];
        if (t1min[worst] < 100.0)
            snprintf(w1, sizeof w1, "worst top-1 agreement %.2f%% (%s)",
                     t1min[worst], nm);
        else
            snprintf(w1, sizeof w1, "top-1 agreement 100%% at every condition");
        snprintf(msg, sizeof msg, "%d ngspice runs (%.1f s) on %u samples x %d "
                 "trial%s: %s, max |error| up to %.4g, drift up to %.4g; "
                 "predictor fitted (max residual %.3g); tables in report.txt, "
                 "plots drift_*.svg", runs, secs, n, S, S > 1 ? "s" : "", w1,
                 emx, drift_all, fit_res);
        ctx->report(ctx->ctx, "drift-analysis", "ngspice", CRUCIBLE_VERDICT_PASS,
                    msg, NULL);
    }
    dwork_free(&w);
    return rc;
}
