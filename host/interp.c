/* interp.c - the reference interpreter: the graph driver, elementwise ops,
 * data movement, cast, quantize / dequantize / requantize. The
 * neural-network kernels (dense, matmul, conv, pooling, softmax,
 * reductions; the integer forms of dense, matmul, conv2d) are in
 * interp_nn.c, the language-model ops (rms_norm, rope, silu, kv_write,
 * attention) in interp_llm.c.
 *
 * Semantics, including the exact float evaluation order that targets must
 * reproduce to be bit-exact, are in docs/ir-ops.md. Arithmetic is single
 * precision, one IEEE operation per C operator: no FP contraction (fused
 * multiply-add) and no excess precision. */
#include "interp.h"

#include <crucible/kernels.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* No fused multiply-add: every product is rounded before it is added. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "the reference interpreter needs FLT_EVAL_METHOD == 0 (SSE, not x87)"
#endif

#define NERR(...) interp_node_err(err, errlen, n, CRUCIBLE_E_INVALID, __VA_ARGS__)
#define NUNSUP(...)                                                         \
    interp_node_err(err, errlen, n, CRUCIBLE_E_UNSUPPORTED, __VA_ARGS__)

static uint64_t numel(const cr_array *a)
{
    uint64_t e = 1;
    for (int32_t i = 0; i < a->rank; i++) e *= (uint64_t)a->dims[i];
    return e;
}

static inline void copy_elem(char *dst, const char *src, size_t es)
{
    switch (es) {
    case 1: *dst = *src; break;
    case 2: memcpy(dst, src, 2); break;
    case 4: memcpy(dst, src, 4); break;
    case 8: memcpy(dst, src, 8); break;
    default: memcpy(dst, src, es);
    }
}

static int need_f32(const cr_node *n, const cr_array *const *in,
                    const cr_array *out, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < n->n_inputs; i++)
        if (in[i] && in[i]->dtype != CRUCIBLE_DT_F32)
            return NUNSUP("input %u is %s; the reference interpreter runs "
                          "this op on f32 only",
                          i, ir_dtype_name(in[i]->dtype));
    if (out->dtype != CRUCIBLE_DT_F32)
        return NUNSUP("output is %s; the reference interpreter runs this op "
                      "on f32 only",
                      ir_dtype_name(out->dtype));
    return CRUCIBLE_OK;
}

/* ---- elementwise binary ops -------------------------------------------- */
static inline float f_max(float a, float b)
{
    return (a >= b || a != a) ? a : b;
}
static inline float f_min(float a, float b)
{
    return (a <= b || a != a) ? a : b;
}

#define BIN_LOOP(T, EXPR)                                                   \
    do {                                                                    \
        const T *pa = (const T *)a->data, *pb = (const T *)b->data;         \
        T *po = (T *)o->data;                                               \
        for (uint64_t j = 0; j < ne; j++) {                                 \
            T x = pa[it.off[0]], y = pb[it.off[1]];                         \
            po[j] = (EXPR);                                                 \
            interp_it_next(&it);                                                   \
        }                                                                   \
    } while (0)

/* Integer arithmetic wraps modulo 2^bits (computed unsigned). */
#define INT_BIN(T, UT, TMIN)                                                \
    switch (op) {                                                           \
    case CRUCIBLE_OP_ADD: BIN_LOOP(T, (T)((UT)x + (UT)y)); break;           \
    case CRUCIBLE_OP_SUB: BIN_LOOP(T, (T)((UT)x - (UT)y)); break;           \
    case CRUCIBLE_OP_MUL: BIN_LOOP(T, (T)((UT)x * (UT)y)); break;           \
    case CRUCIBLE_OP_DIV:                                                   \
        BIN_LOOP(T, (x == TMIN && y == -1) ? TMIN : x / y);                 \
        break;                                                              \
    case CRUCIBLE_OP_MAX: BIN_LOOP(T, x >= y ? x : y); break;               \
    case CRUCIBLE_OP_MIN: BIN_LOOP(T, x <= y ? x : y); break;               \
    default: return NUNSUP("not supported for %s", ir_dtype_name(o->dtype)); \
    }

/* o = a OP b with broadcasting; a may be o itself (same shape). */
static int binary(const cr_node *n, int32_t op, const cr_array *a,
                  const cr_array *b, cr_array *o, char *err, size_t errlen)
{
    uint64_t ne = numel(o);
    interp_iter it;
    interp_it_init(&it, o->rank, o->dims);
    interp_bcast_strides(a, o->rank, it.st[0]);
    interp_bcast_strides(b, o->rank, it.st[1]);
    if (a->dtype != o->dtype || b->dtype != o->dtype)
        return NUNSUP("inputs %s, %s and output %s: mixed dtypes",
                      ir_dtype_name(a->dtype), ir_dtype_name(b->dtype),
                      ir_dtype_name(o->dtype));
    if (op == CRUCIBLE_OP_DIV && o->dtype != CRUCIBLE_DT_F32) {
        uint64_t nb = numel(b);
        size_t es = interp_elem_size(b->dtype);
        for (uint64_t j = 0; j < nb; j++) {
            int64_t v = 0;
            if (es == 4) {
                int32_t v32;
                memcpy(&v32, (const char *)b->data + 4 * j, 4);
                v = v32;
            } else if (es == 8) {
                memcpy(&v, (const char *)b->data + 8 * j, 8);
            }
            if (v == 0) return NERR("integer division by zero");
        }
    }
    switch (o->dtype) {
    case CRUCIBLE_DT_F32:
        switch (op) {
        case CRUCIBLE_OP_ADD: BIN_LOOP(float, x + y); break;
        case CRUCIBLE_OP_SUB: BIN_LOOP(float, x - y); break;
        case CRUCIBLE_OP_MUL: BIN_LOOP(float, x * y); break;
        case CRUCIBLE_OP_DIV: BIN_LOOP(float, x / y); break;
        case CRUCIBLE_OP_POW: BIN_LOOP(float, powf(x, y)); break;
        case CRUCIBLE_OP_MAX: BIN_LOOP(float, f_max(x, y)); break;
        case CRUCIBLE_OP_MIN: BIN_LOOP(float, f_min(x, y)); break;
        default: return NERR("not a binary op");
        }
        break;
    case CRUCIBLE_DT_I32: INT_BIN(int32_t, uint32_t, INT32_MIN) break;
    case CRUCIBLE_DT_I64: INT_BIN(int64_t, uint64_t, INT64_MIN) break;
    default:
        return NUNSUP("not supported for %s (f32, i32, i64 only)",
                      ir_dtype_name(o->dtype));
    }
    return CRUCIBLE_OK;
}

