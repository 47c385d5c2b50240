/*
 * onnx_tensor.c - ONNX element types and TensorProto decoding: raw_data,
 * the typed repeated fields, and external data files (which must stay
 * inside the model's directory).
 *
 * Every count and length is checked against the shape before anything is
 * allocated: dims must be >= 0, their product must not overflow and must
 * stay within the IR's element limit, and the data present must be exactly
 * what the shape needs.
 */
#define _XOPEN_SOURCE 700
#include "onnx_int.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ONNX TensorProto.DataType numbers */
enum {
    OT_FLOAT = 1, OT_UINT8 = 2, OT_INT8 = 3, OT_UINT16 = 4, OT_INT16 = 5,
    OT_INT32 = 6, OT_INT64 = 7, OT_STRING = 8, OT_BOOL = 9, OT_FLOAT16 = 10,
    OT_DOUBLE = 11, OT_UINT32 = 12, OT_UINT64 = 13, OT_COMPLEX64 = 14,
    OT_COMPLEX128 = 15, OT_BFLOAT16 = 16
};

int ox_log(ox_ctx *c, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->host->log(c->host, CRUCIBLE_LOG_ERROR, "%s: %s", c->path, msg);
    return status;
}

int32_t ox_dtype_from_onnx(int32_t t)
{
    switch (t) {
    case OT_FLOAT: case OT_DOUBLE: return CRUCIBLE_DT_F32;
    case OT_UINT8: return CRUCIBLE_DT_U8;
    case OT_INT8: return CRUCIBLE_DT_I8;
    case OT_INT16: return CRUCIBLE_DT_I16;
    case OT_INT32: return CRUCIBLE_DT_I32;
    case OT_INT64: return CRUCIBLE_DT_I64;
    case OT_BOOL: return CRUCIBLE_DT_BOOL;
    case OT_FLOAT16: return CRUCIBLE_DT_F16;
    default: return 0;
    }
}

const char *ox_onnx_type_name(int32_t t)
{
    static const char *const names[] = {
        "UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32",
        "INT64", "STRING", "BOOL", "FLOAT16", "DOUBLE", "UINT32", "UINT64",
        "COMPLEX64", "COMPLEX128", "BFLOAT16"};
    if (t >= 0 && t < (int32_t)(sizeof names / sizeof names[0]))
        return names[t];
    return "an unknown type";
}

/* bytes of one element in raw_data */
static size_t onnx_elem_size(int32_t t)
{
    switch (t) {
    case OT_UINT8: case OT_INT8: case OT_BOOL: return 1;
    case OT_UINT16: case OT_INT16: case OT_FLOAT16: case OT_BFLOAT16: return 2;
    case OT_FLOAT: case OT_INT32: case OT_UINT32: return 4;
    case OT_INT64: case OT_UINT64: case OT_DOUBLE: case OT_COMPLEX64: return 8;
    case OT_COMPLEX128: return 16;
    default: return 0;
    }
}

size_t ox_dtype_size(int32_t dt)
{
    switch (dt) {
    case CRUCIBLE_DT_F32: case CRUCIBLE_DT_I32: return 4;
    case CRUCIBLE_DT_I8: case CRUCIBLE_DT_U8: case CRUCIBLE_DT_BOOL: return 1;
    case CRUCIBLE_DT_I16: case CRUCIBLE_DT_F16: return 2;
    case CRUCIBLE_DT_I64: return 8;
    default: return 0;
    }
}

const char *ox_dtype_name(int32_t dt)
{
    static const char *const names[] = {
        "?",
#define X(e, s, b) s,
        CRUCIBLE_DTYPE_LIST(X)
#undef X
    };
    if (dt <= 0 || dt >= CRUCIBLE_DT_COUNT_) return "?";
    return names[dt];
}

int ox_is_int(int32_t dt)
{
    return dt == CRUCIBLE_DT_I8 || dt == CRUCIBLE_DT_U8 ||
           dt == CRUCIBLE_DT_I16 || dt == CRUCIBLE_DT_I32 ||
           dt == CRUCIBLE_DT_I64 || dt == CRUCIBLE_DT_BOOL;
}

