/* interp_shape.c - per-op shape inference (used at compile time by
 * ir_infer_shapes and at run time by the interpreter) and ir_infer_shapes.
 * The rules are documented per op in docs/ir-ops.md. */
#include "interp.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Largest value accepted for an attribute such as a stride, pad, kernel
 * size or dilation: keeps every later product inside int64. */
#define ATTR_MAX ((int64_t)INT32_MAX)

int interp_node_err(char *err, size_t errlen, const cr_node *n, int status,
                    const char *fmt, ...)
{
    if (err && errlen) {
        const char *op = ir_op_name(n->op);
        int k = snprintf(err, errlen, "node %s (%s): ", n->name,
                         op ? op : "?");
        if (k >= 0 && (size_t)k < errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
    return status;
}

#define NERR(...) interp_node_err(err, errlen, n, CRUCIBLE_E_INVALID, __VA_ARGS__)

size_t interp_elem_size(int32_t dtype)
{
    switch (dtype) {
    case CRUCIBLE_DT_F32: case CRUCIBLE_DT_I32: return 4;
    case CRUCIBLE_DT_I8: case CRUCIBLE_DT_U8: case CRUCIBLE_DT_BOOL: return 1;
    case CRUCIBLE_DT_I16: case CRUCIBLE_DT_F16: return 2;
    case CRUCIBLE_DT_I64: return 8;
    default: return 0;
    }
}

static void fmt_shape(char *buf, size_t len, int32_t rank,
                      const int64_t *dims)
{
    size_t k = 0;
    int w = snprintf(buf, len, "[");
    if (w > 0) k = (size_t)w;
    for (int32_t i = 0; i < rank && k < len; i++) {
        w = snprintf(buf + k, len - k, "%s%lld", i ? "," : "",
                     (long long)dims[i]);
        if (w > 0) k += (size_t)w;
    }
    if (k < len) snprintf(buf + k, len - k, "]");
}

/* Integer attribute list `name` of exactly `count` values in [lo, hi];
 * dflt (count values) when absent. */
static int get_ints(const cr_node *n, const char *name, uint32_t count,
                    int64_t *dst, int64_t lo, int64_t hi,
                    const int64_t *dflt, char *err, size_t errlen)
{
    const cr_attr *a = ir_attr(n, name);
    if (!a) {
        for (uint32_t i = 0; i < count; i++) dst[i] = dflt[i];
        return CRUCIBLE_OK;
    }
    if (a->type != CRUCIBLE_ATTR_INTS || a->count != count)
        return NERR("attribute %s must be a list of %u integers", name,
                    count);
    for (uint32_t i = 0; i < count; i++) {
        if (a->ints[i] < lo || a->ints[i] > hi)
            return NERR("attribute %s[%u] = %lld is outside %lld..%lld", name,
                        i, (long long)a->ints[i], (long long)lo,
                        (long long)hi);
        dst[i] = a->ints[i];
    }
    return CRUCIBLE_OK;
}

static int get_int(const cr_node *n, const char *name, int64_t dflt,
                   int64_t lo, int64_t hi, int64_t *dst, char *err,
                   size_t errlen)
{
    const cr_attr *a = ir_attr(n, name);
    if (!a) {
        *dst = dflt;
        return CRUCIBLE_OK;
    }
    if (a->type != CRUCIBLE_ATTR_INT)
        return NERR("attribute %s must be an integer", name);
    if (a->i < lo || a->i > hi)
        return NERR("attribute %s = %lld is outside %lld..%lld", name,
                    (long long)a->i, (long long)lo, (long long)hi);
    *dst = a->i;
    return CRUCIBLE_OK;
}

int interp_conv_params_get(const cr_node *n, interp_conv_params *p,
                           char *err, size_t errlen)
{
    static const int64_t one[2] = {1, 1}, zero[4] = {0, 0, 0, 0};
    int rc;
    if ((rc = get_ints(n, "strides", 2, p->stride, 1, ATTR_MAX, one, err,
                       errlen)) ||
        (rc = get_ints(n, "pads", 4, p->pad, 0, ATTR_MAX, zero, err,
                       errlen)) ||
        (rc = get_ints(n, "dilations", 2, p->dil, 1, ATTR_MAX, one, err,
                       errlen)) ||
        (rc = get_int(n, "group", 1, 1, ATTR_MAX, &p->group, err, errlen)) ||
        (rc = get_ints(n, "output_padding", 2, p->out_pad, 0, ATTR_MAX, zero,
                       err, errlen)))
        return rc;
    if (ir_attr(n, "auto_pad") || ir_attr(n, "output_shape"))
        return interp_node_err(err, errlen, n, CRUCIBLE_E_UNSUPPORTED,
                               "attributes auto_pad / output_shape are not "
                               "part of the IR (the frontend must turn them "
                               "into pads)");
    return CRUCIBLE_OK;
}

int interp_pool_params_get(const cr_node *n, interp_pool_params *p,
                           char *err, size_t errlen)
{
    static const int64_t one[2] = {1, 1}, zero[4] = {0, 0, 0, 0};
    int64_t cm, cip;
    int rc;
    if (!ir_attr(n, "kernel"))
        return NERR("attribute kernel (2 integers) is required");
    if ((rc = get_ints(n, "kernel", 2, p->kernel, 1, ATTR_MAX, one, err,
                       errlen)) ||
        (rc = get_ints(n, "strides", 2, p->stride, 1, ATTR_MAX, one, err,
                       errlen)) ||
        (rc = get_ints(n, "pads", 4, p->pad, 0, ATTR_MAX, zero, err,
                       errlen)) ||
        (rc = get_ints(n, "dilations", 2, p->dil, 1, ATTR_MAX, one, err,
                       errlen)) ||
        (rc = get_int(n, "ceil_mode", 0, 0, 1, &cm, err, errlen)) ||
        (rc = get_int(n, "count_include_pad", 0, 0, 1, &cip, err, errlen)))
        return rc;
    if (ir_attr(n, "auto_pad"))
        return interp_node_err(err, errlen, n, CRUCIBLE_E_UNSUPPORTED,
                               "attribute auto_pad is not part of the IR "
                               "(the frontend must turn it into pads)");
    p->ceil_mode = (int)cm;
    p->count_include_pad = (int)cip;
    return CRUCIBLE_OK;
}

/* Checks every dim is in 1..IR_MAX_ELEMS and the product too. */
static int dims_ok(int32_t rank, const int64_t *dims)
{
    uint64_t e = 1;
    if (rank < 0 || rank > CRUCIBLE_MAX_RANK) return 0;
    for (int32_t i = 0; i < rank; i++) {
        if (dims[i] < 1 || (uint64_t)dims[i] > IR_MAX_ELEMS) return 0;
        e *= (uint64_t)dims[i]; /* both <= 2^40: no overflow */
        if (e > IR_MAX_ELEMS) return 0;
    }
    return 1;
}

static uint64_t numel_of(const cr_array *a)
{
    uint64_t e = 1;
    for (int32_t i = 0; i < a->rank; i++) e *= (uint64_t)a->dims[i];
    return e;
}

static int norm_axis(int64_t axis, int32_t rank, int64_t *out)
{
    if (axis < -(int64_t)rank || axis >= (int64_t)rank) return -1;
    *out = axis < 0 ? axis + rank : axis;
    return 0;
}

/* numpy broadcasting of a and b into out (rank, dims). */
static int broadcast2(int32_t ra, const int64_t *da, int32_t rb,
                      const int64_t *db, int32_t *ro, int64_t *dout)
{
    int32_t r = ra > rb ? ra : rb;
    for (int32_t i = 0; i < r; i++) {
        int64_t x = i < r - ra ? 1 : da[i - (r - ra)];
        int64_t y = i < r - rb ? 1 : db[i - (r - rb)];
        if (x != y && x != 1 && y != 1) return -1;
        dout[i] = x == 1 ? y : x;
    }
    *ro = r;
    return 0;
}

/* Output spatial size of a pooling window along one axis, with the rule
 * that in ceil mode a window starting beyond the input plus the leading
 * pad is dropped; every window must hold at least one input element. */
static int pool_axis(const cr_node *n, const char *axname, int64_t in,
                     int64_t k, int64_t s, int64_t pb, int64_t pe, int64_t d,
                     int ceil_mode, int64_t *out, char *err, size_t errlen)
{
    int64_t ek = (k - 1) * d + 1; /* <= 2^62 */
    int64_t span = in + pb + pe;  /* <= 2^40 + 2^32 */
    if (span < ek)
        return NERR("%s: kernel extent %lld is larger than the padded "
                    "input %lld",
                    axname, (long long)ek, (long long)span);
    int64_t o = (span - ek) / s + 1;
    if (ceil_mode && (span - ek) % s) {
        o++;
        if ((o - 1) * s >= in + pb) o--;
    }
    /* Empty windows can only be at the ends: check the first ones (start
     * in the leading pad) and the last one. */
    for (int64_t i = 0; i < o; i++) {
        int64_t start = i * s - pb;
        if (start >= 0 && i != o - 1) {
            i = o - 2; /* skip to the last window */
            continue;
        }
        int64_t j = start >= 0 ? 0 : (-start + d - 1) / d; /* first tap >=0 */
        if (j >= k || start + j * d >= in)
            return NERR("%s: output position %lld of %lld would pool only "
                        "padding",
                        axname, (long long)i, (long long)o);
    }
    *out = o;
    return CRUCIBLE_OK;
}

static int conv_axis(const cr_node *n, const char *axname, int64_t in,
                     int64_t k, int64_t s, int64_t pb, int64_t pe, int64_t d,
                     int64_t *out, char *err, size_t errlen)
{
    int64_t ek = (k - 1) * d + 1;
    int64_t span = in + pb + pe;
    if (span < ek)
        return NERR("%s: kernel extent %lld is larger than the padded "
                    "input %lld",
                    axname, (long long)ek, (long long)span);
    *out = (span - ek) / s + 1;
    return CRUCIBLE_OK;
}

static int need_inputs(const cr_node *n, const cr_array *const *in,
                       uint32_t lo, uint32_t hi, uint32_t required,
                       char *err, size_t errlen)
{
    if (n->n_inputs < lo || n->n_inputs > hi) {
        if (lo == hi)
            return NERR("expects %u input%s, has %u", lo, lo == 1 ? "" : "s",
                        n->n_inputs);
        if (hi == UINT32_MAX)
            return NERR("expects at least %u inputs, has %u", lo,
                        n->n_inputs);
        return NERR("expects %u to %u inputs, has %u", lo, hi, n->n_inputs);
    }
    for (uint32_t i = 0; i < required && i < n->n_inputs; i++)
        if (!in[i]) return NERR("input %u is required", i);
    return CRUCIBLE_OK;
}

/* Reads an integer list from a constant i32/i64 tensor. */
static int const_ints(const cr_array *a, int64_t *dst, uint32_t max,
                      uint32_t *count)
{
    if (!a->data || a->rank > 1) return -1;
    uint64_t e = numel_of(a);
    if (e > max) return -1;
    for (uint64_t i = 0; i < e; i++) {
        if (a->dtype == CRUCIBLE_DT_I64) {
            int64_t v;
            memcpy(&v, (const char *)a->data + 8 * i, 8);
            dst[i] = v;
        } else if (a->dtype == CRUCIBLE_DT_I32) {
            int32_t v;
            memcpy(&v, (const char *)a->data + 4 * i, 4);
            dst[i] = v;
        } else {
            return -1;
        }
    }
    *count = (uint32_t)e;
    return 0;
}

static int infer_reshape(const cr_node *n, const cr_array *x,
                         const cr_array *shp, cr_array *o, char *err,
                         size_t errlen)
{
    int64_t want[CRUCIBLE_MAX_RANK];
    uint32_t cnt;
    const cr_attr *a = ir_attr(n, "shape");
    int64_t allowzero;
    int rc = get_int(n, "allowzero", 0, 0, 1, &allowzero, err, errlen);
    if (rc) return rc;
    if (a) {
        if (a->type != CRUCIBLE_ATTR_INTS || a->count > CRUCIBLE_MAX_RANK)
            return NERR("attribute shape must be a list of at most %d "
                        "integers",
                        CRUCIBLE_MAX_RANK);
        cnt = a->count;
        for (uint32_t i = 0; i < cnt; i++) want[i] = a->ints[i];
    } else if (shp) {
        if (!shp->data)
            return interp_node_err(err, errlen, n, CRUCIBLE_E_UNSUPPORTED,
                                   "the target shape input is not a "
                                   "constant");
        if (const_ints(shp, want, CRUCIBLE_MAX_RANK, &cnt))
            return NERR("the shape input must be a rank-1 i32/i64 tensor of "
                        "at most %d values",
                        CRUCIBLE_MAX_RANK);
    } else {
        return NERR("needs attribute shape or a shape input");
    }
    uint64_t total = numel_of(x), known = 1;
    int infer = -1;
    for (uint32_t i = 0; i < cnt; i++) {
        int64_t v = want[i];
        if (v == -1) {
            if (infer >= 0) return NERR("shape has more than one -1");
            infer = (int)i;
            continue;
        }
        if (v == 0) {
            if (allowzero)
                return NERR("shape[%u] = 0 with allowzero=1 would make an "
                            "empty tensor, which the IR cannot represent",
                            i);
            if ((int32_t)i >= x->rank)
                return NERR("shape[%u] = 0 copies an input dim, but the input "
                            "has rank %d",
                            i, (int)x->rank);
            v = x->dims[i];
        }
        if (v < 0 || (uint64_t)v > IR_MAX_ELEMS)
            return NERR("shape[%u] = %lld is invalid", i, (long long)want[i]);
        o->dims[i] = v;
        known *= (uint64_t)v;
        if (known > IR_MAX_ELEMS) return NERR("shape is too large");
    }
    if (infer >= 0) {
        if (total % known)
            return NERR("cannot infer the -1 in the shape: %llu elements are "
                        "not a multiple of %llu",
                        (unsigned long long)total, (unsigned long long)known);
        o->dims[infer] = (int64_t)(total / known);
        known = total;
    }
    if (known != total) {
        char s1[200], s2[200];
        fmt_shape(s1, sizeof s1, x->rank, x->dims);
        fmt_shape(s2, sizeof s2, (int32_t)cnt, o->dims);
        return NERR("cannot reshape %s (%llu elements) to %s (%llu)", s1,
                    (unsigned long long)total, s2, (unsigned long long)known);
    }
    o->rank = (int32_t)cnt;
    return CRUCIBLE_OK;
}

static int infer_slice(const cr_node *n, const cr_array *x, cr_array *o,
                       char *err, size_t errlen)
{
    const cr_attr *st = ir_attr(n, "starts"), *en = ir_attr(n, "ends");
    const cr_attr *ax = ir_attr(n, "axes"), *sp = ir_attr(n, "steps");
    if (!st || !en || st->type != CRUCIBLE_ATTR_INTS ||
        en->type != CRUCIBLE_ATTR_INTS || st->count != en->count)
        return NERR("attributes starts and ends must be integer lists of "
                    "equal length");
    uint32_t cnt = st->count;
    if (cnt > (uint32_t)x->rank)
        return NERR("%u starts for an input of rank %d", cnt, (int)x->rank);
    if ((ax && (ax->type != CRUCIBLE_ATTR_INTS || ax->count != cnt)) ||
        (sp && (sp->type != CRUCIBLE_ATTR_INTS || sp->count != cnt)))
        return NERR("attributes axes and steps must have as many entries as "
                    "starts");
    o->rank = x->rank;
    memcpy(o->dims, x->dims, sizeof o->dims);
    int seen[CRUCIBLE_MAX_RANK] = {0};
    for (uint32_t i = 0; i < cnt; i++) {
        int64_t axis = ax ? ax->ints[i] : (int64_t)i;
        if (norm_axis(axis, x->rank, &axis))
            return NERR("axes[%u] = %lld is out of range for rank %d", i,
                        (long long)(ax ? ax->ints[i] : (int64_t)i),
                        (int)x->rank);
        if (seen[axis]++) return NERR("axis %lld is sliced twice", (long long)axis);
        int64_t step = sp ? sp->ints[i] : 1;
        if (step == 0) return NERR("steps[%u] is 0", i);
        int64_t d = x->dims[axis], s = st->ints[i], e = en->ints[i];
        if (s < 0) s += d; /* s >= INT64_MIN, d > 0: no overflow */
        if (e < 0) e += d;
        int64_t len;
        if (step > 0) {
            s = s < 0 ? 0 : s > d ? d : s;
            e = e < 0 ? 0 : e > d ? d : e;
            len = e > s ? (e - s) / step + ((e - s) % step != 0) : 0;
        } else {
            s = s < 0 ? 0 : s > d - 1 ? d - 1 : s;
            e = e < -1 ? -1 : e > d - 1 ? d - 1 : e;
            /* -step may overflow for INT64_MIN; divide on the negative side */
            len = s > e ? (e - s) / step + ((e - s) % step != 0) : 0;
        }
        if (len <= 0)
            return NERR("slice along axis %lld is empty, which the IR cannot "
                        "represent",
                        (long long)axis);
        o->dims[axis] = len;
    }
    return CRUCIBLE_OK;
}

static int infer_matmul(const cr_node *n, const cr_array *a,
                        const cr_array *b, cr_array *o, char *err,
                        size_t errlen)
{
    if (a->rank < 1 || b->rank < 1)
        return NERR("operands must have rank >= 1");
    int64_t ka = a->dims[a->rank - 1];
    int64_t kb = b->rank == 1 ? b->dims[0] : b->dims[b->rank - 2];
    if (ka != kb) {
        char s1[200], s2[200];
        fmt_shape(s1, sizeof s1, a->rank, a->dims);
        fmt_shape(s2, sizeof s2, b->rank, b->dims);
        return NERR("inner dimensions differ: %s x %s", s1, s2);
    }
    int32_t ba = a->rank > 2 ? a->rank - 2 : 0, bb = b->rank > 2 ? b->rank - 2 : 0;
    int32_t r;
    int64_t bd[CRUCIBLE_MAX_RANK];
    if (broadcast2(ba, a->dims, bb, b->dims, &r, bd)) {
        char s1[200], s2[200];
        fmt_shape(s1, sizeof s1, a->rank, a->dims);
        fmt_shape(s2, sizeof s2, b->rank, b->dims);
        return NERR("batch dimensions of %s and %s do not broadcast", s1, s2);
    }
    int32_t k = 0;
    for (int32_t i = 0; i < r; i++) o->dims[k++] = bd[i];
    if (a->rank >= 2) o->dims[k++] = a->dims[a->rank - 2];
    if (b->rank >= 2) {
        if (k >= CRUCIBLE_MAX_RANK) return NERR("result rank too large");
        o->dims[k++] = b->dims[b->rank - 1];
    }
    o->rank = k;
    return CRUCIBLE_OK;
}

static int infer_pool(const cr_node *n, const cr_array *x, cr_array *o,
                      char *err, size_t errlen)
{
    interp_pool_params p;
    int rc = interp_pool_params_get(n, &p, err, errlen);
    if (rc) return rc;
    if (x->rank != 4) return NERR("input must be NCHW (rank 4), has rank %d", (int)x->rank);
    o->rank = 4;
    o->dims[0] = x->dims[0];
    o->dims[1] = x->dims[1];
    if ((rc = pool_axis(n, "height", x->dims[2], p.kernel[0], p.stride[0],
                        p.pad[0], p.pad[2], p.dil[0], p.ceil_mode,
                        &o->dims[2], err, errlen)) ||
        (rc = pool_axis(n, "width", x->dims[3], p.kernel[1], p.stride[1],
                        p.pad[1], p.pad[3], p.dil[1], p.ceil_mode,
                        &o->dims[3], err, errlen)))
        return rc;
    return CRUCIBLE_OK;
}

static int infer_conv(const cr_node *n, const cr_array *x, const cr_array *w,
                      const cr_array *b, cr_array *o, char *err,
                      size_t errlen)
{
    interp_conv_params p;
    int rc = interp_conv_params_get(n, &p, err, errlen);
    if (rc) return rc;
    if (x->rank != 4) return NERR("input must be NCHW (rank 4), has rank %d", (int)x->rank);
    if (w->rank != 4) return NERR("weight must have rank 4, has rank %d", (int)w->rank);
    int64_t c = x->dims[1], g = p.group;
    int64_t cout;
    if (n->op == CRUCIBLE_OP_CONV2D) {
        /* w: [O, C/group, kh, kw] */
        if (w->dims[1] > ATTR_MAX || w->dims[1] * g != c)
            return NERR("input channels %lld do not match weight in_ch*group "
                        "%lld",
                        (long long)c,
                        (long long)(w->dims[1] <= ATTR_MAX ? w->dims[1] * g
                                                           : -1));
        if (w->dims[0] % g)
            return NERR("output channels %lld are not a multiple of group "
                        "%lld",
                        (long long)w->dims[0], (long long)g);
        cout = w->dims[0];
    } else {
        /* w: [C, O/group, kh, kw] */
        if (w->dims[0] != c)
            return NERR("input channels %lld do not match weight dim 0 %lld",
                        (long long)c, (long long)w->dims[0]);
        if (c % g)
            return NERR("input channels %lld are not a multiple of group %lld",
                        (long long)c, (long long)g);
        if (w->dims[1] > ATTR_MAX)
            return NERR("weight dim 1 too large");
        cout = w->dims[1] * g;
    }
    if (w->dims[2] > ATTR_MAX || w->dims[3] > ATTR_MAX)
        return NERR("kernel too large");
    if (b) {
        if (b->rank != 1 || b->dims[0] != cout)
            return NERR("bias must have shape [%lld]", (long long)cout);
    }
    o->rank = 4;
    o->dims[0] = x->dims[0];
    o->dims[1] = cout;
    if (n->op == CRUCIBLE_OP_CONV2D) {
        if ((rc = conv_axis(n, "height", x->dims[2], w->dims[2], p.stride[0],
                            p.pad[0], p.pad[2], p.dil[0], &o->dims[2], err,
                            errlen)) ||
            (rc = conv_axis(n, "width", x->dims[3], w->dims[3], p.stride[1],
                            p.pad[1], p.pad[3], p.dil[1], &o->dims[3], err,
                            errlen)))
            return rc;
        return CRUCIBLE_OK;
    }
    for (int ax = 0; ax < 2; ax++) {
        int64_t s = p.stride[ax], d = p.dil[ax], op = p.out_pad[ax];
        if (op >= s && op >= d)
            return NERR("output_padding[%d] = %lld must be smaller than the "
                        "stride or the dilation",
                        ax, (long long)op);
        /* s*(in-1) + op + (k-1)*d + 1 - pads; in <= 2^40, s < 2^31 */
        int64_t v;
        if (__builtin_mul_overflow(s, x->dims[2 + ax] - 1, &v) ||
            __builtin_add_overflow(v, op + (w->dims[2 + ax] - 1) * d + 1, &v))
            return NERR("output size overflows");
        v -= p.pad[ax] + p.pad[ax + 2];
        if (v < 1)
            return NERR("%s: output size %lld is not positive",
                        ax ? "width" : "height", (long long)v);
        o->dims[2 + ax] = v;
    }
    return CRUCIBLE_OK;
}

static int infer_reduce(const cr_node *n, const cr_array *x, cr_array *o,
                        char *err, size_t errlen)
{
    int64_t keep;
    int rc = get_int(n, "keepdims", 1, 0, 1, &keep, err, errlen);
    if (rc) return rc;
    int red[CRUCIBLE_MAX_RANK] = {0};
    const cr_attr *a = ir_attr(n, "axes");
    if (a && a->type != CRUCIBLE_ATTR_INTS)
        return NERR("attribute axes must be a list of integers");
    if (!a || a->count == 0) {
        for (int32_t i = 0; i < x->rank; i++) red[i] = 1;
    } else {
        for (uint32_t i = 0; i < a->count; i++) {
            int64_t ax;
            if (norm_axis(a->ints[i], x->rank, &ax))
                return NERR("axes[%u] = %lld is out of range for rank %d", i,
                            (long long)a->ints[i], (int)x->rank);
            if (red[ax]++) return NERR("axis %lld is listed twice", (long long)ax);
        }
    }
    int32_t k = 0;
    for (int32_t i = 0; i < x->rank; i++) {
        if (!red[i])
            o->dims[k++] = x->dims[i];
        else if (keep)
            o->dims[k++] = 1;
    }
    o->rank = k;
    return CRUCIBLE_OK;
}

/* ---- language-model ops (docs/ir-ops.md, "Language-model ops") ---- */

/* A float attribute: absent -> dflt; present: a finite number. */
static int get_float(const cr_node *n, const char *name, double dflt,
                     double *dst, char *err, size_t errlen)
{
    const cr_attr *a = ir_attr(n, name);
    if (!a) {
        *dst = dflt;
        return CRUCIBLE_OK;
    }
    if (a->type != CRUCIBLE_ATTR_FLOAT && a->type != CRUCIBLE_ATTR_INT)
        return NERR("attribute %s must be a number", name);
    *dst = a->type == CRUCIBLE_ATTR_FLOAT ? a->f : (double)a->i;
    if (!(*dst == *dst) || *dst > 3.0e38 || *dst < -3.0e38)
        return NERR("attribute %s must be a finite f32 number", name);
    return CRUCIBLE_OK;
}

static int is_index_dtype(int32_t dt)
{
    return dt == CRUCIBLE_DT_I32 || dt == CRUCIBLE_DT_I64;
}

int interp_rope_params_get(const cr_node *n, int64_t head_dim,
                           interp_rope_params *p, char *err, size_t errlen)
{
    int rc;
    double base, scale;
    if ((rc = get_int(n, "n_rot", head_dim, 2, head_dim, &p->n_rot, err,
                      errlen)))
        return rc;
    if (p->n_rot % 2)
        return NERR("attribute n_rot = %lld must be even", (long long)p->n_rot);
    if ((rc = get_float(n, "freq_base", 10000.0, &base, err, errlen)) ||
        (rc = get_float(n, "freq_scale", 1.0, &scale, err, errlen)))
        return rc;
    if (!(base > 0.0) || !(scale > 0.0))
        return NERR("attributes freq_base and freq_scale must be positive");
    p->freq_base = (float)base;
    p->freq_scale = (float)scale;
    const cr_attr *m = ir_attr(n, "mode");
    if (!m) {
        p->neox = 0;
    } else if (m->type == CRUCIBLE_ATTR_STRING && !strcmp(m->s, "normal")) {
        p->neox = 0;
    } else if (m->type == CRUCIBLE_ATTR_STRING && !strcmp(m->s, "neox")) {
        p->neox = 1;
    } else {
        return NERR("attribute mode must be \"normal\" or \"neox\"");
    }
    return CRUCIBLE_OK;
}

int interp_attention_scale_get(const cr_node *n, int64_t head_dim,
                               float *scale, char *err, size_t errlen)
{
    double s;
    int rc = get_float(n, "scale", -1.0, &s, err, errlen);
    if (rc) return rc;
    if (!ir_attr(n, "scale"))
        *scale = 1.0f / sqrtf((float)head_dim);
    else
        *scale = (float)s;
    return CRUCIBLE_OK;
}

static int infer_llm(const cr_node *n, const cr_array *const *in,
                     cr_array *o, char *err, size_t errlen)
{
    int rc;
    const cr_array *x = n->n_inputs ? in[0] : NULL;
    char s1[200], s2[200];
    switch (n->op) {
    case CRUCIBLE_OP_SILU:
        if ((rc = need_inputs(n, in, 1, 1, 1, err, errlen))) return rc;
        break;
    case CRUCIBLE_OP_RMS_NORM: {
        if ((rc = need_inputs(n, in, 1, 2, 1, err, errlen))) return rc;
        if (x->rank < 1) return NERR("input must have rank >= 1");
        const cr_array *w = n->n_inputs > 1 ? in[1] : NULL;
        int64_t D = x->dims[x->rank - 1];
        if (w && (w->rank != 1 || w->dims[0] != D))
            return NERR("weight must have shape [%lld] (the last axis of the "
                        "input)",
                        (long long)D);
        double eps;
        if ((rc = get_float(n, "eps", 1e-5, &eps, err, errlen))) return rc;
        if (eps < 0.0) return NERR("attribute eps must not be negative");
        break;
    }
    case CRUCIBLE_OP_ROPE: {
        if ((rc = need_inputs(n, in, 2, 2, 2, err, errlen))) return rc;
        if (x->rank < 2)
            return NERR("input must be [.., heads, head_dim] (rank >= 2), has "
                        "rank %d",
                        (int)x->rank);
        const cr_array *p = in[1];
        if (!is_index_dtype(p->dtype))
            return NERR("positions must be i32 or i64, not %s",
                        ir_dtype_name(p->dtype));
        uint64_t rows = 1;
        for (int32_t i = 0; i < x->rank - 2; i++) rows *= (uint64_t)x->dims[i];
        if (numel_of(p) != rows)
            return NERR("%llu positions for %llu rows of heads (the input's "
                        "dims before the last two)",
                        (unsigned long long)numel_of(p),
                        (unsigned long long)rows);
        interp_rope_params rp;
        if ((rc = interp_rope_params_get(n, x->dims[x->rank - 1], &rp, err,
                                         errlen)))
            return rc;
        break;
    }
    case CRUCIBLE_OP_KV_WRITE: {
        if ((rc = need_inputs(n, in, 3, 3, 3, err, errlen))) return rc;
        const cr_array *v = in[1], *p = in[2];
        if (x->rank < 1) return NERR("the cache must have rank >= 1");
        int bad = v->rank != x->rank || v->dtype != x->dtype;
        for (int32_t i = 1; !bad && i < x->rank; i++)
            if (v->dims[i] != x->dims[i]) bad = 1;
        if (bad) {
            fmt_shape(s1, sizeof s1, x->rank, x->dims);
            fmt_shape(s2, sizeof s2, v->rank, v->dims);
            return NERR("values %s %s do not fit the rows of cache %s %s", s2,
                        ir_dtype_name(v->dtype), s1, ir_dtype_name(x->dtype));
        }
        if (!is_index_dtype(p->dtype))
            return NERR("positions must be i32 or i64, not %s",
                        ir_dtype_name(p->dtype));
        if (numel_of(p) != (uint64_t)v->dims[0])
            return NERR("%llu positions for %lld rows of values",
                        (unsigned long long)numel_of(p),
                        (long long)v->dims[0]);
        break;
    }
    case CRUCIBLE_OP_ATTENTION: {
        if ((rc = need_inputs(n, in, 4, 4, 4, err, errlen))) return rc;
        const cr_array *k = in[1], *v = in[2], *p = in[3];
        if (x->rank != 3 || k->rank != 3 || v->rank != 3)
            return NERR("q, k and v must be [T, H, D], [S, Hkv, D] and "
                        "[S, Hkv, Dv] (rank 3)");
        if (k->dims[2] != x->dims[2] || v->dims[0] != k->dims[0] ||
            v->dims[1] != k->dims[1] || x->dims[1] % k->dims[1]) {
            fmt_shape(s1, sizeof s1, 3, x->dims);
            fmt_shape(s2, sizeof s2, 3, k->dims);
            char s3[200];
            fmt_shape(s3, sizeof s3, 3, v->dims);
            return NERR("q %s, k %s, v %s: need equal head_dim for q and k, "
                        "equal [S, Hkv] for k and v, and H a multiple of Hkv",
                        s1, s2, s3);
        }
        if (!is_index_dtype(p->dtype))
            return NERR("positions must be i32 or i64, not %s",
                        ir_dtype_name(p->dtype));
        if (numel_of(p) != (uint64_t)x->dims[0])
            return NERR("%llu positions for %lld queries",
                        (unsigned long long)numel_of(p),
                        (long long)x->dims[0]);
        float sc;
        if ((rc = interp_attention_scale_get(n, x->dims[2], &sc, err,
                                             errlen)))
            return rc;
        o->rank = 3;
        o->dims[0] = x->dims[0];
        o->dims[1] = x->dims[1];
        o->dims[2] = v->dims[2];
        return CRUCIBLE_OK;
    }
    default:
        return NERR("not a language-model op");
    }
    o->rank = x->rank;
    memcpy(o->dims, x->dims, sizeof o->dims);
    return CRUCIBLE_OK;
}

/* An 8-bit integer operand: dense / matmul / conv2d then accumulate in
 * i32 (the output dtype when it is not declared). */
static int int_operand(const cr_array *x)
{
    return x->dtype == CRUCIBLE_DT_U8 || x->dtype == CRUCIBLE_DT_I8;
}

static int32_t cast_to(const cr_node *n)
{
    const cr_attr *a = ir_attr(n, "to");
    if (!a) return 0;
    if (a->type == CRUCIBLE_ATTR_STRING) return ir_dtype_from_name(a->s);
    if (a->type == CRUCIBLE_ATTR_INT && a->i > 0 && a->i < CRUCIBLE_DT_COUNT_)
        return (int32_t)a->i;
    return 0;
}

int interp_infer_node(const cr_node *n, const cr_array *const *in,
                      cr_array *out, char *err, size_t errlen)
{
    if (n->n_outputs != 1)
        return NERR("has %u outputs; every op has exactly one", n->n_outputs);
    cr_array *o = out;
    const cr_array *x = n->n_inputs > 0 ? in[0] : NULL;
    int32_t dtype = 0; /* != 0: the op fixes the output dtype */
    int rc = CRUCIBLE_OK;
    char s1[200], s2[200];

    /* every present input must itself be a sane shape */
    for (uint32_t i = 0; i < n->n_inputs; i++)
        if (in[i] && !dims_ok(in[i]->rank, in[i]->dims))
            return NERR("input %u has an invalid or unknown shape", i);

    switch (n->op) {
    case CRUCIBLE_OP_UNSUPPORTED:
        if (err && errlen)
            snprintf(err, errlen, "node %s: op %s is not supported (%s)",
                     n->name, ir_attr_s(n, "source_op", "?"),
                     ir_attr_s(n, "reason", "no reason given"));
        return CRUCIBLE_E_UNSUPPORTED;
    case CRUCIBLE_OP_DENSE: {
        if ((rc = need_inputs(n, in, 2, 3, 2, err, errlen))) return rc;
        const cr_array *w = in[1], *b = n->n_inputs > 2 ? in[2] : NULL;
        if (x->rank < 2) return NERR("input must have rank >= 2, has %d", (int)x->rank);
        if (w->rank != 2) return NERR("weight must be [out, in], has rank %d", (int)w->rank);
        if (x->dims[x->rank - 1] != w->dims[1])
            return NERR("input features %lld do not match weight in_features "
                        "%lld",
                        (long long)x->dims[x->rank - 1], (long long)w->dims[1]);
        if (b && !((b->rank == 1 && b->dims[0] == w->dims[0]) ||
                   (b->rank == 2 && b->dims[0] == 1 && b->dims[1] == w->dims[0])))
            return NERR("bias must have shape [%lld]", (long long)w->dims[0]);
        o->rank = 2;
        o->dims[0] = (int64_t)(numel_of(x) / (uint64_t)x->dims[x->rank - 1]);
        o->dims[1] = w->dims[0];
        if (!o->dtype && int_operand(x)) o->dtype = CRUCIBLE_DT_I32;
        break;
    }
    case CRUCIBLE_OP_MATMUL:
        if ((rc = need_inputs(n, in, 2, 2, 2, err, errlen))) return rc;
        if ((rc = infer_matmul(n, x, in[1], o, err, errlen))) return rc;
        if (!o->dtype && int_operand(x)) o->dtype = CRUCIBLE_DT_I32;
        break;
    case CRUCIBLE_OP_CONV2D:
    case CRUCIBLE_OP_CONV_TRANSPOSE2D:
        if ((rc = need_inputs(n, in, 2, 3, 2, err, errlen))) return rc;
        if ((rc = infer_conv(n, x, in[1], n->n_inputs > 2 ? in[2] : NULL, o,
                             err, errlen)))
            return rc;
        if (!o->dtype && n->op == CRUCIBLE_OP_CONV2D && int_operand(x))
            o->dtype = CRUCIBLE_DT_I32;
        break;
    case CRUCIBLE_OP_ADD: case CRUCIBLE_OP_SUB: case CRUCIBLE_OP_MUL:
    case CRUCIBLE_OP_DIV: case CRUCIBLE_OP_POW:
    case CRUCIBLE_OP_MAX: case CRUCIBLE_OP_MIN: {
        int many = n->op == CRUCIBLE_OP_MAX || n->op == CRUCIBLE_OP_MIN;
        if ((rc = need_inputs(n, in, many ? 1 : 2, many ? UINT32_MAX : 2,
                              n->n_inputs, err, errlen)))
            return rc;
        o->rank = x->rank;
        memcpy(o->dims, x->dims, sizeof o->dims);
        for (uint32_t i = 1; i < n->n_inputs; i++) {
            if (in[i]->dtype != x->dtype)
                return NERR("input %u is %s but input 0 is %s", i,
                            ir_dtype_name(in[i]->dtype),
                            ir_dtype_name(x->dtype));
            int32_t r;
            int64_t d[CRUCIBLE_MAX_RANK];
            if (broadcast2(o->rank, o->dims, in[i]->rank, in[i]->dims, &r, d)) {
                fmt_shape(s1, sizeof s1, o->rank, o->dims);
                fmt_shape(s2, sizeof s2, in[i]->rank, in[i]->dims);
                return NERR("shapes %s and %s do not broadcast", s1, s2);
            }
            o->rank = r;
            memcpy(o->dims, d, sizeof d);
        }
        break;
    }
    case CRUCIBLE_OP_PRELU: {
        if ((rc = need_inputs(n, in, 2, 2, 2, err, errlen))) return rc;
        int32_t r;
        int64_t d[CRUCIBLE_MAX_RANK];
        if (broadcast2(x->rank, x->dims, in[1]->rank, in[1]->dims, &r, d) ||
            r != x->rank || memcmp(d, x->dims, (size_t)r * sizeof *d)) {
            fmt_shape(s1, sizeof s1, in[1]->rank, in[1]->dims);
            fmt_shape(s2, sizeof s2, x->rank, x->dims);
            return NERR("slope %s does not broadcast to input %s", s1, s2);
        }
        o->rank = x->rank;
        memcpy(o->dims, x->dims, sizeof o->dims);
        break;
    }
    case CRUCIBLE_OP_CLIP:
        if ((rc = need_inputs(n, in, 1, 3, 1, err, errlen))) return rc;
        for (uint32_t i = 1; i < n->n_inputs; i++)
            if (in[i] && numel_of(in[i]) != 1)
                return NERR("input %u (%s bound) must be a scalar", i,
                            i == 1 ? "min" : "max");
        o->rank = x->rank;
        memcpy(o->dims, x->dims, sizeof o->dims);
        break;
    case CRUCIBLE_OP_RELU: case CRUCIBLE_OP_LEAKY_RELU:
    case CRUCIBLE_OP_SIGMOID: case CRUCIBLE_OP_TANH:
    case CRUCIBLE_OP_HARD_SIGMOID: case CRUCIBLE_OP_HARD_SWISH:
    case CRUCIBLE_OP_EXP: case CRUCIBLE_OP_LOG: case CRUCIBLE_OP_SQRT:
    case CRUCIBLE_OP_NEG: case CRUCIBLE_OP_ABS:
        if ((rc = need_inputs(n, in, 1, 1, 1, err, errlen))) return rc;
        o->rank = x->rank;
        memcpy(o->dims, x->dims, sizeof o->dims);
        break;
    case CRUCIBLE_OP_REQUANTIZE: {
        if ((rc = need_inputs(n, in, 1, 1, 1, err, errlen))) return rc;
        const cr_attr *ra = ir_attr(n, "rounding");
        if (ra && (ra->type != CRUCIBLE_ATTR_STRING ||
                   (strcmp(ra->s, "float_rne") && strcmp(ra->s, "fixed_q31"))))
            return NERR("attribute rounding must be \"float_rne\" or "
                        "\"fixed_q31\"");
        o->rank = x->rank;
        memcpy(o->dims, x->dims, sizeof o->dims);
        if (!o->dtype) o->dtype = CRUCIBLE_DT_U8;
        break;
    }
    case CRUCIBLE_OP_SOFTMAX: case CRUCIBLE_OP_LOG_SOFTMAX: {
        if ((rc = need_inputs(n, in, 1, 1, 1, err, errlen))) return rc;
        int64_t ax;
        if (x->rank < 1) return NERR("input must have rank >= 1");
        if (norm_axis(ir_attr_i(n, "axis", -1), x->rank, &ax))
            return NERR("axis %lld is out of range for rank %d",
                        (long long)ir_attr_i(n, "axis", -1), (int)x->rank);
        o->rank = x->rank;
        memcpy(o->dims, x->dims, sizeof o->dims);
        break;
    }
    case CRUCIBLE_OP_MAX_POOL2D: case CRUCIBLE_OP_AVG_POOL2D:
        if ((rc = need_inputs(n, in, 1, 1, 1, err, errlen))) return rc;
        if ((rc = infer_pool(n, x, o, err, errlen))) return rc;
        break;
    case CRUCIBLE_OP_GLOBAL_AVG_POOL: case CRUCIBLE_OP_GLOBAL_MAX_POOL:
        if ((rc = need_inputs(n, in, 1, 1, 1, err, errlen))) return rc;
        if (x->rank < 3) return NERR("input must be [N, C, spatial...], has rank %d", (int)x->rank);
        o->rank = x->rank;
        o->dims[0] = x->dims[0];
        o->dims[1] = x->dims[1];
        for (int32_t i = 2; i < x->rank; i++) o->dims[i] = 1;
        break;
    case CRUCIBLE_OP_RESHAPE:
        if ((rc = need_inputs(n, in, 1, 2, 1, err, errlen))) return rc;
        if ((rc = infer_reshape(n, x, n->n_inputs > 1 ? in[1] : NULL, o, err,
                                errlen)))
            return rc;
        dtype = x->dtype;
        break;
    case CRUCIBLE_OP_TRANSPOSE: {
        if ((rc = need_inputs(n, in, 1, 1, 1, err, errlen))) return rc;
        int64_t perm[CRUCIBLE_MAX_RANK], dflt[CRUCIBLE_MAX_RANK];
        for (int32_t i = 0; i < x->rank; i++) dflt[i] = x->rank - 1 - i;
        if ((rc = get_ints(n, "perm", (uint32_t)x->rank, perm, 0,
                           x->rank - 1, dflt, err, errlen)))
            return rc;
        int seen[CRUCIBLE_MAX_RANK] = {0};
        for (int32_t i = 0; i < x->rank; i++) {
            if (seen[perm[i]]++) return NERR("perm is not a permutation");
            o->dims[i] = x->dims[perm[i]];
        }
        o->rank = x->rank;
        dtype = x->dtype;
        break;
    }
    case CRUCIBLE_OP_CONCAT: {
        if ((rc = need_inputs(n, in, 1, UINT32_MAX, n->n_inputs, err, errlen)))
            return rc;
        int64_t ax;
        if (norm_axis(ir_attr_i(n, "axis", 0), x->rank, &ax))
            return NERR("axis %lld is out of range for rank %d",
                        (long long)ir_attr_i(n, "axis", 0), (int)x->rank);
        o->rank = x->rank;
        memcpy(o->dims, x->dims, sizeof o->dims);
        for (uint32_t i = 1; i < n->n_inputs; i++) {
            const cr_array *y = in[i];
            if (y->dtype != x->dtype)
                return NERR("input %u is %s but input 0 is %s", i,
                            ir_dtype_name(y->dtype), ir_dtype_name(x->dtype));
            int bad = y->rank != x->rank;
            for (int32_t d = 0; !bad && d < x->rank; d++)
                if (d != ax && y->dims[d] != x->dims[d]) bad = 1;
            if (bad) {
                fmt_shape(s1, sizeof s1, x->rank, x->dims);
                fmt_shape(s2, sizeof s2, y->rank, y->dims);
                return NERR("input %u shape %s does not match input 0 %s "
                            "outside axis %lld",
                            i, s2, s1, (long long)ax);
            }
            o->dims[ax] += y->dims[ax];
            if ((uint64_t)o->dims[ax] > IR_MAX_ELEMS)
                return NERR("result too large");
        }
        dtype = x->dtype;
        break;
    }
    case CRUCIBLE_OP_PAD: {
        if ((rc = need_inputs(n, in, 1, 1, 1, err, errlen))) return rc;
        int64_t pads[2 * CRUCIBLE_MAX_RANK], zero[2 * CRUCIBLE_MAX_RANK] = {0};
        const int64_t lim = (int64_t)IR_MAX_ELEMS;
        if ((rc = get_ints(n, "pads", 2u * (uint32_t)x->rank, pads, -lim, lim,
                           zero, err, errlen)))
            return rc;
        const char *mode = ir_attr_s(n, "mode", "constant");
        int reflect = !strcmp(mode, "reflect");
        if (!reflect && strcmp(mode, "constant") && strcmp(mode, "edge"))
            return NERR("mode '%s' is not one of constant, reflect, edge",
                        mode);
        for (int32_t i = 0; i < x->rank; i++) {
            int64_t b = pads[i], e = pads[i + x->rank], d = x->dims[i];
            int64_t v = d + b + e;
            if (v < 1)
                return NERR("axis %d: padded size %lld is not positive", (int)i,
                            (long long)v);
            if (reflect && (b > d - 1 || e > d - 1))
                return NERR("axis %d: reflect padding %lld/%lld needs pads < "
                            "the dim %lld",
                            (int)i, (long long)b, (long long)e, (long long)d);
            o->dims[i] = v;
        }
        o->rank = x->rank;
        dtype = x->dtype;
        break;
    }
    case CRUCIBLE_OP_SLICE:
        if ((rc = need_inputs(n, in, 1, 1, 1, err, errlen))) return rc;
        if ((rc = infer_slice(n, x, o, err, errlen))) return rc;
        dtype = x->dtype;
        break;
    case CRUCIBLE_OP_GATHER: {
        if ((rc = need_inputs(n, in, 2, 2, 2, err, errlen))) return rc;
        const cr_array *idx = in[1];
        int64_t ax;
        if (x->rank < 1) return NERR("data must have rank >= 1");
        if (idx->dtype != CRUCIBLE_DT_I32 && idx->dtype != CRUCIBLE_DT_I64)
            return NERR("indices must be i32 or i64, not %s",
                        ir_dtype_name(idx->dtype));
        if (norm_axis(ir_attr_i(n, "axis", 0), x->rank, &ax))
            return NERR("axis %lld is out of range for rank %d",
                        (long long)ir_attr_i(n, "axis", 0), (int)x->rank);
        if (x->rank - 1 + idx->rank > CRUCIBLE_MAX_RANK)
            return NERR("result rank %d exceeds %d",
                        (int)(x->rank - 1 + idx->rank), CRUCIBLE_MAX_RANK);
        int32_t k = 0;
        for (int32_t i = 0; i < ax; i++) o->dims[k++] = x->dims[i];
        for (int32_t i = 0; i < idx->rank; i++) o->dims[k++] = idx->dims[i];
        for (int32_t i = (int32_t)ax + 1; i < x->rank; i++)
            o->dims[k++] = x->dims[i];
        o->rank = k;
        dtype = x->dtype;
        break;
    }
    case CRUCIBLE_OP_REDUCE_MEAN: case CRUCIBLE_OP_REDUCE_SUM:
    case CRUCIBLE_OP_REDUCE_MAX:
        if ((rc = need_inputs(n, in, 1, 1, 1, err, errlen))) return rc;
        if ((rc = infer_reduce(n, x, o, err, errlen))) return rc;
        break;
    case CRUCIBLE_OP_CAST:
        if ((rc = need_inputs(n, in, 1, 1, 1, err, errlen))) return rc;
        dtype = cast_to(n);
        if (!dtype)
            return NERR("attribute to must name a dtype (e.g. \"i32\")");
        o->rank = x->rank;
        memcpy(o->dims, x->dims, sizeof o->dims);
        break;
    case CRUCIBLE_OP_QUANTIZE:
        if ((rc = need_inputs(n, in, 1, 1, 1, err, errlen))) return rc;
        o->rank = x->rank;
        memcpy(o->dims, x->dims, sizeof o->dims);
        if (!o->dtype) o->dtype = CRUCIBLE_DT_U8;
        break;
    case CRUCIBLE_OP_DEQUANTIZE:
        if ((rc = need_inputs(n, in, 1, 1, 1, err, errlen))) return rc;
        o->rank = x->rank;
        memcpy(o->dims, x->dims, sizeof o->dims);
        dtype = CRUCIBLE_DT_F32;
        break;
    case CRUCIBLE_OP_RMS_NORM: case CRUCIBLE_OP_ROPE: case CRUCIBLE_OP_SILU:
    case CRUCIBLE_OP_KV_WRITE: case CRUCIBLE_OP_ATTENTION:
        if ((rc = infer_llm(n, in, o, err, errlen))) return rc;
        if (n->op == CRUCIBLE_OP_KV_WRITE) dtype = x->dtype;
        break;
    default:
        return interp_node_err(err, errlen, n, CRUCIBLE_E_UNSUPPORTED,
                               "op %d is not known to shape inference",
                               (int)n->op);
    }
    if (dtype) {
        if (o->dtype && o->dtype != dtype)
            return NERR("output is declared %s but the op produces %s",
                        ir_dtype_name(o->dtype), ir_dtype_name(dtype));
        o->dtype = dtype;
    } else if (!o->dtype) {
        o->dtype = x ? x->dtype : CRUCIBLE_DT_F32;
    }
    if (!dims_ok(o->rank, o->dims)) {
        fmt_shape(s1, sizeof s1, o->rank, o->dims);
        return interp_node_err(err, errlen, n, CRUCIBLE_E_LIMIT,
                               "output shape %s is invalid or exceeds %llu "
                               "elements",
                               s1, (unsigned long long)IR_MAX_ELEMS);
    }
    return CRUCIBLE_OK;
}

static int tensor_shape_known(const cr_tensor *t)
{
    if (t->rank < 0 || t->rank > CRUCIBLE_MAX_RANK) return 0;
    for (int32_t i = 0; i < t->rank; i++)
        if (t->dims[i] <= 0) return 0;
    return 1;
}

int ir_infer_shapes(cr_graph *g, char *err, size_t errlen)
{
    const cr_array **in = NULL;
    cr_array *descs = NULL;
    size_t cap = 0;
    int rc = CRUCIBLE_OK;
    for (size_t ni = 0; ni < g->n_nodes; ni++) {
        const cr_node *n = &g->nodes[ni];
        if (n->op == CRUCIBLE_OP_UNSUPPORTED) continue;
        if (n->n_inputs > cap) {
            cr_free(in);
            cr_free(descs);
            cap = n->n_inputs;
            in = cr_calloc(cap, sizeof *in);
            descs = cr_calloc(cap, sizeof *descs);
            if (!in || !descs) {
                rc = CRUCIBLE_E_NOMEM;
                if (err && errlen) snprintf(err, errlen, "out of memory");
                goto out;
            }
        }
        int skip = 0;
        for (uint32_t i = 0; i < n->n_inputs; i++) {
            int32_t ti = n->inputs[i];
            in[i] = NULL;
            if (ti == -1) continue;
            if (ti < 0 || (size_t)ti >= g->n_tensors) {
                rc = NERR("input %u refers to no tensor", i);
                goto out;
            }
            const cr_tensor *t = &g->tensors[ti];
            if (!tensor_shape_known(t)) {
                skip = 1;
                break;
            }
            cr_array *d = &descs[i];
            memset(d, 0, sizeof *d);
            d->dtype = t->dtype;
            d->rank = t->rank;
            memcpy(d->dims, t->dims, (size_t)t->rank * sizeof(int64_t));
            d->data = (t->flags & CRUCIBLE_TENSOR_CONST) ? t->data : NULL;
            d->bytes = t->data_bytes;
            in[i] = d;
        }
        if (skip) continue;
        if (n->n_outputs != 1) {
            rc = NERR("has %u outputs; every op has exactly one",
                      n->n_outputs);
            goto out;
        }
        int32_t oi = n->outputs[0];
        if (oi < 0 || (size_t)oi >= g->n_tensors) {
            rc = NERR("output refers to no tensor");
            goto out;
        }
        cr_tensor *t = &g->tensors[oi];
        cr_array o;
        memset(&o, 0, sizeof o);
        o.dtype = t->dtype;
        if ((rc = interp_infer_node(n, in, &o, err, errlen))) goto out;
        if (tensor_shape_known(t)) {
            if (t->rank != o.rank ||
                memcmp(t->dims, o.dims, (size_t)o.rank * sizeof(int64_t))) {
                char s1[200], s2[200];
                fmt_shape(s1, sizeof s1, o.rank, o.dims);
                fmt_shape(s2, sizeof s2, t->rank, t->dims);
                rc = NERR("output %s: inferred shape %s but declared %s",
                          t->name, s1, s2);
                goto out;
            }
        } else {
            /* partially known: with the same rank, the known dims must
             * agree (a frontend cannot declare "rank unknown", so a
             * different rank with unknown dims is simply replaced) */
            int bad = 0;
            for (int32_t i = 0; t->rank == o.rank && i < t->rank; i++)
                if (t->dims[i] > 0 && t->dims[i] != o.dims[i]) bad = 1;
            if (bad) {
                char s1[200], s2[200];
                fmt_shape(s1, sizeof s1, o.rank, o.dims);
                fmt_shape(s2, sizeof s2, t->rank, t->dims);
                rc = NERR("output %s: inferred shape %s but declared %s "
                          "(0 = unknown)",
                          t->name, s1, s2);
                goto out;
            }
            t->rank = o.rank;
            memcpy(t->dims, o.dims, (size_t)o.rank * sizeof(int64_t));
        }
        t->dtype = o.dtype;
    }
out:
    cr_free(in);
    cr_free(descs);
    return rc;
}
