/*
 * ir_text.c - the IR text form: printer and parser (docs/ir.md).
 *
 *   crucible-ir 1
 *   graph NAME
 *   meta KEY "VALUE"
 *   tensor NAME : DTYPE[D0, D1] [quant(axis=A, [block=B,] scales=[..], zero_points=[..])] [= [V, V, ...]]
 *   node NAME : OP(IN, IN, _) -> (OUT) {ATTR=VALUE, ...}
 *   inputs (NAME, ...)
 *   outputs (NAME, ...)
 *
 * One item per line; '#' starts a comment line. Names made only of
 * [A-Za-z0-9_.+/-] are written bare, others as JSON-style strings. The
 * printer is canonical, so text -> IR -> text is the identity for text the
 * printer wrote. ir_print_ex can elide long lists (`crucible ir` without
 * --weights) as `elided(N)`; the parser refuses such text with a hint.
 */
#include "ir.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ print */

static int bare_char(int c)
{
    return isalnum(c) || c == '_' || c == '.' || c == '-' || c == '/' ||
           c == '+';
}

static void put_name(jbuf *b, const char *s)
{
    int bare = *s && strcmp(s, "_") != 0 && !(s[0] == '-' && s[1] == '>');
    for (const char *p = s; *p && bare; p++)
        if (!bare_char((unsigned char)*p)) bare = 0;
    if (bare)
        jb_puts(b, s);
    else
        jb_jstr(b, s);
}

static void put_f32(jbuf *b, float v)
{
    if (isnan(v))
        jb_puts(b, "nan");
    else if (isinf(v))
        jb_puts(b, v < 0 ? "-inf" : "inf");
    else
        jb_printf(b, "%.9g", (double)v);
}

static void put_double_attr(jbuf *b, double v)
{
    if (isnan(v)) {
        jb_puts(b, "nan");
        return;
    }
    if (isinf(v)) {
        jb_puts(b, v < 0 ? "-inf" : "inf");
        return;
    }
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%.17g", v);
    jb_puts(b, tmp);
    if (!strpbrk(tmp, ".eEn")) jb_puts(b, ".0");
}


static void put_data(jbuf *b, const cr_tensor *t, uint64_t max_inline)
{
    uint64_t n = ir_numel(t);
    const uint8_t *d = t->data;
    if (max_inline && n > max_inline) {
        jb_printf(b, " = elided(%llu)", (unsigned long long)n);
        return;
    }
    jb_puts(b, " = [");
    for (uint64_t i = 0; i < n; i++) {
        if (i) jb_puts(b, ", ");
        if (t->dtype == CRUCIBLE_DT_F32) {
            float v;
            memcpy(&v, d + 4 * i, 4);
            put_f32(b, v);
        } else if (t->dtype == CRUCIBLE_DT_F16) {
            jb_printf(b, "0x%04x", (unsigned)ir_elem_i64(t->dtype, d, i));
        } else {
            jb_printf(b, "%lld", (long long)ir_elem_i64(t->dtype, d, i));
        }
    }
    jb_putc(b, ']');
}

static void put_attr(jbuf *b, const cr_attr *a)
{
    put_name(b, a->name);
    jb_putc(b, '=');
    switch (a->type) {
    case CRUCIBLE_ATTR_INT: jb_printf(b, "%lld", (long long)a->i); break;
    case CRUCIBLE_ATTR_FLOAT: put_double_attr(b, a->f); break;
    case CRUCIBLE_ATTR_STRING: jb_jstr(b, a->s); break;
    case CRUCIBLE_ATTR_INTS:
        jb_putc(b, '[');
        for (uint32_t i = 0; i < a->count; i++)
            jb_printf(b, "%s%lld", i ? ", " : "", (long long)a->ints[i]);
        jb_putc(b, ']');
        break;
    case CRUCIBLE_ATTR_FLOATS:
        jb_puts(b, "f[");
        for (uint32_t i = 0; i < a->count; i++) {
            if (i) jb_puts(b, ", ");
            put_double_attr(b, a->floats[i]);
        }
        jb_putc(b, ']');
        break;
    default: jb_puts(b, "null");
    }
}

static void put_tensor_list(jbuf *b, const cr_graph *g, const int32_t *idx,
                            size_t n)
{
    jb_putc(b, '(');
    for (size_t i = 0; i < n; i++) {
        if (i) jb_puts(b, ", ");
        if (idx[i] < 0)
            jb_putc(b, '_');
        else
            put_name(b, g->tensors[idx[i]].name);
    }
    jb_putc(b, ')');
}

