/* ir.c - building, querying and validating the host IR. See ir.h. */
#include "ir.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    int bits;
} g_dtypes[] = {
    {"?", 0},
#define X(e, s, b) {s, b},
    CRUCIBLE_DTYPE_LIST(X)
#undef X
};

static const char *const g_ops[] = {
#define X(e, s) s,
    CRUCIBLE_OP_LIST(X)
#undef X
};

#define ERR(...) (err ? (void)snprintf(err, errlen, __VA_ARGS__) : (void)0)

const char *ir_dtype_name(int32_t dt)
{
    if (dt <= 0 || dt >= CRUCIBLE_DT_COUNT_) return "?";
    return g_dtypes[dt].name;
}
int32_t ir_dtype_from_name(const char *s)
{
    for (int32_t i = 1; i < CRUCIBLE_DT_COUNT_; i++)
        if (!strcmp(g_dtypes[i].name, s)) return i;
    return 0;
}
int ir_dtype_bits(int32_t dt)
{
    if (dt <= 0 || dt >= CRUCIBLE_DT_COUNT_) return 0;
    return g_dtypes[dt].bits;
}
const char *ir_op_name(int32_t op)
{
    if (op < 0 || op >= CRUCIBLE_OP_COUNT_) return NULL;
    return g_ops[op];
}
int32_t ir_op_from_name(const char *s)
{
    for (int32_t i = 0; i < CRUCIBLE_OP_COUNT_; i++)
        if (!strcmp(g_ops[i], s)) return i;
    return -1;
}
size_t ir_dtype_bytes(int32_t dt, uint64_t numel)
{
    int bits = ir_dtype_bits(dt);
    if (!bits) return SIZE_MAX;
    if (numel > (uint64_t)(SIZE_MAX - 7) / (uint64_t)bits) return SIZE_MAX;
    return (size_t)((numel * (uint64_t)bits + 7) / 8);
}

int64_t ir_elem_i64(int32_t dt, const void *data, uint64_t i)
{
    const uint8_t *d = data;
    switch (dt) {
    case CRUCIBLE_DT_I32: {
        int32_t v;
        memcpy(&v, d + 4 * i, 4);
        return v;
    }
    case CRUCIBLE_DT_I64: {
        int64_t v;
        memcpy(&v, d + 8 * i, 8);
        return v;
    }
    case CRUCIBLE_DT_I16: {
        int16_t v;
        memcpy(&v, d + 2 * i, 2);
        return v;
    }
    case CRUCIBLE_DT_F16: {
        uint16_t v;
        memcpy(&v, d + 2 * i, 2);
        return v;
    }
    case CRUCIBLE_DT_I8: return (int8_t)d[i];
    case CRUCIBLE_DT_U8:
    case CRUCIBLE_DT_BOOL: return d[i];
    case CRUCIBLE_DT_I4: {
        int v = (d[i / 2] >> ((i & 1) * 4)) & 15;
        return v >= 8 ? v - 16 : v;
    }
    case CRUCIBLE_DT_TERNARY: {
        int v = (d[i / 4] >> ((i & 3) * 2)) & 3;
        return v == 1 ? 1 : v == 3 ? -1 : 0;
    }
    case CRUCIBLE_DT_BINARY: return ((d[i / 8] >> (i & 7)) & 1) ? 1 : -1;
    default: return 0;
    }
}

cr_graph *ir_new(void) { return cr_calloc(1, sizeof(cr_graph)); }

static void attr_free(cr_attr *a)
{
    cr_free(a->name);
    cr_free(a->ints);
    cr_free(a->floats);
    cr_free(a->s);
}

void ir_free(cr_graph *g)
{
    if (!g) return;
    for (size_t i = 0; i < g->n_tensors; i++) {
        cr_tensor *t = &g->tensors[i];
        cr_free(t->name);
        cr_free(t->scales);
        cr_free(t->zero_points);
        cr_free(t->data);
    }
    for (size_t i = 0; i < g->n_nodes; i++) {
        cr_node *n = &g->nodes[i];
        cr_free(n->name);
        cr_free(n->inputs);
        cr_free(n->outputs);
        for (uint32_t a = 0; a < n->n_attrs; a++) attr_free(&n->attrs[a]);
        cr_free(n->attrs);
    }
    for (size_t i = 0; i < g->n_meta; i++) {
        cr_free(g->meta[i].key);
        cr_free(g->meta[i].value);
    }
    cr_free(g->tensors);
    cr_free(g->nodes);
    cr_free(g->meta);
    cr_free(g->inputs);
    cr_free(g->outputs);
    cr_free(g->name);
    cr_free(g);
}

