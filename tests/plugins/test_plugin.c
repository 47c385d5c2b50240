/*
 * test_plugin.c - one minimal, valid target plugin, compiled into the
 * well-behaved and the deliberately broken plugins that the loader tests
 * (tests/test_loader.c) feed to the host.
 *
 * tests/plugins/CMakeLists.txt builds one .so per variant and defines at
 * most one TP_* macro for it (plus TP_ID for the id). Each .so's purpose:
 *
 *   good_target.so            no macro: valid target "test-good"; LOADED
 *   newer_minor.so            TP_NEWER_MINOR: entry and target vtable come
 *                             from a future ABI minor (abi_minor + 1, larger
 *                             size, extra slots at the end); LOADED, the
 *                             reason notes the newer minor
 *   older_minor.so            TP_OLDER_MINOR: target vtable whose hdr.size
 *                             stops before `verify` (as if built against a
 *                             minor that did not have it yet); LOADED, the
 *                             host's copy of verify reads NULL
 *   dup_first.so, dup_second.so
 *                             same id "test-dup": first LOADED, second
 *                             DUPLICATE
 *   bad_wrong_major.so        TP_WRONG_MAJOR: hdr.abi_major = 2; REFUSED
 *   bad_wrong_tag.so          TP_WRONG_TAG: abi_tag claims 4-byte pointers
 *                             and size_t (a 32-bit build); REFUSED
 *   bad_null_query.so         TP_NULL_QUERY: target.query = NULL; REFUSED,
 *                             naming the slot
 *   bad_init_fails.so         TP_INIT_FAILS: init returns
 *                             CRUCIBLE_E_GENERIC; REFUSED "init failed"
 *   bad_no_entry.so           TP_NO_EXPORT: the entry is defined but not
 *                             exported (CRUCIBLE_EXPORT forgotten, hidden
 *                             visibility), so dlsym finds no
 *                             crucible_plugin_entry; REFUSED
 *   bad_undefined_symbol.so   TP_UNDEFINED_SYMBOL: calls a host-like
 *                             function no one defines (built without
 *                             -Wl,--no-undefined); dlopen fails; REFUSED
 *   bad_invalid_id.so         TP_ID "bad id!"; REFUSED
 *   ../plugins-crash/crash_query.so
 *                             TP_CRASH_QUERY: "test-crash", whose query
 *                             writes through a NULL pointer (SIGSEGV); kept
 *                             in its own directory so it loads only when a
 *                             test asks for it
 *
 * The well-behaved parts double as a reference for the smallest target:
 * state allocated with the host's allocator in init and released in
 * deinit, a pure query, one artifact, one verification step.
 */
#include <crucible/crucible.h>

#include <stddef.h>
#include <string.h>

#ifndef TP_ID
#define TP_ID "test-good"
#endif

typedef struct tp_state {
    const crucible_host *host;
    unsigned compiles;
} tp_state;

#ifdef TP_UNDEFINED_SYMBOL
/* What a plugin gets wrong when it calls into the host directly instead of
 * through crucible_host: nothing defines this, so dlopen(RTLD_NOW) fails. */
void crucible_host_log_direct(const char *fmt, ...);
#endif

static int tp_init(const crucible_host *host, void **state)
{
#ifdef TP_UNDEFINED_SYMBOL
    crucible_host_log_direct("test plugin %s", TP_ID);
#endif

#ifdef TP_INIT_FAILS
    (void)host;
    *state = NULL;
    return CRUCIBLE_E_GENERIC;
#else
    tp_state *s = crucible_alloc(host, sizeof *s);
    if (!s) return CRUCIBLE_E_NOMEM;
    memset(s, 0, sizeof *s);
    s->host = host;
    *state = s;
    return CRUCIBLE_OK;
#endif
}

static void tp_deinit(void *state)
{
    tp_state *s = state;
    if (s) crucible_free(s->host, s, sizeof *s);
}

static int tp_accept_board(void *state, const crucible_board *board,
                           char *why, size_t why_len)
{
    (void)state;
    (void)board;
    if (why && why_len) why[0] = 0;
    return CRUCIBLE_OK;
}

/* Pure and allocation-free: every node is supported, costs unknown. */
static int tp_query(void *state, const crucible_query_ctx *ctx,
                    const crucible_graph_view *g, uint32_t node,
                    crucible_support *out)
{
    (void)state;
    (void)ctx;
#ifdef TP_CRASH_QUERY
    /* Deliberate: a plugin bug the host must survive and report. */
    int *volatile nowhere = NULL;
    *nowhere = 1;
#endif
    if (node >= g->n_nodes) return CRUCIBLE_E_INVALID;
    out->level = CRUCIBLE_SUPPORT_YES;
    static const char note[] = "test plugin " TP_ID;
    if (CRUCIBLE_HAS_FIELD(*out, crucible_support, reason))
        memcpy(out->reason, note, sizeof note);
    return CRUCIBLE_OK;
}

static int tp_compile(void *state, const crucible_compile_ctx *ctx)
{
    tp_state *s = state;
    s->compiles++;
    static const char text[] = "artifact of the test plugin " TP_ID "\n";
    return ctx->sink->emit(ctx->sink->ctx, "test.txt", text, sizeof text - 1);
}