void ir_print(const cr_graph *g, jbuf *b) { ir_print_ex(g, b, 0); }

void ir_print_ex(const cr_graph *g, jbuf *b, uint64_t max_inline)
{
    jb_puts(b, "crucible-ir 1\n");
    if (g->name) {
        jb_puts(b, "graph ");
        put_name(b, g->name);
        jb_putc(b, '\n');
    }
    for (size_t i = 0; i < g->n_meta; i++) {
        jb_puts(b, "meta ");
        put_name(b, g->meta[i].key);
        jb_putc(b, ' ');
        jb_jstr(b, g->meta[i].value);
        jb_putc(b, '\n');
    }
    for (size_t i = 0; i < g->n_tensors; i++) {
        const cr_tensor *t = &g->tensors[i];
        jb_puts(b, "tensor ");
        put_name(b, t->name);
        jb_printf(b, " : %s[", ir_dtype_name(t->dtype));
        for (int32_t d = 0; d < t->rank; d++) {
            if (d) jb_puts(b, ", ");
            if (t->dims[d] > 0)
                jb_printf(b, "%lld", (long long)t->dims[d]);
            else
                jb_putc(b, '?');
        }
        jb_putc(b, ']');
        if (t->quant_count) {
            jb_printf(b, " quant(axis=%d, ", (int)t->quant_axis);
            if (t->quant_block > 0)
                jb_printf(b, "block=%d, ", (int)t->quant_block);
            if (max_inline && t->quant_count > max_inline) {
                jb_printf(b, "scales=elided(%u), zero_points=elided(%u))",
                          t->quant_count, t->quant_count);
            } else {
                jb_puts(b, "scales=[");
                for (uint32_t q = 0; q < t->quant_count; q++) {
                    if (q) jb_puts(b, ", ");
                    put_f32(b, t->scales[q]);
                }
                jb_puts(b, "], zero_points=[");
                for (uint32_t q = 0; q < t->quant_count; q++)
                    jb_printf(b, "%s%d", q ? ", " : "",
                              (int)t->zero_points[q]);
                jb_puts(b, "])");
            }
        }
        if (t->flags & CRUCIBLE_TENSOR_CONST) put_data(b, t, max_inline);
        jb_putc(b, '\n');
    }
    for (size_t i = 0; i < g->n_nodes; i++) {
        const cr_node *n = &g->nodes[i];
        jb_puts(b, "node ");
        put_name(b, n->name);
        jb_printf(b, " : %s", ir_op_name(n->op));
        put_tensor_list(b, g, n->inputs, n->n_inputs);
        jb_puts(b, " -> ");
        put_tensor_list(b, g, n->outputs, n->n_outputs);
        if (n->n_attrs) {
            jb_puts(b, " {");
            for (uint32_t a = 0; a < n->n_attrs; a++) {
                if (a) jb_puts(b, ", ");
                put_attr(b, &n->attrs[a]);
            }
            jb_putc(b, '}');
        }
        jb_putc(b, '\n');
    }
    jb_puts(b, "inputs ");
    put_tensor_list(b, g, g->inputs, g->n_inputs);
    jb_puts(b, "\noutputs ");
    put_tensor_list(b, g, g->outputs, g->n_outputs);
    jb_putc(b, '\n');
}

/* ------------------------------------------------------------------ parse */

enum { T_EOL, T_WORD, T_STR, T_PUNCT, T_ARROW, T_ERR };

typedef struct lexer {
    const char *p, *end;
    int line;
    int tok;
    char punct;
    jbuf text; /* word or decoded string */
    char *err;
    size_t errlen;
    const char *file;
} lexer;

#define LERR(L, ...)                                                        \
    do {                                                                    \
        if (!(L)->err[0]) {                                                 \
            int o_ = snprintf((L)->err, (L)->errlen, "%s:%d: ", (L)->file,  \
                              (L)->line);                                   \
            if (o_ >= 0 && (size_t)o_ < (L)->errlen)                        \
                snprintf((L)->err + o_, (L)->errlen - (size_t)o_,           \
                         __VA_ARGS__);                                      \
        }                                                                   \
    } while (0)

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void put_utf8(jbuf *b, uint32_t cp)
{
    if (cp < 0x80) {
        jb_putc(b, (char)cp);
    } else if (cp < 0x800) {
        jb_putc(b, (char)(0xC0 | (cp >> 6)));
        jb_putc(b, (char)(0x80 | (cp & 0x3F)));
    } else {
        jb_putc(b, (char)(0xE0 | (cp >> 12)));
        jb_putc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
        jb_putc(b, (char)(0x80 | (cp & 0x3F)));
    }
}

