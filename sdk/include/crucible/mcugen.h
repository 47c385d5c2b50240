/*
 * crucible/mcugen.h - the shared MCU code generator (static library
 * crucible_mcugen, shipped with the SDK). An MCU target plugin is a thin
 * wrapper: it describes itself in an mcugen_target and forwards the four
 * crucible_target slots to the functions below. Everything specific to a
 * chip lives in its board INI (docs/mcu.md lists the keys):
 *
 *   [board]     name, target, arch (armv6m | armv7m | rv32 | xtensa),
 *               flash_bytes, ram_bytes, clock_hz
 *   [toolchain] prefix (e.g. arm-none-eabi-), cflags, ldflags,
 *               debian_package
 *   [link]      flash_origin, flash_length, ram_origin, ram_length,
 *               stack_bytes: the memory map the verification firmware is
 *               linked for (the emulated machine's)
 *   [emulator]  qemu, machine, debian_package, timeout_s
 *   [image]     uf2_family, uf2_base (optional: a UF2 image is written)
 *
 * Generated firmware (all integer; no malloc, no floats, no libc):
 *   model.c / model.h   weights as const arrays, one static arena planned
 *                       by liveness + offset packing, calls into the
 *                       kernel library; int model_run(const int8_t *in,
 *                       int8_t *out) returns 0 on success
 *   kernels/, include/  the freestanding kernel library, verbatim
 *   main.c, runtime.c,  the verification harness (samples compiled in,
 *   link.ld, Makefile   outputs printed over semihosting)
 *
 * Supported graphs: one i8 input, one i8 output; integer dense / conv2d
 * whose i32 result feeds one requantize (rounding "fixed_q31") to i8,
 * optionally followed by a relu / clip with the same parameters (fused
 * into the kernel's clamp); relu / clip, max_pool2d / avg_pool2d and
 * requantize on i8; reshape; transpose; int8 softmax, sigmoid, tanh,
 * leaky_relu, add / sub / mul, concat; the quantiser's float islands (dequantize, add of a constant, relu,
 * max pool, quantize) and a float graph output.
 *
 * Project config ([target.<id>] in --config): count_instructions = true
 * (instructions per inference from a traced QEMU run), timeout_s = N (the
 * QEMU bound), test_inject = hang | mismatch (test only). docs/mcu.md.
 */
#ifndef CRUCIBLE_MCUGEN_H
#define CRUCIBLE_MCUGEN_H

#include <crucible/target.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MCUGEN_VERSION "0.1.0"

/* A key's value when the board has none (board NULL or key absent). */
typedef struct mcugen_default {
    const char *section, *key, *value;
} mcugen_default;

typedef struct mcugen_target {
    const char *id;                 /* plugin id, e.g. "mcu-riscv" */
    const mcugen_default *defaults; /* terminated by a NULL section */
    /* Optional: extra project files for the ecosystem (pico-sdk CMake,
     * ESP-IDF, PlatformIO), written beside model.c. Returns 0 or < 0. */
    int (*extra_files)(const crucible_host *h, const crucible_board *b,
                       const char *graph_name,
                       int (*add)(void *ctx, const char *name,
                                  const char *text),
                       void *ctx);
} mcugen_target;

/* Board value with the target's defaults as fallback; NULL if neither. */
const char *mcugen_board_get(const mcugen_target *t, const crucible_board *b,
                             const char *section, const char *key);

/* The crucible_target slots. query is pure and allocation-free. */
int mcugen_accept_board(const mcugen_target *t, const crucible_board *b,
                        char *why, size_t why_len);
int mcugen_query(const mcugen_target *t, const crucible_query_ctx *ctx,
                 const crucible_graph_view *g, uint32_t node,
                 crucible_support *out);
int mcugen_compile(const crucible_host *h, const mcugen_target *t,
                   const crucible_compile_ctx *ctx);
int mcugen_verify(const crucible_host *h, const mcugen_target *t,
                  const crucible_verify_ctx *ctx);

/* The arena plan of a graph (what compile reports): arena bytes after
 * liveness + offset packing, the peak of simultaneously live tensors
 * (a lower bound), the naive sum of every intermediate tensor, and the
 * constant bytes (weights, biases, multipliers). Returns 0, or < 0 with a
 * reason in why when the graph is not supported. */
