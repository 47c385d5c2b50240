/*
 * spice_util.c - text buffers on the host allocator, file helpers, and the
 * seeded per-component random draws.
 */
#include "spice_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void *sp_calloc(const crucible_host *h, size_t n, size_t size)
{
    if (!n) n = 1;
    if (!size || n > SIZE_MAX / size) return NULL;
    void *p = h->realloc(h, NULL, 0, n * size);
    if (p) memset(p, 0, n * size);
    return p;
}

void sp_free(const crucible_host *h, void *p, size_t n, size_t size)
{
    if (!p) return;
    if (!n) n = 1;
    h->realloc(h, p, n * size, 0);
}

void sp_buf_init(sp_buf *b, const crucible_host *host)
{
    memset(b, 0, sizeof *b);
    b->host = host;
}

void sp_buf_free(sp_buf *b)
{
    if (b->s) b->host->realloc(b->host, b->s, b->cap, 0);
    b->s = NULL;
    b->len = b->cap = 0;
}

static int grow(sp_buf *b, size_t extra)
{
    if (b->err) return -1;
    if (extra > SIZE_MAX / 2 - b->len) {
        b->err = 1;
        return -1;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    char *s = b->host->realloc(b->host, b->s, b->cap, cap);
    if (!s) {
        b->err = 1;
        return -1;
    }
    b->s = s;
    b->cap = cap;
    return 0;
}

void sp_putn(sp_buf *b, const char *s, size_t n)
{
    if (grow(b, n)) return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

void sp_puts(sp_buf *b, const char *s) { sp_putn(b, s, strlen(s)); }

void sp_printf(sp_buf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->err = 1;
        return;
    }
    if ((size_t)n < sizeof small) {
        sp_putn(b, small, (size_t)n);
        return;
    }
    if (grow(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sp_json_str(sp_buf *b, const char *s)
{
    if (!s) {
        sp_puts(b, "null");
        return;
    }
    sp_putn(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            sp_putn(b, e, 2);
        } else if (*p == '\n') {
            sp_puts(b, "\\n");
        } else if (*p == '\t') {
            sp_puts(b, "\\t");
        } else if (*p < 0x20) {
            sp_printf(b, "\\u%04x", *p);
        } else {
            sp_putn(b, (const char *)p, 1);
        }
    }
    sp_putn(b, "\"", 1);
}

void sp_json_num(sp_buf *b, double v)
{
    if (!isfinite(v)) sp_puts(b, "null");
    else if (v == floor(v) && fabs(v) < 1e15) sp_printf(b, "%.0f", v);
    else sp_printf(b, "%.6g", v);
}

int sp_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t put = len ? fwrite(data, 1, len, f) : 0;
    int bad = fclose(f) != 0 || put != len;
    return bad ? -1 : 0;
}

int sp_path_join(char *buf, size_t n, const char *dir, const char *name)
{
    int k = snprintf(buf, n, "%s/%s", dir, name);
    return (k < 0 || (size_t)k >= n) ? -1 : 0;
}

/* splitmix64 finaliser */
static uint64_t mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

double sp_draw(uint64_t seed, const char *name)
{
    uint64_t hsh = 0xCBF29CE484222325ull; /* FNV-1a of the name */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        hsh ^= *p;
        hsh *= 0x100000001B3ull;
    }
    uint64_t r = mix(hsh ^ mix(seed));
    return (double)(r >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

void sp_fmt_count(char *buf, size_t n, double v)
{
    char raw[64];
    snprintf(raw, sizeof raw, "%.0f", v < 0 ? -v : v);
    size_t len = strlen(raw), k = 0;
    if (v < 0 && k + 1 < n) buf[k++] = '-';
    for (size_t i = 0; i < len && k + 2 < n; i++) {
        buf[k++] = raw[i];
        size_t left = len - i - 1;
        if (left && left % 3 == 0) buf[k++] = ',';
    }
    buf[k] = 0;
}
