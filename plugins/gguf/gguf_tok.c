/*
 * gguf_tok.c - the tokenizer (crucible.tokenizer/1) for vocabularies in
 * GGUF metadata (tokenizer.ggml.*). Model "llama": SentencePiece with
 * score-ordered pair merges and byte fallback, as the llama family uses.
 *
 * Encoding one piece of text:
 *   1. user-defined tokens (token_type 4) are cut out of the text first,
 *      longest first; they map to their ids directly;
 *   2. every other fragment: a space is put in front when
 *      add_space_prefix is set and the fragment starts the text or follows
 *      a user-defined token, then every ' ' becomes U+2581 ("▁");
 *   3. the fragment is split into UTF-8 characters; repeatedly, the
 *      adjacent pair whose concatenation is a vocabulary entry with the
 *      highest score is merged (ties: the leftmost pair);
 *   4. each final symbol maps to its id; one that is not in the
 *      vocabulary (a single character) becomes its bytes' <0xXX> tokens,
 *      or the unknown token when the vocabulary has no such byte token.
 * BOS is prepended when the caller asks and tokenizer.ggml.add_bos_token
 * (default true) allows it; EOS is appended only when add_eos_token says.
 * Control tokens written in the text are not parsed as control tokens.
 */
#include "gguf_int.h"

#include <stdio.h>
#include <string.h>

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4,
       TT_UNUSED = 5, TT_BYTE = 6 };

typedef struct gg_tok {
    int32_t n;         /* vocabulary size */
    char *text;        /* every piece, NUL-terminated, back to back */
    size_t text_size;
    uint32_t *off, *len;
    float *score;
    int32_t *type;
    uint32_t *slots;   /* hash over piece text: id + 1, 0 = empty */
    size_t cap;
    int32_t byte_id[256];
    int32_t bos, eos, unk;
    int add_bos, add_eos, add_space_prefix;
    int32_t *user;     /* user-defined tokens, longest first */
    size_t n_user;
} gg_tok;

/* ---- growable buffers over the host allocator ---------------------------------*/
typedef struct vec {
    void *p;
    size_t n, cap, elem;
} vec;

static int vec_reserve(vec *v, size_t want)
{
    if (want <= v->cap) return 0;
    size_t nc = v->cap ? v->cap : 16;
    while (nc < want) {
        if (nc > SIZE_MAX / 2 / v->elem) return -1;
        nc *= 2;
    }
    void *np = gg_host->realloc(gg_host, v->p, v->cap * v->elem, nc * v->elem);
    if (!np) return -1;
    v->p = np;
    v->cap = nc;
    return 0;
}

static int vec_push(vec *v, const void *e)
{
    if (vec_reserve(v, v->n + 1)) return -1;
    memcpy((char *)v->p + v->n * v->elem, e, v->elem);
    v->n++;
    return 0;
}

static void vec_free(vec *v)
{
    if (v->p) gg_host->realloc(gg_host, v->p, v->cap * v->elem, 0);
    v->p = NULL;
    v->n = v->cap = 0;
}

/* ---- the vocabulary -------------------------------------------------------------*/
static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static int32_t lookup(const gg_tok *t, const char *s, size_t n)
{
    size_t h = (size_t)hash_bytes(s, n) & (t->cap - 1);
    for (;;) {
        uint32_t e = t->slots[h];
        if (!e) return -1;
        uint32_t id = e - 1;
        if (t->len[id] == n && !memcmp(t->text + t->off[id], s, n))
            return (int32_t)id;
        h = (h + 1) & (t->cap - 1);
    }
}

static void tok_free(gg_tok *t)
{
    if (!t) return;
    size_t n = (size_t)t->n;
    gg_free(t->text, t->text_size);
    gg_free(t->off, n * sizeof *t->off);
    gg_free(t->len, n * sizeof *t->len);
    gg_free(t->score, n * sizeof *t->score);
    gg_free(t->type, n * sizeof *t->type);
    gg_free(t->slots, t->cap * sizeof *t->slots);
    gg_free(t->user, t->n_user * sizeof *t->user);
    gg_free(t, sizeof *t);
}

/* A special-token id: absent -> dflt; negative (some writers use -1 for
 * "none") -> -1; beyond the vocabulary -> error. */
