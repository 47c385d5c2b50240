/* test_tensorio.c - .npy / ONNX TensorProto loading and saving (host/tensorio).
 *
 * Fixtures in tests/data/tensorio/ were written by numpy and onnx
 * (tests/data/tensorio/gen.py); the expected values below are the ones
 * gen.py wrote. */
#include <glob.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"
#include "tensorio.h"
#include "util.h"

#define TEST_ENTRY(name) int name(void);
#include "list-tensorio.h"
#undef TEST_ENTRY

#define FXDIR CR_SOURCE_DIR "/tests/data/tensorio/"
#define SHARED_MODELS CR_SOURCE_DIR "/../shared/models"
#define ONNX_NODE_DATA "/usr/share/libonnx-testdata/data/node"

/* ---- helpers ------------------------------------------------------------*/

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* Element i as a double; F16 gives its raw bit pattern. Independent of
 * the library's own conversion code. */
static double elem(const cr_array *a, size_t i)
{
    const uint8_t *p = a->data;
    switch (a->dtype) {
    case CRUCIBLE_DT_F32: {
        uint32_t b = (uint32_t)le(p + 4 * i, 4);
        float f;
        memcpy(&f, &b, 4);
        return f;
    }
    case CRUCIBLE_DT_F16: return (double)le(p + 2 * i, 2);
    case CRUCIBLE_DT_I8: return (int8_t)p[i];
    case CRUCIBLE_DT_U8: return p[i];
    case CRUCIBLE_DT_BOOL: return p[i];
    case CRUCIBLE_DT_I16: return (int16_t)le(p + 2 * i, 2);
    case CRUCIBLE_DT_I32: return (int32_t)le(p + 4 * i, 4);
    case CRUCIBLE_DT_I64: return (double)(int64_t)le(p + 8 * i, 8);
    default: return NAN;
    }
}

static int elem_size(int32_t dt)
{
    switch (dt) {
    case CRUCIBLE_DT_F32: case CRUCIBLE_DT_I32: return 4;
    case CRUCIBLE_DT_I64: return 8;
    case CRUCIBLE_DT_F16: case CRUCIBLE_DT_I16: return 2;
    case CRUCIBLE_DT_I8: case CRUCIBLE_DT_U8: case CRUCIBLE_DT_BOOL: return 1;
    default: return 0;
    }
}

/* The invariants every successfully loaded array must satisfy. */
static int sane(const cr_array *a)
{
    if (a->rank < 0 || a->rank > CRUCIBLE_MAX_RANK || !a->data) return 0;
    size_t n = 1;
    for (int i = 0; i < a->rank; i++) {
        if (a->dims[i] < 0) return 0;
        n *= (size_t)a->dims[i];
    }
    return elem_size(a->dtype) && a->bytes == n * (size_t)elem_size(a->dtype) &&
           tio_numel(a) == n;
}

static int same_array(const cr_array *x, const cr_array *y)
{
    return x->dtype == y->dtype && x->rank == y->rank &&
           !memcmp(x->dims, y->dims, sizeof x->dims[0] * (size_t)x->rank) &&
           x->bytes == y->bytes && !memcmp(x->data, y->data, x->bytes);
}

static int file_equal(const char *a, const char *b)
{
    char err[256];
    size_t na, nb;
    uint8_t *x = cr_read_file(a, &na, 0, err, sizeof err);
    uint8_t *y = cr_read_file(b, &nb, 0, err, sizeof err);
    int eq = x && y && na == nb && !memcmp(x, y, na);
    cr_free(x);
    cr_free(y);
    return eq;
}

/* A growable byte buffer for hand-built inputs. */
typedef struct bb {
    uint8_t b[512];
    size_t n;
} bb;

static void bb_bytes(bb *o, const void *p, size_t n)
{
    if (n && o->n + n <= sizeof o->b) memcpy(o->b + o->n, p, n);
    o->n += n;
}
static void bb_varint(bb *o, uint64_t v)
{
    do {
        uint8_t x = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) x |= 0x80;
        bb_bytes(o, &x, 1);
    } while (v);
}
static void bb_key(bb *o, unsigned field, unsigned wt) { bb_varint(o, field << 3 | wt); }
static void bb_f32(bb *o, float f)
{
    uint8_t b[4];
    uint32_t u;
    memcpy(&u, &f, 4);
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(u >> (8 * i));
    bb_bytes(o, b, 4);
}
static void bb_str(bb *o, unsigned field, const void *p, size_t n)
{
    bb_key(o, field, 2);
    bb_varint(o, n);
    bb_bytes(o, p, n);
}

/* Loads a memory buffer, expecting failure with a message containing
 * needle (NULL: any message). */
static int expect_fail(const uint8_t *buf, size_t n, const char *what,
                       const char *needle, int line)
{
    cr_array a;
    char err[512] = "";
    if (tio_load_mem(buf, n, what, &a, err, sizeof err) == 0) {
        fprintf(stderr, "    line %d: %s loaded but should have failed\n",
                line, what);
        tio_free(&a);
        return 0;
    }
    if (!err[0] || (needle && !strstr(err, needle)) ||
        (what && !strstr(err, what)) || a.data || a.name) {
        fprintf(stderr, "    line %d: unexpected message '%s' (want '%s')\n",
                line, err, needle ? needle : "");
        return 0;
    }
    if (getenv("CR_TEST_VERBOSE")) fprintf(stderr, "    ok: %s\n", err);
    return 1;
}
#define EXPECT_FAIL(buf, what, needle)                                       \
    CHECK(expect_fail((buf).b, (buf).n, what, needle, __LINE__))

/* Loads a memory buffer, expecting success. */
static int load_ok(const uint8_t *buf, size_t n, cr_array *a, int line)
{
    char err[512] = "";
    if (tio_load_mem(buf, n, "buf.pb", a, err, sizeof err)) {
        fprintf(stderr, "    line %d: %s\n", line, err);
        return 0;
    }
    return sane(a);
}
#define LOAD_OK(buf, a) CHECK(load_ok((buf).b, (buf).n, a, __LINE__))

/* ---- fixtures -----------------------------------------------------------*/

typedef struct fixture {
    const char *file;
    const char *name; /* expected name or NULL */
    int32_t dtype;
    int rank;
    int64_t dims[CRUCIBLE_MAX_RANK];
    int n;            /* values to check (all elements) */
    double v[8];
} fixture;

#define F32S (-1.0), (-0.5), 0.0, 0.5, 1.0, 1.5
#define F16S 0x3c00, 0xc000, 0x3800, 0x7bff /* 1, -2, 0.5, 65504 */

static const fixture g_npy[] = {
    {"f32_2x3.npy", NULL, CRUCIBLE_DT_F32, 2, {2, 3}, 6, {F32S}},
    {"f32_2x3_v2.npy", NULL, CRUCIBLE_DT_F32, 2, {2, 3}, 6, {F32S}},
    {"f32_2x3_v3.npy", NULL, CRUCIBLE_DT_F32, 2, {2, 3}, 6, {F32S}},
    {"f64_4.npy", NULL, CRUCIBLE_DT_F32, 1, {4}, 4,
     {1.5, -2.25, INFINITY, (double)0.1f}},
    {"f16_4.npy", NULL, CRUCIBLE_DT_F16, 1, {4}, 4, {F16S}},
    {"i8_4.npy", NULL, CRUCIBLE_DT_I8, 1, {4}, 4, {-128, -1, 0, 127}},
    {"u8_2x2.npy", NULL, CRUCIBLE_DT_U8, 2, {2, 2}, 4, {0, 1, 254, 255}},
    {"i16_3.npy", NULL, CRUCIBLE_DT_I16, 1, {3}, 3, {-32768, 7, 32767}},
    {"i32_2x2x2.npy", NULL, CRUCIBLE_DT_I32, 3, {2, 2, 2}, 8,
     {-4000, -3000, -2000, -1000, 0, 1000, 2000, 3000}},
    {"i64_scalar.npy", NULL, CRUCIBLE_DT_I64, 0, {0}, 1, {-1099511627776.0}},
    {"bool_5.npy", NULL, CRUCIBLE_DT_BOOL, 1, {5}, 5, {1, 0, 1, 1, 0}},
    {"f32_be.npy", NULL, CRUCIBLE_DT_F32, 1, {3}, 3, {1.0, 2.0, -3.5}},
    {"i32_be.npy", NULL, CRUCIBLE_DT_I32, 1, {3}, 3, {1, -2, 100000}},
    {"f32_0x3.npy", NULL, CRUCIBLE_DT_F32, 2, {0, 3}, 0, {0}},
    {"f32_rank8.npy", NULL, CRUCIBLE_DT_F32, 8, {1, 2, 1, 1, 1, 1, 1, 2}, 4,
     {0, 1, 2, 3}},
};

