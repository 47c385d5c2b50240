/*
 * cpu_c_int.h - private to the cpu-c target plugin (not an SDK header).
 *
 * The plugin is split in three files:
 *   cpu_c.c        the entry point, query (pre-flight), boards, verify
 *   cpu_c_check.c  per-node validation shared by query and compile
 *   cpu_c_gen.c    the C code generator (model.c, model.h, harness.c, ...)
 *
 * Everything here is hidden (the build uses -fvisibility=hidden); the only
 * exported symbol of the shared object is crucible_plugin_entry.
 */
#ifndef CPU_C_INT_H
#define CPU_C_INT_H

#include <crucible/crucible.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define CPUC_ID "cpu-c"
#define CPUC_VERSION "0.1.0"

/* Generated code indexes with C `long`, which is 32 bits on many MCUs:
 * every tensor (and the arena) must stay below this many elements. */
#define CPUC_MAX_ELEMS ((uint64_t)INT32_MAX)

/* ---- plugin state ------------------------------------------------------ */
typedef struct cpuc_state {
    const crucible_host *host;
} cpuc_state;

/* ---- growable text buffer on the host allocator ------------------------ */
typedef struct cpuc_buf {
    const crucible_host *host;
    char *s;      /* NUL-terminated once anything was written */
    size_t len, cap;
    int err;      /* sticky: an allocation failed */
} cpuc_buf;

void cpuc_buf_init(cpuc_buf *b, const crucible_host *host);
void cpuc_buf_free(cpuc_buf *b);
void cpuc_puts(cpuc_buf *b, const char *s);
void cpuc_putn(cpuc_buf *b, const char *s, size_t n);
void cpuc_printf(cpuc_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* JSON string literal (with quotes) of s; "null" for NULL. */
void cpuc_json_str(cpuc_buf *b, const char *s);

/* ---- node validation (pure, allocation-free) --------------------------- */
typedef struct cpuc_conv {
    int64_t stride[2], pad[4], dil[2], group;
} cpuc_conv;

typedef struct cpuc_pool {
    int64_t kernel[2], stride[2], pad[4], dil[2];
    int ceil_mode, count_include_pad;
} cpuc_pool;

/* Checks that node `ni` can be generated; on refusal writes a one-line
 * reason and returns CRUCIBLE_E_UNSUPPORTED (or CRUCIBLE_E_LIMIT). */
int cpuc_check_node(const crucible_graph_view *g, uint32_t ni, char *why,
                    size_t why_len);

/* Attribute readers mirroring the reference interpreter's defaults. */
int cpuc_conv_params(const crucible_node_view *n, cpuc_conv *p, char *why,
                     size_t why_len);
int cpuc_pool_params(const crucible_node_view *n, cpuc_pool *p, char *why,
                     size_t why_len);
/* Float attribute as the interpreter reads it: FLOAT or INT, rounded to
 * float; dflt when absent. Returns -1 if present with another type. */
int cpuc_attr_f32(const crucible_node_view *n, const char *name, float dflt,
                  float *v);

/* Element count of a view (0 when unknown or overflowing). */
uint64_t cpuc_numel(const crucible_tensor_view *t);

/* Cost model used by query (documented in README.md). */
double cpuc_node_cycles(const crucible_graph_view *g, uint32_t ni);

/* ---- generated files --------------------------------------------------- */
typedef struct cpuc_toolchain {
    const char *cc;     /* compiler (board [toolchain] cc, default "cc") */
    const char *cflags; /* board [toolchain] cflags, or the default */
} cpuc_toolchain;

#define CPUC_DEFAULT_CFLAGS "-std=c99 -O2 -ffp-contract=off -fno-fast-math"

void cpuc_toolchain_get(const crucible_board *board, cpuc_toolchain *tc);

typedef struct cpuc_output {
    cpuc_buf model_c, model_h, harness_c, makefile, report;
    uint64_t arena_bytes, naive_bytes, weight_bytes;
} cpuc_output;

/* Generates every file for graph g. Returns CRUCIBLE_OK or a status, with
 * a message in why. out must be freed with cpuc_output_free. */
int cpuc_generate(const crucible_host *host, const crucible_graph_view *g,
                  const cpuc_toolchain *tc, cpuc_output *out, char *why,
                  size_t why_len);
void cpuc_output_free(cpuc_output *out);

#endif /* CPU_C_INT_H */
