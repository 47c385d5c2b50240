/*
 * tfl_int.h - private header of the TFLite frontend's lowering
 * (tfl_lower.c: values, names, constants, layout, driver; tfl_lower_ops.c:
 * one handler per TFLite builtin operator).
 *
 * Pipeline of one load():
 *
 *   file bytes --tfl_model_parse (fb.c reader, checks)--> tfl_model
 *   --tfl_lower: graph inputs, then each operator in file order-->
 *   the host's crucible_ir_builder (every call copies; nothing is kept).
 *
 * Layout. TFLite activations are NHWC; crucible's spatial ops are NCHW.
 * Every TFLite tensor keeps its own layout and name in the IR (so graph
 * inputs and outputs are exactly the model's). A spatial op (conv, depthwise
 * conv, transposed conv, pooling) reads its input through a `transpose`
 * NHWC->NCHW and writes an NCHW tensor "<name>:nchw", the tensor's "NCHW
 * twin". The NHWC tensor itself is only materialised (transpose
 * NCHW->NHWC) when something reads it in NHWC, so chains of spatial ops,
 * activations, elementwise ops between twins, concatenation and pads of
 * twins stay in NCHW without transposes. Conv weights are constants
 * converted at load: OHWI -> OIHW, depthwise 1HW(C*M) -> (C*M)1HW,
 * transposed-conv OHWI -> IOHW; per-axis quantisation follows the axis.
 *
 * Memory: everything lives in the load's tfl_arena. Threading:
 * [main-thread], one load at a time per context.
 */
#ifndef TFLITE_TFL_INT_H
#define TFLITE_TFL_INT_H

#include <crucible/crucible.h>

#include "tfl_model.h"

/* Result of lowering one operator: TL_OK, TL_UNSUP (c->why says why; the
 * operator becomes an `unsupported` IR node) or a negative crucible status
 * (fatal: the load fails with the message in c->err). A handler decides
 * TL_UNSUP before it emits anything. */
enum { TL_OK = 0, TL_UNSUP = 1 };

typedef struct tl_val {
    int32_t ir;     /* IR tensor in the TFLite layout, or -1 */
    int32_t nchw;   /* IR tensor holding the NCHW twin (rank 4), or -1 */
    int32_t dtype;  /* crucible dtype (0: the IR has none) */
    uint8_t avail;  /* graph input, constant, or written by an earlier op */
    uint8_t input;  /* graph input */
    /* constant value: the tensor's buffer, or data folded at load (a
     * DEQUANTIZE or RESHAPE of a constant); packed per dtype */
    const uint8_t *data;
    size_t bytes;
} tl_val;

/* Open-addressing string set (arena strings). */
typedef struct tl_set {
    const char **keys;
    size_t cap, n;
} tl_set;

typedef struct tl_ctx {
    const crucible_ir_builder *b;
    tfl_arena *a;
    const tfl_model *m;
    tl_val *vals;
    tl_set tnames, nnames; /* IR tensor / node names in use */
    uint64_t const_bytes, const_limit;

    /* the operator being lowered */
    uint32_t op_index;
    const tfl_operator *op;
    const tfl_opcode *code;
    const char *op_name; /* "CONV_2D" */
    const char *base;    /* unique base for its IR node names */
    char why[512];       /* TL_UNSUP reason */

    char *err;
    size_t errlen;
    uint32_t n_unsupported;
    unsigned long serial; /* suffixes for colliding names */
} tl_ctx;

