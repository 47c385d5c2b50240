/*
 * crucible/abi.h - versioning, status codes and the plugin entry point.
 *
 * ABI rules (read these before changing any SDK header):
 *
 *  - Every ABI struct begins with a crucible_header {size, abi_major,
 *    abi_minor}. The header uses fixed-width fields only, so it can be read
 *    safely even from a plugin built for another pointer width.
 *  - Within one major version, fields are only ever APPENDED. A reader copies
 *    min(header.size, sizeof(its struct)) into a zeroed struct, so a field a
 *    plugin or host does not know reads as 0 / NULL, which always means
 *    "absent / unsupported".
 *  - A different major version is refused by the host, with a message that
 *    names the plugin, its ABI and the host's.
 *  - CRUCIBLE_ABI_TAG encodes sizeof(void*) and sizeof(size_t); the host
 *    refuses an entry whose tag differs (a 32/64-bit or mixed build).
 *  - Status codes are negative ints (CRUCIBLE_E_*); 0 is success.
 *    crucible_status_str() names them. Details go through the host's log.
 *  - A plugin never calls exit() or abort(), and never links against host
 *    symbols: everything it needs from the host arrives in crucible_host.
 *
 * Threading: unless a slot says otherwise, the host calls plugin slots from
 * one thread at a time ([main-thread]).
 */
#ifndef CRUCIBLE_ABI_H
#define CRUCIBLE_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CRUCIBLE_ABI_MAJOR 1
#define CRUCIBLE_ABI_MINOR 1

/* 0xC7 marker, sizeof(void*) and sizeof(size_t), one byte each. */
#define CRUCIBLE_ABI_TAG                                                    \
    ((uint32_t)0xC7000000u | ((uint32_t)sizeof(void *) << 8) |            \
     (uint32_t)sizeof(size_t))

/* The exported data symbol's name, as a string for dlsym(). */
#define CRUCIBLE_ENTRY_SYMBOL "crucible_plugin_entry"

#if defined(_WIN32)
#define CRUCIBLE_EXPORT __declspec(dllexport)
#else
#define CRUCIBLE_EXPORT __attribute__((visibility("default")))
#endif

/* Every ABI struct starts with this. */
typedef struct crucible_header {
    uint32_t size;      /* sizeof the struct as its writer compiled it */
    uint16_t abi_major; /* CRUCIBLE_ABI_MAJOR of the writer */
    uint16_t abi_minor; /* CRUCIBLE_ABI_MINOR of the writer */
} crucible_header;

#define CRUCIBLE_HEADER(type)                                               \
    { (uint32_t)sizeof(type), CRUCIBLE_ABI_MAJOR, CRUCIBLE_ABI_MINOR }

/* True when a struct of header `h` is large enough to hold `field` of the
 * reader's definition of `type` (OBS-style check). */
#define CRUCIBLE_HAS_FIELD(h, type, field)                                  \
    ((size_t)(h).size >= offsetof(type, field) + sizeof(((type *)0)->field))

/* ---- status codes ------------------------------------------------------ */
typedef enum crucible_status {
    CRUCIBLE_OK = 0,
    CRUCIBLE_E_GENERIC = -1,     /* unspecified failure (see the log) */
    CRUCIBLE_E_NOMEM = -2,       /* allocation failed */
    CRUCIBLE_E_INVALID = -3,     /* invalid argument or state */
    CRUCIBLE_E_IO = -4,          /* file could not be read or written */
    CRUCIBLE_E_FORMAT = -5,      /* malformed input file */
    CRUCIBLE_E_UNSUPPORTED = -6, /* valid, but not supported here */
    CRUCIBLE_E_ABI = -7,         /* ABI version or tag mismatch */
    CRUCIBLE_E_NOTFOUND = -8,    /* named thing does not exist */
    CRUCIBLE_E_TOOL = -9,        /* an external tool failed */
    CRUCIBLE_E_SKIPPED = -10,    /* step could not run (tool missing, ...) */
    CRUCIBLE_E_MISMATCH = -11,   /* verification found a difference */
    CRUCIBLE_E_CAPACITY = -12,   /* does not fit the board */
    CRUCIBLE_E_BOARD = -13,      /* board description invalid */
    CRUCIBLE_E_LIMIT = -14,      /* a size or count limit was exceeded */
    CRUCIBLE_E_TIMEOUT = -15     /* an external tool or step timed out */
} crucible_status;

