/* interp_nn.c - reference kernels: f32 dense, matmul, conv2d,
 * conv_transpose2d, pooling, softmax and reductions, and the integer
 * (u8/i8 -> i32) dense, matmul and conv2d.
 *
 * Every accumulation starts from 0.0f and adds terms one at a time in the
 * order the loops below visit them (documented in docs/ir-ops.md); a bias
 * is added last. No FP contraction, no excess precision (see interp.c). */
#include "interp.h"

#include <crucible/kernels.h>
#include <math.h>
#include <stdio.h>

/* No fused multiply-add: every product is rounded before it is added. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#define NERR(...) interp_node_err(err, errlen, n, CRUCIBLE_E_INVALID, __VA_ARGS__)

static uint64_t numel(const cr_array *a)
{
    uint64_t e = 1;
    for (int32_t i = 0; i < a->rank; i++) e *= (uint64_t)a->dims[i];
    return e;
}

static int k_dense(const cr_array *x, const cr_array *w, const cr_array *b,
                   cr_array *o)
{
    const int64_t rows = o->dims[0], M = w->dims[0], K = w->dims[1];
    const float *px = (const float *)x->data, *pw = (const float *)w->data;
    const float *pb = b ? (const float *)b->data : NULL;
    float *py = (float *)o->data;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = px + r * K;
        for (int64_t m = 0; m < M; m++) {
            const float *wr = pw + m * K;
            float acc = 0.0f;
            for (int64_t k = 0; k < K; k++) acc += xr[k] * wr[k];
            py[r * M + m] = pb ? acc + pb[m] : acc;
        }
    }
    return CRUCIBLE_OK;
}

static int k_matmul(const cr_array *a, const cr_array *b, cr_array *o)
{
    /* rank-1 operands: a [K] acts as [1,K], b [K] as [K,1] */
    int64_t R = a->rank >= 2 ? a->dims[a->rank - 2] : 1;
    int64_t K = a->dims[a->rank - 1];
    int64_t C = b->rank >= 2 ? b->dims[b->rank - 1] : 1;
    cr_array ba, bb;
    memset(&ba, 0, sizeof ba);
    memset(&bb, 0, sizeof bb);
    ba.rank = a->rank > 2 ? a->rank - 2 : 0;
    bb.rank = b->rank > 2 ? b->rank - 2 : 0;
    memcpy(ba.dims, a->dims, (size_t)ba.rank * sizeof(int64_t));
    memcpy(bb.dims, b->dims, (size_t)bb.rank * sizeof(int64_t));
    int32_t rb = ba.rank > bb.rank ? ba.rank : bb.rank;
    /* the output's leading rb dims are the broadcast batch dims */
    interp_iter it;
    interp_it_init(&it, rb, o->dims);
    interp_bcast_strides(&ba, rb, it.st[0]);
    interp_bcast_strides(&bb, rb, it.st[1]);
    uint64_t nbatch = 1;
    for (int32_t i = 0; i < rb; i++) nbatch *= (uint64_t)o->dims[i];
    const float *pa = (const float *)a->data, *pb = (const float *)b->data;
    float *py = (float *)o->data;
    for (uint64_t bi = 0; bi < nbatch; bi++) {
        const float *A = pa + it.off[0] * R * K;
        const float *B = pb + it.off[1] * K * C;
        float *Y = py + (int64_t)bi * R * C;
        for (int64_t i = 0; i < R; i++)
            for (int64_t j = 0; j < C; j++) {
                float acc = 0.0f;
                for (int64_t k = 0; k < K; k++)
                    acc += A[i * K + k] * B[k * C + j];
                Y[i * C + j] = acc;
            }
        interp_it_next(&it);
    }
    return CRUCIBLE_OK;
}