static const fixture g_pb[] = {
    {"f32_raw.pb", "x", CRUCIBLE_DT_F32, 2, {2, 3}, 6, {F32S}},
    {"f32_typed.pb", "y", CRUCIBLE_DT_F32, 2, {2, 2}, 4, {1, 2, 3, 4.5}},
    {"f64_typed.pb", "d", CRUCIBLE_DT_F32, 1, {3}, 3,
     {(double)0.1f, -INFINITY, 2.5}},
    {"f64_raw.pb", "d", CRUCIBLE_DT_F32, 1, {3}, 3,
     {(double)0.1f, -INFINITY, 2.5}},
    {"i64_typed.pb", "l", CRUCIBLE_DT_I64, 1, {3}, 3, {-1, 0, 1099511627776.0}},
    {"i64_raw.pb", "l", CRUCIBLE_DT_I64, 1, {3}, 3, {-1, 0, 1099511627776.0}},
    {"i32_typed.pb", "i", CRUCIBLE_DT_I32, 1, {2}, 2, {-5, 7}},
    {"i8_typed.pb", "b", CRUCIBLE_DT_I8, 1, {3}, 3, {-128, 127, 3}},
    {"u8_raw.pb", "u", CRUCIBLE_DT_U8, 2, {2, 2}, 4, {0, 1, 254, 255}},
    {"u8_typed.pb", "u", CRUCIBLE_DT_U8, 2, {2, 2}, 4, {0, 1, 254, 255}},
    {"i16_raw.pb", "h", CRUCIBLE_DT_I16, 1, {3}, 3, {-32768, 7, 32767}},
    {"bool_typed.pb", "q", CRUCIBLE_DT_BOOL, 1, {5}, 5, {1, 0, 1, 1, 0}},
    {"bool_raw.pb", "q", CRUCIBLE_DT_BOOL, 1, {5}, 5, {1, 0, 1, 1, 0}},
    {"f16_typed.pb", "e", CRUCIBLE_DT_F16, 1, {4}, 4, {F16S}},
    {"f16_raw.pb", "e", CRUCIBLE_DT_F16, 1, {4}, 4, {F16S}},
    {"f32_scalar.pb", "s", CRUCIBLE_DT_F32, 0, {0}, 1, {3.25}},
    {"f32_0x3.pb", "z", CRUCIBLE_DT_F32, 2, {0, 3}, 0, {0}},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int check_fixture(const fixture *f)
{
    char path[1024], err[512] = "";
    cr_array a;
    snprintf(path, sizeof path, FXDIR "%s", f->file);
    CHECK_MSG(tio_load(path, &a, err, sizeof err) == 0, "%s", err);
    int ok = 1;
    if (!sane(&a) || a.dtype != f->dtype || a.rank != f->rank ||
        tio_numel(&a) != (size_t)f->n)
        ok = 0;
    for (int i = 0; ok && i < f->rank; i++) ok = a.dims[i] == f->dims[i];
    if (ok && f->name) ok = a.name && !strcmp(a.name, f->name);
    if (ok && !f->name) ok = a.name == NULL;
    for (int i = 0; ok && i < f->n; i++) {
        double g = elem(&a, (size_t)i);
        if (g != f->v[i]) {
            fprintf(stderr, "    %s[%d] = %.9g, want %.9g\n", f->file, i, g,
                    f->v[i]);
            ok = 0;
        }
    }
    if (!ok)
        fprintf(stderr, "    %s: got dtype %d rank %d numel %zu name %s\n",
                f->file, a.dtype, a.rank, tio_numel(&a),
                a.name ? a.name : "(null)");
    tio_free(&a);
    CHECK(a.data == NULL && a.name == NULL);
    return ok;
}

TEST(test_tensorio_npy_fixtures)
{
    for (size_t i = 0; i < COUNT(g_npy); i++)
        CHECK_MSG(check_fixture(&g_npy[i]), "%s", g_npy[i].file);
    return TEST_PASS;
}

TEST(test_tensorio_pb_fixtures)
{
    for (size_t i = 0; i < COUNT(g_pb); i++)
        CHECK_MSG(check_fixture(&g_pb[i]), "%s", g_pb[i].file);
    return TEST_PASS;
}

TEST(test_tensorio_refused_fixtures)
{
    static const struct {
        const char *file, *needle;
    } bad[] = {
        {"bad_fortran.npy", "fortran-order arrays are not supported; save "
                            "with np.ascontiguousarray"},
        {"bad_u16.npy", "npy dtype '<u2' is not supported"},
        {"bad_structured.npy", "structured dtypes"},
        {"bad_rank9.npy", "more than 8 dimensions"},
        {"bad_string.pb", "string tensors"},
        {"bad_uint16.pb", "UINT16 (4) is not supported"},
        {"bad_external.pb", "external"},
        {"bad_segment.pb", "segment"},
        {"bad_count.pb", "float_data has 3 elements, but dims (2,) need 2"},
    };
    for (size_t i = 0; i < COUNT(bad); i++) {
        char path[1024], err[512] = "";
        cr_array a;
        snprintf(path, sizeof path, FXDIR "%s", bad[i].file);
        CHECK_MSG(tio_load(path, &a, err, sizeof err) == -1, "%s loaded",
                  bad[i].file);
        CHECK_MSG(strstr(err, bad[i].needle) && strstr(err, bad[i].file),
                  "%s: '%s'", bad[i].file, err);
        CHECK(a.data == NULL && a.name == NULL && a.rank == 0);
    }
    char err[256] = "";
    cr_array a;
    CHECK(tio_load(FXDIR "no-such-file.npy", &a, err, sizeof err) == -1);
    CHECK(test_contains(err, "no-such-file.npy"));
    return TEST_PASS;
}

/* ---- round trips --------------------------------------------------------*/

/* Saves a as dir/stem.ext, loads it back, and compares. */
static int save_load(const cr_array *a, const char *dir, const char *stem,
                     const char *ext, cr_array *back)
{
    char path[1024], err[512] = "";
    snprintf(path, sizeof path, "%s/%s.%s", dir, stem, ext);
    if (tio_save(path, a, err, sizeof err)) {
        fprintf(stderr, "    save %s: %s\n", path, err);
        return 0;
    }
    if (tio_load(path, back, err, sizeof err)) {
        fprintf(stderr, "    reload %s: %s\n", path, err);
        return 0;
    }
    if (!sane(back) || !same_array(a, back)) {
        fprintf(stderr, "    %s differs after a round trip\n", path);
        tio_free(back);
        return 0;
    }
    return 1;
}

/* numpy-written little-endian v1 files our writer reproduces byte for byte
 * (numpy pads its header to 64 bytes, as we do). */
static int npy_identical_expected(const char *f)
{
    return !strstr(f, "_v2") && !strstr(f, "_v3") && !strstr(f, "_be") &&
           !strstr(f, "f64");
}

TEST(test_tensorio_roundtrip)
{
    const char *dir = test_tmpdir();
    char path[1024], out[1024], err[512];
    int identical = 0;
    for (size_t i = 0; i < COUNT(g_npy) + COUNT(g_pb); i++) {
        const fixture *f = i < COUNT(g_npy) ? &g_npy[i] : &g_pb[i - COUNT(g_npy)];
        int is_npy = i < COUNT(g_npy);
        cr_array a, p, n, n2;
        snprintf(path, sizeof path, FXDIR "%s", f->file);
        CHECK_MSG(tio_load(path, &a, err, sizeof err) == 0, "%s", err);
        /* npy -> pb -> npy (or pb -> npy -> pb) */
        CHECK_MSG(save_load(&a, dir, f->file, "pb", &p), "%s", f->file);
        CHECK((a.name == NULL) == (p.name == NULL));
        CHECK(!a.name || !strcmp(a.name, p.name));
        CHECK_MSG(save_load(&p, dir, f->file, "npy", &n), "%s", f->file);
        CHECK(n.name == NULL);
        CHECK_MSG(save_load(&n, dir, "again", "npy", &n2), "%s", f->file);
        CHECK(same_array(&a, &n2));
        /* the data offset of every npy we write is 64-byte aligned */
        snprintf(out, sizeof out, "%s/%s.npy", dir, f->file);
        size_t len;
        uint8_t *raw = cr_read_file(out, &len, 0, err, sizeof err);
        CHECK(raw && len >= 10 && raw[6] == 1 && raw[7] == 0);
        CHECK((10 + (size_t)(raw[8] | raw[9] << 8)) % 64 == 0);
        CHECK(raw[9 + (raw[8] | raw[9] << 8)] == '\n');
        cr_free(raw);
        /* byte-identical to what numpy / onnx wrote */
        if (is_npy && npy_identical_expected(f->file)) {
            CHECK_MSG(file_equal(path, out), "%s differs from numpy's file",
                      f->file);
            identical++;
        }
        if (!is_npy && !strstr(f->file, "typed") && !strstr(f->file, "f64")) {
            snprintf(out, sizeof out, "%s/%s.pb", dir, f->file);
            CHECK_MSG(file_equal(path, out), "%s differs from onnx's file",
                      f->file);
            identical++;
        }
        tio_free(&a);
        tio_free(&p);
        tio_free(&n);
        tio_free(&n2);
    }
    printf("    %d saved files byte-identical to numpy/onnx output\n",
           identical);
    return TEST_PASS;
}

/* Whether the writers' output is read back identically by numpy and onnx
 * themselves (needs Debian's python3-numpy and python3-onnx). */
TEST(test_tensorio_python_interop)
{
    if (test_sh(NULL, "/usr/bin/python3 -c 'import numpy, onnx'") != 0)
        SKIP("/usr/bin/python3 with numpy and onnx not available");
    const char *dir = test_tmpdir();
    char path[1024], out[1024], err[512];
    for (size_t i = 0; i < COUNT(g_npy) + COUNT(g_pb); i++) {
        const fixture *f = i < COUNT(g_npy) ? &g_npy[i] : &g_pb[i - COUNT(g_npy)];
        cr_array a;
        snprintf(path, sizeof path, FXDIR "%s", f->file);
        CHECK_MSG(tio_load(path, &a, err, sizeof err) == 0, "%s", err);
        snprintf(out, sizeof out, "%s/%s.npy", dir, f->file);
        CHECK_MSG(tio_save(out, &a, err, sizeof err) == 0, "%s", err);
        snprintf(out, sizeof out, "%s/%s.pb", dir, f->file);
        CHECK_MSG(tio_save(out, &a, err, sizeof err) == 0, "%s", err);
        tio_free(&a);
    }
    static const char script[] =
        "import glob, os, sys, warnings\n"
        "import numpy as np, onnx\n"
        "from onnx import numpy_helper\n"
        "warnings.simplefilter('ignore')\n"
        "src, out = sys.argv[1], sys.argv[2]\n"
        "def load(p):\n"
        "    if p.endswith('.npy'): return np.load(p)\n"
        "    t = onnx.TensorProto(); t.ParseFromString(open(p, 'rb').read())\n"
        "    return numpy_helper.to_array(t)\n"
        "def canon(a):\n"
        "    a = np.asarray(a)\n"
        "    if a.dtype == np.float64: a = a.astype(np.float32)\n"
        "    return a.astype(a.dtype.newbyteorder('<'))\n"
        "n = 0\n"
        "files = glob.glob(os.path.join(out, '*.npy')) + glob.glob(os.path.join(out, '*.pb'))\n"
        "for p in sorted(files):\n"
        "    ref = canon(load(os.path.join(src, os.path.basename(p)[:p.rfind('.') - len(p)])))\n"
        "    got = load(p)\n"
        "    if got.dtype != ref.dtype or got.shape != ref.shape or got.tobytes() != ref.tobytes():\n"
        "        print('MISMATCH', p, got.dtype, got.shape, ref.dtype, ref.shape); sys.exit(1)\n"
        "    n += 1\n"
        "print('ALLOK', n)\n";
    char spath[1024];
    snprintf(spath, sizeof spath, "%s/check.py", dir);
    CHECK(test_write(spath, script) == 0);
    char *o = NULL;
    int st = test_sh(&o, "/usr/bin/python3 '%s' '%s' '%s'", spath, FXDIR, dir);
    int ok = st == 0 && test_contains(o, "ALLOK");
    if (!ok) fprintf(stderr, "    python: %s\n", o ? o : "(no output)");
    else printf("    numpy/onnx read back: %s", strstr(o, "ALLOK"));
    free(o);
    CHECK(ok);
    return TEST_PASS;
}

/* ---- conversion ---------------------------------------------------------*/

static cr_array mk(int32_t dt, int n, const void *data, const char *name)
{
    cr_array a;
    memset(&a, 0, sizeof a);
    a.dtype = dt;
    a.rank = 1;
    a.dims[0] = n;
    a.bytes = (size_t)n * (size_t)elem_size(dt);
    a.data = (void *)data;
    a.name = (char *)name;
    return a;
}

static int conv_ok(const cr_array *in, int32_t dt, cr_array *out)
{
    char err[256] = "";
    if (tio_convert(in, dt, out, err, sizeof err)) {
        fprintf(stderr, "    convert: %s\n", err);
        return 0;
    }
    return sane(out) && out->dtype == dt && tio_numel(out) == tio_numel(in);
}

static int conv_fails(const cr_array *in, int32_t dt, const char *needle)
{
    char err[256] = "";
    cr_array out;
    if (tio_convert(in, dt, &out, err, sizeof err) == 0) {
        tio_free(&out);
        return 0;
    }
    if (!test_contains(err, needle)) {
        fprintf(stderr, "    convert message '%s'\n", err);
        return 0;
    }
    return out.data == NULL;
}

TEST(test_tensorio_convert)
{
    float f[] = {1.9f, -1.9f, 0.0f, 127.0f, -128.5f, 1e-8f};
    cr_array a = mk(CRUCIBLE_DT_F32, 6, f, "t"), b, c;
    /* float -> int truncates toward zero */
    CHECK(conv_ok(&a, CRUCIBLE_DT_I8, &b));
    CHECK(b.name && !strcmp(b.name, "t"));
    CHECK(elem(&b, 0) == 1 && elem(&b, 1) == -1 && elem(&b, 3) == 127 &&
          elem(&b, 4) == -128 && elem(&b, 5) == 0);
    /* and back */
    CHECK(conv_ok(&b, CRUCIBLE_DT_F32, &c));
    CHECK(elem(&c, 1) == -1.0 && elem(&c, 4) == -128.0);
    tio_free(&b);
    tio_free(&c);
    /* out of range is an error, not a wrap */
    CHECK(conv_fails(&a, CRUCIBLE_DT_U8, "element 1 (-1.9) does not fit in u8"));
    float big[] = {3e9f};
    cr_array g = mk(CRUCIBLE_DT_F32, 1, big, NULL);
    CHECK(conv_fails(&g, CRUCIBLE_DT_I32, "does not fit in i32"));
    CHECK(conv_ok(&g, CRUCIBLE_DT_I64, &b));
    CHECK(elem(&b, 0) == 3e9);
    tio_free(&b);
    float huge[] = {9.3e18f}; /* > 2^63 */
    g = mk(CRUCIBLE_DT_F32, 1, huge, NULL);
    CHECK(conv_fails(&g, CRUCIBLE_DT_I64, "does not fit in i64"));
    float nan1[] = {NAN};
    g = mk(CRUCIBLE_DT_F32, 1, nan1, NULL);
    CHECK(conv_fails(&g, CRUCIBLE_DT_I16, "does not fit in i16"));
    CHECK(conv_ok(&g, CRUCIBLE_DT_BOOL, &b)); /* NaN is truthy */
    CHECK(elem(&b, 0) == 1);
    tio_free(&b);

    /* integers */
    uint8_t u8[] = {0, 127, 128, 255};
    a = mk(CRUCIBLE_DT_U8, 4, u8, NULL);
    CHECK(conv_fails(&a, CRUCIBLE_DT_I8, "element 2 (128) does not fit in i8"));
    CHECK(conv_ok(&a, CRUCIBLE_DT_I16, &b));
    CHECK(elem(&b, 3) == 255);
    CHECK(conv_ok(&b, CRUCIBLE_DT_I64, &c));
    CHECK(elem(&c, 2) == 128 && c.bytes == 32);
    tio_free(&b);
    tio_free(&c);
    CHECK(conv_ok(&a, CRUCIBLE_DT_BOOL, &b));
    CHECK(elem(&b, 0) == 0 && elem(&b, 1) == 1 && elem(&b, 3) == 1);
    tio_free(&b);
    int64_t i64[] = {INT64_MIN, -1, INT64_MAX};
    a = mk(CRUCIBLE_DT_I64, 3, i64, NULL);
    CHECK(conv_fails(&a, CRUCIBLE_DT_I32, "element 0"));
    CHECK(conv_ok(&a, CRUCIBLE_DT_F32, &b));
    CHECK(elem(&b, 0) == -9223372036854775808.0 && elem(&b, 1) == -1);
    tio_free(&b);
    CHECK(conv_ok(&a, CRUCIBLE_DT_I64, &b)); /* same type: a copy */
    CHECK(same_array(&a, &b) && b.data != a.data);
    tio_free(&b);

    /* f32 <-> f16: round to nearest even, overflow to inf, subnormals */
    float h[] = {1.0f / 3, 65504.0f, 65519.0f, 65520.0f, -1e9f,
                 0x1p-24f, 0x1.8p-24f, 0x1p-26f, -0.0f, 0x1.ffcp-15f};
    uint16_t hb[] = {0x3555, 0x7bff, 0x7bff, 0x7c00, 0xfc00,
                     0x0001, 0x0002, 0x0000, 0x8000, 0x0400};
    a = mk(CRUCIBLE_DT_F32, 10, h, NULL);
    CHECK(conv_ok(&a, CRUCIBLE_DT_F16, &b));
    for (int i = 0; i < 10; i++)
        CHECK_MSG(elem(&b, (size_t)i) == hb[i], "f16[%d] = %#x, want %#x", i,
                  (unsigned)elem(&b, (size_t)i), hb[i]);
    CHECK(conv_ok(&b, CRUCIBLE_DT_F32, &c));
    CHECK(elem(&c, 1) == 65504.0 && isinf(elem(&c, 3)) && elem(&c, 5) == 0x1p-24);
    CHECK(elem(&c, 6) == 0x1p-23 && elem(&c, 9) == 0x1p-14);
    CHECK(fabs(elem(&c, 0) - 1.0 / 3) < 1e-3);
    tio_free(&b);
    tio_free(&c);
    uint16_t hn[] = {0x7e00, 0xfc00, 0x3c00};
    a = mk(CRUCIBLE_DT_F16, 3, hn, NULL);
    CHECK(conv_ok(&a, CRUCIBLE_DT_F32, &c));
    CHECK(isnan(elem(&c, 0)) && elem(&c, 1) == -INFINITY && elem(&c, 2) == 1.0);
    tio_free(&c);
    CHECK(conv_fails(&a, CRUCIBLE_DT_I32, "does not fit in i32"));

    /* unsupported types and malformed arrays */
    uint8_t nib[] = {0x21};
    a = mk(CRUCIBLE_DT_U8, 1, nib, NULL);
    a.dtype = CRUCIBLE_DT_I4;
    a.dims[0] = 2;
    CHECK(conv_fails(&a, CRUCIBLE_DT_F32, "cannot convert i4 to f32"));
    a = mk(CRUCIBLE_DT_U8, 4, u8, NULL);
    CHECK(conv_fails(&a, CRUCIBLE_DT_BINARY, "cannot convert u8 to binary"));
    CHECK(conv_fails(&a, 999, "cannot convert"));
    a.bytes = 3;
    CHECK(conv_fails(&a, CRUCIBLE_DT_I8, "holds 3 bytes"));
    return TEST_PASS;
}

/* ---- hand-built TensorProto wire data -----------------------------------*/

TEST(test_tensorio_pb_wire)
{
    cr_array a;
    bb m;
    static const uint8_t dims23[] = {0x02, 0x03};

    /* packed dims, unpacked (fixed32) float_data, name set twice (last
     * wins), unknown fields of every wire type skipped */
    memset(&m, 0, sizeof m);
    bb_str(&m, 1, dims23, 2);
    bb_str(&m, 8, "first", 5);
    bb_key(&m, 99, 0); bb_varint(&m, 12345);          /* unknown varint */
    bb_key(&m, 2, 0); bb_varint(&m, 1);               /* FLOAT */
    for (int i = 0; i < 6; i++) {
        bb_key(&m, 4, 5);
        bb_f32(&m, (float)i * 0.25f);
    }
    bb_key(&m, 100, 1); bb_bytes(&m, "12345678", 8);  /* unknown fixed64 */
    bb_str(&m, 12, "doc string", 10);                 /* doc_string */
    bb_key(&m, 101, 5); bb_bytes(&m, "1234", 4);      /* unknown fixed32 */
    bb_str(&m, 16, "\x0a\x01k\x12\x01v", 6);          /* metadata_props */
    bb_str(&m, 8, "second", 6);
    bb_key(&m, 14, 0); bb_varint(&m, 0);              /* DEFAULT location */
    LOAD_OK(m, &a);
    CHECK(a.dtype == CRUCIBLE_DT_F32 && a.rank == 2 && a.dims[0] == 2 &&
          a.dims[1] == 3 && !strcmp(a.name, "second"));
    CHECK(elem(&a, 0) == 0 && elem(&a, 5) == 1.25);
    tio_free(&a);

    /* int64_data mixing packed and unpacked, negative values; dims split
     * across a packed run and single keys; data_type after the data */
    memset(&m, 0, sizeof m);
    bb_key(&m, 1, 0); bb_varint(&m, 1);
    bb_str(&m, 1, "\x02", 1);
    bb_key(&m, 1, 0); bb_varint(&m, 2);
    {
        bb run;
        memset(&run, 0, sizeof run);
        bb_varint(&run, (uint64_t)-5);
        bb_varint(&run, 7);
        bb_str(&m, 7, run.b, run.n);
    }
    bb_key(&m, 7, 0); bb_varint(&m, (uint64_t)INT64_MIN);
    bb_key(&m, 7, 0); bb_varint(&m, (uint64_t)INT64_MAX);
    bb_key(&m, 2, 0); bb_varint(&m, 7); /* INT64 */
    LOAD_OK(m, &a);
    CHECK(a.dtype == CRUCIBLE_DT_I64 && a.rank == 3 && tio_numel(&a) == 4);
    CHECK(elem(&a, 0) == -5 && elem(&a, 1) == 7 && a.name == NULL);
    CHECK((int64_t)le((uint8_t *)a.data + 16, 8) == INT64_MIN);
    CHECK((int64_t)le((uint8_t *)a.data + 24, 8) == INT64_MAX);
    tio_free(&a);

    /* packed int32_data for INT16 with negatives (10-byte varints) */
    memset(&m, 0, sizeof m);
    bb_key(&m, 1, 0); bb_varint(&m, 3);
    bb_key(&m, 2, 0); bb_varint(&m, 5); /* INT16 */
    {
        bb run;
        memset(&run, 0, sizeof run);
        bb_varint(&run, (uint64_t)(int64_t)-32768);
        bb_varint(&run, 1);
        bb_varint(&run, 32767);
        bb_str(&m, 5, run.b, run.n);
    }
    LOAD_OK(m, &a);
    CHECK(a.dtype == CRUCIBLE_DT_I16 && elem(&a, 0) == -32768 &&
          elem(&a, 2) == 32767);
    tio_free(&a);
    /* ... and out of range for INT8 */
    m.b[3] = 3; /* data_type INT8 */
    EXPECT_FAIL(m, "x.pb", "int32_data[0] = -32768 is out of range for i8");

    /* packed double_data -> f32 */
    memset(&m, 0, sizeof m);
    bb_key(&m, 1, 0); bb_varint(&m, 2);
    bb_key(&m, 2, 0); bb_varint(&m, 11); /* DOUBLE */
    {
        double d[2] = {0.1, 1e300};
        bb_str(&m, 10, d, sizeof d); /* host is little-endian */
    }
    LOAD_OK(m, &a);
    CHECK(a.dtype == CRUCIBLE_DT_F32 && elem(&a, 0) == (double)0.1f &&
          elem(&a, 1) == INFINITY);
    tio_free(&a);

    /* empty message, no data_type */
    memset(&m, 0, sizeof m);
    EXPECT_FAIL(m, "empty.pb", "no data_type (UNDEFINED); the file is empty");
    /* dims but no data */
    bb_key(&m, 1, 0); bb_varint(&m, 4);
    bb_key(&m, 2, 0); bb_varint(&m, 1);
    EXPECT_FAIL(m, "nodata.pb", "no data (no raw_data or float_data), but dims (4,) need 4");
    /* a zero-element tensor needs no data */
    m.b[1] = 0;
    LOAD_OK(m, &a);
    CHECK(a.bytes == 0 && a.data && tio_numel(&a) == 0);
    tio_free(&a);

    /* unsupported types are named */
    static const struct {
        int t;
        const char *name;
    } types[] = {{4, "UINT16"}, {12, "UINT32"}, {13, "UINT64"},
                 {14, "COMPLEX64"}, {16, "BFLOAT16"}, {22, "INT4"},
                 {77, "unknown (77)"}, {8, "STRING"}};
    for (size_t i = 0; i < COUNT(types); i++) {
        memset(&m, 0, sizeof m);
        bb_key(&m, 2, 0); bb_varint(&m, (uint64_t)types[i].t);
        bb_str(&m, 9, "", 0);
        EXPECT_FAIL(m, "t.pb", types[i].name);
    }

    /* structural errors */
    memset(&m, 0, sizeof m);
    bb_key(&m, 2, 0);
    bb_bytes(&m, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11);
    EXPECT_FAIL(m, "v.pb", "over-long");
    memset(&m, 0, sizeof m);
    bb_key(&m, 2, 0);
    bb_bytes(&m, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 10);
    EXPECT_FAIL(m, "v.pb", "over-long"); /* > 64 bits */
    memset(&m, 0, sizeof m);
    bb_key(&m, 2, 0);
    bb_bytes(&m, "\x81\x80", 2);
    EXPECT_FAIL(m, "v.pb", "truncated varint");
    memset(&m, 0, sizeof m);
    bb_key(&m, 9, 2); bb_varint(&m, 100); bb_bytes(&m, "abc", 3);
    EXPECT_FAIL(m, "l.pb", "length 100 runs past the end of the data (3 bytes left)");
    memset(&m, 0, sizeof m);
    bb_key(&m, 9, 2); bb_varint(&m, UINT64_MAX);
    EXPECT_FAIL(m, "l.pb", "runs past the end");
    memset(&m, 0, sizeof m);
    bb_key(&m, 9, 2);
    EXPECT_FAIL(m, "l.pb", "truncated length");
    memset(&m, 0, sizeof m);
    bb_key(&m, 50, 3);
    EXPECT_FAIL(m, "g.pb", "group wire type 3");
    memset(&m, 0, sizeof m);
    bb_key(&m, 50, 4);
    EXPECT_FAIL(m, "g.pb", "group wire type 4");
    memset(&m, 0, sizeof m);
    bb_key(&m, 50, 6);
    EXPECT_FAIL(m, "w.pb", "invalid wire type 6");
    memset(&m, 0, sizeof m);
    bb_bytes(&m, "\x00\x01", 2);
    EXPECT_FAIL(m, "z.pb", "invalid field number 0");
    memset(&m, 0, sizeof m);
    bb_key(&m, 50, 1); bb_bytes(&m, "1234", 4);
    EXPECT_FAIL(m, "f.pb", "8-byte value runs past the end");
    memset(&m, 0, sizeof m);
    bb_key(&m, 4, 5); bb_bytes(&m, "12", 2);
    EXPECT_FAIL(m, "f.pb", "4-byte value runs past the end");
    memset(&m, 0, sizeof m);
    bb_key(&m, 2, 2); bb_varint(&m, 0);
    EXPECT_FAIL(m, "w.pb", "field 2 (data_type) at byte 0 has wire type 2");
    memset(&m, 0, sizeof m);
    bb_key(&m, 8, 0); bb_varint(&m, 0);
    EXPECT_FAIL(m, "w.pb", "(name)");
    memset(&m, 0, sizeof m);
    bb_key(&m, 4, 1); bb_bytes(&m, "12345678", 8);
    EXPECT_FAIL(m, "w.pb", "(float_data)");
    memset(&m, 0, sizeof m);
    bb_str(&m, 4, "123", 3);
    EXPECT_FAIL(m, "p.pb", "packed float_data at byte 0 is 3 bytes, not a multiple of 4");
    memset(&m, 0, sizeof m);
    bb_str(&m, 7, "\x80\x80", 2);
    EXPECT_FAIL(m, "p.pb", "malformed packed int64_data");
    memset(&m, 0, sizeof m);
    bb_str(&m, 1, "\x01\x80", 2);
    EXPECT_FAIL(m, "p.pb", "malformed packed dims");

    /* shapes */
    memset(&m, 0, sizeof m);
    for (int i = 0; i < 9; i++) { bb_key(&m, 1, 0); bb_varint(&m, 1); }
    bb_key(&m, 2, 0); bb_varint(&m, 1);
    EXPECT_FAIL(m, "r.pb", "more than 8 dims");
    memset(&m, 0, sizeof m);
    bb_key(&m, 1, 0); bb_varint(&m, 2);
    bb_key(&m, 1, 0); bb_varint(&m, (uint64_t)-3);
    bb_key(&m, 2, 0); bb_varint(&m, 1);
    EXPECT_FAIL(m, "n.pb", "dims[1] is -3; dims must be >= 0");
    memset(&m, 0, sizeof m);
    bb_key(&m, 1, 0); bb_varint(&m, (uint64_t)1 << 40);
    bb_key(&m, 1, 0); bb_varint(&m, (uint64_t)1 << 40);
    bb_key(&m, 2, 0); bb_varint(&m, 1);
    bb_str(&m, 9, "abcd", 4);
    EXPECT_FAIL(m, "o.pb", "element count overflows");
    memset(&m, 0, sizeof m);
    bb_key(&m, 1, 0); bb_varint(&m, 0);
    bb_key(&m, 1, 0); bb_varint(&m, (uint64_t)INT64_MAX);
    bb_key(&m, 1, 0); bb_varint(&m, (uint64_t)INT64_MAX);
    bb_key(&m, 2, 0); bb_varint(&m, 1);
    EXPECT_FAIL(m, "o.pb", "element count overflows");
    memset(&m, 0, sizeof m);
    bb_key(&m, 1, 0); bb_varint(&m, (uint64_t)1 << 60); /* huge, tiny data */
    bb_key(&m, 2, 0); bb_varint(&m, 2);
    bb_str(&m, 9, "abcd", 4);
    EXPECT_FAIL(m, "h.pb", "raw_data holds 4 bytes, but dims (1152921504606846976,) of UINT8 need 1152921504606846976");

    /* data field consistency */
    memset(&m, 0, sizeof m);
    bb_key(&m, 1, 0); bb_varint(&m, 1);
    bb_key(&m, 2, 0); bb_varint(&m, 1);
    bb_str(&m, 9, "abcd", 4);
    bb_key(&m, 4, 5); bb_f32(&m, 1.0f);
    EXPECT_FAIL(m, "b.pb", "both raw_data and float_data");
    memset(&m, 0, sizeof m);
    bb_key(&m, 1, 0); bb_varint(&m, 1);
    bb_key(&m, 2, 0); bb_varint(&m, 1);
    bb_key(&m, 7, 0); bb_varint(&m, 1);
    EXPECT_FAIL(m, "b.pb", "int64_data is set, which is not valid for a FLOAT tensor");
    memset(&m, 0, sizeof m);
    bb_key(&m, 1, 0); bb_varint(&m, 1);
    bb_key(&m, 2, 0); bb_varint(&m, 1);
    bb_str(&m, 9, "abc", 3);
    EXPECT_FAIL(m, "b.pb", "raw_data holds 3 bytes, but dims (1,) of FLOAT need 4");
    memset(&m, 0, sizeof m);
    bb_key(&m, 14, 0); bb_varint(&m, 1);
    EXPECT_FAIL(m, "e.pb", "stored externally (data_location = 1)");
    memset(&m, 0, sizeof m);
    bb_str(&m, 13, "", 0);
    EXPECT_FAIL(m, "e.pb", "external_data");
    memset(&m, 0, sizeof m);
    bb_str(&m, 6, "hi", 2);
    EXPECT_FAIL(m, "s.pb", "string tensors");
    memset(&m, 0, sizeof m);
    bb_str(&m, 3, "", 0);
    EXPECT_FAIL(m, "q.pb", "SequenceProto");

    /* an OptionalProto: its name (field 1) reads as packed dims */
    memset(&m, 0, sizeof m);
    bb_str(&m, 1, "opt_in", 6);
    bb_key(&m, 2, 0); bb_varint(&m, 3);
    bb_str(&m, 5, "\x0a\x01x", 3);
    EXPECT_FAIL(m, "o.pb", "is this a SequenceProto or OptionalProto rather than a TensorProto?");

    /* not a tensor at all: a text file */
    memset(&m, 0, sizeof m);
    bb_bytes(&m, "hello, world\n", 13);
    EXPECT_FAIL(m, "notes.txt", NULL);
    /* a .npy name without the magic */
    EXPECT_FAIL(m, "data.npy", "not an npy file");
    /* NULL arguments */
    char err[128] = "";
    CHECK(tio_load_mem(NULL, 5, "n", &a, err, sizeof err) == -1 && err[0]);
    CHECK(tio_load_mem(m.b, m.n, "n", NULL, NULL, 0) == -1);
    CHECK(tio_load(NULL, &a, err, sizeof err) == -1);
    return TEST_PASS;
}

/* ---- hand-built npy -----------------------------------------------------*/

static bb npy_buf(int major, const char *header, const void *data, size_t n)
{
    bb m;
    memset(&m, 0, sizeof m);
    size_t hl = strlen(header);
    uint8_t pre[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', (uint8_t)major, 0,
                       (uint8_t)hl, (uint8_t)(hl >> 8), 0, 0};
    bb_bytes(&m, pre, major == 1 ? 10 : 12);
    bb_bytes(&m, header, hl);
    bb_bytes(&m, data, n);
    return m;
}

TEST(test_tensorio_npy_malformed)
{
    static const float d6[6] = {1, 2, 3, 4, 5, 6};
    cr_array a;
    bb m;
#define H(s) "{'descr': '<f4', 'fortran_order': False, 'shape': " s ", }\n"
    m = npy_buf(1, H("(2, 3)"), d6, 24);
    LOAD_OK(m, &a);
    tio_free(&a);
    /* order of keys, double quotes, Python 2 longs, no trailing comma,
     * '=' byte order, NUL padding */
    m = npy_buf(1, "{\"shape\": (2L,3L), \"fortran_order\": False, "
                   "\"descr\": \"=f4\"}   \n", d6, 24);
    LOAD_OK(m, &a);
    CHECK(a.rank == 2 && a.dims[0] == 2 && a.dims[1] == 3 && elem(&a, 5) == 6);
    tio_free(&a);
    m = npy_buf(2, H("(6,)"), d6, 24);
    LOAD_OK(m, &a);
    tio_free(&a);
    /* 1-D (or one dim > 1) fortran order is the same layout: accepted */
    m = npy_buf(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (1, 6), }",
                d6, 24);
    LOAD_OK(m, &a);
    tio_free(&a);
    m = npy_buf(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
                d6, 24);
    EXPECT_FAIL(m, "f.npy", "fortran-order arrays are not supported; save with np.ascontiguousarray");
    /* big-endian i2 and f8 are byte-swapped */
    static const uint8_t be[] = {0x80, 0x00, 0x00, 0x07};
    m = npy_buf(1, "{'descr': '>i2', 'fortran_order': False, 'shape': (2,), }",
                be, 4);
    LOAD_OK(m, &a);
    CHECK(a.dtype == CRUCIBLE_DT_I16 && elem(&a, 0) == -32768 && elem(&a, 1) == 7);
    tio_free(&a);
    static const uint8_t bed[] = {0xc0, 0x02, 0x00, 0, 0, 0, 0, 0}; /* -2.25 */
    m = npy_buf(1, "{'descr': '>f8', 'fortran_order': False, 'shape': (), }",
                bed, 8);
    LOAD_OK(m, &a);
    CHECK(a.dtype == CRUCIBLE_DT_F32 && a.rank == 0 && elem(&a, 0) == -2.25);
    tio_free(&a);
    /* bool bytes other than 0/1 are normalised */
    m = npy_buf(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }",
                "\x00\x02\xff", 3);
    LOAD_OK(m, &a);
    CHECK(elem(&a, 0) == 0 && elem(&a, 1) == 1 && elem(&a, 2) == 1);
    tio_free(&a);

    /* data length must match exactly */
    m = npy_buf(1, H("(2, 3)"), d6, 20);
    EXPECT_FAIL(m, "s.npy", "npy data is truncated: shape (2, 3) of '<f4' needs 24 bytes, the file has 20");
    m = npy_buf(1, H("(2, 2)"), d6, 24);
    EXPECT_FAIL(m, "t.npy", "8 unexpected bytes after the data");
    /* shapes */
    m = npy_buf(1, H("(4294967296, 4294967296)"), d6, 24);
    EXPECT_FAIL(m, "o.npy", "element count overflows");
    m = npy_buf(1, H("(0, 4294967296, 4294967296)"), d6, 0);
    EXPECT_FAIL(m, "o.npy", "element count overflows");
    m = npy_buf(1, H("(9223372036854775808,)"), d6, 24);
    EXPECT_FAIL(m, "o.npy", "dimension in 'shape' is too large");
    m = npy_buf(1, H("(99999999999999999999999999,)"), d6, 24);
    EXPECT_FAIL(m, "o.npy", "too large");
    m = npy_buf(1, H("(1152921504606846976,)"), d6, 24);
    EXPECT_FAIL(m, "o.npy", "truncated");
    m = npy_buf(1, H("(2, -3)"), d6, 24);
    EXPECT_FAIL(m, "n.npy", "negative dimension");
    m = npy_buf(1, H("(1,1,1,1,1,1,1,1,1)"), d6, 4);
    EXPECT_FAIL(m, "r.npy", "more than 8 dimensions");
    m = npy_buf(1, H("(2 3)"), d6, 24);
    EXPECT_FAIL(m, "p.npy", "expected ',' or ')'");
    m = npy_buf(1, H("(2, 3"), d6, 24);
    EXPECT_FAIL(m, "p.npy", NULL);
    m = npy_buf(1, H("[2, 3]"), d6, 24);
    EXPECT_FAIL(m, "p.npy", "'shape' must be a tuple");
    m = npy_buf(1, H("(,)"), d6, 24);
    EXPECT_FAIL(m, "p.npy", "expected a dimension");
    /* header garbage */
    m = npy_buf(1, "hello world", d6, 24);
    EXPECT_FAIL(m, "g.npy", "not a dict literal");
    m = npy_buf(1, "", d6, 24);
    EXPECT_FAIL(m, "g.npy", "not a dict literal");
    m = npy_buf(1, "{'descr': '<f4', 'fortran_order': False}", d6, 24);
    EXPECT_FAIL(m, "g.npy", "lacks 'shape'");
    m = npy_buf(1, "{'fortran_order': False, 'shape': (6,)}", d6, 24);
    EXPECT_FAIL(m, "g.npy", "lacks 'descr'");
    m = npy_buf(1, "{'descr': '<f4', 'descr': '<f4', 'shape': (6,)}", d6, 24);
    EXPECT_FAIL(m, "g.npy", "duplicate key 'descr'");
    m = npy_buf(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'x': 1}",
                d6, 24);
    EXPECT_FAIL(m, "g.npy", "unexpected key 'x'");
    m = npy_buf(1, "{'descr': '<f4', 'fortran_order': Falsey, 'shape': (6,)}",
                d6, 24);
    EXPECT_FAIL(m, "g.npy", "must be True or False");
    m = npy_buf(1, "{'descr': '<f4, 'fortran_order': False, 'shape': (6,)}",
                d6, 24);
    EXPECT_FAIL(m, "g.npy", NULL);
    m = npy_buf(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)} x",
                d6, 24);
    EXPECT_FAIL(m, "g.npy", "unexpected text after the dict");
    m = npy_buf(1, "{'descr': '<f4' 'fortran_order': False, 'shape': (6,)}",
                d6, 24);
    EXPECT_FAIL(m, "g.npy", "expected ',' or '}'");
    m = npy_buf(1, "{'descr' '<f4'}", d6, 24);
    EXPECT_FAIL(m, "g.npy", "expected ':'");
    m = npy_buf(1, "{descr: '<f4'}", d6, 24);
    EXPECT_FAIL(m, "g.npy", "expected a short quoted key");
    m = npy_buf(1, "{'descr': 'a\\'b', 'fortran_order': False, 'shape': (6,)}",
                d6, 24);
    EXPECT_FAIL(m, "g.npy", "'descr' is not a short string");
    m = npy_buf(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,)}",
                d6, 24);
    EXPECT_FAIL(m, "g.npy", "structured dtypes");
    static const char *const bad_descr[] = {"<c8", "<u4", "<f16", "<i3",
                                            "O", "<U3", "", "<", "f4x", "|V4"};
    for (size_t i = 0; i < COUNT(bad_descr); i++) {
        char hdr[200];
        snprintf(hdr, sizeof hdr,
                 "{'descr': '%s', 'fortran_order': False, 'shape': (6,)}",
                 bad_descr[i]);
        m = npy_buf(1, hdr, d6, 24);
        EXPECT_FAIL(m, "d.npy", "is not supported");
    }
    /* preamble */
    m = npy_buf(4, H("(6,)"), d6, 24);
    EXPECT_FAIL(m, "v.npy", "unsupported npy format version 4.0");
    m = npy_buf(1, H("(6,)"), d6, 24);
    m.b[7] = 1;
    EXPECT_FAIL(m, "v.npy", "unsupported npy format version 1.1");
    m = npy_buf(1, H("(6,)"), d6, 24);
    m.b[8] = 0xff;
    m.b[9] = 0xff;
    EXPECT_FAIL(m, "l.npy", "npy header length 65535 runs past the end");
    m = npy_buf(2, H("(6,)"), d6, 24);
    m.b[11] = 0x80;
    EXPECT_FAIL(m, "l.npy", "runs past the end");
    m = npy_buf(1, "", NULL, 0);
    m.n = 9;
    EXPECT_FAIL(m, "p.npy", "truncated npy file: 9 bytes");
    m.n = 11;
    m.b[6] = 2;
    EXPECT_FAIL(m, "p.npy", "truncated npy file: 11 bytes");
