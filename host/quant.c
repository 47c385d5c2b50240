/*
 * quant.c - the post-training quantiser (quant.h, docs/quantisation.md).
 *
 * Three steps: calibrate (run the float graph on the samples, collect the
 * range of every f32 activation), rewrite (a new graph in which each node
 * that can runs on int8 with TFLite semantics, and the rest stays float
 * behind dequantize / quantize nodes), measure (run both graphs on the
 * samples and compare every quantised tensor with its float original).
 */
#include "quant.h"

#include <ctype.h>
#include <dirent.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "interp.h"

#define QERR(st, ...)                                                       \
    (((err && errlen) ? (void)snprintf(err, errlen, __VA_ARGS__) : (void)0), \
     (st))

enum { HIST_BINS = 2048 };

/* ---- formats ----------------------------------------------------------- */

const char *quant_fmt_name(quant_fmt f)
{
    switch (f) {
    case QF_INT8: return "int8";
    case QF_INT4: return "int4";
    case QF_TERNARY: return "ternary";
    case QF_BINARY: return "binary";
    default: return "float";
    }
}

int quant_fmt_parse(const char *s, quant_fmt *f)
{
    static const quant_fmt all[] = {QF_FLOAT, QF_INT8, QF_INT4, QF_TERNARY,
                                    QF_BINARY};
    for (size_t i = 0; s && i < sizeof all / sizeof all[0]; i++)
        if (!strcasecmp(s, quant_fmt_name(all[i]))) {
            *f = all[i];
            return 0;
        }
    return -1;
}

int quant_fmt_bits(quant_fmt f)
{
    switch (f) {
    case QF_INT8: return 8;
    case QF_INT4: return 4;
    case QF_TERNARY: return 2;
    case QF_BINARY: return 1;
    default: return 32;
    }
}

static int32_t fmt_dtype(quant_fmt f)
{
    switch (f) {
    case QF_INT4: return CRUCIBLE_DT_I4;
    case QF_TERNARY: return CRUCIBLE_DT_TERNARY;
    case QF_BINARY: return CRUCIBLE_DT_BINARY;
    default: return CRUCIBLE_DT_I8;
    }
}

/* ---- calibration files ---------------------------------------------------- */

void quant_samples_free(cr_array *samples, size_t n_arrays)
{
    if (!samples) return;
    for (size_t i = 0; i < n_arrays; i++) tio_free(&samples[i]);
    cr_free(samples);
}

typedef struct strlist {
    char **v;
    size_t n, cap;
} strlist;

static int sl_add(strlist *l, const char *s)
{
    if (cr_grow((void **)&l->v, &l->cap, l->n + 1, sizeof(char *))) return -1;
    if (!(l->v[l->n] = cr_strdup(s))) return -1;
    l->n++;
    return 0;
}

static void sl_free(strlist *l)
{
    for (size_t i = 0; i < l->n; i++) cr_free(l->v[i]);
    cr_free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_tensor_file(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' &&
           ((n > 4 && !strcasecmp(name + n - 4, ".npy")) ||
            (n > 3 && !strcasecmp(name + n - 3, ".pb")));
}

/* Files of a directory (sorted): tensor files directly inside, then the
 * input_* files of test_data_set_* subfolders. */
static int dir_files(const char *dir, strlist *out, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) return QERR(CRUCIBLE_E_IO, "cannot open directory %s", dir);
    strlist files = {0}, sets = {0};
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        char *p = cr_path_join(dir, e->d_name);
        if (!p) rc = -1;
        else if (is_tensor_file(e->d_name) && cr_is_file(p)) rc = sl_add(&files, p);
        else if (!strncmp(e->d_name, "test_data_set_", 14) && cr_is_dir(p))
            rc = sl_add(&sets, p);
        cr_free(p);
    }
    closedir(d);
    if (files.n) qsort(files.v, files.n, sizeof(char *), cmp_str);
    if (sets.n) qsort(sets.v, sets.n, sizeof(char *), cmp_str);
    for (size_t i = 0; !rc && i < files.n; i++) rc = sl_add(out, files.v[i]);
    for (size_t i = 0; !rc && i < sets.n; i++) {
        strlist in = {0};
        DIR *s = opendir(sets.v[i]);
        while (!rc && s && (e = readdir(s)))
            if (!strncmp(e->d_name, "input_", 6) && is_tensor_file(e->d_name)) {
                char *p = cr_path_join(sets.v[i], e->d_name);
                rc = p ? sl_add(&in, p) : -1;
                cr_free(p);
            }
        if (s) closedir(s);
        if (in.n) qsort(in.v, in.n, sizeof(char *), cmp_str);
        for (size_t k = 0; !rc && k < in.n; k++) rc = sl_add(out, in.v[k]);
        sl_free(&in);
    }
    sl_free(&files);
    sl_free(&sets);
    if (rc) return QERR(CRUCIBLE_E_NOMEM, "out of memory");
    return CRUCIBLE_OK;
}

int quant_load_calib(const cr_graph *g, const char *const *paths,
                     size_t n_paths, size_t limit, cr_array **samples,
                     size_t *n_samples, char *err, size_t errlen)
{
    *samples = NULL;
    *n_samples = 0;
    size_t ni = g->n_inputs;
    if (!ni) return QERR(CRUCIBLE_E_INVALID, "the model has no inputs");
    strlist files = {0};
    int rc = CRUCIBLE_OK;
    for (size_t i = 0; !rc && i < n_paths; i++) {
        if (cr_is_dir(paths[i])) rc = dir_files(paths[i], &files, err, errlen);
        else if (sl_add(&files, paths[i])) rc = QERR(CRUCIBLE_E_NOMEM, "out of memory");
    }
    if (!rc && !files.n) rc = QERR(CRUCIBLE_E_INVALID, "no calibration files");
    cr_array *v = NULL;
    size_t cap = 0, n = 0; /* arrays */
    size_t k = 0;          /* which input the next file feeds */
    for (size_t f = 0; !rc && f < files.n; f++) {
        cr_array a;
        if (tio_load(files.v[f], &a, err, errlen)) {
            rc = CRUCIBLE_E_IO;
            break;
        }
        const cr_tensor *t = &g->tensors[g->inputs[k]];
        uint64_t per = ir_numel(t);
        size_t tot = tio_numel(&a);
        size_t cnt = 1;
        if (!per || !tot || tot % per) {
            rc = QERR(CRUCIBLE_E_INVALID,
                      "%s: %zu values do not make samples of input %s (%llu "
                      "values each)",
                      files.v[f], tot, t->name, (unsigned long long)per);
        } else if (tot != per) {
            cnt = tot / per;
            if (ni != 1 || a.rank < 1 || (uint64_t)a.dims[0] != cnt)
                rc = QERR(CRUCIBLE_E_INVALID,
                          "%s: a batch of samples must be stacked along the "
                          "first axis, for a model with one input",
                          files.v[f]);
        }
        cr_array conv;
        memset(&conv, 0, sizeof conv);
        if (!rc && a.dtype != t->dtype) {
            if (tio_convert(&a, t->dtype, &conv, err, errlen)) rc = CRUCIBLE_E_INVALID;
            else {
                tio_free(&a);
                a = conv;
            }
        }
        size_t es = interp_elem_size(t->dtype);
        for (size_t s = 0; !rc && s < cnt; s++) {
            if (limit && (n / ni) >= limit && k == 0) break;
            if (cr_grow((void **)&v, &cap, n + 1, sizeof *v)) {
                rc = QERR(CRUCIBLE_E_NOMEM, "out of memory");
                break;
            }
            cr_array *o = &v[n];
            memset(o, 0, sizeof *o);
            o->dtype = t->dtype;
            o->rank = t->rank;
            memcpy(o->dims, t->dims, sizeof o->dims);
            o->bytes = (size_t)per * es;
            o->data = cr_malloc(o->bytes ? o->bytes : 1);
            if (!o->data) {
                rc = QERR(CRUCIBLE_E_NOMEM, "out of memory");
                break;
            }
            memcpy(o->data, (const char *)a.data + s * o->bytes, o->bytes);
            n++;
            k = (k + 1) % ni;
        }
        tio_free(&a);
        if (limit && n / ni >= limit && k == 0) break;
    }
    sl_free(&files);
    if (!rc && k != 0)
        rc = QERR(CRUCIBLE_E_INVALID,
                  "the model has %zu inputs; the calibration files do not "
                  "come in complete groups of %zu",
                  ni, ni);
    if (!rc && !n) rc = QERR(CRUCIBLE_E_INVALID, "no calibration samples");
    if (rc) {
        quant_samples_free(v, n);
        return rc;
    }
    *samples = v;
    *n_samples = n / ni;
    return CRUCIBLE_OK;
}

