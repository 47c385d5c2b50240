/*
 * tensorio.c - .npy and ONNX TensorProto (.pb) tensor files; see tensorio.h.
 *
 * Formats, as implemented here:
 *
 * npy (NumPy format 1.0 / 2.0 / 3.0): "\x93NUMPY", major, minor, then the
 * header length (u16 LE for 1.0, u32 LE for 2.0 and 3.0), then a Python
 * dict literal {'descr': ..., 'fortran_order': ..., 'shape': (...)} padded
 * with spaces and a newline (3.0 only differs in allowing UTF-8 there),
 * then the C-order element data. The dict is parsed as a tiny literal
 * grammar, not evaluated; only those three keys are accepted.
 *
 * TensorProto is decoded straight from the protobuf wire format: a stream
 * of (key varint = field << 3 | wire type, payload). Repeated numeric
 * fields may be packed (one length-delimited run) or not (one key per
 * value), and both forms may be mixed. Unknown fields are skipped by wire
 * type. Decoding is two passes: the first validates the whole message and
 * counts elements, the second (after the counts have been checked against
 * the dims) writes the values, so nothing is allocated from an unchecked
 * size.
 *
 * Data is always held as packed little-endian elements, and all
 * element-wise conversions go through explicit byte assembly, so the code
 * does not depend on the host's byte order.
 */
#include "tensorio.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

/* Upper bound on elements, so that numel * 8 always fits in size_t. */
#define TIO_MAX_NUMEL (SIZE_MAX / 8)

/* ---- errors -------------------------------------------------------------*/

typedef struct ectx {
    const char *what; /* file name or caller's label, prefixed to messages */
    char *err;
    size_t errlen;
} ectx;