static int name_ok(const char *s)
{
    return s && *s && strlen(s) <= IR_MAX_NAME;
}

int32_t ir_find_tensor(const cr_graph *g, const char *name)
{
    for (size_t i = 0; i < g->n_tensors; i++)
        if (!strcmp(g->tensors[i].name, name)) return (int32_t)i;
    return -1;
}

int32_t ir_add_tensor(cr_graph *g, const char *name, int32_t dtype,
                      int32_t rank, const int64_t *dims, char *err,
                      size_t errlen)
{
    if (!name_ok(name)) {
        ERR("tensor name is empty or longer than %d bytes", IR_MAX_NAME);
        return CRUCIBLE_E_INVALID;
    }
    if (dtype <= 0 || dtype >= CRUCIBLE_DT_COUNT_) {
        ERR("tensor %s: invalid dtype %d", name, (int)dtype);
        return CRUCIBLE_E_INVALID;
    }
    if (rank < 0 || rank > CRUCIBLE_MAX_RANK) {
        ERR("tensor %s: rank %d outside 0..%d", name, (int)rank,
            CRUCIBLE_MAX_RANK);
        return CRUCIBLE_E_INVALID;
    }
    for (int32_t i = 0; i < rank; i++)
        if (dims[i] < 0) {
            ERR("tensor %s: negative dimension %lld", name,
                (long long)dims[i]);
            return CRUCIBLE_E_INVALID;
        }
    if (g->n_tensors >= IR_MAX_TENSORS) {
        ERR("more than %d tensors", IR_MAX_TENSORS);
        return CRUCIBLE_E_LIMIT;
    }
    if (ir_find_tensor(g, name) >= 0) {
        ERR("duplicate tensor name %s", name);
        return CRUCIBLE_E_INVALID;
    }
    if (cr_grow((void **)&g->tensors, &g->cap_tensors, g->n_tensors + 1,
                sizeof(cr_tensor))) {
        ERR("out of memory");
        return CRUCIBLE_E_NOMEM;
    }
    cr_tensor *t = &g->tensors[g->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = cr_strdup(name);
    if (!t->name) {
        ERR("out of memory");
        return CRUCIBLE_E_NOMEM;
    }
    t->dtype = dtype;
    t->rank = rank;
    for (int32_t i = 0; i < rank; i++) t->dims[i] = dims[i];
    t->quant_axis = -1;
    return (int32_t)g->n_tensors++;
}

uint64_t ir_numel(const cr_tensor *t)
{
    uint64_t n = 1;
    for (int32_t i = 0; i < t->rank; i++) {
        if (t->dims[i] <= 0) return t->dims[i] == 0 ? 0 : 0;
        if (n > IR_MAX_ELEMS / (uint64_t)t->dims[i]) return 0;
        n *= (uint64_t)t->dims[i];
    }
    return n;
}

static int shape_known(const cr_tensor *t)
{
    for (int32_t i = 0; i < t->rank; i++)
        if (t->dims[i] <= 0) return 0;
    return 1;
}

int ir_set_data(cr_graph *g, int32_t ti, const void *data, size_t bytes,
                char *err, size_t errlen)
{
    if (ti < 0 || (size_t)ti >= g->n_tensors) {
        ERR("no tensor %d", (int)ti);
        return CRUCIBLE_E_INVALID;
    }
    cr_tensor *t = &g->tensors[ti];
    if (!shape_known(t)) {
        ERR("tensor %s: constant data needs a known shape", t->name);
        return CRUCIBLE_E_INVALID;
    }
    uint64_t n = ir_numel(t);
    size_t want = ir_dtype_bytes(t->dtype, n);
    if ((n == 0 && t->rank > 0) || want == SIZE_MAX) {
        ERR("tensor %s: shape too large", t->name);
        return CRUCIBLE_E_LIMIT;
    }
    if (bytes != want) {
        ERR("tensor %s: %zu bytes of data for %s%s of %llu elements "
            "(%zu bytes expected)",
            t->name, bytes, "", ir_dtype_name(t->dtype),
            (unsigned long long)n, want);
        return CRUCIBLE_E_INVALID;
    }
    void *d = cr_malloc(bytes);
    if (!d) {
        ERR("out of memory");
        return CRUCIBLE_E_NOMEM;
    }
    if (bytes) memcpy(d, data, bytes);
    cr_free(t->data);
    t->data = d;
    t->data_bytes = bytes;
    t->flags |= CRUCIBLE_TENSOR_CONST;
    return CRUCIBLE_OK;
}

int ir_set_quant(cr_graph *g, int32_t ti, int32_t axis, uint32_t count,
                 const float *scales, const int32_t *zps, char *err,
                 size_t errlen)
{
    if (ti < 0 || (size_t)ti >= g->n_tensors) {
        ERR("no tensor %d", (int)ti);
        return CRUCIBLE_E_INVALID;
    }
    cr_tensor *t = &g->tensors[ti];
    if (count == 0 || count > (1u << 24)) {
        ERR("tensor %s: quantisation count %u invalid", t->name, count);
        return CRUCIBLE_E_INVALID;
    }
    if (axis < -1 || axis >= t->rank || (axis == -1 && count != 1)) {
        ERR("tensor %s: quantisation axis %d invalid for rank %d with %u "
            "scales",
            t->name, (int)axis, (int)t->rank, count);
        return CRUCIBLE_E_INVALID;
    }
    if (axis >= 0 && t->dims[axis] > 0 && (int64_t)count != t->dims[axis]) {
        ERR("tensor %s: %u scales for axis %d of size %lld", t->name, count,
            (int)axis, (long long)t->dims[axis]);
        return CRUCIBLE_E_INVALID;
    }
    for (uint32_t i = 0; i < count; i++)
        if (!(scales[i] > 0.0f) || !isfinite(scales[i])) {
            ERR("tensor %s: scale %u is %g; scales must be positive and "
                "finite",
                t->name, i, (double)scales[i]);
            return CRUCIBLE_E_INVALID;
        }
    float *s = cr_malloc(count * sizeof(float));
    int32_t *z = cr_malloc(count * sizeof(int32_t));
    if (!s || !z) {
        cr_free(s);
        cr_free(z);
        ERR("out of memory");
        return CRUCIBLE_E_NOMEM;
    }
    memcpy(s, scales, count * sizeof(float));
    if (zps)
        memcpy(z, zps, count * sizeof(int32_t));
    else
        memset(z, 0, count * sizeof(int32_t));
    cr_free(t->scales);
    cr_free(t->zero_points);
    t->scales = s;
    t->zero_points = z;
    t->quant_axis = axis;
    t->quant_count = count;
    t->quant_block = 0;
    return CRUCIBLE_OK;
}

uint64_t ir_quant_block_count(const cr_tensor *t, int32_t axis,
                              int32_t block)
{
    if (block <= 0 || axis < 0 || axis >= t->rank) return 0;
    uint64_t n = 1;
    for (int32_t d = 0; d < t->rank; d++) {
        if (t->dims[d] <= 0) return 0;
        uint64_t e = (uint64_t)t->dims[d];
        if (d == axis) e = (e + (uint64_t)block - 1) / (uint64_t)block;
        if (n > UINT64_MAX / e) return 0;
        n *= e;
    }
    return n;
}

uint64_t ir_quant_index(const cr_tensor *t, uint64_t j)
{
    if (t->quant_axis < 0 || t->quant_count <= 1) return 0;
    uint64_t inner = 1;
    for (int32_t d = t->quant_axis + 1; d < t->rank; d++)
        inner *= (uint64_t)t->dims[d];
    const uint64_t a = (uint64_t)t->dims[t->quant_axis];
    if (t->quant_block <= 0) return (j / inner) % a;
    const uint64_t B = (uint64_t)t->quant_block, nb = (a + B - 1) / B;
    const uint64_t in = j % inner, ax = (j / inner) % a, out = j / inner / a;
    return (out * nb + ax / B) * inner + in;
}

int ir_set_quant_block(cr_graph *g, int32_t ti, int32_t axis, int32_t block,
                       uint32_t count, const float *scales,
                       const int32_t *zps, char *err, size_t errlen)
{
    if (ti < 0 || (size_t)ti >= g->n_tensors) {
        ERR("no tensor %d", (int)ti);
        return CRUCIBLE_E_INVALID;
    }
    cr_tensor *t = &g->tensors[ti];
    if (axis < 0 || axis >= t->rank) {
        ERR("tensor %s: block quantisation axis %d invalid for rank %d",
            t->name, (int)axis, (int)t->rank);
        return CRUCIBLE_E_INVALID;
    }
    if (block <= 0 || block > (1 << 20)) {
        ERR("tensor %s: quantisation block size %d invalid", t->name,
            (int)block);
        return CRUCIBLE_E_INVALID;
    }
    uint64_t want = ir_quant_block_count(t, axis, block);
    if (!want) {
        ERR("tensor %s: block quantisation needs known dims", t->name);
        return CRUCIBLE_E_INVALID;
    }
    if (count != want || count > (1u << 28)) {
        ERR("tensor %s: %u block scales; blocks of %d along axis %d of "
            "this shape need %llu",
            t->name, count, (int)block, (int)axis, (unsigned long long)want);
        return CRUCIBLE_E_INVALID;
    }
    for (uint32_t i = 0; i < count; i++)
        if (!isfinite(scales[i])) {
            ERR("tensor %s: block scale %u is %g; scales must be finite",
                t->name, i, (double)scales[i]);
            return CRUCIBLE_E_INVALID;
        }
    float *s = cr_malloc((size_t)count * sizeof(float));
    int32_t *z = cr_malloc((size_t)count * sizeof(int32_t));
    if (!s || !z) {
        cr_free(s);
        cr_free(z);
        ERR("out of memory");
        return CRUCIBLE_E_NOMEM;
    }
    memcpy(s, scales, (size_t)count * sizeof(float));
    if (zps)
        memcpy(z, zps, (size_t)count * sizeof(int32_t));
    else
        memset(z, 0, (size_t)count * sizeof(int32_t));
    cr_free(t->scales);
    cr_free(t->zero_points);
    t->scales = s;
    t->zero_points = z;
    t->quant_axis = axis;
    t->quant_count = count;
    t->quant_block = block;
    return CRUCIBLE_OK;
}

int32_t ir_add_node(cr_graph *g, int32_t op, const char *name,
                    uint32_t n_in, const int32_t *in, uint32_t n_out,
                    const int32_t *out, char *err, size_t errlen)
{
    if (!name_ok(name)) {
        ERR("node name is empty or too long");
        return CRUCIBLE_E_INVALID;
    }
    if (!ir_op_name(op)) {
        ERR("node %s: invalid op %d", name, (int)op);
        return CRUCIBLE_E_INVALID;
    }
    if (g->n_nodes >= IR_MAX_NODES || n_in > 1024 || n_out > 1024) {
        ERR("node %s: too many nodes, inputs or outputs", name);
        return CRUCIBLE_E_LIMIT;
    }
    if (n_out == 0) {
        ERR("node %s: no outputs", name);
        return CRUCIBLE_E_INVALID;
    }
    for (uint32_t i = 0; i < n_in; i++)
        if (in[i] < -1 || in[i] >= (int32_t)g->n_tensors) {
            ERR("node %s: input %u refers to no tensor", name, i);
            return CRUCIBLE_E_INVALID;
        }
    for (uint32_t i = 0; i < n_out; i++)
        if (out[i] < 0 || out[i] >= (int32_t)g->n_tensors) {
            ERR("node %s: output %u refers to no tensor", name, i);
            return CRUCIBLE_E_INVALID;
        }
    for (size_t i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].name, name)) {
            ERR("duplicate node name %s", name);
            return CRUCIBLE_E_INVALID;
        }
    if (cr_grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1,
                sizeof(cr_node))) {
        ERR("out of memory");
        return CRUCIBLE_E_NOMEM;
    }
    cr_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->name = cr_strdup(name);
    n->inputs = cr_malloc((n_in ? n_in : 1) * sizeof(int32_t));
    n->outputs = cr_malloc(n_out * sizeof(int32_t));
    if (!n->name || !n->inputs || !n->outputs) {
        cr_free(n->name);
        cr_free(n->inputs);
        cr_free(n->outputs);
        ERR("out of memory");
        return CRUCIBLE_E_NOMEM;
    }
    if (n_in) memcpy(n->inputs, in, n_in * sizeof(int32_t));
    memcpy(n->outputs, out, n_out * sizeof(int32_t));
    n->op = op;
    n->n_inputs = n_in;
    n->n_outputs = n_out;
    return (int32_t)g->n_nodes++;
}

