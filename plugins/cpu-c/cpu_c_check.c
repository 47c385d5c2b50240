/*
 * cpu_c_check.c - which nodes cpu-c can generate, and the cost model.
 *
 * Everything here is pure and allocation-free: query() calls it from any
 * thread. A refusal names the node's problem in one line.
 */
#include "cpu_c_int.h"

#include <stdio.h>
#include <string.h>

#define ATTR_MAX ((int64_t)INT32_MAX)

uint64_t cpuc_numel(const crucible_tensor_view *t)
{
    return crucible_tensor_numel(t);
}

static int refuse(char *why, size_t n, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static int refuse(char *why, size_t n, int status, const char *fmt, ...)
{
    if (why && n) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, n, fmt, ap);
        va_end(ap);
    }
    return status;
}

#define NO(...) refuse(why, why_len, CRUCIBLE_E_UNSUPPORTED, __VA_ARGS__)

/* Integer list attribute of exactly `count` values in [lo, hi], or dflt. */
static int get_ints(const crucible_node_view *n, const char *name,
                    uint32_t count, int64_t *dst, int64_t lo, int64_t hi,
                    const int64_t *dflt, char *why, size_t why_len)
{
    const crucible_attr_view *a = crucible_node_attr(n, name);
    if (!a) {
        for (uint32_t i = 0; i < count; i++) dst[i] = dflt[i];
        return CRUCIBLE_OK;
    }
    if (a->type != CRUCIBLE_ATTR_INTS || a->count != count)
        return NO("attribute %s must be a list of %u integers", name, count);
    for (uint32_t i = 0; i < count; i++) {
        if (a->ints[i] < lo || a->ints[i] > hi)
            return NO("attribute %s[%u] = %lld is outside %lld..%lld", name, i,
                      (long long)a->ints[i], (long long)lo, (long long)hi);
        dst[i] = a->ints[i];
    }
    return CRUCIBLE_OK;
}

static int get_int(const crucible_node_view *n, const char *name,
                   int64_t dflt, int64_t lo, int64_t hi, int64_t *dst,
                   char *why, size_t why_len)
{
    const crucible_attr_view *a = crucible_node_attr(n, name);
    if (!a) {
        *dst = dflt;
        return CRUCIBLE_OK;
    }
    if (a->type != CRUCIBLE_ATTR_INT)
        return NO("attribute %s must be an integer", name);
    if (a->i < lo || a->i > hi)
        return NO("attribute %s = %lld is outside %lld..%lld", name,
                  (long long)a->i, (long long)lo, (long long)hi);
    *dst = a->i;
    return CRUCIBLE_OK;
}

int cpuc_conv_params(const crucible_node_view *n, cpuc_conv *p, char *why,
                     size_t why_len)
{
    static const int64_t one[2] = {1, 1}, zero[4] = {0, 0, 0, 0};
    int64_t out_pad[2];
    int rc;
    if ((rc = get_ints(n, "strides", 2, p->stride, 1, ATTR_MAX, one, why,
                       why_len)) ||
        (rc = get_ints(n, "pads", 4, p->pad, 0, ATTR_MAX, zero, why,
                       why_len)) ||
        (rc = get_ints(n, "dilations", 2, p->dil, 1, ATTR_MAX, one, why,
                       why_len)) ||
        (rc = get_int(n, "group", 1, 1, ATTR_MAX, &p->group, why, why_len)) ||
        (rc = get_ints(n, "output_padding", 2, out_pad, 0, ATTR_MAX, zero,
                       why, why_len)))
        return rc;
    if (crucible_node_attr(n, "auto_pad") || crucible_node_attr(n, "output_shape"))
        return NO("attributes auto_pad / output_shape are not part of the IR");
    return CRUCIBLE_OK;
}

