/*
 * onnx_int.h - private header of the ONNX frontend plugin.
 *
 * Pipeline of one load():
 *
 *   file bytes --ox_wire_check (depth-limited pre-scan)-->
 *   protobuf-c unpack (arena allocator) --> ModelProto
 *   --ox_graph_init: values for graph inputs, initializers, value_info-->
 *   nodes sorted topologically --ox_lower_node per node--> a private
 *   "pending IR" (ox_val / ox_node arrays), with constant folding and
 *   peepholes (BatchNormalization folded into conv2d / dense)
 *   --ox_emit--> the host's crucible_ir_builder.
 *
 * Memory: everything allocated during one load() lives in one arena
 * (ox_arena) that is released when load() returns; the arena has a byte
 * limit so that a hostile file cannot make the plugin allocate without
 * bound. Nothing here is shared between loads; the plugin keeps no global
 * state except the host table.
 *
 * Threading: [main-thread] only, like the frontend slots.
 */
#ifndef ONNX_INT_H
#define ONNX_INT_H

#include <crucible/crucible.h>
#include <stddef.h>
#include <stdint.h>

#include "onnx.pb-c.h"

/* ---- limits ------------------------------------------------------------- */
#define OX_MAX_OPSET 18              /* newest default-domain opset handled */
#define OX_MAX_IR_VERSION 10         /* newer ir_version: warning only */
#define OX_MAX_FILE ((size_t)2 << 30)   /* 2 GiB */
#define OX_MAX_DEPTH 64              /* nesting of protobuf messages */
#define OX_MAX_ELEMS ((uint64_t)1 << 40) /* as the IR */
#define OX_FOLD_MAX ((uint64_t)1 << 24)  /* elements made by constant folding */
#define OX_MAX_NAME 4000             /* IR names are at most 4096 bytes */
#define OX_MAX_NODES 1000000
#define OX_MAX_REPEAT 64             /* Tile repeats lowered as concat */

/* Result of lowering one ONNX node: OX_OK, OX_UNSUP (ctx->why says why;
 * the node becomes an `unsupported` IR node) or a negative crucible_status
 * (fatal: the load fails). */
enum { OX_OK = 0, OX_UNSUP = 1 };

/* ---- arena -------------------------------------------------------------- */
typedef struct ox_block {
    struct ox_block *next;
    size_t size, used; /* bytes of data[] */
    size_t alloc;      /* bytes given to the host allocator */
    max_align_t data[];
} ox_block;

typedef struct ox_arena {
    const crucible_host *host;
    ox_block *head;
    size_t total, limit; /* bytes held / allowed */
    int exhausted;       /* an allocation failed */
} ox_arena;

/* ---- string -> index map (open addressing, tombstones) ----------------- */
typedef struct ox_map {
    const char **keys; /* NULL empty, OX_TOMB deleted; strings not owned */
    int32_t *vals;
    size_t cap, used, n; /* used counts tombstones */
} ox_map;

/* ---- pending IR ---------------------------------------------------------- */
typedef struct ox_val {
    const char *name;    /* IR tensor name (unique) */
    int32_t dtype;       /* crucible_dtype; 0: no IR dtype (see onnx_type) */
    int32_t onnx_type;   /* ONNX elem type it came from (0 unknown) */
    int32_t rank;        /* -1: unknown */
    int64_t dims[CRUCIBLE_MAX_RANK]; /* 0: unknown */
    int is_const;        /* data holds the value (may be 0 bytes) */
    const void *data;    /* packed per dtype; arena or protobuf memory */
    size_t bytes;
    int is_input;        /* graph input */
    int32_t producer;    /* ox_node index or -1 */
    int32_t quant_axis;  /* quant_count == 0: none */
    uint32_t quant_count;
    const float *scales;
    const int32_t *zps;
    int32_t ir;          /* builder index once emitted, else -1 */
} ox_val;

typedef struct ox_attr {
    const char *name;
    int32_t type; /* crucible_attr_type */
    int64_t i;
    double f;
    uint32_t count;
    const int64_t *ints;
    const double *floats;
    const char *s;
} ox_attr;

typedef struct ox_node {
    int32_t op; /* crucible_op */
    const char *name;
    uint32_t n_in, n_out;
    int32_t *in; /* val indices, -1 absent */
    int32_t *out;
    uint32_t n_attrs, cap_attrs;
    ox_attr *attrs;
    int dead;
} ox_node;

#define OX_MAX_OUTPUTS 64

/* A type from graph.input / output / value_info, used as a hint for
 * values whose shape the lowering cannot compute. */
typedef struct ox_hint {
    int32_t dtype, onnx_type, rank; /* rank -1: none, -2: above 8 */
    int64_t dims[CRUCIBLE_MAX_RANK]; /* 0: unknown (dim_param) */
    int dynamic;                     /* a dim_param or missing value */
    int negative;                    /* a negative dim_value */
} ox_hint;

