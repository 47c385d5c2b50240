/*
 * onnx_plugin.c - the "onnx" plugin: entry point, score(), and load():
 * reading and checking the file, unpacking the ModelProto, opset checks,
 * graph inputs / initializers / value_info, node ordering, lowering of each
 * node (onnx_lower*.c) and the final emission through the host's builder.
 */
#define _XOPEN_SOURCE 700
#include "onnx_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#ifndef CRUCIBLE_VERSION
#define CRUCIBLE_VERSION "0.1.0"
#endif

static const crucible_host *g_host;

/* ---- protobuf-c allocator over the arena ---------------------------------*/
static void *pb_alloc(void *data, size_t size)
{
    return ox_alloc((ox_ctx *)data, size);
}
static void pb_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr; /* released with the arena */
}

/* ---- file reading ---------------------------------------------------------*/
static int read_model(ox_ctx *c, uint8_t **buf, size_t *len)
{
    FILE *f = fopen(c->path, "rb");
    if (!f)
        return ox_log(c, CRUCIBLE_E_IO, "cannot open: %s", strerror(errno));
    struct stat st;
    int rc = CRUCIBLE_OK;
    *buf = NULL;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
        rc = ox_log(c, CRUCIBLE_E_IO, "not a regular file");
        goto out;
    }
    if ((uint64_t)st.st_size > OX_MAX_FILE) {
        rc = ox_log(c, CRUCIBLE_E_LIMIT,
                    "file is %lld bytes; the ONNX frontend reads at most 2 GiB "
                    "(larger models keep their weights in external data files)",
                    (long long)st.st_size);
        goto out;
    }
    size_t n = (size_t)st.st_size;
    *buf = g_host->realloc(g_host, NULL, 0, n ? n : 1);
    if (!*buf) {
        rc = ox_log(c, CRUCIBLE_E_NOMEM, "out of memory for %zu bytes", n);
        goto out;
    }
    if (n && fread(*buf, 1, n, f) != n) {
        rc = ox_log(c, CRUCIBLE_E_IO, "read error: %s",
                    ferror(f) ? strerror(errno) : "file shrank while reading");
        g_host->realloc(g_host, *buf, n ? n : 1, 0);
        *buf = NULL;
        goto out;
    }
    *len = n;
out:
    fclose(f);
    return rc;
}

/* ---- value info -------------------------------------------------------------
 * Shapes from graph.input / output / value_info, used as hints. */
static void vi_read(const Onnx__ValueInfoProto *vi, ox_hint *s)
{
    memset(s, 0, sizeof *s);
    s->rank = -1;
    const Onnx__TypeProto *tp = vi ? vi->type : NULL;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
        !tp->tensor_type)
        return;
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    s->onnx_type = tt->has_elem_type ? tt->elem_type : 0;
    s->dtype = ox_dtype_from_onnx(s->onnx_type);
    if (!tt->shape) return;
    if (tt->shape->n_dim > CRUCIBLE_MAX_RANK) {
        s->rank = -2; /* too many */
        return;
    }
    s->rank = (int32_t)tt->shape->n_dim;
    for (int32_t i = 0; i < s->rank; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        if (d && d->value_case ==
                     ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
            d->dim_value != -1) {
            if (d->dim_value < 0) s->negative = 1;
            s->dims[i] = d->dim_value < 0 ? 0 : d->dim_value;
        } else { /* dim_param, no value, or -1 (written by some exporters) */
            s->dims[i] = 0;
            s->dynamic = 1;
        }
    }
}

/* ---- driver state -------------------------------------------------------- */
typedef struct ox_load {
    ox_ctx c;
    int32_t *inputs, *outputs;
    size_t n_inputs, n_outputs;
} ox_load;

void ox_apply_hint(ox_ctx *c, int32_t vi)
{
    int32_t h;
    ox_val *v = &c->vals[vi];
    if (!ox_map_get(&c->vinfo, v->name, &h)) return;
    const ox_hint *s = &c->hints[h];
    uint64_t n;
    if (!v->dtype && s->dtype && !v->is_const) v->dtype = s->dtype;
    if (!v->onnx_type) v->onnx_type = s->onnx_type;
    if (s->rank < 0 || ox_numel(s->rank, s->dims, &n)) return;
    if (v->rank < 0) {
        v->rank = s->rank;
        memcpy(v->dims, s->dims, sizeof v->dims);
        return;
    }
    if (v->rank != s->rank) return;
    for (int32_t i = 0; i < v->rank; i++)
        if (!v->dims[i]) v->dims[i] = s->dims[i];
}

static int add_hint(ox_load *L, const Onnx__ValueInfoProto *vi)
{
    ox_ctx *c = &L->c;
    if (!vi || !vi->name || !*vi->name) return CRUCIBLE_OK;
    if (ox_grow(c, (void **)&c->hints, &c->cap_hints, c->n_hints + 1,
                sizeof(ox_hint)))
        return CRUCIBLE_E_NOMEM;
    vi_read(vi, &c->hints[c->n_hints]);
    if (c->hints[c->n_hints].negative) return CRUCIBLE_OK; /* ignored */
    if (ox_map_put(c, &c->vinfo, vi->name, (int32_t)c->n_hints))
        return CRUCIBLE_E_NOMEM;
    c->n_hints++;
    return CRUCIBLE_OK;
}