/* ---- calibration statistics ------------------------------------------------ */

typedef struct tstat {
    int seen;
    double mn, mx;     /* observed */
    double lo, hi;     /* chosen range */
    uint64_t count;
    uint64_t *hist;    /* percentile: HIST_BINS over [mn, mx] */
} tstat;

static int is_act(const cr_graph *g, size_t t)
{
    const cr_tensor *x = &g->tensors[t];
    return x->dtype == CRUCIBLE_DT_F32 && !(x->flags & CRUCIBLE_TENSOR_CONST);
}

static int calibrate(const cr_graph *g, const cr_array *samples, size_t ns,
                     const quant_opts *o, tstat *st, char *err, size_t errlen)
{
    size_t nt = g->n_tensors;
    cr_array *vals = cr_calloc(nt ? nt : 1, sizeof *vals);
    if (!vals) return QERR(CRUCIBLE_E_NOMEM, "out of memory");
    int passes = o->method == QM_PERCENTILE ? 2 : 1;
    int rc = CRUCIBLE_OK;
    for (int pass = 0; !rc && pass < passes; pass++) {
        if (pass == 1)
            for (size_t t = 0; t < nt; t++)
                if (st[t].seen && st[t].mx > st[t].mn &&
                    !(st[t].hist = cr_calloc(HIST_BINS, sizeof(uint64_t)))) {
                    rc = QERR(CRUCIBLE_E_NOMEM, "out of memory");
                    break;
                }
        for (size_t s = 0; !rc && s < ns; s++) {
            char e2[1024];
            if ((rc = interp_run_all(g, &samples[s * g->n_inputs],
                                     g->n_inputs, vals, e2, sizeof e2))) {
                (void)QERR(rc, "calibration sample %zu: %s", s, e2);
                break;
            }
            for (size_t t = 0; t < nt; t++) {
                if (!is_act(g, t) || !vals[t].data ||
                    vals[t].dtype != CRUCIBLE_DT_F32)
                    continue;
                const float *p = (const float *)vals[t].data;
                size_t m = vals[t].bytes / 4;
                tstat *q = &st[t];
                for (size_t j = 0; j < m; j++) {
                    double v = p[j];
                    if (!isfinite(v)) continue;
                    if (pass == 0) {
                        if (!q->seen || v < q->mn) q->mn = v;
                        if (!q->seen || v > q->mx) q->mx = v;
                        q->seen = 1;
                        q->count++;
                    } else if (q->hist) {
                        double b = (v - q->mn) / (q->mx - q->mn) * HIST_BINS;
                        size_t bi = b < 0 ? 0 : b >= HIST_BINS ? HIST_BINS - 1 : (size_t)b;
                        q->hist[bi]++;
                    }
                }
            }
            for (size_t t = 0; t < nt; t++) tio_free(&vals[t]);
        }
    }
    cr_free(vals);
    if (rc) return rc;
    double p = o->percentile > 0 ? o->percentile : 99.99;
    for (size_t t = 0; t < nt; t++) {
        tstat *q = &st[t];
        q->lo = q->mn;
        q->hi = q->mx;
        if (q->hist) {
            /* the lowest value with at most (100 - p) % below it, and the
             * highest with at most (100 - p) % above it, at bin edges */
            double tail = (double)q->count * (100.0 - p) / 100.0;
            double w = (q->mx - q->mn) / HIST_BINS, cum = 0;
            size_t b;
            for (b = 0; b < HIST_BINS; b++) {
                if (cum + (double)q->hist[b] > tail) break;
                cum += (double)q->hist[b];
            }
            q->lo = q->mn + w * (double)b;
            cum = 0;
            for (b = HIST_BINS; b > 0; b--) {
                if (cum + (double)q->hist[b - 1] > tail) break;
                cum += (double)q->hist[b - 1];
            }
            q->hi = q->mn + w * (double)b;
            if (q->lo > q->mx) q->lo = q->mx;
            if (q->hi < q->mn) q->hi = q->mn;
        }
        cr_free(q->hist);
        q->hist = NULL;
    }
    return CRUCIBLE_OK;
}

/* Asymmetric int8 parameters for the range [lo, hi] (extended to hold 0,
 * which must be exact): scale = (hi - lo) / 255, zero point = round(-128 -
 * lo / scale) clamped (TFLite's nudging). */
static void act_params(double lo, double hi, float *scale, int32_t *zp)
{
    if (lo > 0) lo = 0;
    if (hi < 0) hi = 0;
    double s = (hi - lo) / 255.0;
    float sf = (float)s;
    if (!(sf >= FLT_MIN) || !isfinite(sf)) sf = s > 0 ? FLT_MIN : 1.0f / 255.0f;
    double z = round(-128.0 - lo / (double)sf);
    *scale = sf;
    *zp = z < -128 ? -128 : z > 127 ? 127 : (int32_t)z;
}

/* ---- weights ---------------------------------------------------------------- */

/* Quantises rows of K weights (one per output channel) to fmt: q (values
 * in -127..127), per-row scales; sig / noise accumulate sum w^2 and
 * sum (w - s q)^2. */
static void quant_rows(quant_fmt f, const float *w, int64_t M, int64_t K,
                       int8_t *q, float *sc, double *sig, double *noise)
{
    for (int64_t m = 0; m < M; m++) {
        const float *r = w + m * K;
        int8_t *qr = q + m * K;
        double maxa = 0, suma = 0;
        for (int64_t k = 0; k < K; k++) {
            double a = fabs((double)r[k]);
            if (a > maxa) maxa = a;
            suma += a;
        }
        float s = 1.0f;
        if (f == QF_INT8 || f == QF_INT4) {
            const int lim = f == QF_INT8 ? 127 : 7;
            /* int8: the full range; int4: the clipping ratio (0.50 ..
             * 1.00 in steps of 0.05) with the least squared error */
            double best = INFINITY;
            for (int step = (f == QF_INT8 ? 20 : 10); step <= 20; step++) {
                float ss = (float)(maxa * step / 20.0 / lim);
                if (!(ss >= FLT_MIN)) break;
                double e = 0;
                for (int64_t k = 0; k < K; k++) {
                    double v = round((double)r[k] / (double)ss);
                    v = v < -lim ? -lim : v > lim ? lim : v;
                    double d = (double)r[k] - (double)ss * v;
                    e += d * d;
                }
                if (e <= best) {
                    best = e;
                    s = ss;
                }
            }
            for (int64_t k = 0; k < K; k++) {
                double v = round((double)r[k] / (double)s);
                qr[k] = (int8_t)(v < -lim ? -lim : v > lim ? lim : v);
            }
        } else if (f == QF_TERNARY) {
            /* TWN: threshold 0.7 * mean|w|, scale = mean of the |w| kept */
            double delta = 0.7 * suma / (double)K, kept = 0;
            int64_t nk = 0;
            for (int64_t k = 0; k < K; k++)
                if (fabs((double)r[k]) > delta) {
                    kept += fabs((double)r[k]);
                    nk++;
                }
            if (nk && kept / (double)nk >= FLT_MIN) s = (float)(kept / (double)nk);
            for (int64_t k = 0; k < K; k++)
                qr[k] = !nk || fabs((double)r[k]) <= delta ? 0
                        : r[k] > 0                         ? 1
                                                           : -1;
        } else { /* binary: sign, scale = mean|w| */
            if (suma / (double)K >= FLT_MIN) s = (float)(suma / (double)K);
            for (int64_t k = 0; k < K; k++) qr[k] = r[k] >= 0 ? 1 : -1;
        }
        sc[m] = s;
        for (int64_t k = 0; k < K; k++) {
            double d = (double)r[k] - (double)s * qr[k];
            *sig += (double)r[k] * r[k];
            *noise += d * d;
        }
    }
}

/* Packs n values into the IR layout of dtype (crucible/ir.h). */
static uint8_t *pack(int32_t dt, const int8_t *q, size_t n, size_t *bytes)
{
    *bytes = ir_dtype_bytes(dt, n);
    uint8_t *d = cr_calloc(*bytes ? *bytes : 1, 1);
    if (!d) return NULL;
    for (size_t i = 0; i < n; i++) {
        switch (dt) {
        case CRUCIBLE_DT_I4: d[i / 2] |= (uint8_t)((q[i] & 15) << ((i & 1) * 4)); break;
        case CRUCIBLE_DT_TERNARY:
            d[i / 4] |= (uint8_t)((q[i] > 0 ? 1 : q[i] < 0 ? 3 : 0) << ((i & 3) * 2));
            break;
        case CRUCIBLE_DT_BINARY: if (q[i] > 0) d[i / 8] |= (uint8_t)(1u << (i & 7)); break;
        default: d[i] = (uint8_t)q[i]; break;
        }
    }
    return d;
}

