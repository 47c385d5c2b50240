/*
 * mcugen.c - the shared MCU code generator: lowering of an integer graph
 * into kernel calls, the arena plan, model.c / model.h / harness sources,
 * the verification flow (cross-compile, size, QEMU, bit-exact compare) and
 * the UF2 writer. See crucible/mcugen.h.
 */
#include <crucible/mcugen.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mcugen_embed.h"

#include <crucible/kernels.h> /* crk_mbqm: the int8 leaky_relu table */

/* ---- text buffer ----------------------------------------------------- */
typedef struct sbuf {
    const crucible_host *h;
    char *s;
    size_t len, cap;
    int err;
} sbuf;

static void sb_free(sbuf *b)
{
    if (b->s) crucible_free(b->h, b->s, b->cap);
    b->s = NULL;
    b->len = b->cap = 0;
}

static void sb_putn(sbuf *b, const char *s, size_t n)
{
    if (b->err) return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->len + n + 1) nc *= 2;
        char *p = b->h->realloc(b->h, b->s, b->cap, nc);
        if (!p) {
            b->err = 1;
            return;
        }
        b->s = p;
        b->cap = nc;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

static void sb_printf(sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0) {
        b->err = 1;
        return;
    }
    if ((size_t)k < sizeof tmp) {
        sb_putn(b, tmp, (size_t)k);
        return;
    }
    char *big = crucible_alloc(b->h, (size_t)k + 1);
    if (!big) {
        b->err = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)k + 1, fmt, ap);
    va_end(ap);
    sb_putn(b, big, (size_t)k);
    crucible_free(b->h, big, (size_t)k + 1);
}

/* ---- boards ------------------------------------------------------------ */
const char *mcugen_board_get(const mcugen_target *t, const crucible_board *b,
                             const char *section, const char *key)
{
    if (b && CRUCIBLE_HAS_FIELD(*b, crucible_board, doc) && b->doc)
        /* a board file is complete on its own (accept_board checks the
         * required keys): an absent optional key, e.g. [image], stays
         * absent rather than taking another board's default */
        return crucible_kv_get(b->doc, section, key);
    for (const mcugen_default *d = t ? t->defaults : NULL; d && d->section; d++)
        if (!strcmp(d->section, section) && !strcmp(d->key, key)) return d->value;
    return NULL;
}

/* Unsigned number (decimal or 0x hex, optional K/M suffix); -1 if bad. */
static int64_t parse_u(const char *s)
{
    if (!s || !*s) return -1;
    char *e = NULL;
    unsigned long long v = strtoull(s, &e, 0);
    if (e == s) return -1;
    while (*e == ' ') e++;
    if (*e == 'K' || *e == 'k') v *= 1024, e++;
    else if (*e == 'M' || *e == 'm') v *= 1024 * 1024, e++;
    while (*e == ' ') e++;
    if (*e || v > (unsigned long long)INT64_MAX) return -1;
    return (int64_t)v;
}

static int64_t bget_u(const mcugen_target *t, const crucible_board *b,
                      const char *sec, const char *key, int64_t dflt)
{
    const char *v = mcugen_board_get(t, b, sec, key);
    if (!v) return dflt;
    return parse_u(v);
}

static int arch_kind(const char *arch)
{
    if (!arch) return -1;
    if (!strcmp(arch, "armv6m") || !strcmp(arch, "armv7m")) return 0;
    if (!strcmp(arch, "rv32")) return 1;
    if (!strcmp(arch, "xtensa")) return 2;
    return -1;
}

int mcugen_accept_board(const mcugen_target *tgt, const crucible_board *b,
                        char *why, size_t why_len)
{
    /* a board file must be complete on its own: no fallback to defaults */
    mcugen_target own = {tgt ? tgt->id : NULL, NULL, NULL};
    const mcugen_target *t =
        b && CRUCIBLE_HAS_FIELD(*b, crucible_board, doc) && b->doc ? &own : tgt;
    const char *arch = mcugen_board_get(t, b, "board", "arch");
    int ak = arch_kind(arch);
    if (ak < 0) {
        snprintf(why, why_len, "[board] arch = '%s': expected armv6m, "
                 "armv7m, rv32 or xtensa", arch ? arch : "(missing)");
        return CRUCIBLE_E_BOARD;
    }
    static const char *const need[][2] = {{"board", "flash_bytes"},
                                          {"board", "ram_bytes"}};
    for (size_t i = 0; i < 2; i++) {
        int64_t v = bget_u(t, b, need[i][0], need[i][1], -1);
        if (v <= 0) {
            snprintf(why, why_len, "[%s] %s is required (a positive byte "
                     "count)", need[i][0], need[i][1]);
            return CRUCIBLE_E_BOARD;
        }
    }
    if (ak == 2) return CRUCIBLE_OK; /* project only: no link map needed */
    static const char *const lk[][2] = {
        {"toolchain", "prefix"}, {"link", "flash_origin"},
        {"link", "flash_length"}, {"link", "ram_origin"},
        {"link", "ram_length"}, {"emulator", "qemu"},
        {"emulator", "machine"}};
    for (size_t i = 0; i < sizeof lk / sizeof lk[0]; i++) {
        const char *v = mcugen_board_get(t, b, lk[i][0], lk[i][1]);
        if (!v || !*v) {
            snprintf(why, why_len, "[%s] %s is required for arch %s",
                     lk[i][0], lk[i][1], arch);
            return CRUCIBLE_E_BOARD;
        }
        if (!strcmp(lk[i][0], "link") && parse_u(v) < 0) {
            snprintf(why, why_len, "[link] %s = '%s' is not a number",
                     lk[i][1], v);
            return CRUCIBLE_E_BOARD;
        }
    }
    int64_t fo = bget_u(t, b, "link", "flash_origin", 0),
            fl = bget_u(t, b, "link", "flash_length", 0),
            ro = bget_u(t, b, "link", "ram_origin", 0),
            rl = bget_u(t, b, "link", "ram_length", 0);
    if (fl <= 0 || rl <= 0 || (fo < ro + rl && ro < fo + fl)) {
        snprintf(why, why_len, "[link] flash 0x%llx+0x%llx and ram "
                 "0x%llx+0x%llx must be non-empty and must not overlap",
                 (unsigned long long)fo, (unsigned long long)fl,
                 (unsigned long long)ro, (unsigned long long)rl);
        return CRUCIBLE_E_BOARD;
    }
    int64_t st = bget_u(t, b, "link", "stack_bytes", 2048);
    if (st < 256 || st >= rl) {
        snprintf(why, why_len, "[link] stack_bytes = %lld must be in 256.."
                 "ram_length (%lld)", (long long)st, (long long)rl);
        return CRUCIBLE_E_BOARD;
    }
    return CRUCIBLE_OK;
}

/* ---- graph analysis ---------------------------------------------------- */
static uint64_t numel(const crucible_tensor_view *t)
{
    return t ? crucible_tensor_numel(t) : 0;
}

static const crucible_tensor_view *T(const crucible_graph_view *g, int32_t i)
{
    return crucible_graph_tensor(g, i);
}

/* bytes per element of a materialised activation (i8, or f32 islands) */
static uint32_t esz(const crucible_tensor_view *t)
{
    return t && t->dtype == CRUCIBLE_DT_F32 ? 4 : 1;
}

static int is_f32(const crucible_tensor_view *t)
{
    return t && t->dtype == CRUCIBLE_DT_F32;
}

static int is_q31(const crucible_node_view *n)
{
    const crucible_attr_view *a = crucible_node_attr(n, "rounding");
    return a && a->type == CRUCIBLE_ATTR_STRING && a->s &&
           !strcmp(a->s, "fixed_q31");
}

/* Consumers of tensor t: count, and the last one in *one. A graph output
 * counts as a consumer (index n_nodes). */
static uint32_t consumers(const crucible_graph_view *g, int32_t t,
                          int32_t *one)
{
    uint32_t c = 0;
    *one = -1;
    for (uint32_t i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == t) c++, *one = (int32_t)g->n_nodes;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const crucible_node_view *n = g->nodes[i];
        for (uint32_t k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] == t) {
                c++;
                *one = (int32_t)i;
                break;
            }
    }
    return c;
}

static int32_t producer(const crucible_graph_view *g, int32_t t)
{
    for (uint32_t i = 0; i < g->n_nodes; i++)
        for (uint32_t k = 0; k < g->nodes[i]->n_outputs; k++)
            if (g->nodes[i]->outputs[k] == t) return (int32_t)i;
    return -1;
}

static int pt(const crucible_tensor_view *t, float *s, int32_t *zp)
{
    if (!t || t->quant_count != 1 || !t->scales || !t->zero_points) return -1;
    *s = t->scales[0];
    *zp = t->zero_points[0];
    return 0;
}

static int attr_f32(const crucible_node_view *n, const char *name, float dflt,
                    float *v)
{
    const crucible_attr_view *a = crucible_node_attr(n, name);
    if (!a) {
        *v = dflt;
        return 0;
    }
    if (a->type == CRUCIBLE_ATTR_FLOAT) *v = (float)a->f;
    else if (a->type == CRUCIBLE_ATTR_INT) *v = (float)a->i;
    else return -1;
    return 0;
}

/* As the reference interpreter: zp + roundf(f / scale), clamped. */
static int32_t q_bound(float f, float scale, int32_t zp)
{
    float v = roundf(f / scale);
    double d = (double)v + (double)zp;
    if (!(d >= -128.0)) return d != d ? zp : -128;
    if (d > 127.0) return 127;
    return (int32_t)d;
}

static int act_range(const crucible_graph_view *g, const crucible_node_view *n,
                     float s, int32_t zp, int32_t *lo, int32_t *hi, char *why,
                     size_t wn)
{
    float fmin, fmax;
    if (attr_f32(n, "min", n->op == CRUCIBLE_OP_RELU ? 0.0f : -INFINITY,
                 &fmin) ||
        attr_f32(n, "max", INFINITY, &fmax)) {
        snprintf(why, wn, "node %s: attributes min / max must be numbers",
                 n->name);
        return -1;
    }
    if (n->op == CRUCIBLE_OP_CLIP)
        for (uint32_t k = 1; k < 3 && k < n->n_inputs; k++) {
            if (n->inputs[k] < 0) continue;
            const crucible_tensor_view *b = T(g, n->inputs[k]);
            if (!b || b->dtype != CRUCIBLE_DT_F32 || numel(b) != 1 ||
                !b->data) {
                snprintf(why, wn, "node %s: clip bound %u must be a constant "
                         "f32 scalar", n->name, k);
                return -1;
            }
            float v;
            memcpy(&v, b->data, 4);
            if (k == 1) fmin = v;
            else fmax = v;
        }
    *lo = fmin == -INFINITY ? -128 : q_bound(fmin, s, zp);
    *hi = fmax == INFINITY ? 127 : q_bound(fmax, s, zp);
    if (*lo > *hi) {
        snprintf(why, wn, "node %s: empty activation range", n->name);
        return -1;
    }
    return 0;
}

/* TFLite QuantizeMultiplier, exactly as host/interp_q.c. */
static int q_multiplier(double r, int32_t *mult, int32_t *shift)
{
    *mult = 0;
    *shift = 0;
    if (!(r >= 0.0) || !isfinite(r)) return -1;
    if (r == 0.0) return 0;
    int e = 0;
    double f = frexp(r, &e);
    double q = round(f * 2147483648.0);
    int64_t qf = (int64_t)q;
    if (qf == ((int64_t)1 << 31)) {
        qf /= 2;
        e++;
    }
    if (e < -31) return 0;
    if (e > 31) return -1;
    *mult = (int32_t)qf;
    *shift = e;
    return 0;
}

/* TFLite PreprocessSoftmaxScaling and CalculateInputRadius, exactly as
 * host/interp_q.c (interp_q_softmax_params). */
static int softmax_params(double beta, double s_in, int32_t *mult,
                          int32_t *left_shift, int32_t *diff_min)
{
    double real = beta * s_in * (double)(1 << 26);
    if (real > 2147483647.0) real = 2147483647.0;
    int32_t sh;
    if (!(real > 1.0) || q_multiplier(real, mult, &sh) || sh < 0) return -1;
    *left_shift = sh;
    double radius = floor(31.0 * (double)((int64_t)1 << 26) /
                          (double)((int64_t)1 << sh));
    *diff_min = -(int32_t)radius;
    return 0;
}

static int get_ints(const crucible_node_view *n, const char *name,
                    uint32_t cnt, int64_t *out, const int64_t *dflt)
{
    const crucible_attr_view *a = crucible_node_attr(n, name);
    if (!a) {
        for (uint32_t i = 0; i < cnt; i++) out[i] = dflt[i];
        return 0;
    }
    if (a->type != CRUCIBLE_ATTR_INTS || a->count != cnt) return -1;
    for (uint32_t i = 0; i < cnt; i++) out[i] = a->ints[i];
    return 0;
}

/* ---- lowering: steps -------------------------------------------------- */
enum { ST_FC = 1, ST_CONV, ST_MAXPOOL, ST_AVGPOOL, ST_CLAMP, ST_RQ8,
       ST_RESHAPE, ST_TRANSPOSE, ST_SOFTMAX, ST_DEQ, ST_QUANT, ST_FADD,
       ST_FRELU, ST_FMAXPOOL, ST_BIN, ST_LUT, ST_CONCAT };

typedef struct step {
    int kind;
    uint32_t node, rq_node, act_node; /* act_node: UINT32_MAX none */
    int32_t in, out;                  /* tensors read / written */
    int32_t w, b;                     /* const tensors (FC/CONV) */
    int32_t wfmt;
    int32_t zin, zout, lo, hi;
    uint32_t cnt;                     /* multipliers */
    int32_t *mult, *shift;            /* host-allocated, cnt entries */
    int64_t p[16];                    /* geometry */
    uint64_t macs;
    int fold; /* FC: input zero point folded into the bias */
    float fs; /* DEQ / QUANT: the scale */
    int32_t in2; /* BIN: the second input (-1 none) */
    int8_t table[256]; /* LUT */
} step;

typedef struct lowered {
    const crucible_host *h;
    step *steps;
    uint32_t n, cap;
    uint8_t *covered; /* per node */
    uint64_t macs, const_bytes;
} lowered;

static void lowered_free(lowered *L)
{
    for (uint32_t i = 0; i < L->n; i++) {
        if (L->steps[i].mult)
            crucible_free(L->h, L->steps[i].mult, L->steps[i].cnt * 4);
        if (L->steps[i].shift)
            crucible_free(L->h, L->steps[i].shift, L->steps[i].cnt * 4);
    }
    if (L->steps) crucible_free(L->h, L->steps, L->cap * sizeof(step));
    L->steps = NULL;
}

static int wfmt_of(int32_t dt)
{
    switch (dt) {
    case CRUCIBLE_DT_I8: return 0;
    case CRUCIBLE_DT_I4: return 1;
    case CRUCIBLE_DT_TERNARY: return 2;
    case CRUCIBLE_DT_BINARY: return 3;
    default: return -1;
    }
}

/* Checks the fused pattern rooted at product node pi (dense / conv2d).
 * Without a host (h NULL: query) nothing is allocated. */
static int check_product(const crucible_graph_view *g, uint32_t pi,
                         uint32_t *rq, uint32_t *act, char *why, size_t wn)
{
    const crucible_node_view *p = g->nodes[pi];
    if (p->n_inputs < 2 || p->inputs[0] < 0 || p->inputs[1] < 0) {
        snprintf(why, wn, "%s %s needs an input and weights", p->op_name,
                 p->name);
        return -1;
    }
    const crucible_tensor_view *x = T(g, p->inputs[0]), *w = T(g, p->inputs[1]);
    const crucible_tensor_view *b =
        p->n_inputs > 2 && p->inputs[2] >= 0 ? T(g, p->inputs[2]) : NULL;
    if (!x || x->dtype != CRUCIBLE_DT_I8) {
        snprintf(why, wn, "%s %s: input must be i8 (quantise the model: "
                 "crucible compile --quant int8)", p->op_name, p->name);
        return -1;
    }
    if (!w || !w->data || wfmt_of(w->dtype) < 0) {
        snprintf(why, wn, "%s %s: weights must be constant i8/i4/ternary/"
                 "binary", p->op_name, p->name);
        return -1;
    }
    for (uint32_t c = 0; c < w->quant_count; c++)
        if (w->zero_points[c]) {
            snprintf(why, wn, "%s %s: weights must be symmetric (zero point "
                     "0)", p->op_name, p->name);
            return -1;
        }
    if (b && (b->dtype != CRUCIBLE_DT_I32 || !b->data)) {
        snprintf(why, wn, "%s %s: bias must be a constant i32", p->op_name,
                 p->name);
        return -1;
    }
    int32_t c;
    if (consumers(g, p->outputs[0], &c) != 1 || c >= (int32_t)g->n_nodes ||
        g->nodes[c]->op != CRUCIBLE_OP_REQUANTIZE || !is_q31(g->nodes[c])) {
        snprintf(why, wn, "%s %s: its i32 result must feed exactly one "
                 "requantize with rounding \"fixed_q31\"", p->op_name,
                 p->name);
        return -1;
    }
    const crucible_node_view *r = g->nodes[c];
    const crucible_tensor_view *y = T(g, r->outputs[0]);
    float sy, sx;
    int32_t zy, zx;
    if (!y || y->dtype != CRUCIBLE_DT_I8 || pt(y, &sy, &zy) || pt(x, &sx, &zx)) {
        snprintf(why, wn, "requantize %s: output must be i8 quantised per "
                 "tensor (and %s's input too)", r->name, p->name);
        return -1;
    }
    const crucible_tensor_view *acc = T(g, p->outputs[0]);
    if (!acc || !acc->quant_count || !w->quant_count ||
        (w->quant_count > 1 && acc->quant_count != w->quant_count) ||
        (w->quant_count == 1 && acc->quant_count != 1)) {
        snprintf(why, wn, "%s %s: accumulator and weight scales must line "
                 "up (per tensor or per output channel)", p->op_name, p->name);
        return -1;
    }
    *rq = (uint32_t)c;
    *act = UINT32_MAX;
    int32_t a;
    if (consumers(g, r->outputs[0], &a) == 1 && a < (int32_t)g->n_nodes) {
        const crucible_node_view *an = g->nodes[a];
        const crucible_tensor_view *ay = T(g, an->outputs[0]);
        float sa;
        int32_t za;
        if ((an->op == CRUCIBLE_OP_RELU || an->op == CRUCIBLE_OP_CLIP) &&
            is_q31(an) && ay && ay->dtype == CRUCIBLE_DT_I8 &&
            !pt(ay, &sa, &za) && sa == sy && za == zy)
            *act = (uint32_t)a;
    }
    return 0;
}

