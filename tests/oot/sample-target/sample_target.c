/*
 * sample_target.c - the smallest useful out-of-tree target plugin for
 * crucible, built against the installed SDK alone (see the Makefile).
 *
 * It is an ABI demonstration, not a real backend: it says YES to every
 * layer, "compiles" the graph into one text artifact (hello.txt) and
 * reports one verification step that compares nothing.
 *
 *   make                      builds sample_target.so
 *   make install              copies it to the user plugin directory
 *   crucible --plugin-dir . plugins
 */
#include <crucible/crucible.h>

#include <stdio.h>
#include <string.h>

#define SAMPLE_ID "com.example.sample-target"

typedef struct sample_state {
    const crucible_host *host; /* valid until deinit */
} sample_state;

/* [main-thread] */
static int sample_init(const crucible_host *host, void **state)
{
    sample_state *s = crucible_alloc(host, sizeof *s);
    if (!s) return CRUCIBLE_E_NOMEM;
    s->host = host;
    *state = s;
    host->log(host, CRUCIBLE_LOG_DEBUG, "sample target ready (host %s %s)",
              host->host_name, host->host_version);
    return CRUCIBLE_OK;
}

/* [main-thread] */
static void sample_deinit(void *state)
{
    sample_state *s = state;
    if (s) crucible_free(s->host, s, sizeof *s);
}

/* [thread-safe] Pure, fast, allocation-free: no logging, no files. The
 * host has already set level NO and every cost to CRUCIBLE_UNKNOWN; fill
 * only what is known and only fields that fit out->size. */
static int sample_query(void *state, const crucible_query_ctx *ctx,
                        const crucible_graph_view *g, uint32_t node,
                        crucible_support *out)
{
    (void)state;
    (void)ctx;
    if (node >= g->n_nodes) return CRUCIBLE_E_INVALID;
    const crucible_node_view *n = g->nodes[node];
    out->level = CRUCIBLE_SUPPORT_YES;
    if (CRUCIBLE_HAS_FIELD(*out, crucible_support, reason))
        snprintf(out->reason, sizeof out->reason,
                 "sample target accepts every op (here %s); it is an ABI "
                 "demo", n->op_name ? n->op_name : "?");
    return CRUCIBLE_OK;
}

/* [main-thread] One artifact, handed to the host through the sink. */
static int sample_compile(void *state, const crucible_compile_ctx *ctx)
{
    sample_state *s = state;
    const crucible_graph_view *g = ctx->graph;
    char text[512];
    int len = snprintf(text, sizeof text,
                       "hello from %s\ngraph %s: %u nodes, %u tensors\n",
                       SAMPLE_ID, g->name ? g->name : "(unnamed)", g->n_nodes,
                       g->n_tensors);
    if (len < 0) return CRUCIBLE_E_GENERIC;
    if ((size_t)len >= sizeof text) len = (int)sizeof text - 1;
    int rc = ctx->sink->emit(ctx->sink->ctx, "hello.txt", text, (size_t)len);
    if (rc != CRUCIBLE_OK)
        s->host->log(s->host, CRUCIBLE_LOG_ERROR, "emitting hello.txt: %s",
                     crucible_status_str(rc));
    return rc;
}

/* [main-thread] A real target runs its artifacts in an external tool on
 * ctx->samples and compares with the reference outputs; this one only
 * shows how a step is reported. */
static int sample_verify(void *state, const crucible_verify_ctx *ctx)
{
    (void)state;
    char msg[160];
    snprintf(msg, sizeof msg,
             "ABI demo: %u sample(s) received, nothing compared",
             ctx->n_samples);
    ctx->report(ctx->ctx, "sample-check", NULL, CRUCIBLE_VERDICT_PASS, msg,
                NULL);
    return CRUCIBLE_OK;
}

static const crucible_target sample_target = {
    .hdr = CRUCIBLE_HEADER(crucible_target),
    .description = "sample out-of-tree target (ABI demo)",
    .boundaries = NULL,
    .accept_board = NULL, /* absent: every board is accepted */
    .query = sample_query,
    .compile = sample_compile,
    .verify = sample_verify,
};

/* [main-thread] */
static const void *sample_get_interface(void *state, const char *iface_id)
{
    (void)state;
    if (iface_id && strcmp(iface_id, CRUCIBLE_IFACE_TARGET) == 0)
        return &sample_target;
    return NULL;
}

static const char *const sample_interfaces[] = {CRUCIBLE_IFACE_TARGET, NULL};

/* The one exported symbol. Its name, crucible_plugin_entry, is also the
 * name of its type, so the object is declared under a local name with an
 * assembler label carrying the exported name. */
CRUCIBLE_EXPORT const crucible_plugin_entry sample_entry
    __asm__(CRUCIBLE_ENTRY_SYMBOL) = {
    .hdr = CRUCIBLE_HEADER(crucible_plugin_entry),
    .abi_tag = CRUCIBLE_ABI_TAG,
    .reserved = 0,
    .id = SAMPLE_ID,
    .name = "Sample target",
    .version = "0.1.0",
    .vendor = "Example Ltd",
    .description = "out-of-tree sample target built against crucible-sdk",
    .interfaces = sample_interfaces,
    .init = sample_init,
    .deinit = sample_deinit,
    .get_interface = sample_get_interface,
};