/* ---- graph setup ------------------------------------------------------------*/
static int is_default_domain(const char *d)
{
    return !d || !*d || !strcmp(d, "ai.onnx");
}

static int check_opsets(ox_ctx *c)
{
    const Onnx__ModelProto *m = c->model;
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[i];
        if (!is_default_domain(o->domain)) continue;
        int64_t v = o->has_version ? o->version : 0;
        if (v < 1)
            return ox_log(c, CRUCIBLE_E_FORMAT,
                          "opset_import for the default domain has version "
                          "%lld",
                          (long long)v);
        if (v > OX_MAX_OPSET)
            return ox_log(c, CRUCIBLE_E_UNSUPPORTED,
                          "opset %lld is newer than supported (%d)",
                          (long long)v, OX_MAX_OPSET);
        if (v > c->opset) c->opset = v;
    }
    return CRUCIBLE_OK;
}

static int64_t domain_opset(ox_ctx *c, const char *domain)
{
    if (is_default_domain(domain)) return c->opset;
    const Onnx__ModelProto *m = c->model;
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[i];
        if (o->domain && !strcmp(o->domain, domain))
            return o->has_version ? o->version : 0;
    }
    return 0;
}

static int reserve(ox_ctx *c, const char *name)
{
    if (!name || !*name) return CRUCIBLE_OK;
    if (ox_map_get(&c->onnx_names, name, NULL)) return CRUCIBLE_OK;
    return ox_map_put(c, &c->onnx_names, name, -1);
}

/* ONNX-level use counts (a graph output counts as many uses, so that it is
 * never folded away). */
static int count_use(ox_ctx *c, const char *name, int32_t w)
{
    int32_t n = 0;
    if (!name || !*name) return CRUCIBLE_OK;
    ox_map_get(&c->onnx_uses, name, &n);
    return ox_map_put(c, &c->onnx_uses, name, n + w);
}