static int exec_binary(const cr_node *n, const cr_array *const *in,
                       cr_array *o, char *err, size_t errlen)
{
    if (n->n_inputs == 1) {
        /* max/min of one input: a copy */
        if (in[0]->dtype != o->dtype) return NERR("dtype mismatch");
        memcpy(o->data, in[0]->data, o->bytes);
        return CRUCIBLE_OK;
    }
    int rc = binary(n, n->op, in[0], in[1], o, err, errlen);
    for (uint32_t i = 2; rc == CRUCIBLE_OK && i < n->n_inputs; i++)
        rc = binary(n, n->op, o, in[i], o, err, errlen);
    return rc;
}

/* ---- elementwise unary ops (f32) ---------------------------------------- */
static int attr_float(const cr_node *n, const char *name, float dflt,
                      float *v, char *err, size_t errlen)
{
    const cr_attr *a = ir_attr(n, name);
    if (!a) {
        *v = dflt;
        return CRUCIBLE_OK;
    }
    if (a->type != CRUCIBLE_ATTR_FLOAT && a->type != CRUCIBLE_ATTR_INT)
        return NERR("attribute %s must be a number", name);
    *v = (float)ir_attr_f(n, name, dflt);
    return CRUCIBLE_OK;
}

static int exec_unary(const cr_node *n, const cr_array *const *in,
                      cr_array *o, char *err, size_t errlen)
{
    int rc = need_f32(n, in, o, err, errlen);
    if (rc) return rc;
    const float *x = (const float *)in[0]->data;
    float *y = (float *)o->data;
    uint64_t ne = numel(o);
    float alpha = 0, beta = 0, lo = -INFINITY, hi = INFINITY;
    switch (n->op) {
    case CRUCIBLE_OP_LEAKY_RELU:
        rc = attr_float(n, "alpha", 0.01f, &alpha, err, errlen);
        break;
    case CRUCIBLE_OP_HARD_SIGMOID:
        if (!(rc = attr_float(n, "alpha", 0.2f, &alpha, err, errlen)))
            rc = attr_float(n, "beta", 0.5f, &beta, err, errlen);
        break;
    case CRUCIBLE_OP_CLIP:
        if (!(rc = attr_float(n, "min", -INFINITY, &lo, err, errlen)))
            rc = attr_float(n, "max", INFINITY, &hi, err, errlen);
        if (n->n_inputs > 1 && in[1]) lo = *(const float *)in[1]->data;
        if (n->n_inputs > 2 && in[2]) hi = *(const float *)in[2]->data;
        break;
    default:
        break;
    }
    if (rc) return rc;
#define UN_LOOP(EXPR)                                                       \
    for (uint64_t j = 0; j < ne; j++) {                                     \
        float v = x[j];                                                     \
        y[j] = (EXPR);                                                      \
    }                                                                       \
    break
    switch (n->op) {
    case CRUCIBLE_OP_RELU: UN_LOOP(v < 0.0f ? 0.0f : v);
    case CRUCIBLE_OP_LEAKY_RELU: UN_LOOP(v < 0.0f ? alpha * v : v);
    case CRUCIBLE_OP_CLIP:
        for (uint64_t j = 0; j < ne; j++) {
            float v = x[j];
            if (v < lo) v = lo;
            if (v > hi) v = hi;
            y[j] = v;
        }
        break;
    case CRUCIBLE_OP_SIGMOID: UN_LOOP(1.0f / (1.0f + expf(-v)));
    case CRUCIBLE_OP_TANH: UN_LOOP(tanhf(v));
    case CRUCIBLE_OP_HARD_SIGMOID:
        for (uint64_t j = 0; j < ne; j++) {
            float t = alpha * x[j] + beta;
            y[j] = t < 0.0f ? 0.0f : t > 1.0f ? 1.0f : t;
        }
        break;
    case CRUCIBLE_OP_HARD_SWISH:
        for (uint64_t j = 0; j < ne; j++) {
            float t = x[j] / 6.0f + 0.5f;
            t = t < 0.0f ? 0.0f : t > 1.0f ? 1.0f : t;
            y[j] = x[j] * t;
        }
        break;
    case CRUCIBLE_OP_EXP: UN_LOOP(expf(v));
    case CRUCIBLE_OP_LOG: UN_LOOP(logf(v));
    case CRUCIBLE_OP_SQRT: UN_LOOP(sqrtf(v));
    case CRUCIBLE_OP_NEG: UN_LOOP(-v);
    case CRUCIBLE_OP_ABS: UN_LOOP(fabsf(v));
    default: return NERR("not a unary op");
    }
#undef UN_LOOP
    return CRUCIBLE_OK;
}

static int exec_prelu(const cr_node *n, const cr_array *const *in,
                      cr_array *o, char *err, size_t errlen)
{
    int rc = need_f32(n, in, o, err, errlen);
    if (rc) return rc;
    const float *x = (const float *)in[0]->data;
    const float *s = (const float *)in[1]->data;
    float *y = (float *)o->data;
    uint64_t ne = numel(o);
    interp_iter it;
    interp_it_init(&it, o->rank, o->dims);
    interp_bcast_strides(in[1], o->rank, it.st[0]);
    for (uint64_t j = 0; j < ne; j++) {
        float v = x[j];
        y[j] = v < 0.0f ? s[it.off[0]] * v : v;
        interp_it_next(&it);
    }
    return CRUCIBLE_OK;
}

/* ---- data movement (any executable dtype) ------------------------------ */
static int exec_transpose(const cr_node *n, const cr_array *x, cr_array *o)
{
    int64_t xs[CRUCIBLE_MAX_RANK];
    size_t es = interp_elem_size(x->dtype);
    interp_contig_strides(x->rank, x->dims, xs);
    interp_iter it;
    interp_it_init(&it, o->rank, o->dims);
    const cr_attr *p = ir_attr(n, "perm");
    for (int32_t i = 0; i < o->rank; i++)
        it.st[0][i] = xs[p ? p->ints[i] : x->rank - 1 - i];
    uint64_t ne = numel(o);
    for (uint64_t j = 0; j < ne; j++) {
        copy_elem((char *)o->data + j * es,
                  (const char *)x->data + (size_t)it.off[0] * es, es);
        interp_it_next(&it);
    }
    return CRUCIBLE_OK;
}

