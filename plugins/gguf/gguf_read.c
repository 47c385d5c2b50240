/*
 * gguf_read.c - the GGUF reader (see gguf_read.h for the layout and the
 * rules). The file is parsed twice with the same code: the first pass only
 * validates (and allocates nothing), the second fills the tables sized by
 * what the first pass proved is really there.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "gguf_read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct gguf_file {
    const uint8_t *base;
    uint64_t size;
    int mapped;
    gguf_realloc_fn alloc;
    void *alloc_ud;

    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;

    size_t n_kv, n_tensors;
    gguf_kv *kv;
    gguf_tensor *tensors;
    char *pool; /* keys and tensor names, NUL-terminated */
    size_t pool_size, pool_used;
    size_t *kv_hash, *t_hash; /* open addressing: slot -> index + 1 */
    size_t kv_hash_cap, t_hash_cap;
};

/* ---- allocation -------------------------------------------------------------*/
static void *libc_realloc(void *ud, void *ptr, size_t old, size_t n)
{
    (void)ud;
    (void)old;
    if (!n) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, n);
}

static void *f_alloc(gguf_file *f, size_t n)
{
    void *p = f->alloc(f->alloc_ud, NULL, 0, n ? n : 1);
    if (p) memset(p, 0, n ? n : 1);
    return p;
}

static void f_free(gguf_file *f, void *p, size_t n)
{
    if (p) f->alloc(f->alloc_ud, p, n ? n : 1, 0);
}

/* ---- little-endian loads ----------------------------------------------------*/
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

/* ---- value types ------------------------------------------------------------*/
static const char *const vtype_names[GGUF_T_COUNT_] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
    "string", "array", "u64", "i64", "f64"};

const char *gguf_vtype_name(uint32_t t)
{
    return t < GGUF_T_COUNT_ ? vtype_names[t] : "?";
}

/* Bytes of a fixed-size value type, 0 for string / array / unknown. */
static uint32_t vtype_size(uint32_t t)
{
    switch (t) {
    case GGUF_T_U8: case GGUF_T_I8: case GGUF_T_BOOL: return 1;
    case GGUF_T_U16: case GGUF_T_I16: return 2;
    case GGUF_T_U32: case GGUF_T_I32: case GGUF_T_F32: return 4;
    case GGUF_T_U64: case GGUF_T_I64: case GGUF_T_F64: return 8;
    default: return 0;
    }
}

