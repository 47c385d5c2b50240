/*
 * ir.h - the host's IR: a graph of typed tensors and nodes with canonical
 * ops (the op and dtype enums are the SDK's, see crucible/ir.h).
 *
 * Ownership: a cr_graph owns every string, array and constant buffer it
 * points to. Tensors and nodes are referred to by index. Not thread-safe
 * while being modified; read-only use from several threads is fine.
 *
 * Plugins never see these structs: ir_view_build() makes the SDK views.
 */
#ifndef CR_IR_H
#define CR_IR_H

#include <crucible/crucible.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

typedef struct cr_attr {
    char *name;
    int32_t type; /* crucible_attr_type */
    int64_t i;
    double f;
    uint32_t count;
    int64_t *ints;
    double *floats;
    char *s;
} cr_attr;

typedef struct cr_tensor {
    char *name;
    int32_t dtype;
    int32_t rank;
    int64_t dims[CRUCIBLE_MAX_RANK]; /* 0 = unknown (filled by inference) */
    uint32_t flags;                  /* CRUCIBLE_TENSOR_* */
    int32_t quant_axis;              /* -1 per tensor */
    uint32_t quant_count;            /* 0 = not quantised */
    int32_t quant_block;             /* > 0: block-wise along quant_axis */
    float *scales;
    int32_t *zero_points;
    void *data; /* constant data, packed (see ir_dtype_bytes) */
    size_t data_bytes;
} cr_tensor;

typedef struct cr_node {
    char *name;
    int32_t op; /* crucible_op */
    uint32_t n_inputs, n_outputs, n_attrs;
    int32_t *inputs; /* -1 = absent optional input */
    int32_t *outputs;
    cr_attr *attrs;
} cr_node;

typedef struct cr_meta {
    char *key, *value;
} cr_meta;

typedef struct cr_graph {
    char *name;
    cr_tensor *tensors;
    size_t n_tensors, cap_tensors;
    cr_node *nodes;
    size_t n_nodes, cap_nodes;
    cr_meta *meta;
    size_t n_meta, cap_meta;
    /* Input / output order (indices into tensors). */
    int32_t *inputs;
    size_t n_inputs, cap_inputs;
    int32_t *outputs;
    size_t n_outputs, cap_outputs;
} cr_graph;

/* Limits for untrusted input. */
#define IR_MAX_TENSORS 1000000
#define IR_MAX_NODES 1000000
#define IR_MAX_NAME 4096
#define IR_MAX_ELEMS ((uint64_t)1 << 40)

/* ---- names of enums ---- */
const char *ir_dtype_name(int32_t dtype);      /* "f32"; "?" if invalid */
int32_t ir_dtype_from_name(const char *s);     /* 0 if unknown */
int ir_dtype_bits(int32_t dtype);              /* 0 if invalid */
const char *ir_op_name(int32_t op);            /* "dense"; NULL if invalid */
int32_t ir_op_from_name(const char *s);        /* -1 if unknown */
/* Element i of packed data of an integer dtype (i4/ternary/binary unpacked
 * to their values; f16 as its raw 16-bit pattern; 0 for f32). */
int64_t ir_elem_i64(int32_t dtype, const void *data, uint64_t i);
/* Packed byte size of numel elements of dtype, or SIZE_MAX on overflow. */
size_t ir_dtype_bytes(int32_t dtype, uint64_t numel);

/* ---- building ---- */
cr_graph *ir_new(void);
void ir_free(cr_graph *g);
/* Each returns the new index, or a negative crucible_status with a message
 * in err (when err is not NULL). */
int32_t ir_add_tensor(cr_graph *g, const char *name, int32_t dtype,
                      int32_t rank, const int64_t *dims, char *err,
                      size_t errlen);
int ir_set_data(cr_graph *g, int32_t t, const void *data, size_t bytes,
                char *err, size_t errlen);
/* Block-wise quantisation (crucible_tensor_view.quant_block): count must be
 * ir_quant_block_count() of the tensor's dims. */
int ir_set_quant_block(cr_graph *g, int32_t t, int32_t axis, int32_t block,
                       uint32_t count, const float *scales,
                       const int32_t *zps, char *err, size_t errlen);