static int check_i8_io(const crucible_graph_view *g,
                       const crucible_node_view *n, char *why, size_t wn)
{
    const crucible_tensor_view *x = T(g, n->inputs[0]), *y = T(g, n->outputs[0]);
    if (!x || !y || x->dtype != CRUCIBLE_DT_I8 || y->dtype != CRUCIBLE_DT_I8) {
        snprintf(why, wn, "%s %s: only i8 tensors run on the MCU (quantise "
                 "the model)", n->op_name, n->name);
        return -1;
    }
    return 0;
}

/* A float add of activation a and constant c (its other input) that the
 * MCU runs: c a scalar, c the shape of a, c along a's channel axis (a
 * [N, C, ...], c [C, 1, ...] or [1, C, 1, ...]), or c along a's last axis.
 * Returns the mode (0 scalar, 1 same, 2 channel, 3 last axis) and sets
 * *act / *cst to the input positions; -1 if not supported. */
static int fadd_mode(const crucible_graph_view *g, const crucible_node_view *n,
                     int *act, int *cst)
{
    if (n->n_inputs != 2 || n->inputs[0] < 0 || n->inputs[1] < 0) return -1;
    const crucible_tensor_view *a = T(g, n->inputs[0]), *b = T(g, n->inputs[1]),
                               *y = T(g, n->outputs[0]);
    if (!is_f32(a) || !is_f32(b) || !is_f32(y)) return -1;
    int ia = b->data ? 0 : 1;
    const crucible_tensor_view *x = ia ? b : a, *c = ia ? a : b;
    if (x->data || !c->data || numel(x) != numel(y)) return -1;
    *act = ia, *cst = !ia;
    uint64_t nc = numel(c);
    if (nc == 1) return 0;
    if (nc == numel(x)) return 1;
    if (x->rank >= 2 && nc == (uint64_t)x->dims[1]) {
        /* every dim of c but one (equal to C) is 1, and it lines up with
         * axis 1 of x when c is right-aligned */
        int32_t pos = -1, k;
        for (k = 0; k < c->rank; k++)
            if (c->dims[k] != 1) {
                if (pos >= 0) return -1;
                pos = k;
            }
        if (pos >= 0 && x->rank - c->rank + pos == 1) return 2;
    }
    if (x->rank >= 1 && nc == (uint64_t)x->dims[x->rank - 1] &&
        c->dims[c->rank - 1] == (int64_t)nc)
        return 3;
    return -1;
}

/* int8 add / sub / mul (TFLite semantics, as the interpreter's q_binary):
 * two i8 inputs per tensor (activations or constants), numpy broadcasting
 * at rank <= 4, an i8 output. */
static int check_bin_i8(const crucible_graph_view *g,
                        const crucible_node_view *n, char *why, size_t wn)
{
    const crucible_tensor_view *y = T(g, n->outputs[0]);
    float s;
    int32_t z;
    if (n->n_inputs != 2 || n->inputs[0] < 0 || n->inputs[1] < 0 ||
        y->rank > 4 || pt(y, &s, &z) || !is_q31(n)) {
        snprintf(why, wn, "%s %s: two i8 inputs and an i8 output per tensor, "
                 "rank <= 4, rounding \"fixed_q31\"", n->op_name, n->name);
        return -1;
    }
    for (int k = 0; k < 2; k++) {
        const crucible_tensor_view *x = T(g, n->inputs[k]);
        if (!x || x->dtype != CRUCIBLE_DT_I8 || pt(x, &s, &z) || x->rank > 4) {
            snprintf(why, wn, "%s %s: input %d must be i8 per tensor, rank "
                     "<= 4", n->op_name, n->name, k);
            return -1;
        }
        for (int32_t i = 0; i < x->rank; i++) {
            int64_t d = x->dims[x->rank - 1 - i];
            int64_t o = y->dims[y->rank - 1 - i];
            if (i >= y->rank || (d != 1 && d != o)) {
                snprintf(why, wn, "%s %s: input %d does not broadcast to the "
                         "output", n->op_name, n->name, k);
                return -1;
            }
        }
    }
    return 0;
}

/* Per-node support, pure (used by query and by lowering). */
static int node_supported(const crucible_graph_view *g, uint32_t ni, char *why,
                          size_t wn)
{
    const crucible_node_view *n = g->nodes[ni];
    uint32_t rq, act;
    if (!n->n_outputs || !n->n_inputs || n->inputs[0] < 0) {
        snprintf(why, wn, "node %s has no data input", n->name);
        return -1;
    }
    switch (n->op) {
    case CRUCIBLE_OP_DENSE:
    case CRUCIBLE_OP_CONV2D:
        return check_product(g, ni, &rq, &act, why, wn);
    case CRUCIBLE_OP_REQUANTIZE: {
        int32_t pi = producer(g, n->inputs[0]);
        if (pi >= 0 && (g->nodes[pi]->op == CRUCIBLE_OP_DENSE ||
                        g->nodes[pi]->op == CRUCIBLE_OP_CONV2D))
            return check_product(g, (uint32_t)pi, &rq, &act, why, wn);
        if (!is_q31(n)) {
            snprintf(why, wn, "requantize %s: rounding must be \"fixed_q31\"",
                     n->name);
            return -1;
        }
        float s;
        int32_t z;
        if (check_i8_io(g, n, why, wn)) return -1;
        if (pt(T(g, n->inputs[0]), &s, &z) || pt(T(g, n->outputs[0]), &s, &z)) {
            snprintf(why, wn, "requantize %s: i8 -> i8 needs per-tensor "
                     "parameters", n->name);
            return -1;
        }
        return 0;
    }
    case CRUCIBLE_OP_CONCAT: {
        const crucible_tensor_view *y = T(g, n->outputs[0]);
        float s;
        int32_t z;
        int64_t ax = crucible_node_attr_int(n, "axis", 0);
        if (!y || y->dtype != CRUCIBLE_DT_I8 || pt(y, &s, &z) || !is_q31(n) ||
            n->n_inputs < 1 || n->n_inputs > 8) {
            snprintf(why, wn, "concat %s: 1..8 i8 inputs and an i8 output per "
                     "tensor with rounding \"fixed_q31\"", n->name);
            return -1;
        }
        if (ax < 0) ax += y->rank;
        if (ax < 0 || ax >= y->rank) {
            snprintf(why, wn, "concat %s: axis out of range", n->name);
            return -1;
        }
        int64_t sum = 0;
        for (uint32_t k = 0; k < n->n_inputs; k++) {
            const crucible_tensor_view *x = n->inputs[k] >= 0 ? T(g, n->inputs[k]) : NULL;
            if (!x || x->dtype != CRUCIBLE_DT_I8 || pt(x, &s, &z) ||
                x->rank != y->rank) {
                snprintf(why, wn, "concat %s: input %u must be i8 per tensor "
                         "of the output's rank", n->name, k);
                return -1;
            }
            sum += x->dims[ax];
        }
        if (sum != y->dims[ax]) {
            snprintf(why, wn, "concat %s: inputs do not add up along the axis",
                     n->name);
            return -1;
        }
        return 0;
    }
    case CRUCIBLE_OP_LEAKY_RELU: {
        float s, alpha;
        int32_t z;
        if (check_i8_io(g, n, why, wn)) return -1;
        if (pt(T(g, n->inputs[0]), &s, &z) || pt(T(g, n->outputs[0]), &s, &z) ||
            !is_q31(n) || attr_f32(n, "alpha", 0.01f, &alpha) ||
            !(alpha >= 0.0f)) {
            snprintf(why, wn, "leaky_relu %s: i8 per tensor with rounding "
                     "\"fixed_q31\" and alpha >= 0 only", n->name);
            return -1;
        }
        return 0;
    }
    case CRUCIBLE_OP_SIGMOID:
    case CRUCIBLE_OP_TANH: {
        float s;
        int32_t z;
        if (check_i8_io(g, n, why, wn)) return -1;
        if (pt(T(g, n->inputs[0]), &s, &z) || pt(T(g, n->outputs[0]), &s, &z) ||
            !is_q31(n)) {
            snprintf(why, wn, "%s %s: i8 per tensor with rounding "
                     "\"fixed_q31\" only", n->op_name, n->name);
            return -1;
        }
        return 0;
    }
    case CRUCIBLE_OP_DEQUANTIZE: {
        float sx;
        int32_t zx;
        const crucible_tensor_view *x = T(g, n->inputs[0]), *y = T(g, n->outputs[0]);
        if (!x || x->dtype != CRUCIBLE_DT_I8 || !is_f32(y) || pt(x, &sx, &zx)) {
            snprintf(why, wn, "dequantize %s: i8 per tensor to f32 only",
                     n->name);
            return -1;
        }
        return 0;
    }
    case CRUCIBLE_OP_QUANTIZE: {
        float sy;
        int32_t zy;
        const crucible_tensor_view *x = T(g, n->inputs[0]), *y = T(g, n->outputs[0]);
        if (!is_f32(x) || !y || y->dtype != CRUCIBLE_DT_I8 || pt(y, &sy, &zy) ||
            !(sy > 0.0f)) {
            snprintf(why, wn, "quantize %s: f32 to i8 per tensor only",
                     n->name);
            return -1;
        }
        return 0;
    }
    case CRUCIBLE_OP_SUB:
    case CRUCIBLE_OP_MUL:
    case CRUCIBLE_OP_ADD: {
        int ia, ic;
        const crucible_tensor_view *y = T(g, n->outputs[0]);
        if (y && y->dtype == CRUCIBLE_DT_I8)
            return check_bin_i8(g, n, why, wn);
        if (n->op != CRUCIBLE_OP_ADD || fadd_mode(g, n, &ia, &ic) < 0) {
            snprintf(why, wn, "add %s: the MCU adds a float constant (scalar, "
                     "same shape, per channel or per last axis) to a float "
                     "tensor only", n->name);
            return -1;
        }
        return 0;
    }
    case CRUCIBLE_OP_RELU:
    case CRUCIBLE_OP_CLIP:
    case CRUCIBLE_OP_MAX_POOL2D:
    case CRUCIBLE_OP_AVG_POOL2D: {
        const crucible_tensor_view *fx = T(g, n->inputs[0]), *fy = T(g, n->outputs[0]);
        if (is_f32(fx) && is_f32(fy) &&
            (n->op == CRUCIBLE_OP_RELU ||
             (n->op == CRUCIBLE_OP_MAX_POOL2D && fx->rank == 4)))
            return 0; /* float relu / max pool (quantiser's float islands) */
        if (check_i8_io(g, n, why, wn)) return -1;
        float s;
        int32_t z;
        if (pt(T(g, n->inputs[0]), &s, &z) || pt(T(g, n->outputs[0]), &s, &z)) {
            snprintf(why, wn, "%s %s: i8 tensors need per-tensor "
                     "quantisation parameters", n->op_name, n->name);
            return -1;
        }
        if (n->op != CRUCIBLE_OP_MAX_POOL2D && !is_q31(n)) {
            snprintf(why, wn, "%s %s: an int8 %s needs rounding "
                     "\"fixed_q31\" (the reference interpreter's int8 "
                     "semantics)", n->op_name, n->name, n->op_name);
            return -1;
        }
        if (n->op == CRUCIBLE_OP_MAX_POOL2D || n->op == CRUCIBLE_OP_AVG_POOL2D) {
            const crucible_tensor_view *x = T(g, n->inputs[0]);
            if (x->rank != 4) {
                snprintf(why, wn, "%s %s: input must be rank 4", n->op_name,
                         n->name);
                return -1;
            }
        }
        return 0;
    }
    case CRUCIBLE_OP_RESHAPE: {
        const crucible_tensor_view *x = T(g, n->inputs[0]), *y = T(g, n->outputs[0]);
        if (!x || !y || (x->dtype != CRUCIBLE_DT_I8 && !is_f32(x)) ||
            x->dtype != y->dtype || numel(x) != numel(y)) {
            snprintf(why, wn, "reshape %s: only i8 and f32 tensors run on "
                     "the MCU", n->name);
            return -1;
        }
        return 0;
    }
    case CRUCIBLE_OP_TRANSPOSE: {
        const crucible_tensor_view *x = T(g, n->inputs[0]);
        const crucible_attr_view *a = crucible_node_attr(n, "perm");
        if (check_i8_io(g, n, why, wn)) return -1;
        if (x->rank < 1 || x->rank > 4 || !a || a->type != CRUCIBLE_ATTR_INTS ||
            a->count != (uint32_t)x->rank) {
            snprintf(why, wn, "transpose %s: needs rank 1..4 and a perm of "
                     "that length", n->name);
            return -1;
        }
        uint32_t seen = 0;
        for (uint32_t k = 0; k < a->count; k++) {
            if (a->ints[k] < 0 || a->ints[k] >= x->rank ||
                (seen >> a->ints[k]) & 1u) {
                snprintf(why, wn, "transpose %s: perm is not a permutation",
                         n->name);
                return -1;
            }
            seen |= 1u << a->ints[k];
        }
        return 0;
    }
    case CRUCIBLE_OP_SOFTMAX: {
        float si, so, beta;
        int32_t zi, zo, m, sh, dm;
        if (check_i8_io(g, n, why, wn)) return -1;
        if (pt(T(g, n->inputs[0]), &si, &zi) ||
            pt(T(g, n->outputs[0]), &so, &zo) ||
            attr_f32(n, "beta", 1.0f, &beta)) {
            snprintf(why, wn, "softmax %s: i8 tensors need per-tensor "
                     "parameters (and beta a number)", n->name);
            return -1;
        }
        if (zo != -128 || fabs((double)so - 1.0 / 256) > 0.001 / 256) {
            snprintf(why, wn, "softmax %s: the int8 softmax writes scale "
                     "1/256 and zero point -128", n->name);
            return -1;
        }
        if (softmax_params((double)beta, (double)si, &m, &sh, &dm)) {
            snprintf(why, wn, "softmax %s: beta * input scale is too small "
                     "for the int8 softmax", n->name);
            return -1;
        }
        return 0;
    }
    default:
        snprintf(why, wn, "op %s has no MCU kernel (supported: integer "
                 "dense/conv2d + requantize, relu, clip, max_pool2d, "
                 "avg_pool2d, requantize, reshape, transpose, softmax, "
                 "sigmoid, tanh, leaky_relu, add, sub, mul, concat; float "
                 "dequantize / "
                 "add / relu / max_pool2d / quantize islands)",
                 n->op_name);
        return -1;
    }
}

static int graph_io_ok(const crucible_graph_view *g, char *why, size_t wn)
{
    if (g->n_inputs != 1 || g->n_outputs != 1) {
        snprintf(why, wn, "the MCU API takes one input and gives one output "
                 "(the graph has %u and %u)", g->n_inputs, g->n_outputs);
        return -1;
    }
    const crucible_tensor_view *x = T(g, g->inputs[0]), *y = T(g, g->outputs[0]);
    if (!x || !y || x->dtype != CRUCIBLE_DT_I8 ||
        (y->dtype != CRUCIBLE_DT_I8 && !is_f32(y)) || !numel(x) || !numel(y)) {
        snprintf(why, wn, "graph input must be i8 and the output i8 or f32, "
                 "with known shapes (quantise with --io int8)");
        return -1;
    }
    if (g->inputs[0] == g->outputs[0]) {
        snprintf(why, wn, "the graph input is its output");
        return -1;
    }
    return 0;
}

static step *add_step(lowered *L)
{
    if (L->n == L->cap) {
        uint32_t nc = L->cap ? L->cap * 2 : 16;
        step *s = L->h->realloc(L->h, L->steps, L->cap * sizeof(step),
                                nc * sizeof(step));
        if (!s) return NULL;
        L->steps = s;
        L->cap = nc;
    }
    step *s = &L->steps[L->n++];
    memset(s, 0, sizeof *s);
    s->act_node = UINT32_MAX;
    s->in2 = -1;
    return s;
}

static int alloc_mults(lowered *L, step *s, uint32_t cnt)
{
    s->cnt = cnt;
    s->mult = crucible_alloc(L->h, cnt * 4);
    s->shift = crucible_alloc(L->h, cnt * 4);
    return s->mult && s->shift ? 0 : -1;
}