static int lex(lexer *L)
{
    while (L->p < L->end && (*L->p == ' ' || *L->p == '\t' || *L->p == '\r'))
        L->p++;
    L->text.len = 0;
    if (L->text.s) L->text.s[0] = 0;
    if (L->p >= L->end || *L->p == '\n') return L->tok = T_EOL;
    char c = *L->p;
    if (c == '-' && L->p + 1 < L->end && L->p[1] == '>') {
        L->p += 2;
        return L->tok = T_ARROW;
    }
    if (c == '?') {
        L->p++;
        jb_putc(&L->text, '?');
        return L->tok = T_WORD;
    }
    if (strchr(":[](){},=", c)) {
        L->p++;
        L->punct = c;
        return L->tok = T_PUNCT;
    }
    if (c == '"') {
        L->p++;
        while (L->p < L->end && *L->p != '"' && *L->p != '\n') {
            char ch = *L->p++;
            if (ch != '\\') {
                jb_putc(&L->text, ch);
                continue;
            }
            if (L->p >= L->end) break;
            char e = *L->p++;
            switch (e) {
            case 'n': jb_putc(&L->text, '\n'); break;
            case 't': jb_putc(&L->text, '\t'); break;
            case 'r': jb_putc(&L->text, '\r'); break;
            case '"': jb_putc(&L->text, '"'); break;
            case '\\': jb_putc(&L->text, '\\'); break;
            case '/': jb_putc(&L->text, '/'); break;
            case 'u': {
                uint32_t cp = 0;
                for (int k = 0; k < 4; k++) {
                    int h = L->p < L->end ? hexval(*L->p) : -1;
                    if (h < 0) {
                        LERR(L, "bad \\u escape in string");
                        return L->tok = T_ERR;
                    }
                    cp = cp * 16 + (uint32_t)h;
                    L->p++;
                }
                if (cp == 0) {
                    LERR(L, "\\u0000 is not allowed in names or strings");
                    return L->tok = T_ERR;
                }
                put_utf8(&L->text, cp);
                break;
            }
            default:
                LERR(L, "unknown escape \\%c in string", e);
                return L->tok = T_ERR;
            }
        }
        if (L->p >= L->end || *L->p != '"') {
            LERR(L, "unterminated string");
            return L->tok = T_ERR;
        }
        L->p++;
        if (L->text.err) {
            LERR(L, "out of memory");
            return L->tok = T_ERR;
        }
        if (!L->text.s) jb_puts(&L->text, "");
        return L->tok = T_STR;
    }
    if (bare_char((unsigned char)c)) {
        const char *s = L->p;
        while (L->p < L->end && bare_char((unsigned char)*L->p)) {
            if (*L->p == '-' && L->p + 1 < L->end && L->p[1] == '>') break;
            L->p++;
        }
        jb_putn(&L->text, s, (size_t)(L->p - s));
        if (L->text.err) {
            LERR(L, "out of memory");
            return L->tok = T_ERR;
        }
        return L->tok = T_WORD;
    }
    LERR(L, "unexpected character '%c'", isprint((unsigned char)c) ? c : '?');
    return L->tok = T_ERR;
}

static int is_punct(lexer *L, char c) { return L->tok == T_PUNCT && L->punct == c; }

static int expect_punct(lexer *L, char c)
{
    if (!is_punct(L, c)) {
        LERR(L, "expected '%c'", c);
        return -1;
    }
    lex(L);
    return 0;
}

/* Name token (word or string); returns an allocated copy. */
static char *take_name(lexer *L, const char *what)
{
    if (L->tok != T_WORD && L->tok != T_STR) {
        LERR(L, "expected %s", what);
        return NULL;
    }
    char *s = cr_strdup(L->text.s ? L->text.s : "");
    lex(L);
    return s;
}

static int word_int(lexer *L, int64_t *v)
{
    if (L->tok != T_WORD) {
        LERR(L, "expected an integer");
        return -1;
    }
    char *end;
    errno = 0;
    long long x = strtoll(L->text.s, &end, 10);
    if (errno || *end || end == L->text.s) {
        LERR(L, "expected an integer, got '%s'", L->text.s);
        return -1;
    }
    *v = x;
    lex(L);
    return 0;
}

