/* package.c - the .tptpkg package. See package.h for the format. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "package.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "sha256.h"

#ifndef CRUCIBLE_VERSION
#error "CRUCIBLE_VERSION must be defined by the build"
#endif

#define MANIFEST_NAME "manifest.json"
#define SEAL_PREFIX "tptpkg-seal sha256:"
#define SEAL_PREFIX_LEN (sizeof SEAL_PREFIX - 1)
#define SEAL_LEN (SEAL_PREFIX_LEN + 64)
#define EOCD_LEN 22
#define IO_CHUNK 65536

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int is_hex64(const char *s)
{
    if (!s || strlen(s) != 64) return 0;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* ---- a small string -> index hash map ---------------------------------- */

typedef struct smap {
    char **keys;
    size_t *vals;
    size_t cap, n;
} smap;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void smap_free(smap *m)
{
    for (size_t i = 0; i < m->cap; i++) cr_free(m->keys[i]);
    cr_free(m->keys);
    cr_free(m->vals);
    memset(m, 0, sizeof *m);
}

static int smap_get(const smap *m, const char *key, size_t *val)
{
    if (!m->cap) return 0;
    size_t i = (size_t)fnv1a(key) & (m->cap - 1);
    while (m->keys[i]) {
        if (!strcmp(m->keys[i], key)) {
            if (val) *val = m->vals[i];
            return 1;
        }
        i = (i + 1) & (m->cap - 1);
    }
    return 0;
}

static int smap_rehash(smap *m, size_t ncap)
{
    char **nk = cr_calloc(ncap, sizeof *nk);
    size_t *nv = cr_calloc(ncap, sizeof *nv);
    if (!nk || !nv) {
        cr_free(nk);
        cr_free(nv);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i]) continue;
        size_t j = (size_t)fnv1a(m->keys[i]) & (ncap - 1);
        while (nk[j]) j = (j + 1) & (ncap - 1);
        nk[j] = m->keys[i];
        nv[j] = m->vals[i];
    }
    cr_free(m->keys);
    cr_free(m->vals);
    m->keys = nk;
    m->vals = nv;
    m->cap = ncap;
    return 0;
}

/* Inserts key (copied). 0 = added, 1 = already present, -1 = no memory. */
static int smap_put(smap *m, const char *key, size_t val)
{
    if (smap_get(m, key, NULL)) return 1;
    if ((m->n + 1) * 2 > m->cap && smap_rehash(m, m->cap ? m->cap * 2 : 16))
        return -1;
    char *k = cr_strdup(key);
    if (!k) return -1;
    size_t i = (size_t)fnv1a(key) & (m->cap - 1);
    while (m->keys[i]) i = (i + 1) & (m->cap - 1);
    m->keys[i] = k;
    m->vals[i] = val;
    m->n++;
    return 0;
}

/* ---- entry names ------------------------------------------------------- */

int pkg_check_name(const char *name, char *why, size_t whylen)
{
    if (!name || !*name) {
        seterr(why, whylen, "empty name");
        return -1;
    }
    size_t len = strlen(name);
    if (len > PKG_MAX_NAME) {
        seterr(why, whylen, "name longer than %d bytes", PKG_MAX_NAME);
        return -1;
    }
    if (name[0] == '/') {
        seterr(why, whylen, "absolute path");
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '\\') {
            seterr(why, whylen, "backslash in name");
            return -1;
        }
        if (c < 0x20 || c > 0x7e) {
            seterr(why, whylen, "character 0x%02x not allowed (printable ASCII only)", c);
            return -1;
        }
    }
    const char *p = name;
    for (;;) {
        const char *s = strchr(p, '/');
        size_t n = s ? (size_t)(s - p) : strlen(p);
        if (n == 0) {
            seterr(why, whylen, "empty path component");
            return -1;
        }
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
            seterr(why, whylen, "'%.*s' path component", (int)n, p);
            return -1;
        }
        if (!s) break;
        p = s + 1;
    }
    return 0;
}

/* ======================================================================== */
/* Writer                                                                   */
/* ======================================================================== */

typedef struct artifact {
    char *name;
    uint64_t size;
    char sha[65];
} artifact;

struct pkg_writer {
    struct archive *a;
    int fd;
    char *final_path, *tmp_path;
    artifact *arts;
    size_t n, cap;
    smap names, dirs;
    uint64_t total;
    int broken;
    char errbuf[1024];
};

static int werr(pkg_writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int werr(pkg_writer *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->errbuf, sizeof w->errbuf, fmt, ap);
    va_end(ap);
    return -1;
}

static void writer_free(pkg_writer *w)
{
    if (!w) return;
    /* (Not archive_write_fail(): libarchive 3.6 then leaks its client
     * state. Closing writes a trailer into the temp file, removed below.) */
    if (w->a) archive_write_free(w->a);
    if (w->fd >= 0) close(w->fd);
    if (w->tmp_path) unlink(w->tmp_path);
    for (size_t i = 0; i < w->n; i++) cr_free(w->arts[i].name);
    cr_free(w->arts);
    smap_free(&w->names);
    smap_free(&w->dirs);
    cr_free(w->final_path);
    cr_free(w->tmp_path);
    cr_free(w);
}

pkg_writer *pkg_writer_open(const char *final_path, char *err, size_t errlen)
{
    if (!final_path || !*final_path) {
        seterr(err, errlen, "no package path");
        return NULL;
    }
    pkg_writer *w = cr_calloc(1, sizeof *w);
    if (!w) {
        seterr(err, errlen, "out of memory");
        return NULL;
    }
    w->fd = -1;
    size_t pl = strlen(final_path);
    w->final_path = cr_strdup(final_path);
    w->tmp_path = cr_malloc(pl + 16);
    if (!w->final_path || !w->tmp_path) {
        seterr(err, errlen, "out of memory");
        cr_free(w->tmp_path);
        w->tmp_path = NULL;
        writer_free(w);
        return NULL;
    }
    snprintf(w->tmp_path, pl + 16, "%s.tmp.XXXXXX", final_path);
    w->fd = mkostemp(w->tmp_path, O_CLOEXEC);
    if (w->fd < 0) {
        seterr(err, errlen, "cannot create a temporary file beside %s: %s",
               final_path, strerror(errno));
        cr_free(w->tmp_path);
        w->tmp_path = NULL;
        writer_free(w);
        return NULL;
    }
    w->a = archive_write_new();
    if (!w->a || archive_write_set_format_zip(w->a) != ARCHIVE_OK ||
        archive_write_zip_set_compression_deflate(w->a) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(w->a, 0) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(w->a, 1) != ARCHIVE_OK ||
        archive_write_open_fd(w->a, w->fd) != ARCHIVE_OK) {
        seterr(err, errlen, "cannot start writing %s: %s", w->tmp_path,
               w->a ? archive_error_string(w->a) : "out of memory");
        writer_free(w);
        return NULL;
    }
    return w;
}

const char *pkg_writer_error(pkg_writer *w) { return w ? w->errbuf : "no writer"; }

