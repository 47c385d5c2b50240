/*
 * tfl_model.h - the TFLite model (schema version 3, file identifier
 * "TFL3") decoded from its FlatBuffer into plain C structs, and checked.
 *
 * What is read (field numbers are the schema's slot ids, in declaration
 * order; a union takes two slots):
 *
 *   Model         0 version:uint  1 operator_codes:[OperatorCode]
 *                 2 subgraphs:[SubGraph]  3 description:string
 *                 4 buffers:[Buffer]  6 metadata:[Metadata]
 *                 7 signature_defs (counted only)
 *   OperatorCode  0 deprecated_builtin_code:byte  1 custom_code:string
 *                 2 version:int = 1  3 builtin_code:int
 *                 (the op is max(builtin_code, deprecated_builtin_code))
 *   SubGraph      0 tensors:[Tensor]  1 inputs:[int]  2 outputs:[int]
 *                 3 operators:[Operator]  4 name:string
 *   Tensor        0 shape:[int]  1 type:byte  2 buffer:uint  3 name:string
 *                 4 quantization  5 is_variable:bool  6 sparsity (present?)
 *                 7 shape_signature:[int]  9 variant_tensors (present?)
 *   Quantization  2 scale:[float]  3 zero_point:[long]  4/5 details union
 *                 6 quantized_dimension:int
 *   Operator      0 opcode_index:uint  1 inputs:[int]  2 outputs:[int]
 *                 3/4 builtin_options union  5 custom_options:[ubyte]
 *                 8 intermediates:[int]  9/10 large_custom_options_*
 *                 11/12 builtin_options_2 union
 *   Buffer        0 data:[ubyte]  1 offset:ulong  2 size:ulong
 *   Metadata      0 name:string  1 buffer:uint
 *
 * Only subgraphs[0] (the main graph) is decoded; the others are counted.
 * Builtin options of the ops the frontend lowers are decoded into
 * tfl_opts (see tfl_model.c for the per-table slot ids).
 *
 * Checks done by tfl_model_parse (each failure has a message naming the
 * subgraph / tensor / operator / buffer and the problem):
 *   - everything fb.h checks (offsets, lengths, strings, budget);
 *   - version == 3; counts within TFL_MAX_* limits;
 *   - tensor: dims >= 0 (rank up to 8 is decoded, more is flagged), buffer
 *     index in range, buffer data length == the tensor's packed size,
 *     external (offset/size) buffers refused; quantisation of integer
 *     tensors: scales finite and > 0, as many zero points as scales, zero
 *     points inside the dtype's range, quantized_dimension in range and
 *     matching the scale count;
 *   - operator: opcode_index in range, tensor indices in range (-1 only as
 *     an absent optional input).
 *
 * Strings and constant data point into the caller's buffer, which must
 * outlive the model. Everything else is allocated from a tfl_arena.
 */
#ifndef TFLITE_TFL_MODEL_H
#define TFLITE_TFL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "fb.h"

#define TFL_MAX_RANK 8
#define TFL_MAX_TENSORS 1000000u
#define TFL_MAX_OPS 1000000u
#define TFL_MAX_OP_IO 1024u
#define TFL_MAX_BUFFERS 1000000u
#define TFL_MAX_OPCODES 100000u
#define TFL_MAX_SCALES (1u << 24)

/* TensorType */
enum {
    TFL_FLOAT32 = 0, TFL_FLOAT16 = 1, TFL_INT32 = 2, TFL_UINT8 = 3,
    TFL_INT64 = 4, TFL_STRING = 5, TFL_BOOL = 6, TFL_INT16 = 7,
    TFL_COMPLEX64 = 8, TFL_INT8 = 9, TFL_FLOAT64 = 10, TFL_COMPLEX128 = 11,
    TFL_UINT64 = 12, TFL_RESOURCE = 13, TFL_VARIANT = 14, TFL_UINT32 = 15,
    TFL_UINT16 = 16, TFL_INT4 = 17
};

