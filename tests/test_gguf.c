/*
 * test_gguf.c - the GGUF plugin (plugins/gguf): the reader on the shared
 * edge cases, on files crafted here (absurd counts and lengths, duplicate
 * keys and tensor names, misaligned or out-of-range data, bad types), on
 * truncations and seeded byte flips; dequantisation against vectors
 * computed independently by tests/data/gguf/gen_blocks.py; the frontend's
 * metadata summary of stories260K; the llama SentencePiece tokenizer
 * against llama.cpp's test vectors; `crucible tokenize`; the llama
 * architecture template (graph, cost figures, crafted variants and
 * errors); `crucible generate` on stories260K, and its agreement with an
 * independent numpy forward pass (tests/data/gguf/llama_ref.py).
 *
 * The reader is compiled into this file (it has no host dependencies);
 * the frontend and tokenizer are tested through the built plugin, loaded
 * in-process by the host's loader.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "interp.h"
#include "ir.h"
#include "json.h"
#include "loader.h"
#include "runner.h"
#include "tensorio.h"

#include "../plugins/gguf/gguf_read.c"
#include "../plugins/gguf/gguf_quant.c"

#define GG_PLUGIN CR_BUILD_DIR "/lib/crucible/plugins/gguf.so"
#define GG_MODELS CR_SOURCE_DIR "/../shared/models/gguf"
#define GG_DATA CR_SOURCE_DIR "/tests/data/gguf"
#define GG_VOCAB GG_MODELS "/ggml-vocab-llama-spm.gguf"
#define GG_STORIES GG_MODELS "/stories260K.gguf"
#define BIN CR_CRUCIBLE_BIN

/* ---- helpers ------------------------------------------------------------------*/
static int have_models(void)
{
    struct stat st;
    return stat(GG_MODELS, &st) == 0;
}

#define NEED_MODELS()                                                       \
    do {                                                                    \
        if (!have_models())                                                 \
            SKIP("%s is absent (the shared real-model set)", GG_MODELS);     \
    } while (0)

/* ---- the plugin, loaded once -------------------------------------------------------*/
static cr_loader g_gl;
static cr_plugin *g_gp;
static int g_gtried;

static cr_plugin *gguf_plugin(void)
{
    if (g_gtried) return g_gp;
    g_gtried = 1;
    struct stat st;
    if (stat(GG_PLUGIN, &st)) return NULL;
    cr_loader_init(&g_gl, -1);
    cr_plugin *p = cr_loader_load_file(&g_gl, GG_PLUGIN);
    if (p && p->status == CR_PLUGIN_LOADED && p->has_frontend &&
        p->has_tokenizer)
        g_gp = p;
    else if (p)
        fprintf(stderr, "    gguf plugin refused: %s\n", p->reason);
    return g_gp;
}

#define NEED_PLUGIN()                                                       \
    do {                                                                    \
        if (!gguf_plugin()) SKIP("gguf plugin not built (%s)", GG_PLUGIN);  \
    } while (0)

/* Loads path through the plugin's frontend as the CLI does. */
static cr_graph *gt_load_graph(const char *path, int *status, char *err,
                               size_t errlen)
{
    cr_plugin *p = gguf_plugin();
    *status = CRUCIBLE_E_NOTFOUND;
    snprintf(err, errlen, "gguf plugin not available");
    if (!p) return NULL;
    cr_graph *g = ir_new();
    if (!g) return NULL;
    ir_builder_ctx bctx;
    memset(&bctx, 0, sizeof bctx);
    bctx.g = g;
    crucible_ir_builder b;
    ir_builder_init(&b, &bctx);
    cr_loader_enter(p, "load");
    int rc = p->frontend.load(p->state, path, &b);
    cr_loader_leave();
    *status = rc;
    if (rc != CRUCIBLE_OK) {
        snprintf(err, errlen, "%s: %s", crucible_status_str(rc),
                 cr_host_last_error());
        ir_free(g);
        return NULL;
    }
    if ((rc = ir_validate(g, err, errlen)) != CRUCIBLE_OK ||
        (rc = ir_infer_shapes(g, err, errlen)) != CRUCIBLE_OK) {
        *status = rc;
        ir_free(g);
        return NULL;
    }
    err[0] = 0;
    return g;
}

static const char *gmeta(const cr_graph *g, const char *key)
{
    for (size_t i = 0; i < g->n_meta; i++)
        if (!strcmp(g->meta[i].key, key)) return g->meta[i].value;
    return NULL;
}

static int gt_open_mem(const uint8_t *b, size_t n, gguf_file **f, char *err,
                       size_t errlen)
{
    err[0] = 0;
    return gguf_open_mem(b, n, NULL, NULL, f, err, errlen);
}

/* ---- a small GGUF writer for crafted files --------------------------------------------*/
typedef struct gbuf {
    uint8_t *p;
    size_t n, cap;
} gbuf;