static int ef(const ectx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int ef(const ectx *c, const char *fmt, ...)
{
    if (!c->err || !c->errlen) return -1;
    int n = 0;
    if (c->what && *c->what) n = snprintf(c->err, c->errlen, "%s: ", c->what);
    if (n < 0) n = 0;
    if ((size_t)n < c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- element types ------------------------------------------------------*/

static int dt_bits(int32_t dt)
{
    switch (dt) {
#define X_(e, s, b)                                                          \
    case CRUCIBLE_DT_##e: return b;
        CRUCIBLE_DTYPE_LIST(X_)
#undef X_
    default: return 0;
    }
}

static const char *dt_name(int32_t dt)
{
    switch (dt) {
#define X_(e, s, b)                                                          \
    case CRUCIBLE_DT_##e: return s;
        CRUCIBLE_DTYPE_LIST(X_)
#undef X_
    default: return "invalid";
    }
}

/* The byte-addressed types this file reads, writes and converts. */
static int dt_plain(int32_t dt)
{
    switch (dt) {
    case CRUCIBLE_DT_F32: case CRUCIBLE_DT_I32: case CRUCIBLE_DT_I8:
    case CRUCIBLE_DT_U8: case CRUCIBLE_DT_I16: case CRUCIBLE_DT_I64:
    case CRUCIBLE_DT_F16: case CRUCIBLE_DT_BOOL:
        return 1;
    default: return 0;
    }
}

static int dt_is_float(int32_t dt)
{
    return dt == CRUCIBLE_DT_F32 || dt == CRUCIBLE_DT_F16;
}

/* Bytes for numel elements of dt (numel <= TIO_MAX_NUMEL). */
static size_t dt_bytes(int32_t dt, size_t numel)
{
    size_t bits = (size_t)dt_bits(dt);
    if (bits % 8 == 0) return numel * (bits / 8);
    return (numel / 8) * bits + ((numel % 8) * bits + 7) / 8;
}

/* ---- shapes -------------------------------------------------------------*/

enum { SHAPE_OK = 0, SHAPE_NEGATIVE = -1, SHAPE_OVERFLOW = -2 };

/* Product of dims. Zero dims are skipped for the overflow check, so a
 * shape like (0, 2^62, 2^62) is refused too: consumers compute strides. */
static int shape_numel(int32_t rank, const int64_t *dims, size_t *numel,
                       int *bad)
{
    size_t n = 1;
    int zero = 0;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0) {
            if (bad) *bad = i;
            return SHAPE_NEGATIVE;
        }
        if (dims[i] == 0) {
            zero = 1;
            continue;
        }
        if ((uint64_t)dims[i] > (uint64_t)(TIO_MAX_NUMEL / n)) {
            if (bad) *bad = i;
            return SHAPE_OVERFLOW;
        }
        n *= (size_t)dims[i];
    }
    *numel = zero ? 0 : n;
    return SHAPE_OK;
}

/* "(2, 3)", "(5,)", "()"; truncated with "..." if it does not fit. */
static const char *fmt_shape(char *buf, size_t cap, int32_t rank,
                             const int64_t *dims)
{
    size_t n = 0;
    buf[0] = 0;
    n += (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < rank && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "",
                              (long long)dims[i]);
    if (n < cap) n += (size_t)snprintf(buf + n, cap - n, rank == 1 ? ",)" : ")");
    if (n >= cap && cap > 4) memcpy(buf + cap - 4, "...", 4);
    return buf;
}

size_t tio_numel(const cr_array *a)
{
    size_t n = 0;
    if (!a || a->rank < 0 || a->rank > CRUCIBLE_MAX_RANK) return 0;
    if (shape_numel(a->rank, a->dims, &n, NULL) != SHAPE_OK) return 0;
    return n;
}

void tio_free(cr_array *a)
{
    if (!a) return;
    cr_free(a->name);
    cr_free(a->data);
    memset(a, 0, sizeof *a);
}

/* ---- byte order and number formats --------------------------------------*/

static uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}
static uint64_t ld64(const uint8_t *p)
{
    return (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32;
}
static void st16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void st32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void st64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Sign-extends the low `bits` bits of v. */
static int64_t sext(uint64_t v, int bits)
{
    if (bits >= 64) return v > (uint64_t)INT64_MAX
                               ? -(int64_t)(~v) - 1
                               : (int64_t)v;
    uint64_t m = (uint64_t)1 << (bits - 1);
    v &= (m << 1) - 1;
    return v & m ? (int64_t)v - (int64_t)(m << 1) : (int64_t)v;
}

static float f32_from_bits(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}
static uint32_t f32_bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}
static double f64_from_bits(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

/* double -> float, round to nearest even; beyond the float range gives
 * +-inf (the IEEE result), computed without an out-of-range conversion. */
static float f32_from_double(double d)
{
    if (isnan(d)) return (float)d;
    double a = fabs(d);
    if (a > FLT_MAX) {
        /* Halfway between FLT_MAX and 2^128 rounds to even, i.e. to inf. */
        float r = a >= 0x1.ffffffp127 ? INFINITY : FLT_MAX;
        return d < 0 ? -r : r;
    }
    return (float)d;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    int e = (h >> 10) & 0x1f;
    uint32_t m = h & 0x3ff;
    if (e == 31) return f32_from_bits(sign | 0x7f800000u | m << 13);
    float v = e == 0 ? ldexpf((float)m, -24)
                     : ldexpf((float)(m | 0x400), e - 25);
    return sign ? -v : v;
}

/* double -> IEEE binary16, round to nearest even (directly, so there is no
 * double rounding through float). */
static uint16_t half_from_double(double d)
{
    uint16_t sign = signbit(d) ? 0x8000 : 0;
    if (isnan(d)) return sign | 0x7e00;
    double a = fabs(d);
    if (a >= 65520.0) return sign | 0x7c00; /* rounds past 65504: inf */
    if (a < 0x1p-14) /* subnormal (or rounds up to the smallest normal) */
        return (uint16_t)(sign | (uint16_t)rint(a * 0x1p24));
    int e;
    double f = frexp(a, &e); /* a = f * 2^e, f in [0.5, 1) */
    int E = e - 1;
    double m = rint(f * 2048.0); /* 1.mantissa * 1024, in [1024, 2048] */
    if (m >= 2048.0) {
        m = 1024.0;
        E++;
    }
    if (E > 15) return sign | 0x7c00;
    return (uint16_t)(sign | (uint16_t)((E + 15) << 10) |
                      (uint16_t)((int)m - 1024));
}

/* ---- npy ----------------------------------------------------------------*/

static const char NPY_MAGIC[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

typedef struct hp {
    const uint8_t *p, *end, *start;
} hp;

static void hp_ws(hp *h)
{
    while (h->p < h->end &&
           (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r'))
        h->p++;
}

static int hp_peek(const hp *h) { return h->p < h->end ? *h->p : -1; }

static size_t hp_off(const hp *h) { return (size_t)(h->p - h->start); }

/* A quoted string without escapes; -1 if malformed or longer than cap-1. */
static int hp_str(hp *h, char *dst, size_t cap)
{
    int q = hp_peek(h);
    if (q != '\'' && q != '"') return -1;
    h->p++;
    size_t n = 0;
    while (h->p < h->end && *h->p != q) {
        if (*h->p == '\\' || *h->p == '\n' || n + 1 >= cap) return -1;
        dst[n++] = (char)*h->p++;
    }
    if (h->p >= h->end) return -1;
    h->p++;
    dst[n] = 0;
    return 0;
}

static int hp_word(hp *h, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(h->end - h->p) < n || memcmp(h->p, w, n)) return 0;
    /* not a prefix of a longer identifier */
    if ((size_t)(h->end - h->p) > n) {
        int c = h->p[n];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '_')
            return 0;
    }
    h->p += n;
    return 1;
}

static int npy_shape(hp *h, const ectx *c, int32_t *rank, int64_t *dims)
{
    if (hp_peek(h) != '(')
        return ef(c, "npy header: 'shape' must be a tuple, at header byte %zu",
                  hp_off(h));
    h->p++;
    *rank = 0;
    for (;;) {
        hp_ws(h);
        if (hp_peek(h) == ')') {
            h->p++;
            return 0;
        }
        if (hp_peek(h) == '-')
            return ef(c, "npy header: negative dimension in 'shape'");
        if (hp_peek(h) < '0' || hp_peek(h) > '9')
            return ef(c, "npy header: expected a dimension in 'shape' at "
                         "header byte %zu", hp_off(h));
        uint64_t v = 0;
        while (hp_peek(h) >= '0' && hp_peek(h) <= '9') {
            unsigned dig = (unsigned)(*h->p++ - '0');
            if (v > ((uint64_t)INT64_MAX - dig) / 10)
                return ef(c, "npy header: dimension in 'shape' is too large");
            v = v * 10 + dig;
        }
        if (hp_peek(h) == 'L' || hp_peek(h) == 'l') h->p++; /* Python 2 */
        if (*rank >= CRUCIBLE_MAX_RANK)
            return ef(c, "npy header: 'shape' has more than %d dimensions",
                      CRUCIBLE_MAX_RANK);
        dims[(*rank)++] = (int64_t)v;
        hp_ws(h);
        if (hp_peek(h) == ',') {
            h->p++;
            continue;
        }
        if (hp_peek(h) == ')') {
            h->p++;
            return 0;
        }
        return ef(c, "npy header: expected ',' or ')' in 'shape' at header "
                     "byte %zu", hp_off(h));
    }
}

/* How the npy element type maps to ours. */
typedef struct npy_type {
    int32_t dtype;  /* crucible dtype on load */
    int size;       /* bytes per element in the file */
    int swap;       /* big-endian file data */
    int from_f64;   /* convert f8 to f32 */
    int is_bool;    /* normalise to 0/1 */
} npy_type;

static int npy_descr(const char *descr, const ectx *c, npy_type *t)
{
    const char *d = descr;
    char order = '|';
    memset(t, 0, sizeof *t);
    if (*d == '<' || *d == '>' || *d == '=' || *d == '|') order = *d++;
    char kind = *d ? *d++ : 0;
    int size = 0;
    if (kind == '?' && !*d) {
        size = 1;
    } else {
        if (*d < '1' || *d > '9') goto unsupported;
        while (*d >= '0' && *d <= '9' && size < 100) size = size * 10 + (*d++ - '0');
        if (*d) goto unsupported;
    }
    t->size = size;
    /* '<' is little-endian, '>' big-endian; '=' (native) and '|' (not
     * applicable) are taken as little-endian, which every npy writer in
     * practice is. */
    t->swap = order == '>' && size > 1;
    if (kind == 'f' && size == 4) t->dtype = CRUCIBLE_DT_F32;
    else if (kind == 'f' && size == 8) {
        /* crucible has no f64: double data is converted to f32 on load. */
        t->dtype = CRUCIBLE_DT_F32;
        t->from_f64 = 1;
    } else if (kind == 'f' && size == 2) t->dtype = CRUCIBLE_DT_F16;
    else if (kind == 'i' && size == 1) t->dtype = CRUCIBLE_DT_I8;
    else if (kind == 'i' && size == 2) t->dtype = CRUCIBLE_DT_I16;
    else if (kind == 'i' && size == 4) t->dtype = CRUCIBLE_DT_I32;
    else if (kind == 'i' && size == 8) t->dtype = CRUCIBLE_DT_I64;
    else if (kind == 'u' && size == 1) t->dtype = CRUCIBLE_DT_U8;
    else if ((kind == 'b' || kind == '?') && size == 1) {
        t->dtype = CRUCIBLE_DT_BOOL;
        t->is_bool = 1;
    } else
        goto unsupported;
    return 0;
unsupported:
    return ef(c, "npy dtype '%s' is not supported (supported: f2 f4 f8 i1 "
                 "i2 i4 i8 u1 b1)", descr);
}

static int npy_load(const uint8_t *buf, size_t len, const ectx *c,
                    cr_array *out)
{
    if (len < 6 || memcmp(buf, NPY_MAGIC, 6))
        return ef(c, "not an npy file (no \\x93NUMPY magic at the start)");
    if (len < 10)
        return ef(c, "truncated npy file: %zu bytes, shorter than the "
                     "preamble", len);
    unsigned major = buf[6], minor = buf[7];
    size_t hlen, hstart;
    if (major == 1 && minor == 0) {
        hlen = ld16(buf + 8);
        hstart = 10;
    } else if ((major == 2 || major == 3) && minor == 0) {
        if (len < 12)
            return ef(c, "truncated npy file: %zu bytes, shorter than the "
                         "preamble", len);
        hlen = ld32(buf + 8);
        hstart = 12;
    } else {
        return ef(c, "unsupported npy format version %u.%u (supported: 1.0, "
                     "2.0, 3.0)", major, minor);
    }
    if (hlen > len - hstart)
        return ef(c, "npy header length %zu runs past the end of the file "
                     "(%zu bytes after the preamble)", hlen, len - hstart);

    hp h = {buf + hstart, buf + hstart + hlen, buf + hstart};
    char descr[32] = "";
    int have_descr = 0, have_fortran = 0, have_shape = 0, fortran = 0;
    int32_t rank = 0;
    int64_t dims[CRUCIBLE_MAX_RANK] = {0};

    hp_ws(&h);
    if (hp_peek(&h) != '{')
        return ef(c, "npy header is not a dict literal (expected '{' at "
                     "header byte %zu)", hp_off(&h));
    h.p++;
    for (;;) {
        hp_ws(&h);
        if (hp_peek(&h) == '}') {
            h.p++;
            break;
        }
        char key[32];
        size_t koff = hp_off(&h);
        if (hp_str(&h, key, sizeof key))
            return ef(c, "npy header: expected a short quoted key at header "
                         "byte %zu", koff);
        hp_ws(&h);
        if (hp_peek(&h) != ':')
            return ef(c, "npy header: expected ':' after '%s'", key);
        h.p++;
        hp_ws(&h);
        if (!strcmp(key, "descr")) {
            if (have_descr) return ef(c, "npy header: duplicate key 'descr'");
            if (hp_peek(&h) == '[')
                return ef(c, "npy structured dtypes (descr is a list) are "
                             "not supported");
            if (hp_str(&h, descr, sizeof descr))
                return ef(c, "npy header: 'descr' is not a short string");
            have_descr = 1;
        } else if (!strcmp(key, "fortran_order")) {
            if (have_fortran)
                return ef(c, "npy header: duplicate key 'fortran_order'");
            if (hp_word(&h, "True")) fortran = 1;
            else if (hp_word(&h, "False")) fortran = 0;
            else
                return ef(c, "npy header: 'fortran_order' must be True or "
                             "False");
            have_fortran = 1;
        } else if (!strcmp(key, "shape")) {
            if (have_shape) return ef(c, "npy header: duplicate key 'shape'");
            if (npy_shape(&h, c, &rank, dims)) return -1;
            have_shape = 1;
        } else {
            return ef(c, "npy header: unexpected key '%s' (only 'descr', "
                         "'fortran_order' and 'shape' are valid)", key);
        }
        hp_ws(&h);
        if (hp_peek(&h) == ',') {
            h.p++;
            continue;
        }
        if (hp_peek(&h) == '}') {
            h.p++;
            break;
        }
        return ef(c, "npy header: expected ',' or '}' at header byte %zu",
                  hp_off(&h));
    }
    hp_ws(&h);
    while (h.p < h.end && *h.p == 0) h.p++; /* tolerate NUL padding */
    if (h.p != h.end)
        return ef(c, "npy header: unexpected text after the dict at header "
                     "byte %zu", hp_off(&h));
    if (!have_descr || !have_fortran || !have_shape)
        return ef(c, "npy header lacks '%s'",
                  !have_descr ? "descr" : !have_fortran ? "fortran_order"
                                                        : "shape");
    npy_type t;
    if (npy_descr(descr, c, &t)) return -1;
    if (fortran) {
        /* Column-major equals row-major when at most one dim exceeds 1. */
        int big = 0;
        for (int i = 0; i < rank; i++) big += dims[i] > 1;
        if (big > 1)
            return ef(c, "fortran-order arrays are not supported; save with "
                         "np.ascontiguousarray");
    }

    size_t numel;
    char sb[128];
    if (shape_numel(rank, dims, &numel, NULL) != SHAPE_OK)
        return ef(c, "npy shape %s is too large (element count overflows)",
                  fmt_shape(sb, sizeof sb, rank, dims));
    size_t data_off = hstart + hlen, have = len - data_off;
    size_t need = numel * (size_t)t.size;
    if (have < need)
        return ef(c, "npy data is truncated: shape %s of '%s' needs %zu bytes, "
                     "the file has %zu", fmt_shape(sb, sizeof sb, rank, dims),
                  descr, need, have);
    if (have > need)
        return ef(c, "npy file has %zu unexpected bytes after the data "
                     "(shape %s of '%s' needs %zu)", have - need,
                  fmt_shape(sb, sizeof sb, rank, dims), descr, need);

    size_t obytes = dt_bytes(t.dtype, numel);
    uint8_t *dst = cr_malloc(obytes ? obytes : 1);
    if (!dst) return ef(c, "out of memory (%zu bytes)", obytes);
    const uint8_t *src = buf + data_off;
    if (t.from_f64) {
        for (size_t i = 0; i < numel; i++) {
            uint64_t u = ld64(src + 8 * i);
            if (t.swap) u = __builtin_bswap64(u);
            st32(dst + 4 * i, f32_bits(f32_from_double(f64_from_bits(u))));
        }
    } else if (t.is_bool) {
        for (size_t i = 0; i < numel; i++) dst[i] = src[i] != 0;
    } else if (t.swap) {
        size_t s = (size_t)t.size;
        for (size_t i = 0; i < numel; i++)
            for (size_t k = 0; k < s; k++) dst[i * s + k] = src[i * s + s - 1 - k];
    } else if (need) {
        memcpy(dst, src, need);
    }
    out->name = NULL;
    out->dtype = t.dtype;
    out->rank = rank;
    memcpy(out->dims, dims, sizeof dims);
    out->data = dst;
    out->bytes = obytes;
    return 0;
}

/* ---- protobuf wire format -----------------------------------------------*/

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* 0, -1 truncated, -2 longer than 10 bytes / more than 64 bits. */
static int pb_varint(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
    const uint8_t *p = *pp;
    uint64_t r = 0;
    for (int i = 0; i < 10; i++) {
        if (p >= end) return -1;
        uint8_t b = *p++;
        if (i == 9 && b > 1) return -2;
        r |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *pp = p;
            *v = r;
            return 0;
        }
    }
    return -2;
}

typedef struct pbfield {
    uint32_t num;
    int wt;
    uint64_t v;          /* WT_VARINT, WT_I64, WT_I32 */
    const uint8_t *data; /* WT_LEN */
    size_t len;
    size_t off;          /* byte offset of the key */
} pbfield;

static int pb_next(const uint8_t **pp, const uint8_t *base,
                   const uint8_t *end, pbfield *f, const ectx *c)
{
    const uint8_t *p = *pp;
    uint64_t key;
    f->off = (size_t)(p - base);
    int r = pb_varint(&p, end, &key);
    if (r)
        return ef(c, "TensorProto: %s field key at byte %zu",
                  r == -1 ? "truncated" : "malformed (over-long varint)",
                  f->off);
    if ((key >> 3) == 0 || (key >> 3) > 0x1fffffff)
        return ef(c, "TensorProto: invalid field number %llu at byte %zu "
                     "(this does not look like a protobuf message)",
                  (unsigned long long)(key >> 3), f->off);
    f->num = (uint32_t)(key >> 3);
    f->wt = (int)(key & 7);
    f->data = NULL;
    f->len = 0;
    f->v = 0;
    switch (f->wt) {
    case WT_VARINT:
        r = pb_varint(&p, end, &f->v);
        if (r)
            return ef(c, "TensorProto: field %u at byte %zu: %s varint", f->num,
                      f->off, r == -1 ? "truncated" : "malformed (over-long)");
        break;
    case WT_I64:
        if (end - p < 8)
            return ef(c, "TensorProto: field %u at byte %zu: 8-byte value runs "
                         "past the end of the data", f->num, f->off);
        f->v = ld64(p);
        p += 8;
        break;
    case WT_I32:
        if (end - p < 4)
            return ef(c, "TensorProto: field %u at byte %zu: 4-byte value runs "
                         "past the end of the data", f->num, f->off);
        f->v = ld32(p);
        p += 4;
        break;
    case WT_LEN: {
        uint64_t n;
        r = pb_varint(&p, end, &n);
        if (r)
            return ef(c, "TensorProto: field %u at byte %zu: %s length varint",
                      f->num, f->off,
                      r == -1 ? "truncated" : "malformed (over-long)");
        if (n > (uint64_t)(end - p))
            return ef(c, "TensorProto: field %u at byte %zu: length %llu runs "
                         "past the end of the data (%zu bytes left)", f->num,
                      f->off, (unsigned long long)n, (size_t)(end - p));
        f->data = p;
        f->len = (size_t)n;
        p += n;
        break;
    }
    case 3:
    case 4:
        return ef(c, "TensorProto: field %u at byte %zu uses the protobuf "
                     "group wire type %d, which is not supported", f->num,
                  f->off, f->wt);
    default:
        return ef(c, "TensorProto: field %u at byte %zu has invalid wire "
                     "type %d", f->num, f->off, f->wt);
    }
    *pp = p;
    return 0;
}

/* Counts the varints in a packed run; -1 if any is malformed. */
static int pb_count_varints(const uint8_t *p, const uint8_t *end, size_t *n)
{
    size_t k = 0;
    uint64_t v;
    while (p < end) {
        if (pb_varint(&p, end, &v)) return -1;
        k++;
    }
    *n = k;
    return 0;
}

/* ---- ONNX TensorProto ---------------------------------------------------*/

enum {
    F_DIMS = 1, F_DATA_TYPE = 2, F_SEGMENT = 3, F_FLOAT = 4, F_INT32 = 5,
    F_STRING = 6, F_INT64 = 7, F_NAME = 8, F_RAW = 9, F_DOUBLE = 10,
    F_UINT64 = 11, F_DOC = 12, F_EXTERNAL = 13, F_LOCATION = 14
};

enum {
    OX_UNDEFINED = 0, OX_FLOAT = 1, OX_UINT8 = 2, OX_INT8 = 3, OX_UINT16 = 4,
    OX_INT16 = 5, OX_INT32 = 6, OX_INT64 = 7, OX_STRING = 8, OX_BOOL = 9,
    OX_FLOAT16 = 10, OX_DOUBLE = 11
};

static const char *onnx_type_name(int64_t t)
{
    static const char *const names[] = {
        "UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32",
        "INT64", "STRING", "BOOL", "FLOAT16", "DOUBLE", "UINT32", "UINT64",
        "COMPLEX64", "COMPLEX128", "BFLOAT16", "FLOAT8E4M3FN",
        "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4", "INT4",
        "FLOAT4E2M1"};
    if (t >= 0 && t < (int64_t)(sizeof names / sizeof names[0]))
        return names[t];
    return "unknown";
}

/* ONNX type -> crucible dtype, the element size in raw_data, and the typed
 * field that carries it otherwise. 0 if unsupported. */
static int onnx_map(int64_t t, int32_t *dt, size_t *raw_size, int *field)
{
    switch (t) {
    case OX_FLOAT: *dt = CRUCIBLE_DT_F32; *raw_size = 4; *field = F_FLOAT; break;
    case OX_UINT8: *dt = CRUCIBLE_DT_U8; *raw_size = 1; *field = F_INT32; break;
    case OX_INT8: *dt = CRUCIBLE_DT_I8; *raw_size = 1; *field = F_INT32; break;
    case OX_INT16: *dt = CRUCIBLE_DT_I16; *raw_size = 2; *field = F_INT32; break;
    case OX_INT32: *dt = CRUCIBLE_DT_I32; *raw_size = 4; *field = F_INT32; break;
    case OX_INT64: *dt = CRUCIBLE_DT_I64; *raw_size = 8; *field = F_INT64; break;
    case OX_BOOL: *dt = CRUCIBLE_DT_BOOL; *raw_size = 1; *field = F_INT32; break;
    case OX_FLOAT16: *dt = CRUCIBLE_DT_F16; *raw_size = 2; *field = F_INT32; break;
    /* crucible has no f64: DOUBLE is converted to f32 on load. */
    case OX_DOUBLE: *dt = CRUCIBLE_DT_F32; *raw_size = 8; *field = F_DOUBLE; break;
    default: return 0;
    }
    return 1;
}

static int64_t onnx_from_dt(int32_t dt)
{
    switch (dt) {
    case CRUCIBLE_DT_F32: return OX_FLOAT;
    case CRUCIBLE_DT_U8: return OX_UINT8;
    case CRUCIBLE_DT_I8: return OX_INT8;
    case CRUCIBLE_DT_I16: return OX_INT16;
    case CRUCIBLE_DT_I32: return OX_INT32;
    case CRUCIBLE_DT_I64: return OX_INT64;
    case CRUCIBLE_DT_BOOL: return OX_BOOL;
    case CRUCIBLE_DT_F16: return OX_FLOAT16;
    default: return OX_UNDEFINED;
    }
}

static const char *field_name(int f)
{
    switch (f) {
    case F_FLOAT: return "float_data";
    case F_INT32: return "int32_data";
    case F_INT64: return "int64_data";
    case F_DOUBLE: return "double_data";
    case F_UINT64: return "uint64_data";
    default: return "?";
    }
}

typedef struct pbinfo {
    int32_t rank;
    int64_t dims[CRUCIBLE_MAX_RANK];
    int have_type;
    int64_t type;
    const uint8_t *name;
    size_t name_len;
    int have_name;
    const uint8_t *raw;
    size_t raw_len;
    int have_raw;
    size_t count[F_UINT64 + 1]; /* elements per typed field */
    int text_dims; /* a packed dims run that reads as printable text */
} pbinfo;

static int pb_wrong_wt(const ectx *c, const pbfield *f, const char *what)
{
    return ef(c, "TensorProto: field %u (%s) at byte %zu has wire type %d, "
                 "which is not valid for it", f->num, what, f->off, f->wt);
}

static int pb_add_dim(pbinfo *in, uint64_t v, const ectx *c)
{
    if (in->rank >= CRUCIBLE_MAX_RANK)
        return ef(c, "TensorProto has more than %d dims", CRUCIBLE_MAX_RANK);
    in->dims[in->rank++] = sext(v, 64);
    return 0;
}

/* Pass 1: validate the message structure and collect everything. */
static int pb_scan(const uint8_t *buf, size_t len, const ectx *c, pbinfo *in)
{
    const uint8_t *p = buf, *end = buf + len;
    memset(in, 0, sizeof *in);
    while (p < end) {
        pbfield f;
        if (pb_next(&p, buf, end, &f, c)) return -1;
        switch (f.num) {
        case F_DIMS:
            if (f.wt == WT_VARINT) {
                if (pb_add_dim(in, f.v, c)) return -1;
            } else if (f.wt == WT_LEN) {
                const uint8_t *q = f.data, *qe = f.data + f.len;
                /* SequenceProto and OptionalProto have their name in field
                 * 1, which then reads as packed dims: remember that, to
                 * say so if the message does not make sense as a tensor. */
                int text = f.len > 0;
                for (size_t i = 0; i < f.len; i++)
                    text &= f.data[i] >= 0x20 && f.data[i] < 0x7f;
                in->text_dims |= text;
                while (q < qe) {
                    uint64_t v;
                    if (pb_varint(&q, qe, &v))
                        return ef(c, "TensorProto: malformed packed dims at "
                                     "byte %zu", f.off);
                    if (pb_add_dim(in, v, c)) return -1;
                }
            } else
                return pb_wrong_wt(c, &f, "dims");
            break;
        case F_DATA_TYPE:
            if (f.wt != WT_VARINT) return pb_wrong_wt(c, &f, "data_type");
            in->type = sext(f.v, 32); /* an int32 enum */
            in->have_type = 1;
            break;
        case F_SEGMENT:
            return ef(c, "TensorProto.segment (field 3) is not supported "
                         "(or this is not a TensorProto: a SequenceProto or "
                         "OptionalProto cannot be loaded as one tensor)");
        case F_STRING:
            return ef(c, "string tensors (TensorProto.string_data) are not "
                         "supported");
        case F_EXTERNAL:
            return ef(c, "the tensor data is stored externally "
                         "(TensorProto.external_data); external data is not "
                         "supported");
        case F_LOCATION:
            if (f.wt != WT_VARINT) return pb_wrong_wt(c, &f, "data_location");
            if (f.v != 0)
                return ef(c, "the tensor data is stored externally "
                             "(data_location = %llu); external data is not "
                             "supported", (unsigned long long)f.v);
            break;
        case F_NAME:
            if (f.wt != WT_LEN) return pb_wrong_wt(c, &f, "name");
            in->name = f.data;
            in->name_len = f.len;
            in->have_name = 1;
            break;
        case F_RAW:
            if (f.wt != WT_LEN) return pb_wrong_wt(c, &f, "raw_data");
            in->raw = f.data;
            in->raw_len = f.len;
            in->have_raw = 1;
            break;
        case F_FLOAT:
        case F_DOUBLE: {
            size_t w = f.num == F_FLOAT ? 4 : 8;
            int single = f.num == F_FLOAT ? WT_I32 : WT_I64;
            if (f.wt == single) {
                in->count[f.num]++;
            } else if (f.wt == WT_LEN) {
                if (f.len % w)
                    return ef(c, "TensorProto: packed %s at byte %zu is %zu "
                                 "bytes, not a multiple of %zu",
                              field_name((int)f.num), f.off, f.len, w);
                in->count[f.num] += f.len / w;
            } else
                return pb_wrong_wt(c, &f, field_name((int)f.num));
            break;
        }
        case F_INT32:
        case F_INT64:
        case F_UINT64:
            if (f.wt == WT_VARINT) {
                in->count[f.num]++;
            } else if (f.wt == WT_LEN) {
                size_t n;
                if (pb_count_varints(f.data, f.data + f.len, &n))
                    return ef(c, "TensorProto: malformed packed %s at byte %zu",
                              field_name((int)f.num), f.off);
                in->count[f.num] += n;
            } else
                return pb_wrong_wt(c, &f, field_name((int)f.num));
            break;
        default: /* doc_string, metadata_props, unknown: skipped */
            break;
        }
    }
    return 0;
}

/* Stores element k of a typed field into dst. */
static int pb_store(const ectx *c, int field, int32_t dt, uint64_t v,
                    uint8_t *dst, size_t k)
{
    switch (field) {
    case F_FLOAT: st32(dst + 4 * k, (uint32_t)v); return 0;
    case F_DOUBLE:
        st32(dst + 4 * k, f32_bits(f32_from_double(f64_from_bits(v))));
        return 0;
    case F_INT64: st64(dst + 8 * k, v); return 0;
    case F_INT32: break;
    default: return ef(c, "internal error: unexpected field %d", field);
    }
    /* int32_data carries int32 and, widened, the narrower integer types,
     * bool, and float16 as its bit pattern (ONNX spec). */
    int64_t x = sext(v, 32);
    int64_t lo, hi;
    switch (dt) {
    case CRUCIBLE_DT_I32: st32(dst + 4 * k, (uint32_t)v); return 0;
    case CRUCIBLE_DT_BOOL: dst[k] = x != 0; return 0;
    case CRUCIBLE_DT_I8: lo = -128; hi = 127; break;
    case CRUCIBLE_DT_U8: lo = 0; hi = 255; break;
    case CRUCIBLE_DT_I16: lo = -32768; hi = 32767; break;
    case CRUCIBLE_DT_F16: lo = -32768; hi = 65535; break; /* bit pattern */
    default: return ef(c, "internal error: int32_data for %s", dt_name(dt));
    }
    if (x < lo || x > hi)
        return ef(c, "TensorProto: int32_data[%zu] = %lld is out of range for "
                     "%s", k, (long long)x, dt_name(dt));
    if (dt == CRUCIBLE_DT_I16 || dt == CRUCIBLE_DT_F16)
        st16(dst + 2 * k, (uint16_t)(v & 0xffff));
    else
        dst[k] = (uint8_t)(v & 0xff);
    return 0;
}

/* Pass 2: walk the (validated) message again and decode one typed field. */
static int pb_fill(const uint8_t *buf, size_t len, const ectx *c, int field,
                   int32_t dt, uint8_t *dst, size_t numel)
{
    const uint8_t *p = buf, *end = buf + len;
    size_t k = 0;
    while (p < end) {
        pbfield f;
        if (pb_next(&p, buf, end, &f, c)) return -1;
        if ((int)f.num != field) continue;
        if (f.wt != WT_LEN) {
            if (k >= numel) return ef(c, "internal error: element count");
            if (pb_store(c, field, dt, f.v, dst, k++)) return -1;
            continue;
        }
        const uint8_t *q = f.data, *qe = f.data + f.len;
        while (q < qe) {
            uint64_t v;
            if (field == F_FLOAT) {
                v = ld32(q);
                q += 4;
            } else if (field == F_DOUBLE) {
                v = ld64(q);
                q += 8;
            } else if (pb_varint(&q, qe, &v)) {
                return ef(c, "internal error: packed varint");
            }
            if (k >= numel) return ef(c, "internal error: element count");
            if (pb_store(c, field, dt, v, dst, k++)) return -1;
        }
    }
    return k == numel ? 0 : ef(c, "internal error: element count");
}

static int pb_decode(const uint8_t *buf, size_t len, const ectx *c,
                     cr_array *out, pbinfo *info)
{
    pbinfo in;
    int rs = pb_scan(buf, len, c, &in);
    *info = in;
    if (rs) return -1;

    if (!in.have_type || in.type == OX_UNDEFINED)
        return ef(c, "TensorProto has no data_type (UNDEFINED)%s",
                  len ? "" : "; the file is empty");
    if (in.type == OX_STRING)
        return ef(c, "string tensors (data_type STRING) are not supported");
    int32_t dt;
    size_t raw_size;
    int field;
    if (!onnx_map(in.type, &dt, &raw_size, &field))
        return ef(c, "ONNX data type %s (%lld) is not supported (supported: "
                     "FLOAT, DOUBLE, FLOAT16, INT8, UINT8, INT16, INT32, INT64, "
                     "BOOL)", onnx_type_name(in.type), (long long)in.type);

    char sb[128];
    size_t numel;
    int bad = 0;
    int r = shape_numel(in.rank, in.dims, &numel, &bad);
    if (r == SHAPE_NEGATIVE)
        return ef(c, "TensorProto dims[%d] is %lld; dims must be >= 0", bad,
                  (long long)in.dims[bad]);
    if (r == SHAPE_OVERFLOW)
        return ef(c, "TensorProto dims %s are too large (element count "
                     "overflows)", fmt_shape(sb, sizeof sb, in.rank, in.dims));

    for (int f = F_FLOAT; f <= F_UINT64; f++) {
        if (f == F_STRING || f == F_NAME || f == F_RAW || !in.count[f] ||
            f == field)
            continue;
        return ef(c, "TensorProto: %s is set, which is not valid for a %s "
                     "tensor", field_name(f), onnx_type_name(in.type));
    }
    size_t typed = in.count[field];
    int use_raw = in.have_raw && (in.raw_len > 0 || typed == 0);
    if (use_raw && typed)
        return ef(c, "TensorProto has both raw_data and %s",
                  field_name(field));
    if (use_raw) {
        if (in.raw_len != numel * raw_size)
            return ef(c, "TensorProto raw_data holds %zu bytes, but dims %s of "
                         "%s need %zu", in.raw_len,
                      fmt_shape(sb, sizeof sb, in.rank, in.dims),
                      onnx_type_name(in.type), numel * raw_size);
    } else if (typed != numel) {
        if (!typed)
            return ef(c, "TensorProto has no data (no raw_data or %s), but "
                         "dims %s need %zu elements", field_name(field),
                      fmt_shape(sb, sizeof sb, in.rank, in.dims), numel);
        return ef(c, "TensorProto %s has %zu elements, but dims %s need %zu",
                  field_name(field), typed,
                  fmt_shape(sb, sizeof sb, in.rank, in.dims), numel);
    }

    size_t obytes = dt_bytes(dt, numel);
    uint8_t *dst = cr_malloc(obytes ? obytes : 1);
    if (!dst) return ef(c, "out of memory (%zu bytes)", obytes);
    if (use_raw) {
        if (in.type == OX_DOUBLE) {
            for (size_t i = 0; i < numel; i++)
                st32(dst + 4 * i,
                     f32_bits(f32_from_double(f64_from_bits(ld64(in.raw + 8 * i)))));
        } else if (in.type == OX_BOOL) {
            for (size_t i = 0; i < numel; i++) dst[i] = in.raw[i] != 0;
        } else if (obytes) {
            memcpy(dst, in.raw, obytes);
        }
    } else if (pb_fill(buf, len, c, field, dt, dst, numel)) {
        cr_free(dst);
        return -1;
    }
    if (in.have_name) {
        out->name = cr_strndup((const char *)in.name, in.name_len);
        if (!out->name) {
            cr_free(dst);
            return ef(c, "out of memory");
        }
    }
    out->dtype = dt;
    out->rank = in.rank;
    memcpy(out->dims, in.dims, sizeof in.dims);
    out->data = dst;
    out->bytes = obytes;
    return 0;
}

static int pb_load(const uint8_t *buf, size_t len, const ectx *c,
                   cr_array *out)
{
    pbinfo in;
    if (!pb_decode(buf, len, c, out, &in)) return 0;
    if (in.text_dims && c->err && c->errlen &&
        !strstr(c->err, "SequenceProto")) {
        size_t n = strlen(c->err);
        snprintf(c->err + n, c->errlen - n,
                 " (field 1 reads as text: is this a SequenceProto or "
                 "OptionalProto rather than a TensorProto?)");
    }
    return -1;
}

/* ---- loading ------------------------------------------------------------*/

/* Does path end in "." ext (ASCII, case-insensitive)? */
static int has_ext(const char *path, const char *ext)
{
    if (!path) return 0;
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (!dot || (slash && slash > dot)) return 0;
    const char *a = dot + 1;
    for (; *a && *ext; a++, ext++) {
        int x = *a >= 'A' && *a <= 'Z' ? *a - 'A' + 'a' : *a;
        if (x != *ext) return 0;
    }
    return !*a && !*ext;
}

int tio_load_mem(const uint8_t *buf, size_t len, const char *what,
                 cr_array *out, char *err, size_t errlen)
{
    static const uint8_t empty[1];
    ectx c = {what ? what : "tensor", err, errlen};
    if (!out) return ef(&c, "no output array given");
    memset(out, 0, sizeof *out);
    if (!buf) {
        if (len) return ef(&c, "NULL buffer");
        buf = empty;
    }
    int npy = len >= 6 && !memcmp(buf, NPY_MAGIC, 6);
    if (!npy && has_ext(what, "npy")) npy = 1; /* reports the bad magic */
    int r = npy ? npy_load(buf, len, &c, out) : pb_load(buf, len, &c, out);
    if (r) tio_free(out);
    return r;
}

int tio_load(const char *path, cr_array *out, char *err, size_t errlen)
{
    ectx c = {path, err, errlen};
    if (!out) return ef(&c, "no output array given");
    memset(out, 0, sizeof *out);
    if (!path) return ef(&c, "no path given");
    size_t len = 0;
    uint8_t *buf = cr_read_file(path, &len, 0, err, errlen);
    if (!buf) return -1;
    int r = tio_load_mem(buf, len, path, out, err, errlen);
    cr_free(buf);
    return r;
}

/* ---- saving -------------------------------------------------------------*/

/* Checks that a is a well-formed array of a type this file handles. */
static int check_array(const cr_array *a, const ectx *c, size_t *numel)
{
    char sb[128];
    if (!a) return ef(c, "no array given");
    if (a->rank < 0 || a->rank > CRUCIBLE_MAX_RANK)
        return ef(c, "array rank %d is out of range 0..%d", (int)a->rank,
                  CRUCIBLE_MAX_RANK);
    int bad = 0;
    int r = shape_numel(a->rank, a->dims, numel, &bad);
    if (r == SHAPE_NEGATIVE)
        return ef(c, "array dims[%d] is %lld; dims must be >= 0", bad,
                  (long long)a->dims[bad]);
    if (r == SHAPE_OVERFLOW)
        return ef(c, "array shape %s is too large",
                  fmt_shape(sb, sizeof sb, a->rank, a->dims));
    if (!dt_bits(a->dtype))
        return ef(c, "array has an invalid dtype (%d)", (int)a->dtype);
    size_t need = dt_bytes(a->dtype, *numel);
    if (a->bytes != need)
        return ef(c, "array holds %zu bytes, but shape %s of %s needs %zu",
                  a->bytes, fmt_shape(sb, sizeof sb, a->rank, a->dims),
                  dt_name(a->dtype), need);
    if (need && !a->data) return ef(c, "array data is NULL");
    return 0;
}

static const char *npy_descr_for(int32_t dt)
{
    switch (dt) {
    case CRUCIBLE_DT_F32: return "<f4";
    case CRUCIBLE_DT_F16: return "<f2";
    case CRUCIBLE_DT_I32: return "<i4";
    case CRUCIBLE_DT_I16: return "<i2";
    case CRUCIBLE_DT_I64: return "<i8";
    case CRUCIBLE_DT_I8: return "|i1";
    case CRUCIBLE_DT_U8: return "|u1";
    case CRUCIBLE_DT_BOOL: return "|b1";
    default: return NULL;
    }
}

static int npy_encode(const cr_array *a, const ectx *c, jbuf *o)
{
    const char *descr = npy_descr_for(a->dtype);
    if (!descr)
        return ef(c, "%s arrays cannot be stored in .npy", dt_name(a->dtype));
    jbuf h;
    jb_init(&h);
    jb_printf(&h, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < a->rank; i++)
        jb_printf(&h, "%s%lld", i ? ", " : "", (long long)a->dims[i]);
    jb_puts(&h, a->rank == 1 ? ",), }" : "), }");
    /* Pad with spaces and end with '\n' so data starts 64-byte aligned. */
    size_t total = 10 + h.len + 1;
    size_t pad = (64 - total % 64) % 64;
    for (size_t i = 0; i < pad; i++) jb_putc(&h, ' ');
    jb_putc(&h, '\n');
    if (h.err || h.len > 0xffff) {
        jb_free(&h);
        return ef(c, "out of memory");
    }
    uint8_t pre[10];
    memcpy(pre, NPY_MAGIC, 6);
    pre[6] = 1;
    pre[7] = 0;
    st16(pre + 8, (uint16_t)h.len);
    jb_putn(o, (const char *)pre, sizeof pre);
    jb_putn(o, h.s, h.len);
    jb_free(&h);
    if (a->bytes) jb_putn(o, (const char *)a->data, a->bytes);
    return 0;
}

static void pb_put_varint(jbuf *o, uint64_t v)
{
    char b[10];
    size_t n = 0;
    do {
        uint8_t x = v & 0x7f;
        v >>= 7;
        b[n++] = (char)(v ? x | 0x80 : x);
    } while (v);
    jb_putn(o, b, n);
}

static int pb_encode(const cr_array *a, const ectx *c, jbuf *o)
{
    int64_t t = onnx_from_dt(a->dtype);
    if (t == OX_UNDEFINED)
        return ef(c, "%s arrays cannot be stored as an ONNX TensorProto",
                  dt_name(a->dtype));
    /* Fields in number order, dims unpacked: as onnx itself writes. */
    for (int i = 0; i < a->rank; i++) {
        pb_put_varint(o, F_DIMS << 3 | WT_VARINT);
        pb_put_varint(o, (uint64_t)a->dims[i]);
    }
    pb_put_varint(o, F_DATA_TYPE << 3 | WT_VARINT);
    pb_put_varint(o, (uint64_t)t);
    if (a->name) {
        size_t n = strlen(a->name);
        pb_put_varint(o, F_NAME << 3 | WT_LEN);
        pb_put_varint(o, n);
        jb_putn(o, a->name, n);
    }
    pb_put_varint(o, F_RAW << 3 | WT_LEN);
    pb_put_varint(o, a->bytes);
    if (a->bytes) jb_putn(o, (const char *)a->data, a->bytes);
    return 0;
}

int tio_save(const char *path, const cr_array *a, char *err, size_t errlen)
{
    ectx c = {path, err, errlen};
    size_t numel;
    if (!path) return ef(&c, "no path given");
    if (check_array(a, &c, &numel)) return -1;
    int npy = has_ext(path, "npy");
    if (!npy && !has_ext(path, "pb"))
        return ef(&c, "cannot tell the tensor format from the file name; use "
                      ".npy or .pb");
    jbuf o;
    jb_init(&o);
    if (npy ? npy_encode(a, &c, &o) : pb_encode(a, &c, &o)) {
        jb_free(&o);
        return -1;
    }
    if (o.err) {
        jb_free(&o);
        return ef(&c, "out of memory");
    }
    int r = cr_write_file_atomic(path, o.s ? o.s : "", o.len, err, errlen);
    jb_free(&o);
    return r;
}

/* ---- conversion ---------------------------------------------------------*/

static double get_f(const uint8_t *p, int32_t dt, size_t i)
{
    return dt == CRUCIBLE_DT_F32 ? (double)f32_from_bits(ld32(p + 4 * i))
                                 : (double)half_to_float(ld16(p + 2 * i));
}

static int64_t get_i(const uint8_t *p, int32_t dt, size_t i)
{
    switch (dt) {
    case CRUCIBLE_DT_I32: return sext(ld32(p + 4 * i), 32);
    case CRUCIBLE_DT_I16: return sext(ld16(p + 2 * i), 16);
    case CRUCIBLE_DT_I8: return sext(p[i], 8);
    case CRUCIBLE_DT_I64: return sext(ld64(p + 8 * i), 64);
    case CRUCIBLE_DT_U8: return p[i];
    default: return p[i] != 0; /* BOOL */
    }
}

static void int_range(int32_t dt, int64_t *lo, int64_t *hi)
{
    switch (dt) {
    case CRUCIBLE_DT_I32: *lo = INT32_MIN; *hi = INT32_MAX; break;
    case CRUCIBLE_DT_I16: *lo = INT16_MIN; *hi = INT16_MAX; break;
    case CRUCIBLE_DT_I8: *lo = INT8_MIN; *hi = INT8_MAX; break;
    case CRUCIBLE_DT_U8: *lo = 0; *hi = UINT8_MAX; break;
    default: *lo = INT64_MIN; *hi = INT64_MAX; break;
    }
}

static void put_i(uint8_t *p, int32_t dt, size_t i, int64_t v)
{
    uint64_t u = (uint64_t)v;
    switch (dt) {
    case CRUCIBLE_DT_I32: st32(p + 4 * i, (uint32_t)u); break;
    case CRUCIBLE_DT_I16: st16(p + 2 * i, (uint16_t)u); break;
    case CRUCIBLE_DT_I64: st64(p + 8 * i, u); break;
    default: p[i] = (uint8_t)u; break; /* I8, U8 */
    }
}

int tio_convert(const cr_array *in, int32_t dtype, cr_array *out, char *err,
                size_t errlen)
{
    ectx c = {in && in->name ? in->name : "tensor", err, errlen};
    size_t numel;
    if (!out) return ef(&c, "no output array given");
    memset(out, 0, sizeof *out);
    if (check_array(in, &c, &numel)) return -1;
    if (!dt_plain(in->dtype) || !dt_plain(dtype))
        return ef(&c, "cannot convert %s to %s (supported: f32 f16 i32 i16 "
                      "i8 u8 i64 bool)", dt_name(in->dtype), dt_name(dtype));
    size_t obytes = dt_bytes(dtype, numel);
    uint8_t *dst = cr_malloc(obytes ? obytes : 1);
    if (!dst) return ef(&c, "out of memory (%zu bytes)", obytes);
    const uint8_t *src = in->data;
    if (dtype == in->dtype) {
        if (obytes) memcpy(dst, src, obytes);
    } else {
        int ff = dt_is_float(in->dtype);
        int64_t lo, hi;
        int_range(dtype, &lo, &hi);
        for (size_t i = 0; i < numel; i++) {
            double d = ff ? get_f(src, in->dtype, i) : 0;
            int64_t v = ff ? 0 : get_i(src, in->dtype, i);
            switch (dtype) {
            case CRUCIBLE_DT_F32:
                st32(dst + 4 * i, f32_bits(ff ? (float)d : (float)v));
                continue;
            case CRUCIBLE_DT_F16:
                st16(dst + 2 * i, half_from_double(ff ? d : (double)v));
                continue;
            case CRUCIBLE_DT_BOOL:
                dst[i] = ff ? d != 0 : v != 0;
                continue;
            default: break;
            }
            if (ff) {
                double t = trunc(d);
                /* 2^63 is exact; the int64 range is [-2^63, 2^63). */
                if (isnan(d) || t < (double)lo || t >= 0x1p63 ||
                    t > (double)hi) {
                    cr_free(dst);
                    return ef(&c, "element %zu (%g) does not fit in %s", i, d,
                              dt_name(dtype));
                }
                v = (int64_t)t;
            } else if (v < lo || v > hi) {
                cr_free(dst);
                return ef(&c, "element %zu (%lld) does not fit in %s", i,
                          (long long)v, dt_name(dtype));
            }
            put_i(dst, dtype, i, v);
        }
    }
    if (in->name && !(out->name = cr_strdup(in->name))) {
        cr_free(dst);
        return ef(&c, "out of memory");
    }
    out->dtype = dtype;
    out->rank = in->rank;
    memcpy(out->dims, in->dims, sizeof in->dims);
    out->data = dst;
    out->bytes = obytes;
    return 0;
}