static double sqnr_db(double sig, double noise)
{
    if (noise <= 0) return INFINITY;
    if (sig <= 0) return -INFINITY;
    return 10.0 * log10(sig / noise);
}

/* ---- the rewriter ------------------------------------------------------------ */

typedef struct qctx {
    const cr_graph *g;
    cr_graph *ng;
    const quant_opts *o;
    quant_report *rep;
    tstat *st;
    int32_t *f2;     /* float graph tensor -> its f32 tensor in ng, or -1 */
    int32_t *q8;     /* -> its int8 twin in ng, or -1 */
    int32_t *uses;   /* consumers per tensor */
    uint8_t *done;   /* nodes folded into another */
    int32_t *lay_t;  /* per report layer: float tensor compared (or -1) */
    size_t cap_lay_t;
    char *err;
    size_t errlen;
    size_t overrides;
} qctx;

#define CERR(st, ...)                                                       \
    (((c->err && c->errlen) ? (void)snprintf(c->err, c->errlen, __VA_ARGS__) \
                            : (void)0),                                     \
     (st))

static int is_graph_output(const cr_graph *g, int32_t t)
{
    for (size_t i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == t) return 1;
    return 0;
}

static int node_name_taken(const cr_graph *g, const char *name)
{
    for (size_t i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].name, name)) return 1;
    return 0;
}

/* A name for a node or tensor that the new graph (and the old one, whose
 * names are reused for float tensors) does not have yet. */
static char *fresh(qctx *c, const char *base, const char *suffix, int node)
{
    jbuf b;
    jb_init(&b);
    for (int k = 1; k < 1000000; k++) {
        b.len = 0;
        jb_printf(&b, "%s%s", base, suffix);
        if (k > 1) jb_printf(&b, "#%d", k);
        if (b.err) break;
        int taken = node ? node_name_taken(c->ng, b.s) || node_name_taken(c->g, b.s)
                         : ir_find_tensor(c->ng, b.s) >= 0 ||
                               ir_find_tensor(c->g, b.s) >= 0;
        if (!taken) return jb_take(&b);
    }
    jb_free(&b);
    return NULL;
}

static int copy_attrs(qctx *c, const cr_node *n, int32_t nn)
{
    int rc = CRUCIBLE_OK;
    for (uint32_t i = 0; !rc && i < n->n_attrs; i++) {
        const cr_attr *a = &n->attrs[i];
        switch (a->type) {
        case CRUCIBLE_ATTR_INT: rc = ir_attr_int(c->ng, nn, a->name, a->i); break;
        case CRUCIBLE_ATTR_FLOAT: rc = ir_attr_float(c->ng, nn, a->name, a->f); break;
        case CRUCIBLE_ATTR_INTS: rc = ir_attr_ints(c->ng, nn, a->name, a->count, a->ints); break;
        case CRUCIBLE_ATTR_FLOATS:
            rc = ir_attr_floats(c->ng, nn, a->name, a->count, a->floats);
            break;
        case CRUCIBLE_ATTR_STRING: rc = ir_attr_string(c->ng, nn, a->name, a->s); break;
        default: break;
        }
    }
    return rc ? CERR(rc, "out of memory") : CRUCIBLE_OK;
}

static int32_t add_tensor(qctx *c, const char *name, int32_t dtype,
                          const cr_tensor *like)
{
    return ir_add_tensor(c->ng, name, dtype, like->rank, like->dims, c->err,
                         c->errlen);
}

static int32_t add_node(qctx *c, int32_t op, const char *name, uint32_t n_in,
                        const int32_t *in, int32_t out)
{
    return ir_add_node(c->ng, op, name, n_in, in, 1, &out, c->err, c->errlen);
}

static quant_layer *new_layer(qctx *c, const char *node, const char *op,
                              const char *tensor, int32_t cmp_t)
{
    quant_report *r = c->rep;
    if (cr_grow((void **)&r->layers, &r->cap_layers, r->n_layers + 1,
                sizeof(quant_layer)) ||
        cr_grow((void **)&c->lay_t, &c->cap_lay_t, r->n_layers + 1,
                sizeof(int32_t)))
        return NULL;
    quant_layer *l = &r->layers[r->n_layers];
    memset(l, 0, sizeof *l);
    l->node = cr_strdup(node);
    l->op = cr_strdup(op);
    l->tensor = cr_strdup(tensor);
    l->fmt = QF_INT8;
    l->w_sqnr_db = NAN;
    l->out_sqnr_db = NAN;
    if (!l->node || !l->op || !l->tensor) {
        cr_free(l->node);
        cr_free(l->op);
        cr_free(l->tensor);
        return NULL;
    }
    c->lay_t[r->n_layers] = cmp_t;
    r->n_layers++;
    return l;
}

/* The f32 value of float-graph tensor t in the new graph: copied (a
 * constant), already there, or dequantised from its int8 twin. */
static int32_t need_float(qctx *c, int32_t t)
{
    if (c->f2[t] >= 0) return c->f2[t];
    const cr_tensor *x = &c->g->tensors[t];
    if (x->flags & CRUCIBLE_TENSOR_CONST) {
        int32_t k = add_tensor(c, x->name, x->dtype, x);
        if (k < 0) return k;
        int rc = ir_set_data(c->ng, k, x->data, x->data_bytes, c->err, c->errlen);
        if (!rc && x->quant_count)
            rc = ir_set_quant(c->ng, k, x->quant_axis, x->quant_count,
                              x->scales, x->zero_points, c->err, c->errlen);
        if (rc) return rc;
        return c->f2[t] = k;
    }
    if (c->q8[t] < 0)
        return CERR(CRUCIBLE_E_GENERIC, "internal: tensor %s has no value",
                    x->name);
    int32_t k = add_tensor(c, x->name, CRUCIBLE_DT_F32, x);
    if (k < 0) return k;
    char *nm = fresh(c, x->name, "/dequantize", 1);
    if (!nm) return CERR(CRUCIBLE_E_NOMEM, "out of memory");
    int32_t in = c->q8[t];
    int32_t nd = add_node(c, CRUCIBLE_OP_DEQUANTIZE, nm, 1, &in, k);
    if (nd >= 0) {
        const cr_tensor *q = &c->ng->tensors[in];
        quant_layer *l = new_layer(c, nm, "dequantize", x->name, -1);
        if (!l) nd = CERR(CRUCIBLE_E_NOMEM, "out of memory");
        else {
            l->has_in = 1;
            l->in_scale = q->scales[0];
            l->in_zp = q->zero_points[0];
        }
    }
    cr_free(nm);
    if (nd < 0) return nd;
    return c->f2[t] = k;
}

/* A new int8 twin "<t>:q" of float tensor t with the given parameters. */
static int32_t new_q8(qctx *c, int32_t t, float s, int32_t zp)
{
    const cr_tensor *x = &c->g->tensors[t];
    char *nm = fresh(c, x->name, ":q", 0);
    if (!nm) return CERR(CRUCIBLE_E_NOMEM, "out of memory");
    int32_t k = add_tensor(c, nm, CRUCIBLE_DT_I8, x);
    cr_free(nm);
    if (k < 0) return k;
    int rc = ir_set_quant(c->ng, k, -1, 1, &s, &zp, c->err, c->errlen);
    if (rc) return rc;
    return c->q8[t] = k;
}

static int calibrated(qctx *c, int32_t t, float *s, int32_t *zp)
{
    const tstat *q = &c->st[t];
    if (!q->seen)
        return CERR(CRUCIBLE_E_INVALID,
                    "tensor %s has no calibration data (no finite values in "
                    "the samples)",
                    c->g->tensors[t].name);
    act_params(q->lo, q->hi, s, zp);
    return CRUCIBLE_OK;
}

/* The int8 twin of t, quantising its float value if there is none. */
static int32_t need_q8(qctx *c, int32_t t)
{
    if (c->q8[t] >= 0) return c->q8[t];
    float s;
    int32_t zp;
    int rc = calibrated(c, t, &s, &zp);
    if (rc) return rc;
    int32_t f = need_float(c, t);
    if (f < 0) return f;
    int32_t k = new_q8(c, t, s, zp);
    if (k < 0) return k;
    const char *tn = c->g->tensors[t].name;
    char *nm = fresh(c, tn, "/quantize", 1);
    if (!nm) return CERR(CRUCIBLE_E_NOMEM, "out of memory");
    int32_t nd = add_node(c, CRUCIBLE_OP_QUANTIZE, nm, 1, &f, k);
    if (nd >= 0 && ir_attr_string(c->ng, nd, "rounding", "fixed_q31"))
        nd = CERR(CRUCIBLE_E_NOMEM, "out of memory");
    if (nd >= 0) {
        quant_layer *l = new_layer(c, nm, "quantize", tn, t);
        if (!l) nd = CERR(CRUCIBLE_E_NOMEM, "out of memory");
        else {
            l->has_out = 1;
            l->out_scale = s;
            l->out_zp = zp;
        }
    }
    cr_free(nm);
    return nd < 0 ? nd : k;
}