static int setup_graph(ox_load *L)
{
    ox_ctx *c = &L->c;
    const Onnx__GraphProto *g = c->graph;
    int rc;
    if (g->n_node > OX_MAX_NODES || g->n_initializer > OX_MAX_NODES ||
        g->n_input > OX_MAX_NODES || g->n_output > OX_MAX_NODES ||
        g->n_value_info > OX_MAX_NODES)
        return ox_log(c, CRUCIBLE_E_LIMIT, "graph has more than %d nodes, "
                      "initializers, inputs or outputs", OX_MAX_NODES);
    for (size_t i = 0; i < g->n_initializer; i++)
        if ((rc = reserve(c, g->initializer[i]->name))) return rc;
    for (size_t i = 0; i < g->n_sparse_initializer; i++)
        if (g->sparse_initializer[i]->values &&
            (rc = reserve(c, g->sparse_initializer[i]->values->name)))
            return rc;
    for (size_t i = 0; i < g->n_input; i++)
        if ((rc = reserve(c, g->input[i]->name))) return rc;
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t k = 0; k < g->node[i]->n_output; k++)
            if ((rc = reserve(c, g->node[i]->output[k]))) return rc;
    for (size_t i = 0; i < g->n_node; i++)
        if (g->node[i]->name && *g->node[i]->name &&
            !ox_map_get(&c->node_names, g->node[i]->name, NULL) &&
            (rc = ox_map_put(c, &c->node_names, g->node[i]->name, -1)))
            return rc;
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t k = 0; k < g->node[i]->n_input; k++)
            if ((rc = count_use(c, g->node[i]->input[k], 1))) return rc;
    for (size_t i = 0; i < g->n_output; i++)
        if ((rc = count_use(c, g->output[i]->name, 1000))) return rc;
    for (size_t i = 0; i < g->n_value_info; i++)
        if ((rc = add_hint(L, g->value_info[i]))) return rc;
    for (size_t i = 0; i < g->n_output; i++)
        if ((rc = add_hint(L, g->output[i]))) return rc;

    /* initializers: constants */
    for (size_t i = 0; i < g->n_initializer; i++) {
        const Onnx__TensorProto *t = g->initializer[i];
        if (!t->name || !*t->name)
            return ox_log(c, CRUCIBLE_E_FORMAT, "initializer %zu has no name",
                          i);
        int32_t prev;
        if (ox_map_get(&c->onnx_names, t->name, &prev) && prev >= 0)
            return ox_log(c, CRUCIBLE_E_FORMAT,
                          "initializer %s is defined twice", t->name);
        char *what = ox_printf(c, "initializer %s", t->name);
        if (!what) return CRUCIBLE_E_NOMEM;
        int32_t v = ox_tensor_to_val(c, t, t->name, 0, what);
        if (v < 0) return v;
        if ((rc = ox_map_put(c, &c->onnx_names, t->name, v))) return rc;
    }
    for (size_t i = 0; i < g->n_sparse_initializer; i++) {
        const Onnx__SparseTensorProto *s = g->sparse_initializer[i];
        if (!s->values || !s->values->name || !*s->values->name) continue;
        int32_t v = ox_val_new(c, s->values->name, 0, 0, -1, NULL);
        if (v < 0) return v;
        c->vals[v].is_const = 1; /* no IR dtype: consumers unsupported */
        if ((rc = ox_map_put(c, &c->onnx_names, s->values->name, v)))
            return rc;
    }

    /* graph inputs that are not initializers */
    if (ox_grow(c, (void **)&L->inputs, &(size_t){0}, g->n_input + 1,
                sizeof(int32_t)))
        return CRUCIBLE_E_NOMEM;
    for (size_t i = 0; i < g->n_input; i++) {
        const Onnx__ValueInfoProto *vi = g->input[i];
        if (!vi->name || !*vi->name)
            return ox_log(c, CRUCIBLE_E_FORMAT, "graph input %zu has no name",
                          i);
        int32_t prev;
        if (ox_map_get(&c->onnx_names, vi->name, &prev) && prev >= 0) {
            if (c->vals[prev].is_input)
                return ox_log(c, CRUCIBLE_E_FORMAT,
                              "graph input %s is listed twice", vi->name);
            continue; /* an initializer: a constant, not an input */
        }
        ox_hint s;
        vi_read(vi, &s);
        if (s.negative)
            return ox_log(c, CRUCIBLE_E_FORMAT,
                          "graph input %s has a negative dimension", vi->name);
        if (!s.dtype)
            return ox_log(c, CRUCIBLE_E_UNSUPPORTED,
                          "graph input %s has %s%s, which the IR has no dtype "
                          "for",
                          vi->name, s.onnx_type ? "ONNX type " : "",
                          s.onnx_type ? ox_onnx_type_name(s.onnx_type)
                                      : "no tensor type");
        if (s.rank == -2)
            return ox_log(c, CRUCIBLE_E_UNSUPPORTED,
                          "graph input %s has more than %d dimensions",
                          vi->name, CRUCIBLE_MAX_RANK);
        if (s.rank < 0)
            return ox_log(c, CRUCIBLE_E_UNSUPPORTED,
                          "graph input %s has no shape; the IR needs at least "
                          "its rank",
                          vi->name);
        const Onnx__TensorShapeProto *sh = vi->type->tensor_type->shape;
        for (int32_t d = 0; d < s.rank; d++) {
            const Onnx__TensorShapeProto__Dimension *dm = sh->dim[d];
            int has_value =
                dm && dm->value_case ==
                          ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
                dm->dim_value != -1;
            if (has_value && dm->dim_value == 0)
                return ox_log(c, CRUCIBLE_E_UNSUPPORTED,
                              "graph input %s has an empty dimension (0); the "
                              "IR cannot represent empty tensors",
                              vi->name);
            if (!has_value) {
                s.dims[d] = 0; /* unknown: bound at run time, or by compile --batch */
                const char *p =
                    dm && dm->value_case ==
                              ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
                        ? dm->dim_param
                        : "?";
                size_t k = strlen(c->dyn_note);
                if (c->n_dyn < 8 && k + 64 < sizeof c->dyn_note)
                    snprintf(c->dyn_note + k, sizeof c->dyn_note - k,
                             "%s%.*s[%d]=%.24s", k ? ", " : "", 32, vi->name,
                             (int)d, p && *p ? p : "?");
                c->n_dyn++;
            }
        }
        uint64_t ne;
        if (ox_numel(s.rank, s.dims, &ne))
            return ox_log(c, CRUCIBLE_E_LIMIT,
                          "graph input %s has more than 2^40 elements",
                          vi->name);
        int32_t v = ox_val_new(c, vi->name, 0, s.dtype, s.rank, s.dims);
        if (v < 0) return v;
        c->vals[v].is_input = 1;
        c->vals[v].onnx_type = s.onnx_type;
        if ((rc = ox_map_put(c, &c->onnx_names, vi->name, v))) return rc;
        L->inputs[L->n_inputs++] = v;
    }
    return CRUCIBLE_OK;
}

/* ---- topological order ------------------------------------------------------*/
static void heap_push(size_t *h, size_t *n, size_t v)
{
    size_t i = (*n)++;
    h[i] = v;
    while (i && h[(i - 1) / 2] > h[i]) {
        size_t p = (i - 1) / 2, t = h[p];
        h[p] = h[i];
        h[i] = t;
        i = p;
    }
}

static size_t heap_pop(size_t *h, size_t *n)
{
    size_t top = h[0], i = 0;
    h[0] = h[--(*n)];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < *n && h[l] < h[m]) m = l;
        if (r < *n && h[r] < h[m]) m = r;
        if (m == i) break;
        size_t t = h[m];
        h[m] = h[i];
        h[i] = t;
        i = m;
    }
    return top;
}

/* order[] receives node indices in a topological order that keeps the
 * file's order where it already is one. */
