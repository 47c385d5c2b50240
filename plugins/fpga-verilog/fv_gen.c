/* fv_gen.c - analysis of an int8 graph into hardware layers, the cost
 * model, and generation of the per-model RTL, memory images, testbench,
 * constraints and scripts. */
#include "fv_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- graph helpers ------------------------------------------------------ */
static int consumers(const crucible_graph_view *g, int32_t t, int32_t *first)
{
    int n = 0;
    *first = -1;
    for (uint32_t i = 0; i < g->n_nodes; i++)
        for (uint32_t k = 0; k < g->nodes[i]->n_inputs; k++)
            if (g->nodes[i]->inputs[k] == t) {
                if (!n) *first = (int32_t)i;
                n++;
            }
    return n;
}

static int is_q31(const crucible_node_view *n)
{
    const crucible_attr_view *a = crucible_node_attr(n, "rounding");
    return a && a->type == CRUCIBLE_ATTR_STRING && a->s && !strcmp(a->s, "fixed_q31");
}

static int per_tensor_i8(const crucible_tensor_view *t)
{
    return t && t->dtype == CRUCIBLE_DT_I8 && t->quant_count == 1;
}

/* TFLite QuantizeMultiplier (same rule as the host's interp_q.c). */
int fv_multiplier(double r, int32_t *mult, int32_t *shift)
{
    *mult = 0;
    *shift = 0;
    if (!(r >= 0.0) || !isfinite(r)) return -1;
    if (r == 0.0) return 0;
    int e = 0;
    double f = frexp(r, &e);
    int64_t q = (int64_t)round(f * 2147483648.0);
    if (q == ((int64_t)1 << 31)) {
        q /= 2;
        e++;
    }
    if (e < -31) return 0;
    if (e > 31) return -1;
    *mult = (int32_t)q;
    *shift = e;
    return 0;
}

/* TFLite quantised activation bound, as the host computes it. */
static int32_t q_bound(float f, float scale, int32_t zp)
{
    float v = roundf(f / scale);
    double d = (double)v + (double)zp;
    if (!(d >= -128.0)) return d != d ? zp : -128;
    if (d > 127.0) return 127;
    return (int32_t)d;
}

static float attr_f(const crucible_node_view *n, const char *name, float dflt)
{
    const crucible_attr_view *a = crucible_node_attr(n, name);
    if (!a) return dflt;
    if (a->type == CRUCIBLE_ATTR_FLOAT) return (float)a->f;
    if (a->type == CRUCIBLE_ATTR_INT) return (float)a->i;
    return dflt;
}

static void act_range(const crucible_graph_view *g, const crucible_node_view *n,
                      float s, int32_t zp, int32_t *lo, int32_t *hi)
{
    float fmin = attr_f(n, "min", n->op == CRUCIBLE_OP_RELU ? 0.0f : -INFINITY);
    float fmax = attr_f(n, "max", INFINITY);
    if (n->op == CRUCIBLE_OP_CLIP)
        for (uint32_t k = 1; k < 3 && k < n->n_inputs; k++) {
            const crucible_tensor_view *t = crucible_graph_tensor(g, n->inputs[k]);
            if (t && t->data && t->dtype == CRUCIBLE_DT_F32 && t->data_bytes == 4) {
                float v;
                memcpy(&v, t->data, 4);
                if (k == 1) fmin = v;
                else fmax = v;
            }
        }
    *lo = fmin == -INFINITY ? -128 : q_bound(fmin, s, zp);
    *hi = fmax == INFINITY ? 127 : q_bound(fmax, s, zp);
}

#define WHY(...) (snprintf(why, why_len, __VA_ARGS__), CRUCIBLE_E_UNSUPPORTED)

/* INTS attribute `name` (count n) into v, or the defaults already there. */
static int attr_ints(const crucible_node_view *n, const char *name, uint32_t cnt,
                     int32_t *v)
{
    const crucible_attr_view *a = crucible_node_attr(n, name);
    if (!a) return 0;
    if (a->type != CRUCIBLE_ATTR_INTS || a->count != cnt) return -1;
    for (uint32_t i = 0; i < cnt; i++) {
        if (a->ints[i] < 0 || a->ints[i] > 4096) return -1;
        v[i] = (int32_t)a->ints[i];
    }
    return 0;
}

