/*
 * interp.h - shape inference and the reference interpreter.
 *
 * The interpreter DEFINES what a crucible graph computes: every hardware
 * target is checked bit-exactly against it. Per-op semantics, including
 * the exact float evaluation order, are in docs/ir-ops.md.
 *
 * Values are cr_arrays (tensorio.h): packed little-endian elements, one
 * byte or more per element (sub-byte dtypes are not executable here).
 */
#ifndef CR_INTERP_H
#define CR_INTERP_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ir.h"
#include "tensorio.h"

/* Fills in the shape of every node output whose shape is unknown (rank -1
 * or a dim 0) from its inputs and attributes, node by node in order (the
 * graph must have passed ir_validate, which sorts it). An output whose
 * shape is already known is checked against the inferred one. Nodes with
 * an input of unknown shape, and 'unsupported' nodes, are skipped (their
 * outputs keep what the frontend declared). Returns CRUCIBLE_OK or a
 * negative status with "node NAME (OP): problem" in err. */
int ir_infer_shapes(cr_graph *g, char *err, size_t errlen);

/* Runs g on inputs (in g->inputs order; dtype and shape must match the
 * graph input tensors, a dim 0 there matching anything). Fills outputs
 * (g->n_outputs entries, in g->outputs order; the caller frees each with
 * tio_free). Intermediates are freed as soon as they are dead. Returns
 * CRUCIBLE_OK or a negative status with a message; outputs are then all
 * zeroed. */
int interp_run(const cr_graph *g, const cr_array *inputs, size_t n_inputs,
               cr_array *outputs, char *err, size_t errlen);

/* Like interp_run, but fills values (g->n_tensors entries, indexed like
 * g->tensors) with the value of EVERY tensor: inputs, constants and
 * intermediates (a tensor that nothing computes stays zeroed). The caller
 * frees each entry with tio_free. On failure all entries are zeroed. */
int interp_run_all(const cr_graph *g, const cr_array *inputs,
                   size_t n_inputs, cr_array *values, char *err,
                   size_t errlen);

/* ---- shared between the interp*.c files (not a public API) ---- */

/* Shape inference for one node on descriptors: in[i] is NULL for an
 * absent optional input, otherwise its dtype/rank/dims (data may be NULL
 * when the value is not known, e.g. at compile time for non-constants).
 * out[k].dtype holds the declared dtype on entry; on success out[k] gets
 * rank, dims and dtype. Returns CRUCIBLE_OK or a status with a message. */
int interp_infer_node(const cr_node *n, const cr_array *const *in,
                      cr_array *out, char *err, size_t errlen);

/* Computes one node: in[] as above (with data), out[] already allocated
 * with the inferred shape and dtype (zero-filled). */
int interp_exec_node(const cr_graph *g, const cr_node *n,
                     const cr_array *const *in, cr_array *out, char *err,
                     size_t errlen);

/* Kernels in interp_nn.c, called by interp_exec_node. */
int interp_exec_nn(const cr_graph *g, const cr_node *n,
                   const cr_array *const *in, cr_array *out, char *err,
                   size_t errlen);

/* Integer kernels in interp_nn.c: dense, matmul and conv2d on u8/i8
 * operands (zero points from the input tensors' quantisation parameters),
 * i32 result. The weights (input 1) may also be packed i4 / ternary /
 * binary constants. */
int interp_exec_int_nn(const cr_graph *g, const cr_node *n,
                       const cr_array *const *in, cr_array *out, char *err,
                       size_t errlen);

/* ---- integer execution with TFLite semantics (interp_q.c) ----
 * Nodes carrying rounding = "fixed_q31" (requantize, quantize, and on i8:
 * relu, clip, leaky_relu, sigmoid, tanh, softmax, add, sub, mul,
 * avg_pool2d, concat) and i8 max_pool2d run through the freestanding
 * kernel library (crucible/kernels.h); docs/ir-ops.md has the rules. */
int interp_q_claims(const cr_node *n, const cr_array *const *in);
int interp_exec_q(const cr_graph *g, const cr_node *n,
                  const cr_array *const *in, cr_array *out, char *err,
                  size_t errlen);
/* Input k of n may be a packed sub-byte dtype (the weights of an integer
 * dense / matmul / conv2d). */
int interp_q_packed_ok(const cr_node *n, uint32_t k, int32_t dtype);
/* TFLite's QuantizeMultiplier: r >= 0 as mult * 2^(shift - 31) with mult
 * in [2^30, 2^31) (frexp, round half away from zero, 2^31 -> 2^30 with
 * shift + 1; r = 0 or shift < -31 give 0, 0). CRUCIBLE_E_INVALID for a
 * negative, NaN or infinite r, or shift > 31. */
int interp_q_multiplier(double r, int32_t *mult, int *shift);
/* TFLite's int8 softmax parameters from beta * input scale
 * (PreprocessSoftmaxScaling, CalculateInputRadius with 5 integer bits);
 * CRUCIBLE_E_UNSUPPORTED when beta * s_in * 2^26 <= 1. */
int interp_q_softmax_params(double beta, double s_in, int32_t *mult,
                            int32_t *left_shift, int32_t *diff_min);
/* The int8 sigmoid (op CRUCIBLE_OP_SIGMOID) or tanh table, TFLite's
 * LUTPopulate: table[j] is the output for the input value j - 128. */