/* ---- the cursor ---------------------------------------------------------------*/
typedef struct cursor {
    const uint8_t *b;
    uint64_t size, pos;
    char *err;
    size_t errlen;
} cursor;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int fail(cursor *c, int rc, const char *fmt, ...)
{
    if (c->err && c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static uint64_t left(const cursor *c) { return c->size - c->pos; }

/* Reads a u32 / u64 field named `what` (for the message). */
static int get32(cursor *c, uint32_t *v, const char *ctx, const char *what)
{
    if (left(c) < 4)
        return fail(c, CRUCIBLE_E_FORMAT,
                    "%s: the file ends inside %s (offset %llu of %llu): "
                    "truncated",
                    ctx, what, (unsigned long long)c->pos,
                    (unsigned long long)c->size);
    *v = ld32(c->b + c->pos);
    c->pos += 4;
    return 0;
}

static int get64(cursor *c, uint64_t *v, const char *ctx, const char *what)
{
    if (left(c) < 8)
        return fail(c, CRUCIBLE_E_FORMAT,
                    "%s: the file ends inside %s (offset %llu of %llu): "
                    "truncated",
                    ctx, what, (unsigned long long)c->pos,
                    (unsigned long long)c->size);
    *v = ld64(c->b + c->pos);
    c->pos += 8;
    return 0;
}

/* Validates one value of type t at the cursor and steps over it. Fills v
 * when non-NULL. ctx names the key for messages. */
static int read_value(cursor *c, uint32_t t, int depth, gguf_value *v,
                      const char *ctx)
{
    uint64_t at = c->pos;
    uint32_t sz = vtype_size(t);
    if (v) memset(v, 0, sizeof *v);
    if (sz) {
        if (left(c) < sz)
            return fail(c, CRUCIBLE_E_FORMAT,
                        "%s: the file ends inside a %s value (offset %llu "
                        "of %llu): truncated",
                        ctx, vtype_names[t], (unsigned long long)at,
                        (unsigned long long)c->size);
        if (t == GGUF_T_BOOL && c->b[c->pos] > 1)
            return fail(c, CRUCIBLE_E_FORMAT,
                        "%s: bool value %u at offset %llu (must be 0 or 1)",
                        ctx, c->b[c->pos], (unsigned long long)at);
        if (v) {
            v->type = t;
            v->p = c->b + c->pos;
            v->nbytes = sz;
        }
        c->pos += sz;
        return 0;
    }
    if (t == GGUF_T_STRING) {
        uint64_t len;
        int rc = get64(c, &len, ctx, "a string length");
        if (rc) return rc;
        if (len > left(c))
            return fail(c, CRUCIBLE_E_FORMAT,
                        "%s: string of %llu bytes at offset %llu runs past "
                        "the end of the file (%llu bytes left)",
                        ctx, (unsigned long long)len, (unsigned long long)at,
                        (unsigned long long)left(c));
        if (v) {
            v->type = t;
            v->n = len;
            v->p = c->b + c->pos;
            v->nbytes = len;
        }
        c->pos += len;
        return 0;
    }
    if (t != GGUF_T_ARRAY)
        return fail(c, CRUCIBLE_E_FORMAT,
                    "%s: unknown metadata value type %u at offset %llu", ctx,
                    t, (unsigned long long)at);
    if (depth >= GGUF_MAX_DEPTH)
        return fail(c, CRUCIBLE_E_LIMIT,
                    "%s: arrays nested more than %d deep (offset %llu); "
                    "refused",
                    ctx, GGUF_MAX_DEPTH, (unsigned long long)at);
    uint32_t et;
    uint64_t count;
    int rc;
    if ((rc = get32(c, &et, ctx, "an array element type")) ||
        (rc = get64(c, &count, ctx, "an array length")))
        return rc;
    if (et >= GGUF_T_COUNT_)
        return fail(c, CRUCIBLE_E_FORMAT,
                    "%s: array at offset %llu has unknown element type %u",
                    ctx, (unsigned long long)at, et);
    uint32_t esz = vtype_size(et);
    /* the smallest encoding of one element: its bytes, a string's length,
     * an array's type and length */
    uint64_t min = esz ? esz : et == GGUF_T_STRING ? 8 : 12;
    if (count > left(c) / min)
        return fail(c, CRUCIBLE_E_FORMAT,
                    "%s: array of %llu %s elements at offset %llu needs at "
                    "least %llu bytes; the file has %llu left",
                    ctx, (unsigned long long)count, vtype_names[et],
                    (unsigned long long)at,
                    (unsigned long long)(count > UINT64_MAX / min
                                             ? UINT64_MAX
                                             : count * min),
                    (unsigned long long)left(c));
    uint64_t start = c->pos;
    if (esz) {
        if (et == GGUF_T_BOOL)
            for (uint64_t i = 0; i < count; i++)
                if (c->b[c->pos + i] > 1)
                    return fail(c, CRUCIBLE_E_FORMAT,
                                "%s: bool array element %llu is %u (must be "
                                "0 or 1)",
                                ctx, (unsigned long long)i,
                                c->b[c->pos + i]);
        c->pos += count * esz;
    } else {
        for (uint64_t i = 0; i < count; i++)
            if ((rc = read_value(c, et, depth + 1, NULL, ctx))) return rc;
    }
    if (v) {
        v->type = t;
        v->elem_type = et;
        v->n = count;
        v->p = c->b + start;
        v->nbytes = c->pos - start;
    }
    return 0;
}

/* ---- hashing ----------------------------------------------------------------*/
static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static size_t hash_cap_for(size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n + 1) cap <<= 1;
    return cap;
}

/* ---- parsing ----------------------------------------------------------------*/
static void fmt_name(char *dst, size_t n, const uint8_t *s, uint64_t len)
{
    /* printable rendering for messages: up to 64 bytes, others as '?' */
    size_t k = 0;
    for (uint64_t i = 0; i < len && k + 4 < n && i < 64; i++)
        dst[k++] = (s[i] >= 0x20 && s[i] < 0x7f) ? (char)s[i] : '?';
    if (len > 64 && k + 4 < n) {
        memcpy(dst + k, "...", 3);
        k += 3;
    }
    dst[k] = 0;
}

static char *pool_put(gguf_file *f, const uint8_t *s, uint64_t len)
{
    char *d = f->pool + f->pool_used;
    memcpy(d, s, (size_t)len);
    d[len] = 0;
    f->pool_used += (size_t)len + 1;
    return d;
}

/* One pass over the metadata and the tensor infos. fill == 0: validate
 * only, and count the pool; fill == 1: the tables exist, fill them. */
static int parse(gguf_file *f, int fill, char *err, size_t errlen)
{
    cursor cc = {f->base, f->size, 24, err, errlen}, *c = &cc;
    char ctx[160];
    int rc;
    size_t pool = 0;
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < f->n_kv; i++) {
        uint64_t at = c->pos, klen;
        snprintf(ctx, sizeof ctx, "metadata pair %zu", i);
        if ((rc = get64(c, &klen, ctx, "the key length"))) return rc;
        if (klen == 0)
            return fail(c, CRUCIBLE_E_FORMAT,
                        "metadata pair %zu at offset %llu has an empty key",
                        i, (unsigned long long)at);
        if (klen > GGUF_MAX_KEY)
            return fail(c, CRUCIBLE_E_FORMAT,
                        "metadata pair %zu at offset %llu: key of %llu bytes "
                        "(at most %d)",
                        i, (unsigned long long)at, (unsigned long long)klen,
                        GGUF_MAX_KEY);
        if (klen > left(c))
            return fail(c, CRUCIBLE_E_FORMAT,
                        "metadata pair %zu at offset %llu: key of %llu bytes "
                        "runs past the end of the file (%llu bytes left)",
                        i, (unsigned long long)at, (unsigned long long)klen,
                        (unsigned long long)left(c));
        const uint8_t *key = c->b + c->pos;
        for (uint64_t k = 0; k < klen; k++)
            if (key[k] < 0x20 || key[k] > 0x7e)
                return fail(c, CRUCIBLE_E_FORMAT,
                            "metadata pair %zu at offset %llu: key byte %llu "
                            "is 0x%02x (keys are printable ASCII)",
                            i, (unsigned long long)at, (unsigned long long)k,
                            key[k]);
        c->pos += klen;
        pool += (size_t)klen + 1;
        snprintf(ctx, sizeof ctx, "key %.*s", klen > 100 ? 100 : (int)klen,
                 (const char *)key);
        uint32_t type;
        if ((rc = get32(c, &type, ctx, "the value type"))) return rc;
        if (type >= GGUF_T_COUNT_)
            return fail(c, CRUCIBLE_E_FORMAT,
                        "%s: unknown metadata value type %u", ctx, type);
        gguf_value v;
        if ((rc = read_value(c, type, 0, &v, ctx))) return rc;
        if (klen == 17 && !memcmp(key, "general.alignment", 17)) {
            uint64_t a;
            if (gguf_value_u64(&v, &a))
                return fail(c, CRUCIBLE_E_FORMAT,
                            "general.alignment has type %s; expected an "
                            "unsigned integer (u32)",
                            gguf_vtype_name(type));
            if (a == 0 || (a & (a - 1)) || a > GGUF_MAX_ALIGNMENT)
                return fail(c, CRUCIBLE_E_FORMAT,
                            "general.alignment is %llu; it must be a power "
                            "of two (at most %u)",
                            (unsigned long long)a, GGUF_MAX_ALIGNMENT);
            f->alignment = (uint32_t)a;
        }
        if (fill) {
            gguf_kv *kv = &f->kv[i];
            kv->key = pool_put(f, key, klen);
            kv->key_len = (size_t)klen;
            kv->v = v;
            kv->offset = at;
        }
    }
    for (size_t i = 0; i < f->n_tensors; i++) {
        uint64_t at = c->pos, nlen;
        snprintf(ctx, sizeof ctx, "tensor info %zu", i);
        if ((rc = get64(c, &nlen, ctx, "the name length"))) return rc;
        if (nlen == 0 || nlen > GGUF_MAX_NAME)
            return fail(c, CRUCIBLE_E_FORMAT,
                        "tensor info %zu at offset %llu: name of %llu bytes "
                        "(names have 1 to %d)",
                        i, (unsigned long long)at, (unsigned long long)nlen,
                        GGUF_MAX_NAME);
        if (nlen > left(c))
            return fail(c, CRUCIBLE_E_FORMAT,
                        "tensor info %zu at offset %llu: the name runs past "
                        "the end of the file: truncated",
                        i, (unsigned long long)at);
        const uint8_t *name = c->b + c->pos;
        if (memchr(name, 0, (size_t)nlen))
            return fail(c, CRUCIBLE_E_FORMAT,
                        "tensor info %zu at offset %llu: the name contains a "
                        "NUL byte",
                        i, (unsigned long long)at);
        c->pos += nlen;
        pool += (size_t)nlen + 1;
        char nm[96];
        fmt_name(nm, sizeof nm, name, nlen);
        snprintf(ctx, sizeof ctx, "tensor %s", nm);
        uint32_t nd;
        if ((rc = get32(c, &nd, ctx, "the dimension count"))) return rc;
        if (nd > GGUF_MAX_DIMS)
            return fail(c, CRUCIBLE_E_FORMAT,
                        "tensor %s: %u dimensions (at most %d, "
                        "GGML_MAX_DIMS)",
                        nm, nd, GGUF_MAX_DIMS);
        uint64_t ne[GGUF_MAX_DIMS] = {1, 1, 1, 1}, n = 1;
        for (uint32_t d = 0; d < nd; d++) {
            if ((rc = get64(c, &ne[d], ctx, "a dimension"))) return rc;
            if (ne[d] > (uint64_t)INT64_MAX)
                return fail(c, CRUCIBLE_E_FORMAT,
                            "tensor %s: dimension %u is %llu (more than "
                            "2^63-1)",
                            nm, d, (unsigned long long)ne[d]);
            if (ne[d] && n > (uint64_t)INT64_MAX / ne[d])
                return fail(c, CRUCIBLE_E_FORMAT,
                            "tensor %s: the element count (product of the "
                            "dimensions) overflows",
                            nm);
            n *= ne[d];
        }
        uint32_t type;
        uint64_t off;
        if ((rc = get32(c, &type, ctx, "the type"))) return rc;
        const gguf_type_info *ti = gguf_type(type);
        if (!ti)
            return fail(c, CRUCIBLE_E_FORMAT,
                        "tensor %s: unknown ggml type %u", nm, type);
        if ((rc = get64(c, &off, ctx, "the data offset"))) return rc;
        if (ne[0] % ti->block)
            return fail(c, CRUCIBLE_E_FORMAT,
                        "tensor %s: rows of %llu elements are not a multiple "
                        "of the %s block size (%u)",
                        nm, (unsigned long long)ne[0], ti->name, ti->block);
        uint64_t blocks = n / ti->block;
        if (blocks > UINT64_MAX / ti->bytes)
            return fail(c, CRUCIBLE_E_FORMAT,
                        "tensor %s: the data size overflows", nm);
        if (off % f->alignment)
            return fail(c, CRUCIBLE_E_FORMAT,
                        "tensor %s: data offset %llu is not a multiple of "
                        "the alignment (%u)",
                        nm, (unsigned long long)off, f->alignment);
        if (fill) {
            gguf_tensor *t = &f->tensors[i];
            t->name = pool_put(f, name, nlen);
            t->n_dims = nd;
            memcpy(t->ne, ne, sizeof ne);
            t->type = type;
            t->offset = off;
            t->n_elems = n;
            t->n_bytes = blocks * ti->bytes;
        }
    }
    /* the data section */
    uint64_t end = c->pos, a = f->alignment;
    uint64_t data = end + (a - end % a) % a;
    if (data < end) data = UINT64_MAX; /* overflow: cannot happen in practice */
    f->data_offset = data;
    if (!fill) {
        f->pool_size = pool;
        return 0;
    }
    for (size_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        uint64_t avail = data <= f->size ? f->size - data : 0;
        char nm[96];
        fmt_name(nm, sizeof nm, (const uint8_t *)t->name, strlen(t->name));
        if (data > f->size && t->n_bytes)
            return fail(c, CRUCIBLE_E_FORMAT,
                        "tensor %s: the data section would start at offset "
                        "%llu, past the end of the file (%llu bytes): "
                        "truncated",
                        nm, (unsigned long long)data,
                        (unsigned long long)f->size);
        if (t->offset > avail || t->n_bytes > avail - t->offset)
            return fail(c, CRUCIBLE_E_FORMAT,
                        "tensor %s: data [%llu, +%llu bytes) lies outside "
                        "the %llu-byte data section (file truncated?)",
                        nm, (unsigned long long)t->offset,
                        (unsigned long long)t->n_bytes,
                        (unsigned long long)avail);
        t->data = t->n_bytes ? f->base + data + t->offset : NULL;
    }
    return 0;
}