static quant_fmt layer_fmt(qctx *c, const cr_node *n, int *rc)
{
    quant_fmt f = c->o->weights;
    *rc = CRUCIBLE_OK;
    if (!c->o->config) return f;
    jbuf sec;
    jb_init(&sec);
    jb_puts(&sec, "layer.");
    for (const char *p = n->name; *p; p++) jb_putc(&sec, (char)tolower((unsigned char)*p));
    const char *v = sec.err ? NULL : cr_kv_get(c->o->config, sec.s, "quant");
    if (v) {
        if (quant_fmt_parse(v, &f)) {
            *rc = CERR(CRUCIBLE_E_INVALID,
                       "config: [%s] quant = %s: expected int8, int4, "
                       "ternary, binary or float",
                       sec.s, v);
        } else {
            c->overrides++;
        }
    }
    jb_free(&sec);
    return f;
}

static int32_t single_consumer(qctx *c, int32_t t)
{
    if (c->uses[t] != 1 || is_graph_output(c->g, t)) return -1;
    for (size_t i = 0; i < c->g->n_nodes; i++) {
        const cr_node *n = &c->g->nodes[i];
        for (uint32_t k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] == t) return (int32_t)i;
    }
    return -1;
}

/* relu, or a clip with attribute bounds only, following tensor t alone:
 * foldable into the op producing t. Returns the node index or -1. */
static int32_t foldable_act(qctx *c, int32_t t)
{
    int32_t ci = single_consumer(c, t);
    if (ci < 0) return -1;
    const cr_node *a = &c->g->nodes[ci];
    if (a->op != CRUCIBLE_OP_RELU &&
        !(a->op == CRUCIBLE_OP_CLIP && a->n_inputs == 1))
        return -1;
    int rc;
    if (layer_fmt(c, a, &rc) == QF_FLOAT || rc) return -1;
    if (!c->st[a->outputs[0]].seen) return -1;
    return ci;
}

/* Sets min / max on node nn for the folded activation a. */
static int fold_attrs(qctx *c, const cr_node *a, int32_t nn)
{
    int rc = CRUCIBLE_OK;
    if (a->op == CRUCIBLE_OP_RELU) return ir_attr_float(c->ng, nn, "min", 0.0);
    const cr_attr *mn = ir_attr(a, "min"), *mx = ir_attr(a, "max");
    if (mn) rc = ir_attr_float(c->ng, nn, "min", ir_attr_f(a, "min", 0));
    if (!rc && mx) rc = ir_attr_float(c->ng, nn, "max", ir_attr_f(a, "max", 0));
    return rc;
}

/* The output an op writes after folding a following activation: sets
 * *target (float-graph tensor) and *act (node or -1). */
static void fold_target(qctx *c, const cr_node *n, int32_t *target,
                        int32_t *act)
{
    *target = n->outputs[0];
    *act = foldable_act(c, n->outputs[0]);
    if (*act >= 0) *target = c->g->nodes[*act].outputs[0];
}

static int finish_fold(qctx *c, int32_t act, int32_t nn, quant_layer *l)
{
    if (act < 0) return CRUCIBLE_OK;
    c->done[act] = 1;
    l->folded = 1;
    l->folded_node = cr_strdup(c->g->nodes[act].name);
    if (!l->folded_node || fold_attrs(c, &c->g->nodes[act], nn))
        return CERR(CRUCIBLE_E_NOMEM, "out of memory");
    return CRUCIBLE_OK;
}

static int const_f32(const cr_graph *g, int32_t t)
{
    return t >= 0 && (g->tensors[t].flags & CRUCIBLE_TENSOR_CONST) &&
           g->tensors[t].dtype == CRUCIBLE_DT_F32 && g->tensors[t].data;
}

/* A constant per-output-channel add after a dense / conv2d (CNTK and
 * some converters emit the bias this way: conv2d -> add(C [M,1,1])):
 * the add node index when it is the product's only consumer and its other
 * operand is a constant f32 of M values laid out per channel, else -1.
 * *k gets that constant tensor. */
static int32_t bias_add(qctx *c, const cr_node *n, int64_t M, int32_t *k)
{
    const cr_graph *g = c->g;
    int32_t ci = single_consumer(c, n->outputs[0]);
    *k = -1;
    if (ci < 0) return -1;
    const cr_node *a = &g->nodes[ci];
    if (a->op != CRUCIBLE_OP_ADD || a->n_inputs != 2) return -1;
    int32_t other = a->inputs[0] == n->outputs[0] ? a->inputs[1] : a->inputs[0];
    if (a->inputs[0] == a->inputs[1] || !const_f32(g, other)) return -1;
    const cr_tensor *K = &g->tensors[other], *Y = &g->tensors[n->outputs[0]];
    const cr_tensor *Z = &g->tensors[a->outputs[0]];
    if (ir_numel(K) != (uint64_t)M || Z->rank != Y->rank ||
        memcmp(Z->dims, Y->dims, sizeof Y->dims[0] * (size_t)Y->rank))
        return -1;
    /* the M values must sit on the channel axis (1) after right-aligned
     * broadcasting: every other dim of K is 1 */
    const int32_t off = Y->rank - K->rank;
    if (off < 0) return -1;
    for (int32_t d = 0; d < K->rank; d++) {
        int32_t yd = d + off;
        if (yd == 1 ? K->dims[d] != M : K->dims[d] != 1) return -1;
    }
    if (M > 1 && Y->rank < 2) return -1;
    int rc;
    if (layer_fmt(c, a, &rc) == QF_FLOAT || rc) return -1;
    if (!c->st[a->outputs[0]].seen) return -1;
    *k = other;
    return ci;
}