#undef H
    return TEST_PASS;
}

/* ---- truncation and mutation --------------------------------------------*/

static const char *const g_fuzz_files[] = {
    "f32_2x3.npy", "f32_2x3_v2.npy", "f32_2x3_v3.npy", "f64_4.npy",
    "bool_5.npy", "i64_scalar.npy", "f32_be.npy", "f32_rank8.npy",
    "f32_raw.pb", "f32_typed.pb", "f64_typed.pb", "i64_typed.pb",
    "i32_typed.pb", "i8_typed.pb", "f16_typed.pb", "bool_raw.pb",
    "f32_scalar.pb", "bad_count.pb", "bad_segment.pb", "bad_external.pb"};

TEST(test_tensorio_truncated_and_mutated)
{
    size_t prefixes = 0, mutants = 0, mutants_ok = 0;
    for (size_t fi = 0; fi < COUNT(g_fuzz_files); fi++) {
        char path[1024], err[512];
        snprintf(path, sizeof path, FXDIR "%s", g_fuzz_files[fi]);
        size_t len;
        uint8_t *buf = cr_read_file(path, &len, 0, err, sizeof err);
        CHECK_MSG(buf, "%s", err);
        cr_array full;
        int full_ok = tio_load_mem(buf, len, path, &full, err, sizeof err) == 0;
        /* every strict prefix fails, except a TensorProto cut exactly
         * before a trailing name field: that is a valid message */
        for (size_t n = 0; n < len; n++) {
            uint8_t *cut = cr_malloc(n ? n : 1); /* exact size for ASan */
            CHECK(cut);
            memcpy(cut, buf, n);
            cr_array a;
            err[0] = 0;
            int r = tio_load_mem(cut, n, path, &a, err, sizeof err);
            cr_free(cut);
            prefixes++;
            if (r == 0) {
                int ok = full_ok && !strstr(path, ".npy") && a.name == NULL &&
                         full.name && same_array(&a, &full);
                tio_free(&a);
                CHECK_MSG(ok, "%s cut at %zu bytes loaded", g_fuzz_files[fi], n);
            } else {
                CHECK_MSG(err[0] && strstr(err, g_fuzz_files[fi]),
                          "%s cut at %zu: no message", g_fuzz_files[fi], n);
            }
        }
        /* single-byte mutations: must not crash; what loads must be sane */
        static const uint8_t xors[] = {0x01, 0x02, 0x08, 0x40, 0x80, 0xff};
        for (size_t i = 0; i < len; i++) {
            for (size_t k = 0; k < COUNT(xors) + 2; k++) {
                uint8_t *mut = cr_malloc(len);
                CHECK(mut);
                memcpy(mut, buf, len);
                mut[i] = k < COUNT(xors) ? (uint8_t)(mut[i] ^ xors[k])
                                         : (k == COUNT(xors) ? 0x00 : 0x7f);
                cr_array a;
                err[0] = 0;
                int r = tio_load_mem(mut, len, path, &a, err, sizeof err);
                cr_free(mut);
                mutants++;
                if (r == 0) {
                    mutants_ok++;
                    CHECK_MSG(sane(&a), "%s mutated at %zu", g_fuzz_files[fi], i);
                    tio_free(&a);
                } else {
                    CHECK(err[0]);
                }
            }
        }
        if (full_ok) tio_free(&full);
        cr_free(buf);
    }
    printf("    %zu truncated inputs refused; %zu mutants (%zu still load)\n",
           prefixes, mutants, mutants_ok);
    return TEST_PASS;
}

