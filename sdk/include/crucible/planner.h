/*
 * crucible/planner.h - interface "crucible.planner/1": assign each layer of
 * a graph to one of several targets (Mosaic), given every target's
 * per-layer answers and boundary costs.
 */
#ifndef CRUCIBLE_PLANNER_H
#define CRUCIBLE_PLANNER_H

#include <crucible/target.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct crucible_plan_target {
    uint32_t size;
    const char *id;                              /* plugin id */
    const crucible_board *board;                 /* chosen board or NULL */
    const crucible_boundary *const *boundaries;  /* may be NULL */
    /* support[node] is this target's answer for each graph node. */
    const crucible_support *const *support;
} crucible_plan_target;

typedef struct crucible_plan_ctx {
    crucible_header hdr;
    const crucible_graph_view *graph;
    uint32_t n_targets;
    const crucible_plan_target *const *targets;
    const crucible_kv_doc *config;
} crucible_plan_ctx;

typedef struct crucible_planner {
    crucible_header hdr;
    const char *description;
    /* [main-thread] Writes, for each node, the index of the target it runs
     * on (into ctx->targets) to assignment[n_nodes]. Must pick only targets
     * whose level is not NO for that node; returns CRUCIBLE_E_UNSUPPORTED
     * (after logging the node) when no such target exists. A JSON report
     * of the plan (costs, data moved) may be written to *report_json,
     * allocated with the host's allocator (freed by the host). */
    int (*plan)(void *state, const crucible_plan_ctx *ctx,
                int32_t *assignment, char **report_json);
} crucible_planner;

#ifdef __cplusplus
}
#endif
#endif /* CRUCIBLE_PLANNER_H */