static int exec_concat(const cr_node *n, const cr_array *const *in,
                       cr_array *o)
{
    int64_t ax = ir_attr_i(n, "axis", 0);
    if (ax < 0) ax += o->rank;
    size_t es = interp_elem_size(o->dtype);
    uint64_t outer = 1, inner = 1;
    for (int64_t i = 0; i < ax; i++) outer *= (uint64_t)o->dims[i];
    for (int32_t i = (int32_t)ax + 1; i < o->rank; i++)
        inner *= (uint64_t)o->dims[i];
    char *dst = (char *)o->data;
    for (uint64_t k = 0; k < outer; k++)
        for (uint32_t i = 0; i < n->n_inputs; i++) {
            size_t chunk = (size_t)((uint64_t)in[i]->dims[ax] * inner) * es;
            memcpy(dst, (const char *)in[i]->data + k * chunk, chunk);
            dst += chunk;
        }
    return CRUCIBLE_OK;
}

/* Stores v (already range-checked by the caller, or wrapped) as dtype. */
static void store_int(void *p, int32_t dtype, int64_t v)
{
    switch (dtype) {
    case CRUCIBLE_DT_I8: { int8_t t = (int8_t)(uint8_t)v; memcpy(p, &t, 1); break; }
    case CRUCIBLE_DT_U8: { uint8_t t = (uint8_t)v; memcpy(p, &t, 1); break; }
    case CRUCIBLE_DT_BOOL: { uint8_t t = v != 0; memcpy(p, &t, 1); break; }
    case CRUCIBLE_DT_I16: { int16_t t = (int16_t)(uint16_t)v; memcpy(p, &t, 2); break; }
    case CRUCIBLE_DT_I32: { int32_t t = (int32_t)(uint32_t)v; memcpy(p, &t, 4); break; }
    case CRUCIBLE_DT_I64: memcpy(p, &v, 8); break;
    default: break;
    }
}

static int64_t load_int(const void *p, int32_t dtype)
{
    switch (dtype) {
    case CRUCIBLE_DT_I8: { int8_t t; memcpy(&t, p, 1); return t; }
    case CRUCIBLE_DT_U8: case CRUCIBLE_DT_BOOL: { uint8_t t; memcpy(&t, p, 1); return t; }
    case CRUCIBLE_DT_I16: { int16_t t; memcpy(&t, p, 2); return t; }
    case CRUCIBLE_DT_I32: { int32_t t; memcpy(&t, p, 4); return t; }
    case CRUCIBLE_DT_I64: { int64_t t; memcpy(&t, p, 8); return t; }
    default: return 0;
    }
}

static int is_int_dtype(int32_t dt)
{
    return dt == CRUCIBLE_DT_I8 || dt == CRUCIBLE_DT_U8 ||
           dt == CRUCIBLE_DT_I16 || dt == CRUCIBLE_DT_I32 ||
           dt == CRUCIBLE_DT_I64 || dt == CRUCIBLE_DT_BOOL;
}

static void int_range(int32_t dt, int64_t *lo, int64_t *hi)
{
    switch (dt) {
    case CRUCIBLE_DT_I8: *lo = INT8_MIN; *hi = INT8_MAX; break;
    case CRUCIBLE_DT_U8: *lo = 0; *hi = UINT8_MAX; break;
    case CRUCIBLE_DT_BOOL: *lo = 0; *hi = 1; break;
    case CRUCIBLE_DT_I16: *lo = INT16_MIN; *hi = INT16_MAX; break;
    case CRUCIBLE_DT_I32: *lo = INT32_MIN; *hi = INT32_MAX; break;
    default: *lo = INT64_MIN; *hi = INT64_MAX; break;
    }
}

/* f32 -> integer: NaN -> 0, truncation toward zero, saturating. */
static int64_t f32_to_int_sat(float f, int32_t dt)
{
    int64_t lo, hi, v;
    int_range(dt, &lo, &hi);
    if (f != f) return 0;
    if (f >= 9223372036854775808.0f) v = INT64_MAX;
    else if (f < -9223372036854775808.0f) v = INT64_MIN;
    else v = (int64_t)f;
    return v < lo ? lo : v > hi ? hi : v;
}

static int exec_pad(const cr_node *n, const cr_array *x, cr_array *o,
                    char *err, size_t errlen)
{
    size_t es = interp_elem_size(x->dtype);
    int32_t r = x->rank;
    int64_t begin[CRUCIBLE_MAX_RANK] = {0}, xs[CRUCIBLE_MAX_RANK];
    const cr_attr *p = ir_attr(n, "pads");
    for (int32_t i = 0; p && i < r; i++) begin[i] = p->ints[i];
    const char *mode = ir_attr_s(n, "mode", "constant");
    int m = !strcmp(mode, "reflect") ? 1 : !strcmp(mode, "edge") ? 2 : 0;
    float fv;
    int rc = attr_float(n, "value", 0.0f, &fv, err, errlen);
    if (rc) return rc;
    char fill[8] = {0};
    if (x->dtype == CRUCIBLE_DT_F32)
        memcpy(fill, &fv, 4);
    else if (x->dtype == CRUCIBLE_DT_BOOL)
        fill[0] = fv != 0.0f;
    else if (is_int_dtype(x->dtype))
        store_int(fill, x->dtype, f32_to_int_sat(fv, x->dtype));
    else if (fv != 0.0f)
        return NUNSUP("a non-zero pad value for %s", ir_dtype_name(x->dtype));
    interp_contig_strides(r, x->dims, xs);
    int64_t idx[CRUCIBLE_MAX_RANK] = {0};
    uint64_t ne = numel(o);
    for (uint64_t j = 0; j < ne; j++) {
        int64_t off = 0;
        int inside = 1;
        for (int32_t d = 0; d < r; d++) {
            int64_t i = idx[d] - begin[d], dim = x->dims[d];
            if (i < 0 || i >= dim) {
                if (m == 0) {
                    inside = 0;
                    break;
                }
                if (m == 1) /* reflect, edge not repeated; |pad| < dim */
                    i = i < 0 ? -i : 2 * (dim - 1) - i;
                else
                    i = i < 0 ? 0 : dim - 1;
            }
            off += i * xs[d];
        }
        char *dst = (char *)o->data + j * es;
        if (inside)
            copy_elem(dst, (const char *)x->data + (size_t)off * es, es);
        else
            copy_elem(dst, fill, es);
        for (int32_t d = r - 1; d >= 0; d--) {
            if (++idx[d] < o->dims[d]) break;
            idx[d] = 0;
        }
    }
    return CRUCIBLE_OK;
}

