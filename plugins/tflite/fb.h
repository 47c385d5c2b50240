/*
 * fb.h - a small, defensive FlatBuffers reader (written for the TFLite
 * schema; Debian ships no FlatBuffers C library).
 *
 * Wire format (all integers little-endian; positions are byte offsets from
 * the start of the buffer):
 *
 *   offset  size  what
 *   0       4     uoffset of the root table (relative to offset 0)
 *   4       4     file identifier (optional; "TFL3" for TFLite)
 *
 *   table at T:
 *   T       4     soffset: the vtable is at T - soffset (signed)
 *   T+k     ...   fields, at the offsets the vtable gives
 *
 *   vtable at V:
 *   V       2     vtable length in bytes (4 + 2 * number of slots)
 *   V+2     2     object length in bytes (from T, including the soffset)
 *   V+4+2i  2     offset of field i from T; 0 = absent (the schema default)
 *
 *   A field holding a table, vector or string stores a uoffset (u32)
 *   relative to the field's own position. A vector or string at P:
 *   P       4     element count n
 *   P+4     ...   n elements (strings: n bytes, then a NUL)
 *   A vector of tables holds n uoffsets, each relative to its own slot.
 *   A union field i is two slots: the type (u8) in slot i and the value
 *   (a table uoffset) in slot i + 1.
 *
 * Safety rules of this reader:
 *   - every position and length is checked against the buffer before it is
 *     read, in 64-bit arithmetic (no overflow); a field must lie inside its
 *     table object (vtable object length), and strings must end in a NUL;
 *   - the reader never recurses: navigation is driven by the caller's
 *     schema code, so cyclic references cannot loop by themselves;
 *   - each table opened and each vector fetched is charged against a work
 *     budget fixed at fb_init (proportional to the buffer size), so shared,
 *     overlapping or cyclic references cannot amplify the work: when the
 *     budget runs out every call fails with FB_EBUDGET;
 *   - buffers are limited to FB_MAX_SIZE (2^31 - 1 bytes, the FlatBuffers
 *     limit); alignment is not required (all loads are byte-wise).
 *
 * Nothing here allocates. Threading: an fb_buf is used by one thread.
 */
#ifndef TFLITE_FB_H
#define TFLITE_FB_H

#include <stddef.h>
#include <stdint.h>

#define FB_MAX_SIZE ((size_t)0x7fffffff)

/* Results: FB_OK, FB_ABSENT (field not present: use the default), or a
 * negative error; fb_strerror() describes it. */
enum {
    FB_OK = 0,
    FB_ABSENT = 1,
    FB_EBOUNDS = -1,  /* a position or length outside the buffer */
    FB_ETABLE = -2,   /* a malformed table or vtable */
    FB_EFIELD = -3,   /* a field outside its table object */
    FB_ESTRING = -4,  /* a string without its NUL terminator */
    FB_EBUDGET = -5,  /* work budget exhausted (shared / cyclic references) */
    FB_EIDENT = -6,   /* file identifier mismatch */
    FB_ESIZE = -7     /* buffer too small or too large */
};

typedef struct fb_buf {
    const uint8_t *p;
    size_t n;
    uint64_t budget; /* remaining work units */
    uint32_t fail_at; /* position of the last failure (for messages) */
} fb_buf;

typedef struct fb_table {
    uint32_t pos;     /* the table object */
    uint32_t vt;      /* its vtable */
    uint16_t vt_len;  /* vtable length in bytes */
    uint16_t obj_len; /* object length in bytes */
} fb_table;

typedef struct fb_vec {
    uint32_t pos; /* first element */
    uint32_t len; /* element count */
} fb_vec;

const char *fb_strerror(int rc);

/* Sets up b over p[0..n). budget: work units (0 = 4 * n + 2^20). */
int fb_init(fb_buf *b, const uint8_t *p, size_t n, uint64_t budget);

/* The root table; ident (4 chars) is checked when not NULL. */
int fb_root(fb_buf *b, const char *ident, fb_table *root);

/* Opens the table object at absolute position pos. */
int fb_table_at(fb_buf *b, uint32_t pos, fb_table *t);

/* Scalars of field `id` of t; *out = dflt when absent (returns FB_OK). */
int fb_u8(fb_buf *b, const fb_table *t, unsigned id, uint8_t dflt,
          uint8_t *out);
int fb_i8(fb_buf *b, const fb_table *t, unsigned id, int8_t dflt,
          int8_t *out);
int fb_i32(fb_buf *b, const fb_table *t, unsigned id, int32_t dflt,
           int32_t *out);
int fb_u32(fb_buf *b, const fb_table *t, unsigned id, uint32_t dflt,
           uint32_t *out);
int fb_u64(fb_buf *b, const fb_table *t, unsigned id, uint64_t dflt,
           uint64_t *out);
int fb_f32(fb_buf *b, const fb_table *t, unsigned id, float dflt,
           float *out);
/* A bool is a u8; any non-zero byte is true. */
int fb_bool(fb_buf *b, const fb_table *t, unsigned id, int dflt, int *out);

/* Sub-table, vector (elem_size bytes per element), string. FB_ABSENT when
 * the field is absent (out zeroed; *s = "" for strings). */
int fb_table_field(fb_buf *b, const fb_table *t, unsigned id, fb_table *out);
int fb_vec_field(fb_buf *b, const fb_table *t, unsigned id, size_t elem_size,
                 fb_vec *out);
int fb_str_field(fb_buf *b, const fb_table *t, unsigned id, const char **s,
                 uint32_t *len);
/* Union: type in slot id, value in slot id + 1. *type = 0 (NONE) and
 * FB_ABSENT when either is absent. */
int fb_union_field(fb_buf *b, const fb_table *t, unsigned id, uint8_t *type,
                   fb_table *out);

/* Element i (< v->len, checked) of a vector of tables. */
int fb_vec_table(fb_buf *b, const fb_vec *v, uint32_t i, fb_table *out);
/* Elements of scalar vectors fetched with the matching elem_size; i must
 * be < v->len (the vector was bounds-checked when fetched). */
uint8_t fb_vec_u8(const fb_buf *b, const fb_vec *v, uint32_t i);
int32_t fb_vec_i32(const fb_buf *b, const fb_vec *v, uint32_t i);
int64_t fb_vec_i64(const fb_buf *b, const fb_vec *v, uint32_t i);
float fb_vec_f32(const fb_buf *b, const fb_vec *v, uint32_t i);
/* Pointer to the first element (inside the buffer). */
const uint8_t *fb_vec_data(const fb_buf *b, const fb_vec *v);

/* Little-endian loads from arbitrary (unaligned) memory. */
static inline uint16_t fb_ld16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}
static inline uint32_t fb_ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}
static inline uint64_t fb_ld64(const uint8_t *p)
{
    return (uint64_t)fb_ld32(p) | (uint64_t)fb_ld32(p + 4) << 32;
}

#endif
