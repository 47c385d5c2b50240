/*
 * spice_plan.c - which graphs the spice target maps, the chain of layers
 * it builds from them, activation bounds and calibration, the float model
 * of the chain, and the realisation of each layer (scales and stage
 * resistor values) for a component technology.
 *
 * sp_check_node and sp_geometry are pure and allocation-free (query calls
 * them from any thread); the rest runs on the main thread.
 */
#include "spice_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

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

static int is_const(const crucible_tensor_view *t)
{
    return t && (t->flags & CRUCIBLE_TENSOR_CONST);
}

static int is_graph_output(const crucible_graph_view *g, int32_t t)
{
    for (uint32_t i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == t) return 1;
    return 0;
}

/* The node that produces tensor t, or SP_NONE. */
static uint32_t producer(const crucible_graph_view *g, int32_t t)
{
    for (uint32_t i = 0; i < g->n_nodes; i++)
        for (uint32_t k = 0; k < g->nodes[i]->n_outputs; k++)
            if (g->nodes[i]->outputs[k] == t) return i;
    return SP_NONE;
}

/* How many node inputs read tensor t; the first reader in *first. */
static uint32_t consumers(const crucible_graph_view *g, int32_t t,
                          uint32_t *first)
{
    uint32_t n = 0;
    if (first) *first = SP_NONE;
    for (uint32_t i = 0; i < g->n_nodes; i++)
        for (uint32_t k = 0; k < g->nodes[i]->n_inputs; k++)
            if (g->nodes[i]->inputs[k] == t) {
                if (!n && first) *first = i;
                n++;
            }
    return n;
}

/* The data (non-constant) input of a node: for add, the non-constant
 * operand; otherwise input 0. -1 if none. */
static int32_t data_input(const crucible_graph_view *g,
                          const crucible_node_view *n)
{
    if (n->op == CRUCIBLE_OP_ADD && n->n_inputs == 2) {
        const crucible_tensor_view *a = crucible_graph_tensor(g, n->inputs[0]);
        if (is_const(a)) return n->inputs[1];
    }
    return n->n_inputs ? n->inputs[0] : -1;
}

static const crucible_tensor_view *add_const(const crucible_graph_view *g,
                                             const crucible_node_view *n)
{
    for (uint32_t k = 0; k < n->n_inputs && k < 2; k++) {
        const crucible_tensor_view *t = crucible_graph_tensor(g, n->inputs[k]);
        if (is_const(t)) return t;
    }
    return NULL;
}

/* Walks back from tensor t through reshape and add-of-constant nodes;
 * returns the first other producer (or SP_NONE for a graph input). */
static uint32_t back_to_layer(const crucible_graph_view *g, int32_t t)
{
    for (uint32_t guard = 0; guard <= g->n_nodes; guard++) {
        uint32_t p = producer(g, t);
        if (p == SP_NONE) return SP_NONE;
        const crucible_node_view *n = g->nodes[p];
        if (n->op != CRUCIBLE_OP_RESHAPE && n->op != CRUCIBLE_OP_ADD) return p;
        t = data_input(g, n);
    }
    return SP_NONE;
}

/* Walks forward from tensor t through reshape and add nodes; returns the
 * first other consumer (SP_NONE at the graph output or a branch). */
static uint32_t forward_to_layer(const crucible_graph_view *g, int32_t t)
{
    for (uint32_t guard = 0; guard <= g->n_nodes; guard++) {
        uint32_t c;
        if (consumers(g, t, &c) != 1) return SP_NONE;
        const crucible_node_view *n = g->nodes[c];
        if (n->op != CRUCIBLE_OP_RESHAPE && n->op != CRUCIBLE_OP_ADD) return c;
        if (n->n_outputs != 1) return SP_NONE;
        t = n->outputs[0];
    }
    return SP_NONE;
}

/* Element i of an ints attribute, or dflt. */
static int64_t attr_at(const crucible_node_view *n, const char *name,
                       uint32_t i, int64_t dflt)
{
    const crucible_attr_view *a = crucible_node_attr(n, name);
    if (!a || a->type != CRUCIBLE_ATTR_INTS || i >= a->count) return dflt;
    return a->ints[i];
}

static int is_layer_op(int32_t op)
{
    return op == CRUCIBLE_OP_DENSE || op == CRUCIBLE_OP_CONV2D;
}

void sp_geometry(int64_t K, int64_t M, const sp_params *p, sp_geom *gm)
{
    gm->rows = K + 1;
    gm->cols = 2 * M;
    gm->tiles_r = (gm->rows + p->xbar_rows - 1) / p->xbar_rows;
    gm->tiles_c = (gm->cols + p->xbar_cols - 1) / p->xbar_cols;
    gm->crosspoints = (double)gm->rows * (double)gm->cols;
}

/* ngspice time per sample (one .dc sweep point), fitted to measurements
 * on a 2-core build machine (docs/spice.md): about c * R^1.35 for R
 * resistors (the crossbar blocks make the matrix factorisation grow faster
 * than linearly), c = 4e-8 s with ideal op-amps and 1.6e-7 s with
 * macro-model op-amps and diode rectifiers. */
double sp_sim_seconds(double resistors, double opamps, int macro)
{
    /* fitted on the 2-core build machine: the resistor term for wide dense
     * layers, the op-amp term for unrolled convolutions (thousands of
     * column amplifiers: the digits CNN's 2,846 op-amps and 23.8k
     * resistors took ~0.1 s per sample ideal, ~2.4 s with macro-models) */
    double r = (macro ? 1.6e-7 : 4e-8) * pow(resistors + 1.0, 1.35);
    double o = (macro ? 6e-8 : 2e-9) * pow(opamps + 1.0, 2.2);
    return fmax(r, o) + 2e-5;
}