void interp_q_lut(int32_t op, float s_in, int32_t zp_in, float s_out,
                  int32_t zp_out, int8_t table[256]);
/* For every integer dense / conv2d -> requantize "fixed_q31" (-> relu /
 * clip that only clamps) chain in g with i8 activations, recomputes the
 * layer with crk_fully_connected / crk_conv2d from vals (interp_run_all's
 * values) and compares with the interpreter's result bit for bit. *layers
 * counts the chains checked. CRUCIBLE_E_GENERIC with the first difference
 * in err on a mismatch. */
int interp_q_fused_check(const cr_graph *g, const cr_array *vals,
                         size_t *layers, char *err, size_t errlen);

/* Language-model kernels in interp_llm.c (rms_norm, rope, silu,
 * kv_write, attention), called by interp_exec_node. */
int interp_exec_llm(const cr_graph *g, const cr_node *n,
                    const cr_array *const *in, cr_array *out, char *err,
                    size_t errlen);

/* rope attributes, validated against the head size (interp_shape.c). */
typedef struct interp_rope_params {
    int64_t n_rot;    /* rotated dims per head: even, 2..head_dim */
    float freq_base;  /* theta base (rope_freq_base) */
    float freq_scale; /* position multiplier (linear scaling: 1/factor) */
    int neox;         /* 0: pairs (2i, 2i+1); 1: pairs (i, i + n_rot/2) */
} interp_rope_params;
int interp_rope_params_get(const cr_node *n, int64_t head_dim,
                           interp_rope_params *p, char *err, size_t errlen);
/* attention's scale: attribute scale, else 1.0f / sqrtf((float)head_dim). */
int interp_attention_scale_get(const cr_node *n, int64_t head_dim,
                               float *scale, char *err, size_t errlen);

/* Quantisation parameters of tensor t (holding value v): present and
 * consistent with v's shape, else an error naming t. */
int interp_quant_check(const cr_node *n, const cr_tensor *t,
                       const cr_array *v, char *err, size_t errlen);
/* Element j of v uses scale / zero point number (j / *inner) % *count. */
void interp_quant_layout(const cr_tensor *t, const cr_array *v,
                         uint64_t *inner, uint64_t *count);

/* "node NAME (OP): " + message into err; returns status. */
int interp_node_err(char *err, size_t errlen, const cr_node *n, int status,
                    const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Element size in bytes of an executable dtype, 0 if not executable. */
size_t interp_elem_size(int32_t dtype);

/* Helpers for normalising attributes (shared by inference and kernels). */
typedef struct interp_conv_params {
    int64_t stride[2], pad[4], dil[2], group, out_pad[2];
} interp_conv_params;
typedef struct interp_pool_params {
    int64_t kernel[2], stride[2], pad[4], dil[2];
    int ceil_mode, count_include_pad;
} interp_pool_params;
int interp_conv_params_get(const cr_node *n, interp_conv_params *p,
                           char *err, size_t errlen);
int interp_pool_params_get(const cr_node *n, interp_pool_params *p,
                           char *err, size_t errlen);

/* ---- multi-index iteration ---------------------------------------------
 * Walks a shape in row-major order, keeping up to three element offsets
 * that advance by per-dimension strides (0 for broadcast or reduced dims,
 * negative for reversed slices). */
typedef struct interp_iter {
    int32_t rank;
    int64_t dims[CRUCIBLE_MAX_RANK];
    int64_t idx[CRUCIBLE_MAX_RANK];
    int64_t st[3][CRUCIBLE_MAX_RANK];
    int64_t off[3];
} interp_iter;

static inline void interp_it_init(interp_iter *it, int32_t rank, const int64_t *dims)
{
    memset(it, 0, sizeof *it);
    it->rank = rank;
    memcpy(it->dims, dims, (size_t)rank * sizeof(int64_t));
}

static inline void interp_it_next(interp_iter *it)
{
    for (int32_t d = it->rank - 1; d >= 0; d--) {
        it->off[0] += it->st[0][d];
        it->off[1] += it->st[1][d];
        it->off[2] += it->st[2][d];
        if (++it->idx[d] < it->dims[d]) return;
        it->off[0] -= it->st[0][d] * it->dims[d];
        it->off[1] -= it->st[1][d] * it->dims[d];
        it->off[2] -= it->st[2][d] * it->dims[d];
        it->idx[d] = 0;
    }
}

/* Strides (in elements) of contiguous a, right-aligned to an iteration of
 * rank r, 0 where a is broadcast. */
static inline void interp_bcast_strides(const cr_array *a, int32_t r, int64_t *st)
{
    int64_t s = 1;
    for (int32_t i = r - 1; i >= 0; i--) {
        int32_t ai = i - (r - a->rank);
        if (ai < 0) {
            st[i] = 0;
            continue;
        }
        st[i] = a->dims[ai] == 1 ? 0 : s;
        s *= a->dims[ai];
    }
}

static inline void interp_contig_strides(int32_t rank, const int64_t *dims, int64_t *st)
{
    int64_t s = 1;
    for (int32_t i = rank - 1; i >= 0; i--) {
        st[i] = s;
        s *= dims[i];
    }
}

#endif
