/*
 * tensorio.h - load and save single tensors in the two interchange formats
 * test data comes in: NumPy .npy files and serialized ONNX TensorProto
 * (.pb) files, as used by the ONNX backend test-data layout
 * (<case>/test_data_set_N/input_K.pb).
 *
 * Both readers are written for untrusted input: every length, count and
 * dimension is checked against the buffer, and anything malformed or
 * unsupported fails with a message that names the file and the problem.
 *
 * Element types (crucible_dtype) handled here: F32, I32, I8, U8, I16, I64,
 * F16, BOOL. Double precision input (npy '<f8', ONNX DOUBLE) is converted
 * to F32 on load, since crucible has no f64. Packed sub-byte types (I4,
 * TERNARY, BINARY) have no npy/ONNX counterpart here and are refused.
 */
#ifndef CR_TENSORIO_H
#define CR_TENSORIO_H

#include <stddef.h>
#include <stdint.h>

#include <crucible/ir.h>

typedef struct cr_array {
    char *name;     /* may be NULL (npy has none; pb has a name field) */
    int32_t dtype;  /* crucible_dtype */
    int32_t rank;   /* 0..CRUCIBLE_MAX_RANK */
    int64_t dims[CRUCIBLE_MAX_RANK];
    void *data;     /* packed little-endian elements, cr_malloc'd; never
                       NULL after a successful load, even when bytes == 0 */
    size_t bytes;   /* numel * element size */
} cr_array;

/* Loads a .npy or ONNX TensorProto .pb file. The format is chosen by
 * content (the npy magic "\x93NUMPY"); without the magic a path ending in
 * .npy is reported as a bad npy file, anything else is parsed as a
 * TensorProto. Returns 0, or -1 with a message naming the file and the
 * problem in err (out is then zeroed). */
int tio_load(const char *path, cr_array *out, char *err, size_t errlen);
/* Same from memory; what names the buffer in messages and serves as the
 * extension tie-breaker (may be NULL). */
int tio_load_mem(const uint8_t *buf, size_t len, const char *what,
                 cr_array *out, char *err, size_t errlen);

/* Saves by extension (case-insensitive): .npy writes format 1.0 with a
 * 64-byte-aligned header; .pb writes a TensorProto with dims, data_type,
 * name (if set) and raw_data. Anything else is an error. The file is
 * written atomically. Returns 0 or -1 with a message. */
int tio_save(const char *path, const cr_array *a, char *err, size_t errlen);

/* Frees name and data and zeroes *a (NULL-safe). */
void tio_free(cr_array *a);

/* Product of the dims; 0 for an empty array and also when the rank or a
 * dim is invalid or the product overflows. */
size_t tio_numel(const cr_array *a);

/* Converts in to dtype into a new array out (name copied). Supported
 * types, in any direction: F32, F16, I32, I16, I8, U8, I64, BOOL.
 * float -> int truncates toward zero; a value that does not fit the target
 * integer type (or NaN) is an error, not a wrap. -> BOOL is (v != 0).
 * -> F32/F16 rounds to nearest even; beyond range gives +-inf.
 * Returns 0, or -1 with a message (out is then zeroed). */
int tio_convert(const cr_array *in, int32_t dtype, cr_array *out, char *err,
                size_t errlen);

#endif