static int tp_verify(void *state, const crucible_verify_ctx *ctx)
{
    (void)state;
    ctx->report(ctx->ctx, "test-check", NULL, CRUCIBLE_VERDICT_PASS,
                "test plugin: nothing is compared", NULL);
    return CRUCIBLE_OK;
}

/* ---- the target vtable ---------------------------------------------------*/

#if defined(TP_NEWER_MINOR)
/* A crucible_target as a later minor version might define it: the same
 * fields, then slots this host has never heard of. */
typedef struct tp_future_target {
    crucible_target base;
    int (*estimate_power)(void *state, const crucible_graph_view *g,
                          double *watts);
    const char *future_note;
} tp_future_target;

static int tp_estimate_power(void *state, const crucible_graph_view *g,
                             double *watts)
{
    (void)state;
    (void)g;
    *watts = 0.5;
    return CRUCIBLE_OK;
}

static const tp_future_target tp_target_full = {
    .base = {
        .hdr = {(uint32_t)sizeof(tp_future_target), CRUCIBLE_ABI_MAJOR,
                CRUCIBLE_ABI_MINOR + 1},
        .description = "test target from a newer ABI minor",
        .accept_board = tp_accept_board,
        .query = tp_query,
        .compile = tp_compile,
        .verify = tp_verify,
    },
    .estimate_power = tp_estimate_power,
    .future_note = "not read by this host",
};
#define TP_TARGET_PTR (&tp_target_full)
#else
static const crucible_target tp_target = {
#if defined(TP_OLDER_MINOR)
    /* Written by a plugin whose crucible_target ended before `verify`. The
     * slot is filled in below only to prove the host never reads past
     * hdr.size: its copy must hold NULL. */
    .hdr = {(uint32_t)offsetof(crucible_target, verify), CRUCIBLE_ABI_MAJOR,
            CRUCIBLE_ABI_MINOR},
#else
    .hdr = CRUCIBLE_HEADER(crucible_target),
#endif
    .description = "test target",
    .boundaries = NULL,
    .accept_board = tp_accept_board,
#if defined(TP_NULL_QUERY)
    .query = NULL, /* required slot missing */
#else
    .query = tp_query,
#endif
    .compile = tp_compile,
    .verify = tp_verify,
};
#define TP_TARGET_PTR (&tp_target)
#endif

static const void *tp_get_interface(void *state, const char *iface_id)
{
    (void)state;
#ifdef TP_NULL_QUERY
    (void)tp_query; /* defined, but deliberately left out of the vtable */
#endif
    if (iface_id && strcmp(iface_id, CRUCIBLE_IFACE_TARGET) == 0)
        return TP_TARGET_PTR;
    return NULL;
}

static const char *const tp_interfaces[] = {CRUCIBLE_IFACE_TARGET, NULL};

/* ---- the entry -----------------------------------------------------------
 * The exported object must be named crucible_plugin_entry, which is also
 * the name of its type; C does not allow an object and a typedef of the
 * same name in one scope, so the object gets a local name and an assembler
 * label that gives it the exported symbol name. */

#if defined(TP_NO_EXPORT)
#define TP_EXPORT /* CRUCIBLE_EXPORT forgotten: the symbol stays hidden */
#else
#define TP_EXPORT CRUCIBLE_EXPORT
#endif

#if defined(TP_WRONG_MAJOR)
#define TP_HDR {(uint32_t)sizeof(crucible_plugin_entry), 2, 0}
#elif defined(TP_NEWER_MINOR)
#define TP_HDR                                                              \
    {(uint32_t)sizeof(tp_future_entry), CRUCIBLE_ABI_MAJOR,                \
     CRUCIBLE_ABI_MINOR + 1}
#else
#define TP_HDR CRUCIBLE_HEADER(crucible_plugin_entry)
#endif

#if defined(TP_WRONG_TAG)
/* The tag a 32-bit build would carry: 4-byte pointers and size_t. */
#define TP_TAG (0xC7000000u | (4u << 8) | 4u)
#else
#define TP_TAG CRUCIBLE_ABI_TAG
#endif

#define TP_ENTRY_FIELDS                                                     \
    .hdr = TP_HDR, .abi_tag = TP_TAG, .reserved = 0, .id = TP_ID,          \
    .name = "crucible loader test plugin", .version = "0.0.1",             \
    .vendor = "crucible tests",                                             \
    .description = "built by tests/plugins for the loader tests",          \
    .interfaces = tp_interfaces, .init = tp_init, .deinit = tp_deinit,      \
    .get_interface = tp_get_interface

#if defined(TP_NEWER_MINOR)
/* The entry struct as a later minor might define it: same fields, then
 * extra slots appended at the end. */
typedef struct tp_future_entry {
    crucible_plugin_entry base;
    int (*on_idle)(void *state);
    const char *homepage;
} tp_future_entry;

static int tp_on_idle(void *state)
{
    (void)state;
    return CRUCIBLE_OK;
}

TP_EXPORT const tp_future_entry tp_entry __asm__(CRUCIBLE_ENTRY_SYMBOL) = {
    .base = {TP_ENTRY_FIELDS},
    .on_idle = tp_on_idle,
    .homepage = "https://example.invalid/",
};
#else
TP_EXPORT const crucible_plugin_entry tp_entry
    __asm__(CRUCIBLE_ENTRY_SYMBOL) = {TP_ENTRY_FIELDS};
#endif