static void gb_bytes(gbuf *b, const void *s, size_t n)
{
    if (b->n + n > b->cap) {
        size_t c = b->cap ? b->cap : 256;
        while (c < b->n + n) c *= 2;
        uint8_t *np = realloc(b->p, c);
        if (!np) abort();
        b->p = np;
        b->cap = c;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void gb_u8(gbuf *b, uint8_t v) { gb_bytes(b, &v, 1); }
static void gb_u32(gbuf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
                    (uint8_t)(v >> 24)};
    gb_bytes(b, x, 4);
}
static void gb_u64(gbuf *b, uint64_t v)
{
    gb_u32(b, (uint32_t)v);
    gb_u32(b, (uint32_t)(v >> 32));
}
static void gb_str(gbuf *b, const char *s)
{
    gb_u64(b, strlen(s));
    gb_bytes(b, s, strlen(s));
}
static void gb_header(gbuf *b, uint32_t version, uint64_t nt, uint64_t nkv)
{
    b->n = 0;
    gb_bytes(b, "GGUF", 4);
    gb_u32(b, version);
    gb_u64(b, nt);
    gb_u64(b, nkv);
}
static void gb_kv_u32(gbuf *b, const char *k, uint32_t v)
{
    gb_str(b, k);
    gb_u32(b, GGUF_T_U32);
    gb_u32(b, v);
}
static void gb_kv_str(gbuf *b, const char *k, const char *v)
{
    gb_str(b, k);
    gb_u32(b, GGUF_T_STRING);
    gb_str(b, v);
}
static void gb_tensor(gbuf *b, const char *name, uint32_t nd,
                      const uint64_t *dims, uint32_t type, uint64_t off)
{
    gb_str(b, name);
    gb_u32(b, nd);
    for (uint32_t i = 0; i < nd; i++) gb_u64(b, dims[i]);
    gb_u32(b, type);
    gb_u64(b, off);
}
static void gb_pad(gbuf *b, size_t a)
{
    while (b->n % a) gb_u8(b, 0);
}
static void gb_zeros(gbuf *b, size_t n)
{
    while (n--) gb_u8(b, 0);
}

/* Expects the reader to refuse b with `status` and a message containing
 * `want`. */
static int expect_refused(const gbuf *b, int status, const char *want,
                          const char *what)
{
    gguf_file *f = NULL;
    char err[512];
    int rc = gt_open_mem(b->p, b->n, &f, err, sizeof err);
    if (rc == CRUCIBLE_OK) {
        gguf_close(f);
        fprintf(stderr, "    %s: loaded, expected refusal (%s)\n", what, want);
        return 1;
    }
    if (rc != status || !strstr(err, want)) {
        fprintf(stderr, "    %s: status %d (want %d), message \"%s\" (want "
                        "\"%s\")\n",
                what, rc, status, err, want);
        return 1;
    }
    return 0;
}

/* ---- the shared edge cases ---------------------------------------------------------*/
TEST(test_gguf_edge_cases)
{
    NEED_MODELS();
    char err[512];
    gguf_file *f = NULL;
    /* v2, one F32 tensor [2] */
    int rc = gguf_open(GG_MODELS "/edge-cases/gguf-v2-f32.gguf", NULL, NULL,
                       &f, err, sizeof err);
    CHECK_MSG(rc == CRUCIBLE_OK, "%s", err);
    CHECK(gguf_version(f) == 2 && gguf_n_tensors(f) == 1 && gguf_n_kv(f) == 0);
    const gguf_tensor *t = gguf_find_tensor(f, "dense.weight");
    CHECK(t && t->type == GGML_T_F32 && t->n_dims == 1 && t->ne[0] == 2);
    CHECK(t->n_bytes == 8 && t->data && !memcmp(t->data, "ABCDEFGH", 8));
    CHECK(gguf_data_offset(f) == 96);
    gguf_close(f);
    /* v3, one Q4_0 block */
    rc = gguf_open(GG_MODELS "/edge-cases/gguf-v3-q4-0.gguf", NULL, NULL, &f,
                   err, sizeof err);
    CHECK_MSG(rc == CRUCIBLE_OK, "%s", err);
    t = gguf_find_tensor(f, "quant.weight");
    CHECK(gguf_version(f) == 3 && t && t->type == GGML_T_Q4_0 &&
          t->ne[0] == 32 && t->n_bytes == 18);
    float y[32];
    CHECK(gguf_dequantize(t->type, t->data, t->n_bytes, y, 32) == 0);
    /* d = f16 0x0100 (2^-16), qs = 02 03 .. 11: element j < 16 is
     * (qs[j] & 15) - 8, element j + 16 is (qs[j] >> 4) - 8 */
    float d = gguf_f16_to_f32(0x0100);
    CHECK(d == ldexpf(1.0f, -16));
    for (int j = 0; j < 16; j++) {
        int q = 2 + j;
        CHECK(y[j] == (float)((q & 15) - 8) * d);
        CHECK(y[j + 16] == (float)((q >> 4) - 8) * d);
    }
    gguf_close(f);
    /* unknown type 43, named */
    rc = gguf_open(GG_MODELS "/edge-cases/gguf-unknown-type.gguf", NULL, NULL,
                   &f, err, sizeof err);
    CHECK_MSG(rc == CRUCIBLE_E_FORMAT &&
                  strstr(err, "tensor future.weight: unknown ggml type 43"),
              "%d %s", rc, err);
    /* version 4, named */
    rc = gguf_open(GG_MODELS "/edge-cases/gguf-unsupported-version.gguf", NULL,
                   NULL, &f, err, sizeof err);
    CHECK_MSG(rc == CRUCIBLE_E_UNSUPPORTED && strstr(err, "version 4"),
              "%d %s", rc, err);

    /* the same through the plugin and the CLI */
    NEED_PLUGIN();
    int st;
    cr_host_set_verbosity(-2);
    cr_graph *g = gt_load_graph(GG_MODELS "/edge-cases/gguf-v2-f32.gguf", &st,
                                err, sizeof err);
    CHECK_MSG(g != NULL, "%s", err);
    CHECK(gmeta(g, "gguf_version") && !strcmp(gmeta(g, "gguf_version"), "2"));
    ir_free(g);
    g = gt_load_graph(GG_MODELS "/edge-cases/gguf-v3-q4-0.gguf", &st, err,
                      sizeof err);
    CHECK_MSG(g != NULL, "%s", err);
    CHECK(test_contains(gmeta(g, "tensor_bytes.Q4_0"), "18 bytes in 1 tensor"));
    ir_free(g);
    g = gt_load_graph(GG_MODELS "/edge-cases/gguf-unknown-type.gguf", &st, err,
                      sizeof err);
    CHECK(!g && st == CRUCIBLE_E_FORMAT &&
          test_contains(err, "unknown ggml type 43"));
    g = gt_load_graph(GG_MODELS "/edge-cases/gguf-unsupported-version.gguf",
                      &st, err, sizeof err);
    CHECK(!g && st == CRUCIBLE_E_UNSUPPORTED && test_contains(err, "version 4"));
    cr_host_set_verbosity(0);
    char *out = NULL;
    rc = test_sh(&out, "'%s' ir '%s'", BIN,
                 GG_MODELS "/edge-cases/gguf-unknown-type.gguf");
    CHECK_MSG(rc == 1 && test_contains(out, "unknown ggml type 43"),
              "exit %d: %s", rc, out);
    free(out);
    rc = test_sh(&out, "'%s' ir '%s'", BIN,
                 GG_MODELS "/edge-cases/gguf-unsupported-version.gguf");
    CHECK_MSG(rc == 1 && test_contains(out, "unsupported GGUF version 4"),
              "exit %d: %s", rc, out);
    free(out);
    return TEST_PASS;
}

/* ---- stories260K: reader and frontend summary -----------------------------------------*/
TEST(test_gguf_stories_summary)
{
    NEED_MODELS();
    char err[512];
    gguf_file *f = NULL;
    int rc = gguf_open(GG_STORIES, NULL, NULL, &f, err, sizeof err);
    CHECK_MSG(rc == CRUCIBLE_OK, "%s", err);
    CHECK(gguf_version(f) == 3 && gguf_n_tensors(f) == 48 &&
          gguf_n_kv(f) == 19);
    size_t len;
    const char *arch = gguf_get_str(f, "general.architecture", &len);
    CHECK(arch && len == 5 && !memcmp(arch, "llama", 5));
    uint64_t u;
    CHECK(!gguf_get_u64(f, "llama.block_count", &u) && u == 5);
    CHECK(!gguf_get_u64(f, "llama.embedding_length", &u) && u == 64);
    CHECK(!gguf_get_u64(f, "llama.attention.head_count", &u) && u == 8);
    CHECK(!gguf_get_u64(f, "llama.attention.head_count_kv", &u) && u == 4);
    const gguf_kv *tok = gguf_find_kv(f, "tokenizer.ggml.tokens");
    CHECK(tok && tok->v.type == GGUF_T_ARRAY && tok->v.n == 512);
    const gguf_tensor *emb = gguf_find_tensor(f, "token_embd.weight");
    CHECK(emb && emb->n_dims == 2 && emb->ne[0] == 64 && emb->ne[1] == 512 &&
          emb->type == GGML_T_F32);
    /* every tensor lies inside the file, aligned */
    uint64_t params = 0;
    for (size_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        CHECK(t->offset % gguf_alignment(f) == 0);
        CHECK(gguf_data_offset(f) + t->offset + t->n_bytes <= gguf_file_size(f));
        params += t->n_elems;
    }
    /* F32 "dequantisation" is a copy: finite weights */
    float *w = malloc(emb->n_elems * sizeof(float));
    CHECK(w);
    CHECK(gguf_dequantize(emb->type, emb->data, emb->n_bytes, w,
                          emb->n_elems) == 0);
    int finite = 1;
    for (uint64_t i = 0; i < emb->n_elems; i++) finite &= isfinite(w[i]) != 0;
    free(w);
    CHECK(finite);
    gguf_close(f);

    NEED_PLUGIN();
    int st;
    cr_graph *g = gt_load_graph(GG_STORIES, &st, err, sizeof err);
    CHECK_MSG(g != NULL, "%s", err);
    static const char *const want[][2] = {
        {"format", "gguf"},         {"architecture", "llama"},
        {"block_count", "5"},       {"embedding_length", "64"},
        {"attention.head_count", "8"}, {"attention.head_count_kv", "4"},
        {"vocab_size", "512"},      {"context_length", "2048"},
        {"rope.dimension_count", "8"}, {"tensors", "48"},
        {"tokenizer", "llama"}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *v = gmeta(g, want[i][0]);
        CHECK_MSG(v && !strcmp(v, want[i][1]), "meta %s = %s, want %s",
                  want[i][0], v ? v : "(absent)", want[i][1]);
    }
    char pbuf[32];
    snprintf(pbuf, sizeof pbuf, "%llu", (unsigned long long)params);
    CHECK(gmeta(g, "parameters") && !strcmp(gmeta(g, "parameters"), pbuf));
    CHECK(test_contains(gmeta(g, "tensor_bytes.F32"), "in 48 tensors"));
    /* the body: the llama template (test_gguf_llama_graph has details) */
    CHECK(g->n_inputs == 2 + 2 * 5 && g->n_outputs == 1 + 2 * 5);
    const cr_tensor *lg = &g->tensors[g->outputs[0]];
    CHECK(lg->rank == 2 && lg->dims[1] == 512 && lg->dtype == CRUCIBLE_DT_F32);
    ir_free(g);

    char *out = NULL;
    const char *td = test_tmpdir();
    rc = test_sh(&out, "'%s' ir '%s' > '%s/st.ir' && grep -v '^tensor .* = ' "
                 "'%s/st.ir'", BIN, GG_STORIES, td, td);
    CHECK_MSG(rc == 0 && test_contains(out, "meta architecture \"llama\"") &&
                  test_contains(out, "meta block_count \"5\"") &&
                  test_contains(out, "meta cost.parameters \"292800\"") &&
                  test_contains(out, "inputs (token, pos, cache.k.0,"),
              "exit %d: %s", rc, out);
    free(out);
    return TEST_PASS;
}

/* ---- dequantisation and metadata: dequant.gguf ------------------------------------------*/
static int close_enough(float got, float want)
{
    if (isnan(want)) return isnan(got);
    if (isinf(want)) return got == want;
    return fabsf(got - want) <= 1e-6f * (1.0f + fabsf(want));
}

TEST(test_gguf_dequant_vectors)
{
    char err[512];
    gguf_file *f = NULL;
    int rc = gguf_open(GG_DATA "/dequant.gguf", NULL, NULL, &f, err,
                       sizeof err);
    CHECK_MSG(rc == CRUCIBLE_OK, "%s", err);
    static const char *const types[] = {
        "F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0",
        "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K"};
    int checked = 0;
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        char name[64];
        snprintf(name, sizeof name, "%s.expected", types[k]);
        const gguf_tensor *t = gguf_find_tensor(f, types[k]);
        const gguf_tensor *e = gguf_find_tensor(f, name);
        CHECK_MSG(t && e, "tensor %s missing", types[k]);
        CHECK_MSG(!strcmp(gguf_type(t->type)->name, types[k]),
                  "tensor %s has type %s", types[k], gguf_type(t->type)->name);
        CHECK(e->type == GGML_T_F32 && e->n_elems == t->n_elems);
        float *y = malloc(t->n_elems * sizeof(float));
        CHECK(y);
        rc = gguf_dequantize(t->type, t->data, t->n_bytes, y, t->n_elems);
        CHECK_MSG(rc == 0, "%s: %d", types[k], rc);
        int bad = 0;
        for (uint64_t i = 0; i < t->n_elems; i++) {
            float want;
            memcpy(&want, e->data + 4 * i, 4);
            if (!close_enough(y[i], want)) {
                if (bad < 4)
                    fprintf(stderr, "    %s[%llu] = %.9g, want %.9g\n",
                            types[k], (unsigned long long)i, (double)y[i],
                            (double)want);
                bad++;
            }
        }
        free(y);
        CHECK_MSG(!bad, "%s: %d of %llu values differ", types[k], bad,
                  (unsigned long long)t->n_elems);
        checked++;
    }
    CHECK(checked == 14);
    /* a bad size is refused, an unsupported type named as such */
    const gguf_tensor *q = gguf_find_tensor(f, "Q4_K");
    float y[256];
    CHECK(gguf_dequantize(q->type, q->data, 10, y, 256) == CRUCIBLE_E_INVALID);
    CHECK(gguf_dequantize(q->type, q->data, q->n_bytes, y, 100) ==
          CRUCIBLE_E_INVALID);
    CHECK(gguf_dequantize(GGML_T_IQ2_XXS, q->data, q->n_bytes, y, 256) ==
          CRUCIBLE_E_UNSUPPORTED);
    CHECK(gguf_dequantize(43, q->data, q->n_bytes, y, 256) ==
          CRUCIBLE_E_UNSUPPORTED);

    /* metadata of every type */
    CHECK(gguf_alignment(f) == 64 && gguf_data_offset(f) % 64 == 0);
    for (size_t i = 0; i < gguf_n_tensors(f); i++)
        CHECK(gguf_tensor_at(f, i)->offset % 64 == 0);
    uint64_t u;
    int64_t i64;
    double d;
    int b;
    size_t len;
    CHECK(!gguf_get_u64(f, "test.u8", &u) && u == 200);
    CHECK(!gguf_value_i64(&gguf_find_kv(f, "test.i8")->v, &i64) && i64 == -100);
    CHECK(!gguf_get_u64(f, "test.u16", &u) && u == 60000);
    CHECK(!gguf_value_i64(&gguf_find_kv(f, "test.i16")->v, &i64) &&
          i64 == -30000);
    CHECK(!gguf_get_u64(f, "test.u32", &u) && u == 4000000000u);
    CHECK(!gguf_value_i64(&gguf_find_kv(f, "test.i32")->v, &i64) &&
          i64 == -2000000000);
    CHECK(gguf_get_u64(f, "test.i32", &u) == -1); /* negative: no u64 */
    CHECK(!gguf_get_f64(f, "test.f32", &d) && d == 1.5);
    CHECK(!gguf_get_bool(f, "test.bool", &b) && b == 1);
    const char *s = gguf_get_str(f, "test.string", &len);
    CHECK(s && len == strlen("h\xc3\xa9llo \xe2\x96\x81") &&
          !memcmp(s, "h\xc3\xa9llo \xe2\x96\x81", len));
    CHECK(!gguf_get_u64(f, "test.u64", &u) && u == (1ull << 63) + 5);
    CHECK(gguf_value_i64(&gguf_find_kv(f, "test.u64")->v, &i64) == -1);
    CHECK(!gguf_value_i64(&gguf_find_kv(f, "test.i64")->v, &i64) &&
          i64 == -(INT64_C(1) << 62));
    CHECK(!gguf_get_f64(f, "test.f64", &d) && d == -2.25);
    CHECK(gguf_get_str(f, "test.u8", &len) == NULL);
    CHECK(gguf_get_u64(f, "no.such.key", &u) == -1);
    /* arrays */
    const gguf_kv *kv = gguf_find_kv(f, "test.array.i32");
    gguf_value e;
    CHECK(kv && kv->v.type == GGUF_T_ARRAY && kv->v.elem_type == GGUF_T_I32 &&
          kv->v.n == 3);
    CHECK(!gguf_array_get(&kv->v, 1, &e) && !gguf_value_i64(&e, &i64) &&
          i64 == -2);
    CHECK(gguf_array_get(&kv->v, 3, &e) == -1);
    kv = gguf_find_kv(f, "test.array.string");
    gguf_iter it;
    static const char *const strs[] = {"a", "bc", ""};
    gguf_iter_init(&it, &kv->v);
    int n = 0;
    while (gguf_iter_next(&it, &e)) {
        s = gguf_value_str(&e, &len);
        CHECK(n < 3 && s && len == strlen(strs[n]) && !memcmp(s, strs[n], len));
        n++;
    }
    CHECK(n == 3);
    CHECK(gguf_array_get(&kv->v, 0, &e) == -1); /* not fixed-size */
    kv = gguf_find_kv(f, "test.array.bool");
    CHECK(kv && kv->v.n == 3 && !gguf_array_get(&kv->v, 1, &e) &&
          !gguf_value_bool(&e, &b) && b == 0);
    kv = gguf_find_kv(f, "test.array.empty");
    CHECK(kv && kv->v.n == 0 && kv->v.elem_type == GGUF_T_F32);
    gguf_iter_init(&it, &kv->v);
    CHECK(!gguf_iter_next(&it, &e));
    /* [[1, 2], [3], []] of u16 */
    kv = gguf_find_kv(f, "test.array.nested");
    CHECK(kv && kv->v.elem_type == GGUF_T_ARRAY && kv->v.n == 3);
    static const int lens[] = {2, 1, 0};
    int want = 1;
    gguf_iter_init(&it, &kv->v);
    for (n = 0; gguf_iter_next(&it, &e); n++) {
        CHECK(n < 3 && e.type == GGUF_T_ARRAY && e.elem_type == GGUF_T_U16 &&
              e.n == (uint64_t)lens[n]);
        for (uint64_t j = 0; j < e.n; j++) {
            gguf_value x;
            CHECK(!gguf_array_get(&e, j, &x) && !gguf_value_u64(&x, &u) &&
                  u == (uint64_t)want++);
        }
    }
    CHECK(n == 3);
    /* [["x"], ["y", "z"]] */
    kv = gguf_find_kv(f, "test.array.nested_str");
    gguf_iter_init(&it, &kv->v);
    char joined[16] = "";
    while (gguf_iter_next(&it, &e)) {
        gguf_iter in;
        gguf_value x;
        gguf_iter_init(&in, &e);
        while (gguf_iter_next(&in, &x)) {
            s = gguf_value_str(&x, &len);
            CHECK(s && len == 1);
            strncat(joined, s, 1);
        }
        strcat(joined, "|");
    }
    CHECK(!strcmp(joined, "x|yz|"));
    gguf_close(f);
    return TEST_PASS;
}