/* Builds an index over names; reports the first duplicate. */
static int build_index(gguf_file *f, size_t **slots, size_t *cap, size_t n,
                       int tensors, char *err, size_t errlen)
{
    *cap = hash_cap_for(n);
    *slots = f_alloc(f, *cap * sizeof(size_t));
    if (!*slots) {
        snprintf(err, errlen, "out of memory");
        return CRUCIBLE_E_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = tensors ? f->tensors[i].name : f->kv[i].key;
        size_t len = strlen(s);
        size_t h = (size_t)hash_bytes(s, len) & (*cap - 1);
        for (;;) {
            size_t e = (*slots)[h];
            if (!e) {
                (*slots)[h] = i + 1;
                break;
            }
            const char *o = tensors ? f->tensors[e - 1].name : f->kv[e - 1].key;
            if (!strcmp(o, s)) {
                char nm[96];
                fmt_name(nm, sizeof nm, (const uint8_t *)s, len);
                snprintf(err, errlen,
                         tensors ? "duplicate tensor name %s (tensors %zu "
                                   "and %zu)"
                                 : "duplicate metadata key %s (pairs %zu "
                                   "and %zu)",
                         nm, e - 1, i);
                return CRUCIBLE_E_FORMAT;
            }
            h = (h + 1) & (*cap - 1);
        }
    }
    return 0;
}