/* ---- saving -------------------------------------------------------------*/

TEST(test_tensorio_save_errors)
{
    const char *dir = test_tmpdir();
    char path[1024], err[512];
    float f[4] = {1, 2, 3, 4};
    cr_array a = mk(CRUCIBLE_DT_F32, 4, f, "w");
#define SAVE_FAILS(file, needle)                                             \
    do {                                                                     \
        snprintf(path, sizeof path, "%s/%s", dir, file);                     \
        err[0] = 0;                                                          \
        CHECK(tio_save(path, &a, err, sizeof err) == -1);                    \
        CHECK_MSG(test_contains(err, needle), "'%s'", err);                  \
        CHECK(!cr_is_file(path));                                            \
    } while (0)
    SAVE_FAILS("x.bin", "use .npy or .pb");
    SAVE_FAILS("npy", "use .npy or .pb");
    SAVE_FAILS("x.npy.tmp", "use .npy or .pb");
    SAVE_FAILS("no-such-dir/x.npy", "no-such-dir");
    a.dtype = CRUCIBLE_DT_I4;
    a.dims[0] = 8;
    a.bytes = 4;
    SAVE_FAILS("x.npy", "i4 arrays cannot be stored in .npy");
    SAVE_FAILS("x.pb", "i4 arrays cannot be stored as an ONNX TensorProto");
    a = mk(CRUCIBLE_DT_F32, 4, f, "w");
    a.bytes = 15;
    SAVE_FAILS("x.npy", "array holds 15 bytes, but shape (4,) of f32 needs 16");
    a = mk(CRUCIBLE_DT_F32, 4, f, "w");
    a.dims[0] = -4;
    SAVE_FAILS("x.pb", "dims[0] is -4");
    a = mk(CRUCIBLE_DT_F32, 4, f, "w");
    a.rank = 9;
    SAVE_FAILS("x.pb", "rank 9");
    a = mk(CRUCIBLE_DT_F32, 4, NULL, "w");
    SAVE_FAILS("x.pb", "data is NULL");
    a = mk(CRUCIBLE_DT_F32, 4, f, "w");
    a.dtype = 0;
    SAVE_FAILS("x.pb", "invalid dtype");
#undef SAVE_FAILS
    /* upper-case extensions work; an unnamed rank-0 array saves */
    a = mk(CRUCIBLE_DT_F32, 4, f, NULL);
    a.rank = 0;
    a.bytes = 4;
    cr_array b;
    CHECK(save_load(&a, dir, "scalar", "NPY", &b));
    tio_free(&b);
    CHECK(save_load(&a, dir, "scalar", "Pb", &b));
    CHECK(b.name == NULL);
    tio_free(&b);
    tio_free(NULL);
    CHECK(tio_numel(NULL) == 0);
    a.rank = 2;
    a.dims[0] = INT64_MAX;
    a.dims[1] = 4;
    CHECK(tio_numel(&a) == 0);
    return TEST_PASS;
}

