/*
 * onnx_lower_nn.c - lowering of the neural-network ops: Conv,
 * ConvTranspose, pooling, Gemm / MatMul (dense when the weight is a
 * constant matrix), BatchNormalization (folded into the preceding conv2d or
 * dense when that is its only consumer), Instance/Layer/MeanVariance
 * normalisation as compositions, Softmax / LogSoftmax and
 * Quantize/DequantizeLinear, and the integer ops MatMulInteger,
 * ConvInteger, QLinearMatMul, QLinearConv.
 *
 * 1-D convolutions and pools are lowered as 2-D ones on a [N, C, 1, L]
 * view (reshape in and out).
 */
#include "onnx_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define TRY(expr)                                                           \
    do {                                                                    \
        int rc_ = (expr);                                                   \
        if (rc_) return rc_;                                                \
    } while (0)
#define NEWV(var, expr)                                                     \
    do {                                                                    \
        var = (expr);                                                       \
        if (var < 0) return var;                                            \
    } while (0)

static int need_f32(ox_ctx *c, int32_t v, const char *what)
{
    TRY(ox_operand_ok(c, v, what));
    if (c->vals[v].dtype != CRUCIBLE_DT_F32)
        return ox_unsup(c, "%s is %s; the IR computes this op on f32 only",
                        what, ox_dtype_name(c->vals[v].dtype));
    return OX_OK;
}

/* Integer attribute list of exactly n values (default dflt when absent). */
static int attr_list(ox_ctx *c, const char *name, uint32_t n, int64_t dflt,
                     int64_t lo, int64_t *dst)
{
    uint32_t cnt;
    const int64_t *v = oa_ints(c, name, &cnt);
    for (uint32_t i = 0; i < n; i++) dst[i] = dflt;
    if (!v) return OX_OK;
    if (cnt != n)
        return ox_unsup(c, "attribute %s has %u values, %u expected", name,
                        cnt, n);
    for (uint32_t i = 0; i < n; i++) {
        if (v[i] < lo || v[i] > INT32_MAX)
            return ox_unsup(c, "attribute %s[%u] = %lld is out of range", name,
                            i, (long long)v[i]);
        dst[i] = v[i];
    }
    return OX_OK;
}

/* Spatial geometry of a conv / pool: ns spatial axes (1 or 2). */
typedef struct geo {
    int ns;
    int64_t in[2], k[2], s[2], d[2], pb[2], pe[2], op[2], out[2];
} geo;

/* pads from auto_pad (conv and pools): SAME_* keeps out = ceil(in / s). */
static int auto_pad(ox_ctx *c, geo *g)
{
    const char *ap = oa_s(c, "auto_pad", "NOTSET");
    if (!*ap || !strcmp(ap, "NOTSET")) return OX_OK;
    if (!strcmp(ap, "VALID")) {
        for (int i = 0; i < g->ns; i++) g->pb[i] = g->pe[i] = 0;
        return OX_OK;
    }
    int upper = !strcmp(ap, "SAME_UPPER");
    if (!upper && strcmp(ap, "SAME_LOWER"))
        return ox_unsup(c, "auto_pad '%s'", ap);
    for (int i = 0; i < g->ns; i++) {
        if (g->in[i] <= 0)
            return ox_unsup(c, "auto_pad %s needs the input's spatial size",
                            ap);
        int64_t out = (g->in[i] + g->s[i] - 1) / g->s[i];
        int64_t ek = (g->k[i] - 1) * g->d[i] + 1;
        int64_t total = (out - 1) * g->s[i] + ek - g->in[i];
        if (total < 0) total = 0;
        g->pb[i] = upper ? total / 2 : total - total / 2;
        g->pe[i] = total - g->pb[i];
    }
    return OX_OK;
}

/* Reads strides, dilations, pads (2*ns), then applies auto_pad. */
static int read_geo(ox_ctx *c, geo *g, int dilations)
{
    int64_t pads[4];
    TRY(attr_list(c, "strides", (uint32_t)g->ns, 1, 1, g->s));
    if (dilations) TRY(attr_list(c, "dilations", (uint32_t)g->ns, 1, 1, g->d));
    else g->d[0] = g->d[1] = 1;
    TRY(attr_list(c, "pads", 2u * (uint32_t)g->ns, 0, 0, pads));
    for (int i = 0; i < g->ns; i++) {
        g->pb[i] = pads[i];
        g->pe[i] = pads[i + g->ns];
    }
    return auto_pad(c, g);
}

/* IR attributes for a 2-D view of g (a 1-D g gets a trivial H axis). */
static int geo_attrs(ox_ctx *c, int32_t node, const geo *g, int pads_only)
{
    int64_t s[2], d[2], p[4];
    if (g->ns == 1) {
        s[0] = 1, s[1] = g->s[0];
        d[0] = 1, d[1] = g->d[0];
        p[0] = 0, p[1] = g->pb[0], p[2] = 0, p[3] = g->pe[0];
    } else {
        s[0] = g->s[0], s[1] = g->s[1];
        d[0] = g->d[0], d[1] = g->d[1];
        p[0] = g->pb[0], p[1] = g->pb[1], p[2] = g->pe[0], p[3] = g->pe[1];
    }
    TRY(ox_attr_ints(c, node, "strides", 2, s));
    TRY(ox_attr_ints(c, node, "pads", 4, p));
    if (!pads_only) TRY(ox_attr_ints(c, node, "dilations", 2, d));
    return OX_OK;
}

/* x [N, C, L] -> [N, C, 1, L] (for 1-D ops). */
static int to_2d(ox_ctx *c, int32_t x, const char *sfx, int32_t *res)
{
    const ox_val *v = &c->vals[x];
    int64_t dims[4] = {v->dims[0], v->dims[1], 1, v->dims[2]};
    return ox_reshape(c, x, 4, dims, sfx, -1, res);
}

/* The op's 4-D result y2 [N, C, 1, L] as the ONNX output [N, C, L]. */
static int from_2d(ox_ctx *c, int32_t y2, const int64_t *dims3)
{
    int32_t y, res;
    NEWV(y, ox_out(c, 0, c->vals[y2].dtype, 3, dims3));
    return ox_reshape(c, y2, 3, dims3, "to1d", y, &res);
}

/* ---- Conv -------------------------------------------------------------------*/
/* Checks and geometry of a Conv-like node (Conv, ConvInteger, QLinearConv)
 * with input x and weight w: fills g, *group and the output dims odims
 * (N, M, spatial...; 0 where unknown). No side effects. */
static int conv_geo(ox_ctx *c, int32_t x, int32_t w, geo *g, int64_t *group,
                    int64_t *odims)
{
    const ox_val *xv = &c->vals[x], *wv = &c->vals[w];
    if (xv->rank != 3 && xv->rank != 4)
        return ox_unsup(c, "%d-D convolution (1-D and 2-D are supported)",
                        (int)xv->rank - 2);
    if (wv->rank != xv->rank)
        return ox_unsup(c, "weight rank %d for input rank %d", (int)wv->rank,
                        (int)xv->rank);
    memset(g, 0, sizeof *g);
    g->ns = xv->rank - 2;
    int64_t ks[2];
    TRY(attr_list(c, "kernel_shape", (uint32_t)g->ns, 0, 1, ks));
    for (int i = 0; i < g->ns; i++) {
        g->in[i] = xv->dims[2 + i];
        g->k[i] = wv->dims[2 + i] > 0 ? wv->dims[2 + i] : ks[i];
        if (g->k[i] <= 0) return ox_unsup(c, "kernel size unknown");
        if (ks[i] && wv->dims[2 + i] > 0 && ks[i] != wv->dims[2 + i])
            return ox_unsup(c, "kernel_shape does not match the weight");
    }
    *group = oa_i(c, "group", 1);
    if (*group < 1 || *group > INT32_MAX)
        return ox_unsup(c, "group %lld", (long long)*group);
    TRY(read_geo(c, g, 1));
    odims[0] = xv->dims[0];
    odims[1] = wv->dims[0];
    for (int i = 0; i < g->ns; i++) {
        odims[2 + i] = 0;
        if (g->in[i] <= 0) continue;
        int64_t ek = (g->k[i] - 1) * g->d[i] + 1;
        int64_t span = g->in[i] + g->pb[i] + g->pe[i];
        if (span < ek)
            return ox_unsup(c, "the kernel is larger than the padded input");
        odims[2 + i] = (span - ek) / g->s[i] + 1;
    }
    if (xv->dims[1] > 0 && wv->dims[1] > 0 &&
        xv->dims[1] != wv->dims[1] * *group)
        return ox_unsup(c, "input channels %lld do not match weight %lld x "
                        "group %lld",
                        (long long)xv->dims[1], (long long)wv->dims[1],
                        (long long)*group);
    return OX_OK;
}

int ox_lower_conv(ox_ctx *c)
{
    int32_t x = ox_in(c, 0), w = ox_in(c, 1), b = ox_in(c, 2);
    TRY(need_f32(c, x, "input X"));
    TRY(need_f32(c, w, "weight W"));
    if (b >= 0) TRY(need_f32(c, b, "bias B"));
    geo g;
    int64_t group = 1, odims[4] = {0, 0, 0, 0};
    TRY(conv_geo(c, x, w, &g, &group, odims));
    const ox_val *wv = &c->vals[w];
    int32_t ins[3] = {x, w, b}, n;
    uint32_t ni = b >= 0 ? 3 : 2;
    int32_t y;
    if (g.ns == 1) {
        int64_t wd[4] = {wv->dims[0], wv->dims[1], 1, wv->dims[2]};
        int64_t yd[4] = {odims[0], odims[1], 1, odims[2]};
        TRY(to_2d(c, x, "in2d", &ins[0]));
        TRY(ox_reshape(c, w, 4, wd, "w2d", -1, &ins[1]));
        NEWV(y, ox_tmp(c, "out2d", CRUCIBLE_DT_F32, 4, yd));
    } else {
        NEWV(y, ox_out(c, 0, CRUCIBLE_DT_F32, 4, odims));
    }
    NEWV(n, ox_node_new(c, CRUCIBLE_OP_CONV2D, NULL, ni, ins, 1, &y));
    TRY(geo_attrs(c, n, &g, 0));
    TRY(ox_attr_int(c, n, "group", group));
    if (g.ns == 1) return from_2d(c, y, odims);
    return OX_OK;
}

