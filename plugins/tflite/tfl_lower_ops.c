/*
 * tfl_lower_ops.c - one handler per TFLite builtin operator: checks first
 * (returning TL_UNSUP with a reason, or a fatal status for a malformed
 * file) and only then emission through tfl_lower.c's helpers.
 *
 * Quantised (integer) operators keep the canonical ops with integer
 * dtypes and every tensor's quantisation parameters:
 *   - conv2d / depthwise / transposed conv / dense: the integer product into
 *     an accumulator "<out>:acc" (i32; i64 for 16-bit activations) whose
 *     scale is input_scale * weight_scale[c] (rounded once to f32), zero
 *     point 0, then `requantize` to the output's parameters;
 *   - every other integer compute node, and every requantize, carries the
 *     string attribute rounding = "fixed_q31": TFLite's fixed-point
 *     arithmetic (docs/tflite.md);
 *   - data movement between tensors of different parameters goes through
 *     an explicit `requantize`.
 * What the reference interpreter executes: docs/tflite.md.
 */
#include "tfl_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const int32_t k_nchw_from[4] = {0, 3, 1, 2};  /* NCHW axis j <- NHWC */
static const int32_t k_nchw_pos_of[4] = {0, 2, 3, 1}; /* NHWC axis a -> NCHW */
static const int32_t k_w_perm[4] = {3, 0, 1, 2};     /* 1HWO -> O1HW etc. */

#define X(ti) tl_t(c, ti)
#define DT(ti) (c->vals[ti].dtype)

/* ---- shared checks ---------------------------------------------------------*/
/* Operand counts: n_in in [min_in, max_in] with the first `req` present,
 * exactly n_out outputs, all present. Malformed otherwise. */
static int arity(tl_ctx *c, uint32_t min_in, uint32_t max_in, uint32_t req,
                 uint32_t n_out)
{
    const tfl_operator *o = c->op;
    if (o->n_in < min_in || o->n_in > max_in || o->n_out != n_out)
        return tl_fail(c, CRUCIBLE_E_FORMAT,
                       "operator %u (%s) has %u inputs and %u outputs; it "
                       "takes %u..%u inputs and %u output%s",
                       (unsigned)c->op_index, c->op_name, (unsigned)o->n_in,
                       (unsigned)o->n_out, (unsigned)min_in, (unsigned)max_in,
                       (unsigned)n_out, n_out == 1 ? "" : "s");
    for (uint32_t k = 0; k < req; k++)
        if (o->in[k] < 0)
            return tl_fail(c, CRUCIBLE_E_FORMAT,
                           "operator %u (%s): required input %u is absent",
                           (unsigned)c->op_index, c->op_name, (unsigned)k);
    for (uint32_t k = 0; k < n_out; k++)
        if (o->out[k] < 0)
            return tl_fail(c, CRUCIBLE_E_FORMAT,
                           "operator %u (%s): output %u is absent",
                           (unsigned)c->op_index, c->op_name, (unsigned)k);
    return TL_OK;
}

static int oom(tl_ctx *c)
{
    return tl_fail(c, CRUCIBLE_E_NOMEM, "out of memory");
}

static int bad(tl_ctx *c, const char *what)
{
    return tl_fail(c, CRUCIBLE_E_FORMAT, "operator %u (%s): %s",
                   (unsigned)c->op_index, c->op_name, what);
}

static int same_dims(const tfl_tensor *a, const tfl_tensor *b)
{
    if (a->rank != b->rank) return 0;
    for (int32_t d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d]) return 0;
    return 1;
}

/* Quantised integer tensor with per-tensor parameters? */
static int q_tensor(tl_ctx *c, int32_t ti)
{
    return tl_is_int(DT(ti)) && X(ti)->has_quant && X(ti)->q.n_scale == 1;
}

static int is_f32(tl_ctx *c, int32_t ti)
{
    return DT(ti) == CRUCIBLE_DT_F32;
}

/* Both float (*quantized = 0), or both quantised integers of one dtype
 * (*quantized = 1); TL_UNSUP otherwise. */
static int kind_of(tl_ctx *c, int32_t x, int32_t y, int *quantized)
{
    if (is_f32(c, x) && is_f32(c, y)) {
        *quantized = 0;
        return TL_OK;
    }
    if (q_tensor(c, x) && q_tensor(c, y) && DT(x) == DT(y)) {
        *quantized = 1;
        return TL_OK;
    }
    return tl_unsup(c, "input %s (%s%s) and output %s (%s%s): needs both "
                       "FLOAT32, or both quantised integers of one type",
                    tl_tname(c, x), tfl_type_name(X(x)->type),
                    X(x)->has_quant ? ", quantised" : "", tl_tname(c, y),
                    tfl_type_name(X(y)->type),
                    X(y)->has_quant ? ", quantised" : "");
}

/* Explicit pads for a forward window (conv / pool) along one axis; checks
 * the output size. */
static int window_pads(tl_ctx *c, int8_t padding, int64_t in, int64_t k,
                       int64_t s, int64_t d, int64_t out, int64_t *before,
                       int64_t *after)
{
    int64_t eff = (k - 1) * d + 1, o, total = 0;
    if (padding == TFL_PAD_SAME) {
        o = (in + s - 1) / s;
        total = (o - 1) * s + eff - in;
        if (total < 0) total = 0;
    } else if (padding == TFL_PAD_VALID) {
        if (in < eff)
            return tl_unsup(c, "the window (%lld) is larger than the input "
                               "(%lld) with VALID padding",
                            (long long)eff, (long long)in);
        o = (in - eff) / s + 1;
    } else {
        return tl_unsup(c, "unknown padding %d", (int)padding);
    }
    if (o != out) {
        char m[160];
        snprintf(m, sizeof m,
                 "the output size %lld disagrees with the %s padding rule "
                 "(%lld)",
                 (long long)out, padding == TFL_PAD_SAME ? "SAME" : "VALID",
                 (long long)o);
        return bad(c, m);
    }
    *before = total / 2;
    *after = total - *before;
    return TL_OK;
}

static int check_stride(tl_ctx *c, int32_t sh, int32_t sw, int32_t dh,
                        int32_t dw)
{
    if (sh < 1 || sw < 1 || dh < 1 || dw < 1) {
        char m[128];
        snprintf(m, sizeof m, "strides %d,%d and dilations %d,%d must be >= 1",
                 (int)sh, (int)sw, (int)dh, (int)dw);
        return bad(c, m);
    }
    return TL_OK;
}

/* The output quantisation / requantise step between data movement on src
 * and output y: TL_UNSUP when it cannot be expressed. */
static int movement_quant_ok(tl_ctx *c, int32_t src, int32_t y, int *rq)
{
    *rq = 0;
    if (DT(src) != DT(y))
        return tl_unsup(c, "input %s is %s but output %s is %s",
                        tl_tname(c, src), tfl_type_name(X(src)->type),
                        tl_tname(c, y), tfl_type_name(X(y)->type));
    if (!tl_is_int(DT(y)) || tl_same_quant(X(src), X(y))) return TL_OK;
    if (!q_tensor(c, src) || !q_tensor(c, y))
        return tl_unsup(c, "input %s and output %s have different, "
                           "non-per-tensor quantisation",
                        tl_tname(c, src), tl_tname(c, y));
    *rq = 1;
    return TL_OK;
}

/* Where a data-movement node writes: the output itself, or (rq) a
 * temporary with src's parameters that requantize() then converts. */
static int32_t move_target(tl_ctx *c, int32_t src, int32_t y, int nchw,
                           int rq, int32_t *final)
{
    *final = nchw ? tl_out_nchw(c, y) : tl_out(c, y);
    if (*final < 0 || !rq) return *final;
    const tfl_tensor *t = X(y);
    int64_t d[TFL_MAX_RANK];
    for (int32_t j = 0; j < t->rank; j++)
        d[j] = nchw ? t->dims[k_nchw_from[j]] : t->dims[j];
    char *name = tl_printf(c, "%s:moved", t->name && *t->name ? t->name : "t");
    if (!name) return oom(c);
    return tl_tensor(c, name, DT(y), t->rank, d, X(src), NULL);
}

static int requantize(tl_ctx *c, int32_t from, int32_t to, const char *sfx)
{
    int32_t n = tl_node(c, "requantize", sfx, 1, &from, 1, &to);
    if (n < 0) return n;
    return tl_mark_int(c, n);
}

/* Output tensor (own layout or NCHW twin) and, with a fused activation,
 * the pre-activation temporary the op writes. */