static int sort_nodes(ox_ctx *c, size_t *order)
{
    const Onnx__GraphProto *g = c->graph;
    size_t nn = g->n_node, cap = 0;
    ox_map prod = {0};
    int rc;
    for (size_t i = 0; i < nn; i++) {
        const Onnx__NodeProto *n = g->node[i];
        for (size_t k = 0; k < n->n_output; k++) {
            const char *o = n->output[k];
            if (!o || !*o) continue;
            int32_t pv;
            if (ox_map_get(&prod, o, NULL))
                return ox_log(c, CRUCIBLE_E_FORMAT,
                              "tensor %s is produced by more than one node", o);
            if (ox_map_get(&c->onnx_names, o, &pv) && pv >= 0)
                return ox_log(c, CRUCIBLE_E_FORMAT,
                              "node %zu (%s) writes %s, which is a graph input "
                              "or an initializer",
                              i, n->op_type ? n->op_type : "?", o);
            if ((rc = ox_map_put(c, &prod, o, (int32_t)i))) return rc;
        }
    }
    uint32_t *indeg = NULL;
    size_t *heap = NULL, nh = 0, *succ_start = NULL, *succ = NULL;
    size_t ne = 0;
    if (ox_grow(c, (void **)&indeg, &cap, nn + 1, sizeof *indeg)) return CRUCIBLE_E_NOMEM;
    cap = 0;
    if (ox_grow(c, (void **)&heap, &cap, nn + 1, sizeof *heap)) return CRUCIBLE_E_NOMEM;
    cap = 0;
    if (ox_grow(c, (void **)&succ_start, &cap, nn + 2, sizeof *succ_start))
        return CRUCIBLE_E_NOMEM;
    memset(succ_start, 0, (nn + 2) * sizeof *succ_start);
    memset(indeg, 0, (nn + 1) * sizeof *indeg);
    /* count edges (one per input reference) */
    for (size_t i = 0; i < nn; i++) {
        const Onnx__NodeProto *n = g->node[i];
        for (size_t k = 0; k < n->n_input; k++) {
            const char *in = n->input[k];
            int32_t p;
            if (!in || !*in) continue;
            if (ox_map_get(&prod, in, &p)) {
                succ_start[p + 1]++;
                indeg[i]++;
                ne++;
                continue;
            }
            if (!ox_map_get(&c->onnx_names, in, &p) || p < 0)
                return ox_log(c, CRUCIBLE_E_FORMAT,
                              "node %s (%s) reads %s, which is not a graph "
                              "input, an initializer, or the output of any "
                              "node",
                              n->name && *n->name ? n->name : "?",
                              n->op_type ? n->op_type : "?", in);
        }
    }
    for (size_t i = 0; i < nn; i++) succ_start[i + 1] += succ_start[i];
    cap = 0;
    if (ox_grow(c, (void **)&succ, &cap, ne + 1, sizeof *succ)) return CRUCIBLE_E_NOMEM;
    size_t *fill = NULL;
    cap = 0;
    if (ox_grow(c, (void **)&fill, &cap, nn + 1, sizeof *fill)) return CRUCIBLE_E_NOMEM;
    memcpy(fill, succ_start, nn * sizeof *fill);
    for (size_t i = 0; i < nn; i++) {
        const Onnx__NodeProto *n = g->node[i];
        for (size_t k = 0; k < n->n_input; k++) {
            int32_t p;
            if (n->input[k] && *n->input[k] && ox_map_get(&prod, n->input[k], &p))
                succ[fill[p]++] = i;
        }
    }
    for (size_t i = 0; i < nn; i++)
        if (!indeg[i]) heap_push(heap, &nh, i);
    size_t placed = 0;
    while (nh) {
        size_t i = heap_pop(heap, &nh);
        order[placed++] = i;
        for (size_t e = succ_start[i]; e < succ_start[i + 1]; e++)
            if (--indeg[succ[e]] == 0) heap_push(heap, &nh, succ[e]);
    }
    if (placed != nn) {
        for (size_t i = 0; i < nn; i++)
            if (indeg[i]) {
                const Onnx__NodeProto *n = g->node[i];
                return ox_log(c, CRUCIBLE_E_FORMAT,
                              "the graph has a cycle through node %s (%s)",
                              n->name && *n->name ? n->name : "?",
                              n->op_type ? n->op_type : "?");
            }
    }
    return CRUCIBLE_OK;
}

/* ---- lowering driver ------------------------------------------------------*/
/* Output type of an op that could not be lowered, when ONNX fixes it from
 * the inputs (elementwise ops), so that later nodes can still be lowered
 * and pre-flight names only the node that is really unsupported. */
static int in_list(const char *s, const char *const *l)
{
    for (; *l; l++)
        if (!strcmp(s, *l)) return 1;
    return 0;
}