/* The crossbar size limit (limits.max_devices), with the numbers. */
static int too_large(const sp_params *p, const char *what, int64_t K,
                     int64_t M, char *why, size_t why_len)
{
    sp_geom gm;
    sp_geometry(K, M, p, &gm);
    if (gm.crosspoints > p->max_devices && !p->force) {
            double nz = (double)K * (double)M;
            double est = sp_sim_seconds(nz, 2.0 * (double)M * (double)gm.tiles_r +
                                             2.0 * (double)M,
                                     p->tech.opamp_macro);
            char cp[32], lim[32];
            sp_fmt_count(cp, sizeof cp, gm.crosspoints);
            sp_fmt_count(lim, sizeof lim, p->max_devices);
            return refuse(why, why_len, CRUCIBLE_E_LIMIT,
                          "layer too large to simulate: %s %lld -> %lld "
                          "needs %s crossbar devices (%lld x %lld, %lld x "
                          "%lld tiles of %d x %d), limit %s "
                          "(limits.max_devices); ngspice ~%.2g s per sample; "
                          "set limits.force = true to simulate anyway",
                          what, (long long)K, (long long)M, cp, (long long)gm.rows,
                          (long long)gm.cols, (long long)gm.tiles_r,
                          (long long)gm.tiles_c, p->xbar_rows, p->xbar_cols,
                          lim, est);
        }
        return CRUCIBLE_OK;
}