static size_t lookup(const size_t *slots, size_t cap, const gguf_file *f,
                     const char *s, int tensors)
{
    if (!slots || !s) return 0;
    size_t h = (size_t)hash_bytes(s, strlen(s)) & (cap - 1);
    for (;;) {
        size_t e = slots[h];
        if (!e) return 0;
        const char *o = tensors ? f->tensors[e - 1].name : f->kv[e - 1].key;
        if (!strcmp(o, s)) return e;
        h = (h + 1) & (cap - 1);
    }
}

static int parse_header(gguf_file *f, char *err, size_t errlen)
{
    const uint8_t *b = f->base;
    uint64_t n = f->size;
    if (n < 4 || memcmp(b, GGUF_MAGIC, 4)) {
        if (n == 0) snprintf(err, errlen, "empty file: not a GGUF file");
        else
            snprintf(err, errlen, "not a GGUF file (the first bytes are not "
                                  "the magic \"GGUF\")");
        return CRUCIBLE_E_FORMAT;
    }
    if (n < 8) {
        snprintf(err, errlen, "the file is %llu bytes: truncated inside the "
                              "GGUF header",
                 (unsigned long long)n);
        return CRUCIBLE_E_FORMAT;
    }
    uint32_t v = ld32(b + 4);
    uint32_t sw = (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) |
                  (v << 24);
    if ((v & 0xffffu) == 0 && sw >= 1 && sw <= 0xffffu) {
        snprintf(err, errlen,
                 "big-endian GGUF file (the version field reads %u in "
                 "big-endian byte order); only little-endian GGUF files are "
                 "supported",
                 sw);
        return CRUCIBLE_E_UNSUPPORTED;
    }
    if (v == 1) {
        snprintf(err, errlen,
                 "GGUF version 1 is not supported (it used 32-bit counts and "
                 "was replaced in 2023); convert the model again to GGUF v3");
        return CRUCIBLE_E_UNSUPPORTED;
    }
    if (v < GGUF_MIN_VERSION || v > GGUF_MAX_VERSION) {
        snprintf(err, errlen,
                 "unsupported GGUF version %u (this reader reads versions %d "
                 "and %d)",
                 v, GGUF_MIN_VERSION, GGUF_MAX_VERSION);
        return CRUCIBLE_E_UNSUPPORTED;
    }
    f->version = v;
    if (n < 24) {
        snprintf(err, errlen, "the file is %llu bytes: truncated inside the "
                              "GGUF header (24 bytes)",
                 (unsigned long long)n);
        return CRUCIBLE_E_FORMAT;
    }
    uint64_t nt = ld64(b + 8), nkv = ld64(b + 16), rest = n - 24;
    /* smallest pair: key length + 1 key byte + type + 1 value byte;
     * smallest tensor info: name length + 1 byte + n_dims + type + offset */
    const uint64_t min_kv = 8 + 1 + 4 + 1, min_ti = 8 + 1 + 4 + 4 + 8;
    if (nkv > rest / min_kv) {
        snprintf(err, errlen,
                 "the header claims %llu metadata pairs; the %llu bytes after "
                 "the header can hold at most %llu",
                 (unsigned long long)nkv, (unsigned long long)rest,
                 (unsigned long long)(rest / min_kv));
        return CRUCIBLE_E_FORMAT;
    }
    if (nt > (rest - nkv * min_kv) / min_ti) {
        snprintf(err, errlen,
                 "the header claims %llu tensors (and %llu metadata pairs); "
                 "the %llu bytes after the header cannot hold them",
                 (unsigned long long)nt, (unsigned long long)nkv,
                 (unsigned long long)rest);
        return CRUCIBLE_E_FORMAT;
    }
    f->n_tensors = (size_t)nt;
    f->n_kv = (size_t)nkv;
    return 0;
}