/* [1, C, H, W] (or [1, K]) activation tensor as C, H, W. */
static int chw(const crucible_tensor_view *t, int32_t *c, int32_t *h, int32_t *w)
{
    if (t->rank == 4 && t->dims[0] == 1) {
        *c = (int32_t)t->dims[1];
        *h = (int32_t)t->dims[2];
        *w = (int32_t)t->dims[3];
        return 0;
    }
    if (t->rank == 2 && t->dims[0] == 1) {
        *c = (int32_t)t->dims[1];
        *h = *w = 1;
        return 0;
    }
    return -1;
}

/* Geometry limits of one engine (address widths, 16-bit result tags). */
static int geom_ok(const fv_layer *L, char *why, size_t why_len, const char *nm)
{
    int64_t in = (int64_t)L->C * L->H * L->W, out = (int64_t)L->OC * L->OH * L->OW;
    if (in > 65536 || out > 65536 || L->K > 65535 || L->OC > FV_MAX_CH)
        return WHY("%s: %lld inputs, %lld outputs, %d taps, %d channels exceed "
                   "the engine limits (65536 values in / out, 65535 taps, %d "
                   "channels)", nm, (long long)in, (long long)out, L->K, L->OC,
                   FV_MAX_CH);
    return CRUCIBLE_OK;
}

/* Checks the dense / conv2d node di with its requantize and optional fused
 * relu / clip, and fills L (without the parallelism). Allocation-free. */