static int word_double(lexer *L, double *v, int *is_float)
{
    if (L->tok != T_WORD) {
        LERR(L, "expected a number");
        return -1;
    }
    const char *s = L->text.s;
    if (!strcmp(s, "nan")) *v = NAN;
    else if (!strcmp(s, "inf")) *v = INFINITY;
    else if (!strcmp(s, "-inf")) *v = -INFINITY;
    else {
        char *end;
        errno = 0;
        *v = strtod(s, &end);
        if (*end || end == s || (errno && fabs(*v) > 1.0)) {
            LERR(L, "expected a number, got '%s'", s);
            return -1;
        }
    }
    if (is_float) *is_float = strpbrk(s, ".eEn") != NULL;
    lex(L);
    return 0;
}

/* '[' v, v, ... ']' of numbers. Each value is kept as a double and, when
 * the token is an integer literal, also exactly as an int64 (ivals, when
 * not NULL). *first_float gets the index of the first non-integer token,
 * or -1. */
static int num_list(lexer *L, double **vals, int64_t **ivals, size_t *n,
                    long *first_float, uint64_t max)
{
    size_t cap = 0, icap = 0;
    *n = 0;
    if (first_float) *first_float = -1;
    if (expect_punct(L, '[')) return -1;
    while (!is_punct(L, ']')) {
        if (*n && expect_punct(L, ',')) return -1;
        if (*n >= max) {
            LERR(L, "list longer than expected (%llu)", (unsigned long long)max);
            return -1;
        }
        if (cr_grow((void **)vals, &cap, *n + 1, sizeof(double)) ||
            (ivals && cr_grow((void **)ivals, &icap, *n + 1, sizeof(int64_t)))) {
            LERR(L, "out of memory");
            return -1;
        }
        int64_t iv = 0;
        int isint = 0;
        if (L->tok == T_WORD && !strpbrk(L->text.s, ".eEn")) {
            char *end;
            errno = 0;
            const char *w = L->text.s;
            int hex = (w[0] == '0' && (w[1] == 'x' || w[1] == 'X')) ||
                      (w[0] == '-' && w[1] == '0' && (w[2] == 'x' || w[2] == 'X'));
            long long x = strtoll(w, &end, hex ? 16 : 10);
            if (!*end && end != L->text.s) {
                if (errno == ERANGE) {
                    LERR(L, "integer %s out of the 64-bit range", L->text.s);
                    return -1;
                }
                iv = x;
                isint = 1;
            }
        }
        int f = 0;
        if (word_double(L, &(*vals)[*n], &f)) return -1;
        if (ivals) (*ivals)[*n] = iv;
        if (!isint && first_float && *first_float < 0) *first_float = (long)*n;
        (*n)++;
    }
    lex(L);
    return 0;
}

static int tensor_ref(lexer *L, cr_graph *g, int32_t *idx)
{
    if (L->tok == T_WORD && !strcmp(L->text.s, "_")) {
        *idx = -1;
        lex(L);
        return 0;
    }
    char *nm = take_name(L, "a tensor name");
    if (!nm) return -1;
    *idx = ir_find_tensor(g, nm);
    if (*idx < 0) LERR(L, "unknown tensor '%s' (declare it with a tensor line first)", nm);
    cr_free(nm);
    return *idx < 0 ? -1 : 0;
}

static int tensor_list(lexer *L, cr_graph *g, int32_t **idx, size_t *n,
                       int allow_absent)
{
    size_t cap = 0;
    *n = 0;
    if (expect_punct(L, '(')) return -1;
    while (!is_punct(L, ')')) {
        if (*n && expect_punct(L, ',')) return -1;
        if (*n >= 1024) {
            LERR(L, "too many tensors in a list");
            return -1;
        }
        if (cr_grow((void **)idx, &cap, *n + 1, sizeof(int32_t))) {
            LERR(L, "out of memory");
            return -1;
        }
        if (tensor_ref(L, g, &(*idx)[*n])) return -1;
        if ((*idx)[*n] < 0 && !allow_absent) {
            LERR(L, "'_' (absent) is only allowed for node inputs");
            return -1;
        }
        (*n)++;
    }
    lex(L);
    return 0;
}

