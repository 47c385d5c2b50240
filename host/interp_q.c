/* interp_q.c - integer execution with TFLite int8 semantics: the ops that
 * carry rounding = "fixed_q31" (requantize, quantize, relu, clip,
 * leaky_relu, sigmoid, tanh, softmax, add, sub, mul, avg_pool2d, concat)
 * and int8 max_pool2d. The arithmetic is the freestanding kernel library's
 * (sdk/kernels, crucible/kernels.h): this file only turns the tensors'
 * scales and zero points into the kernels' integer parameters, the way
 * TFLite's Prepare functions do, and calls the kernels.
 *
 * Semantics: docs/ir-ops.md ("Quantised tensors", "fixed_q31") and
 * docs/integer-semantics.md ("Host-side parameters"). */
#include "interp.h"

#include <crucible/kernels.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define NERR(...) interp_node_err(err, errlen, n, CRUCIBLE_E_INVALID, __VA_ARGS__)
#define NUNSUP(...)                                                         \
    interp_node_err(err, errlen, n, CRUCIBLE_E_UNSUPPORTED, __VA_ARGS__)

/* Work is handed to the kernels in chunks whose sizes fit int32. */
#define CHUNK ((uint64_t)1 << 30)

static uint64_t numel(const cr_array *a)
{
    uint64_t e = 1;
    for (int32_t i = 0; i < a->rank; i++) e *= (uint64_t)a->dims[i];
    return e;
}

/* ---- multipliers -------------------------------------------------------- */

int interp_q_multiplier(double r, int32_t *mult, int *shift)
{
    *mult = 0;
    *shift = 0;
    if (!(r >= 0.0) || !isfinite(r)) return CRUCIBLE_E_INVALID;
    if (r == 0.0) return CRUCIBLE_OK;
    int e = 0;
    double f = frexp(r, &e);              /* r = f * 2^e, f in [0.5, 1) */
    double q = round(f * 2147483648.0);   /* exact scaling; half away */
    int64_t qf = (int64_t)q;              /* in [2^30, 2^31] */
    if (qf == ((int64_t)1 << 31)) {
        qf /= 2;
        e++;
    }
    if (e < -31) return CRUCIBLE_OK; /* flushed to zero, as TFLite does */
    if (e > 31) return CRUCIBLE_E_INVALID;
    *mult = (int32_t)qf;
    *shift = e;
    return CRUCIBLE_OK;
}

static int mult_of(const cr_node *n, double r, const char *what,
                   int32_t *m, int32_t *s, char *err, size_t errlen)
{
    int sh;
    if (interp_q_multiplier(r, m, &sh))
        return NUNSUP("the %s factor %g cannot be a Q31 multiplier with a "
                      "shift in -31..31",
                      what, r);
    *s = sh;
    return CRUCIBLE_OK;
}

/* ---- small helpers ------------------------------------------------------ */

static int is_q31(const cr_node *n)
{
    const cr_attr *a = ir_attr(n, "rounding");
    return a && a->type == CRUCIBLE_ATTR_STRING && !strcmp(a->s, "fixed_q31");
}

static void dt_range(int32_t dt, int32_t *lo, int32_t *hi)
{
    switch (dt) {
    case CRUCIBLE_DT_U8: *lo = 0; *hi = 255; break;
    case CRUCIBLE_DT_I16: *lo = INT16_MIN; *hi = INT16_MAX; break;
    case CRUCIBLE_DT_I32: *lo = INT32_MIN; *hi = INT32_MAX; break;
    default: *lo = -128; *hi = 127; break;
    }
}

/* Per-tensor (scale, zero point) of graph tensor ti holding v; the zero
 * point must lie in v's dtype range. */
static int pt_params(const cr_graph *g, const cr_node *n, int32_t ti,
                     const cr_array *v, float *s, int32_t *zp, char *err,
                     size_t errlen)
{
    const cr_tensor *t = &g->tensors[ti];
    int rc = interp_quant_check(n, t, v, err, errlen);
    if (rc) return rc;
    if (t->quant_count != 1)
        return NUNSUP("tensor %s must be quantised per tensor (it has %u "
                      "scales)",
                      t->name, t->quant_count);
    int32_t lo, hi;
    dt_range(v->dtype, &lo, &hi);
    if (t->zero_points[0] < lo || t->zero_points[0] > hi)
        return NERR("tensor %s: zero point %d is outside the %s range",
                    t->name, (int)t->zero_points[0], ir_dtype_name(v->dtype));
    *s = t->scales[0];
    *zp = t->zero_points[0];
    return CRUCIBLE_OK;
}

static int has_quant(const cr_graph *g, int32_t ti)
{
    return ti >= 0 && g->tensors[ti].quant_count > 0;
}

/* A float attribute (FLOAT or INT), rounded to f32; absent -> dflt. */
static int attr_f32(const cr_node *n, const char *name, float dflt, float *v,
                    char *err, size_t errlen)
{
    const cr_attr *a = ir_attr(n, name);
    if (!a) {
        *v = dflt;
        return CRUCIBLE_OK;
    }
    if (a->type == CRUCIBLE_ATTR_FLOAT)
        *v = (float)a->f;
    else if (a->type == CRUCIBLE_ATTR_INT)
        *v = (float)a->i;
    else
        return NERR("attribute %s must be a number", name);
    if (*v != *v) return NERR("attribute %s is NaN", name);
    return CRUCIBLE_OK;
}

/* TFLite's quantised activation bound: zp + (int32)round(f / scale), the
 * division and the rounding (half away from zero) in f32, clamped to
 * [qlo, qhi]. Infinite bounds give the ends of the range. */
static int32_t q_bound(float f, float scale, int32_t zp, int32_t qlo,
                       int32_t qhi)
{
    float v = roundf(f / scale);
    double d = (double)v + (double)zp;
    if (!(d >= (double)qlo)) return d != d ? zp : qlo;
    if (d > (double)qhi) return qhi;
    return (int32_t)d;
}

/* Activation clamp of an op writing a tensor with (s, zp) and dtype range
 * [qlo, qhi]: attributes min / max (real values; absent = unbounded), or
 * for relu min 0, for clip the optional scalar inputs 1 and 2. */
