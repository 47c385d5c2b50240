/* ir_view.c - SDK views of a host graph (whole or a node subset). */
#include "ir.h"

#include <string.h>

struct ir_view {
    crucible_graph_view graph;
    crucible_tensor_view *tensors;
    const crucible_tensor_view **tensor_ptrs;
    crucible_node_view *nodes;
    const crucible_node_view **node_ptrs;
    crucible_attr_view *attrs;
    const crucible_attr_view **attr_ptrs;
    int32_t *idx; /* node input/output index storage */
    int32_t *io;  /* graph inputs then outputs */
    int32_t *host_of; /* view tensor -> host tensor */
    uint32_t n_tensors;
};

void ir_view_free(ir_view *v)
{
    if (!v) return;
    cr_free(v->tensors);
    cr_free(v->tensor_ptrs);
    cr_free(v->nodes);
    cr_free(v->node_ptrs);
    cr_free(v->attrs);
    cr_free(v->attr_ptrs);
    cr_free(v->idx);
    cr_free(v->io);
    cr_free(v->host_of);
    cr_free(v);
}

const crucible_graph_view *ir_view_graph(const ir_view *v)
{
    return &v->graph;
}

int32_t ir_view_host_tensor(const ir_view *v, uint32_t i)
{
    return i < v->n_tensors ? v->host_of[i] : -1;
}

