/*
 * spice_params.c - the spice target's parameters: one place that reads
 * the board INI and the project config, with defaults and validation.
 *
 * Lookup order for [section] key: the project config's [target.spice]
 * entry "section.key", then the board's [section] key, then the default.
 * The defaults are the ideal technology (plugins/spice/boards/
 * spice-ideal.ini says the same thing explicitly). Everything here is pure
 * and allocation-free, so query() may call it from any thread.
 */
#include "spice_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- number parsing -------------------------------------------------------*/
static int lower(int c) { return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c; }

static int prefix_ci(const char *s, const char *p)
{
    while (*p)
        if (lower((unsigned char)*s++) != *p++) return 0;
    return 1;
}

int sp_parse_num(const char *s, double *v)
{
    if (!s) return -1;
    while (*s == ' ' || *s == '\t') s++;
    const char *p = s;
    int digits = 0;
    if (*p == '+' || *p == '-') p++;
    while (*p >= '0' && *p <= '9') p++, digits++;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') p++, digits++;
    }
    if (!digits) return -1;
    if (*p == 'e' || *p == 'E') {
        const char *q = p + 1;
        if (*q == '+' || *q == '-') q++;
        if (*q >= '0' && *q <= '9') {
            while (*q >= '0' && *q <= '9') q++;
            p = q;
        }
    }
    /* the mantissa is plain ASCII: convert it by hand (no locale) */
    double m = 0.0, scale = 1.0;
    int neg = 0, ex = 0, exneg = 0;
    const char *q = s;
    if (*q == '+' || *q == '-') neg = *q++ == '-';
    while (*q >= '0' && *q <= '9') m = m * 10.0 + (*q++ - '0');
    if (*q == '.') {
        q++;
        while (*q >= '0' && *q <= '9') {
            scale /= 10.0;
            m += (*q++ - '0') * scale;
        }
    }
    if (q < p && (*q == 'e' || *q == 'E')) {
        q++;
        if (*q == '+' || *q == '-') exneg = *q++ == '-';
        while (q < p && *q >= '0' && *q <= '9') {
            if (ex < 400) ex = ex * 10 + (*q - '0');
            q++;
        }
    }
    double val = m * pow(10.0, exneg ? -ex : ex);
    if (neg) val = -val;
    /* SPICE scale suffixes (case-insensitive), or a percent sign */
    static const struct {
        const char *s;
        double f;
    } suf[] = {{"meg", 1e6}, {"mil", 25.4e-6}, {"t", 1e12}, {"g", 1e9},
               {"k", 1e3},   {"m", 1e-3},      {"u", 1e-6}, {"n", 1e-9},
               {"p", 1e-12}, {"f", 1e-15},     {"%", 1e-2}};
    for (size_t i = 0; i < sizeof suf / sizeof suf[0]; i++)
        if (prefix_ci(p, suf[i].s)) {
            val *= suf[i].f;
            p += strlen(suf[i].s);
            break;
        }
    while (*p == ' ' || *p == '\t') p++;
    if (*p) return -1;
    if (!isfinite(val)) return -1;
    *v = val;
    return 0;
}

/* ---- lookup ---------------------------------------------------------------*/
typedef struct src {
    const crucible_board *board;
    const crucible_kv_doc *cfg;
    char *why;
    size_t why_len;
} src;

static const crucible_kv_doc *board_doc(const crucible_board *b)
{
    if (!b || !CRUCIBLE_HAS_FIELD(*b, crucible_board, doc)) return NULL;
    return b->doc;
}

/* Value and a description of where it came from. */
static const char *get(const src *s, const char *sec, const char *key,
                       char *from, size_t from_n)
{
    char ck[96];
    snprintf(ck, sizeof ck, "%s.%s", sec, key);
    const char *v = crucible_kv_get(s->cfg, SPICE_CFG_SECTION, ck);
    if (v) {
        snprintf(from, from_n, "config [%s] %s", SPICE_CFG_SECTION, ck);
        return v;
    }
    v = crucible_kv_get(board_doc(s->board), sec, key);
    if (v) {
        const char *bn = s->board && s->board->name ? s->board->name : "?";
        snprintf(from, from_n, "board %s: [%s] %s", bn, sec, key);
        return v;
    }
    return NULL;
}