/* ---- ConvTranspose ----------------------------------------------------------*/
int ox_lower_conv_transpose(ox_ctx *c)
{
    int32_t x = ox_in(c, 0), w = ox_in(c, 1), b = ox_in(c, 2);
    TRY(need_f32(c, x, "input X"));
    TRY(need_f32(c, w, "weight W"));
    if (b >= 0) TRY(need_f32(c, b, "bias B"));
    const ox_val *xv = &c->vals[x], *wv = &c->vals[w];
    if (xv->rank != 3 && xv->rank != 4)
        return ox_unsup(c, "%d-D transposed convolution (1-D and 2-D are "
                        "supported)",
                        (int)xv->rank - 2);
    if (wv->rank != xv->rank) return ox_unsup(c, "weight rank mismatch");
    geo g;
    memset(&g, 0, sizeof g);
    g.ns = xv->rank - 2;
    int64_t ks[2], pads[4];
    TRY(attr_list(c, "kernel_shape", (uint32_t)g.ns, 0, 1, ks));
    for (int i = 0; i < g.ns; i++) {
        g.in[i] = xv->dims[2 + i];
        g.k[i] = wv->dims[2 + i] > 0 ? wv->dims[2 + i] : ks[i];
        if (g.k[i] <= 0) return ox_unsup(c, "kernel size unknown");
    }
    int64_t group = oa_i(c, "group", 1);
    if (group < 1 || group > INT32_MAX) return ox_unsup(c, "invalid group");
    TRY(attr_list(c, "strides", (uint32_t)g.ns, 1, 1, g.s));
    TRY(attr_list(c, "dilations", (uint32_t)g.ns, 1, 1, g.d));
    TRY(attr_list(c, "output_padding", (uint32_t)g.ns, 0, 0, g.op));
    TRY(attr_list(c, "pads", 2u * (uint32_t)g.ns, 0, 0, pads));
    for (int i = 0; i < g.ns; i++) g.pb[i] = pads[i], g.pe[i] = pads[i + g.ns];
    const char *ap = oa_s(c, "auto_pad", "NOTSET");
    uint32_t nos;
    const int64_t *os = oa_ints(c, "output_shape", &nos);
    int same = !strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER");
    if (*ap && strcmp(ap, "NOTSET") && strcmp(ap, "VALID") && !same)
        return ox_unsup(c, "auto_pad '%s'", ap);
    if (!strcmp(ap, "VALID"))
        for (int i = 0; i < g.ns; i++) g.pb[i] = g.pe[i] = 0;
    if (os && nos != (uint32_t)g.ns && nos != (uint32_t)g.ns + 2)
        return ox_unsup(c, "output_shape has %u values", nos);
    for (int i = 0; i < g.ns; i++) {
        if (g.in[i] <= 0) return ox_unsup(c, "the input's spatial size is unknown");
        int64_t ek = (g.k[i] - 1) * g.d[i] + 1;
        int64_t full = g.s[i] * (g.in[i] - 1) + g.op[i] + ek;
        int64_t target = -1;
        if (os) target = os[nos - (uint32_t)g.ns + (uint32_t)i];
        else if (same) target = g.in[i] * g.s[i];
        if (target >= 0) {
            int64_t total = full - target;
            if (total < 0) { /* grow the output with output_padding */
                g.op[i] += -total;
                total = 0;
            }
            if (!strcmp(ap, "SAME_UPPER")) {
                g.pb[i] = total / 2;
                g.pe[i] = total - total / 2;
            } else {
                g.pb[i] = total - total / 2;
                g.pe[i] = total / 2;
            }
        }
        if (g.op[i] >= g.s[i] && g.op[i] >= g.d[i])
            return ox_unsup(c, "output padding %lld is not smaller than the "
                            "stride or the dilation",
                            (long long)g.op[i]);
        g.out[i] = g.s[i] * (g.in[i] - 1) + g.op[i] + ek - g.pb[i] - g.pe[i];
        if (g.out[i] < 1) return ox_unsup(c, "the output would be empty");
    }
    int64_t cout = wv->dims[1] > 0 ? wv->dims[1] * group : 0;
    int64_t odims[4] = {xv->dims[0], cout, g.out[0], g.out[1]};
    int32_t ins[3] = {x, w, b}, n, y;
    uint32_t ni = b >= 0 ? 3 : 2;
    if (g.ns == 1) {
        int64_t wd[4] = {wv->dims[0], wv->dims[1], 1, wv->dims[2]};
        int64_t yd[4] = {odims[0], odims[1], 1, odims[2]};
        TRY(to_2d(c, x, "in2d", &ins[0]));
        TRY(ox_reshape(c, w, 4, wd, "w2d", -1, &ins[1]));
        NEWV(y, ox_tmp(c, "out2d", CRUCIBLE_DT_F32, 4, yd));
    } else {
        NEWV(y, ox_out(c, 0, CRUCIBLE_DT_F32, 4, odims));
    }
    NEWV(n, ox_node_new(c, CRUCIBLE_OP_CONV_TRANSPOSE2D, NULL, ni, ins, 1, &y));
    TRY(geo_attrs(c, n, &g, 0));
    TRY(ox_attr_int(c, n, "group", group));
    int64_t op2[2] = {g.ns == 1 ? 0 : g.op[0], g.ns == 1 ? g.op[0] : g.op[1]};
    if (op2[0] || op2[1]) TRY(ox_attr_ints(c, n, "output_padding", 2, op2));
    if (g.ns == 1) return from_2d(c, y, odims);
    return OX_OK;
}

/* ---- pooling ----------------------------------------------------------------*/
int ox_lower_pool(ox_ctx *c)
{
    int is_max = !strcmp(c->cur->op_type, "MaxPool");
    int32_t x = ox_in(c, 0);
    TRY(need_f32(c, x, "input X"));
    const ox_val *xv = &c->vals[x];
    if (is_max && ox_out_used(c, 1))
        return ox_unsup(c, "the Indices output is not supported");
    if (xv->rank != 3 && xv->rank != 4)
        return ox_unsup(c, "%d-D pooling (1-D and 2-D are supported)",
                        (int)xv->rank - 2);
    geo g;
    memset(&g, 0, sizeof g);
    g.ns = xv->rank - 2;
    TRY(attr_list(c, "kernel_shape", (uint32_t)g.ns, 0, 1, g.k));
    for (int i = 0; i < g.ns; i++) {
        if (!g.k[i]) return ox_unsup(c, "kernel_shape is required");
        g.in[i] = xv->dims[2 + i];
    }
    TRY(read_geo(c, &g, is_max && c->cur_opset >= 10));
    int ceil_mode = c->cur_opset >= 10 && oa_i(c, "ceil_mode", 0) != 0;
    int cip = !is_max && c->cur_opset >= 7 &&
              oa_i(c, "count_include_pad", 0) != 0;
    int64_t odims[4] = {xv->dims[0], xv->dims[1], 0, 0};
    for (int i = 0; i < g.ns; i++) {
        if (g.in[i] <= 0) continue;
        int64_t ek = (g.k[i] - 1) * g.d[i] + 1;
        int64_t span = g.in[i] + g.pb[i] + g.pe[i];
        if (span < ek)
            return ox_unsup(c, "the kernel is larger than the padded input");
        int64_t o = (span - ek) / g.s[i] + 1;
        if (ceil_mode && (span - ek) % g.s[i]) {
            o++;
            if ((o - 1) * g.s[i] >= g.in[i] + g.pb[i]) o--;
        }
        odims[2 + i] = o;
    }
    int32_t in = x, y, n;
    if (g.ns == 1) {
        int64_t yd[4] = {odims[0], odims[1], 1, odims[2]};
        TRY(to_2d(c, x, "in2d", &in));
        NEWV(y, ox_tmp(c, "out2d", CRUCIBLE_DT_F32, 4, yd));
    } else {
        NEWV(y, ox_out(c, 0, CRUCIBLE_DT_F32, 4, odims));
    }
    NEWV(n, ox_node_new(c, is_max ? CRUCIBLE_OP_MAX_POOL2D
                                  : CRUCIBLE_OP_AVG_POOL2D,
                        NULL, 1, &in, 1, &y));
    int64_t k2[2] = {g.ns == 1 ? 1 : g.k[0], g.ns == 1 ? g.k[0] : g.k[1]};
    TRY(ox_attr_ints(c, n, "kernel", 2, k2));
    TRY(geo_attrs(c, n, &g, !is_max));
    if (ceil_mode) TRY(ox_attr_int(c, n, "ceil_mode", 1));
    if (cip) TRY(ox_attr_int(c, n, "count_include_pad", 1));
    if (g.ns == 1) return from_2d(c, y, odims);
    return OX_OK;
}

int ox_lower_global_pool(ox_ctx *c)
{
    int32_t x = ox_in(c, 0);
    TRY(need_f32(c, x, "input X"));
    const ox_val *xv = &c->vals[x];
    if (xv->rank < 3) return ox_unsup(c, "input must be [N, C, spatial...]");
    int64_t dims[CRUCIBLE_MAX_RANK];
    for (int32_t i = 0; i < xv->rank; i++) dims[i] = i < 2 ? xv->dims[i] : 1;
    int32_t y, n;
    NEWV(y, ox_out(c, 0, CRUCIBLE_DT_F32, xv->rank, dims));
    NEWV(n, ox_node_new(c, strcmp(c->cur->op_type, "GlobalMaxPool")
                               ? CRUCIBLE_OP_GLOBAL_AVG_POOL
                               : CRUCIBLE_OP_GLOBAL_MAX_POOL,
                        NULL, 1, &x, 1, &y));
    return OX_OK;
}

/* ---- Gemm, MatMul -----------------------------------------------------------*/
/* W [N, K] from a constant B ([K, N], or [N, K] when transposed), times
 * alpha. */
static int const_weight(ox_ctx *c, int32_t bv, int trans, double alpha,
                        int32_t *res)
{
    const ox_val *B = &c->vals[bv];
    int64_t K = trans ? B->dims[1] : B->dims[0];
    int64_t N = trans ? B->dims[0] : B->dims[1];
    if (!trans && alpha == 1.0) {
        /* transpose [K, N] -> [N, K] */
    }
    uint64_t ne = (uint64_t)K * (uint64_t)N;
    float *d = ox_alloc(c, (size_t)ne * 4);
    if (!d) return CRUCIBLE_E_NOMEM;
    float fa = (float)alpha;
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++) {
            uint64_t src = trans ? (uint64_t)(n * K + k) : (uint64_t)(k * N + n);
            float v = (float)ox_get_f(B, src);
            d[n * K + k] = alpha == 1.0 ? v : v * fa;
        }
    int64_t dims[2] = {N, K};
    NEWV(*res, ox_const(c, "weight", CRUCIBLE_DT_F32, 2, dims, d, (size_t)ne * 4));
    return OX_OK;
}

static int transpose2(ox_ctx *c, int32_t a, const char *sfx, int32_t *res)
{
    const ox_val *av = &c->vals[a];
    int64_t dims[2] = {av->dims[1], av->dims[0]}, perm[2] = {1, 0};
    int32_t y, n;
    NEWV(y, ox_tmp(c, sfx, av->dtype, 2, dims));
    NEWV(n, ox_node_new(c, CRUCIBLE_OP_TRANSPOSE, sfx, 1, &a, 1, &y));
    TRY(ox_attr_ints(c, n, "perm", 2, perm));
    *res = y;
    return OX_OK;
}