static int special_id(const gguf_file *f, const char *key, int32_t n,
                      int32_t dflt, int32_t *out, const char *path)
{
    const gguf_kv *kv = gguf_find_kv(f, key);
    *out = dflt < n ? dflt : -1;
    if (!kv) return 0;
    int64_t v;
    if (gguf_value_i64(&kv->v, &v)) {
        uint64_t u;
        if (gguf_value_u64(&kv->v, &u)) {
            gg_host->log(gg_host, CRUCIBLE_LOG_ERROR,
                         "%s: %s has type %s; expected an integer", path, key,
                         gguf_vtype_name(kv->v.type));
            return CRUCIBLE_E_FORMAT;
        }
        v = INT64_MAX;
    }
    if (v < 0 || (kv->v.type == GGUF_T_U32 && v == UINT32_MAX)) {
        *out = -1;
        return 0;
    }
    if (v >= n) {
        gg_host->log(gg_host, CRUCIBLE_LOG_ERROR,
                     "%s: %s is %lld; the vocabulary has %d tokens", path,
                     key, (long long)v, (int)n);
        return CRUCIBLE_E_FORMAT;
    }
    *out = (int32_t)v;
    return 0;
}

static int opt_bool(const gguf_file *f, const char *key, int dflt, int *out,
                    const char *path)
{
    const gguf_kv *kv = gguf_find_kv(f, key);
    *out = dflt;
    if (!kv) return 0;
    if (gguf_value_bool(&kv->v, out)) {
        gg_host->log(gg_host, CRUCIBLE_LOG_ERROR,
                     "%s: %s has type %s; expected bool", path, key,
                     gguf_vtype_name(kv->v.type));
        return CRUCIBLE_E_FORMAT;
    }
    return 0;
}