int sp_check_node(const crucible_graph_view *g, uint32_t ni,
                  const sp_params *p, char *why, size_t why_len)
{
    if (!g || ni >= g->n_nodes) return NO("no such node");
    const crucible_node_view *n = g->nodes[ni];
    const char *opn = n->op_name ? n->op_name : "?";
    if (why && why_len) why[0] = 0;

    switch (n->op) {
    case CRUCIBLE_OP_DENSE: case CRUCIBLE_OP_RELU: case CRUCIBLE_OP_RESHAPE:
    case CRUCIBLE_OP_ADD: case CRUCIBLE_OP_SOFTMAX: case CRUCIBLE_OP_CONV2D:
    case CRUCIBLE_OP_MAX_POOL2D:
        break;
    default:
        return NO("op %s is not supported by spice (analog circuits exist "
                  "for dense, conv2d, relu, max_pool2d, reshape and add of a "
                  "constant; softmax only as the last op, computed digitally "
                  "after the ADC)", opn);
    }
    if (g->n_inputs != 1 || g->n_outputs != 1)
        return NO("the graph has %u inputs and %u outputs; spice maps a "
                  "single-input, single-output chain of layers",
                  g->n_inputs, g->n_outputs);

    /* one f32 output of known shape, no branches */
    if (n->n_outputs != 1) return NO("node has %u outputs; spice needs 1", n->n_outputs);
    const crucible_tensor_view *o = crucible_graph_tensor(g, n->outputs[0]);
    if (!o) return NO("output refers to no tensor");
    if (o->dtype != CRUCIBLE_DT_F32)
        return NO("dtype %s not supported by spice (float32 graphs only): "
                  "output %s", dtype_name(o->dtype), o->name);
    if (o->quant_count)
        return NO("output %s is quantised; spice maps float graphs",
                  o->name);
    uint64_t on = crucible_tensor_numel(o);
    if (!on) return NO("shape of output %s is not fully known", o->name);
    uint32_t nc = consumers(g, n->outputs[0], NULL);
    if (nc > 1 || (nc == 1 && is_graph_output(g, n->outputs[0])))
        return NO("output %s feeds %u nodes%s; spice maps a single chain "
                  "(no branches)", o->name, nc,
                  is_graph_output(g, n->outputs[0]) ? " and the graph output" : "");

    for (uint32_t k = 0; k < n->n_inputs; k++) {
        if (n->inputs[k] == -1) continue;
        const crucible_tensor_view *t = crucible_graph_tensor(g, n->inputs[k]);
        if (!t) return NO("input %u refers to no tensor", k);
        if (n->op == CRUCIBLE_OP_RESHAPE && k == 1) continue; /* shape */
        if (t->dtype != CRUCIBLE_DT_F32)
            return NO("dtype %s not supported by spice (float32 graphs only): "
                      "input %s", dtype_name(t->dtype), t->name);
        if (t->quant_count)
            return NO("input %s is quantised; spice maps float graphs", t->name);
        uint64_t e = crucible_tensor_numel(t);
        if (!e && t->rank) return NO("shape of input %s is not fully known", t->name);
        if (is_const(t) && (!t->data || t->data_bytes != e * 4))
            return NO("constant %s has %zu bytes of data, %llu expected",
                      t->name, t->data_bytes, (unsigned long long)(e * 4));
        if (is_const(t)) {
            const float *f = t->data;
            for (uint64_t i = 0; i < e; i++)
                if (!isfinite(f[i]))
                    return NO("constant %s holds %s at index %llu; a "
                              "resistor cannot realise it", t->name,
                              f[i] != f[i] ? "NaN" : "an infinity",
                              (unsigned long long)i);
        }
    }
    int32_t di = data_input(g, n);
    const crucible_tensor_view *x = crucible_graph_tensor(g, di);
    if (!x) return NO("%s needs a data input", opn);
    if (is_const(x))
        return NO("the data input %s is a constant; spice maps layers "
                  "applied to the graph input", x->name);
    if (consumers(g, di, NULL) != 1)
        return NO("tensor %s feeds %u nodes; spice maps a single chain (no "
                  "branches)", x->name, consumers(g, di, NULL));
    uint64_t xn = crucible_tensor_numel(x);

    switch (n->op) {
    case CRUCIBLE_OP_DENSE: {
        const crucible_tensor_view *w =
            n->n_inputs > 1 ? crucible_graph_tensor(g, n->inputs[1]) : NULL;
        const crucible_tensor_view *b =
            n->n_inputs > 2 ? crucible_graph_tensor(g, n->inputs[2]) : NULL;
        if (n->n_inputs < 2 || n->n_inputs > 3 || !w)
            return NO("dense needs inputs (x, w[, b])");
        if (!is_const(w) || w->rank != 2)
            return NO("dense weight %s must be a constant [M, K] (weights are "
                      "resistors)", w->name);
        if (b && !is_const(b))
            return NO("dense bias %s must be a constant", b->name);
        int64_t M = w->dims[0], K = w->dims[1];
        if ((uint64_t)K != xn)
            return NO("dense input %s has %llu elements, weight %s expects "
                      "K = %lld: spice computes one vector per inference "
                      "(batch 1)", x->name, (unsigned long long)xn, w->name,
                      (long long)K);
        if (on != (uint64_t)M)
            return NO("dense output %s has %llu elements, expected %lld "
                      "(batch 1)", o->name, (unsigned long long)on, (long long)M);
        if (b && crucible_tensor_numel(b) != (uint64_t)M)
            return NO("dense bias %s must have %lld elements", b->name, (long long)M);
        return too_large(p, "dense", K, M, why, why_len);
    }
    case CRUCIBLE_OP_CONV2D: {
        const crucible_tensor_view *w =
            n->n_inputs > 1 ? crucible_graph_tensor(g, n->inputs[1]) : NULL;
        const crucible_tensor_view *b =
            n->n_inputs > 2 && n->inputs[2] >= 0 ? crucible_graph_tensor(g, n->inputs[2]) : NULL;
        if (n->n_inputs < 2 || n->n_inputs > 3 || !w)
            return NO("conv2d needs inputs (x, w[, b])");
        if (!is_const(w) || w->rank != 4)
            return NO("conv2d weight %s must be a constant [O, C, kh, kw] "
                      "(weights are resistors)", w->name);
        if (b && !is_const(b))
            return NO("conv2d bias %s must be a constant", b->name);
        if (crucible_node_attr_int(n, "group", 1) != 1)
            return NO("grouped convolution (group %lld) is not mapped; spice "
                      "unrolls group-1 convolutions onto crossbars",
                      (long long)crucible_node_attr_int(n, "group", 1));
        if (x->rank != 4 || x->dims[0] != 1 || o->rank != 4 || o->dims[0] != 1)
            return NO("conv2d needs NCHW tensors of batch 1");
        if (x->dims[1] != w->dims[1] || o->dims[1] != w->dims[0])
            return NO("conv2d channels do not match the weight %s", w->name);
        if (b && crucible_tensor_numel(b) != (uint64_t)w->dims[0])
            return NO("conv2d bias %s must have %lld elements", b->name,
                      (long long)w->dims[0]);
        return too_large(p, "conv2d (unrolled)", (int64_t)xn, (int64_t)on, why,
                         why_len);
    }
    case CRUCIBLE_OP_MAX_POOL2D: {
        if (n->n_inputs != 1) return NO("max_pool2d needs one input");
        if (x->rank != 4 || x->dims[0] != 1 || o->rank != 4 || o->dims[0] != 1 ||
            o->dims[1] != x->dims[1])
            return NO("max_pool2d needs NCHW tensors of batch 1");
        if (!crucible_node_attr(n, "kernel"))
            return NO("max_pool2d needs its kernel attribute");
        uint32_t pn = back_to_layer(g, di);
        if (pn == SP_NONE || (!is_layer_op(g->nodes[pn]->op) &&
                              g->nodes[pn]->op != CRUCIBLE_OP_RELU))
            return NO("max_pool2d must follow a dense/conv2d layer or its "
                      "relu (a behavioural max over that layer's outputs)");
        if (g->nodes[pn]->op == CRUCIBLE_OP_RELU) {
            uint32_t pp = back_to_layer(g, g->nodes[pn]->inputs[0]);
            if (pp == SP_NONE || !is_layer_op(g->nodes[pp]->op))
                return NO("max_pool2d must follow a dense/conv2d layer or its relu");
        }
        uint32_t fn = forward_to_layer(g, n->outputs[0]);
        if (fn == SP_NONE || !is_layer_op(g->nodes[fn]->op))
            return NO("max_pool2d must be followed by a dense or conv2d layer "
                      "(the pooled values feed the next crossbar)");
        return CRUCIBLE_OK;
    }
    case CRUCIBLE_OP_RELU: {
        if (n->n_inputs != 1) return NO("relu needs one input");
        uint32_t pn = back_to_layer(g, di);
        if (pn == SP_NONE)
            return NO("relu on the graph input: the rectifier sits on a "
                      "dense layer's output");
        if (!is_layer_op(g->nodes[pn]->op))
            return NO("relu follows %s %s, not a dense or conv2d layer: the "
                      "rectifier sits on a layer's output stage",
                      g->nodes[pn]->op_name, g->nodes[pn]->name);
        return CRUCIBLE_OK;
    }
    case CRUCIBLE_OP_ADD: {
        if (n->n_inputs != 2) return NO("add needs 2 inputs");
        const crucible_tensor_view *c = add_const(g, n);
        if (!c)
            return NO("add of two computed tensors is not supported (only an "
                      "add of a constant, folded into a bias row)");
        uint64_t cn = crucible_tensor_numel(c);
        if ((cn != 1 && cn != xn) || on != xn)
            return NO("add constant %s (%llu elements) must be a scalar or "
                      "match %s elementwise (%llu)", c->name,
                      (unsigned long long)cn, x->name, (unsigned long long)xn);
        uint32_t pn = back_to_layer(g, di);
        if (pn != SP_NONE && is_layer_op(g->nodes[pn]->op))
            return CRUCIBLE_OK; /* folded into that layer's bias */
        uint32_t fn = forward_to_layer(g, n->outputs[0]);
        if (fn != SP_NONE && is_layer_op(g->nodes[fn]->op))
            return CRUCIBLE_OK; /* folded into the next layer's bias */
        return NO("add of a constant must be next to a dense layer (it is "
                  "folded into a bias row); here no dense layer follows or "
                  "precedes it");
    }
    case CRUCIBLE_OP_RESHAPE:
        if (on != xn) return NO("reshape changes the element count");
        return CRUCIBLE_OK;
    case CRUCIBLE_OP_SOFTMAX: {
        if (n->n_inputs != 1) return NO("softmax needs one input");
        if (!is_graph_output(g, n->outputs[0]))
            return NO("softmax is only supported as the last op (computed "
                      "digitally after the ADC); its output %s is not the "
                      "graph output", o->name);
        int64_t ax = crucible_node_attr_int(n, "axis", -1);
        if (ax < 0) ax += x->rank;
        if (ax < 0 || ax >= x->rank) return NO("softmax axis is out of range");
        for (int32_t d = 0; d < x->rank; d++)
            if (d != ax && x->dims[d] != 1)
                return NO("softmax along axis %lld of %s leaves %lld "
                          "slices; spice handles one vector (batch 1)",
                          (long long)ax, x->name,
                          (long long)(xn / (uint64_t)x->dims[ax]));
        uint32_t pn = back_to_layer(g, di);
        if (pn == SP_NONE)
            return NO("softmax on the graph input: there is no layer to map");
        return CRUCIBLE_OK;
    }
    default:
        return NO("op %s is not supported by spice", opn);
    }
}