int ox_lower_gemm(ox_ctx *c)
{
    int32_t a = ox_in(c, 0), b = ox_in(c, 1), cc = ox_in(c, 2);
    TRY(need_f32(c, a, "input A"));
    TRY(need_f32(c, b, "input B"));
    if (cc >= 0) TRY(need_f32(c, cc, "input C"));
    const ox_val *av = &c->vals[a], *bv = &c->vals[b];
    if (av->rank != 2 || bv->rank != 2)
        return ox_unsup(c, "A and B must be matrices");
    int ta = oa_i(c, "transA", 0) != 0, tb = oa_i(c, "transB", 0) != 0;
    double alpha = oa_f(c, "alpha", 1.0), beta = oa_f(c, "beta", 1.0);
    int64_t M = ta ? av->dims[1] : av->dims[0];
    int64_t K = ta ? av->dims[0] : av->dims[1];
    int64_t N = tb ? bv->dims[0] : bv->dims[1];
    int64_t Kb = tb ? bv->dims[1] : bv->dims[0];
    if (K > 0 && Kb > 0 && K != Kb)
        return ox_unsup(c, "inner dimensions %lld and %lld differ",
                        (long long)K, (long long)Kb);
    int64_t od[2] = {M, N};
    if (cc >= 0 && beta == 0.0) cc = -1;
    const ox_val *cv = cc >= 0 ? &c->vals[cc] : NULL;
    if (cv) {
        int32_t r;
        int64_t d[2];
        if (cv->rank > 2 || ox_bcast(cv->rank, cv->dims, 2, od, &r, d) ||
            (M > 0 && d[0] != M) || (N > 0 && d[1] != N))
            return ox_unsup(c, "C does not broadcast to [M, N]");
    }
    int32_t A = a, res;
    if (ta) {
        if (av->is_const) {
            /* fold: transposing a constant A */
            const ox_val *x = av;
            int64_t R = x->dims[0], C = x->dims[1];
            float *d = ox_alloc(c, (size_t)(R * C) * 4);
            if (!d) return CRUCIBLE_E_NOMEM;
            for (int64_t i = 0; i < R; i++)
                for (int64_t j = 0; j < C; j++)
                    d[j * R + i] = (float)ox_get_f(x, (uint64_t)(i * C + j));
            int64_t dims[2] = {C, R};
            NEWV(A, ox_const(c, "A_t", CRUCIBLE_DT_F32, 2, dims, d,
                             (size_t)(R * C) * 4));
        } else {
            TRY(transpose2(c, a, "A_t", &A));
        }
    }
    bv = &c->vals[b];
    cv = cc >= 0 ? &c->vals[cc] : NULL;
    if (bv->is_const && ox_shape_known(bv)) {
        int32_t W, bias = -1;
        TRY(const_weight(c, b, tb, alpha, &W));
        int add_after = 0;
        cv = cc >= 0 ? &c->vals[cc] : NULL;
        if (cv && cv->is_const && ox_shape_known(cv)) {
            uint64_t n = ox_val_numel(cv);
            int per_col = (cv->rank == 1 && (int64_t)n == N) ||
                          (cv->rank == 2 && cv->dims[0] == 1 && cv->dims[1] == N);
            if (per_col || n == 1) {
                float *d = ox_alloc(c, (size_t)N * 4);
                if (!d) return CRUCIBLE_E_NOMEM;
                for (int64_t j = 0; j < N; j++) {
                    float v = (float)ox_get_f(cv, n == 1 ? 0 : (uint64_t)j);
                    d[j] = beta == 1.0 ? v : (float)beta * v;
                }
                NEWV(bias, ox_const(c, "bias", CRUCIBLE_DT_F32, 1, &N, d,
                                    (size_t)N * 4));
            } else {
                add_after = 1;
            }
        } else if (cv) {
            add_after = 1;
        }
        int32_t ins[3] = {A, W, bias}, y, n;
        if (add_after) NEWV(y, ox_tmp(c, "dense", CRUCIBLE_DT_F32, 2, od));
        else NEWV(y, ox_out(c, 0, CRUCIBLE_DT_F32, 2, od));
        NEWV(n, ox_node_new(c, CRUCIBLE_OP_DENSE, add_after ? "dense" : NULL,
                            bias >= 0 ? 3 : 2, ins, 1, &y));
        if (!add_after) return OX_OK;
        int32_t cs = cc, z;
        cv = &c->vals[cc];
        if (beta != 1.0 && cv->is_const && ox_shape_known(cv)) {
            uint64_t ne = ox_val_numel(cv);
            float *d = ox_alloc(c, (size_t)ne * 4);
            if (!d) return CRUCIBLE_E_NOMEM;
            for (uint64_t j = 0; j < ne; j++)
                d[j] = (float)beta * (float)ox_get_f(cv, j);
            NEWV(cs, ox_const(c, "beta_c", CRUCIBLE_DT_F32, cv->rank, cv->dims,
                              d, (size_t)ne * 4));
        } else if (beta != 1.0) {
            int32_t kb;
            NEWV(kb, ox_const_f32(c, "beta", (float)beta, 0));
            TRY(ox_binary(c, CRUCIBLE_OP_MUL, kb, cc, "beta_c", -1, &cs));
        }
        NEWV(z, ox_out(c, 0, CRUCIBLE_DT_F32, 2, od));
        return ox_binary(c, CRUCIBLE_OP_ADD, y, cs, NULL, z, &res);
    }
    /* run-time B: matmul, then alpha, then beta * C */
    int32_t B = b;
    if (tb) TRY(transpose2(c, b, "B_t", &B));
    int last_mm = alpha == 1.0 && cc < 0;
    int32_t t, ins[2] = {A, B}, n;
    if (last_mm) NEWV(t, ox_out(c, 0, CRUCIBLE_DT_F32, 2, od));
    else NEWV(t, ox_tmp(c, "matmul", CRUCIBLE_DT_F32, 2, od));
    NEWV(n, ox_node_new(c, CRUCIBLE_OP_MATMUL, last_mm ? NULL : "matmul", 2, ins,
                        1, &t));
    if (last_mm) return OX_OK;
    if (alpha != 1.0) {
        int32_t ka, o = -1;
        NEWV(ka, ox_const_f32(c, "alpha", (float)alpha, 0));
        if (cc < 0) NEWV(o, ox_out(c, 0, CRUCIBLE_DT_F32, 2, od));
        TRY(ox_binary(c, CRUCIBLE_OP_MUL, ka, t, cc < 0 ? NULL : "alpha_ab", o,
                      &t));
        if (cc < 0) return OX_OK;
    }
    int32_t cs = cc, z;
    if (beta != 1.0) {
        int32_t kb;
        NEWV(kb, ox_const_f32(c, "beta", (float)beta, 0));
        TRY(ox_binary(c, CRUCIBLE_OP_MUL, kb, cc, "beta_c", -1, &cs));
    }
    NEWV(z, ox_out(c, 0, CRUCIBLE_DT_F32, 2, od));
    return ox_binary(c, CRUCIBLE_OP_ADD, t, cs, NULL, z, &res);
}

/* Output shape of numpy matmul(a, b) into od (CRUCIBLE_MAX_RANK + 2
 * entries), *r its rank. No side effects. */
static int matmul_dims(ox_ctx *c, int32_t a, int32_t b, int64_t *od,
                       int32_t *r)
{
    const ox_val *av = &c->vals[a], *bv = &c->vals[b];
    if (av->rank < 1 || bv->rank < 1) return ox_unsup(c, "scalar operands");
    int64_t ka = av->dims[av->rank - 1];
    int64_t kb = bv->rank == 1 ? bv->dims[0] : bv->dims[bv->rank - 2];
    if (ka > 0 && kb > 0 && ka != kb)
        return ox_unsup(c, "inner dimensions %lld and %lld differ",
                        (long long)ka, (long long)kb);
    int32_t ba = av->rank > 2 ? av->rank - 2 : 0, bb = bv->rank > 2 ? bv->rank - 2 : 0;
    if (ox_bcast(ba, av->dims, bb, bv->dims, r, od))
        return ox_unsup(c, "batch dimensions do not broadcast");
    if (av->rank >= 2) od[(*r)++] = av->dims[av->rank - 2];
    if (bv->rank >= 2) od[(*r)++] = bv->dims[bv->rank - 1];
    if (*r > CRUCIBLE_MAX_RANK) return ox_unsup(c, "result rank too large");
    return OX_OK;
}

int ox_lower_matmul(ox_ctx *c)
{
    int32_t a = ox_in(c, 0), b = ox_in(c, 1);
    TRY(need_f32(c, a, "input A"));
    TRY(need_f32(c, b, "input B"));
    /* output shape (numpy matmul) */
    int32_t r = 0;
    int64_t od[CRUCIBLE_MAX_RANK + 2];
    TRY(matmul_dims(c, a, b, od, &r));
    const ox_val *av = &c->vals[a], *bv = &c->vals[b];
    if (bv->is_const && bv->rank == 2 && ox_shape_known(bv) && av->rank >= 2) {
        int32_t W, y, n, ins[2];
        TRY(const_weight(c, b, 0, 1.0, &W));
        int64_t N = bv->dims[1];
        if (av->rank == 2) {
            NEWV(y, ox_out(c, 0, CRUCIBLE_DT_F32, 2, od));
            ins[0] = a, ins[1] = W;
            NEWV(n, ox_node_new(c, CRUCIBLE_OP_DENSE, NULL, 2, ins, 1, &y));
            return OX_OK;
        }
        int unknown = 0;
        uint64_t rows = 1;
        for (int32_t i = 0; i < av->rank - 1; i++) {
            if (av->dims[i] <= 0) unknown++;
            else rows *= (uint64_t)av->dims[i];
        }
        if (!unknown) {
            int64_t d2[2] = {(int64_t)rows, N};
            int32_t t, z, res;
            NEWV(t, ox_tmp(c, "dense", CRUCIBLE_DT_F32, 2, d2));
            ins[0] = a, ins[1] = W;
            NEWV(n, ox_node_new(c, CRUCIBLE_OP_DENSE, NULL, 2, ins, 1, &t));
            NEWV(z, ox_out(c, 0, CRUCIBLE_DT_F32, r, od));
            return ox_reshape(c, t, r, od, "unflatten", z, &res);
        }
    }
    int32_t y, n, ins[2] = {a, b};
    NEWV(y, ox_out(c, 0, CRUCIBLE_DT_F32, r, od));
    NEWV(n, ox_node_new(c, CRUCIBLE_OP_MATMUL, NULL, 2, ins, 1, &y));
    return OX_OK;
}

/* ---- normalisation ----------------------------------------------------------*/
/* p [C] as [C, 1, ..., 1] for an input of rank r. */
static int per_channel(ox_ctx *c, int32_t p, int32_t r, const char *sfx,
                       int32_t *res)
{
    const ox_val *v = &c->vals[p];
    int64_t C = ox_val_numel(v);
    if (v->rank != 1 && !(v->rank >= 1 && C > 0))
        return ox_unsup(c, "%s must be a vector", sfx);
    int64_t dims[CRUCIBLE_MAX_RANK];
    dims[0] = v->rank == 1 ? v->dims[0] : C;
    for (int32_t i = 1; i < r - 1; i++) dims[i] = 1;
    return ox_reshape(c, p, r - 1, dims, sfx, -1, res);
}

/* Tries to fold y = x*s + t (per channel) into the conv2d / dense that
 * produces x. Returns 1 when folded. */