static cr_attr *attr_slot(cr_graph *g, int32_t node, const char *name)
{
    if (node < 0 || (size_t)node >= g->n_nodes || !name_ok(name)) return NULL;
    cr_node *n = &g->nodes[node];
    for (uint32_t i = 0; i < n->n_attrs; i++)
        if (!strcmp(n->attrs[i].name, name)) {
            char *keep = n->attrs[i].name;
            n->attrs[i].name = NULL;
            attr_free(&n->attrs[i]);
            memset(&n->attrs[i], 0, sizeof(cr_attr));
            n->attrs[i].name = keep;
            return &n->attrs[i];
        }
    if (n->n_attrs >= 4096) return NULL;
    cr_attr *a = cr_realloc(n->attrs, (n->n_attrs + 1) * sizeof(cr_attr));
    if (!a) return NULL;
    n->attrs = a;
    a = &n->attrs[n->n_attrs];
    memset(a, 0, sizeof *a);
    a->name = cr_strdup(name);
    if (!a->name) return NULL;
    n->n_attrs++;
    return a;
}

int ir_attr_int(cr_graph *g, int32_t node, const char *name, int64_t v)
{
    cr_attr *a = attr_slot(g, node, name);
    if (!a) return CRUCIBLE_E_INVALID;
    a->type = CRUCIBLE_ATTR_INT;
    a->i = v;
    return CRUCIBLE_OK;
}
int ir_attr_float(cr_graph *g, int32_t node, const char *name, double v)
{
    cr_attr *a = attr_slot(g, node, name);
    if (!a) return CRUCIBLE_E_INVALID;
    a->type = CRUCIBLE_ATTR_FLOAT;
    a->f = v;
    return CRUCIBLE_OK;
}
int ir_attr_ints(cr_graph *g, int32_t node, const char *name, uint32_t n,
                 const int64_t *v)
{
    if (n > (1u << 20)) return CRUCIBLE_E_LIMIT;
    cr_attr *a = attr_slot(g, node, name);
    if (!a) return CRUCIBLE_E_INVALID;
    a->type = CRUCIBLE_ATTR_INTS;
    a->ints = cr_malloc((n ? n : 1) * sizeof(int64_t));
    if (!a->ints) return CRUCIBLE_E_NOMEM;
    if (n) memcpy(a->ints, v, n * sizeof(int64_t));
    a->count = n;
    return CRUCIBLE_OK;
}
int ir_attr_floats(cr_graph *g, int32_t node, const char *name, uint32_t n,
                   const double *v)
{
    if (n > (1u << 20)) return CRUCIBLE_E_LIMIT;
    cr_attr *a = attr_slot(g, node, name);
    if (!a) return CRUCIBLE_E_INVALID;
    a->type = CRUCIBLE_ATTR_FLOATS;
    a->floats = cr_malloc((n ? n : 1) * sizeof(double));
    if (!a->floats) return CRUCIBLE_E_NOMEM;
    if (n) memcpy(a->floats, v, n * sizeof(double));
    a->count = n;
    return CRUCIBLE_OK;
}
int ir_attr_string(cr_graph *g, int32_t node, const char *name,
                   const char *v)
{
    if (!v) return CRUCIBLE_E_INVALID;
    cr_attr *a = attr_slot(g, node, name);
    if (!a) return CRUCIBLE_E_INVALID;
    a->type = CRUCIBLE_ATTR_STRING;
    a->s = cr_strdup(v);
    return a->s ? CRUCIBLE_OK : CRUCIBLE_E_NOMEM;
}