/* ---- the plan -------------------------------------------------------------*/
void sp_plan_free(sp_plan *plan)
{
    if (!plan || !plan->host) return;
    for (uint32_t l = 0; l < plan->n_layers; l++) {
        sp_layer *L = &plan->layers[l];
        sp_free(plan->host, L->bias, (size_t)L->M, sizeof(double));
        sp_free(plan->host, L->W_own, (size_t)(L->M * L->K), sizeof(float));
    }
    sp_free(plan->host, plan->layers, plan->n_layers, sizeof(sp_layer));
    memset(plan, 0, sizeof *plan);
}

size_t sp_plan_scratch(const sp_plan *plan)
{
    int64_t w = plan->n_in;
    for (uint32_t l = 0; l < plan->n_layers; l++)
        if (plan->layers[l].M > w) w = plan->layers[l].M;
    return 2 * (size_t)w;
}

/* Max-pool of layer L's outputs y (M values viewed as [c_out, h_out,
 * w_out]) into out (P values); taps outside the input are skipped. */
static void pool_apply(const sp_layer *L, const double *y, double *out)
{
    for (int64_t c = 0; c < L->c_out; c++)
        for (int64_t oy = 0; oy < L->p_oh; oy++)
            for (int64_t ox = 0; ox < L->p_ow; ox++) {
                double best = -INFINITY;
                for (int64_t ky = 0; ky < L->p_kh; ky++)
                    for (int64_t kx = 0; kx < L->p_kw; kx++) {
                        int64_t iy = oy * L->p_sh - L->p_top + ky * L->p_dh;
                        int64_t ix = ox * L->p_sw - L->p_left + kx * L->p_dw;
                        if (iy < 0 || iy >= L->h_out || ix < 0 || ix >= L->w_out) continue;
                        best = fmax(best, y[(c * L->h_out + iy) * L->w_out + ix]);
                    }
                out[(c * L->p_oh + oy) * L->p_ow + ox] = best;
            }
}

int64_t sp_pool_taps(const sp_layer *L, int64_t j, int64_t *taps)
{
    int64_t c = j / (L->p_oh * L->p_ow), r = j % (L->p_oh * L->p_ow);
    int64_t oy = r / L->p_ow, ox = r % L->p_ow, n = 0;
    for (int64_t ky = 0; ky < L->p_kh; ky++)
        for (int64_t kx = 0; kx < L->p_kw; kx++) {
            int64_t iy = oy * L->p_sh - L->p_top + ky * L->p_dh;
            int64_t ix = ox * L->p_sw - L->p_left + kx * L->p_dw;
            if (iy < 0 || iy >= L->h_out || ix < 0 || ix >= L->w_out) continue;
            taps[n++] = (c * L->h_out + iy) * L->w_out + ix;
        }
    return n;
}

void sp_plan_forward(const sp_plan *plan, const sp_params *p,
                     const double *x, double *out, double *scratch,
                     double *ymax, double *tmax)
{
    size_t half = sp_plan_scratch(plan) / 2;
    double *a = scratch, *y = scratch + half;
    for (int64_t k = 0; k < plan->n_in; k++) a[k] = x[k];
    for (uint32_t l = 0; l < plan->n_layers; l++) {
        const sp_layer *L = &plan->layers[l];
        const int64_t R = p->xbar_rows;
        for (int64_t m = 0; m < L->M; m++) {
            const float *w = L->W + m * L->K;
            double acc = L->bias[m];
            double tp = 0, tn = 0;
            for (int64_t k = 0; k < L->K; k++) {
                double t = (double)w[k] * a[k];
                acc += t;
                if (tmax) {
                    if (w[k] > 0) tp += t; else tn -= t;
                    if ((k + 1) % R == 0) { /* tile boundary */
                        if (fabs(tp) > tmax[l]) tmax[l] = fabs(tp);
                        if (fabs(tn) > tmax[l]) tmax[l] = fabs(tn);
                        tp = tn = 0;
                    }
                }
            }
            if (tmax) {
                if (L->bias[m] > 0) tp += L->bias[m]; else tn -= L->bias[m];
                if (fabs(tp) > tmax[l]) tmax[l] = fabs(tp);
                if (fabs(tn) > tmax[l]) tmax[l] = fabs(tn);
            }
            if (ymax && fabs(acc) > ymax[l]) ymax[l] = fabs(acc);
            y[m] = L->relu_node != SP_NONE && acc < 0 ? 0.0 : acc;
        }
        if (L->pool) {
            pool_apply(L, y, a); /* the pooled values are the next input */
        } else {
            double *t = a;
            a = y;
            y = t;
        }
    }
    const sp_layer *last = &plan->layers[plan->n_layers - 1];
    for (int64_t m = 0; m < last->P; m++) out[m] = a[m];
}

/* Interval bounds of every layer's pre-activation and TIA partial sums
 * for inputs inside the declared range. */
