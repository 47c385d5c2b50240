/*
 * quant.h - the post-training quantiser: a float graph and calibration
 * samples in, an integer graph (TFLite int8 semantics, rounding
 * "fixed_q31") out, with a per-layer report. docs/quantisation.md
 * describes the method; the arithmetic of the result is in
 * docs/ir-ops.md and docs/integer-semantics.md.
 *
 *   activations  int8, per tensor, asymmetric (zero point), ranges from
 *                calibration: min/max or a percentile (99.99 %)
 *   weights      per output channel, symmetric: int8 (-127..127), int4
 *                (-7..7, MSE-searched clipping), ternary (TWN: threshold
 *                0.7 * mean|w|, scale = mean of the kept |w|), binary
 *                (sign, scale = mean|w|)
 *   bias         int32, scale = input scale * weight scale
 *   dense/conv2d -> integer product (i32) -> requantize "fixed_q31"
 *                (+ min/max clamp: a following relu / clip is folded)
 *   interface    graph inputs get a quantize node, graph outputs a
 *                dequantize node: the model still takes and gives f32.
 *
 * A model that arrives quantised (any tensor with quantisation parameters
 * or integer compute) is never re-quantised: quant_graph returns a copy
 * and says so in the report.
 */
#ifndef CR_QUANT_H
#define CR_QUANT_H

#include <stdio.h>

#include "config.h"
#include "ir.h"
#include "tensorio.h"

typedef enum quant_fmt {
    QF_FLOAT = 0, /* layer left in float */
    QF_INT8,
    QF_INT4,
    QF_TERNARY,
    QF_BINARY
} quant_fmt;

typedef enum quant_method {
    QM_MINMAX = 0,
    QM_PERCENTILE
} quant_method;

typedef struct quant_opts {
    quant_fmt weights;      /* default weight format (QF_INT8 ...) */
    int mixed;              /* --quant mixed: needs [layer.*] quant keys */
    quant_method method;
    double percentile;      /* for QM_PERCENTILE; 0 means 99.99 */
    const cr_kvdoc *config; /* [layer.<node>] quant = int8|int4|ternary|
                               binary|float (may be NULL) */
} quant_opts;

typedef struct quant_layer {
    char *node;          /* node name (the float graph's) */
    char *op;            /* its op, or quantize / dequantize at the edges */
    char *tensor;        /* the (float) tensor whose int8 twin it writes */
    quant_fmt fmt;       /* weight format; QF_INT8 for weight-less ops */
    int has_weights;
    uint32_t n_wscales;
    float *wscales;      /* per output channel */
    int has_in, has_out;
    float in_scale, out_scale;
    int32_t in_zp, out_zp;
    int folded;          /* a relu / clip folded into the requantize */
    char *folded_node;
    char *bias_add;      /* a constant per-channel add folded into the bias */
    double w_sqnr_db;    /* weights alone (NAN without weights) */
    double out_sqnr_db;  /* the layer's output vs the float graph on the
                            calibration samples (INFINITY when exact) */
} quant_layer;

typedef struct quant_report {
    int kept;              /* the model arrived quantised: kept as is */
    const char *method;    /* "minmax" / "percentile 99.99" */
    char *mode;            /* "int8", "int4", ..., "mixed" */
    size_t n_samples;
    quant_layer *layers;
    size_t n_layers, cap_layers;
    size_t n_float_nodes;  /* nodes left in float */
    double out_sqnr_db;    /* over all graph outputs */
    size_t top1_agree;     /* argmax of output 0 equal to float's */
} quant_report;

const char *quant_fmt_name(quant_fmt f);
/* "int8", "int4", "ternary", "binary", "float" (case-insensitive). */
int quant_fmt_parse(const char *s, quant_fmt *f);
/* Bits per weight: 8, 4, 2 (ternary, 1.58 bits of information), 1, 32. */
int quant_fmt_bits(quant_fmt f);

/* Calibration samples for g from files: each .npy / .pb file holds one
 * sample of an input or, for a single-input model, a batch along its
 * first axis; a directory contributes its files (name order), or the
 * input_K files of its test_data_set_N folders. Samples are converted to
 * the inputs' dtypes. limit > 0 keeps the first limit samples. *samples
 * has *n_samples * g->n_inputs arrays (free with quant_samples_free). */
int quant_load_calib(const cr_graph *g, const char *const *paths,
                     size_t n_paths, size_t limit, cr_array **samples,
                     size_t *n_samples, char *err, size_t errlen);
void quant_samples_free(cr_array *samples, size_t n_arrays);

/* Quantises g (validated, shapes known) with samples (n_samples *
 * g->n_inputs arrays). *out gets a new validated graph; rep (may be NULL)
 * the report (quant_report_free). Returns CRUCIBLE_OK or a status with a
 * message. */
int quant_graph(const cr_graph *g, const cr_array *samples, size_t n_samples,
                const quant_opts *o, cr_graph **out, quant_report *rep,
                char *err, size_t errlen);
void quant_report_free(quant_report *r);
/* Makes the int8 tensors behind the boundary quantize / dequantize nodes
 * the graph's inputs and outputs (for targets that exchange int8: MCU
 * firmware, FPGA streams). Returns the number of ports changed or a
 * negative status. */
int quant_int8_io(cr_graph *g, char *err, size_t errlen);
void quant_report_json(const quant_report *r, const char *model, jbuf *j);
void quant_report_text(const quant_report *r, FILE *f);

/* Command-line values (quantcmd.c, shared with compile.c): --quant
 * int8|int4|ternary|binary|mixed and --method minmax|percentile into o;
 * -1 for anything else. */
int quant_cli_mode(const char *v, quant_opts *o);
int quant_cli_method(const char *v, quant_opts *o);

#endif