/* Number of scales a block-wise quantisation of t needs; 0 if a dim is
 * unknown or the arguments are invalid. */
uint64_t ir_quant_block_count(const cr_tensor *t, int32_t axis,
                              int32_t block);
/* Index of the scale of element j (row-major) of a tensor quantised per
 * tensor, per axis or per block. */
uint64_t ir_quant_index(const cr_tensor *t, uint64_t j);
int ir_set_quant(cr_graph *g, int32_t t, int32_t axis, uint32_t count,
                 const float *scales, const int32_t *zps, char *err,
                 size_t errlen);
int32_t ir_add_node(cr_graph *g, int32_t op, const char *name,
                    uint32_t n_in, const int32_t *in, uint32_t n_out,
                    const int32_t *out, char *err, size_t errlen);
int ir_attr_int(cr_graph *g, int32_t node, const char *name, int64_t v);
int ir_attr_float(cr_graph *g, int32_t node, const char *name, double v);
int ir_attr_ints(cr_graph *g, int32_t node, const char *name, uint32_t n,
                 const int64_t *v);
int ir_attr_floats(cr_graph *g, int32_t node, const char *name, uint32_t n,
                   const double *v);
int ir_attr_string(cr_graph *g, int32_t node, const char *name,
                   const char *v);
int ir_mark_input(cr_graph *g, int32_t t);
int ir_mark_output(cr_graph *g, int32_t t);
int ir_set_meta(cr_graph *g, const char *key, const char *value);
int32_t ir_find_tensor(const cr_graph *g, const char *name); /* -1 */

/* ---- queries ---- */
const cr_attr *ir_attr(const cr_node *n, const char *name);
int64_t ir_attr_i(const cr_node *n, const char *name, int64_t dflt);
double ir_attr_f(const cr_node *n, const char *name, double dflt);
const char *ir_attr_s(const cr_node *n, const char *name, const char *dflt);
uint64_t ir_numel(const cr_tensor *t); /* 0 if unknown or overflow */
/* Index of the node producing tensor t, or -1. O(nodes). */
int32_t ir_producer(const cr_graph *g, int32_t t);

/* Checks references, single producers, constant sizes, quantisation
 * arrays, and sorts nodes topologically (error on a cycle, naming a node
 * on it). Returns CRUCIBLE_OK or a negative status with a message. */
int ir_validate(cr_graph *g, char *err, size_t errlen);

/* ---- text form (docs/ir.md) ---- */
/* Appends the canonical text of g to out. */
void ir_print(const cr_graph *g, jbuf *out);
/* As ir_print; max_inline > 0 prints constants and quantisation lists
 * longer than that as `elided(N)` (not parseable back). */
void ir_print_ex(const cr_graph *g, jbuf *out, uint64_t max_inline);
/* Parses the text form; NULL with "file:line: message" in err. */
cr_graph *ir_parse(const char *text, size_t len, const char *filename,
                   char *err, size_t errlen);

/* ---- SDK views ---- */
typedef struct ir_view ir_view; /* owns the view structs */
/* Views of the whole graph (node_mask NULL) or of the nodes whose mask
 * entry is non-zero: the subgraph's inputs are the tensors it reads that
 * are neither constant nor produced inside it, its outputs the tensors it
 * produces that are graph outputs or read outside it. Tensor indices in a
 * subgraph view are renumbered densely. */
ir_view *ir_view_build(const cr_graph *g, const uint8_t *node_mask);
const crucible_graph_view *ir_view_graph(const ir_view *v);
/* Host tensor index of view tensor i (subgraph views renumber). */
int32_t ir_view_host_tensor(const ir_view *v, uint32_t i);
void ir_view_free(ir_view *v);

/* The crucible_ir_builder whose ctx is a cr_graph (used by frontends).
 * err receives the first error message. */
typedef struct ir_builder_ctx {
    cr_graph *g;
    char err[512];
} ir_builder_ctx;
void ir_builder_init(crucible_ir_builder *b, ir_builder_ctx *ctx);

#endif
