/*
 * gguf_llama.c - the llama architecture template: the one-token decode
 * step of a llama-family model as a crucible graph, built from the GGUF
 * hyper-parameters (llama.*) and weights.
 *
 *   inputs   token  i32[1]                 the token id at this position
 *            pos    i32[1]                 its position, 0-based
 *            cache.k.L, cache.v.L  f32[n_ctx, n_head_kv, head_dim]
 *                                          (one pair per layer L)
 *   outputs  logits f32[1, n_vocab]
 *            cache.k.L.next, cache.v.L.next   the caches with row `pos`
 *                                          written (feed them back in)
 *
 *   x = gather(token_embd, token)                        [1, E]
 *   per layer L:
 *     h  = rms_norm(x, attn_norm)
 *     q  = rope(reshape(dense(h, attn_q), [1, H, hd]), pos)
 *     k  = rope(reshape(dense(h, attn_k), [1, Hkv, hd]), pos)
 *     v  = reshape(dense(h, attn_v), [1, Hkv, hd_v])
 *     kc = kv_write(cache.k.L, k, pos); vc = kv_write(cache.v.L, v, pos)
 *     a  = reshape(attention(q, kc, vc, pos), [1, H * hd_v])
 *     x  = x + dense(a, attn_output)
 *     h  = rms_norm(x, ffn_norm)
 *     x  = x + dense(silu(dense(h, ffn_gate)) * dense(h, ffn_up), ffn_down)
 *   logits = dense(rms_norm(x, output_norm), output)   (output.weight, or
 *                                                       token_embd if tied)
 *
 * GGUF stores a matrix with ne[0] = the row length, so a tensor with
 * ne = [in, out] is W[out][in] row-major: exactly the IR's dense weight
 * [out, in]. Llama q/k weights in GGUF are already permuted (at
 * conversion) for rope on adjacent pairs (2i, 2i+1), the IR's rope mode
 * "normal". Q8_0 / Q4_0 / Q4_1 matrices stay integer: block-quantised i8 /
 * i4 constants (quant_block 32) with a dequantize node (weight_blocked);
 * other types are dequantised to f32 constants. docs/gguf.md has the
 * details and the cost formulas written as metadata here.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "gguf_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LL_DEFAULT_CTX 256 /* positions in the KV cache unless configured */
#define LL_MAX_DIM ((uint64_t)1 << 31)
/* Largest total of dequantised (f32) weight bytes built into a graph
 * unless CRUCIBLE_GGUF_MAX_WEIGHT_BYTES says otherwise. */
#define LL_DEFAULT_MAX_WEIGHT_BYTES ((uint64_t)8 << 30)

typedef struct ll_hp {
    uint64_t n_ctx_train, n_embd, n_layer, n_ff, n_head, n_head_kv;
    uint64_t hd_k, hd_v, n_rot, n_vocab, n_ctx;
    double eps, freq_base, freq_scale;
    int tied; /* no output.weight: the head is token_embd */
} ll_hp;

