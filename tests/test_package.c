/* test_package.c - SHA-256, the JSON parser and the .tptpkg package. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "package.h"
#include "runner.h"
#include "sha256.h"
#include "util.h"

#define TEST_ENTRY(name) int name(void);
#include "list-package.h"
#undef TEST_ENTRY

/* ---- helpers ----------------------------------------------------------- */

static char *tpath(const char *dir, const char *name)
{
    static char bufs[8][1024];
    static int k;
    char *b = bufs[k++ & 7];
    if (snprintf(b, sizeof bufs[0], "%s/%s", dir, name) >= (int)sizeof bufs[0]) abort();
    return b;
}

/* Copies a path into a 1024-byte buffer. */
static void keep(char dst[1024], const char *src)
{
    if (snprintf(dst, 1024, "%s", src) >= 1024) abort();
}

static int dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    char err[256];
    return cr_read_file(path, len, 0, err, sizeof err);
}

static int spit(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(data, 1, len, f) == len;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* Deterministic pseudo-random bytes (incompressible). */
static void fill_random(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

static const char *IR_TEXT =
    "graph main {\n  %0 = input f32[1,3,224,224]\n  %1 = conv2d %0 k=3\n"
    "  %2 = relu %1\n  output %2\n}\n";
static const char *REPORT_JSON = "{\"luts\": 1234, \"dsps\": 12, \"bram\": 4}\n";
#define RAND_LEN 600
#define EXTRA_JSON                                                            \
    "\"model\": {\"path\": \"net.onnx\", \"sha256\": "                      \
    "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"},"  \
    "\"plugins\": [{\"id\": \"fpga-demo\", \"version\": \"1.2.3\"}],"        \
    "\"tools\": [{\"name\": \"yosys\", \"version\": \"0.40\"}]"

/* Writes the standard 3-artifact test package at path. */
static int make_package(const char *dir, const char *path, char *err, size_t errlen)
{
    uint8_t rnd[RAND_LEN];
    fill_random(rnd, sizeof rnd, 7);
    const char *binpath = tpath(dir, "bitstream.bin.src");
    if (spit(binpath, rnd, sizeof rnd)) return -1;
    pkg_writer *w = pkg_writer_open(path, err, errlen);
    if (!w) return -1;
    if (pkg_add(w, "ir.txt", IR_TEXT, strlen(IR_TEXT)) ||
        pkg_add_file(w, "targets/fpga-demo/bitstream.bin", binpath) ||
        pkg_add(w, "reports/resources.json", REPORT_JSON, strlen(REPORT_JSON))) {
        snprintf(err, errlen, "%s", pkg_writer_error(w));
        pkg_writer_abort(w);
        return -1;
    }
    return pkg_writer_commit(w, EXTRA_JSON, err, errlen);
}

typedef struct centry {
    const char *name;
    const char *data; /* NULL: no data */
    mode_t type;      /* AE_IFREG, AE_IFDIR, AE_IFLNK */
    const char *link;
} centry;

/* Crafts a ZIP with arbitrary entries (no manifest unless listed). */
static int craft_zip(const char *path, const centry *ents, size_t n)
{
    struct archive *a = archive_write_new();
    if (!a) return -1;
    int rc = -1;
    if (archive_write_set_format_zip(a) != ARCHIVE_OK ||
        archive_write_open_filename(a, path) != ARCHIVE_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, ents[i].name);
        archive_entry_set_filetype(e, ents[i].type);
        archive_entry_set_perm(e, ents[i].type == AE_IFDIR ? 0755 : 0644);
        if (ents[i].link) archive_entry_set_symlink(e, ents[i].link);
        size_t len = ents[i].data ? strlen(ents[i].data) : 0;
        archive_entry_set_size(e, (la_int64_t)len);
        int r = archive_write_header(a, e);
        archive_entry_free(e);
        if (r != ARCHIVE_OK) goto out;
        if (len && archive_write_data(a, ents[i].data, len) != (la_ssize_t)len) goto out;
    }
    rc = archive_write_close(a) == ARCHIVE_OK ? 0 : -1;
out:
    archive_write_free(a);
    return rc;
}

/* Rewrites the Unix mode (external attributes) of entry name in the
 * central directory of the ZIP at path. */
static int patch_zip_mode(const char *path, const char *name, uint32_t mode)
{
    size_t len, nl = strlen(name);
    uint8_t *b = slurp(path, &len);
    if (!b) return -1;
    int rc = -1;
    for (size_t i = 0; i + 46 + nl <= len; i++) {
        if (memcmp(b + i, "PK\1\2", 4)) continue;
        size_t fnl = b[i + 28] | (size_t)b[i + 29] << 8;
        if (fnl != nl || memcmp(b + i + 46, name, nl)) continue;
        b[i + 5] = 3; /* made by Unix */
        uint32_t attr = mode << 16;
        for (int k = 0; k < 4; k++) b[i + 38 + k] = (uint8_t)(attr >> (8 * k));
        rc = spit(path, b, len);
        break;
    }
    cr_free(b);
    return rc;
}

/* ---- SHA-256 ----------------------------------------------------------- */

static int hex_of(const char *s, const char *want)
{
    char hex[65];
    cr_sha256_hex(s, strlen(s), hex);
    if (strcmp(hex, want)) {
        fprintf(stderr, "    sha256(\"%.20s...\") = %s, want %s\n", s, hex, want);
        return 0;
    }
    return 1;
}