/* dense / conv2d with constant f32 weights -> integer product, requantize. */
static int q_product(qctx *c, const cr_node *n, quant_fmt fmt)
{
    const cr_graph *g = c->g;
    int32_t tx = n->inputs[0], tw = n->inputs[1];
    int32_t tb = n->n_inputs > 2 ? n->inputs[2] : -1;
    const cr_tensor *W = &g->tensors[tw];
    if (!is_act(g, (size_t)tx) || !const_f32(g, tw) ||
        (tb >= 0 && !const_f32(g, tb)) || W->dims[0] < 1 ||
        (n->op == CRUCIBLE_OP_DENSE ? W->rank != 2 : W->rank != 4) ||
        !c->st[n->outputs[0]].seen)
        return 0;
    int32_t target, act, tk;
    const int32_t addn = bias_add(c, n, W->dims[0], &tk);
    if (addn >= 0) {
        /* the add becomes (part of) the bias; fold what follows it */
        target = g->nodes[addn].outputs[0];
        act = foldable_act(c, target);
        if (act >= 0) target = g->nodes[act].outputs[0];
    } else {
        fold_target(c, n, &target, &act);
    }
    int32_t x8 = need_q8(c, tx);
    if (x8 < 0) return x8;
    const float sx = c->ng->tensors[x8].scales[0];
    const int64_t M = W->dims[0];
    const uint64_t nw = ir_numel(W);
    const int64_t K = (int64_t)(nw / (uint64_t)M);
    int8_t *q = cr_malloc(nw ? nw : 1);
    float *sw = cr_calloc((size_t)M, sizeof *sw);
    float *sacc = cr_calloc((size_t)M, sizeof *sacc);
    int32_t *zeros = cr_calloc((size_t)M, sizeof *zeros);
    const int has_b = tb >= 0 || addn >= 0;
    int32_t *bq = has_b ? cr_calloc((size_t)M, sizeof *bq) : NULL;
    uint8_t *packed = NULL;
    char *wn = NULL, *bn = NULL, *an = NULL, *rn = NULL;
    int rc = CRUCIBLE_OK;
    if (!q || !sw || !sacc || !zeros || (has_b && !bq)) {
        rc = CERR(CRUCIBLE_E_NOMEM, "out of memory");
        goto out;
    }
    double sig = 0, noise = 0;
    quant_rows(fmt, (const float *)W->data, M, K, q, sw, &sig, &noise);
    for (int64_t m = 0; m < M; m++)
        sacc[m] = (float)((double)sx * (double)sw[m]);
    if (tb >= 0 && ir_numel(&g->tensors[tb]) != (uint64_t)M) {
        rc = 0; /* unusual bias shape: stay float */
        goto out;
    }
    if (has_b) {
        const float *b = tb >= 0 ? (const float *)g->tensors[tb].data : NULL;
        const float *k = addn >= 0 ? (const float *)g->tensors[tk].data : NULL;
        for (int64_t m = 0; m < M; m++) {
            float bf = (b ? b[m] : 0.0f) + (k ? k[m] : 0.0f);
            double v = round((double)bf / ((double)sx * (double)sw[m]));
            bq[m] = v < INT32_MIN ? INT32_MIN : v > INT32_MAX ? INT32_MAX : (int32_t)v;
        }
    }
    /* constants */
    const int32_t wdt = fmt_dtype(fmt);
    size_t wbytes;
    packed = pack(wdt, q, (size_t)nw, &wbytes);
    wn = fresh(c, W->name, ":q", 0);
    if (!packed || !wn) {
        rc = CERR(CRUCIBLE_E_NOMEM, "out of memory");
        goto out;
    }
    int32_t wq = add_tensor(c, wn, wdt, W);
    if (wq < 0 || (rc = ir_set_data(c->ng, wq, packed, wbytes, c->err, c->errlen)) ||
        (rc = ir_set_quant(c->ng, wq, M > 1 ? 0 : -1, (uint32_t)M, sw, zeros,
                           c->err, c->errlen))) {
        rc = wq < 0 ? wq : rc;
        goto out;
    }
    int32_t in[3] = {x8, wq, -1};
    if (has_b) {
        const cr_tensor *B = &g->tensors[tb >= 0 ? tb : tk];
        bn = fresh(c, B->name, ":q", 0);
        int64_t bd[1] = {M};
        int32_t bt = bn ? ir_add_tensor(c->ng, bn, CRUCIBLE_DT_I32, 1, bd, c->err,
                                        c->errlen)
                        : CERR(CRUCIBLE_E_NOMEM, "out of memory");
        if (bt < 0 ||
            (rc = ir_set_data(c->ng, bt, bq, (size_t)M * 4, c->err, c->errlen)) ||
            (rc = ir_set_quant(c->ng, bt, M > 1 ? 0 : -1, (uint32_t)M, sacc,
                               zeros, c->err, c->errlen))) {
            rc = bt < 0 ? bt : rc;
            goto out;
        }
        in[2] = bt;
    }
    const cr_tensor *Y = &g->tensors[n->outputs[0]];
    an = fresh(c, Y->name, ":acc", 0);
    int32_t acc = an ? add_tensor(c, an, CRUCIBLE_DT_I32, Y)
                     : CERR(CRUCIBLE_E_NOMEM, "out of memory");
    if (acc < 0 ||
        (rc = ir_set_quant(c->ng, acc, M > 1 ? 1 : -1, (uint32_t)M, sacc, zeros,
                           c->err, c->errlen))) {
        rc = acc < 0 ? acc : rc;
        goto out;
    }
    int32_t pn = add_node(c, n->op, n->name, has_b ? 3 : 2, in, acc);
    if (pn < 0 || (rc = copy_attrs(c, n, pn))) {
        rc = pn < 0 ? pn : rc;
        goto out;
    }
    float so;
    int32_t zo;
    if ((rc = calibrated(c, target, &so, &zo))) goto out;
    int32_t y8 = new_q8(c, target, so, zo);
    rn = fresh(c, n->name, "/requantize", 1);
    if (y8 < 0 || !rn) {
        rc = y8 < 0 ? y8 : CERR(CRUCIBLE_E_NOMEM, "out of memory");
        goto out;
    }
    int32_t rq = add_node(c, CRUCIBLE_OP_REQUANTIZE, rn, 1, &acc, y8);
    if (rq < 0 || ir_attr_string(c->ng, rq, "rounding", "fixed_q31")) {
        rc = rq < 0 ? rq : CERR(CRUCIBLE_E_NOMEM, "out of memory");
        goto out;
    }
    quant_layer *l = new_layer(c, n->name, ir_op_name(n->op),
                               g->tensors[target].name, target);
    if (!l) {
        rc = CERR(CRUCIBLE_E_NOMEM, "out of memory");
        goto out;
    }
    l->fmt = fmt;
    l->has_weights = 1;
    l->n_wscales = (uint32_t)M;
    l->wscales = sw;
    sw = NULL;
    l->has_in = l->has_out = 1;
    l->in_scale = sx;
    l->in_zp = c->ng->tensors[x8].zero_points[0];
    l->out_scale = so;
    l->out_zp = zo;
    l->w_sqnr_db = sqnr_db(sig, noise);
    if ((rc = finish_fold(c, act, rq, l))) goto out;
    if (addn >= 0) {
        c->done[addn] = 1;
        l->bias_add = cr_strdup(g->nodes[addn].name);
        if (!l->bias_add) {
            rc = CERR(CRUCIBLE_E_NOMEM, "out of memory");
            goto out;
        }
    }
    rc = 1;
out:
    cr_free(q);
    cr_free(sw);
    cr_free(sacc);
    cr_free(zeros);
    cr_free(bq);
    cr_free(packed);
    cr_free(wn);
    cr_free(bn);
    cr_free(an);
    cr_free(rn);
    return rc;
}

/* An op on int8 activations. how: 0 output parameters from calibration,
 * 1 the input's (data movement, pooling), 2 fixed (so, zo). */
static int q_simple(qctx *c, const cr_node *n, int how, float so, int32_t zo,
                    int rounding, int fold)
{
    const cr_graph *g = c->g;
    uint32_t nd = n->op == CRUCIBLE_OP_CONCAT || n->op == CRUCIBLE_OP_ADD ||
                          n->op == CRUCIBLE_OP_SUB || n->op == CRUCIBLE_OP_MUL
                      ? n->n_inputs
                      : 1;
    /* data inputs must already be int8 (no quantize just for this op) */
    for (uint32_t k = 0; k < nd; k++)
        if (n->inputs[k] < 0 || c->q8[n->inputs[k]] < 0) return 0;
    int32_t target = n->outputs[0], act = -1;
    if (fold) fold_target(c, n, &target, &act);
    if (!c->st[target].seen && how == 0) return 0;
    int32_t *in = cr_calloc(n->n_inputs + 1, sizeof *in);
    if (!in) return CERR(CRUCIBLE_E_NOMEM, "out of memory");
    int rc = CRUCIBLE_OK;
    for (uint32_t k = 0; k < n->n_inputs && !rc; k++) {
        int32_t t = n->inputs[k];
        in[k] = t < 0 ? -1 : k < nd ? c->q8[t] : need_float(c, t);
        if (in[k] < -1) rc = in[k];
    }
    /* (copied: adding tensors below may move the tensor array) */
    const float si = c->ng->tensors[in[0]].scales[0];
    const int32_t zi = c->ng->tensors[in[0]].zero_points[0];
    if (!rc) {
        if (how == 1) {
            so = si;
            zo = zi;
        } else if (how == 0) {
            rc = calibrated(c, target, &so, &zo);
        }
    }
    int32_t y8 = rc ? -1 : new_q8(c, target, so, zo);
    if (!rc && y8 < 0) rc = y8;
    int32_t nn = rc ? -1 : add_node(c, n->op, n->name, n->n_inputs, in, y8);
    if (!rc && nn < 0) rc = nn;
    if (!rc) rc = copy_attrs(c, n, nn);
    if (!rc && rounding && ir_attr_string(c->ng, nn, "rounding", "fixed_q31"))
        rc = CERR(CRUCIBLE_E_NOMEM, "out of memory");
    if (!rc && n->op == CRUCIBLE_OP_PAD &&
        ir_attr_float(c->ng, nn, "value", (double)zo)) /* real 0 */
        rc = CERR(CRUCIBLE_E_NOMEM, "out of memory");
    quant_layer *l = NULL;
    if (!rc) {
        l = new_layer(c, n->name, ir_op_name(n->op), g->tensors[target].name,
                      target);
        if (!l) rc = CERR(CRUCIBLE_E_NOMEM, "out of memory");
    }
    if (!rc) {
        l->has_in = l->has_out = 1;
        l->in_scale = si;
        l->in_zp = zi;
        l->out_scale = so;
        l->out_zp = zo;
        rc = finish_fold(c, act, nn, l);
    }
    cr_free(in);
    return rc ? rc : 1;
}

