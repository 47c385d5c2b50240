/*
 * tfl_plugin.c - the "tflite" plugin (interface crucible.frontend/1):
 * entry point, score() and load(): reading the file, decoding it
 * (tfl_model.c over the FlatBuffers reader fb.c) and lowering it
 * (tfl_lower.c, tfl_lower_ops.c) through the host's IR builder.
 */
#define _XOPEN_SOURCE 700
#include "tfl_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#ifndef CRUCIBLE_VERSION
#define CRUCIBLE_VERSION "0.1.0"
#endif

static const crucible_host *g_host;

static void *arena_realloc(void *ud, void *p, size_t old, size_t n)
{
    const crucible_host *h = ud;
    return h->realloc(h, p, old, n);
}

static int log_err(const char *path, int status, const char *msg)
{
    g_host->log(g_host, CRUCIBLE_LOG_ERROR, "%s: %s", path, msg);
    return status;
}

static int read_file(const char *path, uint8_t **buf, size_t *len)
{
    char msg[600];
    FILE *f = fopen(path, "rb");
    *buf = NULL;
    *len = 0;
    if (!f) {
        snprintf(msg, sizeof msg, "cannot open: %s", strerror(errno));
        return log_err(path, CRUCIBLE_E_IO, msg);
    }
    struct stat st;
    int rc = CRUCIBLE_OK;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
        rc = log_err(path, CRUCIBLE_E_IO, "not a regular file");
        goto out;
    }
    if ((uint64_t)st.st_size > FB_MAX_SIZE) {
        snprintf(msg, sizeof msg,
                 "the file is %lld bytes; a TFLite FlatBuffer holds at most "
                 "2 GiB (larger models keep buffers outside it, which this "
                 "frontend does not read)",
                 (long long)st.st_size);
        rc = log_err(path, CRUCIBLE_E_LIMIT, msg);
        goto out;
    }
    size_t n = (size_t)st.st_size;
    *buf = g_host->realloc(g_host, NULL, 0, n ? n : 1);
    if (!*buf) {
        rc = log_err(path, CRUCIBLE_E_NOMEM, "out of memory");
        goto out;
    }
    if (n && fread(*buf, 1, n, f) != n) {
        snprintf(msg, sizeof msg, "read error: %s",
                 ferror(f) ? strerror(errno) : "the file shrank while reading");
        rc = log_err(path, CRUCIBLE_E_IO, msg);
        g_host->realloc(g_host, *buf, n ? n : 1, 0);
        *buf = NULL;
        goto out;
    }
    *len = n;
out:
    fclose(f);
    return rc;
}

/* ---- plugin slots -------------------------------------------------------- */
static int tfl_init(const crucible_host *host, void **state)
{
    g_host = host;
    *state = NULL;
    return CRUCIBLE_OK;
}

static int tfl_score(void *state, const char *path, const uint8_t *head,
                     size_t n)
{
    (void)state;
    int s = 0;
    if (head && n >= 8 && !memcmp(head + 4, "TFL3", 4)) {
        uint32_t root = fb_ld32(head);
        s = root >= 8 ? 95 : 50;
    }
    size_t l = path ? strlen(path) : 0;
    if (l > 7 && !strcasecmp(path + l - 7, ".tflite") && s < 60) s = 60;
    return s;
}

static int tfl_load(void *state, const char *path,
                    const crucible_ir_builder *b)
{
    (void)state;
    if (!path || !b) return CRUCIBLE_E_INVALID;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = read_file(path, &buf, &len);
    if (rc) return rc;
    tfl_arena a;
    /* decoded model + lowering temporaries: bounded by the file size */
    tfl_arena_init(&a, arena_realloc, (void *)g_host,
                   ((size_t)256 << 20) + 16 * len);
    tfl_model m;
    char err[1024];
    rc = tfl_model_parse(buf, len, &a, &m, err, sizeof err);
    if (!rc) {
        uint32_t unsup = 0;
        rc = tfl_lower(&m, len, &a, b, err, sizeof err, &unsup);
        if (!rc && unsup)
            g_host->log(g_host, CRUCIBLE_LOG_INFO,
                        "%s: %u operator%s could not be lowered (see the "
                        "unsupported nodes)",
                        path, (unsigned)unsup, unsup == 1 ? "" : "s");
    }
    if (rc) log_err(path, rc, err[0] ? err : crucible_status_str(rc));
    tfl_arena_free(&a);
    g_host->realloc(g_host, buf, len ? len : 1, 0);
    return rc;
}

static const crucible_frontend tfl_frontend = {
    CRUCIBLE_HEADER(crucible_frontend), "tflite", tfl_score, tfl_load};

static const void *tfl_get_interface(void *state, const char *id)
{
    (void)state;
    return id && !strcmp(id, CRUCIBLE_IFACE_FRONTEND) ? &tfl_frontend : NULL;
}

static const char *const tfl_ifaces[] = {CRUCIBLE_IFACE_FRONTEND, NULL};

CRUCIBLE_ENTRY(tfl_entry) = {
    CRUCIBLE_HEADER(crucible_plugin_entry),
    CRUCIBLE_ABI_TAG,
    0,
    "tflite",
    "TFLite frontend",
    CRUCIBLE_VERSION,
    "crucible",
    "reads TFLite FlatBuffer models (schema 3) with a bounds-checked reader "
    "and lowers them to the canonical ops",
    tfl_ifaces,
    tfl_init,
    NULL,
    tfl_get_interface};