static int plan_bounds(sp_plan *plan, const sp_params *p)
{
    const crucible_host *h = plan->host;
    size_t w = sp_plan_scratch(plan);
    double *lo = sp_calloc(h, w, sizeof(double));
    double *hi = sp_calloc(h, w, sizeof(double));
    if (!lo || !hi) {
        sp_free(h, lo, w, sizeof(double));
        sp_free(h, hi, w, sizeof(double));
        return CRUCIBLE_E_NOMEM;
    }
    double *nlo = lo + w / 2, *nhi = hi + w / 2;
    for (int64_t k = 0; k < plan->n_in; k++) lo[k] = p->in_min, hi[k] = p->in_max;
    for (uint32_t l = 0; l < plan->n_layers; l++) {
        sp_layer *L = &plan->layers[l];
        const int64_t R = p->xbar_rows;
        double ymax = 0, tmax = 0, amax = 0, wmax = 0, bmax = 0;
        for (int64_t k = 0; k < L->K; k++) {
            double am = fmax(fabs(lo[k]), fabs(hi[k]));
            if (am > amax) amax = am;
        }
        for (int64_t m = 0; m < L->M; m++) {
            const float *wr = L->W + m * L->K;
            double ylo = L->bias[m], yhi = L->bias[m], tp = 0, tn = 0;
            if (fabs(L->bias[m]) > bmax) bmax = fabs(L->bias[m]);
            for (int64_t k = 0; k < L->K; k++) {
                double wk = wr[k];
                if (fabs(wk) > wmax) wmax = fabs(wk);
                double am = fmax(fabs(lo[k]), fabs(hi[k]));
                if (wk > 0) {
                    ylo += wk * lo[k], yhi += wk * hi[k];
                    tp += wk * am;
                } else {
                    ylo += wk * hi[k], yhi += wk * lo[k];
                    tn -= wk * am;
                }
                if ((k + 1) % R == 0) {
                    tmax = fmax(tmax, fmax(tp, tn));
                    tp = tn = 0;
                }
            }
            if (L->bias[m] > 0) tp += L->bias[m]; else tn -= L->bias[m];
            tmax = fmax(tmax, fmax(tp, tn));
            ymax = fmax(ymax, fmax(fabs(ylo), fabs(yhi)));
            int relu = L->relu_node != SP_NONE;
            nlo[m] = relu ? fmax(ylo, 0) : ylo;
            nhi[m] = relu ? fmax(yhi, 0) : yhi;
        }
        L->y_bound = ymax > 0 ? ymax : 1.0;
        L->t_bound = tmax > 0 ? tmax : 1.0;
        L->in_absmax = amax;
        L->w_max = wmax;
        L->b_max = bmax;
        L->y_cal = L->t_cal = -1;
        if (L->pool) {
            pool_apply(L, nlo, lo);
            pool_apply(L, nhi, hi);
        } else {
            for (int64_t m = 0; m < L->M; m++) lo[m] = nlo[m], hi[m] = nhi[m];
        }
    }
    sp_free(h, lo, w, sizeof(double));
    sp_free(h, hi, w, sizeof(double));
    return CRUCIBLE_OK;
}

