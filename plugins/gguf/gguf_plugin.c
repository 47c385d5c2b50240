/*
 * gguf_plugin.c - the "gguf" plugin: entry point, score() and load() of
 * the frontend (crucible.frontend/1); the tokenizer (crucible.tokenizer/1)
 * is in gguf_tok.c.
 *
 * load() reads the file with the validating reader, writes a summary of
 * the model as graph metadata, and builds the model body from the
 * architecture template named by general.architecture (the table
 * k_templates below; llama is in gguf_llama.c). For an architecture
 * without a template the body is one node of op "unsupported" (source_op
 * "gguf:<arch>") between the token input and the logits output, so
 * `crucible ir` shows the summary and pre-flight names what is missing.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "gguf_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <fcntl.h>

#ifndef CRUCIBLE_VERSION
#define CRUCIBLE_VERSION "0.1.0"
#endif

const crucible_host *gg_host;

/* ---- host services ----------------------------------------------------------*/
void *gg_realloc(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    (void)ud;
    return gg_host->realloc(gg_host, ptr, old_size, new_size);
}

void *gg_alloc(size_t n)
{
    void *p = gg_host->realloc(gg_host, NULL, 0, n ? n : 1);
    if (p) memset(p, 0, n ? n : 1);
    return p;
}

void gg_free(void *p, size_t n)
{
    if (p) gg_host->realloc(gg_host, p, n ? n : 1, 0);
}

int gg_open(const char *path, gguf_file **out)
{
    char err[512];
    int rc = gguf_open(path, gg_realloc, NULL, out, err, sizeof err);
    if (rc) gg_host->log(gg_host, CRUCIBLE_LOG_ERROR, "%s: %s", path, err);
    return rc;
}

int gg_has_magic(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char m[4];
    ssize_t n = read(fd, m, 4);
    close(fd);
    return n == 4 && !memcmp(m, GGUF_MAGIC, 4);
}

/* ---- architecture templates -----------------------------------------------------
 * One row per architecture: its build function (gguf_int.h), or, while
 * there is none, why the body is "unsupported". Adding an architecture
 * means adding a row here. */
typedef struct gg_template {
    const char *arch;
    int (*build)(gg_model *m, const crucible_ir_builder *b);
    /* while build is NULL: why the body is "unsupported" */
    const char *pending;
} gg_template;

static const gg_template k_templates[] = {
    {"llama", gg_build_llama, NULL},
};

static const gg_template *find_template(const char *arch)
{
    for (size_t i = 0; i < sizeof k_templates / sizeof k_templates[0]; i++)
        if (!strcmp(k_templates[i].arch, arch)) return &k_templates[i];
    return NULL;
}

/* ---- text helpers ---------------------------------------------------------------*/
/* Copies up to max bytes of s as valid UTF-8 text: control characters
 * become spaces, invalid bytes '?'. */
