/* runner.c - runs the tests declared in test-list.h.
 *
 *   crucible-tests [FILTER...]   run tests whose name contains a FILTER
 *   crucible-tests --list        list test names
 *
 * Prints one line per test and a final "N passed, N failed, N skipped". */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "runner.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TEST_ENTRY(name) int name(void);
#include "test-list.h"
#undef TEST_ENTRY

static const struct {
    const char *name;
    int (*fn)(void);
} g_tests[] = {
#define TEST_ENTRY(name) {#name, name},
#include "test-list.h"
#undef TEST_ENTRY
    {NULL, NULL}};

static char g_tmpdir[512];

static void cleanup_tmp(void)
{
    if (g_tmpdir[0] && !getenv("CR_TEST_KEEP")) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmpdir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmpdir);
    }
}

const char *test_tmpdir(void)
{
    static int n;
    static char dir[600];
    if (!g_tmpdir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(g_tmpdir, sizeof g_tmpdir, "%s/crucible-tests.XXXXXX",
                 t && *t ? t : "/tmp");
        if (!mkdtemp(g_tmpdir)) {
            perror("mkdtemp");
            exit(2);
        }
        atexit(cleanup_tmp);
    }
    snprintf(dir, sizeof dir, "%s/t%d", g_tmpdir, ++n);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    if (system(cmd) != 0) exit(2);
    return dir;
}

int test_sh(char **out, const char *fmt, ...)
{
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&cmd, fmt, ap) < 0) cmd = NULL;
    va_end(ap);
    if (!cmd) return -1;
    char *full = NULL;
    if (asprintf(&full, "( %s ) 2>&1", cmd) < 0) full = NULL;
    free(cmd);
    if (!full) return -1;
    FILE *p = popen(full, "r");
    free(full);
    if (!p) return -1;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        pclose(p);
        return -1;
    }
    size_t got;
    while ((got = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (cap - len < 1024) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) break;
            buf = nb;
        }
    }
    buf[len] = 0;
    int st = pclose(p);
    if (getenv("CR_TEST_VERBOSE")) fprintf(stderr, "%s", buf);
    if (out)
        *out = buf;
    else
        free(buf);
    if (st == -1) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int test_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

unsigned char *test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    *len = 0;
    if (!f) return NULL;
    size_t cap = 65536, n = 0;
    unsigned char *b = malloc(cap);
    size_t got;
    while (b && (got = fread(b + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            unsigned char *nb = realloc(b, cap *= 2);
            if (!nb) {
                free(b);
                b = NULL;
            }
            b = nb;
        }
    }
    if (b && ferror(f)) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) *len = n;
    return b;
}

int test_write_file(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(b, 1, n, f) == n;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

int test_contains(const char *h, const char *n)
{
    return h && n && strstr(h, n) != NULL;
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0, skipped = 0;
    if (argc > 1 && !strcmp(argv[1], "--list")) {
        for (int i = 0; g_tests[i].name; i++) puts(g_tests[i].name);
        return 0;
    }
    for (int i = 0; g_tests[i].name; i++) {
        if (argc > 1) {
            int match = 0;
            for (int a = 1; a < argc; a++)
                if (strstr(g_tests[i].name, argv[a])) match = 1;
            if (!match) continue;
        }
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        fflush(stdout);
        int r = g_tests[i].fn();
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
        const char *v = r == TEST_PASS ? "PASS" : r == TEST_SKIP ? "SKIP" : "FAIL";
        printf("%-4s %s (%.0f ms)\n", v, g_tests[i].name, ms);
        fflush(stdout);
        if (r == TEST_PASS) passed++;
        else if (r == TEST_SKIP) skipped++;
        else failed++;
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
