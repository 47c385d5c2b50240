/*
 * crucible/ir.h - the IR as plugins see it: read-only views, and the
 * builder a frontend uses to create a graph.
 *
 * Plugins never see host-internal types. A graph view and everything it
 * points to is owned by the host, is read-only, and stays valid for the
 * duration of the call it was passed to (query, compile, verify, plan)
 * unless that call's documentation says otherwise. Views may be read from
 * several threads at once.
 *
 * Arrays of views are arrays of POINTERS, so a struct can grow in a minor
 * ABI version without changing any stride a plugin has compiled in. Each
 * view's `size` says how much of it the host filled.
 *
 * Layout conventions: activations are NCHW; conv weights are
 * [out_ch, in_ch/group, kh, kw]; dense weights are [out, in].
 * The semantics of every op are in docs/ir-ops.md.
 */
#ifndef CRUCIBLE_IR_H
#define CRUCIBLE_IR_H

#include <crucible/abi.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CRUCIBLE_MAX_RANK 8

/* ---- element types -------------------------------------------------------
 * X(ENUM, text name, bits per element). Append only. */
#define CRUCIBLE_DTYPE_LIST(X)                                               \
    X(F32, "f32", 32)                                                        \
    X(I32, "i32", 32)                                                        \
    X(I8, "i8", 8)                                                           \
    X(U8, "u8", 8)                                                           \
    X(I4, "i4", 4)          /* two per byte, low nibble first */             \
    X(TERNARY, "ternary", 2) /* 2 bits: 00=0 01=+1 11=-1, LSB first */       \
    X(BINARY, "binary", 1)  /* 1 bit: 1=+1 0=-1, LSB first */                \
    X(I16, "i16", 16)                                                        \
    X(I64, "i64", 64)                                                        \
    X(F16, "f16", 16)                                                        \
    X(BOOL, "bool", 8)

typedef enum crucible_dtype {
    CRUCIBLE_DT_INVALID = 0,
#define CRUCIBLE_X_(e, s, b) CRUCIBLE_DT_##e,
    CRUCIBLE_DTYPE_LIST(CRUCIBLE_X_)
#undef CRUCIBLE_X_
    CRUCIBLE_DT_COUNT_
} crucible_dtype;

/* ---- canonical ops -------------------------------------------------------
 * X(ENUM, text name). The number of an op never changes: append only.
 * Full semantics (inputs, attributes, broadcasting, rounding) are in
 * docs/ir-ops.md; the reference interpreter is the definition. */
#define CRUCIBLE_OP_LIST(X)                                                  \
    X(UNSUPPORTED, "unsupported") /* placeholder for a source op a frontend \
                                     could not lower; attr source_op names it*/\
    X(DENSE, "dense")           /* y = x W^T + b; x [N,K], W [M,K], b [M] */ \
    X(MATMUL, "matmul")         /* batched matrix product, numpy rules */    \
    X(CONV2D, "conv2d")         /* strides, pads, dilations, group */        \
    X(CONV_TRANSPOSE2D, "conv_transpose2d")                                  \
    X(ADD, "add")                                                            \
    X(SUB, "sub")                                                            \
    X(MUL, "mul")                                                            \
    X(DIV, "div")                                                            \
    X(MAX, "max")                                                            \
    X(MIN, "min")                                                            \
    X(POW, "pow")                                                            \
    X(RELU, "relu")                                                          \
    X(LEAKY_RELU, "leaky_relu")                                              \
    X(PRELU, "prelu")                                                        \
    X(CLIP, "clip")                                                          \
    X(SIGMOID, "sigmoid")                                                    \
    X(TANH, "tanh")                                                          \
    X(HARD_SIGMOID, "hard_sigmoid")                                          \
    X(HARD_SWISH, "hard_swish")                                              \
    X(EXP, "exp")                                                            \
    X(LOG, "log")                                                            \
    X(SQRT, "sqrt")                                                          \
    X(NEG, "neg")                                                            \
    X(ABS, "abs")                                                            \
    X(SOFTMAX, "softmax")                                                    \
    X(LOG_SOFTMAX, "log_softmax")                                            \
    X(MAX_POOL2D, "max_pool2d")                                              \
    X(AVG_POOL2D, "avg_pool2d")                                              \
    X(GLOBAL_AVG_POOL, "global_avg_pool")                                    \
    X(GLOBAL_MAX_POOL, "global_max_pool")                                    \
    X(RESHAPE, "reshape")                                                    \
    X(TRANSPOSE, "transpose")                                                \
    X(CONCAT, "concat")                                                      \
    X(PAD, "pad")                                                            \
    X(SLICE, "slice")                                                        \
    X(GATHER, "gather")                                                      \
    X(REDUCE_MEAN, "reduce_mean")                                            \
    X(REDUCE_SUM, "reduce_sum")                                              \
    X(REDUCE_MAX, "reduce_max")                                              \
    X(CAST, "cast")                                                          \
    X(QUANTIZE, "quantize")                                                  \
    X(DEQUANTIZE, "dequantize")                                              \
    X(REQUANTIZE, "requantize")                                              \
    /* language models (docs/ir-ops.md, "Language-model ops") */            \
    X(RMS_NORM, "rms_norm")     /* x / sqrt(mean(x^2) + eps) * w, last axis*/\
    X(ROPE, "rope")             /* rotary position embedding, x [.., H, D] */\
    X(SILU, "silu")             /* x * sigmoid(x) */                         \
    X(KV_WRITE, "kv_write")     /* cache with rows at positions replaced */  \
    X(ATTENTION, "attention")   /* causal (GQA) attention over a KV cache */

