/* json.c - defensive JSON DOM parser. See json.h. */
#include "json.h"

#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct jmem jmem;

struct jv {
    jv_type t;
    union {
        int b;
        double n;
        struct {
            char *s;
            size_t len;
        } s;
        struct {
            jv *items;
            size_t n;
        } a;
        struct {
            jmem *m;       /* members in document order */
            jmem **sorted; /* the same, sorted by key (for lookup) */
            size_t n;
        } o;
    } u;
};

struct jmem {
    char *key;
    jv val;
};

/* ---- freeing ---------------------------------------------------------- */

static void jv_clear(jv *v)
{
    switch (v->t) {
    case JV_STR: cr_free(v->u.s.s); break;
    case JV_ARR:
        for (size_t i = 0; i < v->u.a.n; i++) jv_clear(&v->u.a.items[i]);
        cr_free(v->u.a.items);
        break;
    case JV_OBJ:
        for (size_t i = 0; i < v->u.o.n; i++) {
            cr_free(v->u.o.m[i].key);
            jv_clear(&v->u.o.m[i].val);
        }
        cr_free(v->u.o.m);
        cr_free(v->u.o.sorted);
        break;
    default: break;
    }
    memset(v, 0, sizeof *v);
    v->t = JV_NULL;
}

void jv_free(jv *v)
{
    if (!v) return;
    jv_clear(v);
    cr_free(v);
}

/* ---- parser ------------------------------------------------------------ */

typedef struct jp {
    const char *start, *p, *end;
    int depth;
    int failed;
    char *err;
    size_t errlen;
} jp;