/* Checks name against the rules and the names so far; limits. */
static int writer_check(pkg_writer *w, const char *name, uint64_t size, int internal)
{
    char why[128];
    if (!w) return -1;
    if (w->broken) return -1; /* errbuf keeps the failure */
    if (!name) return werr(w, "no entry name");
    if (pkg_check_name(name, why, sizeof why))
        return werr(w, "invalid entry name '%.300s': %s", name, why);
    if (!internal && !strcmp(name, MANIFEST_NAME))
        return werr(w, "entry name '%s' is reserved", name);
    if (smap_get(&w->names, name, NULL))
        return werr(w, "duplicate entry '%s'", name);
    if (smap_get(&w->dirs, name, NULL))
        return werr(w, "entry '%s' is also a folder of another entry", name);
    char tmp[PKG_MAX_NAME + 1];
    snprintf(tmp, sizeof tmp, "%s", name);
    for (char *s = strchr(tmp, '/'); s; s = strchr(s + 1, '/')) {
        *s = 0;
        int clash = smap_get(&w->names, tmp, NULL);
        *s = '/';
        if (clash)
            return werr(w, "entry '%s' would be inside entry '%.*s', which is a file",
                        name, (int)(s - tmp), tmp);
    }
    if (!internal && w->n + 1 >= PKG_MAX_ENTRIES) /* manifest.json needs one more */
        return werr(w, "too many entries (limit %u)", PKG_MAX_ENTRIES);
    if (size > PKG_MAX_ENTRY_SIZE)
        return werr(w, "entry '%s' is %" PRIu64 " bytes; the limit is 1 GiB", name, size);
    if (size > PKG_MAX_TOTAL_SIZE - w->total)
        return werr(w, "entry '%s' would take the package over 4 GiB", name);
    return 0;
}

/* Records the entry's name as used (and its folders) before writing. */
static int writer_record(pkg_writer *w, const char *name, uint64_t size, const char *sha)
{
    if (cr_grow((void **)&w->arts, &w->cap, w->n + 1, sizeof *w->arts))
        return werr(w, "out of memory");
    artifact *art = &w->arts[w->n];
    art->name = cr_strdup(name);
    if (!art->name || smap_put(&w->names, name, w->n) < 0)
        goto oom;
    char tmp[PKG_MAX_NAME + 1];
    snprintf(tmp, sizeof tmp, "%s", name);
    for (char *s = strchr(tmp, '/'); s; s = strchr(s + 1, '/')) {
        *s = 0;
        int r = smap_put(&w->dirs, tmp, 0);
        *s = '/';
        if (r < 0) goto oom;
    }
    art->size = size;
    memcpy(art->sha, sha, 65);
    w->n++;
    w->total += size;
    return 0;
oom:
    cr_free(art->name);
    art->name = NULL;
    w->broken = 1;
    return werr(w, "out of memory");
}

static int writer_header(pkg_writer *w, const char *name, uint64_t size)
{
    struct archive_entry *e = archive_entry_new();
    if (!e) {
        w->broken = 1;
        return werr(w, "out of memory");
    }
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, (la_int64_t)size);
    archive_entry_set_mtime(e, 0, 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    int r = archive_write_header(w->a, e);
    archive_entry_free(e);
    if (r != ARCHIVE_OK) {
        w->broken = 1;
        return werr(w, "cannot write entry '%s': %s", name, archive_error_string(w->a));
    }
    return 0;
}