static int load(gguf_file *f, char *err, size_t errlen)
{
    int rc;
    if ((rc = parse_header(f, err, errlen))) return rc;
    if ((rc = parse(f, 0, err, errlen))) return rc;
    f->kv = f_alloc(f, (f->n_kv ? f->n_kv : 1) * sizeof(gguf_kv));
    f->tensors =
        f_alloc(f, (f->n_tensors ? f->n_tensors : 1) * sizeof(gguf_tensor));
    f->pool = f_alloc(f, f->pool_size + 1);
    if (!f->kv || !f->tensors || !f->pool) {
        snprintf(err, errlen, "out of memory");
        return CRUCIBLE_E_NOMEM;
    }
    if ((rc = parse(f, 1, err, errlen))) return rc;
    if ((rc = build_index(f, &f->kv_hash, &f->kv_hash_cap, f->n_kv, 0, err,
                          errlen)) ||
        (rc = build_index(f, &f->t_hash, &f->t_hash_cap, f->n_tensors, 1, err,
                          errlen)))
        return rc;
    return 0;
}

static gguf_file *new_file(gguf_realloc_fn alloc, void *ud)
{
    if (!alloc) alloc = libc_realloc;
    gguf_file *f = alloc(ud, NULL, 0, sizeof *f);
    if (!f) return NULL;
    memset(f, 0, sizeof *f);
    f->alloc = alloc;
    f->alloc_ud = ud;
    return f;
}