typedef enum crucible_op {
#define CRUCIBLE_X_(e, s) CRUCIBLE_OP_##e,
    CRUCIBLE_OP_LIST(CRUCIBLE_X_)
#undef CRUCIBLE_X_
    CRUCIBLE_OP_COUNT_
} crucible_op;

/* ---- views ---------------------------------------------------------------*/
enum {
    CRUCIBLE_TENSOR_CONST = 1u << 0,  /* has constant data */
    CRUCIBLE_TENSOR_INPUT = 1u << 1,  /* graph input */
    CRUCIBLE_TENSOR_OUTPUT = 1u << 2  /* graph output */
};

typedef struct crucible_tensor_view {
    uint32_t size;       /* sizeof as filled by the host */
    uint32_t flags;      /* CRUCIBLE_TENSOR_* */
    const char *name;
    int32_t dtype;       /* crucible_dtype */
    int32_t rank;        /* 0..CRUCIBLE_MAX_RANK */
    const int64_t *dims; /* rank entries, each >= 1 (0 only if unknown) */
    /* quantisation: real = scale * (q - zero_point). quant_count == 0: none;
     * quant_axis == -1: per tensor (count 1); else per slice along axis
     * (count = dims[axis]), or per block when quant_block > 0 (below). */
    int32_t quant_axis;
    uint32_t quant_count;
    const float *scales;
    const int32_t *zero_points;
    const void *data;    /* constant data (packed per dtype) or NULL */
    size_t data_bytes;
    /* ABI 1.1 (read only when size covers it): block-wise quantisation
     * (GGUF Q8_0 / Q4_0 / Q4_1, ONNX DequantizeLinear block_size). With
     * quant_block = B > 0, the scales and zero points form an array shaped
     * like the tensor with dims[quant_axis] replaced by
     * ceil(dims[quant_axis] / B), row-major; element (i0..ir-1) uses the
     * entry at i_axis / B on that axis and the same index elsewhere. Block
     * scales may be zero or negative (as GGUF stores them); only finite
     * values are allowed. A consumer that does not handle blocks must
     * refuse a tensor with quant_block > 0. */
    int32_t quant_block;
} crucible_tensor_view;

typedef enum crucible_attr_type {
    CRUCIBLE_ATTR_INT = 1,
    CRUCIBLE_ATTR_FLOAT = 2,
    CRUCIBLE_ATTR_INTS = 3,
    CRUCIBLE_ATTR_FLOATS = 4,
    CRUCIBLE_ATTR_STRING = 5
} crucible_attr_type;

typedef struct crucible_attr_view {
    uint32_t size;
    int32_t type;          /* crucible_attr_type */
    const char *name;
    int64_t i;             /* INT */
    double f;              /* FLOAT */
    uint32_t count;        /* INTS / FLOATS element count */
    const int64_t *ints;
    const double *floats;
    const char *s;         /* STRING */
} crucible_attr_view;

typedef struct crucible_node_view {
    uint32_t size;
    int32_t op;            /* crucible_op */
    const char *op_name;   /* canonical name, e.g. "conv2d" */
    const char *name;      /* node name, unique in the graph */
    uint32_t n_inputs;
    const int32_t *inputs; /* tensor indices; -1 = optional input absent */
    uint32_t n_outputs;
    const int32_t *outputs;
    uint32_t n_attrs;
    const crucible_attr_view *const *attrs;
} crucible_node_view;

typedef struct crucible_graph_view {
    crucible_header hdr;
    const char *name;
    uint32_t n_tensors;
    const crucible_tensor_view *const *tensors;
    uint32_t n_nodes;      /* in topological order */
    const crucible_node_view *const *nodes;
    uint32_t n_inputs;
    const int32_t *inputs;  /* tensor indices of graph inputs */
    uint32_t n_outputs;
    const int32_t *outputs; /* tensor indices of graph outputs */
} crucible_graph_view;

