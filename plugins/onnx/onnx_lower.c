/*
 * onnx_lower.c - lowering helpers, constant folding, the op table and the
 * lowering of elementwise, shape and data-movement ops. Convolution,
 * pooling, dense/matmul, normalisation, softmax and quantisation ops are
 * in onnx_lower_nn.c.
 *
 * Every handler checks what it needs first and returns OX_UNSUP with a
 * reason (the node then becomes an `unsupported` IR node with its real
 * inputs and outputs); values and nodes made before the refusal are rolled
 * back by the driver. The IR ops emitted and their attributes are exactly
 * those the reference interpreter implements (docs/ir-ops.md).
 */
#include "onnx_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define TRY(expr)                                                           \
    do {                                                                    \
        int rc_ = (expr);                                                   \
        if (rc_) return rc_;                                                \
    } while (0)
#define NEWV(var, expr)                                                     \
    do {                                                                    \
        var = (expr);                                                       \
        if (var < 0) return var;                                            \
    } while (0)

/* ---- access to the current node ------------------------------------------*/
int ox_unsup(ox_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof c->why, fmt, ap);
    va_end(ap);
    return OX_UNSUP;
}

uint32_t ox_n_in(ox_ctx *c) { return (uint32_t)c->cur->n_input; }
uint32_t ox_n_out(ox_ctx *c) { return (uint32_t)c->cur->n_output; }

int32_t ox_in(ox_ctx *c, uint32_t k)
{
    if (k >= c->cur->n_input) return -1;
    const char *nm = c->cur->input[k];
    int32_t v;
    if (!nm || !*nm || !ox_map_get(&c->onnx_names, nm, &v)) return -1;
    return v;
}

int ox_out_used(ox_ctx *c, uint32_t k)
{
    return k < c->cur->n_output && c->cur->output[k] && *c->cur->output[k];
}

const Onnx__AttributeProto *oa_find(ox_ctx *c, const char *name)
{
    for (size_t i = 0; i < c->cur->n_attribute; i++) {
        const Onnx__AttributeProto *a = c->cur->attribute[i];
        if (a->name && !strcmp(a->name, name)) return a;
    }
    return NULL;
}

int64_t oa_i(ox_ctx *c, const char *name, int64_t dflt)
{
    const Onnx__AttributeProto *a = oa_find(c, name);
    if (a && a->has_i) return a->i;
    return dflt;
}

double oa_f(ox_ctx *c, const char *name, double dflt)
{
    const Onnx__AttributeProto *a = oa_find(c, name);
    if (a && a->has_f) return a->f;
    if (a && a->has_i) return (double)a->i;
    return dflt;
}

const char *oa_s(ox_ctx *c, const char *name, const char *dflt)
{
    const Onnx__AttributeProto *a = oa_find(c, name);
    if (!a || !a->has_s) return dflt;
    char *s = ox_alloc(c, a->s.len + 1);
    if (!s) return dflt;
    if (a->s.len) memcpy(s, a->s.data, a->s.len);
    return s;
}

const int64_t *oa_ints(ox_ctx *c, const char *name, uint32_t *count)
{
    const Onnx__AttributeProto *a = oa_find(c, name);
    *count = 0;
    if (!a || !a->n_ints || a->n_ints > (1u << 20)) return NULL;
    *count = (uint32_t)a->n_ints;
    return a->ints;
}

/* ---- values ---------------------------------------------------------------*/
int ox_shape_known(const ox_val *v)
{
    if (v->rank < 0) return 0;
    for (int32_t i = 0; i < v->rank; i++)
        if (v->dims[i] <= 0) return 0;
    return 1;
}

uint64_t ox_val_numel(const ox_val *v)
{
    uint64_t n;
    if (!ox_shape_known(v) || ox_numel(v->rank, v->dims, &n)) return 0;
    return n;
}

int64_t ox_norm_axis(int64_t axis, int32_t rank)
{
    if (axis < -(int64_t)rank || axis >= (int64_t)rank) return -1;
    return axis < 0 ? axis + rank : axis;
}

int ox_operand_ok(ox_ctx *c, int32_t v, const char *what)
{
    if (v < 0) return ox_unsup(c, "%s is missing", what);
    const ox_val *x = &c->vals[v];
    if (!x->dtype)
        return ox_unsup(c, "%s (%s) has %s %s, which the IR has no dtype for",
                        what, x->name, x->onnx_type ? "ONNX type" : "a",
                        x->onnx_type ? ox_onnx_type_name(x->onnx_type)
                                     : "non-tensor type");
    if (x->rank < 0)
        return ox_unsup(c, "%s (%s) has an unknown rank", what, x->name);
    if (x->is_const) {
        uint64_t n;
        if (ox_numel(x->rank, x->dims, &n) || n == 0)
            return ox_unsup(c, "%s (%s) is an empty tensor, which the IR "
                            "cannot represent",
                            what, x->name);
    }
    return OX_OK;
}

static const char *out_base(ox_ctx *c)
{
    if (c->cur && c->cur->n_output && c->cur->output[0] && *c->cur->output[0])
        return c->cur->output[0];
    return c->cur_name ? c->cur_name : "t";
}

int32_t ox_tmp(ox_ctx *c, const char *suffix, int32_t dtype, int32_t rank,
               const int64_t *dims)
{
    char *nm = ox_printf(c, "%s/%s", out_base(c), suffix);
    if (!nm) return CRUCIBLE_E_NOMEM;
    return ox_val_new(c, nm, 1, dtype, rank, dims);
}

int32_t ox_const(ox_ctx *c, const char *suffix, int32_t dtype, int32_t rank,
                 const int64_t *dims, const void *data, size_t bytes)
{
    int32_t v = ox_tmp(c, suffix, dtype, rank, dims);
    if (v < 0) return v;
    c->vals[v].is_const = 1;
    c->vals[v].data = data;
    c->vals[v].bytes = bytes;
    return v;
}

int32_t ox_const_f32(ox_ctx *c, const char *suffix, float f, int32_t rank)
{
    float *d = ox_alloc(c, sizeof *d);
    if (!d) return CRUCIBLE_E_NOMEM;
    *d = f;
    int64_t ones[CRUCIBLE_MAX_RANK] = {1, 1, 1, 1, 1, 1, 1, 1};
    return ox_const(c, suffix, CRUCIBLE_DT_F32, rank, ones, d, 4);
}

int32_t ox_out(ox_ctx *c, uint32_t k, int32_t dtype, int32_t rank,
               const int64_t *dims)
{
    int32_t v;
    if (!ox_out_used(c, k)) {
        char sfx[32];
        snprintf(sfx, sizeof sfx, "out%u", k);
        v = ox_tmp(c, sfx, dtype, rank, dims);
    } else {
        v = ox_val_new(c, c->cur->output[k], 0, dtype, rank, dims);
        if (v >= 0) ox_apply_hint(c, v);
    }
    if (v >= 0 && k < OX_MAX_OUTPUTS) c->out_vals[k] = v;
    return v;
}

int ox_alias(ox_ctx *c, uint32_t k, int32_t v)
{
    if (k < OX_MAX_OUTPUTS) c->out_vals[k] = v;
    return OX_OK;
}

int32_t ox_out_const(ox_ctx *c, uint32_t k, int32_t dtype, int32_t rank,
                     const int64_t *dims, const void *data, size_t bytes)
{
    int32_t v = ox_out(c, k, dtype, rank, dims);
    if (v < 0) return v;
    ox_val *x = &c->vals[v];
    x->dtype = dtype; /* a hint must not change a computed constant */
    x->rank = rank;
    if (rank > 0) memcpy(x->dims, dims, (size_t)rank * sizeof *dims);
    x->is_const = 1;
    x->data = data;
    x->bytes = bytes;
    return v;
}

/* Output k with the type of a val just computed by a lowering; a value_info
 * hint may fill unknown dims only. */
static int32_t out_like(ox_ctx *c, uint32_t k, int32_t dtype, int32_t rank,
                        const int64_t *dims)
{
    return ox_out(c, k, dtype, rank, dims);
}

/* ---- shapes -------------------------------------------------------------- */
int ox_bcast(int32_t ra, const int64_t *da, int32_t rb, const int64_t *db,
             int32_t *r, int64_t *d)
{
    if (ra < 0 || rb < 0) return -1;
    int32_t n = ra > rb ? ra : rb;
    for (int32_t i = 0; i < n; i++) {
        int64_t x = i < n - ra ? 1 : da[i - (n - ra)];
        int64_t y = i < n - rb ? 1 : db[i - (n - rb)];
        if (x == 1) d[i] = y;
        else if (y == 1) d[i] = x;
        else if (x == 0) d[i] = y;   /* unknown vs known: the known one */
        else if (y == 0) d[i] = x;
        else if (x == y) d[i] = x;
        else return -1;
    }
    *r = n;
    return 0;
}

static int dims_str(char *buf, size_t n, int32_t rank, const int64_t *d)
{
    size_t k = 0;
    int w = snprintf(buf, n, "[");
    if (w > 0) k = (size_t)w;
    for (int32_t i = 0; i < rank && k < n; i++) {
        w = snprintf(buf + k, n - k, "%s%lld", i ? "," : "", (long long)d[i]);
        if (w > 0) k += (size_t)w;
    }
    if (k < n) snprintf(buf + k, n - k, "]");
    return 0;
}

/* ---- constant folding -----------------------------------------------------*/
static int all_const(ox_ctx *c, const int32_t *v, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (v[i] < 0) continue;
        const ox_val *x = &c->vals[v[i]];
        if (!x->is_const || !x->dtype || x->rank < 0) return 0;
        if (x->bytes && !x->data) return 0;
    }
    return 1;
}

static void *new_data(ox_ctx *c, int32_t dtype, uint64_t n, size_t *bytes)
{
    size_t es = ox_dtype_size(dtype);
    if (!es || n > OX_FOLD_MAX) return NULL;
    *bytes = (size_t)n * es;
    return ox_alloc(c, *bytes ? *bytes : 1);
}

/* Offset into x (right-aligned, broadcast) of output multi-index idx. */
static uint64_t bcast_off(const ox_val *x, int32_t orank, const int64_t *idx)
{
    uint64_t off = 0, stride = 1;
    for (int32_t i = x->rank - 1; i >= 0; i--) {
        int32_t oi = i + (orank - x->rank);
        int64_t ix = x->dims[i] == 1 ? 0 : idx[oi];
        off += (uint64_t)ix * stride;
        stride *= (uint64_t)x->dims[i];
    }
    return off;
}

static void next_idx(int32_t rank, const int64_t *dims, int64_t *idx)
{
    for (int32_t d = rank - 1; d >= 0; d--) {
        if (++idx[d] < dims[d]) return;
        idx[d] = 0;
    }
}

enum { F_ADD, F_SUB, F_MUL, F_DIV, F_POW, F_MAX, F_MIN, F_EQ, F_GT, F_LT,
       F_GE, F_LE, F_AND, F_OR, F_XOR };

/* Folds a binary op on two constants; returns the const val or -1 when it
 * cannot fold (then the caller lowers it to a node), < -1 on error. */
static int32_t fold_binary(ox_ctx *c, int fop, int32_t a, int32_t b,
                           uint32_t k)
{
    const ox_val *x = &c->vals[a], *y = &c->vals[b];
    int32_t r;
    int64_t dims[CRUCIBLE_MAX_RANK];
    if (ox_bcast(x->rank, x->dims, y->rank, y->dims, &r, dims)) return -1;
    uint64_t n;
    if (ox_numel(r, dims, &n) || n > OX_FOLD_MAX) return -1;
    int cmp = fop >= F_EQ;
    int32_t odt = cmp ? CRUCIBLE_DT_BOOL : x->dtype;
    int isf = x->dtype == CRUCIBLE_DT_F32 || x->dtype == CRUCIBLE_DT_F16;
    size_t bytes;
    void *d = new_data(c, odt, n, &bytes);
    if (!d) return n > OX_FOLD_MAX ? -1 : CRUCIBLE_E_NOMEM;
    int64_t idx[CRUCIBLE_MAX_RANK] = {0};
    for (uint64_t j = 0; j < n; j++) {
        uint64_t ia = bcast_off(x, r, idx), ib = bcast_off(y, r, idx);
        if (isf) {
            float p = (float)ox_get_f(x, ia), q = (float)ox_get_f(y, ib), o = 0;
            int bo = 0;
            switch (fop) {
            case F_ADD: o = p + q; break;
            case F_SUB: o = p - q; break;
            case F_MUL: o = p * q; break;
            case F_DIV: o = p / q; break;
            case F_POW: o = powf(p, q); break;
            case F_MAX: o = (p >= q || p != p) ? p : q; break;
            case F_MIN: o = (p <= q || p != p) ? p : q; break;
            case F_EQ: bo = p == q; break;
            case F_GT: bo = p > q; break;
            case F_LT: bo = p < q; break;
            case F_GE: bo = p >= q; break;
            case F_LE: bo = p <= q; break;
            default: return -1;
            }
            if (cmp) ox_set_i(odt, d, j, bo);
            else ox_set_f(odt, d, j, o);
        } else {
            int64_t p = ox_get_i(x, ia), q = ox_get_i(y, ib), o = 0;
            switch (fop) {
            case F_ADD: o = (int64_t)((uint64_t)p + (uint64_t)q); break;
            case F_SUB: o = (int64_t)((uint64_t)p - (uint64_t)q); break;
            case F_MUL: o = (int64_t)((uint64_t)p * (uint64_t)q); break;
            case F_DIV:
                if (q == 0) return -1;
                o = (p == INT64_MIN && q == -1) ? p : p / q;
                break;
            case F_MAX: o = p >= q ? p : q; break;
            case F_MIN: o = p <= q ? p : q; break;
            case F_EQ: o = p == q; break;
            case F_GT: o = p > q; break;
            case F_LT: o = p < q; break;
            case F_GE: o = p >= q; break;
            case F_LE: o = p <= q; break;
            case F_AND: o = p && q; break;
            case F_OR: o = p || q; break;
            case F_XOR: o = !p != !q; break;
            default: return -1;
            }
            ox_set_i(odt, d, j, o);
        }
        next_idx(r, dims, idx);
    }
    return ox_out_const(c, k, odt, r, dims, d, bytes);
}

