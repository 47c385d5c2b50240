/*
 * spice_int.h - private to the spice target plugin (not an SDK header).
 *
 * The plugin maps a float chain of dense layers (with relu, reshape, adds
 * of constants and an optional final softmax) onto analog crossbar
 * circuits, writes SPICE netlists and verifies them in ngspice. The
 * mapping and its formulas are documented in docs/spice.md.
 *
 *   spice.c         entry point, accept_board, query, compile
 *   spice_params.c  board / config parameters (one table), value parsing
 *   spice_plan.c    graph checks (pure), the layer chain, bounds and
 *                   calibration, the float model, realisation (scales)
 *   spice_net.c     netlist writers (library, layers, model, harness)
 *   spice_verify.c  verification: ngspice runs, ADC, comparison, reports
 *
 * Everything here is hidden (-fvisibility=hidden); the only exported
 * symbol of the shared object is crucible_plugin_entry. All allocation goes
 * through the host allocator.
 */
#ifndef SPICE_INT_H
#define SPICE_INT_H

#include <crucible/crucible.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define SPICE_ID "spice"
#define SPICE_VERSION "0.1.0"
#define SPICE_CFG_SECTION "target.spice"

#define SP_NONE UINT32_MAX

/* ---- plugin state ------------------------------------------------------ */
typedef struct sp_state {
    const crucible_host *host;
} sp_state;

/* ---- growable text buffer on the host allocator ------------------------ */
typedef struct sp_buf {
    const crucible_host *host;
    char *s; /* NUL-terminated once anything was written */
    size_t len, cap;
    int err; /* sticky: an allocation failed */
} sp_buf;