static int out_pair(tl_ctx *c, int32_t y, int nchw, int8_t act,
                    int32_t *pre, int32_t *final)
{
    *final = nchw ? tl_out_nchw(c, y) : tl_out(c, y);
    if (*final < 0) return *final;
    if (act == TFL_ACT_NONE) {
        *pre = *final;
        return CRUCIBLE_OK;
    }
    const tfl_tensor *t = X(y);
    int64_t d[TFL_MAX_RANK];
    for (int32_t j = 0; j < t->rank; j++)
        d[j] = nchw ? t->dims[k_nchw_from[j]] : t->dims[j];
    *pre = tl_tmp(c, y, "preact", 0, t->rank, d, nchw ? k_nchw_from : NULL);
    return *pre < 0 ? *pre : CRUCIBLE_OK;
}

/* ---- FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV ----------*/
typedef struct prod_types {
    int quantized;
    int32_t acc_dt;
} prod_types;

/* x (activation), w (weights), b (bias or -1), y: float, or quantised
 * with per-tensor x / y and weights per tensor or per `wdim`. */
static int product_types(tl_ctx *c, int32_t x, int32_t w, int32_t b,
                         int32_t y, int32_t wdim, prod_types *pt)
{
    memset(pt, 0, sizeof *pt);
    if (is_f32(c, x)) {
        if (!is_f32(c, w))
            return tl_unsup(c, "FLOAT32 input with %s weights %s (hybrid, "
                               "dynamic-range quantisation)",
                            tfl_type_name(X(w)->type), tl_tname(c, w));
        if (b >= 0 && !is_f32(c, b))
            return tl_unsup(c, "FLOAT32 input with a %s bias",
                            tfl_type_name(X(b)->type));
        if (!is_f32(c, y)) return tl_unsup(c, "FLOAT32 input, non-float output");
        return TL_OK;
    }
    int32_t xd = DT(x);
    if (!q_tensor(c, x) || !q_tensor(c, y) ||
        (xd != CRUCIBLE_DT_I8 && xd != CRUCIBLE_DT_U8 && xd != CRUCIBLE_DT_I16))
        return tl_unsup(c, "input %s (%s) and output %s (%s) must both be "
                           "FLOAT32, or quantised INT8 / UINT8 / INT16 per "
                           "tensor",
                        tl_tname(c, x), tfl_type_name(X(x)->type),
                        tl_tname(c, y), tfl_type_name(X(y)->type));
    const tfl_tensor *W = X(w);
    if (!tl_is_int(DT(w)) || DT(w) == CRUCIBLE_DT_I4 || !W->has_quant)
        return tl_unsup(c, "weights %s are %s%s; quantised INT8 / UINT8 "
                           "weights are needed",
                        tl_tname(c, w), tfl_type_name(W->type),
                        W->has_quant ? "" : " without quantisation");
    if (W->q.n_scale > 1 && W->q.qdim != wdim)
        return tl_unsup(c, "weights %s are quantised along dimension %d, "
                           "not the output channels (%d)",
                        tl_tname(c, w), (int)W->q.qdim, (int)wdim);
    if (b >= 0 && DT(b) != CRUCIBLE_DT_I32 && DT(b) != CRUCIBLE_DT_I64)
        return tl_unsup(c, "bias %s is %s; INT32 or INT64 is needed",
                        tl_tname(c, b), tfl_type_name(X(b)->type));
    pt->quantized = 1;
    pt->acc_dt = (xd == CRUCIBLE_DT_I16 ||
                  (b >= 0 && DT(b) == CRUCIBLE_DT_I64))
                     ? CRUCIBLE_DT_I64
                     : CRUCIBLE_DT_I32;
    return TL_OK;
}

/* The accumulator of a quantised product: scale x_scale * w_scale[c]
 * (per tensor, or along `axis` of the accumulator), zero point 0. */
static int32_t make_acc(tl_ctx *c, int32_t x, int32_t w, int32_t y,
                        int32_t dt, int32_t rank, const int64_t *dims,
                        int32_t axis)
{
    const tfl_tensor *Y = X(y);
    char *name = tl_printf(c, "%s:acc", Y->name && *Y->name ? Y->name : "t");
    if (!name) return oom(c);
    int32_t acc = tl_tensor(c, name, dt, rank, dims, NULL, NULL);
    if (acc < 0) return acc;
    const tfl_quant *wq = &X(w)->q;
    uint32_t n = wq->n_scale;
    float *s = tfl_alloc_array(c->a, n, sizeof *s);
    int32_t *z = tfl_alloc_array(c->a, n, sizeof *z);
    if (!s || !z) return oom(c);
    double xs = X(x)->q.scales[0];
    for (uint32_t i = 0; i < n; i++) {
        double v = xs * (double)wq->scales[i];
        s[i] = (float)v;
        if (!(s[i] > 0.0f) || !isfinite(s[i]))
            return tl_fail(c, CRUCIBLE_E_UNSUPPORTED,
                           "operator %u (%s): the accumulator scale %g "
                           "(input scale x weight scale) is not a positive "
                           "finite float",
                           (unsigned)c->op_index, c->op_name, v);
    }
    int rc = tl_quant(c, acc, n > 1 ? axis : -1, n, s, z);
    return rc ? rc : acc;
}

static int h_fully_connected(tl_ctx *c)
{
    int rc = arity(c, 2, 3, 2, 1);
    if (rc) return rc;
    int32_t x = tl_in(c, 0), w = tl_in(c, 1), b = tl_in(c, 2),
            y = tl_out_t(c, 0);
    const tfl_opts *op = &c->op->opts;
    if (op->weights_format != 0)
        return tl_unsup(c, "weights_format %d (shuffled weights)",
                        (int)op->weights_format);
    if ((rc = tl_act_ok(c, op->act))) return rc;
    const tfl_tensor *W = X(w);
    if (W->rank != 2) return tl_unsup(c, "weights of rank %d", (int)W->rank);
    int64_t M = W->dims[0], K = W->dims[1];
    uint64_t nx = tl_numel(X(x));
    if (nx % (uint64_t)K)
        return tl_unsup(c, "the input has %llu elements, not a multiple of "
                           "the weights' %lld columns",
                        (unsigned long long)nx, (long long)K);
    int64_t B = (int64_t)(nx / (uint64_t)K);
    if (tl_numel(X(y)) != (uint64_t)B * (uint64_t)M)
        return bad(c, "the output size is not batch x output units");
    if (b >= 0 && tl_numel(X(b)) != (uint64_t)M)
        return tl_unsup(c, "bias %s does not have %lld elements",
                        tl_tname(c, b), (long long)M);
    prod_types pt;
    if ((rc = product_types(c, x, w, b, y, 0, &pt))) return rc;

    /* emit */
    int64_t d2[2] = {B, K}, o2[2] = {B, M};
    int32_t xin = tl_get(c, x);
    if (xin < 0) return xin;
    if (X(x)->rank != 2 || X(x)->dims[1] != K) {
        int32_t t = tl_tmp(c, x, "2d", 0, 2, d2, NULL);
        if (t < 0) return t;
        int32_t n = tl_node(c, "reshape", "flatten", 1, &xin, 1, &t);
        if (n < 0) return n;
        if ((rc = tl_attr_ints(c, n, "shape", 2, d2))) return rc;
        xin = t;
    }
    int32_t in[3] = {xin, tl_get(c, w), b >= 0 ? tl_get(c, b) : -1};
    if (in[1] < 0) return in[1];
    if (b >= 0 && in[2] < 0) return in[2];
    int out_2d = X(y)->rank == 2 && X(y)->dims[0] == B && X(y)->dims[1] == M;
    int32_t final = out_2d ? tl_out(c, y) : tl_tmp(c, y, "2d", 0, 2, o2, NULL);
    if (final < 0) return final;
    int32_t pre = final;
    if (op->act != TFL_ACT_NONE) {
        pre = tl_tmp(c, y, "preact", 0, 2, o2, NULL);
        if (pre < 0) return pre;
    }
    int32_t prod = pre;
    if (pt.quantized) {
        prod = make_acc(c, x, w, y, pt.acc_dt, 2, o2, 1);
        if (prod < 0) return prod;
    }
    int32_t n = tl_node(c, "dense", NULL, b >= 0 ? 3 : 2, in, 1, &prod);
    if (n < 0) return n;
    if (pt.quantized && (rc = requantize(c, prod, pre, "requantize")))
        return rc;
    if (op->act != TFL_ACT_NONE &&
        (rc = tl_act(c, op->act, pre, final, pt.quantized)))
        return rc;
    if (!out_2d) {
        int32_t o = tl_out(c, y);
        if (o < 0) return o;
        int32_t r = tl_node(c, "reshape", "unflatten", 1, &final, 1, &o);
        if (r < 0) return r;
        if ((rc = tl_attr_ints(c, r, "shape", (uint32_t)X(y)->rank,
                               X(y)->dims)))
            return rc;
    }
    return TL_OK;
}

