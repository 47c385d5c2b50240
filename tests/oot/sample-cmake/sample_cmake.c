/*
 * sample_cmake.c - an out-of-tree target plugin built with CMake
 * (find_package(crucible-sdk)). An ABI demonstration: it supports a few
 * ops, names the reason for every other one, writes the list of nodes it
 * was given as its one artifact, and implements no verification (the
 * verify slot is NULL, which the host reports as SKIPPED).
 */
#include <crucible/crucible.h>

#include <stdio.h>
#include <string.h>

typedef struct sc_state {
    const crucible_host *host;
} sc_state;

static int sc_init(const crucible_host *host, void **state)
{
    sc_state *s = crucible_alloc(host, sizeof *s);
    if (!s) return CRUCIBLE_E_NOMEM;
    s->host = host;
    *state = s;
    return CRUCIBLE_OK;
}

static void sc_deinit(void *state)
{
    sc_state *s = state;
    if (s) crucible_free(s->host, s, sizeof *s);
}

/* [thread-safe] Pure and allocation-free. Costs this sample can state
 * exactly: one multiply-accumulate per cycle for dense, one cycle per
 * element otherwise; everything else stays CRUCIBLE_UNKNOWN. */
static int sc_query(void *state, const crucible_query_ctx *ctx,
                    const crucible_graph_view *g, uint32_t node,
                    crucible_support *out)
{
    (void)state;
    (void)ctx;
    if (node >= g->n_nodes) return CRUCIBLE_E_INVALID;
    const crucible_node_view *n = g->nodes[node];
    const crucible_tensor_view *y =
        n->n_outputs ? crucible_graph_tensor(g, n->outputs[0]) : NULL;
    uint64_t elems = y ? crucible_tensor_numel(y) : 0;
    switch (n->op) {
    case CRUCIBLE_OP_DENSE: {
        const crucible_tensor_view *w =
            n->n_inputs > 1 ? crucible_graph_tensor(g, n->inputs[1]) : NULL;
        uint64_t macs = w ? crucible_tensor_numel(w) : 0;
        out->level = CRUCIBLE_SUPPORT_YES;
        if (macs) out->cycles = (double)macs;
        return CRUCIBLE_OK;
    }
    case CRUCIBLE_OP_RELU:
    case CRUCIBLE_OP_ADD:
        out->level = CRUCIBLE_SUPPORT_YES;
        if (elems) out->cycles = (double)elems;
        return CRUCIBLE_OK;
    default:
        out->level = CRUCIBLE_SUPPORT_NO;
        snprintf(out->reason, sizeof out->reason,
                 "op %s is not supported by the CMake sample (only dense, "
                 "relu, add)", n->op_name ? n->op_name : "?");
        return CRUCIBLE_OK;
    }
}

static int sc_compile(void *state, const crucible_compile_ctx *ctx)
{
    (void)state;
    const crucible_graph_view *g = ctx->graph;
    char text[2048];
    size_t len = 0;
    for (uint32_t i = 0; i < g->n_nodes && len < sizeof text; i++) {
        int k = snprintf(text + len, sizeof text - len, "%s %s\n",
                         g->nodes[i]->name, g->nodes[i]->op_name);
        if (k < 0) return CRUCIBLE_E_GENERIC;
        len += (size_t)k;
    }
    if (len >= sizeof text) len = sizeof text - 1;
    return ctx->sink->emit(ctx->sink->ctx, "ops.txt", text, len);
}

static const crucible_target sc_target = {
    .hdr = CRUCIBLE_HEADER(crucible_target),
    .description = "sample target built with CMake (ABI demo)",
    .query = sc_query,
    .compile = sc_compile,
    .verify = NULL,
};

static const void *sc_get_interface(void *state, const char *iface_id)
{
    (void)state;
    return iface_id && !strcmp(iface_id, CRUCIBLE_IFACE_TARGET) ? &sc_target
                                                                : NULL;
}

static const char *const sc_interfaces[] = {CRUCIBLE_IFACE_TARGET, NULL};

/* Exported as crucible_plugin_entry (see sample-target/sample_target.c for
 * why the object has a local name and an assembler label). */
CRUCIBLE_EXPORT const crucible_plugin_entry sc_entry
    __asm__(CRUCIBLE_ENTRY_SYMBOL) = {
    .hdr = CRUCIBLE_HEADER(crucible_plugin_entry),
    .abi_tag = CRUCIBLE_ABI_TAG,
    .id = "com.example.sample-cmake",
    .name = "Sample target (CMake build)",
    .version = "0.1.0",
    .vendor = "Example Ltd",
    .description = "out-of-tree sample built with find_package(crucible-sdk)",
    .interfaces = sc_interfaces,
    .init = sc_init,
    .deinit = sc_deinit,
    .get_interface = sc_get_interface,
};