static int pack_data(lexer *L, cr_tensor *t, const double *v,
                     const int64_t *ivs, long first_float, size_t n,
                     void **out, size_t *bytes)
{
    size_t nb = ir_dtype_bytes(t->dtype, n);
    uint8_t *d = cr_calloc(nb ? nb : 1, 1);
    if (!d) {
        LERR(L, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        double x = v[i];
        int64_t iv = ivs[i];
        int32_t dt = t->dtype;
        if (dt != CRUCIBLE_DT_F32 && first_float == (long)i) {
            LERR(L, "tensor %s: element %zu (%g) is not an integer", t->name,
                 i, x);
            cr_free(d);
            return -1;
        }
        int64_t lo = 0, hi = 0;
        switch (dt) {
        case CRUCIBLE_DT_I8: lo = -128, hi = 127; break;
        case CRUCIBLE_DT_U8: lo = 0, hi = 255; break;
        case CRUCIBLE_DT_BOOL: lo = 0, hi = 1; break;
        case CRUCIBLE_DT_I16: lo = -32768, hi = 32767; break;
        case CRUCIBLE_DT_F16: lo = 0, hi = 65535; break;
        case CRUCIBLE_DT_I32: lo = INT32_MIN, hi = INT32_MAX; break;
        case CRUCIBLE_DT_I64: lo = INT64_MIN, hi = INT64_MAX; break;
        case CRUCIBLE_DT_I4: lo = -8, hi = 7; break;
        case CRUCIBLE_DT_TERNARY: lo = -1, hi = 1; break;
        case CRUCIBLE_DT_BINARY: lo = -1, hi = 1; break;
        default: break;
        }
        if (dt != CRUCIBLE_DT_F32 && (iv < lo || iv > hi ||
                                      (dt == CRUCIBLE_DT_BINARY && iv == 0))) {
            LERR(L, "tensor %s: element %zu (%lld) out of range for %s",
                 t->name, i, (long long)iv, ir_dtype_name(dt));
            cr_free(d);
            return -1;
        }
        switch (dt) {
        case CRUCIBLE_DT_F32: {
            float f = (float)x;
            memcpy(d + 4 * i, &f, 4);
            break;
        }
        case CRUCIBLE_DT_I32: {
            int32_t w = (int32_t)iv;
            memcpy(d + 4 * i, &w, 4);
            break;
        }
        case CRUCIBLE_DT_I64: memcpy(d + 8 * i, &iv, 8); break;
        case CRUCIBLE_DT_I16:
        case CRUCIBLE_DT_F16: {
            uint16_t w = (uint16_t)iv;
            memcpy(d + 2 * i, &w, 2);
            break;
        }
        case CRUCIBLE_DT_I8:
        case CRUCIBLE_DT_U8:
        case CRUCIBLE_DT_BOOL: d[i] = (uint8_t)iv; break;
        case CRUCIBLE_DT_I4: d[i / 2] |= (uint8_t)((iv & 15) << ((i & 1) * 4)); break;
        case CRUCIBLE_DT_TERNARY:
            d[i / 4] |= (uint8_t)((iv == 1 ? 1 : iv == -1 ? 3 : 0) << ((i & 3) * 2));
            break;
        case CRUCIBLE_DT_BINARY:
            if (iv == 1) d[i / 8] |= (uint8_t)(1u << (i & 7));
            break;
        default: break;
        }
    }
    *out = d;
    *bytes = nb;
    return 0;
}

static int parse_tensor(lexer *L, cr_graph *g)
{
    int rc = -1;
    double *vals = NULL;
    int64_t *ivals = NULL;
    char *name = take_name(L, "a tensor name");
    if (!name) return -1;
    if (expect_punct(L, ':')) goto out;
    if (L->tok != T_WORD) {
        LERR(L, "expected a dtype after ':'");
        goto out;
    }
    int32_t dt = ir_dtype_from_name(L->text.s);
    if (!dt) {
        LERR(L, "unknown dtype '%s'", L->text.s);
        goto out;
    }
    lex(L);
    int64_t dims[CRUCIBLE_MAX_RANK];
    int32_t rank = 0;
    if (expect_punct(L, '[')) goto out;
    while (!is_punct(L, ']')) {
        if (rank && expect_punct(L, ',')) goto out;
        if (rank >= CRUCIBLE_MAX_RANK) {
            LERR(L, "rank above %d", CRUCIBLE_MAX_RANK);
            goto out;
        }
        if (L->tok == T_WORD && !strcmp(L->text.s, "?")) {
            dims[rank++] = 0;
            lex(L);
            continue;
        }
        if (L->tok == T_ERR) goto out;
        int64_t v;
        if (word_int(L, &v)) goto out;
        if (v <= 0) {
            LERR(L, "dimension %lld must be positive", (long long)v);
            goto out;
        }
        dims[rank++] = v;
    }
    lex(L);
    char e[512] = "";
    int32_t ti = ir_add_tensor(g, name, dt, rank, dims, e, sizeof e);
    if (ti < 0) {
        LERR(L, "%s", e);
        goto out;
    }
    if (L->tok == T_WORD && !strcmp(L->text.s, "quant")) {
        lex(L);
        int64_t axis = -1, block = 0;
        double *sc = NULL, *zp = NULL;
        int64_t *zpi = NULL;
        long zp_float = -1;
        size_t ns = 0, nz = 0;
        int ok = 0;
        if (expect_punct(L, '(')) goto qout;
        while (!is_punct(L, ')')) {
            if (L->tok == T_PUNCT && L->punct == ',') lex(L);
            if (L->tok != T_WORD) {
                LERR(L, "expected axis, scales or zero_points");
                goto qout;
            }
            char key[32];
            snprintf(key, sizeof key, "%s", L->text.s);
            lex(L);
            if (expect_punct(L, '=')) goto qout;
            if (L->tok == T_WORD && !strcmp(L->text.s, "elided")) {
                LERR(L, "the quantisation parameters were elided when this "
                        "text was printed; print it with `crucible ir "
                        "--weights` for a complete IR");
                goto qout;
            }
            if (!strcmp(key, "axis")) {
                if (word_int(L, &axis)) goto qout;
            } else if (!strcmp(key, "block")) {
                if (word_int(L, &block)) goto qout;
                if (block <= 0 || block > (1 << 20)) {
                    LERR(L, "quant block size %lld must be 1..1048576",
                         (long long)block);
                    goto qout;
                }
            } else if (!strcmp(key, "scales")) {
                if (num_list(L, &sc, NULL, &ns, NULL, 1u << 24)) goto qout;
            } else if (!strcmp(key, "zero_points")) {
                cr_free(zpi);
                zpi = NULL;
                if (num_list(L, &zp, &zpi, &nz, &zp_float, 1u << 24)) goto qout;
            } else {
                LERR(L, "unknown quant field '%s'", key);
                goto qout;
            }
        }
        lex(L);
        if (ns == 0 || ns != nz || axis < -1 || axis > CRUCIBLE_MAX_RANK) {
            LERR(L, "quant needs as many scales as zero_points (%zu vs %zu) "
                    "and axis -1..rank-1", ns, nz);
            goto qout;
        }
        {
            float *fs = cr_malloc(ns * sizeof(float));
            int32_t *zs = cr_malloc(ns * sizeof(int32_t));
            if (fs && zs) {
                int bad = 0;
                for (size_t i = 0; i < ns; i++) {
                    fs[i] = (float)sc[i];
                    if (zp_float >= 0 || zpi[i] < INT32_MIN || zpi[i] > INT32_MAX)
                        bad = 1;
                    else
                        zs[i] = (int32_t)zpi[i];
                }
                if (bad)
                    LERR(L, "zero points must be 32-bit integers");
                else if (block > 0
                             ? ir_set_quant_block(g, ti, (int32_t)axis,
                                                  (int32_t)block, (uint32_t)ns,
                                                  fs, zs, e, sizeof e) < 0
                             : ir_set_quant(g, ti, (int32_t)axis, (uint32_t)ns,
                                            fs, zs, e, sizeof e) < 0)
                    LERR(L, "%s", e);
                else
                    ok = 1;
            } else {
                LERR(L, "out of memory");
            }
            cr_free(fs);
            cr_free(zs);
        }
    qout:
        cr_free(sc);
        cr_free(zp);
        cr_free(zpi);
        if (!ok) goto out;
    }
    if (is_punct(L, '=')) {
        lex(L);
        cr_tensor *t = &g->tensors[ti];
        if (L->tok == T_WORD && !strcmp(L->text.s, "elided")) {
            LERR(L, "tensor %s: its values were elided when this text was "
                    "printed; print it with `crucible ir --weights` for a "
                    "complete IR",
                 t->name);
            goto out;
        }
        uint64_t n = ir_numel(t);
        if (n == 0 && t->rank > 0) {
            LERR(L, "tensor %s: constant data needs a fully known shape",
                 t->name);
            goto out;
        }
        size_t got = 0;
        long ff = -1;
        if (num_list(L, &vals, &ivals, &got, &ff, n)) goto out;
        if (got != n) {
            LERR(L, "tensor %s: %zu values for %llu elements", t->name, got,
                 (unsigned long long)n);
            goto out;
        }
        void *d = NULL;
        size_t nb = 0;
        if (pack_data(L, t, vals, ivals, ff, got, &d, &nb)) goto out;
        int r = ir_set_data(g, ti, d, nb, e, sizeof e);
        cr_free(d);
        if (r < 0) {
            LERR(L, "%s", e);
            goto out;
        }
    }
    rc = 0;
out:
    cr_free(vals);
    cr_free(ivals);
    cr_free(name);
    return rc;
}

static int parse_attr_value(lexer *L, cr_graph *g, int32_t node,
                            const char *key)
{
    if (L->tok == T_STR) {
        int r = ir_attr_string(g, node, key, L->text.s);
        lex(L);
        return r < 0 ? -1 : 0;
    }
    int floats = 0;
    if (L->tok == T_WORD && !strcmp(L->text.s, "f") && L->p < L->end &&
        *L->p == '[') {
        floats = 1;
        lex(L);
    }
    if (is_punct(L, '[')) {
        double *v = NULL;
        int64_t *iv = NULL;
        size_t n = 0;
        long ff = -1;
        if (num_list(L, &v, &iv, &n, &ff, 1u << 20)) {
            cr_free(v);
            cr_free(iv);
            return -1;
        }
        /* f[...] or any non-integer element: a float list */
        int r = (floats || ff >= 0)
                    ? ir_attr_floats(g, node, key, (uint32_t)n, v)
                    : ir_attr_ints(g, node, key, (uint32_t)n, iv);
        cr_free(v);
        cr_free(iv);
        if (r < 0) LERR(L, "attribute %s: invalid list", key);
        return r < 0 ? -1 : 0;
    }
    if (L->tok != T_WORD) {
        LERR(L, "attribute %s: expected a value", key);
        return -1;
    }
    const char *s = L->text.s;
    int isf = strpbrk(s, ".eEn") != NULL || !strcmp(s, "inf") ||
              !strcmp(s, "-inf");
    if (isf) {
        double d;
        if (word_double(L, &d, NULL)) return -1;
        return ir_attr_float(g, node, key, d) < 0 ? -1 : 0;
    }
    int64_t i;
    if (word_int(L, &i)) return -1;
    return ir_attr_int(g, node, key, i) < 0 ? -1 : 0;
}

static int parse_node(lexer *L, cr_graph *g)
{
    int rc = -1;
    int32_t *ins = NULL, *outs = NULL;
    size_t ni = 0, no = 0;
    char *name = take_name(L, "a node name");
    char *opn = NULL;
    if (!name) return -1;
    if (expect_punct(L, ':')) goto out;
    opn = take_name(L, "an op name");
    if (!opn) goto out;
    int32_t op = ir_op_from_name(opn);
    if (op < 0) {
        LERR(L, "unknown op '%s' (see docs/ir-ops.md for the canonical ops)", opn);
        goto out;
    }
    if (tensor_list(L, g, &ins, &ni, 1)) goto out;
    if (L->tok != T_ARROW) {
        LERR(L, "expected '->' after the inputs of node %s", name);
        goto out;
    }
    lex(L);
    if (tensor_list(L, g, &outs, &no, 0)) goto out;
    char e[512] = "";
    int32_t nd = ir_add_node(g, op, name, (uint32_t)ni, ins, (uint32_t)no,
                             outs, e, sizeof e);
    if (nd < 0) {
        LERR(L, "%s", e);
        goto out;
    }
    if (is_punct(L, '{')) {
        lex(L);
        int first = 1;
        while (!is_punct(L, '}')) {
            if (!first && expect_punct(L, ',')) goto out;
            first = 0;
            char *key = take_name(L, "an attribute name");
            if (!key) goto out;
            if (ir_attr(&g->nodes[nd], key)) {
                LERR(L, "duplicate attribute %s", key);
                cr_free(key);
                goto out;
            }
            int r = expect_punct(L, '=');
            if (!r) r = parse_attr_value(L, g, nd, key);
            cr_free(key);
            if (r) goto out;
        }
        lex(L);
    }
    rc = 0;
out:
    cr_free(ins);
    cr_free(outs);
    cr_free(name);
    cr_free(opn);
    return rc;
}

cr_graph *ir_parse(const char *text, size_t len, const char *filename,
                   char *err, size_t errlen)
{
    lexer L;
    memset(&L, 0, sizeof L);
    L.p = text;
    L.end = text + len;
    L.err = err;
    L.errlen = errlen;
    L.file = filename ? filename : "<ir>";
    err[0] = 0;
    cr_graph *g = ir_new();
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int seen_header = 0, seen_io[2] = {0, 0};
    const char *line_start = text;
    while (line_start < L.end) {
        const char *nl = memchr(line_start, '\n', (size_t)(L.end - line_start));
        const char *line_end = nl ? nl : L.end;
        L.line++;
        L.p = line_start;
        L.end = line_end;
        const char *full_end = text + len;
        if (memchr(line_start, 0, (size_t)(line_end - line_start))) {
            LERR(&L, "NUL byte in text");
            goto fail;
        }
        const char *fc = line_start;
        while (fc < line_end && (*fc == ' ' || *fc == '\t' || *fc == '\r')) fc++;
        if (fc < line_end && *fc == '#')
            L.tok = T_EOL;
        else
            lex(&L);
        if (L.tok == T_EOL) {
            /* blank or comment */
        } else if (L.tok != T_WORD) {
            if (L.tok != T_ERR) LERR(&L, "expected a keyword");
            goto fail;
        } else if (!seen_header) {
            if (strcmp(L.text.s, "crucible-ir") != 0) {
                LERR(&L, "not crucible IR text (first line must be "
                         "'crucible-ir 1')");
                goto fail;
            }
            lex(&L);
            int64_t ver;
            if (word_int(&L, &ver)) goto fail;
            if (ver != 1) {
                LERR(&L, "IR text version %lld is not supported (this crucible "
                         "reads version 1)", (long long)ver);
                goto fail;
            }
            seen_header = 1;
        } else {
            char kw[16];
            snprintf(kw, sizeof kw, "%s", L.text.s);
            lex(&L);
            if (!strcmp(kw, "graph")) {
                char *n = take_name(&L, "a graph name");
                if (!n) goto fail;
                cr_free(g->name);
                g->name = n;
            } else if (!strcmp(kw, "meta")) {
                char *k = take_name(&L, "a meta key");
                if (!k) goto fail;
                if (L.tok != T_STR) {
                    LERR(&L, "meta value must be a quoted string");
                    cr_free(k);
                    goto fail;
                }
                int r = ir_set_meta(g, k, L.text.s);
                cr_free(k);
                if (r < 0) {
                    LERR(&L, "invalid meta");
                    goto fail;
                }
                lex(&L);
            } else if (!strcmp(kw, "tensor")) {
                if (parse_tensor(&L, g)) goto fail;
            } else if (!strcmp(kw, "node")) {
                if (parse_node(&L, g)) goto fail;
            } else if (!strcmp(kw, "inputs") || !strcmp(kw, "outputs")) {
                int is_out = kw[0] == 'o';
                if (seen_io[is_out]) {
                    LERR(&L, "second '%s' line", kw);
                    goto fail;
                }
                seen_io[is_out] = 1;
                int32_t *idx = NULL;
                size_t n = 0;
                if (tensor_list(&L, g, &idx, &n, 0)) {
                    cr_free(idx);
                    goto fail;
                }
                for (size_t i = 0; i < n; i++) {
                    int dup = 0;
                    size_t cnt = is_out ? g->n_outputs : g->n_inputs;
                    for (size_t j = 0; j < cnt; j++)
                        dup |= (is_out ? g->outputs : g->inputs)[j] == idx[i];
                    if (dup) {
                        LERR(&L, "tensor %s listed twice",
                             g->tensors[idx[i]].name);
                        cr_free(idx);
                        goto fail;
                    }
                    int r = is_out ? ir_mark_output(g, idx[i])
                                   : ir_mark_input(g, idx[i]);
                    if (r < 0) {
                        LERR(&L, "out of memory");
                        cr_free(idx);
                        goto fail;
                    }
                }
                cr_free(idx);
            } else {
                LERR(&L, "unknown keyword '%s' (expected graph, meta, tensor, "
                         "node, inputs or outputs)", kw);
                goto fail;
            }
            if (L.tok == T_ERR) goto fail;
            if (L.tok != T_EOL) {
                LERR(&L, "unexpected text after the end of the %s line", kw);
                goto fail;
            }
        }
        L.end = full_end;
        line_start = nl ? nl + 1 : full_end;
    }
    if (!seen_header) {
        snprintf(err, errlen, "%s: empty file, not crucible IR text", L.file);
        goto fail;
    }
    jb_free(&L.text);
    if (ir_validate(g, err, errlen) < 0) {
        char tmp[512];
        snprintf(tmp, sizeof tmp, "%s", err);
        snprintf(err, errlen, "%s: %s", L.file, tmp);
        ir_free(g);
        return NULL;
    }
    return g;
fail:
    if (!err[0]) snprintf(err, errlen, "%s:%d: syntax error", L.file, L.line);
    jb_free(&L.text);
    ir_free(g);
    return NULL;
}