static int lower(const crucible_host *h, const crucible_graph_view *g,
                 lowered *L, char *why, size_t wn)
{
    memset(L, 0, sizeof *L);
    L->h = h;
    if (graph_io_ok(g, why, wn)) return CRUCIBLE_E_UNSUPPORTED;
    uint8_t *done = crucible_alloc(h, g->n_nodes + 1);
    if (!done) return CRUCIBLE_E_NOMEM;
    memset(done, 0, g->n_nodes + 1);
    int rc = CRUCIBLE_OK;
    for (uint32_t ni = 0; ni < g->n_nodes && !rc; ni++) {
        if (done[ni]) continue;
        const crucible_node_view *n = g->nodes[ni];
        if (node_supported(g, ni, why, wn)) {
            rc = CRUCIBLE_E_UNSUPPORTED;
            break;
        }
        step *s = add_step(L);
        if (!s) {
            rc = CRUCIBLE_E_NOMEM;
            break;
        }
        s->node = ni;
        s->in = n->inputs[0];
        s->out = n->outputs[0];
        done[ni] = 1;
        float sx = 1, sy = 1;
        int32_t zx = 0, zy = 0;
        if (n->op == CRUCIBLE_OP_DENSE || n->op == CRUCIBLE_OP_CONV2D) {
            uint32_t rq, act;
            check_product(g, ni, &rq, &act, why, wn);
            const crucible_node_view *r = g->nodes[rq];
            const crucible_tensor_view *x = T(g, n->inputs[0]),
                                       *w = T(g, n->inputs[1]),
                                       *acc = T(g, n->outputs[0]),
                                       *y = T(g, r->outputs[0]);
            pt(x, &sx, &zx);
            pt(y, &sy, &zy);
            s->kind = n->op == CRUCIBLE_OP_DENSE ? ST_FC : ST_CONV;
            s->rq_node = rq;
            done[rq] = 1;
            s->w = n->inputs[1];
            s->b = n->n_inputs > 2 ? n->inputs[2] : -1;
            s->wfmt = wfmt_of(w->dtype);
            s->zin = zx;
            s->zout = zy;
            if (act_range(g, r, sy, zy, &s->lo, &s->hi, why, wn)) {
                rc = CRUCIBLE_E_UNSUPPORTED;
                break;
            }
            s->out = r->outputs[0];
            if (act != UINT32_MAX) {
                int32_t alo, ahi;
                if (!act_range(g, g->nodes[act], sy, zy, &alo, &ahi, why, wn)) {
                    if (alo > s->lo) s->lo = alo;
                    if (ahi < s->hi) s->hi = ahi;
                    if (s->lo > s->hi) s->lo = s->hi;
                    s->act_node = act;
                    done[act] = 1;
                    s->out = g->nodes[act]->outputs[0];
                }
            }
            uint32_t cnt = acc->quant_count;
            if (alloc_mults(L, s, cnt)) {
                rc = CRUCIBLE_E_NOMEM;
                break;
            }
            for (uint32_t c = 0; c < cnt; c++) {
                double v = (double)sx *
                           (double)w->scales[w->quant_count > 1 ? c : 0];
                if ((float)v != acc->scales[c]) {
                    snprintf(why, wn, "accumulator %s: scale %u is %.9g, but "
                             "x_scale * w_scale of %s is %.9g", acc->name, c,
                             (double)acc->scales[c], n->name,
                             (double)(float)v);
                    rc = CRUCIBLE_E_UNSUPPORTED;
                    break;
                }
                if (q_multiplier(v / (double)sy, &s->mult[c], &s->shift[c])) {
                    snprintf(why, wn, "requantize %s: factor %g is not a Q31 "
                             "multiplier", r->name, v / (double)sy);
                    rc = CRUCIBLE_E_UNSUPPORTED;
                    break;
                }
            }
            if (rc) break;
            L->const_bytes += w->data_bytes + cnt * 8;
            if (s->b >= 0) L->const_bytes += T(g, s->b)->data_bytes;
            if (s->kind == ST_FC) {
                int64_t K = w->dims[1], M = w->dims[0];
                int64_t N = (int64_t)(numel(x) / (uint64_t)K);
                if (w->rank != 2 || N * K != (int64_t)numel(x)) {
                    snprintf(why, wn, "dense %s: input does not flatten to "
                             "[N, %lld]", n->name, (long long)K);
                    rc = CRUCIBLE_E_UNSUPPORTED;
                    break;
                }
                s->p[0] = N, s->p[1] = K, s->p[2] = M;
                s->macs = (uint64_t)(N * K * M);
                /* int8 weights: bias - zp * sum(w) as the bias, zero point
                 * 0 (the same value mod 2^32; the kernel skips the zero
                 * point term) */
                if (s->wfmt == 0 && s->zin &&
                    (s->b < 0 || T(g, s->b)->data_bytes == (uint64_t)M * 4)) {
                    s->fold = 1;
                    if (s->b < 0) L->const_bytes += (uint64_t)M * 4;
                }
            } else {
                static const int64_t one[2] = {1, 1}, zero[4] = {0, 0, 0, 0};
                int64_t st[2], pd[4], dl[2], gr = crucible_node_attr_int(n, "group", 1);
                if (x->rank != 4 || w->rank != 4 ||
                    get_ints(n, "strides", 2, st, one) ||
                    get_ints(n, "pads", 4, pd, zero) ||
                    get_ints(n, "dilations", 2, dl, one) || gr < 1) {
                    snprintf(why, wn, "conv2d %s: bad attributes or ranks",
                             n->name);
                    rc = CRUCIBLE_E_UNSUPPORTED;
                    break;
                }
                const int64_t *xd = x->dims, *wd = w->dims, *yd = acc->dims;
                int64_t v[16] = {xd[0], xd[1], xd[2], xd[3], wd[0], wd[2],
                                 wd[3], gr, st[0], st[1], dl[0], dl[1],
                                 pd[0], pd[1], pd[2], pd[3]};
                memcpy(s->p, v, sizeof v);
                s->macs = (uint64_t)(yd[0] * yd[1] * yd[2] * yd[3] * wd[1] *
                                     wd[2] * wd[3]);
            }
            L->macs += s->macs;
            continue;
        }
        pt(T(g, n->inputs[0]), &sx, &zx);
        pt(T(g, n->outputs[0]), &sy, &zy);
        s->zin = zx;
        s->zout = zy;
        const int fl = is_f32(T(g, s->out)) && n->op != CRUCIBLE_OP_DEQUANTIZE;
        if (fl && n->op == CRUCIBLE_OP_RELU) {
            s->kind = ST_FRELU;
            continue;
        }
        switch (n->op) {
        case CRUCIBLE_OP_LEAKY_RELU: {
            /* an elementwise function of one int8: a table of the
             * interpreter's q_leaky_relu over all 256 inputs */
            float alpha = 0.01f;
            int32_t mi, shi, ma, sha;
            attr_f32(n, "alpha", 0.01f, &alpha);
            if (q_multiplier((double)sx / (double)sy, &mi, &shi) ||
                q_multiplier((double)sx * (double)alpha / (double)sy, &ma, &sha)) {
                snprintf(why, wn, "leaky_relu %s: a factor is not a Q31 "
                         "multiplier", n->name);
                rc = CRUCIBLE_E_UNSUPPORTED;
                break;
            }
            for (int32_t v = -128; v <= 127; v++) {
                int32_t dd = v - zx;
                int32_t r = zy + (dd >= 0 ? crk_mbqm(dd, mi, shi)
                                          : crk_mbqm(dd, ma, sha));
                s->table[v + 128] = (int8_t)(r < -128 ? -128 : r > 127 ? 127 : r);
            }
            s->kind = ST_LUT;
            L->const_bytes += 256;
            break;
        }
        case CRUCIBLE_OP_CONCAT: {
            const crucible_tensor_view *y = T(g, s->out);
            int64_t ax = crucible_node_attr_int(n, "axis", 0);
            if (ax < 0) ax += y->rank;
            int64_t outer = 1, inner = 1;
            for (int64_t k = 0; k < ax; k++) outer *= y->dims[k];
            for (int64_t k = ax + 1; k < y->rank; k++) inner *= y->dims[k];
            s->kind = ST_CONCAT;
            s->p[0] = n->n_inputs;
            s->p[9] = outer, s->p[10] = inner, s->p[11] = ax;
            if (alloc_mults(L, s, n->n_inputs)) {
                rc = CRUCIBLE_E_NOMEM;
                break;
            }
            for (uint32_t k = 0; k < n->n_inputs && !rc; k++) {
                const crucible_tensor_view *x = T(g, n->inputs[k]);
                float sk = 1.0f;
                int32_t zk = 0;
                pt(x, &sk, &zk);
                s->p[1 + k] = n->inputs[k];
                s->mult[k] = s->shift[k] = 0;
                if ((sk != sy || zk != zy) &&
                    q_multiplier((double)sk / (double)sy, &s->mult[k],
                                 &s->shift[k])) {
                    snprintf(why, wn, "concat %s: rescaling factor of input "
                             "%u is not a Q31 multiplier", n->name, k);
                    rc = CRUCIBLE_E_UNSUPPORTED;
                }
                if (x->data) L->const_bytes += x->data_bytes;
            }
            break;
        }
        case CRUCIBLE_OP_SIGMOID:
        case CRUCIBLE_OP_TANH: {
            /* the 256-entry table, computed as host/interp_q.c's
             * interp_q_lut (same f32 expressions, same libm) */
            const float inv = 1.0f / sy;
            for (int32_t v = -128; v <= 127; v++) {
                const float deq = sx * (float)(v - zx);
                const float tr = n->op == CRUCIBLE_OP_TANH
                                     ? tanhf(deq) : 1.0f / (1.0f + expf(-deq));
                const float r = roundf(tr * inv);
                const double q = (double)(r + (float)zy);
                s->table[v + 128] = (int8_t)(q < -128.0 ? -128
                                             : q > 127.0 ? 127 : (int32_t)q);
            }
            s->kind = ST_LUT;
            L->const_bytes += 256;
            break;
        }
        case CRUCIBLE_OP_DEQUANTIZE:
            s->kind = ST_DEQ;
            s->fs = sx;
            break;
        case CRUCIBLE_OP_QUANTIZE:
            s->kind = ST_QUANT;
            s->fs = sy;
            break;
        case CRUCIBLE_OP_SUB:
        case CRUCIBLE_OP_MUL:
        case CRUCIBLE_OP_ADD:
            if (!fl) { /* int8: the interpreter's q_binary parameters */
                const crucible_tensor_view *ta = T(g, n->inputs[0]),
                                           *tb = T(g, n->inputs[1]);
                float sa = 1.0f, sb = 1.0f;
                int32_t za = 0, zb = 0, mm[3], ss[3];
                pt(ta, &sa, &za);
                pt(tb, &sb, &zb);
                s->kind = ST_BIN;
                s->in = n->inputs[0];
                s->in2 = n->inputs[1];
                s->zin = za;
                s->p[0] = zb;
                if (act_range(g, n, sy, zy, &s->lo, &s->hi, why, wn)) {
                    rc = CRUCIBLE_E_UNSUPPORTED;
                    break;
                }
                int bad;
                if (n->op == CRUCIBLE_OP_MUL) {
                    bad = q_multiplier((double)sa * (double)sb / (double)sy,
                                       &mm[2], &ss[2]);
                    mm[0] = mm[1] = ss[0] = ss[1] = 0;
                } else {
                    const double m2 = 2.0 * (double)(sa > sb ? sa : sb);
                    bad = q_multiplier((double)sa / m2, &mm[0], &ss[0]) ||
                          q_multiplier((double)sb / m2, &mm[1], &ss[1]) ||
                          q_multiplier(m2 / ((double)(1 << 20) * (double)sy),
                                       &mm[2], &ss[2]);
                }
                if (bad) {
                    snprintf(why, wn, "%s %s: a rescaling factor is not a Q31 "
                             "multiplier", n->op_name, n->name);
                    rc = CRUCIBLE_E_UNSUPPORTED;
                    break;
                }
                for (int k = 0; k < 3; k++) s->p[1 + k] = mm[k], s->p[4 + k] = ss[k];
                for (int k = 0; k < 2; k++)
                    if (T(g, n->inputs[k])->data)
                        L->const_bytes += T(g, n->inputs[k])->data_bytes;
                break;
            }
            if (n->op != CRUCIBLE_OP_ADD) {
                rc = CRUCIBLE_E_UNSUPPORTED;
                break;
            }
            /* fall through: a float add of a constant */
            {
            int ia = 0, ic = 1;
            int mode = fadd_mode(g, n, &ia, &ic);
            const crucible_tensor_view *x = T(g, n->inputs[ia]);
            s->kind = ST_FADD;
            s->in = n->inputs[ia];
            s->w = n->inputs[ic];
            s->p[0] = mode;
            s->p[1] = (int64_t)numel(T(g, s->w));
            s->p[2] = mode == 2 ? (int64_t)(numel(x) / (uint64_t)x->dims[0] /
                                            (uint64_t)x->dims[1]) : 1;
            s->p[3] = mode == 2 ? x->dims[0] : (int64_t)(numel(x) /
                                                          (uint64_t)s->p[1]);
            L->const_bytes += T(g, s->w)->data_bytes;
            break;
            }
        case CRUCIBLE_OP_RESHAPE:
            s->kind = ST_RESHAPE;
            break;
        case CRUCIBLE_OP_TRANSPOSE: {
            const crucible_tensor_view *x = T(g, s->in);
            const crucible_attr_view *a = crucible_node_attr(n, "perm");
            s->kind = ST_TRANSPOSE;
            s->p[0] = x->rank;
            for (int32_t k = 0; k < x->rank; k++) {
                s->p[1 + k] = x->dims[k];
                s->p[5 + k] = a->ints[k];
            }
            break;
        }
        case CRUCIBLE_OP_SOFTMAX: {
            const crucible_tensor_view *x = T(g, s->in);
            float beta = 1.0f;
            int32_t m = 0, sh = 0, dm = 0;
            attr_f32(n, "beta", 1.0f, &beta);
            softmax_params((double)beta, (double)sx, &m, &sh, &dm);
            int64_t ax = crucible_node_attr_int(n, "axis", -1);
            if (ax < 0) ax += x->rank;
            if (ax < 0 || ax >= x->rank) {
                snprintf(why, wn, "softmax %s: axis out of range", n->name);
                rc = CRUCIBLE_E_UNSUPPORTED;
                break;
            }
            int64_t outer = 1, inner = 1;
            for (int64_t k = 0; k < ax; k++) outer *= x->dims[k];
            for (int64_t k = ax + 1; k < x->rank; k++) inner *= x->dims[k];
            s->kind = ST_SOFTMAX;
            s->p[0] = outer, s->p[1] = x->dims[ax], s->p[2] = inner;
            s->p[3] = m, s->p[4] = sh, s->p[5] = dm;
            break;
        }
        case CRUCIBLE_OP_RELU:
        case CRUCIBLE_OP_CLIP:
        case CRUCIBLE_OP_REQUANTIZE:
            if (act_range(g, n, sy, zy, &s->lo, &s->hi, why, wn)) {
                rc = CRUCIBLE_E_UNSUPPORTED;
                break;
            }
            if (n->op != CRUCIBLE_OP_REQUANTIZE && sx == sy && zx == zy) {
                s->kind = ST_CLAMP;
                break;
            }
            s->kind = ST_RQ8;
            if (alloc_mults(L, s, 1)) {
                rc = CRUCIBLE_E_NOMEM;
                break;
            }
            if (q_multiplier((double)sx / (double)sy, s->mult, s->shift)) {
                snprintf(why, wn, "%s %s: rescaling factor is not a Q31 "
                         "multiplier", n->op_name, n->name);
                rc = CRUCIBLE_E_UNSUPPORTED;
            }
            break;
        case CRUCIBLE_OP_MAX_POOL2D:
        case CRUCIBLE_OP_AVG_POOL2D: {
            static const int64_t one[2] = {1, 1}, zero[4] = {0, 0, 0, 0};
            int64_t k[2], st[2], pd[4], dl[2];
            int64_t cip = crucible_node_attr_int(n, "count_include_pad", 0);
            if (!crucible_node_attr(n, "kernel") ||
                get_ints(n, "kernel", 2, k, one) ||
                get_ints(n, "strides", 2, st, one) ||
                get_ints(n, "pads", 4, pd, zero) ||
                get_ints(n, "dilations", 2, dl, one)) {
                snprintf(why, wn, "%s %s: bad attributes", n->op_name, n->name);
                rc = CRUCIBLE_E_UNSUPPORTED;
                break;
            }
            if (act_range(g, n, sy, zy, &s->lo, &s->hi, why, wn)) {
                rc = CRUCIBLE_E_UNSUPPORTED;
                break;
            }
            if (sx != sy || zx != zy) {
                snprintf(why, wn, "%s %s: int8 pooling keeps the scale and "
                         "zero point", n->op_name, n->name);
                rc = CRUCIBLE_E_UNSUPPORTED;
                break;
            }
            const int64_t *xd = T(g, s->in)->dims, *yd = T(g, s->out)->dims;
            int64_t pb = pd[2], pr = pd[3];
            int64_t nb = (yd[2] - 1) * st[0] + (k[0] - 1) * dl[0] + 1 - xd[2] - pd[0];
            int64_t nr = (yd[3] - 1) * st[1] + (k[1] - 1) * dl[1] + 1 - xd[3] - pd[1];
            int grown = 0;
            if (nb > pb) pb = nb, grown = 1;
            if (nr > pr) pr = nr, grown = 1;
            if (grown && n->op == CRUCIBLE_OP_AVG_POOL2D && cip) {
                snprintf(why, wn, "avg_pool2d %s: ceil_mode with "
                         "count_include_pad", n->name);
                rc = CRUCIBLE_E_UNSUPPORTED;
                break;
            }
            s->kind = n->op == CRUCIBLE_OP_MAX_POOL2D
                          ? (fl ? ST_FMAXPOOL : ST_MAXPOOL) : ST_AVGPOOL;
            int64_t v[16] = {xd[0] * xd[1], xd[2], xd[3], k[0], k[1], st[0],
                             st[1], dl[0], dl[1], pd[0], pd[1], pb, pr, cip,
                             0, 0};
            memcpy(s->p, v, sizeof v);
            break;
        }
        default:
            rc = CRUCIBLE_E_UNSUPPORTED;
            break;
        }
    }
    crucible_free(h, done, g->n_nodes + 1);
    if (rc) lowered_free(L);
    return rc;
}

