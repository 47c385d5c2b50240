/*
 * crucible/host.h - services the host gives every plugin.
 *
 * One crucible_host table is made per plugin and passed to its init(); it
 * stays valid until the plugin's deinit() returns. Plugins never link
 * against host symbols: logging, allocation and every other service are
 * reached through this table. Optional services are fetched by id with
 * get_extension(); a NULL answer means the host does not offer it.
 */
#ifndef CRUCIBLE_HOST_H
#define CRUCIBLE_HOST_H

#include <crucible/abi.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum crucible_log_level {
    CRUCIBLE_LOG_DEBUG = 0,
    CRUCIBLE_LOG_INFO = 1,
    CRUCIBLE_LOG_WARN = 2,
    CRUCIBLE_LOG_ERROR = 3,
    /* The plugin reports that it (or another party) broke a contract: the
     * host marks the plugin and shows the message whatever the verbosity. */
    CRUCIBLE_LOG_MISBEHAVING = 4
} crucible_log_level;

typedef struct crucible_host {
    crucible_header hdr;
    uint32_t abi_tag; /* CRUCIBLE_ABI_TAG of the host */
    uint32_t reserved;
    const char *host_name;    /* "crucible" */
    const char *host_version; /* e.g. "0.1.0" */

    /* [thread-safe] printf-style message, attributed to the plugin by the
     * host. A trailing newline is not needed. */
    void (*log)(const struct crucible_host *host, int level, const char *fmt,
                ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 3, 4)))
#endif
        ;

    /* [thread-safe] Lua-style allocator: new_size == 0 frees ptr and
     * returns NULL; otherwise behaves like realloc (ptr may be NULL).
     * old_size is the size the block was allocated with (0 for NULL). */
    void *(*realloc)(const struct crucible_host *host, void *ptr,
                     size_t old_size, size_t new_size);

    /* [thread-safe] Optional service by id (e.g. CRUCIBLE_EXT_TOOLS), or
     * NULL. The returned table begins with a crucible_header and is valid as
     * long as the host table. */
    const void *(*get_extension)(const struct crucible_host *host,
                                 const char *ext_id);

    /* Absolute path of the plugin's shared object (or "(built-in)"), and the
     * directory that holds it: boards/ and other data ship beside it. */
    const char *plugin_path;
    const char *plugin_dir;

    void *host_data; /* host-private; plugins must not touch it */
} crucible_host;

/* ---- extension: external tools -----------------------------------------
 * Running a real external tool is a host service: PATH lookup, timeout,
 * captured output, the tool's version recorded in the package manifest,
 * and a uniform SKIPPED answer (naming the Debian package) when the tool
 * is absent. */
#define CRUCIBLE_EXT_TOOLS "crucible.host.tools/1"

typedef struct crucible_tool_request {
    crucible_header hdr;
    const char *const *argv;   /* argv[0] is the tool name or a path */
    const char *cwd;           /* working directory; NULL = current */
    double timeout_s;          /* <= 0: the host default (600 s) */
    const char *debian_package;/* named in the SKIPPED message */
    const char *version_arg;   /* argument that prints the tool's version
                                  for the manifest; NULL = "--version" for
                                  a tool found on PATH (argv[0] without
                                  '/'), "" = do not record */
    const char *stdin_path;    /* file fed to stdin; NULL = /dev/null */
} crucible_tool_request;

typedef struct crucible_tool_result {
    crucible_header hdr;
    int status;      /* CRUCIBLE_OK when the tool ran and exited 0;
                        CRUCIBLE_E_SKIPPED when not found, CRUCIBLE_E_TIMEOUT,
                        CRUCIBLE_E_TOOL for a non-zero exit */
    int exit_code;   /* tool's exit status, or -1 */
    char *output;    /* stdout+stderr, NUL-terminated; host-owned, released
                        by free_result. Truncated to the last 1 MiB. */
    size_t output_len;
    double seconds;  /* wall time */
} crucible_tool_result;

typedef struct crucible_host_tools {
    crucible_header hdr;
    /* [main-thread] Runs a tool to completion. Returns res->status. */
    int (*run)(const crucible_host *host, const crucible_tool_request *req,
               crucible_tool_result *res);
    /* [thread-safe] Releases res->output. */
    void (*free_result)(const crucible_host *host, crucible_tool_result *res);
    /* [thread-safe] Absolute path of `name` on PATH, or NULL. The string is
     * host-owned and valid until the host table dies. */
    const char *(*find)(const crucible_host *host, const char *name);
} crucible_host_tools;

/* ---- extension: progress ----------------------------------------------- */
#define CRUCIBLE_EXT_PROGRESS "crucible.host.progress/1"

typedef struct crucible_host_progress {
    crucible_header hdr;
    /* [main-thread] `step` names a long step; fraction in [0,1], or < 0 when
     * unknown. Call with fraction 1 when the step ends. */
    void (*report)(const crucible_host *host, const char *step,
                   double fraction);
} crucible_host_progress;

/* ---- helpers (header-only, built only on the table above) -------------- */
static inline void *crucible_alloc(const crucible_host *h, size_t n)
{
    return h->realloc(h, NULL, 0, n ? n : 1);
}
static inline void crucible_free(const crucible_host *h, void *p, size_t n)
{
    if (p) h->realloc(h, p, n, 0);
}

#ifdef __cplusplus
}
#endif
#endif /* CRUCIBLE_HOST_H */