enum { CONV, DEPTHWISE, TCONV };

static int conv_like(tl_ctx *c, int kind)
{
    int rc = kind == TCONV ? arity(c, 3, 4, 3, 1) : arity(c, 2, 3, 2, 1);
    if (rc) return rc;
    int32_t x, w, b, y = tl_out_t(c, 0);
    if (kind == TCONV) {
        w = tl_in(c, 1);
        x = tl_in(c, 2);
        b = tl_in(c, 3);
    } else {
        x = tl_in(c, 0);
        w = tl_in(c, 1);
        b = tl_in(c, 2);
    }
    const tfl_opts *op = &c->op->opts;
    const tfl_tensor *Xt = X(x), *W = X(w), *Y = X(y);
    if (Xt->rank != 4 || W->rank != 4 || Y->rank != 4)
        return tl_unsup(c, "input, weights and output must have rank 4 "
                           "(they have %d, %d, %d)",
                        (int)Xt->rank, (int)W->rank, (int)Y->rank);
    int32_t dh = kind == TCONV ? 1 : op->dil_h, dw = kind == TCONV ? 1 : op->dil_w;
    if ((rc = check_stride(c, op->stride_h, op->stride_w, dh, dw))) return rc;
    if (kind != TCONV && op->padding != TFL_PAD_SAME &&
        op->padding != TFL_PAD_VALID)
        return tl_unsup(c, "unknown padding %d", (int)op->padding);
    if ((rc = tl_act_ok(c, op->act))) return rc;
    if (Xt->dims[0] != Y->dims[0]) return bad(c, "batch sizes differ");
    for (int d = 1; d < 3; d++)
        if (Xt->dims[d] > INT32_MAX || W->dims[d] > INT32_MAX ||
            Y->dims[d] > INT32_MAX)
            return tl_unsup(c, "spatial sizes beyond 2^31");
    int64_t C = Xt->dims[3], O, KH = W->dims[1], KW = W->dims[2], group = 1;
    int32_t wdim = 0;
    if (kind == CONV) {
        O = W->dims[0];
        if (C % W->dims[3] || O % (C / W->dims[3]))
            return tl_unsup(c, "input channels %lld and weights [%lld,%lld,"
                               "%lld,%lld] do not form a grouped convolution",
                            (long long)C, (long long)W->dims[0],
                            (long long)KH, (long long)KW,
                            (long long)W->dims[3]);
        group = C / W->dims[3];
    } else if (kind == DEPTHWISE) {
        O = W->dims[3];
        wdim = 3;
        if (W->dims[0] != 1 || O % C)
            return tl_unsup(c, "depthwise weights [%lld,%lld,%lld,%lld] for "
                               "%lld input channels",
                            (long long)W->dims[0], (long long)KH,
                            (long long)KW, (long long)O, (long long)C);
        group = C;
    } else {
        O = W->dims[0];
        if (W->dims[3] != C)
            return tl_unsup(c, "weights have %lld input channels, the input "
                               "%lld",
                            (long long)W->dims[3], (long long)C);
    }
    if (Y->dims[3] != O)
        return tl_unsup(c, "output channels %lld, weights give %lld",
                        (long long)Y->dims[3], (long long)O);
    if (b >= 0 && tl_numel(X(b)) != (uint64_t)O)
        return tl_unsup(c, "bias %s does not have %lld elements",
                        tl_tname(c, b), (long long)O);
    if (DT(w) == CRUCIBLE_DT_I4 || DT(w) == CRUCIBLE_DT_F16)
        return tl_unsup(c, "%s weights (not converted by this frontend)",
                        tfl_type_name(W->type));
    prod_types pt;
    if ((rc = product_types(c, x, w, b, y, wdim, &pt))) return rc;

    int64_t pads[4], opad[2] = {0, 0};
    const int64_t ins[2] = {Xt->dims[1], Xt->dims[2]},
                  ks[2] = {KH, KW}, ss[2] = {op->stride_h, op->stride_w},
                  ds[2] = {dh, dw}, outs[2] = {Y->dims[1], Y->dims[2]};
    for (int a = 0; a < 2; a++) {
        int64_t bef, aft;
        if (kind != TCONV) {
            if ((rc = window_pads(c, op->padding, ins[a], ks[a], ss[a], ds[a],
                                  outs[a], &bef, &aft)))
                return rc;
        } else {
            /* TFLite: the padding of a forward conv from the output size
             * back to the size that padding rule gives (not the actual
             * input size), total clamped at 0, before = total / 2 */
            int64_t o2;
            if (op->padding == TFL_PAD_SAME)
                o2 = (outs[a] + ss[a] - 1) / ss[a];
            else if (op->padding == TFL_PAD_VALID)
                o2 = (outs[a] + ss[a] - ks[a]) / ss[a]; /* C division */
            else
                return tl_unsup(c, "unknown padding %d", (int)op->padding);
            int64_t total = (o2 - 1) * ss[a] + ks[a] - outs[a];
            if (total < 0) total = 0;
            bef = total / 2;
            aft = total - bef;
            int64_t full = ss[a] * (ins[a] - 1) + ks[a] - bef - aft;
            int64_t extra = outs[a] - full;
            if (extra < 0) {
                aft -= extra;
            } else if (extra >= ss[a]) {
                return tl_unsup(c, "output size %lld is more than a stride "
                                   "beyond the transposed convolution's %lld",
                                (long long)outs[a], (long long)full);
            }
            opad[a] = extra > 0 ? extra : 0;
        }
        pads[a] = bef;
        pads[a + 2] = aft;
    }
    if (kind == TCONV && tl_is_const(c, tl_in(c, 0))) {
        int64_t shp[8];
        uint32_t ns = 0;
        if (tl_const_ints(c, tl_in(c, 0), shp, 8, &ns, "output_shape") ==
                TL_OK &&
            (ns != 4 || shp[0] != Y->dims[0] || shp[1] != Y->dims[1] ||
             shp[2] != Y->dims[2] || shp[3] != Y->dims[3]))
            return bad(c, "output_shape disagrees with the output tensor");
        c->why[0] = 0;
    }

    /* emit */
    int32_t xin = tl_get_nchw(c, x);
    if (xin < 0) return xin;
    int32_t win = kind == CONV ? tl_get_nchw(c, w)
                               : tl_get_perm(c, w, k_w_perm,
                                             kind == TCONV ? "iohw" : "oihw");
    if (win < 0) return win;
    int32_t bin = b >= 0 ? tl_get(c, b) : -1;
    if (b >= 0 && bin < 0) return bin;
    int32_t pre, final;
    if ((rc = out_pair(c, y, 1, op->act, &pre, &final))) return rc;
    int32_t prod = pre;
    if (pt.quantized) {
        int64_t nd[4] = {Y->dims[0], Y->dims[3], Y->dims[1], Y->dims[2]};
        prod = make_acc(c, x, w, y, pt.acc_dt, 4, nd, 1);
        if (prod < 0) return prod;
    }
    int32_t in[3] = {xin, win, bin};
    int32_t n = tl_node(c, kind == TCONV ? "conv_transpose2d" : "conv2d", NULL,
                        b >= 0 ? 3 : 2, in, 1, &prod);
    if (n < 0) return n;
    int64_t st[2] = {op->stride_h, op->stride_w}, dl[2] = {dh, dw};
    if ((rc = tl_attr_ints(c, n, "strides", 2, st)) ||
        (rc = tl_attr_ints(c, n, "pads", 4, pads)) ||
        (rc = tl_attr_ints(c, n, "dilations", 2, dl)) ||
        (rc = tl_attr_int(c, n, "group", group)))
        return rc;
    if (kind == TCONV && (rc = tl_attr_ints(c, n, "output_padding", 2, opad)))
        return rc;
    if (pt.quantized && (rc = requantize(c, prod, pre, "requantize")))
        return rc;
    if (op->act != TFL_ACT_NONE &&
        (rc = tl_act(c, op->act, pre, final, pt.quantized)))
        return rc;
    return TL_OK;
}

static int h_conv(tl_ctx *c) { return conv_like(c, CONV); }
static int h_depthwise(tl_ctx *c) { return conv_like(c, DEPTHWISE); }
static int h_tconv(tl_ctx *c) { return conv_like(c, TCONV); }

