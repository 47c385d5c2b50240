/*
 * gguf_read.h - a validating, memory-mapped reader for GGUF files
 * (versions 2 and 3), and dequantisation of ggml tensor types to float32.
 *
 * Self-contained: only libc, POSIX mmap and <crucible/abi.h> (for the
 * status codes). The plugin, the tests and the fuzz target compile it
 * directly; nothing here depends on the host or on host services.
 *
 * On-disk layout (little-endian; docs/gguf.md; ../shared/models/gguf/
 * gguf-spec.md is the reference):
 *
 *   offset  size  field
 *   0       4     magic "GGUF" (0x47 0x47 0x55 0x46)
 *   4       4     version (u32): 2 or 3 (1 used 32-bit counts: refused)
 *   8       8     tensor_count (u64)
 *   16      8     metadata_kv_count (u64)
 *   24      ...   metadata_kv_count x { key: string, type: u32, value }
 *   ...     ...   tensor_count x { name: string, n_dims: u32,
 *                                  dims: n_dims x u64, type: u32,
 *                                  offset: u64 (relative to the data) }
 *   ...     ...   zero padding to general.alignment (default 32)
 *   data    ...   tensor data; every offset a multiple of the alignment
 *
 *   string = { len: u64, bytes[len] } (UTF-8, not NUL-terminated)
 *   value  = u8 | i8 | u16 | i16 | u32 | i32 | f32 | bool (1 byte, 0/1)
 *          | string | u64 | i64 | f64
 *          | array = { elem_type: u32, count: u64, count x value }
 *            (arrays may nest; every element has the same type)
 *
 * Everything is checked before it is used or allocated: counts against
 * the bytes left, string and array lengths, nesting depth, value and
 * tensor types, duplicate keys and tensor names, n_dims <= 4, dimension
 * products, alignment, and every tensor's data range. A file that fails
 * a check is refused with one message naming what is wrong and where.
 *
 * Ownership: a gguf_file owns its mapping and its tables; every pointer a
 * gguf_file hands out (keys, names, string values, tensor data) lives
 * until gguf_close(). Not thread-safe for one file; separate files are
 * independent.
 */
#ifndef GGUF_READ_H
#define GGUF_READ_H

#include <stddef.h>
#include <stdint.h>

#include <crucible/abi.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GGUF_MAGIC "GGUF"
#define GGUF_MIN_VERSION 2
#define GGUF_MAX_VERSION 3
#define GGUF_MAX_DIMS 4           /* GGML_MAX_DIMS */
#define GGUF_MAX_DEPTH 8          /* arrays nested deeper are refused */
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_ALIGNMENT (1u << 30)
#define GGUF_MAX_KEY 65535        /* bytes */
#define GGUF_MAX_NAME 64          /* tensor name bytes */

/* Metadata value types (gguf_metadata_value_type). */
typedef enum gguf_vtype {
    GGUF_T_U8 = 0,
    GGUF_T_I8 = 1,
    GGUF_T_U16 = 2,
    GGUF_T_I16 = 3,
    GGUF_T_U32 = 4,
    GGUF_T_I32 = 5,
    GGUF_T_F32 = 6,
    GGUF_T_BOOL = 7,
    GGUF_T_STRING = 8,
    GGUF_T_ARRAY = 9,
    GGUF_T_U64 = 10,
    GGUF_T_I64 = 11,
    GGUF_T_F64 = 12,
    GGUF_T_COUNT_
} gguf_vtype;

/* ggml tensor types that appear in GGUF files (enum ggml_type). */
typedef enum gguf_ggml_type {
    GGML_T_F32 = 0,
    GGML_T_F16 = 1,
    GGML_T_Q4_0 = 2,
    GGML_T_Q4_1 = 3,
    GGML_T_Q5_0 = 6,
    GGML_T_Q5_1 = 7,
    GGML_T_Q8_0 = 8,
    GGML_T_Q8_1 = 9,
    GGML_T_Q2_K = 10,
    GGML_T_Q3_K = 11,
    GGML_T_Q4_K = 12,
    GGML_T_Q5_K = 13,
    GGML_T_Q6_K = 14,
    GGML_T_Q8_K = 15,
    GGML_T_IQ2_XXS = 16,
    GGML_T_IQ2_XS = 17,
    GGML_T_IQ3_XXS = 18,
    GGML_T_IQ1_S = 19,
    GGML_T_IQ4_NL = 20,
    GGML_T_IQ3_S = 21,
    GGML_T_IQ2_S = 22,
    GGML_T_IQ4_XS = 23,
    GGML_T_I8 = 24,
    GGML_T_I16 = 25,
    GGML_T_I32 = 26,
    GGML_T_I64 = 27,
    GGML_T_F64 = 28,
    GGML_T_IQ1_M = 29,
    GGML_T_BF16 = 30,
    GGML_T_TQ1_0 = 34,
    GGML_T_TQ2_0 = 35,
    GGML_T_MXFP4 = 39,
    GGML_T_COUNT_ = 40
} gguf_ggml_type;

/* One ggml type: name, elements per block, bytes per block, and whether
 * gguf_dequantize() converts it. */
typedef struct gguf_type_info {
    const char *name;
    uint32_t block;     /* elements per block */
    uint32_t bytes;     /* bytes per block */
    int dequant;        /* 1: gguf_dequantize supports it */
} gguf_type_info;