static int push_idx(int32_t **arr, size_t *n, size_t *cap, int32_t v)
{
    for (size_t i = 0; i < *n; i++)
        if ((*arr)[i] == v) return CRUCIBLE_OK;
    if (cr_grow((void **)arr, cap, *n + 1, sizeof(int32_t)))
        return CRUCIBLE_E_NOMEM;
    (*arr)[(*n)++] = v;
    return CRUCIBLE_OK;
}

int ir_mark_input(cr_graph *g, int32_t t)
{
    if (t < 0 || (size_t)t >= g->n_tensors) return CRUCIBLE_E_INVALID;
    g->tensors[t].flags |= CRUCIBLE_TENSOR_INPUT;
    return push_idx(&g->inputs, &g->n_inputs, &g->cap_inputs, t);
}
int ir_mark_output(cr_graph *g, int32_t t)
{
    if (t < 0 || (size_t)t >= g->n_tensors) return CRUCIBLE_E_INVALID;
    g->tensors[t].flags |= CRUCIBLE_TENSOR_OUTPUT;
    return push_idx(&g->outputs, &g->n_outputs, &g->cap_outputs, t);
}
int ir_set_meta(cr_graph *g, const char *key, const char *value)
{
    if (!name_ok(key) || !value) return CRUCIBLE_E_INVALID;
    for (size_t i = 0; i < g->n_meta; i++)
        if (!strcmp(g->meta[i].key, key)) {
            char *v = cr_strdup(value);
            if (!v) return CRUCIBLE_E_NOMEM;
            cr_free(g->meta[i].value);
            g->meta[i].value = v;
            return CRUCIBLE_OK;
        }
    if (cr_grow((void **)&g->meta, &g->cap_meta, g->n_meta + 1,
                sizeof(cr_meta)))
        return CRUCIBLE_E_NOMEM;
    g->meta[g->n_meta].key = cr_strdup(key);
    g->meta[g->n_meta].value = cr_strdup(value);
    if (!g->meta[g->n_meta].key || !g->meta[g->n_meta].value) {
        cr_free(g->meta[g->n_meta].key);
        cr_free(g->meta[g->n_meta].value);
        return CRUCIBLE_E_NOMEM;
    }
    g->n_meta++;
    return CRUCIBLE_OK;
}

