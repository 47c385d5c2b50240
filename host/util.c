/* util.c - see util.h. */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

static void *default_realloc(void *p, size_t old, size_t n)
{
    (void)old;
    if (n == 0) {
        free(p);
        return NULL;
    }
    return realloc(p, n);
}

static cr_realloc_fn g_realloc = default_realloc;

void cr_set_allocator(cr_realloc_fn fn) { g_realloc = fn ? fn : default_realloc; }
void *cr_malloc(size_t n) { return g_realloc(NULL, 0, n ? n : 1); }
void *cr_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) return NULL;
    size_t total = n * size;
    void *p = cr_malloc(total);
    if (p) memset(p, 0, total > 0 ? total : 1);
    return p;
}
void *cr_realloc(void *p, size_t n) { return g_realloc(p, 0, n ? n : 1); }
void cr_free(void *p)
{
    if (p) g_realloc(p, 0, 0);
}
char *cr_strdup(const char *s)
{
    if (!s) return NULL;
    return cr_strndup(s, strlen(s));
}
char *cr_strndup(const char *s, size_t n)
{
    char *d = cr_malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}
int cr_grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 8;
    while (nc < need) {
        if (nc > SIZE_MAX / 2) return -1;
        nc *= 2;
    }
    if (elem && nc > SIZE_MAX / elem) return -1;
    void *p = cr_realloc(*arr, nc * elem);
    if (!p) return -1;
    memset((char *)p + *cap * elem, 0, (nc - *cap) * elem);
    *arr = p;
    *cap = nc;
    return 0;
}

void jb_init(jbuf *b) { memset(b, 0, sizeof *b); }
void jb_free(jbuf *b)
{
    cr_free(b->s);
    memset(b, 0, sizeof *b);
}
static int jb_reserve(jbuf *b, size_t add)
{
    if (b->err) return -1;
    if (add > SIZE_MAX - b->len - 1) {
        b->err = 1;
        return -1;
    }
    size_t need = b->len + add + 1;
    if (need <= b->cap) return 0;
    size_t nc = b->cap ? b->cap : 64;
    while (nc < need) nc = nc > SIZE_MAX / 2 ? need : nc * 2;
    char *p = cr_realloc(b->s, nc);
    if (!p) {
        b->err = 1;
        return -1;
    }
    b->s = p;
    b->cap = nc;
    return 0;
}
void jb_putn(jbuf *b, const char *s, size_t n)
{
    if (jb_reserve(b, n)) return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}
void jb_puts(jbuf *b, const char *s) { jb_putn(b, s, strlen(s)); }
void jb_putc(jbuf *b, char c) { jb_putn(b, &c, 1); }
void jb_vprintf(jbuf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0 || jb_reserve(b, (size_t)n)) {
        b->err = 1;
        return;
    }
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}
void jb_printf(jbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    jb_vprintf(b, fmt, ap);
    va_end(ap);
}
void jb_jstr(jbuf *b, const char *s)
{
    if (!s) {
        jb_puts(b, "null");
        return;
    }
    jb_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': jb_puts(b, "\\\""); break;
        case '\\': jb_puts(b, "\\\\"); break;
        case '\n': jb_puts(b, "\\n"); break;
        case '\r': jb_puts(b, "\\r"); break;
        case '\t': jb_puts(b, "\\t"); break;
        default:
            if (*p < 0x20)
                jb_printf(b, "\\u%04x", *p);
            else
                jb_putc(b, (char)*p);
        }
    }
    jb_putc(b, '"');
}
void jb_jnum(jbuf *b, double v)
{
    if (!isfinite(v)) {
        jb_puts(b, "null");
        return;
    }
    if (v == (double)(long long)v && fabs(v) < 1e15)
        jb_printf(b, "%lld", (long long)v);
    else
        jb_printf(b, "%.9g", v);
}
char *jb_take(jbuf *b)
{
    char *s = b->s;
    if (!s) s = cr_strdup("");
    memset(b, 0, sizeof *b);
    return s;
}

uint8_t *cr_read_file(const char *path, size_t *len, size_t max_bytes,
                      char *err, size_t errlen)
{
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    if (max_bytes == 0) max_bytes = SIZE_MAX / 2;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s is a directory, not a file", path);
        fclose(f);
        return NULL;
    }
    for (;;) {
        if (cr_grow((void **)&buf, &cap, n + 65536 + 1, 1)) {
            snprintf(err, errlen, "%s: out of memory", path);
            goto fail;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (n > max_bytes) {
            snprintf(err, errlen, "%s: larger than the limit of %zu bytes",
                     path, max_bytes);
            goto fail;
        }
        if (got == 0) break;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        goto fail;
    }
    fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
fail:
    fclose(f);
    cr_free(buf);
    return NULL;
}

int cr_write_file_atomic(const char *path, const void *data, size_t len,
                         char *err, size_t errlen)
{
    size_t pl = strlen(path);
    char *tmp = cr_malloc(pl + 32);
    if (!tmp) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(tmp, pl + 32, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a file beside %s: %s", path,
                 strerror(errno));
        cr_free(tmp);
        return -1;
    }
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            cr_free(tmp);
            return -1;
        }
        p += w;
        left -= (size_t)w;
    }
    fchmod(fd, 0644);
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        cr_free(tmp);
        return -1;
    }
    cr_free(tmp);
    return 0;
}

char *cr_path_join(const char *a, const char *b)
{
    if (!a || !*a) return cr_strdup(b);
    size_t la = strlen(a), lb = strlen(b);
    char *r = cr_malloc(la + lb + 2);
    if (!r) return NULL;
    memcpy(r, a, la);
    size_t o = la;
    if (la && a[la - 1] != '/') r[o++] = '/';
    memcpy(r + o, b, lb + 1);
    return r;
}
char *cr_dirname(const char *path)
{
    const char *s = strrchr(path, '/');
    if (!s) return cr_strdup(".");
    if (s == path) return cr_strdup("/");
    return cr_strndup(path, (size_t)(s - path));
}
const char *cr_basename(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}
int cr_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}
int cr_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}
int cr_mkdirs(const char *path, int mode)
{
    char *p = cr_strdup(path);
    if (!p) return -1;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, (mode_t)mode) != 0 && errno != EEXIST) {
            cr_free(p);
            return -1;
        }
        *s = '/';
    }
    int r = mkdir(p, (mode_t)mode);
    cr_free(p);
    if (r != 0 && errno == EEXIST && cr_is_dir(path)) return 0;
    return r;
}
int cr_rmtree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) return -1;
    if (!S_ISDIR(st.st_mode)) return unlink(path);
    DIR *d = opendir(path);
    if (!d) return -1;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *c = cr_path_join(path, e->d_name);
        if (!c || cr_rmtree(c) != 0) rc = -1;
        cr_free(c);
    }
    closedir(d);
    if (rmdir(path) != 0) rc = -1;
    return rc;
}