static int act_range(const cr_node *n, const cr_array *const *in, float s,
                     int32_t zp, int32_t qlo, int32_t qhi, int32_t *lo,
                     int32_t *hi, char *err, size_t errlen)
{
    float fmin, fmax;
    int rc;
    if ((rc = attr_f32(n, "min", n->op == CRUCIBLE_OP_RELU ? 0.0f : -INFINITY,
                       &fmin, err, errlen)) ||
        (rc = attr_f32(n, "max", INFINITY, &fmax, err, errlen)))
        return rc;
    if (n->op == CRUCIBLE_OP_CLIP) {
        for (uint32_t k = 1; k < 3 && k < n->n_inputs; k++) {
            if (!in[k]) continue;
            if (in[k]->dtype != CRUCIBLE_DT_F32 || numel(in[k]) != 1)
                return NUNSUP("clip bound input %u must be an f32 scalar", k);
            float v;
            memcpy(&v, in[k]->data, 4);
            if (k == 1) fmin = v;
            else fmax = v;
        }
    }
    *lo = fmin == -INFINITY ? qlo : q_bound(fmin, s, zp, qlo, qhi);
    *hi = fmax == INFINITY ? qhi : q_bound(fmax, s, zp, qlo, qhi);
    if (*lo > *hi)
        return NERR("the activation range [%g, %g] is empty after "
                    "quantisation ([%d, %d])",
                    (double)fmin, (double)fmax, (int)*lo, (int)*hi);
    return CRUCIBLE_OK;
}

static int need_i8(const cr_node *n, const cr_array *const *in,
                   const cr_array *o, uint32_t n_in, char *err,
                   size_t errlen)
{
    for (uint32_t k = 0; k < n_in; k++)
        if (in[k] && in[k]->dtype != CRUCIBLE_DT_I8)
            return NUNSUP("input %u is %s; the integer %s runs on i8", k,
                          ir_dtype_name(in[k]->dtype), ir_op_name(n->op));
    if (o->dtype != CRUCIBLE_DT_I8)
        return NUNSUP("output is %s; the integer %s produces i8",
                      ir_dtype_name(o->dtype), ir_op_name(n->op));
    return CRUCIBLE_OK;
}

/* i8 -> i8 requantisation of ne elements with one multiplier, in chunks. */
static int requant_i8(const cr_node *n, const int8_t *x, int8_t *y,
                      uint64_t ne, int32_t zin, int32_t zout, int32_t m,
                      int32_t s, int32_t lo, int32_t hi, char *err,
                      size_t errlen)
{
    for (uint64_t at = 0; at < ne; at += CHUNK) {
        uint64_t k = ne - at < CHUNK ? ne - at : CHUNK;
        crk_requant_params p = {1, 1, (int32_t)k, zin, zout, lo, hi, 0, &m,
                                &s};
        if (crk_requantize_i8_i8(&p, x + at, y + at) != CRK_OK)
            return NERR("the kernel refused the parameters (zero points "
                        "%d, %d, shift %d)",
                        (int)zin, (int)zout, (int)s);
    }
    return CRUCIBLE_OK;
}

/* ---- requantize ---------------------------------------------------------- */

/* The effective input scales (double) of the fixed_q31 requantize node n,
 * per slice of its input tensor (inner / count as interp_quant_layout).
 * When the input is the accumulator of an integer dense / matmul / conv2d,
 * TFLite's rule applies: s = (double)x_scale * (double)w_scale[c], and the
 * accumulator's own (f32) scale must equal that product rounded to f32.
 * Otherwise s = the input tensor's scale. *sc has count entries (free). */
static int eff_scales(const cr_graph *g, const cr_node *n,
                      const cr_array *x, double **sc, char *err,
                      size_t errlen)
{
    const int32_t ti = n->inputs[0];
    const cr_tensor *t = &g->tensors[ti];
    int rc = interp_quant_check(n, t, x, err, errlen);
    if (rc) return rc;
    uint32_t cnt = t->quant_count;
    double *s = cr_calloc(cnt, sizeof *s);
    if (!s) return interp_node_err(err, errlen, n, CRUCIBLE_E_NOMEM, "out of memory");
    for (uint32_t c = 0; c < cnt; c++) s[c] = (double)t->scales[c];
    int32_t pi = ir_producer(g, ti);
    const cr_node *p = pi >= 0 ? &g->nodes[pi] : NULL;
    if (p && (p->op == CRUCIBLE_OP_DENSE || p->op == CRUCIBLE_OP_MATMUL ||
              p->op == CRUCIBLE_OP_CONV2D) &&
        p->n_inputs >= 2 && p->inputs[0] >= 0 && p->inputs[1] >= 0) {
        const cr_tensor *tx = &g->tensors[p->inputs[0]];
        const cr_tensor *tw = &g->tensors[p->inputs[1]];
        if (tx->dtype == CRUCIBLE_DT_I8 || tx->dtype == CRUCIBLE_DT_U8) {
            const char *why = NULL;
            int32_t acc_axis = p->op == CRUCIBLE_OP_CONV2D ? 1 : x->rank - 1;
            int32_t w_axis = p->op == CRUCIBLE_OP_MATMUL ? tw->rank - 1 : 0;
            if (!tx->quant_count || !tw->quant_count)
                why = "its operands carry no quantisation parameters";
            else if (tx->quant_count != 1)
                why = "its input is not quantised per tensor";
            else if (tw->quant_count > 1 &&
                     (tw->quant_axis != w_axis || t->quant_count != tw->quant_count ||
                      t->quant_axis != acc_axis))
                why = "the weight scales are not per output channel, or do "
                      "not line up with the accumulator's";
            else if (tw->quant_count == 1 && cnt != 1)
                why = "per-tensor weights but a per-channel accumulator";
            if (why) {
                cr_free(s);
                return NUNSUP("input %s is the accumulator of %s, but %s",
                              t->name, p->name, why);
            }
            for (uint32_t c = 0; c < cnt; c++) {
                double v = (double)tx->scales[0] *
                           (double)tw->scales[tw->quant_count > 1 ? c : 0];
                if ((float)v != t->scales[c]) {
                    cr_free(s);
                    return NERR("accumulator %s: scale %u is %.9g, but "
                                "x_scale * w_scale of %s is %.9g",
                                t->name, c, (double)t->scales[c], p->name,
                                (double)(float)v);
                }
                s[c] = v;
            }
        }
    }
    *sc = s;
    return CRUCIBLE_OK;
}