const cr_attr *ir_attr(const cr_node *n, const char *name)
{
    for (uint32_t i = 0; i < n->n_attrs; i++)
        if (!strcmp(n->attrs[i].name, name)) return &n->attrs[i];
    return NULL;
}
int64_t ir_attr_i(const cr_node *n, const char *name, int64_t dflt)
{
    const cr_attr *a = ir_attr(n, name);
    return (a && a->type == CRUCIBLE_ATTR_INT) ? a->i : dflt;
}
double ir_attr_f(const cr_node *n, const char *name, double dflt)
{
    const cr_attr *a = ir_attr(n, name);
    if (a && a->type == CRUCIBLE_ATTR_FLOAT) return a->f;
    if (a && a->type == CRUCIBLE_ATTR_INT) return (double)a->i;
    return dflt;
}
const char *ir_attr_s(const cr_node *n, const char *name, const char *dflt)
{
    const cr_attr *a = ir_attr(n, name);
    return (a && a->type == CRUCIBLE_ATTR_STRING) ? a->s : dflt;
}

int32_t ir_producer(const cr_graph *g, int32_t t)
{
    for (size_t i = 0; i < g->n_nodes; i++)
        for (uint32_t o = 0; o < g->nodes[i].n_outputs; o++)
            if (g->nodes[i].outputs[o] == t) return (int32_t)i;
    return -1;
}