static int exec_slice(const cr_node *n, const cr_array *x, cr_array *o)
{
    size_t es = interp_elem_size(x->dtype);
    int64_t xs[CRUCIBLE_MAX_RANK], start[CRUCIBLE_MAX_RANK] = {0},
        step[CRUCIBLE_MAX_RANK];
    for (int32_t i = 0; i < x->rank; i++) step[i] = 1;
    interp_contig_strides(x->rank, x->dims, xs);
    const cr_attr *st = ir_attr(n, "starts"), *ax = ir_attr(n, "axes"),
                  *sp = ir_attr(n, "steps");
    for (uint32_t i = 0; i < st->count; i++) {
        int64_t a = ax ? ax->ints[i] : (int64_t)i;
        if (a < 0) a += x->rank;
        int64_t d = x->dims[a], s = st->ints[i], k = sp ? sp->ints[i] : 1;
        if (s < 0) s += d;
        if (k > 0)
            s = s < 0 ? 0 : s > d ? d : s;
        else
            s = s < 0 ? 0 : s > d - 1 ? d - 1 : s;
        start[a] = s;
        step[a] = k;
    }
    int64_t base = 0;
    interp_iter it;
    interp_it_init(&it, o->rank, o->dims);
    for (int32_t i = 0; i < x->rank; i++) {
        base += start[i] * xs[i];
        /* |step| may be huge, but step * stride is only ever taken for
         * dims of size > 1, where |step| < dim keeps it in range */
        it.st[0][i] = o->dims[i] > 1 ? step[i] * xs[i] : 0;
    }
    uint64_t ne = numel(o);
    for (uint64_t j = 0; j < ne; j++) {
        copy_elem((char *)o->data + j * es,
                  (const char *)x->data + (size_t)(base + it.off[0]) * es, es);
        interp_it_next(&it);
    }
    return CRUCIBLE_OK;
}

static int exec_gather(const cr_node *n, const cr_array *x,
                       const cr_array *idx, cr_array *o, char *err,
                       size_t errlen)
{
    size_t es = interp_elem_size(x->dtype);
    int64_t ax = ir_attr_i(n, "axis", 0);
    if (ax < 0) ax += x->rank;
    uint64_t outer = 1, inner = 1, ni = numel(idx);
    for (int64_t i = 0; i < ax; i++) outer *= (uint64_t)x->dims[i];
    for (int32_t i = (int32_t)ax + 1; i < x->rank; i++)
        inner *= (uint64_t)x->dims[i];
    int64_t d = x->dims[ax];
    size_t chunk = (size_t)inner * es;
    char *dst = (char *)o->data;
    for (uint64_t k = 0; k < outer; k++)
        for (uint64_t j = 0; j < ni; j++) {
            int64_t v = load_int((const char *)idx->data +
                                     j * interp_elem_size(idx->dtype),
                                 idx->dtype);
            if (v < -d || v >= d)
                return NERR("index %lld is out of range for axis %lld of "
                            "size %lld",
                            (long long)v, (long long)ax, (long long)d);
            if (v < 0) v += d;
            memcpy(dst,
                   (const char *)x->data +
                       ((size_t)k * (size_t)d + (size_t)v) * chunk,
                   chunk);
            dst += chunk;
        }
    return CRUCIBLE_OK;
}

static int exec_cast(const cr_node *n, const cr_array *x, cr_array *o,
                     char *err, size_t errlen)
{
    int32_t sd = x->dtype, dd = o->dtype;
    size_t ses = interp_elem_size(sd), des = interp_elem_size(dd);
    if ((sd != CRUCIBLE_DT_F32 && !is_int_dtype(sd)) ||
        (dd != CRUCIBLE_DT_F32 && !is_int_dtype(dd)))
        return NUNSUP("cast from %s to %s", ir_dtype_name(sd),
                      ir_dtype_name(dd));
    uint64_t ne = numel(o);
    const char *src = (const char *)x->data;
    char *dst = (char *)o->data;
    for (uint64_t j = 0; j < ne; j++, src += ses, dst += des) {
        if (sd == CRUCIBLE_DT_F32) {
            float f;
            memcpy(&f, src, 4);
            if (dd == CRUCIBLE_DT_F32)
                memcpy(dst, &f, 4);
            else if (dd == CRUCIBLE_DT_BOOL)
                *dst = f != 0.0f;
            else
                store_int(dst, dd, f32_to_int_sat(f, dd));
        } else {
            int64_t v = load_int(src, sd);
            if (dd == CRUCIBLE_DT_F32) {
                float f = (float)v;
                memcpy(dst, &f, 4);
            } else {
                store_int(dst, dd, v); /* wraps; bool: v != 0 */
            }
        }
    }
    return CRUCIBLE_OK;
}

/* ---- quantisation -------------------------------------------------------*/
static float round_half_even(float v)
{
    float f = floorf(v);
    float d = v - f; /* exact */
    if (d > 0.5f) return f + 1.0f;
    if (d < 0.5f) return f;
    return fmodf(f, 2.0f) == 0.0f ? f : f + 1.0f;
}

/* The quantize / requantize rounding: NaN -> zp; otherwise
 * round_half_to_even(v) + zp computed exactly in integers; saturated to
 * [lo, hi]. */
static int64_t round_zp_sat(float v, int64_t zp, int64_t lo, int64_t hi)
{
    int64_t q;
    if (v != v) {
        q = zp;
    } else {
        float r = round_half_even(v);
        if (r >= 4294967296.0f) q = hi;
        else if (r <= -4294967296.0f) q = lo;
        else q = (int64_t)r + zp; /* |r| < 2^32, |zp| <= 2^31 */
    }
    return q < lo ? lo : q > hi ? hi : q;
}

int interp_quant_check(const cr_node *n, const cr_tensor *t,
                       const cr_array *v, char *err, size_t errlen)
{
    if (!t->quant_count || !t->scales || !t->zero_points)
        return NERR("tensor %s has no quantisation parameters", t->name);
    if (t->quant_block > 0)
        return NUNSUP("tensor %s is quantised in blocks of %d; only "
                      "dequantize takes block-wise quantisation",
                      t->name, (int)t->quant_block);
    if (t->quant_axis >= 0) {
        if (t->quant_axis >= v->rank ||
            (int64_t)t->quant_count != v->dims[t->quant_axis])
            return NERR("tensor %s: %u scales do not fit axis %d", t->name,
                        t->quant_count, (int)t->quant_axis);
    } else if (t->quant_count != 1) {
        return NERR("tensor %s: per-tensor quantisation needs 1 scale",
                    t->name);
    }
    return CRUCIBLE_OK;
}

