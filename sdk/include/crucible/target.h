/*
 * crucible/target.h - interface "crucible.target/1": per-layer capability
 * queries with cost estimates, boards, compilation into artifacts, and
 * verification of those artifacts in real external tools.
 *
 * Call sequence for one `crucible compile`:
 *   accept_board (once per board found)  ->  query (per node, pre-flight)
 *   ->  compile (once, on the assigned subgraph)  ->  verify (once).
 */
#ifndef CRUCIBLE_TARGET_H
#define CRUCIBLE_TARGET_H

#include <crucible/host.h>
#include <crucible/ir.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- key/value documents: board INIs and the project config ------------
 * Parsed by the host (inih). Section names are lower-case as written;
 * keys without a section have section "". Owned by the host; valid for the
 * call they are passed to, or, for boards, until deinit. */
typedef struct crucible_kv {
    const char *section;
    const char *key;
    const char *value;
    uint32_t line; /* line in the file, for error messages */
} crucible_kv;

typedef struct crucible_kv_doc {
    uint32_t size;
    const char *path; /* file it was read from */
    uint32_t count;
    const crucible_kv *const *entries;
} crucible_kv_doc;

/* Value of section.key, or NULL. */
static inline const char *crucible_kv_get(const crucible_kv_doc *d,
                                          const char *section,
                                          const char *key)
{
    if (!d) return NULL;
    for (uint32_t i = 0; i < d->count; i++) {
        const char *a = d->entries[i]->section, *b = section;
        while (*a && *a == *b) a++, b++;
        if (*a != *b) continue;
        a = d->entries[i]->key, b = key;
        while (*a && *a == *b) a++, b++;
        if (*a == *b) return d->entries[i]->value;
    }
    return NULL;
}

/* A board: an INI file, documented in docs/boards.md. Section [board] holds
 * at least name, target (the plugin id it is for) and arch. */
typedef struct crucible_board {
    uint32_t size;
    const char *name;   /* [board] name */
    const char *target; /* [board] target */
    const crucible_kv_doc *doc;
} crucible_board;

/* ---- the per-layer answer ------------------------------------------------*/
typedef enum crucible_support_level {
    CRUCIBLE_SUPPORT_NO = 0,
    CRUCIBLE_SUPPORT_FALLBACK = 1, /* works, but slowly or approximately */
    CRUCIBLE_SUPPORT_YES = 2,
    CRUCIBLE_SUPPORT_PREFERRED = 3
} crucible_support_level;

#define CRUCIBLE_UNKNOWN (-1) /* any cost field: not estimated */

typedef struct crucible_support {
    uint32_t size;   /* set by the host; write only fields that fit */
    int32_t level;   /* crucible_support_level */
    double cycles;   /* latency, clock cycles */
    double seconds;  /* latency, seconds */
    double energy_j; /* energy per inference, joules */
    int64_t lut, ff, dsp, bram, spram; /* FPGA area */
    int64_t flash_bytes, ram_bytes;    /* MCU memory */
    int64_t components;                /* analog part count */
    char reason[256]; /* why not (level NO), or a note; NUL-terminated */
} crucible_support;

typedef struct crucible_query_ctx {
    crucible_header hdr;
    const crucible_board *board;  /* chosen board, or NULL for default */
    const crucible_kv_doc *config;/* project config, or NULL */
} crucible_query_ctx;

/* ---- boundaries: how tensors enter and leave a target ------------------ */
typedef enum crucible_link_kind {
    CRUCIBLE_LINK_UART = 1,
    CRUCIBLE_LINK_SPI = 2,
    CRUCIBLE_LINK_STREAM = 3,  /* on-chip streaming bus */
    CRUCIBLE_LINK_DAC_ADC = 4, /* analog: DAC in, ADC out */
    CRUCIBLE_LINK_MEMORY = 5   /* shared memory / host call */
} crucible_link_kind;

typedef struct crucible_boundary {
    uint32_t size;
    int32_t kind;          /* crucible_link_kind */
    double bits_per_second;/* sustained rate; <= 0 unknown */
    int32_t width_bits;    /* bus width or converter resolution */
    double latency_s;      /* fixed cost per transfer */
} crucible_boundary;