/* "<0xAB>" -> 0xAB, else -1. */
static int byte_piece(const char *s, size_t n)
{
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0'
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
              : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

#define TOKFAIL(...)                                                         \
    do {                                                                     \
        gg_host->log(gg_host, CRUCIBLE_LOG_ERROR, __VA_ARGS__);              \
        rc = CRUCIBLE_E_FORMAT;                                              \
        goto out;                                                            \
    } while (0)

static int build_vocab(gg_tok *t, const gguf_file *f, const char *path)
{
    int rc = CRUCIBLE_OK;
    const gguf_kv *tk = gguf_find_kv(f, "tokenizer.ggml.tokens");
    const gguf_kv *sc = gguf_find_kv(f, "tokenizer.ggml.scores");
    const gguf_kv *ty = gguf_find_kv(f, "tokenizer.ggml.token_type");
    if (!tk) TOKFAIL("%s: tokenizer.ggml.model is set but tokenizer.ggml.tokens "
                     "is missing", path);
    if (tk->v.type != GGUF_T_ARRAY || tk->v.elem_type != GGUF_T_STRING)
        TOKFAIL("%s: tokenizer.ggml.tokens must be an array of strings", path);
    if (tk->v.n == 0 || tk->v.n > INT32_MAX - 1)
        TOKFAIL("%s: tokenizer.ggml.tokens has %llu entries", path,
                (unsigned long long)tk->v.n);
    size_t n = (size_t)tk->v.n;
    if (sc && (sc->v.type != GGUF_T_ARRAY ||
               (sc->v.elem_type != GGUF_T_F32 &&
                sc->v.elem_type != GGUF_T_F64) ||
               sc->v.n != n))
        TOKFAIL("%s: tokenizer.ggml.scores must be an array of %zu floats",
                path, n);
    if (ty && (ty->v.type != GGUF_T_ARRAY || ty->v.n != n ||
               ty->v.elem_type == GGUF_T_STRING ||
               ty->v.elem_type == GGUF_T_ARRAY ||
               ty->v.elem_type == GGUF_T_F32 || ty->v.elem_type == GGUF_T_F64 ||
               ty->v.elem_type == GGUF_T_BOOL))
        TOKFAIL("%s: tokenizer.ggml.token_type must be an array of %zu "
                "integers", path, n);
    t->n = (int32_t)n;
    t->text_size = (size_t)tk->v.nbytes; /* >= sum of lengths + 1 per token */
    t->text = gg_alloc(t->text_size + 1);
    t->off = gg_alloc(n * sizeof *t->off);
    t->len = gg_alloc(n * sizeof *t->len);
    t->score = gg_alloc(n * sizeof *t->score);
    t->type = gg_alloc(n * sizeof *t->type);
    t->cap = 16;
    while (t->cap < 2 * n + 1) t->cap <<= 1;
    t->slots = gg_alloc(t->cap * sizeof *t->slots);
    t->text_size += 1;
    if (!t->text || !t->off || !t->len || !t->score || !t->type || !t->slots) {
        rc = CRUCIBLE_E_NOMEM;
        goto out;
    }
    gguf_iter it;
    gguf_value v;
    gguf_iter_init(&it, &tk->v);
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l;
        const char *s;
        if (!gguf_iter_next(&it, &v) || !(s = gguf_value_str(&v, &l)))
            TOKFAIL("%s: tokenizer.ggml.tokens entry %zu is unreadable", path,
                    i);
        if (l > UINT32_MAX || pos + l + 1 > t->text_size)
            TOKFAIL("%s: tokenizer.ggml.tokens entry %zu is too long", path,
                    i);
        if (pos > UINT32_MAX - l - 1)
            TOKFAIL("%s: the vocabulary text exceeds 4 GiB", path);
        memcpy(t->text + pos, s, l);
        t->text[pos + l] = 0;
        t->off[i] = (uint32_t)pos;
        t->len[i] = (uint32_t)l;
        pos += l + 1;
        double d = 0;
        if (sc) {
            gguf_value e;
            if (gguf_array_get(&sc->v, i, &e) || gguf_value_f64(&e, &d))
                d = 0;
        }
        t->score[i] = (float)d;
        int64_t ti = TT_NORMAL;
        if (ty) {
            gguf_value e;
            if (gguf_array_get(&ty->v, i, &e) || gguf_value_i64(&e, &ti))
                ti = TT_NORMAL;
        } else if (byte_piece(s, l) >= 0) {
            ti = TT_BYTE;
        }
        t->type[i] = (int32_t)ti;
        /* index: a later duplicate text replaces an earlier one */
        size_t h = (size_t)hash_bytes(s, l) & (t->cap - 1);
        for (;;) {
            uint32_t e = t->slots[h];
            if (!e) {
                t->slots[h] = (uint32_t)i + 1;
                break;
            }
            if (t->len[e - 1] == l && !memcmp(t->text + t->off[e - 1], s, l)) {
                t->slots[h] = (uint32_t)i + 1;
                break;
            }
            h = (h + 1) & (t->cap - 1);
        }
    }
    /* byte fallback: <0xXX>, else the single byte as a piece */
    for (int b = 0; b < 256; b++) {
        char buf[8];
        snprintf(buf, sizeof buf, "<0x%02X>", b);
        int32_t id = lookup(t, buf, 6);
        if (id < 0) {
            char one = (char)b;
            id = lookup(t, &one, 1);
        }
        t->byte_id[b] = id;
    }
    /* user-defined tokens, longest first (ties: lower id) */
    size_t nu = 0;
    for (size_t i = 0; i < n; i++) nu += t->type[i] == TT_USER && t->len[i];
    if (nu) {
        t->user = gg_alloc(nu * sizeof *t->user);
        if (!t->user) {
            rc = CRUCIBLE_E_NOMEM;
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            if (t->type[i] == TT_USER && t->len[i]) {
                /* insertion keeps it simple; user tokens are few */
                size_t k = t->n_user++;
                while (k && t->len[t->user[k - 1]] < t->len[i]) {
                    t->user[k] = t->user[k - 1];
                    k--;
                }
                t->user[k] = (int32_t)i;
            }
    }
out:
    return rc;
}

static int tok_open(void *state, const char *path, void **out)
{
    (void)state;
    *out = NULL;
    if (!path) return CRUCIBLE_E_INVALID;
    if (!gg_has_magic(path)) return CRUCIBLE_E_NOTFOUND;
    gguf_file *f = NULL;
    int rc = gg_open(path, &f);
    if (rc) return rc;
    gg_tok *t = NULL;
    size_t ml;
    const char *model = gguf_get_str(f, "tokenizer.ggml.model", &ml);
    if (!model) {
        if (gguf_find_kv(f, "tokenizer.ggml.model")) {
            gg_host->log(gg_host, CRUCIBLE_LOG_ERROR,
                         "%s: tokenizer.ggml.model is not a string", path);
            rc = CRUCIBLE_E_FORMAT;
        } else {
            gg_host->log(gg_host, CRUCIBLE_LOG_DEBUG,
                         "%s: no vocabulary (no tokenizer.ggml.model)", path);
            rc = CRUCIBLE_E_NOTFOUND;
        }
        goto out;
    }
    if (ml != 5 || memcmp(model, "llama", 5)) {
        gg_host->log(gg_host, CRUCIBLE_LOG_ERROR,
                     "%s: tokenizer model \"%.*s\" is not supported yet (this "
                     "plugin reads \"llama\" SentencePiece vocabularies)",
                     path, ml > 40 ? 40 : (int)ml, model);
        rc = CRUCIBLE_E_UNSUPPORTED;
        goto out;
    }
    t = gg_alloc(sizeof *t);
    if (!t) {
        rc = CRUCIBLE_E_NOMEM;
        goto out;
    }
    if ((rc = build_vocab(t, f, path))) goto out;
    if ((rc = special_id(f, "tokenizer.ggml.bos_token_id", t->n, 1, &t->bos,
                         path)) ||
        (rc = special_id(f, "tokenizer.ggml.eos_token_id", t->n, 2, &t->eos,
                         path)) ||
        (rc = special_id(f, "tokenizer.ggml.unknown_token_id", t->n, 0,
                         &t->unk, path)) ||
        (rc = opt_bool(f, "tokenizer.ggml.add_bos_token", 1, &t->add_bos,
                       path)) ||
        (rc = opt_bool(f, "tokenizer.ggml.add_eos_token", 0, &t->add_eos,
                       path)) ||
        (rc = opt_bool(f, "tokenizer.ggml.add_space_prefix", 1,
                       &t->add_space_prefix, path)))
        goto out;
out:
    gguf_close(f);
    if (rc) {
        tok_free(t);
        return rc;
    }
    *out = t;
    return CRUCIBLE_OK;
}

/* ---- SentencePiece merging ------------------------------------------------------*/
typedef struct sym {
    size_t start, n;
    ptrdiff_t prev, next;
} sym;

typedef struct bigram {
    ptrdiff_t left, right;
    float score;
    size_t size;
} bigram;

/* max-heap order: higher score first; equal scores: leftmost first */
static int before(const bigram *a, const bigram *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static int heap_push(vec *h, const bigram *g)
{
    if (vec_push(h, g)) return -1;
    bigram *a = h->p;
    size_t i = h->n - 1;
    while (i) {
        size_t p = (i - 1) / 2;
        if (!before(&a[i], &a[p])) break;
        bigram t = a[i];
        a[i] = a[p];
        a[p] = t;
        i = p;
    }
    return 0;
}

static bigram heap_pop(vec *h)
{
    bigram *a = h->p, top = a[0];
    a[0] = a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && before(&a[l], &a[m])) m = l;
        if (r < h->n && before(&a[r], &a[m])) m = r;
        if (m == i) break;
        bigram t = a[i];
        a[i] = a[m];
        a[m] = t;
        i = m;
    }
    return top;
}