/* Iterates v, giving for element j the index of its scale. */
void interp_quant_layout(const cr_tensor *t, const cr_array *v,
                         uint64_t *inner, uint64_t *count)
{
    *inner = 1;
    *count = 1;
    if (t->quant_axis < 0) return;
    for (int32_t i = t->quant_axis + 1; i < v->rank; i++)
        *inner *= (uint64_t)v->dims[i];
    *count = t->quant_count;
}

static int exec_quantize(const cr_graph *g, const cr_node *n,
                         const cr_array *x, cr_array *o, char *err,
                         size_t errlen)
{
    const cr_tensor *t = &g->tensors[n->outputs[0]];
    int rc = interp_quant_check(n, t, o, err, errlen);
    if (rc) return rc;
    if (x->dtype != CRUCIBLE_DT_F32)
        return NUNSUP("input is %s; quantize takes f32",
                      ir_dtype_name(x->dtype));
    if (o->dtype != CRUCIBLE_DT_I8 && o->dtype != CRUCIBLE_DT_U8 &&
        o->dtype != CRUCIBLE_DT_I16 && o->dtype != CRUCIBLE_DT_I32)
        return NUNSUP("output dtype %s (i8, u8, i16, i32 only)",
                      ir_dtype_name(o->dtype));
    int64_t lo, hi;
    int_range(o->dtype, &lo, &hi);
    uint64_t inner, cnt, ne = numel(o);
    size_t es = interp_elem_size(o->dtype);
    interp_quant_layout(t, o, &inner, &cnt);
    const float *px = (const float *)x->data;
    for (uint64_t j = 0; j < ne; j++) {
        uint64_t qi = (j / inner) % cnt;
        float v = px[j] / t->scales[qi];
        store_int((char *)o->data + j * es, o->dtype,
                  round_zp_sat(v, t->zero_points[qi], lo, hi));
    }
    return CRUCIBLE_OK;
}

static int exec_dequantize(const cr_graph *g, const cr_node *n,
                           const cr_array *x, cr_array *o, char *err,
                           size_t errlen)
{
    const cr_tensor *t = &g->tensors[n->inputs[0]];
    const int packed = x->dtype == CRUCIBLE_DT_I4;
    if (x->dtype != CRUCIBLE_DT_I8 && x->dtype != CRUCIBLE_DT_U8 &&
        x->dtype != CRUCIBLE_DT_I16 && x->dtype != CRUCIBLE_DT_I32 && !packed)
        return NUNSUP("input dtype %s (i4, i8, u8, i16, i32 only)",
                      ir_dtype_name(x->dtype));
    uint64_t ne = numel(o);
    size_t es = interp_elem_size(x->dtype);
    float *y = (float *)o->data;
    if (t->quant_block > 0) {
        /* block-wise (GGUF Q8_0 / Q4_0 / Q4_1 weights): the scale index of
         * each element from the tensor's own dims (x has the same shape) */
        if (!t->scales || !t->zero_points || t->rank != x->rank ||
            ir_quant_block_count(t, t->quant_axis, t->quant_block) !=
                t->quant_count)
            return NERR("tensor %s: block quantisation does not fit its "
                        "shape", t->name);
        for (uint64_t j = 0; j < ne; j++) {
            uint64_t qi = ir_quant_index(t, j);
            int64_t q = packed ? (int64_t)crk_weight_get(
                                     (const uint8_t *)x->data, CRK_W_I4,
                                     (size_t)j)
                               : load_int((const char *)x->data + j * es,
                                          x->dtype);
            y[j] = t->scales[qi] * (float)(q - (int64_t)t->zero_points[qi]);
        }
        return CRUCIBLE_OK;
    }
    int rc = interp_quant_check(n, t, x, err, errlen);
    if (rc) return rc;
    uint64_t inner, cnt;
    interp_quant_layout(t, x, &inner, &cnt);
    for (uint64_t j = 0; j < ne; j++) {
        uint64_t qi = (j / inner) % cnt;
        int64_t q = packed ? (int64_t)crk_weight_get((const uint8_t *)x->data,
                                                      CRK_W_I4, (size_t)j)
                           : load_int((const char *)x->data + j * es,
                                      x->dtype);
        y[j] = t->scales[qi] * (float)(q - (int64_t)t->zero_points[qi]);
    }
    return CRUCIBLE_OK;
}

/* requantize, rounding "float_rne": with s_in, z_in the input tensor's
 * parameters and s_out, z_out the output tensor's (each per tensor or per
 * axis, chosen independently per element),
 *   m = s_in / s_out                      (one f32 division)
 *   v = (float)(q - z_in) * m             (exact int64 difference, rounded
 *                                          to f32, one f32 multiply)
 *   y = saturate(round_half_even(v) + z_out)
 * which is the ONNX QLinearConv / QLinearMatMul rule when the input is
 * the i32 accumulator with s_in = x_scale * w_scale and z_in = 0. */
static int exec_requantize(const cr_graph *g, const cr_node *n,
                           const cr_array *x, cr_array *o, char *err,
                           size_t errlen)
{
    const char *rounding = ir_attr_s(n, "rounding", "float_rne");
    if (!strcmp(rounding, "fixed_q31")) /* interp_exec_q runs these */
        return NERR("internal: rounding \"fixed_q31\" reached the float "
                    "rule");
    if (strcmp(rounding, "float_rne"))
        return NERR("rounding \"%s\" is not one of float_rne, fixed_q31",
                    rounding);
    const cr_tensor *ti = &g->tensors[n->inputs[0]];
    const cr_tensor *to = &g->tensors[n->outputs[0]];
    int rc = interp_quant_check(n, ti, x, err, errlen);
    if (rc || (rc = interp_quant_check(n, to, o, err, errlen))) return rc;
    if (x->dtype != CRUCIBLE_DT_I8 && x->dtype != CRUCIBLE_DT_U8 &&
        x->dtype != CRUCIBLE_DT_I16 && x->dtype != CRUCIBLE_DT_I32)
        return NUNSUP("input dtype %s (i8, u8, i16, i32 only)",
                      ir_dtype_name(x->dtype));
    if (o->dtype != CRUCIBLE_DT_I8 && o->dtype != CRUCIBLE_DT_U8 &&
        o->dtype != CRUCIBLE_DT_I16 && o->dtype != CRUCIBLE_DT_I32)
        return NUNSUP("output dtype %s (i8, u8, i16, i32 only)",
                      ir_dtype_name(o->dtype));
    int64_t lo, hi;
    int_range(o->dtype, &lo, &hi);
    uint64_t in_inner, in_cnt, out_inner, out_cnt, ne = numel(o);
    size_t xes = interp_elem_size(x->dtype), oes = interp_elem_size(o->dtype);
    interp_quant_layout(ti, x, &in_inner, &in_cnt);
    interp_quant_layout(to, o, &out_inner, &out_cnt);
    for (uint64_t j = 0; j < ne; j++) {
        uint64_t qi = (j / in_inner) % in_cnt, qo = (j / out_inner) % out_cnt;
        const float m = ti->scales[qi] / to->scales[qo];
        int64_t q = load_int((const char *)x->data + j * xes, x->dtype);
        float v = (float)(q - (int64_t)ti->zero_points[qi]) * m;
        store_int((char *)o->data + j * oes, o->dtype,
                  round_zp_sat(v, to->zero_points[qo], lo, hi));
    }
    return CRUCIBLE_OK;
}