/* ---- arena plan -------------------------------------------------------- */
enum { B_ARENA = 0, B_IN, B_OUT };

typedef struct buf {
    int kind;
    uint64_t bytes, off;
    uint32_t def, last;
} buf;

typedef struct plan {
    const crucible_host *h;
    int32_t *buf_of; /* per tensor: buffer index, -1 none */
    buf *bufs;
    uint32_t nb;
    uint32_t n_tensors;
    uint64_t arena, naive, peak;
} plan;

static void plan_free(plan *P)
{
    if (P->buf_of) crucible_free(P->h, P->buf_of, P->n_tensors * 4);
    if (P->bufs) crucible_free(P->h, P->bufs, (P->n_tensors + 2) * sizeof(buf));
}

static uint64_t al4(uint64_t v) { return (v + 3) & ~(uint64_t)3; }

static int make_plan(const crucible_host *h, const crucible_graph_view *g,
                     const lowered *L, plan *P)
{
    memset(P, 0, sizeof *P);
    P->h = h;
    P->n_tensors = g->n_tensors;
    P->buf_of = crucible_alloc(h, g->n_tensors * 4);
    P->bufs = crucible_alloc(h, (g->n_tensors + 2) * sizeof(buf));
    if (!P->buf_of || !P->bufs) return CRUCIBLE_E_NOMEM;
    for (uint32_t i = 0; i < g->n_tensors; i++) P->buf_of[i] = -1;
    memset(P->bufs, 0, (g->n_tensors + 2) * sizeof(buf));
    int32_t ti = g->inputs[0], to = g->outputs[0];
    P->bufs[0].kind = B_IN;
    P->buf_of[ti] = 0;
    P->bufs[1].kind = B_OUT;
    P->nb = 2;
    /* naive: every intermediate (non-constant, non-boundary) tensor */
    for (uint32_t i = 0; i < g->n_tensors; i++) {
        const crucible_tensor_view *t = g->tensors[i];
        if (t->data || (int32_t)i == ti || (int32_t)i == to ||
            producer(g, (int32_t)i) < 0) /* dead tensors: not in any plan */
            continue;
        uint32_t bits = t->dtype == CRUCIBLE_DT_I32 || is_f32(t) ? 32 : 8;
        P->naive += numel(t) * bits / 8;
    }
    for (uint32_t si = 0; si < L->n; si++) {
        const step *s = &L->steps[si];
        int32_t bi = s->in >= 0 ? P->buf_of[s->in] : -1;
        if (bi >= 0 && P->bufs[bi].last < si) P->bufs[bi].last = si;
        int32_t bi2 = s->in2 >= 0 ? P->buf_of[s->in2] : -1;
        if (bi2 >= 0 && P->bufs[bi2].last < si) P->bufs[bi2].last = si;
        for (int64_t k = 1; s->kind == ST_CONCAT && k <= s->p[0]; k++) {
            int32_t bk = P->buf_of[s->p[k]];
            if (bk >= 0 && P->bufs[bk].last < si) P->bufs[bk].last = si;
        }
        if (s->out == to) {
            P->buf_of[to] = 1;
            continue;
        }
        if (s->kind == ST_RESHAPE && bi >= 0) { /* alias: no copy */
            P->buf_of[s->out] = bi;
            continue;
        }
        buf *b = &P->bufs[P->nb];
        b->kind = B_ARENA;
        b->bytes = numel(T(g, s->out)) * esz(T(g, s->out));
        b->def = b->last = si;
        P->buf_of[s->out] = (int32_t)P->nb++;
    }
    /* greedy offset packing, largest first */
    uint32_t *ord = crucible_alloc(h, P->nb * 4);
    if (!ord) return CRUCIBLE_E_NOMEM;
    uint32_t k = 0;
    for (uint32_t i = 2; i < P->nb; i++) ord[k++] = i;
    for (uint32_t i = 1; i < k; i++)
        for (uint32_t j = i; j > 0 && P->bufs[ord[j]].bytes > P->bufs[ord[j - 1]].bytes; j--) {
            uint32_t t = ord[j];
            ord[j] = ord[j - 1];
            ord[j - 1] = t;
        }
    for (uint32_t i = 0; i < k; i++) {
        buf *b = &P->bufs[ord[i]];
        uint64_t off = 0;
        for (int moved = 1; moved;) {
            moved = 0;
            for (uint32_t j = 0; j < i; j++) {
                const buf *o = &P->bufs[ord[j]];
                if (o->def <= b->last && b->def <= o->last &&
                    o->off < off + b->bytes && off < o->off + o->bytes) {
                    off = al4(o->off + o->bytes);
                    moved = 1;
                }
            }
        }
        b->off = off;
        if (off + b->bytes > P->arena) P->arena = off + b->bytes;
    }
    crucible_free(h, ord, P->nb * 4);
    for (uint32_t si = 0; si < L->n; si++) {
        uint64_t live = 0;
        for (uint32_t i = 2; i < P->nb; i++)
            if (P->bufs[i].def <= si && si <= P->bufs[i].last)
                live += P->bufs[i].bytes;
        if (live > P->peak) P->peak = live;
    }
    P->arena = al4(P->arena);
    return CRUCIBLE_OK;
}

int mcugen_plan(const crucible_host *h, const crucible_graph_view *g,
                mcugen_plan_info *info, char *why, size_t why_len)
{
    lowered L;
    plan P;
    memset(info, 0, sizeof *info);
    int rc = lower(h, g, &L, why, why_len);
    if (rc) return rc;
    rc = make_plan(h, g, &L, &P);
    if (!rc) {
        info->arena_bytes = P.arena;
        info->peak_live_bytes = P.peak;
        info->naive_bytes = P.naive;
        info->const_bytes = L.const_bytes;
        info->steps = L.n;
        info->macs = L.macs;
    }
    plan_free(&P);
    lowered_free(&L);
    return rc;
}

/* ---- query -------------------------------------------------------------- */
#define FITS(s, field)                                                      \
    ((size_t)(s)->size >= offsetof(crucible_support, field) +               \
                              sizeof((s)->field))

/* Runtime code estimate (kernels used + harness), bytes. */
#define CODE_BASE 6144
#define CODE_PER_STEP 48

int mcugen_query(const mcugen_target *t, const crucible_query_ctx *ctx,
                 const crucible_graph_view *g, uint32_t node,
                 crucible_support *out)
{
    char why[256];
    if (!g || !out || node >= g->n_nodes) return CRUCIBLE_E_INVALID;
    const crucible_board *b = ctx ? ctx->board : NULL;
    int ok = !graph_io_ok(g, why, sizeof why) &&
             !node_supported(g, node, why, sizeof why);
    /* whole model: constants + code vs flash, peak activations vs RAM */
    int64_t flash = CODE_BASE, peak = 0, mine_f = 0, mine_r = 0;
    for (uint32_t i = 0; i < g->n_tensors; i++) {
        const crucible_tensor_view *tv = g->tensors[i];
        if (tv->data) flash += (int64_t)tv->data_bytes;
        if (tv->data && tv->quant_count) flash += 8 * (int64_t)tv->quant_count;
    }
    flash += CODE_PER_STEP * (int64_t)g->n_nodes;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const crucible_node_view *n = g->nodes[i];
        int64_t live = 0;
        for (uint32_t k = 0; k < n->n_inputs; k++) {
            const crucible_tensor_view *tv = T(g, n->inputs[k]);
            if (tv && !tv->data) live += (int64_t)(numel(tv) * esz(tv));
            if (tv && tv->data && i == node) mine_f += (int64_t)tv->data_bytes;
        }
        const crucible_tensor_view *o = T(g, n->outputs[0]);
        if (o && (o->dtype == CRUCIBLE_DT_I8 || is_f32(o)))
            live += (int64_t)(numel(o) * esz(o));
        if (live > peak) peak = live;
        if (i == node) mine_r = live;
    }
    int64_t stack = bget_u(t, b, "link", "stack_bytes", 2048);
    int64_t ram = peak + (stack > 0 ? stack : 2048) + 256;
    int64_t fl = bget_u(t, b, "board", "flash_bytes", -1),
            rm = bget_u(t, b, "board", "ram_bytes", -1);
    if (ok && fl > 0 && flash > fl) {
        snprintf(why, sizeof why, "the model needs about %lld bytes of flash; "
                 "board %s has %lld", (long long)flash,
                 b && b->name ? b->name : "(default)", (long long)fl);
        ok = 0;
    } else if (ok && rm > 0 && ram > rm) {
        snprintf(why, sizeof why, "the model needs about %lld bytes of RAM "
                 "(activations %lld + stack %lld + 256); board %s has %lld",
                 (long long)ram, (long long)peak, (long long)stack,
                 b && b->name ? b->name : "(default)", (long long)rm);
        ok = 0;
    }
    if (FITS(out, level))
        out->level = ok ? CRUCIBLE_SUPPORT_YES : CRUCIBLE_SUPPORT_NO;
    if (FITS(out, flash_bytes)) out->flash_bytes = mine_f + CODE_PER_STEP;
    if (FITS(out, ram_bytes)) out->ram_bytes = mine_r;
    if (FITS(out, reason)) {
        if (ok)
            snprintf(out->reason, sizeof out->reason, "model total: flash "
                     "~%lld of %lld, RAM ~%lld of %lld bytes", (long long)flash,
                     (long long)fl, (long long)ram, (long long)rm);
        else
            snprintf(out->reason, sizeof out->reason, "%s", why);
    }
    return CRUCIBLE_OK;
}

/* ---- emission ------------------------------------------------------------- */
static void emit_bytes(sbuf *b, const char *decl, const void *data, size_t n)
{
    const uint8_t *p = data;
    sb_printf(b, "%s[%zu] __attribute__((aligned(4))) = {", decl, n ? n : 1);
    for (size_t i = 0; i < n; i++)
        sb_printf(b, "%s%d,", i % 24 ? "" : "\n    ", (int)(int8_t)p[i]);
    if (!n) sb_puts(b, "0");
    sb_puts(b, "\n};\n");
}

static void emit_i32(sbuf *b, const char *decl, const int32_t *v, size_t n)
{
    sb_printf(b, "%s[%zu] = {", decl, n);
    for (size_t i = 0; i < n; i++)
        sb_printf(b, "%s%ld,", i % 8 ? " " : "\n    ", (long)v[i]);
    sb_puts(b, "\n};\n");
}

static void buf_expr(const plan *P, int32_t t, char *dst, size_t n)
{
    int32_t bi = P->buf_of[t];
    if (bi < 0) { /* a constant operand (int8 add / sub / mul) */
        snprintf(dst, n, "k%d", (int)t);
        return;
    }
    const buf *b = &P->bufs[bi];
    if (b->kind == B_IN) snprintf(dst, n, "in");
    else if (b->kind == B_OUT) snprintf(dst, n, "out");
    else snprintf(dst, n, "(arena + %llu)", (unsigned long long)b->off);
}

static const char *const wfmt_name[] = {"CRK_W_I8", "CRK_W_I4",
                                        "CRK_W_TERNARY", "CRK_W_BINARY"};

static void c_comment_name(sbuf *b, const char *s)
{
    for (; *s; s++) sb_putn(b, (*s == '*' || *s == '/' || *s == '\n') ? "_" : s, 1);
}