static int fold_into_producer(ox_ctx *c, int32_t x, const float *s,
                              const float *t, int64_t C, int *done)
{
    *done = 0;
    const ox_val *xv = &c->vals[x];
    int32_t uses = 0;
    /* x must reach the BatchNormalization under its own name (not through
     * an alias such as an Identity, whose other readers would lose it) */
    if (c->cur->n_input < 1 || !c->cur->input[0] ||
        strcmp(c->cur->input[0], xv->name))
        return OX_OK;
    if (!ox_map_get(&c->onnx_uses, xv->name, &uses) || uses != 1) return OX_OK;
    int32_t pi = xv->producer;
    if (pi < 0) return OX_OK;
    ox_node *p = &c->nodes[pi];
    if (p->dead || p->n_out != 1 || p->out[0] != x ||
        (p->op != CRUCIBLE_OP_CONV2D && p->op != CRUCIBLE_OP_DENSE))
        return OX_OK;
    const ox_val *W = &c->vals[p->in[1]];
    const ox_val *B = p->n_in > 2 && p->in[2] >= 0 ? &c->vals[p->in[2]] : NULL;
    if (!W->is_const || W->dtype != CRUCIBLE_DT_F32 || !ox_shape_known(W) ||
        W->dims[0] != C)
        return OX_OK;
    if (B && (!B->is_const || B->dtype != CRUCIBLE_DT_F32 ||
              ox_val_numel(B) != (uint64_t)C))
        return OX_OK;
    uint64_t ne = ox_val_numel(W), per = ne / (uint64_t)C;
    float *w2 = ox_alloc(c, (size_t)ne * 4), *b2 = ox_alloc(c, (size_t)C * 4);
    if (!w2 || !b2) return CRUCIBLE_E_NOMEM;
    for (int64_t o = 0; o < C; o++) {
        for (uint64_t j = 0; j < per; j++) {
            uint64_t i = (uint64_t)o * per + j;
            w2[i] = (float)ox_get_f(W, i) * s[o];
        }
        b2[o] = B ? (float)ox_get_f(B, (uint64_t)o) * s[o] + t[o] : t[o];
    }
    int32_t wv, bv, y;
    NEWV(wv, ox_const(c, "folded_weight", CRUCIBLE_DT_F32, W->rank, W->dims, w2,
                      (size_t)ne * 4));
    NEWV(bv, ox_const(c, "folded_bias", CRUCIBLE_DT_F32, 1, &C, b2,
                      (size_t)C * 4));
    xv = &c->vals[x];
    NEWV(y, ox_out(c, 0, CRUCIBLE_DT_F32, xv->rank, xv->dims));
    /* from here on nothing can fail: rewrite the producer */
    p = &c->nodes[pi];
    if (p->n_in < 3) {
        int32_t *in = ox_alloc(c, 3 * sizeof *in);
        if (!in) return CRUCIBLE_E_NOMEM;
        in[0] = p->in[0];
        p->in = in;
        p->n_in = 3;
    }
    p->in[1] = wv;
    p->in[2] = bv;
    p->out[0] = y;
    c->vals[y].producer = pi;
    c->vals[x].producer = -1;
    *done = 1;
    return OX_OK;
}

int ox_lower_batchnorm(ox_ctx *c)
{
    int32_t x = ox_in(c, 0), sc = ox_in(c, 1), bb = ox_in(c, 2),
            mn = ox_in(c, 3), vr = ox_in(c, 4);
    TRY(need_f32(c, x, "input X"));
    TRY(need_f32(c, sc, "scale"));
    TRY(need_f32(c, bb, "B"));
    TRY(need_f32(c, mn, "mean"));
    TRY(need_f32(c, vr, "var"));
    for (uint32_t k = 1; k < ox_n_out(c); k++)
        if (ox_out_used(c, k))
            return ox_unsup(c, "training outputs (running mean/var) are not "
                            "supported");
    if (c->cur_opset >= 14 && oa_i(c, "training_mode", 0))
        return ox_unsup(c, "training_mode is not supported");
    if (c->cur_opset < 9 && !oa_i(c, "spatial", 1))
        return ox_unsup(c, "spatial = 0 is not supported");
    double eps = oa_f(c, "epsilon", 1e-5);
    const ox_val *xv = &c->vals[x];
    if (xv->rank < 2) return ox_unsup(c, "input must be [N, C, ...]");
    int32_t params[4] = {sc, bb, mn, vr};
    int all = 1;
    int64_t C = (int64_t)ox_val_numel(&c->vals[sc]);
    for (int i = 0; i < 4; i++) {
        const ox_val *p = &c->vals[params[i]];
        if (!p->is_const || (int64_t)ox_val_numel(p) != C) all = 0;
    }
    if (xv->dims[1] > 0 && C > 0 && xv->dims[1] != C)
        return ox_unsup(c, "%lld parameters for %lld channels", (long long)C,
                        (long long)xv->dims[1]);
    int32_t r = xv->rank, res;
    if (all && C > 0) {
        float *s = ox_alloc(c, (size_t)C * 4), *t = ox_alloc(c, (size_t)C * 4);
        if (!s || !t) return CRUCIBLE_E_NOMEM;
        for (int64_t i = 0; i < C; i++) {
            double sd = ox_get_f(&c->vals[sc], (uint64_t)i) /
                        sqrt(ox_get_f(&c->vals[vr], (uint64_t)i) + eps);
            s[i] = (float)sd;
            t[i] = (float)(ox_get_f(&c->vals[bb], (uint64_t)i) -
                           ox_get_f(&c->vals[mn], (uint64_t)i) * sd);
        }
        int done;
        TRY(fold_into_producer(c, x, s, t, C, &done));
        if (done) return OX_OK;
        int64_t pd[CRUCIBLE_MAX_RANK];
        pd[0] = C;
        for (int32_t i = 1; i < r - 1; i++) pd[i] = 1;
        int32_t ks, kt, m, y;
        NEWV(ks, ox_const(c, "scale", CRUCIBLE_DT_F32, r - 1, pd, s,
                          (size_t)C * 4));
        NEWV(kt, ox_const(c, "shift", CRUCIBLE_DT_F32, r - 1, pd, t,
                          (size_t)C * 4));
        TRY(ox_binary(c, CRUCIBLE_OP_MUL, x, ks, "scaled", -1, &m));
        xv = &c->vals[x];
        NEWV(y, ox_out(c, 0, CRUCIBLE_DT_F32, xv->rank, xv->dims));
        return ox_binary(c, CRUCIBLE_OP_ADD, m, kt, NULL, y, &res);
    }
    /* run-time parameters: scale * (x - mean) / sqrt(var + eps) + B */
    int32_t s2, b2, m2, v2, d, ve, sd, ms, n, ke, y;
    TRY(per_channel(c, sc, r, "scale_c", &s2));
    TRY(per_channel(c, bb, r, "B_c", &b2));
    TRY(per_channel(c, mn, r, "mean_c", &m2));
    TRY(per_channel(c, vr, r, "var_c", &v2));
    NEWV(ke, ox_const_f32(c, "epsilon", (float)eps, 0));
    TRY(ox_binary(c, CRUCIBLE_OP_SUB, x, m2, "centered", -1, &d));
    TRY(ox_binary(c, CRUCIBLE_OP_ADD, v2, ke, "var_eps", -1, &ve));
    TRY(ox_unary(c, CRUCIBLE_OP_SQRT, ve, "std", -1, &sd));
    TRY(ox_binary(c, CRUCIBLE_OP_MUL, s2, d, "scaled", -1, &ms));
    TRY(ox_binary(c, CRUCIBLE_OP_DIV, ms, sd, "normed", -1, &n));
    xv = &c->vals[x];
    NEWV(y, ox_out(c, 0, CRUCIBLE_DT_F32, xv->rank, xv->dims));
    return ox_binary(c, CRUCIBLE_OP_ADD, n, b2, NULL, y, &res);
}

/* mean over axes (keepdims), as a tmp or output k */
static int reduce_mean(ox_ctx *c, int32_t x, const int64_t *axes, uint32_t na,
                       const char *sfx, int32_t out, int32_t *res)
{
    const ox_val *xv = &c->vals[x];
    int64_t dims[CRUCIBLE_MAX_RANK];
    memcpy(dims, xv->dims, sizeof dims);
    for (uint32_t i = 0; i < na; i++) dims[axes[i]] = 1;
    int32_t y = out, n;
    if (y < 0) NEWV(y, ox_tmp(c, sfx, CRUCIBLE_DT_F32, xv->rank, dims));
    NEWV(n, ox_node_new(c, CRUCIBLE_OP_REDUCE_MEAN, sfx, 1, &x, 1, &y));
    TRY(ox_attr_ints(c, n, "axes", na, axes));
    TRY(ox_attr_int(c, n, "keepdims", 1));
    *res = y;
    return OX_OK;
}

int ox_lower_instancenorm(ox_ctx *c)
{
    int32_t x = ox_in(c, 0), sc = ox_in(c, 1), bb = ox_in(c, 2);
    TRY(need_f32(c, x, "input"));
    TRY(need_f32(c, sc, "scale"));
    TRY(need_f32(c, bb, "B"));
    const ox_val *xv = &c->vals[x];
    int32_t r = xv->rank;
    if (r < 3) return ox_unsup(c, "input must be [N, C, spatial...]");
    double eps = oa_f(c, "epsilon", 1e-5);
    int64_t axes[CRUCIBLE_MAX_RANK];
    uint32_t na = 0;
    for (int32_t i = 2; i < r; i++) axes[na++] = i;
    int32_t s2, b2, mean, d, sq, var, ke, ve, sd, ms, n, y, res;
    TRY(per_channel(c, sc, r, "scale_c", &s2));
    TRY(per_channel(c, bb, r, "B_c", &b2));
    TRY(reduce_mean(c, x, axes, na, "mean", -1, &mean));
    TRY(ox_binary(c, CRUCIBLE_OP_SUB, x, mean, "centered", -1, &d));
    TRY(ox_binary(c, CRUCIBLE_OP_MUL, d, d, "squared", -1, &sq));
    TRY(reduce_mean(c, sq, axes, na, "var", -1, &var));
    NEWV(ke, ox_const_f32(c, "epsilon", (float)eps, 0));
    TRY(ox_binary(c, CRUCIBLE_OP_ADD, var, ke, "var_eps", -1, &ve));
    TRY(ox_unary(c, CRUCIBLE_OP_SQRT, ve, "std", -1, &sd));
    TRY(ox_binary(c, CRUCIBLE_OP_MUL, s2, d, "scaled", -1, &ms));
    TRY(ox_binary(c, CRUCIBLE_OP_DIV, ms, sd, "normed", -1, &n));
    xv = &c->vals[x];
    NEWV(y, ox_out(c, 0, CRUCIBLE_DT_F32, xv->rank, xv->dims));
    return ox_binary(c, CRUCIBLE_OP_ADD, n, b2, NULL, y, &res);
}

