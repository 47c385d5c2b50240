/*
 * util.h - small host-internal helpers: checked allocation, growable
 * strings (also used to write JSON), whole-file reads, paths.
 */
#ifndef CR_UTIL_H
#define CR_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Allocation: every host allocation goes through these, so the allocator
 * is injectable (cr_set_allocator) and failures are handled in one place. */
typedef void *(*cr_realloc_fn)(void *ptr, size_t old_size, size_t new_size);
void cr_set_allocator(cr_realloc_fn fn);
void *cr_malloc(size_t n);              /* NULL on failure */
void *cr_calloc(size_t n, size_t size); /* NULL on failure or overflow */
void *cr_realloc(void *p, size_t n);
void cr_free(void *p);
char *cr_strdup(const char *s);
char *cr_strndup(const char *s, size_t n);
/* Grows *arr (element size elem) so that it holds at least need elements;
 * *cap is updated. Returns 0 or -1 on overflow/allocation failure. */
int cr_grow(void **arr, size_t *cap, size_t need, size_t elem);

/* Growable NUL-terminated string. err is set once an allocation fails;
 * later writes are then ignored. */
typedef struct jbuf {
    char *s;
    size_t len, cap;
    int err;
} jbuf;
void jb_init(jbuf *b);
void jb_free(jbuf *b);
void jb_putn(jbuf *b, const char *s, size_t n);
void jb_puts(jbuf *b, const char *s);
void jb_putc(jbuf *b, char c);
void jb_printf(jbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void jb_vprintf(jbuf *b, const char *fmt, va_list ap);
/* A JSON string literal with quotes and escapes (NULL writes null). */
void jb_jstr(jbuf *b, const char *s);
/* A JSON number; NaN/inf are written as null. */
void jb_jnum(jbuf *b, double v);
/* Steals the buffer (caller frees with cr_free); b is reset. */
char *jb_take(jbuf *b);

/* Reads a whole file (at most max_bytes; 0 = no limit beyond SIZE_MAX/2).
 * On failure returns NULL and writes a message to err. The buffer has a
 * NUL appended (not counted in *len). */
uint8_t *cr_read_file(const char *path, size_t *len, size_t max_bytes,
                      char *err, size_t errlen);
/* Writes atomically: temp file in the same directory, fsync, rename. */
int cr_write_file_atomic(const char *path, const void *data, size_t len,
                         char *err, size_t errlen);

/* Path helpers; results are allocated (cr_free). */
char *cr_path_join(const char *a, const char *b);
char *cr_dirname(const char *path);
const char *cr_basename(const char *path); /* pointer into path */
int cr_is_dir(const char *path);
int cr_is_file(const char *path);
/* mkdir -p; returns 0 or -1 (errno set). */
int cr_mkdirs(const char *path, int mode);
/* rm -rf of a directory the host created itself. */
int cr_rmtree(const char *path);

#endif