int ox_numel(int32_t rank, const int64_t *dims, uint64_t *out)
{
    uint64_t n = 1;
    if (rank < 0 || rank > CRUCIBLE_MAX_RANK) return -1;
    for (int32_t i = 0; i < rank; i++) {
        if (dims[i] < 0 || (uint64_t)dims[i] > OX_MAX_ELEMS) return -1;
        if (dims[i] == 0) {
            n = 0;
            continue;
        }
        if (n > OX_MAX_ELEMS / (uint64_t)dims[i]) return -1;
        n *= (uint64_t)dims[i];
    }
    *out = n;
    return 0;
}

/* ---- element access ------------------------------------------------------*/
static float half_to_float(uint16_t h)
{
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023;
    uint32_t bits;
    if (e == 0) {
        if (!m) {
            bits = s;
        } else { /* subnormal: normalise */
            e = 127 - 15 + 1;
            while (!(m & 1024)) {
                m <<= 1;
                e--;
            }
            bits = s | (e << 23) | ((m & 1023) << 13);
        }
    } else if (e == 31) {
        bits = s | 0x7f800000u | (m << 13);
    } else {
        bits = s | ((e + 127 - 15) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static uint16_t float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t s = (x >> 16) & 0x8000, e = (x >> 23) & 255, m = x & 0x7fffff;
    if (e == 255) return (uint16_t)(s | 0x7c00 | (m ? 0x200 : 0));
    int32_t ee = (int32_t)e - 127 + 15;
    if (ee >= 31) return (uint16_t)(s | 0x7c00);
    if (ee <= 0) {
        if (ee < -10) return (uint16_t)s;
        m |= 0x800000;
        uint32_t shift = (uint32_t)(14 - ee);
        uint32_t hm = m >> shift, rem = m & ((1u << shift) - 1),
                 half = 1u << (shift - 1);
        if (rem > half || (rem == half && (hm & 1))) hm++;
        return (uint16_t)(s | hm);
    }
    uint32_t hm = m >> 13, rem = m & 0x1fff;
    uint32_t r = (uint32_t)s | ((uint32_t)ee << 10) | hm;
    if (rem > 0x1000 || (rem == 0x1000 && (hm & 1))) r++;
    return (uint16_t)r;
}

double ox_get_f(const ox_val *v, uint64_t i)
{
    const char *p = (const char *)v->data;
    switch (v->dtype) {
    case CRUCIBLE_DT_F32: { float f; memcpy(&f, p + 4 * i, 4); return f; }
    case CRUCIBLE_DT_F16: { uint16_t h; memcpy(&h, p + 2 * i, 2); return half_to_float(h); }
    default: return (double)ox_get_i(v, i);
    }
}

int64_t ox_get_i(const ox_val *v, uint64_t i)
{
    const char *p = (const char *)v->data;
    switch (v->dtype) {
    case CRUCIBLE_DT_I8: { int8_t t; memcpy(&t, p + i, 1); return t; }
    case CRUCIBLE_DT_U8: case CRUCIBLE_DT_BOOL: { uint8_t t; memcpy(&t, p + i, 1); return t; }
    case CRUCIBLE_DT_I16: { int16_t t; memcpy(&t, p + 2 * i, 2); return t; }
    case CRUCIBLE_DT_I32: { int32_t t; memcpy(&t, p + 4 * i, 4); return t; }
    case CRUCIBLE_DT_I64: { int64_t t; memcpy(&t, p + 8 * i, 8); return t; }
    case CRUCIBLE_DT_F32: case CRUCIBLE_DT_F16: {
        double f = ox_get_f(v, i);
        if (f != f) return 0;
        if (f >= 9.2e18) return INT64_MAX;
        if (f <= -9.2e18) return INT64_MIN;
        return (int64_t)f;
    }
    default: return 0;
    }
}

void ox_set_f(int32_t dt, void *data, uint64_t i, double x)
{
    char *p = (char *)data;
    if (dt == CRUCIBLE_DT_F32) {
        float f = (float)x;
        memcpy(p + 4 * i, &f, 4);
    } else if (dt == CRUCIBLE_DT_F16) {
        uint16_t h = float_to_half((float)x);
        memcpy(p + 2 * i, &h, 2);
    } else if (dt == CRUCIBLE_DT_BOOL) {
        p[i] = x != 0.0;
    } else {
        int64_t v;
        if (x != x) v = 0;
        else if (x >= 9.2e18) v = INT64_MAX;
        else if (x <= -9.2e18) v = INT64_MIN;
        else v = (int64_t)x;
        ox_set_i(dt, data, i, v);
    }
}

void ox_set_i(int32_t dt, void *data, uint64_t i, int64_t x)
{
    char *p = (char *)data;
    switch (dt) {
    case CRUCIBLE_DT_I8: case CRUCIBLE_DT_U8: { uint8_t t = (uint8_t)x; memcpy(p + i, &t, 1); break; }
    case CRUCIBLE_DT_BOOL: p[i] = x != 0; break;
    case CRUCIBLE_DT_I16: { uint16_t t = (uint16_t)x; memcpy(p + 2 * i, &t, 2); break; }
    case CRUCIBLE_DT_I32: { uint32_t t = (uint32_t)x; memcpy(p + 4 * i, &t, 4); break; }
    case CRUCIBLE_DT_I64: memcpy(p + 8 * i, &x, 8); break;
    case CRUCIBLE_DT_F32: case CRUCIBLE_DT_F16: ox_set_f(dt, data, i, (double)x); break;
    default: break;
    }
}

/* ---- external data ------------------------------------------------------*/
static int parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!s || !*s) return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        if (v > (UINT64_MAX - 9) / 10) return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

/* Reads `want` bytes of the external data of t into the arena. */
static int read_external(ox_ctx *c, const Onnx__TensorProto *t,
                         const char *what, uint64_t want, const void **out)
{
    const char *loc = NULL;
    uint64_t off = 0, len = want;
    int have_len = 0;
    for (size_t i = 0; i < t->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = t->external_data[i];
        if (!e->key) continue;
        if (!strcmp(e->key, "location")) {
            loc = e->value;
        } else if (!strcmp(e->key, "offset")) {
            if (parse_u64(e->value, &off))
                return ox_log(c, CRUCIBLE_E_FORMAT,
                              "%s: external data offset '%s' is not a "
                              "non-negative integer",
                              what, e->value ? e->value : "");
        } else if (!strcmp(e->key, "length")) {
            if (parse_u64(e->value, &len))
                return ox_log(c, CRUCIBLE_E_FORMAT,
                              "%s: external data length '%s' is not a "
                              "non-negative integer",
                              what, e->value ? e->value : "");
            have_len = 1;
        }
    }
    if (!loc || !*loc)
        return ox_log(c, CRUCIBLE_E_FORMAT,
                      "%s: external data without a location", what);
    if (loc[0] == '/' || loc[0] == '\\')
        return ox_log(c, CRUCIBLE_E_FORMAT,
                      "%s: external data location '%s' is an absolute path; "
                      "only paths inside the model's directory are allowed",
                      what, loc);
    /* lexically: no component may climb above the model's directory */
    {
        long depth = 0;
        const char *p = loc;
        while (*p) {
            const char *e = p;
            while (*e && *e != '/') e++;
            size_t n = (size_t)(e - p);
            if (n == 2 && p[0] == '.' && p[1] == '.') depth--;
            else if (n && !(n == 1 && p[0] == '.')) depth++;
            if (depth < 0)
                return ox_log(c, CRUCIBLE_E_FORMAT,
                              "%s: external data location '%s' resolves "
                              "outside the model's directory; refused",
                              what, loc);
            p = *e ? e + 1 : e;
        }
    }
    if (have_len && len != want)
        return ox_log(c, CRUCIBLE_E_FORMAT,
                      "%s: external data length %llu does not match the "
                      "shape (%llu bytes)",
                      what, (unsigned long long)len,
                      (unsigned long long)want);
    if (!c->dir_real) {
        char buf[PATH_MAX];
        if (!realpath(c->dir, buf))
            return ox_log(c, CRUCIBLE_E_IO, "cannot resolve directory %s: %s",
                          c->dir, strerror(errno));
        c->dir_real = ox_strdup(c, buf);
        if (!c->dir_real) return CRUCIBLE_E_NOMEM;
    }
    char *full = ox_printf(c, "%s/%s", c->dir_real, loc);
    if (!full) return CRUCIBLE_E_NOMEM;
    char real[PATH_MAX];
    if (!realpath(full, real))
        return ox_log(c, CRUCIBLE_E_IO, "%s: external data file %s: %s", what,
                      loc, strerror(errno));
    size_t dl = strlen(c->dir_real);
    int inside = !strncmp(real, c->dir_real, dl) &&
                 (real[dl] == '/' || (dl == 1 && c->dir_real[0] == '/'));
    if (!inside)
        return ox_log(c, CRUCIBLE_E_FORMAT,
                      "%s: external data location '%s' resolves outside the "
                      "model's directory (%s); refused",
                      what, loc, c->dir_real);
    FILE *f = fopen(real, "rb");
    if (!f)
        return ox_log(c, CRUCIBLE_E_IO, "%s: cannot open external data %s: %s",
                      what, loc, strerror(errno));
    struct stat st;
    int rc = CRUCIBLE_OK;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
        rc = ox_log(c, CRUCIBLE_E_IO, "%s: external data %s is not a regular "
                    "file", what, loc);
        goto out;
    }
    if (off > (uint64_t)st.st_size || want > (uint64_t)st.st_size - off) {
        rc = ox_log(c, CRUCIBLE_E_FORMAT,
                    "%s: external data %s has %lld bytes; offset %llu + "
                    "length %llu is past its end",
                    what, loc, (long long)st.st_size,
                    (unsigned long long)off, (unsigned long long)want);
        goto out;
    }
    if (want > OX_MAX_FILE) {
        rc = ox_log(c, CRUCIBLE_E_LIMIT, "%s: external data larger than "
                    "2 GiB", what);
        goto out;
    }
    void *buf = ox_alloc(c, (size_t)want);
    if (!buf) {
        rc = ox_log(c, CRUCIBLE_E_NOMEM, "%s: out of memory for %llu bytes "
                    "of external data", what, (unsigned long long)want);
        goto out;
    }
    if (fseeko(f, (off_t)off, SEEK_SET) ||
        (want && fread(buf, 1, (size_t)want, f) != (size_t)want)) {
        rc = ox_log(c, CRUCIBLE_E_IO, "%s: cannot read external data %s",
                    what, loc);
        goto out;
    }
    *out = buf;
out:
    fclose(f);
    return rc;
}