TEST(test_sha256_vectors)
{
    CHECK(hex_of("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    CHECK(hex_of("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    CHECK(hex_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    CHECK(hex_of("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                 "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
                 "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"));
    /* One million 'a' in uneven chunks, crossing block boundaries. */
    static const size_t chunks[] = {1, 7, 63, 64, 65, 1000, 4096};
    char a[4096];
    memset(a, 'a', sizeof a);
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        cr_sha256 ctx;
        cr_sha256_init(&ctx);
        size_t left = 1000000;
        while (left) {
            size_t n = left < chunks[c] ? left : chunks[c];
            cr_sha256_update(&ctx, a, n);
            left -= n;
        }
        uint8_t d[32];
        char hex[65];
        cr_sha256_final(&ctx, d);
        cr_sha256_to_hex(d, hex);
        CHECK_MSG(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
                  "chunk %zu: %s", chunks[c], hex);
    }
    /* Padding edge cases: lengths 55, 56, 64 against a one-byte-at-a-time
     * reference of the same data. */
    for (size_t len = 50; len < 130; len++) {
        char one[65], bulk[65];
        cr_sha256 ctx;
        uint8_t d[32];
        cr_sha256_init(&ctx);
        for (size_t i = 0; i < len; i++) cr_sha256_update(&ctx, a, 1);
        cr_sha256_final(&ctx, d);
        cr_sha256_to_hex(d, one);
        cr_sha256_hex(a, len, bulk);
        CHECK(!strcmp(one, bulk));
    }
    return TEST_PASS;
}

TEST(test_sha256_file)
{
    const char *dir = test_tmpdir();
    CHECK(test_write(tpath(dir, "f"), "abc") == 0);
    char hex[65];
    CHECK(cr_sha256_file(tpath(dir, "f"), hex) == 0);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    CHECK(cr_sha256_file(tpath(dir, "nope"), hex) == -1);
    CHECK(cr_sha256_file(dir, hex) == -1);
    return TEST_PASS;
}

/* ---- JSON ----------------------------------------------------------- */

static jv *parse(const char *s)
{
    char err[256];
    return jv_parse(s, strlen(s), err, sizeof err);
}

TEST(test_json_valid)
{
    const char *doc =
        " {\"a\": 1, \"b\": [true, false, null, -0.5e2, \"x\"], \"c\": {\"d\": {}},"
        " \"e\": [], \"n\": 12345678901, \"z\": \"\"}\n";
    char err[256];
    jv *v = jv_parse(doc, strlen(doc), err, sizeof err);
    CHECK_MSG(v, "%s", err);
    CHECK(jv_typeof(v) == JV_OBJ);
    CHECK(jv_len(v) == 6);
    CHECK(!strcmp(jv_key_at(v, 0), "a") && !strcmp(jv_key_at(v, 5), "z"));
    CHECK(jv_key_at(v, 6) == NULL);
    CHECK(jv_num(jv_get(v, "a"), 0) == 1);
    CHECK(jv_num(jv_val_at(v, 0), 0) == 1);
    CHECK(jv_num(jv_get(v, "n"), 0) == 12345678901.0);
    const jv *b = jv_get(v, "b");
    CHECK(jv_typeof(b) == JV_ARR && jv_len(b) == 5);
    CHECK(jv_bool(jv_at(b, 0), -1) == 1 && jv_bool(jv_at(b, 1), -1) == 0);
    CHECK(jv_typeof(jv_at(b, 2)) == JV_NULL && jv_at(b, 2) != NULL);
    CHECK(jv_num(jv_at(b, 3), 0) == -50);
    CHECK(!strcmp(jv_str(jv_at(b, 4)), "x"));
    CHECK(jv_at(b, 5) == NULL);
    CHECK(jv_typeof(jv_get(jv_get(v, "c"), "d")) == JV_OBJ);
    CHECK(jv_len(jv_get(v, "e")) == 0);
    CHECK(jv_str(jv_get(v, "z")) && !*jv_str(jv_get(v, "z")));
    /* wrong types and missing keys */
    CHECK(jv_get(v, "missing") == NULL);
    CHECK(jv_get(b, "a") == NULL);
    CHECK(jv_at(v, 0) == NULL);
    CHECK(jv_str(jv_get(v, "a")) == NULL);
    CHECK(jv_num(jv_get(v, "b"), 7) == 7);
    CHECK(jv_bool(NULL, 3) == 3);
    CHECK(jv_typeof(NULL) == JV_NULL && jv_len(NULL) == 0 && jv_get(NULL, "a") == NULL);
    /* round trip through jv_dump */
    jbuf out;
    jb_init(&out);
    jv_dump(&out, v);
    CHECK(!out.err);
    jv *v2 = jv_parse(out.s, out.len, err, sizeof err);
    CHECK_MSG(v2, "%s", err);
    CHECK(jv_num(jv_at(jv_get(v2, "b"), 3), 0) == -50);
    jv_free(v2);
    jb_free(&out);
    jv_free(v);
    /* scalars at top level; input not NUL-terminated (len excludes junk) */
    const char buf[] = "42garbage";
    v = jv_parse(buf, 2, err, sizeof err);
    CHECK(v && jv_num(v, 0) == 42);
    jv_free(v);
    v = parse("\"s\"");
    CHECK(v && !strcmp(jv_str(v), "s") && jv_len(v) == 1);
    jv_free(v);
    /* many keys: lookup by binary search */
    jbuf big;
    jb_init(&big);
    jb_putc(&big, '{');
    for (int i = 0; i < 2000; i++) jb_printf(&big, "%s\"k%d\":%d", i ? "," : "", i, i);
    jb_putc(&big, '}');
    v = jv_parse(big.s, big.len, err, sizeof err);
    CHECK(v);
    for (int i = 0; i < 2000; i += 37) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        CHECK(jv_num(jv_get(v, k), -1) == i);
    }
    jv_free(v);
    jb_free(&big);
    jv_free(NULL);
    return TEST_PASS;
}

TEST(test_json_escapes)
{
    jv *v = parse("[\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\", \"\\u00e9\\u20AC\", "
                  "\"\\ud83d\\ude00\", \"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"]");
    CHECK(v);
    CHECK(!strcmp(jv_str(jv_at(v, 0)), "a\"b\\c/d\b\f\n\r\t"));
    CHECK(!strcmp(jv_str(jv_at(v, 1)), "\xc3\xa9\xe2\x82\xac"));
    CHECK(!strcmp(jv_str(jv_at(v, 2)), "\xf0\x9f\x98\x80"));
    CHECK(jv_len(jv_at(v, 2)) == 4);
    CHECK(!strcmp(jv_str(jv_at(v, 3)), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
    jv_free(v);
    /* escaped keys */
    v = parse("{\"k\\u0041\": 1}");
    CHECK(v && jv_num(jv_get(v, "kA"), 0) == 1);
    jv_free(v);
    return TEST_PASS;
}

TEST(test_json_depth)
{
    char buf[300];
    char err[256];
    for (int depth = 60; depth <= 70; depth++) {
        int n = 0;
        for (int i = 0; i < depth; i++) buf[n++] = '[';
        for (int i = 0; i < depth; i++) buf[n++] = ']';
        jv *v = jv_parse(buf, (size_t)n, err, sizeof err);
        if (depth <= JV_MAX_DEPTH)
            CHECK_MSG(v != NULL, "depth %d: %s", depth, err);
        else
            CHECK_MSG(v == NULL && test_contains(err, "nesting"), "depth %d", depth);
        jv_free(v);
    }
    /* mixed objects/arrays */
    jbuf b;
    jb_init(&b);
    for (int i = 0; i < 65; i++) jb_puts(&b, "{\"a\":[");
    CHECK(jv_parse(b.s, b.len, err, sizeof err) == NULL);
    jb_free(&b);
    /* a huge nesting attempt must not recurse deeply */
    size_t big = 1000000;
    char *deep = malloc(big);
    CHECK(deep);
    memset(deep, '[', big);
    CHECK(jv_parse(deep, big, err, sizeof err) == NULL);
    free(deep);
    return TEST_PASS;
}

TEST(test_json_rejects_bad)
{
    static const char *bad[] = {
        "", " ", "{", "}", "[", "]", "[1,]", "[,1]", "{\"a\":1,}", "{\"a\" 1}",
        "{a:1}", "{'a':1}", "[1 2]", "nul", "tru", "falsey", "01", "1.", ".5",
        "+1", "-", "1e", "1e+", "0x10", "1e999", "-1e999", "NaN", "Infinity",
        "\"abc", "\"a\\\"", "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"",
        "\"\\ud83d\"", "\"\\ude00\"", "\"\\ud83d\\u0041\"", "\"\\u0000\"",
        "\"a\tb\"", "\"a\nb\"", "\"\xff\"", "\"\xc3\"", "\"\xc0\xaf\"",
        "\"\xe0\x80\xaf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"",
        "{\"a\":1,\"a\":2}", "[1] [2]", "1 x", "\"a\\", "[\"a\\",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        jv *v = jv_parse(bad[i], strlen(bad[i]), err, sizeof err);
        CHECK_MSG(v == NULL, "accepted bad JSON #%zu: %s", i, bad[i]);
        CHECK_MSG(err[0], "no message for #%zu", i);
    }
    char err[256];
    CHECK(jv_parse(NULL, 0, err, sizeof err) == NULL);
    CHECK(jv_parse("[1,", 3, NULL, 0) == NULL); /* no error buffer */
    jv *v = jv_parse("{\"x\": [1,\n 2,, 3]}", 18, err, sizeof err);
    CHECK(v == NULL && test_contains(err, "line 2"));
    /* every truncation of a valid document is rejected */
    const char *doc = "{\"a\": [1, 2.5e3, \"x\\u00e9\\ud83d\\ude00\", {\"b\": null}], "
                      "\"c\": true, \"d\": false}";
    for (size_t n = 0; n < strlen(doc); n++) {
        v = jv_parse(doc, n, err, sizeof err);
        CHECK_MSG(v == NULL, "truncation at %zu accepted", n);
    }
    v = jv_parse(doc, strlen(doc), err, sizeof err);
    CHECK_MSG(v, "%s", err);
    jv_free(v);
    return TEST_PASS;
}

TEST(test_json_garbage_no_crash)
{
    /* Random bytes and random mutations of a valid document must never
     * crash (ASan/UBSan builds check the memory accesses). */
    const char *doc = "{\"format\":\"tptpkg\",\"artifacts\":[{\"name\":\"ir.txt\","
                      "\"size\":12,\"sha256\":\"ab\\u00e9\"}],\"x\":[[[-1.5e-3]]]}";
    size_t dl = strlen(doc);
    char buf[256];
    uint32_t x = 12345;
    int parsed = 0;
    for (int iter = 0; iter < 20000; iter++) {
        size_t n;
        if (iter & 1) {
            memcpy(buf, doc, dl);
            n = dl;
            for (int k = 0; k < 1 + iter % 3; k++) {
                x = x * 1103515245u + 12345u;
                size_t pos = (x >> 8) % n;
                x = x * 1103515245u + 12345u;
                buf[pos] = (char)(x >> 16);
            }
            x = x * 1103515245u + 12345u;
            if ((x >> 20) % 4 == 0) n = (x >> 4) % n;
        } else {
            x = x * 1103515245u + 12345u;
            n = (x >> 8) % sizeof buf;
            for (size_t i = 0; i < n; i++) {
                x = x * 1103515245u + 12345u;
                static const char alpha[] = "{}[],:\"\\ u0123456789abcdefeE+-.tnulrsf\x80\xc3\xff";
                buf[i] = alpha[(x >> 16) % (sizeof alpha - 1)];
            }
        }
        char err[128];
        /* parse from a heap copy of exactly n bytes so ASan sees overreads */
        char *h = malloc(n ? n : 1);
        CHECK(h);
        memcpy(h, buf, n);
        jv *v = jv_parse(h, n, err, sizeof err);
        if (v) {
            parsed++;
            jbuf b;
            jb_init(&b);
            jv_dump(&b, v);
            jb_free(&b);
            jv_free(v);
        } else {
            CHECK(err[0]);
        }
        free(h);
    }
    CHECK(parsed > 0); /* some mutations stay valid */
    return TEST_PASS;
}

/* ---- package: writing and inspecting ------------------------------------- */

TEST(test_package_roundtrip)
{
    const char *dir = test_tmpdir();
    const char *pkg = tpath(dir, "out.tptpkg");
    char err[1024];
    CHECK_MSG(make_package(dir, pkg, err, sizeof err) == 0, "%s", err);
    CHECK(cr_is_file(pkg));
    CHECK(dir_entries(dir) == 2); /* the package and the source file: no temp */
    jbuf h, j;
    jb_init(&h);
    jb_init(&j);
    int rc = pkg_inspect(pkg, &h, &j, err, sizeof err);
    CHECK_MSG(rc == 0, "rc %d: %s\n%s", rc, err, h.s);
    CHECK(test_contains(h.s, "ok  "));
    CHECK(test_contains(h.s, "  ir.txt\n"));
    CHECK(test_contains(h.s, "  targets/fpga-demo/bitstream.bin\n"));
    CHECK(test_contains(h.s, "  reports/resources.json\n"));
    CHECK(test_contains(h.s, "fpga-demo 1.2.3"));
    CHECK(test_contains(h.s, "yosys 0.40"));
    CHECK(test_contains(h.s, "net.onnx"));
    CHECK(test_contains(h.s, "crucible " CRUCIBLE_VERSION));
    CHECK(!test_contains(h.s, "BAD"));
    char ir_sha[65];
    cr_sha256_hex(IR_TEXT, strlen(IR_TEXT), ir_sha);

    jv *v = jv_parse(j.s, j.len, err, sizeof err);
    CHECK_MSG(v, "inspect JSON invalid: %s\n%s", err, j.s);
    CHECK(jv_bool(jv_get(v, "ok"), 0) == 1);
    CHECK(!strcmp(jv_str(jv_get(v, "path")), pkg));
    CHECK(!strcmp(jv_str(jv_get(v, "seal")), "ok"));
    const jv *m = jv_get(v, "manifest");
    CHECK(!strcmp(jv_str(jv_get(m, "format")), "tptpkg"));
    CHECK(jv_num(jv_get(m, "format_version"), 0) == 1);
    CHECK(!strcmp(jv_str(jv_get(m, "crucible_version")), CRUCIBLE_VERSION));
    CHECK(!strcmp(jv_str(jv_get(jv_get(m, "model"), "path")), "net.onnx"));
    CHECK(jv_len(jv_get(m, "artifacts")) == 3);
    const jv *ents = jv_get(v, "entries");
    CHECK(jv_len(ents) == 3);
    for (size_t i = 0; i < 3; i++)
        CHECK(!strcmp(jv_str(jv_get(jv_at(ents, i), "status")), "ok"));
    CHECK(!strcmp(jv_str(jv_get(jv_at(ents, 0), "name")), "ir.txt"));
    CHECK(!strcmp(jv_str(jv_get(jv_at(ents, 0), "sha256")), ir_sha));
    CHECK(jv_num(jv_get(jv_at(ents, 0), "size"), 0) == (double)strlen(IR_TEXT));
    CHECK(jv_num(jv_get(jv_at(ents, 1), "size"), 0) == RAND_LEN);
    CHECK(jv_len(jv_get(v, "errors")) == 0);
    jv_free(v);
    jb_free(&h);
    jb_free(&j);

    /* NULL outputs are fine */
    CHECK(pkg_inspect(pkg, NULL, NULL, err, sizeof err) == 0);

    /* The package is a plain ZIP whose last entry is manifest.json. */
    struct archive *a = archive_read_new();
    archive_read_support_format_zip(a);
    CHECK(archive_read_open_filename(a, pkg, 4096) == ARCHIVE_OK);
    struct archive_entry *e;
    const char *last = NULL;
    static char lastname[300];
    int n = 0;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        snprintf(lastname, sizeof lastname, "%s", archive_entry_pathname(e));
        last = lastname;
        n++;
    }
    archive_read_free(a);
    CHECK(n == 4 && last && !strcmp(last, "manifest.json"));

    /* An empty package (no artifacts, no extra members) is valid too. */
    const char *pkg2 = tpath(dir, "empty.tptpkg");
    pkg_writer *w = pkg_writer_open(pkg2, err, sizeof err);
    CHECK(w);
    CHECK(pkg_writer_commit(w, "  \n", err, sizeof err) == 0);
    CHECK(pkg_inspect(pkg2, NULL, NULL, err, sizeof err) == 0);
    return TEST_PASS;
}

TEST(test_package_reproducible)
{
    const char *d1 = test_tmpdir();
    char p1[1024];
    keep(p1, tpath(d1, "a.tptpkg"));
    char err[1024];
    CHECK_MSG(make_package(d1, p1, err, sizeof err) == 0, "%s", err);
    const char *d2 = test_tmpdir();
    char p2[1024];
    keep(p2, tpath(d2, "b.tptpkg"));
    /* a different time zone must not change the bytes */
    const char *oldtz = getenv("TZ");
    char *saved = oldtz ? strdup(oldtz) : NULL;
    setenv("TZ", "Pacific/Kiritimati", 1);
    tzset();
    int rc = make_package(d2, p2, err, sizeof err);
    if (saved) {
        setenv("TZ", saved, 1);
        free(saved);
    } else {
        unsetenv("TZ");
    }
    tzset();
    CHECK_MSG(rc == 0, "%s", err);
    size_t l1, l2;
    uint8_t *b1 = slurp(p1, &l1), *b2 = slurp(p2, &l2);
    CHECK(b1 && b2);
    int same = l1 == l2 && !memcmp(b1, b2, l1);
    cr_free(b1);
    cr_free(b2);
    CHECK(same);
    return TEST_PASS;
}

TEST(test_package_names)
{
    const char *dir = test_tmpdir();
    const char *pkg = tpath(dir, "n.tptpkg");
    char err[1024];
    pkg_writer *w = pkg_writer_open(pkg, err, sizeof err);
    CHECK_MSG(w, "%s", err);
    char longname[300];
    memset(longname, 'x', 256);
    longname[256] = 0;
    static const char *bad[] = {
        "", "/abs", "a//b", "a/", "./a", "a/./b", "..", "../x", "a/../b", "a/..",
        ".", "a\\b", "manifest.json", "a\nb", "caf\xc3\xa9", "tab\there", "del\x7f",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_MSG(pkg_add(w, bad[i], "x", 1) == -1, "accepted '%s'", bad[i]);
        CHECK(pkg_writer_error(w)[0]);
    }
    CHECK(pkg_add(w, longname, "x", 1) == -1);
    CHECK(pkg_add(w, NULL, "x", 1) == -1);
    longname[255] = 0;
    CHECK_MSG(pkg_add(w, longname, "x", 1) == 0, "%s", pkg_writer_error(w));
    /* the writer stays usable after refused names */
    CHECK(pkg_add(w, "a/b", "1", 1) == 0);
    CHECK(pkg_add(w, "a/b", "2", 1) == -1 && test_contains(pkg_writer_error(w), "duplicate"));
    CHECK(pkg_add(w, "a", "3", 1) == -1);      /* a is a folder */
    CHECK(pkg_add(w, "a/b/c", "4", 1) == -1);  /* a/b is a file */
    CHECK(pkg_add(w, "a/c", "5", 1) == 0);
    CHECK(pkg_add(w, "dir/manifest.json", "6", 1) == 0);
    CHECK(pkg_add(w, "with space and (parens).txt", "", 0) == 0);
    CHECK(pkg_add_file(w, "missing", tpath(dir, "no-such-file")) == -1);
    CHECK(pkg_add_file(w, "adir", dir) == -1);
    CHECK(pkg_writer_error(w)[0]);
    CHECK_MSG(pkg_writer_commit(w, NULL, err, sizeof err) == 0, "%s", err);
    jbuf h;
    jb_init(&h);
    int rc = pkg_inspect(pkg, &h, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s\n%s", err, h.s);
    CHECK(test_contains(h.s, "with space and (parens).txt"));
    jb_free(&h);
    char why[128];
    CHECK(pkg_check_name("targets/x/y.v", why, sizeof why) == 0);
    CHECK(pkg_check_name("../y", why, sizeof why) == -1 && why[0]);
    return TEST_PASS;
}

TEST(test_package_commit_failure)
{
    const char *dir = test_tmpdir();
    char err[1024];
    /* final path in a folder that does not exist: open fails, nothing made */
    err[0] = 0;
    CHECK(pkg_writer_open(tpath(dir, "nodir/x.tptpkg"), err, sizeof err) == NULL);
    CHECK(err[0]);
    CHECK(dir_entries(dir) == 0);

    /* abort removes the temporary file */
    pkg_writer *w = pkg_writer_open(tpath(dir, "a.tptpkg"), err, sizeof err);
    CHECK(w);
    CHECK(dir_entries(dir) == 1); /* the temp file */
    CHECK(pkg_add(w, "ir.txt", "x", 1) == 0);
    pkg_writer_abort(w);
    CHECK(dir_entries(dir) == 0);
    pkg_writer_abort(NULL);

    /* invalid extra JSON: commit fails, no final file, no temp file */
    w = pkg_writer_open(tpath(dir, "b.tptpkg"), err, sizeof err);
    CHECK(w);
    CHECK(pkg_add(w, "ir.txt", "x", 1) == 0);
    err[0] = 0;
    CHECK(pkg_writer_commit(w, "\"model\": {", err, sizeof err) == -1);
    CHECK(err[0]);
    CHECK(dir_entries(dir) == 0);

    /* extra members clashing with reserved ones are refused */
    w = pkg_writer_open(tpath(dir, "b.tptpkg"), err, sizeof err);
    CHECK(w);
    CHECK(pkg_writer_commit(w, "\"format\": \"zip\"", err, sizeof err) == -1);
    CHECK(dir_entries(dir) == 0);

    /* a failed commit does not replace an existing package */
    const char *final = tpath(dir, "c.tptpkg");
    CHECK(test_write(final, "old contents") == 0);
    w = pkg_writer_open(final, err, sizeof err);
    CHECK(w);
    CHECK(pkg_add(w, "ir.txt", "x", 1) == 0);
    CHECK(pkg_writer_commit(w, "]", err, sizeof err) == -1);
    CHECK(dir_entries(dir) == 1);
    size_t len;
    uint8_t *b = slurp(final, &len);
    CHECK(b && len == 12 && !memcmp(b, "old contents", 12));
    cr_free(b);

    /* ... and a successful one does, atomically */
    w = pkg_writer_open(final, err, sizeof err);
    CHECK(w);
    CHECK(pkg_add(w, "ir.txt", "x", 1) == 0);
    CHECK_MSG(pkg_writer_commit(w, "", err, sizeof err) == 0, "%s", err);
    CHECK(dir_entries(dir) == 1);
    CHECK(pkg_inspect(final, NULL, NULL, err, sizeof err) == 0);

    /* commit of NULL */
    CHECK(pkg_writer_commit(NULL, NULL, err, sizeof err) == -1);
    return TEST_PASS;
}

/* ---- package: damage ------------------------------------------------------ */

TEST(test_package_flip_every_byte)
{
    const char *dir = test_tmpdir();
    const char *pkg = tpath(dir, "p.tptpkg");
    char err[1024];
    CHECK_MSG(make_package(dir, pkg, err, sizeof err) == 0, "%s", err);
    size_t len;
    uint8_t *orig = slurp(pkg, &len);
    CHECK(orig);
    const char *bad = tpath(dir, "bad.tptpkg");
    CHECK(spit(bad, orig, len) == 0);
    int fd = open(bad, O_WRONLY);
    CHECK(fd >= 0);
    static const uint8_t masks[] = {0xff, 0x01, 0x20, 0x80};
    int counts[3] = {0, 0, 0};
    for (size_t off = 0; off < len; off++) {
        for (size_t k = 0; k < sizeof masks; k++) {
            /* all masks over the small text areas, one elsewhere is
             * plenty and keeps the test fast */
            if (k && off % 7) continue;
            uint8_t c = orig[off] ^ masks[k];
            CHECK(pwrite(fd, &c, 1, (off_t)off) == 1);
            jbuf h, j;
            jb_init(&h);
            jb_init(&j);
            err[0] = 0;
            int rc = pkg_inspect(bad, &h, &j, err, sizeof err);
            CHECK_MSG(rc != 0, "flip 0x%02x at offset %zu of %zu not detected", masks[k], off, len);
            CHECK(rc == 1 || rc == -1);
            CHECK_MSG(err[0], "no error message at offset %zu", off);
            jv *v = jv_parse(j.s, j.len, NULL, 0);
            CHECK_MSG(v && jv_bool(jv_get(v, "ok"), 1) == 0, "bad JSON report at %zu", off);
            jv_free(v);
            counts[rc + 1]++;
            jb_free(&h);
            jb_free(&j);
            CHECK(pwrite(fd, &orig[off], 1, (off_t)off) == 1);
        }
    }
    close(fd);
    CHECK(pkg_inspect(bad, NULL, NULL, err, sizeof err) == 0); /* restored */
    cr_free(orig);
    if (getenv("CR_TEST_VERBOSE"))
        fprintf(stderr, "    %zu bytes: %d unreadable, %d failed verification\n", len,
                counts[0], counts[2]);
    return TEST_PASS;
}

/* Offset of the data of the (first) local entry called name, or -1. */
static long entry_data_offset(const uint8_t *b, size_t len, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + 30 + nl <= len; i++) {
        if (memcmp(b + i, "PK\3\4", 4)) continue;
        size_t fnl = b[i + 26] | (size_t)b[i + 27] << 8;
        size_t xl = b[i + 28] | (size_t)b[i + 29] << 8;
        if (fnl == nl && !memcmp(b + i + 30, name, nl)) return (long)(i + 30 + fnl + xl);
    }
    return -1;
}

TEST(test_package_flip_artifact_data)
{
    const char *dir = test_tmpdir();
    const char *pkg = tpath(dir, "p.tptpkg");
    char err[1024];
    CHECK_MSG(make_package(dir, pkg, err, sizeof err) == 0, "%s", err);
    size_t len;
    uint8_t *orig = slurp(pkg, &len);
    CHECK(orig);
    static const char *names[] = {"targets/fpga-demo/bitstream.bin", "ir.txt",
                                  "reports/resources.json"};
    for (size_t k = 0; k < 3; k++) {
        long off = entry_data_offset(orig, len, names[k]);
        CHECK_MSG(off > 0, "entry %s not found", names[k]);
        /* a few positions in the (compressed) data */
        for (long d = 11; d < 30; d += 9) {
            uint8_t *copy = malloc(len);
            CHECK(copy);
            memcpy(copy, orig, len);
            copy[off + d] ^= 0x10;
            const char *bad = tpath(dir, "bad.tptpkg");
            CHECK(spit(bad, copy, len) == 0);
            free(copy);
            jbuf h, j;
            jb_init(&h);
            jb_init(&j);
            int rc = pkg_inspect(bad, &h, &j, err, sizeof err);
            CHECK(rc != 0);
            /* the damaged entry is named */
            char want[300];
            snprintf(want, sizeof want, "BAD %s:", names[k]);
            CHECK_MSG(test_contains(h.s, want) || (rc == -1 && test_contains(err, names[k])),
                      "rc %d, %s not named:\n%s\nerr: %s", rc, names[k], h.s, err);
            if (rc == 1) {
                jv *v = jv_parse(j.s, j.len, NULL, 0);
                CHECK(v);
                const jv *ents = jv_get(v, "entries");
                int named = 0;
                for (size_t i = 0; i < jv_len(ents); i++) {
                    const jv *e = jv_at(ents, i);
                    if (!strcmp(jv_str(jv_get(e, "name")), names[k]) &&
                        strcmp(jv_str(jv_get(e, "status")), "ok"))
                        named = 1;
                }
                jv_free(v);
                CHECK(named);
            }
            if (k == 0 && d == 20) /* in a stored deflate block: a hash mismatch */
                CHECK_MSG(rc == 1 && test_contains(h.s, "sha256 mismatch (manifest "),
                          "%s", h.s);
            jb_free(&h);
            jb_free(&j);
        }
    }
    cr_free(orig);
    return TEST_PASS;
}

TEST(test_package_truncated_and_garbage)
{
    const char *dir = test_tmpdir();
    const char *pkg = tpath(dir, "p.tptpkg");
    char err[1024];
    CHECK_MSG(make_package(dir, pkg, err, sizeof err) == 0, "%s", err);
    size_t len;
    uint8_t *orig = slurp(pkg, &len);
    CHECK(orig);
    const char *bad = tpath(dir, "bad.tptpkg");
    for (size_t n = 0; n < len; n += (n < 64 || n > len - 200) ? 1 : 13) {
        CHECK(spit(bad, orig, n) == 0);
        jbuf j;
        jb_init(&j);
        int rc = pkg_inspect(bad, NULL, &j, err, sizeof err);
        CHECK_MSG(rc != 0, "truncation to %zu bytes accepted", n);
        jv *v = jv_parse(j.s, j.len, NULL, 0);
        CHECK(v);
        jv_free(v);
        jb_free(&j);
    }
    cr_free(orig);
    /* not a zip, a folder, a missing file */
    CHECK(test_write(bad, "this is not a zip file at all\n") == 0);
    err[0] = 0;
    CHECK(pkg_inspect(bad, NULL, NULL, err, sizeof err) == -1 && err[0]);
    CHECK(pkg_inspect(dir, NULL, NULL, err, sizeof err) == -1);
    CHECK(pkg_inspect(tpath(dir, "nope"), NULL, NULL, err, sizeof err) == -1);
    /* a zip without a manifest */
    centry plain[] = {{"a.txt", "hello", AE_IFREG, NULL}};
    CHECK(craft_zip(bad, plain, 1) == 0);
    CHECK(pkg_inspect(bad, NULL, NULL, err, sizeof err) == -1);
    CHECK(test_contains(err, "manifest"));
    /* bad manifests */
    static const char *manifests[] = {
        "not json",
        "[]",
        "{\"format\":\"zip\",\"format_version\":1,\"crucible_version\":\"1\",\"artifacts\":[]}",
        "{\"format\":\"tptpkg\",\"format_version\":2,\"crucible_version\":\"1\",\"artifacts\":[]}",
        "{\"format\":\"tptpkg\",\"format_version\":1,\"crucible_version\":\"1\"}",
        ("{\"format\":\"tptpkg\",\"format_version\":1,\"crucible_version\":\"1\","
         "\"artifacts\":[{\"name\":\"../x\",\"size\":1,\"sha256\":\""
         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"}]}"),
        ("{\"format\":\"tptpkg\",\"format_version\":1,\"crucible_version\":\"1\","
         "\"artifacts\":[{\"name\":\"x\",\"size\":-1,\"sha256\":\""
         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"}]}"),
        ("{\"format\":\"tptpkg\",\"format_version\":1,\"crucible_version\":\"1\","
         "\"artifacts\":[{\"name\":\"x\",\"size\":0,\"sha256\":\"E3B0\"}]}"),
    };
    for (size_t i = 0; i < sizeof manifests / sizeof manifests[0]; i++) {
        centry ents[] = {{"manifest.json", manifests[i], AE_IFREG, NULL}};
        CHECK(craft_zip(bad, ents, 1) == 0);
        err[0] = 0;
        jbuf h;
        jb_init(&h);
        CHECK_MSG(pkg_inspect(bad, &h, NULL, err, sizeof err) == -1, "manifest %zu accepted", i);
        CHECK(test_contains(h.s, "UNREADABLE"));
        jb_free(&h);
        CHECK(err[0]);
    }
    return TEST_PASS;
}

TEST(test_package_missing_and_unlisted)
{
    const char *dir = test_tmpdir();
    const char *bad = tpath(dir, "m.tptpkg");
    char sha_a[65], manifest[1024];
    cr_sha256_hex("AAA", 3, sha_a);
    snprintf(manifest, sizeof manifest,
             "{\"format\":\"tptpkg\",\"format_version\":1,\"crucible_version\":\"x\","
             "\"model\":{\"path\":\"evil\\u001b[2J\\u0007\"},"
             "\"plugins\":{\"p1\":\"1.0\",\"p2\":\"2.0\"},"
             "\"artifacts\":[{\"name\":\"a\",\"size\":3,\"sha256\":\"%s\"},"
             "{\"name\":\"b\",\"size\":3,\"sha256\":\"%s\"},"
             "{\"name\":\"d\",\"size\":3,\"sha256\":\"%s\"}]}",
             sha_a, sha_a, sha_a);
    centry ents[] = {
        {"a", "AAA", AE_IFREG, NULL},
        {"c", "CCC", AE_IFREG, NULL},
        {"d", "DDD", AE_IFREG, NULL},
        {"manifest.json", manifest, AE_IFREG, NULL},
    };
    CHECK(craft_zip(bad, ents, 4) == 0);
    jbuf h, j;
    jb_init(&h);
    jb_init(&j);
    char err[1024];
    int rc = pkg_inspect(bad, &h, &j, err, sizeof err);
    CHECK_MSG(rc == 1, "rc %d: %s", rc, err);
    CHECK_MSG(test_contains(h.s, "ok           3  a\n"), "%s", h.s);
    CHECK(test_contains(h.s, "BAD b: missing"));
    CHECK(test_contains(h.s, "BAD c: not in manifest"));
    CHECK(test_contains(h.s, "BAD d: sha256 mismatch (manifest "));
    CHECK(test_contains(h.s, "seal     the package seal"));
    CHECK(test_contains(h.s, "model    evil?[2J?\n"));   /* no terminal escapes */
    CHECK(test_contains(h.s, "plugins  p1 1.0, p2 2.0\n"));
    jv *v = jv_parse(j.s, j.len, err, sizeof err);
    CHECK_MSG(v, "%s", err);
    const jv *e = jv_get(v, "entries");
    CHECK(jv_len(e) == 4);
    CHECK(!strcmp(jv_str(jv_get(jv_at(e, 0), "status")), "ok"));
    CHECK(!strcmp(jv_str(jv_get(jv_at(e, 1), "status")), "missing"));
    CHECK(!strcmp(jv_str(jv_get(jv_at(e, 2), "status")), "mismatch"));
    CHECK(!strcmp(jv_str(jv_get(jv_at(e, 2), "expected_sha256")), sha_a));
    CHECK(!strcmp(jv_str(jv_get(jv_at(e, 3), "name")), "c"));
    CHECK(!strcmp(jv_str(jv_get(jv_at(e, 3), "status")), "unlisted"));
    CHECK(!strcmp(jv_str(jv_get(v, "seal")), "missing"));
    CHECK(jv_len(jv_get(v, "errors")) == 4);
    jv_free(v);
    jb_free(&h);
    jb_free(&j);
    return TEST_PASS;
}

/* ---- package: extraction ------------------------------------------------- */

static int same_file(const char *path, const void *data, size_t len)
{
    size_t n;
    uint8_t *b = slurp(path, &n);
    int same = b && n == len && !memcmp(b, data, len);
    cr_free(b);
    return same;
}

TEST(test_package_extract_good)
{
    const char *dir = test_tmpdir();
    char pkg[1024], out[1024];
    keep(pkg, tpath(dir, "p.tptpkg"));
    keep(out, tpath(dir, "out/deeper"));
    char err[1024];
    CHECK_MSG(make_package(dir, pkg, err, sizeof err) == 0, "%s", err);
    CHECK_MSG(pkg_extract(pkg, out, err, sizeof err) == 0, "%s", err);
    uint8_t rnd[RAND_LEN];
    fill_random(rnd, sizeof rnd, 7);
    CHECK(same_file(tpath(out, "ir.txt"), IR_TEXT, strlen(IR_TEXT)));
    CHECK(same_file(tpath(out, "targets/fpga-demo/bitstream.bin"), rnd, sizeof rnd));
    CHECK(same_file(tpath(out, "reports/resources.json"), REPORT_JSON, strlen(REPORT_JSON)));
    CHECK(cr_is_file(tpath(out, "manifest.json")));
    CHECK(dir_entries(out) == 4);
    /* extracting again over the same files is refused; nothing changes */
    CHECK(test_write(tpath(out, "ir.txt"), "edited") == 0);
    err[0] = 0;
    CHECK(pkg_extract(pkg, out, err, sizeof err) == -1);
    CHECK_MSG(test_contains(err, "already exists"), "%s", err);
    CHECK(same_file(tpath(out, "ir.txt"), "edited", 6));
    CHECK(dir_entries(out) == 4);
    return TEST_PASS;
}

TEST(test_package_extract_refuses_unsafe)
{
    const char *dir = test_tmpdir();
    char root[1024];
    keep(root, dir);
    char zip[1024], out[1024];
    keep(zip, tpath(root, "evil.zip"));
    keep(out, tpath(root, "sub/out"));
    struct {
        centry bad;
        const char *named;
    } cases[] = {
        {{"../evil", "pwned", AE_IFREG, NULL}, "../evil"},
        {{"good/../../evil", "pwned", AE_IFREG, NULL}, "good/../../evil"},
        {{"/abs", "pwned", AE_IFREG, NULL}, "/abs"},
        {{"link", NULL, AE_IFLNK, "/etc/passwd"}, "link"},
        {{"uplink", NULL, AE_IFLNK, "../.."}, "uplink"},
        /* device/socket modes are patched in below (the ZIP writer
         * refuses them; libarchive's ZIP reader reports FIFO modes as
         * regular files, so a fifo cannot reach the extractor) */
        {{"chardev", "", AE_IFREG, NULL}, "chardev"},
        {{"blockdev", "", AE_IFREG, NULL}, "blockdev"},
        {{"socket", "", AE_IFREG, NULL}, "socket"},
        {{"dir/../../x/", NULL, AE_IFDIR, NULL}, "dir/../../x/"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        centry ents[] = {
            {"ok.txt", "fine", AE_IFREG, NULL},
            cases[i].bad,
            {"after.txt", "fine", AE_IFREG, NULL},
            {"manifest.json", "{}", AE_IFREG, NULL},
        };
        CHECK(craft_zip(zip, ents, 4) == 0);
        if (!strcmp(cases[i].named, "chardev"))
            CHECK(patch_zip_mode(zip, "chardev", S_IFCHR | 0644) == 0);
        if (!strcmp(cases[i].named, "blockdev"))
            CHECK(patch_zip_mode(zip, "blockdev", S_IFBLK | 0644) == 0);
        if (!strcmp(cases[i].named, "socket"))
            CHECK(patch_zip_mode(zip, "socket", S_IFSOCK | 0644) == 0);
        char err[1024] = "";
        CHECK(pkg_extract(zip, out, err, sizeof err) == -1);
        CHECK_MSG(test_contains(err, cases[i].named), "case %zu: %s", i, err);
        /* nothing written, inside or outside */
        CHECK(!cr_is_dir(out));
        CHECK(dir_entries(root) == 1); /* only evil.zip */
        /* inspect names it too */
        jbuf h;
        jb_init(&h);
        int rc = pkg_inspect(zip, &h, NULL, err, sizeof err);
        CHECK(rc != 0);
        CHECK_MSG(rc == -1 || test_contains(h.s, cases[i].named), "%s", h.s);
        jb_free(&h);
    }
    /* a crafted zip that is otherwise a valid package except for the
     * unsafe entry: still refused naming the entry */
    char manifest[512], sha[65];
    cr_sha256_hex("fine", 4, sha);
    snprintf(manifest, sizeof manifest,
             "{\"format\":\"tptpkg\",\"format_version\":1,\"crucible_version\":\"x\","
             "\"artifacts\":[{\"name\":\"ok.txt\",\"size\":4,\"sha256\":\"%s\"}]}", sha);
    centry ents[] = {
        {"ok.txt", "fine", AE_IFREG, NULL},
        {"../evil", "pwned", AE_IFREG, NULL},
        {"manifest.json", manifest, AE_IFREG, NULL},
    };
    CHECK(craft_zip(zip, ents, 3) == 0);
    char err[1024] = "";
    CHECK(pkg_extract(zip, out, err, sizeof err) == -1);
    CHECK_MSG(test_contains(err, "'../evil'"), "%s", err);
    CHECK(dir_entries(root) == 1);
    return TEST_PASS;
}

TEST(test_package_extract_no_follow)
{
    const char *dir = test_tmpdir();
    char root[1024], pkg[1024], out[1024], victim[1024];
    keep(root, dir);
    keep(pkg, tpath(root, "p.tptpkg"));
    keep(out, tpath(root, "out"));
    keep(victim, tpath(root, "victim"));
    char err[1024];
    CHECK_MSG(make_package(root, pkg, err, sizeof err) == 0, "%s", err);
    /* a symlink where a file will go */
    CHECK(mkdir(out, 0755) == 0);
    CHECK(test_write(victim, "precious") == 0);
    CHECK(symlink(victim, tpath(out, "ir.txt")) == 0);
    err[0] = 0;
    CHECK(pkg_extract(pkg, out, err, sizeof err) == -1);
    CHECK_MSG(test_contains(err, "ir.txt"), "%s", err);
    CHECK(same_file(victim, "precious", 8));
    CHECK(dir_entries(out) == 1); /* only the pre-existing link */
    CHECK(unlink(tpath(out, "ir.txt")) == 0);
    /* a symlink where a folder will go */
    char vdir[1024];
    keep(vdir, tpath(root, "vdir"));
    CHECK(mkdir(vdir, 0755) == 0);
    CHECK(symlink(vdir, tpath(out, "targets")) == 0);
    err[0] = 0;
    CHECK(pkg_extract(pkg, out, err, sizeof err) == -1);
    CHECK_MSG(test_contains(err, "targets"), "%s", err);
    CHECK(dir_entries(vdir) == 0);
    CHECK(dir_entries(out) == 1);
    return TEST_PASS;
}

TEST(test_package_extract_tampered)
{
    const char *dir = test_tmpdir();
    char pkg[1024], out[1024];
    keep(pkg, tpath(dir, "p.tptpkg"));
    keep(out, tpath(dir, "out"));
    char err[1024];
    CHECK_MSG(make_package(dir, pkg, err, sizeof err) == 0, "%s", err);
    size_t len;
    uint8_t *b = slurp(pkg, &len);
    CHECK(b);
    long off = entry_data_offset(b, len, "targets/fpga-demo/bitstream.bin");
    CHECK(off > 0);
    b[off + 40] ^= 1;
    CHECK(spit(pkg, b, len) == 0);
    cr_free(b);
    err[0] = 0;
    CHECK(pkg_extract(pkg, out, err, sizeof err) == -1);
    CHECK_MSG(test_contains(err, "targets/fpga-demo/bitstream.bin"), "%s", err);
    CHECK(!cr_is_dir(out));
    return TEST_PASS;
}