static int gen_model(const crucible_graph_view *g, const lowered *L,
                     const plan *P, sbuf *mc, sbuf *mh)
{
    const crucible_tensor_view *x = T(g, g->inputs[0]), *y = T(g, g->outputs[0]);
    float sx = 0, sy = 0;
    int32_t zx = 0, zy = 0;
    int qx = !pt(x, &sx, &zx), qy = !pt(y, &sy, &zy);
    sb_puts(mh, "/* model.h - generated by crucible mcugen " MCUGEN_VERSION
                ". Do not edit. */\n#ifndef CRUCIBLE_MODEL_H\n#define "
                "CRUCIBLE_MODEL_H\n#include <stdint.h>\n\n");
    const int fout = is_f32(y);
    const char *otype = fout ? "float" : "int8_t";
    sb_printf(mh, "#define MODEL_INPUT_SIZE %llu\n#define MODEL_OUTPUT_SIZE %llu\n"
              "#define MODEL_OUTPUT_BYTES %llu\n#define MODEL_ARENA_BYTES %llu\n"
              "typedef %s model_output_t; /* %s */\n",
              (unsigned long long)numel(x), (unsigned long long)numel(y),
              (unsigned long long)(numel(y) * esz(y)),
              (unsigned long long)P->arena, otype,
              fout ? "the graph's output stays float (the quantiser left it "
                     "so); soft-float in the float nodes" : "int8 output");
    (void)x;
    sb_printf(mh, "/* quantisation of the boundary tensors: real = scale * "
              "(q - zero_point) (macros only: the model itself uses no float) */\n"
              "#define MODEL_INPUT_ZERO_POINT %d\n#define MODEL_INPUT_SCALE %.9gf\n"
              "#define MODEL_OUTPUT_ZERO_POINT %d\n#define MODEL_OUTPUT_SCALE %.9gf\n",
              (int)zx, qx ? (double)sx : 1.0, (int)zy, qy ? (double)sy : 1.0);
    sb_puts(mh, "\n/* Runs one inference: in[MODEL_INPUT_SIZE] -> "
                "out[MODEL_OUTPUT_SIZE] (row-major).\n * Returns 0, or -1 "
                "if a kernel refused its parameters. Not reentrant (one static "
                "arena). */\nint model_run(const int8_t *in, model_output_t *out);\n\n"
                "#endif\n");

    sb_puts(mc, "/* model.c - generated by crucible mcugen " MCUGEN_VERSION
                ". Do not edit.\n * Graph: ");
    c_comment_name(mc, g->name ? g->name : "(unnamed)");
    sb_printf(mc, "\n * Arena %llu bytes (liveness + offset packing; peak live "
              "%llu, naive sum of all intermediate tensors %llu). */\n",
              (unsigned long long)P->arena, (unsigned long long)P->peak,
              (unsigned long long)P->naive);
    sb_puts(mc, "#include \"model.h\"\n#include <crucible/kernels.h>\n\n");
    int uses[8] = {0};
    for (uint32_t i = 0; i < L->n; i++)
        if (L->steps[i].kind >= ST_DEQ && L->steps[i].kind <= ST_FMAXPOOL)
            uses[L->steps[i].kind - ST_DEQ] = 1;
    if (uses[0])
        sb_puts(mc, "/* float islands (nodes the quantiser left in float), with the\n"
                " * reference interpreter's f32 arithmetic */\n"
                "static void f_deq(const int8_t *x, float *y, uint32_t n, float s, int32_t zp)\n"
                "{\n    uint32_t i;\n    for (i = 0; i < n; i++) y[i] = s * (float)((int32_t)x[i] - zp);\n}\n");
    if (uses[1])
        sb_puts(mc, "/* roundf (half away from zero), freestanding */\n"
                "static float f_round(float v)\n{\n"
                "    float a = v < 0.0f ? -v : v, f;\n"
                "    if (!(a < 8388608.0f)) return v; /* integral, inf or NaN */\n"
                "    f = (float)(int32_t)a;\n    if (a - f >= 0.5f) f += 1.0f;\n"
                "    return v < 0.0f ? -f : f;\n}\n"
                "static void f_quant(const float *x, int8_t *y, uint32_t n, float s, int32_t zp)\n"
                "{\n    uint32_t i;\n    for (i = 0; i < n; i++) {\n"
                "        float r = f_round(x[i] / s);\n        int32_t q;\n"
                "        if (r != r) q = zp;\n        else if (r < -1.0e6f) q = -128;\n"
                "        else if (r > 1.0e6f) q = 127;\n        else q = (int32_t)r + zp;\n"
                "        y[i] = (int8_t)(q < -128 ? -128 : q > 127 ? 127 : q);\n    }\n}\n");
    if (uses[2])
        sb_puts(mc, "typedef union { uint32_t u; float f; } fbits;\n"
                "/* y = x + c; c: mode 0 scalar, 1 same shape, 2 per channel\n"
                " * (outer x C x plane), 3 per last axis (outer x C) */\n"
                "static void f_add(const float *x, const fbits *c, float *y, int mode,\n"
                "                  uint32_t C, uint32_t plane, uint32_t outer)\n{\n"
                "    uint32_t o, k, j, i = 0;\n"
                "    if (mode == 0) { for (j = 0; j < outer; j++, i++) y[i] = x[i] + c[0].f; return; }\n"
                "    if (mode == 1) { for (j = 0; j < C; j++) y[j] = x[j] + c[j].f; return; }\n"
                "    for (o = 0; o < outer; o++)\n        for (k = 0; k < C; k++)\n"
                "            for (j = 0; j < plane; j++, i++) y[i] = x[i] + c[k].f;\n}\n");
    if (uses[3])
        sb_puts(mc, "static void f_relu(const float *x, float *y, uint32_t n)\n{\n"
                "    uint32_t i;\n    for (i = 0; i < n; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i];\n}\n");
    if (uses[4])
        sb_puts(mc, "/* float max pool: the first tap in the window, then strictly greater */\n"
                "static void f_maxpool(const float *x, float *y, const int32_t *g)\n{\n"
                "    int32_t NC = g[0], H = g[1], W = g[2], KH = g[3], KW = g[4], sh = g[5],\n"
                "            sw = g[6], dh = g[7], dw = g[8], pt = g[9], pl = g[10], OH = g[11],\n"
                "            OW = g[12], c, oh, ow, kh, kw;\n"
                "    for (c = 0; c < NC; c++, x += H * W)\n"
                "        for (oh = 0; oh < OH; oh++)\n"
                "            for (ow = 0; ow < OW; ow++) {\n"
                "                float acc = 0.0f;\n                int first = 1;\n"
                "                for (kh = 0; kh < KH; kh++) {\n"
                "                    int32_t ih = oh * sh - pt + kh * dh;\n"
                "                    if (ih < 0 || ih >= H) continue;\n"
                "                    for (kw = 0; kw < KW; kw++) {\n"
                "                        int32_t iw = ow * sw - pl + kw * dw;\n"
                "                        float v;\n"
                "                        if (iw < 0 || iw >= W) continue;\n"
                "                        v = x[ih * W + iw];\n"
                "                        if (first || v > acc) acc = v;\n                        first = 0;\n"
                "                    }\n                }\n                *y++ = acc;\n            }\n}\n");
    sb_puts(mc, "\n");
    sb_printf(mc, "static int8_t arena[%llu] __attribute__((aligned(4)));\n\n",
              (unsigned long long)(P->arena ? P->arena : 4));
    char d[128];
    for (uint32_t i = 0; i < L->n; i++) {
        const step *s = &L->steps[i];
        if (s->kind == ST_CONCAT) {
            for (int64_t k = 1; k <= s->p[0]; k++) {
                int32_t t = (int32_t)s->p[k];
                const crucible_tensor_view *c = T(g, t);
                int seen = 0;
                if (!c->data) continue;
                for (uint32_t j = 0; j < i && !seen; j++) {
                    const step *q = &L->steps[j];
                    if (q->kind == ST_BIN && (q->in == t || q->in2 == t)) seen = 1;
                    for (int64_t m = 1; q->kind == ST_CONCAT && m <= q->p[0]; m++)
                        if (q->p[m] == t) seen = 1;
                }
                for (int64_t m = 1; m < k; m++)
                    if (s->p[m] == t) seen = 1;
                if (seen) continue;
                snprintf(d, sizeof d, "static const int8_t k%d", (int)t);
                emit_bytes(mc, d, c->data, c->data_bytes);
            }
            continue;
        }
        if (s->kind == ST_LUT) {
            snprintf(d, sizeof d, "static const int8_t t%u", i);
            emit_bytes(mc, d, s->table, 256);
            continue;
        }
        if (s->kind == ST_BIN) {
            for (int k = 0; k < 2; k++) {
                int32_t t = k ? s->in2 : s->in;
                const crucible_tensor_view *c = T(g, t);
                int seen = 0;
                if (!c->data) continue;
                for (uint32_t j = 0; j < i; j++) {
                    const step *q = &L->steps[j];
                    if (q->kind == ST_BIN && (q->in == t || q->in2 == t))
                        seen = 1;
                    for (int64_t m = 1; q->kind == ST_CONCAT && m <= q->p[0]; m++)
                        if (q->p[m] == t) seen = 1;
                }
                if (k == 1 && s->in == t) seen = 1;
                if (seen) continue;
                snprintf(d, sizeof d, "static const int8_t k%d", (int)t);
                emit_bytes(mc, d, c->data, c->data_bytes);
            }
            continue;
        }
        if (s->kind == ST_FADD) {
            const crucible_tensor_view *c = T(g, s->w);
            const uint8_t *cb = c->data;
            sb_printf(mc, "static const fbits c%u[%llu] = {", i,
                      (unsigned long long)numel(c));
            for (uint64_t k = 0; k < numel(c); k++) {
                uint32_t u = (uint32_t)cb[4 * k] | (uint32_t)cb[4 * k + 1] << 8 |
                             (uint32_t)cb[4 * k + 2] << 16 |
                             (uint32_t)cb[4 * k + 3] << 24;
                sb_printf(mc, "%s{0x%08lxu},", k % 6 ? " " : "\n    ",
                          (unsigned long)u);
            }
            sb_puts(mc, "\n};\n");
            continue;
        }
        if (s->kind != ST_FC && s->kind != ST_CONV && s->kind != ST_RQ8) continue;
        sb_puts(mc, "/* ");
        c_comment_name(mc, g->nodes[s->node]->name);
        sb_puts(mc, " */\n");
        if (s->kind != ST_RQ8) {
            const crucible_tensor_view *w = T(g, s->w);
            snprintf(d, sizeof d, "static const int8_t w%u", i);
            emit_bytes(mc, d, w->data, w->data_bytes);
            if (s->fold) {
                size_t M = (size_t)s->p[2], K = (size_t)s->p[1];
                int32_t *tmp = malloc(M * 4 + 4);
                if (!tmp) return -1;
                if (s->b >= 0) memcpy(tmp, T(g, s->b)->data, M * 4);
                else memset(tmp, 0, M * 4);
                const int8_t *wv = w->data;
                for (size_t m = 0; m < M; m++) {
                    uint32_t sw = 0;
                    for (size_t k = 0; k < K; k++)
                        sw += (uint32_t)(int32_t)wv[m * K + k];
                    uint32_t v = (uint32_t)tmp[m] - (uint32_t)s->zin * sw;
                    tmp[m] = v & 0x80000000u ? -(int32_t)(~v) - 1 : (int32_t)v;
                }
                snprintf(d, sizeof d, "static const int32_t b%u", i);
                emit_i32(mc, d, tmp, M);
                free(tmp);
            } else if (s->b >= 0) {
                const crucible_tensor_view *bt = T(g, s->b);
                size_t n = bt->data_bytes / 4;
                int32_t *tmp = malloc(n * 4 + 4);
                if (!tmp) return -1;
                memcpy(tmp, bt->data, n * 4);
                snprintf(d, sizeof d, "static const int32_t b%u", i);
                emit_i32(mc, d, tmp, n);
                free(tmp);
            }
        }
        snprintf(d, sizeof d, "static const int32_t m%u", i);
        emit_i32(mc, d, s->mult, s->cnt);
        snprintf(d, sizeof d, "static const int32_t s%u", i);
        emit_i32(mc, d, s->shift, s->cnt);
    }
    sb_puts(mc, "\nint model_run(const int8_t *in, model_output_t *out)\n{\n    int rc = 0;\n");
    for (uint32_t i = 0; i < L->n; i++) {
        const step *s = &L->steps[i];
        char a[64], o[64];
        buf_expr(P, s->in, a, sizeof a);
        buf_expr(P, s->out, o, sizeof o);
        sb_puts(mc, "    /* ");
        c_comment_name(mc, g->nodes[s->node]->name);
        sb_printf(mc, " (%s) */\n    {\n", g->nodes[s->node]->op_name);
        const int64_t *p = s->p;
        char bn[32];
        if (s->b >= 0 || s->fold) snprintf(bn, sizeof bn, "b%u", i);
        else snprintf(bn, sizeof bn, "0");
        switch (s->kind) {
        case ST_FC:
            sb_printf(mc, "        static const crk_fc_params p = {%lld, %lld, "
                      "%lld, %d, %d, %d, %d, %d, m%u, s%u};\n"
                      "        rc |= crk_fully_connected(&p, %s, w%u, %s, %s, %s);\n",
                      (long long)p[0], (long long)p[1], (long long)p[2],
                      s->fold ? 0 : (int)s->zin, (int)s->zout, (int)s->lo,
                      (int)s->hi, s->cnt > 1, i, i, a, i, wfmt_name[s->wfmt],
                      bn, o);
            break;
        case ST_CONV:
            sb_printf(mc, "        static const crk_conv_params p = {");
            for (int k = 0; k < 16; k++) sb_printf(mc, "%lld, ", (long long)p[k]);
            sb_printf(mc, "%d, %d, %d, %d, %d, m%u, s%u};\n"
                      "        rc |= crk_conv2d(&p, %s, w%u, %s, %s, %s);\n",
                      (int)s->zin, (int)s->zout, (int)s->lo, (int)s->hi,
                      s->cnt > 1, i, i, a, i, wfmt_name[s->wfmt], bn, o);
            break;
        case ST_MAXPOOL:
        case ST_AVGPOOL:
            sb_printf(mc, "        static const crk_pool_params p = {1, ");
            for (int k = 0; k < 13; k++) sb_printf(mc, "%lld, ", (long long)p[k]);
            sb_printf(mc, "%d, %d, %d, %d};\n        rc |= %s(&p, %s, %s);\n",
                      (int)s->lo, (int)s->hi, (int)p[13], (int)s->zin,
                      s->kind == ST_MAXPOOL ? "crk_max_pool2d" : "crk_avg_pool2d",
                      a, o);
            break;
        case ST_CLAMP:
            sb_printf(mc, "        rc |= crk_clamp_i8(%s, %s, %llu, %d, %d);\n", a,
                      o, (unsigned long long)numel(T(g, s->out)), (int)s->lo,
                      (int)s->hi);
            break;
        case ST_RQ8:
            sb_printf(mc, "        static const crk_requant_params p = {1, 1, "
                      "%llu, %d, %d, %d, %d, 0, m%u, s%u};\n"
                      "        rc |= crk_requantize_i8_i8(&p, %s, %s);\n",
                      (unsigned long long)numel(T(g, s->out)), (int)s->zin,
                      (int)s->zout, (int)s->lo, (int)s->hi, i, i, a, o);
            break;
        case ST_RESHAPE:
            sb_printf(mc, "        crk_reshape(%s, %s, %llu);\n", a, o,
                      (unsigned long long)(numel(T(g, s->out)) *
                                           esz(T(g, s->out))));
            break;
        case ST_CONCAT: {
            sb_printf(mc, "        crk_concat_input ci[%lld];\n", (long long)p[0]);
            float so = 1.0f;
            int32_t zo = 0;
            pt(T(g, s->out), &so, &zo);
            for (int64_t k = 1; k <= p[0]; k++) {
                char e[64];
                float sk = 1.0f;
                int32_t zk = 0;
                const crucible_tensor_view *xk = T(g, (int32_t)p[k]);
                pt(xk, &sk, &zk);
                const int rq = sk != so || zk != zo; /* as the interpreter */
                buf_expr(P, (int32_t)p[k], e, sizeof e);
                sb_printf(mc, "        ci[%lld].data = %s; ci[%lld].axis_dim = %lld; "
                          "ci[%lld].requant = %d; ci[%lld].zp = %d;\n"
                          "        ci[%lld].mult = %ld; ci[%lld].shift = %ld;\n",
                          (long long)(k - 1), e, (long long)(k - 1),
                          (long long)xk->dims[p[11]], (long long)(k - 1),
                          rq,
                          (long long)(k - 1), (int)zk, (long long)(k - 1),
                          (long)s->mult[k - 1], (long long)(k - 1),
                          (long)s->shift[k - 1]);
            }
            sb_printf(mc, "        rc |= crk_concat_i8(ci, %lld, %lld, %lld, %d, %s);\n",
                      (long long)p[0], (long long)p[9], (long long)p[10],
                      (int)s->zout, o);
            break;
        }
        case ST_LUT:
            sb_printf(mc, "        crk_lut_i8(%s, %s, %llu, t%u);\n", a, o,
                      (unsigned long long)numel(T(g, s->out)), i);
            break;
        case ST_BIN: {
            const crucible_tensor_view *tv[3] = {T(g, s->out), T(g, s->in),
                                                 T(g, s->in2)};
            char b2[64];
            buf_expr(P, s->in2, b2, sizeof b2);
            sb_puts(mc, "        static const crk_bcast4 sh = {");
            for (int k = 0; k < 3; k++) {
                sb_puts(mc, "{");
                for (int i4 = 0; i4 < 4; i4++) {
                    int ai = i4 - (4 - tv[k]->rank);
                    sb_printf(mc, "%lld%s", (long long)(ai < 0 ? 1 : tv[k]->dims[ai]),
                              i4 < 3 ? ", " : "");
                }
                sb_puts(mc, k < 2 ? "}, " : "}};\n");
            }
            const char *fn = g->nodes[s->node]->op == CRUCIBLE_OP_MUL ? "crk_mul_i8"
                             : g->nodes[s->node]->op == CRUCIBLE_OP_SUB ? "crk_sub_i8"
                                                                       : "crk_add_i8";
            if (g->nodes[s->node]->op == CRUCIBLE_OP_MUL)
                sb_printf(mc, "        static const crk_mul_params p = {%d, %d, %d, "
                          "%lld, %lld, %d, %d};\n", (int)s->zin, (int)p[0],
                          (int)s->zout, (long long)p[3], (long long)p[6],
                          (int)s->lo, (int)s->hi);
            else
                sb_printf(mc, "        static const crk_add_params p = {%d, %d, %d, "
                          "20, %lld, %lld, %lld, %lld, %lld, %lld, %d, %d};\n",
                          (int)s->zin, (int)p[0], (int)s->zout, (long long)p[1],
                          (long long)p[4], (long long)p[2], (long long)p[5],
                          (long long)p[3], (long long)p[6], (int)s->lo,
                          (int)s->hi);
            sb_printf(mc, "        rc |= %s(&p, &sh, %s, %s, %s);\n", fn, a, b2, o);
            break;
        }
        case ST_DEQ:
            sb_printf(mc, "        f_deq((const int8_t *)%s, (float *)%s, %llu, %.9gf, %d);\n",
                      a, o, (unsigned long long)numel(T(g, s->out)),
                      (double)s->fs, (int)s->zin);
            break;
        case ST_QUANT:
            sb_printf(mc, "        f_quant((const float *)%s, (int8_t *)%s, %llu, %.9gf, %d);\n",
                      a, o, (unsigned long long)numel(T(g, s->out)),
                      (double)s->fs, (int)s->zout);
            break;
        case ST_FADD:
            sb_printf(mc, "        f_add((const float *)%s, c%u, (float *)%s, %d, %lld, "
                      "%lld, %lld);\n", a, i, o, (int)p[0],
                      (long long)(p[0] == 1 ? (long long)numel(T(g, s->out)) : p[1]),
                      (long long)p[2], (long long)(p[0] == 0
                          ? (long long)numel(T(g, s->out)) : p[3]));
            break;
        case ST_FRELU:
            sb_printf(mc, "        f_relu((const float *)%s, (float *)%s, %llu);\n",
                      a, o, (unsigned long long)numel(T(g, s->out)));
            break;
        case ST_FMAXPOOL: {
            const crucible_tensor_view *yv = T(g, s->out);
            sb_printf(mc, "        static const int32_t g[13] = {%lld, %lld, %lld, %lld, "
                      "%lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld};\n"
                      "        f_maxpool((const float *)%s, (float *)%s, g);\n",
                      (long long)p[0], (long long)p[1], (long long)p[2],
                      (long long)p[3], (long long)p[4], (long long)p[5],
                      (long long)p[6], (long long)p[7], (long long)p[8],
                      (long long)p[9], (long long)p[10], (long long)yv->dims[2],
                      (long long)yv->dims[3], a, o);
            break;
        }
        case ST_TRANSPOSE:
            sb_printf(mc, "        static const int32_t d[4] = {%lld, %lld, "
                      "%lld, %lld}, pm[4] = {%lld, %lld, %lld, %lld};\n"
                      "        rc |= crk_transpose(%s, %s, 1, %lld, d, pm);\n",
                      (long long)p[1], (long long)p[2], (long long)p[3],
                      (long long)p[4], (long long)p[5], (long long)p[6],
                      (long long)p[7], (long long)p[8], a, o, (long long)p[0]);
            break;
        case ST_SOFTMAX:
            sb_printf(mc, "        static const crk_softmax_params p = {%lld, "
                      "%lld, %lld, %lld, %lld, %lld};\n"
                      "        rc |= crk_softmax_i8(&p, %s, %s);\n",
                      (long long)p[0], (long long)p[1], (long long)p[2],
                      (long long)p[3], (long long)p[4], (long long)p[5], a, o);
            break;
        }
        sb_puts(mc, "    }\n");
    }
    sb_puts(mc, "    return rc ? -1 : 0;\n}\n");
    return mc->err || mh->err ? -1 : 0;
}

/* inject: NULL, or a test-only fault ("hang": the harness never
 * finishes; "mismatch": one output byte of the last sample is flipped)
 * that exercises the verification's reports. */