int fv_chain(const crucible_graph_view *g, uint32_t di, fv_layer *L, char *why,
             size_t why_len)
{
    const crucible_node_view *d = g->nodes[di];
    memset(L, 0, offsetof(fv_layer, mult));
    L->kind = FV_MAC;
    L->node = di;
    L->act = UINT32_MAX;
    L->KH = L->KW = L->SH = L->SW = L->DH = L->DW = L->groups = 1;
    int conv = d->op == CRUCIBLE_OP_CONV2D;
    if (d->op != CRUCIBLE_OP_DENSE && !conv)
        return WHY("op %s: fpga-verilog has engines for integer dense, conv2d "
                   "(incl. depthwise), max/avg_pool2d, relu/clip and reshape only "
                   "(%s is not implemented)", d->op_name, d->op_name);
    if (d->n_inputs < 2 || d->n_outputs != 1)
        return WHY("%s %s needs inputs (x, W[, b])", d->op_name, d->name);
    const crucible_tensor_view *x = crucible_graph_tensor(g, d->inputs[0]);
    const crucible_tensor_view *w = crucible_graph_tensor(g, d->inputs[1]);
    const crucible_tensor_view *b =
        d->n_inputs > 2 ? crucible_graph_tensor(g, d->inputs[2]) : NULL;
    const crucible_tensor_view *acc = crucible_graph_tensor(g, d->outputs[0]);
    if (!x || !w || !acc) return WHY("%s %s: missing tensors", d->op_name, d->name);
    if (!per_tensor_i8(x))
        return WHY("%s %s: input %s must be i8 quantised per tensor (float "
                   "graphs: quantise first, crucible compile --quant int8)",
                   d->op_name, d->name, x->name);
    L->wbits = w->dtype == CRUCIBLE_DT_I8 ? 8 : w->dtype == CRUCIBLE_DT_I4 ? 4
             : w->dtype == CRUCIBLE_DT_TERNARY ? 2 : w->dtype == CRUCIBLE_DT_BINARY ? 1 : 0;
    if (!L->wbits || !w->data || w->rank != (conv ? 4 : 2))
        return WHY("%s %s: weights %s must be a constant i8, i4, ternary or "
                   "binary %s", d->op_name, d->name, w->name,
                   conv ? "[OC, C/group, KH, KW]" : "[M, K]");
    for (uint32_t c = 0; c < w->quant_count; c++)
        if (w->zero_points[c] != 0)
            return WHY("%s %s: weight zero point %d (channel %u) must be 0",
                       d->op_name, d->name, (int)w->zero_points[c], c);
    if (!w->quant_count)
        return WHY("%s %s: weights carry no scales", d->op_name, d->name);
    if (chw(x, &L->C, &L->H, &L->W) || chw(acc, &L->OC, &L->OH, &L->OW))
        return WHY("%s %s: batch 1 tensors [1, C, H, W] or [1, K] only (the RTL "
                   "runs one sample at a time)", d->op_name, d->name);
    if (conv) {
        int32_t st[2] = {1, 1}, pads[4] = {0, 0, 0, 0}, dil[2] = {1, 1}, grp[1] = {1};
        const crucible_attr_view *ga = crucible_node_attr(d, "group");
        if (ga && ga->type == CRUCIBLE_ATTR_INT && ga->i >= 1 && ga->i <= 65536)
            grp[0] = (int32_t)ga->i;
        if (attr_ints(d, "strides", 2, st) || attr_ints(d, "pads", 4, pads) ||
            attr_ints(d, "dilations", 2, dil) || !st[0] || !st[1] || !dil[0] ||
            !dil[1] || crucible_node_attr(d, "auto_pad"))
            return WHY("conv2d %s: strides / pads / dilations out of range",
                       d->name);
        if (x->rank != 4 || acc->rank != 4)
            return WHY("conv2d %s: NCHW tensors of rank 4 expected", d->name);
        L->groups = grp[0];
        L->KH = (int32_t)w->dims[2];
        L->KW = (int32_t)w->dims[3];
        L->SH = st[0]; L->SW = st[1]; L->DH = dil[0]; L->DW = dil[1];
        L->PT = pads[0]; L->PL = pads[1];
        if (L->C % L->groups || L->OC % L->groups || w->dims[0] != L->OC ||
            w->dims[1] != L->C / L->groups)
            return WHY("conv2d %s: weights [%lld, %lld, ...] do not match %d "
                       "input / %d output channels in %d group(s)", d->name,
                       (long long)w->dims[0], (long long)w->dims[1], L->C, L->OC,
                       L->groups);
        int64_t eh = (int64_t)L->H + pads[0] + pads[2] - (int64_t)L->DH * (L->KH - 1) - 1;
        int64_t ew = (int64_t)L->W + pads[1] + pads[3] - (int64_t)L->DW * (L->KW - 1) - 1;
        if (eh < 0 || ew < 0 || eh / L->SH + 1 != L->OH || ew / L->SW + 1 != L->OW)
            return WHY("conv2d %s: output %dx%d does not follow from the input "
                       "%dx%d and the attributes", d->name, L->OH, L->OW, L->H,
                       L->W);
        L->K = L->C / L->groups * L->KH * L->KW;
    } else {
        if (L->H != 1 || L->W != 1 || x->rank != 2 || w->dims[1] != L->C ||
            w->dims[0] != L->OC)
            return WHY("dense %s: x [1, K] and W [M, K] expected", d->name);
        L->K = L->C;
    }
    int rc = geom_ok(L, why, why_len, d->name);
    if (rc) return rc;
    if (b && (b->dtype != CRUCIBLE_DT_I32 || !b->data ||
              crucible_tensor_numel(b) != (uint64_t)L->OC))
        return WHY("%s %s: bias %s must be a constant i32 [%d]", d->op_name,
                   d->name, b->name, L->OC);
    L->in_t = d->inputs[0];
    L->in_zp = x->zero_points[0];
    L->w = (const uint8_t *)w->data;
    L->bias = b ? (const int32_t *)b->data : NULL;
    int32_t rqi;
    if (consumers(g, d->outputs[0], &rqi) != 1 ||
        g->nodes[rqi]->op != CRUCIBLE_OP_REQUANTIZE || !is_q31(g->nodes[rqi]))
        return WHY("%s %s: its i32 result must feed exactly one requantize "
                   "{rounding=\"fixed_q31\"} (float_rne requantisation has no "
                   "RTL)", d->op_name, d->name);
    const crucible_node_view *rq = g->nodes[rqi];
    const crucible_tensor_view *y = crucible_graph_tensor(g, rq->outputs[0]);
    if (!per_tensor_i8(y))
        return WHY("requantize %s: output must be i8 per tensor", rq->name);
    if (acc->quant_count != w->quant_count && acc->quant_count != 1)
        return WHY("requantize %s: accumulator scales do not line up with "
                   "the weights'", rq->name);
    L->rq = (uint32_t)rqi;
    L->out_t = rq->outputs[0];
    L->out_zp = y->zero_points[0];
    act_range(g, rq, y->scales[0], L->out_zp, &L->lo, &L->hi);
    int32_t ai;
    if (consumers(g, L->out_t, &ai) == 1 &&
        (g->nodes[ai]->op == CRUCIBLE_OP_RELU || g->nodes[ai]->op == CRUCIBLE_OP_CLIP)) {
        const crucible_node_view *a = g->nodes[ai];
        const crucible_tensor_view *z = crucible_graph_tensor(g, a->outputs[0]);
        if (!is_q31(a) || !per_tensor_i8(z) || z->scales[0] != y->scales[0] ||
            z->zero_points[0] != y->zero_points[0])
            return WHY("%s %s: only a fixed_q31 clamp with its input's scale and "
                       "zero point can be fused", a->op_name, a->name);
        int32_t lo, hi;
        act_range(g, a, z->scales[0], z->zero_points[0], &lo, &hi);
        if (lo > L->hi || hi < L->lo)
            return WHY("%s %s: clamp [%d, %d] is disjoint from [%d, %d]",
                       a->op_name, a->name, lo, hi, L->lo, L->hi);
        if (lo > L->lo) L->lo = lo;
        if (hi < L->hi) L->hi = hi;
        L->act = (uint32_t)ai;
        L->out_t = a->outputs[0];
    }
    if (L->lo > L->hi) return WHY("requantize %s: empty clamp range", rq->name);
    return CRUCIBLE_OK;
}