static void clean_text(char *dst, size_t cap, const char *s, size_t len,
                       size_t max)
{
    size_t k = 0, i = 0;
    if (len > max) len = max;
    while (i < len && k + 5 < cap) {
        unsigned char c = (unsigned char)s[i];
        size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2
                 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        int ok = n && i + n <= len && !(n == 2 && c < 0xc2) &&
                 !(n == 4 && c > 0xf4);
        for (size_t j = 1; ok && j < n; j++)
            ok = ((unsigned char)s[i + j] & 0xc0) == 0x80;
        if (!ok) {
            dst[k++] = '?';
            i++;
        } else if (n == 1) {
            dst[k++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
            i++;
        } else {
            memcpy(dst + k, s + i, n);
            k += n;
            i += n;
        }
    }
    if (i < len && k + 4 < cap) {
        memcpy(dst + k, "...", 3);
        k += 3;
    }
    dst[k] = 0;
}

/* One value as text: numbers, bools, strings; arrays as their length and
 * type with the first few numbers. */
static void value_text(const gguf_value *v, char *buf, size_t cap)
{
    int64_t i;
    uint64_t u;
    double d;
    int b;
    size_t len;
    const char *s;
    buf[0] = 0;
    if (v->type == GGUF_T_ARRAY) {
        size_t k = (size_t)snprintf(buf, cap, "[%llu x %s",
                                    (unsigned long long)v->n,
                                    gguf_vtype_name(v->elem_type));
        gguf_value e;
        for (uint64_t j = 0; j < v->n && j < 8 && k < cap; j++) {
            if (gguf_array_get(v, j, &e)) break;
            char one[64];
            value_text(&e, one, sizeof one);
            k += (size_t)snprintf(buf + k, cap - k, "%s%s", j ? ", " : ": ",
                                  one);
        }
        if (k < cap)
            snprintf(buf + k, cap - k, "%s]", v->n > 8 && k ? ", ..." : "");
    } else if ((s = gguf_value_str(v, &len))) {
        clean_text(buf, cap, s, len, 200);
    } else if (!gguf_value_bool(v, &b)) {
        snprintf(buf, cap, "%s", b ? "true" : "false");
    } else if (v->type == GGUF_T_F32 || v->type == GGUF_T_F64) {
        gguf_value_f64(v, &d);
        snprintf(buf, cap, "%g", d);
    } else if (v->type == GGUF_T_U64 && !gguf_value_u64(v, &u)) {
        snprintf(buf, cap, "%llu", (unsigned long long)u);
    } else if (!gguf_value_i64(v, &i)) {
        snprintf(buf, cap, "%lld", (long long)i);
    }
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int meta(const crucible_ir_builder *b, const char *key,
                const char *fmt, ...)
{
    char v[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    return b->set_meta(b->ctx, key, v);
}

/* Metadata key `key` shown as `as` when present. */
static int meta_kv(const crucible_ir_builder *b, const gguf_file *f,
                   const char *key, const char *as)
{
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) return CRUCIBLE_OK;
    char buf[512];
    value_text(&kv->v, buf, sizeof buf);
    return b->set_meta(b->ctx, as, buf);
}

/* ---- the summary --------------------------------------------------------------------*/
static const char *const k_arch_keys[] = {
    "context_length", "embedding_length", "block_count",
    "feed_forward_length", "attention.head_count", "attention.head_count_kv",
    "attention.key_length", "attention.value_length",
    "attention.layer_norm_rms_epsilon", "attention.layer_norm_epsilon",
    "rope.dimension_count", "rope.freq_base", "rope.scaling.type",
    "rope.scaling.factor", "rope.scaling.original_context_length",
    "rope.scale_linear", "expert_count", "expert_used_count", NULL};

static int summarise(gg_model *m, const crucible_ir_builder *b)
{
    const gguf_file *f = m->f;
    int rc;
    if ((rc = meta(b, "format", "gguf")) < 0 ||
        (rc = meta(b, "gguf_version", "%u", gguf_version(f))) < 0)
        return rc;
    if (m->arch[0] && (rc = meta(b, "architecture", "%s", m->arch)) < 0)
        return rc;
    if ((rc = meta_kv(b, f, "general.name", "name")) < 0 ||
        (rc = meta_kv(b, f, "general.basename", "basename")) < 0 ||
        (rc = meta_kv(b, f, "general.size_label", "size_label")) < 0)
        return rc;
    /* parameters and bytes per tensor type */
    uint64_t params = 0, bytes[GGML_T_COUNT_] = {0};
    size_t count[GGML_T_COUNT_] = {0};
    for (size_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        params += t->n_elems;
        bytes[t->type] += t->n_bytes;
        count[t->type]++;
    }
    if ((rc = meta(b, "parameters", "%llu", (unsigned long long)params)) < 0 ||
        (rc = meta(b, "tensors", "%zu", gguf_n_tensors(f))) < 0)
        return rc;
    for (uint32_t t = 0; t < GGML_T_COUNT_; t++) {
        if (!count[t]) continue;
        char key[64];
        snprintf(key, sizeof key, "tensor_bytes.%s", gguf_type(t)->name);
        if ((rc = meta(b, key, "%llu bytes in %zu tensor%s",
                       (unsigned long long)bytes[t], count[t],
                       count[t] == 1 ? "" : "s")) < 0)
            return rc;
    }
    if ((rc = meta(b, "alignment", "%u", gguf_alignment(f))) < 0) return rc;
    if (m->arch[0])
        for (size_t i = 0; k_arch_keys[i]; i++) {
            char key[128];
            snprintf(key, sizeof key, "%s.%s", m->arch, k_arch_keys[i]);
            if ((rc = meta_kv(b, f, key, k_arch_keys[i])) < 0) return rc;
        }
    if (m->n_vocab && (rc = meta(b, "vocab_size", "%lld",
                                 (long long)m->n_vocab)) < 0)
        return rc;
    if ((rc = meta_kv(b, f, "tokenizer.ggml.model", "tokenizer")) < 0 ||
        (rc = meta_kv(b, f, "general.file_type", "file_type")) < 0 ||
        (rc = meta_kv(b, f, "general.quantization_version",
                      "quantization_version")) < 0 ||
        (rc = meta(b, "metadata_keys", "%zu", gguf_n_kv(f))) < 0)
        return rc;
    return CRUCIBLE_OK;
}

/* Vocabulary size: the tokenizer's token list, else <arch>.vocab_size,
 * else the rows of token_embd.weight; 0 when none says. */
static int64_t vocab_size(const gg_model *m)
{
    const gguf_kv *kv = gguf_find_kv(m->f, "tokenizer.ggml.tokens");
    if (kv && kv->v.type == GGUF_T_ARRAY && kv->v.n <= INT32_MAX)
        return (int64_t)kv->v.n;
    uint64_t u;
    char key[128];
    snprintf(key, sizeof key, "%s.vocab_size", m->arch);
    if (m->arch[0] && !gguf_get_u64(m->f, key, &u) && u <= INT32_MAX)
        return (int64_t)u;
    const gguf_tensor *t = gguf_find_tensor(m->f, "token_embd.weight");
    if (t && t->n_dims == 2 && t->ne[1] <= INT32_MAX) return (int64_t)t->ne[1];
    return 0;
}

/* The body while no template can build it: tokens -> unsupported ->
 * logits. */
int gg_build_pending(gg_model *m, const crucible_ir_builder *b,
                     const char *reason)
{
    void *c = b->ctx;
    const int64_t in_dims[2] = {1, 1};
    const int64_t out_dims[2] = {1, m->n_vocab};
    int32_t tok = b->add_tensor(c, "tokens", CRUCIBLE_DT_I32, 2, in_dims);
    if (tok < 0) return tok;
    int32_t lg = b->add_tensor(c, "logits", CRUCIBLE_DT_F32, 2, out_dims);
    if (lg < 0) return lg;
    char src[96];
    snprintf(src, sizeof src, "gguf:%s", m->arch[0] ? m->arch : "unknown");
    int32_t n = b->add_node(c, "unsupported", m->arch[0] ? m->arch : "model",
                            1, &tok, 1, &lg);
    if (n < 0) return n;
    int rc;
    if ((rc = b->attr_string(c, n, "source_op", src)) < 0 ||
        (rc = b->attr_string(c, n, "reason", reason)) < 0 ||
        (rc = b->mark_input(c, tok)) < 0 || (rc = b->mark_output(c, lg)) < 0)
        return rc;
    return CRUCIBLE_OK;
}

static int load_model(gg_model *m, const crucible_ir_builder *b)
{
    size_t len;
    const char *arch = gguf_get_str(m->f, "general.architecture", &len);
    if (arch) {
        /* [a-z0-9]+ per the spec; anything else is shown, not trusted */
        size_t k = 0;
        for (size_t i = 0; i < len && k + 1 < sizeof m->arch; i++) {
            char ch = arch[i];
            int ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                     (ch >= 'A' && ch <= 'Z') || ch == '_' || ch == '-' ||
                     ch == '.';
            m->arch[k++] = ok ? ch : '?';
        }
        m->arch[k] = 0;
    } else if (gguf_find_kv(m->f, "general.architecture")) {
        gg_host->log(gg_host, CRUCIBLE_LOG_ERROR,
                     "%s: general.architecture is not a string", m->path);
        return CRUCIBLE_E_FORMAT;
    }
    m->n_vocab = vocab_size(m);
    int rc;
    char name[256];
    const char *gn = gguf_get_str(m->f, "general.name", &len);
    if (gn && len) clean_text(name, sizeof name, gn, len, 120);
    else snprintf(name, sizeof name, "%s", m->arch[0] ? m->arch : "gguf");
    if ((rc = b->set_name(b->ctx, name)) < 0) return rc;
    if ((rc = summarise(m, b)) < 0) return rc;
    if (!m->arch[0])
        return gg_build_pending(m, b,
                             "the file has no general.architecture, so no "
                             "architecture template applies");
    const gg_template *t = find_template(m->arch);
    if (t && t->build) return t->build(m, b);
    if (t) return gg_build_pending(m, b, t->pending);
    char why[256];
    snprintf(why, sizeof why,
             "no architecture template for %s yet (templates: llama)",
             m->arch);
    return gg_build_pending(m, b, why);
}

/* ---- plugin slots -----------------------------------------------------------------*/
static int gg_init(const crucible_host *host, void **state)
{
    gg_host = host;
    *state = NULL;
    return CRUCIBLE_OK;
}

static int gg_score(void *state, const char *path, const uint8_t *head,
                    size_t n)
{
    (void)state;
    if (head && n >= 4 && !memcmp(head, GGUF_MAGIC, 4)) return 100;
    size_t l = path ? strlen(path) : 0;
    /* a damaged .gguf still comes here, for a clear message */
    if (l > 5 && !strcasecmp(path + l - 5, ".gguf")) return 50;
    return 0;
}

static int gg_load(void *state, const char *path, const crucible_ir_builder *b)
{
    (void)state;
    if (!path || !b) return CRUCIBLE_E_INVALID;
    gg_model m;
    memset(&m, 0, sizeof m);
    m.path = path;
    int rc = gg_open(path, &m.f);
    if (rc) return rc;
    rc = load_model(&m, b);
    gguf_close(m.f);
    return rc < 0 ? rc : CRUCIBLE_OK;
}

static const crucible_frontend gg_frontend = {
    CRUCIBLE_HEADER(crucible_frontend), "gguf", gg_score, gg_load};

static const void *gg_get_interface(void *state, const char *id)
{
    (void)state;
    if (!id) return NULL;
    if (!strcmp(id, CRUCIBLE_IFACE_FRONTEND)) return &gg_frontend;
    if (!strcmp(id, CRUCIBLE_IFACE_TOKENIZER)) return &gg_tokenizer;
    return NULL;
}

static const char *const gg_ifaces[] = {CRUCIBLE_IFACE_FRONTEND,
                                        CRUCIBLE_IFACE_TOKENIZER, NULL};

CRUCIBLE_ENTRY(gg_entry) = {
    CRUCIBLE_HEADER(crucible_plugin_entry),
    CRUCIBLE_ABI_TAG,
    0,
    "gguf",
    "GGUF frontend and tokenizer",
    CRUCIBLE_VERSION,
    "crucible",
    "reads GGUF v2/v3 language models (metadata, tensors, llama "
    "SentencePiece vocabularies)",
    gg_ifaces,
    gg_init,
    NULL,
    gg_get_interface};