static void gen_main(const crucible_verify_ctx *v, const char *inject, sbuf *b)
{
    sb_puts(b, "/* main.c - verification harness generated by crucible mcugen: "
               "runs model_run on the\n * compiled-in samples and prints every "
               "output byte in hex over semihosting. */\n"
               "#include \"model.h\"\n\nvoid mcu_puts(const char *s);\n"
               "void mcu_exit(int code);\nint mcu_count_mode(void);\n"
               "void mcu_count_begin(void);\nvoid mcu_count_end(void);\n\n");
    uint32_t ns = v ? v->n_samples : 0;
    sb_printf(b, "#define N_SAMPLES %u\n", ns);
    sb_printf(b, "static const int8_t samples[%u][MODEL_INPUT_SIZE] = {\n",
              ns ? ns : 1);
    for (uint32_t k = 0; k < ns; k++) {
        const crucible_tensor_view *t = v->samples[k]->inputs[0];
        const int8_t *p = t->data;
        sb_puts(b, "  {");
        for (size_t i = 0; i < t->data_bytes; i++)
            sb_printf(b, "%s%d,", i % 24 ? "" : "\n    ", (int)p[i]);
        sb_puts(b, "\n  },\n");
    }
    if (!ns) sb_puts(b, "  {0}\n");
    sb_puts(b,
        "};\nstatic model_output_t output[MODEL_OUTPUT_SIZE];\n\n"
        "static void hex_line(char *l, unsigned k, int rc)\n{\n"
        "    const char *hx = \"0123456789abcdef\";\n    unsigned j = 0, i;\n"
        "    l[j++] = 'S'; l[j++] = hx[(k >> 12) & 15]; l[j++] = hx[(k >> 8) & 15];\n"
        "    l[j++] = hx[(k >> 4) & 15]; l[j++] = hx[k & 15];\n"
        "    l[j++] = rc ? '!' : ' '; l[j] = 0;\n    mcu_puts(l);\n"
        "    for (i = 0; i < MODEL_OUTPUT_BYTES; i++) { /* bytes, little-endian */\n"
        "        unsigned char u = ((const unsigned char *)output)[i];\n"
        "        l[0] = hx[u >> 4]; l[1] = hx[u & 15]; l[2] = 0;\n        mcu_puts(l);\n"
        "    }\n    mcu_puts(\"\\n\");\n}\n\n"
        "/* Sample 0's model_run is bracketed by the instruction-count markers;\n"
        " * in count mode (semihosting command line \"count\") only it runs. */\n"
        "int main(void)\n{\n    char line[8];\n    unsigned k;\n"
        "    int count = mcu_count_mode();\n"
        "    mcu_puts(\"CRUCIBLE-BEGIN\\n\");\n"
        "    for (k = 0; k < N_SAMPLES; k++) {\n"
        "        int rc;\n"
        "        if (k == 0) mcu_count_begin();\n"
        "        rc = model_run(samples[k], output);\n"
        "        if (k == 0) mcu_count_end();\n");
    if (inject && !strcmp(inject, "hang"))
        sb_puts(b, "        for (;;) {} /* test_inject = hang */\n");
    if (inject && !strcmp(inject, "mismatch"))
        sb_puts(b, "        if (k == N_SAMPLES - 1) /* test_inject = mismatch */\n"
                   "            ((unsigned char *)output)[MODEL_OUTPUT_BYTES / 2] ^= 1;\n");
    sb_puts(b,
        "        hex_line(line, k, rc);\n"
        "        if (count) break;\n    }\n"
        "    mcu_puts(\"CRUCIBLE-END\\n\");\n    return 0;\n}\n");
}

static const char runtime_common[] =
    "/* runtime.c - startup, semihosting and memcpy/memset for the crucible\n"
    " * verification firmware (no libc). Generated by crucible mcugen. */\n"
    "#include <stddef.h>\n#include <stdint.h>\n\n"
    "extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[];\n"
    "int main(void);\nint mcu_semihost(int op, const void *arg);\n\n"
    "void *memcpy(void *d, const void *s, size_t n)\n{\n"
    "    unsigned char *a = d; const unsigned char *b = s;\n"
    "    while (n--) *a++ = *b++;\n    return d;\n}\n"
    "void *memset(void *d, int c, size_t n)\n{\n"
    "    unsigned char *a = d;\n    while (n--) *a++ = (unsigned char)c;\n"
    "    return d;\n}\n"
    "void *memmove(void *d, const void *s, size_t n)\n{\n"
    "    unsigned char *a = d; const unsigned char *b = s;\n"
    "    if (a < b) while (n--) *a++ = *b++;\n"
    "    else { a += n; b += n; while (n--) *--a = *--b; }\n    return d;\n}\n\n"
    "void mcu_puts(const char *s) { mcu_semihost(0x04, s); }\n"
    "void mcu_exit(int code)\n{\n"
    "    mcu_semihost(0x18, (const void *)(uintptr_t)(code ? 0x20023 : 0x20026));\n"
    "    for (;;) {}\n}\n\n"
    "/* Stack use is measured by painting the reserved stack at reset and\n"
    " * finding the deepest overwritten word after main returns. */\n"
    "extern uint32_t _sstack[], _estack[];\n"
    "static void stack_report(void)\n{\n"
    "    const char *hx = \"0123456789abcdef\";\n"
    "    char l[24] = \"CRUCIBLE-STACK \";\n"
    "    uint32_t *p = _sstack, used;\n    int i;\n"
    "    while (p < _estack && *p == 0xa5a5a5a5u) p++;\n"
    "    used = (uint32_t)((uintptr_t)_estack - (uintptr_t)p);\n"
    "    for (i = 0; i < 8; i++) l[15 + i] = hx[(used >> (28 - 4 * i)) & 15];\n"
    "    l[23] = 0;\n    mcu_puts(l);\n    mcu_puts(\"\\n\");\n}\n\n"
    "void mcu_reset(void)\n{\n"
    "    uint32_t *s = _sidata, *d = _sdata, here = 0;\n"
    "    volatile uint32_t *top = &here - 16;\n"
    "    while (d < _edata) *d++ = *s++;\n"
    "    for (d = _sbss; d < _ebss; d++) *d = 0;\n"
    "    for (d = _sstack; d < (uint32_t *)top; d++) *d = 0xa5a5a5a5u;\n"
    "    here = (uint32_t)main();\n"
    "    stack_report();\n"
    "    mcu_exit((int)here);\n}\n\n"
    "void mcu_fault(void)\n{\n    mcu_puts(\"CRUCIBLE-FAULT\\n\");\n    mcu_exit(1);\n}\n\n"
    "/* Instruction counting (crucible counts the instructions QEMU executes\n"
    " * between the two markers): distinct bodies, so that they are never\n"
    " * merged. */\n"
    "volatile uint32_t mcu_count_mark;\n"
    "__attribute__((noinline)) void mcu_count_begin(void) { mcu_count_mark = 1; }\n"
    "__attribute__((noinline)) void mcu_count_end(void) { mcu_count_mark = 2; }\n"
    "/* 1 when the semihosting command line holds the word \"count\". */\n"
    "int mcu_count_mode(void)\n{\n"
    "    static char cmd[80];\n    uintptr_t blk[2];\n    unsigned i;\n"
    "    blk[0] = (uintptr_t)cmd;\n    blk[1] = sizeof cmd - 1;\n"
    "    if (mcu_semihost(0x15, blk) != 0) return 0;\n"
    "    for (i = 0; i + 5 <= sizeof cmd - 1 && cmd[i]; i++)\n"
    "        if (cmd[i] == 'c' && cmd[i + 1] == 'o' && cmd[i + 2] == 'u' &&\n"
    "            cmd[i + 3] == 'n' && cmd[i + 4] == 't')\n"
    "            return 1;\n    return 0;\n}\n";

static const char runtime_arm[] =
    "\n/* Cortex-M: vector table, semihosting by BKPT 0xAB */\n"
    "__attribute__((section(\".vectors\"), used))\n"
    "void (*const mcu_vectors[16])(void) = {\n"
    "    (void (*)(void))_estack, mcu_reset, mcu_fault, mcu_fault, mcu_fault,\n"
    "    mcu_fault, mcu_fault, 0, 0, 0, 0, mcu_fault, 0, 0, mcu_fault, mcu_fault};\n"
    "int mcu_semihost(int op, const void *arg)\n{\n"
    "    register int r0 __asm__(\"r0\") = op;\n"
    "    register const void *r1 __asm__(\"r1\") = arg;\n"
    "    __asm__ volatile(\"bkpt 0xab\" : \"+r\"(r0) : \"r\"(r1) : \"memory\");\n"
    "    return r0;\n}\n";

static const char runtime_rv[] =
    "\n/* RISC-V: _start, trap handler, semihosting by the slli/ebreak/srai\n"
    " * sequence (uncompressed, in one aligned block) */\n"
    "__asm__(\".section .text.start,\\\"ax\\\"\\n.globl _start\\n_start:\\n\"\n"
    "        \".option push\\n.option norelax\\nla gp, __global_pointer$\\n\"\n"
    "        \".option pop\\nla sp, _estack\\nla t0, mcu_trap\\n.insn i 0x73, 1, x0, t0, 0x305\\n\"\n"
    "        \"j mcu_reset\\n\"\n"
    "        \".text\\n.balign 16\\n.globl mcu_semihost\\nmcu_semihost:\\n\"\n"
    "        \".option push\\n.option norvc\\nslli zero, zero, 0x1f\\nebreak\\n\"\n"
    "        \"srai zero, zero, 7\\nret\\n.option pop\\n\"\n"
    "        \".balign 4\\nmcu_trap:\\nj mcu_fault\\n\");\n";

static void gen_ld(const mcugen_target *t, const crucible_board *bd, int rv,
                   sbuf *b)
{
    sb_printf(b, "/* link.ld - generated by crucible mcugen for the emulated "
              "memory map */\nMEMORY\n{\n  FLASH (rx) : ORIGIN = %s, LENGTH = %s\n"
              "  RAM (rwx) : ORIGIN = %s, LENGTH = %s\n}\nENTRY(%s)\nSECTIONS\n{\n"
              "  .text : {\n    KEEP(*(.vectors))\n    KEEP(*(.text.start))\n"
              "    *(.text*)\n    . = ALIGN(4);\n  } > FLASH\n"
              "  .rodata : {\n    *(.rodata*)\n    *(.srodata*)\n    . = ALIGN(4);\n"
              "  } > FLASH\n  .ARM.exidx : { *(.ARM.exidx*) } > FLASH\n"
              "  _sidata = LOADADDR(.data);\n"
              "  .data : {\n    . = ALIGN(4);\n    _sdata = .;\n    *(.data*)\n"
              "    *(.sdata*)\n    . = ALIGN(4);\n    _edata = .;\n  } > RAM AT > FLASH\n"
              "  .bss (NOLOAD) : {\n    . = ALIGN(4);\n    _sbss = .;\n    *(.sbss*)\n"
              "    *(.bss*)\n    *(COMMON)\n    . = ALIGN(4);\n    _ebss = .;\n  } > RAM\n"
              "  .stack (NOLOAD) : {\n    . = ALIGN(8);\n    _sstack = .;\n    . += %lld;\n"
              "    _estack = .;\n  } > RAM\n%s}\n",
              mcugen_board_get(t, bd, "link", "flash_origin"),
              mcugen_board_get(t, bd, "link", "flash_length"),
              mcugen_board_get(t, bd, "link", "ram_origin"),
              mcugen_board_get(t, bd, "link", "ram_length"),
              rv ? "_start" : "mcu_reset",
              (long long)bget_u(t, bd, "link", "stack_bytes", 2048),
              rv ? "  __global_pointer$ = _sdata + 0x800;\n" : "");
}

/* The cross-compiler command line (argv into store). */
#define MAX_ARGS 96
static int build_argv(const mcugen_target *t, const crucible_board *bd,
                      char *cc, size_t ccn, char *store, size_t sn,
                      const char **argv)
{
    const char *pre = mcugen_board_get(t, bd, "toolchain", "prefix");
    const char *cf = mcugen_board_get(t, bd, "toolchain", "cflags");
    const char *lf = mcugen_board_get(t, bd, "toolchain", "ldflags");
    snprintf(cc, ccn, "%sgcc", pre ? pre : "");
    int k = snprintf(store, sn, "%s %s", cf ? cf : "", lf ? lf : "");
    if (k < 0 || (size_t)k >= sn) return -1;
    int argc = 0;
    argv[argc++] = cc;
    static const char *const fixed1[] = {"-std=c11", "-ffreestanding",
                                         "-fno-builtin", "-Iinclude",
                                         "-Ikernels", NULL};
    for (int i = 0; fixed1[i]; i++) argv[argc++] = fixed1[i];
    for (char *p = store; *p;) {
        while (*p == ' ' || *p == '\t') *p++ = 0;
        if (!*p) break;
        if (argc >= MAX_ARGS - 24) return -1;
        argv[argc++] = p;
        while (*p && *p != ' ' && *p != '\t') p++;
    }
    static const char *const fixed2[] = {
        "-nostdlib", "-nostartfiles", "-T", "link.ld", "-Wl,--gc-sections",
        "-Wl,-Map,fw.map", "-o", "fw.elf", "model.c", "main.c", "runtime.c",
        NULL};
    for (int i = 0; fixed2[i]; i++) argv[argc++] = fixed2[i];
    for (size_t i = 0; i < mcugen_n_kernel_files; i++)
        if (strstr(mcugen_kernel_files[i].name, ".c"))
            argv[argc++] = mcugen_kernel_files[i].name;
    argv[argc++] = "-lgcc";
    argv[argc] = NULL;
    return argc;
}

/* ---- files ------------------------------------------------------------------ */
static int write_file(const char *dir, const char *name, const void *data,
                      size_t len)
{
    char path[4096];
    int k = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (k < 0 || (size_t)k >= sizeof path) return -1;
    for (char *p = path + strlen(dir) + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(path, 0777);
            *p = '/';
        }
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t put = len ? fwrite(data, 1, len, f) : 0;
    int bad = fclose(f) != 0 || put != len;
    return bad ? -1 : 0;
}

typedef struct emitctx {
    const crucible_compile_ctx *cc;
    const char *workdir;
    const crucible_artifact_sink *sink;
    int rc;
} emitctx;

static int emit_one(void *vctx, const char *name, const char *text)
{
    emitctx *e = vctx;
    if (e->rc) return e->rc;
    size_t len = strlen(text);
    if (e->workdir && write_file(e->workdir, name, text, len)) e->rc = CRUCIBLE_E_IO;
    if (!e->rc && e->sink && e->sink->emit) {
        char n[512];
        snprintf(n, sizeof n, "firmware/%s", name);
        e->rc = e->sink->emit(e->sink->ctx, n, text, len);
    }
    return e->rc;
}

int mcugen_compile(const crucible_host *h, const mcugen_target *t,
                   const crucible_compile_ctx *ctx)
{
    char why[512];
    if (!ctx || !ctx->graph) return CRUCIBLE_E_INVALID;
    const crucible_graph_view *g = ctx->graph;
    const char *arch = mcugen_board_get(t, ctx->board, "board", "arch");
    int ak = arch_kind(arch);
    lowered L;
    plan P;
    int rc = lower(h, g, &L, why, sizeof why);
    if (rc) {
        h->log(h, CRUCIBLE_LOG_ERROR, "cannot generate firmware: %s", why);
        return rc;
    }
    memset(&P, 0, sizeof P);
    rc = make_plan(h, g, &L, &P);
    sbuf mc = {h, NULL, 0, 0, 0}, mh = {h, NULL, 0, 0, 0},
         ld = {h, NULL, 0, 0, 0}, mk = {h, NULL, 0, 0, 0},
         rt = {h, NULL, 0, 0, 0}, mn = {h, NULL, 0, 0, 0},
         rep = {h, NULL, 0, 0, 0};
    if (!rc && gen_model(g, &L, &P, &mc, &mh)) rc = CRUCIBLE_E_NOMEM;
    emitctx e = {ctx, ctx->workdir, ctx->sink, 0};
    if (!rc) {
        emit_one(&e, "model.c", mc.s);
        emit_one(&e, "model.h", mh.s);
        for (size_t i = 0; i < mcugen_n_kernel_files; i++)
            emit_one(&e, mcugen_kernel_files[i].name, mcugen_kernel_files[i].text);
        if (ak != 2) {
            sb_puts(&rt, runtime_common);
            sb_puts(&rt, ak == 1 ? runtime_rv : runtime_arm);
            gen_ld(t, ctx->board, ak == 1, &ld);
            gen_main(NULL, NULL, &mn);
            const char *pre = mcugen_board_get(t, ctx->board, "toolchain", "prefix");
            sb_printf(&mk, "# Makefile - generated by crucible mcugen: builds "
                      "the verification firmware\nCROSS ?= %s\nCFLAGS ?= %s\n"
                      "LDFLAGS ?= %s\nSRC = model.c main.c runtime.c $(wildcard "
                      "kernels/*.c)\n\nfw.elf: $(SRC) link.ld\n\t$(CROSS)gcc "
                      "-std=c11 -ffreestanding -fno-builtin -Iinclude -Ikernels "
                      "$(CFLAGS) $(LDFLAGS) -nostdlib -nostartfiles -T link.ld "
                      "-Wl,--gc-sections -o $@ $(SRC) -lgcc\n\t$(CROSS)size $@\n",
                      pre ? pre : "",
                      mcugen_board_get(t, ctx->board, "toolchain", "cflags") ?
                      mcugen_board_get(t, ctx->board, "toolchain", "cflags") : "",
                      mcugen_board_get(t, ctx->board, "toolchain", "ldflags") ?
                      mcugen_board_get(t, ctx->board, "toolchain", "ldflags") : "");
            emit_one(&e, "runtime.c", rt.s);
            emit_one(&e, "link.ld", ld.s);
            if (ctx->workdir && write_file(ctx->workdir, "main.c", mn.s, mn.len))
                e.rc = CRUCIBLE_E_IO;
            emit_one(&e, "Makefile", mk.s);
        }
        if (t->extra_files && !e.rc)
            t->extra_files(h, ctx->board, g->name ? g->name : "model",
                           emit_one, &e);
        sb_printf(&rep, "{\"arena_bytes\":%llu,\"peak_live_bytes\":%llu,"
                  "\"naive_bytes\":%llu,\"const_bytes\":%llu,\"steps\":%u,"
                  "\"macs\":%llu}\n",
                  (unsigned long long)P.arena, (unsigned long long)P.peak,
                  (unsigned long long)P.naive,
                  (unsigned long long)L.const_bytes, L.n,
                  (unsigned long long)L.macs);
        if (!rep.err) emit_one(&e, "plan.json", rep.s);
        rc = e.rc;
        if (rt.err || ld.err || mn.err || mk.err || rep.err) rc = CRUCIBLE_E_NOMEM;
    }
    if (!rc)
        h->log(h, CRUCIBLE_LOG_INFO, "firmware: %u kernel calls, %llu MACs, "
               "constants %llu bytes, arena %llu bytes (peak live %llu, naive "
               "sum %llu)", L.n, (unsigned long long)L.macs,
               (unsigned long long)L.const_bytes, (unsigned long long)P.arena,
               (unsigned long long)P.peak, (unsigned long long)P.naive);
    sb_free(&mc), sb_free(&mh), sb_free(&ld), sb_free(&mk), sb_free(&rt);
    sb_free(&mn), sb_free(&rep);
    plan_free(&P);
    lowered_free(&L);
    return rc;
}