/* ---- pooling ---------------------------------------------------------------*/
static int pool(tl_ctx *c, int is_max)
{
    int rc = arity(c, 1, 1, 1, 1);
    if (rc) return rc;
    int32_t x = tl_in(c, 0), y = tl_out_t(c, 0);
    const tfl_opts *op = &c->op->opts;
    const tfl_tensor *Xt = X(x), *Y = X(y);
    if (Xt->rank != 4 || Y->rank != 4)
        return tl_unsup(c, "input and output must have rank 4");
    if (Xt->dims[0] != Y->dims[0] || Xt->dims[3] != Y->dims[3])
        return bad(c, "batch or channels differ between input and output");
    if (op->filter_h < 1 || op->filter_w < 1) return bad(c, "filter size < 1");
    for (int d = 1; d < 3; d++)
        if (Xt->dims[d] > INT32_MAX || Y->dims[d] > INT32_MAX)
            return tl_unsup(c, "spatial sizes beyond 2^31");
    if ((rc = check_stride(c, op->stride_h, op->stride_w, 1, 1))) return rc;
    if ((rc = tl_act_ok(c, op->act))) return rc;
    int q;
    if ((rc = kind_of(c, x, y, &q))) return rc;
    if (q && !tl_same_quant(Xt, Y))
        return tl_unsup(c, "quantised pooling with different input and "
                           "output parameters");
    int64_t pads[4];
    const int64_t ins[2] = {Xt->dims[1], Xt->dims[2]},
                  ks[2] = {op->filter_h, op->filter_w},
                  ss[2] = {op->stride_h, op->stride_w},
                  outs[2] = {Y->dims[1], Y->dims[2]};
    for (int a = 0; a < 2; a++)
        if ((rc = window_pads(c, op->padding, ins[a], ks[a], ss[a], 1,
                              outs[a], &pads[a], &pads[a + 2])))
            return rc;
    int32_t xin = tl_get_nchw(c, x);
    if (xin < 0) return xin;
    int32_t pre, final;
    if ((rc = out_pair(c, y, 1, op->act, &pre, &final))) return rc;
    int32_t n = tl_node(c, is_max ? "max_pool2d" : "avg_pool2d", NULL, 1, &xin,
                        1, &pre);
    if (n < 0) return n;
    int64_t k[2] = {op->filter_h, op->filter_w};
    if ((rc = tl_attr_ints(c, n, "kernel", 2, k)) ||
        (rc = tl_attr_ints(c, n, "strides", 2, ss)) ||
        (rc = tl_attr_ints(c, n, "pads", 4, pads)))
        return rc;
    if (!is_max && (rc = tl_attr_int(c, n, "count_include_pad", 0))) return rc;
    if (q && !is_max && (rc = tl_mark_int(c, n))) return rc;
    if (op->act != TFL_ACT_NONE && (rc = tl_act(c, op->act, pre, final, q)))
        return rc;
    return TL_OK;
}

static int h_avg_pool(tl_ctx *c) { return pool(c, 0); }
static int h_max_pool(tl_ctx *c) { return pool(c, 1); }

/* ---- reshape family ----------------------------------------------------------*/
static int h_reshape(tl_ctx *c)
{
    int rc = arity(c, 1, 2, 1, 1);
    if (rc) return rc;
    int32_t x = tl_in(c, 0), y = tl_out_t(c, 0);
    if (tl_numel(X(x)) != tl_numel(X(y)))
        return bad(c, "input and output have different element counts");
    int rq;
    if ((rc = movement_quant_ok(c, x, y, &rq))) return rc;
    if (tl_is_const(c, x) && !rq) { /* fold: y is the same constant */
        c->vals[y].data = c->vals[x].data;
        c->vals[y].bytes = c->vals[x].bytes;
        return TL_OK;
    }
    int32_t xin = tl_get(c, x);
    if (xin < 0) return xin;
    int32_t final, dst = move_target(c, x, y, 0, rq, &final);
    if (dst < 0) return dst;
    int32_t n = tl_node(c, "reshape", NULL, 1, &xin, 1, &dst);
    if (n < 0) return n;
    if ((rc = tl_attr_ints(c, n, "shape", (uint32_t)X(y)->rank, X(y)->dims)))
        return rc;
    return rq ? requantize(c, dst, final, "requantize") : TL_OK;
}

/* ---- softmax ------------------------------------------------------------------*/
static int softmax(tl_ctx *c, int is_log)
{
    int rc = arity(c, 1, 1, 1, 1);
    if (rc) return rc;
    int32_t x = tl_in(c, 0), y = tl_out_t(c, 0);
    if (!same_dims(X(x), X(y)) || X(x)->rank < 1)
        return bad(c, "input and output shapes differ (or rank 0)");
    int q;
    if ((rc = kind_of(c, x, y, &q))) return rc;
    double beta = is_log ? 1.0 : (double)c->op->opts.beta;
    int32_t xin = tl_get(c, x);
    if (xin < 0) return xin;
    if (!q && beta != 1.0) {
        float bf = (float)beta;
        int32_t bc = tl_const(c, "beta", CRUCIBLE_DT_F32, 0, NULL, &bf, 4);
        if (bc < 0) return bc;
        int32_t t = tl_tmp(c, x, "scaled", 0, X(x)->rank, X(x)->dims, NULL);
        if (t < 0) return t;
        int32_t in2[2] = {xin, bc};
        int32_t n = tl_node(c, "mul", "beta", 2, in2, 1, &t);
        if (n < 0) return n;
        xin = t;
    }
    int32_t o = tl_out(c, y);
    if (o < 0) return o;
    int32_t n = tl_node(c, is_log ? "log_softmax" : "softmax", NULL, 1, &xin,
                        1, &o);
    if (n < 0) return n;
    if ((rc = tl_attr_int(c, n, "axis", -1))) return rc;
    if (q && (rc = tl_mark_int(c, n))) return rc;
    if (q && beta != 1.0 && (rc = tl_attr_float(c, n, "beta", beta)))
        return rc;
    return TL_OK;
}

static int h_softmax(tl_ctx *c) { return softmax(c, 0); }
static int h_log_softmax(tl_ctx *c) { return softmax(c, 1); }

/* ---- elementwise ----------------------------------------------------------------*/
static int bcast_ok(const tfl_tensor *a, const tfl_tensor *b,
                    const tfl_tensor *y)
{
    int32_t r = a->rank > b->rank ? a->rank : b->rank;
    if (y->rank != r) return 0;
    for (int32_t i = 0; i < r; i++) {
        int64_t da = i < r - a->rank ? 1 : a->dims[i - (r - a->rank)];
        int64_t db = i < r - b->rank ? 1 : b->dims[i - (r - b->rank)];
        if (da != db && da != 1 && db != 1) return 0;
        if (y->dims[i] != (da > db ? da : db)) return 0;
    }
    return 1;
}

static int binary(tl_ctx *c, const char *irop, int has_act)
{
    int rc = arity(c, 2, 2, 2, 1);
    if (rc) return rc;
    int32_t a = tl_in(c, 0), b = tl_in(c, 1), y = tl_out_t(c, 0);
    int8_t act = has_act ? c->op->opts.act : TFL_ACT_NONE;
    if ((rc = tl_act_ok(c, act))) return rc;
    if (!bcast_ok(X(a), X(b), X(y)))
        return bad(c, "the input shapes do not broadcast to the output's");
    int q;
    if ((rc = kind_of(c, a, y, &q)) || (rc = kind_of(c, b, y, &q))) return rc;
    /* stay in NCHW when the operands already are (or are scalars) */
    int nchw = X(y)->rank == 4 && (tl_has_nchw(c, a) || tl_has_nchw(c, b));
    for (int k = 0; k < 2 && nchw; k++) {
        int32_t t = k ? b : a;
        if (!tl_has_nchw(c, t) && tl_numel(X(t)) != 1) nchw = 0;
    }
    int32_t in[2];
    for (int k = 0; k < 2; k++) {
        int32_t t = k ? b : a;
        in[k] = nchw && tl_has_nchw(c, t) ? tl_get_nchw(c, t) : tl_get(c, t);
        if (in[k] < 0) return in[k];
    }
    int32_t pre, final;
    if ((rc = out_pair(c, y, nchw, act, &pre, &final))) return rc;
    int32_t n = tl_node(c, irop, NULL, 2, in, 1, &pre);
    if (n < 0) return n;
    if (q && (rc = tl_mark_int(c, n))) return rc;
    if (act != TFL_ACT_NONE && (rc = tl_act(c, act, pre, final, q))) return rc;
    return TL_OK;
}