/* ---- crafted files -------------------------------------------------------------------------*/
TEST(test_gguf_crafted_refusals)
{
    gbuf b = {0};
    int bad = 0;
    uint64_t d1[1] = {16}, d2[2];

    /* minimal valid files first */
    gguf_file *f = NULL;
    char err[512];
    gb_header(&b, 3, 0, 0);
    CHECK(gt_open_mem(b.p, b.n, &f, err, sizeof err) == 0);
    CHECK(gguf_n_kv(f) == 0 && gguf_n_tensors(f) == 0);
    gguf_close(f);
    gb_header(&b, 3, 1, 2);
    gb_kv_u32(&b, "general.alignment", 64);
    gb_kv_str(&b, "general.architecture", "llama");
    gb_tensor(&b, "w", 1, d1, GGML_T_F32, 0);
    gb_pad(&b, 64);
    gb_zeros(&b, 64);
    CHECK(gt_open_mem(b.p, b.n, &f, err, sizeof err) == 0);
    CHECK(gguf_alignment(f) == 64 && gguf_data_offset(f) % 64 == 0);
    gguf_close(f);

    /* the header */
    b.n = 0;
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT, "empty file", "empty");
    gb_bytes(&b, "GGML\3\0\0\0", 8);
    gb_zeros(&b, 16);
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT, "not a GGUF file", "magic");
    gb_header(&b, 3, 0, 0);
    b.n = 10;
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT, "truncated", "short header");
    gb_header(&b, 1, 0, 0);
    bad += expect_refused(&b, CRUCIBLE_E_UNSUPPORTED, "version 1", "v1");
    gb_header(&b, 4, 0, 0);
    bad += expect_refused(&b, CRUCIBLE_E_UNSUPPORTED, "version 4", "v4");
    gb_header(&b, 0, 0, 0);
    bad += expect_refused(&b, CRUCIBLE_E_UNSUPPORTED, "version 0", "v0");
    gb_header(&b, 0x03000000u, 0, 0); /* a big-endian v3 file */
    bad += expect_refused(&b, CRUCIBLE_E_UNSUPPORTED, "big-endian", "BE");
    gb_header(&b, 3, 0, UINT64_C(1) << 60);
    gb_zeros(&b, 64);
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT, "metadata pairs",
                          "absurd kv count");
    gb_header(&b, 3, UINT64_MAX, 0);
    gb_zeros(&b, 64);
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT, "tensors",
                          "absurd tensor count");

    /* keys */
    gb_header(&b, 3, 0, 1);
    gb_u64(&b, UINT64_C(1) << 63);
    gb_zeros(&b, 32);
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT, "at most 65535",
                          "absurd key length");
    gb_header(&b, 3, 0, 1);
    gb_u64(&b, 1000);
    gb_bytes(&b, "abcdefgh", 8);
    gb_zeros(&b, 8);
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT, "runs past the end",
                          "key past the end");
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "");
    gb_u32(&b, GGUF_T_U8);
    gb_zeros(&b, 8);
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT, "empty key", "empty key");
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "k\x80y");
    gb_u32(&b, GGUF_T_U8);
    gb_zeros(&b, 8);
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT, "printable ASCII",
                          "non-ASCII key");

    /* values */
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "a.b");
    gb_u32(&b, GGUF_T_STRING);
    gb_u64(&b, UINT64_C(1) << 62);
    gb_zeros(&b, 16);
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT, "string of",
                          "absurd string length");
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "a.b");
    gb_u32(&b, GGUF_T_ARRAY);
    gb_u32(&b, GGUF_T_U32);
    gb_u64(&b, UINT64_C(1) << 61);
    gb_zeros(&b, 16);
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT, "array of",
                          "absurd array length");
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "a.b");
    gb_u32(&b, GGUF_T_ARRAY);
    gb_u32(&b, GGUF_T_STRING);
    gb_u64(&b, 1000000);
    gb_zeros(&b, 64);
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT, "array of",
                          "absurd string array length");
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "a.b");
    gb_u32(&b, GGUF_T_ARRAY);
    gb_u32(&b, 13);
    gb_u64(&b, 0);
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT, "unknown element type 13",
                          "bad element type");
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "a.b");
    gb_u32(&b, 13);
    gb_zeros(&b, 8);
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT,
                          "unknown metadata value type 13", "bad value type");
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "a.b");
    gb_u32(&b, GGUF_T_BOOL);
    gb_u8(&b, 2);
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT, "bool value 2", "bool 2");
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "a.b");
    gb_u32(&b, GGUF_T_ARRAY);
    gb_u32(&b, GGUF_T_BOOL);
    gb_u64(&b, 3);
    gb_u8(&b, 1);
    gb_u8(&b, 0);
    gb_u8(&b, 5);
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT, "bool array element 2",
                          "bool array");
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "a.b");
    gb_u32(&b, GGUF_T_U64);
    gb_u32(&b, 7); /* 4 of 8 bytes */
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT, "truncated", "short u64");
    /* nesting: GGUF_MAX_DEPTH arrays deep is fine, one more is not */
    for (int depth = GGUF_MAX_DEPTH; depth <= GGUF_MAX_DEPTH + 1; depth++) {
        gb_header(&b, 3, 0, 1);
        gb_str(&b, "deep");
        gb_u32(&b, GGUF_T_ARRAY);
        for (int k = 1; k < depth; k++) {
            gb_u32(&b, GGUF_T_ARRAY);
            gb_u64(&b, 1);
        }
        gb_u32(&b, GGUF_T_U8);
        gb_u64(&b, 1);
        gb_u8(&b, 7);
        if (depth == GGUF_MAX_DEPTH) {
            CHECK_MSG(gt_open_mem(b.p, b.n, &f, err, sizeof err) == 0, "%s",
                      err);
            gguf_close(f);
        } else {
            bad += expect_refused(&b, CRUCIBLE_E_LIMIT, "nested more than",
                                  "too deep");
        }
    }
    /* duplicate keys */
    gb_header(&b, 3, 0, 3);
    gb_kv_u32(&b, "x.y", 1);
    gb_kv_u32(&b, "x.z", 1);
    gb_kv_str(&b, "x.y", "again");
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT, "duplicate metadata key x.y",
                          "duplicate key");
    /* alignment */
    static const uint32_t bad_align[] = {0, 3, 48, 1u << 31};
    for (size_t i = 0; i < sizeof bad_align / sizeof bad_align[0]; i++) {
        gb_header(&b, 3, 0, 1);
        gb_kv_u32(&b, "general.alignment", bad_align[i]);
        bad += expect_refused(&b, CRUCIBLE_E_FORMAT, "power of two",
                              "bad alignment");
    }
    gb_header(&b, 3, 0, 1);
    gb_kv_str(&b, "general.alignment", "32");
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT, "expected an unsigned",
                          "alignment type");

    /* tensor infos */
    gb_header(&b, 3, 2, 0);
    gb_tensor(&b, "w", 1, d1, GGML_T_F32, 0);
    gb_tensor(&b, "w", 1, d1, GGML_T_F32, 64);
    gb_pad(&b, 32);
    gb_zeros(&b, 128);
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT, "duplicate tensor name w",
                          "duplicate tensor");
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "w", 1, d1, GGML_T_F32, 4);
    gb_pad(&b, 32);
    gb_zeros(&b, 128);
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT,
                          "not a multiple of the alignment", "misaligned");
    gb_header(&b, 3, 1, 1); /* aligned to 32 but not to 64 */
    gb_kv_u32(&b, "general.alignment", 64);
    gb_tensor(&b, "w", 1, d1, GGML_T_F32, 32);
    gb_pad(&b, 64);
    gb_zeros(&b, 128);
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT,
                          "not a multiple of the alignment (64)",
                          "misaligned 64");
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "w", 1, d1, GGML_T_F32, 0);
    gb_pad(&b, 32);
    gb_zeros(&b, 63); /* 64 needed */
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT, "outside", "data too short");
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "w", 1, d1, GGML_T_F32, UINT64_C(1) << 63);
    gb_pad(&b, 32);
    gb_zeros(&b, 64);
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT, "outside", "huge offset");
    gb_header(&b, 3, 1, 0); /* the data section would start past the end */
    gb_tensor(&b, "w", 1, d1, GGML_T_F32, 0);
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT, "past the end of the file",
                          "no data section");
    uint64_t d5[5] = {1, 1, 1, 1, 1};
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "w", 5, d5, GGML_T_F32, 0);
    gb_pad(&b, 32);
    gb_zeros(&b, 32);
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT, "5 dimensions", "5 dims");
    d2[0] = UINT64_C(1) << 32;
    d2[1] = UINT64_C(1) << 32;
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "w", 2, d2, GGML_T_F32, 0);
    gb_pad(&b, 32);
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT, "overflows", "dims product");
    d2[0] = UINT64_C(1) << 63;
    d2[1] = 1;
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "w", 2, d2, GGML_T_F32, 0);
    gb_pad(&b, 32);
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT, "more than 2^63-1",
                          "dim too large");
    d2[0] = UINT64_C(1) << 40;
    d2[1] = UINT64_C(1) << 22; /* 2^62 elements, 2^64 bytes of F32 */
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "w", 2, d2, GGML_T_F32, 0);
    gb_pad(&b, 32);
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT, "data size overflows",
                          "bytes overflow");
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "w", 1, d1, GGML_T_Q4_0, 0);
    gb_pad(&b, 32);
    gb_zeros(&b, 32);
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT,
                          "not a multiple of the Q4_0 block size",
                          "partial block");
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "blk.0.attn_q.weight", 1, d1, 43, 0);
    gb_pad(&b, 32);
    gb_zeros(&b, 64);
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT,
                          "tensor blk.0.attn_q.weight: unknown ggml type 43",
                          "type 43");
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "w", 1, d1, 4, 0); /* Q4_2: removed */
    gb_pad(&b, 32);
    gb_zeros(&b, 64);
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT, "unknown ggml type 4",
                          "type 4");
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, "", 1, d1, GGML_T_F32, 0);
    gb_pad(&b, 32);
    gb_zeros(&b, 64);
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT, "name of 0 bytes",
                          "empty name");
    char longname[80];
    memset(longname, 'n', 65);
    longname[65] = 0;
    gb_header(&b, 3, 1, 0);
    gb_tensor(&b, longname, 1, d1, GGML_T_F32, 0);
    gb_pad(&b, 32);
    gb_zeros(&b, 64);
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT, "name of 65 bytes",
                          "long name");
    gb_header(&b, 3, 1, 0);
    gb_u64(&b, 3);
    gb_bytes(&b, "a\0b", 3);
    gb_u32(&b, 1);
    gb_u64(&b, 16);
    gb_u32(&b, GGML_T_F32);
    gb_u64(&b, 0);
    gb_pad(&b, 32);
    gb_zeros(&b, 64);
    bad += expect_refused(&b, CRUCIBLE_E_FORMAT, "NUL byte", "NUL in name");
    free(b.p);
    CHECK_MSG(bad == 0, "%d crafted files were not refused as expected", bad);
    return TEST_PASS;
}

/* A crafted file through the plugin: a clear error with the path. */
TEST(test_gguf_crafted_plugin)
{
    NEED_PLUGIN();
    const char *d = test_tmpdir();
    char path[4096], err[1024];
    snprintf(path, sizeof path, "%s/dup.gguf", d);
    gbuf b = {0};
    gb_header(&b, 3, 0, 2);
    gb_kv_str(&b, "general.architecture", "llama");
    gb_kv_str(&b, "general.architecture", "llama");
    CHECK(test_write_file(path, b.p, b.n) == 0);
    free(b.p);
    int st;
    cr_host_set_verbosity(-2);
    cr_graph *g = gt_load_graph(path, &st, err, sizeof err);
    cr_host_set_verbosity(0);
    CHECK(!g && st == CRUCIBLE_E_FORMAT &&
          test_contains(err, "duplicate metadata key general.architecture") &&
          test_contains(err, path));
    char *out = NULL;
    int rc = test_sh(&out, "'%s' ir '%s'", BIN, path);
    CHECK_MSG(rc == 1 && test_contains(out, "duplicate metadata key"),
              "exit %d: %s", rc, out);
    free(out);
    /* a file that is not GGUF but named .gguf: the gguf frontend explains */
    snprintf(path, sizeof path, "%s/text.gguf", d);
    CHECK(test_write(path, "hello\n") == 0);
    rc = test_sh(&out, "'%s' ir '%s'", BIN, path);
    CHECK_MSG(rc == 1 && test_contains(out, "not a GGUF file"), "exit %d: %s",
              rc, out);
    free(out);
    /* an architecture without a template */
    snprintf(path, sizeof path, "%s/gpt2.gguf", d);
    b = (gbuf){0};
    gb_header(&b, 3, 0, 1);
    gb_kv_str(&b, "general.architecture", "gpt2");
    CHECK(test_write_file(path, b.p, b.n) == 0);
    free(b.p);
    g = gt_load_graph(path, &st, err, sizeof err);
    CHECK_MSG(g != NULL, "%s", err);
    CHECK(g->n_nodes == 1 &&
          !strcmp(ir_attr_s(&g->nodes[0], "source_op", ""), "gguf:gpt2") &&
          test_contains(ir_attr_s(&g->nodes[0], "reason", ""),
                        "no architecture template for gpt2"));
    ir_free(g);
    /* score */
    cr_plugin *p = gguf_plugin();
    CHECK(p->frontend.score(p->state, "x.bin", (const uint8_t *)"GGUF\3", 5) ==
          100);
    CHECK(p->frontend.score(p->state, "x.gguf", (const uint8_t *)"junk", 4) ==
          50);
    CHECK(p->frontend.score(p->state, "x.onnx", (const uint8_t *)"\x08\x07", 2) ==
          0);
    return TEST_PASS;
}

