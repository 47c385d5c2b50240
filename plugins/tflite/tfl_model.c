/*
 * tfl_model.c - decodes and checks a TFLite FlatBuffer (tfl_model.h) with
 * the bounds-checked reader of fb.c. No host dependencies: the fuzz target
 * (tests/fuzz/fuzz_tflite.c) compiles this file, fb.c and tfl_ops.c alone.
 */
#include "tfl_model.h"

#include <crucible/abi.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- arena --------------------------------------------------------------*/
struct tfl_block {
    tfl_block *next;
    size_t size, used, alloc;
    max_align_t data[];
};

#define TFL_CHUNK ((size_t)64 << 10)

void tfl_arena_init(tfl_arena *a, tfl_realloc_fn fn, void *ud, size_t limit)
{
    memset(a, 0, sizeof *a);
    a->fn = fn;
    a->ud = ud;
    a->limit = limit;
}

void tfl_arena_free(tfl_arena *a)
{
    tfl_block *b = a->head;
    while (b) {
        tfl_block *n = b->next;
        a->fn(a->ud, b, b->alloc, 0);
        b = n;
    }
    a->head = NULL;
    a->total = 0;
}

void *tfl_alloc(tfl_arena *a, size_t n)
{
    const size_t al = sizeof(max_align_t);
    if (n == 0) n = 1;
    if (n > ((size_t)1 << 40)) {
        a->exhausted = 1;
        return NULL;
    }
    n = (n + al - 1) / al * al;
    tfl_block *b = a->head;
    if (!b || b->size - b->used < n) {
        size_t sz = n > TFL_CHUNK / 2 ? n : TFL_CHUNK;
        size_t tot = sizeof(tfl_block) + sz;
        if (a->total + tot > a->limit) {
            a->exhausted = 1;
            return NULL;
        }
        tfl_block *nb = a->fn(a->ud, NULL, 0, tot);
        if (!nb) return NULL;
        nb->size = sz;
        nb->used = 0;
        nb->alloc = tot;
        a->total += tot;
        if (sz == n && a->head) { /* a big one: keep the current chunk */
            nb->next = a->head->next;
            a->head->next = nb;
            b = nb;
        } else {
            nb->next = a->head;
            a->head = nb;
            b = nb;
        }
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

void *tfl_alloc_array(tfl_arena *a, size_t count, size_t size)
{
    if (size && count > ((size_t)1 << 40) / size) {
        a->exhausted = 1;
        return NULL;
    }
    return tfl_alloc(a, count * size);
}

/* ---- decoding context ---------------------------------------------------*/
typedef struct pctx {
    fb_buf fb;
    tfl_arena *a;
    tfl_model *m;
    char *err;
    size_t errlen;
} pctx;

static int perr(pctx *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int perr(pctx *c, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (c->err && c->errlen) vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    return status;
}

/* A reader failure (rc < 0) while decoding `what`. */
static int fberr(pctx *c, int rc, const char *what)
{
    if (rc == FB_EBUDGET)
        return perr(c, CRUCIBLE_E_LIMIT, "%s: %s; refused", what,
                    fb_strerror(rc));
    return perr(c, CRUCIBLE_E_FORMAT,
                "malformed TFLite FlatBuffer: %s: %s (at byte %u of %zu)",
                what, fb_strerror(rc), (unsigned)c->fb.fail_at, c->fb.n);
}

static int nomem(pctx *c)
{
    if (c->a->exhausted)
        return perr(c, CRUCIBLE_E_LIMIT,
                    "decoding needs more than %zu MiB; refused",
                    c->a->limit >> 20);
    return perr(c, CRUCIBLE_E_NOMEM, "out of memory");
}

#define TRY(expr, what)                                                     \
    do {                                                                    \
        int rc_ = (expr);                                                   \
        if (rc_ < 0) return fberr(c, rc_, what);                            \
    } while (0)

/* An optional vector field: absent reads as empty. */
static int opt_vec(pctx *c, const fb_table *t, unsigned id, size_t es,
                   fb_vec *v)
{
    int rc = fb_vec_field(&c->fb, t, id, es, v);
    if (rc == FB_ABSENT) {
        v->pos = 0;
        v->len = 0;
        return FB_OK;
    }
    return rc;
}

/* int vector -> arena int32 array */
static int read_ints(pctx *c, const fb_table *t, unsigned id, uint32_t max,
                     uint32_t *count, int32_t **out, const char *what)
{
    fb_vec v;
    TRY(opt_vec(c, t, id, 4, &v), what);
    if (v.len > max)
        return perr(c, CRUCIBLE_E_LIMIT, "%s: %u entries (at most %u)", what,
                    (unsigned)v.len, (unsigned)max);
    *count = v.len;
    *out = tfl_alloc_array(c->a, v.len ? v.len : 1, sizeof(int32_t));
    if (!*out) return nomem(c);
    for (uint32_t i = 0; i < v.len; i++) (*out)[i] = fb_vec_i32(&c->fb, &v, i);
    return CRUCIBLE_OK;
}

/* ---- tables ---------------------------------------------------------------*/
static int read_opcode(pctx *c, const fb_table *t, tfl_opcode *o, uint32_t i)
{
    char what[64];
    snprintf(what, sizeof what, "operator code %u", (unsigned)i);
    int8_t dep;
    int32_t bc;
    TRY(fb_i8(&c->fb, t, 0, 0, &dep), what);
    TRY(fb_str_field(&c->fb, t, 1, &o->custom, NULL), what);
    TRY(fb_i32(&c->fb, t, 2, 1, &o->version), what);
    TRY(fb_i32(&c->fb, t, 3, 0, &bc), what);
    /* The schema: builtin_code is authoritative; old writers only set
     * the byte-wide deprecated field. max() covers both. */
    o->code = bc > dep ? bc : dep;
    return CRUCIBLE_OK;
}

static int read_quant(pctx *c, const fb_table *t, tfl_tensor *x,
                      const char *what)
{
    fb_table q;
    int rc = fb_table_field(&c->fb, t, 4, &q);
    if (rc == FB_ABSENT) return CRUCIBLE_OK;
    TRY(rc, what);
    fb_vec sv, zv;
    fb_table det;
    TRY(opt_vec(c, &q, 2, 4, &sv), what);
    TRY(opt_vec(c, &q, 3, 8, &zv), what);
    rc = fb_union_field(&c->fb, &q, 4, &x->q.details_type, &det);
    TRY(rc, what);
    TRY(fb_i32(&c->fb, &q, 6, 0, &x->q.qdim), what);
    if (sv.len > TFL_MAX_SCALES || zv.len > TFL_MAX_SCALES)
        return perr(c, CRUCIBLE_E_LIMIT,
                    "%s: %u quantisation scales / %u zero points (at most "
                    "%u)",
                    what, (unsigned)sv.len, (unsigned)zv.len, TFL_MAX_SCALES);
    x->q.n_scale = sv.len;
    x->q.n_zp = zv.len;
    x->has_quant = sv.len > 0;
    if (sv.len) {
        x->q.scales = tfl_alloc_array(c->a, sv.len, sizeof(float));
        if (!x->q.scales) return nomem(c);
        for (uint32_t i = 0; i < sv.len; i++)
            x->q.scales[i] = fb_vec_f32(&c->fb, &sv, i);
    }
    if (zv.len) {
        x->q.zero_points = tfl_alloc_array(c->a, zv.len, sizeof(int64_t));
        if (!x->q.zero_points) return nomem(c);
        for (uint32_t i = 0; i < zv.len; i++)
            x->q.zero_points[i] = fb_vec_i64(&c->fb, &zv, i);
    }
    return CRUCIBLE_OK;
}

static int read_tensor(pctx *c, const fb_table *t, tfl_tensor *x, uint32_t i)
{
    char what[64];
    snprintf(what, sizeof what, "subgraph 0: tensor %u", (unsigned)i);
    fb_vec sh, sig;
    fb_table tmp;
    TRY(opt_vec(c, t, 0, 4, &sh), what);
    x->rank = (int32_t)(sh.len > 0x7fffffff ? 0x7fffffff : sh.len);
    for (uint32_t d = 0; d < sh.len && d < TFL_MAX_RANK; d++)
        x->dims[d] = fb_vec_i32(&c->fb, &sh, d);
    TRY(fb_i8(&c->fb, t, 1, 0, &x->type), what);
    TRY(fb_u32(&c->fb, t, 2, 0, &x->buffer), what);
    TRY(fb_str_field(&c->fb, t, 3, &x->name, NULL), what);
    int rc = read_quant(c, t, x, what);
    if (rc) return rc;
    int b;
    TRY(fb_bool(&c->fb, t, 5, 0, &b), what);
    x->is_variable = (uint8_t)b;
    rc = fb_table_field(&c->fb, t, 6, &tmp);
    TRY(rc, what);
    x->has_sparsity = rc == FB_OK;
    TRY(opt_vec(c, t, 7, 4, &sig), what);
    for (uint32_t d = 0; d < sig.len; d++)
        if (fb_vec_i32(&c->fb, &sig, d) < 0) x->dynamic = 1;
    fb_vec vv;
    TRY(opt_vec(c, t, 9, 4, &vv), what);
    x->has_variant = vv.len > 0;
    return CRUCIBLE_OK;
}

/* Builtin options of the tables the frontend lowers (slot ids follow the
 * schema's declaration order). */
static int read_opts(pctx *c, const fb_table *t, uint8_t type, tfl_opts *o,
                     const char *what)
{
    fb_buf *f = &c->fb;
    int rc = 0, r;
#define I8(id, dst) if ((r = fb_i8(f, t, id, 0, &o->dst)) < 0) rc = r
#define I32(id, dst, dflt) if ((r = fb_i32(f, t, id, dflt, &o->dst)) < 0) rc = r
#define BOOL(id, dst) if ((r = fb_bool(f, t, id, 0, &o->dst)) < 0) rc = r
#define F32(id, dst) if ((r = fb_f32(f, t, id, 0.0f, &o->dst)) < 0) rc = r
    switch (type) {
    case TFL_OPT_CONV2D:
        I8(0, padding); I32(1, stride_w, 0); I32(2, stride_h, 0);
        I8(3, act); I32(4, dil_w, 1); I32(5, dil_h, 1);
        break;
    case TFL_OPT_DEPTHWISE:
        I8(0, padding); I32(1, stride_w, 0); I32(2, stride_h, 0);
        I32(3, depth_multiplier, 0); I8(4, act); I32(5, dil_w, 1);
        I32(6, dil_h, 1);
        break;
    case TFL_OPT_POOL2D:
        I8(0, padding); I32(1, stride_w, 0); I32(2, stride_h, 0);
        I32(3, filter_w, 0); I32(4, filter_h, 0); I8(5, act);
        break;
    case TFL_OPT_FULLY_CONNECTED:
        I8(0, act); I8(1, weights_format); BOOL(2, keep_num_dims);
        break;
    case TFL_OPT_SOFTMAX: F32(0, beta); break;
    case TFL_OPT_CONCATENATION: I32(0, axis, 0); I8(1, act); break;
    case TFL_OPT_ADD:
    case TFL_OPT_MUL:
    case TFL_OPT_SUB:
    case TFL_OPT_DIV: I8(0, act); break;
    case TFL_OPT_REDUCER: BOOL(0, keep_dims); break;
    case TFL_OPT_STRIDED_SLICE:
        I32(0, begin_mask, 0); I32(1, end_mask, 0); I32(2, ellipsis_mask, 0);
        I32(3, new_axis_mask, 0); I32(4, shrink_mask, 0); BOOL(5, offset);
        break;
    case TFL_OPT_TRANSPOSE_CONV:
        I8(0, padding); I32(1, stride_w, 0); I32(2, stride_h, 0);
        I8(3, act);
        break;
    case TFL_OPT_LEAKY_RELU: F32(0, alpha); break;
    case TFL_OPT_GATHER: I32(0, axis, 0); I32(1, batch_dims, 0); break;
    case TFL_OPT_MIRROR_PAD: I8(0, mirror_mode); break;
    default: break;
    }
#undef I8
#undef I32
#undef BOOL
#undef F32
    if (rc < 0) return fberr(c, rc, what);
    return CRUCIBLE_OK;
}

static int read_operator(pctx *c, const fb_table *t, tfl_operator *o,
                         uint32_t i)
{
    char what[96];
    snprintf(what, sizeof what, "subgraph 0: operator %u", (unsigned)i);
    TRY(fb_u32(&c->fb, t, 0, 0, &o->opcode_index), what);
    char w2[128];
    snprintf(w2, sizeof w2, "%s: inputs", what);
    int rc = read_ints(c, t, 1, TFL_MAX_OP_IO, &o->n_in, &o->in, w2);
    if (rc) return rc;
    snprintf(w2, sizeof w2, "%s: outputs", what);
    if ((rc = read_ints(c, t, 2, TFL_MAX_OP_IO, &o->n_out, &o->out, w2)))
        return rc;
    /* schema defaults of every options field read */
    o->opts.dil_w = o->opts.dil_h = 1;
    fb_table ot;
    rc = fb_union_field(&c->fb, t, 3, &o->opt_type, &ot);
    TRY(rc, what);
    if (rc == FB_OK && (rc = read_opts(c, &ot, o->opt_type, &o->opts, what)))
        return rc;
    fb_vec co;
    TRY(opt_vec(c, t, 5, 1, &co), what);
    uint64_t large = 0;
    TRY(fb_u64(&c->fb, t, 9, 0, &large), what);
    o->has_custom_options = co.len > 0 || large > 1;
    fb_table o2;
    TRY(fb_union_field(&c->fb, t, 11, &o->opt2_type, &o2), what);
    return CRUCIBLE_OK;
}

static int read_subgraph(pctx *c, const fb_table *sg)
{
    tfl_model *m = c->m;
    const char *what = "subgraph 0";
    fb_vec tv, ov;
    TRY(opt_vec(c, sg, 0, 4, &tv), what);
    TRY(opt_vec(c, sg, 3, 4, &ov), what);
    if (tv.len > TFL_MAX_TENSORS || ov.len > TFL_MAX_OPS)
        return perr(c, CRUCIBLE_E_LIMIT,
                    "subgraph 0 has %u tensors and %u operators (at most %u "
                    "and %u)",
                    (unsigned)tv.len, (unsigned)ov.len, TFL_MAX_TENSORS,
                    TFL_MAX_OPS);
    int rc = read_ints(c, sg, 1, TFL_MAX_TENSORS, &m->n_inputs, &m->inputs,
                       "subgraph 0: inputs");
    if (rc) return rc;
    if ((rc = read_ints(c, sg, 2, TFL_MAX_TENSORS, &m->n_outputs, &m->outputs,
                        "subgraph 0: outputs")))
        return rc;
    TRY(fb_str_field(&c->fb, sg, 4, &m->sg_name, NULL), what);
    m->n_tensors = tv.len;
    m->tensors = tfl_alloc_array(c->a, tv.len ? tv.len : 1, sizeof(tfl_tensor));
    if (!m->tensors) return nomem(c);
    for (uint32_t i = 0; i < tv.len; i++) {
        fb_table t;
        char w[64];
        snprintf(w, sizeof w, "subgraph 0: tensor %u", (unsigned)i);
        TRY(fb_vec_table(&c->fb, &tv, i, &t), w);
        if ((rc = read_tensor(c, &t, &m->tensors[i], i))) return rc;
    }
    m->n_ops = ov.len;
    m->ops = tfl_alloc_array(c->a, ov.len ? ov.len : 1, sizeof(tfl_operator));
    if (!m->ops) return nomem(c);
    for (uint32_t i = 0; i < ov.len; i++) {
        fb_table t;
        char w[64];
        snprintf(w, sizeof w, "subgraph 0: operator %u", (unsigned)i);
        TRY(fb_vec_table(&c->fb, &ov, i, &t), w);
        if ((rc = read_operator(c, &t, &m->ops[i], i))) return rc;
    }
    return CRUCIBLE_OK;
}

/* ---- checks -------------------------------------------------------------*/
static int int_range(int8_t type, int64_t *lo, int64_t *hi)
{
    switch (type) {
    case TFL_INT8: *lo = -128; *hi = 127; return 1;
    case TFL_UINT8: *lo = 0; *hi = 255; return 1;
    case TFL_INT16: *lo = -32768; *hi = 32767; return 1;
    case TFL_INT4: *lo = -8; *hi = 7; return 1;
    /* the IR keeps zero points as int32 */
    case TFL_INT32:
    case TFL_INT64: *lo = INT32_MIN; *hi = INT32_MAX; return 1;
    default: return 0;
    }
}

static const char *tname(const tfl_tensor *t)
{
    return t->name && *t->name ? t->name : "(unnamed)";
}

static int check_quant(pctx *c, const tfl_tensor *t, uint32_t i)
{
    int64_t lo, hi;
    if (!t->has_quant || !int_range(t->type, &lo, &hi)) return CRUCIBLE_OK;
    const tfl_quant *q = &t->q;
    for (uint32_t k = 0; k < q->n_scale; k++) {
        float s = q->scales[k];
        if (!(s > 0.0f) || !isfinite(s))
            return perr(c, CRUCIBLE_E_FORMAT,
                        "tensor %u (%s): quantization scale %u is %g; scales "
                        "must be positive and finite",
                        (unsigned)i, tname(t), (unsigned)k, (double)s);
    }
    if (q->n_zp != q->n_scale)
        return perr(c, CRUCIBLE_E_FORMAT,
                    "tensor %u (%s): %u quantization scales but %u zero "
                    "points",
                    (unsigned)i, tname(t), (unsigned)q->n_scale,
                    (unsigned)q->n_zp);
    for (uint32_t k = 0; k < q->n_zp; k++)
        if (q->zero_points[k] < lo || q->zero_points[k] > hi)
            return perr(c, CRUCIBLE_E_FORMAT,
                        "tensor %u (%s): zero point %u is %lld, outside the "
                        "range of %s (%lld..%lld)",
                        (unsigned)i, tname(t), (unsigned)k,
                        (long long)q->zero_points[k], tfl_type_name(t->type),
                        (long long)lo, (long long)hi);
    if (q->n_scale > 1) {
        if (q->qdim < 0 || q->qdim >= t->rank || q->qdim >= TFL_MAX_RANK)
            return perr(c, CRUCIBLE_E_FORMAT,
                        "tensor %u (%s): quantized_dimension %d is outside "
                        "its rank %d",
                        (unsigned)i, tname(t), (int)q->qdim, (int)t->rank);
        if (t->dims[q->qdim] != (int64_t)q->n_scale)
            return perr(c, CRUCIBLE_E_FORMAT,
                        "tensor %u (%s): %u quantization scales along "
                        "dimension %d of size %lld",
                        (unsigned)i, tname(t), (unsigned)q->n_scale,
                        (int)q->qdim, (long long)t->dims[q->qdim]);
    }
    return CRUCIBLE_OK;
}

static int check_tensor(pctx *c, tfl_tensor *t, uint32_t i)
{
    tfl_model *m = c->m;
    for (int32_t d = 0; d < t->rank && d < TFL_MAX_RANK; d++)
        if (t->dims[d] < 0)
            return perr(c, CRUCIBLE_E_FORMAT,
                        "tensor %u (%s): dimension %d is negative (%lld)",
                        (unsigned)i, tname(t), (int)d, (long long)t->dims[d]);
    if (t->buffer >= m->n_buffers) {
        if (t->buffer == 0) return check_quant(c, t, i); /* no buffers */
        return perr(c, CRUCIBLE_E_FORMAT,
                    "tensor %u (%s): buffer index %u, but the model has %u "
                    "buffers",
                    (unsigned)i, tname(t), (unsigned)t->buffer,
                    (unsigned)m->n_buffers);
    }
    const tfl_buffer *b = &m->buffers[t->buffer];
    if (b->ext_offset > 1)
        return perr(c, CRUCIBLE_E_UNSUPPORTED,
                    "tensor %u (%s): buffer %u keeps its %llu bytes outside "
                    "the FlatBuffer at file offset %llu (the layout of "
                    "models over 2 GB); not supported",
                    (unsigned)i, tname(t), (unsigned)t->buffer,
                    (unsigned long long)b->ext_size,
                    (unsigned long long)b->ext_offset);
    if (b->size) {
        t->data = b->data;
        t->data_bytes = b->size;
        int bits = tfl_type_bits(t->type);
        if (bits && !t->has_sparsity && t->rank <= TFL_MAX_RANK) {
            uint64_t n = 1;
            for (int32_t d = 0; d < t->rank; d++) {
                if (t->dims[d] && n > ((uint64_t)1 << 40) / (uint64_t)t->dims[d])
                    return perr(c, CRUCIBLE_E_LIMIT,
                                "tensor %u (%s): more than 2^40 elements",
                                (unsigned)i, tname(t));
                n *= (uint64_t)t->dims[d];
            }
            uint64_t need = (n * (uint64_t)bits + 7) / 8;
            if (need != b->size)
                return perr(c, CRUCIBLE_E_FORMAT,
                            "tensor %u (%s): its shape and type %s need %llu "
                            "bytes, but buffer %u holds %u",
                            (unsigned)i, tname(t), tfl_type_name(t->type),
                            (unsigned long long)need, (unsigned)t->buffer,
                            (unsigned)b->size);
        }
    }
    return check_quant(c, t, i);
}

static int check_model(pctx *c)
{
    tfl_model *m = c->m;
    int rc;
    for (uint32_t i = 0; i < m->n_tensors; i++)
        if ((rc = check_tensor(c, &m->tensors[i], i))) return rc;
    for (uint32_t k = 0; k < m->n_inputs; k++)
        if (m->inputs[k] < 0 || (uint32_t)m->inputs[k] >= m->n_tensors)
            return perr(c, CRUCIBLE_E_FORMAT,
                        "subgraph 0: input %u is tensor %d, but there are %u "
                        "tensors",
                        (unsigned)k, (int)m->inputs[k], (unsigned)m->n_tensors);
    for (uint32_t k = 0; k < m->n_outputs; k++)
        if (m->outputs[k] < 0 || (uint32_t)m->outputs[k] >= m->n_tensors)
            return perr(c, CRUCIBLE_E_FORMAT,
                        "subgraph 0: output %u is tensor %d, but there are %u "
                        "tensors",
                        (unsigned)k, (int)m->outputs[k],
                        (unsigned)m->n_tensors);
    for (uint32_t i = 0; i < m->n_ops; i++) {
        const tfl_operator *o = &m->ops[i];
        if (o->opcode_index >= m->n_opcodes)
            return perr(c, CRUCIBLE_E_FORMAT,
                        "operator %u: opcode_index %u, but the model has %u "
                        "operator codes",
                        (unsigned)i, (unsigned)o->opcode_index,
                        (unsigned)m->n_opcodes);
        for (uint32_t k = 0; k < o->n_in + o->n_out; k++) {
            int32_t v = k < o->n_in ? o->in[k] : o->out[k - o->n_in];
            if (v < -1 || (v >= 0 && (uint32_t)v >= m->n_tensors))
                return perr(c, CRUCIBLE_E_FORMAT,
                            "operator %u: %s %u is tensor %d, but there are "
                            "%u tensors",
                            (unsigned)i, k < o->n_in ? "input" : "output",
                            (unsigned)(k < o->n_in ? k : k - o->n_in), (int)v,
                            (unsigned)m->n_tensors);
        }
    }
    return CRUCIBLE_OK;
}

/* ---- entry ----------------------------------------------------------------*/
int tfl_model_parse(const uint8_t *buf, size_t len, tfl_arena *a,
                    tfl_model *m, char *err, size_t errlen)
{
    pctx cx, *c = &cx;
    memset(c, 0, sizeof *c);
    memset(m, 0, sizeof *m);
    c->a = a;
    c->m = m;
    c->err = err;
    c->errlen = errlen;
    if (err && errlen) err[0] = 0;
    if (len > FB_MAX_SIZE)
        return perr(c, CRUCIBLE_E_LIMIT,
                    "the file is %zu bytes; a FlatBuffer holds at most 2 GiB "
                    "(larger TFLite models keep buffers outside it, which is "
                    "not supported)",
                    len);
    if (!buf || len < 8)
        return perr(c, CRUCIBLE_E_FORMAT,
                    "not a TFLite model: %zu bytes is too short for a "
                    "FlatBuffer",
                    len);
    int rc = fb_init(&c->fb, buf, len, 0);
    if (rc) return fberr(c, rc, "header");
    fb_table root;
    rc = fb_root(&c->fb, "TFL3", &root);
    if (rc == FB_EIDENT)
        return perr(c, CRUCIBLE_E_FORMAT,
                    "not a TFLite model: bytes 4..7 are not the file "
                    "identifier \"TFL3\"");
    TRY(rc, "root table (Model)");
    TRY(fb_u32(&c->fb, &root, 0, 0, &m->version), "Model.version");
    if (m->version != 3)
        return perr(c, CRUCIBLE_E_UNSUPPORTED,
                    "TFLite schema version %u; this frontend reads version 3",
                    (unsigned)m->version);

    fb_vec codes, sgs, bufs, metas, sigs;
    TRY(opt_vec(c, &root, 1, 4, &codes), "Model.operator_codes");
    TRY(opt_vec(c, &root, 2, 4, &sgs), "Model.subgraphs");
    TRY(fb_str_field(&c->fb, &root, 3, &m->description, NULL),
        "Model.description");
    TRY(opt_vec(c, &root, 4, 4, &bufs), "Model.buffers");
    TRY(opt_vec(c, &root, 6, 4, &metas), "Model.metadata");
    TRY(opt_vec(c, &root, 7, 4, &sigs), "Model.signature_defs");
    if (codes.len > TFL_MAX_OPCODES || bufs.len > TFL_MAX_BUFFERS ||
        metas.len > TFL_MAX_BUFFERS)
        return perr(c, CRUCIBLE_E_LIMIT,
                    "the model has %u operator codes, %u buffers and %u "
                    "metadata entries (at most %u, %u, %u)",
                    (unsigned)codes.len, (unsigned)bufs.len,
                    (unsigned)metas.len, TFL_MAX_OPCODES, TFL_MAX_BUFFERS,
                    TFL_MAX_BUFFERS);
    m->n_subgraphs = sgs.len;
    m->n_signatures = sigs.len;
    if (!sgs.len)
        return perr(c, CRUCIBLE_E_FORMAT, "the model has no subgraphs");

    m->n_opcodes = codes.len;
    m->opcodes = tfl_alloc_array(a, codes.len ? codes.len : 1,
                                 sizeof(tfl_opcode));
    if (!m->opcodes) return nomem(c);
    for (uint32_t i = 0; i < codes.len; i++) {
        fb_table t;
        TRY(fb_vec_table(&c->fb, &codes, i, &t), "Model.operator_codes");
        if ((rc = read_opcode(c, &t, &m->opcodes[i], i))) return rc;
    }

    m->n_buffers = bufs.len;
    m->buffers = tfl_alloc_array(a, bufs.len ? bufs.len : 1,
                                 sizeof(tfl_buffer));
    if (!m->buffers) return nomem(c);
    for (uint32_t i = 0; i < bufs.len; i++) {
        fb_table t;
        fb_vec d;
        char w[48];
        snprintf(w, sizeof w, "buffer %u", (unsigned)i);
        TRY(fb_vec_table(&c->fb, &bufs, i, &t), w);
        TRY(opt_vec(c, &t, 0, 1, &d), w);
        TRY(fb_u64(&c->fb, &t, 1, 0, &m->buffers[i].ext_offset), w);
        TRY(fb_u64(&c->fb, &t, 2, 0, &m->buffers[i].ext_size), w);
        m->buffers[i].size = d.len;
        m->buffers[i].data = d.len ? fb_vec_data(&c->fb, &d) : NULL;
    }

    m->n_meta = metas.len;
    m->meta = tfl_alloc_array(a, metas.len ? metas.len : 1, sizeof(tfl_meta));
    if (!m->meta) return nomem(c);
    for (uint32_t i = 0; i < metas.len; i++) {
        fb_table t;
        TRY(fb_vec_table(&c->fb, &metas, i, &t), "Model.metadata");
        TRY(fb_str_field(&c->fb, &t, 0, &m->meta[i].name, NULL),
            "Model.metadata");
        TRY(fb_u32(&c->fb, &t, 1, 0, &m->meta[i].buffer), "Model.metadata");
    }

    fb_table sg;
    TRY(fb_vec_table(&c->fb, &sgs, 0, &sg), "subgraph 0");
    if ((rc = read_subgraph(c, &sg))) return rc;
    return check_model(c);
}