static int h_add(tl_ctx *c) { return binary(c, "add", 1); }
static int h_sub(tl_ctx *c) { return binary(c, "sub", 1); }
static int h_mul(tl_ctx *c) { return binary(c, "mul", 1); }
static int h_div(tl_ctx *c) { return binary(c, "div", 1); }
static int h_maximum(tl_ctx *c) { return binary(c, "max", 0); }
static int h_minimum(tl_ctx *c) { return binary(c, "min", 0); }

/* Unary: irop with optional clip bounds / leaky alpha. */
static int unary(tl_ctx *c, const char *irop, double lo, double hi)
{
    int rc = arity(c, 1, 1, 1, 1);
    if (rc) return rc;
    int32_t x = tl_in(c, 0), y = tl_out_t(c, 0);
    if (!same_dims(X(x), X(y))) return bad(c, "input and output shapes differ");
    int q;
    if ((rc = kind_of(c, x, y, &q))) return rc;
    int nchw = tl_has_nchw(c, x) && X(x)->rank == 4;
    int32_t xin = nchw ? tl_get_nchw(c, x) : tl_get(c, x);
    if (xin < 0) return xin;
    int32_t o = nchw ? tl_out_nchw(c, y) : tl_out(c, y);
    if (o < 0) return o;
    int32_t n = tl_node(c, irop, NULL, 1, &xin, 1, &o);
    if (n < 0) return n;
    if (!strcmp(irop, "clip") && ((rc = tl_attr_float(c, n, "min", lo)) ||
                                  (rc = tl_attr_float(c, n, "max", hi))))
        return rc;
    if (!strcmp(irop, "leaky_relu") &&
        (rc = tl_attr_float(c, n, "alpha", (double)c->op->opts.alpha)))
        return rc;
    if (q && (rc = tl_mark_int(c, n))) return rc;
    return TL_OK;
}

static int h_logistic(tl_ctx *c) { return unary(c, "sigmoid", 0, 0); }
static int h_tanh(tl_ctx *c) { return unary(c, "tanh", 0, 0); }
static int h_relu(tl_ctx *c) { return unary(c, "relu", 0, 0); }
static int h_relu6(tl_ctx *c) { return unary(c, "clip", 0, 6); }
static int h_relu_n1(tl_ctx *c) { return unary(c, "clip", -1, 1); }
static int h_leaky(tl_ctx *c) { return unary(c, "leaky_relu", 0, 0); }
static int h_exp(tl_ctx *c) { return unary(c, "exp", 0, 0); }
static int h_log(tl_ctx *c) { return unary(c, "log", 0, 0); }
static int h_sqrt(tl_ctx *c) { return unary(c, "sqrt", 0, 0); }
static int h_neg(tl_ctx *c) { return unary(c, "neg", 0, 0); }
static int h_abs(tl_ctx *c) { return unary(c, "abs", 0, 0); }
static int h_hard_swish(tl_ctx *c) { return unary(c, "hard_swish", 0, 0); }

static int h_prelu(tl_ctx *c)
{
    int rc = arity(c, 2, 2, 2, 1);
    if (rc) return rc;
    int32_t x = tl_in(c, 0), s = tl_in(c, 1), y = tl_out_t(c, 0);
    if (!same_dims(X(x), X(y)) || !bcast_ok(X(x), X(s), X(y)))
        return bad(c, "alpha does not broadcast to the input");
    int q;
    if ((rc = kind_of(c, x, y, &q))) return rc;
    if (!q && !is_f32(c, s)) return tl_unsup(c, "non-float alpha");
    int32_t in[2] = {tl_get(c, x), tl_get(c, s)};
    if (in[0] < 0) return in[0];
    if (in[1] < 0) return in[1];
    int32_t o = tl_out(c, y);
    if (o < 0) return o;
    int32_t n = tl_node(c, "prelu", NULL, 2, in, 1, &o);
    if (n < 0) return n;
    return q ? tl_mark_int(c, n) : TL_OK;
}

/* ---- quantize / dequantize ---------------------------------------------------------*/
static int h_quantize(tl_ctx *c)
{
    int rc = arity(c, 1, 1, 1, 1);
    if (rc) return rc;
    int32_t x = tl_in(c, 0), y = tl_out_t(c, 0);
    if (!same_dims(X(x), X(y))) return bad(c, "input and output shapes differ");
    int32_t yd = DT(y);
    if (!q_tensor(c, y) || yd == CRUCIBLE_DT_I4 || yd == CRUCIBLE_DT_I64)
        return tl_unsup(c, "output %s (%s) must be a quantised INT8 / UINT8 "
                           "/ INT16 / INT32 tensor",
                        tl_tname(c, y), tfl_type_name(X(y)->type));
    int from_float = is_f32(c, x);
    if (!from_float && !q_tensor(c, x))
        return tl_unsup(c, "input %s is %s; FLOAT32 or a quantised integer "
                           "is needed",
                        tl_tname(c, x), tfl_type_name(X(x)->type));
    int nchw = tl_has_nchw(c, x) && X(x)->rank == 4;
    int32_t xin = nchw ? tl_get_nchw(c, x) : tl_get(c, x);
    if (xin < 0) return xin;
    int32_t o = nchw ? tl_out_nchw(c, y) : tl_out(c, y);
    if (o < 0) return o;
    if (!from_float) return requantize(c, xin, o, NULL);
    /* TFLite's AffineQuantize rounds half away from zero: fixed_q31 */
    int32_t n = tl_node(c, "quantize", NULL, 1, &xin, 1, &o);
    return n < 0 ? n : tl_mark_int(c, n);
}

static int h_dequantize(tl_ctx *c)
{
    int rc = arity(c, 1, 1, 1, 1);
    if (rc) return rc;
    int32_t x = tl_in(c, 0), y = tl_out_t(c, 0);
    if (!same_dims(X(x), X(y))) return bad(c, "input and output shapes differ");
    if (!is_f32(c, y)) return tl_unsup(c, "output is not FLOAT32");
    const tfl_tensor *Xt = X(x);
    int f16 = DT(x) == CRUCIBLE_DT_F16;
    if (!f16 && (!tl_is_int(DT(x)) || DT(x) == CRUCIBLE_DT_I4 ||
                 DT(x) == CRUCIBLE_DT_I64 || !Xt->has_quant))
        return tl_unsup(c, "input %s is %s%s", tl_tname(c, x),
                        tfl_type_name(Xt->type),
                        Xt->has_quant ? "" : " without quantisation");
    if (tl_is_const(c, x)) {
        /* fold: y = scale * (float)(q - zp), per tensor or per axis */
        uint64_t n = tl_numel(Xt), inner = 1;
        uint32_t cnt = f16 ? 1 : Xt->q.n_scale;
        if (cnt > 1)
            for (int32_t d = Xt->q.qdim + 1; d < Xt->rank; d++)
                inner *= (uint64_t)Xt->dims[d];
        float *f = tfl_alloc_array(c->a, n, sizeof *f);
        if (!f) return oom(c);
        for (uint64_t i = 0; i < n; i++) {
            double v = tl_elem_f(c, x, i);
            if (f16) {
                f[i] = (float)v;
                continue;
            }
            uint64_t qi = cnt > 1 ? (i / inner) % cnt : 0;
            int64_t dq = (int64_t)v - Xt->q.zero_points[qi];
            f[i] = Xt->q.scales[qi] * (float)dq;
        }
        c->vals[y].data = (const uint8_t *)f;
        c->vals[y].bytes = n * sizeof *f;
        return TL_OK;
    }
    if (f16) return tl_unsup(c, "FLOAT16 activations");
    int nchw = tl_has_nchw(c, x) && Xt->rank == 4;
    int32_t xin = nchw ? tl_get_nchw(c, x) : tl_get(c, x);
    if (xin < 0) return xin;
    int32_t o = nchw ? tl_out_nchw(c, y) : tl_out(c, y);
    if (o < 0) return o;
    int32_t n = tl_node(c, "dequantize", NULL, 1, &xin, 1, &o);
    return n < 0 ? n : TL_OK;
}