/* ---- truncation and byte flips ------------------------------------------------------------*/
TEST(test_gguf_truncated)
{
    NEED_MODELS();
    static const char *const files[] = {GG_STORIES, GG_VOCAB,
                                        GG_DATA "/dequant.gguf"};
    int loaded = 0, cuts = 0;
    char err[512];
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        size_t n;
        uint8_t *buf = test_read_file(files[k], &n);
        CHECK_MSG(buf != NULL, "cannot read %s", files[k]);
        /* every cut in the first 4 KiB and the last 512 bytes, strided between */
        for (size_t cut = 0; cut < n;
             cut += cut < 4096 || cut + 512 >= n ? 1 : 1 + n / 300) {
            /* a private copy of exactly cut bytes, so ASan sees overreads */
            uint8_t *c = malloc(cut ? cut : 1);
            CHECK(c);
            memcpy(c, buf, cut);
            gguf_file *f = NULL;
            if (gt_open_mem(c, cut, &f, err, sizeof err) == 0) {
                fprintf(stderr, "    %s cut at %zu of %zu loaded\n", files[k],
                        cut, n);
                loaded++;
                gguf_close(f);
            }
            free(c);
            cuts++;
        }
        free(buf);
    }
    CHECK_MSG(loaded == 0, "%d truncated files loaded", loaded);
    CHECK(cuts > 12000);
    /* the plugin and the CLI: a clear error, exit 1 */
    NEED_PLUGIN();
    size_t n;
    uint8_t *buf = test_read_file(GG_STORIES, &n);
    const char *d = test_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/cut.gguf", d);
    CHECK(test_write_file(path, buf, n / 2) == 0);
    free(buf);
    char *out = NULL;
    int rc = test_sh(&out, "'%s' ir '%s'", BIN, path);
    CHECK_MSG(rc == 1 && test_contains(out, "outside") &&
                  test_contains(out, "truncated"),
              "exit %d: %s", rc, out);
    free(out);
    return TEST_PASS;
}

static uint64_t gt_xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Walks everything a consumer would touch in an opened file. */
static void touch_all(const gguf_file *f)
{
    for (size_t i = 0; i < gguf_n_kv(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        uint64_t u;
        double d;
        size_t len;
        (void)gguf_value_u64(&kv->v, &u);
        (void)gguf_value_f64(&kv->v, &d);
        (void)gguf_value_str(&kv->v, &len);
        gguf_iter it;
        gguf_value e;
        gguf_iter_init(&it, &kv->v);
        while (gguf_iter_next(&it, &e)) (void)gguf_value_str(&e, &len);
    }
    for (size_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        const gguf_type_info *ti = gguf_type(t->type);
        if (!ti->dequant || t->n_elems > 65536) continue;
        float *y = malloc(t->n_elems * sizeof(float) + 1);
        if (y) gguf_dequantize(t->type, t->data, t->n_bytes, y, t->n_elems);
        free(y);
    }
}

TEST(test_gguf_byte_flips)
{
    NEED_MODELS();
    static const char *const files[] = {GG_STORIES, GG_VOCAB,
                                        GG_DATA "/dequant.gguf"};
    uint64_t seed = 0x243f6a8885a308d3ull;
    int loaded = 0, refused = 0;
    char err[512];
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        size_t n;
        uint8_t *orig = test_read_file(files[k], &n);
        CHECK(orig != NULL);
        uint8_t *buf = malloc(n);
        CHECK(buf);
        for (int it = 0; it < 400; it++) {
            memcpy(buf, orig, n);
            int flips = 1 + (int)(gt_xorshift(&seed) % 4);
            for (int fl = 0; fl < flips; fl++) {
                size_t at = (size_t)(gt_xorshift(&seed) % n);
                /* mostly the structure at the front */
                if (gt_xorshift(&seed) % 4) at %= n < 4096 ? n : 4096;
                buf[at] = (uint8_t)gt_xorshift(&seed);
            }
            gguf_file *f = NULL;
            if (gt_open_mem(buf, n, &f, err, sizeof err) == 0) {
                touch_all(f);
                gguf_close(f);
                loaded++;
            } else {
                CHECK(err[0] != 0);
                refused++;
            }
        }
        free(buf);
        free(orig);
    }
    fprintf(stderr, "    byte flips: %d loaded, %d refused with an error\n",
            loaded, refused);
    CHECK(loaded + refused == 1200);
    CHECK(refused > 0);

    /* flipped vocabularies through the plugin's tokenizer and frontend */
    NEED_PLUGIN();
    cr_plugin *p = gguf_plugin();
    const char *d = test_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/flip.gguf", d);
    size_t n;
    uint8_t *orig = test_read_file(GG_VOCAB, &n);
    uint8_t *buf = malloc(n);
    CHECK(orig && buf);
    cr_host_set_verbosity(-2);
    int opened = 0;
    for (int it = 0; it < 60; it++) {
        memcpy(buf, orig, n);
        for (int fl = 0; fl < 3; fl++) {
            size_t at = (size_t)(gt_xorshift(&seed) % n);
            buf[at] = (uint8_t)gt_xorshift(&seed);
        }
        if (test_write_file(path, buf, n)) break;
        void *tok = NULL;
        if (p->tokenizer.open(p->state, path, &tok) == 0) {
            int32_t ids[256];
            size_t cnt;
            static const char txt[] = " Hello, world! \xe2\x96\x81\xf0\x9f\xa6\x99\n";
            p->tokenizer.encode(tok, txt, sizeof txt - 1, 1, ids, 256, &cnt);
            char pc[64];
            size_t pl;
            for (int32_t id = 0; id < p->tokenizer.n_vocab(tok); id += 97)
                p->tokenizer.piece(tok, id, pc, sizeof pc, &pl);
            p->tokenizer.close(tok);
            opened++;
        }
        int st;
        cr_graph *g = gt_load_graph(path, &st, err, sizeof err);
        ir_free(g);
    }
    cr_host_set_verbosity(0);
    free(buf);
    free(orig);
    fprintf(stderr, "    flipped vocabularies: %d of 60 opened\n", opened);
    return TEST_PASS;
}

/* ---- the tokenizer ------------------------------------------------------------------*/
/* Encodes text (no BOS) into ids; returns the count or -1. */
static long encode(cr_plugin *p, void *tok, const char *text, size_t len,
                   int add_bos, int32_t *ids, size_t cap)
{
    size_t n = 0;
    int rc = p->tokenizer.encode(tok, text, len, add_bos, ids, cap, &n);
    return rc == 0 ? (long)n : -1;
}

TEST(test_gguf_vocab_vectors)
{
    NEED_MODELS();
    NEED_PLUGIN();
    cr_plugin *p = gguf_plugin();
    size_t ni, no;
    char *inp = (char *)test_read_file(GG_VOCAB ".inp", &ni);
    char *outp = (char *)test_read_file(GG_VOCAB ".out", &no);
    CHECK(inp && outp);
    void *tok = NULL;
    int rc = p->tokenizer.open(p->state, GG_VOCAB, &tok);
    CHECK_MSG(rc == 0, "open: %s", cr_host_last_error());
    CHECK(p->tokenizer.n_vocab(tok) == 32000 && p->tokenizer.bos(tok) == 1 &&
          p->tokenizer.eos(tok) == 2);
    /* cases are separated by "\n__ggml_vocab_test__\n"; the file ends with
     * one; each .out line holds one case's ids */
    static const char sep[] = "\n__ggml_vocab_test__\n";
    const size_t sl = sizeof sep - 1;
    size_t pos = 0, cases = 0, failed = 0;
    char *line = outp, *oend = outp + no;
    int32_t *ids = malloc(4096 * sizeof *ids);
    CHECK(ids);
    while (pos < ni) {
        char *next = memmem(inp + pos, ni - pos, sep, sl);
        size_t end = next ? (size_t)(next - inp) : ni;
        if (!next && end == pos) break;
        /* expected ids */
        CHECK_MSG(line < oend, "fewer .out lines than cases");
        char *nl = memchr(line, '\n', (size_t)(oend - line));
        if (!nl) nl = oend;
        int32_t want[1024];
        size_t nw = 0;
        for (char *q = line; q < nl;) {
            char *e;
            long v = strtol(q, &e, 10);
            if (e == q) break;
            want[nw++] = (int32_t)v;
            q = e;
        }
        long n = encode(p, tok, inp + pos, end - pos, 0, ids, 4096);
        int ok = n == (long)nw && (!nw || !memcmp(ids, want, nw * sizeof *ids));
        if (!ok) {
            failed++;
            fprintf(stderr, "    case %zu \"%.*s\": got", cases,
                    (int)(end - pos > 40 ? 40 : end - pos), inp + pos);
            for (long i = 0; i < n && i < 24; i++) fprintf(stderr, " %d", ids[i]);
            fprintf(stderr, "\n      want");
            for (size_t i = 0; i < nw && i < 24; i++)
                fprintf(stderr, " %d", want[i]);
            fprintf(stderr, "\n");
        }
        cases++;
        line = nl < oend ? nl + 1 : oend;
        if (!next) break;
        pos = end + sl;
    }
    fprintf(stderr, "    %zu llama-spm vocabulary cases, %zu failed\n", cases,
            failed);
    CHECK(cases == 46);
    CHECK(failed == 0);

    /* BOS, the buffer contract, pieces */
    long n = encode(p, tok, "Hello world", 11, 1, ids, 16);
    CHECK(n == 3 && ids[0] == 1 && ids[1] == 15043 && ids[2] == 3186);
    size_t cnt = 0;
    CHECK(p->tokenizer.encode(tok, "Hello world", 11, 1, ids, 1, &cnt) ==
              CRUCIBLE_E_LIMIT &&
          cnt == 3 && ids[0] == 1);
    CHECK(encode(p, tok, "", 0, 1, ids, 16) == 1 && ids[0] == 1);
    CHECK(encode(p, tok, "", 0, 0, ids, 16) == 0);
    char pc[64];
    size_t pl;
    CHECK(p->tokenizer.piece(tok, 15043, pc, sizeof pc, &pl) == 0 && pl == 6 &&
          !memcmp(pc, " Hello", 6));
    CHECK(p->tokenizer.piece(tok, 13, pc, sizeof pc, &pl) == 0 && pl == 1 &&
          pc[0] == '\n');
    CHECK(p->tokenizer.piece(tok, 1, pc, sizeof pc, &pl) == 0 && pl == 0);
    CHECK(p->tokenizer.piece(tok, 15043, pc, 2, &pl) == CRUCIBLE_E_LIMIT &&
          pl == 6);
    CHECK(p->tokenizer.piece(tok, 32000, pc, sizeof pc, &pl) ==
          CRUCIBLE_E_NOTFOUND);
    /* the pieces of an encoding spell the text (with the added space) */
    static const char txt[] = "Hello, y'all! \xc3\x84pfel \xf0\x9f\xa6\x99\t";
    n = encode(p, tok, txt, sizeof txt - 1, 0, ids, 4096);
    CHECK(n > 0);
    char joined[256];
    size_t jl = 0;
    for (long i = 0; i < n; i++) {
        CHECK(p->tokenizer.piece(tok, ids[i], joined + jl, sizeof joined - jl,
                                 &pl) == 0);
        jl += pl;
    }
    CHECK(jl == sizeof txt && joined[0] == ' ' &&
          !memcmp(joined + 1, txt, sizeof txt - 1));
    /* the same round trip for seeded random bytes, invalid UTF-8 included
     * (byte fallback covers every byte). 0xE2 is left out of the text, so
     * every U+2581 in the output is an escaped space: a truncated UTF-8
     * lead byte before a space swallows part of the escaped space, which
     * then comes back as byte tokens (as in llama.cpp), hence the
     * normalisation below. */
    uint64_t seed = 0x13198a2e03707344ull;
    for (int it = 0; it < 300; it++) {
        char rnd[64];
        size_t rl = (size_t)(gt_xorshift(&seed) % sizeof rnd);
        for (size_t i = 0; i < rl; i++) {
            uint8_t ch = (uint8_t)gt_xorshift(&seed);
            if (it % 2) ch = (uint8_t)(0x20 + ch % 0x60); /* mostly ASCII */
            rnd[i] = (char)(ch == 0xe2 ? 'x' : ch);
        }
        n = encode(p, tok, rnd, rl, 0, ids, 4096);
        CHECK(n >= 0);
        jl = 0;
        for (long i = 0; i < n; i++) {
            CHECK(jl < sizeof joined);
            CHECK(p->tokenizer.piece(tok, ids[i], joined + jl,
                                     sizeof joined - jl, &pl) == 0);
            jl += pl;
        }
        size_t w = 0;
        for (size_t r = 0; r < jl;) {
            if (r + 3 <= jl && !memcmp(joined + r, "\xe2\x96\x81", 3)) {
                joined[w++] = ' ';
                r += 3;
            } else {
                joined[w++] = joined[r++];
            }
        }
        jl = w;
        CHECK_MSG(rl == 0 ? jl == 0
                          : jl == rl + 1 && joined[0] == ' ' &&
                                !memcmp(joined + 1, rnd, rl),
                  "random text %d does not round-trip", it);
    }
    p->tokenizer.close(tok);
    free(ids);
    free(inp);
    free(outp);
    /* stories260K carries a 512-token llama vocabulary */
    CHECK(p->tokenizer.open(p->state, GG_STORIES, &tok) == 0);
    CHECK(p->tokenizer.n_vocab(tok) == 512);
    p->tokenizer.close(tok);
    /* no vocabulary: NOTFOUND; not GGUF at all: NOTFOUND */
    cr_host_set_verbosity(-2);
    CHECK(p->tokenizer.open(p->state, GG_MODELS "/edge-cases/gguf-v2-f32.gguf",
                            &tok) == CRUCIBLE_E_NOTFOUND);
    CHECK(p->tokenizer.open(p->state, CR_SOURCE_DIR "/README.md", &tok) ==
          CRUCIBLE_E_NOTFOUND);
    cr_host_set_verbosity(0);
    return TEST_PASS;
}

