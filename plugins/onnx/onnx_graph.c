/*
 * onnx_graph.c - the arena, name maps, the pending IR (values and nodes)
 * and its emission through the host's crucible_ir_builder.
 */
#include "onnx_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- arena ----------------------------------------------------------------*/
#define OX_BLOCK_MIN ((size_t)1 << 20)

void ox_arena_init(ox_arena *a, const crucible_host *h, size_t limit)
{
    memset(a, 0, sizeof *a);
    a->host = h;
    a->limit = limit;
}

void ox_arena_free(ox_arena *a)
{
    ox_block *b = a->head;
    while (b) {
        ox_block *next = b->next;
        a->host->realloc(a->host, b, b->alloc, 0);
        b = next;
    }
    a->head = NULL;
    a->total = 0;
}

static void *arena_alloc(ox_arena *a, size_t n)
{
    const size_t align = sizeof(max_align_t);
    if (n > SIZE_MAX / 2) {
        a->exhausted = 1;
        return NULL;
    }
    n = (n + align - 1) / align * align;
    if (!n) n = align;
    ox_block *b = a->head;
    if (!b || b->size - b->used < n) {
        size_t size = n > OX_BLOCK_MIN ? n : OX_BLOCK_MIN;
        size_t alloc = sizeof(ox_block) + size;
        if (a->total + alloc > a->limit || a->total + alloc < a->total) {
            a->exhausted = 1;
            return NULL;
        }
        b = a->host->realloc(a->host, NULL, 0, alloc);
        if (!b) {
            a->exhausted = 1;
            return NULL;
        }
        b->size = size;
        b->used = 0;
        b->alloc = alloc;
        a->total += alloc;
        /* keep the fuller block behind a big one-off block */
        if (a->head && n > OX_BLOCK_MIN) {
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

void *ox_alloc(ox_ctx *c, size_t n) { return arena_alloc(&c->arena, n); }

char *ox_strdup(ox_ctx *c, const char *s)
{
    size_t n = strlen(s);
    char *d = ox_alloc(c, n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

char *ox_printf(ox_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *s = ox_alloc(c, (size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

int ox_grow(ox_ctx *c, void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 16;
    while (nc < need) {
        if (nc > SIZE_MAX / 2) return -1;
        nc *= 2;
    }
    if (nc > SIZE_MAX / elem) return -1;
    void *p = ox_alloc(c, nc * elem);
    if (!p) return -1;
    if (*arr && *cap) memcpy(p, *arr, *cap * elem);
    *arr = p;
    *cap = nc;
    return 0;
}

/* ---- map ------------------------------------------------------------------*/
static const char ox_tomb_[1];
#define OX_TOMB ox_tomb_

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static size_t map_find(const ox_map *m, const char *key, int *found)
{
    size_t mask = m->cap - 1, i = (size_t)hash_str(key) & mask;
    size_t tomb = SIZE_MAX;
    for (;;) {
        const char *k = m->keys[i];
        if (!k) {
            *found = 0;
            return tomb != SIZE_MAX ? tomb : i;
        }
        if (k == OX_TOMB) {
            if (tomb == SIZE_MAX) tomb = i;
        } else if (!strcmp(k, key)) {
            *found = 1;
            return i;
        }
        i = (i + 1) & mask;
    }
}

int ox_map_get(const ox_map *m, const char *key, int32_t *val)
{
    if (!m->cap) return 0;
    int found;
    size_t i = map_find(m, key, &found);
    if (found && val) *val = m->vals[i];
    return found;
}

static int map_rehash(ox_ctx *c, ox_map *m, size_t cap)
{
    const char **keys = ox_alloc(c, cap * sizeof *keys);
    int32_t *vals = ox_alloc(c, cap * sizeof *vals);
    if (!keys || !vals) return -1;
    ox_map nm = {keys, vals, cap, 0, 0};
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i] || m->keys[i] == OX_TOMB) continue;
        int found;
        size_t j = map_find(&nm, m->keys[i], &found);
        nm.keys[j] = m->keys[i];
        nm.vals[j] = m->vals[i];
        nm.used++;
        nm.n++;
    }
    *m = nm;
    return 0;
}

int ox_map_put(ox_ctx *c, ox_map *m, const char *key, int32_t val)
{
    if ((m->used + 1) * 4 >= m->cap * 3) {
        size_t cap = m->cap ? m->cap : 64;
        while ((m->n + 1) * 2 >= cap) cap *= 2;
        if (map_rehash(c, m, cap)) return CRUCIBLE_E_NOMEM;
    }
    int found;
    size_t i = map_find(m, key, &found);
    if (!found) {
        if (!m->keys[i]) m->used++;
        m->keys[i] = key;
        m->n++;
    }
    m->vals[i] = val;
    return CRUCIBLE_OK;
}

void ox_map_del(ox_map *m, const char *key)
{
    if (!m->cap) return;
    int found;
    size_t i = map_find(m, key, &found);
    if (!found) return;
    m->keys[i] = OX_TOMB;
    m->n--;
}

/* ---- values and nodes -----------------------------------------------------*/
static int name_taken(ox_ctx *c, const char *name)
{
    int32_t v;
    if (ox_map_get(&c->ir_names, name, NULL)) return 1;
    /* ONNX names are reserved for the value that ONNX gives them */
    if (ox_map_get(&c->onnx_names, name, &v)) return 1;
    return 0;
}

/* A unique name from base (shortened if needed) within `taken`. */
static const char *unique_name(ox_ctx *c, const char *base, int is_node)
{
    char buf[OX_MAX_NAME + 32];
    size_t bl = strlen(base);
    if (bl > OX_MAX_NAME) bl = OX_MAX_NAME;
    memcpy(buf, base, bl);
    buf[bl] = 0;
    int taken = is_node ? ox_map_get(&c->node_names, buf, NULL)
                        : name_taken(c, buf);
    if (!taken) return ox_strdup(c, buf);
    /* the next suffix to try for this base, so that many equal names stay
     * linear */
    int32_t k0 = 1;
    ox_map *sm = is_node ? &c->node_suffix : &c->val_suffix;
    ox_map_get(sm, buf, &k0);
    const char *key = ox_strdup(c, buf);
    if (!key) return NULL;
    for (int32_t k = k0 > 0 ? k0 : 1; k < INT32_MAX; k++) {
        snprintf(buf + bl, sizeof buf - bl, "_%d", (int)k);
        taken = is_node ? ox_map_get(&c->node_names, buf, NULL)
                        : name_taken(c, buf);
        if (!taken) {
            if (ox_map_put(c, sm, key, k + 1)) return NULL;
            return ox_strdup(c, buf);
        }
    }
    return NULL;
}

int32_t ox_val_new(ox_ctx *c, const char *name, int unique_ok, int32_t dtype,
                   int32_t rank, const int64_t *dims)
{
    const char *nm;
    if (unique_ok) {
        nm = unique_name(c, name, 0);
    } else {
        if (ox_map_get(&c->ir_names, name, NULL)) {
            ox_log(c, CRUCIBLE_E_FORMAT, "tensor name %s is defined twice",
                   name);
            return CRUCIBLE_E_FORMAT;
        }
        nm = strlen(name) > OX_MAX_NAME ? unique_name(c, name, 0)
                                        : ox_strdup(c, name);
    }
    if (!nm) return CRUCIBLE_E_NOMEM;
    if (c->n_vals >= (size_t)INT32_MAX - 1 ||
        ox_grow(c, (void **)&c->vals, &c->cap_vals, c->n_vals + 1,
                sizeof(ox_val)))
        return CRUCIBLE_E_NOMEM;
    int32_t id = (int32_t)c->n_vals;
    ox_val *v = &c->vals[id];
    memset(v, 0, sizeof *v);
    v->name = nm;
    v->dtype = dtype;
    v->rank = rank;
    if (rank > 0 && dims) {
        /* a shape beyond the IR's limits is treated as unknown: the host's
         * shape inference then reports it, and no product of these dims
         * can overflow in the lowering code */
        uint64_t prod = 1;
        int huge = 0;
        for (int32_t i = 0; i < rank; i++) {
            int64_t d = dims[i] < 0 ? 0 : dims[i];
            v->dims[i] = d;
            if (!d) continue;
            if ((uint64_t)d > OX_MAX_ELEMS || prod > OX_MAX_ELEMS / (uint64_t)d)
                huge = 1;
            else
                prod *= (uint64_t)d;
        }
        if (huge) memset(v->dims, 0, sizeof v->dims);
    }
    v->producer = -1;
    v->quant_axis = -1;
    v->ir = -1;
    if (ox_map_put(c, &c->ir_names, nm, id)) return CRUCIBLE_E_NOMEM;
    c->n_vals++;
    return id;
}

int32_t ox_node_new(ox_ctx *c, int32_t op, const char *suffix, uint32_t n_in,
                    const int32_t *in, uint32_t n_out, const int32_t *out)
{
    const char *base = c->cur_name ? c->cur_name : "node";
    const char *full = suffix ? ox_printf(c, "%s/%s", base, suffix) : base;
    if (!full) return CRUCIBLE_E_NOMEM;
    int32_t prev;
    const char *nm;
    if (!suffix && strlen(full) <= OX_MAX_NAME &&
        ox_map_get(&c->node_names, full, &prev) && prev == -1)
        nm = full; /* the ONNX node's own (reserved) name */
    else
        nm = unique_name(c, full, 1);
    if (!nm) return CRUCIBLE_E_NOMEM;
    if (c->n_nodes >= OX_MAX_NODES) {
        ox_log(c, CRUCIBLE_E_LIMIT, "more than %d IR nodes", OX_MAX_NODES);
        return CRUCIBLE_E_LIMIT;
    }
    if (ox_grow(c, (void **)&c->nodes, &c->cap_nodes, c->n_nodes + 1,
                sizeof(ox_node)))
        return CRUCIBLE_E_NOMEM;
    int32_t id = (int32_t)c->n_nodes;
    ox_node *n = &c->nodes[id];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->name = nm;
    n->n_in = n_in;
    n->n_out = n_out;
    n->in = ox_alloc(c, (n_in ? n_in : 1) * sizeof(int32_t));
    n->out = ox_alloc(c, (n_out ? n_out : 1) * sizeof(int32_t));
    if (!n->in || !n->out) return CRUCIBLE_E_NOMEM;
    if (n_in) memcpy(n->in, in, n_in * sizeof(int32_t));
    if (n_out) memcpy(n->out, out, n_out * sizeof(int32_t));
    if (ox_map_put(c, &c->node_names, nm, id)) return CRUCIBLE_E_NOMEM;
    for (uint32_t k = 0; k < n_out; k++)
        if (out[k] >= 0) c->vals[out[k]].producer = id;
    c->n_nodes++;
    return id;
}

static ox_attr *attr_new(ox_ctx *c, int32_t node, const char *name,
                         int32_t type)
{
    if (node < 0 || (size_t)node >= c->n_nodes) return NULL;
    ox_node *n = &c->nodes[node];
    for (uint32_t i = 0; i < n->n_attrs; i++)
        if (!strcmp(n->attrs[i].name, name)) {
            memset(&n->attrs[i], 0, sizeof n->attrs[i]);
            n->attrs[i].name = name;
            n->attrs[i].type = type;
            return &n->attrs[i];
        }
    size_t cap = n->cap_attrs;
    if (ox_grow(c, (void **)&n->attrs, &cap, n->n_attrs + 1, sizeof(ox_attr)))
        return NULL;
    n->cap_attrs = (uint32_t)cap;
    ox_attr *a = &n->attrs[n->n_attrs++];
    memset(a, 0, sizeof *a);
    a->name = name;
    a->type = type;
    return a;
}

int ox_attr_int(ox_ctx *c, int32_t node, const char *name, int64_t v)
{
    ox_attr *a = attr_new(c, node, name, CRUCIBLE_ATTR_INT);
    if (!a) return CRUCIBLE_E_NOMEM;
    a->i = v;
    return CRUCIBLE_OK;
}

int ox_attr_float(ox_ctx *c, int32_t node, const char *name, double v)
{
    ox_attr *a = attr_new(c, node, name, CRUCIBLE_ATTR_FLOAT);
    if (!a) return CRUCIBLE_E_NOMEM;
    a->f = v;
    return CRUCIBLE_OK;
}

int ox_attr_ints(ox_ctx *c, int32_t node, const char *name, uint32_t n,
                 const int64_t *v)
{
    ox_attr *a = attr_new(c, node, name, CRUCIBLE_ATTR_INTS);
    if (!a) return CRUCIBLE_E_NOMEM;
    int64_t *d = ox_alloc(c, (n ? n : 1) * sizeof *d);
    if (!d) return CRUCIBLE_E_NOMEM;
    if (n) memcpy(d, v, n * sizeof *d);
    a->count = n;
    a->ints = d;
    return CRUCIBLE_OK;
}

int ox_attr_floats(ox_ctx *c, int32_t node, const char *name, uint32_t n,
                   const double *v)
{
    ox_attr *a = attr_new(c, node, name, CRUCIBLE_ATTR_FLOATS);
    if (!a) return CRUCIBLE_E_NOMEM;
    double *d = ox_alloc(c, (n ? n : 1) * sizeof *d);
    if (!d) return CRUCIBLE_E_NOMEM;
    if (n) memcpy(d, v, n * sizeof *d);
    a->count = n;
    a->floats = d;
    return CRUCIBLE_OK;
}

int ox_attr_str(ox_ctx *c, int32_t node, const char *name, const char *v)
{
    ox_attr *a = attr_new(c, node, name, CRUCIBLE_ATTR_STRING);
    if (!a) return CRUCIBLE_E_NOMEM;
    a->s = ox_strdup(c, v);
    return a->s ? CRUCIBLE_OK : CRUCIBLE_E_NOMEM;
}

const ox_attr *ox_node_attr(const ox_node *n, const char *name)
{
    for (uint32_t i = 0; i < n->n_attrs; i++)
        if (!strcmp(n->attrs[i].name, name)) return &n->attrs[i];
    return NULL;
}

void ox_rollback(ox_ctx *c, size_t nv, size_t nn)
{
    while (c->n_nodes > nn) {
        c->n_nodes--;
        ox_map_del(&c->node_names, c->nodes[c->n_nodes].name);
    }
    while (c->n_vals > nv) {
        c->n_vals--;
        ox_map_del(&c->ir_names, c->vals[c->n_vals].name);
    }
    /* producers that pointed at dropped nodes */
    for (size_t i = 0; i < c->n_vals; i++)
        if (c->vals[i].producer >= (int32_t)nn) c->vals[i].producer = -1;
}

/* ---- emission ------------------------------------------------------------*/
static int emit_val(ox_ctx *c, const crucible_ir_builder *b, int32_t vi)
{
    ox_val *v = &c->vals[vi];
    if (v->ir >= 0) return CRUCIBLE_OK;
    int32_t rank = v->rank;
    int64_t dims[CRUCIBLE_MAX_RANK] = {0};
    if (rank < 0) {
        rank = 1; /* unknown rank: a placeholder the host will not infer */
        dims[0] = 0;
    } else {
        memcpy(dims, v->dims, (size_t)rank * sizeof *dims);
    }
    int32_t dt = v->dtype ? v->dtype : CRUCIBLE_DT_U8;
    int32_t id = b->add_tensor(b->ctx, v->name, dt, rank, dims);
    if (id < 0) {
        ox_log(c, id, "builder refused tensor %s", v->name);
        return id;
    }
    v->ir = id;
    int rc;
    if (v->is_const && v->dtype &&
        (rc = b->set_data(b->ctx, id, v->data ? v->data : "", v->bytes)) < 0) {
        ox_log(c, rc, "builder refused the data of tensor %s", v->name);
        return rc;
    }
    if (v->quant_count &&
        (rc = b->set_quant(b->ctx, id, v->quant_axis, v->quant_count,
                           v->scales, v->zps)) < 0) {
        ox_log(c, rc, "builder refused the quantisation of tensor %s",
               v->name);
        return rc;
    }
    return CRUCIBLE_OK;
}

/* Can v be an input of an IR node (a constant with data, or a value that
 * something produces or the graph receives)? */
static int val_emittable(const ox_val *v)
{
    if (v->is_const) {
        uint64_t n;
        if (!v->dtype || v->rank < 0 || ox_numel(v->rank, v->dims, &n) || !n)
            return 0;
        return 1;
    }
    return v->producer >= 0 || v->is_input;
}

int ox_emit(ox_ctx *c, const crucible_ir_builder *b)
{
    int rc;
    for (size_t i = 0; i < c->n_nodes; i++) {
        ox_node *n = &c->nodes[i];
        if (n->dead) continue;
        int32_t ins[1024], outs[OX_MAX_OUTPUTS];
        if (n->n_in > 1024 || n->n_out > OX_MAX_OUTPUTS) {
            ox_log(c, CRUCIBLE_E_LIMIT, "node %s has too many inputs",
                   n->name);
            return CRUCIBLE_E_LIMIT;
        }
        for (uint32_t k = 0; k < n->n_in; k++) {
            ins[k] = -1;
            if (n->in[k] < 0) continue;
            if (!val_emittable(&c->vals[n->in[k]])) {
                if (n->op == CRUCIBLE_OP_UNSUPPORTED) continue;
                ox_log(c, CRUCIBLE_E_INVALID,
                       "internal: node %s reads %s, which has no value",
                       n->name, c->vals[n->in[k]].name);
                return CRUCIBLE_E_INVALID;
            }
            if ((rc = emit_val(c, b, n->in[k]))) return rc;
            ins[k] = c->vals[n->in[k]].ir;
        }
        for (uint32_t k = 0; k < n->n_out; k++) {
            if ((rc = emit_val(c, b, n->out[k]))) return rc;
            outs[k] = c->vals[n->out[k]].ir;
        }
        static const char *const op_names[] = {
#define X(e, s) s,
            CRUCIBLE_OP_LIST(X)
#undef X
        };
        int32_t id = b->add_node(b->ctx, op_names[n->op], n->name, n->n_in,
                                 ins, n->n_out, outs);
        if (id < 0) {
            ox_log(c, id, "builder refused node %s", n->name);
            return id;
        }
        for (uint32_t a = 0; a < n->n_attrs; a++) {
            const ox_attr *at = &n->attrs[a];
            switch (at->type) {
            case CRUCIBLE_ATTR_INT: rc = b->attr_int(b->ctx, id, at->name, at->i); break;
            case CRUCIBLE_ATTR_FLOAT: rc = b->attr_float(b->ctx, id, at->name, at->f); break;
            case CRUCIBLE_ATTR_INTS:
                rc = b->attr_ints(b->ctx, id, at->name, at->count, at->ints);
                break;
            case CRUCIBLE_ATTR_FLOATS:
                rc = b->attr_floats(b->ctx, id, at->name, at->count,
                                    at->floats);
                break;
            default: rc = b->attr_string(b->ctx, id, at->name, at->s); break;
            }
            if (rc < 0) {
                ox_log(c, rc, "builder refused attribute %s of node %s",
                       at->name, n->name);
                return rc;
            }
        }
    }
    return CRUCIBLE_OK;
}

int ox_emit_io(ox_ctx *c, const crucible_ir_builder *b, const int32_t *ins,
               size_t n_in, const int32_t *outs, size_t n_out)
{
    int rc;
    for (size_t i = 0; i < n_in; i++) {
        if ((rc = emit_val(c, b, ins[i]))) return rc;
        if ((rc = b->mark_input(b->ctx, c->vals[ins[i]].ir)) < 0) return rc;
    }
    for (size_t i = 0; i < n_out; i++) {
        if (!val_emittable(&c->vals[outs[i]])) {
            ox_log(c, CRUCIBLE_E_UNSUPPORTED,
                   "graph output %s is an empty or untyped constant, which "
                   "the IR cannot represent",
                   c->vals[outs[i]].name);
            return CRUCIBLE_E_UNSUPPORTED;
        }
        if ((rc = emit_val(c, b, outs[i]))) return rc;
        if ((rc = b->mark_output(b->ctx, c->vals[outs[i]].ir)) < 0) return rc;
    }
    return CRUCIBLE_OK;
}