static int k_conv(const cr_node *n, const cr_array *x, const cr_array *w,
                  const cr_array *b, cr_array *o, char *err, size_t errlen)
{
    interp_conv_params p;
    int rc = interp_conv_params_get(n, &p, err, errlen);
    if (rc) return rc;
    const int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2],
                  W = x->dims[3];
    const int64_t O = o->dims[1], OH = o->dims[2], OW = o->dims[3];
    const int64_t KH = w->dims[2], KW = w->dims[3], G = p.group;
    const int64_t sh = p.stride[0], sw = p.stride[1], dh = p.dil[0],
                  dw = p.dil[1], pt = p.pad[0], pl = p.pad[1];
    const float *px = (const float *)x->data, *pw = (const float *)w->data;
    const float *pb = b ? (const float *)b->data : NULL;
    float *py = (float *)o->data;
    if (n->op == CRUCIBLE_OP_CONV2D) {
        const int64_t icg = C / G, ocg = O / G;
        for (int64_t nb = 0; nb < N; nb++)
            for (int64_t oc = 0; oc < O; oc++) {
                const int64_t gi = oc / ocg;
                const float *wo = pw + oc * icg * KH * KW;
                float *yo = py + (nb * O + oc) * OH * OW;
                for (int64_t oh = 0; oh < OH; oh++)
                    for (int64_t ow = 0; ow < OW; ow++) {
                        const int64_t ih0 = oh * sh - pt, iw0 = ow * sw - pl;
                        float acc = 0.0f;
                        for (int64_t ic = 0; ic < icg; ic++) {
                            const float *xc =
                                px + (nb * C + gi * icg + ic) * H * W;
                            const float *wc = wo + ic * KH * KW;
                            for (int64_t kh = 0; kh < KH; kh++) {
                                const int64_t ih = ih0 + kh * dh;
                                if (ih < 0 || ih >= H) continue;
                                for (int64_t kw = 0; kw < KW; kw++) {
                                    const int64_t iw = iw0 + kw * dw;
                                    if (iw < 0 || iw >= W) continue;
                                    acc += xc[ih * W + iw] * wc[kh * KW + kw];
                                }
                            }
                        }
                        yo[oh * OW + ow] = pb ? acc + pb[oc] : acc;
                    }
            }
        return CRUCIBLE_OK;
    }
    /* conv_transpose2d, gather form: w [C, O/G, KH, KW] */
    const int64_t icg = C / G, ocg = O / G;
    for (int64_t nb = 0; nb < N; nb++)
        for (int64_t oc = 0; oc < O; oc++) {
            const int64_t gi = oc / ocg, j = oc % ocg;
            float *yo = py + (nb * O + oc) * OH * OW;
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    float acc = 0.0f;
                    for (int64_t ic = 0; ic < icg; ic++) {
                        const int64_t c = gi * icg + ic;
                        const float *xc = px + (nb * C + c) * H * W;
                        const float *wc = pw + (c * ocg + j) * KH * KW;
                        for (int64_t kh = 0; kh < KH; kh++) {
                            const int64_t th = oh + pt - kh * dh;
                            if (th < 0 || th % sh) continue;
                            const int64_t ih = th / sh;
                            if (ih >= H) continue;
                            for (int64_t kw = 0; kw < KW; kw++) {
                                const int64_t tw = ow + pl - kw * dw;
                                if (tw < 0 || tw % sw) continue;
                                const int64_t iw = tw / sw;
                                if (iw >= W) continue;
                                acc += xc[ih * W + iw] * wc[kh * KW + kw];
                            }
                        }
                    }
                    yo[oh * OW + ow] = pb ? acc + pb[oc] : acc;
                }
        }
    return CRUCIBLE_OK;
}