static void guess_output(ox_ctx *c, int32_t out)
{
    static const char *const unary[] = {
        "Erf", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh",
        "Asinh", "Acosh", "Atanh", "Floor", "Ceil", "Round", "Sign",
        "ThresholdedRelu", "Shrink", "Not", "IsNaN", "IsInf", "Gelu", "Mish",
        "LRN", "Hardmax", "CumSum", "Trilu", "Softplus", "Softsign", "Elu",
        "Selu", "Celu", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid",
        "HardSwish", "Exp", "Log", "Sqrt", "Neg", "Abs", "Reciprocal",
        "Identity", "Dropout", "Clip", "Cast", "CastLike", "BitwiseNot",
        "Softmax", "LogSoftmax", "DequantizeLinear", "QuantizeLinear",
        "DynamicQuantizeLinear", "InstanceNormalization",
        "LayerNormalization", "BatchNormalization",
        "MeanVarianceNormalization", "PRelu", NULL};
    static const char *const bcast[] = {
        "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Equal", "Greater", "Less",
        "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor", "BitShift",
        "Max", "Min", "Sum", "Mean", "Where", "BitwiseAnd", "BitwiseOr",
        "BitwiseXor", NULL};
    static const char *const boolean[] = {
        "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "And",
        "Or", "Xor", "Not", "IsNaN", "IsInf", NULL};
    const Onnx__NodeProto *n = c->cur;
    ox_val *o = &c->vals[out];
    if (!is_default_domain(n->domain) || o->rank >= 0) return;
    int32_t in0 = -1, in1 = -1;
    if (n->n_input > 0 && n->input[0] && *n->input[0])
        ox_map_get(&c->onnx_names, n->input[0], &in0);
    if (n->n_input > 1 && n->input[1] && *n->input[1])
        ox_map_get(&c->onnx_names, n->input[1], &in1);
    if (!strcmp(n->op_type, "GatherElements") && in0 >= 0 && in1 >= 0 &&
        c->vals[in1].rank >= 0) { /* the shape of the indices */
        o->rank = c->vals[in1].rank;
        memcpy(o->dims, c->vals[in1].dims, sizeof o->dims);
        if (!o->dtype) o->dtype = c->vals[in0].dtype;
        return;
    }
    if ((!strcmp(n->op_type, "ArgMax") || !strcmp(n->op_type, "ArgMin")) &&
        in0 >= 0 && c->vals[in0].rank >= 1) {
        const ox_val *x = &c->vals[in0];
        int64_t axis = 0, keep = 1;
        for (size_t i = 0; i < n->n_attribute; i++) {
            const Onnx__AttributeProto *a = n->attribute[i];
            if (a->name && !strcmp(a->name, "axis")) axis = a->i;
            if (a->name && !strcmp(a->name, "keepdims")) keep = a->i;
        }
        if (axis < 0) axis += x->rank;
        if (axis < 0 || axis >= x->rank) return;
        int32_t r = 0;
        for (int32_t i = 0; i < x->rank; i++) {
            if (i != axis) o->dims[r++] = x->dims[i];
            else if (keep) o->dims[r++] = 1;
        }
        o->rank = r;
        if (!o->dtype) o->dtype = CRUCIBLE_DT_I64;
        return;
    }
    int un = in_list(n->op_type, unary), bc = in_list(n->op_type, bcast);
    if (!un && !bc) return;
    int32_t r = -1, dt = 0;
    int64_t d[CRUCIBLE_MAX_RANK] = {0};
    size_t first = !strcmp(n->op_type, "Where") ? 1 : 0;
    for (size_t k = 0; k < n->n_input; k++) {
        int32_t v;
        if (!n->input[k] || !*n->input[k] ||
            !ox_map_get(&c->onnx_names, n->input[k], &v) || v < 0)
            continue;
        const ox_val *x = &c->vals[v];
        if (x->rank < 0) return;
        if (k == first) dt = x->dtype;
        if (r < 0) {
            r = x->rank;
            memcpy(d, x->dims, sizeof d);
        } else if (bc && ox_bcast(r, d, x->rank, x->dims, &r, d)) {
            return;
        }
        if (un) break;
    }
    if (r < 0) return;
    o->rank = r;
    memcpy(o->dims, d, sizeof o->dims);
    if (in_list(n->op_type, boolean)) dt = CRUCIBLE_DT_BOOL;
    if (!strcmp(n->op_type, "DequantizeLinear")) dt = CRUCIBLE_DT_F32;
    if (!strcmp(n->op_type, "Cast")) {
        dt = 0;
        for (size_t i = 0; i < n->n_attribute; i++)
            if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, "to"))
                dt = ox_dtype_from_onnx((int32_t)n->attribute[i]->i);
    }
    if (!o->dtype && dt) o->dtype = dt;
}