typedef struct ox_ctx {
    const crucible_host *host;
    ox_arena arena;
    const char *path;
    const char *dir; /* directory of the model (for external data) */
    char *dir_real;  /* realpath of dir (NULL until needed) */

    Onnx__ModelProto *model;
    Onnx__GraphProto *graph;
    int64_t opset;    /* default domain; 0 when not imported */
    int64_t ir_version;

    ox_val *vals;
    size_t n_vals, cap_vals;
    ox_node *nodes;
    size_t n_nodes, cap_nodes;

    ox_map onnx_names; /* ONNX value name -> val index (-1 reserved) */
    ox_map ir_names;   /* IR tensor names in use -> val index */
    ox_map node_names; /* IR node names in use (-1 reserved) */
    ox_map onnx_uses;  /* ONNX name -> references by nodes + graph outputs */
    ox_map val_suffix, node_suffix; /* next "_N" to try per base name */
    ox_map vinfo;      /* name -> index into hints */
    ox_hint *hints;
    size_t n_hints, cap_hints;

    /* the ONNX node being lowered */
    const Onnx__NodeProto *cur;
    const char *cur_name; /* unique base name for its IR nodes */
    int64_t cur_opset;
    int32_t out_vals[OX_MAX_OUTPUTS]; /* val per ONNX output, -1 none */
    char why[512];

    char dyn_note[512]; /* dynamic dims set to 1 */
    size_t n_dyn;
} ox_ctx;