static int k_pool(const cr_node *n, const cr_array *x, cr_array *o,
                  char *err, size_t errlen)
{
    interp_pool_params p;
    int rc = interp_pool_params_get(n, &p, err, errlen);
    if (rc) return rc;
    const int64_t NC = x->dims[0] * x->dims[1], H = x->dims[2],
                  W = x->dims[3], OH = o->dims[2], OW = o->dims[3];
    const int64_t KH = p.kernel[0], KW = p.kernel[1], sh = p.stride[0],
                  sw = p.stride[1], dh = p.dil[0], dw = p.dil[1];
    const int64_t pt = p.pad[0], pl = p.pad[1], pb = p.pad[2],
                  pr = p.pad[3];
    const int is_max = n->op == CRUCIBLE_OP_MAX_POOL2D;
    for (int64_t c = 0; c < NC; c++) {
        const float *xc = (const float *)x->data + c * H * W;
        float *yc = (float *)o->data + c * OH * OW;
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                const int64_t ih0 = oh * sh - pt, iw0 = ow * sw - pl;
                float acc = 0.0f;
                int64_t cnt = 0;
                int first = 1;
                for (int64_t kh = 0; kh < KH; kh++) {
                    const int64_t ih = ih0 + kh * dh;
                    const int in_h = ih >= 0 && ih < H;
                    const int pad_h = ih >= -pt && ih < H + pb;
                    for (int64_t kw = 0; kw < KW; kw++) {
                        const int64_t iw = iw0 + kw * dw;
                        const int in_w = iw >= 0 && iw < W;
                        if (in_h && in_w) {
                            const float v = xc[ih * W + iw];
                            if (is_max) {
                                if (first || v > acc) acc = v;
                                first = 0;
                            } else {
                                acc += v;
                                if (!p.count_include_pad) cnt++;
                            }
                        }
                        if (p.count_include_pad && pad_h && iw >= -pl &&
                            iw < W + pr)
                            cnt++;
                    }
                }
                /* shape inference guarantees a non-empty window */
                yc[oh * OW + ow] = is_max ? acc : acc / (float)cnt;
            }
    }
    return CRUCIBLE_OK;
}

static int k_global_pool(const cr_node *n, const cr_array *x, cr_array *o)
{
    const int64_t NC = x->dims[0] * x->dims[1];
    const int64_t S = (int64_t)(numel(x) / (uint64_t)NC);
    const float *px = (const float *)x->data;
    float *py = (float *)o->data;
    for (int64_t c = 0; c < NC; c++) {
        const float *xc = px + c * S;
        if (n->op == CRUCIBLE_OP_GLOBAL_MAX_POOL) {
            float m = xc[0];
            for (int64_t i = 1; i < S; i++)
                if (xc[i] > m) m = xc[i];
            py[c] = m;
        } else {
            float acc = 0.0f;
            for (int64_t i = 0; i < S; i++) acc += xc[i];
            py[c] = acc / (float)S;
        }
    }
    return CRUCIBLE_OK;
}

static int k_softmax(const cr_node *n, const cr_array *x, cr_array *o)
{
    int64_t ax = ir_attr_i(n, "axis", -1);
    if (ax < 0) ax += x->rank;
    int64_t outer = 1, inner = 1, L = x->dims[ax];
    for (int64_t i = 0; i < ax; i++) outer *= x->dims[i];
    for (int32_t i = (int32_t)ax + 1; i < x->rank; i++) inner *= x->dims[i];
    const float *px = (const float *)x->data;
    float *py = (float *)o->data;
    const int is_log = n->op == CRUCIBLE_OP_LOG_SOFTMAX;
    for (int64_t q = 0; q < outer; q++)
        for (int64_t i = 0; i < inner; i++) {
            const float *xs = px + q * L * inner + i;
            float *ys = py + q * L * inner + i;
            float m = xs[0];
            for (int64_t a = 1; a < L; a++)
                if (xs[a * inner] > m) m = xs[a * inner];
            float s = 0.0f;
            if (is_log) {
                for (int64_t a = 0; a < L; a++) s += expf(xs[a * inner] - m);
                const float ls = logf(s);
                for (int64_t a = 0; a < L; a++)
                    ys[a * inner] = (xs[a * inner] - m) - ls;
            } else {
                for (int64_t a = 0; a < L; a++) {
                    const float e = expf(xs[a * inner] - m);
                    ys[a * inner] = e;
                    s += e;
                }
                for (int64_t a = 0; a < L; a++) ys[a * inner] = ys[a * inner] / s;
            }
        }
    return CRUCIBLE_OK;
}