void sp_buf_init(sp_buf *b, const crucible_host *host);
void sp_buf_free(sp_buf *b);
void sp_puts(sp_buf *b, const char *s);
void sp_putn(sp_buf *b, const char *s, size_t n);
void sp_printf(sp_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void sp_json_str(sp_buf *b, const char *s);
/* A JSON number ("null" for NaN/inf). */
void sp_json_num(sp_buf *b, double v);

/* Host-allocator helpers: zeroed arrays; NULL on overflow / OOM. */
void *sp_calloc(const crucible_host *h, size_t n, size_t size);
void sp_free(const crucible_host *h, void *p, size_t n, size_t size);

/* ---- parameters (spice_params.c) -----------------------------------------
 * Every value comes from, in order: the project config ([target.spice]
 * "section.key"), the board ([section] key), the built-in default (which
 * is the ideal technology). */
enum { SP_SERIES_EXACT = 0 }; /* else the E-series number: 6..192 */

typedef struct sp_tech {
    /* [resistor] */
    int series;          /* 0 exact, 6, 12, 24, 48, 96, 192 */
    double tol;          /* relative tolerance (0.01 = 1 %) */
    double tcr_ppm;      /* temperature coefficient bound, ppm/degC */
    double r_min, r_max; /* crossbar device range, ohms */
    /* [opamp] */
    int opamp_macro;     /* 0 ideal VCVS, 1 macro-model */
    double gain;         /* open-loop DC gain */
    double gbw_hz;       /* gain-bandwidth product (macro); <= 0 unknown */
    double offset_v;     /* input offset bound (macro) */
    double swing_v;      /* output swing +-swing_v (macro clamps there) */
    double rout, rin;    /* output / differential input resistance */
    double iq_a;         /* quiescent supply current per op-amp */
    double supply_v;     /* +-supply, for the power estimate */
    /* [relu] */
    int relu_diode;      /* 0 ideal behavioural limiter, 1 precision rectifier */
    double d_is, d_n, d_rs, d_bv, d_cjo, d_tt; /* diode .model */
    double r_rect;       /* rectifier input/feedback resistors */
    /* [device] crossbar technology: discrete resistors, or PCM devices
     * (aihwkit's PCM statistical model; docs/spice.md) */
    int pcm;
    double g_max, g_min;  /* programmable conductance range, S */
    double prog_c[3];     /* sigma_prog = max(c0 + c1 gn + c2 gn^2, 0), S */
    double prog_scale;    /* programming noise scale (1 = the model) */
    double nu_mu[4];      /* mu_nu = clamp(a ln(gn) + b, lo, hi) */
    double nu_sd[4];      /* sigma_nu = clamp(a ln(gn) + b, lo, hi) */
    double t0_s;          /* drift reference time after programming */
} sp_tech;

typedef struct sp_params {
    const char *board_name;
    sp_tech tech;
    double r_stage;       /* [stage] r_in: difference stage input resistor */
    double v_ref;         /* [reference] v_ref: bias row voltage */
    int dac_bits;         /* [dac] bits, 0 = exact */
    double dac_vmax;      /* [dac] v_max: full-scale DAC voltage */
    double in_min, in_max;/* [input] min, max: declared input range */
    int adc_bits;         /* [adc] bits */
    double v_fs;          /* [scaling] v_fullscale: peak |V| of op-amp outputs */
    int calibrated;       /* [scaling] mode = calibrated */
    double headroom;      /* [scaling] headroom (calibrated mode) */
    const char *calibration; /* [scaling] calibration: .npy path or NULL */
    const char *calibration_base; /* file the path is relative to */
    int xbar_rows, xbar_cols;
    int off_rmax;         /* [crossbar] off_state = rmax (else open) */
    double max_devices;   /* [limits] max_devices per layer */
    int force;            /* [limits] force */
    double top1_min, top1_min_ideal;
    double err_fs, err_fs_ideal;
    uint64_t seed;
    double temp_c;
    int max_samples;      /* 0 = all */
    double sim_timeout_s;
    /* [ageing] resistor ageing law: dR/R = drift_ref * (t / t_ref_h)^exponent
     * times (1 + spread * u) per resistor, u uniform in [-1, 1] */
    double age_ref, age_t_ref_h, age_exp, age_spread;
    /* [drift] drift analysis and predictor (docs/spice.md) */
    int drift_samples;    /* first N verification samples; 0 = off */
    int drift_seeds;      /* Monte Carlo trials (board seeds seed..seed+n-1) */
    double drift_budget_s; /* estimated ngspice time allowed; fewer trials,
                              then fewer samples, beyond it (0: no limit) */
} sp_params;

/* Reads and validates the parameters (pure: no allocation, no logging).
 * Returns CRUCIBLE_OK or CRUCIBLE_E_BOARD with a one-line reason. */
int sp_params_load(const crucible_board *board, const crucible_kv_doc *cfg,
                   sp_params *p, char *why, size_t why_len);
/* Board check for accept_board: required fields and values. */
int sp_board_check(const crucible_board *board, char *why, size_t why_len);
/* The ideal technology (exact resistors, ideal op-amps and limiter). */
void sp_tech_ideal(sp_tech *t);
int sp_tech_is_ideal(const sp_tech *t);
/* Parses a SPICE-style number ("10k", "4.7Meg", "1e-3", "50u"). */
int sp_parse_num(const char *s, double *v);

/* ---- E-series -----------------------------------------------------------*/
/* Nearest value of the series (log distance); exact when series == 0. */
double sp_series_round(double r, int series);

/* ---- graph checks and the plan (spice_plan.c) -------------------------- */
/* Per-node check, pure and allocation-free. Returns CRUCIBLE_OK, or
 * CRUCIBLE_E_UNSUPPORTED / CRUCIBLE_E_LIMIT with a reason. */
int sp_check_node(const crucible_graph_view *g, uint32_t ni,
                  const sp_params *p, char *why, size_t why_len);

/* Estimated ngspice seconds per sample (one .dc sweep point). */
double sp_sim_seconds(double resistors, double opamps, int macro);

#define SP_PI 3.14159265358979323846

/* Crossbar geometry of a dense layer of K inputs and M outputs. */
typedef struct sp_geom {
    int64_t rows;         /* K + 1 (bias row) */
    int64_t cols;         /* 2 M (G+ and G- per output) */
    int64_t tiles_r, tiles_c;
    double crosspoints;   /* rows * cols */
} sp_geom;
void sp_geometry(int64_t K, int64_t M, const sp_params *p, sp_geom *gm);

typedef struct sp_counts {
    int64_t resistors, opamps, diodes, limiters, dropped;
    int64_t devices; /* PCM crossbar devices (counted in resistors too) */
    double max_dropped_w;
} sp_counts;

typedef struct sp_layer {
    uint32_t node;        /* the dense node */
    const char *name;     /* its name (host-owned) */
    uint32_t relu_node;   /* SP_NONE when no relu follows */
    const char *relu_name;
    int64_t K, M;
    const float *W;       /* [M, K], host-owned (valid during the call) */
    double *bias;         /* [M]: b plus folded constants (owned) */
    sp_geom geom;
    /* bounds of the pre-activation y and of the TIA currents (units) */
    double y_bound, t_bound;   /* max |y|, max |TIA partial sum| */
    double y_cal, t_cal;       /* same, measured on calibration (or -1) */
    double y_range, t_range;   /* what the design uses */
    double in_absmax;          /* bound of |input| (units) */
    double w_max;              /* max |w| */
    double b_max;              /* max |bias| */
    /* conv2d unrolled onto the crossbar (im2col per output position):
     * W points at W_own, [M = O*OH*OW, K = C*H*W], zero off the taps */
    float *W_own;
    int conv;
    int64_t c_in, h_in, w_in, c_out, h_out, w_out, kh, kw;
    /* max-pool after the layer (relu'd outputs viewed as [c_out, h_out,
     * w_out], or [M, 1, 1]): behavioural max sources (docs/spice.md) */
    int pool;
    int64_t p_kh, p_kw, p_sh, p_sw, p_dh, p_dw, p_top, p_left, p_oh, p_ow;
    int64_t P;                 /* outputs after pooling (else M) */
} sp_layer;

typedef struct sp_plan {
    const crucible_host *host;
    uint32_t n_layers;
    sp_layer *layers;
    uint32_t softmax_node; /* SP_NONE, or the digital softmax at the end */
    int64_t n_in, n_out;
    const char *in_name, *out_name;
    int out_relu;          /* last layer ends with a relu (output >= 0) */
    uint32_t n_cal;        /* calibration samples used (0: bounds only) */
    char cal_note[256];
} sp_plan;

int sp_plan_build(const crucible_host *h, const crucible_graph_view *g,
                  const sp_params *p, sp_plan *plan, char *why,
                  size_t why_len);
void sp_plan_free(sp_plan *plan);

/* Float model of the planned chain on one input vector (double
 * precision): writes the pre-softmax outputs (n_out values) to out, and,
 * when ymax/tmax are given (n_layers each), raises them to the largest
 * |y| and |TIA partial sum| seen. scratch holds 2 * max width doubles. */
void sp_plan_forward(const sp_plan *plan, const sp_params *p,
                     const double *x, double *out, double *scratch,
                     double *ymax, double *tmax);
size_t sp_plan_scratch(const sp_plan *plan);
/* Indices (into the layer's M outputs) of the taps of pooled output j;
 * returns how many (at most p_kh * p_kw). */
int64_t sp_pool_taps(const sp_layer *L, int64_t j, int64_t *taps);

/* ---- realisation: per-layer scales and stage values --------------------*/
typedef struct sp_real {
    double g_scale;  /* siemens per weight unit */
    double s_in;     /* volts per unit at the layer input */
    double s_out;    /* volts per unit at the layer output (nominal) */
    double r_f;      /* TIA feedback */
    double r_a;      /* difference stage input resistors */
    double r_fb;     /* difference stage feedback (= ground leg) */
    double gain;     /* r_fb / r_a */
    double g_bias;   /* bias row: siemens per bias unit (g_scale*s_in/v_ref) */
    sp_counts counts;
    double power_w;  /* static power estimate */
    double settle_s; /* settling estimate (macro op-amps), or -1 */
} sp_real;

/* Computes the realisation of every layer for technology t. real must
 * hold plan->n_layers entries. */
void sp_realise(const sp_plan *plan, const sp_params *p, const sp_tech *t,
                sp_real *real);

/* ---- netlists (spice_net.c) ---------------------------------------------*/
typedef struct sp_variant {
    const char *label;   /* "ideal" or "real" */
    const char *prefix;  /* file name prefix: "" or "ideal_" */
    sp_tech tech;
    int draw;            /* draw tolerances and offsets (seeded) */
    uint64_t seed;
    /* parametric (drift) netlists: every resistor is
     * {R0*(1+ptol*u)*(1+page*(1+spread*v))} with the .params ptol and page
     * set by drift_cond.cir, which the harness includes (with .temp) */
    int param;
    double age_spread;
} sp_variant;

/* Layer file name ("layer1_fc1.cir"): sanitised node name. */
void sp_layer_file(const sp_plan *plan, uint32_t l, const char *prefix,
                   char *buf, size_t n);
void sp_net_lib(sp_buf *b, const sp_plan *plan, const sp_params *p,
                const sp_variant *v);
void sp_net_layer(sp_buf *b, const sp_plan *plan, const sp_params *p,
                  const sp_variant *v, const sp_real *real, uint32_t l);
void sp_net_model(sp_buf *b, const sp_plan *plan, const sp_params *p,
                  const sp_variant *v, const sp_real *real);
void sp_net_op(sp_buf *b, const sp_plan *plan, const sp_params *p,
               const sp_variant *v);

/* Verification harness: the model driven by DAC sources tabulated over a
 * sample index, a .dc sweep over it, and wrdata of the outputs and the
 * monitored op-amp outputs. volts: n_samples * n_in DAC voltages. */
void sp_net_harness(sp_buf *b, const sp_plan *plan, const sp_params *p,
                    const sp_variant *v, const sp_real *real,
                    const double *volts, uint32_t n_samples,
                    const char *results, int monitor);
/* Number of monitored vectors of layer l (TIA + stage outputs). */
int64_t sp_monitor_count(const sp_plan *plan, uint32_t l);

/* ---- verify (spice_verify.c) --------------------------------------------*/
int sp_verify(sp_state *s, const crucible_verify_ctx *ctx);

/* ---- drift analysis and predictor (spice_drift.c) ---------------------- */
/* Runs the drift analysis in ngspice on the first p->drift_samples of the
 * verification samples (volts: their DAC voltages), writes the parametric
 * netlists, plots and predictor.json, and appends the tables to json (a
 * JSON object) and txt. Reports step "drift-analysis". */
int sp_drift(const crucible_host *h, const crucible_verify_ctx *ctx,
             const crucible_host_tools *tools, const sp_params *p,
             const sp_plan *plan, const double *volts, uint32_t n,
             sp_buf *json, sp_buf *txt);

/* One `ngspice -b deck` in workdir; adds its time to *secs; on failure
 * msg holds the reason (CRUCIBLE_E_SKIPPED: ngspice is missing). */
int sp_run_ngspice(const crucible_host *h, const crucible_host_tools *tools,
                   const char *workdir, const char *deck, double timeout,
                   double *secs, char *msg, size_t n);

/* Static power from operating points (a .dc sweep over the first samples)
 * and settling time from a transient run with a step input; appends to
 * json (an object) and txt and reports step "power". */
int sp_power(const crucible_host *h, const crucible_verify_ctx *ctx,
             const crucible_host_tools *tools, const sp_params *p,
             const sp_plan *plan, const double *volts, uint32_t n,
             sp_buf *json, sp_buf *txt);
/* wrdata tokens for the output current of every op-amp and limiter of
 * the model (instance X_MODEL); returns how many. */
int64_t sp_net_supply_vecs(sp_buf *b, const sp_plan *plan, const sp_tech *t);

/* Shared with spice_verify.c */
double sp_quantise(double x, double lo, double hi, int bits, int64_t *clipped);
void sp_softmax(double *y, int64_t n);
int sp_next_num(const char **p, double *v);
char *sp_read_text(const crucible_host *h, const char *path, size_t *cap);

/* ---- small shared helpers ---------------------------------------------- */
int sp_write_file(const char *path, const void *data, size_t len);
int sp_path_join(char *buf, size_t n, const char *dir, const char *name);
/* Deterministic uniform draw in [-1, 1] for a named component. */
double sp_draw(uint64_t seed, const char *name);
/* Formats n with thousands separators ("12,345"). */
void sp_fmt_count(char *buf, size_t n, double v);

#endif /* SPICE_INT_H */