static int make_unsupported(ox_ctx *c, const char *reason)
{
    const Onnx__NodeProto *n = c->cur;
    int32_t ins[1024], outs[OX_MAX_OUTPUTS];
    uint32_t ni = 0, no = 0;
    int32_t first_dtype = 0;
    for (size_t k = 0; k < n->n_input && ni < 1024; k++) {
        int32_t v = -1;
        if (n->input[k] && *n->input[k])
            ox_map_get(&c->onnx_names, n->input[k], &v);
        ins[ni++] = v;
        if (v >= 0 && !first_dtype) first_dtype = c->vals[v].dtype;
    }
    for (size_t k = 0; k < n->n_output && no < OX_MAX_OUTPUTS; k++) {
        const char *o = n->output[k];
        if (!o || !*o) continue;
        int32_t v = ox_val_new(c, o, 0, 0, -1, NULL);
        if (v < 0) return v;
        ox_apply_hint(c, v);
        if (no == 0) guess_output(c, v);
        if (!c->vals[v].dtype)
            c->vals[v].dtype = first_dtype ? first_dtype : CRUCIBLE_DT_F32;
        outs[no++] = v;
        int rc = ox_map_put(c, &c->onnx_names, o, v);
        if (rc) return rc;
    }
    if (!no) {
        int32_t v = ox_val_new(c, "unused", 1, CRUCIBLE_DT_F32, -1, NULL);
        if (v < 0) return v;
        outs[no++] = v;
    }
    int32_t id = ox_node_new(c, CRUCIBLE_OP_UNSUPPORTED, NULL, ni, ins, no, outs);
    if (id < 0) return id;
    const char *dom = is_default_domain(n->domain) ? "ai.onnx" : n->domain;
    char *src = ox_printf(c, "onnx:%s", n->op_type ? n->op_type : "?");
    char *why = ox_printf(c, "%s (domain %s, opset %lld)", reason, dom,
                          (long long)c->cur_opset);
    if (!src || !why) return CRUCIBLE_E_NOMEM;
    int rc;
    if ((rc = ox_attr_str(c, id, "source_op", src)) ||
        (rc = ox_attr_str(c, id, "reason", why)) ||
        (rc = ox_attr_str(c, id, "domain", dom)) ||
        (rc = ox_attr_int(c, id, "opset", c->cur_opset)))
        return rc;
    return CRUCIBLE_OK;
}

static int lower_all(ox_load *L)
{
    ox_ctx *c = &L->c;
    const Onnx__GraphProto *g = c->graph;
    size_t nn = g->n_node, cap = 0;
    size_t *order = NULL;
    if (ox_grow(c, (void **)&order, &cap, nn + 1, sizeof *order))
        return CRUCIBLE_E_NOMEM;
    int rc = sort_nodes(c, order);
    if (rc) return rc;
    for (size_t oi = 0; oi < nn; oi++) {
        size_t i = order[oi];
        const Onnx__NodeProto *n = g->node[i];
        if (!n->op_type || !*n->op_type)
            return ox_log(c, CRUCIBLE_E_FORMAT, "node %zu has no op_type", i);
        if (n->n_output > OX_MAX_OUTPUTS || n->n_input > 1024)
            return ox_log(c, CRUCIBLE_E_LIMIT,
                          "node %s (%s) has too many inputs or outputs",
                          n->name ? n->name : "?", n->op_type);
        c->cur = n;
        if (n->name && *n->name) {
            c->cur_name = n->name;
        } else {
            char *b = ox_printf(c, "%s_%zu", n->op_type, i);
            if (!b) return CRUCIBLE_E_NOMEM;
            /* avoid names reserved by other nodes */
            const char *u = b;
            for (unsigned k = 1; ox_map_get(&c->node_names, u, NULL); k++)
                if (!(u = ox_printf(c, "%s_%u", b, k))) return CRUCIBLE_E_NOMEM;
            c->cur_name = u;
        }
        c->cur_opset = domain_opset(c, n->domain);
        for (size_t k = 0; k < OX_MAX_OUTPUTS; k++) c->out_vals[k] = -1;
        c->why[0] = 0;
        size_t nv = c->n_vals, nnodes = c->n_nodes;
        if (!is_default_domain(n->domain)) {
            snprintf(c->why, sizeof c->why, "%s",
                     c->cur_opset ? "operators of this domain are not supported"
                                  : "the model imports no opset for this domain");
            rc = OX_UNSUP;
        } else if (!c->opset) {
            return ox_log(c, CRUCIBLE_E_FORMAT,
                          "node %s (%s) uses the default ONNX domain, but the "
                          "model has no opset_import for it",
                          c->cur_name, n->op_type);
        } else {
            rc = ox_lower_node(c);
        }
        if (rc < 0) {
            if (rc == CRUCIBLE_E_NOMEM && c->arena.exhausted)
                return ox_log(c, CRUCIBLE_E_LIMIT,
                              "out of memory (the plugin's limit is %zu MiB "
                              "for this model)",
                              c->arena.limit >> 20);
            return rc;
        }
        if (rc == OX_OK) {
            for (size_t k = 0; k < n->n_output; k++) {
                const char *o = n->output[k];
                if (!o || !*o) continue;
                if (c->out_vals[k] < 0) {
                    snprintf(c->why, sizeof c->why,
                             "output %zu (%s) is not supported", k, o);
                    rc = OX_UNSUP;
                    break;
                }
            }
        }
        if (rc == OX_OK) {
            for (size_t k = 0; k < n->n_output; k++) {
                const char *o = n->output[k];
                if (!o || !*o) continue;
                if ((rc = ox_map_put(c, &c->onnx_names, o, c->out_vals[k])))
                    return rc;
            }
            continue;
        }
        ox_rollback(c, nv, nnodes);
        if ((rc = make_unsupported(c, c->why[0] ? c->why : "not lowered")))
            return rc;
    }
    c->cur = NULL;
    c->cur_name = "output";
    return CRUCIBLE_OK;
}

