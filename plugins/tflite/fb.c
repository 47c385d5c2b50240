/*
 * fb.c - the bounds-checked FlatBuffers reader (see fb.h for the format
 * and the safety rules).
 */
#include "fb.h"

#include <string.h>

const char *fb_strerror(int rc)
{
    switch (rc) {
    case FB_OK: return "ok";
    case FB_ABSENT: return "absent";
    case FB_EBOUNDS: return "an offset or length points outside the file";
    case FB_ETABLE: return "a malformed table (bad vtable)";
    case FB_EFIELD: return "a field lies outside its table";
    case FB_ESTRING: return "a string is not NUL-terminated";
    case FB_EBUDGET:
        return "too much work for the file size (shared, overlapping or "
               "cyclic references)";
    case FB_EIDENT: return "wrong file identifier";
    case FB_ESIZE: return "the buffer is too small or too large";
    default: return "unknown FlatBuffers error";
    }
}

static int fail(fb_buf *b, int rc, uint64_t at)
{
    b->fail_at = at > 0xffffffffu ? 0xffffffffu : (uint32_t)at;
    return rc;
}

/* [pos, pos + len) inside the buffer? (64-bit, no overflow) */
static int in_buf(const fb_buf *b, uint64_t pos, uint64_t len)
{
    return pos <= b->n && len <= b->n - pos;
}

static int charge(fb_buf *b, uint64_t units, uint64_t at)
{
    if (b->budget < units) {
        b->budget = 0;
        return fail(b, FB_EBUDGET, at);
    }
    b->budget -= units;
    return FB_OK;
}

int fb_init(fb_buf *b, const uint8_t *p, size_t n, uint64_t budget)
{
    memset(b, 0, sizeof *b);
    if (!p || n < 8 || n > FB_MAX_SIZE) return FB_ESIZE;
    b->p = p;
    b->n = n;
    b->budget = budget ? budget : 4 * (uint64_t)n + ((uint64_t)1 << 20);
    return FB_OK;
}

int fb_table_at(fb_buf *b, uint32_t pos, fb_table *t)
{
    memset(t, 0, sizeof *t);
    int rc = charge(b, 1, pos);
    if (rc) return rc;
    if (!in_buf(b, pos, 4)) return fail(b, FB_EBOUNDS, pos);
    int32_t so = (int32_t)fb_ld32(b->p + pos);
    int64_t vt = (int64_t)pos - (int64_t)so;
    if (vt < 0 || !in_buf(b, (uint64_t)vt, 4)) return fail(b, FB_EBOUNDS, pos);
    uint16_t vl = fb_ld16(b->p + vt), ol = fb_ld16(b->p + vt + 2);
    if (vl < 4 || (vl & 1) || !in_buf(b, (uint64_t)vt, vl))
        return fail(b, FB_ETABLE, (uint64_t)vt);
    if (ol < 4 || !in_buf(b, pos, ol)) return fail(b, FB_ETABLE, pos);
    t->pos = pos;
    t->vt = (uint32_t)vt;
    t->vt_len = vl;
    t->obj_len = ol;
    return FB_OK;
}

int fb_root(fb_buf *b, const char *ident, fb_table *root)
{
    memset(root, 0, sizeof *root);
    if (!b->p || b->n < 8) return FB_ESIZE;
    if (ident && memcmp(b->p + 4, ident, 4)) return fail(b, FB_EIDENT, 4);
    uint32_t off = fb_ld32(b->p);
    if (off < 8 && ident) return fail(b, FB_EBOUNDS, 0);
    return fb_table_at(b, off, root);
}

/* Absolute position of field id (size bytes, inside the object), or
 * FB_ABSENT. */
static int field_pos(fb_buf *b, const fb_table *t, unsigned id, size_t size,
                     uint32_t *at)
{
    uint64_t slot = 4 + 2 * (uint64_t)id;
    if (slot + 2 > t->vt_len) return FB_ABSENT;
    uint16_t off = fb_ld16(b->p + t->vt + slot);
    if (!off) return FB_ABSENT;
    if (off < 4 || (uint64_t)off + size > t->obj_len)
        return fail(b, FB_EFIELD, t->pos);
    *at = t->pos + off; /* inside the object, so inside the buffer */
    return FB_OK;
}

#define SCALAR_GETTER(fn, T, SIZE, LOAD)                                    \
    int fn(fb_buf *b, const fb_table *t, unsigned id, T dflt, T *out)       \
    {                                                                       \
        uint32_t at;                                                        \
        int rc = field_pos(b, t, id, SIZE, &at);                            \
        *out = dflt;                                                        \
        if (rc == FB_ABSENT) return FB_OK;                                  \
        if (rc) return rc;                                                  \
        LOAD;                                                               \
        return FB_OK;                                                       \
    }

SCALAR_GETTER(fb_u8, uint8_t, 1, *out = b->p[at])
SCALAR_GETTER(fb_i8, int8_t, 1, *out = (int8_t)b->p[at])
SCALAR_GETTER(fb_i32, int32_t, 4, *out = (int32_t)fb_ld32(b->p + at))
SCALAR_GETTER(fb_u32, uint32_t, 4, *out = fb_ld32(b->p + at))
SCALAR_GETTER(fb_u64, uint64_t, 8, *out = fb_ld64(b->p + at))
SCALAR_GETTER(fb_f32, float, 4, {
    uint32_t u = fb_ld32(b->p + at);
    memcpy(out, &u, 4);
})