/* ---- UF2 ------------------------------------------------------------------ */
static void le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16),
    p[3] = (uint8_t)(v >> 24);
}

int mcugen_uf2(const crucible_host *h, const uint8_t *bin, size_t len,
               uint32_t base, uint32_t family, uint8_t **out, size_t *out_len)
{
    size_t nblk = (len + 255) / 256;
    if (!nblk) nblk = 1;
    uint8_t *b = crucible_alloc(h, nblk * 512);
    if (!b) return CRUCIBLE_E_NOMEM;
    memset(b, 0, nblk * 512);
    for (size_t i = 0; i < nblk; i++) {
        uint8_t *blk = b + i * 512;
        size_t n = len - i * 256 < 256 ? len - i * 256 : 256;
        if (i * 256 >= len) n = 0;
        le32(blk + 0, 0x0A324655u);         /* "UF2\n" */
        le32(blk + 4, 0x9E5D5157u);
        le32(blk + 8, 0x00002000u);         /* familyID present */
        le32(blk + 12, base + (uint32_t)(i * 256));
        le32(blk + 16, 256);
        le32(blk + 20, (uint32_t)i);
        le32(blk + 24, (uint32_t)nblk);
        le32(blk + 28, family);
        if (n) memcpy(blk + 32, bin + i * 256, n);
        le32(blk + 508, 0x0AB16F30u);
    }
    *out = b;
    *out_len = nblk * 512;
    return CRUCIBLE_OK;
}

/* ---- verify ------------------------------------------------------------------ */
static void excerpt(const char *text, char *dst, size_t n)
{
    const char *start = text ? text : "";
    const char *e = strstr(start, "error");
    if (e) {
        while (e > start && e[-1] != '\n') e--;
        start = e;
    }
    size_t k = 0;
    int lines = 0;
    for (const char *p = start; *p && k + 4 < n && lines < 3; p++) {
        if (*p == '\n') {
            lines++;
            if (p[1] && lines < 3) memcpy(dst + k, " | ", 3), k += 3;
            continue;
        }
        dst[k++] = (*p == '\t' || *p == '\r') ? ' ' : *p;
    }
    dst[k] = 0;
    if (!k) snprintf(dst, n, "(no output)");
}

static int run_tool(const crucible_host *h, const crucible_host_tools *tl,
                    const char *const *argv, const char *cwd, double timeout,
                    const char *pkg, crucible_tool_result *res)
{
    crucible_tool_request req;
    memset(&req, 0, sizeof req);
    memset(res, 0, sizeof *res);
    req.hdr = (crucible_header)CRUCIBLE_HEADER(crucible_tool_request);
    res->hdr = (crucible_header)CRUCIBLE_HEADER(crucible_tool_result);
    req.argv = argv;
    req.cwd = cwd;
    req.timeout_s = timeout;
    req.debian_package = pkg;
    return tl->run(h, &req, res);
}

static int read_all(const crucible_host *h, const char *path, uint8_t **out,
                    size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0) {
        fclose(f);
        return -1;
    }
    uint8_t *b = crucible_alloc(h, (size_t)n + 1);
    if (!b) {
        fclose(f);
        return -1;
    }
    size_t got = fread(b, 1, (size_t)n, f);
    fclose(f);
    if (got != (size_t)n) {
        crucible_free(h, b, (size_t)n + 1);
        return -1;
    }
    *out = b;
    *len = (size_t)n;
    return 0;
}

static int hexv(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* ---- instruction counting ------------------------------------------------ */
/* QEMU 7.2 (Debian 12) has no TCG plugins. The count run logs every
 * translated block's instructions (-d in_asm) and every block execution
 * (-d exec, with chaining off so that none is skipped); the instructions
 * executed between the harness markers mcu_count_begin and mcu_count_end
 * (the model_run call of sample 0) are the sum, over executed blocks, of
 * the block's instruction count. Checked against -singlestep tracing in
 * tests/test_mcu.c. */
typedef struct fsym {
    uint32_t addr, size;
    uint64_t count;
    char name[56];
} fsym;

typedef struct symtab {
    fsym *v;
    size_t n, cap;
    uint32_t begin, end;
    int have_begin, have_end;
    uint64_t code_bytes; /* sum of function sizes */
} symtab;

static int syms_parse(const crucible_host *h, const char *text, symtab *S)
{
    memset(S, 0, sizeof *S);
    for (const char *l = text; l && *l;) {
        const char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) : strlen(l);
        char line[256];
        if (len < sizeof line) {
            memcpy(line, l, len);
            line[len] = 0;
            unsigned long a = 0, sz = 0;
            char ty = 0, name[128];
            int k = sscanf(line, "%lx %lx %c %127s", &a, &sz, &ty, name);
            if (k != 4) {
                sz = 0;
                k = sscanf(line, "%lx %c %127s", &a, &ty, name) == 3 ? 4 : 0;
            }
            if (k == 4) {
                uint32_t ad = (uint32_t)a & ~1u; /* Thumb bit */
                if (!strcmp(name, "mcu_count_begin")) S->begin = ad, S->have_begin = 1;
                if (!strcmp(name, "mcu_count_end")) S->end = ad, S->have_end = 1;
                if ((ty == 't' || ty == 'T' || ty == 'W' || ty == 'w') && sz) {
                    if (S->n == S->cap) {
                        size_t nc = S->cap ? S->cap * 2 : 64;
                        fsym *p = h->realloc(h, S->v, S->cap * sizeof(fsym),
                                             nc * sizeof(fsym));
                        if (!p) return -1;
                        S->v = p;
                        S->cap = nc;
                    }
                    fsym *f = &S->v[S->n++];
                    memset(f, 0, sizeof *f);
                    f->addr = ad;
                    f->size = (uint32_t)sz;
                    snprintf(f->name, sizeof f->name, "%s", name);
                    S->code_bytes += sz;
                }
            }
        }
        l = nl ? nl + 1 : NULL;
    }
    /* sort by address (insertion sort: a few hundred symbols) */
    for (size_t i = 1; i < S->n; i++)
        for (size_t j = i; j > 0 && S->v[j].addr < S->v[j - 1].addr; j--) {
            fsym t = S->v[j];
            S->v[j] = S->v[j - 1];
            S->v[j - 1] = t;
        }
    return 0;
}

static void syms_free(const crucible_host *h, symtab *S)
{
    if (S->v) crucible_free(h, S->v, S->cap * sizeof(fsym));
    S->v = NULL;
}

static fsym *syms_find(symtab *S, uint32_t pc)
{
    size_t lo = 0, hi = S->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (S->v[mid].addr <= pc) lo = mid + 1;
        else hi = mid;
    }
    if (!lo) return NULL;
    fsym *f = &S->v[lo - 1];
    return pc < f->addr + f->size ? f : NULL;
}

/* pc -> instructions of the block last translated at pc */
typedef struct pcmap {
    const crucible_host *h;
    uint32_t *key, *val;
    size_t cap, n;
} pcmap;

static int pcmap_put(pcmap *m, uint32_t k, uint32_t v)
{
    if ((m->n + 1) * 2 > m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 4096;
        uint32_t *nk = crucible_alloc(m->h, nc * 4), *nv = crucible_alloc(m->h, nc * 4);
        if (!nk || !nv) {
            if (nk) crucible_free(m->h, nk, nc * 4);
            if (nv) crucible_free(m->h, nv, nc * 4);
            return -1;
        }
        memset(nv, 0, nc * 4);
        for (size_t i = 0; i < m->cap; i++)
            if (m->val[i]) {
                size_t j = (m->key[i] * 2654435761u) & (nc - 1);
                while (nv[j]) j = (j + 1) & (nc - 1);
                nk[j] = m->key[i];
                nv[j] = m->val[i];
            }
        if (m->cap) {
            crucible_free(m->h, m->key, m->cap * 4);
            crucible_free(m->h, m->val, m->cap * 4);
        }
        m->key = nk, m->val = nv, m->cap = nc;
    }
    size_t j = (k * 2654435761u) & (m->cap - 1);
    while (m->val[j] && m->key[j] != k) j = (j + 1) & (m->cap - 1);
    if (!m->val[j]) m->n++;
    m->key[j] = k;
    m->val[j] = v;
    return 0;
}

static uint32_t pcmap_get(const pcmap *m, uint32_t k)
{
    if (!m->cap) return 0;
    size_t j = (k * 2654435761u) & (m->cap - 1);
    while (m->val[j]) {
        if (m->key[j] == k) return m->val[j];
        j = (j + 1) & (m->cap - 1);
    }
    return 0;
}

/* Sums the trace between the markers. Returns 0, or -1 with why. */
static int count_trace(const crucible_host *h, const char *path, symtab *S,
                       uint64_t *total, char *why, size_t wn)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(why, wn, "no trace file %s", path);
        return -1;
    }
    pcmap m = {h, NULL, NULL, 0, 0};
    char line[1024];
    int in_block = 0, state = 0, rc = 0;
    uint32_t cur = 0, n = 0;
    uint64_t unknown = 0;
    *total = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "IN:", 3)) {
            in_block = 1;
            n = 0;
            continue;
        }
        if (in_block && line[0] == '0' && line[1] == 'x') {
            uint32_t a = (uint32_t)strtoul(line + 2, NULL, 16);
            if (!n) cur = a;
            if (pcmap_put(&m, cur, ++n)) {
                rc = -1;
                snprintf(why, wn, "out of memory");
                break;
            }
            continue;
        }
        if (line[0] == '\n') {
            in_block = 0;
            continue;
        }
        if (strncmp(line, "Trace ", 6)) continue;
        const char *b = strchr(line, '[');
        const char *sl = b ? strchr(b, '/') : NULL;
        if (!sl) continue;
        uint32_t pc = (uint32_t)strtoul(sl + 1, NULL, 16);
        if (state == 0) {
            if (pc == S->begin) state = 1;
            continue;
        }
        if (pc == S->end) {
            state = 2;
            break;
        }
        uint32_t c = pcmap_get(&m, pc);
        if (!c) unknown++;
        *total += c;
        fsym *fs = syms_find(S, pc);
        if (fs) fs->count += c;
    }
    fclose(f);
    if (m.cap) {
        crucible_free(h, m.key, m.cap * 4);
        crucible_free(h, m.val, m.cap * 4);
    }
    if (!rc && state != 2) {
        snprintf(why, wn, "the trace does not pass both markers "
                 "(mcu_count_begin %s, mcu_count_end %s)",
                 state ? "seen" : "not seen", "not seen");
        rc = -1;
    } else if (!rc && unknown) {
        snprintf(why, wn, "%llu executed blocks were never translated in "
                 "the log", (unsigned long long)unknown);
        rc = -1;
    }
    return rc;
}

static int config_flag(const crucible_verify_ctx *ctx, const char *id,
                       const char *key)
{
    if (!CRUCIBLE_HAS_FIELD(ctx->hdr, crucible_verify_ctx, config) ||
        !ctx->config || !id)
        return 0;
    char sec[128];
    snprintf(sec, sizeof sec, "target.%s", id);
    const char *v = crucible_kv_get(ctx->config, sec, key);
    return v && (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes") ||
                 !strcmp(v, "on"));
}