int gguf_open_mem(const void *data, size_t size, gguf_realloc_fn alloc,
                  void *alloc_ud, gguf_file **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!data && size) return CRUCIBLE_E_INVALID;
    gguf_file *f = new_file(alloc, alloc_ud);
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return CRUCIBLE_E_NOMEM;
    }
    f->base = data ? data : (const uint8_t *)"";
    f->size = size;
    int rc = load(f, err, errlen);
    if (rc) {
        gguf_close(f);
        return rc;
    }
    *out = f;
    return CRUCIBLE_OK;
}

int gguf_open(const char *path, gguf_realloc_fn alloc, void *alloc_ud,
              gguf_file **out, char *err, size_t errlen)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open: %s", strerror(errno));
        return CRUCIBLE_E_IO;
    }
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "not a regular file");
        close(fd);
        return CRUCIBLE_E_IO;
    }
    if (st.st_size == 0) {
        close(fd);
        snprintf(err, errlen, "empty file: not a GGUF file");
        return CRUCIBLE_E_FORMAT;
    }
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
        close(fd);
        snprintf(err, errlen, "the file is too large to map");
        return CRUCIBLE_E_LIMIT;
    }
    size_t size = (size_t)st.st_size;
    void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (m == MAP_FAILED) {
        snprintf(err, errlen, "cannot map the file: %s", strerror(e));
        return CRUCIBLE_E_IO;
    }
    gguf_file *f = new_file(alloc, alloc_ud);
    if (!f) {
        munmap(m, size);
        snprintf(err, errlen, "out of memory");
        return CRUCIBLE_E_NOMEM;
    }
    f->base = m;
    f->size = size;
    f->mapped = 1;
    int rc = load(f, err, errlen);
    if (rc) {
        gguf_close(f);
        return rc;
    }
    *out = f;
    return CRUCIBLE_OK;
}