static int try_pair(const gg_tok *t, const char *s, const sym *sy,
                    ptrdiff_t l, ptrdiff_t r, vec *heap)
{
    if (l < 0 || r < 0) return 0;
    size_t size = sy[l].n + sy[r].n;
    int32_t id = lookup(t, s + sy[l].start, size);
    if (id < 0) return 0;
    bigram g = {l, r, t->score[id], size};
    return heap_push(heap, &g);
}

static size_t utf8_len(unsigned char c)
{
    static const uint8_t k[16] = {1, 1, 1, 1, 1, 1, 1, 1,
                                  1, 1, 1, 1, 2, 2, 3, 4};
    return k[c >> 4];
}

static int push_id(vec *out, int32_t id) { return vec_push(out, &id); }

/* Tokenizes s[0..n) (spaces already escaped) onto out. */
static int spm(const gg_tok *t, const char *s, size_t n, vec *out)
{
    int rc = CRUCIBLE_OK;
    vec syms = {NULL, 0, 0, sizeof(sym)}, heap = {NULL, 0, 0, sizeof(bigram)};
    for (size_t i = 0; i < n;) {
        size_t l = utf8_len((unsigned char)s[i]);
        if (l > n - i) l = n - i;
        sym y = {i, l, (ptrdiff_t)syms.n - 1, (ptrdiff_t)syms.n + 1};
        if (vec_push(&syms, &y)) goto nomem;
        i += l;
    }
    if (!syms.n) goto done;
    sym *sy = syms.p;
    sy[syms.n - 1].next = -1;
    for (size_t i = 1; i < syms.n; i++)
        if (try_pair(t, s, sy, (ptrdiff_t)i - 1, (ptrdiff_t)i, &heap))
            goto nomem;
    while (heap.n) {
        bigram g = heap_pop(&heap);
        sym *L = &sy[g.left], *R = &sy[g.right];
        if (!L->n || !R->n || L->n + R->n != g.size) continue; /* stale */
        L->n += R->n;
        R->n = 0;
        L->next = R->next;
        if (R->next >= 0) sy[R->next].prev = g.left;
        if (try_pair(t, s, sy, L->prev, g.left, &heap) ||
            try_pair(t, s, sy, g.left, L->next, &heap))
            goto nomem;
    }
    for (ptrdiff_t i = 0; i >= 0; i = sy[i].next) {
        int32_t id = lookup(t, s + sy[i].start, sy[i].n);
        if (id >= 0) {
            if (push_id(out, id)) goto nomem;
            continue;
        }
        for (size_t k = 0; k < sy[i].n; k++) {
            int32_t b = t->byte_id[(unsigned char)s[sy[i].start + k]];
            if (b < 0) b = t->unk;
            if (b < 0) {
                gg_host->log(gg_host, CRUCIBLE_LOG_ERROR,
                             "cannot encode byte 0x%02x: the vocabulary has "
                             "neither a byte token for it nor an unknown "
                             "token",
                             (unsigned char)s[sy[i].start + k]);
                rc = CRUCIBLE_E_UNSUPPORTED;
                goto done;
            }
            if (push_id(out, b)) goto nomem;
        }
    }
    goto done;
nomem:
    rc = CRUCIBLE_E_NOMEM;
done:
    vec_free(&syms);
    vec_free(&heap);
    return rc;
}