/* A small crafted vocabulary: merges by score with leftmost ties, byte
 * fallback, the unknown token, user-defined tokens, add_space_prefix. */
static void vocab_file(gbuf *b, int space_prefix, const char *model)
{
    static const char *const toks[] = {
        "<unk>", "<s>", "</s>", "<0x21>", "\xe2\x96\x81", "a", "b", "ab",
        "\xe2\x96\x81" "a", "<|u|>", "ba"};
    static const float scores[] = {0, 0, 0, 0, -5, -5, -5, -1, -2, 0, -1};
    static const int32_t types[] = {2, 3, 3, 6, 1, 1, 1, 1, 1, 4, 1};
    const uint32_t n = 11;
    gb_header(b, 3, 0, space_prefix < 0 ? 5 : 6);
    gb_kv_str(b, "tokenizer.ggml.model", model);
    gb_str(b, "tokenizer.ggml.tokens");
    gb_u32(b, GGUF_T_ARRAY);
    gb_u32(b, GGUF_T_STRING);
    gb_u64(b, n);
    for (uint32_t i = 0; i < n; i++) gb_str(b, toks[i]);
    gb_str(b, "tokenizer.ggml.scores");
    gb_u32(b, GGUF_T_ARRAY);
    gb_u32(b, GGUF_T_F32);
    gb_u64(b, n);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &scores[i], 4);
        gb_u32(b, u);
    }
    gb_str(b, "tokenizer.ggml.token_type");
    gb_u32(b, GGUF_T_ARRAY);
    gb_u32(b, GGUF_T_I32);
    gb_u64(b, n);
    for (uint32_t i = 0; i < n; i++) gb_u32(b, (uint32_t)types[i]);
    gb_kv_u32(b, "tokenizer.ggml.bos_token_id", 1);
    if (space_prefix >= 0) {
        gb_str(b, "tokenizer.ggml.add_space_prefix");
        gb_u32(b, GGUF_T_BOOL);
        gb_u8(b, (uint8_t)space_prefix);
    }
}

TEST(test_gguf_tokenizer_crafted)
{
    NEED_PLUGIN();
    cr_plugin *p = gguf_plugin();
    const char *d = test_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/vocab.gguf", d);
    gbuf b = {0};
    vocab_file(&b, -1, "llama");
    CHECK(test_write_file(path, b.p, b.n) == 0);
    void *tok = NULL;
    CHECK_MSG(p->tokenizer.open(p->state, path, &tok) == 0, "%s",
              cr_host_last_error());
    CHECK(p->tokenizer.bos(tok) == 1 && p->tokenizer.eos(tok) == 2);
    static const struct {
        const char *text;
        int32_t ids[8];
        long n;
    } cases[] = {
        {"ab!", {4, 7, 3}, 3},           /* ab (-1) beats ▁a (-2); ! byte */
        {"bab", {4, 10, 6}, 3},          /* ba and ab tie: leftmost wins */
        {"a", {8}, 1},                   /* ▁a */
        {"a<|u|>a", {8, 9, 8}, 3},       /* user token; space after it */
        {"<|u|>", {9}, 1},
        {" a", {4, 8}, 2},
        {"\xc3\xa9", {4, 0, 0}, 3},      /* no byte tokens: unknown */
        {"c", {4, 0}, 2},
    };
    int32_t ids[32];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long n = encode(p, tok, cases[i].text, strlen(cases[i].text), 0, ids,
                        32);
        int ok = n == cases[i].n &&
                 !memcmp(ids, cases[i].ids, (size_t)n * sizeof *ids);
        if (!ok) {
            fprintf(stderr, "    \"%s\": got", cases[i].text);
            for (long k = 0; k < n; k++) fprintf(stderr, " %d", ids[k]);
            fprintf(stderr, "\n");
        }
        CHECK(ok);
    }
    CHECK(encode(p, tok, "a", 1, 1, ids, 32) == 2 && ids[0] == 1);
    char pc[16];
    size_t pl;
    CHECK(p->tokenizer.piece(tok, 3, pc, sizeof pc, &pl) == 0 && pl == 1 &&
          pc[0] == '!');
    CHECK(p->tokenizer.piece(tok, 8, pc, sizeof pc, &pl) == 0 && pl == 2 &&
          !memcmp(pc, " a", 2));
    p->tokenizer.close(tok);
    /* add_space_prefix = false */
    vocab_file(&b, 0, "llama");
    CHECK(test_write_file(path, b.p, b.n) == 0);
    CHECK(p->tokenizer.open(p->state, path, &tok) == 0);
    CHECK(encode(p, tok, "ab", 2, 0, ids, 32) == 1 && ids[0] == 7);
    p->tokenizer.close(tok);
    /* another tokenizer model: refused, named */
    vocab_file(&b, 1, "gpt2");
    CHECK(test_write_file(path, b.p, b.n) == 0);
    cr_host_set_verbosity(-2);
    CHECK(p->tokenizer.open(p->state, path, &tok) == CRUCIBLE_E_UNSUPPORTED);
    cr_host_set_verbosity(0);
    CHECK(test_contains(cr_host_last_error(), "\"gpt2\""));
    free(b.p);
    return TEST_PASS;
}

/* ---- crucible tokenize -----------------------------------------------------------------*/
TEST(test_gguf_tokenize_cli)
{
    NEED_MODELS();
    NEED_PLUGIN();
    char *out = NULL;
    int rc = test_sh(&out, "'%s' tokenize '%s' 'Hello world'", BIN, GG_VOCAB);
    CHECK_MSG(rc == 0 && !strcmp(out, "1 15043 3186\n"), "exit %d: %s", rc,
              out);
    free(out);
    rc = test_sh(&out, "'%s' tokenize --no-bos '%s' ' Hello World!'", BIN,
                 GG_VOCAB);
    CHECK_MSG(rc == 0 && !strcmp(out, "29871 15043 2787 29991\n"),
              "exit %d: %s", rc, out);
    free(out);
    rc = test_sh(&out, "'%s' tokenize '%s' ' this is \xf0\x9f\xa6\x99.cpp' --json",
                 BIN, GG_VOCAB);
    CHECK_MSG(rc == 0 &&
                  test_contains(out, "{\"ids\":[1,29871,445,338,29871,243,162,"
                                     "169,156,29889,8223],\"pieces\":[\"\","
                                     "\" \",\" this\",\" is\",\" \",\"<0xF0>\""),
              "exit %d: %s", rc, out);
    free(out);
    rc = test_sh(&out, "printf 'a\\nb' | '%s' tokenize --no-bos '%s' -", BIN,
                 GG_VOCAB);
    CHECK_MSG(rc == 0 && !strcmp(out, "263 13 29890\n"), "exit %d: %s", rc,
              out);
    free(out);
    rc = test_sh(&out, "'%s' tokenize --no-bos '%s' -- '-5'", BIN, GG_VOCAB);
    CHECK_MSG(rc == 0 && out[0] != 0 && !test_contains(out, "usage"),
              "exit %d: %s", rc, out);
    free(out);
    /* errors */
    rc = test_sh(&out, "'%s' tokenize '%s' x", BIN,
                 GG_MODELS "/edge-cases/gguf-v2-f32.gguf");
    CHECK_MSG(rc == 1 && test_contains(out, "no loaded tokenizer reads"),
              "exit %d: %s", rc, out);
    free(out);
    rc = test_sh(&out, "'%s' tokenize '%s' x", BIN,
                 GG_MODELS "/edge-cases/gguf-unknown-type.gguf");
    CHECK_MSG(rc == 1 && test_contains(out, "unknown ggml type 43"),
              "exit %d: %s", rc, out);
    free(out);
    rc = test_sh(&out, "'%s' tokenize /nonexistent.gguf x", BIN);
    CHECK_MSG(rc == 1 && test_contains(out, "no such file"), "exit %d: %s", rc,
              out);
    free(out);
    rc = test_sh(&out, "'%s' tokenize '%s'", BIN, GG_VOCAB);
    CHECK_MSG(rc == 2 && test_contains(out, "missing TEXT"), "exit %d: %s", rc,
              out);
    free(out);
    rc = test_sh(&out, "'%s' tokenize --bogus", BIN);
    CHECK_MSG(rc == 2 && test_contains(out, "unknown option"), "exit %d: %s",
              rc, out);
    free(out);
    rc = test_sh(&out, "'%s' tokenize --help", BIN);
    CHECK_MSG(rc == 0 && test_contains(out, "usage: crucible tokenize"),
              "exit %d: %s", rc, out);
    free(out);
    return TEST_PASS;
}

/* ---- the llama template --------------------------------------------------------------*/
static void gb_kv_f32(gbuf *b, const char *k, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    gb_str(b, k);
    gb_u32(b, GGUF_T_F32);
    gb_u32(b, u);
}

enum {
    TL_TIED = 1,       /* no output.weight */
    TL_Q8 = 2,         /* ffn_up in Q8_0 */
    TL_BAD_SHAPE = 4,  /* attn_k with the wrong row count */
    TL_MISSING = 8,    /* no blk.1.ffn_down */
    TL_EXTRA = 16,     /* a tensor the template does not use */
    TL_MOE = 32,       /* llama.expert_count */
    TL_YARN = 64,      /* rope.scaling.type yarn */
    TL_NO_EPS = 128    /* no layer_norm_rms_epsilon */
};

/* A tiny llama: E 32, 4 heads over 2 kv heads (head 8), FFN 40, 2 layers,
 * vocabulary 10 (no tokenizer), trained context 16. */