/* max_pool2d, avg_pool2d, or a standalone relu / clip (a 1x1 max window
 * and the clamp). */
int fv_pool(const crucible_graph_view *g, uint32_t ni, fv_layer *L, char *why,
            size_t why_len)
{
    const crucible_node_view *n = g->nodes[ni];
    memset(L, 0, offsetof(fv_layer, mult));
    L->kind = FV_POOL;
    L->node = ni;
    L->rq = L->act = UINT32_MAX;
    L->KH = L->KW = L->SH = L->SW = L->DH = L->DW = L->groups = L->P = 1;
    int pool = n->op == CRUCIBLE_OP_MAX_POOL2D || n->op == CRUCIBLE_OP_AVG_POOL2D;
    L->avg = n->op == CRUCIBLE_OP_AVG_POOL2D;
    if (!pool && n->op != CRUCIBLE_OP_RELU &&
        n->op != CRUCIBLE_OP_CLIP)
        return WHY("op %s: fpga-verilog has engines for integer dense, conv2d "
                   "(incl. depthwise), max/avg_pool2d, relu/clip and reshape only "
                   "(%s is not implemented)", n->op_name, n->op_name);
    if (n->n_inputs < 1 || n->n_outputs != 1) return WHY("%s %s: one output", n->op_name, n->name);
    const crucible_tensor_view *x = crucible_graph_tensor(g, n->inputs[0]);
    const crucible_tensor_view *y = crucible_graph_tensor(g, n->outputs[0]);
    if (!x || !y || !per_tensor_i8(x) || !per_tensor_i8(y))
        return WHY("%s %s: input and output must be i8 quantised per tensor",
                   n->op_name, n->name);
    if (x->scales[0] != y->scales[0] || x->zero_points[0] != y->zero_points[0])
        return WHY("%s %s: input and output scale / zero point differ (the "
                   "engine keeps them)", n->op_name, n->name);
    if (!pool && !is_q31(n))
        return WHY("%s %s: only a fixed_q31 clamp is implemented", n->op_name, n->name);
    if (chw(x, &L->C, &L->H, &L->W) || chw(y, &L->OC, &L->OH, &L->OW) || L->C != L->OC)
        return WHY("%s %s: batch 1 tensors [1, C, H, W] or [1, K] only",
                   n->op_name, n->name);
    if (pool) {
        int32_t k[2] = {0, 0}, st[2] = {1, 1}, pads[4] = {0, 0, 0, 0}, dil[2] = {1, 1};
        const crucible_attr_view *ca = crucible_node_attr(n, "count_include_pad");
        L->cip = L->avg && ca && ca->type == CRUCIBLE_ATTR_INT && ca->i != 0;
        if (attr_ints(n, "kernel", 2, k) || attr_ints(n, "strides", 2, st) ||
            attr_ints(n, "pads", 4, pads) || attr_ints(n, "dilations", 2, dil) ||
            !k[0] || !k[1] || !st[0] || !st[1] || !dil[0] || !dil[1] ||
            x->rank != 4)
            return WHY("%s %s: kernel / strides / pads / dilations out "
                       "of range", n->op_name, n->name);
        if (L->avg && (int64_t)k[0] * k[1] > 65536)
            return WHY("avg_pool2d %s: %d x %d window: at most 65536 taps",
                       n->name, k[0], k[1]);
        L->KH = k[0]; L->KW = k[1]; L->SH = st[0]; L->SW = st[1];
        L->DH = dil[0]; L->DW = dil[1]; L->PT = pads[0]; L->PL = pads[1];
        /* ceil mode: the output size may need trailing taps beyond the
         * input; they are skipped like padding */
        if ((int64_t)(L->OH - 1) * L->SH - L->PT >= L->H ||
            (int64_t)(L->OW - 1) * L->SW - L->PL >= L->W)
            return WHY("%s %s: output %dx%d does not fit the input %dx%d",
                       n->op_name, n->name, L->OH, L->OW, L->H, L->W);
        /* count_include_pad counts the pads only: taps beyond them (ceil
         * mode) would be counted too (the interpreter refuses this) */
        if (L->cip && ((int64_t)(L->OH - 1) * L->SH + (int64_t)(L->KH - 1) * L->DH + 1 >
                           (int64_t)L->H + pads[0] + pads[2] ||
                       (int64_t)(L->OW - 1) * L->SW + (int64_t)(L->KW - 1) * L->DW + 1 >
                           (int64_t)L->W + pads[1] + pads[3]))
            return WHY("avg_pool2d %s: ceil mode with count_include_pad", n->name);
    } else if (L->H != L->OH || L->W != L->OW) {
        return WHY("%s %s: shape changes", n->op_name, n->name);
    }
    L->K = L->KH * L->KW;
    int rc = geom_ok(L, why, why_len, n->name);
    if (rc) return rc;
    L->in_t = n->inputs[0];
    L->out_t = n->outputs[0];
    L->in_zp = L->out_zp = y->zero_points[0];
    act_range(g, n, y->scales[0], L->out_zp, &L->lo, &L->hi);
    if (L->lo > L->hi) return WHY("%s %s: empty clamp range", n->op_name, n->name);
    return CRUCIBLE_OK;
}