typedef struct ll_ctx {
    gg_model *m;
    const crucible_ir_builder *b;
    ll_hp hp;
    uint8_t *used; /* per GGUF tensor: consumed by the template */
    char why[512]; /* first error */
} ll_ctx;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int ll_err(ll_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof c->why, fmt, ap);
    va_end(ap);
    return CRUCIBLE_E_FORMAT; /* logged once, by gg_build_llama */
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int ll_meta(ll_ctx *c, const char *key, const char *fmt, ...)
{
    char v[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    return c->b->set_meta(c->b->ctx, key, v);
}

/* ---- hyper-parameters -------------------------------------------------------------*/
/* <arch>.<key> as an unsigned integer in [lo, hi]; dflt when absent and not
 * required. 1 = absent (dflt used), 0 = read, < 0 = error. */
static int hp_u64(ll_ctx *c, const char *key, int required, uint64_t dflt,
                  uint64_t lo, uint64_t hi, uint64_t *out)
{
    char full[160];
    snprintf(full, sizeof full, "%s.%s", c->m->arch, key);
    const gguf_kv *kv = gguf_find_kv(c->m->f, full);
    if (!kv) {
        if (required) return ll_err(c, "the llama template needs %s", full);
        *out = dflt;
        return 1;
    }
    uint64_t v;
    if (kv->v.type == GGUF_T_ARRAY)
        return ll_err(c, "%s is an array (per-layer values are not "
                         "supported by the llama template)",
                      full);
    if (gguf_value_u64(&kv->v, &v))
        return ll_err(c, "%s must be a non-negative integer", full);
    if (v < lo || v > hi)
        return ll_err(c, "%s = %llu is outside %llu..%llu", full,
                      (unsigned long long)v, (unsigned long long)lo,
                      (unsigned long long)hi);
    *out = v;
    return 0;
}

static int hp_f64(ll_ctx *c, const char *key, int required, double dflt,
                  double *out)
{
    char full[160];
    snprintf(full, sizeof full, "%s.%s", c->m->arch, key);
    const gguf_kv *kv = gguf_find_kv(c->m->f, full);
    if (!kv) {
        if (required) return ll_err(c, "the llama template needs %s", full);
        *out = dflt;
        return 1;
    }
    if (gguf_value_f64(&kv->v, out) || !isfinite(*out))
        return ll_err(c, "%s must be a finite number", full);
    return 0;
}

/* Context positions: min(n_ctx_train, CRUCIBLE_GGUF_CTX or 256). */
static int context_cap(ll_ctx *c, uint64_t *cap)
{
    const char *e = getenv("CRUCIBLE_GGUF_CTX");
    *cap = LL_DEFAULT_CTX;
    if (!e || !*e) return 0;
    char *end;
    unsigned long long v = strtoull(e, &end, 10);
    if (*end || v < 1 || v > LL_MAX_DIM || e[0] == '-')
        return ll_err(c, "CRUCIBLE_GGUF_CTX=%s is not a context size "
                         "(1..2^31)",
                      e);
    *cap = v;
    return 0;
}

static int read_hp(ll_ctx *c)
{
    ll_hp *h = &c->hp;
    int rc;
    uint64_t experts = 0;
    if ((rc = hp_u64(c, "context_length", 1, 0, 1, LL_MAX_DIM,
                     &h->n_ctx_train)) < 0 ||
        (rc = hp_u64(c, "embedding_length", 1, 0, 1, LL_MAX_DIM,
                     &h->n_embd)) < 0 ||
        (rc = hp_u64(c, "block_count", 1, 0, 1, 1u << 16, &h->n_layer)) < 0 ||
        (rc = hp_u64(c, "feed_forward_length", 1, 0, 1, LL_MAX_DIM,
                     &h->n_ff)) < 0 ||
        (rc = hp_u64(c, "attention.head_count", 1, 0, 1, 1u << 20,
                     &h->n_head)) < 0 ||
        (rc = hp_u64(c, "attention.head_count_kv", 0, h->n_head, 1,
                     h->n_head, &h->n_head_kv)) < 0 ||
        (rc = hp_f64(c, "attention.layer_norm_rms_epsilon", 1, 0,
                     &h->eps)) < 0 ||
        (rc = hp_f64(c, "rope.freq_base", 0, 10000.0, &h->freq_base)) < 0 ||
        (rc = hp_u64(c, "expert_count", 0, 0, 0, LL_MAX_DIM, &experts)) < 0)
        return rc;
    if (experts > 0)
        return ll_err(c, "%s.expert_count = %llu: mixture-of-experts models "
                         "need a template of their own",
                      c->m->arch, (unsigned long long)experts);
    if (h->n_head % h->n_head_kv)
        return ll_err(c, "attention.head_count %llu is not a multiple of "
                         "attention.head_count_kv %llu",
                      (unsigned long long)h->n_head,
                      (unsigned long long)h->n_head_kv);
    uint64_t dflt_hd = h->n_embd / h->n_head;
    int rk, rv;
    if ((rk = hp_u64(c, "attention.key_length", 0, dflt_hd, 1, LL_MAX_DIM,
                     &h->hd_k)) < 0)
        return rk;
    if ((rv = hp_u64(c, "attention.value_length", 0, dflt_hd, 1, LL_MAX_DIM,
                     &h->hd_v)) < 0)
        return rv;
    if (h->hd_k == 0 || h->hd_v == 0 ||
        ((rk == 1 || rv == 1) && h->n_embd % h->n_head))
        return ll_err(c, "embedding_length %llu is not a multiple of "
                         "attention.head_count %llu",
                      (unsigned long long)h->n_embd,
                      (unsigned long long)h->n_head);
    if (h->n_head * h->hd_k > LL_MAX_DIM || h->n_head * h->hd_v > LL_MAX_DIM)
        return ll_err(c, "heads x head size is too large");
    if ((rc = hp_u64(c, "rope.dimension_count", 0, h->hd_k, 2, h->hd_k,
                     &h->n_rot)) < 0)
        return rc;
    if (h->n_rot % 2)
        return ll_err(c, "rope.dimension_count %llu is odd",
                      (unsigned long long)h->n_rot);
    if (!(h->eps >= 0.0) || !(h->freq_base > 0.0))
        return ll_err(c, "layer_norm_rms_epsilon must be >= 0 and "
                         "rope.freq_base > 0");
    /* rope scaling: none, or linear (positions multiplied by 1/factor) */
    h->freq_scale = 1.0;
    char key[160];
    size_t len;
    snprintf(key, sizeof key, "%s.rope.scaling.type", c->m->arch);
    const char *type = gguf_get_str(c->m->f, key, &len);
    double factor = 0.0;
    if (type && !(len == 4 && !memcmp(type, "none", 4)) &&
        !(len == 6 && !memcmp(type, "linear", 6)))
        return ll_err(c, "%s = %.*s: only none and linear rope scaling are "
                         "supported",
                      key, (int)(len > 40 ? 40 : len), type);
    if (!type || len == 6) {
        if ((rc = hp_f64(c, "rope.scaling.factor", 0, 0.0, &factor)) < 0)
            return rc;
        if (rc == 1 &&
            (rc = hp_f64(c, "rope.scale_linear", 0, 0.0, &factor)) < 0)
            return rc;
        if (factor != 0.0 && factor != 1.0) {
            if (!(factor > 0.0))
                return ll_err(c, "rope scaling factor %g is not positive",
                              factor);
            h->freq_scale = 1.0 / factor;
        }
    }
    uint64_t cap;
    if ((rc = context_cap(c, &cap))) return rc;
    h->n_ctx = h->n_ctx_train < cap ? h->n_ctx_train : cap;
    return 0;
}

/* ---- cost figures (docs/gguf.md, "Cost figures") ----------------------------------*/
static void human_bytes(char *buf, size_t cap, double v)
{
    if (v >= 1e8) snprintf(buf, cap, "%.2f GB", v / 1e9);
    else if (v >= 1e6) snprintf(buf, cap, "%.2f MB", v / 1e6);
    else if (v >= 1e3) snprintf(buf, cap, "%.1f kB", v / 1e3);
    else snprintf(buf, cap, "%.0f B", v);
}

static int cost_meta(ll_ctx *c)
{
    const ll_hp *h = &c->hp;
    const double E = (double)h->n_embd, L = (double)h->n_layer,
                 F = (double)h->n_ff, H = (double)h->n_head,
                 Hkv = (double)h->n_head_kv, dk = (double)h->hd_k,
                 dv = (double)h->hd_v, V = (double)h->n_vocab;
    /* matrices (quantisable) and vectors (norm weights, kept f32) */
    /* q, k, v, output projections and the three FFN matrices */
    const double layer_mat = E * H * dk + E * Hkv * (dk + dv) + H * dv * E +
                             3.0 * E * F;
    const double mat = L * layer_mat + V * E * (h->tied ? 1.0 : 2.0);
    const double vec = L * 2.0 * E + E;
    const double params = mat + vec;
    const double macs_w = L * layer_mat + V * E;
    const double macs_pos = L * H * (dk + dv);
    const double kv_tok = L * Hkv * (dk + dv) * 4.0;
    static const struct {
        const char *name;
        double bytes, block;
    } fmt[] = {{"F32", 4, 1}, {"F16", 2, 1}, {"Q8_0", 34, 32}, {"Q4_0", 18, 32}};
    int rc;
    char hb[64], k[64];
    if ((rc = ll_meta(c, "cost.parameters", "%.0f", params)) < 0) return rc;
    for (size_t i = 0; i < sizeof fmt / sizeof fmt[0]; i++) {
        double by = ceil(mat * fmt[i].bytes / fmt[i].block) + vec * 4.0;
        human_bytes(hb, sizeof hb, by);
        snprintf(k, sizeof k, "cost.weight_bytes.%s", fmt[i].name);
        if ((rc = ll_meta(c, k, "%.0f (%s)", by, hb)) < 0) return rc;
    }
    uint64_t file_bytes = 0;
    for (size_t i = 0; i < gguf_n_tensors(c->m->f); i++)
        file_bytes += gguf_tensor_at(c->m->f, i)->n_bytes;
    if (gguf_n_tensors(c->m->f)) {
        human_bytes(hb, sizeof hb, (double)file_bytes);
        if ((rc = ll_meta(c, "cost.weight_bytes.file", "%llu (%s)",
                          (unsigned long long)file_bytes, hb)) < 0)
            return rc;
    }
    /* the weights as they would be stored on a target: the file's own
     * bytes, or for a metadata-only file an estimate from general.file_type
     * (the "mostly" type of the matrices) */
    {
        static const struct {
            uint64_t ft;
            const char *name;
            double bytes, block;
        } ftype[] = {{0, "F32", 4, 1},     {1, "F16", 2, 1},
                     {2, "Q4_0", 18, 32},  {3, "Q4_1", 20, 32},
                     {7, "Q8_0", 34, 32},  {8, "Q5_0", 22, 32},
                     {9, "Q5_1", 24, 32},  {10, "Q2_K", 84, 256},
                     {11, "Q3_K", 110, 256}, {12, "Q3_K", 110, 256},
                     {13, "Q3_K", 110, 256}, {14, "Q4_K", 144, 256},
                     {15, "Q4_K", 144, 256}, {16, "Q5_K", 176, 256},
                     {17, "Q5_K", 176, 256}, {18, "Q6_K", 210, 256}};
        uint64_t ft = 0;
        if (gguf_n_tensors(c->m->f)) {
            if ((rc = ll_meta(c, "cost.fit_weight_bytes", "%llu (as stored "
                              "in the file)",
                              (unsigned long long)file_bytes)) < 0)
                return rc;
        } else if (gguf_get_u64(c->m->f, "general.file_type", &ft) == 0) {
            for (size_t i = 0; i < sizeof ftype / sizeof ftype[0]; i++)
                if (ftype[i].ft == ft) {
                    double by = ceil(mat * ftype[i].bytes / ftype[i].block) +
                                vec * 4.0;
                    if ((rc = ll_meta(c, "cost.fit_weight_bytes",
                                      "%.0f (%s, estimated from "
                                      "general.file_type)",
                                      by, ftype[i].name)) < 0)
                        return rc;
                }
        }
    }
    human_bytes(hb, sizeof hb, kv_tok);
    if ((rc = ll_meta(c, "cost.kv_cache_bytes_per_token", "%.0f (%s, f32; "
                      "half at f16)", kv_tok, hb)) < 0)
        return rc;
    human_bytes(hb, sizeof hb, kv_tok * (double)h->n_ctx);
    if ((rc = ll_meta(c, "cost.kv_cache_bytes", "%.0f (%s for %llu positions, "
                      "f32)", kv_tok * (double)h->n_ctx, hb,
                      (unsigned long long)h->n_ctx)) < 0 ||
        (rc = ll_meta(c, "cost.macs_per_token", "%.0f + %.0f per attended "
                      "position", macs_w, macs_pos)) < 0 ||
        (rc = ll_meta(c, "cost.macs_per_token_at_context", "%.0f (%llu "
                      "positions)", macs_w + macs_pos * (double)h->n_ctx,
                      (unsigned long long)h->n_ctx)) < 0 ||
        (rc = ll_meta(c, "context_used", "%llu", (unsigned long long)h->n_ctx)) < 0)
        return rc;
    return 0;
}

/* ---- graph building -------------------------------------------------------------------*/
static int32_t tensor(ll_ctx *c, const char *name, int32_t dtype,
                      int32_t rank, int64_t d0, int64_t d1, int64_t d2)
{
    const int64_t dims[3] = {d0, d1, d2};
    int32_t t = c->b->add_tensor(c->b->ctx, name, dtype, rank, dims);
    if (t < 0) snprintf(c->why, sizeof c->why, "cannot add tensor %s", name);
    return t;
}

static int32_t node(ll_ctx *c, const char *op, const char *name,
                    uint32_t n_in, const int32_t *in, int32_t out)
{
    int32_t r = c->b->add_node(c->b->ctx, op, name, n_in, in, 1, &out);
    if (r < 0) snprintf(c->why, sizeof c->why, "cannot add node %s", name);
    return r;
}

#define TRYG(expr)                                                           \
    do {                                                                     \
        int32_t r_ = (expr);                                                 \
        if (r_ < 0) {                                                        \
            rc = r_;                                                         \
            goto done;                                                       \
        }                                                                    \
    } while (0)

/* reshape node `yname`: x -> y with the given shape */
static int32_t ll_reshape_node(ll_ctx *c, int32_t x, int32_t y,
                               const char *yname, int32_t rank, int64_t d0,
                               int64_t d1, int64_t d2)
{
    const int64_t shape[3] = {d0, d1, d2};
    int32_t n = node(c, "reshape", yname, 1, &x, y);
    if (n < 0) return n;
    return c->b->attr_ints(c->b->ctx, n, "shape", (uint32_t)rank, shape);
}

/* Q8_0, Q4_0 and Q4_1 matrices stay integer in the IR unless
 * CRUCIBLE_GGUF_WEIGHTS=f32 asks for f32 constants (or the host predates
 * block quantisation). */
static int ll_native(const ll_ctx *c, uint32_t type)
{
    const char *e = getenv("CRUCIBLE_GGUF_WEIGHTS");
    if (e && !strcmp(e, "f32")) return 0;
    /* a host older than ABI 1.1 has no block quantisation */
    if (!CRUCIBLE_HAS_FIELD(c->b->hdr, crucible_ir_builder, set_quant_block) ||
        !c->b->set_quant_block)
        return 0;
    return type == GGML_T_Q8_0 || type == GGML_T_Q4_0 || type == GGML_T_Q4_1;
}

/* A Q8_0 / Q4_0 / Q4_1 matrix as the IR's block-quantised integer weight
 * (crucible_tensor_view.quant_block = 32 along the row), followed by a
 * dequantize node that gives the f32 tensor `name` the graph uses:
 *   Q8_0  i8 q,        scale d, zero point 0    x = d * q
 *   Q4_0  i4 q - 8,    scale d, zero point 0    x = d * (q - 8)
 *   Q4_1  i4 q - 8,    scale d, zero point -8   x = d * q, then + m: the
 *         per-block minimum is added as an f32 [rows, blocks, 1] constant
 *         broadcast over [rows, blocks, 32] (two reshapes around an add).
 * Each product and sum is the one gguf_dequantize computes, so the f32
 * values are identical to the dequantised file. Block scales are kept as
 * stored: zero or negative d are legal here. */
static int weight_blocked(ll_ctx *c, const gguf_tensor *t, uint64_t ne0,
                          uint64_t ne1, int32_t *out)
{
    const char *name = t->name;
    const int q8 = t->type == GGML_T_Q8_0, q41 = t->type == GGML_T_Q4_1;
    const size_t bb = q8 ? 34 : q41 ? 20 : 18; /* bytes per block */
    if (ne0 % 32)
        return ll_err(c, "tensor %s: rows of %llu are not whole blocks of 32",
                      name, (unsigned long long)ne0);
    const uint64_t nbr = ne0 / 32, nblk = nbr * ne1, n = ne0 * ne1;
    if ((uint64_t)t->n_bytes < nblk * bb || nblk > (1u << 28))
        return ll_err(c, "tensor %s: %llu bytes for %llu blocks", name,
                      (unsigned long long)t->n_bytes,
                      (unsigned long long)nblk);
    const size_t qbytes = q8 ? (size_t)n : (size_t)(n / 2);
    uint8_t *q = gg_alloc(qbytes);
    float *sc = gg_alloc((size_t)nblk * sizeof(float));
    int32_t *zp = gg_alloc((size_t)nblk * sizeof(int32_t));
    float *mins = q41 ? gg_alloc((size_t)nblk * sizeof(float)) : NULL;
    int rc = 0;
    if (!q || !sc || !zp || (q41 && !mins)) {
        rc = ll_err(c, "out of memory for tensor %s", name);
        goto done;
    }
    const uint8_t *src = t->data;
    for (uint64_t b = 0; b < nblk; b++) {
        const uint8_t *blk = src + b * bb;
        sc[b] = gguf_f16_to_f32((uint16_t)(blk[0] | blk[1] << 8));
        if (q8) {
            memcpy(q + b * 32, blk + 2, 32);
            continue;
        }
        if (q41) {
            mins[b] = gguf_f16_to_f32((uint16_t)(blk[2] | blk[3] << 8));
            zp[b] = -8;
        }
        /* GGUF: element j is the low nibble of qs[j], element j + 16 the
         * high nibble; the IR packs element 2i low, 2i + 1 high. */
        const uint8_t *qs = blk + (q41 ? 4 : 2);
        uint8_t *d = q + b * 16;
        for (int j = 0; j < 32; j += 2) {
            int lo = j < 16 ? qs[j] & 0xf : qs[j - 16] >> 4;
            int hi = j + 1 < 16 ? qs[j + 1] & 0xf : qs[j + 1 - 16] >> 4;
            /* q - 8 as a two's-complement nibble: flip the top bit */
            d[j / 2] = (uint8_t)((lo ^ 8) | (hi ^ 8) << 4);
        }
    }
    char qn[300], dn[300], rn[300], an[300], mn[300];
    snprintf(qn, sizeof qn, "%s.q", name);
    int32_t qt, ft;
    TRYG(qt = tensor(c, qn, q8 ? CRUCIBLE_DT_I8 : CRUCIBLE_DT_I4, 2,
                     (int64_t)ne1, (int64_t)ne0, 0));
    if (c->b->set_data(c->b->ctx, qt, q, qbytes) < 0 ||
        c->b->set_quant_block(c->b->ctx, qt, 1, 32, (uint32_t)nblk, sc, zp) < 0) {
        rc = ll_err(c, "cannot set the block-quantised data of %s", name);
        goto done;
    }
    if (!q41) {
        TRYG(ft = tensor(c, name, CRUCIBLE_DT_F32, 2, (int64_t)ne1,
                         (int64_t)ne0, 0));
        snprintf(dn, sizeof dn, "%s.dequantize", name);
        TRYG(node(c, "dequantize", dn, 1, &qt, ft));
        *out = ft;
        goto done;
    }
    {
        int32_t dq, r3, m3, s3;
        snprintf(dn, sizeof dn, "%s.dq", name);
        snprintf(rn, sizeof rn, "%s.blocks", name);
        snprintf(mn, sizeof mn, "%s.min", name);
        snprintf(an, sizeof an, "%s.plus_min", name);
        TRYG(dq = tensor(c, dn, CRUCIBLE_DT_F32, 2, (int64_t)ne1, (int64_t)ne0, 0));
        TRYG(node(c, "dequantize", dn, 1, &qt, dq));
        TRYG(r3 = tensor(c, rn, CRUCIBLE_DT_F32, 3, (int64_t)ne1,
                         (int64_t)nbr, 32));
        TRYG(m3 = tensor(c, mn, CRUCIBLE_DT_F32, 3, (int64_t)ne1,
                         (int64_t)nbr, 1));
        if (c->b->set_data(c->b->ctx, m3, mins, (size_t)nblk * sizeof(float)) < 0) {
            rc = ll_err(c, "cannot set the block minima of %s", name);
            goto done;
        }
        TRYG(s3 = tensor(c, an, CRUCIBLE_DT_F32, 3, (int64_t)ne1,
                         (int64_t)nbr, 32));
        TRYG(ft = tensor(c, name, CRUCIBLE_DT_F32, 2, (int64_t)ne1,
                         (int64_t)ne0, 0));
        TRYG(ll_reshape_node(c, dq, r3, rn, 3, (int64_t)ne1, (int64_t)nbr, 32));
        const int32_t ins[2] = {r3, m3};
        TRYG(node(c, "add", an, 2, ins, s3));
        TRYG(ll_reshape_node(c, s3, ft, name, 2, (int64_t)ne1, (int64_t)ne0, 0));
        *out = ft;
    }
done:
    gg_free(q, qbytes);
    gg_free(sc, (size_t)nblk * sizeof(float));
    gg_free(zp, (size_t)nblk * sizeof(int32_t));
    if (mins) gg_free(mins, (size_t)nblk * sizeof(float));
    return rc;
}

/* A weight: GGUF tensor `name` with ne = [ne0] (ne1 == 0) or [ne0, ne1],
 * dequantised to an f32 constant of IR shape [ne0] or [ne1, ne0].
 * optional: a missing tensor gives *out = -1. */
static int weight(ll_ctx *c, const char *name, uint64_t ne0, uint64_t ne1,
                  int optional, int32_t *out)
{
    const gguf_tensor *t = gguf_find_tensor(c->m->f, name);
    *out = -1;
    if (!t) {
        if (optional) return 0;
        return ll_err(c, "tensor %s is missing", name);
    }
    for (size_t i = 0; i < gguf_n_tensors(c->m->f); i++)
        if (gguf_tensor_at(c->m->f, i) == t) c->used[i] = 1;
    int ok = t->ne[0] == ne0 && t->ne[1] == (ne1 ? ne1 : 1) && t->ne[2] == 1 &&
             t->ne[3] == 1;
    if (!ok) {
        char want[64];
        if (ne1)
            snprintf(want, sizeof want, "[%llu, %llu]",
                     (unsigned long long)ne0, (unsigned long long)ne1);
        else
            snprintf(want, sizeof want, "[%llu]", (unsigned long long)ne0);
        return ll_err(c, "tensor %s has ne [%llu, %llu, %llu, %llu]; the "
                         "hyper-parameters make it %s",
                      name, (unsigned long long)t->ne[0],
                      (unsigned long long)t->ne[1],
                      (unsigned long long)t->ne[2],
                      (unsigned long long)t->ne[3], want);
    }
    if (ne1 && ll_native(c, t->type)) return weight_blocked(c, t, ne0, ne1, out);
    const gguf_type_info *ti = gguf_type(t->type);
    if (!ti || !ti->dequant)
        return ll_err(c, "tensor %s has type %s, which cannot be dequantised "
                         "yet",
                      name, ti ? ti->name : "?");
    size_t bytes = (size_t)t->n_elems * sizeof(float);
    float *buf = gg_alloc(bytes);
    if (!buf)
        return ll_err(c, "out of memory for tensor %s (%zu bytes as f32)",
                      name, bytes);
    int rc = gguf_dequantize(t->type, t->data, (size_t)t->n_bytes, buf,
                             t->n_elems);
    if (rc) {
        gg_free(buf, bytes);
        return ll_err(c, "tensor %s: cannot dequantise (%s)", name,
                      crucible_status_str(rc));
    }
    int32_t id = ne1 ? tensor(c, name, CRUCIBLE_DT_F32, 2, (int64_t)ne1,
                              (int64_t)ne0, 0)
                     : tensor(c, name, CRUCIBLE_DT_F32, 1, (int64_t)ne0, 0, 0);
    if (id >= 0 && c->b->set_data(c->b->ctx, id, buf, bytes) < 0) {
        snprintf(c->why, sizeof c->why, "cannot set the data of %s", name);
        id = CRUCIBLE_E_NOMEM;
    }
    gg_free(buf, bytes);
    if (id < 0) return id;
    *out = id;
    return 0;
}

#define TRY(expr)                                                            \
    do {                                                                     \
        int32_t r_ = (expr);                                                 \
        if (r_ < 0) return r_;                                               \
    } while (0)

/* dense(x, W [out, in], optional bias) -> new tensor [1, out] */
static int dense(ll_ctx *c, const char *wname, const char *bname,
                 int32_t x, uint64_t in, uint64_t outn, const char *yname,
                 int32_t *y)
{
    int32_t w, bias;
    TRY(weight(c, wname, in, outn, 0, &w));
    TRY(bname ? weight(c, bname, outn, 0, 1, &bias) : (bias = -1, 0));
    TRY(*y = tensor(c, yname, CRUCIBLE_DT_F32, 2, 1, (int64_t)outn, 0));
    const int32_t ins[3] = {x, w, bias};
    TRY(node(c, "dense", yname, bias >= 0 ? 3 : 2, ins, *y));
    return 0;
}

static int rms_norm(ll_ctx *c, const char *wname, int32_t x,
                    const char *yname, int32_t *y)
{
    int32_t w;
    TRY(weight(c, wname, c->hp.n_embd, 0, 0, &w));
    TRY(*y = tensor(c, yname, CRUCIBLE_DT_F32, 2, 1, (int64_t)c->hp.n_embd, 0));
    const int32_t ins[2] = {x, w};
    int32_t n;
    TRY(n = node(c, "rms_norm", yname, 2, ins, *y));
    TRY(c->b->attr_float(c->b->ctx, n, "eps", c->hp.eps));
    return 0;
}

static int reshape(ll_ctx *c, int32_t x, int32_t rank, int64_t d0,
                   int64_t d1, int64_t d2, const char *yname, int32_t *y)
{
    const int64_t shape[3] = {d0, d1, d2};
    TRY(*y = tensor(c, yname, CRUCIBLE_DT_F32, rank, d0, d1, d2));
    int32_t n;
    TRY(n = node(c, "reshape", yname, 1, &x, *y));
    TRY(c->b->attr_ints(c->b->ctx, n, "shape", (uint32_t)rank, shape));
    return 0;
}

static int binary(ll_ctx *c, const char *op, int32_t a, int32_t bb,
                  int64_t width, const char *yname, int32_t *y)
{
    TRY(*y = tensor(c, yname, CRUCIBLE_DT_F32, 2, 1, width, 0));
    const int32_t ins[2] = {a, bb};
    TRY(node(c, op, yname, 2, ins, *y));
    return 0;
}

static int rope(ll_ctx *c, int32_t x, int32_t pos, int64_t heads,
                const char *yname, int32_t *y)
{
    const ll_hp *h = &c->hp;
    TRY(*y = tensor(c, yname, CRUCIBLE_DT_F32, 3, 1, heads, (int64_t)h->hd_k));
    const int32_t ins[2] = {x, pos};
    int32_t n;
    TRY(n = node(c, "rope", yname, 2, ins, *y));
    TRY(c->b->attr_int(c->b->ctx, n, "n_rot", (int64_t)h->n_rot));
    TRY(c->b->attr_float(c->b->ctx, n, "freq_base", h->freq_base));
    if (h->freq_scale != 1.0)
        TRY(c->b->attr_float(c->b->ctx, n, "freq_scale", h->freq_scale));
    TRY(c->b->attr_string(c->b->ctx, n, "mode", "normal"));
    return 0;
}

static int layer(ll_ctx *c, uint64_t l, int32_t pos, int32_t *x)
{
    const ll_hp *h = &c->hp;
    const int64_t E = (int64_t)h->n_embd, H = (int64_t)h->n_head,
                  Hkv = (int64_t)h->n_head_kv, dk = (int64_t)h->hd_k,
                  dv = (int64_t)h->hd_v, S = (int64_t)h->n_ctx;
    char w[96], bn[96], y[96];
    int32_t hn, q, k, v, q3, k3, v3, qr, kr, kc, vc, kn, vn, a, a2, o, x1;
#define WN(s) (snprintf(w, sizeof w, "blk.%llu." s ".weight", (unsigned long long)l), w)
#define BN(s) (snprintf(bn, sizeof bn, "blk.%llu." s ".bias", (unsigned long long)l), bn)
#define YN(s) (snprintf(y, sizeof y, "blk.%llu." s, (unsigned long long)l), y)
    TRY(rms_norm(c, WN("attn_norm"), *x, YN("attn_norm"), &hn));
    TRY(dense(c, WN("attn_q"), BN("attn_q"), hn, (uint64_t)E,
              (uint64_t)(H * dk), YN("q"), &q));
    TRY(dense(c, WN("attn_k"), BN("attn_k"), hn, (uint64_t)E,
              (uint64_t)(Hkv * dk), YN("k"), &k));
    TRY(dense(c, WN("attn_v"), BN("attn_v"), hn, (uint64_t)E,
              (uint64_t)(Hkv * dv), YN("v"), &v));
    TRY(reshape(c, q, 3, 1, H, dk, YN("q_heads"), &q3));
    TRY(reshape(c, k, 3, 1, Hkv, dk, YN("k_heads"), &k3));
    TRY(reshape(c, v, 3, 1, Hkv, dv, YN("v_heads"), &v3));
    TRY(rope(c, q3, pos, H, YN("q_rope"), &qr));
    TRY(rope(c, k3, pos, Hkv, YN("k_rope"), &kr));
    /* the caches: graph inputs, and their updated copies graph outputs */
    char name[96];
    snprintf(name, sizeof name, "cache.k.%llu", (unsigned long long)l);
    TRY(kc = tensor(c, name, CRUCIBLE_DT_F32, 3, S, Hkv, dk));
    TRY(c->b->mark_input(c->b->ctx, kc));
    snprintf(name, sizeof name, "cache.v.%llu", (unsigned long long)l);
    TRY(vc = tensor(c, name, CRUCIBLE_DT_F32, 3, S, Hkv, dv));
    TRY(c->b->mark_input(c->b->ctx, vc));
    snprintf(name, sizeof name, "cache.k.%llu.next", (unsigned long long)l);
    TRY(kn = tensor(c, name, CRUCIBLE_DT_F32, 3, S, Hkv, dk));
    TRY(c->b->mark_output(c->b->ctx, kn));
    TRY(node(c, "kv_write", name, 3, (const int32_t[]){kc, kr, pos}, kn));
    snprintf(name, sizeof name, "cache.v.%llu.next", (unsigned long long)l);
    TRY(vn = tensor(c, name, CRUCIBLE_DT_F32, 3, S, Hkv, dv));
    TRY(c->b->mark_output(c->b->ctx, vn));
    TRY(node(c, "kv_write", name, 3, (const int32_t[]){vc, v3, pos}, vn));
    TRY(a = tensor(c, YN("attention"), CRUCIBLE_DT_F32, 3, 1, H, dv));
    TRY(node(c, "attention", y, 4, (const int32_t[]){qr, kn, vn, pos}, a));
    TRY(reshape(c, a, 2, 1, H * dv, 0, YN("attention_flat"), &a2));
    TRY(dense(c, WN("attn_output"), BN("attn_output"), a2,
              (uint64_t)(H * dv), (uint64_t)E, YN("attn_out"), &o));
    TRY(binary(c, "add", *x, o, E, YN("attn_residual"), &x1));
    /* feed-forward (SwiGLU) */
    int32_t h2, g, u, sg, gu, d, x2;
    const uint64_t F = h->n_ff;
    TRY(rms_norm(c, WN("ffn_norm"), x1, YN("ffn_norm"), &h2));
    TRY(dense(c, WN("ffn_gate"), NULL, h2, (uint64_t)E, F, YN("ffn_gate"), &g));
    TRY(dense(c, WN("ffn_up"), NULL, h2, (uint64_t)E, F, YN("ffn_up"), &u));
    TRY(sg = tensor(c, YN("ffn_silu"), CRUCIBLE_DT_F32, 2, 1, (int64_t)F, 0));
    TRY(node(c, "silu", y, 1, &g, sg));
    TRY(binary(c, "mul", sg, u, (int64_t)F, YN("ffn_gated"), &gu));
    TRY(dense(c, WN("ffn_down"), NULL, gu, F, (uint64_t)E, YN("ffn_down"), &d));
    TRY(binary(c, "add", x1, d, E, YN("ffn_residual"), &x2));
#undef WN
#undef BN
#undef YN
    *x = x2;
    return 0;
}

static int build(ll_ctx *c)
{
    const ll_hp *h = &c->hp;
    const crucible_ir_builder *b = c->b;
    int32_t tok, pos, emb, x, out_w, hn, logits;
    TRY(tok = tensor(c, "token", CRUCIBLE_DT_I32, 1, 1, 0, 0));
    TRY(b->mark_input(b->ctx, tok));
    TRY(pos = tensor(c, "pos", CRUCIBLE_DT_I32, 1, 1, 0, 0));
    TRY(b->mark_input(b->ctx, pos));
    /* outputs: logits first, then the caches as the layers add them */
    TRY(logits = tensor(c, "logits", CRUCIBLE_DT_F32, 2, 1,
                        (int64_t)h->n_vocab, 0));
    TRY(b->mark_output(b->ctx, logits));
    TRY(weight(c, "token_embd.weight", h->n_embd, h->n_vocab, 0, &emb));
    TRY(x = tensor(c, "embedding", CRUCIBLE_DT_F32, 2, 1, (int64_t)h->n_embd, 0));
    TRY(node(c, "gather", "embedding", 2, (const int32_t[]){emb, tok}, x));
    for (uint64_t l = 0; l < h->n_layer; l++) TRY(layer(c, l, pos, &x));
    TRY(rms_norm(c, "output_norm.weight", x, "output_norm", &hn));
    if (h->tied) out_w = emb;
    else TRY(weight(c, "output.weight", h->n_embd, h->n_vocab, 0, &out_w));
    TRY(node(c, "dense", "logits", 2, (const int32_t[]){hn, out_w}, logits));
    return 0;
}

int gg_build_llama(gg_model *m, const crucible_ir_builder *b)
{
    ll_ctx c;
    memset(&c, 0, sizeof c);
    c.m = m;
    c.b = b;
    size_t nt = gguf_n_tensors(m->f);
    int rc = read_hp(&c);
    if (rc < 0) {
        if (nt) {
            gg_host->log(gg_host, CRUCIBLE_LOG_ERROR, "%s: %s", m->path, c.why);
            return rc;
        }
        /* a vocabulary- or metadata-only file: the summary is still useful */
        char why[600];
        snprintf(why, sizeof why, "the file holds no tensors, and %s", c.why);
        return gg_build_pending(m, b, why);
    }
    const gguf_tensor *emb = gguf_find_tensor(m->f, "token_embd.weight");
    c.hp.n_vocab = emb && emb->ne[1] <= LL_MAX_DIM ? emb->ne[1]
                   : m->n_vocab > 0                ? (uint64_t)m->n_vocab
                                                   : 0;
    c.hp.tied = nt && !gguf_find_tensor(m->f, "output.weight");
    if ((rc = cost_meta(&c)) < 0) return rc;
    if (!nt)
        return gg_build_pending(m, b,
                                "the file holds no tensors (a vocabulary or "
                                "metadata-only file), so there are no "
                                "weights to build the llama graph from");
    if (!emb || !c.hp.n_vocab) {
        gg_host->log(gg_host, CRUCIBLE_LOG_ERROR,
                     "%s: tensor token_embd.weight is %s", m->path,
                     emb ? "too large" : "missing");
        return CRUCIBLE_E_FORMAT;
    }
    /* weights as f32 constants: refuse (as "unsupported") beyond a limit */
    uint64_t limit = LL_DEFAULT_MAX_WEIGHT_BYTES, f32 = 0;
    const char *e = getenv("CRUCIBLE_GGUF_MAX_WEIGHT_BYTES");
    if (e && *e) limit = strtoull(e, NULL, 10);
    for (size_t i = 0; i < nt; i++) {
        const gguf_tensor *t = gguf_tensor_at(m->f, i);
        if (t->ne[1] > 1 && ll_native(&c, t->type))
            f32 += (t->type == GGML_T_Q8_0 ? t->n_elems : t->n_elems / 2) +
                   t->n_elems / 32 * (t->type == GGML_T_Q4_1 ? 12 : 8);
        else
            f32 += t->n_elems * 4;
    }
    if (f32 > limit) {
        char why[400];
        snprintf(why, sizeof why,
                 "the weights as IR constants would take %.2f GB (limit "
                 "%.2f GB, CRUCIBLE_GGUF_MAX_WEIGHT_BYTES; Q8_0 / Q4_0 / Q4_1 "
                 "matrices stay block-quantised, other types become f32)",
                 (double)f32 / 1e9, (double)limit / 1e9);
        return gg_build_pending(m, b, why);
    }
    c.used = gg_alloc(nt);
    if (!c.used) return CRUCIBLE_E_NOMEM;
    rc = build(&c);
    if (rc >= 0) {
        /* every tensor must have been used: anything else is a variant the
         * template does not implement, and ignoring it would be wrong */
        for (size_t i = 0; i < nt; i++)
            if (!c.used[i]) {
                rc = ll_err(&c, "tensor %s is not part of the llama template "
                                "(an unsupported variant of the "
                                "architecture?)",
                            gguf_tensor_at(m->f, i)->name);
                break;
            }
    }
    if (rc < 0) {
        if (!c.why[0])
            snprintf(c.why, sizeof c.why, "building the graph failed (%s)",
                     crucible_status_str(rc));
        gg_host->log(gg_host, CRUCIBLE_LOG_ERROR, "%s: %s", m->path, c.why);
    }
    gg_free(c.used, nt);
    return rc < 0 ? rc : CRUCIBLE_OK;
}
