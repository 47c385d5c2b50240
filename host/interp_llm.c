/* interp_llm.c - reference kernels of the language-model ops: rms_norm,
 * rope, silu, kv_write and attention (f32; kv_write moves any dtype).
 *
 * The float evaluation order is part of the definition and is written out
 * in docs/ir-ops.md ("Language-model ops"); the loops below follow it
 * literally. No FP contraction, no excess precision (see interp.c). */
#include "interp.h"

#include <math.h>
#include <stdio.h>

/* No fused multiply-add: every product is rounded before it is added. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#define NERR(...) interp_node_err(err, errlen, n, CRUCIBLE_E_INVALID, __VA_ARGS__)
#define NUNSUP(...)                                                         \
    interp_node_err(err, errlen, n, CRUCIBLE_E_UNSUPPORTED, __VA_ARGS__)

static uint64_t numel(const cr_array *a)
{
    uint64_t e = 1;
    for (int32_t i = 0; i < a->rank; i++) e *= (uint64_t)a->dims[i];
    return e;
}

/* Position number i of an i32 / i64 tensor. */
static int64_t position(const cr_array *p, uint64_t i)
{
    if (p->dtype == CRUCIBLE_DT_I64) {
        int64_t v;
        memcpy(&v, (const char *)p->data + 8 * i, 8);
        return v;
    }
    int32_t v;
    memcpy(&v, (const char *)p->data + 4 * i, 4);
    return v;
}

static int need_f32_data(const cr_node *n, const cr_array *const *in,
                         uint32_t count, const cr_array *out, char *err,
                         size_t errlen)
{
    for (uint32_t i = 0; i < count && i < n->n_inputs; i++)
        if (in[i] && in[i]->dtype != CRUCIBLE_DT_F32)
            return NUNSUP("input %u is %s; the reference interpreter runs "
                          "this op on f32 only",
                          i, ir_dtype_name(in[i]->dtype));
    if (out->dtype != CRUCIBLE_DT_F32)
        return NUNSUP("output is %s; the reference interpreter runs this op "
                      "on f32 only",
                      ir_dtype_name(out->dtype));
    return CRUCIBLE_OK;
}

/* y = x * r * w per row of the last axis, r = 1 / sqrt(mean(x^2) + eps). */
static int k_rms_norm(const cr_node *n, const cr_array *const *in,
                      cr_array *o, char *err, size_t errlen)
{
    const cr_array *x = in[0], *w = n->n_inputs > 1 ? in[1] : NULL;
    int rc = need_f32_data(n, in, n->n_inputs, o, err, errlen);
    if (rc) return rc;
    const float eps = (float)ir_attr_f(n, "eps", 1e-5);
    const int64_t D = x->dims[x->rank - 1];
    const uint64_t rows = numel(x) / (uint64_t)D;
    const float *px = (const float *)x->data;
    const float *pw = w ? (const float *)w->data : NULL;
    float *py = (float *)o->data;
    for (uint64_t r = 0; r < rows; r++) {
        const float *xr = px + r * (uint64_t)D;
        float *yr = py + r * (uint64_t)D;
        float ss = 0.0f;
        for (int64_t i = 0; i < D; i++) ss = ss + xr[i] * xr[i];
        const float mean = ss / (float)D;
        const float inv = 1.0f / sqrtf(mean + eps);
        for (int64_t i = 0; i < D; i++) {
            const float v = xr[i] * inv;
            yr[i] = pw ? v * pw[i] : v;
        }
    }
    return CRUCIBLE_OK;
}

/* Rotary position embedding: x [.., H, D], one position per [H, D] row
 * group. */
static int k_rope(const cr_node *n, const cr_array *const *in, cr_array *o,
                  char *err, size_t errlen)
{
    const cr_array *x = in[0], *pos = in[1];
    if (x->dtype != CRUCIBLE_DT_F32 || o->dtype != CRUCIBLE_DT_F32)
        return NUNSUP("rope runs on f32 only (input %s)",
                      ir_dtype_name(x->dtype));
    const int64_t D = x->dims[x->rank - 1], H = x->dims[x->rank - 2];
    interp_rope_params p;
    int rc = interp_rope_params_get(n, D, &p, err, errlen);
    if (rc) return rc;
    const int64_t half = p.n_rot / 2;
    float *cs = cr_malloc((size_t)(2 * half) * sizeof *cs);
    if (!cs) return interp_node_err(err, errlen, n, CRUCIBLE_E_NOMEM, "out of memory");
    const uint64_t rows = numel(pos);
    const float *px = (const float *)x->data;
    float *py = (float *)o->data;
    memcpy(py, px, o->bytes); /* dims n_rot..D-1 pass through */
    for (uint64_t t = 0; t < rows; t++) {
        const float fp = (float)position(pos, t) * p.freq_scale;
        for (int64_t i = 0; i < half; i++) {
            const float e = -((float)(2 * i) / (float)p.n_rot);
            const float ang = fp * powf(p.freq_base, e);
            cs[2 * i] = cosf(ang);
            cs[2 * i + 1] = sinf(ang);
        }
        for (int64_t h = 0; h < H; h++) {
            const uint64_t base = (t * (uint64_t)H + (uint64_t)h) * (uint64_t)D;
            const float *xr = px + base;
            float *yr = py + base;
            for (int64_t i = 0; i < half; i++) {
                const int64_t a = p.neox ? i : 2 * i;
                const int64_t b = p.neox ? i + half : 2 * i + 1;
                const float c = cs[2 * i], s = cs[2 * i + 1];
                const float x0 = xr[a], x1 = xr[b];
                yr[a] = x0 * c - x1 * s;
                yr[b] = x0 * s + x1 * c;
            }
        }
    }
    cr_free(cs);
    return CRUCIBLE_OK;
}