/* The multipliers of layer L (after fv_chain). */
int fv_mults(const crucible_graph_view *g, fv_layer *L, char *why, size_t why_len)
{
    if (L->kind != FV_MAC) return CRUCIBLE_OK;
    const crucible_node_view *d = g->nodes[L->node];
    const crucible_tensor_view *x = crucible_graph_tensor(g, d->inputs[0]);
    const crucible_tensor_view *w = crucible_graph_tensor(g, d->inputs[1]);
    const crucible_tensor_view *acc = crucible_graph_tensor(g, d->outputs[0]);
    const crucible_tensor_view *y =
        crucible_graph_tensor(g, g->nodes[L->rq]->outputs[0]);
    for (int32_t m = 0; m < L->OC; m++) {
        uint32_t cw = w->quant_count > 1 ? (uint32_t)m : 0;
        uint32_t ca = acc->quant_count > 1 ? (uint32_t)m : 0;
        double s = (double)x->scales[0] * (double)w->scales[cw];
        if (acc->quant_count && (float)s != acc->scales[ca])
            return WHY("%s %s: accumulator scale %u is %.9g, not x_scale * "
                       "w_scale = %.9g", d->op_name, d->name, ca,
                       (double)acc->scales[ca], (double)(float)s);
        int32_t sh;
        if (fv_multiplier(s / (double)y->scales[0], &L->mult[m], &sh) ||
            L->mult[m] < 0)
            return WHY("%s %s: factor %g is not a Q31 multiplier", d->op_name,
                       d->name, s / (double)y->scales[0]);
        L->shift[m] = sh;
    }
    return CRUCIBLE_OK;
}