/* BuiltinOperator codes the frontend lowers (names of all codes: tfl_ops.c) */
enum {
    TFL_OP_ADD = 0, TFL_OP_AVERAGE_POOL_2D = 1, TFL_OP_CONCATENATION = 2,
    TFL_OP_CONV_2D = 3, TFL_OP_DEPTHWISE_CONV_2D = 4, TFL_OP_DEQUANTIZE = 6,
    TFL_OP_FULLY_CONNECTED = 9, TFL_OP_LOGISTIC = 14, TFL_OP_MAX_POOL_2D = 17,
    TFL_OP_MUL = 18, TFL_OP_RELU = 19, TFL_OP_RELU_N1_TO_1 = 20,
    TFL_OP_RELU6 = 21, TFL_OP_RESHAPE = 22, TFL_OP_SOFTMAX = 25,
    TFL_OP_TANH = 28, TFL_OP_CUSTOM = 32, TFL_OP_PAD = 34,
    TFL_OP_GATHER = 36, TFL_OP_TRANSPOSE = 39, TFL_OP_MEAN = 40,
    TFL_OP_SUB = 41, TFL_OP_DIV = 42, TFL_OP_SQUEEZE = 43,
    TFL_OP_STRIDED_SLICE = 45, TFL_OP_EXP = 47, TFL_OP_LOG_SOFTMAX = 50,
    TFL_OP_PRELU = 54, TFL_OP_MAXIMUM = 55, TFL_OP_MINIMUM = 57,
    TFL_OP_NEG = 59, TFL_OP_PADV2 = 60, TFL_OP_SLICE = 65,
    TFL_OP_TRANSPOSE_CONV = 67, TFL_OP_EXPAND_DIMS = 70, TFL_OP_LOG = 73,
    TFL_OP_SUM = 74, TFL_OP_SQRT = 75, TFL_OP_REDUCE_MAX = 82,
    TFL_OP_LEAKY_RELU = 98, TFL_OP_MIRROR_PAD = 100, TFL_OP_ABS = 101,
    TFL_OP_QUANTIZE = 114, TFL_OP_HARD_SWISH = 117
};

/* BuiltinOptions union member numbers (0 = NONE) */
enum {
    TFL_OPT_CONV2D = 1, TFL_OPT_DEPTHWISE = 2, TFL_OPT_POOL2D = 5,
    TFL_OPT_FULLY_CONNECTED = 8, TFL_OPT_SOFTMAX = 9,
    TFL_OPT_CONCATENATION = 10, TFL_OPT_ADD = 11, TFL_OPT_RESHAPE = 17,
    TFL_OPT_MUL = 21, TFL_OPT_PAD = 22, TFL_OPT_GATHER = 23,
    TFL_OPT_TRANSPOSE = 26, TFL_OPT_REDUCER = 27, TFL_OPT_SUB = 28,
    TFL_OPT_DIV = 29, TFL_OPT_SQUEEZE = 30, TFL_OPT_STRIDED_SLICE = 32,
    TFL_OPT_TRANSPOSE_CONV = 49, TFL_OPT_LEAKY_RELU = 75,
    TFL_OPT_MIRROR_PAD = 77
};

/* Padding, ActivationFunctionType */
enum { TFL_PAD_SAME = 0, TFL_PAD_VALID = 1 };
enum {
    TFL_ACT_NONE = 0, TFL_ACT_RELU = 1, TFL_ACT_RELU_N1_TO_1 = 2,
    TFL_ACT_RELU6 = 3, TFL_ACT_TANH = 4, TFL_ACT_SIGN_BIT = 5
};

/* ---- allocation ---------------------------------------------------------
 * One arena per load: blocks from an injected realloc-style function
 * (Lua style: n == 0 frees), with a byte limit. */
typedef void *(*tfl_realloc_fn)(void *ud, void *p, size_t old_size,
                                size_t new_size);

typedef struct tfl_block tfl_block;
typedef struct tfl_arena {
    tfl_realloc_fn fn;
    void *ud;
    tfl_block *head;
    size_t total, limit;
    int exhausted; /* an allocation was refused by the limit */
} tfl_arena;