/* One raw fragment: optional leading space, ' ' -> U+2581, then spm. */
static int encode_raw(const gg_tok *t, const char *s, size_t n, int prefix,
                      vec *out)
{
    vec buf = {NULL, 0, 0, 1};
    static const char esc[3] = {(char)0xe2, (char)0x96, (char)0x81};
    int rc = CRUCIBLE_OK;
    if (vec_reserve(&buf, 3 * n + 4)) return CRUCIBLE_E_NOMEM;
    char *d = buf.p;
    size_t k = 0;
    if (prefix) {
        memcpy(d, esc, 3);
        k = 3;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            memcpy(d + k, esc, 3);
            k += 3;
        } else {
            d[k++] = s[i];
        }
    }
    rc = spm(t, d, k, out);
    vec_free(&buf);
    return rc;
}

typedef struct frag {
    size_t start, n;
    int32_t id; /* >= 0: a user-defined token */
} frag;

/* Cuts user-defined tokens out of text (longest first) into *fr. */
static int partition(const gg_tok *t, const char *text, size_t len, vec *fr)
{
    frag whole = {0, len, -1};
    if (vec_push(fr, &whole)) return CRUCIBLE_E_NOMEM;
    vec next = {NULL, 0, 0, sizeof(frag)};
    for (size_t u = 0; u < t->n_user; u++) {
        int32_t id = t->user[u];
        const char *p = t->text + t->off[id];
        size_t pl = t->len[id];
        next.n = 0;
        const frag *cur = fr->p;
        for (size_t i = 0; i < fr->n; i++) {
            frag f = cur[i];
            if (f.id >= 0 || f.n < pl) {
                if (vec_push(&next, &f)) goto nomem;
                continue;
            }
            size_t s = f.start, end = f.start + f.n;
            for (size_t at = s; at + pl <= end;) {
                if (memcmp(text + at, p, pl)) {
                    at++;
                    continue;
                }
                if (at > s) {
                    frag raw = {s, at - s, -1};
                    if (vec_push(&next, &raw)) goto nomem;
                }
                frag tk = {at, pl, id};
                if (vec_push(&next, &tk)) goto nomem;
                at += pl;
                s = at;
            }
            if (s < end) {
                frag raw = {s, end - s, -1};
                if (vec_push(&next, &raw)) goto nomem;
            }
        }
        vec tmp = *fr;
        *fr = next;
        next = tmp;
    }
    vec_free(&next);
    return CRUCIBLE_OK;
nomem:
    vec_free(&next);
    return CRUCIBLE_E_NOMEM;
}