int ir_validate(cr_graph *g, char *err, size_t errlen)
{
    int rc = CRUCIBLE_OK;
    size_t nt = g->n_tensors, nn = g->n_nodes;
    int32_t *producer = cr_malloc((nt ? nt : 1) * sizeof(int32_t));
    uint32_t *indeg = cr_calloc(nn ? nn : 1, sizeof(uint32_t));
    size_t *order = cr_malloc((nn ? nn : 1) * sizeof(size_t));
    uint8_t *done = cr_calloc(nn ? nn : 1, 1);
    if (!producer || !indeg || !order || !done) {
        ERR("out of memory");
        rc = CRUCIBLE_E_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < nt; i++) {
        producer[i] = -1;
        cr_tensor *t = &g->tensors[i];
        if (t->flags & CRUCIBLE_TENSOR_CONST) {
            size_t want = ir_dtype_bytes(t->dtype, ir_numel(t));
            if (!t->data && want) {
                ERR("tensor %s is marked constant but has no data", t->name);
                rc = CRUCIBLE_E_INVALID;
                goto out;
            }
            if (t->data_bytes != want) {
                ERR("tensor %s: %zu data bytes, shape needs %zu", t->name,
                    t->data_bytes, want);
                rc = CRUCIBLE_E_INVALID;
                goto out;
            }
        }
        if ((t->flags & CRUCIBLE_TENSOR_INPUT) &&
            (t->flags & CRUCIBLE_TENSOR_CONST)) {
            ERR("tensor %s is both a graph input and a constant", t->name);
            rc = CRUCIBLE_E_INVALID;
            goto out;
        }
        if (t->quant_count && t->quant_axis >= t->rank) {
            ERR("tensor %s: quantisation axis %d beyond rank %d", t->name,
                (int)t->quant_axis, (int)t->rank);
            rc = CRUCIBLE_E_INVALID;
            goto out;
        }
        if (t->quant_count && t->quant_block > 0 &&
            ir_quant_block_count(t, t->quant_axis, t->quant_block) !=
                t->quant_count) {
            ERR("tensor %s: %u block scales do not match blocks of %d along "
                "axis %d",
                t->name, t->quant_count, (int)t->quant_block,
                (int)t->quant_axis);
            rc = CRUCIBLE_E_INVALID;
            goto out;
        }
    }
    for (size_t i = 0; i < nn; i++) {
        cr_node *n = &g->nodes[i];
        for (uint32_t o = 0; o < n->n_outputs; o++) {
            int32_t t = n->outputs[o];
            if (t < 0 || (size_t)t >= nt) {
                ERR("node %s: output %u refers to no tensor", n->name, o);
                rc = CRUCIBLE_E_INVALID;
                goto out;
            }
            if (producer[t] >= 0) {
                ERR("tensor %s is produced by both node %s and node %s",
                    g->tensors[t].name, g->nodes[producer[t]].name, n->name);
                rc = CRUCIBLE_E_INVALID;
                goto out;
            }
            if (g->tensors[t].flags &
                (CRUCIBLE_TENSOR_CONST | CRUCIBLE_TENSOR_INPUT)) {
                ERR("node %s writes tensor %s, which is a %s", n->name,
                    g->tensors[t].name,
                    (g->tensors[t].flags & CRUCIBLE_TENSOR_CONST)
                        ? "constant"
                        : "graph input");
                rc = CRUCIBLE_E_INVALID;
                goto out;
            }
            producer[t] = (int32_t)i;
        }
    }
    for (size_t i = 0; i < nn; i++) {
        cr_node *n = &g->nodes[i];
        for (uint32_t k = 0; k < n->n_inputs; k++) {
            int32_t t = n->inputs[k];
            if (t == -1) continue;
            if (t < -1 || (size_t)t >= nt) {
                ERR("node %s: input %u refers to no tensor", n->name, k);
                rc = CRUCIBLE_E_INVALID;
                goto out;
            }
            cr_tensor *tt = &g->tensors[t];
            if (producer[t] < 0 &&
                !(tt->flags & (CRUCIBLE_TENSOR_CONST | CRUCIBLE_TENSOR_INPUT))) {
                ERR("node %s reads tensor %s, which is neither a graph input, "
                    "a constant, nor produced by any node",
                    n->name, tt->name);
                rc = CRUCIBLE_E_INVALID;
                goto out;
            }
            if (producer[t] >= 0) indeg[i]++;
        }
    }
    for (size_t i = 0; i < g->n_outputs; i++) {
        int32_t t = g->outputs[i];
        cr_tensor *tt = &g->tensors[t];
        if (producer[t] < 0 &&
            !(tt->flags & (CRUCIBLE_TENSOR_CONST | CRUCIBLE_TENSOR_INPUT))) {
            ERR("graph output %s is not produced by any node", tt->name);
            rc = CRUCIBLE_E_INVALID;
            goto out;
        }
    }
    if (g->n_outputs == 0) {
        ERR("the graph has no outputs");
        rc = CRUCIBLE_E_INVALID;
        goto out;
    }
    /* Kahn's algorithm, stable: always take the lowest-index ready node, so
     * an already sorted graph keeps its order. O(n^2) worst case. */
    size_t placed = 0;
    while (placed < nn) {
        size_t pick = nn;
        for (size_t i = 0; i < nn; i++)
            if (!done[i] && indeg[i] == 0) {
                pick = i;
                break;
            }
        if (pick == nn) {
            for (size_t i = 0; i < nn; i++)
                if (!done[i]) {
                    ERR("the graph has a cycle through node %s",
                        g->nodes[i].name);
                    break;
                }
            rc = CRUCIBLE_E_INVALID;
            goto out;
        }
        done[pick] = 1;
        order[placed++] = pick;
        cr_node *p = &g->nodes[pick];
        for (size_t i = 0; i < nn; i++) {
            if (done[i]) continue;
            cr_node *n = &g->nodes[i];
            for (uint32_t k = 0; k < n->n_inputs; k++) {
                int32_t t = n->inputs[k];
                if (t >= 0 && producer[t] == (int32_t)pick) indeg[i]--;
            }
        }
        (void)p;
    }
    int sorted = 1;
    for (size_t i = 0; i < nn; i++)
        if (order[i] != i) sorted = 0;
    if (!sorted) {
        cr_node *nodes = cr_malloc(nn * sizeof(cr_node));
        if (!nodes) {
            ERR("out of memory");
            rc = CRUCIBLE_E_NOMEM;
            goto out;
        }
        for (size_t i = 0; i < nn; i++) nodes[i] = g->nodes[order[i]];
        memcpy(g->nodes, nodes, nn * sizeof(cr_node));
        cr_free(nodes);
    }
out:
    cr_free(producer);
    cr_free(indeg);
    cr_free(order);
    cr_free(done);
    return rc;
}