int mcugen_verify(const crucible_host *h, const mcugen_target *t,
                  const crucible_verify_ctx *ctx)
{
    char msg[1024], cc[256], store[2048], metrics[1536], path[4096];
    const char *argv[MAX_ARGS + 1];
    int counting = config_flag(ctx, t ? t->id : NULL, "count_instructions");
    if (!ctx || !ctx->report || !ctx->graph || !ctx->workdir)
        return CRUCIBLE_E_INVALID;
    const crucible_graph_view *g = ctx->graph;
    const crucible_board *bd = ctx->board;
    const char *arch = mcugen_board_get(t, bd, "board", "arch");
    int ak = arch_kind(arch);
    if (ak == 2) {
        ctx->report(ctx->ctx, "build", NULL, CRUCIBLE_VERDICT_SKIPPED,
                    "not built here: Debian has no Xtensa toolchain (the "
                    "ESP-IDF project is generated: idf.py build)", NULL);
        ctx->report(ctx->ctx, "run", NULL, CRUCIBLE_VERDICT_SKIPPED,
                    "not run here: no Xtensa emulator", NULL);
        return CRUCIBLE_OK;
    }
    const crucible_host_tools *tl =
        h->get_extension ? h->get_extension(h, CRUCIBLE_EXT_TOOLS) : NULL;
    if (!tl || !tl->run || !tl->free_result) {
        ctx->report(ctx->ctx, "build", NULL, CRUCIBLE_VERDICT_SKIPPED,
                    "the host offers no tools service", NULL);
        return CRUCIBLE_OK;
    }
    /* samples: one i8 input, one i8 output */
    const crucible_tensor_view *gx = T(g, g->inputs[0]), *gy = T(g, g->outputs[0]);
    for (uint32_t k = 0; k < ctx->n_samples; k++) {
        const crucible_sample *s = ctx->samples[k];
        if (!s || s->n_inputs != 1 || s->n_outputs != 1 ||
            s->inputs[0]->data_bytes != numel(gx) ||
            s->outputs[0]->data_bytes != numel(gy) * esz(gy) ||
            !s->inputs[0]->data || !s->outputs[0]->data) {
            snprintf(msg, sizeof msg, "sample %u is not one i8 input of %llu "
                     "bytes and one output of %llu bytes", k,
                     (unsigned long long)numel(gx),
                     (unsigned long long)(numel(gy) * esz(gy)));
            ctx->report(ctx->ctx, "run", NULL, CRUCIBLE_VERDICT_FAIL, msg, NULL);
            return CRUCIBLE_OK;
        }
    }
    sbuf mn = {h, NULL, 0, 0, 0};
    char inj_sec[128];
    snprintf(inj_sec, sizeof inj_sec, "target.%s", t && t->id ? t->id : "");
    const char *inject =
        CRUCIBLE_HAS_FIELD(ctx->hdr, crucible_verify_ctx, config) && ctx->config
            ? crucible_kv_get(ctx->config, inj_sec, "test_inject") : NULL;
    if (inject && strcmp(inject, "hang") && strcmp(inject, "mismatch")) {
        snprintf(msg, sizeof msg, "[%s] test_inject = '%s': expected hang "
                 "or mismatch", inj_sec, inject);
        ctx->report(ctx->ctx, "build", NULL, CRUCIBLE_VERDICT_FAIL, msg, NULL);
        return CRUCIBLE_OK;
    }
    if (inject)
        h->log(h, CRUCIBLE_LOG_WARN, "test_inject = %s: the harness is "
               "deliberately faulty (a test of the verification)", inject);
    gen_main(ctx, inject, &mn);
    if (mn.err || write_file(ctx->workdir, "main.c", mn.s, mn.len)) {
        sb_free(&mn);
        return CRUCIBLE_E_IO;
    }
    if (ctx->sink && ctx->sink->emit)
        ctx->sink->emit(ctx->sink->ctx, "firmware/main.c", mn.s, mn.len);
    sb_free(&mn);

    /* build */
    const char *cpkg = mcugen_board_get(t, bd, "toolchain", "debian_package");
    if (build_argv(t, bd, cc, sizeof cc, store, sizeof store, argv) < 0) {
        ctx->report(ctx->ctx, "build", cc, CRUCIBLE_VERDICT_FAIL,
                    "[toolchain] flags are too long", NULL);
        return CRUCIBLE_OK;
    }
    crucible_tool_result res;
    int st = run_tool(h, tl, argv, ctx->workdir, 600, cpkg, &res);
    if (st != CRUCIBLE_OK) {
        char ex[600];
        excerpt(res.output, ex, sizeof ex);
        if (st == CRUCIBLE_E_SKIPPED)
            snprintf(msg, sizeof msg, "%s", res.output && *res.output ? res.output :
                     "cross-compiler not found");
        else
            snprintf(msg, sizeof msg, "%s failed (%s, exit code %d): %s", cc,
                     crucible_status_str(st), res.exit_code, ex);
        if (st != CRUCIBLE_E_SKIPPED && res.output && ctx->sink && ctx->sink->emit)
            ctx->sink->emit(ctx->sink->ctx, "logs/build.txt", res.output,
                            res.output_len);
        tl->free_result(h, &res);
        ctx->report(ctx->ctx, "build", cc,
                    st == CRUCIBLE_E_SKIPPED ? CRUCIBLE_VERDICT_SKIPPED
                                             : CRUCIBLE_VERDICT_FAIL, msg, NULL);
        ctx->report(ctx->ctx, "run", NULL, CRUCIBLE_VERDICT_SKIPPED,
                    "not run: the firmware could not be built", NULL);
        return CRUCIBLE_OK;
    }
    snprintf(metrics, sizeof metrics, "{\"seconds\":%.3f}", res.seconds);
    tl->free_result(h, &res);
    ctx->report(ctx->ctx, "build", cc, CRUCIBLE_VERDICT_PASS,
                "fw.elf built (firmware/Makefile has the command)", metrics);
    snprintf(path, sizeof path, "%s/fw.elf", ctx->workdir);
    if (ctx->sink && ctx->sink->emit_file)
        ctx->sink->emit_file(ctx->sink->ctx, "bin/fw.elf", path);

    /* size and raw binary */
    const char *pre = mcugen_board_get(t, bd, "toolchain", "prefix");
    char tool[256], tool2[256];
    snprintf(tool, sizeof tool, "%ssize", pre ? pre : "");
    const char *sargv[] = {tool, "-B", "fw.elf", NULL};
    st = run_tool(h, tl, sargv, ctx->workdir, 60, cpkg, &res);
    unsigned long long text = 0, data = 0, bss = 0;
    int have_size = 0;
    if (st == CRUCIBLE_OK && res.output) {
        const char *l = strchr(res.output, '\n');
        if (l && sscanf(l + 1, "%llu %llu %llu", &text, &data, &bss) == 3)
            have_size = 1;
    }
    tl->free_result(h, &res);
    /* function symbols: code size, and the counting markers */
    symtab S;
    memset(&S, 0, sizeof S);
    char tool3[256];
    snprintf(tool3, sizeof tool3, "%snm", pre ? pre : "");
    const char *nargv[] = {tool3, "-S", "--defined-only", "fw.elf", NULL};
    st = run_tool(h, tl, nargv, ctx->workdir, 60, cpkg, &res);
    int have_syms = st == CRUCIBLE_OK && res.output &&
                    !syms_parse(h, res.output, &S);
    tl->free_result(h, &res);
    mcugen_plan_info pi;
    char why[256];
    if (mcugen_plan(h, g, &pi, why, sizeof why)) memset(&pi, 0, sizeof pi);
    long long stack = (long long)bget_u(t, bd, "link", "stack_bytes", 2048);
    if (have_size) {
        snprintf(metrics, sizeof metrics,
                 "{\"flash_bytes\":%llu,\"ram_bytes\":%llu,\"text\":%llu,"
                 "\"data\":%llu,\"bss\":%llu,\"stack_bytes\":%lld,"
                 "\"arena_bytes\":%llu,\"naive_bytes\":%llu,"
                 "\"peak_live_bytes\":%llu,\"const_bytes\":%llu,\"macs\":%llu,"
                 "\"code_bytes\":%llu}",
                 text + data, data + bss, text, data, bss, stack,
                 (unsigned long long)pi.arena_bytes,
                 (unsigned long long)pi.naive_bytes,
                 (unsigned long long)pi.peak_live_bytes,
                 (unsigned long long)pi.const_bytes,
                 (unsigned long long)pi.macs,
                 (unsigned long long)(have_syms ? S.code_bytes : 0));
        snprintf(msg, sizeof msg, "flash %llu bytes (text+rodata %llu, data "
                 "%llu; code %llu, model constants %llu), RAM %llu bytes "
                 "(data+bss incl. arena %llu and stack %lld; naive arena "
                 "%llu)", text + data, text, data,
                 (unsigned long long)(have_syms ? S.code_bytes : 0),
                 (unsigned long long)pi.const_bytes, data + bss,
                 (unsigned long long)pi.arena_bytes, stack,
                 (unsigned long long)pi.naive_bytes);
        ctx->report(ctx->ctx, "size", tool, CRUCIBLE_VERDICT_PASS, msg, metrics);
    } else {
        ctx->report(ctx->ctx, "size", tool, CRUCIBLE_VERDICT_FAIL,
                    "could not read the ELF's section sizes", NULL);
    }
    snprintf(tool2, sizeof tool2, "%sobjcopy", pre ? pre : "");
    const char *oargv[] = {tool2, "-O", "binary", "fw.elf", "fw.bin", NULL};
    st = run_tool(h, tl, oargv, ctx->workdir, 60, cpkg, &res);
    tl->free_result(h, &res);
    snprintf(path, sizeof path, "%s/fw.bin", ctx->workdir);
    if (st == CRUCIBLE_OK && ctx->sink && ctx->sink->emit_file) {
        ctx->sink->emit_file(ctx->sink->ctx, "bin/fw.bin", path);
        const char *fam = mcugen_board_get(t, bd, "image", "uf2_family");
        if (fam) {
            uint8_t *bin = NULL, *uf2 = NULL;
            size_t bl = 0, ul = 0;
            if (!read_all(h, path, &bin, &bl)) {
                if (!mcugen_uf2(h, bin, bl,
                                (uint32_t)bget_u(t, bd, "image", "uf2_base", 0x10000000),
                                (uint32_t)parse_u(fam), &uf2, &ul)) {
                    ctx->sink->emit(ctx->sink->ctx, "bin/fw.uf2", uf2, ul);
                    crucible_free(h, uf2, ul);
                }
                crucible_free(h, bin, bl + 1);
            }
        }
    }

    /* run in QEMU */
    const char *qemu = mcugen_board_get(t, bd, "emulator", "qemu");
    const char *mach = mcugen_board_get(t, bd, "emulator", "machine");
    const char *extra = mcugen_board_get(t, bd, "emulator", "flags");
    const char *qpkg = mcugen_board_get(t, bd, "emulator", "debian_package");
    int64_t tmo = bget_u(t, bd, "emulator", "timeout_s", 60);
    const char *tmo_cfg =
        CRUCIBLE_HAS_FIELD(ctx->hdr, crucible_verify_ctx, config) && ctx->config
            ? crucible_kv_get(ctx->config, inj_sec, "timeout_s") : NULL;
    if (tmo_cfg) { /* the project's bound wins over the board's */
        int64_t v = parse_u(tmo_cfg);
        if (v <= 0) {
            snprintf(msg, sizeof msg, "[%s] timeout_s = '%s' is not a "
                     "positive number of seconds", inj_sec, tmo_cfg);
            ctx->report(ctx->ctx, "run", qemu, CRUCIBLE_VERDICT_FAIL, msg, NULL);
            syms_free(h, &S);
            return CRUCIBLE_OK;
        }
        tmo = v;
    }
    char mstore[512];
    const char *qargv[40];
    int qa = 0, qa_sh;
    qargv[qa++] = qemu;
    qargv[qa++] = "-M";
    qargv[qa++] = mach;
    qargv[qa++] = "-nographic";
    qargv[qa++] = "-monitor";
    qargv[qa++] = "none";
    qargv[qa++] = "-serial";
    qargv[qa++] = "none";
    qargv[qa++] = "-semihosting-config";
    qa_sh = qa;
    qargv[qa++] = "enable=on,target=native";
    snprintf(mstore, sizeof mstore, "%s", extra ? extra : "");
    for (char *p = mstore; *p && qa < 24;) {
        while (*p == ' ') *p++ = 0;
        if (!*p) break;
        qargv[qa++] = p;
        while (*p && *p != ' ') p++;
    }
    qargv[qa++] = "-kernel";
    qargv[qa++] = "fw.elf";
    qargv[qa] = NULL;
    st = run_tool(h, tl, qargv, ctx->workdir, tmo > 0 ? (double)tmo : 60, qpkg,
                  &res);
    if (st != CRUCIBLE_OK) {
        char ex[600];
        excerpt(res.output, ex, sizeof ex);
        if (st == CRUCIBLE_E_SKIPPED)
            snprintf(msg, sizeof msg, "%s", res.output && *res.output ? res.output
                     : "qemu not found");
        else if (st == CRUCIBLE_E_TIMEOUT)
            snprintf(msg, sizeof msg, "the firmware did not finish within %lld s "
                     "in %s -M %s (hang?): %s", (long long)tmo, qemu, mach, ex);
        else
            snprintf(msg, sizeof msg, "%s failed (%s, exit code %d): %s", qemu,
                     crucible_status_str(st), res.exit_code, ex);
        tl->free_result(h, &res);
        ctx->report(ctx->ctx, "run", qemu,
                    st == CRUCIBLE_E_SKIPPED ? CRUCIBLE_VERDICT_SKIPPED
                                             : CRUCIBLE_VERDICT_FAIL, msg, NULL);
        syms_free(h, &S);
        return CRUCIBLE_OK;
    }
    double secs = res.seconds;
    if (res.output && ctx->sink && ctx->sink->emit)
        ctx->sink->emit(ctx->sink->ctx, "logs/qemu.txt", res.output,
                        res.output_len);
    /* measured stack use (the runtime paints the stack) */
    long long stack_used = -1;
    const char *sm = res.output ? strstr(res.output, "CRUCIBLE-STACK ") : NULL;
    if (sm) stack_used = (long long)strtoul(sm + 15, NULL, 16);
    /* parse and compare */
    const char *o = res.output ? strstr(res.output, "CRUCIBLE-BEGIN\n") : NULL;
    uint64_t ne = numel(gy), values = 0, mism = 0;
    msg[0] = 0;
    int verdict = CRUCIBLE_VERDICT_FAIL;
    if (!o) {
        excerpt(res.output, why, sizeof why);
        snprintf(msg, sizeof msg, "no harness output from the firmware: %s", why);
    } else {
        o += 15;
        uint32_t k;
        for (k = 0; k < ctx->n_samples; k++) {
            const uint8_t *want = ctx->samples[k]->outputs[0]->data;
            const uint32_t es = esz(gy);
            if (o[0] != 'S' || strlen(o) < 6) break;
            if (o[5] == '!') {
                snprintf(msg, sizeof msg, "sample %u: model_run returned an "
                         "error on the target", k);
                break;
            }
            const char *p = o + 6;
            uint64_t j;
            for (j = 0; j < ne; j++) { /* element j: es bytes */
                uint8_t got[4];
                uint32_t b;
                for (b = 0; b < es; b++, p += 2) {
                    int hi = hexv(p[0]), lo = hexv(p[1]);
                    if (hi < 0 || lo < 0) break;
                    got[b] = (uint8_t)(hi * 16 + lo);
                }
                if (b < es) break;
                values++;
                if (memcmp(got, want + j * es, es)) {
                    if (!mism && es == 4) {
                        float fg, fw;
                        memcpy(&fg, got, 4);
                        memcpy(&fw, want + j * 4, 4);
                        snprintf(msg, sizeof msg, "sample %u, output %s[%llu]: "
                                 "firmware %.9g, reference %.9g (f32 bits "
                                 "differ)", k, gy->name, (unsigned long long)j,
                                 (double)fg, (double)fw);
                    } else if (!mism)
                        snprintf(msg, sizeof msg, "sample %u, output %s[%llu]: "
                                 "firmware %d, reference %d", k, gy->name,
                                 (unsigned long long)j, (int)(int8_t)got[0],
                                 (int)(int8_t)want[j]);
                    mism++;
                }
            }
            if (j < ne) {
                snprintf(msg, sizeof msg, "sample %u: truncated output line", k);
                break;
            }
            const char *nl = strchr(p, '\n');
            if (!nl) break;
            o = nl + 1;
        }
        if (k < ctx->n_samples && !msg[0])
            snprintf(msg, sizeof msg, "the firmware printed %u of %u samples",
                     k, ctx->n_samples);
        else if (k == ctx->n_samples && !mism) {
            verdict = CRUCIBLE_VERDICT_PASS;
            snprintf(msg, sizeof msg, "%u samples bit-exact (%llu %s values) "
                     "in %s -M %s; stack used %lld of %lld bytes",
                     ctx->n_samples, (unsigned long long)values,
                     is_f32(gy) ? "f32" : "int8", qemu, mach,
                     stack_used, stack);
        } else if (mism) {
            size_t l = strlen(msg);
            snprintf(msg + l, sizeof msg - l, "; %llu of %llu values differ",
                     (unsigned long long)mism, (unsigned long long)values);
        }
    }
    tl->free_result(h, &res);
    snprintf(metrics, sizeof metrics, "{\"samples\":%u,\"values\":%llu,"
             "\"mismatches\":%llu,\"seconds\":%.3f,\"stack_used\":%lld}",
             ctx->n_samples, (unsigned long long)values,
             (unsigned long long)mism, secs, stack_used);
    ctx->report(ctx->ctx, "run", qemu, verdict, msg, metrics);

    /* instructions per inference, on request ([target.<id>]
     * count_instructions = true): a second, traced run of sample 0 */
    uint64_t instr = 0;
    int counted = 0;
    if (counting && verdict == CRUCIBLE_VERDICT_PASS && ctx->n_samples) {
        char trace[4096];
        snprintf(trace, sizeof trace, "%s/count.log", ctx->workdir);
        qargv[qa_sh] = "enable=on,target=native,arg=fw.elf,arg=count";
        qa -= 2;
        qargv[qa++] = "-d";
        qargv[qa++] = "in_asm,exec,nochain";
        qargv[qa++] = "-D";
        qargv[qa++] = "count.log";
        qargv[qa++] = "-kernel";
        qargv[qa++] = "fw.elf";
        qargv[qa] = NULL;
        if (!have_syms || !S.have_begin || !S.have_end) {
            ctx->report(ctx->ctx, "count", tool3, CRUCIBLE_VERDICT_FAIL,
                        "the ELF's symbol table has no mcu_count_begin / "
                        "mcu_count_end markers", NULL);
        } else if ((st = run_tool(h, tl, qargv, ctx->workdir,
                                  4.0 * (tmo > 0 ? (double)tmo : 60), qpkg,
                                  &res)) != CRUCIBLE_OK) {
            snprintf(msg, sizeof msg, "traced %s run failed (%s)", qemu,
                     crucible_status_str(st));
            tl->free_result(h, &res);
            ctx->report(ctx->ctx, "count", qemu, CRUCIBLE_VERDICT_FAIL, msg,
                        NULL);
        } else {
            double cs = res.seconds;
            tl->free_result(h, &res);
            if (count_trace(h, trace, &S, &instr, why, sizeof why)) {
                snprintf(msg, sizeof msg, "instruction count failed: %s", why);
                ctx->report(ctx->ctx, "count", qemu, CRUCIBLE_VERDICT_FAIL,
                            msg, NULL);
            } else {
                counted = 1;
                double ipm = pi.macs ? (double)instr / (double)pi.macs : 0.0;
                size_t ml = (size_t)snprintf(
                    metrics, sizeof metrics, "{\"instructions\":%llu,"
                    "\"macs\":%llu,\"instr_per_mac\":%.3f,\"seconds\":%.3f,"
                    "\"functions\":{", (unsigned long long)instr,
                    (unsigned long long)pi.macs, ipm, cs);
                int ml_n = snprintf(msg, sizeof msg, "model_run (sample 0): "
                                    "%llu instructions executed, %llu MACs, "
                                    "%.2f instructions/MAC (QEMU exec trace); "
                                    "by function:", (unsigned long long)instr,
                                    (unsigned long long)pi.macs, ipm);
                size_t mm = ml_n > 0 ? (size_t)ml_n : 0;
                int first = 1;
                for (int top = 0; top < 24; top++) { /* the heaviest first */
                    fsym *best = NULL;
                    for (size_t i = 0; i < S.n; i++)
                        if (S.v[i].count && (!best || S.v[i].count > best->count))
                            best = &S.v[i];
                    if (!best) break;
                    /* every function in the metrics (while they fit) */
                    if (ml + strlen(best->name) + 32 < sizeof metrics)
                        ml += (size_t)snprintf(metrics + ml, sizeof metrics - ml,
                                               "%s\"%s\":%llu", first ? "" : ",",
                                               best->name,
                                               (unsigned long long)best->count);
                    if (top < 6 && mm < sizeof msg)
                        mm += (size_t)snprintf(msg + mm, sizeof msg - mm,
                                               " %s %.1f%%", best->name,
                                               100.0 * (double)best->count /
                                                   (double)(instr ? instr : 1));
                    best->count = 0;
                    first = 0;
                }
                if (ml < sizeof metrics)
                    snprintf(metrics + ml, sizeof metrics - ml, "}}");
                ctx->report(ctx->ctx, "count", qemu, CRUCIBLE_VERDICT_PASS,
                            msg, metrics);
            }
        }
        remove(trace);
    }
    /* the measured figures beside the plan */
    if (have_size && ctx->sink && ctx->sink->emit) {
        sbuf mj = {h, NULL, 0, 0, 0};
        sb_printf(&mj, "{\"arena_bytes\":%llu,\"peak_live_bytes\":%llu,"
                  "\"naive_bytes\":%llu,\"const_bytes\":%llu,\"macs\":%llu,"
                  "\"text\":%llu,\"data\":%llu,\"bss\":%llu,"
                  "\"flash_bytes\":%llu,\"ram_bytes\":%llu,\"code_bytes\":%llu,"
                  "\"stack_reserved\":%lld,\"stack_used\":%lld,"
                  "\"ram_other\":%lld",
                  (unsigned long long)pi.arena_bytes,
                  (unsigned long long)pi.peak_live_bytes,
                  (unsigned long long)pi.naive_bytes,
                  (unsigned long long)pi.const_bytes,
                  (unsigned long long)pi.macs, text, data, bss, text + data,
                  data + bss, (unsigned long long)(have_syms ? S.code_bytes : 0),
                  stack, stack_used,
                  (long long)(data + bss) - (long long)pi.arena_bytes - stack);
        if (counted)
            sb_printf(&mj, ",\"instructions\":%llu,\"instr_per_mac\":%.3f",
                      (unsigned long long)instr,
                      pi.macs ? (double)instr / (double)pi.macs : 0.0);
        sb_puts(&mj, "}\n");
        if (!mj.err)
            ctx->sink->emit(ctx->sink->ctx, "firmware/measured.json", mj.s,
                            mj.len);
        sb_free(&mj);
    }
    syms_free(h, &S);
    return CRUCIBLE_OK;
}