int cpuc_pool_params(const crucible_node_view *n, cpuc_pool *p, char *why,
                     size_t why_len)
{
    static const int64_t one[2] = {1, 1}, zero[4] = {0, 0, 0, 0};
    int64_t cm, cip;
    int rc;
    if (!crucible_node_attr(n, "kernel"))
        return NO("attribute kernel (2 integers) is required");
    if ((rc = get_ints(n, "kernel", 2, p->kernel, 1, ATTR_MAX, one, why,
                       why_len)) ||
        (rc = get_ints(n, "strides", 2, p->stride, 1, ATTR_MAX, one, why,
                       why_len)) ||
        (rc = get_ints(n, "pads", 4, p->pad, 0, ATTR_MAX, zero, why,
                       why_len)) ||
        (rc = get_ints(n, "dilations", 2, p->dil, 1, ATTR_MAX, one, why,
                       why_len)) ||
        (rc = get_int(n, "ceil_mode", 0, 0, 1, &cm, why, why_len)) ||
        (rc = get_int(n, "count_include_pad", 0, 0, 1, &cip, why, why_len)))
        return rc;
    if (crucible_node_attr(n, "auto_pad"))
        return NO("attribute auto_pad is not part of the IR");
    p->ceil_mode = (int)cm;
    p->count_include_pad = (int)cip;
    return CRUCIBLE_OK;
}

int cpuc_attr_f32(const crucible_node_view *n, const char *name, float dflt,
                  float *v)
{
    const crucible_attr_view *a = crucible_node_attr(n, name);
    if (!a) {
        *v = dflt;
        return 0;
    }
    if (a->type == CRUCIBLE_ATTR_FLOAT)
        *v = (float)a->f;
    else if (a->type == CRUCIBLE_ATTR_INT)
        *v = (float)(double)a->i;
    else
        return -1;
    return 0;
}

static const char *dtype_name(int32_t dt)
{
    switch (dt) {
#define CRUCIBLE_X_(e, s, b)                                                \
    case CRUCIBLE_DT_##e: return s;
        CRUCIBLE_DTYPE_LIST(CRUCIBLE_X_)
#undef CRUCIBLE_X_
    default: return "?";
    }
}

static int same_dims(int32_t ra, const int64_t *da, int32_t rb,
                     const int64_t *db)
{
    if (ra != rb) return 0;
    for (int32_t i = 0; i < ra; i++)
        if (da[i] != db[i]) return 0;
    return 1;
}

/* Does shape (r, d) broadcast to the output shape (ro, dout)? */
static int bcasts_to(int32_t r, const int64_t *d, int32_t ro,
                     const int64_t *dout)
{
    if (r > ro) return 0;
    for (int32_t i = 0; i < r; i++) {
        int64_t x = d[i], y = dout[i + (ro - r)];
        if (x != 1 && x != y) return 0;
    }
    return 1;
}

static int norm_axis(int64_t axis, int32_t rank, int64_t *out)
{
    if (axis < -(int64_t)rank || axis >= (int64_t)rank) return -1;
    *out = axis < 0 ? axis + rank : axis;
    return 0;
}

/* The tensor a node input refers to, or NULL (absent optional input). */
static const crucible_tensor_view *input_t(const crucible_graph_view *g,
                                           const crucible_node_view *n,
                                           uint32_t k)
{
    return k < n->n_inputs ? crucible_graph_tensor(g, n->inputs[k]) : NULL;
}