/* ---- real files ---------------------------------------------------------*/

/* The data_type field of a TensorProto, by a minimal scan (-1 if none). */
static long pb_peek_type(const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n;
    long type = -1;
    while (p < end) {
        uint64_t key = 0, v = 0;
        int s = 0;
        do {
            if (p >= end || s > 63) return type;
            key |= (uint64_t)(*p & 0x7f) << s;
            s += 7;
        } while (*p++ & 0x80);
        unsigned wt = key & 7;
        if (wt == 0 || wt == 2) {
            s = 0;
            do {
                if (p >= end || s > 63) return type;
                v |= (uint64_t)(*p & 0x7f) << s;
                s += 7;
            } while (*p++ & 0x80);
            if (wt == 0 && key >> 3 == 2) type = (long)v;
            if (wt == 2) {
                if (v > (uint64_t)(end - p)) return type;
                p += v;
            }
        } else if (wt == 1 || wt == 5) {
            size_t w = wt == 1 ? 8 : 4;
            if ((size_t)(end - p) < w) return type;
            p += w;
        } else {
            return type;
        }
    }
    return type;
}

TEST(test_tensorio_onnx_testdata)
{
    glob_t g;
    if (glob(ONNX_NODE_DATA "/*/test_data_set_0/*.pb", 0, NULL, &g) != 0 ||
        g.gl_pathc == 0) {
        globfree(&g);
        SKIP("%s not found (apt-get install libonnx-testdata)", ONNX_NODE_DATA);
    }
    size_t loaded = 0, refused = 0, float_total = 0, float_loaded = 0;
    size_t by_type_total[32] = {0}, by_type_loaded[32] = {0};
    for (size_t i = 0; i < g.gl_pathc; i++) {
        const char *path = g.gl_pathv[i];
        char err[512] = "";
        size_t len;
        uint8_t *buf = cr_read_file(path, &len, 0, err, sizeof err);
        CHECK_MSG(buf, "%s", err);
        long t = pb_peek_type(buf, len);
        cr_free(buf);
        cr_array a;
        int r = tio_load(path, &a, err, sizeof err);
        int slot = t >= 0 && t < 31 ? (int)t : 31;
        by_type_total[slot]++;
        if (r == 0) {
            CHECK_MSG(sane(&a), "%s", path);
            loaded++;
            by_type_loaded[slot]++;
            if (t == 1) float_loaded++;
            tio_free(&a);
        } else {
            CHECK_MSG(err[0] && strstr(err, path), "%s: no message", path);
            if (getenv("CR_TEST_VERBOSE")) fprintf(stderr, "    %s\n", err);
            refused++;
        }
        if (t == 1) float_total++;
    }
    size_t n = g.gl_pathc;
    globfree(&g);
    printf("    libonnx-testdata node/*/test_data_set_0: %zu files, %zu loaded, "
           "%zu refused with a message\n", n, loaded, refused);
    printf("    by ONNX data_type (loaded/total):");
    for (int t = 0; t < 32; t++)
        if (by_type_total[t])
            printf(" %s%d:%zu/%zu", t == 31 ? ">=" : "", t, by_type_loaded[t],
                   by_type_total[t]);
    printf("\n    FLOAT: %zu of %zu load (%.1f%%)\n", float_loaded, float_total,
           float_total ? 100.0 * (double)float_loaded / (double)float_total : 0);
    CHECK(float_total > 0);
    CHECK(float_loaded * 10 >= float_total * 9);
    /* everything of a supported type that is really a TensorProto loads;
     * the refusals are other types and SequenceProto/OptionalProto files */
    static const int supported[] = {1, 2, 3, 5, 6, 7, 9, 10, 11};
    size_t st = 0, sl = 0;
    for (size_t i = 0; i < COUNT(supported); i++) {
        st += by_type_total[supported[i]];
        sl += by_type_loaded[supported[i]];
    }
    printf("    supported types: %zu of %zu load\n", sl, st);
    CHECK(sl * 100 >= st * 95);
    return TEST_PASS;
}