static int tok_encode(void *tok, const char *text, size_t len, int add_bos,
                      int32_t *ids, size_t cap, size_t *n)
{
    const gg_tok *t = tok;
    if (!t || (!text && len) || !n || (!ids && cap)) return CRUCIBLE_E_INVALID;
    vec out = {NULL, 0, 0, sizeof(int32_t)};
    vec fr = {NULL, 0, 0, sizeof(frag)};
    int rc = CRUCIBLE_OK;
    *n = 0;
    if (add_bos && t->add_bos && t->bos >= 0 && push_id(&out, t->bos)) {
        rc = CRUCIBLE_E_NOMEM;
        goto out;
    }
    if (len) {
        if ((rc = partition(t, text, len, &fr))) goto out;
        int prev_special = 1;
        const frag *f = fr.p;
        for (size_t i = 0; i < fr.n; i++) {
            if (f[i].id >= 0) {
                if (push_id(&out, f[i].id)) {
                    rc = CRUCIBLE_E_NOMEM;
                    goto out;
                }
                prev_special = 1;
                continue;
            }
            if ((rc = encode_raw(t, text + f[i].start, f[i].n,
                                 t->add_space_prefix && prev_special, &out)))
                goto out;
            prev_special = 0;
        }
    }
    if (add_bos && t->add_eos && t->eos >= 0 && push_id(&out, t->eos)) {
        rc = CRUCIBLE_E_NOMEM;
        goto out;
    }
    *n = out.n;
    if (out.n && cap) memcpy(ids, out.p, (out.n < cap ? out.n : cap) * sizeof(int32_t));
    if (out.n > cap) rc = CRUCIBLE_E_LIMIT;
out:
    vec_free(&out);
    vec_free(&fr);
    return rc;
}

static int tok_piece(void *tok, int32_t id, char *buf, size_t cap,
                     size_t *len)
{
    const gg_tok *t = tok;
    if (!t || !len || (!buf && cap)) return CRUCIBLE_E_INVALID;
    if (id < 0 || id >= t->n) return CRUCIBLE_E_NOTFOUND;
    const char *s = t->text + t->off[id];
    size_t l = t->len[id], k = 0;
    char tmp[1];
    if (t->type[id] == TT_CONTROL) {
        *len = 0;
        return CRUCIBLE_OK;
    }
    int b = t->type[id] == TT_BYTE ? byte_piece(s, l) : -1;
    if (b >= 0) {
        tmp[0] = (char)b;
        s = tmp;
        l = 1;
    }
    for (size_t i = 0; i < l;) {
        if (b < 0 && i + 3 <= l && !memcmp(s + i, "\xe2\x96\x81", 3)) {
            if (k < cap) buf[k] = ' ';
            k++;
            i += 3;
        } else {
            if (k < cap) buf[k] = s[i];
            k++;
            i++;
        }
    }
    *len = k;
    return k > cap ? CRUCIBLE_E_LIMIT : CRUCIBLE_OK;
}

static int32_t tok_n_vocab(void *tok) { return tok ? ((gg_tok *)tok)->n : 0; }
static int32_t tok_bos(void *tok) { return tok ? ((gg_tok *)tok)->bos : -1; }
static int32_t tok_eos(void *tok) { return tok ? ((gg_tok *)tok)->eos : -1; }
static void tok_close(void *tok) { tok_free(tok); }

const crucible_tokenizer gg_tokenizer = {
    CRUCIBLE_HEADER(crucible_tokenizer), tok_open, tok_encode, tok_piece,
    tok_n_vocab, tok_bos, tok_eos, tok_close};