static int writer_data(pkg_writer *w, const char *name, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        size_t chunk = len > (1u << 20) ? (1u << 20) : len;
        la_ssize_t n = archive_write_data(w->a, p, chunk);
        if (n <= 0) {
            w->broken = 1;
            return werr(w, "cannot write entry '%s': %s", name,
                        archive_error_string(w->a) ? archive_error_string(w->a) : "write failed");
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int add_mem(pkg_writer *w, const char *name, const void *data, size_t len, int internal)
{
    if (writer_check(w, name, (uint64_t)len, internal)) return -1;
    if (len && !data) return werr(w, "entry '%s': no data", name);
    char hex[65];
    cr_sha256_hex(data ? data : "", len, hex);
    if (writer_header(w, name, len) || writer_data(w, name, data, len)) return -1;
    if (archive_write_finish_entry(w->a) != ARCHIVE_OK) {
        w->broken = 1;
        return werr(w, "cannot write entry '%s': %s", name, archive_error_string(w->a));
    }
    return writer_record(w, name, len, hex);
}

int pkg_add(pkg_writer *w, const char *name, const void *data, size_t len)
{
    if (!w) return -1;
    if (!w->broken) w->errbuf[0] = 0;
    return add_mem(w, name, data, len, 0);
}

int pkg_add_file(pkg_writer *w, const char *name, const char *path)
{
    if (!w) return -1;
    if (!w->broken) w->errbuf[0] = 0;
    if (writer_check(w, name, 0, 0)) return -1;
    if (!path) return werr(w, "entry '%s': no file", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return werr(w, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return werr(w, "%s is not a regular file", path);
    }
    uint64_t size = (uint64_t)st.st_size;
    if (writer_check(w, name, size, 0)) {
        close(fd);
        return -1;
    }
    uint8_t *buf = cr_malloc(IO_CHUNK);
    if (!buf) {
        close(fd);
        return werr(w, "out of memory");
    }
    cr_sha256 c;
    cr_sha256_init(&c);
    int rc = writer_header(w, name, size);
    uint64_t done = 0;
    while (rc == 0) {
        ssize_t n = read(fd, buf, IO_CHUNK);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            w->broken = 1;
            rc = werr(w, "cannot read %s: %s", path, strerror(errno));
            break;
        }
        if (n == 0) break;
        if ((uint64_t)n > size - done) {
            w->broken = 1;
            rc = werr(w, "%s grew while it was being added", path);
            break;
        }
        cr_sha256_update(&c, buf, (size_t)n);
        rc = writer_data(w, name, buf, (size_t)n);
        done += (uint64_t)n;
    }
    cr_free(buf);
    close(fd);
    if (rc) return -1;
    if (done != size) {
        w->broken = 1;
        return werr(w, "%s shrank while it was being added", path);
    }
    if (archive_write_finish_entry(w->a) != ARCHIVE_OK) {
        w->broken = 1;
        return werr(w, "cannot write entry '%s': %s", name, archive_error_string(w->a));
    }
    uint8_t d[32];
    char hex[65];
    cr_sha256_final(&c, d);
    cr_sha256_to_hex(d, hex);
    return writer_record(w, name, size, hex);
}

void pkg_writer_abort(pkg_writer *w) { writer_free(w); }

static int is_blank(const char *s)
{
    if (!s) return 1;
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') return 0;
    return 1;
}

static int pread_all(int fd, void *buf, size_t n, uint64_t off)
{
    uint8_t *p = buf;
    while (n) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            if (r == 0) errno = EIO;
            return -1;
        }
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static int pwrite_all(int fd, const void *buf, size_t n, uint64_t off)
{
    const uint8_t *p = buf;
    while (n) {
        ssize_t r = pwrite(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            if (r == 0) errno = EIO;
            return -1;
        }
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

/* SHA-256 of bytes [0, len) of fd. */
static int hash_prefix(int fd, uint64_t len, char hex[65])
{
    uint8_t *buf = cr_malloc(IO_CHUNK);
    if (!buf) {
        errno = ENOMEM;
        return -1;
    }
    cr_sha256 c;
    cr_sha256_init(&c);
    uint64_t off = 0;
    while (off < len) {
        size_t n = len - off > IO_CHUNK ? IO_CHUNK : (size_t)(len - off);
        if (pread_all(fd, buf, n, off)) {
            cr_free(buf);
            return -1;
        }
        cr_sha256_update(&c, buf, n);
        off += n;
    }
    cr_free(buf);
    uint8_t d[32];
    cr_sha256_final(&c, d);
    cr_sha256_to_hex(d, hex);
    return 0;
}

/* Appends the seal comment to the finished ZIP in fd. */
static int write_seal(int fd, char *err, size_t errlen)
{
    struct stat st;
    uint8_t eocd[EOCD_LEN];
    if (fstat(fd, &st) != 0 || st.st_size < EOCD_LEN ||
        pread_all(fd, eocd, EOCD_LEN, (uint64_t)st.st_size - EOCD_LEN)) {
        seterr(err, errlen, "cannot read back the archive: %s", strerror(errno));
        return -1;
    }
    if (memcmp(eocd, "PK\5\6", 4) || eocd[20] || eocd[21]) {
        seterr(err, errlen, "unexpected end of the ZIP archive written by libarchive");
        return -1;
    }
    uint8_t lenf[2] = {(uint8_t)(SEAL_LEN & 0xff), (uint8_t)(SEAL_LEN >> 8)};
    char seal[SEAL_LEN + 1], hex[65];
    uint64_t size = (uint64_t)st.st_size;
    if (pwrite_all(fd, lenf, 2, size - 2) || hash_prefix(fd, size, hex)) {
        seterr(err, errlen, "cannot seal the archive: %s", strerror(errno));
        return -1;
    }
    snprintf(seal, sizeof seal, "%s%s", SEAL_PREFIX, hex);
    if (pwrite_all(fd, seal, SEAL_LEN, size)) {
        seterr(err, errlen, "cannot seal the archive: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static void fsync_dir_of(const char *path)
{
    char *d = cr_dirname(path);
    if (!d) return;
    int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    cr_free(d);
}

int pkg_writer_commit(pkg_writer *w, const char *manifest_extra_json,
                      char *err, size_t errlen)
{
    if (!w) {
        seterr(err, errlen, "no package writer");
        return -1;
    }
    if (w->broken) {
        seterr(err, errlen, "package writer failed earlier: %s", w->errbuf);
        writer_free(w);
        return -1;
    }
    jbuf m;
    jb_init(&m);
    jb_puts(&m, "{\n  \"format\": \"tptpkg\",\n");
    jb_printf(&m, "  \"format_version\": %d,\n", PKG_FORMAT_VERSION);
    jb_puts(&m, "  \"crucible_version\": ");
    jb_jstr(&m, CRUCIBLE_VERSION);
    jb_puts(&m, ",\n");
    if (!is_blank(manifest_extra_json)) {
        jb_puts(&m, "  ");
        jb_puts(&m, manifest_extra_json);
        jb_puts(&m, ",\n");
    }
    jb_puts(&m, "  \"artifacts\": [");
    for (size_t i = 0; i < w->n; i++) {
        jb_puts(&m, i ? ",\n    {\"name\": " : "\n    {\"name\": ");
        jb_jstr(&m, w->arts[i].name);
        jb_printf(&m, ", \"size\": %" PRIu64 ", \"sha256\": \"%s\"}",
                  w->arts[i].size, w->arts[i].sha);
    }
    jb_puts(&m, w->n ? "\n  ]\n}\n" : "]\n}\n");
    if (m.err) {
        jb_free(&m);
        seterr(err, errlen, "out of memory");
        writer_free(w);
        return -1;
    }
    char jerr[256];
    jv *check = jv_parse(m.s, m.len, jerr, sizeof jerr);
    if (!check || jv_typeof(check) != JV_OBJ) {
        seterr(err, errlen, "the manifest is not valid JSON (check the extra members): %s",
               check ? "not an object" : jerr);
        jv_free(check);
        jb_free(&m);
        writer_free(w);
        return -1;
    }
    jv_free(check);
    if (m.len > PKG_MAX_MANIFEST) {
        seterr(err, errlen, "the manifest is larger than %u bytes", PKG_MAX_MANIFEST);
        jb_free(&m);
        writer_free(w);
        return -1;
    }
    int rc = add_mem(w, MANIFEST_NAME, m.s, m.len, 1);
    jb_free(&m);
    if (rc) {
        seterr(err, errlen, "%s", w->errbuf);
        writer_free(w);
        return -1;
    }
    if (archive_write_close(w->a) != ARCHIVE_OK) {
        seterr(err, errlen, "cannot finish %s: %s", w->tmp_path, archive_error_string(w->a));
        writer_free(w);
        return -1;
    }
    archive_write_free(w->a);
    w->a = NULL;
    if (write_seal(w->fd, err, errlen)) {
        writer_free(w);
        return -1;
    }
    if (fchmod(w->fd, 0644) != 0 || fsync(w->fd) != 0) {
        seterr(err, errlen, "cannot write %s: %s", w->tmp_path, strerror(errno));
        writer_free(w);
        return -1;
    }
    int fd = w->fd;
    w->fd = -1;
    if (close(fd) != 0) {
        seterr(err, errlen, "cannot write %s: %s", w->tmp_path, strerror(errno));
        writer_free(w);
        return -1;
    }
    if (rename(w->tmp_path, w->final_path) != 0) {
        seterr(err, errlen, "cannot rename %s to %s: %s", w->tmp_path,
               w->final_path, strerror(errno));
        writer_free(w);
        return -1;
    }
    cr_free(w->tmp_path); /* renamed: nothing to remove any more */
    w->tmp_path = NULL;
    fsync_dir_of(w->final_path);
    writer_free(w);
    return 0;
}

/* ======================================================================== */
/* Reader                                                                   */
/* ======================================================================== */

enum { K_FILE, K_DIR, K_OTHER };
enum { ST_OK, ST_MISMATCH, ST_MISSING, ST_UNLISTED, ST_UNVERIFIED };
static const char *const status_names[] = {"ok", "mismatch", "missing", "unlisted",
                                           "unverified"};

/* One entry of the archive as read. */
typedef struct zent {
    char *name;      /* printable form of the archive's name */
    int kind;
    int name_ok;     /* passes pkg_check_name (and the type is allowed) */
    int complete;    /* data read to the end (files) */
    uint64_t size;
    char sha[65];
    char *problem;   /* entry-level problem, e.g. a CRC error */
} zent;

typedef struct scan {
    zent *ents;
    size_t n, cap;
    char *manifest;  /* manifest.json's bytes (NUL-terminated) */
    size_t manifest_len;
    int manifest_found;
    char *manifest_problem;
    char *fatal;     /* why reading stopped before the end */
    char *unsafe;    /* first entry that may not be extracted, and why */
    uint64_t total;
} scan;

static void scan_free(scan *S)
{
    for (size_t i = 0; i < S->n; i++) {
        cr_free(S->ents[i].name);
        cr_free(S->ents[i].problem);
    }
    cr_free(S->ents);
    cr_free(S->manifest);
    cr_free(S->manifest_problem);
    cr_free(S->fatal);
    cr_free(S->unsafe);
    memset(S, 0, sizeof *S);
}

static char *fmt_alloc(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *fmt_alloc(const char *fmt, ...)
{
    jbuf b;
    jb_init(&b);
    va_list ap;
    va_start(ap, fmt);
    jb_vprintf(&b, fmt, ap);
    va_end(ap);
    if (b.err) {
        jb_free(&b);
        return NULL;
    }
    return jb_take(&b);
}

/* A printable copy of an archive name (bytes outside 0x20..0x7e become
 * '?'), at most 300 bytes. Names that pass pkg_check_name are unchanged. */
static char *printable_name(const char *raw)
{
    size_t n = strlen(raw);
    if (n > 300) n = 300;
    char *s = cr_malloc(n + 1);
    if (!s) return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)raw[i];
        s[i] = (c < 0x20 || c > 0x7e) ? '?' : (char)c;
    }
    s[n] = 0;
    return s;
}

/* Checks an entry's name and type for extraction. 0, or -1 with why. */
static int entry_allowed(struct archive_entry *e, const char *raw, int *kind,
                         char *why, size_t whylen)
{
    mode_t ft = archive_entry_filetype(e);
    *kind = ft == AE_IFREG ? K_FILE : ft == AE_IFDIR ? K_DIR : K_OTHER;
    if (archive_entry_hardlink(e)) {
        *kind = K_OTHER;
        seterr(why, whylen, "is a hard link (not allowed)");
        return -1;
    }
    if (*kind == K_OTHER) {
        const char *what = ft == AE_IFLNK ? "a symbolic link"
                         : ft == AE_IFCHR || ft == AE_IFBLK ? "a device"
                         : ft == AE_IFIFO ? "a fifo"
                         : ft == AE_IFSOCK ? "a socket" : "not a regular file";
        seterr(why, whylen, "is %s (not allowed)", what);
        return -1;
    }
    if (!raw) {
        seterr(why, whylen, "has a name that cannot be decoded");
        return -1;
    }
    char tmp[PKG_MAX_NAME + 2];
    size_t len = strlen(raw);
    if (*kind == K_DIR && len && raw[len - 1] == '/' && len <= PKG_MAX_NAME + 1) {
        memcpy(tmp, raw, len - 1);
        tmp[len - 1] = 0;
        raw = tmp;
    }
    char r[128];
    if (pkg_check_name(raw, r, sizeof r)) {
        seterr(why, whylen, "has an unsafe or invalid name: %s", r);
        return -1;
    }
    return 0;
}

/* Reads the current entry's data into the hash (and sink, if any).
 * Returns 0 when complete, 1 when complete with a libarchive warning (e.g.
 * a CRC mismatch; message in msg), -1 on a fatal error or a limit. */
typedef int (*sink_fn)(void *ctx, const void *buf, size_t n, char *msg, size_t msglen);

static int read_entry(struct archive *a, uint8_t *buf, uint64_t *total,
                      sink_fn sink, void *ctx, uint64_t *size_out,
                      char sha_out[65], char *msg, size_t msglen)
{
    cr_sha256 c;
    cr_sha256_init(&c);
    uint64_t size = 0;
    int rc = 0;
    for (;;) {
        la_ssize_t n = archive_read_data(a, buf, IO_CHUNK);
        if (n == 0) break;
        if (n == ARCHIVE_WARN) {
            seterr(msg, msglen, "%s", archive_error_string(a) ? archive_error_string(a) : "damaged data");
            rc = 1;
            break;
        }
        if (n < 0) {
            seterr(msg, msglen, "%s", archive_error_string(a) ? archive_error_string(a) : "damaged data");
            *size_out = size;
            return -1;
        }
        if ((uint64_t)n > PKG_MAX_ENTRY_SIZE - size) {
            seterr(msg, msglen, "larger than the limit of 1 GiB");
            *size_out = size;
            return -1;
        }
        if ((uint64_t)n > PKG_MAX_TOTAL_SIZE - *total) {
            seterr(msg, msglen, "the package's contents exceed the limit of 4 GiB");
            *size_out = size;
            return -1;
        }
        size += (uint64_t)n;
        *total += (uint64_t)n;
        cr_sha256_update(&c, buf, (size_t)n);
        if (sink && sink(ctx, buf, (size_t)n, msg, msglen)) {
            *size_out = size;
            return -1;
        }
    }
    uint8_t d[32];
    cr_sha256_final(&c, d);
    cr_sha256_to_hex(d, sha_out);
    *size_out = size;
    return rc;
}

typedef struct mbuf {
    char *p;
    size_t len, cap;
} mbuf;

static int manifest_sink(void *ctx, const void *data, size_t n, char *msg, size_t msglen)
{
    mbuf *m = ctx;
    if (n > PKG_MAX_MANIFEST - m->len) {
        seterr(msg, msglen, "manifest.json is larger than the limit of %u bytes", PKG_MAX_MANIFEST);
        return -1;
    }
    if (cr_grow((void **)&m->p, &m->cap, m->len + n + 1, 1)) {
        seterr(msg, msglen, "out of memory");
        return -1;
    }
    memcpy(m->p + m->len, data, n);
    m->len += n;
    m->p[m->len] = 0;
    return 0;
}

static struct archive *open_zip(const char *path, char *msg, size_t msglen)
{
    struct archive *a = archive_read_new();
    if (!a) {
        seterr(msg, msglen, "out of memory");
        return NULL;
    }
    if (archive_read_support_format_zip(a) != ARCHIVE_OK ||
        archive_read_open_filename(a, path, IO_CHUNK) != ARCHIVE_OK) {
        seterr(msg, msglen, "cannot read %s as a ZIP package: %s", path,
               archive_error_string(a) ? archive_error_string(a) : "unknown error");
        archive_read_free(a);
        return NULL;
    }
    return a;
}

/* Reads the whole archive (or, with manifest_only, only manifest.json's
 * data). Returns 0 when read to the end, 1 when reading stopped early
 * (S->fatal says why), -1 when it could not be opened (S->fatal). */
static int scan_archive(const char *path, int manifest_only, scan *S)
{
    char msg[1024];
    struct archive *a = open_zip(path, msg, sizeof msg);
    if (!a) {
        S->fatal = cr_strdup(msg);
        return -1;
    }
    uint8_t *buf = cr_malloc(IO_CHUNK);
    int rc = 0;
    if (!buf) {
        S->fatal = cr_strdup("out of memory");
        rc = 1;
    }
    while (rc == 0) {
        struct archive_entry *e = NULL;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF) break;
        const char *prev = S->n ? S->ents[S->n - 1].name : NULL;
        if (r < ARCHIVE_WARN || !e) {
            const char *why = archive_error_string(a) ? archive_error_string(a) : "damaged archive";
            S->fatal = prev ? fmt_alloc("cannot read the entry after '%s': %s", prev, why)
                            : fmt_alloc("cannot read the first entry: %s", why);
            rc = 1;
            break;
        }
        if (S->n >= PKG_MAX_ENTRIES) {
            S->fatal = fmt_alloc("more than %u entries", PKG_MAX_ENTRIES);
            rc = 1;
            break;
        }
        if (cr_grow((void **)&S->ents, &S->cap, S->n + 1, sizeof *S->ents)) {
            S->fatal = cr_strdup("out of memory");
            rc = 1;
            break;
        }
        zent *z = &S->ents[S->n];
        const char *raw = archive_entry_pathname_utf8(e);
        if (!raw) raw = archive_entry_pathname(e);
        z->name = raw ? printable_name(raw) : fmt_alloc("(entry %zu)", S->n + 1);
        if (!z->name) {
            S->fatal = cr_strdup("out of memory");
            rc = 1;
            break;
        }
        S->n++;
        char why[300];
        z->name_ok = entry_allowed(e, raw, &z->kind, why, sizeof why) == 0;
        if (!z->name_ok) {
            z->problem = cr_strdup(why);
            if (!S->unsafe) S->unsafe = fmt_alloc("entry '%s' %s", z->name, why);
        } else if (r == ARCHIVE_WARN && archive_error_string(a)) {
            z->problem = cr_strdup(archive_error_string(a));
        }
        if (archive_entry_size_is_set(e) && archive_entry_size(e) >= 0 &&
            (uint64_t)archive_entry_size(e) > PKG_MAX_ENTRY_SIZE) {
            S->fatal = fmt_alloc("entry '%s' is larger than the limit of 1 GiB", z->name);
            rc = 1;
            break;
        }
        int is_manifest = z->name_ok && z->kind == K_FILE && !strcmp(z->name, MANIFEST_NAME);
        if (z->kind != K_FILE || (manifest_only && !is_manifest)) {
            if (archive_read_data_skip(a) < ARCHIVE_WARN) {
                const char *w = archive_error_string(a) ? archive_error_string(a) : "damaged data";
                S->fatal = fmt_alloc("entry '%s': %s", z->name, w);
                rc = 1;
            }
            continue;
        }
        mbuf m = {0};
        int want = is_manifest && !S->manifest_found;
        int dr = read_entry(a, buf, &S->total, want ? manifest_sink : NULL, &m,
                            &z->size, z->sha, msg, sizeof msg);
        if (dr != 0 && !z->problem) z->problem = cr_strdup(msg);
        if (dr < 0) {
            cr_free(m.p);
            S->fatal = fmt_alloc("entry '%s': %s", z->name, msg);
            rc = 1;
            break;
        }
        z->complete = 1;
        if (is_manifest) {
            if (want) {
                S->manifest_found = 1;
                S->manifest = m.p ? m.p : cr_strdup("");
                S->manifest_len = m.len;
                if (z->problem) S->manifest_problem = cr_strdup(z->problem);
            } else if (!S->manifest_problem) {
                S->manifest_problem = cr_strdup("more than one manifest.json");
            }
        }
    }
    cr_free(buf);
    archive_read_free(a);
    return rc;
}

/* ---- the seal ----------------------------------------------------------- */

enum { SEAL_OK, SEAL_MISMATCH, SEAL_MISSING, SEAL_UNREADABLE };
static const char *const seal_names[] = {"ok", "mismatch", "missing", "unreadable"};

static int check_seal(const char *path, char *msg, size_t msglen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        seterr(msg, msglen, "cannot open %s: %s", path, strerror(errno));
        return SEAL_UNREADABLE;
    }
    struct stat st;
    uint8_t tail[EOCD_LEN + SEAL_LEN + 1];
    int rc = SEAL_MISSING;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        seterr(msg, msglen, "%s is not a regular file", path);
        rc = SEAL_UNREADABLE;
        goto out;
    }
    uint64_t size = (uint64_t)st.st_size;
    seterr(msg, msglen, "the package seal (ZIP comment) is missing or damaged");
    if (size < EOCD_LEN + SEAL_LEN) goto out;
    if (pread_all(fd, tail, EOCD_LEN + SEAL_LEN, size - EOCD_LEN - SEAL_LEN)) {
        seterr(msg, msglen, "cannot read %s: %s", path, strerror(errno));
        rc = SEAL_UNREADABLE;
        goto out;
    }
    tail[EOCD_LEN + SEAL_LEN] = 0;
    const char *seal = (const char *)tail + EOCD_LEN;
    if (memcmp(tail, "PK\5\6", 4) || tail[20] != (SEAL_LEN & 0xff) ||
        tail[21] != (SEAL_LEN >> 8) || memcmp(seal, SEAL_PREFIX, SEAL_PREFIX_LEN) ||
        !is_hex64(seal + SEAL_PREFIX_LEN))
        goto out;
    char hex[65];
    if (hash_prefix(fd, size - SEAL_LEN, hex)) {
        seterr(msg, msglen, "cannot read %s: %s", path, strerror(errno));
        rc = SEAL_UNREADABLE;
        goto out;
    }
    if (strcmp(hex, seal + SEAL_PREFIX_LEN)) {
        seterr(msg, msglen, "package checksum mismatch (seal %.64s, actual %s): "
               "the file was damaged or modified", seal + SEAL_PREFIX_LEN, hex);
        rc = SEAL_MISMATCH;
        goto out;
    }
    msg[0] = 0;
    rc = SEAL_OK;
out:
    close(fd);
    return rc;
}

/* ---- verification --------------------------------------------------------- */

typedef struct mres {
    const char *name;     /* points into the parsed manifest */
    uint64_t msize;
    const char *msha;
    int status;
    size_t zidx;          /* entry in the scan, or SIZE_MAX */
    int extracted;
} mres;

typedef struct report {
    scan S;
    int stopped;          /* reading stopped before the end */
    int seal;
    char seal_msg[512];
    jv *manifest;
    char manifest_sha[65];
    mres *res;
    size_t nres;
    smap byname;          /* artifact name -> index in res */
    int *unlisted;        /* per scan entry: 1 if reported as not listed */
    char **errs;
    size_t nerr, errcap;
    int oom;
} report;

static void report_free(report *R)
{
    scan_free(&R->S);
    jv_free(R->manifest);
    cr_free(R->res);
    smap_free(&R->byname);
    cr_free(R->unlisted);
    for (size_t i = 0; i < R->nerr; i++) cr_free(R->errs[i]);
    cr_free(R->errs);
    memset(R, 0, sizeof *R);
}

static void add_error(report *R, char *msg /* taken */)
{
    if (!msg || cr_grow((void **)&R->errs, &R->errcap, R->nerr + 1, sizeof *R->errs)) {
        cr_free(msg);
        R->oom = 1;
        return;
    }
    R->errs[R->nerr++] = msg;
}

static int is_uint(const jv *v, uint64_t max, uint64_t *out)
{
    if (jv_typeof(v) != JV_NUM) return 0;
    double d = jv_num(v, -1);
    if (!(d >= 0) || d > (double)max || d != (double)(uint64_t)d) return 0;
    *out = (uint64_t)d;
    return 1;
}

/* Parses and checks the manifest; fills R->res. 0 or -1 (err set). */
static int load_manifest(report *R, char *err, size_t errlen)
{
    char jerr[256];
    R->manifest = jv_parse(R->S.manifest, R->S.manifest_len, jerr, sizeof jerr);
    if (!R->manifest) {
        seterr(err, errlen, "manifest.json is not valid JSON: %s", jerr);
        return -1;
    }
    const jv *m = R->manifest;
    if (jv_typeof(m) != JV_OBJ) {
        seterr(err, errlen, "manifest.json is not a JSON object");
        return -1;
    }
    const char *fmt = jv_str(jv_get(m, "format"));
    if (!fmt || strcmp(fmt, "tptpkg")) {
        seterr(err, errlen, "manifest.json: \"format\" is not \"tptpkg\"");
        return -1;
    }
    uint64_t ver;
    if (!is_uint(jv_get(m, "format_version"), 1000000, &ver)) {
        seterr(err, errlen, "manifest.json: \"format_version\" is missing or not a number");
        return -1;
    }
    if (ver != PKG_FORMAT_VERSION) {
        seterr(err, errlen, "package format version %" PRIu64 " is not supported "
               "(this crucible reads version %d)", ver, PKG_FORMAT_VERSION);
        return -1;
    }
    if (!jv_str(jv_get(m, "crucible_version"))) {
        seterr(err, errlen, "manifest.json: \"crucible_version\" is missing");
        return -1;
    }
    const jv *arts = jv_get(m, "artifacts");
    if (jv_typeof(arts) != JV_ARR) {
        seterr(err, errlen, "manifest.json: \"artifacts\" is missing or not an array");
        return -1;
    }
    size_t n = jv_len(arts);
    if (n >= PKG_MAX_ENTRIES) {
        seterr(err, errlen, "manifest.json lists more than %u artifacts", PKG_MAX_ENTRIES);
        return -1;
    }
    R->res = cr_calloc(n ? n : 1, sizeof *R->res);
    if (!R->res) {
        seterr(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const jv *a = jv_at(arts, i);
        const char *name = jv_str(jv_get(a, "name"));
        const char *sha = jv_str(jv_get(a, "sha256"));
        uint64_t size;
        char why[128];
        if (!name || pkg_check_name(name, why, sizeof why) || !strcmp(name, MANIFEST_NAME)) {
            seterr(err, errlen, "manifest.json: artifact %zu has a missing or invalid name", i + 1);
            return -1;
        }
        if (!is_uint(jv_get(a, "size"), PKG_MAX_ENTRY_SIZE, &size) || !is_hex64(sha)) {
            seterr(err, errlen, "manifest.json: artifact '%s' has an invalid size or sha256", name);
            return -1;
        }
        int r = smap_put(&R->byname, name, i);
        if (r) {
            seterr(err, errlen, r > 0 ? "manifest.json lists '%s' twice" : "out of memory (%s)", name);
            return -1;
        }
        R->res[i] = (mres){.name = name, .msize = size, .msha = sha, .zidx = SIZE_MAX};
    }
    R->nres = n;
    return 0;
}

/* Verifies the package. 0 all good, 1 problems (in R), -1 unreadable. */
static int verify(const char *path, report *R, char *err, size_t errlen)
{
    memset(R, 0, sizeof *R);
    R->seal = check_seal(path, R->seal_msg, sizeof R->seal_msg);
    if (R->seal == SEAL_UNREADABLE) {
        seterr(err, errlen, "%s", R->seal_msg);
        return -1;
    }
    int rc = scan_archive(path, 0, &R->S);
    if (rc < 0) {
        seterr(err, errlen, "%s", R->S.fatal ? R->S.fatal : "cannot read the package");
        return -1;
    }
    R->stopped = rc == 1;
    if (R->stopped && !R->S.manifest_found) {
        /* The damage is before manifest.json: fetch it skipping data, so
         * the damaged entry can still be named against the manifest. */
        scan S2 = {0};
        scan_archive(path, 1, &S2);
        if (S2.manifest_found) {
            R->S.manifest = S2.manifest;
            R->S.manifest_len = S2.manifest_len;
            R->S.manifest_found = 1;
            R->S.manifest_problem = S2.manifest_problem;
            S2.manifest = NULL;
            S2.manifest_problem = NULL;
        }
        scan_free(&S2);
    }
    if (!R->S.manifest_found) {
        if (R->stopped)
            seterr(err, errlen, "cannot read %s: %s", path, R->S.fatal ? R->S.fatal : "damaged");
        else
            seterr(err, errlen, "%s has no manifest.json: not a crucible package", path);
        return -1;
    }
    if (R->S.manifest_problem) {
        seterr(err, errlen, "manifest.json is damaged: %s", R->S.manifest_problem);
        return -1;
    }
    cr_sha256_hex(R->S.manifest, R->S.manifest_len, R->manifest_sha);
    if (load_manifest(R, err, errlen)) return -1;

    R->unlisted = cr_calloc(R->S.n ? R->S.n : 1, sizeof *R->unlisted);
    if (!R->unlisted) {
        seterr(err, errlen, "out of memory");
        return -1;
    }
    int manifest_seen = 0;
    for (size_t i = 0; i < R->S.n; i++) {
        zent *z = &R->S.ents[i];
        if (z->name_ok && z->kind == K_DIR && !z->problem) continue;
        if (z->name_ok && z->kind == K_FILE && !strcmp(z->name, MANIFEST_NAME) && !manifest_seen) {
            manifest_seen = 1;
            continue;
        }
        size_t j;
        if (z->name_ok && z->kind == K_FILE && smap_get(&R->byname, z->name, &j) &&
            R->res[j].zidx == SIZE_MAX) {
            R->res[j].zidx = i;
            continue;
        }
        R->unlisted[i] = 1;
        if (z->name_ok && z->kind == K_FILE && smap_get(&R->byname, z->name, NULL) && !z->problem)
            z->problem = cr_strdup("duplicate entry");
        add_error(R, z->problem ? fmt_alloc("entry '%s' %s%s", z->name,
                                            z->name_ok ? "is not in the manifest; " : "",
                                            z->problem)
                                : fmt_alloc("entry '%s' is not in the manifest", z->name));
    }
    for (size_t j = 0; j < R->nres; j++) {
        mres *r = &R->res[j];
        if (r->zidx == SIZE_MAX) {
            r->status = R->stopped ? ST_UNVERIFIED : ST_MISSING;
            add_error(R, R->stopped ? fmt_alloc("artifact '%s' was not verified (reading stopped at an earlier error)", r->name)
                                    : fmt_alloc("artifact '%s' is missing", r->name));
            continue;
        }
        zent *z = &R->S.ents[r->zidx];
        if (z->complete && !z->problem && z->size == r->msize && !strcmp(z->sha, r->msha)) {
            r->status = ST_OK;
            continue;
        }
        r->status = ST_MISMATCH;
        if (!z->complete)
            add_error(R, fmt_alloc("artifact '%s' is damaged: %s", r->name,
                                   z->problem ? z->problem : "unreadable"));
        else if (strcmp(z->sha, r->msha))
            add_error(R, fmt_alloc("artifact '%s': sha256 mismatch (manifest %s, actual %s)%s%s",
                                   r->name, r->msha, z->sha, z->problem ? "; " : "",
                                   z->problem ? z->problem : ""));
        else if (z->size != r->msize)
            add_error(R, fmt_alloc("artifact '%s': size mismatch (manifest %" PRIu64 ", actual %" PRIu64 ")",
                                   r->name, r->msize, z->size));
        else
            add_error(R, fmt_alloc("artifact '%s': %s", r->name, z->problem));
    }
    if (R->stopped && R->S.fatal) add_error(R, fmt_alloc("reading stopped: %s", R->S.fatal));
    if (R->seal != SEAL_OK) add_error(R, cr_strdup(R->seal_msg));
    if (R->oom) {
        seterr(err, errlen, "out of memory");
        return -1;
    }
    return R->nerr ? 1 : 0;
}

/* ---- reports ------------------------------------------------------------ */

/* Appends s with control characters replaced by '?', so text taken from
 * a package cannot drive the terminal the report is shown on. */
static void put_printable(jbuf *b, const char *s)
{
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        jb_putc(b, (c < 0x20 || c == 0x7f) ? '?' : (char)c);
    }
}

/* Compact JSON of v, made printable. */
static void put_dump(jbuf *b, const jv *v)
{
    jbuf t;
    jb_init(&t);
    jv_dump(&t, v);
    put_printable(b, t.s);
    jb_free(&t);
}

/* One-line summary of a plugin/tool description. */
static void summarize_item(jbuf *b, const char *key, const jv *v)
{
    if (key) {
        put_printable(b, key);
        if (jv_str(v)) {
            jb_putc(b, ' ');
            put_printable(b, jv_str(v));
            return;
        }
        jb_putc(b, ' ');
    }
    if (jv_str(v)) {
        put_printable(b, jv_str(v));
        return;
    }
    const char *id = jv_str(jv_get(v, "id"));
    if (!id) id = jv_str(jv_get(v, "name"));
    if (jv_typeof(v) == JV_OBJ && id) {
        put_printable(b, id);
        const char *ver = jv_str(jv_get(v, "version"));
        if (ver) {
            jb_putc(b, ' ');
            put_printable(b, ver);
        }
        return;
    }
    put_dump(b, v);
}

static void summarize_list(jbuf *b, const char *label, const jv *v)
{
    if (!v) return;
    jb_printf(b, "%-9s", label);
    size_t n = jv_len(v);
    if (jv_typeof(v) == JV_ARR) {
        if (!n) jb_puts(b, "(none)");
        for (size_t i = 0; i < n; i++) {
            if (i) jb_puts(b, ", ");
            summarize_item(b, NULL, jv_at(v, i));
        }
    } else if (jv_typeof(v) == JV_OBJ) {
        if (!n) jb_puts(b, "(none)");
        for (size_t i = 0; i < n; i++) {
            if (i) jb_puts(b, ", ");
            summarize_item(b, jv_key_at(v, i), jv_val_at(v, i));
        }
    } else {
        put_dump(b, v);
    }
    jb_putc(b, '\n');
}

static void human_report(jbuf *h, const char *path, report *R, int rc, const char *err)
{
    jb_printf(h, "package  %s\n", path);
    if (rc < 0) {
        jb_printf(h, "error    %s\nresult   UNREADABLE\n", err);
        return;
    }
    const jv *m = R->manifest;
    jb_printf(h, "format   tptpkg version %.0f, written by crucible ",
              jv_num(jv_get(m, "format_version"), 0));
    put_printable(h, jv_str(jv_get(m, "crucible_version")));
    jb_putc(h, '\n');
    const jv *model = jv_get(m, "model");
    if (model) {
        jb_puts(h, "model    ");
        if (jv_typeof(model) == JV_OBJ) {
            const char *mp = jv_str(jv_get(model, "path"));
            const char *ms = jv_str(jv_get(model, "sha256"));
            if (mp) put_printable(h, mp);
            if (ms) {
                jb_puts(h, mp ? "  sha256 " : "sha256 ");
                put_printable(h, ms);
            }
            if (!mp && !ms) put_dump(h, model);
        } else {
            summarize_item(h, NULL, model);
        }
        jb_putc(h, '\n');
    }
    summarize_list(h, "plugins", jv_get(m, "plugins"));
    summarize_list(h, "tools", jv_get(m, "tools"));
    jb_printf(h, "seal     %s\n", R->seal == SEAL_OK ? "ok" : R->seal_msg);
    jb_printf(h, "artifacts (%zu):\n", R->nres);
    for (size_t j = 0; j < R->nres; j++) {
        mres *r = &R->res[j];
        zent *z = r->zidx == SIZE_MAX ? NULL : &R->S.ents[r->zidx];
        switch (r->status) {
        case ST_OK: jb_printf(h, "ok  %10" PRIu64 "  %s\n", r->msize, r->name); break;
        case ST_MISSING: jb_printf(h, "BAD %s: missing\n", r->name); break;
        case ST_UNVERIFIED:
            jb_printf(h, "BAD %s: not verified (reading stopped at an earlier error)\n", r->name);
            break;
        default:
            if (!z->complete)
                jb_printf(h, "BAD %s: damaged: %s\n", r->name, z->problem ? z->problem : "unreadable");
            else if (strcmp(z->sha, r->msha))
                jb_printf(h, "BAD %s: sha256 mismatch (manifest %s, actual %s)%s%s\n", r->name,
                          r->msha, z->sha, z->problem ? "; " : "", z->problem ? z->problem : "");
            else if (z->size != r->msize)
                jb_printf(h, "BAD %s: size mismatch (manifest %" PRIu64 ", actual %" PRIu64 ")\n",
                          r->name, r->msize, z->size);
            else
                jb_printf(h, "BAD %s: %s\n", r->name, z->problem ? z->problem : "damaged");
        }
    }
    for (size_t i = 0; i < R->S.n; i++) {
        if (!R->unlisted[i]) continue;
        zent *z = &R->S.ents[i];
        jb_printf(h, "BAD %s: not in manifest%s%s\n", z->name, z->problem ? "; " : "",
                  z->problem ? z->problem : "");
    }
    if (R->stopped && R->S.fatal) jb_printf(h, "error    reading stopped: %s\n", R->S.fatal);
    if (rc == 0)
        jb_puts(h, "result   OK\n");
    else
        jb_printf(h, "result   FAILED (%zu problem%s)\n", R->nerr, R->nerr == 1 ? "" : "s");
}

static void json_report(jbuf *j, const char *path, report *R, int rc, const char *err)
{
    jb_puts(j, "{\"path\":");
    jb_jstr(j, path);
    jb_printf(j, ",\"ok\":%s", rc == 0 ? "true" : "false");
    if (rc < 0) {
        jb_puts(j, ",\"seal\":");
        jb_jstr(j, seal_names[R->seal]);
        jb_puts(j, ",\"manifest\":null,\"entries\":[],\"errors\":[");
        jb_jstr(j, err);
        jb_puts(j, "]}");
        return;
    }
    jb_puts(j, ",\"seal\":");
    jb_jstr(j, seal_names[R->seal]);
    /* Valid JSON (it parsed), so it can be embedded as is. */
    jb_puts(j, ",\"manifest\":");
    jb_putn(j, R->S.manifest, R->S.manifest_len);
    jb_puts(j, ",\"entries\":[");
    int first = 1;
    for (size_t k = 0; k < R->nres; k++) {
        mres *r = &R->res[k];
        zent *z = r->zidx == SIZE_MAX ? NULL : &R->S.ents[r->zidx];
        jb_puts(j, first ? "{\"name\":" : ",{\"name\":");
        first = 0;
        jb_jstr(j, r->name);
        if (z && z->complete)
            jb_printf(j, ",\"size\":%" PRIu64 ",\"sha256\":\"%s\"", z->size, z->sha);
        else
            jb_printf(j, ",\"size\":%" PRIu64 ",\"sha256\":null", r->msize);
        jb_puts(j, ",\"status\":");
        jb_jstr(j, status_names[r->status]);
        if (r->status == ST_MISMATCH)
            jb_printf(j, ",\"expected_size\":%" PRIu64 ",\"expected_sha256\":\"%s\"", r->msize, r->msha);
        if (z && z->problem) {
            jb_puts(j, ",\"error\":");
            jb_jstr(j, z->problem);
        }
        jb_putc(j, '}');
    }
    for (size_t i = 0; i < R->S.n; i++) {
        if (!R->unlisted[i]) continue;
        zent *z = &R->S.ents[i];
        jb_puts(j, first ? "{\"name\":" : ",{\"name\":");
        first = 0;
        jb_jstr(j, z->name);
        if (z->kind == K_FILE && z->complete)
            jb_printf(j, ",\"size\":%" PRIu64 ",\"sha256\":\"%s\"", z->size, z->sha);
        else
            jb_puts(j, ",\"size\":null,\"sha256\":null");
        jb_puts(j, ",\"status\":\"unlisted\"");
        if (z->problem) {
            jb_puts(j, ",\"error\":");
            jb_jstr(j, z->problem);
        }
        jb_putc(j, '}');
    }
    jb_puts(j, "],\"errors\":[");
    for (size_t i = 0; i < R->nerr; i++) {
        if (i) jb_putc(j, ',');
        jb_jstr(j, R->errs[i]);
    }
    jb_puts(j, "]}");
}

int pkg_inspect(const char *path, jbuf *human, jbuf *json, char *err, size_t errlen)
{
    char ebuf[1024] = "";
    if (!path) {
        seterr(err, errlen, "no package path");
        return -1;
    }
    report R;
    int rc = verify(path, &R, ebuf, sizeof ebuf);
    if (human) human_report(human, path, &R, rc, ebuf);
    if (json) json_report(json, path, &R, rc, ebuf);
    if (rc < 0)
        seterr(err, errlen, "%s", ebuf);
    else if (rc > 0)
        seterr(err, errlen, "%s: %s", path, R.nerr ? R.errs[0] : "verification failed");
    else if (err && errlen)
        err[0] = 0;
    report_free(&R);
    return rc;
}

/* ---- extraction ----------------------------------------------------------- */

typedef struct created {
    char *rel;
    int isdir;
} created;

typedef struct xctx {
    int rootfd;
    int fd; /* the file being written */
    created *c;
    size_t n, cap;
} xctx;

static int note_created(xctx *X, const char *rel, size_t len, int isdir)
{
    if (cr_grow((void **)&X->c, &X->cap, X->n + 1, sizeof *X->c)) return -1;
    X->c[X->n].rel = cr_strndup(rel, len);
    if (!X->c[X->n].rel) return -1;
    X->c[X->n++].isdir = isdir;
    return 0;
}

/* Opens the folder name[0..upto) below the root, creating missing folders
 * and never following symlinks. *out may be X->rootfd (not to be closed). */
static int open_dirs(xctx *X, const char *name, size_t upto, int *out,
                     char *msg, size_t msglen)
{
    int cur = X->rootfd;
    size_t off = 0;
    while (off < upto) {
        const char *p = name + off;
        const char *s = memchr(p, '/', upto - off);
        size_t n = s ? (size_t)(s - p) : upto - off;
        char comp[PKG_MAX_NAME + 1];
        if (n > PKG_MAX_NAME) n = PKG_MAX_NAME; /* names are checked; defensive */
        memcpy(comp, p, n);
        comp[n] = 0;
        int nfd = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (nfd < 0 && errno == ENOENT) {
            if (mkdirat(cur, comp, 0755) == 0) {
                if (note_created(X, name, off + n, 1)) {
                    seterr(msg, msglen, "out of memory");
                    goto fail;
                }
            } else if (errno != EEXIST) {
                seterr(msg, msglen, "cannot create folder '%.*s': %s", (int)(off + n), name,
                       strerror(errno));
                goto fail;
            }
            nfd = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (nfd < 0) {
            if (errno == ELOOP || errno == ENOTDIR)
                seterr(msg, msglen, "'%.*s' exists and is not a folder (or is a symbolic link)",
                       (int)(off + n), name);
            else
                seterr(msg, msglen, "cannot open folder '%.*s': %s", (int)(off + n), name,
                       strerror(errno));
            goto fail;
        }
        if (cur != X->rootfd) close(cur);
        cur = nfd;
        off += n + 1;
    }
    *out = cur;
    return 0;
fail:
    if (cur != X->rootfd) close(cur);
    return -1;
}

static int file_sink(void *ctx, const void *data, size_t n, char *msg, size_t msglen)
{
    xctx *X = ctx;
    const char *p = data;
    while (n) {
        ssize_t w = write(X->fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            seterr(msg, msglen, "cannot write: %s", w < 0 ? strerror(errno) : "no progress");
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Extracts every entry; R is the verified report. 0 or -1 (msg). */
static int extract_entries(const char *path, report *R, xctx *X, char *msg, size_t msglen)
{
    char why[1024];
    struct archive *a = open_zip(path, msg, msglen);
    if (!a) return -1;
    uint8_t *buf = cr_malloc(IO_CHUNK);
    if (!buf) {
        archive_read_free(a);
        seterr(msg, msglen, "out of memory");
        return -1;
    }
    int rc = -1, manifest_done = 0;
    size_t count = 0;
    uint64_t total = 0;
    for (;;) {
        struct archive_entry *e = NULL;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF) break;
        if (r != ARCHIVE_OK || !e) {
            seterr(msg, msglen, "cannot read %s: %s", path,
                   archive_error_string(a) ? archive_error_string(a) : "damaged archive");
            goto out;
        }
        const char *raw = archive_entry_pathname_utf8(e);
        if (!raw) raw = archive_entry_pathname(e);
        int kind;
        if (entry_allowed(e, raw, &kind, why, sizeof why)) {
            char *pn = raw ? printable_name(raw) : NULL;
            seterr(msg, msglen, "entry '%s' %s", pn ? pn : "?", why);
            cr_free(pn);
            goto out;
        }
        if (++count > PKG_MAX_ENTRIES) {
            seterr(msg, msglen, "more than %u entries", PKG_MAX_ENTRIES);
            goto out;
        }
        size_t len = strlen(raw);
        if (kind == K_DIR) {
            int dfd;
            if (open_dirs(X, raw, raw[len - 1] == '/' ? len - 1 : len, &dfd, why, sizeof why)) {
                seterr(msg, msglen, "entry '%s': %s", raw, why);
                goto out;
            }
            if (dfd != X->rootfd) close(dfd);
            if (archive_read_data_skip(a) < ARCHIVE_WARN) {
                seterr(msg, msglen, "entry '%s': %s", raw, archive_error_string(a));
                goto out;
            }
            continue;
        }
        const char *exp_sha;
        uint64_t exp_size;
        size_t j = SIZE_MAX;
        if (!strcmp(raw, MANIFEST_NAME)) {
            if (manifest_done) {
                seterr(msg, msglen, "entry '%s' appears twice", raw);
                goto out;
            }
            manifest_done = 1;
            exp_sha = R->manifest_sha;
            exp_size = R->S.manifest_len;
        } else {
            if (!smap_get(&R->byname, raw, &j)) {
                seterr(msg, msglen, "entry '%s' is not in the manifest", raw);
                goto out;
            }
            if (R->res[j].extracted) {
                seterr(msg, msglen, "entry '%s' appears twice", raw);
                goto out;
            }
            exp_sha = R->res[j].msha;
            exp_size = R->res[j].msize;
        }
        if (archive_entry_size_is_set(e) && archive_entry_size(e) >= 0 &&
            (uint64_t)archive_entry_size(e) > PKG_MAX_ENTRY_SIZE) {
            seterr(msg, msglen, "entry '%s' is larger than the limit of 1 GiB", raw);
            goto out;
        }
        const char *slash = strrchr(raw, '/');
        int pfd;
        if (open_dirs(X, raw, slash ? (size_t)(slash - raw) : 0, &pfd, why, sizeof why)) {
            seterr(msg, msglen, "entry '%s': %s", raw, why);
            goto out;
        }
        const char *leaf = slash ? slash + 1 : raw;
        X->fd = openat(pfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        int oerr = errno;
        if (pfd != X->rootfd) close(pfd);
        if (X->fd < 0) {
            if (oerr == EEXIST)
                seterr(msg, msglen, "entry '%s': a file or link of that name already exists",
                       raw);
            else
                seterr(msg, msglen, "entry '%s': cannot create: %s", raw, strerror(oerr));
            goto out;
        }
        if (note_created(X, raw, len, 0)) {
            close(X->fd);
            X->fd = -1;
            (void)unlinkat(X->rootfd, raw, 0);
            seterr(msg, msglen, "out of memory");
            goto out;
        }
        uint64_t size;
        char sha[65];
        int dr = read_entry(a, buf, &total, file_sink, X, &size, sha, why, sizeof why);
        int cerr = close(X->fd);
        X->fd = -1;
        if (dr != 0) {
            seterr(msg, msglen, "entry '%s': %s", raw, why);
            goto out;
        }
        if (cerr != 0) {
            seterr(msg, msglen, "entry '%s': cannot write: %s", raw, strerror(errno));
            goto out;
        }
        if (size != exp_size || strcmp(sha, exp_sha)) {
            seterr(msg, msglen, "entry '%s': sha256 mismatch (manifest %s, actual %s)", raw,
                   exp_sha, sha);
            goto out;
        }
        if (j != SIZE_MAX) R->res[j].extracted = 1;
    }
    if (!manifest_done) {
        seterr(msg, msglen, "manifest.json disappeared while extracting");
        goto out;
    }
    for (size_t k = 0; k < R->nres; k++) {
        if (!R->res[k].extracted) {
            seterr(msg, msglen, "entry '%s' is missing", R->res[k].name);
            goto out;
        }
    }
    rc = 0;
out:
    cr_free(buf);
    archive_read_free(a);
    return rc;
}

int pkg_extract(const char *path, const char *dir, char *err, size_t errlen)
{
    char ebuf[1024] = "";
    if (!path || !dir || !*dir) {
        seterr(err, errlen, "no package or folder given");
        return -1;
    }
    report R;
    int rc = verify(path, &R, ebuf, sizeof ebuf);
    if (R.S.unsafe) {
        seterr(err, errlen, "refusing to extract %s: %s", path, R.S.unsafe);
        report_free(&R);
        return -1;
    }
    if (rc != 0) {
        if (rc < 0)
            seterr(err, errlen, "%s", ebuf);
        else
            seterr(err, errlen, "refusing to extract %s: it failed verification: %s", path,
                   R.nerr ? R.errs[0] : "unknown problem");
        report_free(&R);
        return -1;
    }
    struct stat st;
    int existed = lstat(dir, &st) == 0;
    if (cr_mkdirs(dir, 0755) != 0) {
        seterr(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        report_free(&R);
        return -1;
    }
    xctx X = {.fd = -1};
    X.rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (X.rootfd < 0) {
        seterr(err, errlen, "cannot open %s: %s", dir, strerror(errno));
        report_free(&R);
        return -1;
    }
    rc = extract_entries(path, &R, &X, ebuf, sizeof ebuf);
    if (rc != 0) {
        seterr(err, errlen, "cannot extract %s: %s", path, ebuf);
        if (X.fd >= 0) close(X.fd);
        for (size_t i = X.n; i-- > 0;)
            (void)unlinkat(X.rootfd, X.c[i].rel, X.c[i].isdir ? AT_REMOVEDIR : 0);
    }
    for (size_t i = 0; i < X.n; i++) cr_free(X.c[i].rel);
    cr_free(X.c);
    close(X.rootfd);
    if (rc != 0 && !existed) (void)rmdir(dir);
    report_free(&R);
    return rc;
}