void gguf_close(gguf_file *f)
{
    if (!f) return;
    f_free(f, f->kv, (f->n_kv ? f->n_kv : 1) * sizeof(gguf_kv));
    f_free(f, f->tensors,
           (f->n_tensors ? f->n_tensors : 1) * sizeof(gguf_tensor));
    f_free(f, f->pool, f->pool_size + 1);
    f_free(f, f->kv_hash, f->kv_hash_cap * sizeof(size_t));
    f_free(f, f->t_hash, f->t_hash_cap * sizeof(size_t));
    if (f->mapped) munmap((void *)(uintptr_t)f->base, (size_t)f->size);
    gguf_realloc_fn a = f->alloc;
    a(f->alloc_ud, f, sizeof *f, 0);
}

/* ---- accessors ----------------------------------------------------------------*/
uint32_t gguf_version(const gguf_file *f) { return f->version; }
uint32_t gguf_alignment(const gguf_file *f) { return f->alignment; }
uint64_t gguf_data_offset(const gguf_file *f) { return f->data_offset; }
uint64_t gguf_file_size(const gguf_file *f) { return f->size; }
size_t gguf_n_kv(const gguf_file *f) { return f->n_kv; }
size_t gguf_n_tensors(const gguf_file *f) { return f->n_tensors; }

const gguf_kv *gguf_kv_at(const gguf_file *f, size_t i)
{
    return i < f->n_kv ? &f->kv[i] : NULL;
}

const gguf_tensor *gguf_tensor_at(const gguf_file *f, size_t i)
{
    return i < f->n_tensors ? &f->tensors[i] : NULL;
}

const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key)
{
    size_t e = lookup(f->kv_hash, f->kv_hash_cap, f, key, 0);
    return e ? &f->kv[e - 1] : NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name)
{
    size_t e = lookup(f->t_hash, f->t_hash_cap, f, name, 1);
    return e ? &f->tensors[e - 1] : NULL;
}