/* Cast of one element with the interpreter's rules. */
static void cast_elem(const ox_val *x, uint64_t i, int32_t to, void *d,
                      uint64_t j)
{
    int xf = x->dtype == CRUCIBLE_DT_F32 || x->dtype == CRUCIBLE_DT_F16;
    if (to == CRUCIBLE_DT_F32 || to == CRUCIBLE_DT_F16) {
        ox_set_f(to, d, j, xf ? ox_get_f(x, i) : (double)(float)ox_get_i(x, i));
        return;
    }
    if (to == CRUCIBLE_DT_BOOL) {
        ox_set_i(to, d, j, xf ? ox_get_f(x, i) != 0.0 : ox_get_i(x, i) != 0);
        return;
    }
    if (!xf) {
        ox_set_i(to, d, j, ox_get_i(x, i)); /* wraps */
        return;
    }
    float f = (float)ox_get_f(x, i);
    int64_t lo, hi, v;
    switch (to) {
    case CRUCIBLE_DT_I8: lo = INT8_MIN; hi = INT8_MAX; break;
    case CRUCIBLE_DT_U8: lo = 0; hi = UINT8_MAX; break;
    case CRUCIBLE_DT_I16: lo = INT16_MIN; hi = INT16_MAX; break;
    case CRUCIBLE_DT_I32: lo = INT32_MIN; hi = INT32_MAX; break;
    default: lo = INT64_MIN; hi = INT64_MAX; break;
    }
    if (f != f) v = 0;
    else if (f >= 9223372036854775808.0f) v = INT64_MAX;
    else if (f < -9223372036854775808.0f) v = INT64_MIN;
    else v = (int64_t)f;
    ox_set_i(to, d, j, v < lo ? lo : v > hi ? hi : v);
}

/* Integer list from a constant input (rank <= 1). */
static int const_ints(ox_ctx *c, int32_t v, const char *what, int64_t *dst,
                      uint32_t max, uint32_t *count)
{
    if (v < 0) return ox_unsup(c, "%s is missing", what);
    const ox_val *x = &c->vals[v];
    if (!x->is_const)
        return ox_unsup(c, "%s (%s) is not a constant", what, x->name);
    if (!ox_is_int(x->dtype) || x->dtype == CRUCIBLE_DT_BOOL || x->rank > 1 ||
        x->rank < 0)
        return ox_unsup(c, "%s (%s) must be a constant integer list", what,
                        x->name);
    uint64_t n;
    if (ox_numel(x->rank, x->dims, &n) || n > max)
        return ox_unsup(c, "%s (%s) has too many values", what, x->name);
    for (uint64_t i = 0; i < n; i++) dst[i] = ox_get_i(x, i);
    *count = (uint32_t)n;
    return OX_OK;
}

/* Scalar from a constant input (any numeric dtype, one element). */
static int const_scalar(ox_ctx *c, int32_t v, const char *what, double *out)
{
    const ox_val *x = &c->vals[v];
    if (!x->is_const)
        return ox_unsup(c, "%s (%s) is not a constant", what, x->name);
    uint64_t n;
    if (!x->dtype || x->rank < 0 || ox_numel(x->rank, x->dims, &n) || n != 1)
        return ox_unsup(c, "%s (%s) must be a single value", what, x->name);
    *out = ox_get_f(x, 0);
    return OX_OK;
}

/* ---- node helpers ---------------------------------------------------------*/
int ox_reshape(ox_ctx *c, int32_t x, int32_t rank, const int64_t *dims,
               const char *suffix, int32_t out, int32_t *result)
{
    const ox_val *xv = &c->vals[x];
    if (xv->is_const) {
        int32_t v;
        if (out >= 0) {
            v = out;
            ox_val *o = &c->vals[v];
            o->is_const = 1;
            o->data = xv->data;
            o->bytes = xv->bytes;
            o->dtype = xv->dtype;
            o->rank = rank;
            memcpy(o->dims, dims, (size_t)rank * sizeof *dims);
        } else {
            NEWV(v, ox_const(c, suffix ? suffix : "reshaped", xv->dtype, rank,
                             dims, xv->data, xv->bytes));
        }
        *result = v;
        return OX_OK;
    }
    int64_t shp[CRUCIBLE_MAX_RANK];
    int unknown = 0;
    for (int32_t i = 0; i < rank; i++) {
        shp[i] = dims[i];
        if (dims[i] <= 0) {
            shp[i] = -1;
            unknown++;
        }
    }
    if (unknown > 1)
        return ox_unsup(c, "a reshape needs the input's dimensions, which are "
                        "unknown");
    int32_t y = out;
    if (y < 0) NEWV(y, ox_tmp(c, suffix ? suffix : "reshaped", xv->dtype, rank, dims));
    int32_t n;
    NEWV(n, ox_node_new(c, CRUCIBLE_OP_RESHAPE, suffix, 1, &x, 1, &y));
    TRY(ox_attr_ints(c, n, "shape", (uint32_t)rank, shp));
    *result = y;
    return OX_OK;
}

int ox_unary(ox_ctx *c, int32_t op, int32_t x, const char *suffix,
             int32_t out, int32_t *result)
{
    const ox_val *xv = &c->vals[x];
    int32_t y = out;
    if (y < 0) NEWV(y, ox_tmp(c, suffix, xv->dtype, xv->rank, xv->dims));
    int32_t n;
    NEWV(n, ox_node_new(c, op, out >= 0 ? NULL : suffix, 1, &x, 1, &y));
    *result = y;
    return OX_OK;
}

int ox_binary(ox_ctx *c, int32_t op, int32_t a, int32_t b, const char *suffix,
              int32_t out, int32_t *result)
{
    const ox_val *av = &c->vals[a], *bv = &c->vals[b];
    int32_t r;
    int64_t d[CRUCIBLE_MAX_RANK];
    if (ox_bcast(av->rank, av->dims, bv->rank, bv->dims, &r, d)) {
        char s1[128], s2[128];
        dims_str(s1, sizeof s1, av->rank, av->dims);
        dims_str(s2, sizeof s2, bv->rank, bv->dims);
        return ox_unsup(c, "shapes %s and %s do not broadcast", s1, s2);
    }
    int32_t y = out;
    if (y < 0) NEWV(y, ox_tmp(c, suffix, av->dtype, r, d));
    int32_t ins[2] = {a, b}, n;
    NEWV(n, ox_node_new(c, op, out >= 0 ? NULL : suffix, 2, ins, 1, &y));
    *result = y;
    return OX_OK;
}

static int need_f32(ox_ctx *c, int32_t v, const char *what)
{
    TRY(ox_operand_ok(c, v, what));
    if (c->vals[v].dtype != CRUCIBLE_DT_F32)
        return ox_unsup(c, "%s is %s; the IR computes this op on f32 only",
                        what, ox_dtype_name(c->vals[v].dtype));
    return OX_OK;
}

/* ---- Identity, Dropout, Constant -----------------------------------------*/
static int lower_identity(ox_ctx *c)
{
    int32_t x = ox_in(c, 0);
    if (x < 0) return ox_unsup(c, "input is missing");
    if (!strcmp(c->cur->op_type, "Dropout")) {
        int32_t tm = ox_in(c, 2);
        if (c->cur_opset >= 12 && tm >= 0) {
            double t, ratio = 0.5;
            TRY(const_scalar(c, tm, "training_mode", &t));
            if (ox_in(c, 1) >= 0)
                TRY(const_scalar(c, ox_in(c, 1), "ratio", &ratio));
            if (t != 0.0 && ratio != 0.0)
                return ox_unsup(c, "training_mode is true (random dropout)");
        }
        if (ox_out_used(c, 1)) { /* mask: all true in inference */
            const ox_val *xv = &c->vals[x];
            uint64_t n = ox_val_numel(xv);
            if (!n) return ox_unsup(c, "the mask output needs a known shape");
            int32_t mdt = c->cur_opset >= 10 ? CRUCIBLE_DT_BOOL : xv->dtype;
            size_t bytes;
            void *d = new_data(c, mdt, n, &bytes);
            if (!d) return ox_unsup(c, "mask output too large");
            for (uint64_t i = 0; i < n; i++) ox_set_i(mdt, d, i, 1);
            int32_t m;
            NEWV(m, ox_out_const(c, 1, mdt, xv->rank, xv->dims, d, bytes));
        }
    }
    return ox_alias(c, 0, x);
}

static int lower_constant(ox_ctx *c)
{
    const Onnx__AttributeProto *a;
    if ((a = oa_find(c, "value")) && a->t) {
        if (!ox_out_used(c, 0)) return ox_unsup(c, "no output");
        char *what = ox_printf(c, "Constant %s", c->cur->output[0]);
        if (!what) return CRUCIBLE_E_NOMEM;
        int32_t v = ox_tensor_to_val(c, a->t, c->cur->output[0], 0, what);
        if (v < 0) return v;
        c->out_vals[0] = v;
        return OX_OK;
    }
    int64_t one = 1;
    if ((a = oa_find(c, "value_float")) && a->has_f) {
        float *d = ox_alloc(c, 4);
        if (!d) return CRUCIBLE_E_NOMEM;
        *d = a->f;
        int32_t v;
        NEWV(v, ox_out_const(c, 0, CRUCIBLE_DT_F32, 0, &one, d, 4));
        return OX_OK;
    }
    if ((a = oa_find(c, "value_int")) && a->has_i) {
        int64_t *d = ox_alloc(c, 8);
        if (!d) return CRUCIBLE_E_NOMEM;
        *d = a->i;
        int32_t v;
        NEWV(v, ox_out_const(c, 0, CRUCIBLE_DT_I64, 0, &one, d, 8));
        return OX_OK;
    }
    if ((a = oa_find(c, "value_floats"))) {
        int64_t n = (int64_t)a->n_floats;
        float *d = ox_alloc(c, (size_t)n * 4 + 4);
        if (!d) return CRUCIBLE_E_NOMEM;
        for (int64_t i = 0; i < n; i++) d[i] = a->floats[i];
        int32_t v;
        NEWV(v, ox_out_const(c, 0, CRUCIBLE_DT_F32, 1, &n, d, (size_t)n * 4));
        return OX_OK;
    }
    if ((a = oa_find(c, "value_ints"))) {
        int64_t n = (int64_t)a->n_ints;
        int32_t v;
        NEWV(v, ox_out_const(c, 0, CRUCIBLE_DT_I64, 1, &n, a->ints,
                             (size_t)n * 8));
        return OX_OK;
    }
    if (oa_find(c, "sparse_value"))
        return ox_unsup(c, "sparse constants are not supported");
    if (oa_find(c, "value_string") || oa_find(c, "value_strings"))
        return ox_unsup(c, "string constants have no IR dtype");
    return ox_unsup(c, "Constant without a value");
}

/* ---- elementwise binary ---------------------------------------------------*/
static const struct {
    const char *name;
    int32_t op;
    int fop;
} g_bin[] = {
    {"Add", CRUCIBLE_OP_ADD, F_ADD},     {"Sub", CRUCIBLE_OP_SUB, F_SUB},
    {"Mul", CRUCIBLE_OP_MUL, F_MUL},     {"Div", CRUCIBLE_OP_DIV, F_DIV},
    {"Pow", CRUCIBLE_OP_POW, F_POW},     {"Equal", -1, F_EQ},
    {"Greater", -1, F_GT},               {"Less", -1, F_LT},
    {"GreaterOrEqual", -1, F_GE},        {"LessOrEqual", -1, F_LE},
    {"And", -1, F_AND},                  {"Or", -1, F_OR},
    {"Xor", -1, F_XOR},
};

/* ONNX opset < 7: `broadcast` = 1 with `axis` aligns b at that axis. */
static int legacy_broadcast(ox_ctx *c, int32_t a, int32_t *b)
{
    if (c->cur_opset >= 7 || !oa_i(c, "broadcast", 0)) return OX_OK;
    const Onnx__AttributeProto *ax = oa_find(c, "axis");
    if (!ax || !ax->has_i) return OX_OK; /* suffix matching = numpy rules */
    const ox_val *av = &c->vals[a], *bv = &c->vals[*b];
    int64_t axis = ox_norm_axis(ax->i, av->rank);
    if (axis < 0 || axis + bv->rank > av->rank)
        return ox_unsup(c, "legacy broadcast axis %lld does not fit",
                        (long long)ax->i);
    int64_t dims[CRUCIBLE_MAX_RANK];
    int32_t r = (int32_t)(av->rank - axis);
    for (int32_t i = 0; i < r; i++) dims[i] = i < bv->rank ? bv->dims[i] : 1;
    return ox_reshape(c, *b, r, dims, "bcast", -1, b);
}