int ox_lower_layernorm(ox_ctx *c)
{
    int32_t x = ox_in(c, 0), sc = ox_in(c, 1), bb = ox_in(c, 2);
    TRY(need_f32(c, x, "input X"));
    TRY(need_f32(c, sc, "Scale"));
    if (bb >= 0) TRY(need_f32(c, bb, "B"));
    if (oa_i(c, "stash_type", 1) != 1)
        return ox_unsup(c, "stash_type other than float");
    const ox_val *xv = &c->vals[x];
    int32_t r = xv->rank;
    int64_t axis = ox_norm_axis(oa_i(c, "axis", -1), r);
    if (axis < 0) return ox_unsup(c, "axis out of range");
    double eps = oa_f(c, "epsilon", 1e-5);
    int64_t axes[CRUCIBLE_MAX_RANK], rd[CRUCIBLE_MAX_RANK];
    uint32_t na = 0;
    for (int32_t i = (int32_t)axis; i < r; i++) axes[na++] = i;
    for (int32_t i = 0; i < r; i++) rd[i] = i < axis ? xv->dims[i] : 1;
    int32_t mean = -1, d, sq, var, ke, ve, sd, one, inv = -1, n, m, y, res;
    if (ox_out_used(c, 1)) NEWV(mean, ox_out(c, 1, CRUCIBLE_DT_F32, r, rd));
    TRY(reduce_mean(c, x, axes, na, "mean", mean, &mean));
    TRY(ox_binary(c, CRUCIBLE_OP_SUB, x, mean, "centered", -1, &d));
    TRY(ox_binary(c, CRUCIBLE_OP_MUL, d, d, "squared", -1, &sq));
    TRY(reduce_mean(c, sq, axes, na, "var", -1, &var));
    NEWV(ke, ox_const_f32(c, "epsilon", (float)eps, 0));
    TRY(ox_binary(c, CRUCIBLE_OP_ADD, var, ke, "var_eps", -1, &ve));
    TRY(ox_unary(c, CRUCIBLE_OP_SQRT, ve, "std", -1, &sd));
    NEWV(one, ox_const_f32(c, "one", 1.0f, 0));
    if (ox_out_used(c, 2)) NEWV(inv, ox_out(c, 2, CRUCIBLE_DT_F32, r, rd));
    TRY(ox_binary(c, CRUCIBLE_OP_DIV, one, sd, "inv_std", inv, &inv));
    TRY(ox_binary(c, CRUCIBLE_OP_MUL, d, inv, "normed", -1, &n));
    xv = &c->vals[x];
    if (bb < 0) {
        NEWV(y, ox_out(c, 0, CRUCIBLE_DT_F32, xv->rank, xv->dims));
        return ox_binary(c, CRUCIBLE_OP_MUL, n, sc, NULL, y, &res);
    }
    TRY(ox_binary(c, CRUCIBLE_OP_MUL, n, sc, "scaled", -1, &m));
    xv = &c->vals[x];
    NEWV(y, ox_out(c, 0, CRUCIBLE_DT_F32, xv->rank, xv->dims));
    return ox_binary(c, CRUCIBLE_OP_ADD, m, bb, NULL, y, &res);
}

/* (x - mean) / (sqrt(mean(x^2) - mean^2) + 1e-9) over axes (default
 * 0, 2, 3) */
int ox_lower_mvn(ox_ctx *c)
{
    int32_t x = ox_in(c, 0);
    TRY(need_f32(c, x, "input"));
    const ox_val *xv = &c->vals[x];
    int32_t r = xv->rank;
    int64_t axes[CRUCIBLE_MAX_RANK] = {0, 2, 3};
    uint32_t na = 3, cnt;
    const int64_t *a = oa_ints(c, "axes", &cnt);
    if (a) {
        if (cnt > (uint32_t)r) return ox_unsup(c, "too many axes");
        for (uint32_t i = 0; i < cnt; i++) axes[i] = a[i];
        na = cnt;
    } else if (r != 4) {
        return ox_unsup(c, "default axes need a 4-D input");
    }
    int seen[CRUCIBLE_MAX_RANK] = {0};
    for (uint32_t i = 0; i < na; i++) {
        axes[i] = ox_norm_axis(axes[i], r);
        if (axes[i] < 0 || seen[axes[i]]++) return ox_unsup(c, "axes invalid");
    }
    int32_t mean, msq, xsq, sqm, var, sd, ke, de, d, y, res;
    TRY(reduce_mean(c, x, axes, na, "mean", -1, &mean));
    TRY(ox_binary(c, CRUCIBLE_OP_MUL, mean, mean, "mean_sq", -1, &msq));
    TRY(ox_binary(c, CRUCIBLE_OP_MUL, x, x, "x_sq", -1, &xsq));
    TRY(reduce_mean(c, xsq, axes, na, "sq_mean", -1, &sqm));
    TRY(ox_binary(c, CRUCIBLE_OP_SUB, sqm, msq, "var", -1, &var));
    TRY(ox_unary(c, CRUCIBLE_OP_SQRT, var, "std", -1, &sd));
    NEWV(ke, ox_const_f32(c, "epsilon", 1e-9f, 0));
    TRY(ox_binary(c, CRUCIBLE_OP_ADD, sd, ke, "std_eps", -1, &de));
    TRY(ox_binary(c, CRUCIBLE_OP_SUB, x, mean, "centered", -1, &d));
    xv = &c->vals[x];
    NEWV(y, ox_out(c, 0, CRUCIBLE_DT_F32, xv->rank, xv->dims));
    return ox_binary(c, CRUCIBLE_OP_DIV, d, de, NULL, y, &res);
}

/* ---- Softmax, LogSoftmax ----------------------------------------------------*/
int ox_lower_softmax(ox_ctx *c)
{
    int is_log = !strcmp(c->cur->op_type, "LogSoftmax");
    int32_t op = is_log ? CRUCIBLE_OP_LOG_SOFTMAX : CRUCIBLE_OP_SOFTMAX;
    int32_t x = ox_in(c, 0);
    TRY(need_f32(c, x, "input"));
    const ox_val *xv = &c->vals[x];
    int32_t r = xv->rank;
    if (r < 1) return ox_unsup(c, "input must have rank >= 1");
    int64_t ax = ox_norm_axis(oa_i(c, "axis", c->cur_opset >= 13 ? -1 : 1), r);
    if (ax < 0) return ox_unsup(c, "axis out of range");
    int single = c->cur_opset >= 13 || ax == r - 1;
    if (!single) { /* opset < 13: softmax of the flattened [A, B] rows */
        single = 1;
        for (int32_t i = (int32_t)ax + 1; i < r; i++)
            if (xv->dims[i] != 1) single = 0;
    }
    int32_t y, n, res;
    if (single) {
        NEWV(y, ox_out(c, 0, CRUCIBLE_DT_F32, r, xv->dims));
        NEWV(n, ox_node_new(c, op, NULL, 1, &x, 1, &y));
        TRY(ox_attr_int(c, n, "axis", ax));
        return OX_OK;
    }
    int64_t A = 1, B = 1;
    for (int32_t i = 0; i < r; i++) {
        int64_t *p = i < ax ? &A : &B;
        if (xv->dims[i] <= 0 || *p <= 0) *p = 0;
        else *p *= xv->dims[i];
    }
    if (!A || !B) return ox_unsup(c, "the input's shape is unknown");
    int64_t d2[2] = {A, B};
    int32_t x2, s2;
    TRY(ox_reshape(c, x, 2, d2, "rows", -1, &x2));
    NEWV(s2, ox_tmp(c, "rows_out", CRUCIBLE_DT_F32, 2, d2));
    NEWV(n, ox_node_new(c, op, NULL, 1, &x2, 1, &s2));
    TRY(ox_attr_int(c, n, "axis", 1));
    xv = &c->vals[x];
    NEWV(y, ox_out(c, 0, CRUCIBLE_DT_F32, r, xv->dims));
    return ox_reshape(c, s2, r, xv->dims, "unrows", y, &res);
}

/* ---- QuantizeLinear, DequantizeLinear ---------------------------------------*/
typedef struct qparams {
    int32_t axis; /* -1 per tensor */
    uint32_t count;
    float *scales;
    int32_t *zps;
    int32_t zp_dtype; /* 0 when no zero point given */
} qparams;

static int read_qparams(ox_ctx *c, const ox_val *x, qparams *q)
{
    int32_t s = ox_in(c, 1), z = ox_in(c, 2);
    memset(q, 0, sizeof *q);
    if (s < 0) return ox_unsup(c, "scale is missing");
    const ox_val *sv = &c->vals[s];
    if (!sv->is_const)
        return ox_unsup(c, "the scale (%s) is a run-time value, not a "
                        "constant; the IR carries quantisation parameters on "
                        "tensors, so they must be constants",
                        sv->name);
    if (sv->dtype != CRUCIBLE_DT_F32) return ox_unsup(c, "scale is not f32");
    uint64_t n = ox_val_numel(sv);
    if (!n || sv->rank > 1) return ox_unsup(c, "scale must be a scalar or vector");
    if (n > (1u << 24)) return ox_unsup(c, "too many scales");
    q->count = (uint32_t)n;
    q->axis = -1;
    if (sv->rank == 1 && n > 1) {
        int64_t a = ox_norm_axis(oa_i(c, "axis", 1), x->rank);
        if (a < 0) return ox_unsup(c, "axis out of range");
        if (x->dims[a] > 0 && (uint64_t)x->dims[a] != n)
            return ox_unsup(c, "%llu scales for an axis of %lld",
                            (unsigned long long)n, (long long)x->dims[a]);
        q->axis = (int32_t)a;
    }
    q->scales = ox_alloc(c, n * sizeof(float));
    q->zps = ox_alloc(c, n * sizeof(int32_t));
    if (!q->scales || !q->zps) return CRUCIBLE_E_NOMEM;
    for (uint64_t i = 0; i < n; i++) {
        q->scales[i] = (float)ox_get_f(sv, i);
        if (!(q->scales[i] > 0.0f) || !isfinite(q->scales[i]))
            return ox_unsup(c, "scale %g is not positive and finite",
                            (double)q->scales[i]);
    }
    if (z >= 0) {
        const ox_val *zv = &c->vals[z];
        if (!zv->is_const)
            return ox_unsup(c, "the zero point (%s) is a run-time value, not "
                            "a constant; the IR carries quantisation "
                            "parameters on tensors, so they must be constants",
                            zv->name);
        if (ox_val_numel(zv) != n)
            return ox_unsup(c, "zero point count differs from scale count");
        if (zv->dtype != CRUCIBLE_DT_U8 && zv->dtype != CRUCIBLE_DT_I8 &&
            zv->dtype != CRUCIBLE_DT_I32 && zv->dtype != CRUCIBLE_DT_I16)
            return ox_unsup(c, "zero point of type %s",
                            zv->dtype ? ox_dtype_name(zv->dtype)
                                      : ox_onnx_type_name(zv->onnx_type));
        q->zp_dtype = zv->dtype;
        for (uint64_t i = 0; i < n; i++) q->zps[i] = (int32_t)ox_get_i(zv, i);
    }
    return OX_OK;
}

static int same_quant(const ox_val *v, const qparams *q)
{
    if (v->quant_count != q->count || v->quant_axis != q->axis) return 0;
    return !memcmp(v->scales, q->scales, q->count * sizeof(float)) &&
           !memcmp(v->zps, q->zps, q->count * sizeof(int32_t));
}

