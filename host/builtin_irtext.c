/*
 * builtin_irtext.c - the built-in "irtext" frontend: reads the IR text form
 * (docs/ir.md). It goes through the same entry validation and the same
 * crucible_ir_builder as any external frontend, so hand-written graphs test
 * the whole path before any model-format plugin exists.
 */
#include "ir.h"

#include <string.h>

static const crucible_host *g_host;

static int irt_init(const crucible_host *host, void **state)
{
    g_host = host;
    *state = NULL;
    return CRUCIBLE_OK;
}

static int irt_score(void *state, const char *path, const uint8_t *head,
                     size_t n)
{
    (void)state;
    static const char magic[] = "crucible-ir";
    size_t i = 0;
    for (;;) {
        while (i < n && (head[i] == ' ' || head[i] == '\n' || head[i] == '\r' ||
                         head[i] == '\t'))
            i++;
        if (i < n && head[i] == '#') { /* comment line */
            while (i < n && head[i] != '\n') i++;
            continue;
        }
        break;
    }
    if (n - i >= sizeof magic - 1 && !memcmp(head + i, magic, sizeof magic - 1))
        return 100;
    size_t l = path ? strlen(path) : 0;
    if (l > 5 && !strcmp(path + l - 5, ".crir")) return 30;
    return 0;
}

/* Replays a parsed graph through the SDK builder. */
static int replay(const cr_graph *g, const crucible_ir_builder *b)
{
    void *c = b->ctx;
    int rc;
    if (g->name && (rc = b->set_name(c, g->name)) < 0) return rc;
    for (size_t i = 0; i < g->n_meta; i++)
        if ((rc = b->set_meta(c, g->meta[i].key, g->meta[i].value)) < 0)
            return rc;
    for (size_t i = 0; i < g->n_tensors; i++) {
        const cr_tensor *t = &g->tensors[i];
        int32_t id = b->add_tensor(c, t->name, t->dtype, t->rank, t->dims);
        if (id < 0) return id;
        if (t->quant_count && t->quant_block > 0) {
            if (b->hdr.size < offsetof(crucible_ir_builder, set_quant_block) +
                                  sizeof b->set_quant_block ||
                !b->set_quant_block)
                return CRUCIBLE_E_UNSUPPORTED;
            if ((rc = b->set_quant_block(c, id, t->quant_axis,
                                         t->quant_block, t->quant_count,
                                         t->scales, t->zero_points)) < 0)
                return rc;
        } else if (t->quant_count &&
                   (rc = b->set_quant(c, id, t->quant_axis, t->quant_count,
                                      t->scales, t->zero_points)) < 0)
            return rc;
        if ((t->flags & CRUCIBLE_TENSOR_CONST) &&
            (rc = b->set_data(c, id, t->data, t->data_bytes)) < 0)
            return rc;
    }
    for (size_t i = 0; i < g->n_nodes; i++) {
        const cr_node *n = &g->nodes[i];
        int32_t id = b->add_node(c, ir_op_name(n->op), n->name, n->n_inputs,
                                 n->inputs, n->n_outputs, n->outputs);
        if (id < 0) return id;
        for (uint32_t a = 0; a < n->n_attrs; a++) {
            const cr_attr *at = &n->attrs[a];
            switch (at->type) {
            case CRUCIBLE_ATTR_INT: rc = b->attr_int(c, id, at->name, at->i); break;
            case CRUCIBLE_ATTR_FLOAT: rc = b->attr_float(c, id, at->name, at->f); break;
            case CRUCIBLE_ATTR_INTS:
                rc = b->attr_ints(c, id, at->name, at->count, at->ints);
                break;
            case CRUCIBLE_ATTR_FLOATS:
                rc = b->attr_floats(c, id, at->name, at->count, at->floats);
                break;
            case CRUCIBLE_ATTR_STRING: rc = b->attr_string(c, id, at->name, at->s); break;
            default: rc = CRUCIBLE_E_INVALID;
            }
            if (rc < 0) return rc;
        }
    }
    for (size_t i = 0; i < g->n_inputs; i++)
        if ((rc = b->mark_input(c, g->inputs[i])) < 0) return rc;
    for (size_t i = 0; i < g->n_outputs; i++)
        if ((rc = b->mark_output(c, g->outputs[i])) < 0) return rc;
    return CRUCIBLE_OK;
}

static int irt_load(void *state, const char *path, const crucible_ir_builder *b)
{
    (void)state;
    char err[1024];
    size_t len = 0;
    uint8_t *text = cr_read_file(path, &len, (size_t)1 << 31, err, sizeof err);
    if (!text) {
        g_host->log(g_host, CRUCIBLE_LOG_ERROR, "%s", err);
        return CRUCIBLE_E_IO;
    }
    cr_graph *g = ir_parse((const char *)text, len, path, err, sizeof err);
    cr_free(text);
    if (!g) {
        g_host->log(g_host, CRUCIBLE_LOG_ERROR, "%s", err);
        return CRUCIBLE_E_FORMAT;
    }
    int rc = replay(g, b);
    ir_free(g);
    return rc;
}

static const crucible_frontend irt_frontend = {
    CRUCIBLE_HEADER(crucible_frontend), "crir", irt_score, irt_load};

static const void *irt_get_interface(void *state, const char *id)
{
    (void)state;
    return strcmp(id, CRUCIBLE_IFACE_FRONTEND) == 0 ? &irt_frontend : NULL;
}

static const char *const irt_ifaces[] = {CRUCIBLE_IFACE_FRONTEND, NULL};

const crucible_plugin_entry cr_builtin_irtext_entry = {
    CRUCIBLE_HEADER(crucible_plugin_entry),
    CRUCIBLE_ABI_TAG,
    0,
    "irtext",
    "crucible IR text",
    CRUCIBLE_VERSION,
    "crucible",
    "reads the IR text form (docs/ir.md)",
    irt_ifaces,
    irt_init,
    NULL,
    irt_get_interface};