/* (mult, shift) per input slice of requantize node n (output per tensor):
 * factor = effective input scale / output scale, in double. */
static int requant_mults(const cr_graph *g, const cr_node *n,
                         const cr_array *x, float s_out, int32_t **mult,
                         int32_t **shift, uint32_t *count, char *err,
                         size_t errlen)
{
    double *sc = NULL;
    int rc = eff_scales(g, n, x, &sc, err, errlen);
    if (rc) return rc;
    uint32_t cnt = g->tensors[n->inputs[0]].quant_count;
    int32_t *m = cr_calloc(cnt, sizeof *m), *s = cr_calloc(cnt, sizeof *s);
    if (!m || !s) {
        rc = interp_node_err(err, errlen, n, CRUCIBLE_E_NOMEM, "out of memory");
    }
    for (uint32_t c = 0; !rc && c < cnt; c++)
        rc = mult_of(n, sc[c] / (double)s_out, "requantisation", &m[c], &s[c],
                     err, errlen);
    cr_free(sc);
    if (rc) {
        cr_free(m);
        cr_free(s);
        return rc;
    }
    *mult = m;
    *shift = s;
    *count = cnt;
    return CRUCIBLE_OK;
}

static int64_t ld_int(const cr_array *a, uint64_t j)
{
    return ir_elem_i64(a->dtype, a->data, j);
}

static void st_int(cr_array *a, uint64_t j, int64_t v)
{
    char *p = (char *)a->data;
    switch (a->dtype) {
    case CRUCIBLE_DT_I8: { int8_t t = (int8_t)v; memcpy(p + j, &t, 1); break; }
    case CRUCIBLE_DT_U8: { uint8_t t = (uint8_t)v; memcpy(p + j, &t, 1); break; }
    case CRUCIBLE_DT_I16: { int16_t t = (int16_t)v; memcpy(p + 2 * j, &t, 2); break; }
    case CRUCIBLE_DT_I32: { int32_t t = (int32_t)v; memcpy(p + 4 * j, &t, 4); break; }
    default: break;
    }
}

static int q_requantize(const cr_graph *g, const cr_node *n,
                        const cr_array *const *in, cr_array *o, char *err,
                        size_t errlen)
{
    const cr_array *x = in[0];
    if (x->dtype != CRUCIBLE_DT_I32 && x->dtype != CRUCIBLE_DT_I16 &&
        x->dtype != CRUCIBLE_DT_I8 && x->dtype != CRUCIBLE_DT_U8)
        return NUNSUP("input dtype %s (i32, i16, i8, u8 only)",
                      ir_dtype_name(x->dtype));
    if (o->dtype != CRUCIBLE_DT_I8 && o->dtype != CRUCIBLE_DT_U8 &&
        o->dtype != CRUCIBLE_DT_I16)
        return NUNSUP("output dtype %s (i8, u8, i16 only with rounding "
                      "\"fixed_q31\")",
                      ir_dtype_name(o->dtype));
    float s_out;
    int32_t z_out, qlo, qhi, lo, hi;
    int rc = pt_params(g, n, n->outputs[0], o, &s_out, &z_out, err, errlen);
    if (rc) return rc;
    dt_range(o->dtype, &qlo, &qhi);
    if ((rc = act_range(n, in, s_out, z_out, qlo, qhi, &lo, &hi, err, errlen)))
        return rc;
    int32_t *m = NULL, *s = NULL;
    uint32_t cnt;
    if ((rc = requant_mults(g, n, x, s_out, &m, &s, &cnt, err, errlen)))
        return rc;
    const cr_tensor *ti = &g->tensors[n->inputs[0]];
    uint64_t inner, qc, ne = numel(o);
    interp_quant_layout(ti, x, &inner, &qc);
    int zin_zero = 1;
    for (uint32_t c = 0; c < cnt; c++)
        if (ti->zero_points[c]) zin_zero = 0;
    uint64_t outer = ne / (inner * qc);
    int fits = inner <= CHUNK && qc <= CHUNK && outer <= CHUNK;
    if (fits && o->dtype == CRUCIBLE_DT_I8 && x->dtype == CRUCIBLE_DT_I32 &&
        zin_zero) {
        crk_requant_params p = {(int32_t)outer, (int32_t)qc, (int32_t)inner,
                                0, z_out, lo, hi, cnt > 1, m, s};
        if (crk_requantize_i32_i8(&p, (const int32_t *)x->data,
                                  (int8_t *)o->data) != CRK_OK)
            rc = NERR("the kernel refused the parameters");
    } else if (fits && o->dtype == CRUCIBLE_DT_I8 &&
               x->dtype == CRUCIBLE_DT_I8 && cnt == 1) {
        rc = requant_i8(n, (const int8_t *)x->data, (int8_t *)o->data, ne,
                        ti->zero_points[0], z_out, m[0], s[0], lo, hi, err,
                        errlen);
    } else {
        /* the same arithmetic element by element: crk_mbqm on the centred
         * value (wrapping in int32), plus z_out, clamped to [lo, hi] */
        for (uint64_t j = 0; j < ne; j++) {
            uint64_t c = (j / inner) % qc;
            uint32_t d = (uint32_t)(int64_t)ld_int(x, j) -
                         (uint32_t)ti->zero_points[c];
            int32_t dv = (d & 0x80000000u) ? -(int32_t)(~d) - 1 : (int32_t)d;
            int64_t v = (int64_t)crk_mbqm(dv, m[c], s[c]) + z_out;
            st_int(o, j, v < lo ? lo : v > hi ? hi : v);
        }
    }
    cr_free(m);
    cr_free(s);
    return rc;
}