TEST(test_tensorio_shared_models)
{
    if (!cr_is_dir(SHARED_MODELS))
        SKIP("%s not found", SHARED_MODELS);
    static const char *const pats[] = {
        SHARED_MODELS "/*/*/test_data_set_*/*.pb",
        SHARED_MODELS "/*/*/test_data_set_*/*.npy"};
    glob_t g;
    memset(&g, 0, sizeof g);
    int flags = 0;
    for (size_t i = 0; i < COUNT(pats); i++) {
        glob(pats[i], flags, NULL, &g);
        flags = GLOB_APPEND;
    }
    size_t npb = 0, nnpy = 0, checked = 0;
    const char *dir = test_tmpdir();
    for (size_t i = 0; i < g.gl_pathc; i++) {
        const char *path = g.gl_pathv[i];
        char err[512] = "";
        cr_array a, b;
        CHECK_MSG(tio_load(path, &a, err, sizeof err) == 0, "%s", err);
        CHECK_MSG(sane(&a) && a.rank >= 1, "%s", path);
        if (strstr(path, ".npy")) nnpy++;
        else npb++;
        if (strstr(path, "mnist8_cntk/test_data_set_0/input_0.pb")) {
            CHECK(a.dtype == CRUCIBLE_DT_F32 && a.rank == 4 && a.dims[2] == 28 &&
                  a.dims[3] == 28 && a.name && !strcmp(a.name, "Input3"));
            checked++;
        }
        if (strstr(path, "mnist8_cntk/test_data_set_0/output_0.pb")) {
            CHECK(a.rank == 2 && a.dims[0] == 1 && a.dims[1] == 10 &&
                  !strcmp(a.name, "Plus214_Output_0"));
            checked++;
        }
        if (strstr(path, "hello_world_float/test_data_set_0/input_0.npy")) {
            CHECK(a.dtype == CRUCIBLE_DT_F32 && a.rank == 2 && a.dims[0] == 1 &&
                  a.dims[1] == 1 && a.name == NULL);
            checked++;
        }
        /* a round trip through the other format */
        CHECK(save_load(&a, dir, "rt", strstr(path, ".npy") ? "pb" : "npy", &b));
        tio_free(&b);
        tio_free(&a);
    }
    globfree(&g);
    printf("    %s: %zu .pb and %zu .npy files loaded and round-tripped\n",
           SHARED_MODELS, npb, nnpy);
    CHECK(npb + nnpy > 0);
    CHECK(checked == 3);
    return TEST_PASS;
}