int cpuc_check_node(const crucible_graph_view *g, uint32_t ni, char *why,
                    size_t why_len)
{
    if (!g || ni >= g->n_nodes) return NO("no such node");
    const crucible_node_view *n = g->nodes[ni];
    if (why && why_len) why[0] = 0;

    /* ops this target generates */
    switch (n->op) {
    case CRUCIBLE_OP_DENSE: case CRUCIBLE_OP_MATMUL: case CRUCIBLE_OP_CONV2D:
    case CRUCIBLE_OP_CONV_TRANSPOSE2D:
    case CRUCIBLE_OP_MAX_POOL2D: case CRUCIBLE_OP_AVG_POOL2D:
    case CRUCIBLE_OP_GLOBAL_AVG_POOL: case CRUCIBLE_OP_GLOBAL_MAX_POOL:
    case CRUCIBLE_OP_ADD: case CRUCIBLE_OP_SUB: case CRUCIBLE_OP_MUL:
    case CRUCIBLE_OP_DIV: case CRUCIBLE_OP_MAX: case CRUCIBLE_OP_MIN:
    case CRUCIBLE_OP_POW: case CRUCIBLE_OP_PRELU:
    case CRUCIBLE_OP_RELU: case CRUCIBLE_OP_LEAKY_RELU: case CRUCIBLE_OP_CLIP:
    case CRUCIBLE_OP_SIGMOID: case CRUCIBLE_OP_TANH: case CRUCIBLE_OP_EXP:
    case CRUCIBLE_OP_LOG: case CRUCIBLE_OP_SQRT: case CRUCIBLE_OP_NEG:
    case CRUCIBLE_OP_ABS: case CRUCIBLE_OP_HARD_SIGMOID:
    case CRUCIBLE_OP_HARD_SWISH:
    case CRUCIBLE_OP_SOFTMAX: case CRUCIBLE_OP_LOG_SOFTMAX:
    case CRUCIBLE_OP_RESHAPE: case CRUCIBLE_OP_TRANSPOSE:
    case CRUCIBLE_OP_CONCAT:
    case CRUCIBLE_OP_REDUCE_SUM: case CRUCIBLE_OP_REDUCE_MEAN:
    case CRUCIBLE_OP_REDUCE_MAX:
        break;
    default:
        return NO("op %s is not supported by cpu-c", n->op_name ? n->op_name : "?");
    }

    /* one f32 output of known shape */
    if (n->n_outputs != 1) return NO("node has %u outputs; cpu-c needs 1", n->n_outputs);
    const crucible_tensor_view *o = crucible_graph_tensor(g, n->outputs[0]);
    if (!o) return NO("output refers to no tensor");
    if (o->dtype != CRUCIBLE_DT_F32)
        return NO("dtype %s not supported by cpu-c (float32 only): output %s",
                  dtype_name(o->dtype), o->name);
    if (o->rank < 0 || o->rank > CRUCIBLE_MAX_RANK)
        return NO("output %s has an unknown rank", o->name);
    uint64_t one = cpuc_numel(o);
    if (!one) return NO("shape of output %s is not fully known", o->name);
    if (one > CPUC_MAX_ELEMS)
        return refuse(why, why_len, CRUCIBLE_E_LIMIT,
                      "output %s has %llu elements; cpu-c is limited to "
                      "2^31-1 per tensor", o->name, (unsigned long long)one);

    /* every present data input: f32, known shape, consistent constant */
    for (uint32_t k = 0; k < n->n_inputs; k++) {
        if (n->inputs[k] == -1) continue;
        const crucible_tensor_view *t = crucible_graph_tensor(g, n->inputs[k]);
        if (!t) return NO("input %u refers to no tensor", k);
        if (n->op == CRUCIBLE_OP_RESHAPE && k == 1) continue; /* shape */
        if (t->dtype != CRUCIBLE_DT_F32)
            return NO("dtype %s not supported by cpu-c (float32 only): "
                      "input %s", dtype_name(t->dtype), t->name);
        if (t->rank < 0 || t->rank > CRUCIBLE_MAX_RANK)
            return NO("input %s has an unknown rank", t->name);
        uint64_t e = cpuc_numel(t);
        if (!e && t->rank) return NO("shape of input %s is not fully known", t->name);
        if (e > CPUC_MAX_ELEMS)
            return refuse(why, why_len, CRUCIBLE_E_LIMIT,
                          "input %s has %llu elements; cpu-c is limited to "
                          "2^31-1 per tensor", t->name, (unsigned long long)e);
        if ((t->flags & CRUCIBLE_TENSOR_CONST) &&
            (!t->data || t->data_bytes != e * 4))
            return NO("constant %s has %zu bytes of data, %llu expected",
                      t->name, t->data_bytes, (unsigned long long)(e * 4));
    }

    const crucible_tensor_view *x = input_t(g, n, 0);
    const crucible_tensor_view *w = input_t(g, n, 1);
    switch (n->op) {
    case CRUCIBLE_OP_DENSE: {
        if (n->n_inputs < 2 || n->n_inputs > 3 || !x || !w)
            return NO("dense needs inputs (x, w[, b])");
        const crucible_tensor_view *b = input_t(g, n, 2);
        if (x->rank < 2 || w->rank != 2 || x->dims[x->rank - 1] != w->dims[1])
            return NO("dense shapes do not match x [.., K], w [M, K]");
        if (b && !((b->rank == 1 && b->dims[0] == w->dims[0]) ||
                   (b->rank == 2 && b->dims[0] == 1 && b->dims[1] == w->dims[0])))
            return NO("dense bias must have shape [%lld]", (long long)w->dims[0]);
        if (o->rank != 2 || o->dims[1] != w->dims[0] ||
            (uint64_t)o->dims[0] * (uint64_t)w->dims[1] != cpuc_numel(x))
            return NO("dense output shape is inconsistent");
        return CRUCIBLE_OK;
    }
    case CRUCIBLE_OP_MATMUL: {
        if (n->n_inputs != 2 || !x || !w) return NO("matmul needs 2 inputs");
        if (x->rank < 1 || w->rank < 1) return NO("matmul operands need rank >= 1");
        int64_t ka = x->dims[x->rank - 1];
        int64_t kb = w->rank == 1 ? w->dims[0] : w->dims[w->rank - 2];
        if (ka != kb) return NO("matmul inner dimensions differ");
        int32_t ba = x->rank > 2 ? x->rank - 2 : 0, bb = w->rank > 2 ? w->rank - 2 : 0;
        int32_t rb = ba > bb ? ba : bb;
        int32_t want = rb + (x->rank >= 2) + (w->rank >= 2);
        if (o->rank != want) return NO("matmul output rank is inconsistent");
        if (!bcasts_to(ba, x->dims, rb, o->dims) || !bcasts_to(bb, w->dims, rb, o->dims))
            return NO("matmul batch dimensions do not broadcast to the output");
        return CRUCIBLE_OK;
    }
    case CRUCIBLE_OP_CONV2D:
    case CRUCIBLE_OP_CONV_TRANSPOSE2D: {
        cpuc_conv p;
        int rc;
        if (n->n_inputs < 2 || n->n_inputs > 3 || !x || !w)
            return NO("%s needs inputs (x, w[, b])", n->op_name);
        if ((rc = cpuc_conv_params(n, &p, why, why_len))) return rc;
        if (x->rank != 4 || w->rank != 4 || o->rank != 4)
            return NO("%s needs NCHW rank-4 tensors", n->op_name);
        const crucible_tensor_view *b = input_t(g, n, 2);
        int64_t C = x->dims[1], O = o->dims[1], G = p.group;
        if (C % G || O % G) return NO("channels are not a multiple of group %lld", (long long)G);
        if (n->op == CRUCIBLE_OP_CONV2D) {
            if (w->dims[0] != O || w->dims[1] != C / G)
                return NO("conv2d weight must be [%lld, %lld, kh, kw]",
                          (long long)O, (long long)(C / G));
        } else if (w->dims[0] != C || w->dims[1] != O / G) {
            return NO("conv_transpose2d weight must be [%lld, %lld, kh, kw]",
                      (long long)C, (long long)(O / G));
        }
        if (b && (b->rank != 1 || b->dims[0] != O))
            return NO("bias must have shape [%lld]", (long long)O);
        if (o->dims[0] != x->dims[0]) return NO("batch sizes differ");
        return CRUCIBLE_OK;
    }
    case CRUCIBLE_OP_MAX_POOL2D:
    case CRUCIBLE_OP_AVG_POOL2D: {
        cpuc_pool p;
        int rc;
        if (n->n_inputs != 1 || !x) return NO("pooling needs one input");
        if ((rc = cpuc_pool_params(n, &p, why, why_len))) return rc;
        if (x->rank != 4 || o->rank != 4 || o->dims[0] != x->dims[0] ||
            o->dims[1] != x->dims[1])
            return NO("pooling needs NCHW rank-4 tensors");
        return CRUCIBLE_OK;
    }
    case CRUCIBLE_OP_GLOBAL_AVG_POOL:
    case CRUCIBLE_OP_GLOBAL_MAX_POOL:
        if (n->n_inputs != 1 || !x) return NO("global pooling needs one input");
        if (x->rank < 3 || o->rank != x->rank || o->dims[0] != x->dims[0] ||
            o->dims[1] != x->dims[1])
            return NO("global pooling needs [N, C, spatial...] input");
        return CRUCIBLE_OK;
    case CRUCIBLE_OP_ADD: case CRUCIBLE_OP_SUB: case CRUCIBLE_OP_MUL:
    case CRUCIBLE_OP_DIV: case CRUCIBLE_OP_POW:
    case CRUCIBLE_OP_MAX: case CRUCIBLE_OP_MIN: {
        int many = n->op == CRUCIBLE_OP_MAX || n->op == CRUCIBLE_OP_MIN;
        if (n->n_inputs < (many ? 1u : 2u) || (!many && n->n_inputs != 2))
            return NO("%s has %u inputs", n->op_name, n->n_inputs);
        for (uint32_t k = 0; k < n->n_inputs; k++) {
            const crucible_tensor_view *t = input_t(g, n, k);
            if (!t) return NO("input %u is required", k);
            if (!bcasts_to(t->rank, t->dims, o->rank, o->dims))
                return NO("input %s does not broadcast to the output", t->name);
        }
        if (n->n_inputs == 1 && !same_dims(x->rank, x->dims, o->rank, o->dims))
            return NO("a one-input %s must keep the shape", n->op_name);
        return CRUCIBLE_OK;
    }
    case CRUCIBLE_OP_PRELU:
        if (n->n_inputs != 2 || !x || !w) return NO("prelu needs (x, slope)");
        if (!same_dims(x->rank, x->dims, o->rank, o->dims) ||
            !bcasts_to(w->rank, w->dims, o->rank, o->dims))
            return NO("prelu slope does not broadcast to the input");
        return CRUCIBLE_OK;
    case CRUCIBLE_OP_CLIP:
        if (n->n_inputs < 1 || n->n_inputs > 3 || !x) return NO("clip needs 1 to 3 inputs");
        for (uint32_t k = 1; k < n->n_inputs; k++) {
            const crucible_tensor_view *t = input_t(g, n, k);
            if (t && cpuc_numel(t) != 1) return NO("clip bound %s must be a scalar", t->name);
        }
        /* fall through */
    case CRUCIBLE_OP_RELU: case CRUCIBLE_OP_LEAKY_RELU:
    case CRUCIBLE_OP_SIGMOID: case CRUCIBLE_OP_TANH: case CRUCIBLE_OP_EXP:
    case CRUCIBLE_OP_LOG: case CRUCIBLE_OP_SQRT: case CRUCIBLE_OP_NEG:
    case CRUCIBLE_OP_ABS: case CRUCIBLE_OP_HARD_SIGMOID:
    case CRUCIBLE_OP_HARD_SWISH: {
        float f;
        if (!x || (n->op != CRUCIBLE_OP_CLIP && n->n_inputs != 1))
            return NO("%s needs one input", n->op_name);
        if (cpuc_numel(x) != one) return NO("input and output sizes differ");
        const char *fa[2] = {NULL, NULL};
        if (n->op == CRUCIBLE_OP_LEAKY_RELU) fa[0] = "alpha";
        if (n->op == CRUCIBLE_OP_HARD_SIGMOID) fa[0] = "alpha", fa[1] = "beta";
        if (n->op == CRUCIBLE_OP_CLIP) fa[0] = "min", fa[1] = "max";
        for (int i = 0; i < 2; i++)
            if (fa[i] && cpuc_attr_f32(n, fa[i], 0.0f, &f))
                return NO("attribute %s must be a number", fa[i]);
        return CRUCIBLE_OK;
    }
    case CRUCIBLE_OP_SOFTMAX:
    case CRUCIBLE_OP_LOG_SOFTMAX: {
        int64_t ax;
        if (n->n_inputs != 1 || !x || x->rank < 1) return NO("softmax needs one input of rank >= 1");
        if (norm_axis(crucible_node_attr_int(n, "axis", -1), x->rank, &ax))
            return NO("axis %lld is out of range", (long long)crucible_node_attr_int(n, "axis", -1));
        if (!same_dims(x->rank, x->dims, o->rank, o->dims)) return NO("softmax changes the shape");
        return CRUCIBLE_OK;
    }
    case CRUCIBLE_OP_RESHAPE:
        if (n->n_inputs < 1 || n->n_inputs > 2 || !x) return NO("reshape needs its data input");
        if (cpuc_numel(x) != one) return NO("reshape changes the element count");
        return CRUCIBLE_OK;
    case CRUCIBLE_OP_TRANSPOSE: {
        if (n->n_inputs != 1 || !x || x->rank != o->rank) return NO("transpose needs one input of the output's rank");
        const crucible_attr_view *p = crucible_node_attr(n, "perm");
        int seen[CRUCIBLE_MAX_RANK] = {0};
        if (p && (p->type != CRUCIBLE_ATTR_INTS || p->count != (uint32_t)x->rank))
            return NO("attribute perm must list %d axes", (int)x->rank);
        for (int32_t i = 0; i < x->rank; i++) {
            int64_t a = p ? p->ints[i] : x->rank - 1 - i;
            if (a < 0 || a >= x->rank || seen[a]++) return NO("perm is not a permutation");
            if (o->dims[i] != x->dims[a]) return NO("transpose output shape is inconsistent");
        }
        return CRUCIBLE_OK;
    }
    case CRUCIBLE_OP_CONCAT: {
        int64_t ax, sum = 0;
        if (n->n_inputs < 1 || !x) return NO("concat needs inputs");
        if (norm_axis(crucible_node_attr_int(n, "axis", 0), x->rank, &ax))
            return NO("axis %lld is out of range", (long long)crucible_node_attr_int(n, "axis", 0));
        if (o->rank != x->rank) return NO("concat changes the rank");
        for (uint32_t k = 0; k < n->n_inputs; k++) {
            const crucible_tensor_view *t = input_t(g, n, k);
            if (!t || t->rank != x->rank) return NO("concat input %u has another rank", k);
            for (int32_t d = 0; d < x->rank; d++)
                if (d != ax && t->dims[d] != o->dims[d])
                    return NO("concat input %s does not match outside axis %lld", t->name, (long long)ax);
            sum += t->dims[ax];
        }
        if (sum != o->dims[ax]) return NO("concat output shape is inconsistent");
        return CRUCIBLE_OK;
    }
    case CRUCIBLE_OP_REDUCE_SUM: case CRUCIBLE_OP_REDUCE_MEAN:
    case CRUCIBLE_OP_REDUCE_MAX: {
        int red[CRUCIBLE_MAX_RANK] = {0};
        int64_t keep, ax;
        int rc;
        if (n->n_inputs != 1 || !x) return NO("%s needs one input", n->op_name);
        if ((rc = get_int(n, "keepdims", 1, 0, 1, &keep, why, why_len))) return rc;
        const crucible_attr_view *a = crucible_node_attr(n, "axes");
        if (a && a->type != CRUCIBLE_ATTR_INTS) return NO("attribute axes must be a list of integers");
        if (!a || !a->count) {
            for (int32_t i = 0; i < x->rank; i++) red[i] = 1;
        } else {
            for (uint32_t i = 0; i < a->count; i++) {
                if (norm_axis(a->ints[i], x->rank, &ax) || red[ax]++)
                    return NO("axes[%u] is out of range or repeated", i);
            }
        }
        uint64_t kept = 1;
        for (int32_t i = 0; i < x->rank; i++)
            if (!red[i]) kept *= (uint64_t)x->dims[i];
        if (kept != one) return NO("reduction output shape is inconsistent");
        return CRUCIBLE_OK;
    }
    default:
        return NO("op %s is not supported by cpu-c", n->op_name ? n->op_name : "?");
    }
}