static int try_quant(qctx *c, const cr_node *n, quant_fmt fmt)
{
    if (fmt == QF_FLOAT || n->n_outputs != 1) return 0;
    const cr_graph *g = c->g;
    int32_t x = n->n_inputs ? n->inputs[0] : -1;
    if (x < 0 || g->tensors[n->outputs[0]].dtype != CRUCIBLE_DT_F32 ||
        g->tensors[x].dtype != CRUCIBLE_DT_F32)
        return 0;
    switch (n->op) {
    case CRUCIBLE_OP_DENSE: case CRUCIBLE_OP_CONV2D:
        return n->n_inputs >= 2 ? q_product(c, n, fmt) : 0;
    case CRUCIBLE_OP_RELU: case CRUCIBLE_OP_LEAKY_RELU:
        return q_simple(c, n, 0, 0, 0, 1, 0);
    case CRUCIBLE_OP_CLIP:
        return n->n_inputs == 1 ? q_simple(c, n, 0, 0, 0, 1, 0) : 0;
    case CRUCIBLE_OP_MAX_POOL2D:
        return q_simple(c, n, 1, 0, 0, 0, 0);
    case CRUCIBLE_OP_AVG_POOL2D:
        if (ir_attr_i(n, "ceil_mode", 0) && ir_attr_i(n, "count_include_pad", 0))
            return 0;
        return q_simple(c, n, 1, 0, 0, 1, 0);
    case CRUCIBLE_OP_RESHAPE: case CRUCIBLE_OP_TRANSPOSE:
    case CRUCIBLE_OP_SLICE: case CRUCIBLE_OP_GATHER:
        return q_simple(c, n, 1, 0, 0, 0, 0);
    case CRUCIBLE_OP_PAD:
        if (strcmp(ir_attr_s(n, "mode", "constant"), "constant") ||
            ir_attr_f(n, "value", 0.0) != 0.0)
            return 0;
        return q_simple(c, n, 1, 0, 0, 0, 0);
    case CRUCIBLE_OP_CONCAT:
        return q_simple(c, n, 0, 0, 0, 1, 0);
    case CRUCIBLE_OP_ADD: case CRUCIBLE_OP_SUB: case CRUCIBLE_OP_MUL:
        return n->n_inputs == 2 ? q_simple(c, n, 0, 0, 0, 1, 1) : 0;
    case CRUCIBLE_OP_SIGMOID:
        return q_simple(c, n, 2, 1.0f / 256, -128, 1, 0);
    case CRUCIBLE_OP_TANH:
        return q_simple(c, n, 2, 1.0f / 128, 0, 1, 0);
    case CRUCIBLE_OP_SOFTMAX:
        return q_simple(c, n, 2, 1.0f / 256, -128, 1, 0);
    default:
        return 0;
    }
}

/* The node unchanged, on float values. */
static int emit_float(qctx *c, const cr_node *n)
{
    int32_t *in = cr_calloc(n->n_inputs + 1, sizeof *in);
    if (!in) return CERR(CRUCIBLE_E_NOMEM, "out of memory");
    int rc = CRUCIBLE_OK;
    for (uint32_t k = 0; !rc && k < n->n_inputs; k++) {
        in[k] = n->inputs[k] < 0 ? -1 : need_float(c, n->inputs[k]);
        if (in[k] < -1) rc = in[k];
    }
    int32_t o = n->outputs[0];
    const cr_tensor *y = &c->g->tensors[o];
    int32_t k = rc ? -1 : add_tensor(c, y->name, y->dtype, y);
    if (!rc && k < 0) rc = k;
    if (!rc && y->quant_count)
        rc = ir_set_quant(c->ng, k, y->quant_axis, y->quant_count, y->scales,
                          y->zero_points, c->err, c->errlen);
    int32_t nn = rc ? -1 : add_node(c, n->op, n->name, n->n_inputs, in, k);
    if (!rc && nn < 0) rc = nn;
    if (!rc) rc = copy_attrs(c, n, nn);
    if (!rc) {
        c->f2[o] = k;
        c->rep->n_float_nodes++;
    }
    cr_free(in);
    return rc;
}

/* Arrived quantised? Then it is kept as it is. */
static int arrived_quantised(const cr_graph *g)
{
    for (size_t i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].quant_count) return 1;
    for (size_t i = 0; i < g->n_nodes; i++) {
        int32_t op = g->nodes[i].op;
        if (op == CRUCIBLE_OP_QUANTIZE || op == CRUCIBLE_OP_DEQUANTIZE ||
            op == CRUCIBLE_OP_REQUANTIZE)
            return 1;
    }
    return 0;
}

/* Report entries of a model that arrived quantised: its integer products. */
static int report_kept(const cr_graph *g, quant_report *r)
{
    for (size_t i = 0; i < g->n_nodes; i++) {
        const cr_node *n = &g->nodes[i];
        if ((n->op != CRUCIBLE_OP_DENSE && n->op != CRUCIBLE_OP_CONV2D &&
             n->op != CRUCIBLE_OP_MATMUL) || n->n_inputs < 2 ||
            n->inputs[0] < 0 || n->inputs[1] < 0)
            continue;
        const cr_tensor *x = &g->tensors[n->inputs[0]], *w = &g->tensors[n->inputs[1]];
        if (x->dtype == CRUCIBLE_DT_F32) continue;
        if (cr_grow((void **)&r->layers, &r->cap_layers, r->n_layers + 1,
                    sizeof(quant_layer)))
            return -1;
        quant_layer *l = &r->layers[r->n_layers++];
        memset(l, 0, sizeof *l);
        l->node = cr_strdup(n->name);
        l->op = cr_strdup(ir_op_name(n->op));
        l->tensor = cr_strdup(g->tensors[n->outputs[0]].name);
        l->fmt = w->dtype == CRUCIBLE_DT_I4 ? QF_INT4
                 : w->dtype == CRUCIBLE_DT_TERNARY ? QF_TERNARY
                 : w->dtype == CRUCIBLE_DT_BINARY ? QF_BINARY : QF_INT8;
        l->has_weights = 1;
        l->w_sqnr_db = l->out_sqnr_db = NAN;
        if (w->quant_count) {
            l->n_wscales = w->quant_count;
            l->wscales = cr_malloc(w->quant_count * sizeof(float));
            if (l->wscales) memcpy(l->wscales, w->scales, w->quant_count * sizeof(float));
        }
        if (x->quant_count) {
            l->has_in = 1;
            l->in_scale = x->scales[0];
            l->in_zp = x->zero_points[0];
        }
        /* the output: through the requantize reading the accumulator */
        for (size_t j = 0; j < g->n_nodes; j++)
            if (g->nodes[j].op == CRUCIBLE_OP_REQUANTIZE &&
                g->nodes[j].n_inputs && g->nodes[j].inputs[0] == n->outputs[0]) {
                const cr_tensor *y = &g->tensors[g->nodes[j].outputs[0]];
                if (y->quant_count) {
                    l->has_out = 1;
                    l->out_scale = y->scales[0];
                    l->out_zp = y->zero_points[0];
                }
            }
        if (!l->node || !l->op || !l->tensor) return -1;
    }
    return 0;
}

/* Runs both graphs on the samples and fills the SQNR figures. */
static int measure(qctx *c, const cr_array *samples, size_t ns)
{
    const cr_graph *g = c->g, *ng = c->ng;
    quant_report *r = c->rep;
    cr_array *fv = cr_calloc(g->n_tensors + 1, sizeof *fv);
    cr_array *qv = cr_calloc(ng->n_tensors + 1, sizeof *qv);
    double *sig = cr_calloc(r->n_layers + 1, sizeof(double));
    double *noi = cr_calloc(r->n_layers + 1, sizeof(double));
    int rc = CRUCIBLE_OK;
    double osig = 0, onoi = 0;
    if (!fv || !qv || !sig || !noi) rc = CERR(CRUCIBLE_E_NOMEM, "out of memory");
    for (size_t s = 0; !rc && s < ns; s++) {
        char e2[1024];
        const cr_array *in = &samples[s * g->n_inputs];
        if ((rc = interp_run_all(g, in, g->n_inputs, fv, e2, sizeof e2)) ||
            (rc = interp_run_all(ng, in, ng->n_inputs, qv, e2, sizeof e2))) {
            (void)CERR(rc, "measuring sample %zu: %s", s, e2);
            break;
        }
        for (size_t i = 0; i < r->n_layers; i++) {
            int32_t t = c->lay_t[i];
            if (t < 0 || c->q8[t] < 0) continue;
            const cr_array *a = &fv[t], *b = &qv[c->q8[t]];
            const cr_tensor *qt = &ng->tensors[c->q8[t]];
            if (!a->data || !b->data || a->dtype != CRUCIBLE_DT_F32) continue;
            size_t m = a->bytes / 4;
            const float *pa = a->data;
            const int8_t *pb = b->data;
            for (size_t j = 0; j < m && j < b->bytes; j++) {
                double d = qt->scales[0] * ((double)pb[j] - qt->zero_points[0]);
                sig[i] += (double)pa[j] * pa[j];
                noi[i] += (pa[j] - d) * (pa[j] - d);
            }
        }
        for (size_t k = 0; k < g->n_outputs; k++) {
            int32_t a = g->outputs[k], b = ng->outputs[k];
            if (fv[a].dtype != CRUCIBLE_DT_F32 || qv[b].dtype != CRUCIBLE_DT_F32)
                continue;
            const float *pa = fv[a].data, *pb = qv[b].data;
            size_t m = fv[a].bytes / 4, ba = 0, bb = 0;
            for (size_t j = 0; j < m; j++) {
                osig += (double)pa[j] * pa[j];
                onoi += ((double)pa[j] - pb[j]) * ((double)pa[j] - pb[j]);
                if (pa[j] > pa[ba]) ba = j;
                if (pb[j] > pb[bb]) bb = j;
            }
            if (k == 0 && ba == bb) r->top1_agree++;
        }
        for (size_t t = 0; t < g->n_tensors; t++) tio_free(&fv[t]);
        for (size_t t = 0; t < ng->n_tensors; t++) tio_free(&qv[t]);
    }
    for (size_t i = 0; !rc && i < r->n_layers; i++)
        if (c->lay_t[i] >= 0) r->layers[i].out_sqnr_db = sqnr_db(sig[i], noi[i]);
    r->out_sqnr_db = sqnr_db(osig, onoi);
    cr_free(fv);
    cr_free(qv);
    cr_free(sig);
    cr_free(noi);
    return rc;
}