typedef struct mcugen_plan_info {
    uint64_t arena_bytes, peak_live_bytes, naive_bytes, const_bytes;
    uint32_t steps;
    uint64_t macs;
} mcugen_plan_info;

int mcugen_plan(const crucible_host *h, const crucible_graph_view *g,
                mcugen_plan_info *info, char *why, size_t why_len);

/* A UF2 image (512-byte blocks, 256 payload bytes each) of bin, placed at
 * base, with the family id (e.g. RP2040 0xe48bff56). *out is allocated
 * with the host allocator; free with crucible_free(h, *out, *out_len). */
int mcugen_uf2(const crucible_host *h, const uint8_t *bin, size_t len,
               uint32_t base, uint32_t family, uint8_t **out,
               size_t *out_len);

#ifdef __cplusplus
}
#endif

/* MCUGEN_PLUGIN(prefix, mt, id, name, description, link_bps): the whole
 * crucible.target/1 plugin around an mcugen_target `mt` — slots
 * forwarding to the functions above, a UART boundary at link_bps, init
 * keeping the host table, and the exported entry. A new MCU architecture
 * is its defaults table plus one line with this macro. */
#define MCUGEN_PLUGIN(prefix, mt, id, name, description, link_bps)         \
    static int prefix##_accept(void *s, const crucible_board *b, char *why, \
                               size_t n)                                    \
    {                                                                       \
        (void)s;                                                            \
        return mcugen_accept_board(&(mt), b, why, n);                       \
    }                                                                       \
    static int prefix##_query(void *s, const crucible_query_ctx *c,         \
                              const crucible_graph_view *g, uint32_t node,  \
                              crucible_support *out)                        \
    {                                                                       \
        (void)s;                                                            \
        return mcugen_query(&(mt), c, g, node, out);                        \
    }                                                                       \
    static int prefix##_compile(void *s, const crucible_compile_ctx *c)     \
    {                                                                       \
        return mcugen_compile(*(const crucible_host **)s, &(mt), c);        \
    }                                                                       \
    static int prefix##_verify(void *s, const crucible_verify_ctx *c)       \
    {                                                                       \
        return mcugen_verify(*(const crucible_host **)s, &(mt), c);         \
    }                                                                       \
    static const crucible_boundary prefix##_uart = {                        \
        sizeof(crucible_boundary), CRUCIBLE_LINK_UART, (link_bps), 8, 0.0}; \
    static const crucible_boundary *const prefix##_bounds[] = {             \
        &prefix##_uart, NULL};                                              \
    static const crucible_target prefix##_target = {                        \
        CRUCIBLE_HEADER(crucible_target), description, prefix##_bounds,     \
        prefix##_accept, prefix##_query, prefix##_compile, prefix##_verify};\
    static int prefix##_init(const crucible_host *host, void **state)       \
    {                                                                       \
        if (!host || !host->realloc || !host->log || !state)                \
            return CRUCIBLE_E_INVALID;                                      \
        const crucible_host **s = crucible_alloc(host, sizeof *s);          \
        if (!s) return CRUCIBLE_E_NOMEM;                                    \
        *s = host;                                                          \
        *state = s;                                                         \
        return CRUCIBLE_OK;                                                 \
    }                                                                       \
    static void prefix##_deinit(void *state)                                \
    {                                                                       \
        const crucible_host **s = state;                                    \
        if (s) crucible_free(*s, s, sizeof *s);                             \
    }                                                                       \
    static const void *prefix##_iface(void *state, const char *iid)         \
    {                                                                       \
        (void)state;                                                        \
        return iid && !strcmp(iid, CRUCIBLE_IFACE_TARGET) ? &prefix##_target\
                                                          : NULL;           \
    }                                                                       \
    static const char *const prefix##_ifaces[] = {CRUCIBLE_IFACE_TARGET,    \
                                                  NULL};                    \
    CRUCIBLE_ENTRY(prefix##_entry) = {                                      \
        CRUCIBLE_HEADER(crucible_plugin_entry), CRUCIBLE_ABI_TAG, 0, id,     \
        name, MCUGEN_VERSION, "crucible", description, prefix##_ifaces,     \
        prefix##_init, prefix##_deinit, prefix##_iface}

#endif