static int k_reduce(const cr_node *n, const cr_array *x, cr_array *o,
                    char *err, size_t errlen)
{
    int red[CRUCIBLE_MAX_RANK] = {0};
    const cr_attr *a = ir_attr(n, "axes");
    if (!a || a->count == 0) {
        for (int32_t i = 0; i < x->rank; i++) red[i] = 1;
    } else {
        for (uint32_t i = 0; i < a->count; i++)
            red[a->ints[i] < 0 ? a->ints[i] + x->rank : a->ints[i]] = 1;
    }
    /* iterate x in row-major order; offset 0 is the output element */
    interp_iter it;
    interp_it_init(&it, x->rank, x->dims);
    int64_t s = 1;
    for (int32_t i = x->rank - 1; i >= 0; i--) {
        it.st[0][i] = red[i] ? 0 : s;
        if (!red[i]) s *= x->dims[i];
    }
    const uint64_t ne = numel(x), no = numel(o);
    const float *px = (const float *)x->data;
    float *py = (float *)o->data;
    if (n->op == CRUCIBLE_OP_REDUCE_MAX) {
        uint8_t *seen = cr_calloc(no, 1);
        if (!seen)
            return interp_node_err(err, errlen, n, CRUCIBLE_E_NOMEM,
                                   "out of memory");
        for (uint64_t j = 0; j < ne; j++) {
            float *y = &py[it.off[0]];
            if (!seen[it.off[0]] || px[j] > *y) *y = px[j];
            seen[it.off[0]] = 1;
            interp_it_next(&it);
        }
        cr_free(seen);
        return CRUCIBLE_OK;
    }
    for (uint64_t j = 0; j < no; j++) py[j] = 0.0f;
    for (uint64_t j = 0; j < ne; j++) {
        py[it.off[0]] += px[j];
        interp_it_next(&it);
    }
    if (n->op == CRUCIBLE_OP_REDUCE_MEAN) {
        const float cnt = (float)(ne / no);
        for (uint64_t j = 0; j < no; j++) py[j] = py[j] / cnt;
    }
    return CRUCIBLE_OK;
}

/* ---- integer dense / matmul / conv2d -------------------------------------
 * u8/i8 operands, i32 result. Each operand is first centred: c = q - zp
 * with the zero point of its element (the input tensor's quantisation
 * parameters, per tensor or per axis; 0 when the tensor has none). All
 * arithmetic is modulo 2^32 (two's complement int32 wrap-around), done in
 * uint32_t so that it is defined C: the sum is then independent of the
 * order, which is nevertheless the f32 kernels' order. */
#define NUNSUP(...)                                                         \
    interp_node_err(err, errlen, n, CRUCIBLE_E_UNSUPPORTED, __VA_ARGS__)

/* The kernel library's format of a packed weight dtype (its decoding,
 * crk_weight_get, is the definition). */
static crk_wfmt packed_fmt(int32_t dt)
{
    return dt == CRUCIBLE_DT_I4        ? CRK_W_I4
           : dt == CRUCIBLE_DT_TERNARY ? CRK_W_TERNARY
                                       : CRK_W_BINARY;
}

static int centre(const cr_graph *g, const cr_node *n, uint32_t k,
                  const cr_array *v, uint32_t **res, char *err,
                  size_t errlen)
{
    *res = NULL;
    const int packed = k == 1 && (v->dtype == CRUCIBLE_DT_I4 ||
                                  v->dtype == CRUCIBLE_DT_TERNARY ||
                                  v->dtype == CRUCIBLE_DT_BINARY);
    if (v->dtype != CRUCIBLE_DT_U8 && v->dtype != CRUCIBLE_DT_I8 && !packed)
        return NUNSUP("input %u is %s; the integer %s takes u8 or i8 "
                      "operands (and i4 / ternary / binary weights)",
                      k, ir_dtype_name(v->dtype), ir_op_name(n->op));
    const cr_tensor *t = &g->tensors[n->inputs[k]];
    uint64_t inner = 1, cnt = 1, ne = numel(v);
    if (t->quant_count) {
        int rc = interp_quant_check(n, t, v, err, errlen);
        if (rc) return rc;
        interp_quant_layout(t, v, &inner, &cnt);
    }
    uint32_t *c = cr_malloc((size_t)(ne ? ne : 1) * sizeof *c);
    if (!c)
        return interp_node_err(err, errlen, n, CRUCIBLE_E_NOMEM,
                               "out of memory");
    const uint8_t *p = (const uint8_t *)v->data;
    for (uint64_t j = 0; j < ne; j++) {
        int64_t q = packed ? (int64_t)crk_weight_get(p, packed_fmt(v->dtype),
                                                      (size_t)j)
                    : v->dtype == CRUCIBLE_DT_U8 ? (int64_t)p[j]
                                                 : (int64_t)(int8_t)p[j];
        int64_t zp = t->quant_count ? t->zero_points[(j / inner) % cnt] : 0;
        c[j] = (uint32_t)(uint64_t)(q - zp); /* low 32 bits */
    }
    *res = c;
    return CRUCIBLE_OK;
}