int ox_lower_qdq(ox_ctx *c)
{
    int quant = !strcmp(c->cur->op_type, "QuantizeLinear");
    int32_t x = ox_in(c, 0);
    TRY(ox_operand_ok(c, x, "input x"));
    const ox_val *xv = &c->vals[x];
    qparams q;
    TRY(read_qparams(c, xv, &q));
    int32_t y, n;
    if (quant) {
        if (xv->dtype != CRUCIBLE_DT_F32)
            return ox_unsup(c, "input is %s; quantize takes f32",
                            ox_dtype_name(xv->dtype));
        int32_t dt = q.zp_dtype ? q.zp_dtype : CRUCIBLE_DT_U8;
        if (dt != CRUCIBLE_DT_U8 && dt != CRUCIBLE_DT_I8)
            return ox_unsup(c, "output type %s", ox_dtype_name(dt));
        NEWV(y, ox_out(c, 0, dt, xv->rank, xv->dims));
        c->vals[y].dtype = dt;
        NEWV(n, ox_node_new(c, CRUCIBLE_OP_QUANTIZE, NULL, 1, &x, 1, &y));
        ox_val *yv = &c->vals[y];
        yv->quant_axis = q.axis;
        yv->quant_count = q.count;
        yv->scales = q.scales;
        yv->zps = q.zps;
        return OX_OK;
    }
    if (xv->dtype != CRUCIBLE_DT_U8 && xv->dtype != CRUCIBLE_DT_I8 &&
        xv->dtype != CRUCIBLE_DT_I32 && xv->dtype != CRUCIBLE_DT_I16)
        return ox_unsup(c, "input is %s; dequantize takes i8, u8, i16 or i32",
                        ox_dtype_name(xv->dtype));
    if (q.zp_dtype && q.zp_dtype != xv->dtype)
        return ox_unsup(c, "zero point type differs from the input's");
    int32_t src = x;
    if (xv->quant_count && !same_quant(xv, &q)) {
        /* the tensor already carries other parameters: use a copy */
        if (xv->is_const) {
            NEWV(src, ox_const(c, "requant_view", xv->dtype, xv->rank,
                               xv->dims, xv->data, xv->bytes));
        } else {
            int64_t shp[CRUCIBLE_MAX_RANK];
            for (int32_t i = 0; i < xv->rank; i++)
                shp[i] = xv->dims[i] > 0 ? xv->dims[i] : 0;
            int32_t cn;
            NEWV(src, ox_tmp(c, "requant_view", xv->dtype, xv->rank, xv->dims));
            NEWV(cn, ox_node_new(c, CRUCIBLE_OP_RESHAPE, "view", 1, &x, 1, &src));
            TRY(ox_attr_ints(c, cn, "shape", (uint32_t)xv->rank, shp));
        }
    }
    xv = &c->vals[x];
    NEWV(y, ox_out(c, 0, CRUCIBLE_DT_F32, xv->rank, xv->dims));
    NEWV(n, ox_node_new(c, CRUCIBLE_OP_DEQUANTIZE, NULL, 1, &src, 1, &y));
    ox_val *sv = &c->vals[src];
    sv->quant_axis = q.axis;
    sv->quant_count = q.count;
    sv->scales = q.scales;
    sv->zps = q.zps;
    return OX_OK;
}

/* ---- MatMulInteger, ConvInteger, QLinearMatMul, QLinearConv ----------------
 * Lowered to the integer forms of matmul / conv2d (u8/i8 operands whose
 * zero points are the operand tensors' quantisation parameters, an i32
 * accumulator; docs/ir-ops.md) and, for the QLinear ops, a requantize from
 * the accumulator (scale x_scale * w_scale per tensor or per output
 * channel, zero point 0) to the output (y_scale, y_zero_point). Scales and
 * zero points must be constants: the IR carries them on tensors. */

/* An 8-bit integer operand. */
static int need_int8(ox_ctx *c, int32_t v, const char *what)
{
    TRY(ox_operand_ok(c, v, what));
    int32_t dt = c->vals[v].dtype;
    if (dt != CRUCIBLE_DT_U8 && dt != CRUCIBLE_DT_I8)
        return ox_unsup(c, "%s is %s; the integer kernels take uint8 or int8",
                        what, ox_dtype_name(dt));
    return OX_OK;
}

/* The constant ONNX input k (scale or zero point of an operand of rank
 * `rank`) as `*count` values: one (per tensor, any shape) or, when axis >=
 * 0, one per slice along that axis (len slices, 0 = unknown), laid out as
 * a vector or as a rank-`rank` tensor that is 1 except at axis. */
static int qp_const(ox_ctx *c, uint32_t k, const char *what, int32_t rank,
                    int32_t axis, int64_t len, const ox_val **out,
                    uint64_t *count)
{
    int32_t v = ox_in(c, k);
    *out = NULL;
    *count = 0;
    if (v < 0) return OX_OK;
    const ox_val *q = &c->vals[v];
    if (!q->is_const)
        return ox_unsup(c, "%s (%s) is a run-time value, not a constant; "
                        "the IR carries quantisation parameters on tensors, "
                        "so they must be constants",
                        what, q->name);
    if (!q->dtype)
        return ox_unsup(c, "%s has ONNX type %s", what,
                        ox_onnx_type_name(q->onnx_type));
    uint64_t n = ox_val_numel(q);
    if (!n) return ox_unsup(c, "%s is empty", what);
    if (n > 1) {
        int ok = axis >= 0 && (len <= 0 || (uint64_t)len == n);
        if (ok && q->rank != 1) {
            ok = q->rank == rank;
            for (int32_t i = 0; ok && i < q->rank; i++)
                if (i != axis && q->dims[i] != 1) ok = 0;
        }
        if (!ok) {
            if (axis < 0)
                return ox_unsup(c, "%s has %llu values; only per-tensor "
                                "quantisation is supported here",
                                what, (unsigned long long)n);
            return ox_unsup(c, "%s has %llu values; a scalar or one per "
                            "slice along axis %d (%lld) is supported",
                            what, (unsigned long long)n, (int)axis,
                            (long long)len);
        }
        if (n > (1u << 24)) return ox_unsup(c, "too many %s values", what);
    }
    *out = q;
    *count = n;
    return OX_OK;
}

/* Scale (input si, -1: none, all 1) and zero point (input zi, absent: 0)
 * of an operand with dtype dt (the zero point must have it too). */
static int read_qp(ox_ctx *c, int32_t si, uint32_t zi, const char *sname,
                   const char *zname, int32_t dt, int32_t rank, int32_t axis,
                   int64_t len, qparams *q)
{
    const ox_val *sv = NULL, *zv = NULL;
    uint64_t ns = 1, nz = 1;
    memset(q, 0, sizeof *q);
    if (si >= 0) {
        if (ox_in(c, (uint32_t)si) < 0) return ox_unsup(c, "%s is missing", sname);
        TRY(qp_const(c, (uint32_t)si, sname, rank, axis, len, &sv, &ns));
        if (sv->dtype != CRUCIBLE_DT_F32)
            return ox_unsup(c, "%s is %s, not float", sname,
                            ox_dtype_name(sv->dtype));
    }
    TRY(qp_const(c, zi, zname, rank, axis, len, &zv, &nz));
    if (!zv) nz = 1;
    if (zv && zv->dtype != dt)
        return ox_unsup(c, "%s is %s but its operand is %s", zname,
                        ox_dtype_name(zv->dtype), ox_dtype_name(dt));
    if (ns > 1 && nz > 1 && ns != nz)
        return ox_unsup(c, "%s has %llu values but %s has %llu", sname,
                        (unsigned long long)ns, zname, (unsigned long long)nz);
    uint64_t n = ns > nz ? ns : nz;
    q->count = (uint32_t)n;
    q->axis = n > 1 ? axis : -1;
    q->zp_dtype = zv ? zv->dtype : 0;
    q->scales = ox_alloc(c, n * sizeof(float));
    q->zps = ox_alloc(c, n * sizeof(int32_t));
    if (!q->scales || !q->zps) return CRUCIBLE_E_NOMEM;
    for (uint64_t i = 0; i < n; i++) {
        q->scales[i] = sv ? (float)ox_get_f(sv, ns > 1 ? i : 0) : 1.0f;
        if (!(q->scales[i] > 0.0f) || !isfinite(q->scales[i]))
            return ox_unsup(c, "%s %g is not positive and finite", sname,
                            (double)q->scales[i]);
        q->zps[i] = zv ? (int32_t)ox_get_i(zv, nz > 1 ? i : 0) : 0;
    }
    return OX_OK;
}

/* The accumulator's parameters: scale in_scale * w_scale[i] (one f32
 * multiply, as ONNX Runtime computes the multiplier's numerator), zero
 * point 0, along axis (when w is per slice). */
static int acc_qp(ox_ctx *c, const qparams *xq, const qparams *wq,
                  int32_t axis, qparams *aq)
{
    memset(aq, 0, sizeof *aq);
    aq->count = wq->count;
    aq->axis = wq->count > 1 ? axis : -1;
    aq->scales = ox_alloc(c, wq->count * sizeof(float));
    aq->zps = ox_alloc(c, wq->count * sizeof(int32_t)); /* zeroed */
    if (!aq->scales || !aq->zps) return CRUCIBLE_E_NOMEM;
    for (uint32_t i = 0; i < wq->count; i++) {
        float s = xq->scales[0] * wq->scales[i];
        if (!(s > 0.0f) || !isfinite(s))
            return ox_unsup(c, "the accumulator scale x_scale * w_scale = %g "
                            "is not positive and finite",
                            (double)s);
        aq->scales[i] = s;
    }
    return OX_OK;
}

static void set_qp(ox_val *v, const qparams *q)
{
    v->quant_axis = q->axis;
    v->quant_count = q->count;
    v->scales = q->scales;
    v->zps = q->zps;
}

/* v as an operand carrying q: v itself when it carries no parameters yet
 * (they are set) or equal ones (zp_only: equal zero points); otherwise a
 * view of it (a constant sharing the data, or a reshape) carrying q. May
 * change v: call it only when the lowering can no longer refuse. */
static int with_quant(ox_ctx *c, int32_t v, const qparams *q, int zp_only,
                      const char *sfx, int32_t *res)
{
    ox_val *x = &c->vals[v];
    *res = v;
    if (!x->quant_count) {
        set_qp(x, q);
        return OX_OK;
    }
    if (x->quant_count == q->count && x->quant_axis == q->axis &&
        !memcmp(x->zps, q->zps, q->count * sizeof(int32_t)) &&
        (zp_only || !memcmp(x->scales, q->scales, q->count * sizeof(float))))
        return OX_OK;
    int32_t y;
    if (x->is_const) {
        NEWV(y, ox_const(c, sfx, x->dtype, x->rank, x->dims, x->data,
                         x->bytes));
    } else {
        int64_t shp[CRUCIBLE_MAX_RANK];
        for (int32_t i = 0; i < x->rank; i++)
            shp[i] = x->dims[i] > 0 ? x->dims[i] : 0; /* 0: copy the dim */
        int32_t n;
        NEWV(y, ox_tmp(c, sfx, x->dtype, x->rank, x->dims));
        NEWV(n, ox_node_new(c, CRUCIBLE_OP_RESHAPE, sfx, 1, &v, 1, &y));
        TRY(ox_attr_ints(c, n, "shape", (uint32_t)c->vals[v].rank, shp));
    }
    set_qp(&c->vals[y], q);
    *res = y;
    return OX_OK;
}

/* requantize acc (carrying aq) into y (carrying yq). */
static int requant(ox_ctx *c, int32_t acc, int32_t y, const qparams *yq)
{
    int32_t n;
    set_qp(&c->vals[y], yq);
    NEWV(n, ox_node_new(c, CRUCIBLE_OP_REQUANTIZE, NULL, 1, &acc, 1, &y));
    return ox_attr_str(c, n, "rounding", "float_rne");
}

static int out_dtype(ox_ctx *c, const qparams *yq, int32_t *dt)
{
    *dt = yq->zp_dtype ? yq->zp_dtype : CRUCIBLE_DT_U8;
    if (*dt != CRUCIBLE_DT_U8 && *dt != CRUCIBLE_DT_I8)
        return ox_unsup(c, "output type %s", ox_dtype_name(*dt));
    return OX_OK;
}