static void count_uses(const cr_graph *g, int32_t *uses)
{
    for (size_t i = 0; i < g->n_nodes; i++)
        for (uint32_t k = 0; k < g->nodes[i].n_inputs; k++)
            if (g->nodes[i].inputs[k] >= 0) uses[g->nodes[i].inputs[k]]++;
}

/* Checks [layer.*] sections with a quant key name real nodes. */
static int check_config(qctx *c, size_t *n_keys)
{
    const cr_kvdoc *d = c->o->config;
    *n_keys = 0;
    if (!d) return CRUCIBLE_OK;
    for (uint32_t i = 0; i < d->doc.count; i++) {
        const crucible_kv *kv = d->doc.entries[i];
        if (strncmp(kv->section, "layer.", 6) || strcmp(kv->key, "quant")) continue;
        (*n_keys)++;
        int found = 0;
        for (size_t k = 0; !found && k < c->g->n_nodes; k++)
            if (!strcasecmp(c->g->nodes[k].name, kv->section + 6)) found = 1;
        if (!found)
            return CERR(CRUCIBLE_E_INVALID,
                        "config %s: [%s] quant: the model has no node '%s'",
                        d->doc.path ? d->doc.path : "", kv->section,
                        kv->section + 6);
    }
    return CRUCIBLE_OK;
}

int quant_graph(const cr_graph *g, const cr_array *samples, size_t n_samples,
                const quant_opts *o, cr_graph **out, quant_report *rep,
                char *err, size_t errlen)
{
    quant_report local;
    quant_report *r = rep ? rep : &local;
    memset(r, 0, sizeof *r);
    *out = NULL;
    r->method = o->method == QM_PERCENTILE ? "percentile" : "minmax";
    r->mode = cr_strdup(o->mixed ? "mixed" : quant_fmt_name(o->weights));
    r->n_samples = n_samples;
    r->out_sqnr_db = NAN;
    if (!r->mode) return QERR(CRUCIBLE_E_NOMEM, "out of memory");
    int rc = CRUCIBLE_OK;
    if (arrived_quantised(g)) {
        r->kept = 1;
        if (report_kept(g, r)) rc = QERR(CRUCIBLE_E_NOMEM, "out of memory");
        if (!rep) quant_report_free(r);
        return rc;
    }
    if (!n_samples) {
        if (!rep) quant_report_free(r);
        return QERR(CRUCIBLE_E_INVALID, "no calibration samples");
    }
    size_t nt = g->n_tensors;
    qctx cc, *c = &cc;
    memset(c, 0, sizeof *c);
    c->g = g;
    c->o = o;
    c->rep = r;
    c->err = err;
    c->errlen = errlen;
    c->st = cr_calloc(nt + 1, sizeof *c->st);
    c->f2 = cr_malloc((nt + 1) * sizeof(int32_t));
    c->q8 = cr_malloc((nt + 1) * sizeof(int32_t));
    c->uses = cr_calloc(nt + 1, sizeof(int32_t));
    c->done = cr_calloc(g->n_nodes + 1, 1);
    c->ng = ir_new();
    if (!c->st || !c->f2 || !c->q8 || !c->uses || !c->done || !c->ng) {
        rc = QERR(CRUCIBLE_E_NOMEM, "out of memory");
        goto out;
    }
    for (size_t t = 0; t < nt; t++) c->f2[t] = c->q8[t] = -1;
    count_uses(g, c->uses);
    size_t n_keys;
    if ((rc = check_config(c, &n_keys))) goto out;
    if (o->mixed && !n_keys) {
        rc = QERR(CRUCIBLE_E_INVALID,
                  "--quant mixed needs per-layer settings: [layer.<node>] "
                  "quant = int8|int4|ternary|binary|float in the config");
        goto out;
    }
    if ((rc = calibrate(g, samples, n_samples, o, c->st, err, errlen))) goto out;

    if (g->name && (c->ng->name = cr_strdup(g->name)) == NULL) {
        rc = QERR(CRUCIBLE_E_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < g->n_meta; i++)
        if ((rc = ir_set_meta(c->ng, g->meta[i].key, g->meta[i].value))) goto out;
    for (size_t i = 0; i < g->n_inputs; i++) {
        int32_t t = g->inputs[i];
        int32_t k = add_tensor(c, g->tensors[t].name, g->tensors[t].dtype,
                               &g->tensors[t]);
        if (k < 0 || (rc = ir_mark_input(c->ng, k))) {
            rc = k < 0 ? k : rc;
            goto out;
        }
        c->f2[t] = k;
    }
    for (size_t i = 0; i < g->n_nodes; i++) {
        if (c->done[i]) continue;
        const cr_node *n = &g->nodes[i];
        quant_fmt f = layer_fmt(c, n, &rc);
        if (rc) goto out;
        int q = try_quant(c, n, f);
        if (q < 0) {
            rc = q;
            goto out;
        }
        if (!q && (rc = emit_float(c, n))) goto out;
    }
    for (size_t i = 0; i < g->n_outputs; i++) {
        int32_t k = need_float(c, g->outputs[i]);
        if (k < 0 || (rc = ir_mark_output(c->ng, k))) {
            rc = k < 0 ? k : rc;
            goto out;
        }
    }
    {
        char note[256];
        snprintf(note, sizeof note,
                 "crucible quant: %s weights, int8 activations (%s), %zu "
                 "calibration samples",
                 r->mode, o->method == QM_PERCENTILE ? "percentile" : "min/max",
                 n_samples);
        if ((rc = ir_set_meta(c->ng, "quantisation", note))) goto out;
    }
    char e2[1024];
    if ((rc = ir_validate(c->ng, e2, sizeof e2)) ||
        (rc = ir_infer_shapes(c->ng, e2, sizeof e2))) {
        (void)QERR(rc, "internal: the quantised graph is invalid: %s", e2);
        goto out;
    }
    if ((rc = measure(c, samples, n_samples))) goto out;
    *out = c->ng;
    c->ng = NULL;
out:
    ir_free(c->ng);
    cr_free(c->st);
    cr_free(c->f2);
    cr_free(c->q8);
    cr_free(c->uses);
    cr_free(c->done);
    cr_free(c->lay_t);
    if (!rep || (rc && rep)) quant_report_free(r);
    return rc;
}

void quant_report_free(quant_report *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n_layers; i++) {
        cr_free(r->layers[i].node);
        cr_free(r->layers[i].op);
        cr_free(r->layers[i].tensor);
        cr_free(r->layers[i].wscales);
        cr_free(r->layers[i].folded_node);
        cr_free(r->layers[i].bias_add);
    }
    cr_free(r->layers);
    cr_free(r->mode);
    memset(r, 0, sizeof *r);
}

/* ---- reports ----------------------------------------------------------------- */

static void jq(jbuf *j, const char *key, int has, float s, int32_t zp)
{
    jb_printf(j, ",\"%s\":", key);
    if (!has) {
        jb_puts(j, "null");
        return;
    }
    jb_puts(j, "{\"scale\":");
    jb_jnum(j, (double)s);
    jb_printf(j, ",\"zero_point\":%d,\"bits\":8}", (int)zp);
}