/* ---- dispatch -----------------------------------------------------------*/
int interp_exec_node(const cr_graph *g, const cr_node *n,
                     const cr_array *const *in, cr_array *out, char *err,
                     size_t errlen)
{
    const cr_array *x = n->n_inputs ? in[0] : NULL;
    if (out && interp_q_claims(n, in)) /* TFLite int8 kernels, interp_q.c */
        return interp_exec_q(g, n, in, out, err, errlen);
    switch (n->op) {
    case CRUCIBLE_OP_UNSUPPORTED:
        if (err && errlen)
            snprintf(err, errlen, "node %s: op %s is not supported (%s)",
                     n->name, ir_attr_s(n, "source_op", "?"),
                     ir_attr_s(n, "reason", "no reason given"));
        return CRUCIBLE_E_UNSUPPORTED;
    case CRUCIBLE_OP_ADD: case CRUCIBLE_OP_SUB: case CRUCIBLE_OP_MUL:
    case CRUCIBLE_OP_DIV: case CRUCIBLE_OP_MAX: case CRUCIBLE_OP_MIN:
    case CRUCIBLE_OP_POW:
        return exec_binary(n, in, out, err, errlen);
    case CRUCIBLE_OP_RELU: case CRUCIBLE_OP_LEAKY_RELU: case CRUCIBLE_OP_CLIP:
    case CRUCIBLE_OP_SIGMOID: case CRUCIBLE_OP_TANH:
    case CRUCIBLE_OP_HARD_SIGMOID: case CRUCIBLE_OP_HARD_SWISH:
    case CRUCIBLE_OP_EXP: case CRUCIBLE_OP_LOG: case CRUCIBLE_OP_SQRT:
    case CRUCIBLE_OP_NEG: case CRUCIBLE_OP_ABS:
        return exec_unary(n, in, out, err, errlen);
    case CRUCIBLE_OP_PRELU:
        return exec_prelu(n, in, out, err, errlen);
    case CRUCIBLE_OP_RESHAPE:
        memcpy(out->data, x->data, out->bytes);
        return CRUCIBLE_OK;
    case CRUCIBLE_OP_TRANSPOSE:
        return exec_transpose(n, x, out);
    case CRUCIBLE_OP_CONCAT:
        return exec_concat(n, in, out);
    case CRUCIBLE_OP_PAD:
        return exec_pad(n, x, out, err, errlen);
    case CRUCIBLE_OP_SLICE:
        return exec_slice(n, x, out);
    case CRUCIBLE_OP_GATHER:
        return exec_gather(n, x, in[1], out, err, errlen);
    case CRUCIBLE_OP_CAST:
        return exec_cast(n, x, out, err, errlen);
    case CRUCIBLE_OP_QUANTIZE:
        return exec_quantize(g, n, x, out, err, errlen);
    case CRUCIBLE_OP_DEQUANTIZE:
        return exec_dequantize(g, n, x, out, err, errlen);
    case CRUCIBLE_OP_REQUANTIZE:
        return exec_requantize(g, n, x, out, err, errlen);
    case CRUCIBLE_OP_RMS_NORM: case CRUCIBLE_OP_ROPE: case CRUCIBLE_OP_SILU:
    case CRUCIBLE_OP_KV_WRITE: case CRUCIBLE_OP_ATTENTION:
        return interp_exec_llm(g, n, in, out, err, errlen);
    case CRUCIBLE_OP_DENSE: case CRUCIBLE_OP_MATMUL: case CRUCIBLE_OP_CONV2D:
        if (x && (x->dtype == CRUCIBLE_DT_U8 || x->dtype == CRUCIBLE_DT_I8))
            return interp_exec_int_nn(g, n, in, out, err, errlen);
        if (need_f32(n, in, out, err, errlen))
            return CRUCIBLE_E_UNSUPPORTED;
        return interp_exec_nn(g, n, in, out, err, errlen);
    case CRUCIBLE_OP_CONV_TRANSPOSE2D: case CRUCIBLE_OP_SOFTMAX:
    case CRUCIBLE_OP_LOG_SOFTMAX: case CRUCIBLE_OP_MAX_POOL2D:
    case CRUCIBLE_OP_AVG_POOL2D: case CRUCIBLE_OP_GLOBAL_AVG_POOL:
    case CRUCIBLE_OP_GLOBAL_MAX_POOL: case CRUCIBLE_OP_REDUCE_MEAN:
    case CRUCIBLE_OP_REDUCE_SUM: case CRUCIBLE_OP_REDUCE_MAX:
        if (need_f32(n, in, out, err, errlen))
            return CRUCIBLE_E_UNSUPPORTED;
        return interp_exec_nn(g, n, in, out, err, errlen);
    default:
        return NUNSUP("op is not implemented by the reference interpreter");
    }
}

/* ---- the graph driver ---------------------------------------------------*/
static void fmt_arr(char *buf, size_t len, int32_t dtype, int32_t rank,
                    const int64_t *dims)
{
    size_t k = 0;
    int w = snprintf(buf, len, "%s[", ir_dtype_name(dtype));
    if (w > 0) k = (size_t)w;
    for (int32_t i = 0; i < rank && k < len; i++) {
        w = snprintf(buf + k, len - k, "%s%lld", i ? "," : "",
                     (long long)dims[i]);
        if (w > 0) k += (size_t)w;
    }
    if (k < len) snprintf(buf + k, len - k, "]");
}

#define GERR(st, ...)                                                       \
    (((err && errlen) ? (void)snprintf(err, errlen, __VA_ARGS__) : (void)0), \
     (st))