/* ---- builder (used by frontends) -----------------------------------------
 * [main-thread] Passed to a frontend's load(). Every call copies what it is
 * given; the frontend keeps ownership of its own buffers. Functions return a
 * non-negative id or CRUCIBLE_OK, or a negative status (the host logs why).
 * The host validates the finished graph (shapes, references, cycles) after
 * load() returns. */
typedef struct crucible_ir_builder {
    crucible_header hdr;
    void *ctx; /* pass back as the first argument */

    /* New tensor; name must be unique. Returns its index. */
    int32_t (*add_tensor)(void *ctx, const char *name, int32_t dtype,
                          int32_t rank, const int64_t *dims);
    /* Constant data, packed per dtype; bytes must match the shape. */
    int (*set_data)(void *ctx, int32_t tensor, const void *data,
                    size_t bytes);
    int (*set_quant)(void *ctx, int32_t tensor, int32_t axis, uint32_t count,
                     const float *scales, const int32_t *zero_points);
    /* New node with a canonical op name (see CRUCIBLE_OP_LIST). Input
     * index -1 marks an absent optional input. Returns the node index. */
    int32_t (*add_node)(void *ctx, const char *op, const char *name,
                        uint32_t n_inputs, const int32_t *inputs,
                        uint32_t n_outputs, const int32_t *outputs);
    int (*attr_int)(void *ctx, int32_t node, const char *name, int64_t v);
    int (*attr_float)(void *ctx, int32_t node, const char *name, double v);
    int (*attr_ints)(void *ctx, int32_t node, const char *name,
                     uint32_t count, const int64_t *v);
    int (*attr_floats)(void *ctx, int32_t node, const char *name,
                       uint32_t count, const double *v);
    int (*attr_string)(void *ctx, int32_t node, const char *name,
                       const char *v);
    int (*mark_input)(void *ctx, int32_t tensor);
    int (*mark_output)(void *ctx, int32_t tensor);
    int (*set_name)(void *ctx, const char *graph_name);
    /* Free-form metadata shown by `crucible ir` (e.g. "producer"). */
    int (*set_meta)(void *ctx, const char *key, const char *value);
    /* ABI 1.1 (check hdr.size first): block-wise quantisation, see
     * crucible_tensor_view.quant_block; count must be the number of blocks
     * (the tensor's element count / dims[axis] * ceil(dims[axis] / block)).
     * zero_points may be NULL (all 0). */
    int (*set_quant_block)(void *ctx, int32_t tensor, int32_t axis,
                           int32_t block, uint32_t count, const float *scales,
                           const int32_t *zero_points);
} crucible_ir_builder;

/* ---- helpers (header-only, on the views alone) -------------------------- */
static inline const crucible_attr_view *
crucible_node_attr(const crucible_node_view *n, const char *name)
{
    for (uint32_t i = 0; i < n->n_attrs; i++) {
        const char *a = n->attrs[i]->name, *b = name;
        while (*a && *a == *b) a++, b++;
        if (*a == *b) return n->attrs[i];
    }
    return NULL;
}

static inline int64_t crucible_node_attr_int(const crucible_node_view *n,
                                             const char *name, int64_t dflt)
{
    const crucible_attr_view *a = crucible_node_attr(n, name);
    return (a && a->type == CRUCIBLE_ATTR_INT) ? a->i : dflt;
}

static inline double crucible_node_attr_float(const crucible_node_view *n,
                                              const char *name, double dflt)
{
    const crucible_attr_view *a = crucible_node_attr(n, name);
    if (a && a->type == CRUCIBLE_ATTR_FLOAT) return a->f;
    if (a && a->type == CRUCIBLE_ATTR_INT) return (double)a->i;
    return dflt;
}

/* Element count; 0 if any dim is unknown or the product overflows. */
static inline uint64_t crucible_tensor_numel(const crucible_tensor_view *t)
{
    uint64_t n = 1;
    for (int32_t i = 0; i < t->rank; i++) {
        if (t->dims[i] <= 0) return 0;
        if (n > UINT64_MAX / (uint64_t)t->dims[i]) return 0;
        n *= (uint64_t)t->dims[i];
    }
    return n;
}

/* The tensor's quantisation block size (0: per tensor / per axis), read
 * only when the host's view is new enough to carry it (ABI 1.1). */
static inline int32_t crucible_tensor_quant_block(const crucible_tensor_view *t)
{
    return t->size >= offsetof(crucible_tensor_view, quant_block) +
                          sizeof(int32_t)
               ? t->quant_block
               : 0;
}

static inline const crucible_tensor_view *
crucible_graph_tensor(const crucible_graph_view *g, int32_t idx)
{
    return (idx >= 0 && (uint32_t)idx < g->n_tensors) ? g->tensors[idx]
                                                      : NULL;
}

#ifdef __cplusplus
}
#endif
#endif /* CRUCIBLE_IR_H */