/* ---- cost model --------------------------------------------------------
 * One "cycle" per multiply-accumulate (dense, matmul, conv), per window tap
 * (pooling), per element and operand (elementwise, copies); libm calls
 * (exp, log, tanh, sigmoid, pow, softmax) count 20 per element, sqrt 4.
 * A reshape that the generator aliases costs 0. A rough scalar-CPU model:
 * good for comparing layers, not for wall time. */
#define LIBM_COST 20.0

double cpuc_node_cycles(const crucible_graph_view *g, uint32_t ni)
{
    const crucible_node_view *n = g->nodes[ni];
    const crucible_tensor_view *o = crucible_graph_tensor(g, n->outputs[0]);
    const crucible_tensor_view *x = input_t(g, n, 0), *w = input_t(g, n, 1);
    double no = (double)cpuc_numel(o);
    double nx = x ? (double)cpuc_numel(x) : 0.0;
    switch (n->op) {
    case CRUCIBLE_OP_DENSE:
        return no * (double)w->dims[1] + no;
    case CRUCIBLE_OP_MATMUL:
        return no * (double)x->dims[x->rank - 1];
    case CRUCIBLE_OP_CONV2D:
    case CRUCIBLE_OP_CONV_TRANSPOSE2D: {
        int64_t G = crucible_node_attr_int(n, "group", 1);
        double icg = (double)x->dims[1] / (double)(G > 0 ? G : 1);
        return no * icg * (double)w->dims[2] * (double)w->dims[3];
    }
    case CRUCIBLE_OP_MAX_POOL2D:
    case CRUCIBLE_OP_AVG_POOL2D: {
        const crucible_attr_view *k = crucible_node_attr(n, "kernel");
        double taps = (k && k->type == CRUCIBLE_ATTR_INTS && k->count == 2)
                          ? (double)k->ints[0] * (double)k->ints[1] : 1.0;
        return no * taps;
    }
    case CRUCIBLE_OP_GLOBAL_AVG_POOL: case CRUCIBLE_OP_GLOBAL_MAX_POOL:
    case CRUCIBLE_OP_REDUCE_SUM: case CRUCIBLE_OP_REDUCE_MEAN:
    case CRUCIBLE_OP_REDUCE_MAX:
        return nx + no;
    case CRUCIBLE_OP_POW:
        return no * LIBM_COST;
    case CRUCIBLE_OP_ADD: case CRUCIBLE_OP_SUB: case CRUCIBLE_OP_MUL:
    case CRUCIBLE_OP_DIV: case CRUCIBLE_OP_MAX: case CRUCIBLE_OP_MIN:
        return no * (double)(n->n_inputs > 1 ? n->n_inputs - 1 : 1);
    case CRUCIBLE_OP_SIGMOID: case CRUCIBLE_OP_TANH: case CRUCIBLE_OP_EXP:
    case CRUCIBLE_OP_LOG:
        return no * LIBM_COST;
    case CRUCIBLE_OP_SQRT:
        return no * 4.0;
    case CRUCIBLE_OP_SOFTMAX: case CRUCIBLE_OP_LOG_SOFTMAX:
        return no * (LIBM_COST + 3.0);
    case CRUCIBLE_OP_RESHAPE:
        return (o->flags & CRUCIBLE_TENSOR_OUTPUT) ? no : 0.0;
    default:
        return no;
    }
}