static int check_input(const cr_tensor *t, const cr_array *a, char *err,
                       size_t errlen)
{
    char s1[256], s2[256];
    int ok = a->dtype == t->dtype && a->rank >= 0 &&
             a->rank <= CRUCIBLE_MAX_RANK &&
             (t->rank < 0 || a->rank == t->rank);
    for (int32_t i = 0; ok && i < a->rank; i++)
        if (a->dims[i] < 1 || (uint64_t)a->dims[i] > IR_MAX_ELEMS ||
            (t->rank >= 0 && t->dims[i] > 0 && t->dims[i] != a->dims[i]))
            ok = 0;
    if (!ok) {
        fmt_arr(s1, sizeof s1, t->dtype, t->rank < 0 ? 0 : t->rank, t->dims);
        fmt_arr(s2, sizeof s2, a->dtype,
                a->rank < 0 || a->rank > CRUCIBLE_MAX_RANK ? 0 : a->rank,
                a->dims);
        return GERR(CRUCIBLE_E_INVALID,
                    "input %s: expected %s (0 = any), got %s", t->name, s1,
                    s2);
    }
    size_t es = interp_elem_size(a->dtype);
    uint64_t e = 1;
    for (int32_t i = 0; i < a->rank; i++) {
        e *= (uint64_t)a->dims[i];
        if (e > IR_MAX_ELEMS)
            return GERR(CRUCIBLE_E_LIMIT, "input %s is too large", t->name);
    }
    if (!es)
        return GERR(CRUCIBLE_E_UNSUPPORTED,
                    "input %s: dtype %s cannot be executed", t->name,
                    ir_dtype_name(a->dtype));
    if (!a->data || a->bytes != e * es)
        return GERR(CRUCIBLE_E_INVALID,
                    "input %s: %zu bytes of data, %llu expected", t->name,
                    a->bytes, (unsigned long long)(e * es));
    return CRUCIBLE_OK;
}

/* Deep copy of src into dst (name from name). */
static int arr_copy(cr_array *dst, const cr_array *src, const char *name)
{
    memset(dst, 0, sizeof *dst);
    dst->dtype = src->dtype;
    dst->rank = src->rank;
    memcpy(dst->dims, src->dims, sizeof dst->dims);
    dst->bytes = src->bytes;
    dst->name = cr_strdup(name);
    dst->data = cr_malloc(src->bytes ? src->bytes : 1);
    if (!dst->name || !dst->data) {
        tio_free(dst);
        return CRUCIBLE_E_NOMEM;
    }
    if (src->bytes) memcpy(dst->data, src->data, src->bytes);
    return CRUCIBLE_OK;
}

/* Runs every node. vals has g->n_tensors entries (zeroed on entry);
 * owned[t] says whether vals[t] must be freed. keep_all: never free early
 * and copy inputs/constants so that every entry is owned. */