/* ---- concatenation -------------------------------------------------------------------*/
static int h_concat(tl_ctx *c)
{
    const tfl_operator *o = c->op;
    int rc = arity(c, 1, TFL_MAX_OP_IO, o->n_in, 1);
    if (rc) return rc;
    int32_t y = tl_out_t(c, 0);
    const tfl_tensor *Y = X(y);
    int64_t axis = c->op->opts.axis;
    if (axis < 0) axis += Y->rank;
    if (axis < 0 || axis >= Y->rank) return bad(c, "axis out of range");
    if ((rc = tl_act_ok(c, c->op->opts.act))) return rc;
    int64_t sum = 0;
    int q = 0, nchw = Y->rank == 4;
    for (uint32_t k = 0; k < o->n_in; k++) {
        int32_t t = o->in[k];
        const tfl_tensor *T = X(t);
        if (T->rank != Y->rank) return bad(c, "inputs of different ranks");
        for (int32_t d = 0; d < Y->rank; d++)
            if (d != axis && T->dims[d] != Y->dims[d])
                return bad(c, "input shapes do not match the output");
        sum += T->dims[axis];
        if ((rc = kind_of(c, t, y, &q))) return rc;
        if (!tl_has_nchw(c, t)) nchw = 0;
    }
    if (sum != Y->dims[axis]) return bad(c, "sizes along the axis do not add up");
    int32_t *in = tfl_alloc_array(c->a, o->n_in, sizeof *in);
    if (!in) return oom(c);
    for (uint32_t k = 0; k < o->n_in; k++) {
        int32_t t = o->in[k];
        in[k] = nchw ? tl_get_nchw(c, t) : tl_get(c, t);
        if (in[k] < 0) return in[k];
        if (q && !tl_same_quant(X(t), Y)) { /* to the output's parameters */
            const tfl_tensor *T = X(t);
            int64_t d[4];
            for (int32_t j = 0; j < T->rank; j++)
                d[j] = nchw ? T->dims[k_nchw_from[j]] : T->dims[j];
            char sfx[32];
            snprintf(sfx, sizeof sfx, "in%u", (unsigned)k);
            int32_t r = tl_tmp(c, y, sfx, 0, T->rank, d, NULL);
            if (r < 0) return r;
            snprintf(sfx, sizeof sfx, "requantize_in%u", (unsigned)k);
            if ((rc = requantize(c, in[k], r, sfx))) return rc;
            in[k] = r;
        }
    }
    int32_t pre, final;
    if ((rc = out_pair(c, y, nchw, c->op->opts.act, &pre, &final))) return rc;
    int32_t n = tl_node(c, "concat", NULL, o->n_in, in, 1, &pre);
    if (n < 0) return n;
    if ((rc = tl_attr_int(c, n, "axis", nchw ? k_nchw_pos_of[axis] : axis)))
        return rc;
    if (c->op->opts.act != TFL_ACT_NONE &&
        (rc = tl_act(c, c->op->opts.act, pre, final, q)))
        return rc;
    return TL_OK;
}

/* ---- pads ------------------------------------------------------------------------------*/
enum { PAD_ZERO, PAD_V2, PAD_MIRROR };

static int pad_like(tl_ctx *c, int kind)
{
    int rc = kind == PAD_V2 ? arity(c, 2, 3, 2, 1) : arity(c, 2, 2, 2, 1);
    if (rc) return rc;
    int32_t x = tl_in(c, 0), y = tl_out_t(c, 0);
    const tfl_tensor *Xt = X(x), *Y = X(y);
    int64_t p[2 * TFL_MAX_RANK];
    uint32_t np = 0;
    if ((rc = tl_const_ints(c, tl_in(c, 1), p, 2 * TFL_MAX_RANK, &np,
                            "paddings")))
        return rc;
    if (np != 2 * (uint32_t)Xt->rank || Y->rank != Xt->rank)
        return bad(c, "paddings must be [rank, 2]");
    for (int32_t d = 0; d < Xt->rank; d++) {
        if (p[2 * d] < 0 || p[2 * d + 1] < 0)
            return bad(c, "negative paddings");
        if (Xt->dims[d] + p[2 * d] + p[2 * d + 1] != Y->dims[d])
            return bad(c, "the output shape is not the padded input's");
    }
    int rq;
    if ((rc = movement_quant_ok(c, x, y, &rq))) return rc;
    if (rq) return tl_unsup(c, "input and output quantisation differ");
    double value = 0.0;
    if (kind == PAD_V2 && tl_in(c, 2) >= 0 &&
        (rc = tl_const_scalar(c, tl_in(c, 2), &value, "constant_values")))
        return rc;
    if (kind == PAD_ZERO && q_tensor(c, y)) /* TFLite pads with the zp */
        value = (double)Y->q.zero_points[0];
    if (kind == PAD_MIRROR && c->op->opts.mirror_mode != 0)
        return tl_unsup(c, "MIRROR_PAD mode SYMMETRIC");
    if (kind == PAD_MIRROR)
        for (int32_t d = 0; d < Xt->rank; d++)
            if (p[2 * d] > Xt->dims[d] - 1 || p[2 * d + 1] > Xt->dims[d] - 1)
                return tl_unsup(c, "reflect padding wider than the input");
    int nchw = tl_has_nchw(c, x) && Xt->rank == 4;
    int64_t pads[2 * TFL_MAX_RANK];
    for (int32_t j = 0; j < Xt->rank; j++) {
        int32_t src = nchw ? k_nchw_from[j] : j;
        pads[j] = p[2 * src];
        pads[Xt->rank + j] = p[2 * src + 1];
    }
    int32_t xin = nchw ? tl_get_nchw(c, x) : tl_get(c, x);
    if (xin < 0) return xin;
    int32_t o = nchw ? tl_out_nchw(c, y) : tl_out(c, y);
    if (o < 0) return o;
    int32_t n = tl_node(c, "pad", NULL, 1, &xin, 1, &o);
    if (n < 0) return n;
    if ((rc = tl_attr_ints(c, n, "pads", 2 * (uint32_t)Xt->rank, pads)))
        return rc;
    if (kind == PAD_MIRROR && (rc = tl_attr_str(c, n, "mode", "reflect")))
        return rc;
    if (value != 0.0 && (rc = tl_attr_float(c, n, "value", value))) return rc;
    return TL_OK;
}

static int h_pad(tl_ctx *c) { return pad_like(c, PAD_ZERO); }
static int h_padv2(tl_ctx *c) { return pad_like(c, PAD_V2); }
static int h_mirror_pad(tl_ctx *c) { return pad_like(c, PAD_MIRROR); }

/* ---- reductions ------------------------------------------------------------------------*/
static int reduce(tl_ctx *c, const char *irop)
{
    int rc = arity(c, 2, 2, 2, 1);
    if (rc) return rc;
    int32_t x = tl_in(c, 0), y = tl_out_t(c, 0);
    const tfl_tensor *Xt = X(x), *Y = X(y);
    int64_t ax[64];
    uint32_t na = 0;
    if ((rc = tl_const_ints(c, tl_in(c, 1), ax, 64, &na, "axes"))) return rc;
    int red[TFL_MAX_RANK] = {0};
    for (uint32_t k = 0; k < na; k++) {
        int64_t a = ax[k] < 0 ? ax[k] + Xt->rank : ax[k];
        if (a < 0 || a >= Xt->rank) return bad(c, "axis out of range");
        red[a] = 1;
    }
    int keep = c->op->opts.keep_dims;
    int32_t r = 0;
    int64_t od[TFL_MAX_RANK];
    for (int32_t d = 0; d < Xt->rank; d++) {
        if (!red[d]) od[r++] = Xt->dims[d];
        else if (keep) od[r++] = 1;
    }
    int shape_ok = r == Y->rank;
    for (int32_t d = 0; shape_ok && d < r; d++) shape_ok = od[d] == Y->dims[d];
    if (!shape_ok && !(r == 0 && Y->rank == 1 && Y->dims[0] == 1))
        return bad(c, "the output shape is not the reduced input's");
    int q;
    if ((rc = kind_of(c, x, y, &q))) return rc;
    /* NCHW when the input is: a kept-dims result is a twin; a dropped-dims
     * result is used as is when the remaining axes keep their order */
    int nchw = tl_has_nchw(c, x) && Xt->rank == 4, twin_out = 0;
    if (nchw && keep) {
        twin_out = Y->rank == 4;
        nchw = twin_out;
    } else if (nchw) {
        int32_t a1[4], a2[4], n1 = 0, n2 = 0;
        for (int j = 0; j < 4; j++) {
            if (!red[k_nchw_from[j]]) a1[n1++] = k_nchw_from[j];
            if (!red[j]) a2[n2++] = j;
        }
        for (int j = 0; j < n1 && nchw; j++) nchw = a1[j] == a2[j];
    }
    int64_t axes[TFL_MAX_RANK];
    uint32_t n_axes = 0;
    for (int32_t d = 0; d < Xt->rank; d++)
        if (red[d]) axes[n_axes++] = nchw ? k_nchw_pos_of[d] : d;
    int32_t xin = nchw ? tl_get_nchw(c, x) : tl_get(c, x);
    if (xin < 0) return xin;
    int32_t o;
    if (twin_out) {
        o = tl_out_nchw(c, y);
    } else if (r == Y->rank) {
        o = tl_out(c, y);
    } else { /* rank-0 result stored as [1] */
        o = tl_tmp(c, y, "scalar", 0, 0, NULL, NULL);
    }
    if (o < 0) return o;
    int32_t n = tl_node(c, irop, NULL, 1, &xin, 1, &o);
    if (n < 0) return n;
    if ((rc = tl_attr_ints(c, n, "axes", n_axes, axes)) ||
        (rc = tl_attr_int(c, n, "keepdims", keep)))
        return rc;
    if (q && (rc = tl_mark_int(c, n))) return rc;
    if (!twin_out && r != Y->rank) {
        int32_t oy = tl_out(c, y);
        if (oy < 0) return oy;
        int32_t rn = tl_node(c, "reshape", "to_1", 1, &o, 1, &oy);
        if (rn < 0) return rn;
        int64_t one = 1;
        if ((rc = tl_attr_ints(c, rn, "shape", 1, &one))) return rc;
    }
    return TL_OK;
}

