/*
 * runner.h - the test framework: every test is a function listed in
 * test-list.h (which includes one list-*.h per area); one runner,
 * tests/runner.c, runs them all or those whose name contains a filter.
 *
 *   TEST(test_sha256_vectors) { CHECK(x == 1); return TEST_PASS; }
 *
 * A test returns TEST_PASS, TEST_FAIL or TEST_SKIP (use SKIP("why")).
 */
#ifndef CR_TEST_RUNNER_H
#define CR_TEST_RUNNER_H

#include <stddef.h>
#include <stdio.h>

enum { TEST_PASS = 0, TEST_FAIL = 1, TEST_SKIP = 2 };

#define TEST(name) int name(void); int name(void)

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "    %s:%d: CHECK failed: %s\n", __FILE__,      \
                    __LINE__, #cond);                                       \
            return TEST_FAIL;                                               \
        }                                                                   \
    } while (0)

#define CHECK_MSG(cond, ...)                                                \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "    %s:%d: CHECK failed: %s: ", __FILE__,      \
                    __LINE__, #cond);                                       \
            fprintf(stderr, __VA_ARGS__);                                   \
            fprintf(stderr, "\n");                                          \
            return TEST_FAIL;                                               \
        }                                                                   \
    } while (0)

#define SKIP(...)                                                           \
    do {                                                                    \
        fprintf(stderr, "    SKIP: ");                                      \
        fprintf(stderr, __VA_ARGS__);                                       \
        fprintf(stderr, "\n");                                              \
        return TEST_SKIP;                                                   \
    } while (0)

/* Paths baked in at build time. */
#ifndef CR_SOURCE_DIR
#define CR_SOURCE_DIR "."
#endif
#ifndef CR_BUILD_DIR
#define CR_BUILD_DIR "."
#endif
#define CR_CRUCIBLE_BIN CR_BUILD_DIR "/bin/crucible"
#define CR_TEST_PLUGIN_DIR CR_BUILD_DIR "/tests/plugins"

/* Helpers in runner.c. */
/* A fresh empty directory under $TMPDIR, removed at exit. */
const char *test_tmpdir(void);
/* Runs a shell command; captures stdout+stderr into *out (malloc'd, may be
 * NULL if out is NULL). Returns the exit status (or -1). */
int test_sh(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Writes a text file. Returns 0 on success. */
int test_write(const char *path, const char *text);
/* Whole file into a malloc'd buffer (free with free()); NULL on failure. */
unsigned char *test_read_file(const char *path, size_t *len);
/* Writes n bytes. Returns 0 on success. */
int test_write_file(const char *path, const void *b, size_t n);
/* Does haystack contain needle? (NULL-safe) */
int test_contains(const char *haystack, const char *needle);

#endif