static int bad(const src *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static int bad(const src *s, const char *fmt, ...)
{
    if (s->why && s->why_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->why, s->why_len, fmt, ap);
        va_end(ap);
    }
    return CRUCIBLE_E_BOARD;
}

static int num(const src *s, const char *sec, const char *key, double dflt,
               double lo, double hi, double *out)
{
    char from[160];
    const char *v = get(s, sec, key, from, sizeof from);
    if (!v) {
        *out = dflt;
        return CRUCIBLE_OK;
    }
    double d;
    if (sp_parse_num(v, &d))
        return bad(s, "%s = '%s' is not a number (SPICE suffixes k, Meg, m, "
                      "u, n, p and %% are allowed)", from, v);
    if (d < lo || d > hi)
        return bad(s, "%s = %g is outside %g..%g", from, d, lo, hi);
    *out = d;
    return CRUCIBLE_OK;
}

static int integer(const src *s, const char *sec, const char *key, int dflt,
                   int lo, int hi, int *out)
{
    double d;
    int rc = num(s, sec, key, dflt, lo, hi, &d);
    if (rc) return rc;
    if (d != floor(d)) {
        char from[160];
        get(s, sec, key, from, sizeof from);
        return bad(s, "%s = %g must be a whole number", from, d);
    }
    *out = (int)d;
    return CRUCIBLE_OK;
}

/* One of the words in `choices` (NULL-terminated); index in *out. */
static int choice(const src *s, const char *sec, const char *key, int dflt,
                  const char *const *choices, int *out)
{
    char from[160];
    const char *v = get(s, sec, key, from, sizeof from);
    if (!v) {
        *out = dflt;
        return CRUCIBLE_OK;
    }
    for (int i = 0; choices[i]; i++) {
        const char *a = v, *b = choices[i];
        while (*a && lower((unsigned char)*a) == *b) a++, b++;
        if (!*a && !*b) {
            *out = i;
            return CRUCIBLE_OK;
        }
    }
    char list[160];
    size_t k = 0;
    list[0] = 0;
    for (int i = 0; choices[i] && k < sizeof list; i++)
        k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "",
                              choices[i]);
    return bad(s, "%s = '%s' must be one of: %s", from, v, list);
}

static int boolean(const src *s, const char *sec, const char *key, int dflt,
                   int *out)
{
    static const char *const words[] = {"false", "true", "no",  "yes",
                                        "0",     "1",    "off", "on", NULL};
    int i;
    int rc = choice(s, sec, key, dflt ? 1 : 0, words, &i);
    if (rc) return rc;
    *out = i & 1;
    return CRUCIBLE_OK;
}

static const char *str(const src *s, const char *sec, const char *key,
                       const char **from_cfg)
{
    char from[160];
    const char *v = get(s, sec, key, from, sizeof from);
    if (from_cfg) *from_cfg = (v && !strncmp(from, "config", 6)) ? "config" : "board";
    return (v && *v) ? v : NULL;
}

/* ---- technology -----------------------------------------------------------*/
void sp_tech_ideal(sp_tech *t)
{
    memset(t, 0, sizeof *t);
    t->series = SP_SERIES_EXACT;
    t->r_min = 1e3;
    t->r_max = 1e9;
    t->opamp_macro = 0;
    t->gain = 1e6;
    t->gbw_hz = -1;
    t->swing_v = 0; /* unlimited */
    t->rout = 0;
    t->rin = 0;
    t->iq_a = 0;
    t->supply_v = 15;
    t->relu_diode = 0;
    t->d_is = 2.52e-9;
    t->d_n = 1.752;
    t->d_rs = 0.568;
    t->d_bv = 100;
    t->d_cjo = 4e-12;
    t->d_tt = 20e-9;
    t->r_rect = 10e3;
}

int sp_tech_is_ideal(const sp_tech *t)
{
    return t->series == SP_SERIES_EXACT && t->tol == 0 && !t->opamp_macro &&
           !t->relu_diode && t->tcr_ppm == 0 && !t->pcm;
}