static void store_i32(cr_array *o, uint64_t j, uint32_t v)
{
    memcpy((char *)o->data + 4 * j, &v, 4); /* two's complement bits */
}

static void ik_dense(const uint32_t *xc, const uint32_t *wc,
                     const cr_array *b, cr_array *o, int64_t K)
{
    const int64_t rows = o->dims[0], M = o->dims[1];
    for (int64_t r = 0; r < rows; r++)
        for (int64_t m = 0; m < M; m++) {
            uint32_t acc = 0;
            for (int64_t k = 0; k < K; k++)
                acc += xc[r * K + k] * wc[m * K + k];
            if (b) {
                int32_t bv;
                memcpy(&bv, (const char *)b->data + 4 * m, 4);
                acc += (uint32_t)bv;
            }
            store_i32(o, (uint64_t)(r * M + m), acc);
        }
}

static void ik_matmul(const cr_array *a, const uint32_t *pa,
                      const cr_array *b, const uint32_t *pb, cr_array *o)
{
    /* shapes and batch broadcasting exactly as k_matmul */
    int64_t R = a->rank >= 2 ? a->dims[a->rank - 2] : 1;
    int64_t K = a->dims[a->rank - 1];
    int64_t C = b->rank >= 2 ? b->dims[b->rank - 1] : 1;
    cr_array ba, bb;
    memset(&ba, 0, sizeof ba);
    memset(&bb, 0, sizeof bb);
    ba.rank = a->rank > 2 ? a->rank - 2 : 0;
    bb.rank = b->rank > 2 ? b->rank - 2 : 0;
    memcpy(ba.dims, a->dims, (size_t)ba.rank * sizeof(int64_t));
    memcpy(bb.dims, b->dims, (size_t)bb.rank * sizeof(int64_t));
    int32_t rb = ba.rank > bb.rank ? ba.rank : bb.rank;
    interp_iter it;
    interp_it_init(&it, rb, o->dims);
    interp_bcast_strides(&ba, rb, it.st[0]);
    interp_bcast_strides(&bb, rb, it.st[1]);
    uint64_t nbatch = 1;
    for (int32_t i = 0; i < rb; i++) nbatch *= (uint64_t)o->dims[i];
    for (uint64_t bi = 0; bi < nbatch; bi++) {
        const uint32_t *A = pa + it.off[0] * R * K;
        const uint32_t *B = pb + it.off[1] * K * C;
        const uint64_t y0 = bi * (uint64_t)(R * C);
        for (int64_t i = 0; i < R; i++)
            for (int64_t j = 0; j < C; j++) {
                uint32_t acc = 0;
                for (int64_t k = 0; k < K; k++)
                    acc += A[i * K + k] * B[k * C + j];
                store_i32(o, y0 + (uint64_t)(i * C + j), acc);
            }
        interp_it_next(&it);
    }
}

static int ik_conv(const cr_node *n, const cr_array *x, const uint32_t *px,
                   const cr_array *w, const uint32_t *pw, const cr_array *b,
                   cr_array *o, char *err, size_t errlen)
{
    interp_conv_params p;
    int rc = interp_conv_params_get(n, &p, err, errlen);
    if (rc) return rc;
    const int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2],
                  W = x->dims[3];
    const int64_t O = o->dims[1], OH = o->dims[2], OW = o->dims[3];
    const int64_t KH = w->dims[2], KW = w->dims[3], G = p.group;
    const int64_t sh = p.stride[0], sw = p.stride[1], dh = p.dil[0],
                  dw = p.dil[1], pt = p.pad[0], pl = p.pad[1];
    const int64_t icg = C / G, ocg = O / G;
    for (int64_t nb = 0; nb < N; nb++)
        for (int64_t oc = 0; oc < O; oc++) {
            const int64_t gi = oc / ocg;
            const uint32_t *wo = pw + oc * icg * KH * KW;
            uint32_t bias = 0;
            if (b) {
                int32_t bv;
                memcpy(&bv, (const char *)b->data + 4 * oc, 4);
                bias = (uint32_t)bv;
            }
            const uint64_t y0 = (uint64_t)((nb * O + oc) * OH * OW);
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    const int64_t ih0 = oh * sh - pt, iw0 = ow * sw - pl;
                    uint32_t acc = 0;
                    for (int64_t ic = 0; ic < icg; ic++) {
                        const uint32_t *xc =
                            px + (nb * C + gi * icg + ic) * H * W;
                        const uint32_t *wc = wo + ic * KH * KW;
                        for (int64_t kh = 0; kh < KH; kh++) {
                            const int64_t ih = ih0 + kh * dh;
                            if (ih < 0 || ih >= H) continue;
                            for (int64_t kw = 0; kw < KW; kw++) {
                                const int64_t iw = iw0 + kw * dw;
                                if (iw < 0 || iw >= W) continue;
                                acc += xc[ih * W + iw] * wc[kh * KW + kw];
                            }
                        }
                    }
                    store_i32(o, y0 + (uint64_t)(oh * OW + ow), acc + bias);
                }
        }
    return CRUCIBLE_OK;
}