static int k_silu(const cr_node *n, const cr_array *const *in, cr_array *o,
                  char *err, size_t errlen)
{
    int rc = need_f32_data(n, in, 1, o, err, errlen);
    if (rc) return rc;
    const float *x = (const float *)in[0]->data;
    float *y = (float *)o->data;
    const uint64_t ne = numel(o);
    for (uint64_t j = 0; j < ne; j++) {
        const float s = 1.0f / (1.0f + expf(-x[j]));
        y[j] = x[j] * s;
    }
    return CRUCIBLE_OK;
}

/* out = cache; out[pos[t]] = values[t] for t increasing. */
static int k_kv_write(const cr_node *n, const cr_array *const *in,
                      cr_array *o, char *err, size_t errlen)
{
    const cr_array *c = in[0], *v = in[1], *pos = in[2];
    const int64_t S = c->dims[0], T = v->dims[0];
    const size_t row = (size_t)(numel(c) / (uint64_t)S) * interp_elem_size(c->dtype);
    memcpy(o->data, c->data, o->bytes);
    for (int64_t t = 0; t < T; t++) {
        const int64_t p = position(pos, (uint64_t)t);
        if (p < 0 || p >= S)
            return NERR("position %lld is outside the cache (0..%lld)",
                        (long long)p, (long long)(S - 1));
        memcpy((char *)o->data + (size_t)p * row,
               (const char *)v->data + (size_t)t * row, row);
    }
    return CRUCIBLE_OK;
}

/* Causal attention of queries at positions pos[t] over cache rows
 * 0..pos[t]; query head h reads kv head h / (H / Hkv). */
static int k_attention(const cr_node *n, const cr_array *const *in,
                       cr_array *o, char *err, size_t errlen)
{
    const cr_array *q = in[0], *k = in[1], *v = in[2], *pos = in[3];
    int rc = need_f32_data(n, in, 3, o, err, errlen);
    if (rc) return rc;
    const int64_t T = q->dims[0], H = q->dims[1], D = q->dims[2];
    const int64_t S = k->dims[0], Hkv = k->dims[1], Dv = v->dims[2];
    const int64_t group = H / Hkv;
    float scale;
    if ((rc = interp_attention_scale_get(n, D, &scale, err, errlen))) return rc;
    float *w = cr_malloc((size_t)S * sizeof *w);
    if (!w) return interp_node_err(err, errlen, n, CRUCIBLE_E_NOMEM, "out of memory");
    const float *pq = (const float *)q->data, *pk = (const float *)k->data,
                *pv = (const float *)v->data;
    float *py = (float *)o->data;
    for (int64_t t = 0; t < T; t++) {
        const int64_t p = position(pos, (uint64_t)t);
        if (p < 0 || p >= S) {
            cr_free(w);
            return NERR("position %lld is outside the cache (0..%lld)",
                        (long long)p, (long long)(S - 1));
        }
        for (int64_t h = 0; h < H; h++) {
            const int64_t kh = h / group;
            const float *qr = pq + (t * H + h) * D;
            for (int64_t j = 0; j <= p; j++) {
                const float *kr = pk + (j * Hkv + kh) * D;
                float acc = 0.0f;
                for (int64_t d = 0; d < D; d++) acc = acc + qr[d] * kr[d];
                w[j] = acc * scale;
            }
            float m = w[0];
            for (int64_t j = 1; j <= p; j++)
                if (w[j] > m) m = w[j];
            float sum = 0.0f;
            for (int64_t j = 0; j <= p; j++) {
                w[j] = expf(w[j] - m);
                sum = sum + w[j];
            }
            for (int64_t j = 0; j <= p; j++) w[j] = w[j] / sum;
            float *yr = py + (t * H + h) * Dv;
            for (int64_t d = 0; d < Dv; d++) {
                float acc = 0.0f;
                for (int64_t j = 0; j <= p; j++)
                    acc = acc + w[j] * pv[(j * Hkv + kh) * Dv + d];
                yr[d] = acc;
            }
        }
    }
    cr_free(w);
    return CRUCIBLE_OK;
}

int interp_exec_llm(const cr_graph *g, const cr_node *n,
                    const cr_array *const *in, cr_array *out, char *err,
                    size_t errlen)
{
    (void)g;
    switch (n->op) {
    case CRUCIBLE_OP_RMS_NORM: return k_rms_norm(n, in, out, err, errlen);
    case CRUCIBLE_OP_ROPE: return k_rope(n, in, out, err, errlen);
    case CRUCIBLE_OP_SILU: return k_silu(n, in, out, err, errlen);
    case CRUCIBLE_OP_KV_WRITE: return k_kv_write(n, in, out, err, errlen);
    case CRUCIBLE_OP_ATTENTION: return k_attention(n, in, out, err, errlen);
    default: return NERR("not a language-model op");
    }
}