ir_view *ir_view_build(const cr_graph *g, const uint8_t *mask)
{
    ir_view *v = cr_calloc(1, sizeof *v);
    size_t nt = g->n_tensors, nn = g->n_nodes;
    int32_t *map = cr_malloc((nt ? nt : 1) * sizeof(int32_t));
    uint8_t *used = cr_calloc(nt ? nt : 1, 1);       /* 1 read, 2 written */
    uint8_t *read_out = cr_calloc(nt ? nt : 1, 1);   /* read outside mask */
    if (!v || !map || !used || !read_out) goto fail;

    size_t n_sel = 0, n_attr = 0, n_idx = 0;
    for (size_t i = 0; i < nn; i++) {
        const cr_node *n = &g->nodes[i];
        int in = !mask || mask[i];
        for (uint32_t k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0) {
                if (in)
                    used[n->inputs[k]] |= 1;
                else
                    read_out[n->inputs[k]] = 1;
            }
        if (!in) continue;
        for (uint32_t k = 0; k < n->n_outputs; k++) used[n->outputs[k]] |= 2;
        n_sel++;
        n_attr += n->n_attrs;
        n_idx += n->n_inputs + n->n_outputs;
    }
    if (!mask)
        for (size_t i = 0; i < nt; i++) used[i] |= 4; /* keep every tensor */
    uint32_t cnt = 0;
    for (size_t i = 0; i < nt; i++) map[i] = used[i] ? (int32_t)cnt++ : -1;
    v->n_tensors = cnt;

    v->tensors = cr_calloc(cnt ? cnt : 1, sizeof(crucible_tensor_view));
    v->tensor_ptrs = cr_calloc(cnt ? cnt : 1, sizeof(void *));
    v->host_of = cr_calloc(cnt ? cnt : 1, sizeof(int32_t));
    v->nodes = cr_calloc(n_sel ? n_sel : 1, sizeof(crucible_node_view));
    v->node_ptrs = cr_calloc(n_sel ? n_sel : 1, sizeof(void *));
    v->attrs = cr_calloc(n_attr ? n_attr : 1, sizeof(crucible_attr_view));
    v->attr_ptrs = cr_calloc(n_attr ? n_attr : 1, sizeof(void *));
    v->idx = cr_calloc(n_idx ? n_idx : 1, sizeof(int32_t));
    v->io = cr_calloc(2 * (size_t)(cnt ? cnt : 1), sizeof(int32_t));
    if (!v->tensors || !v->tensor_ptrs || !v->host_of || !v->nodes ||
        !v->node_ptrs || !v->attrs || !v->attr_ptrs || !v->idx || !v->io)
        goto fail;

    uint32_t n_in = 0, n_out = 0;
    int32_t *ins = v->io, *outs = v->io + cnt;
    for (size_t i = 0; i < nt; i++) {
        if (map[i] < 0) continue;
        const cr_tensor *t = &g->tensors[i];
        crucible_tensor_view *tv = &v->tensors[map[i]];
        tv->size = sizeof *tv;
        tv->name = t->name;
        tv->dtype = t->dtype;
        tv->rank = t->rank;
        tv->dims = t->dims;
        tv->quant_axis = t->quant_axis;
        tv->quant_count = t->quant_count;
        tv->quant_block = t->quant_block;
        tv->scales = t->scales;
        tv->zero_points = t->zero_points;
        tv->data = t->data;
        tv->data_bytes = t->data_bytes;
        uint32_t f = t->flags & CRUCIBLE_TENSOR_CONST;
        if (!mask) {
            f = t->flags;
        } else if (!(t->flags & CRUCIBLE_TENSOR_CONST)) {
            if ((used[i] & 1) && !(used[i] & 2)) f |= CRUCIBLE_TENSOR_INPUT;
            if ((used[i] & 2) &&
                (read_out[i] || (t->flags & CRUCIBLE_TENSOR_OUTPUT)))
                f |= CRUCIBLE_TENSOR_OUTPUT;
        }
        tv->flags = f;
        v->tensor_ptrs[map[i]] = tv;
        v->host_of[map[i]] = (int32_t)i;
    }
    if (!mask) {
        for (size_t i = 0; i < g->n_inputs; i++) ins[n_in++] = map[g->inputs[i]];
        for (size_t i = 0; i < g->n_outputs; i++)
            outs[n_out++] = map[g->outputs[i]];
    } else {
        /* Subgraph boundary, in the order of first use / production. */
        for (size_t i = 0; i < nn; i++) {
            if (!mask[i]) continue;
            const cr_node *n = &g->nodes[i];
            for (uint32_t k = 0; k < n->n_inputs; k++) {
                int32_t t = n->inputs[k];
                if (t < 0 || !(v->tensors[map[t]].flags & CRUCIBLE_TENSOR_INPUT))
                    continue;
                int dup = 0;
                for (uint32_t j = 0; j < n_in; j++) dup |= ins[j] == map[t];
                if (!dup) ins[n_in++] = map[t];
            }
        }
        for (size_t i = 0; i < g->n_outputs; i++) {
            int32_t t = g->outputs[i];
            if (map[t] >= 0 && (v->tensors[map[t]].flags & CRUCIBLE_TENSOR_OUTPUT))
                outs[n_out++] = map[t];
        }
        for (size_t i = 0; i < nn; i++) {
            if (!mask[i]) continue;
            const cr_node *n = &g->nodes[i];
            for (uint32_t k = 0; k < n->n_outputs; k++) {
                int32_t t = map[n->outputs[k]];
                if (!(v->tensors[t].flags & CRUCIBLE_TENSOR_OUTPUT)) continue;
                int dup = 0;
                for (uint32_t j = 0; j < n_out; j++) dup |= outs[j] == t;
                if (!dup) outs[n_out++] = t;
            }
        }
    }

    size_t ai = 0, ii = 0, ni = 0;
    for (size_t i = 0; i < nn; i++) {
        if (mask && !mask[i]) continue;
        const cr_node *n = &g->nodes[i];
        crucible_node_view *nv = &v->nodes[ni];
        nv->size = sizeof *nv;
        nv->op = n->op;
        nv->op_name = ir_op_name(n->op);
        nv->name = n->name;
        nv->n_inputs = n->n_inputs;
        nv->inputs = v->idx + ii;
        for (uint32_t k = 0; k < n->n_inputs; k++)
            v->idx[ii++] = n->inputs[k] >= 0 ? map[n->inputs[k]] : -1;
        nv->n_outputs = n->n_outputs;
        nv->outputs = v->idx + ii;
        for (uint32_t k = 0; k < n->n_outputs; k++)
            v->idx[ii++] = map[n->outputs[k]];
        nv->n_attrs = n->n_attrs;
        nv->attrs = v->attr_ptrs + ai;
        for (uint32_t k = 0; k < n->n_attrs; k++) {
            const cr_attr *a = &n->attrs[k];
            crucible_attr_view *av = &v->attrs[ai];
            av->size = sizeof *av;
            av->type = a->type;
            av->name = a->name;
            av->i = a->i;
            av->f = a->f;
            av->count = a->count;
            av->ints = a->ints;
            av->floats = a->floats;
            av->s = a->s;
            v->attr_ptrs[ai++] = av;
        }
        v->node_ptrs[ni] = nv;
        ni++;
    }

    v->graph.hdr = (crucible_header)CRUCIBLE_HEADER(crucible_graph_view);
    v->graph.name = g->name ? g->name : "graph";
    v->graph.n_tensors = cnt;
    v->graph.tensors = v->tensor_ptrs;
    v->graph.n_nodes = (uint32_t)n_sel;
    v->graph.nodes = v->node_ptrs;
    v->graph.n_inputs = n_in;
    v->graph.inputs = ins;
    v->graph.n_outputs = n_out;
    v->graph.outputs = outs;
    cr_free(map);
    cr_free(used);
    cr_free(read_out);
    return v;
fail:
    cr_free(map);
    cr_free(used);
    cr_free(read_out);
    ir_view_free(v);
    return NULL;
}