static void tiny_llama(gbuf *b, unsigned flags)
{
    enum { E = 32, F = 40, V = 10, KV = 16, L = 2 };
    struct {
        char name[48];
        uint64_t ne0, ne1;
        uint32_t type;
    } t[32];
    size_t nt = 0;
#define ADD(nm, a, bb, ty)                                                    \
    do {                                                                      \
        snprintf(t[nt].name, sizeof t[nt].name, "%s", nm);                    \
        t[nt].ne0 = (a);                                                      \
        t[nt].ne1 = (bb);                                                     \
        t[nt].type = (ty);                                                    \
        nt++;                                                                 \
    } while (0)
    ADD("token_embd.weight", E, V, GGML_T_F32);
    ADD("output_norm.weight", E, 0, GGML_T_F32);
    if (!(flags & TL_TIED)) ADD("output.weight", E, V, GGML_T_F32);
    for (int l = 0; l < L; l++) {
        char nm[48];
#define LADD(s, a, bb, ty)                                                    \
    do {                                                                      \
        snprintf(nm, sizeof nm, "blk.%d." s ".weight", l);                    \
        ADD(nm, a, bb, ty);                                                   \
    } while (0)
        LADD("attn_norm", E, 0, GGML_T_F32);
        LADD("attn_q", E, E, GGML_T_F32);
        LADD("attn_k", E, (flags & TL_BAD_SHAPE) ? 24 : KV, GGML_T_F32);
        LADD("attn_v", E, KV, GGML_T_F32);
        LADD("attn_output", E, E, GGML_T_F32);
        LADD("ffn_norm", E, 0, GGML_T_F32);
        LADD("ffn_gate", E, F, GGML_T_F32);
        LADD("ffn_up", E, F, (flags & TL_Q8) ? GGML_T_Q8_0 : GGML_T_F32);
        if (!(l == 1 && (flags & TL_MISSING))) LADD("ffn_down", F, E, GGML_T_F32);
#undef LADD
    }
    if (flags & TL_EXTRA) ADD("rope_freqs.weight", 4, 0, GGML_T_F32);
#undef ADD
    uint64_t nkv = 10 + !!(flags & TL_MOE) + !!(flags & TL_YARN) -
                   !!(flags & TL_NO_EPS);
    gb_header(b, 3, nt, nkv);
    gb_kv_str(b, "general.architecture", "llama");
    gb_kv_u32(b, "llama.context_length", 16);
    gb_kv_u32(b, "llama.embedding_length", E);
    gb_kv_u32(b, "llama.block_count", L);
    gb_kv_u32(b, "llama.feed_forward_length", F);
    gb_kv_u32(b, "llama.attention.head_count", 4);
    gb_kv_u32(b, "llama.attention.head_count_kv", 2);
    if (!(flags & TL_NO_EPS))
        gb_kv_f32(b, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    gb_kv_f32(b, "llama.rope.freq_base", 10000.0f);
    gb_kv_u32(b, "llama.rope.dimension_count", 8);
    if (flags & TL_MOE) gb_kv_u32(b, "llama.expert_count", 8);
    if (flags & TL_YARN) gb_kv_str(b, "llama.rope.scaling.type", "yarn");
    uint64_t off = 0, offs[32];
    for (size_t i = 0; i < nt; i++) {
        uint64_t n = t[i].ne0 * (t[i].ne1 ? t[i].ne1 : 1);
        uint64_t bytes = t[i].type == GGML_T_Q8_0 ? n / 32 * 34 : n * 4;
        offs[i] = off;
        uint64_t dims[2] = {t[i].ne0, t[i].ne1};
        gb_tensor(b, t[i].name, t[i].ne1 ? 2 : 1, dims, t[i].type, off);
        off += (bytes + 31) / 32 * 32;
    }
    gb_pad(b, 32);
    size_t base = b->n;
    for (size_t i = 0; i < nt; i++) {
        while (b->n < base + offs[i]) gb_u8(b, 0);
        uint64_t n = t[i].ne0 * (t[i].ne1 ? t[i].ne1 : 1);
        if (t[i].type == GGML_T_Q8_0) {
            for (uint64_t blk = 0; blk < n / 32; blk++) {
                gb_u8(b, 0x00); /* f16 0x2000 = 2^-7 */
                gb_u8(b, 0x20);
                for (int j = 0; j < 32; j++)
                    gb_u8(b, (uint8_t)(int8_t)((int)((blk * 7 + (uint64_t)j * 5) % 31) - 15));
            }
            continue;
        }
        int norm = strstr(t[i].name, "norm") != NULL;
        for (uint64_t j = 0; j < n; j++) {
            float v = norm ? 1.0f + 0.01f * (float)(j % 5)
                           : 0.2f * sinf(0.37f * (float)j + (float)i);
            uint32_t u;
            memcpy(&u, &v, 4);
            gb_u32(b, u);
        }
    }
}

static const cr_tensor *gtensor(const cr_graph *g, const char *name)
{
    int32_t i = ir_find_tensor(g, name);
    return i >= 0 ? &g->tensors[i] : NULL;
}

/* One decode step of a llama graph: token at pos with all-zero caches.
 * Returns the interp status; outs gets g->n_outputs arrays. */
static int llama_step(const cr_graph *g, int32_t token, int32_t pos,
                      cr_array *outs, char *err, size_t errlen)
{
    cr_array *in = calloc(g->n_inputs, sizeof *in);
    if (!in) return CRUCIBLE_E_NOMEM;
    for (size_t i = 0; i < g->n_inputs; i++) {
        const cr_tensor *t = &g->tensors[g->inputs[i]];
        in[i].dtype = t->dtype;
        in[i].rank = t->rank;
        memcpy(in[i].dims, t->dims, sizeof in[i].dims);
        in[i].bytes = (size_t)ir_numel(t) * 4;
        in[i].data = calloc(1, in[i].bytes);
        if (!strcmp(t->name, "token")) memcpy(in[i].data, &token, 4);
        if (!strcmp(t->name, "pos")) memcpy(in[i].data, &pos, 4);
    }
    int rc = interp_run(g, in, g->n_inputs, outs, err, errlen);
    for (size_t i = 0; i < g->n_inputs; i++) free(in[i].data);
    free(in);
    return rc;
}

static size_t count_op(const cr_graph *g, int32_t op)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n_nodes; i++) n += g->nodes[i].op == op;
    return n;
}

TEST(test_gguf_llama_graph)
{
    NEED_MODELS();
    NEED_PLUGIN();
    char err[1024];
    int st;
    cr_graph *g = gt_load_graph(GG_STORIES, &st, err, sizeof err);
    CHECK_MSG(g != NULL, "%s", err);
    /* per layer: 2 rms_norm, 7 dense, 2 rope, 2 kv_write, 1 attention,
     * 1 silu, 1 mul, 2 add, 4 reshape; plus gather, final norm, head */
    CHECK(count_op(g, CRUCIBLE_OP_GATHER) == 1);
    CHECK(count_op(g, CRUCIBLE_OP_RMS_NORM) == 11);
    CHECK(count_op(g, CRUCIBLE_OP_DENSE) == 36);
    CHECK(count_op(g, CRUCIBLE_OP_ROPE) == 10);
    CHECK(count_op(g, CRUCIBLE_OP_KV_WRITE) == 10);
    CHECK(count_op(g, CRUCIBLE_OP_ATTENTION) == 5);
    CHECK(count_op(g, CRUCIBLE_OP_SILU) == 5);
    CHECK(count_op(g, CRUCIBLE_OP_UNSUPPORTED) == 0);
    /* the interface */
    CHECK(!strcmp(g->tensors[g->inputs[0]].name, "token") &&
          !strcmp(g->tensors[g->inputs[1]].name, "pos") &&
          !strcmp(g->tensors[g->inputs[2]].name, "cache.k.0") &&
          !strcmp(g->tensors[g->inputs[3]].name, "cache.v.0"));
    CHECK(!strcmp(g->tensors[g->outputs[0]].name, "logits") &&
          !strcmp(g->tensors[g->outputs[1]].name, "cache.k.0.next"));
    const cr_tensor *kc = gtensor(g, "cache.k.4");
    CHECK(kc && kc->rank == 3 && kc->dims[0] == 256 && kc->dims[1] == 4 &&
          kc->dims[2] == 8);
    /* weights: GGUF ne [in, out] is the IR's dense [out, in] */
    const cr_tensor *wk = gtensor(g, "blk.0.attn_k.weight");
    CHECK(wk && wk->rank == 2 && wk->dims[0] == 32 && wk->dims[1] == 64 &&
          (wk->flags & CRUCIBLE_TENSOR_CONST));
    const cr_tensor *ff = gtensor(g, "blk.0.ffn_down.weight");
    CHECK(ff && ff->dims[0] == 64 && ff->dims[1] == 172);
    /* rope attributes from the file */
    int seen = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const cr_node *n = &g->nodes[i];
        if (n->op != CRUCIBLE_OP_ROPE) continue;
        seen++;
        CHECK(ir_attr_i(n, "n_rot", 0) == 8 &&
              ir_attr_f(n, "freq_base", 0) == 10000.0 &&
              !strcmp(ir_attr_s(n, "mode", ""), "normal"));
    }
    CHECK(seen == 10);
    /* cost figures (docs/gguf.md): per layer 64*64*2 + 64*4*16 + 3*64*172
     * = 45312 MACs, x5 + the head 512*64 */
    static const char *const want[][2] = {
        {"cost.parameters", "292800"},
        {"cost.macs_per_token", "259328 + 640 per attended position"},
        {"context_used", "256"}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *v = gmeta(g, want[i][0]);
        CHECK_MSG(v && !strcmp(v, want[i][1]), "meta %s = %s, want %s",
                  want[i][0], v ? v : "(absent)", want[i][1]);
    }
    CHECK(test_contains(gmeta(g, "cost.kv_cache_bytes_per_token"), "1280 ("));
    CHECK(test_contains(gmeta(g, "cost.kv_cache_bytes"), "327680 ("));
    CHECK(test_contains(gmeta(g, "cost.weight_bytes.F32"), "1171200 ("));
    /* one step: BOS at position 0 */
    cr_array *outs = calloc(g->n_outputs, sizeof *outs);
    CHECK(outs);
    int rc = llama_step(g, 1, 0, outs, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    const float *lg = outs[0].data;
    int finite = 1;
    for (int i = 0; i < 512; i++) finite &= isfinite(lg[i]) != 0;
    CHECK(finite);
    /* the cache rows: position 0 written, the others still zero */
    const float *k0 = outs[1].data;
    float r0 = 0, rest = 0;
    for (int i = 0; i < 32; i++) r0 += fabsf(k0[i]);
    for (int i = 32; i < 256 * 32; i++) rest += fabsf(k0[i]);
    CHECK(r0 > 0 && rest == 0);
    for (size_t i = 0; i < g->n_outputs; i++) tio_free(&outs[i]);
    free(outs);
    ir_free(g);
    /* a smaller context through the environment */
    setenv("CRUCIBLE_GGUF_CTX", "8", 1);
    g = gt_load_graph(GG_STORIES, &st, err, sizeof err);
    unsetenv("CRUCIBLE_GGUF_CTX");
    CHECK_MSG(g != NULL, "%s", err);
    CHECK(gtensor(g, "cache.v.2")->dims[0] == 8);
    ir_free(g);
    return TEST_PASS;
}