static int arith_dtype_ok(int32_t op, int32_t dt)
{
    if (dt == CRUCIBLE_DT_F32) return 1;
    if (op == CRUCIBLE_OP_POW) return 0;
    return dt == CRUCIBLE_DT_I32 || dt == CRUCIBLE_DT_I64;
}

/* u8 / i8 / i16 arithmetic is computed in i32 and cast back: the IR's
 * integer ops run on i32 / i64, and i32 add/sub/mul followed by a wrapping
 * cast give exactly the narrow type's modular result (division and
 * comparisons are exact anyway). */
static int is_narrow_int(int32_t dt)
{
    return dt == CRUCIBLE_DT_U8 || dt == CRUCIBLE_DT_I8 ||
           dt == CRUCIBLE_DT_I16;
}

static int widen_i32(ox_ctx *c, int32_t v, const char *sfx, int32_t *res)
{
    const ox_val *x = &c->vals[v];
    uint64_t n = ox_val_numel(x);
    if (x->is_const && n) {
        size_t bytes;
        void *d = new_data(c, CRUCIBLE_DT_I32, n, &bytes);
        if (!d) return ox_unsup(c, "constant too large");
        for (uint64_t i = 0; i < n; i++) cast_elem(x, i, CRUCIBLE_DT_I32, d, i);
        NEWV(*res, ox_const(c, sfx, CRUCIBLE_DT_I32, x->rank, x->dims, d, bytes));
        return OX_OK;
    }
    int32_t t, nd;
    NEWV(t, ox_tmp(c, sfx, CRUCIBLE_DT_I32, x->rank, x->dims));
    NEWV(nd, ox_node_new(c, CRUCIBLE_OP_CAST, sfx, 1, &v, 1, &t));
    TRY(ox_attr_str(c, nd, "to", "i32"));
    *res = t;
    return OX_OK;
}

/* Output 0 = cast of the i32 value t back to dtype. */
static int narrow_out(ox_ctx *c, int32_t t, int32_t dtype)
{
    const ox_val *x = &c->vals[t];
    int32_t y, nd;
    NEWV(y, ox_out(c, 0, dtype, x->rank, x->dims));
    c->vals[y].dtype = dtype;
    NEWV(nd, ox_node_new(c, CRUCIBLE_OP_CAST, NULL, 1, &t, 1, &y));
    TRY(ox_attr_str(c, nd, "to", ox_dtype_name(dtype)));
    return OX_OK;
}

static int lower_binary(ox_ctx *c)
{
    size_t bi = 0;
    while (strcmp(g_bin[bi].name, c->cur->op_type)) bi++;
    int32_t op = g_bin[bi].op;
    int32_t a = ox_in(c, 0), b = ox_in(c, 1);
    TRY(ox_operand_ok(c, a, "input A"));
    TRY(ox_operand_ok(c, b, "input B"));
    TRY(legacy_broadcast(c, a, &b));
    const ox_val *av = &c->vals[a], *bv = &c->vals[b];
    int32_t ins[2] = {a, b};
    if (all_const(c, ins, 2) && av->dtype == bv->dtype) {
        int32_t v = fold_binary(c, g_bin[bi].fop, a, b, 0);
        if (v >= 0) return OX_OK;
        if (v < -1) return v;
    }
    if (op < 0)
        return ox_unsup(c, "comparisons and logic have no canonical op (only "
                        "constant inputs are folded)");
    if (op == CRUCIBLE_OP_POW && bv->dtype != av->dtype) {
        /* the exponent may have another type: cast it */
        if (av->dtype != CRUCIBLE_DT_F32)
            return ox_unsup(c, "pow of %s", ox_dtype_name(av->dtype));
        if (bv->is_const) {
            uint64_t n;
            ox_numel(bv->rank, bv->dims, &n);
            size_t bytes;
            void *d = new_data(c, CRUCIBLE_DT_F32, n, &bytes);
            if (!d) return ox_unsup(c, "exponent too large");
            for (uint64_t i = 0; i < n; i++) cast_elem(bv, i, CRUCIBLE_DT_F32, d, i);
            NEWV(b, ox_const(c, "exponent", CRUCIBLE_DT_F32, bv->rank,
                             bv->dims, d, bytes));
        } else {
            if (!ox_is_int(bv->dtype))
                return ox_unsup(c, "exponent of type %s",
                                ox_dtype_name(bv->dtype));
            int32_t t, n;
            NEWV(t, ox_tmp(c, "exponent", CRUCIBLE_DT_F32, bv->rank, bv->dims));
            NEWV(n, ox_node_new(c, CRUCIBLE_OP_CAST, "exponent", 1, &b, 1, &t));
            TRY(ox_attr_str(c, n, "to", "f32"));
            b = t;
        }
        av = &c->vals[a];
        bv = &c->vals[b];
    }
    if (av->dtype != bv->dtype)
        return ox_unsup(c, "inputs are %s and %s", ox_dtype_name(av->dtype),
                        ox_dtype_name(bv->dtype));
    int narrow = op != CRUCIBLE_OP_POW && is_narrow_int(av->dtype);
    if (!arith_dtype_ok(op, av->dtype) && !narrow)
        return ox_unsup(c, "the IR computes %s on f32%s only; input is %s",
                        c->cur->op_type,
                        op == CRUCIBLE_OP_POW ? "" : ", i32 and i64",
                        ox_dtype_name(av->dtype));
    int32_t r;
    int64_t d[CRUCIBLE_MAX_RANK];
    if (narrow) {
        int32_t dt = av->dtype, wa, wb, t;
        TRY(widen_i32(c, a, "a_i32", &wa));
        TRY(widen_i32(c, b, "b_i32", &wb));
        TRY(ox_binary(c, op, wa, wb, "i32", -1, &t));
        return narrow_out(c, t, dt);
    }
    if (ox_bcast(av->rank, av->dims, bv->rank, bv->dims, &r, d)) {
        char s1[128], s2[128];
        dims_str(s1, sizeof s1, av->rank, av->dims);
        dims_str(s2, sizeof s2, bv->rank, bv->dims);
        return ox_unsup(c, "shapes %s and %s do not broadcast", s1, s2);
    }
    int32_t y, res;
    NEWV(y, out_like(c, 0, av->dtype, r, d));
    return ox_binary(c, op, a, b, NULL, y, &res);
}

/* Max, Min (variadic IR ops), Sum (chain of add), Mean (sum / n). */
static int lower_variadic(ox_ctx *c)
{
    const char *t = c->cur->op_type;
    uint32_t n = ox_n_in(c);
    int32_t ins[1024];
    if (!n || n > 1024) return ox_unsup(c, "needs 1 to 1024 inputs");
    int32_t r = 0;
    int64_t d[CRUCIBLE_MAX_RANK] = {0};
    for (uint32_t i = 0; i < n; i++) {
        ins[i] = ox_in(c, i);
        TRY(ox_operand_ok(c, ins[i], "an input"));
        const ox_val *v = &c->vals[ins[i]];
        if (v->dtype != c->vals[ins[0]].dtype)
            return ox_unsup(c, "inputs have different dtypes");
        if (i == 0) {
            r = v->rank;
            memcpy(d, v->dims, sizeof d);
        } else if (ox_bcast(r, d, v->rank, v->dims, &r, d)) {
            return ox_unsup(c, "input shapes do not broadcast");
        }
    }
    int32_t dt = c->vals[ins[0]].dtype;
    int is_mean = !strcmp(t, "Mean");
    if (!is_mean && is_narrow_int(dt) && n > 1) {
        int32_t w[1024], acc;
        for (uint32_t i = 0; i < n; i++) {
            char sfx[32];
            snprintf(sfx, sizeof sfx, "in%u_i32", i);
            TRY(widen_i32(c, ins[i], sfx, &w[i]));
        }
        int32_t op = t[1] == 'a' ? CRUCIBLE_OP_MAX
                     : t[1] == 'i' ? CRUCIBLE_OP_MIN : CRUCIBLE_OP_ADD;
        acc = w[0];
        for (uint32_t i = 1; i < n; i++) {
            char sfx[32];
            snprintf(sfx, sizeof sfx, "acc%u", i);
            TRY(ox_binary(c, op, acc, w[i], sfx, -1, &acc));
        }
        return narrow_out(c, acc, dt);
    }
    if (is_mean ? dt != CRUCIBLE_DT_F32 : !arith_dtype_ok(CRUCIBLE_OP_ADD, dt))
        return ox_unsup(c, "the IR computes %s on f32%s only; inputs are %s",
                        t, is_mean ? "" : ", i32 and i64", ox_dtype_name(dt));
    if (n == 1 && (is_mean || !strcmp(t, "Sum"))) return ox_alias(c, 0, ins[0]);
    int32_t y, res;
    if (!strcmp(t, "Max") || !strcmp(t, "Min")) {
        NEWV(y, out_like(c, 0, dt, r, d));
        int32_t nd;
        NEWV(nd, ox_node_new(c, t[1] == 'a' ? CRUCIBLE_OP_MAX : CRUCIBLE_OP_MIN,
                             NULL, n, ins, 1, &y));
        return OX_OK;
    }
    int32_t acc = ins[0];
    for (uint32_t i = 1; i < n; i++) {
        int last = i == n - 1 && !is_mean;
        char sfx[32];
        snprintf(sfx, sizeof sfx, "sum%u", i);
        int32_t o = -1;
        if (last) NEWV(o, out_like(c, 0, dt, r, d));
        TRY(ox_binary(c, CRUCIBLE_OP_ADD, acc, ins[i], last ? NULL : sfx, o,
                      &acc));
    }
    if (!is_mean) return OX_OK;
    int32_t k;
    NEWV(k, ox_const_f32(c, "count", (float)n, 0));
    NEWV(y, out_like(c, 0, dt, r, d));
    return ox_binary(c, CRUCIBLE_OP_DIV, acc, k, NULL, y, &res);
}

/* ---- elementwise unary ----------------------------------------------------*/
static const struct {
    const char *name;
    int32_t op;
} g_un[] = {
    {"Relu", CRUCIBLE_OP_RELU},       {"Sigmoid", CRUCIBLE_OP_SIGMOID},
    {"Tanh", CRUCIBLE_OP_TANH},       {"Exp", CRUCIBLE_OP_EXP},
    {"Log", CRUCIBLE_OP_LOG},         {"Sqrt", CRUCIBLE_OP_SQRT},
    {"Neg", CRUCIBLE_OP_NEG},         {"Abs", CRUCIBLE_OP_ABS},
    {"HardSwish", CRUCIBLE_OP_HARD_SWISH},
    {"HardSigmoid", CRUCIBLE_OP_HARD_SIGMOID},
    {"LeakyRelu", CRUCIBLE_OP_LEAKY_RELU},
};

/* One step of a composed activation: y = op(a, b) (b < 0: unary). */
static int step(ox_ctx *c, int32_t op, int32_t a, int32_t b, const char *sfx,
                int last, int32_t *res)
{
    const ox_val *x = &c->vals[a];
    int32_t o = -1, r = x->rank;
    int64_t d[CRUCIBLE_MAX_RANK];
    memcpy(d, x->dims, sizeof d);
    if (b >= 0 && ox_bcast(x->rank, x->dims, c->vals[b].rank, c->vals[b].dims,
                           &r, d))
        return ox_unsup(c, "shapes do not broadcast");
    if (last) NEWV(o, out_like(c, 0, x->dtype, r, d));
    if (b < 0) return ox_unary(c, op, a, sfx, o, res);
    return ox_binary(c, op, a, b, sfx, o, res);
}