/* Graph outputs: a value produced under another name (an alias, e.g. of an
 * Identity) gets a copy under the output's own name. */
static int resolve_outputs(ox_load *L)
{
    ox_ctx *c = &L->c;
    const Onnx__GraphProto *g = c->graph;
    size_t cap = 0;
    if (ox_grow(c, (void **)&L->outputs, &cap, g->n_output + 1,
                sizeof(int32_t)))
        return CRUCIBLE_E_NOMEM;
    if (!g->n_output)
        return ox_log(c, CRUCIBLE_E_FORMAT, "the graph has no outputs");
    for (size_t i = 0; i < g->n_output; i++) {
        const char *name = g->output[i]->name;
        int32_t v;
        if (!name || !*name || !ox_map_get(&c->onnx_names, name, &v) || v < 0)
            return ox_log(c, CRUCIBLE_E_FORMAT,
                          "graph output %s is not produced by any node",
                          name && *name ? name : "(unnamed)");
        int dup = 0;
        for (size_t k = 0; k < L->n_outputs; k++) dup |= L->outputs[k] == v;
        if (strcmp(c->vals[v].name, name) || dup) {
            ox_val *src = &c->vals[v];
            c->cur_name = name;
            int32_t o = ox_val_new(c, name, dup, src->dtype, src->rank,
                                   src->dims);
            if (o < 0) return o;
            if (src->rank < 0) {
                int32_t id = ox_node_new(c, CRUCIBLE_OP_UNSUPPORTED, "copy", 1,
                                         &v, 1, &o);
                if (id < 0) return id;
                int rc;
                if ((rc = ox_attr_str(c, id, "source_op", "onnx:Identity")) ||
                    (rc = ox_attr_str(c, id, "reason",
                                      "copy of a value of unknown rank")))
                    return rc;
            } else {
                int64_t shp[CRUCIBLE_MAX_RANK];
                for (int32_t d = 0; d < src->rank; d++)
                    shp[d] = src->dims[d] ? src->dims[d] : 0;
                int32_t id = ox_node_new(c, CRUCIBLE_OP_RESHAPE, "copy", 1, &v,
                                         1, &o);
                if (id < 0) return id;
                int rc = ox_attr_ints(c, id, "shape", (uint32_t)src->rank, shp);
                if (rc) return rc;
            }
            v = o;
        }
        L->outputs[L->n_outputs++] = v;
    }
    return CRUCIBLE_OK;
}

static void set_meta(ox_ctx *c, const crucible_ir_builder *b)
{
    const Onnx__ModelProto *m = c->model;
    char buf[64];
    b->set_meta(b->ctx, "format", "onnx");
    snprintf(buf, sizeof buf, "%lld", (long long)c->ir_version);
    b->set_meta(b->ctx, "onnx_ir_version", buf);
    snprintf(buf, sizeof buf, "%lld", (long long)c->opset);
    b->set_meta(b->ctx, "onnx_opset", buf);
    if (m->producer_name && *m->producer_name)
        b->set_meta(b->ctx, "producer", m->producer_name);
    if (m->producer_version && *m->producer_version)
        b->set_meta(b->ctx, "producer_version", m->producer_version);
    if (m->domain && *m->domain) b->set_meta(b->ctx, "onnx_domain", m->domain);
    if (c->n_dyn) {
        char note[640];
        snprintf(note, sizeof note, "%zu dynamic input dim%s (unknown until run time; compile binds them with --batch): %s%s",
                 c->n_dyn, c->n_dyn == 1 ? "" : "s", c->dyn_note,
                 c->n_dyn > 8 ? ", ..." : "");
        b->set_meta(b->ctx, "dynamic_dims", note);
    }
}

