/*
 * drift.c - `crucible drift PKG [--temp C] [--age DURATION] [--tolerance P]
 * [--seed S] [--json] [--verify]`: output error and top-1 agreement of an
 * analog package under temperature, ageing and component tolerance,
 * answered by the drift predictor stored in the package
 * (targets/spice/predictor.json) without running SPICE; --verify also runs
 * ngspice on the same condition with the package's parametric netlists
 * and reports the predictor's error. See docs/cli/drift.md.
 *
 * The host does not link the spice plugin: predictor.json is
 * self-describing (format "crucible-drift-predictor" version 1, documented
 * in docs/spice.md), and the check re-runs the package's own deck
 * (drift_s<seed>.cir, which includes drift_cond.cir: .param ptol, page and
 * .temp, rewritten here).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"
#include "loader.h"
#include "package.h"

int cmd_drift(cli *c, int argc, char **argv);

static const char *const DRIFT_HELP =
    "usage: crucible drift PKG [--temp C] [--age DURATION] [--tolerance P]\n"
    "                      [--seed S] [--verify [--max-error P]] [--json]\n"
    "\n"
    "Predicts how an analog (spice target) package's outputs drift with\n"
    "temperature, age and resistor tolerance, from the drift predictor the\n"
    "compiler trained on ngspice runs of the circuit (predictor.json in the\n"
    "package), without running SPICE: top-1 agreement with the float\n"
    "reference and max |error| on the package's drift samples, and the drift\n"
    "of the analog outputs against the nominal board (its tolerance, 27 degC,\n"
    "new), per output.\n"
    "\n"
    "  --temp C         temperature in degC (default 27)\n"
    "  --age DURATION   age: a number and a unit s, min, h, d, w or y\n"
    "                   (e.g. 1h, 3d, 10y; default 0 = new)\n"
    "  --tolerance P    resistor tolerance, e.g. 2% or 0.02 (default: the\n"
    "                   board's)\n"
    "  --seed S         Monte Carlo trial (a board seed the package was\n"
    "                   trained on; default the first)\n"
    "  --verify         also run ngspice on the same condition and print\n"
    "                   both and the predictor's error\n"
    "  --max-error P    with --verify: exit 1 when the predictor's rms error\n"
    "                   exceeds P (e.g. 5%) of ngspice's rms drift\n"
    "  --json           machine-readable output\n"
    "\n"
    "Exit status: 0 on success, 1 when the package has no readable\n"
    "predictor, ngspice fails or is missing (--verify), or the predictor's\n"
    "error exceeds --max-error; 2 for usage errors.\n";

#define PRED_PATH "targets/spice/predictor.json"

static int parse_double(const char *s, double *v)
{
    char *e;
    if (!s || !*s) return -1;
    *v = strtod(s, &e);
    if (e == s || !isfinite(*v)) return -1;
    if (!strcmp(e, "%")) *v /= 100.0;
    else if (*e) return -1;
    return 0;
}

/* "10y", "3.5d", "1h", "30min", "20s", "2w", "0" -> hours */
static int parse_duration(const char *s, double *hours)
{
    char *e;
    if (!s || !*s) return -1;
    double v = strtod(s, &e);
    if (e == s || !isfinite(v) || v < 0) return -1;
    static const struct {
        const char *u;
        double h;
    } units[] = {{"s", 1.0 / 3600}, {"sec", 1.0 / 3600}, {"min", 1.0 / 60},
                 {"h", 1},          {"hour", 1},         {"hours", 1},
                 {"d", 24},         {"day", 24},         {"days", 24},
                 {"w", 168},        {"week", 168},       {"weeks", 168},
                 {"y", 8766},       {"year", 8766},      {"years", 8766}};
    if (!*e) {
        if (v != 0) return -1; /* a unit is required */
        *hours = 0;
        return 0;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (!strcmp(e, units[i].u)) {
            *hours = v * units[i].h;
            return 0;
        }
    return -1;
}

static void fmt_age(char *b, size_t n, double h)
{
    if (h <= 0) snprintf(b, n, "new");
    else if (h < 1) snprintf(b, n, "%.3g min", h * 60);
    else if (h < 48) snprintf(b, n, "%.3g h", h);
    else if (h < 2 * 8766) snprintf(b, n, "%.3g days", h / 24);
    else snprintf(b, n, "%.3g years", h / 8766);
}

/* ---- the predictor ---------------------------------------------------- */
typedef struct pred {
    jv *root;
    size_t n, m;  /* samples, outputs */
    int softmax;
    int adc_bits;
    double adc_lo, adc_hi, s_out, fs, t_nom, pb;
    double age_ref, age_t_ref, age_exp;
    double tb_n, tb_eg, tb_xti; /* temperature basis (diode leakage) */
    double tmin, tmax, amax, pmax; /* trained ranges */
    double ng_secs;
    const char *board;
    double *ref;
    /* the chosen trial */
    unsigned long long seed;
    const char *deck, *results;
    double *ynom, *coef[8];
    int pcm; /* age_law pcm, tolerance = programming noise scale */
    double t0_s, rates[3];
} pred;

static void pred_free(pred *p)
{
    jv_free(p->root);
    cr_free(p->ref);
    cr_free(p->ynom);
    for (int i = 0; i < 8; i++) cr_free(p->coef[i]);
    memset(p, 0, sizeof *p);
}

/* A numeric array of exactly n elements. */
static double *num_array(const jv *a, size_t n, const char *what, char *err,
                         size_t errlen)
{
    if (jv_typeof(a) != JV_ARR || jv_len(a) != n) {
        snprintf(err, errlen, "predictor.json: %s is not an array of %zu "
                 "numbers", what, n);
        return NULL;
    }
    double *v = cr_calloc(n ? n : 1, sizeof(double));
    if (!v) die_oom();
    for (size_t i = 0; i < n; i++) {
        const jv *e = jv_at(a, i);
        if (jv_typeof(e) != JV_NUM) {
            snprintf(err, errlen, "predictor.json: %s[%zu] is not a number",
                     what, i);
            cr_free(v);
            return NULL;
        }
        v[i] = jv_num(e, 0);
    }
    return v;
}

static double arr_max(const jv *a, double dflt, int want_min)
{
    double r = dflt;
    for (size_t i = 0; i < jv_len(a); i++) {
        double x = jv_num(jv_at(a, i), dflt);
        r = i == 0 ? x : want_min ? fmin(r, x) : fmax(r, x);
    }
    return r;
}

static int pred_load(pred *p, const char *text, size_t len, int have_seed,
                     unsigned long long seed, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->root = jv_parse(text, len, err, errlen);
    if (!p->root) return -1;
    const jv *r = p->root;
    const char *fmt = jv_str(jv_get(r, "format"));
    if (!fmt || strcmp(fmt, "crucible-drift-predictor") ||
        jv_num(jv_get(r, "format_version"), 0) != 1) {
        snprintf(err, errlen, "predictor.json is not a crucible drift "
                 "predictor of format_version 1");
        return -1;
    }
    double n = jv_num(jv_get(r, "samples"), -1), m = jv_num(jv_get(r, "outputs"), -1);
    if (!(n >= 1 && n <= 1e6 && m >= 1 && m <= 1e6 && n * m <= 1e8)) {
        snprintf(err, errlen, "predictor.json: bad samples/outputs");
        return -1;
    }
    p->n = (size_t)n, p->m = (size_t)m;
    p->softmax = jv_bool(jv_get(r, "softmax"), 0);
    const jv *adc = jv_get(r, "adc");
    p->adc_bits = (int)jv_num(jv_get(adc, "bits"), 0);
    p->adc_lo = jv_num(jv_get(adc, "lo_v"), NAN);
    p->adc_hi = jv_num(jv_get(adc, "hi_v"), NAN);
    p->s_out = jv_num(jv_get(r, "volts_per_unit"), NAN);
    p->fs = jv_num(jv_get(r, "output_fullscale"), NAN);
    p->t_nom = jv_num(jv_get(r, "t_nom_c"), 27);
    p->pb = jv_num(jv_get(r, "tolerance_board"), NAN);
    p->ng_secs = jv_num(jv_get(r, "ngspice_seconds_per_run"), NAN);
    p->board = jv_str(jv_get(r, "board"));
    const jv *ag = jv_get(r, "ageing");
    p->age_ref = jv_num(jv_get(ag, "drift_ref"), 0);
    p->age_t_ref = jv_num(jv_get(ag, "t_ref_h"), 1000);
    p->age_exp = jv_num(jv_get(ag, "exponent"), 0.5);
    if (p->adc_bits < 1 || p->adc_bits > 32 || !isfinite(p->adc_lo) ||
        !isfinite(p->adc_hi) || !(p->s_out > 0) || !isfinite(p->pb) ||
        !(p->age_t_ref > 0)) {
        snprintf(err, errlen, "predictor.json: adc, volts_per_unit, "
                 "tolerance_board or ageing missing or invalid");
        return -1;
    }
    const char *law = jv_str(jv_get(r, "age_law"));
    if (!law || (strcmp(law, "pcm") && strcmp(law, "resistor_power"))) {
        snprintf(err, errlen, "predictor.json: age_law must be pcm or "
                 "resistor_power");
        return -1;
    }
    p->pcm = !strcmp(law, "pcm");
    p->t0_s = jv_num(jv_get(r, "t0_s"), 20);
    for (int i = 0; i < 3; i++)
        p->rates[i] = jv_num(jv_at(jv_get(r, "age_rates"), (size_t)i), NAN);
    if (p->pcm && (!(p->t0_s > 0) || !isfinite(p->rates[0]) ||
                   !isfinite(p->rates[1]) || !isfinite(p->rates[2]))) {
        snprintf(err, errlen, "predictor.json: t0_s or age_rates invalid");
        return -1;
    }
    const jv *tb = jv_get(r, "temp_basis");
    p->tb_n = jv_num(jv_get(tb, "n"), NAN);
    p->tb_eg = jv_num(jv_get(tb, "eg"), NAN);
    p->tb_xti = jv_num(jv_get(tb, "xti"), NAN);
    if (!(p->tb_n > 0) || !isfinite(p->tb_eg) || !isfinite(p->tb_xti)) {
        snprintf(err, errlen, "predictor.json: temp_basis missing or invalid");
        return -1;
    }
    const jv *tr = jv_get(r, "trained");
    p->tmin = arr_max(jv_get(tr, "temps_c"), p->t_nom, 1);
    p->tmax = arr_max(jv_get(tr, "temps_c"), p->t_nom, 0);
    p->amax = arr_max(jv_get(tr, "ages_h"), 0, 0);
    p->pmax = arr_max(jv_get(tr, "tolerances"), p->pb, 0);
    const size_t nm = p->n * p->m;
    if (!(p->ref = num_array(jv_get(r, "reference"), nm, "reference", err, errlen)))
        return -1;
    const jv *trials = jv_get(r, "trials");
    const jv *t = NULL;
    for (size_t i = 0; i < jv_len(trials) && !t; i++) {
        const jv *e = jv_at(trials, i);
        if (!have_seed || jv_num(jv_get(e, "seed"), -1) == (double)seed) t = e;
    }
    if (!t) {
        char list[256];
        size_t k = 0;
        list[0] = 0;
        for (size_t i = 0; i < jv_len(trials) && k + 24 < sizeof list; i++)
            k += (size_t)snprintf(list + k, sizeof list - k, "%s%.0f", i ? ", " : "",
                                  jv_num(jv_get(jv_at(trials, i), "seed"), -1));
        if (have_seed)
            snprintf(err, errlen, "the predictor was trained on seeds %s, not "
                     "%llu (recompile with [drift] seeds in the config for more "
                     "trials)", k ? list : "(none)", seed);
        else
            snprintf(err, errlen, "predictor.json has no trials");
        return -1;
    }
    p->seed = (unsigned long long)jv_num(jv_get(t, "seed"), 0);
    p->deck = jv_str(jv_get(t, "deck"));
    p->results = jv_str(jv_get(t, "results"));
    if (!(p->ynom = num_array(jv_get(t, "y_nominal"), nm, "y_nominal", err, errlen)))
        return -1;
    static const char *const cn[8] = {"a1", "a2", "b1", "b2", "b3", "c1", "c2", "c3"};
    for (int i = 0; i < 8; i++)
        if (!(p->coef[i] = num_array(jv_get(t, cn[i]), nm, cn[i], err, errlen)))
            return -1;
    return 0;
}

static double age_frac(const pred *p, double hours)
{
    if (p->pcm) {
        double r = hours * 3600.0 / p->t0_s;
        return r > 1.0 ? log(r) : 0.0;
    }
    if (!(p->age_ref > 0) || !(hours > 0)) return 0;
    return p->age_ref * pow(hours / p->age_t_ref, p->age_exp);
}

static void predict(const pred *p, double tol, double temp, double a, double *y)
{
    const double dp1 = tol - p->pb, dp2 = tol * tol - p->pb * p->pb;
    const double dt = temp - p->t_nom;
    const double tn = p->t_nom + 273.15, tk = temp + 273.15;
    const double lk = pow(tk / tn, p->tb_xti / p->tb_n) *
                          exp(p->tb_eg / (p->tb_n * 8.617333262e-5) * (1.0 / tn - 1.0 / tk)) - 1.0;
    const size_t nm = p->n * p->m;
    const double *a1 = p->coef[0], *a2 = p->coef[1], *b1 = p->coef[2],
                 *b2 = p->coef[3], *b3 = p->coef[4], *c1 = p->coef[5],
                 *c2 = p->coef[6], *c3 = p->coef[7];
    double f[3];
    if (p->pcm)
        for (int i = 0; i < 3; i++) f[i] = exp(-p->rates[i] * a) - 1.0;
    else
        f[0] = a, f[1] = a * a, f[2] = 0;
    for (size_t j = 0; j < nm; j++)
        y[j] = p->ynom[j] + a1[j] * dp1 + a2[j] * dp2 + b1[j] * dt +
               b2[j] * dt * dt + b3[j] * lk + c1[j] * f[0] + c2[j] * f[1] +
               c3[j] * f[2];
}

/* ---- metrics (the same definitions as the plugin's drift tables) ------- */
typedef struct met {
    size_t top1;
    double max_err, drift_max, drift_rms;
    double *per_out; /* m: max |drift| per output */
} met;

static double adc(const pred *p, double v)
{
    double lo = p->adc_lo, hi = p->adc_hi;
    if (v < lo) v = lo;
    if (v > hi) v = hi;
    double fs = fmax(fabs(lo), fabs(hi));
    if (lo < 0) {
        double half = ldexp(1.0, p->adc_bits - 1), step = fs / half;
        double code = floor(v / step + 0.5);
        if (code > half - 1) code = half - 1;
        if (code < -half) code = -half;
        return code * step;
    }
    double levels = ldexp(1.0, p->adc_bits) - 1.0, step = fs / levels;
    double code = floor(v / step + 0.5);
    if (code > levels) code = levels;
    if (code < 0) code = 0;
    return code * step;
}

static size_t argmax(const double *y, size_t n)
{
    size_t b = 0;
    for (size_t i = 1; i < n; i++)
        if (y[i] > y[b]) b = i;
    return b;
}

static void metrics(const pred *p, const double *y, double *tmp, met *mt)
{
    double ss = 0;
    mt->top1 = 0;
    mt->max_err = mt->drift_max = 0;
    for (size_t k = 0; k < p->m; k++) mt->per_out[k] = 0;
    for (size_t i = 0; i < p->n; i++) {
        const double *yi = y + i * p->m, *ri = p->ref + i * p->m;
        const double *ni = p->ynom + i * p->m;
        for (size_t k = 0; k < p->m; k++) {
            tmp[k] = adc(p, yi[k] * p->s_out) / p->s_out;
            double d = fabs(yi[k] - ni[k]);
            mt->per_out[k] = fmax(mt->per_out[k], d);
            mt->drift_max = fmax(mt->drift_max, d);
            ss += d * d;
        }
        if (p->softmax) {
            double mx = tmp[0], s = 0;
            for (size_t k = 1; k < p->m; k++) mx = fmax(mx, tmp[k]);
            for (size_t k = 0; k < p->m; k++) s += (tmp[k] = exp(tmp[k] - mx));
            for (size_t k = 0; k < p->m; k++) tmp[k] /= s;
        }
        for (size_t k = 0; k < p->m; k++)
            mt->max_err = fmax(mt->max_err, fabs(tmp[k] - ri[k]));
        if (argmax(tmp, p->m) == argmax(ri, p->m)) mt->top1++;
    }
    mt->drift_rms = sqrt(ss / (double)(p->n * p->m));
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void met_human(const pred *p, const met *mt, const char *head, double secs)
{
    printf("%s\n", head);
    printf("  top-1 agreement with the float reference  %zu/%zu (%.2f%%)\n",
           mt->top1, p->n, 100.0 * (double)mt->top1 / (double)p->n);
    printf("  max |error| vs the float reference        %.4g (%.3g%% of the "
           "output full scale %.4g)\n", mt->max_err,
           100.0 * mt->max_err / p->fs, p->fs);
    printf("  drift vs nominal                          max %.4g, rms %.4g\n",
           mt->drift_max, mt->drift_rms);
    printf("  max |drift| per output                   ");
    for (size_t k = 0; k < p->m && k < 32; k++) printf(" %.3g", mt->per_out[k]);
    printf("%s\n", p->m > 32 ? " ..." : "");
    (void)secs;
}

static void met_json(jbuf *j, const pred *p, const met *mt, double secs)
{
    jb_printf(j, "{\"top1_matches\":%zu,\"samples\":%zu,\"top1_agreement\":",
              mt->top1, p->n);
    jb_jnum(j, (double)mt->top1 / (double)p->n);
    jb_puts(j, ",\"max_abs_err\":");
    jb_jnum(j, mt->max_err);
    jb_puts(j, ",\"err_fs\":");
    jb_jnum(j, mt->max_err / p->fs);
    jb_puts(j, ",\"drift_max\":");
    jb_jnum(j, mt->drift_max);
    jb_puts(j, ",\"drift_rms\":");
    jb_jnum(j, mt->drift_rms);
    jb_puts(j, ",\"drift_per_output\":[");
    for (size_t k = 0; k < p->m; k++) {
        if (k) jb_putc(j, ',');
        jb_jnum(j, mt->per_out[k]);
    }
    jb_puts(j, "],\"seconds\":");
    jb_jnum(j, secs);
    jb_putc(j, '}');
}

/* ngspice on the package's deck at the condition; y in output units. */
static int run_verify(const pred *p, const char *dir, double tol, double temp,
                      double a, double *y, double *secs, char *err,
                      size_t errlen)
{
    if (!p->deck || !p->results || strchr(p->deck, '/') || strchr(p->results, '/')) {
        snprintf(err, errlen, "predictor.json names no deck/results file");
        return -1;
    }
    char *cond = cr_path_join(dir, "drift_cond.cir");
    char *res = cr_path_join(dir, p->results);
    if (!cond || !res) die_oom();
    jbuf t;
    jb_init(&t);
    jb_printf(&t, "* crucible drift --verify: the condition\n"
                  ".param ptol=%.9g page=%.9g\n.temp %.6g\n", tol, a, temp);
    remove(cond);
    remove(res);
    int rc = cr_write_file_atomic(cond, t.s ? t.s : "", t.len, err, errlen);
    jb_free(&t);
    if (rc) {
        cr_free(cond);
        cr_free(res);
        return -1;
    }
    const crucible_host *h = cr_host_self();
    const crucible_host_tools *tools = cr_host_tools();
    const char *argv[] = {"ngspice", "-b", p->deck, NULL};
    crucible_tool_request req;
    crucible_tool_result out;
    memset(&req, 0, sizeof req);
    memset(&out, 0, sizeof out);
    req.hdr = (crucible_header)CRUCIBLE_HEADER(crucible_tool_request);
    out.hdr = (crucible_header)CRUCIBLE_HEADER(crucible_tool_result);
    req.argv = argv;
    req.cwd = dir;
    req.timeout_s = 1800;
    req.debian_package = "ngspice";
    int st = tools->run(h, &req, &out);
    *secs = out.seconds;
    rc = 0;
    if (st == CRUCIBLE_E_SKIPPED) {
        snprintf(err, errlen, "SKIPPED: %s", out.output && *out.output
                 ? out.output : "ngspice not found (install ngspice)");
        rc = -2;
    } else if (st != CRUCIBLE_OK) {
        const char *o = out.output ? out.output : "";
        const char *e = strstr(o, "rror");
        while (e && e > o && e[-1] != '\n') e--;
        snprintf(err, errlen, "ngspice failed on %s (%s)%s%.*s", p->deck,
                 crucible_status_str(st), e ? ": " : "",
                 e ? (int)strcspn(e, "\n") : 0, e ? e : "");
        rc = -1;
    }
    tools->free_result(h, &out);
    if (!rc) {
        size_t len = 0;
        uint8_t *text = cr_read_file(res, &len, 1u << 30, err, errlen);
        if (!text) {
            rc = -1;
        } else {
            const char *q = strchr((const char *)text, '\n');
            q = q ? q + 1 : (const char *)text + len;
            for (size_t i = 0; i < p->n && !rc; i++) {
                char *e;
                double v = strtod(q, &e);
                if (e == q || fabs(v - (double)i) > 0.3) rc = -1;
                q = e;
                for (size_t k = 0; k < p->m && !rc; k++) {
                    v = strtod(q, &e);
                    if (e == q) rc = -1;
                    y[i * p->m + k] = v / p->s_out;
                    q = e;
                }
                const char *nl = strchr(q, '\n');
                q = nl ? nl + 1 : q + strlen(q);
            }
            if (rc) snprintf(err, errlen, "%s: fewer than %zu rows of %zu outputs",
                             p->results, p->n, p->m);
            cr_free(text);
        }
    }
    cr_free(cond);
    cr_free(res);
    return rc;
}

int cmd_drift(cli *c, int argc, char **argv)
{
    const char *pkg = NULL;
    double temp = NAN, age_h = 0, tol = NAN;
    unsigned long long seed = 0;
    int have_seed = 0, verify = 0;
    double max_error = NAN;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (is_help(a)) {
            fputs(DRIFT_HELP, stdout);
            return 0;
        }
        if (!strcmp(a, "--json")) c->json = 1;
        else if (!strcmp(a, "--verify")) verify = 1;
        else if (!strcmp(a, "--temp")) {
            if (i + 1 >= argc || parse_double(argv[++i], &temp) || strchr(argv[i], '%') ||
                temp < -273.15 || temp > 1000)
                return usage_error("drift", "--temp needs a temperature in degC "
                                            "(-273..1000)");
        } else if (!strcmp(a, "--age")) {
            if (i + 1 >= argc || parse_duration(argv[++i], &age_h))
                return usage_error("drift", "--age needs a duration with a unit: "
                                            "e.g. 20s, 30min, 1h, 3d, 2w, 10y (or 0)");
        } else if (!strcmp(a, "--tolerance")) {
            if (i + 1 >= argc || parse_double(argv[++i], &tol) || tol < 0 || tol > 10)
                return usage_error("drift", "--tolerance needs a resistor tolerance "
                                            "0..25%% (e.g. 2%% or 0.02), or a PCM "
                                            "programming noise scale 0..10");
        } else if (!strcmp(a, "--max-error")) {
            if (i + 1 >= argc || parse_double(argv[++i], &max_error) || max_error < 0)
                return usage_error("drift", "--max-error needs a fraction, e.g. 5%% "
                                            "or 0.05");
        } else if (!strcmp(a, "--seed")) {
            char *e;
            if (i + 1 >= argc) return usage_error("drift", "--seed needs a number");
            seed = strtoull(argv[++i], &e, 10);
            if (!*argv[i] || *e) return usage_error("drift", "--seed needs a number");
            have_seed = 1;
        } else if (a[0] == '-' && a[1]) {
            return usage_error("drift", "unknown option %s", a);
        } else if (!pkg) {
            pkg = a;
        } else {
            return usage_error("drift", "unexpected argument %s", a);
        }
    }
    if (!pkg) return usage_error("drift", "missing PKG");
    if (!isnan(max_error) && !verify)
        return usage_error("drift", "--max-error needs --verify");
    if (!cr_is_file(pkg)) {
        fprintf(stderr, "crucible drift: %s: no such file\n", pkg);
        return 1;
    }
    /* unpack (verified) into a private directory */
    const char *tmpd = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/crucible-drift.XXXXXX",
             tmpd && *tmpd ? tmpd : "/tmp");
    if (!mkdtemp(tmpl)) {
        fprintf(stderr, "crucible drift: cannot create a work directory\n");
        return 1;
    }
    cli_register_workdir(tmpl, 1);
    int ret = 1;
    char err[1024] = "";
    pred p;
    memset(&p, 0, sizeof p);
    char *dir = NULL, *ppath = NULL;
    uint8_t *text = NULL;
    double *y = NULL, *ys = NULL, *tmp = NULL, *po1 = NULL, *po2 = NULL;
    char *ex = cr_path_join(tmpl, "pkg");
    if (!ex) die_oom();
    if (pkg_extract(pkg, ex, err, sizeof err)) {
        fprintf(stderr, "crucible drift: %s\n", err);
        goto out;
    }
    dir = cr_path_join(ex, "targets/spice");
    ppath = cr_path_join(ex, PRED_PATH);
    if (!dir || !ppath) die_oom();
    if (!cr_is_file(ppath)) {
        fprintf(stderr, "crucible drift: %s has no %s (compile it with "
                        "--target spice and verification samples; the drift "
                        "analysis runs when [drift] samples > 0)\n", pkg, PRED_PATH);
        goto out;
    }
    size_t len = 0;
    text = cr_read_file(ppath, &len, 256u << 20, err, sizeof err);
    if (!text || pred_load(&p, (const char *)text, len, have_seed, seed, err,
                           sizeof err)) {
        fprintf(stderr, "crucible drift: %s: %s\n", pkg, err);
        goto out;
    }
    if (!p.pcm && !isnan(tol) && tol > 0.25) {
        fprintf(stderr, "crucible drift: --tolerance %g is above 25%% (resistor "
                        "tolerance)\n", tol);
        ret = 2;
        goto out;
    }
    if (isnan(temp)) temp = p.t_nom;
    if (isnan(tol)) tol = p.pb;
    const double a = age_frac(&p, age_h);
    const size_t nm = p.n * p.m;
    y = cr_calloc(nm, sizeof(double));
    ys = cr_calloc(nm, sizeof(double));
    tmp = cr_calloc(p.m, sizeof(double));
    po1 = cr_calloc(p.m, sizeof(double));
    po2 = cr_calloc(p.m, sizeof(double));
    if (!y || !ys || !tmp || !po1 || !po2) die_oom();

    /* the prediction, timed over enough repetitions to be measurable */
    met mp = {0, 0, 0, 0, po1};
    long reps = 0;
    double t0 = now_s(), t1 = t0;
    do {
        predict(&p, tol, temp, a, y);
        metrics(&p, y, tmp, &mp);
        reps++;
        t1 = now_s();
    } while (t1 - t0 < 0.02 && reps < 1000000);
    const double pred_s = (t1 - t0) / (double)reps;

    /* notes on extrapolation */
    char notes[512];
    size_t nk = 0;
    notes[0] = 0;
    if (temp < p.tmin - 1e-9 || temp > p.tmax + 1e-9)
        nk += (size_t)snprintf(notes + nk, sizeof notes - nk, "%s%g degC is outside "
                               "the trained range %g..%g degC", nk ? "; " : "",
                               temp, p.tmin, p.tmax);
    if (age_h > p.amax * 1.0001 && nk < sizeof notes)
        nk += (size_t)snprintf(notes + nk, sizeof notes - nk, "%sage beyond the "
                               "trained %g h", nk ? "; " : "", p.amax);
    if (age_h > 0 && !p.pcm && !(p.age_ref > 0) && nk < sizeof notes)
        nk += (size_t)snprintf(notes + nk, sizeof notes - nk, "%sthe board has no "
                               "ageing law ([ageing] drift_ref): age has no "
                               "effect", nk ? "; " : "");
    if (tol > p.pmax * 1.0001 && nk < sizeof notes)
        snprintf(notes + nk, sizeof notes - nk, "%stolerance beyond the trained "
                 "%g%%", nk ? "; " : "", 100.0 * p.pmax);

    met mv = {0, 0, 0, 0, po2};
    double ng_s = 0, err_max = 0, err_rms = 0;
    int vrc = 0;
    if (verify) {
        fflush(stdout);
        if (c->verbosity >= 0 && !c->json)
            fprintf(stderr, "[drift] ngspice on %s (%zu samples)...\n", p.deck
                    ? p.deck : "?", p.n);
        vrc = run_verify(&p, dir, tol, temp, a, ys, &ng_s, err, sizeof err);
        if (!vrc) {
            metrics(&p, ys, tmp, &mv);
            double ss = 0;
            for (size_t j = 0; j < nm; j++) {
                double d = fabs(y[j] - ys[j]);
                err_max = fmax(err_max, d);
                ss += d * d;
            }
            err_rms = sqrt(ss / (double)nm);
        }
    }
    char agebuf[64];
    fmt_age(agebuf, sizeof agebuf, age_h);
    if (c->json) {
        jbuf j;
        jb_init(&j);
        jb_puts(&j, "{\"package\":");
        jb_jstr(&j, pkg);
        jb_puts(&j, ",\"board\":");
        jb_jstr(&j, p.board);
        jb_printf(&j, ",\"seed\":%llu,\"samples\":%zu,\"outputs\":%zu,"
                      "\"condition\":{\"temp_c\":", p.seed, p.n, p.m);
        jb_jnum(&j, temp);
        jb_puts(&j, ",\"age_h\":");
        jb_jnum(&j, age_h);
        jb_puts(&j, ",\"age_drift\":");
        jb_jnum(&j, a);
        jb_puts(&j, ",\"tolerance\":");
        jb_jnum(&j, tol);
        jb_puts(&j, "},\"nominal\":{\"temp_c\":");
        jb_jnum(&j, p.t_nom);
        jb_puts(&j, ",\"age_h\":0,\"tolerance\":");
        jb_jnum(&j, p.pb);
        jb_puts(&j, "},\"output_fullscale\":");
        jb_jnum(&j, p.fs);
        jb_puts(&j, ",\"notes\":");
        jb_jstr(&j, notes[0] ? notes : NULL);
        jb_puts(&j, ",\"predicted\":");
        met_json(&j, &p, &mp, pred_s);
        jb_puts(&j, ",\"ngspice\":");
        if (verify && !vrc) met_json(&j, &p, &mv, ng_s);
        else jb_puts(&j, "null");
        jb_puts(&j, ",\"predictor_error\":");
        if (verify && !vrc) {
            jb_puts(&j, "{\"max_abs\":");
            jb_jnum(&j, err_max);
            jb_puts(&j, ",\"rms\":");
            jb_jnum(&j, err_rms);
            jb_puts(&j, ",\"of_predicted_drift_rms\":");
            jb_jnum(&j, mp.drift_rms > 0 ? err_rms / mp.drift_rms : NAN);
            jb_puts(&j, ",\"of_ngspice_drift_rms\":");
            jb_jnum(&j, mv.drift_rms > 0 ? err_rms / mv.drift_rms : NAN);
            jb_puts(&j, ",\"max_of_ngspice_drift_max\":");
            jb_jnum(&j, mv.drift_max > 0 ? err_max / mv.drift_max : NAN);
            jb_puts(&j, ",\"speedup\":");
            jb_jnum(&j, pred_s > 0 ? ng_s / pred_s : NAN);
            jb_putc(&j, '}');
        } else {
            jb_puts(&j, "null");
        }
        if (verify && vrc) {
            jb_puts(&j, ",\"verify_error\":");
            jb_jstr(&j, err);
        }
        jb_puts(&j, "}\n");
        fputs(j.s ? j.s : "", stdout);
        jb_free(&j);
    } else {
        printf("crucible drift: %s (board %s, trial seed %llu, %zu samples x "
               "%zu outputs)\n", pkg, p.board ? p.board : "?", p.seed, p.n, p.m);
        if (p.pcm) {
            printf("condition: %g degC, age %s (PCM drift time ln(t/t0) = %.3g), "
                   "programming noise x%g\n", temp, agebuf, a, tol);
            printf("nominal:   %g degC, t0 = %g s after programming, programming "
                   "noise x%g (the board)\n", p.t_nom, p.t0_s, p.pb);
        } else {
            printf("condition: %g degC, age %s (mean resistor dR/R %.3g%%), "
                   "resistor tolerance %g%%\n", temp, agebuf, 100.0 * a, 100.0 * tol);
            printf("nominal:   %g degC, new, resistor tolerance %g%% (the board)\n",
                   p.t_nom, 100.0 * p.pb);
        }
        if (notes[0]) printf("note: %s (extrapolated)\n", notes);
        char head[160];
        snprintf(head, sizeof head, "\npredictor (no SPICE; %.3g us per query):",
                 pred_s * 1e6);
        met_human(&p, &mp, head, pred_s);
        if (verify && !vrc) {
            snprintf(head, sizeof head, "\nngspice (--verify; %.3g s):", ng_s);
            met_human(&p, &mv, head, ng_s);
            printf("\npredictor error vs ngspice: max %.4g, rms %.4g = %.2f%% of "
                   "the predicted rms drift (%.2f%% of ngspice's); the predictor "
                   "is %.3gx faster\n", err_max, err_rms,
                   mp.drift_rms > 0 ? 100.0 * err_rms / mp.drift_rms : 0.0,
                   mv.drift_rms > 0 ? 100.0 * err_rms / mv.drift_rms : 0.0,
                   pred_s > 0 ? ng_s / pred_s : 0.0);
        }
    }
    if (verify && vrc) {
        fprintf(stderr, "crucible drift: --verify: %s\n", err);
        goto out;
    }
    if (!isnan(max_error) && mv.drift_rms > 0 && err_rms > max_error * mv.drift_rms) {
        fprintf(stderr, "crucible drift: FAIL: the predictor's rms error %.4g is "
                        "%.2f%% of ngspice's rms drift %.4g (limit %g%%)\n",
                err_rms, 100.0 * err_rms / mv.drift_rms, mv.drift_rms,
                100.0 * max_error);
        goto out;
    }
    ret = 0;
out:
    pred_free(&p);
    cr_free(text);
    cr_free(y);
    cr_free(ys);
    cr_free(tmp);
    cr_free(po1);
    cr_free(po2);
    cr_free(dir);
    cr_free(ppath);
    cr_free(ex);
    cr_rmtree(tmpl);
    cli_register_workdir(tmpl, 0);
    return ret;
}