static int lower_unary(ox_ctx *c)
{
    const char *t = c->cur->op_type;
    int32_t x = ox_in(c, 0);
    TRY(ox_operand_ok(c, x, "input"));
    const ox_val *xv = &c->vals[x];
    if (!strcmp(t, "Neg") && (xv->dtype == CRUCIBLE_DT_I32 ||
                              xv->dtype == CRUCIBLE_DT_I64)) {
        /* integer negation as 0 - x */
        int64_t zero = 0;
        int32_t z, y, res;
        void *d = ox_alloc(c, 8);
        if (!d) return CRUCIBLE_E_NOMEM;
        memcpy(d, &zero, 8);
        NEWV(z, ox_const(c, "zero", xv->dtype, 0, NULL, d,
                         ox_dtype_size(xv->dtype)));
        NEWV(y, out_like(c, 0, xv->dtype, xv->rank, xv->dims));
        return ox_binary(c, CRUCIBLE_OP_SUB, z, x, NULL, y, &res);
    }
    TRY(need_f32(c, x, "input"));
    xv = &c->vals[x];
    int32_t res, k1;
    for (size_t i = 0; i < sizeof g_un / sizeof g_un[0]; i++) {
        if (strcmp(g_un[i].name, t)) continue;
        int32_t y, n;
        NEWV(y, out_like(c, 0, xv->dtype, xv->rank, xv->dims));
        NEWV(n, ox_node_new(c, g_un[i].op, NULL, 1, &x, 1, &y));
        if (g_un[i].op == CRUCIBLE_OP_LEAKY_RELU)
            TRY(ox_attr_float(c, n, "alpha", oa_f(c, "alpha", 0.01)));
        if (g_un[i].op == CRUCIBLE_OP_HARD_SIGMOID) {
            TRY(ox_attr_float(c, n, "alpha", oa_f(c, "alpha", 0.2)));
            TRY(ox_attr_float(c, n, "beta", oa_f(c, "beta", 0.5)));
        }
        return OX_OK;
    }
    if (!strcmp(t, "Reciprocal")) {
        NEWV(k1, ox_const_f32(c, "one", 1.0f, 0));
        return step(c, CRUCIBLE_OP_DIV, k1, x, NULL, 1, &res);
    }
    if (!strcmp(t, "Softplus")) { /* log(exp(x) + 1) */
        int32_t e, s;
        TRY(step(c, CRUCIBLE_OP_EXP, x, -1, "exp", 0, &e));
        NEWV(k1, ox_const_f32(c, "one", 1.0f, 0));
        TRY(step(c, CRUCIBLE_OP_ADD, e, k1, "plus1", 0, &s));
        return step(c, CRUCIBLE_OP_LOG, s, -1, NULL, 1, &res);
    }
    if (!strcmp(t, "Softsign")) { /* x / (1 + |x|) */
        int32_t a, s;
        TRY(step(c, CRUCIBLE_OP_ABS, x, -1, "abs", 0, &a));
        NEWV(k1, ox_const_f32(c, "one", 1.0f, 0));
        TRY(step(c, CRUCIBLE_OP_ADD, k1, a, "plus1", 0, &s));
        return step(c, CRUCIBLE_OP_DIV, x, s, NULL, 1, &res);
    }
    if (!strcmp(t, "Elu") || !strcmp(t, "Selu") || !strcmp(t, "Celu")) {
        /* Elu:  max(x,0) + (exp(min(x,0)) - 1) * alpha
         * Selu: max(x,0)*gamma + ((exp(min(x,0)) - 1) * alpha) * gamma
         * Celu: max(x,0) + min((exp(x/alpha) - 1) * alpha, 0) */
        int selu = t[0] == 'S', celu = t[0] == 'C';
        double alpha = oa_f(c, "alpha", selu ? 1.67326319217681884765625
                                                  : 1.0);
        double gamma = oa_f(c, "gamma", 1.05070102214813232421875);
        if (celu && alpha == 0.0) return ox_unsup(c, "alpha is 0");
        int32_t zero, one, ka, p, m, e, s, q;
        NEWV(zero, ox_const_f32(c, "zero", 0.0f, 0));
        NEWV(one, ox_const_f32(c, "one", 1.0f, 0));
        NEWV(ka, ox_const_f32(c, "alpha", (float)alpha, 0));
        TRY(step(c, CRUCIBLE_OP_RELU, x, -1, "pos", 0, &p));
        if (celu) {
            TRY(step(c, CRUCIBLE_OP_DIV, x, ka, "scaled", 0, &m));
        } else {
            TRY(step(c, CRUCIBLE_OP_MIN, x, zero, "neg", 0, &m));
        }
        TRY(step(c, CRUCIBLE_OP_EXP, m, -1, "exp", 0, &e));
        TRY(step(c, CRUCIBLE_OP_SUB, e, one, "expm1", 0, &s));
        TRY(step(c, CRUCIBLE_OP_MUL, s, ka, "times_alpha", 0, &q));
        if (celu) TRY(step(c, CRUCIBLE_OP_MIN, q, zero, "negpart", 0, &q));
        if (selu) {
            int32_t kg, pg, qg;
            NEWV(kg, ox_const_f32(c, "gamma", (float)gamma, 0));
            TRY(step(c, CRUCIBLE_OP_MUL, p, kg, "pos_gamma", 0, &pg));
            TRY(step(c, CRUCIBLE_OP_MUL, q, kg, "neg_gamma", 0, &qg));
            return step(c, CRUCIBLE_OP_ADD, pg, qg, NULL, 1, &res);
        }
        return step(c, CRUCIBLE_OP_ADD, p, q, NULL, 1, &res);
    }
    return ox_unsup(c, "no lowering");
}

static int lower_prelu(ox_ctx *c)
{
    int32_t x = ox_in(c, 0), s = ox_in(c, 1);
    TRY(need_f32(c, x, "input X"));
    TRY(need_f32(c, s, "slope"));
    const ox_val *xv = &c->vals[x], *sv = &c->vals[s];
    int32_t r;
    int64_t d[CRUCIBLE_MAX_RANK];
    int fits = !ox_bcast(xv->rank, xv->dims, sv->rank, sv->dims, &r, d) &&
               r == xv->rank &&
               !memcmp(d, xv->dims, (size_t)r * sizeof *d);
    if (!fits && sv->rank == 1 && xv->rank >= 3 &&
        (sv->dims[0] == xv->dims[1] || sv->dims[0] == 1)) {
        /* per-channel slope [C]: as [C, 1, ...] */
        int64_t nd[CRUCIBLE_MAX_RANK];
        nd[0] = sv->dims[0];
        for (int32_t i = 1; i < xv->rank - 1; i++) nd[i] = 1;
        TRY(ox_reshape(c, s, xv->rank - 1, nd, "slope", -1, &s));
        fits = 1;
    }
    if (!fits) return ox_unsup(c, "slope does not broadcast to the input");
    int32_t y, n, ins[2] = {x, s};
    NEWV(y, out_like(c, 0, xv->dtype, xv->rank, xv->dims));
    NEWV(n, ox_node_new(c, CRUCIBLE_OP_PRELU, NULL, 2, ins, 1, &y));
    return OX_OK;
}

/* Clip of an integer tensor (opset >= 12): min(max(x, lo), hi) with
 * constant bounds, in i32 for the narrow types. */
static int clip_int(ox_ctx *c, int32_t x)
{
    const ox_val *xv = &c->vals[x];
    int32_t dt = xv->dtype, w = x, acc, res;
    if (is_narrow_int(dt)) TRY(widen_i32(c, x, "x_i32", &w));
    int32_t wdt = c->vals[w].dtype;
    acc = w;
    for (uint32_t k = 1; k <= 2; k++) {
        int32_t b = ox_in(c, k);
        if (b < 0) continue;
        const ox_val *bv = &c->vals[b];
        if (!bv->is_const || ox_val_numel(bv) != 1 || bv->dtype != dt)
            return ox_unsup(c, "integer clip needs constant scalar bounds of "
                            "the input's type");
        size_t bytes;
        void *d = new_data(c, wdt, 1, &bytes);
        if (!d) return CRUCIBLE_E_NOMEM;
        ox_set_i(wdt, d, 0, ox_get_i(bv, 0));
        int32_t kv;
        NEWV(kv, ox_const(c, k == 1 ? "min" : "max", wdt, 0, NULL, d, bytes));
        int last = !is_narrow_int(dt) && (k == 2 || ox_in(c, 2) < 0);
        int32_t o = -1;
        if (last) NEWV(o, ox_out(c, 0, dt, c->vals[acc].rank, c->vals[acc].dims));
        TRY(ox_binary(c, k == 1 ? CRUCIBLE_OP_MAX : CRUCIBLE_OP_MIN, acc, kv,
                      last ? NULL : (k == 1 ? "lower" : "upper"), o, &acc));
    }
    if (acc == x) return ox_alias(c, 0, x);
    if (is_narrow_int(dt)) return narrow_out(c, acc, dt);
    (void)res;
    return OX_OK;
}

static int lower_clip(ox_ctx *c)
{
    int32_t x = ox_in(c, 0);
    TRY(ox_operand_ok(c, x, "input"));
    if (c->cur_opset >= 12 && (is_narrow_int(c->vals[x].dtype) ||
                               c->vals[x].dtype == CRUCIBLE_DT_I32 ||
                               c->vals[x].dtype == CRUCIBLE_DT_I64))
        return clip_int(c, x);
    TRY(need_f32(c, x, "input"));
    const ox_val *xv = &c->vals[x];
    double lo = -INFINITY, hi = INFINITY;
    int has_lo = 0, has_hi = 0;
    int32_t rt[3] = {x, -1, -1};
    uint32_t nrt = 1;
    if (c->cur_opset < 11) {
        const Onnx__AttributeProto *a;
        if ((a = oa_find(c, "min")) && a->has_f) lo = a->f, has_lo = 1;
        if ((a = oa_find(c, "max")) && a->has_f) hi = a->f, has_hi = 1;
    } else {
        for (uint32_t k = 1; k <= 2; k++) {
            int32_t v = ox_in(c, k);
            if (v < 0) continue;
            TRY(need_f32(c, v, k == 1 ? "min" : "max"));
            if (c->vals[v].is_const) {
                double f;
                TRY(const_scalar(c, v, k == 1 ? "min" : "max", &f));
                if (k == 1) lo = f, has_lo = 1;
                else hi = f, has_hi = 1;
            } else {
                if (ox_val_numel(&c->vals[v]) != 1)
                    return ox_unsup(c, "clip bound must be a scalar");
                rt[k] = v; /* a run-time scalar: an IR input */
                nrt = k + 1;
            }
        }
    }
    int32_t y, n;
    NEWV(y, out_like(c, 0, xv->dtype, xv->rank, xv->dims));
    NEWV(n, ox_node_new(c, CRUCIBLE_OP_CLIP, NULL, nrt, rt, 1, &y));
    if (has_lo) TRY(ox_attr_float(c, n, "min", (double)(float)lo));
    if (has_hi) TRY(ox_attr_float(c, n, "max", (double)(float)hi));
    return OX_OK;
}

/* ---- shape ops ------------------------------------------------------------*/
/* Output k = reshape of x to dims (explicit); constant x stays constant. */
static int reshape_out(ox_ctx *c, int32_t x, int32_t rank, const int64_t *dims)
{
    const ox_val *xv = &c->vals[x];
    int32_t y, res;
    if (rank > CRUCIBLE_MAX_RANK)
        return ox_unsup(c, "result has more than %d dimensions",
                        CRUCIBLE_MAX_RANK);
    NEWV(y, out_like(c, 0, xv->dtype, rank, dims));
    if (!xv->is_const) {
        int unknown = 0;
        for (int32_t i = 0; i < rank; i++) unknown += dims[i] <= 0;
        if (unknown > 1)
            return ox_unsup(c, "the input's dimensions are unknown");
    }
    return ox_reshape(c, x, rank, dims, NULL, y, &res);
}

static int lower_flatten(ox_ctx *c)
{
    int32_t x = ox_in(c, 0);
    TRY(ox_operand_ok(c, x, "input"));
    const ox_val *xv = &c->vals[x];
    int64_t axis = oa_i(c, "axis", 1);
    if (axis < 0) axis += xv->rank;
    if (axis < 0 || axis > xv->rank)
        return ox_unsup(c, "axis %lld is out of range", (long long)axis);
    int64_t outer = 1, inner = 1;
    for (int32_t i = 0; i < xv->rank; i++) {
        int64_t *p = i < axis ? &outer : &inner;
        if (xv->dims[i] <= 0 || *p == 0) *p = 0;
        else *p *= xv->dims[i];
    }
    int64_t dims[2] = {outer, inner};
    return reshape_out(c, x, 2, dims);
}

static int lower_reshape(ox_ctx *c)
{
    int32_t x = ox_in(c, 0);
    TRY(ox_operand_ok(c, x, "input"));
    const ox_val *xv = &c->vals[x];
    int64_t shp[CRUCIBLE_MAX_RANK + 1];
    uint32_t cnt;
    if (c->cur_opset < 5) {
        const int64_t *s = oa_ints(c, "shape", &cnt);
        if (cnt > CRUCIBLE_MAX_RANK)
            return ox_unsup(c, "target rank above %d", CRUCIBLE_MAX_RANK);
        for (uint32_t i = 0; i < cnt; i++) shp[i] = s[i];
    } else {
        int32_t s = ox_in(c, 1);
        if (s < 0) return ox_unsup(c, "the target shape input is missing");
        if (c->vals[s].is_const && ox_val_numel(&c->vals[s]) == 0 &&
            c->vals[s].rank == 1) {
            cnt = 0; /* reshape to a scalar */
        } else {
            TRY(const_ints(c, s, "the target shape", shp, CRUCIBLE_MAX_RANK,
                           &cnt));
        }
    }
    int allowzero = c->cur_opset >= 14 && oa_i(c, "allowzero", 0);
    int64_t dims[CRUCIBLE_MAX_RANK];
    int infer = -1, unknown = 0;
    uint64_t known = 1;
    for (uint32_t i = 0; i < cnt; i++) {
        int64_t v = shp[i];
        if (v == 0) {
            if (allowzero)
                return ox_unsup(c, "allowzero with a 0 makes an empty tensor");
            if ((int32_t)i >= xv->rank)
                return ox_unsup(c, "shape[%u] = 0 copies a dimension the input "
                                "does not have",
                                i);
            v = xv->dims[i];
            if (v <= 0) {
                unknown++;
                dims[i] = 0;
                continue;
            }
        } else if (v == -1) {
            if (infer >= 0) return ox_unsup(c, "shape has more than one -1");
            infer = (int)i;
            dims[i] = 0;
            continue;
        } else if (v < -1) {
            return ox_unsup(c, "shape[%u] = %lld is invalid", i, (long long)v);
        }
        dims[i] = v;
        if ((uint64_t)v > OX_MAX_ELEMS || known > OX_MAX_ELEMS / (uint64_t)v)
            return ox_unsup(c, "target shape too large");
        known *= (uint64_t)v;
    }
    uint64_t total = ox_val_numel(xv);
    if (infer >= 0 && total && !unknown) {
        if (!known || total % known)
            return ox_unsup(c, "cannot reshape %llu elements with that shape",
                            (unsigned long long)total);
        dims[infer] = (int64_t)(total / known);
        infer = -1;
        known = total;
    }
    if (!unknown && infer < 0 && total && known != total)
        return ox_unsup(c, "cannot reshape %llu elements to %llu",
                        (unsigned long long)total, (unsigned long long)known);
    if (unknown + (infer >= 0) > 1) {
        /* keep the ONNX form (0 = copy, -1 = infer): the IR has the same
         * semantics */
        int32_t y, n;
        NEWV(y, out_like(c, 0, xv->dtype, (int32_t)cnt, dims));
        NEWV(n, ox_node_new(c, CRUCIBLE_OP_RESHAPE, NULL, 1, &x, 1, &y));
        TRY(ox_attr_ints(c, n, "shape", cnt, shp));
        return OX_OK;
    }
    return reshape_out(c, x, (int32_t)cnt, dims);
}

