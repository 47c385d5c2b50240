/*
 * cpu_c_gen.c - generates portable C99 for a whole graph.
 *
 * Files (all text, written by compile() into the work directory and
 * emitted as artifacts):
 *   model.h     the API: model_run(), MODEL_N_INPUTS/OUTPUTS, names, sizes
 *   model.c     weights, the activation arena, kernels, model_run()
 *   harness.c   a main() that runs model_run on raw float32 files
 *   Makefile    builds model_test with the board's compiler and flags
 *   report.json arena size (with reuse) against the naive sum, weights, ...
 *
 * Bit-exactness with the reference interpreter (host/interp*.c,
 * docs/ir-ops.md) is the whole point, so every kernel below is a
 * transcription of the interpreter's loop nest: the same accumulation
 * order (each sum starts at 0.0f, terms are added one at a time in the
 * interpreter's loop order, a bias is added last), float (never double)
 * arithmetic, one IEEE operation per C operator, and the same libm float
 * functions (expf, logf, tanhf, sqrtf, powf, fabsf). The generated file
 * refuses to compile under -ffast-math or with excess precision
 * (FLT_EVAL_METHOD != 0); it must be built with -ffp-contract=off.
 *
 * Constants are printed as C99 hexadecimal float literals ("%a"), which
 * are exact; a tensor holding a NaN is stored as its bit patterns instead
 * (a union), so NaN payloads survive too.
 *
 * Memory: graph inputs and outputs live in the caller's buffers; every
 * other activation lives in one static arena. Buffers are assigned by
 * liveness (a buffer is free again after the last node reading it), larger
 * buffers first, at the lowest free offset; a reshape whose result is not
 * a graph output is an alias of its input, not a copy.
 */
#include "cpu_c_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- text buffer ------------------------------------------------------- */
void cpuc_buf_init(cpuc_buf *b, const crucible_host *host)
{
    memset(b, 0, sizeof *b);
    b->host = host;
}

void cpuc_buf_free(cpuc_buf *b)
{
    if (b->s) crucible_free(b->host, b->s, b->cap);
    b->s = NULL;
    b->len = b->cap = 0;
}

static int buf_reserve(cpuc_buf *b, size_t extra)
{
    if (b->err) return -1;
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t nc = b->cap ? b->cap : 4096;
    while (nc < b->len + extra + 1) {
        if (nc > SIZE_MAX / 2) {
            b->err = 1;
            return -1;
        }
        nc *= 2;
    }
    char *p = b->host->realloc(b->host, b->s, b->cap, nc);
    if (!p) {
        b->err = 1;
        return -1;
    }
    b->s = p;
    b->cap = nc;
    return 0;
}