/* ---- calibration file (.npy, float32 or float64, C order) -------------- */
static int read_all(const crucible_host *h, const char *path, unsigned char **buf,
                    size_t *len, char *why, size_t why_len)
{
    FILE *f = fopen(path, "rb");
    *buf = NULL;
    *len = 0;
    if (!f) return refuse(why, why_len, CRUCIBLE_E_IO, "cannot open calibration file %s", path);
    if (fseek(f, 0, SEEK_END) || ftell(f) < 0) {
        fclose(f);
        return refuse(why, why_len, CRUCIBLE_E_IO, "cannot read %s", path);
    }
    long n = ftell(f);
    if (n > (1L << 30)) {
        fclose(f);
        return refuse(why, why_len, CRUCIBLE_E_LIMIT, "calibration file %s is over 1 GiB", path);
    }
    rewind(f);
    unsigned char *b = sp_calloc(h, (size_t)n + 1, 1);
    if (!b) {
        fclose(f);
        return CRUCIBLE_E_NOMEM;
    }
    if (fread(b, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        sp_free(h, b, (size_t)n + 1, 1);
        return refuse(why, why_len, CRUCIBLE_E_IO, "cannot read %s", path);
    }
    fclose(f);
    *buf = b;
    *len = (size_t)n;
    return CRUCIBLE_OK;
}

/* Parses the npy header: dtype '<f4' or '<f8', fortran_order False, a
 * shape tuple. Returns the data offset, element size and element count. */
static int npy_header(const unsigned char *b, size_t len, size_t *off,
                      int *esize, uint64_t *count, uint64_t *rows,
                      char *why, size_t why_len, const char *path)
{
    if (len < 10 || memcmp(b, "\x93NUMPY", 6))
        return refuse(why, why_len, CRUCIBLE_E_FORMAT, "%s is not a .npy file", path);
    size_t hl, ho;
    if (b[6] == 1) hl = (size_t)b[8] | (size_t)b[9] << 8, ho = 10;
    else if (b[6] >= 2 && len >= 12)
        hl = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 |
             (size_t)b[11] << 24, ho = 12;
    else return refuse(why, why_len, CRUCIBLE_E_FORMAT, "%s: unknown .npy version", path);
    if (hl > len - ho) return refuse(why, why_len, CRUCIBLE_E_FORMAT, "%s: truncated header", path);
    char hdr[1024];
    size_t n = hl < sizeof hdr - 1 ? hl : sizeof hdr - 1;
    memcpy(hdr, b + ho, n);
    hdr[n] = 0;
    if (strstr(hdr, "'<f4'")) *esize = 4;
    else if (strstr(hdr, "'<f8'")) *esize = 8;
    else return refuse(why, why_len, CRUCIBLE_E_FORMAT, "%s: calibration data must be float32 or float64 ('<f4'/'<f8')", path);
    if (!strstr(hdr, "'fortran_order': False"))
        return refuse(why, why_len, CRUCIBLE_E_FORMAT, "%s: Fortran-order arrays are not supported", path);
    const char *s = strstr(hdr, "'shape':");
    if (!s || !(s = strchr(s, '(')))
        return refuse(why, why_len, CRUCIBLE_E_FORMAT, "%s: no shape in the header", path);
    uint64_t c = 1, first = 0;
    int dims = 0;
    for (s++; *s && *s != ')';) {
        if (*s >= '0' && *s <= '9') {
            uint64_t v = 0;
            while (*s >= '0' && *s <= '9') {
                if (v > (1ull << 40)) return refuse(why, why_len, CRUCIBLE_E_FORMAT, "%s: shape too large", path);
                v = v * 10 + (uint64_t)(*s++ - '0');
            }
            if (!dims) first = v;
            dims++;
            if (v && c > (1ull << 40) / v) return refuse(why, why_len, CRUCIBLE_E_FORMAT, "%s: shape too large", path);
            c *= v;
        } else s++;
    }
    *off = ho + hl;
    *count = c;
    *rows = dims ? first : 1;
    if (dims <= 1) *rows = 1;
    if ((len - *off) / (size_t)*esize < c)
        return refuse(why, why_len, CRUCIBLE_E_FORMAT, "%s: data shorter than its shape", path);
    return CRUCIBLE_OK;
}

static int plan_calibrate(sp_plan *plan, const sp_params *p, char *why,
                          size_t why_len)
{
    const crucible_host *h = plan->host;
    char path[4096];
    const char *f = p->calibration;
    if (f[0] != '/' && p->calibration_base && strchr(p->calibration_base, '/')) {
        const char *slash = strrchr(p->calibration_base, '/');
        snprintf(path, sizeof path, "%.*s/%s", (int)(slash - p->calibration_base),
                 p->calibration_base, f);
    } else {
        snprintf(path, sizeof path, "%s", f);
    }
    unsigned char *buf = NULL;
    size_t len = 0, off = 0;
    int es = 4;
    uint64_t count = 0, rows = 0;
    int rc = read_all(h, path, &buf, &len, why, why_len);
    if (rc) return rc;
    rc = npy_header(buf, len, &off, &es, &count, &rows, why, why_len, path);
    if (!rc && (rows == 0 || count / rows != (uint64_t)plan->n_in || count % rows))
        rc = refuse(why, why_len, CRUCIBLE_E_FORMAT, "%s holds %llu values "
                    "in %llu rows; each row must be one input vector of %lld "
                    "values", path, (unsigned long long)count,
                    (unsigned long long)rows, (long long)plan->n_in);
    size_t sw = sp_plan_scratch(plan);
    double *x = NULL, *scr = NULL, *out = NULL, *ym = NULL, *tm = NULL;
    if (!rc) {
        x = sp_calloc(h, (size_t)plan->n_in, sizeof(double));
        scr = sp_calloc(h, sw, sizeof(double));
        out = sp_calloc(h, sw, sizeof(double));
        ym = sp_calloc(h, plan->n_layers, sizeof(double));
        tm = sp_calloc(h, plan->n_layers, sizeof(double));
        if (!x || !scr || !out || !ym || !tm) rc = CRUCIBLE_E_NOMEM;
    }
    uint64_t clipped = 0;
    for (uint64_t r = 0; !rc && r < rows; r++) {
        for (int64_t k = 0; k < plan->n_in; k++) {
            const unsigned char *e = buf + off + ((size_t)r * (size_t)plan->n_in + (size_t)k) * (size_t)es;
            double v;
            if (es == 4) {
                float fv;
                memcpy(&fv, e, 4);
                v = fv;
            } else {
                memcpy(&v, e, 8);
            }
            if (!(v >= p->in_min)) v = p->in_min, clipped++;
            else if (v > p->in_max) v = p->in_max, clipped++;
            x[k] = v;
        }
        sp_plan_forward(plan, p, x, out, scr, ym, tm);
    }
    if (!rc) {
        plan->n_cal = (uint32_t)rows;
        for (uint32_t l = 0; l < plan->n_layers; l++) {
            sp_layer *L = &plan->layers[l];
            L->y_cal = ym[l];
            L->t_cal = tm[l];
        }
        snprintf(plan->cal_note, sizeof plan->cal_note,
                 "%llu calibration vectors from %s%s", (unsigned long long)rows,
                 path, clipped ? " (some values clipped to the input range)" : "");
    }
    sp_free(h, buf, len + 1, 1);
    sp_free(h, x, (size_t)plan->n_in, sizeof(double));
    sp_free(h, scr, sw, sizeof(double));
    sp_free(h, out, sw, sizeof(double));
    sp_free(h, ym, plan->n_layers, sizeof(double));
    sp_free(h, tm, plan->n_layers, sizeof(double));
    return rc;
}

int sp_plan_build(const crucible_host *h, const crucible_graph_view *g,
                  const sp_params *p, sp_plan *plan, char *why,
                  size_t why_len)
{
    char r[256];
    int rc;
    memset(plan, 0, sizeof *plan);
    plan->host = h;
    plan->softmax_node = SP_NONE;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        if ((rc = sp_check_node(g, i, p, r, sizeof r)) != CRUCIBLE_OK)
            return refuse(why, why_len, rc, "node %s (op %s): %s",
                          g->nodes[i]->name, g->nodes[i]->op_name, r);
    }
    if (g->n_inputs != 1 || g->n_outputs != 1)
        return refuse(why, why_len, CRUCIBLE_E_UNSUPPORTED, "spice maps a "
                      "single-input, single-output chain");
    uint32_t n_dense = 0;
    for (uint32_t i = 0; i < g->n_nodes; i++)
        if (is_layer_op(g->nodes[i]->op)) n_dense++;
    if (!n_dense)
        return refuse(why, why_len, CRUCIBLE_E_UNSUPPORTED, "the graph has "
                      "no dense or conv2d layer: there is nothing to map to a "
                      "crossbar");
    plan->layers = sp_calloc(h, n_dense, sizeof(sp_layer));
    if (!plan->layers) return CRUCIBLE_E_NOMEM;

    int32_t t = g->inputs[0];
    const crucible_tensor_view *tv = crucible_graph_tensor(g, t);
    plan->in_name = tv->name;
    plan->n_in = (int64_t)crucible_tensor_numel(tv);
    double *pre = NULL; /* constants added before the next dense */
    int64_t pre_n = 0;
    int after_dense = 0;
    rc = CRUCIBLE_OK;
    for (uint32_t guard = 0; guard <= g->n_nodes && !is_graph_output(g, t); guard++) {
        uint32_t ci;
        if (consumers(g, t, &ci) != 1) {
            rc = refuse(why, why_len, CRUCIBLE_E_UNSUPPORTED, "tensor %s "
                        "does not lead to the graph output along one chain",
                        crucible_graph_tensor(g, t)->name);
            break;
        }
        const crucible_node_view *n = g->nodes[ci];
        int32_t out = n->outputs[0];
        int64_t cur_n = (int64_t)crucible_tensor_numel(crucible_graph_tensor(g, t));
        if (n->op == CRUCIBLE_OP_ADD) {
            const crucible_tensor_view *c = add_const(g, n);
            const float *cd = c->data;
            uint64_t cn = crucible_tensor_numel(c);
            if (after_dense) {
                sp_layer *L = &plan->layers[plan->n_layers - 1];
                for (int64_t m = 0; m < L->M; m++)
                    L->bias[m] += cd[cn == 1 ? 0 : m];
            } else {
                if (!pre) {
                    pre_n = cur_n;
                    pre = sp_calloc(h, (size_t)pre_n, sizeof(double));
                    if (!pre) {
                        rc = CRUCIBLE_E_NOMEM;
                        break;
                    }
                }
                for (int64_t k = 0; k < pre_n; k++) pre[k] += cd[cn == 1 ? 0 : k];
            }
        } else if (n->op == CRUCIBLE_OP_DENSE) {
            sp_layer *L = &plan->layers[plan->n_layers++];
            const crucible_tensor_view *w = crucible_graph_tensor(g, n->inputs[1]);
            const crucible_tensor_view *b =
                n->n_inputs > 2 ? crucible_graph_tensor(g, n->inputs[2]) : NULL;
            L->node = ci;
            L->name = n->name;
            L->relu_node = SP_NONE;
            L->M = w->dims[0];
            L->K = w->dims[1];
            L->W = w->data;
            L->P = L->M;
            L->c_out = L->M, L->h_out = 1, L->w_out = 1;
            L->bias = sp_calloc(h, (size_t)L->M, sizeof(double));
            if (!L->bias) {
                rc = CRUCIBLE_E_NOMEM;
                break;
            }
            sp_geometry(L->K, L->M, p, &L->geom);
            for (int64_t m = 0; m < L->M; m++) {
                double acc = b ? (double)((const float *)b->data)[m] : 0.0;
                if (pre)
                    for (int64_t k = 0; k < L->K; k++)
                        acc += (double)L->W[m * L->K + k] * pre[k];
                L->bias[m] = acc;
            }
            sp_free(h, pre, (size_t)pre_n, sizeof(double));
            pre = NULL;
            after_dense = 1;
        } else if (n->op == CRUCIBLE_OP_CONV2D) {
            /* unrolled: one crossbar column pair per output position */
            sp_layer *L = &plan->layers[plan->n_layers++];
            const crucible_tensor_view *x = crucible_graph_tensor(g, n->inputs[0]);
            const crucible_tensor_view *w = crucible_graph_tensor(g, n->inputs[1]);
            const crucible_tensor_view *o = crucible_graph_tensor(g, out);
            const crucible_tensor_view *b = n->n_inputs > 2 && n->inputs[2] >= 0
                                                ? crucible_graph_tensor(g, n->inputs[2]) : NULL;
            L->node = ci;
            L->name = n->name;
            L->relu_node = SP_NONE;
            L->conv = 1;
            L->c_in = x->dims[1], L->h_in = x->dims[2], L->w_in = x->dims[3];
            L->c_out = o->dims[1], L->h_out = o->dims[2], L->w_out = o->dims[3];
            L->kh = w->dims[2], L->kw = w->dims[3];
            L->K = L->c_in * L->h_in * L->w_in;
            L->M = L->c_out * L->h_out * L->w_out;
            L->P = L->M;
            const int64_t sh = attr_at(n, "strides", 0, 1), sw = attr_at(n, "strides", 1, 1);
            const int64_t top = attr_at(n, "pads", 0, 0), left = attr_at(n, "pads", 1, 0);
            const int64_t dh = attr_at(n, "dilations", 0, 1), dw = attr_at(n, "dilations", 1, 1);
            L->W_own = sp_calloc(h, (size_t)(L->M * L->K), sizeof(float));
            L->bias = sp_calloc(h, (size_t)L->M, sizeof(double));
            if (!L->W_own || !L->bias) {
                rc = CRUCIBLE_E_NOMEM;
                break;
            }
            const float *wd = w->data;
            for (int64_t co = 0; co < L->c_out; co++)
                for (int64_t oy = 0; oy < L->h_out; oy++)
                    for (int64_t ox = 0; ox < L->w_out; ox++) {
                        const int64_t m = (co * L->h_out + oy) * L->w_out + ox;
                        for (int64_t ic = 0; ic < L->c_in; ic++)
                            for (int64_t ky = 0; ky < L->kh; ky++)
                                for (int64_t kx = 0; kx < L->kw; kx++) {
                                    int64_t iy = oy * sh - top + ky * dh;
                                    int64_t ix = ox * sw - left + kx * dw;
                                    if (iy < 0 || iy >= L->h_in || ix < 0 || ix >= L->w_in)
                                        continue;
                                    L->W_own[m * L->K + (ic * L->h_in + iy) * L->w_in + ix] =
                                        wd[((co * L->c_in + ic) * L->kh + ky) * L->kw + kx];
                                }
                        L->bias[m] = b ? (double)((const float *)b->data)[co] : 0.0;
                    }
            L->W = L->W_own;
            sp_geometry(L->K, L->M, p, &L->geom);
            if (pre)
                for (int64_t m = 0; m < L->M; m++)
                    for (int64_t k = 0; k < L->K; k++)
                        L->bias[m] += (double)L->W[m * L->K + k] * pre[k];
            sp_free(h, pre, (size_t)pre_n, sizeof(double));
            pre = NULL;
            after_dense = 1;
        } else if (n->op == CRUCIBLE_OP_MAX_POOL2D) {
            sp_layer *L = &plan->layers[plan->n_layers - 1];
            const crucible_tensor_view *x = crucible_graph_tensor(g, n->inputs[0]);
            const crucible_tensor_view *o = crucible_graph_tensor(g, out);
            if (L->pool || x->dims[1] * x->dims[2] * x->dims[3] != L->M) {
                rc = refuse(why, why_len, CRUCIBLE_E_UNSUPPORTED, "node %s: "
                            "max_pool2d must pool the %lld outputs of layer %s "
                            "(one pooling per layer)", n->name, (long long)L->M,
                            L->name);
                break;
            }
            L->pool = 1;
            L->c_out = x->dims[1], L->h_out = x->dims[2], L->w_out = x->dims[3];
            L->p_kh = attr_at(n, "kernel", 0, 1), L->p_kw = attr_at(n, "kernel", 1, 1);
            L->p_sh = attr_at(n, "strides", 0, 1), L->p_sw = attr_at(n, "strides", 1, 1);
            L->p_dh = attr_at(n, "dilations", 0, 1), L->p_dw = attr_at(n, "dilations", 1, 1);
            L->p_top = attr_at(n, "pads", 0, 0), L->p_left = attr_at(n, "pads", 1, 0);
            L->p_oh = o->dims[2], L->p_ow = o->dims[3];
            L->P = L->c_out * L->p_oh * L->p_ow;
            after_dense = 0;
        } else if (n->op == CRUCIBLE_OP_RELU) {
            plan->layers[plan->n_layers - 1].relu_node = ci;
            plan->layers[plan->n_layers - 1].relu_name = n->name;
            after_dense = 0;
        } else if (n->op == CRUCIBLE_OP_SOFTMAX) {
            plan->softmax_node = ci;
        }
        t = out;
    }
    sp_free(h, pre, (size_t)pre_n, sizeof(double));
    if (!rc && !is_graph_output(g, t))
        rc = refuse(why, why_len, CRUCIBLE_E_UNSUPPORTED, "the chain from the "
                    "graph input does not reach the graph output");
    if (!rc && plan->n_layers != n_dense)
        rc = refuse(why, why_len, CRUCIBLE_E_UNSUPPORTED, "%u dense layers "
                    "are off the chain from the input to the output",
                    n_dense - plan->n_layers);
    if (rc) {
        sp_plan_free(plan);
        return rc;
    }
    for (uint32_t l = 1; l < plan->n_layers; l++)
        if (plan->layers[l].K != plan->layers[l - 1].P) {
            sp_plan_free(plan);
            return refuse(why, why_len, CRUCIBLE_E_UNSUPPORTED, "layer %s has "
                          "K = %lld inputs after a layer of %lld outputs",
                          plan->layers[l].name, (long long)plan->layers[l].K,
                          (long long)plan->layers[l - 1].P);
        }
    if (plan->layers[0].K != plan->n_in) {
        sp_plan_free(plan);
        return refuse(why, why_len, CRUCIBLE_E_UNSUPPORTED, "the first layer "
                      "does not take the whole graph input");
    }
    const sp_layer *last = &plan->layers[plan->n_layers - 1];
    plan->n_out = last->M;
    plan->out_relu = last->relu_node != SP_NONE;
    plan->out_name = crucible_graph_tensor(g, g->outputs[0])->name;

    if ((rc = plan_bounds(plan, p))) {
        sp_plan_free(plan);
        return rc;
    }
    if (p->calibrated && (rc = plan_calibrate(plan, p, why, why_len))) {
        sp_plan_free(plan);
        return rc;
    }
    for (uint32_t l = 0; l < plan->n_layers; l++) {
        sp_layer *L = &plan->layers[l];
        L->y_range = L->y_bound;
        L->t_range = L->t_bound;
        if (L->y_cal > 0) L->y_range = fmin(L->y_bound, p->headroom * L->y_cal);
        if (L->t_cal > 0) L->t_range = fmin(L->t_bound, p->headroom * L->t_cal);
    }
    return CRUCIBLE_OK;
}