static inline const char *crucible_status_str(int status)
{
    switch (status) {
    case CRUCIBLE_OK: return "ok";
    case CRUCIBLE_E_GENERIC: return "failure";
    case CRUCIBLE_E_NOMEM: return "out of memory";
    case CRUCIBLE_E_INVALID: return "invalid argument";
    case CRUCIBLE_E_IO: return "input/output error";
    case CRUCIBLE_E_FORMAT: return "malformed input";
    case CRUCIBLE_E_UNSUPPORTED: return "unsupported";
    case CRUCIBLE_E_ABI: return "ABI mismatch";
    case CRUCIBLE_E_NOTFOUND: return "not found";
    case CRUCIBLE_E_TOOL: return "external tool failed";
    case CRUCIBLE_E_SKIPPED: return "skipped";
    case CRUCIBLE_E_MISMATCH: return "verification mismatch";
    case CRUCIBLE_E_CAPACITY: return "does not fit";
    case CRUCIBLE_E_BOARD: return "invalid board description";
    case CRUCIBLE_E_LIMIT: return "limit exceeded";
    case CRUCIBLE_E_TIMEOUT: return "timed out";
    default: return status < 0 ? "unknown error" : "ok";
    }
}

/* ---- interface ids ------------------------------------------------------
 * Interfaces are fetched by string id "NAME/REV". Vendors use reverse-DNS
 * ids for their own ("com.example.npu-extras/1"). */
#define CRUCIBLE_IFACE_FRONTEND "crucible.frontend/1"
#define CRUCIBLE_IFACE_TARGET "crucible.target/1"
#define CRUCIBLE_IFACE_PLANNER "crucible.planner/1"

struct crucible_host;

/*
 * The one exported symbol of a plugin, and it is data. The C object cannot
 * share its name with the typedef, so declare it with CRUCIBLE_ENTRY():
 *
 *     CRUCIBLE_ENTRY(my_entry) = {
 *         CRUCIBLE_HEADER(crucible_plugin_entry), CRUCIBLE_ABI_TAG, 0,
 *         "my-target", "My target", "0.1.0", "Example Ltd", "...",
 *         my_interfaces, my_init, my_deinit, my_get_interface };
 *
 * The host reads and validates this struct BEFORE any plugin code runs
 * (header, tag, id, interface list), so `plugins` can list a plugin it then
 * refuses. All strings and arrays are static and live as long as the shared
 * object is loaded.
 */
typedef struct crucible_plugin_entry {
    crucible_header hdr;
    uint32_t abi_tag;  /* CRUCIBLE_ABI_TAG */
    uint32_t reserved; /* 0 */

    /* Unique id. Short names ("fpga-verilog") for crucible's own plugins,
     * reverse-DNS for third parties ("com.example.npu"). Required. Matches
     * [A-Za-z0-9._-]{1,63}. The first plugin found with an id wins. */
    const char *id;
    const char *name;        /* human-readable name; may be NULL */
    const char *version;     /* plugin version, e.g. "1.2.0"; required */
    const char *vendor;      /* may be NULL */
    const char *description; /* one line; may be NULL */

    /* NULL-terminated list of interface ids this plugin implements, e.g.
     * { CRUCIBLE_IFACE_TARGET, NULL }. Required, at least one. */
    const char *const *interfaces;

    /* [main-thread] Called once after validation. `host` stays valid until
     * deinit returns. Writes the plugin's state to *state (may be NULL).
     * Returns CRUCIBLE_OK or a negative status; on failure the host logs
     * the reason, does not call deinit, and unloads the plugin. */
    int (*init)(const struct crucible_host *host, void **state);

    /* [main-thread] Called once before unloading; may be NULL. */
    void (*deinit)(void *state);

    /* [main-thread] Returns the vtable for one of the ids in `interfaces`
     * (each vtable begins with a crucible_header), or NULL. The pointer is
     * valid until deinit. */
    const void *(*get_interface)(void *state, const char *iface_id);
} crucible_plugin_entry;

/* Defines the exported entry object `cname` under the symbol name
 * CRUCIBLE_ENTRY_SYMBOL (GCC/Clang asm label). */
#define CRUCIBLE_ENTRY(cname)                                               \
    CRUCIBLE_EXPORT const crucible_plugin_entry cname __asm__(             \
        CRUCIBLE_ENTRY_SYMBOL)

#ifdef __cplusplus
}
#endif
#endif /* CRUCIBLE_ABI_H */