void cpuc_putn(cpuc_buf *b, const char *s, size_t n)
{
    if (buf_reserve(b, n)) return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

void cpuc_puts(cpuc_buf *b, const char *s)
{
    cpuc_putn(b, s, strlen(s));
}

void cpuc_printf(cpuc_buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->err = 1;
        return;
    }
    if ((size_t)n < sizeof tmp) {
        cpuc_putn(b, tmp, (size_t)n);
        return;
    }
    if (buf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void cpuc_json_str(cpuc_buf *b, const char *s)
{
    if (!s) {
        cpuc_puts(b, "null");
        return;
    }
    cpuc_putn(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            cpuc_printf(b, "\\%c", *p);
        else if (*p < 0x20)
            cpuc_printf(b, "\\u%04x", *p);
        else
            cpuc_putn(b, (const char *)p, 1);
    }
    cpuc_putn(b, "\"", 1);
}

/* C string literal; octal escapes (always 3 digits) for anything odd. */
static void c_str(cpuc_buf *b, const char *s)
{
    cpuc_putn(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            cpuc_printf(b, "\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f || *p == '?')
            cpuc_printf(b, "\\%03o", *p);
        else
            cpuc_putn(b, (const char *)p, 1);
    }
    cpuc_putn(b, "\"", 1);
}

/* Text that is safe inside a C comment and on one line. */
static void c_comment(cpuc_buf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                 (*p >= '0' && *p <= '9') || strchr("_.:+-/()[],= ", *p);
        cpuc_putn(b, ok ? (const char *)p : "?", 1);
    }
}

/* ---- float literals ------------------------------------------------------ */
static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* An exact C99 literal for f, usable in an expression (negative values in
 * parentheses). NaN becomes f_bits(0x...u) and sets *uses_bits. */
static void f32_lit(char *buf, size_t n, float f, int *uses_bits)
{
    if (f != f) {
        snprintf(buf, n, "f_bits(0x%08lxu)", (unsigned long)f32_bits(f));
        if (uses_bits) *uses_bits = 1;
    } else if (isinf(f)) {
        snprintf(buf, n, "%s", f < 0 ? "(-INFINITY)" : "INFINITY");
    } else if (signbit(f)) {
        snprintf(buf, n, "(%af)", (double)f);
    } else {
        snprintf(buf, n, "%af", (double)f);
    }
}

/* ---- allocation helpers ---------------------------------------------------*/
static void *zalloc(const crucible_host *h, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) return NULL;
    size_t bytes = n * size;
    void *p = crucible_alloc(h, bytes);
    if (p) memset(p, 0, bytes ? bytes : 1);
    return p;
}

/* ---- the plan: where every tensor lives --------------------------------- */
enum { T_NONE = 0, T_INPUT, T_OUTPUT, T_CONST, T_ARENA, T_ALIAS };

typedef struct tplan {
    int kind;
    uint32_t index;   /* input/output position, or storage index (arena) */
    int32_t alias_of; /* T_ALIAS: the tensor it shares memory with */
    int emit_const;   /* T_CONST: emit the array */
} tplan;

typedef struct storage {
    uint64_t floats;
    int64_t def, last; /* node indices: written at def, read until last */
    uint64_t offset;   /* in floats */
    int32_t tensor;    /* the tensor that created it */
} storage;

typedef struct gen {
    const crucible_host *host;
    const crucible_graph_view *g;
    tplan *tp;
    storage *st;
    uint32_t n_st;
    uint64_t arena_floats, naive_floats, weight_bytes;
    int uses_bits;
    unsigned helpers; /* H_* bits */
    cpuc_buf body;    /* model_run() statements */
} gen;

enum {
    H_DENSE = 1u << 0, H_MATMUL = 1u << 1, H_CONV = 1u << 2,
    H_CONVT = 1u << 3, H_POOL = 1u << 4, H_GPOOL = 1u << 5,
    H_SOFTMAX = 1u << 6, H_GATHER = 1u << 7, H_REDUCE = 1u << 8,
    H_FMAX = 1u << 9, H_FMIN = 1u << 10,
    /* bits 16.. : strided binary kernels, one per op (see bin_ops) */
    H_BC0 = 1u << 16
};

static const crucible_tensor_view *T(const gen *G, int32_t i)
{
    return crucible_graph_tensor(G->g, i);
}

static int32_t root_of(const gen *G, int32_t t)
{
    while (G->tp[t].kind == T_ALIAS) t = G->tp[t].alias_of;
    return t;
}

/* C expression for the memory of tensor t. */
static void ref(const gen *G, int32_t t, char *buf, size_t n)
{
    t = root_of(G, t);
    const tplan *p = &G->tp[t];
    switch (p->kind) {
    case T_INPUT: snprintf(buf, n, "in%u", p->index); break;
    case T_OUTPUT: snprintf(buf, n, "out%u", p->index); break;
    case T_CONST: snprintf(buf, n, "cw%d", (int)t); break;
    case T_ARENA:
        snprintf(buf, n, "(arena + %llu)",
                 (unsigned long long)G->st[p->index].offset);
        break;
    default: snprintf(buf, n, "0 /* ? */"); break;
    }
}

static int find_output(const crucible_graph_view *g, int32_t t)
{
    for (uint32_t i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == t) return (int)i;
    return -1;
}

static int make_plan(gen *G, char *why, size_t wl)
{
    const crucible_graph_view *g = G->g;
    for (uint32_t i = 0; i < g->n_inputs; i++) {
        int32_t t = g->inputs[i];
        if (!T(G, t)) {
            snprintf(why, wl, "graph input %u refers to no tensor", i);
            return CRUCIBLE_E_INVALID;
        }
        if (G->tp[t].kind == T_NONE) {
            G->tp[t].kind = T_INPUT;
            G->tp[t].index = i;
        }
    }
    /* constants read as data */
    for (uint32_t ni = 0; ni < g->n_nodes; ni++) {
        const crucible_node_view *n = g->nodes[ni];
        for (uint32_t k = 0; k < n->n_inputs; k++) {
            int32_t t = n->inputs[k];
            if (t < 0 || (n->op == CRUCIBLE_OP_RESHAPE && k == 1)) continue;
            if ((T(G, t)->flags & CRUCIBLE_TENSOR_CONST) &&
                G->tp[t].kind == T_NONE) {
                G->tp[t].kind = T_CONST;
                G->tp[t].emit_const = 1;
            }
        }
    }
    for (uint32_t i = 0; i < g->n_outputs; i++) {
        const crucible_tensor_view *t = T(G, g->outputs[i]);
        if (!t) {
            snprintf(why, wl, "graph output %u refers to no tensor", i);
            return CRUCIBLE_E_INVALID;
        }
        if (t->dtype != CRUCIBLE_DT_F32 || !cpuc_numel(t)) {
            snprintf(why, wl, "graph output %s must be f32 of known shape",
                     t->name);
            return CRUCIBLE_E_UNSUPPORTED;
        }
        if ((t->flags & CRUCIBLE_TENSOR_CONST) &&
            G->tp[g->outputs[i]].kind == T_NONE) {
            if (!t->data || t->data_bytes != cpuc_numel(t) * 4) {
                snprintf(why, wl, "constant output %s has no data", t->name);
                return CRUCIBLE_E_INVALID;
            }
            G->tp[g->outputs[i]].kind = T_CONST;
            G->tp[g->outputs[i]].emit_const = 1;
        }
    }
    for (uint32_t i = 0; i < g->n_inputs; i++) {
        const crucible_tensor_view *t = T(G, g->inputs[i]);
        if (t->dtype != CRUCIBLE_DT_F32 || !cpuc_numel(t)) {
            snprintf(why, wl, "dtype %s of graph input %s: cpu-c takes f32 "
                     "inputs of known shape only",
                     t->dtype == CRUCIBLE_DT_F32 ? "f32" : "other", t->name);
            return CRUCIBLE_E_UNSUPPORTED;
        }
    }
    /* node outputs */
    for (uint32_t ni = 0; ni < g->n_nodes; ni++) {
        const crucible_node_view *n = g->nodes[ni];
        int32_t o = n->outputs[0];
        tplan *p = &G->tp[o];
        if (p->kind != T_NONE) {
            snprintf(why, wl, "tensor %s is written by node %s but is "
                     "already an input, constant or node output",
                     T(G, o)->name, n->name);
            return CRUCIBLE_E_INVALID;
        }
        int oi = find_output(g, o);
        if (oi >= 0) {
            p->kind = T_OUTPUT;
            p->index = (uint32_t)oi;
        } else if (n->op == CRUCIBLE_OP_RESHAPE) {
            p->kind = T_ALIAS;
            p->alias_of = n->inputs[0];
        } else {
            storage *s = &G->st[G->n_st];
            s->floats = cpuc_numel(T(G, o));
            s->def = s->last = (int64_t)ni;
            s->tensor = o;
            p->kind = T_ARENA;
            p->index = G->n_st++;
        }
    }
    /* liveness */
    for (uint32_t ni = 0; ni < g->n_nodes; ni++) {
        const crucible_node_view *n = g->nodes[ni];
        for (uint32_t k = 0; k < n->n_inputs; k++) {
            if (n->inputs[k] < 0 || (n->op == CRUCIBLE_OP_RESHAPE && k == 1))
                continue; /* absent, or a shape the output already has */
            int32_t r = root_of(G, n->inputs[k]);
            if (G->tp[r].kind == T_NONE) {
                snprintf(why, wl, "node %s reads tensor %s, which no node "
                         "computes and which is not an input or constant",
                         n->name, T(G, n->inputs[k])->name);
                return CRUCIBLE_E_INVALID;
            }
            if (G->tp[r].kind == T_ARENA) {
                storage *s = &G->st[G->tp[r].index];
                if (s->def > (int64_t)ni) {
                    snprintf(why, wl, "node %s reads %s before it is "
                             "computed (graph not in topological order)",
                             n->name, T(G, n->inputs[k])->name);
                    return CRUCIBLE_E_INVALID;
                }
                if ((int64_t)ni > s->last) s->last = (int64_t)ni;
            }
        }
    }
    for (uint32_t i = 0; i < g->n_outputs; i++)
        if (G->tp[root_of(G, g->outputs[i])].kind == T_NONE) {
            snprintf(why, wl, "graph output %s is never computed",
                     T(G, g->outputs[i])->name);
            return CRUCIBLE_E_INVALID;
        }
    /* arena placement: larger buffers first, lowest free offset */
    uint32_t *order = zalloc(G->host, G->n_st + 1, sizeof *order);
    uint32_t *placed = zalloc(G->host, G->n_st + 1, sizeof *placed);
    if (!order || !placed) {
        if (order) crucible_free(G->host, order, (G->n_st + 1) * sizeof *order);
        if (placed) crucible_free(G->host, placed, (G->n_st + 1) * sizeof *placed);
        snprintf(why, wl, "out of memory");
        return CRUCIBLE_E_NOMEM;
    }
    for (uint32_t i = 0; i < G->n_st; i++) {
        uint32_t j = i;
        while (j > 0) {
            const storage *a = &G->st[order[j - 1]], *b = &G->st[i];
            if (a->floats > b->floats ||
                (a->floats == b->floats && a->def <= b->def))
                break;
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
        G->naive_floats += G->st[i].floats;
    }
    uint32_t n_placed = 0;
    for (uint32_t k = 0; k < G->n_st; k++) {
        storage *s = &G->st[order[k]];
        uint64_t size = s->floats;
        uint64_t cand = 0;
        int moved = 1;
        while (moved) { /* first gap among overlapping live buffers */
            moved = 0;
            for (uint32_t q = 0; q < n_placed; q++) {
                const storage *p = &G->st[placed[q]];
                if (p->last < s->def || s->last < p->def) continue;
                uint64_t pend = p->offset + p->floats;
                if (cand < pend && p->offset < cand + size) {
                    cand = pend;
                    moved = 1;
                }
            }
        }
        s->offset = cand;
        placed[n_placed++] = order[k];
        if (cand + size > G->arena_floats) G->arena_floats = cand + size;
    }
    crucible_free(G->host, order, (G->n_st + 1) * sizeof *order);
    crucible_free(G->host, placed, (G->n_st + 1) * sizeof *placed);
    if (G->arena_floats > CPUC_MAX_ELEMS) {
        snprintf(why, wl, "the activation arena needs %llu floats; cpu-c is "
                 "limited to 2^31-1", (unsigned long long)G->arena_floats);
        return CRUCIBLE_E_LIMIT;
    }
    return CRUCIBLE_OK;
}

/* ---- kernels (text of the generated helpers) ------------------------------
 * Each is a transcription of the matching loop nest in host/interp_nn.c /
 * host/interp.c. Keep them in step with the interpreter. */
static const char K_FBITS[] =
    "static float f_bits(uint32_t u)\n"
    "{\n"
    "    float f;\n"
    "    memcpy(&f, &u, sizeof f);\n"
    "    return f;\n"
    "}\n\n";

static const char K_FMAX[] =
    "/* max/min: a NaN in the first operand wins, as in the interpreter */\n"
    "static float f_max(float a, float b)\n"
    "{\n"
    "    return (a >= b || a != a) ? a : b;\n"
    "}\n\n";

static const char K_FMIN[] =
    "static float f_min(float a, float b)\n"
    "{\n"
    "    return (a <= b || a != a) ? a : b;\n"
    "}\n\n";

static const char K_DENSE[] =
    "/* y[r][m] = (sum_k x[r][k] * w[m][k], k ascending) + b[m] */\n"
    "static void k_dense(const float *x, const float *w, const float *b,\n"
    "                    float *y, long rows, long M, long K)\n"
    "{\n"
    "    for (long r = 0; r < rows; r++) {\n"
    "        const float *xr = x + r * K;\n"
    "        for (long m = 0; m < M; m++) {\n"
    "            const float *wr = w + m * K;\n"
    "            float acc = 0.0f;\n"
    "            for (long k = 0; k < K; k++) acc += xr[k] * wr[k];\n"
    "            y[r * M + m] = b ? acc + b[m] : acc;\n"
    "        }\n"
    "    }\n"
    "}\n\n";

static const char K_MATMUL[] =
    "/* one matrix of a (batched) matmul: Y[R][C] = A[R][K] B[K][C] */\n"
    "static void k_matmul(const float *A, const float *B, float *Y, long R,\n"
    "                     long K, long C)\n"
    "{\n"
    "    for (long i = 0; i < R; i++)\n"
    "        for (long j = 0; j < C; j++) {\n"
    "            float acc = 0.0f;\n"
    "            for (long k = 0; k < K; k++) acc += A[i * K + k] * B[k * C + j];\n"
    "            Y[i * C + j] = acc;\n"
    "        }\n"
    "}\n\n";

static const char K_CONV[] =
    "/* conv2d, NCHW, w [O][C/G][KH][KW]; per output: ic, kh, kw ascending,\n"
    " * padding taps skipped, bias added last */\n"
    "static void k_conv2d(const float *x, const float *w, const float *b,\n"
    "                     float *y, long N, long C, long H, long W, long O,\n"
    "                     long OH, long OW, long KH, long KW, long G, long sh,\n"
    "                     long sw, long dh, long dw, long pt, long pl)\n"
    "{\n"
    "    const long icg = C / G, ocg = O / G;\n"
    "    for (long nb = 0; nb < N; nb++)\n"
    "        for (long oc = 0; oc < O; oc++) {\n"
    "            const long gi = oc / ocg;\n"
    "            const float *wo = w + oc * icg * KH * KW;\n"
    "            float *yo = y + (nb * O + oc) * OH * OW;\n"
    "            for (long oh = 0; oh < OH; oh++)\n"
    "                for (long ow = 0; ow < OW; ow++) {\n"
    "                    const long ih0 = oh * sh - pt, iw0 = ow * sw - pl;\n"
    "                    float acc = 0.0f;\n"
    "                    for (long ic = 0; ic < icg; ic++) {\n"
    "                        const float *xc = x + (nb * C + gi * icg + ic) * H * W;\n"
    "                        const float *wc = wo + ic * KH * KW;\n"
    "                        for (long kh = 0; kh < KH; kh++) {\n"
    "                            const long ih = ih0 + kh * dh;\n"
    "                            if (ih < 0 || ih >= H) continue;\n"
    "                            for (long kw = 0; kw < KW; kw++) {\n"
    "                                const long iw = iw0 + kw * dw;\n"
    "                                if (iw < 0 || iw >= W) continue;\n"
    "                                acc += xc[ih * W + iw] * wc[kh * KW + kw];\n"
    "                            }\n"
    "                        }\n"
    "                    }\n"
    "                    yo[oh * OW + ow] = b ? acc + b[oc] : acc;\n"
    "                }\n"
    "        }\n"
    "}\n\n";

static const char K_CONVT[] =
    "/* conv_transpose2d in gather form, w [C][O/G][KH][KW] */\n"
    "static void k_conv_t2d(const float *x, const float *w, const float *b,\n"
    "                       float *y, long N, long C, long H, long W, long O,\n"
    "                       long OH, long OW, long KH, long KW, long G,\n"
    "                       long sh, long sw, long dh, long dw, long pt,\n"
    "                       long pl)\n"
    "{\n"
    "    const long icg = C / G, ocg = O / G;\n"
    "    for (long nb = 0; nb < N; nb++)\n"
    "        for (long oc = 0; oc < O; oc++) {\n"
    "            const long gi = oc / ocg, j = oc % ocg;\n"
    "            float *yo = y + (nb * O + oc) * OH * OW;\n"
    "            for (long oh = 0; oh < OH; oh++)\n"
    "                for (long ow = 0; ow < OW; ow++) {\n"
    "                    float acc = 0.0f;\n"
    "                    for (long ic = 0; ic < icg; ic++) {\n"
    "                        const long c = gi * icg + ic;\n"
    "                        const float *xc = x + (nb * C + c) * H * W;\n"
    "                        const float *wc = w + (c * ocg + j) * KH * KW;\n"
    "                        for (long kh = 0; kh < KH; kh++) {\n"
    "                            const long th = oh + pt - kh * dh;\n"
    "                            if (th < 0 || th % sh) continue;\n"
    "                            const long ih = th / sh;\n"
    "                            if (ih >= H) continue;\n"
    "                            for (long kw = 0; kw < KW; kw++) {\n"
    "                                const long tw = ow + pl - kw * dw;\n"
    "                                if (tw < 0 || tw % sw) continue;\n"
    "                                const long iw = tw / sw;\n"
    "                                if (iw >= W) continue;\n"
    "                                acc += xc[ih * W + iw] * wc[kh * KW + kw];\n"
    "                            }\n"
    "                        }\n"
    "                    }\n"
    "                    yo[oh * OW + ow] = b ? acc + b[oc] : acc;\n"
    "                }\n"
    "        }\n"
    "}\n\n";

static const char K_POOL[] =
    "/* max/avg pooling over NC planes; window taps kh, kw ascending. max:\n"
    " * the first in-bounds tap, then any strictly greater one. avg: the sum\n"
    " * divided by the tap count (in-bounds taps, or with count_include_pad\n"
    " * the taps inside the padded input). */\n"
    "static void k_pool2d(const float *x, float *y, long NC, long H, long W,\n"
    "                     long OH, long OW, long KH, long KW, long sh, long sw,\n"
    "                     long dh, long dw, long pt, long pl, long pb, long pr,\n"
    "                     int is_max, int cip)\n"
    "{\n"
    "    for (long c = 0; c < NC; c++) {\n"
    "        const float *xc = x + c * H * W;\n"
    "        float *yc = y + c * OH * OW;\n"
    "        for (long oh = 0; oh < OH; oh++)\n"
    "            for (long ow = 0; ow < OW; ow++) {\n"
    "                const long ih0 = oh * sh - pt, iw0 = ow * sw - pl;\n"
    "                float acc = 0.0f;\n"
    "                long cnt = 0;\n"
    "                int first = 1;\n"
    "                for (long kh = 0; kh < KH; kh++) {\n"
    "                    const long ih = ih0 + kh * dh;\n"
    "                    const int in_h = ih >= 0 && ih < H;\n"
    "                    const int pad_h = ih >= -pt && ih < H + pb;\n"
    "                    for (long kw = 0; kw < KW; kw++) {\n"
    "                        const long iw = iw0 + kw * dw;\n"
    "                        const int in_w = iw >= 0 && iw < W;\n"
    "                        if (in_h && in_w) {\n"
    "                            const float v = xc[ih * W + iw];\n"
    "                            if (is_max) {\n"
    "                                if (first || v > acc) acc = v;\n"
    "                                first = 0;\n"
    "                            } else {\n"
    "                                acc += v;\n"
    "                                if (!cip) cnt++;\n"
    "                            }\n"
    "                        }\n"
    "                        if (cip && pad_h && iw >= -pl && iw < W + pr) cnt++;\n"
    "                    }\n"
    "                }\n"
    "                yc[oh * OW + ow] = is_max ? acc : acc / (float)cnt;\n"
    "            }\n"
    "    }\n"
    "}\n\n";

static const char K_GPOOL[] =
    "/* global pooling over S elements per plane, in memory order */\n"
    "static void k_gpool(const float *x, float *y, long NC, long S, int is_max)\n"
    "{\n"
    "    for (long c = 0; c < NC; c++) {\n"
    "        const float *xc = x + c * S;\n"
    "        if (is_max) {\n"
    "            float m = xc[0];\n"
    "            for (long i = 1; i < S; i++)\n"
    "                if (xc[i] > m) m = xc[i];\n"
    "            y[c] = m;\n"
    "        } else {\n"
    "            float acc = 0.0f;\n"
    "            for (long i = 0; i < S; i++) acc += xc[i];\n"
    "            y[c] = acc / (float)S;\n"
    "        }\n"
    "    }\n"
    "}\n\n";

static const char K_SOFTMAX[] =
    "/* (log_)softmax along an axis of length L: max, then exp(x - max)\n"
    " * summed in order, then a division (or x - max - log(sum)) */\n"
    "static void k_softmax(const float *x, float *y, long outer, long L,\n"
    "                      long inner, int is_log)\n"
    "{\n"
    "    for (long q = 0; q < outer; q++)\n"
    "        for (long i = 0; i < inner; i++) {\n"
    "            const float *xs = x + q * L * inner + i;\n"
    "            float *ys = y + q * L * inner + i;\n"
    "            float m = xs[0];\n"
    "            for (long a = 1; a < L; a++)\n"
    "                if (xs[a * inner] > m) m = xs[a * inner];\n"
    "            float s = 0.0f;\n"
    "            if (is_log) {\n"
    "                for (long a = 0; a < L; a++) s += expf(xs[a * inner] - m);\n"
    "                const float ls = logf(s);\n"
    "                for (long a = 0; a < L; a++)\n"
    "                    ys[a * inner] = (xs[a * inner] - m) - ls;\n"
    "            } else {\n"
    "                for (long a = 0; a < L; a++) {\n"
    "                    const float e = expf(xs[a * inner] - m);\n"
    "                    ys[a * inner] = e;\n"
    "                    s += e;\n"
    "                }\n"
    "                for (long a = 0; a < L; a++) ys[a * inner] = ys[a * inner] / s;\n"
    "            }\n"
    "        }\n"
    "}\n\n";

static const char K_GATHER[] =
    "/* y[j] = x[off(j)]: walks y in row-major order, x by strides st\n"
    " * (transpose) */\n"
    "static void k_gather(const float *x, float *y, long n, int rank,\n"
    "                     const long *dims, const long *st)\n"
    "{\n"
    "    long idx[8] = {0}, off = 0;\n"
    "    for (long j = 0; j < n; j++) {\n"
    "        y[j] = x[off];\n"
    "        for (int d = rank - 1; d >= 0; d--) {\n"
    "            off += st[d];\n"
    "            if (++idx[d] < dims[d]) break;\n"
    "            off -= st[d] * dims[d];\n"
    "            idx[d] = 0;\n"
    "        }\n"
    "    }\n"
    "}\n\n";

static const char K_REDUCE[] =
    "/* reductions: for each output element (kept dims, row-major), its\n"
    " * input elements in row-major order of the reduced dims. mode 0 sum,\n"
    " * 1 mean (sum / cnt), 2 max (first element, then any greater one). */\n"
    "static void k_reduce(const float *x, float *y, long no, int kr,\n"
    "                     const long *kd, const long *ks, long nr, int rr,\n"
    "                     const long *rd, const long *rs, int mode, float cnt)\n"
    "{\n"
    "    long ki[8] = {0}, base = 0;\n"
    "    for (long j = 0; j < no; j++) {\n"
    "        long ri[8] = {0}, off = 0;\n"
    "        float acc = mode == 2 ? x[base] : 0.0f;\n"
    "        for (long e = 0; e < nr; e++) {\n"
    "            const float v = x[base + off];\n"
    "            if (mode == 2) {\n"
    "                if (v > acc) acc = v;\n"
    "            } else {\n"
    "                acc += v;\n"
    "            }\n"
    "            for (int d = rr - 1; d >= 0; d--) {\n"
    "                off += rs[d];\n"
    "                if (++ri[d] < rd[d]) break;\n"
    "                off -= rs[d] * rd[d];\n"
    "                ri[d] = 0;\n"
    "            }\n"
    "        }\n"
    "        y[j] = mode == 1 ? acc / cnt : acc;\n"
    "        for (int d = kr - 1; d >= 0; d--) {\n"
    "            base += ks[d];\n"
    "            if (++ki[d] < kd[d]) break;\n"
    "            base -= ks[d] * kd[d];\n"
    "            ki[d] = 0;\n"
    "        }\n"
    "    }\n"
    "}\n\n";

/* Binary ops: index into bin_ops by op, the C expression of x (first
 * operand) and v (second). */
typedef struct bin_op {
    int32_t op;
    const char *name, *expr;
} bin_op;

static const bin_op bin_ops[] = {
    {CRUCIBLE_OP_ADD, "add", "x + v"},
    {CRUCIBLE_OP_SUB, "sub", "x - v"},
    {CRUCIBLE_OP_MUL, "mul", "x * v"},
    {CRUCIBLE_OP_DIV, "div", "x / v"},
    {CRUCIBLE_OP_POW, "pow", "powf(x, v)"},
    {CRUCIBLE_OP_MAX, "max", "f_max(x, v)"},
    {CRUCIBLE_OP_MIN, "min", "f_min(x, v)"},
    {CRUCIBLE_OP_PRELU, "prelu", "x < 0.0f ? v * x : x"},
};
#define N_BIN_OPS (sizeof bin_ops / sizeof bin_ops[0])

static int bin_index(int32_t op)
{
    for (size_t i = 0; i < N_BIN_OPS; i++)
        if (bin_ops[i].op == op) return (int)i;
    return -1;
}

static void emit_bc_kernel(cpuc_buf *b, const bin_op *bo)
{
    cpuc_printf(b,
        "/* %s with numpy broadcasting: walks y in row-major order, a and b\n"
        " * by strides (0 along broadcast dims) */\n"
        "static void k_bc_%s(const float *a, const float *b, float *y, long n,\n"
        "                    int rank, const long *dims, const long *sa,\n"
        "                    const long *sb)\n"
        "{\n"
        "    long idx[8] = {0}, oa = 0, ob = 0;\n"
        "    for (long j = 0; j < n; j++) {\n"
        "        const float x = a[oa], v = b[ob];\n"
        "        y[j] = %s;\n"
        "        for (int d = rank - 1; d >= 0; d--) {\n"
        "            oa += sa[d];\n"
        "            ob += sb[d];\n"
        "            if (++idx[d] < dims[d]) break;\n"
        "            oa -= sa[d] * dims[d];\n"
        "            ob -= sb[d] * dims[d];\n"
        "            idx[d] = 0;\n"
        "        }\n"
        "    }\n"
        "}\n\n",
        bo->name, bo->name, bo->expr);
}

/* ---- per-node code --------------------------------------------------------*/
static void put_longs(cpuc_buf *b, const int64_t *v, int32_t n)
{
    cpuc_puts(b, "{");
    for (int32_t i = 0; i < n; i++)
        cpuc_printf(b, "%s%lld", i ? ", " : "", (long long)v[i]);
    if (n == 0) cpuc_puts(b, "0");
    cpuc_puts(b, "}");
}

/* Broadcast strides (elements) of shape (r, d) against output rank ro. */
static void bcast_strides(int32_t r, const int64_t *d, int32_t ro,
                          int64_t *st)
{
    int64_t s = 1;
    for (int32_t i = ro - 1; i >= 0; i--) {
        int32_t ai = i - (ro - r);
        if (ai < 0) {
            st[i] = 0;
            continue;
        }
        st[i] = d[ai] == 1 ? 0 : s;
        s *= d[ai];
    }
}

/* 0: operand is the output shape (index [j]); 1: a scalar ([0]);
 * 2: needs strides. */
static int operand_kind(const crucible_tensor_view *a,
                        const crucible_tensor_view *o)
{
    if (cpuc_numel(a) == 1) return 1;
    if (cpuc_numel(a) != cpuc_numel(o)) return 2;
    /* same element count and broadcastable: the same shape up to 1s */
    return 0;
}

static void emit_binary(gen *G, const crucible_node_view *n,
                        const crucible_tensor_view *o, const char *yref,
                        int32_t ta, int32_t tb, int bi, int in_place)
{
    cpuc_buf *b = &G->body;
    char ra[64], rb[64];
    if (in_place)
        snprintf(ra, sizeof ra, "%s", yref);
    else
        ref(G, ta, ra, sizeof ra);
    ref(G, tb, rb, sizeof rb);
    const crucible_tensor_view *A = in_place ? o : T(G, ta), *B = T(G, tb);
    int ka = operand_kind(A, o), kb = operand_kind(B, o);
    unsigned long long ne = (unsigned long long)cpuc_numel(o);
    (void)n;
    if (ka != 2 && kb != 2) {
        cpuc_printf(b,
            "    for (long j = 0; j < %llu; j++) {\n"
            "        const float x = %s[%s], v = %s[%s];\n"
            "        %s[j] = %s;\n"
            "    }\n",
            ne, ra, ka ? "0" : "j", rb, kb ? "0" : "j", yref,
            bin_ops[bi].expr);
        return;
    }
    int64_t sa[CRUCIBLE_MAX_RANK], sb[CRUCIBLE_MAX_RANK];
    bcast_strides(A->rank, A->dims, o->rank, sa);
    bcast_strides(B->rank, B->dims, o->rank, sb);
    G->helpers |= H_BC0 << bi;
    cpuc_puts(b, "    {\n        static const long dims[] = ");
    put_longs(b, o->dims, o->rank);
    cpuc_puts(b, ", sa[] = ");
    put_longs(b, sa, o->rank);
    cpuc_puts(b, ", sb[] = ");
    put_longs(b, sb, o->rank);
    cpuc_printf(b, ";\n        k_bc_%s(%s, %s, %s, %llu, %d, dims, sa, sb);\n    }\n",
                bin_ops[bi].name, ra, rb, yref, ne, (int)o->rank);
}

static int emit_node(gen *G, uint32_t ni, char *why, size_t wl)
{
    const crucible_graph_view *g = G->g;
    const crucible_node_view *n = g->nodes[ni];
    cpuc_buf *b = &G->body;
    const int32_t to = n->outputs[0];
    const crucible_tensor_view *o = T(G, to);
    const int32_t tx = n->n_inputs > 0 ? n->inputs[0] : -1;
    const crucible_tensor_view *x = tx >= 0 ? T(G, tx) : NULL;
    const crucible_tensor_view *w =
        n->n_inputs > 1 && n->inputs[1] >= 0 ? T(G, n->inputs[1]) : NULL;
    const int32_t tb = n->n_inputs > 2 ? n->inputs[2] : -1;
    char rx[64] = "", rw[64] = "", rbias[64] = "0", ry[64];
    const unsigned long long ne = (unsigned long long)cpuc_numel(o);

    if (x) ref(G, tx, rx, sizeof rx);
    if (w) ref(G, n->inputs[1], rw, sizeof rw);
    if (tb >= 0) ref(G, tb, rbias, sizeof rbias);
    ref(G, to, ry, sizeof ry);

    cpuc_puts(b, "    /* node ");
    c_comment(b, n->name);
    cpuc_printf(b, ": %s(", n->op_name);
    for (uint32_t k = 0; k < n->n_inputs; k++) {
        if (k) cpuc_puts(b, ", ");
        c_comment(b, n->inputs[k] >= 0 ? T(G, n->inputs[k])->name : "_");
    }
    cpuc_puts(b, ") -> ");
    c_comment(b, o->name);
    cpuc_puts(b, " [");
    for (int32_t i = 0; i < o->rank; i++)
        cpuc_printf(b, "%s%lld", i ? "," : "", (long long)o->dims[i]);
    cpuc_puts(b, "] */\n");

    switch (n->op) {
    case CRUCIBLE_OP_DENSE:
        G->helpers |= H_DENSE;
        cpuc_printf(b, "    k_dense(%s, %s, %s, %s, %lld, %lld, %lld);\n", rx,
                    rw, rbias, ry, (long long)o->dims[0],
                    (long long)w->dims[0], (long long)w->dims[1]);
        return CRUCIBLE_OK;
    case CRUCIBLE_OP_MATMUL: {
        const int64_t R = x->rank >= 2 ? x->dims[x->rank - 2] : 1;
        const int64_t K = x->dims[x->rank - 1];
        const int64_t C = w->rank >= 2 ? w->dims[w->rank - 1] : 1;
        int32_t ba = x->rank > 2 ? x->rank - 2 : 0;
        int32_t bb = w->rank > 2 ? w->rank - 2 : 0;
        int32_t rb = ba > bb ? ba : bb;
        int64_t sa[CRUCIBLE_MAX_RANK], sb[CRUCIBLE_MAX_RANK];
        int64_t idx[CRUCIBLE_MAX_RANK] = {0}, oa = 0, ob = 0;
        uint64_t nbatch = 1;
        G->helpers |= H_MATMUL;
        for (int32_t i = 0; i < rb; i++) nbatch *= (uint64_t)o->dims[i];
        if (nbatch == 1) {
            cpuc_printf(b, "    k_matmul(%s, %s, %s, %lld, %lld, %lld);\n", rx,
                        rw, ry, (long long)R, (long long)K, (long long)C);
            return CRUCIBLE_OK;
        }
        bcast_strides(ba, x->dims, rb, sa);
        bcast_strides(bb, w->dims, rb, sb);
        cpuc_buf *bo = b;
        cpuc_printf(bo, "    {\n        static const long ao[%llu] = {",
                    (unsigned long long)nbatch);
        /* the interpreter's batch walk: row-major over the output batch
         * dims, operands by broadcast strides */
        for (int pass = 0; pass < 2; pass++) {
            memset(idx, 0, sizeof idx);
            oa = ob = 0;
            if (pass == 1) cpuc_puts(bo, "};\n        static const long bo[] = {");
            for (uint64_t k = 0; k < nbatch; k++) {
                cpuc_printf(bo, "%s%s%lld", k ? "," : "",
                            k % 16 == 15 ? "\n            " : "",
                            (long long)(pass ? ob * K * C : oa * R * K));
                for (int32_t d = rb - 1; d >= 0; d--) {
                    oa += sa[d];
                    ob += sb[d];
                    if (++idx[d] < o->dims[d]) break;
                    oa -= sa[d] * o->dims[d];
                    ob -= sb[d] * o->dims[d];
                    idx[d] = 0;
                }
            }
        }
        cpuc_printf(bo,
            "};\n"
            "        for (long i = 0; i < %llu; i++)\n"
            "            k_matmul(%s + ao[i], %s + bo[i], %s + i * %lld, %lld, %lld, %lld);\n"
            "    }\n",
            (unsigned long long)nbatch, rx, rw, ry, (long long)(R * C),
            (long long)R, (long long)K, (long long)C);
        return CRUCIBLE_OK;
    }
    case CRUCIBLE_OP_CONV2D:
    case CRUCIBLE_OP_CONV_TRANSPOSE2D: {
        cpuc_conv p;
        int rc = cpuc_conv_params(n, &p, why, wl);
        if (rc) return rc;
        int t = n->op == CRUCIBLE_OP_CONV_TRANSPOSE2D;
        G->helpers |= t ? H_CONVT : H_CONV;
        cpuc_printf(b,
            "    %s(%s, %s, %s, %s,\n"
            "             %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld,\n"
            "             %lld, %lld, %lld, %lld, %lld, %lld, %lld);\n",
            t ? "k_conv_t2d" : "k_conv2d", rx, rw, rbias, ry,
            (long long)x->dims[0], (long long)x->dims[1],
            (long long)x->dims[2], (long long)x->dims[3],
            (long long)o->dims[1], (long long)o->dims[2],
            (long long)o->dims[3], (long long)w->dims[2],
            (long long)w->dims[3], (long long)p.group,
            (long long)p.stride[0], (long long)p.stride[1],
            (long long)p.dil[0], (long long)p.dil[1], (long long)p.pad[0],
            (long long)p.pad[1]);
        return CRUCIBLE_OK;
    }
    case CRUCIBLE_OP_MAX_POOL2D:
    case CRUCIBLE_OP_AVG_POOL2D: {
        cpuc_pool p;
        int rc = cpuc_pool_params(n, &p, why, wl);
        if (rc) return rc;
        G->helpers |= H_POOL;
        cpuc_printf(b,
            "    k_pool2d(%s, %s, %lld, %lld, %lld, %lld, %lld, %lld, %lld,\n"
            "             %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %d, %d);\n",
            rx, ry, (long long)(x->dims[0] * x->dims[1]),
            (long long)x->dims[2], (long long)x->dims[3],
            (long long)o->dims[2], (long long)o->dims[3],
            (long long)p.kernel[0], (long long)p.kernel[1],
            (long long)p.stride[0], (long long)p.stride[1],
            (long long)p.dil[0], (long long)p.dil[1], (long long)p.pad[0],
            (long long)p.pad[1], (long long)p.pad[2], (long long)p.pad[3],
            n->op == CRUCIBLE_OP_MAX_POOL2D, p.count_include_pad);
        return CRUCIBLE_OK;
    }
    case CRUCIBLE_OP_GLOBAL_AVG_POOL:
    case CRUCIBLE_OP_GLOBAL_MAX_POOL: {
        const int64_t NC = x->dims[0] * x->dims[1];
        G->helpers |= H_GPOOL;
        cpuc_printf(b, "    k_gpool(%s, %s, %lld, %lld, %d);\n", rx, ry,
                    (long long)NC, (long long)(cpuc_numel(x) / (uint64_t)NC),
                    n->op == CRUCIBLE_OP_GLOBAL_MAX_POOL);
        return CRUCIBLE_OK;
    }
    case CRUCIBLE_OP_ADD: case CRUCIBLE_OP_SUB: case CRUCIBLE_OP_MUL:
    case CRUCIBLE_OP_DIV: case CRUCIBLE_OP_POW: case CRUCIBLE_OP_MAX:
    case CRUCIBLE_OP_MIN: case CRUCIBLE_OP_PRELU: {
        int bi = bin_index(n->op);
        if (n->op == CRUCIBLE_OP_MAX) G->helpers |= H_FMAX;
        if (n->op == CRUCIBLE_OP_MIN) G->helpers |= H_FMIN;
        if (n->n_inputs == 1) {
            cpuc_printf(b, "    memcpy(%s, %s, %llu * sizeof(float));\n", ry,
                        rx, ne);
            return CRUCIBLE_OK;
        }
        emit_binary(G, n, o, ry, tx, n->inputs[1], bi, 0);
        for (uint32_t k = 2; k < n->n_inputs; k++)
            emit_binary(G, n, o, ry, to, n->inputs[k], bi, 1);
        return CRUCIBLE_OK;
    }
    case CRUCIBLE_OP_RELU: case CRUCIBLE_OP_LEAKY_RELU:
    case CRUCIBLE_OP_SIGMOID: case CRUCIBLE_OP_TANH: case CRUCIBLE_OP_EXP:
    case CRUCIBLE_OP_LOG: case CRUCIBLE_OP_SQRT: case CRUCIBLE_OP_NEG:
    case CRUCIBLE_OP_ABS: case CRUCIBLE_OP_HARD_SIGMOID:
    case CRUCIBLE_OP_HARD_SWISH: case CRUCIBLE_OP_CLIP: {
        char l1[64], l2[64], body[256];
        float alpha = 0.0f, beta = 0.0f, lo = -INFINITY, hi = INFINITY;
        switch (n->op) {
        case CRUCIBLE_OP_RELU: snprintf(body, sizeof body, "y[j] = v < 0.0f ? 0.0f : v;"); break;
        case CRUCIBLE_OP_LEAKY_RELU:
            cpuc_attr_f32(n, "alpha", 0.01f, &alpha);
            f32_lit(l1, sizeof l1, alpha, &G->uses_bits);
            snprintf(body, sizeof body, "y[j] = v < 0.0f ? %s * v : v;", l1);
            break;
        case CRUCIBLE_OP_SIGMOID: snprintf(body, sizeof body, "y[j] = 1.0f / (1.0f + expf(-v));"); break;
        case CRUCIBLE_OP_TANH: snprintf(body, sizeof body, "y[j] = tanhf(v);"); break;
        case CRUCIBLE_OP_EXP: snprintf(body, sizeof body, "y[j] = expf(v);"); break;
        case CRUCIBLE_OP_LOG: snprintf(body, sizeof body, "y[j] = logf(v);"); break;
        case CRUCIBLE_OP_SQRT: snprintf(body, sizeof body, "y[j] = sqrtf(v);"); break;
        case CRUCIBLE_OP_NEG: snprintf(body, sizeof body, "y[j] = -v;"); break;
        case CRUCIBLE_OP_ABS: snprintf(body, sizeof body, "y[j] = fabsf(v);"); break;
        case CRUCIBLE_OP_HARD_SIGMOID:
            cpuc_attr_f32(n, "alpha", 0.2f, &alpha);
            cpuc_attr_f32(n, "beta", 0.5f, &beta);
            f32_lit(l1, sizeof l1, alpha, &G->uses_bits);
            f32_lit(l2, sizeof l2, beta, &G->uses_bits);
            snprintf(body, sizeof body,
                     "const float t = %s * v + %s;\n"
                     "        y[j] = t < 0.0f ? 0.0f : t > 1.0f ? 1.0f : t;",
                     l1, l2);
            break;
        case CRUCIBLE_OP_HARD_SWISH:
            snprintf(body, sizeof body,
                     "float t = v / 6.0f + 0.5f;\n"
                     "        t = t < 0.0f ? 0.0f : t > 1.0f ? 1.0f : t;\n"
                     "        y[j] = v * t;");
            break;
        default: /* CLIP: attribute bounds, overridden by bound inputs */
            cpuc_attr_f32(n, "min", -INFINITY, &lo);
            cpuc_attr_f32(n, "max", INFINITY, &hi);
            if (n->n_inputs > 1 && n->inputs[1] >= 0) {
                ref(G, n->inputs[1], l1, sizeof l1 - 3);
                strcat(l1, "[0]"); /* read at run time, like the interpreter */
            } else {
                f32_lit(l1, sizeof l1, lo, &G->uses_bits);
            }
            if (n->n_inputs > 2 && n->inputs[2] >= 0) {
                ref(G, n->inputs[2], l2, sizeof l2 - 3);
                strcat(l2, "[0]");
            } else {
                f32_lit(l2, sizeof l2, hi, &G->uses_bits);
            }
            snprintf(body, sizeof body,
                     "if (v < lo) v = lo;\n"
                     "        if (v > hi) v = hi;\n"
                     "        y[j] = v;");
            break;
        }
        cpuc_printf(b, "    {\n        const float *x = %s;\n        float *y = %s;\n",
                    rx, ry);
        if (n->op == CRUCIBLE_OP_CLIP)
            cpuc_printf(b, "        const float lo = %s, hi = %s;\n", l1, l2);
        cpuc_printf(b,
            "        for (long j = 0; j < %llu; j++) {\n"
            "            %sfloat v = x[j];\n"
            "            ",
            ne, n->op == CRUCIBLE_OP_CLIP ? "" : "const ");
        for (const char *p = body; *p; p++) {
            cpuc_putn(b, p, 1);
            if (*p == '\n') cpuc_puts(b, "    ");
        }
        cpuc_puts(b, "\n        }\n    }\n");
        return CRUCIBLE_OK;
    }
    case CRUCIBLE_OP_SOFTMAX:
    case CRUCIBLE_OP_LOG_SOFTMAX: {
        int64_t ax = crucible_node_attr_int(n, "axis", -1);
        if (ax < 0) ax += x->rank;
        int64_t outer = 1, inner = 1, L = x->dims[ax];
        for (int64_t i = 0; i < ax; i++) outer *= x->dims[i];
        for (int32_t i = (int32_t)ax + 1; i < x->rank; i++) inner *= x->dims[i];
        G->helpers |= H_SOFTMAX;
        cpuc_printf(b, "    k_softmax(%s, %s, %lld, %lld, %lld, %d);\n", rx, ry,
                    (long long)outer, (long long)L, (long long)inner,
                    n->op == CRUCIBLE_OP_LOG_SOFTMAX);
        return CRUCIBLE_OK;
    }
    case CRUCIBLE_OP_RESHAPE:
        if (G->tp[to].kind == T_ALIAS) {
            cpuc_puts(b, "    /* (an alias: no code) */\n");
            return CRUCIBLE_OK;
        }
        cpuc_printf(b, "    memcpy(%s, %s, %llu * sizeof(float));\n", ry, rx,
                    ne);
        return CRUCIBLE_OK;
    case CRUCIBLE_OP_TRANSPOSE: {
        int64_t xs[CRUCIBLE_MAX_RANK], st[CRUCIBLE_MAX_RANK], s = 1;
        const crucible_attr_view *p = crucible_node_attr(n, "perm");
        for (int32_t i = x->rank - 1; i >= 0; i--) {
            xs[i] = s;
            s *= x->dims[i];
        }
        for (int32_t i = 0; i < o->rank; i++)
            st[i] = xs[p ? p->ints[i] : x->rank - 1 - i];
        G->helpers |= H_GATHER;
        cpuc_puts(b, "    {\n        static const long dims[] = ");
        put_longs(b, o->dims, o->rank);
        cpuc_puts(b, ", st[] = ");
        put_longs(b, st, o->rank);
        cpuc_printf(b, ";\n        k_gather(%s, %s, %llu, %d, dims, st);\n    }\n",
                    rx, ry, ne, (int)o->rank);
        return CRUCIBLE_OK;
    }
    case CRUCIBLE_OP_CONCAT: {
        int64_t ax = crucible_node_attr_int(n, "axis", 0);
        if (ax < 0) ax += o->rank;
        uint64_t outer = 1, inner = 1;
        for (int64_t i = 0; i < ax; i++) outer *= (uint64_t)o->dims[i];
        for (int32_t i = (int32_t)ax + 1; i < o->rank; i++)
            inner *= (uint64_t)o->dims[i];
        cpuc_printf(b,
            "    {\n        float *y = %s;\n"
            "        for (long k = 0; k < %llu; k++) {\n",
            ry, (unsigned long long)outer);
        for (uint32_t k = 0; k < n->n_inputs; k++) {
            char ri[64];
            const crucible_tensor_view *t = T(G, n->inputs[k]);
            unsigned long long chunk =
                (unsigned long long)((uint64_t)t->dims[ax] * inner);
            ref(G, n->inputs[k], ri, sizeof ri);
            cpuc_printf(b,
                "            memcpy(y, %s + k * %llu, %llu * sizeof(float));\n"
                "            y += %llu;\n",
                ri, chunk, chunk, chunk);
        }
        cpuc_puts(b, "        }\n    }\n");
        return CRUCIBLE_OK;
    }
    case CRUCIBLE_OP_REDUCE_SUM: case CRUCIBLE_OP_REDUCE_MEAN:
    case CRUCIBLE_OP_REDUCE_MAX: {
        int red[CRUCIBLE_MAX_RANK] = {0};
        int64_t kd[CRUCIBLE_MAX_RANK], ks[CRUCIBLE_MAX_RANK];
        int64_t rd[CRUCIBLE_MAX_RANK], rs[CRUCIBLE_MAX_RANK], s = 1;
        int32_t kr = 0, rr = 0;
        uint64_t nr = 1;
        const crucible_attr_view *a = crucible_node_attr(n, "axes");
        if (!a || !a->count) {
            for (int32_t i = 0; i < x->rank; i++) red[i] = 1;
        } else {
            for (uint32_t i = 0; i < a->count; i++)
                red[a->ints[i] < 0 ? a->ints[i] + x->rank : a->ints[i]] = 1;
        }
        int64_t xs[CRUCIBLE_MAX_RANK];
        for (int32_t i = x->rank - 1; i >= 0; i--) {
            xs[i] = s;
            s *= x->dims[i];
        }
        for (int32_t i = 0; i < x->rank; i++) {
            if (red[i]) {
                rd[rr] = x->dims[i];
                rs[rr++] = xs[i];
                nr *= (uint64_t)x->dims[i];
            } else {
                kd[kr] = x->dims[i];
                ks[kr++] = xs[i];
            }
        }
        int mode = n->op == CRUCIBLE_OP_REDUCE_SUM ? 0
                 : n->op == CRUCIBLE_OP_REDUCE_MEAN ? 1 : 2;
        char cl[64];
        /* the interpreter divides by (float)(numel(x) / numel(y)) */
        f32_lit(cl, sizeof cl, (float)(cpuc_numel(x) / ne), &G->uses_bits);
        G->helpers |= H_REDUCE;
        cpuc_puts(b, "    {\n        static const long kd[] = ");
        put_longs(b, kd, kr);
        cpuc_puts(b, ", ks[] = ");
        put_longs(b, ks, kr);
        cpuc_puts(b, ", rd[] = ");
        put_longs(b, rd, rr);
        cpuc_puts(b, ", rs[] = ");
        put_longs(b, rs, rr);
        cpuc_printf(b,
            ";\n        k_reduce(%s, %s, %llu, %d, kd, ks, %llu, %d, rd, rs, %d, %s);\n"
            "    }\n",
            rx, ry, ne, (int)kr, (unsigned long long)nr, (int)rr, mode, cl);
        return CRUCIBLE_OK;
    }
    default:
        snprintf(why, wl, "node %s: op %s is not supported by cpu-c",
                 n->name, n->op_name);
        return CRUCIBLE_E_UNSUPPORTED;
    }
}

/* ---- constants ------------------------------------------------------------*/
static void emit_const(gen *G, cpuc_buf *b, int32_t ti)
{
    const crucible_tensor_view *t = T(G, ti);
    uint64_t ne = cpuc_numel(t);
    const unsigned char *d = t->data;
    int has_nan = 0;
    for (uint64_t i = 0; i < ne && !has_nan; i++) {
        float f;
        memcpy(&f, d + 4 * i, 4);
        if (f != f) has_nan = 1;
    }
    G->weight_bytes += ne * 4;
    cpuc_puts(b, "/* ");
    c_comment(b, t->name);
    cpuc_puts(b, ": f32[");
    for (int32_t i = 0; i < t->rank; i++)
        cpuc_printf(b, "%s%lld", i ? "," : "", (long long)t->dims[i]);
    cpuc_puts(b, "] */\n");
    if (has_nan) {
        /* bit patterns, so that NaN payloads are kept */
        cpuc_printf(b, "static const union { uint32_t u[%llu]; float f[%llu]; } cw%d_u = {{",
                    (unsigned long long)ne, (unsigned long long)ne, (int)ti);
        for (uint64_t i = 0; i < ne; i++) {
            uint32_t u;
            memcpy(&u, d + 4 * i, 4);
            cpuc_printf(b, "%s0x%08lxu", i % 8 ? ", " : (i ? ",\n    " : "\n    "),
                        (unsigned long)u);
        }
        cpuc_printf(b, "\n}};\n#define cw%d (cw%d_u.f)\n\n", (int)ti, (int)ti);
        return;
    }
    cpuc_printf(b, "static const float cw%d[%llu] = {", (int)ti,
                (unsigned long long)ne);
    for (uint64_t i = 0; i < ne; i++) {
        float f;
        char lit[64];
        memcpy(&f, d + 4 * i, 4);
        if (isinf(f))
            snprintf(lit, sizeof lit, "%s", f < 0 ? "-INFINITY" : "INFINITY");
        else
            snprintf(lit, sizeof lit, "%af", (double)f);
        cpuc_printf(b, "%s%s", i % 6 ? ", " : (i ? ",\n    " : "\n    "), lit);
    }
    cpuc_puts(b, "\n};\n\n");
}

/* ---- whole files ----------------------------------------------------------*/
static void dims_text(cpuc_buf *b, const crucible_tensor_view *t)
{
    cpuc_puts(b, "f32[");
    for (int32_t i = 0; i < t->rank; i++)
        cpuc_printf(b, "%s%lld", i ? ", " : "", (long long)t->dims[i]);
    cpuc_puts(b, "]");
}

static void emit_io_tables(gen *G, cpuc_buf *b, const char *what,
                           uint32_t n, const int32_t *idx)
{
    uint32_t m = n ? n : 1;
    cpuc_printf(b, "const char *const model_%s_names[%u] = {", what, m);
    for (uint32_t i = 0; i < n; i++) {
        cpuc_puts(b, i ? ", " : "");
        c_str(b, T(G, idx[i])->name);
    }
    cpuc_printf(b, "%s};\n", n ? "" : "\"\"");
    cpuc_printf(b, "const unsigned long model_%s_sizes[%u] = {", what, m);
    for (uint32_t i = 0; i < n; i++)
        cpuc_printf(b, "%s%lluUL", i ? ", " : "",
                    (unsigned long long)cpuc_numel(T(G, idx[i])));
    cpuc_printf(b, "%s};\n", n ? "" : "0");
    cpuc_printf(b, "const int model_%s_ranks[%u] = {", what, m);
    for (uint32_t i = 0; i < n; i++)
        cpuc_printf(b, "%s%d", i ? ", " : "", (int)T(G, idx[i])->rank);
    cpuc_printf(b, "%s};\n", n ? "" : "0");
    cpuc_printf(b, "const long model_%s_shapes[%u][8] = {", what, m);
    for (uint32_t i = 0; i < n; i++) {
        cpuc_puts(b, i ? ", " : "");
        put_longs(b, T(G, idx[i])->dims, T(G, idx[i])->rank);
    }
    cpuc_printf(b, "%s};\n\n", n ? "" : "{0}");
}

static void gen_model_h(gen *G, cpuc_buf *b)
{
    const crucible_graph_view *g = G->g;
    cpuc_puts(b, "/* model.h - generated by crucible cpu-c " CPUC_VERSION " for graph ");
    c_comment(b, g->name ? g->name : "(unnamed)");
    cpuc_puts(b,
        ".\n *\n"
        " * int model_run(const float *const *inputs, float *const *outputs);\n"
        " *\n"
        " * inputs[i] points to model_input_sizes[i] floats, outputs[i] to\n"
        " * model_output_sizes[i] floats, row-major (activations NCHW), in\n"
        " * the order below; the buffers must not overlap. Every output is\n"
        " * bit-identical to crucible's reference interpreter when model.c is\n"
        " * compiled with -ffp-contract=off and without -ffast-math.\n"
        " * Intermediate values live in one static arena: model_run is not\n"
        " * reentrant. Returns 0 on success, -1 for NULL arguments. */\n"
        "#ifndef CRUCIBLE_MODEL_H\n#define CRUCIBLE_MODEL_H\n\n"
        "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    cpuc_puts(b, "#define MODEL_NAME ");
    c_str(b, g->name ? g->name : "");
    cpuc_printf(b, "\n#define MODEL_N_INPUTS %u\n#define MODEL_N_OUTPUTS %u\n",
                g->n_inputs, g->n_outputs);
    for (int io = 0; io < 2; io++) {
        uint32_t n = io ? g->n_outputs : g->n_inputs;
        const int32_t *idx = io ? g->outputs : g->inputs;
        for (uint32_t i = 0; i < n; i++) {
            const crucible_tensor_view *t = T(G, idx[i]);
            cpuc_printf(b, "/* %s %u: ", io ? "output" : "input", i);
            c_comment(b, t->name);
            cpuc_puts(b, " ");
            dims_text(b, t);
            cpuc_printf(b, " */\n#define MODEL_%s_%u_NAME ", io ? "OUTPUT" : "INPUT", i);
            c_str(b, t->name);
            cpuc_printf(b, "\n#define MODEL_%s_%u_SIZE %lluUL\n", io ? "OUTPUT" : "INPUT",
                        i, (unsigned long long)cpuc_numel(t));
        }
    }
    cpuc_printf(b,
        "#define MODEL_ARENA_BYTES %lluUL\n"
        "#define MODEL_WEIGHT_BYTES %lluUL\n\n",
        (unsigned long long)(G->arena_floats * 4),
        (unsigned long long)G->weight_bytes);
    uint32_t ni = g->n_inputs ? g->n_inputs : 1, no = g->n_outputs ? g->n_outputs : 1;
    cpuc_printf(b,
        "extern const char *const model_input_names[%u];\n"
        "extern const unsigned long model_input_sizes[%u]; /* elements */\n"
        "extern const int model_input_ranks[%u];\n"
        "extern const long model_input_shapes[%u][8];\n"
        "extern const char *const model_output_names[%u];\n"
        "extern const unsigned long model_output_sizes[%u]; /* elements */\n"
        "extern const int model_output_ranks[%u];\n"
        "extern const long model_output_shapes[%u][8];\n\n"
        "int model_run(const float *const *inputs, float *const *outputs);\n\n"
        "#ifdef __cplusplus\n}\n#endif\n#endif /* CRUCIBLE_MODEL_H */\n",
        ni, ni, ni, ni, no, no, no, no);
}

static void gen_model_c(gen *G, cpuc_buf *b, const cpuc_buf *consts)
{
    const crucible_graph_view *g = G->g;
    cpuc_puts(b, "/* model.c - generated by crucible cpu-c " CPUC_VERSION " for graph ");
    c_comment(b, g->name ? g->name : "(unnamed)");
    cpuc_printf(b,
        ".\n *\n"
        " * Portable C99, no allocation. Float semantics mirror crucible's\n"
        " * reference interpreter operation for operation (float arithmetic, the\n"
        " * interpreter's summation order, libm float functions), so outputs are\n"
        " * bit-identical to it. Build with:\n"
        " *   cc -std=c99 -O2 -ffp-contract=off -fno-fast-math -c model.c\n"
        " * %u nodes; weights %llu bytes; activation arena %llu bytes (a naive\n"
        " * buffer per tensor would take %llu). */\n"
        "#include <float.h>\n#include <math.h>\n#include <stddef.h>\n"
        "#include <stdint.h>\n#include <string.h>\n\n#include \"model.h\"\n\n"
        "#if defined(__FAST_MATH__)\n"
        "#error \"model.c must not be compiled with -ffast-math (results would differ)\"\n"
        "#endif\n"
        "#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0 && !defined(MODEL_ALLOW_EXCESS_PRECISION)\n"
        "#error \"model.c needs FLT_EVAL_METHOD == 0 (e.g. SSE, not x87) to be bit-exact\"\n"
        "#endif\n"
        "#if !defined(__GNUC__) || defined(__clang__)\n"
        "#pragma STDC FP_CONTRACT OFF\n"
        "#endif\n\n",
        g->n_nodes, (unsigned long long)G->weight_bytes,
        (unsigned long long)(G->arena_floats * 4),
        (unsigned long long)(G->naive_floats * 4));
    emit_io_tables(G, b, "input", g->n_inputs, g->inputs);
    emit_io_tables(G, b, "output", g->n_outputs, g->outputs);
    if (consts->len) cpuc_putn(b, consts->s, consts->len);
    if (G->n_st)
        cpuc_printf(b, "/* activations: %llu bytes, reused by liveness */\n"
                       "static float model_arena[%llu];\n\n",
                    (unsigned long long)(G->arena_floats * 4),
                    (unsigned long long)G->arena_floats);
    if (G->uses_bits) cpuc_puts(b, K_FBITS);
    if (G->helpers & H_FMAX) cpuc_puts(b, K_FMAX);
    if (G->helpers & H_FMIN) cpuc_puts(b, K_FMIN);
    if (G->helpers & H_DENSE) cpuc_puts(b, K_DENSE);
    if (G->helpers & H_MATMUL) cpuc_puts(b, K_MATMUL);
    if (G->helpers & H_CONV) cpuc_puts(b, K_CONV);
    if (G->helpers & H_CONVT) cpuc_puts(b, K_CONVT);
    if (G->helpers & H_POOL) cpuc_puts(b, K_POOL);
    if (G->helpers & H_GPOOL) cpuc_puts(b, K_GPOOL);
    if (G->helpers & H_SOFTMAX) cpuc_puts(b, K_SOFTMAX);
    if (G->helpers & H_GATHER) cpuc_puts(b, K_GATHER);
    if (G->helpers & H_REDUCE) cpuc_puts(b, K_REDUCE);
    for (size_t i = 0; i < N_BIN_OPS; i++)
        if (G->helpers & (H_BC0 << i)) emit_bc_kernel(b, &bin_ops[i]);

    cpuc_puts(b, "int model_run(const float *const *inputs, float *const *outputs)\n{\n");
    cpuc_printf(b, "    if (%s || !outputs) return -1;\n",
                g->n_inputs ? "!inputs" : "0");
    if (!g->n_inputs) cpuc_puts(b, "    (void)inputs;\n");
    for (uint32_t i = 0; i < g->n_inputs; i++) {
        if (G->tp[g->inputs[i]].index != i) continue; /* listed twice */
        cpuc_printf(b, "    const float *const in%u = inputs[%u]; /* ", i, i);
        c_comment(b, T(G, g->inputs[i])->name);
        cpuc_puts(b, " */\n");
    }
    for (uint32_t i = 0; i < g->n_outputs; i++) {
        cpuc_printf(b, "    float *const out%u = outputs[%u]; /* ", i, i);
        c_comment(b, T(G, g->outputs[i])->name);
        cpuc_puts(b, " */\n");
    }
    if (G->n_st) cpuc_puts(b, "    float *const arena = model_arena;\n");
    cpuc_puts(b, "\n");
    if (G->body.len) cpuc_putn(b, G->body.s, G->body.len);
    /* outputs that no node writes into their own buffer */
    for (uint32_t i = 0; i < g->n_outputs; i++) {
        int32_t t = g->outputs[i];
        const tplan *p = &G->tp[root_of(G, t)];
        if (p->kind == T_OUTPUT && p->index == i) continue;
        char r[64];
        ref(G, t, r, sizeof r);
        cpuc_printf(b, "    memcpy(out%u, %s, %llu * sizeof(float)); /* ", i, r,
                    (unsigned long long)cpuc_numel(T(G, t)));
        c_comment(b, T(G, t)->name);
        cpuc_puts(b, " */\n");
    }
    cpuc_puts(b, "    return 0;\n}\n");
}

static void gen_harness(cpuc_buf *b)
{
    cpuc_puts(b,
        "/* harness.c - generated by crucible cpu-c " CPUC_VERSION ": runs model_run()\n"
        " * on raw float32 files.\n"
        " *\n"
        " *   model_test IN_0 .. IN_{n-1} OUT_0 .. OUT_{m-1} [IN_0 .. OUT_{m-1}]...\n"
        " *\n"
        " * Every group of MODEL_N_INPUTS + MODEL_N_OUTPUTS paths is one sample:\n"
        " * each input file holds exactly model_input_sizes[i] little-endian\n"
        " * float32 values; each output is written the same way. Exit status: 0\n"
        " * on success, 1 on an I/O error, 2 for a usage error. */\n"
        "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n\n"
        "#include \"model.h\"\n\n"
        "static int big_endian(void)\n"
        "{\n"
        "    const unsigned int one = 1;\n"
        "    return *(const unsigned char *)&one == 0;\n"
        "}\n\n"
        "static void swap32(float *p, unsigned long n)\n"
        "{\n"
        "    unsigned char *b = (unsigned char *)p;\n"
        "    for (unsigned long i = 0; i < n; i++, b += 4) {\n"
        "        unsigned char t = b[0];\n"
        "        b[0] = b[3];\n"
        "        b[3] = t;\n"
        "        t = b[1];\n"
        "        b[1] = b[2];\n"
        "        b[2] = t;\n"
        "    }\n"
        "}\n\n"
        "static int read_f32(const char *path, float *dst, unsigned long n)\n"
        "{\n"
        "    FILE *f = fopen(path, \"rb\");\n"
        "    if (!f) {\n"
        "        fprintf(stderr, \"model_test: cannot open %s\\n\", path);\n"
        "        return -1;\n"
        "    }\n"
        "    size_t got = fread(dst, sizeof(float), n, f);\n"
        "    int extra = fgetc(f);\n"
        "    fclose(f);\n"
        "    if (got != n || extra != EOF) {\n"
        "        fprintf(stderr, \"model_test: %s: expected exactly %lu bytes\\n\",\n"
        "                path, n * 4UL);\n"
        "        return -1;\n"
        "    }\n"
        "    if (big_endian()) swap32(dst, n);\n"
        "    return 0;\n"
        "}\n\n"
        "static int write_f32(const char *path, float *src, unsigned long n)\n"
        "{\n"
        "    FILE *f = fopen(path, \"wb\");\n"
        "    if (!f) {\n"
        "        fprintf(stderr, \"model_test: cannot create %s\\n\", path);\n"
        "        return -1;\n"
        "    }\n"
        "    if (big_endian()) swap32(src, n);\n"
        "    size_t put = fwrite(src, sizeof(float), n, f);\n"
        "    if (fclose(f) != 0 || put != n) {\n"
        "        fprintf(stderr, \"model_test: error writing %s\\n\", path);\n"
        "        return -1;\n"
        "    }\n"
        "    return 0;\n"
        "}\n\n"
        "int main(int argc, char **argv)\n"
        "{\n"
        "    const int per = MODEL_N_INPUTS + MODEL_N_OUTPUTS;\n"
        "    float *in[MODEL_N_INPUTS + 1], *out[MODEL_N_OUTPUTS + 1];\n"
        "    int rc = 0, i;\n"
        "    if (argc < 2 || (argc - 1) % per != 0) {\n"
        "        fprintf(stderr, \"usage: %s IN_0..IN_%d OUT_0..OUT_%d [...]\\n\"\n"
        "                        \"model \" MODEL_NAME \": %d input(s), %d output(s) per sample\\n\",\n"
        "                argv[0], MODEL_N_INPUTS - 1, MODEL_N_OUTPUTS - 1,\n"
        "                MODEL_N_INPUTS, MODEL_N_OUTPUTS);\n"
        "        return 2;\n"
        "    }\n"
        "    for (i = 0; i < MODEL_N_INPUTS; i++)\n"
        "        in[i] = malloc(model_input_sizes[i] * sizeof(float));\n"
        "    for (i = 0; i < MODEL_N_OUTPUTS; i++)\n"
        "        out[i] = malloc(model_output_sizes[i] * sizeof(float));\n"
        "    for (i = 0; i < MODEL_N_INPUTS; i++)\n"
        "        if (!in[i]) rc = 1;\n"
        "    for (i = 0; i < MODEL_N_OUTPUTS; i++)\n"
        "        if (!out[i]) rc = 1;\n"
        "    if (rc) fprintf(stderr, \"model_test: out of memory\\n\");\n"
        "    for (int s = 1; !rc && s < argc; s += per) {\n"
        "        for (i = 0; !rc && i < MODEL_N_INPUTS; i++)\n"
        "            if (read_f32(argv[s + i], in[i], model_input_sizes[i])) rc = 1;\n"
        "        if (!rc && model_run((const float *const *)in, out) != 0) {\n"
        "            fprintf(stderr, \"model_test: model_run failed\\n\");\n"
        "            rc = 1;\n"
        "        }\n"
        "        for (i = 0; !rc && i < MODEL_N_OUTPUTS; i++)\n"
        "            if (write_f32(argv[s + MODEL_N_INPUTS + i], out[i],\n"
        "                          model_output_sizes[i]))\n"
        "                rc = 1;\n"
        "    }\n"
        "    for (i = 0; i < MODEL_N_INPUTS; i++) free(in[i]);\n"
        "    for (i = 0; i < MODEL_N_OUTPUTS; i++) free(out[i]);\n"
        "    return rc;\n"
        "}\n");
}

static void gen_makefile(cpuc_buf *b, const cpuc_toolchain *tc)
{
    cpuc_printf(b,
        "# Makefile - generated by crucible cpu-c " CPUC_VERSION ".\n"
        "# `make` builds model_test (harness.c + model.c). Keep\n"
        "# -ffp-contract=off and never add -ffast-math: the outputs are only\n"
        "# bit-exact with crucible's reference interpreter without them.\n"
        "CC = %s\n"
        "CFLAGS = %s\n"
        "LDLIBS = -lm\n\n"
        "model_test: model.c harness.c model.h\n"
        "\t$(CC) $(CFLAGS) -o $@ model.c harness.c $(LDLIBS)\n\n"
        "model.o: model.c model.h\n"
        "\t$(CC) $(CFLAGS) -c -o $@ model.c\n\n"
        "clean:\n"
        "\trm -f model_test model.o\n\n"
        ".PHONY: clean\n",
        tc->cc, tc->cflags);
}

static void gen_report(gen *G, cpuc_buf *b, const cpuc_toolchain *tc,
                       size_t model_c_bytes)
{
    const crucible_graph_view *g = G->g;
    cpuc_puts(b, "{\"target\":\"" CPUC_ID "\",\"version\":\"" CPUC_VERSION "\",\"graph\":");
    cpuc_json_str(b, g->name);
    cpuc_printf(b,
        ",\"nodes\":%u,\"inputs\":%u,\"outputs\":%u,\"weight_bytes\":%llu,"
        "\"arena_bytes\":%llu,\"naive_activation_bytes\":%llu,"
        "\"arena_saving\":%.4f,\"model_c_bytes\":%zu,\"cc\":",
        g->n_nodes, g->n_inputs, g->n_outputs,
        (unsigned long long)G->weight_bytes,
        (unsigned long long)(G->arena_floats * 4),
        (unsigned long long)(G->naive_floats * 4),
        G->naive_floats ? 1.0 - (double)G->arena_floats / (double)G->naive_floats : 0.0,
        model_c_bytes);
    cpuc_json_str(b, tc->cc);
    cpuc_puts(b, ",\"cflags\":");
    cpuc_json_str(b, tc->cflags);
    cpuc_puts(b, ",\"buffers\":[");
    for (uint32_t i = 0; i < G->n_st; i++) {
        const storage *s = &G->st[i];
        cpuc_puts(b, i ? ",{\"tensor\":" : "{\"tensor\":");
        cpuc_json_str(b, T(G, s->tensor)->name);
        cpuc_printf(b, ",\"offset_bytes\":%llu,\"bytes\":%llu,\"first_node\":%lld,"
                       "\"last_node\":%lld}",
                    (unsigned long long)(s->offset * 4),
                    (unsigned long long)(s->floats * 4), (long long)s->def,
                    (long long)s->last);
    }
    cpuc_puts(b, "]}\n");
}

void cpuc_output_free(cpuc_output *out)
{
    cpuc_buf_free(&out->model_c);
    cpuc_buf_free(&out->model_h);
    cpuc_buf_free(&out->harness_c);
    cpuc_buf_free(&out->makefile);
    cpuc_buf_free(&out->report);
}

int cpuc_generate(const crucible_host *host, const crucible_graph_view *g,
                  const cpuc_toolchain *tc, cpuc_output *out, char *why,
                  size_t wl)
{
    gen G;
    cpuc_buf consts;
    int rc = CRUCIBLE_OK;
    memset(&G, 0, sizeof G);
    memset(out, 0, sizeof *out);
    cpuc_buf_init(&out->model_c, host);
    cpuc_buf_init(&out->model_h, host);
    cpuc_buf_init(&out->harness_c, host);
    cpuc_buf_init(&out->makefile, host);
    cpuc_buf_init(&out->report, host);
    cpuc_buf_init(&consts, host);
    G.host = host;
    G.g = g;
    cpuc_buf_init(&G.body, host);
    why[0] = 0;

    if (!g->n_outputs) {
        snprintf(why, wl, "the graph has no outputs");
        return CRUCIBLE_E_INVALID;
    }
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        char r[256];
        int c = cpuc_check_node(g, i, r, sizeof r);
        if (c != CRUCIBLE_OK) {
            snprintf(why, wl, "node %s (%s): %s", g->nodes[i]->name,
                     g->nodes[i]->op_name, r);
            return c;
        }
    }
    G.tp = zalloc(host, g->n_tensors + 1, sizeof *G.tp);
    G.st = zalloc(host, g->n_nodes + 1, sizeof *G.st);
    if (!G.tp || !G.st) {
        snprintf(why, wl, "out of memory");
        rc = CRUCIBLE_E_NOMEM;
        goto done;
    }
    if ((rc = make_plan(&G, why, wl))) goto done;
    for (uint32_t t = 0; t < g->n_tensors; t++)
        if (G.tp[t].kind == T_CONST && G.tp[t].emit_const)
            emit_const(&G, &consts, (int32_t)t);
    for (uint32_t i = 0; i < g->n_nodes; i++)
        if ((rc = emit_node(&G, i, why, wl))) goto done;
    gen_model_c(&G, &out->model_c, &consts);
    gen_model_h(&G, &out->model_h);
    gen_harness(&out->harness_c);
    gen_makefile(&out->makefile, tc);
    gen_report(&G, &out->report, tc, out->model_c.len);
    out->arena_bytes = G.arena_floats * 4;
    out->naive_bytes = G.naive_floats * 4;
    out->weight_bytes = G.weight_bytes;
    if (out->model_c.err || out->model_h.err || out->harness_c.err ||
        out->makefile.err || out->report.err || G.body.err || consts.err) {
        snprintf(why, wl, "out of memory while generating code");
        rc = CRUCIBLE_E_NOMEM;
    }
done:
    if (G.tp) crucible_free(host, G.tp, (g->n_tensors + 1) * sizeof *G.tp);
    if (G.st) crucible_free(host, G.st, (g->n_nodes + 1) * sizeof *G.st);
    cpuc_buf_free(&G.body);
    cpuc_buf_free(&consts);
    if (rc) cpuc_output_free(out);
    return rc;
}