/* ---- realisation ---------------------------------------------------------*/
void sp_realise(const sp_plan *plan, const sp_params *p, const sp_tech *t,
                sp_real *real)
{
    double s_in = p->dac_vmax / fmax(fabs(p->in_min), fabs(p->in_max));
    for (uint32_t l = 0; l < plan->n_layers; l++) {
        const sp_layer *L = &plan->layers[l];
        sp_real *r = &real[l];
        memset(r, 0, sizeof *r);
        double w_eff = fmax(L->w_max, L->b_max * s_in / p->v_ref);
        if (!(w_eff > 0)) w_eff = 1.0;
        r->s_in = s_in;
        r->g_scale = 1.0 / (t->r_min * w_eff);
        r->g_bias = r->g_scale * s_in / p->v_ref;
        r->r_f = sp_series_round(p->v_fs / (r->g_scale * s_in * L->t_range),
                                 t->series);
        double gain = p->v_fs / L->y_range / (r->r_f * r->g_scale * s_in);
        r->r_a = sp_series_round(p->r_stage, t->series);
        r->r_fb = sp_series_round(gain * r->r_a, t->series);
        r->gain = r->r_fb / r->r_a;
        r->s_out = r->r_f * r->gain * r->g_scale * s_in;

        /* components */
        sp_counts *c = &r->counts;
        const double g_min = 1.0 / t->r_max;
        int64_t devices = 0;
        double p_xbar = 0, v_row = s_in * L->in_absmax / 2.0;
        for (int64_t i = 0; i < L->M * L->K; i++) {
            double w = fabs((double)L->W[i]);
            if (w == 0) continue;
            if (r->g_scale * w < g_min) {
                c->dropped++;
                if (w > c->max_dropped_w) c->max_dropped_w = w;
                continue;
            }
            devices++;
            p_xbar += r->g_scale * w * v_row * v_row;
        }
        for (int64_t m = 0; m < L->M; m++) {
            double b = fabs(L->bias[m]);
            if (b == 0) continue;
            if (r->g_bias * b < g_min) {
                c->dropped++;
                continue;
            }
            devices++;
            p_xbar += r->g_bias * b * p->v_ref * p->v_ref;
        }
        if (p->off_rmax) devices = (int64_t)L->geom.crosspoints;
        const int relu = L->relu_node != SP_NONE;
        c->resistors = devices + L->M * (4 * L->geom.tiles_r + 2);
        c->devices = t->pcm ? devices : 0;
        c->opamps = 2 * L->M * L->geom.tiles_r + L->M;
        if (relu && t->relu_diode) {
            c->resistors += 2 * L->M;
            c->opamps += L->M;
            c->diodes = 2 * L->M;
        } else if (relu) {
            c->limiters = L->M;
        }
        r->power_w = (double)c->opamps * 2.0 * t->supply_v * t->iq_a + p_xbar;
        if (t->gbw_hz > 0) {
            /* time constants (noise gain / 2 pi GBW) of the TIA (noise gain
             * 1 + R_f * its column conductance, the largest column), the
             * difference stage (1 + gain) and the rectifier (2), in
             * series; settle to half an ADC LSB */
            double gcol = 0;
            for (int64_t m = 0; m < L->M; m++)
                for (int64_t ti = 0; ti < L->geom.tiles_r; ti++) {
                    double gp = 0, gn = 0;
                    for (int64_t k = ti * p->xbar_rows;
                         k < (ti + 1) * p->xbar_rows && k <= L->K; k++) {
                        double w = k == L->K ? L->bias[m] : (double)L->W[m * L->K + k];
                        double gs = k == L->K ? r->g_bias : r->g_scale;
                        if (w > 0) gp += gs * w; else gn -= gs * w;
                    }
                    gcol = fmax(gcol, fmax(gp, gn));
                }
            double tau = ((1.0 + r->r_f * gcol) + (1.0 + r->gain) +
                          (relu ? 2.0 : 0.0)) / (2.0 * SP_PI * t->gbw_hz);
            r->settle_s = tau * log(pow(2.0, p->adc_bits + 1));
        } else {
            r->settle_s = -1;
        }
        s_in = r->s_out;
    }
}
