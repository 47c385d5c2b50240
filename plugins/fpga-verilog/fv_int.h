/* fv_int.h - fpga-verilog internals. */
#ifndef FV_INT_H
#define FV_INT_H
#include <crucible/target.h>
#include <stdint.h>
#include <stdio.h>

#define FV_ID "fpga-verilog"
#define FV_VERSION "0.1.0"
#define FV_MAX_LAYERS 16

extern const char fv_rtl_requant[];

/* One hardware layer: integer dense -> requantize fixed_q31 [-> relu/clip]. */
typedef struct fv_layer {
    uint32_t dense, rq, act;  /* node indices (act = UINT32_MAX: none) */
    int32_t in_t, out_t;      /* i8 activation tensors in / out */
    int32_t K, M, P;          /* inputs, outputs, parallel lanes */
    int32_t in_zp, out_zp, lo, hi;
    const int8_t *w;          /* [M][K] */
    const int32_t *bias;      /* [M] or NULL */
    int32_t mult[1024];
    int32_t shift[1024];
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
int fv_chain(const crucible_graph_view *g, uint32_t di, fv_layer *L, char *why,
             size_t why_len);
int fv_mults(const crucible_graph_view *g, fv_layer *L, char *why, size_t why_len);
double fv_layer_cycles(int32_t K, int32_t M, int32_t P);
void fv_layer_cost(int32_t K, int32_t M, int32_t P, int use_dsp, fv_cost *c);
void fv_common_cost(int use_dsp, fv_cost *c);
void fv_layer_hex(const fv_layer *L, fv_buf *w, fv_buf *bb, fv_buf *m, fv_buf *s);
void fv_core_rtl(fv_buf *b, const fv_design *D);
int fv_verify(const crucible_host *h, const crucible_verify_ctx *ctx);
#endif