static int load_tech(const src *s, sp_tech *t)
{
    static const char *const series[] = {"exact", "e6", "e12", "e24", "e48",
                                         "e96", "e192", NULL};
    static const int series_n[] = {0, 6, 12, 24, 48, 96, 192};
    static const char *const opm[] = {"ideal", "macro", NULL};
    static const char *const rel[] = {"ideal", "diode", NULL};
    int rc, i;
    sp_tech_ideal(t);
    if ((rc = choice(s, "resistor", "series", 0, series, &i))) return rc;
    t->series = series_n[i];
    if ((rc = num(s, "resistor", "tolerance", 0, 0, 0.25, &t->tol)) ||
        (rc = num(s, "resistor", "tcr_ppm", 0, 0, 1e4, &t->tcr_ppm)) ||
        (rc = num(s, "resistor", "r_min", t->r_min, 1, 1e12, &t->r_min)) ||
        (rc = num(s, "resistor", "r_max", t->r_max, 1, 1e13, &t->r_max)))
        return rc;
    if (t->r_min >= t->r_max)
        return bad(s, "[resistor] r_min = %g must be below r_max = %g",
                   t->r_min, t->r_max);
    if ((rc = choice(s, "opamp", "model", 0, opm, &t->opamp_macro))) return rc;
    if ((rc = num(s, "opamp", "gain", 1e6, 10, 1e9, &t->gain)) ||
        (rc = num(s, "opamp", "gbw_hz", -1, -1, 1e12, &t->gbw_hz)) ||
        (rc = num(s, "opamp", "offset_v", 0, 0, 1, &t->offset_v)) ||
        (rc = num(s, "opamp", "swing_v", 0, 0, 1000, &t->swing_v)) ||
        (rc = num(s, "opamp", "rout", t->opamp_macro ? 50 : 0, 0, 1e6, &t->rout)) ||
        (rc = num(s, "opamp", "rin", t->opamp_macro ? 1e12 : 0, 0, 1e15, &t->rin)) ||
        (rc = num(s, "opamp", "iq_a", 0, 0, 1, &t->iq_a)) ||
        (rc = num(s, "opamp", "supply_v", 15, 0, 1000, &t->supply_v)))
        return rc;
    if (t->opamp_macro) {
        if (t->gbw_hz <= 0)
            return bad(s, "[opamp] gbw_hz is required (> 0) for model = macro");
        if (t->swing_v <= 0)
            return bad(s, "[opamp] swing_v is required (> 0) for model = macro");
        if (t->rin > 0 && t->rin < 1e3)
            return bad(s, "[opamp] rin = %g is below 1k", t->rin);
    }
    if ((rc = choice(s, "relu", "model", 0, rel, &t->relu_diode)) ||
        (rc = num(s, "relu", "r", t->r_rect, 10, 1e9, &t->r_rect)) ||
        (rc = num(s, "relu", "diode_is", t->d_is, 1e-20, 1e-3, &t->d_is)) ||
        (rc = num(s, "relu", "diode_n", t->d_n, 0.5, 5, &t->d_n)) ||
        (rc = num(s, "relu", "diode_rs", t->d_rs, 0, 1e4, &t->d_rs)) ||
        (rc = num(s, "relu", "diode_bv", t->d_bv, 1, 1e4, &t->d_bv)) ||
        (rc = num(s, "relu", "diode_cjo", t->d_cjo, 0, 1e-6, &t->d_cjo)) ||
        (rc = num(s, "relu", "diode_tt", t->d_tt, 0, 1e-3, &t->d_tt)))
        return rc;
    static const char *const devs[] = {"resistor", "pcm", NULL};
    if ((rc = choice(s, "device", "technology", 0, devs, &t->pcm))) return rc;
    if (t->pcm) {
        /* every value of the model must be given: no silent defaults */
        static const char *const need[] = {
            "g_max", "g_min", "prog_c0", "prog_c1", "prog_c2", "prog_scale",
            "nu_mu_a", "nu_mu_b", "nu_mu_min", "nu_mu_max", "nu_sd_a",
            "nu_sd_b", "nu_sd_min", "nu_sd_max", "t0_s", NULL};
        char from[160];
        for (int k = 0; need[k]; k++)
            if (!get(s, "device", need[k], from, sizeof from))
                return bad(s, "[device] %s is required with technology = pcm "
                              "(docs/spice.md, \"Memristive devices\")", need[k]);
        if ((rc = num(s, "device", "g_max", 0, 1e-12, 1, &t->g_max)) ||
            (rc = num(s, "device", "g_min", 0, 1e-15, 1, &t->g_min)) ||
            (rc = num(s, "device", "prog_c0", 0, -1, 1, &t->prog_c[0])) ||
            (rc = num(s, "device", "prog_c1", 0, -1, 1, &t->prog_c[1])) ||
            (rc = num(s, "device", "prog_c2", 0, -1, 1, &t->prog_c[2])) ||
            (rc = num(s, "device", "prog_scale", 1, 0, 10, &t->prog_scale)) ||
            (rc = num(s, "device", "nu_mu_a", 0, -1, 1, &t->nu_mu[0])) ||
            (rc = num(s, "device", "nu_mu_b", 0, -1, 1, &t->nu_mu[1])) ||
            (rc = num(s, "device", "nu_mu_min", 0, 0, 1, &t->nu_mu[2])) ||
            (rc = num(s, "device", "nu_mu_max", 0, 0, 1, &t->nu_mu[3])) ||
            (rc = num(s, "device", "nu_sd_a", 0, -1, 1, &t->nu_sd[0])) ||
            (rc = num(s, "device", "nu_sd_b", 0, -1, 1, &t->nu_sd[1])) ||
            (rc = num(s, "device", "nu_sd_min", 0, 0, 1, &t->nu_sd[2])) ||
            (rc = num(s, "device", "nu_sd_max", 0, 0, 1, &t->nu_sd[3])) ||
            (rc = num(s, "device", "t0_s", 20, 1e-6, 1e9, &t->t0_s)))
            return rc;
        if (t->g_min >= t->g_max)
            return bad(s, "[device] g_min = %g S must be below g_max = %g S",
                       t->g_min, t->g_max);
        /* the crossbar range: the largest weight at g_max, weights below
         * g_min left open */
        t->r_min = 1.0 / t->g_max;
        t->r_max = 1.0 / t->g_min;
    }
    return CRUCIBLE_OK;
}