/* MatMulInteger(A, B, a_zero_point, b_zero_point) and
 * QLinearMatMul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp). */
int ox_lower_matmul_int(ox_ctx *c)
{
    int ql = !strcmp(c->cur->op_type, "QLinearMatMul");
    int32_t a = ox_in(c, 0), b = ox_in(c, ql ? 3 : 1);
    TRY(need_int8(c, a, "input A"));
    TRY(need_int8(c, b, "input B"));
    int32_t r = 0, ydt = CRUCIBLE_DT_I32;
    int64_t od[CRUCIBLE_MAX_RANK + 2];
    TRY(matmul_dims(c, a, b, od, &r));
    const ox_val *av = &c->vals[a], *bv = &c->vals[b];
    /* a: per tensor, or (MatMulInteger) per row; b: per tensor or per
     * column */
    int32_t arow = !ql && av->rank >= 2 ? av->rank - 2 : -1;
    int32_t bcol = bv->rank >= 2 ? bv->rank - 1 : -1;
    qparams aq, bq, yq, accq;
    TRY(read_qp(c, ql ? 1 : -1, 2, "a_scale", "a_zero_point", av->dtype,
                av->rank, arow, arow >= 0 ? av->dims[arow] : 0, &aq));
    TRY(read_qp(c, ql ? 4 : -1, ql ? 5 : 3, "b_scale", "b_zero_point",
                bv->dtype, bv->rank, bcol, bcol >= 0 ? bv->dims[bcol] : 0,
                &bq));
    if (ql) {
        TRY(read_qp(c, 6, 7, "y_scale", "y_zero_point",
                    ox_in(c, 7) >= 0 ? c->vals[ox_in(c, 7)].dtype
                                     : CRUCIBLE_DT_U8,
                    r, -1, 0, &yq));
        TRY(out_dtype(c, &yq, &ydt));
        TRY(acc_qp(c, &aq, &bq, r - 1, &accq));
    }
    /* no refusals from here on */
    int32_t ins[2], y, acc, n;
    TRY(with_quant(c, a, &aq, !ql, "a_q", &ins[0]));
    TRY(with_quant(c, b, &bq, !ql, "b_q", &ins[1]));
    NEWV(y, ox_out(c, 0, ydt, r, od));
    c->vals[y].dtype = ydt;
    acc = y;
    if (ql) {
        NEWV(acc, ox_tmp(c, "acc", CRUCIBLE_DT_I32, r, od));
        set_qp(&c->vals[acc], &accq);
    }
    NEWV(n, ox_node_new(c, CRUCIBLE_OP_MATMUL, ql ? "matmul" : NULL, 2, ins,
                        1, &acc));
    return ql ? requant(c, acc, y, &yq) : OX_OK;
}

/* ConvInteger(x, w, x_zero_point, w_zero_point) and
 * QLinearConv(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B). */
int ox_lower_conv_int(ox_ctx *c)
{
    int ql = !strcmp(c->cur->op_type, "QLinearConv");
    int32_t x = ox_in(c, 0), w = ox_in(c, ql ? 3 : 1), b = ql ? ox_in(c, 8) : -1;
    TRY(need_int8(c, x, "input x"));
    TRY(need_int8(c, w, "weight w"));
    if (b >= 0) {
        TRY(ox_operand_ok(c, b, "bias B"));
        if (c->vals[b].dtype != CRUCIBLE_DT_I32 || c->vals[b].rank != 1)
            return ox_unsup(c, "bias B must be a 1-D int32 tensor");
    }
    geo g;
    int64_t group = 1, odims[4] = {0, 0, 0, 0};
    TRY(conv_geo(c, x, w, &g, &group, odims));
    const ox_val *xv = &c->vals[x], *wv = &c->vals[w];
    int32_t ydt = CRUCIBLE_DT_I32;
    qparams xq, wq, yq, accq;
    TRY(read_qp(c, ql ? 1 : -1, 2, "x_scale", "x_zero_point", xv->dtype,
                xv->rank, -1, 0, &xq));
    TRY(read_qp(c, ql ? 4 : -1, ql ? 5 : 3, "w_scale", "w_zero_point",
                wv->dtype, wv->rank, 0, wv->dims[0], &wq));
    if (ql) {
        TRY(read_qp(c, 6, 7, "y_scale", "y_zero_point",
                    ox_in(c, 7) >= 0 ? c->vals[ox_in(c, 7)].dtype
                                     : CRUCIBLE_DT_U8,
                    4, -1, 0, &yq));
        TRY(out_dtype(c, &yq, &ydt));
        TRY(acc_qp(c, &xq, &wq, 1, &accq));
    }
    int32_t ins[3] = {x, w, b}, acc, y, n;
    int64_t d4[4] = {odims[0], odims[1], odims[2], odims[3]};
    if (g.ns == 1) {
        int64_t wd[4] = {wv->dims[0], wv->dims[1], 1, wv->dims[2]};
        d4[2] = 1;
        d4[3] = odims[2];
        TRY(to_2d(c, x, "in2d", &ins[0]));
        TRY(ox_reshape(c, w, 4, wd, "w2d", -1, &ins[1]));
    }
    /* no refusals from here on */
    TRY(with_quant(c, ins[0], &xq, !ql, "x_q", &ins[0]));
    TRY(with_quant(c, ins[1], &wq, !ql, "w_q", &ins[1]));
    if (ql || g.ns == 1)
        NEWV(acc, ox_tmp(c, ql ? "acc" : "out2d", CRUCIBLE_DT_I32, 4, d4));
    else
        NEWV(acc, ox_out(c, 0, CRUCIBLE_DT_I32, 4, d4));
    c->vals[acc].dtype = CRUCIBLE_DT_I32;
    if (ql) set_qp(&c->vals[acc], &accq);
    NEWV(n, ox_node_new(c, CRUCIBLE_OP_CONV2D, ql ? "conv" : NULL,
                        b >= 0 ? 3 : 2, ins, 1, &acc));
    TRY(geo_attrs(c, n, &g, 0));
    TRY(ox_attr_int(c, n, "group", group));
    y = acc;
    if (ql) {
        if (g.ns == 1) NEWV(y, ox_tmp(c, "out2d", ydt, 4, d4));
        else NEWV(y, ox_out(c, 0, ydt, 4, d4));
        c->vals[y].dtype = ydt;
        TRY(requant(c, acc, y, &yq));
    }
    if (g.ns == 1) return from_2d(c, y, odims);
    return OX_OK;
}

/* ---- LRN --------------------------------------------------------------------
 * y = x / (bias + alpha/size * sum of x^2 over a window of channels)^beta:
 * the windowed sum is an avg_pool2d over the channel axis of x^2 viewed as
 * [N, 1, C, spatial] (count_include_pad, so avg = sum / size). */
int ox_lower_lrn(ox_ctx *c)
{
    int32_t x = ox_in(c, 0);
    TRY(need_f32(c, x, "input X"));
    const ox_val *xv = &c->vals[x];
    if (xv->rank < 3 || !ox_shape_known(xv))
        return ox_unsup(c, "needs an [N, C, spatial...] input of known shape");
    int64_t size = oa_i(c, "size", 0);
    if (size < 1 || size > INT32_MAX) return ox_unsup(c, "size is required");
    double alpha = oa_f(c, "alpha", 1e-4), beta = oa_f(c, "beta", 0.75),
           bias = oa_f(c, "bias", 1.0);
    int64_t S = 1;
    for (int32_t i = 2; i < xv->rank; i++) S *= xv->dims[i];
    int64_t v4[4] = {xv->dims[0], 1, xv->dims[1], S};
    int32_t sq, sq4, pooled, back, ka, kb, kp, t, u, p, y, n, res;
    TRY(ox_binary(c, CRUCIBLE_OP_MUL, x, x, "square", -1, &sq));
    TRY(ox_reshape(c, sq, 4, v4, "channels_as_rows", -1, &sq4));
    NEWV(pooled, ox_tmp(c, "window_mean", CRUCIBLE_DT_F32, 4, v4));
    NEWV(n, ox_node_new(c, CRUCIBLE_OP_AVG_POOL2D, "window", 1, &sq4, 1,
                        &pooled));
    int64_t k[2] = {size, 1}, pads[4] = {(size - 1) / 2, 0, size / 2, 0};
    TRY(ox_attr_ints(c, n, "kernel", 2, k));
    TRY(ox_attr_ints(c, n, "pads", 4, pads));
    TRY(ox_attr_int(c, n, "count_include_pad", 1));
    xv = &c->vals[x];
    TRY(ox_reshape(c, pooled, xv->rank, xv->dims, "window_back", -1, &back));
    NEWV(ka, ox_const_f32(c, "alpha", (float)alpha, 0));
    NEWV(kb, ox_const_f32(c, "bias", (float)bias, 0));
    NEWV(kp, ox_const_f32(c, "beta", (float)beta, 0));
    TRY(ox_binary(c, CRUCIBLE_OP_MUL, back, ka, "scaled", -1, &t));
    TRY(ox_binary(c, CRUCIBLE_OP_ADD, t, kb, "biased", -1, &u));
    TRY(ox_binary(c, CRUCIBLE_OP_POW, u, kp, "denominator", -1, &p));
    xv = &c->vals[x];
    NEWV(y, ox_out(c, 0, CRUCIBLE_DT_F32, xv->rank, xv->dims));
    return ox_binary(c, CRUCIBLE_OP_DIV, x, p, NULL, y, &res);
}

/* ---- Resize, Upsample -------------------------------------------------------
 * Each resized axis is a constant linear map of that axis: nearest is a
 * gather with constant indices (exact, any dtype); linear and cubic are a
 * matmul with a constant [out, in] weight matrix (the last two axes only). */
enum { CT_HALF_PIXEL, CT_PYTORCH_HALF_PIXEL, CT_ALIGN_CORNERS, CT_ASYMMETRIC,
       CT_TF_HALF_PIXEL_NN };
enum { NM_ROUND_FLOOR, NM_ROUND_CEIL, NM_FLOOR, NM_CEIL };

static double rs_coord(int ct, double o, double s, int64_t in)
{
    double ow = s * (double)in;
    switch (ct) {
    case CT_PYTORCH_HALF_PIXEL: return ow > 1.0 ? (o + 0.5) / s - 0.5 : -0.5;
    case CT_ALIGN_CORNERS:
        return ow == 1.0 ? 0.0 : o * (double)(in - 1) / (ow - 1.0);
    case CT_ASYMMETRIC: return o / s;
    case CT_TF_HALF_PIXEL_NN: return (o + 0.5) / s;
    default: return (o + 0.5) / s - 0.5;
    }
}

static int64_t clampi(int64_t v, int64_t n)
{
    return v < 0 ? 0 : v >= n ? n - 1 : v;
}

static double cubic_w(double t, double A)
{
    t = fabs(t);
    if (t <= 1.0) return ((A + 2.0) * t - (A + 3.0)) * t * t + 1.0;
    if (t < 2.0) return ((A * t - 5.0 * A) * t + 8.0 * A) * t - 4.0 * A;
    return 0.0;
}