/* ---- compile and verify --------------------------------------------------*/
typedef struct crucible_artifact_sink {
    crucible_header hdr;
    void *ctx;
    /* [main-thread] Adds an artifact to the package under
     * targets/<plugin-id>/<name>. `name` is a relative path with '/'
     * separators, no "..", no leading '/'. The host copies the bytes. */
    int (*emit)(void *ctx, const char *name, const void *bytes, size_t len);
    /* Same, from a file the plugin wrote (usually inside workdir). */
    int (*emit_file)(void *ctx, const char *name, const char *path);
} crucible_artifact_sink;

typedef struct crucible_compile_ctx {
    crucible_header hdr;
    const crucible_graph_view *graph; /* the subgraph assigned to this
                                         target; its inputs/outputs are the
                                         boundary tensors */
    const crucible_board *board;      /* NULL: the target's default */
    const crucible_kv_doc *config;    /* project config, or NULL */
    const char *workdir;              /* private scratch directory, kept
                                         for verify(), removed afterwards */
    const crucible_artifact_sink *sink;
} crucible_compile_ctx;

/* One verification sample: inputs and the reference interpreter's outputs,
 * in graph-view order. Tensor views carry shape and data. */
typedef struct crucible_sample {
    uint32_t size;
    uint32_t n_inputs;
    const crucible_tensor_view *const *inputs;
    uint32_t n_outputs;
    const crucible_tensor_view *const *outputs;
} crucible_sample;

typedef enum crucible_verdict {
    CRUCIBLE_VERDICT_PASS = 0,
    CRUCIBLE_VERDICT_FAIL = 1,
    CRUCIBLE_VERDICT_SKIPPED = 2
} crucible_verdict;

typedef struct crucible_verify_ctx {
    crucible_header hdr;
    const crucible_graph_view *graph;
    const crucible_board *board;
    const crucible_kv_doc *config;
    const char *workdir; /* the same directory compile() used */
    uint32_t n_samples;
    const crucible_sample *const *samples;
    const crucible_artifact_sink *sink; /* for logs and reports */
    void *ctx;
    /* [main-thread] Records one verification step: its tool, verdict
     * (SKIPPED with the reason, e.g. "iverilog not found (install
     * iverilog)"), a one-line message and optional JSON metrics object
     * text (e.g. "{\"cycles\":1234}"). Every step the target attempts is
     * reported; the host derives the exit status from the verdicts. */
    void (*report)(void *ctx, const char *step, const char *tool,
                   int verdict, const char *message,
                   const char *metrics_json);
} crucible_verify_ctx;

typedef struct crucible_target {
    crucible_header hdr;
    const char *description;

    /* Boundaries of this target (NULL-terminated array); may be NULL. */
    const crucible_boundary *const *boundaries;

    /* [main-thread] Decides whether a board INI (whose [board] target names
     * this plugin) is usable, checking required fields. On refusal writes a
     * one-line reason (field names, numbers) to why. May be NULL: accept. */
    int (*accept_board)(void *state, const crucible_board *board, char *why,
                        size_t why_len);

    /* [thread-safe] The per-layer answer. Pure, fast and allocation-free:
     * no logging, no file access. Fills `out` (the host pre-sets every cost
     * to CRUCIBLE_UNKNOWN and level to NO). Returns CRUCIBLE_OK, or a
     * negative status if the query itself failed. */
    int (*query)(void *state, const crucible_query_ctx *ctx,
                 const crucible_graph_view *g, uint32_t node,
                 crucible_support *out);

    /* [main-thread] Compiles ctx->graph into artifacts via ctx->sink. */
    int (*compile)(void *state, const crucible_compile_ctx *ctx);

    /* [main-thread] Runs the artifacts in real tools on the samples and
     * compares with the reference outputs; reports each step through
     * ctx->report. Returns CRUCIBLE_OK when it ran to the end (whatever the
     * verdicts), negative if verification itself broke. May be NULL. */
    int (*verify)(void *state, const crucible_verify_ctx *ctx);
} crucible_target;

#ifdef __cplusplus
}
#endif
#endif /* CRUCIBLE_TARGET_H */