static int h_mean(tl_ctx *c) { return reduce(c, "reduce_mean"); }
static int h_sum(tl_ctx *c) { return reduce(c, "reduce_sum"); }
static int h_reduce_max(tl_ctx *c) { return reduce(c, "reduce_max"); }

/* ---- slicing -----------------------------------------------------------------------------*/
/* Emits slice(x) -> y (reshaped to y's shape when `reshape`), with the
 * per-axis start / end / step already normalised to [0, d] (end -1 is
 * passed as -(d+1), the ONNX way to say "before index 0"). */
static int emit_slice(tl_ctx *c, int32_t x, int32_t y, uint32_t n,
                      const int64_t *st, const int64_t *en, const int64_t *sp,
                      const int64_t *len, int reshape, int rq)
{
    int rc;
    const tfl_tensor *Xt = X(x);
    int64_t starts[TFL_MAX_RANK], ends[TFL_MAX_RANK], axes[TFL_MAX_RANK];
    for (uint32_t i = 0; i < n; i++) {
        starts[i] = st[i];
        ends[i] = en[i] < 0 ? -(Xt->dims[i] + 1) : en[i];
        axes[i] = i;
    }
    int32_t xin = tl_get(c, x);
    if (xin < 0) return xin;
    int32_t final, dst = move_target(c, x, y, 0, rq, &final);
    if (dst < 0) return dst;
    int32_t so = dst;
    if (reshape) {
        int64_t d[TFL_MAX_RANK];
        for (int32_t i = 0; i < Xt->rank; i++)
            d[i] = (uint32_t)i < n ? len[i] : Xt->dims[i];
        so = tl_tmp(c, y, "sliced", 0, Xt->rank, d, NULL);
        if (so < 0) return so;
    }
    int32_t nd = tl_node(c, "slice", NULL, 1, &xin, 1, &so);
    if (nd < 0) return nd;
    if ((rc = tl_attr_ints(c, nd, "starts", n, starts)) ||
        (rc = tl_attr_ints(c, nd, "ends", n, ends)) ||
        (rc = tl_attr_ints(c, nd, "axes", n, axes)) ||
        (rc = tl_attr_ints(c, nd, "steps", n, sp)))
        return rc;
    if (reshape) {
        int32_t r = tl_node(c, "reshape", "shrink", 1, &so, 1, &dst);
        if (r < 0) return r;
        int64_t one = 1;
        if ((rc = X(y)->rank ? tl_attr_ints(c, r, "shape", (uint32_t)X(y)->rank,
                                           X(y)->dims)
                            : tl_attr_ints(c, r, "shape", 0, &one)))
            return rc;
    }
    return rq ? requantize(c, dst, final, "requantize") : TL_OK;
}

static int h_strided_slice(tl_ctx *c)
{
    int rc = arity(c, 4, 4, 4, 1);
    if (rc) return rc;
    int32_t x = tl_in(c, 0), y = tl_out_t(c, 0);
    const tfl_tensor *Xt = X(x), *Y = X(y);
    const tfl_opts *op = &c->op->opts;
    if (op->ellipsis_mask || op->new_axis_mask)
        return tl_unsup(c, "ellipsis_mask / new_axis_mask");
    int64_t b[TFL_MAX_RANK], e[TFL_MAX_RANK], s[TFL_MAX_RANK];
    uint32_t nb, ne, ns;
    if ((rc = tl_const_ints(c, tl_in(c, 1), b, TFL_MAX_RANK, &nb, "begin")) ||
        (rc = tl_const_ints(c, tl_in(c, 2), e, TFL_MAX_RANK, &ne, "end")) ||
        (rc = tl_const_ints(c, tl_in(c, 3), s, TFL_MAX_RANK, &ns, "strides")))
        return rc;
    if (nb != ne || nb != ns || nb > (uint32_t)Xt->rank)
        return bad(c, "begin, end and strides must have one entry per "
                      "sliced axis");
    int64_t st[TFL_MAX_RANK], en[TFL_MAX_RANK], len[TFL_MAX_RANK];
    int64_t od[TFL_MAX_RANK];
    int32_t r = 0;
    int shrink_any = 0;
    for (uint32_t i = 0; i < (uint32_t)Xt->rank; i++) {
        int64_t d = Xt->dims[i];
        if (i >= nb) {
            od[r++] = d;
            continue;
        }
        if (s[i] == 0) return bad(c, "a stride of 0");
        if (b[i] < -((int64_t)1 << 40) || b[i] > ((int64_t)1 << 40) ||
            e[i] < -((int64_t)1 << 40) || e[i] > ((int64_t)1 << 40) ||
            s[i] < -((int64_t)1 << 40) || s[i] > ((int64_t)1 << 40))
            return bad(c, "begin / end / stride out of range");
        if (op->shrink_mask & (1 << i)) {
            int64_t a = b[i] < 0 ? b[i] + d : b[i];
            if (a < 0 || a >= d) return bad(c, "shrink index out of range");
            st[i] = a;
            en[i] = a + 1;
            s[i] = 1;
            len[i] = 1;
            shrink_any = 1;
            continue;
        }
        int64_t lo = s[i] > 0 ? 0 : -1, hi = s[i] > 0 ? d : d - 1;
        int64_t a = (op->begin_mask & (1 << i)) ? (s[i] > 0 ? 0 : d - 1)
                                                : (b[i] < 0 ? b[i] + d : b[i]);
        a = a < lo ? lo : a > hi ? hi : a;
        int64_t z;
        if (op->end_mask & (1 << i)) {
            z = s[i] > 0 ? d : -1;
        } else {
            z = op->offset ? b[i] + e[i] : e[i];
            if (z < 0) z += d;
            z = z < lo ? lo : z > hi ? hi : z;
        }
        int64_t l = s[i] > 0 ? (z - a + s[i] - 1) / s[i]
                             : (a - z + (-s[i]) - 1) / (-s[i]);
        if (l < 1) return tl_unsup(c, "the slice along axis %u is empty", i);
        st[i] = a;
        en[i] = z;
        len[i] = l;
        od[r++] = l;
    }
    int shape_ok = r == Y->rank;
    for (int32_t i = 0; shape_ok && i < r; i++) shape_ok = od[i] == Y->dims[i];
    if (!shape_ok) return bad(c, "the output shape is not the slice's");
    int rq;
    if ((rc = movement_quant_ok(c, x, y, &rq))) return rc;
    if (!nb) { /* nothing sliced: a copy */
        nb = 1;
        st[0] = 0;
        en[0] = Xt->rank ? Xt->dims[0] : 1;
        s[0] = 1;
        len[0] = en[0];
        if (!Xt->rank) return tl_unsup(c, "slicing a scalar");
    }
    return emit_slice(c, x, y, nb, st, en, s, len, shrink_any, rq);
}