int fb_bool(fb_buf *b, const fb_table *t, unsigned id, int dflt, int *out)
{
    uint8_t v;
    int rc = fb_u8(b, t, id, dflt ? 1 : 0, &v);
    *out = v != 0;
    return rc;
}

/* Follows the uoffset stored in field id: absolute target position. */
static int field_ref(fb_buf *b, const fb_table *t, unsigned id,
                     uint32_t *target)
{
    uint32_t at;
    int rc = field_pos(b, t, id, 4, &at);
    if (rc) return rc;
    uint64_t to = (uint64_t)at + fb_ld32(b->p + at);
    if (!in_buf(b, to, 4)) return fail(b, FB_EBOUNDS, at);
    *target = (uint32_t)to;
    return FB_OK;
}

int fb_table_field(fb_buf *b, const fb_table *t, unsigned id, fb_table *out)
{
    uint32_t to;
    memset(out, 0, sizeof *out);
    int rc = field_ref(b, t, id, &to);
    if (rc) return rc;
    return fb_table_at(b, to, out);
}

static int vec_at(fb_buf *b, uint32_t pos, size_t elem_size, fb_vec *out)
{
    if (!in_buf(b, pos, 4)) return fail(b, FB_EBOUNDS, pos);
    uint32_t n = fb_ld32(b->p + pos);
    /* n * elem_size <= 2^32 * 8: no overflow in 64 bits */
    if (!in_buf(b, (uint64_t)pos + 4, (uint64_t)n * elem_size))
        return fail(b, FB_EBOUNDS, pos);
    /* elements that are read one by one are charged; a byte blob is not */
    int rc = charge(b, 1 + (elem_size > 1 ? n : 0), pos);
    if (rc) return rc;
    out->pos = pos + 4;
    out->len = n;
    return FB_OK;
}

int fb_vec_field(fb_buf *b, const fb_table *t, unsigned id, size_t elem_size,
                 fb_vec *out)
{
    uint32_t to;
    memset(out, 0, sizeof *out);
    int rc = field_ref(b, t, id, &to);
    if (rc) return rc;
    return vec_at(b, to, elem_size, out);
}

int fb_str_field(fb_buf *b, const fb_table *t, unsigned id, const char **s,
                 uint32_t *len)
{
    fb_vec v;
    *s = "";
    if (len) *len = 0;
    int rc = fb_vec_field(b, t, id, 1, &v);
    if (rc) return rc;
    if (!in_buf(b, (uint64_t)v.pos + v.len, 1) || b->p[v.pos + v.len] != 0)
        return fail(b, FB_ESTRING, v.pos);
    *s = (const char *)b->p + v.pos;
    if (len) *len = v.len;
    return FB_OK;
}

int fb_union_field(fb_buf *b, const fb_table *t, unsigned id, uint8_t *type,
                   fb_table *out)
{
    memset(out, 0, sizeof *out);
    *type = 0;
    uint8_t ty;
    int rc = fb_u8(b, t, id, 0, &ty);
    if (rc) return rc;
    if (!ty) return FB_ABSENT;
    rc = fb_table_field(b, t, id + 1, out);
    if (rc) return rc;
    *type = ty;
    return FB_OK;
}

int fb_vec_table(fb_buf *b, const fb_vec *v, uint32_t i, fb_table *out)
{
    memset(out, 0, sizeof *out);
    if (i >= v->len) return fail(b, FB_EBOUNDS, v->pos);
    uint64_t slot = (uint64_t)v->pos + 4 * (uint64_t)i;
    if (!in_buf(b, slot, 4)) return fail(b, FB_EBOUNDS, slot);
    uint64_t to = slot + fb_ld32(b->p + slot);
    if (!in_buf(b, to, 4)) return fail(b, FB_EBOUNDS, slot);
    return fb_table_at(b, (uint32_t)to, out);
}

uint8_t fb_vec_u8(const fb_buf *b, const fb_vec *v, uint32_t i)
{
    return i < v->len ? b->p[v->pos + i] : 0;
}

int32_t fb_vec_i32(const fb_buf *b, const fb_vec *v, uint32_t i)
{
    return i < v->len ? (int32_t)fb_ld32(b->p + v->pos + 4 * (size_t)i) : 0;
}

int64_t fb_vec_i64(const fb_buf *b, const fb_vec *v, uint32_t i)
{
    return i < v->len ? (int64_t)fb_ld64(b->p + v->pos + 8 * (size_t)i) : 0;
}

float fb_vec_f32(const fb_buf *b, const fb_vec *v, uint32_t i)
{
    float f = 0.0f;
    if (i < v->len) {
        uint32_t u = fb_ld32(b->p + v->pos + 4 * (size_t)i);
        memcpy(&f, &u, 4);
    }
    return f;
}

const uint8_t *fb_vec_data(const fb_buf *b, const fb_vec *v)
{
    return b->p + v->pos;
}