/* ---- parallelism ---------------------------------------------------------*/
/* [layer.NAME] parallel (name compared case-insensitively), else
 * [target.fpga-verilog] parallel, else 1. */
int32_t fv_parallel_of(const crucible_kv_doc *cfg, const char *name)
{
    char sec[300];
    snprintf(sec, sizeof sec, "layer.%s", name);
    /* the host stores section names in lower case (docs/config.md) */
    for (char *p = sec; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    const char *v = crucible_kv_get(cfg, sec, "parallel");
    if (!v) v = crucible_kv_get(cfg, "target.fpga-verilog", "parallel");
    return v ? (int32_t)strtol(v, NULL, 10) : 1;
}

int fv_check_parallel(const fv_layer *L, int32_t P, const char *name, char *why,
                      size_t why_len)
{
    if (L->kind != FV_MAC) return CRUCIBLE_OK; /* pooling: one value a cycle */
    int32_t per = L->OC / L->groups; /* lanes share one input: one group */
    if (P < 1 || P > 64 || per % P) {
        int32_t best = 1;
        for (int32_t d = 1; d <= 64 && d <= per; d++)
            if (per % d == 0 && d <= (P > 0 ? P : 1)) best = d;
        snprintf(why, why_len, "layer %s: parallel = %d must be 1..64 and "
                 "divide the %d output channels%s (each lane computes "
                 "outputs of its own channel, all lanes read the same input); "
                 "try parallel = %d", name, P, per,
                 L->groups > 1 ? " per group" : "", best);
        return CRUCIBLE_E_INVALID;
    }
    return CRUCIBLE_OK;
}

/* The graph as a chain of engines: from the graph input, each tensor's
 * single consumer is a layer (dense / conv2d with its requantize and fused
 * activation, max_pool2d, relu / clip) or a reshape (free: the buffers are
 * row-major). */
int fv_build(const crucible_graph_view *g, const crucible_kv_doc *cfg,
             int64_t dsp, fv_design *D, char *why, size_t why_len)
{
    D->n = 0;
    D->covered = 0;
    if (g->n_inputs != 1 || g->n_outputs != 1)
        return WHY("one graph input and one graph output are required (%u "
                   "inputs, %u outputs)", g->n_inputs, g->n_outputs);
    int32_t t = g->inputs[0];
    const crucible_tensor_view *ti = crucible_graph_tensor(g, t);
    if (!per_tensor_i8(ti))
        return WHY("graph input %s must be i8 quantised per tensor (float "
                   "graphs: crucible compile --quant int8 --io int8)",
                   ti ? ti->name : "?");
    D->in_bytes = (int32_t)crucible_tensor_numel(ti);
    int64_t lanes_left = dsp >= 4 ? dsp - 4 : 0;
    while (t != g->outputs[0]) {
        int32_t ci;
        int nc = consumers(g, t, &ci);
        const crucible_tensor_view *tv = crucible_graph_tensor(g, t);
        if (nc != 1)
            return WHY("tensor %s feeds %d nodes: only a chain of layers is "
                       "supported (no branches, add or concat yet)",
                       tv ? tv->name : "?", nc);
        const crucible_node_view *n = g->nodes[ci];
        if (n->op == CRUCIBLE_OP_RESHAPE) {
            const crucible_tensor_view *o = crucible_graph_tensor(g, n->outputs[0]);
            if (!o || n->n_outputs != 1 || n->inputs[0] != t ||
                crucible_tensor_numel(o) != crucible_tensor_numel(tv) ||
                !per_tensor_i8(o) || o->scales[0] != tv->scales[0] ||
                o->zero_points[0] != tv->zero_points[0])
                return WHY("reshape %s: must keep the i8 values and their "
                           "quantisation", n->name);
            t = n->outputs[0];
            D->covered++;
            continue;
        }
        if (D->n >= FV_MAX_LAYERS)
            return WHY("more than %d layers", FV_MAX_LAYERS);
        fv_layer *L = &D->L[D->n];
        int rc;
        if (n->op == CRUCIBLE_OP_DENSE || n->op == CRUCIBLE_OP_CONV2D)
            rc = fv_chain(g, (uint32_t)ci, L, why, why_len);
        else
            rc = fv_pool(g, (uint32_t)ci, L, why, why_len);
        if (!rc) rc = fv_mults(g, L, why, why_len);
        if (rc) return rc;
        if (L->in_t != t)
            return WHY("%s %s: reads its data from input 0 only", n->op_name, n->name);
        L->P = L->kind == FV_MAC ? fv_parallel_of(cfg, n->name) : 1;
        if ((rc = fv_check_parallel(L, L->P, n->name, why, why_len))) return rc;
        if (L->kind == FV_MAC && L->wbits >= 4) {
            L->dsp_lanes = (int32_t)(L->P < lanes_left ? L->P : lanes_left);
            lanes_left -= L->dsp_lanes;
        }
        D->covered += 1 + (L->rq != UINT32_MAX) + (L->act != UINT32_MAX);
        t = L->out_t;
        D->n++;
    }
    if (!D->n)
        return WHY("the graph has no layer for the engines (reshape only)");
    if (D->covered != g->n_nodes)
        return WHY("%u of %u nodes are on the chain from the input to the "
                   "output; the others have no engine", D->covered, g->n_nodes);
    D->out_bytes = (int32_t)crucible_tensor_numel(crucible_graph_tensor(g, t));
    return CRUCIBLE_OK;
}

/* ---- cost model --------------------------------------------------------- */
/* Exact cycle count of an engine (see fv_eng.c): the sequencer issues one
 * tap per cycle, max(K, P) cycles per output (a group of P channels at one
 * pixel), and the pipeline drains: address / read / multiply / accumulate,
 * P issue cycles into the requantiser and its latency. */
double fv_layer_cycles(const fv_layer *L)
{
    double outs = (double)(L->OC / L->P) * L->OH * L->OW;
    double T = L->K > L->P ? L->K : L->P;
    if (L->kind == FV_POOL) return outs * T + (L->avg ? 15.0 : 6.0);
    return outs * T + L->P + 8.0 + FV_RQ_LAT;
}

/* Whole inference from the last input byte to the first output byte. */
double fv_design_cycles(const fv_design *D)
{
    double c = 2;
    for (uint32_t i = 0; i < D->n; i++) c += fv_layer_cycles(&D->L[i]) + 1;
    return c;
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* 4 kbit EBRs for a memory of depth x width bits (256x16 .. 2048x2). */
static int64_t ebr(int64_t depth, int64_t width)
{
    if (depth <= 0 || width <= 0) return 0;
    if (depth * width <= 64 * 8 && width <= 8) return 0; /* LUT RAM/ROM */
    int64_t w1 = depth <= 256 ? 16 : depth <= 512 ? 8 : depth <= 1024 ? 4 : 2;
    int64_t d1 = w1 == 16 ? 256 : w1 == 8 ? 512 : w1 == 4 ? 1024 : 2048;
    if (depth > 2048) return ceil_div(depth, 2048) * ceil_div(width, 2);
    return ceil_div(width, w1) * ceil_div(depth, d1);
}

void fv_layer_cost(const fv_layer *L, fv_cost *c)
{
    int64_t P = L->P, outs = (int64_t)L->OC * L->OH * L->OW;
    int64_t lut_lanes = P - L->dsp_lanes;
    c->cycles = fv_layer_cycles(L);
    c->bram = ebr(outs, 8);
    c->dsp = 0;
    c->ff = 90;
    c->lut = 110;
    if (L->H * L->W > 1 || L->KH * L->KW > 1) { /* address generator */
        c->ff += 90;
        c->lut += 120;
    }
    if (L->kind == FV_MAC) {
        c->bram += ebr((int64_t)(L->OC / P) * L->K, (int64_t)L->wbits * P);
        if (L->OC > 32) c->bram += ebr(L->OC, 32) * 2 + ebr(L->OC, 11);
        c->dsp = L->dsp_lanes;
        c->ff += 80 * P + 100;
        int64_t lutmul = L->wbits == 8 ? 90 : L->wbits == 4 ? 40 : 20;
        c->lut += 45 * P + lutmul * lut_lanes + 80 + (L->OC <= 32 ? 2 * L->OC : 0);
    } else {
        c->ff += 30;
        c->lut += 40;
    }
}

/* The shared requantisation unit and the top level. */
void fv_common_cost(int use_dsp, fv_cost *c)
{
    c->cycles = 2; /* start + output handshake */
    c->dsp = use_dsp ? 4 : 0;
    c->ff = 450;
    c->lut = 420 + (use_dsp ? 0 : 1100);
    c->bram = 0;
}

/* Weight e of L (crk_i_wget's packing): i8, i4 (two per byte, low nibble
 * first), ternary (2-bit codes 1 = +1, 3 = -1, else 0), binary (1 = +1). */
static int32_t wget(const fv_layer *L, size_t e)
{
    const uint8_t *w = L->w;
    switch (L->wbits) {
    case 8: return (int32_t)w[e] - (int32_t)((w[e] & 0x80u) << 1);
    case 4: {
        uint32_t nib = (uint32_t)(w[e >> 1] >> ((e & 1u) * 4u)) & 0xFu;
        return (int32_t)nib - (int32_t)((nib & 0x8u) << 1);
    }
    case 2: {
        uint32_t code = (uint32_t)(w[e >> 2] >> ((e & 3u) * 2u)) & 0x3u;
        return code == 1u ? 1 : (code == 3u ? -1 : 0);
    }
    default: return ((w[e >> 3] >> (e & 7u)) & 1u) ? 1 : -1;
    }
}

/* Memory images of layer L: weights [OC/P * K] words of P fields of wbits
 * (lane j = channel g*P + j in bits [wbits*j +: wbits]; ternary as 2-bit
 * two's complement, binary 1 = +1, 0 = -1), bias, multiplier, shift. */
void fv_layer_hex(const fv_layer *L, fv_buf *w, fv_buf *bb, fv_buf *m, fv_buf *s)
{
    if (L->kind != FV_MAC) return;
    int K = L->K, P = L->P, G = L->OC / P, WB = L->wbits;
    int digits = (WB * P + 3) / 4;
    for (int g = 0; g < G; g++)
        for (int k = 0; k < K; k++) {
            for (int dgt = digits - 1; dgt >= 0; dgt--) {
                unsigned nib = 0;
                for (int bit = 3; bit >= 0; bit--) {
                    int pos = dgt * 4 + bit, j = pos / WB, wb = pos % WB;
                    unsigned v = 0;
                    if (j < P) {
                        int32_t x = wget(L, (size_t)(g * P + j) * (size_t)K + (size_t)k);
                        uint32_t f = WB == 1 ? (x > 0 ? 1u : 0u) : (uint32_t)x;
                        v = (f >> wb) & 1u;
                    }
                    nib = (nib << 1) | v;
                }
                fv_printf(w, "%x", nib);
            }
            fv_printf(w, "\n");
        }
    for (int c = 0; c < L->OC; c++) {
        int32_t sh = L->shift[c];
        unsigned lsh = sh > 0 ? (unsigned)sh : 0, rsh = sh > 0 ? 0 : (unsigned)-sh;
        fv_printf(bb, "%08x\n", L->bias ? (unsigned)L->bias[c] : 0u);
        fv_printf(m, "%08x\n", (unsigned)L->mult[c]);
        fv_printf(s, "%03x\n", (lsh << 6) | rsh);
    }
}

/* ---- text buffer -------------------------------------------------------- */
void fv_printf(fv_buf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        int n = b->data ? vsnprintf(b->data + b->len, room, fmt, ap) : -2;
        va_end(ap);
        if (n >= 0 && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = b->cap ? b->cap * 2 : 4096;
        while (n >= 0 && ncap - b->len <= (size_t)n) ncap *= 2;
        char *p = b->host->realloc(b->host, b->data, b->cap, ncap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->data = p;
        b->cap = ncap;
    }
}

void fv_buf_free(fv_buf *b)
{
    if (b->data) b->host->realloc(b->host, b->data, b->cap, 0);
    b->data = NULL;
    b->cap = b->len = 0;
}