static int fail(jp *P, const char *at, const char *msg)
{
    if (P->failed) return -1;
    P->failed = 1;
    if (!P->err || !P->errlen) return -1;
    size_t line = 1, col = 1;
    if (at > P->end) at = P->end;
    for (const char *q = P->start; q < at; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    if (at >= P->end)
        snprintf(P->err, P->errlen, "line %zu, column %zu: %s (at end of input)",
                 line, col, msg);
    else
        snprintf(P->err, P->errlen, "line %zu, column %zu: %s", line, col, msg);
    return -1;
}

static void skip_ws(jp *P)
{
    while (P->p < P->end &&
           (*P->p == ' ' || *P->p == '\t' || *P->p == '\n' || *P->p == '\r'))
        P->p++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads 4 hex digits at q (bounds checked by the caller). */
static long hex4(const char *q)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(q[i]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

static size_t put_utf8(char *o, unsigned long cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the valid UTF-8 sequence at q (q < end, *q >= 0x80), or 0. */
static size_t utf8_seq(const unsigned char *q, const unsigned char *end)
{
    unsigned char c = q[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c == 0xE0) n = 3, lo = 0xA0;
    else if (c >= 0xE1 && c <= 0xEC) n = 3;
    else if (c == 0xED) n = 3, hi = 0x9F; /* no UTF-16 surrogates */
    else if (c >= 0xEE && c <= 0xEF) n = 3;
    else if (c == 0xF0) n = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) n = 4;
    else if (c == 0xF4) n = 4, hi = 0x8F; /* <= U+10FFFF */
    else return 0;
    if ((size_t)(end - q) < n) return 0;
    if (q[1] < lo || q[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (q[i] < 0x80 || q[i] > 0xBF) return 0;
    return n;
}

/* P->p is at the opening quote. On success *out is a NUL-terminated
 * allocated string. */
static int parse_string(jp *P, char **out, size_t *outlen)
{
    const char *open = P->p;
    const char *q = P->p + 1;
    /* Find the closing quote; escapes never decode to more bytes than
     * their source text, so the raw span bounds the output size. */
    while (q < P->end && *q != '"') {
        if (*q == '\\' && P->end - q < 2) {
            q = P->end;
            break;
        }
        q += (*q == '\\') ? 2 : 1;
    }
    if (q >= P->end) return fail(P, open, "unterminated string");
    const char *close = q;
    char *buf = cr_malloc((size_t)(close - open));
    if (!buf) return fail(P, open, "out of memory");
    size_t o = 0;
    q = open + 1;
    while (q < close) {
        unsigned char c = (unsigned char)*q;
        if (c < 0x20) {
            cr_free(buf);
            return fail(P, q, "control character in string");
        }
        if (c >= 0x80) {
            size_t n = utf8_seq((const unsigned char *)q, (const unsigned char *)close);
            if (!n) {
                cr_free(buf);
                return fail(P, q, "invalid UTF-8 in string");
            }
            memcpy(buf + o, q, n);
            o += n;
            q += n;
            continue;
        }
        if (c != '\\') {
            buf[o++] = (char)c;
            q++;
            continue;
        }
        /* escape: q + 1 < close holds since the scan skipped in pairs */
        char e = q[1];
        switch (e) {
        case '"': buf[o++] = '"'; q += 2; continue;
        case '\\': buf[o++] = '\\'; q += 2; continue;
        case '/': buf[o++] = '/'; q += 2; continue;
        case 'b': buf[o++] = '\b'; q += 2; continue;
        case 'f': buf[o++] = '\f'; q += 2; continue;
        case 'n': buf[o++] = '\n'; q += 2; continue;
        case 'r': buf[o++] = '\r'; q += 2; continue;
        case 't': buf[o++] = '\t'; q += 2; continue;
        case 'u': break;
        default:
            cr_free(buf);
            return fail(P, q, "invalid escape in string");
        }
        long cp = close - q >= 6 ? hex4(q + 2) : -1;
        if (cp < 0) {
            cr_free(buf);
            return fail(P, q, "invalid \\u escape");
        }
        const char *esc = q;
        q += 6;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            long lo = -1;
            if (close - q >= 6 && q[0] == '\\' && q[1] == 'u') lo = hex4(q + 2);
            if (lo < 0xDC00 || lo > 0xDFFF) {
                cr_free(buf);
                return fail(P, esc, "unpaired UTF-16 surrogate in \\u escape");
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            q += 6;
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            cr_free(buf);
            return fail(P, esc, "unpaired UTF-16 surrogate in \\u escape");
        } else if (cp == 0) {
            cr_free(buf);
            return fail(P, esc, "\\u0000 is not supported in strings");
        }
        o += put_utf8(buf + o, (unsigned long)cp);
    }
    buf[o] = 0;
    *out = buf;
    if (outlen) *outlen = o;
    P->p = close + 1;
    return 0;
}

static int parse_number(jp *P, jv *out)
{
    const char *s = P->p, *q = P->p;
    if (q < P->end && *q == '-') q++;
    if (q >= P->end) return fail(P, q, "invalid number");
    if (*q == '0') {
        q++;
    } else if (*q >= '1' && *q <= '9') {
        while (q < P->end && *q >= '0' && *q <= '9') q++;
    } else {
        return fail(P, s, "invalid number");
    }
    if (q < P->end && *q == '.') {
        q++;
        if (q >= P->end || *q < '0' || *q > '9')
            return fail(P, q, "invalid number: digit expected after '.'");
        while (q < P->end && *q >= '0' && *q <= '9') q++;
    }
    if (q < P->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < P->end && (*q == '+' || *q == '-')) q++;
        if (q >= P->end || *q < '0' || *q > '9')
            return fail(P, q, "invalid number: digit expected in exponent");
        while (q < P->end && *q >= '0' && *q <= '9') q++;
    }
    size_t n = (size_t)(q - s);
    char small[64];
    char *tmp = n < sizeof small ? small : cr_malloc(n + 1);
    if (!tmp) return fail(P, s, "out of memory");
    memcpy(tmp, s, n);
    tmp[n] = 0;
    /* strtod honours LC_NUMERIC; JSON always uses '.'. */
    const char *dp = localeconv()->decimal_point;
    if (dp && dp[0] && dp[0] != '.' && !dp[1]) {
        char *d = memchr(tmp, '.', n);
        if (d) *d = dp[0];
    }
    char *endp = NULL;
    double v = strtod(tmp, &endp);
    int whole = endp == tmp + n;
    if (tmp != small) cr_free(tmp);
    if (!whole) return fail(P, s, "invalid number");
    if (!isfinite(v)) return fail(P, s, "number out of range");
    out->t = JV_NUM;
    out->u.n = v;
    P->p = q;
    return 0;
}

static int parse_value(jp *P, jv *out);

static int parse_array(jp *P, jv *out)
{
    const char *open = P->p;
    if (++P->depth > JV_MAX_DEPTH)
        return fail(P, open, "nesting deeper than the limit of 64");
    P->p++;
    jv *items = NULL;
    size_t n = 0, cap = 0;
    skip_ws(P);
    if (P->p < P->end && *P->p == ']') {
        P->p++;
        goto done;
    }
    for (;;) {
        if (cr_grow((void **)&items, &cap, n + 1, sizeof *items)) {
            fail(P, P->p, "out of memory");
            goto bad;
        }
        skip_ws(P);
        if (parse_value(P, &items[n])) goto bad;
        n++;
        skip_ws(P);
        if (P->p >= P->end) {
            fail(P, open, "unterminated array");
            goto bad;
        }
        if (*P->p == ',') {
            P->p++;
            continue;
        }
        if (*P->p == ']') {
            P->p++;
            break;
        }
        fail(P, P->p, "expected ',' or ']' in array");
        goto bad;
    }
done:
    P->depth--;
    out->t = JV_ARR;
    out->u.a.items = items;
    out->u.a.n = n;
    return 0;
bad:
    for (size_t i = 0; i < n; i++) jv_clear(&items[i]);
    cr_free(items);
    return -1;
}

static int cmp_member(const void *a, const void *b)
{
    const jmem *x = *(const jmem *const *)a, *y = *(const jmem *const *)b;
    return strcmp(x->key, y->key);
}

static int parse_object(jp *P, jv *out)
{
    const char *open = P->p;
    if (++P->depth > JV_MAX_DEPTH)
        return fail(P, open, "nesting deeper than the limit of 64");
    P->p++;
    jmem *m = NULL;
    jmem **sorted = NULL;
    size_t n = 0, cap = 0;
    skip_ws(P);
    if (P->p < P->end && *P->p == '}') {
        P->p++;
        goto done;
    }
    for (;;) {
        skip_ws(P);
        if (P->p >= P->end) {
            fail(P, open, "unterminated object");
            goto bad;
        }
        if (*P->p != '"') {
            fail(P, P->p, "expected a string key in object");
            goto bad;
        }
        if (cr_grow((void **)&m, &cap, n + 1, sizeof *m)) {
            fail(P, P->p, "out of memory");
            goto bad;
        }
        if (parse_string(P, &m[n].key, NULL)) goto bad;
        skip_ws(P);
        if (P->p >= P->end || *P->p != ':') {
            cr_free(m[n].key);
            m[n].key = NULL;
            fail(P, P->p, "expected ':' after object key");
            goto bad;
        }
        P->p++;
        skip_ws(P);
        if (parse_value(P, &m[n].val)) {
            cr_free(m[n].key);
            m[n].key = NULL;
            goto bad;
        }
        n++;
        skip_ws(P);
        if (P->p >= P->end) {
            fail(P, open, "unterminated object");
            goto bad;
        }
        if (*P->p == ',') {
            P->p++;
            continue;
        }
        if (*P->p == '}') {
            P->p++;
            break;
        }
        fail(P, P->p, "expected ',' or '}' in object");
        goto bad;
    }
    sorted = cr_malloc(n * sizeof *sorted);
    if (!sorted) {
        fail(P, open, "out of memory");
        goto bad;
    }
    for (size_t i = 0; i < n; i++) sorted[i] = &m[i];
    qsort(sorted, n, sizeof *sorted, cmp_member);
    for (size_t i = 1; i < n; i++) {
        if (!strcmp(sorted[i - 1]->key, sorted[i]->key)) {
            fail(P, open, "duplicate key in object");
            goto bad;
        }
    }
done:
    P->depth--;
    out->t = JV_OBJ;
    out->u.o.m = m;
    out->u.o.sorted = sorted;
    out->u.o.n = n;
    return 0;
bad:
    for (size_t i = 0; i < n; i++) {
        cr_free(m[i].key);
        jv_clear(&m[i].val);
    }
    cr_free(m);
    cr_free(sorted);
    return -1;
}

static int match_lit(jp *P, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(P->end - P->p) < n || memcmp(P->p, lit, n)) return 0;
    P->p += n;
    return 1;
}

static int parse_value(jp *P, jv *out)
{
    memset(out, 0, sizeof *out);
    out->t = JV_NULL;
    if (P->p >= P->end) return fail(P, P->p, "value expected");
    switch (*P->p) {
    case '{': return parse_object(P, out);
    case '[': return parse_array(P, out);
    case '"':
        if (parse_string(P, &out->u.s.s, &out->u.s.len)) return -1;
        out->t = JV_STR;
        return 0;
    case 't':
        if (!match_lit(P, "true")) break;
        out->t = JV_BOOL;
        out->u.b = 1;
        return 0;
    case 'f':
        if (!match_lit(P, "false")) break;
        out->t = JV_BOOL;
        out->u.b = 0;
        return 0;
    case 'n':
        if (!match_lit(P, "null")) break;
        return 0;
    default:
        if (*P->p == '-' || (*P->p >= '0' && *P->p <= '9'))
            return parse_number(P, out);
        break;
    }
    return fail(P, P->p, "unexpected character, value expected");
}

jv *jv_parse(const char *text, size_t len, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    if (!text) {
        if (err && errlen) snprintf(err, errlen, "no input");
        return NULL;
    }
    jp P = {.start = text, .p = text, .end = text + len, .err = err,
            .errlen = errlen};
    jv *root = cr_malloc(sizeof *root);
    if (!root) {
        if (err && errlen) snprintf(err, errlen, "out of memory");
        return NULL;
    }
    skip_ws(&P);
    if (parse_value(&P, root)) {
        cr_free(root);
        return NULL;
    }
    skip_ws(&P);
    if (P.p != P.end) {
        fail(&P, P.p, "unexpected text after the JSON value");
        jv_free(root);
        return NULL;
    }
    return root;
}

/* ---- accessors ---------------------------------------------------------- */

jv_type jv_typeof(const jv *v) { return v ? v->t : JV_NULL; }

const jv *jv_get(const jv *obj, const char *key)
{
    if (!obj || obj->t != JV_OBJ || !key) return NULL;
    size_t lo = 0, hi = obj->u.o.n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(key, obj->u.o.sorted[mid]->key);
        if (c == 0) return &obj->u.o.sorted[mid]->val;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

size_t jv_len(const jv *v)
{
    if (!v) return 0;
    switch (v->t) {
    case JV_ARR: return v->u.a.n;
    case JV_OBJ: return v->u.o.n;
    case JV_STR: return v->u.s.len;
    default: return 0;
    }
}

const jv *jv_at(const jv *arr, size_t i)
{
    if (!arr || arr->t != JV_ARR || i >= arr->u.a.n) return NULL;
    return &arr->u.a.items[i];
}

const char *jv_key_at(const jv *obj, size_t i)
{
    if (!obj || obj->t != JV_OBJ || i >= obj->u.o.n) return NULL;
    return obj->u.o.m[i].key;
}

const jv *jv_val_at(const jv *obj, size_t i)
{
    if (!obj || obj->t != JV_OBJ || i >= obj->u.o.n) return NULL;
    return &obj->u.o.m[i].val;
}

const char *jv_str(const jv *v) { return v && v->t == JV_STR ? v->u.s.s : NULL; }

double jv_num(const jv *v, double dflt) { return v && v->t == JV_NUM ? v->u.n : dflt; }

int jv_bool(const jv *v, int dflt) { return v && v->t == JV_BOOL ? v->u.b : dflt; }

void jv_dump(jbuf *b, const jv *v)
{
    switch (jv_typeof(v)) {
    case JV_NULL: jb_puts(b, "null"); break;
    case JV_BOOL: jb_puts(b, v->u.b ? "true" : "false"); break;
    case JV_NUM: jb_jnum(b, v->u.n); break;
    case JV_STR: jb_jstr(b, v->u.s.s); break;
    case JV_ARR:
        jb_putc(b, '[');
        for (size_t i = 0; i < v->u.a.n; i++) {
            if (i) jb_putc(b, ',');
            jv_dump(b, &v->u.a.items[i]);
        }
        jb_putc(b, ']');
        break;
    case JV_OBJ:
        jb_putc(b, '{');
        for (size_t i = 0; i < v->u.o.n; i++) {
            if (i) jb_putc(b, ',');
            jb_jstr(b, v->u.o.m[i].key);
            jb_putc(b, ':');
            jv_dump(b, &v->u.o.m[i].val);
        }
        jb_putc(b, '}');
        break;
    }
}