/* The type's description, or NULL for an id that is unknown or whose
 * support was removed from GGUF (4, 5, 31-33, 36-38, >= 40). */
const gguf_type_info *gguf_type(uint32_t type);
/* Name of a value type ("u32", "string", ...) or "?". */
const char *gguf_vtype_name(uint32_t vtype);

/* A metadata value. Strings and array payloads point into the mapping. */
typedef struct gguf_value {
    uint32_t type;      /* gguf_vtype */
    uint32_t elem_type; /* GGUF_T_ARRAY: the element type */
    uint64_t n;         /* GGUF_T_STRING: bytes; GGUF_T_ARRAY: elements */
    const uint8_t *p;   /* scalar: its bytes; string: its bytes; array:
                           the first element */
    uint64_t nbytes;    /* encoded size of what p points to */
} gguf_value;

typedef struct gguf_kv {
    const char *key;    /* NUL-terminated copy */
    size_t key_len;
    gguf_value v;
    uint64_t offset;    /* file offset of the key, for messages */
} gguf_kv;

typedef struct gguf_tensor {
    const char *name;   /* NUL-terminated copy */
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS]; /* ne[0] is the fastest-varying (row)
                                   dimension; unused dims are 1 */
    uint32_t type;      /* gguf_ggml_type */
    uint64_t offset;    /* relative to the data section */
    uint64_t n_elems;
    uint64_t n_bytes;
    const uint8_t *data;/* n_bytes bytes inside the mapping */
} gguf_tensor;

/* Allocator (Lua-style): new_size 0 frees and returns NULL; otherwise it
 * behaves like realloc. NULL for libc. */
typedef void *(*gguf_realloc_fn)(void *ud, void *ptr, size_t old_size,
                                 size_t new_size);

typedef struct gguf_file gguf_file;

/* Maps `path` read-only and parses it. Returns CRUCIBLE_OK with *out set,
 * or a negative status with a message in err (CRUCIBLE_E_IO: cannot read;
 * CRUCIBLE_E_FORMAT: malformed; CRUCIBLE_E_UNSUPPORTED: a version or byte
 * order this reader does not read; CRUCIBLE_E_NOMEM). */
int gguf_open(const char *path, gguf_realloc_fn alloc, void *alloc_ud,
              gguf_file **out, char *err, size_t errlen);
/* Same over caller-owned bytes, which must outlive the gguf_file. */
int gguf_open_mem(const void *data, size_t size, gguf_realloc_fn alloc,
                  void *alloc_ud, gguf_file **out, char *err, size_t errlen);
void gguf_close(gguf_file *f);

uint32_t gguf_version(const gguf_file *f);
uint32_t gguf_alignment(const gguf_file *f);
uint64_t gguf_data_offset(const gguf_file *f);
uint64_t gguf_file_size(const gguf_file *f);

size_t gguf_n_kv(const gguf_file *f);
const gguf_kv *gguf_kv_at(const gguf_file *f, size_t i);
const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key);
size_t gguf_n_tensors(const gguf_file *f);
const gguf_tensor *gguf_tensor_at(const gguf_file *f, size_t i);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

/* ---- values ---------------------------------------------------------------
 * Conversions return 0 on success, -1 when the value is not of a suitable
 * type or does not fit. */
int gguf_value_u64(const gguf_value *v, uint64_t *out); /* unsigned or
                                                  non-negative signed int */
int gguf_value_i64(const gguf_value *v, int64_t *out);
int gguf_value_f64(const gguf_value *v, double *out);  /* float or int */
int gguf_value_bool(const gguf_value *v, int *out);
/* String bytes (not NUL-terminated) and their length, or NULL. */
const char *gguf_value_str(const gguf_value *v, size_t *len);

/* Array elements in order. Fixed-size elements can also be read directly
 * with gguf_array_get(). */
typedef struct gguf_iter {
    const uint8_t *p, *end;
    uint32_t type;
    uint64_t left;
} gguf_iter;
void gguf_iter_init(gguf_iter *it, const gguf_value *array);
/* 1 and *out filled, or 0 at the end. */
int gguf_iter_next(gguf_iter *it, gguf_value *out);
/* Element i of an array of fixed-size elements (numbers, bools). */
int gguf_array_get(const gguf_value *array, uint64_t i, gguf_value *out);

/* Convenience lookups: 0 on success, -1 if absent or of another type. */
int gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out);
int gguf_get_f64(const gguf_file *f, const char *key, double *out);
int gguf_get_bool(const gguf_file *f, const char *key, int *out);
const char *gguf_get_str(const gguf_file *f, const char *key, size_t *len);

/* ---- tensor data ------------------------------------------------------------
 * Converts n elements (a multiple of the type's block size) of type
 * `type` from src (src_bytes long) to float32. CRUCIBLE_E_UNSUPPORTED for
 * a type without a converter, CRUCIBLE_E_INVALID for a bad size. */
int gguf_dequantize(uint32_t type, const void *src, size_t src_bytes,
                    float *dst, uint64_t n);
/* IEEE half and bfloat16 to float32. */
float gguf_f16_to_f32(uint16_t h);
float gguf_bf16_to_f32(uint16_t h);

#ifdef __cplusplus
}
#endif
#endif /* GGUF_READ_H */