/* ---- TensorProto -> constant val ----------------------------------------*/
int32_t ox_tensor_to_val(ox_ctx *c, const Onnx__TensorProto *t,
                         const char *name, int unique_ok, const char *what)
{
    int64_t dims[CRUCIBLE_MAX_RANK] = {0};
    int32_t ot = t->has_data_type ? t->data_type : 0;
    int32_t dt = ox_dtype_from_onnx(ot);
    if (t->n_dims > CRUCIBLE_MAX_RANK) {
        int32_t v = ox_val_new(c, name, unique_ok, 0, -1, NULL);
        if (v < 0) return v;
        c->vals[v].is_const = 1;
        c->vals[v].onnx_type = ot;
        return v; /* dtype 0: consumers are unsupported */
    }
    for (size_t i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0)
            return ox_log(c, CRUCIBLE_E_FORMAT,
                          "%s: dimension %zu is negative (%lld)", what, i,
                          (long long)t->dims[i]);
        dims[i] = t->dims[i];
    }
    uint64_t n;
    if (ox_numel((int32_t)t->n_dims, dims, &n))
        return ox_log(c, CRUCIBLE_E_LIMIT,
                      "%s: shape is too large (more than 2^40 elements)",
                      what);
    if (!ot)
        return ox_log(c, CRUCIBLE_E_FORMAT, "%s: no data_type", what);
    int32_t v = ox_val_new(c, name, unique_ok, dt, (int32_t)t->n_dims, dims);
    if (v < 0) return v;
    ox_val *val = &c->vals[v];
    val->is_const = 1;
    val->onnx_type = ot;
    if (!dt) {
        val->dtype = 0; /* no IR dtype: data not decoded */
        return v;
    }
    if (t->segment)
        return ox_log(c, CRUCIBLE_E_UNSUPPORTED,
                      "%s: segmented tensors are not supported", what);
    size_t es = onnx_elem_size(ot);
    uint64_t raw_bytes = n * es; /* n <= 2^40, es <= 16 */
    const void *src = NULL;
    int from_raw = 0;
    if (t->has_data_location &&
        t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        int rc = read_external(c, t, what, raw_bytes, &src);
        if (rc) return rc;
        from_raw = 1;
    } else if (t->has_raw_data) {
        if (t->raw_data.len != raw_bytes)
            return ox_log(c, CRUCIBLE_E_FORMAT,
                          "%s: raw_data has %zu bytes; %llu %s elements need "
                          "%llu",
                          what, t->raw_data.len, (unsigned long long)n,
                          ox_onnx_type_name(ot),
                          (unsigned long long)raw_bytes);
        src = t->raw_data.data;
        from_raw = 1;
    } else {
        size_t have;
        const char *field;
        switch (ot) {
        case OT_FLOAT: have = t->n_float_data; field = "float_data"; break;
        case OT_DOUBLE: have = t->n_double_data; field = "double_data"; break;
        case OT_INT64: have = t->n_int64_data; field = "int64_data"; break;
        default: have = t->n_int32_data; field = "int32_data"; break;
        }
        if (have != n)
            return ox_log(c, CRUCIBLE_E_FORMAT,
                          "%s: %s holds %zu values; the shape needs %llu",
                          what, field, have, (unsigned long long)n);
    }
    size_t des = ox_dtype_size(dt);
    size_t bytes = (size_t)(n * des);
    if (n == 0) {
        val->data = NULL;
        val->bytes = 0;
        return v;
    }
    /* Same layout as the IR: borrow the bytes (protobuf memory lives until
     * the end of the load). */
    if (from_raw && es == des && ot != OT_DOUBLE) {
        val->data = src;
        val->bytes = bytes;
        return v;
    }
    if (!from_raw && (ot == OT_FLOAT || ot == OT_INT64 || ot == OT_INT32)) {
        val->data = ot == OT_FLOAT   ? (const void *)t->float_data
                    : ot == OT_INT64 ? (const void *)t->int64_data
                                     : (const void *)t->int32_data;
        val->bytes = bytes;
        return v;
    }
    void *d = ox_alloc(c, bytes);
    if (!d) return ox_log(c, CRUCIBLE_E_NOMEM, "%s: out of memory", what);
    for (uint64_t i = 0; i < n; i++) {
        if (ot == OT_DOUBLE) {
            double x;
            if (from_raw)
                memcpy(&x, (const char *)src + 8 * i, 8);
            else
                x = t->double_data[i];
            ox_set_f(dt, d, i, x);
        } else if (ot == OT_FLOAT16) {
            uint16_t h = (uint16_t)t->int32_data[i];
            memcpy((char *)d + 2 * i, &h, 2);
        } else {
            ox_set_i(dt, d, i, t->int32_data[i]);
        }
    }
    val->data = d;
    val->bytes = bytes;
    return v;
}