/* axes from attribute (old opsets) or constant input k (new opsets) */
static int get_axes(ox_ctx *c, int from_input, uint32_t k, int64_t *axes,
                    uint32_t *n, int *given)
{
    *n = 0;
    *given = 0;
    if (!from_input) {
        uint32_t cnt;
        const int64_t *a = oa_ints(c, "axes", &cnt);
        if (oa_find(c, "axes")) *given = 1;
        if (cnt > 2 * CRUCIBLE_MAX_RANK) return ox_unsup(c, "too many axes");
        for (uint32_t i = 0; i < cnt; i++) axes[i] = a[i];
        *n = cnt;
        return OX_OK;
    }
    int32_t v = ox_in(c, k);
    if (v < 0) return OX_OK;
    *given = 1;
    if (c->vals[v].is_const && ox_val_numel(&c->vals[v]) == 0) return OX_OK;
    return const_ints(c, v, "axes", axes, 2 * CRUCIBLE_MAX_RANK, n);
}

static int lower_squeeze(ox_ctx *c)
{
    int32_t x = ox_in(c, 0);
    TRY(ox_operand_ok(c, x, "input"));
    const ox_val *xv = &c->vals[x];
    int64_t axes[2 * CRUCIBLE_MAX_RANK];
    uint32_t n;
    int given;
    TRY(get_axes(c, c->cur_opset >= 13, 1, axes, &n, &given));
    int drop[CRUCIBLE_MAX_RANK] = {0};
    if (!n) {
        for (int32_t i = 0; i < xv->rank; i++) {
            if (xv->dims[i] <= 0)
                return ox_unsup(c, "squeezing all 1-dims needs a known shape");
            drop[i] = xv->dims[i] == 1;
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        int64_t a = ox_norm_axis(axes[i], xv->rank);
        if (a < 0 || drop[a])
            return ox_unsup(c, "axis %lld is invalid", (long long)axes[i]);
        if (xv->dims[a] > 1)
            return ox_unsup(c, "axis %lld has size %lld, not 1",
                            (long long)axes[i], (long long)xv->dims[a]);
        drop[a] = 1;
    }
    int64_t dims[CRUCIBLE_MAX_RANK];
    int32_t r = 0;
    for (int32_t i = 0; i < xv->rank; i++)
        if (!drop[i]) dims[r++] = xv->dims[i];
    return reshape_out(c, x, r, dims);
}

static int lower_unsqueeze(ox_ctx *c)
{
    int32_t x = ox_in(c, 0);
    TRY(ox_operand_ok(c, x, "input"));
    const ox_val *xv = &c->vals[x];
    int64_t axes[2 * CRUCIBLE_MAX_RANK];
    uint32_t n;
    int given;
    TRY(get_axes(c, c->cur_opset >= 13, 1, axes, &n, &given));
    if (!n) return ox_unsup(c, "axes are required");
    int32_t r = xv->rank + (int32_t)n;
    if (r > CRUCIBLE_MAX_RANK)
        return ox_unsup(c, "result has more than %d dimensions",
                        CRUCIBLE_MAX_RANK);
    int ins[CRUCIBLE_MAX_RANK] = {0};
    for (uint32_t i = 0; i < n; i++) {
        int64_t a = ox_norm_axis(axes[i], r);
        if (a < 0 || ins[a]) return ox_unsup(c, "axes are invalid");
        ins[a] = 1;
    }
    int64_t dims[CRUCIBLE_MAX_RANK];
    for (int32_t i = 0, k = 0; i < r; i++) dims[i] = ins[i] ? 1 : xv->dims[k++];
    return reshape_out(c, x, r, dims);
}

static int lower_transpose(ox_ctx *c)
{
    int32_t x = ox_in(c, 0);
    TRY(ox_operand_ok(c, x, "input"));
    const ox_val *xv = &c->vals[x];
    int64_t perm[CRUCIBLE_MAX_RANK];
    uint32_t n;
    const int64_t *p = oa_ints(c, "perm", &n);
    if (p && n != (uint32_t)xv->rank)
        return ox_unsup(c, "perm has %u entries for rank %d", n, (int)xv->rank);
    int seen[CRUCIBLE_MAX_RANK] = {0};
    int64_t dims[CRUCIBLE_MAX_RANK];
    for (int32_t i = 0; i < xv->rank; i++) {
        perm[i] = p ? p[i] : xv->rank - 1 - i;
        if (perm[i] < 0 || perm[i] >= xv->rank || seen[perm[i]]++)
            return ox_unsup(c, "perm is not a permutation");
        dims[i] = xv->dims[perm[i]];
    }
    uint64_t ne = ox_val_numel(xv);
    if (xv->is_const && ne <= OX_FOLD_MAX) {
        size_t es = ox_dtype_size(xv->dtype), bytes;
        char *d = new_data(c, xv->dtype, ne, &bytes);
        if (!d) return CRUCIBLE_E_NOMEM;
        int64_t st[CRUCIBLE_MAX_RANK], idx[CRUCIBLE_MAX_RANK] = {0};
        int64_t s = 1;
        for (int32_t i = xv->rank - 1; i >= 0; i--) {
            st[i] = s;
            s *= xv->dims[i];
        }
        for (uint64_t j = 0; j < ne; j++) {
            uint64_t off = 0;
            for (int32_t i = 0; i < xv->rank; i++)
                off += (uint64_t)idx[i] * (uint64_t)st[perm[i]];
            memcpy(d + j * es, (const char *)xv->data + off * es, es);
            next_idx(xv->rank, dims, idx);
        }
        int32_t y;
        NEWV(y, ox_out_const(c, 0, xv->dtype, xv->rank, dims, d, bytes));
        return OX_OK;
    }
    int32_t y, nd;
    NEWV(y, out_like(c, 0, xv->dtype, xv->rank, dims));
    NEWV(nd, ox_node_new(c, CRUCIBLE_OP_TRANSPOSE, NULL, 1, &x, 1, &y));
    TRY(ox_attr_ints(c, nd, "perm", (uint32_t)xv->rank, perm));
    return OX_OK;
}

static int lower_concat(ox_ctx *c)
{
    uint32_t n = ox_n_in(c), m = 0;
    int32_t ins[1024];
    if (n > 1024) return ox_unsup(c, "too many inputs");
    int64_t axis = oa_i(c, "axis", c->cur_opset < 4 ? 1 : INT64_MIN);
    if (axis == INT64_MIN) return ox_unsup(c, "attribute axis is required");
    int32_t rank = -1, dt = 0;
    int64_t dims[CRUCIBLE_MAX_RANK] = {0};
    for (uint32_t i = 0; i < n; i++) {
        int32_t v = ox_in(c, i);
        if (v < 0) return ox_unsup(c, "input %u is missing", i);
        const ox_val *x = &c->vals[v];
        if (x->is_const && x->dtype && x->rank >= 0) {
            uint64_t ne;
            if (!ox_numel(x->rank, x->dims, &ne) && ne == 0) continue;
        }
        TRY(ox_operand_ok(c, v, "an input"));
        if (rank < 0) {
            rank = x->rank;
            dt = x->dtype;
            axis = ox_norm_axis(axis, rank);
            if (axis < 0) return ox_unsup(c, "axis out of range");
            memcpy(dims, x->dims, sizeof dims);
        } else {
            if (x->rank != rank || x->dtype != dt)
                return ox_unsup(c, "inputs differ in rank or dtype");
            for (int32_t d = 0; d < rank; d++) {
                if (d == axis) {
                    dims[d] = dims[d] > 0 && x->dims[d] > 0 ? dims[d] + x->dims[d]
                                                            : 0;
                } else if (dims[d] <= 0) {
                    dims[d] = x->dims[d];
                } else if (x->dims[d] > 0 && x->dims[d] != dims[d]) {
                    return ox_unsup(c, "input shapes differ outside the axis");
                }
            }
        }
        ins[m++] = v;
    }
    if (!m) return ox_unsup(c, "all inputs are empty");
    if (all_const(c, ins, m)) {
        uint64_t ne;
        if (!ox_numel(rank, dims, &ne) && ne && ne <= OX_FOLD_MAX) {
            size_t es = ox_dtype_size(dt), bytes;
            char *d = new_data(c, dt, ne, &bytes), *dst = d;
            if (!d) return CRUCIBLE_E_NOMEM;
            uint64_t outer = 1, inner = 1;
            for (int64_t i = 0; i < axis; i++) outer *= (uint64_t)dims[i];
            for (int32_t i = (int32_t)axis + 1; i < rank; i++)
                inner *= (uint64_t)dims[i];
            for (uint64_t k = 0; k < outer; k++)
                for (uint32_t i = 0; i < m; i++) {
                    const ox_val *x = &c->vals[ins[i]];
                    size_t chunk = (size_t)((uint64_t)x->dims[axis] * inner) * es;
                    memcpy(dst, (const char *)x->data + k * chunk, chunk);
                    dst += chunk;
                }
            int32_t y;
            NEWV(y, ox_out_const(c, 0, dt, rank, dims, d, bytes));
            return OX_OK;
        }
    }
    int32_t y, nd;
    NEWV(y, out_like(c, 0, dt, rank, dims));
    NEWV(nd, ox_node_new(c, CRUCIBLE_OP_CONCAT, NULL, m, ins, 1, &y));
    TRY(ox_attr_int(c, nd, "axis", axis));
    return OX_OK;
}

/* Slice of x along the given axes; output k (or a tmp when k < 0). */
static int emit_slice(ox_ctx *c, int32_t x, uint32_t n, const int64_t *starts,
                      const int64_t *ends, const int64_t *axes,
                      const int64_t *steps, int32_t k, const char *sfx,
                      int32_t *res)
{
    const ox_val *xv = &c->vals[x];
    int64_t dims[CRUCIBLE_MAX_RANK], st[CRUCIBLE_MAX_RANK], sp[CRUCIBLE_MAX_RANK];
    memcpy(dims, xv->dims, sizeof dims);
    int seen[CRUCIBLE_MAX_RANK] = {0};
    for (int32_t i = 0; i < xv->rank; i++) st[i] = 0, sp[i] = 1;
    if (n > (uint32_t)xv->rank) return ox_unsup(c, "more starts than dims");
    int64_t nax[CRUCIBLE_MAX_RANK];
    for (uint32_t i = 0; i < n; i++) {
        int64_t a = ox_norm_axis(axes ? axes[i] : (int64_t)i, xv->rank);
        if (a < 0 || seen[a]++) return ox_unsup(c, "axes are invalid");
        nax[i] = a;
        int64_t step = steps ? steps[i] : 1;
        if (step == 0) return ox_unsup(c, "a step is 0");
        int64_t d = xv->dims[a];
        if (d <= 0) {
            dims[a] = 0; /* unknown */
            continue;
        }
        int64_t s = starts[i], e = ends[i], len;
        if (s < 0) s = s < -d ? -d - 1 + d : s + d;
        if (e < 0) e = e < -d ? -d - 1 + d : e + d;
        if (step > 0) {
            s = s < 0 ? 0 : s > d ? d : s;
            e = e < 0 ? 0 : e > d ? d : e;
            len = e > s ? (e - s) / step + ((e - s) % step != 0) : 0;
        } else {
            s = s < 0 ? 0 : s > d - 1 ? d - 1 : s;
            e = e < -1 ? -1 : e > d - 1 ? d - 1 : e;
            len = s > e ? (e - s) / step + ((e - s) % step != 0) : 0;
        }
        if (len <= 0)
            return ox_unsup(c, "the slice along axis %lld is empty, which the "
                            "IR cannot represent",
                            (long long)a);
        dims[a] = len;
        st[a] = s;
        sp[a] = step;
    }
    uint64_t ne;
    int32_t y;
    if (xv->is_const && ox_shape_known(xv) && !ox_numel(xv->rank, dims, &ne) &&
        ne <= OX_FOLD_MAX) {
        size_t es = ox_dtype_size(xv->dtype), bytes;
        char *d = new_data(c, xv->dtype, ne, &bytes);
        if (!d) return CRUCIBLE_E_NOMEM;
        int64_t xs[CRUCIBLE_MAX_RANK], idx[CRUCIBLE_MAX_RANK] = {0}, s = 1;
        for (int32_t i = xv->rank - 1; i >= 0; i--) {
            xs[i] = s;
            s *= xv->dims[i];
        }
        for (uint64_t j = 0; j < ne; j++) {
            int64_t off = 0;
            for (int32_t i = 0; i < xv->rank; i++)
                off += (st[i] + idx[i] * sp[i]) * xs[i];
            memcpy(d + j * es, (const char *)xv->data + (size_t)off * es, es);
            next_idx(xv->rank, dims, idx);
        }
        if (k >= 0)
            NEWV(y, ox_out_const(c, (uint32_t)k, xv->dtype, xv->rank, dims, d,
                                 bytes));
        else
            NEWV(y, ox_const(c, sfx, xv->dtype, xv->rank, dims, d, bytes));
        *res = y;
        return OX_OK;
    }
    if (k >= 0) NEWV(y, out_like(c, (uint32_t)k, xv->dtype, xv->rank, dims));
    else NEWV(y, ox_tmp(c, sfx, xv->dtype, xv->rank, dims));
    int32_t nd;
    NEWV(nd, ox_node_new(c, CRUCIBLE_OP_SLICE, k == 0 ? NULL : sfx, 1, &x, 1, &y));
    TRY(ox_attr_ints(c, nd, "starts", n, starts));
    TRY(ox_attr_ints(c, nd, "ends", n, ends));
    TRY(ox_attr_ints(c, nd, "axes", n, nax));
    if (steps) TRY(ox_attr_ints(c, nd, "steps", n, steps));
    *res = y;
    return OX_OK;
}

static int lower_slice(ox_ctx *c)
{
    int32_t x = ox_in(c, 0);
    TRY(ox_operand_ok(c, x, "input"));
    int64_t st[CRUCIBLE_MAX_RANK], en[CRUCIBLE_MAX_RANK], ax[CRUCIBLE_MAX_RANK],
        sp[CRUCIBLE_MAX_RANK];
    uint32_t ns, ne, na = 0, np = 0;
    int has_axes = 0, has_steps = 0;
    if (c->cur_opset < 10) {
        const int64_t *a = oa_ints(c, "starts", &ns), *b;
        if (!a || ns > CRUCIBLE_MAX_RANK) return ox_unsup(c, "starts invalid");
        memcpy(st, a, ns * sizeof *st);
        b = oa_ints(c, "ends", &ne);
        if (!b || ne != ns) return ox_unsup(c, "ends invalid");
        memcpy(en, b, ne * sizeof *en);
        const int64_t *x3 = oa_ints(c, "axes", &na);
        if (x3) {
            if (na != ns) return ox_unsup(c, "axes invalid");
            memcpy(ax, x3, na * sizeof *ax);
            has_axes = 1;
        }
    } else {
        TRY(const_ints(c, ox_in(c, 1), "starts", st, CRUCIBLE_MAX_RANK, &ns));
        TRY(const_ints(c, ox_in(c, 2), "ends", en, CRUCIBLE_MAX_RANK, &ne));
        if (ne != ns) return ox_unsup(c, "starts and ends differ in length");
        if (ox_in(c, 3) >= 0) {
            TRY(const_ints(c, ox_in(c, 3), "axes", ax, CRUCIBLE_MAX_RANK, &na));
            if (na != ns) return ox_unsup(c, "axes differ in length");
            has_axes = 1;
        }
        if (ox_in(c, 4) >= 0) {
            TRY(const_ints(c, ox_in(c, 4), "steps", sp, CRUCIBLE_MAX_RANK, &np));
            if (np != ns) return ox_unsup(c, "steps differ in length");
            has_steps = 1;
        }
    }
    if (!ns) return ox_alias(c, 0, x);
    int32_t res;
    return emit_slice(c, x, ns, st, en, has_axes ? ax : NULL,
                      has_steps ? sp : NULL, 0, NULL, &res);
}

static int lower_split(ox_ctx *c)
{
    int32_t x = ox_in(c, 0);
    TRY(ox_operand_ok(c, x, "input"));
    const ox_val *xv = &c->vals[x];
    uint32_t no = ox_n_out(c);
    if (!no || no > OX_MAX_OUTPUTS) return ox_unsup(c, "bad output count");
    int64_t axis = ox_norm_axis(oa_i(c, "axis", 0), xv->rank);
    if (axis < 0) return ox_unsup(c, "axis out of range");
    int64_t d = xv->dims[axis], sizes[OX_MAX_OUTPUTS];
    if (d <= 0) return ox_unsup(c, "the split dimension is unknown");
    uint32_t ns = 0;
    if (c->cur_opset >= 13 && ox_in(c, 1) >= 0) {
        TRY(const_ints(c, ox_in(c, 1), "split", sizes, OX_MAX_OUTPUTS, &ns));
    } else if (c->cur_opset < 13) {
        const int64_t *s = oa_ints(c, "split", &ns);
        if (ns > OX_MAX_OUTPUTS) return ox_unsup(c, "too many splits");
        for (uint32_t i = 0; i < ns; i++) sizes[i] = s[i];
    }
    if (!ns) {
        int64_t parts = no;
        if (c->cur_opset >= 18 && oa_find(c, "num_outputs"))
            parts = oa_i(c, "num_outputs", no);
        if (parts != no) return ox_unsup(c, "num_outputs differs from outputs");
        int64_t each = (d + parts - 1) / parts;
        if (c->cur_opset < 18 && d % parts)
            return ox_unsup(c, "dimension %lld does not split evenly",
                            (long long)d);
        for (uint32_t i = 0; i < no; i++) {
            int64_t left = d - each * i;
            sizes[i] = left < each ? left : each;
        }
        ns = no;
    }
    if (ns != no) return ox_unsup(c, "split has %u sizes for %u outputs", ns, no);
    int64_t off = 0;
    for (uint32_t i = 0; i < no; i++) {
        if (sizes[i] < 0) return ox_unsup(c, "negative split size");
        int64_t s = off, e = off + sizes[i];
        off = e;
        if (!ox_out_used(c, i)) continue;
        int32_t res;
        char sfx[32];
        snprintf(sfx, sizeof sfx, "part%u", i);
        TRY(emit_slice(c, x, 1, &s, &e, &axis, NULL, (int32_t)i, sfx, &res));
    }
    if (off != d) return ox_unsup(c, "split sizes do not add up to %lld",
                                  (long long)d);
    return OX_OK;
}

static int lower_pad(ox_ctx *c)
{
    int32_t x = ox_in(c, 0);
    TRY(ox_operand_ok(c, x, "input"));
    const ox_val *xv = &c->vals[x];
    int32_t r = xv->rank;
    int64_t pads[2 * CRUCIBLE_MAX_RANK] = {0}, raw[2 * CRUCIBLE_MAX_RANK];
    uint32_t np;
    double value = 0.0;
    const char *mode = oa_s(c, "mode", "constant");
    if (c->cur_opset < 11) {
        const int64_t *p = oa_ints(c, c->cur_opset < 2 ? "paddings" : "pads",
                                        &np);
        if (np != 2u * (uint32_t)r) return ox_unsup(c, "pads has the wrong length");
        memcpy(raw, p, np * sizeof *raw);
        value = oa_f(c, "value", 0.0);
    } else {
        TRY(const_ints(c, ox_in(c, 1), "pads", raw, 2 * CRUCIBLE_MAX_RANK, &np));
        int32_t cv = ox_in(c, 2);
        if (cv >= 0) TRY(const_scalar(c, cv, "constant_value", &value));
    }
    int64_t axes[CRUCIBLE_MAX_RANK];
    uint32_t na = 0;
    if (c->cur_opset >= 18 && ox_in(c, 3) >= 0) {
        TRY(const_ints(c, ox_in(c, 3), "axes", axes, CRUCIBLE_MAX_RANK, &na));
        if (np != 2 * na) return ox_unsup(c, "pads do not match axes");
        for (uint32_t i = 0; i < na; i++) {
            int64_t a = ox_norm_axis(axes[i], r);
            if (a < 0) return ox_unsup(c, "axes invalid");
            pads[a] = raw[i];
            pads[a + r] = raw[i + na];
        }
    } else {
        if (np != 2u * (uint32_t)r) return ox_unsup(c, "pads has the wrong length");
        memcpy(pads, raw, np * sizeof *pads);
    }
    if (strcmp(mode, "constant") && strcmp(mode, "reflect") &&
        strcmp(mode, "edge"))
        return ox_unsup(c, "pad mode '%s'", mode);
    int64_t dims[CRUCIBLE_MAX_RANK];
    for (int32_t i = 0; i < r; i++) {
        int64_t d = xv->dims[i], b = pads[i], e = pads[i + r];
        if (b < -(int64_t)OX_MAX_ELEMS || b > (int64_t)OX_MAX_ELEMS ||
            e < -(int64_t)OX_MAX_ELEMS || e > (int64_t)OX_MAX_ELEMS)
            return ox_unsup(c, "pads too large");
        if (d <= 0) {
            dims[i] = 0;
            continue;
        }
        dims[i] = d + b + e;
        if (dims[i] < 1) return ox_unsup(c, "padding makes axis %d empty", (int)i);
        if (!strcmp(mode, "reflect") && (b > d - 1 || e > d - 1))
            return ox_unsup(c, "reflect padding of %lld/%lld needs pads smaller "
                            "than the dimension %lld",
                            (long long)b, (long long)e, (long long)d);
        if (!strcmp(mode, "edge") && d < 1)
            return ox_unsup(c, "edge padding of an empty axis");
    }
    if (xv->dtype != CRUCIBLE_DT_F32 && !ox_is_int(xv->dtype) && value != 0.0)
        return ox_unsup(c, "a non-zero pad value for %s",
                        ox_dtype_name(xv->dtype));
    int32_t y, n;
    NEWV(y, out_like(c, 0, xv->dtype, r, dims));
    NEWV(n, ox_node_new(c, CRUCIBLE_OP_PAD, NULL, 1, &x, 1, &y));
    TRY(ox_attr_ints(c, n, "pads", 2u * (uint32_t)r, pads));
    TRY(ox_attr_str(c, n, "mode", mode));
    if (value != 0.0) TRY(ox_attr_float(c, n, "value", value));
    return OX_OK;
}

static int lower_gather(ox_ctx *c)
{
    int32_t x = ox_in(c, 0), ix = ox_in(c, 1);
    TRY(ox_operand_ok(c, x, "data"));
    TRY(ox_operand_ok(c, ix, "indices"));
    const ox_val *xv = &c->vals[x], *iv = &c->vals[ix];
    if (iv->dtype != CRUCIBLE_DT_I32 && iv->dtype != CRUCIBLE_DT_I64)
        return ox_unsup(c, "indices are %s", ox_dtype_name(iv->dtype));
    if (xv->rank < 1) return ox_unsup(c, "data must have rank >= 1");
    int64_t axis = ox_norm_axis(oa_i(c, "axis", 0), xv->rank);
    if (axis < 0) return ox_unsup(c, "axis out of range");
    int32_t r = xv->rank - 1 + iv->rank;
    if (r > CRUCIBLE_MAX_RANK) return ox_unsup(c, "result rank too large");
    int64_t dims[CRUCIBLE_MAX_RANK];
    int32_t k = 0;
    for (int32_t i = 0; i < axis; i++) dims[k++] = xv->dims[i];
    for (int32_t i = 0; i < iv->rank; i++) dims[k++] = iv->dims[i];
    for (int32_t i = (int32_t)axis + 1; i < xv->rank; i++) dims[k++] = xv->dims[i];
    int64_t d = xv->dims[axis];
    if (iv->is_const && d > 0) {
        uint64_t ni = ox_val_numel(iv);
        for (uint64_t j = 0; j < ni; j++) {
            int64_t v = ox_get_i(iv, j);
            if (v < -d || v >= d)
                return ox_unsup(c, "index %lld is out of range for a "
                                "dimension of %lld",
                                (long long)v, (long long)d);
        }
    }
    uint64_t ne;
    if (xv->is_const && iv->is_const && !ox_numel(r, dims, &ne) && ne &&
        ne <= OX_FOLD_MAX && ox_shape_known(xv)) {
        size_t es = ox_dtype_size(xv->dtype), bytes;
        char *out = new_data(c, xv->dtype, ne, &bytes), *dst = out;
        if (!out) return CRUCIBLE_E_NOMEM;
        uint64_t outer = 1, inner = 1, ni = ox_val_numel(iv);
        for (int32_t i = 0; i < axis; i++) outer *= (uint64_t)xv->dims[i];
        for (int32_t i = (int32_t)axis + 1; i < xv->rank; i++)
            inner *= (uint64_t)xv->dims[i];
        size_t chunk = (size_t)inner * es;
        for (uint64_t o = 0; o < outer; o++)
            for (uint64_t j = 0; j < ni; j++) {
                int64_t v = ox_get_i(iv, j);
                if (v < 0) v += d;
                memcpy(dst,
                       (const char *)xv->data +
                           ((size_t)o * (size_t)d + (size_t)v) * chunk,
                       chunk);
                dst += chunk;
            }
        int32_t y;
        NEWV(y, ox_out_const(c, 0, xv->dtype, r, dims, out, bytes));
        return OX_OK;
    }
    int32_t y, n, ins[2] = {x, ix};
    NEWV(y, out_like(c, 0, xv->dtype, r, dims));
    NEWV(n, ox_node_new(c, CRUCIBLE_OP_GATHER, NULL, 2, ins, 1, &y));
    TRY(ox_attr_int(c, n, "axis", axis));
    return OX_OK;
}

/* ---- reductions -----------------------------------------------------------*/
static int lower_reduce(ox_ctx *c)
{
    const char *t = c->cur->op_type;
    int32_t x = ox_in(c, 0);
    TRY(need_f32(c, x, "input"));
    const ox_val *xv = &c->vals[x];
    int axes_input = !strcmp(t, "ReduceSum") ? c->cur_opset >= 13
                                             : c->cur_opset >= 18;
    int64_t axes[2 * CRUCIBLE_MAX_RANK];
    uint32_t n;
    int given;
    TRY(get_axes(c, axes_input, 1, axes, &n, &given));
    int keep = oa_i(c, "keepdims", 1) != 0;
    int noop = oa_i(c, "noop_with_empty_axes", 0) != 0;
    if (!n && noop && axes_input) return ox_alias(c, 0, x);
    int red[CRUCIBLE_MAX_RANK] = {0};
    for (uint32_t i = 0; i < n; i++) {
        int64_t a = ox_norm_axis(axes[i], xv->rank);
        if (a < 0 || red[a]++) return ox_unsup(c, "axes are invalid");
        axes[i] = a;
    }
    if (!n)
        for (int32_t i = 0; i < xv->rank; i++) red[i] = 1;
    int64_t dims[CRUCIBLE_MAX_RANK];
    int32_t r = 0;
    for (int32_t i = 0; i < xv->rank; i++) {
        if (!red[i]) dims[r++] = xv->dims[i];
        else if (keep) dims[r++] = 1;
    }
    int32_t pre = -1, post = -1, red_op = CRUCIBLE_OP_REDUCE_SUM, sq = 0;
    if (!strcmp(t, "ReduceMean")) red_op = CRUCIBLE_OP_REDUCE_MEAN;
    else if (!strcmp(t, "ReduceMax")) red_op = CRUCIBLE_OP_REDUCE_MAX;
    else if (!strcmp(t, "ReduceMin")) {
        red_op = CRUCIBLE_OP_REDUCE_MAX;
        pre = post = CRUCIBLE_OP_NEG;
    } else if (!strcmp(t, "ReduceL1")) pre = CRUCIBLE_OP_ABS;
    else if (!strcmp(t, "ReduceL2")) sq = 1, post = CRUCIBLE_OP_SQRT;
    else if (!strcmp(t, "ReduceSumSquare")) sq = 1;
    else if (!strcmp(t, "ReduceLogSum")) post = CRUCIBLE_OP_LOG;
    else if (!strcmp(t, "ReduceLogSumExp")) pre = CRUCIBLE_OP_EXP,
                                            post = CRUCIBLE_OP_LOG;
    int32_t in = x;
    if (pre >= 0) TRY(ox_unary(c, pre, x, "pre", -1, &in));
    if (sq) TRY(ox_binary(c, CRUCIBLE_OP_MUL, x, x, "square", -1, &in));
    int32_t y, nd;
    if (post >= 0) NEWV(y, ox_tmp(c, "reduced", CRUCIBLE_DT_F32, r, dims));
    else NEWV(y, out_like(c, 0, CRUCIBLE_DT_F32, r, dims));
    NEWV(nd, ox_node_new(c, red_op, post >= 0 ? "reduce" : NULL, 1, &in, 1, &y));
    if (n) TRY(ox_attr_ints(c, nd, "axes", n, axes));
    TRY(ox_attr_int(c, nd, "keepdims", keep));
    if (post < 0) return OX_OK;
    int32_t z, res;
    NEWV(z, out_like(c, 0, CRUCIBLE_DT_F32, r, dims));
    return ox_unary(c, post, y, NULL, z, &res);
}

/* ---- Cast, CastLike -------------------------------------------------------*/
static int cast_to(ox_ctx *c, int32_t x, int32_t to, int onnx_to)
{
    TRY(ox_operand_ok(c, x, "input"));
    const ox_val *xv = &c->vals[x];
    if (!to)
        return ox_unsup(c, "cast to ONNX type %s, which the IR has no dtype for",
                        ox_onnx_type_name(onnx_to));
    int src_ok = xv->dtype == CRUCIBLE_DT_F32 || ox_is_int(xv->dtype);
    int dst_ok = to == CRUCIBLE_DT_F32 || ox_is_int(to);
    uint64_t ne = ox_val_numel(xv);
    if (xv->is_const && ne && ne <= OX_FOLD_MAX &&
        (src_ok || xv->dtype == CRUCIBLE_DT_F16) &&
        (dst_ok || to == CRUCIBLE_DT_F16)) {
        size_t bytes;
        void *d = new_data(c, to, ne, &bytes);
        if (!d) return CRUCIBLE_E_NOMEM;
        for (uint64_t i = 0; i < ne; i++) cast_elem(xv, i, to, d, i);
        int32_t y;
        NEWV(y, ox_out_const(c, 0, to, xv->rank, xv->dims, d, bytes));
        return OX_OK;
    }
    if (!src_ok || !dst_ok)
        return ox_unsup(c, "the interpreter casts only between f32 and the "
                        "integer types, not %s to %s",
                        ox_dtype_name(xv->dtype), ox_dtype_name(to));
    if (xv->dtype == to) return ox_alias(c, 0, x);
    int32_t y, n;
    NEWV(y, out_like(c, 0, to, xv->rank, xv->dims));
    c->vals[y].dtype = to;
    NEWV(n, ox_node_new(c, CRUCIBLE_OP_CAST, NULL, 1, &x, 1, &y));
    TRY(ox_attr_str(c, n, "to", ox_dtype_name(to)));
    return OX_OK;
}

static int lower_cast(ox_ctx *c)
{
    int64_t to = oa_i(c, "to", 0);
    if (to < 0 || to > INT32_MAX) return ox_unsup(c, "invalid 'to'");
    return cast_to(c, ox_in(c, 0), ox_dtype_from_onnx((int32_t)to), (int32_t)to);
}

static int lower_castlike(ox_ctx *c)
{
    int32_t t = ox_in(c, 1);
    if (t < 0) return ox_unsup(c, "target_type input is missing");
    return cast_to(c, ox_in(c, 0), c->vals[t].dtype, c->vals[t].onnx_type);
}

/* ---- shape-valued ops (folded) -------------------------------------------*/
static int lower_shape(ox_ctx *c)
{
    int32_t x = ox_in(c, 0);
    if (x < 0 || c->vals[x].rank < 0) return ox_unsup(c, "input rank unknown");
    const ox_val *xv = &c->vals[x];
    int64_t r = xv->rank, s = 0, e = r;
    if (c->cur_opset >= 15) {
        s = oa_i(c, "start", 0);
        e = oa_i(c, "end", r);
        if (s < 0) s += r;
        if (e < 0) e += r;
        s = s < 0 ? 0 : s > r ? r : s;
        e = e < 0 ? 0 : e > r ? r : e;
    }
    int64_t n = e > s ? e - s : 0;
    int64_t *d = ox_alloc(c, (size_t)(n ? n : 1) * 8);
    if (!d) return CRUCIBLE_E_NOMEM;
    for (int64_t i = 0; i < n; i++) {
        if (xv->dims[s + i] <= 0)
            return ox_unsup(c, "the input's shape is not static");
        d[i] = xv->dims[s + i];
    }
    int32_t y;
    NEWV(y, ox_out_const(c, 0, CRUCIBLE_DT_I64, 1, &n, d, (size_t)n * 8));
    return OX_OK;
}

static int lower_size(ox_ctx *c)
{
    int32_t x = ox_in(c, 0);
    if (x < 0) return ox_unsup(c, "input missing");
    uint64_t n = ox_val_numel(&c->vals[x]);
    if (!n) return ox_unsup(c, "the input's shape is not static");
    int64_t *d = ox_alloc(c, 8);
    if (!d) return CRUCIBLE_E_NOMEM;
    *d = (int64_t)n;
    int32_t y;
    NEWV(y, ox_out_const(c, 0, CRUCIBLE_DT_I64, 0, NULL, d, 8));
    return OX_OK;
}

static int lower_constant_of_shape(ox_ctx *c)
{
    int64_t dims[CRUCIBLE_MAX_RANK];
    uint32_t r;
    int32_t s = ox_in(c, 0);
    if (s >= 0 && c->vals[s].is_const && ox_val_numel(&c->vals[s]) == 0 &&
        c->vals[s].rank == 1)
        r = 0;
    else
        TRY(const_ints(c, s, "shape", dims, CRUCIBLE_MAX_RANK, &r));
    const Onnx__AttributeProto *a = oa_find(c, "value");
    int32_t dt = CRUCIBLE_DT_F32;
    const ox_val *fill = NULL;
    if (a && a->t) {
        int32_t v;
        char *nm = ox_printf(c, "%s/value", c->cur_name);
        if (!nm) return CRUCIBLE_E_NOMEM;
        NEWV(v, ox_tensor_to_val(c, a->t, nm, 1, "ConstantOfShape value"));
        fill = &c->vals[v];
        if (!fill->dtype || ox_val_numel(fill) != 1)
            return ox_unsup(c, "value must be one element of an IR dtype");
        dt = fill->dtype;
    }
    uint64_t n;
    for (uint32_t i = 0; i < r; i++)
        if (dims[i] < 0) return ox_unsup(c, "negative dimension");
    if (ox_numel((int32_t)r, dims, &n) || n > OX_FOLD_MAX)
        return ox_unsup(c, "result too large to fold");
    size_t es = ox_dtype_size(dt), bytes;
    char *d = new_data(c, dt, n, &bytes);
    if (!d) return CRUCIBLE_E_NOMEM;
    for (uint64_t i = 0; i < n; i++) {
        if (fill) memcpy(d + i * es, fill->data, es);
        else memset(d + i * es, 0, es);
    }
    int32_t y;
    NEWV(y, ox_out_const(c, 0, dt, (int32_t)r, dims, d, bytes));
    return OX_OK;
}

static int lower_range(ox_ctx *c)
{
    int32_t s = ox_in(c, 0), l = ox_in(c, 1), dl = ox_in(c, 2);
    if (s < 0 || l < 0 || dl < 0) return ox_unsup(c, "inputs missing");
    double a, b, d;
    TRY(const_scalar(c, s, "start", &a));
    TRY(const_scalar(c, l, "limit", &b));
    TRY(const_scalar(c, dl, "delta", &d));
    int32_t dt = c->vals[s].dtype;
    if (d == 0) return ox_unsup(c, "delta is 0");
    double cnt = ceil((b - a) / d);
    if (!(cnt >= 1)) return ox_unsup(c, "the range is empty");
    if (cnt > (double)OX_FOLD_MAX) return ox_unsup(c, "range too large");
    int64_t n = (int64_t)cnt;
    size_t bytes;
    void *out = new_data(c, dt, (uint64_t)n, &bytes);
    if (!out) return ox_unsup(c, "range of %s", ox_dtype_name(dt));
    int isf = dt == CRUCIBLE_DT_F32;
    for (int64_t i = 0; i < n; i++) {
        if (isf) ox_set_f(dt, out, (uint64_t)i, (float)a + (float)i * (float)d);
        else /* wrapping, like the integer ops */
            ox_set_i(dt, out, (uint64_t)i,
                     (int64_t)((uint64_t)ox_get_i(&c->vals[s], 0) +
                               (uint64_t)i *
                                   (uint64_t)ox_get_i(&c->vals[dl], 0)));
    }
    int32_t y;
    NEWV(y, ox_out_const(c, 0, dt, 1, &n, out, bytes));
    return OX_OK;
}

/* Expand: x * ones (the ones carry the broadcast dims only). */
static int lower_expand(ox_ctx *c)
{
    int32_t x = ox_in(c, 0);
    TRY(ox_operand_ok(c, x, "input"));
    const ox_val *xv = &c->vals[x];
    int64_t shp[CRUCIBLE_MAX_RANK], dims[CRUCIBLE_MAX_RANK];
    uint32_t n;
    TRY(const_ints(c, ox_in(c, 1), "shape", shp, CRUCIBLE_MAX_RANK, &n));
    int32_t r;
    for (uint32_t i = 0; i < n; i++)
        if (shp[i] < 1 || (uint64_t)shp[i] > OX_MAX_ELEMS)
            return ox_unsup(c, "shape entry %lld", (long long)shp[i]);
    if (!ox_shape_known(xv)) return ox_unsup(c, "the input's shape is unknown");
    if (ox_bcast(xv->rank, xv->dims, (int32_t)n, shp, &r, dims))
        return ox_unsup(c, "shape does not broadcast");
    int same = r == xv->rank && !memcmp(dims, xv->dims, (size_t)r * 8);
    if (same) return ox_alias(c, 0, x);
    int64_t od[CRUCIBLE_MAX_RANK];
    uint64_t on = 1;
    for (int32_t i = 0; i < r; i++) {
        int32_t xi = i - (r - xv->rank);
        int64_t xd = xi < 0 ? 1 : xv->dims[xi];
        od[i] = xd == dims[i] ? 1 : dims[i];
    }
    uint64_t total;
    if (ox_numel(r, dims, &total) || ox_numel(r, od, &on))
        return ox_unsup(c, "the expanded shape is too large");
    if (xv->dtype != CRUCIBLE_DT_F32 && xv->dtype != CRUCIBLE_DT_I32 &&
        xv->dtype != CRUCIBLE_DT_I64)
        return ox_unsup(c, "expand of %s", ox_dtype_name(xv->dtype));
    size_t bytes;
    void *d = new_data(c, xv->dtype, on, &bytes);
    if (!d) return ox_unsup(c, "expansion too large");
    for (uint64_t i = 0; i < on; i++) ox_set_i(xv->dtype, d, i, 1);
    int32_t ones, y, res;
    NEWV(ones, ox_const(c, "ones", xv->dtype, r, od, d, bytes));
    int32_t ins[2] = {x, ones};
    if (all_const(c, ins, 2)) {
        int32_t v = fold_binary(c, F_MUL, x, ones, 0);
        if (v >= 0) return OX_OK;
        if (v < -1) return v;
    }
    NEWV(y, out_like(c, 0, xv->dtype, r, dims));
    return ox_binary(c, CRUCIBLE_OP_MUL, x, ones, NULL, y, &res);
}

static int lower_tile(ox_ctx *c)
{
    int32_t x = ox_in(c, 0);
    TRY(ox_operand_ok(c, x, "input"));
    int64_t rep[CRUCIBLE_MAX_RANK];
    uint32_t n;
    TRY(const_ints(c, ox_in(c, 1), "repeats", rep, CRUCIBLE_MAX_RANK, &n));
    const ox_val *xv = &c->vals[x];
    if (n != (uint32_t)xv->rank) return ox_unsup(c, "repeats length");
    int last = -1;
    for (int32_t i = 0; i < xv->rank; i++) {
        if (rep[i] < 1 || rep[i] > OX_MAX_REPEAT)
            return ox_unsup(c, "repeat %lld (1..%d supported)", (long long)rep[i],
                            OX_MAX_REPEAT);
        if (rep[i] > 1) last = i;
    }
    if (last < 0) return ox_alias(c, 0, x);
    int32_t cur = x;
    for (int32_t i = 0; i < xv->rank; i++) {
        if (rep[i] == 1) continue;
        const ox_val *cv = &c->vals[cur];
        int64_t dims[CRUCIBLE_MAX_RANK];
        memcpy(dims, cv->dims, sizeof dims);
        dims[i] = dims[i] > 0 ? dims[i] * rep[i] : 0;
        int32_t ins[OX_MAX_REPEAT], y, nd;
        for (int64_t k = 0; k < rep[i]; k++) ins[k] = cur;
        char sfx[32];
        snprintf(sfx, sizeof sfx, "tile%d", (int)i);
        if (i == last) NEWV(y, out_like(c, 0, cv->dtype, cv->rank, dims));
        else NEWV(y, ox_tmp(c, sfx, cv->dtype, cv->rank, dims));
        NEWV(nd, ox_node_new(c, CRUCIBLE_OP_CONCAT, i == last ? NULL : sfx,
                             (uint32_t)rep[i], ins, 1, &y));
        TRY(ox_attr_int(c, nd, "axis", i));
        cur = y;
    }
    return OX_OK;
}

/* DepthToSpace / SpaceToDepth: reshape, transpose, reshape. */
static int lower_depth_space(ox_ctx *c)
{
    int d2s = !strcmp(c->cur->op_type, "DepthToSpace");
    int32_t x = ox_in(c, 0);
    TRY(ox_operand_ok(c, x, "input"));
    const ox_val *xv = &c->vals[x];
    if (xv->rank != 4 || !ox_shape_known(xv))
        return ox_unsup(c, "needs a 4-D input of known shape");
    int64_t b = oa_i(c, "blocksize", 0);
    int64_t N = xv->dims[0], C = xv->dims[1], H = xv->dims[2], W = xv->dims[3];
    if (b < 1 || b > 4096) return ox_unsup(c, "blocksize %lld", (long long)b);
    int crd = d2s && !strcmp(oa_s(c, "mode", "DCR"), "CRD");
    int64_t s1[6], perm[6], fin[4], s2[6];
    if (d2s) {
        if (C % (b * b)) return ox_unsup(c, "channels not divisible");
        int64_t cc = C / (b * b);
        if (crd) {
            int64_t t[6] = {N, cc, b, b, H, W}, p[6] = {0, 1, 4, 2, 5, 3};
            memcpy(s1, t, sizeof t);
            memcpy(perm, p, sizeof p);
        } else {
            int64_t t[6] = {N, b, b, cc, H, W}, p[6] = {0, 3, 4, 1, 5, 2};
            memcpy(s1, t, sizeof t);
            memcpy(perm, p, sizeof p);
        }
        int64_t f[4] = {N, cc, H * b, W * b};
        memcpy(fin, f, sizeof f);
    } else {
        if (H % b || W % b) return ox_unsup(c, "spatial dims not divisible");
        int64_t t[6] = {N, C, H / b, b, W / b, b}, p[6] = {0, 3, 5, 1, 2, 4};
        memcpy(s1, t, sizeof t);
        memcpy(perm, p, sizeof p);
        int64_t f[4] = {N, C * b * b, H / b, W / b};
        memcpy(fin, f, sizeof f);
    }
    for (int i = 0; i < 6; i++) s2[i] = s1[perm[i]];
    int32_t r1, t, y, n, res;
    TRY(ox_reshape(c, x, 6, s1, "split", -1, &r1));
    NEWV(t, ox_tmp(c, "moved", xv->dtype, 6, s2));
    NEWV(n, ox_node_new(c, CRUCIBLE_OP_TRANSPOSE, "move", 1, &r1, 1, &t));
    TRY(ox_attr_ints(c, n, "perm", 6, perm));
    NEWV(y, out_like(c, 0, c->vals[x].dtype, 4, fin));
    return ox_reshape(c, t, 4, fin, NULL, y, &res);
}

static int lower_where(ox_ctx *c)
{
    int32_t cd = ox_in(c, 0), a = ox_in(c, 1), b = ox_in(c, 2);
    int32_t ins[3] = {cd, a, b};
    if (cd < 0 || a < 0 || b < 0 || !all_const(c, ins, 3))
        return ox_unsup(c, "Where has no canonical op (only constant inputs "
                        "are folded)");
    const ox_val *cv = &c->vals[cd], *av = &c->vals[a], *bv = &c->vals[b];
    int32_t r;
    int64_t dims[CRUCIBLE_MAX_RANK];
    if (av->dtype != bv->dtype || ox_bcast(cv->rank, cv->dims, av->rank,
                                            av->dims, &r, dims) ||
        ox_bcast(r, dims, bv->rank, bv->dims, &r, dims))
        return ox_unsup(c, "inputs do not broadcast");
    uint64_t n;
    if (ox_numel(r, dims, &n) || n > OX_FOLD_MAX || !n)
        return ox_unsup(c, "result too large to fold");
    size_t es = ox_dtype_size(av->dtype), bytes;
    char *d = new_data(c, av->dtype, n, &bytes);
    if (!d) return CRUCIBLE_E_NOMEM;
    int64_t idx[CRUCIBLE_MAX_RANK] = {0};
    for (uint64_t j = 0; j < n; j++) {
        int t = ox_get_i(cv, bcast_off(cv, r, idx)) != 0;
        const ox_val *src = t ? av : bv;
        memcpy(d + j * es,
               (const char *)src->data + bcast_off(src, r, idx) * es, es);
        next_idx(r, dims, idx);
    }
    int32_t y;
    NEWV(y, ox_out_const(c, 0, av->dtype, r, dims, d, bytes));
    return OX_OK;
}

static int lower_not(ox_ctx *c)
{
    int32_t x = ox_in(c, 0);
    if (x < 0 || !all_const(c, &x, 1) || !ox_shape_known(&c->vals[x]))
        return ox_unsup(c, "logic has no canonical op (only constant inputs "
                        "are folded)");
    const ox_val *xv = &c->vals[x];
    uint64_t n = ox_val_numel(xv);
    size_t bytes;
    void *d = new_data(c, CRUCIBLE_DT_BOOL, n, &bytes);
    if (!d) return ox_unsup(c, "too large to fold");
    for (uint64_t i = 0; i < n; i++) ox_set_i(CRUCIBLE_DT_BOOL, d, i, !ox_get_i(xv, i));
    int32_t y;
    NEWV(y, ox_out_const(c, 0, CRUCIBLE_DT_BOOL, xv->rank, xv->dims, d, bytes));
    return OX_OK;
}

/* EyeLike: a constant once the input's shape is known. */
static int lower_eyelike(ox_ctx *c)
{
    int32_t x = ox_in(c, 0);
    if (x < 0) return ox_unsup(c, "input missing");
    const ox_val *xv = &c->vals[x];
    if (xv->rank != 2 || !ox_shape_known(xv))
        return ox_unsup(c, "needs a 2-D input of known shape");
    int64_t odt = oa_i(c, "dtype", 0);
    int32_t dt = odt ? ox_dtype_from_onnx((int32_t)odt) : xv->dtype;
    if (!dt) return ox_unsup(c, "dtype has no IR equivalent");
    int64_t k = oa_i(c, "k", 0), R = xv->dims[0], C = xv->dims[1];
    size_t bytes;
    void *d = new_data(c, dt, (uint64_t)(R * C), &bytes);
    if (!d) return ox_unsup(c, "too large to fold");
    for (int64_t i = 0; i < R; i++) {
        int64_t j = i + k;
        if (j >= 0 && j < C) ox_set_i(dt, d, (uint64_t)(i * C + j), 1);
    }
    int32_t y;
    NEWV(y, ox_out_const(c, 0, dt, 2, xv->dims, d, bytes));
    return OX_OK;
}

static int lower_dynamic_quant(ox_ctx *c)
{
    return ox_unsup(c, "the scale and zero point are computed at run time; "
                    "the IR carries quantisation parameters on tensors, so "
                    "they must be constants");
}

/* ---- op table -------------------------------------------------------------*/
typedef int (*ox_handler)(ox_ctx *);
static const struct {
    const char *name;
    ox_handler fn;
} g_ops[] = {
    {"Abs", lower_unary},
    {"Add", lower_binary},
    {"And", lower_binary},
    {"AveragePool", ox_lower_pool},
    {"BatchNormalization", ox_lower_batchnorm},
    {"Cast", lower_cast},
    {"CastLike", lower_castlike},
    {"Celu", lower_unary},
    {"Clip", lower_clip},
    {"Concat", lower_concat},
    {"Constant", lower_constant},
    {"ConstantOfShape", lower_constant_of_shape},
    {"Conv", ox_lower_conv},
    {"ConvInteger", ox_lower_conv_int},
    {"ConvTranspose", ox_lower_conv_transpose},
    {"DepthToSpace", lower_depth_space},
    {"DequantizeLinear", ox_lower_qdq},
    {"Div", lower_binary},
    {"Dropout", lower_identity},
    {"DynamicQuantizeLinear", lower_dynamic_quant},
    {"Elu", lower_unary},
    {"Equal", lower_binary},
    {"Exp", lower_unary},
    {"Expand", lower_expand},
    {"EyeLike", lower_eyelike},
    {"Flatten", lower_flatten},
    {"Gather", lower_gather},
    {"Gemm", ox_lower_gemm},
    {"GlobalAveragePool", ox_lower_global_pool},
    {"GlobalMaxPool", ox_lower_global_pool},
    {"Greater", lower_binary},
    {"GreaterOrEqual", lower_binary},
    {"HardSigmoid", lower_unary},
    {"HardSwish", lower_unary},
    {"Identity", lower_identity},
    {"InstanceNormalization", ox_lower_instancenorm},
    {"LRN", ox_lower_lrn},
    {"LayerNormalization", ox_lower_layernorm},
    {"LeakyRelu", lower_unary},
    {"Less", lower_binary},
    {"LessOrEqual", lower_binary},
    {"Log", lower_unary},
    {"LogSoftmax", ox_lower_softmax},
    {"MatMul", ox_lower_matmul},
    {"MatMulInteger", ox_lower_matmul_int},
    {"Max", lower_variadic},
    {"MaxPool", ox_lower_pool},
    {"Mean", lower_variadic},
    {"MeanVarianceNormalization", ox_lower_mvn},
    {"Min", lower_variadic},
    {"Mul", lower_binary},
    {"Neg", lower_unary},
    {"Not", lower_not},
    {"Or", lower_binary},
    {"PRelu", lower_prelu},
    {"Pad", lower_pad},
    {"Pow", lower_binary},
    {"QLinearConv", ox_lower_conv_int},
    {"QLinearMatMul", ox_lower_matmul_int},
    {"QuantizeLinear", ox_lower_qdq},
    {"Range", lower_range},
    {"Reciprocal", lower_unary},
    {"ReduceL1", lower_reduce},
    {"ReduceL2", lower_reduce},
    {"ReduceLogSum", lower_reduce},
    {"ReduceLogSumExp", lower_reduce},
    {"ReduceMax", lower_reduce},
    {"ReduceMean", lower_reduce},
    {"ReduceMin", lower_reduce},
    {"ReduceSum", lower_reduce},
    {"ReduceSumSquare", lower_reduce},
    {"Relu", lower_unary},
    {"Reshape", lower_reshape},
    {"Resize", ox_lower_resize},
    {"Selu", lower_unary},
    {"Shape", lower_shape},
    {"Sigmoid", lower_unary},
    {"Size", lower_size},
    {"Slice", lower_slice},
    {"Softmax", ox_lower_softmax},
    {"Softplus", lower_unary},
    {"Softsign", lower_unary},
    {"SpaceToDepth", lower_depth_space},
    {"Split", lower_split},
    {"Sqrt", lower_unary},
    {"Squeeze", lower_squeeze},
    {"Sub", lower_binary},
    {"Sum", lower_variadic},
    {"Tanh", lower_unary},
    {"Tile", lower_tile},
    {"Transpose", lower_transpose},
    {"Unsqueeze", lower_unsqueeze},
    {"Upsample", ox_lower_resize},
    {"Where", lower_where},
    {"Xor", lower_binary},
};

int ox_lower_node(ox_ctx *c)
{
    const char *t = c->cur->op_type;
    size_t lo = 0, hi = sizeof g_ops / sizeof g_ops[0];
    while (lo < hi) { /* the table is sorted by name */
        size_t mid = (lo + hi) / 2;
        int cmp = strcmp(t, g_ops[mid].name);
        if (!cmp) return g_ops[mid].fn(c);
        if (cmp < 0) hi = mid;
        else lo = mid + 1;
    }
    return ox_unsup(c, "no lowering to the canonical op set");
}