/* ---- values -------------------------------------------------------------------*/
int gguf_value_i64(const gguf_value *v, int64_t *out)
{
    const uint8_t *p = v->p;
    switch (v->type) {
    case GGUF_T_U8: *out = p[0]; return 0;
    case GGUF_T_I8: *out = (int8_t)p[0]; return 0;
    case GGUF_T_U16: *out = ld16(p); return 0;
    case GGUF_T_I16: *out = (int16_t)ld16(p); return 0;
    case GGUF_T_U32: *out = ld32(p); return 0;
    case GGUF_T_I32: *out = (int32_t)ld32(p); return 0;
    case GGUF_T_I64: *out = (int64_t)ld64(p); return 0;
    case GGUF_T_U64: {
        uint64_t u = ld64(p);
        if (u > (uint64_t)INT64_MAX) return -1;
        *out = (int64_t)u;
        return 0;
    }
    default: return -1;
    }
}

int gguf_value_u64(const gguf_value *v, uint64_t *out)
{
    if (v->type == GGUF_T_U64) {
        *out = ld64(v->p);
        return 0;
    }
    int64_t i;
    if (gguf_value_i64(v, &i) || i < 0) return -1;
    *out = (uint64_t)i;
    return 0;
}

int gguf_value_f64(const gguf_value *v, double *out)
{
    if (v->type == GGUF_T_F32) {
        uint32_t u = ld32(v->p);
        float x;
        memcpy(&x, &u, 4);
        *out = x;
        return 0;
    }
    if (v->type == GGUF_T_F64) {
        uint64_t u = ld64(v->p);
        memcpy(out, &u, 8);
        return 0;
    }
    if (v->type == GGUF_T_U64) {
        *out = (double)ld64(v->p);
        return 0;
    }
    int64_t i;
    if (gguf_value_i64(v, &i)) return -1;
    *out = (double)i;
    return 0;
}

int gguf_value_bool(const gguf_value *v, int *out)
{
    if (v->type != GGUF_T_BOOL) return -1;
    *out = v->p[0] != 0;
    return 0;
}

const char *gguf_value_str(const gguf_value *v, size_t *len)
{
    if (v->type != GGUF_T_STRING) return NULL;
    if (len) *len = (size_t)v->n;
    return (const char *)v->p;
}

void gguf_iter_init(gguf_iter *it, const gguf_value *a)
{
    memset(it, 0, sizeof *it);
    if (a->type != GGUF_T_ARRAY) return;
    it->p = a->p;
    it->end = a->p + a->nbytes;
    it->type = a->elem_type;
    it->left = a->n;
}

int gguf_iter_next(gguf_iter *it, gguf_value *out)
{
    if (!it->left || !it->p) return 0;
    char err[8];
    cursor c = {it->p, (uint64_t)(it->end - it->p), 0, err, sizeof err};
    /* a nested array counts its depth again from 0: it was validated in
     * full when the file was opened */
    if (read_value(&c, it->type, 0, out, "array")) {
        it->left = 0;
        return 0;
    }
    it->p += c.pos;
    it->left--;
    return 1;
}

int gguf_array_get(const gguf_value *a, uint64_t i, gguf_value *out)
{
    uint32_t sz = a->type == GGUF_T_ARRAY ? vtype_size(a->elem_type) : 0;
    if (!sz || i >= a->n) return -1;
    memset(out, 0, sizeof *out);
    out->type = a->elem_type;
    out->p = a->p + i * sz;
    out->nbytes = sz;
    return 0;
}

int gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out)
{
    const gguf_kv *kv = gguf_find_kv(f, key);
    return kv ? gguf_value_u64(&kv->v, out) : -1;
}

int gguf_get_f64(const gguf_file *f, const char *key, double *out)
{
    const gguf_kv *kv = gguf_find_kv(f, key);
    return kv ? gguf_value_f64(&kv->v, out) : -1;
}

int gguf_get_bool(const gguf_file *f, const char *key, int *out)
{
    const gguf_kv *kv = gguf_find_kv(f, key);
    return kv ? gguf_value_bool(&kv->v, out) : -1;
}

const char *gguf_get_str(const gguf_file *f, const char *key, size_t *len)
{
    const gguf_kv *kv = gguf_find_kv(f, key);
    return kv ? gguf_value_str(&kv->v, len) : NULL;
}