/* ---- quantize (TFLite AffineQuantize) ------------------------------------ */
static int q_quantize(const cr_graph *g, const cr_node *n, const cr_array *x,
                      cr_array *o, char *err, size_t errlen)
{
    const cr_tensor *t = &g->tensors[n->outputs[0]];
    int rc = interp_quant_check(n, t, o, err, errlen);
    if (rc) return rc;
    if (x->dtype != CRUCIBLE_DT_F32)
        return NUNSUP("input is %s; quantize takes f32", ir_dtype_name(x->dtype));
    if (o->dtype != CRUCIBLE_DT_I8 && o->dtype != CRUCIBLE_DT_U8 &&
        o->dtype != CRUCIBLE_DT_I16 && o->dtype != CRUCIBLE_DT_I32)
        return NUNSUP("output dtype %s (i8, u8, i16, i32 only)",
                      ir_dtype_name(o->dtype));
    int32_t qlo, qhi;
    dt_range(o->dtype, &qlo, &qhi);
    uint64_t inner, cnt, ne = numel(o);
    interp_quant_layout(t, o, &inner, &cnt);
    const float *px = (const float *)x->data;
    for (uint64_t j = 0; j < ne; j++) {
        uint64_t c = (j / inner) % cnt;
        float r = roundf(px[j] / t->scales[c]);
        double v = r != r ? (double)t->zero_points[c]
                          : (double)r + (double)t->zero_points[c];
        int64_t q = v < (double)qlo ? qlo : v > (double)qhi ? qhi : (int64_t)v;
        st_int(o, j, q);
    }
    return CRUCIBLE_OK;
}

/* ---- activations ----------------------------------------------------------- */
static int q_relu_clip(const cr_graph *g, const cr_node *n,
                       const cr_array *const *in, cr_array *o, char *err,
                       size_t errlen)
{
    int rc = need_i8(n, in, o, 1, err, errlen);
    if (rc) return rc;
    float si, so;
    int32_t zi, zo, lo, hi;
    if ((rc = pt_params(g, n, n->inputs[0], in[0], &si, &zi, err, errlen)) ||
        (rc = pt_params(g, n, n->outputs[0], o, &so, &zo, err, errlen)) ||
        (rc = act_range(n, in, so, zo, -128, 127, &lo, &hi, err, errlen)))
        return rc;
    uint64_t ne = numel(o);
    if (si == so && zi == zo) { /* identity requantisation: a clamp */
        if (crk_clamp_i8((const int8_t *)in[0]->data, (int8_t *)o->data,
                         (size_t)ne, lo, hi) != CRK_OK)
            return NERR("the kernel refused the clamp [%d, %d]", (int)lo,
                        (int)hi);
        return CRUCIBLE_OK;
    }
    int32_t m, s;
    if ((rc = mult_of(n, (double)si / (double)so, "rescaling", &m, &s, err,
                      errlen)))
        return rc;
    return requant_i8(n, (const int8_t *)in[0]->data, (int8_t *)o->data, ne,
                      zi, zo, m, s, lo, hi, err, errlen);
}