/* The tiny crafted llama: variants that build, and errors. */
TEST(test_gguf_llama_crafted)
{
    NEED_PLUGIN();
    const char *d = test_tmpdir();
    char path[4096], err[1024];
    gbuf b = {0};
    int st;
    static const unsigned good[] = {0, TL_TIED, TL_Q8};
    for (size_t k = 0; k < sizeof good / sizeof good[0]; k++) {
        snprintf(path, sizeof path, "%s/tiny%u.gguf", d, good[k]);
        tiny_llama(&b, good[k]);
        CHECK(test_write_file(path, b.p, b.n) == 0);
        cr_graph *g = gt_load_graph(path, &st, err, sizeof err);
        CHECK_MSG(g != NULL, "variant %u: %s", good[k], err);
        CHECK(gtensor(g, "cache.k.1")->dims[0] == 16); /* min(16, 256) */
        CHECK(gtensor(g, "logits")->dims[1] == 10);
        CHECK((ir_find_tensor(g, "output.weight") >= 0) == !(good[k] & TL_TIED));
        cr_array outs[5];
        int rc = llama_step(g, 3, 0, outs, err, sizeof err);
        CHECK_MSG(rc == 0, "variant %u: %s", good[k], err);
        for (int i = 0; i < 10; i++) CHECK(isfinite(((float *)outs[0].data)[i]));
        for (int i = 0; i < 5; i++) tio_free(&outs[i]);
        ir_free(g);
    }
    static const struct {
        unsigned flags;
        const char *msg;
    } bad[] = {
        {TL_BAD_SHAPE, "tensor blk.0.attn_k.weight has ne [32, 24, 1, 1]; the "
                       "hyper-parameters make it [32, 16]"},
        {TL_MISSING, "tensor blk.1.ffn_down.weight is missing"},
        {TL_EXTRA, "tensor rope_freqs.weight is not part of the llama template"},
        {TL_MOE, "mixture-of-experts"},
        {TL_YARN, "only none and linear rope scaling"},
        {TL_NO_EPS, "needs llama.attention.layer_norm_rms_epsilon"},
    };
    cr_host_set_verbosity(-2);
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        snprintf(path, sizeof path, "%s/bad%u.gguf", d, bad[k].flags);
        tiny_llama(&b, bad[k].flags);
        CHECK(test_write_file(path, b.p, b.n) == 0);
        cr_graph *g = gt_load_graph(path, &st, err, sizeof err);
        CHECK_MSG(!g && st == CRUCIBLE_E_FORMAT && test_contains(err, bad[k].msg),
                  "variant %u: status %d, %s", bad[k].flags, st, err);
    }
    /* a bad context setting */
    snprintf(path, sizeof path, "%s/tiny0.gguf", d);
    setenv("CRUCIBLE_GGUF_CTX", "12x", 1);
    cr_graph *g = gt_load_graph(path, &st, err, sizeof err);
    unsetenv("CRUCIBLE_GGUF_CTX");
    CHECK_MSG(!g && test_contains(err, "CRUCIBLE_GGUF_CTX=12x"), "%s", err);
    /* beyond the weight limit: an "unsupported" body with the numbers */
    setenv("CRUCIBLE_GGUF_MAX_WEIGHT_BYTES", "1000", 1);
    g = gt_load_graph(path, &st, err, sizeof err);
    unsetenv("CRUCIBLE_GGUF_MAX_WEIGHT_BYTES");
    CHECK_MSG(g != NULL, "%s", err);
    CHECK(count_op(g, CRUCIBLE_OP_UNSUPPORTED) == 1 &&
          test_contains(ir_attr_s(&g->nodes[0], "reason", ""),
                        "the weights as IR constants would take"));
    CHECK(gmeta(g, "cost.parameters") != NULL);
    ir_free(g);
    cr_host_set_verbosity(0);
    free(b.p);
    /* the CLI names the problem */
    char *out = NULL;
    snprintf(path, sizeof path, "%s/bad%u.gguf", d, (unsigned)TL_MISSING);
    int rc = test_sh(&out, "'%s' ir '%s'", BIN, path);
    CHECK_MSG(rc == 1 && test_contains(out, "blk.1.ffn_down.weight is missing"),
              "exit %d: %s", rc, out);
    free(out);

    /* byte-flipped stories260K metadata through the template: errors or a
     * graph, never a crash */
    if (!have_models()) return TEST_PASS;
    size_t n;
    uint8_t *orig = test_read_file(GG_STORIES, &n);
    uint8_t *buf = malloc(n);
    CHECK(orig && buf);
    uint64_t seed = 0x13198a2e03707344ull;
    int built = 0, refused = 0;
    snprintf(path, sizeof path, "%s/flip.gguf", d);
    cr_host_set_verbosity(-2);
    for (int it = 0; it < 120; it++) {
        memcpy(buf, orig, n);
        int flips = 1 + (int)(gt_xorshift(&seed) % 3);
        for (int fl = 0; fl < flips; fl++) {
            /* the metadata and tensor infos: the first 8 KiB minus the
             * vocabulary's middle */
            size_t at = (size_t)(gt_xorshift(&seed) % 8192);
            if (at > 600 && at < 6000) at = 6000 + at % 2000;
            buf[at] = (uint8_t)gt_xorshift(&seed);
        }
        CHECK(test_write_file(path, buf, n) == 0);
        g = gt_load_graph(path, &st, err, sizeof err);
        if (g) built++;
        else refused++;
        ir_free(g);
    }
    cr_host_set_verbosity(0);
    free(buf);
    free(orig);
    fprintf(stderr, "    flipped stories260K: %d graphs, %d refused\n", built,
            refused);
    return TEST_PASS;
}

static long long meta_num(const cr_graph *g, const char *key)
{
    const char *v = gmeta(g, key);
    return v ? strtoll(v, NULL, 10) : -1;
}