/* ---- tfl_lower.c: infrastructure ---------------------------------------- */
int tl_fail(tl_ctx *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int tl_unsup(tl_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *tl_printf(tl_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

int32_t tl_dtype(int8_t tfl_type); /* 0 when the IR has none */
const tfl_tensor *tl_t(tl_ctx *c, int32_t ti);
const char *tl_tname(tl_ctx *c, int32_t ti); /* name for messages */
int32_t tl_in(tl_ctx *c, uint32_t k);  /* tensor of input k, -1 absent */
int32_t tl_out_t(tl_ctx *c, uint32_t k);
int tl_is_const(tl_ctx *c, int32_t ti); /* has a constant value */
int tl_has_nchw(tl_ctx *c, int32_t ti);  /* has an NCHW twin */
int tl_is_int(int32_t dtype);
uint64_t tl_numel(const tfl_tensor *t); /* rank <= 8, dims >= 1, else 0 */
int tl_same_quant(const tfl_tensor *a, const tfl_tensor *b);

/* New IR tensor with a unique name derived from `name`. Quantisation is
 * copied from q (NULL: none); perm (NULL: identity) says which source axis
 * each new axis comes from, to move a per-axis quantisation with it. */
int32_t tl_tensor(tl_ctx *c, const char *name, int32_t dtype, int32_t rank,
                  const int64_t *dims, const tfl_tensor *q,
                  const int32_t *perm);
/* Quantisation given explicitly (count 0: none). */
int tl_quant(tl_ctx *c, int32_t ir, int32_t axis, uint32_t count,
             const float *scales, const int32_t *zps);
/* New node `op` named base[/suffix]. */
int32_t tl_node(tl_ctx *c, const char *op, const char *suffix, uint32_t n_in,
                const int32_t *in, uint32_t n_out, const int32_t *out);
int tl_attr_int(tl_ctx *c, int32_t node, const char *k, int64_t v);
int tl_attr_float(tl_ctx *c, int32_t node, const char *k, double v);
int tl_attr_ints(tl_ctx *c, int32_t node, const char *k, uint32_t n,
                 const int64_t *v);
int tl_attr_str(tl_ctx *c, int32_t node, const char *k, const char *v);

/* Values. tl_get: the IR tensor of TFLite tensor ti in its own layout
 * (constant data emitted on first use; an NCHW twin transposed back).
 * tl_get_nchw: the NCHW twin of a rank-4 tensor (a constant is permuted,
 * anything else transposed). tl_get_perm: a constant permuted with perm
 * (new axis j = old axis perm[j]) or a transpose node. */
int32_t tl_get(tl_ctx *c, int32_t ti);
int32_t tl_get_nchw(tl_ctx *c, int32_t ti);
int32_t tl_get_perm(tl_ctx *c, int32_t ti, const int32_t *perm,
                    const char *suffix);
/* Outputs: the IR tensor for TFLite tensor ti in its layout / as its NCHW
 * twin, registered as ti's value. */
int32_t tl_out(tl_ctx *c, int32_t ti);
int32_t tl_out_nchw(tl_ctx *c, int32_t ti);
/* A temporary shaped like dims, with ti's dtype and quantisation
 * (perm as tl_tensor). */
int32_t tl_tmp(tl_ctx *c, int32_t ti, const char *suffix, int32_t dtype,
               int32_t rank, const int64_t *dims, const int32_t *perm);
/* A new constant. */
int32_t tl_const(tl_ctx *c, const char *suffix, int32_t dtype, int32_t rank,
                 const int64_t *dims, const void *data, size_t bytes);
/* Reads a small constant INT32 / INT64 tensor (at most max values).
 * TL_UNSUP when it is not such a constant. */
int tl_const_ints(tl_ctx *c, int32_t ti, int64_t *out, uint32_t max,
                  uint32_t *n, const char *what);
/* A constant float scalar (FLOAT32 / FLOAT16 / integer). TL_UNSUP if not. */
int tl_const_scalar(tl_ctx *c, int32_t ti, double *v, const char *what);
/* Decodes element i of a constant value as float (f32 / f16 / integer
 * dtypes; integers are not dequantised). */
double tl_elem_f(tl_ctx *c, int32_t ti, uint64_t i);
/* Packed bytes of n elements of dtype (0 for sub-byte / unknown). */
size_t tl_elem_size(int32_t dtype);

/* Fused activations: check (TL_UNSUP for SIGN_BIT / unknown) and emit
 * pre -> out. */
int tl_act_ok(tl_ctx *c, int8_t act);
int tl_act(tl_ctx *c, int8_t act, int32_t pre, int32_t out, int quantized);
/* Marks an integer compute node with the TFLite rounding rule. */
int tl_mark_int(tl_ctx *c, int32_t node);

/* ---- tfl_lower_ops.c ----------------------------------------------------- */
typedef int (*tl_handler)(tl_ctx *c);
typedef struct tl_opdef {
    int32_t code;
    int32_t max_version; /* newest version this frontend understands */
    uint8_t opt_type;    /* expected BuiltinOptions member (0: none read) */
    tl_handler fn;
} tl_opdef;
const tl_opdef *tl_find_op(int32_t code);

/* ---- entry --------------------------------------------------------------- */
/* Lowers m (decoded from a file of file_len bytes) through b. Returns 0 or
 * a negative status with a message in err. Unsupported operators become
 * `unsupported` nodes; *n_unsupported counts them. */
int tfl_lower(const tfl_model *m, size_t file_len, tfl_arena *a,
              const crucible_ir_builder *b, char *err, size_t errlen,
              uint32_t *n_unsupported);

#endif