/* ---- onnx_graph.c: arena, maps, pending IR, emission -------------------- */
void ox_arena_init(ox_arena *a, const crucible_host *h, size_t limit);
void ox_arena_free(ox_arena *a);
void *ox_alloc(ox_ctx *c, size_t n);  /* zeroed; NULL on failure */
char *ox_strdup(ox_ctx *c, const char *s);
char *ox_printf(ox_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Grows *arr to hold need elements of elem bytes. 0 or -1. */
int ox_grow(ox_ctx *c, void **arr, size_t *cap, size_t need, size_t elem);

int ox_map_get(const ox_map *m, const char *key, int32_t *val);
int ox_map_put(ox_ctx *c, ox_map *m, const char *key, int32_t val);
void ox_map_del(ox_map *m, const char *key);

/* New value named exactly `name` (must be free in ir_names), or a fresh
 * unique name derived from `name` when unique_ok. Returns index or < 0. */
int32_t ox_val_new(ox_ctx *c, const char *name, int unique_ok,
                   int32_t dtype, int32_t rank, const int64_t *dims);
/* New node; name NULL = the current ONNX node's base name, else
 * base + "/" + suffix (made unique). Returns index or < 0. */
int32_t ox_node_new(ox_ctx *c, int32_t op, const char *suffix, uint32_t n_in,
                    const int32_t *in, uint32_t n_out, const int32_t *out);
int ox_attr_int(ox_ctx *c, int32_t node, const char *name, int64_t v);
int ox_attr_float(ox_ctx *c, int32_t node, const char *name, double v);
int ox_attr_ints(ox_ctx *c, int32_t node, const char *name, uint32_t n,
                 const int64_t *v);
int ox_attr_floats(ox_ctx *c, int32_t node, const char *name, uint32_t n,
                   const double *v);
int ox_attr_str(ox_ctx *c, int32_t node, const char *name, const char *v);
const ox_attr *ox_node_attr(const ox_node *n, const char *name);
/* Drops vals >= nv and nodes >= nn (rolls back a failed lowering). */
void ox_rollback(ox_ctx *c, size_t nv, size_t nn);
/* Replays the pending IR through the builder; then marks the graph inputs
 * and outputs (val indices, in ONNX order). */
int ox_emit(ox_ctx *c, const crucible_ir_builder *b);
int ox_emit_io(ox_ctx *c, const crucible_ir_builder *b, const int32_t *ins,
               size_t n_in, const int32_t *outs, size_t n_out);

/* ---- onnx_plugin.c ------------------------------------------------------- */
/* Fills the unknown parts of val v's type from value_info. */
void ox_apply_hint(ox_ctx *c, int32_t v);

/* ---- onnx_tensor.c: dtypes and TensorProto decoding --------------------- */
int32_t ox_dtype_from_onnx(int32_t onnx_type); /* 0 if none */
const char *ox_onnx_type_name(int32_t onnx_type);
size_t ox_dtype_size(int32_t dtype); /* bytes per element, 0 sub-byte/bad */
const char *ox_dtype_name(int32_t dtype);
/* Decodes t into a constant val (dtype converted: double -> f32). For a
 * type with no IR dtype the val gets dtype 0 and no data. what names it in
 * messages. Returns val index or a negative status (logged). */
int32_t ox_tensor_to_val(ox_ctx *c, const Onnx__TensorProto *t,
                         const char *name, int unique_ok, const char *what);
/* Element count of a dims list, checking each dim; -1 when invalid. */
int ox_numel(int32_t rank, const int64_t *dims, uint64_t *out);
/* Reading constant elements (index < numel). */
double ox_get_f(const ox_val *v, uint64_t i);
int64_t ox_get_i(const ox_val *v, uint64_t i);
void ox_set_f(int32_t dtype, void *data, uint64_t i, double x);
void ox_set_i(int32_t dtype, void *data, uint64_t i, int64_t x);
int ox_is_int(int32_t dtype);
int ox_log(ox_ctx *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- onnx_wire.c: protobuf wire-format checks --------------------------- */
/* 0..90: how much head looks like a serialized ModelProto. */
int ox_wire_score(const uint8_t *head, size_t n);
/* Checks message nesting stays within OX_MAX_DEPTH along the recursive
 * parts of the schema (graphs in attributes, nested types). 0 ok, 1 too
 * deep, -1 malformed. */
int ox_wire_depth_ok(const uint8_t *buf, size_t n);

/* ---- onnx_lower.c / onnx_lower_nn.c ------------------------------------- */
/* Lowers c->cur into the pending IR. */
int ox_lower_node(ox_ctx *c);

/* shared between the lowering files */
int ox_unsup(ox_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int32_t ox_in(ox_ctx *c, uint32_t k); /* val of input k, -1 if absent */
uint32_t ox_n_in(ox_ctx *c);
uint32_t ox_n_out(ox_ctx *c);
int ox_out_used(ox_ctx *c, uint32_t k); /* output k requested */
const Onnx__AttributeProto *oa_find(ox_ctx *c, const char *name);
int64_t oa_i(ox_ctx *c, const char *name, int64_t dflt);
double oa_f(ox_ctx *c, const char *name, double dflt);
const char *oa_s(ox_ctx *c, const char *name, const char *dflt);
/* INTS attribute: count and values (NULL, 0 when absent). */
const int64_t *oa_ints(ox_ctx *c, const char *name, uint32_t *count);
/* Output k as a new val (ONNX name) / as an alias of val v / constant. */
int32_t ox_out(ox_ctx *c, uint32_t k, int32_t dtype, int32_t rank,
               const int64_t *dims);
int ox_alias(ox_ctx *c, uint32_t k, int32_t v);
int32_t ox_out_const(ox_ctx *c, uint32_t k, int32_t dtype, int32_t rank,
                     const int64_t *dims, const void *data, size_t bytes);
/* Intermediate values and constants. */
int32_t ox_tmp(ox_ctx *c, const char *suffix, int32_t dtype, int32_t rank,
               const int64_t *dims);
int32_t ox_const(ox_ctx *c, const char *suffix, int32_t dtype, int32_t rank,
                 const int64_t *dims, const void *data, size_t bytes);
int32_t ox_const_f32(ox_ctx *c, const char *suffix, float v, int32_t rank);
/* A val usable as an IR operand: known dtype, not empty. */
int ox_operand_ok(ox_ctx *c, int32_t v, const char *what);
int ox_shape_known(const ox_val *v);
uint64_t ox_val_numel(const ox_val *v); /* 0 when unknown */
/* Node helpers: return OX_OK / OX_UNSUP / < 0 and the result val in
 * *result. out >= 0 writes into that (pre-made) val; out < 0 makes a tmp
 * named after suffix; the node is named after the ONNX node (suffix NULL)
 * or base/suffix. ox_reshape: dims with at most one unknown (written -1);
 * a constant x stays a constant sharing the data. */
int ox_reshape(ox_ctx *c, int32_t x, int32_t rank, const int64_t *dims,
               const char *suffix, int32_t out, int32_t *result);
int ox_unary(ox_ctx *c, int32_t op, int32_t x, const char *suffix,
             int32_t out, int32_t *result);
int ox_binary(ox_ctx *c, int32_t op, int32_t a, int32_t b,
              const char *suffix, int32_t out, int32_t *result);
int ox_bcast(int32_t ra, const int64_t *da, int32_t rb, const int64_t *db,
             int32_t *r, int64_t *d);
int64_t ox_norm_axis(int64_t axis, int32_t rank); /* -1 when invalid */

/* onnx_lower_nn.c handlers (signature: int fn(ox_ctx *)) */
int ox_lower_conv(ox_ctx *c);
int ox_lower_conv_transpose(ox_ctx *c);
int ox_lower_pool(ox_ctx *c);
int ox_lower_global_pool(ox_ctx *c);
int ox_lower_gemm(ox_ctx *c);
int ox_lower_matmul(ox_ctx *c);
int ox_lower_batchnorm(ox_ctx *c);
int ox_lower_instancenorm(ox_ctx *c);
int ox_lower_layernorm(ox_ctx *c);
int ox_lower_mvn(ox_ctx *c);
int ox_lower_softmax(ox_ctx *c);
int ox_lower_qdq(ox_ctx *c);
int ox_lower_matmul_int(ox_ctx *c); /* MatMulInteger, QLinearMatMul */
int ox_lower_conv_int(ox_ctx *c);   /* ConvInteger, QLinearConv */
int ox_lower_lrn(ox_ctx *c);
int ox_lower_resize(ox_ctx *c);

#endif