/* Cost figures from the hyper-parameters alone (files without tensors). */
TEST(test_gguf_llama_cost)
{
    NEED_PLUGIN();
    const char *d = test_tmpdir();
    char path[4096], err[1024];
    int st;
    /* TinyLlama-1.1B: E 2048, 22 layers, FFN 5632, 32 heads over 4,
     * vocabulary 32000 */
    gbuf b = {0};
    gb_header(&b, 3, 0, 10);
    gb_kv_str(&b, "general.architecture", "llama");
    gb_kv_u32(&b, "llama.context_length", 2048);
    gb_kv_u32(&b, "llama.embedding_length", 2048);
    gb_kv_u32(&b, "llama.block_count", 22);
    gb_kv_u32(&b, "llama.feed_forward_length", 5632);
    gb_kv_u32(&b, "llama.attention.head_count", 32);
    gb_kv_u32(&b, "llama.attention.head_count_kv", 4);
    gb_kv_f32(&b, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    gb_kv_u32(&b, "llama.rope.dimension_count", 64);
    gb_kv_u32(&b, "llama.vocab_size", 32000);
    snprintf(path, sizeof path, "%s/tinyllama-hparams.gguf", d);
    CHECK(test_write_file(path, b.p, b.n) == 0);
    free(b.p);
    cr_graph *g = gt_load_graph(path, &st, err, sizeof err);
    CHECK_MSG(g != NULL, "%s", err);
    CHECK(count_op(g, CRUCIBLE_OP_UNSUPPORTED) == 1 &&
          test_contains(ir_attr_s(&g->nodes[0], "reason", ""),
                        "holds no tensors"));
    /* 32000*2048*2 + 22*(2048*2048*2 + 2048*256*2 + 3*2048*5632 + 2*2048)
     * + 2048 */
    CHECK(meta_num(g, "cost.parameters") == 1100048384LL);
    long long q4 = meta_num(g, "cost.weight_bytes.Q4_0");
    fprintf(stderr, "    TinyLlama-1.1B at Q4_0: %s; KV cache %s per token\n",
            gmeta(g, "cost.weight_bytes.Q4_0"),
            gmeta(g, "cost.kv_cache_bytes_per_token"));
    CHECK(q4 > 615000000LL && q4 < 625000000LL); /* "about 0.62 GB" */
    CHECK(test_contains(gmeta(g, "cost.weight_bytes.Q4_0"), "(0.62 GB)"));
    CHECK(meta_num(g, "cost.weight_bytes.F16") == 2 * 1100048384LL - 22 * 4096 * 2 - 2048 * 2 + 22 * 4096 * 4 + 2048 * 4);
    /* 22 layers * 4 kv heads * (64 + 64) * 4 bytes */
    CHECK(meta_num(g, "cost.kv_cache_bytes_per_token") == 45056);
    CHECK(meta_num(g, "cost.macs_per_token") ==
          1100048384LL - 32000LL * 2048 - 22 * 4096 - 2048);
    CHECK(test_contains(gmeta(g, "cost.macs_per_token"),
                        "+ 90112 per attended position"));
    ir_free(g);
    /* Llama-2-7B (the llama-spm vocabulary file's hyper-parameters):
     * its well-known 6,738,415,616 parameters */
    if (have_models()) {
        g = gt_load_graph(GG_VOCAB, &st, err, sizeof err);
        CHECK_MSG(g != NULL, "%s", err);
        CHECK(meta_num(g, "cost.parameters") == 6738415616LL);
        CHECK(meta_num(g, "cost.kv_cache_bytes_per_token") == 1048576);
        ir_free(g);
    }
    char *out = NULL;
    int rc = test_sh(&out, "'%s' ir '%s'", BIN, path);
    CHECK_MSG(rc == 1 && test_contains(out, "meta cost.weight_bytes.Q4_0 \"") &&
                  test_contains(out, "holds no tensors"),
              "exit %d: %s", rc, out);
    free(out);
    return TEST_PASS;
}

/* Reads a whole text file (NUL-terminated) or NULL. */
static char *slurp(const char *path)
{
    size_t n;
    uint8_t *b = test_read_file(path, &n);
    if (!b) return NULL;
    char *s = realloc(b, n + 1);
    if (!s) {
        free(b);
        return NULL;
    }
    s[n] = 0;
    return s;
}

TEST(test_gguf_llama_generate)
{
    NEED_MODELS();
    NEED_PLUGIN();
    const char *d = test_tmpdir();
    char *out = NULL;
    struct timespec a, z;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int rc = test_sh(&out, "'%s' generate '%s' --prompt 'Once upon a time' "
                           "2>'%s/err.txt'",
                     BIN, GG_STORIES, d);
    clock_gettime(CLOCK_MONOTONIC, &z);
    double ms = (double)(z.tv_sec - a.tv_sec) * 1e3 +
                (double)(z.tv_nsec - a.tv_nsec) / 1e6;
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    fprintf(stderr, "    greedy, 64 tokens (%.0f ms including start-up):\n    %s",
            ms, out);
    char errp[4200];
    snprintf(errp, sizeof errp, "%s/err.txt", d);
    char *timing = slurp(errp);
    fprintf(stderr, "    %s", timing ? timing : "(no timing line)\n");
    CHECK(timing && test_contains(timing, "64 tokens generated"));
    free(timing);
    /* fluent children's-story English: the prompt, then words */
    CHECK(!strncmp(out, "Once upon a time", 16));
    size_t words = 0, letters = 0, len = strlen(out);
    for (size_t i = 0; i < len; i++) {
        if (out[i] == ' ') words++;
        if ((out[i] >= 'a' && out[i] <= 'z') || (out[i] >= 'A' && out[i] <= 'Z'))
            letters++;
    }
    CHECK(words >= 30 && letters * 10 >= len * 7);
    CHECK(test_contains(out, " was ") && test_contains(out, " the ") &&
          test_contains(out, "."));
    free(out);
    CHECK(ms < 5000);

    /* sampling: reproducible with a seed, different from greedy */
    char *s1 = NULL, *s2 = NULL;
    rc = test_sh(&s1, "'%s' -q generate '%s' --prompt 'Once upon a time' "
                      "--temp 0.8 --seed 7 -n 24",
                 BIN, GG_STORIES);
    CHECK_MSG(rc == 0, "%s", s1);
    rc = test_sh(&s2, "'%s' -q generate '%s' --prompt 'Once upon a time' "
                      "--temp 0.8 --seed 7 -n 24",
                 BIN, GG_STORIES);
    CHECK(rc == 0 && !strcmp(s1, s2));
    fprintf(stderr, "    sampled (temp 0.8, seed 7): %s", s1);
    free(s1);
    free(s2);
    /* JSON: ids, top logits, stop reason */
    char jp[4200];
    snprintf(jp, sizeof jp, "%s/g.json", d);
    rc = test_sh(&out, "'%s' -q generate '%s' --prompt 'Once upon a time' -n 5 "
                       "--json > '%s'",
                 BIN, GG_STORIES, jp);
    CHECK_MSG(rc == 0, "%s", out);
    free(out);
    char *js = slurp(jp);
    CHECK(js);
    char err[512];
    jv *root = jv_parse(js, strlen(js), err, sizeof err);
    CHECK_MSG(root, "%s: %s", err, js);
    CHECK(jv_len(jv_get(root, "prompt_ids")) == 5 &&
          jv_num(jv_at(jv_get(root, "prompt_ids"), 0), -1) == 1);
    CHECK(jv_len(jv_get(root, "ids")) == 5 &&
          jv_len(jv_get(root, "top_logits")) == 5);
    CHECK(!strcmp(jv_str(jv_get(root, "stop")), "length"));
    CHECK(!strncmp(jv_str(jv_get(root, "text")), "Once upon a time", 16));
    jv_free(root);
    free(js);
    /* the context runs out: --ctx 8 with a 5-token prompt */
    rc = test_sh(&out, "'%s' generate '%s' --prompt 'Once upon a time' "
                       "--ctx 8 --json",
                 BIN, GG_STORIES);
    CHECK_MSG(rc == 0 && test_contains(out, "\"stop\":\"context\"") &&
                  test_contains(out, "\"n_ctx\":8"),
              "exit %d: %s", rc, out);
    free(out);
    /* errors */
    rc = test_sh(&out, "'%s' generate '%s' --prompt 'Once upon a time, there "
                       "was a little girl' --ctx 4",
                 BIN, GG_STORIES);
    CHECK_MSG(rc == 1 && test_contains(out, "but the context holds 4"),
              "exit %d: %s", rc, out);
    free(out);
    rc = test_sh(&out, "'%s' generate '%s' --prompt hi", BIN, GG_VOCAB);
    CHECK_MSG(rc == 1 && test_contains(out, "holds no tensors"), "exit %d: %s",
              rc, out);
    free(out);
    rc = test_sh(&out, "'%s' generate '%s'", BIN,
                 GG_MODELS "/edge-cases/gguf-v2-f32.gguf");
    CHECK_MSG(rc == 1 && test_contains(out, "no loaded tokenizer reads"),
              "exit %d: %s", rc, out);
    free(out);
    rc = test_sh(&out, "'%s' generate", BIN);
    CHECK_MSG(rc == 2 && test_contains(out, "missing MODEL"), "exit %d: %s",
              rc, out);
    free(out);
    rc = test_sh(&out, "'%s' generate '%s' --temp -1", BIN, GG_STORIES);
    CHECK_MSG(rc == 2 && test_contains(out, "--temp"), "exit %d: %s", rc, out);
    free(out);
    rc = test_sh(&out, "'%s' generate --help", BIN);
    CHECK_MSG(rc == 0 && test_contains(out, "usage: crucible generate"),
              "exit %d: %s", rc, out);
    free(out);
    return TEST_PASS;
}

/* crucible generate on MODEL against tests/data/gguf/llama_ref.py:
 * identical greedy tokens and logits within 1e-4 over 32 steps. */
static int llama_ref_compare(const char *model, const char *d)
{
    char *out = NULL;
    int rc = test_sh(&out, "'%s' -q generate '%s' --prompt 'Once upon a time' "
                           "-n 32 --json --dump-logits '%s/c.npy' > '%s/c.json'",
                     BIN, model, d, d);
    CHECK_MSG(rc == 0, "exit %d: %s", rc, out);
    free(out);
    char p[4200], err[512];
    snprintf(p, sizeof p, "%s/c.json", d);
    char *js = slurp(p);
    CHECK(js);
    jv *cj = jv_parse(js, strlen(js), err, sizeof err);
    free(js);
    CHECK_MSG(cj, "%s", err);
    const jv *pids = jv_get(cj, "prompt_ids"), *cids = jv_get(cj, "ids");
    char ids[512] = "";
    for (size_t i = 0; i < jv_len(pids); i++)
        snprintf(ids + strlen(ids), sizeof ids - strlen(ids), "%s%d",
                 i ? "," : "", (int)jv_num(jv_at(pids, i), -1));
    struct timespec a, z;
    clock_gettime(CLOCK_MONOTONIC, &a);
    rc = test_sh(&out, "/usr/bin/python3 '%s/llama_ref.py' '%s' --ids %s -n 32 "
                       "--out-json '%s/r.json' --out-logits '%s/r.npy'",
                 GG_DATA, model, ids, d, d);
    clock_gettime(CLOCK_MONOTONIC, &z);
    CHECK_MSG(rc == 0, "reference failed (exit %d): %s", rc, out);
    free(out);
    snprintf(p, sizeof p, "%s/r.json", d);
    js = slurp(p);
    CHECK(js);
    jv *rj = jv_parse(js, strlen(js), err, sizeof err);
    free(js);
    CHECK_MSG(rj, "%s", err);
    const jv *rids = jv_get(rj, "ids");
    size_t n = jv_len(cids);
    CHECK_MSG(n == 32 && jv_len(rids) == n, "%zu vs %zu tokens", n,
              jv_len(rids));
    for (size_t i = 0; i < n; i++)
        CHECK_MSG(jv_num(jv_at(cids, i), -1) == jv_num(jv_at(rids, i), -2),
                  "step %zu: crucible %d, reference %d", i,
                  (int)jv_num(jv_at(cids, i), -1),
                  (int)jv_num(jv_at(rids, i), -2));
    cr_array cl, rl;
    snprintf(p, sizeof p, "%s/c.npy", d);
    CHECK_MSG(tio_load(p, &cl, err, sizeof err) == 0, "%s", err);
    snprintf(p, sizeof p, "%s/r.npy", d);
    CHECK_MSG(tio_load(p, &rl, err, sizeof err) == 0, "%s", err);
    CHECK(cl.dtype == CRUCIBLE_DT_F32 && rl.dtype == CRUCIBLE_DT_F32 &&
          cl.rank == 2 && rl.rank == 2 && cl.dims[0] == 32 &&
          rl.dims[0] == 32 && cl.dims[1] == 512 && rl.dims[1] == 512);
    double maxd = 0, maxv = 0;
    size_t at = 0;
    const float *x = cl.data, *y = rl.data;
    for (size_t i = 0; i < 32 * 512; i++) {
        double dd = fabs((double)x[i] - (double)y[i]);
        if (dd > maxd || dd != dd) {
            maxd = dd;
            at = i;
        }
        if (fabs((double)y[i]) > maxv) maxv = fabs((double)y[i]);
    }
    fprintf(stderr, "    32 greedy steps identical; max |logit difference| "
                    "%.3g (step %zu, max |logit| %.3g); reference %.0f ms\n",
            maxd, at / 512, maxv,
            (double)(z.tv_sec - a.tv_sec) * 1e3 +
                (double)(z.tv_nsec - a.tv_nsec) / 1e6);
    CHECK(maxd <= 1e-4);
    tio_free(&cl);
    tio_free(&rl);
    jv_free(cj);
    jv_free(rj);
    return TEST_PASS;
}

#define NEED_NUMPY()                                                         \
    do {                                                                     \
        struct stat sb_;                                                     \
        if (stat("/usr/bin/python3", &sb_))                                  \
            SKIP("/usr/bin/python3 is absent: the numpy reference cannot "   \
                 "run");                                                     \
        if (test_sh(NULL, "/usr/bin/python3 -c 'import numpy'") != 0)        \
            SKIP("numpy is not importable by /usr/bin/python3 (apt-get "     \
                 "install python3-numpy)");                                  \
    } while (0)

TEST(test_gguf_llama_reference)
{
    NEED_MODELS();
    NEED_PLUGIN();
    NEED_NUMPY();
    return llama_ref_compare(GG_STORIES, test_tmpdir());
}

/* stories260K re-encoded as Q8_0, Q4_0 and Q4_1 (tests/data/gguf/
 * requant.py): the matrices reach the IR as block-quantised i8 / i4
 * (quant block 32, the file's scales), and generation still agrees with
 * the numpy reference reading the same file. */
TEST(test_gguf_block_quant_reference)
{
    NEED_MODELS();
    NEED_PLUGIN();
    NEED_NUMPY();
    static const struct {
        const char *kind, *dtype, *zp;
    } k[] = {{"q8_0", "blk.0.attn_q.weight.q : i8[64, 64] quant(axis=1, "
                      "block=32, scales=[", "zero_points=[0, 0"},
             {"q4_0", "blk.0.attn_q.weight.q : i4[64, 64] quant(axis=1, "
                      "block=32, scales=[", "zero_points=[0, 0"},
             {"q4_1", "blk.0.attn_q.weight.q : i4[64, 64] quant(axis=1, "
                      "block=32, scales=[", "zero_points=[-8, -8"}};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        const char *d = test_tmpdir();
        char m[4200], *out = NULL;
        snprintf(m, sizeof m, "%s/stories260K-%s.gguf", d, k[i].kind);
        int rc = test_sh(&out, "/usr/bin/python3 '%s/requant.py' '%s' '%s' %s",
                         GG_DATA, GG_STORIES, m, k[i].kind);
        CHECK_MSG(rc == 0, "requant %s: %s", k[i].kind, out);
        free(out);
        rc = test_sh(&out, "'%s' ir '%s' --weights", BIN, m);
        CHECK_MSG(rc == 0 && test_contains(out, k[i].dtype) &&
                      test_contains(out, k[i].zp) &&
                      test_contains(out, "node blk.0.attn_q.weight"),
                  "%s: exit %d, block-quantised weights not in the IR",
                  k[i].kind, rc);
        free(out);
        fprintf(stderr, "    %s:\n", k[i].kind);
        rc = llama_ref_compare(m, d);
        if (rc != TEST_PASS) return rc;
    }
    return TEST_PASS;
}

/* The fit check: a metadata-only GGUF with TinyLlama-1.1B's hyper-parameters
 * and general.file_type Q4_0 is about 0.62 GB of weights; pre-flight says,
 * with the numbers, that it fits neither one ESP32 nor a swarm of 16 with
 * 4 MB PSRAM each, and how many boards it would take. */
TEST(test_gguf_fit_check)
{
    NEED_PLUGIN();
    const char *d = test_tmpdir();
    gbuf b = {0};
    gb_header(&b, 3, 0, 12);
    gb_kv_str(&b, "general.architecture", "llama");
    gb_kv_u32(&b, "general.file_type", 2);
    gb_kv_u32(&b, "llama.context_length", 2048);
    gb_kv_u32(&b, "llama.embedding_length", 2048);
    gb_kv_u32(&b, "llama.block_count", 22);
    gb_kv_u32(&b, "llama.feed_forward_length", 5632);
    gb_kv_u32(&b, "llama.attention.head_count", 32);
    gb_kv_u32(&b, "llama.attention.head_count_kv", 4);
    gb_kv_u32(&b, "llama.rope.dimension_count", 64);
    gb_kv_f32(&b, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    gb_kv_u32(&b, "llama.vocab_size", 32000);
    gb_kv_str(&b, "general.name", "tinyllama-shaped");
    char m[4200], ini[4200], src[4200];
    snprintf(m, sizeof m, "%s/tinyllama-shape.gguf", d);
    CHECK(test_write_file(m, b.p, b.n) == 0);
    free(b.p);
    /* an ESP32 board with 4 MB PSRAM: the shipped esp32.ini plus the key */
    snprintf(src, sizeof src, "%s/plugins/mcu-esp32/boards/esp32.ini",
             CR_SOURCE_DIR);
    size_t tlen = 0;
    char *text = (char *)test_read_file(src, &tlen);
    if (!text) SKIP("%s is absent (mcu-esp32 not in this tree)", src);
    snprintf(ini, sizeof ini, "%s/esp32-psram.ini", d);
    char *aug = NULL;
    CHECK(asprintf(&aug, "%.*s\n[board]\npsram_bytes = 4194304\n", (int)tlen,
                   text) > 0);
    free(text);
    CHECK(test_write(ini, aug) == 0);
    free(aug);
    char *out = NULL;
    int rc = test_sh(&out, "'%s' compile '%s' --target mcu-esp32 --board '%s' "
                           "--swarm 16 -o '%s/x.tptpkg'",
                     BIN, m, ini, d);
    CHECK_MSG(rc == 1 && test_contains(out, "model fit_weight_bytes: 6") &&
                  test_contains(out, "(Q4_0, estimated from general.file_type)") &&
                  test_contains(out, "a swarm of 16 holds 139.5 MB") &&
                  test_contains(out, "does NOT fit (needs at least") &&
                  test_contains(out, "the model does not fit the swarm"),
              "exit %d:\n%s", rc, out);
    /* the weight figure itself: about 0.62 GB */
    const char *w = strstr(out, "model fit_weight_bytes: ");
    double wb = w ? strtod(w + strlen("model fit_weight_bytes: "), NULL) : 0;
    CHECK_MSG(wb > 0.60e9 && wb < 0.64e9, "weights %.0f bytes", wb);
    free(out);
    struct stat sb;
    snprintf(src, sizeof src, "%s/x.tptpkg", d);
    CHECK_MSG(stat(src, &sb) != 0, "a package was written");
    /* --json gives the same verdict as data */
    rc = test_sh(&out, "'%s' -q --json compile '%s' --target mcu-esp32 "
                       "--board '%s' --swarm 16 -o '%s/x.tptpkg' 2>/dev/null",
                 BIN, m, ini, d);
    CHECK_MSG(rc == 1 && test_contains(out, "\"swarm\":16") &&
                  test_contains(out, "\"fits\":false") &&
                  test_contains(out, "\"board_bytes\":8716288"),
              "exit %d:\n%s", rc, out);
    free(out);
    return TEST_PASS;
}