static int h_slice(tl_ctx *c)
{
    int rc = arity(c, 3, 3, 3, 1);
    if (rc) return rc;
    int32_t x = tl_in(c, 0), y = tl_out_t(c, 0);
    const tfl_tensor *Xt = X(x), *Y = X(y);
    int64_t b[TFL_MAX_RANK], sz[TFL_MAX_RANK], st[TFL_MAX_RANK],
        en[TFL_MAX_RANK], sp[TFL_MAX_RANK];
    uint32_t nb, ns;
    if ((rc = tl_const_ints(c, tl_in(c, 1), b, TFL_MAX_RANK, &nb, "begin")) ||
        (rc = tl_const_ints(c, tl_in(c, 2), sz, TFL_MAX_RANK, &ns, "size")))
        return rc;
    if (nb != ns || nb != (uint32_t)Xt->rank || Y->rank != Xt->rank)
        return bad(c, "begin and size must have one entry per axis");
    for (uint32_t i = 0; i < nb; i++) {
        int64_t d = Xt->dims[i];
        if (b[i] < 0 || b[i] >= d) return bad(c, "begin out of range");
        int64_t l = sz[i] == -1 ? d - b[i] : sz[i];
        if (l < 1 || l > d - b[i] || l != Y->dims[i])
            return bad(c, "size out of range or not the output's");
        st[i] = b[i];
        en[i] = b[i] + l;
        sp[i] = 1;
    }
    int rq;
    if ((rc = movement_quant_ok(c, x, y, &rq))) return rc;
    return emit_slice(c, x, y, nb, st, en, sp, Y->dims, 0, rq);
}

/* ---- transpose, gather ---------------------------------------------------------------------*/
static int h_transpose(tl_ctx *c)
{
    int rc = arity(c, 2, 2, 2, 1);
    if (rc) return rc;
    int32_t x = tl_in(c, 0), y = tl_out_t(c, 0);
    const tfl_tensor *Xt = X(x), *Y = X(y);
    int64_t p[TFL_MAX_RANK];
    uint32_t np;
    if ((rc = tl_const_ints(c, tl_in(c, 1), p, TFL_MAX_RANK, &np, "perm")))
        return rc;
    int seen[TFL_MAX_RANK] = {0};
    if (np != (uint32_t)Xt->rank || Y->rank != Xt->rank)
        return bad(c, "perm must have one entry per axis");
    for (uint32_t i = 0; i < np; i++) {
        if (p[i] < 0 || p[i] >= Xt->rank || seen[p[i]])
            return bad(c, "perm is not a permutation");
        seen[p[i]] = 1;
        if (Y->dims[i] != Xt->dims[p[i]])
            return bad(c, "the output shape is not the permuted input's");
    }
    int rq;
    if ((rc = movement_quant_ok(c, x, y, &rq))) return rc;
    int32_t xin = tl_get(c, x);
    if (xin < 0) return xin;
    int32_t final, dst = move_target(c, x, y, 0, rq, &final);
    if (dst < 0) return dst;
    int32_t n = tl_node(c, "transpose", NULL, 1, &xin, 1, &dst);
    if (n < 0) return n;
    if ((rc = tl_attr_ints(c, n, "perm", np, p))) return rc;
    return rq ? requantize(c, dst, final, "requantize") : TL_OK;
}

static int h_gather(tl_ctx *c)
{
    int rc = arity(c, 2, 2, 2, 1);
    if (rc) return rc;
    int32_t x = tl_in(c, 0), ix = tl_in(c, 1), y = tl_out_t(c, 0);
    const tfl_tensor *Xt = X(x), *I = X(ix), *Y = X(y);
    if (c->op->opts.batch_dims != 0)
        return tl_unsup(c, "batch_dims %d", (int)c->op->opts.batch_dims);
    if (DT(ix) != CRUCIBLE_DT_I32 && DT(ix) != CRUCIBLE_DT_I64)
        return tl_unsup(c, "indices of type %s", tfl_type_name(I->type));
    int64_t axis = c->op->opts.axis;
    if (axis < 0) axis += Xt->rank;
    if (axis < 0 || axis >= Xt->rank) return bad(c, "axis out of range");
    if (Y->rank != Xt->rank - 1 + I->rank)
        return bad(c, "the output rank is not the gather's");
    int rq;
    if ((rc = movement_quant_ok(c, x, y, &rq))) return rc;
    int32_t in[2] = {tl_get(c, x), tl_get(c, ix)};
    if (in[0] < 0) return in[0];
    if (in[1] < 0) return in[1];
    int32_t final, dst = move_target(c, x, y, 0, rq, &final);
    if (dst < 0) return dst;
    int32_t n = tl_node(c, "gather", NULL, 2, in, 1, &dst);
    if (n < 0) return n;
    if ((rc = tl_attr_int(c, n, "axis", axis))) return rc;
    return rq ? requantize(c, dst, final, "requantize") : TL_OK;
}

/* ---- the table ------------------------------------------------------------------------------*/
static const tl_opdef g_ops[] = {
    {TFL_OP_ADD, 5, TFL_OPT_ADD, h_add},
    {TFL_OP_AVERAGE_POOL_2D, 3, TFL_OPT_POOL2D, h_avg_pool},
    {TFL_OP_CONCATENATION, 4, TFL_OPT_CONCATENATION, h_concat},
    {TFL_OP_CONV_2D, 8, TFL_OPT_CONV2D, h_conv},
    {TFL_OP_DEPTHWISE_CONV_2D, 7, TFL_OPT_DEPTHWISE, h_depthwise},
    {TFL_OP_DEQUANTIZE, 6, 0, h_dequantize},
    {TFL_OP_FULLY_CONNECTED, 13, TFL_OPT_FULLY_CONNECTED, h_fully_connected},
    {TFL_OP_LOGISTIC, 3, 0, h_logistic},
    {TFL_OP_MAX_POOL_2D, 3, TFL_OPT_POOL2D, h_max_pool},
    {TFL_OP_MUL, 7, TFL_OPT_MUL, h_mul},
    {TFL_OP_RELU, 3, 0, h_relu},
    {TFL_OP_RELU_N1_TO_1, 1, 0, h_relu_n1},
    {TFL_OP_RELU6, 3, 0, h_relu6},
    {TFL_OP_RESHAPE, 1, TFL_OPT_RESHAPE, h_reshape},
    {TFL_OP_SOFTMAX, 3, TFL_OPT_SOFTMAX, h_softmax},
    {TFL_OP_TANH, 3, 0, h_tanh},
    {TFL_OP_PAD, 4, TFL_OPT_PAD, h_pad},
    {TFL_OP_GATHER, 7, TFL_OPT_GATHER, h_gather},
    {TFL_OP_TRANSPOSE, 6, TFL_OPT_TRANSPOSE, h_transpose},
    {TFL_OP_MEAN, 3, TFL_OPT_REDUCER, h_mean},
    {TFL_OP_SUB, 5, TFL_OPT_SUB, h_sub},
    {TFL_OP_DIV, 2, TFL_OPT_DIV, h_div},
    {TFL_OP_SQUEEZE, 2, TFL_OPT_SQUEEZE, h_reshape},
    {TFL_OP_STRIDED_SLICE, 8, TFL_OPT_STRIDED_SLICE, h_strided_slice},
    {TFL_OP_EXP, 2, 0, h_exp},
    {TFL_OP_LOG_SOFTMAX, 2, 0, h_log_softmax},
    {TFL_OP_PRELU, 1, 0, h_prelu},
    {TFL_OP_MAXIMUM, 4, 0, h_maximum},
    {TFL_OP_MINIMUM, 4, 0, h_minimum},
    {TFL_OP_NEG, 2, 0, h_neg},
    {TFL_OP_PADV2, 4, 0, h_padv2},
    {TFL_OP_SLICE, 6, 0, h_slice},
    {TFL_OP_TRANSPOSE_CONV, 5, TFL_OPT_TRANSPOSE_CONV, h_tconv},
    {TFL_OP_EXPAND_DIMS, 1, 0, h_reshape},
    {TFL_OP_LOG, 2, 0, h_log},
    {TFL_OP_SUM, 2, TFL_OPT_REDUCER, h_sum},
    {TFL_OP_SQRT, 2, 0, h_sqrt},
    {TFL_OP_REDUCE_MAX, 3, TFL_OPT_REDUCER, h_reduce_max},
    {TFL_OP_LEAKY_RELU, 2, TFL_OPT_LEAKY_RELU, h_leaky},
    {TFL_OP_MIRROR_PAD, 3, TFL_OPT_MIRROR_PAD, h_mirror_pad},
    {TFL_OP_ABS, 5, 0, h_abs},
    {TFL_OP_QUANTIZE, 3, 0, h_quantize},
    {TFL_OP_HARD_SWISH, 1, 0, h_hard_swish},
};

const tl_opdef *tl_find_op(int32_t code)
{
    for (size_t i = 0; i < sizeof g_ops / sizeof g_ops[0]; i++)
        if (g_ops[i].code == code) return &g_ops[i];
    return NULL;
}