int ox_lower_resize(ox_ctx *c)
{
    int upsample = !strcmp(c->cur->op_type, "Upsample");
    int v10 = upsample || c->cur_opset < 11;
    int32_t x = ox_in(c, 0);
    TRY(ox_operand_ok(c, x, "input X"));
    const ox_val *xv = &c->vals[x];
    int32_t r = xv->rank;
    if (r < 1 || !ox_shape_known(xv))
        return ox_unsup(c, "the input's shape is unknown");
    const char *mode = oa_s(c, "mode", "nearest");
    int m_nearest = !strcmp(mode, "nearest"),
        m_linear = !strcmp(mode, "linear") || !strcmp(mode, "bilinear"),
        m_cubic = !v10 && !strcmp(mode, "cubic");
    if (!m_nearest && !m_linear && !m_cubic)
        return ox_unsup(c, "mode '%s'", mode);
    if (oa_i(c, "antialias", 0)) return ox_unsup(c, "antialias");
    /* scales / sizes per axis */
    double scale[CRUCIBLE_MAX_RANK];
    int64_t out[CRUCIBLE_MAX_RANK];
    for (int32_t i = 0; i < r; i++) scale[i] = 1.0, out[i] = xv->dims[i];
    int64_t axes[CRUCIBLE_MAX_RANK];
    uint32_t na = (uint32_t)r;
    for (int32_t i = 0; i < r; i++) axes[i] = i;
    if (!v10 && c->cur_opset >= 18 && oa_find(c, "axes")) {
        const int64_t *a = oa_ints(c, "axes", &na);
        if (!a || na > (uint32_t)r) return ox_unsup(c, "axes invalid");
        for (uint32_t i = 0; i < na; i++) {
            axes[i] = ox_norm_axis(a[i], r);
            if (axes[i] < 0) return ox_unsup(c, "axes invalid");
        }
    }
    int32_t sv = -1, zv = -1;
    if (upsample && c->cur_opset < 9) {
        uint32_t n = 0;
        const Onnx__AttributeProto *a = oa_find(c, "scales");
        if (!a || a->n_floats != (size_t)r)
            return ox_unsup(c, "attribute scales must have one value per axis");
        (void)n;
        for (int32_t i = 0; i < r; i++) scale[i] = a->floats[i];
    } else {
        sv = ox_in(c, v10 ? 1 : 2);
        zv = v10 ? -1 : ox_in(c, 3);
        if (sv >= 0 && c->vals[sv].is_const && ox_val_numel(&c->vals[sv]) == 0 &&
            c->vals[sv].rank >= 0)
            sv = -1; /* empty: use sizes */
        if (sv >= 0) {
            const ox_val *s = &c->vals[sv];
            if (!s->is_const) return ox_unsup(c, "scales is not a constant");
            if (ox_val_numel(s) != na) return ox_unsup(c, "scales has the "
                                                       "wrong length");
            for (uint32_t i = 0; i < na; i++) scale[axes[i]] = ox_get_f(s, i);
        } else if (zv >= 0) {
            const ox_val *z = &c->vals[zv];
            if (!z->is_const) return ox_unsup(c, "sizes is not a constant");
            if (ox_val_numel(z) != na) return ox_unsup(c, "sizes has the "
                                                      "wrong length");
            const char *pol = oa_s(c, "keep_aspect_ratio_policy", "stretch");
            if (strcmp(pol, "stretch"))
                return ox_unsup(c, "keep_aspect_ratio_policy '%s'", pol);
            for (uint32_t i = 0; i < na; i++) {
                int64_t a = axes[i];
                out[a] = ox_get_i(z, i);
                if (out[a] < 1) return ox_unsup(c, "an output size is < 1");
                scale[a] = (double)out[a] / (double)xv->dims[a];
            }
        } else {
            return ox_unsup(c, "neither scales nor sizes is given");
        }
    }
    if (sv >= 0 || (upsample && c->cur_opset < 9)) {
        for (int32_t i = 0; i < r; i++) {
            if (!(scale[i] > 0.0) || scale[i] > 1e6)
                return ox_unsup(c, "scale %g", scale[i]);
            double o = floor((double)xv->dims[i] * scale[i]);
            if (o < 1.0 || o > 1e12) return ox_unsup(c, "the output would be "
                                                     "empty or too large");
            out[i] = (int64_t)o;
        }
    }
    int ct = CT_HALF_PIXEL, nm = NM_ROUND_FLOOR;
    if (v10) {
        ct = CT_ASYMMETRIC;
        nm = NM_FLOOR;
        for (int32_t i = 0; i < r; i++)
            if (scale[i] < 1.0 && !upsample && m_nearest)
                return ox_unsup(c, "nearest downsampling of Resize-10");
    } else {
        const char *s = oa_s(c, "coordinate_transformation_mode", "half_pixel");
        if (!strcmp(s, "pytorch_half_pixel")) ct = CT_PYTORCH_HALF_PIXEL;
        else if (!strcmp(s, "align_corners")) ct = CT_ALIGN_CORNERS;
        else if (!strcmp(s, "asymmetric")) ct = CT_ASYMMETRIC;
        else if (!strcmp(s, "tf_half_pixel_for_nn")) ct = CT_TF_HALF_PIXEL_NN;
        else if (strcmp(s, "half_pixel"))
            return ox_unsup(c, "coordinate_transformation_mode '%s'", s);
        const char *n = oa_s(c, "nearest_mode", "round_prefer_floor");
        if (!strcmp(n, "round_prefer_ceil")) nm = NM_ROUND_CEIL;
        else if (!strcmp(n, "floor")) nm = NM_FLOOR;
        else if (!strcmp(n, "ceil")) nm = NM_CEIL;
        else if (strcmp(n, "round_prefer_floor"))
            return ox_unsup(c, "nearest_mode '%s'", n);
    }
    double A = oa_f(c, "cubic_coeff_a", -0.75);
    int exclude = !v10 && oa_i(c, "exclude_outside", 0) != 0;
    int resized[CRUCIBLE_MAX_RANK], nres = 0, last = -1;
    for (int32_t i = 0; i < r; i++) {
        resized[i] = out[i] != xv->dims[i] || scale[i] != 1.0;
        if (resized[i]) {
            nres++;
            last = i;
            if (!m_nearest && i < r - 2)
                return ox_unsup(c, "%s resize of axis %d (only the last two "
                                "axes)", mode, (int)i);
        }
    }
    if (!m_nearest && xv->dtype != CRUCIBLE_DT_F32)
        return ox_unsup(c, "%s resize of %s", mode, ox_dtype_name(xv->dtype));
    if (!nres) return ox_alias(c, 0, x);
    int32_t cur = x;
    for (int32_t a = 0; a < r; a++) {
        if (!resized[a]) continue;
        int64_t I = xv->dims[a], O = out[a];
        if ((uint64_t)O > OX_FOLD_MAX || (uint64_t)I > OX_FOLD_MAX ||
            (!m_nearest && (uint64_t)O * (uint64_t)I > OX_FOLD_MAX))
            return ox_unsup(c, "resize too large");
        const ox_val *cv = &c->vals[cur];
        int64_t dims[CRUCIBLE_MAX_RANK];
        memcpy(dims, cv->dims, sizeof dims);
        dims[a] = O;
        char sfx[32];
        snprintf(sfx, sizeof sfx, "axis%d", (int)a);
        int32_t y, n;
        if (a == last) NEWV(y, ox_out(c, 0, cv->dtype, r, dims));
        else NEWV(y, ox_tmp(c, sfx, cv->dtype, r, dims));
        if (m_nearest) {
            int64_t *idx = ox_alloc(c, (size_t)O * 8);
            if (!idx) return CRUCIBLE_E_NOMEM;
            for (int64_t o = 0; o < O; o++) {
                double xo = rs_coord(ct, (double)o, scale[a], I);
                double fl = floor(xo), ratio = xo - fl;
                int64_t k;
                if (ratio == 0.0) k = (int64_t)fl;
                else if (nm == NM_ROUND_FLOOR) k = (int64_t)fl + (ratio > 0.5);
                else if (nm == NM_ROUND_CEIL) k = (int64_t)fl + (ratio >= 0.5);
                else if (nm == NM_FLOOR) k = (int64_t)fl;
                else k = (int64_t)fl + 1;
                idx[o] = clampi(k, I);
            }
            int32_t iv, ins[2];
            NEWV(iv, ox_const(c, "indices", CRUCIBLE_DT_I64, 1, &O, idx,
                              (size_t)O * 8));
            ins[0] = cur, ins[1] = iv;
            NEWV(n, ox_node_new(c, CRUCIBLE_OP_GATHER, a == last ? NULL : sfx,
                                2, ins, 1, &y));
            TRY(ox_attr_int(c, n, "axis", a));
            cur = y;
            continue;
        }
        /* weight matrix M [O, I] */
        float *M = ox_alloc(c, (size_t)(O * I) * 4);
        if (!M) return CRUCIBLE_E_NOMEM;
        for (int64_t o = 0; o < O; o++) {
            double xo = rs_coord(ct, (double)o, scale[a], I);
            double fl = floor(xo), ratio = xo - fl;
            int64_t base = (int64_t)fl;
            if (ratio == 0.0) ratio = 1.0, base -= 1;
            double w[4];
            int64_t at[4];
            int nw;
            if (m_linear) {
                nw = 2;
                w[0] = 1.0 - ratio, w[1] = ratio;
                at[0] = base, at[1] = base + 1;
            } else {
                nw = 4;
                for (int k = 0; k < 4; k++) {
                    at[k] = base - 1 + k;
                    w[k] = cubic_w(xo - (double)at[k], A);
                }
            }
            double sum = 0.0;
            if (exclude) {
                for (int k = 0; k < nw; k++) {
                    if (at[k] < 0 || at[k] >= I) w[k] = 0.0;
                    sum += w[k];
                }
                if (sum != 0.0)
                    for (int k = 0; k < nw; k++) w[k] /= sum;
            }
            double row[4] = {0};
            int64_t col[4];
            for (int k = 0; k < nw; k++) {
                col[k] = clampi(at[k], I);
                row[k] = w[k];
            }
            for (int k = 0; k < nw; k++) {
                double acc = 0.0;
                for (int j = 0; j < nw; j++)
                    if (col[j] == col[k]) acc += row[j];
                M[o * I + col[k]] = (float)acc;
            }
        }
        int32_t mv, ins[2];
        if (a == r - 1) { /* x [.., I] @ M^T [I, O] */
            float *MT = ox_alloc(c, (size_t)(O * I) * 4);
            if (!MT) return CRUCIBLE_E_NOMEM;
            for (int64_t o = 0; o < O; o++)
                for (int64_t i = 0; i < I; i++) MT[i * O + o] = M[o * I + i];
            int64_t md[2] = {I, O};
            NEWV(mv, ox_const(c, "weights", CRUCIBLE_DT_F32, 2, md, MT,
                              (size_t)(O * I) * 4));
            ins[0] = cur, ins[1] = mv;
        } else { /* M [O, I] @ x [.., I, W] */
            int64_t md[2] = {O, I};
            NEWV(mv, ox_const(c, "weights", CRUCIBLE_DT_F32, 2, md, M,
                              (size_t)(O * I) * 4));
            ins[0] = mv, ins[1] = cur;
        }
        NEWV(n, ox_node_new(c, CRUCIBLE_OP_MATMUL, a == last ? NULL : sfx, 2,
                            ins, 1, &y));
        cur = y;
    }
    return OX_OK;
}