int sp_params_load(const crucible_board *board, const crucible_kv_doc *cfg,
                   sp_params *p, char *why, size_t why_len)
{
    src s = {board, cfg, why, why_len};
    int rc;
    static const char *const modes[] = {"bound", "calibrated", NULL};
    static const char *const off[] = {"open", "rmax", NULL};
    memset(p, 0, sizeof *p);
    if (why && why_len) why[0] = 0;
    p->board_name = board && board->name ? board->name : "(built-in ideal)";
    if ((rc = load_tech(&s, &p->tech))) return rc;
    const int real = !sp_tech_is_ideal(&p->tech);
    double d;
    if ((rc = num(&s, "stage", "r_in", 10e3, 10, 1e9, &p->r_stage)) ||
        (rc = num(&s, "reference", "v_ref", 1.0, 1e-3, 100, &p->v_ref)) ||
        (rc = integer(&s, "dac", "bits", 16, 0, 32, &p->dac_bits)) ||
        (rc = num(&s, "dac", "v_max", 1.0, 1e-3, 100, &p->dac_vmax)) ||
        (rc = num(&s, "input", "min", -1.0, -1e9, 1e9, &p->in_min)) ||
        (rc = num(&s, "input", "max", 1.0, -1e9, 1e9, &p->in_max)) ||
        (rc = integer(&s, "adc", "bits", 12, 1, 32, &p->adc_bits)) ||
        (rc = num(&s, "scaling", "v_fullscale", real ? 10.0 : 5.0, 1e-3, 1000,
                  &p->v_fs)) ||
        (rc = choice(&s, "scaling", "mode", 0, modes, &p->calibrated)) ||
        (rc = num(&s, "scaling", "headroom", 1.25, 1.0, 100, &p->headroom)) ||
        (rc = integer(&s, "crossbar", "rows", 128, 2, 1 << 20, &p->xbar_rows)) ||
        (rc = integer(&s, "crossbar", "cols", 128, 2, 1 << 20, &p->xbar_cols)) ||
        (rc = choice(&s, "crossbar", "off_state", 0, off, &p->off_rmax)) ||
        (rc = num(&s, "limits", "max_devices", 262144, 1, 1e12, &p->max_devices)) ||
        (rc = boolean(&s, "limits", "force", 0, &p->force)) ||
        (rc = num(&s, "verify", "top1_min", real ? 0.97 : 0.99, 0, 1, &p->top1_min)) ||
        (rc = num(&s, "verify", "top1_min_ideal", 0.99, 0, 1, &p->top1_min_ideal)) ||
        (rc = num(&s, "verify", "max_err_fs", real ? 0.1 : 0.01, 0, 100, &p->err_fs)) ||
        (rc = num(&s, "verify", "max_err_fs_ideal", 0.01, 0, 100, &p->err_fs_ideal)) ||
        (rc = num(&s, "verify", "seed", 1, 0, 9007199254740992.0, &d)) ||
        (rc = num(&s, "verify", "temp_c", 27, -273, 1000, &p->temp_c)) ||
        (rc = integer(&s, "verify", "max_samples", 0, 0, 1000000, &p->max_samples)) ||
        (rc = num(&s, "verify", "timeout_s", 1800, 1, 86400, &p->sim_timeout_s)))
        return rc;
    p->seed = (uint64_t)d;
    if ((rc = num(&s, "ageing", "drift_ref", 0, 0, 0.5, &p->age_ref)) ||
        (rc = num(&s, "ageing", "t_ref_h", 1000, 1e-3, 1e7, &p->age_t_ref_h)) ||
        (rc = num(&s, "ageing", "exponent", 0.5, 0.01, 1, &p->age_exp)) ||
        (rc = num(&s, "ageing", "spread", 0.5, 0, 1, &p->age_spread)) ||
        (rc = integer(&s, "drift", "samples", 20, 0, 100000, &p->drift_samples)) ||
        (rc = integer(&s, "drift", "seeds", 3, 1, 64, &p->drift_seeds)) ||
        (rc = num(&s, "drift", "budget_s", 60, 0, 1e6, &p->drift_budget_s)))
        return rc;
    if (p->xbar_cols % 2)
        return bad(&s, "[crossbar] cols = %d must be even (each output uses a "
                       "G+ and a G- column)", p->xbar_cols);
    if (p->in_min >= p->in_max)
        return bad(&s, "[input] min = %g must be below max = %g", p->in_min,
                   p->in_max);
    if (p->tech.opamp_macro && p->v_fs >= p->tech.swing_v)
        return bad(&s, "[scaling] v_fullscale = %g V must be below the op-amp "
                       "swing [opamp] swing_v = %g V", p->v_fs, p->tech.swing_v);
    if (p->tech.opamp_macro && p->dac_vmax >= p->tech.swing_v)
        return bad(&s, "[dac] v_max = %g V must be below the op-amp swing "
                       "[opamp] swing_v = %g V", p->dac_vmax, p->tech.swing_v);
    p->calibration = str(&s, "scaling", "calibration", NULL);
    if (p->calibration) {
        const char *w;
        str(&s, "scaling", "calibration", &w);
        p->calibration_base = !strcmp(w, "config") ? (cfg ? cfg->path : NULL)
                                                   : (board_doc(board) ? board_doc(board)->path : NULL);
    }
    if (p->calibrated && !p->calibration)
        return bad(&s, "[scaling] mode = calibrated needs [scaling] calibration "
                       "= FILE.npy (float32, one input vector per row)");
    return CRUCIBLE_OK;
}