static int load_model(ox_load *L, const crucible_ir_builder *b)
{
    ox_ctx *c = &L->c;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = read_model(c, &buf, &len);
    if (rc) return rc;
    c->arena.limit = ((size_t)1 << 30) + 6 * len;
    int depth = ox_wire_depth_ok(buf, len);
    if (depth) {
        g_host->realloc(g_host, buf, len ? len : 1, 0);
        if (depth > 0)
            return ox_log(c, CRUCIBLE_E_LIMIT,
                          "messages are nested more than %d deep; refused",
                          OX_MAX_DEPTH);
        return ox_log(c, CRUCIBLE_E_FORMAT,
                      "malformed protobuf: not an ONNX model, or the file is "
                      "truncated or corrupt");
    }
    ProtobufCAllocator alloc = {pb_alloc, pb_free, c};
    c->model = onnx__model_proto__unpack(&alloc, len, buf);
    g_host->realloc(g_host, buf, len ? len : 1, 0);
    if (!c->model) {
        if (c->arena.exhausted)
            return ox_log(c, CRUCIBLE_E_LIMIT,
                          "parsing needs more than %zu MiB; refused",
                          c->arena.limit >> 20);
        return ox_log(c, CRUCIBLE_E_FORMAT,
                      "malformed protobuf: not an ONNX model, or the file is "
                      "truncated or corrupt");
    }
    const Onnx__ModelProto *m = c->model;
    if (!m->has_ir_version || m->ir_version < 1)
        return ox_log(c, CRUCIBLE_E_FORMAT,
                      "no ir_version: not an ONNX model (or a truncated one)");
    c->ir_version = m->ir_version;
    if (m->ir_version > OX_MAX_IR_VERSION)
        g_host->log(g_host, CRUCIBLE_LOG_WARN,
                    "%s: ir_version %lld is newer than this frontend knows "
                    "(%d); reading it anyway",
                    c->path, (long long)m->ir_version, OX_MAX_IR_VERSION);
    if ((rc = check_opsets(c))) return rc;
    if (!m->graph)
        return ox_log(c, CRUCIBLE_E_FORMAT,
                      "the model has no graph (truncated file?)");
    c->graph = m->graph;
    if ((rc = setup_graph(L)) || (rc = lower_all(L)) ||
        (rc = resolve_outputs(L)))
        goto out;
    if ((rc = b->set_name(b->ctx, m->graph->name && *m->graph->name
                                      ? m->graph->name
                                      : "onnx")) < 0)
        goto out;
    set_meta(c, b);
    if ((rc = ox_emit(c, b)) ||
        (rc = ox_emit_io(c, b, L->inputs, L->n_inputs, L->outputs,
                         L->n_outputs)))
        goto out;
out:
    if (rc == CRUCIBLE_E_NOMEM && c->arena.exhausted)
        rc = ox_log(c, CRUCIBLE_E_LIMIT,
                    "out of memory (the plugin's limit is %zu MiB for this "
                    "model)",
                    c->arena.limit >> 20);
    return rc;
}

/* ---- plugin slots ---------------------------------------------------------*/
static int ox_init(const crucible_host *host, void **state)
{
    g_host = host;
    *state = NULL;
    return CRUCIBLE_OK;
}

static int ox_score(void *state, const char *path, const uint8_t *head,
                    size_t n)
{
    (void)state;
    int s = head ? ox_wire_score(head, n) : 0;
    size_t l = path ? strlen(path) : 0;
    if (l > 5 && !strcasecmp(path + l - 5, ".onnx") && s < 60) s = 60;
    return s;
}

static int ox_load_slot(void *state, const char *path,
                        const crucible_ir_builder *b)
{
    (void)state;
    if (!path || !b) return CRUCIBLE_E_INVALID;
    ox_load *L = g_host->realloc(g_host, NULL, 0, sizeof *L);
    if (!L) return CRUCIBLE_E_NOMEM;
    memset(L, 0, sizeof *L);
    ox_ctx *c = &L->c;
    c->host = g_host;
    c->path = path;
    ox_arena_init(&c->arena, g_host, (size_t)1 << 30);
    int rc;
    const char *slash = strrchr(path, '/');
    if (!slash)
        c->dir = ".";
    else if (slash == path)
        c->dir = "/";
    else {
        char *d = ox_alloc(c, (size_t)(slash - path) + 1);
        if (!d) {
            rc = CRUCIBLE_E_NOMEM;
            goto out;
        }
        memcpy(d, path, (size_t)(slash - path));
        c->dir = d;
    }
    rc = load_model(L, b);
out:
    ox_arena_free(&c->arena);
    g_host->realloc(g_host, L, sizeof *L, 0);
    return rc;
}

static const crucible_frontend ox_frontend = {
    CRUCIBLE_HEADER(crucible_frontend), "onnx", ox_score, ox_load_slot};

static const void *ox_get_interface(void *state, const char *id)
{
    (void)state;
    return id && !strcmp(id, CRUCIBLE_IFACE_FRONTEND) ? &ox_frontend : NULL;
}

static const char *const ox_ifaces[] = {CRUCIBLE_IFACE_FRONTEND, NULL};

/* The one exported symbol. C does not allow an object named like its type
 * in one scope, so the object has a local name and an assembler label with
 * the exported name. */
CRUCIBLE_EXPORT const crucible_plugin_entry ox_entry
    __asm__(CRUCIBLE_ENTRY_SYMBOL) = {
    CRUCIBLE_HEADER(crucible_plugin_entry),
    CRUCIBLE_ABI_TAG,
    0,
    "onnx",
    "ONNX frontend",
    CRUCIBLE_VERSION,
    "crucible",
    "reads ONNX models (opsets 1-18) through protobuf-c and lowers them to "
    "the canonical ops",
    ox_ifaces,
    ox_init,
    NULL,
    ox_get_interface};