static int run_graph(const cr_graph *g, const cr_array *inputs,
                     size_t n_inputs, cr_array *vals, uint8_t *owned,
                     int keep_all, char *err, size_t errlen)
{
    size_t nt = g->n_tensors;
    int rc = CRUCIBLE_OK;
    int64_t *last = NULL;
    const cr_array **in = NULL;
    uint32_t cap = 0;
    if (!inputs && n_inputs)
        return GERR(CRUCIBLE_E_INVALID, "no input arrays given");
    if (n_inputs != g->n_inputs)
        return GERR(CRUCIBLE_E_INVALID,
                    "the graph has %zu inputs, %zu were given", g->n_inputs,
                    n_inputs);
    for (size_t i = 0; i < g->n_inputs; i++) {
        int32_t t = g->inputs[i];
        if (t < 0 || (size_t)t >= nt)
            return GERR(CRUCIBLE_E_INVALID, "graph input %zu is invalid", i);
        if ((rc = check_input(&g->tensors[t], &inputs[i], err, errlen)))
            return rc;
        if (vals[t].data)
            return GERR(CRUCIBLE_E_INVALID, "tensor %s is listed twice as an "
                        "input", g->tensors[t].name);
        if (keep_all) {
            if ((rc = arr_copy(&vals[t], &inputs[i], g->tensors[t].name)))
                return GERR(rc, "out of memory");
            owned[t] = 1;
        } else {
            vals[t] = inputs[i];
            vals[t].name = g->tensors[t].name;
        }
    }
    for (size_t t = 0; t < nt; t++) {
        const cr_tensor *tt = &g->tensors[t];
        if (!(tt->flags & CRUCIBLE_TENSOR_CONST) || vals[t].data) continue;
        cr_array v;
        memset(&v, 0, sizeof v);
        v.dtype = tt->dtype;
        v.rank = tt->rank;
        memcpy(v.dims, tt->dims, sizeof v.dims);
        v.data = tt->data;
        v.bytes = tt->data_bytes;
        v.name = tt->name;
        if (!tt->data)
            return GERR(CRUCIBLE_E_INVALID, "constant %s has no data",
                        tt->name);
        if (keep_all) {
            if ((rc = arr_copy(&vals[t], &v, tt->name)))
                return GERR(rc, "out of memory");
            owned[t] = 1;
        } else {
            vals[t] = v;
        }
    }
    if (!keep_all) {
        last = cr_malloc((nt ? nt : 1) * sizeof *last);
        if (!last) return GERR(CRUCIBLE_E_NOMEM, "out of memory");
        for (size_t t = 0; t < nt; t++) last[t] = -1;
        for (size_t i = 0; i < g->n_nodes; i++)
            for (uint32_t k = 0; k < g->nodes[i].n_inputs; k++)
                if (g->nodes[i].inputs[k] >= 0)
                    last[g->nodes[i].inputs[k]] = (int64_t)i;
        for (size_t i = 0; i < g->n_outputs; i++)
            if (g->outputs[i] >= 0 && (size_t)g->outputs[i] < nt)
                last[g->outputs[i]] = INT64_MAX;
    }
    for (size_t ni = 0; ni < g->n_nodes; ni++) {
        const cr_node *n = &g->nodes[ni];
        if (n->n_inputs > cap) {
            cr_free(in);
            cap = n->n_inputs;
            in = cr_calloc(cap, sizeof *in);
            if (!in) {
                rc = GERR(CRUCIBLE_E_NOMEM, "out of memory");
                goto out;
            }
        }
        for (uint32_t k = 0; k < n->n_inputs; k++) {
            int32_t t = n->inputs[k];
            in[k] = NULL;
            if (t == -1) continue;
            if (t < 0 || (size_t)t >= nt || !vals[t].data) {
                rc = GERR(CRUCIBLE_E_INVALID,
                          "node %s: input %u has no value (is the graph "
                          "validated?)",
                          n->name, k);
                goto out;
            }
            in[k] = &vals[t];
        }
        if (n->op == CRUCIBLE_OP_UNSUPPORTED) {
            rc = interp_exec_node(g, n, in, NULL, err, errlen);
            goto out;
        }
        if (n->n_outputs != 1 || n->outputs[0] < 0 ||
            (size_t)n->outputs[0] >= nt || vals[n->outputs[0]].data) {
            rc = interp_node_err(err, errlen, n, CRUCIBLE_E_INVALID,
                                 "needs exactly one output tensor, not yet "
                                 "computed");
            goto out;
        }
        int32_t ot = n->outputs[0];
        const cr_tensor *td = &g->tensors[ot];
        cr_array *o = &vals[ot];
        memset(o, 0, sizeof *o);
        o->dtype = td->dtype;
        if ((rc = interp_infer_node(n, in, o, err, errlen))) goto out;
        /* declared shape: known -> must be equal; unknown (a dim 0) ->
         * its non-zero dims must agree when the rank is the same */
        int known = td->rank >= 0 && td->rank <= CRUCIBLE_MAX_RANK, bad = 0;
        for (int32_t i = 0; known && i < td->rank; i++)
            if (td->dims[i] <= 0) known = 0;
        if (known && td->rank != o->rank) bad = 1;
        for (int32_t i = 0; !bad && td->rank == o->rank && i < o->rank; i++)
            if (td->dims[i] > 0 && td->dims[i] != o->dims[i]) bad = 1;
        if (bad) {
            char s1[256], s2[256];
            fmt_arr(s1, sizeof s1, o->dtype, o->rank, o->dims);
            fmt_arr(s2, sizeof s2, td->dtype, td->rank < 0 ? 0 : td->rank,
                    td->dims);
            rc = interp_node_err(err, errlen, n, CRUCIBLE_E_INVALID,
                                 "computes %s, but output %s is declared %s",
                                 s1, td->name, s2);
            memset(o, 0, sizeof *o);
            goto out;
        }
        size_t es = interp_elem_size(o->dtype);
        if (!es) {
            rc = interp_node_err(err, errlen, n, CRUCIBLE_E_UNSUPPORTED,
                                 "dtype %s cannot be executed",
                                 ir_dtype_name(o->dtype));
            memset(o, 0, sizeof *o);
            goto out;
        }
        for (uint32_t k = 0; k < n->n_inputs; k++)
            if (in[k] && !interp_elem_size(in[k]->dtype) &&
                !interp_q_packed_ok(n, k, in[k]->dtype)) {
                rc = interp_node_err(err, errlen, n, CRUCIBLE_E_UNSUPPORTED,
                                     "input %u has dtype %s, which the "
                                     "reference interpreter cannot execute",
                                     k, ir_dtype_name(in[k]->dtype));
                memset(o, 0, sizeof *o);
                goto out;
            }
        uint64_t e = numel(o);
        o->bytes = (size_t)(e * es);
        o->data = cr_calloc((size_t)e, es);
        o->name = cr_strdup(td->name);
        owned[ot] = 1;
        if (!o->data || !o->name) {
            rc = GERR(CRUCIBLE_E_NOMEM, "node %s: out of memory for %llu "
                      "elements", n->name, (unsigned long long)e);
            goto out;
        }
        if ((rc = interp_exec_node(g, n, in, o, err, errlen))) goto out;
        if (!keep_all) {
            for (uint32_t k = 0; k < n->n_inputs; k++) {
                int32_t t = n->inputs[k];
                if (t >= 0 && last[t] == (int64_t)ni && owned[t]) {
                    tio_free(&vals[t]);
                    owned[t] = 0;
                }
            }
            if (last[ot] < 0) {
                tio_free(o);
                owned[ot] = 0;
            }
        }
    }
out:
    cr_free(last);
    cr_free(in);
    return rc;
}

static void free_vals(cr_array *vals, uint8_t *owned, size_t nt)
{
    for (size_t t = 0; t < nt; t++) {
        if (owned[t])
            tio_free(&vals[t]);
        else
            memset(&vals[t], 0, sizeof vals[t]);
    }
}

int interp_run(const cr_graph *g, const cr_array *inputs, size_t n_inputs,
               cr_array *outputs, char *err, size_t errlen)
{
    size_t nt = g->n_tensors;
    if (outputs) memset(outputs, 0, g->n_outputs * sizeof *outputs);
    if (!outputs && g->n_outputs)
        return GERR(CRUCIBLE_E_INVALID, "no output arrays given");
    cr_array *vals = cr_calloc(nt ? nt : 1, sizeof *vals);
    uint8_t *owned = cr_calloc(nt ? nt : 1, 1);
    if (!vals || !owned) {
        cr_free(vals);
        cr_free(owned);
        return GERR(CRUCIBLE_E_NOMEM, "out of memory");
    }
    int rc = run_graph(g, inputs, n_inputs, vals, owned, 0, err, errlen);
    for (size_t i = 0; rc == CRUCIBLE_OK && i < g->n_outputs; i++) {
        int32_t t = g->outputs[i];
        if (t < 0 || (size_t)t >= nt || !vals[t].data) {
            rc = GERR(CRUCIBLE_E_INVALID, "graph output %zu has no value", i);
            break;
        }
        if ((rc = arr_copy(&outputs[i], &vals[t], g->tensors[t].name)))
            rc = GERR(rc, "out of memory");
    }
    if (rc)
        for (size_t i = 0; i < g->n_outputs; i++) tio_free(&outputs[i]);
    free_vals(vals, owned, nt);
    cr_free(vals);
    cr_free(owned);
    return rc;
}

int interp_run_all(const cr_graph *g, const cr_array *inputs,
                   size_t n_inputs, cr_array *values, char *err,
                   size_t errlen)
{
    size_t nt = g->n_tensors;
    if (!values) return GERR(CRUCIBLE_E_INVALID, "no value arrays given");
    memset(values, 0, nt * sizeof *values);
    uint8_t *owned = cr_calloc(nt ? nt : 1, 1);
    if (!owned) return GERR(CRUCIBLE_E_NOMEM, "out of memory");
    int rc = run_graph(g, inputs, n_inputs, values, owned, 1, err, errlen);
    if (rc) free_vals(values, owned, nt);
    cr_free(owned);
    return rc;
}