/* ---- accept_board ---------------------------------------------------------*/
int sp_board_check(const crucible_board *board, char *why, size_t why_len)
{
    const crucible_kv_doc *d = board_doc(board);
    if (!d) {
        snprintf(why, why_len, "the board has no key/value document");
        return CRUCIBLE_E_BOARD;
    }
    const char *arch = crucible_kv_get(d, "board", "arch");
    if (!arch || strcmp(arch, "analog")) {
        snprintf(why, why_len, "[board] arch = %s%s%s: the spice target needs "
                 "arch = analog", arch ? "'" : "", arch ? arch : "(missing)",
                 arch ? "'" : "");
        return CRUCIBLE_E_BOARD;
    }
    static const struct {
        const char *sec, *key;
    } required[] = {{"resistor", "series"}, {"resistor", "r_min"},
                    {"resistor", "r_max"},  {"opamp", "model"},
                    {"relu", "model"}};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        const char *v = crucible_kv_get(d, required[i].sec, required[i].key);
        if (!v || !*v) {
            snprintf(why, why_len, "[%s] %s is required (see docs/spice.md, "
                     "\"Boards\")", required[i].sec, required[i].key);
            return CRUCIBLE_E_BOARD;
        }
    }
    const char *m = crucible_kv_get(d, "opamp", "model");
    if (m && !strcmp(m, "macro")) {
        static const char *const need[] = {"gain", "gbw_hz", "swing_v",
                                           "offset_v", NULL};
        for (int i = 0; need[i]; i++)
            if (!crucible_kv_get(d, "opamp", need[i])) {
                snprintf(why, why_len, "[opamp] %s is required for model = "
                         "macro", need[i]);
                return CRUCIBLE_E_BOARD;
            }
    }
    m = crucible_kv_get(d, "relu", "model");
    if (m && !strcmp(m, "diode")) {
        static const char *const need[] = {"diode_is", "diode_n", NULL};
        for (int i = 0; need[i]; i++)
            if (!crucible_kv_get(d, "relu", need[i])) {
                snprintf(why, why_len, "[relu] %s is required for model = "
                         "diode", need[i]);
                return CRUCIBLE_E_BOARD;
            }
    }
    if (crucible_kv_get(d, "ageing", "drift_ref")) {
        static const char *const need[] = {"t_ref_h", "exponent", "spread", NULL};
        for (int i = 0; need[i]; i++)
            if (!crucible_kv_get(d, "ageing", need[i])) {
                snprintf(why, why_len, "[ageing] %s is required with [ageing] "
                         "drift_ref (the law is dR/R = drift_ref * (t / "
                         "t_ref_h)^exponent * (1 + spread * u))", need[i]);
                return CRUCIBLE_E_BOARD;
            }
    }
    sp_params p;
    int rc = sp_params_load(board, NULL, &p, why, why_len);
    if (rc) return rc;
    const char *ser = crucible_kv_get(d, "resistor", "series");
    if (p.tech.series != SP_SERIES_EXACT && !crucible_kv_get(d, "resistor", "tolerance")) {
        snprintf(why, why_len, "[resistor] tolerance is required with series "
                 "= %s (0 is allowed)", ser ? ser : "?");
        return CRUCIBLE_E_BOARD;
    }
    return CRUCIBLE_OK;
}