void tfl_arena_init(tfl_arena *a, tfl_realloc_fn fn, void *ud, size_t limit);
void tfl_arena_free(tfl_arena *a);
void *tfl_alloc(tfl_arena *a, size_t n);                   /* zeroed */
void *tfl_alloc_array(tfl_arena *a, size_t count, size_t size); /* checked */

/* ---- the decoded model -------------------------------------------------- */
typedef struct tfl_quant {
    uint32_t n_scale, n_zp;
    float *scales;        /* n_scale (decoded) */
    int64_t *zero_points; /* n_zp */
    int32_t qdim;         /* quantized_dimension */
    uint8_t details_type; /* non-zero: custom quantisation */
} tfl_quant;

typedef struct tfl_tensor {
    const char *name;  /* "" when absent */
    int32_t rank;      /* entries in shape (may exceed TFL_MAX_RANK) */
    int64_t dims[TFL_MAX_RANK];
    int8_t type;       /* TensorType */
    uint32_t buffer;
    int has_quant;     /* n_scale > 0 */
    tfl_quant q;
    uint8_t is_variable, has_sparsity, has_variant, dynamic;
    /* constant data (NULL, 0 when the buffer is empty) */
    const uint8_t *data;
    size_t data_bytes;
} tfl_tensor;

typedef struct tfl_opcode {
    int32_t code;        /* max(builtin_code, deprecated_builtin_code) */
    int32_t version;
    const char *custom;  /* custom_code or "" */
} tfl_opcode;

/* Decoded builtin options: fields default to the schema defaults; only
 * the fields of the op's own options table are meaningful. */
typedef struct tfl_opts {
    int8_t padding, act;
    int32_t stride_w, stride_h, dil_w, dil_h, filter_w, filter_h;
    int32_t depth_multiplier;
    int8_t weights_format;
    int keep_num_dims;
    float beta, alpha;
    int32_t axis, batch_dims;
    int keep_dims;
    int32_t begin_mask, end_mask, ellipsis_mask, new_axis_mask, shrink_mask;
    int offset;
    int8_t mirror_mode;
} tfl_opts;

typedef struct tfl_operator {
    uint32_t opcode_index;
    uint32_t n_in, n_out;
    int32_t *in, *out;   /* tensor indices; in[k] == -1: absent */
    uint8_t opt_type;    /* BuiltinOptions member, 0 = NONE */
    uint8_t opt2_type;   /* BuiltinOptions2 member */
    tfl_opts opts;       /* decoded when opt_type is one read here */
    int has_custom_options;
} tfl_operator;

typedef struct tfl_buffer {
    const uint8_t *data;
    uint32_t size;
    uint64_t ext_offset, ext_size; /* > 2 GB layout: data outside the fb */
} tfl_buffer;

typedef struct tfl_meta {
    const char *name;
    uint32_t buffer;
} tfl_meta;

typedef struct tfl_model {
    uint32_t version;
    const char *description;
    uint32_t n_opcodes;
    tfl_opcode *opcodes;
    uint32_t n_subgraphs, n_signatures;
    const char *sg_name;
    uint32_t n_tensors;
    tfl_tensor *tensors;
    uint32_t n_inputs, n_outputs;
    int32_t *inputs, *outputs;
    uint32_t n_ops;
    tfl_operator *ops;
    uint32_t n_buffers;
    tfl_buffer *buffers;
    uint32_t n_meta;
    tfl_meta *meta;
} tfl_model;

/* Decodes and checks buf[0..len). Returns 0 or a negative crucible status
 * (CRUCIBLE_E_FORMAT malformed, _UNSUPPORTED valid but not handled,
 * _LIMIT too large, _NOMEM) with a message in err. */
int tfl_model_parse(const uint8_t *buf, size_t len, tfl_arena *a,
                    tfl_model *m, char *err, size_t errlen);

/* ---- names and sizes (tfl_ops.c) ---------------------------------------- */
/* "CONV_2D"; NULL for a code this frontend does not know. */
const char *tfl_op_name(int32_t code);
/* "FLOAT32"; "?" when unknown. */
const char *tfl_type_name(int8_t type);
/* Bits per element of a TensorType the IR can hold (0: none). */
int tfl_type_bits(int8_t type);

#endif