/* ---- builder vtable over a cr_graph ---- */
static void bset(ir_builder_ctx *c, const char *msg)
{
    if (!c->err[0]) snprintf(c->err, sizeof c->err, "%s", msg);
}
#define BCTX ir_builder_ctx *c = ctx
#define BERR(rc, m)                                                         \
    do {                                                                    \
        char m_[512];                                                       \
        snprintf(m_, sizeof m_, "%s", m);                                   \
        if ((rc) < 0) bset(c, m_);                                          \
    } while (0)

static int32_t b_add_tensor(void *ctx, const char *name, int32_t dtype,
                            int32_t rank, const int64_t *dims)
{
    BCTX;
    char e[512] = "";
    if (!name) return CRUCIBLE_E_INVALID;
    int32_t r = ir_add_tensor(c->g, name, dtype, rank, dims, e, sizeof e);
    BERR(r, e);
    return r;
}
static int b_set_data(void *ctx, int32_t t, const void *d, size_t n)
{
    BCTX;
    char e[512] = "";
    int r = ir_set_data(c->g, t, d, n, e, sizeof e);
    BERR(r, e);
    return r;
}
static int b_set_quant(void *ctx, int32_t t, int32_t axis, uint32_t count,
                       const float *s, const int32_t *z)
{
    BCTX;
    char e[512] = "";
    if (!s) return CRUCIBLE_E_INVALID;
    int r = ir_set_quant(c->g, t, axis, count, s, z, e, sizeof e);
    BERR(r, e);
    return r;
}
static int b_set_quant_block(void *ctx, int32_t t, int32_t axis,
                             int32_t block, uint32_t count, const float *s,
                             const int32_t *z)
{
    BCTX;
    char e[512] = "";
    if (!s) return CRUCIBLE_E_INVALID;
    int r = ir_set_quant_block(c->g, t, axis, block, count, s, z, e, sizeof e);
    BERR(r, e);
    return r;
}
static int32_t b_add_node(void *ctx, const char *op, const char *name,
                          uint32_t ni, const int32_t *in, uint32_t no,
                          const int32_t *out)
{
    BCTX;
    char e[512] = "";
    int32_t o = op ? ir_op_from_name(op) : -1;
    if (o < 0) {
        snprintf(e, sizeof e, "node %s: unknown canonical op '%s'",
                 name ? name : "?", op ? op : "(null)");
        bset(c, e);
        return CRUCIBLE_E_INVALID;
    }
    if (!name || (ni && !in) || (no && !out)) return CRUCIBLE_E_INVALID;
    int32_t r = ir_add_node(c->g, o, name, ni, in, no, out, e, sizeof e);
    BERR(r, e);
    return r;
}
static int b_attr_int(void *ctx, int32_t n, const char *k, int64_t v)
{
    BCTX;
    return k ? ir_attr_int(c->g, n, k, v) : CRUCIBLE_E_INVALID;
}
static int b_attr_float(void *ctx, int32_t n, const char *k, double v)
{
    BCTX;
    return k ? ir_attr_float(c->g, n, k, v) : CRUCIBLE_E_INVALID;
}
static int b_attr_ints(void *ctx, int32_t n, const char *k, uint32_t cnt,
                       const int64_t *v)
{
    BCTX;
    return (k && (v || !cnt)) ? ir_attr_ints(c->g, n, k, cnt, v)
                              : CRUCIBLE_E_INVALID;
}
static int b_attr_floats(void *ctx, int32_t n, const char *k, uint32_t cnt,
                         const double *v)
{
    BCTX;
    return (k && (v || !cnt)) ? ir_attr_floats(c->g, n, k, cnt, v)
                              : CRUCIBLE_E_INVALID;
}
static int b_attr_string(void *ctx, int32_t n, const char *k, const char *v)
{
    BCTX;
    return k ? ir_attr_string(c->g, n, k, v) : CRUCIBLE_E_INVALID;
}
static int b_mark_input(void *ctx, int32_t t)
{
    BCTX;
    return ir_mark_input(c->g, t);
}
static int b_mark_output(void *ctx, int32_t t)
{
    BCTX;
    return ir_mark_output(c->g, t);
}
static int b_set_name(void *ctx, const char *name)
{
    BCTX;
    if (!name) return CRUCIBLE_E_INVALID;
    char *s = cr_strdup(name);
    if (!s) return CRUCIBLE_E_NOMEM;
    cr_free(c->g->name);
    c->g->name = s;
    return CRUCIBLE_OK;
}
static int b_set_meta(void *ctx, const char *k, const char *v)
{
    BCTX;
    return (k && v) ? ir_set_meta(c->g, k, v) : CRUCIBLE_E_INVALID;
}

void ir_builder_init(crucible_ir_builder *b, ir_builder_ctx *ctx)
{
    memset(b, 0, sizeof *b);
    b->hdr = (crucible_header)CRUCIBLE_HEADER(crucible_ir_builder);
    b->ctx = ctx;
    b->add_tensor = b_add_tensor;
    b->set_data = b_set_data;
    b->set_quant = b_set_quant;
    b->set_quant_block = b_set_quant_block;
    b->add_node = b_add_node;
    b->attr_int = b_attr_int;
    b->attr_float = b_attr_float;
    b->attr_ints = b_attr_ints;
    b->attr_floats = b_attr_floats;
    b->attr_string = b_attr_string;
    b->mark_input = b_mark_input;
    b->mark_output = b_mark_output;
    b->set_name = b_set_name;
    b->set_meta = b_set_meta;
}
