/* fv_int.h - fpga-verilog internals. */
#ifndef FV_INT_H
#define FV_INT_H
#include <crucible/target.h>
#include <stdint.h>
#include <stdio.h>

#define FV_ID "fpga-verilog"
#define FV_VERSION "0.2.0"
#define FV_MAX_LAYERS 24
#define FV_MAX_CH 1024

extern const char fv_rtl_requant[];

/* Latency of cr_requant (input register to result), cycles. */
#define FV_RQ_LAT 11

enum { FV_MAC = 0, FV_POOL = 1 };

/* One hardware layer. FV_MAC: integer dense or conv2d -> requantize
 * fixed_q31 [-> relu/clip]; FV_POOL: max_pool2d, avg_pool2d, or a
 * standalone relu / clip (a 1x1 max window). Tensors are seen as [C, H, W] (dense: [K, 1, 1]). */
typedef struct fv_layer {
    int kind;
    uint32_t node, rq, act;   /* node indices (rq/act = UINT32_MAX: none) */
    int32_t in_t, out_t;      /* i8 activation tensors in / out */
    int32_t C, H, W, OC, OH, OW;
    int32_t KH, KW, SH, SW, DH, DW, PT, PL, groups;
    int32_t K;                /* taps per output: C/groups * KH * KW */
    int32_t P;                /* parallel MAC lanes (output channels) */
    int32_t dsp_lanes;        /* lanes on DSP blocks; the rest in LUTs */
    int32_t in_zp, out_zp, lo, hi;
    int avg, cip;             /* FV_POOL: average (count_include_pad) */
    const uint8_t *w;         /* [OC][K], packed as crk_weight_get reads it */
    int wbits;                /* 8 i8, 4 i4, 2 ternary, 1 binary */
    const int32_t *bias;      /* [OC] or NULL */
    int32_t mult[FV_MAX_CH];
    int32_t shift[FV_MAX_CH];
} fv_layer;

typedef struct fv_board {
    const char *name, *device, *package, *pcf_pins;
    double clock_mhz;
    int64_t lc, dsp, bram, spram;
} fv_board;

typedef struct fv_design {
    uint32_t n;
    fv_layer L[FV_MAX_LAYERS];
    int32_t in_bytes, out_bytes;
    uint32_t covered;         /* graph nodes implemented */
} fv_design;

typedef struct fv_cost {
    double cycles;
    int64_t lut, ff, dsp, bram;
} fv_cost;

typedef struct fv_buf {
    const crucible_host *host;
    char *data;
    size_t len, cap;
    int failed;
} fv_buf;
void fv_printf(fv_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void fv_buf_free(fv_buf *b);
int fv_multiplier(double r, int32_t *mult, int32_t *shift);
/* Checks a dense / conv2d node and its fused requantize / activation. */
int fv_chain(const crucible_graph_view *g, uint32_t di, fv_layer *L, char *why,
             size_t why_len);
/* Checks a max_pool2d or a standalone relu / clip node. */
int fv_pool(const crucible_graph_view *g, uint32_t ni, fv_layer *L, char *why,
            size_t why_len);
int fv_mults(const crucible_graph_view *g, fv_layer *L, char *why, size_t why_len);
/* Parallelism of node `name` from the config; check against layer L. */
int32_t fv_parallel_of(const crucible_kv_doc *cfg, const char *name);
int fv_check_parallel(const fv_layer *L, int32_t P, const char *name, char *why,
                      size_t why_len);
/* The whole graph as a chain of layers; dsp = DSP blocks of the board. */
int fv_build(const crucible_graph_view *g, const crucible_kv_doc *cfg,
             int64_t dsp, fv_design *D, char *why, size_t why_len);
double fv_layer_cycles(const fv_layer *L);
double fv_design_cycles(const fv_design *D);
void fv_layer_cost(const fv_layer *L, fv_cost *c);
void fv_common_cost(int use_dsp, fv_cost *c);
void fv_layer_hex(const fv_layer *L, fv_buf *w, fv_buf *bb, fv_buf *m, fv_buf *s);
void fv_core_rtl(fv_buf *b, const fv_design *D);
int fv_verify(const crucible_host *h, const crucible_verify_ctx *ctx);
#endif