static int q_leaky_relu(const cr_graph *g, const cr_node *n,
                        const cr_array *const *in, cr_array *o, char *err,
                        size_t errlen)
{
    int rc = need_i8(n, in, o, 1, err, errlen);
    if (rc) return rc;
    float si, so, alpha;
    int32_t zi, zo, mi, shi, ma, sha;
    if ((rc = pt_params(g, n, n->inputs[0], in[0], &si, &zi, err, errlen)) ||
        (rc = pt_params(g, n, n->outputs[0], o, &so, &zo, err, errlen)) ||
        (rc = attr_f32(n, "alpha", 0.01f, &alpha, err, errlen)))
        return rc;
    if (!(alpha >= 0.0f))
        return NUNSUP("a negative alpha (%g) has no Q31 multiplier",
                      (double)alpha);
    if ((rc = mult_of(n, (double)si / (double)so, "identity", &mi, &shi, err,
                      errlen)) ||
        (rc = mult_of(n, (double)si * (double)alpha / (double)so, "alpha",
                      &ma, &sha, err, errlen)))
        return rc;
    const int8_t *x = (const int8_t *)in[0]->data;
    int8_t *y = (int8_t *)o->data;
    uint64_t ne = numel(o);
    for (uint64_t j = 0; j < ne; j++) {
        int32_t d = (int32_t)x[j] - zi;
        int32_t v = zo + (d >= 0 ? crk_mbqm(d, mi, shi) : crk_mbqm(d, ma, sha));
        y[j] = (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
    }
    return CRUCIBLE_OK;
}

/* The 256-entry table of sigmoid / tanh, built like TFLite's int8
 * LUTPopulate: dequantise in f32, transform (expf / tanhf), multiply by
 * the f32 reciprocal of the output scale, round half away from zero, add
 * the zero point, saturate. table[j] is the output for input j - 128. */
void interp_q_lut(int32_t op, float si, int32_t zi, float so, int32_t zo,
                  int8_t table[256])
{
    const float inv = 1.0f / so;
    for (int32_t v = -128; v <= 127; v++) {
        const float deq = si * (float)(v - zi);
        const float tr = op == CRUCIBLE_OP_TANH ? tanhf(deq)
                                                : 1.0f / (1.0f + expf(-deq));
        const float r = roundf(tr * inv);
        const double q = (double)(r + (float)zo);
        table[v + 128] = (int8_t)(q < -128.0 ? -128 : q > 127.0 ? 127 : (int32_t)q);
    }
}

static int q_lut(const cr_graph *g, const cr_node *n,
                 const cr_array *const *in, cr_array *o, char *err,
                 size_t errlen)
{
    int rc = need_i8(n, in, o, 1, err, errlen);
    if (rc) return rc;
    float si, so;
    int32_t zi, zo;
    if ((rc = pt_params(g, n, n->inputs[0], in[0], &si, &zi, err, errlen)) ||
        (rc = pt_params(g, n, n->outputs[0], o, &so, &zo, err, errlen)))
        return rc;
    int8_t table[256];
    interp_q_lut(n->op, si, zi, so, zo, table);
    crk_lut_i8((const int8_t *)in[0]->data, (int8_t *)o->data,
               (size_t)numel(o), table);
    return CRUCIBLE_OK;
}

int interp_q_softmax_params(double beta, double s_in, int32_t *mult,
                            int32_t *left_shift, int32_t *diff_min)
{
    /* TFLite PreprocessSoftmaxScaling (5 integer bits) and
     * CalculateInputRadius */
    double real = beta * s_in * (double)(1 << 26);
    if (real > 2147483647.0) real = 2147483647.0;
    int sh;
    if (!(real > 1.0) || interp_q_multiplier(real, mult, &sh) || sh < 0)
        return CRUCIBLE_E_UNSUPPORTED;
    *left_shift = sh;
    double radius = floor(31.0 * (double)((int64_t)1 << 26) /
                          (double)((int64_t)1 << sh));
    *diff_min = -(int32_t)radius;
    return CRUCIBLE_OK;
}

static int q_softmax(const cr_graph *g, const cr_node *n,
                     const cr_array *const *in, cr_array *o, char *err,
                     size_t errlen)
{
    int rc = need_i8(n, in, o, 1, err, errlen);
    if (rc) return rc;
    float si, so, beta;
    int32_t zi, zo;
    if ((rc = pt_params(g, n, n->inputs[0], in[0], &si, &zi, err, errlen)) ||
        (rc = pt_params(g, n, n->outputs[0], o, &so, &zo, err, errlen)) ||
        (rc = attr_f32(n, "beta", 1.0f, &beta, err, errlen)))
        return rc;
    if (zo != -128 || fabs((double)so - 1.0 / 256) > 0.001 / 256)
        return NUNSUP("the int8 softmax writes scale 1/256 and zero point "
                      "-128; output %s has %g and %d (requantize after it)",
                      g->tensors[n->outputs[0]].name, (double)so, (int)zo);
    crk_softmax_params p;
    if (interp_q_softmax_params((double)beta, (double)si,
                                &p.input_beta_multiplier,
                                &p.input_beta_left_shift, &p.diff_min))
        return NUNSUP("beta * input scale = %g is too small for the int8 "
                      "softmax (needs beta * scale * 2^26 > 1)",
                      (double)beta * (double)si);
    int64_t ax = ir_attr_i(n, "axis", -1);
    if (ax < 0) ax += in[0]->rank;
    uint64_t outer = 1, inner = 1, depth = (uint64_t)in[0]->dims[ax];
    for (int64_t i = 0; i < ax; i++) outer *= (uint64_t)in[0]->dims[i];
    for (int32_t i = (int32_t)ax + 1; i < in[0]->rank; i++)
        inner *= (uint64_t)in[0]->dims[i];
    if (outer > CHUNK || inner > CHUNK || depth > CHUNK)
        return NUNSUP("tensor too large for the int8 softmax kernel");
    p.outer = (int32_t)outer;
    p.depth = (int32_t)depth;
    p.inner = (int32_t)inner;
    if (crk_softmax_i8(&p, (const int8_t *)in[0]->data, (int8_t *)o->data) !=
        CRK_OK)
        return NERR("the kernel refused the parameters");
    return CRUCIBLE_OK;
}

/* ---- pooling ---------------------------------------------------------------- */
static int fits32(int64_t v) { return v >= 0 && v <= INT32_MAX; }

static int q_pool(const cr_graph *g, const cr_node *n,
                  const cr_array *const *in, cr_array *o, char *err,
                  size_t errlen)
{
    int rc = need_i8(n, in, o, 1, err, errlen);
    if (rc) return rc;
    const cr_array *x = in[0];
    float si = 1.0f, so = 1.0f;
    int32_t zi = 0, zo = 0, lo = -128, hi = 127;
    int qi = has_quant(g, n->inputs[0]), qo = has_quant(g, n->outputs[0]);
    if (qi != qo)
        return NUNSUP("input and output must both carry quantisation "
                      "parameters, or neither");
    if (qi) {
        if ((rc = pt_params(g, n, n->inputs[0], x, &si, &zi, err, errlen)) ||
            (rc = pt_params(g, n, n->outputs[0], o, &so, &zo, err, errlen)))
            return rc;
        if (si != so || zi != zo)
            return NUNSUP("int8 pooling keeps the scale and zero point; "
                          "input %g/%d, output %g/%d (requantize after it)",
                          (double)si, (int)zi, (double)so, (int)zo);
    }
    if ((rc = act_range(n, in, so, zo, -128, 127, &lo, &hi, err, errlen)))
        return rc;
    interp_pool_params pp;
    if ((rc = interp_pool_params_get(n, &pp, err, errlen))) return rc;
    const int64_t H = x->dims[2], W = x->dims[3], OH = o->dims[2],
                  OW = o->dims[3];
    /* ceil mode: enlarge the trailing pads so that the kernels' floor rule
     * gives the inferred output size (extra taps lie outside the input) */
    int64_t pb = pp.pad[2], pr = pp.pad[3];
    int64_t need_b = (OH - 1) * pp.stride[0] + (pp.kernel[0] - 1) * pp.dil[0] +
                     1 - H - pp.pad[0];
    int64_t need_r = (OW - 1) * pp.stride[1] + (pp.kernel[1] - 1) * pp.dil[1] +
                     1 - W - pp.pad[1];
    int grown = 0;
    if (need_b > pb) pb = need_b, grown = 1;
    if (need_r > pr) pr = need_r, grown = 1;
    if (grown && n->op == CRUCIBLE_OP_AVG_POOL2D && pp.count_include_pad)
        return NUNSUP("int8 avg_pool2d with ceil_mode and count_include_pad");
    const int64_t vals[] = {x->dims[0] * x->dims[1], H, W, pp.kernel[0],
                            pp.kernel[1], pp.stride[0], pp.stride[1],
                            pp.dil[0], pp.dil[1], pp.pad[0], pp.pad[1], pb, pr};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        if (!fits32(vals[i]))
            return NUNSUP("sizes beyond 2^31 for the int8 pooling kernel");
    crk_pool_params p = {
        1, (int32_t)(x->dims[0] * x->dims[1]), (int32_t)H, (int32_t)W,
        (int32_t)pp.kernel[0], (int32_t)pp.kernel[1], (int32_t)pp.stride[0],
        (int32_t)pp.stride[1], (int32_t)pp.dil[0], (int32_t)pp.dil[1],
        (int32_t)pp.pad[0], (int32_t)pp.pad[1], (int32_t)pb, (int32_t)pr,
        lo, hi, pp.count_include_pad, zi};
    if (crk_out_dim(p.in_h, p.kernel_h, p.stride_h, p.dilation_h, p.pad_top,
                    p.pad_bottom) != OH ||
        crk_out_dim(p.in_w, p.kernel_w, p.stride_w, p.dilation_w, p.pad_left,
                    p.pad_right) != OW)
        return NERR("internal: pooling output size disagrees with the "
                    "kernel's");
    rc = n->op == CRUCIBLE_OP_MAX_POOL2D
             ? crk_max_pool2d(&p, (const int8_t *)x->data, (int8_t *)o->data)
             : crk_avg_pool2d(&p, (const int8_t *)x->data, (int8_t *)o->data);
    if (rc != CRK_OK) return NERR("the pooling kernel refused the geometry");
    return CRUCIBLE_OK;
}

/* ---- add, sub, mul ------------------------------------------------------------ */
static int bcast4(const cr_node *n, const cr_array *a, const cr_array *b,
                  const cr_array *o, crk_bcast4 *sh, char *err, size_t errlen)
{
    if (o->rank > 4)
        return NUNSUP("the int8 elementwise kernels take rank <= 4, not %d",
                      (int)o->rank);
    const cr_array *src[3] = {o, a, b};
    int32_t *dst[3] = {sh->out, sh->a, sh->b};
    for (int k = 0; k < 3; k++) {
        int32_t r = src[k]->rank;
        for (int i = 0; i < 4; i++) {
            int ai = i - (4 - r);
            int64_t d = ai < 0 ? 1 : src[k]->dims[ai];
            if (!fits32(d)) return NUNSUP("dims beyond 2^31");
            dst[k][i] = (int32_t)d;
        }
    }
    return CRUCIBLE_OK;
}

static int q_binary(const cr_graph *g, const cr_node *n,
                    const cr_array *const *in, cr_array *o, char *err,
                    size_t errlen)
{
    int rc = need_i8(n, in, o, 2, err, errlen);
    if (rc) return rc;
    float sa, sb, so;
    int32_t za, zb, zo, lo, hi;
    if ((rc = pt_params(g, n, n->inputs[0], in[0], &sa, &za, err, errlen)) ||
        (rc = pt_params(g, n, n->inputs[1], in[1], &sb, &zb, err, errlen)) ||
        (rc = pt_params(g, n, n->outputs[0], o, &so, &zo, err, errlen)) ||
        (rc = act_range(n, in, so, zo, -128, 127, &lo, &hi, err, errlen)))
        return rc;
    crk_bcast4 sh;
    if ((rc = bcast4(n, in[0], in[1], o, &sh, err, errlen))) return rc;
    const int8_t *a = (const int8_t *)in[0]->data, *b = (const int8_t *)in[1]->data;
    int8_t *y = (int8_t *)o->data;
    if (n->op == CRUCIBLE_OP_MUL) {
        crk_mul_params p = {za, zb, zo, 0, 0, lo, hi};
        if ((rc = mult_of(n, (double)sa * (double)sb / (double)so, "output",
                          &p.out_mult, &p.out_shift, err, errlen)))
            return rc;
        rc = crk_mul_i8(&p, &sh, a, b, y);
    } else {
        /* TFLite Add / Sub prepare: left shift 20, twice the larger input
         * scale as the common scale */
        const double twice_max = 2.0 * (double)(sa > sb ? sa : sb);
        crk_add_params p = {za, zb, zo, 20, 0, 0, 0, 0, 0, 0, lo, hi};
        if ((rc = mult_of(n, (double)sa / twice_max, "input 0", &p.a_mult,
                          &p.a_shift, err, errlen)) ||
            (rc = mult_of(n, (double)sb / twice_max, "input 1", &p.b_mult,
                          &p.b_shift, err, errlen)) ||
            (rc = mult_of(n, twice_max / ((double)(1 << 20) * (double)so),
                          "output", &p.out_mult, &p.out_shift, err, errlen)))
            return rc;
        rc = n->op == CRUCIBLE_OP_ADD ? crk_add_i8(&p, &sh, a, b, y)
                                      : crk_sub_i8(&p, &sh, a, b, y);
    }
    return rc == CRK_OK ? CRUCIBLE_OK
                        : NERR("the kernel refused the parameters");
}

/* ---- concat ------------------------------------------------------------------- */
static int q_concat(const cr_graph *g, const cr_node *n,
                    const cr_array *const *in, cr_array *o, char *err,
                    size_t errlen)
{
    int rc = need_i8(n, in, o, n->n_inputs, err, errlen);
    if (rc) return rc;
    float so;
    int32_t zo;
    if ((rc = pt_params(g, n, n->outputs[0], o, &so, &zo, err, errlen)))
        return rc;
    int64_t ax = ir_attr_i(n, "axis", 0);
    if (ax < 0) ax += o->rank;
    uint64_t outer = 1, inner = 1;
    for (int64_t i = 0; i < ax; i++) outer *= (uint64_t)o->dims[i];
    for (int32_t i = (int32_t)ax + 1; i < o->rank; i++)
        inner *= (uint64_t)o->dims[i];
    if (outer > CHUNK || inner > CHUNK || (uint64_t)o->dims[ax] > CHUNK ||
        n->n_inputs > CHUNK)
        return NUNSUP("tensor too large for the int8 concat kernel");
    crk_concat_input *ci = cr_calloc(n->n_inputs, sizeof *ci);
    if (!ci) return interp_node_err(err, errlen, n, CRUCIBLE_E_NOMEM, "out of memory");
    for (uint32_t k = 0; !rc && k < n->n_inputs; k++) {
        float s;
        int32_t z;
        if ((rc = pt_params(g, n, n->inputs[k], in[k], &s, &z, err, errlen)))
            break;
        ci[k].data = (const int8_t *)in[k]->data;
        ci[k].axis_dim = (int32_t)in[k]->dims[ax];
        ci[k].zp = z;
        if (s != so || z != zo) {
            ci[k].requant = 1;
            rc = mult_of(n, (double)s / (double)so, "rescaling", &ci[k].mult,
                         &ci[k].shift, err, errlen);
        }
    }
    if (!rc && crk_concat_i8(ci, (int32_t)n->n_inputs, (int32_t)outer,
                             (int32_t)inner, zo, (int8_t *)o->data) != CRK_OK)
        rc = NERR("the kernel refused the parameters");
    cr_free(ci);
    return rc;
}

/* ---- dispatch ------------------------------------------------------------------- */
int interp_q_claims(const cr_node *n, const cr_array *const *in)
{
    const cr_array *x = n->n_inputs ? in[0] : NULL;
    int i8 = x && x->dtype == CRUCIBLE_DT_I8;
    switch (n->op) {
    case CRUCIBLE_OP_REQUANTIZE: case CRUCIBLE_OP_QUANTIZE:
        return is_q31(n);
    case CRUCIBLE_OP_MAX_POOL2D:
        return i8;
    case CRUCIBLE_OP_RELU: case CRUCIBLE_OP_CLIP: case CRUCIBLE_OP_LEAKY_RELU:
    case CRUCIBLE_OP_SIGMOID: case CRUCIBLE_OP_TANH: case CRUCIBLE_OP_SOFTMAX:
    case CRUCIBLE_OP_ADD: case CRUCIBLE_OP_SUB: case CRUCIBLE_OP_MUL:
    case CRUCIBLE_OP_AVG_POOL2D: case CRUCIBLE_OP_CONCAT:
        return i8 && is_q31(n);
    default:
        return 0;
    }
}

int interp_q_packed_ok(const cr_node *n, uint32_t k, int32_t dtype)
{
    if (n->op == CRUCIBLE_OP_DEQUANTIZE) /* i4 block weights (GGUF Q4) */
        return k == 0 && dtype == CRUCIBLE_DT_I4;
    return k == 1 &&
           (dtype == CRUCIBLE_DT_I4 || dtype == CRUCIBLE_DT_TERNARY ||
            dtype == CRUCIBLE_DT_BINARY) &&
           (n->op == CRUCIBLE_OP_DENSE || n->op == CRUCIBLE_OP_CONV2D ||
            n->op == CRUCIBLE_OP_MATMUL);
}

int interp_exec_q(const cr_graph *g, const cr_node *n,
                  const cr_array *const *in, cr_array *out, char *err,
                  size_t errlen)
{
    const cr_attr *r = ir_attr(n, "rounding");
    if (r && r->type != CRUCIBLE_ATTR_STRING)
        return NERR("attribute rounding must be a string");
    if (n->op != CRUCIBLE_OP_REQUANTIZE && r && strcmp(r->s, "fixed_q31"))
        return NERR("rounding \"%s\": integer %s supports only \"fixed_q31\"",
                    r->s, ir_op_name(n->op));
    switch (n->op) {
    case CRUCIBLE_OP_REQUANTIZE: return q_requantize(g, n, in, out, err, errlen);
    case CRUCIBLE_OP_QUANTIZE: return q_quantize(g, n, in[0], out, err, errlen);
    case CRUCIBLE_OP_RELU: case CRUCIBLE_OP_CLIP:
        return q_relu_clip(g, n, in, out, err, errlen);
    case CRUCIBLE_OP_LEAKY_RELU: return q_leaky_relu(g, n, in, out, err, errlen);
    case CRUCIBLE_OP_SIGMOID: case CRUCIBLE_OP_TANH:
        return q_lut(g, n, in, out, err, errlen);
    case CRUCIBLE_OP_SOFTMAX: return q_softmax(g, n, in, out, err, errlen);
    case CRUCIBLE_OP_ADD: case CRUCIBLE_OP_SUB: case CRUCIBLE_OP_MUL:
        return q_binary(g, n, in, out, err, errlen);
    case CRUCIBLE_OP_MAX_POOL2D: case CRUCIBLE_OP_AVG_POOL2D:
        return q_pool(g, n, in, out, err, errlen);
    case CRUCIBLE_OP_CONCAT: return q_concat(g, n, in, out, err, errlen);
    default: return NUNSUP("no integer kernel for this op");
    }
}

/* ---- fused layers: the same layer through crk_fully_connected / crk_conv2d -- */

static int wfmt_of(int32_t dt, crk_wfmt *f)
{
    switch (dt) {
    case CRUCIBLE_DT_I8: *f = CRK_W_I8; return 1;
    case CRUCIBLE_DT_I4: *f = CRK_W_I4; return 1;
    case CRUCIBLE_DT_TERNARY: *f = CRK_W_TERNARY; return 1;
    case CRUCIBLE_DT_BINARY: *f = CRK_W_BINARY; return 1;
    default: return 0;
    }
}

/* The single consumer of tensor t, or -1 (none, several, or an output). */
static int32_t sole_consumer(const cr_graph *g, int32_t t)
{
    int32_t found = -1;
    for (size_t i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == t) return -1;
    for (size_t i = 0; i < g->n_nodes; i++)
        for (uint32_t k = 0; k < g->nodes[i].n_inputs; k++)
            if (g->nodes[i].inputs[k] == t) {
                if (found >= 0 && found != (int32_t)i) return -1;
                found = (int32_t)i;
            }
    return found;
}

/* One fused layer: product node pi (its input values in vals) through the
 * kernel library into a fresh buffer, compared with vals[final]. */
static int fused_one(const cr_graph *g, int32_t pi, const cr_array *vals,
                     int *checked, char *err, size_t errlen)
{
    const cr_node *p = &g->nodes[pi];
    *checked = 0;
    if ((p->op != CRUCIBLE_OP_DENSE && p->op != CRUCIBLE_OP_CONV2D) ||
        p->n_inputs < 2)
        return CRUCIBLE_OK;
    const cr_array *x = &vals[p->inputs[0]], *w = &vals[p->inputs[1]];
    const cr_array *b = p->n_inputs > 2 && p->inputs[2] >= 0
                            ? &vals[p->inputs[2]] : NULL;
    crk_wfmt wf;
    if (!x->data || x->dtype != CRUCIBLE_DT_I8 || !wfmt_of(w->dtype, &wf) ||
        (b && b->dtype != CRUCIBLE_DT_I32) || numel(x) > CHUNK ||
        numel(w) > CHUNK || numel(&vals[p->outputs[0]]) > CHUNK)
        return CRUCIBLE_OK; /* not a layer the int32-sized kernels take */
    const cr_tensor *tw = &g->tensors[p->inputs[1]];
    for (uint32_t c = 0; c < tw->quant_count; c++)
        if (tw->zero_points[c]) return CRUCIBLE_OK; /* not symmetric */
    int32_t ri = sole_consumer(g, p->outputs[0]);
    if (ri < 0) return CRUCIBLE_OK;
    const cr_node *n = &g->nodes[ri];
    const cr_array *acc = &vals[p->outputs[0]];
    const cr_array *y = &vals[n->outputs[0]];
    if (n->op != CRUCIBLE_OP_REQUANTIZE || !is_q31(n) ||
        y->dtype != CRUCIBLE_DT_I8 || !acc->data)
        return CRUCIBLE_OK;
    const cr_tensor *ta = &g->tensors[p->outputs[0]];
    for (uint32_t c = 0; c < ta->quant_count; c++)
        if (ta->zero_points[c]) return CRUCIBLE_OK;
    float sx, so;
    int32_t zx, zo, lo, hi;
    const cr_array *rin[1] = {acc};
    int rc;
    if ((rc = pt_params(g, p, p->inputs[0], x, &sx, &zx, err, errlen)) ||
        (rc = pt_params(g, n, n->outputs[0], y, &so, &zo, err, errlen)) ||
        (rc = act_range(n, rin, so, zo, -128, 127, &lo, &hi, err, errlen)))
        return rc;
    int32_t final = n->outputs[0];
    /* an activation that only clamps (same parameters) fuses too */
    int32_t ai = sole_consumer(g, final);
    if (ai >= 0) {
        const cr_node *a = &g->nodes[ai];
        const cr_array *ay = &vals[a->outputs[0]];
        const cr_array *ain[3] = {y, NULL, NULL};
        for (uint32_t k = 1; k < a->n_inputs && k < 3; k++)
            ain[k] = a->inputs[k] >= 0 ? &vals[a->inputs[k]] : NULL;
        float sa;
        int32_t za, alo, ahi;
        if ((a->op == CRUCIBLE_OP_RELU || a->op == CRUCIBLE_OP_CLIP) &&
            is_q31(a) && ay->dtype == CRUCIBLE_DT_I8 && ay->data &&
            !pt_params(g, a, a->outputs[0], ay, &sa, &za, err, errlen) &&
            sa == so && za == zo &&
            !act_range(a, ain, sa, za, -128, 127, &alo, &ahi, err, errlen)) {
            if (alo > lo) lo = alo;
            if (ahi < hi) hi = ahi;
            if (lo > hi) lo = hi;
            final = a->outputs[0];
        }
    }
    int32_t *m = NULL, *s = NULL;
    uint32_t cnt;
    if ((rc = requant_mults(g, n, acc, so, &m, &s, &cnt, err, errlen)))
        return rc;
    int8_t *res = cr_malloc(y->bytes ? y->bytes : 1);
    if (!res) {
        cr_free(m);
        cr_free(s);
        return interp_node_err(err, errlen, p, CRUCIBLE_E_NOMEM, "out of memory");
    }
    const int32_t *pb = b ? (const int32_t *)b->data : NULL;
    int krc = CRK_EINVAL;
    if (p->op == CRUCIBLE_OP_DENSE) {
        crk_fc_params fp = {(int32_t)acc->dims[0], (int32_t)w->dims[1],
                            (int32_t)w->dims[0], zx, zo, lo, hi, cnt > 1, m, s};
        krc = crk_fully_connected(&fp, (const int8_t *)x->data, w->data, wf, pb,
                                  res);
    } else {
        interp_conv_params cp;
        if ((rc = interp_conv_params_get(p, &cp, err, errlen))) goto out;
        crk_conv_params pp = {
            (int32_t)x->dims[0], (int32_t)x->dims[1], (int32_t)x->dims[2],
            (int32_t)x->dims[3], (int32_t)w->dims[0], (int32_t)w->dims[2],
            (int32_t)w->dims[3], (int32_t)cp.group, (int32_t)cp.stride[0],
            (int32_t)cp.stride[1], (int32_t)cp.dil[0], (int32_t)cp.dil[1],
            (int32_t)cp.pad[0], (int32_t)cp.pad[1], (int32_t)cp.pad[2],
            (int32_t)cp.pad[3], zx, zo, lo, hi, cnt > 1, m, s};
        krc = crk_conv2d(&pp, (const int8_t *)x->data, w->data, wf, pb, res);
    }
    if (krc != CRK_OK) {
        rc = interp_node_err(err, errlen, p, CRUCIBLE_E_INVALID,
                             "the fused kernel refused the layer");
        goto out;
    }
    const cr_array *want = &vals[final];
    for (size_t j = 0; j < want->bytes; j++)
        if (res[j] != ((const int8_t *)want->data)[j]) {
            rc = interp_node_err(err, errlen, p, CRUCIBLE_E_GENERIC,
                                 "fused kernel gives %d at element %zu of %s, "
                                 "the node-by-node interpreter %d",
                                 (int)res[j], j, g->tensors[final].name,
                                 (int)((const int8_t *)want->data)[j]);
            goto out;
        }
    *checked = 1;
out:
    cr_free(res);
    cr_free(m);
    cr_free(s);
    return rc;
}

int interp_q_fused_check(const cr_graph *g, const cr_array *vals,
                         size_t *layers, char *err, size_t errlen)
{
    *layers = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        int checked = 0;
        int rc = fused_one(g, (int32_t)i, vals, &checked, err, errlen);
        if (rc) return rc;
        *layers += (size_t)checked;
    }
    return CRUCIBLE_OK;
}