int interp_exec_int_nn(const cr_graph *g, const cr_node *n,
                       const cr_array *const *in, cr_array *out, char *err,
                       size_t errlen)
{
    const char *op = ir_op_name(n->op);
    const cr_array *b = n->n_inputs > 2 ? in[2] : NULL;
    if (n->op != CRUCIBLE_OP_DENSE && n->op != CRUCIBLE_OP_MATMUL &&
        n->op != CRUCIBLE_OP_CONV2D)
        return NERR("not an integer kernel");
    if (out->dtype != CRUCIBLE_DT_I32)
        return NUNSUP("the integer %s produces i32; the output is declared "
                      "%s",
                      op, ir_dtype_name(out->dtype));
    if (b && b->dtype != CRUCIBLE_DT_I32)
        return NUNSUP("the bias is %s; the integer %s takes an i32 bias",
                      ir_dtype_name(b->dtype), op);
    uint32_t *xc = NULL, *wc = NULL;
    int rc = centre(g, n, 0, in[0], &xc, err, errlen);
    if (!rc) rc = centre(g, n, 1, in[1], &wc, err, errlen);
    if (!rc) {
        switch (n->op) {
        case CRUCIBLE_OP_DENSE:
            ik_dense(xc, wc, b, out, in[1]->dims[1]);
            break;
        case CRUCIBLE_OP_MATMUL:
            ik_matmul(in[0], xc, in[1], wc, out);
            break;
        default:
            rc = ik_conv(n, in[0], xc, in[1], wc, b, out, err, errlen);
            break;
        }
    }
    cr_free(xc);
    cr_free(wc);
    return rc;
}

int interp_exec_nn(const cr_graph *g, const cr_node *n,
                   const cr_array *const *in, cr_array *out, char *err,
                   size_t errlen)
{
    (void)g;
    const cr_array *x = in[0];
    switch (n->op) {
    case CRUCIBLE_OP_DENSE:
        return k_dense(x, in[1], n->n_inputs > 2 ? in[2] : NULL, out);
    case CRUCIBLE_OP_MATMUL:
        return k_matmul(x, in[1], out);
    case CRUCIBLE_OP_CONV2D:
    case CRUCIBLE_OP_CONV_TRANSPOSE2D:
        return k_conv(n, x, in[1], n->n_inputs > 2 ? in[2] : NULL, out, err,
                      errlen);
    case CRUCIBLE_OP_MAX_POOL2D:
    case CRUCIBLE_OP_AVG_POOL2D:
        return k_pool(n, x, out, err, errlen);
    case CRUCIBLE_OP_GLOBAL_AVG_POOL:
    case CRUCIBLE_OP_GLOBAL_MAX_POOL:
        return k_global_pool(n, x, out);
    case CRUCIBLE_OP_SOFTMAX:
    case CRUCIBLE_OP_LOG_SOFTMAX:
        return k_softmax(n, x, out);
    case CRUCIBLE_OP_REDUCE_MEAN:
    case CRUCIBLE_OP_REDUCE_SUM:
    case CRUCIBLE_OP_REDUCE_MAX:
        return k_reduce(n, x, out, err, errlen);
    default:
        return NERR("not a neural-network kernel");
    }
}
