/*
 * tfl_lower.c - lowering a decoded TFLite model to the canonical IR: names,
 * values and their layouts, constants, fused activations, `unsupported`
 * nodes, and the driver (graph inputs, operators in order, outputs,
 * metadata). The per-operator handlers are in tfl_lower_ops.c.
 */
#include "tfl_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- messages -------------------------------------------------------------*/
int tl_fail(tl_ctx *c, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (c->err && c->errlen) vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    return status;
}

int tl_unsup(tl_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof c->why, fmt, ap);
    va_end(ap);
    return TL_UNSUP;
}

static int tl_nomem(tl_ctx *c)
{
    if (c->a->exhausted)
        return tl_fail(c, CRUCIBLE_E_LIMIT,
                       "lowering needs more than %zu MiB; refused",
                       c->a->limit >> 20);
    return tl_fail(c, CRUCIBLE_E_NOMEM, "out of memory");
}

char *tl_printf(tl_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *s = tfl_alloc(c->a, (size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* ---- small helpers --------------------------------------------------------*/
int32_t tl_dtype(int8_t type)
{
    switch (type) {
    case TFL_FLOAT32: return CRUCIBLE_DT_F32;
    case TFL_FLOAT16: return CRUCIBLE_DT_F16;
    case TFL_INT32: return CRUCIBLE_DT_I32;
    case TFL_UINT8: return CRUCIBLE_DT_U8;
    case TFL_INT64: return CRUCIBLE_DT_I64;
    case TFL_BOOL: return CRUCIBLE_DT_BOOL;
    case TFL_INT16: return CRUCIBLE_DT_I16;
    case TFL_INT8: return CRUCIBLE_DT_I8;
    case TFL_INT4: return CRUCIBLE_DT_I4;
    default: return 0;
    }
}

int tl_is_int(int32_t dt)
{
    return dt == CRUCIBLE_DT_I8 || dt == CRUCIBLE_DT_U8 ||
           dt == CRUCIBLE_DT_I16 || dt == CRUCIBLE_DT_I32 ||
           dt == CRUCIBLE_DT_I64 || dt == CRUCIBLE_DT_I4;
}

const tfl_tensor *tl_t(tl_ctx *c, int32_t ti)
{
    return &c->m->tensors[ti];
}

const char *tl_tname(tl_ctx *c, int32_t ti)
{
    const tfl_tensor *t = tl_t(c, ti);
    if (t->name && *t->name) return t->name;
    char *s = tl_printf(c, "tensor %d", (int)ti);
    return s ? s : "?";
}

int32_t tl_in(tl_ctx *c, uint32_t k)
{
    return k < c->op->n_in ? c->op->in[k] : -1;
}

int32_t tl_out_t(tl_ctx *c, uint32_t k)
{
    return k < c->op->n_out ? c->op->out[k] : -1;
}

int tl_is_const(tl_ctx *c, int32_t ti)
{
    return ti >= 0 && c->vals[ti].data != NULL;
}

int tl_has_nchw(tl_ctx *c, int32_t ti)
{
    return ti >= 0 && c->vals[ti].nchw >= 0;
}

size_t tl_elem_size(int32_t dt)
{
    switch (dt) {
    case CRUCIBLE_DT_F32: case CRUCIBLE_DT_I32: return 4;
    case CRUCIBLE_DT_I64: return 8;
    case CRUCIBLE_DT_I16: case CRUCIBLE_DT_F16: return 2;
    case CRUCIBLE_DT_I8: case CRUCIBLE_DT_U8: case CRUCIBLE_DT_BOOL: return 1;
    default: return 0;
    }
}

uint64_t tl_numel(const tfl_tensor *t)
{
    if (t->rank > TFL_MAX_RANK) return 0;
    uint64_t n = 1;
    for (int32_t d = 0; d < t->rank; d++) {
        if (t->dims[d] < 1 || n > ((uint64_t)1 << 40) / (uint64_t)t->dims[d])
            return 0;
        n *= (uint64_t)t->dims[d];
    }
    return n;
}

int tl_same_quant(const tfl_tensor *a, const tfl_tensor *b)
{
    if (a->has_quant != b->has_quant) return 0;
    if (!a->has_quant) return 1;
    if (a->q.n_scale != b->q.n_scale || a->q.n_zp != b->q.n_zp) return 0;
    if (a->q.n_scale > 1 && a->q.qdim != b->q.qdim) return 0;
    for (uint32_t i = 0; i < a->q.n_scale; i++)
        if (a->q.scales[i] != b->q.scales[i]) return 0;
    for (uint32_t i = 0; i < a->q.n_zp; i++)
        if (a->q.zero_points[i] != b->q.zero_points[i]) return 0;
    return 1;
}

/* ---- name sets --------------------------------------------------------------*/
static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static int set_has(const tl_set *s, const char *k)
{
    if (!s->cap) return 0;
    size_t i = (size_t)hash_str(k) & (s->cap - 1);
    while (s->keys[i]) {
        if (!strcmp(s->keys[i], k)) return 1;
        i = (i + 1) & (s->cap - 1);
    }
    return 0;
}

static int set_add(tl_ctx *c, tl_set *s, const char *k)
{
    if (2 * (s->n + 1) > s->cap) {
        size_t nc = s->cap ? 2 * s->cap : 256;
        const char **nk = tfl_alloc_array(c->a, nc, sizeof *nk);
        if (!nk) return tl_nomem(c);
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->keys[i]) continue;
            size_t j = (size_t)hash_str(s->keys[i]) & (nc - 1);
            while (nk[j]) j = (j + 1) & (nc - 1);
            nk[j] = s->keys[i];
        }
        s->keys = nk;
        s->cap = nc;
    }
    size_t i = (size_t)hash_str(k) & (s->cap - 1);
    while (s->keys[i]) i = (i + 1) & (s->cap - 1);
    s->keys[i] = k;
    s->n++;
    return CRUCIBLE_OK;
}

/* A name not yet in s, derived from base (at most ~3000 bytes), added. */
static const char *unique_name(tl_ctx *c, tl_set *s, const char *base)
{
    if (!base || !*base) base = "t";
    char *n = tl_printf(c, "%.3000s", base);
    for (unsigned tries = 0; n && set_has(s, n); tries++) {
        if (tries > 1000000) return NULL;
        n = tl_printf(c, "%.3000s_%lu", base, ++c->serial);
    }
    if (!n || set_add(c, s, n)) return NULL;
    return n;
}

/* ---- builder wrappers -------------------------------------------------------*/
static int builder_err(tl_ctx *c, int rc, const char *what, const char *name)
{
    if (rc == CRUCIBLE_E_NOMEM) return tl_nomem(c);
    return tl_fail(c, rc, "the IR builder refused %s %s (%s)", what, name,
                   crucible_status_str(rc));
}

int tl_quant(tl_ctx *c, int32_t ir, int32_t axis, uint32_t count,
             const float *scales, const int32_t *zps)
{
    if (!count) return CRUCIBLE_OK;
    int rc = c->b->set_quant(c->b->ctx, ir, axis, count, scales, zps);
    if (rc < 0) return builder_err(c, rc, "the quantisation of tensor", "");
    return CRUCIBLE_OK;
}

static int apply_quant(tl_ctx *c, int32_t ir, int32_t dtype, int32_t rank,
                       const tfl_tensor *q, const int32_t *perm)
{
    if (!q || !q->has_quant || q->q.details_type || !tl_is_int(dtype))
        return CRUCIBLE_OK;
    uint32_t n = q->q.n_scale;
    int32_t axis = -1;
    if (n > 1) {
        axis = -2;
        for (int32_t j = 0; j < rank; j++)
            if ((perm ? perm[j] : j) == q->q.qdim) axis = j;
        if (axis < 0 || (!perm && rank != q->rank))
            return tl_fail(c, CRUCIBLE_E_UNSUPPORTED,
                           "operator %u (%s): the per-axis quantisation of "
                           "tensor %s cannot follow this layout change",
                           (unsigned)c->op_index, c->op_name,
                           q->name && *q->name ? q->name : "?");
    }
    float *s = tfl_alloc_array(c->a, n, sizeof *s);
    int32_t *z = tfl_alloc_array(c->a, n, sizeof *z);
    if (!s || !z) return tl_nomem(c);
    for (uint32_t i = 0; i < n; i++) {
        s[i] = q->q.scales[i];
        z[i] = i < q->q.n_zp ? (int32_t)q->q.zero_points[i] : 0;
    }
    return tl_quant(c, ir, axis, n, s, z);
}

int32_t tl_tensor(tl_ctx *c, const char *name, int32_t dtype, int32_t rank,
                  const int64_t *dims, const tfl_tensor *q,
                  const int32_t *perm)
{
    const char *u = unique_name(c, &c->tnames, name);
    if (!u) return tl_nomem(c);
    int32_t t = c->b->add_tensor(c->b->ctx, u, dtype, rank, dims);
    if (t < 0) return builder_err(c, t, "tensor", u);
    int rc = apply_quant(c, t, dtype, rank, q, perm);
    if (rc) return rc;
    return t;
}

int32_t tl_node(tl_ctx *c, const char *op, const char *suffix, uint32_t n_in,
                const int32_t *in, uint32_t n_out, const int32_t *out)
{
    const char *base = suffix ? tl_printf(c, "%s/%s", c->base, suffix)
                              : c->base;
    if (!base) return tl_nomem(c);
    const char *u = unique_name(c, &c->nnames, base);
    if (!u) return tl_nomem(c);
    int32_t n = c->b->add_node(c->b->ctx, op, u, n_in, in, n_out, out);
    if (n < 0) return builder_err(c, n, "node", u);
    return n;
}

#define ATTR_WRAP(fn, slot, T)                                              \
    int fn(tl_ctx *c, int32_t node, const char *k, T v)                     \
    {                                                                       \
        int rc = c->b->slot(c->b->ctx, node, k, v);                         \
        return rc < 0 ? builder_err(c, rc, "attribute", k) : CRUCIBLE_OK;   \
    }
ATTR_WRAP(tl_attr_int, attr_int, int64_t)
ATTR_WRAP(tl_attr_float, attr_float, double)
ATTR_WRAP(tl_attr_str, attr_string, const char *)

int tl_attr_ints(tl_ctx *c, int32_t node, const char *k, uint32_t n,
                 const int64_t *v)
{
    int rc = c->b->attr_ints(c->b->ctx, node, k, n, v);
    return rc < 0 ? builder_err(c, rc, "attribute", k) : CRUCIBLE_OK;
}

int tl_mark_int(tl_ctx *c, int32_t node)
{
    return tl_attr_str(c, node, "rounding", "fixed_q31");
}

/* ---- constants ---------------------------------------------------------------*/
static int set_data(tl_ctx *c, int32_t ir, const void *data, size_t bytes,
                    const char *name)
{
    if (bytes > c->const_limit - c->const_bytes)
        return tl_fail(c, CRUCIBLE_E_LIMIT,
                       "constant data would exceed %llu MiB (the frontend's "
                       "limit for this file: 4x its size + 64 MiB); tensors "
                       "share buffers too often; refused",
                       (unsigned long long)(c->const_limit >> 20));
    c->const_bytes += bytes;
    int rc = c->b->set_data(c->b->ctx, ir, data, bytes);
    if (rc < 0) return builder_err(c, rc, "the data of tensor", name);
    return CRUCIBLE_OK;
}

int32_t tl_const(tl_ctx *c, const char *suffix, int32_t dtype, int32_t rank,
                 const int64_t *dims, const void *data, size_t bytes)
{
    char *name = tl_printf(c, "%s/%s", c->base, suffix);
    if (!name) return tl_nomem(c);
    int32_t t = tl_tensor(c, name, dtype, rank, dims, NULL, NULL);
    if (t < 0) return t;
    int rc = set_data(c, t, data, bytes, name);
    return rc ? rc : t;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1f,
             m = h & 0x3ff, bits;
    if (e == 0x1f) {
        bits = sign | 0x7f800000u | (m << 13);
    } else if (e) {
        bits = sign | ((e + 112) << 23) | (m << 13);
    } else if (m) { /* subnormal: normalise */
        int sh = 0;
        while (!(m & 0x400)) {
            m <<= 1;
            sh++;
        }
        bits = sign | ((uint32_t)(113 - sh) << 23) | ((m & 0x3ff) << 13);
    } else {
        bits = sign;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

double tl_elem_f(tl_ctx *c, int32_t ti, uint64_t i)
{
    const uint8_t *p = c->vals[ti].data;
    switch (c->vals[ti].dtype) {
    case CRUCIBLE_DT_F32: {
        uint32_t u = fb_ld32(p + 4 * i);
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    case CRUCIBLE_DT_F16: return half_to_float(fb_ld16(p + 2 * i));
    case CRUCIBLE_DT_I8: return (int8_t)p[i];
    case CRUCIBLE_DT_U8:
    case CRUCIBLE_DT_BOOL: return p[i];
    case CRUCIBLE_DT_I16: return (int16_t)fb_ld16(p + 2 * i);
    case CRUCIBLE_DT_I32: return (int32_t)fb_ld32(p + 4 * i);
    case CRUCIBLE_DT_I64: return (double)(int64_t)fb_ld64(p + 8 * i);
    default: return 0.0;
    }
}

int tl_const_ints(tl_ctx *c, int32_t ti, int64_t *out, uint32_t max,
                  uint32_t *n, const char *what)
{
    int32_t dt = ti >= 0 ? c->vals[ti].dtype : 0;
    if (!tl_is_const(c, ti) || (dt != CRUCIBLE_DT_I32 && dt != CRUCIBLE_DT_I64))
        return tl_unsup(c, "%s must be a constant INT32 / INT64 tensor", what);
    uint64_t cnt = tl_numel(tl_t(c, ti));
    if (!cnt || cnt > max)
        return tl_unsup(c, "%s has %llu values (expected at most %u)", what,
                        (unsigned long long)cnt, (unsigned)max);
    const uint8_t *p = c->vals[ti].data;
    for (uint64_t i = 0; i < cnt; i++)
        out[i] = dt == CRUCIBLE_DT_I32 ? (int64_t)(int32_t)fb_ld32(p + 4 * i)
                                       : (int64_t)fb_ld64(p + 8 * i);
    *n = (uint32_t)cnt;
    return TL_OK;
}

int tl_const_scalar(tl_ctx *c, int32_t ti, double *v, const char *what)
{
    if (!tl_is_const(c, ti) || tl_numel(tl_t(c, ti)) != 1)
        return tl_unsup(c, "%s must be a constant scalar", what);
    if (!tl_elem_size(c->vals[ti].dtype) ||
        c->vals[ti].dtype == CRUCIBLE_DT_BOOL)
        return tl_unsup(c, "%s has type %s", what,
                        tfl_type_name(tl_t(c, ti)->type));
    *v = tl_elem_f(c, ti, 0);
    return TL_OK;
}

/* The constant value of ti permuted: new axis j = old axis perm[j]. */
static void *permute(tl_ctx *c, int32_t ti, const int32_t *perm, int64_t *nd)
{
    const tfl_tensor *t = tl_t(c, ti);
    const uint8_t *src = c->vals[ti].data;
    int32_t r = t->rank;
    size_t es = tl_elem_size(c->vals[ti].dtype);
    uint64_t n = tl_numel(t);
    if (!es || !n || r > TFL_MAX_RANK || c->vals[ti].bytes != n * es)
        return NULL;
    uint8_t *dst = tfl_alloc_array(c->a, n, es);
    if (!dst) return NULL;
    uint64_t ost[TFL_MAX_RANK], idx[TFL_MAX_RANK] = {0};
    uint64_t s = 1;
    for (int32_t d = r - 1; d >= 0; d--) {
        ost[d] = s;
        s *= (uint64_t)t->dims[d];
    }
    for (int32_t j = 0; j < r; j++) nd[j] = t->dims[perm[j]];
    for (uint64_t o = 0; o < n; o++) {
        uint64_t at = 0;
        for (int32_t j = 0; j < r; j++) at += idx[j] * ost[perm[j]];
        memcpy(dst + o * es, src + at * es, es);
        for (int32_t j = r - 1; j >= 0; j--) {
            if (++idx[j] < (uint64_t)nd[j]) break;
            idx[j] = 0;
        }
    }
    return dst;
}

/* ---- values -----------------------------------------------------------------*/
static const int32_t k_to_nchw[4] = {0, 3, 1, 2};

int32_t tl_get(tl_ctx *c, int32_t ti)
{
    tl_val *v = &c->vals[ti];
    if (v->ir >= 0) return v->ir;
    const tfl_tensor *t = tl_t(c, ti);
    if (!v->dtype || t->rank > TFL_MAX_RANK)
        return tl_fail(c, CRUCIBLE_E_UNSUPPORTED,
                       "operator %u (%s): tensor %s (%s, rank %d) has no IR "
                       "representation",
                       (unsigned)c->op_index, c->op_name, tl_tname(c, ti),
                       tfl_type_name(t->type), (int)t->rank);
    if (v->data) {
        int32_t ir = tl_tensor(c, t->name, v->dtype, t->rank, t->dims, t, NULL);
        if (ir < 0) return ir;
        int rc = set_data(c, ir, v->data, v->bytes, tl_tname(c, ti));
        if (rc) return rc;
        return v->ir = ir;
    }
    if (v->nchw >= 0) {
        int32_t ir = tl_tensor(c, t->name, v->dtype, t->rank, t->dims, t, NULL);
        if (ir < 0) return ir;
        char *sfx = tl_printf(c, "to_nhwc_%d", (int)ti);
        if (!sfx) return tl_nomem(c);
        int32_t n = tl_node(c, "transpose", sfx, 1, &v->nchw, 1, &ir);
        if (n < 0) return n;
        int64_t p[4] = {0, 2, 3, 1};
        int rc = tl_attr_ints(c, n, "perm", 4, p);
        if (rc) return rc;
        return v->ir = ir;
    }
    return tl_fail(c, CRUCIBLE_E_GENERIC,
                   "operator %u (%s): internal error: tensor %s has no value",
                   (unsigned)c->op_index, c->op_name, tl_tname(c, ti));
}

int32_t tl_get_perm(tl_ctx *c, int32_t ti, const int32_t *perm,
                    const char *suffix)
{
    const tfl_tensor *t = tl_t(c, ti);
    int32_t r = t->rank, dt = c->vals[ti].dtype;
    int64_t nd[TFL_MAX_RANK];
    char *name = tl_printf(c, "%s:%s", t->name && *t->name ? t->name : "t",
                           suffix);
    if (!name) return tl_nomem(c);
    if (tl_is_const(c, ti)) {
        void *p = permute(c, ti, perm, nd);
        if (!p) {
            if (c->a->exhausted) return tl_nomem(c);
            return tl_fail(c, CRUCIBLE_E_UNSUPPORTED,
                           "operator %u (%s): constant %s (%s) cannot be "
                           "permuted",
                           (unsigned)c->op_index, c->op_name,
                           tl_tname(c, ti), tfl_type_name(t->type));
        }
        int32_t ir = tl_tensor(c, name, dt, r, nd, t, perm);
        if (ir < 0) return ir;
        int rc = set_data(c, ir, p, c->vals[ti].bytes, name);
        return rc ? rc : ir;
    }
    int32_t x = tl_get(c, ti);
    if (x < 0) return x;
    for (int32_t j = 0; j < r; j++) nd[j] = t->dims[perm[j]];
    int32_t ir = tl_tensor(c, name, dt, r, nd, t, perm);
    if (ir < 0) return ir;
    int32_t n = tl_node(c, "transpose", suffix, 1, &x, 1, &ir);
    if (n < 0) return n;
    int64_t p64[TFL_MAX_RANK];
    for (int32_t j = 0; j < r; j++) p64[j] = perm[j];
    int rc = tl_attr_ints(c, n, "perm", (uint32_t)r, p64);
    return rc ? rc : ir;
}

int32_t tl_get_nchw(tl_ctx *c, int32_t ti)
{
    tl_val *v = &c->vals[ti];
    if (v->nchw >= 0) return v->nchw;
    int32_t ir = tl_get_perm(c, ti, k_to_nchw, "nchw");
    if (ir >= 0) v->nchw = ir;
    return ir;
}

int32_t tl_out(tl_ctx *c, int32_t ti)
{
    const tfl_tensor *t = tl_t(c, ti);
    int32_t ir = tl_tensor(c, t->name, c->vals[ti].dtype, t->rank, t->dims, t,
                           NULL);
    if (ir >= 0) c->vals[ti].ir = ir;
    return ir;
}

int32_t tl_out_nchw(tl_ctx *c, int32_t ti)
{
    const tfl_tensor *t = tl_t(c, ti);
    int64_t nd[4];
    for (int j = 0; j < 4; j++) nd[j] = t->dims[k_to_nchw[j]];
    char *name = tl_printf(c, "%s:nchw", t->name && *t->name ? t->name : "t");
    if (!name) return tl_nomem(c);
    int32_t ir = tl_tensor(c, name, c->vals[ti].dtype, 4, nd, t, k_to_nchw);
    if (ir >= 0) c->vals[ti].nchw = ir;
    return ir;
}

int32_t tl_tmp(tl_ctx *c, int32_t ti, const char *suffix, int32_t dtype,
               int32_t rank, const int64_t *dims, const int32_t *perm)
{
    const tfl_tensor *t = tl_t(c, ti);
    char *name = tl_printf(c, "%s:%s", t->name && *t->name ? t->name : "t",
                           suffix);
    if (!name) return tl_nomem(c);
    return tl_tensor(c, name, dtype ? dtype : c->vals[ti].dtype, rank, dims, t,
                     perm);
}

/* ---- fused activations ------------------------------------------------------*/
int tl_act_ok(tl_ctx *c, int8_t act)
{
    if (act >= TFL_ACT_NONE && act <= TFL_ACT_TANH) return TL_OK;
    if (act == TFL_ACT_SIGN_BIT)
        return tl_unsup(c, "fused activation SIGN_BIT");
    return tl_unsup(c, "unknown fused activation %d", (int)act);
}

int tl_act(tl_ctx *c, int8_t act, int32_t pre, int32_t out, int quantized)
{
    int32_t n;
    int rc = CRUCIBLE_OK;
    switch (act) {
    case TFL_ACT_RELU: n = tl_node(c, "relu", "act", 1, &pre, 1, &out); break;
    case TFL_ACT_TANH: n = tl_node(c, "tanh", "act", 1, &pre, 1, &out); break;
    case TFL_ACT_RELU6:
    case TFL_ACT_RELU_N1_TO_1:
        n = tl_node(c, "clip", "act", 1, &pre, 1, &out);
        if (n >= 0 &&
            !(rc = tl_attr_float(c, n, "min",
                                 act == TFL_ACT_RELU6 ? 0.0 : -1.0)))
            rc = tl_attr_float(c, n, "max", act == TFL_ACT_RELU6 ? 6.0 : 1.0);
        break;
    default:
        return tl_fail(c, CRUCIBLE_E_GENERIC, "internal: activation %d",
                       (int)act);
    }
    if (n < 0) return n;
    if (!rc && quantized) rc = tl_mark_int(c, n);
    return rc;
}

/* ---- unsupported operators ---------------------------------------------------*/
static int make_unsupported(tl_ctx *c)
{
    const tfl_operator *o = c->op;
    int32_t *ins = tfl_alloc_array(c->a, o->n_in + 1, sizeof *ins);
    int32_t *outs = tfl_alloc_array(c->a, o->n_out + 1, sizeof *outs);
    if (!ins || !outs) return tl_nomem(c);
    uint32_t ni = 0, no = 0;
    int32_t first_dt = 0;
    for (uint32_t k = 0; k < o->n_in; k++) {
        int32_t ti = o->in[k], v = -1;
        if (ti >= 0 && c->vals[ti].avail && c->vals[ti].dtype &&
            tl_t(c, ti)->rank <= TFL_MAX_RANK &&
            !(c->vals[ti].data && !tl_numel(tl_t(c, ti))) &&
            !tl_t(c, ti)->has_sparsity) {
            v = tl_get(c, ti);
            if (v < 0) return v;
            if (!first_dt) first_dt = c->vals[ti].dtype;
        }
        ins[ni++] = v;
    }
    for (uint32_t k = 0; k < o->n_out; k++) {
        int32_t ti = o->out[k];
        if (ti < 0) continue;
        const tfl_tensor *t = tl_t(c, ti);
        if (t->rank > TFL_MAX_RANK)
            return tl_fail(c, CRUCIBLE_E_UNSUPPORTED,
                           "operator %u (%s): output %s has rank %d; the IR "
                           "holds at most %d",
                           (unsigned)c->op_index, c->op_name,
                           tl_tname(c, ti), (int)t->rank, TFL_MAX_RANK);
        if (!c->vals[ti].dtype)
            c->vals[ti].dtype = first_dt ? first_dt : CRUCIBLE_DT_F32;
        int32_t ir = tl_out(c, ti);
        if (ir < 0) return ir;
        outs[no++] = ir;
    }
    if (!no) {
        int32_t ir = tl_tensor(c, tl_printf(c, "%s:unused", c->base),
                               CRUCIBLE_DT_F32, 0, NULL, NULL, NULL);
        if (ir < 0) return ir;
        outs[no++] = ir;
    }
    int32_t n = tl_node(c, "unsupported", NULL, ni, ins, no, outs);
    if (n < 0) return n;
    const char *src;
    if (c->code->code == TFL_OP_CUSTOM)
        src = tl_printf(c, "tflite:CUSTOM:%s", c->code->custom);
    else if (c->op_name)
        src = tl_printf(c, "tflite:%s", c->op_name);
    else
        src = tl_printf(c, "tflite:BUILTIN_%d", (int)c->code->code);
    if (!src) return tl_nomem(c);
    int rc;
    if ((rc = tl_attr_str(c, n, "source_op", src)) ||
        (rc = tl_attr_str(c, n, "reason", c->why)) ||
        (rc = tl_attr_int(c, n, "version", c->code->version)) ||
        (rc = tl_attr_int(c, n, "tflite_operator", c->op_index)))
        return rc;
    c->n_unsupported++;
    return CRUCIBLE_OK;
}

/* ---- per-operator checks -----------------------------------------------------*/
/* Fatal structural problems (the file is inconsistent). */
static int check_io(tl_ctx *c)
{
    const tfl_operator *o = c->op;
    for (uint32_t k = 0; k < o->n_in; k++) {
        int32_t ti = o->in[k];
        if (ti >= 0 && !c->vals[ti].avail)
            return tl_fail(c, CRUCIBLE_E_FORMAT,
                           "operator %u (%s) reads tensor %s, which is not a "
                           "graph input, a constant, or the output of an "
                           "earlier operator",
                           (unsigned)c->op_index,
                           c->op_name ? c->op_name : "?", tl_tname(c, ti));
    }
    for (uint32_t k = 0; k < o->n_out; k++) {
        int32_t ti = o->out[k];
        if (ti < 0) continue;
        int dup = 0;
        for (uint32_t j = 0; j < k; j++) dup |= o->out[j] == ti;
        if (c->vals[ti].avail || dup)
            return tl_fail(c, CRUCIBLE_E_FORMAT,
                           "operator %u (%s) writes tensor %s, which is %s",
                           (unsigned)c->op_index,
                           c->op_name ? c->op_name : "?", tl_tname(c, ti),
                           c->vals[ti].input    ? "a graph input"
                           : tl_t(c, ti)->data ? "a constant"
                                               : "written more than once");
    }
    return CRUCIBLE_OK;
}

/* Tensors the IR cannot hold make the operator unsupported. */
static int check_tensors(tl_ctx *c)
{
    const tfl_operator *o = c->op;
    for (uint32_t k = 0; k < o->n_in + o->n_out; k++) {
        int is_in = k < o->n_in;
        int32_t ti = is_in ? o->in[k] : o->out[k - o->n_in];
        if (ti < 0) continue;
        const tfl_tensor *t = tl_t(c, ti);
        const char *io = is_in ? "input" : "output";
        if (t->has_sparsity)
            return tl_unsup(c, "%s %s is a sparse tensor", io, tl_tname(c, ti));
        if (t->is_variable)
            return tl_unsup(c, "%s %s is a variable tensor (state)", io,
                            tl_tname(c, ti));
        if (!c->vals[ti].dtype)
            return tl_unsup(c, "%s %s has type %s, which the IR has no "
                               "dtype for",
                            io, tl_tname(c, ti), tfl_type_name(t->type));
        if (t->rank > TFL_MAX_RANK)
            return tl_unsup(c, "%s %s has rank %d (at most %d)", io,
                            tl_tname(c, ti), (int)t->rank, TFL_MAX_RANK);
        if (!tl_numel(t))
            return tl_unsup(c, "%s %s is empty or too large (a dimension "
                               "of 0, or more than 2^40 elements)",
                            io, tl_tname(c, ti));
        if (t->has_quant && t->q.details_type && tl_is_int(c->vals[ti].dtype))
            return tl_unsup(c, "%s %s uses custom quantisation", io,
                            tl_tname(c, ti));
        if (t->has_quant && t->q.n_scale > 1 && !c->vals[ti].data &&
            tl_is_int(c->vals[ti].dtype))
            return tl_unsup(c, "%s %s is an activation with per-axis "
                               "quantisation",
                            io, tl_tname(c, ti));
    }
    return TL_OK;
}

static int lower_op(tl_ctx *c, uint32_t i)
{
    const tfl_model *m = c->m;
    const tfl_operator *o = &m->ops[i];
    c->op_index = i;
    c->op = o;
    c->code = &m->opcodes[o->opcode_index];
    c->op_name = tfl_op_name(c->code->code);
    c->why[0] = 0;
    char lower[64];
    const char *nm = c->op_name ? c->op_name : "op";
    size_t k = 0;
    for (; nm[k] && k + 1 < sizeof lower; k++)
        lower[k] = (char)(nm[k] >= 'A' && nm[k] <= 'Z' ? nm[k] - 'A' + 'a'
                                                       : nm[k]);
    lower[k] = 0;
    char *b = tl_printf(c, "%s_%u", lower, (unsigned)i);
    if (!b) return tl_nomem(c);
    c->base = b;
    int rc = check_io(c);
    if (rc) return rc;

    const tl_opdef *def = NULL;
    if (c->code->code == TFL_OP_CUSTOM)
        rc = tl_unsup(c, "custom operator \"%s\"", c->code->custom);
    else if (!c->op_name)
        rc = tl_unsup(c, "unknown builtin operator code %d (newer than the "
                         "TFLite schema this frontend knows)",
                      (int)c->code->code);
    else if (!(def = tl_find_op(c->code->code)))
        rc = tl_unsup(c, "no lowering to the canonical op set");
    else if (c->code->version < 1)
        rc = tl_unsup(c, "invalid operator version %d", (int)c->code->version);
    else if (c->code->version > def->max_version)
        rc = tl_unsup(c, "version %d of %s is newer than this frontend "
                         "handles (up to %d)",
                      (int)c->code->version, c->op_name, (int)def->max_version);
    else if (def->opt_type && o->opt_type && o->opt_type != def->opt_type)
        return tl_fail(c, CRUCIBLE_E_FORMAT,
                       "operator %u (%s) carries builtin options of union "
                       "type %u; %s takes type %u",
                       (unsigned)i, c->op_name, (unsigned)o->opt_type,
                       c->op_name, (unsigned)def->opt_type);
    else
        rc = check_tensors(c);
    if (rc == TL_OK) rc = def->fn(c);
    if (rc < 0) return rc;
    if (rc == TL_UNSUP) {
        if ((rc = make_unsupported(c))) return rc;
    } else {
        for (uint32_t k2 = 0; k2 < o->n_out; k2++) {
            int32_t ti = o->out[k2];
            if (ti >= 0 && c->vals[ti].ir < 0 && c->vals[ti].nchw < 0 &&
                !c->vals[ti].data)
                return tl_fail(c, CRUCIBLE_E_GENERIC,
                               "operator %u (%s): internal error: output %s "
                               "was not produced",
                               (unsigned)i, c->op_name, tl_tname(c, ti));
        }
    }
    for (uint32_t k2 = 0; k2 < o->n_out; k2++)
        if (o->out[k2] >= 0) c->vals[o->out[k2]].avail = 1;
    return CRUCIBLE_OK;
}

/* ---- graph inputs, outputs, metadata ------------------------------------------*/
static int lower_inputs(tl_ctx *c, char *dyn, size_t dynlen)
{
    const tfl_model *m = c->m;
    c->base = "input";
    c->op_name = "graph input";
    size_t dl = 0;
    for (uint32_t k = 0; k < m->n_inputs; k++) {
        int32_t ti = m->inputs[k];
        const tfl_tensor *t = tl_t(c, ti);
        tl_val *v = &c->vals[ti];
        if (v->input)
            return tl_fail(c, CRUCIBLE_E_FORMAT,
                           "graph input %s is listed twice", tl_tname(c, ti));
        if (t->data)
            return tl_fail(c, CRUCIBLE_E_FORMAT,
                           "graph input %s has constant data (buffer %u)",
                           tl_tname(c, ti), (unsigned)t->buffer);
        if (!v->dtype)
            return tl_fail(c, CRUCIBLE_E_UNSUPPORTED,
                           "graph input %s has type %s, which the IR has no "
                           "dtype for",
                           tl_tname(c, ti), tfl_type_name(t->type));
        if (t->rank > TFL_MAX_RANK)
            return tl_fail(c, CRUCIBLE_E_UNSUPPORTED,
                           "graph input %s has rank %d (at most %d)",
                           tl_tname(c, ti), (int)t->rank, TFL_MAX_RANK);
        if (!tl_numel(t))
            return tl_fail(c, CRUCIBLE_E_UNSUPPORTED,
                           "graph input %s is empty (a dimension of 0) or "
                           "has more than 2^40 elements",
                           tl_tname(c, ti));
        if (t->has_quant && t->q.details_type && tl_is_int(v->dtype))
            return tl_fail(c, CRUCIBLE_E_UNSUPPORTED,
                           "graph input %s uses custom quantisation",
                           tl_tname(c, ti));
        int32_t ir = tl_out(c, ti);
        if (ir < 0) return ir;
        int rc = c->b->mark_input(c->b->ctx, ir);
        if (rc < 0) return builder_err(c, rc, "graph input", tl_tname(c, ti));
        v->input = 1;
        v->avail = 1;
        if (t->dynamic && dl + 80 < dynlen)
            dl += (size_t)snprintf(dyn + dl, dynlen - dl, "%s%.60s", dl ? ", " : "",
                                   tl_tname(c, ti));
    }
    return CRUCIBLE_OK;
}

static int lower_outputs(tl_ctx *c)
{
    const tfl_model *m = c->m;
    c->base = "output";
    c->op_name = "graph output";
    c->op_index = m->n_ops;
    if (!m->n_outputs)
        return tl_fail(c, CRUCIBLE_E_FORMAT, "the graph has no outputs");
    for (uint32_t k = 0; k < m->n_outputs; k++) {
        int32_t ti = m->outputs[k];
        for (uint32_t j = 0; j < k; j++)
            if (m->outputs[j] == ti)
                return tl_fail(c, CRUCIBLE_E_UNSUPPORTED,
                               "graph output %s is listed twice",
                               tl_tname(c, ti));
        if (!c->vals[ti].avail)
            return tl_fail(c, CRUCIBLE_E_FORMAT,
                           "graph output %s is not written by any operator",
                           tl_tname(c, ti));
        if (!c->vals[ti].dtype || tl_t(c, ti)->rank > TFL_MAX_RANK)
            return tl_fail(c, CRUCIBLE_E_UNSUPPORTED,
                           "graph output %s (%s, rank %d) has no IR "
                           "representation",
                           tl_tname(c, ti), tfl_type_name(tl_t(c, ti)->type),
                           (int)tl_t(c, ti)->rank);
        int32_t ir = tl_get(c, ti);
        if (ir < 0) return ir;
        int rc = c->b->mark_output(c->b->ctx, ir);
        if (rc < 0) return builder_err(c, rc, "graph output", tl_tname(c, ti));
    }
    return CRUCIBLE_OK;
}

static void set_meta(tl_ctx *c, const char *dyn)
{
    const tfl_model *m = c->m;
    const crucible_ir_builder *b = c->b;
    char buf[256];
    b->set_meta(b->ctx, "format", "tflite");
    b->set_meta(b->ctx, "tflite_schema_version", "3");
    if (m->description && *m->description) {
        snprintf(buf, sizeof buf, "%.200s", m->description);
        b->set_meta(b->ctx, "description", buf);
    }
    for (uint32_t i = 0; i < m->n_meta; i++) {
        if (strcmp(m->meta[i].name, "min_runtime_version") ||
            m->meta[i].buffer >= m->n_buffers)
            continue;
        const tfl_buffer *bf = &m->buffers[m->meta[i].buffer];
        size_t n = 0;
        while (n < bf->size && n < 32 && bf->data[n] >= 0x20 &&
               bf->data[n] < 0x7f)
            n++;
        if (n) {
            snprintf(buf, sizeof buf, "%.*s", (int)n, (const char *)bf->data);
            b->set_meta(b->ctx, "tflite_min_runtime_version", buf);
        }
    }
    if (m->n_subgraphs > 1) {
        snprintf(buf, sizeof buf,
                 "%u subgraphs; only subgraph 0 (the main graph) is lowered",
                 (unsigned)m->n_subgraphs);
        b->set_meta(b->ctx, "tflite_subgraphs", buf);
    }
    b->set_meta(b->ctx, "layout",
                "graph inputs and outputs keep the model's layout (NHWC); "
                "spatial ops run in NCHW between transposes");
    if (dyn && *dyn) {
        snprintf(buf, sizeof buf,
                 "dynamic dims (shape_signature -1) fixed at the shape's "
                 "size: %.160s",
                 dyn);
        b->set_meta(b->ctx, "dynamic_dims", buf);
    }
}

/* ---- entry ----------------------------------------------------------------------*/
int tfl_lower(const tfl_model *m, size_t file_len, tfl_arena *a,
              const crucible_ir_builder *b, char *err, size_t errlen,
              uint32_t *n_unsupported)
{
    tl_ctx cx, *c = &cx;
    memset(c, 0, sizeof *c);
    c->b = b;
    c->a = a;
    c->m = m;
    c->err = err;
    c->errlen = errlen;
    c->op_name = "?";
    c->base = "graph";
    c->const_limit = 4 * (uint64_t)file_len + ((uint64_t)64 << 20);
    if (err && errlen) err[0] = 0;
    if (n_unsupported) *n_unsupported = 0;
    c->vals = tfl_alloc_array(a, m->n_tensors + 1, sizeof *c->vals);
    if (!c->vals) return tl_nomem(c);
    for (uint32_t i = 0; i < m->n_tensors; i++) {
        const tfl_tensor *t = &m->tensors[i];
        c->vals[i].ir = c->vals[i].nchw = -1;
        c->vals[i].dtype = tl_dtype(t->type);
        c->vals[i].data = t->data;
        c->vals[i].bytes = t->data_bytes;
        c->vals[i].avail = t->data != NULL;
    }
    char dyn[256] = "";
    int rc = lower_inputs(c, dyn, sizeof dyn);
    for (uint32_t i = 0; !rc && i < m->n_ops; i++) rc = lower_op(c, i);
    if (!rc) rc = lower_outputs(c);
    if (!rc) {
        const char *gn = m->sg_name && *m->sg_name ? m->sg_name : "tflite";
        int r2 = b->set_name(b->ctx, gn);
        if (r2 < 0) rc = builder_err(c, r2, "graph name", gn);
    }
    if (!rc) set_meta(c, dyn);
    if (n_unsupported) *n_unsupported = c->n_unsupported;
    return rc;
}