/* ---- E-series ------------------------------------------------------------ */
static const double e24[24] = {1.0, 1.1, 1.2, 1.3, 1.5, 1.6, 1.8, 2.0,
                               2.2, 2.4, 2.7, 3.0, 3.3, 3.6, 3.9, 4.3,
                               4.7, 5.1, 5.6, 6.2, 6.8, 7.5, 8.2, 9.1};

/* E48, E96 and E192 follow round(10^(i/N), 3 significant digits), except
 * E192's 9.20 (the formula gives 9.19). */
static double e_value(int series, int i)
{
    if (series <= 24) return e24[i * (24 / series)];
    if (series == 192 && i == 185) return 9.20;
    double v = pow(10.0, (double)i / series);
    return floor(v * 100.0 + 0.5) / 100.0;
}

double sp_series_round(double r, int series)
{
    if (series == SP_SERIES_EXACT || !(r > 0) || !isfinite(r)) return r;
    double dec = floor(log10(r));
    double base = pow(10.0, dec);
    double m = r / base, best = 1.0, bestd = 1e300;
    for (int i = 0; i <= series; i++) {
        double e = i == series ? 10.0 : e_value(series, i);
        double dist = fabs(log(m / e));
        if (dist < bestd) bestd = dist, best = e;
    }
    double out = best * base;
    /* keep 3 significant digits exactly */
    double q = pow(10.0, dec - 2);
    return floor(out / q + 0.5) * q;
}