void quant_report_json(const quant_report *r, const char *model, jbuf *j)
{
    jb_puts(j, "{\"model\":");
    jb_jstr(j, model);
    jb_printf(j, ",\"kept\":%s,\"mode\":", r->kept ? "true" : "false");
    jb_jstr(j, r->mode);
    jb_puts(j, ",\"method\":");
    jb_jstr(j, r->kept ? NULL : r->method);
    jb_printf(j, ",\"samples\":%zu,\"layers\":[", r->n_samples);
    for (size_t i = 0; i < r->n_layers; i++) {
        const quant_layer *l = &r->layers[i];
        jb_puts(j, i ? ",{\"node\":" : "{\"node\":");
        jb_jstr(j, l->node);
        jb_puts(j, ",\"op\":");
        jb_jstr(j, l->op);
        jb_puts(j, ",\"tensor\":");
        jb_jstr(j, l->tensor);
        jb_puts(j, ",\"weights\":");
        if (l->has_weights) {
            jb_puts(j, "{\"format\":");
            jb_jstr(j, quant_fmt_name(l->fmt));
            jb_printf(j, ",\"bits\":%d,\"scales\":[", quant_fmt_bits(l->fmt));
            for (uint32_t k = 0; k < l->n_wscales; k++) {
                if (k) jb_putc(j, ',');
                jb_jnum(j, (double)l->wscales[k]);
            }
            jb_puts(j, "],\"zero_point\":0}");
        } else {
            jb_puts(j, "null");
        }
        jq(j, "input", l->has_in, l->in_scale, l->in_zp);
        jq(j, "output", l->has_out, l->out_scale, l->out_zp);
        jb_puts(j, ",\"folded\":");
        jb_jstr(j, l->folded ? l->folded_node : NULL);
        jb_puts(j, ",\"bias_add\":");
        jb_jstr(j, l->bias_add);
        jb_puts(j, ",\"weight_sqnr_db\":");
        jb_jnum(j, l->w_sqnr_db);
        jb_puts(j, ",\"output_sqnr_db\":");
        if (isinf(l->out_sqnr_db) && l->out_sqnr_db > 0) jb_puts(j, "\"inf\"");
        else jb_jnum(j, l->out_sqnr_db);
        jb_putc(j, '}');
    }
    jb_printf(j, "],\"float_nodes\":%zu,\"output_sqnr_db\":", r->n_float_nodes);
    jb_jnum(j, r->out_sqnr_db);
    jb_printf(j, ",\"top1_agreement\":%zu}", r->top1_agree);
}

static void fmt_q(char *b, size_t n, int has, float s, int32_t zp)
{
    if (has) snprintf(b, n, "%.6g/%d", (double)s, (int)zp);
    else snprintf(b, n, "-");
}

static void fmt_db(char *b, size_t n, double v)
{
    if (isnan(v)) snprintf(b, n, "-");
    else if (isinf(v)) snprintf(b, n, v > 0 ? "exact" : "-inf");
    else snprintf(b, n, "%.1f dB", v);
}

void quant_report_text(const quant_report *r, FILE *f)
{
    if (r->kept) {
        fprintf(f, "the model arrives quantised: its parameters are kept "
                   "(crucible never re-quantises)\n");
    } else {
        fprintf(f, "%s weights, int8 activations, ranges by %s, %zu "
                   "calibration sample%s\n",
                r->mode, r->method, r->n_samples, r->n_samples == 1 ? "" : "s");
    }
    fprintf(f, "  %-22s %-10s %-8s %-21s %-17s %-17s %-9s %s\n", "layer", "op",
            "weights", "weight scales", "in scale/zp", "out scale/zp",
            "w SQNR", "out SQNR");
    for (size_t i = 0; i < r->n_layers; i++) {
        const quant_layer *l = &r->layers[i];
        char w[32] = "-", ws[64] = "-", qi[48], qo[48], d1[32], d2[32];
        if (l->has_weights) {
            snprintf(w, sizeof w, "%s", quant_fmt_name(l->fmt));
            float mn = INFINITY, mx = 0;
            for (uint32_t k = 0; k < l->n_wscales; k++) {
                if (l->wscales[k] < mn) mn = l->wscales[k];
                if (l->wscales[k] > mx) mx = l->wscales[k];
            }
            if (l->n_wscales)
                snprintf(ws, sizeof ws, "%u: %.3g..%.3g", l->n_wscales,
                         (double)mn, (double)mx);
        }
        fmt_q(qi, sizeof qi, l->has_in, l->in_scale, l->in_zp);
        fmt_q(qo, sizeof qo, l->has_out, l->out_scale, l->out_zp);
        fmt_db(d1, sizeof d1, l->w_sqnr_db);
        fmt_db(d2, sizeof d2, l->out_sqnr_db);
        fprintf(f, "  %-22s %-10s %-8s %-21s %-17s %-17s %-9s %s%s%s%s%s\n",
                l->node, l->op, w, ws, qi, qo, d1, d2,
                l->bias_add ? "  +" : "", l->bias_add ? l->bias_add : "",
                l->folded ? "  +" : "", l->folded ? l->folded_node : "");
    }
    if (!r->kept) {
        char d[32];
        fmt_db(d, sizeof d, r->out_sqnr_db);
        fprintf(f, "  outputs: SQNR %s vs float; top-1 agreement %zu/%zu on "
                   "the calibration samples; %zu node%s left in float\n",
                d, r->top1_agree, r->n_samples, r->n_float_nodes,
                r->n_float_nodes == 1 ? "" : "s");
    }
}

/* ---- int8 interface ------------------------------------------------------
 * quant_int8_io: a quantised graph keeps a float interface (a quantize
 * node after each input, a dequantize node before each output). Targets
 * that exchange int8 with the outside (MCU firmware, FPGA streams) want
 * the int8 tensors themselves as the interface: each float input read by
 * exactly one quantize node is replaced by that node's int8 output, and
 * each float output made by a dequantize node by the dequantize's int8
 * input. The removed nodes' tensors stay (unused). Ports that do not have
 * this shape are left as they are. Returns the number of ports changed. */
int quant_int8_io(cr_graph *g, char *err, size_t errlen)
{
    size_t nn = g->n_nodes;
    uint8_t *drop = cr_calloc(nn ? nn : 1, 1);
    if (!drop) {
        snprintf(err, errlen, "out of memory");
        return CRUCIBLE_E_NOMEM;
    }
    int changed = 0;
    for (size_t i = 0; i < g->n_inputs; i++) {
        int32_t t = g->inputs[i];
        int32_t reader = -1, readers = 0;
        for (size_t k = 0; k < nn; k++)
            for (uint32_t a = 0; a < g->nodes[k].n_inputs; a++)
                if (g->nodes[k].inputs[a] == t) {
                    readers++;
                    reader = (int32_t)k;
                }
        if (readers != 1 || g->nodes[reader].op != CRUCIBLE_OP_QUANTIZE ||
            (g->tensors[t].flags & CRUCIBLE_TENSOR_OUTPUT))
            continue;
        int32_t q = g->nodes[reader].outputs[0];
        if (g->tensors[q].dtype != CRUCIBLE_DT_I8 &&
            g->tensors[q].dtype != CRUCIBLE_DT_U8)
            continue;
        drop[reader] = 1;
        g->tensors[t].flags &= ~(uint32_t)CRUCIBLE_TENSOR_INPUT;
        g->tensors[q].flags |= CRUCIBLE_TENSOR_INPUT;
        g->inputs[i] = q;
        changed++;
    }
    for (size_t i = 0; i < g->n_outputs; i++) {
        int32_t t = g->outputs[i];
        int32_t p = ir_producer(g, t);
        if (p < 0 || g->nodes[p].op != CRUCIBLE_OP_DEQUANTIZE || drop[p]) continue;
        int32_t q = g->nodes[p].inputs[0];
        if (q < 0 || (g->tensors[q].flags & CRUCIBLE_TENSOR_INPUT) ||
            (g->tensors[q].flags & CRUCIBLE_TENSOR_OUTPUT))
            continue;
        drop[p] = 1;
        g->tensors[t].flags &= ~(uint32_t)CRUCIBLE_TENSOR_OUTPUT;
        g->tensors[q].flags |= CRUCIBLE_TENSOR_OUTPUT;
        g->outputs[i] = q;
        changed++;
    }
    /* compact the node array */
    size_t w = 0;
    for (size_t k = 0; k < nn; k++) {
        if (!drop[k]) {
            g->nodes[w++] = g->nodes[k];
            continue;
        }
        cr_node *n = &g->nodes[k];
        cr_free(n->name);
        cr_free(n->inputs);
        cr_free(n->outputs);
        for (uint32_t a = 0; a < n->n_attrs; a++) {
            cr_free(n->attrs[a].name);
            cr_free(n->attrs[a].ints);
            cr_free(n->attrs[a].floats);
            cr_free(n->attrs[a].s);
        }
        cr_free(n->attrs);
    }
    g->n_nodes = w;
    cr_free(drop);
    int rc = ir_validate(g, err, errlen);
    return rc < 0 ? rc : changed;
}
